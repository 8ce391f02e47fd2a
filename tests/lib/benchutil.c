/*
 * tests/lib/benchutil.c — see benchutil.h.
 */
#define _GNU_SOURCE /* sched_getaffinity, pthread_setaffinity_np */
#include "tests/lib/benchutil.h"
#include "tests/lib/datasets.h"

#include <pthread.h>
#include <sched.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double bench_loadavg_1min(void)
{
	FILE *f = fopen("/proc/loadavg", "r");
	double l = -1.0;

	if (f) {
		if (fscanf(f, "%lf", &l) != 1)
			l = -1.0;
		fclose(f);
	}
	return l;
}

size_t bench_parse_count(const char *s)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return 0;
	v = strtoull(s, &end, 10);
	switch (*end) {
	case 'k': case 'K': v *= 1000ull; end++; break;
	case 'm': case 'M': v *= 1000000ull; end++; break;
	case 'g': case 'G': v *= 1000000000ull; end++; break;
	default: break;
	}
	return *end == '\0' ? (size_t)v : 0;
}

void bench_machine_get(bench_machine *m)
{
	struct utsname u;
	char line[512];
	FILE *f = fopen("/proc/cpuinfo", "r");

	snprintf(m->arch, sizeof(m->arch), "%s", uname(&u) == 0 ? u.machine : "unknown");
	snprintf(m->cpu, sizeof(m->cpu), "unknown");
	m->nproc = sysconf(_SC_NPROCESSORS_ONLN);
#ifdef __OPTIMIZE__
	m->optimized = "yes";
#else
	m->optimized = "no";
#endif
	/* x86 says "model name"; some arm64 kernels say "Model" or nothing. */
	while (f && fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if ((strncmp(line, "model name", 10) == 0 || strncmp(line, "Model", 5) == 0) && colon) {
			char *v = colon + 1;

			while (*v == ' ' || *v == '\t')
				v++;
			v[strcspn(v, "\n")] = '\0';
			snprintf(m->cpu, sizeof(m->cpu), "%s", v);
			break;
		}
	}
	if (f)
		fclose(f);
}

unsigned bench_usable_cpus(int *cpus, unsigned max)
{
	cpu_set_t set;
	unsigned n = 0;

	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 0;
	for (int i = 0; i < CPU_SETSIZE && n < max; i++)
		if (CPU_ISSET(i, &set))
			cpus[n++] = i;
	return n;
}

void bench_pin_self(int cpu, const char *prog)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set) != 0)
		fprintf(stderr, "%s: cannot pin a thread to cpu%d\n", prog, cpu);
}

static void *bench_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fprintf(stderr, "benchmark: out of memory (%zu bytes)\n", n);
		exit(1);
	}
	return p;
}

uint64_t bench_timer_overhead_ns(void)
{
	enum { S = 100000 };
	uint64_t *d = bench_xmalloc(S * sizeof(*d)), med;

	for (size_t i = 0; i < S; i++) {
		uint64_t t0 = bench_now_ns();

		d[i] = bench_now_ns() - t0;
	}
	ds_sort(d, S);
	med = d[S / 2];
	free(d);
	return med;
}

void bench_samples_init(bench_samples *s, uint64_t seed)
{
	s->v = bench_xmalloc(BENCH_LAT_CAP * sizeof(*s->v));
	s->n = 0;
	s->seen = 0;
	s->rng = seed | 1;
}

bench_lat bench_lat_merge(bench_samples *s, unsigned k)
{
	bench_lat l = { 0, 0, 0, 0 };
	size_t total = 0, at = 0;
	uint64_t *all;

	for (unsigned i = 0; i < k; i++)
		total += s[i].n;
	all = bench_xmalloc(total * sizeof(*all));
	for (unsigned i = 0; i < k; i++) {
		memcpy(all + at, s[i].v, s[i].n * sizeof(*all));
		at += s[i].n;
		free(s[i].v);
		s[i].v = NULL;
	}
	if (total) {
		ds_sort(all, total);
		l.p50 = all[total / 2];
		l.p99 = all[(total * 99) / 100];
		l.p999 = all[(total * 999) / 1000];
		l.samples = total;
	}
	free(all);
	return l;
}
