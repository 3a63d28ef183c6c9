# Shared helpers for the network benchmark scripts (sourced, not run).
#
# A server entry is NAME=COMMAND. COMMAND is run with `sh -c "exec COMMAND"`
# under taskset, so the PID we hold is the server's own. A COMMAND that has
# to prepare something first contains its own `exec` and is run as it is
# (`prep ... && exec server ...`). Placeholders:
#   {port}   the TCP port picked for this server (it must listen on 127.0.0.1)
#   {tmp}    a private scratch directory for this server
#   {build}  the build directory given to the script
# All servers of a script run side by side, each on its own port, and the
# load runs are interleaved (run 1 of every server, then run 2, ...), so that
# noise from elsewhere on the machine is spread over all of them alike.
#
# Environment knobs common to all scripts:
#   SERVER_CPU=0  LOAD_CPU=1  RUNS=3  BASE_PORT=19100
#
# Two rules every table follows:
#   - a row whose load generator was saturated (median client_cpu, its CPU
#     time over the run's wall time, at SAT_CPU=0.90 of a core or more) is
#     marked SAT in the `load` column: its throughput is the generator's,
#     and only the per-CPU-second column compares the servers;
#   - a corio server (an entry named corio*) must run on the backend its
#     name says (epoll if the name has "epoll", else io_uring), checked
#     from the server itself (check_backends) before any figure is taken.

SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
RUNS=${RUNS:-3}
BASE_PORT=${BASE_PORT:-19100}
SAT_CPU=${SAT_CPU:-0.90}
NET_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

declare -a S_NAMES=() S_CMDS=()
declare -A S_PID=() S_PORT=() S_DIR=()
TMPD=""

net_cleanup() {
  local name
  for name in "${!S_PID[@]}"; do
    stop_server "$name"
  done
  [ -n "$TMPD" ] && rm -rf "$TMPD"
  TMPD=""
}

net_init() {
  TMPD=$(mktemp -d "${TMPDIR:-/tmp}/corio-net.XXXXXX")
  trap net_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

die() { echo "$(basename "$0"): $*" >&2; exit 1; }
log() { echo "# $*" >&2; }

# add_entry NAME=COMMAND (a bare NAME maps to the script's built-in default
# through the function default_cmd, if the script defines one)
add_entry() {
  local name=${1%%=*} cmd=""
  [[ $1 == *=* ]] && cmd=${1#*=}
  if [ -z "$cmd" ]; then
    declare -F default_cmd >/dev/null && cmd=$(default_cmd "$name")
    [ -n "$cmd" ] || die "no command for entry '$name' (use NAME=COMMAND)"
  fi
  [[ $name =~ ^[A-Za-z0-9_.-]+$ ]] || die "bad entry name '$name'"
  S_NAMES+=("$name")
  S_CMDS+=("$cmd")
}

# port_busy PORT: true if something accepts connections on it
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pid_alive() {
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ "$st" != Z ]
}

# start_server NAME COMMAND: pick a free port, start pinned to SERVER_CPU,
# wait (bounded) until it accepts connections.
NEXT_PORT=$BASE_PORT
start_server() {
  local name=$1 cmd=$2 run port dir pid i
  port=$NEXT_PORT
  while port_busy "$port"; do port=$((port + 1)); done
  NEXT_PORT=$((port + 1))
  dir="$TMPD/$name"
  mkdir -p "$dir"
  cmd=${cmd//\{port\}/$port}
  cmd=${cmd//\{tmp\}/$dir}
  cmd=${cmd//\{build\}/${BUILD:-.}}
  echo "$cmd" >"$dir/cmd"
  run=$cmd
  [[ $cmd =~ (^|[^[:alnum:]_])exec[[:space:]] ]] || run="exec $cmd"
  taskset -c "$SERVER_CPU" sh -c "$run" >"$dir/server.log" 2>&1 </dev/null &
  pid=$!
  S_PID[$name]=$pid
  S_PORT[$name]=$port
  S_DIR[$name]=$dir
  for ((i = 0; i < 200; i++)); do # 10 s
    if ! pid_alive "$pid"; then
      cat "$dir/server.log" >&2
      die "server '$name' exited at start: $cmd"
    fi
    port_busy "$port" && { log "$name: pid $pid port $port: $cmd"; return 0; }
    sleep 0.05
  done
  die "server '$name' does not accept on port $port after 10 s: $cmd"
}

# stop_server NAME: SIGTERM, up to 3 s to exit, then SIGKILL. By PID only.
stop_server() {
  local name=$1 pid=${S_PID[$1]:-} i
  [ -n "$pid" ] || return 0
  unset "S_PID[$name]"
  if pid_alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 60; i++)); do
      pid_alive "$pid" || break
      sleep 0.05
    done
    pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null || true
}

start_all() {
  local i
  [ ${#S_NAMES[@]} -gt 0 ] || die "no server entries"
  for i in "${!S_NAMES[@]}"; do
    start_server "${S_NAMES[$i]}" "${S_CMDS[$i]}"
  done
  check_backends
}

# log_backend NAME: the backend a corio server's log line names ("kv:",
# "http:" or "echo: serving on BACKEND"), waiting a little for the line.
log_backend() {
  local i b
  for ((i = 0; i < 40; i++)); do
    b=$(sed -n 's/^[a-z_]*: serving on \([a-z_]*\)$/\1/p' "${S_DIR[$1]}/server.log" | head -1)
    [ -n "$b" ] && { echo "$b"; return; }
    sleep 0.05
  done
}

# check_backends: every corio* entry runs on the backend its name says.
# The script's server_backend NAME says what it runs on (log_backend by
# default; kv_redis.sh asks INFO).
check_backends() {
  local name want got
  for name in "${S_NAMES[@]}"; do
    [[ $name == corio* ]] || continue
    want=io_uring
    [[ $name == *epoll* ]] && want=epoll
    if declare -F server_backend >/dev/null; then
      got=$(server_backend "$name")
    else
      got=$(log_backend "$name")
    fi
    [ "$got" = "$want" ] ||
      die "server '$name' runs on '${got:-unknown}', not $want: its figures would not count"
    log "$name: backend $got (checked)"
  done
}

# sat CLIENT_CPU: "SAT" when the load generator was saturated, else "-".
sat() { awk -v c="$1" -v t="$SAT_CPU" 'BEGIN { print (c + 0 >= t ? "SAT" : "-") }'; }

# server_cpu NAME: CPU seconds (user+system, all threads) used so far
server_cpu() { "$NET_DIR/cpu.sh" "${S_PID[$1]}"; }

# check_alive NAME: die with the server's log if it has gone
check_alive() {
  pid_alive "${S_PID[$1]}" && return 0
  cat "${S_DIR[$1]}/server.log" >&2
  die "server '$1' died during the run"
}

# children_cpu VAR: set VAR to the CPU seconds used so far by this shell's
# waited-for children. `times` must run in this very shell (a pipe or $(...)
# would fork a fresh process that has no children yet), hence no $(...).
children_cpu() {
  local line
  times >"$TMPD/times.$BASHPID"
  { read -r line; read -r line; } <"$TMPD/times.$BASHPID"
  printf -v "$1" '%s' "$(awk '{ split($1, u, /[ms]/); split($2, s, /[ms]/)
    printf "%.3f", u[1] * 60 + u[2] + s[1] * 60 + s[2] }' <<<"$line")"
}

# kv KEY LINE: the value of KEY=value in a line of key=value pairs
kv() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

# median N...: median of numbers (mean of the two middle ones if even)
median() {
  printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
    END { if (NR == 0) print "nan";
          else if (NR % 2) print v[(NR + 1) / 2];
          else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# div A B: A / B, or "nan" when B is zero
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "nan"; else printf "%.6g\n", a / b }'; }

# A result record is one line "key=value ..." appended to $TMPD/res/NAME/SCENARIO.
record() { mkdir -p "$TMPD/res/$1"; echo "$3" >>"$TMPD/res/$1/$2"; }

# med_of NAME SCENARIO KEY: median of KEY over the recorded runs
med_of() {
  local f="$TMPD/res/$1/$2" vals=() line
  [ -f "$f" ] || { echo nan; return; }
  while read -r line; do vals+=("$(kv "$3" "$line")"); done <"$f"
  median "${vals[@]}"
}

# sum_of NAME SCENARIO KEY
sum_of() {
  local f="$TMPD/res/$1/$2"
  [ -f "$f" ] || { echo 0; return; }
  sed -n "s/.*\\b$3=\\([^ ]*\\).*/\\1/p" "$f" | awk '{ s += $1 } END { print s + 0 }'
}

header() {
  log "$(basename "$0") $(date -u +%Y-%m-%dT%H:%M:%SZ) kernel $(uname -r)," \
    "server on CPU $SERVER_CPU, load on CPU $LOAD_CPU, median of $RUNS runs," \
    "loadavg $(cut -d" " -f1-3 /proc/loadavg)"
}
