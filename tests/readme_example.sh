#!/usr/bin/env bash
# The README's example must build against the library as built, run, and
# echo: extract the C block under "## A taste", build it, start it on each
# backend and make an echo round trip through it.
# Usage: readme_example.sh SOURCE_DIR LIBCORIO_A CC [FLAGS...]
# (FLAGS: what the library was built with that the link needs, e.g. the
# sanitizers.)
set -euo pipefail
src=$1 lib=$2 cc=$3
shift 3
out=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$out"' EXIT
awk '/^## A taste/ { on = 1 } on && /^```c$/ { grab = 1; next } grab && /^```$/ { exit } grab' \
	"$src/README.md" >"$out/example.c"
[ -s "$out/example.c" ] || { echo "readme_example: no C block under '## A taste'" >&2; exit 1; }
grep -q '7000' "$out/example.c" || { echo "readme_example: the example has no port 7000" >&2; exit 1; }
"$cc" "$@" -Wall -Wextra -Wno-unused-parameter -Werror -I"$src/include" "$out/example.c" "$lib" \
	$(pkg-config --libs liburing) -lpthread -o "$out/example"
echo "readme_example: the README's example builds"

# Its port is fixed (7000): run a copy built for another, so that tests
# running at the same time do not collide; a port found taken after all
# (the copy exits at once) costs another try.
start() {
	local backend=$1 try i
	shift
	for try in 1 2 3 4 5; do
		port=$((20000 + RANDOM % 40000))
		sed "s/7000/$port/" "$out/example.c" >"$out/port.c"
		"$cc" "$@" -I"$src/include" "$out/port.c" "$lib" $(pkg-config --libs liburing) \
			-lpthread -o "$out/port"
		CORIO_BACKEND=$backend CORIO_EPOLL_VERIFY_MS=0 "$out/port" &
		server=$!
		# Until it listens (at most 10 s); it says nothing when it does.
		for i in $(seq 200); do
			exec 3<>"/dev/tcp/127.0.0.1/$port" && return 0
			kill -0 "$server" 2>/dev/null || break
			sleep 0.05
		done 2>/dev/null
		kill "$server" 2>/dev/null || true
		wait "$server" 2>/dev/null || true
		server=
	done
	echo "readme_example ($backend): it never listened" >&2
	exit 1
}

# auto: as a user runs it (io_uring where it works); then epoll.
msg="hello from the README"
for backend in auto epoll; do
	start "$backend" "$@"
	printf '%s' "$msg" >&3
	IFS= read -r -N ${#msg} -t 10 reply <&3 || true
	exec 3<&-
	[ "$reply" = "$msg" ] || { echo "readme_example ($backend): sent '$msg', got '$reply'" >&2; exit 1; }
	kill "$server"
	wait "$server" 2>/dev/null || true
	server=
	echo "readme_example: the README's example echoes ($backend)"
done
