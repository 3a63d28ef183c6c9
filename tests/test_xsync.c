/*
 * Synchronisation across loops: xevent, xsem, xchan between fibers of two
 * pool loops, deadlines and cancellation racing cross-thread wakes, and the
 * non-blocking forms from a foreign thread, and blocking waits from a
 * thread that has no loop (a futex), with deadlines racing wakes too.
 *
 * Fibers report into plain structs; the main thread asserts after the pool
 * stopped (an assertion failing on a pool thread could not be reported).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static corio_pool *new_pool(unsigned n)
{
	return t_pool(&(struct corio_pool_opts){.nloops = n});
}

struct job {
	corio_fiber_fn fn;
	void *arg;
};

static void spawn_job(void *a)
{
	struct job *j = a;

	corio_go(j->fn, j->arg);
	free(j);
}

/* Run fn(arg) as a fiber on loop k. */
static void run_on(corio_pool *p, unsigned k, corio_fiber_fn fn, void *arg)
{
	struct job *j = malloc(sizeof(*j));

	j->fn = fn;
	j->arg = arg;
	assert_int_equal(corio_post(p, k, spawn_job, j, 0), 0);
}

static void wait_flag(_Atomic int *f, int v)
{
	while (atomic_load(f) < v)
		sched_yield();
}

/* --------------------------------------------------------------- event */

struct ev_test {
	corio_xevent ev;
	_Atomic int waiting, done;
	int res[3];
};

static void *ev_waiter(void *a)
{
	struct ev_test *t = a;

	atomic_fetch_add(&t->waiting, 1);
	t->res[0] = corio_xevent_wait(&t->ev);
	/* Already set: returns at once. */
	t->res[1] = corio_xevent_wait(&t->ev);
	corio_xevent_reset(&t->ev);
	t->res[2] = corio_xevent_wait_until(&t->ev, corio_now() + CORIO_MSEC);
	atomic_fetch_add(&t->done, 1);
	return NULL;
}

static void xevent_across_loops(void **state)
{
	corio_pool *p = new_pool(2);
	struct ev_test t = {.res = {1, 1, 1}};

	(void)state;
	corio_xevent_init(&t.ev);
	run_on(p, 1, ev_waiter, &t);
	wait_flag(&t.waiting, 1);
	/* Set from this foreign thread: the waiter may or may not be parked
	 * yet; either way it must see the event. */
	corio_xevent_set(&t.ev);
	wait_flag(&t.done, 1);
	corio_pool_destroy(p);
	assert_int_equal(t.res[0], 0);
	assert_int_equal(t.res[1], 0);
	assert_int_equal(t.res[2], -ETIMEDOUT);
	assert_false(corio_xevent_is_set(&t.ev));
}

/* ----------------------------------------------------------- semaphore */

#define PERMITS 20000

struct sem_test {
	corio_xsem sem;
	_Atomic int got, done;
	int err;
};

static void *sem_consumer(void *a)
{
	struct sem_test *t = a;

	for (int i = 0; i < PERMITS / 2; i++) {
		int err = corio_xsem_wait(&t->sem);

		if (err) {
			t->err = err;
			break;
		}
		atomic_fetch_add(&t->got, 1);
	}
	atomic_fetch_add(&t->done, 1);
	return NULL;
}

static void *sem_producer(void *a)
{
	struct sem_test *t = a;

	for (int i = 0; i < PERMITS; i++) {
		corio_xsem_post(&t->sem);
		if (i % 64 == 0)
			corio_yield();
	}
	atomic_fetch_add(&t->done, 1);
	return NULL;
}

static void xsem_permits_not_lost(void **state)
{
	corio_pool *p = new_pool(2);
	struct sem_test t = {0};

	(void)state;
	corio_xsem_init(&t.sem, 0);
	run_on(p, 0, sem_consumer, &t);
	run_on(p, 1, sem_consumer, &t);
	run_on(p, 1, sem_producer, &t);
	wait_flag(&t.done, 3);
	corio_pool_destroy(p);
	assert_int_equal(t.err, 0);
	assert_int_equal(atomic_load(&t.got), PERMITS);
	assert_int_equal(corio_xsem_value(&t.sem), 0);
	assert_int_equal(corio_xsem_try_wait(&t.sem), -EAGAIN);
	corio_xsem_post(&t.sem);
	assert_int_equal(corio_xsem_try_wait(&t.sem), 0);
}

/* Timeouts racing posts: every permit posted is either taken by a waiter
 * (wait returned 0) or still in the semaphore; none vanishes. */
struct race_test {
	corio_xsem sem;
	_Atomic int taken, done;
};

static void *timed_taker(void *a)
{
	struct race_test *t = a;

	for (int i = 0; i < 2000; i++) {
		int err = corio_xsem_wait_until(&t->sem, corio_now() + 20 * CORIO_USEC);

		if (err == 0)
			atomic_fetch_add(&t->taken, 1);
		else
			assert_int_equal(err, -ETIMEDOUT);
	}
	atomic_fetch_add(&t->done, 1);
	return NULL;
}

static void *slow_poster(void *a)
{
	struct race_test *t = a;

	for (int i = 0; i < 1000; i++) {
		corio_xsem_post(&t->sem);
		corio_sleep(10 * CORIO_USEC); /* the subject: posts spread in time */
	}
	atomic_fetch_add(&t->done, 1);
	return NULL;
}

static void xsem_timeout_race_keeps_permits(void **state)
{
	corio_pool *p = new_pool(2);
	struct race_test t = {0};

	(void)state;
	corio_xsem_init(&t.sem, 0);
	run_on(p, 0, timed_taker, &t);
	run_on(p, 1, slow_poster, &t);
	wait_flag(&t.done, 2);
	corio_pool_destroy(p);
	assert_int_equal(atomic_load(&t.taken) + corio_xsem_value(&t.sem), 1000);
}

/* ------------------------------------------------------------- channel */

struct chan_test {
	uint64_t items;
	corio_xchan ch;
	_Atomic int done;
	uint64_t received, bad, sum;
	int send_err, recv_end;
};

static void *chan_sender(void *a)
{
	struct chan_test *t = a;

	for (uint64_t i = 0; i < t->items; i++) {
		t->send_err = corio_xchan_send(&t->ch, &i);
		if (t->send_err)
			break;
	}
	corio_xchan_close(&t->ch);
	atomic_fetch_add(&t->done, 1);
	return NULL;
}

static void *chan_receiver(void *a)
{
	struct chan_test *t = a;
	uint64_t v, expect = 0;
	int err;

	while ((err = corio_xchan_recv(&t->ch, &v)) == 0) {
		if (v != expect)
			t->bad++;
		expect = v + 1;
		t->received++;
	}
	t->recv_end = err;
	atomic_fetch_add(&t->done, 1);
	return NULL;
}

/* Every handoff of a rendezvous channel may need a cross-loop wake, so it
 * gets fewer items. */
static void xchan_order(size_t cap, uint64_t items)
{
	corio_pool *p = new_pool(2);
	struct chan_test t = {.items = items};

	assert_int_equal(corio_xchan_init(&t.ch, sizeof(uint64_t), cap), 0);
	run_on(p, 1, chan_receiver, &t);
	run_on(p, 0, chan_sender, &t);
	wait_flag(&t.done, 2);
	corio_pool_destroy(p);
	assert_int_equal(t.send_err, 0);
	assert_int_equal(t.received, items);
	assert_int_equal(t.bad, 0);
	assert_int_equal(t.recv_end, -EPIPE);
	corio_xchan_destroy(&t.ch);
}

static void xchan_buffered(void **state)
{
	(void)state;
	xchan_order(64, 100000);
}

static void xchan_rendezvous(void **state)
{
	(void)state;
	xchan_order(0, 10000);
}

static void xchan_foreign_thread(void **state)
{
	corio_xchan ch;
	int v = 7, out = 0;

	(void)state;
	assert_int_equal(corio_xchan_init(&ch, sizeof(int), 1), 0);
	assert_int_equal(corio_xchan_try_recv(&ch, &out), -EAGAIN);
	assert_int_equal(corio_xchan_try_send(&ch, &v), 0);
	assert_int_equal(corio_xchan_try_send(&ch, &v), -EAGAIN);
	/* A thread without a loop may wait: full, so until the deadline. */
	assert_int_equal(corio_xchan_send_until(&ch, &v, 1), -ETIMEDOUT);
	assert_int_equal(corio_xchan_send_until(&ch, &v, corio_now() + CORIO_MSEC), -ETIMEDOUT);
	assert_int_equal(corio_xchan_try_recv(&ch, &out), 0);
	assert_int_equal(out, 7);
	corio_xchan_close(&ch);
	assert_int_equal(corio_xchan_try_send(&ch, &v), -EPIPE);
	assert_int_equal(corio_xchan_try_recv(&ch, &out), -EPIPE);
	corio_xchan_destroy(&ch);
	assert_int_equal(corio_xchan_init(&ch, 0, 1), -EINVAL);
}

/* ------------------------------------------- waits from a plain thread */

struct foreign {
	corio_xsem sem;
	corio_xevent ev;
	corio_xchan ch, rv;
	uint64_t items;
	int own_stack_res[3];
	_Atomic int done;
};

static void *fg_post(void *a)
{
	corio_xsem_post(&((struct foreign *)a)->sem);
	return NULL;
}

static void *fg_set(void *a)
{
	corio_xevent_set(&((struct foreign *)a)->ev);
	return NULL;
}

static void *fg_send(void *a)
{
	struct foreign *t = a;

	for (uint64_t i = 0; i < t->items; i++)
		assert_int_equal(corio_xchan_send(&t->ch, &i), 0);
	corio_xchan_close(&t->ch);
	return NULL;
}

static void *fg_recv(void *a)
{
	struct foreign *t = a;
	uint64_t v, expect = 0;

	while (corio_xchan_recv(&t->rv, &v) == 0)
		if (v == expect)
			expect++;
	t->items = expect; /* in order, none lost */
	atomic_store(&t->done, 1);
	return NULL;
}

/* A message runs on the loop's own stack, outside fibers: no blocking. */
static void fg_own_stack(void *a)
{
	struct foreign *t = a;
	uint64_t v = 0;

	t->own_stack_res[0] = corio_xsem_wait(&t->sem);
	t->own_stack_res[1] = corio_xevent_wait_until(&t->ev, 1);
	t->own_stack_res[2] = corio_xchan_recv(&t->ch, &v);
	atomic_store(&t->done, 1);
}

/* The test's own thread has no loop: it waits on the cross-loop objects
 * like a fiber would, blocking (a futex), woken by fibers of the pool. */
static void foreign_thread_waits(void **state)
{
	corio_pool *p = new_pool(2);
	struct foreign t = {.items = 10000};
	uint64_t v, expect = 0;

	(void)state;
	corio_xsem_init(&t.sem, 0);
	corio_xevent_init(&t.ev);
	assert_int_equal(corio_xchan_init(&t.ch, sizeof(uint64_t), 16), 0);
	assert_int_equal(corio_xchan_init(&t.rv, sizeof(uint64_t), 0), 0);
	/* Nothing there: the deadline ends the wait (past, and soon). */
	assert_int_equal(corio_xsem_wait_until(&t.sem, 1), -ETIMEDOUT);
	assert_int_equal(corio_xsem_wait_until(&t.sem, -5), -ETIMEDOUT);
	assert_int_equal(corio_xsem_wait_until(&t.sem, corio_now() + CORIO_MSEC), -ETIMEDOUT);
	assert_int_equal(corio_xevent_wait_until(&t.ev, corio_now() + CORIO_MSEC), -ETIMEDOUT);
	assert_int_equal(corio_xchan_recv_until(&t.ch, &v, corio_now() + CORIO_MSEC), -ETIMEDOUT);
	/* Woken by a fiber on a loop. */
	run_on(p, 0, fg_post, &t);
	assert_int_equal(corio_xsem_wait(&t.sem), 0);
	run_on(p, 1, fg_set, &t);
	assert_int_equal(corio_xevent_wait_until(&t.ev, corio_now() + 60 * CORIO_SEC), 0);
	/* A channel both ways: received in order from a fiber... */
	run_on(p, 0, fg_send, &t);
	while (corio_xchan_recv(&t.ch, &v) == 0)
		assert_int_equal(v, expect++);
	assert_int_equal(expect, t.items);
	/* ... and sent to one through a rendezvous channel. */
	run_on(p, 1, fg_recv, &t);
	for (v = 0; v < 1000; v++)
		assert_int_equal(corio_xchan_send(&t.rv, &v), 0);
	corio_xchan_close(&t.rv);
	wait_flag(&t.done, 1);
	assert_int_equal(t.items, 1000);
	/* On a loop's own stack, waits are refused. */
	atomic_store(&t.done, 0);
	assert_int_equal(corio_post(p, 0, fg_own_stack, &t, 0), 0);
	wait_flag(&t.done, 1);
	corio_pool_destroy(p);
	for (int i = 0; i < 3; i++)
		assert_int_equal(t.own_stack_res[i], -EPERM);
	corio_xchan_destroy(&t.ch);
	corio_xchan_destroy(&t.rv);
}

/* The plain thread's deadlines racing a fiber's posts: every permit is
 * taken or still there. */
static void foreign_timeout_race_keeps_permits(void **state)
{
	corio_pool *p = new_pool(1);
	struct race_test t = {0};

	(void)state;
	corio_xsem_init(&t.sem, 0);
	run_on(p, 0, slow_poster, &t);
	timed_taker(&t);
	wait_flag(&t.done, 2);
	corio_pool_destroy(p);
	assert_int_equal(atomic_load(&t.taken) + corio_xsem_value(&t.sem), 1000);
}

/* Cancel a fiber waiting on a cross-loop object. */
struct cancel_test {
	corio_xevent ev;
	corio_fiber *f;
	_Atomic int parked, done;
	int res;
};

static void *cancel_victim(void *a)
{
	struct cancel_test *t = a;

	t->f = corio_self();
	atomic_store(&t->parked, 1);
	t->res = corio_xevent_wait(&t->ev);
	atomic_store(&t->done, 1);
	return NULL;
}

static void *cancel_killer(void *a)
{
	struct cancel_test *t = a;

	/* Same loop as the victim, which parked before we ran. */
	corio_cancel(t->f);
	return NULL;
}

static void xevent_cancel(void **state)
{
	corio_pool *p = new_pool(1);
	struct cancel_test t = {.res = 1};

	(void)state;
	corio_xevent_init(&t.ev);
	run_on(p, 0, cancel_victim, &t);
	wait_flag(&t.parked, 1);
	run_on(p, 0, cancel_killer, &t);
	wait_flag(&t.done, 1);
	corio_pool_destroy(p);
	assert_int_equal(t.res, -ECANCELED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(xevent_across_loops),
		cmocka_unit_test(xsem_permits_not_lost),
		cmocka_unit_test(xsem_timeout_race_keeps_permits),
		cmocka_unit_test(xchan_buffered),
		cmocka_unit_test(xchan_rendezvous),
		cmocka_unit_test(xchan_foreign_thread),
		cmocka_unit_test(xevent_cancel),
		cmocka_unit_test(foreign_thread_waits),
		cmocka_unit_test(foreign_timeout_race_keeps_permits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
