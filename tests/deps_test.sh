#!/usr/bin/env bash
# scripts/deps.sh where packages cannot be installed: with a dpkg that says
# a package is missing and an apt-get that fails (or none at all), it must
# name the packages it wanted and go on when the tools and libraries a
# target needs are there, and fail, naming what is absent, when they are
# not. (Nothing is installed: both are stand-ins on a private PATH.)
#
# Usage: tests/deps_test.sh scripts/deps.sh
set -euo pipefail

deps=$(realpath "${1:?usage: deps_test.sh DEPS_SH}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

# bin DIR TOOL...: a PATH directory with the real TOOLs, a dpkg-query that
# finds every package but liburing-dev, and an apt-get that fails.
bin() {
	local d=$1 t
	shift
	mkdir -p "$d"
	for t in "$@"; do
		ln -s "$(command -v "$t")" "$d/$t"
	done
	printf '#!/bin/sh\n[ "$3" = liburing-dev ] && exit 1\necho "install ok installed"\n' \
		>"$d/dpkg-query"
	printf '#!/bin/sh\necho "E: no network" >&2\nexit 100\n' >"$d/apt-get"
	chmod +x "$d/dpkg-query" "$d/apt-get"
}

# expect NAME RC PATTERN PATH ARG
expect() {
	local name=$1 want=$2 pattern=$3 path=$4 arg=$5 out rc=0
	out=$(PATH=$path /bin/bash "$deps" "$arg" 2>&1) || rc=$?
	if [ $rc -eq "$want" ] && grep -q -- "$pattern" <<<"$out"; then
		echo "ok    $name"
	else
		echo "FAIL  $name: exit $rc (wanted $want, with '$pattern'); it said:"
		sed 's/^/      /' <<<"$out"
		failures=$((failures + 1))
	fi
}

tools=(grep id cat cmake make cc pkg-config)
bin "$tmp/all" "${tools[@]}"
expect "apt-get fails, the build's tools are there: goes on" 0 \
	"could not install: liburing-dev" "$tmp/all" build

bin "$tmp/nocmake" grep id cat make cc pkg-config
expect "apt-get fails and cmake is missing: fails, naming it" 1 \
	"missing command: cmake" "$tmp/nocmake" build

bin "$tmp/noapt" "${tools[@]}"
rm "$tmp/noapt/apt-get"
expect "no apt-get at all: says so and goes on" 0 "no apt-get here" "$tmp/noapt" build

[ $failures -eq 0 ] || { echo "$failures case(s) failed"; exit 1; }
