/*
 * bench/peer_array.c — the "sorted_array" baseline: the loaded keys in one
 * sorted array, their 16-byte values in a parallel array, found by binary
 * search.  No persistence, no inserts after the load: it is what an
 * in-memory read path without any index structure costs, the floor a
 * learned index must beat.
 *
 * Load appends each batch; load_done sorts the records by key (skipped
 * when they arrived sorted).  The search is the branch-free lower bound
 * with prefetch of both possible next midpoints that bench_index uses as
 * its baseline (tests/lib/sorted_search.h): the strong form of binary search.
 *
 * A put overwrites the value of an existing key in place.  Values are read
 * and written as two relaxed 64-bit atomics, so a reader racing with an
 * update is not a data race (it may see one half old, one half new: the
 * benchmark only checks the half holding the key, which never changes).
 */
#include "bench/peers.h"
#include "tests/lib/sorted_search.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct slot {
	_Atomic uint64_t w[2];
};

struct arr {
	uint64_t *keys;
	struct slot *vals;
	size_t n, cap;
	bool loaded;      /* load_done has run: sorted, no more appends */
};

/* For load_done's sort. */
struct rec {
	uint64_t key, w[2];
};

static int a_open(const struct peer_config *cfg, void **out)
{
	struct arr *a = calloc(1, sizeof(*a));

	(void)cfg;
	if (a == NULL) {
		fprintf(stderr, "sorted_array: out of memory\n");
		return -1;
	}
	*out = a;
	return 0;
}

static int a_close(void *h)
{
	struct arr *a = h;

	free(a->keys);
	free(a->vals);
	free(a);
	return 0;
}

static int cmp_rec(const void *x, const void *y)
{
	uint64_t a = ((const struct rec *)x)->key, b = ((const struct rec *)y)->key;

	return (a > b) - (a < b);
}

static int a_load_done(void *h)
{
	struct arr *a = h;
	bool sorted = true;
	struct rec *r;

	a->loaded = true;
	for (size_t i = 1; i < a->n && sorted; i++)
		sorted = a->keys[i - 1] < a->keys[i];
	if (sorted)
		return 0;
	r = malloc(a->n * sizeof(*r));
	if (r == NULL) {
		fprintf(stderr, "sorted_array: out of memory\n");
		return -1;
	}
	for (size_t i = 0; i < a->n; i++) {
		r[i].key = a->keys[i];
		r[i].w[0] = atomic_load_explicit(&a->vals[i].w[0], memory_order_relaxed);
		r[i].w[1] = atomic_load_explicit(&a->vals[i].w[1], memory_order_relaxed);
	}
	qsort(r, a->n, sizeof(*r), cmp_rec);
	for (size_t i = 0; i < a->n; i++) {
		if (i > 0 && r[i - 1].key == r[i].key) {
			free(r);
			fprintf(stderr, "sorted_array: duplicate key in the load\n");
			return -1;
		}
		a->keys[i] = r[i].key;
		atomic_store_explicit(&a->vals[i].w[0], r[i].w[0], memory_order_relaxed);
		atomic_store_explicit(&a->vals[i].w[1], r[i].w[1], memory_order_relaxed);
	}
	free(r);
	return 0;
}

static void a_describe(void *h, char *buf, size_t len)
{
	struct arr *a = h;

	snprintf(buf, len, "keys=%zu mb=%.1f", a->n,
		 (double)a->n * (sizeof(uint64_t) + sizeof(struct slot)) / 1048576.0);
}

static void *a_thread_open(void *h)
{
	return h;
}

static void a_thread_close(void *t)
{
	(void)t;
}

static int a_write_batch(void *t, const uint64_t *keys, const uint8_t *vals, size_t n)
{
	struct arr *a = t;

	if (a->loaded) {
		fprintf(stderr, "sorted_array: no writes of new keys after the load\n");
		return -1;
	}
	if (a->n + n > a->cap) {
		size_t cap = a->cap ? a->cap : 4096;
		uint64_t *k;
		struct slot *v;

		while (cap < a->n + n)
			cap *= 2;
		k = realloc(a->keys, cap * sizeof(*k));
		if (k)
			a->keys = k;
		v = realloc(a->vals, cap * sizeof(*v));
		if (v)
			a->vals = v;
		if (k == NULL || v == NULL) {
			fprintf(stderr, "sorted_array: out of memory\n");
			return -1;
		}
		a->cap = cap;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t w[2];

		memcpy(w, vals + i * PEER_VAL, PEER_VAL);
		a->keys[a->n + i] = keys[i];
		atomic_store_explicit(&a->vals[a->n + i].w[0], w[0], memory_order_relaxed);
		atomic_store_explicit(&a->vals[a->n + i].w[1], w[1], memory_order_relaxed);
	}
	a->n += n;
	return 0;
}

/* The first index whose key is >= key (n when none). */
static inline size_t lower_bound(const struct arr *a, uint64_t key)
{
	return sorted_lower_bound(a->keys, a->n, key);
}

static inline void read_val(const struct arr *a, size_t i, uint8_t *out)
{
	uint64_t w[2] = {
		atomic_load_explicit(&a->vals[i].w[0], memory_order_relaxed),
		atomic_load_explicit(&a->vals[i].w[1], memory_order_relaxed),
	};

	memcpy(out, w, PEER_VAL);
}

static int a_get(void *t, uint64_t key, uint8_t val[PEER_VAL])
{
	const struct arr *a = t;
	size_t i = lower_bound(a, key);

	if (i >= a->n || a->keys[i] != key)
		return 0;
	read_val(a, i, val);
	return 1;
}

static int a_put(void *t, uint64_t key, const uint8_t val[PEER_VAL])
{
	struct arr *a = t;
	size_t i = lower_bound(a, key);
	uint64_t w[2];

	if (i >= a->n || a->keys[i] != key) {
		fprintf(stderr, "sorted_array: put of a key that was not loaded\n");
		return -1;
	}
	memcpy(w, val, PEER_VAL);
	atomic_store_explicit(&a->vals[i].w[0], w[0], memory_order_relaxed);
	atomic_store_explicit(&a->vals[i].w[1], w[1], memory_order_relaxed);
	return 0;
}

static int a_scan(void *t, uint64_t from, size_t count, uint64_t *keys, uint8_t *vals)
{
	const struct arr *a = t;
	size_t i = lower_bound(a, from), got = 0;

	for (; i < a->n && got < count; i++, got++) {
		keys[got] = a->keys[i];
		read_val(a, i, vals + got * PEER_VAL);
	}
	return (int)got;
}

const struct peer peer_array = {
	.name = "sorted_array",
	.settings = "in memory: sorted uint64 keys + parallel 16-byte values, branch-free "
		    "binary search with prefetch; puts overwrite existing keys only",
	.caps = 0,
	.open = a_open,
	.close = a_close,
	.load_done = a_load_done,
	.describe = a_describe,
	.thread_open = a_thread_open,
	.thread_close = a_thread_close,
	.write_batch = a_write_batch,
	.get = a_get,
	.put = a_put,
	.scan = a_scan,
	.ingest = NULL,
	.flush = NULL,
};
