/*
 * tests/test_store.c — white-box tests of the storage layer (shard/store.h)
 * on real RocksDB databases in a temporary directory under $TMPDIR.
 *
 * Covered: open/create/reopen and persistence; big-endian key order seen
 * through the iterator; an atomic multi-family batch; delete and inclusive
 * delete_range (up to UINT64_MAX); get with a too-small buffer; every open
 * error (missing, not a directory, not a database, already open, wrong
 * shard count); checkpoints; and shard workers writing their own families
 * from several threads at once while others read (for TSan).
 */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "omendb.h"
#include "shard/store.h"
#ifdef OMEN_TSAN
#include "core/rcu.h"
/* The TSan suppressions for RocksDB live in core/rcu.c, which this test
 * would not otherwise pull out of libomencore.a: refer to it. */
__attribute__((used)) static char *const tsan_hook_keep = &orcu_tsan_token;
#endif
#include "tests/lib/tap.h"

static char base[4096];

static void path_of(char *buf, size_t cap, const char *name)
{
	snprintf(buf, cap, "%s/%s", base, name);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void rm_tree(const char *p)
{
	nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_file(const char *p, const char *text)
{
	FILE *f = fopen(p, "w");

	if (!f)
		bail_out("cannot create %s: %s", p, strerror(errno));
	fputs(text, f);
	fclose(f);
}

/* Entries in directory p besides . and .. */
static int count_entries(const char *p)
{
	char cmd[4200];
	FILE *f;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", p);
	f = popen(cmd, "r");
	if (f) {
		if (fscanf(f, "%d", &n) != 1)
			n = -1;
		pclose(f);
	}
	return n;
}

/* The value we store for key k in shard s: deterministic, k-dependent
 * length (0 included) so empty values are exercised too. */
static size_t make_val(unsigned s, uint64_t k, char *buf)
{
	size_t len = (size_t)(k % 37);

	for (size_t i = 0; i < len; i++)
		buf[i] = (char)('a' + (k + s + i) % 26);
	return len;
}

static bool has_val(ostore *st, unsigned s, uint64_t k)
{
	char want[64], got[64];
	size_t wl = make_val(s, k, want), gl = 0;

	return ostore_get(st, s, k, got, sizeof(got), &gl) == OMEN_OK && gl == wl &&
	       memcmp(got, want, wl) == 0;
}

static const uint64_t order_keys[] = {
	0, 1, 255, 256, UINT64_C(1) << 63, UINT64_MAX,
};
#define NORDER (sizeof(order_keys) / sizeof(order_keys[0]))

static void test_open_errors(void)
{
	char p[4200], q[4200];
	ostore *st = (ostore *)&st;

	path_of(p, sizeof(p), "missing");
	is_int(ostore_open(p, 2, 0, false, &st), OMEN_ENOTFOUND, "missing dir, no create: ENOTFOUND");
	ok(st == NULL, "  *out is NULL on failure");
	ok(access(p, F_OK) != 0, "  and nothing was created");
	diag("  message: %s", omen_errmsg());

	path_of(p, sizeof(p), "a-file");
	write_file(p, "x");
	is_int(ostore_open(p, 2, 0, true, &st), OMEN_EINVAL, "a file: EINVAL");

	path_of(p, sizeof(p), "empty");
	mkdir(p, 0700);
	is_int(ostore_open(p, 2, 0, false, &st), OMEN_ENOTFOUND, "empty dir, no create: ENOTFOUND");
	is_int(count_entries(p), 0, "  and it stays empty");

	/* Not a database: refused before RocksDB may write into it, so this
	 * is our check, and it says ECORRUPT ("not an OmenDB database"). */
	path_of(p, sizeof(p), "junk");
	mkdir(p, 0700);
	path_of(q, sizeof(q), "junk/data.txt");
	write_file(q, "hello\n");
	is_int(ostore_open(p, 2, 0, true, &st), OMEN_ECORRUPT,
	       "non-empty dir without a database: ECORRUPT");
	is_int(count_entries(p), 1, "  and it is left untouched");
	diag("  message: %s", omen_errmsg());

	/* A damaged database: CURRENT does not name a MANIFEST.  RocksDB
	 * reports "Corruption: CURRENT file does not end with newline". */
	path_of(p, sizeof(p), "badcurrent");
	mkdir(p, 0700);
	path_of(q, sizeof(q), "badcurrent/CURRENT");
	write_file(q, "garbage");
	is_int(ostore_open(p, 2, 0, true, &st), OMEN_ECORRUPT, "garbage CURRENT: ECORRUPT");
	is_int(count_entries(p), 1, "  and it is left untouched");
	diag("  message: %s", omen_errmsg());

	path_of(p, sizeof(p), "zero");
	is_int(ostore_open(p, 0, 0, true, &st), OMEN_EINVAL, "new database with 0 shards: EINVAL");
	is_int(ostore_open(NULL, 1, 0, true, &st), OMEN_EINVAL, "NULL path: EINVAL");
}

static void test_basic(void)
{
	char p[4200], buf[64];
	ostore *st = NULL, *st2 = (ostore *)&st2;
	ostore_batch *b;
	ostore_iter *it;
	size_t len = 0;
	int rc;

	path_of(p, sizeof(p), "db");
	rc = ostore_open(p, 4, 1 << 20, true, &st);
	if (!is_int(rc, OMEN_OK, "create a 4-shard database"))
		bail_out("open: %s", omen_errmsg());
	is_int(ostore_nshards(st), 4, "  nshards");

	/* Insert the order keys out of order, in shard 0. */
	b = ostore_batch_new(st);
	ok(b != NULL, "batch_new");
	for (size_t i = NORDER; i-- > 0;) {
		size_t vl = make_val(0, order_keys[(i * 5) % NORDER], buf);
		ostore_batch_put(b, 0, order_keys[(i * 5) % NORDER], buf, vl);
	}
	is_int(ostore_batch_count(b), NORDER, "  batch count");
	is_int(ostore_write(st, b, false), OMEN_OK, "write unsynced");

	rc = ostore_iter_new(st, 0, &it);
	is_int(rc, OMEN_OK, "iter_new");
	{
		size_t n = 0;
		bool inorder = true;

		for (ostore_iter_seek_first(it); ostore_iter_valid(it); ostore_iter_next(it), n++) {
			size_t vl;
			const void *v = ostore_iter_value(it, &vl);
			char want[64];

			if (n >= NORDER || ostore_iter_key(it) != order_keys[n] ||
			    vl != make_val(0, order_keys[n], want) || memcmp(v, want, vl) != 0)
				inorder = false;
		}
		is_int(n, NORDER, "iterator returns every key");
		ok(inorder, "  ascending numeric order: 0, 1, 255, 256, 2^63, UINT64_MAX");
		is_int(ostore_iter_status(it), OMEN_OK, "  status OK at the end");
		ostore_iter_seek(it, 257);
		ok(ostore_iter_valid(it) && ostore_iter_key(it) == UINT64_C(1) << 63,
		   "  seek(257) lands on 2^63");
		ostore_iter_free(it);
	}

	/* get: sizes. key 255: 255 % 37 = 33 bytes. */
	len = 0;
	is_int(ostore_get(st, 0, 255, buf, 10, &len), OMEN_ERANGE, "get into a 10-byte buffer: ERANGE");
	is_int(len, 33, "  *len holds the needed size");
	len = 0;
	is_int(ostore_get(st, 0, 255, NULL, 0, &len), OMEN_ERANGE, "get with cap 0: ERANGE");
	is_int(len, 33, "  *len holds the needed size");
	ok(has_val(st, 0, 255), "get with room: the value");
	is_int(ostore_get(st, 0, 0, NULL, 0, &len), OMEN_OK, "empty value with cap 0: OK");
	is_int(len, 0, "  length 0");
	is_int(ostore_get(st, 0, 2, buf, sizeof(buf), &len), OMEN_ENOTFOUND, "absent key: ENOTFOUND");
	is_int(ostore_get(st, 1, 255, buf, sizeof(buf), &len), OMEN_ENOTFOUND,
	       "  families are separate: ENOTFOUND in shard 1");
	is_int(ostore_get(st, 4, 0, buf, sizeof(buf), &len), OMEN_EINVAL, "shard 4 of 4: EINVAL");
	is_int(ostore_batch_put(b, 4, 0, "x", 1), OMEN_EINVAL, "batch_put to shard 4: EINVAL");

	/* Multi-family batch, then reopen. */
	ostore_batch_clear(b);
	is_int(ostore_batch_count(b), 0, "batch_clear empties it");
	for (unsigned s = 0; s < 4; s++)
		for (uint64_t k = 1000; k < 1100; k++) {
			size_t vl = make_val(s, k, buf);
			ostore_batch_put(b, s, k, buf, vl);
		}
	ostore_batch_meta_put(b, "layout", "v1-layout", 9);
	is_int(ostore_write(st, b, true), OMEN_OK, "a batch over 4 shards and meta (sync)");
	is_int(ostore_meta_put(st, "format", "1", 1, false), OMEN_OK, "meta_put");

	/* Second open of the same directory. */
	is_int(ostore_open(p, 0, 0, true, &st2), OMEN_EBUSY, "second open of the same dir: EBUSY");
	ok(st2 == NULL, "  *out is NULL");
	diag("  message: %s", omen_errmsg());
	is_int(ostore_meta_put(st, "busy-check", "ok", 2, false), OMEN_OK,
	       "  the first handle still writes");
	len = 0;
	is_int(ostore_meta_get(st, "busy-check", buf, sizeof(buf), &len), OMEN_OK,
	       "  and reads");

	/* From another process: RocksDB's other message ("While lock file"). */
	{
		pid_t pid = fork();
		int status = -1;

		if (pid == 0) {
			execl("/proc/self/exe", "test_store", "--try-open", p, (char *)NULL);
			_exit(100);
		}
		if (pid > 0)
			waitpid(pid, &status, 0);
		ok(pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == -OMEN_EBUSY,
		   "open from another process: EBUSY (child exit %d)",
		   WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	}

	ostore_batch_free(b);
	ostore_close(st);
	st = NULL;

	is_int(ostore_open(p, 3, 0, false, &st), OMEN_EINVAL, "reopen asking 3 shards of 4: EINVAL");
	rc = ostore_open(p, 0, 0, false, &st);
	if (!is_int(rc, OMEN_OK, "reopen (nshards 0: as on disk)"))
		bail_out("reopen: %s", omen_errmsg());
	is_int(ostore_nshards(st), 4, "  4 shards");
	{
		bool all = true;

		for (unsigned s = 0; s < 4; s++)
			for (uint64_t k = 1000; k < 1100; k++)
				all = all && has_val(st, s, k);
		for (size_t i = 0; i < NORDER; i++)
			all = all && has_val(st, 0, order_keys[i]);
		ok(all, "  every record of the batch, and the unsynced ones, are back");
	}
	len = 0;
	ok(ostore_meta_get(st, "layout", buf, sizeof(buf), &len) == OMEN_OK && len == 9 &&
	   memcmp(buf, "v1-layout", 9) == 0, "  meta record from the batch");
	ok(ostore_meta_get(st, "format", buf, sizeof(buf), &len) == OMEN_OK && len == 1 &&
	   buf[0] == '1', "  meta record from meta_put");
	is_int(ostore_meta_get(st, "nope", buf, sizeof(buf), &len), OMEN_ENOTFOUND,
	       "  absent meta record: ENOTFOUND");
	ostore_close(st);
}

/* Keys of shard 1 after test_delete, ascending. */
static uint64_t after_delete[128];
static size_t nafter;

static void test_delete(void)
{
	char p[4200], buf[64];
	ostore *st = NULL;
	ostore_batch *b;
	ostore_iter *it;
	size_t n = 0;
	bool match = true;

	path_of(p, sizeof(p), "db");
	if (ostore_open(p, 0, 0, false, &st) != OMEN_OK)
		bail_out("reopen: %s", omen_errmsg());
	b = ostore_batch_new(st);
	for (uint64_t k = 10; k <= 20; k++)
		ostore_batch_put(b, 1, k, buf, make_val(1, k, buf));
	for (uint64_t k = UINT64_MAX - 3; k != 0; k++) /* up to UINT64_MAX */
		ostore_batch_put(b, 1, k, buf, make_val(1, k, buf));
	is_int(ostore_write(st, b, false), OMEN_OK, "put 10..20 and MAX-3..MAX in shard 1");
	ostore_batch_clear(b);
	is_int(ostore_batch_delete(b, 1, 15), OMEN_OK, "delete 15");
	is_int(ostore_batch_delete(b, 1, 99), OMEN_OK, "delete an absent key");
	is_int(ostore_batch_delete_range(b, 1, 12, 14), OMEN_OK, "delete_range [12, 14]");
	is_int(ostore_batch_delete_range(b, 1, UINT64_MAX - 1, UINT64_MAX), OMEN_OK,
	       "delete_range [MAX-1, MAX]");
	is_int(ostore_batch_delete_range(b, 1, 5, 4), OMEN_EINVAL, "delete_range lo > hi: EINVAL");
	is_int(ostore_write(st, b, false), OMEN_OK, "  written");
	ostore_batch_free(b);

	nafter = 0;
	for (uint64_t k = 10; k <= 20; k++)
		if (k != 15 && (k < 12 || k > 14))
			after_delete[nafter++] = k;
	for (uint64_t k = 1000; k < 1100; k++) /* from test_basic's batch */
		after_delete[nafter++] = k;
	after_delete[nafter++] = UINT64_MAX - 3;
	after_delete[nafter++] = UINT64_MAX - 2;

	ostore_iter_new(st, 1, &it);
	for (ostore_iter_seek(it, 0); ostore_iter_valid(it); ostore_iter_next(it), n++)
		if (n >= nafter || ostore_iter_key(it) != after_delete[n])
			match = false;
	is_int(n, nafter, "shard 1 holds the expected number of keys");
	ok(match, "  exactly 10, 11, 16..20, 1000..1099, MAX-3, MAX-2 (ranges inclusive)");
	ostore_iter_free(it);
	is_int(ostore_get(st, 1, 11, buf, sizeof(buf), &n), OMEN_OK, "  11 kept (below the range)");
	is_int(ostore_get(st, 1, 12, buf, sizeof(buf), &n), OMEN_ENOTFOUND, "  12 gone");
	is_int(ostore_get(st, 1, 14, buf, sizeof(buf), &n), OMEN_ENOTFOUND, "  14 gone (inclusive)");
	is_int(ostore_get(st, 1, UINT64_MAX, buf, sizeof(buf), &n), OMEN_ENOTFOUND, "  MAX gone");
	ostore_close(st);
}

/* Every record of every shard family, and the meta records, equal in a and b. */
static bool same_contents(ostore *a, ostore *b)
{
	if (ostore_nshards(a) != ostore_nshards(b))
		return false;
	for (unsigned s = 0; s < ostore_nshards(a); s++) {
		ostore_iter *ia, *ib;
		bool same = true;

		if (ostore_iter_new(a, s, &ia) != OMEN_OK || ostore_iter_new(b, s, &ib) != OMEN_OK)
			return false;
		ostore_iter_seek_first(ia);
		ostore_iter_seek_first(ib);
		while (same && ostore_iter_valid(ia) && ostore_iter_valid(ib)) {
			size_t la, lb;
			const void *va = ostore_iter_value(ia, &la);
			const void *vb = ostore_iter_value(ib, &lb);

			same = ostore_iter_key(ia) == ostore_iter_key(ib) && la == lb &&
			       memcmp(va, vb, la) == 0;
			ostore_iter_next(ia);
			ostore_iter_next(ib);
		}
		same = same && !ostore_iter_valid(ia) && !ostore_iter_valid(ib) &&
		       ostore_iter_status(ia) == OMEN_OK && ostore_iter_status(ib) == OMEN_OK;
		ostore_iter_free(ia);
		ostore_iter_free(ib);
		if (!same)
			return false;
	}
	return true;
}

static void test_checkpoint(void)
{
	char p[4200], c[4200], buf[64];
	ostore *st = NULL, *cp = NULL;
	size_t len;

	path_of(p, sizeof(p), "db");
	path_of(c, sizeof(c), "checkpoint");
	if (ostore_open(p, 0, 0, false, &st) != OMEN_OK)
		bail_out("reopen: %s", omen_errmsg());
	/* An unsynced write just before: still in the memtable and the WAL. */
	ostore_meta_put(st, "last", "yes", 3, false);
	is_int(ostore_checkpoint(st, c), OMEN_OK, "checkpoint into a new directory");
	is_int(ostore_checkpoint(st, c), OMEN_EINVAL, "checkpoint into an existing one: EINVAL");
	is_int(ostore_open(c, 0, 0, false, &cp), OMEN_OK, "the checkpoint opens as a database");
	if (cp) {
		ok(same_contents(st, cp), "  with the same records in every shard");
		ok(ostore_meta_get(cp, "last", buf, sizeof(buf), &len) == OMEN_OK && len == 3,
		   "  and the last meta write");
		ok(has_val(cp, 0, 255) && has_val(cp, 3, 1099), "  spot checks");
		ostore_close(cp);
	} else {
		skip(3, "checkpoint did not open");
	}
	ostore_close(st);
}

/* ------------------------------------------------- threads (TSan food) */

#define TH_KEYS 2000
#define TH_BATCH 100

struct worker {
	ostore *st;
	unsigned shard;
	int rc;
	pthread_t tid;
};

/* A shard worker: its own batch, its own family. */
static void *writer(void *arg)
{
	struct worker *w = arg;
	ostore_batch *b = ostore_batch_new(w->st);
	char buf[64];

	w->rc = b ? OMEN_OK : OMEN_ENOMEM;
	for (uint64_t k = 0; k < TH_KEYS && w->rc == OMEN_OK; k++) {
		ostore_batch_put(b, w->shard, k * 7919, buf, make_val(w->shard, k * 7919, buf));
		if ((k + 1) % TH_BATCH == 0) {
			w->rc = ostore_write(w->st, b, (k / TH_BATCH) % 4 == 0);
			ostore_batch_clear(b);
		}
	}
	ostore_batch_free(b);
	return NULL;
}

/* A reader of every family: whatever it finds must be the right value. */
static void *reader(void *arg)
{
	struct worker *w = arg;
	char buf[64], want[64];

	for (int round = 0; round < 3; round++)
		for (uint64_t k = 0; k < TH_KEYS; k += 3) {
			unsigned s = (unsigned)(k % ostore_nshards(w->st));
			size_t len, wl = make_val(s, k * 7919, want);
			int rc = ostore_get(w->st, s, k * 7919, buf, sizeof(buf), &len);

			if (rc == OMEN_ENOTFOUND)
				continue;
			if (rc != OMEN_OK || len != wl || memcmp(buf, want, wl) != 0)
				w->rc = rc ? rc : OMEN_ECORRUPT;
		}
	return NULL;
}

static void test_threads(void)
{
	char p[4200];
	ostore *st = NULL;
	struct worker w[4], r[2];
	bool ok_all = true, found = true;

	path_of(p, sizeof(p), "threads");
	if (ostore_open(p, 4, 0, true, &st) != OMEN_OK)
		bail_out("open: %s", omen_errmsg());
	for (unsigned i = 0; i < 4; i++) {
		w[i] = (struct worker){ .st = st, .shard = i };
		pthread_create(&w[i].tid, NULL, writer, &w[i]);
	}
	for (unsigned i = 0; i < 2; i++) {
		r[i] = (struct worker){ .st = st, .rc = OMEN_OK };
		pthread_create(&r[i].tid, NULL, reader, &r[i]);
	}
	for (unsigned i = 0; i < 4; i++) {
		pthread_join(w[i].tid, NULL);
		ok_all = ok_all && w[i].rc == OMEN_OK;
	}
	for (unsigned i = 0; i < 2; i++) {
		pthread_join(r[i].tid, NULL);
		ok_all = ok_all && r[i].rc == OMEN_OK;
	}
	ok(ok_all, "4 shard writers and 2 readers at once: no error, no wrong value");
	for (unsigned s = 0; s < 4; s++)
		for (uint64_t k = 0; k < TH_KEYS; k++)
			found = found && has_val(st, s, k * 7919);
	ok(found, "  every record of every writer present");
	ostore_close(st);
}

/* Child mode of the cross-process EBUSY check: exit status -rc. */
static int try_open(const char *p)
{
	ostore *st = NULL;
	int rc = ostore_open(p, 0, 0, false, &st);

	if (rc == OMEN_OK)
		ostore_close(st);
	else
		fprintf(stderr, "child: %s\n", omen_errmsg());
	return -rc;
}

int main(int argc, char **argv)
{
	const char *tmp = getenv("TMPDIR");

	if (argc == 3 && strcmp(argv[1], "--try-open") == 0)
		return try_open(argv[2]);

	snprintf(base, sizeof(base), "%s/omendb-test-store-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(base))
		bail_out("mkdtemp %s: %s", base, strerror(errno));
	diag("databases under %s", base);

	plan_no_plan();
	test_open_errors();
	test_basic();
	test_delete();
	test_checkpoint();
	test_threads();

	rm_tree(base);
	return done_testing();
}
