/*
 * stress/stress_crash.c — kill -9 a writer process at random moments,
 * reopen the database and check every write: the shape of WiredTiger's
 * test/csuite/random_abort, through the public API only (<omendb.h>,
 * libomendb.so).  It tests the durability contract (DESIGN.md in the
 * project's shared notes, "Durability contract"): after a crash every
 * acknowledged write is present on reopen and nothing else appears.
 *
 * One run is a sequence of cycles over one database directory, whose
 * contents accumulate from cycle to cycle.  A cycle:
 *
 *  1. The parent draws the cycle's plan from the cycle seed: durability
 *     (WAL or SYNC), the shard count when the database is created (1, 2 or
 *     4) and whether to pass it or 0 when it exists, sometimes a small
 *     queue_depth and non-blocking ingest, and how the cycle ends (a
 *     SIGKILL after a random delay, a SIGKILL shortly after the child
 *     starts omen_close, or a clean close), and sometimes counts the
 *     delay from the spawn rather than from the open.  The first cycle,
 *     and about one in 50 later ones (one in 6 with --smoke), start from
 *     an empty directory, so that kills also land while a new multi-shard
 *     database sets its shard boundaries (once shard 0 holds 4096 keys:
 *     the key universe has 12288 and writes reach that many in a cycle or
 *     two) and while it is created.
 *     One cycle in 4 on a multi-shard database is skewed (one in 2 with
 *     --smoke; one more in 4 while its boundaries are not set), so that the rebalancer moves keys
 *     between shards (a shard holding more than 1.5 times the mean key
 *     count, and at least 2048, moves keys to its smaller neighbour:
 *     "Rebalancing" in shard/engine.h): its writers sweep the key space
 *     (skew_pick).  Half the skewed cycles that would kill at a delay
 *     after the open aim the kill at a move instead: a random 0 to 1.5 ms
 *     after the child sees one starting (MOVING below).
 *  2. It starts the writer as a separate process: fork, then execv of
 *     /proc/self/exe with --child and the plan.  Not a bare fork: the
 *     parent opens the database in-process between cycles, and the
 *     background threads of RocksDB and liburcu it leaves behind do not
 *     survive a fork; an exec'd child starts clean.  The child dies with
 *     the parent (PR_SET_PDEATHSIG).
 *  3. The child opens the database and starts WRITERS threads.  Writer w
 *     alone writes the keys of slots s with s % WRITERS == w (slots map to
 *     keys spread over the whole key space, dense runs and both ends of it
 *     included), through every write path: omen_put, omen_delete,
 *     omen_write of a few records (sometimes a key twice: the last wins),
 *     a run of omen_ingest and a few omen_ingest_batch (now and then one
 *     larger than 4096 records), each run followed by omen_flush.  Each
 *     record has a version, (cycle + 1) << 32 | n with n counting the
 *     writer's records: ascending per writer and over the whole run.  The
 *     value of (key, version) is a function of them (value_of), 0 to 200
 *     bytes, those of 16 bytes and more starting with the key and the
 *     version: the parent tells exactly which version it finds.
 *     In a skewed cycle each writer instead sweeps its slots in ascending
 *     key order, putting keys ahead and deleting them again a window
 *     (1536 to 2048 keys per writer) behind: a window of live keys
 *     sliding up the key space, timestamps kept for a while.  The shards
 *     it has left empty, the one it is in fills, and keys move.  While a
 *     new database's boundaries are not set the sweep only puts, from the
 *     lowest keys: the boundaries fall there, and the sweep then piles
 *     keys into the last shard.
 *  4. The child reports through a pipe in fixed 32-byte messages.  Each
 *     write() carries whole messages and at most PIPE_BUF bytes, so it is
 *     atomic: messages of several threads interleave but never mix.
 *       INTENT  one per record, written BEFORE the API call that carries
 *               it starts: op, call, key slot, version, put or delete;
 *       ACK     one per op, after the op's calls returned OMEN_OK (for an
 *               ingest run: after its omen_flush returned OMEN_OK): every
 *               record of that op is acknowledged;
 *       OPENED, CLOSING (before omen_close), CLOSED (omen_close returned
 *               OMEN_OK: every record queued before is acknowledged),
 *       ERROR   an API call failed (the child also prints why, and exits);
 *     and, on a multi-shard database, from the child's main thread, which
 *     polls the shards' stats every 0.25 ms (child_monitor):
 *       LAYOUT  each layout (every shard's key range) it sees, and whether
 *               a move published it;
 *       MOVING  a move seen starting: a shard's key count jumped while its
 *               worker committed nothing (a mover inserting into the
 *               neighbour it parked, before committing; a heuristic);
 *       MOVES   omen_get_stats' move count rose (a move ended).
 *     Invariant the parent relies on: a writer has at most one open
 *     (unacknowledged) op, and a key's records in flight all belong to the
 *     open op of the key's writer.
 *  5. The parent reads the pipe all the time (the child blocks on a full
 *     pipe), keeps per key its acknowledged state `cur` and the records
 *     in flight after it `pend`, and at the plan's moment sends SIGKILL
 *     (a child that never gets there is killed after HANG_SEC anyway, and
 *     counts as a failure).  It reaps the child, drains the pipe to EOF,
 *     then opens the database itself (failing to open is a failure) and
 *     checks every key:
 *       the value found (or its absence) must be cur, or one of the
 *       records of pend: LOST when an acknowledged state is gone (absent,
 *       or an older version back), PHANTOM when the value is no version
 *       ever intended for that key;
 *     a single-shard database must also show each in-flight omen_write or
 *     omen_ingest_batch whole or not at all (TORN otherwise: the contract
 *     makes a batch atomic per shard); and a full scan must return keys in
 *     strictly ascending order (so each once), none outside the universe,
 *     exactly the keys found present, with the same values.  Then the
 *     model takes what was found (in-flight records resolved), and the
 *     parent closes the database.  After a clean close nothing may be in
 *     flight.
 *     Where a kill landed relative to moves: after one (the cycle reported
 *     a move), and provably inside one after its commit when the layout
 *     that survived is not the last one the child saw (committed, not yet
 *     seen published) or the child saw a move's layout but not yet the
 *     move counted (grace period, drop from the source's index,
 *     forwarding of its queue), either to within a poll of the child.
 *     The summary lines count moves, the cycles with moves and those
 *     kills.
 *
 * Nothing depends on when omen_open returns relative to the rebuild of
 * the in-memory indexes: the parent only reads through the API.  No timing
 * is asserted; delays only choose the kill moment.
 *
 * Seeds: cycle 0's seed is the run seed, cycle i + 1's is mix64(cycle i's).
 * A failing cycle prints its seed and the mismatches, the commands to
 * replay it alone from an empty database and to replay the whole run up
 * to it, keeps the directory, and the exit status is 1.  The kill moment
 * relative to the writers' progress is not reproducible (thread and
 * process scheduling): rerun a failing seed a few times.
 *
 * --smoke runs 20 cycles of at most 80 ms of writes (tests/crash_smoke.sh);
 * the default is 500 cycles of at most 300 ms (`make stress`).
 * Kills before the child's omen_open returned land in exec, in RocksDB's
 * recovery or in the rebuild of an existing database; while the database
 * is new, they land in its creation.  Before omen_open created a database
 * atomically (in a sibling directory, renamed into place), a kill there
 * could leave a directory that no longer opened (no CURRENT file; a
 * MANIFEST naming only some of the column families; fewer shards than
 * asked for): this test found it.  --no-create-kills leaves them out.
 *
 *   stress_crash [--smoke] [--seed S] [--cycles N] [--dir D] [--keep]
 *                [--verbose] [--no-create-kills]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <omendb.h>

#include "tests/lib/apitest.h"
#include "tests/lib/die.h"
#include "tests/lib/util.h"

#define WRITERS 3                  /* writer threads in the child          */
#define KEYS_PER_WRITER 4096       /* slots per writer                     */
#define NKEYS (WRITERS * KEYS_PER_WRITER)
#define VAL_MAX 200                /* longest value written                */
#define BIG_BATCH 4096             /* a "large" ingest_batch: at least this */
#define HANG_SEC 120.0             /* a child not done by then is hung     */
#define EOF_SEC 60.0               /* the pipe must close this soon after a kill */
#define CHILD_MAX_SEC 900.0        /* a child never killed gives up        */
#define REPORT_MAX 20              /* mismatch lines printed per cycle     */

/* ------------------------------------------------------------ hashing */

#define GOLDEN UINT64_C(0x9e3779b97f4a7c15)

/* splitmix64's finalizer: a bijection of 64-bit values. */
static uint64_t fmix64(uint64_t x)
{
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

static uint64_t mix64(uint64_t x)
{
	return fmix64(x + GOLDEN);
}

/* splitmix64: the generator of every random choice. */
static uint64_t rng_next(uint64_t *s)
{
	*s += GOLDEN;
	return fmix64(*s);
}

static uint64_t rng_below(uint64_t *s, uint64_t n)
{
	return rng_next(s) % n;
}

/* Uniform in [0, hi). */
static double rng_unit(uint64_t *s, double hi)
{
	return (double)(rng_next(s) >> 11) * 0x1p-53 * hi;
}

/* -------------------------------------------------------- keys, values */

/*
 * The key of a slot.  Slots 0 and 1 are the ends of the key space; one in
 * four of the others sits in a dense run (consecutive slots, consecutive
 * keys: shard boundaries fall inside runs); the rest are spread by a
 * bijection.  key_table_init checks that no two slots share a key.
 */
static uint64_t slot_key(uint32_t slot)
{
	if (slot == 0)
		return 0;
	if (slot == 1)
		return UINT64_MAX;
	if (slot % 4 == 3)
		return UINT64_C(0x4000000000000000) + slot;
	return fmix64((uint64_t)slot ^ UINT64_C(0x5bd1e9955bd1e995));
}

/* The writer that owns a slot: it alone writes that key. */
static unsigned slot_writer(uint32_t slot)
{
	return slot % WRITERS;
}

/*
 * The value of version `version` of key into buf[VAL_MAX]; returns its
 * length.  A sixteenth of the values are empty, a sixteenth 1..15 bytes of
 * hash, the rest 16..VAL_MAX bytes: key and version (native byte order),
 * then filler derived from both.  Different versions of a key may share a
 * short value; the parent then cannot tell them apart, and need not (the
 * bytes are what the contract is about).
 */
static size_t value_of(uint64_t key, uint64_t version, uint8_t *buf)
{
	uint64_t h = mix64(key ^ mix64(version));
	size_t len, start = 0;

	switch (h & 15) {
	case 0:
		len = 0;
		break;
	case 1:
		len = 1 + (size_t)((h >> 8) % 15);
		break;
	default:
		len = 16 + (size_t)((h >> 8) % (VAL_MAX - 15));
		memcpy(buf, &key, 8);
		memcpy(buf + 8, &version, 8);
		start = 16;
		break;
	}
	for (size_t i = start; i < len; i++) {
		if ((i - start) % 8 == 0)
			h = mix64(h);
		buf[i] = (uint8_t)(h >> (8 * ((i - start) % 8)));
	}
	return len;
}

/* "cycle:n" of a version, for messages: the cycle that wrote it (1-based)
 * and the writer's record number. */
#define VFMT "%" PRIu64 ":%" PRIu64
#define VARG(v) (uint64_t)((v) >> 32), (uint64_t)((v) & UINT32_MAX)

/* A hash of a database's layout: every shard's key range, as
 * omen_get_shard_stats reports it (n shards). */
static uint64_t layout_hash(const omen_shard_stats *ss, unsigned n)
{
	uint64_t h = n;

	for (unsigned i = 0; i < n; i++)
		h = mix64(mix64(h ^ ss[i].lo) ^ ss[i].hi);
	return h;
}

/* ------------------------------------------------------------ messages */

enum msg_type {
	MSG_OPENED = 1, MSG_INTENT, MSG_ACK, MSG_CLOSING, MSG_CLOSED, MSG_ERROR,
	MSG_LAYOUT, MSG_MOVING, MSG_MOVES,
};
enum call_kind { CALL_PUT, CALL_DELETE, CALL_WRITE, CALL_INGEST, CALL_INGEST_BATCH };

static const char *const call_names[] = {
	"omen_put", "omen_delete", "omen_write", "omen_ingest", "omen_ingest_batch",
};

/* One message of the child to the parent.  Fixed size, so that a read of
 * any multiple of it ends on a message boundary. */
struct msg {
	uint8_t type;      /* enum msg_type                                    */
	uint8_t writer;    /* INTENT, ACK, ERROR: the writer (ERROR: WRITERS for
			      the child's main thread)                         */
	uint8_t kind;      /* INTENT: enum call_kind; LAYOUT: 1 if the
			      boundaries are set                               */
	uint8_t present;   /* INTENT: 1 a put, 0 a delete; LAYOUT: 1 if it
			      replaces a layout with boundaries set (a move)   */
	uint32_t slot;     /* INTENT: the key's slot; MOVING: the shard that
			      gained keys; MOVES: stats.move_us (saturated)    */
	uint64_t op;       /* INTENT, ACK: the op, ascending per writer;
			      LAYOUT: its layout_hash; MOVES: stats.moves      */
	uint64_t call;     /* INTENT: the API call carrying the record,
			      ascending per writer; ERROR: the negated code;
			      MOVES: stats.keys_moved                          */
	uint64_t version;  /* INTENT: the record's version; LAYOUT, MOVING,
			      MOVES: when the child saw it (CLOCK_MONOTONIC,
			      ns)                                              */
};

_Static_assert(sizeof(struct msg) == 32, "struct msg has no padding");
_Static_assert(PIPE_BUF % sizeof(struct msg) == 0, "whole messages per atomic write");

#define MSGS_PER_WRITE (PIPE_BUF / sizeof(struct msg))

/* =================================================================== */
/* The child: the writer process                                        */

static int g_fd = -1;             /* the pipe's write end; set before threads */
static omen_db *g_db;             /* set before the writers start             */
static atomic_bool g_stop;        /* writers stop at their next call (relaxed:
				     joining them is the synchronisation)      */

/* A skewed cycle's sweep (see skew_pick). */
static struct {
	bool on;
	uint32_t start;                   /* where each writer's sweep starts: an
					     index into its order[]             */
	uint32_t window;                  /* the live keys a writer keeps behind
					     its sweep (about)                  */
	uint32_t *order[WRITERS];         /* each writer's slots, ascending keys */
} g_skew;
static _Atomic uint64_t g_heads[WRITERS]; /* each writer's sweep head (relaxed:
				     keeps the sweeps together, a hint)        */
#define SWEEP_SLACK 256           /* how far a sweep may run ahead of another */
static atomic_bool g_booted;      /* the database's shard boundaries are set
				     (the main thread watches; relaxed: a hint
				     for skew_pick, nothing else)              */

/* Write n messages: chunks of at most PIPE_BUF bytes, each atomic.  A
 * blocking pipe write of at most PIPE_BUF bytes is all or nothing, so a
 * short write cannot happen; EINTR comes before any byte is written. */
static void send_msgs(const struct msg *m, size_t n)
{
	while (n > 0) {
		size_t k = n < MSGS_PER_WRITE ? n : MSGS_PER_WRITE;
		ssize_t w;

		do
			w = write(g_fd, m, k * sizeof(*m));
		while (w < 0 && errno == EINTR);
		if (w != (ssize_t)(k * sizeof(*m))) {
			/* The parent is gone (SIGPIPE is ignored under some
			 * harnesses): nobody is left to report to. */
			_exit(5);
		}
		m += k;
		n -= k;
	}
}

static void send_simple(enum msg_type type, unsigned writer, uint64_t op, uint64_t call)
{
	struct msg m = { .type = (uint8_t)type, .writer = (uint8_t)writer, .op = op, .call = call };

	send_msgs(&m, 1);
}

/* An API call failed: tell the parent first (it may kill us any moment),
 * then say why on stderr, and end the whole process. */
static _Noreturn void child_fail(unsigned writer, int rc, const char *what)
{
	char who[32] = "main thread";

	send_simple(MSG_ERROR, writer, 0, (uint64_t)(-(int64_t)rc));
	if (writer < WRITERS)
		snprintf(who, sizeof(who), "writer %u", writer);
	fprintf(stderr, "stress_crash child (%s): %s: %s (%s)\n", who, what, omen_strerror(rc),
	        omen_errmsg());
	_exit(3);
}

struct writer {
	unsigned id;
	uint64_t rng;
	uint64_t version_base;  /* (cycle + 1) << 32                  */
	uint64_t n;             /* records written: the version's low part */
	uint64_t op, call;      /* the current op and call            */
	uint32_t cursor;        /* the next slot index of sequential picks */
	uint64_t head, tail;    /* skewed cycles: the sweep's put and delete
				   positions (g_skew.order indexes, unwrapped) */
	omen_batch *batch;
	struct msg *intents;    /* unsent INTENTs of the current call */
	size_t nintents, cap;
	uint32_t *picked;       /* the current batch's slots (repeats) */
	pthread_t thread;
};

/* A key of this writer: half the time the next one in order (so a run
 * writes thousands of distinct keys, enough for a new multi-shard
 * database to set its boundaries), else any. */
static uint32_t pick_slot(struct writer *w)
{
	uint32_t i;

	if (rng_below(&w->rng, 2) == 0)
		i = w->cursor++ % KEYS_PER_WRITER;
	else
		i = (uint32_t)rng_below(&w->rng, KEYS_PER_WRITER);
	return i * WRITERS + w->id;
}

/*
 * A skewed cycle's pick (plan.skew): each writer sweeps its slots in
 * ascending key order from g_skew.start (wrapping), putting the key at
 * its head and deleting, behind it, the key at its tail, so that about
 * g_skew.window of its keys stay live: a window of keys that slides up
 * the key space, the shape of timestamps kept for a while.  The tail
 * starts ahead of the window (see child_main): the sweep first deletes
 * the keys outside it.  The shards the window has left are empty, the
 * one it is in fills, and the rebalancer moves keys (a shard needs 2048
 * keys and 1.5 times the mean); as the window slides on, again.  Until
 * the database has its shard boundaries (a new one takes them once shard
 * 0 holds 4096 keys) the sweep only puts, from the lowest keys (the
 * parent passes start 0): the boundaries fall in the low part of the key
 * space and the sweep then piles keys into the last shard.  *present says
 * whether the record is a put; puts_only: omen_ingest, which has no
 * deletes.
 */
static uint32_t skew_pick(struct writer *w, bool puts_only, bool *present)
{
	uint64_t live = w->head - w->tail, slowest = w->head, i;
	bool put;

	for (unsigned o = 0; o < WRITERS; o++) {
		uint64_t h = atomic_load_explicit(&g_heads[o], memory_order_relaxed);

		if (h < slowest)
			slowest = h;
	}
	if (live > 0 && w->head > slowest + SWEEP_SLACK) {
		/* Ahead of another writer's sweep (a large batch, a stalled
		 * thread): wait for it, writing a live key again, so that
		 * the three sweeps stay one window. */
		*present = true;
		i = w->tail + rng_below(&w->rng, live < KEYS_PER_WRITER ? live : KEYS_PER_WRITER);
		return g_skew.order[w->id][(g_skew.start + i) % KEYS_PER_WRITER];
	}
	if (puts_only || !atomic_load_explicit(&g_booted, memory_order_relaxed))
		put = true;
	else if (live >= g_skew.window)
		put = false;
	else if (live < g_skew.window / 2)
		put = true;
	else
		put = rng_below(&w->rng, 2) == 0;
	*present = put;
	if (put) {
		i = w->head++;
		atomic_store_explicit(&g_heads[w->id], w->head, memory_order_relaxed);
	} else {
		i = w->tail++;
	}
	return g_skew.order[w->id][(g_skew.start + i) % KEYS_PER_WRITER];
}

/* Queue the INTENT of one record of the current call; returns its
 * version. */
static uint64_t intent(struct writer *w, enum call_kind kind, uint32_t slot, bool present)
{
	uint64_t v = w->version_base | ++w->n;

	if (w->nintents == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 256;
		w->intents = xrealloc(w->intents, w->cap * sizeof(*w->intents));
	}
	w->intents[w->nintents++] = (struct msg){
		.type = MSG_INTENT, .writer = (uint8_t)w->id, .kind = (uint8_t)kind,
		.present = present, .slot = slot, .op = w->op, .call = w->call, .version = v,
	};
	return v;
}

/* Send the current call's INTENTs: right before the call itself. */
static void send_intents(struct writer *w)
{
	send_msgs(w->intents, w->nintents);
	w->nintents = 0;
}

static void check(struct writer *w, int rc, const char *what)
{
	if (rc != OMEN_OK)
		child_fail(w->id, rc, what);
}

static void op_put_or_delete(struct writer *w, bool present)
{
	uint8_t buf[VAL_MAX];
	uint32_t slot = g_skew.on ? skew_pick(w, false, &present) : pick_slot(w);
	uint64_t key = slot_key(slot);
	uint64_t v = intent(w, present ? CALL_PUT : CALL_DELETE, slot, present);

	send_intents(w);
	if (present)
		check(w, omen_put(g_db, key, buf, value_of(key, v, buf)), "omen_put");
	else
		check(w, omen_delete(g_db, key), "omen_delete");
	send_simple(MSG_ACK, w->id, w->op, 0);
}

/* Fill w->batch with n records of this writer (a tenth deletes, or as
 * skew_pick says; an eighth repeating a key already in the batch),
 * sending nothing yet. */
static void fill_batch(struct writer *w, enum call_kind kind, size_t n)
{
	uint8_t buf[VAL_MAX];

	omen_batch_clear(w->batch);
	w->picked = xrealloc(w->picked, n * sizeof(*w->picked));
	for (size_t i = 0; i < n; i++) {
		uint32_t slot;
		bool present;
		uint64_t key, v;
		int rc;

		if (i > 0 && rng_below(&w->rng, 8) == 0) {
			slot = w->picked[rng_below(&w->rng, i)];
			present = rng_below(&w->rng, 10) != 0;
		} else if (g_skew.on) {
			slot = skew_pick(w, false, &present);
		} else {
			slot = pick_slot(w);
			present = rng_below(&w->rng, 10) != 0;
		}
		key = slot_key(slot);
		v = intent(w, kind, slot, present);

		w->picked[i] = slot;
		if (present)
			rc = omen_batch_put(w->batch, key, buf, value_of(key, v, buf));
		else
			rc = omen_batch_delete(w->batch, key);
		if (rc != OMEN_OK)
			child_fail(w->id, rc, "omen_batch_put/delete");
	}
}

/* OMEN_EAGAIN (non-blocking ingest, queue full) queued nothing: retry the
 * same call, yielding while the shard's worker drains its queue. */
static void backoff(unsigned tries)
{
	if (tries < 64) {
		sched_yield();
	} else {
		struct timespec ts = { 0, 50 * 1000 };

		nanosleep(&ts, NULL);
	}
}

/* omen_write of a database opened with nonblocking_ingest returns
 * OMEN_EAGAIN too (queue full, nothing queued), although the header lists
 * it for the ingest calls only: retried like them. */
static void op_write(struct writer *w)
{
	int rc;

	fill_batch(w, CALL_WRITE, 2 + (size_t)rng_below(&w->rng, 7));
	send_intents(w);
	for (unsigned t = 0; (rc = omen_write(g_db, w->batch)) == OMEN_EAGAIN; t++)
		backoff(t);
	check(w, rc, "omen_write");
	send_simple(MSG_ACK, w->id, w->op, 0);
}

/* A run of omen_ingest, then omen_flush.  When the child is told to stop
 * mid-run, the run stays unflushed: omen_close must drain it. */
static void op_ingest(struct writer *w)
{
	size_t n = 1 + (size_t)rng_below(&w->rng, 64);
	uint8_t buf[VAL_MAX];

	for (size_t i = 0; i < n; i++) {
		bool present;
		uint32_t slot = g_skew.on ? skew_pick(w, true, &present) : pick_slot(w);
		uint64_t key = slot_key(slot);
		uint64_t v;
		size_t len;
		int rc;

		if (atomic_load_explicit(&g_stop, memory_order_relaxed))
			return;
		w->call++;
		v = intent(w, CALL_INGEST, slot, true);
		len = value_of(key, v, buf);
		send_intents(w);
		for (unsigned t = 0; (rc = omen_ingest(g_db, key, buf, len)) == OMEN_EAGAIN; t++)
			backoff(t);
		check(w, rc, "omen_ingest");
	}
	check(w, omen_flush(g_db), "omen_flush");
	send_simple(MSG_ACK, w->id, w->op, 0);
}

/* A few omen_ingest_batch (rarely one of BIG_BATCH records or more: one
 * worker batch that alone brings a new database to its boundaries), then
 * omen_flush.  Stopping mid-run leaves it unflushed, as op_ingest. */
static void op_ingest_batch(struct writer *w)
{
	unsigned nb = 1 + (unsigned)rng_below(&w->rng, 4);

	for (unsigned b = 0; b < nb; b++) {
		size_t n = rng_below(&w->rng, 64) == 0 ?
		           BIG_BATCH + (size_t)rng_below(&w->rng, 2048) :
		           2 + (size_t)rng_below(&w->rng, 255);
		int rc;

		if (atomic_load_explicit(&g_stop, memory_order_relaxed))
			return;
		w->call++;
		fill_batch(w, CALL_INGEST_BATCH, n);
		send_intents(w);
		for (unsigned t = 0; (rc = omen_ingest_batch(g_db, w->batch)) == OMEN_EAGAIN; t++)
			backoff(t);
		check(w, rc, "omen_ingest_batch");
	}
	check(w, omen_flush(g_db), "omen_flush");
	send_simple(MSG_ACK, w->id, w->op, 0);
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;

	while (!atomic_load_explicit(&g_stop, memory_order_relaxed)) {
		unsigned r = (unsigned)rng_below(&w->rng, 16);

		w->op++;
		w->call++;
		if (r < 5)
			op_put_or_delete(w, true);
		else if (r < 7)
			op_put_or_delete(w, false);
		else if (r < 10)
			op_write(w);
		else if (r < 13)
			op_ingest(w);
		else
			op_ingest_batch(w);
	}
	return NULL;
}

static void sleep_sec(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* The child's options, as the parent passes them. */
struct child_args {
	const char *db;
	int fd;
	unsigned cycle;
	uint64_t seed;
	omen_options o;
	double close_after;     /* seconds after open; < 0: write until killed */
	pid_t parent;
	unsigned db_shards;     /* the database's shard count (o.shards may be 0) */
	bool skew;              /* a skewed cycle: skew_pick                 */
	uint32_t skew_start, skew_window;
};

static _Noreturn void child_usage(void)
{
	fprintf(stderr, "stress_crash --child: internal mode, started by stress_crash itself\n");
	exit(2);
}

static void parse_child_args(int argc, char **argv, struct child_args *a)
{
	memset(a, 0, sizeof(*a));
	a->fd = -1;
	omen_options_init(&a->o);
	for (int i = 2; i < argc; i++) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (v == NULL)
			child_usage();
		i++;
		if (strcmp(k, "--db") == 0)
			a->db = v;
		else if (strcmp(k, "--fd") == 0)
			a->fd = atoi(v);
		else if (strcmp(k, "--cycle") == 0)
			a->cycle = (unsigned)strtoul(v, NULL, 0);
		else if (strcmp(k, "--seed") == 0)
			a->seed = strtoull(v, NULL, 0);
		else if (strcmp(k, "--durability") == 0)
			a->o.durability = strcmp(v, "sync") == 0 ? OMEN_DURABLE_SYNC :
			                                           OMEN_DURABLE_WAL;
		else if (strcmp(k, "--shards") == 0)
			a->o.shards = (unsigned)strtoul(v, NULL, 0);
		else if (strcmp(k, "--queue-depth") == 0)
			a->o.queue_depth = (unsigned)strtoul(v, NULL, 0);
		else if (strcmp(k, "--nonblocking") == 0)
			a->o.nonblocking_ingest = atoi(v);
		else if (strcmp(k, "--close-after") == 0)
			a->close_after = strtod(v, NULL);
		else if (strcmp(k, "--parent") == 0)
			a->parent = (pid_t)atol(v);
		else if (strcmp(k, "--db-shards") == 0)
			a->db_shards = (unsigned)strtoul(v, NULL, 0);
		else if (strcmp(k, "--skew") == 0)
			a->skew = atoi(v) != 0;
		else if (strcmp(k, "--skew-start") == 0)
			a->skew_start = (uint32_t)strtoul(v, NULL, 0);
		else if (strcmp(k, "--skew-window") == 0)
			a->skew_window = (uint32_t)strtoul(v, NULL, 0);
		else
			child_usage();
	}
	if (a->db == NULL || a->fd < 0 || (a->skew && a->skew_window == 0))
		child_usage();
}

struct slot_key_pair {
	uint64_t key;
	uint32_t slot;
};

static int cmp_slot_key_pair(const void *a, const void *b)
{
	const struct slot_key_pair *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

/* g_skew for a skewed cycle: each writer's slots in ascending key order. */
static void skew_init(const struct child_args *a)
{
	struct slot_key_pair *all = xmalloc(NKEYS * sizeof(*all));
	size_t n[WRITERS] = { 0 };

	g_skew.on = true;
	g_skew.start = a->skew_start % KEYS_PER_WRITER;
	g_skew.window = a->skew_window;
	for (uint32_t s = 0; s < NKEYS; s++)
		all[s] = (struct slot_key_pair){ slot_key(s), s };
	qsort(all, NKEYS, sizeof(*all), cmp_slot_key_pair);
	for (unsigned w = 0; w < WRITERS; w++)
		g_skew.order[w] = xmalloc(KEYS_PER_WRITER * sizeof(uint32_t));
	for (size_t i = 0; i < NKEYS; i++) {
		unsigned w = slot_writer(all[i].slot);

		g_skew.order[w][n[w]++] = all[i].slot;
	}
	free(all);
}

/* The shard stats of every shard (n of them) into ss; fails the child if
 * a call fails. */
static void child_shard_stats(unsigned n, omen_shard_stats *ss)
{
	for (unsigned i = 0; i < n; i++) {
		int rc = omen_get_shard_stats(g_db, i, &ss[i]);

		if (rc != OMEN_OK)
			child_fail(WRITERS, rc, "omen_get_shard_stats");
	}
}

/*
 * The main thread of a multi-shard database's child, until `until`
 * (now_sec).  Every MONITOR_SEC it reads every shard's stats and
 *  - sets g_booted once the boundaries are set;
 *  - reports each layout it sees (MSG_LAYOUT: its layout_hash, whether
 *    it replaces a set layout, i.e. a move published it), the first one
 *    included;
 *  - reports a move seen starting (MSG_MOVING): a shard's key count rose
 *    by MOVING_KEYS or more while its worker committed no batch (its
 *    batches count unchanged).  Only another worker adds keys to a shard
 *    that way: a mover, into the neighbour it parked, once it has built
 *    the move's storage write and right before committing it (or a new
 *    database's bootstrap).  A heuristic, for aiming kills: a worker's
 *    own large batch seen between its apply and its count may pass too;
 *  - reads the move count (omen_get_stats, which waits for every index
 *    rebuild, so only once they are done; every STATS_SEC, and at every
 *    poll for MOVE_END_SEC after a layout change until the count rises)
 *    and reports each change (MSG_MOVES).  A move is counted once it has
 *    ended (after its grace period and the forwarding of its queue).
 * Reads come in this order, so the parent can tell where in a move the
 * child was: the layout, then the count.
 */
#define MONITOR_SEC 0.00025
#define STATS_SEC 0.005
#define MOVE_END_SEC 0.02
#define MOVING_KEYS 768

static void child_monitor(unsigned n, double until)
{
	omen_shard_stats *ss = xcalloc(n, sizeof(*ss));
	uint64_t *base_keys = xcalloc(n, sizeof(*base_keys));
	uint64_t *base_batches = xcalloc(n, sizeof(*base_batches));
	uint64_t layout = 0, moves = 0;
	bool first = true, layout_booted = false, rebuilt = false;
	double now, t_stats = 0, watch_until = 0;

	while ((now = now_sec()) < until) {
		bool booted;
		uint64_t h;

		if (!first)
			sleep_sec(until - now < MONITOR_SEC ? until - now : MONITOR_SEC);
		child_shard_stats(n, ss);
		now = now_sec();
		booted = ss[1].lo <= ss[1].hi;
		if (booted && !atomic_load_explicit(&g_booted, memory_order_relaxed))
			atomic_store_explicit(&g_booted, true, memory_order_relaxed);
		h = layout_hash(ss, n);
		if (first || h != layout) {
			struct msg m = {
				.type = MSG_LAYOUT, .present = !first && layout_booted,
				.kind = booted, .op = h, .version = (uint64_t)(now * 1e9),
			};

			send_msgs(&m, 1);
			if (!first)
				watch_until = now + MOVE_END_SEC;
			layout = h;
			layout_booted = booted;
		}
		first = false;
		if (!rebuilt) {
			rebuilt = true;
			for (unsigned i = 0; i < n; i++)
				rebuilt = rebuilt && !ss[i].rebuilding;
			for (unsigned i = 0; i < n && rebuilt; i++) {
				base_keys[i] = ss[i].keys;
				base_batches[i] = ss[i].batches;
			}
			if (!rebuilt)
				continue;
		}
		/* The base of a shard: its key count when its batch count last
		 * changed (or the count fell, or a jump was reported). */
		for (unsigned i = 0; i < n; i++) {
			bool still = ss[i].batches == base_batches[i];

			if (still && ss[i].keys >= base_keys[i] + MOVING_KEYS) {
				struct msg m = {
					.type = MSG_MOVING, .slot = i,
					.version = (uint64_t)(now * 1e9),
				};

				send_msgs(&m, 1);
			} else if (still && ss[i].keys >= base_keys[i]) {
				continue;
			}
			base_keys[i] = ss[i].keys;
			base_batches[i] = ss[i].batches;
		}
		if (now < watch_until || now - t_stats >= STATS_SEC) {
			omen_stats st;
			int rc = omen_get_stats(g_db, &st);

			if (rc != OMEN_OK)
				child_fail(WRITERS, rc, "omen_get_stats");
			t_stats = now;
			if (st.moves != moves) {
				struct msg m = {
					.type = MSG_MOVES, .op = st.moves, .call = st.keys_moved,
					.slot = st.move_us > UINT32_MAX ? UINT32_MAX :
					                                  (uint32_t)st.move_us,
					.version = (uint64_t)(now_sec() * 1e9),
				};

				send_msgs(&m, 1);
				moves = st.moves;
				watch_until = 0;
			}
		}
	}
	free(ss);
	free(base_keys);
	free(base_batches);
}

static int child_main(int argc, char **argv)
{
	struct child_args a;
	struct writer w[WRITERS];
	int rc;

	parse_child_args(argc, argv, &a);
	/* Set between fork and exec already (it survives exec); checked again
	 * here in case the parent died before that prctl. */
	if (a.parent != 0 && getppid() != a.parent)
		_exit(6);
	g_fd = a.fd;
	rc = omen_open(a.db, &a.o, &g_db);
	if (rc != OMEN_OK)
		child_fail(WRITERS, rc, "omen_open");
	send_simple(MSG_OPENED, 0, 0, 0);
	if (a.skew)
		skew_init(&a);
	/* Before the writers start: skew_pick looks at it from the first
	 * record on. */
	if (a.db_shards >= 2) {
		omen_shard_stats ss[2];

		child_shard_stats(2, ss);
		atomic_store_explicit(&g_booted, ss[1].lo <= ss[1].hi, memory_order_relaxed);
	} else {
		atomic_store_explicit(&g_booted, true, memory_order_relaxed);
	}
	for (unsigned i = 0; i < WRITERS; i++)
		atomic_store_explicit(&g_heads[i], KEYS_PER_WRITER, memory_order_relaxed);

	for (unsigned i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){
			.id = i,
			.rng = mix64(a.seed ^ (i + 1) * UINT64_C(0xd6e8feb86659fd93)),
			.version_base = (uint64_t)(a.cycle + 1) << 32,
			.batch = omen_batch_new(),
		};
		w[i].cursor = (uint32_t)rng_below(&w[i].rng, KEYS_PER_WRITER);
		/* The sweep's live stretch [tail, head) starts as all but the
		 * window ahead of the start: deletes clear it first, so the
		 * keys earlier cycles left are gone early.  Before the
		 * boundaries are set it starts empty (a new database). */
		w[i].head = KEYS_PER_WRITER;
		w[i].tail = atomic_load_explicit(&g_booted, memory_order_relaxed) ?
		            g_skew.window : KEYS_PER_WRITER;
		if (w[i].batch == NULL)
			child_fail(i, OMEN_ENOMEM, "omen_batch_new");
		if (pthread_create(&w[i].thread, NULL, writer_main, &w[i]) != 0)
			TEST_DIE("pthread_create failed");
	}

	if (a.close_after < 0) {
		/* Write until killed.  A parent that died took us with it
		 * (PR_SET_PDEATHSIG); this is the last resort. */
		if (a.db_shards >= 2)
			child_monitor(a.db_shards, now_sec() + CHILD_MAX_SEC);
		else
			sleep_sec(CHILD_MAX_SEC);
		fprintf(stderr, "stress_crash child: not killed after %.0f s\n", CHILD_MAX_SEC);
		_exit(4);
	}
	if (a.db_shards >= 2)
		child_monitor(a.db_shards, now_sec() + a.close_after);
	else
		sleep_sec(a.close_after);
	/* Writers finish their current call and stop: no API call may start
	 * once omen_close has freed the handle.  An ingest run cut short stays
	 * queued for omen_close to drain. */
	atomic_store_explicit(&g_stop, true, memory_order_relaxed);
	for (unsigned i = 0; i < WRITERS; i++)
		if (pthread_join(w[i].thread, NULL) != 0)
			TEST_DIE("pthread_join failed");
	send_simple(MSG_CLOSING, 0, 0, 0);
	rc = omen_close(g_db);
	if (rc != OMEN_OK)
		child_fail(WRITERS, rc, "omen_close");
	send_simple(MSG_CLOSED, 0, 0, 0);
	for (unsigned i = 0; i < WRITERS; i++) {
		omen_batch_free(w[i].batch);
		free(w[i].intents);
		free(w[i].picked);
		free(g_skew.order[i]);
	}
	return 0;
}

/* =================================================================== */
/* The parent: plans, the model, the kill and the check                 */

enum cycle_end { END_KILL, END_KILL_IN_CLOSE, END_CLEAN };

struct plan {
	uint64_t seed;
	bool fresh;              /* start from an empty directory          */
	int durability;
	unsigned shards_create;  /* shards of a database this cycle creates */
	bool pass_shards;        /* existing database: pass its count, not 0 */
	unsigned queue_depth;    /* 0: the default                         */
	bool nonblocking;
	enum cycle_end end;
	bool kill_from_spawn;    /* END_KILL: kill_delay counts from the spawn
				    (the kill may land in exec or omen_open),
				    else from OPENED                       */
	double kill_delay;       /* END_KILL, s                            */
	double close_after;      /* END_KILL_IN_CLOSE, END_CLEAN: s of writing */
	double close_kill_delay; /* END_KILL_IN_CLOSE: s after CLOSING      */
	unsigned skew_draw;      /* below skew_share (one more while the
				    boundaries are not set): a skewed cycle,
				    on >= 2 shards                          */
	unsigned skew_share;     /* of 4: 1, 2 with --smoke                 */
	bool skew;               /* decided by run_cycle                    */
	uint32_t skew_start;     /* skew_pick's start and window; start 0   */
	uint32_t skew_window;    /* while the boundaries are not set        */
	bool aim;                /* a skewed END_KILL cycle, delay from the
				    open: kill aim_delay after the first
				    MOVING, or span after the open         */
	double aim_delay, span;  /* s                                       */
};

/* Every draw is made whatever the earlier ones gave, so that a plan's
 * fields depend on the seed alone. */
static void make_plan(struct plan *p, uint64_t seed, unsigned cycle, bool smoke)
{
	static const unsigned shard_counts[] = { 1, 2, 4 };
	uint64_t r = seed;
	double span = smoke ? 0.08 : 0.3;   /* the longest run of writes, s */
	uint64_t fresh = rng_below(&r, smoke ? 6 : 50), end = rng_below(&r, 20);
	uint64_t short_kill = rng_below(&r, 4), qd = rng_below(&r, 4);

	p->seed = seed;
	p->fresh = cycle == 0 || fresh == 0;
	p->durability = rng_below(&r, 3) == 0 ? OMEN_DURABLE_SYNC : OMEN_DURABLE_WAL;
	p->shards_create = shard_counts[rng_below(&r, 3)];
	p->pass_shards = rng_below(&r, 2) == 0;
	p->queue_depth = qd == 0 ? 1 + (unsigned)rng_below(&r, 64) : 0;
	p->nonblocking = rng_below(&r, 4) == 0;
	p->end = end < 14 ? END_KILL : end < 17 ? END_KILL_IN_CLOSE : END_CLEAN;
	p->kill_from_spawn = rng_below(&r, 8) == 0;
	if (p->kill_from_spawn)
		p->kill_delay = rng_unit(&r, span / 3);
	else
		p->kill_delay = rng_unit(&r, short_kill == 0 ? span / 30 : span);
	p->close_after = rng_unit(&r, span);
	p->close_kill_delay = rng_below(&r, 4) == 0 ? 0 : rng_unit(&r, 0.02);
	p->skew_draw = (unsigned)rng_below(&r, 4);
	p->skew_share = smoke ? 2 : 1;
	p->skew_start = (uint32_t)rng_below(&r, KEYS_PER_WRITER);
	/* Each writer keeps 1536..2048 keys live: 4608..6144 in all, so
	 * that the window holds 2048 more keys in one shard than in a
	 * neighbour it has left (4 shards) or not reached (2 shards). */
	p->skew_window = KEYS_PER_WRITER * 3 / 8 + (uint32_t)rng_below(&r, KEYS_PER_WRITER / 8 + 1);
	p->aim = rng_below(&r, 2) == 0;
	p->aim_delay = rng_below(&r, 4) == 0 ? 0 : rng_unit(&r, 0.0015);
	p->span = span;
}

static void print_plan(FILE *f, const struct plan *p, unsigned cycle, unsigned shards)
{
	fprintf(f, "cycle %u seed %" PRIu64 ": %s, %s, %u shards%s, queue_depth %u%s, ", cycle,
	        p->seed, p->fresh ? "fresh" : "existing",
	        p->durability == OMEN_DURABLE_SYNC ? "sync" : "wal", shards,
	        p->fresh || p->pass_shards ? "" : " (opened with 0)", p->queue_depth,
	        p->nonblocking ? " nonblocking" : "");
	if (p->skew)
		fprintf(f, "skewed (sweep from %u, window %u per writer), ", p->skew_start,
		        p->skew_window);
	switch (p->end) {
	case END_KILL:
		if (p->aim)
			fprintf(f, "kill %.2f ms after a move is seen starting (else %.1f ms "
			        "after open)\n", p->aim_delay * 1e3, p->span * 1e3);
		else
			fprintf(f, "kill %.1f ms after %s\n", p->kill_delay * 1e3,
			        p->kill_from_spawn ? "spawn" : "open");
		break;
	case END_KILL_IN_CLOSE:
		fprintf(f, "close after %.1f ms, kill %.1f ms into it\n", p->close_after * 1e3,
		        p->close_kill_delay * 1e3);
		break;
	case END_CLEAN:
		fprintf(f, "clean close after %.1f ms\n", p->close_after * 1e3);
		break;
	}
}

/* A key's state: a version's value, or absent (version 0 and absent:
 * never written). */
struct kstate {
	uint64_t version;
	bool present;
};

struct key_model {
	struct kstate cur;       /* acknowledged, or found after a crash   */
	struct kstate *pend;     /* intended after cur, oldest first       */
	uint32_t npend, cap;
	/* The check's findings (verify and its helpers only): */
	bool matched;            /* the found state is cur or one of pend  */
	bool found_present;
	uint64_t found_version;  /* the latest candidate matching          */
	uint64_t lo_version;     /* the versions of the oldest and latest  */
	uint64_t hi_version;     /* candidates matching the found bytes    */
};

/* One record of a writer's open op, as its INTENT said. */
struct rec {
	uint32_t slot;
	uint8_t kind;
	bool present;
	uint64_t call;
	uint64_t version;
};

/* A writer's open op: INTENTs received, ACK not yet. */
struct open_op {
	uint64_t op;
	struct rec *recs;
	size_t n, cap;
};

struct key_entry {
	uint64_t key;
	uint32_t slot;
};

struct totals {
	uint64_t cycles, kills, close_kills, clean, fresh, bootstraps;
	uint64_t acked;          /* records acknowledged by ACK or CLOSED  */
	uint64_t keys_checked;   /* omen_get checks against the model      */
	uint64_t inflight_recs;  /* records in flight at a kill            */
	uint64_t inflight_keys, applied, not_applied, same;
	uint64_t batches_checked;/* in-flight batches of 1-shard databases
				    checked whole or absent                */
	uint64_t skewed;         /* skewed cycles                          */
	uint64_t moves, keys_moved, move_us; /* reported by the children  */
	uint64_t moving_cycles;  /* cycles with a move reported            */
	uint64_t moving_kills;   /* kills after a reported move or inside one */
	uint64_t aimed_kills;    /* kills aimed at a MOVING                */
	uint64_t in_move_kills;  /* kills inside a move after its commit:  */
	uint64_t unseen_kills;   /* its layout not yet seen by the child,  */
	uint64_t uncounted_kills;/* or seen but the move not yet counted   */
	uint64_t lost, phantom, torn, other;
};

struct ctx {
	bool smoke, keep, verbose;
	bool create_kills;        /* may kill while a new database is created */
	unsigned cycles;
	uint64_t seed;
	const char *argv0;
	char base[4096];          /* the working directory               */
	char db[4200];            /* base/db                             */
	bool base_created;
	struct key_model *keys;   /* [NKEYS], by slot                    */
	struct key_entry *by_key; /* [NKEYS], ascending keys             */
	struct open_op ops[WRITERS];
	unsigned shards;          /* the database's shard count          */
	bool exists;              /* some omen_open of it succeeded      */
	bool bootstrapped;        /* its shard boundaries are set        */
	bool layout_ok;           /* the last verify read the layout:    */
	uint64_t layout;          /* its layout_hash                     */
	struct totals t;
	uint64_t cycle_failures;  /* of the current cycle                */
};

static int cmp_key_entry(const void *a, const void *b)
{
	const struct key_entry *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

static void key_table_init(struct ctx *c)
{
	c->keys = xcalloc(NKEYS, sizeof(*c->keys));
	c->by_key = xcalloc(NKEYS, sizeof(*c->by_key));
	for (uint32_t s = 0; s < NKEYS; s++)
		c->by_key[s] = (struct key_entry){ slot_key(s), s };
	qsort(c->by_key, NKEYS, sizeof(*c->by_key), cmp_key_entry);
	for (size_t i = 1; i < NKEYS; i++)
		if (c->by_key[i].key == c->by_key[i - 1].key)
			TEST_DIE("slots %u and %u share key 0x%" PRIx64, c->by_key[i - 1].slot,
			         c->by_key[i].slot, c->by_key[i].key);
}

/* The slot of key, or -1 when no slot has it. */
static int64_t key_slot(const struct ctx *c, uint64_t key)
{
	struct key_entry probe = { key, 0 };
	const struct key_entry *e = bsearch(&probe, c->by_key, NKEYS, sizeof(*c->by_key),
	                                    cmp_key_entry);

	return e ? (int64_t)e->slot : -1;
}

static void model_reset(struct ctx *c)
{
	for (size_t s = 0; s < NKEYS; s++) {
		c->keys[s].cur = (struct kstate){ 0, false };
		c->keys[s].npend = 0;
	}
	for (unsigned w = 0; w < WRITERS; w++)
		c->ops[w].n = 0;
}

/* ------------------------------------------------ applying messages */

/* What one cycle's child did, as far as the parent knows. */
struct child_run {
	pid_t pid;
	int fd;
	double t_spawn, t_kill, deadline;   /* deadline: INFINITY while none */
	bool opened, closing, closed, killed, hung;
	int child_error;                    /* an ERROR's code, else 0      */
	uint64_t intents;
	uint64_t moves, keys_moved, move_us;/* the last MOVES: since open  */
	bool layout_known;                  /* a LAYOUT came               */
	bool layout_booted;                 /* its boundaries are set      */
	uint64_t layout;                    /* the last LAYOUT's hash      */
	uint64_t layout_moves;              /* LAYOUTs that a move published */
	uint64_t movings;                   /* MOVINGs                     */
	bool aimed;                         /* the kill is aimed at one    */
};

/* A line about a cycle, starting with its number and seed. */
static void cycle_say(unsigned cycle, const struct plan *p, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void cycle_say(unsigned cycle, const struct plan *p, const char *fmt, ...)
{
	va_list ap;

	printf("cycle %u seed %" PRIu64 ": ", cycle, p->seed);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

static void fail_cycle(struct ctx *c, uint64_t *counter)
{
	(*counter)++;
	c->cycle_failures++;
}

static void on_intent(struct ctx *c, struct child_run *r, const struct msg *m)
{
	struct open_op *op;
	struct key_model *k;

	if (m->writer >= WRITERS || m->slot >= NKEYS || slot_writer(m->slot) != m->writer ||
	    m->kind > CALL_INGEST_BATCH)
		TEST_DIE("bad INTENT from the child: writer %u slot %u kind %u", m->writer,
		         m->slot, m->kind);
	op = &c->ops[m->writer];
	if (op->n > 0 && op->op != m->op)
		TEST_DIE("writer %u began op %" PRIu64 " with op %" PRIu64 " unacknowledged",
		         m->writer, m->op, op->op);
	op->op = m->op;
	if (op->n == op->cap) {
		op->cap = op->cap ? 2 * op->cap : 1024;
		op->recs = xrealloc(op->recs, op->cap * sizeof(*op->recs));
	}
	op->recs[op->n++] = (struct rec){ m->slot, m->kind, m->present != 0, m->call, m->version };
	k = &c->keys[m->slot];
	if (k->npend == k->cap) {
		k->cap = k->cap ? 2 * k->cap : 4;
		k->pend = xrealloc(k->pend, k->cap * sizeof(*k->pend));
	}
	k->pend[k->npend++] = (struct kstate){ m->version, m->present != 0 };
	r->intents++;
}

/* Every record of writer w's open op is acknowledged, in order: each
 * becomes its key's cur, and the key's older pending records go (they
 * were written before it, by the same thread). */
static void ack_open_op(struct ctx *c, unsigned w)
{
	struct open_op *op = &c->ops[w];

	for (size_t i = 0; i < op->n; i++) {
		struct key_model *k = &c->keys[op->recs[i].slot];
		uint32_t j = 0;

		while (j < k->npend && k->pend[j].version != op->recs[i].version)
			j++;
		if (j == k->npend)
			TEST_DIE("acknowledged record " VFMT " of slot %u is not pending",
			         VARG(op->recs[i].version), op->recs[i].slot);
		k->cur = k->pend[j];
		memmove(k->pend, k->pend + j + 1, (k->npend - j - 1) * sizeof(*k->pend));
		k->npend -= j + 1;
	}
	c->t.acked += op->n;
	op->n = 0;
}

static void on_msg(struct ctx *c, const struct plan *p, struct child_run *r, const struct msg *m)
{
	double now = now_sec();

	switch (m->type) {
	case MSG_OPENED:
		r->opened = true;
		c->exists = true;
		if (p->end == END_KILL && !p->kill_from_spawn)
			r->deadline = now + (p->aim ? p->span : p->kill_delay);
		break;
	case MSG_INTENT:
		on_intent(c, r, m);
		break;
	case MSG_ACK:
		if (m->writer >= WRITERS || c->ops[m->writer].n == 0 ||
		    c->ops[m->writer].op != m->op)
			TEST_DIE("ACK of writer %u op %" PRIu64 " that is not open", m->writer,
			         m->op);
		ack_open_op(c, m->writer);
		break;
	case MSG_CLOSING:
		r->closing = true;
		if (p->end == END_KILL_IN_CLOSE)
			r->deadline = now + p->close_kill_delay;
		break;
	case MSG_CLOSED:
		/* omen_close returned OMEN_OK: everything queued is acknowledged. */
		r->closed = true;
		for (unsigned w = 0; w < WRITERS; w++)
			ack_open_op(c, w);
		break;
	case MSG_ERROR:
		r->child_error = -(int)m->call;
		break;
	case MSG_LAYOUT:
		r->layout_known = true;
		r->layout_booted = m->kind != 0;
		r->layout = m->op;
		r->layout_moves += m->present != 0;
		break;
	case MSG_MOVING:
		r->movings++;
		if (p->aim && !r->aimed && !r->killed) {
			r->aimed = true;
			if (now + p->aim_delay < r->deadline)
				r->deadline = now + p->aim_delay;
		}
		break;
	case MSG_MOVES:
		if (m->op <= r->moves)
			TEST_DIE("MOVES %" PRIu64 " after %" PRIu64, m->op, r->moves);
		r->moves = m->op;
		r->keys_moved = m->call;
		r->move_us = m->slot;
		break;
	default:
		TEST_DIE("bad message type %u from the child", m->type);
	}
}

/* ------------------------------------------------ the child process */

static pid_t spawn_child(struct ctx *c, const struct plan *p, unsigned cycle, int *rfd)
{
	unsigned shards = p->fresh || !c->exists || p->pass_shards ? c->shards : 0;
	char a_fd[16], a_cycle[16], a_seed[32], a_shards[16], a_qd[16], a_close[32], a_parent[16];
	char a_dbshards[16], a_skew_start[16], a_skew_window[16];
	const char *args[40];
	char *argv[40];
	int fds[2], n = 0;
	pid_t parent = getpid(), pid;

	/* Both ends close on exec: the child clears the flag of its own end
	 * only, so no other exec'd program inherits the pipe. */
	if (pipe2(fds, O_CLOEXEC) != 0)
		TEST_DIE("pipe2: %s", strerror(errno));
	snprintf(a_fd, sizeof(a_fd), "%d", fds[1]);
	snprintf(a_cycle, sizeof(a_cycle), "%u", cycle);
	snprintf(a_seed, sizeof(a_seed), "%" PRIu64, p->seed);
	snprintf(a_shards, sizeof(a_shards), "%u", shards);
	snprintf(a_qd, sizeof(a_qd), "%u", p->queue_depth);
	snprintf(a_close, sizeof(a_close), "%.6f", p->end == END_KILL ? -1.0 : p->close_after);
	snprintf(a_parent, sizeof(a_parent), "%ld", (long)parent);
	snprintf(a_dbshards, sizeof(a_dbshards), "%u", c->shards);
	snprintf(a_skew_start, sizeof(a_skew_start), "%" PRIu32, p->skew_start);
	snprintf(a_skew_window, sizeof(a_skew_window), "%" PRIu32, p->skew_window);
	args[n++] = c->argv0;
	args[n++] = "--child";
	args[n++] = "--db";
	args[n++] = c->db;
	args[n++] = "--fd";
	args[n++] = a_fd;
	args[n++] = "--cycle";
	args[n++] = a_cycle;
	args[n++] = "--seed";
	args[n++] = a_seed;
	args[n++] = "--durability";
	args[n++] = p->durability == OMEN_DURABLE_SYNC ? "sync" : "wal";
	args[n++] = "--shards";
	args[n++] = a_shards;
	args[n++] = "--queue-depth";
	args[n++] = a_qd;
	args[n++] = "--nonblocking";
	args[n++] = p->nonblocking ? "1" : "0";
	args[n++] = "--close-after";
	args[n++] = a_close;
	args[n++] = "--parent";
	args[n++] = a_parent;
	args[n++] = "--db-shards";
	args[n++] = a_dbshards;
	if (p->skew) {
		args[n++] = "--skew";
		args[n++] = "1";
		args[n++] = "--skew-start";
		args[n++] = a_skew_start;
		args[n++] = "--skew-window";
		args[n++] = a_skew_window;
	}
	/* execv wants char *const []: writable copies, made before the fork
	 * (no malloc between fork and exec). */
	for (int i = 0; i < n; i++) {
		argv[i] = xmalloc(strlen(args[i]) + 1);
		strcpy(argv[i], args[i]);
	}
	argv[n] = NULL;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		TEST_DIE("fork: %s", strerror(errno));
	if (pid == 0) {
		/* Async-signal-safe calls only until exec: the parent may have
		 * threads (RocksDB's pools) holding locks. */
		static const char msg[] = "stress_crash: exec /proc/self/exe failed\n";

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(6);
		fcntl(fds[1], F_SETFD, 0);
		execv("/proc/self/exe", argv);
		if (write(2, msg, sizeof(msg) - 1) < 0)
			_exit(127);
		_exit(127);
	}
	for (int i = 0; i < n; i++)
		free(argv[i]);
	close(fds[1]);
	*rfd = fds[0];
	return pid;
}

/* Read the child's messages until EOF, killing it at the plan's moment
 * (or after HANG_SEC), then reap it.  The pipe is read all the time, so
 * the child never blocks on it for long. */
static void watch_child(struct ctx *c, const struct plan *p, struct child_run *r, int *status)
{
	static struct msg buf[1024];
	size_t have = 0;   /* bytes in buf */

	for (;;) {
		double now = now_sec(), until;
		struct pollfd pfd = { .fd = r->fd, .events = POLLIN };
		struct timespec ts;
		ssize_t got;
		int n;

		if (!r->killed && now - r->t_spawn >= HANG_SEC) {
			r->hung = true;
			r->deadline = now;
		}
		if (!r->killed && now >= r->deadline) {
			if (kill(r->pid, SIGKILL) != 0)
				TEST_DIE("kill: %s", strerror(errno));
			r->killed = true;
			r->t_kill = now;
		}
		if (r->killed && now - r->t_kill > EOF_SEC)
			TEST_DIE("the pipe is still open %.0f s after SIGKILL", EOF_SEC);
		/* Wake at the deadline, and at least every second (hang and
		 * EOF guards). */
		until = r->killed ? now + 1 : r->deadline;
		if (until > r->t_spawn + HANG_SEC)
			until = r->t_spawn + HANG_SEC;
		if (until <= now)
			until = now;
		else if (until - now > 1)
			until = now + 1;
		/* ppoll: to the microsecond (aimed kills come within a
		 * millisecond of their moment). */
		ts.tv_sec = (time_t)(until - now);
		ts.tv_nsec = (long)((until - now - (double)ts.tv_sec) * 1e9);
		n = ppoll(&pfd, 1, &ts, NULL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			TEST_DIE("poll: %s", strerror(errno));
		if (n == 0)
			continue;
		got = read(r->fd, (char *)buf + have, sizeof(buf) - have);
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got < 0)
			TEST_DIE("read: %s", strerror(errno));
		if (got == 0)
			break;
		have += (size_t)got;
		for (size_t i = 0; i < have / sizeof(struct msg); i++)
			on_msg(c, p, r, &buf[i]);
		/* Writes are whole messages, so a remainder is not expected;
		 * keep it for the next read all the same. */
		memmove(buf, (char *)buf + have / sizeof(struct msg) * sizeof(struct msg),
		        have % sizeof(struct msg));
		have %= sizeof(struct msg);
	}
	if (have != 0)
		TEST_DIE("the pipe ended inside a message (%zu bytes)", have);
	close(r->fd);
	while (waitpid(r->pid, status, 0) < 0)
		if (errno != EINTR)
			TEST_DIE("waitpid: %s", strerror(errno));
}

/* ------------------------------------------------ the check */

static void describe_state(char *out, size_t cap, uint64_t key, struct kstate s)
{
	uint8_t buf[VAL_MAX];

	if (!s.present && s.version == 0)
		snprintf(out, cap, "never written");
	else if (!s.present)
		snprintf(out, cap, VFMT " delete", VARG(s.version));
	else
		snprintf(out, cap, VFMT " value %zu bytes", VARG(s.version),
		         value_of(key, s.version, buf));
}

/* What the bytes found are: "absent", "value N bytes, version c:n" when
 * they are exactly that version's value, else "value N bytes: hex...". */
static void describe_found(char *out, size_t cap, uint64_t key, bool present, const uint8_t *v,
                           size_t len, uint64_t *version)
{
	uint8_t want[VAL_MAX];
	uint64_t k, ver;
	int n;

	*version = 0;
	if (!present) {
		snprintf(out, cap, "absent");
		return;
	}
	if (len >= 16 && len <= VAL_MAX) {
		memcpy(&k, v, 8);
		memcpy(&ver, v + 8, 8);
		if (k == key && value_of(key, ver, want) == len && memcmp(want, v, len) == 0) {
			*version = ver;
			snprintf(out, cap, VFMT " value %zu bytes", VARG(ver), len);
			return;
		}
	}
	n = snprintf(out, cap, "value %zu bytes, no version of this key:", len);
	for (size_t i = 0; i < len && i < 24 && n > 0 && (size_t)n + 4 < cap; i++)
		n += snprintf(out + n, cap - (size_t)n, " %02x", v[i]);
}

static void report_mismatch(struct ctx *c, unsigned cycle, const struct plan *p, uint32_t slot,
                            bool present, const uint8_t *v, size_t len)
{
	struct key_model *k = &c->keys[slot];
	uint64_t key = slot_key(slot), ver;
	char found[200], want[80], pend[400];
	const char *what;
	int n = 0;

	describe_found(found, sizeof(found), key, present, v, len, &ver);
	/* LOST: the acknowledged state is gone (an older version is back, or
	 * the value vanished).  PHANTOM: something never intended is there. */
	if ((!present && k->cur.present) || (present && ver != 0 && ver < k->cur.version)) {
		what = "LOST";
		fail_cycle(c, &c->t.lost);
	} else {
		what = "PHANTOM";
		fail_cycle(c, &c->t.phantom);
	}
	if (c->cycle_failures > REPORT_MAX)
		return;
	describe_state(want, sizeof(want), key, k->cur);
	pend[0] = '\0';
	for (uint32_t i = 0; i < k->npend && n >= 0 && (size_t)n + 40 < sizeof(pend); i++) {
		char one[80];

		describe_state(one, sizeof(one), key, k->pend[i]);
		n += snprintf(pend + n, sizeof(pend) - (size_t)n, "%s%s", i ? ", " : "", one);
	}
	cycle_say(cycle, p, "%s key 0x%016" PRIx64 " (slot %u, writer %u): expected %s%s%s%s; "
	          "found %s\n", what, key, slot, slot_writer(slot), want,
	          k->npend ? " or in flight [" : "", pend, k->npend ? "]" : "", found);
}

/* Does the found state (present, v[len]) equal state s of key? */
static bool state_is(uint64_t key, struct kstate s, bool present, const uint8_t *v, size_t len)
{
	uint8_t want[VAL_MAX];

	if (!s.present || !present)
		return s.present == present;
	/* An empty value may come with v NULL (an iterator's): no memcmp. */
	return value_of(key, s.version, want) == len && (len == 0 || memcmp(want, v, len) == 0);
}

/* Check one key against cur and pend; on a match the key's findings are
 * set for the batch and scan checks. */
static void check_key(struct ctx *c, unsigned cycle, const struct plan *p, omen_db *db,
                      uint32_t slot)
{
	struct key_model *k = &c->keys[slot];
	uint64_t key = slot_key(slot);
	uint8_t buf[VAL_MAX + 1], *v = buf, *big = NULL;
	size_t len = 0;
	bool present;
	int lo = INT_MAX, hi = INT_MIN;   /* matching candidates: none yet */
	int rc = omen_get(db, key, buf, sizeof(buf), &len);

	k->matched = false;
	if (rc == OMEN_ERANGE) {
		/* Longer than any value written: fetch it to show it. */
		big = xmalloc(len);
		rc = omen_get(db, key, big, len, &len);
		v = big;
	}
	if (rc != OMEN_OK && rc != OMEN_ENOTFOUND) {
		cycle_say(cycle, p, "omen_get of key 0x%016" PRIx64
		          " failed: %s (%s)\n", key, omen_strerror(rc), omen_errmsg());
		fail_cycle(c, &c->t.other);
		free(big);
		return;
	}
	present = rc == OMEN_OK;
	c->t.keys_checked++;
	/* Candidates: index -1 is cur, 0.. are pend. */
	for (int i = -1; i < (int)k->npend; i++) {
		if (state_is(key, i < 0 ? k->cur : k->pend[i], present, v, len)) {
			lo = lo < i ? lo : i;
			hi = i;
		}
	}
	if (lo == INT_MAX) {
		report_mismatch(c, cycle, p, slot, present, v, len);
		free(big);
		return;
	}
	free(big);
	k->matched = true;
	k->found_present = present;
	k->lo_version = lo < 0 ? k->cur.version : k->pend[lo].version;
	k->hi_version = hi < 0 ? k->cur.version : k->pend[hi].version;
	k->found_version = k->hi_version;
	if (k->npend > 0) {
		c->t.inflight_keys++;
		c->t.inflight_recs += k->npend;
		if (lo >= 0)
			c->t.applied++;
		else if (hi < 0)
			c->t.not_applied++;
		else
			c->t.same++;
	}
}

/*
 * A single-shard database commits each omen_write and each
 * omen_ingest_batch in one RocksDB write: after the crash each in-flight
 * one is whole or absent.  Record r (version v) of key k surely applied
 * when every candidate matching k's bytes is v or later (a later record of
 * k was written after r by the same thread, in the same shard's order);
 * surely not when every match is older.  A call with one of each is torn.
 */
static void check_torn(struct ctx *c, unsigned cycle, const struct plan *p)
{
	for (unsigned w = 0; w < WRITERS; w++) {
		const struct open_op *op = &c->ops[w];

		/* The records of one call are consecutive in the op. */
		for (size_t i = 0, j; i < op->n; i = j) {
			const struct rec *first = &op->recs[i], *yes = NULL, *no = NULL;

			for (j = i; j < op->n && op->recs[j].call == first->call; j++) {
				const struct rec *r = &op->recs[j];
				const struct key_model *k = &c->keys[r->slot];

				if (k->matched && k->lo_version >= r->version)
					yes = r;
				else if (k->matched && k->hi_version < r->version)
					no = r;
			}
			if (first->kind != CALL_WRITE && first->kind != CALL_INGEST_BATCH)
				continue;
			if (yes || no)
				c->t.batches_checked++;
			if (!yes || !no)
				continue;
			fail_cycle(c, &c->t.torn);
			if (c->cycle_failures > REPORT_MAX)
				continue;
			cycle_say(cycle, p, "TORN %s of %zu records (writer %u, call %" PRIu64
			          ") in a 1-shard database: key 0x%016" PRIx64 " record " VFMT
			          " applied, key 0x%016" PRIx64 " record " VFMT " not\n",
			          call_names[first->kind], j - i, w, first->call,
			          slot_key(yes->slot), VARG(yes->version), slot_key(no->slot),
			          VARG(no->version));
		}
	}
}

/* A full scan: strictly ascending keys, none outside the universe, exactly
 * the keys omen_get found, with the same bytes. */
static void check_scan(struct ctx *c, unsigned cycle, const struct plan *p, omen_db *db)
{
	omen_iter *it = NULL;
	uint64_t key, prev = 0, seen = 0, want = 0;
	const void *val;
	size_t len;
	bool first = true;
	int rc = omen_iter_open(db, 0, UINT64_MAX, &it);

	if (rc != OMEN_OK) {
		cycle_say(cycle, p, "omen_iter_open failed: %s (%s)\n",
		          omen_strerror(rc), omen_errmsg());
		fail_cycle(c, &c->t.other);
		return;
	}
	for (size_t s = 0; s < NKEYS; s++)
		want += c->keys[s].matched && c->keys[s].found_present;
	while ((rc = omen_iter_next(it, &key, &val, &len)) == OMEN_OK) {
		int64_t slot = key_slot(c, key);
		const struct key_model *k = slot >= 0 ? &c->keys[slot] : NULL;
		const char *bad = NULL;

		if (!first && key <= prev)
			bad = "out of order or repeated (see the previous key)";
		else if (k == NULL)
			bad = "never written: no slot has this key";
		else if (k->matched && !k->found_present)
			bad = "absent for omen_get";
		else if (k->matched && !state_is(key, (struct kstate){ k->found_version, true },
		                                 true, val, len))
			bad = "with other bytes than omen_get found";
		if (k && k->matched && k->found_present)
			seen++;
		if (bad != NULL) {
			fail_cycle(c, k == NULL ? &c->t.phantom : &c->t.other);
			if (c->cycle_failures <= REPORT_MAX)
				cycle_say(cycle, p, "%sthe scan returned key 0x%016" PRIx64
				          " (%zu bytes, previous key 0x%016" PRIx64 ") %s\n",
				          k == NULL ? "PHANTOM: " : "", key, len, prev, bad);
		}
		first = false;
		prev = key;
	}
	if (rc != OMEN_END) {
		cycle_say(cycle, p, "omen_iter_next failed: %s (%s)\n",
		          omen_strerror(rc), omen_errmsg());
		fail_cycle(c, &c->t.other);
	} else if (seen != want) {
		cycle_say(cycle, p, "the scan returned %" PRIu64 " of the %" PRIu64
		          " keys omen_get found\n", seen, want);
		fail_cycle(c, &c->t.other);
	}
	omen_iter_close(it);
}

/* Open the database after the child is gone, check it, take what was
 * found into the model, close it. */
static void verify(struct ctx *c, unsigned cycle, const struct plan *p)
{
	omen_options o;
	omen_db *db = NULL;
	omen_stats st;
	int rc;

	omen_options_init(&o);
	if (c->exists) {
		/* It was opened before: it must open again, whatever shard
		 * count it has (checked below). */
		o.shards = 0;
		o.create_if_missing = 0;
	} else {
		/* Killed before any open succeeded: it may or may not exist. */
		o.shards = c->shards;
	}
	rc = omen_open(c->db, &o, &db);
	if (rc != OMEN_OK) {
		cycle_say(cycle, p, "reopen failed: %s (%s)\n",
		          omen_strerror(rc), omen_errmsg());
		fail_cycle(c, &c->t.other);
		return;
	}
	c->exists = true;
	/* The shard count is part of what must survive. */
	rc = omen_get_stats(db, &st);
	if (rc != OMEN_OK) {
		cycle_say(cycle, p, "omen_get_stats failed: %s (%s)\n",
		          omen_strerror(rc), omen_errmsg());
		fail_cycle(c, &c->t.other);
	} else if (st.shards != c->shards) {
		cycle_say(cycle, p, "the database has %u shards, %u expected\n", st.shards,
		          c->shards);
		fail_cycle(c, &c->t.other);
	}

	for (uint32_t s = 0; s < NKEYS; s++)
		check_key(c, cycle, p, db, s);
	if (c->shards == 1)
		check_torn(c, cycle, p);
	check_scan(c, cycle, p, db);

	if (c->shards > 1 && !c->bootstrapped) {
		omen_shard_stats ss;

		if (omen_get_shard_stats(db, 1, &ss) == OMEN_OK && ss.lo <= ss.hi) {
			c->bootstrapped = true;
			c->t.bootstraps++;
		}
	}
	/* The layout that survived, for run_cycle to compare with the last
	 * one the child saw. */
	c->layout_ok = false;
	if (c->shards > 1) {
		omen_shard_stats *ss = xcalloc(c->shards, sizeof(*ss));
		unsigned i = 0;

		while (i < c->shards && omen_get_shard_stats(db, i, &ss[i]) == OMEN_OK)
			i++;
		if (i == c->shards) {
			c->layout_ok = true;
			c->layout = layout_hash(ss, c->shards);
		}
		free(ss);
	}

	/* The model takes what was found: in-flight records are resolved. */
	for (size_t s = 0; s < NKEYS; s++) {
		struct key_model *k = &c->keys[s];

		if (k->matched)
			k->cur = (struct kstate){ k->found_version, k->found_present };
		k->npend = 0;
	}
	for (unsigned w = 0; w < WRITERS; w++)
		c->ops[w].n = 0;

	rc = omen_close(db);
	if (rc != OMEN_OK) {
		cycle_say(cycle, p, "omen_close after the check failed: %s (%s)\n",
		          omen_strerror(rc), omen_errmsg());
		fail_cycle(c, &c->t.other);
	}
}

/* ------------------------------------------------ cycles */

static void describe_status(char *out, size_t cap, int status)
{
	if (WIFEXITED(status))
		snprintf(out, cap, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, cap, "signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(out, cap, "wait status 0x%x", (unsigned)status);
}

static void run_cycle(struct ctx *c, unsigned cycle, uint64_t seed)
{
	struct plan p;
	struct child_run r;
	char why[96];
	int status = 0;

	make_plan(&p, seed, cycle, c->smoke);
	c->cycle_failures = 0;
	if (p.fresh) {
		apitest_rm_tree(c->db);
		model_reset(c);
		c->shards = p.shards_create;
		c->exists = false;
		c->bootstrapped = c->shards == 1;
		c->t.fresh++;
	}
	/* One cycle in 4 on a multi-shard database is skewed (2 with
	 * --smoke), one more while its boundaries are not set; then the
	 * sweep starts at the lowest keys (skew_pick). */
	p.skew = c->shards >= 2 && p.skew_draw < p.skew_share + !c->bootstrapped;
	if (p.skew && !c->bootstrapped)
		p.skew_start = 0;
	c->t.skewed += p.skew;
	/* The delay counts from OPENED instead while the database may not
	 * exist yet, unless kills during its creation are asked for. */
	if (!c->create_kills && !c->exists)
		p.kill_from_spawn = false;
	/* Half the skewed cycles that kill at a delay from the open aim at a
	 * move instead. */
	p.aim = p.aim && p.skew && p.end == END_KILL && !p.kill_from_spawn;
	if (c->verbose) {
		print_plan(stdout, &p, cycle, c->shards);
		fflush(stdout);
	}

	memset(&r, 0, sizeof(r));
	r.deadline = INFINITY;
	r.t_spawn = now_sec();
	if (p.end == END_KILL && p.kill_from_spawn)
		r.deadline = r.t_spawn + p.kill_delay;
	r.pid = spawn_child(c, &p, cycle, &r.fd);
	watch_child(c, &p, &r, &status);

	describe_status(why, sizeof(why), status);
	if (r.child_error != 0) {
		cycle_say(cycle, &p, "the child failed: %s (its message is above)\n",
		          omen_strerror(r.child_error));
		fail_cycle(c, &c->t.other);
	} else if (r.hung) {
		cycle_say(cycle, &p, "the child was not done after %.0f s (%s%s): killed "
		          "as hung\n", HANG_SEC, r.opened ? "opened" : "not opened",
		          r.closing ? ", in omen_close" : "");
		fail_cycle(c, &c->t.other);
	} else if (r.closed && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		/* Also when the kill came too late: omen_close had returned. */
		c->t.clean++;
	} else if (r.killed && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
		c->t.kills++;
		c->t.close_kills += r.closing;
		c->t.aimed_kills += r.aimed;
	} else {
		cycle_say(cycle, &p, "the child ended on its own (%s)%s\n",
		          why, r.killed ? " as it was being killed" : "");
		fail_cycle(c, &c->t.other);
	}
	if (r.closed) {
		/* A clean close leaves nothing in flight. */
		for (unsigned w = 0; w < WRITERS; w++)
			if (c->ops[w].n != 0)
				TEST_DIE("records in flight after CLOSED");
	}

	c->t.moves += r.moves;
	c->t.keys_moved += r.keys_moved;
	c->t.move_us += r.move_us;
	c->t.moving_cycles += r.moves > 0;

	verify(c, cycle, &p);
	/*
	 * Where the kill landed relative to moves (every message came before
	 * the child died).  A kill while the child was still watching (not
	 * in omen_close) landed inside a move after its commit if the layout
	 * that survived is not the last one the child saw (it was committed,
	 * not yet published or seen), or the child saw a move's layout but
	 * not yet the move counted (its grace period, the drop from the
	 * source index, the forwarding of its queue).  Either within a poll
	 * of the child (MONITOR_SEC and a call) of the event.
	 */
	if (r.killed && !r.closed && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
		bool unseen = !r.closing && r.layout_known && r.layout_booted && c->layout_ok &&
		              c->layout != r.layout;
		bool uncounted = !r.closing && r.layout_moves > r.moves;

		c->t.moving_kills += r.moves > 0 || unseen || uncounted;
		c->t.in_move_kills += unseen || uncounted;
		c->t.unseen_kills += unseen;
		c->t.uncounted_kills += uncounted && !unseen;
		if (c->verbose && (unseen || uncounted))
			printf("cycle %u: the kill landed inside a move, after its commit (%s)\n",
			       cycle, unseen ? "its layout survived, unseen by the child" :
			                       "published, not yet counted");
	}
	c->t.cycles++;
	if (c->verbose) {
		printf("cycle %u: %s, %" PRIu64 " records intended, ", cycle,
		       r.closed ? "closed" : r.killed ? "killed" : "died", r.intents);
		if (r.moves > 0 || r.movings > 0)
			printf("%" PRIu64 " moves of %" PRIu64 " keys (%.1f ms), %" PRIu64
			       " seen starting%s, ", r.moves, r.keys_moved, (double)r.move_us / 1e3,
			       r.movings, r.aimed ? ", the kill aimed at one" : "");
		printf("%s\n", c->cycle_failures ? "FAILED" : "ok");
	}
	if (c->cycle_failures) {
		if (!c->verbose)
			print_plan(stdout, &p, cycle, c->shards);
		printf("cycle %u FAILED (seed %" PRIu64 ", child %s, %" PRIu64 " records intended)\n",
		       cycle, p.seed, why, r.intents);
		printf("  replay this cycle from an empty database: stress_crash --seed %" PRIu64
		       " --cycles 1%s%s\n", p.seed, c->smoke ? " --smoke" : "",
		       c->create_kills ? "" : " --no-create-kills");
		printf("  replay the run up to it: stress_crash --seed %" PRIu64 " --cycles %u%s%s\n",
		       c->seed, cycle + 1, c->smoke ? " --smoke" : "",
		       c->create_kills ? "" : " --no-create-kills");
		printf("  (the kill moment is not reproducible: rerun a few times)\n");
		printf("  database kept in %s\n", c->db);
	}
	fflush(stdout);
}

/* One line: what the cycles so far did and checked. */
static void print_totals(const struct ctx *c, const char *head, double t0)
{
	const struct totals *t = &c->t;

	printf("%s seed %" PRIu64 ", %" PRIu64 " cycles (%" PRIu64 " kills, %" PRIu64
	       " of them in omen_close; %" PRIu64 " clean closes; %" PRIu64 " fresh; %" PRIu64
	       " boundary settings; %" PRIu64 " skewed), %" PRIu64 " moves of %" PRIu64
	       " keys (%.1f ms each) in %" PRIu64 " cycles, %" PRIu64 " kills after or in a move (%"
	       PRIu64 " aimed at one seen starting; %" PRIu64 " inside one after its commit: %"
	       PRIu64 " unseen, %" PRIu64 " uncounted), %" PRIu64 " acknowledged writes, %" PRIu64
	       " key checks, %" PRIu64 " in-flight writes resolved on %" PRIu64 " keys (%" PRIu64
	       " applied, %" PRIu64 " not, %" PRIu64 " either), %" PRIu64 " batches whole, lost=%"
	       PRIu64 " phantom=%" PRIu64 " torn=%" PRIu64 " other=%" PRIu64 ", %.1f s\n", head,
	       c->seed, t->cycles, t->kills, t->close_kills, t->clean, t->fresh, t->bootstraps,
	       t->skewed, t->moves, t->keys_moved,
	       t->moves ? (double)t->move_us / 1e3 / (double)t->moves : 0.0, t->moving_cycles,
	       t->moving_kills, t->aimed_kills, t->in_move_kills, t->unseen_kills,
	       t->uncounted_kills, t->acked, t->keys_checked,
	       t->inflight_recs, t->inflight_keys, t->applied, t->not_applied, t->same,
	       t->batches_checked, t->lost, t->phantom, t->torn, t->other, now_sec() - t0);
	fflush(stdout);
}

/* ------------------------------------------------ options, main */

static _Noreturn void usage(const char *prog)
{
	fprintf(stderr,
	        "usage: %s [--smoke] [--seed S] [--cycles N] [--dir D] [--keep] [--verbose]\n"
	        "          [--no-create-kills]\n"
	        "  --smoke       20 short cycles (make check)\n"
	        "  --seed S      the run's seed, which is cycle 0's (default: from the clock)\n"
	        "  --cycles N    kill/reopen cycles (default 500; 20 with --smoke)\n"
	        "  --dir D       work in D (created if missing; the database is D/db)\n"
	        "                instead of a new directory under $TMPDIR or /tmp\n"
	        "  --keep        keep the database at the end (always kept on a failure)\n"
	        "  --verbose     a line per cycle: its plan and outcome\n"
	        "  --no-create-kills  never kill while omen_open creates a new database\n", prog);
	exit(2);
}

static void parse_args(int argc, char **argv, struct ctx *c)
{
	stress_opts so;
	const char *dir = NULL;
	size_t n;

	stress_opts_init(&so);
	/* Creation is atomic (shard/db.c, create_db): kills land there too. */
	c->create_kills = true;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--dist") != 0 && stress_opt_arg(&so, argc, argv, &i))
			continue;
		if (strcmp(a, "--cycles") == 0 && i + 1 < argc) {
			if (!parse_size(argv[++i], &n) || n > UINT_MAX)
				usage(argv[0]);
			c->cycles = (unsigned)n;
		} else if (strcmp(a, "--dir") == 0 && i + 1 < argc) {
			dir = argv[++i];
		} else if (strcmp(a, "--keep") == 0) {
			c->keep = true;
		} else if (strcmp(a, "--verbose") == 0) {
			c->verbose = true;
		} else if (strcmp(a, "--no-create-kills") == 0) {
			c->create_kills = false;
		} else {
			usage(argv[0]);
		}
	}
	stress_opts_done(&so);
	c->seed = so.seed;
	c->smoke = so.smoke;
	if (c->cycles == 0)
		c->cycles = c->smoke ? 20 : 500;
	if (dir) {
		if (strlen(dir) >= sizeof(c->base))
			usage(argv[0]);
		strcpy(c->base, dir);
		if (mkdir(dir, 0755) == 0)
			c->base_created = true;
		else if (errno != EEXIST)
			TEST_DIE("mkdir %s: %s", dir, strerror(errno));
	} else {
		apitest_mkdtemp(c->base, sizeof(c->base), "crash");
		c->base_created = true;
	}
	snprintf(c->db, sizeof(c->db), "%s/db", c->base);
}

/*
 * A sanitizer report in a child that is killed afterwards would go
 * unnoticed: the exit status is SIGKILL's.  Children therefore stop at
 * their first report (ThreadSanitizer and UBSan go on by default; ASan
 * stops anyway), which the parent sees as an early exit: a failure, with
 * the report above it.  Set before any child exists; the parent's own
 * sanitizer read its options at startup.
 */
static void children_halt_on_error(void)
{
#if defined(OMEN_TSAN) || defined(OMEN_ASAN)
#if defined(OMEN_TSAN)
	const char *name = "TSAN_OPTIONS";
#else
	const char *name = "UBSAN_OPTIONS";
#endif
	const char *old = getenv(name);
	char val[8192];
	int n;

	/* Options are separated by ':'; the last setting of a flag wins. */
	n = snprintf(val, sizeof(val), "%s%shalt_on_error=1", old ? old : "",
	             old && *old ? ":" : "");
	if (n < 0 || (size_t)n >= sizeof(val))
		TEST_DIE("%s is too long", name);
	if (setenv(name, val, 1) != 0)
		TEST_DIE("setenv %s: %s", name, strerror(errno));
#endif
}

int main(int argc, char **argv)
{
	static struct ctx c;
	uint64_t seed;
	double t0 = now_sec();
	bool failed = false;

	if (argc > 1 && strcmp(argv[1], "--child") == 0)
		return child_main(argc, argv);

	c.argv0 = argv[0];
	parse_args(argc, argv, &c);
	children_halt_on_error();
	key_table_init(&c);
	printf("stress_crash: seed %" PRIu64 " (replay: --seed %" PRIu64 "), %u cycles, %u writers, "
	       "%u keys, %s%s\n", c.seed, c.seed, c.cycles, WRITERS, NKEYS, c.db,
	       c.smoke ? ", smoke" : "");
	fflush(stdout);

	seed = c.seed;
	for (unsigned i = 0; i < c.cycles; i++) {
		run_cycle(&c, i, seed);
		if (c.cycle_failures) {
			failed = true;
			break;
		}
		if ((i + 1) % (c.smoke ? 5 : 50) == 0 && i + 1 < c.cycles) {
			char head[64];

			snprintf(head, sizeof(head), "stress_crash: %u/%u:", i + 1, c.cycles);
			print_totals(&c, head, t0);
		}
		seed = mix64(seed);
	}
	print_totals(&c, failed ? "stress_crash: FAILED," : "stress_crash: passed,", t0);
	if (!failed && !c.keep) {
		char pat[4300];
		glob_t g;

		apitest_rm_tree(c.db);
		/* And the siblings in which kills cut a database's creation
		 * short (shard/db.c, create_db: nothing reads them). */
		snprintf(pat, sizeof(pat), "%s.omen-new-*", c.db);
		if (glob(pat, GLOB_NOSORT, NULL, &g) == 0) {
			for (size_t i = 0; i < g.gl_pathc; i++)
				apitest_rm_tree(g.gl_pathv[i]);
			globfree(&g);
		}
		if (c.base_created)
			rmdir(c.base);
	} else {
		printf("stress_crash: the database is in %s\n", c.db);
	}

	for (size_t s = 0; s < NKEYS; s++)
		free(c.keys[s].pend);
	for (unsigned w = 0; w < WRITERS; w++)
		free(c.ops[w].recs);
	free(c.keys);
	free(c.by_key);
	return failed ? 1 : 0;
}
