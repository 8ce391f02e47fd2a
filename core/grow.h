/*
 * core/grow.h — the one growable-array step every module uses: make room
 * for `need` elements, doubling the capacity (from `first`) so that n
 * appends cost O(n) copies.  Plain realloc: these are scratch and API-side
 * buffers owned by one thread, never engine data shared with readers.
 */
#ifndef OMEN_CORE_GROW_H
#define OMEN_CORE_GROW_H

#include <errno.h>
#include <stdlib.h>

/* 0 with *p holding room for at least need elements of elem bytes (and
 * *cap their count), or -ENOMEM with *p and *cap unchanged. */
static inline int ogrow(void **p, size_t *cap, size_t need, size_t elem, size_t first)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : first;
	while (c < need)
		c *= 2;
	void *n = realloc(*p, c * elem);
	if (!n)
		return -ENOMEM;
	*p = n;
	*cap = c;
	return 0;
}

#endif
