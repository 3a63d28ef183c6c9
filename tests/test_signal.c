/*
 * Signals: corio_signal_wait (a signal raised on the thread, one sent to the
 * process while a fiber waits, one queued with a value, deadlines,
 * cancellation, bad sets), the mask of the threads corio starts (a pool's
 * loops, the epoll backend's file threads), and SIGPIPE as -EPIPE (and left
 * alone when the program chose).
 *
 * SIGUSR1, SIGUSR2 and SIGHUP are blocked in main before anything else, so
 * every thread of this process blocks them. No sleeps: a signal sent before
 * the wait stays pending, and one sent while a fiber waits is sent by
 * another fiber once the waiter has parked.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

static sigset_t usr1, usr2_hup, blocked;

/* Take @sig if it is pending, so that a failed test leaves nothing behind. */
static void drain(int sig)
{
	struct timespec zero = {0, 0};
	sigset_t s;

	sigemptyset(&s);
	sigaddset(&s, sig);
	while (sigtimedwait(&s, NULL, &zero) == sig)
		;
}

/* ------------------------------------------------------------- SIGPIPE */

static int handled;

static void own_handler(int sig)
{
	(void)sig;
	handled++;
}

/* Runs first, in a child, before this process has any loop: a program that
 * set SIGPIPE itself keeps its handler. */
static void sigpipe_program_chose(void **state)
{
	pid_t pid;
	int st;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sigaction sa;
		corio_loop *loop;
		int p[2];

		signal(SIGPIPE, own_handler);
		if (corio_loop_create(&loop, NULL))
			_exit(77);
		sigaction(SIGPIPE, NULL, &sa);
		if (sa.sa_handler != own_handler)
			_exit(2);
		if (pipe(p))
			_exit(3);
		close(p[0]);
		if (write(p[1], "x", 1) != -1 || errno != EPIPE || handled != 1)
			_exit(4);
		corio_loop_destroy(loop);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == 77)
		t_skip("the child could not create a loop (backend %s)", t_backend());
	assert_int_equal(WEXITSTATUS(st), 0);
}

struct epipe {
	int res;
	bool called;
};

static void on_write(corio_loop *loop, int res, unsigned flags, void *user)
{
	struct epipe *e = user;

	(void)loop;
	(void)flags;
	e->res = res;
	e->called = true;
}

static void *write_closed_pipe(void *arg)
{
	int p[2];

	(void)arg;
	t_pipe(p);
	close(p[0]);
	assert_int_equal(corio_write(p[1], "x", 1, -1), -EPIPE);
	close(p[1]);
	return NULL;
}

/* With the default disposition, the first loop makes SIGPIPE harmless: a
 * write to a closed pipe (fiber call or callback) fails with -EPIPE. */
static void sigpipe_becomes_epipe(void **state)
{
	struct sigaction sa;
	struct epipe e = {0};
	corio_loop *loop;
	int p[2];

	(void)state;
	signal(SIGPIPE, SIG_DFL);
	loop = t_loop();
	sigaction(SIGPIPE, NULL, &sa);
	assert_true(sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN);
	t_pipe(p);
	close(p[0]);
	assert_true(corio_async_write(loop, p[1], "x", 1, -1, on_write, &e) > 0);
	assert_int_equal(corio_loop_run(loop), 0);
	assert_true(e.called);
	assert_int_equal(e.res, -EPIPE);
	close(p[1]);
	corio_loop_destroy(loop);
	t_run(write_closed_pipe, NULL);
}

/* A program that wants the default back sets it after its first loop: corio
 * does not touch it again (the child dies of SIGPIPE). */
static void sigpipe_default_restored(void **state)
{
	pid_t pid;
	int st;

	(void)state;
	corio_loop_destroy(t_loop()); /* the first loop exists */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sigaction sa;
		int p[2];

		signal(SIGPIPE, SIG_DFL);
		corio_loop_destroy(t_loop()); /* a later loop leaves it alone */
		sigaction(SIGPIPE, NULL, &sa);
		if (sa.sa_handler != SIG_DFL)
			_exit(2);
		t_pipe(p);
		close(p[0]);
		if (write(p[1], "x", 1)) /* not past this */
			_exit(3);
		_exit(4);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGPIPE);
}

/* --------------------------------------------------- waiting, one thread */

static void *raised_body(void *arg)
{
	struct signalfd_siginfo si;

	(void)arg;
	/* Sent before the wait: pending, taken at once, even past a deadline. */
	assert_int_equal(raise(SIGUSR1), 0);
	memset(&si, 0, sizeof(si));
	assert_int_equal(corio_signal_wait_until(&usr1, &si, 1), SIGUSR1);
	assert_int_equal(si.ssi_signo, SIGUSR1);
	assert_int_equal(si.ssi_code, SI_TKILL);
	assert_int_equal(si.ssi_pid, getpid());
	/* Nothing pending now: the deadline ends the wait. */
	assert_int_equal(corio_signal_wait_until(&usr1, NULL, corio_now() + CORIO_MSEC),
			 -ETIMEDOUT);
	assert_int_equal(corio_signal_wait_until(&usr1, NULL, 1), -ETIMEDOUT);
	return NULL;
}

static void wait_raised(void **state)
{
	(void)state;
	t_run(raised_body, NULL);
}

struct waiter {
	const sigset_t *set;
	int res;
	struct signalfd_siginfo si;
};

static void *waiter_fiber(void *arg)
{
	struct waiter *w = arg;

	w->res = corio_signal_wait(w->set, &w->si);
	return NULL;
}

static void *sent_body(void *arg)
{
	struct waiter w = {.set = &usr2_hup};
	corio_fiber *f;

	(void)arg;
	/* kill(2): process-directed, while the fiber waits in the loop. */
	f = t_spawn(waiter_fiber, &w);
	t_turns(3);
	assert_int_equal(kill(getpid(), SIGHUP), 0);
	t_join(f);
	assert_int_equal(w.res, SIGHUP);
	assert_int_equal(w.si.ssi_pid, getpid());
	assert_int_equal(w.si.ssi_uid, getuid());
	/* sigqueue(3): the value comes along. */
	memset(&w, 0, sizeof(w));
	w.set = &usr2_hup;
	f = t_spawn(waiter_fiber, &w);
	t_turns(3);
	assert_int_equal(sigqueue(getpid(), SIGUSR2, (union sigval){.sival_int = 42}), 0);
	t_join(f);
	assert_int_equal(w.res, SIGUSR2);
	assert_int_equal(w.si.ssi_code, SI_QUEUE);
	assert_int_equal(w.si.ssi_int, 42);
	return NULL;
}

static void wait_sent_while_waiting(void **state)
{
	(void)state;
	t_run(sent_body, NULL);
}

static void *cancel_body(void *arg)
{
	struct waiter w = {.set = &usr1};
	corio_fiber *f;

	(void)arg;
	f = t_spawn(waiter_fiber, &w);
	t_turns(3);
	assert_int_equal(corio_cancel(f), 0);
	t_join(f);
	assert_int_equal(w.res, -ECANCELED);
	/* A cancellation pending before the wait wins over a pending signal;
	 * the signal stays for the next wait. */
	assert_int_equal(raise(SIGUSR1), 0);
	assert_int_equal(corio_cancel(corio_self()), 0);
	assert_int_equal(corio_signal_wait(&usr1, NULL), -ECANCELED);
	assert_int_equal(corio_signal_wait(&usr1, NULL), SIGUSR1);
	return NULL;
}

static void wait_cancelled(void **state)
{
	(void)state;
	t_run(cancel_body, NULL);
}

static void *errors_body(void *arg)
{
	sigset_t s;

	(void)arg;
	assert_int_equal(corio_signal_wait(NULL, NULL), -EINVAL);
	sigemptyset(&s);
	assert_int_equal(corio_signal_wait(&s, NULL), -EINVAL);
	sigaddset(&s, SIGWINCH); /* not blocked in this thread */
	assert_int_equal(corio_signal_wait_until(&s, NULL, 1), -EINVAL);
	sigemptyset(&s);
	sigaddset(&s, SIGKILL);
	assert_int_equal(corio_signal_wait_until(&s, NULL, 1), -EINVAL);
	/* One unblocked signal spoils the set. */
	s = usr1;
	sigaddset(&s, SIGWINCH);
	assert_int_equal(corio_signal_wait_until(&s, NULL, 1), -EINVAL);
	return NULL;
}

static void wait_errors(void **state)
{
	corio_loop *loop;

	(void)state;
	t_run(errors_body, NULL);
	loop = t_loop();
	assert_int_equal(corio_signal_wait(&usr1, NULL), -EPERM); /* not in a fiber */
	corio_loop_destroy(loop);
	assert_int_equal(corio_signal_wait(&usr1, NULL), -EPERM); /* no loop at all */
}

/* ---------------------------------------------- the threads corio starts */

/* The signals the calling thread blocks must be what corio promises. */
static bool mask_ok(const sigset_t *m)
{
	static const int blocked_sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1,
					   SIGUSR2, SIGCHLD, SIGALRM, SIGWINCH};
	static const int open_sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS,
					SIGPIPE, SIGPROF};

	for (size_t i = 0; i < sizeof(blocked_sigs) / sizeof(blocked_sigs[0]); i++)
		if (sigismember(m, blocked_sigs[i]) != 1)
			return false;
	for (size_t i = 0; i < sizeof(open_sigs) / sizeof(open_sigs[0]); i++)
		if (sigismember(m, open_sigs[i]) != 0)
			return false;
	return true;
}

static void *own_mask_ok(void *arg)
{
	sigset_t m;

	(void)arg;
	pthread_sigmask(SIG_BLOCK, NULL, &m);
	return (void *)(intptr_t)mask_ok(&m);
}

static sem_t got_sem;
static int got_sig;

static void *pool_waiter(void *arg)
{
	(void)arg;
	got_sig = corio_signal_wait(&usr1, NULL);
	sem_post(&got_sem);
	return NULL;
}

static void start_waiter(corio_loop *loop, unsigned index, void *arg)
{
	(void)loop;
	(void)arg;
	if (index == 1)
		assert_int_equal(corio_go(pool_waiter, NULL), 0);
}

/* A pool leaves its creator's mask as it was, and a signal sent to the
 * process reaches a fiber waiting on one of its loops. */
static void pool_waiter_gets_signal(void **state)
{
	struct corio_pool_opts o = {.nloops = 2, .on_start = start_waiter};
	sigset_t before, after;
	corio_pool *pool;

	(void)state;
	assert_int_equal(sem_init(&got_sem, 0, 0), 0);
	pthread_sigmask(SIG_BLOCK, NULL, &before);
	pool = t_pool(&o);
	pthread_sigmask(SIG_BLOCK, NULL, &after);
	for (int sig = 1; sig < NSIG; sig++)
		assert_int_equal(sigismember(&before, sig), sigismember(&after, sig));
	assert_int_equal(kill(getpid(), SIGUSR1), 0);
	while (sem_wait(&got_sem))
		;
	assert_int_equal(got_sig, SIGUSR1);
	corio_pool_destroy(pool);
	sem_destroy(&got_sem);
}

/* Started from a thread that blocks only SIGUSR1/2 and SIGHUP, the pool's
 * threads block the others too (each loop reports its own mask). */
struct mask_probe {
	sem_t done;
	bool ok[2];
};

static void probe(void *arg)
{
	struct mask_probe *p = arg;

	p->ok[corio_pool_index()] = own_mask_ok(NULL) != NULL;
	sem_post(&p->done);
}

static void pool_threads_block_signals(void **state)
{
	struct corio_pool_opts o = {.nloops = 2};
	struct mask_probe p = {.ok = {false, false}};
	corio_pool *pool;

	(void)state;
	assert_int_equal(sem_init(&p.done, 0, 0), 0);
	pool = t_pool(&o);
	for (unsigned k = 0; k < 2; k++)
		assert_int_equal(corio_post(pool, k, probe, &p, 0), 0);
	for (unsigned k = 0; k < 2; k++)
		while (sem_wait(&p.done))
			;
	corio_pool_destroy(pool);
	sem_destroy(&p.done);
	assert_true(p.ok[0]);
	assert_true(p.ok[1]);
}

/* The epoll backend's file threads: their mask read from /proc. A thread
 * being created has every signal blocked for a moment (glibc sets the mask
 * it inherits once it runs): *starting counts those, to look again. */
static bool file_threads_ok(int *count, int *starting)
{
	char path[320], line[256];
	struct dirent *d;
	DIR *dir = opendir("/proc/self/task");
	bool ok = true;

	assert_non_null(dir);
	*count = 0;
	*starting = 0;
	while ((d = readdir(dir))) {
		FILE *f;
		bool ours = false;

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", d->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			unsigned long long blk;
			sigset_t m;

			if (!strncmp(line, "Name:", 5))
				ours = strstr(line, "corio-pool") != NULL;
			if (ours && sscanf(line, "SigBlk: %llx", &blk) == 1) {
				sigemptyset(&m);
				for (int s = 1; s <= 64; s++)
					if (blk & (1ull << (s - 1)))
						sigaddset(&m, s);
				if (sigismember(&m, SIGSEGV) == 1)
					(*starting)++;
				else
					ok = ok && mask_ok(&m);
				(*count)++;
			}
		}
		fclose(f);
	}
	closedir(dir);
	return ok;
}

static void *file_op_body(void *arg)
{
	int count, starting, fd;

	(void)arg;
	fd = corio_openat(AT_FDCWD, "/dev/null", O_RDONLY | O_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(corio_close(fd), 0);
	for (int tries = 0;; tries++) {
		assert_true(file_threads_ok(&count, &starting));
		if (!starting)
			break;
		assert_true(tries < 100000); /* a thread stuck with SIGSEGV blocked */
		sched_yield();
	}
	if (!t_is_uring(corio_loop_current()))
		assert_true(count >= 1); /* the open ran on one */
	return NULL;
}

static void file_threads_block_signals(void **state)
{
	(void)state;
	t_run(file_op_body, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(sigpipe_program_chose), /* first: before any loop */
		cmocka_unit_test(sigpipe_becomes_epipe),
		cmocka_unit_test(sigpipe_default_restored),
		cmocka_unit_test(wait_raised),
		cmocka_unit_test(wait_sent_while_waiting),
		cmocka_unit_test(wait_cancelled),
		cmocka_unit_test(wait_errors),
		cmocka_unit_test(pool_waiter_gets_signal),
		cmocka_unit_test(pool_threads_block_signals),
		cmocka_unit_test(file_threads_block_signals),
	};
	int res;

	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigemptyset(&usr2_hup);
	sigaddset(&usr2_hup, SIGUSR2);
	sigaddset(&usr2_hup, SIGHUP);
	blocked = usr2_hup;
	sigaddset(&blocked, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &blocked, NULL);
	res = cmocka_run_group_tests(tests, NULL, NULL);
	drain(SIGUSR1);
	drain(SIGUSR2);
	drain(SIGHUP);
	return res;
}
