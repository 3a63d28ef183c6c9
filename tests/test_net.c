/*
 * Socket calls from fibers: socket, accept, connect, recv, send, recvmsg,
 * sendmsg, shutdown, poll. Success paths (TCP, UDP, Unix, descriptor
 * passing, large transfers, many connections) and error paths: bad fd
 * (-EBADF), not a socket, connection refused, peer closed (recv gives 0,
 * send gives -EPIPE and never raises SIGPIPE).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

static int64_t far(void)
{
	return corio_now() + 3600 * CORIO_SEC;
}

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	return a;
}

/* --------------------------------------------- socket, accept, connect */

static int lfd, lport;

static void *acceptor(void *arg)
{
	struct sockaddr_in peer;
	socklen_t len = sizeof(peer);
	int fd;
	char buf[8];

	(void)arg;
	memset(&peer, 0, sizeof(peer));
	fd = corio_accept(lfd, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(len, sizeof(peer));
	assert_int_equal(peer.sin_family, AF_INET);
	assert_int_equal(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(corio_recv(fd, buf, 4, MSG_WAITALL), 4);
	assert_memory_equal(buf, "ping", 4);
	assert_int_equal(corio_send(fd, "pong", 4, 0), 4);
	assert_int_equal(corio_close(fd), 0);
	return NULL;
}

static void *connect_body(void *arg)
{
	struct sockaddr_in a;
	corio_fiber *acc;
	int fd;
	char buf[8];

	(void)arg;
	lfd = t_listen_tcp(&lport);
	acc = t_spawn(acceptor, NULL);
	fd = corio_socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	a = loopback(lport);
	assert_int_equal(corio_connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	/* Connected twice: the kernel says so. */
	assert_int_equal(corio_connect(fd, (struct sockaddr *)&a, sizeof(a)), -EISCONN);
	assert_int_equal(corio_send(fd, "ping", 4, 0), 4);
	assert_int_equal(corio_recv(fd, buf, 4, MSG_WAITALL), 4);
	assert_memory_equal(buf, "pong", 4);
	/* The acceptor closed: end of stream. */
	assert_int_equal(corio_recv(fd, buf, sizeof(buf), 0), 0);
	t_join(acc);
	assert_int_equal(corio_close(fd), 0);

	/* Same with the _until forms and accept without an address. */
	fd = corio_socket_until(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0, far());
	assert_true(fd >= 0);
	assert_int_equal(corio_connect_until(fd, (struct sockaddr *)&a, sizeof(a), far()), 0);
	{
		int s = corio_accept_until(lfd, NULL, NULL, 0, far());

		assert_true(s >= 0);
		assert_int_equal(corio_send_until(s, "x", 1, 0, far()), 1);
		assert_int_equal(corio_recv_until(fd, buf, 1, 0, far()), 1);
		assert_int_equal(buf[0], 'x');
		close(s);
	}
	assert_int_equal(corio_close(fd), 0);
	close(lfd);
	return NULL;
}

static void accept_connect(void **state)
{
	(void)state;
	t_run(connect_body, NULL);
}

static void *socket_errors_body(void *arg)
{
	struct sockaddr_in a;
	int fd, p[2], port, l;
	char buf[4] = {0};

	(void)arg;
	assert_int_equal(corio_socket(12345, SOCK_STREAM, 0), -EAFNOSUPPORT);
	assert_int_equal(corio_socket(AF_INET, 12345, 0), -EINVAL);
	/* Refused: a port with no listener (one we just closed). */
	l = t_listen_tcp(&port);
	close(l);
	a = loopback(port);
	fd = corio_socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(corio_connect(fd, (struct sockaddr *)&a, sizeof(a)), -ECONNREFUSED);
	assert_int_equal(corio_close(fd), 0);
	/* Bad descriptors. */
	assert_int_equal(corio_connect(-1, (struct sockaddr *)&a, sizeof(a)), -EBADF);
	assert_int_equal(corio_accept(-1, NULL, NULL, 0), -EBADF);
	assert_int_equal(corio_recv(-1, buf, 1, 0), -EBADF);
	assert_int_equal(corio_send(-1, buf, 1, 0), -EBADF);
	assert_int_equal(corio_shutdown(-1, SHUT_RDWR), -EBADF);
	assert_int_equal(corio_poll(-1, POLLIN), -EBADF);
	/* Not a socket. */
	t_pipe(p);
	assert_int_equal(corio_connect(p[0], (struct sockaddr *)&a, sizeof(a)), -ENOTSOCK);
	assert_int_equal(corio_accept(p[0], NULL, NULL, 0), -ENOTSOCK);
	assert_int_equal(corio_recv(p[0], buf, 1, 0), -ENOTSOCK);
	assert_int_equal(corio_send(p[1], buf, 1, 0), -ENOTSOCK);
	assert_int_equal(corio_shutdown(p[0], SHUT_RD), -ENOTSOCK);
	close(p[0]);
	close(p[1]);
	/* Not listening / not connected. */
	fd = corio_socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(corio_accept(fd, NULL, NULL, 0), -EINVAL);
	assert_int_equal(corio_shutdown(fd, SHUT_RDWR), -ENOTCONN);
	assert_int_equal(corio_send(fd, "x", 1, 0), -EPIPE);
	assert_int_equal(corio_close(fd), 0);
	return NULL;
}

static void socket_errors(void **state)
{
	(void)state;
	t_run(socket_errors_body, NULL);
}

/* ----------------------------------------------- peer closed, SIGPIPE */

static void *peer_closed_body(void *arg)
{
	struct iovec iov = {"abc", 3};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	int sv[2], c, s;
	char buf[8];

	(void)arg;
	/* Unix stream pair: the peer's close is seen at once. */
	t_socketpair(sv);
	assert_int_equal(corio_send(sv[1], "tail", 4, 0), 4);
	close(sv[1]);
	/* Buffered data first, then end of stream, again and again. */
	assert_int_equal(corio_recv(sv[0], buf, sizeof(buf), 0), 4);
	assert_int_equal(corio_recv(sv[0], buf, sizeof(buf), 0), 0);
	assert_int_equal(corio_recv(sv[0], buf, sizeof(buf), 0), 0);
	assert_int_equal(corio_read(sv[0], buf, sizeof(buf), -1), 0);
	/* Writing to it: -EPIPE, and no SIGPIPE (which would kill us). */
	assert_int_equal(corio_send(sv[0], "x", 1, 0), -EPIPE);
	assert_int_equal(corio_sendmsg(sv[0], &m, 0), -EPIPE);
	assert_int_equal(corio_send_until(sv[0], "x", 1, 0, far()), -EPIPE);
	assert_int_equal(corio_sendmsg_until(sv[0], &m, MSG_DONTWAIT, far()), -EPIPE);
	close(sv[0]);

	/* TCP: our own shutdown(SHUT_WR) makes send fail with -EPIPE at once;
	 * the peer sees end of stream. */
	t_tcp_pair(&c, &s);
	assert_int_equal(corio_shutdown(c, SHUT_WR), 0);
	assert_int_equal(corio_send(c, "x", 1, 0), -EPIPE);
	assert_int_equal(corio_sendmsg(c, &m, 0), -EPIPE);
	assert_int_equal(corio_recv(s, buf, sizeof(buf), 0), 0);
	/* The other direction still works. */
	assert_int_equal(corio_send(s, "ok", 2, 0), 2);
	assert_int_equal(corio_recv(c, buf, 2, MSG_WAITALL), 2);
	assert_int_equal(corio_shutdown_until(s, SHUT_RDWR, far()), 0);
	assert_int_equal(corio_recv(c, buf, sizeof(buf), 0), 0);
	close(c);
	close(s);
	return NULL;
}

static void peer_closed(void **state)
{
	struct sigaction sa;

	(void)state;
	/* The default disposition: a SIGPIPE would end the process. */
	assert_int_equal(sigaction(SIGPIPE, NULL, &sa), 0);
	assert_true(sa.sa_handler == SIG_DFL);
	t_run(peer_closed_body, NULL);
}

/* ------------------------------------------------------ recvmsg, sendmsg */

static void *msg_body(void *arg)
{
	int sv[2], p[2], got_fd = -1;
	char a[3], b[5], c[32];
	struct iovec wv[2] = {{"abc", 3}, {"defgh", 5}};
	struct iovec rv[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct msghdr wm = {.msg_iov = wv, .msg_iovlen = 2};
	struct msghdr rm = {.msg_iov = rv, .msg_iovlen = 2};
	struct cmsghdr *cm;

	(void)arg;
	/* Scatter/gather, and a descriptor passed along (SCM_RIGHTS). */
	t_socketpair(sv);
	t_pipe(p);
	memset(&ctl, 0, sizeof(ctl));
	wm.msg_control = ctl.buf;
	wm.msg_controllen = sizeof(ctl.buf);
	cm = CMSG_FIRSTHDR(&wm);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &p[1], sizeof(int));
	assert_int_equal(corio_sendmsg(sv[0], &wm, 0), 8);
	memset(&ctl, 0, sizeof(ctl));
	rm.msg_control = ctl.buf;
	rm.msg_controllen = sizeof(ctl.buf);
	assert_int_equal(corio_recvmsg(sv[1], &rm, MSG_CMSG_CLOEXEC), 8);
	assert_memory_equal(a, "abc", 3);
	assert_memory_equal(b, "defgh", 5);
	cm = CMSG_FIRSTHDR(&rm);
	assert_non_null(cm);
	assert_int_equal(cm->cmsg_type, SCM_RIGHTS);
	memcpy(&got_fd, CMSG_DATA(cm), sizeof(int));
	assert_true(got_fd >= 0 && got_fd != p[1]);
	/* The passed descriptor is the pipe's write end. */
	assert_int_equal(corio_write(got_fd, "via", 3, -1), 3);
	assert_int_equal(corio_read(p[0], c, sizeof(c), -1), 3);
	assert_memory_equal(c, "via", 3);
	close(got_fd);
	close(p[0]);
	close(p[1]);
	/* The _until forms. */
	rm.msg_control = NULL;
	rm.msg_controllen = 0;
	wm.msg_control = NULL;
	wm.msg_controllen = 0;
	assert_int_equal(corio_sendmsg_until(sv[1], &wm, 0, far()), 8);
	assert_int_equal(corio_recvmsg_until(sv[0], &rm, MSG_WAITALL, far()), 8);
	assert_memory_equal(b, "defgh", 5);
	close(sv[0]);
	close(sv[1]);
	assert_int_equal(corio_recvmsg(-1, &rm, 0), -EBADF);
	assert_int_equal(corio_sendmsg(-1, &wm, 0), -EBADF);
	return NULL;
}

static void recvmsg_sendmsg(void **state)
{
	(void)state;
	t_run(msg_body, NULL);
}

/* UDP: addresses in and out through msg_name. */
static void *udp_body(void *arg)
{
	struct sockaddr_in a = loopback(0), from;
	socklen_t len = sizeof(a);
	int rx, tx;
	char buf[16];
	struct iovec iov = {"datagram", 8};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	struct iovec riov = {buf, sizeof(buf)};
	struct msghdr r = {.msg_iov = &riov, .msg_iovlen = 1};

	(void)arg;
	rx = corio_socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	tx = corio_socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(rx >= 0 && tx >= 0);
	assert_int_equal(bind(rx, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(rx, (struct sockaddr *)&a, &len), 0);
	m.msg_name = &a;
	m.msg_namelen = sizeof(a);
	assert_int_equal(corio_sendmsg(tx, &m, 0), 8);
	memset(&from, 0, sizeof(from));
	r.msg_name = &from;
	r.msg_namelen = sizeof(from);
	assert_int_equal(corio_recvmsg(rx, &r, 0), 8);
	assert_memory_equal(buf, "datagram", 8);
	assert_int_equal(r.msg_namelen, sizeof(from));
	assert_int_equal(from.sin_family, AF_INET);
	assert_int_equal(from.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	/* A truncated datagram says so. */
	riov.iov_len = 4;
	assert_int_equal(corio_sendmsg(tx, &m, 0), 8);
	r.msg_namelen = sizeof(from);
	assert_int_equal(corio_recvmsg(rx, &r, 0), 4);
	assert_true(r.msg_flags & MSG_TRUNC);
	/* connect + send/recv on datagrams. */
	assert_int_equal(corio_connect(tx, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(corio_send(tx, "one", 3, 0), 3);
	assert_int_equal(corio_recv(rx, buf, sizeof(buf), 0), 3);
	assert_memory_equal(buf, "one", 3);
	assert_int_equal(corio_close(rx), 0);
	assert_int_equal(corio_close(tx), 0);
	return NULL;
}

static void udp(void **state)
{
	(void)state;
	t_run(udp_body, NULL);
}

/* ------------------------------------------------------- recv flags */

static void *slow_sender(void *arg)
{
	int fd = (int)(intptr_t)arg;

	assert_int_equal(corio_send(fd, "hel", 3, 0), 3);
	t_turns(3);
	assert_int_equal(corio_send(fd, "lo!", 3, 0), 3);
	return NULL;
}

static void *flags_body(void *arg)
{
	int sv[2];
	char buf[16];
	corio_fiber *f;

	(void)arg;
	t_socketpair(sv);
	assert_int_equal(corio_send(sv[1], "peek", 4, 0), 4);
	assert_int_equal(corio_recv(sv[0], buf, sizeof(buf), MSG_PEEK), 4);
	assert_int_equal(corio_recv(sv[0], buf, sizeof(buf), 0), 4);
	assert_memory_equal(buf, "peek", 4);
	/* MSG_DONTWAIT on an empty socket: -EAGAIN, not a wait. */
	assert_int_equal(corio_recv(sv[0], buf, sizeof(buf), MSG_DONTWAIT), -EAGAIN);
	/* MSG_WAITALL collects both halves. */
	f = t_spawn(slow_sender, (void *)(intptr_t)sv[1]);
	assert_int_equal(corio_recv(sv[0], buf, 6, MSG_WAITALL), 6);
	assert_memory_equal(buf, "hello!", 6);
	t_join(f);
	/* A zero-length recv returns 0 and takes nothing. */
	assert_int_equal(corio_send(sv[1], "z", 1, 0), 1);
	assert_int_equal(corio_recv(sv[0], buf, 0, 0), 0);
	assert_int_equal(corio_recv(sv[0], buf, 1, 0), 1);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

static void recv_flags(void **state)
{
	(void)state;
	t_run(flags_body, NULL);
}

/* ----------------------------------------------------------------- poll */

static void *poll_body(void *arg)
{
	int sv[2], r;
	char c;

	(void)arg;
	t_socketpair(sv);
	assert_int_equal(corio_poll(sv[0], POLLOUT), POLLOUT);
	assert_int_equal(corio_poll_until(sv[0], POLLOUT, far()), POLLOUT);
	assert_int_equal(write(sv[1], "x", 1), 1);
	r = corio_poll(sv[0], POLLIN | POLLOUT);
	assert_true(r & POLLIN);
	assert_int_equal(r & ~(POLLIN | POLLOUT), 0);
	assert_int_equal(read(sv[0], &c, 1), 1);
	close(sv[1]);
	/* Peer gone: readable (end of stream) with a hangup. */
	r = corio_poll(sv[0], POLLIN | POLLRDHUP);
	assert_true(r & POLLIN);
	assert_true(r & (POLLHUP | POLLRDHUP));
	close(sv[0]);
	return NULL;
}

static void poll_calls(void **state)
{
	(void)state;
	t_run(poll_body, NULL);
}

/* ------------------------------------------- end of stream behind data */

/*
 * The peer sends and half-closes at once, and both are queued on the
 * reader's socket before its loop looks (on epoll: one event carrying
 * EPOLLIN and EPOLLRDHUP, and no edge after it). The recv after a short
 * one must see the end of stream instead of waiting for an edge that never
 * comes; a MSG_WAITALL recv must return what it gathered. The reader gets a
 * bounded number of loop turns, none of which waits: everything it needs is
 * in its socket, so a reader still parked after them is a lost wake.
 */
struct eos {
	int flags;
	ssize_t want[4]; /* what each recv returns, up to the end (0) */
	bool done;
};

static int eos_fd;

static void *eos_reader(void *arg)
{
	struct eos *t = arg;
	char buf[256];
	size_t len = t->flags & MSG_WAITALL ? 200 : 64;

	for (int i = 0; i < 4; i++) {
		assert_int_equal(corio_recv(eos_fd, buf, len, t->flags), t->want[i]);
		if (!t->want[i])
			break;
	}
	t->done = true;
	return NULL;
}

static void *eos_body(void *arg)
{
	struct eos *t = arg;
	struct pollfd pfd = {.events = POLLRDHUP};
	char data[100];
	corio_fiber *r;
	int c, turns = 0;

	t_tcp_pair(&c, &eos_fd);
	r = t_spawn(eos_reader, t);
	t_turns(2); /* the reader waits in its first recv (nothing sent) */
	assert_false(t->done);
	t_fill(data, sizeof(data), 3);
	assert_int_equal(send(c, data, sizeof(data), 0), (ssize_t)sizeof(data));
	assert_int_equal(shutdown(c, SHUT_WR), 0);
	/* Blocks this thread, so the loop cannot look at the socket before
	 * the FIN is queued behind the data. */
	pfd.fd = eos_fd;
	assert_int_equal(poll(&pfd, 1, -1), 1);
	while (!t->done && turns++ < 1000)
		assert_int_equal(corio_yield(), 0);
	assert_true(t->done);
	t_join(r);
	close(c);
	close(eos_fd);
	return NULL;
}

static void eof_after_short_recv(void **state)
{
	struct eos plain = {.flags = 0, .want = {64, 36, 0}};
	struct eos waitall = {.flags = MSG_WAITALL, .want = {100, 0}};

	(void)state;
	t_run(eos_body, &plain);
	t_run(eos_body, &waitall);
}

/* ----------------------------------------------- volume and fan-in */

#define BIG (8u << 20)

static void *big_sender(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char *data = malloc(BIG);
	size_t off = 0;

	assert_non_null(data);
	t_fill(data, BIG, 5);
	while (off < BIG) {
		size_t chunk = BIG - off < 300000 ? BIG - off : 300000;
		ssize_t n = corio_send(fd, data + off, chunk, 0);

		assert_true(n > 0);
		off += (size_t)n;
	}
	assert_int_equal(corio_shutdown(fd, SHUT_WR), 0);
	free(data);
	return NULL;
}

static void *big_body(void *arg)
{
	int c, s;
	char *got = malloc(BIG + 1);
	size_t off = 0;
	ssize_t n;
	corio_fiber *f;

	(void)arg;
	assert_non_null(got);
	t_tcp_pair(&c, &s);
	f = t_spawn(big_sender, (void *)(intptr_t)c);
	while ((n = corio_recv(s, got + off, BIG + 1 - off, 0)) > 0)
		off += (size_t)n;
	assert_int_equal(n, 0);
	assert_int_equal(off, BIG);
	assert_true(t_check(got, BIG, 5));
	t_join(f);
	close(c);
	close(s);
	free(got);
	return NULL;
}

static void large_transfer(void **state)
{
	(void)state;
	t_run(big_body, NULL);
}

#define NCLIENTS 64

static void *echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[512];
	ssize_t n;

	while ((n = corio_recv(fd, buf, sizeof(buf), 0)) > 0) {
		ssize_t off = 0;

		while (off < n) {
			ssize_t w = corio_send(fd, buf + off, (size_t)(n - off), 0);

			assert_true(w > 0);
			off += w;
		}
	}
	assert_int_equal(n, 0);
	assert_int_equal(corio_close(fd), 0);
	return NULL;
}

static void *echo_server(void *arg)
{
	struct corio_fiber_opts o = {.detached = true, .name = "echo-conn"};

	(void)arg;
	for (int i = 0; i < NCLIENTS; i++) {
		int fd = corio_accept(lfd, NULL, NULL, SOCK_CLOEXEC);

		assert_true(fd >= 0);
		assert_int_equal(corio_spawn(NULL, NULL, echo_conn, (void *)(intptr_t)fd, &o), 0);
	}
	return NULL;
}

static void *echo_client(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg;
	struct sockaddr_in a = loopback(lport);
	char out[1000], in[1000];
	size_t got = 0;
	int fd = corio_socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(corio_connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	t_fill(out, sizeof(out), id);
	assert_int_equal(corio_send(fd, out, sizeof(out), 0), (ssize_t)sizeof(out));
	while (got < sizeof(in)) {
		ssize_t n = corio_recv(fd, in + got, sizeof(in) - got, 0);

		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_true(t_check(in, sizeof(in), id));
	assert_int_equal(corio_close(fd), 0);
	return NULL;
}

static void *echo_body(void *arg)
{
	corio_fiber *srv, *cl[NCLIENTS];

	(void)arg;
	lfd = t_listen_tcp(&lport);
	srv = t_spawn(echo_server, NULL);
	for (int i = 0; i < NCLIENTS; i++)
		cl[i] = t_spawn(echo_client, (void *)(uintptr_t)i);
	for (int i = 0; i < NCLIENTS; i++)
		t_join(cl[i]);
	t_join(srv);
	close(lfd);
	return NULL;
}

static void many_connections(void **state)
{
	(void)state;
	t_run(echo_body, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accept_connect),
		cmocka_unit_test(socket_errors),
		cmocka_unit_test(peer_closed),
		cmocka_unit_test(recvmsg_sendmsg),
		cmocka_unit_test(udp),
		cmocka_unit_test(recv_flags),
		cmocka_unit_test(poll_calls),
		cmocka_unit_test(eof_after_short_recv),
		cmocka_unit_test(large_transfer),
		cmocka_unit_test(many_connections),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
