/*
 * shard/errors.c — error names, the per-thread detailed message, and the
 * library version string.
 *
 * The detailed message lives in a _Thread_local buffer: no lock, no
 * allocation, and nothing to clean up at thread exit.  A thread that never
 * failed reads the zero-initialised buffer, i.e. the empty string, which is
 * how omen_errmsg() keeps its promise never to return NULL.
 */
#include <stdarg.h>
#include <stdio.h>

#include "omendb.h"
#include "shard/errors.h"

/* The per-thread message; owner thread only. */
static _Thread_local char oerr_msg[OERR_MSG_MAX];

/* Indexed by -code.  Every entry distinct: tests/test_errors checks it. */
static const char *const oerr_names[] = {
	[-OMEN_OK]        = "success",
	[-OMEN_ENOTFOUND] = "key or database not found",
	[-OMEN_EINVAL]    = "invalid argument",
	[-OMEN_ERANGE]    = "buffer too small",
	[-OMEN_ENOMEM]    = "out of memory",
	[-OMEN_EIO]       = "storage I/O error",
	[-OMEN_ECORRUPT]  = "corrupt data or metadata",
	[-OMEN_EBUSY]     = "database already open",
	[-OMEN_EAGAIN]    = "ingest queue full, try again",
	[-OMEN_ECLOSED]   = "database closed",
	[-OMEN_END]       = "end of iteration",
};

#define OERR_NCODES ((int)(sizeof(oerr_names) / sizeof(oerr_names[0])))

const char *omen_strerror(int code)
{
	/* Compare before negating: -INT_MIN would overflow. */
	if (code > 0 || code <= -OERR_NCODES || oerr_names[-code] == NULL)
		return "unknown error code";
	return oerr_names[-code];
}

const char *omen_errmsg(void)
{
	return oerr_msg;
}

/* Two levels so the macro values, not their names, are stringified. */
#define OERR_STR_(x) #x
#define OERR_STR(x) OERR_STR_(x)

const char *omen_version(void)
{
	return OERR_STR(OMEN_VERSION_MAJOR) "." OERR_STR(OMEN_VERSION_MINOR) "."
	       OERR_STR(OMEN_VERSION_PATCH);
}

void oerr_set(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(oerr_msg, sizeof(oerr_msg), fmt, ap) < 0)
		oerr_msg[0] = '\0';
	va_end(ap);
}

void oerr_clear(void)
{
	oerr_msg[0] = '\0';
}
