/*
 * omendb.h — the public API of OmenDB, an embedded key-value storage engine.
 *
 * This header is the whole API: anything not declared here is internal and
 * may change without notice.  Every function declared here is safe to call
 * from any thread at any time unless its comment says otherwise.
 *
 * Error convention: functions that can fail return OMEN_OK (0) or one of the
 * negative OMEN_E* codes below.  omen_strerror() names a code;
 * omen_errmsg() returns the calling thread's last detailed message (for
 * example the storage layer's own text behind an OMEN_EIO).
 *
 * The engine in one paragraph: keys are range-partitioned across shards
 * (one per CPU by default).  Each shard has one worker thread, which alone
 * writes the shard's in-memory learned index and its RocksDB column
 * family.  Every write, from any thread, is queued to its shard's worker;
 * the worker commits a whole batch of writes in one RocksDB write (one
 * fsync under OMEN_DURABLE_SYNC), applies it to the index, then
 * acknowledges it.  Reads take no lock: they are answered from memory.
 */
#ifndef OMENDB_H
#define OMENDB_H

/*
 * Version of this header.  The build system reads these three lines to set
 * the package version, so they are the single place to change it (then
 * rerun autoreconf: tests/test_errors fails until configure agrees).
 * omen_version() returns the version of the library actually loaded, which
 * differs from these when a program runs against another build.
 */
#define OMEN_VERSION_MAJOR 0
#define OMEN_VERSION_MINOR 1
#define OMEN_VERSION_PATCH 0

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Error codes.  Every failure is negative; OMEN_OK is the only success code.
 * The values are part of the ABI and never change.  Future releases may add
 * codes: treat an unknown negative value as a generic failure.
 */
#define OMEN_OK          0   /* success                                             */
#define OMEN_ENOTFOUND (-1)  /* get: the key is absent; open: the directory is
                                missing and create_if_missing is 0                 */
#define OMEN_EINVAL    (-2)  /* bad argument: NULL handle or pointer, value too
                                large, lo > hi, ...                                */
#define OMEN_ERANGE    (-3)  /* get: the caller's buffer is too small; *len holds
                                the size needed                                    */
#define OMEN_ENOMEM    (-4)  /* an allocation failed                                */
#define OMEN_EIO       (-5)  /* the storage layer failed; omen_errmsg() has its text */
#define OMEN_ECORRUPT  (-6)  /* on-disk data or metadata failed validation          */
#define OMEN_EBUSY     (-7)  /* the directory is already open (in this or another
                                process)                                           */
#define OMEN_EAGAIN    (-8)  /* non-blocking ingest: the shard's queue is full,
                                retry later                                        */
#define OMEN_ECLOSED   (-9)  /* the database is closing or closed                  */
#define OMEN_END      (-10)  /* iterator exhausted (not a failure of the call)      */

/*
 * omen_strerror — a short, static, human-readable description of an error
 * code, e.g. "key not found" for OMEN_ENOTFOUND.  Each code has its own
 * description; a value that is not a known code (including positive values)
 * gets a generic "unknown error code" description.
 *
 * Never returns NULL.  The string is constant: do not free or modify it.
 * Thread-safety: any thread, any time (no state).  Errors: none.
 */
const char *omen_strerror(int code);

/*
 * omen_errmsg — the calling thread's last detailed error message: the text
 * that a failing OmenDB call on this thread left behind (for OMEN_EIO, the
 * storage layer's own message).  Calls that succeed may leave an older
 * message in place, so read it right after the failing call.
 *
 * Never returns NULL: the empty string when this thread has nothing to say.
 * The string belongs to the calling thread; it stays valid until that
 * thread's next OmenDB call or its exit.  Do not free it.
 * Thread-safety: any thread, any time; each thread sees only its own
 * message.  Errors: none.
 */
const char *omen_errmsg(void);

/*
 * omen_version — the version of the loaded library as "MAJOR.MINOR.PATCH".
 *
 * Never returns NULL.  The string is constant: do not free or modify it.
 * Thread-safety: any thread, any time (no state).  Errors: none.
 */
const char *omen_version(void);

/* ===================================================================== */
/* Options and lifetime                                                   */

/* The largest value, in bytes (1 MiB).  Longer values are OMEN_EINVAL. */
#define OMEN_MAX_VALUE (1u << 20)

/* Durability levels (omen_options.durability). */
#define OMEN_DURABLE_WAL  0  /* acknowledged = in the write-ahead log, not fsync'd:
				survives kill -9, not a power loss (default)        */
#define OMEN_DURABLE_SYNC 1  /* acknowledged = in the WAL and fsync'd: survives a
				power loss too.  One fsync covers a whole worker
				batch (group commit), however many writers wait.  */

typedef struct omen_db omen_db;
typedef struct omen_batch omen_batch;
typedef struct omen_iter omen_iter;

typedef struct omen_options {
	unsigned shards;            /* 0 = one per online CPU (default), at most 4096.
				       An existing database keeps its shard count:
				       pass 0 or that count.                            */
	int      durability;        /* OMEN_DURABLE_WAL (default) or OMEN_DURABLE_SYNC   */
	size_t   memory_budget;     /* bytes of resident values (value_bytes in the
				       stats); 0 = keep all resident.  Past it each
				       shard's worker makes the values of the coldest
				       key ranges non-resident (read from storage on
				       demand) and re-admits ranges that turn hot.
				       Also sizes RocksDB's block cache (a quarter of
				       it, 8 MiB .. 1 GiB; 32 MiB when 0).  See
				       "Temperature and the memory budget" below.    */
	unsigned queue_depth;       /* records a shard's ingest queue holds; 0 = default
				       (16383); at most 2^24 - 1.  Rounded up to the
				       next 2^k - 1 (7 holds 7, 8 holds 15).            */
	int      create_if_missing; /* default 1                                        */
	int      nonblocking_ingest;/* omen_ingest returns OMEN_EAGAIN instead of
				       waiting while the shard's queue is full         */
	double   rebalance_factor;  /* a shard holding more than this times the mean
				       key count moves keys to its smaller neighbour,
				       online; 0 = default (1.5), < 0 = never.  At
				       least 1.1: a smaller factor would move keys back
				       and forth.                                      */
	/* Temperature tracking (see below).  0 selects each default.           */
	int      no_tracking;       /* 1: no sampling, no temperature, no read counts;
				       memory_budget then evicts in key order        */
	unsigned sample_every;      /* sample one read in this many per thread;
				       0 = default (64), 1 = every read              */
	double   temp_freq_weight;  /* temperature = w x frequency + (1 - w) x
				       recency; 0 = default (0.6); in (0, 1]          */
	double   temp_hot;          /* a range is hot above this; 0 = default (0.8) */
	double   temp_cold;         /* ... and cold at or below this; 0 = default
				       (0.3); 0 < temp_cold < temp_hot <= 1           */
} omen_options;

/* Fill *o with the defaults above.  NULL is a no-op. */
void omen_options_init(omen_options *o);

/*
 * omen_open — open the database in directory path, creating it when
 * missing (create_if_missing).  o may be NULL (defaults).
 *
 * Returns OMEN_OK and sets *out; on failure sets *out = NULL and returns:
 *   OMEN_EINVAL     NULL path or out; bad options; path exists and is not a
 *                   directory; shards differs from an existing database's;
 *   OMEN_ENOTFOUND  the directory is missing or empty and create_if_missing
 *                   is 0;
 *   OMEN_ECORRUPT   a non-empty directory that is not an OmenDB database,
 *                   or one whose metadata or files fail validation;
 *   OMEN_EBUSY      the directory is already open (this or another process);
 *   OMEN_ENOMEM, OMEN_EIO.
 * A failed open leaves the directory as it was: the metadata, families,
 * table files, MANIFEST and WAL are checked through a read-only view
 * before RocksDB opens the directory for writing (one exception: damage
 * inside a table's filter block is found by the read-write open, after
 * RocksDB rotated its LOG file).  A damaged database is refused with a
 * message naming what is wrong, never opened in part.  A new database is
 * created all or nothing: built in a sibling directory
 * "<path>.omen-new-XXXXXX" and renamed into place (a crash meanwhile
 * leaves that sibling behind, and path as it was).  Opening an existing
 * database returns once its metadata is checked and its files are open;
 * each shard's worker then reads the shard back into memory in the
 * background (all shards in parallel).  Until a shard is rebuilt, reads of
 * its keys (gets and iterators) are answered from storage: correct, and
 * slower; writes to it queue and are applied, and acknowledged, once it is
 * ready.  omen_get_shard_stats shows which shards are still rebuilding;
 * omen_get_stats waits for all of them.  omen_close stops a rebuild under
 * way.  A rebuild that fails (out of memory, a damaged table file found
 * by the scan) leaves its shard serving reads from storage for the rest of
 * the open (storage_only in the stats).
 */
int omen_open(const char *path, const omen_options *o, omen_db **out);

/*
 * omen_close — drain every queue, acknowledge everything queued, make it
 * durable (as the durability option says), stop the workers and free the
 * handle.  Returns OMEN_OK; OMEN_EINVAL for NULL; OMEN_EBUSY (and does
 * nothing) while iterators are open; OMEN_ECLOSED when another thread's
 * omen_close is already under way.
 *
 * Calls that race with omen_close on other threads return OMEN_ECLOSED (a
 * blocked omen_ingest or omen_put among them: a write that returns
 * OMEN_ECLOSED was not applied; one that returns OMEN_OK was).  Once
 * omen_close has returned OMEN_OK the handle is freed and must not be used.
 */
int omen_close(omen_db *db);

/* ===================================================================== */
/* Synchronous writes and reads                                           */

/*
 * omen_put / omen_delete — write and wait for the acknowledgement: the
 * write is in the WAL (fsync'd under OMEN_DURABLE_SYNC) and visible to
 * every reader when the call returns OMEN_OK.  The caller sleeps (futex)
 * while its shard's worker commits; it does not spin a core.
 * val may be NULL only when len == 0.  Deleting an absent key is OMEN_OK.
 * Errors: OMEN_EINVAL (NULL db or val, len > OMEN_MAX_VALUE), OMEN_ENOMEM,
 * OMEN_EIO (the storage layer failed: the write is not applied),
 * OMEN_ECLOSED.
 *
 * Ordering: one thread's writes apply in its call order, whatever the path
 * (put, delete, write, ingest, ingest_batch).
 */
int omen_put(omen_db *db, uint64_t key, const void *val, size_t len);
int omen_delete(omen_db *db, uint64_t key);

/*
 * omen_get — copy key's value into buf (capacity cap) and set *len to its
 * length.  buf may be NULL only when cap == 0 (a size query).
 * Returns OMEN_OK; OMEN_ENOTFOUND (absent; *len untouched); OMEN_ERANGE
 * (cap is smaller than the value: nothing copied, *len = the size needed);
 * OMEN_EINVAL (NULL db or len, NULL buf with cap > 0); OMEN_EIO (a value
 * that is not resident could not be read); OMEN_ECLOSED.
 * Lock-free: a resident value is copied from memory; a missing key never
 * touches storage.
 */
int omen_get(omen_db *db, uint64_t key, void *buf, size_t cap, size_t *len);

/* ===================================================================== */
/* Batches                                                                */

/*
 * A batch collects puts and deletes for omen_write or omen_ingest_batch.
 * It is a plain buffer owned by the caller (no database attached): one
 * thread at a time.  omen_batch_put copies the value.
 */
omen_batch *omen_batch_new(void);                 /* NULL when out of memory */
/* OMEN_OK, OMEN_EINVAL (NULL b, NULL val with len > 0, len > OMEN_MAX_VALUE),
 * OMEN_ENOMEM. */
int  omen_batch_put(omen_batch *b, uint64_t key, const void *val, size_t len);
int  omen_batch_delete(omen_batch *b, uint64_t key);   /* OMEN_OK, OMEN_EINVAL, OMEN_ENOMEM */
void omen_batch_clear(omen_batch *b);             /* drop every record; reusable;
						     NULL is a no-op          */
void omen_batch_free(omen_batch *b);              /* NULL is a no-op            */
/* Records in the batch (0 for NULL). */
size_t omen_batch_count(const omen_batch *b);

/*
 * omen_write — apply a batch and wait until every record is acknowledged.
 * Records for the same key apply in batch order (the last one wins).  An
 * empty batch is OMEN_OK.  The batch may be reused or freed on return.
 *
 * What is atomic: the records of the batch that fall in one shard are
 * committed in a single RocksDB write, so after a crash they are all
 * present or all absent.  Records in different shards are committed by
 * different workers: after a crash during omen_write, some shards' part
 * may be present and another's absent.  Visibility is not atomic either:
 * a concurrent reader may see some records of the batch before others.
 * Once omen_write returns OMEN_OK, all of it is durable and visible.
 * Errors as omen_put; on OMEN_EIO some shards' parts may have applied.
 */
int  omen_write(omen_db *db, const omen_batch *b);

/* ===================================================================== */
/* Asynchronous ingest                                                    */

/*
 * omen_ingest — queue a put and return (the value has been copied).  It
 * blocks while the shard's queue is full, or returns OMEN_EAGAIN when the
 * database was opened with nonblocking_ingest.  The write is acknowledged
 * later, in order with the calling thread's other writes; omen_flush waits
 * for it.  A storage failure while applying queued records is reported by
 * the next omen_flush (OMEN_EIO).
 * Errors: OMEN_EINVAL, OMEN_ENOMEM, OMEN_EAGAIN, OMEN_ECLOSED.
 */
int omen_ingest(omen_db *db, uint64_t key, const void *val, size_t len);

/*
 * omen_ingest_batch — queue every record of b (one queue slot per shard
 * the batch touches) and return.  Atomic per shard exactly as omen_write.
 * With nonblocking_ingest, OMEN_EAGAIN means nothing was queued: only
 * the first shard's part may return it; once a part is queued the others
 * wait for room, so the batch is never left half-queued.
 */
int omen_ingest_batch(omen_db *db, const omen_batch *b);

/*
 * omen_flush — wait until every record queued by any thread before the
 * call is acknowledged.  Returns OMEN_OK, OMEN_EINVAL (NULL), OMEN_ECLOSED,
 * or OMEN_EIO when some ingested record could not be committed since the
 * previous flush.
 */
int omen_flush(omen_db *db);

/* ===================================================================== */
/* Range iteration                                                        */

/*
 * omen_iter_open — an iterator over the keys in [lo, hi] (both inclusive),
 * ascending across shards.  Every key acknowledged before the open and not
 * deleted since is returned exactly once; a key written or deleted during
 * the iteration may or may not be seen.  Iterators take no lock: writers
 * are never blocked.  An open iterator makes omen_close return OMEN_EBUSY.
 * Errors: OMEN_EINVAL (NULL db or out, lo > hi), OMEN_ENOMEM, OMEN_ECLOSED;
 * *out is NULL on failure.
 *
 * omen_iter_next — the next key and its value: OMEN_OK, or OMEN_END when
 * exhausted (and on every later call), OMEN_EINVAL (NULL it), OMEN_ENOMEM
 * or OMEN_EIO.  *val stays valid until
 * the next call on the iterator.  key, val and len may each be NULL.
 *
 * One iterator belongs to one thread at a time.
 */
int  omen_iter_open(omen_db *db, uint64_t lo, uint64_t hi, omen_iter **out);
int  omen_iter_next(omen_iter *it, uint64_t *key, const void **val, size_t *len);
void omen_iter_close(omen_iter *it);              /* NULL is a no-op */

/* ===================================================================== */
/* Operations                                                             */

/*
 * omen_checkpoint — a consistent online copy in dir, which must not exist
 * (OMEN_EINVAL if it does).  It holds every write acknowledged before the
 * call and opens with omen_open.  Table files are hard-linked when dir is
 * on the same file system.  Errors: OMEN_EINVAL, OMEN_EIO, OMEN_ECLOSED.
 */
int omen_checkpoint(omen_db *db, const char *dir);

/*
 * Temperature and the memory budget.
 *
 * Each thread samples one get in sample_every (a per-thread countdown: no
 * lock, no shared write) into a thread-local buffer of the key and its
 * shard; a full buffer goes to the database's aggregator thread through a
 * lock-free ring.  If the aggregator lags, samples are dropped and counted
 * (dropped_samples), never waited for.  Every 100 ms the aggregator ages
 * what it has folded (counts halve every 5 s) and gives each key range
 * (a bucket of about 256 consecutive keys of a shard) a temperature in
 * [0, 1]: temp_freq_weight x frequency (the range's count on a log scale
 * against the hottest range's) + the rest x recency (the fraction of the
 * last 10 periods, 1 s, in which the range was sampled).  Above
 * temp_hot a range is hot, at or below temp_cold it is cold, warm
 * between; never read: cold.
 *
 * With a memory_budget the aggregator ranks every range of every shard by
 * temperature and marks the hottest that fit in seven eighths of the
 * budget as wanted in memory (the last eighth holds values written since
 * the shard's last flush to disk, which cannot leave memory before it).
 * Each shard's worker, between batches, makes the values of ranges not
 * wanted non-resident (coldest first), flushing its family first if it
 * must, and reads wanted ranges back (hottest first), a bounded step at a
 * time.  A shard's resident bytes exceed its part of the budget by at most
 * one worker batch of writes (4096 records), for as long as the writes
 * take to be evicted again.  The key stays in the index either way: a get
 * of a non-resident value reads the shard's RocksDB family and is always
 * right, also while a write to the key is in flight.  Until the first
 * temperature map (about 100 ms after the first sampled read), and with
 * no_tracking, ranges are evicted in key order.
 */
typedef struct omen_stats {
	uint64_t keys;            /* live keys                                   */
	unsigned shards;
	uint64_t index_bytes;     /* memory of the learned indexes               */
	uint64_t value_bytes;     /* memory of resident values                   */
	uint64_t queued;          /* records waiting in ingest queues            */
	uint64_t disk_bytes;      /* size of the database directory              */
	uint64_t batches;         /* worker batches committed, all shards        */
	uint64_t records;         /* puts and deletes committed (before dedupe) */
	uint64_t open_us;         /* how long omen_open took                     */
	uint64_t rebuild_us;      /* from omen_open's start until the last shard's
				     index was rebuilt                           */
	unsigned storage_only;    /* shards whose rebuild failed: they serve
				     every read from storage (see below)         */
	uint64_t moves;           /* boundary moves between shards (rebalancing),
				     since open                                  */
	uint64_t keys_moved;      /* keys those moves carried                    */
	uint64_t move_us;         /* time the moves took, in all                 */
	/* Temperature and residency (0 with no_tracking, except the last
	 * four).  Key counts come from the latest temperature map: keys in
	 * ranges no read has touched are cold. */
	uint64_t hot_keys, warm_keys, cold_keys;
	uint64_t samples;         /* reads sampled and folded into temperature   */
	uint64_t dropped_samples; /* samples dropped because the aggregator lagged */
	uint64_t reads_memory;    /* gets that found their value resident       */
	uint64_t reads_storage;   /* gets served from RocksDB (not resident, or
				     the shard still rebuilding)                 */
	uint64_t memory_budget;   /* the option, 0 = none                        */
	uint64_t resident_keys;   /* keys whose value is in memory               */
	uint64_t evictions;       /* values made non-resident by the budget      */
	uint64_t readmissions;    /* values read back into memory (hot again)    */
} omen_stats;

typedef struct omen_shard_stats {
	uint64_t lo, hi;          /* the key range this shard owns: [lo, hi].  A
				     new multi-shard database routes every key
				     to shard 0 until shard 0 holds 4096 keys (or
				     one worker batch brings that many); then the
				     boundaries are set from those keys
				     (quantiles) and stored.  Until then the other
				     shards report lo > hi (an empty range).      */
	uint64_t keys;
	uint64_t index_bytes, value_bytes;
	uint64_t queued;
	uint64_t batches;         /* worker batches committed                    */
	uint64_t records;         /* puts and deletes committed (before dedupe) */
	unsigned rebuilding;      /* 1 while the index is being rebuilt after
				     omen_open: keys is then the count loaded so
				     far, index_bytes 0                          */
	unsigned storage_only;    /* 1 if the rebuild failed: reads of the shard
				     are served from storage, writes still work  */
	uint64_t rebuild_us;      /* from omen_open's start until the index was
				     ready (0 while rebuilding)                  */
	uint64_t hot_keys, warm_keys, cold_keys;  /* as omen_stats          */
	uint64_t resident_keys;
	uint64_t evictions, readmissions;
} omen_shard_stats;

/*
 * omen_verify — check the database while it stays in use: every shard's
 * index invariants, that index and storage hold the same keys with the
 * same values, that every stored key lies in its shard's range, and the
 * checksum of every table block read on the way (all of storage).  Each
 * shard is checked by its worker between two batches (writes to it wait
 * meanwhile), after its index rebuild.  report may be NULL; else it gets
 * the keys checked and the problems found.
 * Returns OMEN_OK when nothing is wrong; OMEN_ECORRUPT when something is
 * (omen_errmsg names the first problem: shard, key, what differs);
 * OMEN_EIO when storage could not be read; OMEN_EINVAL, OMEN_ECLOSED,
 * OMEN_ENOMEM.
 */
typedef struct omen_verify_report {
	uint64_t keys;            /* keys checked                                */
	uint64_t problems;        /* 0 when the database is sound                */
} omen_verify_report;
int omen_verify(omen_db *db, omen_verify_report *report);

/* Counters are recent values, each read without stopping the workers.
 * omen_get_stats first waits for every shard's index rebuild after
 * omen_open (so keys and index_bytes are exact); omen_get_shard_stats
 * never waits and shows whether its shard is still rebuilding.
 * Errors: OMEN_EINVAL (NULL), OMEN_EIO (disk size), OMEN_ECLOSED. */
int omen_get_stats(omen_db *db, omen_stats *out);
/* shard in [0, stats.shards); the ranges of shards 0..n-1 ascend and cover
 * 0..UINT64_MAX.  OMEN_EINVAL for a bad shard or NULL. */
int omen_get_shard_stats(omen_db *db, unsigned shard, omen_shard_stats *out);


#ifdef __cplusplus
}
#endif

#endif /* OMENDB_H */
