#!/usr/bin/env bash
# Build every libFuzzer target (tests/fuzz/fuzz_<name>.c) with clang in a
# build directory of its own, and run them one after the other from their
# seed corpora (tests/fuzz/corpus/<name>/; new inputs go to
# BUILD/corpus/<name>/), SECONDS in all, split evenly (at least 5 each). A
# crash, leak or hang (10 s) fails the run and leaves the input in
# BUILD/artifacts/.
#
# With FUZZ_MERGE=1 (make fuzz-long), the inputs that add coverage are then
# merged into tests/fuzz/corpus/<name>/ (at most 4 KiB each), to be
# committed: the corpora in the repository grow with every long run.
#
# Usage: scripts/fuzz.sh [BUILD] [SECONDS]   (defaults: build-fuzz 60)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-fuzz}
total=${2:-60}

CC=clang cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCORIO_FUZZ=ON \
	-DCORIO_BUILD_TESTS=OFF -DCORIO_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target corio_fuzz

mkdir -p "$build/artifacts"
bins=()
for bin in "$build"/tests/fuzz/fuzz_*; do
	[ -f "$bin" ] && [ -x "$bin" ] && bins+=("$bin")
done
[ ${#bins[@]} -gt 0 ] || { echo "fuzz: no targets built" >&2; exit 1; }
secs=$((total / ${#bins[@]}))
[ "$secs" -ge 5 ] || secs=5
for bin in "${bins[@]}"; do
	name=$(basename "$bin")
	short=${name#fuzz_}
	work="$build/corpus/$short"
	mkdir -p "$work" "tests/fuzz/corpus/$short"
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
	grep -E "^stat::number_of_executed_units|^stat::new_units_added|^cov:|^#.*DONE" \
		"$build/$name.log" | sed "s/^/fuzz: $name /"
	if [ "${FUZZ_MERGE:-0}" = 1 ]; then
		before=$(ls "tests/fuzz/corpus/$short" | wc -l)
		"$bin" -merge=1 -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
			"tests/fuzz/corpus/$short" "$work" >"$build/$name.merge.log" 2>&1 ||
			{ tail -n 20 "$build/$name.merge.log"; exit 1; }
		echo "fuzz: $name corpus $before -> $(ls "tests/fuzz/corpus/$short" | wc -l) inputs" \
			"(tests/fuzz/corpus/$short)"
	fi
done
