/*
 * Synchronisation between fibers of different loops: event, semaphore,
 * channel. Each object has a spinlock (held for a few instructions, never
 * across a switch) and FIFO lists of waiters. A waiter is a corio__xwait on
 * the fiber's stack; waking one means taking it off the list under the lock,
 * then delivering it to its loop (a message that costs a system call only if
 * that loop sleeps).
 *
 * Timeouts and cancellation race with wakes across threads. The rule: the
 * waiter's abort takes the lock and, if it is still on the list, unlinks
 * itself and resumes with the reason; if it is not, a waker already took it
 * (and, for a semaphore or a channel, handed it a permit or an element), so
 * it keeps waiting for that delivery and succeeds. Nothing handed over is
 * lost to a timeout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../sync.h"
#include "inbox.h"

/* -------------------------------------------------------- spinlock, queue */

static void lock(_Atomic int *l)
{
	for (;;) {
		if (!atomic_exchange_explicit(l, 1, memory_order_acquire))
			return;
		while (atomic_load_explicit(l, memory_order_relaxed)) {
#if defined(__x86_64__)
			__builtin_ia32_pause();
#elif defined(__aarch64__)
			__asm__ volatile("yield");
#endif
		}
	}
}

static void unlock(_Atomic int *l)
{
	atomic_store_explicit(l, 0, memory_order_release);
}

/* The lock is the first field of every object here. */
static void abort_locked(struct corio__wait *w, int reason)
{
	struct corio__xwait *x = w->obj;
	_Atomic int *l = x->obj;
	bool mine;

	lock(l);
	mine = corio__list_linked(&x->link);
	if (mine)
		corio__list_remove(&x->link);
	unlock(l);
	if (mine)
		corio__wake(&x->w, reason);
	/* else: a waker took us; its delivery is on the way */
}

/* Queue the running fiber on @q (lock held by the caller, released here)
 * and park it. Returns 0 when a waker delivered it, or the abort reason. */
static int park_on(_Atomic int *l, struct corio_list *q, struct corio__xwait *x,
		   int64_t deadline)
{
	x->obj = (void *)l;
	corio__list_push_back(q, &x->link);
	unlock(l);
	return corio__xwait_park(x, deadline);
}

static struct corio__xwait *take_first(struct corio_list *q)
{
	struct corio_list *n = corio__list_pop_front(q);

	return n ? corio__container_of(n, struct corio__xwait, link) : NULL;
}

/* Waiters unlinked under the lock, chained through r.next (unused until
 * delivery), so that the delivery can happen after unlocking. */
struct chain {
	struct corio__remote *head, *tail;
};

static void take_all(struct corio_list *q, struct chain *c)
{
	struct corio__xwait *x;

	while ((x = take_first(q))) {
		x->r.next = NULL;
		if (c->tail)
			c->tail->next = &x->r;
		else
			c->head = &x->r;
		c->tail = &x->r;
	}
}

static void deliver_chain(struct corio__remote *r, int res)
{
	struct corio__remote *next;

	for (; r; r = next) {
		next = r->next;
		corio__xwait_deliver(corio__container_of(r, struct corio__xwait, r), res);
	}
}

/* A caller about to wait: a fiber (-ECANCELED if a cancellation is
 * pending), or a thread without a loop, which blocks (corio__xwait_park).
 * A loop's own stack must not block its loop: -EPERM. */
static int may_wait(void)
{
	corio_fiber *f = corio__self();

	if (f)
		return corio__take_cancel(f);
	return corio__tls_loop ? -EPERM : 0;
}

/* ------------------------------------------------------------------ event */

struct xevent {
	_Atomic int lock;
	bool set;
	struct corio_list waiters;
};
_Static_assert(sizeof(struct xevent) <= sizeof(corio_xevent), "corio_xevent too small");

void corio_xevent_init(corio_xevent *ev)
{
	struct xevent *e = (struct xevent *)ev;

	atomic_init(&e->lock, 0);
	e->set = false;
	corio__list_init(&e->waiters);
}

void corio_xevent_set(corio_xevent *ev)
{
	struct xevent *e = (struct xevent *)ev;
	struct chain c = {NULL, NULL};

	lock(&e->lock);
	e->set = true;
	take_all(&e->waiters, &c);
	unlock(&e->lock);
	deliver_chain(c.head, 0);
}

void corio_xevent_reset(corio_xevent *ev)
{
	struct xevent *e = (struct xevent *)ev;

	lock(&e->lock);
	e->set = false;
	unlock(&e->lock);
}

bool corio_xevent_is_set(corio_xevent *ev)
{
	struct xevent *e = (struct xevent *)ev;
	bool set;

	lock(&e->lock);
	set = e->set;
	unlock(&e->lock);
	return set;
}

int corio_xevent_wait_until(corio_xevent *ev, int64_t deadline)
{
	struct xevent *e = (struct xevent *)ev;
	struct corio__xwait x;
	int err = may_wait();

	if (err)
		return err;
	lock(&e->lock);
	if (e->set) {
		unlock(&e->lock);
		return 0;
	}
	corio__xwait_init(&x, abort_locked);
	return park_on(&e->lock, &e->waiters, &x, deadline);
}

int corio_xevent_wait(corio_xevent *e)
{
	return corio_xevent_wait_until(e, 0);
}

/* -------------------------------------------------------------- semaphore */

struct xsem {
	_Atomic int lock;
	int64_t count;
	struct corio_list waiters;
};
_Static_assert(sizeof(struct xsem) <= sizeof(corio_xsem), "corio_xsem too small");

void corio_xsem_init(corio_xsem *sem, int64_t count)
{
	struct xsem *s = (struct xsem *)sem;

	atomic_init(&s->lock, 0);
	s->count = count > 0 ? count : 0;
	corio__list_init(&s->waiters);
}

void corio_xsem_post(corio_xsem *sem)
{
	struct xsem *s = (struct xsem *)sem;
	struct corio__xwait *x;

	lock(&s->lock);
	x = take_first(&s->waiters);
	if (!x)
		s->count++;
	unlock(&s->lock);
	if (x)
		corio__xwait_deliver(x, 0); /* the permit goes straight to it */
}

int corio_xsem_try_wait(corio_xsem *sem)
{
	struct xsem *s = (struct xsem *)sem;
	int err = -EAGAIN;

	lock(&s->lock);
	if (s->count > 0) {
		s->count--;
		err = 0;
	}
	unlock(&s->lock);
	return err;
}

int corio_xsem_wait_until(corio_xsem *sem, int64_t deadline)
{
	struct xsem *s = (struct xsem *)sem;
	struct corio__xwait x;
	int err = may_wait();

	if (err)
		return err;
	lock(&s->lock);
	if (s->count > 0) {
		s->count--;
		unlock(&s->lock);
		return 0;
	}
	corio__xwait_init(&x, abort_locked);
	return park_on(&s->lock, &s->waiters, &x, deadline);
}

int corio_xsem_wait(corio_xsem *s)
{
	return corio_xsem_wait_until(s, 0);
}

int64_t corio_xsem_value(corio_xsem *sem)
{
	struct xsem *s = (struct xsem *)sem;
	int64_t v;

	lock(&s->lock);
	v = s->count;
	unlock(&s->lock);
	return v;
}

/* ---------------------------------------------------------------- channel */

struct xchan {
	_Atomic int lock;
	bool closed;
	struct corio__elems q;
	struct corio_list senders, receivers;
};
_Static_assert(sizeof(struct xchan) <= sizeof(corio_xchan), "corio_xchan too small");

/* A parked sender's element, or a parked receiver's slot. */
struct xchan_wait {
	struct corio__xwait x;
	void *elem;
};

int corio_xchan_init(corio_xchan *chan, size_t elem_size, size_t capacity)
{
	struct xchan *ch = (struct xchan *)chan;

	memset(ch, 0, sizeof(*ch));
	corio__list_init(&ch->senders);
	corio__list_init(&ch->receivers);
	return corio__elems_init(&ch->q, elem_size, capacity);
}

void corio_xchan_destroy(corio_xchan *chan)
{
	struct xchan *ch = (struct xchan *)chan;

	corio__elems_fini(&ch->q);
}

static struct xchan_wait *take_chan_waiter(struct corio_list *q)
{
	struct corio__xwait *x = take_first(q);

	return x ? corio__container_of(x, struct xchan_wait, x) : NULL;
}

/* With the lock held: try to send. Returns 0, -EAGAIN or -EPIPE; *wake gets
 * a receiver to deliver after unlocking. */
static int send_locked(struct xchan *ch, const void *elem, struct xchan_wait **wake)
{
	struct xchan_wait *r;

	if (ch->closed)
		return -EPIPE;
	r = take_chan_waiter(&ch->receivers);
	if (r) {
		memcpy(r->elem, elem, ch->q.elem_size);
		*wake = r;
		return 0;
	}
	return corio__elems_push(&ch->q, elem) ? 0 : -EAGAIN;
}

static int recv_locked(struct xchan *ch, void *elem, struct xchan_wait **wake)
{
	struct xchan_wait *s;

	if (corio__elems_pop(&ch->q, elem)) {
		s = take_chan_waiter(&ch->senders);
		if (s) {
			corio__elems_push(&ch->q, s->elem);
			*wake = s;
		}
		return 0;
	}
	s = take_chan_waiter(&ch->senders);
	if (s) {
		memcpy(elem, s->elem, ch->q.elem_size);
		*wake = s;
		return 0;
	}
	return ch->closed ? -EPIPE : -EAGAIN;
}

static int xchan_op(struct xchan *ch, void *elem, bool send, bool wait, int64_t deadline)
{
	struct xchan_wait *wake = NULL, me;
	int err;

	if (wait && (err = may_wait()))
		return err;
	lock(&ch->lock);
	err = send ? send_locked(ch, elem, &wake) : recv_locked(ch, elem, &wake);
	if (err != -EAGAIN || !wait) {
		unlock(&ch->lock);
		if (wake)
			corio__xwait_deliver(&wake->x, 0);
		return err;
	}
	corio__xwait_init(&me.x, abort_locked);
	me.elem = elem;
	return park_on(&ch->lock, send ? &ch->senders : &ch->receivers, &me.x, deadline);
}

int corio_xchan_try_send(corio_xchan *ch, const void *elem)
{
	return xchan_op((struct xchan *)ch, (void *)elem, true, false, 0);
}

int corio_xchan_try_recv(corio_xchan *ch, void *elem)
{
	return xchan_op((struct xchan *)ch, elem, false, false, 0);
}

int corio_xchan_send_until(corio_xchan *ch, const void *elem, int64_t deadline)
{
	return xchan_op((struct xchan *)ch, (void *)elem, true, true, deadline);
}

int corio_xchan_send(corio_xchan *ch, const void *elem)
{
	return corio_xchan_send_until(ch, elem, 0);
}

int corio_xchan_recv_until(corio_xchan *ch, void *elem, int64_t deadline)
{
	return xchan_op((struct xchan *)ch, elem, false, true, deadline);
}

int corio_xchan_recv(corio_xchan *ch, void *elem)
{
	return corio_xchan_recv_until(ch, elem, 0);
}

void corio_xchan_close(corio_xchan *chan)
{
	struct xchan *ch = (struct xchan *)chan;
	struct chain c = {NULL, NULL};

	lock(&ch->lock);
	ch->closed = true;
	take_all(&ch->receivers, &c);
	take_all(&ch->senders, &c);
	unlock(&ch->lock);
	deliver_chain(c.head, -EPIPE);
}
