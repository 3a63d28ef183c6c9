#!/usr/bin/env bash
# The README's example must compile against the library as built: extract
# the C block under "## A taste" and build it.
# Usage: readme_example.sh SOURCE_DIR LIBCORIO_A CC [FLAGS...]
# (FLAGS: what the library was built with that the link needs, e.g. the
# sanitizers.)
set -euo pipefail
src=$1 lib=$2 cc=$3
shift 3
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
awk '/^## A taste/ { on = 1 } on && /^```c$/ { grab = 1; next } grab && /^```$/ { exit } grab' \
	"$src/README.md" >"$out/example.c"
[ -s "$out/example.c" ] || { echo "readme_example: no C block under '## A taste'" >&2; exit 1; }
"$cc" "$@" -Wall -Wextra -Wno-unused-parameter -Werror -I"$src/include" "$out/example.c" "$lib" \
	$(pkg-config --libs liburing) -lpthread -o "$out/example"
echo "readme_example: the README's example builds"
