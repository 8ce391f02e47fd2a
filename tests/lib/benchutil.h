/*
 * tests/lib/benchutil.h — what every benchmark program shares: the clock,
 * the machine it runs on, the load on it, and size arguments.
 */
#ifndef OMEN_TESTS_LIB_BENCHUTIL_H
#define OMEN_TESTS_LIB_BENCHUTIL_H

#include <stdbool.h>
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

/* The CPUs this process may run on, ascending, at most max of them;
 * returns how many (0 when the affinity cannot be read). */
unsigned bench_usable_cpus(int *cpus, unsigned max);
/* Pin the calling thread to cpu (no-op for cpu < 0; a failure is printed,
 * prefixed with prog, and the thread runs unpinned). */
void bench_pin_self(int cpu, const char *prog);

/* The median cost of one bench_now_ns() pair, in nanoseconds. */
uint64_t bench_timer_overhead_ns(void);

/* One thread's latency samples: the first BENCH_LAT_CAP kept, later ones
 * reservoir-sampled, so percentiles stay unbiased however long the run. */
#define BENCH_LAT_CAP (1u << 20)
typedef struct bench_samples {
	uint64_t *v;
	size_t n;               /* kept, <= BENCH_LAT_CAP */
	uint64_t seen;          /* offered                */
	uint64_t rng;           /* reservoir replacement  */
} bench_samples;

typedef struct bench_lat {
	uint64_t p50, p99, p999;
	size_t samples;
} bench_lat;

/* Exits the program when out of memory. */
void bench_samples_init(bench_samples *s, uint64_t seed);

static inline void bench_samples_add(bench_samples *s, uint64_t ns)
{
	if (s->n < BENCH_LAT_CAP) {
		s->v[s->n++] = ns;
	} else {
		uint64_t j;

		s->rng ^= s->rng << 13;
		s->rng ^= s->rng >> 7;
		s->rng ^= s->rng << 17;
		j = s->rng % (s->seen + 1);
		if (j < BENCH_LAT_CAP)
			s->v[j] = ns;
	}
	s->seen++;
}

/* Percentiles over k threads' samples; frees them.  All zero when none. */
bench_lat bench_lat_merge(bench_samples *s, unsigned k);

#endif
