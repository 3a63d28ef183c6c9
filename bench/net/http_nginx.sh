#!/usr/bin/env bash
# HTTP servers under wrk: requests/s, p99 latency and server CPU per request,
# for each connection count, median of RUNS runs.
#
# Usage: bench/net/http_nginx.sh [BUILD_DIR] [NAME[=COMMAND] ...]
#   With no entries: nginx (the Debian package, one process, configured from
#   nginx.conf.in into a scratch directory). Any other server is
#   NAME=COMMAND with {port} (see lib.sh); it must answer GET / with 200 and
#   keep connections alive, e.g.
#     bench/net/http_nginx.sh build nginx corio='{build}/examples/http 127.0.0.1 {port}'
#
# Environment (defaults):
#   CONNS="64 256"  DURATION=5 (seconds per run)  WARMUP=1 (one unmeasured
#   run per server and connection count; 0 to skip)  RUNS=3
#   SERVER_CPU=0 LOAD_CPU=1  NGINX=/usr/sbin/nginx  WRK=wrk
#
# Output: one table row per server and connection count on stdout
#   server scenario req/s p50_us p99_us reqs_per_cpu_sec cpu_us_per_req client_cpu errors load
# and each raw run on stderr as a comment. Server CPU is user+system time of
# the server process over the run; client_cpu is wrk's CPU time over the run
# divided by its duration; load is SAT when that is 0.90 or more (lib.sh):
# wrk, not the server, was the limit, and only the per-CPU-second columns
# compare the servers. A corio* server must say in its log which backend
# serves, and it must be the one its name says.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BUILD=.
if [ $# -ge 1 ] && [ -d "$1" ]; then BUILD=$(cd "$1" && pwd); shift; fi
CONNS=${CONNS:-"64 256"}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
NGINX=${NGINX:-/usr/sbin/nginx}
WRK=${WRK:-wrk}
command -v "$WRK" >/dev/null || die "wrk not found (apt-get install wrk)"

default_cmd() {
  case $1 in
    nginx) echo "@nginx@" ;;
  esac
}

[ $# -eq 0 ] && set -- nginx
for e in "$@"; do add_entry "$e"; done

net_init
# Render the nginx config for entries that use the built-in nginx. Its port
# is not known before start_server picks it, so the command is a small
# wrapper that renders the template, then execs nginx in its place.
for i in "${!S_CMDS[@]}"; do
  if [ "${S_CMDS[$i]}" = "@nginx@" ]; then
    [ -x "$NGINX" ] || die "nginx not found at $NGINX (apt-get install nginx-light)"
    S_CMDS[$i]="sed -e 's|@PORT@|{port}|g' -e 's|@DIR@|{tmp}|g' '$NET_DIR/nginx.conf.in' >'{tmp}/nginx.conf' && exec '$NGINX' -p '{tmp}/' -e '{tmp}/error.log' -c '{tmp}/nginx.conf'"
  fi
done
header
start_all

# wrk_run NAME CONNS SECONDS: one wrk run; prints a key=value line
wrk_run() {
  local name=$1 c=$2 d=$3 out="$TMPD/wrk.out" c0 c1 k0 k1 limit
  limit=$((d + 30))
  c0=$(server_cpu "$name")
  children_cpu k0
  if ! timeout "$limit" taskset -c "$LOAD_CPU" "$WRK" -t1 -c"$c" -d"${d}s" --latency \
    "http://127.0.0.1:${S_PORT[$name]}/" >"$out" 2>&1; then
    cat "$out" >&2
    check_alive "$name"
    die "wrk failed against '$name'"
  fi
  children_cpu k1
  check_alive "$name"
  c1=$(server_cpu "$name")
  awk -v c0="$c0" -v c1="$c1" -v k0="$k0" -v k1="$k1" -v d="$d" '
    function us(v) {
      if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000
      if (v ~ /m$/) return v * 60e6; if (v ~ /s$/) return v * 1e6; return v + 0 }
    /^ +50%/ { p50 = us($2) } /^ +99%/ { p99 = us($2) }
    / requests in / { total = $1 }
    /^Requests\/sec:/ { rps = $2 }
    /Socket errors:/ { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
    /Non-2xx or 3xx responses:/ { err += $5 }
    END {
      cpu = c1 - c0
      printf "reqs_per_sec=%s p50_us=%.1f p99_us=%.1f requests=%d errors=%d server_cpu_s=%.2f", \
        rps, p50, p99, total, err, cpu
      printf " reqs_per_cpu_sec=%s cpu_us_per_req=%s client_cpu=%.2f\n", \
        (cpu > 0 ? sprintf("%.0f", total / cpu) : "nan"), \
        (total > 0 ? sprintf("%.2f", cpu * 1e6 / total) : "nan"), (k1 - k0) / d }' "$out"
}

if [ "$WARMUP" != 0 ]; then
  for c in $CONNS; do
    for name in "${S_NAMES[@]}"; do wrk_run "$name" "$c" "$WARMUP" >/dev/null; done
  done
fi
for ((run = 1; run <= RUNS; run++)); do
  for c in $CONNS; do
    for name in "${S_NAMES[@]}"; do
      line=$(wrk_run "$name" "$c" "$DURATION")
      log "run $run $name c$c $line"
      record "$name" "c$c" "$line"
    done
  done
done

printf '%-12s %-8s %10s %9s %9s %16s %14s %10s %6s %5s\n' server scenario req/s p50_us \
  p99_us reqs_per_cpu_sec cpu_us_per_req client_cpu errors load
for c in $CONNS; do
  for name in "${S_NAMES[@]}"; do
    cc=$(med_of "$name" "c$c" client_cpu)
    printf '%-12s %-8s %10.0f %9.1f %9.1f %16.0f %14.2f %10.2f %6d %5s\n' "$name" "c$c" \
      "$(med_of "$name" "c$c" reqs_per_sec)" "$(med_of "$name" "c$c" p50_us)" \
      "$(med_of "$name" "c$c" p99_us)" "$(med_of "$name" "c$c" reqs_per_cpu_sec)" \
      "$(med_of "$name" "c$c" cpu_us_per_req)" "$cc" "$(sum_of "$name" "c$c" errors)" \
      "$(sat "$cc")"
  done
done
