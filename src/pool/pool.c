/*
 * Thread per core: the pool, each loop's inbox, posting, waking.
 *
 * Rule 5 (wake only who sleeps), the protocol:
 *
 *   loop about to sleep:             sender:
 *     state = SLEEPING                 push the message
 *     fence (seq_cst)                  fence (seq_cst)
 *     anything queued? -> don't sleep  state == SLEEPING? -> exchange to AWAKE;
 *     sleep in the kernel                 the one that flipped it wakes the loop
 *     state = AWAKE
 *
 * The two fences make it a Dekker pair: either the loop sees the message
 * before it sleeps, or the sender sees SLEEPING and wakes it. A sender to a
 * busy loop pays one fence and one load, no system call. The loop may be
 * woken once too often (harmless), never once too few.
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
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "../internal.h"

#define DRAIN_BATCH 4096

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

/* ---------------------------------------------------------------- futex */

static void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
	syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *addr)
{
	syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* ---------------------------------------------------------------- inbox */

int corio__inbox_init(corio_loop *loop, unsigned size)
{
	struct corio__inbox *ib;
	uint64_t n = 2;

	while (n < size)
		n <<= 1;
	ib = aligned_alloc(CORIO__CACHELINE, sizeof(*ib));
	if (!ib)
		return -ENOMEM;
	memset(ib, 0, sizeof(*ib));
	ib->cells = calloc(n, sizeof(*ib->cells));
	if (!ib->cells) {
		free(ib);
		return -ENOMEM;
	}
	for (uint64_t i = 0; i < n; i++)
		atomic_init(&ib->cells[i].seq, i);
	ib->mask = n - 1;
	loop->inbox = ib;
	return 0;
}

void corio__inbox_term(corio_loop *loop)
{
	if (!loop->inbox)
		return;
	while (atomic_load_explicit(&loop->inbox->remote_posting, memory_order_acquire))
		sched_yield();
	free(loop->inbox->cells);
	free(loop->inbox);
	loop->inbox = NULL;
}

bool corio__inbox_pending(corio_loop *loop)
{
	struct corio__inbox *ib = loop->inbox;

	return atomic_load_explicit(&ib->remote, memory_order_relaxed) ||
	       atomic_load_explicit(&ib->space_waiters, memory_order_relaxed) ||
	       corio__inbox_has_msg(ib);
}

/* Run a list taken from a delivery stack; returns its length. */
static unsigned run_stack(struct corio__remote *r)
{
	struct corio__remote *next;
	unsigned n = 0;

	for (; r; r = next, n++) {
		next = r->next; /* r->fn may hand r on to another queue */
		r->fn(r);
	}
	return n;
}

unsigned corio__inbox_drain(corio_loop *loop)
{
	struct corio__inbox *ib = loop->inbox;
	void (*fn)(void *);
	void *arg;
	unsigned n, m = 0;

	n = run_stack(corio__stack_take(&ib->remote));
	while (m < DRAIN_BATCH && corio__inbox_pop(ib, &fn, &arg)) {
		fn(arg);
		m++;
	}
	loop->stats.msgs_received += m;
	/* Senders that found the inbox full: there is room now. */
	if (atomic_load_explicit(&ib->space_waiters, memory_order_relaxed))
		n += run_stack(corio__stack_take(&ib->space_waiters));
	return n + m;
}

void corio__notify(corio_loop *target)
{
	corio_loop *self = corio__tls_loop;
	struct corio__inbox *ib = target->inbox;

	if (target == self)
		return; /* we are its thread, so it is awake */
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&ib->state, memory_order_relaxed) == CORIO__SLEEPING &&
	    atomic_exchange_explicit(&ib->state, CORIO__AWAKE, memory_order_acq_rel) ==
		    CORIO__SLEEPING) {
		target->be->wake(target, self);
		if (self)
			self->stats.wakes_sent++;
	} else if (self) {
		self->stats.wakes_elided++;
	}
}

void corio__remote_post(corio_loop *loop, struct corio__remote *r)
{
	struct corio__inbox *ib = loop->inbox;

	/* Once r is pushed its owner may be woken and the loop may end; the
	 * count keeps the loop (and its inbox) alive until we are done with
	 * it: corio__inbox_term waits for it to drop to zero. */
	atomic_fetch_add_explicit(&ib->remote_posting, 1, memory_order_acq_rel);
	corio__stack_push(&ib->remote, r);
	corio__notify(loop);
	atomic_fetch_sub_explicit(&ib->remote_posting, 1, memory_order_release);
}

/* ---------------------------------------------------------------- xwait */

static void abort_none(struct corio__wait *w, int reason)
{
	(void)w;
	(void)reason; /* the delivery is on its way; wait for it */
}

void corio__xwait_init(struct corio__xwait *x, void (*abort)(struct corio__wait *, int))
{
	memset(x, 0, sizeof(*x));
	x->loop = corio__self() ? corio__tls_loop : NULL;
	x->w.abort = abort ? abort : abort_none;
	x->w.obj = x;
	corio__list_init(&x->link);
	atomic_init(&x->futex, 0);
}

int corio__xwait_park(struct corio__xwait *x, int64_t deadline)
{
	int res;

	if (!x->loop) {
		while (atomic_load_explicit(&x->futex, memory_order_acquire) == 0)
			futex_wait(&x->futex, 0);
		return x->res;
	}
	x->loop->remote_waiters++;
	res = corio__park(&x->w, deadline);
	x->loop->remote_waiters--;
	return res;
}

static void xwait_home(struct corio__remote *r)
{
	struct corio__xwait *x = corio__container_of(r, struct corio__xwait, r);

	corio__wake(&x->w, x->res);
}

void corio__xwait_deliver(struct corio__xwait *x, int res)
{
	x->res = res;
	if (x->loop) {
		x->r.fn = xwait_home;
		corio__remote_post(x->loop, &x->r);
		return;
	}
	/* After this store the waiter may return; the wake below only uses
	 * the address, which is harmless even if the memory moved on. */
	atomic_store_explicit(&x->futex, 1, memory_order_release);
	futex_wake(&x->futex);
}

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

int corio_post(corio_pool *pool, unsigned k, corio_msg_fn fn, void *arg, unsigned flags)
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
		corio__xwait_init(&x, abort_space);
		x.r.fn = space_ready;
		corio__stack_push(&loop->inbox->space_waiters, &x.r);
		corio__notify(loop);
		leave_slot(s);
		corio__xwait_park(&x, 0);
		if (x.aborted)
			return x.aborted;
	}
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
	for (unsigned i = 0; i < o.nloops && !err; i++) {
		err = -pthread_create(&pool->slots[i].thread, NULL, member_main, &pool->slots[i]);
		if (!err) {
			pool->slots[i].has_thread = true;
			created++;
		}
	}
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

	return loop && loop->pool ? (int)loop->index : -1;
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
