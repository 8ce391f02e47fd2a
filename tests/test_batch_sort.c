/*
 * tests/test_batch_sort.c — the worker's batch sort and last-write-wins
 * dedupe (ingest/batch_sort.h), run by make check.
 *
 * Every case sorts one key set with obs_sort and with each digit width of
 * obs_sort_width, and compares entry by entry (key and idx) against qsort
 * with an idx tiebreak, which is the one stable order; then dedupes and
 * compares against the reference's last entry of each run.  Key sets:
 * uniform random at sizes around the insertion-sort cut-off and up to 1M,
 * many duplicates, all equal, only low or only high bits varying, 0 and
 * UINT64_MAX, device << 44 | ts (datasets.h DS_DEVICE) in arrival order
 * and shuffled, already sorted and reversed.
 *
 * Measurement: unless built with a sanitizer, prints ns/key for n = 4096
 * (uniform and device keys; 8-, 11-, 16-bit digits; qsort) as "#" lines;
 * no check depends on the timings.  `--bench` runs only that, with more
 * repetitions.  OMEN_TEST_SEED=<n> replays a run.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/batch_sort.h"
#include "tests/lib/datasets.h"
#include "tests/lib/tap.h"
#include "tests/lib/util.h"

#if defined(OMEN_ASAN) || defined(OMEN_TSAN)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

static const unsigned widths[] = { 8, 11, 16 };
#define NWIDTHS (sizeof(widths) / sizeof(widths[0]))

static uint64_t g_seed;
static uint32_t *g_counts;   /* room for the largest OBS_COUNTS of the widths */

static size_t counts_elems(void)
{
	size_t m = 0;

	for (size_t i = 0; i < NWIDTHS; i++)
		if (OBS_COUNTS(widths[i]) > m)
			m = OBS_COUNTS(widths[i]);
	return m;
}

/* The reference order: by key, then by arrival. */
static int cmp_ref(const void *a, const void *b)
{
	const obs_entry *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* First index where a and b differ, or n. */
static size_t first_diff(const obs_entry *a, const obs_entry *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i].key != b[i].key || a[i].idx != b[i].idx || a[i].pad != b[i].pad)
			return i;
	return n;
}

static int same(const obs_entry *got, const obs_entry *want, size_t n, const char *what,
		const char *name)
{
	size_t d = first_diff(got, want, n);

	if (!ok(d == n, "%s: %s matches the stable reference (n=%zu)", name, what, n))
		diag("entry %zu: got key %#" PRIx64 " idx %" PRIu32 ", want key %#" PRIx64
		     " idx %" PRIu32, d, got[d].key, got[d].idx, want[d].key, want[d].idx);
	return d == n;
}

/*
 * Sort keys[0, n) (idx = position) every way and check against qsort;
 * then dedupe and check that exactly the last entry of each run stays.
 */
static void check_keys(const char *name, const uint64_t *keys, size_t n)
{
	obs_entry *in = xmalloc(n * sizeof(*in));
	obs_entry *ref = xmalloc(n * sizeof(*ref));
	obs_entry *e = xmalloc(n * sizeof(*e));
	obs_entry *scratch = xmalloc(n * sizeof(*scratch));
	size_t nref = 0, nd;

	for (size_t i = 0; i < n; i++)
		in[i] = (obs_entry){ .key = keys[i], .idx = (uint32_t)i, .pad = (uint32_t)~i };
	if (n)
		memcpy(ref, in, n * sizeof(*in));
	qsort(ref, n, sizeof(*ref), cmp_ref);

	if (n)
		memcpy(e, in, n * sizeof(*in));
	obs_sort(e, scratch, n);
	same(e, ref, n, "obs_sort", name);
	for (size_t w = 0; w < NWIDTHS; w++) {
		char what[32];
		obs_entry *e2 = xmalloc(n * sizeof(*e2));
		int rc;

		snprintf(what, sizeof(what), "%u-bit digits", widths[w]);
		if (n)
			memcpy(e2, in, n * sizeof(*in));
		rc = obs_sort_width(e2, scratch, n, widths[w], g_counts);
		if (rc != 0)
			ok(0, "%s: obs_sort_width(%u) returned %d", name, widths[w], rc);
		else
			same(e2, ref, n, what, name);
		free(e2);
	}

	/* Expected survivors: the reference's last entry of each key. */
	for (size_t i = 0; i < n; i++)
		if (i + 1 == n || ref[i + 1].key != ref[i].key)
			ref[nref++] = ref[i];
	nd = obs_dedupe_last(e, n);
	if (is_u64(nd, nref, "%s: dedupe leaves one entry per key (n=%zu)", name, n))
		same(e, ref, nd, "dedupe (last write of each key)", name);

	free(in);
	free(ref);
	free(e);
	free(scratch);
}

/* Keys drawn from a few values: long runs of equal keys to keep stable. */
static void case_duplicates(size_t n, uint64_t distinct)
{
	char name[64];
	uint64_t *k = xmalloc(n * sizeof(*k));
	ds_rng r;

	snprintf(name, sizeof(name), "duplicates n=%zu over %" PRIu64 " keys", n, distinct);
	ds_rng_seed(&r, case_seed(g_seed, name));
	for (size_t i = 0; i < n; i++)
		k[i] = (ds_rng_next(&r) % distinct) * 0x9e3779b97f4a7c15ULL;
	check_keys(name, k, n);
	free(k);
}

static void case_all_equal(size_t n, uint64_t v)
{
	char name[64];
	uint64_t *k = xmalloc(n * sizeof(*k));

	snprintf(name, sizeof(name), "all equal %#" PRIx64 " n=%zu", v, n);
	for (size_t i = 0; i < n; i++)
		k[i] = v;
	check_keys(name, k, n);
	free(k);
}

/* Only the bits of vary change; the rest are those of base. */
static void case_masked(const char *what, size_t n, uint64_t base, uint64_t vary)
{
	char name[80];
	uint64_t *k = xmalloc(n * sizeof(*k));
	ds_rng r;

	snprintf(name, sizeof(name), "%s n=%zu", what, n);
	ds_rng_seed(&r, case_seed(g_seed, name));
	for (size_t i = 0; i < n; i++)
		k[i] = (base & ~vary) | (ds_rng_next(&r) & vary);
	check_keys(name, k, n);
	free(k);
}

/* Every bit varies ("uniform n=N" names the case, and so its seed). */
static void case_uniform(size_t n)
{
	case_masked("uniform", n, 0, UINT64_MAX);
}

static void case_extremes(size_t n)
{
	char name[48];
	uint64_t *k = xmalloc(n * sizeof(*k));
	ds_rng r;

	snprintf(name, sizeof(name), "0, UINT64_MAX and others n=%zu", n);
	ds_rng_seed(&r, case_seed(g_seed, name));
	for (size_t i = 0; i < n; i++) {
		uint64_t x = ds_rng_next(&r);

		k[i] = x % 3 == 0 ? 0 : x % 3 == 1 ? UINT64_MAX : x >> 1;
	}
	check_keys(name, k, n);
	{
		static const uint64_t two[] = { UINT64_MAX, 0 };

		check_keys("UINT64_MAX then 0", two, 2);
	}
	free(k);
}

/* A window of the device stream, as one worker batch sees it, then the
 * same keys shuffled (producers interleaving arbitrarily). */
static void case_device(size_t n)
{
	char name[48];
	size_t total = n + n / 2;
	uint64_t *k = xmalloc(total * sizeof(*k));
	uint64_t *w;

	ds_generate(DS_DEVICE, case_seed(g_seed, "device"), k, total);
	w = k + n / 2;
	snprintf(name, sizeof(name), "device arrival order n=%zu", n);
	check_keys(name, w, n);
	ds_shuffle(w, n, case_seed(g_seed, "device shuffle"));
	snprintf(name, sizeof(name), "device shuffled n=%zu", n);
	check_keys(name, w, n);
	free(k);
}

static void case_ordered(size_t n)
{
	char name[48];
	uint64_t *k = xmalloc(n * sizeof(*k));

	for (size_t i = 0; i < n; i++)
		k[i] = 1000 + i / 3;   /* ascending, with repeats */
	snprintf(name, sizeof(name), "ascending n=%zu", n);
	check_keys(name, k, n);
	for (size_t i = 0; i < n; i++)
		k[i] = UINT64_MAX - i / 3;
	snprintf(name, sizeof(name), "descending n=%zu", n);
	check_keys(name, k, n);
	free(k);
}

/* A hand-made batch: the surviving idx of each key is its last write. */
static void case_dedupe_explicit(void)
{
	static const uint64_t keys[] = { 5, 3, 5, 9, 3, 5, 1 };
	static const uint32_t want_idx[] = { 6, 4, 5, 3 };   /* keys 1, 3, 5, 9 */
	obs_entry e[7], s[7];
	size_t n;
	int good = 1;

	for (uint32_t i = 0; i < 7; i++)
		e[i] = (obs_entry){ .key = keys[i], .idx = i };
	obs_sort(e, s, 7);
	n = obs_dedupe_last(e, 7);
	is_u64(n, 4, "explicit batch: 4 distinct keys survive");
	for (size_t i = 0; i < 4 && i < n; i++)
		good &= e[i].idx == want_idx[i];
	ok(good, "explicit batch: each key keeps its last write (idx 6, 4, 5, 3)");
	is_u64(obs_dedupe_last(e, 0), 0, "dedupe of an empty batch");
	ok(obs_sort_width(e, s, 7, 12, g_counts) == -EINVAL, "obs_sort_width rejects 12 bits");
}

/* ------------------------------------------------------------ measurement */

static double g_sink;

static int cmp_sort(const void *a, const void *b)
{
	return cmp_ref(a, b);
}

/* Median of reps sort times in ns/key; the input is restored before each
 * run and the copy is not timed.  bits 0: qsort. */
static double time_sort(const obs_entry *in, size_t n, unsigned bits, int reps)
{
	obs_entry *e = xmalloc(n * sizeof(*e)), *s = xmalloc(n * sizeof(*s));
	double *t = xmalloc((size_t)reps * sizeof(*t));

	for (int r = 0; r < reps; r++) {
		double t0;

		memcpy(e, in, n * sizeof(*e));
		t0 = now_sec();
		if (bits)
			obs_sort_width(e, s, n, bits, g_counts);
		else
			qsort(e, n, sizeof(*e), cmp_sort);
		t[r] = (now_sec() - t0) * 1e9 / (double)n;
		g_sink += (double)e[n / 2].key;
	}
	/* insertion sort of the few timings, then the median */
	for (int i = 1; i < reps; i++)
		for (int j = i; j > 0 && t[j - 1] > t[j]; j--) {
			double x = t[j];

			t[j] = t[j - 1];
			t[j - 1] = x;
		}
	double med = t[reps / 2];

	free(e);
	free(s);
	free(t);
	return med;
}

static void measure(int reps)
{
	const size_t n = 4096;
	obs_entry *in = xmalloc(n * sizeof(*in));
	uint64_t *dev = xmalloc(4 * n * sizeof(*dev));
	ds_rng r;

	ds_generate(DS_DEVICE, 7, dev, 4 * n);
	ds_rng_seed(&r, 7);
	diag("ns/key, n=%zu, median of %d runs:    8-bit  11-bit  16-bit   qsort", n, reps);
	for (int set = 0; set < 2; set++) {
		double ns[NWIDTHS + 1];

		for (size_t i = 0; i < n; i++)
			in[i] = (obs_entry){ .key = set ? dev[2 * n + i] : ds_rng_next(&r),
					     .idx = (uint32_t)i };
		for (size_t w = 0; w < NWIDTHS; w++)
			ns[w] = time_sort(in, n, widths[w], reps);
		ns[NWIDTHS] = time_sort(in, n, 0, reps);
		diag("  %-34s %7.1f %7.1f %7.1f %7.1f", set ? "device<<44|ts (arrival order)" :
		     "uniform random", ns[0], ns[1], ns[2], ns[3]);
	}
	free(in);
	free(dev);
}

int main(int argc, char **argv)
{
	bool bench = argc > 1 && strcmp(argv[1], "--bench") == 0;

	g_seed = test_seed_from_env(0x5eed5047);
	g_counts = xmalloc(counts_elems() * sizeof(*g_counts));
	if (bench) {
		plan(1);
		measure(2001);
		ok(1, "measured (checksum %g)", g_sink);
		free(g_counts);
		return done_testing();
	}

	plan_no_plan();
	diag("seed %#" PRIx64 " (OMEN_TEST_SEED=<n> replays)", g_seed);
	{
		static const size_t sizes[] = { 0, 1, 2, 3, 63, 64, 65, 127, 4096, 1000000 };

		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
			case_uniform(sizes[i]);
	}
	case_duplicates(4096, 7);
	case_duplicates(100000, 1000);
	case_duplicates(63, 2);
	case_all_equal(50, 42);
	case_all_equal(4096, 0);
	case_all_equal(4096, UINT64_MAX);
	case_masked("low 12 bits vary", 4096, 0xabcdef0123456789ULL, 0xfff);
	case_masked("low 3 bits vary", 4096, 0, 0x7);
	case_masked("high 4 bits vary", 4096, 0x0123456789abcdefULL, 0xf000000000000000ULL);
	case_masked("top bit only", 4096, 0x0123456789abcdefULL, 0x8000000000000000ULL);
	case_masked("two separated bytes vary", 65536, 0x1111111111111111ULL,
		    0x00ff0000000000ffULL);
	case_extremes(4096);
	case_device(4096);
	case_device(1000000);
	case_ordered(4096);
	case_dedupe_explicit();
	if (!SANITIZED)
		measure(101);
	free(g_counts);
	return done_testing();
}
