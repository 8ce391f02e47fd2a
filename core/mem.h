/*
 * core/mem.h — the engine's memory layer over jemalloc's explicit API.
 *
 * Why not malloc: inside a shared library, malloc resolves to glibc even
 * when the library links -ljemalloc (the program's own dependencies win the
 * symbol lookup), while mallocx resolves to jemalloc.  Mixing the two is
 * heap corruption, so every engine allocation goes through these functions
 * and is released through them, with the size it was allocated with.
 *
 * Arenas: each owner (an ALEX tree, later a shard) allocates from its own
 * arena so its memory can be measured and released as a unit and so
 * threads of different shards do not contend on one arena's locks.
 *
 * Under OMEN_ASAN and OMEN_TSAN the layer routes to the system allocator,
 * which the sanitizers intercept, so that they see (and check) every node.
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef OMEN_CORE_MEM_H
#define OMEN_CORE_MEM_H

#include <stddef.h>

/* Alignment of every allocation: one cache line. */
#define OMEM_ALIGN 64

/* Create a fresh arena; 0 on success (*arena set), -ENOMEM otherwise. */
int omem_arena_create(unsigned *arena);

/* Destroy an arena created by omem_arena_create.  Every allocation made from
 * it must already have been freed. */
void omem_arena_destroy(unsigned arena);

/* Allocate size bytes (> 0) from arena, OMEM_ALIGN-aligned; NULL on failure
 * (including a failure injected by omem_fail_after). */
void *omem_alloc(unsigned arena, size_t size);

/* Free p (NULL is a no-op), allocated from arena with exactly size bytes. */
void omem_free(unsigned arena, void *p, size_t size);

/* Bytes the allocator actually reserves for a request of size bytes. */
size_t omem_usable(size_t size);

/*
 * Test hook: make the allocation that comes n allocations from now fail
 * (n = 0: the very next one) and every one after it until reset; n < 0
 * disables injection.  Process-wide; tests that use it run single-threaded.
 */
void omem_fail_after(long n);

/*
 * Small objects (value blobs, queued records): allocated by any thread,
 * freed by any other (the shard worker, the RCU callback thread).  These
 * use the calling thread's own arena and thread cache: a record is
 * allocated on the producer's hot path, where an explicit shared arena
 * would put every producer of a shard behind one arena lock.  Natural
 * alignment (at least 8 bytes), not OMEM_ALIGN.  size > 0; free with the
 * same size.  NULL on failure, including an injected one.
 */
void *omem_small_alloc(size_t size);
void omem_small_free(void *p, size_t size);
/* Bytes reserved for a small object of size bytes (its size class). */
size_t omem_small_usable(size_t size);

/* Bytes currently allocated in arena according to jemalloc's statistics
 * (refreshes the stats epoch); 0 when unavailable (e.g. under ASan). */
size_t omem_arena_allocated(unsigned arena);

#endif
