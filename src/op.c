/*
 * Operations: the one path by which fiber calls and async calls reach a
 * backend and come back.
 *
 * Life of an op: IDLE -> start -> BACKEND -> complete -> DONE. An async op
 * completed inside its start call (epoll did it at once, or the opcode is
 * unsupported) passes through DONE_DUE: its callback runs at the next turn,
 * never inside the call that started it. Async timers skip the backend and
 * live only in the timer heap (state TIMER).
 *
 * Cancellation asks the backend to cancel and then waits like any op: the
 * completion still comes, with -ECANCELED (turned into -ETIMEDOUT when the
 * cancellation came from a deadline) or with the real result if the op won
 * the race. This is what keeps buffers owned by the kernel until it is done.
 *
 * Multishot completions (CORIO_F_MORE) keep the op alive. A fiber op can
 * only take one result: on a CQE with F_MORE it keeps the first result,
 * cancels the rest (except for zero-copy sends, whose second CQE is the
 * notification that the buffer is free) and resumes on the final CQE.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "op.h"

#define CHUNK 256u

void corio__op_start(corio_loop *loop, struct corio__op *op)
{
	op->state = CORIO__OP_BACKEND;
	op->cancel_sent = false;
	op->cancel_res = 0;
	op->multishot = false;
	op->res = 0;
	op->cflags = 0;
	op->timer.armed = false;
	corio__list_init(&op->link);
	loop->inflight++;
	loop->stats.ops_started++;
	loop->be->submit(loop, op);
}

/* The op will not complete again: leave the backend, drop its deadline. */
static int finish(corio_loop *loop, struct corio__op *op, int res)
{
	if (op->state == CORIO__OP_BACKEND)
		loop->inflight--;
	if (CORIO_UNLIKELY(op->timer.armed)) /* most ops have no deadline */
		corio__timer_disarm(&loop->timers, &op->timer);
	if (res == -ECANCELED && op->cancel_res)
		res = op->cancel_res;
	return res;
}

static void fiber_op_complete(corio_loop *loop, struct corio__op *op, int res, uint32_t flags)
{
	if (flags & IORING_CQE_F_MORE) {
		/* Keep the first result; resume on the final CQE. */
		if (!op->multishot) {
			op->multishot = true;
			op->res = res;
			if (!corio__opdef(op->sqe.opcode)->notif)
				corio__op_cancel(loop, op, -ECANCELED);
		}
		return;
	}
	if (op->multishot)
		res = op->res; /* a zero-copy notification, or the end of a multishot op */
	res = finish(loop, op, res);
	op->state = CORIO__OP_DONE;
	op->res = res;
	op->cflags = flags;
	corio__wake(op->wait, res);
}

static void async_op_complete(corio_loop *loop, struct corio__op *op, int res, uint32_t flags)
{
	corio_cb cb = op->async.cb;
	void *user = op->async.user;

	if (!(flags & IORING_CQE_F_MORE)) {
		res = finish(loop, op, res);
		loop->pending_async--;
		corio__op_free(loop, op);
	}
	cb(loop, res, flags, user);
}

void corio__op_complete(corio_loop *loop, struct corio__op *op, int res, uint32_t flags)
{
	loop->stats.ops_completed++;
	if (op->kind == CORIO__OP_FIBER)
		fiber_op_complete(loop, op, res, flags);
	else
		async_op_complete(loop, op, res, flags);
}

void corio__op_complete_inline(corio_loop *loop, struct corio__op *op, int res)
{
	if (op->kind == CORIO__OP_FIBER) {
		corio__op_complete(loop, op, res, 0);
		return;
	}
	loop->stats.ops_completed++;
	op->res = finish(loop, op, res);
	op->state = CORIO__OP_DONE_DUE;
	corio__list_push_back(&loop->due, &op->link);
}

void corio__run_due(corio_loop *loop)
{
	struct corio_list batch, *n;

	corio__list_init(&batch);
	corio__list_splice(&batch, &loop->due);
	while ((n = corio__list_pop_front(&batch))) {
		struct corio__op *op = corio__container_of(n, struct corio__op, link);
		corio_cb cb = op->async.cb;
		void *user = op->async.user;
		int res = op->res;

		loop->pending_async--;
		corio__op_free(loop, op);
		cb(loop, res, 0, user);
	}
}

void corio__op_cancel(corio_loop *loop, struct corio__op *op, int reason)
{
	switch (op->state) {
	case CORIO__OP_BACKEND:
		if (!op->cancel_res)
			op->cancel_res = (int16_t)reason;
		if (!op->cancel_sent) {
			op->cancel_sent = true;
			loop->be->cancel(loop, op);
		}
		break;
	case CORIO__OP_TIMER:
		/* An async timer: nothing in the kernel, complete it now. */
		corio__op_complete_inline(loop, op, reason);
		break;
	default:
		break; /* already completed */
	}
}

void corio__op_set_deadline(corio_loop *loop, struct corio__op *op, int64_t deadline)
{
	if (!deadline) {
		corio__timer_disarm(&loop->timers, &op->timer);
		return;
	}
	op->timer.kind = CORIO__TIMER_OP;
	corio__timer_arm(&loop->timers, &op->timer, deadline);
}

size_t corio__timers_fire(corio_loop *loop, int64_t now)
{
	struct corio__timer *t;
	size_t n = 0;

	while ((t = corio__timer_first(&loop->timers)) && t->deadline <= now) {
		corio__timer_disarm(&loop->timers, t);
		n++;
		if (t->kind == CORIO__TIMER_WAIT) {
			struct corio__wait *w = corio__container_of(t, struct corio__wait, timer);

			w->abort(w, -ETIMEDOUT);
			continue;
		}
		struct corio__op *op = corio__container_of(t, struct corio__op, timer);

		if (op->state == CORIO__OP_TIMER) {
			corio__op_complete(loop, op, 0, 0);
		} else {
			corio__op_cancel(loop, op, -ETIMEDOUT);
		}
	}
	loop->stats.timers_fired += n;
	return n;
}

/* ------------------------------------------------------------ fiber ops */

static void abort_io(struct corio__wait *w, int reason)
{
	struct corio__op *op = w->obj;

	corio__op_cancel(w->fiber->loop, op, reason);
}

int corio__fiber_io(struct corio__op *op, int64_t deadline)
{
	corio_fiber *f = corio__self();
	struct corio__wait w = {.abort = abort_io, .obj = op};
	int err;

	if (!f)
		return -EPERM;
	err = corio__take_cancel(f);
	if (err)
		return err;
	if (deadline && deadline <= corio_now())
		return -ETIMEDOUT;
	op->kind = CORIO__OP_FIBER;
	op->wait = &w;
	corio__op_start(f->loop, op);
	if (w.done)
		return w.res;
	if (deadline)
		corio__op_set_deadline(f->loop, op, deadline);
	return corio__park(&w, 0);
}

/* ------------------------------------------------------- the async pool */

int corio__op_pool_init(struct corio__op_pool *p)
{
	memset(p, 0, sizeof(*p));
	corio__list_init(&p->free);
	return 0;
}

void corio__op_pool_term(struct corio__op_pool *p)
{
	for (uint32_t i = 0; i < p->nchunks; i++)
		free(p->chunks[i]);
	free(p->chunks);
	memset(p, 0, sizeof(*p));
}

static int pool_grow(struct corio__op_pool *p)
{
	struct corio__op **chunks, *c;

	chunks = realloc(p->chunks, (p->nchunks + 1) * sizeof(*chunks));
	if (!chunks)
		return -ENOMEM;
	p->chunks = chunks;
	c = calloc(CHUNK, sizeof(*c));
	if (!c)
		return -ENOMEM;
	for (uint32_t i = CHUNK; i-- > 0;) {
		c[i].idx = p->nchunks * CHUNK + i;
		c[i].state = CORIO__OP_FREE;
		corio__list_push_front(&p->free, &c[i].link);
	}
	p->chunks[p->nchunks++] = c;
	return 0;
}

struct corio__op *corio__op_alloc(corio_loop *loop)
{
	struct corio__op_pool *p = &loop->ops;
	struct corio__op *op;

	if (corio__list_empty(&p->free) && pool_grow(p))
		return NULL;
	op = corio__container_of(corio__list_pop_front(&p->free), struct corio__op, link);
	/* 1 .. 2^31-1, wrapping to 1: ids stay positive. (Not a modulo: this
	 * runs once per async op.) */
	op->gen = op->gen < 0x7fffffffu ? op->gen + 1 : 1;
	op->state = CORIO__OP_IDLE;
	op->kind = CORIO__OP_ASYNC;
	return op;
}

void corio__op_free(corio_loop *loop, struct corio__op *op)
{
	op->state = CORIO__OP_FREE;
	corio__list_push_front(&loop->ops.free, &op->link);
}

static corio_req op_id(const struct corio__op *op)
{
	return (corio_req)((uint64_t)op->gen << 32 | op->idx);
}

struct corio__op *corio__op_lookup(corio_loop *loop, corio_req id)
{
	uint32_t idx = (uint32_t)id, gen = (uint32_t)((uint64_t)id >> 32);
	struct corio__op *op;

	if (id <= 0 || idx / CHUNK >= loop->ops.nchunks)
		return NULL;
	op = &loop->ops.chunks[idx / CHUNK][idx % CHUNK];
	if (op->gen != gen)
		return NULL;
	/* Pending until its callback has run: in the backend, an async
	 * timer, or completed inline with the callback due next turn. */
	if (op->state != CORIO__OP_BACKEND && op->state != CORIO__OP_TIMER &&
	    op->state != CORIO__OP_DONE_DUE)
		return NULL;
	return op;
}

void corio__cancel_all_async(corio_loop *loop)
{
	for (uint32_t c = 0; c < loop->ops.nchunks; c++)
		for (uint32_t i = 0; i < CHUNK; i++)
			corio__op_cancel(loop, &loop->ops.chunks[c][i], -ECANCELED);
}

/* Check the loop for the async API: the caller's thread must own it. */
static int check_loop(corio_loop *loop)
{
	if (!loop)
		return -EINVAL;
	return loop == corio__tls_loop ? 0 : -EPERM;
}

struct corio__op *corio__async_op(corio_loop *loop, corio_cb cb, int *err)
{
	struct corio__op *op;

	*err = check_loop(loop);
	if (*err)
		return NULL;
	if (!cb) {
		*err = -EINVAL;
		return NULL;
	}
	op = corio__op_alloc(loop);
	if (!op)
		*err = -ENOMEM;
	return op;
}

corio_req corio__async_start(corio_loop *loop, struct corio__op *op, corio_cb cb, void *user)
{
	corio_req id = op_id(op);

	op->async.cb = cb;
	op->async.user = user;
	loop->pending_async++;
	if (CORIO_UNLIKELY(loop->closing)) {
		/* Destroy has cancelled everything already: an operation
		 * started now (by a callback that re-arms, say) would never be
		 * cancelled and destroy could wait for it forever. Like a
		 * fiber's blocking call, it fails at once (callback next turn). */
		op->cancel_res = 0;
		op->timer.armed = false;
		corio__op_complete_inline(loop, op, -ECANCELED);
		return id;
	}
	corio__op_start(loop, op);
	return id;
}

int corio_async_cancel(corio_loop *loop, corio_req id)
{
	struct corio__op *op;
	int err = check_loop(loop);

	if (err)
		return err;
	op = corio__op_lookup(loop, id);
	if (!op)
		return -ENOENT;
	corio__op_cancel(loop, op, -ECANCELED);
	return 0;
}

int corio_async_deadline(corio_loop *loop, corio_req id, int64_t deadline)
{
	struct corio__op *op;
	int err = check_loop(loop);

	if (err)
		return err;
	op = corio__op_lookup(loop, id);
	if (!op || op->state == CORIO__OP_TIMER)
		return -ENOENT;
	if (op->state == CORIO__OP_BACKEND)
		corio__op_set_deadline(loop, op, deadline);
	/* DONE_DUE: it completed first; its callback has the result. */
	return 0;
}

corio_req corio_async_timer(corio_loop *loop, int64_t deadline, corio_cb cb, void *user)
{
	int err;
	struct corio__op *op = corio__async_op(loop, cb, &err);
	corio_req id;

	if (!op)
		return err;
	id = op_id(op);
	op->async.cb = cb;
	op->async.user = user;
	op->sqe.opcode = CORIO__OPCODE_TIMER;
	op->state = CORIO__OP_TIMER;
	op->cancel_res = 0;
	op->timer.armed = false;
	op->timer.kind = CORIO__TIMER_OP;
	corio__list_init(&op->link);
	loop->pending_async++;
	if (CORIO_UNLIKELY(loop->closing)) {
		corio__op_complete_inline(loop, op, -ECANCELED); /* see corio__async_start */
		return id;
	}
	corio__timer_arm(&loop->timers, &op->timer, deadline > 0 ? deadline : 1);
	return id;
}
