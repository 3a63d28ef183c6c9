#!/usr/bin/env bash
# corio as another project uses it: install the build into a temporary
# prefix, then build tests/consumer/consumer.c outside the tree three ways
# and run each (an echo round trip over loopback, on the default backend
# and on epoll):
#   1. pkg-config, shared library (found through the rpath of its libdir);
#   2. pkg-config --static, linked fully statically;
#   3. CMake find_package(corio): corio::corio and corio::corio_static.
# This catches a header, a symbol or a .pc/CMake line that only works
# inside the tree (an install prefix chosen at install time, a private
# dependency missing from the static link...).
#
# Usage: consumer.sh SOURCE_DIR BUILD_DIR CC
set -euo pipefail
src=$1 build=$2 cc=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

cmake --install "$build" --prefix "$prefix" >/dev/null
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
cp "$src/tests/consumer/consumer.c" "$src/tests/consumer/CMakeLists.txt" "$tmp/"

run() {
	local what=$1 exe=$2
	for be in auto epoll; do
		if ! CORIO_BACKEND=$be "$exe"; then
			echo "consumer: $what failed (backend $be)" >&2
			exit 1
		fi
	done
}

# 1. Shared library, as the README says: pkg-config, plus an rpath (or
#    LD_LIBRARY_PATH) when the prefix is not a system directory.
libdir=$(pkg-config --variable=libdir corio)
"$cc" -Wall -Werror "$tmp/consumer.c" $(pkg-config --cflags --libs corio) \
	-Wl,-rpath,"$libdir" -o "$tmp/shared"
# (ldd's output whole, then grep: grep -q may exit before ldd is done, and
# pipefail would count ldd's SIGPIPE.)
deps=$(ldd "$tmp/shared")
grep -q "libcorio.so.0 => $libdir/libcorio.so.0" <<<"$deps" ||
	{ echo "consumer: the shared build does not load the installed libcorio:" >&2
	  echo "$deps" >&2; exit 1; }
run "pkg-config (shared)" "$tmp/shared"

# 2. Static: every private dependency must be in the .pc file.
"$cc" -Wall -Werror -static "$tmp/consumer.c" $(pkg-config --static --cflags --libs corio) \
	-o "$tmp/static"
if grep -q NEEDED <<<"$(readelf -d "$tmp/static" 2>/dev/null)"; then
	echo "consumer: the static build has dynamic dependencies" >&2
	exit 1
fi
run "pkg-config --static" "$tmp/static"

# 3. CMake: find_package(corio) from the prefix.
CC=$cc cmake -S "$tmp" -B "$tmp/build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$tmp/build" >/dev/null
run "CMake corio::corio" "$tmp/build/consumer_shared"
run "CMake corio::corio_static" "$tmp/build/consumer_static"
echo "consumer: built and ran against $prefix three ways"
