/*
 * tests/test_queue.c — the MPSC ingest queue (ingest/queue.h), both
 * implementations (ck_ring and wfcqueue), run by make check.
 *
 * Per implementation: bad arguments; single-thread FIFO order, the bound
 * (capacity - 1 records, then -EAGAIN) and ring wrap-around; a timed pop on
 * an empty queue; a blocking producer that sleeps (little CPU) until the
 * consumer drains; a consumer that sleeps until a push; close semantics
 * (-ECANCELED, drain, wake-up of blocked threads); and 4 producers x N
 * records tagged (producer, seq) through a small queue, checking that each
 * record comes out exactly once and in its producer's order.
 *
 * Sizes scale down under sanitizers; OMEN_TEST_SCALE=<factor> overrides.
 * Thread interleavings are not reproducible; a failure is worth rerunning.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ingest/queue.h"
#include "tests/lib/tap.h"
#include "tests/lib/util.h"

#if defined(OMEN_TSAN)
#define DEFAULT_SCALE 0.1
#elif defined(OMEN_ASAN) || defined(OMEN_DEBUG)
#define DEFAULT_SCALE 0.3
#else
#define DEFAULT_SCALE 1.0
#endif

#define NPROD 4

/* A 16-byte record: the queue's link, then the tag. */
struct rec {
	oq_link link;
	uint32_t producer;
	uint32_t seq;
};

static double g_scale;

static double thread_cpu_sec(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void sleep_ms(int ms)
{
	struct timespec t = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&t, NULL);
}

static oq_queue *make(unsigned cap, enum oq_impl impl)
{
	oq_queue *q;
	int rc = oq_create_impl(cap, impl, &q);

	if (rc != 0)
		bail_out("oq_create_impl(%u): %d", cap, rc);
	return q;
}

static void test_args(enum oq_impl impl, const char *name)
{
	oq_queue *q = (oq_queue *)&q;
	unsigned bad[] = { 0, 1, 3, 12, 1u << 31 };
	bool all = true;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (oq_create_impl(bad[i], impl, &q) != -EINVAL || q != NULL)
			all = false;
	ok(all, "%s: capacities 0, 1, 3, 12, 2^31 are -EINVAL", name);
	is_int(oq_create_impl(8, (enum oq_impl)42, &q), -EINVAL, "%s: unknown impl is -EINVAL",
	       name);
	q = make(2, impl);
	is_str(oq_impl_name(q), name, "%s: oq_impl_name", name);
	is_int(oq_push(q, NULL, true), -EINVAL, "%s: pushing NULL is -EINVAL", name);
	is_u64(oq_capacity(q), 1, "%s: capacity 2 holds one record", name);
	oq_destroy(q);
}

static void test_fifo(enum oq_impl impl, const char *name)
{
	struct rec r[16];
	void *out[16];
	oq_queue *q = make(8, impl);
	bool order = true, wrap = true;
	size_t n, m;
	double t0;
	int rc;

	for (uint32_t i = 0; i < 16; i++)
		r[i] = (struct rec){ .producer = 0, .seq = i };
	rc = 0;
	for (int i = 0; i < 7 && rc == 0; i++)
		rc = oq_push(q, &r[i], true);
	is_int(rc, 0, "%s: 7 pushes into capacity 8 succeed", name);
	is_int(oq_push(q, &r[7], true), -EAGAIN, "%s: the 8th nonblocking push is -EAGAIN", name);
	is_u64(oq_depth(q), 7, "%s: depth 7", name);
	n = oq_pop_batch(q, out, 3, 0);
	m = oq_pop_batch(q, out + 3, 16, 0);
	for (size_t i = 0; i < n + m; i++)
		if (out[i] != &r[i])
			order = false;
	ok(n == 3 && m == 4 && order, "%s: batches of 3 and 4 come out in push order", name);
	is_u64(oq_depth(q), 0, "%s: depth 0 after draining", name);
	is_u64(oq_pop_batch(q, out, 16, 0), 0, "%s: pop with timeout 0 on empty returns 0", name);
	t0 = now_sec();
	n = oq_pop_batch(q, out, 16, 30);
	t0 = now_sec() - t0;
	ok(n == 0 && t0 >= 0.025 && t0 < 5, "%s: pop with timeout 30 ms returns 0 after %.3f s",
	   name, t0);
	/* Many rounds of 5 wrap the 8-slot ring around many times. */
	for (uint32_t round = 0; round < 1000 && wrap; round++) {
		for (int i = 0; i < 5; i++)
			if (oq_push(q, &r[i], false) != 0)
				wrap = false;
		n = 0;
		while (n < 5) {
			m = oq_pop_batch(q, out + n, 16, 0);
			if (m == 0)
				break;
			n += m;
		}
		for (size_t i = 0; i < n; i++)
			if (out[i] != &r[i])
				wrap = false;
		if (n != 5)
			wrap = false;
	}
	ok(wrap, "%s: 1000 rounds of 5 through 8 slots keep order", name);
	oq_destroy(q);
}

struct blocker {
	oq_queue *q;
	struct rec *r;
	int rc;
	double cpu;
	atomic_bool done;
	size_t popped;
};

static void *push_blocking(void *arg)
{
	struct blocker *b = arg;
	double c0 = thread_cpu_sec();

	b->rc = oq_push(b->q, b->r, false);
	b->cpu = thread_cpu_sec() - c0;
	atomic_store(&b->done, true);
	return NULL;
}

static void *pop_blocking(void *arg)
{
	struct blocker *b = arg;
	void *out[4];
	double c0 = thread_cpu_sec();

	b->popped = oq_pop_batch(b->q, out, 4, -1);
	b->r = b->popped ? out[0] : NULL;
	b->cpu = thread_cpu_sec() - c0;
	atomic_store(&b->done, true);
	return NULL;
}

static void test_blocking(enum oq_impl impl, const char *name)
{
	struct rec r[4] = { { .seq = 0 }, { .seq = 1 }, { .seq = 2 }, { .seq = 3 } };
	struct blocker b = { .r = &r[3] };
	void *out[8];
	pthread_t t;
	bool still;
	size_t n;

	/* A producer blocked on a full queue sleeps until the consumer pops. */
	b.q = make(4, impl);
	for (int i = 0; i < 3; i++)
		oq_push(b.q, &r[i], true);
	pthread_create(&t, NULL, push_blocking, &b);
	sleep_ms(200);
	still = !atomic_load(&b.done);
	ok(still, "%s: a blocking push into a full queue waits", name);
	n = oq_pop_batch(b.q, out, 8, 0);
	pthread_join(t, NULL);
	ok(n == 3 && b.rc == 0, "%s: it returns 0 once the consumer drains (%zu popped)", name, n);
	ok(b.cpu < 0.1, "%s: it slept, not spun: %.3f s CPU in 0.2 s", name, b.cpu);
	n = oq_pop_batch(b.q, out, 8, 0);
	ok(n == 1 && out[0] == &r[3], "%s: its record follows", name);

	/* A consumer waiting on an empty queue sleeps until a push. */
	b = (struct blocker){ .q = b.q };
	pthread_create(&t, NULL, pop_blocking, &b);
	sleep_ms(200);
	still = !atomic_load(&b.done);
	oq_push(b.q, &r[0], false);
	pthread_join(t, NULL);
	ok(still && b.popped == 1 && b.r == (void *)&r[0],
	   "%s: a waiting consumer wakes on a push and gets the record", name);
	ok(b.cpu < 0.1, "%s: it slept, not spun: %.3f s CPU in 0.2 s", name, b.cpu);
	oq_destroy(b.q);
}

static void test_close(enum oq_impl impl, const char *name)
{
	struct rec r[4] = { { .seq = 0 }, { .seq = 1 }, { .seq = 2 }, { .seq = 3 } };
	struct blocker b = { .r = &r[3] };
	void *out[8];
	pthread_t t;
	size_t n;

	b.q = make(4, impl);
	oq_push(b.q, &r[0], true);
	oq_push(b.q, &r[1], true);
	ok(!oq_drained(b.q), "%s: an open queue is not drained", name);
	oq_close(b.q);
	oq_close(b.q);
	is_int(oq_push(b.q, &r[2], true), -ECANCELED, "%s: nonblocking push after close", name);
	is_int(oq_push(b.q, &r[2], false), -ECANCELED, "%s: blocking push after close", name);
	ok(!oq_drained(b.q), "%s: closed with records left is not drained", name);
	n = oq_pop_batch(b.q, out, 8, -1);
	ok(n == 2 && out[0] == &r[0] && out[1] == &r[1], "%s: records pushed before close drain",
	   name);
	ok(oq_drained(b.q), "%s: then the queue is drained", name);
	is_u64(oq_pop_batch(b.q, out, 8, -1), 0, "%s: pop on a drained queue returns 0 at once",
	       name);
	oq_destroy(b.q);

	/* Close wakes a producer blocked on a full queue. */
	b.q = make(2, impl);
	oq_push(b.q, &r[0], true);
	pthread_create(&t, NULL, push_blocking, &b);
	sleep_ms(100);
	oq_close(b.q);
	pthread_join(t, NULL);
	is_int(b.rc, -ECANCELED, "%s: close wakes a blocked producer with -ECANCELED", name);
	n = oq_pop_batch(b.q, out, 8, -1);
	ok(n == 1 && out[0] == &r[0] && oq_drained(b.q),
	   "%s: only the record pushed before close comes out", name);
	oq_destroy(b.q);

	/* Close wakes a consumer waiting on an empty queue. */
	b = (struct blocker){ .q = make(4, impl) };
	pthread_create(&t, NULL, pop_blocking, &b);
	sleep_ms(100);
	oq_close(b.q);
	pthread_join(t, NULL);
	ok(b.popped == 0 && oq_drained(b.q), "%s: close wakes a waiting consumer (0, drained)",
	   name);
	oq_destroy(b.q);
}

struct producer {
	oq_queue *q;
	uint32_t id;
	uint32_t n;
	bool nonblocking;       /* retry -EAGAIN with sched_yield */
	struct rec *recs;
	uint64_t eagain;
	int err;
};

static void *produce(void *arg)
{
	struct producer *p = arg;

	for (uint32_t i = 0; i < p->n; i++) {
		struct rec *r = &p->recs[i];
		int rc;

		r->producer = p->id;
		r->seq = i;
		while ((rc = oq_push(p->q, r, p->nonblocking)) == -EAGAIN) {
			p->eagain++;
			sched_yield();
		}
		if (rc != 0) {
			p->err = rc;
			break;
		}
	}
	return NULL;
}

static void test_mpsc(enum oq_impl impl, const char *name)
{
	struct producer p[NPROD];
	pthread_t t[NPROD];
	uint32_t next[NPROD] = { 0 };
	uint32_t n = (uint32_t)(200000 * g_scale);
	void **out = xmalloc(4096 * sizeof(*out));
	uint64_t got = 0, bad = 0, batches = 0, eagain = 0;
	oq_queue *q = make(1024, impl);
	bool closed = false;
	int errs = 0;
	double t0 = now_sec();

	for (uint32_t i = 0; i < NPROD; i++) {
		p[i] = (struct producer){ .q = q, .id = i, .n = n, .nonblocking = i >= NPROD / 2,
					  .recs = xcalloc(n, sizeof(struct rec)) };
		pthread_create(&t[i], NULL, produce, &p[i]);
	}
	for (;;) {
		size_t k = oq_pop_batch(q, out, 4096, 50);

		batches += k > 0;
		for (size_t i = 0; i < k; i++) {
			struct rec *r = out[i];

			if (r->producer >= NPROD || r->seq != next[r->producer] ||
			    r != &p[r->producer].recs[r->seq])
				bad++;
			else
				next[r->producer]++;
			got++;
		}
		if (!closed && got == (uint64_t)n * NPROD) {
			/* Everything arrived: join (they are done) and close. */
			for (int i = 0; i < NPROD; i++)
				pthread_join(t[i], NULL);
			oq_close(q);
			closed = true;
		}
		if (k == 0 && closed && oq_drained(q))
			break;
		if (bad || now_sec() - t0 > 300) {
			diag("%s: giving up: %" PRIu64 " bad, %" PRIu64 " of %" PRIu64 " records",
			     name, bad, got, (uint64_t)n * NPROD);
			oq_close(q);
			for (int i = 0; i < NPROD && !closed; i++)
				pthread_join(t[i], NULL);
			closed = true;
			break;
		}
	}
	for (int i = 0; i < NPROD; i++) {
		errs += p[i].err != 0;
		eagain += p[i].eagain;
	}
	diag("%s: %u producers x %u records through 1023 slots: %" PRIu64 " batches, %" PRIu64
	     " EAGAIN retries, %.2f s", name, NPROD, n, batches, eagain, now_sec() - t0);
	ok(closed && errs == 0, "%s: every push succeeded", name);
	is_u64(bad, 0, "%s: every record came out once, in its producer's order", name);
	is_u64(got, (uint64_t)n * NPROD, "%s: all %u x %u records delivered", name, NPROD, n);
	for (int i = 0; i < NPROD; i++)
		free(p[i].recs);
	free(out);
	oq_destroy(q);
}

int main(void)
{
	static const struct {
		enum oq_impl impl;
		const char *name;
	} impls[] = { { OQ_IMPL_CK_RING, "ck_ring" }, { OQ_IMPL_WFCQUEUE, "wfcqueue" } };
	const char *scale = getenv("OMEN_TEST_SCALE");
	double t0 = now_sec();

	g_scale = scale && *scale ? strtod(scale, NULL) : DEFAULT_SCALE;
	if (!(g_scale > 0))
		g_scale = DEFAULT_SCALE;
	plan_no_plan();
	{
		oq_queue *q;

		ok(oq_create(16, &q) == 0 && strcmp(oq_impl_name(q), "wfcqueue") == 0,
		   "the default implementation is wfcqueue");
		oq_destroy(q);
	}
	for (size_t i = 0; i < sizeof(impls) / sizeof(impls[0]); i++) {
		test_args(impls[i].impl, impls[i].name);
		test_fifo(impls[i].impl, impls[i].name);
		test_blocking(impls[i].impl, impls[i].name);
		test_close(impls[i].impl, impls[i].name);
		test_mpsc(impls[i].impl, impls[i].name);
	}
	diag("scale %.2f, %.1f s", g_scale, now_sec() - t0);
	return done_testing();
}
