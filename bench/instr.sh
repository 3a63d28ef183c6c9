#!/usr/bin/env bash
# Instructions per operation of a benchmark program, counted by callgrind.
#
# Usage: bench/instr.sh NAME IMPL N PER PROGRAM ARGS...
#
# Runs PROGRAM twice under valgrind --tool=callgrind, with the word "{N}"
# in ARGS replaced by N and then by 2N, and prints
#
#   RESULT name=NAME impl=IMPL value=<instructions per operation> unit=instr
#
# PER is how many operations one unit of {N} stands for (2 for a ping-pong
# of two switches per iteration), as the program's own time divides it.
# The figure is (Ir(2N) - Ir(N)) / (N * PER): what one more operation costs, with the
# start-up, set-up and warm-up (the same in both runs) taken out. Instruction
# counts do not move with the machine's load, unlike times: a change to the
# op path shows in them even when the clock is too noisy to tell. They count
# user-space instructions only: the kernel's share of a system call is not in
# them, so they say what corio adds, not what an operation costs in all.
# Not counted either: corio__valgrind_completed, which tells memcheck what a
# completion wrote and runs only under valgrind (collection is toggled off
# inside it; --collect-atstart must follow --toggle-collect, which
# turns collection off at start).
set -euo pipefail

[ $# -ge 5 ] || { echo "usage: bench/instr.sh NAME IMPL N PER PROGRAM ARGS..." >&2; exit 2; }
name=$1 impl=$2 n=$3 per=$4
shift 4
command -v valgrind >/dev/null || { echo "instr.sh: valgrind is missing" >&2; exit 1; }
[ "$n" -gt 0 ] 2>/dev/null && [ "$per" -gt 0 ] 2>/dev/null ||
	{ echo "instr.sh: N and PER must be positive numbers" >&2; exit 2; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# ir COUNT: the program's total instructions with {N} = COUNT.
ir() {
	local args=() a
	for a in "$@"; do
		args+=("${a//\{N\}/$count}")
	done
	valgrind --tool=callgrind --toggle-collect=corio__valgrind_completed --collect-atstart=yes \
		--callgrind-out-file="$out/cg.$count" "${args[@]}" \
		>/dev/null 2>"$out/log.$count" || {
		echo "instr.sh: failed under callgrind: ${args[*]}" >&2
		tail -5 "$out/log.$count" >&2
		return 1
	}
	sed -n 's/^summary: *\([0-9]*\).*/\1/p; s/^totals: *\([0-9]*\).*/\1/p' "$out/cg.$count" | head -1
}

count=$n
one=$(ir "$@")
count=$((2 * n))
two=$(ir "$@")
[ -n "$one" ] && [ -n "$two" ] || { echo "instr.sh: no instruction count from callgrind" >&2; exit 1; }
awk -v a="$one" -v b="$two" -v n="$((n * per))" -v name="$name" -v impl="$impl" \
	'BEGIN { printf "RESULT name=%s impl=%s value=%.1f unit=instr\n", name, impl, (b - a) / n }'
