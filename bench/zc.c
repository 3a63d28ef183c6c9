/*
 * Zero-copy send (IORING_OP_SEND_ZC) against a plain send, over TCP on
 * 127.0.0.1, by write size: one loop, a sender fiber writing `total` bytes in
 * writes of `size` through corio_conn_write (zero-copy forced on or off), a
 * receiver fiber draining them.
 *
 *   bench_zc SIZE TOTAL_MB zc|copy
 * prints: RESULT name=send_<size> impl=zc|copy value=<MB/s> unit=MB/s
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "corio.h"

struct run {
	int port;
	size_t size, total;
	bool zc;
	int64_t t0, t1;
	int err;
};

static void *receiver(void *arg)
{
	struct run *r = arg;
	int lfd = corio_listen_tcp("127.0.0.1", 0, 1, 0), fd;
	static char buf[1 << 20];
	size_t got = 0;

	r->port = corio_local_port(lfd);
	fd = corio_accept(lfd, NULL, NULL, 0);
	while (got < r->total) {
		ssize_t n = corio_recv(fd, buf, sizeof(buf), 0);

		if (n <= 0) {
			r->err = n ? (int)n : -1;
			break;
		}
		got += (size_t)n;
	}
	r->t1 = corio_now();
	close(fd);
	close(lfd);
	return NULL;
}

static void *sender(void *arg)
{
	struct run *r = arg;
	struct corio_conn_opts o = {.zc_threshold = r->zc ? 1 : SIZE_MAX};
	char *buf = malloc(r->size);
	corio_conn *c;
	int fd;

	memset(buf, 'x', r->size);
	while (!r->port)
		corio_yield();
	fd = corio_dial_tcp("127.0.0.1", r->port);
	if (fd < 0 || corio_conn_open(&c, fd, &o)) {
		r->err = -1;
		return NULL;
	}
	r->t0 = corio_now();
	for (size_t sent = 0; sent < r->total; sent += r->size)
		if (corio_conn_write(c, buf, r->size) < 0) {
			r->err = -1;
			break;
		}
	corio_conn_close(c);
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	struct run r = {0};
	corio_loop *loop;

	if (argc < 4)
		return fprintf(stderr, "usage: %s SIZE TOTAL_MB zc|copy\n", argv[0]), 2;
	r.size = strtoull(argv[1], NULL, 10);
	r.total = strtoull(argv[2], NULL, 10) << 20;
	r.zc = !strcmp(argv[3], "zc");
	r.total -= r.total % r.size;
	if (corio_loop_create(&loop, NULL))
		return 1;
	corio_spawn(NULL, loop, receiver, &r, &(struct corio_fiber_opts){.detached = true});
	corio_spawn(NULL, loop, sender, &r, &(struct corio_fiber_opts){.detached = true});
	corio_loop_run(loop);
	corio_loop_destroy(loop);
	if (r.err)
		return 1;
	printf("RESULT name=send_%zu impl=%s value=%.0f unit=MB/s\n", r.size, argv[3],
	       (double)r.total / 1048576.0 / ((double)(r.t1 - r.t0) / 1e9));
	return 0;
}
