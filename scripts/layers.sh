#!/usr/bin/env bash
# Check that the files of src/ keep to their layers (scripts/layers.txt):
#
#  - an object of a lower layer uses no symbol defined by an object of a
#    higher layer (nm: each object's undefined symbols against the others'
#    defined ones);
#  - a file includes no header of a higher layer, nor a private header from
#    outside its directory;
#  - no files call (or include) each other in a circle, within a layer too;
#  - every file of src/ has a layer, and only one.
#
# Usage: scripts/layers.sh LAYERS ROOT OBJDIR
#   LAYERS  the layer list (scripts/layers.txt)
#   ROOT    the top of the tree the list's paths start from
#   OBJDIR  where the objects are, by source path: OBJDIR/src/x.c.o is the
#           object of ROOT/src/x.c (CMake: build/CMakeFiles/corio_obj.dir)
# Prints every violation and exits 1, or prints one line and exits 0.
set -euo pipefail

layers=${1:?usage: layers.sh LAYERS ROOT OBJDIR}
root=${2:?usage: layers.sh LAYERS ROOT OBJDIR}
objdir=${3:?usage: layers.sh LAYERS ROOT OBJDIR}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$root"

# file -> layer number, from the list (globs expanded here, in ROOT).
: >"$tmp/files"
: >"$tmp/private"
n=0
while read -r name rest; do
	case $name in '' | '#'*) continue ;; esac
	if [ "$name" = private ]; then
		echo "$rest" >>"$tmp/private"
		continue
	fi
	n=$((n + 1))
	echo "$n $name" >>"$tmp/names"
	for pat in $rest; do
		found=0
		for f in $pat; do
			[ -f "$f" ] || continue
			echo "$f $n" >>"$tmp/files"
			found=1
		done
		[ $found = 1 ] || echo "layers.txt: $pat (layer $name) matches no file" >>"$tmp/bad"
	done
done <"$layers"

awk '{ if (seen[$1]++) print "layers.txt: " $1 " is in two layers" }' "$tmp/files" >>"$tmp/bad"
if [ -d src ]; then
	find src -type f \( -name '*.c' -o -name '*.h' -o -name '*.S' \) | sort |
		awk 'NR == FNR { have[$1] = 1; next } !($1 in have) { print "layers.txt: " $1 " has no layer" }' \
			"$tmp/files" - >>"$tmp/bad"
fi

# Symbols: "object symbol" lines, defined and used (undefined) apart.
nobj=0
while IFS= read -r o; do
	src=${o#"$objdir"/}
	src=${src%.o}
	nobj=$((nobj + 1))
	nm -P -g "$o" | awk -v f="$src" -v defs="$tmp/defs" -v uses="$tmp/uses" '
		$2 == "U" { print f, $1 >>uses; next }
		$2 ~ /^[A-Za-z]$/ && $2 != "w" && $2 != "v" { print f, $1 >>defs }'
done < <(find "$objdir" -name '*.o' | sort)
[ "$nobj" -gt 0 ] || { echo "layers.sh: no objects under $objdir" >&2; exit 2; }
touch "$tmp/defs" "$tmp/uses"

# Calls: "user definer symbol", then the upward ones.
awk 'NR == FNR { def[$2] = $1; next } ($2 in def) && def[$2] != $1 { print $1, def[$2], $2 }' \
	"$tmp/defs" "$tmp/uses" | sort -u >"$tmp/calls"
awk 'FILENAME == ARGV[1] { layer[$1] = $2; next }
     FILENAME == ARGV[2] { name[$1] = $2; next }
     {
	if (!($1 in layer) || !($2 in layer))
		next # reported above: no layer
	if (layer[$2] > layer[$1])
		printf "upward call: %s (%s) uses %s of %s (%s)\n", $1, name[layer[$1]], $3, $2, name[layer[$2]]
     }' "$tmp/files" "$tmp/names" "$tmp/calls" >>"$tmp/bad"

# Includes: "includer included", resolved as the compiler does (the
# includer's directory, then src/); public headers (include/) are free.
find src include -type f \( -name '*.h' -o -name '*.c' \) >"$tmp/all" 2>/dev/null || true
awk 'FILENAME == ARGV[1] { have[$1] = 1; next }
     function norm(p,    n, i, k, part, out) {
	n = split(p, part, "/"); k = 0
	for (i = 1; i <= n; i++) {
		if (part[i] == "." || part[i] == "") continue
		if (part[i] == ".." && k > 0) { k--; continue }
		out[++k] = part[i]
	}
	p = out[1]
	for (i = 2; i <= k; i++) p = p "/" out[i]
	return p
     }
     FNR == 1 { dir = FILENAME; sub(/\/[^\/]*$/, "", dir) }
     /^[ \t]*#[ \t]*include[ \t]*"/ {
	inc = $0; sub(/^[^"]*"/, "", inc); sub(/".*/, "", inc)
	if ((p = norm(dir "/" inc)) in have) print FILENAME, p
	else if ((p = norm("src/" inc)) in have) print FILENAME, p
     }' "$tmp/all" $(awk '{ print $1 }' "$tmp/files") | grep -v ' include/' >"$tmp/incs" || true
awk 'FILENAME == ARGV[1] { layer[$1] = $2; next }
     FILENAME == ARGV[2] { name[$1] = $2; next }
     {
	if (!($2 in layer)) {
		printf "include: %s includes %s, which has no layer\n", $1, $2
		next
	}
	if (layer[$2] > layer[$1])
		printf "upward include: %s (%s) includes %s (%s)\n", $1, name[layer[$1]], $2, name[layer[$2]]
     }' "$tmp/files" "$tmp/names" "$tmp/incs" >>"$tmp/bad"
while read -r dir doors; do
	awk -v dir="$dir" -v doors=" $doors " '
		index($2, dir) == 1 && index($1, dir) != 1 && index(doors, " " $2 " ") == 0 {
			printf "private: %s includes %s (only files in %s may)\n", $1, $2, dir
		}' "$tmp/incs" >>"$tmp/bad"
done <"$tmp/private"

# Circles between files: calls and includes, each on its own.
for kind in calls incs; do
	awk '{ print $1, $2 }' "$tmp/$kind" | sort -u >"$tmp/edges"
	if ! tsort "$tmp/edges" >/dev/null 2>"$tmp/tsort"; then
		what=$([ $kind = calls ] && echo "call each other" || echo "include each other")
		# tsort prints each circle it meets as a list of its files.
		awk -v what="$what" '/input contains a loop/ { if (c) print c; c = ""; next }
			{ sub(/^tsort: /, ""); c = c (c ? " -> " : "circle: these files " what " in a circle: ") $0 }
			END { if (c) print c }' "$tmp/tsort" >>"$tmp/bad"
	fi
done

if [ -s "$tmp/bad" ]; then
	cat "$tmp/bad"
	echo "layers: $(wc -l <"$tmp/bad") violation(s) of $layers"
	exit 1
fi
echo "layers: ok ($nobj objects, $(wc -l <"$tmp/files") files, $(wc -l <"$tmp/calls") cross-file uses, $n layers)"
