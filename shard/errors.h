/*
 * shard/errors.h — the per-thread detailed error message behind
 * omen_errmsg().  Internal: not installed, and not exported from the shared
 * library (libomendb.so exports only omen_* symbols).
 *
 * Pattern at a failing API boundary:
 *
 *	oerr_set("value of %zu bytes exceeds the maximum of %u", len, max);
 *	return OMEN_EINVAL;
 *
 * Foreign errors (RocksDB's char *errptr) are translated once, at the
 * boundary, by copying their text here and releasing the original with that
 * library's own free function.
 */
#ifndef OMEN_SHARD_ERRORS_H
#define OMEN_SHARD_ERRORS_H

/* Capacity of the per-thread message, terminator included; longer messages
 * are truncated. */
#define OERR_MSG_MAX 512

#if defined(__GNUC__)
#define OERR_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define OERR_PRINTF(f, a)
#endif

/*
 * Replace the calling thread's message with the formatted text.
 * Thread-safety: any thread; touches only the caller's thread-local buffer.
 * Never fails (a formatting error leaves an empty message).
 */
void oerr_set(const char *fmt, ...) OERR_PRINTF(1, 2);

/* Empty the calling thread's message.  Any thread. */
void oerr_clear(void);

#endif
