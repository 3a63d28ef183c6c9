/*
 * corio: signals. Waiting for them in a fiber, what the threads corio starts
 * block, and SIGPIPE.
 *
 * Waiting: corio_signal_wait() takes the next pending signal of a set,
 * suspending only the calling fiber (a signalfd read through the loop, on
 * both backends). A server waits in a fiber of its own for SIGINT and
 * SIGTERM (stop) or SIGHUP (reload); it is libuv's uv_signal_t as a blocking
 * call.
 *
 * The process signal mask: the signals waited for must be blocked in every
 * thread of the process. A signal is delivered the ordinary way (for SIGINT
 * and SIGTERM: the process ends) to any thread that does not block it, and
 * only a blocked signal stays pending for the wait to take. Block them at
 * the start of main with sigprocmask() or pthread_sigmask(), before creating
 * any thread: a new thread inherits its creator's mask. While they are
 * blocked their disposition does not matter. corio_signal_wait() checks the
 * calling thread only (-EINVAL if it does not block them all).
 *
 * Threads that corio starts (a pool's loops, the epoll backend's file
 * threads) block every signal themselves, whatever their creator's mask,
 * except those a thread raises on itself: SIGSEGV, SIGBUS, SIGFPE, SIGILL,
 * SIGTRAP, SIGSYS (faults), SIGPIPE (a write to a closed pipe) and SIGPROF
 * (profilers). So in a program whose loops all run in a pool, the signals
 * need blocking only in the threads of its own, main included.
 *
 * One signal, one waiter: a signal is taken by the first wait that reads it
 * (two fibers waiting for SIGHUP share the SIGHUPs; send one to each fiber
 * that must know, e.g. with a corio_event or corio_xevent). A signal sent
 * while nobody waits stays pending and the next wait takes it at once; a
 * standard (not real-time) signal sent again while pending counts once.
 * Process-directed signals (kill(2), Ctrl-C in a terminal, systemd) reach a
 * waiter on any thread; a thread-directed one (raise(3), pthread_kill(3))
 * only a waiter on that thread.
 *
 * SIGPIPE: a write to a pipe or socket whose reading end is closed raises
 * SIGPIPE, whose default action ends the process. corio's socket calls never
 * raise it (MSG_NOSIGNAL), but a write to a pipe (standard output into
 * `head`) cannot avoid it. So when the process creates its first loop
 * (corio_loop_create, hence corio_main and pools), corio installs a handler
 * that does nothing for SIGPIPE if its disposition is still the default: the
 * write fails with -EPIPE, an error the program handles like any other. A
 * handler rather than SIG_IGN, so that programs this one executes start with
 * the default again. A program that set SIGPIPE itself before is left alone;
 * one that wants the default action (die on a closed pipe, as `yes` does)
 * sets it back with signal(SIGPIPE, SIG_DFL) after its first loop exists,
 * e.g. in its first fiber: corio never touches it again.
 */
#ifndef CORIO_SIGNAL_H
#define CORIO_SIGNAL_H

#include <signal.h>

#include "corio/types.h"

#ifdef __cplusplus
extern "C" {
#endif

struct signalfd_siginfo; /* <sys/signalfd.h> */

/*
 * From a fiber: wait until a signal of @set is pending and take it. Returns
 * its number (> 0) and, if @info is not NULL, fills it (sender's pid and uid,
 * si_code, the value of sigqueue(3)...). A signal already pending is taken
 * at once, even with a deadline in the past. Errors: -EINVAL (@set NULL or
 * empty, or holding a signal the calling thread does not block: SIGKILL and
 * SIGSTOP cannot be blocked), -EPERM (not in a fiber), -ETIMEDOUT at
 * @deadline, -ECANCELED, -EMFILE and the like (it opens a signalfd for the
 * time of the call).
 */
CORIO_API int corio_signal_wait(const sigset_t *set, struct signalfd_siginfo *info);
CORIO_API int corio_signal_wait_until(const sigset_t *set, struct signalfd_siginfo *info,
				      int64_t deadline);

#ifdef __cplusplus
}
#endif
#endif
