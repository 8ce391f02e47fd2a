#!/bin/sh
# The crash test runs in --smoke mode (20 kill/reopen cycles, short runs)
# and exits 0: no acknowledged write lost, nothing that was never written
# found, every reopen after a kill succeeded.
. "${top_srcdir:-.}/tests/lib/smoke.sh"
smoke_run "stress_crash --smoke" stress/stress_crash '^stress_crash: passed.* lost=0 phantom=0'
