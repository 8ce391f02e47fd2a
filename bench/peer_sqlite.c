/*
 * bench/peer_sqlite.c — SQLite as issue 4 states the peer: journal_mode=WAL,
 * synchronous=NORMAL (a commit is not fsync'd; checkpoints are), one table
 * with an INTEGER PRIMARY KEY (the rowid b-tree: the key is the row's
 * address, no separate index), prepared statements.  Other settings are
 * SQLite's defaults (page cache of 2 MB per connection, no mmap): reads of
 * pages not cached are pread()s served by the OS page cache.
 *
 * One connection per thread context (SQLITE_OPEN_NOMUTEX: a connection is
 * used by one thread), each with its own statements and a busy timeout so
 * concurrent writers wait for the write lock instead of failing.  The
 * handle keeps one connection open for its whole life, so the WAL is not
 * checkpointed away between contexts.
 *
 * INTEGER PRIMARY KEY is a signed 64-bit integer: keys are stored with the
 * top bit flipped, which maps uint64 order onto int64 order.  Values are
 * 16-byte BLOBs.  A write_batch is BEGIN, one INSERT OR REPLACE per record,
 * COMMIT; a put is one INSERT OR REPLACE in autocommit.
 */
#include "bench/peers.h"

#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SQLITE_BUSY_MS 60000
#define KEY_FLIP (UINT64_C(1) << 63)

struct sq {
	char *path;
	sqlite3 *main;   /* held open for the handle's life */
};

struct sq_ctx {
	sqlite3 *db;
	sqlite3_stmt *get, *put, *scan, *begin, *commit;
};

static inline sqlite3_int64 to_row(uint64_t key)
{
	return (sqlite3_int64)(key ^ KEY_FLIP);
}

static inline uint64_t from_row(sqlite3_int64 row)
{
	return (uint64_t)row ^ KEY_FLIP;
}

static int fail(sqlite3 *db, const char *what)
{
	fprintf(stderr, "sqlite: %s: %s\n", what, db ? sqlite3_errmsg(db) : "out of memory");
	return -1;
}

/* A connection with the per-connection settings (synchronous is one). */
static int sq_connect(const char *path, sqlite3 **out)
{
	sqlite3 *db = NULL;
	char *msg = NULL;
	int rc = sqlite3_open_v2(path, &db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
				 NULL);

	if (rc != SQLITE_OK) {
		fail(db, "sqlite3_open_v2");
		sqlite3_close_v2(db);
		return -1;
	}
	sqlite3_busy_timeout(db, SQLITE_BUSY_MS);
	rc = sqlite3_exec(db,
			  "PRAGMA journal_mode=WAL;"
			  "PRAGMA synchronous=NORMAL;"
			  "CREATE TABLE IF NOT EXISTS kv (k INTEGER PRIMARY KEY, v BLOB NOT NULL);",
			  NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		fprintf(stderr, "sqlite: setup: %s\n", msg ? msg : sqlite3_errstr(rc));
		sqlite3_free(msg);
		sqlite3_close_v2(db);
		return -1;
	}
	*out = db;
	return 0;
}

static int s_open(const struct peer_config *cfg, void **out)
{
	struct sq *s = calloc(1, sizeof(*s));
	size_t len = strlen(cfg->dir) + sizeof("/kv.sqlite");

	if (s == NULL || (s->path = malloc(len)) == NULL) {
		free(s);
		fprintf(stderr, "sqlite: out of memory\n");
		return -1;
	}
	snprintf(s->path, len, "%s/kv.sqlite", cfg->dir);
	if (peer_mkdir("sqlite", cfg->dir) != 0 || sq_connect(s->path, &s->main) != 0) {
		free(s->path);
		free(s);
		return -1;
	}
	*out = s;
	return 0;
}

static int s_close(void *h)
{
	struct sq *s = h;
	int rc = sqlite3_close_v2(s->main);

	if (rc != SQLITE_OK)
		fail(s->main, "sqlite3_close_v2");
	free(s->path);
	free(s);
	return rc == SQLITE_OK ? 0 : -1;
}

static void s_describe(void *h, char *buf, size_t len)
{
	struct sq *s = h;
	sqlite3_stmt *st = NULL;
	long long pages = -1, psize = -1;

	if (sqlite3_prepare_v2(s->main, "PRAGMA page_count", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		pages = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	st = NULL;
	if (sqlite3_prepare_v2(s->main, "PRAGMA page_size", -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		psize = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	snprintf(buf, len, "version=%s pages=%lld page_size=%lld file_mb=%.1f", sqlite3_libversion(),
		 pages, psize, pages >= 0 && psize > 0 ? (double)pages * psize / 1048576.0 : -1.0);
}

static void s_thread_close(void *t)
{
	struct sq_ctx *c = t;

	if (c == NULL)
		return;
	sqlite3_finalize(c->get);
	sqlite3_finalize(c->put);
	sqlite3_finalize(c->scan);
	sqlite3_finalize(c->begin);
	sqlite3_finalize(c->commit);
	sqlite3_close_v2(c->db);
	free(c);
}

static void *s_thread_open(void *h)
{
	struct sq *s = h;
	struct sq_ctx *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		fprintf(stderr, "sqlite: out of memory\n");
		return NULL;
	}
	if (sq_connect(s->path, &c->db) != 0) {
		free(c);
		return NULL;
	}
	if (sqlite3_prepare_v2(c->db, "SELECT v FROM kv WHERE k = ?1", -1, &c->get, NULL) ||
	    sqlite3_prepare_v2(c->db, "INSERT OR REPLACE INTO kv (k, v) VALUES (?1, ?2)", -1,
			       &c->put, NULL) ||
	    sqlite3_prepare_v2(c->db, "SELECT k, v FROM kv WHERE k >= ?1 ORDER BY k LIMIT ?2", -1,
			       &c->scan, NULL) ||
	    sqlite3_prepare_v2(c->db, "BEGIN", -1, &c->begin, NULL) ||
	    sqlite3_prepare_v2(c->db, "COMMIT", -1, &c->commit, NULL)) {
		fail(c->db, "prepare");
		s_thread_close(c);
		return NULL;
	}
	return c;
}

/* Step a statement that returns no row, then reset it. */
static int run(struct sq_ctx *c, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : fail(c->db, what);
}

static int put_one(struct sq_ctx *c, uint64_t key, const uint8_t *val)
{
	sqlite3_bind_int64(c->put, 1, to_row(key));
	sqlite3_bind_blob(c->put, 2, val, PEER_VAL, SQLITE_STATIC);
	return run(c, c->put, "insert");
}

static int s_write_batch(void *t, const uint64_t *keys, const uint8_t *vals, size_t n)
{
	struct sq_ctx *c = t;

	if (run(c, c->begin, "BEGIN") != 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (put_one(c, keys[i], vals + i * PEER_VAL) != 0) {
			sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
			return -1;
		}
	}
	return run(c, c->commit, "COMMIT");
}

static int s_put(void *t, uint64_t key, const uint8_t val[PEER_VAL])
{
	return put_one(t, key, val);
}

static int s_get(void *t, uint64_t key, uint8_t val[PEER_VAL])
{
	struct sq_ctx *c = t;
	int rc, found = 0;

	sqlite3_bind_int64(c->get, 1, to_row(key));
	rc = sqlite3_step(c->get);
	if (rc == SQLITE_ROW) {
		int len = sqlite3_column_bytes(c->get, 0);

		if (len != PEER_VAL) {
			sqlite3_reset(c->get);
			fprintf(stderr, "sqlite: get: value of %d bytes\n", len);
			return -1;
		}
		memcpy(val, sqlite3_column_blob(c->get, 0), PEER_VAL);
		found = 1;
	} else if (rc != SQLITE_DONE) {
		fail(c->db, "select");
		sqlite3_reset(c->get);
		return -1;
	}
	sqlite3_reset(c->get);
	return found;
}

static int s_scan(void *t, uint64_t from, size_t count, uint64_t *keys, uint8_t *vals)
{
	struct sq_ctx *c = t;
	size_t got = 0;
	int rc;

	sqlite3_bind_int64(c->scan, 1, to_row(from));
	sqlite3_bind_int64(c->scan, 2, (sqlite3_int64)count);
	while ((rc = sqlite3_step(c->scan)) == SQLITE_ROW && got < count) {
		if (sqlite3_column_bytes(c->scan, 1) != PEER_VAL) {
			sqlite3_reset(c->scan);
			fprintf(stderr, "sqlite: scan: bad value size\n");
			return -1;
		}
		keys[got] = from_row(sqlite3_column_int64(c->scan, 0));
		memcpy(vals + got * PEER_VAL, sqlite3_column_blob(c->scan, 1), PEER_VAL);
		got++;
	}
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		fail(c->db, "scan");
		sqlite3_reset(c->scan);
		return -1;
	}
	sqlite3_reset(c->scan);
	return (int)got;
}

const struct peer peer_sqlite = {
	.name = "sqlite",
	.settings = "journal_mode=WAL, synchronous=NORMAL, kv(k INTEGER PRIMARY KEY, v BLOB), "
		    "prepared statements, a connection per thread, default page cache",
	.caps = PEER_CAP_PERSISTENT | PEER_CAP_INSERT,
	.open = s_open,
	.close = s_close,
	.load_done = NULL,
	.describe = s_describe,
	.thread_open = s_thread_open,
	.thread_close = s_thread_close,
	.write_batch = s_write_batch,
	.get = s_get,
	.put = s_put,
	.scan = s_scan,
	.ingest = NULL,
	.flush = NULL,
};
