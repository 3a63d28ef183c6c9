/*
 * The loop: one per thread. A turn is
 *
 *   1. poll the backend: submit what fibers and callbacks queued, wait if
 *      there is nothing else to do (until the earliest timer), deliver the
 *      completions (waking fibers, running callbacks);
 *   2. fire the timers that are due;
 *   3. run the callbacks of operations that completed inline;
 *   4. run the fibers that are ready (one batch: fibers readied during the
 *      batch wait for the next turn, after the next poll).
 *
 * The loop waits only when no fiber is ready and no callback is due, and
 * never waits for nothing: if nothing is in flight, no timer is armed and
 * fibers are still parked, they wait on each other and corio_loop_run
 * returns -EDEADLK instead of hanging.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

__thread corio_loop *corio__tls_loop __attribute__((tls_model("initial-exec")));

int64_t corio_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * CORIO_SEC + ts.tv_nsec;
}

const char *corio_version(void)
{
	return "corio 0.1.0";
}

void corio__log(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	fprintf(stderr, "corio: %s\n", buf);
}

/* Which backend: the option, else $CORIO_BACKEND, else auto. */
static int pick(const struct corio_loop_opts *opts, enum corio_backend *out)
{
	const char *env;

	*out = opts ? opts->backend : CORIO_BACKEND_AUTO;
	if (*out != CORIO_BACKEND_AUTO)
		return 0;
	env = getenv("CORIO_BACKEND");
	if (!env || !*env || !strcmp(env, "auto"))
		return 0;
	if (!strcmp(env, "uring") || !strcmp(env, "io_uring")) {
		*out = CORIO_BACKEND_URING;
		return 0;
	}
	if (!strcmp(env, "epoll")) {
		*out = CORIO_BACKEND_EPOLL;
		return 0;
	}
	corio__log("CORIO_BACKEND=%s is not a backend (use uring, epoll or auto)", env);
	return -EINVAL;
}

static int init_backend(corio_loop *loop, const struct corio_loop_opts *opts)
{
	enum corio_backend which;
	const char *why = "";
	int err = pick(opts, &which);

	if (err)
		return err;
	if (which != CORIO_BACKEND_EPOLL) {
		err = corio__backend_uring.init(loop, opts, &why);
		if (err == 0) {
			loop->be = &corio__backend_uring;
			return 0;
		}
		if (which == CORIO_BACKEND_URING) {
			corio__log("cannot use io_uring: %s", why);
			return err;
		}
		corio__log("io_uring unavailable (%s); using epoll", why);
	}
	err = corio__backend_epoll.init(loop, opts, &why);
	if (err) {
		corio__log("cannot use epoll: %s", why);
		return err;
	}
	loop->be = &corio__backend_epoll;
	return 0;
}

int corio_loop_create(corio_loop **out, const struct corio_loop_opts *opts)
{
	corio_loop *loop;
	int err;

	if (!out)
		return -EINVAL;
	if (corio__tls_loop)
		return -EBUSY;
	loop = calloc(1, sizeof(*loop));
	if (!loop)
		return -ENOMEM;
	loop->thread = pthread_self();
	corio__list_init(&loop->runq);
	corio__list_init(&loop->due);
	corio__list_init(&loop->fibers);
	corio__list_init(&loop->zombies);
	loop->default_stack = opts && opts->stack_size ? opts->stack_size : 64 * 1024;
	corio__stack_pool_init(&loop->stacks, opts && opts->stack_cache ? opts->stack_cache : 64);
	corio__op_pool_init(&loop->ops);
	err = corio__overflow_handler_install(loop);
	if (err)
		goto fail_handler;
	err = init_backend(loop, opts);
	if (err)
		goto fail_backend;
	corio__tls_loop = loop;
	*out = loop;
	return 0;

fail_backend:
	corio__overflow_handler_remove(loop);
fail_handler:
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
	       corio__list_empty(&loop->runq) && corio__list_empty(&loop->due);
}

static int turn(corio_loop *loop, bool wait)
{
	int64_t timeout = 0;
	struct corio__timer *t;
	int err;

	loop->stats.turns++;
	if (wait && !loop->stop && corio__list_empty(&loop->runq) &&
	    corio__list_empty(&loop->due)) {
		t = corio__timer_first(&loop->timers);
		if (t) {
			int64_t now = corio_now();

			timeout = t->deadline > now ? t->deadline - now : 0;
		} else {
			timeout = loop->inflight ? -1 : 0;
		}
	}
	err = loop->be->poll(loop, timeout);
	if (err < 0)
		return err;
	if (loop->timers.count)
		corio__timers_fire(loop, corio_now());
	if (!corio__list_empty(&loop->due))
		corio__run_due(loop);
	corio__run_ready(loop);
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
		err = turn(loop, true);
		if (err)
			break;
	}
	loop->running = false;
	return err;
}

int corio_loop_run_once(corio_loop *loop, bool wait)
{
	int err = check_thread(loop);

	if (err)
		return err;
	if (wait && deadlocked(loop))
		return -EDEADLK;
	err = turn(loop, wait);
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
	if (!loop || !out)
		return;
	if (size > sizeof(loop->stats))
		size = sizeof(loop->stats);
	memcpy(out, &loop->stats, size);
}

void corio_loop_destroy(corio_loop *loop)
{
	struct corio_list *n, *next;

	if (check_thread(loop))
		return;
	/* Cancel everything, then turn until every fiber has ended and every
	 * op has completed: only then may stacks and op records go. */
	loop->closing = true;
	for (n = loop->fibers.next; n != &loop->fibers; n = next) {
		next = n->next;
		corio_cancel(corio__container_of(n, corio_fiber, all));
	}
	corio__cancel_all_async(loop);
	while (alive(loop) || loop->inflight) {
		if (deadlocked(loop)) {
			/* Cannot happen while closing: every park is cancelled. */
			corio__log("destroy: %zu fibers cannot end", loop->live_fibers);
			break;
		}
		if (turn(loop, true) < 0)
			break;
	}
	while ((n = corio__list_pop_front(&loop->zombies)))
		free(corio__container_of(n, corio_fiber, all));
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
	err = corio_spawn(loop, &f, fn, arg, NULL);
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
