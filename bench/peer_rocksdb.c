/*
 * bench/peer_rocksdb.c — RocksDB through its C API, configured exactly as
 * issue 4 states the peer: a full bloom filter of 10 bits per key, a
 * 512 MiB LRU block cache, 16 KiB blocks, the WAL on and no fsync (sync
 * writes only for the put_sync measurement).  Everything else is RocksDB's
 * default (level compaction, 64 MiB memtables, Snappy when built in, index
 * and filter blocks outside the block cache, 2 background jobs), so the
 * figures are those of an untuned application.  Debian's librocksdb is
 * built with assertions on: slower than a release build, the same for
 * every RocksDB in this process (OmenDB's storage included).
 *
 * Keys are 8 big-endian bytes (bytewise order = numeric order).  get uses
 * rocksdb_get_pinned (no copy of the block), scan a fresh iterator per call
 * (as an application issuing independent range queries does).
 */
#include "bench/peers.h"

#include <rocksdb/c.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROCKS_CACHE_BYTES ((size_t)512 << 20)
#define ROCKS_BLOCK_BYTES ((size_t)16 << 10)
#define ROCKS_BLOOM_BITS  10.0

/*
 * librocksdb is C++; Debian's libjemalloc (a dependency of libomendb in this
 * program) exports operator new/delete too.  libstdc++ must come before it
 * in the dynamic linker's search order (see STORE_LIBS in Makefile.am), so
 * the program names -lstdc++ right after RocksDB, and the toolchain's
 * --as-needed keeps that entry only when something here refers to
 * libstdc++: this pointer does.  Never called.
 */
extern char *__cxa_demangle(const char *mangled, char *buf, size_t *len, int *status);
__attribute__((used)) static char *(*const bench_stdcxx_ref)(const char *, char *, size_t *,
							     int *) = __cxa_demangle;

struct rocks {
	rocksdb_t *db;
	rocksdb_options_t *opts;
	rocksdb_block_based_table_options_t *topts;
	rocksdb_cache_t *cache;
	rocksdb_writeoptions_t *wo;
	rocksdb_readoptions_t *ro;
};

struct rocks_ctx {
	struct rocks *r;
	rocksdb_writebatch_t *wb;
};

static int fail(const char *what, char *err)
{
	fprintf(stderr, "rocksdb: %s: %s\n", what, err ? err : "failed");
	rocksdb_free(err);
	return -1;
}

static inline void key_be(uint64_t key, char out[8])
{
	for (int i = 7; i >= 0; i--) {
		out[i] = (char)(key & 0xff);
		key >>= 8;
	}
}

static inline uint64_t key_from_be(const char *k)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | (unsigned char)k[i];
	return v;
}

static void r_destroy(struct rocks *r)
{
	if (r->db)
		rocksdb_close(r->db);
	if (r->wo)
		rocksdb_writeoptions_destroy(r->wo);
	if (r->ro)
		rocksdb_readoptions_destroy(r->ro);
	if (r->opts)
		rocksdb_options_destroy(r->opts);
	if (r->topts)
		rocksdb_block_based_options_destroy(r->topts);
	if (r->cache)
		rocksdb_cache_destroy(r->cache);
	free(r);
}

static int r_open(const struct peer_config *cfg, void **out)
{
	struct rocks *r = calloc(1, sizeof(*r));
	char *err = NULL;

	if (r == NULL) {
		fprintf(stderr, "rocksdb: out of memory\n");
		return -1;
	}
	r->opts = rocksdb_options_create();
	r->topts = rocksdb_block_based_options_create();
	r->cache = rocksdb_cache_create_lru(ROCKS_CACHE_BYTES);
	rocksdb_block_based_options_set_block_size(r->topts, ROCKS_BLOCK_BYTES);
	/* The table options take ownership of the policy. */
	rocksdb_block_based_options_set_filter_policy(
		r->topts, rocksdb_filterpolicy_create_bloom_full(ROCKS_BLOOM_BITS));
	rocksdb_block_based_options_set_block_cache(r->topts, r->cache);
	rocksdb_options_set_block_based_table_factory(r->opts, r->topts);
	rocksdb_options_set_create_if_missing(r->opts, 1);

	r->wo = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(r->wo, cfg->sync ? 1 : 0);   /* WAL on either way */
	r->ro = rocksdb_readoptions_create();

	r->db = rocksdb_open(r->opts, cfg->dir, &err);
	if (err) {
		r->db = NULL;
		r_destroy(r);
		return fail("rocksdb_open", err);
	}
	*out = r;
	return 0;
}

static int r_close(void *h)
{
	r_destroy(h);
	return 0;
}

static void r_describe(void *h, char *buf, size_t len)
{
	struct rocks *r = h;
	char *keys = rocksdb_property_value(r->db, "rocksdb.estimate-num-keys");
	char *l0 = rocksdb_property_value(r->db, "rocksdb.num-files-at-level0");
	char *sst = rocksdb_property_value(r->db, "rocksdb.total-sst-files-size");

	snprintf(buf, len, "estimate_num_keys=%s l0_files=%s sst_mb=%.1f", keys ? keys : "?",
		 l0 ? l0 : "?", sst ? (double)strtoull(sst, NULL, 10) / 1048576.0 : -1.0);
	rocksdb_free(keys);
	rocksdb_free(l0);
	rocksdb_free(sst);
}

static void *r_thread_open(void *h)
{
	struct rocks_ctx *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		fprintf(stderr, "rocksdb: out of memory\n");
		return NULL;
	}
	c->r = h;
	c->wb = rocksdb_writebatch_create();
	return c;
}

static void r_thread_close(void *t)
{
	struct rocks_ctx *c = t;

	if (c) {
		rocksdb_writebatch_destroy(c->wb);
		free(c);
	}
}

static int r_write_batch(void *t, const uint64_t *keys, const uint8_t *vals, size_t n)
{
	struct rocks_ctx *c = t;
	char *err = NULL, k[8];

	rocksdb_writebatch_clear(c->wb);
	for (size_t i = 0; i < n; i++) {
		key_be(keys[i], k);
		rocksdb_writebatch_put(c->wb, k, 8, (const char *)vals + i * PEER_VAL, PEER_VAL);
	}
	rocksdb_write(c->r->db, c->r->wo, c->wb, &err);
	return err ? fail("rocksdb_write", err) : 0;
}

static int r_get(void *t, uint64_t key, uint8_t val[PEER_VAL])
{
	struct rocks_ctx *c = t;
	char *err = NULL, k[8];
	rocksdb_pinnableslice_t *ps;
	const char *v;
	size_t len;

	key_be(key, k);
	ps = rocksdb_get_pinned(c->r->db, c->r->ro, k, 8, &err);
	if (err)
		return fail("rocksdb_get_pinned", err);
	if (ps == NULL)
		return 0;
	v = rocksdb_pinnableslice_value(ps, &len);
	if (len != PEER_VAL) {
		rocksdb_pinnableslice_destroy(ps);
		fprintf(stderr, "rocksdb: get: %zu-byte value\n", len);
		return -1;
	}
	memcpy(val, v, PEER_VAL);
	rocksdb_pinnableslice_destroy(ps);
	return 1;
}

static int r_put(void *t, uint64_t key, const uint8_t val[PEER_VAL])
{
	struct rocks_ctx *c = t;
	char *err = NULL, k[8];

	key_be(key, k);
	rocksdb_put(c->r->db, c->r->wo, k, 8, (const char *)val, PEER_VAL, &err);
	return err ? fail("rocksdb_put", err) : 0;
}

static int r_scan(void *t, uint64_t from, size_t count, uint64_t *keys, uint8_t *vals)
{
	struct rocks_ctx *c = t;
	rocksdb_iterator_t *it = rocksdb_create_iterator(c->r->db, c->r->ro);
	char *err = NULL, k[8];
	size_t got = 0;

	key_be(from, k);
	if (count)
		rocksdb_iter_seek(it, k, 8);
	while (count && rocksdb_iter_valid(it)) {
		size_t klen, vlen;
		const char *kp = rocksdb_iter_key(it, &klen);
		const char *vp = rocksdb_iter_value(it, &vlen);

		if (klen != 8 || vlen != PEER_VAL) {
			rocksdb_iter_destroy(it);
			fprintf(stderr, "rocksdb: scan: %zu-byte key, %zu-byte value\n", klen, vlen);
			return -1;
		}
		keys[got] = key_from_be(kp);
		memcpy(vals + got * PEER_VAL, vp, PEER_VAL);
		if (++got == count)
			break;
		rocksdb_iter_next(it);
	}
	rocksdb_iter_get_error(it, &err);
	rocksdb_iter_destroy(it);
	return err ? fail("iterator", err) : (int)got;
}

const struct peer peer_rocksdb = {
	.name = "rocksdb",
	.settings = "C API; bloom 10 bits/key (full filter), 512 MiB LRU block cache, 16 KiB "
		    "blocks, WAL on, sync=false (true for put_sync); other options default",
	.caps = PEER_CAP_PERSISTENT | PEER_CAP_SYNC | PEER_CAP_INSERT,
	.open = r_open,
	.close = r_close,
	.load_done = NULL,
	.describe = r_describe,
	.thread_open = r_thread_open,
	.thread_close = r_thread_close,
	.write_batch = r_write_batch,
	.get = r_get,
	.put = r_put,
	.scan = r_scan,
	.ingest = NULL,
	.flush = NULL,
};
