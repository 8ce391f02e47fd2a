/*
 * recovery/layout.h — the metadata records that describe a database on
 * disk, and their encoding.  Both live in the store's "meta" family.
 *
 *   "format"   the format version: the 8 bytes "omendb" padded with NULs,
 *              then a little-endian uint32 version.  Written once, when the
 *              database is created, and flushed to a table file at once
 *              (so that losing a WAL never makes a database look new).  A
 *              database whose version is not OLAYOUT_FORMAT, older (0
 *              included) or newer, is refused (OMEN_ECORRUPT with a message
 *              naming both versions), never misread.
 *   "layout"   the shard layout: nshards and the lower bound of every
 *              shard's key range, with a checksum.  Absent until the first
 *              batch of a new multi-shard database sets the boundaries
 *              (see core/root_model.h); rewritten atomically with the data
 *              when boundaries move.  Absent while a shard family other
 *              than shard 0 holds keys, or present with another shard
 *              count than the database's families: refused (ECORRUPT).
 *
 * Layout encoding (little-endian):
 *   u32 version (1) | u32 nshards | u64 lo[nshards] | u64 checksum
 * where checksum is FNV-1a 64 over everything before it.
 *
 * Thread safety: pure functions.
 */
#ifndef OMEN_RECOVERY_LAYOUT_H
#define OMEN_RECOVERY_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#define OLAYOUT_FORMAT 1u
#define OLAYOUT_FORMAT_KEY "format"
#define OLAYOUT_KEY "layout"
#define OLAYOUT_FORMAT_LEN 12

/* Encode the format record into buf (OLAYOUT_FORMAT_LEN bytes). */
void olayout_format_encode(uint8_t buf[OLAYOUT_FORMAT_LEN]);

/* The version a format record holds (0 .. UINT32_MAX), or -1 when buf is
 * not an OmenDB format record at all (wrong length or magic). */
long olayout_format_version(const uint8_t *buf, size_t len);

/* Check a format record: 0 when it is ours and current; -1 when it is not
 * an OmenDB format record at all; otherwise the version found when it is
 * > 0, and -2 for version 0 (older than any released format: it must not
 * read as "current", which 0 means here).  olayout_format_version gives
 * the version without that special case. */
long olayout_format_check(const uint8_t *buf, size_t len);

/* Bytes of an encoded layout of n shards. */
size_t olayout_size(unsigned nshards);

/* Encode into buf (olayout_size(n) bytes). */
void olayout_encode(const uint64_t *lo, unsigned nshards, uint8_t *buf);

/*
 * Decode and validate: 0 and *nshards / lo filled (lo has room for
 * max_shards entries), or -1 and a reason in why (static string): too
 * short, size not that of its shard count (truncated or extended), bad
 * checksum, unknown layout version, more than max_shards shards,
 * boundaries not strictly ascending from 0.  The checksum is checked
 * before anything else in the record is believed, except the shard count
 * that says where the checksum is.
 */
int olayout_decode(const uint8_t *buf, size_t len, unsigned max_shards, uint64_t *lo,
		   unsigned *nshards, const char **why);

#endif
