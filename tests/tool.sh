#!/bin/sh
# tests/tool.sh — drive tools/omendb as a user would and report TAP: each
# command and its --help, bad usage (exit 2), a missing database (66), a
# missing key (3), CSV round trips through load and scan (text escapes,
# hex, a non-canonical input), a binary key file, checkpoint then verify of
# the copy, the demo at a tiny size, and the man page.
#
# Run by `make check` with top_builddir/top_srcdir in the environment (see
# AM_TESTS_ENVIRONMENT); by hand: top_builddir=build sh tests/tool.sh.

tool=${top_builddir:-.}/tools/omendb
man=${top_srcdir:-.}/tools/omendb.1
n=0
failed=0

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
check() { # NAME COMMAND...: pass when COMMAND succeeds
	name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}
show() { sed 's/^/# /' "$@"; }

if [ ! -x "$tool" ]; then
	echo "1..1"
	echo "not ok 1 - $tool is not built"
	exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/omendb-tool.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
out=$tmp/out err=$tmp/err

# run WANT NAME ARGS...: run the tool, expect exit status WANT; stdout in
# $out, stderr in $err (echoed as comments when the status is wrong).
run() {
	want=$1 name=$2
	shift 2
	"$tool" "$@" >"$out" 2>"$err"
	rc=$?
	if [ "$rc" -eq "$want" ]; then
		ok "$name (exit $want)"
	else
		not_ok "$name: exit $rc, expected $want"
		show "$out" "$err"
	fi
}
# The last run's stderr is one "omendb CMD: ..." message line or more.
err_like() {
	if grep -q "^omendb $1: .*$2" "$err"; then ok "$3"; else not_ok "$3"; show "$err"; fi
}

db=$tmp/db

# --- help and version -------------------------------------------------------
run 0 "--help" --help
check "--help lists every command" sh -c "for c in demo load get put del scan stats verify checkpoint; do grep -q \"^  \$c \" '$out' || exit 1; done"
run 0 "help" help
run 0 "--version" --version
check "--version prints a version" grep -q '^omendb [0-9][0-9]*\.[0-9][0-9]*\.[0-9]' "$out"
for c in load get put del scan stats verify checkpoint; do
	run 0 "$c --help" "$c" --help
	check "$c --help shows its usage" grep -q "^Usage: omendb $c" "$out"
done
run 0 "help get" help get
check "help get shows get's usage" grep -q "^Usage: omendb get" "$out"

# --- bad usage --------------------------------------------------------------
run 2 "no command"
run 2 "unknown command" frobnicate
check "unknown command: message on stderr" grep -q "^omendb: unknown command 'frobnicate'" "$err"
run 2 "unknown option" get --bogus "$db" 1
run 2 "get without KEY" get "$db"
run 2 "get with extra argument" get "$db" 1 2
run 2 "bad key" get "$db" 12x
err_like get "bad key" "bad key: 'omendb get: ...' on stderr"
run 2 "negative key" get "$db" -- -5
run 2 "key above 2^64-1" get "$db" 18446744073709551616
run 2 "scan --from above --to" scan --from 5 --to 1 "$db"
run 2 "scan bad --limit" scan --limit many "$db"
run 2 "put odd hex" put --hex "$db" 1 abc
run 2 "load --value without --binary" load --value x "$db" /dev/null
run 2 "load --shards too many" load --shards 5000 "$db" /dev/null
check "bad usage created no database" test ! -e "$db"

# --- a missing database -----------------------------------------------------
for c in get del; do
	run 66 "$c on a missing database" "$c" "$db" 1
done
for c in scan stats verify; do
	run 66 "$c on a missing database" "$c" "$db"
done
run 66 "checkpoint of a missing database" checkpoint "$db" "$tmp/nocp"
err_like checkpoint "no database" "missing database: 'omendb checkpoint: ...' on stderr"
check "reading commands created nothing" test ! -e "$db" -a ! -e "$tmp/nocp"
run 66 "load of a missing input file" load "$db" "$tmp/no-such.csv"

# --- put, get, del ----------------------------------------------------------
run 0 "put creates the database" put --shards 2 "$db" 42 'hello, world'
run 0 "get" get "$db" 42
check "get prints the value" test "$(cat "$out")" = 'hello, world'
run 0 "get by 0x key" get "$db" 0x2a
check "0x2a is 42" test "$(cat "$out")" = 'hello, world'
run 0 "get --hex" get --hex "$db" 42
check "get --hex prints hex" test "$(cat "$out")" = '68656c6c6f2c20776f726c64'
run 0 "put --hex" put --hex "$db" 43 00ff0a5c
run 0 "get --raw" get --raw "$db" 43
check "get --raw prints the bytes" test "$(od -An -tx1 "$out" | tr -d ' \n')" = '00ff0a5c'
run 0 "get escapes" get "$db" 43
check "get escapes non-printables" test "$(cat "$out")" = '\x00\xff\n\\'
run 0 "put an empty value" put "$db" 44 ''
run 0 "get an empty value" get "$db" 44
check "an empty value prints an empty line" test "$(wc -c <"$out")" -eq 1
run 3 "get of a missing key" get "$db" 7
err_like get "not found" "missing key: 'omendb get: ...' on stderr"
run 0 "del" del "$db" 42
run 3 "get after del" get "$db" 42
run 0 "del of an absent key" del "$db" 42
run 0 "del 44" del "$db" 44

# --- CSV round trip: awkward values through the text escapes --------------
# The expected scan output, canonical: keys ascending and decimal, every
# value escaped the way scan writes it.
awk 'BEGIN {
	for (i = 1; i <= 3000; i++) {
		k = i * 1000003
		m = i % 7
		if (m == 0) v = "plain" i
		else if (m == 1) v = "comma\\x2cin\\x2cvalue" i
		else if (m == 2) v = "line\\nbreak\\r\\ttab" i
		else if (m == 3) v = "back\\\\slash \\\\x41 " i
		else if (m == 4) v = "\\x00\\x01\\x7f\\xff bytes" i
		else if (m == 5) v = ""
		else v = "quote \" and # and ; " i
		printf "%.0f,%s\n", k, v
	}
}' >"$tmp/expect.csv"
run 0 "load a CSV" load "$db" "$tmp/expect.csv"
check "load reports the count" grep -q 'loaded 3000 records' "$out"
check "load is quiet on stderr when it is not a terminal" test ! -s "$err"
run 0 "scan to a file" scan "$db" --from 1000 -o "$tmp/scan.csv"
check "scan -o reports the count" grep -q 'wrote 3000 records' "$out"
check "CSV round trip: scan output equals the loaded CSV" cmp "$tmp/expect.csv" "$tmp/scan.csv"
run 0 "scan to stdout" scan --from 1000 "$db"
check "scan to stdout equals scan -o" cmp "$tmp/expect.csv" "$out"
run 0 "scan with a range and a limit" scan --from 2000006 --to 0xffffffff --limit 3 "$db"
check "range and limit" test "$(cut -d, -f1 "$out" | tr '\n' ' ')" = '2000006 3000009 4000012 '
run 0 "get of a loaded awkward value" get --hex "$db" 4000012
check "its bytes" test "$(cat "$out")" = '00017fff20627974657334'

# Hex: scan --hex, load --hex into another database, compare as text.
run 0 "scan --hex" scan --hex --from 1000 "$db" -o "$tmp/hex.csv"
run 0 "load --hex" load --hex --shards 3 "$tmp/db-hex" "$tmp/hex.csv"
run 0 "scan the hex-loaded copy" scan "$tmp/db-hex" -o "$tmp/scan-hex.csv"
check "hex round trip" cmp "$tmp/expect.csv" "$tmp/scan-hex.csv"

# A non-canonical CSV from standard input: header, comment, CRLF, hex key,
# a raw comma in a value, a duplicate (last wins).
printf 'key,value\r\n# a comment\r\n\r\n0x10,a,b,c\r\n17,x\r\n17,y\\\\z\r\n' >"$tmp/loose.csv"
"$tool" load "$tmp/db-loose" - <"$tmp/loose.csv" >"$out" 2>"$err"
check "load from stdin" test $? -eq 0
run 0 "scan the loose load" scan "$tmp/db-loose"
check "loose CSV normalised" test "$(cat "$out")" = "$(printf '16,a\\x2cb\\x2cc\n17,y\\\\z')"
printf '1,ok\n2,bad\\q\n3,never\n' >"$tmp/bad.csv"
run 1 "load stops at a bad escape" load "$tmp/db-bad" "$tmp/bad.csv"
err_like load "bad.csv:2: bad value" "the bad line is named"
run 0 "the records before the bad line" get "$tmp/db-bad" 1
run 3 "nothing after it" get "$tmp/db-bad" 3
printf '1,ok\nnotakey,x\n' >"$tmp/bad2.csv"
run 1 "load stops at a bad key" load "$tmp/db-bad" "$tmp/bad2.csv"

# --- binary key file ---------------------------------------------------------
: >"$tmp/keys.bin"
i=1
while [ $i -le 200 ]; do
	printf "\\$(printf %03o $i)\\000\\000\\000\\000\\000\\000\\000" >>"$tmp/keys.bin"
	i=$((i + 1))
done
printf '\000\000\000\000\000\000\000\200' >>"$tmp/keys.bin" # 2^63
run 0 "load --binary" load --binary --value fixed --shards 2 "$tmp/db-bin" "$tmp/keys.bin"
check "binary: 201 records" grep -q 'loaded 201 records' "$out"
run 0 "binary: key 200" get "$tmp/db-bin" 200
check "binary: the fixed value" test "$(cat "$out")" = fixed
run 0 "binary: key 2^63" get "$tmp/db-bin" 0x8000000000000000
run 0 "stats" stats "$tmp/db-bin"
check "stats: 201 keys" grep -q '^keys  *201$' "$out"
check "stats: a line per shard" test "$(grep -c '^[01] ' "$out")" -eq 2
printf '123456789' >"$tmp/odd.bin"
run 1 "load --binary of a 9-byte file" load --binary "$tmp/db-bin" "$tmp/odd.bin"
printf '\001\000\000\000\000\000\000\000' | "$tool" load --binary "$tmp/db-bin2" - >"$out" 2>"$err"
check "load --binary from stdin, empty values" test $? -eq 0
run 0 "an empty value from --binary" get "$tmp/db-bin2" 1

# --- stats, verify, checkpoint ---------------------------------------------
run 0 "verify" verify "$db"
check "verify reports the keys" grep -q 'verified 3001 keys' "$out"
run 0 "checkpoint" checkpoint "$db" "$tmp/cp"
run 1 "checkpoint onto an existing directory" checkpoint "$db" "$tmp/cp"
run 0 "verify the checkpoint" verify "$tmp/cp"
check "the checkpoint holds every key" grep -q 'verified 3001 keys' "$out"
run 0 "scan the checkpoint" scan --from 1000 "$tmp/cp" -o "$tmp/scan-cp.csv"
check "the checkpoint's records equal the source's" cmp "$tmp/expect.csv" "$tmp/scan-cp.csv"
run 74 "scan to an unwritable file" scan "$db" -o "$tmp/no/such/dir/x.csv"

# --- demo ---------------------------------------------------------------------
"$tool" demo --help >"$out" 2>"$err"
if [ $? -ne 0 ]; then
	skip "demo" "demo --help fails (not built yet?)"
elif grep -q -- '--devices' "$out" && grep -q -- '--readings' "$out"; then
	run 0 "demo at a tiny size" demo --devices 20 --readings 100 "$tmp/demo"
else
	skip "demo" "no --devices/--readings options to make it small"
fi

# --- the man page -----------------------------------------------------------
if command -v groff >/dev/null 2>&1; then
	groff -man -Tascii -ww -z "$man" >"$out" 2>"$err"
	if [ $? -eq 0 ] && [ ! -s "$err" ]; then ok "man page renders without warnings"; else not_ok "man page renders"; show "$err"; fi
else
	skip "man page renders" "no groff"
fi
check "man page covers every command" sh -c "for c in demo load get put del scan stats verify checkpoint; do grep -q \"^\\.B omendb \$c\" '$man' || grep -q \"omendb \$c\" '$man' || exit 1; done"

echo "1..$n"
exit 0
