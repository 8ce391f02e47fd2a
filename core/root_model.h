/*
 * core/root_model.h — the root model: which shard owns a key.
 *
 * Shards own contiguous key ranges: shard i owns [lo[i], lo[i + 1] - 1]
 * (the last one up to UINT64_MAX), lo[0] == 0, lo strictly ascending.  The
 * boundaries come from data (quantiles of real keys, see
 * orm_from_sample), never from an even split of 2^64: real keys such as
 * `device << 44 | ms timestamp` occupy a tiny corner of the key space.
 *
 * Lookup is learned: a linear model of the boundaries' CDF (least
 * squares over the points (lo[i], i)) predicts the shard from the key, and
 * the prediction is corrected exactly against the boundary array by
 * stepping to the last i with lo[i] <= key, so routing costs one multiply
 * and, when the boundaries are close to linear, one or two comparisons.  A model is immutable
 * once built; the engine publishes it under RCU and replaces it whole.
 *
 * A "bootstrap" model (orm_bootstrap) routes every key to shard 0: a new
 * database has no data to take boundaries from until its first batch.
 *
 * Thread safety: building functions touch only the model being built;
 * orm_route and the accessors read an immutable model from any thread.
 */
#ifndef OMEN_CORE_ROOT_MODEL_H
#define OMEN_CORE_ROOT_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct orm {
	unsigned nshards;
	bool bootstrap;     /* every key -> shard 0; lo[] holds no boundaries */
	double slope;       /* predicted shard = (key - lo[1]) * slope + 1    */
	uint64_t lo[];      /* nshards entries: lo[0] == 0, strictly ascending */
} orm;

/* Bytes of a model of n shards (for allocation by the caller). */
size_t orm_size(unsigned nshards);

/* A bootstrap model for nshards (>= 1) shards; NULL when out of memory.
 * Free with orm_free. */
orm *orm_bootstrap(unsigned nshards);

/*
 * A model over the given boundaries: lo[0] must be 0 and lo strictly
 * ascending (-EINVAL otherwise).  0 and *out, or -EINVAL / -ENOMEM.
 */
int orm_from_bounds(const uint64_t *lo, unsigned nshards, orm **out);

/*
 * Boundaries from a sample of keys (any order, duplicates allowed): shard
 * i (>= 1) starts at the key of quantile i / nshards of the distinct keys,
 * so each shard receives an equal share of the sample.  With fewer
 * distinct keys than shards, boundaries are pushed up one past the
 * previous so they stay strictly ascending (the shards above the data are
 * then nearly empty until boundaries move).  scratch holds n keys
 * (clobbered) and may be keys itself.  nkeys >= 1.
 */
int orm_from_sample(const uint64_t *keys, size_t nkeys, uint64_t *scratch, unsigned nshards,
		    orm **out);

void orm_free(orm *m);

/* The shard owning key. */
static inline unsigned orm_route(const orm *m, uint64_t key)
{
	if (m->bootstrap || m->nshards == 1)
		return 0;
	if (key < m->lo[1])
		return 0;
	double p = (double)(key - m->lo[1]) * m->slope + 1.0;
	unsigned n = m->nshards;
	long g = (long)p;
	if (g < 1)
		g = 1;
	if (g > (long)n - 1)
		g = (long)n - 1;
	/* Exact correction: the answer is the last i with lo[i] <= key. */
	unsigned i = (unsigned)g;
	while (i + 1 < n && m->lo[i + 1] <= key)
		i++;
	while (m->lo[i] > key)
		i--;
	return i;
}

/* The range shard i owns: [*lo, *hi].  For a bootstrap model, shard 0 owns
 * everything and every other shard an empty range (*lo > *hi). */
void orm_range(const orm *m, unsigned i, uint64_t *lo, uint64_t *hi);

#endif
