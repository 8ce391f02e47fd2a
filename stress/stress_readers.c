/*
 * stress/stress_readers.c — one writer against lock-free readers over the
 * ALEX index, at scale, for `make stress` (and, with --smoke, a few-second
 * run inside `make check`).  The driver is tests/lib/rwtorture.h, the same
 * one tests/test_alex_concurrent.c runs in small bounded cases.
 *
 * For each distribution of tests/lib/datasets.h, two timed runs of
 * --seconds each: one with the engine's default tree limits (what the
 * shards will run) and one with tiny limits (leaves of 256 slots, inner
 * nodes of 16: the tree restructures all the time).  --keys stable keys,
 * as many volatile ones between them, --readers reader threads, and 64
 * short-lived reader threads per run (lazy RCU registration).
 *
 * Each run prints a summary: checks and failures per kind, writer work,
 * the tree's shape and structural counters.  Any failure prints the seed
 * (replay the key sets and writer stream with --seed; the interleaving of
 * threads is not reproducible) and makes the exit status 1.
 *
 *   stress_readers [--smoke] [--seed N] [--readers N] [--seconds S]
 *                  [--keys N] [--dist NAME]
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alex.h"
#include "tests/lib/datasets.h"
#include "tests/lib/rwtorture.h"
#include "tests/lib/util.h"

/* 0 in readers, seconds or keys: not given (no valid value is 0). */
struct options {
	stress_opts common; /* --smoke, --seed, --dist */
	unsigned readers;
	double seconds;     /* per run                 */
	size_t keys;        /* stable keys per run     */
};

static _Noreturn void usage(const char *prog)
{
	stress_usage(prog, "[--readers N] [--seconds S] [--keys N]",
	             "replay the key sets and the writer (default: from the clock)",
	             "  --readers N   reader threads (default 4)\n"
	             "  --seconds S   writer time per run, two runs per distribution (default 30)\n"
	             "  --keys N      stable keys per run, as many volatile (default 2000000)\n");
}

static void parse_args(int argc, char **argv, struct options *o)
{
	memset(o, 0, sizeof(*o));
	stress_opts_init(&o->common);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (stress_opt_arg(&o->common, argc, argv, &i))
			continue;
		if (strcmp(a, "--readers") == 0 && i + 1 < argc) {
			size_t n;

			if (!parse_size(argv[++i], &n) || n > 1024)
				usage(argv[0]);
			o->readers = (unsigned)n;
		} else if (strcmp(a, "--seconds") == 0 && i + 1 < argc) {
			if (!parse_seconds(argv[++i], &o->seconds))
				usage(argv[0]);
		} else if (strcmp(a, "--keys") == 0 && i + 1 < argc) {
			if (!parse_size(argv[++i], &o->keys))
				usage(argv[0]);
		} else {
			usage(argv[0]);
		}
	}
	stress_opts_done(&o->common);
	if (o->readers == 0)
		o->readers = 4;
	if (o->seconds == 0)
		o->seconds = o->common.smoke ? 0.4 : 30;
	if (o->keys == 0)
		o->keys = o->common.smoke ? 50000 : 2000000;
}

/* One timed run; returns its failures (a tree that cannot be built counts
 * as one). */
static uint64_t run_one(const struct options *o, enum ds_dist dist, bool tiny)
{
	char name[64];
	rwt_config c;
	rwt_result r;
	uint64_t bad;
	int rc;

	snprintf(name, sizeof(name), "%s/%s", ds_name(dist), tiny ? "tiny" : "default");
	rwt_config_init(&c);
	c.name = name;
	c.seed = o->common.seed ^ ((uint64_t)dist + 1) * UINT64_C(0xd6e8feb86659fd93) ^
	         (tiny ? 1 : 0);
	c.dist = dist;
	c.stable_keys = tiny ? (o->keys / 4 > 1000 ? o->keys / 4 : 1000) : o->keys;
	c.readers = o->readers;
	c.writer_steps = 0;
	c.seconds = o->seconds;
	c.min_reader_iters = o->common.smoke ? 100 : 1000;
	c.ephemeral_threads = 64;
	c.out = stdout;
	if (tiny) {
		c.alex.max_leaf_slots = 256;
		c.alex.bulk_leaf_keys = 64;
		c.alex.keys_per_slot = 8;
		c.alex.max_fanout_bits = 4;
	}
	printf("%s: seed %" PRIu64 ", %zu stable keys, %u readers, %.1f s\n", name, c.seed,
	       c.stable_keys, c.readers, c.seconds);
	fflush(stdout);
	rc = rwt_run(&c, &r);
	if (rc < 0) {
		printf("%s: FAILED: the tree could not be built (%d)\n", name, rc);
		return 1;
	}
	rwt_print_summary(stdout, "  ", &c, &r);
	bad = rwt_total_failures(&r);
	if (r.ephemeral_done != c.ephemeral_threads || !r.grace_after_ephemeral) {
		printf("%s: only %" PRIu64 " of %u ephemeral threads ran, or no grace period "
		       "completed after them\n", name, r.ephemeral_done, c.ephemeral_threads);
		bad++;
	}
	if (r.starved)
		printf("%s: note: readers did not reach their quota while the writer ran\n", name);
	printf("%s: %s, %" PRIu64 " failures\n", name, bad ? "FAILED" : "passed", bad);
	fflush(stdout);
	return bad;
}

int main(int argc, char **argv)
{
	struct options o;
	uint64_t failures = 0;
	double t0 = now_sec();

	parse_args(argc, argv, &o);
	printf("stress_readers: seed %" PRIu64 " (replay: --seed %" PRIu64 "), %zu keys, "
	       "%u readers, %.1f s per run%s\n", o.common.seed, o.common.seed, o.keys, o.readers,
	       o.seconds, o.common.smoke ? ", smoke" : "");
	fflush(stdout);
	for (int d = 0; d < DS_NDIST; d++) {
		if (o.common.dist >= 0 && o.common.dist != d)
			continue;
		failures += run_one(&o, d, false);
		failures += run_one(&o, d, true);
	}
	printf("stress_readers: %s, seed %" PRIu64 ", %" PRIu64 " failures, %.1f s\n",
	       failures ? "FAILED" : "passed", o.common.seed, failures, now_sec() - t0);
	return failures ? 1 : 0;
}
