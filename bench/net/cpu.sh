#!/usr/bin/env bash
# Print the CPU time (user + system, all threads) a process has used so far,
# in seconds, from /proc/<pid>/stat. Sample it before and after a load run;
# the difference is the server's CPU cost of that run.
# Usage: cpu.sh PID
# Resolution is one clock tick (usually 10 ms), so runs should last seconds.
set -euo pipefail
pid=${1:?usage: cpu.sh PID}
stat=$(cat "/proc/$pid/stat" 2>/dev/null) || { echo "cpu.sh: no process $pid" >&2; exit 1; }
# The command name (field 2) may contain spaces; cut after its closing paren.
rest=${stat##*) }
read -r -a f <<<"$rest"
# rest starts at field 3 (state); utime and stime are fields 14 and 15.
ticks=$(( f[11] + f[12] ))
hz=$(getconf CLK_TCK)
awk -v t="$ticks" -v hz="$hz" 'BEGIN { printf "%.2f\n", t / hz }'
