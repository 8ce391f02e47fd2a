/*
 * bench/bench_index.c — benchmark of the ALEX learned index (core/alex.h),
 * side by side with a sorted array searched by binary search.  Every op
 * below is single-threaded except readers (up to two threads).
 *
 * For every requested key count n and distribution (tests/lib/datasets.h) it
 * measures:
 *
 *   bulk    alex_bulk_load of the n sorted keys: keys/s (best of a few runs
 *           for small n) and bytes of index memory per key afterwards.
 *   lookup  point lookups of existing keys on the bulk-loaded tree, picked
 *           uniformly and by zipf(0.99); the same probes then run against a
 *           sorted array of the same keys, and the ratio ALEX/array is
 *           printed.  Also latency percentiles p50/p99/p99.9 per lookup.
 *           The main thread built the tree and is its writer, so it uses
 *           alex_writer_lookup (no RCU section, no version checks): the
 *           single-threaded figure of the index as such.
 *   insert  single alex_insert calls into a tree that starts empty, keys in
 *           random (shuffled) order; for timestamps and device also in their
 *           natural arrival order (ascending / time-major).  inserts/s and
 *           bytes/key of the grown tree.
 *   batch   bulk load a random half of the keys, then alex_apply_batch the
 *           other half in sorted batches of 4096 random held-out keys.
 *           keys/s of the applied half, bytes/key afterwards.
 *   readers uniform lookups on a freshly bulk-loaded tree, four ways (see
 *           phase_readers): st, one thread with alex_writer_lookup; r1, one
 *           reader thread with alex_lookup, each call in its own RCU
 *           read-side section, as the engine's read path makes it; r2, two
 *           such readers; rw, one reader while a writer thread applies new
 *           keys paced at --writer-rate (1M keys/s).  Ratios r1/st, r2/r1,
 *           rw/r1 and latency percentiles, next to the issue's targets.
 *
 * Why it is built this way:
 *
 *   - Every payload is a function of its key (payload_of).  Each timed loop
 *     sums the payloads it gets back and the sum is compared, outside the
 *     timing, with the sum expected for the probes; every tree built by
 *     inserts or batches is checked by a lookup of every key.  Any miss or
 *     wrong payload is reported and makes the run exit 1: a benchmark that
 *     quietly times a broken index is worse than none.  The sums are also
 *     printed, which keeps the compiler from discarding the lookups.
 *   - Probes are precomputed, so a timed loop contains nothing but lookups
 *     and an add.  Lookups are independent of each other, so the figure is
 *     throughput (the CPU may overlap cache misses of neighbouring lookups);
 *     the latency samples time one lookup at a time instead.
 *   - Zipf ranks are mapped to keys through a random permutation, so the hot
 *     keys are scattered over the key space instead of all sitting in the
 *     first leaf.
 *   - The sorted array runs in the same process, on the same keys and the
 *     same probe arrays, taking turns with ALEX slice by slice; the ratio is
 *     therefore immune to machine-to-machine differences and to most of the
 *     disturbance from other jobs on a small shared machine.  Its
 *     binary search is branch-free with prefetch (see lookup_sorted), the
 *     strong variant of the baseline rather than a strawman.
 *   - Everything is freed before the next (n, distribution) starts, so 10M
 *     keys x 5 distributions fit comfortably in memory.
 *   - --budget bounds each insert/batch phase in time, so a slow index
 *     during development still yields a (clearly marked partial) figure
 *     instead of a run that never ends; by default there is no budget.
 *
 * Output: a human-readable table per (n, distribution), then one line per
 * measurement of key=value pairs starting with "bench=index", for scripts.
 * Exit status: 0 on success, 1 when any correctness check failed (or the
 * index returned an error), 2 on a usage error, 3 when out of memory.
 */

/* pthread_setaffinity_np, sched_getaffinity and the CPU_* macros. */
#define _GNU_SOURCE

#include "core/alex.h"
#include "core/rcu.h"
#include "tests/lib/datasets.h"
#include "tests/lib/benchutil.h"
#include "tests/lib/die.h"
#include "tests/lib/sorted_search.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

/* Measurements selectable with --ops. */
enum {
	OP_BULK = 1u << 0,
	OP_LOOKUP = 1u << 1,
	OP_INSERT = 1u << 2,
	OP_BATCH = 1u << 3,
	OP_READERS = 1u << 4,
	OP_ALL = OP_BULK | OP_LOOKUP | OP_INSERT | OP_BATCH | OP_READERS,
};

#define BATCH_KEYS      4096      /* keys per alex_apply_batch call (the issue's figure) */
#define ZIPF_THETA      0.99
#define MAX_NS          16        /* distinct --n values accepted */
#define DEFAULT_SEED    20240601u
#define DEFAULT_PROBES  10000000u
#define DEFAULT_SAMPLES 100000u
#define WARMUP_PROBES   (1u << 20)
#define LOOKUP_ROUNDS   8         /* ALEX and the array alternate over this many slices */

/* readers (phase_readers) */
#define READER_ROUNDS   3         /* fresh tree per round; a figure is its best round */
#define READER_CHUNK    4096      /* lookups timed as one block, between clock reads */
#define LAT_BURST       64        /* then this many lookups timed one by one */
#define LAT_KEEP        4096      /* bursts kept per thread and run (reservoir sample) */
#define WRITER_BATCH    1000      /* keys per alex_apply_batch of the paced writer */
#define DEFAULT_RUN_S   1.0       /* length of one readers measurement */
#define DEFAULT_WRITER_RATE 1000000u
#define ONCPU_MIN       0.95      /* a reader on its CPU less than this was disturbed */
#define OTHERS_MAX      0.10      /* so was a run beside this many CPUs of other work */
/* The issue's targets, printed beside the results. */
#define TARGET_R1_VS_ST 0.90
#define TARGET_R2_VS_R1 1.80
#define TARGET_RW_VS_R1 0.70
#define TARGET_RW_P99_NS 2000u

/* Salts so the shuffles and pickers do not reuse the generator's stream. */
#define SALT_SHUFFLE    0x53485546464c4531ull
#define SALT_UNIFORM    0x554e49464f524d31ull
#define SALT_ZIPF       0x5a49504630393931ull
#define SALT_NEWKEYS    0x4e45574b45595331ull

struct options {
	size_t ns[MAX_NS];
	size_t n_count;
	unsigned dists;     /* bit (1u << enum ds_dist) per selected distribution */
	unsigned ops;       /* OP_* bits */
	uint64_t seed;
	size_t probes;      /* lookups per timed loop */
	size_t samples;     /* single lookups timed for the percentiles */
	uint64_t budget_ns; /* stop an insert/batch phase after this long; 0 = never */
	uint64_t run_ns;    /* readers: length of each measurement */
	size_t writer_rate; /* readers: keys/s the rw writer is paced at */
	bool smoke;
	bool check;         /* also run alex_check on every tree built */
};

/* Results and state shared by the whole run: only the main thread touches
 * them (the readers phase's threads report through their own structs). */
static char *g_lines;            /* the machine-readable lines, printed at the end */
static size_t g_lines_len, g_lines_cap;
static unsigned g_failures;      /* correctness failures; non-zero makes exit 1 */
static uint64_t g_checksum;      /* folds the payload sums (readers' aside), printed at the end */
static uint64_t g_timer_ns;      /* median cost of one clock_gettime pair */

/* ---------------------------------------------------------------- helpers */


static void *xmalloc(size_t bytes)
{
	void *p = malloc(bytes ? bytes : 1);

	if (p == NULL) {
		fprintf(stderr, "bench_index: out of memory (%zu bytes)\n", bytes);
		exit(3);
	}
	return p;
}

static uint64_t *copy_keys(const uint64_t *src, size_t n)
{
	uint64_t *dst = xmalloc(n * sizeof(*dst));

	memcpy(dst, src, n * sizeof(*dst));
	return dst;
}

/*
 * The payload stored with a key.  A pure function of the key, so any tree
 * built in any order can be verified without a side table; the multiply
 * makes a payload returned for a neighbouring key (an off-by-one slot)
 * differ from the right one.
 */
static inline uint64_t payload_of(uint64_t key)
{
	return (key ^ (key >> 31)) * 0x9E3779B97F4A7C15ull;
}

static void lines_appendf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void lines_appendf(const char *fmt, ...)
{
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	if (g_lines_len + (size_t)len + 1 > g_lines_cap) {
		size_t cap = g_lines_cap ? g_lines_cap : 4096;
		char *p;

		while (g_lines_len + (size_t)len + 1 > cap)
			cap *= 2;
		p = realloc(g_lines, cap);
		if (p == NULL) {
			fprintf(stderr, "bench_index: out of memory\n");
			exit(3);
		}
		g_lines = p;
		g_lines_cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(g_lines + g_lines_len, g_lines_cap - g_lines_len, fmt, ap);
	va_end(ap);
	g_lines_len += (size_t)len;
}

/* A correctness failure: to stderr (stdout flushed first so it lands in line
 * with the table on a terminal), counted for the exit status. */
static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("FAIL: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	g_failures++;
}

static double per_s(size_t ops, uint64_t ns)
{
	return ns ? (double)ops * 1e9 / (double)ns : 0.0;
}

static double bytes_per_key(const alex_tree *t, size_t n)
{
	return n ? (double)alex_memory_bytes(t) / (double)n : 0.0;
}

static void fold_checksum(uint64_t sum)
{
	g_checksum = ((g_checksum << 7) | (g_checksum >> 57)) ^ sum;
}

static alex_tree *tree_create(void)
{
	alex_tree *t = NULL;
	int rc = alex_create(NULL, &t);

	if (rc != 0) {
		fprintf(stderr, "bench_index: alex_create failed: %d\n", rc);
		exit(rc == -ENOMEM ? 3 : 1);
	}
	return t;
}

/* Optional structural check (--check, --smoke); cheap next to the timing. */
static void tree_check(const alex_tree *t, const char *what, bool enabled)
{
	char msg[256];

	if (enabled && alex_check(t, msg, sizeof(msg)) != 0)
		fail("%s: alex_check: %s", what, msg);
}

/*
 * Look every key up and compare payloads, plus the size.  Run after each
 * tree built by inserts or batches (not timed); sorted order keeps it
 * cache-friendly and fast.  Called on the tree's writer thread (the main
 * thread, with any other writer joined), hence alex_writer_lookup.
 */
static void verify_all(const alex_tree *t, const uint64_t *sorted, size_t n, const char *what)
{
	size_t missing = 0, wrong = 0;

	if (alex_size(t) != n)
		fail("%s: alex_size %" PRIu64 " != %zu keys", what, alex_size(t), n);
	for (size_t i = 0; i < n; i++) {
		uint64_t v = 0;

		if (!alex_writer_lookup(t, sorted[i], &v)) {
			if (missing++ < 3)
				fail("%s: key %#" PRIx64 " (rank %zu) missing", what, sorted[i], i);
		} else if (v != payload_of(sorted[i])) {
			if (wrong++ < 3)
				fail("%s: key %#" PRIx64 " payload %#" PRIx64 " != %#" PRIx64,
				     what, sorted[i], v, payload_of(sorted[i]));
		}
	}
	if (missing || wrong)
		fail("%s: %zu of %zu keys missing, %zu wrong payloads", what, missing, n, wrong);
}

/* ------------------------------------------------------- lookup kernels */

typedef bool (*lookup_fn)(const void *index, uint64_t key, uint64_t *payload);

/* Single-threaded lookup: the writer's own path (or no writer running). */
static bool lookup_alex(const void *index, uint64_t key, uint64_t *payload)
{
	return alex_writer_lookup(index, key, payload);
}

/* A reader's lookup as the engine's read path makes it: one RCU read-side
 * section per call. */
static bool lookup_alex_rcu(const void *index, uint64_t key, uint64_t *payload)
{
	bool found;

	orcu_read_lock();
	found = alex_lookup(index, key, payload);
	orcu_read_unlock();
	return found;
}

/* The baseline: keys and payloads in two parallel sorted arrays. */
struct sorted_array {
	const uint64_t *keys;
	const uint64_t *payloads;
	size_t n;
};

/* The baseline's search: tests/lib/sorted_search.h says why this one. */
static inline bool lookup_sorted(const void *index, uint64_t key, uint64_t *payload)
{
	const struct sorted_array *sa = index;
	size_t i = sorted_lower_bound(sa->keys, sa->n, key);

	if (i >= sa->n || sa->keys[i] != key)
		return false;
	*payload = sa->payloads[i];
	return true;
}

struct probe_run {
	uint64_t sum;       /* sum of payloads found */
	uint64_t misses;    /* probes not found (all probes exist: must be 0) */
	uint64_t ns;
};

/*
 * The timed loop.  always_inline with a constant fn turns the indirect call
 * into a direct one (and inlines lookup_sorted), so neither side pays for
 * the abstraction.
 */
static inline __attribute__((always_inline)) struct probe_run
run_probes(lookup_fn fn, const void *index, const uint64_t *probes, size_t m)
{
	struct probe_run r = { 0, 0, 0 };
	uint64_t t0 = bench_now_ns();

	for (size_t i = 0; i < m; i++) {
		uint64_t v = 0;

		if (fn(index, probes[i], &v))
			r.sum += v;
		else
			r.misses++;
	}
	r.ns = bench_now_ns() - t0;
	return r;
}

static void probe_run_add(struct probe_run *acc, struct probe_run r)
{
	acc->sum += r.sum;
	acc->misses += r.misses;
	acc->ns += r.ns;
}

struct latency {
	uint64_t p50, p99, p999;
};

/*
 * Time single lookups, one clock_gettime pair around each, into lat_ns[0..s);
 * returns the sum of the payloads found.  The figures include the timer's
 * own cost (g_timer_ns, measured at start and printed beside them; ~20 ns
 * on the test VM, whose clock also reads in ~10 ns steps), the same order
 * as a cached lookup, so at the low end only differences and the tail mean
 * much.  The vDSO reads the TSC behind a fence, so successive timed lookups
 * hardly overlap their cache misses: each figure is one lookup's latency.
 */
static inline __attribute__((always_inline)) uint64_t
time_lookups(lookup_fn fn, const void *index, const uint64_t *probes, size_t s, uint64_t *lat_ns)
{
	uint64_t acc = 0;

	for (size_t i = 0; i < s; i++) {
		uint64_t v = 0, t0, t1;

		t0 = bench_now_ns();
		if (fn(index, probes[i], &v))
			acc += v;
		t1 = bench_now_ns();
		lat_ns[i] = t1 - t0;
	}
	return acc;
}

/* Percentiles of s samples; sorts lat_ns in place. */
static struct latency latency_of(uint64_t *lat_ns, size_t s)
{
	struct latency l = { 0, 0, 0 };

	if (s == 0)
		return l;
	ds_sort(lat_ns, s);
	l.p50 = lat_ns[s / 2];
	l.p99 = lat_ns[(s * 99) / 100];
	l.p999 = lat_ns[(s * 999) / 1000];
	return l;
}

/* time_lookups over probes[0..s), then the percentiles.  lat_ns must hold
 * s entries. */
static inline __attribute__((always_inline)) struct latency
run_latency(lookup_fn fn, const void *index, const uint64_t *probes, size_t s,
	    uint64_t *lat_ns, uint64_t *sum)
{
	struct latency l = { 0, 0, 0 };

	if (s == 0)
		return l;
	*sum = time_lookups(fn, index, probes, s, lat_ns);
	return latency_of(lat_ns, s);
}

/* Median cost of an empty clock_gettime pair, reported with the latencies. */
static uint64_t measure_timer_overhead(size_t s)
{
	uint64_t *d = xmalloc(s * sizeof(*d)), med;

	for (size_t i = 0; i < s; i++) {
		uint64_t t0 = bench_now_ns();

		d[i] = bench_now_ns() - t0;
	}
	ds_sort(d, s);
	med = d[s / 2];
	free(d);
	return med;
}

/* ------------------------------------------------------------ reporting */

/* Context of one (n, distribution) run. */
struct run_ctx {
	const struct options *o;
	enum ds_dist dist;
	const char *dname;
	size_t n;
	const uint64_t *sorted;     /* the n keys, ascending */
	const uint64_t *payloads;   /* payload_of(sorted[i]) */
	const uint64_t *shuffled;   /* the n keys in a random order */
};

static void table_header(const struct run_ctx *c)
{
	printf("\n== dist=%s n=%zu ==\n", c->dname, c->n);
	printf("  %-34s %9s %9s %9s  %s\n", "op", "M ops/s", "vs array", "bytes/key",
	       "latency ns p50 / p99 / p99.9");
}

/*
 * One row of the table.  ops_s, ratio and bpk are printed when >= 0, lat
 * when not NULL; note goes after the columns (tree shape, counts).
 */
static void table_row(const char *op, double ops_s, double ratio, double bpk,
		      const struct latency *lat, const char *note)
{
	char o[32] = "-", r[32] = "-", b[32] = "-", l[64] = "", line[512];
	size_t len;

	if (ops_s >= 0)
		snprintf(o, sizeof(o), "%.2f", ops_s / 1e6);
	if (ratio >= 0)
		snprintf(r, sizeof(r), "%.2fx", ratio);
	if (bpk >= 0)
		snprintf(b, sizeof(b), "%.2f", bpk);
	if (lat)
		snprintf(l, sizeof(l), "%" PRIu64 " / %" PRIu64 " / %" PRIu64,
			 lat->p50, lat->p99, lat->p999);
	snprintf(line, sizeof(line), "  %-34s %9s %9s %9s  %s%s%s", op, o, r, b, l,
		 (*l && note && *note) ? "  " : "", note ? note : "");
	len = strlen(line);
	while (len > 0 && line[len - 1] == ' ')   /* no trailing blanks in logs */
		line[--len] = '\0';
	puts(line);
	fflush(stdout);
}

static void tree_note(const alex_tree *t, char *buf, size_t len)
{
	alex_stats st;

	/* A reader function: its contract wants a read-side section even on
	 * the writer thread. */
	orcu_read_lock();
	alex_get_stats(t, &st);
	orcu_read_unlock();
	snprintf(buf, len,
		 "leaves=%" PRIu64 " inners=%" PRIu64 " depth=%" PRIu32 " expand=%" PRIu64
		 " split_side=%" PRIu64 " split_down=%" PRIu64,
		 st.leaves, st.inners, st.max_depth, st.expansions,
		 st.splits_sideways, st.splits_down);
}

/* -------------------------------------------------------------- phases */

/*
 * Fill probes[0..m) with existing keys: pick 0 draws a uniform rank, pick 1
 * a zipf(0.99) rank mapped through the shuffled key order so that the hot
 * keys are scattered over the key space.
 */
static void fill_probes(const struct run_ctx *c, int pick, uint64_t *probes, size_t m)
{
	size_t n = c->n;
	ds_rng rng;

	if (pick == 0) {
		ds_rng_seed(&rng, c->o->seed ^ SALT_UNIFORM ^ n);
		for (size_t i = 0; i < m; i++)
			probes[i] = c->sorted[ds_rng_next(&rng) % n];
	} else {
		ds_zipf z;

		ds_rng_seed(&rng, c->o->seed ^ SALT_ZIPF ^ n);
		ds_zipf_init(&z, n, ZIPF_THETA);
		for (size_t i = 0; i < m; i++) {
			uint64_t rank = ds_zipf_next(&z, &rng);

			probes[i] = c->shuffled[rank < n ? rank : n - 1];
		}
	}
}

/* " p50_ns=.. p99_ns=.. p999_ns=.. timer_ns=.." or "" when not measured. */
static void latency_fields(char *buf, size_t len, const struct latency *l, size_t samples)
{
	if (samples == 0) {
		buf[0] = '\0';
		return;
	}
	snprintf(buf, len, " p50_ns=%" PRIu64 " p99_ns=%" PRIu64 " p999_ns=%" PRIu64
		 " timer_ns=%" PRIu64, l->p50, l->p99, l->p999, g_timer_ns);
}

/*
 * One picker: time ALEX and the sorted array on the same probes, check both
 * sums against the expected one, sample latencies, report.  probes and
 * lat_ns are scratch arrays of m and s entries.
 */
static void lookup_pick(const struct run_ctx *c, const alex_tree *t, int pick,
			uint64_t *probes, size_t m, uint64_t *lat_ns, size_t s)
{
	const char *pname = pick ? "zipf0.99" : "uniform";
	struct sorted_array sa = { c->sorted, c->payloads, c->n };
	size_t n = c->n, warm = m < WARMUP_PROBES ? m : WARMUP_PROBES;
	struct probe_run ra, rs;
	struct latency la, ls;
	uint64_t expect = 0, lsum_a = 0, lsum_s = 0;
	char label[64], note[64], lat_a[128], lat_s[128];
	double ratio, bpk = bytes_per_key(t, n);

	fill_probes(c, pick, probes, m);
	for (size_t i = 0; i < m; i++)
		expect += payload_of(probes[i]);

	/* Same untimed warm-up for both: page tables, TLB, caches. */
	(void)run_probes(lookup_alex, t, probes, warm);
	(void)run_probes(lookup_sorted, &sa, probes, warm);

	/*
	 * The probes are cut into LOOKUP_ROUNDS slices and the two structures
	 * take turns slice by slice (alternating which goes first), so a burst
	 * of load from other processes on this small machine hits both about
	 * equally and the ratio stays meaningful even when absolute figures
	 * are disturbed.  A slice is long enough (m / 8) that refilling the
	 * cache after the other structure ran is noise.
	 */
	memset(&ra, 0, sizeof(ra));
	memset(&rs, 0, sizeof(rs));
	for (size_t r = 0; r < LOOKUP_ROUNDS; r++) {
		size_t off = m * r / LOOKUP_ROUNDS, len = m * (r + 1) / LOOKUP_ROUNDS - off;

		if (r & 1) {
			probe_run_add(&rs, run_probes(lookup_sorted, &sa, probes + off, len));
			probe_run_add(&ra, run_probes(lookup_alex, t, probes + off, len));
		} else {
			probe_run_add(&ra, run_probes(lookup_alex, t, probes + off, len));
			probe_run_add(&rs, run_probes(lookup_sorted, &sa, probes + off, len));
		}
	}

	if (ra.misses || ra.sum != expect) {
		size_t wrong = 0;

		/* Recount slowly to say what went wrong. */
		for (size_t i = 0; i < m; i++) {
			uint64_t v = 0;

			if (lookup_alex(t, probes[i], &v) && v != payload_of(probes[i]))
				wrong++;
		}
		fail("%s n=%zu lookup %s: %" PRIu64 " of %zu probes missed, %zu wrong payloads",
		     c->dname, n, pname, ra.misses, m, wrong);
	}
	if (rs.misses || rs.sum != expect)
		fail("%s n=%zu lookup %s: sorted-array baseline is wrong (%" PRIu64 " misses)",
		     c->dname, n, pname, rs.misses);
	fold_checksum(ra.sum);
	fold_checksum(rs.sum);

	la = run_latency(lookup_alex, t, probes, s, lat_ns, &lsum_a);
	ls = run_latency(lookup_sorted, &sa, probes, s, lat_ns, &lsum_s);
	if (lsum_a != lsum_s)
		fail("%s n=%zu lookup %s: latency sample sums differ", c->dname, n, pname);
	fold_checksum(lsum_a);

	ratio = rs.ns ? per_s(m, ra.ns) / per_s(m, rs.ns) : 0.0;
	snprintf(label, sizeof(label), "lookup %s", pname);
	snprintf(note, sizeof(note), "sum=%#" PRIx64, ra.sum);
	table_row(label, per_s(m, ra.ns), ratio, bpk, s ? &la : NULL, note);
	snprintf(label, sizeof(label), "  sorted_array lookup %s", pname);
	table_row(label, per_s(m, rs.ns), -1, 16.0, s ? &ls : NULL, NULL);

	latency_fields(lat_a, sizeof(lat_a), &la, s);
	latency_fields(lat_s, sizeof(lat_s), &ls, s);
	lines_appendf("bench=index dist=%s n=%zu op=lookup impl=alex pick=%s threads=1 "
		      "probes=%zu ops_per_s=%.0f%s ratio_vs=sorted_array:%.2f "
		      "bytes_per_key=%.2f checksum=%#" PRIx64 "\n",
		      c->dname, n, pname, m, per_s(m, ra.ns), lat_a, ratio, bpk, ra.sum);
	lines_appendf("bench=index dist=%s n=%zu op=lookup impl=sorted_array pick=%s threads=1 "
		      "probes=%zu ops_per_s=%.0f%s bytes_per_key=16.00 checksum=%#" PRIx64 "\n",
		      c->dname, n, pname, m, per_s(m, rs.ns), lat_s, rs.sum);
}

/*
 * bulk + lookup.  The tree is bulk loaded three times, each into a fresh
 * tree (so each run pays for first-touch page faults, as a real load
 * does); the best run is the figure and the worst is printed beside it,
 * because first-touch costs vary with the kernel's huge-page supply.
 * Then both pickers run against the tree and against the sorted array.
 */
static void phase_bulk_lookup(const struct run_ctx *c)
{
	const struct options *o = c->o;
	size_t n = c->n;
	unsigned reps = (o->ops & OP_BULK) ? 3 : 1;
	uint64_t best_ns = UINT64_MAX, worst_ns = 0;
	alex_tree *t = NULL;

	for (unsigned r = 0; r < reps; r++) {
		uint64_t t0, ns;
		int rc;

		alex_destroy(t);
		t = tree_create();
		t0 = bench_now_ns();
		rc = alex_bulk_load(t, c->sorted, c->payloads, n);
		ns = bench_now_ns() - t0;
		if (rc != 0) {
			fail("%s n=%zu: alex_bulk_load returned %d", c->dname, n, rc);
			alex_destroy(t);
			return;
		}
		if (ns < best_ns)
			best_ns = ns;
		if (ns > worst_ns)
			worst_ns = ns;
	}
	tree_check(t, "bulk load", o->check);
	if (o->ops & OP_BULK) {
		double bpk = bytes_per_key(t, n);
		char label[64], note[256];

		tree_note(t, note, sizeof(note));
		snprintf(label, sizeof(label), "bulk_load (best of %u; worst %.1f)", reps,
			 per_s(n, worst_ns) / 1e6);
		table_row(label, per_s(n, best_ns), -1, bpk, NULL, note);
		table_row("  sorted_array (keys+payloads)", -1, -1, 16.0, NULL, NULL);
		lines_appendf("bench=index dist=%s n=%zu op=bulk impl=alex threads=1 ops_per_s=%.0f "
			      "ops_per_s_worst=%.0f runs=%u bytes_per_key=%.2f %s\n", c->dname, n,
			      per_s(n, best_ns), per_s(n, worst_ns), reps, bpk, note);
	}
	if (o->ops & OP_LOOKUP) {
		size_t m = o->probes, s = o->samples < m ? o->samples : m;
		uint64_t *probes = xmalloc(m * sizeof(*probes));
		uint64_t *lat_ns = xmalloc((s ? s : 1) * sizeof(*lat_ns));

		lookup_pick(c, t, 0, probes, m, lat_ns, s);
		lookup_pick(c, t, 1, probes, m, lat_ns, s);
		free(lat_ns);
		free(probes);
	}
	alex_destroy(t);
}

/*
 * --budget: a build phase that runs past it stops early.  Checked every
 * BUDGET_STRIDE operations so the clock read costs nothing measurable.
 */
#define BUDGET_STRIDE 4096

static bool over_budget(const struct options *o, uint64_t t0)
{
	return o->budget_ns && bench_now_ns() - t0 > o->budget_ns;
}

/*
 * Verify a tree that holds only the first `done` keys of `order` (a phase
 * stopped by --budget): sort that prefix and look every key up.
 */
static void verify_prefix(const alex_tree *t, const uint64_t *order, size_t done, const char *what)
{
	uint64_t *got = copy_keys(order, done);

	ds_sort(got, done);
	verify_all(t, got, done, what);
	free(got);
}

/* "complete=1" or "complete=0 keys_done=K" for the machine lines. */
static void completion_fields(char *buf, size_t len, size_t done, size_t total)
{
	if (done == total)
		snprintf(buf, len, "complete=1");
	else
		snprintf(buf, len, "complete=0 keys_done=%zu", done);
}

/*
 * Grow a tree from empty with one alex_insert per key, in the given order.
 * order_name is "random" or "natural".
 */
static void phase_insert(const struct run_ctx *c, const char *order_name, const uint64_t *order)
{
	size_t n = c->n, bad = 0, done = 0;
	alex_tree *t = tree_create();
	uint64_t t0, ns;
	int first_rc = 1;
	char label[64], what[96], note[320], comp[64];
	double bpk;

	t0 = bench_now_ns();
	for (; done < n; done++) {
		int rc;

		if (done % BUDGET_STRIDE == 0 && done && over_budget(c->o, t0))
			break;
		rc = alex_insert(t, order[done], payload_of(order[done]));
		if (rc != 1) {          /* every key is new: 0 would mean a false duplicate */
			if (bad++ == 0)
				first_rc = rc;
			if (rc < 0)
				break;
		}
	}
	ns = bench_now_ns() - t0;
	snprintf(what, sizeof(what), "%s n=%zu insert %s", c->dname, n, order_name);
	if (bad) {
		fail("%s: %zu inserts did not return 1 (first: %d)", what, bad, first_rc);
	} else {
		tree_check(t, what, c->o->check);
		if (done == n)
			verify_all(t, c->sorted, n, what);
		else
			verify_prefix(t, order, done, what);
	}
	bpk = bytes_per_key(t, done);
	tree_note(t, note, sizeof(note));
	if (done < n)
		snprintf(note + strlen(note), sizeof(note) - strlen(note),
			 " PARTIAL: --budget stopped it after %zu of %zu keys", done, n);
	completion_fields(comp, sizeof(comp), done, n);
	snprintf(label, sizeof(label), "insert %s order", order_name);
	table_row(label, per_s(done, ns), -1, bpk, NULL, note);
	tree_note(t, note, sizeof(note));
	lines_appendf("bench=index dist=%s n=%zu op=insert order=%s impl=alex threads=1 ops_per_s=%.0f "
		      "bytes_per_key=%.2f %s %s\n", c->dname, n, order_name, per_s(done, ns), bpk,
		      comp, note);
	alex_destroy(t);
}

/*
 * Verify a tree that holds the keys base[0..nbase) (any order) plus the
 * keys of the PUT ops ops[0..applied).
 */
static void verify_with_ops(const alex_tree *t, const uint64_t *base, size_t nbase,
			    const alex_op *ops, size_t applied, const char *what)
{
	size_t total = nbase + applied;
	uint64_t *got = xmalloc((total ? total : 1) * sizeof(*got));

	memcpy(got, base, nbase * sizeof(*got));
	for (size_t i = 0; i < applied; i++)
		got[nbase + i] = ops[i].key;
	ds_sort(got, total);
	verify_all(t, got, total, what);
	free(got);
}

/*
 * keys[0..n), in the order they are to be applied, as PUT ops (payload_of)
 * cut into batches of `batch` keys, each batch sorted by key as
 * alex_apply_batch requires.  ops must hold n entries.
 */
static void make_put_batches(const uint64_t *keys, size_t n, size_t batch, alex_op *ops)
{
	for (size_t off = 0; off < n; off += batch) {
		size_t len = n - off < batch ? n - off : batch;
		uint64_t *chunk = copy_keys(keys + off, len);

		ds_sort(chunk, len);
		for (size_t i = 0; i < len; i++) {
			ops[off + i].key = chunk[i];
			ops[off + i].payload = payload_of(chunk[i]);
			ops[off + i].kind = ALEX_OP_PUT;
		}
		free(chunk);
	}
}

/*
 * Bulk load a random half, then apply the other half as sorted batches of
 * BATCH_KEYS random held-out keys.  Only the alex_apply_batch calls are
 * timed: choosing and sorting the batches is the caller's work, done ahead.
 */
static void phase_batch(const struct run_ctx *c)
{
	size_t n = c->n, pre = n / 2, held = n - pre, applied = 0;
	uint64_t *load = copy_keys(c->shuffled, pre);
	uint64_t *load_pay = xmalloc((pre ? pre : 1) * sizeof(*load_pay));
	alex_op *ops = xmalloc((held ? held : 1) * sizeof(*ops));
	alex_tree *t = tree_create();
	uint64_t t0, ns;
	char what[96], note[320], label[64], comp[64];
	bool ok = true;
	double bpk;
	int rc;

	snprintf(what, sizeof(what), "%s n=%zu batch", c->dname, n);
	ds_sort(load, pre);
	for (size_t i = 0; i < pre; i++)
		load_pay[i] = payload_of(load[i]);
	rc = alex_bulk_load(t, load, load_pay, pre);
	free(load_pay);
	free(load);
	if (rc != 0) {
		fail("%s: alex_bulk_load of %zu keys returned %d", what, pre, rc);
		goto out;
	}

	/* The held-out half in random order, cut into batches, each sorted. */
	make_put_batches(c->shuffled + pre, held, BATCH_KEYS, ops);

	t0 = bench_now_ns();
	for (size_t off = 0; off < held; off += BATCH_KEYS) {
		size_t len = held - off < BATCH_KEYS ? held - off : BATCH_KEYS;
		alex_batch_result res = { 0, 0, 0, 0 };

		if (off && over_budget(c->o, t0))
			break;
		rc = alex_apply_batch(t, ops + off, len, &res);
		applied += res.inserted;
		if (rc != 0 || res.inserted != len) {
			fail("%s: alex_apply_batch at op %zu returned %d, inserted %" PRIu64 " of %zu "
			     "(updated %" PRIu64 ")", what, off, rc, res.inserted, len, res.updated);
			ok = false;
			break;
		}
	}
	ns = bench_now_ns() - t0;
	if (ok) {
		tree_check(t, what, c->o->check);
		if (applied == held)
			verify_all(t, c->sorted, n, what);
		else    /* stopped by --budget: the preloaded half plus whole batches */
			verify_with_ops(t, c->shuffled, pre, ops, applied, what);
	}
	bpk = bytes_per_key(t, pre + applied);
	tree_note(t, note, sizeof(note));
	if (applied < held)
		snprintf(note + strlen(note), sizeof(note) - strlen(note),
			 " PARTIAL: %zu of %zu keys applied", applied, held);
	completion_fields(comp, sizeof(comp), applied, held);
	snprintf(label, sizeof(label), "batch_apply %u (half preloaded)", BATCH_KEYS);
	table_row(label, per_s(applied, ns), -1, bpk, NULL, note);
	tree_note(t, note, sizeof(note));
	lines_appendf("bench=index dist=%s n=%zu op=batch batch=%u preloaded=%zu impl=alex threads=1 "
		      "ops_per_s=%.0f bytes_per_key=%.2f %s %s\n", c->dname, n, BATCH_KEYS, pre,
		      per_s(applied, ns), bpk, comp, note);
out:
	alex_destroy(t);
	free(ops);
}

/* ------------------------------------------------------------- readers */

/*
 * readers: what the one-writer / lock-free-readers design costs a lookup.
 * Four measurements over the same uniform probes (existing keys), each a
 * run of --seconds on a freshly bulk-loaded tree of the n keys:
 *
 *   st  one thread, alex_writer_lookup: no RCU, no version checks.  The
 *       index's own single-threaded speed, the baseline of r1.
 *   r1  one reader thread, alex_lookup, each call inside its own
 *       orcu_read_lock/unlock (what the engine's read path does), no
 *       writer.
 *   r2  two such readers at once: aggregate ops/s, the baseline being r1.
 *   rw  one reader while a writer thread applies new keys through
 *       alex_apply_batch, paced at --writer-rate keys/s: one batch of
 *       WRITER_BATCH keys per period on a fixed schedule (batch b is due b
 *       periods after the start), so a writer that falls behind runs its
 *       batches back to back and its achieved rate says whether it kept
 *       up.  The baseline is r1.
 *
 * Why it is built this way:
 *
 *   - Rounds.  READER_ROUNDS times: bulk load a fresh tree, run st, r1 and
 *     r2 in rotated order, then rw (last, because it grows the tree),
 *     verify, destroy.  The figure of each measurement is its best round
 *     (ratios are of best rounds), and its latency percentiles come from
 *     that same run: other jobs on this small shared machine only ever
 *     slow a run down (on 2 CPUs a third busy thread halves a reader), so
 *     the fastest of the interleaved runs is the closest to the undisturbed
 *     figure.  Every round's value is printed, and so are two witnesses
 *     for the run used: the on-CPU fraction of its readers (thread CPU
 *     time / wall time, the lowest of its threads), which drops when
 *     something else runs on a reader's CPU, and the CPUs' worth of other
 *     work on the machine meanwhile (busy and stolen time in /proc/stat,
 *     less this process's own), which also catches a job on the other
 *     CPU competing for the shared cache and memory, or the hypervisor
 *     taking time.  Past ONCPU_MIN or OTHERS_MAX the row says DISTURBED.
 *   - Every measurement runs in threads of its own, st included, pinned
 *     when two CPUs are usable: st, r1, r2's first reader and the rw reader
 *     on the first, r2's second reader and the rw writer on the second.
 *     So st and r1 differ in nothing but the lookup path, and the main
 *     thread (unpinned, blocked in pthread_join) runs nothing meanwhile.
 *   - Throughput and latency come from the same run.  A reader alternates
 *     a block of READER_CHUNK lookups timed as a whole (throughput: the CPU
 *     overlaps the cache misses of independent lookups) with a burst of
 *     LAT_BURST lookups timed one by one by time_lookups (latency: a clock
 *     pair around each, its ~20 ns included, g_timer_ns).  ops/s counts the
 *     blocks only, so the timer's cost and the serialisation it imposes
 *     stay out of it, while the bursts (about 5% of a run at 10M keys)
 *     spread the latency samples over the whole run, writer activity
 *     included.  When a run has more than LAT_KEEP bursts (small trees) a
 *     reservoir keeps LAT_KEEP of them, uniformly over the run.
 *   - The writer's keys come from the data set's own distribution
 *     (new_keys_between): each lies strictly inside the gap after a random
 *     rank, one key per rank, so they are spread like the loaded keys
 *     (device: a random device, a random time within its readings).  None
 *     is a probe or a loaded key, so every batch must insert all its keys
 *     and no probe's payload ever changes.  Every round's fresh tree gets
 *     the same new keys.
 *   - Checks: misses must be 0 and each thread's payload sum must equal the
 *     sum of exactly the probes it ran (blocks and bursts), under the
 *     writer too; after rw every loaded and every applied key is looked up
 *     (and alex_check runs with --check).
 */

enum rd_kind { RD_ST, RD_R1, RD_R2, RD_RW, RD_NKIND };

/* What the threads of one measurement share. */
struct rd_shared {
	const alex_tree *t;
	const uint64_t *probes;  /* m uniform picks of loaded keys; read-only */
	size_t m;                /* a multiple of seg                          */
	size_t seg;              /* READER_CHUNK + burst: one block + one burst */
	size_t burst;            /* LAT_BURST, or 0 with --samples 0           */
	uint64_t run_ns;
	pthread_barrier_t go;    /* the threads of a measurement start together */
	atomic_bool stop;        /* set by the writer when it stops; relaxed: a
				  * hint to stop, it orders nothing            */
};

/* One reader thread: its arguments, then its results. */
struct reader {
	/* Own cache line: the two readers of r2 update their results every
	 * block, from different CPUs. */
	_Alignas(64) struct rd_shared *sh;
	bool rcu;                /* lookup_alex_rcu, else lookup_alex      */
	int cpu;                 /* pin to it; -1: not pinned             */
	size_t start;            /* first probe, a multiple of sh->seg    */
	uint64_t *lat_ns;        /* (LAT_KEEP + 1) * burst: kept + scratch */

	struct probe_run run;    /* the blocks                            */
	uint64_t burst_sum;      /* payloads found by the bursts          */
	size_t segs;             /* blocks (each followed by a burst) run */
	size_t lat_n;            /* samples kept in lat_ns                */
	double oncpu;            /* thread CPU time / wall time of the run */
	bool pinned;
};

/* The rw writer thread. */
struct writer {
	struct rd_shared *sh;
	alex_tree *t;
	const alex_op *ops;      /* sorted batches of WRITER_BATCH new keys */
	size_t n_ops;
	uint64_t period_ns;      /* one batch is due every period          */
	int cpu;

	size_t applied;          /* ops applied, whole batches             */
	uint64_t ns;             /* from its start to its stop             */
	uint64_t max_lag_ns;     /* latest start of a batch after its due time */
	uint64_t max_batch_ns;   /* longest alex_apply_batch call          */
	double busy;             /* thread CPU time / wall time            */
	bool ran_out;            /* applied every op before the run ended  */
	bool failed;             /* an alex_apply_batch did not insert all */
	int fail_rc;
	uint64_t fail_inserted;
	bool pinned;
};

/* What a measurement kind collected over the rounds. */
struct rd_result {
	double ops[READER_ROUNDS];   /* aggregate lookups/s of each round       */
	double oncpu[READER_ROUNDS]; /* the lowest of its readers' on-CPU fractions */
	double others[READER_ROUNDS];/* CPUs of other work meanwhile, -1: unknown */
	uint64_t *lat;               /* samples of every round and thread       */
	size_t lat_off[READER_ROUNDS], lat_cnt[READER_ROUNDS]; /* a round's in lat */
	size_t lat_n;
};

/* The rw writer of one round. */
struct rd_writer_round {
	double rate;                 /* keys/s achieved                         */
	uint64_t max_lag_ns, max_batch_ns;
	double busy;
	size_t applied;
	bool ran_out, ok;
};

struct rd_ctx {
	const struct run_ctx *c;
	struct rd_shared sh;
	int cpu[2];                  /* the two CPUs, or -1 -1: no pinning      */
	bool pin_failed;             /* some thread could not be pinned         */
	uint64_t *seg_sum;           /* payload sum of each seg of the probes   */
	uint64_t all_sum;            /* of all of them                          */
	size_t nseg;
	uint64_t *lat_buf[2];        /* per reader thread                       */
	alex_op *ops;                /* the writer's batches                    */
	size_t n_ops;
	struct rd_result res[RD_NKIND];
	struct rd_writer_round wr[READER_ROUNDS];
};

/* A pthread call that cannot fail for want of anything this program
 * controls: abort, saying where. */
#define PTHREAD_OK(call) do {                                           \
		int rc_ = (call);                                       \
		if (rc_ != 0)                                           \
			TEST_DIE("%s: %s", #call, strerror(rc_));       \
	} while (0)

/* The first two CPUs the process may run on, or -1 -1 when there are
 * fewer: then nothing is pinned. */
static void pick_cpus(int cpu[2])
{
	cpu_set_t set;
	int k = 0;

	cpu[0] = cpu[1] = -1;
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2 || sched_getaffinity(0, sizeof(set), &set) != 0)
		return;
	for (int i = 0; i < CPU_SETSIZE && k < 2; i++)
		if (CPU_ISSET(i, &set))
			cpu[k++] = i;
	if (k < 2)
		cpu[0] = cpu[1] = -1;
}

/* Pin the calling thread to cpu (>= 0); false when not pinned. */
static bool pin_self(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return false;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

/* CPU time of the calling thread (CLOCK_THREAD_CPUTIME_ID) or of the
 * process (CLOCK_PROCESS_CPUTIME_ID). */
static uint64_t cpu_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t thread_cpu_ns(void)
{
	return cpu_ns(CLOCK_THREAD_CPUTIME_ID);
}

/* The machine's CPU time, busy or stolen by the hypervisor, and ours. */
struct machine_load {
	uint64_t wall_ns, busy_ns, self_ns;
	bool ok;
};

static void machine_load_read(struct machine_load *m)
{
	unsigned long long user, nice, sys, idle, iowait, irq, softirq, steal;
	FILE *f = fopen("/proc/stat", "r");
	long hz = sysconf(_SC_CLK_TCK);

	m->wall_ns = bench_now_ns();
	m->self_ns = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
	m->ok = f && hz > 0 && fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &user,
				      &nice, &sys, &idle, &iowait, &irq, &softirq, &steal) == 8;
	if (m->ok)
		m->busy_ns = (user + nice + sys + irq + softirq + steal) *
			     (1000000000ull / (uint64_t)hz);
	if (f)
		fclose(f);
}

/* CPUs' worth of work between a and b that was not this process's; -1 when
 * unknown, or when the interval is under 0.2 s: /proc/stat counts in clock
 * ticks (10 ms), about +-0.02 CPUs over a 1 s run. */
static double machine_load_others(const struct machine_load *a, const struct machine_load *b)
{
	double busy, self;

	if (!a->ok || !b->ok || b->wall_ns < a->wall_ns + 200000000u)
		return -1;
	busy = (double)(b->busy_ns - a->busy_ns);
	self = (double)(b->self_ns - a->self_ns);
	return busy > self ? (busy - self) / (double)(b->wall_ns - a->wall_ns) : 0;
}

/* One reader's run: blocks and bursts (see the top of this section) until
 * its time is up or the writer stops. */
static inline __attribute__((always_inline)) void reader_loop(lookup_fn fn, struct reader *rd)
{
	struct rd_shared *sh = rd->sh;
	size_t pos = rd->start, bursts = 0;
	uint64_t *scratch = rd->lat_ns + (size_t)LAT_KEEP * sh->burst;
	uint64_t cpu0 = thread_cpu_ns(), t0 = bench_now_ns(), end = t0 + sh->run_ns;
	ds_rng rng;

	ds_rng_seed(&rng, rd->start ^ SALT_UNIFORM);
	do {
		probe_run_add(&rd->run, run_probes(fn, sh->t, sh->probes + pos, READER_CHUNK));
		if (sh->burst) {
			/* Reservoir: burst b replaces a kept one with
			 * probability LAT_KEEP / (b + 1). */
			size_t slot = bursts < LAT_KEEP ? bursts
				    : (size_t)(ds_rng_next(&rng) % (bursts + 1));
			uint64_t *dst = slot < LAT_KEEP ? rd->lat_ns + slot * sh->burst : scratch;

			rd->burst_sum += time_lookups(fn, sh->t, sh->probes + pos + READER_CHUNK,
						      sh->burst, dst);
			bursts++;
		}
		rd->segs++;
		pos += sh->seg;
		if (pos == sh->m)
			pos = 0;
	} while (bench_now_ns() < end && !atomic_load_explicit(&sh->stop, memory_order_relaxed));
	rd->oncpu = (double)(thread_cpu_ns() - cpu0) / (double)(bench_now_ns() - t0);
	rd->lat_n = (bursts < LAT_KEEP ? bursts : LAT_KEEP) * sh->burst;
}

static void *reader_main(void *arg)
{
	struct reader *rd = arg;

	rd->pinned = pin_self(rd->cpu);
	if (rd->rcu) {
		/* Register with liburcu here, outside the timing. */
		orcu_read_lock();
		orcu_read_unlock();
	}
	(void)pthread_barrier_wait(&rd->sh->go);
	/* Two calls with constant functions: run_probes and time_lookups
	 * inline them, as in the single-threaded loops. */
	if (rd->rcu)
		reader_loop(lookup_alex_rcu, rd);
	else
		reader_loop(lookup_alex, rd);
	return NULL;
}

static void sleep_until(uint64_t t_ns)
{
	struct timespec ts = { (time_t)(t_ns / 1000000000u), (long)(t_ns % 1000000000u) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/*
 * The paced writer.  The run is the window [start, start + run_ns): it
 * sleeps until each batch is due, or starts it at once when late (the lag
 * measured after any sleep, so the wake-up delay counts), never starts a
 * batch at or after the end, and waits for the end when done early, so its
 * rate is over the same window as the reader's.  Out of keys, it stops the
 * run early instead (and says so).
 */
static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint64_t t0, end, cpu0;
	size_t off = 0;

	w->pinned = pin_self(w->cpu);
	(void)pthread_barrier_wait(&w->sh->go);
	cpu0 = thread_cpu_ns();
	t0 = bench_now_ns();
	end = t0 + w->sh->run_ns;
	for (uint64_t b = 0;; b++) {
		uint64_t due = t0 + b * w->period_ns, now = bench_now_ns();
		size_t len = w->n_ops - off < WRITER_BATCH ? w->n_ops - off : WRITER_BATCH;
		alex_batch_result res = { 0, 0, 0, 0 };
		uint64_t took;
		int rc;

		if (len == 0) {
			w->ran_out = true;
			break;
		}
		if (due >= end || now >= end) {
			if (now < end)
				sleep_until(end);
			break;
		}
		if (now < due) {
			sleep_until(due);
			now = bench_now_ns();
		}
		if (now - due > w->max_lag_ns)
			w->max_lag_ns = now - due;
		rc = alex_apply_batch(w->t, w->ops + off, len, &res);
		took = bench_now_ns() - now;
		if (took > w->max_batch_ns)
			w->max_batch_ns = took;
		if (rc != 0 || res.inserted != len) {
			w->failed = true;
			w->fail_rc = rc;
			w->fail_inserted = res.inserted;
			break;
		}
		off += len;
	}
	w->applied = off;
	w->ns = bench_now_ns() - t0;
	/* Clamped: the two clocks tick differently, which shows on tiny runs. */
	w->busy = w->ns ? (double)(thread_cpu_ns() - cpu0) / (double)w->ns : 0;
	w->busy = w->busy < 1 ? w->busy : 1;
	atomic_store_explicit(&w->sh->stop, true, memory_order_relaxed);
	return NULL;
}

/* Start nr readers, and the writer when w is not NULL, together on sh->go;
 * wait for all of them. */
static void run_threads(struct rd_shared *sh, struct reader *rd, int nr, struct writer *w)
{
	pthread_t th[3];
	int nt = 0;

	atomic_store_explicit(&sh->stop, false, memory_order_relaxed);
	PTHREAD_OK(pthread_barrier_init(&sh->go, NULL, (unsigned)nr + (w != NULL)));
	for (int i = 0; i < nr; i++)
		PTHREAD_OK(pthread_create(&th[nt++], NULL, reader_main, &rd[i]));
	if (w)
		PTHREAD_OK(pthread_create(&th[nt++], NULL, writer_main, w));
	for (int i = 0; i < nt; i++)
		PTHREAD_OK(pthread_join(th[i], NULL));
	PTHREAD_OK(pthread_barrier_destroy(&sh->go));
}

/* Payload sum of segs segments of the probes from segment first on,
 * wrapping around as the readers do. */
static uint64_t rd_expected_sum(const struct rd_ctx *x, size_t first, size_t segs)
{
	uint64_t sum = (uint64_t)(segs / x->nseg) * x->all_sum;

	for (size_t k = 0; k < segs % x->nseg; k++)
		sum += x->seg_sum[(first + k) % x->nseg];
	return sum;
}

static const char *const rd_names[RD_NKIND] = { "st", "r1", "r2", "rw" };

/*
 * One measurement of kind k in round r on tree t: run the threads, check
 * every reader's sum, keep its latency samples, record the aggregate
 * lookups/s (and, for rw, the writer's figures).
 */
static void rd_measure(struct rd_ctx *x, enum rd_kind k, alex_tree *t, unsigned r)
{
	const struct run_ctx *c = x->c;
	struct rd_result *res = &x->res[k];
	struct reader rd[2];
	struct writer w;
	struct machine_load load0, load1;
	int nr = k == RD_R2 ? 2 : 1;
	double ops = 0, oncpu = 1;

	x->sh.t = t;
	memset(rd, 0, sizeof(rd));
	for (int i = 0; i < nr; i++) {
		rd[i].sh = &x->sh;
		rd[i].rcu = k != RD_ST;
		rd[i].cpu = x->cpu[i];
		/* The second reader starts half-way through the probes, so the
		 * two do not fetch the same nodes in step for each other. */
		rd[i].start = i ? x->nseg / 2 * x->sh.seg : 0;
		rd[i].lat_ns = x->lat_buf[i];
	}
	memset(&w, 0, sizeof(w));
	w.sh = &x->sh;
	w.t = t;
	w.ops = x->ops;
	w.n_ops = x->n_ops;
	w.period_ns = (uint64_t)WRITER_BATCH * 1000000000u / c->o->writer_rate;
	w.cpu = x->cpu[1];

	machine_load_read(&load0);
	run_threads(&x->sh, rd, nr, k == RD_RW ? &w : NULL);
	machine_load_read(&load1);
	res->others[r] = machine_load_others(&load0, &load1);

	for (int i = 0; i < nr; i++) {
		uint64_t expect = rd_expected_sum(x, rd[i].start / x->sh.seg, rd[i].segs);
		uint64_t got = rd[i].run.sum + rd[i].burst_sum;

		if (rd[i].run.misses || got != expect)
			fail("%s n=%zu readers %s round %u thread %d: %" PRIu64 " of %zu lookups "
			     "missed, payload sum %#" PRIx64 " != %#" PRIx64 " expected", c->dname,
			     c->n, rd_names[k], r, i, rd[i].run.misses, rd[i].segs * x->sh.seg, got,
			     expect);
		/* Checked exactly above, and not folded into g_checksum: how
		 * many lookups a timed run makes varies, the summary's
		 * checksum stays reproducible. */
		ops += per_s(rd[i].segs * READER_CHUNK, rd[i].run.ns);
		oncpu = rd[i].oncpu < oncpu ? rd[i].oncpu : oncpu;
		if (i == 0)
			res->lat_off[r] = res->lat_n;
		memcpy(res->lat + res->lat_n, rd[i].lat_ns, rd[i].lat_n * sizeof(*res->lat));
		res->lat_n += rd[i].lat_n;
		res->lat_cnt[r] = res->lat_n - res->lat_off[r];
		if (rd[i].cpu >= 0 && !rd[i].pinned)
			x->pin_failed = true;
	}
	res->ops[r] = ops;
	res->oncpu[r] = oncpu;
	if (k != RD_RW)
		return;

	if (w.failed)
		fail("%s n=%zu readers rw round %u: alex_apply_batch at op %zu returned %d, "
		     "inserted %" PRIu64 " of a batch of new keys", c->dname, c->n, r, w.applied,
		     w.fail_rc, w.fail_inserted);
	if (w.cpu >= 0 && !w.pinned)
		x->pin_failed = true;
	x->wr[r].rate = per_s(w.applied, w.ns);
	x->wr[r].max_lag_ns = w.max_lag_ns;
	x->wr[r].max_batch_ns = w.max_batch_ns;
	x->wr[r].busy = w.busy;
	x->wr[r].applied = w.applied;
	x->wr[r].ran_out = w.ran_out;
	x->wr[r].ok = !w.failed;
}

/*
 * Up to k keys that are not in c->sorted, from its own distribution: each
 * strictly inside the gap after a random rank (uniform within the gap), one
 * key per rank so they are distinct, in random order.  Returns how many it
 * found: fewer than k only when the tree is too small or too dense to hold
 * them (it gives up after 64 draws per key).
 */
static size_t new_keys_between(const struct run_ctx *c, uint64_t *out, size_t k)
{
	size_t n = c->n, got = 0;
	uint8_t *used = xmalloc(n / 8 + 1);   /* ranks already used */
	ds_rng rng;

	memset(used, 0, n / 8 + 1);
	ds_rng_seed(&rng, c->o->seed ^ SALT_NEWKEYS ^ n);
	for (size_t tries = 0; n >= 2 && got < k && tries / 64 < k; tries++) {
		size_t i = (size_t)(ds_rng_next(&rng) % (n - 1));
		uint64_t lo = c->sorted[i], gap = c->sorted[i + 1] - lo;

		if (gap < 2 || (used[i / 8] >> (i % 8) & 1))
			continue;
		used[i / 8] |= (uint8_t)(1u << (i % 8));
		out[got++] = lo + 1 + ds_rng_next(&rng) % (gap - 1);
	}
	free(used);
	return got;
}

/* The round with the most ops/s (k >= 1). */
static unsigned best_round(const double *v, unsigned k)
{
	unsigned b = 0;

	for (unsigned i = 1; i < k; i++)
		if (v[i] > v[b])
			b = i;
	return b;
}

/* The smallest of k values (k >= 1). */
static double min_of(const double *v, unsigned k)
{
	double m = v[0];

	for (unsigned i = 1; i < k; i++)
		m = v[i] < m ? v[i] : m;
	return m;
}

/* "runs=a/b/c" in millions (ops/s, or keys/s for the writer). */
static void runs_field(char *buf, size_t len, const double *v, unsigned k)
{
	size_t used = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < k && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%.2f", i ? "/" : "runs=",
					 v[i] / 1e6);
}

/* "met" or "MISSED" for the table. */
static const char *target_word(bool met)
{
	return met ? "met" : "MISSED";
}

/*
 * The writer's part of the rw row and line: the rate of the reader's best
 * round, and over all rounds the slowest rate, the longest batch and the
 * largest lag, so a writer that fell behind in any round shows.
 */
static void rd_writer_fields(const struct rd_ctx *x, unsigned k, unsigned best,
			     char *note, size_t note_len, char *line, size_t line_len)
{
	size_t target = x->c->o->writer_rate;
	double rates[READER_ROUNDS], wmin;
	uint64_t lag = 0, batch = 0;
	unsigned behind = 0;
	bool ran_out = false;
	char kept[64];

	for (unsigned r = 0; r < k; r++) {
		rates[r] = x->wr[r].rate;
		lag = x->wr[r].max_lag_ns > lag ? x->wr[r].max_lag_ns : lag;
		batch = x->wr[r].max_batch_ns > batch ? x->wr[r].max_batch_ns : batch;
		ran_out |= x->wr[r].ran_out;
		behind += x->wr[r].ran_out || rates[r] < 0.99 * (double)target;
	}
	wmin = min_of(rates, k);
	if (behind)
		snprintf(kept, sizeof(kept), "BEHIND in %u of %u runs%s", behind, k,
			 ran_out ? ", RAN OUT OF NEW KEYS" : "");
	else
		snprintf(kept, sizeof(kept), "kept up");
	snprintf(note, note_len, "writer %.2fM keys/s (target %.2fM: %s; slowest run %.2fM, "
		 "busy %.0f%%, longest batch %.2f ms, max lag %.2f ms)", rates[best] / 1e6,
		 (double)target / 1e6, kept, wmin / 1e6, x->wr[best].busy * 100,
		 (double)batch / 1e6, (double)lag / 1e6);
	snprintf(line, line_len, " writer_keys_per_s=%.0f writer_keys_per_s_worst=%.0f "
		 "writer_target=%zu writer_kept_up=%d writer_busy=%.2f writer_max_batch_ns=%" PRIu64
		 " writer_max_lag_ns=%" PRIu64 " writer_batch=%u new_keys=between_loaded",
		 rates[best], wmin, target, behind == 0, x->wr[best].busy, batch, lag, WRITER_BATCH);
}

/* The table rows and machine lines of the readers phase (k rounds done;
 * tree: the shape of the last tree after its rw run). */
static void rd_report(const struct rd_ctx *x, unsigned k, const char *tree)
{
	static const char *const labels[RD_NKIND] = {
		"readers st: writer_lookup, 1 thr", "readers r1: RCU lookup, 1 thread",
		"readers r2: RCU lookup, 2 threads", "readers rw: 1 reader + writer",
	};
	static const char *const ops_names[RD_NKIND] = {
		"lookup_st", "lookup_rcu", "lookup_rcu", "lookup_rcu_writer",
	};
	static const char *const base_names[RD_NKIND] = {
		"", "lookup_st", "lookup_rcu_1", "lookup_rcu_1",
	};
	static const double targets[RD_NKIND] = {
		0, TARGET_R1_VS_ST, TARGET_R2_VS_R1, TARGET_RW_VS_R1,
	};
	static const enum rd_kind bases[RD_NKIND] = { RD_ST, RD_ST, RD_R1, RD_R1 };
	const struct run_ctx *c = x->c;
	const struct options *o = c->o;
	bool pinned = x->cpu[0] >= 0 && !x->pin_failed;
	char pin[64];

	if (x->cpu[0] < 0)
		snprintf(pin, sizeof(pin), "not pinned (fewer than 2 usable CPUs)");
	else
		snprintf(pin, sizeof(pin), "pinned to cpu%d (+cpu%d)%s", x->cpu[0], x->cpu[1],
			 x->pin_failed ? " FAILED" : "");
	printf("  -- readers: %.2f s runs, best of %u rounds, %s; 'vs array' holds r1/st,\n"
	       "     r2/r1, rw/r1; latency of 1 lookup in %zu, timer ~%" PRIu64 " ns included\n",
	       (double)o->run_ns / 1e9, k, pin, x->sh.burst ? x->sh.seg / x->sh.burst : 0,
	       g_timer_ns);

	for (int kind = 0; kind < RD_NKIND; kind++) {
		const struct rd_result *res = &x->res[kind];
		unsigned best = best_round(res->ops, k);
		double ops = res->ops[best], oncpu = res->oncpu[best], others = res->others[best];
		double ratio = -1;
		bool disturbed = oncpu < ONCPU_MIN || others > OTHERS_MAX;
		size_t nlat = res->lat_cnt[best];
		uint64_t *lat_ns = res->lat + res->lat_off[best];
		struct latency l = latency_of(lat_ns, nlat);
		char note[400], runs[64], lat[128], tgt[96] = "", wnote[200] = "", wline[320] = "";
		char oth[32] = "";
		bool met = true;

		runs_field(runs, sizeof(runs), res->ops, k);
		if (kind != RD_ST) {
			const struct rd_result *base = &x->res[bases[kind]];

			ratio = ops / base->ops[best_round(base->ops, k)];
			met = ratio >= targets[kind];
			snprintf(tgt, sizeof(tgt), "target >= %.2f %s; ", targets[kind],
				 target_word(met));
		}
		if (kind == RD_RW) {
			bool lat_met = nlat && l.p99 < TARGET_RW_P99_NS;

			snprintf(tgt + strlen(tgt), sizeof(tgt) - strlen(tgt), "p99 < %u ns %s; ",
				 TARGET_RW_P99_NS, nlat ? target_word(lat_met) : "not measured");
			rd_writer_fields(x, k, best, wnote, sizeof(wnote), wline, sizeof(wline));
			if (nlat)
				snprintf(wline + strlen(wline), sizeof(wline) - strlen(wline),
					 " p99_target_ns=%u p99_target_met=%d", TARGET_RW_P99_NS,
					 lat_met);
		}
		if (others >= 0)
			snprintf(oth, sizeof(oth), " others=%.2f", others);
		snprintf(note, sizeof(note), "%s%s%soncpu=%.2f%s%s %s", tgt, wnote, *wnote ? "; " : "",
			 oncpu, oth, disturbed ? " DISTURBED" : "", runs);
		table_row(labels[kind], ops, ratio, -1, nlat ? &l : NULL, note);

		latency_fields(lat, sizeof(lat), &l, nlat);
		lines_appendf("bench=index dist=%s n=%zu op=%s impl=alex threads=%d pinned=%d "
			      "run_s=%.2f ops_per_s=%.0f ops_per_s_worst=%.0f runs=%u oncpu=%.2f "
			      "others_cpus=%.2f disturbed=%d%s", c->dname, c->n, ops_names[kind],
			      kind == RD_R2 ? 2 : 1, pinned, (double)o->run_ns / 1e9, ops,
			      min_of(res->ops, k), k, oncpu, others, disturbed, lat);
		if (kind != RD_ST)
			lines_appendf(" ratio_vs=%s:%.2f target=%.2f target_met=%d",
				      base_names[kind], ratio, targets[kind], met);
		lines_appendf("%s%s%s\n", wline, kind == RD_RW ? " " : "", kind == RD_RW ? tree : "");
	}
}

/* The readers phase: see the comment at the top of this section. */
static void phase_readers(const struct run_ctx *c)
{
	const struct options *o = c->o;
	size_t n = c->n, want, warm;
	uint64_t *probes, *newkeys;
	unsigned done = 0;
	char tree[320] = "", what[96];
	struct rd_ctx x;

	memset(&x, 0, sizeof(x));
	x.c = c;
	pick_cpus(x.cpu);
	x.sh.run_ns = o->run_ns;
	x.sh.burst = o->samples ? LAT_BURST : 0;
	x.sh.seg = READER_CHUNK + x.sh.burst;
	x.nseg = (o->probes + x.sh.seg - 1) / x.sh.seg;
	x.sh.m = x.nseg * x.sh.seg;
	probes = xmalloc(x.sh.m * sizeof(*probes));
	fill_probes(c, 0, probes, x.sh.m);
	x.sh.probes = probes;
	x.seg_sum = xmalloc(x.nseg * sizeof(*x.seg_sum));
	for (size_t j = 0; j < x.nseg; j++) {
		uint64_t s = 0;

		for (size_t i = j * x.sh.seg; i < (j + 1) * x.sh.seg; i++)
			s += payload_of(probes[i]);
		x.seg_sum[j] = s;
		x.all_sum += s;
	}

	/* Enough new keys for a whole run at the paced rate. */
	want = (size_t)((double)o->writer_rate * (double)o->run_ns / 1e9) + WRITER_BATCH;
	newkeys = xmalloc(want * sizeof(*newkeys));
	x.n_ops = new_keys_between(c, newkeys, want);
	x.ops = xmalloc((x.n_ops ? x.n_ops : 1) * sizeof(*x.ops));
	make_put_batches(newkeys, x.n_ops, WRITER_BATCH, x.ops);
	free(newkeys);

	for (int i = 0; i < 2; i++)
		x.lat_buf[i] = xmalloc(((size_t)LAT_KEEP + 1) * x.sh.burst * sizeof(uint64_t) + 1);
	for (int k = 0; k < RD_NKIND; k++)
		x.res[k].lat = xmalloc((size_t)READER_ROUNDS * (k == RD_R2 ? 2 : 1) * LAT_KEEP *
				       x.sh.burst * sizeof(uint64_t) + 1);

	warm = x.sh.m < WARMUP_PROBES ? x.sh.m : WARMUP_PROBES;
	for (unsigned r = 0; r < READER_ROUNDS; r++) {
		alex_tree *t = tree_create();
		int rc = alex_bulk_load(t, c->sorted, c->payloads, n);

		if (rc != 0) {
			fail("%s n=%zu readers: alex_bulk_load returned %d", c->dname, n, rc);
			alex_destroy(t);
			break;
		}
		/* Untimed warm-up (page tables, TLB, caches), as lookup_pick does. */
		(void)run_probes(lookup_alex, t, probes, warm);
		for (unsigned i = 0; i < 3; i++)     /* st, r1, r2, rotated */
			rd_measure(&x, (enum rd_kind)((r + i) % 3), t, r);
		rd_measure(&x, RD_RW, t, r);
		snprintf(what, sizeof(what), "%s n=%zu readers rw round %u", c->dname, n, r);
		if (x.wr[r].ok) {
			tree_check(t, what, o->check);
			verify_with_ops(t, c->sorted, n, x.ops, x.wr[r].applied, what);
		}
		tree_note(t, tree, sizeof(tree));    /* the last round's shape is reported */
		alex_destroy(t);
		done++;
	}
	if (done)
		rd_report(&x, done, tree);

	for (int k = 0; k < RD_NKIND; k++)
		free(x.res[k].lat);
	free(x.lat_buf[0]);
	free(x.lat_buf[1]);
	free(x.ops);
	free(x.seg_sum);
	free(probes);
}

/* One (n, distribution): generate, run the selected phases, free it all. */
static void bench_one(const struct options *o, enum ds_dist d, size_t n)
{
	bool has_natural = d == DS_TIMESTAMPS || d == DS_DEVICE;
	uint64_t *arrival = xmalloc(n * sizeof(*arrival));
	uint64_t *sorted, *payloads, *shuffled;
	struct run_ctx c;
	uint64_t t0 = bench_now_ns();

	ds_generate(d, o->seed, arrival, n);
	sorted = copy_keys(arrival, n);
	ds_sort(sorted, n);
	for (size_t i = 1; i < n; i++) {
		if (sorted[i - 1] >= sorted[i]) {
			fail("%s n=%zu: ds_generate produced a duplicate key %#" PRIx64 "; skipped",
			     ds_name(d), n, sorted[i]);
			free(sorted);
			free(arrival);
			return;
		}
	}
	if (!(has_natural && (o->ops & OP_INSERT))) {
		free(arrival);   /* only the natural-order insert needs it */
		arrival = NULL;
	}
	payloads = xmalloc(n * sizeof(*payloads));
	for (size_t i = 0; i < n; i++)
		payloads[i] = payload_of(sorted[i]);
	/* One random permutation serves the zipf hot-key mapping, the random
	 * insert order and the batch split; the uses are on separate trees. */
	shuffled = copy_keys(sorted, n);
	ds_shuffle(shuffled, n, o->seed ^ SALT_SHUFFLE ^ n);

	c.o = o;
	c.dist = d;
	c.dname = ds_name(d);
	c.n = n;
	c.sorted = sorted;
	c.payloads = payloads;
	c.shuffled = shuffled;

	table_header(&c);
	if (o->ops & (OP_BULK | OP_LOOKUP))
		phase_bulk_lookup(&c);
	if (o->ops & OP_INSERT) {
		phase_insert(&c, "random", shuffled);
		if (has_natural)
			phase_insert(&c, "natural", arrival);
	}
	if ((o->ops & OP_BATCH) && n >= 2)
		phase_batch(&c);
	if (o->ops & OP_READERS)
		phase_readers(&c);
	printf("  (%.1f s for this distribution, setup and checks included)\n",
	       (double)(bench_now_ns() - t0) / 1e9);

	free(shuffled);
	free(payloads);
	free(sorted);
	free(arrival);
}

/* ---------------------------------------------------- machine and build */

static void print_machine(void)
{
	bench_machine m;

	bench_machine_get(&m);
	printf("# machine: arch=%s cpu=\"%s\" nproc=%ld\n", m.arch, m.cpu, m.nproc);
	printf("# build: compiler=\"%s\" optimized=%s", __VERSION__, m.optimized);
#ifdef NDEBUG
	printf(" ndebug=yes");
#else
	printf(" ndebug=no");
#endif
	/* The build system may pass its flags in; otherwise only the above. */
#ifdef OMEN_BUILD_CFLAGS
	printf(" cflags=\"%s\"", OMEN_BUILD_CFLAGS);
#endif
	printf("\n");
	lines_appendf("bench=index op=machine arch=%s cpu=\"%s\" nproc=%ld optimized=%s\n",
		      m.arch, m.cpu, m.nproc, m.optimized);
}

/*
 * The 1-minute load average: this benchmark is single-threaded on a small
 * shared machine, and a figure taken while other jobs ran is not comparable
 * with one taken on an idle machine, so the load is printed with it.
 */

/* -------------------------------------------------------------- options */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_index [options]\n"
		"  --n N[,N...]        key counts (repeatable; suffix k/m ok; default 1m,10m)\n"
		"  --dist D[,D...]     distributions (default all: uniform,lognormal,timestamps,\n"
		"                      device,clusters as printed by ds_name)\n"
		"  --ops O[,O...]      bulk,lookup,insert,batch,readers (default all)\n"
		"  --seed S            data set and picker seed (default %u)\n"
		"  --probes N          lookups per timed loop (default %u)\n"
		"  --samples N         single lookups timed for percentiles (default %u)\n"
		"  --check             also run alex_check on every tree built\n"
		"  --budget SECONDS    stop each insert/batch phase after this long and report\n"
		"                      the partial rate (marked PARTIAL / complete=0); default none\n"
		"  --seconds S         readers: length of each run (default %.1f; 3 rounds of\n"
		"                      4 runs per distribution)\n"
		"  --writer-rate N     readers: keys/s the rw writer is paced at (default %u)\n"
		"  --smoke             n=20000, all distributions and ops, short; for make check\n",
		DEFAULT_SEED, DEFAULT_PROBES, DEFAULT_SAMPLES, DEFAULT_RUN_S, DEFAULT_WRITER_RATE);
}

/* Unsigned count with an optional k/m/g (x1000) suffix; 0 on bad input. */

/* Seconds > 0 (up to a day; strtod, the whole string) as nanoseconds;
 * false on bad input. */
static bool parse_seconds_ns(const char *s, uint64_t *ns)
{
	char *end;
	double sec = strtod(s, &end);

	if (*s == '\0' || *end != '\0' || !(sec > 0) || sec > 86400)
		return false;
	*ns = (uint64_t)(sec * 1e9);
	return true;
}

/* Split a comma list and feed each item to fn; false on the first bad item. */
static bool parse_list(char *list, bool (*fn)(struct options *, const char *), struct options *o)
{
	char *save = NULL;

	for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if (!fn(o, tok))
			return false;
	return true;
}

static bool add_n(struct options *o, const char *s)
{
	size_t n = bench_parse_count(s);

	if (n == 0 || o->n_count == MAX_NS) {
		fprintf(stderr, "bench_index: bad or too many --n values: %s\n", s);
		return false;
	}
	o->ns[o->n_count++] = n;
	return true;
}

static bool add_dist(struct options *o, const char *s)
{
	int d = strcmp(s, "all") == 0 ? -2 : ds_parse(s);

	if (d == -2) {
		o->dists = (1u << DS_NDIST) - 1;
		return true;
	}
	if (d < 0) {
		fprintf(stderr, "bench_index: unknown distribution: %s\n", s);
		return false;
	}
	o->dists |= 1u << d;
	return true;
}

static bool add_op(struct options *o, const char *s)
{
	static const struct { const char *name; unsigned bit; } names[] = {
		{ "bulk", OP_BULK }, { "lookup", OP_LOOKUP }, { "insert", OP_INSERT },
		{ "batch", OP_BATCH }, { "readers", OP_READERS }, { "all", OP_ALL },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i].name) == 0) {
			o->ops |= names[i].bit;
			return true;
		}
	}
	fprintf(stderr, "bench_index: unknown op: %s (bulk,lookup,insert,batch,readers)\n", s);
	return false;
}

/* Accepts "--opt value" and "--opt=value". */
static int parse_args(int argc, char **argv, struct options *o)
{
	bool probes_set = false, samples_set = false, seconds_set = false;

	memset(o, 0, sizeof(*o));
	o->seed = DEFAULT_SEED;
	o->probes = DEFAULT_PROBES;
	o->samples = DEFAULT_SAMPLES;
	o->run_ns = (uint64_t)(DEFAULT_RUN_S * 1e9);
	o->writer_rate = DEFAULT_WRITER_RATE;

	for (int i = 1; i < argc; i++) {
		char *arg = argv[i], *val = NULL, *eq;
		bool ok = true;

		if (strcmp(arg, "--smoke") == 0) {
			o->smoke = true;
			continue;
		}
		if (strcmp(arg, "--check") == 0) {
			o->check = true;
			continue;
		}
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			usage(stdout);
			exit(0);
		}
		eq = strchr(arg, '=');
		if (eq) {
			*eq = '\0';
			val = eq + 1;
		} else if (i + 1 < argc) {
			val = argv[++i];
		}
		if (val == NULL || strncmp(arg, "--", 2) != 0) {
			fprintf(stderr, "bench_index: bad argument: %s\n", arg);
			usage(stderr);
			return -1;
		}
		if (strcmp(arg, "--n") == 0) {
			ok = parse_list(val, add_n, o);
		} else if (strcmp(arg, "--dist") == 0) {
			ok = parse_list(val, add_dist, o);
		} else if (strcmp(arg, "--ops") == 0) {
			ok = parse_list(val, add_op, o);
		} else if (strcmp(arg, "--seed") == 0) {
			char *end;

			o->seed = strtoull(val, &end, 0);
			ok = *val && *end == '\0';
		} else if (strcmp(arg, "--budget") == 0) {
			ok = parse_seconds_ns(val, &o->budget_ns);
		} else if (strcmp(arg, "--seconds") == 0) {
			ok = parse_seconds_ns(val, &o->run_ns);
			seconds_set = true;
		} else if (strcmp(arg, "--writer-rate") == 0) {
			/* at least one batch per second, at most one per microsecond */
			o->writer_rate = bench_parse_count(val);
			ok = o->writer_rate >= WRITER_BATCH && o->writer_rate <= WRITER_BATCH * 1000000ull;
		} else if (strcmp(arg, "--probes") == 0) {
			o->probes = bench_parse_count(val);
			ok = o->probes > 0;
			probes_set = true;
		} else if (strcmp(arg, "--samples") == 0) {
			/* 0 is allowed: skips the percentiles */
			o->samples = bench_parse_count(val);
			ok = o->samples > 0 || strcmp(val, "0") == 0;
			samples_set = true;
		} else {
			ok = false;
		}
		if (!ok) {
			fprintf(stderr, "bench_index: bad value for %s: %s\n", arg, val);
			usage(stderr);
			return -1;
		}
	}

	if (o->smoke) {
		/* Small and complete: every distribution and op, a few seconds. */
		o->ns[0] = 20000;
		o->n_count = 1;
		o->dists = (1u << DS_NDIST) - 1;
		o->ops = OP_ALL;
		o->check = true;
		if (!probes_set)
			o->probes = 200000;
		if (!samples_set)
			o->samples = 10000;
		/* 10 ms runs: 10 writer batches, a few hundred reader blocks. */
		if (!seconds_set)
			o->run_ns = 10000000u;
	}
	if (o->n_count == 0) {
		o->ns[0] = 1000000;
		o->ns[1] = 10000000;
		o->n_count = 2;
	}
	if (o->dists == 0)
		o->dists = (1u << DS_NDIST) - 1;
	if (o->ops == 0)
		o->ops = OP_ALL;
	return 0;
}

int main(int argc, char **argv)
{
	struct options o;
	struct rusage ru;
	uint64_t t0 = bench_now_ns();

	if (parse_args(argc, argv, &o) != 0)
		return 2;

	printf("# bench_index: ALEX vs sorted array, single thread; readers: up to 2 threads\n");
	print_machine();
	g_timer_ns = measure_timer_overhead(o.samples > 1000 ? o.samples : 1000);
	printf("# seed=%" PRIu64 " probes=%zu latency_samples=%zu timer_overhead_ns=%" PRIu64
	       " (included in every latency figure)\n", o.seed, o.probes, o.samples, g_timer_ns);
	printf("# vs array = ALEX ops/s / sorted-array ops/s on the same probes (>1: ALEX faster)\n");
	printf("# loadavg_1min=%.2f at start (other jobs on the machine disturb absolute figures)\n",
	       bench_loadavg_1min());

	for (size_t i = 0; i < o.n_count; i++)
		for (int d = 0; d < DS_NDIST; d++)
			if (o.dists & (1u << d))
				bench_one(&o, (enum ds_dist)d, o.ns[i]);

	getrusage(RUSAGE_SELF, &ru);
	printf("\n# machine-readable\n");
	if (g_lines)
		fputs(g_lines, stdout);
	printf("bench=index op=summary failures=%u checksum=%#" PRIx64 " max_rss_mb=%ld "
	       "elapsed_s=%.1f loadavg_1min=%.2f\n", g_failures, g_checksum, ru.ru_maxrss / 1024,
	       (double)(bench_now_ns() - t0) / 1e9, bench_loadavg_1min());
	free(g_lines);
	if (g_failures) {
		fprintf(stderr, "bench_index: %u correctness failure(s)\n", g_failures);
		return 1;
	}
	return 0;
}
