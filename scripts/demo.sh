#!/usr/bin/env bash
# scripts/demo.sh [BENCH-ARGS...] — build, then run the ALEX index benchmark
# on a default data set (the engine itself arrives in a later release).
# Arguments go to bench/bench_index (try --help).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/build.sh" >&2
# Default data set: 10M telemetry keys (device << 44 | ms timestamp), the
# shape OmenDB is built for.  `scripts/demo.sh --n 1m,10m` runs all five.
if [ "$#" -eq 0 ]; then
	set -- --n 10m --dist device
fi
exec "$root/build/bench/bench_index" "$@"
