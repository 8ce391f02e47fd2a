/*
 * core/rcu.c — lazy registration with liburcu (see rcu.h).
 */
#include "core/rcu.h"
#include "core/tsan_suppressions.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

__thread int orcu_online __attribute__((tls_model("initial-exec")));

#ifdef OMEN_TSAN
char orcu_tsan_token;

/*
 * TSan default suppressions for the uninstrumented libraries the engine
 * links, whose internal hand-offs TSan cannot see:
 *  - liburcu allocates and frees its own bookkeeping (call_rcu queues,
 *    rcu_barrier records) in different threads, ordered by its own atomics;
 *  - RocksDB (shard/store.c) hands one thread's WriteBatch to the
 *    write-group leader, which copies it into the WAL and the memtables,
 *    and readers compare memtable keys, all ordered by RocksDB's atomics
 *    (its memcpy/memcmp come from librocksdb or from libstdc++ under it;
 *    our code is C, so the libstdc++ entry hides RocksDB only).
 * Only interceptor calls made from those libraries are suppressed: our
 * nodes are freed by our own callbacks and stay checked.  TSan looks this
 * hook up by name in the executable, so it lives here, in the object every
 * engine program links (core/ is linked statically into the tests).
 */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
	return OMEN_TSAN_SUPPRESSIONS;
}
#endif

static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

/* Runs at thread exit for every thread that registered (the key's value is
 * non-NULL exactly for those).  A thread exits outside any read-side
 * section, so unregistering here is legal. */
static void on_thread_exit(void *arg)
{
	(void)arg;
	urcu_memb_unregister_thread();
	orcu_online = 0;
}

static void make_exit_key(void)
{
	if (pthread_key_create(&exit_key, on_thread_exit) != 0) {
		/* Without the key, exiting threads would stay registered and
		 * grace periods would wait on dead readers' counters. */
		fputs("omendb: pthread_key_create failed; cannot track RCU readers\n", stderr);
		abort();
	}
}

void orcu_register_slow(void)
{
	pthread_once(&exit_key_once, make_exit_key);
	urcu_memb_register_thread();
	/* Any non-NULL value arms the destructor. */
	if (pthread_setspecific(exit_key, &orcu_online) != 0) {
		fputs("omendb: pthread_setspecific failed; cannot track RCU readers\n", stderr);
		abort();
	}
	orcu_online = 1;
}

void orcu_call(struct rcu_head *head, void (*fn)(struct rcu_head *))
{
	/* call_rcu enters a read-side section itself: registered threads only. */
	orcu_register();
	ORCU_TSAN_RELEASE(); /* the retiring thread's accesses precede fn */
	urcu_memb_call_rcu(head, fn);
}

void orcu_barrier(void)
{
	orcu_register();
	urcu_memb_barrier();
}

void orcu_synchronize(void)
{
	orcu_register();
	urcu_memb_synchronize_rcu();
	/* Every section that began before the call has ended: the caller may
	 * now free what those sections could reach (see the TSan note). */
	orcu_tsan_quiesced();
}
