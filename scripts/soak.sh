#!/usr/bin/env bash
# Soak: each server (kv, http, echo) on each backend under mixed load for a
# while, sampling its resident memory and open descriptors. It fails if
# either keeps growing after the warm-up, if descriptors are not back to
# where they started once the load is gone, if the server dies, logs an
# error or does not stop cleanly, or if a load generator sees an error.
#
# Usage: scripts/soak.sh BUILD_DIR
#
# Environment (defaults):
#   SOAK_TIME=600      seconds of load per server and backend
#   SOAK_INTERVAL=10   seconds between samples
#   SOAK_WARMUP=60     seconds before samples count for the growth check
#   SOAK_SERVERS="kv http echo"  SOAK_BACKENDS="uring epoll"
#
# The load, all at once against one server (2 loops):
#   kv    redis-benchmark runs (SET, GET, INCR, MSET; pipelines of 1 to 32;
#         values of 3 to 2000 bytes), connections that send half a command
#         and go, and redis-benchmark runs killed (SIGKILL) mid-pipeline
#   http  wrk runs, half requests and half bodies then gone, POST /echo,
#         and wrk runs killed mid-run
#   echo  echo_load runs (64 B to 16 KiB, depth 1 to 16), connections that
#         send and go, and echo_load runs killed mid-run
#
# Growth: of the samples after the warm-up, the lowest of the last third
# against the lowest of the first third (the floor, so that a burst of
# connections is not taken for a leak): RSS may rise by 10 % + 8 MiB,
# descriptors by 8. With fewer than 6 such samples (a short run, as in
# `make test`), only the descriptors after the load, the errors and the
# clean stop are checked.
#
# Output: one line per sample on stderr, a summary line per server and
# backend on stdout; logs in BUILD_DIR/soak/. Exit 0 only if all passed.
set -uo pipefail

build=$(cd "${1:?usage: scripts/soak.sh BUILD_DIR}" && pwd)
SOAK_TIME=${SOAK_TIME:-600}
SOAK_INTERVAL=${SOAK_INTERVAL:-10}
SOAK_WARMUP=${SOAK_WARMUP:-60}
SOAK_SERVERS=${SOAK_SERVERS:-"kv http echo"}
SOAK_BACKENDS=${SOAK_BACKENDS:-"uring epoll"}
logs=$build/soak
rm -rf "$logs"
mkdir -p "$logs"

need() { command -v "$1" >/dev/null || { echo "soak: $1 not found ($2)" >&2; exit 1; }; }
need redis-benchmark "apt-get install redis-tools"
need redis-cli "apt-get install redis-tools"
need wrk "apt-get install wrk"
for b in examples/kv/kv examples/http_server examples/echo bench/loadgen/echo_load; do
	[ -x "$build/$b" ] || { echo "soak: $build/$b not built" >&2; exit 1; }
done

failed=0
pid=""
trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null' EXIT

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
nfds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
alive() { [ -d "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

# fail WHERE WHAT: note a failure of this server's run (from any load loop).
fail() { echo "$*" >>"$dir/failures"; }

# The deadline of this server's load.
running() { [ "$SECONDS" -lt "$end" ] && alive "$pid"; }

# send_and_go TEXT: connect, send TEXT, close without reading (bash's
# /dev/tcp: no tool needed).
send_and_go() {
	local fd
	exec {fd}<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null || { fail "connect refused"; return; }
	printf '%b' "$1" >&"$fd" 2>/dev/null
	exec {fd}>&-
	echo conn >>"$dir/churn"
}

# ------------------------------------------------------------------ kv

kv_cmd() { echo "$build/examples/kv/kv -a 127.0.0.1 -p 0 -t 2"; }

kv_backend() {
	redis-cli -p "$port" info corio 2>/dev/null | sed -n 's/^backend:\([^\r]*\).*/\1/p'
}

kv_load() {
	while running; do
		local p=$((1 + RANDOM % 32)) d=$((3 + RANDOM % 2000)) rc
		timeout 120 redis-benchmark -p "$port" -c 20 -n 20000 -r 20000 -P "$p" -d "$d" \
			-t set,get,incr,mset -q >>"$dir/load.log" 2>&1
		rc=$?
		[ $rc -eq 0 ] || fail "redis-benchmark -P $p -d $d: exit $rc"
		echo run >>"$dir/runs"
	done
}

kv_churn() {
	while running; do
		send_and_go '*3\r\n$3\r\nSET\r\n$5\r\nchurn\r\n$100\r\nabc'
		send_and_go 'PING\r\nGET churn\r\n*2\r\n$3\r\nGET'
		send_and_go '*1\r\n$4\r\nPING\r\n'
	done
}

kv_kill() {
	while running; do
		local rc
		# (--foreground: timeout kills the child, not itself, so that bash
		# has no "Killed" to say)
		timeout --foreground -s KILL "$((1 + RANDOM % 3))" redis-benchmark -p "$port" -c 50 \
			-n 100000000 -r 100000 -P 16 -t set,get -q >/dev/null 2>&1
		rc=$?
		# killed (137), or done: anything else is an error it saw
		[ $rc -eq 137 ] || [ $rc -eq 0 ] || fail "killed redis-benchmark: exit $rc"
		echo kill >>"$dir/kills"
	done
}

# ---------------------------------------------------------------- http

http_cmd() { echo "$build/examples/http_server -a 127.0.0.1 -p 0 -t 2"; }

http_backend() { sed -n 's/^http: serving on \(.*\)$/\1/p' "$dir/server.log" | head -1; }

http_load() {
	while running; do
		local c=$((1 + RANDOM % 64)) out
		out=$(timeout 60 wrk -t1 -c"$c" -d3s --timeout 10s "http://127.0.0.1:$port/" 2>&1)
		echo "$out" >>"$dir/load.log"
		grep -q "requests in" <<<"$out" || fail "wrk -c$c: no result"
		if grep -qE "Non-2xx|Socket errors" <<<"$out"; then
			fail "wrk -c$c: $(grep -E 'Non-2xx|Socket errors' <<<"$out")"
		fi
		echo run >>"$dir/runs"
	done
}

http_churn() {
	while running; do
		send_and_go 'GET / HTTP/1.1\r\nHost: t\r\nX-Half: '
		send_and_go 'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nhalf a body'
		send_and_go 'POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello'
		send_and_go 'GET http://t/ HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\n'
	done
}

http_kill() {
	while running; do
		local rc
		timeout --foreground -s KILL "$((1 + RANDOM % 3))" wrk -t1 -c200 -d60s \
			"http://127.0.0.1:$port/" >/dev/null 2>&1
		rc=$?
		[ $rc -eq 137 ] || fail "killed wrk: exit $rc"
		echo kill >>"$dir/kills"
	done
}

# ---------------------------------------------------------------- echo

echo_cmd() { echo "$build/examples/echo 127.0.0.1 0"; }

echo_backend() { sed -n 's/^echo: serving on \(.*\)$/\1/p' "$dir/server.log" | head -1; }

echo_load() {
	local sizes=(64 512 4096 16384) depths=(1 4 16)
	while running; do
		local s=${sizes[RANDOM % 4]} d=${depths[RANDOM % 3]} out
		out=$(timeout 60 "$build/bench/loadgen/echo_load" -p "$port" -c 32 -s "$s" -d "$d" \
			-t 3 -w 0.2 2>&1)
		echo "$out" >>"$dir/load.log"
		[[ $out == *msgs_per_sec=* ]] || fail "echo_load -s $s -d $d: no result: $out"
		for k in errors mismatches conn_errors; do
			v=$(sed -n "s/.*\\b$k=\\([0-9]*\\).*/\\1/p" <<<"$out")
			[ "${v:-0}" -eq 0 ] || fail "echo_load -s $s -d $d: $k=$v"
		done
		echo run >>"$dir/runs"
	done
}

echo_churn() {
	while running; do
		send_and_go 'hello, and goodbye'
		send_and_go ''
	done
}

echo_kill() {
	while running; do
		local rc
		timeout --foreground -s KILL "$((1 + RANDOM % 3))" "$build/bench/loadgen/echo_load" -p "$port" \
			-c 64 -s 4096 -d 8 -t 60 -w 0 >/dev/null 2>&1
		rc=$?
		[ $rc -eq 137 ] || fail "killed echo_load: exit $rc"
		echo kill >>"$dir/kills"
	done
}

# --------------------------------------------------------------- a run

# lines FILE: lines of $dir/FILE (0 if none)
lines() { cat "$dir/$1" 2>/dev/null | wc -l; }

# lowest VALUES...: the smallest number
lowest() { printf '%s\n' "$@" | sort -n | head -1; }

soak_one() {
	local srv=$1 be=$2 cmd want t rss fds base_fds i n
	local -a s_rss=() s_fds=()
	dir=$logs/$srv.$be
	mkdir -p "$dir"
	: >"$dir/failures"
	cmd=$("${srv}_cmd")
	CORIO_BACKEND=$be $cmd >"$dir/server.out" 2>"$dir/server.log" </dev/null &
	pid=$!
	port=""
	for ((i = 0; i < 200 && ${#port} == 0; i++)); do
		port=$(sed -n 's/^listening on \(.*:\)\{0,1\}\([0-9]*\)$/\2/p' "$dir/server.out")
		[ -n "$port" ] || sleep 0.05
	done
	if [ -z "$port" ]; then
		echo "FAIL  $srv.$be: did not start: $(cat "$dir/server.log")"
		failed=1
		return
	fi
	want=io_uring
	[ "$be" = epoll ] && want=epoll
	for ((i = 0; i < 100; i++)); do
		[ -n "$("${srv}_backend")" ] && break
		sleep 0.05
	done
	if [ "$("${srv}_backend")" != "$want" ]; then
		echo "FAIL  $srv.$be: runs on '$("${srv}_backend")', not $want"
		failed=1
		kill -KILL "$pid"
		wait "$pid" 2>/dev/null
		return
	fi
	base_fds=$(nfds "$pid")
	end=$((SECONDS + SOAK_TIME))
	local t0=$SECONDS
	"${srv}_load" &
	local l1=$!
	"${srv}_churn" &
	local l2=$!
	"${srv}_kill" &
	local l3=$!
	while running; do
		sleep "$SOAK_INTERVAL"
		alive "$pid" || break
		t=$((SECONDS - t0))
		rss=$(rss_kb "$pid")
		fds=$(nfds "$pid")
		echo "soak $srv.$be t=${t}s rss_kb=$rss fds=$fds" >&2
		echo "$t $rss $fds" >>"$dir/samples"
		if [ "$t" -ge "$SOAK_WARMUP" ]; then
			s_rss+=("$rss")
			s_fds+=("$fds")
		fi
	done
	wait "$l1" "$l2" "$l3"
	if ! alive "$pid"; then
		wait "$pid"
		fail "the server died (exit $?)"
	else
		# Once the load is gone, every connection's descriptor must be too
		# (bounded poll: lingering closes take up to 2 s).
		for ((i = 0; i < 300; i++)); do
			[ "$(nfds "$pid")" -le "$base_fds" ] && break
			sleep 0.1
		done
		fds=$(nfds "$pid")
		[ "$fds" -le "$base_fds" ] || fail "descriptors after the load: $fds, at start $base_fds"
		kill -TERM "$pid"
		for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.1; done
		if alive "$pid"; then
			kill -KILL "$pid"
			fail "did not stop within 10 s of SIGTERM"
		fi
		wait "$pid"
		i=$?
		[ $i -eq 0 ] || fail "exit status $i after SIGTERM"
	fi
	pid=""
	# Anything the server said beyond its start and stop lines is news.
	local expected='^(listening on|(http|echo): serving on|http_server: [0-9]+ threads'
	expected+='|kv: SIGTERM, stopping|(echo|http_server): Terminated, stopping)'
	grep -vE "$expected" "$dir/server.log" >"$dir/unexpected" || true
	[ -s "$dir/unexpected" ] && fail "the server logged: $(head -3 "$dir/unexpected")"
	n=${#s_rss[@]}
	local growth="growth not checked ($n samples after the warm-up)"
	if [ "$n" -ge 6 ]; then
		local third=$((n / 3)) r0 r1 f0 f1
		r0=$(lowest "${s_rss[@]:0:third}")
		r1=$(lowest "${s_rss[@]:n-third}")
		f0=$(lowest "${s_fds[@]:0:third}")
		f1=$(lowest "${s_fds[@]:n-third}")
		growth="rss floor ${r0} -> ${r1} kB, fds floor $f0 -> $f1"
		[ "$r1" -le $((r0 + r0 / 10 + 8192)) ] || fail "RSS keeps growing: $growth"
		[ "$f1" -le $((f0 + 8)) ] || fail "descriptors keep growing: $growth"
	fi
	local summary
	summary="$srv.$be: ${SOAK_TIME}s, $(lines samples) samples, $growth, fds at start $base_fds;"
	summary+=" load runs $(lines runs), connections sent to and left $(lines churn),"
	summary+=" killed runs $(lines kills)"
	if [ -s "$dir/failures" ]; then
		echo "FAIL  $summary"
		sort "$dir/failures" | uniq -c | head -20 | sed 's/^/      /'
		failed=1
	else
		echo "ok    $summary"
	fi
}

for srv in $SOAK_SERVERS; do
	for be in $SOAK_BACKENDS; do
		soak_one "$srv" "$be"
	done
done
exit $failed
