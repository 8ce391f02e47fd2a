/*
 * shard/temperature.c — sample buffers, thread records and the
 * aggregator thread (see temperature.h for the design).
 */
#include "shard/temperature.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ck_ring.h>

#include "core/tsan_annotate.h"
#include "ingest/futex.h"
#include "omendb.h"
#include "shard/engine.h"

/* One buffer of samples. */
typedef struct otemp_buf {
	uint32_t n;
	uint32_t dropped;            /* samples its thread dropped before it */
	uint16_t shard[OTEMP_BUF_SAMPLES];
	uint64_t key[OTEMP_BUF_SAMPLES];
} otemp_buf;

/* The aggregator's own state for one shard: its copy of the layout's
 * bucket bounds and the counts it keeps for them. */
struct agg_shard {
	uint64_t layout_gen;         /* 0: no layout seen yet                */
	uint32_t n;
	uint64_t *lo;
	float *count;                /* aged sample count                    */
	uint32_t *seen;              /* bit e: sampled in the epoch e epochs ago */
	uint64_t plan_seq;           /* the last plan published               */
};

struct otemp {
	struct omen_db *db;
	otemp_params p;
	uint64_t serial;
	pthread_t thread;
	bool started;
	atomic_uint stop;            /* futex word: 1 = stop                 */

	/* Full buffers: readers enqueue (mpsc), the aggregator dequeues. */
	struct ck_ring full __attribute__((aligned(64)));
	struct ck_ring_buffer *full_slots;
	/* Empty buffers: the aggregator enqueues (spmc), readers dequeue. */
	struct ck_ring empty __attribute__((aligned(64)));
	struct ck_ring_buffer *empty_slots;
	otemp_buf *bufs;

	/* Thread records, pushed by their threads (CAS), freed at destroy. */
	_Atomic(otemp_thread *) threads __attribute__((aligned(64)));

	/* Written by the aggregator, read by stats. */
	_Atomic uint64_t samples, dropped;

	/* The aggregator's alone. */
	struct agg_shard *as;
	uint32_t epoch;
};

/* Distinct for every otemp of the process, never 0 (0 marks an unused
 * cache way). */
static _Atomic uint64_t next_serial = 1;

__thread struct otemp_tls otemp_tls[OTEMP_TLS_WAYS] __attribute__((tls_model("initial-exec")));
static __thread unsigned otemp_tls_next __attribute__((tls_model("initial-exec")));

long otemp_bucket_of(const otemp_layout *l, uint64_t key)
{
	if (key < l->range_lo || key > l->range_hi)
		return -1;
	/* The last bucket whose lo <= key. */
	uint32_t a = 0, b = l->n;
	while (b - a > 1) {
		uint32_t m = a + (b - a) / 2;
		if (l->b[m].lo <= key)
			a = m;
		else
			b = m;
	}
	return a;
}

void otemp_plan_free(otemp_plan *p)
{
	free(p);
}

void otemp_plan_rcu_free(struct rcu_head *h)
{
	orcu_tsan_quiesced();
	free(caa_container_of(h, otemp_plan, rcu));
}

/* ------------------------------------------------------------ readers */

static uint32_t next_countdown(otemp *t, otemp_thread *me)
{
	if (t->p.sample_every <= 1)
		return 1;
	/* Uniform in [1, 2k - 1]: mean k, and no stride that a periodic
	 * access pattern could alias with.  xorshift64. */
	uint64_t x = me->rng;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	me->rng = x;
	return 1 + (uint32_t)(x % (2 * (uint64_t)t->p.sample_every - 1));
}

otemp_thread *otemp_self_slow(otemp *t)
{
	pthread_t self = pthread_self();
	otemp_thread *me = NULL;
	/* A record this thread made before (evicted from its cache since). */
	for (otemp_thread *r = atomic_load_explicit(&t->threads, memory_order_acquire); r;
	     r = r->next)
		if (pthread_equal(r->owner, self)) {
			me = r;
			break;
		}
	if (!me) {
		me = aligned_alloc(64, sizeof(*me));
		if (!me)
			return NULL;
		memset(me, 0, sizeof(*me));
		me->owner = self;
		me->rng = (uint64_t)(uintptr_t)me * 0x9E3779B97F4A7C15ull | 1;
		me->countdown = next_countdown(t, me);
		otemp_thread *head = atomic_load_explicit(&t->threads, memory_order_relaxed);
		do
			me->next = head;
		while (!atomic_compare_exchange_weak_explicit(&t->threads, &head, me,
							      memory_order_release,
							      memory_order_relaxed));
	}
	struct otemp_tls *w = &otemp_tls[otemp_tls_next++ % OTEMP_TLS_WAYS];
	w->serial = t->serial;
	w->rec = me;
	return me;
}

static otemp_buf *take_empty(otemp *t)
{
	void *b = NULL;
	HIDE_BEGIN();
	bool ok = ck_ring_dequeue_spmc(&t->empty, t->empty_slots, &b);
	HIDE_END();
	if (!ok)
		return NULL;
	ITEM_ACQUIRE(b);
	return b;
}

void otemp_sample(otemp *t, otemp_thread *me, unsigned shard, uint64_t key)
{
	me->countdown = next_countdown(t, me);
	if (!me->buf && !(me->buf = take_empty(t))) {
		me->dropped++;
		return;
	}
	otemp_buf *b = me->buf;
	b->shard[b->n] = (uint16_t)shard;
	b->key[b->n] = key;
	if (++b->n < OTEMP_BUF_SAMPLES)
		return;
	b->dropped = me->dropped;
	ITEM_RELEASE(b);
	HIDE_BEGIN();
	bool ok = ck_ring_enqueue_mpsc(&t->full, t->full_slots, b);
	HIDE_END();
	if (!ok) {
		/* The aggregator lags: drop these, keep the buffer. */
		me->dropped += b->n;
		b->n = 0;
		return;
	}
	me->dropped = 0;
	me->buf = take_empty(t);
}

void otemp_counts(otemp *t, uint64_t *reads_memory, uint64_t *reads_storage,
		  uint64_t *samples, uint64_t *dropped)
{
	uint64_t m = 0, s = 0;
	for (otemp_thread *r = atomic_load_explicit(&t->threads, memory_order_acquire); r;
	     r = r->next) {
		m += atomic_load_explicit(&r->reads_memory, memory_order_relaxed);
		s += atomic_load_explicit(&r->reads_storage, memory_order_relaxed);
	}
	*reads_memory = m;
	*reads_storage = s;
	*samples = atomic_load_explicit(&t->samples, memory_order_relaxed);
	*dropped = atomic_load_explicit(&t->dropped, memory_order_relaxed);
}

/* --------------------------------------------------------- aggregator */

/* Take up the shard's current layout, carrying counts over from the one
 * the aggregator knew: each new bucket starts from the old bucket holding
 * its lower bound.  Inside a read-side section. */
static void follow_layout(struct agg_shard *a, const otemp_layout *l)
{
	if (a->layout_gen == l->gen)
		return;
	uint64_t *lo = malloc(l->n * sizeof(uint64_t));
	float *count = calloc(l->n, sizeof(float));
	uint32_t *seen = calloc(l->n, sizeof(uint32_t));
	if (!lo || !count || !seen) {
		free(lo);
		free(count);
		free(seen);
		return; /* keep the old one; try again next epoch */
	}
	uint32_t j = 0;
	for (uint32_t i = 0; i < l->n; i++) {
		lo[i] = l->b[i].lo;
		if (a->n == 0)
			continue;
		while (j + 1 < a->n && a->lo[j + 1] <= lo[i])
			j++;
		if (a->lo[j] <= lo[i]) {
			count[i] = a->count[j];
			seen[i] = a->seen[j];
		}
	}
	free(a->lo);
	free(a->count);
	free(a->seen);
	a->lo = lo;
	a->count = count;
	a->seen = seen;
	a->n = l->n;
	a->layout_gen = l->gen;
}

static void fold(otemp *t, const otemp_buf *b)
{
	struct omen_db *db = t->db;
	for (uint32_t i = 0; i < b->n; i++) {
		unsigned s = b->shard[i];
		if (s >= db->nshards)
			continue;
		struct agg_shard *a = &t->as[s];
		const otemp_layout *l = ODB_DEREF(&db->shards[s]->layout);
		if (!l)
			continue;
		follow_layout(a, l);
		if (a->layout_gen != l->gen)
			continue;
		long k = otemp_bucket_of(l, b->key[i]);
		if (k < 0)
			continue;
		a->count[k] += 1.0f;
		a->seen[k] |= 1;
	}
	atomic_fetch_add_explicit(&t->samples, b->n, memory_order_relaxed);
	if (b->dropped)
		atomic_fetch_add_explicit(&t->dropped, b->dropped, memory_order_relaxed);
}

/* Drain the full ring; each buffer goes back to the empty ring. */
static void drain(otemp *t)
{
	for (;;) {
		void *p = NULL;
		HIDE_BEGIN();
		bool ok = ck_ring_dequeue_mpsc(&t->full, t->full_slots, &p);
		HIDE_END();
		if (!ok)
			return;
		ITEM_ACQUIRE(p);
		otemp_buf *b = p;
		orcu_read_lock();
		fold(t, b);
		orcu_read_unlock();
		b->n = 0;
		b->dropped = 0;
		ITEM_RELEASE(b);
		HIDE_BEGIN();
		ok = ck_ring_enqueue_spmc(&t->empty, t->empty_slots, b);
		HIDE_END();
		(void)ok; /* cannot fail: the ring holds every buffer */
	}
}

/* See epoch(). */
#define OTEMP_STAY 0.1f

/* One bucket among all shards', for ranking under the budget. */
struct rank {
	float temp;
	uint32_t shard, idx;
};

static int cmp_rank_desc(const void *x, const void *y)
{
	const struct rank *a = x, *b = y;
	if (a->temp != b->temp)
		return a->temp < b->temp ? 1 : -1;
	if (a->shard != b->shard)
		return a->shard < b->shard ? -1 : 1;
	return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Age the counts, compute temperatures and publish one plan per shard. */
static void epoch(otemp *t)
{
	struct omen_db *db = t->db;
	const float decay = (float)exp2(-1.0 / OTEMP_HALF_LIFE);
	const double rscale = 1.0 / OTEMP_RECENT;
	const uint32_t recent = (1u << OTEMP_RECENT) - 1; /* the bits that count */
	unsigned ns = db->nshards;
	otemp_plan **plans = calloc(ns, sizeof(*plans));
	const otemp_layout **ls = calloc(ns, sizeof(*ls));
	if (!plans || !ls)
		goto out;
	orcu_read_lock();
	/* The hottest count, for the log-scale frequency. */
	float maxc = 0;
	size_t total = 0;
	for (unsigned s = 0; s < ns; s++) {
		const otemp_layout *l = ODB_DEREF(&db->shards[s]->layout);
		if (!l)
			continue;
		struct agg_shard *a = &t->as[s];
		follow_layout(a, l);
		if (a->layout_gen != l->gen)
			continue;
		ls[s] = l;
		for (uint32_t i = 0; i < a->n; i++) {
			a->count[i] *= decay;
			if (a->count[i] > maxc)
				maxc = a->count[i];
		}
		total += a->n;
	}
	const double lmax = log1p(maxc);
	struct rank *rk = t->p.budget ? malloc(total * sizeof(*rk)) : NULL;
	size_t nrk = 0;
	for (unsigned s = 0; s < ns; s++) {
		const otemp_layout *l = ls[s];
		if (!l)
			continue;
		struct agg_shard *a = &t->as[s];
		size_t n = a->n;
		otemp_plan *p = malloc(sizeof(*p) + n * (sizeof(float) + sizeof(uint32_t) + 1));
		if (!p)
			continue;
		memset(p, 0, sizeof(*p));
		p->seq = ++a->plan_seq;
		p->layout_gen = l->gen;
		p->n = (uint32_t)n;
		p->temp = (float *)(p + 1);
		p->order = (uint32_t *)(p->temp + n);
		p->want = (uint8_t *)(p->order + n);
		for (uint32_t i = 0; i < n; i++) {
			double f = lmax > 0 ? log1p(a->count[i]) / lmax : 0;
			double r = __builtin_popcount(a->seen[i] & recent) * rscale;
			a->seen[i] = (a->seen[i] << 1) & recent; /* a new epoch begins */
			float temp = (float)(t->p.freq_weight * f + (1 - t->p.freq_weight) * r);
			p->temp[i] = temp;
			uint64_t k = atomic_load_explicit(&l->b[i].keys, memory_order_relaxed);
			if (temp > t->p.hot)
				p->hot += k;
			else if (temp <= t->p.cold)
				p->cold += k;
			else
				p->warm += k;
			p->want[i] = t->p.budget ? 0 : 1;
			if (rk) {
				/* Hysteresis: a range mostly in memory ranks as if
				 * OTEMP_STAY warmer, so ranges near the cut do not
				 * go out and come back on every epoch's noise. */
				uint64_t all = atomic_load_explicit(&l->b[i].all_bytes,
								    memory_order_relaxed);
				uint64_t res = atomic_load_explicit(&l->b[i].res_bytes,
								    memory_order_relaxed);
				float key = temp + (all && 2 * res >= all ? OTEMP_STAY : 0);
				rk[nrk++] = (struct rank){ key, s, i };
			}
		}
		plans[s] = p;
	}
	if (rk) {
		/* Hottest first: wanted while they fit in 7/8 of the budget
		 * (the rest holds writes not yet flushed; see residency.c). */
		qsort(rk, nrk, sizeof(*rk), cmp_rank_desc);
		uint64_t room = t->p.budget - t->p.budget / 8, used = 0;
		for (size_t i = 0; i < nrk; i++) {
			otemp_plan *p = plans[rk[i].shard];
			if (!p)
				continue;
			uint64_t b = atomic_load_explicit(&ls[rk[i].shard]->b[rk[i].idx].all_bytes,
							  memory_order_relaxed);
			if (used + b > room)
				continue; /* a smaller colder one may still fit */
			used += b;
			p->want[rk[i].idx] = 1;
			p->share += b;
		}
		/* Eviction order per shard: coldest first (the reverse). */
		uint32_t *fill = calloc(ns, sizeof(uint32_t));
		if (fill) {
			for (size_t i = nrk; i-- > 0;) {
				otemp_plan *p = plans[rk[i].shard];
				if (p)
					p->order[fill[rk[i].shard]++] = rk[i].idx;
			}
			free(fill);
		} else {
			for (unsigned s = 0; s < ns; s++)
				if (plans[s])
					for (uint32_t i = 0; i < plans[s]->n; i++)
						plans[s]->order[i] = i;
		}
	} else {
		for (unsigned s = 0; s < ns; s++)
			if (plans[s])
				for (uint32_t i = 0; i < plans[s]->n; i++)
					plans[s]->order[i] = i;
	}
	free(rk);
	orcu_read_unlock();
	for (unsigned s = 0; s < ns; s++) {
		if (!plans[s])
			continue;
		otemp_plan *old = db->shards[s]->plan;
		ODB_PUBLISH(&db->shards[s]->plan, plans[s]);
		if (old)
			orcu_call(&old->rcu, otemp_plan_rcu_free);
	}
out:
	free(plans);
	free(ls);
	t->epoch++;
}

static void *aggregator_main(void *arg)
{
	otemp *t = arg;
	uint64_t next = odb_now_ns() + OTEMP_EPOCH_MS * 1000000ull;
	while (!atomic_load_explicit(&t->stop, memory_order_acquire)) {
		drain(t);
		uint64_t now = odb_now_ns();
		if (now >= next) {
			epoch(t);
			next = now + OTEMP_EPOCH_MS * 1000000ull;
		}
		/* Buffers arrive a few per millisecond at most: polling every
		 * 5 ms keeps the ring short without waking per buffer. */
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		ofutex_wait(&t->stop, 0, &ts);
	}
	return NULL;
}

/* ---------------------------------------------------------- lifecycle */

int otemp_create(struct omen_db *db, const otemp_params *p, otemp **out)
{
	*out = NULL;
	otemp *t = aligned_alloc(64, (sizeof(*t) + 63) & ~(size_t)63);
	if (!t)
		return OMEN_ENOMEM;
	memset(t, 0, sizeof(*t));
	t->db = db;
	t->p = *p;
	t->serial = atomic_fetch_add(&next_serial, 1);
	/* Rings of OTEMP_NBUFS slots hold NBUFS - 1: with one buffer
	 * always out there is room for every buffer in either. */
	t->full_slots = calloc(2 * OTEMP_NBUFS, sizeof(struct ck_ring_buffer));
	t->empty_slots = calloc(2 * OTEMP_NBUFS, sizeof(struct ck_ring_buffer));
	t->bufs = calloc(OTEMP_NBUFS, sizeof(otemp_buf));
	t->as = calloc(db->nshards, sizeof(struct agg_shard));
	if (!t->full_slots || !t->empty_slots || !t->bufs || !t->as) {
		otemp_destroy(t);
		return OMEN_ENOMEM;
	}
	ck_ring_init(&t->full, 2 * OTEMP_NBUFS);
	ck_ring_init(&t->empty, 2 * OTEMP_NBUFS);
	for (unsigned i = 0; i < OTEMP_NBUFS; i++)
		(void)ck_ring_enqueue_spmc(&t->empty, t->empty_slots, &t->bufs[i]);
	*out = t;
	return OMEN_OK;
}

uint64_t otemp_serial(const otemp *t)
{
	return t->serial;
}

int otemp_start(otemp *t)
{
	if (pthread_create(&t->thread, NULL, aggregator_main, t) != 0)
		return OMEN_ENOMEM;
	t->started = true;
	return OMEN_OK;
}

void otemp_destroy(otemp *t)
{
	if (!t)
		return;
	if (t->started) {
		atomic_store_explicit(&t->stop, 1, memory_order_release);
		ofutex_wake(&t->stop, 1);
		pthread_join(t->thread, NULL);
	}
	otemp_thread *r = atomic_load_explicit(&t->threads, memory_order_acquire);
	while (r) {
		otemp_thread *next = r->next;
		free(r);
		r = next;
	}
	if (t->as)
		for (unsigned s = 0; s < t->db->nshards; s++) {
			free(t->as[s].lo);
			free(t->as[s].count);
			free(t->as[s].seen);
		}
	free(t->as);
	free(t->bufs);
	free(t->full_slots);
	free(t->empty_slots);
	free(t);
}
