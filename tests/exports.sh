#!/bin/sh
# libomendb.so exports omen_* symbols and nothing else (the ABI is the
# public header; internal helpers must stay local to the library).
lib=${top_builddir:-.}/.libs/libomendb.so
if [ ! -f "$lib" ]; then
	echo "1..0 # SKIP no shared library (built with --disable-shared)"
	exit 0
fi
echo "1..2"
syms=$(${NM:-nm} -D --defined-only "$lib" | awk 'NF >= 3 { print $3 }' | sort -u)
if echo "$syms" | grep -q '^omen_'; then
	echo "ok 1 - libomendb.so exports omen_* symbols"
else
	echo "not ok 1 - libomendb.so exports no omen_* symbol"
fi
others=$(echo "$syms" | grep -v '^omen_' | grep -v '^$')
if [ -z "$others" ]; then
	echo "ok 2 - nothing else is exported"
else
	echo "not ok 2 - symbols outside the omen_ prefix are exported:"
	echo "$others" | sed 's/^/#   /'
fi
