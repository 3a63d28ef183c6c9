/*
 * The io_uring backend's private state, shared by its files (uring.c: the
 * ring and the loop's poll; uring_bufs.c: provided-buffer rings).
 */
#ifndef CORIO_URING_H
#define CORIO_URING_H

#include "../internal.h"

struct uring {
	struct io_uring ring;
	struct corio_list backlog; /* ops waiting for an SQE */
	struct corio_list cancels; /* ops whose cancel request waits for an SQE */
	unsigned reg_flag;	   /* IORING_ENTER_REGISTERED_RING or 0 */
	int enter_fd;
	bool taskrun_flag; /* the kernel sets IORING_SQ_TASKRUN for us */
	bool defer;	   /* DEFER_TASKRUN: completions need GETEVENTS */
	bool wake_armed;   /* a read is pending on wake_fd */
	bool msg_ring;	   /* loops ring each other with MSG_RING */
	bool rings_queued; /* MSG_RING wakes wait in our SQ */
	int wake_fd;	   /* eventfd other threads write to wake us */
	uint64_t wake_buf;
	uint8_t ops[32]; /* supported opcodes (bitmap) */
	struct corio__bufgroup *bufs; /* provided-buffer groups, newest first */
	unsigned buf_total;	      /* buffers in all groups */
	unsigned buf_size, buf_first, buf_max;
	bool bufs_failed; /* the kernel refused buffer rings: don't retry */
	unsigned direct_max;  /* slots of the direct-descriptor table */
	unsigned direct_used; /* slots taken or reserved by accepts in flight */
	uint8_t *direct_lo;   /* per slot: the peer is this machine (bitmap) */
	int direct_state;    /* 0: not set up yet, 1: ready, -errno: refused */
};

static inline struct uring *U(corio_loop *loop)
{
	return loop->be_state;
}

/* Buffer groups (uring_bufs.c): set up lazily, torn down at fini. */
void corio__bufs_fini(corio_loop *loop);

#endif
