/*
 * Deadlines (_until variants) on every kind of wait: expiry gives
 * -ETIMEDOUT and leaves nothing behind (no timer, no operation, nothing
 * consumed); a deadline already past gives -ETIMEDOUT without starting the
 * operation; a deadline that does not expire because the wait ends first
 * returns the real result and its timer is gone.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "blockers.h"
#include "core.h"

struct run {
	const struct blocker *b;
	int64_t deadline;
	int res;
};

static void *blocker_fiber(void *arg)
{
	struct run *r = arg;

	r->res = r->b->block(r->deadline);
	r->b->check(r->res);
	return NULL;
}

static size_t timers_armed(void)
{
	return corio_loop_current()->timers.count;
}

static uint64_t ops_started(void)
{
	struct corio_loop_stats st;

	corio_loop_stats(corio_loop_current(), &st, sizeof(st));
	return st.ops_started;
}

static int run_blocker(const struct blocker *b, int64_t deadline)
{
	struct run r = {.b = b, .deadline = deadline, .res = 1};

	t_join(t_spawn(blocker_fiber, &r));
	return r.res;
}

/* ---------------------------------------------------------------- expiry */

static void *expiry_body(void *arg)
{
	(void)arg;
	fx_setup();
	for (size_t i = 0; i < nblockers; i++) {
		const struct blocker *b = &blockers[i];

		if (!strcmp(b->name, "sleep")) /* a sleep's deadline is its normal end */
			continue;
		fprintf(stderr, "  %s\n", b->name);
		assert_int_equal(run_blocker(b, corio_now() + CORIO_MSEC), -ETIMEDOUT);
		assert_int_equal(timers_armed(), 0);
	}
	fx_teardown();
	return NULL;
}

static void deadline_expires(void **state)
{
	(void)state;
	t_run(expiry_body, NULL);
}

/* ----------------------------------------------------------------- past */

static void *past_body(void *arg)
{
	(void)arg;
	fx_setup();
	for (size_t i = 0; i < nblockers; i++) {
		const struct blocker *b = &blockers[i];
		uint64_t started;

		if (!strcmp(b->name, "sleep"))
			continue;
		fprintf(stderr, "  %s\n", b->name);
		started = ops_started();
		assert_int_equal(run_blocker(b, corio_now() - 1), -ETIMEDOUT);
		if (b->io) {
			/* The check after it ran a nop; the blocked call itself
			 * never started an operation. */
			assert_true(ops_started() - started <= 1);
		}
		assert_int_equal(timers_armed(), 0);
		/* The earliest deadline there is. */
		assert_int_equal(run_blocker(b, 1), -ETIMEDOUT);
	}
	fx_teardown();
	return NULL;
}

static void deadline_past(void **state)
{
	(void)state;
	t_run(past_body, NULL);
}

/* A past deadline does not start the operation even when it would succeed
 * at once: the data stays where it is. */
static void *past_ready_body(void *arg)
{
	int p[2];
	char buf[8];
	uint64_t started;

	(void)arg;
	t_pipe(p);
	assert_int_equal(write(p[1], "ready", 5), 5);
	started = ops_started();
	assert_int_equal(corio_read_until(p[0], buf, sizeof(buf), -1, corio_now() - 1), -ETIMEDOUT);
	assert_int_equal(corio_poll_until(p[0], POLLIN, 1), -ETIMEDOUT);
	assert_int_equal(corio_nop_until(1), -ETIMEDOUT);
	assert_int_equal(corio_write_until(p[1], "x", 1, -1, 1), -ETIMEDOUT);
	assert_int_equal(ops_started(), started);
	assert_int_equal(t_readable(p[0]), 5);
	/* A deadline in the future does not get in the way. */
	assert_int_equal(corio_read_until(p[0], buf, sizeof(buf), -1, corio_now() + CORIO_SEC), 5);
	assert_int_equal(corio_nop_until(corio_now() + CORIO_SEC), 0);
	assert_int_equal(timers_armed(), 0);
	close(p[0]);
	close(p[1]);
	return NULL;
}

static void deadline_past_ready(void **state)
{
	(void)state;
	t_run(past_ready_body, NULL);
}

/* The TCP helpers keep the same rules: a past deadline starts nothing (no
 * socket is made, no byte sent), a future one does not get in the way. */
static void *net_calls_body(void *arg)
{
	int port, lfd = t_listen_tcp(&port), fd, sfd;
	uint64_t started = ops_started();
	char buf[8];

	(void)arg;
	assert_int_equal(corio_dial_tcp_until("127.0.0.1", port, corio_now() - 1), -ETIMEDOUT);
	assert_int_equal(ops_started(), started);
	fd = corio_dial_tcp_until("127.0.0.1", port, corio_now() + CORIO_SEC);
	assert_true(fd >= 0);
	sfd = corio_accept_until(lfd, NULL, NULL, 0, corio_now() + CORIO_SEC);
	assert_true(sfd >= 0);
	started = ops_started();
	assert_int_equal(corio_send_all_until(fd, "abc", 3, corio_now() - 1), -ETIMEDOUT);
	assert_int_equal(ops_started(), started);
	assert_int_equal(corio_send_all_until(fd, "abc", 3, corio_now() + CORIO_SEC), 3);
	assert_int_equal(corio_recv_until(sfd, buf, 3, MSG_WAITALL, corio_now() + CORIO_SEC), 3);
	assert_memory_equal(buf, "abc", 3);
	assert_int_equal(timers_armed(), 0);
	close(sfd);
	close(fd);
	close(lfd);
	return NULL;
}

static void deadline_net_calls(void **state)
{
	(void)state;
	t_run(net_calls_body, NULL);
}

/* ------------------------------------------------- completes in time */

static void *in_time_body(void *arg)
{
	(void)arg;
	fx_setup();
	for (size_t i = 0; i < nblockers; i++) {
		const struct blocker *b = &blockers[i];
		struct run r = {.b = b, .deadline = corio_now() + 3600 * CORIO_SEC, .res = 1};
		corio_fiber *f;

		if (!b->satisfy)
			continue;
		fprintf(stderr, "  %s\n", b->name);
		f = t_spawn(blocker_fiber, &r);
		t_turns(2); /* it parks; an operation reaches the kernel */
		assert_int_equal(r.res, 1);
		assert_int_equal(timers_armed(), 1);
		b->satisfy();
		t_join(f);
		assert_true(r.res >= 0);
		/* The deadline went with the wait. */
		assert_int_equal(timers_armed(), 0);
		b->restore();
	}
	fx_teardown();
	return NULL;
}

static void deadline_not_reached(void **state)
{
	(void)state;
	t_run(in_time_body, NULL);
}

/* An expired call leaves the fiber fully usable: the next calls, with or
 * without deadlines, behave normally. */
static void *after_timeout_body(void *arg)
{
	int sv[2];
	char buf[16];

	(void)arg;
	t_socketpair(sv);
	for (int i = 0; i < 50; i++) {
		int64_t soon = corio_now() + 100 * CORIO_USEC;

		assert_int_equal(corio_recv_until(sv[0], buf, sizeof(buf), 0, soon), -ETIMEDOUT);
		assert_int_equal(write(sv[1], "abc", 3), 3);
		assert_int_equal(corio_recv_until(sv[0], buf, sizeof(buf), 0, soon + CORIO_SEC), 3);
		assert_memory_equal(buf, "abc", 3);
	}
	assert_int_equal(corio_sleep(0), 0);
	assert_int_equal(timers_armed(), 0);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

static void usable_after_timeout(void **state)
{
	(void)state;
	t_run(after_timeout_body, NULL);
}

/* Many fibers time out in the same turn. */
struct many {
	int sv[2];
	int64_t deadline;
	int res;
};

static void *many_fiber(void *arg)
{
	struct many *m = arg;
	char buf[8];

	m->res = (int)corio_recv_until(m->sv[0], buf, sizeof(buf), 0, m->deadline);
	return NULL;
}

static void *many_body(void *arg)
{
	static struct many m[64];
	corio_fiber *f[64];
	int64_t dl = corio_now() + 2 * CORIO_MSEC;

	(void)arg;
	for (int i = 0; i < 64; i++) {
		t_socketpair(m[i].sv);
		m[i].deadline = dl;
		m[i].res = 1;
		f[i] = t_spawn(many_fiber, &m[i]);
	}
	for (int i = 0; i < 64; i++) {
		t_join(f[i]);
		assert_int_equal(m[i].res, -ETIMEDOUT);
		close(m[i].sv[0]);
		close(m[i].sv[1]);
	}
	assert_int_equal(timers_armed(), 0);
	return NULL;
}

static void many_same_deadline(void **state)
{
	(void)state;
	t_run(many_body, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(deadline_expires),
		cmocka_unit_test(deadline_past),
		cmocka_unit_test(deadline_past_ready),
		cmocka_unit_test(deadline_net_calls),
		cmocka_unit_test(deadline_not_reached),
		cmocka_unit_test(usable_after_timeout),
		cmocka_unit_test(many_same_deadline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
