#!/bin/sh
# The ingest queue benchmark runs in --smoke mode and prints its bench= lines.
. "${top_srcdir:-.}/tests/lib/smoke.sh"
smoke_run "bench_queue --smoke" bench/bench_queue '^bench=queue'
