/*
 * The io_uring backend's private state, shared by its files (uring.c: the
 * ring and the loop's poll; uring_bufs.c: provided-buffer rings).
 */
#ifndef CORIO_URING_H
#define CORIO_URING_H

#include "../op.h"
#include "backends.h"

struct uring {
	struct io_uring ring;
	struct corio_list backlog; /* ops waiting for an SQE */
	struct corio_list cancels; /* ops whose cancel request waits for an SQE */
	unsigned reg_flag;	   /* IORING_ENTER_REGISTERED_RING or 0 */
	int enter_fd;
	bool taskrun_flag; /* the kernel sets IORING_SQ_TASKRUN for us */
	bool defer;	   /* DEFER_TASKRUN: completions need GETEVENTS */
	bool wake_armed;   /* a read is pending on wake_fd */
	bool rings_queued; /* MSG_RING wakes wait in our SQ */
	int wake_fd;	   /* eventfd other threads write to wake us */
	uint64_t wake_buf;
	uint8_t ops[32]; /* supported opcodes (bitmap) */
	struct corio__bufgroup *bufs; /* provided-buffer groups, newest first */
	unsigned buf_total;	      /* buffers in all groups */
	unsigned buf_size, buf_first, buf_max;
	unsigned direct_max;  /* slots of the direct-descriptor table */
	unsigned direct_used; /* slots taken or reserved by accepts in flight */
	uint8_t *direct_lo;   /* per slot: the peer is this machine (bitmap) */
	int direct_state;    /* 0: not set up yet, 1: ready, -errno: refused */
};

static inline struct uring *U(corio_loop *loop)
{
	return loop->be_state;
}

/* Provided-buffer rings (uring_bufs.c): set up lazily, topped up before
 * each enter, torn down at fini. */
extern const struct corio__be_bufs corio__uring_bufs;
void corio__bufs_refill(corio_loop *loop);
void corio__bufs_fini(corio_loop *loop);

/*
 * Valgrind cannot see io_uring write into memory: a buffer the kernel filled
 * looks uninitialised to it. When running under valgrind (and only then),
 * the backend marks what each completion wrote as defined (uring_valgrind.c).
 */
extern bool corio__valgrind;
void corio__valgrind_completed(corio_loop *loop, const struct corio__op *op, int res,
			       uint32_t flags);

#endif
