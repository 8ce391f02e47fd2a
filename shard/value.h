/*
 * shard/value.h — what a shard's tree stores for a key: a tagged word.
 *
 *   bit 0 clear   resident: the word is a pointer to the value's oblob
 *                 (blobs are at least 8-byte aligned, so bit 0 is free).
 *   bit 0 set     not resident: the value is only in the shard's column
 *                 family; bits 63..1 hold its length.
 *
 * The key is always in the tree, resident or not, so a lookup of a
 * missing key never reaches storage.  A blob is immutable once its
 * pointer is in the tree and is freed only after an RCU grace period
 * following its replacement, so a reader inside a read-side section may
 * copy it without further checks.
 */
#ifndef OMEN_SHARD_VALUE_H
#define OMEN_SHARD_VALUE_H

#include <stdbool.h>
#include <stdint.h>

#include "ingest/record.h"

static inline bool oval_resident(uint64_t w)
{
	return (w & 1) == 0;
}

static inline const oblob *oval_blob(uint64_t w)
{
	return (const oblob *)(uintptr_t)w;
}

static inline uint64_t oval_of_blob(const oblob *b)
{
	return (uint64_t)(uintptr_t)b;
}

static inline uint64_t oval_nonresident(uint32_t len)
{
	return (uint64_t)len << 1 | 1;
}

/* The value length a non-resident word records. */
static inline size_t oval_nonresident_len(uint64_t w)
{
	return (size_t)(w >> 1);
}

#endif
