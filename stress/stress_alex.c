/*
 * stress/stress_alex.c — the ALEX differential tests of tests/test_alex.c at
 * scale, for `make stress` (and, with --smoke, a few-second run inside
 * `make check`).
 *
 * For each distribution of tests/lib/datasets.h, a tree is run side by side
 * with the reference map (tests/lib/refmap.h) through the mixed phases:
 * bulk load of half the keys, inserts, deletes, lookups, lower bounds,
 * iteration, seeks, sorted batches, a random mix, the rest of the keys and
 * a delete-heavy phase, with alex_check after each.  Once with the default
 * configuration at --n keys, once with tiny limits at n/10 (constant splits
 * and growth).  Then keys are inserted one at a time into an empty tree
 * (uniform and device keys, --insert-n each), with no reference needed:
 * the result must equal the sorted key set.
 *
 * Every phase prints a progress line with its rate; each tree prints its
 * memory per key.  Any mismatch prints the seed and the operation (replay
 * with --seed) and makes the exit status 1.
 *
 *   stress_alex [--smoke] [--seed N] [--n N] [--insert-n N] [--dist NAME]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alex.h"
#include "tests/lib/datasets.h"
#include "tests/lib/refmap.h"
#include "tests/lib/util.h"

/* 0 in n or insert_n: not given (no valid value is 0). */
struct options {
	stress_opts common; /* --smoke, --seed, --dist                 */
	size_t n;           /* keys per distribution, differential runs */
	size_t insert_n;    /* keys of each one-at-a-time insert run    */
};

static uint64_t g_failures;

static _Noreturn void usage(const char *prog)
{
	stress_usage(prog, "[--n N] [--insert-n N]",
	             "replay a run (default: from the clock, printed)",
	             "  --n N         keys per distribution (default 10000000)\n"
	             "  --insert-n N  keys of the one-at-a-time runs (default 30000000)\n");
}

static void parse_args(int argc, char **argv, struct options *o)
{
	memset(o, 0, sizeof(*o));
	stress_opts_init(&o->common);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (stress_opt_arg(&o->common, argc, argv, &i))
			continue;
		if (strcmp(a, "--n") == 0 && i + 1 < argc) {
			if (!parse_size(argv[++i], &o->n))
				usage(argv[0]);
		} else if (strcmp(a, "--insert-n") == 0 && i + 1 < argc) {
			if (!parse_size(argv[++i], &o->insert_n))
				usage(argv[0]);
		} else {
			usage(argv[0]);
		}
	}
	stress_opts_done(&o->common);
	if (o->n == 0)
		o->n = o->common.smoke ? 200000 : 10000000;
	if (o->insert_n == 0)
		o->insert_n = o->common.smoke ? 1000000 : 30000000;
}

static void print_tree(const char *name, const alex_tree *t)
{
	alex_stats s;
	uint64_t keys = alex_size(t);

	alex_get_stats(t, &s);
	printf("  %s: %" PRIu64 " keys, %.1f bytes/key (%zu bytes), %" PRIu64 " leaves, %" PRIu64
	       " inner, depth %u\n", name, keys,
	       keys ? (double)alex_memory_bytes(t) / (double)keys : 0.0, alex_memory_bytes(t),
	       s.leaves, s.inners, s.max_depth);
	printf("  %s: expansions %" PRIu64 ", contractions %" PRIu64 ", splits %" PRIu64
	       " sideways / %" PRIu64 " down, inner expansions %" PRIu64 ", root growths %" PRIu64
	       "\n", name, s.expansions, s.contractions, s.splits_sideways, s.splits_down,
	       s.inner_expansions, s.root_growths);
	fflush(stdout);
}

/* Run one phase, then alex_check; print a progress line with its rate.
 * The rate counts tree and reference together: it is a progress figure,
 * not a benchmark (bench/ measures the index alone). */
#define PHASE(d, nops, what, call)                                                   \
	do {                                                                         \
		size_t n_ = (size_t)(nops);                                          \
		double t0_ = now_sec();                                              \
		uint64_t f_ = (call);                                                \
		double dt_ = now_sec() - t0_;                                        \
		f_ += diff_check((d), (what));                                       \
		printf("  %-34s %10zu ops %7.2f s %8.2f Mops/s %6.1f B/key  %s\n",    \
		       (what), n_, dt_, dt_ > 0 ? (double)n_ / dt_ / 1e6 : 0.0,       \
		       alex_size((d)->t) ? (double)alex_memory_bytes((d)->t) /        \
		                               (double)alex_size((d)->t) : 0.0,       \
		       f_ ? "MISMATCH" : "ok");                                      \
		fflush(stdout);                                                      \
	} while (0)

static void run_diff(const struct options *o, enum ds_dist dist, size_t n,
                     const alex_config *cfg, const char *cfgname)
{
	char name[80];
	uint64_t *pool = xmalloc(n * sizeof(*pool));
	double t0 = now_sec();
	size_t nb = 100 + n / 2000;
	diff d;

	snprintf(name, sizeof(name), "%s/%s/%zu", ds_name(dist), cfgname, n);
	printf("%s: seed %" PRIu64 "\n", name, o->common.seed);
	ds_generate(dist, o->common.seed, pool, n);
	if (diff_init(&d, cfg, name, o->common.seed, pool, n) != 0) {
		printf("%s: alex_create failed\n", name);
		g_failures++;
		free(pool);
		return;
	}
	d.out = stdout;
	PHASE(&d, n / 2, "bulk load half", diff_bulk_load(&d, n / 2));
	PHASE(&d, 3 * (n / 2), "lookup every key and neighbours", diff_lookup_all(&d));
	PHASE(&d, n / 4, "inserts, 20% existing", diff_inserts(&d, n / 4, 20));
	PHASE(&d, n / 8, "deletes, 70% present", diff_deletes(&d, n / 8, 70));
	PHASE(&d, n / 4, "lookups, present and absent", diff_lookups(&d, n / 4));
	PHASE(&d, n / 16, "lower bounds", diff_lower_bounds(&d, n / 16));
	PHASE(&d, refmap_size(&d.ref), "full iteration", diff_iterate(&d));
	PHASE(&d, n / 100 * 8, "seek + 8 x next", diff_seeks(&d, n / 100, 8));
	PHASE(&d, nb * 128, "sorted batches", diff_batches(&d, nb, 256));
	PHASE(&d, n / 4, "mixed operations", diff_mixed(&d, n / 4));
	PHASE(&d, d.pool_n - d.pool_next, "insert the rest of the keys",
	      diff_inserts(&d, d.pool_n - d.pool_next, 0));
	PHASE(&d, n / 2, "delete about half", diff_deletes(&d, n / 2, 90));
	PHASE(&d, refmap_size(&d.ref), "final iteration", diff_iterate(&d));
	PHASE(&d, 3 * refmap_size(&d.ref), "final lookup of every key", diff_lookup_all(&d));
	print_tree(name, d.t);
	printf("%s: %s, %" PRIu64 " mismatches, %.1f s\n", name, d.failures ? "FAILED" : "passed",
	       d.failures, now_sec() - t0);
	g_failures += d.failures;
	diff_destroy(&d);
	free(pool);
}

/* Keys one at a time into an empty tree; the tree must then equal the
 * sorted key set, with every payload. */
static void run_insert_empty(const struct options *o, enum ds_dist dist, size_t n)
{
	const uint64_t seed = o->common.seed;
	char name[80];
	uint64_t *keys = xmalloc(n * sizeof(*keys)), *sorted;
	uint64_t bad = 0, k, v;
	double t0, t1;
	alex_tree *t;
	alex_iter it;
	char msg[256];
	size_t i;

	snprintf(name, sizeof(name), "insert-empty/%s/%zu", ds_name(dist), n);
	printf("%s: seed %" PRIu64 "\n", name, seed);
	ds_generate(dist, seed ^ 0x1, keys, n);
	if (alex_create(NULL, &t) != 0) {
		printf("%s: alex_create failed\n", name);
		g_failures++;
		free(keys);
		return;
	}
	t0 = t1 = now_sec();
	for (i = 0; i < n; i++) {
		int rc = alex_insert(t, keys[i], keys[i] ^ UINT64_C(0x5555555555555555));

		if (rc != 1 && bad++ < 10)
			printf("# FAIL %s seed=%" PRIu64 ": insert #%zu of %#" PRIx64 " returned %d\n",
			       name, seed, i, keys[i], rc);
		if ((i + 1) % (n / 10 ? n / 10 : 1) == 0) {
			double x = now_sec();

			printf("  %zu keys  %.2f s  %.2f Mops/s (last tenth)  %.1f bytes/key\n", i + 1,
			       x - t0, (double)(n / 10) / (x - t1) / 1e6,
			       (double)alex_memory_bytes(t) / (double)alex_size(t));
			fflush(stdout);
			t1 = x;
		}
	}
	if (alex_check(t, msg, sizeof(msg)) != 0) {
		printf("# FAIL %s seed=%" PRIu64 ": alex_check: %s\n", name, seed, msg);
		bad++;
	}
	if (alex_size(t) != n) {
		printf("# FAIL %s seed=%" PRIu64 ": size %" PRIu64 ", want %zu\n", name, seed,
		       alex_size(t), n);
		bad++;
	}
	sorted = xmalloc(n * sizeof(*sorted));
	memcpy(sorted, keys, n * sizeof(*sorted));
	ds_sort(sorted, n);
	t0 = now_sec();
	alex_iter_seek(t, 0, &it);
	for (i = 0; alex_iter_next(&it, &k, &v); i++) {
		if (i >= n || k != sorted[i] || v != (k ^ UINT64_C(0x5555555555555555))) {
			if (bad++ < 10)
				printf("# FAIL %s seed=%" PRIu64 ": iteration #%zu gives %#" PRIx64
				       ", want %#" PRIx64 "\n", name, seed, i, k, i < n ? sorted[i] : 0);
			break;
		}
	}
	if (i != n && bad++ < 10)
		printf("# FAIL %s seed=%" PRIu64 ": iteration stops after %zu keys\n", name, seed, i);
	printf("  full iteration %.2f s\n", now_sec() - t0);
	t0 = now_sec();
	for (i = 0; i < n; i++)
		if ((!alex_lookup(t, keys[i], &v) || v != (keys[i] ^ UINT64_C(0x5555555555555555))) &&
		    bad++ < 10)
			printf("# FAIL %s seed=%" PRIu64 ": lookup of %#" PRIx64 "\n", name, seed,
			       keys[i]);
	printf("  lookup of every key %.2f s  %.2f Mops/s\n", now_sec() - t0,
	       (double)n / (now_sec() - t0) / 1e6);
	print_tree(name, t);
	printf("%s: %s, %" PRIu64 " mismatches\n", name, bad ? "FAILED" : "passed", bad);
	g_failures += bad;
	alex_destroy(t);
	free(keys);
	free(sorted);
}

int main(int argc, char **argv)
{
	struct options o;
	alex_config small;
	double t0 = now_sec();

	parse_args(argc, argv, &o);
	printf("stress_alex: seed %" PRIu64 " (replay: --seed %" PRIu64 "), n %zu, insert-n %zu%s\n",
	       o.common.seed, o.common.seed, o.n, o.insert_n, o.common.smoke ? ", smoke" : "");
	fflush(stdout);
	/* Tiny limits: leaves of 256 slots, internal nodes of 16, so n/10 keys
	 * keep the tree restructuring all the time. */
	alex_config_init(&small);
	small.max_leaf_slots = 256;
	small.bulk_leaf_keys = 64;
	small.keys_per_slot = 8;
	small.max_fanout_bits = 4;
	for (int d = 0; d < DS_NDIST; d++) {
		if (o.common.dist >= 0 && o.common.dist != d)
			continue;
		run_diff(&o, d, o.n, NULL, "default");
		run_diff(&o, d, o.n / 10 > 1000 ? o.n / 10 : 1000, &small, "small");
	}
	if (o.common.dist < 0 || o.common.dist == DS_UNIFORM)
		run_insert_empty(&o, DS_UNIFORM, o.insert_n);
	if (o.common.dist < 0 || o.common.dist == DS_DEVICE)
		run_insert_empty(&o, DS_DEVICE, o.insert_n);
	printf("stress_alex: %s, seed %" PRIu64 ", %" PRIu64 " mismatches, %.1f s\n",
	       g_failures ? "FAILED" : "passed", o.common.seed, g_failures, now_sec() - t0);
	return g_failures ? 1 : 0;
}
