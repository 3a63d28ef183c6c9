/*
 * The loop: one per thread. A turn is
 *
 *   1. poll the backend: submit what fibers and callbacks queued, wait if
 *      there is nothing else to do (until the earliest timer), deliver the
 *      completions (waking fibers, running callbacks);
 *   2. fire the timers that are due;
 *   3. run the callbacks of operations that completed inline;
 *   4. run what other threads sent (messages, call replies, wakes);
 *   5. run the fibers that are ready (one batch: fibers readied during the
 *      batch wait for the next turn, after the next poll).
 *
 * The loop waits only when nothing is ready, and only in INTERRUPT mode (or
 * HYBRID after spinning spin_ns). Before it sleeps it says so in its inbox's
 * sleeping word, so that senders know to wake it (pool/inbox.c has the
 * protocol). It never waits for nothing: if nothing is in flight, no timer is
 * armed, no other thread can reach it, and fibers are still parked, they wait
 * on each other and corio_loop_run returns -EDEADLK instead of hanging.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "fiber/fiber.h"
#include "loop.h"
#include "op.h"
#include "pool/inbox.h"

int corio_loop_create(corio_loop **out, const struct corio_loop_opts *opts)
{
	corio_loop *loop;
	int err;

	if (!out)
		return -EINVAL;
	if (corio__tls_loop)
		return -EBUSY;
	corio__sigpipe_setup();
	loop = calloc(1, sizeof(*loop));
	if (!loop)
		return -ENOMEM;
	loop->thread = pthread_self();
	corio__list_init(&loop->runq);
	corio__list_init(&loop->due);
	corio__list_init(&loop->fibers);
	corio__list_init(&loop->zombies);
	loop->default_stack = opts && opts->stack_size ? opts->stack_size : 64 * 1024;
	loop->mode = opts ? opts->mode : CORIO_MODE_INTERRUPT;
	loop->spin_ns = opts && opts->spin_ns ? opts->spin_ns : 50 * CORIO_USEC;
	corio__stack_pool_init(&loop->stacks, opts && opts->stack_cache ? opts->stack_cache : 64);
	corio__op_pool_init(&loop->ops);
	if (loop->mode > CORIO_MODE_HYBRID) {
		err = -EINVAL;
		goto fail_inbox;
	}
	err = corio__inbox_init(loop, opts && opts->inbox_size ? opts->inbox_size : 4096);
	if (err)
		goto fail_inbox;
	err = corio__overflow_handler_install(loop);
	if (err)
		goto fail_handler;
	err = corio__backend_init(loop, opts);
	if (err)
		goto fail_backend;
	corio__tls_loop = loop;
	*out = loop;
	return 0;

fail_backend:
	corio__overflow_handler_remove(loop);
fail_handler:
	corio__inbox_term(loop);
fail_inbox:
	corio__op_pool_term(&loop->ops);
	corio__stack_pool_term(&loop->stacks);
	free(loop);
	return err;
}

static bool alive(const corio_loop *loop)
{
	return loop->live_fibers || loop->pending_async;
}

/* Nothing can ever wake the loop again: parked fibers wait on each other. */
static bool deadlocked(const corio_loop *loop)
{
	return loop->live_fibers && !loop->inflight && !loop->timers.count &&
	       !loop->remote_waiters && !loop->pool && corio__list_empty(&loop->runq) &&
	       corio__list_empty(&loop->due) && !corio__inbox_pending((corio_loop *)loop);
}

/* How long the next poll may wait: 0 if anything is ready or the mode says
 * spin, else until the earliest timer, or -1 (until woken). */
static int64_t wait_time(corio_loop *loop, bool wait, int64_t *now)
{
	struct corio__timer *t;

	if (!wait || loop->stop || loop->mode == CORIO_MODE_POLL ||
	    !corio__list_empty(&loop->runq) || !corio__list_empty(&loop->due))
		return 0;
	*now = corio_now();
	if (loop->mode == CORIO_MODE_HYBRID && *now - loop->last_event < loop->spin_ns)
		return 0;
	t = corio__timer_first(&loop->timers);
	if (t)
		return t->deadline > *now ? t->deadline - *now : 0;
	if (loop->inflight || loop->pool || loop->remote_waiters)
		return -1;
	return 0; /* nothing could wake us */
}

int corio__turn(corio_loop *loop, bool wait)
{
	int64_t now = 0, timeout = wait_time(loop, wait, &now);
	unsigned events;
	int err;

	loop->stats.turns++;
	loop->in_turn = true;
	/* May sleep: tell senders first (rule 5, pool/inbox.c). */
	if (timeout != 0 && !corio__inbox_sleep(loop))
		timeout = 0;
	if (timeout != 0)
		loop->stats.sleeps++;
	err = loop->be->poll(loop, timeout);
	if (timeout != 0)
		corio__inbox_awake(loop);
	if (err < 0) {
		loop->in_turn = false;
		return err;
	}
	events = (unsigned)err;
	if (loop->timers.count)
		events += corio__timers_fire(loop, corio_now());
	if (!corio__list_empty(&loop->due)) {
		corio__run_due(loop);
		events++;
	}
	if (corio__inbox_pending(loop))
		events += corio__inbox_drain(loop);
	if (!corio__list_empty(&loop->runq)) {
		corio__run_ready(loop);
		events++;
	}
	if (events && loop->mode == CORIO_MODE_HYBRID)
		loop->last_event = now ? now : corio_now();
	loop->in_turn = false;
	return 0;
}

static int check_thread(const corio_loop *loop)
{
	if (!loop)
		return -EINVAL;
	if (loop != corio__tls_loop || loop->current)
		return -EPERM; /* another thread's loop, or called from a fiber */
	return 0;
}

int corio_loop_run(corio_loop *loop)
{
	int err = check_thread(loop);

	if (err)
		return err;
	loop->stop = false;
	loop->running = true;
	while (!loop->stop && alive(loop)) {
		if (deadlocked(loop)) {
			err = -EDEADLK;
			break;
		}
		err = corio__turn(loop, true);
		if (err)
			break;
	}
	loop->be->flush(loop);
	loop->running = false;
	return err;
}

int corio_loop_run_once(corio_loop *loop, bool wait)
{
	int err = check_thread(loop);

	if (err)
		return err;
	loop->stop = false; /* a stop ends a run; it must not keep this turn from waiting */
	if (wait && deadlocked(loop))
		return -EDEADLK;
	err = corio__turn(loop, wait);
	loop->be->flush(loop);
	if (err)
		return err;
	return alive(loop) ? 1 : 0;
}

void corio_loop_stop(corio_loop *loop)
{
	if (loop)
		loop->stop = true;
}

corio_loop *corio_loop_current(void)
{
	return corio__tls_loop;
}

const char *corio_loop_backend(const corio_loop *loop)
{
	return loop && loop->be ? loop->be->name : "";
}

void corio_loop_stats(const corio_loop *loop, struct corio_loop_stats *out, size_t size)
{
	struct corio_loop_stats st;

	if (!loop || !out)
		return;
	st = loop->stats;
	st.fibers_live = loop->live_fibers;
	st.fibers_unjoined = loop->unjoined;
	st.stacks = loop->stacks.nstacks;
	if (size > sizeof(st))
		size = sizeof(st);
	memcpy(out, &st, size);
}

void corio__loop_close(corio_loop *loop)
{
	struct corio_list *n, *next;

	loop->closing = true;
	for (n = loop->fibers.next; n != &loop->fibers; n = next) {
		next = n->next;
		corio_cancel(corio__container_of(n, corio_fiber, all));
	}
	corio__cancel_all_async(loop);
}

void corio_loop_destroy(corio_loop *loop)
{
	struct corio_list *n;

	if (check_thread(loop))
		return;
	/* Cancel everything, then turn until every fiber has ended, every op
	 * has completed and what other threads sent has run: only then may
	 * stacks, op records and the inbox go. */
	corio__loop_close(loop);
	while (alive(loop) || loop->inflight || corio__inbox_pending(loop)) {
		if (deadlocked(loop)) {
			corio__log("destroy: %zu fibers cannot end", loop->live_fibers);
			break;
		}
		if (corio__turn(loop, true) < 0)
			break;
	}
	while ((n = corio__list_pop_front(&loop->zombies)))
		free(corio__container_of(n, corio_fiber, all));
	corio__inbox_term(loop); /* waits for deliveries still being posted */
	loop->be->fini(loop);
	corio__overflow_handler_remove(loop);
	corio__op_pool_term(&loop->ops);
	corio__stack_pool_term(&loop->stacks);
	corio__tls_loop = NULL;
	free(loop);
}

int corio_main(void *(*fn)(void *arg), void *arg)
{
	corio_loop *loop;
	corio_fiber *f;
	void *res = NULL;
	int err;

	err = corio_loop_create(&loop, NULL);
	if (err)
		return err;
	err = corio_spawn(&f, loop, fn, arg, NULL);
	if (err) {
		corio_loop_destroy(loop);
		return err;
	}
	err = corio_loop_run(loop);
	if (err == 0)
		corio_join(f, &res);
	corio_loop_destroy(loop);
	return err ? err : (int)(intptr_t)res;
}
