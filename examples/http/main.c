/*
 * http_server: an HTTP/1.1 server on corio.
 *
 * What it shows:
 *  - thread per core: a pool of loops (corio_pool), one per CPU by default
 *    (-t N), sharing nothing; each loop has its own listener on the same
 *    port (CORIO_LISTEN_REUSEPORT), so the kernel spreads connections and
 *    no accept queue is shared between threads;
 *  - corio_serve: a multishot accept per loop and a fiber per connection,
 *    written as plain sequential code;
 *  - corio_conn: requests parsed in place in the kernel's receive buffers
 *    (peek / peek_more / consume over a multishot receive into a
 *    provided-buffer ring): a request that fits one buffer is never copied;
 *  - HTTP/1.1 keep-alive and pipelining, with the answers to a pipelined
 *    batch gathered and sent in one write;
 *  - deadlines on every wait: a head must arrive within the header timeout
 *    (a slowloris client gets 408), idle keep-alive connections are closed,
 *    sends have a deadline;
 *  - files through corio's file calls: corio_openat relative to a directory
 *    descriptor, corio_statx, corio_read, corio_close (io_uring operations,
 *    or the epoll backend's thread pool), with no way out of the directory;
 *  - a clean stop on SIGINT or SIGTERM: the main thread waits for the
 *    signal, then corio_pool_stop cancels every fiber, which closes its
 *    connection.
 *
 * Routes: GET / (hello), GET /file/<name> (with -d DIR), POST /echo.
 * Limits: 8 KiB of head (431), 1 MiB of body (413); chunked bodies: 501.
 *
 * Multishot accept needs Linux 5.19, multishot receive 6.0; before that
 * (and on the epoll backend, CORIO_BACKEND=epoll) corio takes its plain
 * paths under the same API.
 *
 * Usage: http_server [-a addr] [-p port] [-t threads] [-d dir]
 *   (port 0 picks a free one; "listening on ADDR:PORT" is printed once
 *   connections are accepted)
 *
 * Test with: curl http://127.0.0.1:8080/
 *            curl http://127.0.0.1:8080/file/index.html     (with -d DIR)
 *            curl --data-binary @somefile http://127.0.0.1:8080/echo
 *            wrk -t1 -c64 -d3s http://127.0.0.1:8080/
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s [-a addr] [-p port] [-t threads] [-d dir]\n", prog);
	exit(2);
}

static long number(const char *s, long max, const char *prog)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (!*s || *end || v < 0 || v > max)
		usage(prog);
	return v;
}

int main(int argc, char **argv)
{
	struct http_server_opts o = {.addr = "127.0.0.1", .port = 8080};
	struct http_server *s;
	sigset_t sigs;
	int c, sig, err;

	while ((c = getopt(argc, argv, "a:p:t:d:h")) != -1) {
		switch (c) {
		case 'a':
			o.addr = optarg;
			break;
		case 'p':
			o.port = (int)number(optarg, 65535, argv[0]);
			break;
		case 't':
			o.threads = (unsigned)number(optarg, 1024, argv[0]);
			break;
		case 'd':
			o.dir = optarg;
			break;
		default:
			usage(argv[0]);
		}
	}
	if (optind != argc)
		usage(argv[0]);

	/* Blocked here, so in every pool thread too: only sigwait sees them. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	err = http_server_start(&s, &o);
	if (err) {
		fprintf(stderr, "http_server: cannot start on %s:%d%s%s: %s\n", o.addr, o.port,
			o.dir ? " serving " : "", o.dir ? o.dir : "", strerror(-err));
		return 1;
	}
	/* Exactly this line on stdout: scripts and tests wait for it. */
	printf(strchr(o.addr, ':') ? "listening on [%s]:%d\n" : "listening on %s:%d\n", o.addr,
	       http_server_port(s));
	fflush(stdout);
	fprintf(stderr, "http_server: %u threads%s%s\n", http_server_threads(s),
		o.dir ? ", files from " : "", o.dir ? o.dir : "");

	while (sigwait(&sigs, &sig) != 0)
		;
	fprintf(stderr, "http_server: %s, stopping\n", strsignal(sig));
	http_server_stop(s);
	return 0;
}
