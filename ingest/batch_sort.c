/*
 * ingest/batch_sort.c — stable LSD radix sort of a batch by key, and
 * last-write-wins deduplication (see batch_sort.h for the plan and the
 * measurements behind the digit width).
 *
 * Invariant of the radix passes: after the scatter on digit p, the entries
 * are ordered by the key bits of digits 0..p (compared as one number,
 * digit p most significant), and entries equal on those bits are in input
 * order.  Each scatter is stable (it walks its source forward and fills
 * each bucket forward), so the invariant carries from one digit to the
 * next; the planned digits cover every bit that varies, and the bits they
 * do not cover are equal in every key, so after the last digit the order
 * is by key, equal keys in input order.
 */
#include "ingest/batch_sort.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

_Static_assert(sizeof(obs_entry) == 16, "obs_entry must stay 16 bytes (4 per cache line)");

/* The most digits any supported width needs (8-bit digits: 8). */
#define MAX_DIGITS 8

#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

/* Stable insertion sort: an entry moves left only past strictly greater
 * keys, so equal keys never cross. */
static void insertion_sort(obs_entry *e, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		obs_entry x = e[i];
		size_t j = i;

		while (j > 0 && e[j - 1].key > x.key) {
			e[j] = e[j - 1];
			j--;
		}
		e[j] = x;
	}
}

/*
 * Place digits of `bits` bits on the set bits of varying (nonzero): each
 * digit starts at the lowest set bit not covered by the digits below it.
 * Returns the number of digits, at most ceil(64 / bits) since consecutive
 * starts are at least `bits` apart.
 */
static unsigned plan_digits(uint64_t varying, unsigned bits, unsigned shift[MAX_DIGITS])
{
	unsigned nd = 0;

	while (varying) {
		unsigned lo = (unsigned)__builtin_ctzll(varying);

		shift[nd++] = lo;
		if (lo + bits >= 64)
			break;
		varying &= ~(((uint64_t)1 << (lo + bits)) - 1);
	}
	return nd;
}

/*
 * The sort for one digit width; always inlined into callers that pass a
 * constant `bits`, so the digit mask and the histogram strides are
 * constants in the hot loops.  counts holds OBS_COUNTS(bits) elements.
 */
static ALWAYS_INLINE void radix_sort(obs_entry *restrict e, obs_entry *restrict scratch,
				     size_t n, const unsigned bits, uint32_t *restrict counts)
{
	const uint64_t dmask = ((uint64_t)1 << bits) - 1;
	const size_t nbuckets = (size_t)1 << bits;
	unsigned shift[MAX_DIGITS];
	uint64_t first, varying = 0;
	bool sorted = true;
	unsigned nd;

	assert(n <= UINT32_MAX);
	if (n < OBS_SMALL_N) {
		insertion_sort(e, n);
		return;
	}

	/* Pass 1: which bits vary, and is the batch already in order (one
	 * producer writing ascending timestamps sends exactly that)? */
	first = e[0].key;
	for (size_t i = 1; i < n; i++) {
		varying |= e[i].key ^ first;
		sorted &= e[i].key >= e[i - 1].key;
	}
	if (sorted)
		return;   /* also covers all keys equal: varying == 0 */

	nd = plan_digits(varying, bits, shift);

	/* Pass 2: every digit's histogram at once. */
	memset(counts, 0, (size_t)nd * nbuckets * sizeof(*counts));
	for (size_t i = 0; i < n; i++) {
		uint64_t k = e[i].key;

		for (unsigned d = 0; d < nd; d++)
			counts[d * nbuckets + ((k >> shift[d]) & dmask)]++;
	}

	/* Histograms into exclusive prefix sums: each bucket's first slot. */
	for (unsigned d = 0; d < nd; d++) {
		uint32_t *c = counts + d * nbuckets;
		uint32_t sum = 0;

		for (size_t b = 0; b < nbuckets; b++) {
			uint32_t x = c[b];

			c[b] = sum;
			sum += x;
		}
	}

	/* One stable scatter per digit, ping-ponging between the arrays. */
	obs_entry *src = e, *dst = scratch;

	for (unsigned d = 0; d < nd; d++) {
		uint32_t *c = counts + d * nbuckets;
		const unsigned sh = shift[d];

		for (size_t i = 0; i < n; i++) {
			obs_entry x = src[i];

			dst[c[(x.key >> sh) & dmask]++] = x;
		}
		obs_entry *t = src;

		src = dst;
		dst = t;
	}
	if (src != e)
		memcpy(e, src, n * sizeof(*e));
}

void obs_sort(obs_entry *entries, obs_entry *scratch, size_t n)
{
	/* 48 KiB of stack with 11-bit digits: the worker thread's stack is
	 * the default (8 MiB), and this is a leaf. */
	uint32_t counts[OBS_COUNTS(OBS_DIGIT_BITS)];

	radix_sort(entries, scratch, n, OBS_DIGIT_BITS, counts);
}

int obs_sort_width(obs_entry *entries, obs_entry *scratch, size_t n, unsigned bits,
		   uint32_t *counts)
{
	switch (bits) {
	case 8:
		radix_sort(entries, scratch, n, 8, counts);
		return 0;
	case 11:
		radix_sort(entries, scratch, n, 11, counts);
		return 0;
	case 16:
		radix_sort(entries, scratch, n, 16, counts);
		return 0;
	default:
		return -EINVAL;
	}
}

size_t obs_dedupe_last(obs_entry *entries, size_t n)
{
	size_t w = 0;

	/* entries[i] survives when it ends its run; w <= i, so the copy
	 * never overwrites an entry not yet read. */
	for (size_t i = 0; i < n; i++) {
		if (i + 1 == n || entries[i + 1].key != entries[i].key)
			entries[w++] = entries[i];
	}
	return w;
}
