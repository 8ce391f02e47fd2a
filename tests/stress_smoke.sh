#!/bin/sh
# The ALEX stress program runs in --smoke mode and exits 0.
. "${top_srcdir:-.}/tests/lib/smoke.sh"
smoke_run "stress_alex --smoke" stress/stress_alex
