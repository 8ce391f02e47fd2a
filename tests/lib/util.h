/*
 * tests/lib/util.h — the small helpers every test, stress and support file
 * wrote for itself: a monotonic clock, per-case seeds, the OMEN_TEST_SEED
 * convention of the unit tests, the options the stress programs share, and
 * allocation that cannot fail.  One copy here keeps the seeds a case name
 * maps to, and the option rules, the same everywhere.
 */
#ifndef OMEN_TESTS_UTIL_H
#define OMEN_TESTS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Seconds on CLOCK_MONOTONIC: for durations and deadlines only. */
double now_sec(void);

/* seed mixed with an FNV-1a hash of name: every case of a run gets its own
 * key set, and the same seed and name always give the same one. */
uint64_t case_seed(uint64_t seed, const char *name);

/* The run seed of a unit test: OMEN_TEST_SEED=<n> (strtoull, any base),
 * OMEN_TEST_SEED=random (from the clock), else dflt. */
uint64_t test_seed_from_env(uint64_t dflt);

/* ------------------------------------------------ stress program options */

/*
 * The options every stress program takes:
 *   --smoke       a few seconds at small sizes (make check);
 *   --seed N      replay a run (default: from the clock, to be printed);
 *   --dist NAME   one distribution of datasets.h only.
 * Each program parses its own options around them.
 */
typedef struct stress_opts {
	uint64_t seed;
	int dist;          /* -1: all                                        */
	bool smoke;
	bool seed_set;     /* --seed given; else stress_opts_done picks one  */
} stress_opts;

void stress_opts_init(stress_opts *o);
/* True when argv[*i] is one of these (*i then moves past its value).
 * False when it is not, or its value is missing or bad: unless argv[*i]
 * is one of the program's own options, that is a usage error. */
bool stress_opt_arg(stress_opts *o, int argc, char **argv, int *i);
/* After the last argument: the clock seed when none was given. */
void stress_opts_done(stress_opts *o);
/* Print a stress program's usage to stderr and exit 2:
 *   usage: PROG [--smoke] [--seed N] SYNOPSIS [--dist NAME]
 * then the help lines of --smoke, --seed (seed_help: what it replays and
 * its default), the program's own (own_help, whole lines) and --dist. */
_Noreturn void stress_usage(const char *prog, const char *synopsis, const char *seed_help,
                            const char *own_help);

/* A count > 0 (strtoull, any base, the whole string); false otherwise. */
bool parse_size(const char *s, size_t *v);
/* A number of seconds > 0 (strtod, the whole string); false otherwise. */
bool parse_seconds(const char *s, double *v);

/* ------------------------------------------------------------- memory */

/* malloc / calloc / realloc that abort on failure (tests/lib/die.h): test
 * code has no caller to hand an out-of-memory error to.  Zero sizes
 * allocate one byte, so that a NULL result always means failure. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);

#endif
