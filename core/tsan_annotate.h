/*
 * core/tsan_annotate.h — telling ThreadSanitizer about orderings it cannot
 * see.  Concurrency Kit orders its rings with inline-asm loads, stores and
 * fences, and liburcu is not built with TSan; neither is visible to it.
 * Code that hands an object through such a structure hides the
 * structure's own accesses (HIDE_BEGIN/END) and makes the ordering it
 * guarantees explicit on the object: ITEM_RELEASE(p) before handing p
 * over, ITEM_ACQUIRE(p) after taking it.  Outside OMEN_TSAN builds all of
 * these are no-ops.
 */
#ifndef OMEN_CORE_TSAN_ANNOTATE_H
#define OMEN_CORE_TSAN_ANNOTATE_H

#ifdef OMEN_TSAN
#include <sanitizer/tsan_interface.h>
/* Dynamic annotations exported by the TSan runtime. */
void AnnotateIgnoreReadsBegin(const char *file, int line);
void AnnotateIgnoreReadsEnd(const char *file, int line);
void AnnotateIgnoreWritesBegin(const char *file, int line);
void AnnotateIgnoreWritesEnd(const char *file, int line);
#define HIDE_BEGIN() (AnnotateIgnoreReadsBegin(__FILE__, __LINE__), \
		      AnnotateIgnoreWritesBegin(__FILE__, __LINE__))
#define HIDE_END() (AnnotateIgnoreWritesEnd(__FILE__, __LINE__), \
		    AnnotateIgnoreReadsEnd(__FILE__, __LINE__))
#define ITEM_RELEASE(p) __tsan_release(p)
#define ITEM_ACQUIRE(p) __tsan_acquire(p)
#else
#define HIDE_BEGIN() ((void)0)
#define HIDE_END() ((void)0)
#define ITEM_RELEASE(p) ((void)(p))
#define ITEM_ACQUIRE(p) ((void)(p))
#endif

#endif
