/*
 * Layer fiber: fibers, parking and waking, the scheduler's run phase
 * (fiber.c), overflow reports (overflow.c).
 */
#ifndef CORIO_FIBER_INTERNAL_H
#define CORIO_FIBER_INTERNAL_H

#include "../core.h"

/* Per-thread: the alternate signal stack and the overflow reporter. */
int corio__overflow_handler_install(corio_loop *loop);
void corio__overflow_handler_remove(corio_loop *loop);

enum corio__fiber_state {
	CORIO__FIBER_READY,
	CORIO__FIBER_RUNNING,
	CORIO__FIBER_PARKED,
	CORIO__FIBER_DONE,
};

/*
 * A parked fiber. Whatever the fiber waits for (an op, a queue, a timer)
 * wakes it through corio__wake(); a deadline or a cancellation calls
 * @abort, which either wakes it at once (queues, sleep) or arranges for the
 * wake to come (I/O: cancel the op, wake on its completion).
 */
struct corio__wait {
	corio_fiber *fiber;
	struct corio__timer timer; /* kind CORIO__TIMER_WAIT */
	void (*abort)(struct corio__wait *w, int reason);
	void *obj;		/* what it waits on */
	struct corio_list link; /* in obj's wait queue */
	int res;
	bool done;
};

struct corio_fiber {
	struct corio__ctx ctx;
	corio_loop *loop;
	struct corio_list runq;	  /* in the loop's run queue */
	struct corio_list all;	  /* in loop->fibers (alive) or loop->zombies (ended, unjoined) */
	struct corio__wait *wait; /* what it is parked on */
	struct corio__stack *stack;
	corio_fiber_fn fn;
	void *arg;
	void *result;
	void *data;
	struct corio_list joiners; /* at most one waiter: the joiner */
	uint64_t id;
	uint8_t state;
	bool detached;
	bool joined;
	bool cancel_pending;
	char name[32];
#ifdef CORIO_ASAN
	void *asan_fake;
#endif
#ifdef CORIO_TSAN
	void *tsan_fiber; /* ThreadSanitizer's context for this fiber */
#endif
};

void corio__ready(corio_loop *loop, corio_fiber *f);
/* Park the running fiber on @w until woken; returns w->res. Arms the
 * deadline if not 0. The caller has queued @w where it belongs. */
int corio__park(struct corio__wait *w, int64_t deadline);
/* Wake a parked fiber with @res (no-op if the wait is already done). */
void corio__wake(struct corio__wait *w, int res);
/* The abort of waits on a queue: unlink and wake with the reason. */
void corio__abort_unlink(struct corio__wait *w, int reason);
/* If the running fiber has a cancellation pending, consume it: -ECANCELED. */
int corio__take_cancel(corio_fiber *f);
/* The running fiber, or NULL; checks the thread owns a loop. */
corio_fiber *corio__self(void);

/* Run the fibers that are ready now (the loop calls it once per turn). */
void corio__run_ready(corio_loop *loop);

#endif
