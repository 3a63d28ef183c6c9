#!/usr/bin/env bash
# Every C block of the documentation compiles and runs (docs/GUIDE.md,
# "Testing the documentation"): README.md, docs/*.md, examples/README.md.
#
# A block (a fence opened with ```c) is a whole program, unless the last
# non-blank line before its fence is <!-- doc-test: NAME.c -->: then
# tests/docs/NAME.c is compiled instead, with the block in block.c, which it
# includes where the fragment belongs. Each program is run with the
# default backend and with epoll, and must exit 0. As for the .epoll tests,
# the epoll registration re-check is off (CORIO_EPOLL_VERIFY_MS=0): a lost
# wake-up hangs (and fails at the timeout) instead of being rescued.
#
# Usage: doc_blocks.sh SOURCE_DIR LIBCORIO_A CC [FLAGS...]
# (FLAGS: what the library was built with that the link needs, e.g. the
# sanitizers.)
set -euo pipefail
src=$1 lib=$2 cc=$3
shift 3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

docs=("$src/README.md" "$src"/docs/*.md "$src/examples/README.md")
n=0
for md in "${docs[@]}"; do
	# Split the file into $tmp/<k>/block.c, with <k>/where and <k>/wrapper.
	awk -v out="$tmp" -v md="${md#"$src"/}" -v base="$n" '
		/^```c[[:space:]]*$/ && !inblock {
			inblock = 1; k++; dir = out "/" (base + k)
			system("mkdir -p " dir)
			print md ":" NR > (dir "/where")
			w = ""
			if (match(prev, /<!-- doc-test: [A-Za-z0-9_.-]+ -->/))
				w = substr(prev, RSTART + 15, RLENGTH - 19)
			print w > (dir "/wrapper")
			next
		}
		inblock && /^```[[:space:]]*$/ { inblock = 0; close(dir "/block.c"); next }
		inblock { print > (dir "/block.c"); next }
		NF { prev = $0 }
		END { if (inblock) { print md ": unterminated block" > "/dev/stderr"; exit 1 } }
	' "$md"
	n=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d | wc -l)
done
[ "$n" -gt 0 ] || { echo "doc_blocks: no C block found" >&2; exit 1; }

fail=0
for d in $(find "$tmp" -mindepth 1 -maxdepth 1 -type d | sort -V); do
	where=$(cat "$d/where")
	wrapper=$(cat "$d/wrapper")
	main=$d/block.c
	if [ -n "$wrapper" ]; then
		main=$src/tests/docs/$wrapper
		[ -f "$main" ] || { echo "doc_blocks: $where: no wrapper tests/docs/$wrapper" >&2; fail=1; continue; }
	fi
	if ! "$cc" "$@" -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -I"$src/include" \
		-I"$src/tests/docs" -I"$d" "$main" "$lib" $(pkg-config --libs liburing) -lpthread \
		-o "$d/prog" 2>"$d/cc.log"; then
		echo "FAIL  $where${wrapper:+ ($wrapper)}: does not compile:" >&2
		cat "$d/cc.log" >&2
		fail=1
		continue
	fi
	for be in auto epoll; do
		if CORIO_BACKEND=$be CORIO_EPOLL_VERIFY_MS=0 timeout 60 "$d/prog" >"$d/out.$be" 2>&1; then
			echo "ok    $where${wrapper:+ ($wrapper)} [$be]"
		else
			echo "FAIL  $where${wrapper:+ ($wrapper)} [$be]: exit $?" >&2
			cat "$d/out.$be" >&2
			fail=1
		fi
	done
done
exit $fail
