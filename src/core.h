/*
 * Layer core: the state of one loop, which every layer above works in (no
 * code). Each part belongs to the layer that owns it (the comments say
 * which); the others only read what their header says they may.
 *
 * Everything here is touched by the loop's own thread only (DESIGN rule 4),
 * except the inbox (pool/inbox.c), which other threads reach through its
 * atomics.
 */
#ifndef CORIO_CORE_H
#define CORIO_CORE_H

#include <pthread.h>

#include "base.h"
#include "fiber/ctx.h"
#include "fiber/stack.h"
#include "timer.h"

struct corio__backend;
struct corio__inbox;
struct corio__op;

/* The pool of async op records, addressed by request id. */
struct corio__op_pool {
	struct corio__op **chunks;
	uint32_t nchunks;
	struct corio_list free;
};

struct corio_loop {
	/* backend: chosen and set up by backend/backend.c */
	const struct corio__backend *be;
	void *be_state;
	unsigned caps; /* CORIO__CAP_*: what this loop's backend can do here */
	pthread_t thread;

	/* timer */
	struct corio__timers timers;

	/* fiber */
	struct corio_list runq;	   /* ready fibers */
	struct corio_list fibers;  /* alive */
	struct corio_list zombies; /* ended, not yet joined */
	corio_fiber *current;
	struct corio__ctx sched_ctx; /* the thread's own stack */
	struct corio__stack_pool stacks;
	size_t default_stack;
	size_t live_fibers; /* not yet ended */
	size_t unjoined;    /* ended, waiting in zombies for a join */

	/* op */
	struct corio_list due; /* async ops completed inline: callbacks next turn */
	struct corio__op_pool ops;
	size_t pending_async; /* async ops and timers not yet completed */
	size_t inflight;      /* ops in the backend */

	/* inbox: cross-thread messages, deliveries and the sleeping word */
	struct corio__inbox *inbox;
	size_t remote_waiters; /* fibers parked on cross-loop objects */

	/* pool */
	corio_pool *pool; /* NULL unless a member */
	unsigned index;	  /* slot in the pool */

	/* loop */
	enum corio_loop_mode mode;
	int64_t spin_ns;
	int64_t last_event; /* HYBRID: when the last turn did anything */
	bool stop;
	bool closing; /* destroy: every blocking call returns -ECANCELED */
	bool running; /* inside corio_loop_run / run_once */
	bool in_turn; /* inside corio__turn: a poll follows soon */

	/* every layer counts its own */
	struct corio_loop_stats stats;

	/* fiber, cold */
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

#endif
