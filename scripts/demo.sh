#!/usr/bin/env bash
# scripts/demo.sh [BENCH-ARGS...] — build, then run the ALEX index benchmark
# on its default data set (the engine itself arrives in a later release).
# Arguments go to bench/bench_index (try --help).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/build.sh" >&2
exec "$root/build/bench/bench_index" "$@"
