/*
 * Synchronisation between the fibers of one loop. Single-threaded by
 * construction (DESIGN rule 4), so plain fields and intrusive FIFO wait
 * queues; every wait is a struct corio__wait on the waiter's stack, queued
 * on the object, aborted (unlinked, woken) by a deadline or a cancellation.
 *
 * Handoff, not barging: unlock gives the mutex to the first waiter before
 * waking it, and a channel copies an element straight into (or out of) a
 * parked peer's buffer, so a woken fiber never finds its prize taken.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fiber/fiber.h"
#include "sync.h"

/* Park the running fiber on @q. Returns the wake result. */
static int wait_on(struct corio_list *q, void *obj, int64_t deadline)
{
	struct corio__wait w = {.abort = corio__abort_unlink, .obj = obj};

	corio__list_push_back(q, &w.link);
	return corio__park(&w, deadline);
}

static struct corio__wait *first_waiter(struct corio_list *q)
{
	struct corio_list *n = corio__list_pop_front(q);

	return n ? corio__container_of(n, struct corio__wait, link) : NULL;
}

/* The running fiber, with a pending cancellation consumed; err set if none. */
static corio_fiber *enter_wait(int *err)
{
	corio_fiber *f = corio__self();

	*err = f ? corio__take_cancel(f) : -EPERM;
	return *err ? NULL : f;
}

/* ------------------------------------------------------------------ mutex */

void corio_mutex_init(corio_mutex *m)
{
	m->owner = NULL;
	corio__list_init(&m->waiters);
}

int corio_mutex_try_lock(corio_mutex *m)
{
	corio_fiber *f = corio__self();

	if (!f)
		return -EPERM;
	if (m->owner)
		return -EBUSY;
	m->owner = f;
	return 0;
}

int corio_mutex_lock_until(corio_mutex *m, int64_t deadline)
{
	corio_fiber *f = corio__self();
	int err;

	if (!f)
		return -EPERM;
	if (!m->owner) {
		m->owner = f;
		return 0;
	}
	if (m->owner == f)
		return -EDEADLK;
	if (!enter_wait(&err))
		return err;
	return wait_on(&m->waiters, m, deadline); /* 0: unlock handed it to us */
}

int corio_mutex_lock(corio_mutex *m)
{
	return corio_mutex_lock_until(m, 0);
}

int corio_mutex_unlock(corio_mutex *m)
{
	struct corio__wait *w;

	if (!m->owner || m->owner != corio__self())
		return -EPERM;
	w = first_waiter(&m->waiters);
	m->owner = w ? w->fiber : NULL;
	if (w)
		corio__wake(w, 0);
	return 0;
}

/* --------------------------------------------------------------- condition */

void corio_cond_init(corio_cond *c)
{
	corio__list_init(&c->waiters);
}

/*
 * Take @m for cond_wait, which must return holding it whatever happened. A
 * cancellation that arrives meanwhile is not lost: it stays pending for the
 * caller's next blocking call.
 */
static void relock(corio_mutex *m, corio_fiber *f)
{
	bool cancelled = false;

	while (m->owner != f) {
		if (!m->owner) {
			m->owner = f;
			break;
		}
		if (wait_on(&m->waiters, m, 0) == -ECANCELED)
			cancelled = true;
	}
	if (cancelled)
		f->cancel_pending = true;
}

int corio_cond_wait_until(corio_cond *c, corio_mutex *m, int64_t deadline)
{
	corio_fiber *f = corio__self();
	int err;

	if (!f || m->owner != f)
		return -EPERM;
	if (!enter_wait(&err))
		return err;
	corio_mutex_unlock(m);
	err = wait_on(&c->waiters, c, deadline);
	relock(m, f);
	return err;
}

int corio_cond_wait(corio_cond *c, corio_mutex *m)
{
	return corio_cond_wait_until(c, m, 0);
}

void corio_cond_signal(corio_cond *c)
{
	struct corio__wait *w = first_waiter(&c->waiters);

	if (w)
		corio__wake(w, 0);
}

void corio_cond_broadcast(corio_cond *c)
{
	struct corio__wait *w;

	while ((w = first_waiter(&c->waiters)))
		corio__wake(w, 0);
}

/* ------------------------------------------------------------------ event */

void corio_event_init(corio_event *e)
{
	e->set = false;
	corio__list_init(&e->waiters);
}

void corio_event_set(corio_event *e)
{
	struct corio__wait *w;

	e->set = true;
	while ((w = first_waiter(&e->waiters)))
		corio__wake(w, 0);
}

void corio_event_reset(corio_event *e)
{
	e->set = false;
}

bool corio_event_is_set(const corio_event *e)
{
	return e->set;
}

int corio_event_wait_until(corio_event *e, int64_t deadline)
{
	int err;

	if (!corio__self())
		return -EPERM;
	if (e->set)
		return 0;
	if (!enter_wait(&err))
		return err;
	return wait_on(&e->waiters, e, deadline);
}

int corio_event_wait(corio_event *e)
{
	return corio_event_wait_until(e, 0);
}

/* ---------------------------------------------------------------- channel */

/* A parked sender or receiver: the element it brings or the slot it fills. */
struct chan_wait {
	struct corio__wait w;
	void *elem;
};

int corio__elems_init(struct corio__elems *q, size_t elem_size, size_t cap)
{
	memset(q, 0, sizeof(*q));
	if (elem_size == 0 || (cap && elem_size > SIZE_MAX / cap))
		return -EINVAL;
	q->elem_size = elem_size;
	q->cap = cap;
	if (cap) {
		q->buf = malloc(elem_size * cap);
		if (!q->buf)
			return -ENOMEM;
	}
	return 0;
}

void corio__elems_fini(struct corio__elems *q)
{
	free(q->buf);
	q->buf = NULL;
}

bool corio__elems_push(struct corio__elems *q, const void *elem)
{
	if (q->count == q->cap)
		return false;
	memcpy(q->buf + ((q->head + q->count) % q->cap) * q->elem_size, elem, q->elem_size);
	q->count++;
	return true;
}

bool corio__elems_pop(struct corio__elems *q, void *elem)
{
	if (!q->count)
		return false;
	memcpy(elem, q->buf + q->head * q->elem_size, q->elem_size);
	q->head = (q->head + 1) % q->cap;
	q->count--;
	return true;
}

int corio_chan_init(corio_chan *ch, size_t elem_size, size_t capacity)
{
	memset(ch, 0, sizeof(*ch));
	corio__list_init(&ch->senders);
	corio__list_init(&ch->receivers);
	return corio__elems_init(&ch->q, elem_size, capacity);
}

void corio_chan_destroy(corio_chan *ch)
{
	corio__elems_fini(&ch->q);
}

static struct chan_wait *first_chan_waiter(struct corio_list *q)
{
	struct corio__wait *w = first_waiter(q);

	return w ? corio__container_of(w, struct chan_wait, w) : NULL;
}

int corio_chan_try_send(corio_chan *ch, const void *elem)
{
	struct chan_wait *r;

	if (ch->closed)
		return -EPIPE;
	r = first_chan_waiter(&ch->receivers);
	if (r) {
		memcpy(r->elem, elem, ch->q.elem_size);
		corio__wake(&r->w, 0);
		return 0;
	}
	return corio__elems_push(&ch->q, elem) ? 0 : -EAGAIN;
}

int corio_chan_try_recv(corio_chan *ch, void *elem)
{
	struct chan_wait *s;

	if (corio__elems_pop(&ch->q, elem)) {
		/* A slot opened: move a parked sender's element in. */
		s = first_chan_waiter(&ch->senders);
		if (s) {
			corio__elems_push(&ch->q, s->elem);
			corio__wake(&s->w, 0);
		}
		return 0;
	}
	s = first_chan_waiter(&ch->senders); /* rendezvous, or a full buffer of 0 */
	if (s) {
		memcpy(elem, s->elem, ch->q.elem_size);
		corio__wake(&s->w, 0);
		return 0;
	}
	return ch->closed ? -EPIPE : -EAGAIN;
}

static int chan_wait(struct corio_list *q, corio_chan *ch, void *elem, int64_t deadline)
{
	struct chan_wait cw = {.w = {.abort = corio__abort_unlink, .obj = ch}, .elem = elem};
	int err;

	if (!enter_wait(&err))
		return err;
	corio__list_push_back(q, &cw.w.link);
	return corio__park(&cw.w, deadline);
}

int corio_chan_send_until(corio_chan *ch, const void *elem, int64_t deadline)
{
	int err;

	if (!corio__self())
		return -EPERM;
	err = corio_chan_try_send(ch, elem);
	if (err != -EAGAIN)
		return err;
	return chan_wait(&ch->senders, ch, (void *)elem, deadline);
}

int corio_chan_send(corio_chan *ch, const void *elem)
{
	return corio_chan_send_until(ch, elem, 0);
}

int corio_chan_recv_until(corio_chan *ch, void *elem, int64_t deadline)
{
	int err;

	if (!corio__self())
		return -EPERM;
	err = corio_chan_try_recv(ch, elem);
	if (err != -EAGAIN)
		return err;
	return chan_wait(&ch->receivers, ch, elem, deadline);
}

int corio_chan_recv(corio_chan *ch, void *elem)
{
	return corio_chan_recv_until(ch, elem, 0);
}

void corio_chan_close(corio_chan *ch)
{
	struct corio__wait *w;

	ch->closed = true;
	while ((w = first_waiter(&ch->receivers)))
		corio__wake(w, -EPIPE);
	while ((w = first_waiter(&ch->senders)))
		corio__wake(w, -EPIPE);
}

size_t corio_chan_len(const corio_chan *ch)
{
	return ch->q.count;
}

/* -------------------------------------------------------------- waitgroup */

void corio_waitgroup_init(corio_waitgroup *wg)
{
	wg->count = 0;
	corio__list_init(&wg->waiters);
}

int corio_waitgroup_add(corio_waitgroup *wg, int64_t n)
{
	struct corio__wait *w;

	if (wg->count + n < 0)
		return -EINVAL;
	wg->count += n;
	if (wg->count == 0)
		while ((w = first_waiter(&wg->waiters)))
			corio__wake(w, 0);
	return 0;
}

int corio_waitgroup_done(corio_waitgroup *wg)
{
	return corio_waitgroup_add(wg, -1);
}

int corio_waitgroup_wait_until(corio_waitgroup *wg, int64_t deadline)
{
	int err;

	if (!corio__self())
		return -EPERM;
	if (wg->count == 0)
		return 0;
	if (!enter_wait(&err))
		return err;
	return wait_on(&wg->waiters, wg, deadline);
}

int corio_waitgroup_wait(corio_waitgroup *wg)
{
	return corio_waitgroup_wait_until(wg, 0);
}
