/*
 * kv: a Redis-protocol key-value server on corio.
 *
 * Shows: a pool of loops (one per core, pinned), one SO_REUSEPORT listener
 * and accept loop per loop, a fiber per connection reading the kernel's
 * receive buffers in place (multishot receive into provided buffers), a
 * keyspace sharded by key hash with each shard touched by its own loop only,
 * and pipelines fanned out as one cross-loop call per shard per batch.
 *
 * Usage: kv [-a addr] [-p port] [-t threads] [-d] [-c maxclients] [-m maxmemory]
 *           [--maxmemory-policy noeviction|allkeys-lru]
 *           [--client-output-buffer-limit 'normal HARD SOFT SECONDS']
 *   (defaults 127.0.0.1, 6380, one thread per CPU; the limits as CONFIG SET
 *   takes them, see config.c: -m 100mb, -c 1000)
 * Test with: redis-cli -p 6380 ping
 * Stop with Ctrl-C (SIGINT) or SIGTERM.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server.h"

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s [-a addr] [-p port] [-t threads] [-d] [-c maxclients] [-m maxmemory]\n"
		"          [--maxmemory-policy noeviction|allkeys-lru]\n"
		"          [--client-output-buffer-limit 'normal HARD SOFT SECONDS']\n"
		"  -d  accept connections into direct descriptors (io_uring)\n", argv0);
	exit(2);
}

static long number(const char *s, const char *argv0, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max)
		usage(argv0);
	return v;
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {
		{"maxclients", required_argument, NULL, 'c'},
		{"maxmemory", required_argument, NULL, 'm'},
		{"maxmemory-policy", required_argument, NULL, 'P'},
		{"client-output-buffer-limit", required_argument, NULL, 'O'},
		{NULL, 0, NULL, 0},
	};
	struct kv_server_opts o = {.addr = "127.0.0.1", .port = 6380};
	/* name, value pairs for the settings, NULL-terminated */
	const char *config[2 * 16 + 1] = {NULL};
	size_t nconfig = 0;
	struct kv_server *srv;
	sigset_t set;
	int opt, sig, err;

	while ((opt = getopt_long(argc, argv, "a:p:t:dc:m:h", longs, NULL)) != -1) {
		switch (opt) {
		case 'c':
		case 'm':
		case 'P':
		case 'O':
			if (nconfig + 2 >= sizeof(config) / sizeof(config[0]))
				usage(argv[0]);
			for (size_t i = 0; longs[i].name; i++)
				if (longs[i].val == opt) {
					config[nconfig++] = longs[i].name;
					config[nconfig++] = optarg;
				}
			break;
		case 'd':
			o.direct = true;
			break;
		case 'a':
			o.addr = optarg;
			break;
		case 'p':
			o.port = (int)number(optarg, argv[0], 0, 65535);
			break;
		case 't':
			o.threads = (unsigned)number(optarg, argv[0], 1, 1024);
			break;
		default:
			usage(argv[0]);
		}
	}
	if (optind != argc)
		usage(argv[0]);
	o.config = config;

	/* Signals are taken synchronously by this thread (sigwait); the
	 * pool's threads block them (corio blocks signals in the threads it
	 * starts), so only this thread could see them. A shell
	 * starts background commands with SIGINT ignored, and an ignored
	 * signal is dropped even while sigwait waits for it: take both back
	 * to their default first, so that kill -INT stops us however we were
	 * started. */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	err = kv_server_start(&srv, &o);
	if (err) {
		fprintf(stderr, "kv: cannot serve on %s:%d: %s\n", o.addr, o.port, strerror(-err));
		return 1;
	}
	printf("listening on %s:%d\n", o.addr, kv_server_port(srv));
	fflush(stdout);

	while (sigwait(&set, &sig) != 0)
		;
	fprintf(stderr, "kv: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
	kv_server_stop(srv);
	return 0;
}
