/*
 * tests/lib/rwtorture.h — "one writer against N lock-free readers" torture
 * driver for the ALEX index (core/alex.h, "Concurrency contract"), shared by
 * tests/test_alex_concurrent.c (bounded runs under make check) and
 * stress/stress_readers.c (timed runs at scale).
 *
 * The key space of a run is split in two disjoint sets:
 *
 *   stable keys    bulk loaded, never written again.  Their payload is
 *                  rwt_payload(key, 0), so a reader knows exactly what it
 *                  must find, at any instant, for any of them.
 *   volatile keys  inserted, updated and deleted by the writer: single
 *                  inserts and deletes, sorted alex_apply_batch runs, and
 *                  keys below and above the stable range (each further out
 *                  than the last) that widen the root.  Most of them lie
 *                  between stable keys in key order, so the leaves that
 *                  hold stable keys are the ones edited, expanded and split.
 *
 * Every payload written for key k is rwt_payload(k, gen): the high bits are a
 * hash of k, the low RWT_GEN_BITS bits a generation.  A reader that gets
 * (k, v) checks rwt_payload_ok(k, v), which a payload torn between two
 * updates, or one belonging to another key (a slot read while it moved),
 * fails with near certainty.
 *
 * Readers (N long-lived threads) loop until the writer is done.  Each
 * iteration is one read-side section (orcu_read_lock) and checks, against
 * the stable set only (the one thing that is certain under a running
 * writer):
 *   RWT_LOOKUP_STABLE  a stable key is found with its exact payload;
 *   RWT_LOOKUP_OTHER   a volatile or random key, if found, has a payload
 *                      written for it (a stable one: found, exact);
 *   RWT_LOWER_BOUND    the result is >= the probe, its payload was written
 *                      for it, and no stable key lies in [probe, result);
 *                      no result means no stable key >= probe;
 *   RWT_SEEK           seek + up to seek_steps nexts: strictly ascending,
 *                      >= the seek key, payloads right, and every stable key
 *                      in [seek key, last key returned] returned;
 *   RWT_FULL_SCAN      now and then the whole tree, in chunks of
 *                      RWT_SCAN_CHUNK keys, one read-side section each
 *                      (an iterator lives in one section: the next chunk
 *                      seeks again at last + 1): every stable key, in order,
 *                      once;
 *   RWT_SIZE           every 64 iterations alex_size and alex_memory_bytes
 *                      (every 1024, alex_get_stats too): never fewer keys
 *                      than the stable ones, never more than all keys.
 * Short-lived threads (cfg.ephemeral_threads) each make one read-side
 * section as the first RCU use of their life and exit (RWT_EPHEMERAL): RCU
 * registration must be lazy and undone at thread exit, or later grace
 * periods (the writer's reclamation, alex_destroy) would hang.
 *
 * The writer checks its own results as it goes (return codes against its
 * own presence map, alex_writer_lookup after every write, batch counts),
 * calls alex_check every check_every steps, and keeps writing after its
 * budget until every reader has done min_reader_iters iterations and one
 * full scan (so a run cannot pass because its readers never ran).  After
 * the threads are joined the tree is checked once more: alex_check, and a
 * full iteration equal to the stable keys plus the volatile keys the
 * writer left present, with their last payloads.
 *
 * Thread-safety of the driver itself: the key arrays are written before the
 * threads start and only read afterwards; every counter is private to its
 * thread and summed after pthread_join; the start is a pthread barrier and
 * the stop a C11 atomic flag, so ThreadSanitizer sees every ordering.
 *
 * Failures print "# FAIL <name> seed=<seed> <thread>: ..." lines (at most
 * max_print per run; later ones are counted only).  The same seed and
 * configuration rebuild the same key sets and the same writer stream; the
 * interleaving with the readers, of course, differs.
 */
#ifndef OMEN_TESTS_RWTORTURE_H
#define OMEN_TESTS_RWTORTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/alex.h"
#include "tests/lib/datasets.h"

/* Low payload bits that carry the writer's generation. */
#define RWT_GEN_BITS 20
#define RWT_GEN_MASK ((UINT64_C(1) << RWT_GEN_BITS) - 1)

/* Keys per read-side section of a full scan. */
#define RWT_SCAN_CHUNK 10000

/* The payload written for key in generation gen (stable keys: gen 0). */
uint64_t rwt_payload(uint64_t key, uint64_t gen);
/* True when v is a payload written for key, in any generation. */
bool rwt_payload_ok(uint64_t key, uint64_t v);

enum rwt_kind {
	RWT_LOOKUP_STABLE = 0,
	RWT_LOOKUP_OTHER,
	RWT_LOWER_BOUND,
	RWT_SEEK,
	RWT_FULL_SCAN,
	RWT_SIZE,
	RWT_EPHEMERAL,
	RWT_NKINDS
};

const char *rwt_kind_name(enum rwt_kind k);

typedef struct rwt_config {
	const char *name;           /* label of every output line                      */
	uint64_t seed;              /* key sets, writer and reader streams              */
	enum ds_dist dist;          /* distribution of the stable and volatile keys     */
	size_t stable_keys;         /* about this many (after dedup)                    */
	size_t volatile_keys;       /* between the stable ones; 0: 4 per stable key     */
	alex_config alex;           /* tree limits (rwt_config_init: the defaults)      */
	unsigned readers;           /* long-lived reader threads, >= 1                  */
	uint64_t writer_steps;      /* budget: writer steps (a batch is one step)       */
	double seconds;             /* budget: wall time; 0 = none (one must be set)    */
	uint64_t min_reader_iters;  /* the writer goes on until each reader did this    */
	double linger_seconds;      /* ... but not longer than this past its budget     */
	unsigned max_batch;         /* ops per alex_apply_batch run, 1..max_batch       */
	uint64_t check_every;       /* writer steps between alex_check; 0: by size      */
	uint64_t full_scan_every;   /* reader iterations between full scans; 0: by size */
	unsigned seek_steps;        /* nexts after a short seek, at most                */
	unsigned ephemeral_threads; /* short-lived reader threads during the run        */
	unsigned max_print;         /* failure lines printed per run                    */
	FILE *out;                  /* failure lines; NULL: stdout                      */
} rwt_config;

/* Defaults: uniform keys, 20,000 stable, 4 readers, default alex limits,
 * 100,000 writer steps, 1,000 reader iterations, batches of up to 64 ops,
 * 200-step seeks, no ephemeral threads, 10 printed failures. */
void rwt_config_init(rwt_config *c);

typedef struct rwt_result {
	/* Readers: checks made and failures found, by kind. */
	uint64_t checks[RWT_NKINDS];
	uint64_t failures[RWT_NKINDS];
	uint64_t reader_iters;      /* iterations of the long-lived readers             */
	uint64_t sections;          /* read-side sections, full-scan chunks included    */
	uint64_t other_found;       /* RWT_LOOKUP_OTHER lookups that found the key      */
	uint64_t keys_iterated;     /* keys returned by alex_iter_next                  */
	uint64_t ephemeral_done;    /* short-lived threads that ran and exited          */
	bool grace_after_ephemeral; /* orcu_synchronize returned after they exited      */
	bool starved;               /* linger_seconds ran out before the readers' quota */

	/* Writer. */
	uint64_t writer_steps, inserts, deletes, batches, batch_ops, outer_ops;
	uint64_t writer_checks;     /* alex_check calls while readers ran              */
	uint64_t writer_failures;   /* wrong results, alex_check or size failures      */

	/* After the threads are joined. */
	uint64_t final_failures;    /* alex_check, stable keys, exact final contents   */
	uint64_t final_keys;

	/* The key sets and the tree. */
	size_t stable_keys, volatile_keys, outer_keys;
	alex_stats stats;           /* at the end, deferred frees finished             */
	double seconds;             /* from the start barrier to the last join         */
} rwt_result;

/*
 * Run one torture round with configuration c.  Returns 0 when every check
 * passed, 1 when some failed (r says which; the first ones were printed),
 * -EINVAL for a configuration without a budget or readers, or the negative
 * errno of alex_create / alex_bulk_load when the tree could not be built.  Out of memory and thread-creation failures in the
 * driver itself abort (tests/lib/die.h).
 */
int rwt_run(const rwt_config *c, rwt_result *r);

/* Reader failures of every kind. */
uint64_t rwt_reader_failures(const rwt_result *r);
/* Every failure: readers, writer, final checks. */
uint64_t rwt_total_failures(const rwt_result *r);

/* A few summary lines (checks, failures, writer work, tree shape and
 * structural counters), each starting with prefix ("# " inside TAP). */
void rwt_print_summary(FILE *out, const char *prefix, const rwt_config *c,
                       const rwt_result *r);

#endif
