#!/usr/bin/env bash
# Run the benchmarks against their peers and print one table.
#
# Usage: bench/run.sh BUILD_DIR
#
# Environment:
#   BENCH_REPS=5          runs of every program; the table shows the median
#   BENCH_CPU=0           CPU for single-threaded programs (taskset)
#   BENCH_SECTIONS="..."  sections to run (default: all, in order):
#                         micro instr xcore echo direct http kv kv2 fuse
#   Network sections take RUNS, DURATION... from bench/net/*.sh (see there).
#
# How it works. Each program under BUILD_DIR/bench measures one figure once
# (after its own warm-up) and prints "RESULT name=.. impl=.. value=.. unit=..".
# A section runs its programs REPS times, interleaving corio and its peer in
# every round so that noise on the machine hits both alike, and declares
# the rows of the table. At the end every row shows the median of its runs,
# the spread (half the max-min range, in % of the median), the peer's median
# and the ratio corio/peer: the median of the ratios of each round's pair of
# runs, which cancels slow drifts in the machine's load better than a ratio
# of two medians. The RESULT lines are kept in BUILD_DIR/bench/results.raw,
# the programs' diagnostics in BUILD_DIR/bench/results.log.
#
# Adding a section: write section_<name>() that calls `measure CPUS cmd...`
# (repeat it REPS times, interleaved with its peer) and `row ...` for each
# line of the table, then add <name> to ALL_SECTIONS.
set -euo pipefail

BUILD=${1:?usage: bench/run.sh BUILD_DIR}
BIN=$BUILD/bench
REPS=${BENCH_REPS:-5}
CPU=${BENCH_CPU:-0}
ALL_SECTIONS="micro instr xcore echo direct http kv kv2 fuse"
SECTIONS=${BENCH_SECTIONS:-$ALL_SECTIONS}

[ -x "$BIN/bench_nop" ] || { echo "run.sh: no benchmarks in $BIN (build with CORIO_BUILD_BENCH=ON)" >&2; exit 1; }
command -v taskset >/dev/null || { echo "run.sh: taskset is missing (util-linux)" >&2; exit 1; }
[ "$REPS" -ge 1 ] 2>/dev/null || { echo "run.sh: BENCH_REPS must be >= 1" >&2; exit 1; }

RAW=$BIN/results.raw
LOG=$BIN/results.log
ROWS=$(mktemp)
NET_OUT=$(mktemp)
trap 'rm -f "$ROWS" "$NET_OUT" "$GOALS_OUT"' EXIT
: >"$RAW"
: >"$LOG"
failures=0

# measure CPUS cmd [args...]: run once pinned to CPUS, keep its RESULT lines,
# tagged with the current round ($ROUND) so that ratios pair runs of a round.
ROUND=0
measure() {
	local cpus=$1 out
	shift
	echo "# $*" >>"$LOG"
	if ! out=$(taskset -c "$cpus" "$@" 2>>"$LOG"); then
		echo "run.sh: failed: $* (see $LOG)" >&2
		failures=$((failures + 1))
		return 0
	fi
	grep '^RESULT ' <<<"$out" | sed "s/\$/ round=$ROUND/" >>"$RAW" || true
}

# row LABEL NAME IMPL PEER_NAME PEER_IMPL GOAL
#   One line of the table: the median of NAME/IMPL beside that of
#   PEER_NAME/PEER_IMPL ("-" for none). GOAL: "-", "value<=X" or "ratio>=X".
row() {
	echo "$*" >>"$ROWS"
}

progress() {
	printf '%s\n' "$*" >&2
}

# measure_kv CPUS NAME IMPL FIELD UNIT cmd...: for programs that print
# "field=value ..." lines: turn FIELD into a RESULT line.
measure_kv() {
	local cpus=$1 name=$2 impl=$3 field=$4 unit=$5 out v
	shift 5
	echo "# $*" >>"$LOG"
	if ! out=$(taskset -c "$cpus" "$@" 2>>"$LOG"); then
		echo "run.sh: failed: $* (see $LOG)" >&2
		failures=$((failures + 1))
		return 0
	fi
	v=$(tr ' ' '\n' <<<"$out" | sed -n "s/^$field=//p" | head -1)
	[ -n "$v" ] && echo "RESULT name=$name impl=$impl value=$v unit=$unit round=$ROUND" >>"$RAW"
	return 0
}

# Tables printed by the network sections (bench/net/*.sh), shown after the
# main table, each followed by corio's ratios to every peer.

# ratios TABLE REF COLUMN...: per scenario, REF's value over each peer's.
# A ratio of a throughput column where either row's load generator was
# saturated (load SAT) is marked "*": that throughput is the generator's.
ratios() {
	local table=$1 ref=$2
	shift 2
	awk -v ref="$ref" -v cols="$*" '
	NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
	NF < 3 || $1 == "goal" { next }	# blank lines, goal lines after a table
	{
		for (i = 1; i <= NF; i++) v[$1, $2, i] = $i
		if (!($2 in seen)) { seen[$2] = 1; sc[++ns] = $2 }
		if (!($1 in known)) { known[$1] = 1; sv[++nv] = $1 }
	}
	END {
		n = split(cols, c, " ")
		marked = 0
		for (k = 1; k <= n; k++) {
			per_cpu = c[k] ~ /per_cpu/
			printf "  %s / peer, %s:\n", ref, c[k]
			for (s = 1; s <= ns; s++) {
				line = sprintf("    %-16s", sc[s])
				for (j = 1; j <= nv; j++) {
					p = sv[j]
					if (p == ref || !((p, sc[s], col[c[k]]) in v) || !((ref, sc[s], col[c[k]]) in v))
						continue
					d = v[p, sc[s], col[c[k]]] + 0
					sat = !per_cpu && ("load" in col) &&
					      (v[p, sc[s], col["load"]] == "SAT" || v[ref, sc[s], col["load"]] == "SAT")
					marked += sat
					line = line sprintf("  %s %5.2fx%s", p, d > 0 ? v[ref, sc[s], col[c[k]]] / d : 0, sat ? "*" : " ")
				}
				print line
			}
		}
		if (marked)
			print "  * load generator saturated (load SAT) in that row: that throughput is its limit; compare per CPU-second"
	}' <<<"$table"
}

# Network goals, judged on the table of this very run only. NET_GOALS
# holds "LABEL|REF|PEER|SCENARIOS|COLUMN|OP|VALUE" (OP ">=" or "<="), set by
# a section before net_section. A goal on a throughput column (req/s,
# msgs/s) is judged per server CPU-second instead in a scenario where either
# row's load generator was saturated, and the line says so.
NET_GOALS=()
GOALS_OUT=$(mktemp)
net_goals() {
	local table=$1 g label ref peer scens column op value
	for g in "${NET_GOALS[@]}"; do
		IFS='|' read -r label ref peer scens column op value <<<"$g"
		awk -v label="$label" -v ref="$ref" -v peer="$peer" -v scens="$scens" \
			-v metric="$column" -v op="$op" -v thr="$value" '
		NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
		{ for (i = 1; i <= NF; i++) v[$1, $2, i] = $i }
		END {
			percpu = metric == "req/s" ? "reqs_per_cpu_sec" : metric == "msgs/s" ? "msgs_per_cpu_sec" : metric
			n = split(scens, sc, " ")
			for (k = 1; k <= n; k++) {
				s = sc[k]
				if (!((ref, s, 1) in v) || !((peer, s, 1) in v)) {
					printf "| %s | %s | | | | | no data |\n", label, s
					continue
				}
				m = metric; basis = metric
				if (m != percpu && (v[ref, s, col["load"]] == "SAT" || v[peer, s, col["load"]] == "SAT")) {
					m = percpu
					basis = percpu " (load generator saturated)"
				}
				a = v[ref, s, col[m]] + 0; b = v[peer, s, col[m]] + 0
				r = b > 0 ? a / b : 0
				ok = op == ">=" ? r >= thr : r <= thr
				printf "| %s | %s | %s | %.0f | %s %.0f | %.2fx | %s (%s %sx) |\n", label, s, basis, a, peer, b, r, ok ? "met" : "MISSED", op, thr
			}
		}' <<<"$table" >>"$GOALS_OUT"
	done
	NET_GOALS=()
}

# net_section TITLE REF "COLUMNS" script args...: run a bench/net script,
# keep its table and the ratios for the end, and judge NET_GOALS on it.
net_section() {
	local title=$1 ref=$2 cols=$3 out
	shift 3
	progress "$title"
	if ! out=$("$@" 2>>"$LOG"); then
		echo "run.sh: failed: $* (see $LOG)" >&2
		failures=$((failures + 1))
		NET_GOALS=()
		return 0
	fi
	{
		echo
		echo "$title"
		echo '```'
		echo "$out"
		echo '```'
		ratios "$out" "$ref" $cols
	} >>"$NET_OUT"
	net_goals "$out"
}

# ------------------------------------------------------------------ micro
# Single-threaded costs of the core, everything on CPU $CPU.
section_micro() {
	for ((ROUND = 1; ROUND <= REPS; ROUND++)); do
		progress "micro: round $ROUND/$REPS"
		measure "$CPU" "$BIN/bench_fiber" switch 20000000
		measure "$CPU" "$BIN/peer_ucontext" 1000000
		measure "$CPU" "$BIN/bench_fiber" yield 4000000
		measure "$CPU" "$BIN/bench_fiber" spawn 1000000
		measure "$CPU" "$BIN/peer_pthread" 20000
		measure "$CPU" "$BIN/bench_nop" async 4000000 128
		measure "$CPU" "$BIN/peer_uring_nop" 4000000 128
		measure "$CPU" "$BIN/bench_nop" fiber 4000000 128
	done
	row "fiber switch" switch corio switch ucontext "value<=10"
	row "yield (fiber->loop->fiber)" yield corio - - -
	row "spawn + join" spawn_join corio spawn_join pthread -
	row "nop, completion API, 128 in flight" nop_async corio nop liburing "ratio>=0.8"
	row "nop, 128 fibers" nop_fiber corio nop liburing "ratio>=0.5"
}

# ------------------------------------------------------------------ instr
# The micro section's work in user-space instructions per operation
# (bench/instr.sh, callgrind): one round, since counts do not move with the
# machine's load. A change to the op path shows here when times are noise.
section_instr() {
	command -v valgrind >/dev/null || { progress "instr: valgrind is missing, skipped"; return 0; }
	progress "instr: callgrind"
	ROUND=1
	measure "$CPU" bench/instr.sh nop_async_instr corio 100000 1 "$BIN/bench_nop" async {N} 128
	measure "$CPU" bench/instr.sh nop_instr liburing 100000 1 "$BIN/peer_uring_nop" {N} 128
	measure "$CPU" bench/instr.sh nop_fiber_instr corio 100000 1 "$BIN/bench_nop" fiber {N} 128
	measure "$CPU" bench/instr.sh switch_instr corio 1000000 2 "$BIN/bench_fiber" switch {N}
	measure "$CPU" bench/instr.sh switch_instr ucontext 100000 2 "$BIN/peer_ucontext" {N}
	measure "$CPU" bench/instr.sh yield_instr corio 1000000 2 "$BIN/bench_fiber" yield {N}
	measure "$CPU" bench/instr.sh spawn_join_instr corio 100000 1 "$BIN/bench_fiber" spawn {N}
	measure "$CPU" bench/instr.sh spawn_join_instr pthread 2000 1 "$BIN/peer_pthread" {N}
	row "nop, completion API (instructions)" nop_async_instr corio nop_instr liburing -
	row "nop, 128 fibers (instructions)" nop_fiber_instr corio nop_instr liburing -
	row "fiber switch (instructions)" switch_instr corio switch_instr ucontext -
	row "yield (instructions)" yield_instr corio - - -
	row "spawn + join (instructions)" spawn_join_instr corio spawn_join_instr pthread -
}

# ------------------------------------------------------------------ xcore
# Messages between two loops pinned to CPUs 0 and 1, against two threads
# ping-ponging through eventfds (a sleeping target) and through spinning
# atomics (a busy one).
section_xcore() {
	for ((ROUND = 1; ROUND <= REPS; ROUND++)); do
		progress "xcore: round $ROUND/$REPS"
		measure 0,1 "$BIN/bench_pool" oneway 5000000 interrupt
		measure 0,1 "$BIN/bench_pool" oneway 5000000 poll
		measure 0,1 "$BIN/bench_pool" oneway 5000000 working
		measure 0,1 "$BIN/bench_pool" roundtrip 200000 poll
		measure_kv 0,1 xcore_rtt_busy spin rtt_p50_ns ns "$BIN/peers/pingpong_spin" -n 1000000
		measure 0,1 "$BIN/bench_pool" roundtrip 20000 interrupt
		measure_kv 0,1 xcore_rtt_asleep eventfd rtt_p50_ns ns "$BIN/peers/pingpong_eventfd" -n 20000
		measure 0,1 env CORIO_WAKE=eventfd "$BIN/bench_pool" roundtrip 20000 interrupt
	done
	row "one-way msgs, target asleep (batched)" xcore_oneway_asleep corio - - "value>=10000000"
	row "one-way msgs, target busy (poll)" xcore_oneway_busy corio - - "value>=10000000"
	row "system calls per msg, target busy" xcore_oneway_busy_syscalls corio - - -
	row "wakes elided, target busy (%)" xcore_oneway_busy_elided corio - - "value>=99"
	row "one-way msgs, target working (intr)" xcore_oneway_working corio - - "value>=10000000"
	row "system calls per msg, target working" xcore_oneway_working_syscalls corio - - -
	row "wakes elided, target working (%)" xcore_oneway_working_elided corio - - "value>=99"
	row "round trip, both busy (p50)" xcore_rtt_busy corio xcore_rtt_busy spin -
	row "round trip, target asleep (p50)" xcore_rtt_asleep corio xcore_rtt_asleep eventfd "ratio<=2"
	row "  same, eventfd wakes (p50)" xcore_rtt_asleep corio_eventfd xcore_rtt_asleep corio -
	row "system calls per round trip, asleep" xcore_roundtrip_asleep_syscalls corio - - -
}

# ------------------------------------------------------------- echo, http, kv
# Server pinned to CPU 0, load generator to CPU 1 (bench/net/*.sh).
ECHO_SCENS="64B_c64_d1 64B_c64_d16 4096B_c64_d1 4096B_c64_d16"
section_echo() {
	NET_GOALS=(
		"echo >= 0.95x raw io_uring, per CPU-second|corio|uring|$ECHO_SCENS|msgs_per_cpu_sec|>=|0.95"
		"echo >= 1.2x epoll echo|corio|epoll|$ECHO_SCENS|msgs/s|>=|1.2"
		"io_uring >= 1.2x epoll backend, echo 64 B|corio|corio_epoll|64B_c64_d1 64B_c64_d16|msgs/s|>=|1.2"
		"epoll backend no slower than libuv|corio_epoll|libuv|$ECHO_SCENS|msgs/s|>=|1.0"
	)
	net_section "echo: corio vs raw io_uring, epoll, libuv (bench/net/echo.sh)" corio \
		"msgs/s msgs_per_cpu_sec" bench/net/echo.sh "$BUILD" uring epoll libuv \
		corio='{build}/examples/echo 127.0.0.1 {port}' \
		corio_epoll='exec env CORIO_BACKEND=epoll {build}/examples/echo 127.0.0.1 {port}'
}

# The same echo server with its connections in direct descriptors (io_uring
# registered files), against itself with plain ones and raw io_uring.
section_direct() {
	net_section "echo, direct descriptors: corio --direct vs corio, raw io_uring (bench/net/echo.sh)" \
		corio_direct "msgs/s msgs_per_cpu_sec" bench/net/echo.sh "$BUILD" uring \
		corio='{build}/examples/echo 127.0.0.1 {port}' \
		corio_direct='{build}/examples/echo --direct 127.0.0.1 {port}'
}

section_http() {
	NET_GOALS=(
		"HTTP >= 1.3x nginx, req/s|corio|nginx|c64 c256|req/s|>=|1.3"
		"HTTP >= 1.3x nginx, per CPU-second|corio|nginx|c64 c256|reqs_per_cpu_sec|>=|1.3"
	)
	net_section "HTTP: corio vs nginx, one core each (bench/net/http_nginx.sh)" corio \
		"req/s reqs_per_cpu_sec" bench/net/http_nginx.sh "$BUILD" nginx \
		corio='{build}/examples/http_server -a 127.0.0.1 -p {port} -t 1' \
		corio_epoll='exec env CORIO_BACKEND=epoll {build}/examples/http_server -a 127.0.0.1 -p {port} -t 1'
}

section_kv() {
	[ -x "$BUILD/examples/kv/kv" ] || { progress "kv: no kv server built, skipped"; return 0; }
	NET_GOALS=(
		"KV >= 1.5x redis-server, one core, req/s at -P 16|corio|redis|SET_P16 GET_P16|req/s|>=|1.5"
		"KV >= 1.5x redis-server, one core, per CPU-second at -P 1|corio|redis|SET_P1 GET_P1|reqs_per_cpu_sec|>=|1.5"
	)
	net_section "key-value: corio vs redis-server, one core each (bench/net/kv_redis.sh)" corio \
		"req/s reqs_per_cpu_sec" bench/net/kv_redis.sh "$BUILD" redis \
		corio='{build}/examples/kv/kv -a 127.0.0.1 -p {port} -t 1' \
		corio_epoll='exec env CORIO_BACKEND=epoll {build}/examples/kv/kv -a 127.0.0.1 -p {port} -t 1'
}

# Both cores for the servers (corio with a loop per core; redis-server is
# single-threaded), and the load generator on the same two cores: it
# competes with the servers, so this shows scaling on this small machine,
# not a fair ceiling.
section_kv2() {
	[ -x "$BUILD/examples/kv/kv" ] || { progress "kv2: no kv server built, skipped"; return 0; }
	SERVER_CPU=0,1 LOAD_CPU=0,1 net_section \
		"key-value on 2 cores, load generator sharing them (bench/net/kv_redis.sh)" corio \
		"req/s reqs_per_cpu_sec" bench/net/kv_redis.sh "$BUILD" redis \
		corio='{build}/examples/kv/kv -a 127.0.0.1 -p {port} -t 2'
}

# FUSE passthrough servers: corio's over /dev/fuse against bindfs (and
# libfuse's passthrough_hp with PASSTHROUGH_HP=/path/to/it), the source
# directory as the limit (bench/fuse.sh; needs root). It takes the bench
# lock itself: it mounts, and runs for minutes.
section_fuse() {
	[ "$(id -u)" -eq 0 ] || { progress "fuse: needs root, skipped"; return 0; }
	[ -x "$BUILD/examples/fuse_server" ] || { progress "fuse: no fuse_server built, skipped"; return 0; }
	net_section "FUSE passthrough: corio vs bindfs, passthrough_hp (bench/fuse.sh)" corio \
		"ops/s ops_per_cpu_sec" flock /tmp/corio-bench.lock bench/fuse.sh "$BUILD"
}

for s in $SECTIONS; do
	declare -F "section_$s" >/dev/null || { echo "run.sh: no section '$s' (have: $ALL_SECTIONS)" >&2; exit 1; }
	"section_$s"
done

echo
echo "corio benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs," \
	"median of $REPS runs, single-threaded programs pinned to CPU $CPU"
[ -s "$RAW" ] || [ -s "$NET_OUT" ] || { echo "run.sh: no results" >&2; exit 1; }
[ -s "$RAW" ] && awk '
function median(key,    n, i, j, t, a) {
	n = split(vals[key], a, " ")
	for (i = 2; i <= n; i++)	# insertion sort: n is small
		for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) {
			t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
		}
	lo[key] = a[1]; hi[key] = a[n]
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function fmt(v, u) {
	if (u == "ops/s")
		return sprintf("%.2f M/s", v / 1e6)
	if (u == "x")
		return sprintf("%.4f", v)
	if (u == "%")
		return sprintf("%.2f %%", v)
	if (u == "instr")
		return sprintf("%.0f instr", v)
	if (v >= 10000)
		return sprintf("%.1f us", v / 1000)
	return sprintf("%.1f ns", v)
}
FILENAME == ARGV[1] {	# the RESULT lines
	delete f
	for (i = 2; i <= NF; i++) {
		split($i, kv, "=")
		f[kv[1]] = kv[2]
	}
	key = f["name"] "/" f["impl"]
	vals[key] = vals[key] " " f["value"]
	unit[key] = f["unit"]
	byround[key, f["round"]] = f["value"]
	rounds[f["round"]] = 1
	next
}
{			# a row: LABEL words..., then 5 fields
	n = NF
	goal = $n; pimpl = $(n - 1); pname = $(n - 2); impl = $(n - 3); name = $(n - 4)
	label = $1
	for (i = 2; i <= n - 5; i++)
		label = label " " $i
	key = name "/" impl
	if (!(key in vals)) {
		printf "| %-36s | %12s | %5s | %-9s | %12s | %10s | %-17s |\n", label, "failed", "", "", "", "", goal
		next
	}
	m = median(key)
	spread = m > 0 ? 50 * (hi[key] - lo[key]) / m : 0
	pk = pname "/" pimpl
	pv = ""; ratio = ""; r = 0
	if (pname != "-" && (pk in vals)) {
		p = median(pk)
		pv = fmt(p, unit[pk])
		# The ratio is the median of per-round ratios: runs of one round
		# are seconds apart, so they see the same load.
		rk = "ratio " key " " pk
		vals[rk] = ""
		for (rd in rounds)
			if (((key, rd) in byround) && ((pk, rd) in byround) && byround[pk, rd] > 0)
				vals[rk] = vals[rk] " " byround[key, rd] / byround[pk, rd]
		if (vals[rk] != "") {
			r = median(rk)
			ratio = sprintf("%.2fx", r)
		}
	}
	status = ""
	if (goal ~ /^value<=/) {
		g = substr(goal, 8) + 0
		status = (m <= g ? "met" : "MISSED") " (<= " g (unit[key] == "ns" ? " ns" : "") ")"
	} else if (goal ~ /^value>=/) {
		g = substr(goal, 8) + 0
		status = (m >= g ? "met" : "MISSED") " (>= " fmt(g, unit[key]) ")"
	} else if (goal ~ /^ratio>=/) {
		g = substr(goal, 8) + 0
		status = ratio == "" ? "no peer" : (r >= g ? "met" : "MISSED") " (>= " g "x)"
	} else if (goal ~ /^ratio<=/) {
		g = substr(goal, 8) + 0
		status = ratio == "" ? "no peer" : (r <= g ? "met" : "MISSED") " (<= " g "x)"
	}
	printf "| %-36s | %12s | %4.1f%% | %-9s | %12s | %10s | %-17s |\n", label, fmt(m, unit[key]), spread, (pname == "-" ? "" : pimpl), pv, ratio, status
}
BEGIN {
	printf "| %-36s | %12s | %5s | %-9s | %12s | %10s | %-17s |\n", "benchmark", "corio", "+/-", "peer", "peer value", "corio/peer", "goal"
	printf "|%s|%s|%s|%s|%s|%s|%s|\n", "--------------------------------------", "--------------", "-------", "-----------", "--------------", "------------", "-------------------"
}
' "$RAW" "$ROWS"
[ -s "$RAW" ] && echo "(ns, instr: lower is better; M/s: higher is better. +/-: half the min-max range of the runs;" \
	"instr: user-space instructions per operation, callgrind, one run.)"
cat "$NET_OUT"
if [ -s "$GOALS_OUT" ]; then
	echo
	echo "Network goals, judged on this run's tables only (a row whose load generator was"
	echo "saturated is judged per server CPU-second, never on throughput):"
	echo
	echo "| goal | scenario | judged on | corio | peer | ratio | verdict |"
	echo "|---|---|---|---|---|---|---|"
	cat "$GOALS_OUT"
fi
[ "$failures" -eq 0 ] || { echo "run.sh: $failures runs failed" >&2; exit 1; }
