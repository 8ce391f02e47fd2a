/*
 * tests/test_damage.c — damaged databases: omen_open refuses them with
 * OMEN_ECORRUPT (or OMEN_EIO when they cannot be read) and a message that
 * names what is wrong, never crashes, never opens one in part, and leaves
 * the directory exactly as it found it (a second attempt then fails the
 * same way).
 *
 * Real databases are made through the public API: a closed one (2 shards,
 * a few thousand keys; close flushes, so the data is in table files) and a
 * crashed one (a child process writes the same keys and is killed with
 * SIGKILL, so the data is in the WAL).  Each case copies one, damages the
 * copy, and opens it.  The damage is done from outside, as it happens:
 * files cut, removed or overwritten, and metadata records and column
 * families changed with RocksDB's own C API (this program links RocksDB
 * for that; the engine only through libomendb.so).
 *
 * What is not refused, and why (see "Opening, and refusing damaged
 * databases" in shard/store.c):
 *   - a WAL cut anywhere, at a record boundary or inside a record, is what
 *     a crash at that point leaves: it opens, without the records after the
 *     cut (checked: what it returns is exactly a prefix of what was
 *     written).  Deleted outright, the WAL of a crashed session is refused
 *     (the store's session file says it is needed); the WAL of a database
 *     closed cleanly holds nothing that is not in table files, and the
 *     database opens whole without it;
 *   - bytes flipped in a table file's data block are found when the block
 *     is read, not at open: it opens, and every read that needs the block
 *     fails with OMEN_ECORRUPT rather than return other bytes.
 *
 * Usage: test_damage (TAP).  Internal modes, run by the test itself in a
 * fresh process: --crash-writer DIR, --open-as-nobody DIR.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <rocksdb/c.h>

#include "omendb.h"
#include "tests/lib/apitest.h"
#include "tests/lib/tap.h"

/*
 * RocksDB is C++, and libomendb.so's jemalloc exports operator new/delete
 * too: libstdc++ must come before it in the dynamic linker's breadth-first
 * order.  Makefile.am lists RocksDB's libraries (and -lstdc++) first; with
 * --as-needed an entry nothing refers to is dropped, and this reference
 * keeps libstdc++ (see bench/peer_rocksdb.c).  Never called.
 */
extern char *__cxa_demangle(const char *mangled, char *buf, size_t *len, int *status);
__attribute__((used)) static char *(*const damage_stdcxx_ref)(const char *, char *, size_t *,
							      int *) = __cxa_demangle;

#define NSHARDS 2
#define NBATCH 6000   /* in batches of BATCH; more than the 4096 keys the first
                         shard holds before boundaries are set (engine.h) */
#define BATCH 200
#define NPUT 50       /* then one put each: single-record WAL tail */
#define NKEYS (NBATCH + NPUT)

static char root[4096];
static char exe[4096];

/* ---------------------------------------------------------- data */

/* The i-th key written: spread over the whole key space, so that both
 * shards get keys once the first batch sets the boundaries. */
static uint64_t key_of(unsigned i)
{
	return (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ull;
}

static size_t value_of(uint64_t k, char *v)
{
	size_t n = 8 + k % 24;
	for (size_t i = 0; i < n; i++)
		v[i] = (char)('a' + (k >> (i % 8 * 8)) % 26);
	return n;
}

static omen_options options(void)
{
	omen_options o;
	omen_options_init(&o);
	o.shards = NSHARDS;
	return o;
}

/* Write every key: batches, then single puts. */
static int write_keys(omen_db *db)
{
	char v[64];
	omen_batch *b = omen_batch_new();
	int rc = b ? OMEN_OK : OMEN_ENOMEM;
	for (unsigned i = 0; i < NBATCH && rc == OMEN_OK; i += BATCH) {
		omen_batch_clear(b);
		for (unsigned j = i; j < i + BATCH; j++)
			omen_batch_put(b, key_of(j), v, value_of(key_of(j), v));
		rc = omen_write(db, b);
	}
	omen_batch_free(b);
	for (unsigned i = NBATCH; i < NKEYS && rc == OMEN_OK; i++)
		rc = omen_put(db, key_of(i), v, value_of(key_of(i), v));
	return rc;
}

/*
 * Read every key back.  *present: how many read back right; *damaged: how
 * many failed with OMEN_ECORRUPT or OMEN_EIO; returns the number that were
 * wrong (another value, another error).  *prefix: the present keys are
 * exactly keys 0..n-1 of the write order (what a WAL cut leaves).
 */
static unsigned read_keys(omen_db *db, unsigned *present, unsigned *damaged, bool *prefix)
{
	char v[64], got[64];
	unsigned wrong = 0, first_absent = NKEYS;
	*present = *damaged = 0;
	*prefix = true;
	for (unsigned i = 0; i < NKEYS; i++) {
		uint64_t k = key_of(i);
		size_t n = value_of(k, v), len = 0;
		int rc = omen_get(db, k, got, sizeof(got), &len);
		if (rc == OMEN_OK && len == n && memcmp(got, v, n) == 0) {
			++*present;
			if (first_absent < i)
				*prefix = false;
		} else if (rc == OMEN_ECORRUPT || rc == OMEN_EIO) {
			++*damaged;
		} else if (rc == OMEN_ENOTFOUND) {
			if (first_absent == NKEYS)
				first_absent = i;
		} else {
			if (wrong++ < 3)
				diag("key %u: rc %s, %zu bytes", i, omen_strerror(rc), len);
		}
	}
	return wrong;
}

/* ---------------------------------------------------------- files */

/* dir/name into buf; a path that does not fit ends the test. */
static void join(char *buf, size_t cap, const char *dir, const char *name)
{
	if ((size_t)snprintf(buf, cap, "%s%s%s", dir, *name ? "/" : "", name) >= cap)
		bail_out("path too long: %s/%s", dir, name);
}

static void path_of(char *buf, size_t cap, const char *name)
{
	join(buf, cap, root, name);
}

/* A fresh copy of database src (cp -a keeps times) as root/name. */
static void copy_db(const char *src, const char *name, char *dst, size_t cap)
{
	char cmd[9000];
	path_of(dst, cap, name);
	if ((size_t)snprintf(cmd, sizeof(cmd), "cp -a '%s' '%s'", src, dst) >= sizeof(cmd) ||
	    system(cmd) != 0)
		bail_out("failed: %s", cmd);
}

/*
 * The file in dir whose name ends with suffix (or starts with it, when
 * prefix): the largest when several match.  False when there is none.
 */
static bool find_file(const char *dir, const char *fix, bool prefix, char *out, size_t cap)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	off_t best = -1;
	size_t fl = strlen(fix);
	if (!d)
		return false;
	while ((e = readdir(d)) != NULL) {
		size_t nl = strlen(e->d_name);
		bool match = prefix ? strncmp(e->d_name, fix, fl) == 0
				    : nl > fl && strcmp(e->d_name + nl - fl, fix) == 0;
		struct stat sb;
		char p[4400];
		if (!match)
			continue;
		join(p, sizeof(p), dir, e->d_name);
		if (stat(p, &sb) == 0 && sb.st_size > best) {
			best = sb.st_size;
			snprintf(out, cap, "%s", p);
		}
	}
	closedir(d);
	return best >= 0;
}

static off_t file_size(const char *p)
{
	struct stat sb;
	return stat(p, &sb) == 0 ? sb.st_size : -1;
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static void cut_file(const char *p, off_t size)
{
	if (truncate(p, size) != 0)
		bail_out("truncate %s: %s", p, strerror(errno));
}

/* XOR n bytes at off with 0xff (a real change wherever it lands). */
static void flip_bytes(const char *p, off_t off, size_t n)
{
	unsigned char buf[64];
	int fd = open(p, O_RDWR);
	if (fd < 0 || n > sizeof(buf) || pread(fd, buf, n, off) != (ssize_t)n)
		bail_out("flip %s: %s", p, strerror(errno));
	for (size_t i = 0; i < n; i++)
		buf[i] ^= 0xff;
	if (pwrite(fd, buf, n, off) != (ssize_t)n)
		bail_out("flip %s: %s", p, strerror(errno));
	close(fd);
}

static void write_file(const char *p, const char *text)
{
	FILE *f = fopen(p, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		bail_out("write %s: %s", p, strerror(errno));
}

/* ------------------------------------------- RocksDB, from outside */

/*
 * Open a database with RocksDB's C API and its default options, as any
 * tool could: families default, meta, shard-0 .. shard-(nshards-1).
 */
static rocksdb_t *raw_open_mode(const char *path, unsigned nshards,
				rocksdb_column_family_handle_t **h, bool read_only)
{
	const char *names[2 + NSHARDS];
	const rocksdb_options_t *fo[2 + NSHARDS];
	char sn[NSHARDS][16];
	char *err = NULL;
	rocksdb_options_t *o = rocksdb_options_create();
	names[0] = "default";
	names[1] = "meta";
	for (unsigned i = 0; i < nshards; i++) {
		snprintf(sn[i], sizeof(sn[i]), "shard-%u", i);
		names[2 + i] = sn[i];
	}
	for (unsigned i = 0; i < 2 + nshards; i++)
		fo[i] = o;
	rocksdb_t *db =
		read_only ? rocksdb_open_for_read_only_column_families(o, path, (int)(2 + nshards),
								       names, fo, h, 0, &err)
			  : rocksdb_open_column_families(o, path, (int)(2 + nshards), names, fo,
							 h, &err);
	rocksdb_options_destroy(o);
	if (err)
		bail_out("rocksdb open %s: %s", path, err);
	return db;
}

static rocksdb_t *raw_open(const char *path, unsigned nshards,
			   rocksdb_column_family_handle_t **h)
{
	return raw_open_mode(path, nshards, h, false);
}

static void raw_close(rocksdb_t *db, rocksdb_column_family_handle_t **h, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (h[i])
			rocksdb_column_family_handle_destroy(h[i]);
	rocksdb_close(db);
}

static void raw_flush(rocksdb_t *db, rocksdb_column_family_handle_t *cf)
{
	char *err = NULL;
	rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
	rocksdb_flushoptions_set_wait(fo, 1);
	rocksdb_flush_cf(db, fo, cf, &err);
	rocksdb_flushoptions_destroy(fo);
	if (err)
		bail_out("rocksdb flush: %s", err);
}

/* Put (val != NULL) or delete metadata record key, flushed to a table. */
static void raw_meta(const char *path, const char *key, const void *val, size_t len)
{
	rocksdb_column_family_handle_t *h[2 + NSHARDS];
	rocksdb_t *db = raw_open(path, NSHARDS, h);
	rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
	char *err = NULL;
	if (val)
		rocksdb_put_cf(db, wo, h[1], key, strlen(key), val, len, &err);
	else
		rocksdb_delete_cf(db, wo, h[1], key, strlen(key), &err);
	rocksdb_writeoptions_destroy(wo);
	if (err)
		bail_out("rocksdb meta %s: %s", key, err);
	raw_flush(db, h[1]);
	raw_close(db, h, 2 + NSHARDS);
}

/* Read metadata record key into buf; its length.  Read-only: the base
 * databases the cases copy stay as omen_close left them. */
static size_t raw_meta_get(const char *path, const char *key, void *buf, size_t cap)
{
	rocksdb_column_family_handle_t *h[2 + NSHARDS];
	rocksdb_t *db = raw_open_mode(path, NSHARDS, h, true);
	rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
	char *err = NULL;
	size_t len = 0;
	char *v = rocksdb_get_cf(db, ro, h[1], key, strlen(key), &len, &err);
	rocksdb_readoptions_destroy(ro);
	if (err || !v || len > cap)
		bail_out("rocksdb get %s: %s", key, err ? err : "absent or too long");
	memcpy(buf, v, len);
	rocksdb_free(v);
	raw_close(db, h, 2 + NSHARDS);
	return len;
}

static void raw_drop_family(const char *path, unsigned idx)
{
	rocksdb_column_family_handle_t *h[2 + NSHARDS];
	rocksdb_t *db = raw_open(path, NSHARDS, h);
	char *err = NULL;
	rocksdb_drop_column_family(db, h[idx], &err);
	if (err)
		bail_out("rocksdb drop family: %s", err);
	raw_close(db, h, 2 + NSHARDS);
}

static void raw_add_family(const char *path, const char *name)
{
	rocksdb_column_family_handle_t *h[2 + NSHARDS];
	rocksdb_t *db = raw_open(path, NSHARDS, h);
	rocksdb_options_t *o = rocksdb_options_create();
	char *err = NULL;
	rocksdb_column_family_handle_t *x = rocksdb_create_column_family(db, o, name, &err);
	rocksdb_options_destroy(o);
	if (err)
		bail_out("rocksdb create family: %s", err);
	rocksdb_column_family_handle_destroy(x);
	raw_close(db, h, 2 + NSHARDS);
}

/* ------------------------------------------------------ the checks */

/* Does msg mention every one of the (NULL-terminated) words? */
static bool mentions(const char *msg, const char *const *words)
{
	for (; *words; words++)
		if (!strstr(msg, *words))
			return false;
	return true;
}

/*
 * Open path, expecting failure with code and a message that starts with
 * the path and contains every word; the directory must be unchanged, and
 * a second attempt must fail the same way.
 */
static void expect_refused(const char *what, const char *path, int code,
			   const char *const *words)
{
	char *before = apitest_tree_fingerprint(path);
	char msg1[600];
	omen_options o = options();
	o.shards = 0;              /* accept what the database has */
	o.create_if_missing = 0;
	omen_db *db = (omen_db *)&db;

	int rc = omen_open(path, &o, &db);
	snprintf(msg1, sizeof(msg1), "%s", omen_errmsg());
	is_int(rc, code, "%s: %s (%s)", what, omen_strerror(code), omen_strerror(rc));
	diag("  message: %s", msg1);
	ok(db == NULL, "  *out is NULL");
	ok(strncmp(msg1, path, strlen(path)) == 0 && mentions(msg1, words),
	   "  the message starts with the path and names the problem");
	if (rc == OMEN_OK && db)
		omen_close(db);
	char *after = apitest_tree_fingerprint(path);
	ok(apitest_same_tree(before, after), "  the directory is unchanged");
	free(after);

	/* The default options too (create_if_missing on, shard count any). */
	db = (omen_db *)&db;
	rc = omen_open(path, NULL, &db);
	ok(rc == code && db == NULL && strcmp(omen_errmsg(), msg1) == 0,
	   "  a second open fails the same way (%s)", omen_strerror(rc));
	if (rc == OMEN_OK && db)
		omen_close(db);
	after = apitest_tree_fingerprint(path);
	ok(apitest_same_tree(before, after), "  and the directory is still unchanged");
	free(after);
	free(before);
}

/* Open path, expecting success and count keys read back right, no wrong
 * ones, no damaged ones; *prefix as read_keys. */
static void expect_opens(const char *what, const char *path, unsigned want_min,
			 unsigned want_max, bool *prefix_out)
{
	omen_options o = options();
	o.shards = 0;
	omen_db *db = NULL;
	int rc = omen_open(path, &o, &db);
	if (!is_int(rc, OMEN_OK, "%s: opens", what)) {
		diag("  message: %s", omen_errmsg());
		return;
	}
	unsigned present, damaged;
	bool prefix;
	unsigned wrong = read_keys(db, &present, &damaged, &prefix);
	ok(wrong == 0 && damaged == 0 && present >= want_min && present <= want_max && prefix,
	   "  %u of %u keys read back right (want %u..%u), none wrong, %s", present, NKEYS,
	   want_min, want_max, prefix ? "a prefix of the writes" : "NOT a prefix");
	is_int(omen_close(db), OMEN_OK, "  closes");
	if (prefix_out)
		*prefix_out = prefix;
}

/* ------------------------------------------------ the two databases */

/* A closed database: the data in table files, the WAL empty. */
static void make_closed(char *path, size_t cap)
{
	path_of(path, cap, "closed");
	omen_options o = options();
	omen_db *db;
	if (omen_open(path, &o, &db) != OMEN_OK)
		bail_out("create %s: %s", path, omen_errmsg());
	if (write_keys(db) != OMEN_OK)
		bail_out("write %s: %s", path, omen_errmsg());
	if (omen_close(db) != OMEN_OK)
		bail_out("close %s: %s", path, omen_errmsg());
}

/* The child of make_crashed: write every key, then die by SIGKILL. */
static int crash_writer(const char *path)
{
	omen_options o = options();
	omen_db *db;
	if (omen_open(path, &o, &db) != OMEN_OK || write_keys(db) != OMEN_OK) {
		fprintf(stderr, "crash writer %s: %s\n", path, omen_errmsg());
		return 1;
	}
	raise(SIGKILL);
	return 1;
}

/* A crashed database: every key acknowledged, all of them in the WAL. */
static void make_crashed(char *path, size_t cap)
{
	path_of(path, cap, "crashed");
	pid_t pid = fork();
	if (pid < 0)
		bail_out("fork: %s", strerror(errno));
	if (pid == 0) {
		/* exec: no RocksDB or engine state shared with the parent. */
		execl(exe, exe, "--crash-writer", path, (char *)NULL);
		_exit(127);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
		bail_out("the crash writer did not die by SIGKILL (status %d)", st);
}

/* The child of the unreadable-directory case when running as root (who
 * reads any directory): drop to nobody, open, print "rc\nmessage". */
static int open_as_nobody(const char *path)
{
	if (geteuid() == 0 && (setgroups(0, NULL) != 0 || setgid(65534) != 0 ||
			       setuid(65534) != 0)) {
		printf("skip\n%s\n", strerror(errno));
		return 0;
	}
	omen_db *db = NULL;
	int rc = omen_open(path, NULL, &db);
	printf("%d\n%s\n", rc, omen_errmsg());
	if (rc == OMEN_OK)
		omen_close(db);
	return 0;
}

/* ---------------------------------------------------------- cases */

static void format_cases(const char *closed)
{
	char p[4400];
	uint8_t f[12];
	static const char *const w_missing[] = { "format record", "missing", NULL };
	static const char *const w_damaged[] = { "format record", "damaged", NULL };
	static const char *const w_old[] = { "format version 0", "older", NULL };
	static const char *const w_new[] = { "format version 2", "newer", NULL };

	size_t flen = raw_meta_get(closed, "format", f, sizeof(f));
	if (flen != 12)
		bail_out("the format record is %zu bytes", flen);

	copy_db(closed, "format-missing", p, sizeof(p));
	raw_meta(p, "format", NULL, 0);
	expect_refused("format record missing", p, OMEN_ECORRUPT, w_missing);

	/* Both metadata records gone: still not a new database (it has
	 * data), never opened as an empty one. */
	copy_db(closed, "meta-missing", p, sizeof(p));
	raw_meta(p, "format", NULL, 0);
	raw_meta(p, "layout", NULL, 0);
	expect_refused("format and layout records missing", p, OMEN_ECORRUPT, w_missing);

	uint8_t g[12];
	memcpy(g, f, 12);
	g[8] = 0;
	copy_db(closed, "format-v0", p, sizeof(p));
	raw_meta(p, "format", g, 12);
	expect_refused("format record of version 0 (older)", p, OMEN_ECORRUPT, w_old);

	g[8] = 2;
	copy_db(closed, "format-v2", p, sizeof(p));
	raw_meta(p, "format", g, 12);
	expect_refused("format record of version 2 (newer)", p, OMEN_ECORRUPT, w_new);

	copy_db(closed, "format-garbage", p, sizeof(p));
	raw_meta(p, "format", "\x13\x37garbage\xff\xfe\x01\x02\x03", 12);
	expect_refused("format record of 12 garbage bytes", p, OMEN_ECORRUPT, w_damaged);

	copy_db(closed, "format-short", p, sizeof(p));
	raw_meta(p, "format", f, 7);
	expect_refused("format record cut to 7 bytes", p, OMEN_ECORRUPT, w_damaged);
}

static void layout_cases(const char *closed)
{
	char p[4400];
	uint8_t l[64];
	static const char *const w_missing[] = { "layout record", "missing", "holds keys",
						 NULL };
	static const char *const w_sum[] = { "layout record", "checksum", NULL };
	static const char *const w_cut[] = { "layout record", "size", NULL };

	size_t llen = raw_meta_get(closed, "layout", l, sizeof(l));

	copy_db(closed, "layout-missing", p, sizeof(p));
	raw_meta(p, "layout", NULL, 0);
	expect_refused("layout record missing (2 shards with data)", p, OMEN_ECORRUPT,
		       w_missing);

	copy_db(closed, "layout-checksum", p, sizeof(p));
	l[10] ^= 0x01; /* a boundary: only the checksum can tell */
	raw_meta(p, "layout", l, llen);
	l[10] ^= 0x01;
	expect_refused("layout record with a flipped bit", p, OMEN_ECORRUPT, w_sum);

	copy_db(closed, "layout-cut", p, sizeof(p));
	raw_meta(p, "layout", l, llen - 8);
	expect_refused("layout record cut short by 8 bytes", p, OMEN_ECORRUPT, w_cut);
}

static void family_cases(const char *closed)
{
	char p[4400], s[4400];
	static const char *const w_s0[] = { "shard-0", "missing", NULL };
	static const char *const w_s1[] = { "shard-1", "missing", NULL };
	static const char *const w_meta[] = { "\"meta\"", "missing", NULL };
	static const char *const w_extra[] = { "unexpected column family", "\"junk\"", NULL };

	copy_db(closed, "family-shard0", p, sizeof(p));
	raw_drop_family(p, 2);
	expect_refused("family shard-0 dropped", p, OMEN_ECORRUPT, w_s0);

	/* The last family: the family list alone looks like a 1-shard
	 * database; the session file and the layout record say otherwise. */
	copy_db(closed, "family-shard1", p, sizeof(p));
	raw_drop_family(p, 3);
	expect_refused("family shard-1 (the last) dropped", p, OMEN_ECORRUPT, w_s1);
	join(s, sizeof(s), p, "OMENDB-SESSION");
	if (unlink(s) != 0)
		diag("no session file in %s: %s", p, strerror(errno));
	expect_refused("family shard-1 dropped, no session file", p, OMEN_ECORRUPT, w_s1);

	copy_db(closed, "family-meta", p, sizeof(p));
	raw_drop_family(p, 1);
	expect_refused("family meta dropped", p, OMEN_ECORRUPT, w_meta);

	copy_db(closed, "family-extra", p, sizeof(p));
	raw_add_family(p, "junk");
	expect_refused("an extra family \"junk\"", p, OMEN_ECORRUPT, w_extra);
}

static void table_cases(const char *closed)
{
	char p[4400], f[4400], name[64];
	const char *w[] = { name, NULL, NULL };

	copy_db(closed, "sst-cut", p, sizeof(p));
	if (!find_file(p, ".sst", false, f, sizeof(f)))
		bail_out("no table file in %s", p);
	join(name, sizeof(name), base_name(f), "");
	cut_file(f, file_size(f) / 2);
	w[1] = "damaged";
	expect_refused("a table file cut in half", p, OMEN_ECORRUPT, w);

	copy_db(closed, "sst-cut-tail", p, sizeof(p));
	find_file(p, ".sst", false, f, sizeof(f));
	cut_file(f, file_size(f) - 1);
	expect_refused("a table file short by one byte", p, OMEN_ECORRUPT, w);

	copy_db(closed, "sst-gone", p, sizeof(p));
	find_file(p, ".sst", false, f, sizeof(f));
	if (unlink(f) != 0)
		bail_out("unlink %s: %s", f, strerror(errno));
	w[1] = "missing";
	expect_refused("a table file deleted", p, OMEN_ECORRUPT, w);

	/* The footer's last 8 bytes are the table's magic number.  (Bytes
	 * a little before it can be padding of the block handles, which no
	 * reader looks at: changing those changes nothing.) */
	copy_db(closed, "sst-magic", p, sizeof(p));
	find_file(p, ".sst", false, f, sizeof(f));
	flip_bytes(f, file_size(f) - 8, 8);
	w[1] = "damaged";
	expect_refused("a table file's magic number overwritten", p, OMEN_ECORRUPT, w);

	/* The footer's first bytes: the block handles of the index and
	 * metaindex blocks. */
	copy_db(closed, "sst-handles", p, sizeof(p));
	find_file(p, ".sst", false, f, sizeof(f));
	flip_bytes(f, file_size(f) - 52, 4);
	expect_refused("a table file's block handles overwritten", p, OMEN_ECORRUPT, w);

	/*
	 * Bytes flipped inside a data block (the first block starts at offset
	 * 0; 1000 bytes in is inside it).  Only a read of that block can find
	 * it: open must not read every block (see store.c).  The database
	 * opens; every key reads back right or fails with OMEN_ECORRUPT /
	 * OMEN_EIO, at least one fails, none reads back wrong; a scan ends in
	 * an error rather than skip the block.
	 */
	copy_db(closed, "sst-data", p, sizeof(p));
	find_file(p, ".sst", false, f, sizeof(f));
	flip_bytes(f, 1000, 16);
	omen_options o = options();
	o.shards = 0;
	omen_db *db = NULL;
	int rc = omen_open(p, &o, &db);
	is_int(rc, OMEN_OK, "a data block of a table file overwritten: opens (found on read)");
	if (rc != OMEN_OK) {
		diag("  message: %s", omen_errmsg());
		return;
	}
	unsigned present, damaged;
	bool prefix;
	unsigned wrong = read_keys(db, &present, &damaged, &prefix);
	ok(wrong == 0 && damaged > 0 && present + damaged == NKEYS,
	   "  reads: %u right, %u OMEN_ECORRUPT/EIO, %u wrong or missing", present, damaged,
	   NKEYS - present - damaged);
	omen_iter *it;
	unsigned seen = 0;
	rc = omen_iter_open(db, 0, UINT64_MAX, &it);
	if (rc == OMEN_OK) {
		while ((rc = omen_iter_next(it, NULL, NULL, NULL)) == OMEN_OK)
			seen++;
		omen_iter_close(it);
	}
	ok(rc == OMEN_ECORRUPT || rc == OMEN_EIO,
	   "  a full scan stops with an error after %u keys (%s): %s", seen, omen_strerror(rc),
	   omen_errmsg());
	omen_close(db);
}

static void rocksdb_file_cases(const char *closed)
{
	char p[4400], f[4400];
	static const char *const w_man_gone[] = { "MANIFEST", "missing", NULL };
	static const char *const w_man_bad[] = { "MANIFEST", "damaged", NULL };
	static const char *const w_cur_gone[] = { "CURRENT", "missing", NULL };
	static const char *const w_cur_bad[] = { "CURRENT", "damaged", NULL };
	static const char *const w_man[] = { "MANIFEST", NULL };
	static const char *const w_lost[] = { "MANIFEST", "gone back", NULL };

	copy_db(closed, "manifest-gone", p, sizeof(p));
	if (!find_file(p, "MANIFEST-", true, f, sizeof(f)))
		bail_out("no MANIFEST in %s", p);
	unlink(f);
	expect_refused("the MANIFEST deleted", p, OMEN_ECORRUPT, w_man_gone);

	copy_db(closed, "manifest-garbage", p, sizeof(p));
	find_file(p, "MANIFEST-", true, f, sizeof(f));
	write_file(f, "this is not a MANIFEST, but it is where one was\n");
	expect_refused("the MANIFEST overwritten with text", p, OMEN_ECORRUPT, w_man_bad);

	copy_db(closed, "manifest-flipped", p, sizeof(p));
	find_file(p, "MANIFEST-", true, f, sizeof(f));
	flip_bytes(f, 40, 4);
	expect_refused("the MANIFEST with 4 bytes flipped", p, OMEN_ECORRUPT, w_man_bad);

	/* Cut in half: RocksDB either finds the cut record damaged, or reads
	 * what is left as an older database, which the session file knows
	 * to be missing writes. */
	copy_db(closed, "manifest-cut", p, sizeof(p));
	find_file(p, "MANIFEST-", true, f, sizeof(f));
	cut_file(f, file_size(f) / 2);
	expect_refused("the MANIFEST cut in half", p, OMEN_ECORRUPT, w_man);

	/* Short by one byte: RocksDB drops the incomplete last edit (the
	 * last flush at close) and opens, the flushed table file no longer
	 * named and the WAL that held its records deleted: the session file
	 * sees the oldest WAL needed go back. */
	copy_db(closed, "manifest-last-edit", p, sizeof(p));
	find_file(p, "MANIFEST-", true, f, sizeof(f));
	cut_file(f, file_size(f) - 1);
	expect_refused("the MANIFEST's last edit cut", p, OMEN_ECORRUPT, w_lost);

	copy_db(closed, "current-gone", p, sizeof(p));
	join(f, sizeof(f), p, "CURRENT");
	unlink(f);
	expect_refused("CURRENT deleted", p, OMEN_ECORRUPT, w_cur_gone);

	copy_db(closed, "current-garbage", p, sizeof(p));
	join(f, sizeof(f), p, "CURRENT");
	write_file(f, "garbage");
	expect_refused("CURRENT overwritten", p, OMEN_ECORRUPT, w_cur_bad);

	copy_db(closed, "current-elsewhere", p, sizeof(p));
	join(f, sizeof(f), p, "CURRENT");
	write_file(f, "MANIFEST-999999\n");
	expect_refused("CURRENT naming a MANIFEST that is not there", p, OMEN_ECORRUPT,
		       w_man_gone);
}

static void wal_cases(const char *closed, const char *crashed)
{
	char p[4400], f[4400], name[64];
	const char *w[] = { "write-ahead log", name, NULL };
	static const char *const w_gone[] = { "write-ahead log", "missing", NULL };

	/* The crashed database itself: kill -9 recovery keeps every
	 * acknowledged write. */
	copy_db(crashed, "crashed-as-is", p, sizeof(p));
	expect_opens("the database killed with SIGKILL", p, NKEYS, NKEYS, NULL);

	copy_db(crashed, "wal-torn", p, sizeof(p));
	if (!find_file(p, ".log", false, f, sizeof(f)) || file_size(f) < 4096)
		bail_out("no WAL with data in %s", p);
	join(name, sizeof(name), base_name(f), "");
	/* Short by 5 bytes: the last record (the last put) is incomplete,
	 * what a kill during its write() leaves.  Accepted, that record
	 * dropped; every other write is there. */
	cut_file(f, file_size(f) - 5);
	expect_opens("the WAL's last record cut (a torn write)", p, NKEYS - 1, NKEYS - 1, NULL);

	/* Cut in the middle: indistinguishable from a crash at that point
	 * (nothing records how long the WAL was).  It opens with a prefix
	 * of the writes: nothing out of order, nothing wrong. */
	copy_db(crashed, "wal-cut", p, sizeof(p));
	find_file(p, ".log", false, f, sizeof(f));
	cut_file(f, file_size(f) / 2 + 3);
	diag("a WAL cut in the middle of a record cannot be told from a crash there:");
	expect_opens("the WAL cut in half", p, 1, NKEYS - 1, NULL);

	copy_db(crashed, "wal-flipped", p, sizeof(p));
	find_file(p, ".log", false, f, sizeof(f));
	flip_bytes(f, file_size(f) / 2, 4);
	expect_refused("the WAL with 4 bytes flipped in the middle", p, OMEN_ECORRUPT, w);

	/* Garbage in the last record, not a cut: a kill never leaves that
	 * (the file ends where the last write() stopped), so it is damage. */
	copy_db(crashed, "wal-flipped-tail", p, sizeof(p));
	find_file(p, ".log", false, f, sizeof(f));
	flip_bytes(f, file_size(f) - 12, 4);
	expect_refused("the WAL with 4 bytes flipped in its last record", p, OMEN_ECORRUPT, w);

	copy_db(crashed, "wal-gone", p, sizeof(p));
	find_file(p, ".log", false, f, sizeof(f));
	unlink(f);
	expect_refused("the WAL of a crashed session deleted", p, OMEN_ECORRUPT, w_gone);

	copy_db(crashed, "wal-emptied", p, sizeof(p));
	find_file(p, ".log", false, f, sizeof(f));
	cut_file(f, 0);
	diag("a WAL cut to nothing (a record boundary) cannot be told from a crash before "
	     "any write of the session; the session file does not cover those writes:");
	expect_opens("the WAL of a crashed session cut to 0 bytes", p, 0, 0, NULL);

	/* After a clean close the WAL holds nothing that is not in a table
	 * file: deleting it loses nothing, and the database opens whole. */
	copy_db(closed, "wal-gone-closed", p, sizeof(p));
	if (find_file(p, ".log", false, f, sizeof(f)))
		unlink(f);
	expect_opens("the (empty) WAL of a closed database deleted", p, NKEYS, NKEYS, NULL);
}

static void unreadable_case(const char *closed)
{
	char p[4400];
	copy_db(closed, "unreadable", p, sizeof(p));
	char *before = apitest_tree_fingerprint(p);
	struct stat sb;
	if (stat(p, &sb) != 0 || chmod(p, 0) != 0)
		bail_out("chmod %s: %s", p, strerror(errno));
	mode_t mode = sb.st_mode & 07777;
	int rc;
	char msg[600];
	if (geteuid() == 0) {
		/* Root reads any directory: ask a process running as nobody.
		 * The directories above must let it through. */
		chmod(root, 0711);
		char cmd[9000];
		if ((size_t)snprintf(cmd, sizeof(cmd), "'%s' --open-as-nobody '%s'", exe, p) >=
		    sizeof(cmd))
			bail_out("path too long: %s", p);
		FILE *f = popen(cmd, "r");
		char line[64] = "";
		msg[0] = '\0';
		if (!f || !fgets(line, sizeof(line), f) || !fgets(msg, sizeof(msg), f))
			bail_out("%s: no answer", cmd);
		pclose(f);
		chmod(root, 0700);
		msg[strcspn(msg, "\n")] = '\0';
		if (strncmp(line, "skip", 4) == 0) {
			skip(2, "cannot run as nobody");
			chmod(p, mode);
			free(before);
			return;
		}
		rc = atoi(line);
	} else {
		omen_db *db = (omen_db *)&db;
		rc = omen_open(p, NULL, &db);
		snprintf(msg, sizeof(msg), "%s", omen_errmsg());
		if (rc == OMEN_OK)
			omen_close(db);
	}
	is_int(rc, OMEN_EIO, "a directory that cannot be read: EIO (%s)", omen_strerror(rc));
	diag("  message: %s", msg);
	ok(strstr(msg, p) && strstr(msg, "Permission denied"),
	   "  the message names the directory and the reason");
	chmod(p, mode);
	char *after = apitest_tree_fingerprint(p);
	/* chmod changed the directory's ctime only (restored mode, same
	 * mtime): the fingerprint does not see ctime. */
	ok(apitest_same_tree(before, after), "  the directory is unchanged");
	free(before);
	free(after);

	/* Readable, not writable: the read-write open cannot take the lock.
	 * Only for a user the permission applies to. */
	if (geteuid() != 0) {
		copy_db(closed, "read-only", p, sizeof(p));
		before = apitest_tree_fingerprint(p);
		stat(p, &sb);
		mode = sb.st_mode & 07777;
		chmod(p, 0555);
		omen_db *db = (omen_db *)&db;
		rc = omen_open(p, NULL, &db);
		is_int(rc, OMEN_EIO, "a directory that cannot be written: EIO (%s)",
		       omen_strerror(rc));
		diag("  message: %s", omen_errmsg());
		ok(strstr(omen_errmsg(), p) && strstr(omen_errmsg(), "Permission denied"),
		   "  the message names the directory and the reason");
		if (rc == OMEN_OK)
			omen_close(db);
		chmod(p, mode);
		after = apitest_tree_fingerprint(p);
		ok(apitest_same_tree(before, after), "  the directory is unchanged");
		free(before);
		free(after);
	}
}

/* Also after bail_out.  OMEN_TEST_KEEP=1 keeps the databases to look at. */
static void cleanup(void)
{
	const char *keep = getenv("OMEN_TEST_KEEP");
	if (keep && *keep && strcmp(keep, "0") != 0) {
		printf("# databases kept in %s\n", root);
		return;
	}
	chmod(root, 0700);
	apitest_rm_tree(root);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--crash-writer") == 0)
		return crash_writer(argv[2]);
	if (argc == 3 && strcmp(argv[1], "--open-as-nobody") == 0)
		return open_as_nobody(argv[2]);
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		snprintf(exe, sizeof(exe), "%s", argv[0]);
	else
		exe[n] = '\0';

	plan_no_plan();
	apitest_mkdtemp(root, sizeof(root), "damage");
	atexit(cleanup);
	char closed[4400], crashed[4400];
	make_closed(closed, sizeof(closed));
	make_crashed(crashed, sizeof(crashed));
	{
		char p[4400];
		copy_db(closed, "closed-as-is", p, sizeof(p));
		expect_opens("the closed database, undamaged", p, NKEYS, NKEYS, NULL);
	}

	format_cases(closed);
	layout_cases(closed);
	family_cases(closed);
	table_cases(closed);
	rocksdb_file_cases(closed);
	wal_cases(closed, crashed);
	unreadable_case(closed);

	return done_testing();
}
