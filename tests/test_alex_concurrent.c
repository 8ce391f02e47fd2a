/*
 * tests/test_alex_concurrent.c — the ALEX index under one writer and
 * lock-free readers (core/alex.h, "Concurrency contract"), run by make check.
 *
 * Each case is one run of the torture driver (tests/lib/rwtorture.h): a
 * tree bulk loaded with stable keys the writer never touches, a writer
 * inserting, deleting and batching volatile keys between them and beyond
 * both ends of the key range, and 4 or 6 readers checking lookups, lower
 * bounds, short iterations and full scans against the stable keys, each
 * iteration in one RCU read-side section.  Tree limits are tiny, so that a
 * bounded amount of writer work restructures the tree all the time.
 *
 * Per case, one TAP line each for: no reader failures; the writer's own
 * checks (results, alex_check while readers run); the final state (alex_check,
 * stable keys, exact contents); that every kind of reader check ran; and
 * that the structural paths the case exists for really ran (expansions,
 * splits, root growth, retired nodes) — so the test cannot pass because
 * nothing happened.  The last case also starts 100 short-lived threads
 * whose first RCU use is a read-side section (lazy registration; an
 * exited thread left registered would stall grace periods).
 *
 * Sizes scale down under sanitizers (about a minute under ThreadSanitizer
 * on two cores); OMEN_TEST_SCALE=<factor> overrides.  OMEN_TEST_SEED=<n>
 * (or "random") picks the seed; OMEN_TEST_ONLY=<text> runs only the cases
 * whose name contains <text>.  The seed replays the key sets and the
 * writer's operations; thread interleavings are not reproducible, so a
 * failure is also worth rerunning a few times with the same seed.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "core/alex.h"
#include "tests/lib/datasets.h"
#include "tests/lib/rwtorture.h"
#include "tests/lib/tap.h"
#include "tests/lib/util.h"

#define DEFAULT_SEED UINT64_C(20240612)

/* Default work scale: sanitizers slow every access down (ThreadSanitizer
 * by 5-15x, AddressSanitizer by about 2x).  At scale 1 the test takes
 * about 8 s of a -O2 build on two cores, and under ThreadSanitizer at
 * 0.3 about 20 s. */
#if defined(OMEN_TSAN)
#define DEFAULT_SCALE 0.3
#elif defined(OMEN_ASAN)
#define DEFAULT_SCALE 0.5
#elif defined(OMEN_DEBUG)
#define DEFAULT_SCALE 0.5
#else
#define DEFAULT_SCALE 1.0
#endif

static uint64_t g_seed;
static double g_scale;

static uint64_t scaled(uint64_t n, uint64_t floor)
{
	double v = (double)n * g_scale;

	return v < (double)floor ? floor : (uint64_t)v;
}

enum limits { LIMITS_SMALL, LIMITS_MEDIUM };

/* Tiny limits (as in test_alex): 256-slot leaves, 64 keys per bulk-loaded
 * leaf, 16-slot internal nodes.  Medium: 1024-slot leaves loaded with 384
 * keys, 64-slot inner nodes: fewer but bigger structural changes.  Either
 * way the writer's growing phase (the tree about triples) splits leaves. */
static void set_limits(alex_config *a, enum limits l)
{
	alex_config_init(a);
	a->max_leaf_slots = l == LIMITS_SMALL ? 256 : 1024;
	a->bulk_leaf_keys = l == LIMITS_SMALL ? 64 : 384;
	a->keys_per_slot = l == LIMITS_SMALL ? 8 : 16;
	a->max_fanout_bits = l == LIMITS_SMALL ? 4 : 6;
}

struct tcase {
	const char *name;
	enum ds_dist dist;
	unsigned readers;
	size_t stable;          /* stable keys (as many volatile) at scale 1 */
	uint64_t steps;         /* writer steps at scale 1                   */
	enum limits limits;
	unsigned ephemeral;     /* short-lived reader threads (not scaled)   */
};

static const struct tcase cases[] = {
	{ "uniform/small/4r", DS_UNIFORM, 4, 20000, 600000, LIMITS_SMALL, 0 },
	{ "device/small/4r", DS_DEVICE, 4, 20000, 600000, LIMITS_SMALL, 0 },
	{ "clusters/small/6r", DS_CLUSTERS, 6, 20000, 600000, LIMITS_SMALL, 0 },
	{ "timestamps/medium/4r", DS_TIMESTAMPS, 4, 30000, 600000, LIMITS_MEDIUM, 0 },
	{ "lognormal/small/4r/lazy-rcu", DS_LOGNORMAL, 4, 10000, 400000, LIMITS_SMALL, 100 },
};

static void run_case(const struct tcase *tc)
{
	rwt_config c;
	rwt_result r;
	const alex_stats *s = &r.stats;
	bool every_kind = true;
	int rc;

	rwt_config_init(&c);
	c.name = tc->name;
	c.seed = case_seed(g_seed, tc->name);
	c.dist = tc->dist;
	c.readers = tc->readers;
	c.stable_keys = (size_t)scaled(tc->stable, 2000);
	c.writer_steps = scaled(tc->steps, 10000);
	c.min_reader_iters = scaled(2000, 200);
	c.ephemeral_threads = tc->ephemeral;
	c.out = stdout;
	set_limits(&c.alex, tc->limits);

	diag("%s: seed %" PRIu64 ", %zu stable keys, %" PRIu64 " writer steps, %u readers%s",
	     tc->name, c.seed, c.stable_keys, c.writer_steps, c.readers,
	     c.ephemeral_threads ? ", ephemeral reader threads" : "");
	rc = rwt_run(&c, &r);
	if (rc < 0)
		bail_out("%s: the tree could not be built: %d", tc->name, rc);
	fflush(stdout);
	rwt_print_summary(stdout, "# ", &c, &r);

	for (int k = 0; k < RWT_NKINDS; k++)
		if (r.checks[k] == 0 && (k != RWT_EPHEMERAL || c.ephemeral_threads))
			every_kind = false;
	is_u64(rwt_reader_failures(&r), 0, "%s: readers: %" PRIu64 " iterations, no failure",
	       tc->name, r.reader_iters);
	is_u64(r.writer_failures, 0, "%s: writer: %" PRIu64 " steps, every result right, %"
	       PRIu64 " alex_check clean", tc->name, r.writer_steps, r.writer_checks);
	is_u64(r.final_failures, 0, "%s: after the run: alex_check clean, stable keys intact, "
	       "contents exact (%" PRIu64 " keys)", tc->name, r.final_keys);
	ok(every_kind && !r.starved, "%s: readers ran every kind of check during the writes",
	   tc->name);
	ok(s->expansions > 0, "%s: leaves expanded (%" PRIu64 ")", tc->name, s->expansions);
	ok(s->splits_sideways + s->splits_down > 0, "%s: leaves split (%" PRIu64 " sideways, %"
	   PRIu64 " down)", tc->name, s->splits_sideways, s->splits_down);
	ok(s->root_growths > 0, "%s: the root grew (%" PRIu64 ")", tc->name, s->root_growths);
	ok(s->retired > 0, "%s: replaced nodes were retired (%" PRIu64 ")", tc->name, s->retired);
	if (c.ephemeral_threads)
		ok(r.ephemeral_done == c.ephemeral_threads && r.grace_after_ephemeral &&
		   r.failures[RWT_EPHEMERAL] == 0,
		   "%s: %" PRIu64 " fresh threads read inside orcu_read_lock and exited; a grace "
		   "period completed after them", tc->name, r.ephemeral_done);
}

int main(void)
{
	const char *only = getenv("OMEN_TEST_ONLY");
	const char *scale = getenv("OMEN_TEST_SCALE");
	double t0 = now_sec();

	g_seed = test_seed_from_env(DEFAULT_SEED);
	g_scale = scale && *scale ? strtod(scale, NULL) : DEFAULT_SCALE;
	if (!(g_scale > 0))
		g_scale = DEFAULT_SCALE;
	plan_no_plan();
	diag("seed %" PRIu64 " (replay: OMEN_TEST_SEED=%" PRIu64 " [OMEN_TEST_ONLY=<case>]), "
	     "scale %.2f", g_seed, g_seed, g_scale);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		double t1 = now_sec();

		if (only && !strstr(cases[i].name, only))
			continue;
		run_case(&cases[i]);
		diag("%s: %.1f s", cases[i].name, now_sec() - t1);
	}
	diag("seed %" PRIu64 ", %.1f s", g_seed, now_sec() - t0);
	return done_testing();
}
