/*
 * Description: the epoll backend's thread pool (skipped on io_uring,
 * which has no such pool): cancellation of a queued job (-ECANCELED) and
 * of a running one (its real result), a deadline on a running job, the
 * size limit and its environment variable, many more jobs than threads,
 * and the cross-thread wake.
 *
 * Jobs are held on their pool thread by the test's job hook (the backend's
 * injection seam), which reports each start on an eventfd and waits on
 * another until the test lets the job go; so "queued" and "running" are
 * known, not guessed from timing.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/backends.h"
#include "util.h"

/* A loop on epoll, or skip (the .uring registration of this test). */
static corio_loop *ep_loop(void)
{
	corio_loop *loop = t_loop();

	if (strcmp(corio_loop_backend(loop), "epoll")) {
		corio_loop_destroy(loop);
		skip();
	}
	return loop;
}

static void run_fiber(corio_loop *loop, corio_fiber_fn fn, void *arg)
{
	corio_fiber *f;

	assert_int_equal(corio_spawn(&f, loop, fn, arg, NULL), 0);
	assert_int_equal(corio_loop_run(loop), 0);
	assert_int_equal(corio_join(f, NULL), 0);
}

/* ------------------------------------------------------ the job hook */

struct hold {
	int started; /* eventfd: +1 per job start (written by pool threads) */
	int go;	     /* eventfd: +1 lets one held job go */
	bool hold;   /* hold jobs, or only report them */
};

static void on_job(void *arg)
{
	struct hold *h = arg;
	uint64_t v = 1;

	if (write(h->started, &v, sizeof(v)) != sizeof(v))
		abort();
	if (h->hold && read(h->go, &v, sizeof(v)) != sizeof(v))
		abort();
}

static void hold_init(corio_loop *loop, struct hold *h, bool hold)
{
	/* EFD_SEMAPHORE: each read takes one start, or lets one job go. */
	h->started = eventfd(0, EFD_CLOEXEC | EFD_SEMAPHORE);
	h->go = eventfd(0, EFD_CLOEXEC | EFD_SEMAPHORE);
	h->hold = hold;
	assert_true(h->started >= 0 && h->go >= 0);
	assert_int_equal(corio__epoll_set_pool_hook(loop, on_job, h), 0);
}

static void hold_fini(corio_loop *loop, struct hold *h)
{
	assert_int_equal(corio__epoll_set_pool_hook(loop, NULL, NULL), 0);
	close(h->started);
	close(h->go);
}

/* From a fiber: wait until one more job has started on a pool thread. */
static void wait_started(struct hold *h)
{
	uint64_t v;

	assert_int_equal(corio_read(h->started, &v, sizeof(v), -1), sizeof(v));
}

static void let_go(struct hold *h)
{
	uint64_t v = 1;

	assert_int_equal(write(h->go, &v, sizeof(v)), sizeof(v));
}

/* Pool threads of this process, by the name the pool gives them. */
static int pool_threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[300], name[32] = "";
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(name, sizeof(name), f) && !strcmp(name, "corio-pool\n"))
			n++;
		fclose(f);
	}
	closedir(d);
	return n;
}

static int tmpfile_fd(void)
{
	char path[] = "/tmp/corio-pool-XXXXXX";
	int fd = mkostemp(path, O_CLOEXEC);

	assert_true(fd >= 0);
	unlink(path);
	return fd;
}

struct cb {
	int res;
	int calls;
};

static void on_done(corio_loop *loop, int res, unsigned flags, void *user)
{
	struct cb *c = user;

	(void)loop;
	(void)flags;
	c->res = res;
	c->calls++;
}

/* ------------------------------------------- queued vs running cancel */

struct qr {
	corio_loop *loop;
	struct hold h;
	int fd;
};

static void *fsync_fiber(void *arg)
{
	return (void *)(intptr_t)corio_fsync((int)(intptr_t)arg);
}

static void *queued_running_body(void *arg)
{
	struct qr *t = arg;
	struct cb a = {1, 0}, b = {1, 0};
	corio_req ia, ib;
	corio_fiber *f;

	/* A starts and is held; B waits behind it (one thread). */
	ia = corio_async_fsync(t->loop, t->fd, on_done, &a);
	assert_true(ia > 0);
	wait_started(&t->h);
	ib = corio_async_fsync(t->loop, t->fd, on_done, &b);
	assert_true(ib > 0);
	assert_int_equal(pool_threads(), 1);

	/* B has not started: taken back, -ECANCELED, from the loop. */
	assert_int_equal(corio_async_cancel(t->loop, ib), 0);
	assert_int_equal(b.calls, 0);
	t_turns(2);
	assert_int_equal(b.calls, 1);
	assert_int_equal(b.res, -ECANCELED);

	/* A runs: the cancellation cannot stop it; its result comes when it
	 * ends, and it is the real one. */
	assert_int_equal(corio_async_cancel(t->loop, ia), 0);
	t_turns(3);
	assert_int_equal(a.calls, 0);
	let_go(&t->h);
	while (!a.calls)
		assert_int_equal(corio_yield(), 0);
	assert_int_equal(a.res, 0);

	/* The same from a fiber: corio_cancel leaves it suspended in the
	 * call until the job is over, and the call returns the real result. */
	f = t_spawn(fsync_fiber, (void *)(intptr_t)t->fd);
	wait_started(&t->h);
	assert_int_equal(corio_cancel(f), 0);
	t_turns(3);
	let_go(&t->h);
	assert_int_equal((intptr_t)t_join(f), 0);

	/* And a queued one from a fiber: -ECANCELED at once. */
	ia = corio_async_fsync(t->loop, t->fd, on_done, &a);
	wait_started(&t->h);
	f = t_spawn(fsync_fiber, (void *)(intptr_t)t->fd);
	t_turns(2);
	assert_int_equal(corio_cancel(f), 0);
	assert_int_equal((intptr_t)t_join(f), -ECANCELED);
	let_go(&t->h);
	a.calls = 0;
	while (!a.calls)
		assert_int_equal(corio_yield(), 0);
	assert_int_equal(a.res, 0);
	return NULL;
}

static void queued_vs_running(void **state)
{
	struct qr t;

	(void)state;
	setenv("CORIO_EPOLL_THREADS", "1", 1);
	t.loop = ep_loop();
	unsetenv("CORIO_EPOLL_THREADS");
	hold_init(t.loop, &t.h, true);
	t.fd = tmpfile_fd();
	run_fiber(t.loop, queued_running_body, &t);
	hold_fini(t.loop, &t.h);
	close(t.fd);
	corio_loop_destroy(t.loop);
}

/* ------------------------------------------ deadline on a running job */

static char fifo_path[64];

struct dl {
	corio_loop *loop;
	struct hold h;
};

/*
 * The deadline is set only once the job is known to run (held by the hook
 * on its thread), so it cannot expire before the job starts, whatever the
 * machine's load. The open of a FIFO then blocks on the pool thread until
 * the test opens the other end.
 */
static void *deadline_body(void *arg)
{
	struct dl *t = arg;
	struct cb c = {1, 0};
	int64_t deadline;
	corio_req id;
	int w;

	id = corio_async_openat(t->loop, AT_FDCWD, fifo_path, O_RDONLY | O_CLOEXEC, 0, on_done,
				&c);
	assert_true(id > 0);
	wait_started(&t->h);
	deadline = corio_now() + CORIO_MSEC;
	assert_int_equal(corio_async_deadline(t->loop, id, deadline), 0);
	/* Timers fire in deadline order: when this sleep ends, the open's
	 * deadline has passed and its cancellation was asked for. */
	assert_int_equal(corio_sleep_until(deadline + CORIO_MSEC), 0);
	t_turns(2);
	assert_int_equal(c.calls, 0); /* it cannot be interrupted */
	let_go(&t->h);
	/* Read-write: a FIFO open that never waits, and lets the job's end. */
	w = open(fifo_path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	assert_true(w >= 0);
	while (!c.calls)
		assert_int_equal(corio_yield(), 0);
	assert_true(c.res >= 0); /* the real result, not -ETIMEDOUT */
	let_go(&t->h); /* the close is a pool job too */
	assert_int_equal(corio_close(c.res), 0);
	close(w);
	return NULL;
}

static void running_deadline(void **state)
{
	struct dl t;

	(void)state;
	t.loop = ep_loop();
	snprintf(fifo_path, sizeof(fifo_path), "/tmp/corio-fifo-%d", (int)getpid());
	unlink(fifo_path);
	assert_int_equal(mkfifo(fifo_path, 0600), 0);
	hold_init(t.loop, &t.h, true);
	run_fiber(t.loop, deadline_body, &t);
	hold_fini(t.loop, &t.h);
	corio_loop_destroy(t.loop);
	unlink(fifo_path);
}

/* ---------------------------------------------------------- the limit */

static void *limit_body(void *arg)
{
	struct qr *t = arg;
	struct cb c[5];

	assert_int_equal(pool_threads(), 0); /* lazily started */
	for (int i = 0; i < 5; i++) {
		c[i] = (struct cb){1, 0};
		assert_true(corio_async_fsync(t->loop, t->fd, on_done, &c[i]) > 0);
	}
	/* Two start, the others queue behind them: two threads, not more. */
	wait_started(&t->h);
	wait_started(&t->h);
	assert_int_equal(pool_threads(), 2);
	for (int i = 0; i < 5; i++)
		let_go(&t->h);
	for (int i = 0; i < 5; i++) {
		while (!c[i].calls)
			assert_int_equal(corio_yield(), 0);
		assert_int_equal(c[i].res, 0);
	}
	assert_int_equal(pool_threads(), 2);
	return NULL;
}

static void size_limit(void **state)
{
	struct qr t;

	(void)state;
	setenv("CORIO_EPOLL_THREADS", "2", 1);
	t.loop = ep_loop();
	unsetenv("CORIO_EPOLL_THREADS");
	hold_init(t.loop, &t.h, true);
	t.fd = tmpfile_fd();
	run_fiber(t.loop, limit_body, &t);
	hold_fini(t.loop, &t.h);
	close(t.fd);
	corio_loop_destroy(t.loop);
	/* The threads end with the loop. */
	assert_int_equal(pool_threads(), 0);
}

static void bad_env(void **state)
{
	static const char *bad[] = {"0", "-1", "abc", "4x", "100000"};
	struct corio_loop_opts o = {.backend = CORIO_BACKEND_EPOLL};
	corio_loop *loop = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("CORIO_EPOLL_THREADS", bad[i], 1);
		assert_int_equal(corio_loop_create(&loop, &o), -EINVAL);
	}
	unsetenv("CORIO_EPOLL_THREADS");
	setenv("CORIO_EPOLL_VERIFY_MS", "soon", 1);
	assert_int_equal(corio_loop_create(&loop, &o), -EINVAL);
	unsetenv("CORIO_EPOLL_VERIFY_MS");
	assert_int_equal(corio_loop_create(&loop, &o), 0);
	corio_loop_destroy(loop);
}

/* ------------------------------------------ many more jobs than threads */

#define JOBS 300
#define BLK 512

static int many_fd;

static void *file_job(void *arg)
{
	int i = (int)(intptr_t)arg;
	char out[BLK], in[BLK];

	memset(out, 'a' + i % 26, sizeof(out));
	assert_int_equal(corio_write(many_fd, out, BLK, (int64_t)i * BLK), BLK);
	assert_int_equal(corio_read(many_fd, in, BLK, (int64_t)i * BLK), BLK);
	assert_memory_equal(in, out, BLK);
	return NULL;
}

static void *many_body(void *arg)
{
	corio_fiber *f[JOBS];

	(void)arg;
	for (int i = 0; i < JOBS; i++)
		f[i] = t_spawn(file_job, (void *)(intptr_t)i);
	for (int i = 0; i < JOBS; i++)
		t_join(f[i]);
	assert_true(pool_threads() <= 3);
	return NULL;
}

static void many_jobs(void **state)
{
	corio_loop *loop;

	(void)state;
	setenv("CORIO_EPOLL_THREADS", "3", 1);
	loop = ep_loop();
	unsetenv("CORIO_EPOLL_THREADS");
	many_fd = tmpfile_fd();
	run_fiber(loop, many_body, NULL);
	close(many_fd);
	corio_loop_destroy(loop);
}

/* ------------------------------------------------------ cross-thread wake */

static void *waker(void *arg)
{
	/* Many wakes from another thread, coalesced into few eventfd writes;
	 * at least one reaches the loop, asleep or about to be. */
	for (int i = 0; i < 1000; i++)
		corio__epoll_wake(arg);
	return NULL;
}

static void wake_from_thread(void **state)
{
	corio_loop *loop;
	struct cb c = {1, 0}, timer = {1, 0};
	corio_req tid;
	pthread_t t;
	int sv[2];
	char buf;

	(void)state;
	/* No re-check timer: only the wake can end the wait below. */
	setenv("CORIO_EPOLL_VERIFY_MS", "0", 1);
	loop = ep_loop();
	unsetenv("CORIO_EPOLL_VERIFY_MS");
	t_socketpair(sv);
	/* Something in flight, nothing to run: run_once(wait) would sleep
	 * until the recv completes, which nothing makes happen. */
	assert_true(corio_async_recv(loop, sv[0], &buf, 1, 0, on_done, &c) > 0);
	/* Should the wake be lost: fail in 10 s instead of hanging. */
	tid = corio_async_timer(loop, corio_now() + 10 * CORIO_SEC, on_done, &timer);
	assert_true(tid > 0);
	assert_int_equal(corio_loop_run_once(loop, false), 1);
	for (int round = 0; round < 3; round++) {
		assert_int_equal(pthread_create(&t, NULL, waker, loop), 0);
		assert_int_equal(corio_loop_run_once(loop, true), 1);
		assert_int_equal(timer.calls, 0);
		assert_int_equal(pthread_join(t, NULL), 0);
		/* Drain a wake that came after the loop woke (it may). */
		assert_int_equal(corio_loop_run_once(loop, false), 1);
	}
	assert_int_equal(c.calls, 0);
	assert_int_equal(corio_async_cancel(loop, tid), 0);
	assert_int_equal(write(sv[1], "w", 1), 1);
	assert_int_equal(corio_loop_run(loop), 0);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.res, 1);
	close(sv[0]);
	close(sv[1]);
	corio_loop_destroy(loop);
}

/* A waker that never stops, against a loop that sleeps again at once:
 * any wake lost to the coalescing (the flag left set with the eventfd
 * empty) leaves the loop asleep until the safety timer, and fails. */
static atomic_bool storm_stop;

static void *storm_waker(void *arg)
{
	while (!atomic_load(&storm_stop))
		corio__epoll_wake(arg);
	return NULL;
}

static void wake_storm(void **state)
{
	corio_loop *loop;
	struct cb c = {1, 0}, timer = {1, 0};
	corio_req tid;
	pthread_t t;
	int sv[2];
	char buf;

	(void)state;
	setenv("CORIO_EPOLL_VERIFY_MS", "0", 1);
	loop = ep_loop();
	unsetenv("CORIO_EPOLL_VERIFY_MS");
	t_socketpair(sv);
	assert_true(corio_async_recv(loop, sv[0], &buf, 1, 0, on_done, &c) > 0);
	tid = corio_async_timer(loop, corio_now() + 10 * CORIO_SEC, on_done, &timer);
	atomic_store(&storm_stop, false);
	assert_int_equal(pthread_create(&t, NULL, storm_waker, loop), 0);
	/* Fewer rounds under valgrind, which runs one thread at a time and
	 * slowly: the safety timer must stay out of reach of a healthy run. */
	for (int i = 0; i < (t_under_valgrind() ? 500 : 20000) && !timer.calls; i++)
		assert_int_equal(corio_loop_run_once(loop, true), 1);
	atomic_store(&storm_stop, true);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(timer.calls, 0);
	assert_int_equal(corio_async_cancel(loop, tid), 0);
	assert_int_equal(write(sv[1], "s", 1), 1);
	assert_int_equal(corio_loop_run(loop), 0);
	assert_int_equal(c.res, 1);
	close(sv[0]);
	close(sv[1]);
	corio_loop_destroy(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(queued_vs_running),
		cmocka_unit_test(running_deadline),
		cmocka_unit_test(size_limit),
		cmocka_unit_test(bad_env),
		cmocka_unit_test(many_jobs),
		cmocka_unit_test(wake_from_thread),
		cmocka_unit_test(wake_storm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
