/*
 * Thread per core: the pool of loops, their slots, posting, stopping.
 * (Each loop's inbox and how senders wake it: inbox.c.)
 *
 * Slots: a pool has nloops slots for its own threads and max_joined for
 * threads that join later. Posters announce themselves in the slot's
 * `posting` count before touching its loop, and a loop that leaves (or
 * stops) sets `closed` and waits for `posting` to drop to zero; after that
 * no other thread can reach its inbox, so it can drain and go.
 *
 * Stopping a pool is two phases. QUIESCE: every loop cancels its fibers and
 * runs until it is idle, still serving messages (fibers elsewhere may be
 * waiting for its replies); the last loop to become idle kicks the others.
 * Then each loop closes its slot, runs what its inbox holds, and is
 * destroyed. Nothing accepted is dropped; later posts get -ESHUTDOWN.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../loop.h"
#include "inbox.h"
#include "pool.h"

struct slot {
	_Alignas(CORIO__CACHELINE) _Atomic(corio_loop *) loop;
	_Atomic uint32_t posting;
	_Atomic bool closed;
	corio_pool *pool;
	unsigned index;
	int cpu;
	enum corio_loop_mode mode;
	bool joined; /* a joinable slot in use (under pool->lock) */
	pthread_t thread;
	bool has_thread;
	int start_err;
	struct corio__remote kick_stop, kick_quiet;
};

enum { PHASE_RUN, PHASE_QUIESCE };

struct corio_pool {
	struct slot *slots;
	unsigned nloops, nslots;
	struct corio_pool_opts opts;
	enum corio_loop_mode *modes;
	_Atomic int phase;
	_Atomic unsigned quiet;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned started; /* threads that finished starting (under lock) */
	bool go;	  /* all started: run (under lock) */
	bool stopped;
};

/* ------------------------------------------------------------- posting */

/* Announce a poster in @s; returns its loop, or NULL with *err set. */
static corio_loop *enter_slot(struct slot *s, int *err)
{
	corio_loop *loop;

	atomic_fetch_add_explicit(&s->posting, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&s->closed, memory_order_seq_cst)) {
		*err = -ESHUTDOWN;
	} else {
		loop = atomic_load_explicit(&s->loop, memory_order_acquire);
		if (loop)
			return loop;
		*err = -EINVAL;
	}
	atomic_fetch_sub_explicit(&s->posting, 1, memory_order_release);
	return NULL;
}

static void leave_slot(struct slot *s)
{
	atomic_fetch_sub_explicit(&s->posting, 1, memory_order_release);
}

/* Close @s to posters and wait until none is inside. */
static void close_slot(struct slot *s)
{
	atomic_store_explicit(&s->closed, true, memory_order_seq_cst);
	while (atomic_load_explicit(&s->posting, memory_order_acquire))
		sched_yield();
}

static void space_ready(struct corio__remote *r)
{
	corio__xwait_deliver(corio__container_of(r, struct corio__xwait, r), 0);
}

static void abort_space(struct corio__wait *w, int reason)
{
	struct corio__xwait *x = w->obj;

	x->aborted = reason; /* the wake comes with the room; checked then */
}

int corio_post_until(corio_pool *pool, unsigned k, corio_msg_fn fn, void *arg, unsigned flags,
		     int64_t deadline)
{
	struct slot *s;
	corio_loop *loop;
	int err;

	if (!pool || k >= pool->nslots || !fn)
		return -EINVAL;
	s = &pool->slots[k];
	for (;;) {
		struct corio__xwait x;

		loop = enter_slot(s, &err);
		if (!loop)
			return err;
		err = corio__inbox_push(loop->inbox, fn, arg);
		if (err == 0) {
			corio__notify(loop);
			leave_slot(s);
			return 0;
		}
		/* Full. Wait for room, unless told not to or on a loop's own
		 * stack (blocking there could deadlock two loops). */
		if ((flags & CORIO_POST_NOWAIT) || (corio__tls_loop && !corio__self())) {
			leave_slot(s);
			return -EAGAIN;
		}
		if (deadline && deadline <= corio_now()) {
			leave_slot(s);
			return -ETIMEDOUT;
		}
		corio__xwait_init(&x, abort_space);
		x.r.fn = space_ready;
		corio__stack_push(&loop->inbox->space_waiters, &x.r);
		corio__notify(loop);
		leave_slot(s);
		corio__xwait_park(&x, deadline);
		if (x.aborted)
			return x.aborted;
		/* Room came (a wait ends only with it: at the deadline
		 * abort_space just marks it); past the deadline, no more tries. */
		if (deadline && corio_now() >= deadline)
			return -ETIMEDOUT;
	}
}

int corio__pool_deliver(corio_pool *pool, unsigned k, struct corio__remote *r)
{
	struct slot *s = &pool->slots[k];
	corio_loop *loop;
	int err;

	loop = enter_slot(s, &err);
	if (!loop)
		return err;
	corio__remote_post(loop, r);
	leave_slot(s);
	return 0;
}

int corio_post(corio_pool *pool, unsigned k, corio_msg_fn fn, void *arg, unsigned flags)
{
	return corio_post_until(pool, k, fn, arg, flags, 0);
}

/* ---------------------------------------------------------------- pool */

static void kick_noop(struct corio__remote *r)
{
	(void)r;
}

/* Pin the calling thread to @cpu (< 0: leave it). 0 or -errno: EINVAL when
 * the CPU is not one this process may run on (offline, outside its cpuset,
 * beyond CPU_SETSIZE). */
static int pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return 0;
	if (cpu >= CPU_SETSIZE)
		return -EINVAL;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static int attach(corio_pool *pool, struct slot *s, corio_loop *loop)
{
	loop->pool = pool;
	loop->index = s->index;
	atomic_store_explicit(&s->loop, loop, memory_order_release);
	atomic_store_explicit(&s->closed, false, memory_order_release);
	return 0;
}

static bool idle(const corio_loop *loop)
{
	return !loop->live_fibers && !loop->pending_async && !loop->inflight;
}

/* Wake every other member so it sees the phase change. A loop that already
 * closed its slot needs no kick (and must not be touched). */
static void kick_all(corio_pool *pool, unsigned except)
{
	for (unsigned i = 0; i < pool->nloops; i++) {
		struct slot *s = &pool->slots[i];
		corio_loop *loop;
		int err;

		if (i == except || !(loop = enter_slot(s, &err)))
			continue;
		corio__remote_post(loop, except == pool->nloops ? &s->kick_stop : &s->kick_quiet);
		leave_slot(s);
	}
}

/* Run a pool thread's loop until the pool stops (see the phases above). */
static void member_run(corio_pool *pool, struct slot *s, corio_loop *loop)
{
	bool counted = false;

	for (;;) {
		if (atomic_load_explicit(&pool->phase, memory_order_acquire) == PHASE_QUIESCE) {
			if (!loop->closing)
				corio__loop_close(loop);
			if (!counted && idle(loop)) {
				counted = true;
				if (atomic_fetch_add(&pool->quiet, 1) + 1 == pool->nloops)
					kick_all(pool, s->index);
			}
			if (atomic_load(&pool->quiet) == pool->nloops)
				break;
		}
		if (corio__turn(loop, true) < 0)
			break;
	}
	close_slot(s);
	corio_loop_destroy(loop); /* drains the inbox, ends what is left */
	atomic_store_explicit(&s->loop, NULL, memory_order_release);
}

static void *member_main(void *arg)
{
	struct slot *s = arg;
	corio_pool *pool = s->pool;
	struct corio_loop_opts o = pool->opts.loop;
	corio_loop *loop = NULL;
	bool go;
	int err;

	o.mode = s->mode;
	err = pin(s->cpu);
	if (!err)
		err = corio_loop_create(&loop, &o);
	if (!err)
		attach(pool, s, loop);
	pthread_mutex_lock(&pool->lock);
	s->start_err = err;
	pool->started++;
	pthread_cond_broadcast(&pool->cond);
	while (!pool->go && !pool->stopped)
		pthread_cond_wait(&pool->cond, &pool->lock);
	go = pool->go;
	pthread_mutex_unlock(&pool->lock);
	if (err)
		return NULL;
	if (!go) {
		close_slot(s);
		corio_loop_destroy(loop);
		atomic_store_explicit(&s->loop, NULL, memory_order_release);
		return NULL;
	}
	if (pool->opts.on_start)
		pool->opts.on_start(loop, s->index, pool->opts.arg);
	member_run(pool, s, loop);
	return NULL;
}

/* The CPUs of the affinity mask, in order. */
static unsigned mask_cpus(int *cpus, unsigned max)
{
	cpu_set_t set;
	unsigned n = 0;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 0;
	for (int c = 0; c < CPU_SETSIZE && n < max; c++)
		if (CPU_ISSET(c, &set))
			cpus[n++] = c;
	return n;
}

int corio_pool_create(corio_pool **out, const struct corio_pool_opts *opts)
{
	struct corio_pool_opts o = opts ? *opts : (struct corio_pool_opts){0};
	int mask[CPU_SETSIZE];
	sigset_t oldmask;
	unsigned nmask = 0;
	corio_pool *pool;
	unsigned created = 0;
	int err = 0;

	if (!out || (o.cpus && !o.ncpus))
		return -EINVAL;
	if (!o.cpus) {
		nmask = mask_cpus(mask, CPU_SETSIZE);
		if (!nmask)
			return -EINVAL;
	}
	if (!o.nloops)
		o.nloops = o.cpus ? o.ncpus : nmask;
	if (!o.max_joined)
		o.max_joined = 4;
	pool = calloc(1, sizeof(*pool));
	if (!pool)
		return -ENOMEM;
	pool->nloops = o.nloops;
	pool->nslots = o.nloops + o.max_joined;
	pool->slots = aligned_alloc(CORIO__CACHELINE, pool->nslots * sizeof(struct slot));
	if (!pool->slots) {
		free(pool);
		return -ENOMEM;
	}
	memset(pool->slots, 0, pool->nslots * sizeof(struct slot));
	pool->opts = o;
	pool->opts.modes = NULL;
	pool->opts.cpus = NULL;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->cond, NULL);
	for (unsigned i = 0; i < pool->nslots; i++) {
		struct slot *s = &pool->slots[i];

		s->pool = pool;
		s->index = i;
		s->cpu = i >= o.nloops ? -1 : o.cpus ? o.cpus[i % o.ncpus] : mask[i % nmask];
		s->mode = i < o.nloops && o.modes ? o.modes[i] : o.loop.mode;
		s->kick_stop.fn = kick_noop;
		s->kick_quiet.fn = kick_noop;
	}
	/* The threads start with every signal blocked but those a thread
	 * raises on itself (corio/signal.h): a signal for the process must not
	 * land on a loop, whatever the creator's mask was. */
	corio__block_signals(&oldmask);
	for (unsigned i = 0; i < o.nloops && !err; i++) {
		err = -pthread_create(&pool->slots[i].thread, NULL, member_main, &pool->slots[i]);
		if (!err) {
			pool->slots[i].has_thread = true;
			created++;
		}
	}
	pthread_sigmask(SIG_SETMASK, &oldmask, NULL);
	/* Wait for every thread to report its loop, then let them all go (or
	 * all stop, if one failed). */
	pthread_mutex_lock(&pool->lock);
	while (pool->started < created)
		pthread_cond_wait(&pool->cond, &pool->lock);
	for (unsigned i = 0; i < created && !err; i++)
		err = pool->slots[i].start_err;
	if (err)
		pool->stopped = true;
	else
		pool->go = true;
	pthread_cond_broadcast(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
	if (err) {
		for (unsigned i = 0; i < o.nloops; i++)
			if (pool->slots[i].has_thread)
				pthread_join(pool->slots[i].thread, NULL);
		pthread_cond_destroy(&pool->cond);
		pthread_mutex_destroy(&pool->lock);
		free(pool->slots);
		free(pool);
		return err;
	}
	*out = pool;
	return 0;
}

int corio_pool_stop(corio_pool *pool)
{
	if (!pool)
		return -EINVAL;
	if (corio__tls_loop && corio__tls_loop->pool == pool)
		return -EDEADLK;
	if (pool->stopped)
		return 0;
	atomic_store_explicit(&pool->phase, PHASE_QUIESCE, memory_order_seq_cst);
	kick_all(pool, pool->nloops); /* nloops: kick everyone, with kick_stop */
	for (unsigned i = 0; i < pool->nloops; i++)
		if (pool->slots[i].has_thread)
			pthread_join(pool->slots[i].thread, NULL);
	pool->stopped = true;
	return 0;
}

void corio_pool_destroy(corio_pool *pool)
{
	if (!pool)
		return;
	corio_pool_stop(pool);
	pthread_cond_destroy(&pool->cond);
	pthread_mutex_destroy(&pool->lock);
	free(pool->slots);
	free(pool);
}

unsigned corio_pool_size(const corio_pool *pool)
{
	return pool ? pool->nslots : 0;
}

unsigned corio_pool_nloops(const corio_pool *pool)
{
	return pool ? pool->nloops : 0;
}

corio_pool *corio_pool_current(void)
{
	return corio__tls_loop ? corio__tls_loop->pool : NULL;
}

int corio_pool_index(void)
{
	corio_loop *loop = corio__tls_loop;

	return loop && loop->pool ? (int)loop->index : -EPERM;
}

corio_loop *corio_pool_loop(corio_pool *pool, unsigned k)
{
	if (!pool || k >= pool->nslots)
		return NULL;
	return atomic_load_explicit(&pool->slots[k].loop, memory_order_acquire);
}

int corio_pool_join(corio_pool *pool, corio_loop **loop_out, unsigned *index)
{
	struct slot *s = NULL;
	corio_loop *loop;
	int err;

	if (!pool)
		return -EINVAL;
	if (corio__tls_loop)
		return -EBUSY;
	if (atomic_load(&pool->phase) != PHASE_RUN || pool->stopped)
		return -ESHUTDOWN;
	pthread_mutex_lock(&pool->lock);
	for (unsigned i = pool->nloops; i < pool->nslots && !s; i++)
		if (!pool->slots[i].joined) {
			s = &pool->slots[i];
			s->joined = true;
		}
	pthread_mutex_unlock(&pool->lock);
	if (!s)
		return -ENOSPC;
	err = corio_loop_create(&loop, &pool->opts.loop);
	if (err) {
		pthread_mutex_lock(&pool->lock);
		s->joined = false;
		pthread_mutex_unlock(&pool->lock);
		return err;
	}
	attach(pool, s, loop);
	if (loop_out)
		*loop_out = loop;
	if (index)
		*index = s->index;
	return 0;
}

int corio_pool_leave(corio_pool *pool)
{
	corio_loop *loop = corio__tls_loop;
	struct slot *s;

	if (!pool || !loop || loop->pool != pool || loop->index < pool->nloops)
		return -EINVAL;
	if (loop->current)
		return -EPERM;
	s = &pool->slots[loop->index];
	close_slot(s);
	corio_loop_destroy(loop);
	atomic_store_explicit(&s->loop, NULL, memory_order_release);
	pthread_mutex_lock(&pool->lock);
	s->joined = false;
	pthread_mutex_unlock(&pool->lock);
	return 0;
}
