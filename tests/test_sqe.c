/*
 * The escape hatch: corio_sqe / corio_sqe_until / corio_async_sqe with raw
 * SQEs, the flags it refuses, unsupported opcodes, corio_op_supported, and
 * (io_uring only) operations corio has no typed call for: a kernel timeout,
 * multishot (fiber form: refused; callback form: every
 * completion) and a zero-copy send (returns after the notification).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <liburing.h>

#include "core.h"
#include "util.h"

#ifndef IORING_CQE_F_NOTIF
#define IORING_CQE_F_NOTIF (1U << 3)
#endif

static uint64_t completions(void)
{
	struct corio_loop_stats st;

	corio_loop_stats(corio_loop_current(), &st, sizeof(st));
	return st.ops_completed;
}

/* ------------------------------------------------------ both backends */

static void *basic_body(void *arg)
{
	struct io_uring_sqe sqe;
	int p[2];
	char buf[16];

	(void)arg;
	memset(&sqe, 0, sizeof(sqe));
	io_uring_prep_nop(&sqe);
	sqe.user_data = 0xdeadbeef; /* ignored: user_data is corio's */
	assert_int_equal(corio_sqe(&sqe), 0);
	assert_int_equal(corio_sqe_until(&sqe, corio_now() + CORIO_SEC), 0);
	assert_int_equal(corio_sqe_until(&sqe, 1), -ETIMEDOUT);

	/* An opcode corio itself uses works on every backend. */
	t_pipe(p);
	assert_int_equal(write(p[1], "raw", 3), 3);
	memset(&sqe, 0, sizeof(sqe));
	io_uring_prep_read(&sqe, p[0], buf, sizeof(buf), (uint64_t)-1);
	assert_int_equal(corio_sqe(&sqe), 3);
	assert_memory_equal(buf, "raw", 3);
	io_uring_prep_read(&sqe, -1, buf, sizeof(buf), 0);
	assert_int_equal(corio_sqe(&sqe), -EBADF);

	/* Refused: links and skipped completions (corio needs one completion
	 * per operation, and operations are not chained to each other). */
	io_uring_prep_nop(&sqe);
	sqe.flags = IOSQE_IO_LINK;
	assert_int_equal(corio_sqe(&sqe), -EINVAL);
	sqe.flags = IOSQE_IO_HARDLINK;
	assert_int_equal(corio_sqe(&sqe), -EINVAL);
	sqe.flags = IOSQE_CQE_SKIP_SUCCESS;
	assert_int_equal(corio_sqe_until(&sqe, corio_now() + CORIO_SEC), -EINVAL);
	assert_int_equal(corio_sqe(NULL), -EINVAL);

	/* An opcode no kernel has. */
	memset(&sqe, 0, sizeof(sqe));
	sqe.opcode = 250;
	assert_int_equal(corio_sqe(&sqe), -EOPNOTSUPP);
	close(p[0]);
	close(p[1]);
	return NULL;
}

static void sqe_basics(void **state)
{
	(void)state;
	t_run(basic_body, NULL);
}

struct done {
	int calls, res;
	unsigned flags;
};

static bool in_start;

static void on_done(corio_loop *loop, int res, unsigned flags, void *user)
{
	struct done *d = user;

	(void)loop;
	assert_false(in_start);
	d->calls++;
	d->res = res;
	d->flags = flags;
}

static void async_sqe_basics(void **state)
{
	corio_loop *loop = t_loop();
	struct io_uring_sqe sqe;
	struct done d = {0}, u = {0};
	corio_req id;

	(void)state;
	memset(&sqe, 0, sizeof(sqe));
	io_uring_prep_nop(&sqe);
	in_start = true;
	id = corio_async_sqe(loop, &sqe, on_done, &d);
	in_start = false;
	assert_true(id > 0);
	/* Unsupported: the error comes through the callback, next turn. */
	sqe.opcode = 250;
	in_start = true;
	id = corio_async_sqe(loop, &sqe, on_done, &u);
	in_start = false;
	assert_true(id > 0);
	assert_int_equal(u.calls, 0);
	/* It already failed, but its callback has not run: the id is still
	 * pending, and asking to cancel it or give it a deadline is fine
	 * (the callback will carry the real result). */
	assert_int_equal(corio_async_cancel(loop, id), 0);
	assert_int_equal(corio_async_deadline(loop, id, 1), 0);
	assert_int_equal(u.calls, 0);
	assert_int_equal(corio_loop_run(loop), 0);
	assert_int_equal(d.calls, 1);
	assert_int_equal(d.res, 0);
	assert_int_equal(u.calls, 1);
	assert_int_equal(u.res, -EOPNOTSUPP);
	assert_int_equal(corio_async_cancel(loop, id), -ENOENT);
	/* Refused flags and bad arguments. */
	io_uring_prep_nop(&sqe);
	sqe.flags = IOSQE_IO_LINK;
	assert_int_equal(corio_async_sqe(loop, &sqe, on_done, &d), -EINVAL);
	sqe.flags = IOSQE_CQE_SKIP_SUCCESS;
	assert_int_equal(corio_async_sqe(loop, &sqe, on_done, &d), -EINVAL);
	sqe.flags = 0;
	assert_int_equal(corio_async_sqe(loop, NULL, on_done, &d), -EINVAL);
	assert_int_equal(corio_async_sqe(loop, &sqe, NULL, &d), -EINVAL);
	assert_int_equal(corio_async_sqe(NULL, &sqe, on_done, &d), -EINVAL);
	assert_int_equal(d.calls, 1);
	corio_loop_destroy(loop);
}

static void op_supported(void **state)
{
	corio_loop *loop;

	(void)state;
	assert_false(corio_op_supported(NULL, IORING_OP_NOP)); /* no loop here */
	loop = t_loop();
	/* What corio's own calls use is there on every backend. */
	assert_true(corio_op_supported(loop, IORING_OP_NOP));
	assert_true(corio_op_supported(loop, IORING_OP_READ));
	assert_true(corio_op_supported(loop, IORING_OP_RECV));
	assert_true(corio_op_supported(NULL, IORING_OP_NOP)); /* the current loop */
	assert_false(corio_op_supported(loop, 250));
	assert_false(corio_op_supported(loop, -1));
	assert_false(corio_op_supported(loop, 1000));
	corio_loop_destroy(loop);
}

/* -------------------------------------------------------- io_uring only */

static void skip_unless_uring(void)
{
	corio_loop *loop = corio_loop_current();

	if (!t_is_uring(loop)) {
		corio_loop_destroy(loop);
		skip();
	}
}

static void *uring_body(void *arg)
{
	struct io_uring_sqe sqe;
	struct __kernel_timespec ts = {.tv_nsec = 1000000};
	int p[2], r;

	(void)arg;
	/* A kernel timeout: completes with -ETIME. */
	memset(&sqe, 0, sizeof(sqe));
	io_uring_prep_timeout(&sqe, &ts, 0, 0);
	assert_int_equal(corio_sqe(&sqe), -ETIME);
	/* ... and with a deadline earlier than it: cancelled, -ETIMEDOUT. */
	ts.tv_sec = 3600;
	io_uring_prep_timeout(&sqe, &ts, 0, 0);
	assert_int_equal(corio_sqe_until(&sqe, corio_now() + CORIO_MSEC), -ETIMEDOUT);

	/* Multishot forms are refused from a fiber: it can take only one
	 * result, and later ones (an accepted fd, a buffer) would be lost. */
	t_pipe(p);
	memset(&sqe, 0, sizeof(sqe));
	io_uring_prep_poll_multishot(&sqe, p[0], POLLIN);
	assert_int_equal(corio_sqe(&sqe), -EINVAL);
	io_uring_prep_multishot_accept(&sqe, p[0], NULL, NULL, 0);
	assert_int_equal(corio_sqe(&sqe), -EINVAL);
	io_uring_prep_recv_multishot(&sqe, p[0], NULL, 0, 0);
	assert_int_equal(corio_sqe(&sqe), -EINVAL);
	assert_int_equal(corio_loop_current()->inflight, 0);
	close(p[0]);
	close(p[1]);

	/* Zero-copy send: the call returns once the kernel let go of the
	 * buffer (the notification), after the result. */
	if (corio_op_supported(NULL, IORING_OP_SEND_ZC)) {
		static char big[65536];
		static char got[sizeof(big)];
		uint64_t before = completions();
		int c, sv, n = 0;

		t_tcp_pair(&c, &sv);
		t_fill(big, sizeof(big), 9);
		memset(&sqe, 0, sizeof(sqe));
		io_uring_prep_send_zc(&sqe, c, big, sizeof(big), 0, 0);
		r = corio_sqe(&sqe);
		assert_int_equal(r, (int)sizeof(big));
		assert_int_equal(completions() - before, 2);
		/* Free to reuse: scribbling now does not change what was sent. */
		memset(big, 0, sizeof(big));
		while (n < (int)sizeof(got)) {
			ssize_t k = corio_recv(sv, got + n, sizeof(got) - (size_t)n, 0);

			assert_true(k > 0);
			n += (int)k;
		}
		assert_true(t_check(got, sizeof(got), 9));
		close(c);
		close(sv);
	}
	return NULL;
}

static void uring_raw_ops(void **state)
{
	(void)state;
	(void)t_loop();
	skip_unless_uring();
	corio_loop_destroy(corio_loop_current());
	t_run(uring_body, NULL);
}

/* Multishot through the callback form: one callback per completion, with
 * CORIO_F_MORE on all but the last; the id stays valid until the last. */
static void async_multishot(void **state)
{
	corio_loop *loop = t_loop();
	struct io_uring_sqe sqe;
	struct done d = {0};
	corio_req id;
	int p[2];

	(void)state;
	skip_unless_uring();
	if (!corio_op_supported(loop, IORING_OP_POLL_ADD)) {
		corio_loop_destroy(loop);
		skip();
	}
	t_pipe(p);
	memset(&sqe, 0, sizeof(sqe));
	io_uring_prep_poll_multishot(&sqe, p[0], POLLIN);
	id = corio_async_sqe(loop, &sqe, on_done, &d);
	assert_true(id > 0);
	for (int i = 1; i <= 3; i++) {
		assert_int_equal(write(p[1], "m", 1), 1);
		while (d.calls < i)
			assert_int_equal(corio_loop_run_once(loop, true), 1);
		assert_int_equal(d.calls, i);
		assert_true(d.res & POLLIN);
		assert_true(d.flags & CORIO_F_MORE);
	}
	/* Still pending: it can be cancelled, and ends with one last callback. */
	assert_int_equal(corio_async_cancel(loop, id), 0);
	assert_int_equal(corio_loop_run(loop), 0);
	assert_int_equal(d.calls, 4);
	assert_int_equal(d.res, -ECANCELED);
	assert_int_equal(d.flags & CORIO_F_MORE, 0);
	assert_int_equal(corio_async_cancel(loop, id), -ENOENT);
	close(p[0]);
	close(p[1]);
	corio_loop_destroy(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sqe_basics),
		cmocka_unit_test(async_sqe_basics),
		cmocka_unit_test(op_supported),
		cmocka_unit_test(uring_raw_ops),
		cmocka_unit_test(async_multishot),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
