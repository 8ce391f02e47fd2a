/*
 * tests/test_build.c — the public header compiles on its own.
 *
 * omendb.h is the first and only project header included here, this
 * program is built without config.h and without our internal include paths,
 * with -std=c99 -pedantic-errors, and it links nothing of ours: anything
 * the header forgets to include, or any C11/GNU feature it leaks into
 * applications, fails the build.  The checks themselves are compile-time;
 * the TAP output only reports that the build succeeded.
 */
#include <omendb.h>

#include <stdio.h>

/* C99 has no _Static_assert: a negative array size fails the build. */
#define BUILD_ASSERT(name, cond) typedef char build_assert_##name[(cond) ? 1 : -1]

BUILD_ASSERT(ok_is_zero, OMEN_OK == 0);
BUILD_ASSERT(codes_negative, OMEN_ENOTFOUND < 0 && OMEN_EINVAL < 0 && OMEN_ERANGE < 0 &&
			     OMEN_ENOMEM < 0 && OMEN_EIO < 0 && OMEN_ECORRUPT < 0 &&
			     OMEN_EBUSY < 0 && OMEN_EAGAIN < 0 && OMEN_ECLOSED < 0 &&
			     OMEN_END < 0);
BUILD_ASSERT(version_numeric, OMEN_VERSION_MAJOR >= 0 && OMEN_VERSION_MINOR >= 0 &&
			      OMEN_VERSION_PATCH >= 0);

/* Redeclaring with the promised types fails to compile if the header
 * declares anything else; a declaration needs no linking. */
const char *omen_strerror(int code);
const char *omen_errmsg(void);
const char *omen_version(void);

int main(void)
{
	printf("1..1\n");
	printf("ok 1 - omendb.h compiles alone (C99, pedantic) as version %d.%d.%d\n",
	       OMEN_VERSION_MAJOR, OMEN_VERSION_MINOR, OMEN_VERSION_PATCH);
	return 0;
}
