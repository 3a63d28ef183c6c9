/*
 * corio internals: the structures every layer shares.
 *
 * Layering (bottom up): backend (backend/uring.c, backend/epoll.c) <- loop
 * and ops (loop.c, op.c, timer.c) <- fibers (fiber/) <- blocking calls and
 * sync (io.c, sync.c).
 *
 * The central record is struct corio__op: one operation, described in
 * io_uring's own terms (a struct io_uring_sqe), so that the io_uring backend
 * copies it into the ring and the epoll backend decodes the same fields. An
 * op completes exactly once (or once per CQE while CORIO_F_MORE is set for
 * multishot ops) through corio__op_complete(), whatever the backend.
 *
 * Everything here is touched by the loop's own thread only (DESIGN rule 4).
 */
#ifndef CORIO_INTERNAL_H
#define CORIO_INTERNAL_H

#include <liburing.h>
#include <pthread.h>
#include <stdint.h>

#include "corio.h"
#include "list.h"
#include "pool/mpsc.h"

#if defined(__SANITIZE_ADDRESS__)
#define CORIO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORIO_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define CORIO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CORIO_TSAN 1
#endif
#endif

#define CORIO_LIKELY(x) __builtin_expect(!!(x), 1)
#define CORIO_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Largest read/write length; what Linux itself clamps to (MAX_RW_COUNT). */
#define CORIO__MAX_RW 0x7ffff000u

/* ---------------------------------------------------------------- timers */

enum corio__timer_kind {
	CORIO__TIMER_WAIT, /* a parked fiber's deadline (struct corio__wait) */
	CORIO__TIMER_OP,   /* an op's deadline, or an async timer (struct corio__op) */
};

/* A node of the loop's timer heap (a pairing heap: O(1) insert, O(log n)
 * amortised removal, no allocation). Ties are broken by arming order. */
struct corio__timer {
	struct corio__timer *child, *next, *prev; /* prev: parent if first child */
	int64_t deadline;
	uint64_t seq;
	uint8_t kind;
	bool armed;
};

struct corio__timers {
	struct corio__timer *root;
	uint64_t seq;
	size_t count;
};

void corio__timer_arm(struct corio__timers *h, struct corio__timer *t, int64_t deadline);
void corio__timer_disarm(struct corio__timers *h, struct corio__timer *t);
static inline struct corio__timer *corio__timer_first(const struct corio__timers *h)
{
	return h->root;
}

/* ------------------------------------------------------------------- ops */

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

/* The pool of async op records, addressed by request id. */
struct corio__op_pool {
	struct corio__op **chunks;
	uint32_t nchunks;
	struct corio_list free;
};

/* ----------------------------------------------- channel element buffers */

/* The ring of elements behind corio_chan and corio_xchan (sync.c). */
int corio__elems_init(struct corio__elems *q, size_t elem_size, size_t cap); /* 0, -EINVAL, -ENOMEM */
void corio__elems_fini(struct corio__elems *q);
bool corio__elems_push(struct corio__elems *q, const void *elem); /* false: full */
bool corio__elems_pop(struct corio__elems *q, void *elem);	   /* false: empty */

/* ------------------------------------------------------------ the backend */

/*
 * The seam between the loop and the kernel. Exactly one backend per loop,
 * chosen at loop creation. A backend never fails an op because it is busy:
 * it queues it. It reports every completion through corio__op_complete()
 * (or corio__op_complete_inline() from within submit).
 */
struct corio__backend {
	const char *name;
	/* Set up; on failure return -errno after printing nothing (the loop
	 * decides whether to fall back and what to say). @why gets a static
	 * explanation of the failure, naming the fix. */
	int (*init)(corio_loop *loop, const struct corio_loop_opts *opts, const char **why);
	/* Tear down. Called with nothing in flight. */
	void (*fini)(corio_loop *loop);
	/* Hand an op over. */
	void (*submit)(corio_loop *loop, struct corio__op *op);
	/* Ask that an op handed over be cancelled; its completion follows. */
	void (*cancel)(corio_loop *loop, struct corio__op *op);
	/* Submit what is queued, wait up to @timeout_ns (0: don't wait,
	 * -1: no limit) for events, and deliver the completions. Returns >= 0
	 * or -errno for a fatal error. */
	int (*poll)(corio_loop *loop, int64_t timeout_ns);
	/* Whether an io_uring opcode can run on this backend. */
	bool (*supported)(corio_loop *loop, int opcode);
	/* Wake @target from its kernel wait. Any thread; @sender is the
	 * calling thread's loop or NULL. Must make the target's next (or
	 * current) poll return even if it has not started waiting yet. */
	void (*wake)(corio_loop *target, corio_loop *sender);
	/* Send what wake() left queued on this loop (called when a run ends,
	 * since no next poll may come to carry it). */
	void (*flush)(corio_loop *loop);
};

extern const struct corio__backend corio__backend_uring;

/*
 * Valgrind cannot see io_uring write into memory: a buffer the kernel filled
 * looks uninitialised to it. When running under valgrind (and only then),
 * the io_uring backend marks what each completion wrote as defined.
 */
extern bool corio__valgrind;
void corio__valgrind_defined(const void *p, size_t len);
void corio__valgrind_completed(const struct corio__op *op, int res, uint32_t flags);

/* Test seam (io_uring): the next N requests for an SQE fail as if the SQ
 * were full and the kernel pushed back, so that the backlog and queued
 * cancellation paths, which a 6.x kernel never forces, can be tested. */
extern unsigned corio__fault_sq_refusals;
extern const struct corio__backend corio__backend_epoll;

/* -------------------------------------------------- provided buffers */

/*
 * io_uring provided-buffer rings (uring_bufs.c). A group is `nbufs` buffers
 * of `size` bytes registered as buffer group `bgid`; buffer `bid` is at
 * base + bid * size. Each buffer has a node, so that a connection can queue
 * the buffers it holds without allocating.
 */
struct corio__bufgroup;

struct corio__bufnode {
	struct corio__bufnode *next;
	struct corio__bufgroup *g;
	uint32_t len, off; /* bytes received, bytes consumed */
};

struct corio__bufgroup {
	struct io_uring_buf_ring *br;
	char *base;
	struct corio__bufnode *nodes;
	unsigned nbufs, size, mask;
	uint16_t bgid;
	uint16_t *free;	 /* neither lent nor in the ring: most recently used on top */
	unsigned nfree;
	unsigned posted; /* in the ring, not taken by the kernel yet */
	unsigned target; /* how many the ring is topped up to */
	struct corio__bufgroup *next;
};

static inline char *corio__bufnode_data(const struct corio__bufnode *n)
{
	return n->g->base + (size_t)(n - n->g->nodes) * n->g->size;
}

/* The group new receives should use (set up on first use), or NULL when
 * the loop has none (epoll; a kernel without buffer rings). */
struct corio__bufgroup *corio__bufs_current(corio_loop *loop);
/* Receives ran the ring dry: keep more buffers in it, or, when every
 * buffer is lent out, add a group twice as large, up to the limit.
 * 0, or -ENOBUFS at the limit. */
int corio__bufs_grow(corio_loop *loop);
/* The node of buffer @bid of @g, which a CQE says the kernel took. */
static inline struct corio__bufnode *corio__bufs_node(struct corio__bufgroup *g, unsigned bid)
{
	g->posted--;
	return &g->nodes[bid];
}
/* Give a buffer back (it goes to the ring at the next refill). */
void corio__bufs_put(struct corio__bufnode *n);
/* Top the rings up before the kernel looks at them (each loop turn). */
void corio__bufs_refill(corio_loop *loop);
/*
 * Direct descriptors (io_uring). The table of registered files is set up on
 * first use: 0 when ready, -errno when this loop cannot have one (epoll, an
 * old kernel). corio__close_now() closes any descriptor at once, without an
 * operation: close(2), or for a direct one a files update on the loop's
 * ring; for paths that cannot wait for a completion.
 */
int corio__direct_table(corio_loop *loop);
int corio__close_now(int fd);
/* Reserve a slot for an accept about to start (0, or -ENFILE when the
 * table is taken); released by the close of the slot, or by the caller if
 * the accept fails. */
int corio__direct_reserve(corio_loop *loop);
void corio__direct_release(corio_loop *loop);
/* Whether the peer of direct descriptor @fd is this machine, as noted by
 * its accept (no getpeername for direct descriptors). */
void corio__direct_note_peer(corio_loop *loop, unsigned idx, bool loopback);
bool corio__direct_loopback(corio_loop *loop, int fd);
struct sockaddr_storage;
bool corio__addr_loopback(const struct sockaddr_storage *ss);

/* epoll backend (@loop must be on it): wake the loop from any thread: its
 * current or next poll returns. Coalesced: one eventfd write until the
 * loop has seen it. The loop reads the eventfd, then clears the flag;
 * whatever a waker published before its call is visible to the loop after
 * its poll. */
void corio__epoll_wake(corio_loop *loop);
/* Tests: call fn(arg) on the pool thread as each job starts (NULL: stop).
 * -EINVAL if the loop is not on epoll. */
int corio__epoll_set_pool_hook(corio_loop *loop, void (*fn)(void *), void *arg);

/* ---------------------------------------------------------------- fibers */

#include "fiber/ctx.h"

struct corio__stack {
	char *lo;		   /* lowest usable byte (the guard is just below) */
	size_t size;		   /* usable bytes */
	struct corio__stack *next; /* free list */
	unsigned valgrind_id;
	bool resident; /* pages may be in memory (not yet given back) */
};

struct corio__stack_class {
	size_t size;
	struct corio__stack *free;
	struct corio__stack_class *next;
};

struct corio__stack_slab {
	struct corio__stack_slab *next;
	void *map;
	size_t map_len;
	unsigned n;
	struct corio__stack stacks[];
};

struct corio__stack_pool {
	struct corio__stack_class *classes;
	struct corio__stack_slab *slabs;
	size_t page;
	unsigned cache;	   /* resident free stacks to keep */
	unsigned resident; /* resident free stacks now */
};

int corio__stack_pool_init(struct corio__stack_pool *p, unsigned cache);
void corio__stack_pool_term(struct corio__stack_pool *p);
int corio__stack_get(struct corio__stack_pool *p, size_t size, struct corio__stack **out);
void corio__stack_put(struct corio__stack_pool *p, struct corio__stack *s);
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

/* ------------------------------------------------------------------ loop */

struct corio_loop {
	const struct corio__backend *be;
	void *be_state;
	pthread_t thread;

	struct corio__timers timers;
	struct corio_list runq; /* ready fibers */
	struct corio_list due;	/* async ops completed inline: callbacks next turn */
	struct corio_list fibers;  /* alive */
	struct corio_list zombies; /* ended, not yet joined */
	corio_fiber *current;
	struct corio__ctx sched_ctx; /* the thread's own stack */

	struct corio__stack_pool stacks;
	struct corio__op_pool ops;
	size_t default_stack;

	size_t live_fibers;   /* not yet ended */
	size_t pending_async; /* async ops and timers not yet completed */
	size_t inflight;      /* ops in the backend */

	/* Cross-thread: messages, deliveries and the sleeping word. */
	struct corio__inbox *inbox;
	corio_pool *pool; /* NULL unless a member */
	unsigned index;	  /* slot in the pool */
	size_t remote_waiters; /* fibers parked on cross-loop objects */

	enum corio_loop_mode mode;
	int64_t spin_ns;
	int64_t last_event; /* HYBRID: when the last turn did anything */

	bool stop;
	bool closing; /* destroy: every blocking call returns -ECANCELED */
	bool running; /* inside corio_loop_run / run_once */
	bool in_turn; /* inside corio__turn: a poll follows soon */

	struct corio_loop_stats stats;

	void *altstack; /* alternate signal stack of this thread */
	size_t altstack_size;
	bool altstack_ours;

#ifdef CORIO_ASAN
	void *sched_asan_fake;
	const void *sched_stack_bottom;
	size_t sched_stack_size;
#endif
#ifdef CORIO_TSAN
	void *sched_tsan; /* ThreadSanitizer's context of the loop's thread */
#endif
};

extern __thread corio_loop *corio__tls_loop;

/* Log a line to stderr, prefixed "corio: ". */
void corio__log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One loop turn (see loop.c). */
int corio__turn(corio_loop *loop, bool wait);
/* Start closing: cancel every fiber and async op (destroy, pool stop). */
void corio__loop_close(corio_loop *loop);

/* Run the fibers that are ready now (loop.c calls it once per turn). */
void corio__run_ready(corio_loop *loop);
/* Fire the timers that are due; returns how many. */
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

/* ------------------------------------------------------------ cross-loop */

int corio__inbox_init(corio_loop *loop, unsigned size);
void corio__inbox_term(corio_loop *loop);
/* Run what other threads sent (bounded batch); returns how many. */
unsigned corio__inbox_drain(corio_loop *loop);
/* True if something from another thread waits to be run. */
bool corio__inbox_pending(corio_loop *loop);
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
/* Park until delivered (fiber) or block until delivered (foreign thread). */
int corio__xwait_park(struct corio__xwait *x, int64_t deadline);
/* Any thread: complete @x with @res and send it home. */
void corio__xwait_deliver(struct corio__xwait *x, int res);

/* Blocking op from a fiber: start @op, park until it completes. */
int corio__fiber_io(struct corio__op *op, int64_t deadline);
/* Async op from the pool for the loop's thread (NULL and *err set on error). */
struct corio__op *corio__async_op(corio_loop *loop, corio_cb cb, int *err);
/* Start a prepared async op; returns its request id. */
corio_req corio__async_start(corio_loop *loop, struct corio__op *op, corio_cb cb, void *user);

#endif
