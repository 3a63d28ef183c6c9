/*
 * Calls between loops. The caller's record travels to the target as a
 * message; the target runs the function on its own stack and sends the
 * record back through the caller loop's delivery stack (which never refuses,
 * see mpsc.h), where it wakes the waiting fiber.
 *
 * The record lives in the caller's memory, so the caller waits for the reply
 * whatever happens: cancelling the caller only stops the function from
 * starting (state PENDING -> SKIPPED); once RUNNING it completes and its
 * result comes back.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "inbox.h"

enum { CALL_PENDING, CALL_RUNNING, CALL_SKIPPED };

struct call {
	struct corio__remote r; /* the reply, delivered to the caller's loop */
	corio_call_fn fn;
	void *arg;
	void *result;
	corio_loop *caller;
	struct corio__wait *w; /* the waiting fiber, once corio_call_wait parks */
	_Atomic int state;
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

int corio_call_start(corio_call_req *cc, corio_pool *pool, unsigned k, corio_call_fn fn, void *arg)
{
	struct call *c = (struct call *)cc;
	int err;

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
	if (corio_pool_current() == pool && (unsigned)corio_pool_index() == k) {
		/* Our own loop: no message needed. */
		atomic_store(&c->state, CALL_RUNNING);
		c->result = fn(arg);
		return 0;
	}
	c->replied = false;
	err = corio_post(pool, k, call_run, c, 0);
	if (err)
		c->replied = true; /* nothing in flight: wait returns at once */
	return err;
}

static void abort_call(struct corio__wait *w, int reason)
{
	struct call *c = w->obj;
	int expect = CALL_PENDING;

	/* Stop fn from starting if it has not; the reply still comes. */
	atomic_compare_exchange_strong(&c->state, &expect, CALL_SKIPPED);
	(void)reason;
}

int corio_call_wait(corio_call_req *cc, void **result)
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
		c->w = &w;
		while (!c->replied) {
			c->caller->remote_waiters++;
			corio__park(&w, 0);
			c->caller->remote_waiters--;
		}
		c->w = NULL;
	}
	if (atomic_load(&c->state) == CALL_SKIPPED)
		return -ECANCELED;
	if (result)
		*result = c->result;
	return 0;
}

int corio_call(corio_pool *pool, unsigned k, corio_call_fn fn, void *arg, void **result)
{
	corio_call_req c;
	int err = corio_call_start(&c, pool, k, fn, arg);

	if (err)
		return err;
	return corio_call_wait(&c, result);
}

int corio_call_all(corio_pool *pool, corio_call_fn fn, void *arg, void **results)
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
		e = corio_call_start(&calls[i], pool, i, fn, arg);
		if (e == 0)
			started[i] = true;
		else if (e != -EINVAL && !err)
			err = e; /* -EINVAL: the slot emptied meanwhile */
	}
	for (unsigned i = 0; i < n; i++) {
		if (!started[i])
			continue;
		e = corio_call_wait(&calls[i], results ? &results[i] : NULL);
		if (e && !err)
			err = e;
	}
	free(calls);
	free(started);
	return err;
}
