/*
 * tests/lib/datasets.h — deterministic key sets shared by tests, stress runs
 * and benchmarks.  Every generator is seeded, so a failing run can be
 * replayed from its printed seed.
 */
#ifndef OMEN_TESTS_DATASETS_H
#define OMEN_TESTS_DATASETS_H

#include <stddef.h>
#include <stdint.h>

/* The five distributions of issue 2. */
enum ds_dist {
	DS_UNIFORM = 0,    /* uniform over all 64-bit keys                                   */
	DS_LOGNORMAL,      /* exp(N(0, 2^2)) scaled to integers (x 1e9), deduplicated        */
	DS_TIMESTAMPS,     /* ascending ms timestamps from 1.7e12, random gaps of 1..10 ms   */
	DS_DEVICE,         /* device << 44 | ms ts: 10,000 devices, one reading per device
	                      per second with up to 0.9 s jitter, ts from 1.7e12, time-major */
	DS_CLUSTERS,       /* dense clusters plus extreme outliers (0, UINT64_MAX, ...)      */
	DS_NDIST
};

const char *ds_name(enum ds_dist d);
/* Parse a name as printed by ds_name; -1 when unknown. */
int ds_parse(const char *name);

/* splitmix64-based PRNG. */
typedef struct ds_rng { uint64_t s; } ds_rng;
void ds_rng_seed(ds_rng *r, uint64_t seed);
uint64_t ds_rng_next(ds_rng *r);
double ds_rng_double(ds_rng *r);          /* [0, 1) */

/*
 * Generate n distinct keys of distribution d into keys[] (caller allocates n).
 * The order is the distribution's natural arrival order: random for uniform,
 * lognormal and clusters; ascending for timestamps; time-major for device.
 */
void ds_generate(enum ds_dist d, uint64_t seed, uint64_t *keys, size_t n);

/* Fisher-Yates shuffle and ascending sort (radix) helpers. */
void ds_shuffle(uint64_t *keys, size_t n, uint64_t seed);
void ds_sort(uint64_t *keys, size_t n);
/* Sort and squeeze out duplicates; returns the distinct count. */
size_t ds_sort_unique(uint64_t *keys, size_t n);
/* In ascending a[0, n): the index of the first element >= key (n when
 * there is none). */
size_t ds_lower_bound(const uint64_t *a, size_t n, uint64_t key);

/* Zipf(theta) sampler over ranks [0, n): rank 0 is hottest. */
typedef struct ds_zipf {
	double theta, alpha, zetan, eta;
	uint64_t n;
} ds_zipf;
void ds_zipf_init(ds_zipf *z, uint64_t n, double theta);
uint64_t ds_zipf_next(ds_zipf *z, ds_rng *r);

#endif
