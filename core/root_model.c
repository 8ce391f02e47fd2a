/*
 * core/root_model.c — building the root model; see root_model.h.
 */
#include "core/root_model.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

size_t orm_size(unsigned nshards)
{
	return sizeof(orm) + (size_t)nshards * sizeof(uint64_t);
}

orm *orm_bootstrap(unsigned nshards)
{
	if (nshards == 0)
		return NULL;
	orm *m = calloc(1, orm_size(nshards));
	if (!m)
		return NULL;
	m->nshards = nshards;
	m->bootstrap = nshards > 1;
	return m;
}

/* Least-squares slope of shard index over boundary key, through the
 * boundaries above shard 0 (lo[0] = 0 is an artefact of covering the key
 * space, not a data point). */
static double fit_slope(const uint64_t *lo, unsigned n)
{
	if (n <= 2)
		return 0.0;
	double mx = 0, my = 0;
	for (unsigned i = 1; i < n; i++) {
		mx += (double)(lo[i] - lo[1]);
		my += (double)i;
	}
	mx /= (double)(n - 1);
	my /= (double)(n - 1);
	double sxy = 0, sxx = 0;
	for (unsigned i = 1; i < n; i++) {
		double dx = (double)(lo[i] - lo[1]) - mx;
		sxy += dx * ((double)i - my);
		sxx += dx * dx;
	}
	return sxx > 0 ? sxy / sxx : 0.0;
}

int orm_from_bounds(const uint64_t *lo, unsigned nshards, orm **out)
{
	*out = NULL;
	if (nshards == 0 || lo[0] != 0)
		return -EINVAL;
	for (unsigned i = 1; i < nshards; i++)
		if (lo[i] <= lo[i - 1])
			return -EINVAL;
	orm *m = calloc(1, orm_size(nshards));
	if (!m)
		return -ENOMEM;
	m->nshards = nshards;
	memcpy(m->lo, lo, nshards * sizeof(uint64_t));
	m->slope = fit_slope(lo, nshards);
	*out = m;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int orm_from_sample(const uint64_t *keys, size_t nkeys, uint64_t *scratch, unsigned nshards,
		    orm **out)
{
	*out = NULL;
	if (nshards == 0 || nkeys == 0)
		return -EINVAL;
	if (scratch != keys)
		memcpy(scratch, keys, nkeys * sizeof(uint64_t));
	qsort(scratch, nkeys, sizeof(uint64_t), cmp_u64);
	size_t d = 1;
	for (size_t i = 1; i < nkeys; i++)
		if (scratch[i] != scratch[d - 1])
			scratch[d++] = scratch[i];
	uint64_t *lo = malloc(nshards * sizeof(uint64_t));
	if (!lo)
		return -ENOMEM;
	lo[0] = 0;
	for (unsigned i = 1; i < nshards; i++) {
		uint64_t b = scratch[(size_t)((unsigned __int128)d * i / nshards)];
		/* Strictly ascending, and leave room for the shards above. */
		if (b <= lo[i - 1])
			b = lo[i - 1] + 1;
		if (b > UINT64_MAX - (nshards - 1 - i))
			b = UINT64_MAX - (nshards - 1 - i);
		lo[i] = b;
	}
	/* The clamp above can break the order only when the sample sits at
	 * the very top of the key space; fix it from the top down. */
	for (unsigned i = nshards - 1; i >= 1 && lo[i] <= lo[i - 1]; i--)
		lo[i - 1] = lo[i] - 1;
	int rc = orm_from_bounds(lo, nshards, out);
	free(lo);
	return rc;
}

void orm_free(orm *m)
{
	free(m);
}

void orm_range(const orm *m, unsigned i, uint64_t *lo, uint64_t *hi)
{
	if (m->bootstrap) {
		*lo = i == 0 ? 0 : UINT64_MAX;
		*hi = i == 0 ? UINT64_MAX : UINT64_MAX - 1;
		return;
	}
	*lo = m->lo[i];
	*hi = i + 1 < m->nshards ? m->lo[i + 1] - 1 : UINT64_MAX;
}
