/*
 * ingest/batch_sort.h — the shard worker's batch preparation: sort a
 * drained batch by key, then keep only the latest write of each key.
 *
 * The worker extracts, for each record of a batch, its key and its
 * arrival position (idx: the record's index in the array oq_pop_batch
 * filled) into an array of obs_entry, sorts that array with obs_sort and
 * squeezes it with obs_dedupe_last.  The records themselves never move:
 * 16-byte entries keep the sort's scatter passes cache-friendly (four per
 * line) and the key comparisons free of pointer chasing.
 *
 * Sort: stable LSD radix sort on the 64-bit key.  Stability is what makes
 * "last entry of a run of equal keys" mean "latest write": oq_pop_batch
 * hands out one producer's records in push order, so one thread's writes
 * to one key keep their order through the sort.  (Writes of different
 * threads to one key are concurrent; any order between them is correct.)
 *
 * Digits: a first pass ORs together key ^ key[0], which gives the bits
 * that vary in this batch (and notices an already sorted batch, which is
 * returned untouched).  Digits are then placed greedily on varying bits
 * only: each starts at the lowest varying bit not yet covered, so constant
 * runs of bits are jumped over, not just constant whole digits.  Telemetry
 * keys (device << 44 | ms timestamp) in one batch vary in the low bits of
 * the timestamp and in the device bits, with constant bits between.
 * One more pass builds the histograms of every planned digit; then one
 * scatter pass per digit, ping-ponging between entries and scratch.
 *
 * Digit width: OBS_DIGIT_BITS = 11.  Measured on the 2-core test VM (gcc
 * 12 -O2, n = 4096, median of 2001 runs, ns per key, from
 * `tests/test_batch_sort --bench`; qsort with the key, idx comparator):
 *
 *                      8-bit   11-bit   16-bit   qsort
 *   uniform random      14.7     12.2     37.6    58-65
 *   device keys          8.4      8.0     16.1     24.0
 *
 * 16-bit digits lose at this size because each of the 65536 counters is
 * cleared and prefix-summed per digit, 16 counters per key at n = 4096,
 * and the histograms (1 MiB for 4 digits) fall out of L2.  11 bits take
 * six passes for uniform keys against eight, and their histograms (6 x
 * 2048 counters, 48 KiB, on the stack) still sit in L2; on device keys,
 * whose varying bits the greedy placement covers with few digits of
 * either width, the two are within noise.
 *
 * Tiny batches (n < OBS_SMALL_N) use insertion sort, which is stable and
 * beats the histogram set-up below a few dozen entries.
 *
 * Threads: every function works only on the memory it is given; the shard
 * worker calls them on its own arrays, and any thread may call them on
 * arrays no other thread touches meanwhile.  Nothing allocates: the worker
 * owns the entry and scratch arrays and reuses them for every batch.
 */
#ifndef OMEN_INGEST_BATCH_SORT_H
#define OMEN_INGEST_BATCH_SORT_H

#include <stddef.h>
#include <stdint.h>

/* One record of a batch: its key and its arrival position in the batch.
 * pad is ignored (and preserved through the sort: entries move whole). */
typedef struct obs_entry {
	uint64_t key;
	uint32_t idx;
	uint32_t pad;
} obs_entry;

/* The radix digit width obs_sort uses (see the measurements above). */
#define OBS_DIGIT_BITS 11

/* Below this many entries obs_sort uses insertion sort. */
#define OBS_SMALL_N 64

/*
 * Sort entries[0, n) by key, ascending, stably (equal keys keep their
 * order in the input).  scratch has room for n entries, does not overlap
 * entries, and its contents are clobbered; the result is in entries.
 * n must not exceed UINT32_MAX (the histograms count in 32 bits).
 */
void obs_sort(obs_entry *entries, obs_entry *scratch, size_t n);

/*
 * As obs_sort, with digits of `bits` bits (8, 11 or 16) and with the histograms in counts, which holds
 * OBS_COUNTS(bits) elements (clobbered).  For measuring the widths
 * against each other: the worker calls obs_sort.  Insertion sort still
 * takes tiny n.  Returns 0, or -EINVAL for an unsupported width.
 */
#define OBS_COUNTS(bits) ((size_t)((64 + (bits) - 1) / (bits)) << (bits))
int obs_sort_width(obs_entry *entries, obs_entry *scratch, size_t n, unsigned bits,
		   uint32_t *counts);

/*
 * After obs_sort: keep, of each run of equal keys, only its last entry
 * (the latest write), moving the survivors down in place, in key order.
 * Returns the new count (n when all keys are distinct, 0 when n is 0).
 */
size_t obs_dedupe_last(obs_entry *entries, size_t n);

#endif
