/*
 * bench/bench_rebalance.c — what online rebalancing costs (issue 5), through
 * the public API only.
 *
 *   bench_rebalance [--n N] [--reps R] [--move M] [--shards S] [--smoke]
 *
 * ingest   2 producer threads ingest N keys in ascending time order
 *          (timestamps 10 ms apart, the two threads interleaved) into a new
 *          database of S shards (4), then omen_flush.  Every new key lands in
 *          the last shard, so with rebalancing on, moves run all along;
 *          with rebalance_factor < 0 there are none.  Both configurations
 *          run R times (3), alternating so drift hits both alike; the
 *          median run is reported, with the latency of omen_ingest calls
 *          (one call in 64 timed) and the moves it made.  The figure: the
 *          rate with moves over the rate without.
 * move     M keys (1M) are moved in one move: a 2-shard database is loaded
 *          with 2M ascending keys with rebalancing off (shard 0 keeps the
 *          bootstrap's 2048 keys, shard 1 gets the rest), closed, and
 *          reopened with rebalancing on: shard 1 holds nearly twice the
 *          mean, so its worker moves half its surplus, M keys, to shard 0.
 *          Reported: the move's time from omen_get_stats (move_us).
 *
 * The last lines are machine-readable key=value lines.
 */
#define _GNU_SOURCE /* before any system header: nftw and mkdtemp (tests/lib/apitest.h) */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "omendb.h"
#include "tests/lib/apitest.h"
#include "tests/lib/benchutil.h"

#define NPROD 2
#define LAT_EVERY 64
#define BASE_TS 1700000000000ull

struct opts {
	size_t n, move;
	unsigned reps, shards;
};

static void die(const char *what, int rc)
{
	fprintf(stderr, "bench_rebalance: %s: %s: %s\n", what, omen_strerror(rc), omen_errmsg());
	exit(1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* ---------------------------------------------------------------- ingest */

struct prod {
	omen_db *db;
	size_t n, id;
	atomic_int *go;
	uint64_t *lat;          /* n / LAT_EVERY + 1 samples, ns */
	size_t nlat;
};

static void *prod_main(void *arg)
{
	struct prod *p = arg;
	uint8_t val[16];
	memset(val, 0x5a, sizeof(val));
	while (!atomic_load_explicit(p->go, memory_order_acquire))
		;
	for (size_t i = 0; i < p->n; i++) {
		uint64_t key = BASE_TS + (i * NPROD + p->id) * 10;
		memcpy(val, &key, sizeof(key));
		int rc;
		if (i % LAT_EVERY == 0) {
			uint64_t t0 = bench_now_ns();
			rc = omen_ingest(p->db, key, val, sizeof(val));
			p->lat[p->nlat++] = bench_now_ns() - t0;
		} else {
			rc = omen_ingest(p->db, key, val, sizeof(val));
		}
		if (rc != OMEN_OK)
			die("omen_ingest", rc);
	}
	return NULL;
}

struct ingest_result {
	double keys_per_s, seconds, imbalance;
	uint64_t p50, p99, p999, moves, keys_moved, move_us;
};

static void run_ingest(const struct opts *o, const char *base, unsigned run, bool rebalance,
		       struct ingest_result *r)
{
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s/ingest-%u-%s", base, run, rebalance ? "on" : "off");
	omen_options opt;
	omen_options_init(&opt);
	opt.shards = o->shards;
	opt.rebalance_factor = rebalance ? 0 : -1;
	omen_db *db;
	int rc = omen_open(dir, &opt, &db);
	if (rc != OMEN_OK)
		die("omen_open", rc);
	atomic_int go = 0;
	struct prod p[NPROD];
	pthread_t th[NPROD];
	size_t per = o->n / NPROD;
	for (size_t i = 0; i < NPROD; i++) {
		p[i] = (struct prod){ db, per, i, &go, malloc((per / LAT_EVERY + 1) * sizeof(uint64_t)),
				      0 };
		if (!p[i].lat)
			die("malloc", OMEN_ENOMEM);
		pthread_create(&th[i], NULL, prod_main, &p[i]);
	}
	uint64_t t0 = bench_now_ns();
	atomic_store_explicit(&go, 1, memory_order_release);
	for (size_t i = 0; i < NPROD; i++)
		pthread_join(th[i], NULL);
	if ((rc = omen_flush(db)) != OMEN_OK)
		die("omen_flush", rc);
	uint64_t t1 = bench_now_ns();
	r->seconds = (double)(t1 - t0) / 1e9;
	r->keys_per_s = (double)(per * NPROD) / r->seconds;
	size_t nl = 0;
	for (size_t i = 0; i < NPROD; i++)
		nl += p[i].nlat;
	uint64_t *all = malloc(nl * sizeof(uint64_t));
	if (!all)
		die("malloc", OMEN_ENOMEM);
	nl = 0;
	for (size_t i = 0; i < NPROD; i++) {
		memcpy(all + nl, p[i].lat, p[i].nlat * sizeof(uint64_t));
		nl += p[i].nlat;
		free(p[i].lat);
	}
	qsort(all, nl, sizeof(uint64_t), cmp_u64);
	r->p50 = all[nl / 2];
	r->p99 = all[nl * 99 / 100];
	r->p999 = all[nl * 999 / 1000];
	free(all);
	omen_stats st;
	if ((rc = omen_get_stats(db, &st)) != OMEN_OK)
		die("omen_get_stats", rc);
	r->moves = st.moves;
	r->keys_moved = st.keys_moved;
	r->move_us = st.move_us;
	uint64_t max = 0;
	for (unsigned s = 0; s < st.shards; s++) {
		omen_shard_stats ss;
		if (omen_get_shard_stats(db, s, &ss) == OMEN_OK && ss.keys > max)
			max = ss.keys;
	}
	r->imbalance = st.keys ? (double)max / ((double)st.keys / st.shards) : 0;
	if ((rc = omen_close(db)) != OMEN_OK)
		die("omen_close", rc);
	apitest_rm_tree(dir);
}

static int cmp_rate(const void *a, const void *b)
{
	double x = ((const struct ingest_result *)a)->keys_per_s;
	double y = ((const struct ingest_result *)b)->keys_per_s;
	return x < y ? -1 : x > y;
}

/* ------------------------------------------------------------------ move */

static void run_move(const struct opts *o, const char *base, double *seconds, uint64_t *moved)
{
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s/move", base);
	omen_options opt;
	omen_options_init(&opt);
	opt.shards = 2;
	opt.rebalance_factor = -1;
	omen_db *db;
	int rc = omen_open(dir, &opt, &db);
	if (rc != OMEN_OK)
		die("omen_open", rc);
	uint8_t val[16];
	memset(val, 0x3c, sizeof(val));
	omen_batch *b = omen_batch_new();
	size_t total = 2 * o->move + 4096;
	for (size_t i = 0; i < total; i++) {
		omen_batch_put(b, BASE_TS + i * 10, val, sizeof(val));
		if (omen_batch_count(b) == 1000 || i + 1 == total) {
			if ((rc = omen_ingest_batch(db, b)) != OMEN_OK)
				die("omen_ingest_batch", rc);
			omen_batch_clear(b);
		}
	}
	omen_batch_free(b);
	if ((rc = omen_close(db)) != OMEN_OK)
		die("omen_close", rc);
	opt.rebalance_factor = 0;
	if ((rc = omen_open(dir, &opt, &db)) != OMEN_OK)
		die("omen_open", rc);
	omen_stats st;
	/* get_stats waits for the rebuild; the move follows within an idle
	 * worker's look at the balance (100 ms). */
	for (int i = 0; i < 600; i++) {
		if ((rc = omen_get_stats(db, &st)) != OMEN_OK)
			die("omen_get_stats", rc);
		if (st.moves > 0)
			break;
		struct timespec ts = { 0, 50 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	*seconds = (double)st.move_us / 1e6;
	*moved = st.keys_moved;
	if (st.moves != 1)
		fprintf(stderr, "bench_rebalance: expected one move, saw %" PRIu64 "\n", st.moves);
	if ((rc = omen_close(db)) != OMEN_OK)
		die("omen_close", rc);
	apitest_rm_tree(dir);
}

/* ------------------------------------------------------------------ main */

static void usage(void)
{
	fputs("usage: bench_rebalance [--n N] [--reps R] [--move M] [--shards S] [--smoke]\n"
	      "  --n N       keys each ingest run writes (default 4m)\n"
	      "  --reps R    runs of each configuration (default 3)\n"
	      "  --move M    keys the single move carries (default 1m)\n"
	      "  --shards S  shards of the ingest runs (default 4)\n"
	      "  --smoke     --n 200k --reps 1 --move 100k\n",
	      stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	struct opts o = { 4000000, 1000000, 3, 4 };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--smoke")) {
			o.n = 200000;
			o.reps = 1;
			o.move = 100000;
		} else if (!strcmp(a, "--n") && v && (o.n = bench_parse_count(v)) >= 10000) {
			i++;
		} else if (!strcmp(a, "--move") && v && (o.move = bench_parse_count(v)) >= 10000) {
			i++;
		} else if (!strcmp(a, "--reps") && v && (o.reps = (unsigned)atoi(v)) > 0) {
			i++;
		} else if (!strcmp(a, "--shards") && v && (o.shards = (unsigned)atoi(v)) >= 2) {
			i++;
		} else {
			usage();
		}
	}
	bench_machine m;
	bench_machine_get(&m);
	printf("# bench_rebalance: ingest with and without online moves; one move timed\n");
	printf("# machine: arch=%s cpu=\"%s\" nproc=%ld optimized=%s loadavg_1min=%.2f\n", m.arch,
	       m.cpu, m.nproc, m.optimized, bench_loadavg_1min());
	char base[4096];
	apitest_mkdtemp(base, sizeof(base), "bench-rebalance");

	struct ingest_result on[16], off[16];
	if (o.reps > 16)
		o.reps = 16;
	printf("\n== ingest: %u shards, %d threads, %zu ascending keys, 16-byte values ==\n",
	       o.shards, NPROD, o.n);
	printf("  %-9s %4s %10s %9s  %s\n", "rebalance", "run", "keys/s", "seconds",
	       "omen_ingest ns p50/p99/p99.9, moves, keys moved, move time, largest/mean");
	for (unsigned r = 0; r < o.reps; r++) {
		for (int pass = 0; pass < 2; pass++) {
			bool reb = (pass == 0) == (r % 2 == 0);
			struct ingest_result *x = reb ? &on[r] : &off[r];
			run_ingest(&o, base, r, reb, x);
			printf("  %-9s %4u %10.0f %9.2f  %" PRIu64 "/%" PRIu64 "/%" PRIu64 ", %" PRIu64
			       ", %" PRIu64 ", %.2f s, %.2f\n",
			       reb ? "on" : "off", r + 1, x->keys_per_s, x->seconds, x->p50, x->p99,
			       x->p999, x->moves, x->keys_moved, (double)x->move_us / 1e6,
			       x->imbalance);
			fflush(stdout);
		}
	}
	qsort(on, o.reps, sizeof(on[0]), cmp_rate);
	qsort(off, o.reps, sizeof(off[0]), cmp_rate);
	const struct ingest_result *mon = &on[o.reps / 2], *moff = &off[o.reps / 2];
	double ratio = mon->keys_per_s / moff->keys_per_s;
	printf("  median: with moves %.0f keys/s, without %.0f keys/s: %.2f of the steady rate "
	       "(figure: at least 0.70)\n",
	       mon->keys_per_s, moff->keys_per_s, ratio);

	double move_s;
	uint64_t moved;
	printf("\n== one move of about %zu keys (2 shards, 16-byte values) ==\n", o.move);
	run_move(&o, base, &move_s, &moved);
	printf("  moved %" PRIu64 " keys in %.3f s (%.2fM keys/s)\n", moved, move_s,
	       move_s > 0 ? (double)moved / move_s / 1e6 : 0.0);
	apitest_rm_tree(base);

	printf("\n");
	printf("bench=rebalance phase=ingest rebalance=off shards=%u keys=%zu keys_per_s=%.0f "
	       "p50_ns=%" PRIu64 " p99_ns=%" PRIu64 " p999_ns=%" PRIu64 " largest_over_mean=%.2f\n",
	       o.shards, o.n, moff->keys_per_s, moff->p50, moff->p99, moff->p999, moff->imbalance);
	printf("bench=rebalance phase=ingest rebalance=on shards=%u keys=%zu keys_per_s=%.0f "
	       "p50_ns=%" PRIu64 " p99_ns=%" PRIu64 " p999_ns=%" PRIu64 " moves=%" PRIu64
	       " keys_moved=%" PRIu64 " move_s=%.3f largest_over_mean=%.2f ratio_vs_off=%.3f\n",
	       o.shards, o.n, mon->keys_per_s, mon->p50, mon->p99, mon->p999, mon->moves,
	       mon->keys_moved, (double)mon->move_us / 1e6, mon->imbalance, ratio);
	printf("bench=rebalance phase=move keys=%" PRIu64 " seconds=%.3f keys_per_s=%.0f\n", moved,
	       move_s, move_s > 0 ? (double)moved / move_s : 0.0);
	return 0;
}
