#!/usr/bin/env bash
# scripts/demo.sh [DEMO-ARGS...] — build, then run `omendb demo`: an IoT
# fleet (10,000 devices) ingested through omen_ingest from two threads,
# then the questions a telemetry user asks (latest reading per device,
# count/min/max/mean over a time window), close, reopen with the recovery
# time, and a summary table.  About 20 s on 2 CPUs.  Arguments go to
# `omendb demo` (try --help).
#
# scripts/demo.sh --bench [BENCH-ARGS...] runs the engine benchmark
# instead: OmenDB against RocksDB, LMDB and a sorted array in one process
# (bench/bench_engine; default 1M telemetry keys, about two minutes;
# `--bench --n 10m --dist random --peers omendb,rocksdb,lmdb,array`
# reproduces the README's figures).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/build.sh" >&2
if [ "${1:-}" = --bench ]; then
	shift
	if [ "$#" -eq 0 ]; then
		set -- --n 1m --dist device --peers omendb,rocksdb,lmdb,array
	fi
	exec "$root/build/bench/bench_engine" "$@"
fi
exec "$root/build/tools/omendb" demo "$@"
