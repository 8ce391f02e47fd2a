/*
 * core/rcu.h — the engine's use of liburcu, kept out of every caller's sight.
 *
 * Flavour: urcu-memb.  Its read side is a thread-local counter update with
 * compiler barriers only (the writer side pays with the membarrier system
 * call), and unlike qsbr it needs no quiescent-state announcements from
 * threads we do not own.  _LGPL_SOURCE inlines the read-side fast paths
 * (short functions, which the LGPL lets us inline); not under TSan, where
 * the inlined code's volatile accesses to liburcu's globals would be
 * instrumented and reported (the library itself is not instrumented).
 *
 * Registration is lazy and invisible: the first orcu_read_lock() (or
 * orcu_call()) of a thread registers it with liburcu, and a pthread key
 * destructor unregisters it when the thread exits.  Callers never see
 * liburcu.
 *
 * ThreadSanitizer cannot see the grace period: liburcu 0.13 is not built
 * with it and orders readers against reclaimers with membarrier.  Under
 * OMEN_TSAN every read-side unlock and every orcu_call "releases" a token
 * and every reclaimer "acquires" it (orcu_tsan_quiesced), which is exactly
 * what a grace period guarantees: the reclaimer runs after every reader
 * that could still hold the object has left its section, and after the
 * retiring writer's last access.  Outside TSan builds these are no-ops.
 * core/rcu.c also gives TSan a default suppression for allocations made
 * and freed inside liburcu itself (its internal hand-offs are invisible).
 *
 * Thread safety: every function may be called from any thread, except as
 * noted on orcu_barrier.
 */
#ifndef OMEN_CORE_RCU_H
#define OMEN_CORE_RCU_H

#include <stdbool.h>

#if !defined(_LGPL_SOURCE) && !defined(OMEN_TSAN)
#define _LGPL_SOURCE
#endif
#include <urcu/urcu-memb.h>

#ifdef OMEN_TSAN
#include <sanitizer/tsan_interface.h>
extern char orcu_tsan_token;
#define ORCU_TSAN_RELEASE() __tsan_release(&orcu_tsan_token)
#define ORCU_TSAN_ACQUIRE() __tsan_acquire(&orcu_tsan_token)
#else
#define ORCU_TSAN_RELEASE() ((void)0)
#define ORCU_TSAN_ACQUIRE() ((void)0)
#endif

/* Non-zero once the calling thread is registered.  initial-exec: a plain
 * %fs-relative load, no __tls_get_addr call, even inside libomendb.so. */
extern __thread int orcu_online __attribute__((tls_model("initial-exec")));

/* Register the calling thread with liburcu (slow path of orcu_register). */
void orcu_register_slow(void);

/* Make sure the calling thread is registered.  Idempotent and cheap. */
static inline void orcu_register(void)
{
	if (__builtin_expect(!orcu_online, 0))
		orcu_register_slow();
}

/*
 * Enter / leave a read-side section.  Sections nest.  Inside one, every
 * node reached through an RCU-published pointer stays allocated.  Keep
 * sections short and never block inside one (no I/O, no waiting on the
 * writer): reclamation of the whole process waits for them.
 */
static inline void orcu_read_lock(void)
{
	orcu_register();
	urcu_memb_read_lock();
}

static inline void orcu_read_unlock(void)
{
	ORCU_TSAN_RELEASE();
	urcu_memb_read_unlock();
}

/* True inside a read-side section of the calling thread. */
static inline bool orcu_read_held(void)
{
	return orcu_online && urcu_memb_read_ongoing();
}

/*
 * Run fn(head) after a grace period, on liburcu's call_rcu thread: every
 * read-side section that could have reached the object has ended by then.
 * The object must already be unreachable for new readers (unpublished)
 * when this is called.
 */
void orcu_call(struct rcu_head *head, void (*fn)(struct rcu_head *));

/*
 * Wait until every callback queued by orcu_call before this call (by any
 * thread) has run.  Never from inside a read-side section or from a
 * callback (liburcu deadlocks).
 */
void orcu_barrier(void);

/* Wait for a grace period.  Never from inside a read-side section. */
void orcu_synchronize(void);

/* Call at the start of a reclamation callback (see the TSan note above). */
static inline void orcu_tsan_quiesced(void)
{
	ORCU_TSAN_ACQUIRE();
}

#endif
