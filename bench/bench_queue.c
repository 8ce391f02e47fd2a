/*
 * bench/bench_queue.c — throughput of the MPSC ingest queue (ingest/queue.h),
 * ck_ring against wfcqueue, measured in the same run.
 *
 *   bench_queue [--smoke] [--items N] [--capacity C] [--batch B] [--reps R]
 *
 * P producer threads (1 and 2) each push N pointers to 16-byte records
 * (blocking pushes); one consumer pops batches of up to B (4096) and reads
 * each record's tag (so the records' cache lines really move).  Items/s is
 * total records over the time from the start signal to the consumer's last
 * record.  Each configuration runs R times, the implementations alternating
 * so drift hits both alike; the median is reported.  A single-thread phase
 * (push C-1, pop them, repeat) gives the uncontended cost per record.
 *
 * With P producers plus the consumer, P + 1 threads share the machine's
 * cores: on 2 cores P = 2 is oversubscribed (reported on the machine line),
 * so sleeping and waking, not just the lock-free paths, are measured.
 *
 * The last lines are machine-readable:
 *   bench=queue impl=ck_ring producers=1 items_per_s=... ratio_vs=wfcqueue:...
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest/queue.h"
#include "tests/lib/util.h"

struct rec {                    /* 16 bytes: the link and a tag */
	oq_link link;
	uint64_t tag;
};
_Static_assert(sizeof(struct rec) == 16, "16-byte records");

static const struct {
	enum oq_impl impl;
	const char *name;
} impls[] = { { OQ_IMPL_CK_RING, "ck_ring" }, { OQ_IMPL_WFCQUEUE, "wfcqueue" } };
#define NIMPL 2
#define MAXPROD 2

struct run {
	oq_queue *q;
	size_t items;           /* per producer */
	struct rec *recs[MAXPROD];
	atomic_int ready;
	atomic_bool go;
	uint64_t eagain;
};

struct prod_arg {
	struct run *run;
	int id;
};

static void *producer(void *arg)
{
	struct prod_arg *a = arg;
	struct run *r = a->run;
	struct rec *recs = r->recs[a->id];

	atomic_fetch_add(&r->ready, 1);
	while (!atomic_load_explicit(&r->go, memory_order_acquire))
		;
	for (size_t i = 0; i < r->items; i++) {
		recs[i].tag = ((uint64_t)a->id << 48) | i;
		if (oq_push(r->q, &recs[i], false) != 0)
			abort();
	}
	return NULL;
}

/* One timed run: items/s; *check gets a checksum of the tags seen. */
static double run_once(enum oq_impl impl, int nprod, size_t items, unsigned cap, size_t batch,
		       struct rec **recs, uint64_t *check)
{
	struct run r = { .items = items };
	struct prod_arg pa[MAXPROD];
	pthread_t t[MAXPROD];
	void **out = xmalloc(batch * sizeof(*out));
	uint64_t total = (uint64_t)items * (uint64_t)nprod, got = 0, sum = 0;
	double t0, t1;

	if (oq_create_impl(cap, impl, &r.q) != 0)
		abort();
	for (int i = 0; i < nprod; i++) {
		r.recs[i] = recs[i];
		pa[i] = (struct prod_arg){ &r, i };
		pthread_create(&t[i], NULL, producer, &pa[i]);
	}
	while (atomic_load(&r.ready) < nprod)
		;
	t0 = now_sec();
	atomic_store_explicit(&r.go, true, memory_order_release);
	while (got < total) {
		size_t k = oq_pop_batch(r.q, out, batch, -1);

		for (size_t i = 0; i < k; i++)
			sum += ((struct rec *)out[i])->tag;
		got += k;
	}
	t1 = now_sec();
	for (int i = 0; i < nprod; i++)
		pthread_join(t[i], NULL);
	oq_close(r.q);
	oq_destroy(r.q);
	free(out);
	*check = sum;
	return (double)total / (t1 - t0);
}

/* Uncontended: one thread pushes cap-1 records then pops them; ns/record. */
static double single_thread_ns(enum oq_impl impl, unsigned cap, size_t rounds, struct rec *recs)
{
	oq_queue *q;
	void **out = xmalloc(cap * sizeof(*out));
	size_t n = cap - 1;
	double t0;

	if (oq_create_impl(cap, impl, &q) != 0)
		abort();
	t0 = now_sec();
	for (size_t r = 0; r < rounds; r++) {
		size_t got = 0;

		for (size_t i = 0; i < n; i++)
			if (oq_push(q, &recs[i], true) != 0)
				abort();
		while (got < n)
			got += oq_pop_batch(q, out + got, n - got, 0);
	}
	t0 = now_sec() - t0;
	oq_destroy(q);
	free(out);
	return t0 * 1e9 / (double)(rounds * n);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_queue [--smoke] [--items N] [--capacity C] [--batch B] "
			"[--reps R]\n"
			"  --items N     records per producer (default 1000000; --smoke 50000)\n"
			"  --capacity C  queue capacity, a power of two (default 4096)\n"
			"  --batch B     consumer batch size (default 4096)\n"
			"  --reps R      runs per configuration, median reported (default 3)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	size_t items = 1000000, batch = 4096, reps = 3, cap = 4096;
	bool smoke = false, items_set = false;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	double med[MAXPROD + 1][NIMPL], st[NIMPL];
	struct rec *recs[MAXPROD];
	uint64_t failures = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--smoke") == 0)
			smoke = true;
		else if (strcmp(argv[i], "--items") == 0 && i + 1 < argc &&
			 parse_size(argv[i + 1], &items))
			items_set = true, i++;
		else if (strcmp(argv[i], "--capacity") == 0 && i + 1 < argc &&
			 parse_size(argv[i + 1], &cap) && cap >= 2 && cap <= (1u << 30) &&
			 !(cap & (cap - 1)))
			i++;
		else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc &&
			 parse_size(argv[i + 1], &batch))
			i++;
		else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc &&
			 parse_size(argv[i + 1], &reps))
			i++;
		else
			usage();
	}
	if (smoke) {
		if (!items_set)
			items = 50000;
		reps = 1;
	}
	for (int i = 0; i < MAXPROD; i++)
		recs[i] = xcalloc(items > cap ? items : cap, sizeof(struct rec));

	printf("bench_queue: %zu records of %zu bytes per producer, capacity %zu, batch %zu, "
	       "median of %zu run%s\n", items, sizeof(struct rec), cap, batch, reps,
	       reps == 1 ? "" : "s");
	printf("machine: %ld online CPUs; cflags: %s\n", ncpu, OMEN_BUILD_CFLAGS);

	for (int k = 0; k < NIMPL; k++)
		st[k] = single_thread_ns(impls[k].impl, (unsigned)cap,
					 smoke ? 20 : 2000, recs[0]);
	printf("\nsingle thread, uncontended (push %zu, pop them, repeat):\n", cap - 1);
	for (int k = 0; k < NIMPL; k++)
		printf("  %-9s %6.1f ns per record (push + pop)\n", impls[k].name, st[k]);

	for (int p = 1; p <= MAXPROD; p++) {
		double v[NIMPL][64];
		uint64_t expect = 0;

		for (int i = 0; i < p; i++)
			for (size_t j = 0; j < items; j++)
				expect += ((uint64_t)i << 48) | j;
		if (reps > 64)
			reps = 64;
		for (size_t r = 0; r < reps; r++)
			for (int kk = 0; kk < NIMPL; kk++) {
				int k = (int)(r & 1) ? NIMPL - 1 - kk : kk;
				uint64_t sum;

				v[k][r] = run_once(impls[k].impl, p, items, (unsigned)cap, batch,
						   recs, &sum);
				if (sum != expect) {
					fprintf(stderr, "%s P=%d: checksum %" PRIu64 " != %" PRIu64 "\n",
						impls[k].name, p, sum, expect);
					failures++;
				}
			}
		printf("\n%d producer%s + 1 consumer = %d threads on %ld CPUs%s:\n", p,
		       p == 1 ? "" : "s", p + 1, ncpu, p + 1 > ncpu ? " (oversubscribed)" : "");
		for (int k = 0; k < NIMPL; k++) {
			printf("  %-9s", impls[k].name);
			for (size_t r = 0; r < reps; r++)
				printf(" %7.2f", v[k][r] / 1e6);
			qsort(v[k], reps, sizeof(double), cmp_double);
			med[p][k] = v[k][reps / 2];
			printf("   median %7.2f M items/s\n", med[p][k] / 1e6);
		}
	}

	printf("\n");
	printf("bench=queue op=machine nproc=%ld capacity=%zu batch=%zu items_per_producer=%zu "
	       "reps=%zu\n", ncpu, cap, batch, items, reps);
	for (int k = 0; k < NIMPL; k++)
		printf("bench=queue impl=%s producers=0 op=single_thread ns_per_item=%.1f "
		       "ratio_vs=%s:%.2f\n", impls[k].name, st[k], impls[1 - k].name,
		       st[1 - k] / st[k]);
	for (int p = 1; p <= MAXPROD; p++)
		for (int k = 0; k < NIMPL; k++)
			printf("bench=queue impl=%s producers=%d oversubscribed=%d items_per_s=%.0f "
			       "ratio_vs=%s:%.2f\n", impls[k].name, p, p + 1 > ncpu, med[p][k],
			       impls[1 - k].name, med[p][k] / med[p][1 - k]);
	printf("bench=queue op=summary failures=%" PRIu64 "\n", failures);
	for (int i = 0; i < MAXPROD; i++)
		free(recs[i]);
	return failures ? 1 : 0;
}
