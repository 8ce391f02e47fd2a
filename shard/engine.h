/*
 * shard/engine.h — the database handle and its shards: the structures
 * behind omendb.h, shared by shard/db.c (the API: routing, lifecycle,
 * reads, iterators) and shard/worker.c (each shard's writer thread).
 * Internal: not installed.
 *
 * Who touches what
 *   application threads  read the root model, the trees (alex reader API),
 *                        value blobs, under an RCU read-side section; push
 *                        records to queues; wait on a shard's oack.
 *   shard worker i       the only writer of shard i's tree and family,
 *                        except during bootstrap (below); frees replaced
 *                        blobs through call_rcu.
 *   omen_open/close      create and destroy everything, with the workers
 *                        not yet started / already joined.
 *
 * Payloads: the tree maps a key to a tagged word (see shard/value.h).
 *
 * Rebuild (opening a database): omen_open returns once the metadata is
 * checked and the families are open; each worker then loads its family
 * into its tree (tree_state OTREE_BUILDING).  Until the worker stores
 * OTREE_READY (release), readers do not touch the tree and read the
 * family instead: it holds every acknowledged write, because nothing is
 * acknowledged before it is committed, and the worker commits nothing
 * while it rebuilds (records queue meanwhile).  A rebuild that fails, or
 * that omen_close stops, leaves the shard OTREE_STORAGE for the rest of
 * the open: reads go to the family and the worker commits batches without
 * applying them to the (empty) tree.
 *
 * Bootstrap (a new multi-shard database): the root model routes every key
 * to shard 0 and the gate is closed: workers 1..n-1 wait at the gate.
 * Worker 0 applies batches to shard 0 until it holds BOOTSTRAP_SAMPLE
 * keys (or a batch brings that many): one key is no sample to take
 * boundaries from.  Then it takes the boundaries from those keys
 * (quantiles) and moves the keys that now belong to other shards: it
 * inserts them into their trees (still unreachable: the model does not
 * route there yet), commits puts into their families, a range delete in
 * family 0 and the layout record in one atomic write, publishes the new
 * model and waits a grace period.  After it no reader still routes by the
 * bootstrap model, and no producer is still pushing a record it routed by
 * it (producers route and push inside one read-side section); the moved
 * keys are dropped from tree 0.  Every record routed by the bootstrap
 * model is in worker 0's queue by then, and the queue's count covers
 * them: worker 0 pops that many and applies each record to whichever
 * shard the new model says, writing every shard's tree and family
 * itself: the other workers are at the gate and touch nothing.
 * Then it opens the gate.  So records routed to shard 0 by the bootstrap
 * model are applied before any record routed by the new model to another
 * shard: one thread's writes to one key keep their order across the
 * switch.
 *
 * Rebalancing: after a batch (or when idle), a worker whose shard holds
 * more than rebalance_factor times the mean key count moves keys to its
 * smaller neighbour, the same way: it takes db->moving (one move at a
 * time, so two workers never wait for each other), parks the neighbour's
 * worker at a batch boundary (an OCTRL_PARK record in its queue), moves
 * the keys beyond the new boundary (move_keys: target tree, one atomic
 * write of target puts + source range delete + layout, publish, grace
 * period, drop from the source tree), forwards what its own queue holds
 * from before the switch (its count, as above), then releases the
 * neighbour.  Records routed to the neighbour by the new model wait in
 * its queue until then.
 */
#ifndef OMEN_SHARD_ENGINE_H
#define OMEN_SHARD_ENGINE_H

#include <ck_sequence.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/alex.h"
#include "core/root_model.h"
#include "ingest/batch_sort.h"
#include "ingest/queue.h"
#include "ingest/record.h"
#include "shard/store.h"
#include "shard/temperature.h"

#define OMEN_CACHE_LINE 64

/* Records a worker pops at most per batch (a multi record counts once). */
#define OSHARD_BATCH_MAX 4096

/* oshard.tree_state */
enum {
	OTREE_BUILDING = 0, /* the worker is loading the family into the tree */
	OTREE_READY,        /* the tree holds every committed key            */
	OTREE_STORAGE,      /* rebuild failed or stopped: the family only    */
};

/* Worker commands (orec.ctrl of OREC_CTRL records). */
enum oshard_ctrl {
	OCTRL_EVICT_ALL = 1, /* make every value non-resident (test hook)                  */
	OCTRL_PAUSE,         /* sleep until db->test_release is set (test hook)            */
	OCTRL_VERIFY,        /* omen_verify: check the tree against the family          */
	OCTRL_PARK,          /* a neighbour's move: wait until it releases this worker  */
};

/* One operation of a worker batch. */
struct wop {
	uint64_t key;
	oblob *blob;         /* NULL: delete                              */
	uint32_t rec;        /* index of its record in the popped batch   */
	uint32_t keep;       /* survived dedupe                           */
};

struct omen_db;

typedef struct oshard {
	/* Read-mostly, by every thread. */
	struct omen_db *db;
	unsigned id;
	alex_tree *tree;
	oq_queue *q;
	/* OTREE_*: written by the worker (release), read by readers (acquire)
	 * before they touch the tree. */
	atomic_int tree_state;

	/* Worker-owned scratch, reused batch after batch. */
	pthread_t thread;
	bool started;
	int rebuild_status;       /* the rebuild's result (worker, before tree_state) */
	uint64_t rebuild_ns;      /* omen_open's start to tree_state set (ditto) */
	void **recs;
	struct wop *ops;
	size_t ops_cap;
	obs_entry *ent, *ent_scratch;
	size_t ent_cap, ent_scratch_cap;
	alex_op *aops;
	size_t aops_cap;
	oblob **garbage;
	size_t garbage_n, garbage_cap;
	ostore_batch *wb;

	/* Residency (shard/residency.c).  layout: written by the worker
	 * (RCU-published), read by the aggregator and stats.  plan: written
	 * by the aggregator (RCU-published), read by the worker and stats. */
	otemp_layout *layout;
	otemp_plan *plan;
	/* The worker's: the family's flush generation (see residency.c), and
	 * its copy of the latest plan it took. */
	uint32_t memgen;
	uint64_t plan_seq;        /* 0: none taken for the current layout */
	uint64_t rshare;
	uint32_t *rorder;
	uint8_t *rwant;
	size_t rorder_cap, rwant_cap;

	/* Written by the worker, read by stats (relaxed). */
	_Atomic uint64_t value_bytes;
	_Atomic uint64_t resident_keys, evictions, readmissions;
	_Atomic uint64_t loaded;  /* keys loaded so far by the rebuild */
	_Atomic uint64_t nkeys;   /* the tree's size, for rebalancing (a hint) */
	/* A rebalancing move holds this worker: 1 while it waits (set by this
	 * worker, release), back to 0 by the moving worker (futex word). */
	atomic_uint parked;
	_Atomic uint64_t batches, records;
	_Atomic int failed;       /* sticky: the tree missed a committed batch */
	_Atomic int async_error;  /* an ingested record failed since the last flush */

	/* The last OCTRL_VERIFY's findings: written by the worker before it
	 * acknowledges the command, read by the omen_verify caller after. */
	uint64_t verify_keys, verify_problems;
	int verify_status;        /* OMEN_OK, OMEN_ECORRUPT or a storage error */
	char verify_msg[256];     /* the first problem                     */

	/* Waiters' side, on its own line: written by every acknowledged batch. */
	oack ack __attribute__((aligned(OMEN_CACHE_LINE)));
} oshard;

struct omen_db {
	/* Read by every call: never written while open except root (on a
	 * layout change) and closing (once). */
	orm *root;                /* RCU-published: PUBLISH / DEREF        */
	oshard **shards;
	unsigned nshards;
	atomic_int closing;
	int durability;
	int nonblocking;
	ostore *store;
	char *path;
	bool bootstrapping;       /* worker 0 only, after open             */
	double rebalance_factor;  /* <= 0: no rebalancing                  */
	uint64_t budget;          /* memory_budget, 0 = none               */
	otemp *temp;              /* the aggregator; NULL: no tracking     */
	uint64_t temp_serial;     /* its serial (the thread record cache key) */
	atomic_flag moving;       /* one rebalancing move at a time        */
	_Atomic uint64_t moves, keys_moved, move_ns;
	uint64_t open_start_ns;   /* CLOCK_MONOTONIC when omen_open began   */
	uint64_t open_ns;         /* how long omen_open took               */

	/* Lifecycle: iterator registration and close. */
	pthread_mutex_t life;
	unsigned iters;

	/* Odd while a move of keys between families is under way, from
	 * before its commit until after the new model is published (and
	 * ended before the grace period that follows, which readers spinning
	 * here inside a read-side section would otherwise block).  Readers
	 * that read a family outside the read-side section route under it
	 * and retry when it moved: the commit and the publication are two
	 * steps, and a read in between would miss the moved keys. */
	ck_sequence_t layout_seq __attribute__((aligned(OMEN_CACHE_LINE)));

	/* The bootstrap gate: 0 closed, 1 open (futex word). */
	atomic_uint gate __attribute__((aligned(OMEN_CACHE_LINE)));
	atomic_uint ready;        /* workers done with their rebuild (futex) */
	atomic_uint test_release; /* OCTRL_PAUSE waits for it             */
	atomic_uint test_paused;  /* workers inside OCTRL_PAUSE           */

	/* Calls that may leave the read-side section while still using the
	 * handle (waiting for an acknowledgement or for queue room, reading
	 * storage): close waits for it to drop to 0.  Slow paths only: gets
	 * and non-blocking ingest never touch it. */
	atomic_long users __attribute__((aligned(OMEN_CACHE_LINE)));
};

/* Publish / read an RCU-protected pointer (C11 release store and consume
 * load: see core/alex.c for why not rcu_assign_pointer). */
#define ODB_PUBLISH(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define ODB_DEREF(p) __atomic_load_n((p), __ATOMIC_CONSUME)

/* shard/worker.c */
int oshard_create(struct omen_db *db, unsigned id, unsigned queue_cap, oshard **out);
void oshard_destroy(oshard *sh);    /* worker joined; frees resident blobs */
int oshard_start(oshard *sh);       /* start the worker thread (it rebuilds first) */
void *oshard_main(void *arg);
/* A blob the tree no longer points to once the batch applies: freed after
 * the grace period that oshard_garbage_retire starts (the worker's). */
int oshard_garbage_add(oshard *sh, oblob *b);
void oshard_garbage_retire(oshard *sh);

/* The shard's tree may be read (acquire: pairs with the worker's release
 * store once the tree is complete). */
static inline bool oshard_tree_ready(const oshard *sh)
{
	return atomic_load_explicit(&sh->tree_state, memory_order_acquire) == OTREE_READY;
}

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t odb_now_ns(void);

#endif
