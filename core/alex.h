/*
 * core/alex.h — the ALEX learned index: an ordered in-memory map from uint64_t
 * keys to uint64_t payloads (Ding et al., "ALEX: An Updatable Adaptive Learned
 * Index", SIGMOD 2020), written for OmenDB.
 *
 * Internal API: not installed, not exported from libomendb.
 *
 * Concurrency contract (this version): a tree is single-threaded.  Every
 * function that takes a non-const tree mutates it and must not run
 * concurrently with any other call on the same tree.  Const functions may
 * run concurrently with each other.  All mutation is funnelled through a few
 * functions in alex.c (leaf_insert_at, leaf_erase_at, leaf_build and the
 * subtree replacement helpers) so that a per-node version word and RCU
 * publication can be added without touching the algorithms.
 *
 * Error convention: 0 (or a documented non-negative count) on success,
 * a negative errno value (-ENOMEM, -EINVAL) on failure.  On failure the tree
 * is unchanged: every structural change is built aside and only swapped in
 * once all of its memory has been allocated.
 */
#ifndef OMEN_CORE_ALEX_H
#define OMEN_CORE_ALEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct alex_tree alex_tree;
struct alex_leaf;

/*
 * Tuning knobs.  alex_config_init() fills the defaults used by the engine;
 * tests shrink the limits to force expansions, splits and root growth on
 * small data sets.  Unknown/zero fields fall back to defaults.
 */
typedef struct alex_config {
	uint32_t max_leaf_slots;   /* a leaf never grows past this many slots (power of two) */
	uint32_t bulk_leaf_keys;   /* bulk load: a leaf holds at most this many keys         */
	uint32_t keys_per_slot;    /* bulk load: internal fanout ~ keys / keys_per_slot      */
	uint32_t max_fanout_bits;  /* internal nodes have at most 2^max_fanout_bits slots    */
	unsigned arena;            /* jemalloc arena for all nodes; 0 = create one per tree  */
} alex_config;

void alex_config_init(alex_config *cfg);

/* Create an empty tree.  cfg may be NULL (defaults).  -ENOMEM on failure. */
int alex_create(const alex_config *cfg, alex_tree **out);

/* Free the tree and every node.  NULL is a no-op. */
void alex_destroy(alex_tree *t);

/*
 * Bulk load from strictly ascending keys (payloads[i] belongs to keys[i]).
 * The tree must be empty: -EINVAL otherwise, or when keys are not strictly
 * ascending.  n == 0 is legal and leaves the tree empty.
 */
int alex_bulk_load(alex_tree *t, const uint64_t *keys, const uint64_t *payloads, size_t n);

/* Point lookup.  Returns true and sets *payload (if non-NULL) when present. */
bool alex_lookup(const alex_tree *t, uint64_t key, uint64_t *payload);

/* Insert or update.  Returns 1 when the key is new, 0 when an existing
 * key's payload was replaced, -ENOMEM on allocation failure (tree unchanged). */
int alex_insert(alex_tree *t, uint64_t key, uint64_t payload);

/* Delete.  Returns 1 when the key was present, 0 when absent; never fails
 * (when a sparse leaf cannot be shrunk for lack of memory it stays large). */
int alex_delete(alex_tree *t, uint64_t key);

/* One operation of a batch. */
enum alex_op_kind { ALEX_OP_PUT = 0, ALEX_OP_DEL = 1 };
typedef struct alex_op {
	uint64_t key;
	uint64_t payload;    /* ignored for ALEX_OP_DEL */
	uint32_t kind;       /* enum alex_op_kind       */
} alex_op;

/* What a batch did. */
typedef struct alex_batch_result {
	uint64_t inserted, updated, deleted, absent;
} alex_batch_result;

/*
 * Apply a run of operations sorted by key (non-decreasing; for equal keys the
 * later op wins).  Each data node is located once and touched once for all
 * the ops that fall in it.  -EINVAL if keys are out of order (tree
 * unchanged); -ENOMEM on allocation failure (ops before the failing node are
 * applied; res tells how many).  res may be NULL.
 */
int alex_apply_batch(alex_tree *t, const alex_op *ops, size_t n, alex_batch_result *res);

/* Live keys. */
uint64_t alex_size(const alex_tree *t);

/* Bytes of memory held by the index (all nodes, as allocated). */
size_t alex_memory_bytes(const alex_tree *t);

/*
 * Ordered forward iteration.  alex_iter_seek positions the iterator at the
 * first key >= key; alex_iter_next returns it and advances.  An iterator is
 * invalidated by any mutation of the tree.
 */
typedef struct alex_iter {
	const alex_tree *tree;
	const struct alex_leaf *leaf;
	uint32_t pos;
} alex_iter;

void alex_iter_seek(const alex_tree *t, uint64_t key, alex_iter *it);
bool alex_iter_next(alex_iter *it, uint64_t *key, uint64_t *payload);

/* The smallest key >= key.  Returns false when there is none. */
bool alex_lower_bound(const alex_tree *t, uint64_t key, uint64_t *found, uint64_t *payload);

/*
 * Invariant checker for tests: walks every node and verifies routing, order,
 * gap fill, counts, leaf links and memory accounting.  Returns 0, or -1 and a
 * description in msg.
 */
int alex_check(const alex_tree *t, char *msg, size_t msglen);

typedef struct alex_stats {
	uint64_t keys;
	uint64_t bytes;
	uint64_t leaves, inners;
	uint32_t max_depth;          /* internal levels above the deepest leaf */
	uint64_t expansions;         /* leaf rebuilt larger, model retrained    */
	uint64_t contractions;       /* leaf rebuilt smaller after deletes      */
	uint64_t splits_sideways;    /* leaf split into its parent's slots      */
	uint64_t splits_down;        /* leaf replaced by a new internal node    */
	uint64_t inner_expansions;   /* internal node's slot array doubled      */
	uint64_t root_growths;       /* root domain widened for outside keys    */
} alex_stats;

void alex_get_stats(const alex_tree *t, alex_stats *st);

#ifdef __cplusplus
}
#endif
#endif
