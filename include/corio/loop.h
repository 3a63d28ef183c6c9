/*
 * corio: the event loop (one per thread).
 *
 * A loop owns its kernel interface (an io_uring, or epoll plus a small thread
 * pool), its timers, its run queue of fibers and its stacks. It is created on,
 * and used from, one thread only; other threads talk to it through the pool's
 * messages. corio_loop_current() returns the calling thread's loop.
 */
#ifndef CORIO_LOOP_H
#define CORIO_LOOP_H

#include "corio/types.h"

#ifdef __cplusplus
extern "C" {
#endif

enum corio_backend {
	CORIO_BACKEND_AUTO = 0,	 /* $CORIO_BACKEND if set, else io_uring, else epoll */
	CORIO_BACKEND_URING = 1, /* io_uring only: fails (naming the cause) if unavailable */
	CORIO_BACKEND_EPOLL = 2, /* epoll + a thread pool for files */
};

/*
 * What a loop does when it has nothing to run:
 *  - INTERRUPT: sleep in the kernel until a completion, a timer or a message.
 *  - POLL: never sleep; spin on completions and the inbox. Burns its CPU;
 *    lowest latency; senders never need a system call to wake it.
 *  - HYBRID: spin for spin_ns after the last event, then sleep.
 */
enum corio_loop_mode {
	CORIO_MODE_INTERRUPT = 0,
	CORIO_MODE_POLL = 1,
	CORIO_MODE_HYBRID = 2,
};

struct corio_loop_opts {
	enum corio_backend backend;
	enum corio_loop_mode mode;
	unsigned sq_entries;  /* io_uring submission queue; 0: 256 */
	unsigned cq_entries;  /* completion queue; 0: 8 x sq; raised to >= 2 x sq */
	size_t stack_size;    /* default fiber stack; 0: 64 KiB */
	unsigned stack_cache; /* free stacks kept resident for reuse; 0: 64 */
	int64_t spin_ns;      /* HYBRID: how long to spin before sleeping; 0: 50 us */
	unsigned inbox_size;  /* messages the inbox holds (pool); 0: 4096 */
	unsigned recv_buffers;	   /* io_uring provided buffers at first; 0: 256 */
	unsigned recv_buffer_size; /* their size; 0: 64 KiB (untouched pages cost nothing) */
	unsigned recv_buffers_max; /* the ring grows up to this many; 0: 4096 */
	unsigned direct_files;	   /* slots for direct descriptors, registered on
				      first use; 0: RLIMIT_NOFILE, at most 65536 */
};

/*
 * Create a loop bound to the calling thread (at most one per thread).
 * @opts may be NULL for the defaults. Returns 0 and sets *out, or -errno:
 * -EBUSY if the thread already has a loop, -ENOMEM, or the io_uring set-up
 * error when the io_uring backend was forced (a line on stderr names the
 * cause and the fix).
 */
CORIO_API int corio_loop_create(corio_loop **out, const struct corio_loop_opts *opts);

/*
 * Destroy a loop. Fibers still alive are cancelled (every blocking call they
 * make returns -ECANCELED) and run until they end; operations still in the
 * kernel are cancelled and their completions awaited, so no buffer is freed
 * while the kernel may still write to it. Callbacks of cancelled async
 * operations run, with -ECANCELED; an async operation or timer started
 * meanwhile (by such a callback) completes with -ECANCELED as well. Must be
 * called on the loop's thread, outside any fiber.
 */
CORIO_API void corio_loop_destroy(corio_loop *loop);

/*
 * Run until nothing is left to do (no live fiber, no pending async operation
 * or timer) or corio_loop_stop() is called. Returns 0; -EDEADLK when fibers
 * are left that nothing can ever wake (they wait on each other: no
 * operation in flight, no timer, no other thread that could reach the loop);
 * -EPERM when called from a fiber or from another thread than the loop's;
 * or the backend's -errno if it fails.
 */
CORIO_API int corio_loop_run(corio_loop *loop);

/* Run one turn: submit, reap completions, fire timers, run ready fibers.
 * With @wait, block until at least one event arrives if nothing is ready.
 * Returns 1 if work remains, 0 if the loop is idle, or -errno (-EDEADLK
 * with @wait when nothing could ever wake the loop, -EPERM as above). */
CORIO_API int corio_loop_run_once(corio_loop *loop, bool wait);

/* Make corio_loop_run() return after the current turn. Loop thread only. */
CORIO_API void corio_loop_stop(corio_loop *loop);

/* The calling thread's loop, or NULL. */
CORIO_API corio_loop *corio_loop_current(void);

/* "io_uring" or "epoll". */
CORIO_API const char *corio_loop_backend(const corio_loop *loop);

struct corio_loop_stats {
	uint64_t turns;		 /* loop turns */
	uint64_t enters;	 /* io_uring_enter / epoll_wait calls */
	uint64_t ops_started;	 /* operations started (fiber and async) */
	uint64_t ops_completed;	 /* completions delivered */
	uint64_t sq_full;	 /* times the submission queue was full and flushed */
	uint64_t backlogged;	 /* operations queued because the kernel pushed back */
	uint64_t cq_overflow;	 /* times the kernel reported completion-queue overflow */
	uint64_t fibers_spawned; /* fibers created */
	uint64_t switches;	 /* fiber context switches */
	uint64_t timers_fired;	 /* sleeps and deadlines that expired */
	uint64_t wakes_sent;	 /* messages sent by this loop that had to wake the target */
	uint64_t wakes_elided;	 /* messages sent by this loop to a target that was awake */
	uint64_t msgs_received;	 /* messages run by this loop */
	uint64_t sleeps;	 /* times the loop blocked in the kernel */
	uint64_t wakes_msg_ring; /* of wakes_sent: an io_uring MSG_RING (else an eventfd) */
	uint64_t epoll_rescues;	 /* waits only the epoll re-check ended (docs/BACKENDS.md) */
	/* Gauges (the state now, not counts): what the loop holds. */
	uint64_t fibers_live;	  /* fibers that have not ended */
	uint64_t fibers_unjoined; /* ended fibers waiting for corio_join (each keeps
				     its record until joined or detached) */
	uint64_t stacks;	  /* fiber stacks mapped: in use, or free for reuse */
};

/* Copy the loop's counters into @out (at most @size bytes, for ABI growth). */
CORIO_API void corio_loop_stats(const corio_loop *loop, struct corio_loop_stats *out,
				size_t size);

/*
 * Convenience: create a loop on this thread, run @fn as its first fiber,
 * run the loop until everything ends or a fiber calls corio_loop_stop(),
 * destroy it (which cancels the fibers still alive and waits for them).
 * Returns what @fn returned (cast to int; 0 if it had not ended when the
 * loop stopped), or -errno if the loop or the fiber could not be created.
 */
CORIO_API int corio_main(void *(*fn)(void *arg), void *arg);

#ifdef __cplusplus
}
#endif
#endif
