/*
 * shard/testhooks.h — white-box hooks for tests that link the engine's
 * internals (never exported from libomendb.so: only omen_* symbols are).
 */
#ifndef OMEN_SHARD_TESTHOOKS_H
#define OMEN_SHARD_TESTHOOKS_H

#include <stdatomic.h>
#include <stdbool.h>

#include "omendb.h"

/* Make every value of every shard non-resident (only in its column
 * family), through each worker; returns once done.  Reads then take the
 * storage path. */
int odb_test_evict_all(omen_db *db);

/* Make every worker sleep after its current batch until odb_test_release
 * (records queue up meanwhile; omen_close waits for the release too). */
int odb_test_pause(omen_db *db);
void odb_test_release(omen_db *db);

/* True once omen_close has begun (the handle is still valid while close
 * is blocked on a paused worker). */
bool odb_test_closing(omen_db *db);

/* While non-zero, every rebuild (at omen_open, in the background) waits
 * before it reads its family: the shards stay OTREE_BUILDING and reads
 * are served from storage.  omen_close still stops a held rebuild.
 * Set it before omen_open; odb_test_release_rebuild clears it and wakes
 * the workers. */
extern atomic_uint odb_test_hold_rebuild;
void odb_test_release_rebuild(void);

#endif
