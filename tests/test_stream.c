/*
 * Description: readiness I/O on pipes, socket pairs and TCP over
 * 127.0.0.1, on both backends: partial reads and writes, many fibers on
 * one fd, end of stream, resets, bad fds, cancellation and deadlines while
 * waiting, many fds, fd numbers reused after a close (with corio_close and
 * with close(2)), a close while an op waits, poll results, MSG_WAITALL,
 * MSG_DONTWAIT, eventfds, ttys.
 *
 * Every wait here is ended by something the test does (a write, a close,
 * a cancellation) or by a deadline; nothing sleeps to let time pass.
 *
 * On epoll the tests run with the registration re-check off
 * (CORIO_EPOLL_VERIFY_MS=0), where a lost edge-triggered wake-up hangs (and
 * fails at a deadline) instead of costing 50 ms. Fds that waited are
 * therefore closed with corio_close when their number may be reused,
 * except where close(2) is what a test is about (fd_reuse_plain_close,
 * which turns the re-check on for itself).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <poll.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/backends.h" /* corio__epoll_set_pool_hook */
#include "util.h"

static int64_t far(void)
{
	return corio_now() + 3600 * CORIO_SEC;
}

/* For waits that a bug would make endless: fail instead of hanging. */
static int64_t soon(void)
{
	return corio_now() + 10 * CORIO_SEC;
}

static void fill(char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)((i * 31 + seed) & 0xff);
}

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	return a;
}

static bool on_epoll(void)
{
	return !strcmp(corio_loop_backend(corio_loop_current()), "epoll");
}

/* Bytes waiting to be read on @fd (without reading them). */
static int readable(int fd)
{
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);

	if (n < 0 && errno == ENOTSOCK) {
		struct pollfd p = {.fd = fd, .events = POLLIN};

		return poll(&p, 1, 0) == 1 ? 1 : 0;
	}
	return n < 0 ? 0 : (int)n;
}

/* ------------------------------------------------ partial reads, writes */

#define PIPE_BYTES 100000

struct xfer {
	int fd;
	size_t len;
	size_t chunk;
	char *buf;
};

static void *writer(void *arg)
{
	struct xfer *x = arg;
	size_t off = 0;

	while (off < x->len) {
		size_t n = x->len - off < x->chunk ? x->len - off : x->chunk;
		ssize_t r = corio_write_until(x->fd, x->buf + off, n, -1, soon());

		assert_true(r > 0);
		off += (size_t)r;
	}
	return NULL;
}

static void *reader(void *arg)
{
	struct xfer *x = arg;
	size_t off = 0;

	while (off < x->len) {
		size_t n = x->len - off < x->chunk ? x->len - off : x->chunk;
		ssize_t r = corio_read_until(x->fd, x->buf + off, n, -1, soon());

		assert_true(r > 0);
		off += (size_t)r;
	}
	return NULL;
}

/* A small pipe: the writer fills it and waits, the reader takes odd-sized
 * pieces; every byte arrives once, in order. */
static void *pipe_partial_body(void *arg)
{
	char *src = malloc(PIPE_BYTES), *dst = malloc(PIPE_BYTES);
	struct xfer w = {.len = PIPE_BYTES, .chunk = 30000, .buf = src};
	struct xfer r = {.len = PIPE_BYTES, .chunk = 777, .buf = dst};
	corio_fiber *fw, *fr;
	int p[2];

	(void)arg;
	assert_non_null(src);
	assert_non_null(dst);
	fill(src, PIPE_BYTES, 7);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0); /* blocking, on purpose */
	assert_true(fcntl(p[1], F_SETPIPE_SZ, 4096) >= 4096);
	w.fd = p[1];
	r.fd = p[0];
	fr = t_spawn(reader, &r);
	fw = t_spawn(writer, &w);
	t_join(fw);
	t_join(fr);
	assert_memory_equal(src, dst, PIPE_BYTES);
	/* The pipe stayed blocking: corio does not change its flags. */
	assert_false(fcntl(p[0], F_GETFL) & O_NONBLOCK);
	assert_false(fcntl(p[1], F_GETFL) & O_NONBLOCK);
	close(p[0]);
	close(p[1]);
	free(src);
	free(dst);
	return NULL;
}

static void pipe_partial(void **state)
{
	(void)state;
	t_run(pipe_partial_body, NULL);
}

/* Sends bigger than the socket buffer come back short; the rest follows. */
static void *socket_partial_body(void *arg)
{
	char *src = malloc(PIPE_BYTES), *dst = malloc(PIPE_BYTES);
	int sv[2], small = 4096;
	size_t off = 0;
	corio_fiber *fr;
	struct xfer r = {.len = PIPE_BYTES, .chunk = 1000, .buf = dst};
	bool short_send = false;

	(void)arg;
	assert_non_null(src);
	assert_non_null(dst);
	fill(src, PIPE_BYTES, 3);
	t_socketpair(sv);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	r.fd = sv[1];
	fr = t_spawn(reader, &r);
	while (off < PIPE_BYTES) {
		ssize_t n = corio_send(sv[0], src + off, PIPE_BYTES - off, 0);

		assert_true(n > 0);
		if ((size_t)n < PIPE_BYTES - off)
			short_send = true;
		off += (size_t)n;
	}
	assert_true(short_send);
	t_join(fr);
	assert_memory_equal(src, dst, PIPE_BYTES);
	close(sv[0]);
	close(sv[1]);
	free(src);
	free(dst);
	return NULL;
}

static void socket_partial(void **state)
{
	(void)state;
	t_run(socket_partial_body, NULL);
}

/* ------------------------------------------- many fibers on one fd */

#define STORM 64

static int storm_fd;
static unsigned char storm_got[STORM];

static void *storm_reader(void *arg)
{
	unsigned char c;

	assert_int_equal(corio_recv_until(storm_fd, &c, 1, 0, soon()), 1);
	storm_got[(intptr_t)arg] = c;
	return NULL;
}

/* 64 fibers wait for one byte each on the same socket; the bytes come in
 * dribs and drabs. Each fiber gets exactly one, none is lost or doubled. */
static void *storm_body(void *arg)
{
	corio_fiber *f[STORM];
	unsigned char out[STORM], seen[STORM] = {0};
	int sv[2];

	(void)arg;
	t_socketpair(sv);
	storm_fd = sv[0];
	for (int i = 0; i < STORM; i++)
		f[i] = t_spawn(storm_reader, (void *)(intptr_t)i);
	t_turns(2); /* all parked */
	for (int i = 0; i < STORM; i++)
		out[i] = (unsigned char)i;
	for (int i = 0; i < STORM; i += 7) {
		int n = STORM - i < 7 ? STORM - i : 7;

		assert_int_equal(corio_send(sv[1], out + i, (size_t)n, 0), n);
		t_turns(1);
	}
	for (int i = 0; i < STORM; i++)
		t_join(f[i]);
	for (int i = 0; i < STORM; i++) {
		assert_true(storm_got[i] < STORM);
		assert_int_equal(seen[storm_got[i]], 0);
		seen[storm_got[i]] = 1;
	}
	assert_int_equal(readable(sv[0]), 0);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

static void storm(void **state)
{
	(void)state;
	t_run(storm_body, NULL);
}

/* ---------------------------------------------------------------- TCP */

#define CLIENTS 16
#define TCP_BYTES 50000

static int tcp_lfd, tcp_port;

static void *echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[1500];
	ssize_t n;

	while ((n = corio_recv_until(fd, buf, sizeof(buf), 0, soon())) > 0) {
		for (ssize_t off = 0; off < n;) {
			ssize_t w = corio_send(fd, buf + off, (size_t)(n - off), 0);

			assert_true(w > 0);
			off += w;
		}
	}
	assert_int_equal(n, 0);
	assert_int_equal(corio_close(fd), 0);
	return NULL;
}

static void *acceptor(void *arg)
{
	corio_fiber *conns[CLIENTS];

	(void)arg;
	for (int i = 0; i < CLIENTS; i++) {
		struct sockaddr_in peer;
		socklen_t len = sizeof(peer);
		int fd = corio_accept(tcp_lfd, (struct sockaddr *)&peer, &len, SOCK_CLOEXEC);

		assert_true(fd >= 0);
		assert_int_equal(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
		conns[i] = t_spawn(echo_conn, (void *)(intptr_t)fd);
	}
	for (int i = 0; i < CLIENTS; i++)
		t_join(conns[i]);
	return NULL;
}

static void *client(void *arg)
{
	struct sockaddr_in a = loopback(tcp_port);
	char *out = malloc(TCP_BYTES), *in = malloc(TCP_BYTES);
	struct xfer r = {.len = TCP_BYTES, .chunk = 4000, .buf = in};
	corio_fiber *fr;
	size_t off = 0;
	/* Made blocking with socket(2): connect must not block the loop. */
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_non_null(out);
	assert_non_null(in);
	fill(out, TCP_BYTES, (unsigned)(intptr_t)arg);
	assert_int_equal(corio_connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	/* The socket's flags are as they were. */
	assert_false(fcntl(fd, F_GETFL) & O_NONBLOCK);
	/* Connected now, and the kernel knows it. */
	assert_int_equal(corio_connect(fd, (struct sockaddr *)&a, sizeof(a)), -EISCONN);
	r.fd = fd;
	fr = t_spawn(reader, &r);
	while (off < TCP_BYTES) {
		size_t n = TCP_BYTES - off < 3333 ? TCP_BYTES - off : 3333;
		ssize_t w = corio_send(fd, out + off, n, 0);

		assert_true(w > 0);
		off += (size_t)w;
	}
	t_join(fr);
	assert_memory_equal(out, in, TCP_BYTES);
	assert_int_equal(corio_shutdown(fd, SHUT_WR), 0);
	assert_int_equal(corio_recv(fd, in, 1, 0), 0); /* the server closed */
	assert_int_equal(corio_close(fd), 0);
	free(out);
	free(in);
	return NULL;
}

static void *tcp_body(void *arg)
{
	corio_fiber *acc, *c[CLIENTS];

	(void)arg;
	tcp_lfd = t_listen_tcp(&tcp_port); /* a blocking listener */
	acc = t_spawn(acceptor, NULL);
	for (int i = 0; i < CLIENTS; i++)
		c[i] = t_spawn(client, (void *)(intptr_t)i);
	for (int i = 0; i < CLIENTS; i++)
		t_join(c[i]);
	t_join(acc);
	close(tcp_lfd);
	return NULL;
}

static void tcp_echo(void **state)
{
	(void)state;
	t_run(tcp_body, NULL);
}

static void *refused_body(void *arg)
{
	int port, l = t_listen_tcp(&port), port2, l2 = t_listen_tcp(&port2);
	struct sockaddr_in a = loopback(port), a2 = loopback(port2);
	int fd, s;

	(void)arg;
	close(l); /* nobody listens there now */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(corio_connect(fd, (struct sockaddr *)&a, sizeof(a)), -ECONNREFUSED);
	assert_false(fcntl(fd, F_GETFL) & O_NONBLOCK);
	/* The same socket may try again, elsewhere (on epoll it is still
	 * registered from the first try: EPOLL_CTL_ADD says EEXIST). */
	assert_int_equal(corio_connect(fd, (struct sockaddr *)&a2, sizeof(a2)), 0);
	s = corio_accept(l2, NULL, NULL, SOCK_CLOEXEC);
	assert_true(s >= 0);
	assert_int_equal(corio_send(fd, "r", 1, 0), 1);
	assert_int_equal(corio_recv_until(s, &a, 1, 0, soon()), 1);
	assert_int_equal(corio_close(s), 0);
	assert_int_equal(corio_close(fd), 0);
	close(l2);
	return NULL;
}

static void connect_refused(void **state)
{
	(void)state;
	t_run(refused_body, NULL);
}

/* --------------------------------------------- end of stream, resets */

static void *recv_one(void *arg)
{
	char c;

	return (void *)(intptr_t)corio_recv_until((int)(intptr_t)arg, &c, 1, 0, soon());
}

static void *read_one(void *arg)
{
	char c;

	return (void *)(intptr_t)corio_read_until((int)(intptr_t)arg, &c, 1, -1, soon());
}

static void *eof_body(void *arg)
{
	corio_fiber *f;
	int sv[2], p[2];

	(void)arg;
	/* A waiting recv sees the peer's close as end of stream. */
	t_socketpair(sv);
	f = t_spawn(recv_one, (void *)(intptr_t)sv[0]);
	t_turns(2);
	close(sv[1]);
	assert_int_equal((intptr_t)t_join(f), 0);
	assert_int_equal(corio_recv(sv[0], &p, 1, 0), 0);
	assert_int_equal(corio_close(sv[0]), 0);
	/* Same for a read on a pipe whose writer goes away. */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	f = t_spawn(read_one, (void *)(intptr_t)p[0]);
	t_turns(2);
	close(p[1]);
	assert_int_equal((intptr_t)t_join(f), 0);
	close(p[0]);
	return NULL;
}

static void peer_close_eof(void **state)
{
	(void)state;
	t_run(eof_body, NULL);
}

static void *reset_body(void *arg)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	corio_fiber *f;
	int c, s, p[2];

	(void)arg;
	/* The peer aborts (RST): the waiting recv gets -ECONNRESET, and a
	 * send after that -EPIPE, without SIGPIPE (MSG_NOSIGNAL). */
	t_tcp_pair(&c, &s);
	f = t_spawn(recv_one, (void *)(intptr_t)c);
	t_turns(2);
	assert_int_equal(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(s);
	assert_int_equal((intptr_t)t_join(f), -ECONNRESET);
	assert_int_equal(corio_send(c, "x", 1, 0), -EPIPE);
	assert_int_equal(corio_close(c), 0);
	/* A pipe without a reader: -EPIPE (SIGPIPE ignored here: unlike
	 * send, write has no way to ask for none, on either backend). */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	close(p[0]);
	assert_int_equal(corio_write(p[1], "x", 1, -1), -EPIPE);
	close(p[1]);
	return NULL;
}

/*
 * After a short recv on a TCP socket the epoll backend waits for the next
 * readiness edge instead of trying again. Data written right after it,
 * with no loop turn in between, must still be read, and so must the end of
 * stream; datagrams queued together must each be received. A lost edge
 * hangs here.
 */
static void *recv_64(void *arg)
{
	char b[64];

	return (void *)(intptr_t)corio_recv((int)(intptr_t)arg, b, sizeof(b), 0);
}

static void after_short_reads(int r, int w)
{
	char buf[64];
	corio_fiber *f;

	/* A waiting recv (the fd is now watched) that comes back short. */
	f = t_spawn(recv_64, (void *)(intptr_t)r);
	t_turns(2);
	assert_int_equal(send(w, "0123456789", 10, 0), 10);
	assert_int_equal((intptr_t)t_join(f), 10);
	/* More, sent before the next recv starts. */
	assert_int_equal(send(w, "abcde", 5, 0), 5);
	assert_int_equal(corio_recv(r, buf, sizeof(buf), 0), 5);
	assert_memory_equal(buf, "abcde", 5);
	assert_int_equal(send(w, "xyz", 3, 0), 3);
	assert_int_equal(corio_recv(r, buf, sizeof(buf), 0), 3);
	assert_memory_equal(buf, "xyz", 3);
	assert_int_equal(shutdown(w, SHUT_WR), 0);
	assert_int_equal(corio_recv(r, buf, sizeof(buf), 0), 0);
	assert_int_equal(corio_recv(r, buf, sizeof(buf), 0), 0);
}

static void *short_body(void *arg)
{
	char buf[64];
	int c, s, u[2];
	corio_fiber *f;

	(void)arg;
	t_tcp_pair(&c, &s);
	after_short_reads(c, s);
	close(s);
	assert_int_equal(corio_close(c), 0);
	t_socketpair(u);
	after_short_reads(u[0], u[1]);
	close(u[1]);
	assert_int_equal(corio_close(u[0]), 0);
	/* Datagrams: a short one says nothing of the next. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, u), 0);
	f = t_spawn(recv_64, (void *)(intptr_t)u[0]);
	t_turns(2);
	assert_int_equal(send(u[1], "a", 1, 0), 1);
	assert_int_equal((intptr_t)t_join(f), 1);
	assert_int_equal(send(u[1], "bb", 2, 0), 2);
	assert_int_equal(send(u[1], "ccc", 3, 0), 3);
	assert_int_equal(corio_recv(u[0], buf, sizeof(buf), 0), 2);
	assert_int_equal(corio_recv(u[0], buf, sizeof(buf), 0), 3);
	close(u[1]);
	assert_int_equal(corio_close(u[0]), 0);
	return NULL;
}

static void short_reads(void **state)
{
	(void)state;
	t_run(short_body, NULL);
}

static void reset_and_epipe(void **state)
{
	struct sigaction ign = {.sa_handler = SIG_IGN}, old;

	(void)state;
	sigaction(SIGPIPE, &ign, &old);
	t_run(reset_body, NULL);
	/* Valgrind holds back a signal the kernel raised while ignored and
	 * delivers it later, by the disposition of then: keep ignoring. */
	if (!t_under_valgrind())
		sigaction(SIGPIPE, &old, NULL);
}

/* ----------------------------------------------------------- bad fds */

static void *badfd_body(void *arg)
{
	struct sockaddr_in a = loopback(1);
	struct iovec iov = {NULL, 0};
	char buf[4] = {0};
	int closed;

	(void)arg;
	/* An fd number that is not open (and one that is negative). */
	closed = dup(0);
	assert_true(closed >= 0);
	close(closed);
	for (int i = 0; i < 2; i++) {
		int fd = i ? closed : -1;

		assert_int_equal(corio_recv(fd, buf, 1, 0), -EBADF);
		assert_int_equal(corio_send(fd, buf, 1, 0), -EBADF);
		assert_int_equal(corio_read(fd, buf, 1, -1), -EBADF);
		assert_int_equal(corio_read(fd, buf, 1, 0), -EBADF);
		assert_int_equal(corio_write(fd, buf, 1, -1), -EBADF);
		assert_int_equal(corio_readv(fd, &iov, 1, -1), -EBADF);
		assert_int_equal(corio_poll(fd, POLLIN), -EBADF);
		assert_int_equal(corio_accept(fd, NULL, NULL, 0), -EBADF);
		assert_int_equal(corio_connect(fd, (struct sockaddr *)&a, sizeof(a)), -EBADF);
		assert_int_equal(corio_shutdown(fd, SHUT_RDWR), -EBADF);
		assert_int_equal(corio_fsync(fd), -EBADF);
		assert_int_equal(corio_close(fd), -EBADF);
	}
	return NULL;
}

static void bad_fd(void **state)
{
	(void)state;
	t_run(badfd_body, NULL);
}

/* ------------------------------------------ cancellation, deadlines */

static void *recv_until(void *arg)
{
	int *a = arg;
	char c;

	return (void *)(intptr_t)corio_recv_until(a[0], &c, 1, 0, a[1] ? far() : 0);
}

static void *recv_then_nop(void *arg)
{
	char c;

	assert_int_equal(corio_recv((int)(intptr_t)arg, &c, 1, 0), -ECANCELED);
	return (void *)(intptr_t)corio_nop();
}

static void *accept_wait(void *arg)
{
	return (void *)(intptr_t)corio_accept((int)(intptr_t)arg, NULL, NULL, 0);
}

static void *poll_wait(void *arg)
{
	return (void *)(intptr_t)corio_poll((int)(intptr_t)arg, POLLIN);
}

struct async_res {
	int res;
	int calls;
	corio_event done;
};

static void async_cb(corio_loop *loop, int res, unsigned flags, void *user)
{
	struct async_res *r = user;

	(void)loop;
	(void)flags;
	r->res = res;
	r->calls++;
	corio_event_set(&r->done);
}

/* A waiting op is cancelled: -ECANCELED, and data sent afterwards is still
 * there for the next reader (the cancelled op did not take it). */
static void *cancel_body(void *arg)
{
	corio_fiber *f;
	int sv[2], l, port, args[2];
	struct async_res ar = {.res = 0};
	char c;
	corio_req id;

	(void)arg;
	corio_event_init(&ar.done);
	t_socketpair(sv);
	for (int dl = 0; dl < 2; dl++) {
		args[0] = sv[0];
		args[1] = dl;
		f = t_spawn(recv_until, args);
		t_turns(2);
		assert_int_equal(corio_cancel(f), 0);
		assert_int_equal((intptr_t)t_join(f), -ECANCELED);
	}
	/* Asked twice: the call stays suspended until its completion, so
	 * both requests are for it, and the call after it is not hit. */
	f = t_spawn(recv_then_nop, (void *)(intptr_t)sv[0]);
	t_turns(2);
	assert_int_equal(corio_cancel(f), 0);
	assert_int_equal(corio_cancel(f), 0);
	assert_int_equal((intptr_t)t_join(f), 0);
	assert_int_equal(corio_send(sv[1], "k", 1, 0), 1);
	t_turns(2);
	assert_int_equal(readable(sv[0]), 1);
	assert_int_equal(corio_recv(sv[0], &c, 1, 0), 1);

	/* poll and accept too. */
	f = t_spawn(poll_wait, (void *)(intptr_t)sv[0]);
	t_turns(2);
	assert_int_equal(corio_cancel(f), 0);
	assert_int_equal((intptr_t)t_join(f), -ECANCELED);
	l = t_listen_tcp(&port);
	f = t_spawn(accept_wait, (void *)(intptr_t)l);
	t_turns(2);
	assert_int_equal(corio_cancel(f), 0);
	assert_int_equal((intptr_t)t_join(f), -ECANCELED);
	close(l);

	/* The completion API: the callback comes from the loop, not from
	 * inside corio_async_cancel, and only once. */
	id = corio_async_recv(corio_loop_current(), sv[0], &c, 1, 0, async_cb, &ar);
	assert_true(id > 0);
	t_turns(2);
	assert_int_equal(ar.calls, 0);
	assert_int_equal(corio_async_cancel(corio_loop_current(), id), 0);
	assert_int_equal(ar.calls, 0);
	t_turns(2);
	assert_int_equal(ar.calls, 1);
	assert_int_equal(ar.res, -ECANCELED);
	assert_int_equal(corio_async_cancel(corio_loop_current(), id), -ENOENT);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

static void cancel_waiting(void **state)
{
	(void)state;
	t_run(cancel_body, NULL);
}

static void *deadline_body(void *arg)
{
	int sv[2], l, port;
	char c;
	struct async_res ar = {.res = 0};
	corio_req id;

	(void)arg;
	corio_event_init(&ar.done);
	t_socketpair(sv);
	assert_int_equal(corio_recv_until(sv[0], &c, 1, 0, corio_now() + 2 * CORIO_MSEC),
			 -ETIMEDOUT);
	assert_int_equal(corio_read_until(sv[0], &c, 1, -1, corio_now() + CORIO_MSEC),
			 -ETIMEDOUT);
	assert_int_equal(corio_poll_until(sv[0], POLLIN, corio_now() + CORIO_MSEC), -ETIMEDOUT);
	l = t_listen_tcp(&port);
	assert_int_equal(corio_accept_until(l, NULL, NULL, 0, corio_now() + CORIO_MSEC),
			 -ETIMEDOUT);
	close(l);
	/* A deadline in the past: not even started. */
	assert_int_equal(corio_recv_until(sv[0], &c, 1, 0, corio_now() - 1), -ETIMEDOUT);
	/* The completion API. */
	id = corio_async_recv(corio_loop_current(), sv[0], &c, 1, 0, async_cb, &ar);
	assert_true(id > 0);
	assert_int_equal(corio_async_deadline(corio_loop_current(), id,
					      corio_now() + CORIO_MSEC), 0);
	assert_int_equal(corio_event_wait(&ar.done), 0);
	assert_int_equal(ar.calls, 1);
	assert_int_equal(ar.res, -ETIMEDOUT);
	/* Nothing was consumed by the timed-out ops. */
	assert_int_equal(corio_send(sv[1], "z", 1, 0), 1);
	assert_int_equal(corio_recv(sv[0], &c, 1, 0), 1);
	assert_int_equal(c, 'z');
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

static void deadlines(void **state)
{
	(void)state;
	t_run(deadline_body, NULL);
}

/* ------------------------------------------------------------ many fds */

#define NPAIRS 400

static void *many_body(void *arg)
{
	static int sv[NPAIRS][2];
	corio_fiber *f[NPAIRS];

	(void)arg;
	for (int i = 0; i < NPAIRS; i++) {
		t_socketpair(sv[i]);
		f[i] = t_spawn(recv_one, (void *)(intptr_t)sv[i][0]);
	}
	t_turns(2);
	for (int i = NPAIRS - 1; i >= 0; i--)
		assert_int_equal(corio_send(sv[i][1], "m", 1, 0), 1);
	for (int i = 0; i < NPAIRS; i++) {
		assert_int_equal((intptr_t)t_join(f[i]), 1);
		close(sv[i][0]);
		close(sv[i][1]);
	}
	return NULL;
}

static void many_fds(void **state)
{
	struct rlimit rl;

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_cur < 2 * NPAIRS + 64) {
		rl.rlim_cur = rl.rlim_max < 2 * NPAIRS + 64 ? rl.rlim_max : 2 * NPAIRS + 64;
		setrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur < 2 * NPAIRS + 64)
			skip();
	}
	t_run(many_body, NULL);
}

/* ------------------------------------------------------ fd reuse */

struct reuse {
	int fd;
	int res;
	char c;
};

static void *reuse_reader(void *arg)
{
	struct reuse *r = arg;

	r->res = (int)corio_read_until(r->fd, &r->c, 1, -1, soon());
	return NULL;
}

/* Wait on a pipe, close it, get the same numbers again, wait again: the
 * second wait must see the new pipe's data. With corio_close, and with
 * close(2) behind corio's back. */
static void *reuse_body(void *arg)
{
	bool with_corio = arg != NULL;
	struct reuse r;
	corio_fiber *f;
	int p[2], old0;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	old0 = p[0];
	for (int round = 0; round < 3; round++) {
		r.fd = p[0];
		f = t_spawn(reuse_reader, &r);
		t_turns(2); /* it waits */
		assert_int_equal(write(p[1], &"abc"[round], 1), 1);
		t_join(f);
		assert_int_equal(r.res, 1);
		assert_int_equal(r.c, "abc"[round]);
		if (with_corio) {
			assert_int_equal(corio_close(p[0]), 0);
			assert_int_equal(corio_close(p[1]), 0);
		} else {
			close(p[0]);
			close(p[1]);
		}
		/* The other kind of fd on the same number in the middle round. */
		if (round == 1) {
			int sv[2];

			t_socketpair(sv);
			assert_int_equal(sv[0], old0);
			p[0] = sv[0];
			p[1] = sv[1];
		} else {
			assert_int_equal(pipe2(p, O_CLOEXEC), 0);
			assert_int_equal(p[0], old0);
		}
	}
	close(p[0]);
	close(p[1]);
	return NULL;
}

static void fd_reuse_corio_close(void **state)
{
	(void)state;
	t_run(reuse_body, (void *)1);
}

/*
 * The registration re-check rescues (on epoll): each is counted, and the
 * first one logged, with what it was. These tests turn the re-check on for
 * themselves (after 1 ms) and capture the log: a rescue logged anywhere
 * else fails the test (tests/CMakeLists.txt).
 */
struct rescue {
	void *(*body)(void *);
	struct corio_loop_stats st;
	bool epoll;
	char log[8192];
};

static void *rescue_body(void *arg)
{
	struct rescue *r = arg;

	r->body(NULL);
	r->epoll = on_epoll();
	corio_loop_stats(corio_loop_current(), &r->st, sizeof(r->st));
	return NULL;
}

/* While run_rescued captures stderr: the real one, and the capture. */
static int saved_stderr = -1;
static FILE *captured;

/* A test that failed while stderr was captured: put stderr back and show
 * what went to the capture (cmocka's own message among it). */
static int release_stderr(void **state)
{
	char buf[4096];
	ssize_t n;
	off_t off = 0;

	(void)state;
	if (saved_stderr < 0)
		return 0;
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	saved_stderr = -1;
	while ((n = pread(fileno(captured), buf, sizeof(buf), off)) > 0) {
		fwrite(buf, 1, (size_t)n, stderr);
		off += n;
	}
	fclose(captured);
	captured = NULL;
	return 0;
}

/* Run @body with the re-check on, stderr captured in r->log; returns the
 * first rescue logged, or NULL. */
static const char *run_rescued(void *(*body)(void *), struct rescue *r)
{
	const char *env = getenv("CORIO_EPOLL_VERIFY_MS");
	char *saved_env = env ? strdup(env) : NULL;
	FILE *f = tmpfile();
	int saved = dup(STDERR_FILENO);
	ssize_t n;

	assert_non_null(f);
	assert_true(saved >= 0);
	setenv("CORIO_EPOLL_VERIFY_MS", "1", 1);
	assert_true(dup2(fileno(f), STDERR_FILENO) >= 0);
	saved_stderr = saved;
	captured = f;
	r->body = body;
	t_run(rescue_body, r);
	saved_stderr = -1;
	captured = NULL;
	assert_true(dup2(saved, STDERR_FILENO) >= 0);
	close(saved);
	if (saved_env)
		setenv("CORIO_EPOLL_VERIFY_MS", saved_env, 1);
	else
		unsetenv("CORIO_EPOLL_VERIFY_MS");
	free(saved_env);
	n = pread(fileno(f), r->log, sizeof(r->log) - 1, 0);
	assert_true(n >= 0);
	r->log[n] = '\0';
	fclose(f);
	if (!r->epoll) {
		assert_int_equal(r->st.epoll_rescues, 0);
		assert_null(strstr(r->log, "rescued"));
		return NULL;
	}
	return strstr(r->log, "epoll re-check rescued fd ");
}

/* What the re-check is for: a number closed with close(2) and reused for
 * another file is found stale, and the new file registered. */
static void fd_reuse_plain_close(void **state)
{
	struct rescue r;
	const char *line;

	(void)state;
	line = run_rescued(reuse_body, &r);
	if (!r.epoll)
		return;
	/* Rounds 2 and 3 each wait on a reused number: two rescues, logged
	 * once (the loop's first), naming the cause and the waiting op. */
	assert_int_equal(r.st.epoll_rescues, 2);
	assert_non_null(line);
	assert_non_null(strstr(line, "close(2)"));
	assert_non_null(strstr(line, "the first a read"));
	assert_null(strstr(line + 1, "epoll re-check rescued"));
}

/* The loop's epoll fd, found in /proc/self/fd; -1 if none. */
static int find_epoll_fd(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	char path[300], target[64];
	int fd = -1;

	assert_non_null(d);
	while (fd < 0 && (de = readdir(d))) {
		ssize_t n;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		if (n > 0) {
			target[n] = '\0';
			if (!strcmp(target, "anon_inode:[eventpoll]"))
				fd = atoi(de->d_name);
		}
	}
	closedir(d);
	return fd;
}

static void *lost_reader(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char c;

	assert_int_equal(corio_recv_until(fd, &c, 1, 0, soon()), 1);
	return NULL;
}

static void *pri_poller(void *arg)
{
	assert_int_equal(corio_poll((int)(intptr_t)arg, POLLPRI), -ECANCELED);
	return NULL;
}

/* A lost wake-up, made on purpose: the test takes the reader's event out
 * of the loop's epoll before the loop sees it. The re-check finds the fd
 * ready with no event coming, and says so. A re-check that ran before the
 * event was taken (a loop turn more than 1 ms late) found the fd idle,
 * re-armed it and let it go; a second waiter (a poll for POLLPRI, which
 * never comes) puts the fd back on the re-check list, so the lost wake-up
 * is found either way. */
static void *lost_wake_body(void *arg)
{
	struct epoll_event ev[8];
	corio_fiber *f, *p;
	int sv[2], ep;

	(void)arg;
	t_socketpair(sv);
	f = t_spawn(lost_reader, (void *)(intptr_t)sv[0]);
	t_turns(2); /* it waits */
	assert_int_equal(write(sv[1], "w", 1), 1);
	if (on_epoll()) {
		ep = find_epoll_fd();
		assert_true(ep >= 0);
		assert_int_equal(epoll_wait(ep, ev, 8, 0), 1);
		assert_int_equal(ev[0].data.u64, (uint64_t)sv[0]);
	}
	p = t_spawn(pri_poller, (void *)(intptr_t)sv[0]);
	t_turns(1); /* it waits */
	t_join(f);
	assert_int_equal(corio_cancel(p), 0);
	t_join(p);
	assert_int_equal(corio_close(sv[0]), 0);
	close(sv[1]);
	return NULL;
}

static void lost_wake_rescued(void **state)
{
	struct rescue r;
	const char *line;

	(void)state;
	line = run_rescued(lost_wake_body, &r);
	if (!r.epoll)
		return;
	assert_int_equal(r.st.epoll_rescues, 1);
	assert_non_null(line);
	assert_non_null(strstr(line, "lost wake-up"));
	assert_non_null(strstr(line, "2 op(s) waiting, the first a recv"));
}

/*
 * The kind of an fd (file or stream) is remembered per number; an fd
 * closed with close(2) leaves that stale. A pipe's number reused for a
 * regular file: corio_read reads the file. A file's number reused for a
 * pipe: corio_read waits for the pipe, and can be cancelled (it is not
 * stuck in a blocking read on a pool thread).
 */
/* On a pool thread, as a job starts: say so, then hold the job until the
 * test lets it go (only the two eventfds are shared). */
static void job_started(void *arg)
{
	int *efd = arg;
	uint64_t v = 1;

	if (write(efd[0], &v, sizeof(v)) != sizeof(v) || read(efd[1], &v, sizeof(v)) != sizeof(v))
		abort();
}

static void *reuse_kind_body(void *arg)
{
	char *dir = t_tmpdir(), path[256], c = 0;
	struct reuse r;
	corio_fiber *f;
	int p[2], fd, hook[2]; /* eventfds: the job started; let it go */
	uint64_t v = 1;

	(void)arg;
	snprintf(path, sizeof(path), "%s/f", dir);
	/* A file first, on a number never used in this loop. */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "F", 1, 0), 1);
	assert_int_equal(corio_read(fd, &c, 1, 0), 1);
	assert_int_equal(c, 'F');
	close(fd);
	/* Its number, now a pipe. */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(p[0], fd);
	/* On epoll the record says "file": the read goes to a pool thread,
	 * which must find out and send it back to wait for readiness. The
	 * cancellation is made while the job is held on that thread. */
	hook[0] = eventfd(0, EFD_CLOEXEC);
	hook[1] = eventfd(0, EFD_CLOEXEC);
	assert_true(hook[0] >= 0 && hook[1] >= 0);
	if (on_epoll())
		assert_int_equal(corio__epoll_set_pool_hook(corio_loop_current(), job_started,
							    hook), 0);
	r.fd = p[0];
	r.res = 1;
	f = t_spawn(reuse_reader, &r);
	if (on_epoll())
		assert_int_equal(corio_read(hook[0], &v, sizeof(v), -1), 8);
	else
		t_turns(3);
	assert_int_equal(corio_cancel(f), 0);
	if (on_epoll()) {
		assert_int_equal(write(hook[1], &v, sizeof(v)), sizeof(v));
		corio__epoll_set_pool_hook(corio_loop_current(), NULL, NULL);
	}
	t_turns(2);
	/* Had the read been blocking somewhere, this byte would be its. */
	assert_int_equal(write(p[1], "q", 1), 1);
	t_join(f);
	assert_int_equal(r.res, -ECANCELED);
	assert_int_equal(corio_read(p[0], &c, 1, -1), 1);
	assert_int_equal(c, 'q');
	close(hook[0]);
	close(hook[1]);
	/* And the pipe's number (it waited: registered), now a file again. */
	r.res = 1;
	f = t_spawn(reuse_reader, &r);
	t_turns(2);
	assert_int_equal(write(p[1], "p", 1), 1);
	t_join(f);
	assert_int_equal(r.c, 'p');
	close(p[0]);
	close(p[1]);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_int_equal(fd, p[0]);
	assert_int_equal(corio_read(fd, &c, 1, 0), 1);
	assert_int_equal(c, 'F');
	assert_int_equal(corio_read(fd, &c, 1, -1), 1);
	assert_int_equal(corio_read(fd, &c, 1, -1), 0); /* end of file: no wait */
	close(fd);
	unlink(path);
	t_rmdir_r(dir);
	free(dir);
	return NULL;
}

static void fd_reuse_kind(void **state)
{
	(void)state;
	t_run(reuse_kind_body, NULL);
}

/* -------------------------------------------- close while an op waits */

static void *recv_into(void *arg)
{
	struct reuse *r = arg;

	r->res = (int)corio_recv_until(r->fd, &r->c, 1, 0, soon());
	return NULL;
}

/* corio_close of an fd a fiber waits on does not end the wait: as with
 * io_uring, whose op holds the file, the op completes when the file has
 * data; a new file that gets the old number is not confused with it; and
 * the file really closes when the op is done (the peer sees end of
 * stream). */
static void *close_waiting_body(void *arg)
{
	struct reuse r = {.res = 1};
	corio_fiber *f;
	int sv[2], nsv[2];
	char c;

	(void)arg;
	t_socketpair(sv);
	r.fd = sv[0];
	f = t_spawn(recv_into, &r);
	t_turns(2);
	assert_int_equal(corio_close(sv[0]), 0);
	t_socketpair(nsv);
	assert_int_equal(nsv[0], sv[0]); /* the number is reused */
	assert_int_equal(write(nsv[1], "n", 1), 1);
	t_turns(3);
	assert_int_equal(r.res, 1); /* still waiting */
	assert_int_equal(write(sv[1], "o", 1), 1);
	t_join(f);
	assert_int_equal(r.res, 1);
	assert_int_equal(r.c, 'o');
	assert_int_equal(corio_recv(nsv[0], &c, 1, 0), 1);
	assert_int_equal(c, 'n');
	/* The old socket is gone for good now. */
	assert_int_equal(corio_recv(sv[1], &c, 1, 0), 0);
	close(nsv[0]);
	close(nsv[1]);
	close(sv[1]);

	/* Cancelled instead: same, the file closes after. */
	t_socketpair(sv);
	r.fd = sv[0];
	f = t_spawn(recv_into, &r);
	t_turns(2);
	assert_int_equal(corio_close(sv[0]), 0);
	assert_int_equal(corio_cancel(f), 0);
	t_join(f);
	assert_int_equal(r.res, -ECANCELED);
	assert_int_equal(corio_recv(sv[1], &c, 1, 0), 0);
	close(sv[1]);
	return NULL;
}

static void close_while_waiting(void **state)
{
	(void)state;
	t_run(close_waiting_body, NULL);
}

/* ---------------------------------------------------------------- poll */

static void *poll_events(void *arg)
{
	int *a = arg;

	return (void *)(intptr_t)corio_poll_until(a[0], (unsigned)a[1], soon());
}

static void *poll_body(void *arg)
{
	int p[2], sv[2], a[2], in[2], res;
	corio_fiber *f, *g;

	(void)arg;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	/* Ready now. */
	assert_int_equal(corio_poll(p[1], POLLOUT), POLLOUT);
	/* Waits, then sees the write. */
	a[0] = p[0];
	a[1] = POLLIN;
	f = t_spawn(poll_events, a);
	t_turns(2);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal((intptr_t)t_join(f), POLLIN);
	/* Level, not edge: still readable, so at once again. */
	assert_int_equal(corio_poll(p[0], POLLIN), POLLIN);
	close(p[1]);
	/* The writer went away: POLLHUP, asked or not. */
	assert_true(corio_poll(p[0], POLLIN) & POLLHUP);
	assert_int_equal(corio_close(p[0]), 0);

	/* Two pollers of one socket for different events: one waits, the
	 * other is ready at once. */
	t_socketpair(sv);
	in[0] = sv[0];
	in[1] = POLLIN;
	g = t_spawn(poll_events, in);
	t_turns(2);
	a[0] = sv[0];
	a[1] = POLLOUT;
	f = t_spawn(poll_events, a);
	assert_int_equal((intptr_t)t_join(f), POLLOUT);
	/* The peer's close wakes the reader, with the hang-up. */
	close(sv[1]);
	res = (int)(intptr_t)t_join(g);
	assert_true(res & POLLIN);
	assert_true(res & (POLLHUP | POLLRDHUP));
	close(sv[0]);
	return NULL;
}

static void poll_results(void **state)
{
	(void)state;
	t_run(poll_body, NULL);
}

/* --------------------------------------------------- MSG_WAITALL & co */

static void *waitall_recv(void *arg)
{
	struct reuse *r = arg;
	static char buf[6];

	r->res = (int)corio_recv_until(r->fd, buf, sizeof(buf), MSG_WAITALL, soon());
	if (r->res == 6)
		assert_memory_equal(buf, "hello!", 6);
	return NULL;
}

static void *flags_body(void *arg)
{
	struct reuse r = {.res = 1};
	corio_fiber *f;
	struct io_uring_sqe sqe;
	int sv[2], u[2], p[2];
	char buf[16];

	(void)arg;
	/* MSG_WAITALL on a stream gathers both halves. */
	t_socketpair(sv);
	r.fd = sv[0];
	f = t_spawn(waitall_recv, &r);
	t_turns(2);
	assert_int_equal(corio_send(sv[1], "hel", 3, 0), 3);
	t_turns(3);
	assert_int_equal(r.res, 1); /* still waiting for the rest */
	assert_int_equal(corio_send(sv[1], "lo!", 3, 0), 3);
	t_join(f);
	assert_int_equal(r.res, 6);
	/* Cancelled halfway: the bytes it has are returned, not lost. */
	f = t_spawn(waitall_recv, &r);
	t_turns(2);
	assert_int_equal(corio_send(sv[1], "abcd", 4, 0), 4);
	t_turns(3);
	assert_int_equal(corio_cancel(f), 0);
	t_join(f);
	assert_int_equal(r.res, 4);
	assert_int_equal(readable(sv[0]), 0);
	/* MSG_DONTWAIT: -EAGAIN instead of a wait. */
	assert_int_equal(corio_recv_until(sv[0], buf, 1, MSG_DONTWAIT, soon()), -EAGAIN);
	assert_int_equal(corio_close(sv[0]), 0);
	assert_int_equal(corio_close(sv[1]), 0);

	/* A datagram socket: MSG_WAITALL returns one datagram. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, u), 0);
	assert_int_equal(corio_send(u[1], "dg", 2, 0), 2);
	assert_int_equal(corio_send(u[1], "xy", 2, 0), 2);
	assert_int_equal(corio_recv(u[0], buf, sizeof(buf), MSG_WAITALL), 2);
	assert_int_equal(corio_recv(u[0], buf, sizeof(buf), MSG_WAITALL), 2);
	assert_memory_equal(buf, "xy", 2);
	close(u[0]);
	close(u[1]);

	/* RWF_NOWAIT through the escape hatch, on an empty pipe. */
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	io_uring_prep_read(&sqe, p[0], buf, sizeof(buf), (uint64_t)-1);
	sqe.rw_flags = RWF_NOWAIT;
	assert_int_equal(corio_sqe_until(&sqe, soon()), -EAGAIN);
	close(p[0]);
	close(p[1]);
	return NULL;
}

static void msg_flags(void **state)
{
	(void)state;
	t_run(flags_body, NULL);
}

/* --------------------------------------------------- eventfd, tty */

static void *eventfd_body(void *arg)
{
	int efd = eventfd(0, EFD_CLOEXEC);
	uint64_t v = 0, five = 5;
	corio_fiber *f;
	struct reuse r = {.fd = efd};

	(void)arg;
	assert_true(efd >= 0);
	f = t_spawn(reuse_reader, &r); /* a 1-byte read: -EINVAL from eventfd */
	t_join(f);
	assert_int_equal(r.res, -EINVAL);
	assert_int_equal(corio_write(efd, &five, sizeof(five), -1), 8);
	assert_int_equal(corio_read(efd, &v, sizeof(v), -1), 8);
	assert_int_equal(v, 5);
	assert_int_equal(corio_read_until(efd, &v, sizeof(v), -1, corio_now() + CORIO_MSEC),
			 -ETIMEDOUT);
	close(efd);
	return NULL;
}

static void eventfd_rw(void **state)
{
	(void)state;
	t_run(eventfd_body, NULL);
}

static int tty_fd;
static char tty_buf[16];

static void *tty_reader(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)corio_read_until(tty_fd, tty_buf, sizeof(tty_buf), -1, soon());
}

/* A pty: no RWF_NOWAIT there; the read waits for readiness (and so can be
 * cancelled), then reads. */
static void *tty_body(void *arg)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	corio_fiber *f;

	(void)arg;
	if (m < 0)
		skip();
	assert_int_equal(grantpt(m), 0);
	assert_int_equal(unlockpt(m), 0);
	tty_fd = open(ptsname(m), O_RDWR | O_NOCTTY | O_CLOEXEC);
	assert_true(tty_fd >= 0);
	f = t_spawn(tty_reader, NULL);
	t_turns(3);
	assert_int_equal(corio_cancel(f), 0);
	assert_int_equal((intptr_t)t_join(f), -ECANCELED);
	f = t_spawn(tty_reader, NULL);
	t_turns(3);
	assert_int_equal(corio_write(m, "hi\n", 3, -1), 3);
	assert_int_equal((intptr_t)t_join(f), 3);
	assert_memory_equal(tty_buf, "hi\n", 3);
	close(tty_fd);
	close(m);
	return NULL;
}

static void tty_read(void **state)
{
	(void)state;
	t_run(tty_body, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pipe_partial),
		cmocka_unit_test(socket_partial),
		cmocka_unit_test(storm),
		cmocka_unit_test(tcp_echo),
		cmocka_unit_test(connect_refused),
		cmocka_unit_test(peer_close_eof),
		cmocka_unit_test(reset_and_epipe),
		cmocka_unit_test(short_reads),
		cmocka_unit_test(bad_fd),
		cmocka_unit_test(cancel_waiting),
		cmocka_unit_test(deadlines),
		cmocka_unit_test(many_fds),
		cmocka_unit_test(fd_reuse_corio_close),
		cmocka_unit_test_teardown(fd_reuse_plain_close, release_stderr),
		cmocka_unit_test_teardown(lost_wake_rescued, release_stderr),
		cmocka_unit_test(fd_reuse_kind),
		cmocka_unit_test(close_while_waiting),
		cmocka_unit_test(poll_results),
		cmocka_unit_test(msg_flags),
		cmocka_unit_test(eventfd_rw),
		cmocka_unit_test(tty_read),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
