/*
 * tests/test_engine.c — white-box tests of the sharded engine: the root
 * model, the layout record, bootstrap boundaries from data, the read path
 * for values that are not resident, and calls racing with omen_close
 * (made deterministic with the worker pause hook of shard/testhooks.h).
 * The public contract is tests/test_api.c's; this file checks what only
 * the internals can show.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/root_model.h"
#include "omendb.h"
#include "recovery/layout.h"
#include "shard/store.h"
#include "shard/testhooks.h"
#include "tests/lib/tap.h"
#include "tests/lib/util.h"

static char tmpl[] = "/tmp/omen-test-engine-XXXXXX";
static char *root;
static int dbno;

static void rm_rf(const char *path)
{
	char cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	if (system(cmd) != 0)
		diag("could not remove %s", path);
}

/* A fresh database path under the test's directory. */
static void new_path(char *buf, size_t n)
{
	snprintf(buf, n, "%s/db%d", root, dbno++);
}

static uint64_t rng_state;
static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The value stored for key k: 1 + k % 40 bytes derived from k. */
static size_t value_of(uint64_t k, unsigned char *v)
{
	size_t n = 1 + k % 40;
	for (size_t i = 0; i < n; i++)
		v[i] = (unsigned char)(k >> (8 * (i % 8))) ^ (unsigned char)i;
	return n;
}

static bool value_ok(uint64_t k, const void *got, size_t len)
{
	unsigned char v[64];
	size_t n = value_of(k, v);
	return len == n && memcmp(v, got, n) == 0;
}

/* ------------------------------------------------------------- model */

static void test_root_model(void)
{
	/* Routing equals a scan of the boundary array, on random layouts. */
	int bad = 0;
	for (int round = 0; round < 200 && !bad; round++) {
		unsigned n = 1 + (unsigned)(rnd() % 16);
		uint64_t lo[16];
		lo[0] = 0;
		for (unsigned i = 1; i < n; i++)
			lo[i] = lo[i - 1] + 1 + rnd() % (round % 2 ? 1000 : (UINT64_MAX / 32));
		orm *m;
		if (orm_from_bounds(lo, n, &m) != 0) {
			bad = 1;
			break;
		}
		for (int j = 0; j < 2000; j++) {
			uint64_t k = j % 3 == 0 ? rnd() : lo[rnd() % n] + (rnd() % 3) - 1;
			unsigned want = 0;
			for (unsigned i = 0; i < n; i++)
				if (lo[i] <= k)
					want = i;
			if (orm_route(m, k) != want) {
				diag("route(%llu) = %u, want %u", (unsigned long long)k,
				     orm_route(m, k), want);
				bad = 1;
				break;
			}
		}
		orm_free(m);
	}
	ok(!bad, "root model: routing matches the boundary array on random layouts");

	uint64_t bad_lo[3] = { 0, 5, 5 };
	orm *m;
	ok(orm_from_bounds(bad_lo, 3, &m) == -EINVAL, "root model: equal boundaries are refused");

	/* Quantiles: 4000 device keys, 4 shards, each gets 1000. */
	uint64_t keys[4000];
	for (int i = 0; i < 4000; i++)
		keys[i] = (uint64_t)(i % 40) << 44 | (uint64_t)(1700000000000ull + i / 40);
	ok(orm_from_sample(keys, 4000, keys, 4, &m) == 0, "root model: from a sample");
	unsigned cnt[4] = { 0, 0, 0, 0 };
	for (int i = 0; i < 4000; i++) {
		uint64_t k = (uint64_t)(i % 40) << 44 | (uint64_t)(1700000000000ull + i / 40);
		cnt[orm_route(m, k)]++;
	}
	ok(cnt[0] == 1000 && cnt[1] == 1000 && cnt[2] == 1000 && cnt[3] == 1000,
	   "root model: quantile boundaries split a sample evenly (%u %u %u %u)", cnt[0], cnt[1],
	   cnt[2], cnt[3]);
	orm_free(m);

	/* One distinct key, many shards: still strictly ascending. */
	uint64_t one[3] = { UINT64_MAX, UINT64_MAX, UINT64_MAX };
	ok(orm_from_sample(one, 3, one, 8, &m) == 0 && m->lo[7] == UINT64_MAX &&
		   m->lo[6] == UINT64_MAX - 1,
	   "root model: a sample at the top of the key space still gives valid boundaries");
	orm_free(m);

	m = orm_bootstrap(3);
	uint64_t a, b;
	orm_range(m, 0, &a, &b);
	int boot_ok = a == 0 && b == UINT64_MAX && orm_route(m, UINT64_MAX) == 0;
	orm_range(m, 2, &a, &b);
	ok(boot_ok && a > b, "root model: bootstrap routes everything to shard 0");
	orm_free(m);
}

static void test_layout_codec(void)
{
	uint64_t lo[3] = { 0, 100, 1ull << 60 }, got[3];
	uint8_t buf[64];
	unsigned n = 0;
	const char *why = NULL;
	olayout_encode(lo, 3, buf);
	ok(olayout_decode(buf, olayout_size(3), 3, got, &n, &why) == 0 && n == 3 &&
		   got[2] == lo[2],
	   "layout: round trip");
	buf[10] ^= 1;
	ok(olayout_decode(buf, olayout_size(3), 3, got, &n, &why) != 0 && strstr(why, "checksum"),
	   "layout: a flipped bit fails the checksum (%s)", why ? why : "");
	ok(olayout_decode(buf, olayout_size(3) - 1, 3, got, &n, &why) != 0,
	   "layout: a truncated record is refused");
	uint8_t f[OLAYOUT_FORMAT_LEN];
	olayout_format_encode(f);
	ok(olayout_format_check(f, sizeof(f)) == 0, "format record: ours");
	f[8] = 99;
	ok(olayout_format_check(f, sizeof(f)) == 99, "format record: another version is named");
}

/* A new, empty database of `shards` shards at a fresh path (written to
 * path); bails out if it cannot be opened. */
static omen_db *open_new(char *path, size_t cap, unsigned shards)
{
	new_path(path, cap);
	omen_options o;
	omen_options_init(&o);
	o.shards = shards;
	omen_db *db;
	if (omen_open(path, &o, &db) != OMEN_OK)
		bail_out("open %s: %s", path, omen_errmsg());
	return db;
}

/* ----------------------------------------------------------- bootstrap */

static void test_bootstrap(void)
{
	char path[4096];
	omen_db *db = open_new(path, sizeof(path), 4);
	/* A few synchronous puts first (bootstrap: all in shard 0), then
	 * device keys through ingest. */
	unsigned char v[64];
	int rc = 0;
	for (uint64_t i = 0; i < 100 && !rc; i++) {
		uint64_t k = (i % 10) << 44 | (1700000000000ull + i);
		rc = omen_put(db, k, v, value_of(k, v));
	}
	omen_shard_stats ss;
	omen_get_shard_stats(db, 1, &ss);
	ok(rc == 0 && ss.lo > ss.hi, "bootstrap: 100 puts leave the boundaries unset");
	const unsigned devices = 64, per = 400;
	for (uint64_t t = 0; t < per && !rc; t++)
		for (uint64_t d = 0; d < devices && !rc; d++) {
			uint64_t k = d << 44 | (1700000000000ull + 1000 + t);
			rc = omen_ingest(db, k, v, value_of(k, v));
		}
	ok(rc == 0 && omen_flush(db) == 0, "bootstrap: ingest %u device keys", devices * per);
	uint64_t total = 0, most = 0, prev_hi = 0;
	int ranges_ok = 1;
	for (unsigned s = 0; s < 4; s++) {
		omen_get_shard_stats(db, s, &ss);
		total += ss.keys;
		most = ss.keys > most ? ss.keys : most;
		if ((s == 0 && ss.lo != 0) || (s > 0 && ss.lo != prev_hi + 1) || ss.lo > ss.hi)
			ranges_ok = 0;
		prev_hi = ss.hi;
		diag("shard %u [%#llx, %#llx] %llu keys", s, (unsigned long long)ss.lo,
		     (unsigned long long)ss.hi, (unsigned long long)ss.keys);
	}
	ok(ranges_ok && prev_hi == UINT64_MAX, "bootstrap: boundaries set, ranges cover the key space");
	ok(total == 100 + devices * per, "bootstrap: every key counted once (%llu)",
	   (unsigned long long)total);
	/* Boundaries came from the data: no shard holds more than twice its
	 * share (an even split of 2^64 would put everything in shard 0). */
	ok(most <= 2 * total / 4, "bootstrap: largest shard %llu of %llu keys",
	   (unsigned long long)most, (unsigned long long)total);
	int bad = 0;
	for (uint64_t i = 0; i < 100; i++) {
		uint64_t k = (i % 10) << 44 | (1700000000000ull + i);
		size_t len;
		if (omen_get(db, k, v, sizeof(v), &len) != OMEN_OK || !value_ok(k, v, len))
			bad++;
	}
	ok(!bad, "bootstrap: keys written before the boundaries moved are all readable");
	ok(omen_close(db) == OMEN_OK, "bootstrap: close");
	ok(omen_open(path, NULL, &db) == OMEN_OK, "bootstrap: reopen");
	omen_stats st;
	omen_get_stats(db, &st);
	omen_shard_stats s2;
	omen_get_shard_stats(db, 2, &s2);
	ok(st.keys == total && st.shards == 4 && s2.lo <= s2.hi,
	   "bootstrap: the layout and every key survive a reopen");
	omen_close(db);
}

/* ------------------------------------------------------ non-resident */

/* A new database of `shards` shards at a fresh path (written to path),
 * holding keys i * step for i < n with value_of's values, written in one
 * omen_write. */
static omen_db *open_loaded(char *path, size_t cap, unsigned shards, uint64_t n, uint64_t step)
{
	omen_db *db = open_new(path, cap, shards);
	omen_batch *b = omen_batch_new();
	unsigned char v[64];
	for (uint64_t i = 0; i < n; i++)
		omen_batch_put(b, i * step, v, value_of(i * step, v));
	if (omen_write(db, b) != OMEN_OK)
		bail_out("load %llu keys into %s: %s", (unsigned long long)n, path, omen_errmsg());
	omen_batch_free(b);
	return db;
}

static void test_nonresident(void)
{
	char path[4096];
	const uint64_t n = 20000;
	omen_db *db = open_loaded(path, sizeof(path), 2, n, 7919);
	unsigned char v[64];
	ok(odb_test_evict_all(db) == OMEN_OK, "non-resident: evict every value");
	omen_stats st;
	omen_get_stats(db, &st);
	ok(st.value_bytes == 0 && st.keys == n, "non-resident: no value bytes left, keys kept");
	int bad = 0;
	for (uint64_t i = 0; i < n && bad < 5; i++) {
		uint64_t k = i * 7919;
		size_t len = 0;
		if (omen_get(db, k, v, sizeof(v), &len) != OMEN_OK || !value_ok(k, v, len)) {
			diag("get %llu from storage failed", (unsigned long long)k);
			bad++;
		}
	}
	ok(!bad, "non-resident: every value read back from the column family");
	size_t len = 0;
	ok(omen_get(db, 7919 * 5, NULL, 0, &len) == OMEN_ERANGE && len == value_of(7919 * 5, v),
	   "non-resident: size query");
	ok(omen_get(db, 1, v, sizeof(v), &len) == OMEN_ENOTFOUND,
	   "non-resident: a missing key is still not found");
	/* Overwrite one, delete another. */
	ok(omen_put(db, 7919 * 3, "new", 3) == OMEN_OK && omen_delete(db, 7919 * 4) == OMEN_OK,
	   "non-resident: overwrite and delete");
	ok(omen_get(db, 7919 * 3, v, sizeof(v), &len) == OMEN_OK && len == 3 &&
		   memcmp(v, "new", 3) == 0 &&
		   omen_get(db, 7919 * 4, v, sizeof(v), &len) == OMEN_ENOTFOUND,
	   "non-resident: the overwrite is resident, the delete gone");
	omen_iter *it;
	uint64_t k, count = 0, prev = 0;
	const void *val;
	bad = 0;
	omen_iter_open(db, 0, UINT64_MAX, &it);
	while (omen_iter_next(it, &k, &val, &len) == OMEN_OK) {
		if ((count && k <= prev) || (k != 7919 * 3 && !value_ok(k, val, len)))
			bad++;
		prev = k;
		count++;
	}
	omen_iter_close(it);
	ok(!bad && count == n - 1, "non-resident: a scan returns every value (%llu)",
	   (unsigned long long)count);
	omen_close(db);
}

/* ------------------------------------------------------- close races */

struct putter {
	omen_db *db;
	uint64_t key;
	int rc;
	int ingest;
};

static void *putter_main(void *arg)
{
	struct putter *p = arg;
	unsigned char v[64];
	size_t n = value_of(p->key, v);
	p->rc = p->ingest ? omen_ingest(p->db, p->key, v, n) : omen_put(p->db, p->key, v, n);
	return NULL;
}

static void *closer_main(void *arg)
{
	omen_db *db = arg;
	intptr_t rc = omen_close(db);
	return (void *)rc;
}

/* Per-shard stats: omen_get_stats would wait for held rebuilds. */
static void wait_queued(omen_db *db, uint64_t want)
{
	uint64_t q = 0;
	for (int i = 0; i < 20000; i++) {
		omen_shard_stats ss;
		q = 0;
		for (unsigned s = 0; omen_get_shard_stats(db, s, &ss) == OMEN_OK; s++)
			q += ss.queued;
		if (q >= want)
			return;
		usleep(500);
	}
	diag("timed out waiting for %llu queued records (%llu)", (unsigned long long)want,
	     (unsigned long long)q);
}

static void test_close_races(void)
{
	char path[4096];
	new_path(path, sizeof(path));
	omen_options o;
	omen_options_init(&o);
	o.shards = 1;
	o.queue_depth = 7; /* holds exactly 7 */
	omen_db *db;
	if (omen_open(path, &o, &db) != OMEN_OK)
		bail_out("open %s: %s", path, omen_errmsg());
	ok(odb_test_pause(db) == OMEN_OK, "close race: pause the worker");
	/* Four puts wait for acknowledgements, four ingests fill the queue,
	 * and one more ingest blocks on the full queue. */
	enum { NP = 4, NI = 3 };
	struct putter p[NP + NI + 1];
	pthread_t th[NP + NI + 1];
	for (int i = 0; i < NP + NI; i++) {
		p[i] = (struct putter){ db, 1000 + (uint64_t)i, -100, i >= NP };
		pthread_create(&th[i], NULL, putter_main, &p[i]);
	}
	wait_queued(db, NP + NI);
	p[NP + NI] = (struct putter){ db, 5000, -100, 1 };
	pthread_create(&th[NP + NI], NULL, putter_main, &p[NP + NI]);
	usleep(20000); /* let it block on the full queue */
	pthread_t closer;
	pthread_create(&closer, NULL, closer_main, db);
	while (!odb_test_closing(db))
		usleep(100);
	/* close has begun and cannot finish while the worker is paused: the
	 * handle is valid, and every new call must say ECLOSED. */
	unsigned char v[64];
	size_t len;
	omen_stats st;
	omen_iter *it;
	omen_batch *b = omen_batch_new();
	omen_batch_put(b, 7, "x", 1);
	int all = omen_put(db, 1, "x", 1) == OMEN_ECLOSED && omen_delete(db, 1) == OMEN_ECLOSED &&
		  omen_get(db, 1000, v, sizeof(v), &len) == OMEN_ECLOSED &&
		  omen_ingest(db, 2, "x", 1) == OMEN_ECLOSED && omen_write(db, b) == OMEN_ECLOSED &&
		  omen_ingest_batch(db, b) == OMEN_ECLOSED && omen_flush(db) == OMEN_ECLOSED &&
		  omen_iter_open(db, 0, 10, &it) == OMEN_ECLOSED &&
		  omen_get_stats(db, &st) == OMEN_ECLOSED && omen_close(db) == OMEN_ECLOSED;
	ok(all, "close race: every call made while close runs returns OMEN_ECLOSED");
	omen_batch_free(b);
	pthread_join(th[NP + NI], NULL);
	ok(p[NP + NI].rc == OMEN_ECLOSED, "close race: an ingest blocked on a full queue fails with ECLOSED (%d)",
	   p[NP + NI].rc);
	odb_test_release(db);
	void *crc;
	pthread_join(closer, &crc);
	ok((intptr_t)crc == OMEN_OK, "close race: close completes once the worker resumes");
	int acked = 1;
	for (int i = 0; i < NP + NI; i++) {
		pthread_join(th[i], NULL);
		acked &= p[i].rc == OMEN_OK;
	}
	ok(acked, "close race: writes queued before close are acknowledged");
	if (omen_open(path, &o, &db) != OMEN_OK)
		bail_out("reopen %s: %s", path, omen_errmsg());
	int present = 1;
	for (int i = 0; i < NP + NI; i++)
		present &= omen_get(db, p[i].key, v, sizeof(v), &len) == OMEN_OK &&
			   value_ok(p[i].key, v, len);
	ok(present, "close race: and present after reopening");
	ok(omen_get(db, 5000, v, sizeof(v), &len) == OMEN_ENOTFOUND,
	   "close race: the refused ingest was not applied");
	omen_close(db);
}

/* ------------------------------------------------------ bad metadata */

/* --------------------------------------------------- background rebuild */

/* Scan [lo, hi] and check order and values (but of keys 5 and skip);
 * *count gets the keys seen. */
static int scan_check(omen_db *db, uint64_t lo, uint64_t hi, uint64_t skip, uint64_t *count)
{
	omen_iter *it;
	uint64_t k, prev = 0;
	const void *val;
	size_t len;
	int bad = 0;
	*count = 0;
	if (omen_iter_open(db, lo, hi, &it) != OMEN_OK)
		return 1;
	while (omen_iter_next(it, &k, &val, &len) == OMEN_OK) {
		if ((*count && k <= prev) || k < lo || k > hi ||
		    (k != skip && k != 5 && !value_ok(k, val, len)))
			bad++;
		prev = k;
		(*count)++;
	}
	omen_iter_close(it);
	return bad;
}

static void test_background_rebuild(void)
{
	char path[4096];
	const uint64_t n = 30000, step = 104729;
	omen_db *db = open_loaded(path, sizeof(path), 3, n, step);
	unsigned char v[64];
	ok(omen_close(db) == OMEN_OK, "rebuild: close after loading %llu keys",
	   (unsigned long long)n);

	/* Reopen with every rebuild held: open returns, the shards say they
	 * are rebuilding, and every read is answered from storage. */
	atomic_store(&odb_test_hold_rebuild, 1);
	ok(omen_open(path, NULL, &db) == OMEN_OK, "rebuild: open returns while every rebuild is held");
	int building = 0;
	for (unsigned i = 0; i < 3; i++) {
		omen_shard_stats ss;
		if (omen_get_shard_stats(db, i, &ss) == OMEN_OK && ss.rebuilding && !ss.storage_only &&
		    ss.keys == 0 && ss.rebuild_us == 0)
			building++;
	}
	ok(building == 3, "rebuild: shard stats show 3 shards rebuilding (%d)", building);
	int bad = 0;
	for (uint64_t i = 0; i < n && bad < 5; i += 7) {
		uint64_t k = i * step;
		size_t len = 0;
		if (omen_get(db, k, v, sizeof(v), &len) != OMEN_OK || !value_ok(k, v, len)) {
			diag("get %llu while rebuilding failed", (unsigned long long)k);
			bad++;
		}
	}
	size_t len = 0;
	ok(!bad && omen_get(db, 1, v, sizeof(v), &len) == OMEN_ENOTFOUND &&
		   omen_get(db, step, NULL, 0, &len) == OMEN_ERANGE && len == value_of(step, v),
	   "rebuild: gets while rebuilding: present, absent and size queries from storage");
	uint64_t count;
	bad = scan_check(db, 0, UINT64_MAX, UINT64_MAX, &count);
	ok(!bad && count == n, "rebuild: a full scan while rebuilding returns every key in order (%llu)",
	   (unsigned long long)count);
	bad = scan_check(db, 100 * step + 1, 20000 * step, UINT64_MAX, &count);
	ok(!bad && count == 19900, "rebuild: a range scan across shards while rebuilding (%llu)",
	   (unsigned long long)count);
	/* Writes queue until the rebuild: an ingest returns, its flush waits. */
	ok(omen_ingest(db, 3 * step, "new", 3) == OMEN_OK && omen_ingest(db, 5, "five", 4) == OMEN_OK,
	   "rebuild: ingests queue while rebuilding");
	omen_stats st;
	omen_shard_stats s0;
	omen_get_shard_stats(db, 0, &s0);
	ok(s0.rebuilding && omen_get(db, 5, v, sizeof(v), &len) == OMEN_ENOTFOUND,
	   "rebuild: nothing queued is applied before the rebuild");
	odb_test_release_rebuild();
	ok(omen_flush(db) == OMEN_OK, "rebuild: flush returns once the rebuilds are done");
	memset(&st, 0, sizeof(st));
	int src = omen_get_stats(db, &st);
	ok(src == OMEN_OK && st.keys == n + 1 && st.storage_only == 0 && st.rebuild_us > 0 &&
		   st.open_us <= st.rebuild_us,
	   "rebuild: stats wait for the rebuilds: %llu keys, open %llu us, rebuilt at %llu us, "
	   "%u storage-only",
	   (unsigned long long)st.keys, (unsigned long long)st.open_us,
	   (unsigned long long)st.rebuild_us, st.storage_only);
	ok(omen_get(db, 3 * step, v, sizeof(v), &len) == OMEN_OK && len == 3 &&
		   omen_get(db, 5, v, sizeof(v), &len) == OMEN_OK && len == 4,
	   "rebuild: the queued writes are applied after the rebuild");
	bad = scan_check(db, 0, UINT64_MAX, 3 * step, &count);
	ok(!bad && count == n + 1, "rebuild: a full scan from the trees (%llu, %d bad)",
	   (unsigned long long)count, bad);
	ok(omen_close(db) == OMEN_OK, "rebuild: close");

	/* Close stops a held rebuild: a put waiting for it is committed
	 * (storage only) and acknowledged, and the next open has it. */
	atomic_store(&odb_test_hold_rebuild, 1);
	ok(omen_open(path, NULL, &db) == OMEN_OK, "rebuild: open with the rebuilds held again");
	struct putter p = { db, 7, -100, 0 };
	pthread_t th;
	pthread_create(&th, NULL, putter_main, &p);
	wait_queued(db, 1);
	ok(omen_close(db) == OMEN_OK, "rebuild: close stops held rebuilds");
	pthread_join(th, NULL);
	ok(p.rc == OMEN_OK, "rebuild: a put queued behind the stopped rebuild is acknowledged (%d)", p.rc);
	atomic_store(&odb_test_hold_rebuild, 0);
	memset(&st, 0, sizeof(st));
	src = omen_open(path, NULL, &db) == OMEN_OK ? omen_get_stats(db, &st) : -1;
	ok(src == OMEN_OK && st.keys == n + 2,
	   "rebuild: reopened after a stopped rebuild, every key is there (%llu)",
	   (unsigned long long)st.keys);
	ok(omen_get(db, 7, v, sizeof(v), &len) == OMEN_OK && value_ok(7, v, len),
	   "rebuild: with the put made during the stopped rebuild");
	bad = scan_check(db, 0, UINT64_MAX, 3 * step, &count);
	ok(!bad && count == n + 2, "rebuild: and in order with their values (%llu, %d bad)",
	   (unsigned long long)count, bad);
	omen_close(db);
}

/* ---------------------------------------------------------- rebalance */

struct stable_reader {
	omen_db *db;
	const uint64_t *keys;
	size_t n;
	atomic_int *stop;
	uint64_t gets, bad;
};

/* Reads a stable key set (written before, never changed) until told to
 * stop: every get must find its key with its value, during every move. */
static void *stable_reader_main(void *arg)
{
	struct stable_reader *r = arg;
	unsigned char v[64];
	size_t len;
	uint64_t i = 0;
	while (!atomic_load(r->stop)) {
		uint64_t k = r->keys[i++ % r->n];
		if (omen_get(r->db, k, v, sizeof(v), &len) != OMEN_OK || !value_ok(k, v, len))
			r->bad++;
		r->gets++;
	}
	return NULL;
}

/* Largest shard over the mean; polls (the last move may still run after
 * the flush) for up to 20 s. */
static double settled_imbalance(omen_db *db, unsigned nshards, uint64_t *moves)
{
	double worst = 0;
	for (int tries = 0; tries < 200; tries++) {
		uint64_t total = 0, max = 0;
		for (unsigned s = 0; s < nshards; s++) {
			omen_shard_stats ss;
			omen_get_shard_stats(db, s, &ss);
			total += ss.keys;
			if (ss.keys > max)
				max = ss.keys;
		}
		worst = total ? (double)max / ((double)total / nshards) : 0;
		if (worst <= 1.5)
			break;
		usleep(100000);
	}
	omen_stats st;
	omen_get_stats(db, &st);
	*moves = st.moves;
	if (worst > 1.5)
		for (unsigned s = 0; s < nshards; s++) {
			omen_shard_stats ss;
			omen_get_shard_stats(db, s, &ss);
			diag("shard %u [%#llx, %#llx] %llu keys", s, (unsigned long long)ss.lo,
			     (unsigned long long)ss.hi, (unsigned long long)ss.keys);
		}
	return worst;
}

static void rebalance_case(const char *name, uint64_t (*key_of)(uint64_t), uint64_t n)
{
	char path[4096];
	omen_db *db = open_new(path, sizeof(path), 4);
	/* The first keys are a stable set (the bootstrap takes the first
	 * boundaries from them), read all along by another thread while the
	 * rest arrive, in ascending order: every later key lands in the last
	 * shard, and only moves can even them out. */
	enum { NSTABLE = 8192 };
	uint64_t *stable = malloc(NSTABLE * sizeof(uint64_t));
	unsigned char v[64];
	for (uint64_t i = 0; i < NSTABLE; i++) {
		stable[i] = key_of(i);
		omen_ingest(db, stable[i], v, value_of(stable[i], v));
	}
	omen_flush(db);
	atomic_int stop = 0;
	struct stable_reader r = { db, stable, NSTABLE, &stop, 0, 0 };
	pthread_t th;
	pthread_create(&th, NULL, stable_reader_main, &r);
	uint64_t written = NSTABLE;
	for (uint64_t i = NSTABLE; i < n; i++) {
		uint64_t k = key_of(i);
		omen_ingest(db, k, v, value_of(k, v));
		written++;
	}
	ok(omen_flush(db) == OMEN_OK, "rebalance %s: ingest %llu keys in ascending order", name,
	   (unsigned long long)written);
	uint64_t moves;
	double worst = settled_imbalance(db, 4, &moves);
	atomic_store(&stop, 1);
	pthread_join(th, NULL);
	ok(worst <= 1.5 && moves > 0, "rebalance %s: largest shard %.2fx the mean after %llu moves",
	   name, worst, (unsigned long long)moves);
	ok(r.bad == 0 && r.gets > 0, "rebalance %s: %llu gets of a stable key set during the moves, "
	   "%llu wrong", name, (unsigned long long)r.gets, (unsigned long long)r.bad);
	omen_verify_report vr;
	int rc = omen_verify(db, &vr);
	ok(rc == OMEN_OK && vr.keys == written, "rebalance %s: omen_verify: %llu keys (%s)", name,
	   (unsigned long long)vr.keys, rc ? omen_errmsg() : "ok");
	ok(omen_close(db) == OMEN_OK, "rebalance %s: close", name);
	/* Reopen: the moved layout, every key once. */
	if (omen_open(path, NULL, &db) != OMEN_OK)
		bail_out("reopen %s: %s", path, omen_errmsg());
	rc = omen_verify(db, &vr);
	uint64_t count;
	int bad = scan_check(db, 0, UINT64_MAX, UINT64_MAX, &count);
	ok(rc == OMEN_OK && vr.keys == written && !bad && count == written,
	   "rebalance %s: reopened, every key once in order (%llu)", name, (unsigned long long)count);
	omen_close(db);
	free(stable);
}

static uint64_t ts_key(uint64_t i)
{
	return 1700000000000ull + i * 10;
}

/* 64 devices loaded one after another (a backfill), each in time order:
 * the first boundaries come from the first devices' keys. */
static uint64_t device_key(uint64_t i)
{
	return (i / 3125 + 1) << 44 | (1700000000000ull + i % 3125);
}

static void test_rebalance(void)
{
	rebalance_case("timestamps", ts_key, 200000);
	rebalance_case("device<<44|ts", device_key, 200000);
}

/* ------------------------------------------------------------- verify */

static void test_verify(void)
{
	char path[4096];
	const uint64_t n = 10000;
	omen_db *db = open_loaded(path, sizeof(path), 2, n, 1000003);
	omen_verify_report r;
	int rc = omen_verify(db, &r);
	ok(rc == OMEN_OK && r.keys == n && r.problems == 0,
	   "verify: a sound database: %llu keys, %llu problems (%s)", (unsigned long long)r.keys,
	   (unsigned long long)r.problems, rc ? omen_errmsg() : "ok");
	ok(odb_test_evict_all(db) == OMEN_OK && omen_verify(db, &r) == OMEN_OK && r.keys == n,
	   "verify: with every value non-resident");
	ok(omen_close(db) == OMEN_OK, "verify: close");

	/* Damage behind the engine's back, then reopen: a key stored in the
	 * wrong shard's family. */
	ostore *st;
	if (ostore_open(path, 0, 0, false, &st) != OMEN_OK)
		bail_out("ostore_open: %s", omen_errmsg());
	ostore_batch *wb = ostore_batch_new(st);
	ostore_batch_put(wb, 1, 5, "stray", 5); /* key 5 belongs to shard 0 */
	ok(ostore_write(st, wb, true) == OMEN_OK, "verify: store a key in the wrong family");
	ostore_batch_free(wb);
	ostore_close(st);
	ok(omen_open(path, NULL, &db) == OMEN_OK, "verify: reopen");
	rc = omen_verify(db, &r);
	ok(rc == OMEN_ECORRUPT && r.problems == 1 && strstr(omen_errmsg(), "outside") &&
		   strstr(omen_errmsg(), "shard 1"),
	   "verify: the stray key is found: %s", omen_errmsg());
	omen_close(db);
}

static void test_bad_metadata(void)
{
	char path[4096];
	omen_db *db = open_new(path, sizeof(path), 2);
	for (uint64_t k = 0; k < 5000; k++)
		omen_ingest(db, k * 1000003, "v", 1);
	omen_flush(db);
	omen_close(db);

	/* A future format version. */
	ostore *st;
	uint8_t f[OLAYOUT_FORMAT_LEN];
	if (ostore_open(path, 0, 0, false, &st) != OMEN_OK)
		bail_out("ostore_open: %s", omen_errmsg());
	olayout_format_encode(f);
	f[8] = 7;
	ostore_meta_put(st, OLAYOUT_FORMAT_KEY, f, sizeof(f), true);
	ostore_close(st);
	int rc = omen_open(path, NULL, &db);
	ok(rc == OMEN_ECORRUPT && db == NULL && strstr(omen_errmsg(), "version 7"),
	   "metadata: a newer format version is refused (%s)", omen_errmsg());

	/* Restore the format, damage the layout's checksum. */
	ostore_open(path, 0, 0, false, &st);
	olayout_format_encode(f);
	ostore_meta_put(st, OLAYOUT_FORMAT_KEY, f, sizeof(f), true);
	uint8_t lb[64];
	size_t llen;
	ostore_meta_get(st, OLAYOUT_KEY, lb, sizeof(lb), &llen);
	lb[9] ^= 0x40;
	ostore_meta_put(st, OLAYOUT_KEY, lb, llen, true);
	ostore_close(st);
	rc = omen_open(path, NULL, &db);
	ok(rc == OMEN_ECORRUPT && strstr(omen_errmsg(), "checksum"),
	   "metadata: a damaged layout record is refused (%s)", omen_errmsg());

	/* Repaired, it opens again with every key. */
	ostore_open(path, 0, 0, false, &st);
	lb[9] ^= 0x40;
	ostore_meta_put(st, OLAYOUT_KEY, lb, llen, true);
	ostore_close(st);
	omen_stats s;
	ok(omen_open(path, NULL, &db) == OMEN_OK && omen_get_stats(db, &s) == OMEN_OK &&
		   s.keys == 5000,
	   "metadata: the repaired database opens with its keys");
	omen_close(db);
}

int main(void)
{
	rng_state = test_seed_from_env(20261121);
	root = mkdtemp(tmpl);
	if (!root)
		bail_out("mkdtemp: %s", strerror(errno));
	plan_no_plan();
	test_root_model();
	test_layout_codec();
	test_bootstrap();
	test_nonresident();
	test_background_rebuild();
	test_verify();
	test_rebalance();
	test_close_races();
	test_bad_metadata();
	rm_rf(root);
	return done_testing();
}
