/*
 * Each loop's inbox: what other threads send it (messages, deliveries,
 * waiters for room) and how they wake it when it sleeps.
 *
 * Rule 5 (wake only who sleeps), the protocol:
 *
 *   loop about to sleep:             sender:
 *     state = SLEEPING                 push the message
 *     fence (seq_cst)                  fence (seq_cst)
 *     anything queued? -> don't sleep  state == SLEEPING? -> exchange to AWAKE;
 *     sleep in the kernel                 the one that flipped it wakes the loop
 *     state = AWAKE
 *
 * The two fences make it a Dekker pair: either the loop sees the message
 * before it sleeps, or the sender sees SLEEPING and wakes it. A sender to a
 * busy loop pays one fence and one load, no system call. The loop may be
 * woken once too often (harmless), never once too few.
 *
 * The loop's half of the protocol is corio__inbox_sleep()/_awake(), around
 * its poll in every turn that may sleep (loop.c); the sender's half is
 * corio__notify(). Both live here, with the memory orderings they pair.
 *
 * Cross-loop waits (struct corio__xwait) are here too: a fiber parked on
 * something another thread completes is woken by a delivery to its loop's
 * inbox; a thread that is not a loop waits on a futex instead.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "inbox.h"

#define DRAIN_BATCH 4096

/* ---------------------------------------------------------------- futex */

static void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
	syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

/* Wait while *addr == val, until @deadline (CLOCK_MONOTONIC, absolute: the
 * clock of corio_now). 0, or -ETIMEDOUT. */
static int futex_wait_until(_Atomic uint32_t *addr, uint32_t val, int64_t deadline)
{
	struct timespec ts = {0, 0}; /* a deadline before 0 has passed too */

	if (deadline > 0) {
		ts.tv_sec = deadline / CORIO_SEC;
		ts.tv_nsec = deadline % CORIO_SEC;
	}
	if (syscall(SYS_futex, addr, FUTEX_WAIT_BITSET_PRIVATE, val, &ts, NULL,
		    FUTEX_BITSET_MATCH_ANY) && errno == ETIMEDOUT)
		return -ETIMEDOUT;
	return 0;
}

static void futex_wake(_Atomic uint32_t *addr)
{
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* ---------------------------------------------------------------- inbox */

int corio__inbox_init(corio_loop *loop, unsigned size)
{
	struct corio__inbox *ib;
	uint64_t n = 2;

	while (n < size)
		n <<= 1;
	ib = aligned_alloc(CORIO__CACHELINE, sizeof(*ib));
	if (!ib)
		return -ENOMEM;
	memset(ib, 0, sizeof(*ib));
	ib->cells = calloc(n, sizeof(*ib->cells));
	if (!ib->cells) {
		free(ib);
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < n; i++)
		atomic_init(&ib->cells[i].seq, i);
	ib->mask = n - 1;
	loop->inbox = ib;
	return 0;
}

void corio__inbox_term(corio_loop *loop)
{
	if (!loop->inbox)
		return;
	while (atomic_load_explicit(&loop->inbox->remote_posting, memory_order_acquire))
		sched_yield();
	free(loop->inbox->cells);
	free(loop->inbox);
	loop->inbox = NULL;
}

bool corio__inbox_pending(corio_loop *loop)
{
	struct corio__inbox *ib = loop->inbox;

	return atomic_load_explicit(&ib->remote, memory_order_relaxed) ||
	       atomic_load_explicit(&ib->space_waiters, memory_order_relaxed) ||
	       corio__inbox_has_msg(ib);
}

/* Run a list taken from a delivery stack; returns its length. */
static unsigned run_stack(struct corio__remote *r)
{
	struct corio__remote *next;
	unsigned n = 0;

	for (; r; r = next, n++) {
		next = r->next; /* r->fn may hand r on to another queue */
		r->fn(r);
	}
	return n;
}

unsigned corio__inbox_drain(corio_loop *loop)
{
	struct corio__inbox *ib = loop->inbox;
	void (*fn)(void *);
	void *arg;
	unsigned n, m = 0;

	n = run_stack(corio__stack_take(&ib->remote));
	while (m < DRAIN_BATCH && corio__inbox_pop(ib, &fn, &arg)) {
		fn(arg);
		m++;
	}
	loop->stats.msgs_received += m;
	/* Senders that found the inbox full: there is room now. */
	if (atomic_load_explicit(&ib->space_waiters, memory_order_relaxed))
		n += run_stack(corio__stack_take(&ib->space_waiters));
	return n + m;
}

bool corio__inbox_sleep(corio_loop *loop)
{
	struct corio__inbox *ib = loop->inbox;

	/* About to sleep: publish it, then look once more (the loop's half of
	 * the Dekker pair; the fence pairs with the one in corio__notify). */
	atomic_store_explicit(&ib->state, CORIO__SLEEPING, memory_order_relaxed);
	atomic_thread_fence(memory_order_seq_cst);
	if (!corio__inbox_pending(loop))
		return true;
	/* Stay awake; a sender that saw SLEEPING meanwhile wakes us once more
	 * for nothing, which is harmless. */
	atomic_store_explicit(&ib->state, CORIO__AWAKE, memory_order_relaxed);
	return false;
}

void corio__inbox_awake(corio_loop *loop)
{
	atomic_store_explicit(&loop->inbox->state, CORIO__AWAKE, memory_order_relaxed);
}

void corio__notify(corio_loop *target)
{
	corio_loop *self = corio__tls_loop;
	struct corio__inbox *ib = target->inbox;

	if (target == self)
		return; /* we are its thread, so it is awake */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&ib->state, memory_order_relaxed) == CORIO__SLEEPING &&
	    atomic_exchange_explicit(&ib->state, CORIO__AWAKE, memory_order_acq_rel) ==
		    CORIO__SLEEPING) {
		target->be->wake(target, self);
		if (self)
			self->stats.wakes_sent++;
	} else if (self) {
		self->stats.wakes_elided++;
	}
}

void corio__remote_post(corio_loop *loop, struct corio__remote *r)
{
	struct corio__inbox *ib = loop->inbox;

	/* Once r is pushed its owner may be woken and the loop may end; the
	 * count keeps the loop (and its inbox) alive until we are done with
	 * it: corio__inbox_term waits for it to drop to zero. */
	atomic_fetch_add_explicit(&ib->remote_posting, 1, memory_order_acq_rel);
	corio__stack_push(&ib->remote, r);
	corio__notify(loop);
	atomic_fetch_sub_explicit(&ib->remote_posting, 1, memory_order_release);
}

/* ---------------------------------------------------------------- xwait */

static void abort_none(struct corio__wait *w, int reason)
{
	(void)w;
	(void)reason; /* the delivery is on its way; wait for it */
}

void corio__xwait_init(struct corio__xwait *x, void (*abort)(struct corio__wait *, int))
{
	memset(x, 0, sizeof(*x));
	x->loop = corio__self() ? corio__tls_loop : NULL;
	x->w.abort = abort ? abort : abort_none;
	x->w.obj = x;
	corio__list_init(&x->link);
	atomic_init(&x->futex, 0);
}

/*
 * A thread without a loop blocks on the futex. At its deadline it calls the
 * wait's abort, as a fiber's timer would: either the abort takes it off the
 * object's list and completes the wait (w.done, with the reason), or a waker
 * has taken it already and the delivery is on its way (wait for it, without
 * a deadline: it comes at once).
 */
static int foreign_park(struct corio__xwait *x, int64_t deadline)
{
	bool aborted = false;

	for (;;) {
		if (atomic_load_explicit(&x->futex, memory_order_acquire))
			return x->res;
		if (x->w.done)
			return x->w.res;
		if (deadline && !aborted) {
			if (futex_wait_until(&x->futex, 0, deadline) == -ETIMEDOUT) {
				aborted = true;
				x->w.abort(&x->w, -ETIMEDOUT);
			}
		} else {
			futex_wait(&x->futex, 0);
		}
	}
}

int corio__xwait_park(struct corio__xwait *x, int64_t deadline)
{
	int res;

	if (!x->loop)
		return foreign_park(x, deadline);
	x->loop->remote_waiters++;
	res = corio__park(&x->w, deadline);
	x->loop->remote_waiters--;
	return res;
}

static void xwait_home(struct corio__remote *r)
{
	struct corio__xwait *x = corio__container_of(r, struct corio__xwait, r);

	corio__wake(&x->w, x->res);
}

void corio__xwait_deliver(struct corio__xwait *x, int res)
{
	x->res = res;
	if (x->loop) {
		x->r.fn = xwait_home;
		corio__remote_post(x->loop, &x->r);
		return;
	}
	/* After this store the waiter may return; the wake below only uses
	 * the address, which is harmless even if the memory moved on. */
	atomic_store_explicit(&x->futex, 1, memory_order_release);
	futex_wake(&x->futex);
}
