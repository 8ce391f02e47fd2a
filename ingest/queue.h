/*
 * ingest/queue.h — the per-shard bounded MPSC ingest queue.
 *
 * Any number of producer threads hand records (by pointer) to one shard;
 * exactly one consumer thread, the shard worker, drains them in batches.
 * The queue owns nothing it carries: a record belongs to the queue from a
 * successful oq_push until oq_pop_batch hands it to the consumer.
 *
 * Records: every record starts with an oq_link (its first member), which
 * the queue may use while it holds the record.  The wfcqueue implementation
 * links records through it, so a push allocates nothing; the ck_ring one
 * ignores it.  Requiring it of both keeps the choice of implementation
 * internal.
 *
 * Bound: a queue created with capacity C (a power of two >= 2) holds at
 * most C - 1 records (ck_ring's convention: one slot tells full from
 * empty; the wfcqueue implementation is bounded to the same number so the
 * two behave alike).  oq_capacity() returns that number.
 *
 * Order: the records of one producer thread come out in the order it
 * pushed them.  Records of different producers interleave in some order.
 *
 * Waiting: a blocking push on a full queue spins briefly, then sleeps on a
 * futex that the consumer bumps after it frees space, and only when some
 * producer is waiting.  The consumer sleeps on a futex when the queue is
 * empty; a producer makes the wake-up system call only when the consumer
 * is actually asleep, so the steady state makes no system call per push.
 *
 * Close: after oq_close, new pushes fail with -ECANCELED (blocked ones wake
 * and fail too); every push that returned 0 is still delivered.  The
 * consumer drains until oq_pop_batch returns 0 and oq_drained() is true.
 *
 * Thread safety: oq_push, oq_close, oq_depth, oq_capacity, oq_impl_name and
 * oq_drained from any thread; oq_pop_batch from one consumer thread at a
 * time (the shard worker); oq_create/oq_destroy with no other call running.
 */
#ifndef OMEN_INGEST_QUEUE_H
#define OMEN_INGEST_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

/* The first member of every record pushed; opaque to the caller, who must
 * not touch it while the record is in the queue. */
typedef struct oq_link {
	void *opaque;
} oq_link;

typedef struct oq_queue oq_queue;

/*
 * The implementations, selectable per queue so both can be measured in one
 * run (bench/bench_queue).  OQ_IMPL_DEFAULT, the one the engine uses, is
 * wfcqueue: on the 2-core test VM (build/bench/bench_queue) it moved
 * 1.6x the records of ck_ring with one producer (11.4-12.6M/s), at least
 * as many with two (their runs vary widely), and with more producers than
 * cores it was ~50x faster, because ck_ring publishes slots in claim order, so a
 * producer preempted between claiming and publishing stalls every producer
 * behind it, while a wfcqueue push (one exchange, one store) never waits
 * for another producer.
 */
enum oq_impl {
	OQ_IMPL_DEFAULT = 0,
	OQ_IMPL_CK_RING,   /* Concurrency Kit ck_ring, MPSC enqueue, SC dequeue */
	OQ_IMPL_WFCQUEUE,  /* liburcu wait-free concurrent queue + a counter    */
};

/* Create a queue of capacity (power of two, 2 .. 2^30): 0 and *out set, or
 * -EINVAL (bad capacity or impl) or -ENOMEM. */
int oq_create(unsigned capacity, oq_queue **out);
int oq_create_impl(unsigned capacity, enum oq_impl impl, oq_queue **out);

/* Free the queue.  No thread may be using it; records still in it are not
 * touched (the caller owns them and must have drained the queue first if
 * they need freeing). */
void oq_destroy(oq_queue *q);

/*
 * Enqueue item (non-NULL, starting with an oq_link).  0: queued.  -EAGAIN:
 * full and nonblocking.  -ECANCELED: the queue is closed (the item was not
 * queued).  -EINVAL: item is NULL.  A blocking push waits for space.
 */
int oq_push(oq_queue *q, void *item, bool nonblocking);

/*
 * Wait until the queue has room for a record, or is closed: 0 or
 * -ECANCELED.  For producers that must route a record again before each
 * attempt (the engine routes and pushes inside one RCU read-side section,
 * and must not sleep there): try oq_push nonblocking, leave the section,
 * oq_wait_room, try again.  Room is not reserved: another producer may
 * take it first.
 */
int oq_wait_room(oq_queue *q);

/* Refuse further pushes and wake every waiting thread.  Idempotent. */
void oq_close(oq_queue *q);

/*
 * Consumer only.  Move up to max records (max >= 1) into out, oldest first
 * per producer, and return how many.  When the queue is empty, wait up to
 * timeout_ms (< 0: no limit, 0: do not wait) for a record; returns 0 on
 * timeout, or at once when the queue is closed and drained.
 */
size_t oq_pop_batch(oq_queue *q, void **out, size_t max, int timeout_ms);

/* True once the queue is closed and every accepted record was popped:
 * nothing more will ever come out.  Meaningful to the consumer. */
bool oq_drained(oq_queue *q);

/* Records in the queue, approximately (for statistics). */
size_t oq_depth(oq_queue *q);

/* The most records the queue holds (capacity - 1). */
size_t oq_capacity(const oq_queue *q);

/* "ck_ring" or "wfcqueue". */
const char *oq_impl_name(const oq_queue *q);

#endif
