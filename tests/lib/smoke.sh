# tests/lib/smoke.sh — sourced by the *_smoke.sh tests: run one program in
# its quick --smoke mode and report the outcome as a single TAP test.
#
# smoke_run NAME PROGRAM [GREP-PATTERN]
#   PROGRAM is relative to $top_builddir.  The test passes when the program
#   exits 0 within $SMOKE_TIMEOUT seconds (default 600) and, if a pattern is
#   given, its output has a line matching it.  The program's output is
#   echoed as TAP comments, so it lands in the test's .log file.

smoke_run() {
	name=$1 prog=${top_builddir:-.}/$2 pattern=${3-}

	echo "1..1"
	if [ ! -x "$prog" ]; then
		echo "not ok 1 - $name: $prog is not built"
		return 0
	fi
	out=$(mktemp "${TMPDIR:-/tmp}/omen-smoke.XXXXXX") || exit 1
	if command -v timeout >/dev/null 2>&1; then
		timeout "${SMOKE_TIMEOUT:-600}" "$prog" --smoke >"$out" 2>&1
	else
		"$prog" --smoke >"$out" 2>&1
	fi
	rc=$?
	sed 's/^/# /' "$out"
	why=
	if [ "$rc" -eq 124 ]; then
		why="timed out after ${SMOKE_TIMEOUT:-600} s"
	elif [ "$rc" -ne 0 ]; then
		why="exit status $rc"
	elif [ -n "$pattern" ] && ! grep -q -- "$pattern" "$out"; then
		why="no output line matches '$pattern'"
	fi
	rm -f "$out"
	if [ -z "$why" ]; then
		echo "ok 1 - $name"
	else
		echo "not ok 1 - $name: $why"
	fi
	return 0
}
