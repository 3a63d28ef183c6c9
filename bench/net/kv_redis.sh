#!/usr/bin/env bash
# Key-value servers under redis-benchmark: SET and GET, without and with
# pipelining: requests/s, latency and server CPU per request, median of RUNS.
#
# Usage: bench/net/kv_redis.sh [BUILD_DIR] [NAME[=COMMAND] ...]
#   With no entries: redis (the Debian redis-server, no persistence, in a
#   scratch directory). Any other server is NAME=COMMAND with {port} (see
#   lib.sh); it must speak RESP and answer SET and GET (redis-benchmark also
#   sends CONFIG GET at start and only warns if that fails), e.g.
#     bench/net/kv_redis.sh build redis corio='{build}/examples/kv 127.0.0.1 {port}'
#
# Environment (defaults):
#   TESTS="set get"  REQS="1:200000 16:2000000" (PIPELINE:REQUESTS per run,
#   about 3 s each for redis here)  CLIENTS=50  KEYSPACE=100000  RUNS=3
#   SERVER_CPU=0 LOAD_CPU=1  REDIS_SERVER=redis-server  REDIS_BENCHMARK=redis-benchmark
#
# Output: one table row per server and scenario (TEST_P<pipeline>) on stdout
#   server scenario req/s p50_us p99_us reqs_per_cpu_sec cpu_us_per_req client_cpu load
# and each raw run on stderr as a comment. Server CPU is user+system time of
# the server process (all its threads) over the run; client_cpu is
# redis-benchmark's CPU time over the run divided by its wall time; load is
# SAT when that is 0.90 or more (lib.sh): the generator, not the server, set
# the pace, and only the per-CPU-second columns compare the servers.
#
# Replies are checked, since a server that answers every command with an
# error is fast: a run fails if redis-benchmark reports an error from the
# server (7.0 stops at the first one; older ones count it as a success),
# and after each run the server itself must show the work: DBSIZE above 0
# after SET, and after GET keyspace_hits + keyspace_misses grown by the
# number of requests (each was a lookup, not an error).
# A corio* server must also say (INFO) that it runs on the backend its name
# says.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BUILD=.
if [ $# -ge 1 ] && [ -d "$1" ]; then BUILD=$(cd "$1" && pwd); shift; fi
TESTS=${TESTS:-"set get"}
REQS=${REQS:-"1:200000 16:2000000"}
CLIENTS=${CLIENTS:-50}
KEYSPACE=${KEYSPACE:-100000}
REDIS_SERVER=${REDIS_SERVER:-redis-server}
REDIS_BENCHMARK=${REDIS_BENCHMARK:-redis-benchmark}
command -v "$REDIS_BENCHMARK" >/dev/null || die "redis-benchmark not found (apt-get install redis-tools)"

default_cmd() {
  case $1 in
    redis)
      command -v "$REDIS_SERVER" >/dev/null || die "redis-server not found (apt-get install redis-server)"
      echo "$REDIS_SERVER --port {port} --bind 127.0.0.1 --protected-mode no --daemonize no" \
        "--save '' --appendonly no --dir {tmp} --logfile {tmp}/redis.log"
      ;;
  esac
}

[ $# -eq 0 ] && set -- redis
for e in "$@"; do add_entry "$e"; done

rcli() { timeout 10 redis-cli -h 127.0.0.1 -p "${S_PORT[$1]}" "${@:2}" 2>&1 | tr -d '\r'; }

server_backend() { rcli "$1" info corio | sed -n 's/^backend://p'; }

# lookups NAME: keyspace_hits + keyspace_misses from INFO
lookups() { rcli "$1" info stats | awk -F: '/^keyspace_(hits|misses):/ { s += $2 } END { print s + 0 }'; }

net_init
header
start_all

# bench_run NAME TEST PIPELINE REQUESTS: one redis-benchmark run; prints a
# key=value line
bench_run() {
  local name=$1 t=$2 p=$3 n=$4 out="$TMPD/rb.out" c0 c1 k0 k1 w0 w1 looks0 looks1 keys
  looks0=$(lookups "$name")
  c0=$(server_cpu "$name")
  children_cpu k0
  w0=$(date +%s.%N)
  if ! timeout 300 taskset -c "$LOAD_CPU" "$REDIS_BENCHMARK" -h 127.0.0.1 -p "${S_PORT[$name]}" \
    -c "$CLIENTS" -n "$n" -r "$KEYSPACE" -P "$p" -t "$t" --csv >"$out" 2>&1; then
    cat "$out" >&2
    check_alive "$name"
    die "redis-benchmark failed against '$name'"
  fi
  w1=$(date +%s.%N)
  children_cpu k1
  check_alive "$name"
  c1=$(server_cpu "$name")
  if grep -q "Error from server" "$out"; then
    grep -m3 "Error from server" "$out" >&2
    die "'$name' answered $t with errors: its figure would not count"
  fi
  case $t in
    set)
      keys=$(rcli "$name" dbsize)
      [[ $keys =~ ^[0-9]+$ ]] && [ "$keys" -gt 0 ] || die "'$name': DBSIZE '$keys' after SET"
      ;;
    get)
      looks1=$(lookups "$name")
      [ $((looks1 - looks0)) -ge "$n" ] ||
        die "'$name': keyspace_hits + keyspace_misses grew by $((looks1 - looks0)) over $n GETs"
      ;;
  esac
  awk -F, -v c0="$c0" -v c1="$c1" -v k0="$k0" -v k1="$k1" \
    -v n="$n" -v w0="$w0" -v w1="$w1" '
    { gsub(/"/, "") }
    $1 != "test" && NF >= 7 { rps = $2; p50 = $5 * 1000; p99 = $7 * 1000; ok = 1 }
    END {
      if (!ok) { print "unparsable"; exit 1 }
      cpu = c1 - c0
      printf "reqs_per_sec=%s p50_us=%.1f p99_us=%.1f requests=%d server_cpu_s=%.2f", \
        rps, p50, p99, n, cpu
      printf " reqs_per_cpu_sec=%s cpu_us_per_req=%s client_cpu=%.2f\n", \
        (cpu > 0 ? sprintf("%.0f", n / cpu) : "nan"), sprintf("%.2f", cpu * 1e6 / n), \
        (k1 - k0) / (w1 - w0) }' "$out"
}

for ((run = 1; run <= RUNS; run++)); do
  for pr in $REQS; do
    IFS=: read -r p n <<<"$pr"
    for t in $TESTS; do
      scen="${t^^}_P$p"
      for name in "${S_NAMES[@]}"; do
        line=$(bench_run "$name" "$t" "$p" "$n") || die "no result from '$name' ($scen): $line"
        log "run $run $name $scen $line"
        record "$name" "$scen" "$line"
      done
    done
  done
done

printf '%-12s %-8s %10s %9s %9s %16s %14s %10s %5s\n' server scenario req/s p50_us p99_us \
  reqs_per_cpu_sec cpu_us_per_req client_cpu load
for pr in $REQS; do
  p=${pr%%:*}
  for t in $TESTS; do
    scen="${t^^}_P$p"
    for name in "${S_NAMES[@]}"; do
      cc=$(med_of "$name" "$scen" client_cpu)
      printf '%-12s %-8s %10.0f %9.1f %9.1f %16.0f %14.2f %10.2f %5s\n' "$name" "$scen" \
        "$(med_of "$name" "$scen" reqs_per_sec)" "$(med_of "$name" "$scen" p50_us)" \
        "$(med_of "$name" "$scen" p99_us)" "$(med_of "$name" "$scen" reqs_per_cpu_sec)" \
        "$(med_of "$name" "$scen" cpu_us_per_req)" "$cc" "$(sat "$cc")"
    done
  done
done
