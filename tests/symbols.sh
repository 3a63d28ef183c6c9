#!/usr/bin/env bash
# The shared library exports exactly the public API: its dynamic symbols
# are the functions declared CORIO_API in include/, no more, no fewer. And
# its names agree with the version scheme (CONTRIBUTING.md): the file is
# libcorio.so.<CORIO_VERSION_MAJOR.MINOR.PATCH of corio/types.h>, the
# soname libcorio.so.<N> and every symbol has the version node CORIO_<N>.
#
# Usage: symbols.sh SOURCE_DIR LIBCORIO_SO
set -euo pipefail
src=$1 lib=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Declarations: "CORIO_API <type> [*]corio_name(" (one line each, as
# written in the headers).
grep -rhE '^CORIO_API' "$src/include" | grep -oE '^CORIO_API[^(;]*\(' |
	sed -E 's/.*[^A-Za-z0-9_](corio_[A-Za-z0-9_]+)[[:space:]]*\($/\1/' | sort -u >"$tmp/declared"
# Exports: defined dynamic symbols, without the version suffix, without
# the version node itself.
nm -D --defined-only "$lib" | awk '$2 != "A" { sub(/@.*/, "", $3); print $3 }' |
	sort -u >"$tmp/exported"
if ! diff -u "$tmp/declared" "$tmp/exported" >"$tmp/diff"; then
	echo "symbols: exports differ from the CORIO_API declarations (- declared only, + exported only):" >&2
	grep -E '^[-+][a-z]' "$tmp/diff" >&2
	exit 1
fi

ver() { sed -nE "s/^#define CORIO_VERSION_$1 ([0-9]+).*/\1/p" "$src/include/corio/types.h"; }
version=$(ver MAJOR).$(ver MINOR).$(ver PATCH)
real=$(basename "$(readlink -f "$lib")")
[ "$real" = "libcorio.so.$version" ] ||
	{ echo "symbols: library file $real, but corio/types.h says $version" >&2; exit 1; }
soname=$(readelf -d "$lib" | sed -nE 's/.*SONAME.*\[(.*)\].*/\1/p')
n=${soname#libcorio.so.}
nodes=$(nm -D --defined-only "$lib" | sed -nE 's/.*@@(CORIO_[0-9]+)$/\1/p' | sort -u)
[ "$nodes" = "CORIO_$n" ] ||
	{ echo "symbols: soname $soname, but symbol versions: $nodes" >&2; exit 1; }
echo "symbols: $(wc -l <"$tmp/exported") exported, as declared; $real, soname $soname"
