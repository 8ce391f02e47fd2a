/*
 * shard/store.h — the storage layer under the sharded engine: one RocksDB
 * instance per database directory, one column family per shard, one for
 * metadata.  Internal (prefix ostore_): not installed, not exported.
 *
 * On disk
 *   families   "shard-0" .. "shard-<n-1>": a shard's records;
 *              "meta": metadata records (format version, shard layout, root
 *              model), keyed by short names;
 *              "default": required by RocksDB, never written.  Giving meta
 *              a family of its own keeps "which families are ours" a matter
 *              of names, and keeps the default family's tuning (which
 *              RocksDB may apply to internal work) out of our way.
 *   keys       8 bytes, big-endian: RocksDB's bytewise order is then the
 *              numeric order of the uint64_t keys, so an iterator returns
 *              keys ascending and a range delete covers a numeric range.
 *   values     byte strings, stored as given (length 0 is legal).
 *   files      RocksDB's, plus OMENDB-SESSION: one line the store writes
 *              at each open and clean close, which the next open checks
 *              the database against (store.c, "The session file").
 *
 * Durability: every family shares one WAL (RocksDB's default), so one
 * ostore_write of a batch that spans families is atomic across them, and a
 * write with sync = true is on stable storage when the call returns.
 *
 * Errors: OMEN_* codes.  A failure that comes from RocksDB copies RocksDB's
 * message into the calling thread's oerr_set message (omen_errmsg()).
 *
 * Thread-safety: an open ostore may be used from any number of threads at
 * once (RocksDB's DB and column family handles are thread-safe), except
 * ostore_close, which must run after every other call on the store has
 * returned and every batch and iterator of it has been freed.  An
 * ostore_batch and an ostore_iter belong to one thread at a time (no
 * internal locking), e.g. each shard worker owns its batch.
 */
#ifndef OMEN_SHARD_STORE_H
#define OMEN_SHARD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ostore ostore;
typedef struct ostore_batch ostore_batch;
typedef struct ostore_iter ostore_iter;

/* Upper bound on the shard count: family names stay short and a corrupt
 * family list cannot make open allocate without bound. */
#define OSTORE_MAX_SHARDS 4096

/*
 * Open the database in directory path, or create it.
 *
 *   nshards      a new database gets families shard-0 .. shard-(nshards-1),
 *                1 <= nshards <= OSTORE_MAX_SHARDS.  An existing database
 *                keeps the families it has: pass 0 to accept them, or their
 *                count (anything else is OMEN_EINVAL, nothing changed).
 *   cache_bytes  capacity of the LRU block cache shared by every family
 *                (0: a small default).  It holds data blocks only.
 *   create       create the directory (its last component) and the
 *                database when missing.
 *
 * An existing database is validated before it is opened for writing (see
 * "Opening, and refusing damaged databases" in store.c): whether this or
 * another process has it open, its family list, a read-only open of every
 * family (every table file opened and its size checked, the WAL replayed
 * with its checksums verified), and the session file the store keeps
 * beside RocksDB's files (OMENDB-SESSION: a WAL that a crashed session
 * needs is gone, the database recovers to fewer writes than it was last
 * opened or closed with, a shard family that was there is gone).  A
 * database that fails is not modified at all, not even RocksDB's LOG
 * (one exception: damage inside a table file's filter block is found by
 * the read-write open, after RocksDB has rotated its LOG).  A WAL whose
 * last record is incomplete (what kill -9 can leave) is accepted, that
 * record dropped; a WAL record that fails its checksum is refused.
 *
 * Thread-safety: any thread, for any path; a second open of a directory
 * this process has open (or is opening) is OMEN_EBUSY.
 *
 * Returns OMEN_OK and *out, or on failure sets *out = NULL and returns:
 *   OMEN_ENOTFOUND  path does not exist, or is an empty directory, and
 *                   create is false;
 *   OMEN_EINVAL     path exists but is not a directory; bad nshards;
 *   OMEN_ECORRUPT   a non-empty directory that is not a database (no
 *                   CURRENT file: refused before RocksDB could write into
 *                   it), a database whose family names are not ours, or
 *                   whose files fail validation: RocksDB reports
 *                   "Corruption", or a file that CURRENT or the MANIFEST
 *                   names is missing, or the session file's checks fail;
 *   OMEN_EBUSY      the directory is already open, in this or another
 *                   process (RocksDB's LOCK file is held);
 *   OMEN_ENOMEM     allocation failed;
 *   OMEN_EIO        the files cannot be read (permission, I/O error), or
 *                   anything else RocksDB reports.
 * The message (oerr_set) starts with path and says what is wrong (which
 * file or family), then RocksDB's text if it has one.
 * Only a successful open, or one creating a new database, writes to path.
 */
int ostore_open(const char *path, unsigned nshards, size_t cache_bytes, bool create,
		ostore **out);

/*
 * A check of an existing database's contents, run by ostore_open_checked
 * on a read-only view of it before anything is opened for writing: the
 * view serves ostore_meta_get, ostore_get, ostore_iter_* and
 * ostore_never_written (writes to it fail with OMEN_EIO).  Returns OMEN_OK or
 * an OMEN code with a message (oerr_set), which ostore_open_checked
 * returns; the view is closed either way.  Runs on the opening thread.
 */
typedef int (*ostore_check_fn)(ostore *view, void *arg);

/* ostore_open, with check (may be NULL) run on an existing database
 * (never on one this call creates) after the store's own validation. */
int ostore_open_checked(const char *path, unsigned nshards, size_t cache_bytes, bool create,
			ostore_check_fn check, void *arg, ostore **out);

/* Close the store and free it (NULL is a no-op).  Unflushed memtables are
 * safe: their records are in the WAL (and the session file then tells the
 * next open that the WAL is needed).  See the thread-safety note above. */
void ostore_close(ostore *st);

/* Number of shard families.  Constant while open. */
unsigned ostore_nshards(const ostore *st);

/* True when nothing was ever written to the database: RocksDB's sequence
 * number is 0 (each put, delete and range delete takes one) and the
 * directory holds no table file.  Any thread. */
bool ostore_never_written(const ostore *st);

/* ------------------------------------------------------------- batches */

/*
 * A write batch bound to a store: records for any shard families and the
 * meta family, applied by ostore_write in order and atomically.  Records
 * are copied into the batch.  Owned by one thread at a time.
 */

/* A new empty batch for st; NULL when out of memory. */
ostore_batch *ostore_batch_new(ostore *st);
/* Free the batch (NULL is a no-op). */
void ostore_batch_free(ostore_batch *b);
/* Drop every record; the batch can be reused. */
void ostore_batch_clear(ostore_batch *b);
/* Records in the batch (puts, deletes and range deletes). */
size_t ostore_batch_count(const ostore_batch *b);

/* Put key -> val[0..len) in shard.  OMEN_EINVAL for shard >= nshards or
 * val == NULL with len > 0. */
int ostore_batch_put(ostore_batch *b, unsigned shard, uint64_t key, const void *val, size_t len);
/* Delete key from shard (absent is fine).  OMEN_EINVAL for a bad shard. */
int ostore_batch_delete(ostore_batch *b, unsigned shard, uint64_t key);
/* Delete every key in [lo, hi] (both inclusive; hi may be UINT64_MAX) from
 * shard.  OMEN_EINVAL for a bad shard or lo > hi. */
int ostore_batch_delete_range(ostore_batch *b, unsigned shard, uint64_t lo, uint64_t hi);
/* Put a metadata record name -> val[0..len) (name: a NUL-terminated key). */
int ostore_batch_meta_put(ostore_batch *b, const char *name, const void *val, size_t len);

/*
 * Apply the batch with one rocksdb_write: all records or none, across every
 * family it touches.  sync = true fsyncs the WAL before returning; false
 * leaves the records in the WAL (they survive kill -9, not power loss).
 * The batch is unchanged (clear it to reuse).  An empty batch is OMEN_OK.
 * Returns OMEN_OK, OMEN_EINVAL (NULL, or a batch of another store), or
 * OMEN_EIO / OMEN_ECORRUPT from RocksDB.
 */
int ostore_write(ostore *st, const ostore_batch *b, bool sync);

/* --------------------------------------------------------------- reads */

/*
 * Copy the value of key in shard into buf (capacity cap) and set *len to
 * its length.  buf may be NULL when cap == 0 (a size query).
 * Returns OMEN_OK; OMEN_ENOTFOUND (key absent); OMEN_ERANGE (cap < length:
 * nothing copied, *len holds the length); OMEN_EINVAL (bad shard, NULL len,
 * NULL buf with cap > 0); OMEN_EIO / OMEN_ECORRUPT from RocksDB.
 */
int ostore_get(ostore *st, unsigned shard, uint64_t key, void *buf, size_t cap, size_t *len);

/* ---------------------------------------------------------------- meta */

/* Put one metadata record outside any batch (sync: as ostore_write). */
int ostore_meta_put(ostore *st, const char *name, const void *val, size_t len, bool sync);
/* Read one metadata record; codes as ostore_get. */
int ostore_meta_get(ostore *st, const char *name, void *buf, size_t cap, size_t *len);

/* ----------------------------------------------------------- iterators */

/*
 * An ordered iterator over one shard family, for rebuilds and range scans.
 * It reads a consistent snapshot taken at ostore_iter_new, and does not
 * fill the block cache (a full scan must not evict the hot blocks).
 * Owned by one thread at a time; free it before ostore_close.
 *
 *	ostore_iter *it;
 *	if (ostore_iter_new(st, shard, &it) == OMEN_OK) {
 *		for (ostore_iter_seek(it, lo); ostore_iter_valid(it); ostore_iter_next(it))
 *			use(ostore_iter_key(it), ostore_iter_value(it, &len), len);
 *		rc = ostore_iter_status(it);   (OMEN_OK: the scan reached the end)
 *		ostore_iter_free(it);
 *	}
 */
int ostore_iter_new(ostore *st, unsigned shard, ostore_iter **out);
/* Position at the first key >= key. */
void ostore_iter_seek(ostore_iter *it, uint64_t key);
/* Position at the first key of the family. */
void ostore_iter_seek_first(ostore_iter *it);
/* True while positioned on a record.  False at the end, or after an error
 * (a RocksDB error, or a stored key that is not 8 bytes): see status. */
bool ostore_iter_valid(ostore_iter *it);
/* Advance; only while valid. */
void ostore_iter_next(ostore_iter *it);
/* The current key; only while valid. */
uint64_t ostore_iter_key(const ostore_iter *it);
/* The current value and its length; only while valid.  Valid until the
 * iterator moves or is freed. */
const void *ostore_iter_value(const ostore_iter *it, size_t *len);
/* OMEN_OK, or why the iterator stopped early (OMEN_EIO, OMEN_ECORRUPT). */
int ostore_iter_status(ostore_iter *it);
/* Free the iterator (NULL is a no-op). */
void ostore_iter_free(ostore_iter *it);

/* ---------------------------------------------------------- operations */

/*
 * Flush every family's memtable to table files and wait.  Not needed for
 * durability (the WAL has everything); it spares the next open replaying
 * the WAL into memtables, which costs as much as the writes did.
 */
int ostore_flush(ostore *st);

/* Flush the meta family's memtable and wait: its records are then in a
 * table file, and no longer depend on the WAL. */
int ostore_flush_meta(ostore *st);

/*
 * Flush one shard family's memtable and wait.  Before values are made
 * non-resident: the shard families use a vector memtable, where a point
 * Get for a key written since the last flush sorts a copy of the
 * memtable (see shard_family_options in store.c); after the flush, such
 * keys are in table files and the memtable's bloom filter lets Gets skip
 * the memtable.
 */
int ostore_flush_shard(ostore *st, unsigned shard);

/*
 * Write a consistent online copy of the database into dir, which must not
 * exist (OMEN_EINVAL if it does).  Table files are hard-linked when dir is
 * on the same file system; WAL files are copied.  The copy opens with
 * ostore_open like any database and holds every write completed before the
 * call.  Any thread, concurrently with writers.
 */
int ostore_checkpoint(ostore *st, const char *dir);

#endif
