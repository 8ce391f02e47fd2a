#!/usr/bin/env bash
# scripts/build.sh [CONFIGURE-ARGS...] — build OmenDB out of tree.
#
#   1. scripts/install-deps.sh (missing Debian packages);
#   2. autoreconf -fi when configure is missing or older than configure.ac
#      or Makefile.am;
#   3. configure in a build directory, unless that directory is already
#      configured with the same arguments:
#        no arguments                    -> build/
#        --enable-asan                   -> build-asan/
#        --enable-tsan --enable-debug    -> build-tsan-debug/
#      (the suffix is the arguments with --enable-/--with-/-- stripped,
#      joined by '-'; OMEN_BUILD_DIR=path overrides the choice);
#   4. make -j$(nproc).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

bash "$root/scripts/install-deps.sh"

if [ ! -x configure ] || [ ! -f Makefile.in ] ||
	[ configure -ot configure.ac ] || [ Makefile.in -ot Makefile.am ]; then
	echo "build: autoreconf -fi"
	autoreconf -fi
fi

if [ -n "${OMEN_BUILD_DIR:-}" ]; then
	dir=$OMEN_BUILD_DIR
elif [ $# -eq 0 ]; then
	dir=build
else
	suffix=
	for arg in "$@"; do
		arg=${arg#--enable-}
		arg=${arg#--with-}
		arg=${arg#--}
		suffix+=-$(printf '%s' "$arg" | tr -c 'A-Za-z0-9._\n' '_')
	done
	dir=build$suffix
fi
mkdir -p "$dir"
cd "$dir"

# The arguments this directory was configured with, one per line.
want=$(printf '%s\n' "$@")
stamp=.omen-configure-args
if [ ! -f Makefile ] || [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
	echo "build: configuring $dir with: ${*:-(defaults)}"
	rm -f "$stamp"
	"$root/configure" "$@"
	printf '%s\n' "$want" >"$stamp"
fi

make -j"$(nproc 2>/dev/null || echo 2)"
