/*
 * shard/temperature.h — access temperature: sampling on the read path,
 * the aggregator thread, and the two objects it shares with the shard
 * workers (the bucket layout and the temperature plan).
 *
 * Read path (any thread, inside omen_get's read-side section): count the
 * read in the thread's own record (memory or storage), and one read in
 * sample_every appends (shard, key) to the thread's sample buffer.  A full
 * buffer goes to the aggregator through a Concurrency Kit ring (many
 * producers, one consumer) and the thread takes an empty one from a
 * second ring (one producer, many consumers).  Nothing waits: when the
 * aggregator lags, the full ring refuses the buffer and its samples are
 * dropped (counted in the thread's record, reported by the next buffer
 * it hands over).  No lock and no write to a line another thread writes.
 *
 * Buckets: each shard's worker cuts its key range into buckets of about
 * OTEMP_BUCKET_KEYS consecutive keys (otemp_layout, RCU-published in
 * oshard.layout, replaced when the shard's range or size drifts) and keeps
 * each bucket's key count and bytes up to date as it applies writes.
 *
 * Aggregator (one thread per database): folds each sample into its
 * bucket's count, and every OTEMP_EPOCH_MS ages the counts (halving every
 * second), computes each bucket's temperature from frequency and recency,
 * and publishes per shard an otemp_plan (RCU): temperatures, the buckets
 * wanted in memory under the budget, an eviction order and the shard's
 * share of the budget.  The worker acts on the plan (shard/residency.c).
 */
#ifndef OMEN_SHARD_TEMPERATURE_H
#define OMEN_SHARD_TEMPERATURE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/rcu.h"

struct omen_db;

/* Keys per bucket when a layout is cut. */
#define OTEMP_BUCKET_KEYS 256
/* Samples per buffer, and buffers per database. */
#define OTEMP_BUF_SAMPLES 256
#define OTEMP_NBUFS 256
/* The aggregator's period: age, compute, publish. */
#define OTEMP_EPOCH_MS 100
/* Sample counts halve every this many epochs (5 s).  Long enough that a
 * range near the budget's cut has collected more than a sample or two
 * (its rank is otherwise noise, and the cut churns). */
#define OTEMP_HALF_LIFE 50
/* Recency: the fraction of the last OTEMP_RECENT epochs (1 s) in which
 * the range was sampled.  A range read once lately scores 1/10, one read
 * all along 1: unlike "time since the last read", one stray read of a
 * cold range does not make it look hot. */
#define OTEMP_RECENT 10

/* One bucket of a shard's layout: keys [lo, next bucket's lo). */
typedef struct otemp_bucket {
	uint64_t lo;                 /* immutable                            */
	/* Written by the shard's worker (relaxed), read by the aggregator
	 * and stats: a recent value is all they need. */
	_Atomic uint64_t keys;
	_Atomic uint64_t all_bytes;  /* memory its values take when resident */
	_Atomic uint64_t res_bytes;  /* memory of its resident values        */
	/* The worker's alone: bytes of resident values written since the
	 * family's last flush (valid while dirty_gen is the shard's memgen). */
	uint64_t dirty_bytes;
	uint32_t dirty_gen;
} otemp_bucket;

/* A shard's buckets.  Immutable but for the bucket counters above;
 * replaced (never edited) by the worker, freed after a grace period. */
typedef struct otemp_layout {
	struct rcu_head rcu;
	uint64_t gen;                /* per shard, ascending                 */
	uint64_t range_lo, range_hi; /* the shard's range when it was cut    */
	uint64_t keys_at;            /* the tree's size then                 */
	uint32_t n;                  /* >= 1; b[0].lo == range_lo            */
	otemp_bucket b[];
} otemp_layout;

/* The bucket holding key (its index), or -1 outside the layout's range. */
long otemp_bucket_of(const otemp_layout *l, uint64_t key);

/* What the aggregator tells one shard.  Immutable once published. */
typedef struct otemp_plan {
	struct rcu_head rcu;
	uint64_t seq;                /* per shard, ascending from 1          */
	uint64_t layout_gen;         /* valid for this layout only           */
	uint32_t n;
	uint64_t share;              /* resident bytes the plan's wanted
					buckets may use (0 without a budget) */
	uint64_t hot, warm, cold;    /* keys, by temperature class           */
	float *temp;                 /* [n], in [0, 1]                       */
	uint32_t *order;             /* [n]: bucket indexes, coldest first   */
	uint8_t *want;               /* [n]: 1 = keep resident               */
} otemp_plan;

void otemp_plan_free(otemp_plan *p);

typedef struct otemp_params {
	unsigned sample_every;       /* >= 1                                 */
	double freq_weight, hot, cold;
	uint64_t budget;             /* 0: none                              */
} otemp_params;

/* A thread's record for one database: its read counts and sampling
 * state.  One cache line or more, written only by its thread (the counts
 * atomically, relaxed, so stats may read them). */
typedef struct otemp_thread {
	_Atomic uint64_t reads_memory, reads_storage;
	uint32_t countdown;          /* reads until the next sample          */
	uint32_t dropped;            /* samples dropped, not yet reported    */
	uint64_t rng;
	struct otemp_buf *buf;       /* being filled; NULL: none to be had   */
	pthread_t owner;
	struct otemp_thread *next;   /* the database's list (immutable once
					pushed)                              */
} __attribute__((aligned(64))) otemp_thread;

typedef struct otemp otemp;

/* omen_open: create (tracking on) and start; otemp_stop before the
 * workers are joined is not needed: the aggregator only reads. */
int otemp_create(struct omen_db *db, const otemp_params *p, otemp **out);
int otemp_start(otemp *t);
/* omen_close, after the read-side grace period that follows `closing`:
 * stop and join the aggregator, then free everything (no reader holds a
 * thread record or a buffer any more). */
void otemp_destroy(otemp *t);

/* Slow paths of the read path below. */
otemp_thread *otemp_self_slow(otemp *t);
void otemp_sample(otemp *t, otemp_thread *me, unsigned shard, uint64_t key);

/* The per-thread cache of (database serial, record). */
#define OTEMP_TLS_WAYS 4
struct otemp_tls {
	uint64_t serial;
	otemp_thread *rec;
};
extern __thread struct otemp_tls otemp_tls[OTEMP_TLS_WAYS]
	__attribute__((tls_model("initial-exec")));

uint64_t otemp_serial(const otemp *t);
/* call_rcu callback freeing a replaced plan. */
void otemp_plan_rcu_free(struct rcu_head *h);

/* The calling thread's record (NULL when out of memory). */
static inline otemp_thread *otemp_self(otemp *t, uint64_t serial)
{
	for (unsigned i = 0; i < OTEMP_TLS_WAYS; i++)
		if (otemp_tls[i].serial == serial)
			return otemp_tls[i].rec;
	return otemp_self_slow(t);
}

/*
 * Record a get of key in shard, served from memory or not.  Inside the
 * caller's read-side section (omen_close's grace period then covers it).
 * The count is a relaxed load and store of the thread's own word: no
 * read-modify-write is needed with one writer.
 */
static inline void otemp_read(otemp *t, uint64_t serial, unsigned shard, uint64_t key,
			      bool memory)
{
	otemp_thread *me = otemp_self(t, serial);
	if (!me)
		return;
	_Atomic uint64_t *c = memory ? &me->reads_memory : &me->reads_storage;
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	if (--me->countdown == 0)
		otemp_sample(t, me, shard, key);
}

/* Stats: reads counted, samples folded, samples dropped. */
void otemp_counts(otemp *t, uint64_t *reads_memory, uint64_t *reads_storage,
		  uint64_t *samples, uint64_t *dropped);

#endif
