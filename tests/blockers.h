/*
 * Ways for a fiber to block, shared by test_deadline.c and test_cancel.c:
 * one per kind of wait (I/O of several kinds, sleep, mutex, condition,
 * event, channel send and receive, wait group, join, an accept loop). Each blocker takes a
 * deadline (0: none), blocks on the fixture and returns the call's result;
 * each check verifies, after the blocker returned, that nothing was
 * consumed behind its back (the data written afterwards is all there, the
 * mutex is held again by a cond waiter, ...).
 */
#ifndef CORIO_TEST_BLOCKERS_H
#define CORIO_TEST_BLOCKERS_H

#include "util.h"

struct fixture {
	int pipe[2];	  /* empty */
	int full_pipe[2]; /* write end full */
	int sp[2];	  /* stream socket pair, empty */
	int full_sp[2];	  /* full_sp[0]'s send buffer full */
	int lfd;	  /* TCP listener, nobody connecting */
	int lport;
	size_t full_pipe_bytes, full_sp_bytes;
	corio_mutex mu; /* held by the controlling fiber */
	corio_mutex cvmu;
	corio_cond cv;
	corio_event ev;	     /* never set (except to end target) */
	corio_chan ch0;	     /* rendezvous, no peer */
	corio_chan ch_full;  /* capacity 1, full */
	corio_waitgroup wg;  /* count 1 */
	corio_fiber *target; /* parked on ev_target, for join */
	corio_event ev_target;
	int client; /* connected by satisfy_accept */
};

#define MSG "0123456789abcdef"
#define MSGLEN 16

extern struct fixture fx;

struct blocker {
	const char *name;
	bool io; /* an operation in the kernel (or the epoll backend) */
	int (*block)(int64_t deadline);
	/* After the blocker returned @res: nothing was lost or taken. */
	void (*check)(int res);
	/* From the controller, while the blocker waits: make its wait end
	 * successfully (NULL: no simple way to). */
	void (*satisfy)(void);
	/* After a satisfied blocker returned: put the fixture back. */
	void (*restore)(void);
};

extern const struct blocker blockers[];
extern const size_t nblockers;

/* Set up / tear down the fixture, from the controlling fiber. */
void fx_setup(void);
void fx_teardown(void);

#endif
