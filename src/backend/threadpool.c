/*
 * The epoll backend's thread pool: blocking calls (file I/O, open, close,
 * stat, ...) run here so that the loop never blocks on a disk.
 *
 * One pool per loop, like the loop's other state (no sharing, no global
 * threads to tear down at exit). Threads start lazily: a job that finds no
 * idle thread starts a new one, up to max; they then live until the loop is
 * destroyed. The queue is unbounded and FIFO, so work is never dropped; a
 * job fails only if not a single thread could be started.
 *
 * Hand-back: a finished job goes on the done list, and the worker writes the
 * loop's eventfd only when that list was empty. The loop reads the eventfd
 * before it takes the list (corio__tpool_reap), so a job finished after the
 * take finds the list empty and writes again: no completion waits for an
 * unrelated wake-up.
 *
 * Cancellation: a queued job is simply unlinked. A running job cannot be
 * interrupted (we do not signal threads out of system calls); its real
 * result is delivered when the call returns.
 *
 * Workers block every signal but those a thread raises on itself (see
 * corio/signal.h), so that signals meant for the process land on the
 * application's threads and never interrupt a job with EINTR.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "threadpool.h"

#define STACK_SIZE ((size_t)256 * 1024) /* jobs are one system call deep */

/* op->bpriv[2]: job state (high half) and result (low half). */
enum { JOB_NONE, JOB_QUEUED, JOB_RUNNING, JOB_FINISHED };

static void set_job(struct corio__op *op, uint32_t state, int res)
{
	op->bpriv[2] = (uint64_t)state << 32 | (uint32_t)res;
}

static uint32_t job_state(const struct corio__op *op)
{
	return (uint32_t)(op->bpriv[2] >> 32);
}

static void notify(int fd)
{
	uint64_t one = 1;

	/* EAGAIN would mean the counter is about to overflow: the loop is
	 * already due to wake. */
	while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

static void *worker(void *arg)
{
	struct corio__tpool *p = arg;
	struct corio_list *n;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!(n = corio__list_pop_front(&p->queue)) && !p->stop) {
			p->idle++;
			pthread_cond_wait(&p->cond, &p->lock);
			p->idle--;
		}
		if (!n)
			break;
		p->nqueued--;

		struct corio__op *op = corio__container_of(n, struct corio__op, link);
		void (*hook)(void *) = p->hook;
		void *hook_arg = p->hook_arg;
		bool was_empty;
		int res;

		set_job(op, JOB_RUNNING, 0);
		pthread_mutex_unlock(&p->lock);
		if (hook)
			hook(hook_arg);
		res = p->run(op);
		pthread_mutex_lock(&p->lock);
		set_job(op, JOB_FINISHED, res);
		was_empty = corio__list_empty(&p->done);
		corio__list_push_back(&p->done, &op->link);
		if (was_empty) {
			pthread_mutex_unlock(&p->lock);
			notify(p->notify_fd);
			pthread_mutex_lock(&p->lock);
		}
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Start one more worker; called with the lock held. */
static int spawn(struct corio__tpool *p)
{
	pthread_attr_t attr;
	sigset_t old;
	int err;

	if (pthread_attr_init(&attr))
		return -ENOMEM;
	pthread_attr_setstacksize(&attr, STACK_SIZE);
	corio__block_signals(&old); /* the new thread inherits the mask */
	err = pthread_create(&p->threads[p->nthreads], &attr, worker, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (err)
		return -err;
	/* Named here rather than by the thread itself: once submit returns,
	 * the thread shows up in /proc under its name (tests count them). */
	pthread_setname_np(p->threads[p->nthreads], "corio-pool");
	p->nthreads++;
	return 0;
}

int corio__tpool_init(struct corio__tpool *p, unsigned max, int notify_fd,
		      int (*run)(struct corio__op *op))
{
	memset(p, 0, sizeof(*p));
	p->threads = calloc(max, sizeof(*p->threads));
	if (!p->threads)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	corio__list_init(&p->queue);
	corio__list_init(&p->done);
	p->max = max;
	p->notify_fd = notify_fd;
	p->run = run;
	return 0;
}

void corio__tpool_fini(struct corio__tpool *p)
{
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	p->threads = NULL;
}

int corio__tpool_submit(struct corio__tpool *p, struct corio__op *op)
{
	int err = 0;

	pthread_mutex_lock(&p->lock);
	set_job(op, JOB_QUEUED, 0);
	corio__list_push_back(&p->queue, &op->link);
	p->nqueued++;
	if (p->idle)
		pthread_cond_signal(&p->cond);
	if (p->nqueued > p->idle && p->nthreads < p->max) {
		err = spawn(p);
		if (err && p->nthreads) {
			err = 0; /* the threads we have will get to it */
		} else if (err) {
			corio__list_remove(&op->link);
			p->nqueued--;
			set_job(op, JOB_NONE, 0);
		}
	}
	pthread_mutex_unlock(&p->lock);
	return err;
}

bool corio__tpool_cancel(struct corio__tpool *p, struct corio__op *op)
{
	bool queued;

	pthread_mutex_lock(&p->lock);
	queued = job_state(op) == JOB_QUEUED;
	if (queued) {
		corio__list_remove(&op->link);
		p->nqueued--;
		set_job(op, JOB_NONE, 0);
	}
	pthread_mutex_unlock(&p->lock);
	return queued;
}

void corio__tpool_reap(struct corio__tpool *p, struct corio_list *out)
{
	pthread_mutex_lock(&p->lock);
	corio__list_splice(out, &p->done);
	pthread_mutex_unlock(&p->lock);
}

void corio__tpool_set_hook(struct corio__tpool *p, void (*fn)(void *), void *arg)
{
	pthread_mutex_lock(&p->lock);
	p->hook = fn;
	p->hook_arg = arg;
	pthread_mutex_unlock(&p->lock);
}
