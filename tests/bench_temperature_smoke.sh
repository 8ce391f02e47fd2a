#!/bin/sh
# bench_temperature at a tiny size (20k keys, 0.2 s runs), its databases in
# a temporary directory under the build directory: it must exit 0 and end
# with its machine-readable key=value lines, each with a number.  No timing
# is judged (the machines are shared).  The output lands in the .log file
# as TAP comments.
prog=${top_builddir:-.}/bench/bench_temperature

keys="tracking_off_1t_mops
tracking_on_1t_mops
tracking_ratio_1t
tracking_diff_1t_pct
tracking_off_2t_mops
tracking_on_2t_mops
tracking_ratio_2t
tracking_diff_2t_pct
zipf_resident_1t_mops
zipf_resident_2t_mops
zipf_budget_1t_mops
zipf_budget_2t_mops
zipf_budget_2t_p99_ns
zipf_rocksdb_1t_mops
zipf_rocksdb_2t_mops
zipf_scrambled_resident_2t_mops
zipf_scrambled_budget_2t_mops
zipf_scrambled_rocksdb_2t_mops
zipf_budget_bytes
zipf_budget_vs_resident
zipf_budget_vs_rocksdb
zipf_budget_mem_fraction"
total=$(($(echo "$keys" | wc -l) + 2))
echo "1..$total"

if [ ! -x "$prog" ]; then
	i=1
	while [ $i -le $total ]; do
		echo "not ok $i - $prog is not built"
		i=$((i + 1))
	done
	exit 0
fi

dir=$(mktemp -d "${top_builddir:-.}/bench-temperature-smoke.XXXXXX") || exit 1
out=$dir/out
if command -v timeout >/dev/null 2>&1; then
	timeout "${SMOKE_TIMEOUT:-600}" "$prog" -n 20k -t 0.2 -d "$dir/db" >"$out" 2>&1
else
	"$prog" -n 20k -t 0.2 -d "$dir/db" >"$out" 2>&1
fi
rc=$?
sed 's/^/# /' "$out"

if [ "$rc" -eq 0 ]; then
	echo "ok 1 - bench_temperature -n 20k -t 0.2: exit 0"
elif [ "$rc" -eq 124 ]; then
	echo "not ok 1 - bench_temperature timed out after ${SMOKE_TIMEOUT:-600} s"
else
	echo "not ok 1 - bench_temperature: exit status $rc"
fi

n=1
for k in $keys; do
	n=$((n + 1))
	if grep -Eq "^$k=-?[0-9]" "$out"; then
		echo "ok $n - $k"
	else
		echo "not ok $n - $k: no line \"$k=<number>\""
	fi
done
n=$((n + 1))
if grep -q '^failures=0$' "$out"; then
	echo "ok $n - failures=0"
else
	echo "not ok $n - no line failures=0"
fi
rm -rf "$dir"
exit 0
