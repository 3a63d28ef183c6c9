#!/usr/bin/env bash
# Two builds of corio side by side, in one run: the micro rows of run.sh
# and the echo rows, each program of the base build followed at once by the
# same program of the new one, with the raw-liburing peers in the same
# rounds. For a change that must keep speed as it is.
#
# Usage: bench/compare.sh BASE_BUILD NEW_BUILD
#   e.g.  git worktree add /tmp/base main (or git archive main | tar -x)
#         cmake -S /tmp/base -B /tmp/base/build -DCMAKE_BUILD_TYPE=RelWithDebInfo
#         cmake --build /tmp/base/build -j2
#         flock /tmp/corio-bench.lock bench/compare.sh /tmp/base/build build
#
# Environment: BENCH_REPS=7 (micro rounds), BENCH_CPU=0; echo: RUNS=3,
# DURATION, SCENARIOS, ... as bench/net/echo.sh;
# BENCH_SECTIONS="micro instr echo" (instr: instructions per operation of
# each build, bench/instr.sh; counts do not move with the machine's load).
# Prints, per row, the median of each build, the median of the per-round
# ratios new/base (1.00x: the same; below 1 is slower for rates, faster for
# times), and the peer's median where the row has one.
set -euo pipefail

BASE=$(cd "${1:?usage: bench/compare.sh BASE_BUILD NEW_BUILD}" && pwd)
NEW=$(cd "${2:?usage: bench/compare.sh BASE_BUILD NEW_BUILD}" && pwd)
REPS=${BENCH_REPS:-7}
CPU=${BENCH_CPU:-0}
SECTIONS=${BENCH_SECTIONS:-"micro instr echo"}
RAW=$(mktemp)
trap 'rm -f "$RAW"' EXIT

# one TAG ROUND cmd...: run pinned, keep its RESULT lines tagged.
one() {
	local tag=$1 round=$2
	shift 2
	taskset -c "$CPU" "$@" 2>/dev/null | grep '^RESULT ' |
		sed "s/\$/ build=$tag round=$round/" >>"$RAW" || true
}

if [[ " $SECTIONS " == *" micro "* ]]; then
	for ((r = 1; r <= REPS; r++)); do
		echo "micro: round $r/$REPS" >&2
		for args in "bench_fiber switch 20000000" "bench_fiber yield 4000000" \
			"bench_fiber spawn 1000000" "bench_nop async 4000000 128" \
			"bench_nop fiber 4000000 128"; do
			# shellcheck disable=SC2086
			one base "$r" "$BASE/bench/"$args
			# shellcheck disable=SC2086
			one new "$r" "$NEW/bench/"$args
		done
		one peer "$r" "$NEW/bench/peer_uring_nop" 4000000 128
	done
	echo
	echo "micro, median of $REPS rounds, pinned to CPU $CPU ($(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r))"
	awk '
	function median(s,    n, a, i, j, t) {
		n = split(s, a, " ")
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) {
				t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
			}
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	function fmt(v, u) { return u == "ops/s" ? sprintf("%.2f M/s", v / 1e6) : sprintf("%.1f ns", v) }
	{
		delete f
		for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
		k = f["name"] "/" f["build"]
		v[k] = v[k] " " f["value"]; unit[f["name"]] = f["unit"]
		by[f["name"], f["build"], f["round"]] = f["value"]; rounds[f["round"]] = 1
		if (f["build"] != "peer" && !(f["name"] in seen)) { seen[f["name"]] = 1; order[++n] = f["name"] }
	}
	END {
		printf "| %-12s | %12s | %12s | %9s | %18s |\n", "row", "base", "new", "new/base", "peer (liburing)"
		printf "|--------------|--------------|--------------|-----------|--------------------|\n"
		for (i = 1; i <= n; i++) {
			name = order[i]; r = ""
			for (rd in rounds)
				if (((name, "base", rd) in by) && ((name, "new", rd) in by) && by[name, "base", rd] > 0)
					r = r " " by[name, "new", rd] / by[name, "base", rd]
			peer = (name ~ /^nop_/ && ("nop/peer" in v)) ? fmt(median(v["nop/peer"]), "ops/s") : ""
			printf "| %-12s | %12s | %12s | %8.2fx | %18s |\n", name, fmt(median(v[name "/base"]), unit[name]),
				fmt(median(v[name "/new"]), unit[name]), r == "" ? 0 : median(r), peer
		}
	}' "$RAW"
fi

if [[ " $SECTIONS " == *" instr "* ]]; then
	echo
	echo "instructions per operation (bench/instr.sh, callgrind, user space)"
	printf '| %-12s | %8s | %8s | %9s |\n' row base new new/base
	printf '|--------------|----------|----------|-----------|\n'
	for args in "switch 1000000 2 bench_fiber switch {N}" "yield 1000000 2 bench_fiber yield {N}" \
		"spawn_join 100000 1 bench_fiber spawn {N}" "nop_async 100000 1 bench_nop async {N} 128" \
		"nop_fiber 100000 1 bench_nop fiber {N} 128"; do
		read -r name n per prog rest <<<"$args"
		# shellcheck disable=SC2086
		b=$("$(dirname "$0")/instr.sh" "$name" base "$n" "$per" "$BASE/bench/$prog" $rest | sed -n 's/.*value=\([0-9.]*\).*/\1/p')
		# shellcheck disable=SC2086
		w=$("$(dirname "$0")/instr.sh" "$name" new "$n" "$per" "$NEW/bench/$prog" $rest | sed -n 's/.*value=\([0-9.]*\).*/\1/p')
		awk -v name="$name" -v b="$b" -v w="$w" \
			'BEGIN { printf "| %-12s | %8.1f | %8.1f | %8.2fx |\n", name, b, w, (b > 0 ? w / b : 0) }'
	done
fi

if [[ " $SECTIONS " == *" echo "* ]]; then
	echo
	echo "echo (bench/net/echo.sh): base and new beside raw io_uring"
	"$(dirname "$0")/net/echo.sh" "$NEW" uring \
		corio_base="$BASE/examples/echo 127.0.0.1 {port}" \
		corio_new="$NEW/examples/echo 127.0.0.1 {port}"
fi
