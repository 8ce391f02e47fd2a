/*
 * bench/peer_lmdb.c — LMDB with MDB_NOSYNC (commits reach the memory map,
 * never fsync'd: the same promise as RocksDB's WAL without sync) and a map
 * sized from the key count.  MDB_NOTLS ties reader slots to transaction
 * objects instead of threads, so each thread context can keep one read
 * transaction and also run write transactions.
 *
 * Keys are native uint64_t under MDB_INTEGERKEY (LMDB's own integer order).
 * Every get and scan is its own snapshot: the context's read transaction is
 * renewed before and reset after (mdb_txn_renew/mdb_txn_reset, LMDB's cheap
 * path for short reads), so reads see every committed write, as the other
 * engines' do.  Every write_batch and put is one write transaction.
 */
#include "bench/peers.h"

#include <lmdb.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Map size: a floor plus generous room per key (24 bytes of record, page
 * overhead, half-full pages after random inserts, copy-on-write pages and
 * the keys written after the load).  The file is sparse. */
#define LMDB_MAP_FLOOR ((size_t)1 << 30)
#define LMDB_MAP_PER_KEY 256

struct lmdb {
	MDB_env *env;
	MDB_dbi dbi;
};

struct lmdb_ctx {
	struct lmdb *l;
	MDB_txn *rtxn;   /* read-only, reset between operations */
};

static int fail(const char *what, int rc)
{
	fprintf(stderr, "lmdb: %s: %s\n", what, mdb_strerror(rc));
	return -1;
}

static int l_open(const struct peer_config *cfg, void **out)
{
	struct lmdb *l = calloc(1, sizeof(*l));
	MDB_txn *txn = NULL;
	int rc;

	if (l == NULL) {
		fprintf(stderr, "lmdb: out of memory\n");
		return -1;
	}
	if (peer_mkdir("lmdb", cfg->dir) != 0) {
		free(l);
		return -1;
	}
	if ((rc = mdb_env_create(&l->env)) != 0) {
		free(l);
		return fail("mdb_env_create", rc);
	}
	if ((rc = mdb_env_set_mapsize(l->env, LMDB_MAP_FLOOR + cfg->n * LMDB_MAP_PER_KEY)) != 0 ||
	    (rc = mdb_env_open(l->env, cfg->dir, MDB_NOSYNC | MDB_NOTLS, 0644)) != 0 ||
	    (rc = mdb_txn_begin(l->env, NULL, 0, &txn)) != 0 ||
	    (rc = mdb_dbi_open(txn, NULL, MDB_CREATE | MDB_INTEGERKEY, &l->dbi)) != 0 ||
	    (rc = mdb_txn_commit(txn)) != 0) {
		if (txn)
			mdb_txn_abort(txn);
		mdb_env_close(l->env);
		free(l);
		return fail("open", rc);
	}
	*out = l;
	return 0;
}

static int l_close(void *h)
{
	struct lmdb *l = h;

	mdb_env_close(l->env);
	free(l);
	return 0;
}

static void l_describe(void *h, char *buf, size_t len)
{
	struct lmdb *l = h;
	MDB_stat st;
	MDB_envinfo info;

	if (mdb_env_stat(l->env, &st) != 0 || mdb_env_info(l->env, &info) != 0) {
		snprintf(buf, len, "mdb_env_stat failed");
		return;
	}
	snprintf(buf, len, "entries=%zu depth=%u pages_used_mb=%.1f map_mb=%.0f", st.ms_entries,
		 st.ms_depth, (double)(info.me_last_pgno + 1) * st.ms_psize / 1048576.0,
		 (double)info.me_mapsize / 1048576.0);
}

static void *l_thread_open(void *h)
{
	struct lmdb_ctx *c = calloc(1, sizeof(*c));
	int rc;

	if (c == NULL) {
		fprintf(stderr, "lmdb: out of memory\n");
		return NULL;
	}
	c->l = h;
	rc = mdb_txn_begin(c->l->env, NULL, MDB_RDONLY, &c->rtxn);
	if (rc != 0) {
		free(c);
		fail("mdb_txn_begin (read)", rc);
		return NULL;
	}
	mdb_txn_reset(c->rtxn);
	return c;
}

static void l_thread_close(void *t)
{
	struct lmdb_ctx *c = t;

	if (c) {
		mdb_txn_abort(c->rtxn);
		free(c);
	}
}

static int l_write(struct lmdb_ctx *c, const uint64_t *keys, const uint8_t *vals, size_t n)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(c->l->env, NULL, 0, &txn);

	if (rc != 0)
		return fail("mdb_txn_begin", rc);
	for (size_t i = 0; i < n; i++) {
		uint64_t k = keys[i];
		MDB_val mk = { sizeof(k), &k };
		MDB_val mv = { PEER_VAL, (void *)(vals + i * PEER_VAL) };

		rc = mdb_put(txn, c->l->dbi, &mk, &mv, 0);
		if (rc != 0) {
			mdb_txn_abort(txn);
			return fail("mdb_put", rc);
		}
	}
	rc = mdb_txn_commit(txn);
	return rc == 0 ? 0 : fail("mdb_txn_commit", rc);
}

static int l_write_batch(void *t, const uint64_t *keys, const uint8_t *vals, size_t n)
{
	return l_write(t, keys, vals, n);
}

static int l_put(void *t, uint64_t key, const uint8_t val[PEER_VAL])
{
	return l_write(t, &key, val, 1);
}

static int l_get(void *t, uint64_t key, uint8_t val[PEER_VAL])
{
	struct lmdb_ctx *c = t;
	MDB_val mk = { sizeof(key), &key }, mv;
	int rc = mdb_txn_renew(c->rtxn);

	if (rc != 0)
		return fail("mdb_txn_renew", rc);
	rc = mdb_get(c->rtxn, c->l->dbi, &mk, &mv);
	if (rc == 0 && mv.mv_size == PEER_VAL)
		memcpy(val, mv.mv_data, PEER_VAL);
	mdb_txn_reset(c->rtxn);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return fail("mdb_get", rc);
	if (mv.mv_size != PEER_VAL) {
		fprintf(stderr, "lmdb: get: %zu-byte value\n", mv.mv_size);
		return -1;
	}
	return 1;
}

static int l_scan(void *t, uint64_t from, size_t count, uint64_t *keys, uint8_t *vals)
{
	struct lmdb_ctx *c = t;
	MDB_cursor *cur;
	MDB_val mk = { sizeof(from), &from }, mv;
	size_t got = 0;
	int rc = mdb_txn_renew(c->rtxn);

	if (rc != 0)
		return fail("mdb_txn_renew", rc);
	rc = mdb_cursor_open(c->rtxn, c->l->dbi, &cur);
	if (rc != 0) {
		mdb_txn_reset(c->rtxn);
		return fail("mdb_cursor_open", rc);
	}
	rc = count ? mdb_cursor_get(cur, &mk, &mv, MDB_SET_RANGE) : MDB_NOTFOUND;
	while (rc == 0) {
		if (mk.mv_size != sizeof(uint64_t) || mv.mv_size != PEER_VAL) {
			rc = MDB_CORRUPTED;
			break;
		}
		memcpy(&keys[got], mk.mv_data, sizeof(uint64_t));
		memcpy(vals + got * PEER_VAL, mv.mv_data, PEER_VAL);
		if (++got == count)
			break;
		rc = mdb_cursor_get(cur, &mk, &mv, MDB_NEXT);
	}
	mdb_cursor_close(cur);
	mdb_txn_reset(c->rtxn);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return fail("scan", rc);
	return (int)got;
}

const struct peer peer_lmdb = {
	.name = "lmdb",
	.settings = "MDB_NOSYNC | MDB_NOTLS, MDB_INTEGERKEY, map 1 GiB + 256 B/key (sparse); "
		    "one write txn per batch or put, read txn renewed per get/scan",
	.caps = PEER_CAP_PERSISTENT | PEER_CAP_INSERT,
	.open = l_open,
	.close = l_close,
	.load_done = NULL,
	.describe = l_describe,
	.thread_open = l_thread_open,
	.thread_close = l_thread_close,
	.write_batch = l_write_batch,
	.get = l_get,
	.put = l_put,
	.scan = l_scan,
	.ingest = NULL,
	.flush = NULL,
};
