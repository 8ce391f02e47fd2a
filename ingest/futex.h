/*
 * ingest/futex.h — the two futex calls the ingest path sleeps and wakes
 * with (private futexes: the words never leave the process).
 */
#ifndef OMEN_INGEST_FUTEX_H
#define OMEN_INGEST_FUTEX_H

#include <linux/futex.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Sleep while *word == seen (rel: timeout, NULL for none).  EAGAIN (the
 * word moved), EINTR and ETIMEDOUT all mean "look again": callers re-check
 * their condition in a loop. */
static inline void ofutex_wait(atomic_uint *word, unsigned seen, const struct timespec *rel)
{
	syscall(SYS_futex, (unsigned *)word, FUTEX_WAIT_PRIVATE, seen, rel, NULL, 0);
}

/* Wake up to n sleepers on word. */
static inline void ofutex_wake(atomic_uint *word, int n)
{
	syscall(SYS_futex, (unsigned *)word, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}

#endif
