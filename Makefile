# corio: the two quick-start commands, and a few more.
#
#   make run     build, then run the showcase (echo server on 127.0.0.1:7000)
#   make test    build and run every test: normal build and ASan+UBSan build,
#                each on both backends (io_uring and epoll), then a bounded
#                fuzz run of the parsers (clang, libFuzzer: FUZZ_TIME seconds)
#   make bench   build and run the benchmarks against their peers
#   make install PREFIX=/usr/local
#
# Each target first installs the Debian packages it needs (apt-get, as root).

JOBS ?= $(shell nproc)
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_TIME ?= 20
PREFIX ?= /usr/local
CMAKE_FLAGS ?=

.PHONY: all deps build run test test-plain test-asan test-fuzz bench install clean

all: build

deps:
	@scripts/deps.sh build

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

run: build
	@echo "echo server on 127.0.0.1:7000 (Ctrl-C stops it); try: nc 127.0.0.1 7000"
	@$(BUILD)/examples/echo 127.0.0.1 7000

test: test-plain test-asan test-fuzz

test-plain:
	@scripts/deps.sh test
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)
	@cd $(BUILD) && ctest -j$(JOBS) --output-on-failure

test-asan:
	@scripts/deps.sh test
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCORIO_SANITIZE=ON \
		-DCORIO_BUILD_BENCH=OFF $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)
	@cd $(ASAN_BUILD) && ctest -j$(JOBS) --output-on-failure

# libFuzzer needs clang: a build directory of its own that builds only the
# fuzz targets (the gcc builds above are untouched).
test-fuzz:
	@scripts/deps.sh test
	@cmake -S . -B $(FUZZ_BUILD) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DCORIO_FUZZ=ON -DCORIO_FUZZ_TIME=$(FUZZ_TIME) -DCORIO_BUILD_TESTS=OFF \
		-DCORIO_BUILD_EXAMPLES=OFF -DCORIO_BUILD_BENCH=OFF >/dev/null
	@cmake --build $(FUZZ_BUILD) -j$(JOBS) --target fuzz
	@cd $(FUZZ_BUILD) && ctest --output-on-failure

bench:
	@scripts/deps.sh bench
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)
	@bench/run.sh $(BUILD)

install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
