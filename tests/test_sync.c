/*
 * Synchronisation between fibers: mutex (FIFO handoff, no barging, try_lock,
 * unlock by a non-owner), condition (signal, broadcast, re-acquire), event,
 * channel (rendezvous, buffered, close semantics) and wait group, with the
 * calls made outside a fiber. Deadlines and cancellation of every wait are
 * in test_deadline.c and test_cancel.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "util.h"

static int logv[256], logn;

static void log_add(int v)
{
	assert_true(logn < (int)(sizeof(logv) / sizeof(logv[0])));
	logv[logn++] = v;
}

static void log_expect(const int *want, int n)
{
	assert_int_equal(logn, n);
	for (int i = 0; i < n; i++)
		assert_int_equal(logv[i], want[i]);
}

/* ---------------------------------------------------------------- mutex */

static corio_mutex mu;

static void *locker(void *arg)
{
	int id = (int)(intptr_t)arg;

	assert_int_equal(corio_mutex_lock(&mu), 0);
	log_add(id);
	t_turns(1); /* hold it across a turn: the others keep waiting */
	log_add(id + 100);
	assert_int_equal(corio_mutex_unlock(&mu), 0);
	return NULL;
}

static void *barger(void *arg)
{
	(void)arg;
	/* Ready in the same turn as the woken waiter, but the lock was handed
	 * to that waiter: try_lock must fail. */
	log_add(corio_mutex_try_lock(&mu) == -EBUSY ? 50 : 51);
	return NULL;
}

static void *mutex_body(void *arg)
{
	corio_fiber *f[3], *b;
	const int want[] = {1, 2, 50, 102, 3, 103, 4, 104};

	(void)arg;
	corio_mutex_init(&mu);
	logn = 0;
	assert_int_equal(corio_mutex_try_lock(&mu), 0);
	assert_int_equal(corio_mutex_try_lock(&mu), -EBUSY);
	assert_int_equal(corio_mutex_unlock(&mu), 0);
	assert_int_equal(corio_mutex_unlock(&mu), -EPERM); /* not locked */

	assert_int_equal(corio_mutex_lock(&mu), 0);
	log_add(1);
	for (int i = 0; i < 3; i++)
		f[i] = t_spawn(locker, (void *)(intptr_t)(i + 2));
	t_turns(1); /* all three queue, in spawn order */
	assert_int_equal(corio_mutex_unlock(&mu), 0);
	/* Handed to fiber 2 already: we cannot take it back. */
	assert_int_equal(corio_mutex_try_lock(&mu), -EBUSY);
	b = t_spawn(barger, NULL);
	for (int i = 0; i < 3; i++)
		t_join(f[i]);
	t_join(b);
	log_expect(want, sizeof(want) / sizeof(want[0]));
	assert_int_equal(corio_mutex_try_lock(&mu), 0);
	assert_int_equal(corio_mutex_unlock(&mu), 0);
	return NULL;
}

static void mutex_fifo_handoff(void **state)
{
	(void)state;
	t_run(mutex_body, NULL);
}

static void *non_owner_unlock(void *arg)
{
	(void)arg;
	assert_int_equal(corio_mutex_unlock(&mu), -EPERM);
	assert_int_equal(corio_mutex_try_lock(&mu), -EBUSY);
	return NULL;
}

static void *mutex_errors_body(void *arg)
{
	(void)arg;
	corio_mutex_init(&mu);
	assert_int_equal(corio_mutex_lock(&mu), 0);
	t_join(t_spawn(non_owner_unlock, NULL));
	/* Still ours. */
	assert_int_equal(corio_mutex_unlock(&mu), 0);
	return NULL;
}

static void mutex_errors(void **state)
{
	corio_loop *loop;

	(void)state;
	t_run(mutex_errors_body, NULL);
	/* Outside a fiber. */
	corio_mutex_init(&mu);
	assert_int_equal(corio_mutex_lock(&mu), -EPERM);
	assert_int_equal(corio_mutex_lock_until(&mu, corio_now() + CORIO_SEC), -EPERM);
	assert_int_equal(corio_mutex_try_lock(&mu), -EPERM);
	assert_int_equal(corio_mutex_unlock(&mu), -EPERM);
	loop = t_loop();
	assert_int_equal(corio_mutex_lock(&mu), -EPERM);
	assert_int_equal(corio_mutex_try_lock(&mu), -EPERM);
	assert_int_equal(corio_mutex_unlock(&mu), -EPERM);
	corio_loop_destroy(loop);
}

/* Many fibers contend for one mutex around a yield: the critical section
 * is never shared and everybody gets in. */
static int in_cs, cs_count;

static void *contender(void *arg)
{
	for (int i = 0; i < 20; i++) {
		assert_int_equal(corio_mutex_lock(&mu), 0);
		assert_int_equal(in_cs++, 0);
		corio_yield();
		in_cs--;
		cs_count++;
		assert_int_equal(corio_mutex_unlock(&mu), 0);
		if ((intptr_t)arg % 3 == 0)
			corio_yield();
	}
	return NULL;
}

static void *contention_body(void *arg)
{
	corio_fiber *f[16];

	(void)arg;
	corio_mutex_init(&mu);
	in_cs = cs_count = 0;
	for (int i = 0; i < 16; i++)
		f[i] = t_spawn(contender, (void *)(intptr_t)i);
	for (int i = 0; i < 16; i++)
		t_join(f[i]);
	assert_int_equal(cs_count, 16 * 20);
	return NULL;
}

static void mutex_contention(void **state)
{
	(void)state;
	t_run(contention_body, NULL);
}

/* ------------------------------------------------------------ condition */

static corio_cond cv;
static int ready_count;

static void *cond_waiter(void *arg)
{
	int id = (int)(intptr_t)arg;

	assert_int_equal(corio_mutex_lock(&mu), 0);
	ready_count++;
	assert_int_equal(corio_cond_wait(&cv, &mu), 0);
	/* Holding the mutex again. */
	assert_int_equal(corio_mutex_try_lock(&mu), -EBUSY);
	log_add(id);
	assert_int_equal(corio_mutex_unlock(&mu), 0);
	return NULL;
}

static void *cond_body(void *arg)
{
	corio_fiber *f[4];
	const int want_signal[] = {1, 2};
	const int want_all[] = {1, 2, 3, 4};

	(void)arg;
	corio_mutex_init(&mu);
	corio_cond_init(&cv);
	logn = 0;
	ready_count = 0;
	/* Signal/broadcast with nobody waiting: nothing happens, nothing kept. */
	corio_cond_signal(&cv);
	corio_cond_broadcast(&cv);
	for (int i = 0; i < 4; i++)
		f[i] = t_spawn(cond_waiter, (void *)(intptr_t)(i + 1));
	t_turns(1);
	assert_int_equal(ready_count, 4);
	/* signal wakes the first waiter only, in FIFO order. */
	corio_cond_signal(&cv);
	t_turns(2);
	corio_cond_signal(&cv);
	t_turns(2);
	log_expect(want_signal, 2);
	/* The waker holds the mutex: the woken waits for it. */
	assert_int_equal(corio_mutex_lock(&mu), 0);
	corio_cond_broadcast(&cv);
	t_turns(2);
	assert_int_equal(logn, 2);
	assert_int_equal(corio_mutex_unlock(&mu), 0);
	for (int i = 0; i < 4; i++)
		t_join(f[i]);
	log_expect(want_all, 4);
	return NULL;
}

static void cond_signal_broadcast(void **state)
{
	(void)state;
	t_run(cond_body, NULL);
}

static void *cond_errors_body(void *arg)
{
	(void)arg;
	corio_mutex_init(&mu);
	corio_cond_init(&cv);
	/* Waiting without holding the mutex. */
	assert_int_equal(corio_cond_wait(&cv, &mu), -EPERM);
	assert_int_equal(corio_cond_wait_until(&cv, &mu, corio_now() + CORIO_SEC), -EPERM);
	return NULL;
}

static void cond_errors(void **state)
{
	(void)state;
	t_run(cond_errors_body, NULL);
	corio_mutex_init(&mu);
	corio_cond_init(&cv);
	assert_int_equal(corio_cond_wait(&cv, &mu), -EPERM);
	assert_int_equal(corio_cond_wait_until(&cv, &mu, corio_now() + CORIO_SEC), -EPERM);
}

/* ---------------------------------------------------------------- event */

static corio_event ev;

static void *event_waiter(void *arg)
{
	assert_int_equal(corio_event_wait(&ev), 0);
	log_add((int)(intptr_t)arg);
	return NULL;
}

static void *event_body(void *arg)
{
	corio_fiber *f[3];
	const int want[] = {1, 2, 3};

	(void)arg;
	corio_event_init(&ev);
	logn = 0;
	assert_false(corio_event_is_set(&ev));
	for (int i = 0; i < 3; i++)
		f[i] = t_spawn(event_waiter, (void *)(intptr_t)(i + 1));
	t_turns(2);
	assert_int_equal(logn, 0);
	corio_event_set(&ev); /* wakes all, in order */
	assert_true(corio_event_is_set(&ev));
	for (int i = 0; i < 3; i++)
		t_join(f[i]);
	log_expect(want, 3);
	/* Set: wait returns at once, any number of times. */
	assert_int_equal(corio_event_wait(&ev), 0);
	assert_int_equal(corio_event_wait_until(&ev, corio_now() + CORIO_SEC), 0);
	corio_event_set(&ev);
	assert_true(corio_event_is_set(&ev));
	/* Reset: waits again. */
	corio_event_reset(&ev);
	assert_false(corio_event_is_set(&ev));
	f[0] = t_spawn(event_waiter, (void *)9);
	t_turns(2);
	assert_int_equal(logn, 3);
	corio_event_set(&ev);
	corio_event_reset(&ev); /* a reset after the set does not un-wake */
	t_join(f[0]);
	assert_int_equal(logv[3], 9);
	return NULL;
}

static void event_set_reset(void **state)
{
	(void)state;
	t_run(event_body, NULL);
	corio_event_init(&ev);
	assert_int_equal(corio_event_wait(&ev), -EPERM);
	assert_int_equal(corio_event_wait_until(&ev, corio_now() + CORIO_SEC), -EPERM);
}

/* -------------------------------------------------------------- channel */

static corio_chan ch;

static void *chan_sender(void *arg)
{
	int base = (int)(intptr_t)arg;

	for (int i = 0; i < 5; i++) {
		int v = base + i;

		assert_int_equal(corio_chan_send(&ch, &v), 0);
		log_add(-(base + i)); /* after the send returned */
	}
	return NULL;
}

static void *rendezvous_body(void *arg)
{
	corio_fiber *s;
	int v = 0;

	(void)arg;
	logn = 0;
	assert_int_equal(corio_chan_init(&ch, sizeof(int), 0), 0);
	assert_int_equal(corio_chan_try_send(&ch, &v), -EAGAIN);
	assert_int_equal(corio_chan_try_recv(&ch, &v), -EAGAIN);
	assert_int_equal(corio_chan_len(&ch), 0);
	s = t_spawn(chan_sender, (void *)10);
	t_turns(3);
	/* The sender waits for a receiver: nothing got through. */
	assert_int_equal(logn, 0);
	assert_int_equal(corio_chan_len(&ch), 0);
	for (int i = 0; i < 5; i++) {
		assert_int_equal(corio_chan_recv(&ch, &v), 0);
		assert_int_equal(v, 10 + i);
	}
	t_join(s);
	assert_int_equal(logn, 5);
	/* A parked receiver gets a try_send directly. */
	s = t_spawn(chan_sender, (void *)20);
	assert_int_equal(corio_chan_recv(&ch, &v), 0);
	assert_int_equal(v, 20);
	for (int i = 1; i < 5; i++) {
		assert_int_equal(corio_chan_recv(&ch, &v), 0);
		assert_int_equal(v, 20 + i);
	}
	t_join(s);
	corio_chan_destroy(&ch);
	return NULL;
}

static void chan_rendezvous(void **state)
{
	(void)state;
	t_run(rendezvous_body, NULL);
}

static void *try_sender(void *arg)
{
	int v = 77;

	(void)arg;
	assert_int_equal(corio_chan_try_send(&ch, &v), 0);
	return NULL;
}

static void *chan_receiver(void *arg)
{
	int v = -1;

	(void)arg;
	assert_int_equal(corio_chan_recv(&ch, &v), 0);
	return (void *)(intptr_t)v;
}

static void *buffered_body(void *arg)
{
	corio_fiber *s, *r;
	int v;

	(void)arg;
	logn = 0;
	assert_int_equal(corio_chan_init(&ch, sizeof(int), 3), 0);
	/* A receiver parked on an empty channel takes try_send's element. */
	r = t_spawn(chan_receiver, NULL);
	t_turns(1);
	t_join(t_spawn(try_sender, NULL));
	assert_int_equal(corio_chan_len(&ch), 0);
	assert_ptr_equal(t_join(r), (void *)77);

	for (int i = 0; i < 3; i++) {
		v = i;
		assert_int_equal(corio_chan_try_send(&ch, &v), 0);
	}
	assert_int_equal(corio_chan_len(&ch), 3);
	assert_int_equal(corio_chan_try_send(&ch, &v), -EAGAIN);
	/* A sender on a full channel waits; each recv lets one element in. */
	s = t_spawn(chan_sender, (void *)100);
	t_turns(2);
	assert_int_equal(logn, 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(corio_chan_recv(&ch, &v), 0);
		assert_int_equal(v, i);
		assert_int_equal(corio_chan_len(&ch), 3); /* refilled from the sender */
		t_turns(1); /* the sender runs and parks with its next element */
	}
	for (int i = 0; i < 5; i++) {
		assert_int_equal(corio_chan_recv(&ch, &v), 0);
		assert_int_equal(v, 100 + i);
	}
	t_join(s);
	assert_int_equal(corio_chan_len(&ch), 0);
	assert_int_equal(corio_chan_try_recv(&ch, &v), -EAGAIN);
	/* Wrap around the ring a few times. */
	for (int i = 0; i < 20; i++) {
		v = 1000 + i;
		assert_int_equal(corio_chan_send(&ch, &v), 0);
		if (i % 2) {
			int a, b;

			assert_int_equal(corio_chan_try_recv(&ch, &a), 0);
			assert_int_equal(corio_chan_recv(&ch, &b), 0);
			assert_int_equal(a, 1000 + i - 1);
			assert_int_equal(b, 1000 + i);
		}
	}
	corio_chan_destroy(&ch);
	return NULL;
}

static void chan_buffered(void **state)
{
	(void)state;
	t_run(buffered_body, NULL);
}

static int close_res[4];

static void *closed_sender(void *arg)
{
	int v = 5;

	close_res[(intptr_t)arg] = corio_chan_send(&ch, &v);
	return NULL;
}

static void *closed_receiver(void *arg)
{
	int v;

	close_res[(intptr_t)arg] = corio_chan_recv(&ch, &v);
	return NULL;
}

static void *close_body(void *arg)
{
	corio_fiber *f[2];
	int v;

	(void)arg;
	/* Close drains: buffered elements first, then -EPIPE. */
	assert_int_equal(corio_chan_init(&ch, sizeof(int), 4), 0);
	for (int i = 0; i < 2; i++) {
		v = i + 1;
		assert_int_equal(corio_chan_send(&ch, &v), 0);
	}
	corio_chan_close(&ch);
	v = 9;
	assert_int_equal(corio_chan_send(&ch, &v), -EPIPE);
	assert_int_equal(corio_chan_try_send(&ch, &v), -EPIPE);
	assert_int_equal(corio_chan_recv(&ch, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(corio_chan_try_recv(&ch, &v), 0);
	assert_int_equal(v, 2);
	assert_int_equal(corio_chan_recv(&ch, &v), -EPIPE);
	assert_int_equal(corio_chan_try_recv(&ch, &v), -EPIPE);
	assert_int_equal(corio_chan_recv_until(&ch, &v, corio_now() + CORIO_SEC), -EPIPE);
	corio_chan_close(&ch); /* twice is harmless */
	corio_chan_destroy(&ch);

	/* Close wakes parked receivers and senders with -EPIPE. */
	assert_int_equal(corio_chan_init(&ch, sizeof(int), 0), 0);
	memset(close_res, 0x55, sizeof(close_res));
	f[0] = t_spawn(closed_receiver, (void *)0);
	t_turns(1);
	corio_chan_close(&ch);
	t_join(f[0]);
	assert_int_equal(close_res[0], -EPIPE);
	corio_chan_destroy(&ch);

	assert_int_equal(corio_chan_init(&ch, sizeof(int), 1), 0);
	v = 1;
	assert_int_equal(corio_chan_send(&ch, &v), 0);
	f[0] = t_spawn(closed_sender, (void *)1);
	f[1] = t_spawn(closed_sender, (void *)2);
	t_turns(1);
	corio_chan_close(&ch);
	t_join(f[0]);
	t_join(f[1]);
	assert_int_equal(close_res[1], -EPIPE);
	assert_int_equal(close_res[2], -EPIPE);
	/* The buffered element is still there; the parked ones were not. */
	assert_int_equal(corio_chan_recv(&ch, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(corio_chan_recv(&ch, &v), -EPIPE);
	corio_chan_destroy(&ch);
	return NULL;
}

static void chan_close(void **state)
{
	(void)state;
	t_run(close_body, NULL);
}

struct big {
	char bytes[100];
};

static void *chan_misc_body(void *arg)
{
	struct big in, out;

	(void)arg;
	/* Elements of any size are copied whole. */
	assert_int_equal(corio_chan_init(&ch, sizeof(struct big), 2), 0);
	t_fill(&in, sizeof(in), 3);
	assert_int_equal(corio_chan_send(&ch, &in), 0);
	memset(&in, 0, sizeof(in));
	assert_int_equal(corio_chan_recv(&ch, &out), 0);
	assert_true(t_check(&out, sizeof(out), 3));
	corio_chan_destroy(&ch);
	return NULL;
}

static void chan_misc(void **state)
{
	int v = 0;

	(void)state;
	assert_int_equal(corio_chan_init(&ch, 0, 4), -EINVAL);
	assert_int_equal(corio_chan_init(&ch, SIZE_MAX / 2, 4), -EINVAL);
	t_run(chan_misc_body, NULL);
	/* Outside a fiber: blocking calls refuse, try_ calls work. */
	assert_int_equal(corio_chan_init(&ch, sizeof(int), 1), 0);
	assert_int_equal(corio_chan_send(&ch, &v), -EPERM);
	assert_int_equal(corio_chan_send_until(&ch, &v, corio_now() + CORIO_SEC), -EPERM);
	assert_int_equal(corio_chan_recv(&ch, &v), -EPERM);
	assert_int_equal(corio_chan_recv_until(&ch, &v, corio_now() + CORIO_SEC), -EPERM);
	v = 4;
	assert_int_equal(corio_chan_try_send(&ch, &v), 0);
	v = 0;
	assert_int_equal(corio_chan_try_recv(&ch, &v), 0);
	assert_int_equal(v, 4);
	corio_chan_destroy(&ch);
}

/* ------------------------------------------------------------ waitgroup */

static corio_waitgroup wg;

static void *wg_worker(void *arg)
{
	t_turns((int)(intptr_t)arg);
	log_add((int)(intptr_t)arg);
	assert_int_equal(corio_waitgroup_done(&wg), 0);
	return NULL;
}

static void *wg_waiter(void *arg)
{
	assert_int_equal(corio_waitgroup_wait(&wg), 0);
	log_add((int)(intptr_t)arg);
	return NULL;
}

static void *wg_body(void *arg)
{
	corio_fiber *w[2];

	(void)arg;
	logn = 0;
	corio_waitgroup_init(&wg);
	/* Zero: returns at once. */
	assert_int_equal(corio_waitgroup_wait(&wg), 0);
	assert_int_equal(corio_waitgroup_done(&wg), -EINVAL);
	assert_int_equal(corio_waitgroup_add(&wg, -1), -EINVAL);
	assert_int_equal(corio_waitgroup_add(&wg, 4), 0);
	assert_int_equal(corio_waitgroup_add(&wg, -5), -EINVAL);
	w[0] = t_spawn(wg_waiter, (void *)100);
	w[1] = t_spawn(wg_waiter, (void *)101);
	for (int i = 1; i <= 4; i++)
		assert_int_equal(corio_spawn(NULL, NULL, wg_worker, (void *)(intptr_t)i,
					     &(struct corio_fiber_opts){.detached = true}),
				 0);
	assert_int_equal(corio_waitgroup_wait(&wg), 0);
	/* Every worker was done before any waiter returned. */
	assert_true(logn >= 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(logv[i], i + 1);
	t_join(w[0]);
	t_join(w[1]);
	assert_int_equal(logn, 6);
	/* Reusable. */
	assert_int_equal(corio_waitgroup_add(&wg, 2), 0);
	assert_int_equal(corio_waitgroup_add(&wg, -2), 0);
	assert_int_equal(corio_waitgroup_wait(&wg), 0);
	return NULL;
}

static void waitgroup(void **state)
{
	(void)state;
	t_run(wg_body, NULL);
	corio_waitgroup_init(&wg);
	assert_int_equal(corio_waitgroup_add(&wg, 1), 0);
	assert_int_equal(corio_waitgroup_wait(&wg), -EPERM);
	assert_int_equal(corio_waitgroup_wait_until(&wg, corio_now() + CORIO_SEC), -EPERM);
	assert_int_equal(corio_waitgroup_done(&wg), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(mutex_fifo_handoff),
		cmocka_unit_test(mutex_errors),
		cmocka_unit_test(mutex_contention),
		cmocka_unit_test(cond_signal_broadcast),
		cmocka_unit_test(cond_errors),
		cmocka_unit_test(event_set_reset),
		cmocka_unit_test(chan_rendezvous),
		cmocka_unit_test(chan_buffered),
		cmocka_unit_test(chan_close),
		cmocka_unit_test(chan_misc),
		cmocka_unit_test(waitgroup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
