#!/usr/bin/env bash
# scripts/demo.sh [BENCH-ARGS...] — build, then run the engine benchmark:
# OmenDB against RocksDB, LMDB and a sorted array on the same workload in
# one process (load, reopen, gets, scans, read/update mixes, synchronous
# puts).  Arguments go to bench/bench_engine (try --help); the default is
# 1M telemetry keys (device << 44 | ms timestamp), about two minutes on
# 2 CPUs.  `scripts/demo.sh --n 10m --dist random` reproduces the README's
# figures (about four minutes).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/build.sh" >&2
if [ "$#" -eq 0 ]; then
	set -- --n 1m --dist device --peers omendb,rocksdb,lmdb,array
fi
exec "$root/build/bench/bench_engine" "$@"
