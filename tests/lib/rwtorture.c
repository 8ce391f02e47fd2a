/*
 * tests/lib/rwtorture.c — one writer against N lock-free readers over an
 * alex_tree.  See rwtorture.h for what is checked and why it is enough.
 *
 * Layout of the volatile keys (run.vk, one array, indexed the same way by
 * the writer's presence map):
 *   [0, nmid)                 between the stable keys, ascending: pool keys
 *                             that were not picked as stable, and the
 *                             neighbours k - 1, k + 1 of some stable keys
 *                             (lower bounds and seeks then start exactly on
 *                             the boundary of a stable key);
 *   [nmid, nmid + nlo)        below every pool key, closest first: one per
 *                             power-of-two distance, then 0;
 *   [nmid + nlo, nv)          above every pool key, closest first, then
 *                             UINT64_MAX.
 * The writer only reaches the first few outer keys on each side and moves
 * that frontier out as it goes, so the root domain widens many times, not
 * once to the whole key space.  A pool that reaches 2^62 is folded into
 * [2^61, 2^62) first (2^61 | low 61 bits), so that the bulk-loaded root
 * never covers everything and there is always room outside it.
 *
 * There are four volatile keys per stable key (by default) and one in
 * sixteen of them starts present: a growing phase of the writer then
 * more than triples the tree, which splits the bulk-loaded leaves, and a
 * shrinking phase takes it back down, which contracts them.
 */
#include "tests/lib/rwtorture.h"
#include "tests/lib/die.h"
#include "tests/lib/util.h"

#include "core/rcu.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------ helpers */

/* Uniform in [0, n) by multiply-shift; n > 0. */
static uint64_t below(ds_rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)ds_rng_next(r) * n) >> 64);
}

/* splitmix64's finalizer: the hash half of every payload. */
static uint64_t mix64(uint64_t z)
{
	z ^= UINT64_C(0x6a09e667f3bcc909);
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

uint64_t rwt_payload(uint64_t key, uint64_t gen)
{
	return (mix64(key) & ~RWT_GEN_MASK) | (gen & RWT_GEN_MASK);
}

bool rwt_payload_ok(uint64_t key, uint64_t v)
{
	return (v & ~RWT_GEN_MASK) == (mix64(key) & ~RWT_GEN_MASK);
}

static const char *const kind_names[RWT_NKINDS] = {
	[RWT_LOOKUP_STABLE] = "lookup-stable",
	[RWT_LOOKUP_OTHER] = "lookup-other",
	[RWT_LOWER_BOUND] = "lower-bound",
	[RWT_SEEK] = "seek",
	[RWT_FULL_SCAN] = "full-scan",
	[RWT_SIZE] = "size-stats",
	[RWT_EPHEMERAL] = "ephemeral",
};

const char *rwt_kind_name(enum rwt_kind k)
{
	return (unsigned)k < RWT_NKINDS ? kind_names[k] : "unknown";
}

void rwt_config_init(rwt_config *c)
{
	memset(c, 0, sizeof(*c));
	c->name = "rwtorture";
	c->seed = 1;
	c->dist = DS_UNIFORM;
	c->stable_keys = 20000;
	alex_config_init(&c->alex);
	c->readers = 4;
	c->writer_steps = 100000;
	c->min_reader_iters = 1000;
	c->linger_seconds = 60;
	c->max_batch = 64;
	c->seek_steps = 200;
	c->max_print = 10;
}

uint64_t rwt_reader_failures(const rwt_result *r)
{
	uint64_t n = 0;

	for (int k = 0; k < RWT_NKINDS; k++)
		n += r->failures[k];
	return n;
}

uint64_t rwt_total_failures(const rwt_result *r)
{
	return rwt_reader_failures(r) + r->writer_failures + r->final_failures;
}

/* ------------------------------------------------------------ run state */

/*
 * Everything the threads share.  Written by rwt_run before the threads are
 * created and read-only afterwards, except the atomics.
 */
struct run {
	const rwt_config *c;
	const char *name;
	uint64_t seed;
	FILE *out;
	alex_tree *t;

	const uint64_t *stable;          /* ascending                            */
	size_t ns;
	const uint64_t *vk;              /* see the layout at the top            */
	size_t nv, nmid, nlo, nhi;

	uint64_t full_scan_every, check_every, phase_len;
	unsigned seek_steps, max_batch;

	struct reader *rd;               /* the long-lived readers               */
	unsigned nreaders;
	bool spawner;                    /* ephemeral threads are part of the run */

	pthread_barrier_t start;         /* writer, readers and spawner together */
	atomic_bool stop;                /* set by the writer when it is done    */
	atomic_bool eph_done;            /* set by the spawner when it is done   */
	atomic_uint printed;             /* failure lines printed so far         */
};

/*
 * One reader's private counters.  Cache-line aligned so that readers do not
 * share lines; progress and scans are the only fields another thread (the
 * writer) reads while the run goes on, and they are published every 64
 * iterations, not per check.
 */
struct reader {
	_Alignas(64) struct run *run;
	char who[32];
	ds_rng rng;
	uint64_t checks[RWT_NKINDS], failures[RWT_NKINDS];
	uint64_t iters, sections, other_found, keys_iterated, scans;
	atomic_uint_fast64_t progress;   /* published iters                      */
	atomic_uint_fast64_t scans_done; /* published scans                      */
};

/* Print one failure line (the first max_print of the run). */
__attribute__((format(printf, 3, 4)))
static void report(struct run *run, const char *who, const char *fmt, ...)
{
	unsigned n = atomic_fetch_add_explicit(&run->printed, 1, memory_order_relaxed);
	char line[768];
	int len;
	va_list ap;

	if (n >= run->c->max_print)
		return;
	len = snprintf(line, sizeof(line), "# FAIL %s seed=%" PRIu64 " %s: ", run->name,
	               run->seed, who);
	if (len < 0 || (size_t)len >= sizeof(line))
		len = 0;
	va_start(ap, fmt);
	vsnprintf(line + len, sizeof(line) - (size_t)len, fmt, ap);
	va_end(ap);
	/* One call per line, so that lines of different threads do not mix. */
	fprintf(run->out, "%s\n%s", line,
	        n + 1 == run->c->max_print ? "# (further failures are counted, not printed)\n" : "");
	fflush(run->out);
}

/* Index of the first stable key >= key (ns when there is none). */
static size_t stable_lower(const struct run *run, uint64_t key)
{
	return ds_lower_bound(run->stable, run->ns, key);
}

static bool is_stable(const struct run *run, uint64_t key)
{
	size_t i = stable_lower(run, key);

	return i < run->ns && run->stable[i] == key;
}

/* ---------------------------------------------------------------- readers */

#define RFAIL(rd, kind, ...)                                    \
	do {                                                    \
		(rd)->failures[(kind)]++;                       \
		report((rd)->run, (rd)->who, __VA_ARGS__);      \
	} while (0)

/* A probe for lower bounds and seeks: exactly on, just before and just
 * after stable keys (the boundaries a reader must not step over), volatile
 * keys, anything, and the ends of the key space. */
static uint64_t pick_probe(struct reader *rd)
{
	const struct run *run = rd->run;
	uint64_t r = below(&rd->rng, 100);

	if (r < 25)
		return run->stable[below(&rd->rng, run->ns)];
	if (r < 45)
		return run->stable[below(&rd->rng, run->ns)] + 1;
	if (r < 55)
		return run->stable[below(&rd->rng, run->ns)] - 1;
	if (r < 80)
		return run->vk[below(&rd->rng, run->nv)];
	if (r < 95)
		return ds_rng_next(&rd->rng);
	switch (below(&rd->rng, 4)) {
	case 0:
		return 0;
	case 1:
		return UINT64_MAX;
	case 2:
		return run->stable[0];
	default:
		return run->stable[run->ns - 1] + 1;
	}
}

/* (a) A stable key: present, exact payload.  Sometimes without asking for
 * the payload (the NULL path of alex_lookup). */
static void check_lookup_stable(struct reader *rd)
{
	const struct run *run = rd->run;
	uint64_t k = run->stable[below(&rd->rng, run->ns)], v = 0;
	bool want_v = (ds_rng_next(&rd->rng) & 7) != 0;
	bool found = alex_lookup(run->t, k, want_v ? &v : NULL);

	rd->checks[RWT_LOOKUP_STABLE]++;
	if (!found)
		RFAIL(rd, RWT_LOOKUP_STABLE, "lookup of stable key %#" PRIx64 ": not found", k);
	else if (want_v && v != rwt_payload(k, 0))
		RFAIL(rd, RWT_LOOKUP_STABLE,
		      "lookup of stable key %#" PRIx64 ": payload %#" PRIx64 ", want %#" PRIx64, k,
		      v, rwt_payload(k, 0));
}

/* (b) A volatile, neighbouring or random key: whatever is found must have
 * been written for that key; a stable key hit by chance must be there. */
static void check_lookup_other(struct reader *rd)
{
	const struct run *run = rd->run;
	uint64_t r = below(&rd->rng, 10), k, v = 0;
	bool found;

	if (r < 6)
		k = run->vk[below(&rd->rng, run->nv)];
	else if (r < 8)
		k = run->stable[below(&rd->rng, run->ns)] + (r == 6 ? 1 : (uint64_t)-1);
	else
		k = ds_rng_next(&rd->rng);
	found = alex_lookup(run->t, k, &v);
	rd->checks[RWT_LOOKUP_OTHER]++;
	if (is_stable(run, k)) {
		if (!found || v != rwt_payload(k, 0))
			RFAIL(rd, RWT_LOOKUP_OTHER,
			      "lookup of stable key %#" PRIx64 ": %s %#" PRIx64 ", want %#" PRIx64, k,
			      found ? "payload" : "not found", v, rwt_payload(k, 0));
		return;
	}
	if (!found)
		return;
	rd->other_found++;
	if (!rwt_payload_ok(k, v))
		RFAIL(rd, RWT_LOOKUP_OTHER,
		      "lookup of volatile key %#" PRIx64 ": payload %#" PRIx64
		      " was not written for it (tag %#" PRIx64 ")", k, v, rwt_payload(k, 0));
}

/* (c) Lower bound: never below the probe, never past the first stable key
 * at or above it, a payload written for the key returned. */
static void check_lower_bound(struct reader *rd)
{
	const struct run *run = rd->run;
	uint64_t k = pick_probe(rd), f = 0, v = 0;
	size_t si = stable_lower(run, k);
	bool found = alex_lower_bound(run->t, k, &f, &v);

	rd->checks[RWT_LOWER_BOUND]++;
	if (!found) {
		if (si < run->ns)
			RFAIL(rd, RWT_LOWER_BOUND,
			      "lower_bound(%#" PRIx64 "): none, but stable key %#" PRIx64 " >= it", k,
			      run->stable[si]);
		return;
	}
	if (f < k)
		RFAIL(rd, RWT_LOWER_BOUND, "lower_bound(%#" PRIx64 ") = %#" PRIx64 ", below the probe",
		      k, f);
	else if (si < run->ns && f > run->stable[si])
		RFAIL(rd, RWT_LOWER_BOUND,
		      "lower_bound(%#" PRIx64 ") = %#" PRIx64 " skips stable key %#" PRIx64, k, f,
		      run->stable[si]);
	else if (si < run->ns && f == run->stable[si] ? v != rwt_payload(f, 0)
	                                             : !rwt_payload_ok(f, v))
		RFAIL(rd, RWT_LOWER_BOUND,
		      "lower_bound(%#" PRIx64 ") = %#" PRIx64 " with payload %#" PRIx64
		      ", want %#" PRIx64 "%s", k, f, v, rwt_payload(f, 0),
		      si < run->ns && f == run->stable[si] ? "" : " (tag)");
}

/* Where an iteration stands against the stable keys. */
struct walk {
	size_t j;          /* next stable key the iteration must return */
	uint64_t last;     /* last key returned                          */
	bool have_last;
	bool ended;        /* alex_iter_next returned false              */
	bool failed;       /* one failure recorded; the walk stopped     */
};

/*
 * Take up to max keys from an iterator seeked at from.  Each key must be
 * >= from, above the last one (also across the chunks of a full scan), and
 * carry a payload written for it; stable keys between from and the key
 * returned must all have come out.  Stops at the first failure (one per
 * walk: one broken iteration is one failed check, not thousands).
 */
static void walk_iter(struct reader *rd, enum rwt_kind kind, alex_iter *it, uint64_t from,
                      uint64_t max, struct walk *w)
{
	const struct run *run = rd->run;
	uint64_t k, v;

	for (uint64_t n = 0; n < max; n++) {
		if (!alex_iter_next(it, &k, &v)) {
			w->ended = true;
			return;
		}
		rd->keys_iterated++;
		if (k < from || (w->have_last && k <= w->last)) {
			RFAIL(rd, kind, "iteration from %#" PRIx64 ": key %#" PRIx64 " after %#" PRIx64
			      "%s", from, k, w->have_last ? w->last : from,
			      k < from ? " is below the seek key" : " (not ascending)");
			w->failed = true;
			return;
		}
		if (w->j < run->ns && run->stable[w->j] < k) {
			RFAIL(rd, kind, "iteration from %#" PRIx64 ": stable key %#" PRIx64
			      " missing between %#" PRIx64 " and %#" PRIx64, from, run->stable[w->j],
			      w->have_last ? w->last : from, k);
			w->failed = true;
			return;
		}
		if (w->j < run->ns && run->stable[w->j] == k) {
			w->j++;
			if (v != rwt_payload(k, 0)) {
				RFAIL(rd, kind, "iteration from %#" PRIx64 ": stable key %#" PRIx64
				      " with payload %#" PRIx64 ", want %#" PRIx64, from, k, v,
				      rwt_payload(k, 0));
				w->failed = true;
				return;
			}
		} else if (!rwt_payload_ok(k, v)) {
			RFAIL(rd, kind, "iteration from %#" PRIx64 ": key %#" PRIx64 " with payload %#"
			      PRIx64 " not written for it", from, k, v);
			w->failed = true;
			return;
		}
		w->last = k;
		w->have_last = true;
	}
}

/* (d) A short iteration from a probe. */
static void check_seek(struct reader *rd)
{
	const struct run *run = rd->run;
	uint64_t k = pick_probe(rd), steps = 1 + below(&rd->rng, run->seek_steps);
	struct walk w = { .j = stable_lower(run, k) };
	alex_iter it;

	rd->checks[RWT_SEEK]++;
	alex_iter_seek(run->t, k, &it);
	walk_iter(rd, RWT_SEEK, &it, k, steps, &w);
	if (!w.failed && w.ended && w.j < run->ns)
		RFAIL(rd, RWT_SEEK, "iteration from %#" PRIx64 " ended after %#" PRIx64
		      ", before stable key %#" PRIx64, k, w.have_last ? w.last : k,
		      run->stable[w.j]);
}

/* alex_size, alex_memory_bytes and alex_get_stats from a reader: recent
 * values, but never fewer keys than the stable ones nor more than every
 * key of the run. */
static void check_size(struct reader *rd, bool stats)
{
	const struct run *run = rd->run;
	uint64_t n = alex_size(run->t);
	size_t bytes = alex_memory_bytes(run->t);

	rd->checks[RWT_SIZE]++;
	if (n < run->ns || n > run->ns + run->nv)
		RFAIL(rd, RWT_SIZE, "alex_size %" PRIu64 " outside [%zu, %zu]", n, run->ns,
		      run->ns + run->nv);
	if (bytes == 0)
		RFAIL(rd, RWT_SIZE, "alex_memory_bytes is 0");
	if (stats) {
		alex_stats st;

		alex_get_stats(run->t, &st);
		if (st.keys < run->ns || st.leaves == 0)
			RFAIL(rd, RWT_SIZE, "alex_get_stats: %" PRIu64 " keys, %" PRIu64 " leaves",
			      st.keys, st.leaves);
	}
}

/* One iteration: one read-side section holding a stable lookup, another
 * lookup, a lower bound and, one time in four, a short iteration. */
static void reader_iteration(struct reader *rd)
{
	orcu_read_lock();
	check_lookup_stable(rd);
	check_lookup_other(rd);
	check_lower_bound(rd);
	if ((ds_rng_next(&rd->rng) & 3) == 0)
		check_seek(rd);
	if ((rd->iters & 63) == 0)
		check_size(rd, (rd->iters & 1023) == 0);
	orcu_read_unlock();
	rd->sections++;
}

/* (e) The whole tree, RWT_SCAN_CHUNK keys per read-side section.  Abandoned
 * (not counted) when the run stops half-way. */
static void full_scan(struct reader *rd)
{
	const struct run *run = rd->run;
	struct walk w = { .j = 0 };
	uint64_t from = 0;
	alex_iter it;

	for (;;) {
		if (atomic_load_explicit(&run->stop, memory_order_acquire))
			return;
		orcu_read_lock();
		alex_iter_seek(run->t, from, &it);
		walk_iter(rd, RWT_FULL_SCAN, &it, from, RWT_SCAN_CHUNK, &w);
		orcu_read_unlock();
		rd->sections++;
		if (w.failed || w.ended || (w.have_last && w.last == UINT64_MAX))
			break;
		/* A chunk returns RWT_SCAN_CHUNK > 0 keys unless it ended. */
		from = w.last + 1;
	}
	rd->checks[RWT_FULL_SCAN]++;
	if (!w.failed && w.j < run->ns)
		RFAIL(rd, RWT_FULL_SCAN, "full scan ended after %#" PRIx64 " without stable key %#"
		      PRIx64 " (%zu of %zu stable keys seen)", w.have_last ? w.last : 0,
		      run->stable[w.j], w.j, run->ns);
	rd->scans++;
	atomic_store_explicit(&rd->scans_done, rd->scans, memory_order_relaxed);
}

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	struct run *run = rd->run;

	pthread_barrier_wait(&run->start);
	while (!atomic_load_explicit(&run->stop, memory_order_acquire)) {
		/* The first full scan comes early, half-way through the first
		 * period, so that short runs still make one. */
		if (run->full_scan_every &&
		    rd->iters % run->full_scan_every == run->full_scan_every / 2)
			full_scan(rd);
		else
			reader_iteration(rd);
		rd->iters++;
		if ((rd->iters & 63) == 0)
			atomic_store_explicit(&rd->progress, rd->iters, memory_order_relaxed);
	}
	atomic_store_explicit(&rd->progress, rd->iters, memory_order_relaxed);
	return NULL;
}

/* ------------------------------------------------------ ephemeral threads */

/*
 * A thread that never touched RCU before: its first orcu_read_lock must
 * register it, and its exit must unregister it (the spawner's
 * orcu_synchronize afterwards, and every later grace period of the writer,
 * would otherwise wait on, or read, a dead thread's state).
 */
static void *ephemeral_main(void *arg)
{
	struct reader *rd = arg;

	if (orcu_online || orcu_read_held())
		RFAIL(rd, RWT_EPHEMERAL, "a new thread is already registered with RCU");
	orcu_read_lock();
	if (!orcu_read_held())
		RFAIL(rd, RWT_EPHEMERAL, "orcu_read_lock did not enter a read-side section");
	for (int i = 0; i < 8; i++)
		check_lookup_stable(rd);
	check_lower_bound(rd);
	check_seek(rd);
	orcu_read_unlock();
	return NULL;
}

struct spawner {
	struct run *run;
	uint64_t done, checks, failures, keys_iterated;
	bool grace;
};

/* Start the ephemeral threads a few at a time, spread over the run so that
 * they register and unregister while the writer retires nodes. */
static void *spawner_main(void *arg)
{
	struct spawner *sp = arg;
	struct run *run = sp->run;
	unsigned total = run->c->ephemeral_threads;
	struct reader *eph = aligned_alloc(64, 4 * sizeof(struct reader));

	if (eph == NULL)
		TEST_DIE("rwtorture: out of memory");
	pthread_barrier_wait(&run->start);
	while (sp->done < total && !atomic_load_explicit(&run->stop, memory_order_acquire)) {
		unsigned wave = total - sp->done < 4 ? (unsigned)(total - sp->done) : 4;
		pthread_t tid[4];
		struct timespec pause = { 0, 2000000 };

		for (unsigned i = 0; i < wave; i++) {
			memset(&eph[i], 0, sizeof(eph[i]));
			eph[i].run = run;
			snprintf(eph[i].who, sizeof(eph[i].who), "ephemeral %" PRIu64, sp->done + i);
			ds_rng_seed(&eph[i].rng, run->seed ^ ((sp->done + i + 1) * UINT64_C(0xa0761d6478bd642f)));
			if (pthread_create(&tid[i], NULL, ephemeral_main, &eph[i]) != 0)
				TEST_DIE("rwtorture: pthread_create failed");
		}
		for (unsigned i = 0; i < wave; i++) {
			pthread_join(tid[i], NULL);
			sp->checks++;
			sp->keys_iterated += eph[i].keys_iterated;
			for (int k = 0; k < RWT_NKINDS; k++)
				sp->failures += eph[i].failures[k];
		}
		sp->done += wave;
		nanosleep(&pause, NULL);
	}
	/* Every ephemeral thread has exited: a grace period must now complete
	 * without them (this hangs if one stayed registered). */
	orcu_synchronize();
	sp->grace = true;
	free(eph);
	atomic_store_explicit(&run->eph_done, true, memory_order_release);
	return NULL;
}

/* ---------------------------------------------------------------- writer */

struct writer {
	struct run *run;
	ds_rng rng;
	uint8_t *present;       /* per volatile key: in the tree now      */
	uint32_t *gen;          /* per volatile key: generation last put  */
	size_t npresent;
	uint64_t gen_next;
	alex_op *ops;           /* batch under construction               */
	size_t *opidx;          /* volatile index of each op              */
	uint64_t steps, inserts, deletes, batches, batch_ops, outer_ops, checks, failures;
	bool starved;
	char who[48];
};

#define WFAIL(w, ...)                                           \
	do {                                                    \
		(w)->failures++;                                \
		snprintf((w)->who, sizeof((w)->who), "writer step %" PRIu64, (w)->steps); \
		report((w)->run, (w)->who, __VA_ARGS__);        \
	} while (0)

/* A new generation, never 0 (0 marks bulk-loaded payloads). */
static uint32_t next_gen(struct writer *w)
{
	w->gen_next = w->gen_next % RWT_GEN_MASK + 1;
	return (uint32_t)w->gen_next;
}

/* The tree must hold exactly what the writer believes about key i. */
static void writer_verify(struct writer *w, size_t i, const char *after)
{
	uint64_t k = w->run->vk[i], v = 0;
	bool found = alex_writer_lookup(w->run->t, k, &v);

	if (found != (bool)w->present[i] || (found && v != rwt_payload(k, w->gen[i])))
		WFAIL(w, "after %s of %#" PRIx64 ": writer lookup %s %#" PRIx64 ", want %s %#" PRIx64,
		      after, k, found ? "finds" : "misses", v, w->present[i] ? "present" : "absent",
		      w->present[i] ? rwt_payload(k, w->gen[i]) : 0);
}

static void writer_insert(struct writer *w, size_t i)
{
	uint64_t k = w->run->vk[i];
	uint32_t g = next_gen(w);
	int rc = alex_insert(w->run->t, k, rwt_payload(k, g));
	int want = w->present[i] ? 0 : 1;

	w->inserts++;
	if (rc != want)
		WFAIL(w, "alex_insert(%#" PRIx64 ") returned %d, want %d", k, rc, want);
	if (rc >= 0) {
		w->npresent += !w->present[i];
		w->present[i] = 1;
		w->gen[i] = g;
	}
	writer_verify(w, i, "insert");
}

static void writer_delete(struct writer *w, size_t i)
{
	uint64_t k = w->run->vk[i];
	int rc = alex_delete(w->run->t, k);
	int want = w->present[i] ? 1 : 0;

	w->deletes++;
	if (rc != want)
		WFAIL(w, "alex_delete(%#" PRIx64 ") returned %d, want %d", k, rc, want);
	if (rc == 1) {
		w->npresent -= w->present[i];
		w->present[i] = 0;
	}
	writer_verify(w, i, "delete");
}

/* An outer key, from the frontier: one more key per side becomes reachable
 * every 16 outer operations, so the root domain widens step by step. */
static size_t writer_pick_outer(struct writer *w, bool low)
{
	const struct run *run = w->run;
	size_t n = low ? run->nlo : run->nhi, base = low ? run->nmid : run->nmid + run->nlo;
	uint64_t lim = 1 + w->outer_ops / 16;

	w->outer_ops++;
	return base + (size_t)below(&w->rng, lim < n ? lim : n);
}

static void push_op(struct writer *w, size_t *n, size_t i, unsigned put_pct)
{
	alex_op *op = &w->ops[*n];

	op->key = w->run->vk[i];
	op->kind = below(&w->rng, 100) < put_pct ? ALEX_OP_PUT : ALEX_OP_DEL;
	op->payload = op->kind == ALEX_OP_PUT ? rwt_payload(op->key, next_gen(w)) : 0;
	w->opidx[*n] = i;
	(*n)++;
}

/*
 * A sorted batch: a run of volatile keys from a random place, dense (stride
 * 1, one leaf) or sparse (several leaves), with repeated keys (the later op
 * wins) and now and then an outer key at either end.  The counts it
 * reports are compared with the writer's own replay of the ops in order.
 */
static void writer_batch(struct writer *w, unsigned put_pct)
{
	const struct run *run = w->run;
	uint64_t len = 1 + below(&w->rng, run->max_batch);
	uint64_t stride = 1 + below(&w->rng, 8);
	size_t i = (size_t)below(&w->rng, run->nmid), n = 0;
	alex_batch_result res, want = { 0, 0, 0, 0 };
	int rc;

	if (run->nlo && below(&w->rng, 10) == 0)
		push_op(w, &n, writer_pick_outer(w, true), put_pct);
	for (uint64_t m = 0; m < len; m++) {
		if (m > 0 && below(&w->rng, 10) != 0) {
			i += 1 + (size_t)below(&w->rng, stride);
			if (i >= run->nmid)
				break;
		}
		/* else: the same key again (m == 0: the first one). */
		push_op(w, &n, i, put_pct);
	}
	if (run->nhi && below(&w->rng, 10) == 0)
		push_op(w, &n, writer_pick_outer(w, false), put_pct);

	memset(&res, 0xff, sizeof(res));
	rc = alex_apply_batch(run->t, w->ops, n, &res);
	w->batches++;
	w->batch_ops += n;
	if (rc < 0)
		WFAIL(w, "alex_apply_batch of %zu ops from %#" PRIx64 " returned %d", n, w->ops[0].key,
		      rc);
	for (size_t m = 0; m < n; m++) {
		size_t vi = w->opidx[m];

		if (w->ops[m].kind == ALEX_OP_PUT) {
			if (w->present[vi])
				want.updated++;
			else
				want.inserted++;
			w->npresent += !w->present[vi];
			w->present[vi] = 1;
			w->gen[vi] = (uint32_t)(w->ops[m].payload & RWT_GEN_MASK);
		} else {
			if (w->present[vi])
				want.deleted++;
			else
				want.absent++;
			w->npresent -= w->present[vi];
			w->present[vi] = 0;
		}
	}
	if (rc >= 0 && (res.inserted != want.inserted || res.updated != want.updated ||
	                res.deleted != want.deleted || res.absent != want.absent))
		WFAIL(w, "alex_apply_batch of %zu ops from %#" PRIx64 ": inserted/updated/deleted/"
		      "absent %" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64 ", want %" PRIu64 "/%"
		      PRIu64 "/%" PRIu64 "/%" PRIu64, n, w->ops[0].key, res.inserted, res.updated,
		      res.deleted, res.absent, want.inserted, want.updated, want.deleted,
		      want.absent);
	/* Each key once, after its last op (repeats are adjacent). */
	for (size_t m = 0; m < n; m++)
		if (m + 1 == n || w->opidx[m + 1] != w->opidx[m])
			writer_verify(w, w->opidx[m], "batch");
}

/*
 * One step.  Growing and shrinking phases alternate (90% / 10% puts), so
 * the volatile population swings between about a tenth and nine tenths of
 * its keys: leaves expand and split on the way up and contract on the
 * way down.
 */
static void writer_step(struct writer *w)
{
	const struct run *run = w->run;
	unsigned put_pct = (w->steps / run->phase_len) % 2 == 0 ? 90 : 10;
	uint64_t r = below(&w->rng, 1000);

	if (r < 30 && run->nlo + run->nhi > 0) {
		bool low = run->nlo && (!run->nhi || (r & 1));
		size_t i = writer_pick_outer(w, low);

		if (r % 3 != 2)
			writer_insert(w, i);
		else
			writer_delete(w, i);
	} else if (r < 150) {
		writer_batch(w, put_pct);
	} else if (below(&w->rng, 100) < put_pct) {
		writer_insert(w, (size_t)below(&w->rng, run->nmid));
	} else {
		writer_delete(w, (size_t)below(&w->rng, run->nmid));
	}
	w->steps++;
}

static void writer_check(struct writer *w, const char *when)
{
	const struct run *run = w->run;
	char msg[256] = "";
	uint64_t n;

	w->checks++;
	if (alex_check(run->t, msg, sizeof(msg)) != 0)
		WFAIL(w, "alex_check %s: %s", when, msg);
	n = alex_size(run->t);
	if (n != run->ns + w->npresent)
		WFAIL(w, "alex_size %s: %" PRIu64 ", want %zu", when, n, run->ns + w->npresent);
}

/* True when every reader has done its quota and the ephemeral threads are
 * through: the writer may stop. */
static bool readers_satisfied(struct run *run)
{
	for (unsigned i = 0; i < run->nreaders; i++) {
		struct reader *rd = &run->rd[i];

		if (atomic_load_explicit(&rd->progress, memory_order_relaxed) <
		            run->c->min_reader_iters ||
		    (run->full_scan_every &&
		     atomic_load_explicit(&rd->scans_done, memory_order_relaxed) == 0))
			return false;
	}
	return !run->spawner || atomic_load_explicit(&run->eph_done, memory_order_acquire);
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct run *run = w->run;
	const rwt_config *c = run->c;
	double t0, over_at = 0;
	bool over = false;

	pthread_barrier_wait(&run->start);
	t0 = now_sec();
	for (;;) {
		if (!over && ((c->writer_steps && w->steps >= c->writer_steps) ||
		              (c->seconds > 0 && (w->steps & 255) == 0 && now_sec() - t0 >= c->seconds))) {
			over = true;
			over_at = now_sec();
		}
		/* Past the budget: keep the readers company until they have
		 * done their share, within reason. */
		if (over && (w->steps & 63) == 0) {
			if (readers_satisfied(run))
				break;
			if (now_sec() - over_at > c->linger_seconds) {
				w->starved = true;
				break;
			}
		}
		writer_step(w);
		if (w->steps % run->check_every == 0)
			writer_check(w, "during the run");
	}
	writer_check(w, "at the end of the run");
	atomic_store_explicit(&run->stop, true, memory_order_release);
	return NULL;
}

/* ---------------------------------------------------------------- keys */

struct keysets {
	uint64_t *stable;
	size_t ns;
	uint64_t *vk;
	size_t nmid, nlo, nhi;
};

static void build_keys(const rwt_config *c, struct keysets *ks)
{
	size_t want_s = c->stable_keys, want_v = c->volatile_keys ? c->volatile_keys : 4 * want_s;
	size_t n = want_s + want_v, ns_want, nm = 0, nvk;
	uint64_t *pool = xmalloc(n * sizeof(*pool)), *mid, lo, hi;
	ds_rng rng;

	ds_rng_seed(&rng, c->seed ^ UINT64_C(0x6b65797365747321));
	ds_generate(c->dist, c->seed, pool, n);
	n = ds_sort_unique(pool, n);
	/* Leave room around the pool for root growth (see the top): keep the
	 * low 61 bits, so that dense runs stay dense, and fold the rest. */
	if (pool[n - 1] >= UINT64_C(1) << 62) {
		for (size_t i = 0; i < n; i++)
			pool[i] = UINT64_C(1) << 61 | (pool[i] & ((UINT64_C(1) << 61) - 1));
		n = ds_sort_unique(pool, n);
	}
	lo = pool[0];
	hi = pool[n - 1];

	/* Selection sampling: exactly ns_want stable keys, a uniform random
	 * subset, so the volatile ones interleave with them everywhere. */
	ns_want = (size_t)((double)n * (double)want_s / (double)(want_s + want_v));
	if (ns_want < 1)
		ns_want = 1;
	if (ns_want > n - 1)
		ns_want = n - 1;
	ks->stable = xmalloc(ns_want * sizeof(uint64_t));
	/* Room for the non-stable pool keys and two neighbours per stable key
	 * one time in eight. */
	mid = xmalloc((n + ns_want / 4 + 2) * sizeof(uint64_t));
	ks->ns = 0;
	for (size_t i = 0; i < n; i++) {
		if (below(&rng, n - i) < ns_want - ks->ns)
			ks->stable[ks->ns++] = pool[i];
		else
			mid[nm++] = pool[i];
	}
	for (size_t i = 0; i < ks->ns; i++) {
		uint64_t s = ks->stable[i];

		if (below(&rng, 8) != 0)
			continue;
		/* Inside [lo, hi] only: the outer keys stay apart from them. */
		if (s > lo)
			mid[nm++] = s - 1;
		if (s < hi)
			mid[nm++] = s + 1;
	}
	nm = ds_sort_unique(mid, nm);
	/* Drop the neighbours that are stable keys themselves. */
	{
		size_t j = 0, m = 0;

		for (size_t i = 0; i < nm; i++) {
			while (j < ks->ns && ks->stable[j] < mid[i])
				j++;
			if (j < ks->ns && ks->stable[j] == mid[i])
				continue;
			mid[m++] = mid[i];
		}
		nm = m;
	}

	/* Outer keys: one per power-of-two distance on each side, within
	 * [2^e, 2^(e+1)) of the pool's ends, closest first, then the very ends
	 * of the key space.  The distance classes are disjoint, so the keys
	 * are distinct. */
	nvk = nm + 2 * 65;
	ks->vk = xmalloc(nvk * sizeof(uint64_t));
	memcpy(ks->vk, mid, nm * sizeof(uint64_t));
	ks->nmid = nm;
	ks->nlo = ks->nhi = 0;
	for (unsigned e = 0; e < 63; e++) {
		uint64_t span = UINT64_C(1) << e;

		if ((lo >> (e + 1)) == 0)
			break;
		ks->vk[nm + ks->nlo++] = lo - span - below(&rng, span);
	}
	if (lo > 0)
		ks->vk[nm + ks->nlo++] = 0;
	for (unsigned e = 0; e < 63; e++) {
		uint64_t span = UINT64_C(1) << e;

		if (((UINT64_MAX - hi) >> (e + 1)) == 0)
			break;
		ks->vk[nm + ks->nlo + ks->nhi++] = hi + span + below(&rng, span);
	}
	if (hi < UINT64_MAX)
		ks->vk[nm + ks->nlo + ks->nhi++] = UINT64_MAX;
	free(mid);
	free(pool);
}

/* Index of a volatile key, or SIZE_MAX. */
static size_t vol_index(const struct run *run, uint64_t key)
{
	size_t lo = ds_lower_bound(run->vk, run->nmid, key);

	if (lo < run->nmid && run->vk[lo] == key)
		return lo;
	for (size_t i = run->nmid; i < run->nv; i++)
		if (run->vk[i] == key)
			return i;
	return SIZE_MAX;
}

/* ---------------------------------------------------------- final checks */

/*
 * After the join, with no writer: the tree is the stable keys plus exactly
 * the volatile keys the writer left present, each with its last payload.
 * Walked in chunks of read-side sections like a reader would.
 */
static uint64_t final_checks(struct run *run, const struct writer *w, rwt_result *r)
{
	uint64_t bad = 0, k, v, seen = 0;
	size_t j = 0, npres = 0;
	uint64_t from = 0, last = 0;
	bool have_last = false, ended = false;
	char msg[256] = "";
	alex_iter it;

	if (alex_check(run->t, msg, sizeof(msg)) != 0) {
		bad++;
		report(run, "final", "alex_check: %s", msg);
	}
	for (size_t i = 0; i < run->nv; i++)
		npres += w->present[i];
	if (alex_size(run->t) != run->ns + npres) {
		bad++;
		report(run, "final", "alex_size %" PRIu64 ", want %zu", alex_size(run->t),
		       run->ns + npres);
	}
	/* Every stable key by lookup. */
	for (size_t i = 0; i < run->ns; i++) {
		bool found;

		if (i % 4096 == 0)
			orcu_read_lock();
		found = alex_lookup(run->t, run->stable[i], &v);
		if (i % 4096 == 4095 || i + 1 == run->ns)
			orcu_read_unlock();
		if (!found || v != rwt_payload(run->stable[i], 0)) {
			bad++;
			report(run, "final", "stable key %#" PRIx64 ": %s %#" PRIx64 ", want %#" PRIx64,
			       run->stable[i], found ? "payload" : "missing", v,
			       rwt_payload(run->stable[i], 0));
		}
	}
	/* The exact contents, in order. */
	while (!ended) {
		orcu_read_lock();
		alex_iter_seek(run->t, from, &it);
		for (unsigned n = 0; n < RWT_SCAN_CHUNK; n++) {
			size_t vi;
			uint64_t want;

			if (!alex_iter_next(&it, &k, &v)) {
				ended = true;
				break;
			}
			seen++;
			if (have_last && k <= last) {
				bad++;
				report(run, "final", "iteration: %#" PRIx64 " after %#" PRIx64, k, last);
				ended = true;
				break;
			}
			last = k;
			have_last = true;
			while (j < run->ns && run->stable[j] < k) {
				bad++;
				report(run, "final", "iteration: stable key %#" PRIx64 " missing",
				       run->stable[j]);
				j++;
			}
			if (j < run->ns && run->stable[j] == k) {
				j++;
				want = rwt_payload(k, 0);
			} else if ((vi = vol_index(run, k)) != SIZE_MAX && w->present[vi]) {
				want = rwt_payload(k, w->gen[vi]);
			} else {
				bad++;
				report(run, "final", "iteration: key %#" PRIx64 " should not be there%s", k,
				       vi == SIZE_MAX ? " (never written)" : " (deleted)");
				continue;
			}
			if (v != want) {
				bad++;
				report(run, "final", "iteration: key %#" PRIx64 " payload %#" PRIx64
				       ", want %#" PRIx64, k, v, want);
			}
		}
		orcu_read_unlock();
		if (!ended && last == UINT64_MAX)
			ended = true;
		from = last + 1;
	}
	if (j < run->ns) {
		bad++;
		report(run, "final", "iteration: %zu stable keys missing from %#" PRIx64,
		       run->ns - j, run->stable[j]);
	}
	if (seen != run->ns + npres) {
		bad++;
		report(run, "final", "iteration: %" PRIu64 " keys, want %zu", seen, run->ns + npres);
	}
	r->final_keys = seen;
	return bad;
}

/* ---------------------------------------------------------------- run */

int rwt_run(const rwt_config *c, rwt_result *r)
{
	struct keysets ks;
	struct run run;
	struct writer w;
	struct spawner sp;
	uint64_t *lkeys, *lvals;
	size_t nload = 0, j = 0;
	pthread_t wtid, sptid, *rtid;
	double t0;
	int rc;

	memset(r, 0, sizeof(*r));
	/* Without a budget the writer would never stop. */
	if (c->readers < 1 || c->stable_keys < 1 || c->seek_steps < 1 || c->max_batch < 1 ||
	    (c->writer_steps == 0 && !(c->seconds > 0)))
		return -EINVAL;

	build_keys(c, &ks);
	memset(&run, 0, sizeof(run));
	memset(&w, 0, sizeof(w));
	run.c = c;
	run.name = c->name ? c->name : "rwtorture";
	run.seed = c->seed;
	run.out = c->out ? c->out : stdout;
	run.stable = ks.stable;
	run.ns = ks.ns;
	run.vk = ks.vk;
	run.nmid = ks.nmid;
	run.nlo = ks.nlo;
	run.nhi = ks.nhi;
	run.nv = ks.nmid + ks.nlo + ks.nhi;
	run.full_scan_every = c->full_scan_every ? c->full_scan_every : 50 + run.ns / 1000;
	run.check_every = c->check_every ? c->check_every : 2000 + (run.ns + run.nv) / 16;
	/* A step changes about 5 keys (batches average 32 ops), so half a
	 * phase of nmid / 2 steps gets the population most of the way to its
	 * new level (about 1 - e^-2.4). */
	run.phase_len = run.nmid / 2 > 1000 ? run.nmid / 2 : 1000;
	run.seek_steps = c->seek_steps;
	run.max_batch = c->max_batch;
	run.nreaders = c->readers;
	run.spawner = c->ephemeral_threads > 0;
	atomic_init(&run.stop, false);
	atomic_init(&run.eph_done, false);
	atomic_init(&run.printed, 0);
	r->stable_keys = run.ns;
	r->volatile_keys = run.nmid;
	r->outer_keys = run.nlo + run.nhi;
	if (run.nmid == 0) {
		rc = -EINVAL;
		goto out;
	}

	/* The writer's state; one middle volatile key in 16 starts present. */
	w.run = &run;
	ds_rng_seed(&w.rng, c->seed ^ UINT64_C(0x5772697465722121));
	w.present = xcalloc(run.nv, 1);
	w.gen = xcalloc(run.nv, sizeof(uint32_t));
	w.ops = xmalloc((c->max_batch + 2) * sizeof(alex_op));
	w.opidx = xmalloc((c->max_batch + 2) * sizeof(size_t));
	lkeys = xmalloc((run.ns + run.nmid) * sizeof(uint64_t));
	lvals = xmalloc((run.ns + run.nmid) * sizeof(uint64_t));
	for (size_t i = 0; i < run.nmid; i++)
		w.present[i] = below(&w.rng, 16) == 0;
	for (size_t i = 0; i < run.ns || j < run.nmid;) {
		if (j < run.nmid && !w.present[j]) {
			j++;
		} else if (i < run.ns && (j == run.nmid || run.stable[i] < run.vk[j])) {
			lkeys[nload] = run.stable[i++];
			lvals[nload] = rwt_payload(lkeys[nload], 0);
			nload++;
		} else {
			lkeys[nload] = run.vk[j++];
			lvals[nload] = rwt_payload(lkeys[nload], 0);
			nload++;
			w.npresent++;
		}
	}

	rc = alex_create(&c->alex, &run.t);
	if (rc == 0) {
		rc = alex_bulk_load(run.t, lkeys, lvals, nload);
		if (rc != 0) {
			alex_destroy(run.t);
			run.t = NULL;
		}
	}
	free(lkeys);
	free(lvals);
	if (rc != 0)
		goto out;

	run.rd = aligned_alloc(64, c->readers * sizeof(struct reader));
	rtid = xcalloc(c->readers, sizeof(pthread_t));
	if (run.rd == NULL)
		TEST_DIE("rwtorture: out of memory");
	memset(run.rd, 0, c->readers * sizeof(struct reader));
	for (unsigned i = 0; i < c->readers; i++) {
		struct reader *rd = &run.rd[i];

		rd->run = &run;
		snprintf(rd->who, sizeof(rd->who), "reader %u", i);
		ds_rng_seed(&rd->rng, c->seed ^ ((i + 1) * UINT64_C(0x9e3779b97f4a7c15)));
		atomic_init(&rd->progress, 0);
		atomic_init(&rd->scans_done, 0);
	}
	memset(&sp, 0, sizeof(sp));
	sp.run = &run;

	if (pthread_barrier_init(&run.start, NULL, 1 + c->readers + (run.spawner ? 1 : 0)) != 0)
		TEST_DIE("rwtorture: pthread_barrier_init failed");
	t0 = now_sec();
	for (unsigned i = 0; i < c->readers; i++)
		if (pthread_create(&rtid[i], NULL, reader_main, &run.rd[i]) != 0)
			TEST_DIE("rwtorture: pthread_create failed");
	if (run.spawner && pthread_create(&sptid, NULL, spawner_main, &sp) != 0)
		TEST_DIE("rwtorture: pthread_create failed");
	if (pthread_create(&wtid, NULL, writer_main, &w) != 0)
		TEST_DIE("rwtorture: pthread_create failed");
	pthread_join(wtid, NULL);
	for (unsigned i = 0; i < c->readers; i++)
		pthread_join(rtid[i], NULL);
	if (run.spawner)
		pthread_join(sptid, NULL);
	r->seconds = now_sec() - t0;
	pthread_barrier_destroy(&run.start);

	for (unsigned i = 0; i < c->readers; i++) {
		const struct reader *rd = &run.rd[i];

		for (int k = 0; k < RWT_NKINDS; k++) {
			r->checks[k] += rd->checks[k];
			r->failures[k] += rd->failures[k];
		}
		r->reader_iters += rd->iters;
		r->sections += rd->sections;
		r->other_found += rd->other_found;
		r->keys_iterated += rd->keys_iterated;
	}
	r->checks[RWT_EPHEMERAL] = sp.checks;
	r->failures[RWT_EPHEMERAL] = sp.failures;
	r->keys_iterated += sp.keys_iterated;
	r->ephemeral_done = sp.done;
	r->grace_after_ephemeral = sp.grace;
	r->writer_steps = w.steps;
	r->inserts = w.inserts;
	r->deletes = w.deletes;
	r->batches = w.batches;
	r->batch_ops = w.batch_ops;
	r->outer_ops = w.outer_ops;
	r->writer_checks = w.checks;
	r->writer_failures = w.failures;
	r->starved = w.starved;

	r->final_failures = final_checks(&run, &w, r);
	/* The deferred frees of retired nodes have run once this returns, so
	 * the counters are final. */
	orcu_barrier();
	orcu_read_lock();
	alex_get_stats(run.t, &r->stats);
	orcu_read_unlock();
	alex_destroy(run.t);

	free(run.rd);
	free(rtid);
	rc = rwt_total_failures(r) ? 1 : 0;
out:
	/* Every return after build_keys: the writer's arrays (NULL until they
	 * are made) and the key sets. */
	free(w.present);
	free(w.gen);
	free(w.ops);
	free(w.opidx);
	free(ks.stable);
	free(ks.vk);
	return rc;
}

/* ---------------------------------------------------------------- report */

void rwt_print_summary(FILE *out, const char *prefix, const rwt_config *c,
                       const rwt_result *r)
{
	const alex_stats *s = &r->stats;
	const char *name = c->name ? c->name : "rwtorture";

	fprintf(out, "%s%s: seed %" PRIu64 ", %s keys: %zu stable, %zu volatile, %zu outer; "
	        "%u readers; %.2f s\n", prefix, name, c->seed, ds_name(c->dist), r->stable_keys,
	        r->volatile_keys, r->outer_keys, c->readers, r->seconds);
	fprintf(out, "%s%s: readers: %" PRIu64 " iterations, %" PRIu64 " sections, %" PRIu64
	        " keys iterated, %" PRIu64 " volatile hits\n", prefix, name, r->reader_iters,
	        r->sections, r->keys_iterated, r->other_found);
	fprintf(out, "%s%s: checks (failures):", prefix, name);
	for (int k = 0; k < RWT_NKINDS; k++)
		fprintf(out, " %s %" PRIu64 " (%" PRIu64 ")", kind_names[k], r->checks[k],
		        r->failures[k]);
	fputc('\n', out);
	fprintf(out, "%s%s: writer: %" PRIu64 " steps: %" PRIu64 " inserts, %" PRIu64
	        " deletes, %" PRIu64 " batches of %" PRIu64 " ops, %" PRIu64 " outer; %" PRIu64
	        " alex_check; %" PRIu64 " failures%s\n", prefix, name, r->writer_steps, r->inserts,
	        r->deletes, r->batches, r->batch_ops, r->outer_ops, r->writer_checks,
	        r->writer_failures, r->starved ? "; READERS STARVED" : "");
	if (c->ephemeral_threads)
		fprintf(out, "%s%s: ephemeral threads: %" PRIu64 " of %u, grace period after: %s\n",
		        prefix, name, r->ephemeral_done, c->ephemeral_threads,
		        r->grace_after_ephemeral ? "yes" : "no");
	fprintf(out, "%s%s: final: %" PRIu64 " keys, %" PRIu64 " failures; %" PRIu64
	        " leaves, %" PRIu64 " inner, depth %u, %.1f bytes/key\n", prefix, name,
	        r->final_keys, r->final_failures, s->leaves, s->inners, s->max_depth,
	        s->keys ? (double)s->bytes / (double)s->keys : 0.0);
	fprintf(out, "%s%s: expansions %" PRIu64 ", contractions %" PRIu64 ", splits %" PRIu64
	        " sideways / %" PRIu64 " down, inner expansions %" PRIu64 ", root growths %" PRIu64
	        ", retired %" PRIu64 "\n", prefix, name, s->expansions, s->contractions,
	        s->splits_sideways, s->splits_down, s->inner_expansions, s->root_growths,
	        s->retired);
	fflush(out);
}
