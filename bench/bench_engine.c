/*
 * bench/bench_engine.c — one workload, run in one process on OmenDB and its
 * peers: RocksDB, LMDB, SQLite and an in-memory sorted array (issue 4,
 * "Benchmark").  Every engine sits behind bench/peers.h, so the workload
 * below is written once; OmenDB is driven through its public API only.
 *
 *   bench_engine [--n 1m] [--dist random|seq|device] [--seconds 2]
 *                [--peers omendb,rocksdb,lmdb,sqlite,array] [--dir DIR]
 *                [--seed S] [--sync-threads 8] [--keep] [--no-pin] [--smoke]
 *
 * The workload, per engine, in this order (uint64 keys, 16-byte values):
 *
 *   load_ingest  OmenDB only: the n keys through omen_ingest from 2 threads
 *                (1000-key chunks dealt alternately), then omen_flush, into
 *                a database of its own that is then closed and removed.
 *   load         the n keys in load order, in batches of 1000: omen_write,
 *                a RocksDB WriteBatch, one LMDB write txn, one SQLite
 *                transaction; appends then one sort for the array.  The
 *                latency columns are per batch.
 *   reopen       close, then open again: the time open takes (close's is
 *                printed beside it).  OmenDB reads every shard back into
 *                memory here; RocksDB replays its WAL; LMDB maps its file.
 *                Then, untimed, a wait for the engine's background work
 *                (flushes, compactions) to stop: see settle().
 *   get          point gets of loaded keys (all hits), 1 and 2 threads,
 *                uniform and zipf(0.99) over the loaded keys, after an
 *                untimed warm-up of uniform gets (half of --seconds).
 *   scan         an iterator from a uniform random loaded key, 100 records.
 *   mix          50/50 and 95/5 reads/updates on uniform keys, 1 and 2
 *                threads; an update is a synchronous put of a loaded key.
 *   get_under_ingest
 *                1 thread of uniform gets while another thread writes new
 *                keys (the "other core"): omen_ingest for OmenDB, batches of
 *                1000 for the peers.  The writer's rate is printed beside.
 *   put_sync     --sync-threads threads (8) of single puts of loaded keys,
 *                each fsync'd before it returns: OmenDB reopened with
 *                OMEN_DURABLE_SYNC, RocksDB Put with sync=true.
 *
 * The array has no persistence and no inserts: it skips reopen,
 * get_under_ingest and put_sync.  LMDB and SQLite run no put_sync (the
 * issue compares OmenDB with RocksDB there).
 *
 * Identical work for every engine: the key set, the load order, and the
 * probe sequences (NPROBES keys each, uniform and zipf, zipf ranks mapped
 * through a random permutation so the hot keys are scattered) are made once
 * per run from --seed.  Thread t of T starts at probe t * NPROBES / T and
 * walks on; in a mix, whether op i is an update is a hash of i.  Timed
 * phases run for --seconds each, so engines do different numbers of
 * operations, but always a prefix of the same sequence.
 *
 * Measurement: ops/s is operations over the wall time from the start
 * barrier to the last thread's end.  One operation in SAMPLE_EVERY (every
 * one for put_sync) is timed alone with a clock_gettime pair; the
 * percentiles come from those samples (at most BENCH_LAT_CAP per thread,
 * reservoir-sampled beyond) and include the timer's own cost, measured at
 * start and printed.  Engines run one after the other, each in its own
 * directory, removed after its run (--keep keeps them): on a 2-core
 * machine, another engine's background work (RocksDB compaction) would
 * otherwise disturb the one being measured.
 *
 * Each row also says how much else the machine did meanwhile (others=,
 * CPUs' worth of busy time that was not this process's, from /proc/stat;
 * DISTURBED past OTHERS_MAX).  It includes kernel threads working for this
 * process (page writeback, the file system journal), so write phases of
 * engines that leave writeback to the kernel show some of it themselves.
 *
 * Correctness: every value holds its key in its first 8 bytes; every get
 * must find its key with that value, every scan must start at its key, be
 * ascending and carry matching values.  Any failure or engine error is
 * reported and makes the exit status 1.  The benchmark's own threads are
 * pinned one per CPU when they fit (see pick_cpus); the engines' threads
 * (OmenDB's shard workers, RocksDB's background jobs) are left alone.
 *
 * Output: a table per engine as it runs, a comparison table, the issue's
 * targets for OmenDB, then one machine-readable line per measurement:
 *   bench=engine engine=omendb dist=random n=1000000 op=get pick=uniform
 *   threads=1 ops_per_s=... p50_ns=... p99_ns=... p999_ns=...
 *   ratio_vs=rocksdb:12.30,lmdb:2.10,...
 * where ratio_vs=X:r is this engine's figure over X's (throughput; for
 * reopen, X's time over this one's): > 1 means this engine is faster.
 * OmenDB's lines carry a ratio against each peer; the peers' against
 * OmenDB.  Exit status: 0, 1 (failures), 2 (usage).
 */

/* mkdtemp, nftw, pthread_setaffinity_np, sched_getaffinity */
#define _GNU_SOURCE

#include "bench/peers.h"
#include "tests/lib/datasets.h"
#include "tests/lib/benchutil.h"
#ifdef OMEN_TSAN
/* Like tests/lib/apitest.h: the engine's suppression list is inside
 * libomendb.so, which exports omen_* only, so a program that links the
 * shared library names the uninstrumented libraries itself; LMDB and
 * SQLite are uninstrumented too. */
#include "core/tsan_suppressions.h"
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
	return OMEN_TSAN_SUPPRESSIONS "called_from_lib:liblmdb.so\n"
				      "called_from_lib:libsqlite3.so\n";
}
#endif
#include "tests/lib/util.h"

#include <errno.h>
#include <ftw.h>
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
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_N        1000000u
#define DEFAULT_SECONDS  2.0
#define DEFAULT_SEED     20240604u
#define LOAD_BATCH       1000      /* records per batch / transaction (the issue's) */
#define INGEST_THREADS   2
#define SCAN_LEN         100
#define NPROBES          (1u << 22) /* per probe sequence; a power of two */
#define SAMPLE_EVERY     16        /* one op in this many is timed alone */
#define DEFAULT_SYNC_THREADS 8
#define MAX_THREADS      64
#define ZIPF_THETA       0.99
#define MAX_RESULTS      256

/* The targets, this machine, 10M random keys (printed, not enforced). */
#define TARGET_GET_VS_ROCKSDB 10.0
#define TARGET_GET_VS_LMDB    2.0
#define TARGET_GET_VS_ARRAY   1.5
#define TARGET_GET_2T_VS_1T   1.8
#define TARGET_INGEST_VS_ROCKSDB 3.0
#define TARGET_INGEST_VS_LMDB 2.0
#define TARGET_SYNC_VS_ROCKSDB 3.0
#define TARGET_P99_UNDER_INGEST_NS 5000u

#define SALT_UNIFORM 0x554e49464f524d32ull
#define SALT_ZIPF    0x5a49504630393932ull
#define SALT_PERM    0x5045524d55544531ull
#define SALT_MIX     0x4d49585f4f505331ull
#define SALT_VALUE   0x56414c5545533031ull

/* ------------------------------------------------------------- engines */

static const struct peer *const all_peers[] = {
	&peer_omendb, &peer_rocksdb, &peer_lmdb, &peer_sqlite, &peer_array,
};
#define NPEERS (sizeof(all_peers) / sizeof(all_peers[0]))
/* Indexes into all_peers. */
enum { OMENDB, ROCKSDB, LMDB, SQLITE, ARRAY };

static const struct {
	const char *name;
	enum ds_dist ds;
} dists[] = {
	{ "random", DS_UNIFORM },   /* uniform over 2^64, random arrival order */
	{ "seq", DS_TIMESTAMPS },   /* ascending ms timestamps */
	{ "device", DS_DEVICE },    /* device << 44 | ms ts, time-major */
};
#define NDISTS (sizeof(dists) / sizeof(dists[0]))

struct options {
	size_t n;
	unsigned dist;          /* index into dists */
	double seconds;         /* per timed phase */
	unsigned peers;         /* bit i: all_peers[i] runs */
	unsigned order[NPEERS]; /* the engines to run, in --peers order */
	unsigned npeers;
	const char *dir;
	uint64_t seed;
	unsigned sync_threads;
	bool keep;
	bool no_pin;
};

/* ------------------------------------------------------------ run state */

/* Made once, read-only while phases run. */
struct workload {
	size_t n;               /* loaded keys: keys[0, n) in load order */
	size_t extra;           /* new keys for get_under_ingest: keys[n, n + extra) */
	uint64_t *keys;
	uint64_t *probe_uniform; /* NPROBES loaded keys each */
	uint64_t *probe_zipf;
};


struct result {
	unsigned peer;
	char op[24];            /* op=...                                     */
	char attrs[40];         /* the variant's key=value pairs, or ""       */
	char match[80];         /* results with equal match are compared      */
	unsigned threads;
	double ops_per_s;       /* < 0: not a throughput                      */
	double seconds;         /* reopen: seconds (< 0 otherwise)            */
	bool has_lat;
	bench_lat lat;
	double others;          /* CPUs' worth of other processes' work meanwhile
				   (-1: unknown); see load_begin               */
	char extra[200];        /* more key=value pairs for the machine line  */
	char note[200];         /* for the table                              */
};

static struct options g_opt;
static struct workload g_w;
static struct result g_res[MAX_RESULTS];
static size_t g_nres;
static unsigned g_failures;
static uint64_t g_timer_ns;
static int g_cpus[MAX_THREADS]; /* CPUs this process may run on (pinning)       */
static unsigned g_ncpus;
static char g_base[4096];       /* the directory holding every engine's directory */
static bool g_base_created;     /* made by this run: removed at exit */

/* ---------------------------------------------------------------- helpers */


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

static inline uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

/* A value: the key, then a word that changes with each write (gen). */
static inline void make_val(uint64_t key, uint64_t gen, uint8_t out[PEER_VAL])
{
	uint64_t w[2] = { key, mix64(key ^ SALT_VALUE) ^ gen };

	memcpy(out, w, PEER_VAL);
}

static inline bool val_ok(uint64_t key, const uint8_t v[PEER_VAL])
{
	uint64_t k;

	memcpy(&k, v, sizeof(k));
	return k == key;
}


/*
 * Other work on the machine during a measurement: the CPU time the whole
 * machine spent busy (or stolen by the hypervisor) per /proc/stat, minus
 * this process's own, over the wall time.  On a small shared machine a
 * figure taken beside other jobs is not comparable with one taken alone,
 * so every row says how much else ran (DISTURBED past OTHERS_MAX).
 * /proc/stat counts in ticks (10 ms): about +-0.01 CPUs over 2 s.
 */
#define OTHERS_MAX 0.10

struct machine_load {
	double busy_s, self_s, wall_s;
	bool ok;
};

static void load_read(struct machine_load *m)
{
	FILE *f = fopen("/proc/stat", "r");
	unsigned long long v[8];
	long hz = sysconf(_SC_CLK_TCK);
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	m->self_s = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
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

int peer_mkdir(const char *who, const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0755) == 0)
		return 0;
	if (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	fprintf(stderr, "%s: mkdir %s: %s\n", who, dir, strerror(errno));
	return -1;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	if (remove(path) != 0)
		fprintf(stderr, "bench_engine: remove %s: %s\n", path, strerror(errno));
	return 0;
}

/* rm -rf path (quietly nothing when it does not exist). */
static void rm_tree(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0)
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void cleanup_base(void)
{
	if (g_base_created && !g_opt.keep)
		rm_tree(g_base);
}

/*
 * Killed by a signal (Ctrl-C, timeout's SIGTERM, a closed pipe): the data
 * directories would stay behind, a gigabyte at 10M keys.  The handler runs
 * "rm -rf" on what this run created (the whole base directory when it made
 * it, else the engine directories in use) in a child, with fork, execv and
 * waitpid only (async-signal-safe), then dies of the signal as it would
 * have.  Signals may land on any thread (RocksDB's pool threads outlive a
 * close), so the engine directories are published as whole strings through
 * atomic pointers, never rewritten in place: a handler sees an old pair, a
 * new pair or nothing, never a torn path.
 */
static _Atomic(char *) g_rm_dirs[2];    /* run_engine: the engine's two dirs */

static void on_fatal_signal(int sig)
{
	static char rm[] = "rm", rf[] = "-rf", dd[] = "--";
	char *argv[6] = { rm, rf, dd, NULL, NULL, NULL };
	pid_t pid;

	if (g_base_created) {
		argv[3] = g_base;
	} else if ((argv[3] = atomic_load(&g_rm_dirs[0])) != NULL) {
		argv[4] = atomic_load(&g_rm_dirs[1]);
	}
	if (argv[3] && !g_opt.keep && (pid = fork()) >= 0) {
		if (pid == 0) {
			execv("/bin/rm", argv);
			_exit(127);
		}
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void cleanup_on_signals(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGPIPE };
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fatal_signal;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}

/* Publish the directories a signal should remove (see on_fatal_signal).
 * Static storage, nothing to free: the pointers are withdrawn while the
 * text is rewritten, so a handler sees either NULL or a whole path. */
static void publish_dirs(const char *dir, const char *idir)
{
	static char bufs[2][4096];

	atomic_store(&g_rm_dirs[0], NULL);
	atomic_store(&g_rm_dirs[1], NULL);
	if (snprintf(bufs[0], sizeof(bufs[0]), "%s", dir) >= (int)sizeof(bufs[0]) ||
	    snprintf(bufs[1], sizeof(bufs[1]), "%s", idir) >= (int)sizeof(bufs[1])) {
		fprintf(stderr, "bench_engine: directory path too long\n");
		exit(1);
	}
	atomic_store(&g_rm_dirs[1], bufs[1]);
	atomic_store(&g_rm_dirs[0], bufs[0]);
}

/*
 * Pinning.  A benchmark thread that the scheduler moves between CPUs loses
 * its cache each time: on the 2-vCPU test VM an unpinned single reader ran
 * ~10% slower than a pinned one, which also flattered every 2-thread/1-thread
 * ratio.  So when a phase's own threads fit the CPUs, thread i runs on the
 * i-th usable CPU (get_under_ingest: the reader on the first, the writer on
 * the second: "the other core").  Phases with more threads than CPUs
 * (put_sync) are not pinned; neither is the main thread (load) nor the
 * engines' own threads.  --no-pin turns it off.
 */
static void pick_cpus(void)
{
	g_ncpus = bench_usable_cpus(g_cpus, MAX_THREADS);
}

/* The CPU for thread i of a phase running total threads of its own; -1: none. */
static int cpu_for(unsigned i, unsigned total)
{
	return g_opt.no_pin || total > g_ncpus ? -1 : g_cpus[i];
}

static void pin_self(int cpu)
{
	bench_pin_self(cpu, "bench_engine");
}

/* ----------------------------------------------------------- latencies */


/* ------------------------------------------------------------ reporting */

/* The key results are compared by: "op attrs threads=N". */
static void make_match(char *buf, size_t len, const char *op, const char *attrs, unsigned threads)
{
	snprintf(buf, len, "%s%s%s threads=%u", op, *attrs ? " " : "", attrs, threads);
}

static struct result *result_new(unsigned peer, const char *op, const char *attrs,
				 unsigned threads)
{
	struct result *r;

	if (g_nres == MAX_RESULTS) {
		fprintf(stderr, "bench_engine: too many results\n");
		exit(1);
	}
	r = &g_res[g_nres++];
	memset(r, 0, sizeof(*r));
	r->peer = peer;
	snprintf(r->op, sizeof(r->op), "%s", op);
	snprintf(r->attrs, sizeof(r->attrs), "%s", attrs);
	make_match(r->match, sizeof(r->match), op, attrs, threads);
	r->threads = threads;
	r->ops_per_s = -1;
	r->seconds = -1;
	r->others = -1;
	return r;
}

static void table_header(const struct peer *p)
{
	printf("\n== %s: %s ==\n", p->name, p->settings);
	printf("  %-30s %3s %10s  %-26s %s\n", "op", "thr", "M ops/s", "latency ns p50/p99/p99.9",
	       "note");
}

static void table_row(const struct result *r)
{
	char name[80], o[32] = "-", l[64] = "-", line[640];
	size_t len;

	snprintf(name, sizeof(name), "%s%s%s", r->op, *r->attrs ? " " : "", r->attrs);
	if (r->ops_per_s >= 0)
		snprintf(o, sizeof(o), "%.3f", r->ops_per_s / 1e6);
	else if (r->seconds >= 0)
		snprintf(o, sizeof(o), "%.3f s", r->seconds);
	if (r->has_lat)
		snprintf(l, sizeof(l), "%" PRIu64 " / %" PRIu64 " / %" PRIu64, r->lat.p50,
			 r->lat.p99, r->lat.p999);
	snprintf(line, sizeof(line), "  %-30s %3u %10s  %-26s %s%s", name, r->threads, o, l,
		 r->note, *r->note && r->others >= 0 ? "; " : "");
	if (r->others >= 0) {
		len = strlen(line);
		snprintf(line + len, sizeof(line) - len, "others=%.2f%s", r->others,
			 r->others > OTHERS_MAX ? " DISTURBED" : "");
	}
	len = strlen(line);
	while (len > 0 && line[len - 1] == ' ')
		line[--len] = '\0';
	puts(line);
	fflush(stdout);
}

/* This result's figure over other's: > 1 when this one is faster; < 0 when
 * they cannot be compared. */
static double ratio_of(const struct result *r, const struct result *other)
{
	if (r->ops_per_s > 0 && other->ops_per_s > 0)
		return r->ops_per_s / other->ops_per_s;
	if (r->seconds > 0 && other->seconds > 0)
		return other->seconds / r->seconds;
	return -1;
}

/* The first result of peer with this match (and op, when op is given). */
static const struct result *find_result(unsigned peer, const char *match, const char *op)
{
	for (size_t i = 0; i < g_nres; i++)
		if (g_res[i].peer == peer && strcmp(g_res[i].match, match) == 0 &&
		    (op == NULL || strcmp(g_res[i].op, op) == 0))
			return &g_res[i];
	return NULL;
}

static void print_machine_line(const struct result *r)
{
	const char *sep = "";

	printf("bench=engine engine=%s dist=%s n=%zu op=%s%s%s threads=%u", all_peers[r->peer]->name,
	       dists[g_opt.dist].name, g_w.n, r->op, *r->attrs ? " " : "", r->attrs, r->threads);
	if (r->ops_per_s >= 0)
		printf(" ops_per_s=%.0f", r->ops_per_s);
	if (r->seconds >= 0)
		printf(" seconds=%.3f", r->seconds);
	if (r->has_lat)
		printf(" p50_ns=%" PRIu64 " p99_ns=%" PRIu64 " p999_ns=%" PRIu64 " samples=%zu"
		       " timer_ns=%" PRIu64, r->lat.p50, r->lat.p99, r->lat.p999, r->lat.samples,
		       g_timer_ns);
	if (*r->extra)
		printf(" %s", r->extra);
	if (r->others >= 0)
		printf(" others_cpus=%.2f", r->others);
	printf(" ratio_vs=");
	if (r->peer == OMENDB) {
		for (unsigned p = 0; p < NPEERS; p++) {
			const struct result *o;
			double x;

			if (p == OMENDB || (o = find_result(p, r->match, NULL)) == NULL ||
			    (x = ratio_of(r, o)) < 0)
				continue;
			printf("%s%s:%.2f", sep, all_peers[p]->name, x);
			sep = ",";
		}
	} else {
		const struct result *o = find_result(OMENDB, r->match, r->op);
		double x;

		if (o && (x = ratio_of(r, o)) >= 0) {
			printf("omendb:%.2f", x);
			sep = ",";
		}
	}
	if (!*sep)
		printf("none");
	printf("\n");
}

/*
 * Everything each engine measured, side by side: M ops/s (reopen: s).  A
 * row per (op, variant); OmenDB's load_ingest row shows the peers' batched
 * loads, which it is compared with.
 */
static void print_comparison(void)
{
	bool seen[MAX_RESULTS] = { false };

	printf("\n== comparison: M ops/s (reopen: seconds); in brackets OmenDB / peer ==\n");
	printf("  %-34s", "op");
	for (unsigned p = 0; p < NPEERS; p++)
		if (g_opt.peers & (1u << p))
			printf(" %20s", all_peers[p]->name);
	printf("\n");
	for (size_t i = 0; i < g_nres; i++) {
		const char *match = g_res[i].match, *op = g_res[i].op;
		const struct result *omen = find_result(OMENDB, match, op);
		char name[96];

		if (seen[i])
			continue;
		for (size_t j = i; j < g_nres; j++)
			if (strcmp(g_res[j].match, match) == 0 && strcmp(g_res[j].op, op) == 0)
				seen[j] = true;
		snprintf(name, sizeof(name), "%s%s%s t=%u", g_res[i].op, *g_res[i].attrs ? " " : "",
			 g_res[i].attrs, g_res[i].threads);
		printf("  %-34s", name);
		for (unsigned p = 0; p < NPEERS; p++) {
			const struct result *r;
			char cell[40] = "-";

			if (!(g_opt.peers & (1u << p)))
				continue;
			if (p == OMENDB)
				r = omen;
			else if ((r = find_result(p, match, op)) == NULL)
				r = find_result(p, match, NULL);
			if (r && r->ops_per_s >= 0)
				snprintf(cell, sizeof(cell), "%.3f", r->ops_per_s / 1e6);
			else if (r && r->seconds >= 0)
				snprintf(cell, sizeof(cell), "%.2fs", r->seconds);
			if (r && p != OMENDB && omen && ratio_of(omen, r) >= 0) {
				size_t l = strlen(cell);

				snprintf(cell + l, sizeof(cell) - l, " [%.2fx]", ratio_of(omen, r));
			}
			printf(" %20s", cell);
		}
		printf("\n");
	}
}

static void target_line(const char *what, double got, double want, bool have)
{
	if (!have)
		printf("  %-58s not measured\n", what);
	else
		printf("  %-58s %8.2f  (target >= %.2f) %s\n", what, got, want,
		       got >= want ? "met" : "MISSED");
}

/* The figures to reach, for OmenDB (meaningful at 10M random keys). */
static void print_targets(void)
{
	const struct result *g1 = find_result(OMENDB, "get pick=uniform threads=1", NULL);
	const struct result *g2 = find_result(OMENDB, "get pick=uniform threads=2", NULL);
	const struct result *li = find_result(OMENDB, "load threads=1", "load_ingest");
	const struct result *ps = find_result(OMENDB, "put_sync threads=8", NULL);
	const struct result *gi = find_result(OMENDB, "get_under_ingest pick=uniform threads=1",
					      NULL);
	const struct result *x;
	char what[96];

	if (!(g_opt.peers & (1u << OMENDB)))
		return;
	printf("\n== issue 4 targets for OmenDB (set for 10M random keys on this machine) ==\n");
	x = find_result(ROCKSDB, "get pick=uniform threads=1", NULL);
	target_line("get, 1 thread: x RocksDB", g1 && x ? ratio_of(g1, x) : 0, TARGET_GET_VS_ROCKSDB,
		    g1 && x);
	x = find_result(LMDB, "get pick=uniform threads=1", NULL);
	target_line("get, 1 thread: x LMDB", g1 && x ? ratio_of(g1, x) : 0, TARGET_GET_VS_LMDB,
		    g1 && x);
	x = find_result(ARRAY, "get pick=uniform threads=1", NULL);
	target_line("get, 1 thread: x sorted array", g1 && x ? ratio_of(g1, x) : 0,
		    TARGET_GET_VS_ARRAY, g1 && x);
	target_line("get, 2 threads: x 1 thread", g1 && g2 ? ratio_of(g2, g1) : 0,
		    TARGET_GET_2T_VS_1T, g1 && g2);
	/* The machine's own scaling, for context: the array has no shared state. */
	x = find_result(ARRAY, "get pick=uniform threads=1", NULL);
	if (x && (g2 = find_result(ARRAY, "get pick=uniform threads=2", NULL)) != NULL)
		printf("  %-58s %8.2f  (context: the same ratio for the sorted array)\n",
		       "  sorted array, 2 threads: x 1 thread", ratio_of(g2, x));
	x = find_result(ROCKSDB, "load threads=1", "load");
	target_line("load_ingest (2 threads + flush): x RocksDB batched load",
		    li && x ? ratio_of(li, x) : 0, TARGET_INGEST_VS_ROCKSDB, li && x);
	x = find_result(LMDB, "load threads=1", "load");
	target_line("load_ingest (2 threads + flush): x LMDB batched load",
		    li && x ? ratio_of(li, x) : 0, TARGET_INGEST_VS_LMDB, li && x);
	if (g_opt.sync_threads == 8) {
		x = find_result(ROCKSDB, "put_sync threads=8", NULL);
		target_line("put_sync, 8 threads: x RocksDB sync Put", ps && x ? ratio_of(ps, x) : 0,
			    TARGET_SYNC_VS_ROCKSDB, ps && x);
	}
	snprintf(what, sizeof(what), "get p99 under ingest (ns, target < %u)",
		 TARGET_P99_UNDER_INGEST_NS);
	if (gi && gi->has_lat)
		printf("  %-58s %8" PRIu64 "  %s\n", what, gi->lat.p99,
		       gi->lat.p99 < TARGET_P99_UNDER_INGEST_NS ? "met" : "MISSED");
	else
		printf("  %-58s not measured\n", what);
}

/* --------------------------------------------------------- timed phases */

enum op_kind { OPK_GET, OPK_SCAN, OPK_MIX, OPK_PUT };

struct phase {
	const struct peer *p;
	void *db;
	enum op_kind kind;
	const uint64_t *probes;     /* NPROBES keys */
	unsigned write_pct;         /* OPK_MIX: updates per 100 ops */
	uint64_t gen;               /* value generation of this phase's writes */
	unsigned threads;
	uint64_t run_ns;
	unsigned sample_every;
	pthread_barrier_t start;
	atomic_bool stop_writer;    /* get_under_ingest: the readers are done */
};

struct worker {
	struct phase *ph;
	pthread_t tid;
	unsigned id;
	int cpu;                    /* pinned to it; -1: not pinned */
	uint64_t ops, t0, t1;
	uint64_t bad;               /* wrong or missing results */
	int err;                    /* an engine call failed */
	bench_samples lat;
	uint64_t scan_buf_keys[SCAN_LEN];
	uint8_t scan_buf_vals[SCAN_LEN * PEER_VAL];
};

static inline bool mix_is_write(uint64_t i, unsigned pct)
{
	return mix64(i ^ SALT_MIX) % 100 < pct;
}

/* One operation of the phase, number i of the sequence.  < 0 on an engine
 * error (already printed). */
static inline int do_op(struct worker *w, void *t, uint64_t i)
{
	const struct phase *ph = w->ph;
	const struct peer *p = ph->p;
	uint64_t key = ph->probes[i & (NPROBES - 1)];
	uint8_t v[PEER_VAL];
	int rc;

	switch (ph->kind) {
	case OPK_MIX:
		if (!mix_is_write(i, ph->write_pct))
			goto get;
		/* fall through */
	case OPK_PUT:
		make_val(key, ph->gen ^ i, v);
		return p->put(t, key, v);
	case OPK_GET:
	get:
		rc = p->get(t, key, v);
		if (rc < 0)
			return rc;
		if (rc == 0 || !val_ok(key, v))
			w->bad++;
		return 0;
	case OPK_SCAN:
		rc = p->scan(t, key, SCAN_LEN, w->scan_buf_keys, w->scan_buf_vals);
		if (rc < 0)
			return rc;
		if (rc == 0 || w->scan_buf_keys[0] != key) {
			w->bad++;
			return 0;
		}
		for (int j = 0; j < rc; j++)
			if ((j > 0 && w->scan_buf_keys[j] <= w->scan_buf_keys[j - 1]) ||
			    !val_ok(w->scan_buf_keys[j], w->scan_buf_vals + (size_t)j * PEER_VAL)) {
				w->bad++;
				break;
			}
		return 0;
	}
	return -1;
}

static void run_ops(struct worker *w, void *t)
{
	const struct phase *ph = w->ph;
	uint64_t i = (uint64_t)w->id * (NPROBES / ph->threads), ops = 0, deadline, b;
	unsigned every = ph->sample_every;

	w->t0 = bench_now_ns();
	deadline = w->t0 + ph->run_ns;
	for (;;) {
		uint64_t a;

		for (unsigned k = 1; k < every; k++, i++, ops++)
			if (do_op(w, t, i) < 0)
				goto err;
		a = bench_now_ns();
		if (do_op(w, t, i) < 0)
			goto err;
		b = bench_now_ns();
		i++;
		ops++;
		bench_samples_add(&w->lat, b - a);
		if (b >= deadline)
			break;
	}
	w->t1 = b;
	w->ops = ops;
	return;
err:
	w->err = 1;
	w->t1 = bench_now_ns();
	w->ops = ops;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	void *t;

	pin_self(w->cpu);
	t = w->ph->p->thread_open(w->ph->db);
	if (t == NULL)
		w->err = 1;
	pthread_barrier_wait(&w->ph->start);
	if (t) {
		run_ops(w, t);
		w->ph->p->thread_close(t);
	}
	return NULL;
}

/* get_under_ingest's writer: new keys keys[n, n + extra) in chunks of
 * LOAD_BATCH, through ingest (OmenDB) or write_batch, until the readers
 * are done; then, with ingest, a flush (outside the rate). */
struct writer {
	struct phase *ph;
	pthread_t tid;
	int cpu;
	uint64_t written, t0, t1, flush_ns;
	int err;
};

static void *writer_main(void *arg)
{
	struct writer *wr = arg;
	const struct phase *ph = wr->ph;
	const struct peer *p = ph->p;
	uint8_t *vals = xmalloc(LOAD_BATCH * PEER_VAL);
	size_t off = 0, round = 0;
	void *t;

	pin_self(wr->cpu);
	t = p->thread_open(ph->db);
	if (t == NULL)
		wr->err = 1;
	pthread_barrier_wait(&wr->ph->start);
	wr->t0 = bench_now_ns();
	while (t && !atomic_load_explicit(&wr->ph->stop_writer, memory_order_relaxed)) {
		const uint64_t *keys = g_w.keys + g_w.n + off;
		size_t cnt = g_w.extra - off < LOAD_BATCH ? g_w.extra - off : LOAD_BATCH;
		uint64_t gen = ph->gen ^ round;

		for (size_t j = 0; j < cnt; j++)
			make_val(keys[j], gen, vals + j * PEER_VAL);
		if (p->ingest) {
			for (size_t j = 0; j < cnt && !wr->err; j++)
				if (p->ingest(t, keys[j], vals + j * PEER_VAL) < 0)
					wr->err = 1;
		} else if (p->write_batch(t, keys, vals, cnt) < 0) {
			wr->err = 1;
		}
		if (wr->err)
			break;
		wr->written += cnt;
		off += cnt;
		if (off == g_w.extra) {  /* every new key written: again, as updates */
			off = 0;
			round++;
		}
	}
	wr->t1 = bench_now_ns();
	if (t && p->flush && !wr->err) {
		if (p->flush(ph->db) < 0)
			wr->err = 1;
		wr->flush_ns = bench_now_ns() - wr->t1;
	}
	if (t)
		p->thread_close(t);
	free(vals);
	return NULL;
}

/*
 * Run one timed phase on threads threads (plus the writer when with_writer)
 * and record its result.  Returns the result (NULL for a warm-up).
 */
static struct result *run_phase(unsigned peer, void *db, enum op_kind kind, const char *op,
				const char *attrs, const uint64_t *probes, unsigned write_pct,
				unsigned threads, double seconds, bool with_writer, bool warmup)
{
	const struct peer *p = all_peers[peer];
	struct phase ph = {
		.p = p, .db = db, .kind = kind, .probes = probes, .write_pct = write_pct,
		.threads = threads, .run_ns = (uint64_t)(seconds * 1e9),
		.sample_every = kind == OPK_PUT ? 1 : SAMPLE_EVERY,
	};
	struct worker *w = xcalloc(threads, sizeof(*w));
	bench_samples *s = xcalloc(threads, sizeof(*s));
	unsigned total = threads + (with_writer ? 1 : 0);
	struct writer wr = { .ph = &ph, .cpu = cpu_for(threads, total) };
	struct machine_load m0, m1;
	uint64_t ops = 0, bad = 0, t0 = UINT64_MAX, t1 = 0;
	int err = 0;
	struct result *r = NULL;

	/* The values a phase writes: the same for every engine. */
	ph.gen = mix64(case_seed(g_opt.seed, op) ^ (uint64_t)write_pct << 32 ^ threads);
	atomic_init(&ph.stop_writer, false);
	pthread_barrier_init(&ph.start, NULL, total);
	load_read(&m0);
	if (with_writer && pthread_create(&wr.tid, NULL, writer_main, &wr) != 0) {
		perror("pthread_create");
		exit(1);
	}
	for (unsigned i = 0; i < threads; i++) {
		w[i].ph = &ph;
		w[i].id = i;
		w[i].cpu = cpu_for(i, total);
		bench_samples_init(&w[i].lat, g_opt.seed ^ (i + 1));
		if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0) {
			perror("pthread_create");
			exit(1);
		}
	}
	for (unsigned i = 0; i < threads; i++) {
		pthread_join(w[i].tid, NULL);
		ops += w[i].ops;
		bad += w[i].bad;
		err |= w[i].err;
		t0 = w[i].t0 < t0 ? w[i].t0 : t0;
		t1 = w[i].t1 > t1 ? w[i].t1 : t1;
		s[i] = w[i].lat;
	}
	if (with_writer) {
		atomic_store_explicit(&ph.stop_writer, true, memory_order_relaxed);
		pthread_join(wr.tid, NULL);
		err |= wr.err;
	}
	load_read(&m1);
	pthread_barrier_destroy(&ph.start);

	if (err)
		fail("%s: %s %s threads=%u: the engine returned an error", p->name, op, attrs,
		     threads);
	if (bad)
		fail("%s: %s %s threads=%u: %" PRIu64 " wrong or missing results in %" PRIu64
		     " ops", p->name, op, attrs, threads, bad, ops);
	if (warmup) {
		for (unsigned i = 0; i < threads; i++)
			free(s[i].v);
	} else {
		r = result_new(peer, op, attrs, threads);
		r->ops_per_s = t1 > t0 ? (double)ops * 1e9 / (double)(t1 - t0) : 0;
		r->others = load_others(&m0, &m1);
		r->lat = bench_lat_merge(s, threads);
		r->has_lat = true;
		if (with_writer) {
			double rate = wr.t1 > wr.t0 ? (double)wr.written * 1e9 / (double)(wr.t1 - wr.t0)
						    : 0;

			snprintf(r->extra, sizeof(r->extra), "writer=%s writer_keys_per_s=%.0f",
				 p->ingest ? "ingest" : "batch1000", rate);
			snprintf(r->note, sizeof(r->note), "writer (%s) %.3fM keys/s%s",
				 p->ingest ? "omen_ingest" : "batches of 1000", rate / 1e6,
				 p->ingest ? "" : " acknowledged");
			if (p->flush) {
				size_t l = strlen(r->note);

				snprintf(r->note + l, sizeof(r->note) - l, ", queued; flush after %.2f s",
					 (double)wr.flush_ns / 1e9);
			}
		}
		if (kind == OPK_SCAN)
			snprintf(r->note, sizeof(r->note), "%.2fM records/s",
				 r->ops_per_s * SCAN_LEN / 1e6);
		if (err || bad) {
			size_t l = strlen(r->extra);

			snprintf(r->extra + l, sizeof(r->extra) - l, "%sfailed=1", l ? " " : "");
		}
		table_row(r);
	}
	free(s);
	free(w);
	return r;
}

/* ------------------------------------------------------------- loading */

/* The n keys in batches of LOAD_BATCH on the calling thread, then
 * load_done.  Latency per batch. */
static void phase_load(unsigned peer, void *db)
{
	const struct peer *p = all_peers[peer];
	void *t = p->thread_open(db);
	uint8_t *vals = xmalloc(LOAD_BATCH * PEER_VAL);
	bench_samples s;
	struct result *r;
	struct machine_load m0, m1;
	uint64_t t0, t1, done_ns = 0;
	bool err = t == NULL;

	bench_samples_init(&s, g_opt.seed);
	load_read(&m0);
	t0 = bench_now_ns();
	for (size_t off = 0; off < g_w.n && !err; off += LOAD_BATCH) {
		size_t cnt = g_w.n - off < LOAD_BATCH ? g_w.n - off : LOAD_BATCH;
		uint64_t a;

		for (size_t j = 0; j < cnt; j++)
			make_val(g_w.keys[off + j], 0, vals + j * PEER_VAL);
		a = bench_now_ns();
		err = p->write_batch(t, g_w.keys + off, vals, cnt) < 0;
		bench_samples_add(&s, bench_now_ns() - a);
	}
	if (t)
		p->thread_close(t);
	if (!err && p->load_done) {
		uint64_t a = bench_now_ns();

		err = p->load_done(db) < 0;
		done_ns = bench_now_ns() - a;
	}
	t1 = bench_now_ns();
	load_read(&m1);
	free(vals);
	if (err)
		fail("%s: load: the engine returned an error", p->name);
	r = result_new(peer, "load", "", 1);
	r->ops_per_s = (double)g_w.n * 1e9 / (double)(t1 - t0);
	r->others = load_others(&m0, &m1);
	r->lat = bench_lat_merge(&s, 1);
	r->has_lat = true;
	snprintf(r->extra, sizeof(r->extra), "batch=%d lat_per=batch%s", LOAD_BATCH,
		 err ? " failed=1" : "");
	snprintf(r->note, sizeof(r->note), "%.2f s; latency per batch of %d",
		 (double)(t1 - t0) / 1e9, LOAD_BATCH);
	if (p->load_done) {
		size_t l = strlen(r->note);

		snprintf(r->note + l, sizeof(r->note) - l, "; load_done (sort) %.2f s",
			 (double)done_ns / 1e9);
	}
	table_row(r);
}

struct ingester {
	const struct peer *p;
	void *db;
	unsigned id;
	int cpu;
	pthread_t tid;
	pthread_barrier_t *start;
	int err;
	bench_samples lat;
};

/* Chunks id, id + INGEST_THREADS, ... of the load order, one ingest per
 * key; one call in SAMPLE_EVERY timed. */
static void *ingester_main(void *arg)
{
	struct ingester *g = arg;
	uint64_t k = 0;
	void *t;

	pin_self(g->cpu);
	t = g->p->thread_open(g->db);
	if (t == NULL)
		g->err = 1;
	pthread_barrier_wait(g->start);
	for (size_t c = g->id * LOAD_BATCH; t && c < g_w.n && !g->err;
	     c += INGEST_THREADS * LOAD_BATCH) {
		size_t end = c + LOAD_BATCH < g_w.n ? c + LOAD_BATCH : g_w.n;

		for (size_t j = c; j < end; j++, k++) {
			uint8_t v[PEER_VAL];
			uint64_t key = g_w.keys[j], a = 0;
			bool timed = k % SAMPLE_EVERY == SAMPLE_EVERY - 1;

			make_val(key, 0, v);
			if (timed)
				a = bench_now_ns();
			if (g->p->ingest(t, key, v) < 0) {
				g->err = 1;
				break;
			}
			if (timed)
				bench_samples_add(&g->lat, bench_now_ns() - a);
		}
	}
	if (t)
		g->p->thread_close(t);
	return NULL;
}

/*
 * OmenDB's second load: a fresh database in its own directory, the n keys
 * through ingest from INGEST_THREADS threads, then flush (timed up to the
 * flush's return), then close (timed apart) and remove.
 */
static void phase_load_ingest(unsigned peer, const char *dir)
{
	const struct peer *p = all_peers[peer];
	struct peer_config cfg = { .dir = dir, .n = g_w.n, .sync = false };
	struct ingester g[INGEST_THREADS];
	bench_samples s[INGEST_THREADS];
	pthread_barrier_t start;
	struct result *r;
	struct machine_load m0, m1;
	uint64_t t0, t_queued, t1, t2;
	char desc[512] = "";
	void *db;
	int err = 0;

	if (p->open(&cfg, &db) != 0) {
		fail("%s: load_ingest: open failed", p->name);
		return;
	}
	pthread_barrier_init(&start, NULL, INGEST_THREADS + 1);
	for (unsigned i = 0; i < INGEST_THREADS; i++) {
		g[i] = (struct ingester){ .p = p, .db = db, .id = i,
					  .cpu = cpu_for(i, INGEST_THREADS), .start = &start };
		bench_samples_init(&g[i].lat, g_opt.seed ^ (i + 7));
		if (pthread_create(&g[i].tid, NULL, ingester_main, &g[i]) != 0) {
			perror("pthread_create");
			exit(1);
		}
	}
	pthread_barrier_wait(&start);
	load_read(&m0);
	t0 = bench_now_ns();
	for (unsigned i = 0; i < INGEST_THREADS; i++) {
		pthread_join(g[i].tid, NULL);
		err |= g[i].err;
		s[i] = g[i].lat;
	}
	t_queued = bench_now_ns();
	if (!err && p->flush(db) < 0)
		err = 1;
	t1 = bench_now_ns();
	load_read(&m1);
	pthread_barrier_destroy(&start);
	if (p->describe)
		p->describe(db, desc, sizeof(desc));
	if (p->close(db) != 0)
		err = 1;
	t2 = bench_now_ns();
	if (err)
		fail("%s: load_ingest: the engine returned an error", p->name);

	/* Compared with the peers' batched load. */
	r = result_new(peer, "load_ingest", "", INGEST_THREADS);
	make_match(r->match, sizeof(r->match), "load", "", 1);
	r->ops_per_s = (double)g_w.n * 1e9 / (double)(t1 - t0);
	r->others = load_others(&m0, &m1);
	r->lat = bench_lat_merge(s, INGEST_THREADS);
	r->has_lat = true;
	snprintf(r->extra, sizeof(r->extra),
		 "lat_per=ingest_call queued_s=%.3f flush_s=%.3f close_s=%.3f%s",
		 (double)(t_queued - t0) / 1e9, (double)(t1 - t_queued) / 1e9,
		 (double)(t2 - t1) / 1e9, err ? " failed=1" : "");
	snprintf(r->note, sizeof(r->note), "%.2f s: queued in %.2f s + flush %.2f s (close %.2f s)",
		 (double)(t1 - t0) / 1e9, (double)(t_queued - t0) / 1e9,
		 (double)(t1 - t_queued) / 1e9, (double)(t2 - t1) / 1e9);
	table_row(r);
	if (*desc)
		printf("  %-30s     %s\n", "  after load_ingest:", desc);
	if (!g_opt.keep)
		rm_tree(dir);
}

/*
 * Wait until the engine's background work has stopped: this process's CPU
 * use over a SETTLE_WINDOW_S window below SETTLE_CPU (of one core), at most
 * SETTLE_MAX_S.  After a load and reopen, RocksDB (the peer, and the one
 * inside OmenDB) flushes and compacts for a while; on a 2-core machine that
 * would land on whichever read phases come first and make them
 * unrepeatable.  Generic on purpose: OmenDB's background work is not
 * visible through its public API, but its CPU time is.  Returns seconds.
 */
#define SETTLE_WINDOW_S 0.25
#define SETTLE_CPU      0.03
#define SETTLE_MAX_S    300.0

static double process_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double settle(void)
{
	uint64_t t0 = bench_now_ns();

	for (;;) {
		double c0 = process_cpu_s(), busy;
		struct timespec d = { 0, (long)(SETTLE_WINDOW_S * 1e9) };

		while (nanosleep(&d, &d) != 0 && errno == EINTR)
			;
		busy = (process_cpu_s() - c0) / SETTLE_WINDOW_S;
		if (busy < SETTLE_CPU || (double)(bench_now_ns() - t0) / 1e9 > SETTLE_MAX_S)
			break;
	}
	return (double)(bench_now_ns() - t0) / 1e9;
}

/* close, then open again (sync as asked); the open is the figure. */
static void *phase_reopen(unsigned peer, void *db, const char *dir, bool sync, bool report)
{
	const struct peer *p = all_peers[peer];
	struct peer_config cfg = { .dir = dir, .n = g_w.n, .sync = sync };
	uint64_t t0 = bench_now_ns(), t1, t2;
	void *out = NULL;

	if (p->close(db) != 0)
		fail("%s: close failed", p->name);
	t1 = bench_now_ns();
	if (p->open(&cfg, &out) != 0) {
		fail("%s: reopen failed", p->name);
		return NULL;
	}
	t2 = bench_now_ns();
	if (report) {
		struct result *r = result_new(peer, "reopen", "", 1);
		/* The first get, at once: a loaded key, through a fresh thread
		 * context (an application's first read after a restart). */
		void *t = p->thread_open(out);
		uint8_t val[PEER_VAL];
		if (!t || p->get(t, g_w.keys[0], val) != 1)
			fail("%s: the first get after reopening failed", p->name);
		uint64_t t3 = bench_now_ns();
		p->thread_close(t);
		double first_ms = (double)(t3 - t1) / 1e6;
		double ready_s = p->wait_ready ? p->wait_ready(out) : (double)(t2 - t1) / 1e9;
		if (ready_s < 0)
			fail("%s: waiting for the rebuild failed", p->name);
		double settle_s = settle();

		r->seconds = (double)(t2 - t1) / 1e9;
		snprintf(r->extra, sizeof(r->extra),
			 "close_s=%.3f first_get_ms=%.2f ready_s=%.3f rebuild_keys_per_s=%.0f "
			 "settle_s=%.2f",
			 (double)(t1 - t0) / 1e9, first_ms, ready_s,
			 ready_s > 0 ? (double)g_w.n / ready_s : 0.0, settle_s);
		snprintf(r->note, sizeof(r->note),
			 "open after close; first get answered %.2f ms after open was called; "
			 "reads at full speed after %.3f s (%.2fM keys/s); close took %.3f s; "
			 "background work then settled in %.2f s",
			 first_ms, ready_s, ready_s > 0 ? (double)g_w.n / ready_s / 1e6 : 0.0,
			 (double)(t1 - t0) / 1e9, settle_s);
		table_row(r);
	}
	return out;
}

static void describe(unsigned peer, void *db, const char *when)
{
	char desc[512] = "";

	if (all_peers[peer]->describe) {
		all_peers[peer]->describe(db, desc, sizeof(desc));
		printf("  %-30s     %s\n", when, desc);
	}
}

/* -------------------------------------------------------------- engine */

static void run_engine(unsigned peer)
{
	const struct peer *p = all_peers[peer];
	struct peer_config cfg = { .n = g_w.n, .sync = false };
	char dir[4200], idir[4200];
	double sec = g_opt.seconds;
	uint64_t t0 = bench_now_ns();
	struct stat st;
	void *db;

	snprintf(dir, sizeof(dir), "%s/%s", g_base, p->name);
	snprintf(idir, sizeof(idir), "%s/%s-ingest", g_base, p->name);
	cfg.dir = dir;
	table_header(p);
	if (lstat(dir, &st) == 0 || lstat(idir, &st) == 0) {
		fail("%s: %s (or %s) already exists: not reusing it", p->name, dir, idir);
		return;
	}
	publish_dirs(dir, idir);

	if (p->caps & PEER_CAP_INGEST)
		phase_load_ingest(peer, idir);

	if (p->open(&cfg, &db) != 0) {
		fail("%s: open %s failed", p->name, dir);
		return;
	}
	phase_load(peer, db);
	describe(peer, db, "  after load:");
	if (p->caps & PEER_CAP_PERSISTENT) {
		db = phase_reopen(peer, db, dir, false, true);
		if (db == NULL)
			goto out;
	}

	run_phase(peer, db, OPK_GET, "get", "pick=uniform", g_w.probe_uniform, 0, 1, sec / 2,
		  false, true);
	for (unsigned t = 1; t <= 2; t++)
		run_phase(peer, db, OPK_GET, "get", "pick=uniform", g_w.probe_uniform, 0, t, sec,
			  false, false);
	for (unsigned t = 1; t <= 2; t++)
		run_phase(peer, db, OPK_GET, "get", "pick=zipf", g_w.probe_zipf, 0, t, sec, false,
			  false);
	run_phase(peer, db, OPK_SCAN, "scan", "len=100", g_w.probe_uniform, 0, 1, sec, false,
		  false);
	for (unsigned t = 1; t <= 2; t++)
		run_phase(peer, db, OPK_MIX, "mix", "read_pct=95", g_w.probe_uniform, 5, t, sec,
			  false, false);
	for (unsigned t = 1; t <= 2; t++)
		run_phase(peer, db, OPK_MIX, "mix", "read_pct=50", g_w.probe_uniform, 50, t, sec,
			  false, false);
	if (p->caps & PEER_CAP_INSERT)
		run_phase(peer, db, OPK_GET, "get_under_ingest", "pick=uniform", g_w.probe_uniform,
			  0, 1, sec, true, false);
	describe(peer, db, "  after the timed phases:");

	if ((p->caps & PEER_CAP_SYNC) && (peer == OMENDB || peer == ROCKSDB)) {
		db = phase_reopen(peer, db, dir, true, false);
		if (db == NULL)
			goto out;
		run_phase(peer, db, OPK_PUT, "put_sync", "", g_w.probe_uniform, 0,
			  g_opt.sync_threads, sec, false, false);
	}
	if (p->close(db) != 0)
		fail("%s: close failed", p->name);
out:
	if (!g_opt.keep)
		rm_tree(dir);
	printf("  (%s: %.1f s in all)\n", p->name, (double)(bench_now_ns() - t0) / 1e9);
}

/* ------------------------------------------------------------- workload */

static void make_workload(void)
{
	size_t n = g_opt.n, extra = n < 100000 ? 100000 : n > 4000000 ? 4000000 : n;
	uint64_t *perm;
	ds_rng rng;
	ds_zipf z;
	uint64_t t0 = bench_now_ns();

	g_w.n = n;
	g_w.extra = extra;
	g_w.keys = xmalloc((n + extra) * sizeof(uint64_t));
	ds_generate(dists[g_opt.dist].ds, g_opt.seed, g_w.keys, n + extra);

	g_w.probe_uniform = xmalloc(NPROBES * sizeof(uint64_t));
	g_w.probe_zipf = xmalloc(NPROBES * sizeof(uint64_t));
	ds_rng_seed(&rng, g_opt.seed ^ SALT_UNIFORM);
	for (size_t i = 0; i < NPROBES; i++)
		g_w.probe_uniform[i] = g_w.keys[ds_rng_next(&rng) % n];

	/* zipf rank r -> the r-th key of a random permutation of the loaded keys */
	perm = xmalloc(n * sizeof(uint64_t));
	memcpy(perm, g_w.keys, n * sizeof(uint64_t));
	ds_shuffle(perm, n, g_opt.seed ^ SALT_PERM);
	ds_rng_seed(&rng, g_opt.seed ^ SALT_ZIPF);
	ds_zipf_init(&z, n, ZIPF_THETA);
	for (size_t i = 0; i < NPROBES; i++)
		g_w.probe_zipf[i] = perm[ds_zipf_next(&z, &rng)];
	free(perm);
	printf("# workload: %zu keys (%s) + %zu new keys for get_under_ingest, %u probes per "
	       "sequence, made in %.2f s\n", n, dists[g_opt.dist].name, extra, NPROBES,
	       (double)(bench_now_ns() - t0) / 1e9);
}

/* ---------------------------------------------------- machine and build */

static void print_machine(void)
{
	bench_machine m;

	bench_machine_get(&m);
	printf("# machine: arch=%s cpu=\"%s\" nproc=%ld loadavg_1min=%.2f\n", m.arch, m.cpu, m.nproc,
	       bench_loadavg_1min());
	printf("# build: compiler=\"%s\" optimized=%s", __VERSION__, m.optimized);
#ifdef OMEN_BUILD_CFLAGS
	printf(" cflags=\"%s\"", OMEN_BUILD_CFLAGS);
#endif
	printf("\n");
}

/* -------------------------------------------------------------- options */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: bench_engine [options]\n"
		"  --n N              keys to load (suffix k/m; default 1m)\n"
		"  --dist D           random (uniform 64-bit), seq (ascending timestamps) or\n"
		"                     device (device << 44 | timestamp); default random\n"
		"  --seconds S        length of each timed phase (default %.1f)\n"
		"  --peers LIST       engines, comma-separated, run in this order (default\n"
		"                     omendb,rocksdb,lmdb,sqlite,array; SQLite loads ~30K keys/s)\n"
		"  --dir DIR          where each engine gets its own directory (default a fresh\n"
		"                     mkdtemp under $TMPDIR or /tmp, removed at exit)\n"
		"  --seed S           key set and probe seed (default %u)\n"
		"  --sync-threads T   threads of put_sync (default %d)\n"
		"  --keep             keep the engines' directories\n"
		"  --no-pin           do not pin the benchmark's threads to CPUs\n"
		"  --smoke            --n 20k --seconds 0.2 unless given otherwise\n"
		"SIGINT, SIGTERM, SIGHUP and SIGPIPE still remove the data directories.\n",
		DEFAULT_SECONDS, DEFAULT_SEED, DEFAULT_SYNC_THREADS);
}

/* Unsigned count with an optional k/m (x1000) suffix; 0 on bad input. */

static bool parse_peers(char *list, struct options *o)
{
	char *save = NULL;

	o->peers = 0;
	o->npeers = 0;
	for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		const char *name = strcmp(tok, "array") == 0 ? "sorted_array" : tok;
		unsigned i;

		for (i = 0; i < NPEERS; i++)
			if (strcmp(name, all_peers[i]->name) == 0)
				break;
		if (i == NPEERS) {
			fprintf(stderr, "bench_engine: unknown engine: %s\n", tok);
			return false;
		}
		if (o->peers & (1u << i))
			continue;
		o->peers |= 1u << i;
		o->order[o->npeers++] = i;
	}
	return o->npeers != 0;
}

/* Accepts "--opt value" and "--opt=value". */
static int parse_args(int argc, char **argv, struct options *o)
{
	bool n_set = false, seconds_set = false;

	memset(o, 0, sizeof(*o));
	o->n = DEFAULT_N;
	o->seconds = DEFAULT_SECONDS;
	o->peers = (1u << NPEERS) - 1;
	for (unsigned i = 0; i < NPEERS; i++)
		o->order[i] = i;
	o->npeers = NPEERS;
	o->seed = DEFAULT_SEED;
	o->sync_threads = DEFAULT_SYNC_THREADS;

	for (int i = 1; i < argc; i++) {
		char *arg = argv[i], *val = NULL, *eq;
		bool ok = true;

		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			usage(stdout);
			exit(0);
		}
		if (strcmp(arg, "--keep") == 0) {
			o->keep = true;
			continue;
		}
		if (strcmp(arg, "--no-pin") == 0) {
			o->no_pin = true;
			continue;
		}
		if (strcmp(arg, "--smoke") == 0) {
			if (!n_set)
				o->n = 20000;
			if (!seconds_set)
				o->seconds = 0.2;
			continue;
		}
		eq = strchr(arg, '=');
		if (eq) {
			*eq = '\0';
			val = eq + 1;
		} else if (i + 1 < argc) {
			val = argv[++i];
		}
		if (val == NULL || strncmp(arg, "--", 2) != 0) {
			fprintf(stderr, "bench_engine: bad argument: %s\n", arg);
			usage(stderr);
			return -1;
		}
		if (strcmp(arg, "--n") == 0) {
			o->n = bench_parse_count(val);
			ok = o->n >= 1000;   /* a few batches, zipf over enough keys */
			n_set = true;
		} else if (strcmp(arg, "--dist") == 0) {
			unsigned d;

			for (d = 0; d < NDISTS && strcmp(val, dists[d].name) != 0; d++)
				;
			o->dist = d;
			ok = d < NDISTS;
		} else if (strcmp(arg, "--seconds") == 0) {
			ok = parse_seconds(val, &o->seconds) && o->seconds <= 3600;
			seconds_set = true;
		} else if (strcmp(arg, "--peers") == 0) {
			ok = parse_peers(val, o);
		} else if (strcmp(arg, "--dir") == 0) {
			o->dir = val;
			ok = *val != '\0';
		} else if (strcmp(arg, "--seed") == 0) {
			char *end;

			o->seed = strtoull(val, &end, 0);
			ok = *val && *end == '\0';
		} else if (strcmp(arg, "--sync-threads") == 0) {
			size_t t;

			ok = parse_size(val, &t) && t <= MAX_THREADS;
			o->sync_threads = (unsigned)t;
		} else {
			ok = false;
		}
		if (!ok) {
			fprintf(stderr, "bench_engine: bad value for %s: %s\n", arg, val);
			usage(stderr);
			return -1;
		}
	}
	return 0;
}

static int make_base_dir(void)
{
	if (g_opt.dir) {
		struct stat st;

		if (strlen(g_opt.dir) >= sizeof(g_base) - 64) {
			fprintf(stderr, "bench_engine: --dir too long\n");
			return -1;
		}
		snprintf(g_base, sizeof(g_base), "%s", g_opt.dir);
		if (lstat(g_base, &st) != 0) {
			if (peer_mkdir("bench_engine", g_base) != 0)
				return -1;
			g_base_created = true;
		} else if (!S_ISDIR(st.st_mode)) {
			fprintf(stderr, "bench_engine: %s is not a directory\n", g_base);
			return -1;
		}
	} else {
		const char *tmp = getenv("TMPDIR");

		snprintf(g_base, sizeof(g_base), "%s/omen-bench-engine.XXXXXX",
			 tmp && *tmp && strlen(tmp) < sizeof(g_base) - 128 ? tmp : "/tmp");
		if (mkdtemp(g_base) == NULL) {
			fprintf(stderr, "bench_engine: mkdtemp %s: %s\n", g_base, strerror(errno));
			return -1;
		}
		g_base_created = true;
	}
	atexit(cleanup_base);
	cleanup_on_signals();
	return 0;
}

int main(int argc, char **argv)
{
	struct rusage ru;
	uint64_t t0 = bench_now_ns();

	if (parse_args(argc, argv, &g_opt) != 0)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);

	printf("# bench_engine: OmenDB against RocksDB, LMDB, SQLite and a sorted array, "
	       "one process, same workload\n");
	print_machine();
	g_timer_ns = bench_timer_overhead_ns();
	pick_cpus();
	printf("# n=%zu dist=%s seconds=%.2f seed=%" PRIu64 " sync_threads=%u batch=%d "
	       "scan_len=%d latency: 1 op in %d timed (put_sync: every op), timer_overhead_ns=%"
	       PRIu64 " included\n", g_opt.n, dists[g_opt.dist].name, g_opt.seconds, g_opt.seed,
	       g_opt.sync_threads, LOAD_BATCH, SCAN_LEN, SAMPLE_EVERY, g_timer_ns);
	if (g_opt.no_pin || g_ncpus == 0)
		printf("# threads not pinned%s\n", g_opt.no_pin ? " (--no-pin)" : "");
	else
		printf("# pinning: thread i of a phase on usable CPU i (cpu%d, ...) when the "
		       "phase's threads fit the %u usable CPUs\n", g_cpus[0], g_ncpus);
	if (make_base_dir() != 0)
		return 1;
	printf("# data directories under %s%s\n", g_base,
	       g_opt.keep ? " (kept)" : " (removed after each engine)");
	make_workload();

	for (unsigned i = 0; i < g_opt.npeers; i++)
		run_engine(g_opt.order[i]);

	print_comparison();
	print_targets();

	getrusage(RUSAGE_SELF, &ru);
	printf("\n# machine-readable\n");
	for (size_t i = 0; i < g_nres; i++)
		print_machine_line(&g_res[i]);
	printf("bench=engine op=summary dist=%s n=%zu failures=%u max_rss_mb=%ld elapsed_s=%.1f "
	       "timer_ns=%" PRIu64 " loadavg_1min=%.2f\n", dists[g_opt.dist].name, g_w.n,
	       g_failures, ru.ru_maxrss / 1024, (double)(bench_now_ns() - t0) / 1e9, g_timer_ns,
	       bench_loadavg_1min());
	free(g_w.keys);
	free(g_w.probe_uniform);
	free(g_w.probe_zipf);
	if (g_failures) {
		fprintf(stderr, "bench_engine: %u failure(s)\n", g_failures);
		return 1;
	}
	return 0;
}
