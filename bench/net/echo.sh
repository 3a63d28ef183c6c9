#!/usr/bin/env bash
# Echo servers under echo_load: messages/s, latency and messages per server
# CPU-second, for each scenario, median of RUNS runs.
#
# Usage: bench/net/echo.sh BUILD_DIR [NAME[=COMMAND] ...]
#   With no entries: uring, epoll and libuv (the peers in bench/peers).
#   Bare names uring, epoll, libuv mean those peers; any other server is
#   NAME=COMMAND with {port} (see lib.sh), e.g.
#     bench/net/echo.sh build uring epoll corio='{build}/examples/echo 127.0.0.1 {port}'
#
# Environment (defaults):
#   SCENARIOS="64:64:1 64:64:16 4096:64:1 4096:64:16"   SIZE:CONNS:DEPTH each
#   DURATION=3 WARMUP=0.5 (seconds per run)   RUNS=3   SERVER_CPU=0 LOAD_CPU=1
#   ECHO_LOAD=BUILD_DIR/bench/loadgen/echo_load
#
# Output: one table row per server and scenario on stdout
#   server scenario msgs/s p50_us p99_us msgs_per_cpu_sec client_cpu errors load
# and each raw run on stderr as a comment. msgs_per_cpu_sec is the number of
# messages echoed over the whole run (warm-up included) divided by the
# server's user+system CPU time over the same run; client_cpu is echo_load's
# CPU time over its run divided by the run's time, and load is SAT when that
# is 0.90 or more (lib.sh): the generator, not the server, was the limit, and
# only msgs_per_cpu_sec compares the servers. A corio* server must say in its
# log which backend serves, and it must be the one its name says.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ $# -ge 1 ] || { sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
BUILD=$(cd "$1" && pwd)
shift
LOAD=${ECHO_LOAD:-$BUILD/bench/loadgen/echo_load}
SCENARIOS=${SCENARIOS:-"64:64:1 64:64:16 4096:64:1 4096:64:16"}
DURATION=${DURATION:-3}
WARMUP=${WARMUP:-0.5}
[ -x "$LOAD" ] || die "no load generator at $LOAD (build bench/loadgen first)"

default_cmd() {
  case $1 in
    uring | epoll | libuv) echo "{build}/bench/peers/echo_$1 {port}" ;;
  esac
}

if [ $# -eq 0 ]; then
  set -- uring epoll
  [ -x "$BUILD/bench/peers/echo_libuv" ] && set -- "$@" libuv
fi
for e in "$@"; do add_entry "$e"; done

net_init
header
start_all
limit=$(awk -v d="$DURATION" -v w="$WARMUP" 'BEGIN { printf "%d", d + w + 30 }')

for ((run = 1; run <= RUNS; run++)); do
  for sc in $SCENARIOS; do
    IFS=: read -r size conns depth <<<"$sc"
    scen="${size}B_c${conns}_d${depth}"
    for name in "${S_NAMES[@]}"; do
      c0=$(server_cpu "$name")
      if ! line=$(timeout "$limit" taskset -c "$LOAD_CPU" "$LOAD" -p "${S_PORT[$name]}" \
        -c "$conns" -s "$size" -d "$depth" -t "$DURATION" -w "$WARMUP"); then
        check_alive "$name"
        die "echo_load failed against '$name' ($scen)"
      fi
      check_alive "$name"
      c1=$(server_cpu "$name")
      cpu=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')
      per_cpu=$(div "$(kv total_msgs "$line")" "$cpu")
      log "run $run $name $scen server_cpu_s=$cpu $line"
      record "$name" "$scen" "$line server_cpu_s=$cpu per_cpu=$per_cpu"
    done
  done
done

printf '%-12s %-16s %12s %10s %10s %16s %10s %6s %5s\n' server scenario msgs/s p50_us p99_us \
  msgs_per_cpu_sec client_cpu errors load
for sc in $SCENARIOS; do
  IFS=: read -r size conns depth <<<"$sc"
  scen="${size}B_c${conns}_d${depth}"
  for name in "${S_NAMES[@]}"; do
    cc=$(med_of "$name" "$scen" client_cpu)
    printf '%-12s %-16s %12.0f %10.1f %10.1f %16.0f %10.2f %6d %5s\n' "$name" "$scen" \
      "$(med_of "$name" "$scen" msgs_per_sec)" "$(med_of "$name" "$scen" p50_us)" \
      "$(med_of "$name" "$scen" p99_us)" "$(med_of "$name" "$scen" per_cpu)" \
      "$cc" "$(sum_of "$name" "$scen" errors)" "$(sat "$cc")"
  done
done
