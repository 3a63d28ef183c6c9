#!/usr/bin/env bash
# The layer check (scripts/layers.sh) on small fabricated trees: it must
# pass a tree that keeps to its layers and fail, naming the fault, one with
# an upward call, an upward include, a private header included from outside,
# a circle of calls within a layer, or a file without a layer.
#
# Usage: tests/layers_test.sh scripts/layers.sh CC
set -euo pipefail

check=$(realpath "${1:?usage: layers_test.sh LAYERS_SH CC}")
cc=${2:?usage: layers_test.sh LAYERS_SH CC}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

# tree NAME: a fresh tree with two layers, low (low.c, low.h) and high
# (high.c, high.h, and the private directory priv/), that keeps to them.
tree() {
	t=$tmp/$1
	mkdir -p "$t/src/priv" "$t/obj/src/priv"
	cat >"$t/layers.txt" <<-EOF
		# a comment
		low     src/low.c src/low.h
		high    src/high.c src/high.h src/priv/*
		private src/priv/ src/priv/door.h
	EOF
	echo 'int low(void);' >"$t/src/low.h"
	printf '#include "low.h"\nint low(void) { return 1; }\n' >"$t/src/low.c"
	echo 'int high(void);' >"$t/src/high.h"
	printf '#include "low.h"\n#include "high.h"\n#include "priv/door.h"\nint high(void) { return low() + door(); }\n' >"$t/src/high.c"
	echo 'int door(void);' >"$t/src/priv/door.h"
	echo 'int secret(void);' >"$t/src/priv/secret.h"
	printf '#include "door.h"\n#include "secret.h"\nint door(void) { return secret(); }\nint secret(void) { return 2; }\n' \
		>"$t/src/priv/door.c"
}

build() {
	local f
	for f in $(cd "$t" && find src -name '*.c'); do
		"$cc" -c -I"$t/src" -o "$t/obj/$f.o" "$t/$f"
	done
}

# expect NAME pass|fail [PATTERN]: run the check on the tree.
expect() {
	local name=$1 want=$2 pattern=${3:-} out rc=0
	build
	out=$("$check" "$t/layers.txt" "$t" "$t/obj" 2>&1) || rc=$?
	if [ "$want" = pass ] && [ $rc -eq 0 ]; then
		echo "ok    $name"
	elif [ "$want" = fail ] && [ $rc -eq 1 ] && grep -q -- "$pattern" <<<"$out"; then
		echo "ok    $name"
	else
		echo "FAIL  $name: exit $rc, wanted $want${pattern:+ with '$pattern'}; it said:"
		sed 's/^/      /' <<<"$out"
		failures=$((failures + 1))
	fi
}

tree clean
expect "a tree that keeps to its layers passes" pass

tree upcall
printf '#include "low.h"\nint high(void);\nint low(void) { return high(); }\n' >"$t/src/low.c"
expect "a lower layer calling a higher one fails" fail \
	'upward call: src/low.c (low) uses high of src/high.c (high)'

tree upinclude
printf '#include "low.h"\n#include "high.h"\nint low(void) { return 1; }\n' >"$t/src/low.c"
expect "a lower layer including a higher header fails" fail \
	'upward include: src/low.c (low) includes src/high.h (high)'

tree private
printf '#include "low.h"\n#include "high.h"\n#include "priv/secret.h"\nint high(void) { return low() + secret(); }\n' \
	>"$t/src/high.c"
expect "a private header included from outside its directory fails" fail \
	'private: src/high.c includes src/priv/secret.h'

tree circle
printf '#include "low.h"\n#include "high.h"\nint door(void);\nint high(void) { return low() + door(); }\nint back(void) { return 3; }\n' \
	>"$t/src/high.c"
printf '#include "door.h"\nint back(void);\nint door(void) { return back(); }\n' >"$t/src/priv/door.c"
rm "$t/src/priv/secret.h"
expect "two files of one layer calling each other fail" fail 'circle: these files call each other'

tree nolayer
printf 'int stray(void) { return 0; }\n' >"$t/src/stray.c"
expect "a file without a layer fails" fail 'src/stray.c has no layer'

tree twice
sed -i 's|^high    src/high.c|high    src/low.c src/high.c|' "$t/layers.txt"
expect "a file in two layers fails" fail 'src/low.c is in two layers'

[ $failures -eq 0 ] || { echo "$failures case(s) failed"; exit 1; }
