/*
 * Back-pressure (DESIGN rule 3) with tiny rings (2 submission entries, 4
 * completion entries): hundreds of operations started at once, from fibers
 * and callbacks, all complete with correct results; hundreds of blocked
 * operations completing in one turn (completion-queue overflow), timing
 * out in one turn and cancelled at once (cancel requests that find the
 * submission queue full), and a destroy with all of them in the kernel. On
 * io_uring the loop's counters show that the full-queue paths were taken.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/backends.h"
#include "util.h"

#define N 300

static const struct corio_loop_opts tiny = {.sq_entries = 2, .cq_entries = 4};

static struct corio_loop_stats stats_of(corio_loop *loop)
{
	struct corio_loop_stats st;

	corio_loop_stats(loop, &st, sizeof(st));
	return st;
}

static void show(const char *what, corio_loop *loop)
{
	struct corio_loop_stats st = stats_of(loop);

	fprintf(stderr,
		"  %s: started %llu completed %llu sq_full %llu backlogged %llu "
		"cq_overflow %llu enters %llu\n",
		what, (unsigned long long)st.ops_started, (unsigned long long)st.ops_completed,
		(unsigned long long)st.sq_full, (unsigned long long)st.backlogged,
		(unsigned long long)st.cq_overflow, (unsigned long long)st.enters);
}

/* ------------------------------------------- many started at once */

static int pipes[N][2], apipes[N][2];
static int fiber_ok;

static void *busy_fiber(void *arg)
{
	int i = (int)(intptr_t)arg;
	char buf[32], want[32];

	snprintf(want, sizeof(want), "fiber-%d", i);
	assert_int_equal(corio_nop(), 0);
	assert_int_equal(corio_write(pipes[i][1], want, strlen(want), -1), (ssize_t)strlen(want));
	memset(buf, 0, sizeof(buf));
	assert_int_equal(corio_read(pipes[i][0], buf, sizeof(buf), -1), (ssize_t)strlen(want));
	assert_string_equal(buf, want);
	assert_int_equal(corio_nop(), 0);
	fiber_ok++;
	return NULL;
}

struct acb {
	int calls, res;
};

static void acb_fn(corio_loop *loop, int res, unsigned flags, void *user)
{
	struct acb *a = user;

	(void)loop;
	(void)flags;
	a->calls++;
	a->res = res;
}

static void many_at_once(void **state)
{
	corio_loop *loop = t_loop_opts(&tiny);
	static struct acb nops[N], writes[N];
	static char msgs[N][16];
	struct corio_loop_stats st;

	(void)state;
	fiber_ok = 0;
	for (int i = 0; i < N; i++) {
		t_pipe(pipes[i]);
		t_pipe(apipes[i]);
		assert_int_equal(corio_spawn(NULL, loop, busy_fiber, (void *)(intptr_t)i,
					     &(struct corio_fiber_opts){.detached = true}),
				 0);
	}
	/* And as many callbacks: started now, before any turn. */
	memset(nops, 0, sizeof(nops));
	memset(writes, 0, sizeof(writes));
	for (int i = 0; i < N; i++) {
		snprintf(msgs[i], sizeof(msgs[i]), "async-%d;", i);
		assert_true(corio_async_nop(loop, acb_fn, &nops[i]) > 0);
		assert_true(corio_async_write(loop, apipes[i][1], msgs[i], strlen(msgs[i]), -1,
					      acb_fn, &writes[i]) > 0);
	}
	assert_int_equal(corio_loop_run(loop), 0);
	assert_int_equal(fiber_ok, N);
	for (int i = 0; i < N; i++) {
		char buf[32] = {0};

		assert_int_equal(nops[i].calls, 1);
		assert_int_equal(nops[i].res, 0);
		assert_int_equal(writes[i].calls, 1);
		assert_int_equal(writes[i].res, (int)strlen(msgs[i]));
		assert_int_equal(t_readable(pipes[i][0]), 0);
		assert_int_equal(read(apipes[i][0], buf, sizeof(buf)), (ssize_t)strlen(msgs[i]));
		assert_string_equal(buf, msgs[i]);
		close(pipes[i][0]);
		close(pipes[i][1]);
		close(apipes[i][0]);
		close(apipes[i][1]);
	}
	st = stats_of(loop);
	show("many at once", loop);
	assert_int_equal(st.ops_started, st.ops_completed);
	assert_int_equal(st.ops_started, 4 * N + 2 * N);
	if (t_is_uring(loop)) {
		assert_true(st.sq_full > 0);
		assert_true(st.cq_overflow > 0);
	}
	corio_loop_destroy(loop);
}

/* ------------------------------------------ blocked, then all at once */

static int sv[N][2];
static int woke_ok;

static void *blocked_reader(void *arg)
{
	int i = (int)(intptr_t)arg;
	char buf[16];
	unsigned v = 0;

	assert_int_equal(corio_recv(sv[i][0], buf, sizeof(v), MSG_WAITALL), (ssize_t)sizeof(v));
	memcpy(&v, buf, sizeof(v));
	assert_int_equal(v, (unsigned)i * 7919u);
	woke_ok++;
	return NULL;
}

static void *waker(void *arg)
{
	(void)arg;
	/* Every reader is parked in the kernel; wake them all in one turn. */
	t_turns(3);
	for (int i = 0; i < N; i++) {
		unsigned v = (unsigned)i * 7919u;

		assert_int_equal(write(sv[i][1], &v, sizeof(v)), (ssize_t)sizeof(v));
	}
	return NULL;
}

static void *wide_body(void *arg)
{
	corio_fiber *f[N], *w;

	(void)arg;
	woke_ok = 0;
	for (int i = 0; i < N; i++) {
		t_socketpair(sv[i]);
		f[i] = t_spawn(blocked_reader, (void *)(intptr_t)i);
	}
	w = t_spawn(waker, NULL);
	for (int i = 0; i < N; i++)
		t_join(f[i]);
	t_join(w);
	assert_int_equal(woke_ok, N);
	for (int i = 0; i < N; i++) {
		close(sv[i][0]);
		close(sv[i][1]);
	}
	return NULL;
}

static void all_complete_in_one_turn(void **state)
{
	corio_loop *loop = t_loop_opts(&tiny);
	corio_fiber *f;
	struct corio_loop_stats st;

	(void)state;
	assert_int_equal(corio_spawn(&f, loop, wide_body, NULL, NULL), 0);
	assert_int_equal(corio_loop_run(loop), 0);
	t_join(f);
	st = stats_of(loop);
	show("complete in one turn", loop);
	assert_int_equal(st.ops_started, st.ops_completed);
	if (t_is_uring(loop))
		assert_true(st.cq_overflow > 0);
	corio_loop_destroy(loop);
}

/* ----------------------------- time out, cancel, destroy: all at once */

static int timed_res[N];
static int64_t shared_deadline; /* 0: none */

static void *timed_reader(void *arg)
{
	int i = (int)(intptr_t)arg;
	char buf[16];

	memset(buf, 'Z', sizeof(buf));
	timed_res[i] = (int)corio_recv_until(sv[i][0], buf, sizeof(buf), 0, shared_deadline);
	for (size_t k = 0; k < sizeof(buf); k++)
		assert_int_equal(buf[k], 'Z');
	return NULL;
}

static void *timeout_body(void *arg)
{
	corio_fiber *f[N];

	(void)arg;
	/* All with one deadline: one turn fires N timers and sends N
	 * cancellations through a 2-entry submission queue. */
	shared_deadline = corio_now() + 5 * CORIO_MSEC;
	for (int i = 0; i < N; i++) {
		t_socketpair(sv[i]);
		timed_res[i] = 1;
		f[i] = t_spawn(timed_reader, (void *)(intptr_t)i);
	}
	for (int i = 0; i < N; i++)
		t_join(f[i]);
	for (int i = 0; i < N; i++) {
		assert_int_equal(timed_res[i], -ETIMEDOUT);
		/* No operation is left reading. */
		assert_int_equal(write(sv[i][1], "late", 4), 4);
	}
	assert_int_equal(corio_nop(), 0);
	t_turns(2);
	for (int i = 0; i < N; i++) {
		assert_int_equal(t_readable(sv[i][0]), 4);
		close(sv[i][0]);
		close(sv[i][1]);
	}
	return NULL;
}

static void all_time_out_at_once(void **state)
{
	corio_loop *loop = t_loop_opts(&tiny);
	corio_fiber *f;

	(void)state;
	assert_int_equal(corio_spawn(&f, loop, timeout_body, NULL, NULL), 0);
	assert_int_equal(corio_loop_run(loop), 0);
	t_join(f);
	show("time out at once", loop);
	corio_loop_destroy(loop);
}

static void *cancel_body(void *arg)
{
	corio_fiber *f[N];

	(void)arg;
	shared_deadline = 0;
	for (int i = 0; i < N; i++) {
		t_socketpair(sv[i]);
		timed_res[i] = 1;
		f[i] = t_spawn(timed_reader, (void *)(intptr_t)i);
	}
	t_turns(1); /* all parked, most operations still queued */
	for (int i = 0; i < N; i++)
		assert_int_equal(corio_cancel(f[i]), 0);
	for (int i = 0; i < N; i++) {
		t_join(f[i]);
		assert_int_equal(timed_res[i], -ECANCELED);
		close(sv[i][0]);
		close(sv[i][1]);
	}
	return NULL;
}

static void all_cancelled_at_once(void **state)
{
	corio_loop *loop = t_loop_opts(&tiny);
	corio_fiber *f;

	(void)state;
	assert_int_equal(corio_spawn(&f, loop, cancel_body, NULL, NULL), 0);
	assert_int_equal(corio_loop_run(loop), 0);
	t_join(f);
	show("cancelled at once", loop);
	corio_loop_destroy(loop);
}

static void async_cancelled_at_once(void **state)
{
	corio_loop *loop = t_loop_opts(&tiny);
	static struct acb r[N];
	static char bufs[N][8];
	corio_req ids[N];

	(void)state;
	memset(r, 0, sizeof(r));
	for (int i = 0; i < N; i++) {
		t_socketpair(sv[i]);
		ids[i] = corio_async_recv(loop, sv[i][0], bufs[i], sizeof(bufs[i]), 0, acb_fn,
					  &r[i]);
		assert_true(ids[i] > 0);
	}
	/* Some reach the kernel, the rest wait for room. */
	assert_int_equal(corio_loop_run_once(loop, false), 1);
	for (int i = 0; i < N; i++)
		assert_int_equal(corio_async_cancel(loop, ids[i]), 0);
	assert_int_equal(corio_loop_run(loop), 0);
	for (int i = 0; i < N; i++) {
		assert_int_equal(r[i].calls, 1);
		assert_int_equal(r[i].res, -ECANCELED);
		close(sv[i][0]);
		close(sv[i][1]);
	}
	show("async cancelled at once", loop);
	corio_loop_destroy(loop);
}

static void destroy_with_all_blocked(void **state)
{
	corio_loop *loop = t_loop_opts(&tiny);

	(void)state;
	shared_deadline = 0;
	for (int i = 0; i < N; i++) {
		t_socketpair(sv[i]);
		timed_res[i] = 1;
		assert_int_equal(corio_spawn(NULL, loop, timed_reader, (void *)(intptr_t)i, NULL),
				 0);
	}
	assert_int_equal(corio_loop_run_once(loop, false), 1);
	assert_int_equal(corio_loop_run_once(loop, false), 1);
	corio_loop_destroy(loop);
	for (int i = 0; i < N; i++) {
		assert_int_equal(timed_res[i], -ECANCELED);
		assert_int_equal(write(sv[i][1], "late", 4), 4);
		assert_int_equal(t_readable(sv[i][0]), 4);
		close(sv[i][0]);
		close(sv[i][1]);
	}
}

/* The ring sizes follow the options (io_uring: a nop completes as it is
 * submitted, so the counters tell how big the queues are): with 2 SQ
 * entries, two nops fill the SQ and the loop's own read on its wake eventfd
 * (armed at the first poll, see backend/uring.c) finds it full; a CQ asked
 * for smaller than twice the SQ is raised to that, 4 here, so four
 * completions fit and a fifth overflows (the wake read stays pending). */
static int nops_then_count(const struct corio_loop_opts *o, int n, uint64_t *sq_full)
{
	corio_loop *loop = t_loop_opts(o);
	static struct acb a[16];
	struct corio_loop_stats st;

	memset(a, 0, sizeof(a));
	for (int i = 0; i < n; i++)
		assert_true(corio_async_nop(loop, acb_fn, &a[i]) > 0);
	assert_int_equal(corio_loop_run(loop), 0);
	for (int i = 0; i < n; i++)
		assert_int_equal(a[i].calls, 1);
	st = stats_of(loop);
	if (!t_is_uring(loop)) {
		corio_loop_destroy(loop);
		skip();
	}
	corio_loop_destroy(loop);
	*sq_full = st.sq_full;
	return (int)st.cq_overflow;
}

static void ring_sizes_follow_options(void **state)
{
	const struct corio_loop_opts small_cq = {.sq_entries = 2, .cq_entries = 1};
	uint64_t sq_full;

	(void)state;
	assert_int_equal(nops_then_count(&small_cq, 1, &sq_full), 0);
	assert_int_equal(sq_full, 0);
	assert_int_equal(nops_then_count(&small_cq, 2, &sq_full), 0);
	assert_int_equal(sq_full, 1);
	assert_int_equal(nops_then_count(&small_cq, 4, &sq_full), 0);
	assert_true(nops_then_count(&small_cq, 5, &sq_full) > 0);
	/* Defaults: 256 entries, no pressure from a handful. */
	assert_int_equal(nops_then_count(NULL, 16, &sq_full), 0);
	assert_int_equal(sq_full, 0);
}

/* The backlog: when the kernel will not take submissions (on 6.x kernels
 * only under memory pressure, so a test seam makes it refuse), ops wait in
 * order and go out on the next turns; none fails, none is lost. */
static void backlog_in_order(void **state)
{
	corio_loop *loop = t_loop();
	static struct acb a[50];
	struct corio_loop_stats st;
	int p[2];
	struct acb r = {0};
	char buf[8];
	corio_req id;

	(void)state;
	if (!t_is_uring(loop)) {
		corio_loop_destroy(loop);
		skip();
	}
	memset(a, 0, sizeof(a));
	corio__fault_sq_refusals = 1; /* the first op finds no room */
	for (int i = 0; i < 50; i++)
		assert_true(corio_async_nop(loop, acb_fn, &a[i]) > 0);
	st = stats_of(loop);
	assert_int_equal(st.backlogged, 50); /* all behind the first, in order */
	assert_int_equal(corio_loop_run(loop), 0);
	for (int i = 0; i < 50; i++) {
		assert_int_equal(a[i].calls, 1);
		assert_int_equal(a[i].res, 0);
	}

	/* A backlogged op cancelled: it never reaches the kernel. */
	corio__fault_sq_refusals = 1;
	id = corio_async_nop(loop, acb_fn, &a[0]);
	assert_true(id > 0);
	assert_int_equal(corio_async_cancel(loop, id), 0);
	assert_int_equal(corio_loop_run(loop), 0);
	assert_int_equal(a[0].calls, 2);
	assert_int_equal(a[0].res, -ECANCELED);

	/* A cancel that finds no room waits its turn, then works. */
	t_pipe(p);
	id = corio_async_read(loop, p[0], buf, sizeof(buf), -1, acb_fn, &r);
	assert_true(id > 0);
	assert_int_equal(corio_loop_run_once(loop, false), 1); /* the read is in the kernel */
	corio__fault_sq_refusals = 2;
	assert_int_equal(corio_async_cancel(loop, id), 0);
	assert_int_equal(corio_loop_run(loop), 0);
	assert_int_equal(r.calls, 1);
	assert_int_equal(r.res, -ECANCELED);
	assert_int_equal(corio__fault_sq_refusals, 0);
	close(p[0]);
	close(p[1]);
	corio_loop_destroy(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ring_sizes_follow_options),
		cmocka_unit_test(backlog_in_order),
		cmocka_unit_test(many_at_once),
		cmocka_unit_test(all_complete_in_one_turn),
		cmocka_unit_test(all_time_out_at_once),
		cmocka_unit_test(all_cancelled_at_once),
		cmocka_unit_test(async_cancelled_at_once),
		cmocka_unit_test(destroy_with_all_blocked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
