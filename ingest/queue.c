/*
 * ingest/queue.c — the bounded MPSC ingest queue (see queue.h), on two
 * implementations chosen per queue:
 *
 *  - ck_ring: Concurrency Kit's ring of pointers.  Producers claim a slot
 *    with a CAS on p_head, store the pointer, then wait their turn to move
 *    p_tail (so slots are published in claim order); the single consumer
 *    reads up to p_tail and moves c_head.  Bounded by construction.
 *  - wfcqueue: liburcu's wait-free concurrent queue, linked through the
 *    record's oq_link (no allocation per push).  Enqueue is one xchg on the
 *    tail plus a store; it is unbounded, so a counter (count) bounds it:
 *    a producer reserves a place with a CAS before it enqueues, and the
 *    consumer gives places back after each batch.
 *
 * Both share the waiting protocol: two futex words and two "someone
 * sleeps" words, each pair a Dekker handshake ordered by seq_cst fences:
 *
 *   consumer asleep:  consumer  cons_sleeping = 1; fence; queue empty? -> wait(cons_futex)
 *                     producer  publish record;    fence; cons_sleeping? -> bump + wake
 *   producer asleep:  producer  prod_waiters++;    fence; still full?   -> wait(space_futex)
 *                     consumer  free slots;        fence; prod_waiters? -> bump + wake all
 *
 * Either the sleeper sees the other side's progress, or the waker sees the
 * sleeper's flag; the futex word was read before the re-check, so a bump
 * between re-check and sleep makes FUTEX_WAIT return at once.  A push thus
 * costs a load of a read-mostly line (and, on ck_ring, a fence; wfcqueue's
 * tail xchg is already one), never a system call, unless the consumer
 * really sleeps.
 *
 * Close and drain: the wfcqueue counter carries a CLOSED bit, so a place is
 * either reserved before the close (and its record will arrive) or refused.
 * ck_ring has no such word; its producers announce themselves in striped
 * in-flight counters (one per thread-hashed cache line, so the increment
 * stays mostly uncontended) before checking `closed`, and the consumer
 * calls the queue drained only when closed, no producer is in flight and
 * the ring is empty.
 *
 * ThreadSanitizer: ck_ring orders its slots with inline-asm loads, stores
 * and fences, and under TSan the wfcqueue code is liburcu's uninstrumented
 * library; neither is visible to TSan.  Under OMEN_TSAN the ring's own
 * accesses are hidden (AnnotateIgnore*), and each record carries the
 * ordering the queue guarantees: a release on the record before it is
 * pushed, an acquire after it is popped.  Our own words are C11 atomics.
 */
#include "ingest/queue.h"
#include "ingest/futex.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <ck_pr.h>
#include <ck_ring.h>

/* Inline liburcu's fast paths, except under TSan (see the note above and
 * core/rcu.h). */
#if !defined(_LGPL_SOURCE) && !defined(OMEN_TSAN)
#define _LGPL_SOURCE
#endif
#include <urcu/wfcqueue.h>

#include "core/mem.h"

#include "core/tsan_annotate.h"

/* A full fence.  GCC's TSan does not support atomic_thread_fence (-Wtsan)
 * and TSan does not model fences; under it each Dekker handshake below
 * instead does a seq_cst read-modify-write of one per-queue word on both
 * sides, which orders the two sides as the fences do. */
#ifdef OMEN_TSAN
#define FULL_FENCE(q) ((void)atomic_fetch_add_explicit(&(q)->tsan_fence, 0, memory_order_seq_cst))
#else
#define FULL_FENCE(q) atomic_thread_fence(memory_order_seq_cst)
#endif

#define CACHELINE 64
#define NSTRIPES 16               /* in-flight counters (ck_ring only)      */
#define CLOSED_BIT UINT32_C(0x80000000) /* in count (wfcqueue only)          */
#define PUSH_SPINS 128            /* full queue: retries before sleeping    */
#define TAIL_SPINS 64             /* ck_ring: waits on p_tail before yielding */
#define POP_SPINS 64              /* empty queue: polls before sleeping     */
#define MAX_CAPACITY (1u << 30)

_Static_assert(sizeof(oq_link) == sizeof(struct cds_wfcq_node),
	       "oq_link must be exactly a wfcqueue node");

struct stripe {
	_Alignas(CACHELINE) atomic_ulong n;
};

struct oq_queue {
	/* Immutable after creation. */
	enum oq_impl impl;
	unsigned arena;
	unsigned size;              /* ring size; capacity() = size - 1        */
	struct ck_ring_buffer *buf; /* ck_ring: size slots                     */

	/* ck_ring: its own layout keeps c_head and p_head/p_tail apart. */
	_Alignas(CACHELINE) struct ck_ring ring;

	/* wfcqueue: head is consumer-only, tail is the producers' xchg word. */
	_Alignas(CACHELINE) struct __cds_wfcq_head whead;
	_Alignas(CACHELINE) struct cds_wfcq_tail wtail;
	/* wfcqueue: places reserved and not yet given back | CLOSED_BIT.
	 * Producers CAS it up (seq_cst), the consumer subtracts a batch. */
	_Alignas(CACHELINE) atomic_uint_fast32_t count;

	/* Read by every push; written only around a consumer sleep and by
	 * close, so it stays shared in every producer's cache. */
	_Alignas(CACHELINE) atomic_uint cons_sleeping; /* 1: consumer may sleep  */
	atomic_uint cons_futex;     /* bumped by whoever wakes the consumer    */
	atomic_bool closed;         /* set once by oq_close (seq_cst)          */

	/* Read by the consumer once per batch; written by sleeping producers. */
	_Alignas(CACHELINE) atomic_uint prod_waiters;  /* producers in the wait */
	atomic_uint space_futex;    /* bumped when space frees up or on close  */

#ifdef OMEN_TSAN
	atomic_uint tsan_fence;     /* FULL_FENCE under TSan                    */
#endif
	/* ck_ring: producers between "not closed" and the end of their push. */
	struct stripe inflight[NSTRIPES];
};

/* Consumer side of "producer asleep": called after slots were freed. */
static void wake_producers(oq_queue *q)
{
	/* Pairs with the fence in push_wait: our slot release (c_head or count)
	 * is ordered before this load of prod_waiters. */
	FULL_FENCE(q);
	if (atomic_load_explicit(&q->prod_waiters, memory_order_relaxed) != 0) {
		atomic_fetch_add_explicit(&q->space_futex, 1, memory_order_seq_cst);
		ofutex_wake(&q->space_futex, INT_MAX);
	}
}

/* Producer side of "consumer asleep": called after a record was published. */
static void wake_consumer(oq_queue *q)
{
	/* Pairs with the fence in oq_pop_batch: our publication (p_tail store
	 * or tail xchg) is ordered before this load of cons_sleeping.  The
	 * wfcqueue publication needs no fence of ours: cds_wfcq_enqueue's
	 * uatomic_xchg on the tail is documented by liburcu to imply a full
	 * barrier after it, which is the one fence a push would pay.  Under
	 * TSan the xchg is invisible, so the fence (an RMW there) stays. */
#ifndef OMEN_TSAN
	if (q->impl == OQ_IMPL_WFCQUEUE) {
		/* Compiler-only: keep the load below after the enqueue. */
		atomic_signal_fence(memory_order_seq_cst);
	} else
#endif
		FULL_FENCE(q);
	if (atomic_load_explicit(&q->cons_sleeping, memory_order_relaxed) != 0 &&
	    atomic_exchange_explicit(&q->cons_sleeping, 0, memory_order_relaxed) != 0) {
		/* Only the producer that cleared the flag makes the call. */
		atomic_fetch_add_explicit(&q->cons_futex, 1, memory_order_seq_cst);
		ofutex_wake(&q->cons_futex, 1);
	}
}

/* ---------------------------------------------- ck_ring in-flight stripes */

static atomic_uint next_stripe;
static __thread unsigned my_stripe __attribute__((tls_model("initial-exec"))) = UINT_MAX;

static struct stripe *stripe_of_thread(oq_queue *q)
{
	if (__builtin_expect(my_stripe == UINT_MAX, 0))
		my_stripe = atomic_fetch_add_explicit(&next_stripe, 1, memory_order_relaxed) %
			    NSTRIPES;
	return &q->inflight[my_stripe];
}

static bool ck_no_inflight(oq_queue *q)
{
	/* seq_cst loads: an increment that preceded the close in the single
	 * total order (its producer then read closed == false) is seen here,
	 * or its later decrement, which releases the record's publication. */
	for (int i = 0; i < NSTRIPES; i++)
		if (atomic_load_explicit(&q->inflight[i].n, memory_order_seq_cst) != 0)
			return false;
	return true;
}

/* ------------------------------------------------ the two implementations */

/* One non-waiting attempt: 0, -EAGAIN (full) or -ECANCELED (wfcqueue:
 * closed; ck_ring checks `closed` in oq_push). */
static int try_push(oq_queue *q, void *item)
{
	if (q->impl == OQ_IMPL_CK_RING) {
		unsigned ticket;
		void **slot;

		/* ck_ring_enqueue_mpsc, split open: a producer that claimed a
		 * slot must wait until every earlier claimer has published
		 * (p_tail reaches its ticket), and ck spins for that without
		 * end.  When an earlier claimer is preempted, on an
		 * oversubscribed machine, the spinners burn whole time slices:
		 * under ASan the 4-producer test crawled at about 1K records/s
		 * on 2 CPUs.  So: spin briefly, then yield the CPU. */
		HIDE_BEGIN();
		slot = ck_ring_enqueue_reserve_mpsc(&q->ring, q->buf, &ticket);
		if (slot) {
			*slot = item;
			for (unsigned i = 0; ck_pr_load_uint(&q->ring.p_tail) != ticket; i++) {
				if (i < TAIL_SPINS)
					ck_pr_stall();
				else
					sched_yield();
			}
			ck_ring_enqueue_commit_mpsc(&q->ring, ticket);
		}
		HIDE_END();
		return slot ? 0 : -EAGAIN;
	}

	uint_fast32_t c = atomic_load_explicit(&q->count, memory_order_relaxed);

	do {
		if (c & CLOSED_BIT)
			return -ECANCELED;
		if (c >= q->size - 1)
			return -EAGAIN;
	} while (!atomic_compare_exchange_weak_explicit(&q->count, &c, c + 1,
							memory_order_seq_cst,
							memory_order_relaxed));
	cds_wfcq_node_init((struct cds_wfcq_node *)item);
	cds_wfcq_enqueue(&q->whead, &q->wtail, (struct cds_wfcq_node *)item);
	return 0;
}

/* Consumer: take up to max records without waiting. */
static size_t take(oq_queue *q, void **out, size_t max)
{
	size_t n = 0;

	if (q->impl == OQ_IMPL_CK_RING) {
		HIDE_BEGIN();
		while (n < max && ck_ring_dequeue_mpsc(&q->ring, q->buf, &out[n]))
			n++;
		HIDE_END();
	} else {
		while (n < max) {
			struct cds_wfcq_node *node =
				__cds_wfcq_dequeue_nonblocking(&q->whead, &q->wtail);

			/* WOULDBLOCK: a producer is between its tail xchg and
			 * linking its node; take the rest next time. */
			if (node == NULL || node == CDS_WFCQ_WOULDBLOCK)
				break;
			out[n++] = node;
		}
		if (n)
			atomic_fetch_sub_explicit(&q->count, (uint_fast32_t)n,
						  memory_order_seq_cst);
	}
	for (size_t i = 0; i < n; i++)
		ITEM_ACQUIRE(out[i]);
	return n;
}

static bool queue_empty(oq_queue *q)
{
	bool empty;

	if (q->impl == OQ_IMPL_CK_RING) {
		HIDE_BEGIN();
		empty = ck_ring_size(&q->ring) == 0;
		HIDE_END();
	} else {
		empty = cds_wfcq_empty(&q->whead, &q->wtail);
	}
	return empty;
}

/* --------------------------------------------------------------- the API */

int oq_create(unsigned capacity, oq_queue **out)
{
	return oq_create_impl(capacity, OQ_IMPL_DEFAULT, out);
}

int oq_create_impl(unsigned capacity, enum oq_impl impl, oq_queue **out)
{
	unsigned arena;
	oq_queue *q;

	*out = NULL;
	if (capacity < 2 || capacity > MAX_CAPACITY || (capacity & (capacity - 1)))
		return -EINVAL;
	if (impl == OQ_IMPL_DEFAULT)
		impl = OQ_IMPL_WFCQUEUE; /* measured faster: see queue.h */
	if (impl != OQ_IMPL_CK_RING && impl != OQ_IMPL_WFCQUEUE)
		return -EINVAL;
	if (omem_arena_create(&arena) != 0)
		return -ENOMEM;
	q = omem_alloc(arena, sizeof(*q));
	if (!q) {
		omem_arena_destroy(arena);
		return -ENOMEM;
	}
	memset(q, 0, sizeof(*q));
	q->impl = impl;
	q->arena = arena;
	q->size = capacity;
	if (impl == OQ_IMPL_CK_RING) {
		q->buf = omem_alloc(arena, sizeof(*q->buf) * capacity);
		if (!q->buf) {
			omem_free(arena, q, sizeof(*q));
			omem_arena_destroy(arena);
			return -ENOMEM;
		}
		memset(q->buf, 0, sizeof(*q->buf) * capacity);
		ck_ring_init(&q->ring, capacity);
	} else {
		__cds_wfcq_init(&q->whead, &q->wtail);
	}
	atomic_init(&q->count, 0);
	atomic_init(&q->cons_sleeping, 0);
	atomic_init(&q->cons_futex, 0);
	atomic_init(&q->closed, false);
	atomic_init(&q->prod_waiters, 0);
	atomic_init(&q->space_futex, 0);
	for (int i = 0; i < NSTRIPES; i++)
		atomic_init(&q->inflight[i].n, 0);
	*out = q;
	return 0;
}

void oq_destroy(oq_queue *q)
{
	unsigned arena;

	if (!q)
		return;
	arena = q->arena;
	if (q->buf)
		omem_free(arena, q->buf, sizeof(*q->buf) * q->size);
	omem_free(arena, q, sizeof(*q));
	omem_arena_destroy(arena);
}

/* Blocking push on a full queue: spin, then sleep until the consumer frees
 * space or the queue closes. */
static int push_wait(oq_queue *q, void *item)
{
	int rc;

	for (int i = 0; i < PUSH_SPINS; i++) {
		ck_pr_stall();
		if (atomic_load_explicit(&q->closed, memory_order_relaxed))
			return -ECANCELED;
		rc = try_push(q, item);
		if (rc != -EAGAIN)
			return rc;
	}
	for (;;) {
		unsigned seen;

		atomic_fetch_add_explicit(&q->prod_waiters, 1, memory_order_seq_cst);
		/* Pairs with wake_producers: either the consumer sees our count
		 * or our re-check below sees the space it freed. */
		FULL_FENCE(q);
		seen = atomic_load_explicit(&q->space_futex, memory_order_seq_cst);
		if (atomic_load_explicit(&q->closed, memory_order_seq_cst))
			rc = -ECANCELED;
		else
			rc = try_push(q, item);
		if (rc == -EAGAIN)
			ofutex_wait(&q->space_futex, seen, NULL);
		atomic_fetch_sub_explicit(&q->prod_waiters, 1, memory_order_relaxed);
		if (rc != -EAGAIN)
			return rc;
	}
}

int oq_push(oq_queue *q, void *item, bool nonblocking)
{
	struct stripe *st = NULL;
	int rc;

	if (!item)
		return -EINVAL;
	if (q->impl == OQ_IMPL_CK_RING) {
		/* Announce, then check closed (seq_cst both): see ck_no_inflight. */
		st = stripe_of_thread(q);
		atomic_fetch_add_explicit(&st->n, 1, memory_order_seq_cst);
		if (atomic_load_explicit(&q->closed, memory_order_seq_cst)) {
			atomic_fetch_sub_explicit(&st->n, 1, memory_order_release);
			return -ECANCELED;
		}
	}
	/* Everything the producer wrote into the record happens before the
	 * consumer's pop of it (what the queue guarantees; see the TSan note). */
	ITEM_RELEASE(item);
	rc = try_push(q, item);
	if (rc == -EAGAIN && !nonblocking)
		rc = push_wait(q, item);
	if (rc == 0)
		wake_consumer(q);
	if (st)
		atomic_fetch_sub_explicit(&st->n, 1, memory_order_release);
	return rc;
}

int oq_wait_room(oq_queue *q)
{
	for (int i = 0; i < PUSH_SPINS; i++) {
		if (atomic_load_explicit(&q->closed, memory_order_relaxed))
			return -ECANCELED;
		if (oq_depth(q) < oq_capacity(q))
			return 0;
		ck_pr_stall();
	}
	for (;;) {
		atomic_fetch_add_explicit(&q->prod_waiters, 1, memory_order_seq_cst);
		/* Same pairing with wake_producers as push_wait. */
		FULL_FENCE(q);
		unsigned seen = atomic_load_explicit(&q->space_futex, memory_order_seq_cst);
		int closed = atomic_load_explicit(&q->closed, memory_order_seq_cst);
		int room = oq_depth(q) < oq_capacity(q);
		if (!closed && !room)
			ofutex_wait(&q->space_futex, seen, NULL);
		atomic_fetch_sub_explicit(&q->prod_waiters, 1, memory_order_relaxed);
		if (closed)
			return -ECANCELED;
		if (room)
			return 0;
	}
}

void oq_close(oq_queue *q)
{
	if (q->impl == OQ_IMPL_WFCQUEUE)
		atomic_fetch_or_explicit(&q->count, CLOSED_BIT, memory_order_seq_cst);
	atomic_store_explicit(&q->closed, true, memory_order_seq_cst);
	/* Bump both words after setting closed: a sleeper that read the word
	 * before this either sees closed in its re-check or finds the word
	 * moved and returns from FUTEX_WAIT. */
	atomic_store_explicit(&q->cons_sleeping, 0, memory_order_relaxed);
	atomic_fetch_add_explicit(&q->cons_futex, 1, memory_order_seq_cst);
	ofutex_wake(&q->cons_futex, 1);
	atomic_fetch_add_explicit(&q->space_futex, 1, memory_order_seq_cst);
	ofutex_wake(&q->space_futex, INT_MAX);
}

bool oq_drained(oq_queue *q)
{
	if (q->impl == OQ_IMPL_WFCQUEUE)
		return atomic_load_explicit(&q->count, memory_order_seq_cst) == CLOSED_BIT;
	return atomic_load_explicit(&q->closed, memory_order_seq_cst) && ck_no_inflight(q) &&
	       queue_empty(q);
}

static struct timespec deadline_after(int ms)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

/* Time left until deadline into *rel; false when it has passed. */
static bool time_left(const struct timespec *deadline, struct timespec *rel)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	rel->tv_sec = deadline->tv_sec - now.tv_sec;
	rel->tv_nsec = deadline->tv_nsec - now.tv_nsec;
	if (rel->tv_nsec < 0) {
		rel->tv_sec--;
		rel->tv_nsec += 1000000000L;
	}
	return rel->tv_sec >= 0 && (rel->tv_sec > 0 || rel->tv_nsec > 0);
}

size_t oq_pop_batch(oq_queue *q, void **out, size_t max, int timeout_ms)
{
	struct timespec deadline, rel;
	size_t n;

	if (max == 0)
		return 0;
	n = take(q, out, max);
	if (n || timeout_ms == 0)
		goto done;
	for (int i = 0; i < POP_SPINS && !n; i++) {
		ck_pr_stall();
		n = take(q, out, max);
	}
	if (n)
		goto done;
	if (timeout_ms > 0)
		deadline = deadline_after(timeout_ms);
	for (;;) {
		const struct timespec *limit = NULL;

		if (timeout_ms > 0) {
			if (!time_left(&deadline, &rel))
				break;
			limit = &rel;
		}
		if (atomic_load_explicit(&q->closed, memory_order_seq_cst)) {
			/* No sleeping after close: wait out in-flight pushes. */
			if (oq_drained(q))
				break;
			sched_yield();
		} else if (!queue_empty(q)) {
			/* A record is being linked (wfcqueue WOULDBLOCK) or just
			 * arrived: let its producer finish. */
			sched_yield();
		} else {
			unsigned seen = atomic_load_explicit(&q->cons_futex, memory_order_seq_cst);

			atomic_store_explicit(&q->cons_sleeping, 1, memory_order_relaxed);
			/* Pairs with wake_consumer: either a producer sees the
			 * flag, or the re-check below sees its record. */
			FULL_FENCE(q);
			if (queue_empty(q) && !atomic_load_explicit(&q->closed, memory_order_seq_cst))
				ofutex_wait(&q->cons_futex, seen, limit);
			atomic_store_explicit(&q->cons_sleeping, 0, memory_order_relaxed);
		}
		n = take(q, out, max);
		if (n)
			break;
	}
done:
	if (n)
		wake_producers(q);
	return n;
}

size_t oq_depth(oq_queue *q)
{
	size_t d;

	if (q->impl == OQ_IMPL_WFCQUEUE)
		return atomic_load_explicit(&q->count, memory_order_relaxed) & ~CLOSED_BIT;
	HIDE_BEGIN();
	d = ck_ring_size(&q->ring);
	HIDE_END();
	return d;
}

size_t oq_capacity(const oq_queue *q)
{
	return q->size - 1;
}

const char *oq_impl_name(const oq_queue *q)
{
	return q->impl == OQ_IMPL_CK_RING ? "ck_ring" : "wfcqueue";
}
