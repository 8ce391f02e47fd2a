/*
 * tools/demo.c — `omendb demo`: what the engine is for, in half a minute.
 *
 * The demo simulates an IoT fleet and plays the part of its telemetry
 * agent, through the public API only (<omendb.h>):
 *
 *  1. ingest: --threads producer threads (gateways; 2 by default) each own
 *     a contiguous slice of the --devices devices and walk simulated time
 *     forward one round (one second) at a time, queueing each device's
 *     reading with omen_ingest.  Within a round a gateway emits its devices
 *     in the order of their reporting phase, so every thread's stream is
 *     roughly time-ordered, as a real gateway's would be, and every
 *     device's keys ascend.  The main thread draws the live rate
 *     (cli_progress: on stderr, only when it is a terminal) and calls
 *     omen_flush once the producers are done: the ingest time runs until
 *     every reading is acknowledged, not merely queued.
 *  2. queries, the two a telemetry user asks first: the latest reading of
 *     a device (a short window of its key range ending "now", widened
 *     when empty: the iterator goes forward only, so the cost is the
 *     window's few readings, not the device's history), for a few devices
 *     shown and then for the fleet, checked against the generator; and
 *     count / min / max / mean of one device's readings over a time window
 *     (one iterator over [d << 44 | t0, d << 44 | t1]), for one device shown
 *     and then for many, checked the same way.  Each query is timed alone.
 *  3. recovery: omen_close, omen_open (which returns once the files are
 *     open; the shards' indexes rebuild in the background), a latest
 *     reading asked at once (answered from storage: the time to the first
 *     answer), then the key count from omen_get_stats (which waits for the
 *     rebuilds: the time until everything is in memory) and one device's
 *     count by a scan must equal what was ingested, and a latest reading
 *     must still be right.
 *  4. a summary table: ingest rate, query latencies, memory (index and
 *     resident values), disk, recovery time.
 *
 * Keys: device << 44 | timestamp in ms (44 bits of milliseconds reach the
 * year 2527; 20 bits of device number allow 1,048,576 devices).  Device d's
 * reading i is at EPOCH + phase(d) + i * 1000 + jitter(d, i) ms, phase in
 * [0, 1000), jitter in [-50, 50]: one reading a second, never out of
 * order.  Everything the generator makes is a pure function of (d, i), so
 * the queries are checked without keeping what was written.
 *
 * Values: 8 bytes (DEMO_VALUE_LEN):
 *   bytes 0..3  the temperature in degrees Celsius, an IEEE 754 binary32
 *               float in host byte order
 *   byte  4     status: 0 ok, 1 hot (above DEMO_HOT_C), 2 battery low
 *   bytes 5..7  zero (padding: the record stays 8 bytes, aligned)
 *
 * Default size: 10,000 devices x 600 readings (ten minutes of fleet
 * time) = 6,000,000 readings.  On the 2-CPU test VM the whole demo takes
 * about 16 s (ingest ~13 s at ~0.45M readings/s, close 2 s, reopen 1 s).
 * This key shape ingests slower than uniform random keys (1.5M keys/s at
 * 6M) and slows as each device's history grows: 10,000 x 1,000 took 27 s
 * of ingest alone (~32 s in all), past the half minute a first run should
 * take.  Use --readings to go bigger.
 *
 * Threads: the producers share only the database handle (any thread), the
 * stop flag and their own progress counter (atomics, below); everything
 * else in struct demo_producer is the producer's until pthread_join.
 * All queries run on the main thread.
 *
 * Directory: without DIR, a new directory "$TMPDIR/omendb-demo-XXXXXX"
 * (or under /tmp), removed at the end unless --keep.  An explicit DIR is
 * always kept, and the demo refuses one that already holds keys (it never
 * writes into a user's data); a non-empty directory that is not an OmenDB
 * database fails in omen_open (OMEN_ECORRUPT) and is reported as is.
 *
 * SIGINT and SIGTERM stop the ingest cleanly: the database is closed and
 * the temporary directory removed, then the signal is raised again with
 * its default action, so the shell sees the usual "killed by SIGINT".
 */

/* mkdtemp, nftw, gmtime_r */
#define _GNU_SOURCE

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <omendb.h>

#include "tools/cli.h"

/* ===================================================================== */
/* The simulated fleet                                                    */

#define DEMO_DEVICE_SHIFT 44
#define DEMO_TS_MASK ((UINT64_C(1) << DEMO_DEVICE_SHIFT) - 1)
#define DEMO_MAX_DEVICES (UINT64_C(1) << (64 - DEMO_DEVICE_SHIFT))
/* 1e9 readings a device is 31 years of fleet time: far inside 44 bits. */
#define DEMO_MAX_READINGS UINT64_C(1000000000)
#define DEMO_MAX_THREADS 64u

#define DEMO_DEFAULT_DEVICES UINT64_C(10000)
#define DEMO_DEFAULT_READINGS UINT64_C(600)
#define DEMO_DEFAULT_THREADS 2u

#define DEMO_EPOCH_MS UINT64_C(1700000000000) /* 2023-11-14 22:13:20 UTC */
#define DEMO_PERIOD_MS UINT64_C(1000)
#define DEMO_JITTER_MS UINT64_C(50)

#define DEMO_VALUE_LEN 8
#define DEMO_STATUS_OK 0
#define DEMO_STATUS_HOT 1
#define DEMO_STATUS_BATTERY 2
#define DEMO_HOT_C 31.0

/* Query counts: the fleet sweep of latest readings takes every device up
 * to this many (evenly spaced beyond); the window aggregates this many
 * devices, drawn at random. */
#define DEMO_SWEEP_MAX 100000u
#define DEMO_WINDOW_QUERIES 1000u
/* The first "latest" window: 10 s before now, then 16 times wider. */
#define DEMO_LATEST_WINDOW_MS UINT64_C(10000)

_Static_assert(sizeof(float) == 4, "the value layout needs a 4-byte float");

/* splitmix64's finaliser: the generator's only source of "randomness". */
static uint64_t demo_mix64(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

/* When in each second device d reports, in ms. */
static uint64_t demo_phase(uint64_t d)
{
	return demo_mix64(d ^ UINT64_C(0x70686173652d6964)) % DEMO_PERIOD_MS;
}

/* The timestamp of device d's reading i (ms since 1970). */
static uint64_t demo_ts(uint64_t d, uint64_t i)
{
	uint64_t j = demo_mix64(d * UINT64_C(0x100000001b3) ^ i) % (2 * DEMO_JITTER_MS + 1);

	return DEMO_EPOCH_MS + demo_phase(d) + i * DEMO_PERIOD_MS + j - DEMO_JITTER_MS;
}

static uint64_t demo_key(uint64_t d, uint64_t ts)
{
	return d << DEMO_DEVICE_SHIFT | (ts & DEMO_TS_MASK);
}

/*
 * Device d's reading i, taken at ts: a device-specific base (15..30 °C),
 * an hourly triangle wave of ±3 °C shifted per device, and ±0.5 °C of
 * noise; hot above DEMO_HOT_C, and one reading in 5000 reports a low
 * battery.  Integer and double arithmetic only (no libm).
 */
static void demo_reading(uint64_t d, uint64_t i, uint64_t ts, float *celsius, uint8_t *status)
{
	const uint64_t hour = UINT64_C(3600000);
	uint64_t h = demo_mix64(d ^ UINT64_C(0x74656d7065726174));
	uint64_t n = demo_mix64(d * UINT64_C(0x9e3779b97f4a7c15) + i);
	double base = 15.0 + (double)(h % 1500) / 100.0;
	double pos = (double)((ts + (h >> 32)) % hour) / (double)hour; /* 0..1 */
	double tri = pos < 0.5 ? 4.0 * pos - 1.0 : 3.0 - 4.0 * pos;     /* -1..1 */
	double noise = (double)((int)(n % 101) - 50) / 100.0;
	double c = base + 3.0 * tri + noise;

	*celsius = (float)c;
	if ((n >> 32) % 5000 == 0)
		*status = DEMO_STATUS_BATTERY;
	else
		*status = c > DEMO_HOT_C ? DEMO_STATUS_HOT : DEMO_STATUS_OK;
}

static void demo_value_pack(uint8_t v[DEMO_VALUE_LEN], float celsius, uint8_t status)
{
	memset(v, 0, DEMO_VALUE_LEN);
	memcpy(v, &celsius, sizeof celsius);
	v[4] = status;
}

/* false when the value is not one of ours. */
static bool demo_value_unpack(const void *val, size_t len, float *celsius, uint8_t *status)
{
	if (len != DEMO_VALUE_LEN || !val)
		return false;
	memcpy(celsius, val, sizeof *celsius);
	*status = ((const uint8_t *)val)[4];
	return true;
}

static const char *demo_status_name(uint8_t s)
{
	switch (s) {
	case DEMO_STATUS_OK: return "ok";
	case DEMO_STATUS_HOT: return "hot";
	case DEMO_STATUS_BATTERY: return "battery low";
	default: return "?";
	}
}

/* ===================================================================== */
/* Formatting                                                             */

/* 10000000 -> "10,000,000" in buf[32]; returns buf. */
static const char *demo_fmt_count(char buf[32], uint64_t v)
{
	char tmp[32];
	int n = snprintf(tmp, sizeof tmp, "%" PRIu64, v);
	int o = 0;

	for (int i = 0; i < n; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = tmp[i];
	}
	buf[o] = '\0';
	return buf;
}

static const char *demo_fmt_bytes(char buf[32], uint64_t b)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	unsigned u = 0;

	while (v >= 1024.0 && u + 1 < sizeof unit / sizeof unit[0]) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, 32, "%" PRIu64 " B", b);
	else
		snprintf(buf, 32, "%.1f %s", v, unit[u]);
	return buf;
}

/* A rate per second: "1.35 M", "812.4 k", "95". */
static const char *demo_fmt_rate(char buf[32], double r)
{
	if (r >= 1e6)
		snprintf(buf, 32, "%.2f M", r / 1e6);
	else if (r >= 1e3)
		snprintf(buf, 32, "%.1f k", r / 1e3);
	else
		snprintf(buf, 32, "%.0f", r);
	return buf;
}

/* Seconds as microseconds: "8.4 µs", "120 µs". */
static const char *demo_fmt_us(char buf[32], double s)
{
	double us = s * 1e6;

	snprintf(buf, 32, us < 10.0 ? "%.1f µs" : "%.0f µs", us);
	return buf;
}

/* ms since 1970 -> "2023-11-14 22:13:20.123" (UTC) in buf[48]. */
static const char *demo_fmt_time(char buf[48], uint64_t ms)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;

	if (!gmtime_r(&s, &tm)) {
		snprintf(buf, 48, "%" PRIu64 " ms", ms);
		return buf;
	}
	snprintf(buf, 48, "%04d-%02d-%02d %02d:%02d:%02d.%03u", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (unsigned)(ms % 1000));
	return buf;
}

/* ===================================================================== */
/* Errors and signals                                                     */

/* Report a failed OmenDB call made on this thread; returns CLI_FAIL. */
static int demo_db_error(int rc)
{
	const char *m = omen_errmsg();

	if (*m)
		fprintf(stderr, "omendb demo: %s: %s\n", omen_strerror(rc), m);
	else
		fprintf(stderr, "omendb demo: %s\n", omen_strerror(rc));
	return CLI_FAIL;
}

/*
 * The signal that interrupted the demo, 0 if none.  Written by the signal
 * handler (a lock-free atomic is async-signal-safe), read by every thread;
 * relaxed: it orders nothing, it only asks the loops to stop.
 */
static atomic_int demo_signal;

static void demo_on_signal(int sig)
{
	atomic_store_explicit(&demo_signal, sig, memory_order_relaxed);
}

static bool demo_interrupted(void)
{
	return atomic_load_explicit(&demo_signal, memory_order_relaxed) != 0;
}

static struct sigaction demo_old_int, demo_old_term;

static void demo_signals_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = demo_on_signal;
	sigemptyset(&sa.sa_mask);
	atomic_store_explicit(&demo_signal, 0, memory_order_relaxed);
	/* A signal ignored on entry (nohup, a background job of a
	 * non-interactive shell) stays ignored. */
	sigaction(SIGINT, NULL, &demo_old_int);
	sigaction(SIGTERM, NULL, &demo_old_term);
	if (demo_old_int.sa_handler != SIG_IGN)
		sigaction(SIGINT, &sa, NULL);
	if (demo_old_term.sa_handler != SIG_IGN)
		sigaction(SIGTERM, &sa, NULL);
}

static void demo_signals_restore(void)
{
	sigaction(SIGINT, &demo_old_int, NULL);
	sigaction(SIGTERM, &demo_old_term, NULL);
}

/* ===================================================================== */
/* Options                                                                */

struct demo_opts {
	uint64_t devices;
	uint64_t readings;          /* per device */
	unsigned threads;           /* producer threads */
	bool keep;
	const char *dir;            /* NULL: a new temporary directory */
};

static void demo_usage(FILE *f)
{
	fprintf(f,
"Usage: omendb demo [OPTION]... [DIR]\n"
"Simulate an IoT fleet: ingest its sensor readings from producer threads,\n"
"ask the questions a telemetry user asks (latest reading of a device;\n"
"count, min, max and mean over a time window), close, reopen and verify,\n"
"then print a summary: ingest rate, query latencies, memory, disk, recovery.\n"
"\n"
"      --devices N    devices in the fleet (default %" PRIu64 ", at most %" PRIu64 ")\n"
"      --readings N   readings per device, one a second (default %" PRIu64 ")\n"
"      --threads N    producer threads (default %u, at most %u)\n"
"      --keep         keep the database directory\n"
"  -h, --help         show this help and exit\n"
"\n"
"Keys are device << 44 | timestamp in ms; each value is 8 bytes (a float\n"
"temperature and a status byte).  Without DIR the database goes in a new\n"
"directory under $TMPDIR (or /tmp), removed at the end unless --keep.  An\n"
"explicit DIR is kept; it must not exist, be empty, or be an OmenDB\n"
"database without keys.\n"
"\n"
"Exit status: 0 success, 1 a database error or failed check, 2 bad usage.\n",
		DEMO_DEFAULT_DEVICES, DEMO_MAX_DEVICES, DEMO_DEFAULT_READINGS,
		DEMO_DEFAULT_THREADS, DEMO_MAX_THREADS);
}

/* A decimal count in [min, max]; false (with a message) otherwise. */
static bool demo_parse_count(const char *opt, const char *s, uint64_t min, uint64_t max,
			     uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	if (*s < '0' || *s > '9')
		goto bad;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		goto bad;
	*out = v;
	return true;
bad:
	fprintf(stderr, "omendb demo: --%s: expected a number from %" PRIu64 " to %" PRIu64
		", got '%s'\n", opt, min, max, s);
	return false;
}

/* CLI_OK or CLI_USAGE to return at once (help, bad usage); -1 to go on. */
static int demo_parse(int argc, char **argv, struct demo_opts *o)
{
	enum { OPT_DEVICES = 256, OPT_READINGS, OPT_THREADS, OPT_KEEP };
	static const struct option longopts[] = {
		{ "devices", required_argument, NULL, OPT_DEVICES },
		{ "readings", required_argument, NULL, OPT_READINGS },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "keep", no_argument, NULL, OPT_KEEP },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v;
	int c;

	o->devices = DEMO_DEFAULT_DEVICES;
	o->readings = DEMO_DEFAULT_READINGS;
	o->threads = DEMO_DEFAULT_THREADS;
	o->keep = false;
	o->dir = NULL;

	/* glibc: optind = 0 restarts the scan from scratch, whatever getopt
	 * did before; our own messages instead of getopt's. */
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_DEVICES:
			if (!demo_parse_count("devices", optarg, 1, DEMO_MAX_DEVICES, &o->devices))
				goto usage;
			break;
		case OPT_READINGS:
			if (!demo_parse_count("readings", optarg, 1, DEMO_MAX_READINGS, &o->readings))
				goto usage;
			break;
		case OPT_THREADS:
			if (!demo_parse_count("threads", optarg, 1, DEMO_MAX_THREADS, &v))
				goto usage;
			o->threads = (unsigned)v;
			break;
		case OPT_KEEP:
			o->keep = true;
			break;
		case 'h':
			demo_usage(stdout);
			return CLI_OK;
		case ':':
			fprintf(stderr, "omendb demo: option '%s' needs an argument\n",
				argv[optind - 1]);
			goto usage;
		default:
			if (optopt)
				fprintf(stderr, "omendb demo: unknown option '-%c'\n", optopt);
			else
				fprintf(stderr, "omendb demo: unknown option '%s'\n",
					argv[optind - 1]);
			goto usage;
		}
	}
	if (optind < argc)
		o->dir = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "omendb demo: unexpected argument '%s'\n", argv[optind]);
		goto usage;
	}
	if (o->dir && !*o->dir) {
		fprintf(stderr, "omendb demo: DIR is empty\n");
		goto usage;
	}
	if (o->devices * o->readings / o->readings != o->devices) {
		fprintf(stderr, "omendb demo: --devices x --readings is too large\n");
		goto usage;
	}
	if (o->threads > o->devices)
		o->threads = (unsigned)o->devices;
	return -1;
usage:
	fprintf(stderr, "Try 'omendb demo --help'.\n");
	return CLI_USAGE;
}

/* ===================================================================== */
/* Ingest                                                                 */

struct demo_producer {
	omen_db *db;                /* shared handle: any thread */
	uint64_t readings;
	uint64_t *order;            /* this thread's devices in phase order */
	size_t n;
	atomic_bool *stop;          /* set by a failing producer: all stop */
	/* Readings queued so far: written by this producer only, read by the
	 * main thread for the live rate; relaxed, it publishes nothing. */
	_Atomic uint64_t queued;
	/* Producer only until pthread_join (which publishes them). */
	int rc;
	char msg[512];              /* omen_errmsg() of the failing call */
	pthread_t tid;
};

static int demo_cmp_phase(const void *a, const void *b)
{
	uint64_t pa = demo_phase(*(const uint64_t *)a), pb = demo_phase(*(const uint64_t *)b);

	if (pa != pb)
		return pa < pb ? -1 : 1;
	return *(const uint64_t *)a < *(const uint64_t *)b ? -1 : 1;
}

/* How often a producer publishes its count and looks at the stop flags. */
#define DEMO_CHECK_EVERY 1024u

static void *demo_producer_main(void *arg)
{
	struct demo_producer *p = arg;
	uint64_t count = 0;
	uint8_t v[DEMO_VALUE_LEN];

	for (uint64_t i = 0; i < p->readings; i++) {
		for (size_t k = 0; k < p->n; k++) {
			uint64_t d = p->order[k], ts = demo_ts(d, i);
			float c;
			uint8_t s;
			int rc;

			demo_reading(d, i, ts, &c, &s);
			demo_value_pack(v, c, s);
			rc = omen_ingest(p->db, demo_key(d, ts), v, sizeof v);
			if (rc != OMEN_OK) {
				p->rc = rc;
				snprintf(p->msg, sizeof p->msg, "%s", omen_errmsg());
				atomic_store_explicit(p->stop, true, memory_order_relaxed);
				goto out;
			}
			if (++count % DEMO_CHECK_EVERY == 0) {
				atomic_store_explicit(&p->queued, count, memory_order_relaxed);
				if (demo_interrupted() ||
				    atomic_load_explicit(p->stop, memory_order_relaxed))
					goto out;
			}
		}
	}
out:
	atomic_store_explicit(&p->queued, count, memory_order_relaxed);
	return NULL;
}

struct demo_ctx {
	const struct demo_opts *o;
	const char *dir;
	omen_db *db;
	uint64_t total;             /* readings ingested: devices x readings */
	uint64_t now_ms;            /* the fleet clock at the end: after every reading */
	/* For the summary. */
	double ingest_s, queued_s, flush_s;
	double latest_p50, latest_p99;
	size_t latest_n;
	double window_p50, window_p99;
	size_t window_n;
	uint64_t window_readings;   /* of the device shown */
	double close_s, open_s, first_s, rebuild_s;
	omen_stats st_ingest, st_reopen;
};

static int demo_ingest(struct demo_ctx *x)
{
	const struct demo_opts *o = x->o;
	unsigned nt = o->threads;
	struct demo_producer *p;
	uint64_t *order;
	atomic_bool stop;
	cli_progress bar;
	unsigned started = 0;
	double t0;
	int rc = CLI_OK, err;
	char b1[32], b2[32], b3[32], b4[32];

	p = calloc(nt, sizeof *p);
	order = malloc(o->devices * sizeof *order);
	if (!p || !order) {
		fprintf(stderr, "omendb demo: out of memory\n");
		rc = CLI_FAIL;
		goto out;
	}
	atomic_init(&stop, false);
	for (uint64_t d = 0; d < o->devices; d++)
		order[d] = d;

	printf("Ingest: %s device%s x %s reading%s = %s reading%s, from %u producer thread%s "
	       "through omen_ingest\n",
	       demo_fmt_count(b1, o->devices), o->devices == 1 ? "" : "s",
	       demo_fmt_count(b2, o->readings), o->readings == 1 ? "" : "s",
	       demo_fmt_count(b3, x->total), x->total == 1 ? "" : "s", nt, nt == 1 ? "" : "s");
	fflush(stdout);

	/* Thread t owns devices [t * N / T, (t + 1) * N / T). */
	for (unsigned t = 0; t < nt; t++) {
		uint64_t lo = o->devices * t / nt, hi = o->devices * (t + 1) / nt;

		p[t].db = x->db;
		p[t].readings = o->readings;
		p[t].order = order + lo;
		p[t].n = (size_t)(hi - lo);
		p[t].stop = &stop;
		atomic_init(&p[t].queued, 0);
		qsort(p[t].order, p[t].n, sizeof *order, demo_cmp_phase);
	}

	cli_progress_start(&bar, "ingest", x->total);
	t0 = cli_now();
	for (; started < nt; started++) {
		err = pthread_create(&p[started].tid, NULL, demo_producer_main, &p[started]);
		if (err) {
			fprintf(stderr, "omendb demo: cannot start a producer thread: %s\n",
				strerror(err));
			atomic_store_explicit(&stop, true, memory_order_relaxed);
			rc = CLI_FAIL;
			break;
		}
	}
	/* The live rate, until every producer has queued its share (or stopped). */
	for (;;) {
		struct timespec nap = { 0, 20 * 1000 * 1000 };
		uint64_t q = 0;
		bool busy = false;

		for (unsigned t = 0; t < started; t++) {
			uint64_t n = atomic_load_explicit(&p[t].queued, memory_order_relaxed);

			q += n;
			busy |= n < p[t].n * o->readings;
		}
		cli_progress_update(&bar, q);
		if (!busy || demo_interrupted() || atomic_load_explicit(&stop, memory_order_relaxed))
			break;
		nanosleep(&nap, NULL);
	}
	for (unsigned t = 0; t < started; t++)
		pthread_join(p[t].tid, NULL);
	x->queued_s = cli_now() - t0;
	cli_progress_finish(&bar);

	for (unsigned t = 0; t < started; t++) {
		if (p[t].rc != OMEN_OK) {
			if (p[t].msg[0])
				fprintf(stderr, "omendb demo: %s: %s\n", omen_strerror(p[t].rc),
					p[t].msg);
			else
				fprintf(stderr, "omendb demo: %s\n", omen_strerror(p[t].rc));
			rc = CLI_FAIL;
		}
	}
	if (rc != CLI_OK || demo_interrupted())
		goto out;

	err = omen_flush(x->db);
	if (err != OMEN_OK) {
		rc = demo_db_error(err);
		goto out;
	}
	x->ingest_s = cli_now() - t0;
	x->flush_s = x->ingest_s - x->queued_s;
	err = omen_get_stats(x->db, &x->st_ingest);
	if (err != OMEN_OK) {
		rc = demo_db_error(err);
		goto out;
	}
	printf("  queued in %.2f s, all acknowledged after %.2f s: %s readings/s "
	       "(%s keys live, %u shards)\n",
	       x->queued_s, x->ingest_s, demo_fmt_rate(b1, (double)x->total / x->ingest_s),
	       demo_fmt_count(b4, x->st_ingest.keys), x->st_ingest.shards);
out:
	free(order);
	free(p);
	return rc;
}

/* ===================================================================== */
/* Queries                                                                */

static int demo_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Sorts s[0..n) and returns its p-th percentile (0 < p <= 100). */
static double demo_percentile(double *s, size_t n, unsigned p, bool sorted)
{
	if (n == 0)
		return 0.0;
	if (!sorted)
		qsort(s, n, sizeof *s, demo_cmp_double);
	return s[(n - 1) * p / 100];
}

struct demo_latest {
	bool found;
	uint64_t key;
	float celsius;
	uint8_t status;
	bool bad_value;             /* a value that is not 8 bytes */
};

/*
 * The newest reading of device d at or before now_ms: iterate the window
 * (now - w, now] of the device's keys and keep the last; when it is empty,
 * widen it 16-fold, until it reaches the device's first possible key.
 */
static int demo_query_latest(omen_db *db, uint64_t d, uint64_t now_ms, struct demo_latest *r)
{
	uint64_t width = DEMO_LATEST_WINDOW_MS, hi = demo_key(d, now_ms);

	memset(r, 0, sizeof *r);
	for (;;) {
		uint64_t lo_ts = now_ms > width ? now_ms - width : 0, key;
		const void *val;
		size_t len;
		omen_iter *it;
		int rc = omen_iter_open(db, demo_key(d, lo_ts), hi, &it);

		if (rc != OMEN_OK)
			return rc;
		while ((rc = omen_iter_next(it, &key, &val, &len)) == OMEN_OK) {
			r->found = true;
			r->key = key;
			r->bad_value = !demo_value_unpack(val, len, &r->celsius, &r->status);
		}
		omen_iter_close(it);
		if (rc != OMEN_END)
			return rc;
		if (r->found || lo_ts == 0)
			return OMEN_OK;
		width = width > DEMO_TS_MASK / 16 ? DEMO_TS_MASK : width * 16;
	}
}

/* Whether r is device d's last reading as the generator made it. */
static bool demo_latest_ok(const struct demo_latest *r, uint64_t d, uint64_t readings)
{
	uint64_t ts = demo_ts(d, readings - 1);
	float c;
	uint8_t s;

	demo_reading(d, readings - 1, ts, &c, &s);
	return r->found && !r->bad_value && r->key == demo_key(d, ts) &&
	       memcmp(&r->celsius, &c, sizeof c) == 0 && r->status == s;
}

struct demo_agg {
	uint64_t count;
	float min, max;
	double sum;
	uint64_t bad_values;
};

static void demo_agg_add(struct demo_agg *a, float c)
{
	if (a->count == 0 || c < a->min)
		a->min = c;
	if (a->count == 0 || c > a->max)
		a->max = c;
	a->sum += c;
	a->count++;
}

/* count / min / max / sum of device d's readings with t0 <= ts <= t1. */
static int demo_query_window(omen_db *db, uint64_t d, uint64_t t0, uint64_t t1,
			     struct demo_agg *a)
{
	const void *val;
	size_t len;
	omen_iter *it;
	int rc;

	memset(a, 0, sizeof *a);
	rc = omen_iter_open(db, demo_key(d, t0), demo_key(d, t1), &it);
	if (rc != OMEN_OK)
		return rc;
	while ((rc = omen_iter_next(it, NULL, &val, &len)) == OMEN_OK) {
		float c;
		uint8_t s;

		if (demo_value_unpack(val, len, &c, &s))
			demo_agg_add(a, c);
		else
			a->bad_values++;
	}
	omen_iter_close(it);
	return rc == OMEN_END ? OMEN_OK : rc;
}

/* The same aggregate from the generator (same order, so the same sum). */
static void demo_expect_window(uint64_t d, uint64_t readings, uint64_t t0, uint64_t t1,
			       struct demo_agg *a)
{
	memset(a, 0, sizeof *a);
	for (uint64_t i = 0; i < readings; i++) {
		uint64_t ts = demo_ts(d, i);
		float c;
		uint8_t s;

		if (ts < t0)
			continue;
		if (ts > t1)
			break;
		demo_reading(d, i, ts, &c, &s);
		demo_agg_add(a, c);
	}
}

static bool demo_agg_equal(const struct demo_agg *a, const struct demo_agg *b)
{
	return a->count == b->count && a->bad_values == 0 && b->bad_values == 0 &&
	       (a->count == 0 || (a->min == b->min && a->max == b->max && a->sum == b->sum));
}

static void demo_print_latest(uint64_t d, const struct demo_latest *r, double lat)
{
	char b1[32], b2[48], b3[32];

	if (!r->found) {
		printf("  %10s  (no reading)\n", demo_fmt_count(b1, d));
		return;
	}
	printf("  %10s  %s  %7.2f °C  %-11s  %10s\n", demo_fmt_count(b1, d),
	       demo_fmt_time(b2, r->key & DEMO_TS_MASK), (double)r->celsius,
	       demo_status_name(r->status), demo_fmt_us(b3, lat));
}

static int demo_latest_readings(struct demo_ctx *x)
{
	const struct demo_opts *o = x->o;
	size_t n = o->devices <= DEMO_SWEEP_MAX ? (size_t)o->devices : DEMO_SWEEP_MAX;
	double *lat = malloc(n * sizeof *lat);
	uint64_t hot = 0, battery = 0, prev = UINT64_MAX;
	struct demo_latest r;
	double t, sweep_t0;
	int rc, err;
	char b1[32], b2[32], b3[32], b4[48], b5[32], b6[32], b7[32];

	if (!lat) {
		fprintf(stderr, "omendb demo: out of memory\n");
		return CLI_FAIL;
	}
	printf("\nLatest reading of a device (fleet clock: %s UTC)\n",
	       demo_fmt_time(b4, x->now_ms));
	printf("  %10s  %-23s  %10s  %-11s  %10s\n", "device", "time (UTC)", "reading",
	       "status", "latency");
	/* A few devices across the fleet, each timed alone. */
	for (unsigned k = 0; k < 5; k++) {
		uint64_t d = (o->devices - 1) * k / 4;

		if (d == prev)
			continue;
		prev = d;
		t = cli_now();
		err = demo_query_latest(x->db, d, x->now_ms, &r);
		t = cli_now() - t;
		if (err != OMEN_OK) {
			rc = demo_db_error(err);
			goto out;
		}
		demo_print_latest(d, &r, t);
		if (!demo_latest_ok(&r, d, o->readings)) {
			fprintf(stderr, "omendb demo: check failed: device %" PRIu64
				"'s latest reading is not the one ingested\n", d);
			rc = CLI_FAIL;
			goto out;
		}
	}
	/* The whole fleet (or an even sample of it): "which devices are hot
	 * right now?" */
	sweep_t0 = cli_now();
	for (size_t k = 0; k < n && !demo_interrupted(); k++) {
		uint64_t d = n == o->devices ? k : (uint64_t)k * o->devices / n;

		t = cli_now();
		err = demo_query_latest(x->db, d, x->now_ms, &r);
		lat[k] = cli_now() - t;
		if (err != OMEN_OK) {
			rc = demo_db_error(err);
			goto out;
		}
		if (!demo_latest_ok(&r, d, o->readings)) {
			fprintf(stderr, "omendb demo: check failed: device %" PRIu64
				"'s latest reading is not the one ingested\n", d);
			rc = CLI_FAIL;
			goto out;
		}
		hot += r.status == DEMO_STATUS_HOT;
		battery += r.status == DEMO_STATUS_BATTERY;
	}
	t = cli_now() - sweep_t0;
	if (demo_interrupted()) {
		rc = CLI_FAIL;
		goto out;
	}
	qsort(lat, n, sizeof *lat, demo_cmp_double);
	x->latest_n = n;
	x->latest_p50 = demo_percentile(lat, n, 50, true);
	x->latest_p99 = demo_percentile(lat, n, 99, true);
	printf("  fleet sweep: latest reading of %s device%s in %.1f ms: %s hot, %s battery low;\n"
	       "  latency p50 %s, p99 %s, max %s; all checked against the generator\n",
	       demo_fmt_count(b1, n), n == 1 ? "" : "s", t * 1e3, demo_fmt_count(b2, hot),
	       demo_fmt_count(b3, battery), demo_fmt_us(b5, x->latest_p50),
	       demo_fmt_us(b6, x->latest_p99), demo_fmt_us(b7, lat[n - 1]));
	rc = CLI_OK;
out:
	free(lat);
	return rc;
}

static int demo_windows(struct demo_ctx *x)
{
	const struct demo_opts *o = x->o;
	uint64_t span = o->readings * DEMO_PERIOD_MS;
	/* The window: a quarter into the fleet's history, half of it long
	 * (an hour at most), in whole seconds. */
	uint64_t t0 = DEMO_EPOCH_MS + span / 4 / 1000 * 1000;
	uint64_t w = (span / 2 < UINT64_C(3600000) ? span / 2 : UINT64_C(3600000)) / 1000 * 1000;
	uint64_t t1, d = o->devices > 4242 ? 4242 : o->devices / 2;
	size_t n = o->devices < DEMO_WINDOW_QUERIES ? (size_t)o->devices : DEMO_WINDOW_QUERIES;
	double *lat = malloc(n * sizeof *lat);
	struct demo_agg a, e;
	double t;
	int rc, err;
	char b1[32], b2[48], b3[48], b4[32];

	if (!lat) {
		fprintf(stderr, "omendb demo: out of memory\n");
		return CLI_FAIL;
	}
	if (w == 0)
		w = DEMO_PERIOD_MS;
	t1 = t0 + w - 1;
	printf("\nOne device over a time window (one iterator over [d << 44 | t0, d << 44 | t1])\n");
	printf("  device %s, %s .. %s UTC (%" PRIu64 " s)\n", demo_fmt_count(b1, d),
	       demo_fmt_time(b2, t0), demo_fmt_time(b3, t1), w / 1000);
	t = cli_now();
	err = demo_query_window(x->db, d, t0, t1, &a);
	t = cli_now() - t;
	if (err != OMEN_OK) {
		rc = demo_db_error(err);
		goto out;
	}
	demo_expect_window(d, o->readings, t0, t1, &e);
	if (a.count)
		printf("  count %s  min %.2f °C  max %.2f °C  mean %.2f °C  latency %s\n",
		       demo_fmt_count(b1, a.count), (double)a.min, (double)a.max,
		       a.sum / (double)a.count, demo_fmt_us(b4, t));
	else
		printf("  count 0 (no readings in the window)  latency %s\n", demo_fmt_us(b4, t));
	if (!demo_agg_equal(&a, &e)) {
		fprintf(stderr, "omendb demo: check failed: device %" PRIu64 "'s window holds "
			"%" PRIu64 " readings, %" PRIu64 " were ingested\n", d, a.count, e.count);
		rc = CLI_FAIL;
		goto out;
	}
	x->window_readings = a.count;

	/* The same window over devices drawn at random. */
	for (size_t k = 0; k < n && !demo_interrupted(); k++) {
		uint64_t dk = demo_mix64(k ^ UINT64_C(0x77696e646f77)) % o->devices;

		t = cli_now();
		err = demo_query_window(x->db, dk, t0, t1, &a);
		lat[k] = cli_now() - t;
		if (err != OMEN_OK) {
			rc = demo_db_error(err);
			goto out;
		}
		demo_expect_window(dk, o->readings, t0, t1, &e);
		if (!demo_agg_equal(&a, &e)) {
			fprintf(stderr, "omendb demo: check failed: device %" PRIu64 "'s window "
				"aggregate differs from what was ingested\n", dk);
			rc = CLI_FAIL;
			goto out;
		}
	}
	if (demo_interrupted()) {
		rc = CLI_FAIL;
		goto out;
	}
	qsort(lat, n, sizeof *lat, demo_cmp_double);
	x->window_n = n;
	x->window_p50 = demo_percentile(lat, n, 50, true);
	x->window_p99 = demo_percentile(lat, n, 99, true);
	printf("  the same window for %s random device%s: latency p50 %s, p99 %s, max %s; "
	       "all checked\n", demo_fmt_count(b1, n), n == 1 ? "" : "s",
	       demo_fmt_us(b4, x->window_p50), demo_fmt_us(b2, x->window_p99),
	       demo_fmt_us(b3, lat[n - 1]));
	rc = CLI_OK;
out:
	free(lat);
	return rc;
}

/* ===================================================================== */
/* Recovery                                                               */

static int demo_reopen(struct demo_ctx *x)
{
	const struct demo_opts *o = x->o;
	uint64_t d = o->devices / 3, count = 0;
	struct demo_latest r;
	omen_iter *it;
	double t;
	int err;
	char b1[32], b2[32], b3[32];

	printf("\nClose and reopen\n");
	fflush(stdout);
	t = cli_now();
	err = omen_close(x->db);
	x->close_s = cli_now() - t;
	if (err != OMEN_OK)
		return demo_db_error(err);
	x->db = NULL;
	printf("  close  %6.2f s  (queues drained, everything durable)\n", x->close_s);
	fflush(stdout);

	t = cli_now();
	err = omen_open(x->dir, NULL, &x->db);
	x->open_s = cli_now() - t;
	if (err != OMEN_OK)
		return demo_db_error(err);
	/* The first question, asked at once: the indexes are still being
	 * rebuilt in the background, so it is answered from storage. */
	err = demo_query_latest(x->db, d, x->now_ms, &r);
	x->first_s = cli_now() - t;
	if (err != OMEN_OK)
		return demo_db_error(err);
	if (!demo_latest_ok(&r, d, o->readings)) {
		fprintf(stderr, "omendb demo: check failed: device %" PRIu64 "'s latest reading "
			"right after reopening is not the one ingested\n", d);
		return CLI_FAIL;
	}
	err = omen_get_stats(x->db, &x->st_reopen); /* waits for the rebuilds */
	if (err != OMEN_OK)
		return demo_db_error(err);
	x->rebuild_s = (double)x->st_reopen.rebuild_us / 1e6;
	printf("  open   %6.3f s  (metadata checked, files open; each shard's index "
	       "rebuilds in the background)\n", x->open_s);
	printf("  first answer %6.3f s after open began  (device %s's latest reading, "
	       "from storage)\n", x->first_s, demo_fmt_count(b3, d));
	printf("  in memory    %6.2f s after open began  (%s keys read back, %s keys/s)\n",
	       x->rebuild_s, demo_fmt_count(b1, x->st_reopen.keys),
	       demo_fmt_rate(b2, (double)x->st_reopen.keys / x->rebuild_s));

	printf("  keys in the database  %s, ingested %s  %s\n",
	       demo_fmt_count(b1, x->st_reopen.keys), demo_fmt_count(b2, x->total),
	       x->st_reopen.keys == x->total ? "ok" : "MISMATCH");
	if (x->st_reopen.keys != x->total) {
		fprintf(stderr, "omendb demo: check failed: %" PRIu64 " keys after reopening, %"
			PRIu64 " ingested\n", x->st_reopen.keys, x->total);
		return CLI_FAIL;
	}

	/* One device's whole key range, scanned. */
	err = omen_iter_open(x->db, demo_key(d, 0), demo_key(d, DEMO_TS_MASK), &it);
	if (err != OMEN_OK)
		return demo_db_error(err);
	while ((err = omen_iter_next(it, NULL, NULL, NULL)) == OMEN_OK)
		count++;
	omen_iter_close(it);
	if (err != OMEN_END)
		return demo_db_error(err);
	printf("  device %s by a scan  %s readings, ingested %s  %s\n", demo_fmt_count(b3, d),
	       demo_fmt_count(b1, count), demo_fmt_count(b2, o->readings),
	       count == o->readings ? "ok" : "MISMATCH");
	if (count != o->readings) {
		fprintf(stderr, "omendb demo: check failed: device %" PRIu64 " has %" PRIu64
			" readings after reopening, %" PRIu64 " ingested\n", d, count, o->readings);
		return CLI_FAIL;
	}

	err = demo_query_latest(x->db, d, x->now_ms, &r);
	if (err != OMEN_OK)
		return demo_db_error(err);
	printf("  device %s's latest reading  %s\n", demo_fmt_count(b3, d),
	       demo_latest_ok(&r, d, o->readings) ? "ok" : "MISMATCH");
	if (!demo_latest_ok(&r, d, o->readings)) {
		fprintf(stderr, "omendb demo: check failed: device %" PRIu64 "'s latest reading "
			"after reopening is not the one ingested\n", d);
		return CLI_FAIL;
	}
	return CLI_OK;
}

static void demo_summary(const struct demo_ctx *x)
{
	const omen_stats *si = &x->st_ingest, *sr = &x->st_reopen;
	double per = x->total ? (double)x->total : 1.0;
	char b1[32], b2[32], b3[32], b4[32], b5[32];

	printf("\nSummary: %s devices x %s readings = %s readings (8-byte keys, %d-byte "
	       "values), %u producer thread%s, %u shards\n",
	       demo_fmt_count(b1, x->o->devices), demo_fmt_count(b2, x->o->readings),
	       demo_fmt_count(b3, x->total), DEMO_VALUE_LEN, x->o->threads,
	       x->o->threads == 1 ? "" : "s", sr->shards);
	printf("  %-18s %s readings/s  (%.2f s until all acknowledged)\n", "ingest",
	       demo_fmt_rate(b1, (double)x->total / x->ingest_s), x->ingest_s);
	printf("  %-18s p50 %s  p99 %s  (%s queries)\n", "latest reading",
	       demo_fmt_us(b1, x->latest_p50), demo_fmt_us(b2, x->latest_p99),
	       demo_fmt_count(b3, x->latest_n));
	printf("  %-18s p50 %s  p99 %s  (%s queries, %s readings each)\n", "window aggregate",
	       demo_fmt_us(b1, x->window_p50), demo_fmt_us(b2, x->window_p99),
	       demo_fmt_count(b3, x->window_n), demo_fmt_count(b4, x->window_readings));
	printf("  %-18s %s  (index %s + values %s; %.1f B/reading)\n", "memory",
	       demo_fmt_bytes(b1, si->index_bytes + si->value_bytes),
	       demo_fmt_bytes(b2, si->index_bytes), demo_fmt_bytes(b3, si->value_bytes),
	       (double)(si->index_bytes + si->value_bytes) / per);
	printf("  %-18s %s  after ingest, %s after reopening (%.1f B/reading)\n", "disk",
	       demo_fmt_bytes(b1, si->disk_bytes), demo_fmt_bytes(b2, sr->disk_bytes),
	       (double)sr->disk_bytes / per);
	printf("  %-18s open %.3f s, first answer %.3f s, all in memory %.2f s (%s keys/s); "
	       "close took %.2f s\n", "recovery", x->open_s, x->first_s, x->rebuild_s,
	       demo_fmt_rate(b5, (double)sr->keys / x->rebuild_s), x->close_s);
}

/* ===================================================================== */
/* The directory                                                          */

static int demo_rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	if (remove(path) != 0)
		fprintf(stderr, "omendb demo: cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

static void demo_rm_tree(const char *dir)
{
	nftw(dir, demo_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Open x->dir (new, empty, or a database without keys). */
static int demo_open(struct demo_ctx *x, bool user_dir)
{
	omen_stats st;
	int err = omen_open(x->dir, NULL, &x->db);
	char b1[32];

	if (err != OMEN_OK)
		return demo_db_error(err);
	if (!user_dir)
		return CLI_OK;
	err = omen_get_stats(x->db, &st);
	if (err != OMEN_OK)
		return demo_db_error(err);
	if (st.keys != 0) {
		fprintf(stderr, "omendb demo: %s already holds %s keys: the demo needs a new "
			"directory or an empty database\n", x->dir, demo_fmt_count(b1, st.keys));
		return CLI_FAIL;
	}
	return CLI_OK;
}

static int demo_run(struct demo_ctx *x)
{
	int rc;

	rc = demo_open(x, x->o->dir != NULL);
	if (rc != CLI_OK)
		return rc;
	rc = demo_ingest(x);
	if (rc != CLI_OK || demo_interrupted())
		return rc;
	rc = demo_latest_readings(x);
	if (rc != CLI_OK || demo_interrupted())
		return rc;
	rc = demo_windows(x);
	if (rc != CLI_OK || demo_interrupted())
		return rc;
	rc = demo_reopen(x);
	if (rc != CLI_OK || demo_interrupted())
		return rc;
	demo_summary(x);
	return CLI_OK;
}

int cli_demo_main(int argc, char **argv)
{
	struct demo_opts o;
	struct demo_ctx x;
	char tmpdir[4096];
	bool temporary;
	int rc, sig, err;

	rc = demo_parse(argc, argv, &o);
	if (rc >= 0)
		return rc;

	memset(&x, 0, sizeof x);
	x.o = &o;
	x.total = o.devices * o.readings;
	x.now_ms = DEMO_EPOCH_MS + o.readings * DEMO_PERIOD_MS + DEMO_JITTER_MS;
	temporary = o.dir == NULL;
	if (temporary) {
		const char *base = getenv("TMPDIR");

		if (!base || !*base)
			base = "/tmp";
		if ((size_t)snprintf(tmpdir, sizeof tmpdir, "%s/omendb-demo-XXXXXX", base) >=
		    sizeof tmpdir) {
			fprintf(stderr, "omendb demo: TMPDIR is too long\n");
			return CLI_FAIL;
		}
		if (!mkdtemp(tmpdir)) {
			fprintf(stderr, "omendb demo: cannot create a directory in %s: %s\n", base,
				strerror(errno));
			return CLI_FAIL;
		}
		x.dir = tmpdir;
	} else {
		x.dir = o.dir;
	}
	printf("OmenDB %s telemetry demo: database in %s\n\n", omen_version(), x.dir);
	fflush(stdout);

	demo_signals_install();
	rc = demo_run(&x);
	if (x.db) {
		err = omen_close(x.db);
		if (err != OMEN_OK && rc == CLI_OK)
			rc = demo_db_error(err);
	}
	sig = atomic_load_explicit(&demo_signal, memory_order_relaxed);
	if (temporary && !o.keep) {
		demo_rm_tree(x.dir);
		if (!sig && rc == CLI_OK)
			printf("\nRemoved %s (--keep keeps it).\n", x.dir);
	} else if (!sig && rc == CLI_OK) {
		printf("\nThe database is in %s: try 'omendb stats %s'.\n", x.dir, x.dir);
	}
	fflush(stdout);
	demo_signals_restore();
	if (sig) {
		fprintf(stderr, "omendb demo: interrupted\n");
		raise(sig);
		return CLI_FAIL;
	}
	return rc;
}
