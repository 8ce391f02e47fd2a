/*
 * bench/bench_index.c — single-threaded benchmark of the ALEX learned index
 * (core/alex.h), side by side with a sorted array searched by binary search.
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
 *   insert  single alex_insert calls into a tree that starts empty, keys in
 *           random (shuffled) order; for timestamps and device also in their
 *           natural arrival order (ascending / time-major).  inserts/s and
 *           bytes/key of the grown tree.
 *   batch   bulk load a random half of the keys, then alex_apply_batch the
 *           other half in sorted batches of 4096 random held-out keys.
 *           keys/s of the applied half, bytes/key afterwards.
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

#include "core/alex.h"
#include "tests/lib/datasets.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
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
	OP_ALL = OP_BULK | OP_LOOKUP | OP_INSERT | OP_BATCH,
};

#define BATCH_KEYS      4096      /* keys per alex_apply_batch call (the issue's figure) */
#define ZIPF_THETA      0.99
#define MAX_NS          16        /* distinct --n values accepted */
#define DEFAULT_SEED    20240601u
#define DEFAULT_PROBES  10000000u
#define DEFAULT_SAMPLES 100000u
#define WARMUP_PROBES   (1u << 20)
#define LOOKUP_ROUNDS   8         /* ALEX and the array alternate over this many slices */

/* Salts so the shuffles and pickers do not reuse the generator's stream. */
#define SALT_SHUFFLE    0x53485546464c4531ull
#define SALT_UNIFORM    0x554e49464f524d31ull
#define SALT_ZIPF       0x5a49504630393931ull

struct options {
	size_t ns[MAX_NS];
	size_t n_count;
	unsigned dists;     /* bit (1u << enum ds_dist) per selected distribution */
	unsigned ops;       /* OP_* bits */
	uint64_t seed;
	size_t probes;      /* lookups per timed loop */
	size_t samples;     /* single lookups timed for the percentiles */
	uint64_t budget_ns; /* stop an insert/batch phase after this long; 0 = never */
	bool smoke;
	bool check;         /* also run alex_check on every tree built */
};

/* Results and state shared by the whole run (single-threaded program). */
static char *g_lines;            /* the machine-readable lines, printed at the end */
static size_t g_lines_len, g_lines_cap;
static unsigned g_failures;      /* correctness failures; non-zero makes exit 1 */
static uint64_t g_checksum;      /* folds every payload sum, printed at the end */
static uint64_t g_timer_ns;      /* median cost of one clock_gettime pair */

/* ---------------------------------------------------------------- helpers */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

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
 * cache-friendly and fast.
 */
static void verify_all(const alex_tree *t, const uint64_t *sorted, size_t n, const char *what)
{
	size_t missing = 0, wrong = 0;

	if (alex_size(t) != n)
		fail("%s: alex_size %" PRIu64 " != %zu keys", what, alex_size(t), n);
	for (size_t i = 0; i < n; i++) {
		uint64_t v = 0;

		if (!alex_lookup(t, sorted[i], &v)) {
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

static bool lookup_alex(const void *index, uint64_t key, uint64_t *payload)
{
	return alex_lookup(index, key, payload);
}

/* The baseline: keys and payloads in two parallel sorted arrays. */
struct sorted_array {
	const uint64_t *keys;
	const uint64_t *payloads;
	size_t n;
};

/*
 * Branch-free lower bound with prefetch (Khuong and Morin, "Array Layouts
 * for Comparison-Based Searching").  The range [base, base + len] always
 * holds the first key >= key; each level halves it with a conditional move
 * instead of a branch that random probes would mispredict half the time,
 * and both possible next midpoints are prefetched so the cache misses of
 * successive levels overlap.  On this project's test machine (AMD EPYC VM)
 * the prefetch makes it ~3x faster than without at 1M keys and faster than
 * a branchy search at 1M and 10M: the strongest plain binary search, so the
 * ratio is not flattered by a weak baseline.
 */
static inline bool lookup_sorted(const void *index, uint64_t key, uint64_t *payload)
{
	const struct sorted_array *sa = index;
	const uint64_t *base = sa->keys;
	size_t len = sa->n, i;

	if (len == 0)
		return false;
	while (len > 1) {
		size_t half = len / 2;

		__builtin_prefetch(base + half / 2);
		__builtin_prefetch(base + half + half / 2);
		base = base[half] < key ? base + half : base;
		len -= half;
	}
	i = (size_t)(base - sa->keys) + (*base < key);
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
	uint64_t t0 = now_ns();

	for (size_t i = 0; i < m; i++) {
		uint64_t v = 0;

		if (fn(index, probes[i], &v))
			r.sum += v;
		else
			r.misses++;
	}
	r.ns = now_ns() - t0;
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
 * Time single lookups, one clock_gettime pair around each.  The figures
 * include the timer's own cost (g_timer_ns, measured at start and printed
 * beside them; ~20 ns on the test VM, whose clock also reads in ~10 ns
 * steps), the same order as a cached lookup, so at the low end only
 * differences and the tail mean much.  lat_ns must hold s entries; it is
 * sorted in place.
 */
static inline __attribute__((always_inline)) struct latency
run_latency(lookup_fn fn, const void *index, const uint64_t *probes, size_t s,
	    uint64_t *lat_ns, uint64_t *sum)
{
	struct latency l = { 0, 0, 0 };
	uint64_t acc = 0;

	if (s == 0)
		return l;
	for (size_t i = 0; i < s; i++) {
		uint64_t v = 0, t0, t1;

		t0 = now_ns();
		if (fn(index, probes[i], &v))
			acc += v;
		t1 = now_ns();
		lat_ns[i] = t1 - t0;
	}
	*sum = acc;
	ds_sort(lat_ns, s);
	l.p50 = lat_ns[s / 2];
	l.p99 = lat_ns[(s * 99) / 100];
	l.p999 = lat_ns[(s * 999) / 1000];
	return l;
}

/* Median cost of an empty clock_gettime pair, reported with the latencies. */
static uint64_t measure_timer_overhead(size_t s)
{
	uint64_t *d = xmalloc(s * sizeof(*d)), med;

	for (size_t i = 0; i < s; i++) {
		uint64_t t0 = now_ns();

		d[i] = now_ns() - t0;
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

	alex_get_stats(t, &st);
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

			if (alex_lookup(t, probes[i], &v) && v != payload_of(probes[i]))
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
		t0 = now_ns();
		rc = alex_bulk_load(t, c->sorted, c->payloads, n);
		ns = now_ns() - t0;
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
	return o->budget_ns && now_ns() - t0 > o->budget_ns;
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

	t0 = now_ns();
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
	ns = now_ns() - t0;
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
	for (size_t off = 0; off < held; off += BATCH_KEYS) {
		size_t len = held - off < BATCH_KEYS ? held - off : BATCH_KEYS;
		uint64_t *chunk = copy_keys(c->shuffled + pre + off, len);

		ds_sort(chunk, len);
		for (size_t i = 0; i < len; i++) {
			ops[off + i].key = chunk[i];
			ops[off + i].payload = payload_of(chunk[i]);
			ops[off + i].kind = ALEX_OP_PUT;
		}
		free(chunk);
	}

	t0 = now_ns();
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
	ns = now_ns() - t0;
	if (ok) {
		tree_check(t, what, c->o->check);
		if (applied == held) {
			verify_all(t, c->sorted, n, what);
		} else {
			/* Stopped by --budget: the preloaded half plus whole batches. */
			uint64_t *got = copy_keys(c->shuffled, pre);
			size_t total = pre + applied;

			got = realloc(got, (total ? total : 1) * sizeof(*got));
			if (got == NULL) {
				fprintf(stderr, "bench_index: out of memory\n");
				exit(3);
			}
			for (size_t i = 0; i < applied; i++)
				got[pre + i] = ops[i].key;
			ds_sort(got, total);
			verify_all(t, got, total, what);
			free(got);
		}
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

/* One (n, distribution): generate, run the selected phases, free it all. */
static void bench_one(const struct options *o, enum ds_dist d, size_t n)
{
	bool has_natural = d == DS_TIMESTAMPS || d == DS_DEVICE;
	uint64_t *arrival = xmalloc(n * sizeof(*arrival));
	uint64_t *sorted, *payloads, *shuffled;
	struct run_ctx c;
	uint64_t t0 = now_ns();

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
	printf("  (%.1f s for this distribution, setup and checks included)\n",
	       (double)(now_ns() - t0) / 1e9);

	free(shuffled);
	free(payloads);
	free(sorted);
	free(arrival);
}

/* ---------------------------------------------------- machine and build */

static void print_machine(void)
{
	struct utsname u;
	char line[512], cpu[256] = "unknown";
	FILE *f = fopen("/proc/cpuinfo", "r");
	long nproc = sysconf(_SC_NPROCESSORS_ONLN);
	const char *arch = uname(&u) == 0 ? u.machine : "unknown";
	const char *optimized = "no";

#ifdef __OPTIMIZE__
	optimized = "yes";
#endif
	/* x86 says "model name"; some arm64 kernels say "Model" or nothing. */
	while (f && fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if ((strncmp(line, "model name", 10) == 0 || strncmp(line, "Model", 5) == 0) && colon) {
			char *v = colon + 1;

			while (*v == ' ' || *v == '\t')
				v++;
			v[strcspn(v, "\n")] = '\0';
			snprintf(cpu, sizeof(cpu), "%s", v);
			break;
		}
	}
	if (f)
		fclose(f);

	printf("# machine: arch=%s cpu=\"%s\" nproc=%ld\n", arch, cpu, nproc);
	printf("# build: compiler=\"%s\" optimized=%s", __VERSION__, optimized);
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
		      arch, cpu, nproc, optimized);
}

/*
 * The 1-minute load average: this benchmark is single-threaded on a small
 * shared machine, and a figure taken while other jobs ran is not comparable
 * with one taken on an idle machine, so the load is printed with it.
 */
static double loadavg_1min(void)
{
	FILE *f = fopen("/proc/loadavg", "r");
	double l = -1.0;

	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = -1.0;
		fclose(f);
	}
	return l;
}

/* -------------------------------------------------------------- options */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_index [options]\n"
		"  --n N[,N...]        key counts (repeatable; suffix k/m ok; default 1m,10m)\n"
		"  --dist D[,D...]     distributions (default all: uniform,lognormal,timestamps,\n"
		"                      device,clusters as printed by ds_name)\n"
		"  --ops O[,O...]      bulk,lookup,insert,batch (default all)\n"
		"  --seed S            data set and picker seed (default %u)\n"
		"  --probes N          lookups per timed loop (default %u)\n"
		"  --samples N         single lookups timed for percentiles (default %u)\n"
		"  --check             also run alex_check on every tree built\n"
		"  --budget SECONDS    stop each insert/batch phase after this long and report\n"
		"                      the partial rate (marked PARTIAL / complete=0); default none\n"
		"  --smoke             n=20000, all distributions and ops, short; for make check\n",
		DEFAULT_SEED, DEFAULT_PROBES, DEFAULT_SAMPLES);
}

/* Unsigned count with an optional k/m/g (x1000) suffix; 0 on bad input. */
static size_t parse_count(const char *s)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return 0;
	v = strtoull(s, &end, 10);
	switch (*end) {
	case 'k': case 'K': v *= 1000ull; end++; break;
	case 'm': case 'M': v *= 1000000ull; end++; break;
	case 'g': case 'G': v *= 1000000000ull; end++; break;
	default: break;
	}
	return *end == '\0' ? (size_t)v : 0;
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
	size_t n = parse_count(s);

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
		{ "batch", OP_BATCH }, { "all", OP_ALL },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i].name) == 0) {
			o->ops |= names[i].bit;
			return true;
		}
	}
	fprintf(stderr, "bench_index: unknown op: %s (bulk,lookup,insert,batch)\n", s);
	return false;
}

/* Accepts "--opt value" and "--opt=value". */
static int parse_args(int argc, char **argv, struct options *o)
{
	bool probes_set = false, samples_set = false;

	memset(o, 0, sizeof(*o));
	o->seed = DEFAULT_SEED;
	o->probes = DEFAULT_PROBES;
	o->samples = DEFAULT_SAMPLES;

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
			char *end;
			double sec = strtod(val, &end);

			ok = *val && *end == '\0' && sec > 0;
			o->budget_ns = ok ? (uint64_t)(sec * 1e9) : 0;
		} else if (strcmp(arg, "--probes") == 0) {
			o->probes = parse_count(val);
			ok = o->probes > 0;
			probes_set = true;
		} else if (strcmp(arg, "--samples") == 0) {
			/* 0 is allowed: skips the percentiles */
			o->samples = parse_count(val);
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
	uint64_t t0 = now_ns();

	if (parse_args(argc, argv, &o) != 0)
		return 2;

	printf("# bench_index: ALEX vs sorted array, single thread\n");
	print_machine();
	g_timer_ns = measure_timer_overhead(o.samples > 1000 ? o.samples : 1000);
	printf("# seed=%" PRIu64 " probes=%zu latency_samples=%zu timer_overhead_ns=%" PRIu64
	       " (included in every latency figure)\n", o.seed, o.probes, o.samples, g_timer_ns);
	printf("# vs array = ALEX ops/s / sorted-array ops/s on the same probes (>1: ALEX faster)\n");
	printf("# loadavg_1min=%.2f at start (other jobs on the machine disturb absolute figures)\n",
	       loadavg_1min());

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
	       (double)(now_ns() - t0) / 1e9, loadavg_1min());
	free(g_lines);
	if (g_failures) {
		fprintf(stderr, "bench_index: %u correctness failure(s)\n", g_failures);
		return 1;
	}
	return 0;
}
