/*
 * tests/lib/tap.h — a tiny header-only producer of TAP (the Test Anything
 * Protocol, version 12), read by automake's tap-driver.sh under `make check`.
 *
 *	#include "tests/lib/tap.h"
 *
 *	int main(void)
 *	{
 *		plan(2);                           (or plan_no_plan())
 *		ok(x == 1, "x is one");
 *		is_u64(count, 42, "count after %d inserts", 42);
 *		return done_testing();
 *	}
 *
 * Output goes to stdout: "1..N", "ok N - description", "not ok N - ...",
 * and "# " comment lines for diagnostics (kept in the test's .log file).
 * A failed check prints where it failed and, for is_*, both values.
 *
 * Every check takes a printf-style description (required, may be "").
 * Checks return their condition so a test can react:
 *	if (!ok(p != NULL, "alloc")) bail_out("cannot go on");
 *
 * State is static in this header: one test program per binary, checks made
 * from one thread at a time.  Everything is static inline so units that
 * include it and use only part of it stay warning-free.
 */
#ifndef OMEN_TESTS_TAP_H
#define OMEN_TESTS_TAP_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__)
#define TAP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define TAP_NORETURN __attribute__((noreturn))
#else
#define TAP_PRINTF(f, a)
#define TAP_NORETURN
#endif

static struct {
	long planned;   /* -1: no plan yet; 0: plan_no_plan(); > 0: plan(n) */
	long run;       /* checks made so far (the last test number)       */
	long failed;    /* checks that failed                              */
} tap_state = { -1, 0, 0 };

TAP_PRINTF(1, 0)
static inline void tap_vcomment(const char *fmt, va_list ap)
{
	char buf[1024];
	const char *line = buf;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	/* One "# " per line so multi-line text stays a TAP comment. */
	for (;;) {
		const char *nl = strchr(line, '\n');
		int len = nl ? (int)(nl - line) : (int)strlen(line);

		printf("# %.*s\n", len, line);
		if (!nl || nl[1] == '\0')
			break;
		line = nl + 1;
	}
	fflush(stdout);
}

/* Print a diagnostic comment.  Always returns 0 (handy in expressions). */
static inline int diag(const char *fmt, ...) TAP_PRINTF(1, 2);
static inline int diag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vcomment(fmt, ap);
	va_end(ap);
	return 0;
}

/* Announce n checks.  Call once, before the first check. */
static inline void plan(long n)
{
	tap_state.planned = n;
	printf("1..%ld\n", n);
	fflush(stdout);
}

/* The number of checks is not known up front: done_testing() prints it. */
static inline void plan_no_plan(void)
{
	tap_state.planned = 0;
}

/* Skip the whole program (before any plan or check); exits with status 0. */
static inline TAP_NORETURN void skip_all(const char *reason)
{
	printf("1..0 # SKIP %s\n", reason);
	fflush(stdout);
	exit(0);
}

/* Abort the run: the harness reports an error for this program. */
static inline TAP_NORETURN void bail_out(const char *fmt, ...) TAP_PRINTF(1, 2);
static inline TAP_NORETURN void bail_out(const char *fmt, ...)
{
	va_list ap;

	fputs("Bail out! ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputs("\n", stdout);
	fflush(stdout);
	exit(1);
}

/* Record one check; the test number is the count of checks so far. */
TAP_PRINTF(4, 0)
static inline int tap_vresult(int pass, const char *file, int line,
			      const char *fmt, va_list ap)
{
	char desc[512];

	vsnprintf(desc, sizeof(desc), fmt, ap);
	tap_state.run++;
	if (!pass)
		tap_state.failed++;
	printf("%sok %ld%s%s\n", pass ? "" : "not ", tap_state.run,
	       desc[0] ? " - " : "", desc);
	if (!pass)
		printf("#   Failed test at %s line %d\n", file, line);
	fflush(stdout);
	return pass;
}

static inline int tap_ok_at(const char *file, int line, int pass, const char *fmt, ...)
	TAP_PRINTF(4, 5);
static inline int tap_ok_at(const char *file, int line, int pass, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap_vresult(pass, file, line, fmt, ap);
	va_end(ap);
	return pass;
}

static inline int tap_is_u64_at(const char *file, int line, uint64_t got, uint64_t expected,
				const char *fmt, ...) TAP_PRINTF(5, 6);
static inline int tap_is_u64_at(const char *file, int line, uint64_t got, uint64_t expected,
				const char *fmt, ...)
{
	int pass = got == expected;
	va_list ap;

	va_start(ap, fmt);
	tap_vresult(pass, file, line, fmt, ap);
	va_end(ap);
	if (!pass) {
		printf("#          got: %" PRIu64 " (0x%" PRIx64 ")\n", got, got);
		printf("#     expected: %" PRIu64 " (0x%" PRIx64 ")\n", expected, expected);
		fflush(stdout);
	}
	return pass;
}

static inline int tap_is_int_at(const char *file, int line, long long got, long long expected,
				const char *fmt, ...) TAP_PRINTF(5, 6);
static inline int tap_is_int_at(const char *file, int line, long long got, long long expected,
				const char *fmt, ...)
{
	int pass = got == expected;
	va_list ap;

	va_start(ap, fmt);
	tap_vresult(pass, file, line, fmt, ap);
	va_end(ap);
	if (!pass) {
		printf("#          got: %lld\n", got);
		printf("#     expected: %lld\n", expected);
		fflush(stdout);
	}
	return pass;
}

static inline int tap_is_str_at(const char *file, int line, const char *got,
				const char *expected, const char *fmt, ...) TAP_PRINTF(5, 6);
static inline int tap_is_str_at(const char *file, int line, const char *got,
				const char *expected, const char *fmt, ...)
{
	int pass = (got == NULL || expected == NULL) ? got == expected
						     : strcmp(got, expected) == 0;
	va_list ap;

	va_start(ap, fmt);
	tap_vresult(pass, file, line, fmt, ap);
	va_end(ap);
	if (!pass) {
		printf("#          got: %s%s%s\n", got ? "\"" : "", got ? got : "NULL",
		       got ? "\"" : "");
		printf("#     expected: %s%s%s\n", expected ? "\"" : "",
		       expected ? expected : "NULL", expected ? "\"" : "");
		fflush(stdout);
	}
	return pass;
}

/* ok(cond, fmt, ...): pass when cond is true. */
#define ok(cond, ...) tap_ok_at(__FILE__, __LINE__, !!(cond), __VA_ARGS__)
/* is_u64(got, expected, fmt, ...): compared as uint64_t; prints both on failure. */
#define is_u64(got, expected, ...) \
	tap_is_u64_at(__FILE__, __LINE__, (uint64_t)(got), (uint64_t)(expected), __VA_ARGS__)
/* is_int(got, expected, fmt, ...): compared as long long; prints both on failure. */
#define is_int(got, expected, ...) \
	tap_is_int_at(__FILE__, __LINE__, (long long)(got), (long long)(expected), __VA_ARGS__)
/* is_str(got, expected, fmt, ...): strcmp equality (NULL equals only NULL). */
#define is_str(got, expected, ...) \
	tap_is_str_at(__FILE__, __LINE__, (got), (expected), __VA_ARGS__)

/* Record n checks as skipped (they pass), e.g. when an optional peer is absent. */
static inline void skip(long n, const char *reason)
{
	while (n-- > 0) {
		tap_state.run++;
		printf("ok %ld # skip %s\n", tap_state.run, reason);
	}
	fflush(stdout);
}

/*
 * Finish: print the plan if it was deferred, report a plan mismatch, and
 * return the exit status for main(): 0 when every check passed and the
 * number of checks matches the plan, 1 otherwise.
 */
static inline int done_testing(void)
{
	if (tap_state.planned <= 0) {
		printf("1..%ld\n", tap_state.run);
		tap_state.planned = tap_state.run;
	}
	if (tap_state.run != tap_state.planned)
		diag("Looks like you planned %ld tests but ran %ld.", tap_state.planned,
		     tap_state.run);
	if (tap_state.failed)
		diag("Looks like you failed %ld test%s of %ld.", tap_state.failed,
		     tap_state.failed == 1 ? "" : "s", tap_state.run);
	fflush(stdout);
	return tap_state.failed == 0 && tap_state.run == tap_state.planned ? 0 : 1;
}

#endif
