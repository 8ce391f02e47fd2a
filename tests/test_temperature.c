/*
 * tests/test_temperature.c — temperature tracking and the memory budget
 * (issue 8; include/omendb.h, "Temperature and the memory budget"),
 * through the public API only (<omendb.h>, libomendb.so).
 *
 * Covered:
 *  1. options: bad temp_freq_weight, temp_hot, temp_cold (out of range,
 *     NaN, temp_cold >= temp_hot after the defaults are applied) are
 *     OMEN_EINVAL with a message and create nothing; the edges of the
 *     ranges and the defaults open; with no_tracking gets are neither
 *     sampled nor counted, and nothing is hot, warm or cold;
 *  2. counting: reads_memory + reads_storage is exactly the number of
 *     successful gets made since open by threads that have finished (also
 *     across thread exits); absent keys count as neither; with everything
 *     resident nothing is read from storage; with sample_every = 1 the
 *     aggregator folds samples (bounded wait) and hot + warm + cold = keys;
 *  3. differential reads under a budget of 10% of the value bytes, with
 *     two writers (omen_put; omen_ingest of 1..64, now and then up to 2048
 *     records + omen_flush) and two readers, a quarter of both on the same
 *     1024 keys (reads of keys in flight): every value read is one its key
 *     legitimately had (per-key issued and acknowledged versions);
 *     afterwards every key exact by omen_get and by one full iterator
 *     pass; values were evicted and read from storage;
 *  4. the resident bytes, polled every few milliseconds while the writers
 *     run, never exceed memory_budget + shards x 4096 records x (largest
 *     value + 64 bytes);
 *  5. reads of the largest 8% of the keys (they fit) come to be served
 *     from memory; then with zipf 0.99 reads (rank r = the r-th smallest
 *     key) the share of gets served from memory over one round converges
 *     (bounded number of rounds) to 0.80, or to 97% of what a perfect cache
 *     of seven eighths of the budget would serve when that is less (see
 *     zipf_target); values turned hot were re-admitted;
 *  6. hot, warm and cold keys while zipf reads of the lower half of the
 *     keys go on: some hot, the half never read cold, the three summing to
 *     the keys; temp_hot = 0.99 / temp_cold = 0.9 give fewer hot and more
 *     cold keys under the same reads, temp_hot = 1 none (temperatures lie
 *     in [0, 1]);
 *  7. the shards' hot, warm, cold, resident keys, evictions and
 *     re-admissions sum to the global figures;
 *  8. the budget across close and reopen (the rebuild settles under it),
 *     non-resident values read back right; no_tracking with a budget still
 *     evicts and reads right.
 *
 * No check depends on timing: waits for the aggregator and the workers are
 * polls with a generous deadline.  OMEN_TEST_SEED=<n> (or "random") picks
 * the keys and the threads' choices; OMEN_TEST_SCALE=<factor> scales the
 * key count (200k at 1; the zipf target is 0.80 itself from about 1.5M
 * keys); OMEN_TEST_KEEP=1 keeps the databases (under $TMPDIR or /tmp).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <omendb.h>

#include "tests/lib/apitest.h"
#include "tests/lib/datasets.h"
#include "tests/lib/tap.h"
#include "tests/lib/util.h"

#define DEFAULT_SEED UINT64_C(20240808)

/* Scale 1: 200k keys, about 20 s of a -O1 build on two cores; 50k keys
 * under ThreadSanitizer and 100k under AddressSanitizer take about as
 * long.  Most of the spread is the zipf convergence (ZIPF_DEADLINE_SEC
 * bounds it, and the warm-up before it). */
#if defined(OMEN_TSAN)
#define DEFAULT_SCALE 0.25
#elif defined(OMEN_ASAN) || defined(OMEN_DEBUG)
#define DEFAULT_SCALE 0.5
#else
#define DEFAULT_SCALE 1.0
#endif
/* A bound on each read_rounds loop, not a timing check: an engine that
 * converges takes 2 to 15 s, more under a loaded `make check`. */
#define ZIPF_DEADLINE_SEC 60.0

#define NKEYS 200000
#define NSHARDS 2
#define VAL_MIN 16
#define VAL_MAX 64
#define BATCH_RECORDS 4096     /* a worker batch (omendb.h)                  */
#define HEADROOM 64            /* bytes per record over the value length     */
#define NWRITERS 2
#define NREADERS 2
#define MIX_SEC 3.0            /* writers and readers under the budget       */
#define POLL_NS 3000000L       /* resident-bytes poll interval               */
#define SETTLE_SEC 10.0        /* bounded waits for the aggregator/workers   */
#define ZIPF_THETA 0.99
#define ZIPF_SAMPLE_EVERY 4
#define ZIPF_TARGET 0.80
#define ZIPF_OF_IDEAL 0.97     /* ... or this share of a perfect cache's    */
#define WARM_TARGET 0.90       /* reads of a set that fits the budget       */
/* Reading before hot/warm/cold are read: twice the recency window (the
 * last 10 periods of 100 ms, omendb.h). */
#define TEMP_READ_SEC 2.0
#define WRITE_CHUNK 64         /* records per omen_ingest + omen_flush round */
#define WRITE_CHUNK_BIG 2048   /* ... one round in eight                    */
#define CONTEND 1024           /* keys n/2.. where a quarter of the writes and
				  reads of the mix go: reads of keys in flight */

static uint64_t g_seed;
static double g_scale;
static char base[4096];

static size_t scaled(size_t n, size_t floor)
{
	double v = (double)n * g_scale;

	return v < (double)floor ? floor : (size_t)v;
}

static uint64_t mix64(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void path_of(char *buf, size_t cap, const char *name)
{
	snprintf(buf, cap, "%s/%s", base, name);
}

static bool exists(const char *p)
{
	struct stat st;

	return lstat(p, &st) == 0;
}

static bool errmsg_set(void)
{
	const char *m = omen_errmsg();

	return m != NULL && m[0] != '\0';
}

/* ------------------------------------------------------------- values */

/* Version ver (>= 1) of key's value: key, ver, then filler; 16..64 bytes,
 * the length a function of both, so that a stale or foreign value shows. */
static size_t value_of(uint64_t key, uint64_t ver, unsigned char *buf)
{
	uint64_t h = mix64(key ^ mix64(ver + 7));
	size_t len = VAL_MIN + (size_t)(h % (VAL_MAX - VAL_MIN + 1));

	memcpy(buf, &key, 8);
	memcpy(buf + 8, &ver, 8);
	for (size_t i = 16; i < len; i++)
		buf[i] = (unsigned char)((h >> (8 * (i & 7))) ^ i);
	return len;
}

/* Is v[len] version lo..hi of key?  *ver gets the version it names. */
static bool value_valid(uint64_t key, uint64_t lo, uint64_t hi, const unsigned char *v, size_t len,
			uint64_t *ver)
{
	unsigned char want[VAL_MAX];
	uint64_t k2, n;

	*ver = 0;
	if (len < 16 || len > VAL_MAX)
		return false;
	memcpy(&k2, v, 8);
	memcpy(&n, v + 8, 8);
	*ver = n;
	return k2 == key && n >= lo && n <= hi && value_of(key, n, want) == len &&
	       memcmp(v, want, len) == 0;
}

/* ---------------------------------------------------------- the data */

/*
 * The keys (ascending) and, per key, the last version handed to the engine
 * (issued, stored before the call, release) and the last one acknowledged
 * (acked: the put returned, or an omen_flush after the ingest returned;
 * stored after, release).  A read loads acked before and issued after: the
 * version it sees must lie between them.  Each key has one writer (key
 * index parity), so its versions apply in order.
 */
struct data {
	uint64_t *keys;
	size_t n;
	_Atomic uint64_t *issued;
	_Atomic uint64_t *acked;
};

static void data_init(struct data *d, size_t n, uint64_t seed)
{
	d->n = n;
	d->keys = xmalloc(n * sizeof(uint64_t));
	ds_generate(DS_UNIFORM, seed, d->keys, n);
	ds_sort(d->keys, n);
	d->issued = xcalloc(n, sizeof(d->issued[0]));
	d->acked = xcalloc(n, sizeof(d->acked[0]));
	for (size_t i = 0; i < n; i++) {
		atomic_init(&d->issued[i], 0);
		atomic_init(&d->acked[i], 0);
	}
}

static void data_free(struct data *d)
{
	free(d->keys);
	free((void *)d->issued);
	free((void *)d->acked);
	memset(d, 0, sizeof(*d));
}

static bool data_has(const struct data *d, uint64_t key)
{
	size_t i = ds_lower_bound(d->keys, d->n, key);

	return i < d->n && d->keys[i] == key;
}

/* Write version (issued + 1) of every key by omen_ingest, then flush. */
static void data_load(omen_db *db, struct data *d, const char *what)
{
	unsigned char v[VAL_MAX];
	size_t bad = 0;
	int rc;

	for (size_t i = 0; i < d->n; i++) {
		uint64_t ver = atomic_load_explicit(&d->issued[i], memory_order_relaxed) + 1;
		size_t len = value_of(d->keys[i], ver, v);

		atomic_store_explicit(&d->issued[i], ver, memory_order_release);
		if (omen_ingest(db, d->keys[i], v, len) != OMEN_OK)
			bad++;
	}
	rc = omen_flush(db);
	for (size_t i = 0; i < d->n; i++)
		atomic_store_explicit(&d->acked[i],
				      atomic_load_explicit(&d->issued[i], memory_order_relaxed),
				      memory_order_release);
	if (bad || rc != OMEN_OK)
		bail_out("%s: %zu ingests failed, flush: %s", what, bad, omen_strerror(rc));
}

/* ------------------------------------------------------- engine calls */

static omen_db *open_or_bail(const char *p, const omen_options *o)
{
	omen_db *db = NULL;
	int rc = omen_open(p, o, &db);

	if (rc != OMEN_OK || db == NULL)
		bail_out("omen_open %s: %s (%s)", p, omen_strerror(rc), omen_errmsg());
	return db;
}

static void close_or_bail(omen_db *db)
{
	int rc = omen_close(db);

	if (rc != OMEN_OK)
		bail_out("omen_close: %s (%s)", omen_strerror(rc), omen_errmsg());
}

static omen_stats stats_or_bail(omen_db *db)
{
	omen_stats s;
	int rc = omen_get_stats(db, &s);

	if (rc != OMEN_OK)
		bail_out("omen_get_stats: %s (%s)", omen_strerror(rc), omen_errmsg());
	return s;
}

static omen_options options(size_t budget)
{
	omen_options o;

	omen_options_init(&o);
	o.shards = NSHARDS;
	o.memory_budget = budget;
	return o;
}

/* What the resident bytes may reach: the budget plus one worker batch of
 * the largest records per shard (omendb.h). */
static uint64_t resident_bound(const omen_stats *s)
{
	return s->memory_budget + (uint64_t)s->shards * BATCH_RECORDS * (VAL_MAX + HEADROOM);
}

static void diag_stats(const char *what, const omen_stats *s)
{
	diag("%s: keys %" PRIu64 ", value_bytes %" PRIu64 " (budget %" PRIu64 ", bound %" PRIu64
	     "), resident_keys %" PRIu64 ", evictions %" PRIu64 ", readmissions %" PRIu64
	     ", reads memory/storage %" PRIu64 "/%" PRIu64 ", samples %" PRIu64
	     " (dropped %" PRIu64 "), hot/warm/cold %" PRIu64 "/%" PRIu64 "/%" PRIu64,
	     what, s->keys, s->value_bytes, s->memory_budget, resident_bound(s), s->resident_keys,
	     s->evictions, s->readmissions, s->reads_memory, s->reads_storage, s->samples,
	     s->dropped_samples, s->hot_keys, s->warm_keys, s->cold_keys);
}

/* The resident bytes are within the bound now: at every moment, a
 * rebuild after omen_open included (omendb.h). */
static bool check_resident(omen_db *db, const char *what)
{
	omen_stats s = stats_or_bail(db);

	return ok(s.value_bytes <= resident_bound(&s),
		  "%s: resident bytes %" PRIu64 " within the budget + one batch per shard (%" PRIu64
		  ")", what, s.value_bytes, resident_bound(&s));
}

/* ------------------------------------------------------------ readers */

enum pick { PICK_UNIFORM, PICK_ZIPF };

struct reader {
	omen_db *db;
	const struct data *d;
	enum pick pick;
	const ds_zipf *zipf;       /* PICK_ZIPF: rank r reads keys[r]          */
	size_t lo, hi;             /* PICK_UNIFORM: keys[lo, hi); hi 0 = n     */
	bool contend;              /* PICK_UNIFORM: a quarter in the CONTEND keys */
	size_t nops;               /* 0: until *stop                           */
	unsigned absent_pct;       /* this share of gets asks for absent keys  */
	const atomic_bool *stop;
	uint64_t seed;
	/* results */
	uint64_t gets, found, absent, wrong, errors;
	char first[240];
	pthread_t th;
};

static void reader_note(struct reader *r, const char *fmt, ...) TAP_PRINTF(2, 3);
static void reader_note(struct reader *r, const char *fmt, ...)
{
	va_list ap;

	if (r->first[0])
		return;
	va_start(ap, fmt);
	vsnprintf(r->first, sizeof(r->first), fmt, ap);
	va_end(ap);
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	const struct data *d = r->d;
	ds_zipf z;
	ds_rng rng;

	ds_rng_seed(&rng, r->seed);
	if (r->pick == PICK_ZIPF)
		z = *r->zipf;   /* ds_zipf_next takes a non-const pointer */
	for (size_t op = 0;; op++) {
		unsigned char buf[VAL_MAX + 16];
		size_t len = 0, i;
		uint64_t key, a, b, ver;
		int rc;

		if (r->nops ? op >= r->nops : atomic_load_explicit(r->stop, memory_order_acquire))
			break;
		if (r->absent_pct && ds_rng_next(&rng) % 100 < r->absent_pct) {
			key = ds_rng_next(&rng);
			if (data_has(d, key))
				continue;
			r->gets++;
			rc = omen_get(r->db, key, buf, sizeof(buf), &len);
			if (rc == OMEN_ENOTFOUND) {
				r->absent++;
			} else {
				r->wrong++;
				reader_note(r, "absent key 0x%016" PRIx64 ": %s", key, omen_strerror(rc));
			}
			continue;
		}
		if (r->pick == PICK_ZIPF)
			i = (size_t)ds_zipf_next(&z, &rng);
		else if (r->contend && d->n >= 2 * CONTEND && ds_rng_next(&rng) % 4 == 0)
			i = d->n / 2 + (size_t)(ds_rng_next(&rng) % CONTEND);
		else
			i = r->lo + (size_t)(ds_rng_next(&rng) % ((r->hi ? r->hi : d->n) - r->lo));
		key = d->keys[i];
		a = atomic_load_explicit(&d->acked[i], memory_order_acquire);
		r->gets++;
		rc = omen_get(r->db, key, buf, sizeof(buf), &len);
		b = atomic_load_explicit(&d->issued[i], memory_order_acquire);
		if (rc != OMEN_OK) {
			r->errors++;
			reader_note(r, "key 0x%016" PRIx64 " (versions %" PRIu64 "..%" PRIu64 "): %s (%s)",
				    key, a, b, omen_strerror(rc), omen_errmsg());
			continue;
		}
		r->found++;
		if (!value_valid(key, a, b, buf, len, &ver)) {
			r->wrong++;
			reader_note(r, "key 0x%016" PRIx64 ": %zu bytes naming version %" PRIu64
				    ", allowed %" PRIu64 "..%" PRIu64, key, len, ver, a, b);
		}
	}
	return NULL;
}

static void readers_start(struct reader *rd, unsigned n)
{
	for (unsigned t = 0; t < n; t++)
		if (pthread_create(&rd[t].th, NULL, reader_main, &rd[t]) != 0)
			bail_out("pthread_create: %s", strerror(errno));
}

/* Join and add up: *gets_ok = gets that returned OMEN_OK. */
static void readers_join(struct reader *rd, unsigned n, const char *who, uint64_t *gets_ok,
			 uint64_t *wrong)
{
	*gets_ok = 0;
	*wrong = 0;
	for (unsigned t = 0; t < n; t++) {
		pthread_join(rd[t].th, NULL);
		*gets_ok += rd[t].found;
		*wrong += rd[t].wrong + rd[t].errors;
		if (rd[t].first[0])
			diag("%s, reader %u: %" PRIu64 " wrong, %" PRIu64 " errors; first: %s", who, t,
			     rd[t].wrong, rd[t].errors, rd[t].first);
	}
}

/* Run n readers to the end and return the successful gets. */
static uint64_t readers_run(struct reader *rd, unsigned n, const char *who, uint64_t *wrong)
{
	uint64_t gets_ok;

	readers_start(rd, n);
	readers_join(rd, n, who, &gets_ok, wrong);
	return gets_ok;
}

/* ------------------------------------------------------- exact checks */

struct get_all {
	omen_db *db;
	const struct data *d;
	size_t bad;
	char first[5][240];
};

/* Every key by omen_get against its last version issued.  On a thread of
 * its own, so that its gets are counted once it has finished (the main
 * thread never gets: the read counters are exact for finished threads). */
static void *get_all_main(void *arg)
{
	struct get_all *g = arg;
	const struct data *d = g->d;
	unsigned char buf[VAL_MAX + 16];
	uint64_t ver;
	size_t len;
	int rc;

	for (size_t i = 0; i < d->n; i++) {
		uint64_t want = atomic_load_explicit(&d->issued[i], memory_order_acquire);

		len = 0;
		ver = 0;
		rc = omen_get(g->db, d->keys[i], buf, sizeof(buf), &len);
		if (rc != OMEN_OK || !value_valid(d->keys[i], want, want, buf, len, &ver)) {
			if (g->bad < 5)
				snprintf(g->first[g->bad], sizeof(g->first[0]),
					 "get of key 0x%016" PRIx64 ": %s, %zu bytes naming version %" PRIu64
					 ", want version %" PRIu64, d->keys[i], omen_strerror(rc),
					 rc == OMEN_OK ? len : 0, ver, want);
			g->bad++;
		}
	}
	return NULL;
}

/* Once the writers have stopped: every key by omen_get and one full
 * iterator pass against the last version issued. */
static void check_all(omen_db *db, const struct data *d, const char *what)
{
	struct get_all g = { .db = db, .d = d };
	size_t nit = 0, itbad = 0;
	omen_iter *it = NULL;
	pthread_t th;
	uint64_t key, ver;
	const void *v;
	size_t len;
	int rc;

	if (pthread_create(&th, NULL, get_all_main, &g) != 0)
		bail_out("pthread_create: %s", strerror(errno));
	pthread_join(th, NULL);
	for (size_t j = 0; j < g.bad && j < 5; j++)
		diag("%s: %s", what, g.first[j]);
	is_u64(g.bad, 0, "%s: every one of %zu keys reads back exactly (omen_get)", what, d->n);

	rc = omen_iter_open(db, 0, UINT64_MAX, &it);
	if (!ok(rc == OMEN_OK, "%s: omen_iter_open: %s", what, omen_strerror(rc)))
		return;
	while ((rc = omen_iter_next(it, &key, &v, &len)) == OMEN_OK) {
		uint64_t want;

		if (nit >= d->n || d->keys[nit] != key) {
			if (itbad++ < 5)
				diag("%s: iterator record %zu is key 0x%016" PRIx64 ", want 0x%016" PRIx64,
				     what, nit, key, nit < d->n ? d->keys[nit] : 0);
			nit++;
			continue;
		}
		want = atomic_load_explicit(&d->issued[nit], memory_order_acquire);
		if (!value_valid(key, want, want, v, len, &ver) && itbad++ < 5)
			diag("%s: iterator value of key 0x%016" PRIx64 ": %zu bytes naming version %" PRIu64
			     ", want %" PRIu64, what, key, len, ver, want);
		nit++;
	}
	omen_iter_close(it);
	ok(rc == OMEN_END && itbad == 0 && nit == d->n,
	   "%s: one full iterator pass returns every key in order with its value "
	   "(%zu records, %zu wrong, ended with %s)", what, nit, itbad, omen_strerror(rc));
}

/*
 * The shards' figures sum to the global ones.  The counters move while the
 * workers evict and re-admit, so compare at a moment when two global reads
 * around the per-shard reads agree.
 */
static void check_shard_sums(omen_db *db, const char *what)
{
	omen_stats g1, g2;
	omen_shard_stats ss;
	uint64_t hot = 0, warm = 0, cold = 0, res = 0, ev = 0, re = 0;
	bool stable = false;
	int tries;

	for (tries = 0; tries < 100 && !stable; tries++) {
		if (tries)
			sleep_ms(20);
		g1 = stats_or_bail(db);
		hot = warm = cold = res = ev = re = 0;
		for (unsigned s = 0; s < g1.shards; s++) {
			if (omen_get_shard_stats(db, s, &ss) != OMEN_OK)
				bail_out("omen_get_shard_stats %u", s);
			hot += ss.hot_keys;
			warm += ss.warm_keys;
			cold += ss.cold_keys;
			res += ss.resident_keys;
			ev += ss.evictions;
			re += ss.readmissions;
		}
		g2 = stats_or_bail(db);
		stable = g1.hot_keys == g2.hot_keys && g1.warm_keys == g2.warm_keys &&
			 g1.cold_keys == g2.cold_keys && g1.resident_keys == g2.resident_keys &&
			 g1.evictions == g2.evictions && g1.readmissions == g2.readmissions &&
			 g1.keys == g2.keys;
	}
	ok(stable, "%s: the statistics hold still long enough to compare (%d reads)", what, tries);
	is_u64(ev, g2.evictions, "%s: the shards' evictions sum to the global count", what);
	is_u64(re, g2.readmissions, "%s: the shards' re-admissions sum to the global count", what);
	is_u64(res, g2.resident_keys, "%s: the shards' resident keys sum to the global count", what);
	ok(hot == g2.hot_keys && warm == g2.warm_keys && cold == g2.cold_keys,
	   "%s: the shards' hot/warm/cold keys sum to the global counts "
	   "(%" PRIu64 "/%" PRIu64 "/%" PRIu64 " vs %" PRIu64 "/%" PRIu64 "/%" PRIu64 ")",
	   what, hot, warm, cold, g2.hot_keys, g2.warm_keys, g2.cold_keys);
}

/* -------------------------------------------------------- 1. options */

struct bad_opt {
	const char *name;
	double freq, hot, cold;
};

static void test_options(void)
{
	const struct bad_opt bad[] = {
		{ "temp_freq_weight -0.1", -0.1, 0, 0 },
		{ "temp_freq_weight 1.5", 1.5, 0, 0 },
		{ "temp_freq_weight NaN", NAN, 0, 0 },
		{ "temp_freq_weight -inf", -INFINITY, 0, 0 },
		{ "temp_hot 1.5", 0, 1.5, 0 },
		{ "temp_hot -0.5", 0, -0.5, 0 },
		{ "temp_hot NaN", 0, NAN, 0 },
		{ "temp_hot +inf", 0, INFINITY, 0 },
		{ "temp_cold -0.1", 0, 0, -0.1 },
		{ "temp_cold NaN", 0, 0, NAN },
		{ "temp_cold 0.9 >= temp_hot 0.8 (the default)", 0, 0, 0.9 },
		{ "temp_cold 0.5 = temp_hot 0.5", 0, 0.5, 0.5 },
		{ "temp_cold 0.6 > temp_hot 0.4", 0, 0.4, 0.6 },
		{ "temp_hot 0.2 <= temp_cold 0.3 (the default)", 0, 0.2, 0 },
	};
	char p[4200];
	omen_options o;
	omen_db *db;
	omen_stats s;
	int rc;

	diag("-- options");
	omen_options_init(&o);
	is_int(o.no_tracking, 0, "tracking is on by default");

	path_of(p, sizeof(p), "badopts");
	for (size_t j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
		o = options(0);
		o.temp_freq_weight = bad[j].freq;
		o.temp_hot = bad[j].hot;
		o.temp_cold = bad[j].cold;
		db = (omen_db *)&db;
		rc = omen_open(p, &o, &db);
		is_int(rc, OMEN_EINVAL, "%s: EINVAL", bad[j].name);
		ok(db == NULL && errmsg_set() && !exists(p),
		   "  *out NULL, nothing created, errmsg: \"%s\"", omen_errmsg());
		if (rc == OMEN_OK && db && db != (omen_db *)&db) {
			omen_close(db);
			apitest_rm_tree(p);
		}
	}

	/* The edges of the ranges. */
	o = options(0);
	o.temp_freq_weight = 1.0;
	o.temp_hot = 1.0;
	o.temp_cold = 0.99;
	o.sample_every = 1;
	path_of(p, sizeof(p), "edges");
	db = NULL;
	rc = omen_open(p, &o, &db);
	is_int(rc, OMEN_OK, "temp_freq_weight 1, temp_hot 1, temp_cold 0.99, sample_every 1: opens (%s)",
	       omen_errmsg());
	omen_close(db);

	o = options(0);
	o.temp_freq_weight = 0.01;
	o.temp_hot = 0.02;
	o.temp_cold = 0.01;
	o.sample_every = 1000000;
	path_of(p, sizeof(p), "edges-low");
	db = NULL;
	rc = omen_open(p, &o, &db);
	is_int(rc, OMEN_OK, "temp_freq_weight 0.01, temp_hot 0.02, temp_cold 0.01, sample_every 1e6: "
	       "opens (%s)", omen_errmsg());
	omen_close(db);

	/* Defaults, and NULL options. */
	path_of(p, sizeof(p), "defaults");
	omen_options_init(&o);
	db = NULL;
	rc = omen_open(p, &o, &db);
	is_int(rc, OMEN_OK, "omen_options_init's defaults open (%s)", omen_errmsg());
	if (rc == OMEN_OK) {
		s = stats_or_bail(db);
		is_u64(s.memory_budget, 0, "  memory_budget 0 in the stats");
		omen_close(db);
	}
	db = NULL;
	rc = omen_open(p, NULL, &db);
	is_int(rc, OMEN_OK, "NULL options reopen it (%s)", omen_errmsg());
	omen_close(db);
}

/* ------------------------------------------- 1 (cont.), no_tracking */

static void test_no_tracking(void)
{
	struct data d;
	struct reader rd[NREADERS];
	atomic_bool stop = false;
	uint64_t gets_ok, wrong;
	char p[4200];
	omen_options o;
	omen_db *db;
	omen_stats s;

	diag("-- no_tracking");
	data_init(&d, scaled(20000, 4000), case_seed(g_seed, "no-tracking"));
	o = options(0);
	o.no_tracking = 1;
	o.sample_every = 1;
	path_of(p, sizeof(p), "no-tracking");
	db = open_or_bail(p, &o);
	data_load(db, &d, "no_tracking load");
	memset(rd, 0, sizeof(rd));
	for (unsigned t = 0; t < NREADERS; t++) {
		rd[t] = (struct reader){ .db = db, .d = &d, .pick = PICK_UNIFORM, .nops = d.n,
					 .absent_pct = 10, .stop = &stop,
					 .seed = case_seed(g_seed, "no-tracking-reader") + t };
	}
	gets_ok = readers_run(rd, NREADERS, "no_tracking", &wrong);
	is_u64(wrong, 0, "no_tracking: %" PRIu64 " gets, every value right", gets_ok);
	/* Time for an aggregator, if one ran, to fold something (not a
	 * timing check: nothing may appear however long we wait). */
	sleep_ms(300);
	s = stats_or_bail(db);
	diag_stats("no_tracking", &s);
	ok(s.samples == 0 && s.dropped_samples == 0,
	   "no_tracking: nothing sampled (samples %" PRIu64 ", dropped %" PRIu64 ")", s.samples,
	   s.dropped_samples);
	ok(s.reads_memory == 0 && s.reads_storage == 0,
	   "no_tracking: reads not counted (memory %" PRIu64 ", storage %" PRIu64 ")",
	   s.reads_memory, s.reads_storage);
	ok(s.hot_keys == 0 && s.warm_keys == 0 && s.cold_keys == 0,
	   "no_tracking: no hot, warm or cold keys (%" PRIu64 "/%" PRIu64 "/%" PRIu64 ")",
	   s.hot_keys, s.warm_keys, s.cold_keys);
	ok(s.resident_keys == d.n && s.evictions == 0,
	   "no_tracking, no budget: all %zu values resident (%" PRIu64 "), no evictions (%" PRIu64 ")",
	   d.n, s.resident_keys, s.evictions);
	close_or_bail(db);
	data_free(&d);
}

/* ------------------------------------------------------ 2. counting */

static void test_counting(void)
{
	struct data d;
	struct reader rd[NREADERS];
	atomic_bool stop = false;
	uint64_t gets_ok, wrong, total_ok = 0, issued = 0;
	double deadline;
	char p[4200];
	omen_options o;
	omen_db *db;
	omen_stats s;

	diag("-- counting");
	data_init(&d, scaled(20000, 4000), case_seed(g_seed, "counting"));
	o = options(0);
	o.sample_every = 1;
	path_of(p, sizeof(p), "counting");
	db = open_or_bail(p, &o);
	data_load(db, &d, "counting load");
	s = stats_or_bail(db);
	ok(s.reads_memory == 0 && s.reads_storage == 0,
	   "counting: no gets yet, none counted (%" PRIu64 "/%" PRIu64 ")", s.reads_memory,
	   s.reads_storage);

	for (int round = 1; round <= 2; round++) {
		memset(rd, 0, sizeof(rd));
		for (unsigned t = 0; t < NREADERS; t++)
			rd[t] = (struct reader){ .db = db, .d = &d, .pick = PICK_UNIFORM,
						 .nops = d.n / 2 + 1000 * t, .absent_pct = 15,
						 .stop = &stop,
						 .seed = case_seed(g_seed, "counting-reader") + 10 * round + t };
		gets_ok = readers_run(rd, NREADERS, "counting", &wrong);
		for (unsigned t = 0; t < NREADERS; t++)
			issued += rd[t].gets;
		total_ok += gets_ok;
		is_u64(wrong, 0, "counting round %d: every value right", round);
		s = stats_or_bail(db);
		is_u64(s.reads_memory + s.reads_storage, total_ok,
		       "counting round %d: reads_memory + reads_storage = the %" PRIu64
		       " successful gets of finished threads (of %" PRIu64 " issued)",
		       round, total_ok, issued);
		is_u64(s.reads_storage, 0, "counting round %d: all resident, none from storage", round);
	}

	deadline = now_sec() + SETTLE_SEC;
	s = stats_or_bail(db);
	while (s.samples == 0 && now_sec() < deadline) {
		sleep_ms(20);
		s = stats_or_bail(db);
	}
	ok(s.samples > 0, "counting: with sample_every 1 the aggregator folds samples (%" PRIu64
	   ", dropped %" PRIu64 ")", s.samples, s.dropped_samples);
	ok(s.samples + s.dropped_samples <= issued,
	   "counting: samples + dropped (%" PRIu64 ") at most the gets issued (%" PRIu64 ")",
	   s.samples + s.dropped_samples, issued);
	while (s.hot_keys + s.warm_keys + s.cold_keys != s.keys && now_sec() < deadline) {
		sleep_ms(20);
		s = stats_or_bail(db);
	}
	diag_stats("counting", &s);
	is_u64(s.hot_keys + s.warm_keys + s.cold_keys, s.keys,
	       "counting: hot + warm + cold = keys once a temperature map exists");
	ok(s.hot_keys + s.warm_keys > 0, "counting: the keys just read are not all cold");
	check_shard_sums(db, "counting");
	close_or_bail(db);
	data_free(&d);
}

/* ------------------------------------ 3, 4. budget, writers, readers */

struct writer {
	omen_db *db;
	struct data *d;
	unsigned id;               /* owns the keys of index parity id     */
	const atomic_bool *stop;
	uint64_t seed;
	uint64_t puts, ingests, flushes, errors;
	char first[240];
	pthread_t th;
};

/* A key of this writer's (index parity), a quarter of them among the
 * CONTEND keys the readers favour too. */
static size_t writer_pick(struct writer *w, ds_rng *r)
{
	size_t half = (w->d->n - w->id + NWRITERS - 1) / NWRITERS;

	if (w->d->n >= 2 * CONTEND && ds_rng_next(r) % 4 == 0)
		return w->d->n / 2 + (size_t)(ds_rng_next(r) % (CONTEND / NWRITERS)) * NWRITERS + w->id;
	return (size_t)(ds_rng_next(r) % half) * NWRITERS + w->id;
}

static uint64_t writer_issue(struct writer *w, size_t i)
{
	uint64_t n = atomic_load_explicit(&w->d->issued[i], memory_order_relaxed) + 1;

	atomic_store_explicit(&w->d->issued[i], n, memory_order_release);
	return n;
}

static void writer_ack(struct writer *w, size_t i)
{
	atomic_store_explicit(&w->d->acked[i],
			      atomic_load_explicit(&w->d->issued[i], memory_order_relaxed),
			      memory_order_release);
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	size_t pending[WRITE_CHUNK_BIG];
	unsigned char v[VAL_MAX];
	ds_rng r;

	ds_rng_seed(&r, w->seed);
	while (!atomic_load_explicit(w->stop, memory_order_acquire)) {
		if (ds_rng_next(&r) % 4 == 0) {
			size_t i = writer_pick(w, &r);
			uint64_t ver = writer_issue(w, i);
			size_t len = value_of(w->d->keys[i], ver, v);
			int rc = omen_put(w->db, w->d->keys[i], v, len);

			if (rc != OMEN_OK) {
				if (!w->errors++)
					snprintf(w->first, sizeof(w->first), "omen_put: %s (%s)",
						 omen_strerror(rc), omen_errmsg());
				continue;
			}
			writer_ack(w, i);
			w->puts++;
		} else {
			size_t np = 1 + (size_t)(ds_rng_next(&r) % (ds_rng_next(&r) % 8 ? WRITE_CHUNK
										: WRITE_CHUNK_BIG));
			int rc;

			for (size_t j = 0; j < np; j++) {
				size_t i = writer_pick(w, &r);
				uint64_t ver = writer_issue(w, i);
				size_t len = value_of(w->d->keys[i], ver, v);

				pending[j] = i;
				rc = omen_ingest(w->db, w->d->keys[i], v, len);
				if (rc != OMEN_OK && !w->errors++)
					snprintf(w->first, sizeof(w->first), "omen_ingest: %s (%s)",
						 omen_strerror(rc), omen_errmsg());
				w->ingests++;
			}
			rc = omen_flush(w->db);
			if (rc != OMEN_OK) {
				if (!w->errors++)
					snprintf(w->first, sizeof(w->first), "omen_flush: %s (%s)",
						 omen_strerror(rc), omen_errmsg());
				continue;
			}
			w->flushes++;
			for (size_t j = 0; j < np; j++)
				writer_ack(w, pending[j]);
		}
	}
	return NULL;
}

/* Phase A: a new database with every key at version 1, all resident.
 * Returns the all-resident value bytes. */
static uint64_t budget_load(const char *p, struct data *d)
{
	omen_options o = options(0);
	omen_db *db = open_or_bail(p, &o);
	omen_stats s;

	data_load(db, d, "budget load");
	s = stats_or_bail(db);
	diag_stats("loaded, no budget", &s);
	is_u64(s.keys, d->n, "budget: %zu keys loaded", d->n);
	is_u64(s.resident_keys, d->n, "budget: without a budget every value is resident");
	ok(s.value_bytes >= (uint64_t)d->n * VAL_MIN,
	   "budget: value_bytes %" PRIu64 " covers at least %zu x %d bytes", s.value_bytes, d->n,
	   VAL_MIN);
	close_or_bail(db);
	return s.value_bytes;
}

/* Phase B: writers and readers under the budget, the resident bytes polled. */
static void budget_mix(const char *p, struct data *d, size_t budget)
{
	struct writer w[NWRITERS];
	struct reader rd[NREADERS];
	atomic_bool stop = false;
	omen_options o = options(budget);
	omen_db *db = open_or_bail(p, &o);
	omen_stats s, s0;
	uint64_t polls = 0, over = 0, maxb = 0, first_over = 0, gets_ok, wrong, werr = 0;
	uint64_t puts = 0, ingests = 0, flushes = 0;
	double t0, end;

	diag("-- budget: writers and readers");
	s0 = stats_or_bail(db);
	is_u64(s0.memory_budget, budget, "budget: the stats report the budget");
	check_resident(db, "budget, reopened");

	memset(w, 0, sizeof(w));
	memset(rd, 0, sizeof(rd));
	for (unsigned t = 0; t < NWRITERS; t++) {
		w[t] = (struct writer){ .db = db, .d = d, .id = t, .stop = &stop,
					.seed = case_seed(g_seed, "budget-writer") + t };
		if (pthread_create(&w[t].th, NULL, writer_main, &w[t]) != 0)
			bail_out("pthread_create: %s", strerror(errno));
	}
	for (unsigned t = 0; t < NREADERS; t++)
		rd[t] = (struct reader){ .db = db, .d = d, .pick = PICK_UNIFORM, .contend = true,
					 .stop = &stop, .seed = case_seed(g_seed, "budget-reader") + t };
	readers_start(rd, NREADERS);

	t0 = now_sec();
	end = t0 + MIX_SEC;
	while (now_sec() < end) {
		struct timespec ts = { 0, POLL_NS };

		s = stats_or_bail(db);
		polls++;
		if (s.value_bytes > maxb)
			maxb = s.value_bytes;
		if (s.value_bytes > resident_bound(&s) && !over++)
			first_over = s.value_bytes;
		nanosleep(&ts, NULL);
	}
	atomic_store_explicit(&stop, true, memory_order_release);
	for (unsigned t = 0; t < NWRITERS; t++) {
		pthread_join(w[t].th, NULL);
		werr += w[t].errors;
		puts += w[t].puts;
		ingests += w[t].ingests;
		flushes += w[t].flushes;
		if (w[t].errors)
			diag("writer %u: %" PRIu64 " errors; first: %s", t, w[t].errors, w[t].first);
	}
	readers_join(rd, NREADERS, "budget", &gets_ok, &wrong);
	diag("budget: %.1f s, %" PRIu64 " puts, %" PRIu64 " ingests in %" PRIu64 " flushes, %" PRIu64
	     " successful gets, %" PRIu64 " stats polls", now_sec() - t0, puts, ingests, flushes,
	     gets_ok, polls);
	is_u64(werr, 0, "budget: every write succeeded");
	ok(puts > 0 && flushes > 0, "budget: the writers wrote by both paths");
	ok(gets_ok > 0, "budget: the readers read");
	is_u64(wrong, 0, "budget: every value read under the budget is one its key had "
	       "(between the last acknowledged and the last issued version)");
	ok(over == 0, "budget: resident bytes within budget + %u x %d x %d bytes at every one of "
	   "%" PRIu64 " polls (%" PRIu64 " over, first %" PRIu64 ", max %" PRIu64 ", bound %" PRIu64 ")",
	   s0.shards, BATCH_RECORDS, VAL_MAX + HEADROOM, polls, over, first_over, maxb,
	   resident_bound(&s0));

	if (omen_flush(db) != OMEN_OK)
		bail_out("omen_flush: %s", omen_errmsg());
	s = stats_or_bail(db);
	diag_stats("budget, after the mix", &s);
	is_u64(s.reads_memory + s.reads_storage, gets_ok,
	       "budget: reads_memory + reads_storage = the readers' successful gets");
	ok(s.evictions > 0, "budget: values were evicted (%" PRIu64 ")", s.evictions);
	ok(s.reads_storage > 0, "budget: gets were served from storage (%" PRIu64 " of %" PRIu64 ")",
	   s.reads_storage, gets_ok);
	ok(s.value_bytes <= resident_bound(&s),
	   "budget: resident bytes %" PRIu64 " within the bound %" PRIu64, s.value_bytes,
	   resident_bound(&s));
	ok(s.resident_keys < s.keys, "budget: not every value is resident (%" PRIu64 " of %" PRIu64 ")",
	   s.resident_keys, s.keys);
	is_u64(s.keys, d->n, "budget: the key count is unchanged");

	check_all(db, d, "budget, after the mix");
	check_shard_sums(db, "budget, after the mix");
	close_or_bail(db);
}

/* Phase N: no_tracking with a budget: evicts (in key order) and reads right. */
static void budget_no_tracking(const char *p, struct data *d, size_t budget)
{
	omen_options o = options(budget);
	struct writer w;
	atomic_bool stop = false;
	unsigned char v[VAL_MAX];
	omen_db *db;
	omen_stats s;
	size_t nw = d->n / 5;
	ds_rng r;

	diag("-- budget with no_tracking");
	o.no_tracking = 1;
	db = open_or_bail(p, &o);
	check_resident(db, "no_tracking + budget, reopened");
	/* Rewrite a fifth of the keys: new values are resident until the
	 * worker evicts them. */
	memset(&w, 0, sizeof(w));
	w = (struct writer){ .db = db, .d = d, .id = 0, .stop = &stop };
	ds_rng_seed(&r, case_seed(g_seed, "no-tracking-writes"));
	for (size_t j = 0; j < nw; j++) {
		size_t i = (size_t)(ds_rng_next(&r) % d->n);
		uint64_t ver = writer_issue(&w, i);

		if (omen_ingest(db, d->keys[i], v, value_of(d->keys[i], ver, v)) != OMEN_OK)
			bail_out("omen_ingest: %s", omen_errmsg());
	}
	if (omen_flush(db) != OMEN_OK)
		bail_out("omen_flush: %s", omen_errmsg());
	for (size_t i = 0; i < d->n; i++)
		writer_ack(&w, i);
	check_resident(db, "no_tracking + budget, after rewriting a fifth of the keys");
	s = stats_or_bail(db);
	diag_stats("no_tracking + budget", &s);
	ok(s.evictions > 0, "no_tracking + budget: the new values were evicted (%" PRIu64 ")",
	   s.evictions);
	ok(s.resident_keys < s.keys, "no_tracking + budget: not every value is resident (%" PRIu64
	   " of %" PRIu64 ")", s.resident_keys, s.keys);
	check_all(db, d, "no_tracking + budget");
	s = stats_or_bail(db);
	ok(s.reads_memory == 0 && s.reads_storage == 0 && s.samples == 0 &&
		   s.hot_keys + s.warm_keys + s.cold_keys == 0,
	   "no_tracking + budget: no read counts, samples or temperatures after %zu gets", d->n);
	close_or_bail(db);
}

/* ----------------------------------------- 5, 6. zipf, hot/warm/cold */

/*
 * What a perfect cache of seven eighths of the budget (the wanted set,
 * omendb.h) serves under this zipf: the share of draws whose rank is below
 * the keys that fit, by the same sampler the readers use.  Values are of
 * uniform random length, so 10% of the bytes hold about 10% of the keys.
 */
static double zipf_ideal(const ds_zipf *zc, size_t n, uint64_t full_bytes, size_t budget)
{
	double per_key = (double)full_bytes / (double)n;
	uint64_t fit = (uint64_t)((double)budget * 7.0 / 8.0 / per_key), hits = 0;
	size_t draws = scaled(1000000, 200000);
	ds_zipf z = *zc;
	ds_rng r;

	ds_rng_seed(&r, case_seed(g_seed, "zipf-ideal"));
	for (size_t j = 0; j < draws; j++)
		hits += ds_zipf_next(&z, &r) < fit;
	return (double)hits / (double)draws;
}

/*
 * The share of reads from memory to reach.  Issue 8 asks for 0.80 (its
 * benchmark: 10M keys).  At the key counts a fast test can afford, a
 * zipf 0.99 over n keys puts hardly more, or less, on its hottest 8.75%
 * (0.803 at 200k keys, 0.78 at 50k): even a perfect cache would reach
 * 0.80 barely or never.  The target is then ZIPF_OF_IDEAL of that perfect
 * cache (bucket granularity and sampled temperatures cost a little).
 */
static double zipf_target(double ideal)
{
	return fmin(ZIPF_TARGET, ZIPF_OF_IDEAL * ideal);
}

/*
 * Rounds of reads as tmpl says (nops per round, split between the
 * readers), at least min_rounds, until the share of one round's gets
 * served from memory reaches target (or the deadline).  Returns the last
 * round's share.  Each round's readers have finished when the stats are
 * read, so its reads_memory + reads_storage delta is exact.
 */
static double read_rounds(omen_db *db, const struct reader *tmpl, size_t per_round, double target,
			  int min_rounds, double deadline_sec, const char *what, int *rounds_out)
{
	struct reader rd[NREADERS];
	double t0 = now_sec(), deadline = t0 + deadline_sec, frac = 0, best = 0;
	uint64_t wrong_all = 0, count_bad = 0;
	int round = 0;

	do {
		omen_stats a = stats_or_bail(db), b;
		uint64_t gets_ok, wrong, dm, dst;

		round++;
		for (unsigned t = 0; t < NREADERS; t++) {
			rd[t] = *tmpl;
			rd[t].nops = per_round / NREADERS;
			rd[t].seed = case_seed(g_seed, what) + 100 * (uint64_t)round + t;
		}
		gets_ok = readers_run(rd, NREADERS, what, &wrong);
		wrong_all += wrong;
		b = stats_or_bail(db);
		dm = b.reads_memory - a.reads_memory;
		dst = b.reads_storage - a.reads_storage;
		if (dm + dst != gets_ok)
			count_bad++;
		frac = dm + dst ? (double)dm / (double)(dm + dst) : 0;
		if (frac > best)
			best = frac;
		if (round <= 3 || round % 10 == 0)
			diag("%s round %d: %.3f of %" PRIu64 " gets from memory (resident keys %" PRIu64
			     ", value_bytes %" PRIu64 ", evictions %" PRIu64 ", readmissions %" PRIu64
			     ", samples %" PRIu64 ", dropped %" PRIu64 ")",
			     what, round, frac, gets_ok, b.resident_keys, b.value_bytes, b.evictions,
			     b.readmissions, b.samples, b.dropped_samples);
	} while ((round < min_rounds || frac < target) && now_sec() < deadline);
	diag("%s: %.3f from memory in round %d (best %.3f), after %.1f s", what, frac, round, best,
	     now_sec() - t0);
	is_u64(count_bad, 0, "%s: every round's reads_memory + reads_storage delta equals its "
	       "successful gets", what);
	is_u64(wrong_all, 0, "%s: every value read right", what);
	*rounds_out = round;
	return frac;
}

struct temps {
	uint64_t hot, warm, cold, keys;
};

/* Hot/warm/cold while zipf readers run: let the aggregator see
 * TEMP_READ_SEC of them, then read the counts (the map is at most 100 ms
 * old). */
static struct temps zipf_temperatures(omen_db *db, const struct data *d, const ds_zipf *z,
				      const char *what)
{
	struct reader rd[NREADERS];
	atomic_bool stop = false;
	uint64_t gets_ok, wrong;
	omen_stats s;

	memset(rd, 0, sizeof(rd));
	for (unsigned j = 0; j < NREADERS; j++)
		rd[j] = (struct reader){ .db = db, .d = d, .pick = PICK_ZIPF, .zipf = z, .stop = &stop,
					 .seed = case_seed(g_seed, what) + 7 + j };
	readers_start(rd, NREADERS);
	sleep_ms((long)(TEMP_READ_SEC * 1000));
	s = stats_or_bail(db);
	atomic_store_explicit(&stop, true, memory_order_release);
	readers_join(rd, NREADERS, what, &gets_ok, &wrong);
	is_u64(wrong, 0, "%s: %" PRIu64 " zipf gets, every value right", what, gets_ok);
	diag_stats(what, &s);
	return (struct temps){ s.hot_keys, s.warm_keys, s.cold_keys, s.keys };
}

/* Phase C: reopen with the budget; every value right after the restart;
 * zipf convergence. */
static void budget_zipf(const char *p, struct data *d, size_t budget, uint64_t full)
{
	omen_options o = options(budget);
	omen_db *db;
	omen_stats s;
	ds_zipf z;
	struct reader tmpl;
	size_t per_round = scaled(60000, 8000);
	double ideal, target, frac;
	int rounds;

	diag("-- budget: reopen, zipf %.2f", ZIPF_THETA);
	o.sample_every = ZIPF_SAMPLE_EVERY;
	db = open_or_bail(p, &o);
	s = stats_or_bail(db);
	is_u64(s.memory_budget, budget, "reopen: the budget holds after a restart");
	check_resident(db, "reopen with the budget");
	s = stats_or_bail(db);
	ok(s.resident_keys < s.keys, "reopen: the rebuild left values non-resident (%" PRIu64
	   " of %" PRIu64 " resident)", s.resident_keys, s.keys);
	check_all(db, d, "reopen with the budget");
	s = stats_or_bail(db);
	ok(s.reads_storage > 0, "reopen: non-resident values were read from storage and were right "
	   "(%" PRIu64 " of %" PRIu64 " gets)", s.reads_storage, s.reads_memory + s.reads_storage);

	/* The rebuild keeps the smallest keys resident, which are the hot
	 * end of the zipf below: first make the largest 8% of the keys the
	 * resident set (they fit in 7/8 of the budget), so that the zipf
	 * reads start far from where they must converge. */
	tmpl = (struct reader){ .db = db, .d = d, .pick = PICK_UNIFORM, .lo = d->n - d->n * 8 / 100 };
	frac = read_rounds(db, &tmpl, per_round, WARM_TARGET, 1, ZIPF_DEADLINE_SEC, "largest 8%",
			   &rounds);
	ok(frac >= WARM_TARGET, "largest 8%%: reads of a set that fits the budget are served from "
	   "memory (%.3f of a round after %d rounds)", frac, rounds);

	ds_zipf_init(&z, d->n, ZIPF_THETA);
	ideal = zipf_ideal(&z, d->n, full, budget);
	target = zipf_target(ideal);
	diag("zipf: %zu keys, a perfect cache of 7/8 of the budget serves %.3f; target %.3f", d->n,
	     ideal, target);
	tmpl = (struct reader){ .db = db, .d = d, .pick = PICK_ZIPF, .zipf = &z };
	frac = read_rounds(db, &tmpl, per_round, target, 1, ZIPF_DEADLINE_SEC, "zipf", &rounds);
	ok(frac >= target, "zipf: %.3f of one round's gets served from memory after %d rounds "
	   "(target %.3f; a perfect cache %.3f)", frac, rounds, target, ideal);
	check_shard_sums(db, "zipf");
	s = stats_or_bail(db);
	ok(s.value_bytes <= resident_bound(&s), "zipf: resident bytes %" PRIu64 " within the bound %"
	   PRIu64, s.value_bytes, resident_bound(&s));
	ok(s.readmissions > 0, "zipf: values turned hot were re-admitted (%" PRIu64 ")",
	   s.readmissions);
	close_or_bail(db);
}

/*
 * Phases D and E: reopen (no get since), zipf reads of the lower half of
 * the keys only (rank r = the r-th smallest key), then hot, warm and cold
 * while they go on.  The upper half is never read: cold (omendb.h), but
 * for the ranges that straddle the cut.
 */
static struct temps budget_temperatures(const char *p, struct data *d, size_t budget, double hot,
					double cold, const char *what)
{
	omen_options o = options(budget);
	omen_db *db;
	ds_zipf z;
	struct temps t;

	diag("-- budget: %s", what);
	o.sample_every = ZIPF_SAMPLE_EVERY;
	o.temp_hot = hot;
	o.temp_cold = cold;
	db = open_or_bail(p, &o);
	ds_zipf_init(&z, d->n / 2, ZIPF_THETA);
	t = zipf_temperatures(db, d, &z, what);
	is_u64(t.hot + t.warm + t.cold, t.keys, "%s: hot + warm + cold = keys", what);
	ok(t.cold >= d->n / 2 - d->n / 20,
	   "%s: the half never read is cold (%" PRIu64 " cold keys of %zu, %zu never read)",
	   what, t.cold, d->n, d->n - d->n / 2);
	check_shard_sums(db, what);
	close_or_bail(db);
	return t;
}

static void test_budget(void)
{
	struct data d;
	char p[4200];
	uint64_t full;
	size_t budget;
	struct temps t, t2;

	diag("-- budget: load");
	data_init(&d, scaled(NKEYS, 20000), case_seed(g_seed, "budget"));
	path_of(p, sizeof(p), "budget");
	full = budget_load(p, &d);
	budget = (size_t)(full / 10);
	diag("budget: %zu keys, %" PRIu64 " value bytes all resident, budget %zu (10%%)", d.n, full,
	     budget);
	budget_mix(p, &d, budget);
	budget_no_tracking(p, &d, budget);
	budget_zipf(p, &d, budget, full);

	t = budget_temperatures(p, &d, budget, 0, 0, "temperatures, default thresholds");
	ok(t.hot > 0, "default thresholds: the hottest keys are hot (%" PRIu64 ")", t.hot);
	t2 = budget_temperatures(p, &d, budget, 0.99, 0.9, "temperatures, temp_hot 0.99, temp_cold 0.9");
	ok(t2.hot < t.hot, "temp_hot 0.99: fewer hot keys than at 0.8 (%" PRIu64 " < %" PRIu64 ")",
	   t2.hot, t.hot);
	ok(t2.cold > t.cold, "temp_cold 0.9: more cold keys than at 0.3 (%" PRIu64 " > %" PRIu64 ")",
	   t2.cold, t.cold);
	/* Temperatures lie in [0, 1] and hot is above temp_hot. */
	t2 = budget_temperatures(p, &d, budget, 1.0, 0.99, "temperatures, temp_hot 1, temp_cold 0.99");
	is_u64(t2.hot, 0, "temp_hot 1: no key is hot (no temperature exceeds 1)");
	data_free(&d);
}

/* ---------------------------------------------------------------- main */

int main(void)
{
	double t0 = now_sec();

	g_seed = test_seed_from_env(DEFAULT_SEED);
	g_scale = apitest_scale(DEFAULT_SCALE);
	apitest_mkdtemp(base, sizeof(base), "test-temperature");
	plan_no_plan();
	diag("seed %" PRIu64 " (replay: OMEN_TEST_SEED=%" PRIu64 "), scale %.2f, databases under %s",
	     g_seed, g_seed, g_scale, base);

	test_options();
	test_no_tracking();
	test_counting();
	test_budget();

	if (tap_state.failed)
		diag("failed: replay with OMEN_TEST_SEED=%" PRIu64 "%s", g_seed,
		     getenv("OMEN_TEST_KEEP") ? "" : " (OMEN_TEST_KEEP=1 keeps the databases)");
	if (getenv("OMEN_TEST_KEEP"))
		diag("databases kept under %s", base);
	else
		apitest_rm_tree(base);
	diag("%.1f s", now_sec() - t0);
	return done_testing();
}
