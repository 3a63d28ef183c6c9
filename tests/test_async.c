/*
 * The completion API (corio/async.h), without fibers: every corio_async_*
 * operation on its success and error paths; the callback runs exactly
 * once, from the loop, never inside the starting call; request ids are
 * unique and invalid (-ENOENT) after the callback; cancellation and
 * deadlines of pending operations; chaining from callbacks; loop_run
 * returns once nothing is pending.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

struct done {
	int calls;
	int res;
	unsigned flags;
};

static bool in_start; /* set while a start call runs */

static void on_done(corio_loop *loop, int res, unsigned flags, void *user)
{
	struct done *d = user;

	assert_non_null(loop);
	assert_ptr_equal(loop, corio_loop_current());
	assert_false(in_start);
	assert_null(corio_self()); /* callbacks run on the loop's stack */
	d->calls++;
	d->res = res;
	d->flags = flags;
}

/* Start an operation; its callback must not run inside the call. */
#define START(call)                                                                           \
	({                                                                                    \
		corio_req id_;                                                                \
		in_start = true;                                                              \
		id_ = (call);                                                                 \
		in_start = false;                                                             \
		assert_true(id_ > 0);                                                         \
		id_;                                                                          \
	})

static corio_loop *loop;

/* Run until idle; the operation's callback ran exactly once. */
static int finish(struct done *d, corio_req id)
{
	assert_int_equal(d->calls, 0);
	assert_int_equal(corio_loop_run(loop), 0);
	assert_int_equal(d->calls, 1);
	assert_int_equal(d->flags & CORIO_F_MORE, 0);
	/* The id is spent. */
	assert_int_equal(corio_async_cancel(loop, id), -ENOENT);
	assert_int_equal(corio_async_deadline(loop, id, corio_now() + CORIO_SEC), -ENOENT);
	return d->res;
}

/* Start, run, and return the result. */
#define RUN(call, d) (memset(&(d), 0, sizeof(d)), finish(&(d), START(call)))

static int setup(void **state)
{
	(void)state;
	loop = t_loop();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	corio_loop_destroy(loop);
	loop = NULL;
	return 0;
}

/* ------------------------------------------------------------ the basics */

static void nop_and_ids(void **state)
{
	struct done d[100];
	corio_req ids[100];

	(void)state;
	memset(d, 0, sizeof(d));
	assert_int_equal(RUN(corio_async_nop(loop, on_done, &d[0]), d[0]), 0);
	/* Many at once: one callback each; ids unique, also across reuse of
	 * the records. */
	for (int round = 0; round < 3; round++) {
		memset(d, 0, sizeof(d));
		for (int i = 0; i < 100; i++) {
			ids[i] = START(corio_async_nop(loop, on_done, &d[i]));
			for (int j = 0; j < i; j++)
				assert_true(ids[j] != ids[i]);
		}
		assert_int_equal(corio_loop_run(loop), 0);
		for (int i = 0; i < 100; i++) {
			assert_int_equal(d[i].calls, 1);
			assert_int_equal(d[i].res, 0);
			assert_int_equal(corio_async_cancel(loop, ids[i]), -ENOENT);
		}
	}
	/* Ids that never existed. */
	assert_int_equal(corio_async_cancel(loop, 0), -ENOENT);
	assert_int_equal(corio_async_cancel(loop, -5), -ENOENT);
	assert_int_equal(corio_async_cancel(loop, (corio_req)1 << 40), -ENOENT);
	assert_int_equal(corio_async_deadline(loop, 12345, 1), -ENOENT);
	/* Bad arguments. */
	assert_int_equal(corio_async_nop(loop, NULL, NULL), -EINVAL);
	assert_int_equal(corio_async_nop(NULL, on_done, &d[0]), -EINVAL);
	assert_int_equal(corio_async_cancel(NULL, 1), -EINVAL);
	assert_int_equal(corio_async_deadline(NULL, 1, 0), -EINVAL);
	/* Idle: returns at once. */
	assert_int_equal(corio_loop_run(loop), 0);
}

/* --------------------------------------------------------------- files */

static void file_ops(void **state)
{
	char *dir = t_tmpdir(), buf[32], a[4], b[4];
	struct iovec wv[2] = {{"abcd", 4}, {"efgh", 4}}, rv[2] = {{a, 4}, {b, 4}};
	struct statx st;
	struct done d;
	int dfd, fd;

	(void)state;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	assert_int_equal(RUN(corio_async_mkdirat(loop, dfd, "sub", 0700, on_done, &d), d), 0);
	assert_int_equal(RUN(corio_async_mkdirat(loop, dfd, "sub", 0700, on_done, &d), d), -EEXIST);
	fd = RUN(corio_async_openat(loop, dfd, "sub/f", O_CREAT | O_RDWR | O_CLOEXEC, 0600,
				    on_done, &d),
		 d);
	assert_true(fd >= 0);
	assert_int_equal(RUN(corio_async_openat(loop, dfd, "nope", O_RDONLY, 0, on_done, &d), d),
			 -ENOENT);
	assert_int_equal(RUN(corio_async_write(loop, fd, "hello", 5, 0, on_done, &d), d), 5);
	assert_int_equal(RUN(corio_async_write(loop, fd, "!", 1, -1, on_done, &d), d), 1);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 1);
	assert_int_equal(RUN(corio_async_read(loop, fd, buf, sizeof(buf), 0, on_done, &d), d), 5);
	assert_memory_equal(buf, "!ello", 5);
	assert_int_equal(RUN(corio_async_read(loop, fd, buf, 2, -1, on_done, &d), d), 2);
	assert_memory_equal(buf, "el", 2);
	assert_int_equal(RUN(corio_async_writev(loop, fd, wv, 2, 8, on_done, &d), d), 8);
	assert_int_equal(RUN(corio_async_readv(loop, fd, rv, 2, 8, on_done, &d), d), 8);
	assert_memory_equal(a, "abcd", 4);
	assert_memory_equal(b, "efgh", 4);
	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	assert_int_equal(RUN(corio_async_readv(loop, fd, rv, 1, -1, on_done, &d), d), 4);
	assert_memory_equal(a, "!ell", 4);
	assert_int_equal(RUN(corio_async_writev(loop, fd, wv + 1, 1, -1, on_done, &d), d), 4);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 8);
	assert_int_equal(RUN(corio_async_fsync(loop, fd, on_done, &d), d), 0);
	assert_int_equal(RUN(corio_async_fdatasync(loop, fd, on_done, &d), d), 0);
	assert_int_equal(RUN(corio_async_fallocate(loop, fd, 0, 0, 4096, on_done, &d), d), 0);
	assert_int_equal(RUN(corio_async_statx(loop, dfd, "sub/f", 0, STATX_SIZE, &st, on_done, &d),
			     d),
			 0);
	assert_int_equal(st.stx_size, 4096);
	assert_int_equal(RUN(corio_async_statx(loop, dfd, "x", 0, STATX_SIZE, &st, on_done, &d), d),
			 -ENOENT);
	assert_int_equal(RUN(corio_async_renameat(loop, dfd, "sub/f", dfd, "g", 0, on_done, &d), d),
			 0);
	assert_int_equal(RUN(corio_async_renameat(loop, dfd, "sub/f", dfd, "g", 0, on_done, &d), d),
			 -ENOENT);
	assert_int_equal(RUN(corio_async_close(loop, fd, on_done, &d), d), 0);
	assert_int_equal(RUN(corio_async_close(loop, fd, on_done, &d), d), -EBADF);
	assert_int_equal(RUN(corio_async_unlinkat(loop, dfd, "g", 0, on_done, &d), d), 0);
	assert_int_equal(RUN(corio_async_unlinkat(loop, dfd, "g", 0, on_done, &d), d), -ENOENT);
	assert_int_equal(RUN(corio_async_unlinkat(loop, dfd, "sub", AT_REMOVEDIR, on_done, &d), d),
			 0);
	/* Bad descriptors. */
	assert_int_equal(RUN(corio_async_read(loop, -1, buf, 1, 0, on_done, &d), d), -EBADF);
	assert_int_equal(RUN(corio_async_write(loop, -1, buf, 1, 0, on_done, &d), d), -EBADF);
	assert_int_equal(RUN(corio_async_readv(loop, -1, rv, 1, 0, on_done, &d), d), -EBADF);
	assert_int_equal(RUN(corio_async_writev(loop, -1, wv, 1, 0, on_done, &d), d), -EBADF);
	assert_int_equal(RUN(corio_async_fsync(loop, -1, on_done, &d), d), -EBADF);
	assert_int_equal(RUN(corio_async_fdatasync(loop, -1, on_done, &d), d), -EBADF);
	assert_int_equal(RUN(corio_async_fallocate(loop, -1, 0, 0, 1, on_done, &d), d), -EBADF);
	close(dfd);
	t_rmdir_r(dir);
	free(dir);
}

/* ------------------------------------------------------------- sockets */

static void socket_ops(void **state)
{
	struct sockaddr_in a = {.sin_family = AF_INET}, peer;
	socklen_t plen = sizeof(peer);
	struct done d, dacc, dcon;
	char buf[16], x[3], y[5];
	struct iovec wv[2] = {{"abc", 3}, {"defgh", 5}}, rv[2] = {{x, 3}, {y, 5}};
	struct msghdr wm = {.msg_iov = wv, .msg_iovlen = 2}, rm = {.msg_iov = rv, .msg_iovlen = 2};
	int port, lfd = t_listen_tcp(&port), c, s, l2;

	(void)state;
	c = RUN(corio_async_socket(loop, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0, on_done, &d), d);
	assert_true(c >= 0);
	assert_int_equal(RUN(corio_async_socket(loop, 12345, SOCK_STREAM, 0, on_done, &d), d),
			 -EAFNOSUPPORT);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	/* Accept and connect pending at the same time. */
	memset(&dacc, 0, sizeof(dacc));
	memset(&dcon, 0, sizeof(dcon));
	START(corio_async_accept(loop, lfd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC, on_done,
				 &dacc));
	START(corio_async_connect(loop, c, (struct sockaddr *)&a, sizeof(a), on_done, &dcon));
	assert_int_equal(corio_loop_run(loop), 0);
	assert_int_equal(dacc.calls, 1);
	assert_int_equal(dcon.calls, 1);
	assert_int_equal(dcon.res, 0);
	s = dacc.res;
	assert_true(s >= 0);
	assert_int_equal(peer.sin_family, AF_INET);

	assert_int_equal(RUN(corio_async_send(loop, c, "hi", 2, 0, on_done, &d), d), 2);
	assert_int_equal(RUN(corio_async_recv(loop, s, buf, sizeof(buf), 0, on_done, &d), d), 2);
	assert_memory_equal(buf, "hi", 2);
	assert_int_equal(RUN(corio_async_sendmsg(loop, s, &wm, 0, on_done, &d), d), 8);
	assert_int_equal(RUN(corio_async_recvmsg(loop, c, &rm, MSG_WAITALL, on_done, &d), d), 8);
	assert_memory_equal(x, "abc", 3);
	assert_memory_equal(y, "defgh", 5);
	assert_int_equal(RUN(corio_async_poll(loop, c, POLLOUT, on_done, &d), d), POLLOUT);
	assert_int_equal(RUN(corio_async_shutdown(loop, c, SHUT_WR, on_done, &d), d), 0);
	assert_int_equal(RUN(corio_async_recv(loop, s, buf, sizeof(buf), 0, on_done, &d), d), 0);
	/* send after our shutdown: -EPIPE, no SIGPIPE. */
	assert_int_equal(RUN(corio_async_send(loop, c, "x", 1, 0, on_done, &d), d), -EPIPE);
	assert_int_equal(RUN(corio_async_sendmsg(loop, c, &wm, 0, on_done, &d), d), -EPIPE);
	close(c);
	close(s);
	/* Refused. */
	l2 = t_listen_tcp(&port);
	close(l2);
	a.sin_port = htons((uint16_t)port);
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(RUN(corio_async_connect(loop, c, (struct sockaddr *)&a, sizeof(a), on_done,
						 &d),
			     d),
			 -ECONNREFUSED);
	close(c);
	/* Bad descriptors. */
	assert_int_equal(RUN(corio_async_accept(loop, -1, NULL, NULL, 0, on_done, &d), d), -EBADF);
	assert_int_equal(RUN(corio_async_recv(loop, -1, buf, 1, 0, on_done, &d), d), -EBADF);
	assert_int_equal(RUN(corio_async_send(loop, -1, buf, 1, 0, on_done, &d), d), -EBADF);
	assert_int_equal(RUN(corio_async_recvmsg(loop, -1, &rm, 0, on_done, &d), d), -EBADF);
	assert_int_equal(RUN(corio_async_sendmsg(loop, -1, &wm, 0, on_done, &d), d), -EBADF);
	assert_int_equal(RUN(corio_async_shutdown(loop, -1, SHUT_RD, on_done, &d), d), -EBADF);
	assert_int_equal(RUN(corio_async_poll(loop, -1, POLLIN, on_done, &d), d), -EBADF);
	close(lfd);
}

/* ------------------------------------------------- cancel and deadline */

static void cancel_pending(void **state)
{
	int sv[2];
	char buf[64];
	struct done d;
	corio_req id;

	(void)state;
	t_socketpair(sv);
	memset(buf, 'Z', sizeof(buf));
	memset(&d, 0, sizeof(d));
	id = START(corio_async_recv(loop, sv[0], buf, sizeof(buf), 0, on_done, &d));
	/* Started in the kernel, then cancelled. */
	assert_int_equal(corio_loop_run_once(loop, false), 1);
	assert_int_equal(d.calls, 0);
	assert_int_equal(corio_async_cancel(loop, id), 0);
	assert_int_equal(corio_async_cancel(loop, id), 0); /* still pending: fine */
	assert_int_equal(d.calls, 0);			    /* never from inside the call */
	assert_int_equal(finish(&d, id), -ECANCELED);
	/* The buffer is ours again: data sent now does not land in it. */
	assert_int_equal(write(sv[1], "late", 4), 4);
	assert_int_equal(corio_async_nop(loop, on_done, &d) > 0, 1);
	assert_int_equal(corio_loop_run(loop), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 'Z');
	assert_int_equal(t_readable(sv[0]), 4);
	assert_int_equal(read(sv[0], buf, 4), 4);

	/* Cancelled right after the start, before the loop ever submitted it. */
	memset(&d, 0, sizeof(d));
	id = START(corio_async_recv(loop, sv[0], buf, sizeof(buf), 0, on_done, &d));
	assert_int_equal(corio_async_cancel(loop, id), 0);
	assert_int_equal(d.calls, 0);
	assert_int_equal(finish(&d, id), -ECANCELED);
	close(sv[0]);
	close(sv[1]);
}

static void deadline_pending(void **state)
{
	int sv[2];
	char buf[16];
	struct done d;
	corio_req id;

	(void)state;
	t_socketpair(sv);
	/* Expires. */
	memset(&d, 0, sizeof(d));
	id = START(corio_async_recv(loop, sv[0], buf, sizeof(buf), 0, on_done, &d));
	assert_int_equal(corio_async_deadline(loop, id, corio_now() + CORIO_MSEC), 0);
	assert_int_equal(finish(&d, id), -ETIMEDOUT);
	/* Already past. */
	memset(&d, 0, sizeof(d));
	id = START(corio_async_recv(loop, sv[0], buf, sizeof(buf), 0, on_done, &d));
	assert_int_equal(corio_async_deadline(loop, id, 1), 0);
	assert_int_equal(d.calls, 0);
	assert_int_equal(finish(&d, id), -ETIMEDOUT);
	/* Moved, then cleared: the operation waits for its data. */
	memset(&d, 0, sizeof(d));
	id = START(corio_async_recv(loop, sv[0], buf, sizeof(buf), 0, on_done, &d));
	assert_int_equal(corio_async_deadline(loop, id, corio_now() + CORIO_MSEC), 0);
	assert_int_equal(corio_async_deadline(loop, id, corio_now() + 2 * CORIO_MSEC), 0);
	assert_int_equal(corio_async_deadline(loop, id, 0), 0);
	assert_int_equal(corio_loop_run_once(loop, false), 1);
	assert_int_equal(write(sv[1], "data", 4), 4);
	assert_int_equal(finish(&d, id), 4);
	assert_memory_equal(buf, "data", 4);
	/* Completes before its deadline: the result, and the loop is idle
	 * (no timer left behind keeps it alive). */
	memset(&d, 0, sizeof(d));
	assert_int_equal(write(sv[1], "more", 4), 4);
	id = START(corio_async_recv(loop, sv[0], buf, sizeof(buf), 0, on_done, &d));
	assert_int_equal(corio_async_deadline(loop, id, corio_now() + 3600 * CORIO_SEC), 0);
	assert_int_equal(finish(&d, id), 4);
	/* Cancelled before its deadline: -ECANCELED. */
	memset(&d, 0, sizeof(d));
	id = START(corio_async_recv(loop, sv[0], buf, sizeof(buf), 0, on_done, &d));
	assert_int_equal(corio_async_deadline(loop, id, corio_now() + 3600 * CORIO_SEC), 0);
	assert_int_equal(corio_async_cancel(loop, id), 0);
	assert_int_equal(finish(&d, id), -ECANCELED);
	close(sv[0]);
	close(sv[1]);
}

/* ------------------------------------------------------- from callbacks */

struct chain {
	int fd;
	int left;
	int results;
	char buf[8];
};

static void chain_cb(corio_loop *l, int res, unsigned flags, void *user)
{
	struct chain *c = user;

	(void)flags;
	assert_false(in_start);
	assert_int_equal(res, 1);
	c->results++;
	if (--c->left > 0) {
		/* Started from a callback: its own callback comes later. */
		in_start = true;
		assert_true(corio_async_write(l, c->fd, "y", 1, -1, chain_cb, c) > 0);
		in_start = false;
	}
}

static corio_req victim;
static struct done victim_done;

static void canceller_cb(corio_loop *l, int res, unsigned flags, void *user)
{
	(void)flags;
	(void)user;
	assert_int_equal(res, 0);
	assert_int_equal(corio_async_cancel(l, victim), 0);
}

static void from_callbacks(void **state)
{
	struct chain c = {.left = 50};
	int p[2];
	char buf[64];

	(void)state;
	t_pipe(p);
	c.fd = p[1];
	START(corio_async_write(loop, p[1], "y", 1, -1, chain_cb, &c));
	assert_int_equal(corio_loop_run(loop), 0);
	assert_int_equal(c.results, 50);
	assert_int_equal(t_readable(p[0]), 50);
	assert_int_equal(read(p[0], buf, 50), 50);

	/* One callback cancels another pending operation. */
	memset(&victim_done, 0, sizeof(victim_done));
	victim = START(corio_async_read(loop, p[0], buf, sizeof(buf), -1, on_done, &victim_done));
	START(corio_async_nop(loop, canceller_cb, NULL));
	assert_int_equal(corio_loop_run(loop), 0);
	assert_int_equal(victim_done.calls, 1);
	assert_int_equal(victim_done.res, -ECANCELED);
	close(p[0]);
	close(p[1]);
}

/* Cancellation racing the completion: the data is delivered or stays. */
static void cancel_races_completion(void **state)
{
	int p[2];
	char buf[16];
	struct done d;
	corio_req id;

	(void)state;
	t_pipe(p);
	for (int i = 0; i < 100; i++) {
		memset(&d, 0, sizeof(d));
		memset(buf, 0, sizeof(buf));
		id = START(corio_async_read(loop, p[0], buf, sizeof(buf), -1, on_done, &d));
		assert_int_equal(corio_loop_run_once(loop, false), 1); /* in the kernel */
		assert_int_equal(write(p[1], "racing!", 7), 7);
		assert_int_equal(corio_async_cancel(loop, id), 0);
		assert_int_equal(corio_loop_run(loop), 0);
		assert_int_equal(d.calls, 1);
		if (d.res == 7) {
			assert_memory_equal(buf, "racing!", 7);
			assert_int_equal(t_readable(p[0]), 0);
		} else {
			assert_int_equal(d.res, -ECANCELED);
			assert_int_equal(read(p[0], buf, sizeof(buf)), 7);
			assert_memory_equal(buf, "racing!", 7);
		}
	}
	close(p[0]);
	close(p[1]);
}

/* Async operations and fibers on one loop: run returns when both are done. */
static struct done mixed_done;

static void *mixed_fiber(void *arg)
{
	int *p = arg;

	assert_int_equal(corio_sleep(CORIO_MSEC), 0);
	assert_int_equal(corio_write(p[1], "f", 1, -1), 1);
	return NULL;
}

static void mixed_with_fibers(void **state)
{
	int p[2];
	char c = 0;
	corio_fiber *f;

	(void)state;
	t_pipe(p);
	memset(&mixed_done, 0, sizeof(mixed_done));
	START(corio_async_read(loop, p[0], &c, 1, -1, on_done, &mixed_done));
	assert_int_equal(corio_spawn(&f, loop, mixed_fiber, p, NULL), 0);
	assert_int_equal(corio_loop_run(loop), 0);
	assert_int_equal(mixed_done.calls, 1);
	assert_int_equal(mixed_done.res, 1);
	assert_int_equal(c, 'f');
	t_join(f);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(nop_and_ids, setup, teardown),
		cmocka_unit_test_setup_teardown(file_ops, setup, teardown),
		cmocka_unit_test_setup_teardown(socket_ops, setup, teardown),
		cmocka_unit_test_setup_teardown(cancel_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(deadline_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(from_callbacks, setup, teardown),
		cmocka_unit_test_setup_teardown(cancel_races_completion, setup, teardown),
		cmocka_unit_test_setup_teardown(mixed_with_fibers, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
