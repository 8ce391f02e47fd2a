/*
 * bench/peer_omendb.c — OmenDB behind the benchmark's peer interface, through
 * the public header only (linked against libomendb, never the internal
 * convenience libraries): what an application gets.
 *
 * Default options (one shard per online CPU, values all resident), with
 * durability OMEN_DURABLE_WAL, or OMEN_DURABLE_SYNC when the run asks for
 * fsync'd writes.  write_batch is omen_write of an omen_batch (reused per
 * thread), put is omen_put, ingest/flush are omen_ingest/omen_flush, scan
 * is an iterator over [from, UINT64_MAX] closed after count records.
 */
#include "bench/peers.h"

#include "omendb.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct omen_ctx {
	omen_db *db;
	omen_batch *batch;  /* write_batch's, cleared and refilled per call */
};

static int fail(const char *what, int rc)
{
	const char *msg = omen_errmsg();

	fprintf(stderr, "omendb: %s: %s%s%s\n", what, omen_strerror(rc), *msg ? ": " : "", msg);
	return -1;
}

static int o_open(const struct peer_config *cfg, void **out)
{
	omen_options o;
	omen_db *db = NULL;
	int rc;

	omen_options_init(&o);
	o.durability = cfg->sync ? OMEN_DURABLE_SYNC : OMEN_DURABLE_WAL;
	rc = omen_open(cfg->dir, &o, &db);
	if (rc != OMEN_OK)
		return fail("omen_open", rc);
	*out = db;
	return 0;
}

static int o_close(void *db)
{
	int rc = omen_close(db);

	return rc == OMEN_OK ? 0 : fail("omen_close", rc);
}

static double o_wait_ready(void *h)
{
	omen_stats st;
	int rc = omen_get_stats(h, &st); /* waits for every shard's rebuild */

	if (rc != OMEN_OK)
		return fail("omen_get_stats", rc);
	if (st.storage_only) {
		fprintf(stderr, "omendb: %u shards failed to rebuild\n", st.storage_only);
		return -1;
	}
	return (double)st.rebuild_us / 1e6;
}

static void o_describe(void *h, char *buf, size_t len)
{
	omen_db *db = h;
	omen_stats st;
	size_t used;
	int rc = omen_get_stats(db, &st);

	if (rc != OMEN_OK) {
		snprintf(buf, len, "omen_get_stats: %s", omen_strerror(rc));
		return;
	}
	used = (size_t)snprintf(buf, len,
				"keys=%" PRIu64 " shards=%u index_mb=%.1f value_mb=%.1f "
				"disk_mb=%.1f batches=%" PRIu64 " records=%" PRIu64 " keys_per_shard=",
				st.keys, st.shards, (double)st.index_bytes / 1048576.0,
				(double)st.value_bytes / 1048576.0, (double)st.disk_bytes / 1048576.0,
				st.batches, st.records);
	for (unsigned s = 0; s < st.shards && used < len; s++) {
		omen_shard_stats ss;

		if (omen_get_shard_stats(db, s, &ss) != OMEN_OK)
			break;
		used += (size_t)snprintf(buf + used, len - used, "%s%" PRIu64, s ? "/" : "",
					 ss.keys);
	}
}

static void *o_thread_open(void *db)
{
	struct omen_ctx *c = calloc(1, sizeof(*c));

	if (c == NULL || (c->batch = omen_batch_new()) == NULL) {
		fprintf(stderr, "omendb: out of memory\n");
		free(c);
		return NULL;
	}
	c->db = db;
	return c;
}

static void o_thread_close(void *t)
{
	struct omen_ctx *c = t;

	if (c) {
		omen_batch_free(c->batch);
		free(c);
	}
}

static int o_write_batch(void *t, const uint64_t *keys, const uint8_t *vals, size_t n)
{
	struct omen_ctx *c = t;
	int rc;

	omen_batch_clear(c->batch);
	for (size_t i = 0; i < n; i++) {
		rc = omen_batch_put(c->batch, keys[i], vals + i * PEER_VAL, PEER_VAL);
		if (rc != OMEN_OK)
			return fail("omen_batch_put", rc);
	}
	rc = omen_write(c->db, c->batch);
	return rc == OMEN_OK ? 0 : fail("omen_write", rc);
}

static int o_get(void *t, uint64_t key, uint8_t val[PEER_VAL])
{
	struct omen_ctx *c = t;
	size_t len = 0;
	int rc = omen_get(c->db, key, val, PEER_VAL, &len);

	if (rc == OMEN_OK) {
		if (len != PEER_VAL) {
			fprintf(stderr, "omendb: omen_get: %zu-byte value (expected %d)\n", len,
				PEER_VAL);
			return -1;
		}
		return 1;
	}
	return rc == OMEN_ENOTFOUND ? 0 : fail("omen_get", rc);
}

static int o_put(void *t, uint64_t key, const uint8_t val[PEER_VAL])
{
	struct omen_ctx *c = t;
	int rc = omen_put(c->db, key, val, PEER_VAL);

	return rc == OMEN_OK ? 0 : fail("omen_put", rc);
}

static int o_scan(void *t, uint64_t from, size_t count, uint64_t *keys, uint8_t *vals)
{
	struct omen_ctx *c = t;
	omen_iter *it = NULL;
	size_t got = 0;
	int rc = omen_iter_open(c->db, from, UINT64_MAX, &it);

	if (rc != OMEN_OK)
		return fail("omen_iter_open", rc);
	while (got < count) {
		const void *v;
		size_t len;

		rc = omen_iter_next(it, &keys[got], &v, &len);
		if (rc == OMEN_END)
			break;
		if (rc != OMEN_OK) {
			omen_iter_close(it);
			return fail("omen_iter_next", rc);
		}
		if (len != PEER_VAL) {
			omen_iter_close(it);
			fprintf(stderr, "omendb: omen_iter_next: %zu-byte value\n", len);
			return -1;
		}
		memcpy(vals + got * PEER_VAL, v, PEER_VAL);
		got++;
	}
	omen_iter_close(it);
	return (int)got;
}

static int o_ingest(void *t, uint64_t key, const uint8_t val[PEER_VAL])
{
	struct omen_ctx *c = t;
	int rc = omen_ingest(c->db, key, val, PEER_VAL);

	return rc == OMEN_OK ? 0 : fail("omen_ingest", rc);
}

static int o_flush(void *db)
{
	int rc = omen_flush(db);

	return rc == OMEN_OK ? 0 : fail("omen_flush", rc);
}

const struct peer peer_omendb = {
	.name = "omendb",
	.settings = "public API (libomendb), default options: shards = online CPUs, all values "
		    "resident, OMEN_DURABLE_WAL (OMEN_DURABLE_SYNC for put_sync)",
	.caps = PEER_CAP_PERSISTENT | PEER_CAP_SYNC | PEER_CAP_INSERT | PEER_CAP_INGEST,
	.open = o_open,
	.close = o_close,
	.load_done = NULL,
	.wait_ready = o_wait_ready,
	.describe = o_describe,
	.thread_open = o_thread_open,
	.thread_close = o_thread_close,
	.write_batch = o_write_batch,
	.get = o_get,
	.put = o_put,
	.scan = o_scan,
	.ingest = o_ingest,
	.flush = o_flush,
};
