/*
 * Layer inbox: each loop's inbox, how other threads wake it (rule 5), and
 * cross-loop waits (pool/inbox.c). The loop drains it every turn; the pool
 * and cross-loop objects build on it.
 */
#ifndef CORIO_INBOX_H
#define CORIO_INBOX_H

#include "../fiber/fiber.h"
#include "../seam.h"
#include "mpsc.h"

int corio__inbox_init(corio_loop *loop, unsigned size);
void corio__inbox_term(corio_loop *loop);
/* Run what other threads sent (bounded batch); returns how many. */
unsigned corio__inbox_drain(corio_loop *loop);
/* True if something from another thread waits to be run. */
bool corio__inbox_pending(corio_loop *loop);
/* The loop is about to sleep in its poll: publish it to senders. true: sleep,
 * then call corio__inbox_awake(); false: something arrived meanwhile, do not
 * sleep (the loop is marked awake again). */
bool corio__inbox_sleep(corio_loop *loop);
void corio__inbox_awake(corio_loop *loop);
/* Tell @target something was queued for it: wake it if it sleeps. */
void corio__notify(corio_loop *target);
/* Deliver @r to @loop: r->fn runs there at its next turn. Any thread. */
void corio__remote_post(corio_loop *loop, struct corio__remote *r);

/*
 * A fiber waiting on something that another thread completes (a call
 * reply, a cross-loop event, room in an inbox). The completer sets @res and
 * delivers @r to @loop, whose turn wakes the fiber. Foreign (non-loop)
 * threads wait on @futex instead.
 */
struct corio__xwait {
	struct corio__remote r;
	corio_loop *loop;	/* the waiter's loop, or NULL for a foreign thread */
	void *obj;		/* the object waited on */
	struct corio__wait w;	/* the parked fiber */
	struct corio_list link; /* in the object's waiter list (under its lock) */
	int res;
	int aborted;		/* set by the waiter's abort when it must still wait */
	_Atomic uint32_t futex; /* foreign thread: 0 waiting, 1 delivered */
};

/* Prepare @x for the calling thread (a fiber or a foreign thread). */
void corio__xwait_init(struct corio__xwait *x, void (*abort)(struct corio__wait *, int));
/* Park until delivered (fiber) or block until delivered (foreign thread);
 * at @deadline (0: none), the wait's abort is called with -ETIMEDOUT. */
int corio__xwait_park(struct corio__xwait *x, int64_t deadline);
/* Any thread: complete @x with @res and send it home. */
void corio__xwait_deliver(struct corio__xwait *x, int res);

#endif
