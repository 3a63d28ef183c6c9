/*
 * Calls between loops. The caller's record travels to the target as a
 * message; the target runs the function on its own stack and sends the
 * record back through the caller loop's delivery stack (which never refuses,
 * see mpsc.h), where it wakes the waiting fiber.
 *
 * The record lives in the caller's memory, so the caller waits for the reply
 * whatever happens: cancelling the caller, or its deadline, only stops the
 * function from starting (state PENDING -> SKIPPED); once RUNNING it
 * completes and its result comes back.
 *
 * corio_call_fiber runs the function in a fiber of its own on the target,
 * so it may block; see fcall below.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "inbox.h"
#include "pool.h"

enum { CALL_PENDING, CALL_RUNNING, CALL_SKIPPED };

struct call {
	struct corio__remote r; /* the reply, delivered to the caller's loop */
	corio_call_fn fn;
	void *arg;
	void *result;
	corio_loop *caller;
	struct corio__wait *w; /* the waiting fiber, once corio_call_wait parks */
	_Atomic int state;
	int skipped; /* why it was skipped: -ECANCELED or -ETIMEDOUT */
	bool replied;
};

_Static_assert(sizeof(struct call) <= sizeof(corio_call_req), "corio_call_req too small");
_Static_assert(_Alignof(struct call) <= _Alignof(corio_call_req), "corio_call_req misaligned");

static void reply_home(struct corio__remote *r)
{
	struct call *c = corio__container_of(r, struct call, r);

	c->replied = true;
	if (c->w)
		corio__wake(c->w, 0);
}

/* On the target loop. */
static void call_run(void *arg)
{
	struct call *c = arg;
	int expect = CALL_PENDING;

	if (atomic_compare_exchange_strong(&c->state, &expect, CALL_RUNNING))
		c->result = c->fn(c->arg);
	c->r.fn = reply_home;
	corio__remote_post(c->caller, &c->r);
}

int corio_call_start_until(corio_call_req *cc, corio_pool *pool, unsigned k, corio_call_fn fn,
			   void *arg, int64_t deadline)
{
	struct call *c = (struct call *)cc;
	int me, err;

	if (!cc || !fn)
		return -EINVAL;
	memset(c, 0, sizeof(*c));
	c->fn = fn;
	c->arg = arg;
	c->caller = corio__tls_loop;
	atomic_init(&c->state, CALL_PENDING);
	c->replied = true; /* until something is in flight */
	if (!corio__self())
		return -EPERM;
	err = corio__take_cancel(corio__self());
	if (err)
		return err;
	me = corio_pool_index();
	if (corio_pool_current() == pool && me >= 0 && (unsigned)me == k) {
		/* Our own loop: no message needed. */
		atomic_store(&c->state, CALL_RUNNING);
		c->result = fn(arg);
		return 0;
	}
	c->replied = false;
	err = corio_post_until(pool, k, call_run, c, 0, deadline);
	if (err)
		c->replied = true; /* nothing in flight: wait returns at once */
	return err;
}

int corio_call_start(corio_call_req *c, corio_pool *pool, unsigned k, corio_call_fn fn, void *arg)
{
	return corio_call_start_until(c, pool, k, fn, arg, 0);
}

static void abort_call(struct corio__wait *w, int reason)
{
	struct call *c = w->obj;
	int expect = CALL_PENDING;

	/* Stop fn from starting if it has not; the reply still comes. */
	if (atomic_compare_exchange_strong(&c->state, &expect, CALL_SKIPPED))
		c->skipped = reason;
}

int corio_call_wait_until(corio_call_req *cc, void **result, int64_t deadline)
{
	struct call *c = (struct call *)cc;
	corio_fiber *f = corio__self();

	if (!c)
		return -EINVAL;
	if (!c->replied) {
		struct corio__wait w = {.abort = abort_call, .obj = c};

		if (!f)
			return -EPERM;
		if (corio__take_cancel(f))
			abort_call(&w, -ECANCELED);
		else if (deadline && deadline <= corio_now())
			abort_call(&w, -ETIMEDOUT);
		c->w = &w;
		while (!c->replied) {
			c->caller->remote_waiters++;
			corio__park(&w, deadline);
			c->caller->remote_waiters--;
			deadline = 0; /* it fired, or the reply came */
		}
		c->w = NULL;
	}
	if (atomic_load(&c->state) == CALL_SKIPPED)
		return c->skipped;
	if (result)
		*result = c->result;
	return 0;
}

int corio_call_wait(corio_call_req *c, void **result)
{
	return corio_call_wait_until(c, result, 0);
}

int corio_call_until(corio_pool *pool, unsigned k, corio_call_fn fn, void *arg, void **result,
		     int64_t deadline)
{
	corio_call_req c;
	int err = corio_call_start_until(&c, pool, k, fn, arg, deadline);

	if (err)
		return err;
	return corio_call_wait_until(&c, result, deadline);
}

int corio_call(corio_pool *pool, unsigned k, corio_call_fn fn, void *arg, void **result)
{
	return corio_call_until(pool, k, fn, arg, result, 0);
}

int corio_call_all_until(corio_pool *pool, corio_call_fn fn, void *arg, void **results,
			 int64_t deadline)
{
	unsigned n = corio_pool_size(pool);
	corio_call_req *calls;
	int err = 0, e;
	bool *started;

	if (!pool || !fn)
		return -EINVAL;
	if (!corio__self())
		return -EPERM;
	calls = calloc(n, sizeof(*calls));
	started = calloc(n, sizeof(*started));
	if (!calls || !started) {
		free(calls);
		free(started);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++) {
		if (results)
			results[i] = NULL;
		if (!corio_pool_loop(pool, i))
			continue;
		e = corio_call_start_until(&calls[i], pool, i, fn, arg, deadline);
		if (e == 0)
			started[i] = true;
		else if (e != -EINVAL && !err)
			err = e; /* -EINVAL: the slot emptied meanwhile */
	}
	for (unsigned i = 0; i < n; i++) {
		if (!started[i])
			continue;
		e = corio_call_wait_until(&calls[i], results ? &results[i] : NULL, deadline);
		if (e && !err)
			err = e;
	}
	free(calls);
	free(started);
	return err;
}

int corio_call_all(corio_pool *pool, corio_call_fn fn, void *arg, void **results)
{
	return corio_call_all_until(pool, fn, arg, results, 0);
}

/* ---------------------------------------------------- calls in a fiber */

/*
 * corio_call_fiber. The caller's record goes to the target as a message,
 * which spawns a fiber there; the fiber's end sends the reply back (the
 * caller's corio__xwait: a fiber's loop, or a futex). A deadline or a
 * cancellation of the caller must cancel the target fiber and still wait
 * for it (fn may use the caller's memory): the caller sets CANCEL and sends
 * a second delivery, cancel_r, through the target's delivery stack (never
 * refused for lack of room, unlike the inbox).
 *
 * Everything else runs on the target's thread: the start message, the
 * fiber's end, the cancel delivery, in whatever order. The reply must be
 * the last touch of the record, so it is sent by whichever comes last of
 * the end (ENDED) and, when CANCEL was set before the end, the cancel
 * delivery (CANCEL_RUN). A cancel that could not be delivered (the target
 * is closing, and cancels its fibers itself) is marked CANCEL_RUN by the
 * caller, who then completes its own wait if the end had deferred to it.
 */
enum {
	FC_STARTED = 1u << 0,	 /* target: the fiber exists */
	FC_ENDED = 1u << 1,	 /* target: fn returned, or will never start */
	FC_CANCEL = 1u << 2,	 /* caller: cancel it */
	FC_CANCEL_RUN = 1u << 3, /* target ran the cancel (or it cannot come) */
};

struct fcall {
	struct corio__xwait x; /* the caller's wait; x.r carries the reply */
	struct corio__remote cancel_r;
	corio_pool *pool;
	unsigned k;
	corio_call_fn fn;
	void *arg;
	void *result;
	corio_fiber *fiber; /* target only */
	_Atomic unsigned st;
	int err;	/* target: the fiber could not be made */
	bool ran;	/* target: fn ran (result is set) */
	bool cancelled; /* target: the cancel reached the fiber while it ran */
	int reason;	/* caller: -ETIMEDOUT or -ECANCELED, once asked */
};

static void fcall_end(struct fcall *c)
{
	unsigned old = atomic_fetch_or(&c->st, FC_ENDED);

	if ((old & FC_CANCEL) && !(old & FC_CANCEL_RUN))
		return; /* the cancel delivery is on its way: it replies */
	corio__xwait_deliver(&c->x, 0);
}

static void *fcall_fiber(void *arg)
{
	struct fcall *c = arg;

	c->result = c->fn(c->arg);
	c->ran = true;
	fcall_end(c);
	return NULL;
}

/* On the target: the start message. */
static void fcall_start(void *arg)
{
	struct fcall *c = arg;
	struct corio_fiber_opts o = {.detached = true};

	if (atomic_load(&c->st) & FC_CANCEL) {
		fcall_end(c); /* cancelled before it started: fn never runs */
		return;
	}
	c->err = corio_spawn(&c->fiber, NULL, fcall_fiber, c, &o);
	if (c->err) {
		fcall_end(c);
		return;
	}
	atomic_fetch_or(&c->st, FC_STARTED);
}

/* On the target: the caller's cancellation. */
static void fcall_cancel(struct corio__remote *r)
{
	struct fcall *c = corio__container_of(r, struct fcall, cancel_r);
	unsigned old = atomic_fetch_or(&c->st, FC_CANCEL_RUN);

	if (old & FC_ENDED) {
		corio__xwait_deliver(&c->x, 0); /* the end left the reply to us */
	} else if (old & FC_STARTED) {
		c->cancelled = true;
		corio_cancel(c->fiber);
	}
	/* else: not started; the start message will see FC_CANCEL */
}

/* On the caller's side: its deadline passed, or its fiber was cancelled.
 * The wait goes on until the reply. */
static void fcall_abort(struct corio__wait *w, int reason)
{
	struct fcall *c = corio__container_of(w, struct fcall, x.w);

	if (c->reason)
		return; /* asked already */
	c->reason = reason;
	if (atomic_fetch_or(&c->st, FC_CANCEL) & FC_ENDED)
		return; /* the reply is on its way */
	c->cancel_r.fn = fcall_cancel;
	if (corio__pool_deliver(c->pool, c->k, &c->cancel_r) == 0)
		return;
	if (atomic_fetch_or(&c->st, FC_CANCEL_RUN) & FC_ENDED)
		corio__xwait_deliver(&c->x, 0); /* the end left the reply to us */
}

int corio_call_fiber_until(corio_pool *pool, unsigned k, corio_call_fn fn, void *arg,
			   void **result, int64_t deadline)
{
	corio_fiber *self = corio__self();
	struct fcall c;
	int err;

	if (!pool || !fn || k >= corio_pool_size(pool))
		return -EINVAL;
	if (self) {
		err = corio__take_cancel(self);
		if (err)
			return err;
	} else if (corio__tls_loop) {
		return -EPERM; /* a loop's own stack must not wait */
	}
	if (deadline && deadline <= corio_now()) {
		if (result)
			*result = NULL;
		return -ETIMEDOUT; /* past: start nothing */
	}
	memset(&c, 0, sizeof(c));
	corio__xwait_init(&c.x, fcall_abort);
	c.pool = pool;
	c.k = k;
	c.fn = fn;
	c.arg = arg;
	atomic_init(&c.st, 0);
	err = corio_post_until(pool, k, fcall_start, &c, 0, deadline);
	if (err)
		return err;
	corio__xwait_park(&c.x, deadline);
	if (c.err)
		return c.err;
	if (result)
		*result = c.ran ? c.result : NULL;
	if (!c.ran || c.cancelled)
		return c.reason; /* set: only a cancellation stops or reaches it */
	return 0;
}

int corio_call_fiber(corio_pool *pool, unsigned k, corio_call_fn fn, void *arg, void **result)
{
	return corio_call_fiber_until(pool, k, fn, arg, result, 0);
}
