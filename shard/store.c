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
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
/* RocksDB's default, 4 KiB.  Under a memory budget every read of a value
 * that is not resident is a point read, and its cost is reading and
 * decompressing one block: with 16 KiB blocks, snappy decompression was
 * most of the CPU time of a zipf read run under a 10% budget (perf), and
 * 4 KiB blocks read about 1.5x faster.  Bigger blocks would index fewer
 * entries and compress a little better. */
#define OSTORE_BLOCK_SIZE ((size_t)4 << 10)
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
/* Our file beside RocksDB's: see "The session file" below. */
#define OSTORE_SESSION_FILE "OMENDB-SESSION"
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
	bool read_only;                        /* the validation view of open */
	char *path;                            /* the directory (session file) */
	size_t path_size;
	dev_t dev;                             /* the directory's claim       */
	ino_t ino;                             /*   (claim_dir), read-write   */
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
 * Opening a database classifies a little differently (open_err below).
 */
static bool lock_error(const char *err)
{
	return strncmp(err, "IO error:", 9) == 0 &&
	       (strstr(err, "While lock file") || strstr(err, "lock hold by current process"));
}

static int store_err(char *err, const char *what)
{
	int code = OMEN_EIO;

	if (strncmp(err, "Corruption:", 11) == 0)
		code = OMEN_ECORRUPT;
	else if (lock_error(err))
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

/* ------------------------------------------------------------- options */

/* Options shared by every family and the DB (the same settings suit all
 * shards; the meta family is tiny and unaffected).  NULL on allocation
 * failure is not reported by RocksDB (it aborts), so this cannot fail.
 * view: for the read-only validation view, which answers no point reads:
 * no bloom filter policy, so that opening the table files does not load
 * their filter blocks (at 10M keys: 4.4 ms for the view instead of 11.6,
 * the read-write open taking 14.7; see "Opening, and refusing damaged
 * databases"). */
static rocksdb_options_t *make_options(size_t cache_bytes, bool create_new, bool view)
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
	/* Damage detection at open: see "Opening, and refusing damaged
	 * databases" below for what each of these catches and why. */
	rocksdb_options_set_paranoid_checks(o, 1);
	rocksdb_options_set_skip_checking_sst_file_sizes_on_db_open(o, 0);
	rocksdb_options_set_max_open_files(o, -1);
	rocksdb_options_set_wal_recovery_mode(o, rocksdb_tolerate_corrupted_tail_records_recovery);
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
	if (!view)
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
static rocksdb_options_t *shard_family_options(const rocksdb_options_t *db_opts, bool bloom)
{
	rocksdb_options_t *o = rocksdb_options_create_copy((rocksdb_options_t *)db_opts);
	rocksdb_options_set_memtable_vector_rep(o);
	if (bloom) {
		rocksdb_options_set_memtable_prefix_bloom_size_ratio(o, OSTORE_MEMTABLE_BLOOM);
		rocksdb_options_set_memtable_whole_key_filtering(o, 1);
	}
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

/* ------------------------------------------------ opening, and damage */

/*
 * Opening, and refusing damaged databases
 *
 * The contract (API.md): a damaged database is refused with OMEN_ECORRUPT,
 * or OMEN_EIO when it cannot be read, and a message that names what is
 * wrong; it is never opened in part nor misread; and a refused directory
 * is not modified.  RocksDB's read-write open is the difficulty for the
 * last point: before it fails it rotates the LOG, and may delete table
 * files no MANIFEST names or write table files from the WAL it replayed;
 * once it succeeds it has written a new MANIFEST, WAL and OPTIONS file and
 * deleted the old ones, so a database refused after it (for a bad
 * metadata record) would be modified anyway.  So an existing database is
 * checked first, with nothing opened for writing, in this order:
 *
 *  1. the directory (dir_state): exists, is a directory, has a CURRENT
 *     file (a directory with a database's files but no CURRENT is named
 *     as such).
 *  2. the claim (claim_dir) and the LOCK (lock_busy): a database open in
 *     this process or another is OMEN_EBUSY before anything reads it.
 *     Validating a live database could fail for no fault of its own (a
 *     table file its compaction deletes between our reading the MANIFEST
 *     and opening the file) and would call it damaged.
 *     Then RocksDB's family list, read from the MANIFEST that CURRENT names
 *     without opening the database (existing_shards): a garbage or missing
 *     CURRENT or MANIFEST, a family that is not ours, a missing shard
 *     family.
 *  3. a read-only open of every family (validate).  RocksDB 7.8's
 *     read-only open writes nothing: no LOG, no LOCK, no MANIFEST (checked:
 *     the directory's listing, sizes and times are unchanged).  It runs
 *     with the options of the real open, so it finds what that would:
 *       - max_open_files -1: every table file the MANIFEST names is opened,
 *         its footer, index and properties blocks read and their checksums
 *         verified (a missing or truncated file fails here);
 *       - paranoid_checks, and skip_checking_sst_file_sizes_on_db_open off
 *         (both RocksDB's defaults, set so that nobody turns them off by
 *         accident): errors found while recovering fail the open instead
 *         of being logged, and every table file's size must be the one
 *         the MANIFEST recorded;
 *       - the WAL is replayed, every record's checksum verified, in the
 *         recovery mode below.
 *     Two differences, for speed: the view has no bloom filter policy, so
 *     it does not load the table files' filter blocks (the largest part of
 *     its cost), and no memtable bloom filter.  So damage inside a filter
 *     block passes the view and fails the read-write open, which loads
 *     the filters: refused all the same, but after RocksDB has rotated its
 *     LOG (LOG and LOG.old.* change, nothing else).
 *  4. the session file (session_check, below): a WAL that a crashed
 *     session needs is gone; the database recovers to fewer writes than
 *     it was closed with; a shard family is gone that was there.
 *  5. the caller's check of the metadata records (ostore_check_fn) on the
 *     read-only view: the format version, the layout.
 * Only then the read-write open, which repeats the work of 3 (reading the
 * table files again, now from the page cache) and writes.
 *
 * What it costs, measured on the 2-CPU test VM (shared, loaded; the page
 * cache warm; best of 12): omen_open to the first get answered, on a
 * 2-shard database after a clean close, went from 12.9 to 16.0 ms at 1M
 * keys and from 22.5 to 27.9 ms at 10M keys (10 table files, 194 MB; the
 * view itself 4.4 ms, the read-write open 14.7).  Loading the filter
 * blocks would have made the view 11.6 ms at 10M keys (hence the view
 * has none).  After a crash the WAL is replayed twice: with 1M keys in
 * the WAL (28 MB) omen_open took 1.17-1.20 s instead of 0.97-1.19 s.
 * Cheap after a clean close, small next to crash recovery: kept.
 *
 * The WAL recovery mode.  RocksDB's default, kPointInTimeRecovery, stops
 * replaying at the first bad record and opens "successfully" without
 * everything after it: a 4-byte overwrite in the middle of a WAL opened
 * with every later record silently gone (measured).  kSkipAnyCorrupted-
 * Records drops bad records silently too.  kAbsoluteConsistency refuses
 * any defect, including the incomplete last record that kill -9 can leave
 * (a record's write() cut short): crash recovery would fail.  We use
 * kTolerateCorruptedTailRecords: an incomplete record at the end of a WAL
 * is what a crash leaves, and it is dropped (it was never acknowledged: a
 * write is acknowledged once its whole record is in the file); a record
 * whose checksum fails, or that is malformed, is refused wherever it is
 * ("Corruption: checksum mismatch"), the last one included: a kill leaves
 * a file that stops short, never one with wrong bytes.  (A power loss
 * under OMEN_DURABLE_WAL, which promises nothing then, could leave
 * garbage rather than a short tail on some file systems: the database is
 * then refused, with the WAL named, rather than guessed at.)  It requires
 * that WAL files are not recycled (recycle_log_file_num 0, the default),
 * which RocksDB enforces.
 *
 * What cannot be detected:
 *   - a WAL cut anywhere, at a record boundary or inside a record, looks
 *     exactly like a process killed at that point, before or while writing
 *     the records that are gone: RocksDB replays what is there, and nothing
 *     on disk records how long the WAL was.  The session file catches the
 *     WAL of a crashed session deleted outright, and a cut that loses
 *     writes the database had when it was last opened or closed cleanly
 *     (the sequence number goes back), not the loss of the last writes of
 *     a session that crashed.
 *   - damage inside a table file's data blocks: a data block is read, and
 *     its checksum verified, only when something reads it (every read
 *     verifies checksums).  Verifying all of them at open would read the
 *     whole database (about a second per GB) where omen_open must answer
 *     in milliseconds.  Such a database opens; the engine's rebuild scan,
 *     which reads every block, or a read finds the damage, and a read of
 *     a damaged block returns OMEN_ECORRUPT, never the damaged bytes.
 *   - a MANIFEST cut back by edits made during a session that crashed: the
 *     session file vouches only for the state at the last open or clean
 *     close, and RocksDB reads the rest as a database from before those
 *     edits (a crash during a flush leaves the same).
 */

/* path/name into buf; false (and a message) when it does not fit. */
static bool join(char *buf, size_t cap, const char *path, const char *name)
{
	if ((size_t)snprintf(buf, cap, "%s/%s", path, name) < cap)
		return true;
	oerr_set("%s: path too long", path);
	return false;
}

/* The number of a WAL file's name ("000014.log"), or -1. */
static long long wal_number(const char *name)
{
	const char *p = name;
	long long v = 0;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		if (v > (LLONG_MAX - 9) / 10)
			return -1;
		v = v * 10 + (*p - '0');
	}
	return strcmp(p, ".log") == 0 ? v : -1;
}

/*
 * The WALs in path: the highest number in *max (-1 when there is none)
 * and, when names is not NULL, their names ("000004.log, 000009.log"),
 * cut short to fit cap.  Returns 0, or -1 when the directory cannot be
 * listed (*max is then -1).
 */
static int scan_wals(const char *path, long long *max, char *names, size_t cap)
{
	DIR *d = opendir(path);
	struct dirent *e;
	size_t used = 0;

	*max = -1;
	if (names && cap)
		names[0] = '\0';
	if (!d)
		return -1;
	while ((e = readdir(d)) != NULL) {
		long long v = wal_number(e->d_name);

		if (v < 0)
			continue;
		if (v > *max)
			*max = v;
		if (names && used < cap) {
			int w = snprintf(names + used, cap - used, "%s%s", used ? ", " : "",
					 e->d_name);
			used = w < 0 ? cap : used + (size_t)w;
		}
	}
	closedir(d);
	return 0;
}

/*
 * Remove the empty write-ahead logs older than the newest one (after the
 * read-write open).  RocksDB 7.8 creates a WAL at every open and, when the
 * session writes nothing, never deletes it (its min log number only
 * advances at a flush: fixed upstream in 8.3, facebook/rocksdb#11409), so
 * a database opened N times for reads held N empty WALs, each read again
 * by every later open.  An empty file holds no record: removing it loses
 * nothing; the newest is RocksDB's current one and stays (the session
 * file's check names it).  A file that cannot be removed stays, harmless.
 */
static void prune_empty_wals(const char *path)
{
	long long top;
	char f[4096];
	if (scan_wals(path, &top, NULL, 0) != 0 || top < 0)
		return;
	DIR *d = opendir(path);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		long long v = wal_number(e->d_name);
		struct stat sb;
		if (v < 0 || v >= top)
			continue;
		snprintf(f, sizeof(f), "%s/%s", path, e->d_name);
		if (stat(f, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size == 0)
			unlink(f);
	}
	closedir(d);
}

/*
 * Databases this process is opening or has open, by the directory's
 * device and inode (any path that names it).  A directory is claimed
 * before anything of it is read for an open, and released when the open
 * fails or the store closes, so a second open in this process is
 * OMEN_EBUSY before it touches anything.  The claim is also what makes
 * lock_busy safe: see there.  The list is short (one entry per open
 * database); claims_lock guards it.
 */
struct claim {
	dev_t dev;
	ino_t ino;
	struct claim *next;
};
static pthread_mutex_t claims_lock = PTHREAD_MUTEX_INITIALIZER;
static struct claim *claims;

static int claim_dir(const char *path, dev_t dev, ino_t ino)
{
	struct claim *c;
	int rc = OMEN_OK;

	pthread_mutex_lock(&claims_lock);
	for (c = claims; c; c = c->next)
		if (c->dev == dev && c->ino == ino)
			break;
	if (c) {
		oerr_set("%s: the database is already open (in this process)", path);
		rc = OMEN_EBUSY;
	} else if (!(c = omem_alloc(0, sizeof(*c)))) {
		oerr_set("out of memory opening %s", path);
		rc = OMEN_ENOMEM;
	} else {
		c->dev = dev;
		c->ino = ino;
		c->next = claims;
		claims = c;
	}
	pthread_mutex_unlock(&claims_lock);
	return rc;
}

static void release_dir(dev_t dev, ino_t ino)
{
	struct claim **p, *c;

	pthread_mutex_lock(&claims_lock);
	for (p = &claims; (c = *p) != NULL; p = &c->next)
		if (c->dev == dev && c->ino == ino) {
			*p = c->next;
			omem_free(0, c, sizeof(*c));
			break;
		}
	pthread_mutex_unlock(&claims_lock);
}

/*
 * Is RocksDB's LOCK file of path held by another process?  Asked with
 * fcntl(F_GETLK), which reports the fcntl lock RocksDB takes (and its
 * holder's pid) without taking one.  Opening LOCK for that is safe only
 * because the caller has claimed the directory: closing any descriptor of
 * a file drops every fcntl lock this process holds on it, so this must
 * never run while this process has the database open, which the claim
 * rules out (short of a program that also opens the same directory with
 * RocksDB directly).  OMEN_EBUSY (with a message) or OMEN_OK, also when it
 * cannot tell (no LOCK file: nobody can hold it): RocksDB's read-write
 * open still refuses a held lock, only later.
 */
static int lock_busy(const char *path)
{
	char lock[PATH_MAX];
	struct flock fl;
	int fd, r;

	if (!join(lock, sizeof(lock), path, "LOCK"))
		return OMEN_OK;
	fd = open(lock, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return OMEN_OK;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	r = fcntl(fd, F_GETLK, &fl);
	close(fd);
	if (r != 0 || fl.l_type == F_UNLCK)
		return OMEN_OK;
	oerr_set("%s: the database is already open (by process %ld)", path, (long)fl.l_pid);
	return OMEN_EBUSY;
}

/*
 * The first table file in path that does not end with a block-based
 * table's magic number (little-endian 0x88e241b785f4cff7, or the legacy
 * 0xdb4775248b80fb57): cut short, or its footer overwritten.  Its name in
 * name and size in *size; false when every table file ends right.  Only
 * on the error path: RocksDB reports some damaged footers without naming
 * the file ("Corrupt or unsupported format_version: 1280 in file
 * <the MANIFEST>").
 */
static bool bad_table_footer(const char *path, char *name, size_t cap, long long *size)
{
	static const unsigned char magic[2][8] = {
		{ 0xf7, 0xcf, 0xf4, 0x85, 0xb7, 0x41, 0xe2, 0x88 },
		{ 0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb },
	};
	DIR *d = opendir(path);
	struct dirent *e;
	bool found = false;

	if (!d)
		return false;
	while (!found && (e = readdir(d)) != NULL) {
		char file[PATH_MAX];
		unsigned char tail[8];
		size_t len = strlen(e->d_name);
		struct stat sb;
		int fd;

		if (len <= 4 || strcmp(e->d_name + len - 4, ".sst") != 0 ||
		    !join(file, sizeof(file), path, e->d_name) || (fd = open(file, O_RDONLY)) < 0)
			continue;
		if (fstat(fd, &sb) == 0 &&
		    (sb.st_size < 8 || pread(fd, tail, 8, sb.st_size - 8) != 8 ||
		     (memcmp(tail, magic[0], 8) != 0 && memcmp(tail, magic[1], 8) != 0))) {
			snprintf(name, cap, "%s", e->d_name);
			*size = (long long)sb.st_size;
			found = true;
		}
		close(fd);
	}
	closedir(d);
	return found;
}

/*
 * What is wrong, in words, for a RocksDB error met while opening path, in
 * front of RocksDB's own text, which names files but not always plainly:
 * a missing table file shows as "000015.ldb: No such file" (RocksDB's
 * fallback name), and a damaged WAL as a bare "checksum mismatch".
 */
static void describe(const char *path, const char *err, int code, char *what, size_t cap)
{
	char file[PATH_MAX], wals[160];
	long long top;
	const char *p;

	if (code == OMEN_EBUSY) {
		snprintf(what, cap, "the database is already open (in this or another process)");
		return;
	}
	if (code == OMEN_EIO) {
		/* RocksDB names the operation: "While renaming a file to ...",
		 * "While open a file for lock: ...", "While appending ...". */
		bool w = strstr(err, "renam") || strstr(err, "for lock") || strstr(err, "append") ||
			 strstr(err, "creat") || strstr(err, "mkdir") || strstr(err, "writ");
		snprintf(what, cap, "cannot %s the database's files", w ? "write" : "read");
		return;
	}
	/* A table file: the first "<digits>.sst" or "<digits>.ldb". */
	for (p = err; (p = strpbrk(p, "0123456789")) != NULL;) {
		const char *q = p;
		unsigned long long num = 0;

		while (isdigit((unsigned char)*q))
			num = num * 10 + (unsigned long long)(*q++ - '0');
		if ((strncmp(q, ".sst", 4) == 0 || strncmp(q, ".ldb", 4) == 0) &&
		    (p == err || !isalnum((unsigned char)p[-1]))) {
			struct stat sb;
			char name[32];

			snprintf(name, sizeof(name), "%06llu.sst", num);
			if (!join(file, sizeof(file), path, name))
				break;
			if (stat(file, &sb) != 0)
				snprintf(what, cap, "table file %s is missing", name);
			else
				snprintf(what, cap, "table file %s (%lld bytes) is damaged", name,
					 (long long)sb.st_size);
			return;
		}
		p = q;
	}
	if (strstr(err, "CURRENT")) {
		snprintf(what, cap, "the CURRENT file is damaged");
	} else if (strstr(err, "MANIFEST-") && !strstr(err, "No such file") &&
		   bad_table_footer(path, wals, sizeof(wals), &top)) {
		/* Table files are opened while the MANIFEST is read, and
		 * their errors carry its name. */
		snprintf(what, cap, "table file %s (%lld bytes) is damaged: it does not end "
			 "with a table footer (cut short or overwritten)", wals, top);
	} else if (strstr(err, "MANIFEST-")) {
		if (strstr(err, "No such file"))
			snprintf(what, cap, "the MANIFEST file that CURRENT names is missing");
		else
			snprintf(what, cap, "the MANIFEST file is damaged");
	} else if (scan_wals(path, &top, wals, sizeof(wals)) == 0 && top >= 0) {
		/* Errors of the log reader name no file; the MANIFEST's name
		 * their file, so this one came from replaying a WAL. */
		snprintf(what, cap, "a write-ahead log holds a damaged record (%s)", wals);
	} else {
		snprintf(what, cap, "damaged database");
	}
}

/*
 * An error of RocksDB while opening path (its family list, the read-only
 * view, the read-write open): the code, and a message "<path>: <what is
 * wrong>: <RocksDB's text>".  The classes:
 *   "Corruption: ..."                         -> OMEN_ECORRUPT
 *   "IO error: ... No such file or directory" -> OMEN_ECORRUPT: a file that
 *       CURRENT or the MANIFEST names is gone (the directory is there:
 *       checked before)
 *   the LOCK held                             -> OMEN_EBUSY
 *   anything else (permission denied, EIO from the disk, out of space)
 *                                             -> OMEN_EIO
 */
static int open_err(const char *path, char *err)
{
	int code = OMEN_EIO;
	char what[256];
	char *glued;

	if (strncmp(err, "Corruption:", 11) == 0 ||
	    (strncmp(err, "IO error:", 9) == 0 && strstr(err, "No such file or directory")))
		code = OMEN_ECORRUPT;
	else if (lock_error(err))
		code = OMEN_EBUSY;
	describe(path, err, code, what, sizeof(what));
	/* RocksDB 7.8 glues the file name to "...to be an sstable". */
	glued = strstr(err, "to be an sstable");
	if (glued && glued[16] && glued[16] != ' ' && glued[16] != ':')
		oerr_set("%s: %s: %.*s: %s", path, what, (int)(glued + 16 - err), err, glued + 16);
	else
		oerr_set("%s: %s: %s", path, what, err);
	rocksdb_free(err);
	return code;
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
	unsigned k = 0, seen_meta = 0, top = 0;
	unsigned char *seen = NULL;
	size_t seen_size = OSTORE_MAX_SHARDS;

	rocksdb_options_destroy(o);
	if (err) {
		if (names)
			rocksdb_list_column_families_destroy(names, n);
		return open_err(path, err);
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
			oerr_set("%s: unexpected column family \"%s\" (an OmenDB database has "
				 "\"default\", \"" OSTORE_META_CF "\" and \"" OSTORE_SHARD_PREFIX
				 "0\"..\"" OSTORE_SHARD_PREFIX "<n-1>\" only): not an OmenDB "
				 "database, or a damaged one", path, names[i]);
			rc = OMEN_ECORRUPT;
			break;
		}
		seen[s] = 1;
		if ((unsigned)s > top)
			top = (unsigned)s;
		k++;
	}
	if (rc == OMEN_OK) {
		/* k distinct shard numbers: contiguous iff all of 0..k-1 seen. */
		for (unsigned i = 0; i < k; i++)
			if (!seen[i]) {
				oerr_set("%s: column family " OSTORE_SHARD_PREFIX "%u is missing (the "
					 "database has shard families up to " OSTORE_SHARD_PREFIX "%u)",
					 path, i, top);
				rc = OMEN_ECORRUPT;
				break;
			}
	}
	if (rc == OMEN_OK && seen_meta == 0 && k == 0) {
		/* RocksDB reads a MANIFEST that is garbage from its first
		 * record on as a database of "default" alone. */
		oerr_set("%s: the MANIFEST file names no column family but \"default\": it is "
			 "damaged, or this is not an OmenDB database", path);
		rc = OMEN_ECORRUPT;
	} else if (rc == OMEN_OK && seen_meta != 1) {
		oerr_set("%s: column family \"%s\" is missing: not an OmenDB database, or a "
			 "damaged one", path, OSTORE_META_CF);
		rc = OMEN_ECORRUPT;
	} else if (rc == OMEN_OK && k == 0) {
		oerr_set("%s: no shard column family (\"" OSTORE_SHARD_PREFIX "0\" is missing): "
			 "not an OmenDB database, or a damaged one", path);
		rc = OMEN_ECORRUPT;
	}
	omem_free(0, seen, seen_size);
	rocksdb_list_column_families_destroy(names, n);
	if (rc == OMEN_OK)
		*nshards = k;
	return rc;
}

/*
 * Does the directory (which has no CURRENT file) hold anything, and does
 * it look like a database that lost its CURRENT?  0: empty; 1: something
 * else; 2: a database's files (a MANIFEST, OPTIONS, IDENTITY, table
 * files, WALs, our session file); negative: an OMEN code.
 */
static int dir_contents(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int found = 0;

	if (!d) {
		oerr_set("%s: cannot read the directory: %s", path, strerror(errno));
		return OMEN_EIO;
	}
	while ((e = readdir(d)) != NULL) {
		const char *n = e->d_name;
		size_t len = strlen(n);

		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
			continue;
		found = 1;
		if (strncmp(n, "MANIFEST-", 9) == 0 || strncmp(n, "OPTIONS-", 8) == 0 ||
		    strcmp(n, "IDENTITY") == 0 || strcmp(n, OSTORE_SESSION_FILE) == 0 ||
		    wal_number(n) >= 0 || (len > 4 && strcmp(n + len - 4, ".sst") == 0)) {
			found = 2;
			break;
		}
	}
	closedir(d);
	return found;
}

/*
 * Before RocksDB sees the path: a new database (*create_new), an existing
 * one (OMEN_OK, *create_new false) or an error.  RocksDB with
 * create_if_missing would happily create a database inside any
 * directory, and the contract is that a directory that is not ours is
 * refused without being modified.
 */
static int dir_state(const char *path, bool create, bool *create_new)
{
	char cur[PATH_MAX];
	struct stat sb;
	int rc;

	*create_new = false;
	if (stat(path, &sb) != 0) {
		if (errno != ENOENT) {
			oerr_set("%s: %s", path, strerror(errno));
			return OMEN_EIO;
		}
		if (!create) {
			oerr_set("%s: no such database (create_if_missing is off)", path);
			return OMEN_ENOTFOUND;
		}
		*create_new = true;
		return OMEN_OK;
	}
	if (!S_ISDIR(sb.st_mode)) {
		oerr_set("%s: not a directory", path);
		return OMEN_EINVAL;
	}
	/* CURRENT names the live MANIFEST: RocksDB's mark of a database. */
	if (!join(cur, sizeof(cur), path, "CURRENT"))
		return OMEN_EINVAL;
	if (stat(cur, &sb) == 0)
		return OMEN_OK;
	if (errno != ENOENT) {
		oerr_set("%s: cannot read the database: %s: %s", path, cur, strerror(errno));
		return OMEN_EIO;
	}
	rc = dir_contents(path);
	if (rc < 0)
		return rc;
	if (rc == 2) {
		oerr_set("%s: the CURRENT file is missing, but the directory holds a "
			 "database's files (MANIFEST, table files or WALs): a damaged database",
			 path);
		return OMEN_ECORRUPT;
	}
	if (rc) {
		oerr_set("%s: a non-empty directory without a database (no CURRENT "
			 "file); refusing to create one in it", path);
		return OMEN_ECORRUPT;
	}
	if (!create) {
		oerr_set("%s: empty directory, no database (create_if_missing is off)", path);
		return OMEN_ENOTFOUND;
	}
	*create_new = true;
	return OMEN_OK;
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
	if (st->path)
		omem_free(0, st->path, st->path_size);
	omem_free(0, st, sizeof(*st));
}

/*
 * Open nshards shard families of path with RocksDB: read-write (creating
 * the database when create_new) or, for the validation view, read-only.
 */
static int open_families(const char *path, unsigned nshards, size_t cache_bytes,
			 bool create_new, bool read_only, ostore **out)
{
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
	int rc = OMEN_OK;

	*out = NULL;
	if (!st || !namebuf || !names || !fopts || !handles) {
		oerr_set("out of memory opening %s", path);
		rc = OMEN_ENOMEM;
		goto out;
	}
	memset(st, 0, sizeof(*st));
	st->nshards = nshards;
	st->read_only = read_only;
	st->path_size = strlen(path) + 1;
	st->path = omem_alloc(0, st->path_size);
	st->cf = omem_alloc(0, nshards * sizeof(*st->cf));
	if (!st->cf || !st->path) {
		oerr_set("out of memory opening %s", path);
		rc = OMEN_ENOMEM;
		goto out;
	}
	memcpy(st->path, path, st->path_size);
	opts = make_options(cache_bytes, create_new, read_only);
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
	 * shard_family_options); "default" and "meta" keep the skiplist.  The
	 * read-only view skips the memtable bloom filter: nothing reads its
	 * shard memtables by key, and building the filter is a fifth of the
	 * cost of replaying a WAL into them (measured: 270 against 330 ms for
	 * 1M records). */
	sopts = shard_family_options(opts, !read_only);
	for (size_t i = 2; i < nfam; i++)
		fopts[i] = sopts;
	if (read_only)
		st->db = rocksdb_open_for_read_only_column_families(opts, path, (int)nfam, names,
								    fopts, handles, 0, &err);
	else
		st->db = rocksdb_open_column_families(opts, path, (int)nfam, names, fopts,
						      handles, &err);
	if (err) {
		rc = open_err(path, err);
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
	/* RocksDB's default, stated: a read never returns a block whose
	 * checksum fails (it returns "Corruption" instead). */
	rocksdb_readoptions_set_verify_checksums(st->ro, 1);

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

/* ------------------------------------------------------ session file */

/*
 * The session file, OSTORE_SESSION_FILE in the database directory, one
 * line (RocksDB ignores names it does not parse; checkpoints do not copy
 * it):
 *   "open <seq> <minlog> <wal> <nshards>"  written after each read-write
 *        open: RocksDB's sequence number and oldest WAL still needed
 *        (min-log-number-to-keep) after recovery, the number of the WAL
 *        this session writes to, the shard family count;
 *   "closed <seq> <minlog> <nshards>"      written by ostore_close when
 *        every memtable is empty (everything is in table files).
 * At the next open the read-only view must
 *   - recover to a sequence number >= <seq> and a min-log-number-to-keep
 *     >= <minlog>.  Both only grow; going back means the MANIFEST or a WAL
 *     was cut or replaced by an older one: writes the database had are
 *     gone (e.g. the MANIFEST's last flush edit cut off: the flushed
 *     table file is no longer named, and the WAL that held its records
 *     was deleted after the flush; RocksDB opens that "successfully");
 *   - have <nshards> shard families (fewer: the last one was dropped,
 *     which the family list alone cannot tell);
 *   - after "open" (the session never closed cleanly), hold a WAL numbered
 *     <wal> or later: RocksDB never deletes the WAL it is writing to, so
 *     after a crash it is there unless someone removed it, and without it
 *     the writes not yet in table files are gone.  RocksDB itself opens
 *     such a database without them: it does not record which WALs exist
 *     (track_and_verify_wals_in_manifest covers closed WALs only, and
 *     7.8's C API lacks it).
 * Written with a rename, not fsync'd: losing it (a power loss) only skips
 * the checks, and an older one asks less (every number in it only grows),
 * so it can never refuse a sound database.  A file that does not parse is
 * ignored for the same reason.  Only the holder of the LOCK writes it.
 */
struct session {
	int state;            /* 0: none (or unreadable), 1: open, 2: closed */
	uint64_t seq, minlog;
	long long wal;        /* state 1 */
	unsigned nshards;
};

static uint64_t min_log(rocksdb_t *db)
{
	uint64_t v = 0;

	return rocksdb_property_int(db, "rocksdb.min-log-number-to-keep", &v) == 0 ? v : 0;
}

static void session_read(const char *path, struct session *s)
{
	char file[PATH_MAX], line[160], word[8];
	FILE *f;

	memset(s, 0, sizeof(*s));
	if (!join(file, sizeof(file), path, OSTORE_SESSION_FILE) || !(f = fopen(file, "r")))
		return;
	if (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%7s %" SCNu64 " %" SCNu64 " %lld %u", word, &s->seq, &s->minlog,
			   &s->wal, &s->nshards) == 5 && strcmp(word, "open") == 0 && s->wal >= 0)
			s->state = 1;
		else if (sscanf(line, "%7s %" SCNu64 " %" SCNu64 " %u", word, &s->seq,
				&s->minlog, &s->nshards) == 4 && strcmp(word, "closed") == 0)
			s->state = 2;
	}
	fclose(f);
	if (s->nshards == 0 || s->nshards > OSTORE_MAX_SHARDS)
		s->state = 0;
}

/* Best effort (see above): a failure leaves the older file, or none. */
static void session_write(const ostore *st, const char *line)
{
	char file[PATH_MAX], tmp[PATH_MAX];
	FILE *f;
	bool ok;

	if (!join(file, sizeof(file), st->path, OSTORE_SESSION_FILE) ||
	    !join(tmp, sizeof(tmp), st->path, OSTORE_SESSION_FILE ".tmp"))
		return;
	f = fopen(tmp, "w");
	if (!f)
		return;
	ok = fputs(line, f) >= 0;
	ok = fclose(f) == 0 && ok;
	if (!ok || rename(tmp, file) != 0)
		unlink(tmp);
}

/* After a read-write open. */
static void session_begin(const ostore *st)
{
	char line[160];
	long long wal;

	if (scan_wals(st->path, &wal, NULL, 0) != 0 || wal < 0)
		return;
	snprintf(line, sizeof(line), "open %" PRIu64 " %" PRIu64 " %lld %u\n",
		 (uint64_t)rocksdb_get_latest_sequence_number(st->db), min_log(st->db), wal,
		 st->nshards);
	session_write(st, line);
}

/* Does any family hold records in a memtable (not yet in table files)?
 * True as well when RocksDB cannot say. */
static bool memtables_hold_records(const ostore *st)
{
	static const char *const props[] = { "rocksdb.num-entries-active-mem-table",
					     "rocksdb.num-entries-imm-mem-tables" };

	for (unsigned i = 0; i < st->nshards + 2; i++) {
		rocksdb_column_family_handle_t *cf =
			i == 0 ? st->dflt : i == 1 ? st->meta : st->cf[i - 2];

		for (size_t j = 0; j < sizeof(props) / sizeof(props[0]); j++) {
			uint64_t v = 1;

			if (rocksdb_property_int_cf(st->db, cf, props[j], &v) != 0 || v != 0)
				return true;
		}
	}
	return false;
}

/* Before a read-write store closes: "closed ..." when every record is in
 * a table file; else the "open" line stays, and the next open requires
 * the WAL. */
static void session_end(const ostore *st)
{
	char line[160];

	if (memtables_hold_records(st))
		return;
	snprintf(line, sizeof(line), "closed %" PRIu64 " %" PRIu64 " %u\n",
		 (uint64_t)rocksdb_get_latest_sequence_number(st->db), min_log(st->db),
		 st->nshards);
	session_write(st, line);
}

/* The checks of the session file on the read-only view (see above). */
static int session_check(const ostore *view)
{
	struct session s;
	uint64_t seq = rocksdb_get_latest_sequence_number(view->db);
	uint64_t minlog = min_log(view->db);
	const char *when;
	char wals[160];
	long long top;

	session_read(view->path, &s);
	if (s.state == 0)
		return OMEN_OK;
	when = s.state == 1 ? "opened" : "closed";
	if (view->nshards < s.nshards) {
		oerr_set("%s: column family " OSTORE_SHARD_PREFIX "%u is missing: the database "
			 "had %u shard families when it was last %s, %u remain",
			 view->path, view->nshards, s.nshards, when, view->nshards);
		return OMEN_ECORRUPT;
	}
	if (s.state == 1 && scan_wals(view->path, &top, wals, sizeof(wals)) == 0 &&
	    top < s.wal) {
		oerr_set("%s: write-ahead log %06lld.log is missing: the database was not "
			 "closed cleanly and needs it (or a later one) for the writes not yet "
			 "in table files (WALs present: %s)",
			 view->path, s.wal, wals[0] ? wals : "none");
		return OMEN_ECORRUPT;
	}
	if (seq < s.seq || minlog < s.minlog) {
		oerr_set("%s: the MANIFEST or a write-ahead log has gone back: the database "
			 "recovers to sequence number %" PRIu64 " (oldest WAL needed: %" PRIu64
			 ") but was at %" PRIu64 " (%" PRIu64 ") when last %s; writes are "
			 "missing (a file cut short or replaced by an older one)",
			 view->path, seq, minlog, s.seq, s.minlog, when);
		return OMEN_ECORRUPT;
	}
	return OMEN_OK;
}

/* ------------------------------------------------------------- open */

/*
 * Steps 2-5 of "Opening, and refusing damaged databases" for an existing
 * database, which the caller has claimed; *nshards: asked (0: any) in,
 * the database's count out.
 */
static int validate(const char *path, unsigned *nshards, size_t cache_bytes,
		    ostore_check_fn check, void *arg)
{
	ostore *view = NULL;
	unsigned have = 0;
	int rc = lock_busy(path);

	if (rc != OMEN_OK)
		return rc;
	rc = existing_shards(path, &have);
	if (rc == OMEN_OK && *nshards != 0 && *nshards != have) {
		oerr_set("%s: the database has %u shards, %u were asked for", path, have,
			 *nshards);
		rc = OMEN_EINVAL;
	}
	if (rc == OMEN_OK)
		rc = open_families(path, have, cache_bytes, false, true, &view);
	if (view) {
		rc = session_check(view);
		if (rc == OMEN_OK && check)
			rc = check(view, arg);
		ostore_close(view);
	}
	/* Opened by another process while we looked: say so rather than
	 * blame the files (its writer may have changed them under us). */
	if ((rc == OMEN_ECORRUPT || rc == OMEN_EIO) && lock_busy(path) == OMEN_EBUSY)
		return OMEN_EBUSY;
	*nshards = have;
	return rc;
}

int ostore_open(const char *path, unsigned nshards, size_t cache_bytes, bool create,
		ostore **out)
{
	return ostore_open_checked(path, nshards, cache_bytes, create, NULL, NULL, out);
}

int ostore_open_checked(const char *path, unsigned nshards, size_t cache_bytes, bool create,
			ostore_check_fn check, void *arg, ostore **out)
{
	bool create_new = false;
	struct stat sb;
	ostore *st = NULL;
	int rc;

	if (!out)
		return OMEN_EINVAL;
	*out = NULL;
	if (!path || !*path || nshards > OSTORE_MAX_SHARDS) {
		oerr_set("ostore_open: bad argument (path %s, %u shards, at most %u)",
			 path ? path : "NULL", nshards, OSTORE_MAX_SHARDS);
		return OMEN_EINVAL;
	}
	rc = dir_state(path, create, &create_new);
	if (rc != OMEN_OK)
		return rc;
	if (create_new && nshards == 0) {
		oerr_set("%s: a new database needs at least one shard", path);
		return OMEN_EINVAL;
	}
	/* A new database's directory is made here rather than by RocksDB,
	 * so that it can be claimed before RocksDB takes its lock. */
	if (create_new && mkdir(path, 0755) != 0 && errno != EEXIST) {
		oerr_set("%s: cannot create the directory: %s", path, strerror(errno));
		return OMEN_EIO;
	}
	if (stat(path, &sb) != 0) {
		oerr_set("%s: %s", path, strerror(errno));
		return OMEN_EIO;
	}
	rc = claim_dir(path, sb.st_dev, sb.st_ino);
	if (rc != OMEN_OK)
		return rc;
	if (!create_new)
		rc = validate(path, &nshards, cache_bytes, check, arg);
	if (rc == OMEN_OK)
		rc = open_families(path, nshards, cache_bytes, create_new, false, &st);
	if (rc != OMEN_OK) {
		release_dir(sb.st_dev, sb.st_ino);
		return rc;
	}
	st->dev = sb.st_dev;
	st->ino = sb.st_ino;
	session_begin(st);
	prune_empty_wals(path);
	*out = st;
	return OMEN_OK;
}

void ostore_close(ostore *st)
{
	if (!st)
		return;
	if (!st->read_only)
		session_end(st);
	/* Handles before the DB, as RocksDB requires. */
	for (unsigned i = 0; i < st->nshards; i++)
		rocksdb_column_family_handle_destroy(st->cf[i]);
	rocksdb_column_family_handle_destroy(st->meta);
	rocksdb_column_family_handle_destroy(st->dflt);
	rocksdb_close(st->db);
	/* After RocksDB has released its lock: see claim_dir. */
	if (!st->read_only)
		release_dir(st->dev, st->ino);
	store_free(st);
}

bool ostore_never_written(const ostore *st)
{
	DIR *d;
	struct dirent *e;
	bool none = true;

	if (rocksdb_get_latest_sequence_number(st->db) != 0)
		return false;
	/* Sequence 0 is also what a MANIFEST cut back to the database's
	 * creation shows; the table files written since are still here. */
	d = opendir(st->path);
	if (!d)
		return false;
	while (none && (e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);

		none = !(len > 4 && strcmp(e->d_name + len - 4, ".sst") == 0);
	}
	closedir(d);
	return none;
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

int ostore_flush_meta(ostore *st)
{
	return flush_range(st, st->nshards, st->nshards);
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
