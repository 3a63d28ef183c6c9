/*
 * What every layer uses and that knows nothing of loops: the clock, the
 * log, the version, the calling thread's loop (set by corio_loop_create,
 * read everywhere), and the process's signals as corio's threads see them
 * (the mask of the threads it starts, SIGPIPE; corio/signal.h).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base.h"

__thread corio_loop *corio__tls_loop __attribute__((tls_model("initial-exec")));

int64_t corio_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * CORIO_SEC + ts.tv_nsec;
}

const char *corio_version(void)
{
	return "corio 0.1.0";
}

void corio__log(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	fprintf(stderr, "corio: %s\n", buf);
}

/* ------------------------------------------------------------- SIGPIPE */

static pthread_once_t sigpipe_once = PTHREAD_ONCE_INIT;

static void on_sigpipe(int sig)
{
	(void)sig; /* the write that raised it fails with EPIPE */
}

static void sigpipe_setup(void)
{
	struct sigaction old, sa;

	if (sigaction(SIGPIPE, NULL, &old) || (old.sa_flags & SA_SIGINFO) ||
	    old.sa_handler != SIG_DFL)
		return; /* the program chose */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigpipe;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGPIPE, &sa, NULL);
}

void corio__sigpipe_setup(void)
{
	pthread_once(&sigpipe_once, sigpipe_setup);
}

/* ------------------------------------------------ threads corio starts */

int corio__block_signals(sigset_t *old)
{
	static const int raised_by_thread[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL,
					       SIGTRAP, SIGSYS, SIGPIPE, SIGPROF};
	sigset_t set;

	sigfillset(&set);
	/* A fault blocked is not deferred: the kernel resets the handler and
	 * kills (so no overflow report); the others are the thread's own. */
	for (size_t i = 0; i < sizeof(raised_by_thread) / sizeof(raised_by_thread[0]); i++)
		sigdelset(&set, raised_by_thread[i]);
	return -pthread_sigmask(SIG_BLOCK, &set, old);
}
