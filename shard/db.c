/*
 * shard/db.c — the code behind omendb.h: open and close, routing each
 * call to its shard, reads, iterators, statistics.
 *
 * Routing: a call enters an RCU read-side section, reads the root model
 * (RCU-published), picks the shard and, for a write, pushes its record to
 * the shard's queue without blocking, all inside the section.  The
 * section is what lets the root model change under producers (see the
 * bootstrap note in engine.h) and what lets omen_close know when every
 * call that saw the database open has reached its queue.
 *
 * Lifetime: omen_close sets `closing`, waits a grace period (after which
 * no call can newly start using the shards), closes the queues (blocked
 * producers fail with OMEN_ECLOSED), lets the workers drain and
 * acknowledge everything queued, and waits for `users` (callers still
 * waiting for an acknowledgement, for queue room or on storage) to drop
 * to zero before freeing anything.
 */
#include "shard/engine.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/grow.h"
#include "core/mem.h"
#include "core/rcu.h"
#include "omendb.h"
#include "ingest/futex.h"
#include "recovery/layout.h"
#include "shard/batch.h"
#include "shard/errors.h"
#include "shard/testhooks.h"
#include "shard/temperature.h"
#include "shard/value.h"

#define DEFAULT_QUEUE_DEPTH 16383u
#define MAX_QUEUE_DEPTH ((1u << 24) - 1)

void omen_options_init(omen_options *o)
{
	if (!o)
		return;
	memset(o, 0, sizeof(*o));
	o->durability = OMEN_DURABLE_WAL;
	o->create_if_missing = 1;
}

/* ------------------------------------------------------------ helpers */

uint64_t odb_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static bool is_closing(omen_db *db)
{
	return atomic_load_explicit(&db->closing, memory_order_seq_cst) != 0;
}

/* Take a users reference unless the database is closing. */
static int db_enter(omen_db *db)
{
	orcu_read_lock();
	if (is_closing(db)) {
		orcu_read_unlock();
		oerr_set("the database is closing or closed");
		return OMEN_ECLOSED;
	}
	atomic_fetch_add_explicit(&db->users, 1, memory_order_relaxed);
	orcu_read_unlock();
	return OMEN_OK;
}

static void db_leave(omen_db *db)
{
	atomic_fetch_sub_explicit(&db->users, 1, memory_order_release);
}

static int closed_error(void)
{
	oerr_set("the database is closing or closed");
	return OMEN_ECLOSED;
}

static int check_value(const char *fn, const void *val, size_t len)
{
	if (!val && len) {
		oerr_set("%s: NULL value with a length of %zu", fn, len);
		return OMEN_EINVAL;
	}
	if (len > OMEN_MAX_VALUE) {
		oerr_set("%s: value of %zu bytes exceeds OMEN_MAX_VALUE (%u)", fn, len,
			 OMEN_MAX_VALUE);
		return OMEN_EINVAL;
	}
	return OMEN_OK;
}

/* ------------------------------------------------------------ open */

static void stop_workers(omen_db *db)
{
	atomic_store(&db->closing, 1);
	for (unsigned i = 0; i < db->nshards; i++)
		if (db->shards[i])
			oq_close(db->shards[i]->q);
	/* Worker 0 opens the gate when it leaves; join it first so that a
	 * bootstrap under way completes before the others drain. */
	if (db->shards && db->shards[0] && db->shards[0]->started)
		pthread_join(db->shards[0]->thread, NULL);
	atomic_store_explicit(&db->gate, 1, memory_order_release);
	ofutex_wake(&db->gate, INT_MAX);
	atomic_store_explicit(&db->test_release, 1, memory_order_release);
	ofutex_wake(&db->test_release, INT_MAX);
	for (unsigned i = 1; i < db->nshards; i++)
		if (db->shards[i] && db->shards[i]->started)
			pthread_join(db->shards[i]->thread, NULL);
}

static void teardown(omen_db *db)
{
	otemp_destroy(db->temp); /* the aggregator reads the shards' layouts */
	if (db->shards) {
		for (unsigned i = 0; i < db->nshards; i++)
			oshard_destroy(db->shards[i]);
		free(db->shards);
	}
	ostore_close(db->store);
	orm_free(db->root);
	free(db->path);
	pthread_mutex_destroy(&db->life);
	free(db);
}

/*
 * Metadata checks.  check_meta reads the records of an existing store and
 * refuses anything it cannot vouch for, with a message that starts with
 * the path and names the record: it runs twice, on the read-only view
 * before the store is opened for writing (meta_check_view, so a refused
 * database is not modified) and on the open store (load_layout, which
 * keeps the root model).
 *   format   missing: a database never written to (ostore_never_written)
 *            is one whose creation stopped before its first metadata
 *            write, and load_layout finishes it (*fresh); any other is
 *            refused: the record is flushed to a table file when the
 *            database is created, so no lost WAL explains its absence.
 *            Not 12 bytes with our magic: refused.  Another version, older
 *            (0 included) or newer: refused, naming both, never misread.
 *   layout   decoded with its checksum; its shard count must be the number
 *            of shard families.  Missing: legitimate only for a
 *            multi-shard database whose first batch has not yet set the
 *            boundaries (bootstrap, engine.h), when every key is still in
 *            shard 0; a key in any other family means the boundaries were
 *            lost, and routing without them would misread the database.
 */
static int meta_err(const char *path, const char *rec, int rc)
{
	char why[OERR_MSG_MAX];

	snprintf(why, sizeof(why), "%s", omen_errmsg());
	oerr_set("%s: reading the metadata record \"%s\": %s", path, rec, why);
	return rc;
}

/* Does any shard family but shard 0 hold a key?  1 yes, 0 no, or an
 * OMEN code (negative). */
static int keys_beyond_shard0(ostore *st, unsigned *where)
{
	for (unsigned s = 1; s < ostore_nshards(st); s++) {
		ostore_iter *it;
		int rc = ostore_iter_new(st, s, &it);
		if (rc)
			return rc;
		ostore_iter_seek_first(it);
		bool any = ostore_iter_valid(it);
		rc = ostore_iter_status(it);
		ostore_iter_free(it);
		if (rc)
			return rc;
		if (any) {
			*where = s;
			return 1;
		}
	}
	return 0;
}

static int check_meta(ostore *st, const char *path, bool *fresh, orm **root)
{
	unsigned n = ostore_nshards(st);
	uint8_t fmt[OLAYOUT_FORMAT_LEN];
	size_t len = 0, llen = 0;
	*fresh = false;
	if (root)
		*root = NULL;

	int rc = ostore_meta_get(st, OLAYOUT_FORMAT_KEY, fmt, sizeof(fmt), &len);
	int lrc = ostore_meta_get(st, OLAYOUT_KEY, NULL, 0, &llen);
	if (rc != OMEN_OK && rc != OMEN_ENOTFOUND && rc != OMEN_ERANGE)
		return meta_err(path, OLAYOUT_FORMAT_KEY, rc);
	if (lrc != OMEN_OK && lrc != OMEN_ENOTFOUND && lrc != OMEN_ERANGE)
		return meta_err(path, OLAYOUT_KEY, lrc);
	if (rc == OMEN_ENOTFOUND) {
		if (lrc == OMEN_ENOTFOUND && ostore_never_written(st)) {
			*fresh = true;
			return OMEN_OK;
		}
		oerr_set("%s: the format record (metadata \"%s\") is missing: not an OmenDB "
			 "database, or a damaged one",
			 path, OLAYOUT_FORMAT_KEY);
		return OMEN_ECORRUPT;
	}
	long v = rc == OMEN_OK ? olayout_format_version(fmt, len) : -1;
	if (v < 0) {
		oerr_set("%s: the format record (metadata \"%s\") is damaged: %zu bytes that "
			 "are not an OmenDB format record",
			 path, OLAYOUT_FORMAT_KEY, len);
		return OMEN_ECORRUPT;
	}
	if (v != OLAYOUT_FORMAT) {
		oerr_set("%s: written in format version %ld, %s this library's version %u, "
			 "which cannot read it: refused rather than misread",
			 path, v, v < OLAYOUT_FORMAT ? "older than" : "newer than", OLAYOUT_FORMAT);
		return OMEN_ECORRUPT;
	}

	if (lrc == OMEN_ENOTFOUND) {
		unsigned where = 0;
		if (n == 1) {
			oerr_set("%s: the layout record (metadata \"%s\") is missing", path,
				 OLAYOUT_KEY);
			return OMEN_ECORRUPT;
		}
		rc = keys_beyond_shard0(st, &where);
		if (rc < 0)
			return rc;
		if (rc > 0) {
			oerr_set("%s: the layout record (metadata \"%s\") is missing, but shard %u "
				 "holds keys: the shard boundaries are lost",
				 path, OLAYOUT_KEY, where);
			return OMEN_ECORRUPT;
		}
		/* Created, not yet bootstrapped: boundaries come from the
		 * first batch. */
		if (root && !(*root = orm_bootstrap(n)))
			return OMEN_ENOMEM;
		return OMEN_OK;
	}

	uint8_t *lbuf = malloc(llen ? llen : 1);
	uint64_t *lo = malloc(OSTORE_MAX_SHARDS * sizeof(uint64_t));
	unsigned ln = 0;
	const char *why = NULL;
	rc = OMEN_ENOMEM;
	if (!lbuf || !lo)
		goto out;
	rc = ostore_meta_get(st, OLAYOUT_KEY, lbuf, llen, &llen);
	if (rc) {
		rc = meta_err(path, OLAYOUT_KEY, rc);
		goto out;
	}
	rc = OMEN_ECORRUPT;
	if (olayout_decode(lbuf, llen, OSTORE_MAX_SHARDS, lo, &ln, &why) != 0) {
		oerr_set("%s: the layout record (metadata \"%s\", %zu bytes) is damaged: %s", path,
			 OLAYOUT_KEY, llen, why);
	} else if (ln > n) {
		oerr_set("%s: the layout record describes %u shards but there are %u shard "
			 "families: shard-%u%s is missing",
			 path, ln, n, n, ln - n > 1 ? " and above" : "");
	} else if (ln < n) {
		oerr_set("%s: the layout record describes %u shards but there are %u shard "
			 "families", path, ln, n);
	} else if (!root) {
		rc = OMEN_OK;
	} else {
		int r = orm_from_bounds(lo, n, root);
		if (r == -ENOMEM)
			rc = OMEN_ENOMEM;
		else if (r != 0)
			oerr_set("%s: the layout record's shard boundaries are not ascending from 0",
				 path);
		else
			rc = OMEN_OK;
	}
out:
	free(lo);
	free(lbuf);
	return rc;
}

/* ostore_check_fn: the metadata, on the read-only view at open. */
static int meta_check_view(ostore *view, void *arg)
{
	const omen_db *db = arg;
	bool fresh;
	return check_meta(view, db->path, &fresh, NULL);
}

/* Read and check the metadata of the open store; set db->root.  A fresh
 * database (new, or its creation interrupted) gets its format record, and
 * a one-shard database its layout, flushed to a table file at once: then
 * no later loss of the WAL can make the database look new. */
static int load_layout(omen_db *db)
{
	bool fresh;
	int rc = check_meta(db->store, db->path, &fresh, &db->root);
	if (rc || !fresh)
		return rc;
	unsigned n = ostore_nshards(db->store);
	uint8_t fmt[OLAYOUT_FORMAT_LEN];
	olayout_format_encode(fmt);
	rc = ostore_meta_put(db->store, OLAYOUT_FORMAT_KEY, fmt, OLAYOUT_FORMAT_LEN, true);
	if (!rc && n == 1) {
		uint64_t lo0 = 0;
		uint8_t lb[16 + 8];
		olayout_encode(&lo0, 1, lb);
		rc = ostore_meta_put(db->store, OLAYOUT_KEY, lb, olayout_size(1), true);
	}
	if (!rc)
		rc = ostore_flush_meta(db->store);
	if (!rc) {
		db->root = orm_bootstrap(n);
		rc = db->root ? OMEN_OK : OMEN_ENOMEM;
	}
	return rc;
}

/* Remove a directory of plain files (a RocksDB directory we made). */
static void rm_flat_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *e;
		char p[4096];
		while ((e = readdir(d)) != NULL) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
			unlink(p);
		}
		closedir(d);
	}
	rmdir(dir);
}

/*
 * Create a new database at path, all or nothing.  RocksDB creates its
 * files and then the families one at a time, and nothing marks the end:
 * a process killed meanwhile left a directory that never opened again
 * (stress/stress_crash found it).  So the database is built in a sibling
 * directory "<path>.omen-new-XXXXXX" (every family, the format record
 * and, for one shard, the layout record, all synced), renamed into place
 * (rename(2) replaces a missing or empty directory atomically) and the
 * parent directory synced.  A crash before the rename leaves path as it
 * was, and a sibling that nothing reads.
 */
static int create_db(const char *path, unsigned nshards, size_t cache)
{
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	char *tmp = malloc(n + 32), *parent = malloc(n + 2);
	if (!tmp || !parent) {
		free(tmp);
		free(parent);
		return OMEN_ENOMEM;
	}
	snprintf(tmp, n + 32, "%.*s.omen-new-XXXXXX", (int)n, path);
	const char *slash = NULL;
	for (size_t i = 0; i < n; i++)
		if (path[i] == '/')
			slash = path + i;
	snprintf(parent, n + 2, "%.*s", slash ? (slash == path ? 1 : (int)(slash - path)) : 1,
		 slash ? path : ".");
	int rc = OMEN_OK;
	if (!mkdtemp(tmp)) {
		oerr_set("%s: cannot create the database next to it (%s): %s", path, tmp,
			 strerror(errno));
		rc = errno == ENOENT ? OMEN_ENOTFOUND : OMEN_EIO;
		goto out;
	}
	ostore *st;
	rc = ostore_open(tmp, nshards, cache, true, &st);
	if (rc)
		goto out_rm;
	uint8_t fmt[OLAYOUT_FORMAT_LEN];
	olayout_format_encode(fmt);
	rc = ostore_meta_put(st, OLAYOUT_FORMAT_KEY, fmt, OLAYOUT_FORMAT_LEN, true);
	if (!rc && nshards == 1) {
		uint64_t lo0 = 0;
		uint8_t lbuf[olayout_size(1)];
		olayout_encode(&lo0, 1, lbuf);
		rc = ostore_meta_put(st, OLAYOUT_KEY, lbuf, olayout_size(1), true);
	}
	/* Close flushes the memtables: the records are in table files. */
	ostore_close(st);
	if (rc)
		goto out_rm;
	if (rename(tmp, path) != 0) {
		int e = errno;
		oerr_set("%s: cannot move the new database into place: %s", path, strerror(e));
		/* Someone else made it meanwhile (ENOTEMPTY/EEXIST): busy. */
		rc = e == ENOTEMPTY || e == EEXIST ? OMEN_EBUSY : OMEN_EIO;
		goto out_rm;
	}
	int fd = open(parent, O_RDONLY | O_DIRECTORY);
	if (fd < 0 || fsync(fd) != 0) {
		oerr_set("%s: syncing %s: %s", path, parent, strerror(errno));
		rc = OMEN_EIO;
	}
	if (fd >= 0)
		close(fd);
	goto out;
out_rm:
	rm_flat_dir(tmp);
out:
	free(tmp);
	free(parent);
	return rc;
}

static unsigned online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		n = 1;
	if (n > OSTORE_MAX_SHARDS)
		n = OSTORE_MAX_SHARDS;
	return (unsigned)n;
}

static int check_options(const omen_options *o, unsigned *qcap)
{
	if (o->durability != OMEN_DURABLE_WAL && o->durability != OMEN_DURABLE_SYNC) {
		oerr_set("omen_open: unknown durability %d", o->durability);
		return OMEN_EINVAL;
	}
	if (o->shards > OSTORE_MAX_SHARDS) {
		oerr_set("omen_open: %u shards (the most is %u)", o->shards, OSTORE_MAX_SHARDS);
		return OMEN_EINVAL;
	}
	if (o->rebalance_factor != o->rebalance_factor ||
	    (o->rebalance_factor > 0 && o->rebalance_factor < 1.1)) {
		oerr_set("omen_open: rebalance_factor %g (at least 1.1; 0 for the default, "
			 "< 0 for none)", o->rebalance_factor);
		return OMEN_EINVAL;
	}
	double w = o->temp_freq_weight, hot = o->temp_hot ? o->temp_hot : 0.8,
	       cold = o->temp_cold ? o->temp_cold : 0.3;
	if (!(w >= 0 && w <= 1)) {
		oerr_set("omen_open: temp_freq_weight %g (in (0, 1]; 0 for the default)", w);
		return OMEN_EINVAL;
	}
	if (!(cold > 0 && cold < hot && hot <= 1)) {
		oerr_set("omen_open: temp_cold %g, temp_hot %g (0 < temp_cold < temp_hot <= 1; "
			 "0 for the defaults 0.3 and 0.8)", o->temp_cold, o->temp_hot);
		return OMEN_EINVAL;
	}
	unsigned d = o->queue_depth ? o->queue_depth : DEFAULT_QUEUE_DEPTH;
	if (d > MAX_QUEUE_DEPTH) {
		oerr_set("omen_open: queue_depth %u (the most is %u)", d, MAX_QUEUE_DEPTH);
		return OMEN_EINVAL;
	}
	/* Capacity c holds c - 1 records: round depth + 1 up. */
	unsigned c = 2;
	while (c < d + 1)
		c *= 2;
	*qcap = c;
	return OMEN_OK;
}

int omen_open(const char *path, const omen_options *opts, omen_db **out)
{
	if (out)
		*out = NULL;
	if (!path || !out) {
		oerr_set("omen_open: NULL %s", !path ? "path" : "out");
		return OMEN_EINVAL;
	}
	omen_options o;
	omen_options_init(&o);
	if (opts)
		o = *opts;
	unsigned qcap;
	int rc = check_options(&o, &qcap);
	if (rc)
		return rc;
	size_t cache = 32u << 20;
	if (o.memory_budget) {
		cache = o.memory_budget / 4;
		if (cache < (8u << 20))
			cache = 8u << 20;
		if (cache > (1u << 30))
			cache = 1u << 30;
	}

	omen_db *db = calloc(1, sizeof(*db));
	if (!db || !(db->path = strdup(path))) {
		free(db);
		return OMEN_ENOMEM;
	}
	db->open_start_ns = odb_now_ns();
	ck_sequence_init(&db->layout_seq);
	pthread_mutex_init(&db->life, NULL);
	db->durability = o.durability;
	db->rebalance_factor = o.rebalance_factor == 0 ? 1.5 : o.rebalance_factor;
	atomic_flag_clear(&db->moving);
	db->nonblocking = o.nonblocking_ingest != 0;
	db->budget = o.memory_budget;

	/* An explicit shard count is checked against an existing database's
	 * family list before RocksDB opens it for writing, so a mismatch
	 * leaves the directory untouched. */
	rc = ostore_open_checked(path, o.shards, cache, false, meta_check_view, db, &db->store);
	if (rc == OMEN_ENOTFOUND && o.create_if_missing) {
		rc = create_db(path, o.shards ? o.shards : online_cpus(), cache);
		if (rc == OMEN_OK)
			rc = ostore_open(path, 0, cache, false, &db->store);
	}
	if (rc)
		goto fail;
	db->nshards = ostore_nshards(db->store);
	rc = load_layout(db);
	if (rc)
		goto fail;
	db->bootstrapping = db->root->bootstrap;
	atomic_init(&db->gate, db->bootstrapping ? 0 : 1);

	rc = OMEN_ENOMEM;
	db->shards = calloc(db->nshards, sizeof(oshard *));
	if (!db->shards)
		goto fail;
	for (unsigned i = 0; i < db->nshards; i++) {
		rc = oshard_create(db, i, qcap, &db->shards[i]);
		if (rc)
			goto fail;
	}
	if (!o.no_tracking) {
		otemp_params tp = {
			.sample_every = o.sample_every ? o.sample_every : 64,
			.freq_weight = o.temp_freq_weight ? o.temp_freq_weight : 0.6,
			.hot = o.temp_hot ? o.temp_hot : 0.8,
			.cold = o.temp_cold ? o.temp_cold : 0.3,
			.budget = db->budget,
		};
		rc = otemp_create(db, &tp, &db->temp);
		if (rc)
			goto fail;
		db->temp_serial = otemp_serial(db->temp);
		rc = otemp_start(db->temp);
		if (rc)
			goto fail;
	}
	/* Each worker rebuilds its tree from its family, in parallel and in
	 * the background: open does not wait (see "Rebuild" in engine.h). */
	for (unsigned i = 0; i < db->nshards && !rc; i++)
		rc = oshard_start(db->shards[i]);
	if (rc)
		goto fail_started;
	db->open_ns = odb_now_ns() - db->open_start_ns;
	oerr_clear();
	*out = db;
	return OMEN_OK;

fail_started:
	stop_workers(db);
fail:
	teardown(db); /* any part may be missing: each release takes NULL */
	return rc;
}

int omen_close(omen_db *db)
{
	if (!db) {
		oerr_set("omen_close: NULL handle");
		return OMEN_EINVAL;
	}
	pthread_mutex_lock(&db->life);
	if (is_closing(db)) {
		pthread_mutex_unlock(&db->life);
		return closed_error();
	}
	if (db->iters) {
		unsigned n = db->iters;
		pthread_mutex_unlock(&db->life);
		oerr_set("omen_close: %u iterator%s still open", n, n == 1 ? " is" : "s are");
		return OMEN_EBUSY;
	}
	atomic_store(&db->closing, 1);
	pthread_mutex_unlock(&db->life);

	/* After the grace period every call either saw `closing` or holds a
	 * users reference / has finished its push. */
	orcu_synchronize();
	for (unsigned i = 0; i < db->nshards; i++)
		oq_close(db->shards[i]->q);
	if (db->shards[0]->started)
		pthread_join(db->shards[0]->thread, NULL);
	for (unsigned i = 1; i < db->nshards; i++)
		if (db->shards[i]->started)
			pthread_join(db->shards[i]->thread, NULL);
	/* Every record is acknowledged; wait for the waiters to leave. */
	while (atomic_load_explicit(&db->users, memory_order_acquire) > 0)
		sched_yield();
	/* Everything is in the WAL already; flushing the memtables now makes
	 * the next open read table files instead of replaying the WAL.  A
	 * failure here loses nothing, so it is reported but the close
	 * completes. */
	int rc = ostore_flush(db->store);
	teardown(db);
	return rc == OMEN_OK ? OMEN_OK : OMEN_EIO;
}

/* ---------------------------------------------------------- submitting */

/*
 * Route a single-key record and queue it.  Blocks for room unless
 * nonblocking.  On OMEN_OK *shp is the shard it went to.
 */
static int submit_one(omen_db *db, orec *r, uint64_t key, bool nonblocking, oshard **shp)
{
	for (;;) {
		orcu_read_lock();
		if (is_closing(db)) {
			orcu_read_unlock();
			return closed_error();
		}
		const orm *m = ODB_DEREF(&db->root);
		oshard *sh = db->shards[orm_route(m, key)];
		int rc = oq_push(sh->q, r, true);
		orcu_read_unlock();
		if (rc == 0) {
			*shp = sh;
			return OMEN_OK;
		}
		if (rc == -ECANCELED)
			return closed_error();
		if (nonblocking)
			return OMEN_EAGAIN;
		/* Wait outside the section (never sleep inside one), then route
		 * again: the model may have changed meanwhile.  The caller
		 * holds a users reference, so the queue stays allocated. */
		if (oq_wait_room(sh->q) != 0)
			return closed_error();
	}
}

/* A synchronous single-key write: queue r and wait for its acknowledgement. */
static int write_sync(omen_db *db, orec *r)
{
	int rc = db_enter(db);
	if (rc)
		return rc;
	oshard *sh;
	rc = submit_one(db, r, r->key, false, &sh);
	if (rc == OMEN_OK) {
		oack_wait(&sh->ack, r, db->durability == OMEN_DURABLE_SYNC);
		rc = r->status;
		if (rc)
			oerr_set("write of key %llu failed: %s", (unsigned long long)r->key,
				 omen_strerror(rc));
	}
	db_leave(db);
	return rc;
}

int omen_put(omen_db *db, uint64_t key, const void *val, size_t len)
{
	if (!db) {
		oerr_set("omen_put: NULL handle");
		return OMEN_EINVAL;
	}
	int rc = check_value("omen_put", val, len);
	if (rc)
		return rc;
	orec r;
	memset(&r, 0, sizeof(r));
	r.kind = OREC_PUT;
	r.key = key;
	r.blob = oblob_new(val, len);
	if (!r.blob)
		return OMEN_ENOMEM;
	rc = write_sync(db, &r);
	if (rc == OMEN_ECLOSED || rc == OMEN_EAGAIN)
		oblob_free(r.blob); /* never queued */
	return rc;
}

int omen_delete(omen_db *db, uint64_t key)
{
	if (!db) {
		oerr_set("omen_delete: NULL handle");
		return OMEN_EINVAL;
	}
	orec r;
	memset(&r, 0, sizeof(r));
	r.kind = OREC_DEL;
	r.key = key;
	return write_sync(db, &r);
}

int omen_ingest(omen_db *db, uint64_t key, const void *val, size_t len)
{
	if (!db) {
		oerr_set("omen_ingest: NULL handle");
		return OMEN_EINVAL;
	}
	int rc = check_value("omen_ingest", val, len);
	if (rc)
		return rc;
	orec *r = orec_new_async();
	oblob *b = oblob_new(val, len);
	if (!r || !b) {
		orec_free(r);
		oblob_free(b);
		return OMEN_ENOMEM;
	}
	r->kind = OREC_PUT;
	r->key = key;
	r->blob = b;
	/* Fast path: one non-blocking push inside one read-side section, no
	 * shared counter touched. */
	orcu_read_lock();
	if (is_closing(db)) {
		orcu_read_unlock();
		rc = closed_error();
	} else {
		const orm *m = ODB_DEREF(&db->root);
		int prc = oq_push(db->shards[orm_route(m, key)]->q, r, true);
		orcu_read_unlock();
		if (prc == 0)
			return OMEN_OK;
		if (prc == -ECANCELED) {
			rc = closed_error();
		} else if (db->nonblocking) {
			rc = OMEN_EAGAIN;
		} else {
			/* Queue full: the slow path, holding a users reference. */
			rc = db_enter(db);
			if (rc == OMEN_OK) {
				oshard *sh;
				rc = submit_one(db, r, key, false, &sh);
				db_leave(db);
			}
		}
	}
	if (rc) {
		oblob_free(b);
		orec_free(r);
	}
	return rc;
}

/* A batch's operations as blobs, ready to be split by shard. */
static int batch_ops(const omen_batch *b, orec_op **out)
{
	orec_op *ops = malloc(b->n * sizeof(orec_op));
	if (!ops)
		return OMEN_ENOMEM;
	for (size_t i = 0; i < b->n; i++) {
		const struct obatch_op *o = &b->ops[i];
		ops[i].key = o->key;
		ops[i].blob = NULL;
		if (!o->del && !(ops[i].blob = oblob_new(b->data + o->off, o->len))) {
			for (size_t j = 0; j < i; j++)
				oblob_free(ops[j].blob);
			free(ops);
			return OMEN_ENOMEM;
		}
	}
	*out = ops;
	return OMEN_OK;
}

/*
 * Queue a batch as one multi record per shard it touches (records of one
 * shard stay in batch order), and, when wait, wait for all of them.  The
 * caller holds a users reference.
 */
static int submit_batch(omen_db *db, const omen_batch *b, bool wait)
{
	orec_op *ops;
	int rc = batch_ops(b, &ops);
	if (rc)
		return rc;
	size_t left = b->n, nsent = 0;
	unsigned *sidx = malloc(b->n * sizeof(unsigned));
	unsigned *cnt = calloc(db->nshards, sizeof(unsigned));
	orec **sent = malloc(b->n * sizeof(orec *));   /* at most one per op */
	oshard **sent_sh = malloc(b->n * sizeof(oshard *));
	if (!sidx || !cnt || !sent || !sent_sh) {
		rc = OMEN_ENOMEM;
		goto out;
	}
	while (left > 0) {
		oshard *blocked = NULL;
		orcu_read_lock();
		if (is_closing(db)) {
			orcu_read_unlock();
			rc = closed_error();
			break;
		}
		const orm *m = ODB_DEREF(&db->root);
		memset(cnt, 0, db->nshards * sizeof(unsigned));
		for (size_t i = 0; i < left; i++) {
			sidx[i] = orm_route(m, ops[i].key);
			cnt[sidx[i]]++;
		}
		size_t keep = 0;
		for (unsigned s = 0; s < db->nshards && !rc; s++) {
			if (!cnt[s])
				continue;
			orec *r = orec_new_async_multi(cnt[s]);
			if (!r) {
				rc = OMEN_ENOMEM;
				break;
			}
			r->async = !wait;
			uint32_t k = 0;
			for (size_t i = 0; i < left; i++)
				if (sidx[i] == s)
					r->ops[k++] = ops[i];
			int prc = blocked ? -EAGAIN : oq_push(db->shards[s]->q, r, true);
			if (prc == 0) {
				if (wait) {
					sent[nsent] = r;
					sent_sh[nsent] = db->shards[s];
				}
				nsent++;
				/* Mark these ops as gone (blob ownership moved). */
				for (size_t i = 0; i < left; i++)
					if (sidx[i] == s)
						sidx[i] = UINT_MAX;
			} else {
				orec_free(r); /* not its blobs: they are still in ops */
				if (prc == -ECANCELED)
					rc = closed_error();
				else
					blocked = db->shards[s];
			}
		}
		orcu_read_unlock();
		for (size_t i = 0; i < left; i++)
			if (sidx[i] != UINT_MAX)
				ops[keep++] = ops[i];
		left = keep;
		if (rc || left == 0)
			break;
		/* nonblocking_ingest concerns the ingest calls; omen_write
		 * waits for its acknowledgement anyway, so it waits for room. */
		if (!wait && db->nonblocking && nsent == 0) {
			rc = OMEN_EAGAIN;
			break;
		}
		if (oq_wait_room(blocked->q) != 0) {
			rc = closed_error();
			break;
		}
	}
out:
	for (size_t i = 0; i < left; i++)
		oblob_free(ops[i].blob);
	if (wait) {
		for (size_t i = 0; i < nsent; i++) {
			oack_wait(&sent_sh[i]->ack, sent[i], db->durability == OMEN_DURABLE_SYNC);
			if (!rc && sent[i]->status)
				rc = sent[i]->status;
			orec_free(sent[i]);
		}
	}
	free(ops);
	free(sidx);
	free(cnt);
	free(sent);
	free(sent_sh);
	return rc;
}

static int batch_call(omen_db *db, const omen_batch *b, bool wait, const char *fn)
{
	if (!db || !b) {
		oerr_set("%s: NULL %s", fn, !db ? "handle" : "batch");
		return OMEN_EINVAL;
	}
	int rc = db_enter(db);
	if (rc)
		return rc;
	if (b->n)
		rc = submit_batch(db, b, wait);
	db_leave(db);
	return rc;
}

int omen_write(omen_db *db, const omen_batch *b)
{
	return batch_call(db, b, true, "omen_write");
}

int omen_ingest_batch(omen_db *db, const omen_batch *b)
{
	return batch_call(db, b, false, "omen_ingest_batch");
}

/*
 * Queue one marker record (kind FLUSH or CTRL) on every shard that can
 * hold records (only shard 0 while the database bootstraps: the others
 * are at the gate and hold nothing), and wait for all of them.
 */
static int markers(omen_db *db, uint8_t kind, uint16_t ctrl, bool wait)
{
	int rc = db_enter(db);
	if (rc)
		return rc;
	unsigned n = db->nshards;
	/* Waited-for markers live here; the others are async records, freed
	 * by the worker. */
	orec *mine = wait ? calloc(n, sizeof(orec)) : NULL;
	orec **recs = calloc(n, sizeof(orec *));
	unsigned char *sent = calloc(n, 1);
	if ((wait && !mine) || !recs || !sent) {
		rc = OMEN_ENOMEM;
		goto out;
	}
	for (;;) {
		oshard *blocked = NULL;
		orcu_read_lock();
		if (is_closing(db)) {
			orcu_read_unlock();
			rc = closed_error();
			break;
		}
		const orm *m = ODB_DEREF(&db->root);
		unsigned upto = m->bootstrap ? 1 : n;
		for (unsigned s = 0; s < upto && !blocked && !rc; s++) {
			if (sent[s])
				continue;
			if (!recs[s])
				recs[s] = wait ? &mine[s] : orec_new_async();
			if (!recs[s]) {
				rc = OMEN_ENOMEM;
				break;
			}
			recs[s]->kind = kind;
			recs[s]->ctrl = ctrl;
			int prc = oq_push(db->shards[s]->q, recs[s], true);
			if (prc == 0)
				sent[s] = 1;
			else if (prc == -ECANCELED)
				rc = closed_error();
			else
				blocked = db->shards[s];
		}
		orcu_read_unlock();
		if (rc || !blocked)
			break;
		if (oq_wait_room(blocked->q) != 0) {
			rc = closed_error();
			break;
		}
	}
	for (unsigned s = 0; s < n && wait; s++) {
		if (!sent || !sent[s])
			continue;
		oack_wait(&db->shards[s]->ack, recs[s], db->durability == OMEN_DURABLE_SYNC);
		int e = atomic_exchange_explicit(&db->shards[s]->async_error, 0,
						 memory_order_relaxed);
		if (!rc && e) {
			oerr_set("shard %u: an ingested record could not be committed (%s)", s,
				 omen_strerror(e));
			rc = e == OMEN_ENOMEM ? OMEN_ENOMEM : OMEN_EIO;
		}
	}
out:
	for (unsigned s = 0; s < n && !wait && recs; s++)
		if (recs[s] && !sent[s])
			orec_free(recs[s]);
	free(mine);
	free(recs);
	free(sent);
	db_leave(db);
	return rc;
}

int omen_flush(omen_db *db)
{
	if (!db) {
		oerr_set("omen_flush: NULL handle");
		return OMEN_EINVAL;
	}
	return markers(db, OREC_FLUSH, 0, true);
}

/* --------------------------------------------------------------- reads */

/*
 * Read key's value from the family of the shard that owns it (outside any
 * read-side section: storage reads block).  Routed under the layout
 * sequence (engine.h): a move between the routing and the read would send
 * the read to a family the key has left, so a move meanwhile means again.
 */
static int read_stored(omen_db *db, uint64_t key, void *buf, size_t cap, size_t *len)
{
	for (;;) {
		orcu_read_lock();
		unsigned v = ck_sequence_read_begin(&db->layout_seq);
		unsigned s = orm_route(ODB_DEREF(&db->root), key);
		orcu_read_unlock();
		int rc = ostore_get(db->store, s, key, buf, cap, len);
		if (!ck_sequence_read_retry(&db->layout_seq, v))
			return rc;
	}
}

int omen_get(omen_db *db, uint64_t key, void *buf, size_t cap, size_t *len)
{
	if (!db || !len || (!buf && cap)) {
		oerr_set("omen_get: %s", !db ? "NULL handle" : !len ? "NULL len"
							     : "NULL buffer with a non-zero capacity");
		return OMEN_EINVAL;
	}
	orcu_read_lock();
	if (is_closing(db)) {
		orcu_read_unlock();
		return closed_error();
	}
	const orm *m = ODB_DEREF(&db->root);
	oshard *sh = db->shards[orm_route(m, key)];
	uint64_t p;
	if (!oshard_tree_ready(sh)) {
		/* Rebuilding: the family has every acknowledged write. */
		if (db->temp)
			otemp_read(db->temp, db->temp_serial, sh->id, key, false);
		goto storage;
	}
	if (!alex_lookup(sh->tree, key, &p)) {
		orcu_read_unlock();
		return OMEN_ENOTFOUND;
	}
	if (db->temp)
		otemp_read(db->temp, db->temp_serial, sh->id, key, oval_resident(p));
	if (oval_resident(p)) {
		const oblob *b = oval_blob(p);
		*len = b->len;
		int rc = OMEN_ERANGE;
		if (cap >= b->len) {
			if (b->len)
				memcpy(buf, b->data, b->len);
			rc = OMEN_OK;
		}
		orcu_read_unlock();
		return rc;
	}
	/* Not resident: read the family outside the section (storage reads
	 * block).  If a write to the key is in flight, the family may already
	 * hold it: the worker commits before it applies. */
storage:
	atomic_fetch_add_explicit(&db->users, 1, memory_order_relaxed);
	orcu_read_unlock();
	int rc = read_stored(db, key, buf, cap, len);
	db_leave(db);
	return rc;
}

/* ----------------------------------------------------------- iterators */

#define ITER_CHUNK 64
#define ITER_CHUNK_BYTES (256u << 10)

struct iter_ent {
	uint64_t key;
	size_t off;        /* resident: value bytes at buf + off */
	uint32_t len;
	bool resident;
};

struct omen_iter {
	omen_db *db;
	uint64_t next, hi;    /* the keys not yet fetched: [next, hi]  */
	bool done;            /* nothing left to fetch                 */
	struct iter_ent ents[ITER_CHUNK];
	size_t n, pos;
	unsigned char *buf;   /* the chunk's resident values           */
	size_t blen, bcap;
	unsigned char *val;   /* a non-resident value, read from storage */
	size_t vcap;
};

int omen_iter_open(omen_db *db, uint64_t lo, uint64_t hi, omen_iter **out)
{
	if (out)
		*out = NULL;
	if (!db || !out || lo > hi) {
		oerr_set("omen_iter_open: %s", !db ? "NULL handle" : !out ? "NULL out" : "lo > hi");
		return OMEN_EINVAL;
	}
	omen_iter *it = calloc(1, sizeof(*it));
	if (!it)
		return OMEN_ENOMEM;
	it->db = db;
	it->next = lo;
	it->hi = hi;
	pthread_mutex_lock(&db->life);
	if (is_closing(db)) {
		pthread_mutex_unlock(&db->life);
		free(it);
		return closed_error();
	}
	db->iters++;
	pthread_mutex_unlock(&db->life);
	*out = it;
	return OMEN_OK;
}

void omen_iter_close(omen_iter *it)
{
	if (!it)
		return;
	pthread_mutex_lock(&it->db->life);
	it->db->iters--;
	pthread_mutex_unlock(&it->db->life);
	free(it->buf);
	free(it->val);
	free(it);
}

static int buf_reserve(omen_iter *it, size_t more)
{
	return ogrow((void **)&it->buf, &it->bcap, it->blen + more, 1, 4096);
}

/* Append a value to the chunk's buffer as entry it->n; true when the
 * chunk is full. */
static int chunk_add(omen_iter *it, uint64_t k, const void *v, size_t len, bool *full)
{
	struct iter_ent *e = &it->ents[it->n];
	e->key = k;
	e->resident = true;
	if (buf_reserve(it, len))
		return OMEN_ENOMEM;
	e->off = it->blen;
	e->len = (uint32_t)len;
	if (len)
		memcpy(it->buf + it->blen, v, len);
	it->blen += len;
	*full = ++it->n == ITER_CHUNK || it->blen >= ITER_CHUNK_BYTES;
	return OMEN_OK;
}

/* A chunk of keys [it->next, end] of shard s from its tree, in the
 * caller's read-side section.  *last: the last key taken. */
static int fill_from_tree(omen_iter *it, const oshard *sh, uint64_t end, uint64_t *last,
			  bool *full)
{
	alex_iter ai;
	uint64_t k, p;
	alex_iter_seek(sh->tree, it->next, &ai);
	while (!*full && alex_iter_next(&ai, &k, &p) && k <= end) {
		*last = k;
		if (oval_resident(p)) {
			const oblob *b = oval_blob(p);
			int rc = chunk_add(it, k, b->data, b->len, full);
			if (rc)
				return rc;
		} else {
			/* Read from storage when it is returned. */
			it->ents[it->n] = (struct iter_ent){ .key = k, .resident = false };
			*full = ++it->n == ITER_CHUNK;
		}
	}
	return OMEN_OK;
}

/* The same from the shard's family, outside any read-side section: the
 * shard's tree is not ready (see "Rebuild" in shard/engine.h). */
static int fill_from_storage(omen_iter *it, unsigned s, uint64_t end, uint64_t *last,
			     bool *full)
{
	ostore_iter *si;
	int rc = ostore_iter_new(it->db->store, s, &si);
	if (rc)
		return rc;
	for (ostore_iter_seek(si, it->next); !rc && !*full && ostore_iter_valid(si);
	     ostore_iter_next(si)) {
		uint64_t k = ostore_iter_key(si);
		if (k > end)
			break;
		size_t len;
		const void *v = ostore_iter_value(si, &len);
		*last = k;
		rc = chunk_add(it, k, v, len, full);
	}
	if (!rc)
		rc = ostore_iter_status(si);
	ostore_iter_free(si);
	return rc;
}

/*
 * Fetch the next chunk: up to ITER_CHUNK keys of one shard, read in one
 * read-side section (or, while the shard rebuilds, from its family).
 * Each chunk starts from `next` (one past the last key fetched), so
 * chunks never overlap and keys come strictly ascending.
 */
static int iter_fill(omen_iter *it)
{
	omen_db *db = it->db;
	it->n = it->pos = it->blen = 0;
	while (!it->done && it->n == 0) {
		int rc = OMEN_OK;
		bool full = false;
		uint64_t k = 0;
		orcu_read_lock();
		unsigned v = ck_sequence_read_begin(&db->layout_seq);
		const orm *m = ODB_DEREF(&db->root);
		unsigned s = orm_route(m, it->next);
		uint64_t slo, shi;
		orm_range(m, s, &slo, &shi);
		uint64_t end = shi < it->hi ? shi : it->hi;
		const oshard *sh = db->shards[s];
		if (oshard_tree_ready(sh)) {
			rc = fill_from_tree(it, sh, end, &k, &full);
			orcu_read_unlock();
		} else {
			orcu_read_unlock();
			rc = fill_from_storage(it, s, end, &k, &full);
			if (!rc && ck_sequence_read_retry(&db->layout_seq, v)) {
				/* The layout moved under the read: again. */
				it->n = it->blen = 0;
				continue;
			}
		}
		if (rc)
			return rc;
		if (full) {
			if (k >= it->hi)
				it->done = true;
			else
				it->next = k + 1;
		} else if (end >= it->hi) {
			it->done = true;
		} else {
			it->next = end + 1;
		}
	}
	return OMEN_OK;
}

int omen_iter_next(omen_iter *it, uint64_t *key, const void **val, size_t *len)
{
	if (!it) {
		oerr_set("omen_iter_next: NULL iterator");
		return OMEN_EINVAL;
	}
	for (;;) {
		if (it->pos == it->n) {
			if (it->done)
				return OMEN_END;
			int rc = iter_fill(it);
			if (rc)
				return rc;
			if (it->n == 0)
				return OMEN_END;
		}
		struct iter_ent *e = &it->ents[it->pos++];
		const void *v;
		size_t l;
		if (e->resident) {
			v = it->buf + e->off;
			l = e->len;
		} else {
			int rc;
			for (;;) {
				rc = read_stored(it->db, e->key, it->val, it->vcap, &l);
				if (rc != OMEN_ERANGE)
					break;
				unsigned char *n = realloc(it->val, l);
				if (!n)
					return OMEN_ENOMEM;
				it->val = n;
				it->vcap = l;
			}
			if (rc == OMEN_ENOTFOUND)
				continue; /* deleted since the chunk was read */
			if (rc)
				return rc;
			v = it->val;
		}
		if (key)
			*key = e->key;
		if (val)
			*val = v;
		if (len)
			*len = l;
		return OMEN_OK;
	}
}

/* ---------------------------------------------------------- operations */

int omen_checkpoint(omen_db *db, const char *dir)
{
	if (!db || !dir) {
		oerr_set("omen_checkpoint: NULL %s", !db ? "handle" : "directory");
		return OMEN_EINVAL;
	}
	int rc = db_enter(db);
	if (rc)
		return rc;
	rc = ostore_checkpoint(db->store, dir);
	db_leave(db);
	return rc;
}

/* Bytes of regular files under path (two levels: RocksDB keeps its files
 * flat, with at most an archive directory). */
static uint64_t dir_bytes(const char *path, int depth)
{
	DIR *d = opendir(path);
	if (!d)
		return 0;
	uint64_t total = 0;
	struct dirent *e;
	char sub[4096];
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		struct stat st;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		if (lstat(sub, &st) != 0)
			continue;
		if (S_ISREG(st.st_mode))
			total += (uint64_t)st.st_size;
		else if (S_ISDIR(st.st_mode) && depth > 0)
			total += dir_bytes(sub, depth - 1);
	}
	closedir(d);
	return total;
}

static void shard_stats(const oshard *sh, omen_shard_stats *s)
{
	memset(s, 0, sizeof(*s));
	int state = atomic_load_explicit(&sh->tree_state, memory_order_acquire);
	if (state == OTREE_READY) {
		s->keys = alex_size(sh->tree);
		s->index_bytes = alex_memory_bytes(sh->tree);
		s->rebuild_us = sh->rebuild_ns / 1000;
	} else {
		/* The worker is filling the tree: do not read it. */
		s->keys = atomic_load_explicit(&sh->loaded, memory_order_relaxed);
		s->rebuilding = state == OTREE_BUILDING;
		s->storage_only = state == OTREE_STORAGE;
		if (state == OTREE_STORAGE)
			s->rebuild_us = sh->rebuild_ns / 1000;
	}
	s->value_bytes = atomic_load_explicit(&sh->value_bytes, memory_order_relaxed);
	s->resident_keys = atomic_load_explicit(&sh->resident_keys, memory_order_relaxed);
	s->evictions = atomic_load_explicit(&sh->evictions, memory_order_relaxed);
	s->readmissions = atomic_load_explicit(&sh->readmissions, memory_order_relaxed);
	orcu_read_lock();
	const otemp_plan *p = ODB_DEREF(&sh->plan);
	if (p) {
		s->hot_keys = p->hot;
		s->warm_keys = p->warm;
		s->cold_keys = p->cold;
	}
	orcu_read_unlock();
	s->queued = oq_depth(sh->q);
	s->batches = atomic_load_explicit(&sh->batches, memory_order_relaxed);
	s->records = atomic_load_explicit(&sh->records, memory_order_relaxed);
}

int omen_get_stats(omen_db *db, omen_stats *out)
{
	if (!db || !out) {
		oerr_set("omen_get_stats: NULL %s", !db ? "handle" : "out");
		return OMEN_EINVAL;
	}
	int rc = db_enter(db);
	if (rc)
		return rc;
	/* Exact counts need every tree: wait for the rebuilds (close stops
	 * them, so this cannot outlive the handle). */
	for (;;) {
		unsigned r = atomic_load_explicit(&db->ready, memory_order_acquire);
		if (r >= db->nshards)
			break;
		ofutex_wait(&db->ready, r, NULL);
	}
	memset(out, 0, sizeof(*out));
	out->shards = db->nshards;
	out->open_us = db->open_ns / 1000;
	out->moves = atomic_load_explicit(&db->moves, memory_order_relaxed);
	out->keys_moved = atomic_load_explicit(&db->keys_moved, memory_order_relaxed);
	out->move_us = atomic_load_explicit(&db->move_ns, memory_order_relaxed) / 1000;
	for (unsigned i = 0; i < db->nshards; i++) {
		omen_shard_stats s;
		shard_stats(db->shards[i], &s);
		out->keys += s.keys;
		out->index_bytes += s.index_bytes;
		out->value_bytes += s.value_bytes;
		out->queued += s.queued;
		out->batches += s.batches;
		out->records += s.records;
		out->storage_only += s.storage_only;
		out->hot_keys += s.hot_keys;
		out->warm_keys += s.warm_keys;
		out->cold_keys += s.cold_keys;
		out->resident_keys += s.resident_keys;
		out->evictions += s.evictions;
		out->readmissions += s.readmissions;
		if (s.rebuild_us > out->rebuild_us)
			out->rebuild_us = s.rebuild_us;
	}
	out->memory_budget = db->budget;
	if (db->temp)
		otemp_counts(db->temp, &out->reads_memory, &out->reads_storage, &out->samples,
			     &out->dropped_samples);
	out->disk_bytes = dir_bytes(db->path, 1);
	db_leave(db);
	return OMEN_OK;
}

int omen_get_shard_stats(omen_db *db, unsigned shard, omen_shard_stats *out)
{
	if (!db || !out || shard >= db->nshards) {
		oerr_set("omen_get_shard_stats: %s", !db ? "NULL handle" : !out ? "NULL out"
										 : "no such shard");
		return OMEN_EINVAL;
	}
	int rc = db_enter(db);
	if (rc)
		return rc;
	memset(out, 0, sizeof(*out));
	shard_stats(db->shards[shard], out);
	orcu_read_lock();
	orm_range(ODB_DEREF(&db->root), shard, &out->lo, &out->hi);
	orcu_read_unlock();
	db_leave(db);
	return OMEN_OK;
}

/* ---------------------------------------------------------- verify */

int omen_verify(omen_db *db, omen_verify_report *report)
{
	if (report)
		memset(report, 0, sizeof(*report));
	if (!db) {
		oerr_set("omen_verify: NULL handle");
		return OMEN_EINVAL;
	}
	int rc = db_enter(db);
	if (rc)
		return rc;
	/* One command per shard, each run by its worker (markers() sends to
	 * shard 0 alone while a new database bootstraps: the other shards are
	 * empty then, and their workers wait at the gate). */
	unsigned upto = 1;
	orcu_read_lock();
	if (!ODB_DEREF(&db->root)->bootstrap)
		upto = db->nshards;
	orcu_read_unlock();
	rc = markers(db, OREC_CTRL, OCTRL_VERIFY, true);
	uint64_t keys = 0, problems = 0;
	const oshard *bad = NULL;
	for (unsigned i = 0; i < upto && rc == OMEN_OK; i++) {
		const oshard *sh = db->shards[i];
		keys += sh->verify_keys;
		problems += sh->verify_problems;
		if (sh->verify_status && !bad)
			bad = sh;
	}
	if (rc == OMEN_OK && bad) {
		oerr_set("%s: %s%s", db->path, bad->verify_msg,
			 problems > 1 ? " (and more problems)" : "");
		rc = bad->verify_status == OMEN_ECORRUPT || bad->verify_status == OMEN_EIO
			     ? bad->verify_status
			     : OMEN_EIO;
	}
	if (report) {
		report->keys = keys;
		report->problems = problems;
	}
	db_leave(db);
	return rc;
}

/* ---------------------------------------------------------- test hooks */

int odb_test_evict_all(omen_db *db)
{
	return markers(db, OREC_CTRL, OCTRL_EVICT_ALL, true);
}

int odb_test_pause(omen_db *db)
{
	atomic_store_explicit(&db->test_release, 0, memory_order_release);
	int rc = markers(db, OREC_CTRL, OCTRL_PAUSE, false);
	/* Return once every worker sleeps (a bootstrapping database pauses
	 * shard 0 only), so that nothing queued from now on is applied. */
	unsigned want = ODB_DEREF(&db->root)->bootstrap ? 1 : db->nshards;
	while (!rc && atomic_load_explicit(&db->test_paused, memory_order_acquire) < want)
		sched_yield();
	return rc;
}

void odb_test_release(omen_db *db)
{
	atomic_store_explicit(&db->test_release, 1, memory_order_release);
	ofutex_wake(&db->test_release, INT_MAX);
}

bool odb_test_closing(omen_db *db)
{
	return is_closing(db);
}
