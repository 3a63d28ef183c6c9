/*
 * Closing from a cancelled fiber. A close that is refused leaks the
 * descriptor (and keeps a peer waiting for an end of stream that never
 * comes), so corio_close and corio_conn_close close even when the calling
 * fiber has a cancellation pending or its loop is being destroyed; the
 * cancellation stays pending for the fiber's next call.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

static bool is_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

static void *close_cancelled(void *arg)
{
	int sv[2];

	(void)arg;
	t_socketpair(sv);
	assert_int_equal(corio_cancel(corio_self()), 0);
	assert_int_equal(corio_close(sv[0]), 0);
	assert_false(is_open(sv[0]));
	/* The cancellation was not consumed by the close. */
	assert_int_equal(corio_nop(), -ECANCELED);
	assert_int_equal(corio_nop(), 0);
	close(sv[1]);
	return NULL;
}

static void close_when_cancelled(void **state)
{
	(void)state;
	t_run(close_cancelled, NULL);
}

static void *conn_close_cancelled(void *arg)
{
	int sv[2];
	corio_conn *c;
	char b;

	(void)arg;
	t_socketpair(sv);
	assert_int_equal(corio_conn_open(&c, sv[0], NULL), 0);
	assert_int_equal(corio_cancel(corio_self()), 0);
	assert_int_equal(corio_conn_close(c), 0);
	assert_false(is_open(sv[0]));
	assert_int_equal(read(sv[1], &b, 1), 0); /* the peer sees the end */
	close(sv[1]);
	return NULL;
}

static void conn_close_when_cancelled(void **state)
{
	(void)state;
	t_run(conn_close_cancelled, NULL);
}

/* A fiber still alive when its loop is destroyed: every call it makes
 * returns -ECANCELED, but its close must still close. */
static int closing_fd = -1;

static void *wait_then_close(void *arg)
{
	corio_event *e = arg;

	assert_int_equal(corio_event_wait(e), -ECANCELED);
	assert_int_equal(corio_close(closing_fd), 0);
	return NULL;
}

static void close_during_loop_destroy(void **state)
{
	corio_loop *loop = t_loop();
	corio_event e;
	int sv[2];

	(void)state;
	corio_event_init(&e);
	t_socketpair(sv);
	closing_fd = sv[0];
	assert_int_equal(corio_spawn(NULL, loop, wait_then_close, &e,
				     &(struct corio_fiber_opts){.detached = true}), 0);
	assert_int_equal(corio_loop_run_once(loop, false), 1);
	corio_loop_destroy(loop);
	assert_false(is_open(sv[0]));
	close(sv[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(close_when_cancelled),
		cmocka_unit_test(conn_close_when_cancelled),
		cmocka_unit_test(close_during_loop_destroy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
