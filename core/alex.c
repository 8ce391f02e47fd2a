/*
 * core/alex.c — the ALEX learned index (Ding et al., SIGMOD 2020) in C.
 *
 * Shape
 * -----
 * The tree has internal nodes and data nodes ("leaves").
 *
 * A leaf is a gapped array of (key, payload) slots with a linear model
 * position = slope * (key - base) + icept fitted by least squares to the
 * keys' ranks and scaled to the capacity.  Keys are placed where the model
 * predicts them (model-based placement and model-based insert), so most
 * lookups find their key at, or one slot away from, the prediction; an
 * exponential search from the prediction corrects the rest.
 *
 * Gap fill: a gap holds a copy of the key of the next real slot to its
 * right, so the key column of slots [0, used_end) is non-decreasing and can
 * be searched without knowing where the gaps are.  Consequences used below:
 *   - slot i < used_end - 1 is a gap  iff  key[i] == key[i + 1];
 *   - slot used_end - 1 is always real; slots >= used_end are the empty tail
 *     and hold nothing meaningful;
 *   - ub = first slot with key > k; k is present iff ub > 0 and
 *     key[ub - 1] == k, and then slot ub - 1 is real (a gap holding k would
 *     be followed by another slot holding k).
 * So lookups read only the key column: no bitmap.
 *
 * An internal node maps a key to one of 2^fbits child slots with the linear
 * model slot = (key - lo) / 2^shift over its domain [lo, lo + 2^(shift+fbits)),
 * and lo is aligned to the domain's size, so the model evaluates exactly as
 * (key >> shift) & mask.  Compared with the paper's floating-point internal
 * models this loses nothing (ALEX's internal models are also equal-width
 * partitions of the node's key domain with power-of-two fanouts) and gains
 * exactness: routing is a monotone integer function, so "which keys belong
 * to this child" is answered by the same function during splits as during
 * lookups, with no rounding at boundaries.  A child may fill an aligned run
 * of 2^span_bits slots; its domain is exactly that run's key range.
 *
 * Only the root may see keys outside its domain; an insert of such a key
 * first grows the root (a wider slot array, or a new root above it), so the
 * tree never clamps a key into a node that does not cover it.
 *
 * Building (bulk load and every restructure) goes through build_node: it
 * picks a fanout from the key count, computes per-slot least-squares
 * statistics in one pass, then merges aligned buddy slot groups bottom-up
 * into one leaf while the merged fit stays good (the fit is judged by the
 * RMSE of rank predictions, combined exactly from per-slot sums), and
 * recurses into slots that hold too many keys or fit badly.  This is the
 * paper's fanout tree, driven by fit statistics.
 *
 * Runtime adaptation: each leaf counts, on the writer's paths only, the
 * exponential-search distance and the shifts of its inserts.  When a leaf
 * is full (density above D_MAX) it is expanded and retrained, unless its
 * observed cost drifted above what its model promised at build time (or it
 * would pass max_leaf_slots): then it is split, sideways into its parent's
 * slots when its keys straddle a slot boundary (after doubling the parent's
 * slot array if that separates them), otherwise downward into a new
 * internal node built by build_node.
 *
 * Leaves form a doubly linked list in key order for iteration.
 *
 * Concurrency: one writer, lock-free readers
 * -------------------------------------------
 * (Contract in alex.h.)  Readers never lock and never write shared memory;
 * the writer never waits for readers.  Three mechanisms:
 *
 * 1. In-place leaf edits (leaf_insert_at, leaf_erase_at, payload updates)
 *    happen between leaf_write_begin / leaf_write_end, which make the
 *    leaf's ck_sequence odd, then even again.  A batch brackets all of its
 *    edits of one leaf once.  A reader takes the sequence (waiting while it
 *    is odd), searches, reads the payload, and retries the leaf when the
 *    sequence moved.  Between the brackets a reader may see any mixture of
 *    old and new slots (shifted runs, half-filled gaps); it only uses what
 *    it read after validating the sequence, and every index it computes
 *    stays below the used_end it loaded, which never exceeds the immutable
 *    capacity, so a torn view can cost a retry but never an out-of-bounds
 *    read.
 *
 * 2. Structural changes (expansion, contraction, splits, inner expansion,
 *    root growth, bulk load) build every new node aside with plain stores,
 *    then publish it with a release store into the parent slot (or the
 *    root pointer); readers load node pointers with DEREF, so a
 *    reader that sees a new node sees it fully built.  A replaced node is
 *    never modified again.  After publication the old node is marked
 *    obsolete (release; readers check it with acquire and restart from the
 *    root, where they find the replacement) and handed to call_rcu.  A
 *    reader still inside an old node reads a frozen, consistent copy of it;
 *    its memory stays valid until that reader's section ends.
 *
 *    Why PUBLISH/DEREF and not liburcu's rcu_assign_pointer /
 *    rcu_dereference: in liburcu 0.13 rcu_assign_pointer is a full fence
 *    plus a volatile store, which ThreadSanitizer cannot recognise as a
 *    publication (every reader would be reported), and rcu_dereference is
 *    a plain load unless _LGPL_SOURCE is set.  A C11 release store and a
 *    consume load give exactly the ordering those macros document, in
 *    every build, visibly to TSan.
 *
 * 3. Every field a reader reads while the writer may write it is accessed
 *    with __atomic builtins on both sides (relaxed unless stated), so the
 *    seqlock-protected races are not data races in the C11 sense and TSan
 *    stays quiet: slot keys and payloads, used_end, leaf next/prev, inner
 *    child slots, the root pointer, obsolete flags and the tree's counters.
 *    Everything else in a published node is immutable (model, capacity,
 *    domain) or writer-only (cost counters, span_bits, nkeys of a leaf).
 */
#include "core/alex.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include <ck_sequence.h>

#include "core/mem.h"
#include "core/rcu.h"

/* Density bounds of a leaf: expand when an insert would pass D_MAX, rebuild
 * at D_INIT; shrink when deletes take it below D_MIN. */
#define D_MAX 0.8
#define D_INIT 0.7
#define D_MIN 0.3
/* A full leaf that grows is rebuilt at D_EXPAND, below D_INIT, so the next
 * expansion (a copy of the whole leaf) is further away. */
#define D_EXPAND 0.66
/* A leaf whose inserts mostly land past its last key (timestamps) is
 * rebuilt with its keys packed at D_APPEND and APPEND_ROOM * n free slots
 * after them, so appends neither shift nor force a rebuild per key. */
#define D_APPEND 0.8
#define APPEND_ROOM 0.25
#define MIN_CAP 16u
/* Cost weights of the paper: an exponential-search step costs ~40 shifts. */
#define W_SEARCH 20.0
#define W_SHIFT 0.5
/* A leaf needs this many inserts since its build before its observed cost
 * is trusted. */
#define DRIFT_MIN_INSERTS 64
/* An insert that shifts more than LONG_SHIFT slots hit a packed region;
 * when such inserts are frequent the leaf is restructured at once rather
 * than after DRIFT_MIN_INSERTS (each one costs as much as hundreds of
 * ordinary inserts). */
#define LONG_SHIFT 256
#define LONG_SHIFT_TRIGGER 4
/* A leaf whose inserts land on average more than ~2^SEARCH_SPLIT slots
 * from the prediction does not fit its keys: split it. */
#define SEARCH_SPLIT 4.0
/* Fit quality: a slot group may be one leaf while the RMSE of its rank
 * predictions stays within max(RMSE_FLOOR, RMSE_SQRT * sqrt(n)); merging two
 * groups may also raise the RMSE by at most RMSE_MERGE times. */
#define RMSE_FLOOR 8.0
#define RMSE_SQRT 0.6
#define RMSE_MERGE 1.5
#define MAX_DEPTH 66

enum { NODE_LEAF = 1, NODE_INNER = 2 };

/* Common header. */
struct alex_node {
	uint8_t type;      /* NODE_LEAF or NODE_INNER: immutable             */
	uint8_t span_bits; /* log2 of the parent slots this node fills:
			    * writer-only (readers route by the parent)     */
	uint8_t obsolete;  /* 0 -> 1 once replaced and unpublished: release
			    * store by the writer, acquire load by readers  */
	uint8_t pad;
	ck_sequence_t seq; /* leaves: odd while the writer edits in place   */
};

/* Accessors for fields shared with readers (see "Concurrency" above). */
#define LOAD_RELAXED(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE_RELAXED(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
/* Publication of a fully built node, and its reader side.  DEREF is what
 * liburcu's rcu_dereference compiles to in C11 with _LGPL_SOURCE (a
 * consume load); spelled out because without _LGPL_SOURCE (our TSan
 * builds) liburcu's macro becomes a plain load passed to a function. */
#define PUBLISH(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define DEREF(p) __atomic_load_n(&(p), __ATOMIC_CONSUME)
/* Writer-maintained counters read by other threads: one writer, so a
 * relaxed load-add-store is exact and cheaper than a locked add. */
#define COUNT_ADD(p, d) STORE_RELAXED((p), *(p) + (d))

struct alex_slot {
	uint64_t key;
	uint64_t payload;
};

struct alex_inner {
	struct alex_node hdr;
	uint8_t shift;     /* slot width is 2^shift keys                     */
	uint8_t fbits;     /* 2^fbits slots                                  */
	uint16_t pad;
	uint32_t mask;     /* 2^fbits - 1                                    */
	uint64_t lo;       /* domain base, aligned to 2^(shift + fbits)      */
	size_t bytes;      /* allocation size                                */
	uint32_t arena;    /* jemalloc arena, for the deferred free          */
	uint32_t pad1;
	uint64_t pad2;
	struct rcu_head rcu; /* deferred free after replacement            */
	struct alex_node *child[]; /* PUBLISHed by the writer; readers use
				    * DEREF                                  */
};

struct alex_leaf {
	/* First cache line: everything a lookup reads besides the slots. */
	struct alex_node hdr;
	uint32_t cap;       /* slots                                          */
	uint32_t used_end;  /* one past the last real slot                    */
	uint32_t nkeys;     /* real slots                                     */
	uint32_t max_keys;  /* floor(cap * D_MAX): an insert past it restructures */
	uint64_t base;      /* model input is key - base                      */
	double slope, icept;
	struct rcu_head rcu; /* deferred free after replacement              */
	/* Second cache line: the leaf list, then writer bookkeeping. */
	struct alex_leaf *prev, *next; /* PUBLISHed by the writer; readers use
					* DEREF on next                      */
	uint32_t n_long;      /* inserts since build that shifted > LONG_SHIFT */
	uint32_t arena;       /* jemalloc arena, for the deferred free         */
	uint32_t n_ins;       /* inserts since build (saturating)             */
	uint32_t n_append;    /* of which past the last key                   */
	double sum_search;    /* sum of log2(search distance + 1) of inserts  */
	double sum_shift;     /* sum of shifted slots of inserts              */
	double exp_search;    /* expected log2 distance, from the build       */
	double exp_shift;     /* expected shifts per insert, from the build   */
	struct alex_slot slots[];
};

_Static_assert(sizeof(struct alex_leaf) == 128, "leaf header is two cache lines");
_Static_assert(sizeof(struct alex_inner) == 64, "inner header is one cache line");
/* The deferred-free callback finds the node from its rcu_head without
 * knowing its type: same offset in both. */
_Static_assert(offsetof(struct alex_leaf, rcu) == offsetof(struct alex_inner, rcu),
	       "rcu_head at one offset in every node");

struct alex_tree {
	/* Read by every reader: one cache line that only root replacements
	 * write, apart from the writer's hot counters below. */
	struct alex_node *root;     /* PUBLISHed; readers DEREF                */
	alex_config cfg;            /* immutable                               */
	unsigned arena;             /* immutable                               */
	int own_arena;
	/* Writer-only. */
	uint64_t dom_lo __attribute__((aligned(64))); /* keys the root covers  */
	uint64_t dom_hi;
	struct alex_leaf *head, *tail;
	struct alex_slot *scratch;  /* buffer for rebuilds                     */
	size_t scratch_cap;
	/* Written by the writer (COUNT_ADD), read anywhere (LOAD_RELAXED). */
	uint64_t nkeys;
	size_t bytes;
	uint64_t leaves, inners;
	alex_stats st;              /* event counters; keys/bytes/... filled on read */
};

/* ------------------------------------------------------------------ */
/* Small helpers                                                        */

static inline int bitlen64(uint64_t x)
{
	return x ? 64 - __builtin_clzll(x) : 0;
}

static inline int ceil_log2(uint64_t x)
{
	return x <= 1 ? 0 : bitlen64(x - 1);
}

/* Last key of the aligned block [lo, lo + 2^bits). */
static inline uint64_t block_last(uint64_t lo, unsigned bits)
{
	return bits >= 64 ? UINT64_MAX : lo + ((UINT64_C(1) << bits) - 1);
}

void alex_config_init(alex_config *cfg)
{
	cfg->max_leaf_slots = 1u << 18;
	cfg->bulk_leaf_keys = 1u << 14;
	cfg->keys_per_slot = 16;
	cfg->max_fanout_bits = 16;
	cfg->arena = 0;
}

static void config_normalize(alex_config *c)
{
	alex_config d;
	alex_config_init(&d);
	if (c->max_leaf_slots == 0)
		c->max_leaf_slots = d.max_leaf_slots;
	if (c->max_leaf_slots < 64)
		c->max_leaf_slots = 64;
	if (c->max_leaf_slots > (1u << 26))
		c->max_leaf_slots = 1u << 26;
	uint32_t lim = (uint32_t)(c->max_leaf_slots * D_INIT * 0.9);
	if (c->bulk_leaf_keys == 0)
		c->bulk_leaf_keys = d.bulk_leaf_keys;
	if (c->bulk_leaf_keys > lim)
		c->bulk_leaf_keys = lim;
	if (c->bulk_leaf_keys < 4)
		c->bulk_leaf_keys = 4;
	if (c->keys_per_slot == 0)
		c->keys_per_slot = d.keys_per_slot;
	if (c->max_fanout_bits == 0)
		c->max_fanout_bits = d.max_fanout_bits;
	if (c->max_fanout_bits > 20)
		c->max_fanout_bits = 20;
}

/* ------------------------------------------------------------------ */
/* Node allocation and retirement                                       */

static inline size_t leaf_bytes(uint32_t cap)
{
	return sizeof(struct alex_leaf) + (size_t)cap * sizeof(struct alex_slot);
}

static struct alex_leaf *leaf_alloc(alex_tree *t, uint32_t cap)
{
	size_t bytes = leaf_bytes(cap);
	struct alex_leaf *l = omem_alloc(t->arena, bytes);
	if (!l)
		return NULL;
	memset(l, 0, sizeof(*l));
	l->hdr.type = NODE_LEAF;
	l->cap = cap;
	l->max_keys = (uint32_t)(cap * D_MAX);
	if (l->max_keys >= cap)
		l->max_keys = cap - 1;
	l->arena = t->arena;
	COUNT_ADD(&t->bytes, bytes);
	COUNT_ADD(&t->leaves, 1);
	return l;
}

static struct alex_inner *inner_alloc(alex_tree *t, unsigned shift, unsigned fbits, uint64_t lo)
{
	size_t n = (size_t)1 << fbits;
	size_t bytes = sizeof(struct alex_inner) + n * sizeof(struct alex_node *);
	struct alex_inner *in = omem_alloc(t->arena, bytes);
	if (!in)
		return NULL;
	memset(in, 0, bytes);
	in->hdr.type = NODE_INNER;
	in->shift = (uint8_t)shift;
	in->fbits = (uint8_t)fbits;
	in->mask = (uint32_t)(n - 1);
	in->lo = lo;
	in->bytes = bytes;
	in->arena = t->arena;
	COUNT_ADD(&t->bytes, bytes);
	COUNT_ADD(&t->inners, 1);
	return in;
}

static size_t node_bytes(const struct alex_node *n)
{
	if (n->type == NODE_LEAF)
		return leaf_bytes(((const struct alex_leaf *)n)->cap);
	return ((const struct alex_inner *)n)->bytes;
}

static void node_uncount(alex_tree *t, const struct alex_node *n)
{
	COUNT_ADD(&t->bytes, -node_bytes(n));
	if (n->type == NODE_LEAF)
		COUNT_ADD(&t->leaves, -1);
	else
		COUNT_ADD(&t->inners, -1);
}

static unsigned node_arena(const struct alex_node *n)
{
	if (n->type == NODE_LEAF)
		return ((const struct alex_leaf *)n)->arena;
	return ((const struct alex_inner *)n)->arena;
}

/* Free a node no reader can reach: never published, or the tree is being
 * destroyed. */
static void node_free(alex_tree *t, struct alex_node *n)
{
	node_uncount(t, n);
	omem_free(t->arena, n, node_bytes(n));
}

/* call_rcu callback: the grace period is over, no reader holds the node.
 * Runs on liburcu's call_rcu thread; touches only the node itself (the
 * tree may be gone: alex_destroy waits for these with orcu_barrier before
 * it destroys the arena). */
static void node_free_rcu(struct rcu_head *h)
{
	orcu_tsan_quiesced();
	struct alex_node *n =
		(struct alex_node *)((char *)h - offsetof(struct alex_leaf, rcu));
	omem_free(node_arena(n), n, node_bytes(n));
}

/*
 * Retire a node that readers may still hold.  Precondition: it is already
 * unreachable for new readers (its replacement is published: replace_child,
 * relink, set_root).  It is marked obsolete, so in-flight readers restart
 * from the root (the release store orders the replacement's publication
 * before the mark: a reader that sees the mark then sees the replacement),
 * and freed after a grace period.
 */
static void node_retire(alex_tree *t, struct alex_node *n)
{
	node_uncount(t, n);
	COUNT_ADD(&t->st.retired, 1);
	__atomic_store_n(&n->obsolete, 1, __ATOMIC_RELEASE);
	orcu_call((struct rcu_head *)((char *)n + offsetof(struct alex_leaf, rcu)), node_free_rcu);
}

/* Drop a whole subtree with node_free or node_retire (children filling
 * several slots are dropped once; NULL slots of a partly built node are
 * skipped). */
static void subtree_drop(alex_tree *t, struct alex_node *n,
			 void (*drop)(alex_tree *, struct alex_node *))
{
	if (!n)
		return;
	if (n->type == NODE_INNER) {
		struct alex_inner *in = (struct alex_inner *)n;
		uint32_t nslots = in->mask + 1;
		for (uint32_t i = 0; i < nslots;) {
			struct alex_node *c = in->child[i];
			if (!c) {
				i++;
				continue;
			}
			i += 1u << c->span_bits;
			subtree_drop(t, c, drop);
		}
	}
	drop(t, n);
}

/* Free a subtree no reader can reach. */
static void subtree_free(alex_tree *t, struct alex_node *n)
{
	subtree_drop(t, n, node_free);
}

static int scratch_reserve(alex_tree *t, size_t n)
{
	if (n <= t->scratch_cap)
		return 0;
	size_t cap = t->scratch_cap ? t->scratch_cap : 1024;
	while (cap < n)
		cap *= 2;
	struct alex_slot *s = omem_alloc(t->arena, cap * sizeof(*s));
	if (!s)
		return -ENOMEM;
	omem_free(t->arena, t->scratch, t->scratch_cap * sizeof(*s));
	t->scratch = s;
	t->scratch_cap = cap;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Leaf access shared with readers                                      */

static inline uint64_t slot_key(const struct alex_slot *s, uint32_t i)
{
	return LOAD_RELAXED(&s[i].key);
}

/* Payloads are loaded with acquire and stored with release: the engine's
 * payloads are pointers to value blobs written just before the store, and
 * a reader that loads the pointer must see the blob's bytes.  (On x86 both
 * are plain moves; the ordering is for the compiler, other CPUs and TSan.) */
static inline uint64_t slot_payload(const struct alex_slot *s, uint32_t i)
{
	return __atomic_load_n(&s[i].payload, __ATOMIC_ACQUIRE);
}

static inline void slot_set_key(struct alex_slot *s, uint32_t i, uint64_t k)
{
	STORE_RELAXED(&s[i].key, k);
}

static inline void slot_set(struct alex_slot *s, uint32_t i, uint64_t k, uint64_t v)
{
	STORE_RELAXED(&s[i].key, k);
	__atomic_store_n(&s[i].payload, v, __ATOMIC_RELEASE);
}

/* Copy slots [from, from + n) to [to, to + n) (overlapping; writer, in a
 * leaf_write section).  Element-wise relaxed stores instead of memmove:
 * readers load these words concurrently (seqlock-validated), and a memmove
 * is not atomic per word. */
static void slots_move(struct alex_slot *s, uint32_t to, uint32_t from, uint32_t n)
{
	if (to < from) {
		for (uint32_t i = 0; i < n; i++)
			slot_set(s, to + i, s[from + i].key, s[from + i].payload);
	} else {
		for (uint32_t i = n; i-- > 0;)
			slot_set(s, to + i, s[from + i].key, s[from + i].payload);
	}
}

static inline uint32_t leaf_used_end(const struct alex_leaf *l)
{
	return LOAD_RELAXED(&l->used_end);
}

/* Writer: bracket in-place edits of a published leaf.  ck_sequence makes
 * the count odd with a store fence after it (slot stores cannot pass it)
 * and even again with a store fence before it. */
static inline void leaf_write_begin(struct alex_leaf *l)
{
	ck_sequence_write_begin(&l->hdr.seq);
}

static inline void leaf_write_end(struct alex_leaf *l)
{
	ck_sequence_write_end(&l->hdr.seq);
}

/*
 * Reader: the leaf's sequence, once it is even.  ck_sequence_read_begin
 * spins until then; ours spins a while and then yields, because on a
 * machine with more runnable threads than cores the writer we wait for
 * may be the one preempted (its edit sections are short: one leaf of one
 * batch).  The load fence orders the sequence before the slot loads, as in
 * ck_sequence; ck_sequence_read_retry closes the section.
 */
#define READ_SPINS 256
static inline unsigned leaf_read_begin(const struct alex_leaf *l)
{
	for (unsigned spins = 0;; spins++) {
		unsigned v = ck_pr_load_uint(&l->hdr.seq.sequence);
		if ((v & 1) == 0) {
			ck_pr_fence_load();
			return v;
		}
		if (spins < READ_SPINS)
			ck_pr_stall();
		else
			sched_yield();
	}
}

/* Reader: has the leaf been replaced?  Acquire pairs with the release in
 * node_retire, so after seeing 1 the reader finds the replacement. */
static inline int leaf_obsolete(const struct alex_leaf *l)
{
	return __atomic_load_n(&l->hdr.obsolete, __ATOMIC_ACQUIRE);
}

/* ------------------------------------------------------------------ */
/* Leaf model and search                                                */

/* Model prediction clamped to [0, lim - 1]; lim >= 1. */
static inline uint32_t leaf_predict(const struct alex_leaf *l, uint64_t key, uint32_t lim)
{
	/* The int64 cast keeps the subtraction exact for every leaf whose
	 * domain is narrower than 2^63; for wider ones a far key only gets a
	 * worse starting point, never a wrong answer. */
	double p = l->slope * (double)(int64_t)(key - l->base) + l->icept;
	if (!(p > 0))
		return 0;
	if (p >= (double)lim)
		return lim - 1;
	return (uint32_t)p;
}

/*
 * First slot in [0, used_end) whose key is > k (used_end when none), by
 * exponential search from the model's prediction.  *dist gets the distance
 * between the prediction and the answer.
 */
static inline uint32_t leaf_upper_bound_n(const struct alex_leaf *l, uint32_t n, uint64_t k,
					  uint32_t *dist)
{
	const struct alex_slot *s = l->slots;
	if (n == 0) {
		*dist = 0;
		return 0;
	}
	uint32_t p = leaf_predict(l, k, n);
	uint32_t lo, hi; /* answer in [lo, hi]; hi is known to qualify */
	if (slot_key(s, p) > k) {
		uint32_t step = 1;
		while (step <= p && slot_key(s, p - step) > k)
			step <<= 1;
		lo = step > p ? 0 : p - step + 1;
		hi = p - (step >> 1);
	} else {
		uint32_t step = 1;
		while (p + step < n && slot_key(s, p + step) <= k)
			step <<= 1;
		lo = p + (step >> 1) + 1;
		hi = p + step < n ? p + step : n;
	}
	while (lo < hi) {
		uint32_t mid = lo + ((hi - lo) >> 1);
		if (slot_key(s, mid) > k)
			hi = mid;
		else
			lo = mid + 1;
	}
	*dist = lo > p ? lo - p : p - lo;
	return lo;
}

/* The same over the leaf's current used_end.  Under a concurrent writer
 * the slots may be torn: the result is then garbage but within [0, n],
 * and the caller's sequence check rejects it. */
static inline uint32_t leaf_upper_bound(const struct alex_leaf *l, uint64_t k, uint32_t *dist)
{
	return leaf_upper_bound_n(l, leaf_used_end(l), k, dist);
}

/* Writer only (reads its own leaf without the atomics). */
static inline int leaf_is_gap(const struct alex_leaf *l, uint32_t i)
{
	return i + 1 < l->used_end && l->slots[i].key == l->slots[i + 1].key;
}


/* True when the last TAIL_SCAN slots hold no gap: a packed run, typically
 * left by appends, that an insert at the end would have to shift. */
#define TAIL_SCAN 32
static int leaf_tail_packed(const struct alex_leaf *l)
{
	uint32_t n = l->used_end;
	uint32_t from = n > TAIL_SCAN + 1 ? n - TAIL_SCAN - 1 : 0;
	for (uint32_t i = from; i + 1 < n; i++)
		if (l->slots[i].key == l->slots[i + 1].key)
			return 0;
	return 1;
}

/* Cost estimate, in the paper's units, of observed or expected behaviour. */
static inline double cost_of(double search, double shift)
{
	return W_SEARCH * search + W_SHIFT * shift;
}

static inline double log2_dist(uint32_t d)
{
	return (double)bitlen64(d);
}

/* Did the leaf's observed insert cost drift well above its build-time
 * expectation?  Then a split (new models over narrower ranges) pays. */
static int leaf_shifts_catastrophic(const struct alex_leaf *l)
{
	return l->n_long >= LONG_SHIFT_TRIGGER && (uint64_t)l->n_long * 16 >= l->n_ins;
}

static int leaf_cost_drifted(const struct alex_leaf *l)
{
	if (leaf_shifts_catastrophic(l))
		return 1;
	/* Absolute bound: inserts that land, on average, more than about
	 * 2^SEARCH_SPLIT slots from the prediction mean the linear model does
	 * not fit the keys (clusters such as one run per device), whatever the
	 * build expected; narrower leaves fit better. */
	if (l->n_ins >= DRIFT_MIN_INSERTS / 2 && l->sum_search > SEARCH_SPLIT * l->n_ins)
		return 1;
	if (l->n_ins < DRIFT_MIN_INSERTS || (uint64_t)l->n_ins * 4 < l->nkeys)
		return 0;
	double emp = cost_of(l->sum_search / l->n_ins, l->sum_shift / l->n_ins);
	double exp = cost_of(l->exp_search, l->exp_shift);
	return emp > 1.5 * exp + 3 * W_SEARCH;
}

/* ------------------------------------------------------------------ */
/* Leaf build: least-squares model and model-based placement            */

/* Least-squares sufficient statistics of a slot group: x = key - base,
 * y = rank within the group. */
struct fitstat {
	double n, sx, sxx, sy, syy, sxy;
	uint64_t base;
};

/* Strided input: keys k[i * ks], payloads v[i * vs]. */
struct kv_src {
	const uint64_t *k;
	const uint64_t *v;
	size_t ks, vs;
};

static inline uint64_t src_key(const struct kv_src *s, size_t i)
{
	return s->k[i * s->ks];
}

static inline uint64_t src_val(const struct kv_src *s, size_t i)
{
	return s->v[i * s->vs];
}

static inline struct kv_src src_offset(const struct kv_src *s, size_t off)
{
	struct kv_src r = *s;
	r.k += off * s->ks;
	r.v += off * s->vs;
	return r;
}

static struct kv_src src_of_slots(const struct alex_slot *slots)
{
	struct kv_src s = { &slots[0].key, &slots[0].payload, 2, 2 };
	return s;
}

/* Fit rank = slope * (key - base) + icept by least squares (two passes
 * for accuracy: means first, then centred sums). */
static void fit_rank_model(const struct kv_src *s, size_t n, uint64_t base,
			   double *slope, double *icept)
{
	if (n <= 1) {
		*slope = 0;
		*icept = 0;
		return;
	}
	double mx = 0;
	for (size_t i = 0; i < n; i++)
		mx += (double)(int64_t)(src_key(s, i) - base);
	mx /= (double)n;
	double my = (double)(n - 1) / 2;
	double sxx = 0, sxy = 0;
	for (size_t i = 0; i < n; i++) {
		double dx = (double)(int64_t)(src_key(s, i) - base) - mx;
		sxx += dx * dx;
		sxy += dx * ((double)i - my);
	}
	if (!(sxx > 0)) {
		*slope = 0;
		*icept = my;
		return;
	}
	*slope = sxy / sxx;
	*icept = my - *slope * mx;
}

/*
 * Build a leaf holding s[0..n) (strictly ascending) with cap slots.
 * Keys go where the model predicts them, pushed right past the previous
 * key and left so the rest still fit; gaps take the next key's value.
 */
static struct alex_leaf *leaf_build(alex_tree *t, const struct kv_src *s, size_t n, uint32_t cap,
				    uint32_t spread, int wide, const struct fitstat *fit)
{
	if (cap < MIN_CAP)
		cap = MIN_CAP;
	if (cap <= n)
		cap = (uint32_t)n + 1;
	struct alex_leaf *l = leaf_alloc(t, cap);
	if (!l)
		return NULL;
	if (n == 0)
		return l;
	/* The model's input is key - base as a signed 64-bit number, exact for
	 * every key of the leaf's domain when base lies inside it and the
	 * domain spans at most 2^63 keys.  Only the root leaf spans more: its
	 * base is the middle of the key space. */
	uint64_t first = src_key(s, 0), last = src_key(s, n - 1);
	uint64_t base = wide ? UINT64_C(1) << 63 : first + (last - first) / 2;
	double slope, icept;
	if (fit && fit->n == (double)n && n > 1) {
		/* The bulk builder already holds the sums: skip two passes. */
		double cxx = fit->sxx - fit->sx * fit->sx / fit->n;
		double cxy = fit->sxy - fit->sx * fit->sy / fit->n;
		double mx = fit->sx / fit->n, my = fit->sy / fit->n;
		slope = cxx > 0 ? cxy / cxx : 0;
		/* Sums are relative to the first key; move to base. */
		icept = my - slope * mx + slope * (double)(int64_t)(base - fit->base);
	} else {
		fit_rank_model(s, n, base, &slope, &icept);
	}
	/* Ranks map onto the first `spread` slots; the rest is append room. */
	if (spread < n || spread > cap)
		spread = cap;
	double scale = (double)spread / (double)n;
	l->base = base;
	l->slope = slope * scale;
	l->icept = icept * scale;

	struct alex_slot *sl = l->slots;
	uint32_t next_free = 0;
	double sum_dist = 0, sum_run2 = 0;
	uint32_t run = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t k = src_key(s, i);
		uint32_t pred = leaf_predict(l, k, cap);
		uint32_t pos = pred < next_free ? next_free : pred;
		uint32_t last_ok = spread - (uint32_t)(n - i);
		if (pos > last_ok)
			pos = last_ok;
		for (uint32_t j = next_free; j < pos; j++)
			sl[j].key = k;
		sl[pos].key = k;
		sl[pos].payload = src_val(s, i);
		sum_dist += log2_dist(pos > pred ? pos - pred : pred - pos);
		if (pos == next_free && i > 0) {
			run++;
		} else {
			sum_run2 += (double)run * run;
			run = 1;
		}
		next_free = pos + 1;
	}
	sum_run2 += (double)run * run;
	l->used_end = next_free;
	l->nkeys = (uint32_t)n;
	l->exp_search = sum_dist / (double)n;
	/* An insert into a run of length L shifts ~L/4 slots on average and
	 * lands in it with probability ~L/n. */
	l->exp_shift = sum_run2 / (4.0 * (double)n);
	return l;
}

/* Capacity and spread for rebuilding a leaf of n keys that mostly sees
 * appends; cap 0 when it cannot fit one leaf. */
static void append_shape(const alex_tree *t, size_t n, uint32_t *cap, uint32_t *spread)
{
	double sp = (double)n / D_APPEND + 1, c = sp + (double)n * APPEND_ROOM;
	if (c > t->cfg.max_leaf_slots)
		c = t->cfg.max_leaf_slots;
	if (sp > c)
		sp = c;
	*cap = c < MIN_CAP ? MIN_CAP : (uint32_t)c;
	*spread = (uint32_t)sp;
}

/* Capacity for n keys at density d, within [MIN_CAP, max_leaf_slots]. */
static uint32_t cap_at(const alex_tree *t, size_t n, double d)
{
	double c = (double)n / d + 1;
	if (c < MIN_CAP)
		c = MIN_CAP;
	if (c > t->cfg.max_leaf_slots)
		c = t->cfg.max_leaf_slots;
	return (uint32_t)c;
}

/* A freshly built leaf. */
static uint32_t cap_for(const alex_tree *t, size_t n)
{
	return cap_at(t, n, D_INIT);
}

/* A full leaf that grows: lower density than a fresh build, so the next
 * expansion is further away (each one copies the whole leaf). */
static uint32_t cap_for_expand(const alex_tree *t, size_t n)
{
	return cap_at(t, n, D_EXPAND);
}

/* Copy the real slots of a leaf into dst; returns the count. */
static size_t leaf_gather(const struct alex_leaf *l, struct alex_slot *dst)
{
	size_t m = 0;
	for (uint32_t i = 0; i < l->used_end; i++)
		if (!leaf_is_gap(l, i))
			dst[m++] = l->slots[i];
	return m;
}

/* ------------------------------------------------------------------ */
/* Bulk building of subtrees                                            */

static double fit_rmse(const struct fitstat *f)
{
	if (f->n < 2)
		return 0;
	double cxx = f->sxx - f->sx * f->sx / f->n;
	double cxy = f->sxy - f->sx * f->sy / f->n;
	double cyy = f->syy - f->sy * f->sy / f->n;
	double sse = cyy - (cxx > 0 ? cxy * cxy / cxx : 0);
	return sse > 0 ? sqrt(sse / f->n) : 0;
}

/* Statistics of group a followed by group b. */
static struct fitstat fit_merge(const struct fitstat *a, const struct fitstat *b)
{
	if (a->n == 0)
		return *b;
	if (b->n == 0)
		return *a;
	double d = (double)(b->base - a->base), c = a->n;
	struct fitstat m;
	m.base = a->base;
	m.n = a->n + b->n;
	m.sx = a->sx + b->sx + b->n * d;
	m.sxx = a->sxx + b->sxx + 2 * d * b->sx + b->n * d * d;
	m.sy = a->sy + b->sy + b->n * c;
	m.syy = a->syy + b->syy + 2 * c * b->sy + b->n * c * c;
	m.sxy = a->sxy + b->sxy + c * b->sx + d * b->sy + b->n * c * d;
	return m;
}

static double rmse_limit(double n)
{
	double l = RMSE_SQRT * sqrt(n);
	return l > RMSE_FLOOR ? l : RMSE_FLOOR;
}

static int fit_leaf_ok(const alex_tree *t, const struct fitstat *f)
{
	return f->n <= t->cfg.bulk_leaf_keys && fit_rmse(f) <= rmse_limit(f->n);
}

static struct fitstat fit_of_src(const struct kv_src *s, size_t n)
{
	struct fitstat f;
	memset(&f, 0, sizeof(f));
	if (n == 0)
		return f;
	f.base = src_key(s, 0);
	for (size_t i = 0; i < n; i++) {
		double x = (double)(src_key(s, i) - f.base), y = (double)i;
		f.sx += x;
		f.sxx += x * x;
		f.sy += y;
		f.syy += y * y;
		f.sxy += x * y;
	}
	f.n = (double)n;
	return f;
}

/* Chain of leaves a build produced, in key order. */
struct leaf_chain {
	struct alex_leaf *first, *last;
};

static void chain_add(struct leaf_chain *c, struct alex_leaf *l)
{
	l->prev = c->last;
	l->next = NULL;
	if (c->last)
		c->last->next = l;
	else
		c->first = l;
	c->last = l;
}

static struct alex_node *build_node(alex_tree *t, uint64_t lo, unsigned bits,
				    const struct kv_src *s, size_t n, int min_fbits,
				    int depth, struct leaf_chain *chain);

/*
 * Build an internal node over the aligned domain [lo, lo + 2^bits) for
 * s[0..n) (ascending, all inside the domain).
 */
static struct alex_inner *build_inner(alex_tree *t, uint64_t lo, unsigned bits,
				      const struct kv_src *s, size_t n, int min_fbits, int depth,
				      struct leaf_chain *chain)
{
	int want = ceil_log2(n / t->cfg.keys_per_slot + 1);
	int fb = want > min_fbits ? want : min_fbits;
	if (fb < 1)
		fb = 1;
	if (fb > (int)t->cfg.max_fanout_bits)
		fb = (int)t->cfg.max_fanout_bits;
	if (fb > (int)bits)
		fb = (int)bits;
	unsigned shift = bits - (unsigned)fb;
	uint32_t nslots = 1u << fb;

	struct alex_inner *in = inner_alloc(t, shift, (unsigned)fb, lo);
	if (!in)
		return NULL;
	size_t aux_bytes = (size_t)nslots * (2 * sizeof(struct fitstat) + sizeof(size_t) + 2);
	unsigned char *aux = omem_alloc(t->arena, aux_bytes);
	if (!aux) {
		node_free(t, &in->hdr);
		return NULL;
	}
	struct fitstat *st = (struct fitstat *)aux;
	struct fitstat *gst = st + nslots;             /* stats of each decided group  */
	size_t *start = (size_t *)(gst + nslots);     /* first key index of each slot */
	uint8_t *alive = (uint8_t *)(start + nslots);  /* group still mergeable        */
	uint8_t *span = alive + nslots;                 /* decided group span, 0xff = none */
	memset(st, 0, sizeof(*st) * nslots);

	/* One pass: per-slot counts and least-squares sums. */
	for (size_t i = 0; i < n; i++) {
		uint64_t k = src_key(s, i);
		uint32_t sl = (uint32_t)((k >> shift) & in->mask);
		struct fitstat *f = &st[sl];
		if (f->n == 0) {
			f->base = k;
			start[sl] = i;
		}
		double x = (double)(k - f->base), y = f->n;
		f->sx += x;
		f->sxx += x * x;
		f->sy += y;
		f->syy += y * y;
		f->sxy += x * y;
		f->n += 1;
	}
	/* Fill start[] of empty slots so every slot knows its key range. */
	{
		size_t next = n;
		for (uint32_t i = nslots; i-- > 0;) {
			if (st[i].n == 0)
				start[i] = next;
			else
				next = start[i];
		}
	}
	for (uint32_t i = 0; i < nslots; i++) {
		alive[i] = (uint8_t)fit_leaf_ok(t, &st[i]);
		span[i] = 0xff;
		if (!alive[i])
			span[i] = 0xfe; /* its own subtree */
	}
	/* Merge aligned buddies bottom-up while the merged fit stays good.
	 * Level L group g covers slots [g << L, (g + 1) << L); results are
	 * written in place at index g, which level L-1 no longer needs. */
	for (int L = 1; L <= fb; L++) {
		uint32_t cnt = nslots >> L;
		for (uint32_t g = 0; g < cnt; g++) {
			uint32_t a = 2 * g, b = 2 * g + 1;
			int ok = 0;
			struct fitstat m;
			/* Never merge the last level: an internal node has at
			 * least two children, so a forced split always splits. */
			if (alive[a] && alive[b] && L < fb) {
				m = fit_merge(&st[a], &st[b]);
				ok = fit_leaf_ok(t, &m);
				if (ok && st[a].n > 0 && st[b].n > 0) {
					double ra = fit_rmse(&st[a]), rb = fit_rmse(&st[b]);
					double r = ra > rb ? ra : rb;
					ok = fit_rmse(&m) <= (r * RMSE_MERGE > RMSE_FLOOR ? r * RMSE_MERGE
											 : RMSE_FLOOR);
				}
			}
			if (ok) {
				st[g] = m;
				alive[g] = 1;
			} else {
				if (alive[a]) {
					span[a << (L - 1)] = (uint8_t)(L - 1);
					gst[a << (L - 1)] = st[a];
				}
				if (alive[b]) {
					span[b << (L - 1)] = (uint8_t)(L - 1);
					gst[b << (L - 1)] = st[b];
				}
				alive[g] = 0;
			}
		}
	}

	/* Build the children in slot order. */
	int rc = 0;
	for (uint32_t i = 0; i < nslots && rc == 0;) {
		unsigned sp = span[i] == 0xfe ? 0 : span[i];
		uint32_t cnt_slots = 1u << sp;
		size_t b0 = start[i];
		size_t b1 = i + cnt_slots < nslots ? start[i + cnt_slots] : n;
		struct kv_src sub = src_offset(s, b0);
		struct alex_node *c;
		if (span[i] == 0xfe) {
			c = build_node(t, lo + ((uint64_t)i << shift), shift, &sub, b1 - b0, -1,
				       depth + 1, chain);
		} else {
			struct alex_leaf *l =
				leaf_build(t, &sub, b1 - b0, cap_for(t, b1 - b0), 0, 0, &gst[i]);
			if (l)
				chain_add(chain, l);
			c = l ? &l->hdr : NULL;
		}
		if (!c) {
			rc = -ENOMEM;
			break;
		}
		c->span_bits = (uint8_t)sp;
		for (uint32_t j = 0; j < cnt_slots; j++)
			in->child[i + j] = c;
		i += cnt_slots;
	}
	omem_free(t->arena, aux, aux_bytes);
	if (rc) {
		subtree_free(t, &in->hdr);
		return NULL;
	}
	return in;
}

/*
 * Build a subtree for s[0..n) over the aligned domain [lo, lo + 2^bits):
 * one leaf when the keys fit one well, else an internal node.  min_fbits
 * >= 0 forces an internal node with at least 2^min_fbits slots.
 * On failure everything built is freed and NULL returned; the chain may
 * then hold freed leaves and must be discarded by the caller.
 */
static struct alex_node *build_node(alex_tree *t, uint64_t lo, unsigned bits,
				    const struct kv_src *s, size_t n, int min_fbits,
				    int depth, struct leaf_chain *chain)
{
	int leaf = min_fbits < 0 && n <= t->cfg.bulk_leaf_keys;
	if (leaf && n > 2 && bits > 1 && depth < MAX_DEPTH - 2) {
		struct fitstat f = fit_of_src(s, n);
		leaf = fit_leaf_ok(t, &f);
	}
	if (bits < 1 || depth >= MAX_DEPTH - 2)
		leaf = 1;
	if (leaf) {
		struct alex_leaf *l = leaf_build(t, s, n, cap_for(t, n), 0, depth == 0, NULL);
		if (!l)
			return NULL;
		chain_add(chain, l);
		return &l->hdr;
	}
	struct alex_inner *in = build_inner(t, lo, bits, s, n, min_fbits, depth, chain);
	return in ? &in->hdr : NULL;
}

/* Smallest aligned block containing keys a <= b. */
static void tight_block(uint64_t a, uint64_t b, uint64_t *lo, unsigned *bits)
{
	unsigned bl = (unsigned)bitlen64(a ^ b);
	*bits = bl;
	*lo = bl >= 64 ? 0 : a & ~((UINT64_C(1) << bl) - 1);
}

/* ------------------------------------------------------------------ */
/* Tree lifecycle                                                        */

/* Publish a new root.  The caller retires the old one afterwards, if it
 * is not part of the new tree. */
static void set_root(alex_tree *t, struct alex_node *root)
{
	root->span_bits = 0;
	PUBLISH(&t->root, root);
	if (root->type == NODE_LEAF) {
		t->dom_lo = 0;
		t->dom_hi = UINT64_MAX;
	} else {
		struct alex_inner *in = (struct alex_inner *)root;
		t->dom_lo = in->lo;
		t->dom_hi = block_last(in->lo, in->shift + in->fbits);
	}
}

int alex_create(const alex_config *cfg, alex_tree **out)
{
	*out = NULL;
	alex_config c;
	if (cfg)
		c = *cfg;
	else
		alex_config_init(&c);
	config_normalize(&c);
	unsigned arena = c.arena;
	int own = 0;
	if (arena == 0) {
		if (omem_arena_create(&arena) != 0)
			return -ENOMEM;
		own = 1;
	}
	alex_tree *t = omem_alloc(arena, sizeof(*t));
	if (!t) {
		if (own)
			omem_arena_destroy(arena);
		return -ENOMEM;
	}
	memset(t, 0, sizeof(*t));
	t->cfg = c;
	t->arena = arena;
	t->own_arena = own;
	struct alex_leaf *l = leaf_alloc(t, MIN_CAP);
	if (!l) {
		omem_free(arena, t, sizeof(*t));
		if (own)
			omem_arena_destroy(arena);
		return -ENOMEM;
	}
	set_root(t, &l->hdr);
	t->head = t->tail = l;
	*out = t;
	return 0;
}

void alex_destroy(alex_tree *t)
{
	if (!t)
		return;
	/* Retired nodes are freed into our arena by call_rcu callbacks: let
	 * them all run before the arena goes.  The caller guarantees that no
	 * reader remains (TSan: that is the quiescence we assert). */
	orcu_barrier();
	orcu_tsan_quiesced();
	subtree_free(t, t->root);
	omem_free(t->arena, t->scratch, t->scratch_cap * sizeof(struct alex_slot));
	unsigned arena = t->arena;
	int own = t->own_arena;
	omem_free(arena, t, sizeof(*t));
	if (own)
		omem_arena_destroy(arena);
}

int alex_bulk_load(alex_tree *t, const uint64_t *keys, const uint64_t *payloads, size_t n)
{
	if (t->nkeys != 0 || (n > 0 && (!keys || !payloads)))
		return -EINVAL;
	for (size_t i = 1; i < n; i++)
		if (keys[i] <= keys[i - 1])
			return -EINVAL;
	if (n == 0)
		return 0;
	struct kv_src s = { keys, payloads, 1, 1 };
	uint64_t lo;
	unsigned bits;
	tight_block(keys[0], keys[n - 1], &lo, &bits);
	struct leaf_chain chain = { NULL, NULL };
	struct alex_node *root = build_node(t, lo, bits, &s, n, -1, 0, &chain);
	if (!root)
		return -ENOMEM;
	/* The old tree holds no keys but may still have nodes (everything
	 * was deleted): retire them all once the new root is published. */
	struct alex_node *old = t->root;
	set_root(t, root);
	subtree_drop(t, old, node_retire);
	t->head = chain.first;
	t->tail = chain.last;
	COUNT_ADD(&t->nkeys, n);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Descent                                                               */

struct path {
	struct alex_inner *node[MAX_DEPTH];
	uint32_t slot[MAX_DEPTH];
	int depth;
};

static inline int in_domain(const alex_tree *t, uint64_t key)
{
	return key >= t->dom_lo && key <= t->dom_hi;
}

/* Writer: leaf for an in-domain key. */
static inline const struct alex_leaf *descend(const alex_tree *t, uint64_t key)
{
	const struct alex_node *n = t->root;
	while (n->type == NODE_INNER) {
		const struct alex_inner *in = (const struct alex_inner *)n;
		n = in->child[(key >> in->shift) & in->mask];
	}
	return (const struct alex_leaf *)n;
}

/* Reader: the keys a root covers, from the root node itself (its fields
 * are immutable), so root and domain are always read consistently. */
static inline void root_domain(const struct alex_node *root, uint64_t *lo, uint64_t *hi)
{
	if (root->type == NODE_LEAF) {
		*lo = 0;
		*hi = UINT64_MAX;
		return;
	}
	const struct alex_inner *in = (const struct alex_inner *)root;
	*lo = in->lo;
	*hi = block_last(in->lo, in->shift + in->fbits);
}

/* Reader: leaf for a key inside root's domain.  Every child pointer is an
 * DEREF; the node may be a retired one (still allocated inside
 * our read-side section), whose children are then a consistent older
 * picture: any leaf reached covers the key, or is obsolete. */
static inline const struct alex_leaf *descend_rcu(const struct alex_node *n, uint64_t key)
{
	while (n->type == NODE_INNER) {
		const struct alex_inner *in = (const struct alex_inner *)n;
		n = DEREF(in->child[(key >> in->shift) & in->mask]);
	}
	return (const struct alex_leaf *)n;
}

static struct alex_leaf *descend_path(const alex_tree *t, uint64_t key, struct path *p)
{
	struct alex_node *n = t->root;
	p->depth = 0;
	while (n->type == NODE_INNER) {
		struct alex_inner *in = (struct alex_inner *)n;
		uint32_t sl = (uint32_t)((key >> in->shift) & in->mask);
		p->node[p->depth] = in;
		p->slot[p->depth] = sl;
		p->depth++;
		n = in->child[sl];
	}
	return (struct alex_leaf *)n;
}

/* Key domain of the node at the end of path p (depth >= 1). */
static void child_domain(const struct path *p, unsigned span, uint64_t *lo, unsigned *bits)
{
	const struct alex_inner *par = p->node[p->depth - 1];
	uint32_t g0 = p->slot[p->depth - 1] & ~((1u << span) - 1);
	*lo = par->lo + ((uint64_t)g0 << par->shift);
	*bits = par->shift + span;
}

/* ------------------------------------------------------------------ */
/* Reads                                                                 */

bool alex_lookup(const alex_tree *t, uint64_t key, uint64_t *payload)
{
restart:;
	const struct alex_node *root = DEREF(t->root);
	uint64_t lo, hi;
	root_domain(root, &lo, &hi);
	if (key < lo || key > hi)
		return false;
	const struct alex_leaf *l = descend_rcu(root, key);
	for (;;) {
		unsigned v = leaf_read_begin(l);
		if (leaf_obsolete(l))
			goto restart;
		uint32_t d;
		uint32_t ub = leaf_upper_bound(l, key, &d);
		bool found = ub > 0 && slot_key(l->slots, ub - 1) == key;
		uint64_t pl = found ? slot_payload(l->slots, ub - 1) : 0;
		if (ck_sequence_read_retry(&l->hdr.seq, v))
			continue;
		if (found && payload)
			*payload = pl;
		return found;
	}
}

bool alex_writer_lookup(const alex_tree *t, uint64_t key, uint64_t *payload)
{
	if (!in_domain(t, key))
		return false;
	const struct alex_leaf *l = descend(t, key);
	uint32_t d;
	uint32_t ub = leaf_upper_bound_n(l, l->used_end, key, &d);
	if (ub == 0 || l->slots[ub - 1].key != key)
		return false;
	if (payload)
		*payload = l->slots[ub - 1].payload;
	return true;
}

uint64_t alex_size(const alex_tree *t)
{
	return LOAD_RELAXED(&t->nkeys);
}

size_t alex_memory_bytes(const alex_tree *t)
{
	return LOAD_RELAXED(&t->bytes);
}

/*
 * Iteration.  The iterator's position is the last key it returned
 * (it->last); its leaf/pos/version are only a cache of where that key sits.
 * While the leaf's sequence is unchanged the cached pos is exact; when it
 * moved, pos is recomputed as the upper bound of `last` in the same leaf;
 * when the leaf is obsolete, the iterator descends again from the root for
 * last + 1.  Every returned key is checked to be > last, so the output is
 * strictly ascending whatever a torn read produced; a returned pair was
 * validated by the leaf's sequence, so the payload belongs to the key.
 * Completeness: a leaf's keys are a validated snapshot of its range, the
 * next leaf is read from a validated, non-obsolete leaf's link (or found
 * again from the root), and leaves partition the key space, so a key
 * present throughout lies in some leaf that is visited.
 */
#define ITER_NOPOS UINT32_MAX

/* Position on the leaf holding the first key > last (or key 0). */
static void iter_locate(alex_iter *it)
{
	uint64_t key = it->have_last ? it->last + 1 : 0;
	it->pos = ITER_NOPOS;
	if (it->have_last && it->last == UINT64_MAX) {
		it->leaf = NULL;
		return;
	}
	const struct alex_node *root = DEREF(it->tree->root);
	uint64_t lo, hi;
	root_domain(root, &lo, &hi);
	if (key > hi) {
		it->leaf = NULL;
		return;
	}
	if (key < lo)
		key = lo;
	it->leaf = descend_rcu(root, key);
}

void alex_iter_seek(const alex_tree *t, uint64_t key, alex_iter *it)
{
	it->tree = t;
	it->have_last = key > 0;
	it->last = key - 1;
	it->version = 0;
	iter_locate(it);
}

bool alex_iter_next(alex_iter *it, uint64_t *key, uint64_t *payload)
{
	for (;;) {
		const struct alex_leaf *l = it->leaf;
		if (!l)
			return false;
		unsigned v = leaf_read_begin(l);
		if (leaf_obsolete(l)) {
			iter_locate(it);
			continue;
		}
		const struct alex_slot *s = l->slots;
		uint32_t n = leaf_used_end(l), pos = it->pos, d;
		if (pos == ITER_NOPOS || v != it->version)
			pos = it->have_last ? leaf_upper_bound_n(l, n, it->last, &d) : 0;
		/* Skip gaps (a slot equal to its right neighbour) and, should
		 * a torn view put them here, keys not above last. */
		uint64_t k = 0;
		for (; pos < n; pos++) {
			k = slot_key(s, pos);
			if (pos + 1 < n && slot_key(s, pos + 1) == k)
				continue;
			if (!it->have_last || k > it->last)
				break;
		}
		if (pos < n) {
			uint64_t pl = slot_payload(s, pos);
			if (ck_sequence_read_retry(&l->hdr.seq, v)) {
				it->pos = ITER_NOPOS;
				continue;
			}
			it->last = k;
			it->have_last = true;
			it->pos = pos + 1;
			it->version = v;
			if (key)
				*key = k;
			if (payload)
				*payload = pl;
			return true;
		}
		/* This leaf has nothing above last: go to the next one, through
		 * a link read while the leaf was unchanged. */
		const struct alex_leaf *next = DEREF(l->next);
		if (ck_sequence_read_retry(&l->hdr.seq, v)) {
			it->pos = ITER_NOPOS;
			continue;
		}
		it->leaf = next;
		it->pos = ITER_NOPOS;
	}
}

bool alex_lower_bound(const alex_tree *t, uint64_t key, uint64_t *found, uint64_t *payload)
{
	alex_iter it;
	alex_iter_seek(t, key, &it);
	return alex_iter_next(&it, found, payload);
}

/* ------------------------------------------------------------------ */
/* In-place leaf mutation (the writer's only in-place edits)            */

/*
 * Insert k (absent) into leaf l, whose upper bound for k is ub; the leaf
 * has a free slot.  Model-based: a free slot between the neighbours is
 * taken as close to the prediction as possible; otherwise the nearest gap
 * is opened by shifting.  Returns the number of slots shifted.
 *
 * Writer only, between leaf_write_begin/end.  Reads of the leaf are plain
 * (only this thread writes it); stores go through slot_set/STORE_RELAXED.
 */
static uint32_t leaf_insert_at(struct alex_leaf *l, uint64_t k, uint64_t v, uint32_t ub)
{
	struct alex_slot *s = l->slots;
	uint32_t n = l->used_end;
	/* Predicting one past the end means "beyond what the model knows":
	 * for appends (timestamps) the key then goes right after the last
	 * one, keeping the tail free for the next appends. */
	uint32_t pred = leaf_predict(l, k, l->cap + 1);
	int beyond = pred == l->cap;
	if (beyond)
		pred = l->cap - 1;
	if (ub == n) {
		if (n < l->cap) {
			/* Past the last key: the whole tail is free.  Slots are
			 * filled before used_end covers them. */
			uint32_t pos = pred < n || beyond ? n : pred;
			for (uint32_t j = n; j < pos; j++)
				slot_set_key(s, j, k);
			slot_set(s, pos, k, v);
			STORE_RELAXED(&l->used_end, pos + 1);
			l->nkeys++;
			return 0;
		}
		/* The last slot is taken: fall through and shift left. */
	} else {
		/* Slots [ub, real) are gaps holding s[real].key. */
		uint32_t real = ub;
		uint64_t nv = s[ub].key;
		while (real + 1 < n && s[real + 1].key == nv)
			real++;
		if (real > ub) {
			uint32_t pos = pred < ub ? ub : (pred >= real ? real - 1 : pred);
			for (uint32_t j = ub; j < pos; j++)
				slot_set_key(s, j, k);
			slot_set(s, pos, k, v);
			l->nkeys++;
			return 0;
		}
	}
	/* No gap between the neighbours: shift towards the nearest gap. */
	for (uint32_t d = 0;; d++) {
		uint32_t r = ub + d;
		if (r < l->cap && (r >= n || (r + 1 < n && s[r].key == s[r + 1].key))) {
			slots_move(s, ub + 1, ub, r - ub);
			slot_set(s, ub, k, v);
			if (r >= n)
				STORE_RELAXED(&l->used_end, r + 1);
			l->nkeys++;
			return r - ub;
		}
		if (ub >= d + 2) {
			uint32_t g = ub - 2 - d; /* ub - 1 is real: the nearest gap is at ub - 2 or left */
			if (s[g].key == s[g + 1].key) {
				slots_move(s, g, g + 1, ub - 1 - g);
				slot_set(s, ub - 1, k, v);
				l->nkeys++;
				return ub - 1 - g;
			}
		}
	}
}

/*
 * leaf_insert_at, and record the insert's cost for the split decisions
 * (writer only).  Whether it is an append must be read before the insert
 * moves used_end; dist is the search distance of the upper bound ub.
 */
static void leaf_insert_counted(struct alex_leaf *l, uint64_t k, uint64_t v, uint32_t ub,
				uint32_t dist)
{
	int append = ub == l->used_end;
	uint32_t shifts = leaf_insert_at(l, k, v, ub);
	if (l->n_ins == UINT32_MAX)
		return;
	l->n_ins++;
	l->n_append += append;
	l->n_long += shifts > LONG_SHIFT;
	l->sum_search += (double)bitlen64(dist);
	l->sum_shift += shifts;
}

/* Remove the real slot pos from leaf l (writer, between
 * leaf_write_begin/end): it and the gaps before it take the next key. */
static void leaf_erase_at(struct alex_leaf *l, uint32_t pos)
{
	struct alex_slot *s = l->slots;
	uint64_t k = s[pos].key;
	if (pos + 1 == l->used_end) {
		uint32_t j = pos;
		while (j > 0 && s[j - 1].key == k)
			j--;
		STORE_RELAXED(&l->used_end, j);
	} else {
		uint64_t nv = s[pos + 1].key;
		slot_set_key(s, pos, nv);
		for (uint32_t j = pos; j > 0 && s[j - 1].key == k; j--)
			slot_set_key(s, j - 1, nv);
	}
	l->nkeys--;
}

/* Replace the payload of the real slot pos.  One atomic store: a reader
 * that found the key reads the old or the new payload, both valid, so no
 * sequence bump is needed. */
static inline void leaf_set_payload(struct alex_leaf *l, uint32_t pos, uint64_t v)
{
	__atomic_store_n(&l->slots[pos].payload, v, __ATOMIC_RELEASE);
}

/* ------------------------------------------------------------------ */
/* Structural changes                                                    */

/* Make `repl` take the place of the node at the end of path p (depth 0:
 * the root).  repl->span_bits must already be set. */
static void replace_child(alex_tree *t, const struct path *p, struct alex_node *old,
			  struct alex_node *repl)
{
	if (p->depth == 0) {
		set_root(t, repl);
		return;
	}
	struct alex_inner *par = p->node[p->depth - 1];
	unsigned span = old->span_bits;
	uint32_t g0 = p->slot[p->depth - 1] & ~((1u << span) - 1);
	/* Slot by slot: a reader meanwhile finds old (still a consistent
	 * copy) or repl through each slot. */
	for (uint32_t j = 0; j < (1u << span); j++)
		PUBLISH(&par->child[g0 + j], repl);
}

/* Splice the chain [first, last] (built aside) in place of leaves
 * [ofirst, olast].  Iterating readers follow next links: the new leaves'
 * own links are set before they are published in their neighbours. */
static void relink(alex_tree *t, struct alex_leaf *ofirst, struct alex_leaf *olast,
		   struct alex_leaf *first, struct alex_leaf *last)
{
	struct alex_leaf *prev = ofirst->prev, *next = olast->next;
	first->prev = prev;
	last->next = next;
	if (prev)
		PUBLISH(&prev->next, first);
	else
		t->head = first;
	if (next)
		PUBLISH(&next->prev, last);
	else
		t->tail = last;
}

/* Rebuild leaf l (at the end of path p) from src[0..m) with cap slots. */
static int leaf_replace(alex_tree *t, const struct path *p, struct alex_leaf *l,
			const struct kv_src *src, size_t m, uint32_t cap, uint32_t spread)
{
	/* One pass of sums instead of fit_rank_model's two. */
	struct fitstat f = fit_of_src(src, m);
	struct alex_leaf *nl = leaf_build(t, src, m, cap, spread, p->depth == 0, &f);
	if (!nl)
		return -ENOMEM;
	nl->hdr.span_bits = l->hdr.span_bits;
	relink(t, l, l, nl, nl);
	replace_child(t, p, &l->hdr, &nl->hdr);
	node_retire(t, &l->hdr);
	return 0;
}

/* Replace leaf l by the subtree built from scratch[0..m) over its domain. */
static int leaf_replace_subtree(alex_tree *t, const struct path *p, struct alex_leaf *l,
				size_t m, uint64_t lo, unsigned bits, int min_fbits)
{
	struct kv_src src = src_of_slots(t->scratch);
	struct leaf_chain chain = { NULL, NULL };
	struct alex_node *n = build_node(t, lo, bits, &src, m, min_fbits, p->depth, &chain);
	if (!n)
		return -ENOMEM;
	n->span_bits = l->hdr.span_bits;
	relink(t, l, l, chain.first, chain.last);
	replace_child(t, p, &l->hdr, n);
	node_retire(t, &l->hdr);
	return 0;
}

/* Double the slot array of the internal node at the end of path p (its
 * children each fill twice as many slots). */
static int inner_expand(alex_tree *t, const struct path *p)
{
	struct alex_inner *old = p->node[p->depth - 1];
	struct alex_inner *in = inner_alloc(t, old->shift - 1u, old->fbits + 1u, old->lo);
	if (!in)
		return -ENOMEM;
	uint32_t nslots = old->mask + 1;
	for (uint32_t i = 0; i < nslots; i++) {
		in->child[2 * i] = old->child[i];
		in->child[2 * i + 1] = old->child[i];
	}
	/* span_bits is writer-only: children may be updated in place. */
	for (uint32_t i = 0; i < nslots;) {
		struct alex_node *c = old->child[i];
		i += 1u << c->span_bits;
		c->span_bits++;
	}
	in->hdr.span_bits = old->hdr.span_bits;
	struct path pp = *p;
	pp.depth--;
	replace_child(t, &pp, &old->hdr, &in->hdr);
	node_retire(t, &old->hdr);
	COUNT_ADD(&t->st.inner_expansions, 1);
	return 0;
}

/*
 * Sideways split of leaf l (filling 2^span slots of its parent) whose keys
 * are scratch[0..m): the keys occupy the aligned sub-block [b0, b0 + 2^b)
 * of those slots, b >= 1; that block's halves get one leaf each and the
 * rest of the group gets empty leaves (buddy blocks).
 */
static int leaf_split_sideways(alex_tree *t, const struct path *p, struct alex_leaf *l,
			       size_t m, uint32_t b0, unsigned b)
{
	struct alex_inner *par = p->node[p->depth - 1];
	unsigned span = l->hdr.span_bits;
	uint32_t g0 = p->slot[p->depth - 1] & ~((1u << span) - 1);
	uint32_t half = 1u << (b - 1);
	struct alex_slot *s = t->scratch;
	/* Split point: first key routed to the right half. */
	size_t cut = 0;
	while (cut < m && (uint32_t)((s[cut].key >> par->shift) & par->mask) < b0 + half)
		cut++;

	struct alex_leaf *parts[2 * 32 + 2];
	uint32_t pstart[2 * 32 + 2];
	unsigned pspan[2 * 32 + 2];
	int np = 0, rc = 0;
	/* Buddy blocks of the group outside [b0, b0 + 2^b), in slot order:
	 * walk up from the key block; at each level the buddy is empty. */
	uint32_t left_start[32], right_start[32];
	unsigned left_span[32], right_span[32];
	int nl = 0, nr = 0;
	for (unsigned lv = b; lv < span; lv++) {
		uint32_t blk = (b0 - g0) & ~((1u << lv) - 1);
		uint32_t buddy = blk ^ (1u << lv);
		if (buddy < blk) {
			left_start[nl] = g0 + buddy;
			left_span[nl++] = lv;
		} else {
			right_start[nr] = g0 + buddy;
			right_span[nr++] = lv;
		}
	}
	struct kv_src src = src_of_slots(s);
	struct kv_src src2 = src_offset(&src, cut);
	for (int i = nl - 1; i >= 0 && rc == 0; i--) { /* farthest-left first */
		parts[np] = leaf_build(t, &src, 0, MIN_CAP, 0, 0, NULL);
		pstart[np] = left_start[i];
		pspan[np] = left_span[i];
		rc = parts[np] ? 0 : -ENOMEM;
		np += rc == 0;
	}
	if (rc == 0) {
		parts[np] = leaf_build(t, &src, cut, cap_for(t, cut), 0, 0, NULL);
		pstart[np] = b0;
		pspan[np] = b - 1;
		rc = parts[np] ? 0 : -ENOMEM;
		np += rc == 0;
	}
	if (rc == 0) {
		parts[np] = leaf_build(t, &src2, m - cut, cap_for(t, m - cut), 0, 0, NULL);
		pstart[np] = b0 + half;
		pspan[np] = b - 1;
		rc = parts[np] ? 0 : -ENOMEM;
		np += rc == 0;
	}
	for (int i = 0; i < nr && rc == 0; i++) {
		parts[np] = leaf_build(t, &src, 0, MIN_CAP, 0, 0, NULL);
		pstart[np] = right_start[i];
		pspan[np] = right_span[i];
		rc = parts[np] ? 0 : -ENOMEM;
		np += rc == 0;
	}
	if (rc) {
		for (int i = 0; i < np; i++)
			node_free(t, &parts[i]->hdr);
		return rc;
	}
	for (int i = 0; i < np; i++) {
		parts[i]->hdr.span_bits = (uint8_t)pspan[i];
		parts[i]->prev = i > 0 ? parts[i - 1] : NULL;
		parts[i]->next = i + 1 < np ? parts[i + 1] : NULL;
	}
	relink(t, l, l, parts[0], parts[np - 1]);
	for (int i = 0; i < np; i++)
		for (uint32_t j = 0; j < (1u << pspan[i]); j++)
			PUBLISH(&par->child[pstart[i] + j], &parts[i]->hdr);
	node_retire(t, &l->hdr);
	COUNT_ADD(&t->st.splits_sideways, 1);
	return 0;
}

/*
 * Leaf l at the end of path p is full.  Expand and retrain it, or split it
 * when its cost drifted or it cannot grow.  The caller retries its insert.
 */
static int leaf_restructure(alex_tree *t, struct path *p, struct alex_leaf *l, int tail_full)
{
	size_t m = l->nkeys;
	int rc = scratch_reserve(t, m);
	if (rc)
		return rc;
	double want = (double)m / D_INIT + 1;
	int must_split = want > t->cfg.max_leaf_slots;
	if (!must_split && !leaf_cost_drifted(l)) {
		m = leaf_gather(l, t->scratch);
		struct kv_src src = src_of_slots(t->scratch);
		uint32_t cap = cap_for_expand(t, m), spread = 0;
		if (tail_full || (l->n_ins > 0 && 2 * (uint64_t)l->n_append >= l->n_ins))
			append_shape(t, m, &cap, &spread);
		rc = leaf_replace(t, p, l, &src, m, cap, spread);
		if (rc == 0)
			COUNT_ADD(&t->st.expansions, 1);
		return rc;
	}
	m = leaf_gather(l, t->scratch);
	struct alex_slot *s = t->scratch;
	if (p->depth == 0) {
		/* Root leaf: it becomes an internal node over its keys' block. */
		uint64_t lo;
		unsigned bits;
		tight_block(s[0].key, s[m - 1].key, &lo, &bits);
		rc = leaf_replace_subtree(t, p, l, m, lo, bits, 1);
		if (rc == 0)
			COUNT_ADD(&t->st.splits_down, 1);
		return rc;
	}
	struct alex_inner *par = p->node[p->depth - 1];
	unsigned span = l->hdr.span_bits;
	uint32_t smin = (uint32_t)((s[0].key >> par->shift) & par->mask);
	uint32_t smax = (uint32_t)((s[m - 1].key >> par->shift) & par->mask);
	unsigned b = (unsigned)bitlen64(smin ^ smax);
	if (b >= 1) {
		uint32_t b0 = smin & ~((1u << b) - 1);
		return leaf_split_sideways(t, p, l, m, b0, b);
	}
	/* All keys in one parent slot.  If halving the parent's slots separates
	 * them, double the parent (the retry then splits sideways). */
	if (par->fbits < t->cfg.max_fanout_bits && par->shift >= 1 &&
	    (((s[0].key ^ s[m - 1].key) >> (par->shift - 1)) & 1))
		return inner_expand(t, p);
	/* Downward split: a new internal node over the leaf's domain, with
	 * enough slots to put the smallest and largest key apart. */
	uint64_t lo;
	unsigned bits;
	child_domain(p, span, &lo, &bits);
	int sep = (int)bits - bitlen64(s[0].key ^ s[m - 1].key) + 1;
	/* A node of 2^sep slots for m keys must not cost more memory than the
	 * keys themselves (keys in a corner of the domain need many slots). */
	int affordable = ceil_log2(m);
	if (affordable < 1)
		affordable = 1;
	if ((sep > (int)t->cfg.max_fanout_bits || sep > affordable) && !must_split) {
		/* Cannot separate the keys in one level and the leaf may still
		 * grow: a split would only deepen the tree, so expand. */
		struct kv_src src = src_of_slots(t->scratch);
		rc = leaf_replace(t, p, l, &src, m, cap_for(t, m), 0);
		if (rc == 0)
			COUNT_ADD(&t->st.expansions, 1);
		return rc;
	}
	if (sep > (int)t->cfg.max_fanout_bits)
		sep = (int)t->cfg.max_fanout_bits;
	rc = leaf_replace_subtree(t, p, l, m, lo, bits, sep);
	if (rc == 0)
		COUNT_ADD(&t->st.splits_down, 1);
	return rc;
}

/*
 * Widen the root's domain until it holds key: first by growing the root's
 * slot array (same slot width), and when that would pass the fanout limit,
 * by a new root above whose slots are as wide as the old root's domain.
 * New slots get empty leaves, one per aligned buddy block.
 */
static int root_grow(alex_tree *t, uint64_t key)
{
	while (!in_domain(t, key)) {
		struct alex_inner *r = (struct alex_inner *)t->root;
		unsigned rbits = r->shift + r->fbits;
		unsigned need = (unsigned)bitlen64(r->lo ^ key); /* > rbits */
		unsigned shift, fbits;
		if (need - r->shift <= t->cfg.max_fanout_bits) {
			shift = r->shift;
			fbits = need - r->shift;
		} else {
			shift = rbits;
			fbits = need - rbits;
			if (fbits > t->cfg.max_fanout_bits)
				fbits = t->cfg.max_fanout_bits;
		}
		unsigned nbits = shift + fbits;
		uint64_t nlo = nbits >= 64 ? 0 : r->lo & ~((UINT64_C(1) << nbits) - 1);
		struct alex_inner *in = inner_alloc(t, shift, fbits, nlo);
		if (!in)
			return -ENOMEM;
		/* The old root fills 2^(rbits - shift) slots at `at`. */
		unsigned ospan = rbits - shift;
		uint32_t at = (uint32_t)((r->lo - nlo) >> shift);
		struct alex_leaf *left[64], *right[64];
		uint32_t lstart[64], rstart[64];
		unsigned lspan[64], rspan[64];
		int nl = 0, nr = 0, rc = 0;
		for (unsigned lv = ospan; lv < fbits && rc == 0; lv++) {
			uint32_t blk = at & ~((1u << lv) - 1);
			uint32_t buddy = blk ^ (1u << lv);
			struct kv_src none = { NULL, NULL, 1, 1 };
			struct alex_leaf *e = leaf_build(t, &none, 0, MIN_CAP, 0, 0, NULL);
			if (!e) {
				rc = -ENOMEM;
				break;
			}
			e->hdr.span_bits = (uint8_t)lv;
			if (buddy < blk) {
				left[nl] = e;
				lstart[nl] = buddy;
				lspan[nl++] = lv;
			} else {
				right[nr] = e;
				rstart[nr] = buddy;
				rspan[nr++] = lv;
			}
		}
		if (rc) {
			for (int i = 0; i < nl; i++)
				node_free(t, &left[i]->hdr);
			for (int i = 0; i < nr; i++)
				node_free(t, &right[i]->hdr);
			node_free(t, &in->hdr);
			return rc;
		}
		if (shift == r->shift) {
			/* Same slot width: the old root's children move over. */
			uint32_t on = r->mask + 1;
			for (uint32_t i = 0; i < on; i++)
				in->child[at + i] = r->child[i];
		} else {
			for (uint32_t i = 0; i < (1u << ospan); i++)
				in->child[at + i] = &r->hdr;
			r->hdr.span_bits = (uint8_t)ospan;
		}
		for (int i = 0; i < nl; i++)
			for (uint32_t j = 0; j < (1u << lspan[i]); j++)
				in->child[lstart[i] + j] = &left[i]->hdr;
		for (int i = 0; i < nr; i++)
			for (uint32_t j = 0; j < (1u << rspan[i]); j++)
				in->child[rstart[i] + j] = &right[i]->hdr;
		/* Leaf list: left blocks were found nearest-first, and each is
		 * pushed in front of the head, so the farthest ends up first.
		 * The new leaves are empty and cover keys outside the old
		 * root's domain, so readers may meet them early. */
		for (int i = 0; i < nl; i++) {
			struct alex_leaf *e = left[i];
			e->prev = NULL;
			e->next = t->head;
			PUBLISH(&t->head->prev, e);
			t->head = e;
		}
		for (int i = 0; i < nr; i++) {
			struct alex_leaf *e = right[i];
			e->next = NULL;
			e->prev = t->tail;
			PUBLISH(&t->tail->next, e);
			t->tail = e;
		}
		/* Publish first, then retire the old root (if its children
		 * moved over): never hand a reachable node to call_rcu. */
		set_root(t, &in->hdr);
		if (shift == r->shift)
			node_retire(t, &r->hdr);
		COUNT_ADD(&t->st.root_growths, 1);
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Writes                                                                */

int alex_insert(alex_tree *t, uint64_t key, uint64_t payload)
{
	struct path p;
	for (;;) {
		if (!in_domain(t, key)) {
			int rc = root_grow(t, key);
			if (rc)
				return rc;
		}
		struct alex_leaf *l = descend_path(t, key, &p);
		uint32_t dist;
		uint32_t ub = leaf_upper_bound(l, key, &dist);
		if (ub > 0 && l->slots[ub - 1].key == key) {
			leaf_set_payload(l, ub - 1, payload);
			return 0;
		}
		/* Restructure when full, or when an append finds the tail used
		 * up (shifting a packed run of appends left would cost O(run)
		 * per key). */
		int tail_full = ub == l->used_end && ub == l->cap && leaf_tail_packed(l) &&
				2 * (uint64_t)l->n_append >= l->n_ins;
		if (l->nkeys + 1 > l->max_keys || tail_full || leaf_shifts_catastrophic(l)) {
			int rc = leaf_restructure(t, &p, l, tail_full);
			if (rc)
				return rc;
			continue;
		}
		leaf_write_begin(l);
		leaf_insert_counted(l, key, payload, ub, dist);
		leaf_write_end(l);
		COUNT_ADD(&t->nkeys, 1);
		return 1;
	}
}

/* Shrink leaf l when deletes left it sparse.  Failure only keeps it big. */
static void leaf_maybe_contract(alex_tree *t, struct path *p, struct alex_leaf *l)
{
	if (l->cap <= 4 * MIN_CAP || l->nkeys >= l->cap * D_MIN)
		return;
	if (scratch_reserve(t, l->nkeys) != 0)
		return;
	size_t m = leaf_gather(l, t->scratch);
	struct kv_src src = src_of_slots(t->scratch);
	if (leaf_replace(t, p, l, &src, m, cap_for(t, m), 0) == 0)
		COUNT_ADD(&t->st.contractions, 1);
}

int alex_delete(alex_tree *t, uint64_t key)
{
	if (!in_domain(t, key))
		return 0;
	struct path p;
	struct alex_leaf *l = descend_path(t, key, &p);
	uint32_t dist;
	uint32_t ub = leaf_upper_bound(l, key, &dist);
	if (ub == 0 || l->slots[ub - 1].key != key)
		return 0;
	leaf_write_begin(l);
	leaf_erase_at(l, ub - 1);
	leaf_write_end(l);
	COUNT_ADD(&t->nkeys, -1);
	leaf_maybe_contract(t, &p, l);
	return 1;
}

static void batch_apply_op(struct alex_leaf *l, const alex_op *o, alex_batch_result *r);

/* Apply ops[0..n) (all routed to leaf l, ascending) in place; the leaf has
 * room for every put.  One sequence bump for the whole run: readers of
 * this leaf retry at most once per batch, and the writer pays two fenced
 * stores per leaf instead of per key.
 *
 * Deletes go in descending key order, puts in ascending order: an erase
 * fills its slot with the next key and rewrites the run of gap copies to
 * its left, so erasing a run of neighbours in ascending order rewrites an
 * ever longer run (a rebalancing move that dropped 500k contiguous keys
 * spent 40% of its time there), while in descending order every erase
 * finds no such run; and an insert shifts the keys after it, so a run of
 * inserts at a leaf's end is cheap only in ascending order.  With
 * distinct keys the order changes nothing else; a run with repeated keys
 * (later op wins) goes in plain order.
 */
static void batch_apply_leaf(alex_tree *t, struct alex_leaf *l, const alex_op *ops, size_t n,
			     alex_batch_result *r)
{
	uint64_t ins0 = r->inserted, del0 = r->deleted;
	bool distinct = true;
	for (size_t i = 1; i < n && distinct; i++)
		distinct = ops[i].key != ops[i - 1].key;
	leaf_write_begin(l);
	if (!distinct) {
		for (size_t i = 0; i < n; i++)
			batch_apply_op(l, &ops[i], r);
	} else {
		for (size_t i = n; i > 0; i--)
			if (ops[i - 1].kind == ALEX_OP_DEL)
				batch_apply_op(l, &ops[i - 1], r);
		for (size_t i = 0; i < n; i++)
			if (ops[i].kind != ALEX_OP_DEL)
				batch_apply_op(l, &ops[i], r);
	}
	leaf_write_end(l);
	COUNT_ADD(&t->nkeys, (r->inserted - ins0) - (r->deleted - del0));
}

/* One op of batch_apply_leaf. */
static void batch_apply_op(struct alex_leaf *l, const alex_op *o, alex_batch_result *r)
{
	uint32_t dist;
	uint32_t ub = leaf_upper_bound(l, o->key, &dist);
	int present = ub > 0 && l->slots[ub - 1].key == o->key;
	if (o->kind == ALEX_OP_DEL) {
		if (present) {
			leaf_erase_at(l, ub - 1);
			r->deleted++;
		} else {
			r->absent++;
		}
	} else if (present) {
		leaf_set_payload(l, ub - 1, o->payload);
		r->updated++;
	} else {
		leaf_insert_counted(l, o->key, o->payload, ub, dist);
		r->inserted++;
	}
}

/*
 * Merge leaf l's keys with ops[0..n) into scratch.  Returns the merged
 * count and adds the op outcomes to r.
 */
static size_t merge_into_scratch(alex_tree *t, const struct alex_leaf *l, const alex_op *ops,
				 size_t n, alex_batch_result *r)
{
	struct alex_slot *d = t->scratch;
	size_t m = 0;
	uint32_t i = 0;
	for (size_t j = 0; j < n; j++) {
		const alex_op *o = &ops[j];
		while (i < l->used_end && l->slots[i].key < o->key) {
			if (!leaf_is_gap(l, i))
				d[m++] = l->slots[i];
			i++;
		}
		/* Slot i (if any) holds a key >= o->key; it is the key itself
		 * only if real, i.e. not a gap: a gap holding o->key is followed
		 * by the real slot, reached by skipping gaps. */
		while (i < l->used_end && leaf_is_gap(l, i) && l->slots[i].key == o->key)
			i++;
		int present_leaf = i < l->used_end && l->slots[i].key == o->key;
		int present_out = m > 0 && d[m - 1].key == o->key;
		if (present_leaf) {
			d[m++] = l->slots[i];
			i++;
			present_out = 1;
		}
		if (o->kind == ALEX_OP_DEL) {
			if (present_out) {
				m--;
				r->deleted++;
			} else {
				r->absent++;
			}
		} else if (present_out) {
			d[m - 1].payload = o->payload;
			r->updated++;
		} else {
			d[m].key = o->key;
			d[m].payload = o->payload;
			m++;
			r->inserted++;
		}
	}
	for (; i < l->used_end; i++)
		if (!leaf_is_gap(l, i))
			d[m++] = l->slots[i];
	return m;
}

/*
 * Software pipelining for batches: a random batch touches a different
 * cold leaf per op, and each op's leaf header and predicted slot are two
 * dependent cache misses.  While op i is applied, op i + PF_FAR has its
 * leaf header prefetched and op i + PF_NEAR (whose header arrived
 * meanwhile) its predicted slot, so the misses of several ops overlap.
 * Only reads of the current, consistent tree; prefetches never fault.
 */
#define PF_FAR 16
#define PF_NEAR 8

static inline void prefetch_leaf(const alex_tree *t, uint64_t key)
{
	if (!in_domain(t, key) || t->root->type != NODE_INNER)
		return;
	/* Only the root's child: going further would wait for the very miss
	 * being prefetched (the child's type decides whether to descend). */
	const struct alex_inner *in = (const struct alex_inner *)t->root;
	__builtin_prefetch(in->child[(key >> in->shift) & in->mask], 0, 3);
}

static inline void prefetch_slot(const alex_tree *t, uint64_t key)
{
	if (!in_domain(t, key))
		return;
	const struct alex_leaf *l = descend(t, key);
	if (l->used_end == 0)
		return;
	__builtin_prefetch(&l->slots[leaf_predict(l, key, l->used_end)], 1, 3);
}

int alex_apply_batch(alex_tree *t, const alex_op *ops, size_t n, alex_batch_result *res)
{
	alex_batch_result r = { 0, 0, 0, 0 };
	for (size_t i = 0; i < n; i++)
		if ((i > 0 && ops[i].key < ops[i - 1].key) ||
		    (ops[i].kind != ALEX_OP_PUT && ops[i].kind != ALEX_OP_DEL))
			return -EINVAL;
	int rc = 0;
	struct path p;
	size_t i = 0, pf_far = 0, pf_near = 0;
	while (i < n) {
		for (; pf_far < n && pf_far < i + PF_FAR; pf_far++)
			prefetch_leaf(t, ops[pf_far].key);
		for (; pf_near < n && pf_near < i + PF_NEAR; pf_near++)
			prefetch_slot(t, ops[pf_near].key);
		uint64_t key = ops[i].key;
		if (!in_domain(t, key)) {
			if (ops[i].kind == ALEX_OP_DEL) {
				r.absent++;
				i++;
				continue;
			}
			rc = root_grow(t, key);
			if (rc)
				break;
		}
		struct alex_leaf *l = descend_path(t, key, &p);
		/* The leaf's key range ends where its slot group ends. */
		uint64_t last = UINT64_MAX;
		if (p.depth > 0) {
			uint64_t lo;
			unsigned bits;
			child_domain(&p, l->hdr.span_bits, &lo, &bits);
			last = block_last(lo, bits);
		}
		size_t j = i, puts = 0, beyond = 0;
		uint64_t lmax = l->used_end ? l->slots[l->used_end - 1].key : 0;
		while (j < n && ops[j].key <= last) {
			int put = ops[j].kind != ALEX_OP_DEL;
			puts += put;
			beyond += put && (l->used_end == 0 || ops[j].key > lmax);
			j++;
		}
		if (l->nkeys + puts <= l->max_keys && l->cap - l->used_end >= beyond &&
		    !leaf_shifts_catastrophic(l)) {
			batch_apply_leaf(t, l, ops + i, j - i, &r);
			leaf_maybe_contract(t, &p, l);
			i = j;
			continue;
		}
		/* Not enough room: merge and rebuild the leaf once, if the result
		 * still fits one leaf and the leaf's model has not drifted. */
		size_t bound = (size_t)l->nkeys + puts;
		if ((double)bound / D_INIT + 1 <= t->cfg.max_leaf_slots && !leaf_cost_drifted(l)) {
			rc = scratch_reserve(t, bound);
			if (rc)
				break;
			alex_batch_result r2 = { 0, 0, 0, 0 };
			size_t m = merge_into_scratch(t, l, ops + i, j - i, &r2);
			struct kv_src src = src_of_slots(t->scratch);
			uint64_t before = l->nkeys;
			uint32_t cap = cap_for_expand(t, m), spread = 0;
			if (2 * beyond >= puts && puts > 0)
				append_shape(t, m, &cap, &spread);
			rc = leaf_replace(t, &p, l, &src, m, cap, spread);
			if (rc)
				break;
			COUNT_ADD(&t->st.expansions, 1);
			COUNT_ADD(&t->nkeys, m - before);
			r.inserted += r2.inserted;
			r.updated += r2.updated;
			r.deleted += r2.deleted;
			r.absent += r2.absent;
			i = j;
			continue;
		}
		/* Structural change needed: apply one at a time through the
		 * single-key paths, which split as required. */
		for (; i < j; i++) {
			if (ops[i].kind == ALEX_OP_DEL) {
				int d = alex_delete(t, ops[i].key);
				if (d)
					r.deleted++;
				else
					r.absent++;
			} else {
				int x = alex_insert(t, ops[i].key, ops[i].payload);
				if (x < 0) {
					rc = x;
					break;
				}
				if (x)
					r.inserted++;
				else
					r.updated++;
			}
		}
		if (rc)
			break;
	}
	if (res)
		*res = r;
	return rc;
}

/* ------------------------------------------------------------------ */
/* Stats and invariant checking                                          */

/* Reader walk (inside a read-side section): span_bits is writer-only, so
 * a child filling several slots is recognised by repetition instead. */
static uint32_t depth_of(const struct alex_node *n)
{
	if (n->type == NODE_LEAF)
		return 0;
	const struct alex_inner *in = (const struct alex_inner *)n;
	uint32_t best = 0, ns = in->mask + 1;
	const struct alex_node *prev = NULL;
	for (uint32_t i = 0; i < ns; i++) {
		const struct alex_node *c = DEREF(in->child[i]);
		if (c == prev || c->type == NODE_LEAF)
			continue;
		prev = c;
		uint32_t d = depth_of(c);
		if (d > best)
			best = d;
	}
	return best + 1;
}

void alex_get_stats(const alex_tree *t, alex_stats *st)
{
	const alex_stats *c = &t->st;
	memset(st, 0, sizeof(*st));
	st->keys = LOAD_RELAXED(&t->nkeys);
	st->bytes = LOAD_RELAXED(&t->bytes);
	st->leaves = LOAD_RELAXED(&t->leaves);
	st->inners = LOAD_RELAXED(&t->inners);
	st->expansions = LOAD_RELAXED(&c->expansions);
	st->contractions = LOAD_RELAXED(&c->contractions);
	st->splits_sideways = LOAD_RELAXED(&c->splits_sideways);
	st->splits_down = LOAD_RELAXED(&c->splits_down);
	st->inner_expansions = LOAD_RELAXED(&c->inner_expansions);
	st->root_growths = LOAD_RELAXED(&c->root_growths);
	st->retired = LOAD_RELAXED(&c->retired);
	st->max_depth = depth_of(DEREF(t->root));
}

struct check_ctx {
	const alex_tree *t;
	char *msg;
	size_t msglen;
	const struct alex_leaf *expect_next; /* next leaf expected in list order */
	const struct alex_leaf *prev_leaf;
	uint64_t keys, bytes, leaves, inners;
	int have_last;
	uint64_t last_key;
};

#define CHECK(cond, ...)                                              \
	do {                                                          \
		if (!(cond)) {                                        \
			snprintf(c->msg, c->msglen, __VA_ARGS__);     \
			return -1;                                    \
		}                                                     \
	} while (0)

static int check_leaf(struct check_ctx *c, const struct alex_leaf *l, uint64_t lo, uint64_t last)
{
	CHECK(l->used_end <= l->cap, "leaf %p used_end %u > cap %u", (void *)l, l->used_end, l->cap);
	CHECK(l->max_keys < l->cap, "leaf %p max_keys %u >= cap %u", (void *)l, l->max_keys, l->cap);
	CHECK(l == c->expect_next, "leaf list out of order at leaf %p (expected %p)", (void *)l,
	      (void *)c->expect_next);
	CHECK(l->prev == c->prev_leaf, "leaf %p prev link %p, expected %p", (void *)l,
	      (void *)l->prev, (void *)c->prev_leaf);
	uint32_t real = 0;
	for (uint32_t i = 0; i < l->used_end; i++) {
		if (i + 1 < l->used_end)
			CHECK(l->slots[i].key <= l->slots[i + 1].key,
			      "leaf %p slot %u key %llu > next %llu (gap fill broken)", (void *)l, i,
			      (unsigned long long)l->slots[i].key,
			      (unsigned long long)l->slots[i + 1].key);
		if (leaf_is_gap(l, i))
			continue;
		uint64_t k = l->slots[i].key;
		real++;
		CHECK(k >= lo && k <= last, "leaf %p key %llu outside its domain [%llu, %llu]",
		      (void *)l, (unsigned long long)k, (unsigned long long)lo,
		      (unsigned long long)last);
		CHECK(!c->have_last || k > c->last_key, "key %llu after %llu: order broken",
		      (unsigned long long)k, (unsigned long long)c->last_key);
		c->have_last = 1;
		c->last_key = k;
		/* The key must be found where lookups look for it. */
		uint32_t d;
		uint32_t ub = leaf_upper_bound(l, k, &d);
		CHECK(ub == i + 1, "leaf %p key %llu at slot %u but search ends at %u", (void *)l,
		      (unsigned long long)k, i, ub);
	}
	CHECK(real == l->nkeys, "leaf %p counts %u keys, holds %u", (void *)l, l->nkeys, real);
	c->keys += real;
	c->bytes += leaf_bytes(l->cap);
	c->leaves++;
	c->prev_leaf = l;
	c->expect_next = l->next;
	return 0;
}

static int check_node(struct check_ctx *c, const struct alex_node *n, uint64_t lo,
		      unsigned bits, int depth)
{
	CHECK(depth < MAX_DEPTH, "tree deeper than %d", MAX_DEPTH);
	uint64_t last = block_last(lo, bits);
	if (n->type == NODE_LEAF)
		return check_leaf(c, (const struct alex_leaf *)n, lo, last);
	CHECK(n->type == NODE_INNER, "node %p has bad type %u", (const void *)n, n->type);
	const struct alex_inner *in = (const struct alex_inner *)n;
	CHECK(in->shift + in->fbits == bits && in->lo == lo,
	      "inner %p covers lo %llu bits %u, parent gives lo %llu bits %u", (const void *)in,
	      (unsigned long long)in->lo, in->shift + in->fbits, (unsigned long long)lo, bits);
	CHECK(in->fbits >= 1 && in->mask == (1u << in->fbits) - 1, "inner %p bad fanout",
	      (const void *)in);
	CHECK(in->bytes == sizeof(*in) + ((size_t)1 << in->fbits) * sizeof(void *),
	      "inner %p bytes wrong", (const void *)in);
	c->bytes += in->bytes;
	c->inners++;
	uint32_t ns = in->mask + 1;
	for (uint32_t i = 0; i < ns;) {
		const struct alex_node *ch = in->child[i];
		CHECK(ch != NULL, "inner %p slot %u empty", (const void *)in, i);
		unsigned sp = ch->span_bits;
		CHECK(sp <= in->fbits && (i & ((1u << sp) - 1)) == 0,
		      "inner %p child at slot %u has misaligned span %u", (const void *)in, i, sp);
		for (uint32_t j = 1; j < (1u << sp); j++)
			CHECK(in->child[i + j] == ch, "inner %p slot %u: child spans %u slots but slot %u differs",
			      (const void *)in, i, 1u << sp, i + j);
		if (i + (1u << sp) < ns)
			CHECK(in->child[i + (1u << sp)] != ch, "inner %p: child at %u fills more slots than its span",
			      (const void *)in, i);
		if (check_node(c, ch, lo + ((uint64_t)i << in->shift), in->shift + sp, depth + 1))
			return -1;
		i += 1u << sp;
	}
	return 0;
}

int alex_check(const alex_tree *t, char *msg, size_t msglen)
{
	char dummy[8];
	struct check_ctx cc;
	struct check_ctx *c = &cc;
	memset(c, 0, sizeof(*c));
	c->t = t;
	c->msg = msg ? msg : dummy;
	c->msglen = msg ? msglen : sizeof(dummy);
	c->expect_next = t->head;
	CHECK(t->root->span_bits == 0, "root has span %u", t->root->span_bits);
	CHECK(t->head && t->head->prev == NULL, "leaf list head broken");
	uint64_t lo = 0;
	unsigned bits = 64;
	if (t->root->type == NODE_INNER) {
		const struct alex_inner *r = (const struct alex_inner *)t->root;
		lo = r->lo;
		bits = r->shift + r->fbits;
		CHECK(bits <= 64, "root covers %u bits", bits);
		CHECK(bits == 64 || (lo & ((UINT64_C(1) << bits) - 1)) == 0, "root domain misaligned");
		CHECK(t->dom_lo == lo && t->dom_hi == block_last(lo, bits), "cached root domain stale");
	} else {
		CHECK(t->dom_lo == 0 && t->dom_hi == UINT64_MAX, "leaf root domain not everything");
	}
	if (check_node(c, t->root, lo, bits, 0))
		return -1;
	CHECK(c->expect_next == NULL, "leaf list longer than the tree");
	CHECK(c->prev_leaf == t->tail, "leaf list tail broken");
	CHECK(c->keys == t->nkeys, "tree counts %llu keys, leaves hold %llu",
	      (unsigned long long)t->nkeys, (unsigned long long)c->keys);
	CHECK(c->bytes == t->bytes, "tree accounts %zu bytes, nodes hold %llu", t->bytes,
	      (unsigned long long)c->bytes);
	CHECK(c->leaves == t->leaves && c->inners == t->inners, "node counts stale");
	if (msg && msglen)
		msg[0] = '\0';
	return 0;
}
