/*
 * tests/test_engine_diff.c — the engine under concurrent writers, readers
 * and a scanner, checked against exact per-thread oracles, through the
 * public API only (<omendb.h>, libomendb.so).
 *
 * The key universe (uniform keys, device<<44|ts keys, dense clusters and
 * the ends of the key space) is split between the writers: each writer is
 * the only one writing its keys, so it knows their exact state.  Per key,
 * the writer numbers its operations 1, 2, 3, ...; what operation n of key
 * k does is a function of (k, n): a delete, an empty value, or a value that
 * carries k and n (and a length and filler derived from them).  Two shared
 * counters per key tell every other thread where the key stands:
 *   issued[k]  the last operation number handed to the engine (stored
 *              before the call, release);
 *   acked[k]   the last one acknowledged: a synchronous call returned, or
 *              an omen_flush returned after the key was ingested (stored
 *              after, release).
 * A read loads acked before it and issued after it; the state it sees must
 * be the state after some operation m with acked <= m <= issued (and for
 * a value, exactly the value of that m).  That is read-your-acknowledged-
 * writes for every thread and "never a value that was not written" in one
 * check.
 *
 * Threads:
 *  - writers: first 70% of their keys in batches of 64 (omen_write or
 *    omen_ingest_batch), so that every run crosses the moment a new
 *    database sets its shard boundaries and moves keys out of shard 0
 *    while readers and the scanner run; then a random mix of omen_put /
 *    omen_delete, omen_write of batches with repeated keys, omen_ingest,
 *    omen_ingest_batch, "ingest K then put K", and omen_flush; after each
 *    synchronous call the keys it wrote, and after each flush every key
 *    ingested since the last one, must read back exactly (omen_get);
 *  - readers: omen_get of random keys (a tenth as size queries, a tenth of
 *    keys outside the universe, which must stay absent), checked as above;
 *    a key read twice in a row must not go back to an older value;
 *  - a scanner: omen_iter_open over random ranges (a tenth the whole key
 *    space): strictly ascending keys inside the range, every value valid
 *    as above, and every key whose acknowledged state before the open was
 *    a value, and that was not touched during the scan, returned.
 * Then the writers stop, and the whole contents (every key by omen_get,
 * one full scan, the key counts of the statistics) must equal the union of
 * the oracles; again after omen_close and a reopen with shards = 0.
 *
 * Cases: 2 shards; 4 shards with queues of depth 16 (ingest blocks often).
 * OMEN_TEST_SEED=<n> (or "random") replays the key sets and every writer's
 * choices (thread interleavings are not reproducible: rerun a failure a
 * few times with its seed); OMEN_TEST_SCALE=<factor> scales the work;
 * OMEN_TEST_ONLY=<text> runs the cases whose name contains <text>;
 * OMEN_TEST_KEEP=1 keeps the databases (under $TMPDIR or /tmp).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <omendb.h>

#include "tests/lib/apitest.h"
#include "tests/lib/datasets.h"
#include "tests/lib/tap.h"
#include "tests/lib/util.h"

#define DEFAULT_SEED UINT64_C(20240802)

/* At scale 1 the two cases take about 10 s of a -O2 build on two cores
 * (20000 operations per writer), 23 s under ThreadSanitizer. */
#if defined(OMEN_TSAN)
#define DEFAULT_SCALE 0.4
#elif defined(OMEN_ASAN) || defined(OMEN_DEBUG)
#define DEFAULT_SCALE 0.6
#else
#define DEFAULT_SCALE 1.0
#endif

#define NWRITERS 4
#define NREADERS 2
#define KEYS_PER_WRITER 2500   /* the least too: see load_phase */
#define OPS_PER_WRITER 20000
#define DEADLINE_SEC 300.0   /* writers give up here (a hang, not a size) */
#define VAL_CAP 128

static uint64_t g_seed;
static double g_scale;
static char base[4096];

static size_t scaled(size_t n, size_t floor)
{
	double v = (double)n * g_scale;

	return v < (double)floor ? floor : (size_t)v;
}

static uint64_t mix64(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

/* ------------------------------------------------- operations, values */

enum op_kind { OP_DELETE, OP_EMPTY, OP_VALUE };

/* What operation n (>= 1) of key does: a fifth deletes, a few write an
 * empty value, the rest a value. */
static enum op_kind op_kind(uint64_t key, uint64_t n)
{
	uint64_t h = mix64(key ^ mix64(n));

	if (h % 5 == 0)
		return OP_DELETE;
	if (h % 13 == 1)
		return OP_EMPTY;
	return OP_VALUE;
}

/* The value operation n of key writes (OP_VALUE): key, n, then 0..63
 * bytes of filler.  Returns its length; 0 for OP_EMPTY and OP_DELETE. */
static size_t op_value(uint64_t key, uint64_t n, unsigned char *buf)
{
	uint64_t h = mix64(~key ^ mix64(n + 17));
	size_t len;

	if (op_kind(key, n) != OP_VALUE)
		return 0;
	len = 16 + (size_t)(h % 64);
	memcpy(buf, &key, 8);
	memcpy(buf + 8, &n, 8);
	for (size_t i = 16; i < len; i++)
		buf[i] = (unsigned char)((h >> (8 * (i & 7))) + i);
	return len;
}

/*
 * Is what a read saw the state after some operation m of key with
 * a <= m <= i?  rc is omen_get's result (or OMEN_OK for an iterator
 * record); v/len the value; size_only: a size query (cap 0), where v is not
 * available and OMEN_ERANGE carries the length.  *op_seen gets m when the
 * value names it, else 0.
 */
static bool state_valid(uint64_t key, uint64_t a, uint64_t i, int rc, const void *v, size_t len,
			bool size_only, uint64_t *op_seen)
{
	unsigned char want[VAL_CAP];
	uint64_t lo = a ? a : 1;

	*op_seen = 0;
	if (i < a || i - a > 1000000)
		return false;
	if (rc == OMEN_ENOTFOUND) {
		if (a == 0)
			return true;
		for (uint64_t m = lo; m <= i; m++)
			if (op_kind(key, m) == OP_DELETE)
				return true;
		return false;
	}
	if ((rc == OMEN_OK && len == 0)) {
		for (uint64_t m = lo; m <= i; m++)
			if (op_kind(key, m) == OP_EMPTY)
				return true;
		return false;
	}
	if (size_only) {
		if (rc != OMEN_ERANGE)
			return false;
		for (uint64_t m = lo; m <= i; m++)
			if (op_kind(key, m) == OP_VALUE && op_value(key, m, want) == len)
				return true;
		return false;
	}
	if (rc == OMEN_OK && len >= 16 && v != NULL) {
		uint64_t k2, n;

		memcpy(&k2, v, 8);
		memcpy(&n, (const unsigned char *)v + 8, 8);
		if (k2 != key || n < lo || n > i || op_kind(key, n) != OP_VALUE ||
		    op_value(key, n, want) != len || memcmp(v, want, len) != 0)
			return false;
		*op_seen = n;
		return true;
	}
	return false;
}

/* ---------------------------------------------------------- failures */

enum { F_OP, F_RYW, F_READ, F_PHANTOM, F_MONOTONIC, F_ORDER, F_MISSING, F_NCAT };
static const char *const fail_names[F_NCAT] = {
	"engine call failed", "read-your-writes mismatch", "read outside the allowed states",
	"key outside the universe", "read went back in time", "scan order or range",
	"acknowledged key missing from a scan",
};

struct fails {
	size_t n[F_NCAT];
	int nmsg;
	char msg[6][240];
};

static void fail_note(struct fails *f, int cat, const char *fmt, ...) TAP_PRINTF(3, 4);
static void fail_note(struct fails *f, int cat, const char *fmt, ...)
{
	va_list ap;

	f->n[cat]++;
	if (f->nmsg >= 6)
		return;
	va_start(ap, fmt);
	vsnprintf(f->msg[f->nmsg++], sizeof(f->msg[0]), fmt, ap);
	va_end(ap);
}

static size_t fails_total(const struct fails *f)
{
	size_t t = 0;

	for (int c = 0; c < F_NCAT; c++)
		t += f->n[c];
	return t;
}

static void fails_report(const struct fails *f, const char *who)
{
	for (int c = 0; c < F_NCAT; c++)
		if (f->n[c])
			diag("%s: %zu x %s", who, f->n[c], fail_names[c]);
	for (int j = 0; j < f->nmsg; j++)
		diag("%s:   %s", who, f->msg[j]);
}

/* -------------------------------------------------------- shared state */

struct ctx {
	omen_db *db;
	uint64_t *keys;            /* the universe, ascending              */
	size_t n;
	_Atomic uint64_t *issued;  /* per key: see the top of the file    */
	_Atomic uint64_t *acked;
	atomic_bool stop;          /* readers and scanner stop            */
	size_t ops;                /* per writer                          */
	double deadline;
	uint64_t seed;
};

static size_t key_index(const struct ctx *c, uint64_t key)
{
	size_t i = ds_lower_bound(c->keys, c->n, key);

	return i < c->n && c->keys[i] == key ? i : SIZE_MAX;
}

/* Exact check of key i against its last issued operation (its writer, or
 * anyone once writers have stopped). */
static bool check_exact(omen_db *db, const struct ctx *c, size_t i, struct fails *f, int cat,
			const char *when)
{
	unsigned char got[VAL_CAP], want[VAL_CAP];
	uint64_t key = c->keys[i];
	uint64_t n = atomic_load_explicit(&c->issued[i], memory_order_relaxed);
	enum op_kind kind = n ? op_kind(key, n) : OP_DELETE;
	size_t wl = n ? op_value(key, n, want) : 0, len = 999;
	int rc = omen_get(db, key, got, sizeof(got), &len);
	bool good;

	if (kind == OP_DELETE)
		good = rc == OMEN_ENOTFOUND;
	else
		good = rc == OMEN_OK && len == wl && memcmp(got, want, wl) == 0;
	if (!good)
		fail_note(f, cat, "%s: key 0x%016" PRIx64 " op %" PRIu64 " (%s): got %s len %zu", when,
			  key, n, kind == OP_DELETE ? "absent" : kind == OP_EMPTY ? "empty" : "value",
			  omen_strerror(rc), rc == OMEN_OK ? len : 0);
	return good;
}

/* ------------------------------------------------------------ writers */

enum { W_PUT, W_WRITE, W_INGEST, W_INGEST_BATCH, W_INGEST_THEN_PUT, W_FLUSH, W_NOPS };

struct writer {
	struct ctx *c;
	unsigned id;
	size_t *own;        /* indices into c->keys of this writer's keys */
	size_t nown;
	uint8_t *dirty;     /* per universe index: ingested since the last flush */
	size_t *dirty_list;
	size_t ndirty;
	size_t recent[16];  /* recently written keys, for repeats */
	size_t nrecent;
	size_t done[W_NOPS];
	ds_rng r;
	struct fails f;
	pthread_t th;
};

static size_t pick_key(struct writer *w)
{
	size_t i;

	if (w->nrecent && ds_rng_next(&w->r) % 10 < 3)
		return w->recent[ds_rng_next(&w->r) % (w->nrecent < 16 ? w->nrecent : 16)];
	i = w->own[ds_rng_next(&w->r) % w->nown];
	w->recent[w->nrecent++ % 16] = i;
	return i;
}

static uint64_t issue(struct writer *w, size_t i)
{
	uint64_t n = atomic_load_explicit(&w->c->issued[i], memory_order_relaxed) + 1;

	atomic_store_explicit(&w->c->issued[i], n, memory_order_release);
	return n;
}

static void ack(struct writer *w, size_t i)
{
	atomic_store_explicit(&w->c->acked[i],
			      atomic_load_explicit(&w->c->issued[i], memory_order_relaxed),
			      memory_order_release);
}

static void mark_dirty(struct writer *w, size_t i)
{
	if (!w->dirty[i]) {
		w->dirty[i] = 1;
		w->dirty_list[w->ndirty++] = i;
	}
}

/* One synchronous put or delete (as operation n of key i says). */
static int sync_one(struct writer *w, size_t i)
{
	unsigned char v[VAL_CAP];
	uint64_t key = w->c->keys[i], n = issue(w, i);
	size_t len;

	if (op_kind(key, n) == OP_DELETE)
		return omen_delete(w->c->db, key);
	len = op_value(key, n, v);
	return omen_put(w->c->db, key, len ? v : NULL, len);
}

/* Queue one operation on key i: omen_ingest, or a one-record
 * omen_ingest_batch for a delete (there is no single-key ingest delete). */
static int ingest_one(struct writer *w, size_t i, omen_batch *b)
{
	unsigned char v[VAL_CAP];
	uint64_t key = w->c->keys[i], n = issue(w, i);
	size_t len;
	int rc;

	if (op_kind(key, n) == OP_DELETE) {
		omen_batch_clear(b);
		omen_batch_delete(b, key);
		rc = omen_ingest_batch(w->c->db, b);
	} else {
		len = op_value(key, n, v);
		rc = omen_ingest(w->c->db, key, len ? v : NULL, len);
	}
	mark_dirty(w, i);
	return rc;
}

/* Fill b with 2..max records, a third of them repeating a key already in
 * it; keys[] gets the distinct keys. */
static size_t fill_batch(struct writer *w, omen_batch *b, size_t max, size_t *keys)
{
	size_t nrec = 2 + (size_t)(ds_rng_next(&w->r) % (max - 1)), nk = 0;
	unsigned char v[VAL_CAP];

	omen_batch_clear(b);
	for (size_t j = 0; j < nrec; j++) {
		size_t i;
		uint64_t n, key;

		if (nk && ds_rng_next(&w->r) % 3 == 0) {
			i = keys[ds_rng_next(&w->r) % nk];
		} else {
			i = pick_key(w);
			bool seen = false;

			for (size_t t = 0; t < nk; t++)
				seen = seen || keys[t] == i;
			if (!seen)
				keys[nk++] = i;
		}
		key = w->c->keys[i];
		n = issue(w, i);
		if (op_kind(key, n) == OP_DELETE) {
			omen_batch_delete(b, key);
		} else {
			size_t len = op_value(key, n, v);

			omen_batch_put(b, key, len ? v : NULL, len);
		}
	}
	return nk;
}

static void flush_and_check(struct writer *w)
{
	int rc = omen_flush(w->c->db);

	if (rc != OMEN_OK)
		fail_note(&w->f, F_OP, "writer %u: omen_flush: %s", w->id, omen_strerror(rc));
	for (size_t j = 0; j < w->ndirty; j++) {
		size_t i = w->dirty_list[j];

		ack(w, i);
		check_exact(w->c->db, w->c, i, &w->f, F_RYW, "after omen_flush");
		w->dirty[i] = 0;
	}
	w->ndirty = 0;
}

/*
 * First, most of this writer's keys in batches of 64 (omen_write or
 * omen_ingest_batch at random): a new database collects keys in shard 0
 * until it sets its boundaries, and this makes it do so early in every
 * run, whatever the scale, while the readers and the scanner run.
 */
static void load_phase(struct writer *w, omen_batch *b)
{
	unsigned char v[VAL_CAP];
	size_t nload = w->nown * 7 / 10, bkeys[64];

	for (size_t j = 0; j < nload;) {
		size_t nb = 0;
		bool sync = ds_rng_next(&w->r) % 2 == 0;
		int rc;

		omen_batch_clear(b);
		for (; j < nload && nb < 64; j++) {
			size_t i = w->own[j];
			uint64_t key = w->c->keys[i], n = issue(w, i);

			if (op_kind(key, n) == OP_DELETE) {
				omen_batch_delete(b, key);
			} else {
				size_t len = op_value(key, n, v);

				omen_batch_put(b, key, len ? v : NULL, len);
			}
			bkeys[nb++] = i;
		}
		rc = sync ? omen_write(w->c->db, b) : omen_ingest_batch(w->c->db, b);
		if (rc != OMEN_OK) {
			fail_note(&w->f, F_OP, "writer %u: load: %s (%s)", w->id, omen_strerror(rc),
				  omen_errmsg());
			continue;
		}
		for (size_t t = 0; t < nb; t++) {
			if (sync) {
				ack(w, bkeys[t]);
				check_exact(w->c->db, w->c, bkeys[t], &w->f, F_RYW, "after omen_write (load)");
			} else {
				mark_dirty(w, bkeys[t]);
			}
		}
	}
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct ctx *c = w->c;
	omen_batch *b = omen_batch_new(), *b1 = omen_batch_new();
	size_t bkeys[64];

	if (!b || !b1)
		TEST_DIE("omen_batch_new");
	load_phase(w, b);
	for (size_t step = 0; step < c->ops; step++) {
		unsigned r = (unsigned)(ds_rng_next(&w->r) % 100);
		int op = r < 25 ? W_PUT : r < 40 ? W_WRITE : r < 70 ? W_INGEST : r < 83 ? W_INGEST_BATCH
		       : r < 93 ? W_INGEST_THEN_PUT : W_FLUSH;
		size_t i, nk;
		int rc = OMEN_OK;

		if ((step & 63) == 0 && now_sec() > c->deadline) {
			fail_note(&w->f, F_OP, "writer %u: deadline after %zu steps", w->id, step);
			break;
		}
		w->done[op]++;
		switch (op) {
		case W_PUT:
			i = pick_key(w);
			rc = sync_one(w, i);
			if (rc == OMEN_OK) {
				ack(w, i);
				check_exact(c->db, c, i, &w->f, F_RYW, "after omen_put/omen_delete");
			}
			break;
		case W_WRITE:
			nk = fill_batch(w, b, 24, bkeys);
			rc = omen_write(c->db, b);
			for (size_t j = 0; rc == OMEN_OK && j < nk; j++) {
				ack(w, bkeys[j]);
				check_exact(c->db, c, bkeys[j], &w->f, F_RYW, "after omen_write");
			}
			break;
		case W_INGEST:
			rc = ingest_one(w, pick_key(w), b1);
			break;
		case W_INGEST_BATCH:
			nk = fill_batch(w, b, 40, bkeys);
			rc = omen_ingest_batch(c->db, b);
			for (size_t j = 0; j < nk; j++)
				mark_dirty(w, bkeys[j]);
			break;
		case W_INGEST_THEN_PUT:
			i = pick_key(w);
			rc = ingest_one(w, i, b1);
			if (rc == OMEN_OK)
				rc = sync_one(w, i);
			if (rc == OMEN_OK) {
				/* The synchronous call came after the ingest: both are
				 * applied, in order, when it returns. */
				ack(w, i);
				check_exact(c->db, c, i, &w->f, F_RYW, "ingest K then put/delete K");
			}
			break;
		default:
			flush_and_check(w);
			break;
		}
		if (rc != OMEN_OK)
			fail_note(&w->f, F_OP, "writer %u step %zu op %d: %s (%s)", w->id, step, op,
				  omen_strerror(rc), omen_errmsg());
	}
	flush_and_check(w);
	omen_batch_free(b);
	omen_batch_free(b1);
	return NULL;
}

/* ------------------------------------------------------------ readers */

struct reader {
	struct ctx *c;
	unsigned id;
	size_t reads, absent_probes, size_queries;
	struct fails f;
	pthread_t th;
};

static void nap(long ns)
{
	struct timespec ts = { 0, ns };

	nanosleep(&ts, NULL);
}

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	struct ctx *c = rd->c;
	ds_rng r;

	ds_rng_seed(&r, mix64(c->seed ^ (0x5eadu + rd->id)));
	while (!atomic_load_explicit(&c->stop, memory_order_acquire)) {
		for (int burst = 0; burst < 128; burst++) {
			unsigned char buf[VAL_CAP];
			unsigned dice = (unsigned)(ds_rng_next(&r) % 10);
			size_t i = (size_t)(ds_rng_next(&r) % c->n), len = 0;
			uint64_t key = c->keys[i], a, is, seen = 0, seen2 = 0;
			bool size_only = dice == 1;
			int rc;

			if (dice == 0) {
				/* A key outside the universe is never there. */
				key = ds_rng_next(&r);
				if (key_index(c, key) != SIZE_MAX)
					continue;
				rc = omen_get(c->db, key, buf, sizeof(buf), &len);
				rd->absent_probes++;
				if (rc != OMEN_ENOTFOUND)
					fail_note(&rd->f, F_PHANTOM, "reader %u: get of 0x%016" PRIx64
						  " (never written): %s", rd->id, key, omen_strerror(rc));
				continue;
			}
			a = atomic_load_explicit(&c->acked[i], memory_order_acquire);
			if (size_only) {
				rc = omen_get(c->db, key, NULL, 0, &len);
				rd->size_queries++;
			} else {
				rc = omen_get(c->db, key, buf, sizeof(buf), &len);
			}
			is = atomic_load_explicit(&c->issued[i], memory_order_acquire);
			rd->reads++;
			if (!state_valid(key, a, is, rc, buf, len, size_only, &seen)) {
				fail_note(&rd->f, F_READ, "reader %u: key 0x%016" PRIx64 " acked %" PRIu64
					  " issued %" PRIu64 ": %s len %zu%s", rd->id, key, a, is,
					  omen_strerror(rc), len, size_only ? " (size query)" : "");
				continue;
			}
			if (seen == 0 || dice > 3)
				continue;
			/* Read it again: never an older value than the one just seen. */
			len = 0;
			rc = omen_get(c->db, key, buf, sizeof(buf), &len);
			is = atomic_load_explicit(&c->issued[i], memory_order_acquire);
			if (!state_valid(key, seen, is, rc, buf, len, false, &seen2))
				fail_note(&rd->f, F_MONOTONIC, "reader %u: key 0x%016" PRIx64 " read op %"
					  PRIu64 ", then %s len %zu (op %" PRIu64 ", issued %" PRIu64 ")",
					  rd->id, key, seen, omen_strerror(rc), len, seen2, is);
		}
		nap(100000);
	}
	return NULL;
}

/* ------------------------------------------------------------ scanner */

struct scanner {
	struct ctx *c;
	size_t scans, records, full_scans;
	struct fails f;
	pthread_t th;
};

/* One scan of [lo, hi] checked against the shared counters. */
static void scan_check(struct ctx *c, uint64_t lo, uint64_t hi, struct fails *f, size_t *records)
{
	size_t ilo = ds_lower_bound(c->keys, c->n, lo);
	size_t ihi = hi == UINT64_MAX ? c->n : ds_lower_bound(c->keys, c->n, hi + 1);
	uint64_t *snap = xmalloc((ihi - ilo + 1) * sizeof(uint64_t));
	uint8_t *returned = xcalloc(ihi - ilo + 1, 1);
	omen_iter *it = NULL;
	uint64_t prev = 0, k;
	const void *v;
	size_t len, got = 0;
	int rc;

	for (size_t i = ilo; i < ihi; i++)
		snap[i - ilo] = atomic_load_explicit(&c->acked[i], memory_order_acquire);
	rc = omen_iter_open(c->db, lo, hi, &it);
	if (rc != OMEN_OK) {
		fail_note(f, F_OP, "omen_iter_open [0x%" PRIx64 ", 0x%" PRIx64 "]: %s", lo, hi,
			  omen_strerror(rc));
		goto out;
	}
	while ((rc = omen_iter_next(it, &k, &v, &len)) == OMEN_OK) {
		size_t i;
		uint64_t seen;

		if (k < lo || k > hi || (got && k <= prev)) {
			fail_note(f, F_ORDER, "scan [0x%" PRIx64 ", 0x%" PRIx64 "]: key 0x%" PRIx64
				  " after 0x%" PRIx64, lo, hi, k, prev);
			break;
		}
		prev = k;
		got++;
		i = key_index(c, k);
		if (i == SIZE_MAX) {
			fail_note(f, F_PHANTOM, "scan: key 0x%016" PRIx64 " is outside the universe", k);
			continue;
		}
		returned[i - ilo] = 1;
		if (!state_valid(k, snap[i - ilo],
				 atomic_load_explicit(&c->issued[i], memory_order_acquire), OMEN_OK, v, len,
				 false, &seen))
			fail_note(f, F_READ, "scan: key 0x%016" PRIx64 " acked %" PRIu64 " before the "
				  "open, issued %" PRIu64 ": a value (len %zu) outside the allowed states",
				  k, snap[i - ilo], atomic_load(&c->issued[i]), len);
	}
	if (rc != OMEN_END)
		fail_note(f, F_OP, "omen_iter_next: %s", omen_strerror(rc));
	else if (omen_iter_next(it, &k, &v, &len) != OMEN_END)
		fail_note(f, F_OP, "omen_iter_next after OMEN_END: not OMEN_END");
	omen_iter_close(it);
	*records += got;
	if (rc != OMEN_END)
		goto out;
	/* Acknowledged as a value (or empty) before the open and untouched
	 * since: it must have come. */
	for (size_t i = ilo; i < ihi; i++) {
		uint64_t a = snap[i - ilo];

		if (returned[i - ilo] || a == 0 || op_kind(c->keys[i], a) == OP_DELETE)
			continue;
		if (atomic_load_explicit(&c->issued[i], memory_order_acquire) == a)
			fail_note(f, F_MISSING, "scan [0x%" PRIx64 ", 0x%" PRIx64 "]: key 0x%016" PRIx64
				  " (op %" PRIu64 ", acknowledged, untouched) not returned", lo, hi,
				  c->keys[i], a);
	}
out:
	free(snap);
	free(returned);
}

static void *scanner_main(void *arg)
{
	struct scanner *s = arg;
	struct ctx *c = s->c;
	ds_rng r;

	ds_rng_seed(&r, mix64(c->seed ^ 0x5ca7));
	while (!atomic_load_explicit(&c->stop, memory_order_acquire)) {
		uint64_t lo, hi;
		unsigned dice = (unsigned)(ds_rng_next(&r) % 10);

		if (dice == 0) {
			lo = 0;
			hi = UINT64_MAX;
			s->full_scans++;
		} else {
			size_t i = (size_t)(ds_rng_next(&r) % c->n);
			size_t j = i + (size_t)(ds_rng_next(&r) % 600);

			lo = dice == 1 ? ds_rng_next(&r) : c->keys[i] - (dice == 2);
			hi = j < c->n ? c->keys[j] + (dice == 3) : UINT64_MAX;
			if (lo > hi) {
				uint64_t t = lo;

				lo = hi;
				hi = t;
			}
		}
		scan_check(c, lo, hi, &s->f, &s->records);
		s->scans++;
		nap(1000000);
	}
	return NULL;
}

/* ------------------------------------------------------- final checks */

/* Every key against its last operation, one full scan, the statistics. */
static void verify_all(struct ctx *c, const char *name, const char *when)
{
	struct fails f;
	size_t live = 0, got = 0, i = 0;
	omen_iter *it = NULL;
	omen_stats s;
	uint64_t k, shard_keys = 0;
	unsigned used = 0;
	const void *v;
	size_t len;
	int rc;

	memset(&f, 0, sizeof(f));
	for (size_t j = 0; j < c->n; j++) {
		uint64_t n = atomic_load(&c->issued[j]);

		live += n && op_kind(c->keys[j], n) != OP_DELETE;
		check_exact(c->db, c, j, &f, F_RYW, when);
	}
	if (!ok(fails_total(&f) == 0, "%s: %s: every one of %zu keys (%zu live) as its writer left it",
		name, when, c->n, live))
		fails_report(&f, when);

	memset(&f, 0, sizeof(f));
	rc = omen_iter_open(c->db, 0, UINT64_MAX, &it);
	while (rc == OMEN_OK && (rc = omen_iter_next(it, &k, &v, &len)) == OMEN_OK) {
		unsigned char want[VAL_CAP];
		uint64_t n;

		/* Skip the keys that should be absent. */
		while (i < c->n && c->keys[i] < k) {
			n = atomic_load(&c->issued[i]);
			if (n && op_kind(c->keys[i], n) != OP_DELETE)
				fail_note(&f, F_MISSING, "full scan: key 0x%016" PRIx64 " missing", c->keys[i]);
			i++;
		}
		got++;
		if (i == c->n || c->keys[i] != k) {
			fail_note(&f, F_PHANTOM, "full scan: key 0x%016" PRIx64 " never written", k);
			continue;
		}
		n = atomic_load(&c->issued[i]);
		if (!n || op_kind(k, n) == OP_DELETE || op_value(k, n, want) != len ||
		    (len && memcmp(v, want, len) != 0))
			fail_note(&f, F_READ, "full scan: key 0x%016" PRIx64 " op %" PRIu64 ": wrong "
				  "record (len %zu)", k, n, len);
		i++;
	}
	for (; i < c->n; i++) {
		uint64_t n = atomic_load(&c->issued[i]);

		if (n && op_kind(c->keys[i], n) != OP_DELETE)
			fail_note(&f, F_MISSING, "full scan: key 0x%016" PRIx64 " missing", c->keys[i]);
	}
	omen_iter_close(it);
	if (rc != OMEN_END)
		fail_note(&f, F_OP, "full scan: %s", omen_strerror(rc));
	if (!ok(fails_total(&f) == 0 && got == live, "%s: %s: one full scan returns exactly the "
		"%zu live keys (%zu)", name, when, live, got))
		fails_report(&f, when);

	memset(&s, 0, sizeof(s));
	omen_get_stats(c->db, &s);
	for (unsigned sh = 0; sh < s.shards; sh++) {
		omen_shard_stats ss;

		memset(&ss, 0, sizeof(ss));
		omen_get_shard_stats(c->db, sh, &ss);
		shard_keys += ss.keys;
		used += ss.keys > 0;
	}
	ok(s.keys == live && shard_keys == live && s.queued == 0, "%s: %s: stats: %" PRIu64
	   " keys (shards: %" PRIu64 "), %" PRIu64 " queued", name, when, s.keys, shard_keys,
	   s.queued);
	is_int(used, s.shards, "%s: %s: every shard holds keys (the writes crossed shards)", name,
	       when);
}

/* ---------------------------------------------------------------- cases */

struct dcase {
	const char *name;
	unsigned shards;
	unsigned queue_depth;
};

static const struct dcase cases[] = {
	{ "2 shards", 2, 0 },
	{ "4 shards, queue depth 16", 4, 16 },
};

/* The universe: uniform, device<<44|ts and clustered keys, and the ends. */
static uint64_t *make_universe(uint64_t seed, size_t total, size_t *n_out)
{
	uint64_t *k = xmalloc((total + 8) * sizeof(uint64_t));
	size_t nu = total / 2, nd = total / 4, nc = total - nu - nd;

	ds_generate(DS_UNIFORM, seed, k, nu);
	ds_generate(DS_DEVICE, seed + 1, k + nu, nd);
	ds_generate(DS_CLUSTERS, seed + 2, k + nu + nd, nc);
	k[total] = 0;
	k[total + 1] = UINT64_MAX;
	k[total + 2] = UINT64_C(1) << 63;
	*n_out = ds_sort_unique(k, total + 3);
	return k;
}

static void run_case(const struct dcase *tc)
{
	struct ctx c;
	struct writer w[NWRITERS];
	struct reader rd[NREADERS];
	struct scanner sc;
	omen_options o;
	char path[4200];
	uint64_t *owner_perm;
	size_t totals[W_NOPS] = { 0 }, reads = 0, probes = 0, sizeq = 0;
	double t0 = now_sec(), t_run;
	struct fails none;
	int rc;

	memset(&c, 0, sizeof(c));
	memset(&none, 0, sizeof(none));
	c.seed = case_seed(g_seed, tc->name);
	c.keys = make_universe(c.seed, NWRITERS * scaled(KEYS_PER_WRITER, KEYS_PER_WRITER), &c.n);
	c.issued = xcalloc(c.n, sizeof(c.issued[0]));
	c.acked = xcalloc(c.n, sizeof(c.acked[0]));
	for (size_t i = 0; i < c.n; i++) {
		atomic_init(&c.issued[i], 0);
		atomic_init(&c.acked[i], 0);
	}
	atomic_init(&c.stop, false);
	c.ops = scaled(OPS_PER_WRITER, 200);
	c.deadline = now_sec() + DEADLINE_SEC;
	diag("%s: seed %" PRIu64 ", %zu keys, %d writers x %zu operations, %d readers, 1 scanner",
	     tc->name, c.seed, c.n, NWRITERS, c.ops, NREADERS);

	snprintf(path, sizeof(path), "%s/%u-shards", base, tc->shards);
	omen_options_init(&o);
	o.shards = tc->shards;
	o.queue_depth = tc->queue_depth;
	rc = omen_open(path, &o, &c.db);
	if (!is_int(rc, OMEN_OK, "%s: open", tc->name))
		bail_out("open %s: %s", path, omen_errmsg());

	/* Deal the keys out at random: every writer's keys span every shard. */
	owner_perm = xmalloc(c.n * sizeof(uint64_t));
	for (size_t i = 0; i < c.n; i++)
		owner_perm[i] = i;
	ds_shuffle(owner_perm, c.n, c.seed ^ 0xdea1);
	for (unsigned t = 0; t < NWRITERS; t++) {
		memset(&w[t], 0, sizeof(w[t]));
		w[t].c = &c;
		w[t].id = t;
		w[t].own = xmalloc((c.n / NWRITERS + 1) * sizeof(size_t));
		w[t].dirty = xcalloc(c.n, 1);
		w[t].dirty_list = xmalloc(c.n * sizeof(size_t));
		ds_rng_seed(&w[t].r, mix64(c.seed ^ (0x3417u + t)));
	}
	for (size_t i = 0; i < c.n; i++) {
		struct writer *ww = &w[i % NWRITERS];

		ww->own[ww->nown++] = (size_t)owner_perm[i];
	}
	free(owner_perm);

	for (unsigned t = 0; t < NREADERS; t++) {
		memset(&rd[t], 0, sizeof(rd[t]));
		rd[t].c = &c;
		rd[t].id = t;
		if (pthread_create(&rd[t].th, NULL, reader_main, &rd[t]) != 0)
			bail_out("pthread_create");
	}
	memset(&sc, 0, sizeof(sc));
	sc.c = &c;
	if (pthread_create(&sc.th, NULL, scanner_main, &sc) != 0)
		bail_out("pthread_create");
	for (unsigned t = 0; t < NWRITERS; t++)
		if (pthread_create(&w[t].th, NULL, writer_main, &w[t]) != 0)
			bail_out("pthread_create");
	for (unsigned t = 0; t < NWRITERS; t++)
		pthread_join(w[t].th, NULL);
	atomic_store_explicit(&c.stop, true, memory_order_release);
	for (unsigned t = 0; t < NREADERS; t++)
		pthread_join(rd[t].th, NULL);
	pthread_join(sc.th, NULL);
	t_run = now_sec() - t0;

	for (unsigned t = 0; t < NWRITERS; t++) {
		char who[32];

		snprintf(who, sizeof(who), "writer %u", t);
		for (int op = 0; op < W_NOPS; op++)
			totals[op] += w[t].done[op];
		if (!ok(fails_total(&w[t].f) == 0, "%s: writer %u: every call OK, and read its own "
			"writes (%zu keys)", tc->name, t, w[t].nown))
			fails_report(&w[t].f, who);
	}
	diag("%s: %zu puts/deletes, %zu writes, %zu ingests, %zu ingest_batches, %zu ingest-then-put, "
	     "%zu flushes in %.1f s", tc->name, totals[W_PUT], totals[W_WRITE], totals[W_INGEST],
	     totals[W_INGEST_BATCH], totals[W_INGEST_THEN_PUT], totals[W_FLUSH], t_run);
	for (unsigned t = 0; t < NREADERS; t++) {
		char who[32];

		snprintf(who, sizeof(who), "reader %u", t);
		reads += rd[t].reads;
		probes += rd[t].absent_probes;
		sizeq += rd[t].size_queries;
		if (!ok(fails_total(&rd[t].f) == 0, "%s: reader %u: every read a state its key had "
			"between acknowledgement and issue, never older than one seen", tc->name, t))
			fails_report(&rd[t].f, who);
	}
	if (!ok(fails_total(&sc.f) == 0, "%s: scanner: %zu scans (%zu whole), %zu records: ascending, "
		"in range, valid, no acknowledged key missing", tc->name, sc.scans, sc.full_scans,
		sc.records))
		fails_report(&sc.f, "scanner");
	diag("%s: readers: %zu gets (%zu size queries), %zu probes of absent keys", tc->name, reads,
	     sizeq, probes);
	ok(reads > 0 && sc.scans > 0, "%s: readers and the scanner ran during the writes", tc->name);

	is_int(omen_flush(c.db), OMEN_OK, "%s: flush", tc->name);
	verify_all(&c, tc->name, "after the run");
	is_int(omen_close(c.db), OMEN_OK, "%s: close", tc->name);
	omen_options_init(&o);
	c.db = NULL;
	rc = omen_open(path, &o, &c.db);
	if (!is_int(rc, OMEN_OK, "%s: reopen with shards 0", tc->name))
		bail_out("reopen %s: %s", path, omen_errmsg());
	{
		omen_stats s;

		memset(&s, 0, sizeof(s));
		omen_get_stats(c.db, &s);
		is_int(s.shards, tc->shards, "%s: reopened with its %u shards", tc->name, tc->shards);
	}
	verify_all(&c, tc->name, "reopened");
	is_int(omen_close(c.db), OMEN_OK, "%s: close again", tc->name);

	if (tap_state.failed)
		diag("%s: replay with OMEN_TEST_SEED=%" PRIu64 " OMEN_TEST_ONLY='%s'", tc->name, g_seed,
		     tc->name);
	for (unsigned t = 0; t < NWRITERS; t++) {
		free(w[t].own);
		free(w[t].dirty);
		free(w[t].dirty_list);
	}
	free(c.keys);
	free((void *)c.issued);
	free((void *)c.acked);
}

int main(void)
{
	const char *only = getenv("OMEN_TEST_ONLY");
	double t0 = now_sec();

	g_seed = test_seed_from_env(DEFAULT_SEED);
	g_scale = apitest_scale(DEFAULT_SCALE);
	apitest_mkdtemp(base, sizeof(base), "test-engine-diff");
	plan_no_plan();
	diag("seed %" PRIu64 " (replay: OMEN_TEST_SEED=%" PRIu64 " [OMEN_TEST_ONLY=<case>]), "
	     "scale %.2f, databases under %s", g_seed, g_seed, g_scale, base);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double t1 = now_sec();

		if (only && !strstr(cases[i].name, only))
			continue;
		run_case(&cases[i]);
		diag("%s: %.1f s", cases[i].name, now_sec() - t1);
	}
	if (getenv("OMEN_TEST_KEEP"))
		diag("databases kept under %s", base);
	else
		apitest_rm_tree(base);
	diag("seed %" PRIu64 ", %.1f s", g_seed, now_sec() - t0);
	return done_testing();
}
