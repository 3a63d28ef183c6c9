/*
 * Signals (corio/signal.h): waiting for them from a fiber, the mask of the
 * threads corio starts, and SIGPIPE.
 *
 * A wait opens a signalfd for its set, reads it without blocking, and if
 * nothing is pending polls it through the loop (IORING_OP_POLL_ADD, or the
 * epoll backend's readiness) and reads again. The read is a plain read(2)
 * on the loop's own thread, never an io_uring read: signalfd dequeues from
 * the reading task's own pending set and the process's, so a read the
 * kernel hands to an io-wq worker would never see a signal directed at this
 * thread (raise(3)). The poll's check runs as this thread's task work
 * (single issuer), so it sees the same pending set the read does.
 *
 * The signalfd lives for one call: signals that arrive between calls stay
 * pending in the kernel (they are blocked) and the next call takes them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "internal.h"

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

/* ------------------------------------------- threads corio starts */

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

/* ----------------------------------------------------------- waiting */

/* 0 if the calling thread blocks every signal of @set and it has one. */
static int check_set(const sigset_t *set)
{
	sigset_t cur;
	bool any = false;

	if (!set || pthread_sigmask(SIG_BLOCK, NULL, &cur))
		return -EINVAL;
	for (int sig = 1; sig < NSIG; sig++) {
		if (sigismember(set, sig) != 1)
			continue;
		if (sigismember(&cur, sig) != 1)
			return -EINVAL;
		any = true;
	}
	return any ? 0 : -EINVAL;
}

int corio_signal_wait_until(const sigset_t *set, struct signalfd_siginfo *info,
			    int64_t deadline)
{
	struct signalfd_siginfo si;
	corio_fiber *f = corio__self();
	int fd, res;

	if (!f)
		return -EPERM;
	res = check_set(set);
	if (res)
		return res;
	res = corio__take_cancel(f);
	if (res)
		return res;
	fd = signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(fd, &si, sizeof(si));

		if (n == (ssize_t)sizeof(si)) {
			res = (int)si.ssi_signo;
			if (info)
				*info = si;
			break;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			res = -errno;
			break;
		}
		/* Nothing pending (or another reader took it): wait. */
		res = corio_poll_until(fd, POLLIN, deadline);
		if (res < 0)
			break;
	}
	close(fd);
	return res;
}

int corio_signal_wait(const sigset_t *set, struct signalfd_siginfo *info)
{
	return corio_signal_wait_until(set, info, 0);
}
