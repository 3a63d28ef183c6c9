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
# skip themselves (t_under_valgrind), and test_overflow, whose children
# re-execute /proc/self/exe (valgrind itself), is left out. The epoll runs
# have the registration re-check off, as in ctest. Where io_uring works, a
# .uring program that skips fails (CORIO_TEST_NO_SKIP); so does a run that
# finds no test program, or one whose output logs an epoll re-check rescue.
# Logs: BUILD_DIR/valgrind/.
#
# CORIO_FUSE_ENTRIES scales the big directory of tests/test_fuse.c (10,000
# entries elsewhere): there its server runs under valgrind too, and every
# entry costs several requests.
set -uo pipefail

build=${1:?usage: scripts/valgrind.sh BUILD_DIR [test_NAME ...]}
shift
build=$(cd "$build" && pwd) || exit 1
logs=$build/valgrind
rm -rf "$logs"
mkdir -p "$logs"
cd "$build/tests" || { echo "valgrind.sh: no $build/tests (build first)" >&2; exit 1; }
if [ $# -gt 0 ]; then
  tests=("$@")
else
  tests=()
  for t in test_*; do [ -x "$t" ] && [ "$t" != test_overflow ] && tests+=("$t"); done
fi
if [ ${#tests[@]} -eq 0 ]; then
  echo "valgrind.sh: no test program in $build/tests (build first)" >&2
  exit 1
fi
CORIO_TEST_NO_SKIP=$(./uring_probe && echo uring)
export CORIO_TEST_NO_SKIP

one() {
  local t=$1 be=$2 rc
  CORIO_BACKEND=$be CORIO_EPOLL_VERIFY_MS=0 CORIO_TEST_BINDIR=$build CORIO_FUSE_ENTRIES=2000 \
    timeout -s KILL 900 \
    valgrind -q --fair-sched=yes --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
    --log-file="$logs/$t.$be.log" "./$t" >"$logs/$t.$be.out" 2>&1
  rc=$?
  grep -q "epoll re-check rescued" "$logs/$t.$be.out" && rc=98
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
