/*
 * A program built outside corio's tree against an installed corio (see
 * tests/consumer.sh): an echo round trip over loopback, one loop, a server
 * fiber and a client fiber. Prints one line and exits 0 when the bytes came
 * back; anything else is a failure of the installed headers or libraries.
 */
#include <stdio.h>
#include <string.h>

#include <corio.h>

static void echo(int fd, void *arg)
{
	corio_conn *c;
	const void *p;
	ssize_t n;

	(void)arg;
	if (corio_conn_open(&c, fd, NULL)) {
		corio_close(fd);
		return;
	}
	while ((n = corio_conn_peek(c, &p)) > 0 && corio_conn_write(c, p, (size_t)n) == n)
		corio_conn_consume(c, (size_t)n);
	corio_conn_close(c);
}

static void *serve(void *arg)
{
	return (void *)(intptr_t)corio_serve((int)(intptr_t)arg, echo, NULL, NULL);
}

static void *client(void *arg)
{
	static const char msg[] = "hello from outside the tree";
	char buf[sizeof(msg)];
	int lfd = corio_listen_tcp("127.0.0.1", 0, 0, 0), fd, ok = 0;
	int64_t deadline = corio_now() + 10 * CORIO_SEC;
	corio_fiber *srv;
	size_t got = 0;

	(void)arg;
	if (lfd < 0 || corio_spawn(&srv, NULL, serve, (void *)(intptr_t)lfd, NULL))
		return (void *)1;
	fd = corio_dial_tcp_until("127.0.0.1", corio_local_port(lfd), deadline);
	if (fd >= 0 && corio_send_all_until(fd, msg, sizeof(msg), deadline) == (ssize_t)sizeof(msg)) {
		while (got < sizeof(msg)) {
			ssize_t n = corio_recv_until(fd, buf + got, sizeof(buf) - got, 0, deadline);

			if (n <= 0)
				break;
			got += (size_t)n;
		}
		ok = got == sizeof(msg) && !memcmp(buf, msg, sizeof(msg));
	}
	if (fd >= 0)
		corio_close(fd);
	corio_cancel(srv);
	corio_join(srv, NULL);
	corio_close(lfd);
	printf("consumer: %s, echo %s (%s)\n", corio_version(), ok ? "ok" : "FAILED",
	       corio_loop_backend(corio_loop_current()));
	return (void *)(intptr_t)!ok;
}

int main(void)
{
	int res = corio_main(client, NULL);

	if (res < 0)
		fprintf(stderr, "consumer: %s\n", strerror(-res));
	return res != 0;
}
