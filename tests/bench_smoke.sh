#!/bin/sh
# The index benchmark runs in --smoke mode and prints its bench= lines.
. "${top_srcdir:-.}/tests/lib/smoke.sh"
smoke_run "bench_index --smoke" bench/bench_index '^bench='
