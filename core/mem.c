/*
 * core/mem.c — see mem.h for why the engine allocates through jemalloc's
 * explicit API and never through malloc.
 */
#include "core/mem.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Sanitizer builds use the system allocator, which the sanitizers
 * intercept: ASan then checks every node access, and TSan sees allocation
 * and free (jemalloc's own synchronisation is invisible to it, so a node
 * freed after a grace period and reused would look like a race). */
#if defined(OMEN_ASAN) || defined(OMEN_TSAN)
#define OMEM_SYSTEM 1
#endif

#ifndef OMEM_SYSTEM
#include <jemalloc/jemalloc.h>
#include <pthread.h>
#include <sys/mman.h>
#endif

/*
 * Fault injection countdown.  -1: off.  Relaxed ordering is enough: the hook
 * is a test aid used by single-threaded tests; the atomic only keeps
 * ThreadSanitizer quiet when other threads allocate meanwhile.
 */
static atomic_long fail_countdown = -1;

void omem_fail_after(long n)
{
	atomic_store_explicit(&fail_countdown, n < 0 ? -1 : n, memory_order_relaxed);
}

/* True when this allocation must fail. */
static int injected_failure(void)
{
	long c = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
	if (c < 0)
		return 0;
	if (c == 0)
		return 1; /* stays at 0: every later allocation fails too */
	atomic_fetch_sub_explicit(&fail_countdown, 1, memory_order_relaxed);
	return 0;
}

#ifdef OMEM_SYSTEM

int omem_arena_create(unsigned *arena)
{
	*arena = 0;
	return 0;
}

void omem_arena_destroy(unsigned arena)
{
	(void)arena;
}

void *omem_alloc(unsigned arena, size_t size)
{
	(void)arena;
	if (size == 0 || injected_failure())
		return NULL;
	size_t rounded = (size + OMEM_ALIGN - 1) & ~(size_t)(OMEM_ALIGN - 1);
	return aligned_alloc(OMEM_ALIGN, rounded);
}

void omem_free(unsigned arena, void *p, size_t size)
{
	(void)arena;
	(void)size;
	free(p);
}

size_t omem_usable(size_t size)
{
	return (size + OMEM_ALIGN - 1) & ~(size_t)(OMEM_ALIGN - 1);
}

size_t omem_arena_allocated(unsigned arena)
{
	(void)arena;
	return 0;
}

void *omem_small_alloc(size_t size)
{
	if (size == 0 || injected_failure())
		return NULL;
	return malloc(size);
}

void omem_small_free(void *p, size_t size)
{
	(void)size;
	free(p);
}

size_t omem_small_usable(size_t size)
{
	return size;
}

#else /* jemalloc */

/* Node allocations bypass the thread cache: nodes are large (KBs) and are
 * allocated by one writer, and an explicit arena with a shared tcache could
 * hand back memory cached from another arena. */
#define OMEM_FLAGS(arena) \
	(MALLOCX_ARENA(arena) | MALLOCX_ALIGN(OMEM_ALIGN) | MALLOCX_TCACHE_NONE)

/*
 * Huge pages for index memory.  A 10M-key index spans hundreds of MB and
 * every lookup lands on a random page: with 4 KiB pages nearly every
 * lookup also misses the TLB.  Our arenas use jemalloc's default extent
 * hooks except for `alloc`, which asks the kernel for transparent huge
 * pages on each new mapping (a hint: a no-op when THP is off).  jemalloc
 * retains and reuses its mappings, so the hook runs rarely and on large
 * ranges.  The hooks table must outlive every arena: it is static.
 */
static extent_hooks_t *default_hooks;
static extent_hooks_t huge_hooks;
static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;
static int hooks_ok;

#define HUGE_PAGE (UINT64_C(2) << 20)

static void *huge_alloc(extent_hooks_t *h, void *new_addr, size_t size, size_t alignment,
			bool *zero, bool *commit, unsigned arena_ind)
{
	(void)h;
	void *p = default_hooks->alloc(default_hooks, new_addr, size, alignment, zero, commit,
				       arena_ind);
	if (p && size >= HUGE_PAGE)
		(void)madvise(p, size, MADV_HUGEPAGE);
	return p;
}

static void hooks_init(void)
{
	size_t sz = sizeof(default_hooks);
	if (mallctl("arena.0.extent_hooks", &default_hooks, &sz, NULL, 0) != 0 || !default_hooks)
		return;
	huge_hooks = *default_hooks;
	huge_hooks.alloc = huge_alloc;
	hooks_ok = 1;
}

int omem_arena_create(unsigned *arena)
{
	unsigned ind;
	size_t sz = sizeof(ind);
	pthread_once(&hooks_once, hooks_init);
	extent_hooks_t *hooks = &huge_hooks;
	int rc = hooks_ok ? mallctl("arenas.create", &ind, &sz, &hooks, sizeof(hooks))
			  : mallctl("arenas.create", &ind, &sz, NULL, 0);
	if (rc != 0)
		return -ENOMEM;
	*arena = ind;
	return 0;
}

void omem_arena_destroy(unsigned arena)
{
	char name[64];
	snprintf(name, sizeof(name), "arena.%u.destroy", arena);
	/* Failure leaves an empty arena behind: harmless, so not an error. */
	(void)mallctl(name, NULL, NULL, NULL, 0);
}

void *omem_alloc(unsigned arena, size_t size)
{
	if (size == 0 || injected_failure())
		return NULL;
	return mallocx(size, OMEM_FLAGS(arena));
}

void omem_free(unsigned arena, void *p, size_t size)
{
	if (p)
		sdallocx(p, size, OMEM_FLAGS(arena));
}

size_t omem_usable(size_t size)
{
	size_t n = nallocx(size, MALLOCX_ALIGN(OMEM_ALIGN));
	return n ? n : size;
}

void *omem_small_alloc(size_t size)
{
	if (size == 0 || injected_failure())
		return NULL;
	return mallocx(size, 0);
}

void omem_small_free(void *p, size_t size)
{
	if (p)
		sdallocx(p, size, 0);
}

size_t omem_small_usable(size_t size)
{
	size_t n = nallocx(size, 0);
	return n ? n : size;
}

size_t omem_arena_allocated(unsigned arena)
{
	uint64_t epoch = 1;
	size_t sz = sizeof(epoch);
	if (mallctl("epoch", &epoch, &sz, &epoch, sz) != 0)
		return 0;
	char name[96];
	size_t small = 0, large = 0;
	sz = sizeof(size_t);
	snprintf(name, sizeof(name), "stats.arenas.%u.small.allocated", arena);
	if (mallctl(name, &small, &sz, NULL, 0) != 0)
		small = 0;
	sz = sizeof(size_t);
	snprintf(name, sizeof(name), "stats.arenas.%u.large.allocated", arena);
	if (mallctl(name, &large, &sz, NULL, 0) != 0)
		large = 0;
	return small + large;
}

#endif
