#!/usr/bin/env bash
# Every test program under valgrind's memcheck, on both backends: no invalid
# access, no use of uninitialised memory, no definite leak.
#
# Usage: scripts/valgrind.sh BUILD_DIR [test_NAME ...]   (default: all)
#
# BUILD_DIR is a plain (not sanitizer) build. Under valgrind, corio's
# io_uring backend tells memcheck what the kernel wrote on each completion
# and sleeps in poll(2) instead of io_uring_enter (see
# src/backend/uring_valgrind.c); a few test cases valgrind cannot express
# skip themselves (t_under_valgrind). Logs: BUILD_DIR/valgrind/.
#
# CORIO_FUSE_ENTRIES scales the big directory of tests/test_fuse.c (10,000
# entries elsewhere): there its server runs under valgrind too, and every
# entry costs several requests.
set -uo pipefail

build=${1:?usage: scripts/valgrind.sh BUILD_DIR [test_NAME ...]}
shift
build=$(cd "$build" && pwd)
logs=$build/valgrind
rm -rf "$logs"
mkdir -p "$logs"
cd "$build/tests"
if [ $# -gt 0 ]; then
  tests=("$@")
else
  tests=()
  for t in test_*; do [ -x "$t" ] && tests+=("$t"); done
fi

one() {
  local t=$1 be=$2 rc
  CORIO_BACKEND=$be CORIO_TEST_BINDIR=$build CORIO_FUSE_ENTRIES=2000 timeout -s KILL 900 \
    valgrind -q --fair-sched=yes --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --log-file="$logs/$t.$be.log" "./$t" >"$logs/$t.$be.out" 2>&1
  rc=$?
  case $rc in
    0) echo "ok    $t.$be" ;;
    77) echo "skip  $t.$be" ;;
    *) echo "FAIL  $t.$be (exit $rc; $logs/$t.$be.log)" ;;
  esac
}
export -f one
export logs build

for t in "${tests[@]}"; do printf '%s uring\n%s epoll\n' "$t" "$t"; done |
  xargs -P "$(nproc)" -L 1 bash -c 'one "$0" "$1"' | tee "$logs/summary"
! grep -q '^FAIL' "$logs/summary"
