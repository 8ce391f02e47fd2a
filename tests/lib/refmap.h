/*
 * tests/lib/refmap.h — a deliberately simple ordered map used as the oracle
 * for differential tests of the ALEX index, and the differential driver that
 * runs the same operations against both and reports every disagreement.
 *
 * The reference is a sorted array cut into blocks of at most REFMAP_BLOCK
 * keys (a flat sorted array with memmove inserts costs O(n) per insert,
 * which turns a million random inserts into terabytes of copying).  A
 * directory of block minima is binary searched, then the block; inserts and
 * deletes memmove inside one block.  test_alex checks this structure against
 * a plain flat array before trusting it.
 *
 * Single-threaded, test code only: allocation failure aborts.
 */
#ifndef OMEN_TESTS_REFMAP_H
#define OMEN_TESTS_REFMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/alex.h"
#include "tests/lib/datasets.h"

/* ------------------------------------------------------ reference map */

#define REFMAP_BLOCK 512

typedef struct refmap_block {
	uint32_t n;                      /* keys in use, 1..REFMAP_BLOCK     */
	uint64_t keys[REFMAP_BLOCK];     /* strictly ascending               */
	uint64_t vals[REFMAP_BLOCK];
} refmap_block;

typedef struct refmap {
	refmap_block **blocks;           /* non-empty blocks in key order    */
	uint64_t *mins;                  /* mins[b] == blocks[b]->keys[0]    */
	size_t nblocks, cap;
	uint64_t size;                   /* live keys                        */
} refmap;

/* A position: block b, index i.  b == nblocks means the end. */
typedef struct refmap_cursor {
	size_t b;
	uint32_t i;
} refmap_cursor;

void refmap_init(refmap *m);
void refmap_free(refmap *m);           /* leaves m empty and reusable */
/* Load strictly ascending keys into an empty map (aborts otherwise). */
void refmap_load(refmap *m, const uint64_t *keys, const uint64_t *vals, size_t n);
bool refmap_get(const refmap *m, uint64_t key, uint64_t *val);
int refmap_put(refmap *m, uint64_t key, uint64_t val);   /* 1 new, 0 updated */
int refmap_del(refmap *m, uint64_t key);                 /* 1 deleted, 0 absent */
uint64_t refmap_size(const refmap *m);
bool refmap_lower_bound(const refmap *m, uint64_t key, uint64_t *found, uint64_t *val);
void refmap_seek(const refmap *m, uint64_t key, refmap_cursor *c);
bool refmap_next(const refmap *m, refmap_cursor *c, uint64_t *key, uint64_t *val);
/* Some present key (biased towards small blocks; fine for picking test
 * operands).  False when the map is empty. */
bool refmap_random(const refmap *m, ds_rng *r, uint64_t *key);

/* ------------------------------------------------- differential driver */

/*
 * One tree, one reference, one seeded stream of operations.  Every phase
 * function applies its operations to both, compares every result, and on a
 * disagreement prints a line naming the case, the seed and the operation
 * number and arguments (so that the run can be replayed), then carries on.
 * Phases return how many disagreements they found; 0 means a clean phase.
 *
 * Keys come from a pool (a ds_generate output in arrival order): the driver
 * hands out pool[next], pool[next + 1], ... as "new" keys, which keeps each
 * case's inserts true to its distribution; "present" keys are drawn from the
 * reference, "absent" keys are unused pool keys, neighbours of present keys
 * and random 64-bit values, and the reference decides what is expected.
 */
typedef struct diff {
	alex_tree *t;
	refmap ref;
	ds_rng rng;
	uint64_t seed;             /* printed with every failure               */
	char name[80];             /* case label, printed with every failure   */
	const uint64_t *pool;      /* candidate keys in arrival order          */
	size_t pool_n, pool_next;  /* pool[pool_next..] were never handed out  */
	uint64_t op;               /* operations issued: names the failing one */
	uint64_t gen;              /* bumped per write: every write's payload is new */
	uint64_t failures;         /* total disagreements so far               */
	uint64_t quiet_after;      /* stop printing after this many failures   */
	FILE *out;                 /* where failures are printed (stdout, as TAP comments) */
} diff;

/* Create the tree (cfg may be NULL) and an empty reference.  Returns the
 * alex_create error, if any. */
int diff_init(diff *d, const alex_config *cfg, const char *name, uint64_t seed,
              const uint64_t *pool, size_t pool_n);
void diff_destroy(diff *d);

/* Print a failure ("# FAIL <name> seed=<seed> op=<op>: ...") and count it. */
void diff_fail(diff *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The payload the driver writes for key in generation gen. */
uint64_t diff_payload(uint64_t key, uint64_t gen);

/* Take the next n pool keys, sort them, and bulk load both sides. */
uint64_t diff_bulk_load(diff *d, size_t n);

/* Single operations: apply to both sides and compare.  Insert and delete
 * follow up with a lookup of the key. */
void diff_op_insert(diff *d, uint64_t key);
void diff_op_delete(diff *d, uint64_t key);
void diff_op_lookup(diff *d, uint64_t key);
void diff_op_lower_bound(diff *d, uint64_t key);

/* Key pickers (the reference decides what is expected regardless). */
uint64_t diff_pick_present(diff *d);   /* a present key, or a new one if empty */
uint64_t diff_pick_new(diff *d);       /* next pool key, or random when used up */
uint64_t diff_pick_absent(diff *d);    /* very likely absent                   */
uint64_t diff_pick_probe(diff *d);     /* anything, extremes included          */

/* nops inserts; pct_existing percent of them hit present keys (updates). */
uint64_t diff_inserts(diff *d, size_t nops, unsigned pct_existing);
/* nops deletes; pct_present percent of them target present keys. */
uint64_t diff_deletes(diff *d, size_t nops, unsigned pct_present);
/* Lookups: half present keys, half likely-absent keys. */
uint64_t diff_lookups(diff *d, size_t nops);
/* Lower bounds from random probes, always including 0 and UINT64_MAX. */
uint64_t diff_lower_bounds(diff *d, size_t nops);
/* A random mix of inserts, updates, deletes, lookups and lower bounds. */
uint64_t diff_mixed(diff *d, size_t nops);
/* nseeks iterator seeks from random probes, each followed by steps next()s. */
uint64_t diff_seeks(diff *d, size_t nseeks, unsigned steps);
/* Fill ops (room for maxlen) with one sorted run of 1..maxlen ops: puts and
 * deletes of present, new and absent keys, with duplicate keys in issue
 * order (the later op wins).  Returns the length.  Payloads are new. */
size_t diff_make_batch(diff *d, alex_op *ops, size_t maxlen);
/* Apply a sorted op run to both sides; compares the return code, the
 * alex_batch_result counts (against one-by-one application in order) and a
 * lookup of every key touched. */
uint64_t diff_apply_batch(diff *d, const alex_op *ops, size_t n);
/* nbatches sorted op runs of 1..maxlen ops: puts and deletes of present,
 * new and absent keys with duplicate keys (the later op wins). */
uint64_t diff_batches(diff *d, size_t nbatches, size_t maxlen);
/* Full iteration, element by element, and strict ascent on the tree side. */
uint64_t diff_iterate(diff *d);
/* Every present key looked up, plus its absent neighbours. */
uint64_t diff_lookup_all(diff *d);
/* alex_check and alex_size against the reference; what names the phase. */
uint64_t diff_check(diff *d, const char *what);

#endif
