/*
 * shard/residency.c — which values of a shard stay in memory: the
 * worker's side of temperature tracking and the memory budget.
 *
 * Everything here runs on the shard's worker thread, between batches, so
 * the tree and the family agree (every committed write is applied).
 *
 * The layout (temperature.h) cuts the shard's keys into buckets; the
 * worker keeps each bucket's key count, resident bytes and all-resident
 * bytes current as it applies writes (ores_apply_note), and cuts a new
 * layout when the shard's range changes or its size drifts.
 *
 * The budget.  Limits per shard, from the latest plan the aggregator
 * published for the current layout:
 *   share  resident bytes for the wanted (hottest) buckets;
 *   limit  share + the shard's part of the eighth of the budget kept for
 *          values written since the family's last flush.
 * Without a plan (no tracking, or none yet) share is the shard's equal
 * part of seven eighths of the budget, and buckets rank in key order.
 *
 * Why an eighth for recent writes: the families use RocksDB's vector
 * memtable (fast ingest, see shard/store.c), and a Get that reaches a
 * non-empty mutable vector memtable copies and sorts it.  The memtable
 * bloom filter keeps Gets of other keys out, so a value may leave memory
 * only once it is in a table file: blobs carry the flush generation
 * (memgen) they were applied in, and only blobs of an older generation
 * are evicted.  When recent writes alone would push the shard past its
 * limit, the worker flushes its family (memgen++) and evicts them too.
 *
 * One step (ores_step, after each batch and when idle):
 *   1. evict clean values of unwanted buckets, coldest first, while the
 *      resident bytes plus what the wanted buckets still miss exceed the
 *      share;
 *   2. past the limit: flush, then evict unwanted and then wanted buckets,
 *      coldest first, down to the share;
 *   3. read wanted buckets back from the family, hottest first, while
 *      they fit in the share: at most ORES_STEP_KEYS keys per step, so
 *      queued writes wait for one step at most.
 * So a shard's resident bytes exceed its limit by at most one batch of
 * writes, until its next step.
 */
#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "core/mem.h"
#include "core/rcu.h"
#include "omendb.h"
#include "shard/engine.h"
#include "shard/residency.h"
#include "shard/value.h"

/* Keys one readmission step reads back at most. */
#define ORES_STEP_KEYS 16384
/* Keys per read-side section while the worker scans its own tree. */
#define ORES_CHUNK 4096

static inline uint64_t blob_bytes(uint32_t len)
{
	return omem_small_usable(oblob_size(len));
}

/* Bytes a payload takes when resident. */
static inline uint64_t payload_bytes(uint64_t p)
{
	return blob_bytes(oval_resident(p) ? oval_blob(p)->len : (uint32_t)oval_nonresident_len(p));
}

/* The worker is the only writer of these counters: a load and a store,
 * no read-modify-write. */
static inline void add_u64(_Atomic uint64_t *c, int64_t d)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + (uint64_t)d,
			      memory_order_relaxed);
}

bool ores_enabled(const struct omen_db *db)
{
	return db->budget > 0 || db->temp != NULL;
}

/* ------------------------------------------------------------ layout */

/* Cut a new layout from the tree and publish it. */
static void relayout(oshard *sh)
{
	struct omen_db *db = sh->db;
	uint64_t lo, hi;
	orcu_read_lock();
	orm_range(ODB_DEREF(&db->root), sh->id, &lo, &hi);
	orcu_read_unlock();
	uint64_t size = alex_size(sh->tree);
	size_t n = size / OTEMP_BUCKET_KEYS + 1;
	otemp_layout *l = calloc(1, sizeof(*l) + n * sizeof(otemp_bucket));
	if (!l)
		return; /* keep the old one */
	otemp_layout *old = sh->layout;
	l->gen = old ? old->gen + 1 : 1;
	l->range_lo = lo;
	l->range_hi = hi;
	l->keys_at = size;
	l->n = 1;
	l->b[0].lo = lo;
	if (lo <= hi) {
		uint64_t next = lo, in = 0;
		bool more = true;
		while (more) {
			alex_iter it;
			uint64_t k, p;
			size_t c = 0;
			orcu_read_lock();
			alex_iter_seek(sh->tree, next, &it);
			while (c++ < ORES_CHUNK && (more = alex_iter_next(&it, &k, &p))) {
				if (k > hi) {
					more = false;
					break;
				}
				if (in == OTEMP_BUCKET_KEYS && l->n < n) {
					l->b[l->n++].lo = k;
					in = 0;
				}
				otemp_bucket *b = &l->b[l->n - 1];
				in++;
				add_u64(&b->keys, 1);
				uint64_t by = payload_bytes(p);
				add_u64(&b->all_bytes, (int64_t)by);
				if (oval_resident(p)) {
					add_u64(&b->res_bytes, (int64_t)by);
					if (oval_blob(p)->gen == sh->memgen) {
						b->dirty_gen = sh->memgen;
						b->dirty_bytes += by;
					}
				}
				if (k == UINT64_MAX) {
					more = false;
					break;
				}
				next = k + 1;
			}
			orcu_read_unlock();
		}
	}
	ODB_PUBLISH(&sh->layout, l);
	if (old)
		orcu_call(&old->rcu, ores_layout_rcu_free);
	sh->plan_seq = 0; /* a plan for the old layout is no use */
}

void ores_layout_rcu_free(struct rcu_head *h)
{
	orcu_tsan_quiesced();
	free(caa_container_of(h, otemp_layout, rcu));
}

/* A new layout is due: none yet, the shard's range moved, or its size
 * drifted (by a quarter under a budget, where buckets steer eviction;
 * by a doubling otherwise, where they only feed the statistics). */
static bool layout_stale(oshard *sh)
{
	const otemp_layout *l = sh->layout;
	if (!l)
		return true;
	uint64_t lo, hi;
	orcu_read_lock();
	orm_range(ODB_DEREF(&sh->db->root), sh->id, &lo, &hi);
	orcu_read_unlock();
	if (lo != l->range_lo || hi != l->range_hi)
		return true;
	uint64_t size = alex_size(sh->tree), at = l->keys_at;
	uint64_t d = size > at ? size - at : at - size;
	return d > (sh->db->budget ? at / 4 : at) + 4 * OTEMP_BUCKET_KEYS;
}

void ores_apply_note(oshard *t, uint32_t *hint, uint64_t key, bool had, uint64_t old,
		     oblob *nb)
{
	int64_t dres = 0;
	if (nb)
		nb->gen = t->memgen;
	if (had && oval_resident(old))
		add_u64(&t->resident_keys, -1);
	if (nb)
		add_u64(&t->resident_keys, 1);
	otemp_layout *l = t->layout;
	if (!l)
		return;
	/* Ops come in ascending key order: move the hint forward. */
	uint32_t i = *hint;
	if (i >= l->n || l->b[i].lo > key || key < l->range_lo || key > l->range_hi) {
		long b = otemp_bucket_of(l, key);
		if (b < 0)
			return;
		i = (uint32_t)b;
	}
	while (i + 1 < l->n && l->b[i + 1].lo <= key)
		i++;
	*hint = i;
	otemp_bucket *b = &l->b[i];
	int64_t dall = 0;
	if (had) {
		uint64_t by = payload_bytes(old);
		dall -= (int64_t)by;
		if (oval_resident(old)) {
			dres -= (int64_t)by;
			if (oval_blob(old)->gen == t->memgen && b->dirty_gen == t->memgen)
				b->dirty_bytes -= by < b->dirty_bytes ? by : b->dirty_bytes;
		}
		if (!nb)
			add_u64(&b->keys, -1);
	} else if (nb) {
		add_u64(&b->keys, 1);
	}
	if (nb) {
		uint64_t by = blob_bytes(nb->len);
		dall += (int64_t)by;
		dres += (int64_t)by;
		if (b->dirty_gen != t->memgen) {
			b->dirty_gen = t->memgen;
			b->dirty_bytes = 0;
		}
		b->dirty_bytes += by;
	}
	add_u64(&b->all_bytes, dall);
	add_u64(&b->res_bytes, dres);
}

/* ---------------------------------------------------- evict, readmit */

/* Bucket i's last key. */
static uint64_t bucket_hi(const otemp_layout *l, uint32_t i)
{
	return i + 1 < l->n ? l->b[i + 1].lo - 1 : l->range_hi;
}

/*
 * Make the resident values of [lo, hi] non-resident, except those
 * written since the last flush (blob gen == memgen) unless all is set.
 * b: the bucket to account them to (may be NULL).  False when out of
 * memory (nothing changed then).
 */
static bool evict_range(oshard *sh, uint64_t lo, uint64_t hi, otemp_bucket *b, bool all)
{
	size_t k = 0;
	uint64_t next = lo;
	bool more = lo <= hi;
	int64_t bytes = 0;
	while (more) {
		alex_iter it;
		uint64_t key, p;
		size_t c = 0;
		orcu_read_lock();
		alex_iter_seek(sh->tree, next, &it);
		while (c++ < ORES_CHUNK && (more = alex_iter_next(&it, &key, &p))) {
			if (key > hi) {
				more = false;
				break;
			}
			if (oval_resident(p) && (all || oval_blob(p)->gen != sh->memgen)) {
				if (ogrow((void **)&sh->aops, &sh->aops_cap, k + 1, sizeof(alex_op),
					  1024)) {
					orcu_read_unlock();
					return false;
				}
				sh->aops[k++] = (alex_op){ key, oval_nonresident(oval_blob(p)->len),
							   ALEX_OP_PUT };
			}
			if (key == UINT64_MAX) {
				more = false;
				break;
			}
			next = key + 1;
		}
		orcu_read_unlock();
	}
	if (k == 0)
		return true;
	/* The blobs go to RCU once the tree no longer points at them. */
	for (size_t i = 0; i < k; i++) {
		uint64_t old;
		(void)alex_writer_lookup(sh->tree, sh->aops[i].key, &old);
		oblob *ob = (oblob *)oval_blob(old);
		bytes += (int64_t)blob_bytes(ob->len);
		if (oshard_garbage_add(sh, ob)) {
			sh->garbage_n -= i; /* nothing was applied: keep them all */
			return false;
		}
	}
	if (alex_apply_batch(sh->tree, sh->aops, k, NULL) != 0) {
		sh->garbage_n -= k;
		return false;
	}
	oshard_garbage_retire(sh);
	add_u64(&sh->value_bytes, -bytes);
	add_u64(&sh->resident_keys, -(int64_t)k);
	add_u64(&sh->evictions, (int64_t)k);
	if (b) {
		add_u64(&b->res_bytes, -bytes);
		if (all || b->dirty_gen != sh->memgen)
			b->dirty_bytes = 0;
	}
	return true;
}

/* Bytes of b's resident values that may leave memory now. */
static uint64_t clean_bytes(const oshard *sh, const otemp_bucket *b)
{
	uint64_t r = atomic_load_explicit(&b->res_bytes, memory_order_relaxed);
	uint64_t d = b->dirty_gen == sh->memgen ? b->dirty_bytes : 0;
	return r > d ? r - d : 0;
}

/* Read bucket i's non-resident values back from the family.  Returns the
 * keys looked at (0 on failure). */
static size_t readmit(oshard *sh, otemp_layout *l, uint32_t i)
{
	otemp_bucket *b = &l->b[i];
	uint64_t lo = b->lo, hi = bucket_hi(l, i);
	ostore_iter *it;
	if (ostore_iter_new(sh->db->store, sh->id, &it) != OMEN_OK)
		return 0;
	size_t k = 0, seen = 0;
	int64_t bytes = 0;
	bool ok = true;
	for (ostore_iter_seek(it, lo); ostore_iter_valid(it); ostore_iter_next(it)) {
		uint64_t key = ostore_iter_key(it), p;
		if (key > hi)
			break;
		seen++;
		if (!alex_writer_lookup(sh->tree, key, &p) || oval_resident(p))
			continue;
		size_t len;
		const void *v = ostore_iter_value(it, &len);
		oblob *nb;
		if (ogrow((void **)&sh->aops, &sh->aops_cap, k + 1, sizeof(alex_op), 1024) ||
		    !(nb = oblob_new(v, len))) {
			ok = false;
			break;
		}
		nb->gen = 0; /* from a table file (see evict_range): clean */
		sh->aops[k++] = (alex_op){ key, oval_of_blob(nb), ALEX_OP_PUT };
		bytes += (int64_t)blob_bytes(nb->len);
	}
	if (ostore_iter_status(it) != OMEN_OK)
		ok = false;
	ostore_iter_free(it);
	if (ok && k == 0) {
		/* Nothing to read back: the counters drifted (a layout cut
		 * mid-move, say).  Believe the tree, or this bucket would be
		 * looked at on every step. */
		atomic_store_explicit(&b->all_bytes,
				      atomic_load_explicit(&b->res_bytes, memory_order_relaxed),
				      memory_order_relaxed);
		return seen ? seen : 1;
	}
	if (ok && k && alex_apply_batch(sh->tree, sh->aops, k, NULL) != 0)
		ok = false;
	if (!ok) {
		for (size_t x = 0; x < k; x++)
			oblob_free((oblob *)oval_blob(sh->aops[x].payload));
		return 0;
	}
	add_u64(&sh->value_bytes, bytes);
	add_u64(&sh->resident_keys, (int64_t)k);
	add_u64(&sh->readmissions, (int64_t)k);
	add_u64(&b->res_bytes, bytes);
	return seen;
}

/* Take the latest plan if it is new and for the current layout: copy its
 * order, wants and share (the plan itself is RCU-freed). */
static void take_plan(oshard *sh)
{
	orcu_read_lock();
	const otemp_plan *p = ODB_DEREF(&sh->plan);
	if (p && p->seq != sh->plan_seq && sh->layout && p->layout_gen == sh->layout->gen &&
	    !ogrow((void **)&sh->rorder, &sh->rorder_cap, p->n, sizeof(uint32_t), 1024) &&
	    !ogrow((void **)&sh->rwant, &sh->rwant_cap, p->n, 1, 1024)) {
		memcpy(sh->rorder, p->order, p->n * sizeof(uint32_t));
		memcpy(sh->rwant, p->want, p->n);
		sh->rshare = p->share;
		sh->plan_seq = p->seq;
	}
	orcu_read_unlock();
}

/* Flush the family: every value applied so far is in a table file. */
static bool flush_family(oshard *sh)
{
	if (ostore_flush_shard(sh->db->store, sh->id) != OMEN_OK)
		return false;
	sh->memgen++;
	return true;
}

bool ores_step(oshard *sh)
{
	struct omen_db *db = sh->db;
	if (!ores_enabled(db) || !oshard_tree_ready(sh))
		return false;
	if (layout_stale(sh))
		relayout(sh);
	otemp_layout *l = sh->layout;
	if (!l || db->budget == 0)
		return false;
	take_plan(sh);
	bool plan = sh->plan_seq != 0;
	uint64_t reserve = db->budget / 8 / db->nshards;
	uint64_t share = plan ? sh->rshare : (db->budget - db->budget / 8) / db->nshards;
	uint64_t limit = share + reserve;
	uint32_t n = l->n;
#define ORD(j) (plan ? sh->rorder[(j)] : (j))
#define WANT(i) (plan && sh->rwant[(i)])
	uint64_t vb = atomic_load_explicit(&sh->value_bytes, memory_order_relaxed);
	uint64_t pending = 0;
	if (plan)
		for (uint32_t i = 0; i < n; i++)
			if (sh->rwant[i]) {
				uint64_t a = atomic_load_explicit(&l->b[i].all_bytes, memory_order_relaxed);
				uint64_t r = atomic_load_explicit(&l->b[i].res_bytes, memory_order_relaxed);
				pending += a > r ? a - r : 0;
			}
	/* 1. Make room, from the coldest unwanted bucket up. */
	for (uint32_t j = 0; j < n && vb + pending > share; j++) {
		uint32_t i = ORD(j);
		if (WANT(i) || clean_bytes(sh, &l->b[i]) == 0)
			continue;
		if (!evict_range(sh, l->b[i].lo, bucket_hi(l, i), &l->b[i], false))
			return false;
		vb = atomic_load_explicit(&sh->value_bytes, memory_order_relaxed);
	}
	/* 2. Recent writes pushed the shard past its limit. */
	if (vb > limit && flush_family(sh)) {
		for (int wanted = 0; wanted < 2 && vb > share; wanted++)
			for (uint32_t j = 0; j < n && vb > share; j++) {
				uint32_t i = ORD(j);
				if ((WANT(i) != 0) != (wanted != 0) ||
				    atomic_load_explicit(&l->b[i].res_bytes, memory_order_relaxed) == 0)
					continue;
				if (!evict_range(sh, l->b[i].lo, bucket_hi(l, i), &l->b[i], false))
					return false;
				vb = atomic_load_explicit(&sh->value_bytes, memory_order_relaxed);
			}
	}
	if (!plan)
		return false;
	/* 3. Read hot buckets back, hottest first, while they fit. */
	size_t done = 0;
	for (uint32_t j = n; j-- > 0;) {
		uint32_t i = sh->rorder[j];
		if (!sh->rwant[i])
			continue;
		uint64_t a = atomic_load_explicit(&l->b[i].all_bytes, memory_order_relaxed);
		uint64_t r = atomic_load_explicit(&l->b[i].res_bytes, memory_order_relaxed);
		if (a <= r)
			continue;
		if (vb + (a - r) > share)
			continue;
		if (done >= ORES_STEP_KEYS)
			return true; /* more to do: the worker comes back soon */
		size_t got = readmit(sh, l, i);
		if (got == 0)
			return false;
		done += got;
		vb = atomic_load_explicit(&sh->value_bytes, memory_order_relaxed);
	}
	return false;
#undef ORD
#undef WANT
}

/* The test hook OCTRL_EVICT_ALL: flush, then make every value
 * non-resident. */
void ores_evict_all(oshard *sh)
{
	if (!oshard_tree_ready(sh) || !flush_family(sh))
		return;
	otemp_layout *l = sh->layout;
	if (!l) {
		(void)evict_range(sh, 0, UINT64_MAX, NULL, true);
		return;
	}
	/* Keys outside the layout's range (there are none unless the range
	 * moved since it was cut) are evicted without bucket accounting. */
	if (l->range_lo > 0)
		(void)evict_range(sh, 0, l->range_lo - 1, NULL, true);
	for (uint32_t i = 0; i < l->n; i++)
		(void)evict_range(sh, l->b[i].lo, bucket_hi(l, i), &l->b[i], true);
	if (l->range_hi < UINT64_MAX)
		(void)evict_range(sh, l->range_hi + 1, UINT64_MAX, NULL, true);
}

/* Close: free the layout and plan (no reader, no aggregator left). */
void ores_destroy(oshard *sh)
{
	free(sh->layout);
	sh->layout = NULL;
	otemp_plan_free(sh->plan);
	sh->plan = NULL;
	free(sh->rorder);
	free(sh->rwant);
}
