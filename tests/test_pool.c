/*
 * The pool: messages between loops and from foreign threads, calls, order,
 * back-pressure, stopping with messages in flight, joining and leaving,
 * pinning, and the wake counters of rule 5 (elided towards a busy loop,
 * polling or not; sent as MSG_RING between io_uring loops).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "pool/inbox.h" /* the inbox's sleeping word */
#include "util.h"

static corio_pool *new_pool(unsigned n, const enum corio_loop_mode *modes)
{
	corio_pool *p = t_pool(&(struct corio_pool_opts){.nloops = n, .modes = modes});

	assert_int_equal(corio_pool_nloops(p), n);
	return p;
}

/* ---------------------------------------------------- order, no loss */

#define SENDERS 2
#define PER_SENDER 1000000

struct order_state {
	uint64_t next[SENDERS]; /* next sequence expected per sender (loop 0 only) */
	uint64_t got;
	uint64_t bad;
	_Atomic int done;
};

static struct order_state order;

static void on_ordered(void *arg)
{
	uintptr_t v = (uintptr_t)arg;
	unsigned sender = v & 1;
	uint64_t seq = v >> 1;

	if (seq != order.next[sender])
		order.bad++;
	order.next[sender] = seq + 1;
	if (++order.got == (uint64_t)SENDERS * PER_SENDER)
		atomic_store(&order.done, 1);
}

struct sender_arg {
	corio_pool *pool;
	unsigned id;
};

static void *sender_thread(void *a)
{
	struct sender_arg *s = a;

	for (uint64_t i = 0; i < PER_SENDER; i++) {
		int err = corio_post(s->pool, 0, on_ordered, (void *)(uintptr_t)(i << 1 | s->id), 0);

		assert_int_equal(err, 0); /* blocking post: never -EAGAIN */
	}
	return NULL;
}

static void order_and_no_loss(void **state)
{
	corio_pool *p = new_pool(1, NULL);
	pthread_t t[SENDERS];
	struct sender_arg a[SENDERS];

	(void)state;
	memset(&order, 0, sizeof(order));
	for (unsigned i = 0; i < SENDERS; i++) {
		a[i] = (struct sender_arg){p, i};
		assert_int_equal(pthread_create(&t[i], NULL, sender_thread, &a[i]), 0);
	}
	for (unsigned i = 0; i < SENDERS; i++)
		pthread_join(t[i], NULL);
	/* Every message was accepted; stopping runs what is still queued. */
	corio_pool_destroy(p);
	assert_int_equal(order.got, (uint64_t)SENDERS * PER_SENDER);
	assert_int_equal(order.bad, 0);
}

/* -------------------------------------------------------------- calls */

static void *where_am_i(void *arg)
{
	(void)arg;
	return (void *)(intptr_t)corio_pool_index();
}

struct call_test {
	corio_pool *pool;
	int results[4];
	int err;
	_Atomic int done;
};

static void *caller_fiber(void *a)
{
	struct call_test *t = a;
	void *res[8];
	void *r = NULL;

	t->err = corio_call(t->pool, 1, where_am_i, NULL, &r);
	t->results[0] = (int)(intptr_t)r;
	t->err |= corio_call(t->pool, 0, where_am_i, NULL, &r); /* own loop: inline */
	t->results[1] = (int)(intptr_t)r;
	t->err |= corio_call_all(t->pool, where_am_i, NULL, res);
	t->results[2] = (int)(intptr_t)res[0];
	t->results[3] = (int)(intptr_t)res[1];
	atomic_store(&t->done, 1);
	return NULL;
}

static void spawn_caller(void *a)
{
	assert_int_equal(corio_spawn(NULL, NULL, caller_fiber, a, &(struct corio_fiber_opts){.detached = true}), 0);
}

static void calls(void **state)
{
	corio_pool *p = new_pool(2, NULL);
	struct call_test t = {.pool = p};

	(void)state;
	assert_int_equal(corio_post(p, 0, spawn_caller, &t, 0), 0);
	while (!atomic_load(&t.done)) /* before stopping, which would cancel it */
		sched_yield();
	corio_pool_destroy(p);
	assert_int_equal(t.err, 0);
	assert_int_equal(t.results[0], 1);
	assert_int_equal(t.results[1], 0);
	assert_int_equal(t.results[2], 0);
	assert_int_equal(t.results[3], 1);
}

/* Errors: no such loop, bad args, not in a fiber. */
static void call_errors(void **state)
{
	corio_pool *p = new_pool(1, NULL);
	corio_call_req c;

	(void)state;
	assert_int_equal(corio_post(p, 99, spawn_caller, NULL, 0), -EINVAL);
	assert_int_equal(corio_post(p, 0, NULL, NULL, 0), -EINVAL);
	/* A joinable slot nobody joined: no loop there. */
	assert_int_equal(corio_post(p, 1, spawn_caller, NULL, 0), -EINVAL);
	assert_int_equal(corio_call_start(&c, p, 0, where_am_i, NULL), -EPERM);
	corio_pool_destroy(p);
}

/* --------------------------------------------------- calls in a fiber */

/*
 * corio_call_fiber: fn runs in a fiber of its own on the target and may
 * block. From a fiber and from this (loopless) thread; to another loop and
 * to the caller's own; with deadlines and cancellation, which cancel the
 * target fiber and still wait for it; memory written on either side is seen
 * on the other; deadlines racing the ends of many calls.
 */
struct cf {
	corio_pool *pool;
	int shared;
	int res[8];
	void *out[8];
	int seen_after;
	_Atomic int done;
};

/* Blocks (a sleep), then reports its loop; checks the caller's write and
 * leaves one for the caller. */
static void *cf_sleepy(void *a)
{
	struct cf *t = a;
	int seen = t->shared;

	if (corio_sleep(CORIO_MSEC))
		return (void *)-1;
	t->shared = seen + 1;
	return (void *)(intptr_t)(corio_pool_index() + 100);
}

/* Sleeps until cancelled: returns what the sleep returned. */
static void *cf_forever(void *a)
{
	(void)a;
	return (void *)(intptr_t)corio_sleep(INT64_MAX);
}

static bool null_or_cancelled(void *out)
{
	return out == NULL || (intptr_t)out == -ECANCELED;
}

static void *cf_victim(void *a)
{
	struct cf *t = a;

	t->res[6] = corio_call_fiber(t->pool, 1, cf_forever, NULL, &t->out[6]);
	return NULL;
}

static void *cf_caller(void *a)
{
	struct cf *t = a;
	corio_fiber *v;

	t->shared = 41;
	t->res[0] = corio_call_fiber(t->pool, 1, cf_sleepy, t, &t->out[0]);
	t->seen_after = t->shared;
	t->res[1] = corio_call_fiber(t->pool, 0, cf_sleepy, t, &t->out[1]); /* own loop */
	t->res[2] = corio_call_fiber_until(t->pool, 1, cf_forever, NULL, &t->out[2],
					   corio_now() + 10 * CORIO_MSEC);
	t->res[3] = corio_call_fiber_until(t->pool, 1, cf_forever, NULL, &t->out[3], 1);
	t->res[4] = corio_call_fiber(t->pool, 9, cf_sleepy, t, NULL);
	t->res[5] = corio_call_fiber(t->pool, 1, NULL, t, NULL);
	/* Cancelling the caller cancels fn, and the call waits for its end. */
	assert_int_equal(corio_spawn(&v, NULL, cf_victim, t, NULL), 0);
	t_turns(3);
	corio_cancel(v);
	corio_join(v, NULL);
	atomic_store(&t->done, 1);
	return NULL;
}

static void cf_spawn(void *a)
{
	corio_go(cf_caller, a);
}

/* A message runs on the loop's own stack: it must not wait. */
static void cf_own_stack(void *a)
{
	struct cf *t = a;

	t->res[7] = corio_call_fiber(t->pool, 1, cf_sleepy, t, NULL);
	atomic_store(&t->done, 1);
}

static void call_fiber(void **state)
{
	corio_pool *p = new_pool(2, NULL);
	struct cf t = {.pool = p}, m = {.pool = p};
	void *out = NULL;

	(void)state;
	assert_int_equal(corio_post(p, 0, cf_spawn, &t, 0), 0);
	/* Meanwhile, from this thread, which has no loop. */
	m.shared = 7;
	assert_int_equal(corio_call_fiber(p, 1, cf_sleepy, &m, &out), 0);
	assert_int_equal((intptr_t)out, 101);
	assert_int_equal(m.shared, 8);
	out = (void *)1;
	assert_int_equal(corio_call_fiber_until(p, 0, cf_forever, NULL, &out,
						corio_now() + 10 * CORIO_MSEC),
			 -ETIMEDOUT);
	assert_true(null_or_cancelled(out));
	while (!atomic_load(&t.done))
		sched_yield();
	assert_int_equal(corio_post(p, 0, cf_own_stack, &m, 0), 0);
	while (!atomic_load(&m.done))
		sched_yield();
	assert_int_equal(corio_pool_stop(p), 0);
	assert_int_equal(corio_call_fiber(p, 0, cf_sleepy, &m, NULL), -ESHUTDOWN);
	corio_pool_destroy(p);

	assert_int_equal(t.res[0], 0);
	assert_int_equal((intptr_t)t.out[0], 101);
	assert_int_equal(t.seen_after, 42);
	assert_int_equal(t.res[1], 0);
	assert_int_equal((intptr_t)t.out[1], 100);
	assert_int_equal(t.res[2], -ETIMEDOUT);
	assert_true(null_or_cancelled(t.out[2]));
	assert_int_equal(t.res[3], -ETIMEDOUT);
	assert_true(null_or_cancelled(t.out[3]));
	assert_int_equal(t.res[4], -EINVAL);
	assert_int_equal(t.res[5], -EINVAL);
	assert_int_equal(t.res[6], -ECANCELED);
	assert_true(null_or_cancelled(t.out[6]));
	assert_int_equal(m.res[7], -EPERM);
}

/* Deadlines racing the ends of calls, from a fiber and from this thread at
 * once: every call returns 0 with fn's result, or -ETIMEDOUT with fn's
 * result or nothing; none hangs, none touches freed memory. */
struct cf_race {
	corio_pool *pool;
	unsigned rounds;
	int bad;
	_Atomic int done;
};

static void *cf_short(void *a)
{
	int err = corio_sleep((int64_t)(uintptr_t)a * CORIO_USEC);

	return (void *)(intptr_t)(err ? err : 1);
}

static int cf_race_round(corio_pool *p, unsigned k, unsigned i)
{
	void *out = NULL;
	int res = corio_call_fiber_until(p, k, cf_short, (void *)(uintptr_t)(i % 40), &out,
					 corio_now() + 20 * CORIO_USEC);

	if (res == 0)
		return (intptr_t)out == 1 ? 0 : 1;
	if (res == -ETIMEDOUT)
		return out == NULL || (intptr_t)out == 1 || (intptr_t)out == -ECANCELED ? 0 : 1;
	return 1;
}

static void *cf_race_fiber(void *a)
{
	struct cf_race *t = a;

	for (unsigned i = 0; i < t->rounds; i++)
		t->bad += cf_race_round(t->pool, 1, i);
	atomic_store(&t->done, 1);
	return NULL;
}

static void cf_race_spawn(void *a)
{
	corio_go(cf_race_fiber, a);
}

static void call_fiber_deadline_race(void **state)
{
	corio_pool *p = new_pool(2, NULL);
	struct cf_race t = {.pool = p, .rounds = t_under_valgrind() ? 300 : 2000};
	int bad = 0;

	(void)state;
	assert_int_equal(corio_post(p, 0, cf_race_spawn, &t, 0), 0);
	for (unsigned i = 0; i < t.rounds; i++)
		bad += cf_race_round(p, i % 2, i);
	while (!atomic_load(&t.done))
		sched_yield();
	corio_pool_destroy(p);
	assert_int_equal(bad, 0);
	assert_int_equal(t.bad, 0);
}

/* ------------------------------------------------ stopping mid-flight */

static _Atomic uint64_t ran;

static void count_msg(void *arg)
{
	(void)arg;
	atomic_fetch_add(&ran, 1);
}

static void *flood_thread(void *a)
{
	corio_pool *p = a;
	uint64_t accepted = 0;

	for (;;) {
		int err = corio_post(p, accepted & 1, count_msg, NULL, CORIO_POST_NOWAIT);

		if (err == -ESHUTDOWN)
			break;
		assert_true(err == 0 || err == -EAGAIN);
		if (err == 0)
			accepted++;
	}
	return (void *)(uintptr_t)accepted;
}

static void stop_with_messages_in_flight(void **state)
{
	corio_pool *p = new_pool(2, NULL);
	pthread_t t[2];
	void *acc[2];

	(void)state;
	atomic_store(&ran, 0);
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, flood_thread, p), 0);
	/* Stop while the floods run: each message accepted must run. */
	while (atomic_load(&ran) < 100000)
		sched_yield();
	assert_int_equal(corio_pool_stop(p), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], &acc[i]);
	assert_int_equal(atomic_load(&ran), (uintptr_t)acc[0] + (uintptr_t)acc[1]);
	assert_int_equal(corio_post(p, 0, count_msg, NULL, 0), -ESHUTDOWN);
	corio_pool_destroy(p);
}

/* A fiber calls a loop that stops: it gets an error or its result, and the
 * stop does not hang. */
struct stopping_call {
	corio_pool *pool;
	_Atomic int started;
	int ok, shutdown, cancelled;
};

static void *busy_caller(void *a)
{
	struct stopping_call *s = a;

	atomic_store(&s->started, 1);
	for (;;) {
		int err = corio_call(s->pool, 1, where_am_i, NULL, NULL);

		if (err == 0) {
			s->ok++;
		} else if (err == -ESHUTDOWN) {
			s->shutdown++;
			break;
		} else {
			assert_int_equal(err, -ECANCELED);
			s->cancelled++;
			break;
		}
	}
	return NULL;
}

static void spawn_busy_caller(void *a)
{
	corio_go(busy_caller, a);
}

static void call_to_stopping_loop(void **state)
{
	corio_pool *p = new_pool(2, NULL);
	struct stopping_call s = {.pool = p};

	(void)state;
	assert_int_equal(corio_post(p, 0, spawn_busy_caller, &s, 0), 0);
	while (!atomic_load(&s.started))
		sched_yield();
	assert_int_equal(corio_pool_stop(p), 0);
	assert_int_equal(s.shutdown + s.cancelled, 1);
	corio_pool_destroy(p);
}

/* ---------------------------------------------------- join and leave */

struct joined {
	corio_pool *pool;
	unsigned index;
	_Atomic int ready, got, leave;
};

static void joined_msg(void *a)
{
	struct joined *j = a;

	atomic_fetch_add(&j->got, 1);
}

static void *joiner_thread(void *a)
{
	struct joined *j = a;
	corio_loop *loop;

	assert_int_equal(corio_pool_join(j->pool, &loop, &j->index), 0);
	assert_ptr_equal(corio_loop_current(), loop);
	assert_int_equal(corio_pool_index(), (int)j->index);
	atomic_store(&j->ready, 1);
	while (!atomic_load(&j->leave) || atomic_load(&j->got) < 1000)
		assert_true(corio_loop_run_once(loop, true) >= 0);
	assert_int_equal(corio_pool_leave(j->pool), 0);
	assert_null(corio_loop_current());
	return NULL;
}

static void join_and_leave(void **state)
{
	corio_pool *p = new_pool(1, NULL);
	struct joined j = {.pool = p};
	pthread_t t;

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, joiner_thread, &j), 0);
	while (!atomic_load(&j.ready))
		sched_yield();
	assert_true(j.index >= corio_pool_nloops(p));
	for (int i = 0; i < 1000; i++)
		assert_int_equal(corio_post(p, j.index, joined_msg, &j, 0), 0);
	atomic_store(&j.leave, 1);
	/* Wake it in case it sleeps with everything done. */
	corio_post(p, j.index, joined_msg, &j, 0);
	pthread_join(t, NULL);
	assert_true(atomic_load(&j.got) >= 1000);
	/* The slot is empty and closed now. */
	assert_null(corio_pool_loop(p, j.index));
	assert_int_equal(corio_post(p, j.index, joined_msg, &j, 0), -ESHUTDOWN);
	corio_pool_destroy(p);
}

static void join_errors(void **state)
{
	corio_pool *p = new_pool(1, NULL);
	corio_loop *own;

	assert_int_equal(corio_pool_index(), -EPERM); /* no loop at all */
	own = t_loop();

	(void)state;
	assert_int_equal(corio_pool_index(), -EPERM); /* a loop, but of no pool */
	assert_null(corio_pool_current());
	assert_int_equal(corio_pool_join(p, NULL, NULL), -EBUSY); /* already has a loop */
	assert_int_equal(corio_pool_leave(p), -EINVAL);		    /* not a member */
	corio_loop_destroy(own);
	corio_pool_destroy(p);
}

/* ------------------------------------------------------------ deadlines */

/*
 * Loop 1 is held in a message (its thread blocks reading an eventfd), so
 * its inbox is not drained: a post waits for room, a call waits for the
 * target. Each deadline fires on loop 0; a fiber sleeping until just after
 * it tells the test, which then lets loop 1 go.
 */
struct held {
	corio_pool *pool;
	int release;		/* eventfd (semaphore): one write lets one hold go */
	_Atomic int holding;	/* loop 1 is in hold() */
	_Atomic int ran;	/* calls of count_call that ran */
	_Atomic int phase;	/* 1, 2: that deadline fired; 3: done */
	int64_t deadline;
	int post_res, call_res, late_call_res, call_all_res;
	void *result;
};

static void hold(void *a)
{
	struct held *h = a;
	uint64_t v;

	atomic_store(&h->holding, 1);
	assert_int_equal(read(h->release, &v, sizeof(v)), sizeof(v));
	atomic_store(&h->holding, 0);
}

static void *count_call(void *a)
{
	struct held *h = a;

	atomic_fetch_add(&h->ran, 1);
	return h;
}

static void nothing_msg(void *a)
{
	(void)a;
}

/* Hold loop 1 and wait (polling, yielding to loop 0) until it is held. */
static void hold_loop1(struct held *h)
{
	assert_int_equal(corio_post(h->pool, 1, hold, h, 0), 0);
	while (!atomic_load(&h->holding))
		corio_yield();
}

static void *timed_poster(void *a)
{
	struct held *h = a;

	h->post_res = corio_post_until(h->pool, 1, nothing_msg, NULL, 0, h->deadline);
	return NULL;
}

static void *timed_caller(void *a)
{
	struct held *h = a;

	h->call_res = corio_call_until(h->pool, 1, count_call, h, &h->result, h->deadline);
	return NULL;
}

/* Tell the test when the deadline has fired (its timer fires first). */
static void *after_deadline(void *a)
{
	struct held *h = a;

	assert_int_equal(corio_sleep_until(h->deadline + 1), 0);
	atomic_fetch_add(&h->phase, 1);
	return NULL;
}

/* Run fn(h) in a fiber with a deadline a millisecond away, until it and
 * the fiber that says the deadline fired have ended. */
static void run_timed(struct held *h, void *(*fn)(void *))
{
	corio_fiber *f, *w;

	h->deadline = corio_now() + CORIO_MSEC;
	f = t_spawn(fn, h);
	w = t_spawn(after_deadline, h);
	t_join(w);
	t_join(f);
}

static void *deadline_main(void *a)
{
	struct held *h = a;
	void *results[3]; /* corio_pool_size(): 2 loops, 1 joinable slot */
	int n = 0;

	/* A post that finds no room before its deadline: -ETIMEDOUT, and
	 * only once the target drained (the waiter's record is in its inbox). */
	hold_loop1(h);
	while (corio_post(h->pool, 1, nothing_msg, NULL, CORIO_POST_NOWAIT) == 0)
		n++;
	assert_true(n >= 1);
	assert_int_equal(corio_post_until(h->pool, 1, nothing_msg, NULL, 0, corio_now() - 1),
			 -ETIMEDOUT);
	run_timed(h, timed_poster);
	assert_int_equal(h->post_res, -ETIMEDOUT);

	/* A call whose deadline passes before the target runs it: skipped. */
	hold_loop1(h);
	run_timed(h, timed_caller);
	assert_int_equal(h->call_res, -ETIMEDOUT);
	assert_int_equal(atomic_load(&h->ran), 0);

	/* Deadlines that do not pass get in nobody's way. */
	h->late_call_res = corio_call_until(h->pool, 1, count_call, h, &h->result,
					    corio_now() + 3600 * CORIO_SEC);
	h->call_all_res = corio_call_all_until(h->pool, count_call, h, results,
					       corio_now() + 3600 * CORIO_SEC);
	assert_int_equal(corio_pool_size(h->pool), 3);
	assert_ptr_equal(results[0], h);
	assert_ptr_equal(results[1], h);
	assert_null(results[2]); /* the empty slot */
	atomic_store(&h->phase, 3);
	return NULL;
}

static void start_deadline_main(void *a)
{
	assert_int_equal(corio_go(deadline_main, a), 0);
}

static void deadlines(void **state)
{
	struct corio_pool_opts o = {.nloops = 2, .max_joined = 1, .loop = {.inbox_size = 2}};
	struct held h = {0};
	uint64_t one = 1;
	int err;

	(void)state;
	err = corio_pool_create(&h.pool, &o);
	if (err == -ENOSYS || err == -EPERM)
		exit(77);
	assert_int_equal(err, 0);
	h.release = eventfd(0, EFD_CLOEXEC | EFD_SEMAPHORE);
	assert_true(h.release >= 0);
	assert_int_equal(corio_post(h.pool, 0, start_deadline_main, &h, 0), 0);
	for (int phase = 1; phase <= 2; phase++) {
		while (atomic_load(&h.phase) < phase)
			sched_yield();
		assert_int_equal(write(h.release, &one, sizeof(one)), sizeof(one));
	}
	while (atomic_load(&h.phase) < 3)
		sched_yield();
	corio_pool_destroy(h.pool);
	close(h.release);
	assert_int_equal(h.late_call_res, 0);
	assert_int_equal(h.call_all_res, 0);
	assert_ptr_equal(h.result, &h);
	assert_int_equal(atomic_load(&h.ran), 3); /* the late call, and one per loop */
}

/* ------------------------------------------- rule 5: wakes are elided */

struct wake_test {
	corio_pool *pool;
	uint64_t n;
	int err;
	struct corio_loop_stats st;
	_Atomic int done;
};

static void nothing(void *a)
{
	(void)a;
}

static void *poster_fiber(void *a)
{
	struct wake_test *w = a;

	for (uint64_t i = 0; i < w->n && !w->err; i++)
		w->err = corio_post(w->pool, 1, nothing, NULL, 0);
	corio_loop_stats(corio_loop_current(), &w->st, sizeof(w->st));
	atomic_store(&w->done, 1);
	return NULL;
}

static void spawn_poster(void *a)
{
	corio_go(poster_fiber, a);
}

static void wakes_elided_when_busy(void **state)
{
	/* Loop 1 polls (never sleeps): no message to it needs a wake. */
	enum corio_loop_mode modes[2] = {CORIO_MODE_INTERRUPT, CORIO_MODE_POLL};
	corio_pool *p = new_pool(2, modes);
	struct wake_test w = {.pool = p, .n = 100000};

	(void)state;
	assert_int_equal(corio_post(p, 0, spawn_poster, &w, 0), 0);
	while (!atomic_load(&w.done))
		sched_yield();
	corio_pool_destroy(p);
	assert_int_equal(w.err, 0);
	assert_true(w.st.wakes_sent + w.st.wakes_elided >= w.n);
	assert_int_equal(w.st.wakes_sent, 0);
}

/* Loop 1 in interrupt mode, kept busy by a fiber that yields until told to
 * stop: it never sleeps, so no message to it needs a wake either. */
struct busy {
	_Atomic int spinning, stop;
};

static void *busy_fiber(void *a)
{
	struct busy *b = a;

	atomic_store(&b->spinning, 1);
	while (!atomic_load(&b->stop))
		corio_yield();
	return NULL;
}

static void spawn_busy(void *a)
{
	corio_go(busy_fiber, a);
}

static void wakes_elided_to_busy_interrupt_loop(void **state)
{
	corio_pool *p = new_pool(2, NULL); /* both in interrupt mode */
	struct wake_test w = {.pool = p, .n = 100000};
	struct busy b = {0};

	(void)state;
	assert_int_equal(corio_post(p, 1, spawn_busy, &b, 0), 0);
	while (!atomic_load(&b.spinning))
		sched_yield();
	assert_int_equal(corio_post(p, 0, spawn_poster, &w, 0), 0);
	while (!atomic_load(&w.done))
		sched_yield();
	atomic_store(&b.stop, 1);
	corio_pool_destroy(p);
	assert_int_equal(w.err, 0);
	assert_true(w.st.wakes_elided >= w.n);
	assert_int_equal(w.st.wakes_sent, 0);
}

/*
 * A wake between io_uring loops is a MSG_RING posted from the sender's own
 * ring (it goes with the sender's next io_uring_enter); on epoll, or
 * without MSG_RING, an eventfd write. Before each message the sender waits
 * until loop 1 sleeps, so each message needs a wake.
 */
struct ring_test {
	corio_pool *pool;
	unsigned n;
	int err;
	bool msg_ring; /* the sender's loop can ring */
	struct corio_loop_stats st;
	_Atomic unsigned got;
	_Atomic int done;
};

static void count_got(void *a)
{
	struct ring_test *t = a;

	atomic_fetch_add(&t->got, 1);
}

static void *ring_poster(void *a)
{
	struct ring_test *t = a;
	corio_loop *self = corio_loop_current();
	struct corio__inbox *target = corio_pool_loop(t->pool, 1)->inbox;

	for (unsigned i = 0; i < t->n && !t->err; i++) {
		/* Yield, not spin: our turns send what we queued. */
		while (atomic_load(&target->state) != CORIO__SLEEPING)
			corio_yield();
		t->err = corio_post(t->pool, 1, count_got, t, 0);
		while (atomic_load(&t->got) < i + 1)
			corio_yield();
	}
	t->msg_ring = t_is_uring(self) && corio_op_supported(self, IORING_OP_MSG_RING);
	corio_loop_stats(self, &t->st, sizeof(t->st));
	atomic_store(&t->done, 1);
	return NULL;
}

static void spawn_ring_poster(void *a)
{
	corio_go(ring_poster, a);
}

static void wakes_by_msg_ring(void **state)
{
	corio_pool *p = new_pool(2, NULL);
	struct ring_test t = {.pool = p, .n = 100};

	(void)state;
	assert_int_equal(corio_post(p, 0, spawn_ring_poster, &t, 0), 0);
	while (!atomic_load(&t.done))
		sched_yield();
	corio_pool_destroy(p);
	assert_int_equal(t.err, 0);
	assert_int_equal(atomic_load(&t.got), t.n);
	/* Every message found loop 1 asleep, unless it woke up on its own
	 * (a signal) just then: nearly all needed a wake. */
	assert_true(t.st.wakes_sent >= 1);
	assert_int_equal(t.st.wakes_sent + t.st.wakes_elided, t.n);
	assert_int_equal(t.st.wakes_msg_ring, t.msg_ring ? t.st.wakes_sent : 0);
}

/* -------------------------------------------------------------- pinning */

#define PIN_LOOPS 3

struct pins {
	_Atomic int cpu[PIN_LOOPS]; /* the one CPU loop i may run on; -2: not one CPU */
	_Atomic unsigned started;
};

static void record_pin(corio_loop *loop, unsigned index, void *arg)
{
	struct pins *p = arg;
	cpu_set_t set;
	int cpu = -2;

	(void)loop;
	/* No assert here: this is a pool thread, not cmocka's. */
	if (pthread_getaffinity_np(pthread_self(), sizeof(set), &set) == 0 && CPU_COUNT(&set) == 1)
		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &set))
				cpu = c;
	atomic_store(&p->cpu[index], cpu);
	atomic_fetch_add(&p->started, 1);
}

/* Each loop thread reads its own affinity as it starts. */
static void check_pins(const int *cpus, unsigned ncpus, const int *want)
{
	struct pins p = {0};
	corio_pool *pool = t_pool(&(struct corio_pool_opts){
		.nloops = PIN_LOOPS, .cpus = cpus, .ncpus = ncpus, .on_start = record_pin, .arg = &p});

	while (atomic_load(&p.started) < PIN_LOOPS)
		sched_yield();
	corio_pool_destroy(pool);
	for (int i = 0; i < PIN_LOOPS; i++)
		assert_int_equal(atomic_load(&p.cpu[i]), want[i]);
}

static void pinning(void **state)
{
	cpu_set_t mask;
	int allowed[PIN_LOOPS], n = 0, want[PIN_LOOPS], last;

	(void)state;
	assert_int_equal(sched_getaffinity(0, sizeof(mask), &mask), 0);
	for (int c = 0; c < CPU_SETSIZE && n < PIN_LOOPS; c++)
		if (CPU_ISSET(c, &mask))
			allowed[n++] = c;
	/* Default: loop i on the i-th CPU of the process's mask, round robin. */
	for (int i = 0; i < PIN_LOOPS; i++)
		want[i] = allowed[i % n];
	check_pins(NULL, 0, want);
	/* Given CPUs, cpus[i % ncpus]: here all on the last allowed one. */
	last = allowed[n - 1];
	for (int i = 0; i < PIN_LOOPS; i++)
		want[i] = last;
	check_pins(&last, 1, want);
}

/* A CPU the process cannot run on is an error, not a silent "anywhere". */
static void pinning_errors(void **state)
{
	static const int beyond[] = {CPU_SETSIZE - 1};
	static const int too_big[] = {CPU_SETSIZE};
	corio_pool *p = NULL;
	cpu_set_t mask;

	(void)state;
	assert_int_equal(sched_getaffinity(0, sizeof(mask), &mask), 0);
	if (CPU_ISSET(CPU_SETSIZE - 1, &mask))
		skip(); /* a machine with 1024 CPUs: the last one is real */
	assert_int_equal(corio_pool_create(&p, &(struct corio_pool_opts){
		.nloops = 2, .cpus = beyond, .ncpus = 1}), -EINVAL);
	assert_int_equal(corio_pool_create(&p, &(struct corio_pool_opts){
		.nloops = 1, .cpus = too_big, .ncpus = 1}), -EINVAL);
	assert_null(p);
	/* No thread or loop is left behind: a pool still starts. */
	corio_pool_destroy(new_pool(1, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(order_and_no_loss),
		cmocka_unit_test(calls),
		cmocka_unit_test(call_errors),
		cmocka_unit_test(call_fiber),
		cmocka_unit_test(call_fiber_deadline_race),
		cmocka_unit_test(stop_with_messages_in_flight),
		cmocka_unit_test(call_to_stopping_loop),
		cmocka_unit_test(join_and_leave),
		cmocka_unit_test(join_errors),
		cmocka_unit_test(deadlines),
		cmocka_unit_test(wakes_elided_when_busy),
		cmocka_unit_test(wakes_elided_to_busy_interrupt_loop),
		cmocka_unit_test(wakes_by_msg_ring),
		cmocka_unit_test(pinning),
		cmocka_unit_test(pinning_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
