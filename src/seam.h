/*
 * Layer core: the seam between a loop and the kernel (no code). The layers
 * above reach a backend only through loop->be and test loop->caps; which
 * backend a loop has is known only in src/backend/.
 */
#ifndef CORIO_SEAM_H
#define CORIO_SEAM_H

#include "core.h"

/*
 * Capabilities: what a loop's backend can do beyond the operations every
 * backend runs. A backend's table says what it can ever do (caps); its init
 * copies that into loop->caps and clears what this kernel lacks, and a
 * feature that fails on first use clears its bit then. The layers above test
 * loop->caps, never which backend a loop has, and take their other path where
 * a bit is clear (plain receives, plain descriptors, eventfd wakes).
 */
enum {
	CORIO__CAP_MULTISHOT = 1u << 0, /* multishot accept and receive */
	CORIO__CAP_BUFS = 1u << 1,	/* provided-buffer rings: be->bufs */
	CORIO__CAP_DIRECT = 1u << 2,	/* direct descriptors: be->direct */
	CORIO__CAP_MSG_RING = 1u << 3,	/* wakes another loop of its kind with a ring message */
	/* Next: fixed buffers, a polled ring for O_DIRECT, 128-byte SQEs, each
	 * with its bit and, where it has operations, its table below. */
};

/*
 * io_uring provided-buffer rings (CORIO__CAP_BUFS). A group is `nbufs`
 * buffers of `size` bytes registered as buffer group `bgid`; buffer `bid` is
 * at base + bid * size. Each buffer has a node, so that a connection can
 * queue the buffers it holds without allocating.
 */
struct corio__bufgroup;

struct corio__bufnode {
	struct corio__bufnode *next;
	struct corio__bufgroup *g;
	uint32_t len, off; /* bytes received, bytes consumed */
};

struct io_uring_buf_ring;

struct corio__bufgroup {
	struct io_uring_buf_ring *br;
	char *base;
	struct corio__bufnode *nodes;
	unsigned nbufs, size, mask;
	uint16_t bgid;
	uint16_t *free;	 /* neither lent nor in the ring: most recently used on top */
	unsigned nfree;
	unsigned posted; /* in the ring, not taken by the kernel yet */
	unsigned target; /* how many the ring is topped up to */
	struct corio__bufgroup *next;
};

static inline char *corio__bufnode_data(const struct corio__bufnode *n)
{
	return n->g->base + (size_t)(n - n->g->nodes) * n->g->size;
}

/* The node of buffer @bid of @g, which a CQE says the kernel took (and
 * filled: the backend has told valgrind so already). */
static inline struct corio__bufnode *corio__bufgroup_take(struct corio__bufgroup *g, unsigned bid)
{
	g->posted--;
	return &g->nodes[bid];
}

struct corio__be_bufs {
	/* The group new receives should use (set up on first use), or NULL
	 * when the kernel refuses buffer rings (then loop->caps loses the bit). */
	struct corio__bufgroup *(*current)(corio_loop *loop);
	/* Receives ran the ring dry: keep more buffers in it, or, when every
	 * buffer is lent out, add a group twice as large, up to the limit.
	 * 0, or -ENOBUFS at the limit. */
	int (*grow)(corio_loop *loop);
	/* Give a buffer back (it goes to the ring at the next turn). */
	void (*put)(struct corio__bufnode *n);
};

/*
 * Direct descriptors (CORIO__CAP_DIRECT): ints with CORIO_FD_DIRECT set,
 * naming slots of the loop's table of registered files. The table is set up
 * on first use.
 */
struct corio__be_direct {
	/* 0 when the table is ready, -errno when this loop cannot have one
	 * (then loop->caps loses the bit). */
	int (*setup)(corio_loop *loop);
	/* Reserve a slot for an accept about to start (0, or -ENFILE when the
	 * table is taken); released by the close of the slot, or by the caller
	 * with release() if the accept fails. */
	int (*reserve)(corio_loop *loop);
	void (*release)(corio_loop *loop);
	/* Whether the peer of slot @idx is this machine, as its accept saw it
	 * (direct descriptors have no getpeername). */
	void (*note_peer)(corio_loop *loop, unsigned idx, bool loopback);
	bool (*loopback)(corio_loop *loop, int fd);
	/* Free slot @idx at once, without an operation, for paths that cannot
	 * wait for a completion. */
	int (*close_now)(corio_loop *loop, unsigned idx);
};

/*
 * The seam between the loop and the kernel. Exactly one backend per loop,
 * chosen at loop creation (backend/backend.c). A backend never fails an op
 * because it is busy: it queues it. It reports every completion through
 * corio__op_complete() (or corio__op_complete_inline() from within submit).
 */
struct corio__backend {
	const char *name;
	unsigned caps; /* CORIO__CAP_*: the most this backend can do */
	/* Set up; on failure return -errno after printing nothing (the loop
	 * decides whether to fall back and what to say). @why gets a static
	 * explanation of the failure, naming the fix. Sets loop->caps. */
	int (*init)(corio_loop *loop, const struct corio_loop_opts *opts, const char **why);
	/* Tear down. Called with nothing in flight. */
	void (*fini)(corio_loop *loop);
	/* Hand an op over. */
	void (*submit)(corio_loop *loop, struct corio__op *op);
	/* Ask that an op handed over be cancelled; its completion follows. */
	void (*cancel)(corio_loop *loop, struct corio__op *op);
	/* Submit what is queued, wait up to @timeout_ns (0: don't wait,
	 * -1: no limit) for events, and deliver the completions. Returns >= 0
	 * or -errno for a fatal error. */
	int (*poll)(corio_loop *loop, int64_t timeout_ns);
	/* Whether an io_uring opcode can run on this backend. */
	bool (*supported)(corio_loop *loop, int opcode);
	/* Wake @target from its kernel wait. Any thread; @sender is the
	 * calling thread's loop or NULL. Must make the target's next (or
	 * current) poll return even if it has not started waiting yet. */
	void (*wake)(corio_loop *target, corio_loop *sender);
	/* Send what wake() left queued on this loop (called when a run ends,
	 * since no next poll may come to carry it). */
	void (*flush)(corio_loop *loop);
	/* Optional features: NULL where the backend has none. */
	const struct corio__be_bufs *bufs;     /* CORIO__CAP_BUFS */
	const struct corio__be_direct *direct; /* CORIO__CAP_DIRECT */
};

#endif
