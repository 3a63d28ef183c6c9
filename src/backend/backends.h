/*
 * Private to src/backend/ (and the tests): the backends' own names. Their
 * tables, which only backend.c names, and their test seams.
 */
#ifndef CORIO_BACKENDS_H
#define CORIO_BACKENDS_H

#include "backend.h"

extern const struct corio__backend corio__backend_uring;
extern const struct corio__backend corio__backend_epoll;

/* Test seam (io_uring): the next N requests for an SQE fail as if the SQ
 * were full and the kernel pushed back, so that the backlog and queued
 * cancellation paths, which a 6.x kernel never forces, can be tested. */
extern unsigned corio__fault_sq_refusals;

/* epoll backend (@loop must be on it): wake the loop from any thread: its
 * current or next poll returns. Coalesced: one eventfd write until the
 * loop has seen it. The loop reads the eventfd, then clears the flag;
 * whatever a waker published before its call is visible to the loop after
 * its poll. */
void corio__epoll_wake(corio_loop *loop);
/* Tests: call fn(arg) on the pool thread as each job starts (NULL: stop).
 * -EINVAL if the loop is not on epoll. */
int corio__epoll_set_pool_hook(corio_loop *loop, void (*fn)(void *), void *arg);

#endif
