/*
 * tests/lib/datasets.c — deterministic key generators for tests, stress runs
 * and benchmarks (see datasets.h for the contract of each distribution).
 *
 * Everything here is seeded from splitmix64 so that a printed seed replays a
 * run exactly, on any machine: no libc rand(), no time(), and floating point
 * only in ways that are reproducible with IEEE doubles (exp/log/cos are from
 * the same libm on the machines we replay on; a key set only has to match
 * itself, not another platform).
 *
 * Speed matters because the stress runs generate tens of millions of keys:
 * the distinct-key generators dedupe with one radix sort instead of a hash
 * set, the shuffle uses a multiply-shift bounded random instead of a
 * division, and the Zipf zeta constant is summed exactly only for the first
 * few thousand terms and closed with Euler-Maclaurin for the tail.
 */
#include "tests/lib/datasets.h"
#include "tests/lib/die.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const ds_names[DS_NDIST] = {
	[DS_UNIFORM] = "uniform",
	[DS_LOGNORMAL] = "lognormal",
	[DS_TIMESTAMPS] = "timestamps",
	[DS_DEVICE] = "device",
	[DS_CLUSTERS] = "clusters",
};

/* Base of the timestamp distributions: 1.7e12 ms is November 2023. */
#define DS_TS_BASE UINT64_C(1700000000000)

const char *ds_name(enum ds_dist d)
{
	if ((unsigned)d >= DS_NDIST)
		return "unknown";
	return ds_names[d];
}

int ds_parse(const char *name)
{
	if (name == NULL)
		return -1;
	for (int d = 0; d < DS_NDIST; d++)
		if (strcmp(name, ds_names[d]) == 0)
			return d;
	return -1;
}

/* ---------------------------------------------------------------- RNG */

void ds_rng_seed(ds_rng *r, uint64_t seed)
{
	r->s = seed;
}

/* splitmix64 (Steele, Lea, Flood): a 64-bit counter run through a strong
 * mixer.  Every seed, including 0, gives a full-period, well-mixed stream. */
uint64_t ds_rng_next(ds_rng *r)
{
	uint64_t z = (r->s += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* The top 53 bits make a double in [0, 1) with every value equally likely
 * and 1.0 impossible. */
double ds_rng_double(ds_rng *r)
{
	return (double)(ds_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform in [0, bound) by multiply-shift (Lemire).  The bias is at most
 * bound / 2^64, far below anything a test could observe, and it avoids a
 * 64-bit division per draw in the shuffle of tens of millions of keys. */
static uint64_t rng_below(ds_rng *r, uint64_t bound)
{
	return (uint64_t)(((unsigned __int128)ds_rng_next(r) * bound) >> 64);
}

/* ------------------------------------------------------ shuffle, sort */

void ds_shuffle(uint64_t *keys, size_t n, uint64_t seed)
{
	ds_rng r;

	ds_rng_seed(&r, seed);
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)rng_below(&r, i);
		uint64_t tmp = keys[i - 1];

		keys[i - 1] = keys[j];
		keys[j] = tmp;
	}
}

/*
 * LSD radix sort, 8 passes of 8 bits.  All eight histograms are counted in
 * one read of the input, and a pass whose digit is the same for every key
 * (the high bytes of timestamps, the top bytes of lognormal keys) is skipped
 * without moving data.  8-bit digits keep the 256 scatter destinations in
 * L1/TLB reach; 16-bit digits would halve the passes but scatter to 65,536
 * places, which is slower at the sizes we sort.
 */
void ds_sort(uint64_t *keys, size_t n)
{
	size_t (*count)[256];
	uint64_t *tmp, *src = keys, *dst;

	if (n < 2)
		return;
	count = calloc(8, sizeof(*count));
	tmp = malloc(n * sizeof(*tmp));
	if (count == NULL || tmp == NULL)
		TEST_DIE("ds_sort: out of memory for %zu keys", n);
	for (size_t i = 0; i < n; i++) {
		uint64_t k = keys[i];

		for (int p = 0; p < 8; p++)
			count[p][(k >> (8 * p)) & 0xff]++;
	}
	dst = tmp;
	for (int p = 0; p < 8; p++) {
		size_t *c = count[p], sum = 0;
		unsigned shift = 8u * (unsigned)p;

		/* One bucket holds every key: this digit orders nothing. */
		if (c[(src[0] >> shift) & 0xff] == n)
			continue;
		for (int b = 0; b < 256; b++) {
			size_t v = c[b];

			c[b] = sum;
			sum += v;
		}
		for (size_t i = 0; i < n; i++) {
			uint64_t k = src[i];

			dst[c[(k >> shift) & 0xff]++] = k;
		}
		uint64_t *swap = src;

		src = dst;
		dst = swap;
	}
	if (src != keys)
		memcpy(keys, src, n * sizeof(*keys));
	free(tmp);
	free(count);
}

size_t ds_sort_unique(uint64_t *keys, size_t n)
{
	size_t m = 0;

	ds_sort(keys, n);
	for (size_t i = 0; i < n; i++)
		if (m == 0 || keys[i] != keys[m - 1])
			keys[m++] = keys[i];
	return m;
}

size_t ds_lower_bound(const uint64_t *a, size_t n, uint64_t key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (a[mid] < key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * The distinct generators all work the same way: fill the whole array, sort
 * and dedupe, then refill only the shortfall from the same stream and repeat.
 * Duplicates are rare (uniform: ~n^2/2^65; lognormal: a few in the tails), so
 * this is nearly always one sort, and it never changes the distribution of
 * the keys that survive.  A final shuffle restores random arrival order.
 */
typedef uint64_t (*draw_fn)(ds_rng *r, void *arg);

static void fill_distinct(uint64_t *keys, size_t n, size_t have, ds_rng *r,
                          draw_fn draw, void *arg)
{
	for (unsigned round = 0; have < n; round++) {
		if (round > 1000)
			TEST_DIE("fill_distinct: cannot find %zu distinct keys", n);
		for (size_t i = have; i < n; i++)
			keys[i] = draw(r, arg);
		have = ds_sort_unique(keys, n);
	}
}

/* ---------------------------------------------------- distributions */

static uint64_t draw_uniform(ds_rng *r, void *arg)
{
	(void)arg;
	return ds_rng_next(r);
}

/* exp(N(0, sigma^2)) * 1e9, sigma = 2.  Box-Muller gives two normals per
 * pair of uniforms; the second is kept for the next call. */
struct lognormal_state {
	double spare;
	int has_spare;
};

static uint64_t draw_lognormal(ds_rng *r, void *arg)
{
	struct lognormal_state *st = arg;
	double z, v;

	if (st->has_spare) {
		z = st->spare;
		st->has_spare = 0;
	} else {
		/* 1 - u is in (0, 1], so the log is finite. */
		double u1 = 1.0 - ds_rng_double(r);
		double u2 = ds_rng_double(r);
		double rad = sqrt(-2.0 * log(u1));

		z = rad * cos(2.0 * M_PI * u2);
		st->spare = rad * sin(2.0 * M_PI * u2);
		st->has_spare = 1;
	}
	v = nearbyint(exp(2.0 * z) * 1e9);
	/* |z| <= ~8.6 with 53-bit uniforms, so v < 3e16: no overflow, but clamp
	 * rather than rely on that. */
	if (v >= 0x1.0p64)
		return UINT64_MAX;
	return (uint64_t)v;
}

static void gen_timestamps(ds_rng *r, uint64_t *keys, size_t n)
{
	uint64_t ts = DS_TS_BASE;

	for (size_t i = 0; i < n; i++) {
		keys[i] = ts;
		ts += 1 + rng_below(r, 10);
	}
}

/*
 * device << 44 | ts.  Time-major: every device reports once in second s
 * (in device order) before any device reports in second s + 1.  Jitter is at
 * most 900 ms, so a device's readings are at least 100 ms apart and keys are
 * distinct by construction; the check below keeps it honest if the
 * constants are ever changed.
 */
static void gen_device(ds_rng *r, uint64_t *keys, size_t n)
{
	size_t devices = n < 10000 ? n : 10000;
	uint64_t *last;
	size_t i = 0;

	if (n == 0)
		return;
	last = calloc(devices, sizeof(*last));
	if (last == NULL)
		TEST_DIE("gen_device: out of memory");
	for (uint64_t sec = 0; i < n; sec++) {
		for (size_t d = 0; d < devices && i < n; d++) {
			uint64_t ts = DS_TS_BASE + sec * 1000 + rng_below(r, 901);

			if (sec > 0 && ts <= last[d])
				TEST_DIE("gen_device: device %zu not increasing", d);
			last[d] = ts;
			keys[i++] = (uint64_t)d << 44 | ts;
		}
	}
	free(last);
}

/* Outliers anywhere in the 64-bit space: the shortfall refill of clusters. */
static uint64_t draw_outlier(ds_rng *r, void *arg)
{
	(void)arg;
	return ds_rng_next(r);
}

/*
 * Up to 64 dense runs at random places, each a walk with steps of 1..3, plus
 * ~0.1% outliers over the whole key space and the four extreme keys 0, 1,
 * UINT64_MAX - 1 and UINT64_MAX.  Run lengths are uneven (random weights) so
 * that some clusters are much denser in rank than others.
 */
static void gen_clusters(ds_rng *r, uint64_t *keys, size_t n)
{
	size_t i = 0, extremes = n >= 8 ? 4 : 0;
	size_t outliers = n / 1000;
	size_t rest = n - extremes - outliers;
	size_t nclusters = rest / 4 < 64 ? rest / 4 : 64;
	double weight[64], wsum = 0;

	if (extremes) {
		keys[i++] = 0;
		keys[i++] = 1;
		keys[i++] = UINT64_MAX - 1;
		keys[i++] = UINT64_MAX;
	}
	for (size_t k = 0; k < outliers; k++)
		keys[i++] = ds_rng_next(r);
	if (nclusters == 0)
		nclusters = 1;
	for (size_t c = 0; c < nclusters; c++) {
		weight[c] = 0.25 + ds_rng_double(r);
		wsum += weight[c];
	}
	for (size_t c = 0; c < nclusters && i < n; c++) {
		size_t len = c + 1 == nclusters ? n - i
		                                : (size_t)((double)rest * weight[c] / wsum);
		uint64_t span, x;

		if (len > n - i)
			len = n - i;
		/* The walk covers at most 3 * len; start low enough not to wrap. */
		span = 3 * (uint64_t)len + 1;
		x = rng_below(r, UINT64_MAX - span);
		for (size_t k = 0; k < len; k++) {
			keys[i++] = x;
			x += 1 + rng_below(r, 3);
		}
	}
	/* Overlapping clusters or an outlier landing on a cluster key: replace
	 * the lost keys by more outliers. */
	fill_distinct(keys, n, ds_sort_unique(keys, n), r, draw_outlier, NULL);
}

void ds_generate(enum ds_dist d, uint64_t seed, uint64_t *keys, size_t n)
{
	ds_rng r;

	/* Mix the distribution into the stream so that the same seed gives
	 * unrelated streams for different distributions. */
	ds_rng_seed(&r, seed ^ ((uint64_t)d + 1) * UINT64_C(0xd1b54a32d192ed03));
	switch (d) {
	case DS_UNIFORM:
		fill_distinct(keys, n, 0, &r, draw_uniform, NULL);
		ds_shuffle(keys, n, ds_rng_next(&r));
		break;
	case DS_LOGNORMAL: {
		struct lognormal_state st = { 0, 0 };

		fill_distinct(keys, n, 0, &r, draw_lognormal, &st);
		ds_shuffle(keys, n, ds_rng_next(&r));
		break;
	}
	case DS_TIMESTAMPS:
		gen_timestamps(&r, keys, n);
		break;
	case DS_DEVICE:
		gen_device(&r, keys, n);
		break;
	case DS_CLUSTERS:
		gen_clusters(&r, keys, n);
		ds_shuffle(keys, n, ds_rng_next(&r));
		break;
	default:
		TEST_DIE("ds_generate: unknown distribution %d", (int)d);
	}
}

/* ---------------------------------------------------------------- Zipf */

/*
 * zeta(n, theta) = sum_{i=1..n} i^-theta.  The first ZETA_EXACT terms are
 * summed directly; the tail sum_{i=m..n} f(i) with f(x) = x^-theta is
 * Euler-Maclaurin: the integral, plus (f(m) + f(n)) / 2, plus
 * (f'(n) - f'(m)) / 12.  The next term is of order f'''(m) / 720, about
 * 1e-14 for m = 4096, so the result equals the O(n) sum to double precision
 * while costing O(1) for n in the billions.
 */
#define ZETA_EXACT 4096

static double zeta(uint64_t n, double theta)
{
	double sum = 0;
	uint64_t m = n < ZETA_EXACT ? n : ZETA_EXACT;

	for (uint64_t i = 1; i < m; i++)
		sum += pow((double)i, -theta);
	if (n < ZETA_EXACT) {
		if (n >= 1)
			sum += pow((double)n, -theta);
		return sum;
	}
	double a = (double)m, b = (double)n;
	double integral = theta == 1.0 ? log(b / a)
	                               : (pow(b, 1 - theta) - pow(a, 1 - theta)) / (1 - theta);
	double ends = (pow(a, -theta) + pow(b, -theta)) / 2;
	double deriv = (-theta * pow(b, -theta - 1) + theta * pow(a, -theta - 1)) / 12;

	return sum + integral + ends + deriv;
}

/*
 * Gray, Sundaresan, Englert, Baclawski, Weinberger, "Quickly generating
 * billion-record synthetic databases" (SIGMOD 1994): one uniform draw and
 * one pow() per sample.  The method needs theta != 1.
 */
void ds_zipf_init(ds_zipf *z, uint64_t n, double theta)
{
	if (n == 0 || theta <= 0 || theta == 1.0)
		TEST_DIE("ds_zipf_init: need n > 0 and theta in (0,1) or > 1");
	double zeta2 = zeta(2, theta);

	z->n = n;
	z->theta = theta;
	z->zetan = zeta(n, theta);
	z->alpha = 1.0 / (1.0 - theta);
	z->eta = (1.0 - pow(2.0 / (double)n, 1.0 - theta)) / (1.0 - zeta2 / z->zetan);
}

uint64_t ds_zipf_next(ds_zipf *z, ds_rng *r)
{
	double u = ds_rng_double(r);
	double uz = u * z->zetan;
	uint64_t rank;

	if (uz < 1.0)
		return 0;
	if (z->n > 1 && uz < 1.0 + pow(0.5, z->theta))
		return 1;
	rank = (uint64_t)((double)z->n * pow(z->eta * u - z->eta + 1.0, z->alpha));
	return rank < z->n ? rank : z->n - 1;
}
