/*
 * shard/worker.c — a shard's writer thread: rebuild at open, then drain
 * the ingest queue batch by batch.
 *
 * One batch:
 *   1. pop up to OSHARD_BATCH_MAX records;
 *   2. flatten their operations, sort them by key (stable radix sort, so
 *      one thread's writes to one key keep their order) and keep the last
 *      of each key; blobs of superseded writes are freed at once (no
 *      reader ever saw them);
 *   3. commit the survivors in one RocksDB write (fsync'd under
 *      OMEN_DURABLE_SYNC: one fsync for the whole batch);
 *   4. apply them to the tree in one batch apply; blobs they replace are
 *      freed after a grace period (readers may be copying them);
 *   5. acknowledge: mark every sync record done, free every async one,
 *      wake the waiters once.
 *
 * Only this thread writes this shard's tree and family (see engine.h for
 * the one exception, bootstrap, when worker 0 writes every shard's).
 */
#include "shard/engine.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/grow.h"
#include "core/mem.h"
#include "core/rcu.h"
#include "omendb.h"
#include "ingest/futex.h"
#include "recovery/layout.h"
#include "shard/errors.h"
#include "shard/residency.h"
#include "shard/testhooks.h"
#include "shard/value.h"

/* ------------------------------------------------------------ scratch */

/* Worker scratch starts at 1024 elements. */
static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	return ogrow(p, cap, need, elem, 1024);
}

int oshard_garbage_add(oshard *sh, oblob *b)
{
	if (grow((void **)&sh->garbage, &sh->garbage_cap, sh->garbage_n + 1, sizeof(oblob *)))
		return -ENOMEM;
	sh->garbage[sh->garbage_n++] = b;
	return 0;
}

/* Blobs replaced in one batch, freed together after a grace period: one
 * call_rcu per batch, not one per blob. */
struct retired {
	struct rcu_head head;
	size_t n;
	oblob *blobs[];
};

static void retired_free(struct rcu_head *h)
{
	orcu_tsan_quiesced();
	struct retired *r = caa_container_of(h, struct retired, head);
	for (size_t i = 0; i < r->n; i++)
		oblob_free(r->blobs[i]);
	free(r);
}

/* Hand the batch's replaced blobs to RCU.  If even that allocation fails,
 * wait for a grace period here and free them directly. */
void oshard_garbage_retire(oshard *sh)
{
	if (sh->garbage_n == 0)
		return;
	struct retired *r = malloc(sizeof(*r) + sh->garbage_n * sizeof(oblob *));
	if (r) {
		r->n = sh->garbage_n;
		memcpy(r->blobs, sh->garbage, r->n * sizeof(oblob *));
		orcu_call(&r->head, retired_free);
	} else {
		orcu_synchronize();
		for (size_t i = 0; i < sh->garbage_n; i++)
			oblob_free(sh->garbage[i]);
	}
	sh->garbage_n = 0;
}

/* Publish t's key count for the other workers' rebalancing decisions
 * (relaxed: a hint, never used for correctness).  Called by whichever
 * thread writes t's tree at the moment. */
static void count_keys(oshard *t)
{
	atomic_store_explicit(&t->nkeys, alex_size(t->tree), memory_order_relaxed);
}

/* ------------------------------------------------------------- create */

int oshard_create(struct omen_db *db, unsigned id, unsigned queue_cap, oshard **out)
{
	*out = NULL;
	oshard *sh = aligned_alloc(OMEN_CACHE_LINE,
				   (sizeof(oshard) + OMEN_CACHE_LINE - 1) &
					   ~(size_t)(OMEN_CACHE_LINE - 1));
	if (!sh)
		return OMEN_ENOMEM;
	memset(sh, 0, sizeof(*sh));
	sh->db = db;
	sh->id = id;
	sh->memgen = 1; /* blobs start at 0: clean until applied */
	int rc = OMEN_ENOMEM;
	if (alex_create(NULL, &sh->tree) != 0)
		goto fail;
	if (oq_create(queue_cap, &sh->q) != 0)
		goto fail;
	sh->recs = malloc(OSHARD_BATCH_MAX * sizeof(void *));
	sh->wb = ostore_batch_new(db->store);
	if (!sh->recs || !sh->wb)
		goto fail;
	*out = sh;
	return OMEN_OK;
fail:
	oshard_destroy(sh);
	return rc;
}

/* Free every resident blob of the tree (close: no reader, no worker). */
static void free_resident(oshard *sh)
{
	alex_iter it;
	uint64_t k, p;
	orcu_read_lock();
	alex_iter_seek(sh->tree, 0, &it);
	while (alex_iter_next(&it, &k, &p))
		if (oval_resident(p))
			oblob_free((oblob *)oval_blob(p));
	orcu_read_unlock();
}

void oshard_destroy(oshard *sh)
{
	if (!sh)
		return;
	if (sh->tree) {
		free_resident(sh);
		alex_destroy(sh->tree);
	}
	oq_destroy(sh->q);
	ostore_batch_free(sh->wb);
	free(sh->recs);
	free(sh->ops);
	free(sh->ent);
	free(sh->ent_scratch);
	free(sh->aops);
	free(sh->garbage);
	ores_destroy(sh);
	free(sh);
}

/* ------------------------------------------------------------ rebuild */

atomic_uint odb_test_hold_rebuild;

void odb_test_release_rebuild(void)
{
	atomic_store_explicit(&odb_test_hold_rebuild, 0, memory_order_release);
	ofutex_wake(&odb_test_hold_rebuild, INT_MAX);
}

static bool closing(const struct omen_db *db)
{
	return atomic_load_explicit(&db->closing, memory_order_relaxed) != 0;
}

/* Keys the rebuild loads between two looks at `closing`. */
#define REBUILD_CHECK 4096

/* Load the shard's family into its (empty) tree: an ordered scan feeding
 * a bulk load.  Runs on the worker thread, all shards in parallel, while
 * readers of the shard read the family (tree_state OTREE_BUILDING).
 * omen_close stops it (OMEN_ECLOSED): a caller that opens a database for
 * one read should not wait for every tree. */
static int rebuild(oshard *sh)
{
	struct omen_db *db = sh->db;
	/* Test hook: hold the shard in OTREE_BUILDING (close still stops it). */
	while (atomic_load_explicit(&odb_test_hold_rebuild, memory_order_acquire) &&
	       !closing(db)) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		ofutex_wait(&odb_test_hold_rebuild, 1, &ts);
	}
	/* Under a budget only part of the values is loaded: the rest must be
	 * in table files, not in a memtable the WAL replay filled (see
	 * residency.c), so flush first.  The shard's equal part of the
	 * wanted share is loaded; the plan sorts out which later. */
	uint64_t room = UINT64_MAX;
	if (db->budget) {
		room = (db->budget - db->budget / 8) / db->nshards;
		if (ostore_flush_shard(db->store, sh->id) != OMEN_OK)
			room = UINT64_MAX; /* load it all; the budget evicts later */
		else
			sh->memgen++;
	}
	ostore_iter *it;
	int rc = ostore_iter_new(db->store, sh->id, &it);
	if (rc)
		return rc;
	uint64_t *keys = NULL, *vals = NULL;
	size_t n = 0, cap = 0, cap2 = 0, resident = 0;
	uint64_t bytes = 0;
	for (ostore_iter_seek_first(it); ostore_iter_valid(it); ostore_iter_next(it)) {
		if (n % REBUILD_CHECK == 0) {
			atomic_store_explicit(&sh->loaded, n, memory_order_relaxed);
			if (closing(db)) {
				rc = OMEN_ECLOSED;
				break;
			}
		}
		if (grow((void **)&keys, &cap, n + 1, sizeof(uint64_t)) ||
		    grow((void **)&vals, &cap2, n + 1, sizeof(uint64_t))) {
			rc = OMEN_ENOMEM;
			break;
		}
		size_t len;
		const void *v = ostore_iter_value(it, &len);
		keys[n] = ostore_iter_key(it);
		uint64_t by = omem_small_usable(oblob_size((uint32_t)len));
		if (room != UINT64_MAX && bytes + by > room) {
			vals[n++] = oval_nonresident((uint32_t)len);
			continue;
		}
		oblob *b = oblob_new(v, len);
		if (!b) {
			rc = OMEN_ENOMEM;
			break;
		}
		bytes += by;
		vals[n++] = oval_of_blob(b);
		resident++;
	}
	if (!rc)
		rc = ostore_iter_status(it);
	ostore_iter_free(it);
	if (!rc && alex_bulk_load(sh->tree, keys, vals, n) != 0) {
		oerr_set("shard %u: rebuilding the index of %zu keys failed", sh->id, n);
		rc = OMEN_ENOMEM;
	}
	if (rc) {
		for (size_t i = 0; i < n; i++)
			if (oval_resident(vals[i]))
				oblob_free((oblob *)oval_blob(vals[i]));
		n = 0;
	} else {
		atomic_store_explicit(&sh->value_bytes, bytes, memory_order_relaxed);
		atomic_store_explicit(&sh->resident_keys, resident, memory_order_relaxed);
	}
	atomic_store_explicit(&sh->loaded, n, memory_order_relaxed);
	free(keys);
	free(vals);
	return rc;
}

/* ---------------------------------------------------------- one batch */

/* Puts and deletes a record carries. */
static size_t rec_ops(const orec *r)
{
	return r->kind == OREC_MULTI ? r->nops : (r->kind == OREC_PUT || r->kind == OREC_DEL);
}

/* Flatten the records' operations into sh->ops.  Returns the count, or
 * -ENOMEM. */
static long flatten(oshard *sh, size_t n)
{
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		orec *r = sh->recs[i];
		size_t k = rec_ops(r);
		if (grow((void **)&sh->ops, &sh->ops_cap, m + k, sizeof(struct wop)))
			return -ENOMEM;
		if (r->kind == OREC_PUT || r->kind == OREC_DEL) {
			sh->ops[m++] = (struct wop){ r->key, r->kind == OREC_PUT ? r->blob : NULL,
						     (uint32_t)i, 0 };
		} else if (r->kind == OREC_MULTI) {
			for (uint32_t j = 0; j < r->nops; j++)
				sh->ops[m++] = (struct wop){ r->ops[j].key, r->ops[j].blob,
							     (uint32_t)i, 0 };
		}
	}
	return (long)m;
}

/* Sort sh->ops[0..m) by key into sh->ent, keep the last write per key,
 * free the blobs of the others.  Returns the survivors' count. */
static long sort_dedupe(oshard *sh, size_t m)
{
	if (grow((void **)&sh->ent, &sh->ent_cap, m, sizeof(obs_entry)) ||
	    grow((void **)&sh->ent_scratch, &sh->ent_scratch_cap, m, sizeof(obs_entry)))
		return -ENOMEM;
	for (size_t i = 0; i < m; i++)
		sh->ent[i] = (obs_entry){ sh->ops[i].key, (uint32_t)i, 0 };
	obs_sort(sh->ent, sh->ent_scratch, m);
	size_t d = obs_dedupe_last(sh->ent, m);
	for (size_t i = 0; i < d; i++)
		sh->ops[sh->ent[i].idx].keep = 1;
	for (size_t i = 0; i < m; i++)
		if (!sh->ops[i].keep)
			oblob_free(sh->ops[i].blob);
	return (long)d;
}

/* The shard an op goes to: this shard, or (bootstrap) the new model's. */
static unsigned target_of(const oshard *sh, const orm *route, uint64_t key)
{
	return route ? orm_route(route, key) : sh->id;
}

/* Apply survivors ent[lo..hi) (sorted, all for shard t) to t's tree. */
static int apply_run(oshard *sh, oshard *t, size_t lo, size_t hi)
{
	size_t k = hi - lo;
	if (grow((void **)&sh->aops, &sh->aops_cap, k, sizeof(alex_op)))
		return OMEN_ENOMEM;
	int64_t dbytes = 0;
	uint32_t hint = 0;
	for (size_t i = 0; i < k; i++) {
		const struct wop *o = &sh->ops[sh->ent[lo + i].idx];
		uint64_t old = 0;
		bool had = alex_writer_lookup(t->tree, o->key, &old);
		ores_apply_note(t, &hint, o->key, had, old, o->blob);
		if (had && oval_resident(old)) {
			oblob *ob = (oblob *)oval_blob(old);
			dbytes -= (int64_t)omem_small_usable(oblob_size(ob->len));
			if (oshard_garbage_add(sh, ob))
				return OMEN_ENOMEM;
		}
		sh->aops[i].key = o->key;
		if (o->blob) {
			sh->aops[i].kind = ALEX_OP_PUT;
			sh->aops[i].payload = oval_of_blob(o->blob);
			dbytes += (int64_t)omem_small_usable(oblob_size(o->blob->len));
		} else {
			sh->aops[i].kind = ALEX_OP_DEL;
			sh->aops[i].payload = 0;
		}
	}
	if (alex_apply_batch(t->tree, sh->aops, k, NULL) != 0)
		return OMEN_ENOMEM;
	atomic_fetch_add_explicit(&t->value_bytes, (uint64_t)dbytes, memory_order_relaxed);
	return OMEN_OK;
}

static void run_ctrl(oshard *sh, orec *r);

/*
 * Process the popped records sh->recs[0..n).  route: NULL in normal
 * operation; during bootstrap, the new model, and ops go to the shards it
 * names.  Acknowledges every record.
 */
static void process(oshard *sh, size_t n, const orm *route)
{
	struct omen_db *db = sh->db;
	int status = atomic_load_explicit(&sh->failed, memory_order_relaxed);
	long m = flatten(sh, n), d = 0;
	if (m < 0 || status) {
		/* Nothing will be published: free every record's blobs. */
		for (size_t i = 0; i < n; i++)
			orec_free_blobs(sh->recs[i]);
		if (!status)
			status = OMEN_ENOMEM;
		m = 0;
	}
	if (!status && m > 0) {
		d = sort_dedupe(sh, (size_t)m);
		if (d < 0) {
			for (long i = 0; i < m; i++)
				oblob_free(sh->ops[i].blob);
			status = OMEN_ENOMEM;
			d = 0;
		}
	}
	/* Commit. */
	if (!status && d > 0) {
		ostore_batch_clear(sh->wb);
		for (long i = 0; i < d && !status; i++) {
			const struct wop *o = &sh->ops[sh->ent[i].idx];
			unsigned t = target_of(sh, route, o->key);
			status = o->blob ? ostore_batch_put(sh->wb, t, o->key, o->blob->data,
							    o->blob->len)
					 : ostore_batch_delete(sh->wb, t, o->key);
		}
		if (!status)
			status = ostore_write(db->store, sh->wb, db->durability == OMEN_DURABLE_SYNC);
	}
	if (status) {
		/* Nothing committed, nothing published: the blobs are ours. */
		for (long i = 0; i < d; i++)
			oblob_free(sh->ops[sh->ent[i].idx].blob);
	} else {
		/* Apply, one run per target shard (runs are contiguous: shards
		 * own ascending key ranges and the ops are sorted). */
		size_t i = 0;
		while (i < (size_t)d) {
			unsigned t = target_of(sh, route, sh->ops[sh->ent[i].idx].key);
			size_t j = i + 1;
			while (j < (size_t)d && target_of(sh, route, sh->ops[sh->ent[j].idx].key) == t)
				j++;
			if (atomic_load_explicit(&db->shards[t]->tree_state, memory_order_relaxed) !=
			    OTREE_READY) {
				/* Storage only (see engine.h): committed is done;
				 * no reader saw these blobs. */
				for (size_t x = i; x < j; x++)
					oblob_free(sh->ops[sh->ent[x].idx].blob);
			} else if (apply_run(sh, db->shards[t], i, j) != OMEN_OK) {
				/* The family has the batch but the tree does not:
				 * reads would miss committed writes.  Refuse every
				 * later write to the shard; reopening rebuilds the
				 * tree from the family. */
				oerr_set("shard %u: out of memory applying a committed batch", t);
				atomic_store(&db->shards[t]->failed, OMEN_ENOMEM);
				status = OMEN_ENOMEM;
				break;
			}
			count_keys(db->shards[t]);
			i = j;
		}
		oshard_garbage_retire(sh);
		atomic_fetch_add_explicit(&sh->batches, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&sh->records, (uint64_t)m, memory_order_relaxed);
	}
	/* Acknowledge the writes, then run the commands (which may take
	 * long) and acknowledge them. */
	size_t nctrl = 0;
	for (size_t i = 0; i < n; i++) {
		orec *r = sh->recs[i];
		if (r->kind == OREC_CTRL) {
			sh->recs[nctrl++] = r;
		} else if (r->async) {
			if (status)
				atomic_store_explicit(&sh->async_error, status, memory_order_relaxed);
			orec_free(r);
		} else {
			orec_ack(r, r->kind == OREC_FLUSH ? OMEN_OK : status);
		}
	}
	oack_publish(&sh->ack);
	for (size_t i = 0; i < nctrl; i++) {
		orec *r = sh->recs[i];
		run_ctrl(sh, r);
		if (r->async)
			orec_free(r);
		else
			orec_ack(r, OMEN_OK);
	}
	if (nctrl)
		oack_publish(&sh->ack);
}

/* ------------------------------------------------------------ control */

/* Record a verify finding; the first one's text is kept. */
static void verify_problem(oshard *sh, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void verify_problem(oshard *sh, const char *fmt, ...)
{
	if (sh->verify_problems++ == 0) {
		va_list ap;
		va_start(ap, fmt);
		int n = snprintf(sh->verify_msg, sizeof(sh->verify_msg), "shard %u: ", sh->id);
		if (n > 0 && (size_t)n < sizeof(sh->verify_msg))
			vsnprintf(sh->verify_msg + n, sizeof(sh->verify_msg) - (size_t)n, fmt, ap);
		va_end(ap);
	}
	if (sh->verify_status == OMEN_OK)
		sh->verify_status = OMEN_ECORRUPT;
}

/*
 * omen_verify on the worker, between batches, so the tree and the family
 * hold the same committed state: the tree's invariants (alex_check), then
 * a walk of tree and family side by side: the same keys, each inside the
 * shard's range, the same values (resident: the bytes; non-resident: the
 * length).  Reading every table block through the iterator checks
 * RocksDB's block checksums (verify_checksums is on by default).  A
 * storage-only shard has no tree: its family is read through only.
 */
static void verify_shard(oshard *sh)
{
	struct omen_db *db = sh->db;
	sh->verify_keys = sh->verify_problems = 0;
	sh->verify_status = OMEN_OK;
	sh->verify_msg[0] = 0;
	bool tree = atomic_load_explicit(&sh->tree_state, memory_order_relaxed) == OTREE_READY;
	char msg[200];
	if (tree && alex_check(sh->tree, msg, sizeof(msg)) != 0)
		verify_problem(sh, "index: %s", msg);
	uint64_t lo, hi;
	orcu_read_lock();
	orm_range(ODB_DEREF(&db->root), sh->id, &lo, &hi);
	ostore_iter *fi;
	int rc = ostore_iter_new(db->store, sh->id, &fi);
	if (rc) {
		orcu_read_unlock();
		sh->verify_status = rc;
		snprintf(sh->verify_msg, sizeof(sh->verify_msg), "shard %u: %s", sh->id,
			 omen_errmsg());
		return;
	}
	alex_iter ti;
	uint64_t tk = 0, tp = 0;
	bool tv = false;
	if (tree) {
		alex_iter_seek(sh->tree, 0, &ti);
		tv = alex_iter_next(&ti, &tk, &tp);
	}
	ostore_iter_seek_first(fi);
	for (;;) {
		bool fv = ostore_iter_valid(fi);
		if (!fv && !tv)
			break;
		uint64_t fk = fv ? ostore_iter_key(fi) : 0;
		if (fv && (fk < lo || fk > hi))
			verify_problem(sh, "key %#" PRIx64 " is stored outside the shard's range "
				       "[%#" PRIx64 ", %#" PRIx64 "]", fk, lo, hi);
		if (fv && (!tree || !tv || fk < tk)) {
			if (tree)
				verify_problem(sh, "key %#" PRIx64 " is stored but not in the index", fk);
			sh->verify_keys++;
			ostore_iter_next(fi);
			continue;
		}
		if (!fv || tk < fk) {
			verify_problem(sh, "key %#" PRIx64 " is in the index but not stored", tk);
			tv = alex_iter_next(&ti, &tk, &tp);
			continue;
		}
		size_t len;
		const void *v = ostore_iter_value(fi, &len);
		if (oval_resident(tp)) {
			const oblob *b = oval_blob(tp);
			if (b->len != len || (len && memcmp(b->data, v, len) != 0))
				verify_problem(sh, "key %#" PRIx64 ": the value in memory (%u bytes) "
					       "differs from the stored one (%zu bytes)", fk, b->len, len);
		} else if (oval_nonresident_len(tp) != len) {
			verify_problem(sh, "key %#" PRIx64 ": the index says %zu bytes, storage has %zu",
				       fk, oval_nonresident_len(tp), len);
		}
		sh->verify_keys++;
		ostore_iter_next(fi);
		tv = alex_iter_next(&ti, &tk, &tp);
	}
	rc = ostore_iter_status(fi);
	ostore_iter_free(fi);
	orcu_read_unlock();
	if (rc) {
		/* A damaged block: the walk stopped there. */
		snprintf(sh->verify_msg, sizeof(sh->verify_msg), "shard %u: reading storage: %s",
			 sh->id, omen_errmsg());
		sh->verify_status = rc;
		sh->verify_problems++;
	}
}

static void run_ctrl(oshard *sh, orec *r)
{
	struct omen_db *db = sh->db;
	switch (r->ctrl) {
	case OCTRL_EVICT_ALL:
		ores_evict_all(sh);
		break;
	case OCTRL_VERIFY:
		verify_shard(sh);
		break;
	case OCTRL_PARK:
		/* A neighbour moves keys into this shard: it writes this tree
		 * and family until it sets parked back to 0. */
		atomic_store_explicit(&sh->parked, 1, memory_order_release);
		ofutex_wake(&sh->parked, INT_MAX);
		while (atomic_load_explicit(&sh->parked, memory_order_acquire) == 1)
			ofutex_wait(&sh->parked, 1, NULL);
		count_keys(sh); /* the worker looks at the balance next */
		break;
	case OCTRL_PAUSE:
		atomic_fetch_add_explicit(&db->test_paused, 1, memory_order_release);
		while (!atomic_load_explicit(&db->test_release, memory_order_acquire))
			ofutex_wait(&db->test_release, 0, NULL);
		atomic_fetch_sub_explicit(&db->test_paused, 1, memory_order_relaxed);
		break;
	default:
		break;
	}
}

/* ---------------------------------------------------------- bootstrap */

static void gate_open(struct omen_db *db)
{
	atomic_store_explicit(&db->gate, 1, memory_order_release);
	ofutex_wake(&db->gate, INT_MAX);
}

static void gate_wait(struct omen_db *db)
{
	while (!atomic_load_explicit(&db->gate, memory_order_acquire))
		ofutex_wait(&db->gate, 0, NULL);
}

/* A worker with nothing to do looks at the balance this often. */
#define IDLE_CHECK_MS 100

/* Keys a new database collects in shard 0 before it sets boundaries. */
#define BOOTSTRAP_SAMPLE 4096

/*
 * Move the keys [lo, hi] of sh's tree to the shards the new model m gives
 * them: insert them into those shards' trees (same payload words: a blob
 * is shared by two trees until the grace period below), commit puts into
 * their families, a range delete of [lo, hi] in sh's family and the
 * layout of m in one atomic write, publish m, wait a grace period
 * (readers still routing by the old model read sh's tree), then drop the
 * moved keys from sh's tree without freeing their blobs.  The caller
 * holds the target shards' workers (the bootstrap gate, or parked for a
 * rebalancing move): this worker writes their trees and families.
 * Returns OMEN_OK with m published, or an error with nothing changed (the
 * caller frees m).  *moved_n: the keys moved.
 */
static int move_keys(oshard *sh, orm *m, uint64_t lo, uint64_t hi, size_t *moved_n)
{
	struct omen_db *db = sh->db;
	size_t cap = 0, n = 0;
	alex_op *moved = NULL;
	int rc = OMEN_OK;
	bool cold_moved = false;  /* some moved value is not resident */
	*moved_n = 0;
	ostore_batch_clear(sh->wb);
	ck_sequence_write_begin(&db->layout_seq);
	alex_iter it;
	uint64_t k, p;
	orcu_read_lock();
	alex_iter_seek(sh->tree, lo, &it);
	while (alex_iter_next(&it, &k, &p) && k <= hi) {
		if (grow((void **)&moved, &cap, n + 1, sizeof(alex_op))) {
			rc = OMEN_ENOMEM;
			break;
		}
		moved[n++] = (alex_op){ k, p, ALEX_OP_PUT };
	}
	orcu_read_unlock();
	/* Families: puts into the targets, a range delete in family 0. */
	uint8_t *val = NULL;
	size_t vcap = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		unsigned t = orm_route(m, moved[i].key);
		if (oval_resident(moved[i].payload)) {
			const oblob *b = oval_blob(moved[i].payload);
			rc = ostore_batch_put(sh->wb, t, moved[i].key, b->data, b->len);
			continue;
		}
		size_t len = oval_nonresident_len(moved[i].payload);
		if (grow((void **)&val, &vcap, len ? len : 1, 1))
			rc = OMEN_ENOMEM;
		else
			rc = ostore_get(db->store, sh->id, moved[i].key, val, vcap, &len);
		if (!rc)
			rc = ostore_batch_put(sh->wb, t, moved[i].key, val, len);
	}
	free(val);
	if (!rc)
		rc = ostore_batch_delete_range(sh->wb, sh->id, lo, hi);
	if (!rc) {
		uint8_t buf[olayout_size(OSTORE_MAX_SHARDS)];
		olayout_encode(m->lo, m->nshards, buf);
		rc = ostore_batch_meta_put(sh->wb, OLAYOUT_KEY, buf, olayout_size(m->nshards));
	}
	/* Trees: the targets are invisible to readers until m is published. */
	size_t i = 0;
	while (!rc && i < n) {
		unsigned t = orm_route(m, moved[i].key);
		size_t j = i;
		uint64_t bytes = 0, res = 0;
		while (j < n && orm_route(m, moved[j].key) == t) {
			if (oval_resident(moved[j].payload)) {
				bytes += omem_small_usable(oblob_size(oval_blob(moved[j].payload)->len));
				res++;
			} else {
				cold_moved = true;
			}
			j++;
		}
		if (alex_apply_batch(db->shards[t]->tree, moved + i, j - i, NULL) != 0) {
			rc = OMEN_ENOMEM;
			j = n; /* undo everything below, applied or not */
		} else {
			atomic_fetch_add_explicit(&db->shards[t]->value_bytes, bytes,
						  memory_order_relaxed);
			atomic_fetch_sub_explicit(&sh->value_bytes, bytes, memory_order_relaxed);
			atomic_fetch_add_explicit(&db->shards[t]->resident_keys, res,
						  memory_order_relaxed);
			atomic_fetch_sub_explicit(&sh->resident_keys, res, memory_order_relaxed);
			count_keys(db->shards[t]);
		}
		i = j;
	}
	if (!rc)
		rc = ostore_write(db->store, sh->wb, db->durability == OMEN_DURABLE_SYNC);
	if (rc) {
		/* Undo the target trees: nothing reads them yet.  (Deleting a key
		 * that never got there is a no-op.) */
		for (size_t x = 0; x < i; x++) {
			oshard *t = db->shards[orm_route(m, moved[x].key)];
			if (alex_delete(t->tree, moved[x].key) == 1 &&
			    oval_resident(moved[x].payload)) {
				uint64_t b = omem_small_usable(
					oblob_size(oval_blob(moved[x].payload)->len));
				atomic_fetch_sub_explicit(&t->value_bytes, b, memory_order_relaxed);
				atomic_fetch_add_explicit(&sh->value_bytes, b, memory_order_relaxed);
				atomic_fetch_sub_explicit(&t->resident_keys, 1, memory_order_relaxed);
				atomic_fetch_add_explicit(&sh->resident_keys, 1, memory_order_relaxed);
			}
		}
		ck_sequence_write_end(&db->layout_seq);
		free(moved);
		return rc;
	}
	orm *old = db->root;
	ODB_PUBLISH(&db->root, m);
	ck_sequence_write_end(&db->layout_seq);
	/* A moved value that is not resident is now in its target's
	 * memtable, where a read would sort the memtable (residency.c): flush
	 * the targets.  Their workers are held; a failure costs speed only. */
	if (cold_moved)
		for (unsigned t = orm_route(m, lo); t <= orm_route(m, hi); t++)
			if (t != sh->id)
				(void)ostore_flush_shard(db->store, t);
	/* After this, no reader routes by the old model, and no producer is
	 * still pushing a record it routed by it. */
	orcu_synchronize();
	orm_free(old);
	for (size_t x = 0; x < n; x++)
		moved[x].kind = ALEX_OP_DEL;
	/* Deletes only shrink leaves; a failure to shrink is not an error. */
	(void)alex_apply_batch(sh->tree, moved, n, NULL);
	count_keys(sh);
	free(moved);
	*moved_n = n;
	return OMEN_OK;
}

/*
 * After a move to model m (its grace period over): records queued to sh
 * before the switch may have been routed by the previous model, to keys
 * that m gives to another shard.  Apply them to whichever shard m says,
 * writing the targets' trees and families (their workers are still
 * held); records routed by m to a target wait in the target's queue
 * meanwhile, so one thread's writes to one key keep their order across
 * the move.  Which records: producers route and push inside one
 * read-side section, so after the grace period every record routed by
 * the previous model is in the queue, and oq_depth counts at least those
 * (a push reserves its count first); the queue is FIFO and this worker
 * its only consumer, so that many pops take them all (and maybe a few
 * routed by m, which m routes the same).  A marker pushed into the queue
 * would say the same, but producers that keep the queue full can keep a
 * marker out for as long as they write.
 */
static void forward_queued(oshard *sh, const orm *m)
{
	size_t left = oq_depth(sh->q);
	while (left > 0) {
		size_t got = oq_pop_batch(sh->q, sh->recs,
					  left < OSHARD_BATCH_MAX ? left : OSHARD_BATCH_MAX, -1);
		if (got == 0)
			break; /* closed and drained */
		process(sh, got, m);
		left -= got;
	}
}

/*
 * Worker 0 while a new database bootstraps (see engine.h): apply to shard
 * 0 until it holds BOOTSTRAP_SAMPLE keys (or a batch brings that many),
 * then take the boundaries from those keys, move what belongs elsewhere,
 * and hand over to the other workers.  Returns with the gate open once
 * the boundaries are set.
 */
static void bootstrap(oshard *sh, size_t n)
{
	struct omen_db *db = sh->db;
	uint64_t have = alex_size(sh->tree), ops = 0;
	for (size_t i = 0; i < n; i++)
		ops += rec_ops(sh->recs[i]);
	if (ops == 0 || have + ops < BOOTSTRAP_SAMPLE) {
		process(sh, n, NULL);
		return;
	}
	/* Once per database: the sample needs this batch's keys. */
	long m = flatten(sh, n);
	if (m < 0) {
		process(sh, n, NULL); /* fails the batch: out of memory */
		return;
	}
	/* The sample: shard 0's keys and this batch's. */
	size_t k = 0;
	uint64_t *keys = malloc(((size_t)have + (size_t)m) * sizeof(uint64_t));
	orm *nm = NULL;
	if (keys) {
		alex_iter it;
		uint64_t key, p;
		orcu_read_lock();
		alex_iter_seek(sh->tree, 0, &it);
		while (k < (size_t)have && alex_iter_next(&it, &key, &p))
			keys[k++] = key;
		orcu_read_unlock();
		for (long i = 0; i < m; i++)
			keys[k++] = sh->ops[i].key;
		(void)orm_from_sample(keys, k, keys, db->nshards, &nm);
		free(keys);
	}
	size_t moved;
	if (!nm || move_keys(sh, nm, nm->lo[1], UINT64_MAX, &moved) != OMEN_OK) {
		/* Out of memory or a storage failure: stay in bootstrap, try
		 * again on a later batch. */
		orm_free(nm);
		process(sh, n, NULL);
		return;
	}
	process(sh, n, nm);
	forward_queued(sh, nm);
	db->bootstrapping = false;
	gate_open(db);
}

/* ---------------------------------------------------------- rebalance */

/* Moves smaller than this are not worth pausing two workers for. */
#define MOVE_MIN_KEYS 1024

/* Park neighbour t's worker at a batch boundary (see engine.h).  False if
 * its queue is closed: the database is closing. */
static bool park(oshard *t)
{
	orec *r = orec_new_async();
	if (!r)
		return false;
	r->kind = OREC_CTRL;
	r->ctrl = OCTRL_PARK;
	if (oq_push(t->q, r, false) != 0) {
		orec_free(r);
		return false;
	}
	while (atomic_load_explicit(&t->parked, memory_order_acquire) != 1)
		ofutex_wait(&t->parked, 0, NULL);
	return true;
}

static void unpark(oshard *t)
{
	atomic_store_explicit(&t->parked, 0, memory_order_release);
	ofutex_wake(&t->parked, INT_MAX);
}

/* The key of rank `rank` (0-based) in sh's tree (its own worker). */
static bool key_at_rank(oshard *sh, uint64_t rank, uint64_t *key)
{
	alex_iter it;
	uint64_t k, p, i = 0;
	bool found = false;
	orcu_read_lock();
	alex_iter_seek(sh->tree, 0, &it);
	while (alex_iter_next(&it, &k, &p)) {
		if (i++ == rank) {
			*key = k;
			found = true;
			break;
		}
	}
	orcu_read_unlock();
	return found;
}

/*
 * If sh holds more than rebalance_factor times the mean key count, move
 * keys to its smaller neighbour so that the two end up even (see
 * "Rebalancing" in engine.h).  sh's worker, between batches.
 */
static void maybe_rebalance(oshard *sh)
{
	struct omen_db *db = sh->db;
	unsigned n = db->nshards, me = sh->id;
	if (db->rebalance_factor <= 0 || n < 2 || closing(db))
		return;
	uint64_t total = 0;
	for (unsigned i = 0; i < n; i++)
		total += atomic_load_explicit(&db->shards[i]->nkeys, memory_order_relaxed);
	uint64_t mine = atomic_load_explicit(&sh->nkeys, memory_order_relaxed);
	double mean = (double)total / n;
	if ((double)mine <= db->rebalance_factor * mean || mine < 2 * MOVE_MIN_KEYS)
		return;
	/* The smaller neighbour. */
	unsigned t = me == 0 ? 1 : me == n - 1 ? n - 2 : 0;
	if (me > 0 && me < n - 1)
		t = atomic_load_explicit(&db->shards[me - 1]->nkeys, memory_order_relaxed) <=
				    atomic_load_explicit(&db->shards[me + 1]->nkeys,
							 memory_order_relaxed)
			    ? me - 1
			    : me + 1;
	oshard *ts = db->shards[t];
	uint64_t theirs = atomic_load_explicit(&ts->nkeys, memory_order_relaxed);
	if (mine <= theirs || (mine - theirs) / 2 < MOVE_MIN_KEYS)
		return;
	if (!oshard_tree_ready(sh) || !oshard_tree_ready(ts))
		return;
	if (atomic_flag_test_and_set_explicit(&db->moving, memory_order_acquire))
		return; /* another move runs: look again later */
	/* Only a move (holding db->moving) or the bootstrap (before any
	 * move: the others wait at its gate) replaces the root model, so it
	 * stays valid without a read-side section from here on. */
	const orm *root = ODB_DEREF(&db->root);
	uint64_t t0 = odb_now_ns();
	if (root->bootstrap || !park(ts)) {
		atomic_flag_clear_explicit(&db->moving, memory_order_release);
		return;
	}
	/* Exact counts now that both workers are still. */
	mine = alex_size(sh->tree);
	theirs = alex_size(ts->tree);
	uint64_t amount = mine > theirs ? (mine - theirs) / 2 : 0;
	orm *nm = NULL;
	uint64_t b, lo, hi;
	uint64_t *bounds = NULL;
	if (amount >= MOVE_MIN_KEYS &&
	    key_at_rank(sh, t > me ? mine - amount : amount, &b) &&
	    (bounds = malloc(n * sizeof(uint64_t))) != NULL) {
		memcpy(bounds, root->lo, n * sizeof(uint64_t));
		orm_range(root, me, &lo, &hi);
		if (t > me) {
			bounds[t] = b; /* my top keys [b, hi] go right */
			lo = b;
		} else {
			bounds[me] = b; /* my bottom keys [lo, b - 1] go left */
			hi = b - 1;
		}
		if (orm_from_bounds(bounds, n, &nm) != 0)
			nm = NULL;
	}
	free(bounds);
	size_t moved = 0;
	if (nm && move_keys(sh, nm, lo, hi, &moved) == OMEN_OK) {
		forward_queued(sh, nm);
		atomic_fetch_add_explicit(&db->moves, 1, memory_order_relaxed);
		atomic_fetch_add_explicit(&db->keys_moved, moved, memory_order_relaxed);
		atomic_fetch_add_explicit(&db->move_ns, odb_now_ns() - t0, memory_order_relaxed);
	} else {
		orm_free(nm); /* out of memory or a storage error: nothing moved */
	}
	unpark(ts);
	atomic_flag_clear_explicit(&db->moving, memory_order_release);
}

/* --------------------------------------------------------------- main */

/* Worker 0 before a bootstrap, which writes every shard's tree: wait for
 * every worker's rebuild (of an empty family: quick) and tell whether
 * every tree is usable. */
static bool all_trees_ready(struct omen_db *db)
{
	for (;;) {
		unsigned r = atomic_load_explicit(&db->ready, memory_order_acquire);
		if (r >= db->nshards)
			break;
		if (closing(db))
			return false; /* a failed open may not have started them all */
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		ofutex_wait(&db->ready, r, &ts);
	}
	for (unsigned i = 0; i < db->nshards; i++)
		if (!oshard_tree_ready(db->shards[i]))
			return false;
	return true;
}

void *oshard_main(void *arg)
{
	oshard *sh = arg;
	struct omen_db *db = sh->db;

	sh->rebuild_status = rebuild(sh);
	sh->rebuild_ns = odb_now_ns() - db->open_start_ns;
	atomic_store_explicit(&sh->tree_state,
			      sh->rebuild_status == OMEN_OK ? OTREE_READY : OTREE_STORAGE,
			      memory_order_release);
	atomic_fetch_add_explicit(&db->ready, 1, memory_order_release);
	ofutex_wake(&db->ready, INT_MAX);
	if (sh->rebuild_status == OMEN_OK)
		count_keys(sh);
	if (sh->id != 0)
		gate_wait(db);
	else if (db->bootstrapping && !all_trees_ready(db))
		db->bootstrapping = false; /* cannot move keys: shard 0 takes all */
	bool more = ores_step(sh);
	for (;;) {
		/* Idle, look at the balance and the residency now and then: a
		 * neighbour's move may have made this shard the largest, a new
		 * temperature plan may want other values in memory.  While
		 * readmission has work left, only poll the queue. */
		size_t n = oq_pop_batch(sh->q, sh->recs, OSHARD_BATCH_MAX,
					more ? 0 : IDLE_CHECK_MS);
		if (n == 0) {
			if (oq_drained(sh->q))
				break;
			maybe_rebalance(sh);
			more = ores_step(sh);
			continue;
		}
		if (sh->id == 0 && db->bootstrapping) {
			bootstrap(sh, n);
		} else {
			process(sh, n, NULL);
			maybe_rebalance(sh);
		}
		more = ores_step(sh);
	}
	if (sh->id == 0)
		gate_open(db); /* closed before the first batch: let the others drain */
	return NULL;
}

int oshard_start(oshard *sh)
{
	if (pthread_create(&sh->thread, NULL, oshard_main, sh) != 0)
		return OMEN_ENOMEM;
	sh->started = true;
	return OMEN_OK;
}
