/*
 * bench/peers.h — the common interface behind which bench_engine drives
 * every engine it compares: OmenDB (through its public API only), RocksDB
 * (its C API), SQLite, LMDB and an in-memory sorted array.  The workload
 * code in bench_engine.c is written once against this table; each engine
 * lives in its own bench/peer_<name>.c.
 *
 * The data model is the benchmark's, not any engine's: uint64_t keys and
 * values of exactly PEER_VAL bytes.  Each engine stores keys so that its
 * own order is the numeric order (big-endian bytes, an integer key, a
 * sign-flipped INTEGER PRIMARY KEY), so a scan returns ascending keys.
 *
 * Handles and threads.  open() returns a database handle; every operation
 * goes through a per-thread context from thread_open(), made and closed on
 * the thread that uses it (SQLite holds a connection and its prepared
 * statements there, LMDB a reusable read transaction, OmenDB and RocksDB a
 * reusable batch).  One context belongs to one thread; contexts of one
 * handle may run concurrently.  Every context is closed before close().
 *
 * Errors.  Functions that can fail return < 0 after printing the engine's
 * own message to stderr (prefixed with the engine's name): a benchmark has
 * nobody to hand the message to, and the run counts the failure.
 */
#ifndef OMEN_BENCH_PEERS_H
#define OMEN_BENCH_PEERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of every value. */
#define PEER_VAL 16

/* What an engine supports beyond the basic operations (peer.caps). */
enum {
	PEER_CAP_PERSISTENT = 1u << 0, /* close + open finds the data again     */
	PEER_CAP_SYNC = 1u << 1,       /* peer_config.sync: fsync'd writes      */
	PEER_CAP_INSERT = 1u << 2,     /* new keys after load_done (writes to
					  keys that were never loaded)           */
	PEER_CAP_INGEST = 1u << 3,     /* ingest + flush (asynchronous writes)  */
};

struct peer_config {
	const char *dir;   /* this engine's own directory; open creates it when
			      missing (its parent exists)                       */
	size_t n;          /* keys the run loads (sizing, e.g. LMDB's map)      */
	bool sync;         /* writes fsync'd before they return (CAP_SYNC)      */
};

struct peer {
	const char *name;
	const char *settings;  /* one line: how the engine is configured        */
	unsigned caps;

	/* Open (creating when missing) or reopen the database in cfg->dir. */
	int (*open)(const struct peer_config *cfg, void **db);
	/* Close the handle; everything written is then on disk as the engine
	 * normally leaves it (no extra sync). */
	int (*close)(void *db);
	/* After the last write_batch of the load; may be NULL. */
	int (*load_done)(void *db);
	/* After a reopen: wait until reads run at full speed and return the
	 * seconds from the start of the open until then (OmenDB: until every
	 * shard's index is rebuilt); < 0 on failure.  NULL: ready when open
	 * returns. */
	double (*wait_ready)(void *db);
	/* Append a line of engine-specific statistics to buf; may be NULL. */
	void (*describe)(void *db, char *buf, size_t len);

	/* A per-thread context (NULL on failure, message printed). */
	void *(*thread_open)(void *db);
	void (*thread_close)(void *t);

	/* Write n records in one batch/transaction; vals holds n * PEER_VAL
	 * bytes.  Returns 0 once the engine acknowledges it. */
	int (*write_batch)(void *t, const uint64_t *keys, const uint8_t *vals, size_t n);
	/* Point read: 1 and val filled when found, 0 when absent. */
	int (*get)(void *t, uint64_t key, uint8_t val[PEER_VAL]);
	/* A synchronous single put (acknowledged on return; fsync'd when the
	 * database was opened with cfg.sync).  Returns 0. */
	int (*put)(void *t, uint64_t key, const uint8_t val[PEER_VAL]);
	/* Up to count records with key >= from, ascending, into keys and vals
	 * (count * PEER_VAL bytes).  Returns how many. */
	int (*scan)(void *t, uint64_t from, size_t count, uint64_t *keys, uint8_t *vals);
	/* CAP_INGEST: queue a put and return; flush waits for everything
	 * queued before it.  NULL otherwise. */
	int (*ingest)(void *t, uint64_t key, const uint8_t val[PEER_VAL]);
	int (*flush)(void *db);
};

extern const struct peer peer_omendb;
extern const struct peer peer_rocksdb;
extern const struct peer peer_lmdb;
extern const struct peer peer_sqlite;
extern const struct peer peer_array;

/* Shared by the peers: create dir (mode 0755) unless it exists as a
 * directory; 0 or -1 with a message naming who. */
int peer_mkdir(const char *who, const char *dir);

#endif
