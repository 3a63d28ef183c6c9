#!/usr/bin/env bash
# Build every libFuzzer target (tests/fuzz/fuzz_<name>.c) with clang in a
# build directory of its own, and run each for a bounded time from its seed
# corpus (tests/fuzz/corpus/<name>/, read only; new inputs go to
# BUILD/corpus/<name>/). A crash fails the run and leaves the input in
# BUILD/artifacts/.
#
# Usage: scripts/fuzz.sh [BUILD] [SECONDS]   (defaults: build-fuzz 20)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-fuzz}
secs=${2:-20}

CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCORIO_FUZZ=ON \
	-DCORIO_BUILD_TESTS=OFF -DCORIO_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target corio_fuzz

mkdir -p "$build/artifacts"
found=0
for bin in "$build"/tests/fuzz/fuzz_*; do
	[ -f "$bin" ] && [ -x "$bin" ] || continue
	name=$(basename "$bin")
	short=${name#fuzz_}
	work="$build/corpus/$short"
	mkdir -p "$work"
	found=$((found + 1))
	echo "fuzz: $name for ${secs}s"
	dict=()
	[ -f "tests/fuzz/$short.dict" ] && dict=(-dict="tests/fuzz/$short.dict")
	if ! "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 "${dict[@]}" \
		-artifact_prefix="$build/artifacts/$name-" -print_final_stats=1 \
		"$work" "tests/fuzz/corpus/$short" >"$build/$name.log" 2>&1; then
		tail -n 60 "$build/$name.log"
		echo "fuzz: $name failed; reproduce with: $bin $build/artifacts/$name-*" >&2
		exit 1
	fi
	grep -E "^stat::number_of_executed_units|^stat::new_units_added" "$build/$name.log" |
		sed "s/^/fuzz: $name /"
done
[ "$found" -gt 0 ] || { echo "fuzz: no targets built" >&2; exit 1; }
