#!/usr/bin/env bash
# scripts/test.sh — build and run the tests.
#
#   scripts/build.sh, then `make -j2 check` in build/.
#   With CI=true, also: `make distcheck` in build/, then `make check` in an
#   AddressSanitizer+UBSan build (build-asan/) and a ThreadSanitizer build
#   (build-tsan/).
#
# Ends with exactly one line "N passed, N failed": the sum of the "# PASS:"
# lines (passed) and "# FAIL:" + "# ERROR:" + "# XPASS:" lines (failed) of
# every `make check` summary it ran.  A failed build, distcheck, or a check
# run that fails without a summary counts as one more failure.  Exits 0 only
# when nothing failed.  OMEN_TEST_JOBS overrides the -j2.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root" || exit 1
jobs=${OMEN_TEST_JOBS:-2}
passed=0
failed=0
# What failed, repeated just before the closing line: CI may show only the
# tail of a long output.
notes=()

# summary_count NAME FILE: the number on the last "# NAME: n" line, or 0.
summary_count() {
	local n
	n=$(sed -n "s/^# $1: *\([0-9][0-9]*\)$/\1/p" "$2" | tail -n 1)
	echo "${n:-0}"
}

# build [CONFIGURE-ARGS...]: scripts/build.sh; a failure counts once.
build() {
	echo "== test: scripts/build.sh $*"
	if ! bash "$root/scripts/build.sh" "$@"; then
		echo "== test: FAILED: scripts/build.sh $*"
		notes+=("FAILED: scripts/build.sh $*")
		failed=$((failed + 1))
		return 1
	fi
}

# check DIR: make check in DIR and add its summary to the totals.
check() {
	local dir=$1 out rc p f
	out=$dir/.omen-check.out
	echo "== test: make -C $dir -j$jobs check"
	rm -f "$dir/test-suite.log" # a stale one would be shown if the build fails
	make -C "$dir" -j"$jobs" check 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	p=$(summary_count PASS "$out")
	f=$(($(summary_count FAIL "$out") + $(summary_count ERROR "$out") + $(summary_count XPASS "$out")))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	if [ "$rc" -ne 0 ]; then
		echo "== test: FAILED: make check in $dir"
		notes+=("FAILED: make check in $dir")
		while IFS= read -r line; do notes+=("  $line"); done \
			< <(grep -E '^(FAIL|ERROR|XPASS):' "$out" | head -n 20)
		if [ -f "$dir/test-suite.log" ]; then
			echo "== test: $dir/test-suite.log (failing tests only; last 150 lines):"
			tail -n 150 "$dir/test-suite.log"
		fi
	fi
}

if build; then
	check build
	if [ "${CI:-}" = true ]; then
		echo "== test: make -C build -j$jobs distcheck"
		make -C build -j"$jobs" distcheck 2>&1 | tee build/.omen-distcheck.out
		if [ "${PIPESTATUS[0]}" -ne 0 ]; then
			echo "== test: FAILED: make distcheck"
			notes+=("FAILED: make distcheck; its last lines:")
			while IFS= read -r line; do notes+=("  $line"); done \
				< <(tail -n 8 build/.omen-distcheck.out)
			failed=$((failed + 1))
			# distcheck leaves its tree behind on failure: show why.
			for log in build/omendb-*/_build/sub/test-suite.log; do
				[ -f "$log" ] || continue
				echo "== test: $log (failing tests only; last 150 lines):"
				tail -n 150 "$log"
				while IFS= read -r line; do notes+=("  $line"); done \
					< <(grep -E '^(FAIL|ERROR|XPASS):|^not ok' "$log" | head -n 20)
			done
		fi
	fi
fi

if [ "${CI:-}" = true ]; then
	build --enable-asan && check build-asan
	build --enable-tsan && check build-tsan
fi

for n in "${notes[@]}"; do
	echo "== test: $n"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
