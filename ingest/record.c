/*
 * ingest/record.c — value blobs, async records, acknowledgement waits.
 */
#include "ingest/record.h"

#include <limits.h>
#include <string.h>

#include <ck_pr.h>

#include "core/mem.h"
#include "ingest/futex.h"

oblob *oblob_new(const void *val, size_t len)
{
	oblob *b = omem_small_alloc(oblob_size((uint32_t)len));
	if (!b)
		return NULL;
	b->len = (uint32_t)len;
	b->gen = 0;
	if (len)
		memcpy(b->data, val, len);
	return b;
}

void oblob_free(oblob *b)
{
	if (b)
		omem_small_free(b, oblob_size(b->len));
}

static size_t multi_size(uint32_t nops)
{
	return sizeof(orec) + (size_t)nops * sizeof(orec_op);
}

orec *orec_new_async(void)
{
	orec *r = omem_small_alloc(sizeof(orec));
	if (r) {
		memset(r, 0, sizeof(*r));
		r->async = 1;
	}
	return r;
}

orec *orec_new_async_multi(uint32_t nops)
{
	orec *r = omem_small_alloc(multi_size(nops));
	if (r) {
		memset(r, 0, sizeof(*r));
		r->async = 1;
		r->kind = OREC_MULTI;
		r->nops = nops;
		r->ops = (orec_op *)(r + 1);
	}
	return r;
}

void orec_free_blobs(orec *r)
{
	if (r->kind == OREC_PUT) {
		oblob_free(r->blob);
		r->blob = NULL;
	} else if (r->kind == OREC_MULTI) {
		for (uint32_t i = 0; i < r->nops; i++) {
			oblob_free(r->ops[i].blob);
			r->ops[i].blob = NULL;
		}
	}
}

void orec_free(orec *r)
{
	if (r)
		omem_small_free(r, r->kind == OREC_MULTI ? multi_size(r->nops) : sizeof(orec));
}

/*
 * How long a waiter spins before it sleeps.  A lone synchronous writer
 * whose worker commits to the WAL without fsync gets its acknowledgement
 * within tens of microseconds: spinning through that saves two futex calls
 * and a wake-up (single-thread omen_put on the 2-CPU test VM: p99 61-71 us
 * with 512 spins, 26-30 us with 4096).  With other waiters on the shard
 * (or an fsync to wait for) spinning only steals the CPU the worker needs
 * (8 threads of omen_put: 0.10M/s with 512 spins, 0.055M/s with 4096).
 */
#define ACK_SPINS_LONG 4096
#define ACK_SPINS_SHORT 256

void oack_wait(oack *a, orec *r, bool fsync)
{
	unsigned others = atomic_fetch_add_explicit(&a->waiting, 1, memory_order_relaxed);
	int spins = others == 0 && !fsync ? ACK_SPINS_LONG : ACK_SPINS_SHORT;
	for (int i = 0; i < spins; i++) {
		if (atomic_load_explicit(&r->done, memory_order_acquire))
			goto out;
		ck_pr_stall();
	}
	for (;;) {
		/* Read the word before checking done: if the worker bumps it
		 * after our check, the futex sees the change and returns. */
		unsigned seen = atomic_load_explicit(&a->seq, memory_order_seq_cst);
		if (atomic_load_explicit(&r->done, memory_order_acquire))
			break;
		atomic_fetch_add_explicit(&a->sleepers, 1, memory_order_seq_cst);
		if (!atomic_load_explicit(&r->done, memory_order_acquire))
			ofutex_wait(&a->seq, seen, NULL);
		atomic_fetch_sub_explicit(&a->sleepers, 1, memory_order_relaxed);
	}
out:
	atomic_fetch_sub_explicit(&a->waiting, 1, memory_order_relaxed);
}

void oack_publish(oack *a)
{
	atomic_fetch_add_explicit(&a->seq, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&a->sleepers, memory_order_seq_cst))
		ofutex_wake(&a->seq, INT_MAX);
}
