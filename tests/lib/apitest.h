/*
 * tests/lib/apitest.h — helpers of the integration tests that use the public
 * API only (tests/test_api.c, tests/test_engine_diff.c): a temporary base
 * directory, recursive removal, a fingerprint of a directory tree (to show
 * that a failed open modified nothing), and the ThreadSanitizer hook.
 *
 * Header-only, static functions: each program includes it once.  Those
 * programs link libomendb.so and tests/lib/libomentest.la only; they never
 * see the engine's internals.  The including file defines _GNU_SOURCE (or
 * _XOPEN_SOURCE 700) before any system header, for nftw and mkdtemp.
 */
#ifndef OMEN_TESTS_APITEST_H
#define OMEN_TESTS_APITEST_H

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/lib/die.h"
#include "tests/lib/util.h"

#ifdef OMEN_TSAN
/* The engine's own copy is inside libomendb.so, which exports omen_* only:
 * a program linking the shared library carries the list itself (see
 * core/tsan_suppressions.h).  libomendb.so itself stays checked. */
#include "core/tsan_suppressions.h"
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
	return OMEN_TSAN_SUPPRESSIONS;
}
#endif

/* Make "$TMPDIR/omendb-<tag>-XXXXXX" (or under /tmp) into base[cap]. */
static inline void apitest_mkdtemp(char *base, size_t cap, const char *tag)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(base, cap, "%s/omendb-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", tag);
	if (!mkdtemp(base))
		TEST_DIE("mkdtemp %s: %s", base, strerror(errno));
}

static inline int apitest_rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(p);
	return 0;
}

/* rm -rf p (no error when it is missing). */
static inline void apitest_rm_tree(const char *p)
{
	nftw(p, apitest_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * A fingerprint of the tree under a directory: one line per entry with its
 * path relative to the root, type, size, mode and modification time (ns),
 * sorted.  Two equal fingerprints mean nothing was added, removed, resized,
 * rewritten or touched.  The caller frees the string.
 */
static struct {
	char **lines;
	size_t n, cap, rootlen;
} apitest_fp;

static inline int apitest_fp_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	char line[4400];

	(void)ftw;
	snprintf(line, sizeof(line), "%s %c %jd %o %jd.%09ld", p + apitest_fp.rootlen,
		 flag == FTW_D || flag == FTW_DP ? 'd' : flag == FTW_SL ? 'l' : 'f',
		 (intmax_t)sb->st_size, (unsigned)sb->st_mode, (intmax_t)sb->st_mtim.tv_sec,
		 sb->st_mtim.tv_nsec);
	if (apitest_fp.n == apitest_fp.cap) {
		apitest_fp.cap = apitest_fp.cap ? 2 * apitest_fp.cap : 64;
		apitest_fp.lines = xrealloc(apitest_fp.lines, apitest_fp.cap * sizeof(char *));
	}
	apitest_fp.lines[apitest_fp.n] = xmalloc(strlen(line) + 1);
	strcpy(apitest_fp.lines[apitest_fp.n++], line);
	return 0;
}

static inline int apitest_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static inline char *apitest_tree_fingerprint(const char *root)
{
	size_t total = 1;
	char *out;

	apitest_fp.n = 0;
	apitest_fp.rootlen = strlen(root);
	if (nftw(root, apitest_fp_one, 16, FTW_PHYS) != 0)
		TEST_DIE("nftw %s: %s", root, strerror(errno));
	qsort(apitest_fp.lines, apitest_fp.n, sizeof(char *), apitest_cmp_str);
	for (size_t i = 0; i < apitest_fp.n; i++)
		total += strlen(apitest_fp.lines[i]) + 1;
	out = xmalloc(total);
	out[0] = '\0';
	for (size_t i = 0; i < apitest_fp.n; i++) {
		strcat(out, apitest_fp.lines[i]);
		strcat(out, "\n");
		free(apitest_fp.lines[i]);
	}
	free(apitest_fp.lines);
	apitest_fp.lines = NULL;
	apitest_fp.cap = 0;
	return out;
}

/* Does line (up to its newline) occur among the lines of text? */
static inline bool apitest_has_line(const char *text, const char *line, size_t len)
{
	for (const char *t = text; *t;) {
		const char *nl = strchr(t, '\n');
		size_t tl = nl ? (size_t)(nl - t) : strlen(t);

		if (tl == len && memcmp(t, line, len) == 0)
			return true;
		if (!nl)
			break;
		t = nl + 1;
	}
	return false;
}

/* Print (as TAP comments) the lines of a that b lacks, prefixed by tag. */
static inline void apitest_diag_missing(const char *a, const char *b, const char *tag)
{
	for (const char *t = a; *t;) {
		const char *nl = strchr(t, '\n');
		size_t tl = nl ? (size_t)(nl - t) : strlen(t);

		if (!apitest_has_line(b, t, tl))
			printf("#   %s %.*s\n", tag, (int)tl, t);
		if (!nl)
			break;
		t = nl + 1;
	}
}

/* Equal fingerprints?  When not, say which entries differ ("-" before,
 * "+" after: path, type, size, mode, mtime). */
static inline bool apitest_same_tree(const char *before, const char *after)
{
	if (strcmp(before, after) == 0)
		return true;
	apitest_diag_missing(before, after, "-");
	apitest_diag_missing(after, before, "+");
	fflush(stdout);
	return false;
}

/* The work scale of a test: OMEN_TEST_SCALE=<factor> when set and > 0,
 * else dflt. */
static inline double apitest_scale(double dflt)
{
	const char *env = getenv("OMEN_TEST_SCALE");
	double s = env && *env ? strtod(env, NULL) : dflt;

	return s > 0 ? s : dflt;
}

#endif
