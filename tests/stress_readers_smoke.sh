#!/bin/sh
# The one-writer / lock-free-readers stress program runs in --smoke mode and
# exits 0.
. "${top_srcdir:-.}/tests/lib/smoke.sh"
smoke_run "stress_readers --smoke" stress/stress_readers
