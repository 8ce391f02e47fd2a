/*
 * ingest/record.h — what travels through a shard's ingest queue, and the
 * acknowledgement a synchronous writer waits for.
 *
 * Values: a value is copied exactly once, by the calling thread, into a
 * blob (oblob) allocated from the engine's allocator.  That blob is what
 * the shard's index points to afterwards: the worker never copies it
 * again (RocksDB copies it into its own write batch, which is RocksDB's
 * business).  A blob is immutable from the moment it is queued.
 *
 * Records: one per queued operation.  Synchronous callers (omen_put,
 * omen_delete, omen_write, omen_flush) keep their records on their own
 * stack and wait for `done`; asynchronous ones (omen_ingest,
 * omen_ingest_batch) allocate them and the worker frees them.  Ownership:
 * the caller until oq_push succeeds; the queue until popped; the worker
 * until it sets done (sync) or frees it (async).  After done is set the
 * worker never touches a sync record again.
 *
 * Acknowledgement (oack): one futex word per shard, bumped once per worker
 * batch, after the batch's records are marked done.  A waiter spins
 * briefly on its own record's done flag, then sleeps on the shard's word;
 * a worker makes the wake-up system call only when someone sleeps.  So a
 * batch of k synchronous writes costs one wake-up, not k.
 *
 * Thread safety: oblob_new/free and orec_* allocation from any thread;
 * oack_wait from the waiting thread; oack_publish from the shard worker.
 */
#ifndef OMEN_INGEST_RECORD_H
#define OMEN_INGEST_RECORD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ingest/queue.h"

/* A value: its length and bytes.  Allocated with omem_small_alloc. */
typedef struct oblob {
	uint32_t len;
	/* The owning shard's flush generation when its worker applied the
	 * blob (see shard/residency.c): the value may still be only in the
	 * family's memtable while gen equals the shard's current one.  The
	 * worker's alone: readers never read it. */
	uint32_t gen;
	unsigned char data[];
} oblob;

static inline size_t oblob_size(uint32_t len)
{
	return offsetof(oblob, data) + len;
}

/* A blob holding a copy of val[0..len); NULL when out of memory. */
oblob *oblob_new(const void *val, size_t len);
void oblob_free(oblob *b);     /* NULL is a no-op */

enum orec_kind {
	OREC_PUT = 0,   /* key, blob                                     */
	OREC_DEL,       /* key                                           */
	OREC_MULTI,     /* ops[0..nops): one shard's part of a batch      */
	OREC_FLUSH,     /* a marker: acknowledged once every record queued
			   before it on this queue is acknowledged        */
	OREC_CTRL,      /* a worker command (ctrl), e.g. a test hook      */
};

/* One operation of a multi record: blob NULL means delete. */
typedef struct orec_op {
	uint64_t key;
	oblob *blob;
} orec_op;

typedef struct orec {
	oq_link link;        /* first: the queue's                          */
	uint8_t kind;        /* enum orec_kind                              */
	uint8_t async;       /* the worker frees the record when done       */
	uint16_t ctrl;       /* OREC_CTRL: the command                      */
	uint32_t nops;       /* OREC_MULTI                                  */
	uint64_t key;        /* OREC_PUT, OREC_DEL                          */
	oblob *blob;         /* OREC_PUT                                    */
	orec_op *ops;        /* OREC_MULTI                                  */
	int status;          /* OMEN_OK or why it failed; set before done   */
	atomic_uint done;    /* 0, then 1 (release) when acknowledged       */
} orec;

/* An asynchronous single-op record (OREC_PUT / OREC_DEL); NULL when out
 * of memory.  The worker frees it with orec_free. */
orec *orec_new_async(void);
/* An asynchronous multi record with room for nops ops (rec->ops points
 * into the same allocation); NULL when out of memory. */
orec *orec_new_async_multi(uint32_t nops);
/* Free the blobs a record carries (a record that will not be applied). */
void orec_free_blobs(orec *r);
/* Free an async record (not its blobs: they went to the index or were
 * freed by the worker). */
void orec_free(orec *r);

/* ------------------------------------------------------ acknowledgement */

typedef struct oack {
	atomic_uint seq;       /* bumped once per acknowledged batch       */
	atomic_uint sleepers;  /* threads asleep (or about to be) on seq   */
	atomic_uint waiting;   /* threads in oack_wait (spinning or asleep) */
} oack;

/* Waiting thread: return once r->done is set.  Spins, long when it is the
 * shard's only waiter and fsync is false, briefly otherwise, then sleeps
 * on a's futex word. */
void oack_wait(oack *a, orec *r, bool fsync);

/* Worker: mark r acknowledged with status (the worker must not touch r
 * afterwards when it is a sync record). */
static inline void orec_ack(orec *r, int status)
{
	r->status = status;
	atomic_store_explicit(&r->done, 1, memory_order_release);
}

/* Worker, once per batch after its orec_ack calls: wake the sleepers. */
void oack_publish(oack *a);

#endif
