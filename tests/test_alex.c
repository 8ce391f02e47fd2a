/*
 * tests/test_alex.c — differential and edge-case tests of the ALEX index
 * (core/alex.h), run by make check.
 *
 * Most checks run the tree side by side with a plain ordered reference
 * (tests/lib/refmap.h) and compare every answer: return codes, payloads,
 * lower bounds, iterator positions, batch counts, sizes, and alex_check's
 * structural invariants after every phase.  Key sets come from the five
 * distributions of tests/lib/datasets.h.
 *
 * Three groups:
 *   edge/...   empty trees, n = 0, invalid input (-EINVAL leaves the tree
 *              as it was), a single key, extreme payloads, -ENOMEM paths;
 *   diff/...   the mixed-phase differential run for each distribution, once
 *              with the default configuration and once with tiny limits
 *              (alex_config) that force expansions, splits and root growth
 *              on small data — those cases assert, via alex_get_stats, that
 *              the structural paths really ran;
 *   shape/...  the shapes the public C++ ALEX is known to fail on, (a)-(f)
 *              of the issue, one named test each.
 *
 * Replay: every failure prints the case name, the seed and the operation.
 * OMEN_TEST_SEED=<n> (or "random") picks the seed; OMEN_TEST_ONLY=<text>
 * runs only the tests whose name contains <text>.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/alex.h"
#include "core/mem.h"
#include "tests/lib/datasets.h"
#include "tests/lib/refmap.h"
#include "tests/lib/tap.h"
#include "tests/lib/util.h"

#define DEFAULT_SEED UINT64_C(20240611)

static uint64_t g_seed;

/* Counters summed over every case run with a forcing configuration; the
 * end of the run asserts each structural path was taken at least once. */
static alex_stats g_forced;

/* ------------------------------------------------------------ helpers */

/* Tiny limits: leaves of at most 256 slots, 64 keys per bulk-loaded leaf,
 * internal nodes of at most 16 slots.  A few thousand keys already need
 * several levels, splits of both kinds and inner expansions. */
static alex_config cfg_small(void)
{
	alex_config c;

	alex_config_init(&c);
	c.max_leaf_slots = 256;
	c.bulk_leaf_keys = 64;
	c.keys_per_slot = 8;
	c.max_fanout_bits = 4;
	return c;
}

/* Between tiny and default: 1024-slot leaves, 64-slot internal nodes. */
static alex_config cfg_medium(void)
{
	alex_config c;

	alex_config_init(&c);
	c.max_leaf_slots = 1024;
	c.bulk_leaf_keys = 64;
	c.keys_per_slot = 16;
	c.max_fanout_bits = 6;
	return c;
}

static void diff_start(diff *d, const alex_config *cfg, const char *name,
                       const uint64_t *pool, size_t n)
{
	int rc = diff_init(d, cfg, name, g_seed, pool, n);

	if (rc != 0)
		bail_out("%s: alex_create returned %d", name, rc);
}

/* Check the structure and the size after a phase, and report the phase
 * as one TAP line (the details of any failure were printed already). */
static void phase(diff *d, uint64_t failures, const char *what)
{
	failures += diff_check(d, what);
	ok(failures == 0, "%s: %s", d->name, what);
}

static void show_stats(const char *name, const alex_tree *t)
{
	alex_stats s;

	alex_get_stats(t, &s);
	diag("%s: keys=%" PRIu64 " leaves=%" PRIu64 " inners=%" PRIu64 " depth=%u "
	     "bytes/key=%.1f exp=%" PRIu64 " contr=%" PRIu64 " side=%" PRIu64 " down=%" PRIu64
	     " innerexp=%" PRIu64 " rootgrow=%" PRIu64, name, s.keys, s.leaves, s.inners,
	     s.max_depth, s.keys ? (double)s.bytes / (double)s.keys : 0.0, s.expansions,
	     s.contractions, s.splits_sideways, s.splits_down, s.inner_expansions,
	     s.root_growths);
}

static alex_stats get_stats(const alex_tree *t)
{
	alex_stats s;

	alex_get_stats(t, &s);
	return s;
}

/* Add a forcing case's counters to the run total. */
static void add_forced(const alex_tree *t)
{
	alex_stats s = get_stats(t);

	g_forced.expansions += s.expansions;
	g_forced.contractions += s.contractions;
	g_forced.splits_sideways += s.splits_sideways;
	g_forced.splits_down += s.splits_down;
	g_forced.inner_expansions += s.inner_expansions;
	g_forced.root_growths += s.root_growths;
}

/* Keys of a tree, in iteration order, must be exactly want[0, n) (sorted)
 * with payload diff_payload(key, gen).  Returns mismatches (prints the
 * first few). */
static uint64_t compare_iteration(const char *name, const alex_tree *t, const uint64_t *want,
                                  size_t n, uint64_t gen)
{
	alex_iter it;
	uint64_t key, val, bad = 0;
	size_t i = 0;

	alex_iter_seek(t, 0, &it);
	while (alex_iter_next(&it, &key, &val)) {
		if (i >= n) {
			diag("FAIL %s seed=%" PRIu64 ": iteration yields extra key %#" PRIx64
			     " after %zu keys", name, g_seed, key, n);
			return bad + 1;
		}
		if (key != want[i] || val != diff_payload(key, gen)) {
			if (bad++ < 5)
				diag("FAIL %s seed=%" PRIu64 ": iteration #%zu gives %#" PRIx64 "=%#"
				     PRIx64 ", want %#" PRIx64 "=%#" PRIx64, name, g_seed, i, key, val,
				     want[i], diff_payload(want[i], gen));
			if (key != want[i])
				return bad;   /* out of step: the rest would all differ */
		}
		i++;
	}
	if (i != n) {
		diag("FAIL %s seed=%" PRIu64 ": iteration ends after %zu keys, want %zu", name,
		     g_seed, i, n);
		bad++;
	}
	return bad;
}

static bool tree_ok(const alex_tree *t, const char *name, const char *when)
{
	char msg[256] = "";

	if (alex_check(t, msg, sizeof(msg)) == 0)
		return true;
	diag("FAIL %s seed=%" PRIu64 ": alex_check %s: %s", name, g_seed, when, msg);
	return false;
}

/* ------------------------------------------------------------ refmap */

/*
 * The oracle is checked against the obvious flat sorted array (memmove
 * inserts) before it judges anything.  A small key domain makes hits,
 * updates and deletes of present keys common; blocks split and empty.
 */
static void test_refmap_selfcheck(void)
{
	enum { N = 60000, DOMAIN = 6000 };
	uint64_t *fk = xcalloc(DOMAIN, sizeof(*fk)), *fv = xcalloc(DOMAIN, sizeof(*fv));
	size_t fn = 0;
	uint64_t bad = 0;
	refmap m;
	ds_rng r;

	refmap_init(&m);
	ds_rng_seed(&r, case_seed(g_seed, "refmap"));
	for (size_t op = 0; op < N; op++) {
		/* Grow for the first half, then shrink: blocks split, then empty. */
		unsigned bias = op < N / 2 ? 70 : 30;
		uint64_t key = ds_rng_next(&r) % DOMAIN * UINT64_C(0x9e3779b97f4a7c1);
		size_t lo = 0, hi = fn;

		while (lo < hi) {
			size_t mid = (lo + hi) / 2;

			if (fk[mid] < key)
				lo = mid + 1;
			else
				hi = mid;
		}
		bool present = lo < fn && fk[lo] == key;

		if (ds_rng_next(&r) % 100 < bias) {
			int want = !present;

			if (!present) {
				memmove(fk + lo + 1, fk + lo, (fn - lo) * sizeof(*fk));
				memmove(fv + lo + 1, fv + lo, (fn - lo) * sizeof(*fv));
				fk[lo] = key;
				fn++;
			}
			fv[lo] = op;
			bad += refmap_put(&m, key, op) != want;
		} else {
			if (present) {
				memmove(fk + lo, fk + lo + 1, (fn - lo - 1) * sizeof(*fk));
				memmove(fv + lo, fv + lo + 1, (fn - lo - 1) * sizeof(*fv));
				fn--;
			}
			bad += refmap_del(&m, key) != (int)present;
		}
		if (op % 997 == 0) {
			/* Walk both; probe lower bounds around every key. */
			refmap_cursor c;
			uint64_t k, v;
			size_t i = 0;

			refmap_seek(&m, 0, &c);
			while (refmap_next(&m, &c, &k, &v)) {
				bad += i >= fn || k != fk[i] || v != fv[i];
				i++;
			}
			bad += i != fn || refmap_size(&m) != fn;
			for (i = 0; i < fn; i++) {
				bad += !refmap_lower_bound(&m, fk[i], &k, &v) || k != fk[i];
				if (fk[i] > 0)
					bad += !refmap_lower_bound(&m, fk[i] - 1, &k, &v) ||
					       (k != fk[i] && !(i > 0 && k == fk[i - 1]));
				if (fk[i] < UINT64_MAX) {
					bool more = refmap_lower_bound(&m, fk[i] + 1, &k, &v);

					bad += i + 1 < fn ? !more || k != fk[i + 1] : more;
				}
			}
		}
	}
	ok(bad == 0, "refmap agrees with a flat sorted array over %d ops (%" PRIu64 " mismatches)",
	   N, bad);
	refmap_free(&m);
	free(fk);
	free(fv);
}

/* -------------------------------------------------------------- edges */

static void test_edge_empty(void)
{
	static const uint64_t probes[] = { 0, 1, 12345, UINT64_C(1) << 63, UINT64_MAX - 1,
	                                   UINT64_MAX };
	alex_tree *t = NULL;
	alex_batch_result res;
	alex_op ops[3];
	alex_iter it;
	uint64_t k = 7, v = 7;
	bool all = true;

	alex_destroy(NULL); /* documented no-op */
	if (!ok(alex_create(NULL, &t) == 0 && t != NULL, "edge/empty: alex_create"))
		return;
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		all &= !alex_lookup(t, probes[i], &v);
		all &= alex_delete(t, probes[i]) == 0;
		all &= !alex_lower_bound(t, probes[i], &k, &v);
		alex_iter_seek(t, probes[i], &it);
		all &= !alex_iter_next(&it, &k, &v);
	}
	ok(all, "edge/empty: lookup, delete, lower_bound and seek find nothing");
	is_u64(alex_size(t), 0, "edge/empty: size 0");
	ok(tree_ok(t, "edge/empty", "on an empty tree"), "edge/empty: alex_check");

	memset(&res, 0xff, sizeof(res));
	is_int(alex_apply_batch(t, ops, 0, &res), 0, "edge/empty: empty batch");
	ok(res.inserted == 0 && res.updated == 0 && res.deleted == 0 && res.absent == 0,
	   "edge/empty: empty batch counts nothing");
	ops[0] = (alex_op){ .key = 0, .kind = ALEX_OP_DEL };
	ops[1] = (alex_op){ .key = 5, .kind = ALEX_OP_DEL };
	ops[2] = (alex_op){ .key = UINT64_MAX, .kind = ALEX_OP_DEL };
	is_int(alex_apply_batch(t, ops, 3, &res), 0, "edge/empty: batch of deletes");
	is_u64(res.absent, 3, "edge/empty: batch of deletes finds all absent");
	is_u64(alex_size(t), 0, "edge/empty: still empty after delete batch");
	is_int(alex_apply_batch(t, ops, 3, NULL), 0, "edge/empty: batch with res == NULL");
	ok(tree_ok(t, "edge/empty", "after delete batches"), "edge/empty: alex_check after batches");
	is_u64(get_stats(t).keys, 0, "edge/empty: stats count no keys");
	alex_destroy(t);
}

static void test_edge_bulk_zero(void)
{
	uint64_t keys[1000], vals[1000], v;
	alex_tree *t;
	bool all = true;

	if (alex_create(NULL, &t) != 0)
		bail_out("alex_create failed");
	is_int(alex_bulk_load(t, keys, vals, 0), 0, "edge/bulk0: bulk load of 0 keys");
	is_u64(alex_size(t), 0, "edge/bulk0: size 0");
	ok(!alex_lookup(t, 0, &v) && !alex_lower_bound(t, 0, &v, &v), "edge/bulk0: nothing found");
	ok(tree_ok(t, "edge/bulk0", "after bulk load of 0"), "edge/bulk0: alex_check");
	/* Still empty, so a real bulk load is legal. */
	for (size_t i = 0; i < 1000; i++) {
		keys[i] = 1000 + 3 * i;
		vals[i] = diff_payload(keys[i], 1);
	}
	is_int(alex_bulk_load(t, keys, vals, 1000), 0, "edge/bulk0: bulk load after n = 0");
	for (size_t i = 0; i < 1000; i++)
		all &= alex_lookup(t, keys[i], &v) && v == vals[i];
	ok(all, "edge/bulk0: every key found with its payload");
	ok(compare_iteration("edge/bulk0", t, keys, 1000, 1) == 0, "edge/bulk0: iteration");
	alex_destroy(t);
}

/* Bulk loads that must be refused, each on a fresh tree and all in a row
 * on one tree: -EINVAL, the tree empty and checkable, then a valid load. */
static void test_edge_bulk_invalid(void)
{
	enum { N = 10000 };
	uint64_t *keys = xcalloc(N, sizeof(*keys)), *vals = xcalloc(N, sizeof(*vals));
	alex_tree *shared;
	struct { const char *what; size_t n; size_t bad_at; int kind; } cases[] = {
		{ "two keys descending", 2, 1, 0 },
		{ "duplicate pair", 2, 1, 1 },
		{ "duplicate at the very end", N, N - 1, 1 },
		{ "swap in the middle", N, N / 2, 0 },
		{ "swap at the start", N, 1, 0 },
		{ "duplicate at the start", N, 1, 1 },
		{ "all descending", N, 0, 2 },
	};

	if (alex_create(NULL, &shared) != 0)
		bail_out("alex_create failed");
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		size_t n = cases[c].n;
		alex_tree *t;
		uint64_t v;

		for (size_t i = 0; i < n; i++) {
			keys[i] = cases[c].kind == 2 ? 10 * (n - i) : 10 * (i + 1);
			vals[i] = diff_payload(keys[i], 1);
		}
		if (cases[c].kind == 0) {
			uint64_t tmp = keys[cases[c].bad_at];

			keys[cases[c].bad_at] = keys[cases[c].bad_at - 1];
			keys[cases[c].bad_at - 1] = tmp;
		} else if (cases[c].kind == 1) {
			keys[cases[c].bad_at] = keys[cases[c].bad_at - 1];
		}
		if (alex_create(NULL, &t) != 0)
			bail_out("alex_create failed");
		is_int(alex_bulk_load(t, keys, vals, n), -EINVAL, "edge/bulk-invalid: %s: -EINVAL",
		       cases[c].what);
		ok(alex_size(t) == 0 && !alex_lookup(t, keys[0], &v) &&
		   !alex_lower_bound(t, 0, &v, &v) && tree_ok(t, "edge/bulk-invalid", cases[c].what),
		   "edge/bulk-invalid: %s: tree left empty", cases[c].what);
		is_int(alex_insert(t, 42, 4242), 1, "edge/bulk-invalid: %s: tree usable after",
		       cases[c].what);
		ok(alex_lookup(t, 42, &v) && v == 4242 && alex_size(t) == 1,
		   "edge/bulk-invalid: %s: inserted key found", cases[c].what);
		alex_destroy(t);
		is_int(alex_bulk_load(shared, keys, vals, n), -EINVAL,
		       "edge/bulk-invalid: %s: -EINVAL on the reused tree", cases[c].what);
	}
	/* After all those refusals the shared tree takes a valid load. */
	for (size_t i = 0; i < N; i++) {
		keys[i] = 7 + 5 * (uint64_t)i;
		vals[i] = diff_payload(keys[i], 1);
	}
	ok(alex_size(shared) == 0 && tree_ok(shared, "edge/bulk-invalid", "after refusals"),
	   "edge/bulk-invalid: reused tree still empty");
	is_int(alex_bulk_load(shared, keys, vals, N), 0, "edge/bulk-invalid: valid load accepted");
	ok(compare_iteration("edge/bulk-invalid", shared, keys, N, 1) == 0,
	   "edge/bulk-invalid: valid load iterates correctly");
	alex_destroy(shared);
	free(keys);
	free(vals);
}

static void test_edge_bulk_nonempty(void)
{
	uint64_t keys[100], vals[100], v;
	alex_tree *t;

	for (size_t i = 0; i < 100; i++) {
		keys[i] = 100 + i;
		vals[i] = diff_payload(keys[i], 1);
	}
	/* Non-empty by insert. */
	if (alex_create(NULL, &t) != 0)
		bail_out("alex_create failed");
	alex_insert(t, 5, diff_payload(5, 1));
	is_int(alex_bulk_load(t, keys, vals, 100), -EINVAL, "edge/bulk-nonempty: after an insert");
	ok(alex_size(t) == 1 && alex_lookup(t, 5, &v) && v == diff_payload(5, 1) &&
	   !alex_lookup(t, 100, &v) && tree_ok(t, "edge/bulk-nonempty", "refused load"),
	   "edge/bulk-nonempty: tree unchanged");
	alex_destroy(t);
	/* Non-empty by a previous bulk load. */
	if (alex_create(NULL, &t) != 0)
		bail_out("alex_create failed");
	is_int(alex_bulk_load(t, keys, vals, 50), 0, "edge/bulk-nonempty: first load");
	is_int(alex_bulk_load(t, keys + 50, vals + 50, 50), -EINVAL,
	       "edge/bulk-nonempty: second load refused");
	ok(compare_iteration("edge/bulk-nonempty", t, keys, 50, 1) == 0 &&
	   tree_ok(t, "edge/bulk-nonempty", "second load"), "edge/bulk-nonempty: tree unchanged");
	alex_destroy(t);
}

/* A tree emptied by deletes is empty: a bulk load must be accepted and
 * must replace whatever structure the inserts left behind. */
static void test_edge_bulk_emptied(void)
{
	enum { N = 5000 };
	alex_config small = cfg_small();
	uint64_t *keys = xcalloc(N, sizeof(*keys)), *vals = xcalloc(N, sizeof(*vals));
	alex_tree *t;
	bool all = true;

	if (alex_create(&small, &t) != 0)
		bail_out("alex_create failed");
	ds_generate(DS_UNIFORM, case_seed(g_seed, "edge/bulk-emptied"), keys, N);
	for (size_t i = 0; i < N; i++)
		all &= alex_insert(t, keys[i], 1) == 1;
	for (size_t i = 0; i < N; i++)
		all &= alex_delete(t, keys[i]) == 1;
	ok(all && alex_size(t) == 0 && tree_ok(t, "edge/bulk-emptied", "after deleting all"),
	   "edge/bulk-emptied: %d keys inserted and deleted", N);
	for (size_t i = 0; i < N; i++) {
		keys[i] = UINT64_C(1) << 40 | (uint64_t)i << 8;
		vals[i] = diff_payload(keys[i], 1);
	}
	is_int(alex_bulk_load(t, keys, vals, N), 0, "edge/bulk-emptied: bulk load accepted");
	ok(tree_ok(t, "edge/bulk-emptied", "after the bulk load") &&
	   compare_iteration("edge/bulk-emptied", t, keys, N, 1) == 0 && alex_size(t) == N,
	   "edge/bulk-emptied: tree holds exactly the loaded keys");
	alex_destroy(t);
	free(keys);
	free(vals);
}

/* Out-of-order batches are refused whole, wherever the disorder is, even
 * when the ops before it would have been valid. */
static void test_edge_batch_invalid(void)
{
	enum { N = 5000 };
	uint64_t *pool = xcalloc(N, sizeof(*pool));
	alex_op ops[64];
	uint64_t fails = 0;
	diff d;

	ds_generate(DS_UNIFORM, case_seed(g_seed, "edge/batch-invalid"), pool, N);
	diff_start(&d, NULL, "edge/batch-invalid", pool, N);
	fails += diff_bulk_load(&d, N / 2);
	for (int where = 0; where < 3; where++) {
		size_t at = where == 0 ? 1 : where == 1 ? 32 : 63;
		alex_batch_result res;

		for (size_t i = 0; i < 64; i++) {
			/* Mostly new keys, so partial application would show. */
			ops[i].key = i % 4 ? pool[N / 2 + 64 * (size_t)where + i] : diff_pick_present(&d);
			ops[i].kind = i % 5 == 4 ? ALEX_OP_DEL : ALEX_OP_PUT;
			ops[i].payload = diff_payload(ops[i].key, 99);
		}
		for (size_t i = 1; i < 64; i++) /* insertion sort */
			for (size_t j = i; j > 0 && ops[j - 1].key > ops[j].key; j--) {
				alex_op tmp = ops[j];

				ops[j] = ops[j - 1];
				ops[j - 1] = tmp;
			}
		if (ops[at - 1].key == ops[at].key)
			ops[at].key++;
		alex_op tmp = ops[at];

		ops[at] = ops[at - 1];
		ops[at - 1] = tmp;
		is_int(alex_apply_batch(d.t, ops, 64, &res), -EINVAL,
		       "edge/batch-invalid: disorder at op %zu refused", at);
		fails += diff_iterate(&d) + diff_check(&d, "refused batch");
	}
	ok(fails == 0, "edge/batch-invalid: tree unchanged by refused batches");
	/* Equal adjacent keys are legal. */
	ops[0] = (alex_op){ .key = pool[N - 1], .payload = 1, .kind = ALEX_OP_PUT };
	ops[1] = (alex_op){ .key = pool[N - 1], .payload = 2, .kind = ALEX_OP_PUT };
	ok(diff_apply_batch(&d, ops, 2) == 0 && diff_check(&d, "dup batch") == 0,
	   "edge/batch-invalid: equal keys accepted, later op wins");
	diff_destroy(&d);
	free(pool);
}

/* One key, loaded in bulk or inserted, at every interesting place in the
 * key space. */
static void test_edge_single(void)
{
	static const uint64_t where[] = { 0, 1, 12345678, UINT64_C(1) << 63, UINT64_MAX - 1,
	                                  UINT64_MAX };

	for (size_t w = 0; w < sizeof(where) / sizeof(where[0]); w++) {
		for (int how = 0; how < 2; how++) {
			uint64_t key = where[w], pay = diff_payload(key, 1), k = 0, v = 0;
			alex_tree *t;
			alex_iter it;
			bool all = true;

			if (alex_create(NULL, &t) != 0)
				bail_out("alex_create failed");
			if (how == 0)
				all &= alex_bulk_load(t, &key, &pay, 1) == 0;
			else
				all &= alex_insert(t, key, pay) == 1;
			all &= alex_size(t) == 1;
			all &= alex_lookup(t, key, &v) && v == pay;
			all &= key == 0 || !alex_lookup(t, key - 1, &v);
			all &= key == UINT64_MAX || !alex_lookup(t, key + 1, &v);
			all &= alex_lower_bound(t, 0, &k, &v) && k == key && v == pay;
			all &= alex_lower_bound(t, key, &k, &v) && k == key;
			all &= key == UINT64_MAX || !alex_lower_bound(t, key + 1, &k, &v);
			alex_iter_seek(t, 0, &it);
			all &= alex_iter_next(&it, &k, &v) && k == key && v == pay;
			all &= !alex_iter_next(&it, &k, &v);
			alex_iter_seek(t, key, &it);
			all &= alex_iter_next(&it, &k, &v) && k == key;
			all &= !alex_iter_next(&it, &k, &v);
			if (key < UINT64_MAX) {
				alex_iter_seek(t, key + 1, &it);
				all &= !alex_iter_next(&it, &k, &v);
			}
			all &= tree_ok(t, "edge/single", "with one key");
			all &= alex_insert(t, key, pay + 1) == 0;
			all &= alex_lookup(t, key, &v) && v == pay + 1;
			all &= alex_delete(t, key) == 1;
			all &= alex_delete(t, key) == 0;
			all &= alex_size(t) == 0 && !alex_lookup(t, key, &v);
			all &= !alex_lower_bound(t, 0, &k, &v);
			all &= tree_ok(t, "edge/single", "after deleting the key");
			all &= alex_insert(t, key, pay) == 1 && alex_lookup(t, key, &v) && v == pay;
			ok(all, "edge/single: key %#" PRIx64 " %s", key,
			   how == 0 ? "bulk loaded" : "inserted");
			alex_destroy(t);
		}
	}
}

/* Payloads are opaque words: 0 and UINT64_MAX must survive every path
 * (a tree that used a payload value as a marker would lose them). */
static void test_edge_payloads(void)
{
	enum { N = 3000 };
	static const uint64_t special[] = { 0, UINT64_MAX, 1, UINT64_MAX - 1 };
	uint64_t *keys = xcalloc(N, sizeof(*keys)), *vals = xcalloc(N, sizeof(*vals));
	alex_config small = cfg_small();

	for (int c = 0; c < 2; c++) {
		const char *name = c ? "edge/payloads/small" : "edge/payloads/default";
		alex_tree *t;
		alex_op ops[N / 2];
		uint64_t k, v, bad = 0;
		alex_iter it;
		size_t i;

		if (alex_create(c ? &small : NULL, &t) != 0)
			bail_out("alex_create failed");
		for (i = 0; i < N; i++) {
			keys[i] = (uint64_t)i * 1000003;
			vals[i] = special[i % 4];
		}
		is_int(alex_bulk_load(t, keys, vals, N / 2), 0, "%s: bulk load", name);
		for (i = N / 2; i < N; i++)  /* inserts past the loaded range */
			bad += alex_insert(t, keys[i], vals[i]) != 1;
		for (i = 0; i < N; i++)
			bad += !alex_lookup(t, keys[i], &v) || v != vals[i];
		alex_iter_seek(t, 0, &it);
		for (i = 0; alex_iter_next(&it, &k, &v); i++)
			bad += i >= N || k != keys[i] || v != vals[i];
		bad += i != N;
		for (i = 0; i < N; i += 7)
			bad += !alex_lower_bound(t, keys[i] - (i > 0), &k, &v) || k != keys[i] ||
			       v != vals[i];
		ok(bad == 0 && tree_ok(t, name, "special payloads"),
		   "%s: payloads 0, 1, MAX-1, MAX kept by load, insert, lookup, iteration", name);
		/* Rotate payloads by update and by batch. */
		bad = 0;
		for (i = 0; i < N / 2; i++)
			bad += alex_insert(t, keys[i], special[(i + 1) % 4]) != 0;
		for (i = N / 2; i < N; i++)
			ops[i - N / 2] = (alex_op){ .key = keys[i], .payload = special[(i + 1) % 4],
			                            .kind = ALEX_OP_PUT };
		alex_batch_result res;

		bad += alex_apply_batch(t, ops, N / 2, &res) != 0 || res.updated != N / 2;
		for (i = 0; i < N; i++)
			bad += !alex_lookup(t, keys[i], &v) || v != special[(i + 1) % 4];
		ok(bad == 0 && alex_size(t) == N && tree_ok(t, name, "payload updates"),
		   "%s: payload updates by insert and batch", name);
		alex_destroy(t);
	}
	free(keys);
	free(vals);
}

/*
 * -ENOMEM paths (core/mem.h fault injection): a failing insert, delete,
 * batch or bulk load must leave the tree as documented — unchanged (insert,
 * bulk load), the key still deleted (delete), or ops applied up to the
 * failing node (batch) — and alex_check must still pass.  Tiny limits make
 * nearly every other insert allocate.
 */
static void test_edge_enomem(void)
{
	enum { N = 40000 };
	alex_config small = cfg_small();
	uint64_t *pool = xcalloc(N, sizeof(*pool));
	uint64_t fails = 0, hits_ins = 0, hits_del = 0, hits_batch = 0, hits_bulk = 0;
	alex_op ops[256];
	diff d;
	ds_rng r;

	ds_rng_seed(&r, case_seed(g_seed, "edge/enomem"));
	ds_generate(DS_LOGNORMAL, case_seed(g_seed, "edge/enomem"), pool, N);
	diff_start(&d, &small, "edge/enomem", pool, N);

	/* Bulk load: fail the k-th allocation for k = 0, 1, ... until it
	 * succeeds; each failure must leave an empty, usable tree. */
	{
		uint64_t *keys = xcalloc(N / 4, sizeof(*keys)), *vals = xcalloc(N / 4, sizeof(*vals));
		int rc = -ENOMEM;

		memcpy(keys, pool, N / 4 * sizeof(*keys));
		ds_sort(keys, N / 4);
		for (size_t i = 0; i < N / 4; i++)
			vals[i] = diff_payload(keys[i], 0);
		for (long k = 0; k < 100000 && rc == -ENOMEM; k += 1 + k / 8) {
			omem_fail_after(k);
			rc = alex_bulk_load(d.t, keys, vals, N / 4);
			omem_fail_after(-1);
			if (rc == -ENOMEM) {
				hits_bulk++;
				fails += diff_check(&d, "bulk load -ENOMEM");
			}
		}
		is_int(rc, 0, "edge/enomem: bulk load succeeds once allocations do");
		if (rc == 0)
			refmap_load(&d.ref, keys, vals, N / 4);
		d.pool_next = N / 4;
		free(keys);
		free(vals);
	}
	for (int round = 0; round < 4000; round++) {
		uint64_t key;
		int rc;

		switch (ds_rng_next(&r) % 4) {
		case 0:
		case 1:
			key = diff_pick_new(&d);
			omem_fail_after((long)(ds_rng_next(&r) % 3));
			rc = alex_insert(d.t, key, diff_payload(key, 5));
			omem_fail_after(-1);
			if (rc == -ENOMEM)
				hits_ins++;
			else if (rc != refmap_put(&d.ref, key, diff_payload(key, 5)))
				diff_fail(&d, "insert %#" PRIx64 " under injection returned %d", key, rc);
			diff_op_lookup(&d, key);
			break;
		case 2:
			key = diff_pick_present(&d);
			omem_fail_after((long)(ds_rng_next(&r) % 3));
			rc = alex_delete(d.t, key);
			omem_fail_after(-1);
			if (rc == -ENOMEM)
				hits_del++;
			if (rc != 1 && rc != -ENOMEM)
				diff_fail(&d, "delete %#" PRIx64 " under injection returned %d", key, rc);
			refmap_del(&d.ref, key);
			diff_op_lookup(&d, key);
			break;
		default: {
			size_t len = diff_make_batch(&d, ops, 256);
			alex_batch_result res = { 0, 0, 0, 0 };
			uint64_t applied;
			size_t i;

			omem_fail_after((long)(ds_rng_next(&r) % 4));
			rc = alex_apply_batch(d.t, ops, len, &res);
			omem_fail_after(-1);
			if (rc != 0 && rc != -ENOMEM) {
				diff_fail(&d, "batch under injection returned %d", rc);
				break;
			}
			/* The ops applied are a prefix of the run; res counts them. */
			applied = res.inserted + res.updated + res.deleted + res.absent;
			if (rc == -ENOMEM)
				hits_batch++;
			else if (applied != len)
				diff_fail(&d, "batch of %zu ops counted %" PRIu64, len, applied);
			for (i = 0; i < len && i < applied; i++) {
				if (ops[i].kind == ALEX_OP_PUT)
					refmap_put(&d.ref, ops[i].key, ops[i].payload);
				else
					refmap_del(&d.ref, ops[i].key);
			}
			break;
		}
		}
		if (round % 500 == 499)
			fails += diff_iterate(&d) + diff_check(&d, "-ENOMEM round");
	}
	fails += diff_iterate(&d) + diff_lookup_all(&d) + diff_check(&d, "-ENOMEM rounds");
	ok(fails == 0 && d.failures == 0, "edge/enomem: tree consistent after injected failures");
	diag("edge/enomem: injected failures hit bulk load %" PRIu64 ", insert %" PRIu64
	     ", delete %" PRIu64 ", batch %" PRIu64 " times", hits_bulk, hits_ins, hits_del,
	     hits_batch);
	ok(hits_bulk > 0 && hits_ins > 0 && hits_batch > 0,
	   "edge/enomem: injection reached bulk load, insert and batch");
	diff_destroy(&d);
	free(pool);
}

/* ------------------------------------------------------- differential */

/*
 * The standard mixed-phase run: bulk load half the keys, then inserts
 * (new and existing), deletes (present and absent), lookups, lower bounds,
 * a full iteration, seeks, batches, a random mix, the rest of the keys, a
 * delete-heavy phase (contractions) and a final full comparison.
 */
static void diff_run(diff *d, size_t n, size_t nbulk)
{
	size_t nbatches = 100 + n / 2000;

	phase(d, diff_bulk_load(d, nbulk), nbulk == n / 2 ? "bulk load half" : "bulk load an eighth");
	phase(d, diff_lookup_all(d), "lookup of every loaded key and its neighbours");
	phase(d, diff_inserts(d, n / 4, 20), "inserts, 20% existing");
	phase(d, diff_iterate(d), "iteration after inserts");
	phase(d, diff_deletes(d, n / 8, 70), "deletes, 70% present");
	phase(d, diff_lookups(d, n / 4), "lookups, present and absent");
	phase(d, diff_lower_bounds(d, n / 16), "lower bounds incl. 0 and UINT64_MAX");
	phase(d, diff_iterate(d), "full iteration");
	phase(d, diff_seeks(d, 2000, 8), "seek then next");
	phase(d, diff_batches(d, nbatches, 256), "sorted batches with duplicates");
	phase(d, diff_mixed(d, n / 4), "mixed operations");
	phase(d, diff_inserts(d, d->pool_n - d->pool_next, 0), "insert the rest of the keys");
	phase(d, diff_deletes(d, n / 2, 90), "delete about half");
	phase(d, diff_iterate(d) + diff_lookup_all(d) + diff_seeks(d, 500, 64),
	      "final full comparison");
}

static void test_diff(enum ds_dist dist, size_t n, const alex_config *cfg, const char *cfgname,
                      bool forcing)
{
	char name[80];
	uint64_t *pool = xcalloc(n, sizeof(*pool));
	double t0 = now_sec();
	diff d;

	snprintf(name, sizeof(name), "diff/%s/%s/%zu", ds_name(dist), cfgname, n);
	ds_generate(dist, case_seed(g_seed, name), pool, n);
	diff_start(&d, cfg, name, pool, n);
	/* Forcing cases load less, so that inserts take leaves well past their
	 * bulk-loaded size and into splits. */
	diff_run(&d, n, forcing ? n / 8 : n / 2);
	show_stats(name, d.t);
	if (forcing) {
		alex_stats s = get_stats(d.t);

		ok(s.expansions > 0, "%s: leaf expansions happened (%" PRIu64 ")", name,
		   s.expansions);
		ok(s.splits_sideways + s.splits_down > 0,
		   "%s: leaf splits happened (%" PRIu64 " sideways, %" PRIu64 " down)", name,
		   s.splits_sideways, s.splits_down);
		ok(s.max_depth >= 2, "%s: tree has several internal levels (%u)", name, s.max_depth);
		add_forced(d.t);
	}
	diag("%s: %.2f s", name, now_sec() - t0);
	diff_destroy(&d);
	free(pool);
}

/* -------------------------------------------------------------- shapes */

/* (a) Order after long insert/delete mixes: a million mixed operations on
 * tiny limits (constant restructuring), then the whole tree must iterate
 * strictly ascending and equal to the reference. */
static void test_shape_a(void)
{
	enum { N = 700000, OPS = 1000000 };
	alex_config small = cfg_small();
	uint64_t *pool = xcalloc(N, sizeof(*pool));
	double t0 = now_sec();
	diff d;

	ds_generate(DS_LOGNORMAL, case_seed(g_seed, "shape/a"), pool, N);
	diff_start(&d, &small, "shape/a/mixed-order", pool, N);
	phase(&d, diff_bulk_load(&d, 100000), "bulk load 100K lognormal");
	for (int part = 0; part < 4; part++) {
		char what[64];

		snprintf(what, sizeof(what), "mixed ops %d..%d of 1M", part * OPS / 4,
		         (part + 1) * OPS / 4);
		phase(&d, diff_mixed(&d, OPS / 4) + diff_iterate(&d), what);
	}
	phase(&d, diff_iterate(&d) + diff_lookup_all(&d), "strictly ascending, equal to reference");
	show_stats(d.name, d.t);
	add_forced(d.t);
	diag("%s: %.2f s", d.name, now_sec() - t0);
	diff_destroy(&d);
	free(pool);
}

/* (b) Bulk load of more than 600,000 lognormal keys, then every key (and
 * its absent neighbours) looked up. */
static void test_shape_b(void)
{
	enum { N = 1000000 };
	uint64_t *pool = xcalloc(N, sizeof(*pool));
	double t0 = now_sec();
	alex_config medium = cfg_medium();

	ds_generate(DS_LOGNORMAL, case_seed(g_seed, "shape/b"), pool, N);
	for (int c = 0; c < 2; c++) {
		size_t n = c ? 650000 : N;
		char name[64];
		diff d;

		snprintf(name, sizeof(name), "shape/b/lognormal-bulk/%s/%zu", c ? "medium" : "default",
		         n);
		diff_start(&d, c ? &medium : NULL, name, pool, n);
		phase(&d, diff_bulk_load(&d, n), "bulk load");
		phase(&d, diff_lookup_all(&d), "lookup of every key and its neighbours");
		phase(&d, diff_iterate(&d) + diff_lower_bounds(&d, 20000), "iteration and lower bounds");
		show_stats(name, d.t);
		diff_destroy(&d);
	}
	diag("shape/b: %.2f s", now_sec() - t0);
	free(pool);
}

/* (c) Erase of present keys: delete every key in random order — each delete
 * returns 1, the key is gone right after, the size counts down to 0 — then
 * insert them all again.  Forcing cases first grow the tree by single
 * inserts, so that leaves are large and must contract as they empty. */
static void test_shape_c(enum ds_dist dist, size_t n, const alex_config *cfg, const char *cfgname,
                         bool forcing)
{
	char name[80];
	uint64_t *pool = xcalloc(n, sizeof(*pool)), *order = xcalloc(n, sizeof(*order));
	uint64_t size_bad = 0;
	double t0 = now_sec();
	diff d;

	snprintf(name, sizeof(name), "shape/c/erase-all/%s/%s/%zu", ds_name(dist), cfgname, n);
	ds_generate(dist, case_seed(g_seed, name), pool, n);
	memcpy(order, pool, n * sizeof(*order));
	ds_shuffle(order, n, case_seed(g_seed, name) + 1);
	diff_start(&d, cfg, name, pool, n);
	if (forcing) {
		phase(&d, diff_bulk_load(&d, n / 4), "bulk load a quarter");
		phase(&d, diff_inserts(&d, n - n / 4, 0), "insert the rest one at a time");
	} else {
		phase(&d, diff_bulk_load(&d, n), "bulk load");
	}
	for (int part = 0; part < 4; part++) {
		for (size_t i = part * n / 4; i < (part + 1) * n / 4; i++) {
			diff_op_delete(&d, order[i]);  /* compares rc (1) and the lookup after */
			if (alex_size(d.t) != n - i - 1 && size_bad++ < 5)
				diff_fail(&d, "size %" PRIu64 " after %zu deletes, want %zu",
				          alex_size(d.t), i + 1, n - i - 1);
		}
		phase(&d, diff_iterate(&d), part == 3 ? "deleted every key" : "deleted another quarter");
	}
	is_u64(alex_size(d.t), 0, "%s: size reaches 0", name);
	phase(&d, diff_lower_bounds(&d, 100) + diff_seeks(&d, 10, 2), "empty after erasing");
	if (forcing) {
		alex_stats s = get_stats(d.t);

		ok(s.contractions > 0, "%s: leaves contracted (%" PRIu64 ")", name, s.contractions);
		add_forced(d.t);
	}
	/* Everything back, one at a time, in a different order. */
	ds_shuffle(order, n, case_seed(g_seed, name) + 2);
	for (size_t i = 0; i < n; i++)
		diff_op_insert(&d, order[i]);
	phase(&d, diff_iterate(&d) + diff_lookup_all(&d), "re-inserted every key");
	show_stats(name, d.t);
	diag("%s: %.2f s", name, now_sec() - t0);
	diff_destroy(&d);
	free(pool);
	free(order);
}

/* (d) Keys inserted one at a time into an empty tree, no bulk load.  The
 * expected content is known (the key set), so no reference map is needed:
 * every insert returns 1 and the tree equals the sorted key set. */
static void test_shape_d(enum ds_dist dist, size_t n, const alex_config *cfg, const char *cfgname,
                         bool forcing)
{
	char name[80];
	uint64_t *keys = xcalloc(n, sizeof(*keys)), *sorted = xcalloc(n, sizeof(*sorted));
	uint64_t bad = 0, v;
	double t0 = now_sec();
	alex_tree *t;
	bool checks = true;

	snprintf(name, sizeof(name), "shape/d/insert-empty/%s/%s/%zu", ds_name(dist), cfgname, n);
	ds_generate(dist, case_seed(g_seed, name), keys, n);
	if (alex_create(cfg, &t) != 0)
		bail_out("alex_create failed");
	for (size_t i = 0; i < n; i++) {
		int rc = alex_insert(t, keys[i], diff_payload(keys[i], 1));

		if (rc != 1 && bad++ < 5)
			diag("FAIL %s seed=%" PRIu64 ": insert #%zu of %#" PRIx64 " returned %d", name,
			     g_seed, i, keys[i], rc);
		if (i % (n / 8) == n / 8 - 1) {
			checks &= tree_ok(t, name, "during inserts");
			checks &= alex_size(t) == i + 1;
		}
	}
	ok(bad == 0, "%s: every insert of a new key returned 1", name);
	ok(checks && tree_ok(t, name, "after inserts"), "%s: alex_check and size during inserts",
	   name);
	is_u64(alex_size(t), n, "%s: size", name);
	memcpy(sorted, keys, n * sizeof(*sorted));
	ds_sort(sorted, n);
	ok(compare_iteration(name, t, sorted, n, 1) == 0, "%s: iteration equals the sorted keys",
	   name);
	bad = 0;
	for (size_t i = 0; i < n; i++) {
		if (!alex_lookup(t, keys[i], &v) || v != diff_payload(keys[i], 1)) {
			if (bad++ < 5)
				diag("FAIL %s seed=%" PRIu64 ": lookup of %#" PRIx64 " (insert #%zu)", name,
				     g_seed, keys[i], i);
		}
	}
	/* The key right above each key, when it is a gap, must not be found. */
	for (size_t i = 0; i + 1 < n; i++)
		if (sorted[i] + 1 != sorted[i + 1] && alex_lookup(t, sorted[i] + 1, &v) && bad++ < 5)
			diag("FAIL %s seed=%" PRIu64 ": absent %#" PRIx64 " found", name, g_seed,
			     sorted[i] + 1);
	ok(bad == 0, "%s: every key found with its payload, gaps absent", name);
	show_stats(name, t);
	if (forcing) {
		alex_stats s = get_stats(t);

		ok(s.expansions > 0 && s.splits_sideways + s.splits_down > 0,
		   "%s: expansions and splits happened", name);
		add_forced(t);
	}
	diag("%s: %.2f s", name, now_sec() - t0);
	alex_destroy(t);
	free(keys);
	free(sorted);
}

/* The extreme keys used by (e): runs at both ends of the key space and
 * around 2^63 and 2^32. */
static size_t extreme_keys(uint64_t *out)
{
	size_t n = 0;

	for (uint64_t i = 0; i < 64; i++) {
		out[n++] = i;
		out[n++] = UINT64_MAX - i;
		out[n++] = (UINT64_C(1) << 63) - 32 + i;
		if (i < 32)
			out[n++] = (UINT64_C(1) << 32) - 16 + i;
	}
	return n;
}

/* Keys at every power-of-two distance below lo and above hi (those that do
 * not wrap): after the root grows, they land in each of the new empty
 * leaves it made, so leaf order and routing of every one is exercised. */
static size_t log_spaced_keys(uint64_t lo, uint64_t hi, uint64_t *out)
{
	size_t n = 0;

	for (unsigned k = 0; k < 64; k++) {
		uint64_t d = UINT64_C(1) << k;

		if (lo >= d)
			out[n++] = lo - d;
		if (UINT64_MAX - hi >= d)
			out[n++] = hi + d;
	}
	return n;
}

/*
 * core/alex.c keeps an internal root's domain at the smallest aligned
 * power-of-two block holding every key it has seen (never larger), so a
 * key outside the smallest such block over all keys seen so far must grow
 * the root.  This counts the keys of an insert sequence that force growth,
 * given the smallest (*lo) and largest (*hi) key seen before it, and
 * updates both.
 */
static uint64_t forced_growths(const uint64_t *keys, size_t n, uint64_t *lo, uint64_t *hi)
{
	uint64_t forced = 0;

	for (size_t i = 0; i < n; i++) {
		uint64_t x = *lo ^ *hi, k = keys[i];
		unsigned bits = x ? 64u - (unsigned)__builtin_clzll(x) : 0;

		if (bits < 64) {
			uint64_t base = *lo & ~((UINT64_C(1) << bits) - 1);

			forced += k < base || k - base >= (UINT64_C(1) << bits);
		}
		if (k < *lo)
			*lo = k;
		if (k > *hi)
			*hi = k;
	}
	return forced;
}

/* Smallest and largest of keys[0, n), n > 0. */
static void min_max(const uint64_t *keys, size_t n, uint64_t *lo, uint64_t *hi)
{
	*lo = *hi = keys[0];
	for (size_t i = 1; i < n; i++) {
		if (keys[i] < *lo)
			*lo = keys[i];
		if (keys[i] > *hi)
			*hi = keys[i];
	}
}

/* (e) Keys 0 and UINT64_MAX and clusters of extreme outliers: into an
 * empty tree, after a bulk load, via batches, and bulk loaded themselves,
 * each with default and tiny limits. */
static void test_shape_e(void)
{
	enum { NE_MAX = 256, NL_MAX = 128, NT = 20000 };
	alex_config small = cfg_small();
	uint64_t ext[NE_MAX], k, v, lo, hi;
	size_t ne = extreme_keys(ext);
	uint64_t *pool = xcalloc(NT + NE_MAX + NL_MAX, sizeof(*pool));

	for (int c = 0; c < 2; c++) {
		const alex_config *cfg = c ? &small : NULL;
		const char *cn = c ? "small" : "default";
		char name[80];
		alex_iter it;
		size_t nl;
		diff d;

		/* Into an empty tree, one at a time. */
		snprintf(name, sizeof(name), "shape/e/extremes-empty/%s", cn);
		memcpy(pool, ext, ne * sizeof(*pool));
		ds_shuffle(pool, ne, case_seed(g_seed, name));
		diff_start(&d, cfg, name, pool, ne);
		phase(&d, diff_inserts(&d, ne, 0), "insert extreme keys one at a time");
		ok(alex_lower_bound(d.t, 0, &k, &v) && k == 0, "%s: lower_bound(0) is 0", name);
		ok(alex_lower_bound(d.t, UINT64_MAX, &k, &v) && k == UINT64_MAX,
		   "%s: lower_bound(MAX) is MAX", name);
		alex_iter_seek(d.t, UINT64_MAX, &it);
		ok(alex_iter_next(&it, &k, &v) && k == UINT64_MAX && !alex_iter_next(&it, &k, &v),
		   "%s: seek(MAX) yields MAX then ends", name);
		diff_op_delete(&d, UINT64_MAX);
		ok(!alex_lower_bound(d.t, UINT64_MAX, &k, &v), "%s: lower_bound(MAX) after its delete",
		   name);
		phase(&d, diff_lower_bounds(&d, 2000) + diff_seeks(&d, 500, 8) + diff_iterate(&d) +
		          diff_lookup_all(&d), "lower bounds, seeks, iteration at the extremes");
		add_forced(d.t);
		diff_destroy(&d);

		/* After a bulk load of timestamps: the domain must widen both
		 * ways, by single inserts; then keys at every power-of-two
		 * distance from the loaded range fill the leaves growth made. */
		snprintf(name, sizeof(name), "shape/e/extremes-after-bulk/%s", cn);
		ds_generate(DS_TIMESTAMPS, case_seed(g_seed, name), pool, NT);
		memcpy(pool + NT, ext, ne * sizeof(*pool));
		ds_shuffle(pool + NT, ne, case_seed(g_seed, name));
		min_max(pool, NT, &lo, &hi);
		nl = log_spaced_keys(lo, hi, pool + NT + ne);
		diff_start(&d, cfg, name, pool, NT + ne + nl);
		phase(&d, diff_bulk_load(&d, NT), "bulk load timestamps");
		bool inner_root = get_stats(d.t).inners > 0;
		phase(&d, diff_inserts(&d, ne, 0), "insert extreme keys one at a time");
		ok(!inner_root || get_stats(d.t).root_growths > 0, "%s: root domain widened", name);
		phase(&d, diff_inserts(&d, nl, 0), "insert keys at power-of-two distances");
		phase(&d, diff_lower_bounds(&d, 2000) + diff_seeks(&d, 500, 8) + diff_iterate(&d) +
		          diff_lookup_all(&d), "lower bounds, seeks, iteration at the extremes");
		phase(&d, diff_mixed(&d, 20000), "mixed operations");
		show_stats(name, d.t);
		add_forced(d.t);
		diff_destroy(&d);

		/* The same growth, the other way round: log-spaced keys first
		 * (one growth step at a time), the extremes last. */
		snprintf(name, sizeof(name), "shape/e/log-spaced-after-bulk/%s", cn);
		ds_generate(DS_LOGNORMAL, case_seed(g_seed, name), pool, NT);
		min_max(pool, NT, &lo, &hi);
		nl = log_spaced_keys(lo, hi, pool + NT);
		memcpy(pool + NT + nl, ext, ne * sizeof(*pool));
		diff_start(&d, cfg, name, pool, NT + nl + ne);
		phase(&d, diff_bulk_load(&d, NT), "bulk load lognormal");
		phase(&d, diff_inserts(&d, nl, 0), "insert keys at growing distances");
		phase(&d, diff_iterate(&d), "iteration");
		phase(&d, diff_inserts(&d, ne, 0) + diff_iterate(&d) + diff_lookup_all(&d) +
		          diff_seeks(&d, 500, 8), "extremes, then full comparison");
		add_forced(d.t);
		diff_destroy(&d);

		/* After a bulk load, via batches: all extremes put in one batch
		 * (each key twice, the later payload wins), then half deleted. */
		snprintf(name, sizeof(name), "shape/e/extremes-batch/%s", cn);
		ds_generate(DS_TIMESTAMPS, case_seed(g_seed, name), pool, NT);
		diff_start(&d, cfg, name, pool, NT);
		phase(&d, diff_bulk_load(&d, NT), "bulk load timestamps");
		{
			alex_op ops[2 * (NE_MAX + NL_MAX)];
			uint64_t sorted[NE_MAX + NL_MAX];
			size_t n = 0, ns;

			memcpy(sorted, ext, ne * sizeof(*sorted));
			min_max(pool, NT, &lo, &hi);
			ns = ne + log_spaced_keys(lo, hi, sorted + ne);
			ds_sort(sorted, ns);
			for (size_t i = 0; i < ns; i++) {
				if (i > 0 && sorted[i] == sorted[i - 1])
					continue;
				ops[n++] = (alex_op){ sorted[i], diff_payload(sorted[i], 7), ALEX_OP_PUT };
				ops[n++] = (alex_op){ sorted[i], diff_payload(sorted[i], 8), ALEX_OP_PUT };
			}
			phase(&d, diff_apply_batch(&d, ops, n), "batch put of extreme keys");
			phase(&d, diff_iterate(&d), "iteration after the batch");
			n = 0;
			for (size_t i = 0; i < ns; i += 2)
				ops[n++] = (alex_op){ .key = sorted[i], .kind = ALEX_OP_DEL };
			phase(&d, diff_apply_batch(&d, ops, n), "batch delete of half of them");
		}
		phase(&d, diff_lower_bounds(&d, 2000) + diff_seeks(&d, 500, 8) + diff_iterate(&d) +
		          diff_lookup_all(&d), "lower bounds, seeks, iteration at the extremes");
		add_forced(d.t);
		diff_destroy(&d);

		/* The extremes bulk loaded themselves, then ordinary keys. */
		snprintf(name, sizeof(name), "shape/e/extremes-bulk/%s", cn);
		memcpy(pool, ext, ne * sizeof(*pool));
		ds_generate(DS_UNIFORM, case_seed(g_seed, name), pool + ne, NT);
		diff_start(&d, cfg, name, pool, NT + ne);
		phase(&d, diff_bulk_load(&d, ne), "bulk load of extreme keys");
		phase(&d, diff_mixed(&d, 40000), "mixed operations");
		phase(&d, diff_batches(&d, 100, 128), "batches");
		phase(&d, diff_lower_bounds(&d, 2000) + diff_seeks(&d, 500, 8) + diff_iterate(&d) +
		          diff_lookup_all(&d), "lower bounds, seeks, iteration at the extremes");
		add_forced(d.t);
		diff_destroy(&d);
	}
	free(pool);
}

/*
 * (f) Long ascending runs appended at the right edge (timestamps), one key
 * at a time into a bulk-loaded tree, then a descending run at the left
 * edge: dense (gaps 1..10) for its first half, then striding down to about
 * an eighth of the smallest key, so the domain must widen on both sides
 * (below the smallest key's highest bit).  Growth is
 * asserted whenever forced_growths() says the domain had to widen.
 */
static void test_shape_f(size_t nbulk, size_t nappend, size_t ndesc, const alex_config *cfg,
                         const char *cfgname, bool forcing)
{
	char name[80];
	uint64_t *pool = xcalloc(nbulk + nappend, sizeof(*pool));
	uint64_t *desc = xcalloc(ndesc + 128, sizeof(*desc));
	uint64_t lo, hi, need_right, need_left, stride;
	double t0 = now_sec();
	alex_stats s0, s1, s2;
	size_t half = ndesc / 2, nl;
	bool inner_root;
	ds_rng r;
	diff d;

	snprintf(name, sizeof(name), "shape/f/append/%s/%zu", cfgname, nappend);
	ds_generate(DS_TIMESTAMPS, case_seed(g_seed, name), pool, nbulk + nappend);
	diff_start(&d, cfg, name, pool, nbulk + nappend);
	phase(&d, diff_bulk_load(&d, nbulk), "bulk load timestamps");
	s0 = get_stats(d.t);
	inner_root = s0.inners > 0;
	lo = pool[0];
	hi = pool[nbulk - 1];
	need_right = forced_growths(pool + nbulk, nappend, &lo, &hi);
	phase(&d, diff_inserts(&d, nappend, 0), "append at the right edge one at a time");
	phase(&d, diff_iterate(&d), "iteration after appends");
	s1 = get_stats(d.t);
	if (inner_root && need_right)
		ok(s1.root_growths > s0.root_growths, "%s: root grew to the right (%" PRIu64 ")",
		   name, s1.root_growths - s0.root_growths);
	else
		diag("%s: this seed's appends stay inside the root domain", name);

	ds_rng_seed(&r, case_seed(g_seed, name));
	desc[0] = pool[0] - 1 - ds_rng_next(&r) % 10;
	for (size_t i = 1; i < half; i++)
		desc[i] = desc[i - 1] - 1 - ds_rng_next(&r) % 10;
	/* Steps of 3/4..1 stride end the run near min / 8, never below 0. */
	stride = desc[half - 1] / (ndesc - half + 2);
	for (size_t i = half; i < ndesc; i++)
		desc[i] = desc[i - 1] - stride + ds_rng_next(&r) % (stride / 4 + 1);
	nl = log_spaced_keys(desc[ndesc - 1], pool[nbulk + nappend - 1], desc + ndesc);
	need_left = forced_growths(desc, ndesc, &lo, &hi);
	d.pool = desc;
	d.pool_n = ndesc + nl;
	d.pool_next = 0;
	phase(&d, diff_inserts(&d, ndesc, 0), "descending run at the left edge");
	s2 = get_stats(d.t);
	if (inner_root && need_left)
		ok(s2.root_growths > s1.root_growths, "%s: root grew to the left (%" PRIu64 ")", name,
		   s2.root_growths - s1.root_growths);
	else
		diag("%s: the descending run stays inside the root domain", name);
	phase(&d, diff_inserts(&d, nl, 0), "keys at power-of-two distances from both edges");
	phase(&d, diff_iterate(&d) + diff_lookup_all(&d) + diff_lower_bounds(&d, 10000),
	      "final full comparison");
	show_stats(name, d.t);
	if (forcing)
		add_forced(d.t);
	diag("%s: %.2f s", name, now_sec() - t0);
	diff_destroy(&d);
	free(pool);
	free(desc);
}

/* (f) continued: device keys arrive time-major, so every device's range
 * grows at its right end — ten thousand append points inside the tree. */
static void test_shape_f_device(size_t nbulk, size_t ninsert, const alex_config *cfg,
                                const char *cfgname, bool forcing)
{
	char name[80];
	uint64_t *pool = xcalloc(nbulk + ninsert, sizeof(*pool));
	double t0 = now_sec();
	diff d;

	snprintf(name, sizeof(name), "shape/f/device-append/%s/%zu", cfgname, ninsert);
	ds_generate(DS_DEVICE, case_seed(g_seed, name), pool, nbulk + ninsert);
	diff_start(&d, cfg, name, pool, nbulk + ninsert);
	phase(&d, diff_bulk_load(&d, nbulk), "bulk load the first seconds");
	phase(&d, diff_inserts(&d, ninsert / 2, 0), "time-major inserts");
	phase(&d, diff_batches(&d, 50, 256) + diff_inserts(&d, d.pool_n - d.pool_next, 0),
	      "batches, then the rest one at a time");
	phase(&d, diff_iterate(&d) + diff_lookup_all(&d), "final full comparison");
	show_stats(name, d.t);
	if (forcing) {
		alex_stats s = get_stats(d.t);

		ok(s.expansions > 0 && s.splits_sideways + s.splits_down > 0,
		   "%s: expansions and splits happened", name);
		add_forced(d.t);
	}
	diag("%s: %.2f s", name, now_sec() - t0);
	diff_destroy(&d);
	free(pool);
}

/* ---------------------------------------------------------------- main */

static void run_diff_all(void)
{
	alex_config small = cfg_small(), medium = cfg_medium();

	/* The one 1M-key differential case: device keys, the target workload. */
	for (int dist = 0; dist < DS_NDIST; dist++)
		test_diff(dist, dist == DS_DEVICE ? 1000000 : 100000, NULL, "default", false);
	for (int dist = 0; dist < DS_NDIST; dist++)
		test_diff(dist, 50000, &small, "small", true);
	/* Medium limits sit between the two; they grow leaves but need not
	 * split them, so they assert nothing structural. */
	test_diff(DS_CLUSTERS, 100000, &medium, "medium", false);
	test_diff(DS_UNIFORM, 100000, &medium, "medium", false);
}

static void run_shape_c(void)
{
	alex_config small = cfg_small();

	test_shape_c(DS_UNIFORM, 200000, NULL, "default", false);
	test_shape_c(DS_CLUSTERS, 50000, &small, "small", true);
	test_shape_c(DS_DEVICE, 50000, &small, "small", true);
}

static void run_shape_d(void)
{
	alex_config small = cfg_small(), medium = cfg_medium();

	test_shape_d(DS_UNIFORM, 2000000, NULL, "default", false);
	test_shape_d(DS_LOGNORMAL, 100000, &small, "small", true);
	test_shape_d(DS_DEVICE, 100000, &small, "small", true);
	test_shape_d(DS_TIMESTAMPS, 100000, &small, "small", true);
	test_shape_d(DS_CLUSTERS, 100000, &small, "small", true);
	/* Wider internal nodes leave room to double them (inner expansions). */
	test_shape_d(DS_DEVICE, 200000, &medium, "medium", true);
	test_shape_d(DS_TIMESTAMPS, 200000, &medium, "medium", true);
}

static void run_shape_f(void)
{
	alex_config small = cfg_small();

	test_shape_f(100000, 1000000, 100000, NULL, "default", false);
	test_shape_f(20000, 200000, 50000, &small, "small", true);
	test_shape_f_device(100000, 300000, NULL, "default", false);
	test_shape_f_device(20000, 60000, &small, "small", true);
}

static void check_forced_totals(void)
{
	diag("forcing cases, totals: expansions=%" PRIu64 " contractions=%" PRIu64
	     " sideways=%" PRIu64 " down=%" PRIu64 " inner_expansions=%" PRIu64
	     " root_growths=%" PRIu64, g_forced.expansions, g_forced.contractions,
	     g_forced.splits_sideways, g_forced.splits_down, g_forced.inner_expansions,
	     g_forced.root_growths);
	ok(g_forced.expansions > 0, "structural coverage: leaf expansions");
	ok(g_forced.contractions > 0, "structural coverage: leaf contractions");
	ok(g_forced.splits_sideways > 0, "structural coverage: sideways splits");
	ok(g_forced.splits_down > 0, "structural coverage: downward splits");
	ok(g_forced.inner_expansions > 0, "structural coverage: inner node expansions");
	ok(g_forced.root_growths > 0, "structural coverage: root growth");
}

static const struct test {
	const char *name;
	void (*fn)(void);
} tests[] = {
	{ "refmap/selfcheck", test_refmap_selfcheck },
	{ "edge/empty", test_edge_empty },
	{ "edge/bulk0", test_edge_bulk_zero },
	{ "edge/bulk-invalid", test_edge_bulk_invalid },
	{ "edge/bulk-nonempty", test_edge_bulk_nonempty },
	{ "edge/bulk-emptied", test_edge_bulk_emptied },
	{ "edge/batch-invalid", test_edge_batch_invalid },
	{ "edge/single", test_edge_single },
	{ "edge/payloads", test_edge_payloads },
	{ "edge/enomem", test_edge_enomem },
	{ "diff", run_diff_all },
	{ "shape/a", test_shape_a },
	{ "shape/b", test_shape_b },
	{ "shape/c", run_shape_c },
	{ "shape/d", run_shape_d },
	{ "shape/e", test_shape_e },
	{ "shape/f", run_shape_f },
};

int main(void)
{
	const char *only = getenv("OMEN_TEST_ONLY");
	double t0 = now_sec();
	bool all = true;

	g_seed = test_seed_from_env(DEFAULT_SEED);
	plan_no_plan();
	diag("seed %" PRIu64 " (replay: OMEN_TEST_SEED=%" PRIu64 " [OMEN_TEST_ONLY=<test>])",
	     g_seed, g_seed);
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (only && !strstr(tests[i].name, only)) {
			all = false;
			continue;
		}
		tests[i].fn();
	}
	/* The coverage totals need every forcing case. */
	if (all)
		check_forced_totals();
	diag("seed %" PRIu64 ", %.1f s", g_seed, now_sec() - t0);
	return done_testing();
}
