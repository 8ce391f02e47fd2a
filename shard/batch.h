/*
 * shard/batch.h — the layout of omen_batch, shared by shard/batch.c (which
 * builds it) and shard/db.c (which consumes it).  Internal.
 */
#ifndef OMEN_SHARD_BATCH_H
#define OMEN_SHARD_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct obatch_op {
	uint64_t key;
	size_t off;        /* value bytes at data + off */
	uint32_t len;
	bool del;
};

struct omen_batch {
	struct obatch_op *ops;
	size_t n, cap;
	unsigned char *data;
	size_t dlen, dcap;
};

#endif
