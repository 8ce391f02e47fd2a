/*
 * tests/lib/benchutil.c — see benchutil.h.
 */
#include "tests/lib/benchutil.h"

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
