/*
 * The epoll backend's pool of threads for blocking calls (files, and
 * anything epoll cannot wait for). Internal to backend/epoll.c.
 *
 * Jobs are ops. From corio__tpool_submit() until corio__tpool_reap() hands
 * an op back, the pool owns op->link and op->bpriv[2] and touches them only
 * under its lock; it reads op->sqe, which nobody writes meanwhile. The loop
 * must not touch those two fields in that window either, except through
 * corio__tpool_cancel().
 */
#ifndef CORIO_THREADPOOL_H
#define CORIO_THREADPOOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "../op.h"

struct corio__tpool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct corio_list queue; /* not started yet, FIFO */
	struct corio_list done;	 /* finished, for the loop to reap */
	pthread_t *threads;
	unsigned max;	   /* threads at most */
	unsigned nthreads; /* started (they live until fini) */
	unsigned idle;	   /* waiting for a job */
	unsigned nqueued;  /* length of queue */
	bool stop;
	int notify_fd; /* eventfd, written when done goes from empty to not */
	int (*run)(struct corio__op *op); /* the blocking call: result or -errno */
	void (*hook)(void *arg);	  /* tests: called as a job starts */
	void *hook_arg;
};

/* Set up (no thread starts until the first job). -ENOMEM or 0. */
int corio__tpool_init(struct corio__tpool *p, unsigned max, int notify_fd,
		      int (*run)(struct corio__op *op));
/* Stop and join the threads. Nothing may be queued or running. */
void corio__tpool_fini(struct corio__tpool *p);
/* Queue a job, starting a thread if none is idle and the limit allows.
 * Never fails while at least one thread runs; fails (-EAGAIN, ...) only if
 * not a single thread could be started. */
int corio__tpool_submit(struct corio__tpool *p, struct corio__op *op);
/* Take a job back if it has not started: true. A job that is running (or
 * done) cannot be taken back: false, and its result comes as usual. */
bool corio__tpool_cancel(struct corio__tpool *p, struct corio__op *op);
/* Move the finished jobs to the end of @out. */
void corio__tpool_reap(struct corio__tpool *p, struct corio_list *out);
/* The result of a reaped job. */
static inline int corio__tpool_result(const struct corio__op *op)
{
	return (int32_t)(uint32_t)op->bpriv[2];
}
/* Tests: call fn(arg) on the worker as each job starts (NULL: none). */
void corio__tpool_set_hook(struct corio__tpool *p, void (*fn)(void *), void *arg);

#endif
