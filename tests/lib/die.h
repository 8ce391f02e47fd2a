/*
 * tests/lib/die.h — test support code that cannot do its job (out of
 * memory, a misused helper) has no caller to report to: tests would only
 * fail later with garbage.  It stops the process here, saying where.
 */
#ifndef OMEN_TESTS_DIE_H
#define OMEN_TESTS_DIE_H

#include <stdio.h>
#include <stdlib.h>

#define TEST_DIE(...)                                                   \
	do {                                                            \
		fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);         \
		fprintf(stderr, __VA_ARGS__);                           \
		fputc('\n', stderr);                                    \
		abort();                                                \
	} while (0)

#endif
