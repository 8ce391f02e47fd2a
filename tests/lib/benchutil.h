/*
 * tests/lib/benchutil.h — what every benchmark program shares: the clock,
 * the machine it runs on, the load on it, and size arguments.
 */
#ifndef OMEN_TESTS_LIB_BENCHUTIL_H
#define OMEN_TESTS_LIB_BENCHUTIL_H

#include <stddef.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* The 1-minute load average, or -1 when /proc/loadavg cannot be read. */
double bench_loadavg_1min(void);

/* "123", "10k", "10m", "1g" (powers of 1000) -> the count; 0 when the
 * text is not a count. */
size_t bench_parse_count(const char *s);

/* The machine and build, for a benchmark's header lines. */
typedef struct bench_machine {
	char arch[72];        /* uname machine (at most 65 bytes) */
	char cpu[256];        /* /proc/cpuinfo's model name, or "unknown" */
	long nproc;           /* online CPUs                               */
	const char *optimized; /* "yes" when compiled with optimisation    */
} bench_machine;

void bench_machine_get(bench_machine *m);

#endif
