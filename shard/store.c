/*
 * shard/store.c — the storage layer over RocksDB's C API.  See store.h for
 * the on-disk layout, the error codes and the thread-safety contract.
 *
 * Ownership rules of the C API that this file relies on:
 *   - rocksdb_open_column_families copies the options it is given, and
 *     rocksdb_options_set_block_based_table_factory copies the table
 *     options, and rocksdb_block_based_options_set_block_cache copies its
 *     own reference to the cache: all three are destroyed right after open;
 *   - rocksdb_block_based_options_set_filter_policy TAKES the filter policy
 *     (it is reset into a shared_ptr): destroying it too would be a double
 *     free, so it is never destroyed here;
 *   - every char *err is copied into oerr_set and released with rocksdb_free
 *     (store_err), never with free: RocksDB allocated it.
 * Engine-owned memory goes through core/mem.h (arena 0, jemalloc's default).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <rocksdb/c.h>

#include "omendb.h"
#include "core/mem.h"
#include "shard/errors.h"
#include "shard/store.h"

/*
 * Keep libstdc++ among libomendb.so's direct dependencies, ahead of
 * libjemalloc (Makefile.am, STORE_LIBS).  Debian's libjemalloc.so.2 also
 * defines C++ operator new/delete; the dynamic linker resolves them
 * breadth-first, so without libstdc++ at our level a C program linking
 * libomendb gets jemalloc's operator new under RocksDB while RocksDB and
 * libstdc++ free through glibc: "free(): invalid pointer" in RocksDB's
 * static constructors, before main.  The toolchain links --as-needed, so
 * an entry nothing refers to is dropped: this reference keeps it.  Never
 * called.
 */
extern char *__cxa_demangle(const char *mangled, char *buf, size_t *len, int *status);
__attribute__((used)) static char *(*const stdcxx_keep)(const char *, char *, size_t *,
							int *) = __cxa_demangle;

/* ------------------------------------------------------------- tuning */

/*
 * Memtables.  Each family's memtable flushes at OSTORE_CF_WRITE_BUFFER (large
 * flushes make few, large L0 files: fewer compactions per byte written).
 * Alone that would let memory grow with the shard count (64 shards x 64 MiB
 * x 2 memtables = 8 GiB), so OSTORE_DB_WRITE_BUFFER bounds all memtables of
 * all families together (db_write_buffer_size): past it RocksDB flushes.
 */
#define OSTORE_CF_WRITE_BUFFER ((size_t)64 << 20)
#define OSTORE_DB_WRITE_BUFFER ((size_t)256 << 20)
/*
 * The WAL is shared by all families (RocksDB's default, and what makes a
 * multi-family batch atomic).  A WAL file can be deleted only once every
 * family has flushed the records in it, so a quiet shard (or the meta
 * family) with a few old records in its memtable would pin every WAL file
 * written since.  max_total_wal_size makes RocksDB flush the families that
 * hold the oldest WAL once the live WAL exceeds it: bounded disk use and a
 * bounded replay at reopen.  Twice the memtable budget: rarely reached by
 * families that flush on their own.
 */
#define OSTORE_MAX_TOTAL_WAL ((uint64_t)512 << 20)
/* Block cache when the caller passes 0 (tests, tools). */
#define OSTORE_DEFAULT_CACHE ((size_t)32 << 20)
/* Bigger than the 4 KiB default: fewer index entries per table (smaller
 * index blocks held in memory) and better compression; a point read that
 * does reach RocksDB (a value not resident in the engine) pays one larger
 * block read, which the engine's own memory makes rare. */
#define OSTORE_BLOCK_SIZE ((size_t)16 << 10)
#define OSTORE_BLOOM_BITS 10.0
/* Memtable bloom filter, as a fraction of the write buffer (RocksDB's
 * suggested range is up to 0.25; 2% of 64 MiB is ~10 bits per 16-byte
 * record). */
#define OSTORE_MEMTABLE_BLOOM 0.02
/*
 * Compaction: level style, tuned for cheap writes.  Reads are served from
 * the engine's memory and reach RocksDB only for values not resident and
 * for rebuilds (sequential scans), so read amplification matters less
 * than write amplification.  We keep level compaction rather than
 * universal: telemetry keys arrive mostly in order, so flushed files rarely
 * overlap and RocksDB moves them down levels without rewriting them
 * (trivial moves: write amplification near 1), and level style keeps
 * space amplification near 1.1 where universal can need 2x during a full
 * compaction.  To make the random-key case cheaper as well:
 *   - L0 compacts at 8 files (default 4): each L0->L1 compaction merges
 *     more data per rewrite of L1; slowdown/stop at 32/48 (default 20/36)
 *     give ingest bursts headroom before RocksDB throttles writers;
 *   - L1 is sized like a full L0 (8 x 64 MiB), the usual guidance so an
 *     L0->L1 compaction does not rewrite a much larger L1;
 *   - dynamic level sizes: levels sized from the last one up, which is what
 *     keeps space amplification bounded as the database grows.
 */
#define OSTORE_L0_TRIGGER 8
#define OSTORE_L0_SLOWDOWN 32
#define OSTORE_L0_STOP 48
#define OSTORE_L1_BYTES ((uint64_t)OSTORE_L0_TRIGGER * OSTORE_CF_WRITE_BUFFER)
/* Flushes of many families and compactions run in parallel (default 2). */
#define OSTORE_BG_JOBS 4
/* Each open starts a new LOG file; keep a few, not RocksDB's 1000. */
#define OSTORE_KEEP_LOGS 8
/* Checkpoints copy WAL files and hard-link table files.  Below this much
 * live WAL they copy it (cheap, no flush); above it they flush the
 * memtables first so the copy stays small. */
#define OSTORE_CHECKPOINT_FLUSH_WAL ((uint64_t)64 << 20)

#define OSTORE_META_CF "meta"
#define OSTORE_SHARD_PREFIX "shard-"
/* "shard-4095" and "default" fit with room to spare. */
#define OSTORE_NAME_MAX 24

/* --------------------------------------------------------------- types */

/* Immutable after ostore_open returns: read by any thread without locks. */
struct ostore {
	rocksdb_t *db;
	rocksdb_column_family_handle_t *dflt;  /* "default": required, unused */
	rocksdb_column_family_handle_t *meta;
	rocksdb_column_family_handle_t **cf;   /* [nshards]: "shard-i"       */
	rocksdb_writeoptions_t *wo_async;      /* WAL, no fsync               */
	rocksdb_writeoptions_t *wo_sync;       /* WAL fsync'd before return   */
	rocksdb_readoptions_t *ro;             /* point reads; fills the cache */
	unsigned nshards;
};

/* One owner thread at a time. */
struct ostore_batch {
	ostore *st;
	rocksdb_writebatch_t *wb;
};

/* One owner thread at a time.  bad_key: positioned on a key that is not
 * 8 bytes (not written by us): valid() turns false, status() reports it. */
struct ostore_iter {
	rocksdb_iterator_t *it;
	rocksdb_readoptions_t *ro;   /* outlives it, as RocksDB asks */
	int bad_key;
};

/* -------------------------------------------------------------- errors */

/*
 * Translate a RocksDB error into an OMEN code, copy its text into the
 * thread's message (prefixed by what we were doing) and free it.
 *   "Corruption: ..."                                  -> OMEN_ECORRUPT
 *   "IO error: ..." about the LOCK file being held     -> OMEN_EBUSY
 *     (another process: "While lock file: <dir>/LOCK: Resource temporarily
 *     unavailable"; this process: "lock hold by current process ...")
 *   anything else                                      -> OMEN_EIO
 */
static int store_err(char *err, const char *what)
{
	int code = OMEN_EIO;

	if (strncmp(err, "Corruption:", 11) == 0)
		code = OMEN_ECORRUPT;
	else if (strncmp(err, "IO error:", 9) == 0 &&
		 (strstr(err, "While lock file") || strstr(err, "lock hold by current process")))
		code = OMEN_EBUSY;
	if (code == OMEN_EBUSY)
		oerr_set("%s: the database is already open: %s", what, err);
	else
		oerr_set("%s: %s", what, err);
	rocksdb_free(err);
	return code;
}

/* ---------------------------------------------------------------- keys */

static inline void key_encode(uint64_t key, char out[8])
{
	for (int i = 7; i >= 0; i--) {
		out[i] = (char)(key & 0xff);
		key >>= 8;
	}
}

static inline uint64_t key_decode(const char *in)
{
	uint64_t key = 0;

	for (int i = 0; i < 8; i++)
		key = key << 8 | (unsigned char)in[i];
	return key;
}

/* ----------------------------------------------------------------- open */

/* Options shared by every family and the DB (the same settings suit all
 * shards; the meta family is tiny and unaffected).  NULL on allocation
 * failure is not reported by RocksDB (it aborts), so this cannot fail. */
static rocksdb_options_t *make_options(size_t cache_bytes, bool create_new)
{
	rocksdb_options_t *o = rocksdb_options_create();
	rocksdb_block_based_table_options_t *t = rocksdb_block_based_options_create();
	rocksdb_cache_t *cache =
		rocksdb_cache_create_lru(cache_bytes ? cache_bytes : OSTORE_DEFAULT_CACHE);

	/* A new database gets its families at open; an existing one must
	 * already have them all (checked before open), so a missing family
	 * there is an error, not something to create silently. */
	rocksdb_options_set_create_if_missing(o, create_new);
	rocksdb_options_set_create_missing_column_families(o, create_new);

	rocksdb_options_set_write_buffer_size(o, OSTORE_CF_WRITE_BUFFER);
	rocksdb_options_set_db_write_buffer_size(o, OSTORE_DB_WRITE_BUFFER);
	rocksdb_options_set_max_total_wal_size(o, OSTORE_MAX_TOTAL_WAL);

	rocksdb_options_set_compaction_style(o, rocksdb_level_compaction);
	rocksdb_options_set_level0_file_num_compaction_trigger(o, OSTORE_L0_TRIGGER);
	rocksdb_options_set_level0_slowdown_writes_trigger(o, OSTORE_L0_SLOWDOWN);
	rocksdb_options_set_level0_stop_writes_trigger(o, OSTORE_L0_STOP);
	rocksdb_options_set_max_bytes_for_level_base(o, OSTORE_L1_BYTES);
	rocksdb_options_set_level_compaction_dynamic_level_bytes(o, 1);
	rocksdb_options_set_max_background_jobs(o, OSTORE_BG_JOBS);
	rocksdb_options_set_keep_log_file_num(o, OSTORE_KEEP_LOGS);
	/* Required by the vector memtable of the shard families (only the
	 * skiplist supports concurrent inserts).  What it costs: RocksDB's
	 * write group leader inserts the group's batches one after another
	 * instead of each writer inserting its own; appends to a vector are
	 * cheap enough that this does not matter (measured below). */
	rocksdb_options_set_allow_concurrent_memtable_write(o, 0);
	/*
	 * The engine keeps every key in memory, so RocksDB is asked only for
	 * keys that exist: the bloom filters of the last level (most of the
	 * data) would answer "maybe" every time.  Not building them saves
	 * about 90% of filter memory; upper levels keep theirs, which is where
	 * a present key's lookup passes through files that lack it.
	 */
	rocksdb_options_set_optimize_filters_for_hits(o, 1);

	rocksdb_block_based_options_set_block_size(t, OSTORE_BLOCK_SIZE);
	/* Ownership passes to t (see the top of the file). */
	rocksdb_block_based_options_set_filter_policy(
		t, rocksdb_filterpolicy_create_bloom_full(OSTORE_BLOOM_BITS));
	/*
	 * Index and filter blocks are NOT cached (the default, set here on
	 * purpose): they stay in the table readers' memory for as long as the
	 * file is open (max_open_files is -1: all of them).  Cached, a large
	 * file's filter could exceed one cache shard and be re-read on every
	 * get (DEPENDENCIES.md: point reads fell from ~240K/s to ~1.3K/s).
	 * The cost, memory outside cache_bytes, is small: one index entry per
	 * 16 KiB block and no filter on the last level (above).
	 */
	rocksdb_block_based_options_set_cache_index_and_filter_blocks(t, 0);
	rocksdb_block_based_options_set_block_cache(t, cache);
	rocksdb_options_set_block_based_table_factory(o, t);

	rocksdb_block_based_options_destroy(t);
	rocksdb_cache_destroy(cache);
	return o;
}

/*
 * The shard families' memtable: a vector, not RocksDB's skiplist.
 *
 * Why: profiled with perf on the 2-CPU test VM, inserting into the
 * skiplist memtable (search, key comparisons, perf-context bookkeeping)
 * took about two thirds of all CPU time of an ingest; the engine's own
 * work (sort, index apply, queues) under a fifth.  A vector memtable
 * appends and sorts once, when it is flushed.  Measured with 2 threads
 * ingesting random 16-byte values (then omen_flush): skiplist 0.31-0.33M
 * keys/s, vector 2.2-2.5M keys/s at 2M keys and 1.5M keys/s at 8M keys
 * (flushes running during the load).
 *
 * What it costs, and why we can pay it: a point Get that reaches the
 * mutable memtable copies and sorts it.  The engine never reads RocksDB
 * for a key it holds in memory: only values that are not resident (and
 * the rebuild scan at open, which sorts once per memtable).  The memtable
 * bloom filter below (whole keys) lets a Get skip the memtable unless the
 * key was written since the last flush, and a value written that recently
 * is resident.  Flushes sort, so close (which flushes) takes longer.
 */
static rocksdb_options_t *shard_family_options(const rocksdb_options_t *db_opts)
{
	rocksdb_options_t *o = rocksdb_options_create_copy((rocksdb_options_t *)db_opts);
	rocksdb_options_set_memtable_vector_rep(o);
	rocksdb_options_set_memtable_prefix_bloom_size_ratio(o, OSTORE_MEMTABLE_BLOOM);
	rocksdb_options_set_memtable_whole_key_filtering(o, 1);
	return o;
}

/* "shard-<i>" with 0 <= i < OSTORE_MAX_SHARDS, canonical decimal (no sign,
 * no leading zero): the shard number, else -1. */
static long parse_shard_name(const char *name)
{
	size_t plen = strlen(OSTORE_SHARD_PREFIX);
	const char *p = name + plen;
	long v = 0;

	if (strncmp(name, OSTORE_SHARD_PREFIX, plen) != 0 || !*p || (p[0] == '0' && p[1]))
		return -1;
	for (; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		v = v * 10 + (*p - '0');
		if (v >= OSTORE_MAX_SHARDS)
			return -1;
	}
	return v;
}

/*
 * An existing database: read its family list (no lock taken, nothing
 * written) and check it is ours: "default", "meta", and shard-0..k-1 each
 * exactly once.  *nshards = k on success.
 */
static int existing_shards(const char *path, unsigned *nshards)
{
	rocksdb_options_t *o = rocksdb_options_create();
	char *err = NULL;
	size_t n = 0;
	char **names = rocksdb_list_column_families(o, path, &n, &err);
	int rc = OMEN_OK;
	unsigned k = 0, seen_meta = 0;
	unsigned char *seen = NULL;
	size_t seen_size = OSTORE_MAX_SHARDS;

	rocksdb_options_destroy(o);
	if (err) {
		if (names)
			rocksdb_list_column_families_destroy(names, n);
		return store_err(err, "listing column families");
	}
	seen = omem_alloc(0, seen_size);
	if (!seen) {
		rocksdb_list_column_families_destroy(names, n);
		oerr_set("out of memory opening %s", path);
		return OMEN_ENOMEM;
	}
	memset(seen, 0, seen_size);
	for (size_t i = 0; i < n && rc == OMEN_OK; i++) {
		long s;

		if (strcmp(names[i], "default") == 0)
			continue;
		if (strcmp(names[i], OSTORE_META_CF) == 0) {
			seen_meta++;
			continue;
		}
		s = parse_shard_name(names[i]);
		if (s < 0 || seen[s]) {
			oerr_set("%s: unexpected column family \"%s\": not an OmenDB database",
				 path, names[i]);
			rc = OMEN_ECORRUPT;
			break;
		}
		seen[s] = 1;
		k++;
	}
	if (rc == OMEN_OK) {
		/* k distinct shard numbers: contiguous iff all of 0..k-1 seen. */
		for (unsigned i = 0; i < k; i++)
			if (!seen[i]) {
				oerr_set("%s: column family shard-%u is missing", path, i);
				rc = OMEN_ECORRUPT;
				break;
			}
	}
	if (rc == OMEN_OK && (seen_meta != 1 || k == 0)) {
		oerr_set("%s: no \"%s\" family or no shard family: not an OmenDB database", path,
			 OSTORE_META_CF);
		rc = OMEN_ECORRUPT;
	}
	omem_free(0, seen, seen_size);
	rocksdb_list_column_families_destroy(names, n);
	if (rc == OMEN_OK)
		*nshards = k;
	return rc;
}

/* 1: dir has an entry besides . and ..; 0: empty; negative OMEN code. */
static int dir_nonempty(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int found = 0;

	if (!d) {
		oerr_set("%s: %s", path, strerror(errno));
		return OMEN_EIO;
	}
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			found = 1;
			break;
		}
	closedir(d);
	return found;
}

static void store_free(ostore *st)
{
	if (st->cf)
		omem_free(0, st->cf, st->nshards * sizeof(*st->cf));
	if (st->wo_async)
		rocksdb_writeoptions_destroy(st->wo_async);
	if (st->wo_sync)
		rocksdb_writeoptions_destroy(st->wo_sync);
	if (st->ro)
		rocksdb_readoptions_destroy(st->ro);
	omem_free(0, st, sizeof(*st));
}

int ostore_open(const char *path, unsigned nshards, size_t cache_bytes, bool create,
		ostore **out)
{
	struct stat sb;
	bool create_new = false;
	unsigned have = 0;
	int rc;

	if (!out)
		return OMEN_EINVAL;
	*out = NULL;
	if (!path || !*path || nshards > OSTORE_MAX_SHARDS) {
		oerr_set("ostore_open: bad argument (path %s, %u shards, at most %u)",
			 path ? path : "NULL", nshards, OSTORE_MAX_SHARDS);
		return OMEN_EINVAL;
	}

	/* Decide new or existing before RocksDB sees the path: RocksDB with
	 * create_if_missing would happily create a database inside any
	 * directory, and the contract is that a directory that is not ours is
	 * refused without being modified. */
	if (stat(path, &sb) != 0) {
		if (errno != ENOENT) {
			oerr_set("%s: %s", path, strerror(errno));
			return OMEN_EIO;
		}
		if (!create) {
			oerr_set("%s: no such database (create_if_missing is off)", path);
			return OMEN_ENOTFOUND;
		}
		create_new = true;
	} else if (!S_ISDIR(sb.st_mode)) {
		oerr_set("%s: not a directory", path);
		return OMEN_EINVAL;
	} else {
		/* CURRENT names the live MANIFEST: RocksDB's mark of a database. */
		size_t plen = strlen(path) + sizeof("/CURRENT");
		char *cur = omem_alloc(0, plen);
		int has_current;

		if (!cur) {
			oerr_set("out of memory opening %s", path);
			return OMEN_ENOMEM;
		}
		snprintf(cur, plen, "%s/CURRENT", path);
		has_current = stat(cur, &sb) == 0;
		omem_free(0, cur, plen);
		if (!has_current) {
			rc = dir_nonempty(path);
			if (rc < 0)
				return rc;
			if (rc) {
				oerr_set("%s: a non-empty directory without a database (no CURRENT "
					 "file); refusing to create one in it", path);
				return OMEN_ECORRUPT;
			}
			if (!create) {
				oerr_set("%s: empty directory, no database (create_if_missing is off)",
					 path);
				return OMEN_ENOTFOUND;
			}
			create_new = true;
		}
	}

	if (create_new) {
		if (nshards == 0) {
			oerr_set("%s: a new database needs at least one shard", path);
			return OMEN_EINVAL;
		}
	} else {
		rc = existing_shards(path, &have);
		if (rc != OMEN_OK)
			return rc;
		if (nshards != 0 && nshards != have) {
			oerr_set("%s: the database has %u shards, %u were asked for", path, have,
				 nshards);
			return OMEN_EINVAL;
		}
		nshards = have;
	}

	/* Families in this order: default, meta, shard-0 .. shard-(n-1). */
	size_t nfam = (size_t)nshards + 2;
	size_t names_size = nfam * OSTORE_NAME_MAX;
	size_t ptrs_size = nfam * sizeof(void *);
	ostore *st = omem_alloc(0, sizeof(*st));
	char *namebuf = omem_alloc(0, names_size);
	const char **names = omem_alloc(0, ptrs_size);
	const rocksdb_options_t **fopts = omem_alloc(0, ptrs_size);
	rocksdb_column_family_handle_t **handles = omem_alloc(0, ptrs_size);
	rocksdb_options_t *opts = NULL, *sopts = NULL;
	char *err = NULL;

	rc = OMEN_OK;
	if (!st || !namebuf || !names || !fopts || !handles) {
		oerr_set("out of memory opening %s", path);
		rc = OMEN_ENOMEM;
		goto out;
	}
	memset(st, 0, sizeof(*st));
	st->nshards = nshards;
	st->cf = omem_alloc(0, nshards * sizeof(*st->cf));
	if (!st->cf) {
		oerr_set("out of memory opening %s", path);
		rc = OMEN_ENOMEM;
		goto out;
	}
	opts = make_options(cache_bytes, create_new);
	for (size_t i = 0; i < nfam; i++) {
		char *nm = namebuf + i * OSTORE_NAME_MAX;

		if (i == 0)
			snprintf(nm, OSTORE_NAME_MAX, "default");
		else if (i == 1)
			snprintf(nm, OSTORE_NAME_MAX, OSTORE_META_CF);
		else
			snprintf(nm, OSTORE_NAME_MAX, OSTORE_SHARD_PREFIX "%zu", i - 2);
		names[i] = nm;
		fopts[i] = opts;
	}
	/* Shard families get the write-optimised memtable (see
	 * shard_family_options); "default" and "meta" keep the skiplist. */
	sopts = shard_family_options(opts);
	for (size_t i = 2; i < nfam; i++)
		fopts[i] = sopts;
	st->db = rocksdb_open_column_families(opts, path, (int)nfam, names, fopts, handles, &err);
	if (err) {
		rc = store_err(err, "opening the database");
		st->db = NULL;
		goto out;
	}
	st->dflt = handles[0];
	st->meta = handles[1];
	for (unsigned i = 0; i < nshards; i++)
		st->cf[i] = handles[i + 2];
	st->wo_async = rocksdb_writeoptions_create();
	st->wo_sync = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(st->wo_sync, 1);
	st->ro = rocksdb_readoptions_create();

out:
	if (opts)
		rocksdb_options_destroy(opts);
	if (sopts)
		rocksdb_options_destroy(sopts);
	if (handles)
		omem_free(0, handles, ptrs_size);
	if (fopts)
		omem_free(0, fopts, ptrs_size);
	if (names)
		omem_free(0, names, ptrs_size);
	if (namebuf)
		omem_free(0, namebuf, names_size);
	if (rc != OMEN_OK) {
		if (st)
			store_free(st);
		return rc;
	}
	*out = st;
	return OMEN_OK;
}

void ostore_close(ostore *st)
{
	if (!st)
		return;
	/* Handles before the DB, as RocksDB requires. */
	for (unsigned i = 0; i < st->nshards; i++)
		rocksdb_column_family_handle_destroy(st->cf[i]);
	rocksdb_column_family_handle_destroy(st->meta);
	rocksdb_column_family_handle_destroy(st->dflt);
	rocksdb_close(st->db);
	store_free(st);
}

unsigned ostore_nshards(const ostore *st)
{
	return st->nshards;
}

/* ------------------------------------------------------------- batches */

ostore_batch *ostore_batch_new(ostore *st)
{
	ostore_batch *b;

	if (!st)
		return NULL;
	b = omem_alloc(0, sizeof(*b));
	if (!b)
		return NULL;
	b->st = st;
	b->wb = rocksdb_writebatch_create();
	return b;
}

void ostore_batch_free(ostore_batch *b)
{
	if (!b)
		return;
	rocksdb_writebatch_destroy(b->wb);
	omem_free(0, b, sizeof(*b));
}

void ostore_batch_clear(ostore_batch *b)
{
	rocksdb_writebatch_clear(b->wb);
}

size_t ostore_batch_count(const ostore_batch *b)
{
	return (size_t)rocksdb_writebatch_count(b->wb);
}

static int bad_shard(const ostore *st, unsigned shard)
{
	if (shard < st->nshards)
		return 0;
	oerr_set("shard %u out of range (the store has %u)", shard, st->nshards);
	return 1;
}

int ostore_batch_put(ostore_batch *b, unsigned shard, uint64_t key, const void *val, size_t len)
{
	char k[8];

	if (!b || (!val && len) || bad_shard(b->st, shard))
		return OMEN_EINVAL;
	key_encode(key, k);
	rocksdb_writebatch_put_cf(b->wb, b->st->cf[shard], k, 8, val ? val : "", len);
	return OMEN_OK;
}

int ostore_batch_delete(ostore_batch *b, unsigned shard, uint64_t key)
{
	char k[8];

	if (!b || bad_shard(b->st, shard))
		return OMEN_EINVAL;
	key_encode(key, k);
	rocksdb_writebatch_delete_cf(b->wb, b->st->cf[shard], k, 8);
	return OMEN_OK;
}

int ostore_batch_delete_range(ostore_batch *b, unsigned shard, uint64_t lo, uint64_t hi)
{
	/* RocksDB's range is [begin, end).  Every stored key is 8 bytes, so
	 * BE(hi) followed by one 0x00 byte is the smallest key above BE(hi):
	 * the end bound that makes the range [lo, hi] even for hi = UINT64_MAX,
	 * whose successor has no 8-byte encoding. */
	char from[8], to[9];

	if (!b || bad_shard(b->st, shard))
		return OMEN_EINVAL;
	if (lo > hi) {
		oerr_set("delete range: lo %" PRIu64 " > hi %" PRIu64, lo, hi);
		return OMEN_EINVAL;
	}
	key_encode(lo, from);
	key_encode(hi, to);
	to[8] = 0;
	rocksdb_writebatch_delete_range_cf(b->wb, b->st->cf[shard], from, 8, to, 9);
	return OMEN_OK;
}

int ostore_batch_meta_put(ostore_batch *b, const char *name, const void *val, size_t len)
{
	if (!b || !name || (!val && len))
		return OMEN_EINVAL;
	rocksdb_writebatch_put_cf(b->wb, b->st->meta, name, strlen(name), val ? val : "", len);
	return OMEN_OK;
}

int ostore_write(ostore *st, const ostore_batch *b, bool sync)
{
	char *err = NULL;

	if (!st || !b || b->st != st)
		return OMEN_EINVAL;
	rocksdb_write(st->db, sync ? st->wo_sync : st->wo_async, b->wb, &err);
	return err ? store_err(err, "write") : OMEN_OK;
}

/* --------------------------------------------------------------- reads */

/* Shared by ostore_get and ostore_meta_get: one pinned read (no copy
 * inside RocksDB), then one copy into the caller's buffer. */
static int get_cf(ostore *st, rocksdb_column_family_handle_t *cf, const char *k, size_t klen,
		  void *buf, size_t cap, size_t *len)
{
	char *err = NULL;
	rocksdb_pinnableslice_t *ps;
	const char *v;
	size_t vlen = 0;

	ps = rocksdb_get_pinned_cf(st->db, st->ro, cf, k, klen, &err);
	if (err) {
		if (ps)
			rocksdb_pinnableslice_destroy(ps);
		return store_err(err, "get");
	}
	if (!ps)
		return OMEN_ENOTFOUND;
	v = rocksdb_pinnableslice_value(ps, &vlen);
	*len = vlen;
	if (vlen > cap) {
		rocksdb_pinnableslice_destroy(ps);
		return OMEN_ERANGE;
	}
	if (vlen)
		memcpy(buf, v, vlen);
	rocksdb_pinnableslice_destroy(ps);
	return OMEN_OK;
}

int ostore_get(ostore *st, unsigned shard, uint64_t key, void *buf, size_t cap, size_t *len)
{
	char k[8];

	if (!st || !len || (!buf && cap) || bad_shard(st, shard))
		return OMEN_EINVAL;
	key_encode(key, k);
	return get_cf(st, st->cf[shard], k, 8, buf, cap, len);
}

int ostore_meta_put(ostore *st, const char *name, const void *val, size_t len, bool sync)
{
	char *err = NULL;

	if (!st || !name || (!val && len))
		return OMEN_EINVAL;
	rocksdb_put_cf(st->db, sync ? st->wo_sync : st->wo_async, st->meta, name, strlen(name),
		       val ? val : "", len, &err);
	return err ? store_err(err, "meta put") : OMEN_OK;
}

int ostore_meta_get(ostore *st, const char *name, void *buf, size_t cap, size_t *len)
{
	if (!st || !name || !len || (!buf && cap))
		return OMEN_EINVAL;
	return get_cf(st, st->meta, name, strlen(name), buf, cap, len);
}

/* ----------------------------------------------------------- iterators */

int ostore_iter_new(ostore *st, unsigned shard, ostore_iter **out)
{
	ostore_iter *it;

	if (!out)
		return OMEN_EINVAL;
	*out = NULL;
	if (!st || bad_shard(st, shard))
		return OMEN_EINVAL;
	it = omem_alloc(0, sizeof(*it));
	if (!it) {
		oerr_set("out of memory creating an iterator");
		return OMEN_ENOMEM;
	}
	it->ro = rocksdb_readoptions_create();
	/* A scan reads each block once: caching them would only evict the
	 * blocks that point reads of non-resident values need. */
	rocksdb_readoptions_set_fill_cache(it->ro, 0);
	rocksdb_readoptions_set_total_order_seek(it->ro, 1);
	/* The iterator pins the DB state as of now (an implicit snapshot). */
	it->it = rocksdb_create_iterator_cf(st->db, it->ro, st->cf[shard]);
	it->bad_key = 0;
	*out = it;
	return OMEN_OK;
}

void ostore_iter_seek(ostore_iter *it, uint64_t key)
{
	char k[8];

	key_encode(key, k);
	it->bad_key = 0;
	rocksdb_iter_seek(it->it, k, 8);
}

void ostore_iter_seek_first(ostore_iter *it)
{
	it->bad_key = 0;
	rocksdb_iter_seek_to_first(it->it);
}

bool ostore_iter_valid(ostore_iter *it)
{
	size_t klen;

	if (it->bad_key || !rocksdb_iter_valid(it->it))
		return false;
	(void)rocksdb_iter_key(it->it, &klen);
	if (klen != 8) {
		it->bad_key = 1;
		return false;
	}
	return true;
}

void ostore_iter_next(ostore_iter *it)
{
	rocksdb_iter_next(it->it);
}

uint64_t ostore_iter_key(const ostore_iter *it)
{
	size_t klen;
	const char *k = rocksdb_iter_key(it->it, &klen);

	return key_decode(k);
}

const void *ostore_iter_value(const ostore_iter *it, size_t *len)
{
	return rocksdb_iter_value(it->it, len);
}

int ostore_iter_status(ostore_iter *it)
{
	char *err = NULL;

	if (it->bad_key) {
		oerr_set("iterator: a stored key is not 8 bytes long");
		return OMEN_ECORRUPT;
	}
	rocksdb_iter_get_error(it->it, &err);
	return err ? store_err(err, "iterator") : OMEN_OK;
}

void ostore_iter_free(ostore_iter *it)
{
	if (!it)
		return;
	rocksdb_iter_destroy(it->it);
	rocksdb_readoptions_destroy(it->ro);
	omem_free(0, it, sizeof(*it));
}

/* ---------------------------------------------------------- operations */

/* Flush families [from, to] (shard numbers; nshards names meta). */
static int flush_range(ostore *st, unsigned from, unsigned to)
{
	char *err = NULL;
	rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
	if (!fo)
		return OMEN_ENOMEM;
	rocksdb_flushoptions_set_wait(fo, 1);
	for (unsigned i = from; i <= to && !err; i++)
		rocksdb_flush_cf(st->db, fo, i < st->nshards ? st->cf[i] : st->meta, &err);
	rocksdb_flushoptions_destroy(fo);
	return err ? store_err(err, "flush") : OMEN_OK;
}

int ostore_flush(ostore *st)
{
	return flush_range(st, 0, st->nshards);
}

int ostore_flush_shard(ostore *st, unsigned shard)
{
	if (bad_shard(st, shard))
		return OMEN_EINVAL;
	return flush_range(st, shard, shard);
}

int ostore_checkpoint(ostore *st, const char *dir)
{
	struct stat sb;
	char *err = NULL;
	rocksdb_checkpoint_t *cp;

	if (!st || !dir || !*dir)
		return OMEN_EINVAL;
	/* RocksDB refuses an existing directory too, but as a generic
	 * "Invalid argument"; say it plainly and with the right code. */
	if (lstat(dir, &sb) == 0) {
		oerr_set("checkpoint: %s already exists", dir);
		return OMEN_EINVAL;
	}
	if (errno != ENOENT) {
		oerr_set("checkpoint: %s: %s", dir, strerror(errno));
		return OMEN_EIO;
	}
	cp = rocksdb_checkpoint_object_create(st->db, &err);
	if (err) {
		if (cp)
			rocksdb_checkpoint_object_destroy(cp);
		return store_err(err, "checkpoint");
	}
	rocksdb_checkpoint_create(cp, dir, OSTORE_CHECKPOINT_FLUSH_WAL, &err);
	rocksdb_checkpoint_object_destroy(cp);
	return err ? store_err(err, "checkpoint") : OMEN_OK;
}
