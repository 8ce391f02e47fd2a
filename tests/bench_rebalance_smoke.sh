#!/bin/sh
# The rebalancing benchmark runs in --smoke mode, exits 0 and ends with its
# machine-readable lines (no timing is judged: the machines are shared).
. "${top_srcdir:-.}/tests/lib/smoke.sh"
smoke_run "bench_rebalance --smoke" bench/bench_rebalance "^bench=rebalance phase=move"
