/*
 * core/alex.h — the ALEX learned index: an ordered in-memory map from uint64_t
 * keys to uint64_t payloads (Ding et al., "ALEX: An Updatable Adaptive Learned
 * Index", SIGMOD 2020), written for OmenDB.
 *
 * Internal API: not installed, not exported from libomendb.
 *
 * Concurrency contract: one writer, any number of lock-free readers.
 *
 *   Writer functions (alex_bulk_load, alex_insert, alex_delete,
 *   alex_apply_batch, alex_writer_lookup, alex_check) are called by one
 *   thread at a time per tree: the shard's worker.  They need no RCU
 *   section.
 *
 *   Reader functions (alex_lookup, alex_lower_bound, alex_iter_seek,
 *   alex_iter_next, alex_get_stats) may run in any number of threads,
 *   concurrently with the writer and each other, each call made inside an
 *   RCU read-side section of the calling thread (orcu_read_lock() in
 *   core/rcu.h; it registers the thread on first use).  They take no lock
 *   and write no shared memory.  alex_size and alex_memory_bytes need no
 *   section.
 *
 *   What a reader sees: each leaf carries a sequence counter (ck_sequence)
 *   that the writer makes odd while it edits the leaf in place (once per
 *   batch, not per key); a reader that saw it move retries the leaf.
 *   Structural changes build new nodes aside and publish them with release
 *   stores; the replaced leaf is marked obsolete (readers restart from the
 *   root) and freed after an RCU grace period.  So a lookup returns a
 *   (key, payload) pair that was in the tree at one instant during the call.
 *
 *   alex_create and alex_destroy: no concurrent call of any kind (destroy
 *   waits for the deferred frees of retired nodes).
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

/* Free the tree and every node, after waiting for the deferred frees of
 * retired nodes.  No other call on the tree may run, and no reader may
 * still hold a pointer into it (unpublish the tree, then orcu_synchronize).
 * Not from inside a read-side section.  NULL is a no-op. */
void alex_destroy(alex_tree *t);

/*
 * Bulk load from strictly ascending keys (payloads[i] belongs to keys[i]).
 * The tree must be empty: -EINVAL otherwise, or when keys are not strictly
 * ascending.  n == 0 is legal and leaves the tree empty.
 */
int alex_bulk_load(alex_tree *t, const uint64_t *keys, const uint64_t *payloads, size_t n);

/* Point lookup (reader: inside an RCU read-side section).  Returns true and
 * sets *payload (if non-NULL) when present. */
bool alex_lookup(const alex_tree *t, uint64_t key, uint64_t *payload);

/* The same lookup for the writer thread (or when no writer runs): no
 * version checks, no RCU section needed. */
bool alex_writer_lookup(const alex_tree *t, uint64_t key, uint64_t *payload);

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

/* Live keys (any thread; exact on the writer thread, a recent value
 * elsewhere). */
uint64_t alex_size(const alex_tree *t);

/* Bytes of memory held by the index (all nodes, as allocated; retired nodes
 * waiting for their grace period are no longer counted).  Any thread. */
size_t alex_memory_bytes(const alex_tree *t);

/*
 * Ordered forward iteration (reader: inside an RCU read-side section).
 * alex_iter_seek positions the iterator at the first key >= key;
 * alex_iter_next returns it and advances.
 *
 * Under a concurrent writer the iterator returns keys in strictly
 * ascending order, never a key twice, every payload one that was written
 * for its key, and every key that stayed present for the whole iteration.
 *
 * The iterator holds node pointers: one seek and all its nexts belong to
 * one read-side section.  To go on in a later section, seek again past the
 * last key returned.
 */
typedef struct alex_iter {
	const alex_tree *tree;
	const struct alex_leaf *leaf; /* NULL at the end                           */
	uint32_t pos;                 /* next slot to look at in leaf              */
	uint32_t version;             /* leaf's sequence when pos was computed     */
	uint64_t last;                /* last key returned, or seek key - 1        */
	bool have_last;               /* false until a key was returned, unless
				       * the seek key was > 0 (last = key - 1)     */
} alex_iter;

void alex_iter_seek(const alex_tree *t, uint64_t key, alex_iter *it);
bool alex_iter_next(alex_iter *it, uint64_t *key, uint64_t *payload);

/* The smallest key >= key (reader).  Returns false when there is none. */
bool alex_lower_bound(const alex_tree *t, uint64_t key, uint64_t *found, uint64_t *payload);

/*
 * Invariant checker for tests (writer thread): walks every node and verifies routing, order,
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
	uint64_t retired;            /* nodes replaced and freed after a grace period */
} alex_stats;

/* Any thread inside an RCU read-side section (walks the internal nodes for
 * max_depth); counters are recent values. */
void alex_get_stats(const alex_tree *t, alex_stats *st);

#ifdef __cplusplus
}
#endif
#endif
