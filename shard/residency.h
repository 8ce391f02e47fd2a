/*
 * shard/residency.h — the worker's side of temperature tracking and the
 * memory budget (see residency.c).  Every function here runs on the
 * shard's worker thread (or on the thread that writes the shard's tree at
 * the moment: bootstrap and moves), between batches unless noted.
 */
#ifndef OMEN_SHARD_RESIDENCY_H
#define OMEN_SHARD_RESIDENCY_H

#include <stdbool.h>
#include <stdint.h>

#include "shard/engine.h"

/* Tracking or a budget is on: layouts are kept. */
bool ores_enabled(const struct omen_db *db);

/* While applying a write to shard t (before the tree changes): key had a
 * payload old (had) and gets blob nb (NULL: deleted).  Stamps nb with t's
 * flush generation and keeps the counters of t and of key's bucket.  hint:
 * the last bucket index, 0 at the start of a sorted run. */
void ores_apply_note(oshard *t, uint32_t *hint, uint64_t key, bool had, uint64_t old,
		     oblob *nb);

/* Keep the layout current, then evict and readmit as the budget and the
 * plan say.  True when readmission work remains (come back soon). */
bool ores_step(oshard *sh);

/* Test hook OCTRL_EVICT_ALL: flush the family, make every value
 * non-resident. */
void ores_evict_all(oshard *sh);

/* call_rcu callback freeing a replaced layout. */
void ores_layout_rcu_free(struct rcu_head *h);

/* omen_close, workers and aggregator gone: free the layout and plans. */
void ores_destroy(oshard *sh);

#endif
