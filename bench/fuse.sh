#!/usr/bin/env bash
# FUSE passthrough servers under the same fio jobs and a metadata job, beside
# the source directory itself (the limit): operations per second and per
# server CPU-second, median of RUNS.
#
# Usage: bench/fuse.sh BUILD_DIR        (as root: it mounts)
#
# Servers: corio (BUILD/examples/fuse_server, /dev/fuse transport, one loop),
# bindfs (the Debian package, --multithreaded), and libfuse's passthrough_hp
# when PASSTHROUGH_HP names a binary of it (libfuse ships it as source only;
# see docs/BENCHMARKS.md for how the recorded one was built; without it that
# row is skipped). Each serves its own directory of a tmpfs (the source: its
# data is page cache by construction) on SERVER_CPU; the load runs on
# LOAD_CPU.
#
# Same settings for every server: no caching of names or attributes
# (timeout 0: corio --timeout 0, bindfs -o entry_timeout=0,attr_timeout=0,
# passthrough_hp --nocache), no writeback cache, the default max_write of
# 1 MiB (max_pages 256), readdirplus. fio runs with --direct=1, so that
# every read and write is a request to the server (buffered I/O through a
# FUSE mount would mostly be served by the kernel's page cache of the
# mount, without the server). libfuse moves WRITE data with splice where
# the server asks (passthrough_hp does, bindfs does for reads), corio does
# not.
#
# Jobs: randread4k (4 KiB random reads, numjobs 2), seqread128k (128 KiB
# sequential reads), randwrite4k (4 KiB random writes), each RUNTIME
# seconds over files of SIZE laid out before (unmeasured), with
# --invalidate=0; meta (BUILD/bench/fuse_meta: create, stat and unlink of
# META_FILES files, 3 operations each).
#
# Environment (defaults): RUNS=3 RUNTIME=5 SIZE=256m META_FILES=10000
#   SERVER_CPU=0 LOAD_CPU=1 PASSTHROUGH_HP= JOBS="randread4k seqread128k randwrite4k meta"
#
# Output: a table on stdout, one row per server and job,
#   server job ops/s ops_per_cpu_sec server_cpu_s
# then corio's ratios to each peer with the goals (>= 1.5x bindfs, >= 1.0x
# passthrough_hp, in both columns); every run on stderr as a comment.
set -euo pipefail
. "$(dirname "$0")/net/lib.sh"

BUILD=$(cd "${1:?usage: bench/fuse.sh BUILD_DIR}" && pwd)
RUNTIME=${RUNTIME:-5}
SIZE=${SIZE:-256m}
META_FILES=${META_FILES:-10000}
JOBS=${JOBS:-"randread4k seqread128k randwrite4k meta"}
PASSTHROUGH_HP=${PASSTHROUGH_HP:-}

[ "$(id -u)" -eq 0 ] || die "needs root (it mounts file systems)"
[ -e /dev/fuse ] || die "no /dev/fuse"
command -v fio >/dev/null || die "fio not found (apt-get install fio)"
command -v bindfs >/dev/null || die "bindfs not found (apt-get install bindfs)"
[ -x "$BUILD/examples/fuse_server" ] || die "no $BUILD/examples/fuse_server"
[ -x "$BUILD/bench/fuse_meta" ] || die "no $BUILD/bench/fuse_meta"

declare -A PID=() MNT=()
NAMES=()
TMPD=$(mktemp -d /tmp/corio-fuse-bench.XXXXXX)

cleanup() {
	local n
	for n in "${!PID[@]}"; do
		kill -TERM "${PID[$n]}" 2>/dev/null || true
		wait "${PID[$n]}" 2>/dev/null || true
	done
	for n in "${!MNT[@]}"; do
		mountpoint -q "${MNT[$n]}" && umount -l "${MNT[$n]}"
	done
	mountpoint -q "$TMPD/src" && umount -l "$TMPD/src"
	rm -rf "$TMPD"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$TMPD/src" "$TMPD/res"
mount -t tmpfs -o size=4g tmpfs "$TMPD/src"

# start NAME COMMAND...: mount NAME's directory at $TMPD/mnt/NAME, server
# pinned to SERVER_CPU; wait (bounded) for the mount.
start() {
	local name=$1 i
	shift
	mkdir -p "$TMPD/src/$name" "$TMPD/mnt/$name"
	MNT[$name]=$TMPD/mnt/$name
	taskset -c "$SERVER_CPU" "$@" "$TMPD/src/$name" "$TMPD/mnt/$name" \
		>"$TMPD/$name.log" 2>&1 </dev/null &
	PID[$name]=$!
	for ((i = 0; i < 100; i++)); do
		mountpoint -q "$TMPD/mnt/$name" && { NAMES+=("$name"); log "$name: pid ${PID[$name]}: $*"; return; }
		pid_alive "${PID[$name]}" || break
		sleep 0.1
	done
	cat "$TMPD/$name.log" >&2
	die "$name did not mount: $*"
}

target_dir() { [ "$1" = source ] && echo "$TMPD/src/source" || echo "$TMPD/mnt/$1"; }

FIO_COMMON=(--direct=1 --invalidate=0 --ioengine=psync --group_reporting
	--output-format=terse --terse-version=3 --directory)

fio_args() {
	case $1 in
	randread4k) echo "--rw=randread --bs=4k --numjobs=2" ;;
	seqread128k) echo "--rw=read --bs=128k --numjobs=1" ;;
	randwrite4k) echo "--rw=randwrite --bs=4k --numjobs=1" ;;
	esac
}

# run_job NAME JOB: one measured run; prints "ops_per_sec=.. ops=.. cpu_s=.."
run_job() {
	local name=$1 job=$2 dir c0=0 c1=0 out ops rate
	dir=$(target_dir "$name")
	[ "$name" = source ] || c0=$(server_cpu_of "$name")
	if [ "$job" = meta ]; then
		out=$(taskset -c "$LOAD_CPU" "$BUILD/bench/fuse_meta" "$dir" "$META_FILES")
		rate=$(kv ops_per_sec "$out")
		ops=$(kv ops "$out")
	else
		# shellcheck disable=SC2046
		out=$(taskset -c "$LOAD_CPU" timeout $((RUNTIME + 120)) fio --name="$job" \
			$(fio_args "$job") --size="$SIZE" --runtime="$RUNTIME" --time_based \
			"${FIO_COMMON[@]}" "$dir")
		# terse v3: read iops field 8, runtime (ms) 9; write iops 49, runtime 50
		read -r rate ops < <(awk -F';' '{ r = $8 + $49; t = ($9 > $50 ? $9 : $50)
			printf "%s %.0f\n", r, r * t / 1000 }' <<<"$out")
	fi
	[ "$name" = source ] || c1=$(server_cpu_of "$name")
	echo "ops_per_sec=$rate ops=$ops cpu_s=$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')"
}

server_cpu_of() {
	pid_alive "${PID[$1]}" || { cat "$TMPD/$1.log" >&2; die "server $1 died"; }
	"$NET_DIR/cpu.sh" "${PID[$1]}"
}

# Lay the files out (unmeasured): a short run of each fio job.
layout() {
	local name=$1 job dir
	dir=$(target_dir "$name")
	for job in $JOBS; do
		[ "$job" = meta ] && continue
		# shellcheck disable=SC2046
		taskset -c "$LOAD_CPU" fio --name="$job" $(fio_args "$job") --size="$SIZE" \
			--runtime=1 --time_based "${FIO_COMMON[@]}" "$dir" >/dev/null
	done
}

mkdir -p "$TMPD/src/source"
start corio "$BUILD/examples/fuse_server" -t 1 --timeout 0
start bindfs bindfs -f --multithreaded -o entry_timeout=0,attr_timeout=0,negative_timeout=0
if [ -n "$PASSTHROUGH_HP" ]; then
	[ -x "$PASSTHROUGH_HP" ] || die "PASSTHROUGH_HP=$PASSTHROUGH_HP is not executable"
	start hp "$PASSTHROUGH_HP" --foreground --nocache
else
	log "passthrough_hp: PASSTHROUGH_HP not set, its rows are skipped"
fi
TARGETS=(source "${NAMES[@]}")

log "fuse.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) kernel $(uname -r), servers on CPU $SERVER_CPU," \
	"load on CPU $LOAD_CPU, median of $RUNS runs, RUNTIME=$RUNTIME SIZE=$SIZE," \
	"loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
for t in "${TARGETS[@]}"; do layout "$t"; done

for ((run = 1; run <= RUNS; run++)); do
	for job in $JOBS; do
		for t in "${TARGETS[@]}"; do
			line=$(run_job "$t" "$job")
			cpu=$(kv cpu_s "$line")
			ops=$(kv ops "$line")
			per=nan
			[ "$t" = source ] || per=$(div "$ops" "$cpu")
			log "run $run $t $job $line ops_per_cpu_sec=$per"
			record "$t" "$job" "$line ops_per_cpu_sec=$per"
		done
	done
done

printf '%-8s %-12s %12s %16s %12s\n' server job ops/s ops_per_cpu_sec server_cpu_s
for job in $JOBS; do
	for t in "${TARGETS[@]}"; do
		printf '%-8s %-12s %12.0f %16s %12s\n' "$t" "$job" "$(med_of "$t" "$job" ops_per_sec)" \
			"$(med_of "$t" "$job" ops_per_cpu_sec)" "$(med_of "$t" "$job" cpu_s)"
	done
done

# Goals: corio at least 1.5x bindfs and 1.0x passthrough_hp, both columns.
echo
for peer in bindfs hp; do
	[ -n "${PID[$peer]:-}" ] || continue
	goal=1.5
	[ "$peer" = hp ] && goal=1.0
	for job in $JOBS; do
		for col in ops_per_sec ops_per_cpu_sec; do
			r=$(div "$(med_of corio "$job" "$col")" "$(med_of "$peer" "$job" "$col")")
			awk -v r="$r" -v g="$goal" -v p="$peer" -v j="$job" -v c="$col" 'BEGIN {
				printf "goal corio/%s %-12s %-16s %5.2fx  %s (>= %sx)\n", p, j, c, r,
					(r + 0 >= g + 0 ? "met" : "MISSED"), g }'
		done
	done
done
