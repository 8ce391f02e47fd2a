/*
 * omendb.h — the public API of OmenDB, an embedded key-value storage engine.
 *
 * This header is the whole API: anything not declared here is internal and
 * may change without notice.  Every function declared here is safe to call
 * from any thread at any time unless its comment says otherwise.
 *
 * Error convention: functions that can fail return OMEN_OK (0) or one of the
 * negative OMEN_E* codes below.  omen_strerror() names a code;
 * omen_errmsg() returns the calling thread's last detailed message (for
 * example the storage layer's own text behind an OMEN_EIO).
 *
 * This release exposes the error space and version queries only.  The
 * database handle, options, writes, reads, batches, ingest and iteration
 * arrive with the sharded engine.
 */
#ifndef OMENDB_H
#define OMENDB_H

/*
 * Version of this header.  The build system reads these three lines to set
 * the package version, so they are the single place to change it (then
 * rerun autoreconf: tests/test_errors fails until configure agrees).
 * omen_version() returns the version of the library actually loaded, which
 * differs from these when a program runs against another build.
 */
#define OMEN_VERSION_MAJOR 0
#define OMEN_VERSION_MINOR 1
#define OMEN_VERSION_PATCH 0

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Error codes.  Every failure is negative; OMEN_OK is the only success code.
 * The values are part of the ABI and never change.  Future releases may add
 * codes: treat an unknown negative value as a generic failure.
 */
#define OMEN_OK          0   /* success                                             */
#define OMEN_ENOTFOUND (-1)  /* get: the key is absent; open: the directory is
                                missing and create_if_missing is 0                 */
#define OMEN_EINVAL    (-2)  /* bad argument: NULL handle or pointer, value too
                                large, lo > hi, ...                                */
#define OMEN_ERANGE    (-3)  /* get: the caller's buffer is too small; *len holds
                                the size needed                                    */
#define OMEN_ENOMEM    (-4)  /* an allocation failed                                */
#define OMEN_EIO       (-5)  /* the storage layer failed; omen_errmsg() has its text */
#define OMEN_ECORRUPT  (-6)  /* on-disk data or metadata failed validation          */
#define OMEN_EBUSY     (-7)  /* the directory is already open (in this or another
                                process)                                           */
#define OMEN_EAGAIN    (-8)  /* non-blocking ingest: the shard's queue is full,
                                retry later                                        */
#define OMEN_ECLOSED   (-9)  /* the database is closing or closed                  */
#define OMEN_END      (-10)  /* iterator exhausted (not a failure of the call)      */

/*
 * omen_strerror — a short, static, human-readable description of an error
 * code, e.g. "key not found" for OMEN_ENOTFOUND.  Each code has its own
 * description; a value that is not a known code (including positive values)
 * gets a generic "unknown error code" description.
 *
 * Never returns NULL.  The string is constant: do not free or modify it.
 * Thread-safety: any thread, any time (no state).  Errors: none.
 */
const char *omen_strerror(int code);

/*
 * omen_errmsg — the calling thread's last detailed error message: the text
 * that a failing OmenDB call on this thread left behind (for OMEN_EIO, the
 * storage layer's own message).  Calls that succeed may leave an older
 * message in place, so read it right after the failing call.
 *
 * Never returns NULL: the empty string when this thread has nothing to say.
 * The string belongs to the calling thread; it stays valid until that
 * thread's next OmenDB call or its exit.  Do not free it.
 * Thread-safety: any thread, any time; each thread sees only its own
 * message.  Errors: none.
 */
const char *omen_errmsg(void);

/*
 * omen_version — the version of the loaded library as "MAJOR.MINOR.PATCH".
 *
 * Never returns NULL.  The string is constant: do not free or modify it.
 * Thread-safety: any thread, any time (no state).  Errors: none.
 */
const char *omen_version(void);

#ifdef __cplusplus
}
#endif

#endif /* OMENDB_H */
