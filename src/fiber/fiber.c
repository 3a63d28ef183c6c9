/*
 * Fibers and the scheduler.
 *
 * Every switch goes between a fiber and the loop's own context (the thread's
 * stack, where corio_loop_run runs): the loop takes the batch of fibers that
 * are ready at the start of its run phase and switches into each in turn; a
 * fiber switches back when it parks, yields or ends. Fibers made ready during
 * the batch run at the next turn, after the loop has polled the kernel once,
 * so a fiber that yields in a loop cannot starve I/O.
 *
 * Parking: a fiber that waits describes what it waits on in a struct
 * corio__wait on its own stack and switches out. Whatever it waits on calls
 * corio__wake(); a deadline or a cancellation calls the wait's abort. A
 * fiber is resumed only once its wait is done, and for I/O the wait is done
 * only when the kernel's completion arrived (DESIGN rule 1).
 *
 * AddressSanitizer is told about every switch (start/finish_switch_fiber),
 * so its stack checks and fake stacks follow the fibers. ThreadSanitizer
 * gets a context per fiber (create/switch_to/destroy_fiber): without them
 * it keeps one shadow call stack per thread, which the switches corrupt.
 * Each switch synchronises (flags 0): the fibers of a loop run one after
 * the other on its thread, so everything one did happens before what the
 * next does. Both compile to nothing outside their sanitizer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "fiber.h"

#ifdef CORIO_ASAN
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef CORIO_TSAN
#include <sanitizer/tsan_interface.h>
#define TSAN_SWITCH(to) __tsan_switch_to_fiber((to), 0)
#else
#define TSAN_SWITCH(to) ((void)0)
#endif

#define MIN_STACK ((size_t)16384)

static atomic_uint_fast64_t next_id;

corio_fiber *corio__self(void)
{
	corio_loop *loop = corio__tls_loop;

	return loop ? loop->current : NULL;
}

void corio__ready(corio_loop *loop, corio_fiber *f)
{
	f->state = CORIO__FIBER_READY;
	corio__list_push_back(&loop->runq, &f->runq);
}

/* Fiber side: give the CPU back to the loop. */
static void switch_to_loop(corio_fiber *f)
{
	corio_loop *loop = f->loop;

#ifdef CORIO_ASAN
	__sanitizer_start_switch_fiber(&f->asan_fake, loop->sched_stack_bottom,
				       loop->sched_stack_size);
#endif
	TSAN_SWITCH(loop->sched_tsan);
	corio__ctx_switch(&f->ctx, &loop->sched_ctx);
#ifdef CORIO_ASAN
	__sanitizer_finish_switch_fiber(f->asan_fake, NULL, NULL);
#endif
}

static void release(corio_fiber *f)
{
	if (corio__list_linked(&f->all) && f->state == CORIO__FIBER_DONE)
		f->loop->unjoined--; /* it waited in loop->zombies */
	corio__list_remove(&f->all);
	free(f);
}

static __attribute__((noreturn)) void fiber_exit(corio_fiber *f)
{
	corio_loop *loop = f->loop;
	struct corio_list *j;

	f->state = CORIO__FIBER_DONE;
	loop->live_fibers--;
	corio__list_remove(&f->all);
	if (!f->detached) {
		corio__list_push_back(&loop->zombies, &f->all);
		loop->unjoined++;
	}
	j = corio__list_pop_front(&f->joiners);
	if (j) {
		/* Handed to that joiner, which frees f when it resumes: until
		 * then nobody else may join or detach it. */
		f->joined = true;
		corio__wake(corio__container_of(j, struct corio__wait, link), 0);
	}
#ifdef CORIO_ASAN
	/* NULL: this fiber's fake stack can be freed, it never comes back. */
	__sanitizer_start_switch_fiber(NULL, loop->sched_stack_bottom, loop->sched_stack_size);
#endif
	TSAN_SWITCH(loop->sched_tsan);
	corio__ctx_switch(&f->ctx, &loop->sched_ctx);
	__builtin_unreachable();
}

static void fiber_main(void *arg)
{
	corio_fiber *f = arg;

#ifdef CORIO_ASAN
	/* The first switch into any fiber comes from the loop's stack: learn
	 * its bounds, for the switches back. */
	__sanitizer_finish_switch_fiber(NULL, &f->loop->sched_stack_bottom,
					&f->loop->sched_stack_size);
#endif
	f->result = f->fn(f->arg);
	fiber_exit(f);
}

/* Loop side: run one ready fiber until it parks, yields or ends. */
static void run_fiber(corio_loop *loop, corio_fiber *f)
{
	f->state = CORIO__FIBER_RUNNING;
	loop->current = f;
	loop->stats.switches++;
#ifdef CORIO_ASAN
	__sanitizer_start_switch_fiber(&loop->sched_asan_fake, f->stack->lo, f->stack->size);
#endif
#ifdef CORIO_TSAN
	if (!loop->sched_tsan)
		loop->sched_tsan = __tsan_get_current_fiber();
#endif
	TSAN_SWITCH(f->tsan_fiber);
	corio__ctx_switch(&loop->sched_ctx, &f->ctx);
#ifdef CORIO_ASAN
	__sanitizer_finish_switch_fiber(loop->sched_asan_fake, NULL, NULL);
#endif
	loop->current = NULL;
	if (f->state == CORIO__FIBER_DONE) {
		/* Safe now: we are off its stack. */
		corio__stack_put(&loop->stacks, f->stack);
		f->stack = NULL;
#ifdef CORIO_TSAN
		__tsan_destroy_fiber(f->tsan_fiber);
		f->tsan_fiber = NULL;
#endif
		if (f->detached)
			release(f);
	}
}

void corio__run_ready(corio_loop *loop)
{
	struct corio_list batch, *n;

	corio__list_init(&batch);
	corio__list_splice(&batch, &loop->runq);
	while ((n = corio__list_pop_front(&batch)))
		run_fiber(loop, corio__container_of(n, corio_fiber, runq));
}

int corio__park(struct corio__wait *w, int64_t deadline)
{
	corio_fiber *f = corio__self();

	w->fiber = f;
	w->done = false;
	f->wait = w;
	f->state = CORIO__FIBER_PARKED;
	if (deadline) {
		w->timer.kind = CORIO__TIMER_WAIT;
		corio__timer_arm(&f->loop->timers, &w->timer, deadline);
	}
	switch_to_loop(f);
	return w->res;
}

void corio__wake(struct corio__wait *w, int res)
{
	corio_fiber *f = w->fiber;

	if (w->done)
		return;
	w->done = true;
	w->res = res;
	if (!f)
		return; /* completed before the fiber parked */
	corio__timer_disarm(&f->loop->timers, &w->timer);
	f->wait = NULL;
	if (f->state == CORIO__FIBER_PARKED)
		corio__ready(f->loop, f);
}

void corio__abort_unlink(struct corio__wait *w, int reason)
{
	corio__list_remove(&w->link);
	corio__wake(w, reason);
}

int corio__take_cancel(corio_fiber *f)
{
	if (f->cancel_pending || f->loop->closing) {
		f->cancel_pending = false;
		return -ECANCELED;
	}
	return 0;
}

/* ------------------------------------------------------------ public API */

int corio_spawn(corio_fiber **out, corio_loop *loop, corio_fiber_fn fn, void *arg,
		const struct corio_fiber_opts *opts)
{
	size_t size;
	corio_fiber *f;
	int err;

	if (!loop)
		loop = corio__tls_loop;
	if (!loop || !fn)
		return -EINVAL;
	if (loop != corio__tls_loop)
		return -EPERM;
	size = opts && opts->stack_size ? opts->stack_size : loop->default_stack;
	if (size < MIN_STACK)
		size = MIN_STACK;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	err = corio__stack_get(&loop->stacks, size, &f->stack);
	if (err) {
		free(f);
		return err;
	}
	f->loop = loop;
	f->fn = fn;
	f->arg = arg;
	f->id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed) + 1;
	/* Without a handle nobody could join it: it must release itself. */
	f->detached = !out || (opts && opts->detached);
	corio__list_init(&f->runq);
	corio__list_init(&f->joiners);
	corio__list_push_back(&loop->fibers, &f->all);
	if (opts && opts->name)
		corio_fiber_set_name(f, opts->name);
	corio__ctx_make(&f->ctx, f->stack->lo + f->stack->size, fiber_main, f);
#ifdef CORIO_TSAN
	f->tsan_fiber = __tsan_create_fiber(0);
#endif
	loop->live_fibers++;
	loop->stats.fibers_spawned++;
	corio__ready(loop, f);
	if (out)
		*out = f;
	return 0;
}

int corio_go(corio_fiber_fn fn, void *arg)
{
	struct corio_fiber_opts o = {.detached = true};

	return corio_spawn(NULL, NULL, fn, arg, &o);
}

int corio_join_until(corio_fiber *f, void **result, int64_t deadline)
{
	corio_fiber *self = corio__self();

	if (!f || f == self || f->detached || f->joined || f->loop != corio__tls_loop)
		return -EINVAL;
	if (f->state != CORIO__FIBER_DONE) {
		struct corio__wait w = {.abort = corio__abort_unlink, .obj = f};
		int err;

		if (!self)
			return -EPERM;
		if (!corio__list_empty(&f->joiners))
			return -EINVAL; /* someone else is joining it */
		err = corio__take_cancel(self);
		if (err)
			return err;
		corio__list_push_back(&f->joiners, &w.link);
		err = corio__park(&w, deadline);
		if (err)
			return err;
	}
	if (result)
		*result = f->result;
	f->joined = true;
	release(f);
	return 0;
}

int corio_join(corio_fiber *f, void **result)
{
	return corio_join_until(f, result, 0);
}

int corio_detach(corio_fiber *f)
{
	if (!f || f->detached || f->joined || !corio__list_empty(&f->joiners))
		return -EINVAL;
	f->detached = true;
	if (f->state == CORIO__FIBER_DONE)
		release(f);
	return 0;
}

int corio_yield(void)
{
	corio_fiber *f = corio__self();

	if (!f)
		return -EPERM;
	corio__ready(f->loop, f);
	switch_to_loop(f);
	return 0;
}

static void abort_sleep(struct corio__wait *w, int reason)
{
	/* The deadline of a sleep is its normal end. */
	corio__wake(w, reason == -ETIMEDOUT ? 0 : reason);
}

int corio_sleep_until(int64_t deadline)
{
	corio_fiber *f = corio__self();
	struct corio__wait w = {.abort = abort_sleep};
	int err;

	if (!f)
		return -EPERM;
	err = corio__take_cancel(f);
	if (err)
		return err;
	return corio__park(&w, deadline > 0 ? deadline : 1);
}

int corio_sleep(int64_t ns)
{
	int64_t now = corio_now();

	/* Saturate: a sleep "forever" (INT64_MAX) must not wrap around into
	 * the past (and signed overflow is undefined). */
	if (ns > INT64_MAX - now)
		return corio_sleep_until(INT64_MAX);
	return corio_sleep_until(now + (ns > 0 ? ns : 0));
}

int corio_cancel(corio_fiber *f)
{
	if (!f || f->state == CORIO__FIBER_DONE)
		return -EINVAL;
	if (f->state == CORIO__FIBER_PARKED && f->wait) {
		f->wait->abort(f->wait, -ECANCELED);
		return 0;
	}
	f->cancel_pending = true;
	return 0;
}

corio_fiber *corio_self(void)
{
	return corio__self();
}

const char *corio_fiber_name(const corio_fiber *f)
{
	return f ? f->name : "";
}

int corio_fiber_set_name(corio_fiber *f, const char *name)
{
	if (!f || !name)
		return -EINVAL;
	strncpy(f->name, name, sizeof(f->name) - 1);
	f->name[sizeof(f->name) - 1] = '\0';
	return 0;
}

uint64_t corio_fiber_id(const corio_fiber *f)
{
	return f ? f->id : 0;
}

void *corio_fiber_data(void)
{
	corio_fiber *f = corio__self();

	return f ? f->data : NULL;
}

int corio_fiber_set_data(void *data)
{
	corio_fiber *f = corio__self();

	if (!f)
		return -EPERM;
	f->data = data;
	return 0;
}
