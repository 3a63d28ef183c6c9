/*
 * The io_uring backend.
 *
 * Ring set-up, best first: SINGLE_ISSUER | DEFER_TASKRUN (6.1), else
 * COOP_TASKRUN (5.19), else plain; each with TASKRUN_FLAG where it applies
 * (so the loop can see when the kernel holds completions for it without a
 * system call), SUBMIT_ALL (5.18) and a completion queue larger than the
 * submission queue. The ring fd is registered (5.18) so that io_uring_enter
 * skips the fd lookup. IORING_FEAT_EXT_ARG (5.11) is required: the loop's
 * timeout rides on io_uring_enter itself, so there is one system call per
 * turn and no timeout SQE at all.
 *
 * Steady state: ops are copied into SQEs as they start; each loop turn makes
 * one io_uring_enter that submits everything and, if the loop has nothing
 * else to do, waits for a completion until the earliest timer. A busy turn
 * with nothing to submit and no completion pending makes no system call.
 *
 * Back-pressure (DESIGN rule 3): a full SQ is flushed to the kernel at once;
 * if the kernel pushes back (EBUSY: completion overflow it cannot flush yet;
 * EAGAIN: no memory for requests), the op waits in a backlog that the next
 * turns drain. CQ overflow is handled by the kernel (IORING_FEAT_NODROP keeps
 * the extra CQEs) and flushed each time we enter with GETEVENTS, which every
 * turn does after reaping the CQ empty.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../internal.h"

/* Newer than liburing 2.3's header. */
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif

/* user_data of our own cancel requests: ops are aligned, so odd is free. */
#define TAG_CANCEL 1u

struct uring {
	struct io_uring ring;
	struct corio_list backlog; /* ops waiting for an SQE */
	struct corio_list cancels; /* ops whose cancel request waits for an SQE */
	unsigned reg_flag;	   /* IORING_ENTER_REGISTERED_RING or 0 */
	int enter_fd;
	bool taskrun_flag; /* the kernel sets IORING_SQ_TASKRUN for us */
	bool defer;	   /* DEFER_TASKRUN: completions need GETEVENTS */
	uint8_t ops[32];   /* supported opcodes (bitmap) */
};

static struct uring *U(corio_loop *loop)
{
	return loop->be_state;
}

static __thread char why_buf[320];

static const char *explain(int err)
{
	FILE *f;
	int v = -1;

	switch (err) {
	case -ENOSYS:
		return "this kernel has no io_uring (ENOSYS: older than 5.1 or built without "
		       "CONFIG_IO_URING); use CORIO_BACKEND=epoll";
	case -EPERM:
	case -EACCES:
		f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
		if (f) {
			if (fscanf(f, "%d", &v) != 1)
				v = -1;
			fclose(f);
		}
		if (v > 0) {
			snprintf(why_buf, sizeof(why_buf),
				 "io_uring is disabled by sysctl kernel.io_uring_disabled=%d "
				 "(EPERM); set it to 0%s, or use CORIO_BACKEND=epoll",
				 v, v == 1 ? " or add this user to kernel.io_uring_group" : "");
			return why_buf;
		}
		return "io_uring_setup is denied (EPERM), most likely by a seccomp profile "
		       "(Docker's default blocks io_uring); allow io_uring_setup, "
		       "io_uring_enter and io_uring_register, or use CORIO_BACKEND=epoll";
	case -ENOMEM:
		return "not enough locked memory for the rings (ENOMEM); raise RLIMIT_MEMLOCK "
		       "(ulimit -l), ask for a smaller ring (corio_loop_opts.sq_entries), or "
		       "use CORIO_BACKEND=epoll";
	case -ENOTSUP:
		return "the kernel lacks IORING_FEAT_EXT_ARG (needs Linux 5.11 or later); use "
		       "CORIO_BACKEND=epoll";
	default:
		snprintf(why_buf, sizeof(why_buf), "io_uring_setup failed: %s; use "
			 "CORIO_BACKEND=epoll", strerror(-err));
		return why_buf;
	}
}

static int setup(struct uring *u, unsigned sq, unsigned cq)
{
	static const unsigned modes[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
		0,
	};
	struct io_uring_params p;
	int ret = -EINVAL;

	/* Older kernels answer EINVAL to flags they do not know: step down. */
	for (unsigned all = 0; all < 2; all++) {
		for (unsigned i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
			memset(&p, 0, sizeof(p));
			p.flags = modes[i] | IORING_SETUP_CQSIZE |
				  (all == 0 ? IORING_SETUP_SUBMIT_ALL : 0);
			p.cq_entries = cq;
			ret = io_uring_queue_init_params(sq, &u->ring, &p);
			if (ret != -EINVAL)
				break;
		}
		if (ret != -EINVAL)
			break;
	}
	if (ret < 0)
		return ret;
	if (!(p.features & IORING_FEAT_EXT_ARG)) {
		io_uring_queue_exit(&u->ring);
		return -ENOTSUP;
	}
	u->taskrun_flag = p.flags & IORING_SETUP_TASKRUN_FLAG;
	u->defer = p.flags & IORING_SETUP_DEFER_TASKRUN;
	return 0;
}

static void probe(struct uring *u)
{
	struct io_uring_probe *pr = io_uring_get_probe_ring(&u->ring);

	if (!pr) {
		/* No probe (before 5.6): assume what corio itself uses. */
		memset(u->ops, 0xff, sizeof(u->ops));
		return;
	}
	for (int op = 0; op < pr->ops_len && op < 256; op++)
		if (pr->ops[op].flags & IO_URING_OP_SUPPORTED)
			u->ops[op / 8] |= (uint8_t)(1u << (op % 8));
	io_uring_free_probe(pr);
}

static int uring_init(corio_loop *loop, const struct corio_loop_opts *opts, const char **why)
{
	struct uring *u = calloc(1, sizeof(*u));
	unsigned sq = opts && opts->sq_entries ? opts->sq_entries : 256;
	unsigned cq = opts && opts->cq_entries ? opts->cq_entries : 8 * sq;
	int ret;

	if (!u) {
		*why = "out of memory";
		return -ENOMEM;
	}
	if (cq < 2 * sq)
		cq = 2 * sq;
	ret = setup(u, sq, cq);
	if (ret < 0) {
		*why = explain(ret);
		free(u);
		return ret;
	}
	corio__list_init(&u->backlog);
	corio__list_init(&u->cancels);
	u->enter_fd = u->ring.ring_fd;
	if (io_uring_register_ring_fd(&u->ring) == 1) {
		u->enter_fd = u->ring.enter_ring_fd;
		u->reg_flag = IORING_ENTER_REGISTERED_RING;
	}
	probe(u);
	loop->be_state = u;
	return 0;
}

static void uring_fini(corio_loop *loop)
{
	struct uring *u = U(loop);

	io_uring_queue_exit(&u->ring);
	free(u);
	loop->be_state = NULL;
}

static bool uring_supported(corio_loop *loop, int opcode)
{
	struct uring *u = U(loop);

	return opcode >= 0 && opcode < 256 && (u->ops[opcode / 8] & (1u << (opcode % 8)));
}

/* Publish prepared SQEs to the kernel; returns how many it has not consumed. */
static unsigned flush_sq(struct io_uring *ring)
{
	struct io_uring_sq *sq = &ring->sq;
	unsigned tail = sq->sqe_tail;

	if (sq->sqe_head != tail) {
		sq->sqe_head = tail;
		io_uring_smp_store_release(sq->ktail, tail);
	}
	return tail - *sq->khead;
}

static int enter(corio_loop *loop, unsigned submit, unsigned wait_nr, unsigned flags,
		 struct __kernel_timespec *ts)
{
	struct uring *u = U(loop);
	struct io_uring_getevents_arg arg = {.sigmask = 0, .sigmask_sz = _NSIG / 8};

	loop->stats.enters++;
	flags |= u->reg_flag;
	if (ts) {
		arg.ts = (uint64_t)(uintptr_t)ts;
		return io_uring_enter2((unsigned)u->enter_fd, submit, wait_nr,
				       flags | IORING_ENTER_EXT_ARG, (sigset_t *)&arg, sizeof(arg));
	}
	return io_uring_enter2((unsigned)u->enter_fd, submit, wait_nr, flags, NULL, _NSIG / 8);
}

/* An SQE, flushing a full queue to the kernel once if needed. */
static struct io_uring_sqe *get_sqe(corio_loop *loop)
{
	struct uring *u = U(loop);
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	if (CORIO_LIKELY(sqe != NULL))
		return sqe;
	loop->stats.sq_full++;
	enter(loop, flush_sq(&u->ring), 0, 0, NULL); /* errors: the backlog takes it */
	return io_uring_get_sqe(&u->ring);
}

static bool prep(corio_loop *loop, struct corio__op *op)
{
	struct io_uring_sqe *sqe = get_sqe(loop);

	if (!sqe)
		return false;
	*sqe = op->sqe;
	sqe->user_data = (uint64_t)(uintptr_t)op;
	return true;
}

static bool prep_cancel(corio_loop *loop, struct corio__op *op)
{
	struct io_uring_sqe *sqe = get_sqe(loop);

	if (!sqe)
		return false;
	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op, 0);
	sqe->user_data = TAG_CANCEL;
	return true;
}

static void uring_submit(corio_loop *loop, struct corio__op *op)
{
	struct uring *u = U(loop);

	if (CORIO_UNLIKELY(!uring_supported(loop, op->sqe.opcode))) {
		corio__op_complete_inline(loop, op, -EOPNOTSUPP);
		return;
	}
	/* Behind a backlog, keep submission order. */
	if (CORIO_LIKELY(corio__list_empty(&u->backlog)) && prep(loop, op))
		return;
	loop->stats.backlogged++;
	corio__list_push_back(&u->backlog, &op->link);
}

static void uring_cancel(corio_loop *loop, struct corio__op *op)
{
	struct uring *u = U(loop);

	if (corio__list_linked(&op->link)) {
		/* Still in the backlog: the kernel never saw it. */
		corio__list_remove(&op->link);
		corio__op_complete_inline(loop, op, -ECANCELED);
		return;
	}
	if (!prep_cancel(loop, op))
		corio__list_push_back(&u->cancels, &op->link);
}

static void drain_backlogs(corio_loop *loop)
{
	struct uring *u = U(loop);
	struct corio_list *n;

	while ((n = u->backlog.next) != &u->backlog) {
		struct corio__op *op = corio__container_of(n, struct corio__op, link);

		if (!prep(loop, op))
			return;
		corio__list_remove(n);
	}
	while ((n = u->cancels.next) != &u->cancels) {
		struct corio__op *op = corio__container_of(n, struct corio__op, link);

		if (!prep_cancel(loop, op))
			return;
		corio__list_remove(n);
	}
}

/* Deliver every CQE there is. Each is copied and released before dispatch,
 * so a callback that submits (and flushes) cannot disturb the iteration.
 * When the ring runs dry while the kernel holds overflowed CQEs (or task
 * work), io_uring_peek_cqe enters the kernel to flush them: that is where
 * most overflows are seen, so that is where they are counted. */
static unsigned reap(corio_loop *loop)
{
	struct io_uring *ring = &U(loop)->ring;
	struct io_uring_cqe *cqe;
	unsigned n = 0;

	for (;;) {
		if (!io_uring_cq_ready(ring) && io_uring_cq_has_overflow(ring))
			loop->stats.cq_overflow++;
		if (io_uring_peek_cqe(ring, &cqe) != 0 || !cqe)
			break;
		uint64_t ud = cqe->user_data;
		int res = cqe->res;
		uint32_t flags = cqe->flags;

		io_uring_cq_advance(ring, 1);
		n++;
		if (ud == TAG_CANCEL)
			continue;
		struct corio__op *op = (struct corio__op *)(uintptr_t)ud;

		if (CORIO_UNLIKELY(corio__list_linked(&op->link)))
			corio__list_remove(&op->link); /* its cancel was still queued */
		corio__op_complete(loop, op, res, flags);
	}
	return n;
}

static int uring_poll(corio_loop *loop, int64_t timeout)
{
	struct uring *u = U(loop);
	struct io_uring *ring = &u->ring;
	struct __kernel_timespec ts, *tsp = NULL;
	unsigned submit, kflags, wait_nr = 0, flags = 0;
	int ret;

	if (!corio__list_empty(&u->backlog) || !corio__list_empty(&u->cancels))
		drain_backlogs(loop);
	submit = flush_sq(ring);
	kflags = IO_URING_READ_ONCE(*ring->sq.kflags);
	if (io_uring_cq_ready(ring))
		timeout = 0; /* completions are waiting: no need to sleep */
	if (timeout != 0) {
		wait_nr = 1;
		flags = IORING_ENTER_GETEVENTS;
		if (timeout > 0) {
			ts.tv_sec = timeout / CORIO_SEC;
			ts.tv_nsec = timeout % CORIO_SEC;
			tsp = &ts;
		}
	} else if ((kflags & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN)) ||
		   (u->defer && !u->taskrun_flag && loop->inflight)) {
		/* The kernel holds completions (deferred task work, overflow):
		 * fetch them without waiting. */
		flags = IORING_ENTER_GETEVENTS;
	}
	if (submit || flags) {
		ret = enter(loop, submit, wait_nr, flags, tsp);
		switch (ret) {
		case -ETIME:  /* the timer is due */
		case -EINTR:  /* a signal: just turn */
		case -EBUSY:  /* CQ overflow not flushable yet: reap, retry */
		case -EAGAIN: /* kernel short of memory: the SQEs stay, retry */
			break;
		case -EBADR:
			corio__log("the kernel dropped completions (IORING_FEAT_NODROP could not "
				   "allocate); waiting operations may never finish");
			return ret;
		default:
			if (ret < 0)
				return ret;
		}
	}
	reap(loop);
	return 0;
}

const struct corio__backend corio__backend_uring = {
	.name = "io_uring",
	.init = uring_init,
	.fini = uring_fini,
	.submit = uring_submit,
	.cancel = uring_cancel,
	.poll = uring_poll,
	.supported = uring_supported,
};
