/*
 * Layer op: operations. The central record is struct corio__op: one
 * operation, described in io_uring's own terms (a struct io_uring_sqe), so
 * that the io_uring backend copies it into the ring and the epoll backend
 * decodes the same fields. An op completes exactly once (or once per CQE
 * while CORIO_F_MORE is set for multishot ops) through corio__op_complete(),
 * whatever the backend.
 *
 * op.c: the life of an op (start, complete, cancel, deadlines), fiber and
 * async ops, the pool of async records; io.c: the typed calls.
 */
#ifndef CORIO_OP_H
#define CORIO_OP_H

#include <liburing.h>

#include "fiber/fiber.h"
#include "opdef.h"
#include "seam.h"

enum corio__op_kind {
	CORIO__OP_FIBER, /* a fiber waits for it (op lives on the fiber's stack) */
	CORIO__OP_ASYNC, /* completion API: callback (op from the loop's pool) */
};

enum corio__op_state {
	CORIO__OP_FREE,	    /* in the pool */
	CORIO__OP_IDLE,	    /* prepared, not started */
	CORIO__OP_BACKEND,  /* given to the backend (in the kernel, a backlog, a wait list) */
	CORIO__OP_TIMER,    /* an async timer: lives in the timer heap only */
	CORIO__OP_DONE_DUE, /* completed inline; its callback runs next turn */
	CORIO__OP_DONE,	    /* completed */
};

/* Opcode for async timers (never reaches a backend). */
#define CORIO__OPCODE_TIMER 0xff

struct corio__wait;

struct corio__op {
	struct io_uring_sqe sqe;   /* what to do; user_data is ours */
	struct corio_list link;	   /* the loop's due list, or a backend's lists */
	struct corio__timer timer; /* deadline (kind CORIO__TIMER_OP) */
	uint8_t kind;		   /* enum corio__op_kind */
	uint8_t state;		   /* enum corio__op_state */
	bool multishot;		   /* may complete more than once */
	bool cancel_sent;	   /* a cancellation was asked of the backend */
	int16_t cancel_res;	   /* what -ECANCELED stands for: -ECANCELED or -ETIMEDOUT */
	int32_t res;
	uint32_t cflags;
	uint32_t gen; /* async ops: generation, part of the request id */
	uint32_t idx; /* async ops: slot in the pool */
	union {
		struct corio__wait *wait; /* CORIO__OP_FIBER */
		struct {
			corio_cb cb;
			void *user;
		} async; /* CORIO__OP_ASYNC */
	};
	uint64_t bpriv[3]; /* the backend's scratch space */
};

/* Start an op with the backend (or complete it at once if it cannot start). */
void corio__op_start(corio_loop *loop, struct corio__op *op);
/* Called by backends: the op finished with @res (and CQE @flags). */
void corio__op_complete(corio_loop *loop, struct corio__op *op, int res, uint32_t flags);
/* Called by backends when the completion happens inside the start call: a
 * fiber sees it on return, a callback runs at the next turn. */
void corio__op_complete_inline(corio_loop *loop, struct corio__op *op, int res);
/* Ask for cancellation; a completion (-ECANCELED stands for @reason) follows. */
void corio__op_cancel(corio_loop *loop, struct corio__op *op, int reason);
/* Arm or clear (deadline 0) an op's deadline. */
void corio__op_set_deadline(corio_loop *loop, struct corio__op *op, int64_t deadline);

/* Fire the timers that are due (waits, op deadlines, async timers);
 * returns how many. */
size_t corio__timers_fire(corio_loop *loop, int64_t now);

int corio__op_pool_init(struct corio__op_pool *p);
void corio__op_pool_term(struct corio__op_pool *p);
struct corio__op *corio__op_alloc(corio_loop *loop);
void corio__op_free(corio_loop *loop, struct corio__op *op);
struct corio__op *corio__op_lookup(corio_loop *loop, corio_req id);
/* Run the callbacks of ops that completed inline. */
void corio__run_due(corio_loop *loop);
/* Cancel every pending async op (destroy). */
void corio__cancel_all_async(corio_loop *loop);

/* Blocking op from a fiber: start @op, park until it completes. */
int corio__fiber_io(struct corio__op *op, int64_t deadline);
/* Async op from the pool for the loop's thread (NULL and *err set on error). */
struct corio__op *corio__async_op(corio_loop *loop, corio_cb cb, int *err);
/* Start a prepared async op; returns its request id. */
corio_req corio__async_start(corio_loop *loop, struct corio__op *op, corio_cb cb, void *user);

/* Close any descriptor at once, without an operation: close(2), or for a
 * direct one the backend's close_now; for paths that cannot wait. */
int corio__close_now(int fd);

#endif
