/*
 * tests/test_api.c — the contract of the public API (include/omendb.h,
 * API.md), through the shared library only: <omendb.h>, the TAP header
 * and tests/lib's seed and data set helpers; none of the engine's internals.
 *
 * Covered, mostly on one thread:
 *  - omen_options_init defaults, omen_strerror for every code, omen_errmsg
 *    never NULL and non-empty after a failing open;
 *  - every omen_open error (NULL arguments, missing directory, a file, a
 *    directory that is not a database, a damaged database, bad options,
 *    already open in this and in another process, another shard count),
 *    each leaving the directory exactly as it was, and the shard counts of
 *    new and existing databases;
 *  - put/get/delete at the ends of the key space, empty and OMEN_MAX_VALUE
 *    values, every get buffer case, absent keys, overwrites;
 *  - batches (last record of a key wins, empty, cleared and reused, value
 *    copied, argument errors);
 *  - ingest, ingest_batch and flush, one thread's order across the write
 *    paths, a flush waiting for another thread's records, non-blocking
 *    ingest (OMEN_OK or OMEN_EAGAIN only; an EAGAIN batch queues nothing)
 *    and blocking ingest through tiny queues;
 *  - iterators over 4 shards (wide and clustered keys, inclusive bounds at
 *    0 and UINT64_MAX, ranges around shard boundaries, NULL outputs,
 *    OMEN_END repeating, writes during an iteration, an iteration across
 *    the moment a new database sets its shard boundaries) and omen_close
 *    refusing while an iterator is open;
 *  - checkpoints (existing target refused, opened while the source is open
 *    and after it is closed, independent of the source);
 *  - statistics (per-shard ranges of a new database and once its
 *    boundaries are set, key, batch and record counts, bad shard numbers);
 *  - 64 short-lived threads writing and reading once each;
 *  - persistence through every write path under both durability levels
 *    with 3 shards and with 1, ingested records included (omen_close
 *    drains them), before and after the boundaries are set; and kill -9 of
 *    a writer process at a random moment: every acknowledged write is
 *    back, nothing that was never written appears.
 *
 * OMEN_TEST_SEED=<n> (or "random") picks the key sets; OMEN_TEST_SCALE
 * scales the larger loops.  Databases live under $TMPDIR (or /tmp) and are
 * removed at the end unless OMEN_TEST_KEEP is set.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <omendb.h>

#include "tests/lib/apitest.h"
#include "tests/lib/datasets.h"
#include "tests/lib/tap.h"
#include "tests/lib/util.h"

#define DEFAULT_SEED UINT64_C(20240801)

#if defined(OMEN_TSAN)
#define DEFAULT_SCALE 0.3
#elif defined(OMEN_ASAN) || defined(OMEN_DEBUG)
#define DEFAULT_SCALE 0.5
#else
#define DEFAULT_SCALE 1.0
#endif

_Static_assert(OMEN_MAX_VALUE >= 65536, "API.md: OMEN_MAX_VALUE is at least 65536");

static char base[4096];
static uint64_t g_seed;
static double g_scale;

static size_t scaled(size_t n, size_t floor)
{
	double v = (double)n * g_scale;

	return v < (double)floor ? floor : (size_t)v;
}

static void path_of(char *buf, size_t cap, const char *name)
{
	snprintf(buf, cap, "%s/%s", base, name);
}

static void write_file(const char *p, const char *text)
{
	FILE *f = fopen(p, "w");

	if (!f)
		bail_out("cannot create %s: %s", p, strerror(errno));
	fputs(text, f);
	fclose(f);
}

static bool exists(const char *p)
{
	struct stat st;

	return lstat(p, &st) == 0;
}

static bool errmsg_set(void)
{
	const char *m = omen_errmsg();

	return m != NULL && m[0] != '\0';
}

static omen_options opts(unsigned shards, int durability)
{
	omen_options o;

	omen_options_init(&o);
	o.shards = shards;
	o.durability = durability;
	return o;
}

/* Open or bail out: every later check needs the handle. */
static omen_db *open_or_bail(const char *p, unsigned shards, int durability)
{
	omen_options o = opts(shards, durability);
	omen_db *db = NULL;
	int rc = omen_open(p, &o, &db);

	if (rc != OMEN_OK || db == NULL)
		bail_out("omen_open %s: %s (%s)", p, omen_strerror(rc), omen_errmsg());
	return db;
}

static void close_or_fail(omen_db *db, const char *what)
{
	int rc = omen_close(db);

	if (!is_int(rc, OMEN_OK, "%s: omen_close", what))
		bail_out("cannot go on with a handle that did not close");
}

static unsigned shard_count(omen_db *db)
{
	omen_stats s;

	memset(&s, 0, sizeof(s));
	if (omen_get_stats(db, &s) != OMEN_OK)
		return 0;
	return s.shards;
}

/* ------------------------------------------------------------ values */

static uint64_t mix64(uint64_t x)
{
	x += UINT64_C(0x9e3779b97f4a7c15);
	x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

/* Generation flag: the value is OMEN_MAX_VALUE bytes long. */
#define GEN_BIG UINT32_C(0x80000000)

/*
 * Value number gen (>= 1) of key: deterministic; 0 to 80 bytes (about one
 * in seven empty), or OMEN_MAX_VALUE bytes with GEN_BIG.  buf holds
 * OMEN_MAX_VALUE bytes.
 */
static size_t val_of(uint64_t key, uint32_t gen, unsigned char *buf)
{
	uint64_t h = mix64(key ^ mix64(gen));
	size_t len = gen & GEN_BIG ? OMEN_MAX_VALUE : h % 7 == 0 ? 0 : 1 + (size_t)(h >> 8) % 80;

	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)((unsigned char)(h >> (8 * (i & 7))) ^ (unsigned char)(i >> 3));
	return len;
}

static unsigned char vbuf[OMEN_MAX_VALUE + 16];    /* values to write    */
static unsigned char wantbuf[OMEN_MAX_VALUE + 16]; /* expected, to check */
static unsigned char gotbuf[OMEN_MAX_VALUE + 16];  /* read back          */

/* ------------------------------------------------------------- model */

/*
 * The expected contents of a database over a fixed universe of keys:
 * gen[i] == 0 when keys[i] is absent, else its value is val_of(keys[i],
 * gen[i]).  One thread; updated by the helpers below when the engine call
 * succeeds (batch helpers update it at once: the caller writes the batch).
 */
typedef struct model {
	uint64_t *keys; /* ascending, distinct */
	uint32_t *gen;
	size_t n;
} model;

static void model_init(model *m, const uint64_t *keys, size_t n)
{
	m->keys = xmalloc(n * sizeof(uint64_t));
	memcpy(m->keys, keys, n * sizeof(uint64_t));
	m->n = ds_sort_unique(m->keys, n);
	m->gen = xcalloc(m->n, sizeof(uint32_t));
}

static void model_copy(model *dst, const model *src)
{
	dst->n = src->n;
	dst->keys = xmalloc(src->n * sizeof(uint64_t));
	dst->gen = xmalloc(src->n * sizeof(uint32_t));
	memcpy(dst->keys, src->keys, src->n * sizeof(uint64_t));
	memcpy(dst->gen, src->gen, src->n * sizeof(uint32_t));
}

static void model_free(model *m)
{
	free(m->keys);
	free(m->gen);
	memset(m, 0, sizeof(*m));
}

static size_t model_idx(const model *m, uint64_t key)
{
	size_t i = ds_lower_bound(m->keys, m->n, key);

	if (i == m->n || m->keys[i] != key)
		TEST_DIE("key %" PRIu64 " is not in the model", key);
	return i;
}

static size_t model_live(const model *m)
{
	size_t live = 0;

	for (size_t i = 0; i < m->n; i++)
		live += m->gen[i] != 0;
	return live;
}

static int m_put(omen_db *db, model *m, uint64_t key, uint32_t gen)
{
	size_t len = val_of(key, gen, vbuf);
	int rc = omen_put(db, key, len ? vbuf : NULL, len);

	if (rc == OMEN_OK)
		m->gen[model_idx(m, key)] = gen;
	return rc;
}

static int m_delete(omen_db *db, model *m, uint64_t key)
{
	int rc = omen_delete(db, key);

	if (rc == OMEN_OK)
		m->gen[model_idx(m, key)] = 0;
	return rc;
}

static int m_ingest(omen_db *db, model *m, uint64_t key, uint32_t gen)
{
	size_t len = val_of(key, gen, vbuf);
	int rc = omen_ingest(db, key, len ? vbuf : NULL, len);

	if (rc == OMEN_OK)
		m->gen[model_idx(m, key)] = gen;
	return rc;
}

static void mb_put(omen_batch *b, model *m, uint64_t key, uint32_t gen)
{
	size_t len = val_of(key, gen, vbuf);

	if (omen_batch_put(b, key, len ? vbuf : NULL, len) != OMEN_OK)
		bail_out("omen_batch_put failed");
	m->gen[model_idx(m, key)] = gen;
}

static void mb_delete(omen_batch *b, model *m, uint64_t key)
{
	if (omen_batch_delete(b, key) != OMEN_OK)
		bail_out("omen_batch_delete failed");
	m->gen[model_idx(m, key)] = 0;
}

/* Does key read back as the model says?  Diagnoses a mismatch. */
static bool check_key(omen_db *db, const model *m, size_t i)
{
	size_t len = 777, wl;
	int rc = omen_get(db, m->keys[i], gotbuf, OMEN_MAX_VALUE, &len);

	if (m->gen[i] == 0) {
		if (rc == OMEN_ENOTFOUND && len == 777)
			return true;
		diag("key %" PRIu64 " (0x%" PRIx64 "): expected absent, got %s, len %zu", m->keys[i],
		     m->keys[i], omen_strerror(rc), len);
		return false;
	}
	wl = val_of(m->keys[i], m->gen[i], wantbuf);
	if (rc == OMEN_OK && len == wl && memcmp(gotbuf, wantbuf, wl) == 0)
		return true;
	diag("key %" PRIu64 " (0x%" PRIx64 "): expected gen %" PRIu32 " (%zu bytes), got %s, "
	     "len %zu%s", m->keys[i], m->keys[i], m->gen[i], wl, omen_strerror(rc), len,
	     rc == OMEN_OK && len == wl ? ", different bytes" : "");
	return false;
}

/*
 * Scan [lo, hi] and compare with the model's live keys in it: the same keys,
 * ascending, with their values.  mode 0 asks for everything; 1 passes NULL
 * for the key, 2 for the value, 3 for the length, 4 for all three (the
 * comparison then uses what it gets, by position).  Returns the mismatches.
 */
static size_t scan_compare(omen_db *db, const model *m, uint64_t lo, uint64_t hi, int mode)
{
	omen_iter *it = NULL;
	size_t i = ds_lower_bound(m->keys, m->n, lo), bad = 0, seen = 0;
	int rc = omen_iter_open(db, lo, hi, &it);

	if (rc != OMEN_OK) {
		diag("omen_iter_open [%" PRIu64 ", %" PRIu64 "]: %s", lo, hi, omen_strerror(rc));
		return 1;
	}
	for (;;) {
		uint64_t k = 0;
		const void *v = NULL;
		size_t len = 0;

		while (i < m->n && m->keys[i] <= hi && m->gen[i] == 0)
			i++;
		rc = omen_iter_next(it, mode == 1 || mode == 4 ? NULL : &k,
				    mode == 2 || mode == 4 ? NULL : &v,
				    mode == 3 || mode == 4 ? NULL : &len);
		if (rc == OMEN_END) {
			if (i < m->n && m->keys[i] <= hi) {
				if (bad++ < 5)
					diag("scan [%" PRIu64 ", %" PRIu64 "] mode %d: ended after %zu keys, "
					     "missing %" PRIu64, lo, hi, mode, seen, m->keys[i]);
			}
			break;
		}
		if (rc != OMEN_OK) {
			diag("omen_iter_next: %s", omen_strerror(rc));
			bad++;
			break;
		}
		seen++;
		if (i >= m->n || m->keys[i] > hi) {
			if (bad++ < 5)
				diag("scan [%" PRIu64 ", %" PRIu64 "] mode %d: key %" PRIu64
				     " after the last expected one", lo, hi, mode, k);
			break;
		}
		if (mode != 1 && mode != 4 && k != m->keys[i]) {
			if (bad++ < 5)
				diag("scan [%" PRIu64 ", %" PRIu64 "] mode %d: got key %" PRIu64
				     " (0x%" PRIx64 "), expected %" PRIu64 " (0x%" PRIx64 ")",
				     lo, hi, mode, k, k, m->keys[i], m->keys[i]);
			break;
		}
		if (mode == 0 || mode == 1) {
			size_t wl = val_of(m->keys[i], m->gen[i], wantbuf);

			if (len != wl || (wl && (v == NULL || memcmp(v, wantbuf, wl) != 0))) {
				if (bad++ < 5)
					diag("scan: key %" PRIu64 " value differs (len %zu, expected %zu)",
					     m->keys[i], len, wl);
			}
		} else if (mode == 2) {
			size_t wl = val_of(m->keys[i], m->gen[i], wantbuf);

			if (len != wl && bad++ < 5)
				diag("scan: key %" PRIu64 " len %zu, expected %zu", m->keys[i], len, wl);
		}
		i++;
	}
	/* Exhausted stays exhausted. */
	for (int r = 0; r < 3 && rc == OMEN_END; r++) {
		uint64_t k;
		const void *v;
		size_t len;

		if (omen_iter_next(it, &k, &v, &len) != OMEN_END) {
			diag("scan: omen_iter_next after OMEN_END did not return OMEN_END");
			bad++;
			break;
		}
	}
	omen_iter_close(it);
	return bad;
}

/* Every key by omen_get, one full scan, and the live count in the stats. */
static void model_verify(omen_db *db, const model *m, const char *what)
{
	size_t bad = 0;
	omen_stats s;
	int rc;

	for (size_t i = 0; i < m->n; i++)
		if (!check_key(db, m, i) && ++bad >= 10) {
			diag("(stopping after 10 mismatches)");
			break;
		}
	ok(bad == 0, "%s: every one of %zu keys reads back as expected (%zu live)", what, m->n,
	   model_live(m));
	is_int(scan_compare(db, m, 0, UINT64_MAX, 0), 0, "%s: a full scan returns exactly the live keys",
	       what);
	memset(&s, 0, sizeof(s));
	rc = omen_get_stats(db, &s);
	ok(rc == OMEN_OK && s.keys == model_live(m), "%s: stats.keys %" PRIu64 " == %zu live keys",
	   what, s.keys, model_live(m));
}

/* A mixed key set: the ends of the key space, uniform keys, device<<44|ts
 * keys and a dense run.  Caller frees. */
static uint64_t *mixed_keys(const char *name, size_t n_each, size_t *n_out)
{
	static const uint64_t edges[] = {
		0, 1, 2, 3, UINT64_MAX, UINT64_MAX - 1, UINT64_MAX - 2, UINT64_C(1) << 63,
		(UINT64_C(1) << 63) - 1, (UINT64_C(1) << 63) + 1, UINT64_C(1) << 32,
	};
	size_t ne = sizeof(edges) / sizeof(edges[0]);
	uint64_t seed = case_seed(g_seed, name);
	uint64_t *k = xmalloc((ne + 3 * n_each) * sizeof(uint64_t));
	uint64_t run = (mix64(seed) >> 4) | 1;

	memcpy(k, edges, sizeof(edges));
	ds_generate(DS_UNIFORM, seed, k + ne, n_each);
	ds_generate(DS_DEVICE, seed + 1, k + ne + n_each, n_each);
	for (size_t i = 0; i < n_each; i++)
		k[ne + 2 * n_each + i] = run + i;
	*n_out = ds_sort_unique(k, ne + 3 * n_each);
	return k;
}

/* ---------------------------------------------------- errors, options */

static void test_options_and_strings(void)
{
	static const int codes[] = {
		OMEN_OK, OMEN_ENOTFOUND, OMEN_EINVAL, OMEN_ERANGE, OMEN_ENOMEM, OMEN_EIO,
		OMEN_ECORRUPT, OMEN_EBUSY, OMEN_EAGAIN, OMEN_ECLOSED, OMEN_END,
	};
	size_t nc = sizeof(codes) / sizeof(codes[0]);
	const char *unknown = omen_strerror(-1000);
	omen_options o;
	bool distinct = true, all = true;

	memset(&o, 0x5a, sizeof(o));
	omen_options_init(&o);
	is_int(o.shards, 0, "options_init: shards 0 (one per CPU)");
	is_int(o.durability, OMEN_DURABLE_WAL, "options_init: durability OMEN_DURABLE_WAL");
	is_u64(o.memory_budget, 0, "options_init: memory_budget 0");
	is_int(o.queue_depth, 0, "options_init: queue_depth 0 (default)");
	is_int(o.create_if_missing, 1, "options_init: create_if_missing 1");
	is_int(o.nonblocking_ingest, 0, "options_init: nonblocking_ingest 0");
	omen_options_init(NULL);
	ok(1, "options_init(NULL) is a no-op");

	ok(unknown != NULL && unknown[0] != '\0', "strerror of an unknown code: \"%s\"",
	   unknown ? unknown : "(null)");
	for (size_t i = 0; i < nc; i++) {
		const char *s = omen_strerror(codes[i]);

		if (s == NULL || s[0] == '\0' || strcmp(s, unknown) == 0) {
			diag("strerror(%d) = \"%s\"", codes[i], s ? s : "(null)");
			all = false;
			continue;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(s, omen_strerror(codes[j])) == 0)
				distinct = false;
	}
	ok(all, "strerror: every code has a non-empty description of its own");
	ok(distinct, "strerror: no two codes share one");
	ok(omen_strerror(1) && strcmp(omen_strerror(1), unknown) == 0 &&
	   strcmp(omen_strerror(OMEN_END - 1), unknown) == 0 &&
	   strcmp(omen_strerror(INT_MIN), unknown) == 0 &&
	   strcmp(omen_strerror(INT_MAX), unknown) == 0,
	   "strerror: 1, OMEN_END - 1, INT_MIN, INT_MAX are unknown");
	ok(omen_errmsg() != NULL, "errmsg is never NULL");
	ok(omen_version() != NULL && omen_version()[0] != '\0', "version: %s", omen_version());
}

/* Child mode (--try-open DIR): exit status -rc of omen_open. */
static int try_open(const char *p)
{
	omen_db *db = NULL;
	int rc = omen_open(p, NULL, &db);

	if (rc == OMEN_OK)
		omen_close(db);
	return -rc;
}

static int open_in_child(const char *p)
{
	pid_t pid = fork();
	int status = -1;

	if (pid == 0) {
		execl("/proc/self/exe", "test_api", "--try-open", p, (char *)NULL);
		_exit(100);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return 1000;
	return -WEXITSTATUS(status);
}

/* Find a file named name under root (depth first); path into out. */
static char find_name[256], *find_out;
static int find_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	if (flag == FTW_F && strcmp(p + ftw->base, find_name) == 0) {
		snprintf(find_out, 4200, "%s", p);
		return 1;
	}
	return 0;
}

static bool find_file(const char *root, const char *name, char out[4200])
{
	snprintf(find_name, sizeof(find_name), "%s", name);
	find_out = out;
	return nftw(root, find_one, 16, FTW_PHYS) == 1;
}

static void test_open_errors(void)
{
	char p[4200], q[4200];
	omen_options o;
	omen_db *db = (omen_db *)&db;
	char *before, *after;
	int rc;

	rc = omen_open(NULL, NULL, &db);
	is_int(rc, OMEN_EINVAL, "open(NULL path): EINVAL");
	ok(db == NULL, "  *out is NULL");
	ok(errmsg_set(), "  errmsg says why: \"%s\"", omen_errmsg());

	path_of(p, sizeof(p), "never");
	is_int(omen_open(p, NULL, NULL), OMEN_EINVAL, "open(NULL out): EINVAL");
	ok(!exists(p), "  and nothing was created");

	path_of(p, sizeof(p), "missing");
	o = opts(2, OMEN_DURABLE_WAL);
	o.create_if_missing = 0;
	db = (omen_db *)&db;
	is_int(omen_open(p, &o, &db), OMEN_ENOTFOUND, "missing directory, create_if_missing 0: ENOTFOUND");
	ok(db == NULL, "  *out is NULL");
	ok(errmsg_set(), "  errmsg: \"%s\"", omen_errmsg());
	ok(!exists(p), "  and nothing was created");

	path_of(p, sizeof(p), "badopts");
	o = opts(2, 2);
	db = (omen_db *)&db;
	is_int(omen_open(p, &o, &db), OMEN_EINVAL, "durability 2 (no such level): EINVAL");
	ok(db == NULL && !exists(p), "  *out is NULL and nothing was created");
	ok(errmsg_set(), "  errmsg: \"%s\"", omen_errmsg());
	o = opts(2, -1);
	is_int(omen_open(p, &o, &db), OMEN_EINVAL, "durability -1: EINVAL");
	o = opts(2, OMEN_DURABLE_WAL);
	o.queue_depth = (1u << 24) + 1;
	is_int(omen_open(p, &o, &db), OMEN_EINVAL, "queue_depth 2^24 + 1 (over the most): EINVAL");
	ok(db == NULL && !exists(p), "  *out is NULL and nothing was created");

	path_of(p, sizeof(p), "a-file");
	write_file(p, "not a directory\n");
	before = apitest_tree_fingerprint(p);
	db = (omen_db *)&db;
	is_int(omen_open(p, NULL, &db), OMEN_EINVAL, "a regular file: EINVAL");
	ok(db == NULL, "  *out is NULL");
	ok(errmsg_set(), "  errmsg: \"%s\"", omen_errmsg());
	o = opts(0, OMEN_DURABLE_WAL);
	o.create_if_missing = 0;
	is_int(omen_open(p, &o, &db), OMEN_EINVAL, "  also with create_if_missing 0");
	after = apitest_tree_fingerprint(p);
	ok(apitest_same_tree(before, after), "  the file is unchanged");
	free(before);
	free(after);

	path_of(p, sizeof(p), "not-a-db");
	mkdir(p, 0700);
	path_of(q, sizeof(q), "not-a-db/notes.txt");
	write_file(q, "hello\n");
	path_of(q, sizeof(q), "not-a-db/sub");
	mkdir(q, 0700);
	path_of(q, sizeof(q), "not-a-db/sub/CURRENT");
	write_file(q, "MANIFEST-000001\n");
	before = apitest_tree_fingerprint(p);
	db = (omen_db *)&db;
	is_int(omen_open(p, NULL, &db), OMEN_ECORRUPT, "a non-empty directory that is not a database: ECORRUPT");
	ok(db == NULL, "  *out is NULL");
	ok(errmsg_set(), "  errmsg: \"%s\"", omen_errmsg());
	o = opts(4, OMEN_DURABLE_SYNC);
	o.create_if_missing = 0;
	is_int(omen_open(p, &o, &db), OMEN_ECORRUPT, "  also with create_if_missing 0 and 4 shards");
	after = apitest_tree_fingerprint(p);
	ok(apitest_same_tree(before, after), "  the directory's contents are unchanged");
	free(before);
	free(after);

	/* An empty directory holds no database: create_if_missing decides. */
	path_of(p, sizeof(p), "empty");
	mkdir(p, 0700);
	before = apitest_tree_fingerprint(p);
	o = opts(2, OMEN_DURABLE_WAL);
	o.create_if_missing = 0;
	db = (omen_db *)&db;
	is_int(omen_open(p, &o, &db), OMEN_ENOTFOUND, "an empty directory, create_if_missing 0: ENOTFOUND");
	ok(db == NULL, "  *out is NULL");
	after = apitest_tree_fingerprint(p);
	ok(apitest_same_tree(before, after), "  and it stays empty");
	free(before);
	free(after);
	db = NULL;
	rc = omen_open(p, NULL, &db);
	is_int(rc, OMEN_OK, "an empty directory, create_if_missing 1: a new database");
	if (rc == OMEN_OK)
		close_or_fail(db, "empty directory database");

	/* A damaged database: RocksDB's CURRENT file overwritten. */
	path_of(p, sizeof(p), "damaged");
	db = open_or_bail(p, 2, OMEN_DURABLE_WAL);
	omen_put(db, 1, "one", 3);
	close_or_fail(db, "damaged (before the damage)");
	if (find_file(p, "CURRENT", q)) {
		write_file(q, "garbage");
		before = apitest_tree_fingerprint(p);
		db = (omen_db *)&db;
		rc = omen_open(p, NULL, &db);
		ok(rc == OMEN_ECORRUPT || rc == OMEN_EIO, "a damaged database (garbage CURRENT): "
		   "ECORRUPT or EIO (got %s)", omen_strerror(rc));
		ok(db == NULL, "  *out is NULL");
		ok(errmsg_set(), "  errmsg: \"%s\"", omen_errmsg());
		after = apitest_tree_fingerprint(p);
		ok(apitest_same_tree(before, after), "  the directory is unchanged");
		free(before);
		free(after);
		if (rc == OMEN_OK)
			omen_close(db);
	} else {
		skip(4, "no file named CURRENT in the database directory");
	}
}

static void test_open_busy_and_shards(void)
{
	char p[4200];
	omen_options o;
	omen_db *db, *db2;
	char *before, *after;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	size_t len = 0;
	char buf[16];
	int rc;

	path_of(p, sizeof(p), "busy");
	db = open_or_bail(p, 4, OMEN_DURABLE_WAL);
	is_int(shard_count(db), 4, "a new database with 4 shards has 4");
	is_int(omen_put(db, 7, "seven", 5), OMEN_OK, "put before the second open");

	db2 = (omen_db *)&db2;
	is_int(omen_open(p, NULL, &db2), OMEN_EBUSY, "second open of an open directory: EBUSY");
	ok(db2 == NULL, "  *out is NULL");
	ok(errmsg_set(), "  errmsg: \"%s\"", omen_errmsg());
	o = opts(4, OMEN_DURABLE_WAL);
	o.create_if_missing = 0;
	db2 = (omen_db *)&db2;
	is_int(omen_open(p, &o, &db2), OMEN_EBUSY, "  also with the same shard count, no create");
	ok(db2 == NULL, "  *out is NULL");
	is_int(open_in_child(p), OMEN_EBUSY, "open from another process: EBUSY");
	is_int(omen_put(db, 8, "eight", 5), OMEN_OK, "the first handle still writes");
	ok(omen_get(db, 7, buf, sizeof(buf), &len) == OMEN_OK && len == 5 &&
	   memcmp(buf, "seven", 5) == 0, "  and reads");
	close_or_fail(db, "busy");
	is_int(omen_close(NULL), OMEN_EINVAL, "omen_close(NULL): EINVAL");

	before = apitest_tree_fingerprint(p);
	o = opts(3, OMEN_DURABLE_WAL);
	db2 = (omen_db *)&db2;
	is_int(omen_open(p, &o, &db2), OMEN_EINVAL, "reopen asking 3 shards of 4: EINVAL");
	ok(db2 == NULL, "  *out is NULL");
	ok(errmsg_set(), "  errmsg: \"%s\"", omen_errmsg());
	o = opts(8, OMEN_DURABLE_WAL);
	is_int(omen_open(p, &o, &db2), OMEN_EINVAL, "reopen asking 8 shards of 4: EINVAL");
	o = opts(1, OMEN_DURABLE_WAL);
	is_int(omen_open(p, &o, &db2), OMEN_EINVAL, "reopen asking 1 shard of 4: EINVAL");
	after = apitest_tree_fingerprint(p);
	ok(apitest_same_tree(before, after), "  the refused opens left the directory unchanged");
	free(before);
	free(after);

	db = open_or_bail(p, 0, OMEN_DURABLE_WAL);
	is_int(shard_count(db), 4, "reopen with shards 0: OK, 4 shards");
	ok(omen_get(db, 8, buf, sizeof(buf), &len) == OMEN_OK && len == 5 &&
	   memcmp(buf, "eight", 5) == 0, "  the data is there");
	close_or_fail(db, "reopen shards 0");
	db = open_or_bail(p, 4, OMEN_DURABLE_SYNC);
	is_int(shard_count(db), 4, "reopen with shards 4 (and SYNC): OK, 4 shards");
	close_or_fail(db, "reopen shards 4");

	path_of(p, sizeof(p), "defaults");
	db = NULL;
	rc = omen_open(p, NULL, &db);
	if (is_int(rc, OMEN_OK, "open with NULL options creates a database")) {
		is_int(shard_count(db), ncpu, "  one shard per online CPU (%ld)", ncpu);
		close_or_fail(db, "defaults");
	}
	path_of(p, sizeof(p), "shards0");
	db = open_or_bail(p, 0, OMEN_DURABLE_WAL);
	is_int(shard_count(db), ncpu, "a new database with shards 0: one per online CPU (%ld)", ncpu);
	close_or_fail(db, "shards0");

	/* memory_budget only sizes the block cache for now: any value opens. */
	o = opts(2, OMEN_DURABLE_WAL);
	o.memory_budget = (size_t)1 << 40;
	db = NULL;
	rc = omen_open(p, &o, &db);
	is_int(rc, OMEN_OK, "reopen with memory_budget 1 TiB");
	if (rc == OMEN_OK) {
		ok(omen_put(db, 1, "x", 1) == OMEN_OK && omen_get(db, 1, buf, sizeof(buf), &len) == OMEN_OK &&
		   len == 1, "  put and get");
		close_or_fail(db, "memory_budget");
	}
}

/* ----------------------------------------------------- put, get, delete */

static void test_put_get(void)
{
	char p[4200];
	omen_db *db;
	model m;
	size_t nk, len;
	uint64_t *keys = mixed_keys("put_get", 200, &nk);
	unsigned char small[64];
	bool all = true, untouched = true;
	int rc;

	path_of(p, sizeof(p), "putget");
	db = open_or_bail(p, 4, OMEN_DURABLE_WAL);
	model_init(&m, keys, nk);
	free(keys);

	for (size_t i = 0; i < m.n; i++)
		all = all && m_put(db, &m, m.keys[i], 1) == OMEN_OK;
	ok(all, "put %zu keys, 0 and UINT64_MAX and their neighbours among them", m.n);
	model_verify(db, &m, "after the puts");

	/* Overwrites: the latest wins. */
	is_int(omen_put(db, 0, "first", 5), OMEN_OK, "put 0 = first");
	is_int(omen_put(db, 0, "second!", 7), OMEN_OK, "put 0 = second!");
	len = 0;
	ok(omen_get(db, 0, small, sizeof(small), &len) == OMEN_OK && len == 7 &&
	   memcmp(small, "second!", 7) == 0, "  get 0: the latest value");
	is_int(omen_put(db, UINT64_MAX, "max", 3), OMEN_OK, "put UINT64_MAX = max");
	ok(omen_get(db, UINT64_MAX, small, sizeof(small), &len) == OMEN_OK && len == 3 &&
	   memcmp(small, "max", 3) == 0, "  get UINT64_MAX");
	m.gen[model_idx(&m, 0)] = 0;
	m.gen[model_idx(&m, UINT64_MAX)] = 0;
	omen_delete(db, 0);
	omen_delete(db, UINT64_MAX);

	/* Absent keys. */
	len = 4242;
	is_int(omen_get(db, 0, small, sizeof(small), &len), OMEN_ENOTFOUND, "get of a deleted key: ENOTFOUND");
	is_u64(len, 4242, "  *len untouched");
	is_int(omen_delete(db, 0), OMEN_OK, "delete of an absent key: OK");
	is_int(omen_delete(db, UINT64_MAX), OMEN_OK, "delete of absent UINT64_MAX: OK");
	len = 4242;
	is_int(omen_get(db, UINT64_MAX, NULL, 0, &len), OMEN_ENOTFOUND, "size query of an absent key: ENOTFOUND");
	is_u64(len, 4242, "  *len untouched");

	/* Empty values. */
	is_int(omen_put(db, 0, NULL, 0), OMEN_OK, "put(val NULL, len 0): OK");
	len = 99;
	ok(omen_get(db, 0, small, sizeof(small), &len) == OMEN_OK && len == 0, "  get: OK, len 0");
	len = 99;
	is_int(omen_get(db, 0, NULL, 0, &len), OMEN_OK, "  size query (NULL, 0) of an empty value: OK");
	is_u64(len, 0, "  len 0");
	is_int(omen_put(db, UINT64_MAX, "ignored", 0), OMEN_OK, "put(non-NULL val, len 0): OK");
	len = 99;
	ok(omen_get(db, UINT64_MAX, small, 0, &len) == OMEN_OK && len == 0, "  get with cap 0: OK, len 0");
	m.gen[model_idx(&m, 0)] = 0;
	m.gen[model_idx(&m, UINT64_MAX)] = 0;
	omen_delete(db, 0);
	omen_delete(db, UINT64_MAX);

	/* Buffer sizes. */
	memset(vbuf, 'v', 40);
	is_int(omen_put(db, 5, vbuf, 40), OMEN_OK, "put a 40-byte value");
	/* Keys 5 and 6 are outside the model: deleted again below. */
	len = 0;
	is_int(omen_get(db, 5, NULL, 0, &len), OMEN_ERANGE, "size query (NULL, 0): ERANGE");
	is_u64(len, 40, "  *len = 40");
	memset(small, 0xa5, sizeof(small));
	len = 0;
	is_int(omen_get(db, 5, small, 39, &len), OMEN_ERANGE, "cap 39 < 40: ERANGE");
	is_u64(len, 40, "  *len = 40");
	for (size_t i = 0; i < sizeof(small); i++)
		untouched = untouched && small[i] == 0xa5;
	ok(untouched, "  the buffer is untouched");
	len = 0;
	ok(omen_get(db, 5, small, 40, &len) == OMEN_OK && len == 40 && memcmp(small, vbuf, 40) == 0,
	   "cap 40 == 40: OK and the value");
	is_int(omen_get(db, 5, NULL, 10, &len), OMEN_EINVAL, "buf NULL with cap 10: EINVAL");
	is_int(omen_get(db, 5, small, sizeof(small), NULL), OMEN_EINVAL, "len NULL: EINVAL");
	is_int(omen_get(db, 5, NULL, 0, NULL), OMEN_EINVAL, "size query with len NULL: EINVAL");

	/* NULL handle and bad values. */
	is_int(omen_put(NULL, 1, "x", 1), OMEN_EINVAL, "put(NULL db): EINVAL");
	is_int(omen_delete(NULL, 1), OMEN_EINVAL, "delete(NULL db): EINVAL");
	is_int(omen_get(NULL, 1, small, sizeof(small), &len), OMEN_EINVAL, "get(NULL db): EINVAL");
	is_int(omen_put(db, 5, NULL, 1), OMEN_EINVAL, "put(val NULL, len 1): EINVAL");
	is_int(omen_ingest(db, 5, NULL, 1), OMEN_EINVAL, "ingest(val NULL, len 1): EINVAL");
	is_int(omen_ingest(NULL, 5, "x", 1), OMEN_EINVAL, "ingest(NULL db): EINVAL");
	ok(omen_get(db, 5, small, 40, &len) == OMEN_OK && len == 40 && memcmp(small, vbuf, 40) == 0,
	   "  the refused writes left key 5 alone");

	/* The largest value. */
	for (size_t i = 0; i < OMEN_MAX_VALUE + 1; i++)
		vbuf[i] = (unsigned char)(i * 7 + (i >> 12));
	is_int(omen_put(db, 6, vbuf, OMEN_MAX_VALUE), OMEN_OK, "put of OMEN_MAX_VALUE bytes: OK");
	len = 0;
	rc = omen_get(db, 6, gotbuf, OMEN_MAX_VALUE, &len);
	ok(rc == OMEN_OK && len == OMEN_MAX_VALUE && memcmp(gotbuf, vbuf, OMEN_MAX_VALUE) == 0,
	   "  reads back whole (%s, %zu bytes)", omen_strerror(rc), len);
	len = 0;
	ok(omen_get(db, 6, NULL, 0, &len) == OMEN_ERANGE && len == OMEN_MAX_VALUE,
	   "  size query: ERANGE, OMEN_MAX_VALUE");
	is_int(omen_put(db, 6, vbuf + 1, OMEN_MAX_VALUE + 1), OMEN_EINVAL, "put of OMEN_MAX_VALUE + 1: EINVAL");
	is_int(omen_ingest(db, 6, vbuf + 1, OMEN_MAX_VALUE + 1), OMEN_EINVAL,
	       "ingest of OMEN_MAX_VALUE + 1: EINVAL");
	is_int(omen_put(db, 6, vbuf, SIZE_MAX), OMEN_EINVAL, "put of SIZE_MAX bytes: EINVAL");
	is_int(omen_flush(db), OMEN_OK, "flush");
	len = 0;
	rc = omen_get(db, 6, gotbuf, OMEN_MAX_VALUE + 16, &len);
	ok(rc == OMEN_OK && len == OMEN_MAX_VALUE && memcmp(gotbuf, vbuf, OMEN_MAX_VALUE) == 0,
	   "  the refused writes left the big value alone");
	omen_delete(db, 5);
	omen_delete(db, 6);
	model_verify(db, &m, "after overwrites and errors");

	/* Persisted. */
	close_or_fail(db, "putget");
	db = open_or_bail(p, 0, OMEN_DURABLE_WAL);
	model_verify(db, &m, "put/get reopened");
	close_or_fail(db, "putget reopened");
	model_free(&m);
}

/* ------------------------------------------------------------ batches */

static void test_batches(void)
{
	char p[4200];
	omen_db *db;
	omen_batch *b;
	model m;
	size_t nk;
	uint64_t *keys = mixed_keys("batches", 3000, &nk);
	ds_rng r;
	unsigned char v[16];
	size_t len;
	int rc;

	path_of(p, sizeof(p), "batches");
	db = open_or_bail(p, 4, OMEN_DURABLE_WAL);
	model_init(&m, keys, nk);
	free(keys);
	ds_rng_seed(&r, case_seed(g_seed, "batches-ops"));

	b = omen_batch_new();
	if (!ok(b != NULL, "batch_new"))
		bail_out("no batch");
	is_u64(omen_batch_count(b), 0, "  a new batch is empty");
	is_int(omen_write(db, b), OMEN_OK, "write of an empty batch: OK");
	is_int(omen_ingest_batch(db, b), OMEN_OK, "ingest_batch of an empty batch: OK");

	/* Same key several times: the last record wins. */
	m_put(db, &m, m.keys[3], 1);
	mb_put(b, &m, m.keys[1], 1);
	mb_put(b, &m, m.keys[1], 2);
	mb_put(b, &m, m.keys[1], 3);      /* keys[1]: gen 3          */
	mb_put(b, &m, m.keys[2], 1);
	mb_delete(b, &m, m.keys[2]);      /* keys[2]: absent         */
	mb_delete(b, &m, m.keys[3]);
	mb_put(b, &m, m.keys[3], 5);      /* keys[3]: deleted, then 5 */
	mb_delete(b, &m, m.keys[4]);      /* absent key deleted      */
	is_u64(omen_batch_count(b), 8, "  8 records in the batch");
	/* The value is copied: scribbling over the source afterwards is harmless. */
	memcpy(v, "copied-value", 12);
	is_int(omen_batch_put(b, m.keys[5], v, 12), OMEN_OK, "batch_put from a local buffer");
	memset(v, 'X', sizeof(v));
	is_int(omen_write(db, b), OMEN_OK, "write the batch");
	len = 0;
	ok(omen_get(db, m.keys[5], gotbuf, 64, &len) == OMEN_OK && len == 12 &&
	   memcmp(gotbuf, "copied-value", 12) == 0, "  batch_put copied the value");
	omen_delete(db, m.keys[5]);
	ok(check_key(db, &m, 1) && check_key(db, &m, 2) && check_key(db, &m, 3) &&
	   check_key(db, &m, 4), "  last record of each key wins (put x3, put+delete, "
	   "delete+put, delete of an absent key)");
	is_int(omen_write(db, b), OMEN_OK, "write the same batch again: OK");
	omen_delete(db, m.keys[5]);
	model_verify(db, &m, "after the small batch twice");

	/* Errors. */
	is_int(omen_batch_put(NULL, 1, "x", 1), OMEN_EINVAL, "batch_put(NULL batch): EINVAL");
	is_int(omen_batch_delete(NULL, 1), OMEN_EINVAL, "batch_delete(NULL batch): EINVAL");
	is_int(omen_batch_put(b, 1, NULL, 1), OMEN_EINVAL, "batch_put(val NULL, len 1): EINVAL");
	is_int(omen_batch_put(b, 1, vbuf, OMEN_MAX_VALUE + 1), OMEN_EINVAL,
	       "batch_put of OMEN_MAX_VALUE + 1: EINVAL");
	is_u64(omen_batch_count(b), 9, "  the refused records were not added");
	is_int(omen_write(NULL, b), OMEN_EINVAL, "write(NULL db): EINVAL");
	is_int(omen_write(db, NULL), OMEN_EINVAL, "write(NULL batch): EINVAL");
	is_int(omen_ingest_batch(NULL, b), OMEN_EINVAL, "ingest_batch(NULL db): EINVAL");
	is_int(omen_ingest_batch(db, NULL), OMEN_EINVAL, "ingest_batch(NULL batch): EINVAL");
	omen_batch_free(NULL);
	ok(1, "batch_free(NULL) is a no-op");

	/* Clear and reuse. */
	omen_batch_clear(b);
	is_u64(omen_batch_count(b), 0, "batch_clear empties it");
	is_int(omen_write(db, b), OMEN_OK, "write of the cleared batch: OK, nothing changes");
	model_verify(db, &m, "after the cleared batch");
	is_int(omen_batch_put(b, 1, NULL, 0), OMEN_OK, "batch_put(val NULL, len 0): OK");
	mb_put(b, &m, 1, 1);              /* overrides the empty record */
	mb_put(b, &m, m.keys[10], GEN_BIG | 1);
	mb_put(b, &m, m.keys[11], 2);
	is_int(omen_write(db, b), OMEN_OK, "reused batch with an OMEN_MAX_VALUE record");
	ok(check_key(db, &m, model_idx(&m, 1)) && check_key(db, &m, 10) && check_key(db, &m, 11),
	   "  its records read back");

	/* A large batch over every shard, with repeats and deletes. */
	omen_batch_clear(b);
	for (size_t j = 0; j < 4 * m.n; j++) {
		size_t i = (size_t)(ds_rng_next(&r) % m.n);

		if (ds_rng_next(&r) % 5 == 0)
			mb_delete(b, &m, m.keys[i]);
		else
			mb_put(b, &m, m.keys[i], (uint32_t)(ds_rng_next(&r) % 1000) + 1);
	}
	is_u64(omen_batch_count(b), 4 * m.n, "a batch of %zu records over %zu keys", 4 * m.n, m.n);
	rc = omen_write(db, b);
	is_int(rc, OMEN_OK, "  written");
	model_verify(db, &m, "after the large batch");

	/* The same through ingest_batch. */
	omen_batch_clear(b);
	for (size_t j = 0; j < 2 * m.n; j++) {
		size_t i = (size_t)(ds_rng_next(&r) % m.n);

		if (ds_rng_next(&r) % 4 == 0)
			mb_delete(b, &m, m.keys[i]);
		else
			mb_put(b, &m, m.keys[i], (uint32_t)(ds_rng_next(&r) % 1000) + 1001);
	}
	is_int(omen_ingest_batch(db, b), OMEN_OK, "ingest_batch of %zu records", 2 * m.n);
	omen_batch_free(b); /* legal right after the call */
	is_int(omen_flush(db), OMEN_OK, "  flush");
	model_verify(db, &m, "after the large ingest_batch");

	close_or_fail(db, "batches");
	db = open_or_bail(p, 0, OMEN_DURABLE_WAL);
	model_verify(db, &m, "batches reopened");
	close_or_fail(db, "batches reopened");
	model_free(&m);
}

/* ------------------------------------------------------------- ingest */

struct ingester {
	omen_db *db;
	const uint64_t *keys;
	size_t n;
	int rc;
};

static void *ingest_thread(void *arg)
{
	struct ingester *in = arg;
	unsigned char buf[128];

	in->rc = OMEN_OK;
	for (size_t i = 0; i < in->n && in->rc == OMEN_OK; i++) {
		size_t len = val_of(in->keys[i], 77, buf);

		in->rc = omen_ingest(in->db, in->keys[i], buf, len);
	}
	return NULL;
}

static void test_ingest(void)
{
	char p[4200];
	omen_db *db;
	omen_batch *b = omen_batch_new();
	model m;
	size_t nk, n, order_bad = 0, len;
	uint64_t *keys = mixed_keys("ingest", scaled(2000, 200), &nk);
	bool all = true;
	omen_stats s;
	int rc;

	path_of(p, sizeof(p), "ingest");
	db = open_or_bail(p, 4, OMEN_DURABLE_WAL);
	model_init(&m, keys, nk);
	free(keys);
	n = m.n;

	for (size_t i = 0; i < n; i += 2)
		all = all && m_ingest(db, &m, m.keys[i], 1) == OMEN_OK;
	ok(all, "ingest every other key (%zu)", (n + 1) / 2);
	is_int(omen_flush(db), OMEN_OK, "  flush");
	model_verify(db, &m, "after ingest + flush");
	memset(&s, 0xff, sizeof(s));
	rc = omen_get_stats(db, &s);
	ok(rc == OMEN_OK && s.queued == 0, "  nothing queued after the flush (%" PRIu64 ")", s.queued);

	for (size_t i = 1; i < n; i += 2)
		mb_put(b, &m, m.keys[i], 2);
	for (size_t i = 0; i < n; i += 6)
		mb_delete(b, &m, m.keys[i]);
	is_int(omen_ingest_batch(db, b), OMEN_OK, "ingest_batch: the other keys, and some deletes");
	is_int(omen_flush(db), OMEN_OK, "  flush");
	model_verify(db, &m, "after ingest_batch + flush");

	/* One thread's writes apply in call order, whatever the path. */
	for (size_t i = 0; i < n; i += 3) {
		uint64_t k = m.keys[i];

		m_ingest(db, &m, k, 10);
		m_put(db, &m, k, 11);
		order_bad += !check_key(db, &m, i);
	}
	is_int(order_bad, 0, "ingest K then put K: the put is read at once");
	is_int(omen_flush(db), OMEN_OK, "  flush");
	model_verify(db, &m, "  and stays after the flush");

	order_bad = 0;
	for (size_t i = 1; i < n; i += 3) {
		m_ingest(db, &m, m.keys[i], 12);
		m_delete(db, &m, m.keys[i]);
		order_bad += !check_key(db, &m, i);
	}
	is_int(order_bad, 0, "ingest K then delete K: absent at once");
	is_int(omen_flush(db), OMEN_OK, "  flush");
	model_verify(db, &m, "  and stays absent after the flush");

	order_bad = 0;
	for (size_t i = 2; i < n; i += 3) {
		omen_batch_clear(b);
		mb_put(b, &m, m.keys[i], 13);
		omen_ingest_batch(db, b);
		omen_batch_clear(b);
		mb_put(b, &m, m.keys[i], 14);
		omen_write(db, b);
		order_bad += !check_key(db, &m, i);
		m_ingest(db, &m, m.keys[i], 15);
		m_ingest(db, &m, m.keys[i], 16);
		omen_batch_clear(b);
		mb_delete(b, &m, m.keys[i]);
		omen_ingest_batch(db, b);
		m_ingest(db, &m, m.keys[i], 17);
	}
	is_int(order_bad, 0, "ingest_batch K then write K: the write is read at once");
	is_int(omen_flush(db), OMEN_OK, "  flush");
	model_verify(db, &m, "ingest, ingest, ingest_batch delete, ingest of one key: the last wins");

	is_int(omen_ingest(db, m.keys[0], NULL, 0), OMEN_OK, "ingest(val NULL, len 0): OK");
	m.gen[0] = 0;
	is_int(omen_flush(db), OMEN_OK, "  flush");
	len = 5;
	ok(omen_get(db, m.keys[0], gotbuf, 16, &len) == OMEN_OK && len == 0, "  an empty value");
	omen_delete(db, m.keys[0]);
	is_int(omen_flush(NULL), OMEN_EINVAL, "flush(NULL): EINVAL");

	/* A flush waits for records queued by another thread before it. */
	{
		struct ingester in = { .db = db, .keys = m.keys, .n = n };
		pthread_t th;

		if (pthread_create(&th, NULL, ingest_thread, &in) != 0)
			bail_out("pthread_create");
		pthread_join(th, NULL);
		is_int(in.rc, OMEN_OK, "another thread ingested %zu records", n);
		rc = omen_flush(db);
		is_int(rc, OMEN_OK, "  this thread's flush");
		for (size_t i = 0; i < n; i++)
			m.gen[i] = 77;
		model_verify(db, &m, "  every one of them is visible after it");
	}

	close_or_fail(db, "ingest");
	omen_batch_free(b);
	model_free(&m);
}

static void test_nonblocking(void)
{
	char p[4200];
	omen_options o;
	omen_db *db = NULL;
	omen_batch *b = omen_batch_new();
	model m;
	size_t nk, eagain = 0, other = 0, bad_batches = 0, b_ok = 0, b_again = 0;
	uint64_t *keys;
	int rc;

	nk = scaled(20000, 2000);
	keys = xmalloc(nk * sizeof(uint64_t));
	ds_generate(DS_UNIFORM, case_seed(g_seed, "nonblocking"), keys, nk);
	model_init(&m, keys, nk);
	free(keys);

	path_of(p, sizeof(p), "nonblocking");
	o = opts(2, OMEN_DURABLE_WAL);
	o.queue_depth = 2;
	o.nonblocking_ingest = 1;
	rc = omen_open(p, &o, &db);
	if (!is_int(rc, OMEN_OK, "open with queue_depth 2, nonblocking_ingest"))
		bail_out("open: %s", omen_errmsg());
	/* Half the keys one at a time, retrying each EAGAIN. */
	for (size_t i = 0; i < m.n / 2; i++) {
		while ((rc = m_ingest(db, &m, m.keys[i], 1)) == OMEN_EAGAIN) {
			eagain++;
			sched_yield();
		}
		if (rc != OMEN_OK && other++ < 3)
			diag("nonblocking ingest: %s", omen_strerror(rc));
	}
	is_int(other, 0, "nonblocking ingest of %zu records: OMEN_OK or OMEN_EAGAIN only", m.n / 2);
	diag("  %zu EAGAIN (retried)", eagain);
	/* The other half in batches of 8 over both shards: an EAGAIN batch
	 * queued nothing, an OK one everything. */
	for (size_t i = m.n / 2; i + 8 <= m.n; i += 8) {
		omen_batch_clear(b);
		for (size_t j = i; j < i + 8; j++)
			omen_batch_put(b, m.keys[j], &m.keys[j], sizeof(uint64_t));
		rc = omen_ingest_batch(db, b);
		if (rc == OMEN_OK) {
			b_ok++;
			for (size_t j = i; j < i + 8; j++)
				m.gen[j] = UINT32_MAX; /* marker: the key itself */
		} else if (rc == OMEN_EAGAIN) {
			b_again++;
		} else if (other++ < 3) {
			diag("nonblocking ingest_batch: %s", omen_strerror(rc));
		}
	}
	is_int(other, 0, "nonblocking ingest_batch: OMEN_OK or OMEN_EAGAIN only");
	diag("  %zu batches queued, %zu EAGAIN", b_ok, b_again);
	is_int(omen_flush(db), OMEN_OK, "flush");
	for (size_t i = m.n / 2; i < m.n; i++) {
		uint64_t got = 0;
		size_t len = 0;

		rc = omen_get(db, m.keys[i], &got, sizeof(got), &len);
		if (m.gen[i] == UINT32_MAX ? rc != OMEN_OK || len != 8 || got != m.keys[i]
					   : rc != OMEN_ENOTFOUND) {
			if (bad_batches++ < 3)
				diag("key %" PRIu64 ": %s, expected %s", m.keys[i], omen_strerror(rc),
				     m.gen[i] ? "present" : "absent");
		}
		m.gen[i] = 0;
		if (rc == OMEN_OK)
			omen_delete(db, m.keys[i]);
	}
	is_int(bad_batches, 0, "  records of queued batches present, of EAGAIN batches absent");
	model_verify(db, &m, "nonblocking ingest");
	close_or_fail(db, "nonblocking");

	/* A blocking producer through a tiny queue (depth 3, rounded up). */
	path_of(p, sizeof(p), "tinyqueue");
	o = opts(2, OMEN_DURABLE_WAL);
	o.queue_depth = 3; /* rounded up to 4 */
	db = NULL;
	rc = omen_open(p, &o, &db);
	if (!is_int(rc, OMEN_OK, "open with queue_depth 3 (rounded up), blocking ingest"))
		bail_out("open: %s", omen_errmsg());
	other = 0;
	for (size_t i = 0; i < m.n; i++)
		other += m_ingest(db, &m, m.keys[i], 3) != OMEN_OK;
	is_int(other, 0, "%zu blocking ingests through queues of depth 3: all OK", m.n);
	is_int(omen_flush(db), OMEN_OK, "  flush");
	model_verify(db, &m, "tiny queue");
	close_or_fail(db, "tinyqueue");
	omen_batch_free(b);
	model_free(&m);
}

/* ---------------------------------------------------------- iterators */

static void shard_ranges(omen_db *db, unsigned n, uint64_t *lo, uint64_t *hi)
{
	for (unsigned s = 0; s < n; s++) {
		omen_shard_stats ss;

		memset(&ss, 0, sizeof(ss));
		omen_get_shard_stats(db, s, &ss);
		lo[s] = ss.lo;
		hi[s] = ss.hi;
	}
}

/*
 * The shard ranges.  A new multi-shard database routes every key to shard
 * 0 until it sets its boundaries: shard 0 reports [0, MAX], the others an
 * empty range (lo > hi).  Once they are set, the ranges are nonempty,
 * ascend and cover 0..MAX.  Nothing else may ever be seen.
 *
 * When the boundaries are set: the header says "until its first batch
 * sets the boundaries"; the engine (shard/worker.c, BOOTSTRAP_SAMPLE)
 * takes them from the first 4096 keys.  The checks below ask for the
 * bootstrap state of a new database, for one of the two states after a
 * first batch of fewer keys, and for set boundaries past 4096 keys.
 */
enum ranges { RANGES_BOOTSTRAP, RANGES_SET, RANGES_EITHER };

static bool ranges_are(const uint64_t *lo, const uint64_t *hi, unsigned n, enum ranges want)
{
	bool good;

	if (want == RANGES_BOOTSTRAP) {
		good = lo[0] == 0 && hi[0] == UINT64_MAX;
		for (unsigned s = 1; s < n; s++)
			good = good && lo[s] > hi[s];
		return good;
	}
	if (want == RANGES_EITHER)
		return ranges_are(lo, hi, n, RANGES_BOOTSTRAP) || ranges_are(lo, hi, n, RANGES_SET);
	good = lo[0] == 0 && hi[n - 1] == UINT64_MAX;
	for (unsigned s = 0; s < n; s++) {
		good = good && lo[s] <= hi[s];
		if (s > 0)
			good = good && hi[s - 1] != UINT64_MAX && lo[s] == hi[s - 1] + 1;
	}
	return good;
}

static bool ranges_ok(omen_db *db, unsigned n, enum ranges want)
{
	uint64_t lo[64], hi[64];
	bool good;

	if (n > 64)
		n = 64;
	shard_ranges(db, n, lo, hi);
	good = ranges_are(lo, hi, n, want);
	if (!good || want == RANGES_EITHER)
		for (unsigned s = 0; s < n; s++)
			diag("shard %u: [0x%016" PRIx64 ", 0x%016" PRIx64 "]", s, lo[s], hi[s]);
	return good;
}

static void test_iterators(void)
{
	char p[4200];
	omen_db *db;
	omen_iter *it = NULL, *it2 = NULL;
	omen_batch *b = omen_batch_new();
	model m;
	size_t nk, bad, n_live, cnt;
	uint64_t *keys = mixed_keys("iterators", 2000, &nk);
	uint64_t lo[4], hi[4], k;
	const void *v;
	ds_rng r;
	unsigned used = 0;
	int rc;

	path_of(p, sizeof(p), "iter");
	db = open_or_bail(p, 4, OMEN_DURABLE_WAL);
	/* One key in eight stays out of the load: new keys for the writes
	 * during an iteration, below. */
	model_init(&m, keys, nk);
	free(keys);
	ds_rng_seed(&r, case_seed(g_seed, "iterators-ops"));

	is_int(scan_compare(db, &m, 0, UINT64_MAX, 0), 0, "an empty database: OMEN_END at once, and after");

	/* Load in random order, in batches of 500, so that the first batch
	 * (which sets the shard boundaries) is a sample of every cluster. */
	{
		size_t *perm = xmalloc(m.n * sizeof(size_t));

		for (size_t i = 0; i < m.n; i++)
			perm[i] = i;
		for (size_t i = m.n; i > 1; i--) {
			size_t j = (size_t)(ds_rng_next(&r) % i), t = perm[i - 1];

			perm[i - 1] = perm[j];
			perm[j] = t;
		}
		for (size_t i = 0; i < m.n; i++) {
			if (perm[i] % 8 == 3)
				continue; /* kept for later */
			mb_put(b, &m, m.keys[perm[i]], 1);
			if (omen_batch_count(b) == 500 || i + 1 == m.n) {
				if (omen_write(db, b) != OMEN_OK)
					bail_out("write: %s", omen_errmsg());
				omen_batch_clear(b);
			}
		}
		if (omen_batch_count(b) && omen_write(db, b) != OMEN_OK)
			bail_out("write: %s", omen_errmsg());
		omen_batch_clear(b);
		free(perm);
	}
	n_live = model_live(&m);
	shard_ranges(db, 4, lo, hi);
	for (unsigned s = 0; s < 4; s++) {
		omen_shard_stats ss;

		memset(&ss, 0, sizeof(ss));
		omen_get_shard_stats(db, s, &ss);
		diag("shard %u: [0x%016" PRIx64 ", 0x%016" PRIx64 "], %" PRIu64 " keys", s, lo[s], hi[s],
		     ss.keys);
		used += ss.keys > 0;
	}
	ok(used >= 2, "the keys spread over %u of 4 shards (iterations cross shards)", used);

	is_int(scan_compare(db, &m, 0, UINT64_MAX, 0), 0, "full scan of %zu keys: ascending, exact, values right",
	       n_live);
	for (int mode = 1; mode <= 4; mode++)
		is_int(scan_compare(db, &m, 0, UINT64_MAX, mode), 0, "full scan with NULL %s",
		       mode == 1 ? "key" : mode == 2 ? "val" : mode == 3 ? "len" : "key, val and len");
	is_int(scan_compare(db, &m, 0, 0, 0), 0, "[0, 0]: key 0 only");
	is_int(scan_compare(db, &m, UINT64_MAX, UINT64_MAX, 0), 0, "[MAX, MAX]: UINT64_MAX only");
	is_int(scan_compare(db, &m, UINT64_MAX - 1, UINT64_MAX, 0), 0, "[MAX - 1, MAX]");
	is_int(scan_compare(db, &m, 0, 2, 0), 0, "[0, 2]");
	is_int(scan_compare(db, &m, 4, 4, 0), 0, "[4, 4]: absent, empty");
	is_int(scan_compare(db, &m, UINT64_C(1) << 63, UINT64_C(1) << 63, 0), 0, "[2^63, 2^63]");

	/* Around the shard boundaries. */
	bad = 0;
	for (unsigned s = 1; s < 4; s++) {
		if (lo[s] > hi[s] || lo[s] == 0)
			continue;
		bad += scan_compare(db, &m, lo[s] - 1, lo[s], 0);
		bad += scan_compare(db, &m, lo[s] - 1, lo[s] - 1, 0);
		bad += scan_compare(db, &m, lo[s], lo[s], 0);
		bad += scan_compare(db, &m, lo[s] > 1000 ? lo[s] - 1000 : 0, lo[s] + 1000, 0);
		bad += scan_compare(db, &m, lo[s - 1], hi[s], 0);
		bad += scan_compare(db, &m, lo[s], UINT64_MAX, 0);
		bad += scan_compare(db, &m, 0, hi[s - 1], 0);
	}
	is_int(bad, 0, "ranges around every shard boundary");

	/* Random ranges: ends at keys, next to keys, anywhere. */
	bad = 0;
	for (size_t j = 0; j < scaled(300, 50); j++) {
		uint64_t e[2];

		for (int t = 0; t < 2; t++) {
			uint64_t x = m.keys[ds_rng_next(&r) % m.n];

			switch (ds_rng_next(&r) % 6) {
			case 0: e[t] = x; break;
			case 1: e[t] = x - 1; break;
			case 2: e[t] = x + 1; break;
			case 3: e[t] = ds_rng_next(&r); break;
			case 4: e[t] = t ? UINT64_MAX : 0; break;
			default: e[t] = lo[ds_rng_next(&r) % 4]; break;
			}
		}
		if (e[0] > e[1]) {
			uint64_t t = e[0];

			e[0] = e[1];
			e[1] = t;
		}
		bad += scan_compare(db, &m, e[0], e[1], (int)(j % 5));
	}
	is_int(bad, 0, "%zu random ranges", scaled(300, 50));

	/* Errors. */
	it = (omen_iter *)&it;
	is_int(omen_iter_open(db, 5, 4, &it), OMEN_EINVAL, "lo > hi: EINVAL");
	is_int(omen_iter_open(db, UINT64_MAX, 0, &it), OMEN_EINVAL, "[MAX, 0]: EINVAL");
	is_int(omen_iter_open(NULL, 0, 1, &it), OMEN_EINVAL, "iter_open(NULL db): EINVAL");
	is_int(omen_iter_open(db, 0, 1, NULL), OMEN_EINVAL, "iter_open(NULL out): EINVAL");
	is_int(omen_iter_next(NULL, &k, &v, &cnt), OMEN_EINVAL, "iter_next(NULL): EINVAL");
	omen_iter_close(NULL);
	ok(1, "iter_close(NULL) is a no-op");

	/* Writes during an iteration: keys acknowledged before the open and
	 * never touched are returned exactly once; touched ones may or may
	 * not be, with one of their values. */
	{
		uint32_t *before = xmalloc(m.n * sizeof(uint32_t));
		uint8_t *touched = xcalloc(m.n, 1), *returned = xcalloc(m.n, 1);
		uint64_t prev = 0;
		size_t got = 0, missing = 0, wrong = 0, order = 0;

		memcpy(before, m.gen, m.n * sizeof(uint32_t));
		rc = omen_iter_open(db, 0, UINT64_MAX, &it);
		is_int(rc, OMEN_OK, "open a full-range iterator");
		for (;;) {
			size_t len = 0, pos;

			rc = omen_iter_next(it, &k, &v, &len);
			if (rc != OMEN_OK)
				break;
			if (got > 0 && k <= prev)
				order++;
			prev = k;
			pos = ds_lower_bound(m.keys, m.n, k);
			if (pos == m.n || m.keys[pos] != k) {
				wrong++;
			} else {
				/* The value before the open, or the one written since. */
				size_t wl0 = before[pos] ? val_of(k, before[pos], wantbuf) : 0;
				bool match0 = before[pos] && len == wl0 &&
					      (wl0 == 0 || memcmp(v, wantbuf, wl0) == 0);
				size_t wl1 = m.gen[pos] ? val_of(k, m.gen[pos], wantbuf) : 0;
				bool match1 = touched[pos] && m.gen[pos] && len == wl1 &&
					      (wl1 == 0 || memcmp(v, wantbuf, wl1) == 0);

				if (!match0 && !match1 && wrong++ < 5)
					diag("key %" PRIu64 ": a value it never had (len %zu)", k, len);
				returned[pos] = 1;
			}
			if (++got == 50) {
				/* Delete, overwrite and insert behind and ahead of it. */
				for (size_t j = 0; j < 300; j++) {
					size_t i = (size_t)(ds_rng_next(&r) % m.n);

					touched[i] = 1;
					if (m.gen[i] && j % 3 == 0)
						m_delete(db, &m, m.keys[i]);
					else
						m_put(db, &m, m.keys[i], m.gen[i] + 100);
				}
			}
		}
		is_int(rc, OMEN_END, "  it ends with OMEN_END");
		omen_iter_close(it);
		for (size_t i = 0; i < m.n; i++)
			if (!touched[i] && before[i] && !returned[i] && missing++ < 5)
				diag("untouched key %" PRIu64 " (0x%" PRIx64 ") not returned", m.keys[i],
				     m.keys[i]);
		ok(order == 0 && wrong == 0, "  while 300 writes ran: strictly ascending (%zu bad), "
		   "every key with a value it had (%zu bad), %zu keys", order, wrong, got);
		is_int(missing, 0, "  every untouched key acknowledged before the open came once");
		free(before);
		free(touched);
		free(returned);
	}
	model_verify(db, &m, "after writes during an iteration");

	/* omen_close refuses while iterators are open, and changes nothing. */
	rc = omen_iter_open(db, 0, UINT64_MAX, &it);
	is_int(rc, OMEN_OK, "open iterator 1");
	rc = omen_iter_open(db, 0, 100, &it2);
	is_int(rc, OMEN_OK, "open iterator 2");
	is_int(omen_iter_next(it, &k, &v, &cnt), OMEN_OK, "  iterator 1 reads a key");
	is_int(omen_close(db), OMEN_EBUSY, "close with 2 open iterators: EBUSY");
	is_int(m_put(db, &m, m.keys[7], 500), OMEN_OK, "  the database still writes");
	ok(check_key(db, &m, 7), "  and reads");
	is_int(omen_iter_next(it, &k, &v, &cnt), OMEN_OK, "  iterator 1 still reads");
	omen_iter_close(it);
	is_int(omen_close(db), OMEN_EBUSY, "close with iterator 2 still open: EBUSY");
	for (cnt = 0; omen_iter_next(it2, NULL, NULL, NULL) == OMEN_OK; cnt++)
		;
	omen_iter_close(it2);
	model_verify(db, &m, "after the refused closes");

	/* Empty a whole shard's range: iterations skip it. */
	shard_ranges(db, 4, lo, hi);
	for (size_t i = 0; i < m.n; i++)
		if (m.keys[i] >= lo[1] && m.keys[i] <= hi[1] && m.gen[i])
			m_delete(db, &m, m.keys[i]);
	is_int(scan_compare(db, &m, 0, UINT64_MAX, 0), 0, "full scan with shard 1 emptied");
	if (lo[1] <= hi[1])
		is_int(scan_compare(db, &m, lo[1], hi[1], 0), 0, "  shard 1's range alone: empty");
	else
		skip(1, "shard 1 has no range");
	is_int(scan_compare(db, &m, lo[0], hi[2] >= lo[0] ? hi[2] : hi[0], 0), 0, "  shards 0..2");
	close_or_fail(db, "iterators (after closing both iterators)");
	db = open_or_bail(p, 0, OMEN_DURABLE_WAL);
	model_verify(db, &m, "iterators reopened");
	close_or_fail(db, "iterators reopened");
	omen_batch_free(b);
	model_free(&m);
}

/*
 * An iterator opened on a new 4-shard database (every key still in shard
 * 0) and continued after writes that make the database set its shard
 * boundaries and move keys out of shard 0: the keys written before the
 * open come exactly once, ascending, with their values.
 */
static void test_iter_across_boundaries(void)
{
	char p[4200];
	omen_db *db;
	omen_iter *it = NULL;
	omen_batch *b = omen_batch_new();
	model m;
	size_t nk, got = 0, order = 0, wrong = 0, missing = 0;
	uint64_t *keys = mixed_keys("iter-bootstrap", 2000, &nk), prev = 0, k;
	uint8_t *before, *returned;
	const void *v;
	size_t len;
	int rc;

	path_of(p, sizeof(p), "iter-bootstrap");
	db = open_or_bail(p, 4, OMEN_DURABLE_WAL);
	model_init(&m, keys, nk);
	free(keys);
	before = xcalloc(m.n, 1);
	returned = xcalloc(m.n, 1);
	/* Half the keys (fewer than 4096): the database keeps them in shard 0. */
	for (size_t i = 0; i < m.n; i += 2) {
		mb_put(b, &m, m.keys[i], 1);
		before[i] = 1;
	}
	if (omen_write(db, b) != OMEN_OK)
		bail_out("write: %s", omen_errmsg());
	omen_batch_clear(b);
	rc = omen_iter_open(db, 0, UINT64_MAX, &it);
	is_int(rc, OMEN_OK, "iterator opened on %zu keys, before the boundaries are set",
	       model_live(&m));
	for (;;) {
		rc = omen_iter_next(it, &k, &v, &len);
		if (rc != OMEN_OK)
			break;
		size_t pos = ds_lower_bound(m.keys, m.n, k);

		if (got++ && k <= prev)
			order++;
		prev = k;
		if (pos == m.n || m.keys[pos] != k || !m.gen[pos]) {
			wrong++;
		} else {
			size_t wl = val_of(k, m.gen[pos], wantbuf);

			if (len != wl || (wl && memcmp(v, wantbuf, wl) != 0))
				wrong++;
			returned[pos] = 1;
		}
		if (got == 100) {
			/* The other half, in batches: past 4096 keys. */
			for (size_t i = 1; i < m.n; i += 2) {
				mb_put(b, &m, m.keys[i], 2);
				if (omen_batch_count(b) == 500) {
					omen_write(db, b);
					omen_batch_clear(b);
				}
			}
			omen_write(db, b);
			omen_batch_clear(b);
			ok(ranges_ok(db, 4, RANGES_SET), "  after writes mid-iteration, %zu keys: the "
			   "boundaries are set", model_live(&m));
		}
	}
	is_int(rc, OMEN_END, "  the iteration ends with OMEN_END");
	omen_iter_close(it);
	for (size_t i = 0; i < m.n; i++)
		if (before[i] && !returned[i] && missing++ < 5)
			diag("key %" PRIu64 " (written before the open) not returned", m.keys[i]);
	ok(order == 0 && wrong == 0, "  strictly ascending (%zu bad), each key with its value (%zu bad), "
	   "%zu keys", order, wrong, got);
	is_int(missing, 0, "  every key written before the open came");
	model_verify(db, &m, "after the boundaries were set");
	close_or_fail(db, "iter-bootstrap");
	free(before);
	free(returned);
	omen_batch_free(b);
	model_free(&m);
}

/* --------------------------------------------------------- checkpoint */

static void test_checkpoint(void)
{
	char p[4200], c[4200], q[4200];
	omen_db *db, *cp;
	omen_batch *b = omen_batch_new();
	model m, snap;
	size_t nk;
	uint64_t *keys = mixed_keys("checkpoint", 1000, &nk);
	char *before, *after;
	ds_rng r;

	path_of(p, sizeof(p), "cp-src");
	db = open_or_bail(p, 4, OMEN_DURABLE_WAL);
	model_init(&m, keys, nk);
	free(keys);
	ds_rng_seed(&r, case_seed(g_seed, "checkpoint-ops"));
	for (size_t i = 0; i < m.n; i++) {
		switch (i % 4) {
		case 0: m_put(db, &m, m.keys[i], 1); break;
		case 1: mb_put(b, &m, m.keys[i], 2); break;
		default: m_ingest(db, &m, m.keys[i], 3); break;
		}
	}
	omen_write(db, b);
	omen_flush(db);
	for (size_t i = 0; i < m.n; i += 7)
		m_delete(db, &m, m.keys[i]);

	is_int(omen_checkpoint(NULL, "/nonexistent"), OMEN_EINVAL, "checkpoint(NULL db): EINVAL");
	is_int(omen_checkpoint(db, NULL), OMEN_EINVAL, "checkpoint(NULL dir): EINVAL");
	path_of(c, sizeof(c), "cp-exists");
	mkdir(c, 0700);
	before = apitest_tree_fingerprint(c);
	is_int(omen_checkpoint(db, c), OMEN_EINVAL, "checkpoint into an existing (empty) directory: EINVAL");
	after = apitest_tree_fingerprint(c);
	ok(apitest_same_tree(before, after), "  left unchanged");
	free(before);
	free(after);
	path_of(c, sizeof(c), "cp-file");
	write_file(c, "x");
	is_int(omen_checkpoint(db, c), OMEN_EINVAL, "checkpoint onto an existing file: EINVAL");
	is_int(omen_checkpoint(db, p), OMEN_EINVAL, "checkpoint onto the database itself: EINVAL");

	path_of(c, sizeof(c), "cp1");
	is_int(omen_checkpoint(db, c), OMEN_OK, "checkpoint into a new directory");
	is_int(omen_checkpoint(db, c), OMEN_EINVAL, "  again into the same one: EINVAL");
	model_copy(&snap, &m);
	/* The source moves on. */
	for (size_t i = 0; i < m.n; i += 3)
		m_put(db, &m, m.keys[i], 9);
	cp = open_or_bail(c, 0, OMEN_DURABLE_WAL);
	is_int(shard_count(cp), 4, "the checkpoint opens while the source is open: 4 shards");
	model_verify(cp, &snap, "checkpoint");
	{
		omen_verify_report vr;

		is_int(omen_verify(NULL, &vr), OMEN_EINVAL, "omen_verify(NULL): EINVAL");
		is_int(omen_verify(cp, &vr), OMEN_OK, "omen_verify of the checkpoint: OK");
		ok(vr.keys == model_live(&snap) && vr.problems == 0,
		   "  %" PRIu64 " keys checked (%zu live), %" PRIu64 " problems", vr.keys,
		   model_live(&snap), vr.problems);
		is_int(omen_verify(db, NULL), OMEN_OK, "omen_verify of the source (no report): OK");
	}
	for (size_t i = 1; i < snap.n; i += 5)
		m_put(cp, &snap, snap.keys[i], 20);
	model_verify(db, &m, "source, after writes to the checkpoint");
	close_or_fail(cp, "checkpoint");
	close_or_fail(db, "checkpoint source");
	cp = open_or_bail(c, 0, OMEN_DURABLE_WAL);
	model_verify(cp, &snap, "checkpoint reopened after the source closed");
	close_or_fail(cp, "checkpoint reopened");

	/* A checkpoint of a checkpoint opened after its source closed; and
	 * of an empty database. */
	cp = open_or_bail(c, 0, OMEN_DURABLE_WAL);
	path_of(q, sizeof(q), "cp2");
	is_int(omen_checkpoint(cp, q), OMEN_OK, "checkpoint of the checkpoint");
	close_or_fail(cp, "checkpoint");
	cp = open_or_bail(q, 0, OMEN_DURABLE_WAL);
	model_verify(cp, &snap, "second-generation checkpoint");
	close_or_fail(cp, "cp2");

	path_of(p, sizeof(p), "cp-empty-src");
	db = open_or_bail(p, 3, OMEN_DURABLE_WAL);
	path_of(c, sizeof(c), "cp-empty");
	is_int(omen_checkpoint(db, c), OMEN_OK, "checkpoint of an empty database");
	close_or_fail(db, "empty source");
	cp = open_or_bail(c, 0, OMEN_DURABLE_WAL);
	is_int(shard_count(cp), 3, "  opens with 3 shards");
	{
		omen_iter *it = NULL;

		ok(omen_iter_open(cp, 0, UINT64_MAX, &it) == OMEN_OK &&
		   omen_iter_next(it, NULL, NULL, NULL) == OMEN_END, "  and no keys");
		omen_iter_close(it);
	}
	close_or_fail(cp, "empty checkpoint");

	omen_batch_free(b);
	model_free(&m);
	model_free(&snap);
}

/* ------------------------------------------------------------- stats */

/* Per-shard counts agree with the totals and with the model's keys. */
static void check_shard_counts(omen_db *db, const model *m, const char *what)
{
	omen_stats s;
	uint64_t keys = 0, batches = 0, records = 0, queued = 0;
	size_t wrong = 0, vbytes = 0;

	memset(&s, 0, sizeof(s));
	if (!is_int(omen_get_stats(db, &s), OMEN_OK, "%s: get_stats", what))
		return;
	for (unsigned sh = 0; sh < s.shards; sh++) {
		omen_shard_stats ss;
		size_t expect = 0;

		memset(&ss, 0, sizeof(ss));
		if (omen_get_shard_stats(db, sh, &ss) != OMEN_OK) {
			wrong++;
			continue;
		}
		keys += ss.keys;
		batches += ss.batches;
		records += ss.records;
		queued += ss.queued;
		for (size_t i = 0; i < m->n; i++)
			expect += m->gen[i] && m->keys[i] >= ss.lo && m->keys[i] <= ss.hi;
		if (ss.keys != expect) {
			diag("shard %u: %" PRIu64 " keys, %zu live keys in its range", sh, ss.keys, expect);
			wrong++;
		}
	}
	for (size_t i = 0; i < m->n; i++)
		if (m->gen[i])
			vbytes += val_of(m->keys[i], m->gen[i], wantbuf);
	is_u64(s.keys, model_live(m), "%s: stats.keys", what);
	is_u64(keys, s.keys, "%s: the shards' keys add up to stats.keys", what);
	is_int(wrong, 0, "%s: each shard counts the live keys of its range", what);
	ok(batches == s.batches && records == s.records && queued == s.queued,
	   "%s: batches (%" PRIu64 "), records (%" PRIu64 ") and queued (%" PRIu64 ") add up", what,
	   s.batches, s.records, s.queued);
	ok(s.disk_bytes > 0, "%s: disk_bytes %" PRIu64 " > 0", what, s.disk_bytes);
	ok(s.value_bytes >= vbytes, "%s: value_bytes %" PRIu64 " >= %zu bytes of live values "
	   "(all resident)", what, s.value_bytes, vbytes);
	ok(s.keys == 0 || s.index_bytes > 0, "%s: index_bytes %" PRIu64, what, s.index_bytes);
}

static void test_stats(void)
{
	char p[4200];
	omen_db *db;
	omen_stats s;
	omen_shard_stats ss;
	omen_batch *b = omen_batch_new();
	model m;
	size_t nk;
	uint64_t *keys = mixed_keys("stats", 2500, &nk);
	size_t first = 0;
	uint64_t lo1[4], hi1[4], lo2[4], hi2[4];

	path_of(p, sizeof(p), "stats");
	db = open_or_bail(p, 4, OMEN_DURABLE_WAL);
	model_init(&m, keys, nk);
	free(keys);

	memset(&s, 0xff, sizeof(s));
	is_int(omen_get_stats(db, &s), OMEN_OK, "get_stats of a new database");
	ok(s.shards == 4 && s.keys == 0 && s.queued == 0, "  4 shards, no keys, nothing queued");
	ok(s.disk_bytes > 0, "  disk_bytes %" PRIu64 " > 0", s.disk_bytes);
	ok(ranges_ok(db, 4, RANGES_BOOTSTRAP), "a new database: shard 0 is [0, MAX], the others lo > hi");
	is_int(omen_get_stats(NULL, &s), OMEN_EINVAL, "get_stats(NULL db): EINVAL");
	is_int(omen_get_stats(db, NULL), OMEN_EINVAL, "get_stats(NULL out): EINVAL");
	is_int(omen_get_shard_stats(db, 4, &ss), OMEN_EINVAL, "shard 4 of 4: EINVAL");
	is_int(omen_get_shard_stats(db, 5, &ss), OMEN_EINVAL, "shard 5: EINVAL");
	is_int(omen_get_shard_stats(db, UINT_MAX, &ss), OMEN_EINVAL, "shard UINT_MAX: EINVAL");
	is_int(omen_get_shard_stats(db, 0, NULL), OMEN_EINVAL, "shard stats (NULL out): EINVAL");
	is_int(omen_get_shard_stats(NULL, 0, &ss), OMEN_EINVAL, "shard stats (NULL db): EINVAL");

	for (size_t i = 0; i < m.n; i += 4, first++)
		mb_put(b, &m, m.keys[i], 1);
	is_int(omen_write(db, b), OMEN_OK, "first batch: %zu keys", first);
	ok(ranges_ok(db, 4, RANGES_EITHER), "after it: shard 0 is [0, MAX] and the others lo > hi, "
	   "or the ranges ascend, are nonempty and cover 0..MAX");
	check_shard_counts(db, &m, "after the first batch");
	memset(&s, 0, sizeof(s));
	omen_get_stats(db, &s);
	ok(s.batches >= 1 && s.records >= first, "  batches %" PRIu64 " >= 1, records %" PRIu64
	   " >= %zu (records committed, before dedupe)", s.batches, s.records, first);
	omen_batch_clear(b);
	for (size_t i = 0; i < m.n; i++)
		if (i % 4)
			mb_put(b, &m, m.keys[i], 1);
	is_int(omen_write(db, b), OMEN_OK, "second batch: %zu keys in all", m.n);
	ok(ranges_ok(db, 4, RANGES_SET), "after it (past 4096 keys): the ranges ascend, are nonempty "
	   "and cover 0..MAX");
	check_shard_counts(db, &m, "after the second batch");

	for (size_t i = 0; i < m.n; i += 3)
		m_delete(db, &m, m.keys[i]);
	for (size_t i = 1; i < m.n; i += 3)
		m_ingest(db, &m, m.keys[i], GEN_BIG * (i % 97 == 1) + 2);
	omen_flush(db);
	check_shard_counts(db, &m, "after deletes and ingests");
	shard_ranges(db, 4, lo1, hi1);
	close_or_fail(db, "stats");

	db = open_or_bail(p, 0, OMEN_DURABLE_WAL);
	shard_ranges(db, 4, lo2, hi2);
	ok(memcmp(lo1, lo2, sizeof(lo1)) == 0 && memcmp(hi1, hi2, sizeof(hi1)) == 0,
	   "reopened: the same shard ranges");
	check_shard_counts(db, &m, "reopened");
	close_or_fail(db, "stats reopened");

	/* The first batch is a single put. */
	path_of(p, sizeof(p), "stats-one");
	db = open_or_bail(p, 3, OMEN_DURABLE_WAL);
	ok(ranges_ok(db, 3, RANGES_BOOTSTRAP), "3 shards, new: shard 0 is [0, MAX], the others lo > hi");
	omen_put(db, 42, "x", 1);
	ok(ranges_ok(db, 3, RANGES_EITHER), "after one put of key 42: still the new database's ranges, "
	   "or ascending, nonempty, covering 0..MAX");
	memset(&s, 0, sizeof(s));
	omen_get_stats(db, &s);
	is_u64(s.keys, 1, "  1 key");
	close_or_fail(db, "stats-one");

	omen_batch_free(b);
	model_free(&m);
}

/* ------------------------------------------------- short-lived threads */

struct short_thread {
	omen_db *db;
	uint64_t key;
	int rc;
};

static void *short_thread_main(void *arg)
{
	struct short_thread *t = arg;
	uint64_t got = 0;
	size_t len = 0;

	t->rc = omen_put(t->db, t->key, &t->key, sizeof(t->key));
	if (t->rc == OMEN_OK)
		t->rc = omen_get(t->db, t->key, &got, sizeof(got), &len);
	if (t->rc == OMEN_OK && (len != sizeof(got) || got != t->key))
		t->rc = OMEN_ECORRUPT;
	if (t->rc == OMEN_OK)
		t->rc = omen_ingest(t->db, ~t->key, &t->key, sizeof(t->key));
	return NULL;
}

/* Threads that write and read once and exit (the engine registers
 * readers lazily): nothing hangs, nothing is lost, close works. */
/* Write-ahead logs do not pile up: 20 opens that only read leave at most
 * two *.log files (RocksDB 7.8 left one more empty WAL per open). */
static void test_wal_files(void)
{
	char p[4200];
	omen_db *db;
	size_t len;
	char v[8];
	int bad = 0;

	path_of(p, sizeof(p), "wal-files");
	db = open_or_bail(p, 2, OMEN_DURABLE_WAL);
	is_int(omen_put(db, 42, "answer", 6), OMEN_OK, "wal files: one put");
	close_or_fail(db, "wal files");
	for (int i = 0; i < 20; i++) {
		db = open_or_bail(p, 0, OMEN_DURABLE_WAL);
		if (omen_get(db, 42, v, sizeof(v), &len) != OMEN_OK || len != 6)
			bad++;
		close_or_fail(db, "wal files, read-only session");
	}
	is_int(bad, 0, "wal files: the key read back in each of 20 sessions");
	DIR *d = opendir(p);
	struct dirent *e;
	int logs = 0;
	while (d && (e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		logs += n > 4 && strcmp(e->d_name + n - 4, ".log") == 0;
	}
	if (d)
		closedir(d);
	ok(logs >= 1 && logs <= 2, "wal files: %d *.log files after 21 sessions", logs);
}

static void test_short_threads(void)
{
	char p[4200];
	omen_db *db;
	struct short_thread t[64];
	pthread_t th[64];
	size_t good = 0, found = 0;

	path_of(p, sizeof(p), "short-threads");
	db = open_or_bail(p, 2, OMEN_DURABLE_WAL);
	for (int round = 0; round < 4; round++)
		for (int i = 0; i < 16; i++) {
			int j = round * 16 + i;

			t[j] = (struct short_thread){ .db = db, .key = mix64((uint64_t)j) };
			if (pthread_create(&th[j], NULL, short_thread_main, &t[j]) != 0)
				bail_out("pthread_create");
			if (i == 15)
				for (int x = round * 16; x <= j; x++)
					pthread_join(th[x], NULL);
		}
	for (int j = 0; j < 64; j++)
		good += t[j].rc == OMEN_OK;
	is_int(good, 64, "64 short-lived threads each put, got and ingested");
	is_int(omen_flush(db), OMEN_OK, "  flush");
	for (int j = 0; j < 64; j++) {
		uint64_t got = 0;
		size_t len = 0;

		found += omen_get(db, ~t[j].key, &got, sizeof(got), &len) == OMEN_OK && got == t[j].key;
	}
	is_int(found, 64, "  their ingested records are there");
	close_or_fail(db, "short-lived threads");
}

/* -------------------------------------------------------- persistence */

static void test_persistence(int durability, unsigned shards)
{
	char name[32], p[4200], what[64];
	omen_db *db;
	omen_batch *b = omen_batch_new();
	model m;
	size_t nk, n;
	uint64_t *keys;
	ds_rng r;
	int rc;

	snprintf(name, sizeof(name), "persist-%s-%u", durability == OMEN_DURABLE_SYNC ? "sync" : "wal",
		 shards);
	keys = mixed_keys(name, 1700, &nk);
	path_of(p, sizeof(p), name);
	db = open_or_bail(p, shards, durability);
	model_init(&m, keys, nk);
	free(keys);
	n = m.n;
	ds_rng_seed(&r, case_seed(g_seed, name));

	/* Every write path, several rounds over a fifth of the keys (fewer
	 * than a new database collects before it sets its boundaries). */
	for (uint32_t round = 1; round <= 3; round++) {
		for (size_t i = 0; i < n; i += 5) {
			uint32_t gen = round * 10 + (uint32_t)(ds_rng_next(&r) % 5);

			if (i % 101 == 7)
				gen |= GEN_BIG;
			switch (ds_rng_next(&r) % 6) {
			case 0: m_put(db, &m, m.keys[i], gen); break;
			case 1: m_delete(db, &m, m.keys[i]); break;
			case 2: mb_put(b, &m, m.keys[i], gen); break;
			case 3: mb_delete(b, &m, m.keys[i]); break;
			case 4: m_ingest(db, &m, m.keys[i], gen); break;
			default: m_put(db, &m, m.keys[i], gen); break;
			}
			if (omen_batch_count(b) >= 50) {
				if (round == 2)
					omen_ingest_batch(db, b);
				else
					omen_write(db, b);
				omen_batch_clear(b);
			}
		}
	}
	/* The last records only queued: omen_close drains them. */
	for (size_t i = 0; i < n; i += 20)
		mb_put(b, &m, m.keys[i], 40);
	omen_ingest_batch(db, b);
	omen_batch_clear(b);
	for (size_t i = 5; i < n; i += 20)
		m_ingest(db, &m, m.keys[i], 41);
	close_or_fail(db, name);

	db = open_or_bail(p, 0, durability);
	is_int(shard_count(db), shards, "%s: reopened with shards 0: %u shards", name, shards);
	snprintf(what, sizeof(what), "%s reopened", name);
	model_verify(db, &m, what);
	close_or_fail(db, what);
	{
		omen_options o = opts(shards, durability == OMEN_DURABLE_SYNC ? OMEN_DURABLE_WAL
									      : OMEN_DURABLE_SYNC);

		o.create_if_missing = 0;
		o.memory_budget = 1; /* the smallest block cache */
		db = NULL;
		rc = omen_open(p, &o, &db);
		if (!is_int(rc, OMEN_OK, "%s: reopened with the other durability, no create, "
			    "memory_budget 1", name))
			bail_out("reopen: %s", omen_errmsg());
	}
	snprintf(what, sizeof(what), "%s reopened twice", name);
	model_verify(db, &m, what);

	/* Now every key: past the sample a new database sets its boundaries
	 * from, in a database reopened before it did. */
	for (size_t i = 0; i < n; i++) {
		mb_put(b, &m, m.keys[i], 50 + (uint32_t)(i % 3));
		if (omen_batch_count(b) == 1000 || i + 1 == n) {
			if (omen_write(db, b) != OMEN_OK)
				bail_out("write: %s", omen_errmsg());
			omen_batch_clear(b);
		}
	}
	for (size_t i = 1; i < n; i += 7)
		m_delete(db, &m, m.keys[i]);
	snprintf(what, sizeof(what), "%s grown to %zu keys", name, n);
	model_verify(db, &m, what);
	if (shards > 1)
		ok(ranges_ok(db, shards, RANGES_SET), "%s: the shard ranges ascend, are nonempty and cover "
		   "0..MAX", what);
	close_or_fail(db, what);
	db = open_or_bail(p, 0, durability);
	snprintf(what, sizeof(what), "%s grown, reopened", name);
	model_verify(db, &m, what);
	close_or_fail(db, what);

	omen_batch_free(b);
	model_free(&m);
}

/* -------------------------------------------------------------- crash */

/* Unit j of the crash writer: its key and value (j in the first 8 bytes,
 * then up to 40 bytes that depend on the key). */
static uint64_t crash_key(uint64_t seed, uint64_t j)
{
	return mix64(j ^ seed);
}

static size_t crash_val(uint64_t key, uint64_t j, unsigned char *buf)
{
	uint64_t h = mix64(key);
	size_t len = 8 + (size_t)(h % 41);

	memcpy(buf, &j, 8);
	for (size_t i = 8; i < len; i++)
		buf[i] = (unsigned char)(h >> (8 * (i & 7)));
	return len;
}

/*
 * Child mode (--crash-child DIR DURABILITY SEED): write units 0, 1, 2, ...
 * through put, write, ingest + flush and ingest_batch + flush, printing
 * after each acknowledged step how many units are acknowledged, until
 * killed.
 */
static int crash_child(const char *dir, int durability, uint64_t seed)
{
	omen_options o = opts(2, durability);
	omen_db *db = NULL;
	omen_batch *b = omen_batch_new();
	unsigned char buf[64];
	uint64_t j = 0;

	if (omen_open(dir, &o, &db) != OMEN_OK) {
		fprintf(stderr, "crash child: open: %s\n", omen_errmsg());
		return 2;
	}
	for (uint64_t step = 0; step < 10000000; step++) {
		unsigned kind = (unsigned)(mix64(step ^ seed) % 4);
		int rc = OMEN_OK;

		omen_batch_clear(b);
		for (unsigned u = 0; u < (kind == 0 ? 1u : 4u); u++, j++) {
			uint64_t k = crash_key(seed, j);
			size_t len = crash_val(k, j, buf);

			if (kind == 0)
				rc = omen_put(db, k, buf, len);
			else if (kind == 2)
				rc = omen_ingest(db, k, buf, len);
			else
				rc = omen_batch_put(b, k, buf, len);
			if (rc != OMEN_OK)
				break;
		}
		if (rc == OMEN_OK && kind == 1)
			rc = omen_write(db, b);
		if (rc == OMEN_OK && kind == 3)
			rc = omen_ingest_batch(db, b);
		if (rc == OMEN_OK && kind >= 2)
			rc = omen_flush(db);
		if (rc != OMEN_OK) {
			fprintf(stderr, "crash child: %s: %s\n", omen_strerror(rc), omen_errmsg());
			return 3;
		}
		printf("%" PRIu64 "\n", j);
		fflush(stdout);
	}
	return 4;
}

static void test_crash(int durability)
{
	const char *name = durability == OMEN_DURABLE_SYNC ? "crash-sync" : "crash-wal";
	uint64_t seed = case_seed(g_seed, name), acked = 0, target = scaled(3000, 300);
	char p[4200], line[64], dur[8], seedstr[32];
	int fds[2], status = 0;
	FILE *f;
	pid_t pid;
	bool killed = false;
	double t0 = now_sec();

	path_of(p, sizeof(p), name);
	if (pipe(fds) != 0)
		bail_out("pipe: %s", strerror(errno));
	snprintf(dur, sizeof(dur), "%d", durability);
	snprintf(seedstr, sizeof(seedstr), "%" PRIu64, seed);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		dup2(fds[1], 1);
		close(fds[1]);
		execl("/proc/self/exe", "test_api", "--crash-child", p, dur, seedstr, (char *)NULL);
		_exit(100);
	}
	if (pid < 0)
		bail_out("fork: %s", strerror(errno));
	close(fds[1]);
	f = fdopen(fds[0], "r");
	for (;;) {
		struct pollfd pf = { .fd = fds[0], .events = POLLIN };

		/* Lines already buffered by stdio need no poll. */
		if (!killed && acked >= target) {
			/* Mid-step, most likely: a random moment up to 3 ms on. */
			struct timespec ts = { 0, (long)(seed % 3000000) };

			nanosleep(&ts, NULL);
			kill(pid, SIGKILL);
			killed = true;
		}
		if (!killed && poll(&pf, 1, 30000) <= 0) {
			diag("%s: the writer printed nothing for 30 s", name);
			kill(pid, SIGKILL);
			killed = true;
		}
		if (!fgets(line, sizeof(line), f))
			break;
		if (strchr(line, '\n')) /* a whole line: that many units acknowledged */
			acked = strtoull(line, NULL, 10);
	}
	fclose(f);
	waitpid(pid, &status, 0);
	ok(killed && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	   "%s: the writer acknowledged %" PRIu64 " units, then was killed (%.1f s)", name, acked,
	   now_sec() - t0);

	{
		omen_db *db = open_or_bail(p, 0, OMEN_DURABLE_WAL);
		unsigned char buf[64], want[64];
		size_t missing = 0, wrong = 0, n = 0;
		omen_iter *it = NULL;
		uint64_t k;
		const void *v;
		size_t len;

		for (uint64_t j = 0; j < acked; j++) {
			uint64_t key = crash_key(seed, j);
			size_t wl = crash_val(key, j, want);
			int rc = omen_get(db, key, buf, sizeof(buf), &len);

			if (rc != OMEN_OK || len != wl || memcmp(buf, want, wl) != 0) {
				if (missing++ < 5)
					diag("unit %" PRIu64 " (key 0x%" PRIx64 "): %s", j, key, omen_strerror(rc));
			}
		}
		is_int(missing, 0, "%s: every acknowledged write is back", name);
		omen_iter_open(db, 0, UINT64_MAX, &it);
		while (omen_iter_next(it, &k, &v, &len) == OMEN_OK) {
			uint64_t j;

			n++;
			if (len < 8) {
				wrong++;
				continue;
			}
			memcpy(&j, v, 8);
			/* At most one unacknowledged step (4 units) was in flight. */
			if (j >= acked + 4 || crash_key(seed, j) != k || crash_val(k, j, want) != len ||
			    memcmp(v, want, len) != 0) {
				if (wrong++ < 5)
					diag("key 0x%" PRIx64 ": a value never written (unit %" PRIu64 ")", k, j);
			}
		}
		omen_iter_close(it);
		is_int(wrong, 0, "%s: nothing that was never written (%zu keys, %" PRIu64 " acknowledged)",
		       name, n, acked);
		close_or_fail(db, name);
	}
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
	double t0 = now_sec();

	if (argc == 3 && strcmp(argv[1], "--try-open") == 0)
		return try_open(argv[2]);
	if (argc == 5 && strcmp(argv[1], "--crash-child") == 0)
		return crash_child(argv[2], atoi(argv[3]), strtoull(argv[4], NULL, 10));

	g_seed = test_seed_from_env(DEFAULT_SEED);
	g_scale = apitest_scale(DEFAULT_SCALE);
	apitest_mkdtemp(base, sizeof(base), "test-api");
	plan_no_plan();
	diag("seed %" PRIu64 " (replay: OMEN_TEST_SEED=%" PRIu64 "), scale %.2f, databases under %s",
	     g_seed, g_seed, g_scale, base);

	test_options_and_strings();
	test_open_errors();
	test_open_busy_and_shards();
	test_put_get();
	test_batches();
	test_ingest();
	test_nonblocking();
	test_iterators();
	test_iter_across_boundaries();
	test_checkpoint();
	test_stats();
	test_persistence(OMEN_DURABLE_WAL, 3);
	test_persistence(OMEN_DURABLE_SYNC, 3);
	test_persistence(OMEN_DURABLE_WAL, 1);
	test_persistence(OMEN_DURABLE_SYNC, 1);
	test_wal_files();
	test_short_threads();
	test_crash(OMEN_DURABLE_WAL);
	test_crash(OMEN_DURABLE_SYNC);

	if (tap_state.failed)
		diag("failed: replay with OMEN_TEST_SEED=%" PRIu64 "%s", g_seed,
		     getenv("OMEN_TEST_KEEP") ? "" : " (OMEN_TEST_KEEP=1 keeps the databases)");
	if (getenv("OMEN_TEST_KEEP"))
		diag("databases kept under %s", base);
	else
		apitest_rm_tree(base);
	diag("%.1f s", now_sec() - t0);
	return done_testing();
}
