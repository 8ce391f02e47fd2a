/*
 * recovery/layout.c — encoding of the metadata records; see layout.h.
 */
#include "recovery/layout.h"

#include <string.h>

static const char magic[8] = "omendb";

static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

void olayout_format_encode(uint8_t buf[OLAYOUT_FORMAT_LEN])
{
	memcpy(buf, magic, 8);
	put_u32(buf + 8, OLAYOUT_FORMAT);
}

long olayout_format_version(const uint8_t *buf, size_t len)
{
	if (len != OLAYOUT_FORMAT_LEN || memcmp(buf, magic, 8) != 0)
		return -1;
	return (long)get_u32(buf + 8);
}

long olayout_format_check(const uint8_t *buf, size_t len)
{
	long v = olayout_format_version(buf, len);

	if (v < 0)
		return -1;
	if (v == OLAYOUT_FORMAT)
		return 0;
	return v == 0 ? -2 : v;
}

size_t olayout_size(unsigned nshards)
{
	return 8 + (size_t)nshards * 8 + 8;
}

void olayout_encode(const uint64_t *lo, unsigned nshards, uint8_t *buf)
{
	put_u32(buf, 1);
	put_u32(buf + 4, nshards);
	for (unsigned i = 0; i < nshards; i++)
		put_u64(buf + 8 + 8 * (size_t)i, lo[i]);
	size_t body = 8 + 8 * (size_t)nshards;
	put_u64(buf + body, fnv1a(buf, body));
}

int olayout_decode(const uint8_t *buf, size_t len, unsigned max_shards, uint64_t *lo,
		   unsigned *nshards, const char **why)
{
	if (len < 16) {
		*why = "layout record too short";
		return -1;
	}
	/* n is believed only as far as it says where the checksum is: a
	 * length that disagrees with it (truncated or extended record, or a
	 * damaged n) is refused before the checksum is even looked at. */
	uint32_t n = get_u32(buf + 4);
	if (n == 0 || len != olayout_size(n)) {
		*why = "layout record size does not match its shard count (truncated or damaged)";
		return -1;
	}
	size_t body = 8 + 8 * (size_t)n;
	if (get_u64(buf + body) != fnv1a(buf, body)) {
		*why = "layout record checksum mismatch";
		return -1;
	}
	if (get_u32(buf) != 1) {
		*why = "unknown layout record version";
		return -1;
	}
	if (n > max_shards) {
		*why = "layout record names more shards than the database has";
		return -1;
	}
	for (uint32_t i = 0; i < n; i++) {
		lo[i] = get_u64(buf + 8 + 8 * (size_t)i);
		if ((i == 0 && lo[i] != 0) || (i > 0 && lo[i] <= lo[i - 1])) {
			*why = "layout boundaries are not strictly ascending from 0";
			return -1;
		}
	}
	*nshards = n;
	return 0;
}
