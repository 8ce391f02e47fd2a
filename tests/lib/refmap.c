/*
 * tests/lib/refmap.c — the blocked sorted array used as a test oracle, and
 * the differential driver that runs ALEX against it.  See refmap.h.
 *
 * The reference must be obviously right rather than fast, but not so slow
 * that million-operation cases leave make check: hence blocks (memmove of at
 * most 8 KiB per insert) and a directory of block minima searched by binary
 * search.  Blocks are split in half when full and dropped when empty; they
 * are never merged, which only costs memory.
 */
#include "tests/lib/refmap.h"
#include "tests/lib/die.h"
#include "tests/lib/util.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------ reference map */

void refmap_init(refmap *m)
{
	memset(m, 0, sizeof(*m));
}

void refmap_free(refmap *m)
{
	for (size_t b = 0; b < m->nblocks; b++)
		free(m->blocks[b]);
	free(m->blocks);
	free(m->mins);
	refmap_init(m);
}

/* Make room for a block at directory index at. */
static void dir_insert(refmap *m, size_t at, refmap_block *blk)
{
	if (m->nblocks == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 64;
		m->blocks = xrealloc(m->blocks, m->cap * sizeof(*m->blocks));
		m->mins = xrealloc(m->mins, m->cap * sizeof(*m->mins));
	}
	memmove(&m->blocks[at + 1], &m->blocks[at], (m->nblocks - at) * sizeof(*m->blocks));
	memmove(&m->mins[at + 1], &m->mins[at], (m->nblocks - at) * sizeof(*m->mins));
	m->blocks[at] = blk;
	m->mins[at] = blk->keys[0];
	m->nblocks++;
}

static void dir_remove(refmap *m, size_t at)
{
	free(m->blocks[at]);
	memmove(&m->blocks[at], &m->blocks[at + 1], (m->nblocks - at - 1) * sizeof(*m->blocks));
	memmove(&m->mins[at], &m->mins[at + 1], (m->nblocks - at - 1) * sizeof(*m->mins));
	m->nblocks--;
}

void refmap_load(refmap *m, const uint64_t *keys, const uint64_t *vals, size_t n)
{
	/* Half-full blocks, so that the inserts that follow split gradually
	 * rather than all at once. */
	const size_t per = REFMAP_BLOCK / 2;

	if (m->size != 0)
		TEST_DIE("refmap_load into a non-empty map");
	for (size_t i = 1; i < n; i++)
		if (keys[i - 1] >= keys[i])
			TEST_DIE("refmap_load: keys not strictly ascending at %zu", i);
	for (size_t i = 0; i < n; i += per) {
		refmap_block *blk = xmalloc(sizeof(*blk));
		size_t k = n - i < per ? n - i : per;

		blk->n = (uint32_t)k;
		memcpy(blk->keys, keys + i, k * sizeof(*keys));
		memcpy(blk->vals, vals + i, k * sizeof(*vals));
		dir_insert(m, m->nblocks, blk);
	}
	m->size = n;
}

/* The block that holds key if anything does: the last one whose minimum is
 * <= key, or block 0 for keys below everything.  Needs nblocks > 0. */
static size_t find_block(const refmap *m, uint64_t key)
{
	size_t lo = 0, hi = m->nblocks;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->mins[mid] <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? lo - 1 : 0;
}

/* First index in blk with keys[i] >= key (blk->n when none). */
static uint32_t block_lower(const refmap_block *blk, uint64_t key)
{
	return (uint32_t)ds_lower_bound(blk->keys, blk->n, key);
}

bool refmap_get(const refmap *m, uint64_t key, uint64_t *val)
{
	const refmap_block *blk;
	uint32_t i;

	if (m->nblocks == 0)
		return false;
	blk = m->blocks[find_block(m, key)];
	i = block_lower(blk, key);
	if (i == blk->n || blk->keys[i] != key)
		return false;
	if (val)
		*val = blk->vals[i];
	return true;
}

int refmap_put(refmap *m, uint64_t key, uint64_t val)
{
	refmap_block *blk;
	size_t b;
	uint32_t i;

	if (m->nblocks == 0) {
		blk = xmalloc(sizeof(*blk));
		blk->n = 1;
		blk->keys[0] = key;
		blk->vals[0] = val;
		dir_insert(m, 0, blk);
		m->size = 1;
		return 1;
	}
	b = find_block(m, key);
	blk = m->blocks[b];
	i = block_lower(blk, key);
	if (i < blk->n && blk->keys[i] == key) {
		blk->vals[i] = val;
		return 0;
	}
	if (blk->n == REFMAP_BLOCK) {
		const uint32_t half = REFMAP_BLOCK / 2;
		refmap_block *hi = xmalloc(sizeof(*hi));

		hi->n = REFMAP_BLOCK - half;
		memcpy(hi->keys, blk->keys + half, hi->n * sizeof(uint64_t));
		memcpy(hi->vals, blk->vals + half, hi->n * sizeof(uint64_t));
		blk->n = half;
		dir_insert(m, b + 1, hi);
		if (i > half) {
			b++;
			blk = hi;
			i -= half;
		}
	}
	memmove(&blk->keys[i + 1], &blk->keys[i], (blk->n - i) * sizeof(uint64_t));
	memmove(&blk->vals[i + 1], &blk->vals[i], (blk->n - i) * sizeof(uint64_t));
	blk->keys[i] = key;
	blk->vals[i] = val;
	blk->n++;
	m->mins[b] = blk->keys[0];
	m->size++;
	return 1;
}

int refmap_del(refmap *m, uint64_t key)
{
	refmap_block *blk;
	size_t b;
	uint32_t i;

	if (m->nblocks == 0)
		return 0;
	b = find_block(m, key);
	blk = m->blocks[b];
	i = block_lower(blk, key);
	if (i == blk->n || blk->keys[i] != key)
		return 0;
	memmove(&blk->keys[i], &blk->keys[i + 1], (blk->n - i - 1) * sizeof(uint64_t));
	memmove(&blk->vals[i], &blk->vals[i + 1], (blk->n - i - 1) * sizeof(uint64_t));
	blk->n--;
	if (blk->n == 0)
		dir_remove(m, b);
	else
		m->mins[b] = blk->keys[0];
	m->size--;
	return 1;
}

uint64_t refmap_size(const refmap *m)
{
	return m->size;
}

void refmap_seek(const refmap *m, uint64_t key, refmap_cursor *c)
{
	if (m->nblocks == 0) {
		c->b = 0;
		c->i = 0;
		return;
	}
	c->b = find_block(m, key);
	c->i = block_lower(m->blocks[c->b], key);
	if (c->i == m->blocks[c->b]->n) {
		c->b++;
		c->i = 0;
	}
}

bool refmap_next(const refmap *m, refmap_cursor *c, uint64_t *key, uint64_t *val)
{
	const refmap_block *blk;

	if (c->b >= m->nblocks)
		return false;
	blk = m->blocks[c->b];
	if (key)
		*key = blk->keys[c->i];
	if (val)
		*val = blk->vals[c->i];
	if (++c->i == blk->n) {
		c->b++;
		c->i = 0;
	}
	return true;
}

bool refmap_lower_bound(const refmap *m, uint64_t key, uint64_t *found, uint64_t *val)
{
	refmap_cursor c;

	refmap_seek(m, key, &c);
	return refmap_next(m, &c, found, val);
}

bool refmap_random(const refmap *m, ds_rng *r, uint64_t *key)
{
	const refmap_block *blk;

	if (m->nblocks == 0)
		return false;
	blk = m->blocks[ds_rng_next(r) % m->nblocks];
	*key = blk->keys[ds_rng_next(r) % blk->n];
	return true;
}

/* ------------------------------------------------- differential driver */

int diff_init(diff *d, const alex_config *cfg, const char *name, uint64_t seed,
              const uint64_t *pool, size_t pool_n)
{
	/* The operation stream depends on the case name as well as the seed,
	 * so every case sees different operations while one printed seed still
	 * replays the whole run. */
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * UINT64_C(0x100000001b3);
	memset(d, 0, sizeof(*d));
	refmap_init(&d->ref);
	ds_rng_seed(&d->rng, seed ^ h);
	d->seed = seed;
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->pool = pool;
	d->pool_n = pool_n;
	d->quiet_after = 20;
	d->out = stdout;
	return alex_create(cfg, &d->t);
}

void diff_destroy(diff *d)
{
	alex_destroy(d->t);
	d->t = NULL;
	refmap_free(&d->ref);
}

void diff_fail(diff *d, const char *fmt, ...)
{
	va_list ap;

	d->failures++;
	if (d->failures > d->quiet_after)
		return;
	fprintf(d->out, "# FAIL %s seed=%" PRIu64 " op=%" PRIu64 ": ", d->name, d->seed, d->op);
	va_start(ap, fmt);
	vfprintf(d->out, fmt, ap);
	va_end(ap);
	fputc('\n', d->out);
	if (d->failures == d->quiet_after)
		fprintf(d->out, "# (%s: further failures are counted, not printed)\n", d->name);
}

/* A mixer of key and generation: an update always changes the payload, so
 * a lost update or a payload left behind by a delete is visible. */
uint64_t diff_payload(uint64_t key, uint64_t gen)
{
	uint64_t z = key ^ (gen * UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 31)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 29)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 32);
}

static uint64_t next_payload(diff *d, uint64_t key)
{
	return diff_payload(key, ++d->gen);
}

uint64_t diff_bulk_load(diff *d, size_t n)
{
	uint64_t before = d->failures;
	uint64_t *keys, *vals;
	int rc;

	if (n > d->pool_n - d->pool_next)
		n = d->pool_n - d->pool_next;
	keys = xmalloc(n * sizeof(*keys));
	vals = xmalloc(n * sizeof(*vals));
	memcpy(keys, d->pool + d->pool_next, n * sizeof(*keys));
	d->pool_next += n;
	ds_sort(keys, n);
	for (size_t i = 0; i < n; i++)
		vals[i] = next_payload(d, keys[i]);
	d->op++;
	rc = alex_bulk_load(d->t, keys, vals, n);
	if (rc != 0)
		diff_fail(d, "alex_bulk_load of %zu keys returned %d", n, rc);
	else
		refmap_load(&d->ref, keys, vals, n);
	free(keys);
	free(vals);
	return d->failures - before;
}

/* After any write, the tree must answer a lookup of that key as the
 * reference does: catches a write that reported success but landed in a
 * slot the search cannot reach. */
static void check_lookup(diff *d, uint64_t key, const char *after)
{
	uint64_t va = 0, vr = 0;
	bool fa = alex_lookup(d->t, key, &va);
	bool fr = refmap_get(&d->ref, key, &vr);

	if (fa != fr)
		diff_fail(d, "lookup %#" PRIx64 "%s: tree says %s, reference %s", key, after,
		          fa ? "present" : "absent", fr ? "present" : "absent");
	else if (fa && va != vr)
		diff_fail(d, "lookup %#" PRIx64 "%s: payload %#" PRIx64 ", reference %#" PRIx64,
		          key, after, va, vr);
}

void diff_op_insert(diff *d, uint64_t key)
{
	uint64_t val = next_payload(d, key);
	int ra, rr;

	d->op++;
	ra = alex_insert(d->t, key, val);
	rr = refmap_put(&d->ref, key, val);
	if (ra != rr)
		diff_fail(d, "insert %#" PRIx64 " returned %d, reference %d", key, ra, rr);
	check_lookup(d, key, " after insert");
}

void diff_op_delete(diff *d, uint64_t key)
{
	int ra, rr;

	d->op++;
	ra = alex_delete(d->t, key);
	rr = refmap_del(&d->ref, key);
	if (ra != rr)
		diff_fail(d, "delete %#" PRIx64 " returned %d, reference %d", key, ra, rr);
	check_lookup(d, key, " after delete");
}

void diff_op_lookup(diff *d, uint64_t key)
{
	d->op++;
	check_lookup(d, key, "");
}

void diff_op_lower_bound(diff *d, uint64_t key)
{
	uint64_t ka = 0, va = 0, kr = 0, vr = 0;
	bool fa, fr;

	d->op++;
	fa = alex_lower_bound(d->t, key, &ka, &va);
	fr = refmap_lower_bound(&d->ref, key, &kr, &vr);
	if (fa != fr)
		diff_fail(d, "lower_bound %#" PRIx64 ": tree %s, reference %s (%#" PRIx64 ")",
		          key, fa ? "found" : "none", fr ? "found" : "none", fr ? kr : 0);
	else if (fa && (ka != kr || va != vr))
		diff_fail(d, "lower_bound %#" PRIx64 ": tree %#" PRIx64 "=%#" PRIx64
		          ", reference %#" PRIx64 "=%#" PRIx64, key, ka, va, kr, vr);
}

uint64_t diff_pick_new(diff *d)
{
	if (d->pool_next < d->pool_n)
		return d->pool[d->pool_next++];
	return ds_rng_next(&d->rng);
}

uint64_t diff_pick_present(diff *d)
{
	uint64_t key;

	if (refmap_random(&d->ref, &d->rng, &key))
		return key;
	return diff_pick_new(d);
}

uint64_t diff_pick_absent(diff *d)
{
	uint64_t key;

	switch (ds_rng_next(&d->rng) % 4) {
	case 0:
		/* A pool key not handed out yet: absent and in distribution. */
		if (d->pool_next < d->pool_n)
			return d->pool[d->pool_next + ds_rng_next(&d->rng) % (d->pool_n - d->pool_next)];
		return ds_rng_next(&d->rng);
	case 1:
		/* Right next to a present key: probes the slot next door. */
		if (refmap_random(&d->ref, &d->rng, &key))
			return key + 1;
		return ds_rng_next(&d->rng);
	case 2:
		if (refmap_random(&d->ref, &d->rng, &key))
			return key - 1;
		return ds_rng_next(&d->rng);
	default:
		return ds_rng_next(&d->rng);
	}
}

uint64_t diff_pick_probe(diff *d)
{
	static const uint64_t fixed[] = { 0, 1, UINT64_MAX - 1, UINT64_MAX, UINT64_C(1) << 63 };
	uint64_t r = ds_rng_next(&d->rng) % 16;

	if (r < 2)
		return fixed[ds_rng_next(&d->rng) % (sizeof(fixed) / sizeof(fixed[0]))];
	if (r < 8)
		return diff_pick_absent(d);
	return diff_pick_present(d);
}

uint64_t diff_inserts(diff *d, size_t nops, unsigned pct_existing)
{
	uint64_t before = d->failures;

	for (size_t i = 0; i < nops; i++) {
		bool existing = ds_rng_next(&d->rng) % 100 < pct_existing;

		diff_op_insert(d, existing ? diff_pick_present(d) : diff_pick_new(d));
	}
	return d->failures - before;
}

uint64_t diff_deletes(diff *d, size_t nops, unsigned pct_present)
{
	uint64_t before = d->failures;

	for (size_t i = 0; i < nops; i++) {
		bool present = ds_rng_next(&d->rng) % 100 < pct_present;

		diff_op_delete(d, present ? diff_pick_present(d) : diff_pick_absent(d));
	}
	return d->failures - before;
}

uint64_t diff_lookups(diff *d, size_t nops)
{
	uint64_t before = d->failures;

	for (size_t i = 0; i < nops; i++)
		diff_op_lookup(d, i % 2 ? diff_pick_present(d) : diff_pick_absent(d));
	return d->failures - before;
}

uint64_t diff_lower_bounds(diff *d, size_t nops)
{
	uint64_t before = d->failures;

	diff_op_lower_bound(d, 0);
	diff_op_lower_bound(d, UINT64_MAX);
	for (size_t i = 0; i < nops; i++)
		diff_op_lower_bound(d, diff_pick_probe(d));
	return d->failures - before;
}

uint64_t diff_mixed(diff *d, size_t nops)
{
	uint64_t before = d->failures;

	for (size_t i = 0; i < nops; i++) {
		uint64_t r = ds_rng_next(&d->rng) % 100;

		if (r < 30)
			diff_op_insert(d, diff_pick_new(d));
		else if (r < 40)
			diff_op_insert(d, diff_pick_present(d));
		else if (r < 60)
			diff_op_delete(d, diff_pick_present(d));
		else if (r < 65)
			diff_op_delete(d, diff_pick_absent(d));
		else if (r < 90)
			diff_op_lookup(d, i % 2 ? diff_pick_present(d) : diff_pick_absent(d));
		else
			diff_op_lower_bound(d, diff_pick_probe(d));
	}
	return d->failures - before;
}

uint64_t diff_seeks(diff *d, size_t nseeks, unsigned steps)
{
	uint64_t before = d->failures;

	for (size_t s = 0; s < nseeks; s++) {
		uint64_t probe = s == 0 ? 0 : s == 1 ? UINT64_MAX : diff_pick_probe(d);
		alex_iter it;
		refmap_cursor c;

		d->op++;
		alex_iter_seek(d->t, probe, &it);
		refmap_seek(&d->ref, probe, &c);
		for (unsigned k = 0; k < steps; k++) {
			uint64_t ka = 0, va = 0, kr = 0, vr = 0;
			bool fa = alex_iter_next(&it, &ka, &va);
			bool fr = refmap_next(&d->ref, &c, &kr, &vr);

			if (fa != fr) {
				diff_fail(d, "seek %#" PRIx64 " next #%u: tree %s, reference %s", probe, k,
				          fa ? "has a key" : "at end", fr ? "has a key" : "at end");
				break;
			}
			if (!fa)
				break;
			if (ka != kr || va != vr) {
				diff_fail(d, "seek %#" PRIx64 " next #%u: tree %#" PRIx64 "=%#" PRIx64
				          ", reference %#" PRIx64 "=%#" PRIx64, probe, k, ka, va, kr, vr);
				break;
			}
		}
	}
	return d->failures - before;
}

/* A batch op with its position in generation order, so that sorting by key
 * keeps equal keys in the order they were issued (the later one wins). */
struct seq_op {
	alex_op op;
	size_t seq;
};

static int cmp_seq_op(const void *a, const void *b)
{
	const struct seq_op *x = a, *y = b;

	if (x->op.key != y->op.key)
		return x->op.key < y->op.key ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

uint64_t diff_apply_batch(diff *d, const alex_op *ops, size_t n)
{
	uint64_t before = d->failures;
	alex_batch_result want = { 0, 0, 0, 0 }, got = { 0, 0, 0, 0 };
	int rc;

	/* The reference applies the ops one by one in batch order; the
	 * batch's counts must match that sequential application. */
	for (size_t i = 0; i < n; i++) {
		if (ops[i].kind == ALEX_OP_PUT) {
			if (refmap_put(&d->ref, ops[i].key, ops[i].payload))
				want.inserted++;
			else
				want.updated++;
		} else {
			if (refmap_del(&d->ref, ops[i].key))
				want.deleted++;
			else
				want.absent++;
		}
	}
	d->op++;
	rc = alex_apply_batch(d->t, ops, n, &got);
	if (rc != 0)
		diff_fail(d, "apply_batch of %zu ops (keys %#" PRIx64 "..%#" PRIx64 ") returned %d",
		          n, n ? ops[0].key : 0, n ? ops[n - 1].key : 0, rc);
	else if (memcmp(&got, &want, sizeof(got)) != 0)
		diff_fail(d, "apply_batch of %zu ops: inserted/updated/deleted/absent "
		          "%" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64 ", reference "
		          "%" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64, n,
		          got.inserted, got.updated, got.deleted, got.absent,
		          want.inserted, want.updated, want.deleted, want.absent);
	for (size_t i = 0; i < n; i++)
		check_lookup(d, ops[i].key, " after batch");
	return d->failures - before;
}

size_t diff_make_batch(diff *d, alex_op *ops, size_t maxlen)
{
	size_t len = 1 + (size_t)(ds_rng_next(&d->rng) % maxlen);
	struct seq_op *so = xmalloc(len * sizeof(*so));

	for (size_t i = 0; i < len; i++) {
		uint64_t r = ds_rng_next(&d->rng) % 100, key;

		if (r < 30)
			key = diff_pick_present(d);
		else if (r < 60)
			key = diff_pick_new(d);
		else if (r < 75)
			key = diff_pick_absent(d);
		else if (r < 90 && i > 0)
			key = so[ds_rng_next(&d->rng) % i].op.key;  /* duplicate */
		else
			key = diff_pick_probe(d);
		so[i].seq = i;
		so[i].op.key = key;
		so[i].op.kind = ds_rng_next(&d->rng) % 10 < 7 ? ALEX_OP_PUT : ALEX_OP_DEL;
		so[i].op.payload = so[i].op.kind == ALEX_OP_PUT ? next_payload(d, key) : 0;
	}
	qsort(so, len, sizeof(*so), cmp_seq_op);
	for (size_t i = 0; i < len; i++)
		ops[i] = so[i].op;
	free(so);
	return len;
}

uint64_t diff_batches(diff *d, size_t nbatches, size_t maxlen)
{
	uint64_t before = d->failures;
	alex_op *ops = xmalloc(maxlen * sizeof(*ops));

	for (size_t b = 0; b < nbatches; b++) {
		size_t len = diff_make_batch(d, ops, maxlen);

		diff_apply_batch(d, ops, len);
	}
	free(ops);
	return d->failures - before;
}

uint64_t diff_iterate(diff *d)
{
	uint64_t before = d->failures, n = 0, prev = 0;
	alex_iter it;
	refmap_cursor c;

	d->op++;
	alex_iter_seek(d->t, 0, &it);
	refmap_seek(&d->ref, 0, &c);
	for (;;) {
		uint64_t ka = 0, va = 0, kr = 0, vr = 0;
		bool fa = alex_iter_next(&it, &ka, &va);
		bool fr = refmap_next(&d->ref, &c, &kr, &vr);

		if (fa && n > 0 && ka <= prev) {
			diff_fail(d, "iteration: key #%" PRIu64 " %#" PRIx64 " after %#" PRIx64
			          " (not ascending)", n, ka, prev);
			break;
		}
		if (fa != fr) {
			diff_fail(d, "iteration: at #%" PRIu64 " tree %s (%#" PRIx64 "), reference %s"
			          " (%#" PRIx64 "); reference size %" PRIu64, n,
			          fa ? "has a key" : "ended", ka, fr ? "has a key" : "ended", kr,
			          refmap_size(&d->ref));
			break;
		}
		if (!fa)
			break;
		if (ka != kr || va != vr) {
			diff_fail(d, "iteration: #%" PRIu64 " tree %#" PRIx64 "=%#" PRIx64
			          ", reference %#" PRIx64 "=%#" PRIx64, n, ka, va, kr, vr);
			break;
		}
		prev = ka;
		n++;
	}
	return d->failures - before;
}

uint64_t diff_lookup_all(diff *d)
{
	uint64_t before = d->failures, key, val, prev = 0;
	refmap_cursor c;
	bool first = true;

	refmap_seek(&d->ref, 0, &c);
	while (refmap_next(&d->ref, &c, &key, &val)) {
		d->op++;
		check_lookup(d, key, "");
		/* The neighbours, when they are gaps, must be absent. */
		if (key > 0 && (first || key - 1 != prev))
			check_lookup(d, key - 1, "");
		if (key < UINT64_MAX && !refmap_get(&d->ref, key + 1, NULL))
			check_lookup(d, key + 1, "");
		prev = key;
		first = false;
		if (d->failures - before > d->quiet_after)
			break;
	}
	return d->failures - before;
}

uint64_t diff_check(diff *d, const char *what)
{
	uint64_t before = d->failures;
	char msg[256] = "";
	uint64_t sa = alex_size(d->t), sr = refmap_size(&d->ref);

	d->op++;
	if (alex_check(d->t, msg, sizeof(msg)) != 0)
		diff_fail(d, "alex_check after %s: %s", what, msg);
	if (sa != sr)
		diff_fail(d, "alex_size after %s: %" PRIu64 ", reference %" PRIu64, what, sa, sr);
	return d->failures - before;
}
