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
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "uring.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define CORIO_VALGRIND 1
#endif
#endif

/* Newer than liburing 2.3's header. */
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif

/* user_data values that are not ops (ops are aligned, so odd is free). */
#define TAG_IGNORE 1u /* our cancel requests and MSG_RING sends: no result needed */
#define TAG_WAKE 3u   /* the read on the wake eventfd completed */
#define TAG_RINGED 5u /* another loop rang us with IORING_OP_MSG_RING */
#define TAG_RING_FAILED 7u /* our MSG_RING could not post (see uring_wake) */

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

#ifdef CORIO_TSAN
#include <sanitizer/tsan_interface.h>

/*
 * liburing maps and unmaps the rings with its own system calls, which
 * ThreadSanitizer does not intercept, so it never learns that a ring's
 * memory went away: a ring mapped where another thread's destroyed ring
 * was would inherit that thread's accesses in TSan's shadow, and every SQE
 * written to it would look like a race with them. The kernel orders the
 * munmap before the mmap that reuses the pages; tell TSan, page by page
 * (4 KiB, the smallest page): each page of a ring is released as the ring
 * is torn down and acquired as a new ring is set up. Only a new ring on
 * an old one's pages gets an edge, from that ring's teardown.
 */
static void tsan_ring_pages(struct io_uring *r, void (*sync)(void *addr))
{
	const struct {
		char *p;
		size_t len;
	} m[] = {
		{r->sq.ring_ptr, r->sq.ring_sz},
		{r->cq.ring_ptr, r->cq.ring_sz}, /* the same as the SQ ring's with SINGLE_MMAP */
		{(char *)r->sq.sqes, r->sq.ring_entries * sizeof(struct io_uring_sqe)},
	};

	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		for (size_t off = 0; off < m[i].len; off += 4096)
			sync(m[i].p + off);
}
#endif

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

	/* Older kernels answer EINVAL to flags they do not know: step down.
	 * Under valgrind, no DEFER_TASKRUN: see valgrind_wait(). */
	for (unsigned all = 0; all < 2; all++) {
		for (unsigned i = corio__valgrind ? 2 : 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
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
#ifdef CORIO_TSAN
	tsan_ring_pages(&u->ring, __tsan_acquire);
#endif
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

static bool uring_supported_u(const struct uring *u, int opcode)
{
	return opcode >= 0 && opcode < 256 && (u->ops[opcode / 8] & (1u << (opcode % 8)));
}

static bool getenv_is(const char *name, const char *value)
{
	const char *v = getenv(name);

	return v && !strcmp(v, value);
}

/* Set once: loops are created on several threads, and all read it. */
static pthread_once_t valgrind_once = PTHREAD_ONCE_INIT;

static void detect_valgrind(void)
{
#ifdef CORIO_VALGRIND
	corio__valgrind = RUNNING_ON_VALGRIND;
#endif
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
	pthread_once(&valgrind_once, detect_valgrind);
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
	u->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (u->wake_fd < 0) {
		ret = -errno;
		*why = "eventfd failed";
		io_uring_queue_exit(&u->ring);
		free(u);
		return ret;
	}
	loop->caps = corio__backend_uring.caps;
	if (!uring_supported_u(u, IORING_OP_MSG_RING) || getenv_is("CORIO_WAKE", "eventfd"))
		loop->caps &= ~CORIO__CAP_MSG_RING;
	/* Big buffers, few of them: a receive takes what is there, up to a
	 * buffer, so 64 KiB means fewer completions and fewer sends per byte
	 * (bench/: 4 KiB messages 16 deep per connection ran at half the
	 * speed with 4 KiB buffers). Their memory is MAP_NORESERVE, so a
	 * buffer holding a 64-byte message costs one page, not 64 KiB. */
	u->buf_size = opts && opts->recv_buffer_size ? opts->recv_buffer_size : 65536;
	u->buf_first = opts && opts->recv_buffers ? opts->recv_buffers : 256;
	u->buf_max = opts && opts->recv_buffers_max ? opts->recv_buffers_max : 4096;
	u->direct_max = opts ? opts->direct_files : 0;
	loop->be_state = u;
	return 0;
}

static void uring_flush(corio_loop *loop);

static void uring_fini(corio_loop *loop)
{
	struct uring *u = U(loop);

	uring_flush(loop);
	corio__bufs_fini(loop);
	free(u->direct_lo);
#ifdef CORIO_TSAN
	tsan_ring_pages(&u->ring, __tsan_release);
#endif
	io_uring_queue_exit(&u->ring); /* also ends the pending wake read */
	close(u->wake_fd);
	free(u);
	loop->be_state = NULL;
}

static bool uring_supported(corio_loop *loop, int opcode)
{
	return uring_supported_u(U(loop), opcode);
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

unsigned corio__fault_sq_refusals;

/* An SQE, flushing a full queue to the kernel once if needed. */
static struct io_uring_sqe *get_sqe(corio_loop *loop)
{
	struct uring *u = U(loop);
	struct io_uring_sqe *sqe;

	if (CORIO_UNLIKELY(corio__fault_sq_refusals)) {
		/* Test seam: as if the SQ were full and the kernel refused to
		 * take any of it (what -EBUSY/-EAGAIN from the flush means). */
		corio__fault_sq_refusals--;
		loop->stats.sq_full++;
		return NULL;
	}
	sqe = io_uring_get_sqe(&u->ring);
	if (CORIO_LIKELY(sqe != NULL))
		return sqe;
	loop->stats.sq_full++;
	enter(loop, flush_sq(&u->ring), 0, 0, NULL); /* errors: the backlog takes it */
	return io_uring_get_sqe(&u->ring);
}

/*
 * Direct descriptors. The table is registered sparse on first use, sized
 * within RLIMIT_NOFILE (the kernel refuses more, and liburing would answer
 * that by raising the process's limit behind its back). Accepts fill it
 * with IORING_FILE_INDEX_ALLOC; a slot is freed by a close. direct_used
 * counts the slots taken and those reserved by accepts in flight: an
 * accept that finds the table full has already taken the connection off
 * the listen queue, and the kernel drops it, so no accept may start
 * without a slot for it (direct_reserve).
 */
static int direct_setup(corio_loop *loop)
{
	struct uring *u = U(loop);
	struct rlimit rl;
	unsigned n;
	int ret;

	if (u->direct_state)
		return u->direct_state > 0 ? 0 : u->direct_state;
	n = u->direct_max ? u->direct_max : 65536;
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < n)
		n = (unsigned)rl.rlim_cur;
	if (n > CORIO_FD_DIRECT - 1)
		n = CORIO_FD_DIRECT - 1;
	u->direct_lo = calloc((n + 7) / 8, 1);
	ret = !n ? -EMFILE : !u->direct_lo ? -ENOMEM : io_uring_register_files_sparse(&u->ring, n);
	u->direct_state = ret < 0 ? ret : 1;
	u->direct_max = n;
	if (ret < 0)
		loop->caps &= ~CORIO__CAP_DIRECT;
	return ret < 0 ? ret : 0;
}

static int direct_reserve(corio_loop *loop)
{
	struct uring *u = U(loop);

	if (u->direct_state <= 0)
		return -EBADF;
	if (u->direct_used >= u->direct_max)
		return -ENFILE;
	u->direct_used++;
	return 0;
}

static void direct_release(corio_loop *loop)
{
	U(loop)->direct_used--;
}

static void direct_note_peer(corio_loop *loop, unsigned idx, bool loopback)
{
	uint8_t *b = &U(loop)->direct_lo[idx / 8];

	*b = (uint8_t)(loopback ? *b | (1u << (idx % 8)) : *b & ~(1u << (idx % 8)));
}

static bool direct_loopback(corio_loop *loop, int fd)
{
	struct uring *u = U(loop);
	unsigned idx = (unsigned)(fd - CORIO_FD_DIRECT);

	if (u->direct_state <= 0 || idx >= u->direct_max)
		return false;
	return u->direct_lo[idx / 8] & (1u << (idx % 8));
}

/* Free slot @idx at once (a files update, not an SQE). */
static int direct_close_now(corio_loop *loop, unsigned idx)
{
	int none = -1;
	int ret;

	if (U(loop)->direct_state <= 0)
		return -EBADF;
	ret = io_uring_register_files_update(&U(loop)->ring, idx, &none, 1);
	if (ret < 0)
		return ret;
	direct_release(loop);
	return 0;
}

static const struct corio__be_direct uring_direct = {
	.setup = direct_setup,
	.reserve = direct_reserve,
	.release = direct_release,
	.note_peer = direct_note_peer,
	.loopback = direct_loopback,
	.close_now = direct_close_now,
};

/* An SQE naming a direct descriptor: the slot, and the flag that says so
 * (a close names its slot in file_index instead). Without a table the
 * kernel would say ENXIO; a bad descriptor is EBADF everywhere else. */
static void direct_sqe(corio_loop *loop, struct io_uring_sqe *sqe)
{
	unsigned idx = (unsigned)(sqe->fd - CORIO_FD_DIRECT);

	if (U(loop)->direct_state <= 0)
		sqe->fd = -1;
	else if (sqe->opcode == IORING_OP_CLOSE) {
		sqe->fd = 0;
		sqe->file_index = idx + 1;
	} else {
		sqe->fd = (int)idx;
		sqe->flags |= IOSQE_FIXED_FILE;
	}
}

static bool prep(corio_loop *loop, struct corio__op *op)
{
	struct io_uring_sqe *sqe = get_sqe(loop);

	if (!sqe)
		return false;
	*sqe = op->sqe;
	if (CORIO_UNLIKELY(sqe->fd >= CORIO_FD_DIRECT))
		direct_sqe(loop, sqe);
	sqe->user_data = (uint64_t)(uintptr_t)op;
	return true;
}

static bool prep_cancel(corio_loop *loop, struct corio__op *op)
{
	struct io_uring_sqe *sqe = get_sqe(loop);

	if (!sqe)
		return false;
	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)op, 0);
	sqe->user_data = TAG_IGNORE;
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

/*
 * Deliver every CQE there is. Each is copied and released before dispatch,
 * so a callback that submits (and flushes) cannot disturb the iteration.
 * The tail is read (acquire) once per batch, not once per CQE; the head is
 * re-read each time, in case a callback ran a nested turn that reaped.
 * corio never sets IORING_SETUP_CQE32, so CQEs are plain structs.
 * Once the ring is empty, completions the kernel kept aside because it was
 * full (overflow, NODROP) are counted; the next turn's io_uring_enter, which
 * passes GETEVENTS when it sees the flag, brings them in.
 */
static unsigned reap(corio_loop *loop)
{
	struct io_uring_cq *cq = &U(loop)->ring.cq;
	unsigned mask = cq->ring_mask, tail = io_uring_smp_load_acquire(cq->ktail);
	unsigned n = 0;

	for (;;) {
		unsigned head = *cq->khead;

		if ((int)(tail - head) <= 0) {
			tail = io_uring_smp_load_acquire(cq->ktail);
			if (tail == head)
				break;
		}
		struct io_uring_cqe *cqe = &cq->cqes[head & mask];
		uint64_t ud = cqe->user_data;
		int res = cqe->res;
		uint32_t flags = cqe->flags;

		io_uring_smp_store_release(cq->khead, head + 1);
		n++;
		if (ud == TAG_IGNORE || ud == TAG_RINGED)
			continue; /* a ring from another loop only had to wake us */
		if (ud == TAG_RING_FAILED) {
			corio__log("a MSG_RING wake failed (%s): a loop may sleep until its next "
				   "event", strerror(-res));
			continue;
		}
		if (ud == TAG_WAKE) {
			U(loop)->wake_armed = false; /* re-armed before the next wait */
			continue;
		}
		struct corio__op *op = (struct corio__op *)(uintptr_t)ud;

		if (CORIO_UNLIKELY(corio__list_linked(&op->link)))
			corio__list_remove(&op->link); /* its cancel was still queued */
		if (CORIO_UNLIKELY(corio__valgrind))
			corio__valgrind_completed(loop, op, res, flags);
		if (CORIO_UNLIKELY(op->sqe.fd >= CORIO_FD_DIRECT) &&
		    op->sqe.opcode == IORING_OP_CLOSE && res == 0)
			direct_release(loop); /* a slot freed */
		corio__op_complete(loop, op, res, flags);
	}
	if (IO_URING_READ_ONCE(*U(loop)->ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW)
		loop->stats.cq_overflow++;
	return n;
}

/* Keep a read pending on the wake eventfd: a write by any thread completes
 * it, which ends our wait. The counter it read is just discarded. */
static void arm_wake(corio_loop *loop)
{
	struct uring *u = U(loop);
	struct io_uring_sqe *sqe = get_sqe(loop);

	if (!sqe)
		return; /* next turn */
	io_uring_prep_read(sqe, u->wake_fd, &u->wake_buf, sizeof(u->wake_buf), 0);
	sqe->user_data = TAG_WAKE;
	u->wake_armed = true;
}

/*
 * Wake a loop that sleeps (or is about to) in io_uring_enter.
 *
 * From another io_uring loop we post a CQE straight into the target's ring
 * with IORING_OP_MSG_RING, prepared in our own SQ: it goes out with our next
 * io_uring_enter, which we make anyway, so the sender pays no system call of
 * its own and the target has nothing to re-arm. From any other thread we
 * write the target's eventfd (one system call), which completes the read the
 * target keeps pending. Measured (bench/run.sh, xcore section; a round
 * trip between two loops that sleep, 7 interleaved runs on a quiet 2-vCPU
 * VM): MSG_RING 34.7 us median against 44.6 us with eventfd wakes, and 2
 * system calls per round trip against 4, so loops ring each other; the
 * eventfd stays for threads that are not loops. CORIO_WAKE=eventfd forces
 * the eventfd everywhere (to compare).
 */
static void uring_wake(corio_loop *target, corio_loop *sender)
{
	struct uring *t = U(target);
	uint64_t one = 1;
	ssize_t n;

	/* Only from inside a turn: its next poll is what sends the ring; and
	 * only from a loop with a ring of its own (this backend's). */
	if (sender && sender->in_turn && sender->be == target->be &&
	    (sender->caps & CORIO__CAP_MSG_RING)) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&U(sender)->ring);

		if (sqe) {
			/* It can only fail if the kernel cannot allocate an
			 * overflow entry for the target's full CQ (NODROP). */
			io_uring_prep_msg_ring(sqe, t->ring.ring_fd, 0, TAG_RINGED, 0);
			sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
			sqe->user_data = TAG_RING_FAILED;
			U(sender)->rings_queued = true;
			sender->stats.wakes_msg_ring++;
			return;
		}
	}
	n = write(t->wake_fd, &one, sizeof(one));
	(void)n; /* EAGAIN: the counter is saturated, so it is readable anyway */
}

static void uring_flush(corio_loop *loop)
{
	struct uring *u = U(loop);

	if (u->rings_queued) {
		u->rings_queued = false;
		enter(loop, flush_sq(&u->ring), 0, 0, NULL);
	}
}

/*
 * Valgrind (3.19) takes io_uring_enter for a system call that never blocks
 * and keeps its lock over the whole process across it: while one loop
 * sleeps in the kernel no other thread runs, and a pool deadlocks. Under
 * valgrind a loop therefore submits without waiting and sleeps in poll(2)
 * on the ring, which valgrind knows may block. The ring is then set up
 * without DEFER_TASKRUN, so that completions reach the CQ (and wake the
 * poll) without the loop entering the kernel for them.
 */
static void valgrind_wait(corio_loop *loop, unsigned submit, int64_t timeout)
{
	struct io_uring *ring = &U(loop)->ring;
	struct pollfd pfd = {.fd = ring->ring_fd, .events = POLLIN};

	if (submit)
		enter(loop, submit, 0, 0, NULL);
	if (!io_uring_cq_ready(ring))
		poll(&pfd, 1, timeout < 0 ? -1 : (int)((timeout + CORIO_MSEC - 1) / CORIO_MSEC));
}

static int uring_poll(corio_loop *loop, int64_t timeout)
{
	struct uring *u = U(loop);
	struct io_uring *ring = &u->ring;
	struct __kernel_timespec ts, *tsp = NULL;
	unsigned submit, kflags, wait_nr = 0, flags = 0;
	int ret;

	if (!corio__list_empty(&u->backlog) || !corio__list_empty(&u->cancels)) {
		drain_backlogs(loop);
		/* Still refused: what we wait for may depend on what we could
		 * not submit (a cancel, say). Retry soon instead of sleeping. */
		if ((!corio__list_empty(&u->backlog) || !corio__list_empty(&u->cancels)) &&
		    (timeout < 0 || timeout > CORIO_MSEC))
			timeout = CORIO_MSEC;
	}
	if (!u->wake_armed)
		arm_wake(loop);
	corio__bufs_refill(loop);
	submit = flush_sq(ring);
	u->rings_queued = false; /* they go with this enter */
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
	if (CORIO_UNLIKELY(corio__valgrind) && wait_nr) {
		valgrind_wait(loop, submit, timeout);
		submit = wait_nr = 0;
		tsp = NULL;
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
	return (int)reap(loop);
}

const struct corio__backend corio__backend_uring = {
	.name = "io_uring",
	.caps = CORIO__CAP_MULTISHOT | CORIO__CAP_BUFS | CORIO__CAP_DIRECT | CORIO__CAP_MSG_RING,
	.init = uring_init,
	.fini = uring_fini,
	.submit = uring_submit,
	.cancel = uring_cancel,
	.poll = uring_poll,
	.supported = uring_supported,
	.wake = uring_wake,
	.flush = uring_flush,
	.bufs = &corio__uring_bufs,
	.direct = &uring_direct,
};
