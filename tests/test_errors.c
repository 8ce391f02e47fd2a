/*
 * tests/test_errors.c — the error space through the public API only
 * (links libomendb, includes nothing but <omendb.h> and the TAP header).
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <omendb.h>

#include "tests/lib/tap.h"

static const struct {
	int code;
	const char *name;
} codes[] = {
	{ OMEN_OK, "OMEN_OK" },
	{ OMEN_ENOTFOUND, "OMEN_ENOTFOUND" },
	{ OMEN_EINVAL, "OMEN_EINVAL" },
	{ OMEN_ERANGE, "OMEN_ERANGE" },
	{ OMEN_ENOMEM, "OMEN_ENOMEM" },
	{ OMEN_EIO, "OMEN_EIO" },
	{ OMEN_ECORRUPT, "OMEN_ECORRUPT" },
	{ OMEN_EBUSY, "OMEN_EBUSY" },
	{ OMEN_EAGAIN, "OMEN_EAGAIN" },
	{ OMEN_ECLOSED, "OMEN_ECLOSED" },
	{ OMEN_END, "OMEN_END" },
};
#define NCODES (sizeof(codes) / sizeof(codes[0]))

/* The values API.md fixes: they are ABI. */
static void test_values(void)
{
	for (size_t i = 0; i < NCODES; i++)
		is_int(codes[i].code, -(int)i, "%s == %d", codes[i].name, -(int)i);
}

static void test_strerror(void)
{
	const char *unknown = omen_strerror(-1000);
	int distinct = 1;

	ok(unknown != NULL && unknown[0] != '\0', "unknown code has a description");
	for (size_t i = 0; i < NCODES; i++) {
		const char *s = omen_strerror(codes[i].code);

		ok(s != NULL && s[0] != '\0' && strcmp(s, unknown) != 0,
		   "omen_strerror(%s) = \"%s\"", codes[i].name, s ? s : "(null)");
		for (size_t j = 0; s && j < i; j++)
			if (strcmp(s, omen_strerror(codes[j].code)) == 0) {
				diag("%s and %s share \"%s\"", codes[i].name, codes[j].name, s);
				distinct = 0;
			}
	}
	ok(distinct, "every code has its own description");

	is_str(omen_strerror(1), unknown, "positive value is unknown");
	is_str(omen_strerror(OMEN_END - 1), unknown, "one past the last code is unknown");
	is_str(omen_strerror(INT_MIN), unknown, "INT_MIN is unknown");
	is_str(omen_strerror(INT_MAX), unknown, "INT_MAX is unknown");
}

static void *errmsg_thread(void *arg)
{
	const char **out = arg;

	*out = omen_errmsg();
	return NULL;
}

static void test_errmsg(void)
{
	const char *mine = omen_errmsg();
	const char *theirs = NULL;
	pthread_t th;

	ok(mine != NULL, "omen_errmsg is never NULL");
	is_str(mine, "", "nothing has failed yet: empty message");
	if (!ok(pthread_create(&th, NULL, errmsg_thread, &theirs) == 0, "start a thread"))
		bail_out("pthread_create failed");
	pthread_join(th, NULL);
	ok(theirs != NULL, "omen_errmsg is never NULL on a fresh thread");
	ok(theirs != mine, "each thread has its own message buffer");
}

static void test_version(void)
{
	char want[64];

	snprintf(want, sizeof(want), "%d.%d.%d", OMEN_VERSION_MAJOR, OMEN_VERSION_MINOR,
		 OMEN_VERSION_PATCH);
	is_str(omen_version(), want, "omen_version matches the header macros");
#ifdef PACKAGE_VERSION
	is_str(omen_version(), PACKAGE_VERSION, "omen_version matches the package version");
#endif
}

int main(void)
{
	plan_no_plan();
	test_values();
	test_strerror();
	test_errmsg();
	test_version();
	return done_testing();
}
