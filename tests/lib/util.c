/*
 * tests/lib/util.c — clock, seeds, stress options and allocation for tests,
 * stress programs and the rest of tests/lib.  See util.h.
 */
#include "tests/lib/util.h"
#include "tests/lib/datasets.h"
#include "tests/lib/die.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double now_sec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t case_seed(uint64_t seed, const char *name)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);

	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * UINT64_C(0x100000001b3);
	return seed ^ h;
}

uint64_t test_seed_from_env(uint64_t dflt)
{
	const char *env = getenv("OMEN_TEST_SEED");

	if (env && strcmp(env, "random") == 0)
		return (uint64_t)time(NULL) ^ ((uint64_t)clock() << 32);
	if (env && *env)
		return strtoull(env, NULL, 0);
	return dflt;
}

/* ------------------------------------------------ stress program options */

void stress_opts_init(stress_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->dist = -1;
}

bool stress_opt_arg(stress_opts *o, int argc, char **argv, int *i)
{
	const char *a = argv[*i], *value = *i + 1 < argc ? argv[*i + 1] : NULL;

	if (strcmp(a, "--smoke") == 0) {
		o->smoke = true;
		return true;
	}
	if (strcmp(a, "--seed") == 0 && value) {
		/* Not parse_size: 0 is a seed too.  Taken as strtoull reads it. */
		o->seed = strtoull(value, NULL, 0);
		o->seed_set = true;
		++*i;
		return true;
	}
	if (strcmp(a, "--dist") == 0 && value && ds_parse(value) >= 0) {
		o->dist = ds_parse(value);
		++*i;
		return true;
	}
	return false;
}

void stress_opts_done(stress_opts *o)
{
	if (!o->seed_set)
		o->seed = (uint64_t)time(NULL) * UINT64_C(0x9e3779b97f4a7c15) ^ (uint64_t)clock();
}

void stress_usage(const char *prog, const char *synopsis, const char *seed_help,
                  const char *own_help)
{
	fprintf(stderr,
	        "usage: %s [--smoke] [--seed N] %s [--dist NAME]\n"
	        "  --smoke       a few seconds: small sizes (make check)\n"
	        "  --seed N      %s\n"
	        "%s"
	        "  --dist NAME   only this distribution (uniform, lognormal, timestamps,\n"
	        "                device, clusters)\n",
	        prog, synopsis, seed_help, own_help);
	exit(2);
}

bool parse_size(const char *s, size_t *v)
{
	char *end;
	unsigned long long x = strtoull(s, &end, 0);

	if (*s == '\0' || *end != '\0' || x == 0)
		return false;
	*v = (size_t)x;
	return true;
}

bool parse_seconds(const char *s, double *v)
{
	char *end;
	double x = strtod(s, &end);

	if (*s == '\0' || *end != '\0' || !(x > 0))
		return false;
	*v = x;
	return true;
}

/* ------------------------------------------------------------- memory */

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		TEST_DIE("out of memory (%zu bytes)", n);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		TEST_DIE("out of memory (%zu x %zu bytes)", n, size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL)
		TEST_DIE("out of memory (%zu bytes)", n);
	return p;
}
