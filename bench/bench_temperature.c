/*
 * bench/bench_temperature.c — what temperature tracking costs the read path,
 * and what the memory budget it drives gives back (issue 8, "Benchmark").
 * OmenDB through its public API only; RocksDB through bench/peers.h.
 *
 *   bench_temperature [-n 10m] [-t 5] [-d DIR] [-s SEED] [-r ROUNDS]
 *                     [--keep] [--no-pin] [--smoke]
 *
 * One process, uint64 keys, 16-byte values, in this order:
 *
 *   load      n distinct keys, uniform over 2^64 in random order (the key
 *             set of bench_engine --dist random: ds_generate(DS_UNIFORM,
 *             seed)), into a new OmenDB database with default options
 *             (shards = online CPUs): omen_ingest_batch of 1000 records,
 *             then omen_flush; then omen_close.
 *   tracking  uniform point gets of loaded keys (all hits), 1 then 2
 *             threads, with tracking off (no_tracking = 1) and on (the
 *             defaults), in rounds: off, on, off, on, ...  Each run is a
 *             fresh omen_open, omen_get_stats (which waits for the
 *             rebuild), a wait for background work to stop (settle), an
 *             untimed warm-up, then the timed runs.  Every round reads the
 *             same probe sequence.  Reported: the best round of each
 *             configuration (the one least disturbed; the median is in
 *             the machine lines too), the ratio on / off and the percent
 *             difference.
 *   zipf      zipf(0.99) point gets: rank r is the r-th smallest loaded
 *             key, so the hot keys sit together in key order (a recent time
 *             window of telemetry) — the case the key-range buckets are
 *             built for.  A second, secondary mapping ("scrambled"): rank r
 *             is the r-th key of a random permutation, so hot keys are
 *             scattered over every range; expected to do worse.
 *               resident  OmenDB, memory_budget 0 (every value in memory);
 *               budget    OmenDB, memory_budget = 10% of the value_bytes
 *                         the resident run's omen_get_stats reported.
 *                         Before each mapping is measured, a warm-up runs
 *                         the same reads on 2 threads in slices until the
 *                         share of gets served from memory over the last
 *                         window (1 s, at most -t) rose by less than half
 *                         a percentage point over the window before, or
 *                         for at most 3 x -t;
 *               rocksdb   bench/peer_rocksdb.c (bloom filter, 512 MiB
 *                         block cache: the whole data set fits), loaded
 *                         with the same keys in the same order after
 *                         OmenDB is closed, then settled and warmed up.
 *             Each with 1 and then 2 threads.  The budget rows also give
 *             the share of gets served from memory during the measurement
 *             (reads_memory and reads_storage, deltas of omen_get_stats
 *             around it), resident value bytes against the budget, and
 *             evictions and readmissions during the measurement.
 *
 * Probe sequences (uniform, zipf sorted, zipf scrambled) are drawn once,
 * before any timing, from --seed: NPROBES keys each (the zipf ranks are
 * drawn once and mapped both ways).  Thread t of T starts at probe
 * t * NPROBES / T and walks on, wrapping.  Timed runs last -t seconds, so
 * engines do different numbers of operations, always a prefix of the same
 * sequence.  Every value holds its key in its first 8 bytes; every get must
 * find its key with that value: anything else, or any error from the
 * engine, stops the run with exit status 1 (usage errors: 2).
 *
 * Measurement (as bench_engine): ops/s is operations over the wall time
 * from the first thread's start to the last thread's end; one get in
 * SAMPLE_EVERY is timed alone with a clock_gettime pair (at most BENCH_LAT_CAP
 * samples per thread, reservoir-sampled beyond), the timer's own cost
 * included and printed.  The readers are pinned one per CPU when they fit;
 * the engines' threads (shard workers, the aggregator, RocksDB's jobs) are
 * not.  Each row says how much else the machine did meanwhile (others=,
 * CPUs' worth of busy time that was not this process's; DISTURBED past
 * OTHERS_MAX): on a shared 2-core machine a 3% difference means nothing
 * beside a disturbed row.
 *
 * No figure is judged here: the targets of the issue are printed beside
 * the figures, "met" or "MISSED".  The output ends with one key=value per
 * line (the kv() calls); the two ratios and the memory share
 * without a thread suffix are the 2-thread figures.
 */
#define _GNU_SOURCE /* before any system header: mkdtemp, nftw (apitest.h), pthread_setaffinity_np */

#include "bench/peers.h"
#include "omendb.h"
#include "tests/lib/apitest.h"
#include "tests/lib/benchutil.h"
#include "tests/lib/datasets.h"
#include "tests/lib/util.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_N        10000000u
#define DEFAULT_SECONDS  5.0
#define DEFAULT_SEED     20240604u  /* bench_engine's: the same key set */
#define DEFAULT_ROUNDS   2
#define MAX_ROUNDS       9
#define LOAD_BATCH       1000
#define SAMPLE_EVERY     16         /* one get in this many is timed alone */
#define MAX_THREADS      2
#define ZIPF_THETA       0.99
#define BUDGET_PCT       10         /* memory_budget, % of the resident value bytes */
#define SETTLE_WINDOW_S  0.25
#define SETTLE_CPU       0.03       /* of one core */
#define SETTLE_MAX_S     60.0
#define OTHERS_MAX       0.10
#define CONVERGED_RISE   0.005      /* warm-up: the memory share rose less than this */
#define MAX_KV           160

/* The figures (this machine, 10M keys): printed, never enforced. */
#define TARGET_TRACKING_RATIO 0.97
#define TARGET_BUDGET_VS_RESIDENT 0.70
#define TARGET_BUDGET_VS_ROCKSDB 5.0

#define SALT_UNIFORM 0x554e49464f524d32ull
#define SALT_ZIPF    0x5a49504630393932ull
#define SALT_PERM    0x5045524d55544531ull
#define SALT_VALUE   0x56414c5545533031ull

struct options {
	size_t n;
	double seconds;
	const char *dir;
	uint64_t seed;
	unsigned rounds;
	bool keep, no_pin;
};

/* Made once, read-only while phases run. */
struct workload {
	size_t n;
	uint64_t *keys;            /* keys[0, n) in load order */
	size_t nprobes;            /* a power of two */
	uint64_t *uniform;         /* nprobes loaded keys each */
	uint64_t *zipf_sorted;     /* rank r -> the r-th smallest key */
	uint64_t *zipf_scrambled;  /* rank r -> the r-th key of a random permutation */
};


/* One timed run of readers. */
struct measure {
	double ops_per_s;
	uint64_t ops;
	bench_lat lat;
	double others;             /* CPUs' worth of other work meanwhile; -1 unknown */
};

static struct options g_opt;
static struct workload g_w;
static uint64_t g_timer_ns;
static int g_cpus[MAX_THREADS];
static unsigned g_ncpus;
static char g_base[4096];
static bool g_base_created;
static char g_kv[MAX_KV][112];
static double g_tracking_ratio[MAX_THREADS];  /* best on / best off */
static size_t g_nkv;

/* ---------------------------------------------------------------- helpers */

static void cleanup_base(void)
{
	if (g_base_created && !g_opt.keep)
		apitest_rm_tree(g_base);
}

/* An OmenDB call failed: its code and message, then exit 1 (the base
 * directory is removed by cleanup_base). */
static _Noreturn void die_omen(const char *what, int rc)
{
	const char *msg = omen_errmsg();

	fflush(stdout);
	fprintf(stderr, "bench_temperature: %s: %s%s%s\n", what, omen_strerror(rc),
		*msg ? ": " : "", msg);
	exit(1);
}

static _Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static _Noreturn void die(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("bench_temperature: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* One machine-readable line, printed at the end. */
static void kv(const char *key, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void kv(const char *key, const char *fmt, ...)
{
	va_list ap;
	int len;

	if (g_nkv == MAX_KV)
		die("too many key=value lines");
	len = snprintf(g_kv[g_nkv], sizeof(g_kv[0]), "%s=", key);
	va_start(ap, fmt);
	vsnprintf(g_kv[g_nkv] + len, sizeof(g_kv[0]) - (size_t)len, fmt, ap);
	va_end(ap);
	g_nkv++;
}

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/* A value: the key, then a word derived from it (as bench_engine's load). */
static inline void make_val(uint64_t key, uint8_t out[PEER_VAL])
{
	uint64_t w[2] = { key, mix64(key ^ SALT_VALUE) };

	memcpy(out, w, PEER_VAL);
}

static inline bool val_ok(uint64_t key, const uint8_t v[PEER_VAL])
{
	uint64_t k;

	memcpy(&k, v, sizeof(k));
	return k == key;
}

static void sleep_s(double s)
{
	struct timespec d = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	while (nanosleep(&d, &d) != 0 && errno == EINTR)
		;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* ------------------------------------------------- machine load, settling */

/*
 * Other work on the machine during a run (bench_engine's measure): busy CPU
 * time of the whole machine per /proc/stat minus this process's own, over
 * the wall time.
 */
struct machine_load {
	double busy_s, self_s, wall_s;
	bool ok;
};

static double process_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void load_read(struct machine_load *m)
{
	FILE *f = fopen("/proc/stat", "r");
	unsigned long long v[8];
	long hz = sysconf(_SC_CLK_TCK);

	m->self_s = process_cpu_s();
	m->wall_s = (double)bench_now_ns() * 1e-9;
	m->ok = f && hz > 0 &&
		fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		       &v[4], &v[5], &v[6], &v[7]) == 8;
	/* user nice system idle iowait irq softirq steal: all but idle and iowait */
	if (m->ok)
		m->busy_s = (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)hz;
	if (f)
		fclose(f);
}

static double load_others(const struct machine_load *a, const struct machine_load *b)
{
	double o;

	if (!a->ok || !b->ok || b->wall_s <= a->wall_s)
		return -1;
	o = ((b->busy_s - a->busy_s) - (b->self_s - a->self_s)) / (b->wall_s - a->wall_s);
	return o < 0 ? 0 : o;
}

/*
 * Wait until this process's background work (RocksDB's flushes and
 * compactions, inside OmenDB or the peer; OmenDB's evictions) has stopped:
 * CPU use over a SETTLE_WINDOW_S window below SETTLE_CPU of one core, at
 * most SETTLE_MAX_S.  Returns seconds.
 */
static double settle(void)
{
	uint64_t t0 = bench_now_ns();

	for (;;) {
		double c0 = process_cpu_s(), busy;

		sleep_s(SETTLE_WINDOW_S);
		busy = (process_cpu_s() - c0) / SETTLE_WINDOW_S;
		if (busy < SETTLE_CPU || (double)(bench_now_ns() - t0) / 1e9 > SETTLE_MAX_S)
			break;
	}
	return (double)(bench_now_ns() - t0) / 1e9;
}

/* ---------------------------------------------------------------- pinning */

/* The readers run one per usable CPU when they fit (bench_engine's rule). */
static void pick_cpus(void)
{
	g_ncpus = bench_usable_cpus(g_cpus, MAX_THREADS);
}

static int cpu_for(unsigned i, unsigned total)
{
	return g_opt.no_pin || total > g_ncpus ? -1 : g_cpus[i];
}

static void pin_self(int cpu)
{
	bench_pin_self(cpu, "bench_temperature");
}

/* -------------------------------------------------------------- latencies */


/* ---------------------------------------------------------------- readers */

/*
 * Point gets through a peer's get (peer_omendb's is omen_get on a handle
 * this program opened with its own options; peer_rocksdb's is
 * rocksdb_get_pinned), on threads pinned one per CPU.
 */
struct phase {
	const struct peer *p;
	void *db;
	const uint64_t *probes;    /* g_w.nprobes keys */
	uint64_t base;             /* thread t starts at base + t * nprobes / threads */
	unsigned threads;
	uint64_t run_ns;
	pthread_barrier_t start;
};

struct reader {
	struct phase *ph;
	pthread_t tid;
	unsigned id;
	int cpu;
	uint64_t ops, t0, t1, bad;
	int err;
	bench_samples lat;
};

static void reader_run(struct reader *r, void *t)
{
	const struct phase *ph = r->ph;
	const uint64_t mask = g_w.nprobes - 1;
	int (*get)(void *, uint64_t, uint8_t *) = ph->p->get;
	uint64_t i = ph->base + (uint64_t)r->id * (g_w.nprobes / ph->threads), ops = 0;
	uint64_t deadline, key, a, b;
	uint8_t v[PEER_VAL];
	int rc;

	r->t0 = bench_now_ns();
	deadline = r->t0 + ph->run_ns;
	for (;;) {

		for (unsigned k = 1; k < SAMPLE_EVERY; k++, i++, ops++) {
			key = ph->probes[i & mask];
			rc = get(t, key, v);
			if (rc != 1 || !val_ok(key, v))
				goto bad;
		}
		key = ph->probes[i & mask];
		a = bench_now_ns();
		rc = get(t, key, v);
		b = bench_now_ns();
		if (rc != 1 || !val_ok(key, v))
			goto bad;
		i++;
		ops++;
		bench_samples_add(&r->lat, b - a);
		if (b >= deadline)
			break;
	}
	r->t1 = b;
	r->ops = ops;
	return;
bad:
	if (rc < 0)
		r->err = 1;             /* the peer printed the engine's message */
	else
		r->bad = 1;
	r->t1 = bench_now_ns();
	r->ops = ops;
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	void *t;

	pin_self(r->cpu);
	t = r->ph->p->thread_open(r->ph->db);
	if (t == NULL)
		r->err = 1;
	pthread_barrier_wait(&r->ph->start);
	if (t) {
		reader_run(r, t);
		r->ph->p->thread_close(t);
	}
	return NULL;
}

/* threads readers of probes for seconds; any wrong result or engine error
 * ends the program.  *base (may be NULL: 0) moves past the gets done, so
 * that consecutive warm-up slices walk on through the sequence. */
static struct measure run_reads(const struct peer *p, void *db, const uint64_t *probes,
				uint64_t *base, unsigned threads, double seconds)
{
	struct phase ph = {
		.p = p, .db = db, .probes = probes, .base = base ? *base : 0,
		.threads = threads, .run_ns = (uint64_t)(seconds * 1e9),
	};
	struct reader r[MAX_THREADS];
	bench_samples s[MAX_THREADS];
	struct machine_load m0, m1;
	struct measure m = { 0, 0, { 0, 0, 0, 0 }, -1 };
	uint64_t t0 = UINT64_MAX, t1 = 0;

	memset(r, 0, sizeof(r));
	pthread_barrier_init(&ph.start, NULL, threads);
	load_read(&m0);
	for (unsigned i = 0; i < threads; i++) {
		r[i].ph = &ph;
		r[i].id = i;
		r[i].cpu = cpu_for(i, threads);
		bench_samples_init(&r[i].lat, g_opt.seed ^ (i + 1));
		if (pthread_create(&r[i].tid, NULL, reader_main, &r[i]) != 0)
			die("pthread_create: %s", strerror(errno));
	}
	for (unsigned i = 0; i < threads; i++) {
		pthread_join(r[i].tid, NULL);
		if (r[i].err)
			die("%s: a get failed (message above)", p->name);
		if (r[i].bad)
			die("%s: a get of a loaded key found nothing or a wrong value", p->name);
		m.ops += r[i].ops;
		t0 = r[i].t0 < t0 ? r[i].t0 : t0;
		t1 = r[i].t1 > t1 ? r[i].t1 : t1;
		s[i] = r[i].lat;
	}
	load_read(&m1);
	pthread_barrier_destroy(&ph.start);
	m.ops_per_s = t1 > t0 ? (double)m.ops * 1e9 / (double)(t1 - t0) : 0;
	m.lat = bench_lat_merge(s, threads);
	m.others = load_others(&m0, &m1);
	if (base)
		*base += m.ops;
	return m;
}

/* ---------------------------------------------------------------- report */

static void table_columns(void)
{
	printf("  %-36s %3s %9s  %-24s %s\n", "reads", "thr", "M ops/s", "latency ns p50/p99/p99.9",
	       "note");
}

static void table_header(const char *title)
{
	printf("\n== %s ==\n", title);
	table_columns();
}

static void table_row(const char *label, unsigned threads, const struct measure *m,
		      const char *note)
{
	char l[64];

	snprintf(l, sizeof(l), "%" PRIu64 " / %" PRIu64 " / %" PRIu64, m->lat.p50, m->lat.p99,
		 m->lat.p999);
	printf("  %-36s %3u %9.3f  %-24s %s%s", label, threads, m->ops_per_s / 1e6, l, note,
	       *note ? "; " : "");
	if (m->others >= 0)
		printf("others=%.2f%s", m->others, m->others > OTHERS_MAX ? " DISTURBED" : "");
	printf("\n");
	fflush(stdout);
}

/* prefix_mops, prefix_p50_ns, prefix_p99_ns, prefix_p999_ns. */
static void kv_measure(const char *prefix, const struct measure *m)
{
	char k[80];

	snprintf(k, sizeof(k), "%s_mops", prefix);
	kv(k, "%.4f", m->ops_per_s / 1e6);
	snprintf(k, sizeof(k), "%s_p50_ns", prefix);
	kv(k, "%" PRIu64, m->lat.p50);
	snprintf(k, sizeof(k), "%s_p99_ns", prefix);
	kv(k, "%" PRIu64, m->lat.p99);
	snprintf(k, sizeof(k), "%s_p999_ns", prefix);
	kv(k, "%" PRIu64, m->lat.p999);
}

static void target_line(const char *what, double got, double want)
{
	printf("  %-60s %8.3f  (target >= %.2f) %s\n", what, got, want,
	       got >= want ? "met" : "MISSED");
}

/* ----------------------------------------------------------------- OmenDB */

static void stats_get(omen_db *db, omen_stats *st)
{
	int rc = omen_get_stats(db, st);

	if (rc != OMEN_OK)
		die_omen("omen_get_stats", rc);
}

/* The share of gets served from memory between two stats; -1 when no get
 * was counted (tracking off, or an engine that does not count yet). */
static double mem_share(const omen_stats *a, const omen_stats *b)
{
	uint64_t m = b->reads_memory - a->reads_memory, s = b->reads_storage - a->reads_storage;

	return m + s ? (double)m / (double)(m + s) : -1;
}

static void print_stats(const char *when, const omen_stats *st)
{
	printf("  %-28s keys=%" PRIu64 " shards=%u index_mb=%.1f value_mb=%.2f disk_mb=%.1f "
	       "budget_mb=%.2f resident_keys=%" PRIu64 " evictions=%" PRIu64
	       " readmissions=%" PRIu64 " hot/warm/cold=%" PRIu64 "/%" PRIu64 "/%" PRIu64
	       " samples=%" PRIu64 " dropped=%" PRIu64 "\n",
	       when, st->keys, st->shards, (double)st->index_bytes / 1048576.0,
	       (double)st->value_bytes / 1048576.0, (double)st->disk_bytes / 1048576.0,
	       (double)st->memory_budget / 1048576.0, st->resident_keys, st->evictions,
	       st->readmissions, st->hot_keys, st->warm_keys, st->cold_keys, st->samples,
	       st->dropped_samples);
	fflush(stdout);
}

/* Open with these options, wait for the rebuild (omen_get_stats) and for
 * background work to stop; *st: the stats after the rebuild. */
static omen_db *omen_open_ready(const char *dir, int no_tracking, size_t budget, omen_stats *st)
{
	omen_options o;
	omen_db *db = NULL;
	uint64_t t0 = bench_now_ns();
	double settle_s;
	int rc;

	omen_options_init(&o);
	o.no_tracking = no_tracking;
	o.memory_budget = budget;
	if ((rc = omen_open(dir, &o, &db)) != OMEN_OK)
		die_omen("omen_open", rc);
	stats_get(db, st);
	if (st->storage_only)
		die("omendb: %u shards failed to rebuild", st->storage_only);
	settle_s = settle();
	printf("  (open%s%s: ready in %.2f s, settled in %.2f s)\n",
	       no_tracking ? ", no_tracking" : "", budget ? ", memory_budget" : "",
	       (double)(bench_now_ns() - t0) / 1e9 - settle_s, settle_s);
	return db;
}

static void omen_close_checked(omen_db *db)
{
	int rc = omen_close(db);

	if (rc != OMEN_OK)
		die_omen("omen_close", rc);
}

static void phase_load(const char *dir)
{
	omen_options o;
	omen_db *db = NULL;
	omen_batch *b = omen_batch_new();
	omen_stats st;
	uint8_t val[PEER_VAL];
	uint64_t t0, t1, t2;
	int rc;

	if (b == NULL)
		die("omen_batch_new: out of memory");
	omen_options_init(&o);
	if ((rc = omen_open(dir, &o, &db)) != OMEN_OK)
		die_omen("omen_open", rc);
	printf("\n== load: %zu keys into OmenDB (default options), omen_ingest_batch of %d, "
	       "then omen_flush ==\n", g_w.n, LOAD_BATCH);
	t0 = bench_now_ns();
	for (size_t i = 0; i < g_w.n; i++) {
		make_val(g_w.keys[i], val);
		if ((rc = omen_batch_put(b, g_w.keys[i], val, PEER_VAL)) != OMEN_OK)
			die_omen("omen_batch_put", rc);
		if (omen_batch_count(b) == LOAD_BATCH || i + 1 == g_w.n) {
			if ((rc = omen_ingest_batch(db, b)) != OMEN_OK)
				die_omen("omen_ingest_batch", rc);
			omen_batch_clear(b);
		}
	}
	if ((rc = omen_flush(db)) != OMEN_OK)
		die_omen("omen_flush", rc);
	t1 = bench_now_ns();
	omen_batch_free(b);
	stats_get(db, &st);
	if (st.keys != g_w.n)
		die("omendb: %" PRIu64 " keys after loading %zu", st.keys, g_w.n);
	omen_close_checked(db);
	t2 = bench_now_ns();
	printf("  loaded in %.2f s (%.3fM keys/s), closed in %.2f s\n", (double)(t1 - t0) / 1e9,
	       (double)g_w.n / ((double)(t1 - t0) / 1e9) / 1e6, (double)(t2 - t1) / 1e9);
	print_stats("after load:", &st);
	kv("load_keys_per_s", "%.0f", (double)g_w.n / ((double)(t1 - t0) / 1e9));
	kv("shards", "%u", st.shards);
}

/*
 * Tracking off against on: rounds of (off, on), each a fresh open, the
 * same uniform probes, 1 then 2 threads.  The best round of each counts.
 */
static void phase_tracking(const char *dir)
{
	double sec = g_opt.seconds, warm = sec / 2 < 2.0 ? sec / 2 : 2.0;
	struct measure m[2][MAX_THREADS][MAX_ROUNDS];  /* [on][threads - 1][round] */
	omen_stats st, a, b;
	char title[160];

	snprintf(title, sizeof(title),
		 "tracking off vs on: uniform gets of loaded keys, %u rounds (off, on, ...), "
		 "best round counts", g_opt.rounds);
	table_header(title);
	for (unsigned r = 0; r < g_opt.rounds; r++) {
		for (int on = 0; on <= 1; on++) {
			omen_db *db = omen_open_ready(dir, !on, 0, &st);

			run_reads(&peer_omendb, db, g_w.uniform, NULL, MAX_THREADS, warm);
			for (unsigned t = 1; t <= MAX_THREADS; t++) {
				char label[64], note[160] = "";
				struct measure *x = &m[on][t - 1][r];

				stats_get(db, &a);
				*x = run_reads(&peer_omendb, db, g_w.uniform, NULL, t, sec);
				stats_get(db, &b);
				snprintf(label, sizeof(label), "uniform tracking=%s round %u",
					 on ? "on" : "off", r + 1);
				if (on)
					snprintf(note, sizeof(note),
						 "samples +%" PRIu64 ", dropped +%" PRIu64,
						 b.samples - a.samples,
						 b.dropped_samples - a.dropped_samples);
				table_row(label, t, x, note);
			}
			omen_close_checked(db);
		}
	}

	printf("\n  %-44s %10s %10s %8s %8s\n", "best round (median)", "off M/s", "on M/s",
	       "on/off", "diff %");
	for (unsigned t = 1; t <= MAX_THREADS; t++) {
		const struct measure *best[2];
		double med[2], v[MAX_ROUNDS], ratio, ratio_med;
		char k[64], what[64];

		for (int on = 0; on <= 1; on++) {
			best[on] = &m[on][t - 1][0];
			for (unsigned r = 0; r < g_opt.rounds; r++) {
				v[r] = m[on][t - 1][r].ops_per_s;
				if (v[r] > best[on]->ops_per_s)
					best[on] = &m[on][t - 1][r];
			}
			qsort(v, g_opt.rounds, sizeof(v[0]), cmp_double);
			med[on] = g_opt.rounds % 2 ? v[g_opt.rounds / 2]
						   : (v[g_opt.rounds / 2 - 1] + v[g_opt.rounds / 2]) / 2;
		}
		ratio = best[1]->ops_per_s / best[0]->ops_per_s;
		ratio_med = med[1] / med[0];
		g_tracking_ratio[t - 1] = ratio;
		snprintf(what, sizeof(what), "%u thread%s", t, t > 1 ? "s" : "");
		printf("  %-44s %10.3f %10.3f %8.3f %+8.2f\n", what, best[0]->ops_per_s / 1e6,
		       best[1]->ops_per_s / 1e6, ratio, (ratio - 1) * 100);
		printf("  %-44s %10.3f %10.3f %8.3f %+8.2f\n", "  (median of the rounds)",
		       med[0] / 1e6, med[1] / 1e6, ratio_med, (ratio_med - 1) * 100);
		snprintf(k, sizeof(k), "tracking_off_%ut", t);
		kv_measure(k, best[0]);
		snprintf(k, sizeof(k), "tracking_on_%ut", t);
		kv_measure(k, best[1]);
		snprintf(k, sizeof(k), "tracking_ratio_%ut", t);
		kv(k, "%.4f", ratio);
		snprintf(k, sizeof(k), "tracking_diff_%ut_pct", t);
		kv(k, "%.2f", (ratio - 1) * 100);
		snprintf(k, sizeof(k), "tracking_ratio_%ut_median", t);
		kv(k, "%.4f", ratio_med);
	}
}

/* The zipf figures of one engine configuration and mapping, per threads. */
struct zipf_row {
	struct measure m[MAX_THREADS];
	double mem[MAX_THREADS];            /* share of gets from memory; -1 unknown */
	bool ran;
};

struct zipf_results {
	/* [scrambled][config]: config 0 resident, 1 budget, 2 rocksdb */
	struct zipf_row row[2][3];
	uint64_t value_bytes_all, budget;
};

static const char *const config_name[3] = { "resident", "budget", "rocksdb" };
static const char *const mapping_name[2] = { "sorted", "scrambled" };

static const uint64_t *mapping_probes(int scrambled)
{
	return scrambled ? g_w.zipf_scrambled : g_w.zipf_sorted;
}

/* "zipf_budget_2t" or "zipf_scrambled_budget_2t" */
static void row_key(char *buf, size_t len, int scrambled, int config, unsigned threads)
{
	snprintf(buf, len, "zipf_%s%s_%ut", scrambled ? "scrambled_" : "", config_name[config],
		 threads);
}

/*
 * Warm-up under a budget: 2 threads of the measured reads in slices until
 * the share of gets served from memory over the last window rose by less
 * than CONVERGED_RISE over the window before (at least two windows), or
 * for at most 3 x -t.  Prints the share per window; returns the seconds.
 */
static double warm_until_converged(omen_db *db, const uint64_t *probes, uint64_t *max_value_bytes)
{
	double sec = g_opt.seconds, window = sec < 1.0 ? sec : 1.0, slice = window / 2;
	double cap = 3 * sec, prev = -1;
	unsigned per_window = (unsigned)(window / slice + 0.5), k = 0;
	uint64_t base = 0, t0 = bench_now_ns();
	omen_stats w0, cur;

	stats_get(db, &w0);
	for (;;) {
		double share, elapsed;

		run_reads(&peer_omendb, db, probes, &base, MAX_THREADS, slice);
		stats_get(db, &cur);
		if (cur.value_bytes > *max_value_bytes)
			*max_value_bytes = cur.value_bytes;
		if (++k % per_window)
			continue;
		share = mem_share(&w0, &cur);
		elapsed = (double)(bench_now_ns() - t0) / 1e9;
		printf("    warm-up %5.1f s: from memory %5.1f%%, value_mb=%.2f resident_keys=%"
		       PRIu64 " evictions=%" PRIu64 " readmissions=%" PRIu64 " dropped=%" PRIu64
		       "\n", elapsed, share < 0 ? 0.0 : share * 100,
		       (double)cur.value_bytes / 1048576.0, cur.resident_keys, cur.evictions,
		       cur.readmissions, cur.dropped_samples);
		fflush(stdout);
		if (share < 0) {
			printf("    (no gets counted in reads_memory/reads_storage: warm-up ends)\n");
			break;
		}
		if (prev >= 0 && share - prev < CONVERGED_RISE)
			break;
		if (elapsed >= cap) {
			printf("    (still rising after %.1f s: measuring anyway)\n", elapsed);
			break;
		}
		prev = share;
		w0 = cur;
	}
	return (double)(bench_now_ns() - t0) / 1e9;
}

/* One OmenDB configuration (config 0 resident, 1 budget): both mappings,
 * 1 and 2 threads. */
static void zipf_omendb(const char *dir, int config, struct zipf_results *z)
{
	double sec = g_opt.seconds;
	size_t budget = config == 1 ? (size_t)z->budget : 0;
	uint64_t max_vb = 0;
	omen_stats st, a, b;
	omen_db *db;
	char title[200], k[80];

	if (config == 0)
		snprintf(title, sizeof(title),
			 "zipf %.2f, OmenDB all resident (memory_budget 0, tracking on)", ZIPF_THETA);
	else
		snprintf(title, sizeof(title),
			 "zipf %.2f, OmenDB memory_budget = %d%% of %.2f MB = %.2f MB (tracking on)",
			 ZIPF_THETA, BUDGET_PCT, (double)z->value_bytes_all / 1048576.0,
			 (double)z->budget / 1048576.0);
	table_header(title);
	db = omen_open_ready(dir, 0, budget, &st);
	print_stats("after open:", &st);
	if (config == 0) {
		z->value_bytes_all = st.value_bytes;
		z->budget = st.value_bytes * BUDGET_PCT / 100;
		if (z->budget == 0)
			die("omendb: value_bytes=0 with every value resident: no budget to set");
	}
	for (int sc = 0; sc <= 1; sc++) {
		const uint64_t *probes = mapping_probes(sc);
		struct zipf_row *row = &z->row[sc][config];
		double warm_s;

		if (config == 1) {
			printf("  %s mapping: warm-up (2 threads) until the share from memory stops "
			       "rising\n", mapping_name[sc]);
			warm_s = warm_until_converged(db, probes, &max_vb);
			snprintf(k, sizeof(k), "zipf_%sbudget_warmup_s", sc ? "scrambled_" : "");
			kv(k, "%.2f", warm_s);
		} else {
			run_reads(&peer_omendb, db, probes, NULL, MAX_THREADS, sec / 2);
		}
		for (unsigned t = 1; t <= MAX_THREADS; t++) {
			char label[64], note[240], vb[64], k2[96];
			double share;

			stats_get(db, &a);
			row->m[t - 1] = run_reads(&peer_omendb, db, probes, NULL, t, sec);
			stats_get(db, &b);
			if (b.value_bytes > max_vb)
				max_vb = b.value_bytes;
			share = row->mem[t - 1] = mem_share(&a, &b);
			snprintf(label, sizeof(label), "zipf %s %s", mapping_name[sc],
				 config_name[config]);
			if (budget)
				snprintf(vb, sizeof(vb), "value_mb=%.2f of %.2f",
					 (double)b.value_bytes / 1048576.0,
					 (double)budget / 1048576.0);
			else
				snprintf(vb, sizeof(vb), "value_mb=%.2f",
					 (double)b.value_bytes / 1048576.0);
			snprintf(note, sizeof(note),
				 "from memory %.1f%%, %s, evictions +%" PRIu64 ", readmissions +%"
				 PRIu64 ", dropped +%" PRIu64, share < 0 ? 0.0 : share * 100, vb,
				 b.evictions - a.evictions, b.readmissions - a.readmissions,
				 b.dropped_samples - a.dropped_samples);
			table_row(label, t, &row->m[t - 1], note);
			row_key(k, sizeof(k), sc, config, t);
			kv_measure(k, &row->m[t - 1]);
			snprintf(k2, sizeof(k2), "%s_mem_fraction", k);
			kv(k2, "%.4f", share);
			snprintf(k2, sizeof(k2), "%s_value_bytes", k);
			kv(k2, "%" PRIu64, b.value_bytes);
		}
		row->ran = true;
	}
	stats_get(db, &st);
	print_stats("at the end:", &st);
	if (config == 0) {
		kv("zipf_resident_value_bytes", "%" PRIu64, z->value_bytes_all);
	} else {
		kv("zipf_budget_bytes", "%" PRIu64, z->budget);
		kv("zipf_budget_max_value_bytes", "%" PRIu64, max_vb);
		kv("zipf_budget_resident_keys", "%" PRIu64, st.resident_keys);
		kv("zipf_budget_evictions", "%" PRIu64, st.evictions);
		kv("zipf_budget_readmissions", "%" PRIu64, st.readmissions);
		kv("zipf_budget_samples", "%" PRIu64, st.samples);
		kv("zipf_budget_dropped_samples", "%" PRIu64, st.dropped_samples);
		printf("  resident value bytes: at most %.2f MB seen (at slice and run ends) "
		       "against a budget of %.2f MB\n", (double)max_vb / 1048576.0,
		       (double)z->budget / 1048576.0);
	}
	omen_close_checked(db);
}

/* ---------------------------------------------------------------- RocksDB */

static void zipf_rocksdb(const char *dir, struct zipf_results *z)
{
	const struct peer *p = &peer_rocksdb;
	struct peer_config cfg = { .dir = dir, .n = g_w.n, .sync = false };
	uint8_t *vals = xmalloc(LOAD_BATCH * PEER_VAL);
	double sec = g_opt.seconds, settle_s;
	char desc[400] = "", k[80];
	uint64_t t0, t1, t2, t3;
	void *db, *t;

	printf("\n== zipf %.2f, RocksDB: %s ==\n", ZIPF_THETA, p->settings);
	if (p->open(&cfg, &db) != 0)
		die("rocksdb: open %s failed (message above)", dir);
	if ((t = p->thread_open(db)) == NULL)
		die("rocksdb: thread_open failed");
	t0 = bench_now_ns();
	for (size_t off = 0; off < g_w.n; off += LOAD_BATCH) {
		size_t cnt = g_w.n - off < LOAD_BATCH ? g_w.n - off : LOAD_BATCH;

		for (size_t j = 0; j < cnt; j++)
			make_val(g_w.keys[off + j], vals + j * PEER_VAL);
		if (p->write_batch(t, g_w.keys + off, vals, cnt) < 0)
			die("rocksdb: load failed (message above)");
	}
	t1 = bench_now_ns();
	p->thread_close(t);
	free(vals);
	/* Closed and opened again, as OmenDB was: the WAL's records reach
	 * table files, as after an application's restart (bench_engine's
	 * reopen).  Then its compactions settle. */
	if (p->close(db) != 0)
		die("rocksdb: close failed");
	t2 = bench_now_ns();
	if (p->open(&cfg, &db) != 0)
		die("rocksdb: reopen %s failed (message above)", dir);
	t3 = bench_now_ns();
	settle_s = settle();
	p->describe(db, desc, sizeof(desc));
	printf("  loaded the same keys in batches of %d in %.2f s (%.3fM keys/s); closed in "
	       "%.2f s, reopened in %.2f s, settled in %.2f s: %s\n", LOAD_BATCH,
	       (double)(t1 - t0) / 1e9, (double)g_w.n / ((double)(t1 - t0) / 1e9) / 1e6,
	       (double)(t2 - t1) / 1e9, (double)(t3 - t2) / 1e9, settle_s, desc);
	kv("rocksdb_load_keys_per_s", "%.0f", (double)g_w.n / ((double)(t1 - t0) / 1e9));
	table_columns();
	for (int sc = 0; sc <= 1; sc++) {
		const uint64_t *probes = mapping_probes(sc);
		struct zipf_row *row = &z->row[sc][2];

		run_reads(p, db, probes, NULL, MAX_THREADS, sec / 2);
		for (unsigned th = 1; th <= MAX_THREADS; th++) {
			char label[64];

			row->m[th - 1] = run_reads(p, db, probes, NULL, th, sec);
			row->mem[th - 1] = -1;
			snprintf(label, sizeof(label), "zipf %s rocksdb", mapping_name[sc]);
			table_row(label, th, &row->m[th - 1], "");
			row_key(k, sizeof(k), sc, 2, th);
			kv_measure(k, &row->m[th - 1]);
		}
		row->ran = true;
	}
	if (p->close(db) != 0)
		die("rocksdb: close failed");
}

/* The ratios, in a table and as key=value lines. */
static void zipf_summary(const struct zipf_results *z)
{
	char k[96];

	printf("\n== zipf %.2f: budget (%d%% of the resident value bytes) against all-resident "
	       "and RocksDB ==\n", ZIPF_THETA, BUDGET_PCT);
	printf("  %-10s %3s %10s %10s %10s %12s %12s %9s\n", "mapping", "thr", "resident",
	       "budget", "rocksdb", "budget/res", "budget/rocks", "from mem");
	for (int sc = 0; sc <= 1; sc++) {
		for (unsigned t = 1; t <= MAX_THREADS; t++) {
			double res = z->row[sc][0].m[t - 1].ops_per_s;
			double bud = z->row[sc][1].m[t - 1].ops_per_s;
			double roc = z->row[sc][2].m[t - 1].ops_per_s;
			double mem = z->row[sc][1].mem[t - 1];
			double vr = res > 0 ? bud / res : 0, vk = roc > 0 ? bud / roc : 0;
			const char *pre = sc ? "zipf_scrambled_" : "zipf_";

			printf("  %-10s %3u %10.3f %10.3f %10.3f %12.3f %12.2f %8.1f%%\n",
			       mapping_name[sc], t, res / 1e6, bud / 1e6, roc / 1e6, vr, vk,
			       mem < 0 ? 0.0 : mem * 100);
			snprintf(k, sizeof(k), "%sbudget_vs_resident_%ut", pre, t);
			kv(k, "%.4f", vr);
			snprintf(k, sizeof(k), "%sbudget_vs_rocksdb_%ut", pre, t);
			kv(k, "%.4f", vk);
			snprintf(k, sizeof(k), "%sbudget_mem_fraction_%ut", pre, t);
			kv(k, "%.4f", mem);
			if (t == MAX_THREADS) {
				snprintf(k, sizeof(k), "%sbudget_vs_resident", pre);
				kv(k, "%.4f", vr);
				snprintf(k, sizeof(k), "%sbudget_vs_rocksdb", pre);
				kv(k, "%.4f", vk);
				snprintf(k, sizeof(k), "%sbudget_mem_fraction", pre);
				kv(k, "%.4f", mem);
			}
		}
	}
}

static void print_targets(const struct zipf_results *z)
{
	const struct zipf_row *res = &z->row[0][0], *bud = &z->row[0][1], *roc = &z->row[0][2];
	char what[96];

	printf("\n== issue 8 targets (set for 10M keys on this machine; n=%zu here) ==\n", g_w.n);
	for (unsigned t = 1; t <= MAX_THREADS; t++) {
		snprintf(what, sizeof(what), "uniform gets, %u thread%s: tracking on / off", t,
			 t > 1 ? "s" : "");
		target_line(what, g_tracking_ratio[t - 1], TARGET_TRACKING_RATIO);
		snprintf(what, sizeof(what), "zipf, %u thread%s: budget / all-resident", t,
			 t > 1 ? "s" : "");
		target_line(what, bud->m[t - 1].ops_per_s / res->m[t - 1].ops_per_s,
			    TARGET_BUDGET_VS_RESIDENT);
		snprintf(what, sizeof(what), "zipf, %u thread%s: budget / RocksDB", t,
			 t > 1 ? "s" : "");
		target_line(what, bud->m[t - 1].ops_per_s / roc->m[t - 1].ops_per_s,
			    TARGET_BUDGET_VS_ROCKSDB);
	}
}

/* ---------------------------------------------------------------- workload */

static void make_workload(void)
{
	size_t n = g_opt.n;
	uint64_t *sorted, *perm;
	ds_rng rng;
	ds_zipf zf;
	uint64_t t0 = bench_now_ns();

	g_w.n = n;
	g_w.nprobes = n >= 1000000 ? (size_t)1 << 23 : (size_t)1 << 20;
	g_w.keys = xmalloc(n * sizeof(uint64_t));
	ds_generate(DS_UNIFORM, g_opt.seed, g_w.keys, n);

	g_w.uniform = xmalloc(g_w.nprobes * sizeof(uint64_t));
	ds_rng_seed(&rng, g_opt.seed ^ SALT_UNIFORM);
	for (size_t i = 0; i < g_w.nprobes; i++)
		g_w.uniform[i] = g_w.keys[ds_rng_next(&rng) % n];

	sorted = xmalloc(n * sizeof(uint64_t));
	memcpy(sorted, g_w.keys, n * sizeof(uint64_t));
	ds_sort(sorted, n);
	perm = xmalloc(n * sizeof(uint64_t));
	memcpy(perm, sorted, n * sizeof(uint64_t));
	ds_shuffle(perm, n, g_opt.seed ^ SALT_PERM);
	g_w.zipf_sorted = xmalloc(g_w.nprobes * sizeof(uint64_t));
	g_w.zipf_scrambled = xmalloc(g_w.nprobes * sizeof(uint64_t));
	ds_rng_seed(&rng, g_opt.seed ^ SALT_ZIPF);
	ds_zipf_init(&zf, n, ZIPF_THETA);
	for (size_t i = 0; i < g_w.nprobes; i++) {
		uint64_t rank = ds_zipf_next(&zf, &rng);

		g_w.zipf_sorted[i] = sorted[rank];
		g_w.zipf_scrambled[i] = perm[rank];
	}
	free(sorted);
	free(perm);
	printf("# workload: %zu keys (uniform 64-bit, random order), %zu probes per sequence "
	       "(uniform, zipf sorted, zipf scrambled), made in %.2f s\n", n, g_w.nprobes,
	       (double)(bench_now_ns() - t0) / 1e9);
}

/* ----------------------------------------------------------------- options */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_temperature [options]\n"
		"  -n, --n N          keys to load (suffix k/m; default 10m)\n"
		"  -t, --seconds S    length of each timed run (default %.1f)\n"
		"  -d, --dir DIR      where the databases go (default a fresh mkdtemp under\n"
		"                     $TMPDIR or /tmp); removed at the end unless --keep\n"
		"  -s, --seed S       key set and probe seed (default %u, bench_engine's)\n"
		"  -r, --rounds R     rounds of tracking off/on (default %d, at most %d)\n"
		"  --keep             keep the databases\n"
		"  --no-pin           do not pin the reader threads to CPUs\n"
		"  --smoke            -n 20k -t 0.2 unless given otherwise\n",
		DEFAULT_SECONDS, DEFAULT_SEED, DEFAULT_ROUNDS, MAX_ROUNDS);
}

static int parse_args(int argc, char **argv, struct options *o)
{
	bool n_set = false, t_set = false;

	memset(o, 0, sizeof(*o));
	o->n = DEFAULT_N;
	o->seconds = DEFAULT_SECONDS;
	o->seed = DEFAULT_SEED;
	o->rounds = DEFAULT_ROUNDS;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool ok = true;

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(a, "--keep")) {
			o->keep = true;
			continue;
		} else if (!strcmp(a, "--no-pin")) {
			o->no_pin = true;
			continue;
		} else if (!strcmp(a, "--smoke")) {
			if (!n_set)
				o->n = 20000;
			if (!t_set)
				o->seconds = 0.2;
			continue;
		}
		if (v == NULL) {
			fprintf(stderr, "bench_temperature: %s: missing value\n", a);
			usage(stderr);
			return -1;
		}
		i++;
		if (!strcmp(a, "-n") || !strcmp(a, "--n")) {
			o->n = bench_parse_count(v);
			ok = o->n >= 10000;   /* zipf over enough keys, several ranges per shard */
			n_set = true;
		} else if (!strcmp(a, "-t") || !strcmp(a, "--seconds")) {
			ok = parse_seconds(v, &o->seconds) && o->seconds >= 0.05 &&
			     o->seconds <= 3600;
			t_set = true;
		} else if (!strcmp(a, "-d") || !strcmp(a, "--dir")) {
			o->dir = v;
			ok = *v != '\0';
		} else if (!strcmp(a, "-s") || !strcmp(a, "--seed")) {
			char *end;

			o->seed = strtoull(v, &end, 0);
			ok = *v && *end == '\0';
		} else if (!strcmp(a, "-r") || !strcmp(a, "--rounds")) {
			size_t r;

			ok = parse_size(v, &r) && r <= MAX_ROUNDS;
			o->rounds = (unsigned)r;
		} else {
			fprintf(stderr, "bench_temperature: unknown option: %s\n", a);
			usage(stderr);
			return -1;
		}
		if (!ok) {
			fprintf(stderr, "bench_temperature: bad value for %s: %s\n", a, v);
			usage(stderr);
			return -1;
		}
	}
	return 0;
}

/* The base directory: --dir (made when missing, removed at the end only
 * then) or a fresh mkdtemp. */
static void make_base_dir(void)
{
	if (g_opt.dir) {
		struct stat st;

		if (strlen(g_opt.dir) >= sizeof(g_base) - 64)
			die("--dir too long");
		snprintf(g_base, sizeof(g_base), "%s", g_opt.dir);
		if (lstat(g_base, &st) != 0) {
			if (mkdir(g_base, 0755) != 0)
				die("mkdir %s: %s", g_base, strerror(errno));
			g_base_created = true;
		} else if (!S_ISDIR(st.st_mode)) {
			die("%s is not a directory", g_base);
		}
	} else {
		apitest_mkdtemp(g_base, sizeof(g_base), "bench-temperature");
		g_base_created = true;
	}
	atexit(cleanup_base);
}

int main(int argc, char **argv)
{
	bench_machine mach;
	struct zipf_results z;
	struct rusage ru;
	char odir[4200], rdir[4200];
	struct stat st;
	uint64_t t0 = bench_now_ns();

	if (parse_args(argc, argv, &g_opt) != 0)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(&z, 0, sizeof(z));

	printf("# bench_temperature: temperature tracking on vs off, and zipf reads under a "
	       "memory budget against all-resident and RocksDB (issue 8)\n");
	bench_machine_get(&mach);
	printf("# machine: arch=%s cpu=\"%s\" nproc=%ld loadavg_1min=%.2f\n", mach.arch, mach.cpu,
	       mach.nproc, bench_loadavg_1min());
	printf("# build: compiler=\"%s\" optimized=%s", __VERSION__, mach.optimized);
#ifdef OMEN_BUILD_CFLAGS
	printf(" cflags=\"%s\"", OMEN_BUILD_CFLAGS);
#endif
	printf("\n");
	g_timer_ns = bench_timer_overhead_ns();
	pick_cpus();
	printf("# n=%zu value_bytes=%d seconds=%.2f seed=%" PRIu64 " rounds=%u zipf_theta=%.2f "
	       "budget=%d%% of the resident value bytes; OmenDB default options (shards = CPUs, "
	       "sample_every etc. default) except no_tracking / memory_budget as each row says\n",
	       g_opt.n, PEER_VAL, g_opt.seconds, g_opt.seed, g_opt.rounds, ZIPF_THETA, BUDGET_PCT);
	printf("# latency: 1 get in %d timed, timer_overhead_ns=%" PRIu64 " included\n",
	       SAMPLE_EVERY, g_timer_ns);
	if (g_opt.no_pin || g_ncpus == 0)
		printf("# readers not pinned%s\n", g_opt.no_pin ? " (--no-pin)" : "");
	else
		printf("# pinning: reader i on usable CPU i (cpu%d, ...) when the readers fit the "
		       "%u usable CPUs\n", g_cpus[0], g_ncpus);
	make_base_dir();
	snprintf(odir, sizeof(odir), "%s/omendb", g_base);
	snprintf(rdir, sizeof(rdir), "%s/rocksdb", g_base);
	if (lstat(odir, &st) == 0 || lstat(rdir, &st) == 0)
		die("%s or %s already exists: not reusing it", odir, rdir);
	printf("# data directories under %s%s\n", g_base, g_opt.keep ? " (kept)" : "");
	make_workload();

	phase_load(odir);
	phase_tracking(odir);
	zipf_omendb(odir, 0, &z);
	zipf_omendb(odir, 1, &z);
	if (!g_opt.keep)
		apitest_rm_tree(odir);
	zipf_rocksdb(rdir, &z);
	if (!g_opt.keep)
		apitest_rm_tree(rdir);
	zipf_summary(&z);
	print_targets(&z);

	getrusage(RUSAGE_SELF, &ru);
	printf("\n# machine-readable (the unsuffixed zipf_budget_* figures are the 2-thread "
	       "ones; tracking_* the best of the rounds)\n");
	printf("bench=temperature\n");
	printf("n=%zu\nseconds=%.2f\nseed=%" PRIu64 "\nrounds=%u\ntimer_ns=%" PRIu64 "\n", g_w.n,
	       g_opt.seconds, g_opt.seed, g_opt.rounds, g_timer_ns);
	for (size_t i = 0; i < g_nkv; i++)
		puts(g_kv[i]);
	printf("max_rss_mb=%ld\nelapsed_s=%.1f\nloadavg_1min=%.2f\nfailures=0\n",
	       ru.ru_maxrss / 1024, (double)(bench_now_ns() - t0) / 1e9, bench_loadavg_1min());
	free(g_w.keys);
	free(g_w.uniform);
	free(g_w.zipf_sorted);
	free(g_w.zipf_scrambled);
	return 0;
}
