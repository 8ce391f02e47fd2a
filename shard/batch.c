/*
 * shard/batch.c — omen_batch: a caller-owned list of puts and deletes.
 *
 * A plain growable buffer, attached to no database: values are copied in
 * by omen_batch_put and copied once more, into engine blobs, by the call
 * that consumes the batch (omen_write / omen_ingest_batch).
 */
#include "shard/batch.h"

#include <stdlib.h>
#include <string.h>

#include "core/grow.h"
#include "omendb.h"
#include "shard/errors.h"

omen_batch *omen_batch_new(void)
{
	return calloc(1, sizeof(omen_batch));
}

void omen_batch_free(omen_batch *b)
{
	if (!b)
		return;
	free(b->ops);
	free(b->data);
	free(b);
}

void omen_batch_clear(omen_batch *b)
{
	if (b) {
		b->n = 0;
		b->dlen = 0;
	}
}

size_t omen_batch_count(const omen_batch *b)
{
	return b ? b->n : 0;
}

static int add(omen_batch *b, uint64_t key, const void *val, size_t len, bool del)
{
	if (ogrow((void **)&b->ops, &b->cap, b->n + 1, sizeof(*b->ops), 64) ||
	    ogrow((void **)&b->data, &b->dcap, b->dlen + len, 1, 4096))
		return OMEN_ENOMEM;
	if (len)
		memcpy(b->data + b->dlen, val, len);
	b->ops[b->n++] = (struct obatch_op){ key, b->dlen, (uint32_t)len, del };
	b->dlen += len;
	return OMEN_OK;
}

int omen_batch_put(omen_batch *b, uint64_t key, const void *val, size_t len)
{
	if (!b || (!val && len)) {
		oerr_set("omen_batch_put: %s", !b ? "NULL batch" : "NULL value with a non-zero length");
		return OMEN_EINVAL;
	}
	if (len > OMEN_MAX_VALUE) {
		oerr_set("omen_batch_put: value of %zu bytes exceeds OMEN_MAX_VALUE (%u)", len,
			 OMEN_MAX_VALUE);
		return OMEN_EINVAL;
	}
	return add(b, key, val, len, false);
}

int omen_batch_delete(omen_batch *b, uint64_t key)
{
	if (!b) {
		oerr_set("omen_batch_delete: NULL batch");
		return OMEN_EINVAL;
	}
	return add(b, key, NULL, 0, true);
}
