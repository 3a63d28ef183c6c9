/*
 * Description: backend selection and what each backend can run. Every
 * operation corio offers runs on both; on epoll, what has no epoll
 * equivalent (fixed buffers and files, provided buffers, multishot,
 * zero-copy send, linked SQEs, uring_cmd, unknown opcodes) is reported by
 * corio_op_supported() and fails with -EOPNOTSUPP, on the fiber and the
 * callback API alike (multishot forms on the callback API, the only one
 * that takes them), without ever reaching the kernel.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

static bool on_epoll(corio_loop *loop)
{
	return !strcmp(corio_loop_backend(loop), "epoll");
}

/* The opcodes corio's own calls use. */
static const int corio_ops[] = {
	IORING_OP_NOP,	    IORING_OP_READ,	IORING_OP_WRITE,    IORING_OP_READV,
	IORING_OP_WRITEV,   IORING_OP_FSYNC,	IORING_OP_OPENAT,   IORING_OP_CLOSE,
	IORING_OP_STATX,    IORING_OP_FALLOCATE, IORING_OP_UNLINKAT, IORING_OP_RENAMEAT,
	IORING_OP_MKDIRAT,  IORING_OP_SOCKET,	IORING_OP_ACCEPT,   IORING_OP_CONNECT,
	IORING_OP_RECV,	    IORING_OP_SEND,	IORING_OP_RECVMSG,  IORING_OP_SENDMSG,
	IORING_OP_SHUTDOWN, IORING_OP_POLL_ADD,
};

/* Opcodes with no epoll equivalent (docs/BACKENDS.md lists them). */
static const int epoll_refuses[] = {
	IORING_OP_READ_FIXED,	 IORING_OP_WRITE_FIXED,	   IORING_OP_POLL_REMOVE,
	IORING_OP_SYNC_FILE_RANGE, IORING_OP_TIMEOUT,	   IORING_OP_TIMEOUT_REMOVE,
	IORING_OP_ASYNC_CANCEL,	 IORING_OP_LINK_TIMEOUT,   IORING_OP_FILES_UPDATE,
	IORING_OP_FADVISE,	 IORING_OP_MADVISE,	   IORING_OP_OPENAT2,
	IORING_OP_EPOLL_CTL,	 IORING_OP_SPLICE,	   IORING_OP_PROVIDE_BUFFERS,
	IORING_OP_REMOVE_BUFFERS, IORING_OP_TEE,	   IORING_OP_SYMLINKAT,
	IORING_OP_LINKAT,	 IORING_OP_MSG_RING,	   IORING_OP_FSETXATTR,
	IORING_OP_SETXATTR,	 IORING_OP_FGETXATTR,	   IORING_OP_GETXATTR,
	IORING_OP_URING_CMD,	 IORING_OP_SEND_ZC,	   IORING_OP_SENDMSG_ZC,
	250, /* unknown (not IORING_OP_LAST: newer kernels give it a meaning) */
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void names(void **state)
{
	const char *env = getenv("CORIO_BACKEND");
	corio_loop *loop = t_loop();

	(void)state;
	if (env && !strcmp(env, "epoll"))
		assert_string_equal(corio_loop_backend(loop), "epoll");
	if (env && !strcmp(env, "uring"))
		assert_string_equal(corio_loop_backend(loop), "io_uring");
	corio_loop_destroy(loop);
}

/* The option wins over the environment. */
static void forced_by_option(void **state)
{
	struct corio_loop_opts o = {.backend = CORIO_BACKEND_EPOLL};
	const char *env = getenv("CORIO_BACKEND");
	char *saved = env ? strdup(env) : NULL;
	corio_loop *loop;

	(void)state;
	setenv("CORIO_BACKEND", "uring", 1);
	assert_int_equal(corio_loop_create(&loop, &o), 0);
	assert_string_equal(corio_loop_backend(loop), "epoll");
	corio_loop_destroy(loop);
	setenv("CORIO_BACKEND", "bogus", 1);
	assert_int_equal(corio_loop_create(&loop, &o), 0);
	corio_loop_destroy(loop);
	/* Without the option, a wrong value is an error, not a guess. */
	assert_int_equal(corio_loop_create(&loop, NULL), -EINVAL);
	if (saved)
		setenv("CORIO_BACKEND", saved, 1);
	else
		unsetenv("CORIO_BACKEND");
	free(saved);
}

static void supported(void **state)
{
	corio_loop *loop = t_loop();

	(void)state;
	for (size_t i = 0; i < N(corio_ops); i++)
		assert_true(corio_op_supported(loop, corio_ops[i]));
	/* The calling thread's loop when NULL. */
	assert_true(corio_op_supported(NULL, IORING_OP_NOP));
	assert_false(corio_op_supported(loop, 250));
	assert_false(corio_op_supported(loop, -1));
	if (on_epoll(loop)) {
		for (size_t i = 0; i < N(epoll_refuses); i++)
			assert_false(corio_op_supported(loop, epoll_refuses[i]));
	}
	corio_loop_destroy(loop);
}

/* Multishot forms: only the callback API takes them. */
static void multishot_sqes(struct io_uring_sqe *v, int *n, int fd, void *buf)
{
	*n = 0;
	io_uring_prep_multishot_accept(&v[(*n)++], fd, NULL, NULL, 0);
	io_uring_prep_recv_multishot(&v[(*n)++], fd, buf, 1, 0);
	io_uring_prep_poll_multishot(&v[(*n)++], fd, POLLIN);
}

/* SQEs epoll must refuse though their opcode is supported. */
static void refused_sqes(struct io_uring_sqe *v, int *n, int fd, void *buf)
{
	struct io_uring_sqe *s;

	*n = 0;
	s = &v[(*n)++];
	io_uring_prep_recv(s, fd, buf, 1, 0);
	s->flags |= IOSQE_BUFFER_SELECT;
	s = &v[(*n)++];
	io_uring_prep_read(s, 0, buf, 1, 0);
	s->flags |= IOSQE_FIXED_FILE;
	s = &v[(*n)++];
	io_uring_prep_nop(s);
	s->flags |= IOSQE_IO_DRAIN;
	s = &v[(*n)++];
	io_uring_prep_accept_direct(s, fd, NULL, NULL, 0, 0);
	s = &v[(*n)++];
	io_uring_prep_openat_direct(s, AT_FDCWD, "/dev/null", O_RDONLY, 0, 0);
	s = &v[(*n)++];
	io_uring_prep_close_direct(s, 0);
	s = &v[(*n)++];
	io_uring_prep_send(s, fd, buf, 1, 0);
	s->ioprio |= IORING_RECVSEND_FIXED_BUF;
}

static void *unsupported_body(void *arg)
{
	struct io_uring_sqe v[16], s;
	char buf[8];
	int sv[2], n;

	(void)arg;
	t_socketpair(sv);
	memset(&s, 0, sizeof(s));
	/* Unknown on both backends. */
	s.opcode = 250;
	assert_int_equal(corio_sqe(&s), -EOPNOTSUPP);
	if (on_epoll(corio_loop_current())) {
		for (size_t i = 0; i < N(epoll_refuses); i++) {
			memset(&s, 0, sizeof(s));
			s.opcode = (uint8_t)epoll_refuses[i];
			s.fd = sv[0];
			assert_int_equal(corio_sqe(&s), -EOPNOTSUPP);
		}
		memset(v, 0, sizeof(v));
		refused_sqes(v, &n, sv[0], buf);
		for (int i = 0; i < n; i++)
			assert_int_equal(corio_sqe(&v[i]), -EOPNOTSUPP);
		/* None of them touched the socket. */
		assert_int_equal(corio_send(sv[1], "k", 1, 0), 1);
		assert_int_equal(corio_recv(sv[0], buf, sizeof(buf), 0), 1);
	}
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

static void unsupported_fiber(void **state)
{
	(void)state;
	t_run(unsupported_body, NULL);
}

static bool starting;

struct cb {
	int res;
	int calls;
	bool inside;
};

static void on_done(corio_loop *loop, int res, unsigned flags, void *user)
{
	struct cb *c = user;

	(void)loop;
	(void)flags;
	c->res = res;
	c->calls++;
	c->inside = starting;
}

/* The callback API: -EOPNOTSUPP through the callback, from the loop, once
 * (also for multishot forms, which would otherwise complete many times). */
static void unsupported_async(void **state)
{
	corio_loop *loop = t_loop();
	struct io_uring_sqe s, v[4];
	struct cb c = {0}, m[4];
	char buf[4];
	int sv[2], n;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.opcode = on_epoll(loop) ? IORING_OP_READ_FIXED : 250;
	starting = true;
	assert_true(corio_async_sqe(loop, &s, on_done, &c) > 0);
	starting = false;
	assert_int_equal(c.calls, 0);
	assert_int_equal(corio_loop_run(loop), 0);
	assert_int_equal(c.calls, 1);
	assert_false(c.inside);
	assert_int_equal(c.res, -EOPNOTSUPP);
	if (on_epoll(loop)) {
		t_socketpair(sv);
		memset(v, 0, sizeof(v));
		multishot_sqes(v, &n, sv[0], buf);
		for (int i = 0; i < n; i++) {
			m[i] = (struct cb){0};
			assert_true(corio_async_sqe(loop, &v[i], on_done, &m[i]) > 0);
		}
		assert_int_equal(corio_loop_run(loop), 0);
		for (int i = 0; i < n; i++) {
			assert_int_equal(m[i].calls, 1);
			assert_int_equal(m[i].res, -EOPNOTSUPP);
		}
		close(sv[0]);
		close(sv[1]);
	}
	corio_loop_destroy(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(names),
		cmocka_unit_test(forced_by_option),
		cmocka_unit_test(supported),
		cmocka_unit_test(unsupported_fiber),
		cmocka_unit_test(unsupported_async),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
