# corio: the two quick-start commands, and a few more.
#
#   make run     build, then run the showcase: the KV server (Redis protocol)
#                on 127.0.0.1:6380, one loop per core
#   make check   the fast inner loop: the plain build and its tests (both
#                backends; the layer check, the documentation's C blocks,
#                the exported symbols and a program built against the
#                installed library among them); no sanitizers, valgrind or
#                fuzzing. A minute or two on 2 cores from scratch, well
#                under a minute after a small change.
#   make test    build and run every test: normal build and ASan+UBSan build
#                (gcc), the ASan+UBSan build again with clang, a
#                ThreadSanitizer build (clang), each on both backends
#                (io_uring and epoll; the documentation's C blocks among
#                them, the installed-library program in the normal build
#                only), the test programs under valgrind
#                (memcheck), every fuzz target (FUZZ_TIME seconds in all,
#                clang, libFuzzer), then a one-minute soak of the servers
#   make test-valgrind
#                just the valgrind part (about 2 minutes on 2 cores)
#   make soak    kv, http and echo on both backends under mixed load, SOAK_TIME
#                seconds each (default 600: an hour in all), watching memory and
#                descriptors (scripts/soak.sh); `make test` runs a 1-minute one
#   make fuzz-long
#                every fuzz target for FUZZ_TIME seconds in all (default 3600),
#                new inputs merged into tests/fuzz/corpus/
#   make bench   build and run the benchmarks against their peers
#   make install PREFIX=/usr/local
#
# Each target first installs the Debian packages it needs (apt-get, as root).

JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
CLANG_BUILD ?= build-clang
TSAN_BUILD ?= build-tsan
FUZZ_BUILD ?= build-fuzz
FUZZ_TIME ?= 60
SOAK_TIME ?= 600
PREFIX ?= /usr/local
CMAKE_FLAGS ?=
# In a build directory: where io_uring works, a .uring test must not skip
# (tests/util.c, t_skip); tests/uring_probe says whether it does.
NO_SKIP = CORIO_TEST_NO_SKIP=$$(tests/uring_probe && echo uring)

.PHONY: all deps build run check test test-plain test-asan test-clang test-tsan test-fuzz \
	test-valgrind test-soak soak fuzz-long bench install clean

all: build

deps:
	@scripts/deps.sh build

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

run: build
	@echo "KV server on 127.0.0.1:6380, all cores (Ctrl-C stops it); try: redis-cli -p 6380"
	@$(BUILD)/examples/kv/kv -a 127.0.0.1 -p 6380

test: test-plain test-asan test-clang test-tsan test-valgrind test-fuzz test-soak

# The plain build's tests need only the build packages (the few that use
# test tools skip, loudly, where those are missing).
check: build
	@cd $(BUILD) && ctest -j$(JOBS) --output-on-failure

test-plain:
	@scripts/deps.sh test
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)
	@cd $(BUILD) && $(NO_SKIP) ctest -j$(JOBS) --output-on-failure

test-asan:
	@scripts/deps.sh test
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCORIO_SANITIZE=ON \
		-DCORIO_BUILD_BENCH=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)
	@cd $(ASAN_BUILD) && $(NO_SKIP) ctest -j$(JOBS) --output-on-failure

# clang's warnings (-Werror) and sanitizers, beside gcc's.
test-clang:
	@scripts/deps.sh test
	@CC=clang cmake -S . -B $(CLANG_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCORIO_SANITIZE=ON \
		-DCORIO_BUILD_BENCH=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(CLANG_BUILD) -j$(JOBS)
	@cd $(CLANG_BUILD) && $(NO_SKIP) ctest -j$(JOBS) --output-on-failure

# ThreadSanitizer, every test (about 25 s of tests on 2 cores, plus the
# build): the pool, cross-loop sync, the epoll thread pool, the servers.
test-tsan:
	@scripts/deps.sh test
	@CC=clang cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCORIO_TSAN=ON \
		-DCORIO_BUILD_BENCH=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(TSAN_BUILD) -j$(JOBS)
	@cd $(TSAN_BUILD) && $(NO_SKIP) ctest -j$(JOBS) --output-on-failure

# FUZZ_TIME is the budget of all targets together, split evenly.
test-fuzz:
	@scripts/deps.sh test
	@scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_TIME)

fuzz-long:
	@scripts/deps.sh test
	@FUZZ_MERGE=1 scripts/fuzz.sh $(FUZZ_BUILD) $(if $(filter file,$(origin FUZZ_TIME)),3600,$(FUZZ_TIME))

# The soak, short (about a minute in all), and in full.
test-soak:
	@scripts/deps.sh test
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)
	@SOAK_TIME=8 SOAK_INTERVAL=2 SOAK_WARMUP=2 scripts/soak.sh $(BUILD) 2>/dev/null

soak:
	@scripts/deps.sh test
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)
	@SOAK_TIME=$(SOAK_TIME) scripts/soak.sh $(BUILD)

test-valgrind:
	@scripts/deps.sh test
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)
	@scripts/valgrind.sh $(BUILD)

bench:
	@scripts/deps.sh bench
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)
	@bench/run.sh $(BUILD)

install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(CLANG_BUILD) $(TSAN_BUILD) $(FUZZ_BUILD)
