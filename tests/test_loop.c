/*
 * The loop: one per thread, used from its own thread only, run/run_once/
 * stop, -EDEADLK when every fiber waits on another, corio_main, stats, the
 * modes (interrupt, poll, hybrid), and destroy with fibers and async
 * operations still in the kernel.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pool/inbox.h" /* the inbox's sleeping word */
#include "util.h"

static void *nothing(void *arg)
{
	return arg;
}

/* ------------------------------------------------------- create/destroy */

static void create_destroy(void **state)
{
	corio_loop *a, *b = NULL;

	(void)state;
	assert_null(corio_loop_current());
	assert_int_equal(corio_loop_create(NULL, NULL), -EINVAL);
	a = t_loop();
	assert_ptr_equal(corio_loop_current(), a);
	/* One loop per thread. */
	assert_int_equal(corio_loop_create(&b, NULL), -EBUSY);
	assert_null(b);
	/* The backend asked for in $CORIO_BACKEND. */
	if (!strcmp(t_backend(), "uring"))
		assert_string_equal(corio_loop_backend(a), "io_uring");
	else
		assert_string_equal(corio_loop_backend(a), "epoll");
	/* Nothing to do: run returns at once. */
	assert_int_equal(corio_loop_run(a), 0);
	assert_int_equal(corio_loop_run_once(a, true), 0);
	corio_loop_destroy(a);
	assert_null(corio_loop_current());
	/* The thread can have a loop again. */
	a = t_loop();
	corio_loop_destroy(a);
	assert_int_equal(corio_loop_run(NULL), -EINVAL);
	assert_string_equal(corio_loop_backend(NULL), "");
}

static void bad_backend_env(void **state)
{
	char *saved = getenv("CORIO_BACKEND") ? strdup(getenv("CORIO_BACKEND")) : NULL;
	struct corio_loop_opts o = {.backend = CORIO_BACKEND_URING};
	corio_loop *loop = NULL;
	int err;

	(void)state;
	setenv("CORIO_BACKEND", "bogus", 1);
	assert_int_equal(corio_loop_create(&loop, NULL), -EINVAL);
	assert_null(loop);
	assert_null(corio_loop_current());
	/* An explicit backend in the options wins over the environment. */
	err = corio_loop_create(&loop, &o);
	if (err == 0) {
		assert_string_equal(corio_loop_backend(loop), "io_uring");
		corio_loop_destroy(loop);
	} else {
		assert_true(err < 0); /* io_uring unavailable here */
	}
	if (saved) {
		setenv("CORIO_BACKEND", saved, 1);
		free(saved);
	} else {
		unsetenv("CORIO_BACKEND");
	}
}

/* --------------------------------------------------- threads and fibers */

static corio_loop *shared_loop;
static int thread_results[6];

static void cb_never(corio_loop *loop, int res, unsigned flags, void *user)
{
	(void)loop;
	(void)res;
	(void)flags;
	(void)user;
	fail_msg("callback of an operation that must not have started");
}

static void *wrong_thread(void *arg)
{
	corio_loop *mine = NULL;

	(void)arg;
	thread_results[0] = corio_loop_run(shared_loop);
	thread_results[1] = corio_loop_run_once(shared_loop, false);
	thread_results[2] = corio_spawn(NULL, shared_loop, nothing, NULL, NULL);
	thread_results[3] = (int)corio_async_nop(shared_loop, cb_never, NULL);
	thread_results[4] = (int)corio_async_timer(shared_loop, 1, cb_never, NULL);
	/* This thread can have a loop of its own, at the same time. */
	thread_results[5] = corio_loop_create(&mine, NULL);
	if (mine)
		corio_loop_destroy(mine);
	return NULL;
}

static void run_from_wrong_thread(void **state)
{
	pthread_t t;

	(void)state;
	shared_loop = t_loop();
	assert_int_equal(pthread_create(&t, NULL, wrong_thread, NULL), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(thread_results[0], -EPERM);
	assert_int_equal(thread_results[1], -EPERM);
	assert_int_equal(thread_results[2], -EPERM);
	assert_int_equal(thread_results[3], -EPERM);
	assert_int_equal(thread_results[4], -EPERM);
	assert_int_equal(thread_results[5], 0);
	assert_int_equal(corio_loop_run(shared_loop), 0);
	corio_loop_destroy(shared_loop);
}

static void *run_from_fiber_body(void *arg)
{
	corio_loop *loop = corio_loop_current(), *other = NULL;

	(void)arg;
	assert_int_equal(corio_loop_run(loop), -EPERM);
	assert_int_equal(corio_loop_run_once(loop, false), -EPERM);
	assert_int_equal(corio_loop_create(&other, NULL), -EBUSY);
	assert_int_equal(corio_main(nothing, NULL), -EBUSY);
	return NULL;
}

static void run_from_fiber(void **state)
{
	(void)state;
	t_run(run_from_fiber_body, NULL);
}

/* ----------------------------------------------------------- deadlock */

static corio_event ev_a, ev_b;
static int dl_res[3];

static void *wait_a_set_b(void *arg)
{
	(void)arg;
	dl_res[0] = corio_event_wait(&ev_a);
	corio_event_set(&ev_b);
	return NULL;
}

static void *wait_b_set_a(void *arg)
{
	(void)arg;
	dl_res[1] = corio_event_wait(&ev_b);
	corio_event_set(&ev_a);
	return NULL;
}

static corio_mutex m1, m2;

static void *lock_12(void *arg)
{
	(void)arg;
	assert_int_equal(corio_mutex_lock(&m1), 0);
	t_turns(1);
	dl_res[2] = corio_mutex_lock(&m2);
	assert_int_equal(corio_mutex_unlock(&m1), 0);
	return NULL;
}

static void *lock_21(void *arg)
{
	(void)arg;
	assert_int_equal(corio_mutex_lock(&m2), 0);
	t_turns(1);
	assert_int_equal(corio_mutex_lock(&m1), -ECANCELED);
	assert_int_equal(corio_mutex_unlock(&m2), 0);
	return NULL;
}

static void deadlock_detected(void **state)
{
	corio_loop *loop = t_loop();

	(void)state;
	corio_event_init(&ev_a);
	corio_event_init(&ev_b);
	corio_mutex_init(&m1);
	corio_mutex_init(&m2);
	memset(dl_res, 0x55, sizeof(dl_res));
	assert_int_equal(corio_spawn(NULL, loop, wait_a_set_b, NULL, NULL), 0);
	assert_int_equal(corio_spawn(NULL, loop, wait_b_set_a, NULL, NULL), 0);
	assert_int_equal(corio_spawn(NULL, loop, lock_12, NULL, NULL), 0);
	assert_int_equal(corio_spawn(NULL, loop, lock_21, NULL, NULL), 0);
	assert_int_equal(corio_loop_run(loop), -EDEADLK);
	assert_int_equal(corio_loop_run_once(loop, true), -EDEADLK);
	/* Still deadlocked: run again says so again rather than hanging. */
	assert_int_equal(corio_loop_run(loop), -EDEADLK);
	/* Destroy cancels them: each wait returns -ECANCELED. */
	corio_loop_destroy(loop);
	assert_int_equal(dl_res[0], -ECANCELED);
	assert_int_equal(dl_res[1], -ECANCELED);
	/* lock_12 either got m2 handed over (lock_21 was cancelled first and
	 * released it) or was cancelled itself. */
	assert_true(dl_res[2] == 0 || dl_res[2] == -ECANCELED);
}

/* A fiber parked with a deadline is not a deadlock; nor one in I/O. */
static void *sleep_short(void *arg)
{
	(void)arg;
	assert_int_equal(corio_sleep(CORIO_MSEC), 0);
	corio_event_set(&ev_a);
	return NULL;
}

static void *wait_ev_a(void *arg)
{
	(void)arg;
	assert_int_equal(corio_event_wait(&ev_a), 0);
	return NULL;
}

static void *read_then_set(void *arg)
{
	int *p = arg;
	char c;

	assert_int_equal(corio_read(p[0], &c, 1, -1), 1);
	corio_event_set(&ev_b);
	return NULL;
}

static void *write_later(void *arg)
{
	int *p = arg;

	assert_int_equal(corio_event_wait(&ev_a), 0);
	assert_int_equal(corio_write(p[1], "x", 1, -1), 1);
	assert_int_equal(corio_event_wait(&ev_b), 0);
	return NULL;
}

static void not_a_deadlock(void **state)
{
	corio_loop *loop = t_loop();
	int p[2];

	(void)state;
	t_pipe(p);
	corio_event_init(&ev_a);
	corio_event_init(&ev_b);
	assert_int_equal(corio_spawn(NULL, loop, wait_ev_a, NULL, NULL), 0);
	assert_int_equal(corio_spawn(NULL, loop, read_then_set, p, NULL), 0);
	assert_int_equal(corio_spawn(NULL, loop, write_later, p, NULL), 0);
	assert_int_equal(corio_spawn(NULL, loop, sleep_short, NULL, NULL), 0);
	assert_int_equal(corio_loop_run(loop), 0);
	corio_loop_destroy(loop);
	close(p[0]);
	close(p[1]);
}

/* --------------------------------------------------- stop and run_once */

static int stop_count;

static void *stopper(void *arg)
{
	for (int i = 0; i < 3; i++) {
		stop_count++;
		corio_loop_stop(corio_loop_current());
		t_turns(1);
	}
	return arg;
}

static void timer_cb(corio_loop *loop, int res, unsigned flags, void *user)
{
	(void)loop;
	(void)flags;
	if (res == 0)
		(*(int *)user)++;
}

static void count_byte(corio_loop *loop, int res, unsigned flags, void *user)
{
	(void)loop;
	(void)flags;
	if (res == 1)
		(*(int *)user)++;
}

static void stop_and_run_once(void **state)
{
	corio_loop *loop = t_loop();
	corio_fiber *f;

	(void)state;
	stop_count = 0;
	assert_int_equal(corio_spawn(&f, loop, stopper, (void *)3, NULL), 0);
	/* Each run returns after the turn in which stop was called. */
	assert_int_equal(corio_loop_run(loop), 0);
	assert_int_equal(stop_count, 1);
	assert_int_equal(corio_loop_run(loop), 0);
	assert_int_equal(stop_count, 2);
	/* run_once: 1 while work remains. */
	assert_int_equal(corio_loop_run_once(loop, false), 1);
	assert_int_equal(stop_count, 3);
	/* Last turn: the fiber ends; 0, the loop is idle. */
	assert_int_equal(corio_loop_run_once(loop, false), 0);
	assert_ptr_equal(t_join(f), (void *)3);
	assert_int_equal(corio_loop_run_once(loop, true), 0);
	corio_loop_stop(NULL);
	/* A stop ends a run, not the loop: after it, a waiting run_once still
	 * waits, here for the timer, which one turn must then fire. */
	corio_loop_stop(loop);
	assert_true(corio_async_timer(loop, corio_now() + CORIO_MSEC, timer_cb, &stop_count) > 0);
	assert_int_equal(corio_loop_run_once(loop, true), 0);
	assert_int_equal(stop_count, 4);
	corio_loop_destroy(loop);
}

/* ---------------------------------------------------------------- modes */

/*
 * What a loop does with a receive in flight and nothing else to do:
 * INTERRUPT sleeps in the kernel at once; POLL never sleeps; HYBRID spins
 * while its last event (a nop completed just before) is less than spin_ns
 * old, then sleeps. Another thread writes the byte the receive waits for
 * as soon as it sees the loop asleep (the inbox's sleeping word), so a
 * sleeping loop is woken, and one that never sleeps turns 1,000 times
 * without it. Returns the turns that did not sleep before the receive
 * completed (or the 1,000); *slept gets how many times the loop slept.
 */
struct asleep {
	corio_loop *loop;
	int fd;
	_Atomic int stop;
};

static void *wake_when_asleep(void *arg)
{
	struct asleep *a = arg;

	while (!atomic_load(&a->stop)) {
		if (atomic_load(&a->loop->inbox->state) == CORIO__SLEEPING) {
			if (write(a->fd, "w", 1) != 1)
				abort(); /* not cmocka's thread: no assert */
			break;
		}
		sched_yield();
	}
	return NULL;
}

static int turns_awake(enum corio_loop_mode mode, int64_t spin_ns, uint64_t *slept)
{
	corio_loop *loop = t_loop_opts(&(struct corio_loop_opts){.mode = mode, .spin_ns = spin_ns});
	struct corio_loop_stats before, after;
	struct asleep a = {.loop = loop};
	int nop = 0, got = 0, awake = 0, sv[2];
	pthread_t t;
	char c;

	t_socketpair(sv);
	a.fd = sv[1];
	assert_true(corio_async_nop(loop, timer_cb, &nop) > 0);
	while (!nop)
		assert_true(corio_loop_run_once(loop, false) >= 0);
	corio_loop_stats(loop, &before, sizeof(before));
	assert_true(corio_async_recv(loop, sv[0], &c, 1, 0, count_byte, &got) > 0);
	assert_int_equal(pthread_create(&t, NULL, wake_when_asleep, &a), 0);
	while (!got && awake < 1000) {
		assert_true(corio_loop_run_once(loop, true) >= 0);
		corio_loop_stats(loop, &after, sizeof(after));
		if (!got && after.sleeps == before.sleeps)
			awake++;
	}
	atomic_store(&a.stop, 1);
	assert_int_equal(pthread_join(t, NULL), 0);
	*slept = after.sleeps - before.sleeps;
	corio_loop_destroy(loop); /* cancels the receive if it still waits */
	close(sv[0]);
	close(sv[1]);
	return awake;
}

static void modes(void **state)
{
	uint64_t slept;

	(void)state;
	/* Asleep at the first turn and at every one until the write (on
	 * epoll with the re-check on, its timer may end a sleep first). */
	assert_int_equal(turns_awake(CORIO_MODE_INTERRUPT, 0, &slept), 0);
	assert_true(slept >= 1);
	/* Turns and never sleeps. */
	assert_int_equal(turns_awake(CORIO_MODE_POLL, 0, &slept), 1000);
	assert_int_equal(slept, 0);
	/* HYBRID within its spin (an hour): polls. */
	assert_int_equal(turns_awake(CORIO_MODE_HYBRID, 3600 * CORIO_SEC, &slept), 1000);
	assert_int_equal(slept, 0);
	/* HYBRID past its spin (1 ns, long gone at the first turn): sleeps. */
	assert_int_equal(turns_awake(CORIO_MODE_HYBRID, 1, &slept), 0);
	assert_true(slept >= 1);
}

/* ---------------------------------------------------------- corio_main */

static void *main_body(void *arg)
{
	assert_non_null(corio_loop_current());
	assert_non_null(corio_self());
	assert_int_equal(corio_sleep(1000), 0);
	return arg;
}

static void *main_deadlocks(void *arg)
{
	corio_event e;

	(void)arg;
	corio_event_init(&e);
	assert_int_equal(corio_event_wait(&e), -ECANCELED);
	return (void *)1;
}

static void main_convenience(void **state)
{
	corio_loop *loop;

	(void)state;
	(void)t_loop(); /* skip when the backend is unavailable */
	corio_loop_destroy(corio_loop_current());
	assert_int_equal(corio_main(main_body, (void *)42), 42);
	assert_int_equal(corio_main(main_body, (void *)-3), -3);
	assert_null(corio_loop_current());
	assert_int_equal(corio_main(main_deadlocks, NULL), -EDEADLK);
	assert_null(corio_loop_current());
	assert_int_equal(corio_main(NULL, NULL), -EINVAL);
	assert_null(corio_loop_current());
	loop = t_loop();
	assert_int_equal(corio_main(main_body, NULL), -EBUSY);
	corio_loop_destroy(loop);
}

/* --------------------------------------------------------------- stats */

static void *stats_body(void *arg)
{
	(void)arg;
	assert_int_equal(corio_nop(), 0);
	assert_int_equal(corio_nop(), 0);
	assert_int_equal(corio_sleep(1000), 0);
	assert_int_equal(corio_yield(), 0);
	return NULL;
}

static void stats(void **state)
{
	corio_loop *loop = t_loop();
	struct corio_loop_stats st, part;
	corio_fiber *f;

	(void)state;
	corio_loop_stats(loop, &st, sizeof(st));
	assert_int_equal(st.ops_started, 0);
	assert_int_equal(st.fibers_spawned, 0);
	assert_int_equal(corio_spawn(&f, loop, stats_body, NULL, NULL), 0);
	assert_int_equal(corio_loop_run(loop), 0);
	t_join(f);
	corio_loop_stats(loop, &st, sizeof(st));
	assert_int_equal(st.fibers_spawned, 1);
	assert_int_equal(st.ops_started, 2);
	assert_int_equal(st.ops_completed, 2);
	assert_int_equal(st.timers_fired, 1);
	/* Switched in: at start, after the sleep, after the yield, and after
	 * each nop unless the backend completed it inline (io_uring never
	 * does: a nop goes through the ring). */
	if (t_is_uring(loop))
		assert_int_equal(st.switches, 5);
	assert_true(st.switches >= 3 && st.switches <= 5);
	/* A turn per switch-in at least (nops completed inline save turns). */
	assert_true(st.turns >= st.switches);
	assert_true(st.enters >= 1);
	/* A short copy touches only what it is given. */
	memset(&part, 0xab, sizeof(part));
	corio_loop_stats(loop, &part, sizeof(uint64_t));
	assert_int_equal(part.turns, st.turns);
	assert_int_equal(part.enters, 0xababababababababULL);
	corio_loop_stats(NULL, &part, sizeof(part));
	corio_loop_stats(loop, NULL, sizeof(part));
	corio_loop_destroy(loop);
}

/* ------------------------------------------- destroy with work in flight */

#define NREADERS 8
static int sv[NREADERS][2];
static ssize_t reader_res[NREADERS];
static int misc_res[5];
static int async_res[3], async_calls;
static corio_event never;

static void *reader(void *arg)
{
	int i = (int)(intptr_t)arg;
	char buf[64]; /* on this fiber's stack: must not be written once freed */

	memset(buf, 0, sizeof(buf));
	reader_res[i] = corio_recv(sv[i][0], buf, sizeof(buf), 0);
	/* Every later blocking call is cancelled as well. */
	misc_res[4] += corio_nop() == -ECANCELED;
	return NULL;
}

static void *sleeper(void *arg)
{
	(void)arg;
	misc_res[0] = corio_sleep(3600 * CORIO_SEC);
	return NULL;
}

static void *event_waiter(void *arg)
{
	(void)arg;
	misc_res[1] = corio_event_wait(&never);
	return NULL;
}

static void *late_starter(void *arg)
{
	(void)arg;
	/* Spawned, never ran before destroy: its first call is cancelled. */
	misc_res[2] = corio_sleep(1);
	return NULL;
}

static void *spawner_in_destroy(void *arg)
{
	(void)arg;
	misc_res[3] = corio_event_wait(&never);
	/* A fiber spawned while the loop is closing runs, and is cancelled. */
	assert_int_equal(corio_spawn(NULL, NULL, late_starter, NULL, NULL), 0);
	return NULL;
}

static void async_cb(corio_loop *loop, int res, unsigned flags, void *user)
{
	(void)loop;
	(void)flags;
	async_res[(intptr_t)user] = res;
	async_calls++;
}

static void destroy_with_live_fibers(void **state)
{
	corio_loop *loop = t_loop();
	static char abuf[16];
	int ap[2];

	(void)state;
	corio_event_init(&never);
	memset(misc_res, 0, sizeof(misc_res));
	async_calls = 0;
	t_pipe(ap);
	for (int i = 0; i < NREADERS; i++) {
		t_socketpair(sv[i]);
		reader_res[i] = 1;
		assert_int_equal(corio_spawn(NULL, loop, reader, (void *)(intptr_t)i, NULL), 0);
	}
	assert_int_equal(corio_spawn(NULL, loop, sleeper, NULL, NULL), 0);
	assert_int_equal(corio_spawn(NULL, loop, event_waiter, NULL, NULL), 0);
	assert_int_equal(corio_spawn(NULL, loop, spawner_in_destroy, NULL, NULL), 0);
	assert_true(corio_async_read(loop, ap[0], abuf, sizeof(abuf), -1, async_cb, (void *)0) > 0);
	assert_true(corio_async_timer(loop, corio_now() + 3600 * CORIO_SEC, async_cb, (void *)1) >
		    0);
	assert_true(corio_async_poll(loop, ap[0], POLLIN, async_cb, (void *)2) > 0);
	/* One turn: every fiber starts and parks. */
	assert_int_equal(corio_loop_run_once(loop, false), 1);
	corio_loop_destroy(loop);
	assert_null(corio_loop_current());

	for (int i = 0; i < NREADERS; i++)
		assert_int_equal(reader_res[i], -ECANCELED);
	assert_int_equal(misc_res[0], -ECANCELED);
	assert_int_equal(misc_res[1], -ECANCELED);
	assert_int_equal(misc_res[2], -ECANCELED);
	assert_int_equal(misc_res[3], -ECANCELED);
	assert_int_equal(misc_res[4], NREADERS);
	assert_int_equal(async_calls, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(async_res[i], -ECANCELED);
	/* No operation survived the loop: what is written now stays there. */
	for (int i = 0; i < NREADERS; i++) {
		char buf[8];

		assert_int_equal(write(sv[i][1], "datadata", 8), 8);
		assert_int_equal(read(sv[i][0], buf, 8), 8);
		assert_memory_equal(buf, "datadata", 8);
		close(sv[i][0]);
		close(sv[i][1]);
	}
	assert_int_equal(write(ap[1], "pipe", 4), 4);
	assert_int_equal(t_readable(ap[0]), 4);
	close(ap[0]);
	close(ap[1]);
}

/* Destroying a loop whose fibers never ran, or that has nothing at all. */
static void destroy_unstarted(void **state)
{
	corio_loop *loop = t_loop();
	corio_fiber *f;

	(void)state;
	misc_res[2] = 0;
	assert_int_equal(corio_spawn(&f, loop, late_starter, NULL, NULL), 0);
	assert_int_equal(corio_spawn(NULL, loop, nothing, NULL, NULL), 0);
	corio_loop_destroy(loop);
	assert_int_equal(misc_res[2], -ECANCELED);
}

/* Callbacks that start operations while the loop is being destroyed (a
 * completion that won the race with destroy's cancellation re-arms, say):
 * those operations are cancelled too, and destroy does not wait forever. */
static int rearm_sv[2];
static char rearm_buf[8];
static int rearm_res[3], rearm_calls[3];

static void rearmed_cb(corio_loop *l, int res, unsigned flags, void *user)
{
	int i = (int)(intptr_t)user;

	(void)l;
	(void)flags;
	rearm_res[i] = res;
	rearm_calls[i]++;
}

static void rearming_cb(corio_loop *l, int res, unsigned flags, void *user)
{
	(void)flags;
	(void)user;
	/* The nop completed normally, despite destroy's cancel request. */
	rearm_res[0] = res;
	rearm_calls[0]++;
	assert_true(corio_async_recv(l, rearm_sv[0], rearm_buf, sizeof(rearm_buf), 0, rearmed_cb,
				     (void *)1) > 0);
	assert_true(corio_async_timer(l, corio_now() + 3600 * CORIO_SEC, rearmed_cb, (void *)2) >
		    0);
}

static void destroy_with_rearming_callbacks(void **state)
{
	corio_loop *loop = t_loop();

	(void)state;
	t_socketpair(rearm_sv);
	memset(rearm_calls, 0, sizeof(rearm_calls));
	/* A nop cannot be cancelled: it completes when it is submitted. */
	assert_true(corio_async_nop(loop, rearming_cb, NULL) > 0);
	corio_loop_destroy(loop);
	assert_int_equal(rearm_calls[0], 1);
	assert_int_equal(rearm_res[0], 0);
	assert_int_equal(rearm_calls[1], 1);
	assert_int_equal(rearm_res[1], -ECANCELED);
	assert_int_equal(rearm_calls[2], 1);
	assert_int_equal(rearm_res[2], -ECANCELED);
	/* Nothing is reading the socket. */
	assert_int_equal(write(rearm_sv[1], "x", 1), 1);
	assert_int_equal(t_readable(rearm_sv[0]), 1);
	close(rearm_sv[0]);
	close(rearm_sv[1]);
}

/* Loops on several threads at once, each with its own fibers and I/O. */
#define NTHREADS 3
#define PER_THREAD 40

struct tstate {
	int p[2];
	int sum;
	uint64_t ids[PER_THREAD];
};

static void *sleep_then_ret(void *arg)
{
	int i = (int)(intptr_t)arg;
	char c = (char)i;

	assert_int_equal(corio_sleep(i * 10 * CORIO_USEC), 0);
	return (void *)(intptr_t)c;
}

static void *thread_main_fiber(void *arg)
{
	struct tstate *ts = arg;
	corio_fiber *f[PER_THREAD];

	for (int i = 0; i < PER_THREAD; i++) {
		f[i] = t_spawn(sleep_then_ret, (void *)(intptr_t)i);
		ts->ids[i] = corio_fiber_id(f[i]);
	}
	for (int i = 0; i < PER_THREAD; i++) {
		char c = (char)(intptr_t)t_join(f[i]);

		assert_int_equal(corio_write(ts->p[1], &c, 1, -1), 1);
	}
	for (int i = 0; i < PER_THREAD; i++) {
		char c;

		assert_int_equal(corio_read(ts->p[0], &c, 1, -1), 1);
		ts->sum += c;
	}
	return NULL;
}

static void *loop_thread(void *arg)
{
	struct tstate *ts = arg;

	t_pipe(ts->p);
	assert_int_equal(corio_main(thread_main_fiber, ts), 0);
	assert_null(corio_loop_current());
	close(ts->p[0]);
	close(ts->p[1]);
	return NULL;
}

static void loops_on_threads(void **state)
{
	static struct tstate ts[NTHREADS];
	pthread_t t[NTHREADS];

	(void)state;
	(void)t_loop();
	corio_loop_destroy(corio_loop_current());
	memset(ts, 0, sizeof(ts));
	for (int i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, loop_thread, &ts[i]), 0);
	for (int i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	for (int i = 0; i < NTHREADS; i++) {
		assert_int_equal(ts[i].sum, PER_THREAD * (PER_THREAD - 1) / 2);
		/* Fiber ids are unique across the process. */
		for (int j = 0; j < NTHREADS; j++)
			for (int a = 0; a < PER_THREAD; a++)
				for (int b = 0; b < PER_THREAD; b++)
					if (i != j || a != b)
						assert_true(ts[i].ids[a] != ts[j].ids[b]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(create_destroy),
		cmocka_unit_test(bad_backend_env),
		cmocka_unit_test(run_from_wrong_thread),
		cmocka_unit_test(run_from_fiber),
		cmocka_unit_test(deadlock_detected),
		cmocka_unit_test(not_a_deadlock),
		cmocka_unit_test(stop_and_run_once),
		cmocka_unit_test(main_convenience),
		cmocka_unit_test(stats),
		cmocka_unit_test(modes),
		cmocka_unit_test(destroy_with_live_fibers),
		cmocka_unit_test(destroy_unstarted),
		cmocka_unit_test(destroy_with_rearming_callbacks),
		cmocka_unit_test(loops_on_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
