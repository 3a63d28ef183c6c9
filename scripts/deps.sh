#!/usr/bin/env bash
# Install the Debian packages a make target needs, if any are missing.
# Usage: scripts/deps.sh build|test|bench
set -euo pipefail

build_pkgs=(cmake make gcc pkg-config liburing-dev libcmocka-dev)
test_pkgs=(clang libclang-rt-14-dev libseccomp-dev valgrind redis-tools wrk gcc-aarch64-linux-gnu
	   libc6-dev-arm64-cross qemu-user)
bench_pkgs=(libuv1-dev nginx-light wrk redis-server redis-tools util-linux procps)

want=("${build_pkgs[@]}")
case "${1:-build}" in
  build) ;;
  test) want+=("${test_pkgs[@]}") ;;
  bench) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *) echo "usage: $0 build|test|bench" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
