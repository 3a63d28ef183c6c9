/*
 * Signals (corio/signal.h): waiting for them from a fiber. (The mask of the
 * threads corio starts, and SIGPIPE: base.c.)
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
#include <sys/signalfd.h>
#include <unistd.h>

#include "fiber/fiber.h"

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
	/* Through the loop, not close(2): the epoll backend registered the fd
	 * for the poll, and a record left behind would make the next signalfd,
	 * likely given the same number, look registered already (no event
	 * would ever come for it). */
	corio_close(fd);
	return res;
}

int corio_signal_wait(const sigset_t *set, struct signalfd_siginfo *info)
{
	return corio_signal_wait_until(set, info, 0);
}
