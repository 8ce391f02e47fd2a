#!/usr/bin/env bash
# scripts/install-deps.sh — make sure the Debian packages OmenDB builds with
# are installed.  Idempotent and quiet when everything is present.
#
# As root, installs only what is missing (apt-get update + install).  As
# another user, names the missing packages and the command to run, and exits
# with status 1.  On a system without dpkg it says so and exits 0: configure
# then reports whatever is missing.  OMEN_SKIP_DEPS=1 skips the check.
set -euo pipefail

build_pkgs=(gcc make autoconf automake libtool pkg-config
	librocksdb-dev liburcu-dev libck-dev libjemalloc-dev)
bench_pkgs=(libsqlite3-dev liblmdb-dev)

[ "${OMEN_SKIP_DEPS:-0}" = 1 ] && exit 0

if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "install-deps: no dpkg-query (not Debian/Ubuntu); not checking packages." >&2
	echo "install-deps: needed: ${build_pkgs[*]} ${bench_pkgs[*]}" >&2
	exit 0
fi

missing=()
for pkg in "${build_pkgs[@]}" "${bench_pkgs[@]}"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
	[ "$status" = installed ] || missing+=("$pkg")
done

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing Debian packages: ${missing[*]}" >&2
	echo "install-deps: install them with:" >&2
	echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q </dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
