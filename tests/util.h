/*
 * Shared helpers for the tests.
 *
 * Tests are cmocka programs. An assertion that fails inside a fiber makes
 * cmocka longjmp out of the fiber: the test is reported failed, and the
 * process may not survive to run the next one; either way the run fails.
 */
#ifndef CORIO_TEST_UTIL_H
#define CORIO_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "corio.h"

/*
 * Skip the whole test program: say why on stderr and exit 77. Unless
 * $CORIO_TEST_NO_SKIP names the backend the test runs on (make test sets
 * it to "uring" where io_uring works): then the skip would hide a failure,
 * and the program fails (exit 1) instead.
 */
void t_skip(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* @err came from creating a loop, a pool or a server: if it says the
 * backend cannot run here (-ENOSYS, -EPERM), t_skip; else return. */
void t_skip_unavailable(int err);
/* Assert that @loop got the backend $CORIO_BACKEND asked for (when set). */
void t_check_backend(const corio_loop *loop);

/* Create a loop for the backend in $CORIO_BACKEND (t_skip when that
 * backend cannot run here, checked with t_check_backend). */
corio_loop *t_loop(void);
corio_loop *t_loop_opts(const struct corio_loop_opts *opts);
/* The same for a pool (each of its loops is checked). */
corio_pool *t_pool(const struct corio_pool_opts *opts);

/* Run fn(arg) as a fiber on a fresh loop until the loop is idle; returns
 * what fn returned. Asserts the loop ran cleanly. */
void *t_run(void *(*fn)(void *), void *arg);

/* A connected pair of nonblocking-agnostic stream sockets (AF_UNIX). */
void t_socketpair(int sv[2]);

/* A TCP listener on 127.0.0.1 (ephemeral port); *port gets the port. */
int t_listen_tcp(int *port);

/* A fresh temporary directory (removed with t_rmdir_r). */
char *t_tmpdir(void);
void t_rmdir_r(const char *path);

/* Whether the test runs under valgrind (which, for one, keeps descriptors
 * of its own and so emulates RLIMIT_NOFILE). */
bool t_under_valgrind(void);

/* The backend the tests were asked to use: "uring" or "epoll". */
const char *t_backend(void);
/* Whether the loop runs on io_uring (for the few checks that are
 * io_uring-specific: ring statistics, raw SQEs). */
bool t_is_uring(const corio_loop *loop);

/* t_run with loop options. */
void *t_run_opts(void *(*fn)(void *), void *arg, const struct corio_loop_opts *opts);

/* Spawn a joinable fiber on the calling thread's loop; asserts success. */
corio_fiber *t_spawn(void *(*fn)(void *), void *arg);
/* Join @f (from a fiber or, once it ended, from outside); returns its result. */
void *t_join(corio_fiber *f);

/* Let the loop turn @n times (from a fiber): other ready fibers run and the
 * kernel is polled in between. Used to let things settle, never to wait for
 * time to pass. */
void t_turns(int n);

/* A pipe (blocking ends, close-on-exec). */
void t_pipe(int p[2]);

/* A connected TCP pair over 127.0.0.1: *client and *server (accepted). */
void t_tcp_pair(int *client, int *server);

/* Deterministic test patterns. */
void t_fill(void *buf, size_t len, unsigned seed);
bool t_check(const void *buf, size_t len, unsigned seed);

/* Make a SIGPIPE end the process, as a program that opts out of corio's
 * handler does (corio/signal.h): after the process's first loop, so that
 * corio's one-time set-up has run and keeps its hands off. For tests that
 * check a call never raises SIGPIPE. */
void t_sigpipe_fatal(void);

/* Bytes available to read on @fd right now (FIONREAD). */
int t_readable(int fd);

/* Send what the process writes to stderr (fd 2) to a file until
 * t_capture_end, which restores stderr and returns what was written
 * (malloc'ed, NUL-terminated): for checking a server's log lines. */
void t_capture_start(void);
char *t_capture_end(void);

/* Occurrences of @needle in @hay. */
int t_count(const char *hay, const char *needle);

#endif
