#!/usr/bin/env bash
# Install the Debian packages a make target needs, if any are missing.
# Usage: scripts/deps.sh build|test|bench
#
# Where apt-get is missing or fails (no network, no root), it says which
# packages it wanted and goes on if what the target cannot do without (the
# tools and libraries checked below) is there anyway; it fails only if not.
set -euo pipefail

build_pkgs=(cmake make gcc pkg-config liburing-dev libcmocka-dev)
test_pkgs=(clang libclang-rt-14-dev libseccomp-dev valgrind redis-tools wrk gcc-aarch64-linux-gnu
	   libc6-dev-arm64-cross qemu-user)
bench_pkgs=(libuv1-dev nginx-light wrk redis-server redis-tools util-linux procps fio bindfs)

# What each target cannot do without: commands, and pkg-config modules.
build_cmds=(cmake make cc pkg-config)
build_mods=("liburing >= 2.2" cmocka)
test_cmds=(clang valgrind)
bench_cmds=(taskset)

want=("${build_pkgs[@]}")
cmds=("${build_cmds[@]}")
case "${1:-build}" in
  build) ;;
  test) want+=("${test_pkgs[@]}"); cmds+=("${test_cmds[@]}") ;;
  bench) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}"); cmds+=("${test_cmds[@]}" "${bench_cmds[@]}") ;;
  *) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac

missing=()
if command -v dpkg-query >/dev/null; then
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
else
  missing=("${want[@]}") # not Debian: judge by what is there (below)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

# Whether the essentials are there; prints what is not.
essentials_present() {
  local ok=0 c m
  for c in "${cmds[@]}"; do
    command -v "$c" >/dev/null || { echo "  missing command: $c" >&2; ok=1; }
  done
  for m in "${build_mods[@]}"; do
    command -v pkg-config >/dev/null && pkg-config --exists "$m" ||
      { echo "  missing library (pkg-config): $m" >&2; ok=1; }
  done
  return $ok
}

install() {
  local sudo=""
  if ! command -v apt-get >/dev/null; then
    echo "deps.sh: no apt-get here" >&2
    return 1
  fi
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "deps.sh: need root (or sudo) to install" >&2; return 1; }
    sudo=sudo
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq || return 1
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || return 1
}

echo "installing: ${missing[*]}"
install && exit 0
echo "deps.sh: could not install: ${missing[*]}" >&2
if essentials_present; then
  echo "deps.sh: going on with what is installed (tests and benchmarks that need the rest" \
       "skip or say so)" >&2
  exit 0
fi
echo "deps.sh: cannot go on without the above; install them, then run make again" >&2
exit 1
