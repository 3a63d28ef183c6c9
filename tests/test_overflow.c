/*
 * A fiber that overflows its stack is reported: it runs in a child process
 * (this binary, re-executed with an argument, so that no test framework
 * handler is in the way), recurses into the guard region, and the child
 * must die by SIGSEGV after printing the fiber's name and "overflowed".
 *
 * The same holds under AddressSanitizer, and is checked just as strictly:
 * ASan installs its SIGSEGV handler before main, corio installs its own at
 * the first loop and keeps ASan's as the one to chain to, so corio sees
 * the fault first, reports it, restores the default action and the child
 * dies by SIGSEGV. A fault elsewhere (not in a guard) is passed on to the
 * previous handler: the default action in the plain build, the sanitizer's
 * report in the ASan and TSan builds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base.h"
#include "util.h"

#define NAME "deep-diver"
#define CHILD_NO_BACKEND 77 /* exit status: the backend is unavailable here */

static volatile unsigned long depth, limit = ~0UL;

static __attribute__((noinline)) unsigned long recurse(unsigned long n)
{
	volatile char pad[512];

	pad[0] = (char)n;
	pad[sizeof(pad) - 1] = (char)n;
	depth = n;
	if (n == limit)
		return 0;
	/* Not a tail call: the frame stays live across the call. */
	return recurse(n + 1) + pad[0] + pad[sizeof(pad) - 1];
}

static void *diver(void *arg)
{
	(void)arg;
	return (void *)recurse(0);
}

static void *wild_write(void *arg)
{
	(void)arg;
	*(volatile int *)(uintptr_t)(depth + 64) = 1; /* depth is 0: an unmapped page */
	return NULL;
}

static void *bystander(void *arg)
{
	(void)arg;
	for (;;)
		corio_sleep(CORIO_SEC);
	return NULL;
}

/* The child: a loop with a quiet fiber and one that overflows. */
static int child(const char *which)
{
	struct corio_fiber_opts o = {.name = NAME, .stack_size = 32768};
	corio_loop *loop;
	int err = corio_loop_create(&loop, NULL);

	if (err) {
		/* CHILD_NO_BACKEND only where the backend cannot run here (what
		 * t_skip_unavailable skips on); any other error fails. */
		fprintf(stderr, "child: no loop (%s)\n", strerror(-err));
		return err == -ENOSYS || err == -EPERM ? CHILD_NO_BACKEND : 4;
	}
	corio_spawn(NULL, loop, bystander, NULL, NULL);
	if (!strcmp(which, "second")) {
		/* Not the first fiber, not the first stack of the pool. */
		corio_spawn(NULL, loop, bystander, NULL, NULL);
		o.name = NAME "-2";
	}
	corio_spawn(NULL, loop, !strcmp(which, "wild") ? wild_write : diver, NULL, &o);
	corio_loop_run(loop);
	fprintf(stderr, "child: survived the overflow\n");
	return 3;
}

static void *child_thread(void *arg)
{
	return (void *)(intptr_t)child(arg);
}

/* Run this binary as the child; collect stderr and the wait status. The
 * child's backend unavailable: skip (t_skip). */
static int run_child(const char *which, char *err, size_t errsz)
{
	int p[2], status = 0;
	size_t n = 0;
	ssize_t r;
	pid_t pid;

	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], STDERR_FILENO);
		execl("/proc/self/exe", "test_overflow", "--child", which, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	while (n < errsz - 1 && (r = read(p[0], err + n, errsz - 1 - n)) > 0)
		n += (size_t)r;
	err[n] = 0;
	close(p[0]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_NO_BACKEND)
		t_skip("the child has no loop: %s", err);
	return status;
}

static void check_report(const char *which, const char *name)
{
	static char err[65536];
	int st = run_child(which, err, sizeof(err));

	if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV))
		fprintf(stderr, "child status %#x, stderr:\n%s\n", st, err);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSEGV);
	assert_non_null(strstr(err, "overflowed"));
	{
		char quoted[64];

		snprintf(quoted, sizeof(quoted), "\"%s\"", name);
		assert_non_null(strstr(err, quoted));
	}
	assert_non_null(strstr(err, "32768-byte stack"));
	assert_null(strstr(err, "survived"));
}

static void overflow_reported(void **state)
{
	(void)state;
	check_report("first", NAME);
}

static void overflow_reported_other_stack(void **state)
{
	(void)state;
	check_report("second", NAME "-2");
}

static void overflow_reported_on_thread(void **state)
{
	(void)state;
	check_report("thread", NAME);
}

/* Not an overflow: not reported as one, handled as before corio. */
static void other_fault_passed_on(void **state)
{
	static char err[65536];
	int st;

	(void)state;
	st = run_child("wild", err, sizeof(err));
	assert_null(strstr(err, "overflowed"));
	assert_null(strstr(err, "survived"));
#if defined(CORIO_ASAN) || defined(CORIO_TSAN)
	/* The sanitizer's handler got it and reported it ("AddressSanitizer:
	 * SEGV", "ThreadSanitizer: SEGV"). */
	assert_non_null(strstr(err, "Sanitizer: SEGV"));
	assert_false(WIFEXITED(st) && WEXITSTATUS(st) == 0);
#else
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSEGV);
#endif
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(overflow_reported),
		cmocka_unit_test(overflow_reported_other_stack),
		cmocka_unit_test(overflow_reported_on_thread),
		cmocka_unit_test(other_fault_passed_on),
	};

	if (t_under_valgrind()) {
		/* The children are re-executed from /proc/self/exe, which is
		 * valgrind itself; and valgrind reports the overflow on its own. */
		fprintf(stderr, "under valgrind: skipping\n");
		return 77;
	}
	if (argc == 3 && !strcmp(argv[1], "--child")) {
		if (!strcmp(argv[2], "thread")) {
			/* A loop on a thread other than main (its own signal
			 * stack, its own loop). */
			pthread_t t;
			void *res;

			pthread_create(&t, NULL, child_thread, "first");
			pthread_join(t, &res);
			return (int)(intptr_t)res;
		}
		return child(argv[2]);
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
