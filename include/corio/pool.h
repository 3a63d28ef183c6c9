/*
 * corio: thread-per-core. A pool of loops, one per thread, pinned to CPUs,
 * sharing nothing, talking by messages.
 *
 * Messages: corio_post() sends fn(arg) to loop k from any thread (fire and
 * forget); corio_call() runs fn(arg) on loop k from a fiber and suspends the
 * fiber until the result is back; corio_call_all() runs it on every loop.
 * Message functions run on the target loop's own stack, between fibers: they
 * must not block. For work that does, corio_call_fiber() runs it in a new
 * fiber on loop k and waits for its result (or post a message that spawns
 * one with corio_go()).
 *
 * Each loop's inbox is a bounded lock-free multi-producer queue. When it is
 * full, a fiber sender waits for room (woken by the target when it drains),
 * a thread that is not a loop blocks (or gets -EAGAIN with CORIO_POST_NOWAIT),
 * and code on a loop's own stack gets -EAGAIN (it must not block the loop).
 *
 * Wake only who sleeps (DESIGN rule 5): a loop publishes that it is about to
 * sleep; a sender makes a system call to wake it only then. A busy target
 * costs no system call per message. corio_loop_stats() counts wakes sent and
 * elided (on the sending loop) and messages received.
 *
 * Order: messages from one sender to one loop run in the order they were
 * posted.
 *
 * Memory: every hand-over below is a happens-before edge (release on the
 * sending side, acquire on the receiving side), so plain memory written
 * before it is visible after it, with no atomics of the caller's own:
 *  - corio_post: what the poster wrote before the call, fn sees when it runs;
 *  - corio_call (start/wait, call_all, call_fiber): fn sees what the caller
 *    wrote before the call; the caller, once the wait returns, sees fn's
 *    result and everything fn (and, for call_fiber, its fiber) wrote;
 *  - corio_xevent, corio_xsem, corio_xchan: each object is linearisable (one
 *    lock orders all its operations), and an operation sees the writes made
 *    before every operation ordered ahead of it: a wait that returns 0 sees
 *    what was written before the set or post it observed; a receiver sees the
 *    element and what the sender wrote before sending it. The try forms and
 *    corio_xevent_is_set are ordered the same way when they succeed.
 *
 * Stopping: corio_pool_stop() cancels every fiber of every loop (their
 * blocking calls return -ECANCELED), runs them to their end, then closes each
 * inbox and runs what it holds: a message accepted is never dropped. Posting
 * to a closed loop returns -ESHUTDOWN.
 */
#ifndef CORIO_POOL_H
#define CORIO_POOL_H

#include "corio/types.h"
#include "corio/loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct corio_pool corio_pool;

struct corio_pool_opts {
	unsigned nloops;		   /* 0: one per CPU in @cpus, else per CPU of the affinity mask */
	const int *cpus;		   /* CPUs to pin loop i to (cpus[i % ncpus]); NULL: the mask */
	unsigned ncpus;
	const enum corio_loop_mode *modes; /* per loop (nloops entries); NULL: loop.mode */
	unsigned max_joined;		   /* slots for threads joining later; 0: 4 */
	struct corio_loop_opts loop;	   /* options of every loop */
	/* Runs on each pool thread, on its loop, before the loop turns (spawn
	 * the loop's first fibers here). */
	void (*on_start)(corio_loop *loop, unsigned index, void *arg);
	void *arg;
};

/*
 * Start the pool's threads and loops, each loop thread pinned to its CPU;
 * returns 0 when every loop runs, or the first error of any: a loop's
 * (corio_loop_create), or the pinning's: -EINVAL when a CPU of @cpus is
 * not one this process may run on (offline, outside its cpuset).
 */
CORIO_API int corio_pool_create(corio_pool **out, const struct corio_pool_opts *opts);

/* Stop every loop (see above) and join the pool's threads. Not from a loop
 * of the pool. Joined threads (corio_pool_join) must leave on their own. */
CORIO_API int corio_pool_stop(corio_pool *pool);

/* Stop if needed and free. */
CORIO_API void corio_pool_destroy(corio_pool *pool);

/* Number of loop slots (started loops + joinable slots). Loops are 0..n-1. */
CORIO_API unsigned corio_pool_size(const corio_pool *pool);
/* Number of loops the pool started (indices 0..n-1). */
CORIO_API unsigned corio_pool_nloops(const corio_pool *pool);

/* The calling thread's pool and index in it, or NULL / -EPERM (the thread
 * is no loop of a pool). */
CORIO_API corio_pool *corio_pool_current(void);
CORIO_API int corio_pool_index(void);

/* The loop in slot @k, or NULL (an empty slot). */
CORIO_API corio_loop *corio_pool_loop(corio_pool *pool, unsigned k);

/*
 * Make the calling thread (which must have no loop) a loop of the pool: a
 * loop is created with the pool's loop options and takes a free slot. The
 * thread then runs it (corio_loop_run / corio_loop_run_once) and receives
 * messages during its turns. Returns 0, -EBUSY (thread has a loop), -ENOSPC
 * (no free slot), -ESHUTDOWN (pool stopping), -ENOMEM.
 */
CORIO_API int corio_pool_join(corio_pool *pool, corio_loop **loop, unsigned *index);

/* Leave the pool: close the inbox, run what it holds, destroy the loop (as
 * corio_loop_destroy does). From the joined thread, outside fibers. */
CORIO_API int corio_pool_leave(corio_pool *pool);

/* ------------------------------------------------------------- messages */

typedef void (*corio_msg_fn)(void *arg);
typedef void *(*corio_call_fn)(void *arg);

#define CORIO_POST_NOWAIT 1u /* full inbox: return -EAGAIN instead of waiting */

/*
 * Run fn(arg) on loop @k. 0, -EINVAL (no such loop), -ESHUTDOWN, -EAGAIN
 * (full, and told not to wait or called on a loop's own stack); from a
 * fiber that waited for room, -ECANCELED, or -ETIMEDOUT at @deadline.
 */
CORIO_API int corio_post(corio_pool *pool, unsigned k, corio_msg_fn fn, void *arg,
			 unsigned flags);
CORIO_API int corio_post_until(corio_pool *pool, unsigned k, corio_msg_fn fn, void *arg,
			       unsigned flags, int64_t deadline);

/*
 * A call in flight, for starting several and waiting for each (fan-out).
 * Lives in the caller's memory until corio_call_wait() returns.
 */
typedef struct corio_call_req {
	void *priv[12]; /* private */
} corio_call_req;

/* From a fiber: send fn(arg) to loop @k (waiting for room in its inbox, as
 * corio_post). 0, -EINVAL, -ESHUTDOWN, -EPERM, -ECANCELED, -ETIMEDOUT. */
CORIO_API int corio_call_start(corio_call_req *c, corio_pool *pool, unsigned k, corio_call_fn fn,
			       void *arg);
CORIO_API int corio_call_start_until(corio_call_req *c, corio_pool *pool, unsigned k,
				     corio_call_fn fn, void *arg, int64_t deadline);
/*
 * Wait for a started call; *result gets fn's return value. Returns 0, or
 * -ECANCELED if the calling fiber was cancelled (-ETIMEDOUT if @deadline
 * passed) before the target ran fn: then fn never runs. Once fn has
 * started, the call waits for it to end: its result comes back even if the
 * fiber is cancelled or the deadline passes meanwhile.
 */
CORIO_API int corio_call_wait(corio_call_req *c, void **result);
CORIO_API int corio_call_wait_until(corio_call_req *c, void **result, int64_t deadline);

/* start + wait. A call to the caller's own loop runs fn at once. */
CORIO_API int corio_call(corio_pool *pool, unsigned k, corio_call_fn fn, void *arg,
			 void **result);
CORIO_API int corio_call_until(corio_pool *pool, unsigned k, corio_call_fn fn, void *arg,
			       void **result, int64_t deadline);

/*
 * Run fn(arg) in a new fiber on loop @k and wait for its result: unlike a
 * message function, fn may block (I/O, sleeps, locks, calls of its own).
 * From a fiber (which it suspends) or from a thread without a loop (which it
 * blocks); -EPERM on a loop's own stack. Returns 0 and sets *result (if not
 * NULL) to what fn returned; -EINVAL (no such loop, @fn NULL), -ESHUTDOWN
 * (the loop is stopping), -ENOMEM (no fiber could be made there).
 *
 * At @deadline, or when the calling fiber is cancelled, the fiber on loop k
 * is cancelled (its blocking calls return -ECANCELED from then on) and the
 * call still waits for it to end, so @arg may point into the caller's stack.
 * It then returns -ETIMEDOUT or -ECANCELED, and *result gets what fn
 * returned (NULL if fn never started), so that what fn made can be freed.
 * If fn ended before the cancellation reached it, the call returns 0.
 */
CORIO_API int corio_call_fiber(corio_pool *pool, unsigned k, corio_call_fn fn, void *arg,
			       void **result);
CORIO_API int corio_call_fiber_until(corio_pool *pool, unsigned k, corio_call_fn fn, void *arg,
				     void **result, int64_t deadline);

/* Run fn(arg) on every loop of the pool (concurrently) and gather the
 * results in results[0..corio_pool_size()-1] (NULL for empty slots).
 * Returns 0 or the first error. */
CORIO_API int corio_call_all(corio_pool *pool, corio_call_fn fn, void *arg, void **results);
CORIO_API int corio_call_all_until(corio_pool *pool, corio_call_fn fn, void *arg, void **results,
				   int64_t deadline);

/* ------------------------------------------- synchronisation across loops */

/*
 * These work between fibers of different loops, and with threads that have
 * no loop: set, post, close and the try forms from any thread; the waiting
 * calls (wait, send, recv and their _until forms) from a fiber, which they
 * suspend, or from a thread without a loop, which they block (on a futex;
 * deadlines work the same, cancellation is for fibers only). On a loop's own
 * stack, outside fibers (a message function, a callback), waiting calls
 * return -EPERM rather than block the loop. Waits are FIFO, cancellable and
 * have _until variants, like corio/sync.h. A wake crosses loops as a message
 * that costs a system call only if the waiter's loop sleeps.
 */
typedef struct corio_xevent {
	void *priv[4]; /* private */
} corio_xevent;

CORIO_API void corio_xevent_init(corio_xevent *e);
CORIO_API void corio_xevent_set(corio_xevent *e); /* any thread */
CORIO_API void corio_xevent_reset(corio_xevent *e);
CORIO_API bool corio_xevent_is_set(corio_xevent *e);
CORIO_API int corio_xevent_wait(corio_xevent *e);
CORIO_API int corio_xevent_wait_until(corio_xevent *e, int64_t deadline);

typedef struct corio_xsem {
	void *priv[4]; /* private */
} corio_xsem;

CORIO_API void corio_xsem_init(corio_xsem *s, int64_t count);
CORIO_API void corio_xsem_post(corio_xsem *s); /* any thread */
CORIO_API int corio_xsem_try_wait(corio_xsem *s); /* 0 or -EAGAIN; any thread */
CORIO_API int corio_xsem_wait(corio_xsem *s);
CORIO_API int corio_xsem_wait_until(corio_xsem *s, int64_t deadline);
CORIO_API int64_t corio_xsem_value(corio_xsem *s);

/* A bounded channel between fibers of any loops (semantics of corio_chan). */
typedef struct corio_xchan {
	void *priv[12]; /* private */
} corio_xchan;

CORIO_API int corio_xchan_init(corio_xchan *ch, size_t elem_size, size_t capacity);
CORIO_API void corio_xchan_destroy(corio_xchan *ch);
CORIO_API int corio_xchan_send(corio_xchan *ch, const void *elem);
CORIO_API int corio_xchan_send_until(corio_xchan *ch, const void *elem, int64_t deadline);
CORIO_API int corio_xchan_recv(corio_xchan *ch, void *elem);
CORIO_API int corio_xchan_recv_until(corio_xchan *ch, void *elem, int64_t deadline);
CORIO_API int corio_xchan_try_send(corio_xchan *ch, const void *elem); /* any thread */
CORIO_API int corio_xchan_try_recv(corio_xchan *ch, void *elem);       /* any thread */
CORIO_API void corio_xchan_close(corio_xchan *ch);			 /* any thread */

#ifdef __cplusplus
}
#endif
#endif
