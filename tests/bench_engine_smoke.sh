#!/bin/sh
# bench_engine at a tiny size (20k keys, 0.2 s phases) with every engine:
# it must exit 0 and print a machine-readable line for each engine and each
# measurement that engine takes part in.  The output lands in the .log file
# as TAP comments.
prog=${top_builddir:-.}/bench/bench_engine

# engine, then the measurements it runs ("op attrs threads=N" as printed)
common="load|threads=1
get pick=uniform|threads=1
get pick=uniform|threads=2
get pick=zipf|threads=1
get pick=zipf|threads=2
scan len=100|threads=1
mix read_pct=95|threads=1
mix read_pct=95|threads=2
mix read_pct=50|threads=1
mix read_pct=50|threads=2"
persistent="reopen|threads=1
get_under_ingest pick=uniform|threads=1"

expect() {
	case $1 in
	omendb)  printf '%s\n%s\nload_ingest|threads=2\nput_sync|threads=8\n' "$common" "$persistent" ;;
	rocksdb) printf '%s\n%s\nput_sync|threads=8\n' "$common" "$persistent" ;;
	lmdb|sqlite) printf '%s\n%s\n' "$common" "$persistent" ;;
	sorted_array) printf '%s\n' "$common" ;;
	esac
}

engines="omendb rocksdb lmdb sqlite sorted_array"
total=1
for e in $engines; do
	total=$((total + $(expect "$e" | wc -l)))
done
echo "1..$((total + 1))"

if [ ! -x "$prog" ]; then
	i=1
	while [ $i -le $((total + 1)) ]; do
		echo "not ok $i - $prog is not built"
		i=$((i + 1))
	done
	exit 0
fi

out=$(mktemp "${TMPDIR:-/tmp}/omen-smoke.XXXXXX") || exit 1
if command -v timeout >/dev/null 2>&1; then
	timeout "${SMOKE_TIMEOUT:-600}" "$prog" --n 20k --seconds 0.2 \
		--peers omendb,rocksdb,lmdb,sqlite,array >"$out" 2>&1
else
	"$prog" --n 20k --seconds 0.2 --peers omendb,rocksdb,lmdb,sqlite,array >"$out" 2>&1
fi
rc=$?
sed 's/^/# /' "$out"

if [ "$rc" -eq 0 ]; then
	echo "ok 1 - bench_engine --n 20k --seconds 0.2, all engines: exit 0"
elif [ "$rc" -eq 124 ]; then
	echo "not ok 1 - bench_engine timed out after ${SMOKE_TIMEOUT:-600} s"
else
	echo "not ok 1 - bench_engine: exit status $rc"
fi

n=1
for e in $engines; do
	expect "$e" >"$out.expect"
	while IFS='|' read -r what threads; do
		n=$((n + 1))
		pat="^bench=engine engine=$e dist=random n=20000 op=$what $threads "
		line=$(grep -- "$pat" "$out" | head -n 1)
		if [ -z "$line" ]; then
			echo "not ok $n - $e: $what $threads: no line"
		elif echo "$line" | grep -q ' failed=1'; then
			echo "not ok $n - $e: $what $threads: failed=1"
		elif ! echo "$line" | grep -Eq ' (ops_per_s|seconds)=[0-9]'; then
			echo "not ok $n - $e: $what $threads: no figure"
		else
			echo "ok $n - $e: $what $threads"
		fi
	done <"$out.expect"
done

n=$((n + 1))
if grep -q '^bench=engine op=summary .*failures=0 ' "$out"; then
	echo "ok $n - summary: failures=0"
else
	echo "not ok $n - summary line missing or failures > 0"
fi
rm -f "$out" "$out.expect"
exit 0
