#!/usr/bin/env bash
# Build tests/arch/switch_test.c for another architecture with a cross
# compiler and run it under qemu-user. Exit 77 (skip) if the tools are missing.
# Usage: tests/arch/cross.sh aarch64
set -euo pipefail
arch=${1:?usage: cross.sh ARCH}
src=$(cd "$(dirname "$0")/../.." && pwd)
cc=${arch}-linux-gnu-gcc
qemu=qemu-${arch}
command -v "$cc" >/dev/null && command -v "$qemu" >/dev/null || {
	echo "cross.sh: $cc or $qemu missing: skipping" >&2
	exit 77
}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$cc" -O2 -Wall -Wextra -Werror -static -I"$src/src" -o "$out/switch_test" \
	"$src/tests/arch/switch_test.c" "$src/src/fiber/ctx.c" "$src/src/fiber/switch_${arch}.S" -lm
"$qemu" "$out/switch_test"
