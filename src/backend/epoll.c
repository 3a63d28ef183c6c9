/*
 * The epoll backend: for kernels and sandboxes without io_uring.
 *
 * Ops arrive described as io_uring SQEs (see io.c); this file decodes the
 * same fields per opcode and does the work one of three ways:
 *
 *  - inline, in submit: nop, socket, shutdown, and close of a socket or pipe;
 *  - readiness, for sockets, pipes, ttys, eventfds (anything epoll can wait
 *    on): try the system call without blocking; on EAGAIN queue the op on
 *    its fd and try again when epoll says the fd is ready;
 *  - the thread pool (threadpool.c), for regular files, block devices and
 *    the path calls (openat, statx, ...), whose blocking is on a disk, which
 *    epoll cannot wait for.
 *
 * Readiness. Each fd has a record (struct efd, in an array indexed by fd,
 * grown as needed) with three FIFO queues of waiting ops: readers, writers
 * and pollers. An fd is registered once, the first time an op has to wait
 * on it, with EPOLLIN|EPOLLPRI|EPOLLOUT|EPOLLRDHUP|EPOLLET, and stays
 * registered until corio_close. Edge-triggered means an event comes only
 * when the fd becomes ready again, so the invariant that makes it work is:
 *
 *   a queue is non-empty only while its first op's last attempt failed
 *   with EAGAIN and no event has come since.
 *
 * Hence, on an event, the queue is retried from the front until an op gets
 * EAGAIN again (or the queue is empty); and a new op on a non-empty queue
 * joins the end without trying (it would only get EAGAIN, and going first
 * would overtake the ops already waiting). EPOLL_CTL_ADD reports a file
 * that is already ready, so registering after the EAGAIN loses nothing.
 *
 * Completions found while handling events are collected on a list and
 * delivered after the event batch, so a callback that submits, cancels or
 * closes cannot disturb the iteration (compare Redis's "refresh in case of
 * resize" in aeProcessEvents).
 *
 * Fds closed behind our back. An fd closed with close(2) drops its epoll
 * registration silently; if the number is reused, our record says
 * "registered" for a file that is not. corio learns of new files it creates
 * itself (accept, socket, openat) and resets their record; for the others,
 * every fd that has had a waiter for verify_after (50 ms; environment
 * CORIO_EPOLL_VERIFY_MS, 0 turns it off) without an event moving it forward
 * is re-checked with EPOLL_CTL_MOD (ENOENT: register it). So a stale record
 * costs a bounded delay, not a hang, and a wait shorter than that costs
 * nothing; see docs/BACKENDS.md. (The MOD re-arms the edge, so the check
 * would also hide a lost wake-up in this file: the tests run once with it
 * off to catch those.)
 *
 * The loop's eventfd (registered level-triggered, tag WAKE_TAG) is written
 * by pool threads when jobs finish and by corio__epoll_wake() from any
 * thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../internal.h"
#include "threadpool.h"

#define EVENTS 256
#define WAKE_TAG UINT64_MAX /* epoll data of the eventfd; fds are < 2^31 */
#define REG_EVENTS (EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLRDHUP | EPOLLET)
#define VERIFY_DEFAULT_MS 50
#define POOL_DEFAULT 4u
#define POOL_MAX 256u

/* Internal answers that are not results, outside errno's range (compare
 * the kernel's IOU_REQUEUE): the pool found the fd is not a file (run_job);
 * the file refuses RWF_NOWAIT (do_rw_stream). */
#define RES_NOT_A_FILE (-5000)
#define RES_NEED_PLAIN (-5001)

/* Which queue of an fd an op waits in. */
enum { Q_READ, Q_WRITE, Q_POLL, NQUEUES };

enum fd_kind {
	KIND_UNKNOWN, /* not classified yet */
	KIND_SOCKET,  /* socket or pipe: readiness; closes without blocking */
	KIND_STREAM,  /* tty, eventfd, other character devices: readiness */
	KIND_FILE,    /* regular file, block device, or not pollable: the pool */
};

struct efd {
	struct corio_list q[NQUEUES];
	struct corio_list vlink; /* in ep->verify: has waiters, registration unproven */
	int64_t since;		 /* when it joined ep->verify */
	int fd;
	uint8_t kind;	 /* enum fd_kind */
	bool registered; /* we believe epoll has it */
	bool owned;	 /* a dup made by corio_close for the waiters; closed with them */
	int8_t stream;	 /* a SOCK_STREAM socket: 1, not: 0, not known yet: -1 */
	bool drained;	 /* a recv came back short since the last read event */
	bool hup;	 /* EPOLLRDHUP, EPOLLHUP or EPOLLERR seen: never drained (note_recv) */
};

struct ep {
	int epfd;
	int evfd;
	atomic_bool wake_pending;
	bool pwait2; /* epoll_pwait2 works: nanosecond timeouts */
	struct efd **fds;
	size_t nfds;
	int64_t now;		   /* at the start of the current poll */
	int64_t verify_after;	   /* re-check delay; 0: never */
	struct corio_list done;	   /* results to deliver at the end of this poll */
	struct corio_list orphans; /* waited on a file that is gone; end on cancel */
	struct corio_list verify;  /* efds by since */
	struct corio__tpool pool;
	struct epoll_event events[EVENTS];
};

/* The backend's part of an op (op->bpriv[0..1]; the pool has bpriv[2]). */
enum op_state {
	ST_NONE,
	ST_WAIT,   /* in an efd queue */
	ST_ORPHAN, /* in ep->orphans */
	ST_POOL,   /* in the pool (queued or running) */
	ST_DONE,   /* result known, in ep->done */
};

#define F_RESTORE_FL 0x01u /* connect: put the file status flags back at the end */
#define F_PLAIN	     0x02u /* no RWF_NOWAIT (the file lacks it) */
#define F_BLOCKING   0x04u /* pool job on a non-file epoll refuses: no re-check */
#define F_SOCK_KNOWN 0x08u /* MSG_WAITALL: socket type looked up ... */
#define F_SOCK_SEQ   0x10u /* ... and it keeps byte order (stream, seqpacket) */

struct op_priv {
	uint8_t state;
	uint8_t flags; /* F_*: a pool thread reads them while the job runs */
	bool canceled; /* cancel came while it ran on the pool: do not restart.
			* Its own byte: set while a pool thread reads flags. */
	uint8_t unused;
	int32_t saved_fl; /* connect: F_GETFL before we set O_NONBLOCK */
	union {
		int64_t res;   /* ST_DONE */
		uint64_t done; /* MSG_WAITALL: bytes moved so far */
	};
};

_Static_assert(sizeof(struct op_priv) <= 2 * sizeof(uint64_t), "op_priv must fit bpriv[0..1]");

static struct op_priv *P(struct corio__op *op)
{
	return (struct op_priv *)(void *)op->bpriv;
}

static struct ep *B(corio_loop *loop)
{
	return loop->be_state;
}

static int neg_errno(long r)
{
	return r < 0 ? -errno : (int)r;
}

/* ------------------------------------------------------------ fd records */

static struct efd *get_efd(struct ep *b, int fd)
{
	return fd >= 0 && (size_t)fd < b->nfds ? b->fds[fd] : NULL;
}

static void efd_reset(struct efd *e)
{
	for (int i = 0; i < NQUEUES; i++)
		corio__list_init(&e->q[i]);
	corio__list_remove(&e->vlink);
	e->since = 0;
	e->kind = KIND_UNKNOWN;
	e->registered = false;
	e->owned = false;
	e->stream = -1;
	e->drained = false;
	e->hup = false;
}

/* The record of @fd, made if needed; NULL only when out of memory. */
static struct efd *efd_of(struct ep *b, int fd)
{
	struct efd *e;

	if (fd < 0)
		return NULL;
	if ((size_t)fd >= b->nfds) {
		size_t n = b->nfds ? b->nfds : 64;
		struct efd **fds;

		while (n <= (size_t)fd)
			n *= 2;
		fds = realloc(b->fds, n * sizeof(*fds));
		if (!fds)
			return NULL;
		memset(fds + b->nfds, 0, (n - b->nfds) * sizeof(*fds));
		b->fds = fds;
		b->nfds = n;
	}
	e = b->fds[fd];
	if (!e) {
		e = malloc(sizeof(*e));
		if (!e)
			return NULL;
		corio__list_init(&e->vlink);
		efd_reset(e);
		e->fd = fd;
		b->fds[fd] = e;
	}
	return e;
}

static bool has_waiters(const struct efd *e)
{
	return !corio__list_empty(&e->q[Q_READ]) || !corio__list_empty(&e->q[Q_WRITE]) ||
	       !corio__list_empty(&e->q[Q_POLL]);
}

/* Waiters whose file is gone (its number now names another file, or none):
 * they can never be retried, and wait, as io_uring's would, until cancelled. */
static void orphan_waiters(struct ep *b, struct efd *e)
{
	struct corio_list *n;

	for (int i = 0; i < NQUEUES; i++) {
		while ((n = corio__list_pop_front(&e->q[i]))) {
			P(corio__container_of(n, struct corio__op, link))->state = ST_ORPHAN;
			corio__list_push_back(&b->orphans, n);
		}
	}
}

/* @fd is a file we just created (or were told is new): forget the old one. */
static void fresh_fd(struct ep *b, int fd, uint8_t kind)
{
	struct efd *e = kind == KIND_UNKNOWN ? get_efd(b, fd) : efd_of(b, fd);

	if (!e)
		return;
	orphan_waiters(b, e);
	efd_reset(e);
	e->kind = kind;
}

static int reg(struct ep *b, struct efd *e)
{
	struct epoll_event ev = {.events = REG_EVENTS, .data.u64 = (uint64_t)e->fd};

	if (e->registered)
		return 0;
	/* EEXIST: our record was reset but the kernel still has this same
	 * file under this number (the registration is keyed by both). */
	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, e->fd, &ev) < 0 && errno != EEXIST)
		return -errno; /* EPERM: not pollable; EBADF; ENOMEM; ENOSPC */
	e->registered = true;
	return 0;
}

static void unregister(struct ep *b, struct efd *e)
{
	if (e->registered)
		epoll_ctl(b->epfd, EPOLL_CTL_DEL, e->fd, NULL); /* ENOENT, EBADF: gone already */
	e->registered = false;
}

/* A dup made by keep_open() is closed when its last waiter leaves. */
static void maybe_release(struct ep *b, struct efd *e)
{
	if (!e || !e->owned || has_waiters(e))
		return;
	unregister(b, e);
	close(e->fd);
	efd_reset(e);
}

/* --------------------------------------------------------- completion */

/* The op leaves the backend with @res: undo what we did to its fd, learn
 * about fds it created. */
static void settle(struct ep *b, struct corio__op *op, int res)
{
	struct op_priv *p = P(op);
	struct efd *e;

	p->state = ST_NONE;
	switch (op->sqe.opcode) {
	case IORING_OP_CONNECT:
		if (p->flags & F_RESTORE_FL)
			fcntl(op->sqe.fd, F_SETFL, p->saved_fl);
		break;
	case IORING_OP_ACCEPT:
	case IORING_OP_SOCKET:
		if (res >= 0)
			fresh_fd(b, res, KIND_SOCKET);
		break;
	case IORING_OP_RECV:
	case IORING_OP_SEND:
	case IORING_OP_RECVMSG:
	case IORING_OP_SENDMSG:
		/* It worked: a socket, which close may close inline. */
		if (res >= 0 && (e = efd_of(b, op->sqe.fd)))
			e->kind = KIND_SOCKET;
		break;
	case IORING_OP_OPENAT:
		if (res >= 0)
			fresh_fd(b, res, KIND_UNKNOWN);
		break;
	default:
		break;
	}
}

/* Complete now: a fiber sees it on return, a callback runs next turn. */
static void done_now(corio_loop *loop, struct corio__op *op, int res)
{
	settle(B(loop), op, res);
	corio__op_complete_inline(loop, op, res);
}

/* Complete at the end of this poll (event handling), or of the next one
 * (cancellation). */
static void done_later(struct ep *b, struct corio__op *op, int res)
{
	settle(b, op, res);
	P(op)->state = ST_DONE;
	P(op)->res = res;
	corio__list_push_back(&b->done, &op->link);
}

/* Returns how many it delivered. */
static int deliver(corio_loop *loop, struct ep *b)
{
	struct corio_list *n;
	int count = 0;

	while ((n = corio__list_pop_front(&b->done))) {
		struct corio__op *op = corio__container_of(n, struct corio__op, link);

		P(op)->state = ST_NONE;
		corio__op_complete(loop, op, (int)P(op)->res, 0);
		count++;
	}
	return count;
}

/* ------------------------------------------------------ the system calls */

static int queue_of(uint8_t opcode)
{
	switch (opcode) {
	case IORING_OP_SEND:
	case IORING_OP_SENDMSG:
	case IORING_OP_WRITE:
	case IORING_OP_WRITEV:
	case IORING_OP_CONNECT:
		return Q_WRITE;
	case IORING_OP_POLL_ADD:
		return Q_POLL;
	default:
		return Q_READ;
	}
}

/* Whether the socket keeps a byte stream (MSG_WAITALL may gather). */
static bool byte_stream(struct corio__op *op)
{
	struct op_priv *p = P(op);
	int type = 0;
	socklen_t len = sizeof(type);

	if (!(p->flags & F_SOCK_KNOWN)) {
		p->flags |= F_SOCK_KNOWN;
		if (getsockopt(op->sqe.fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
		    (type == SOCK_STREAM || type == SOCK_SEQPACKET))
			p->flags |= F_SOCK_SEQ;
	}
	return p->flags & F_SOCK_SEQ;
}

/*
 * recv and send. MSG_WAITALL on a stream socket: io_uring keeps going until
 * the whole length has moved, and on EOF, an error or a cancellation
 * returns what moved so far; we do the same. A short transfer on a stream
 * socket means the socket buffer was drained (or filled), so waiting for
 * the next edge is safe without trying again first; except for a recv on
 * a socket whose hang-up or error was reported already (@hup, see
 * note_recv), which must try again to find the end of stream.
 */
static int do_recv_send(struct corio__op *op, bool hup)
{
	struct op_priv *p = P(op);
	char *buf = (char *)(uintptr_t)op->sqe.addr;
	size_t len = op->sqe.len;
	int flags = (int)op->sqe.msg_flags | MSG_DONTWAIT;
	ssize_t r;

again:
	if (op->sqe.opcode == IORING_OP_RECV)
		r = recv(op->sqe.fd, buf + p->done, len - p->done, flags);
	else if (op->sqe.addr_len)
		r = sendto(op->sqe.fd, buf + p->done, len - p->done, flags,
			   (const struct sockaddr *)(uintptr_t)op->sqe.addr2, op->sqe.addr_len);
	else
		r = send(op->sqe.fd, buf + p->done, len - p->done, flags);
	if (!(flags & MSG_WAITALL))
		return neg_errno(r);
	if (r > 0) {
		p->done += (size_t)r;
		if (p->done < len && byte_stream(op)) {
			if (hup && op->sqe.opcode == IORING_OP_RECV)
				goto again;
			return -EAGAIN;
		}
		return (int)p->done;
	}
	if (r < 0 && errno == EAGAIN)
		return -EAGAIN;
	return p->done ? (int)p->done : neg_errno(r);
}

/* read, write, readv, writev at @off (-1: the current position, as
 * read(2)), with RWF_* @flags. */
static int do_rw_off(struct corio__op *op, off_t off, int flags)
{
	struct io_uring_sqe *s = &op->sqe;
	struct iovec one, *iov = &one;
	int cnt = 1;

	if (s->opcode == IORING_OP_READ || s->opcode == IORING_OP_WRITE) {
		one.iov_base = (void *)(uintptr_t)s->addr;
		one.iov_len = s->len;
	} else {
		iov = (struct iovec *)(uintptr_t)s->addr;
		if (s->len > IOV_MAX)
			return -EINVAL; /* as the kernel says, without reading the array */
		cnt = (int)s->len;
	}
	if (s->opcode == IORING_OP_READ || s->opcode == IORING_OP_READV)
		return neg_errno(preadv2(s->fd, iov, cnt, off, flags));
	return neg_errno(pwritev2(s->fd, iov, cnt, off, flags));
}

/*
 * At the SQE's offset. io_uring ignores the offset of a pipe or socket;
 * pread(2) refuses it (ESPIPE): then the current position it is. Passing
 * the offset on streams too keeps a file right even when our record of the
 * fd says "stream" wrongly (closed with close(2), number reused).
 */
static int do_rw(struct corio__op *op, int flags)
{
	off_t off = (off_t)op->sqe.off;
	int res = do_rw_off(op, off, flags);

	if (res == -ESPIPE && off != -1)
		res = do_rw_off(op, -1, flags);
	return res;
}

/*
 * read, write, readv, writev on a stream. RWF_NOWAIT makes the call
 * nonblocking without touching the file's flags (sockets, pipes, eventfds
 * support it). A file without it (a tty) gets what io_uring gives it: the
 * plain call, made only once poll says the file is ready, so that it does
 * not block; unless the caller asked for RWF_NOWAIT itself, which such a
 * file refuses with EOPNOTSUPP, with io_uring too.
 */
static int do_rw_stream(struct corio__op *op)
{
	bool wr = op->sqe.opcode == IORING_OP_WRITE || op->sqe.opcode == IORING_OP_WRITEV;
	struct pollfd pfd = {.fd = op->sqe.fd, .events = wr ? POLLOUT : POLLIN};
	int flags = (int)op->sqe.rw_flags;

	if (!(P(op)->flags & F_PLAIN)) {
		int res = do_rw(op, flags | RWF_NOWAIT);

		return res == -EOPNOTSUPP && !(flags & RWF_NOWAIT) ? RES_NEED_PLAIN : res;
	}
	if (poll(&pfd, 1, 0) < 0)
		return -errno;
	if (!pfd.revents)
		return -EAGAIN;
	return do_rw(op, flags);
}

/*
 * A connect in progress, on writability: call connect again, as io_uring
 * does. That is also what tells the socket layer the connect is over (a
 * later connect then says EISCONN); reading SO_ERROR would not.
 */
static int do_connect_again(struct corio__op *op)
{
	if (connect(op->sqe.fd, (const struct sockaddr *)(uintptr_t)op->sqe.addr,
		    (socklen_t)op->sqe.off) == 0)
		return 0;
	switch (errno) {
	case EALREADY:
	case EINPROGRESS:
		return -EAGAIN; /* not yet (the event was for something else) */
	case EISCONN:
		return 0; /* finished by someone else meanwhile */
	default:
		return -errno;
	}
}

/* What io_uring's poll reports beyond the events asked for. */
#define POLL_ALWAYS (POLLERR | POLLHUP | POLLNVAL | POLLRDHUP)

/* One nonblocking attempt; -EAGAIN: wait for readiness. @e: the fd's
 * record, if it has one. */
static int attempt(struct corio__op *op, const struct efd *e)
{
	struct io_uring_sqe *s = &op->sqe;
	int flags = (int)s->msg_flags | MSG_DONTWAIT;

	switch (s->opcode) {
	case IORING_OP_RECV:
	case IORING_OP_SEND:
		return do_recv_send(op, e && e->hup);
	case IORING_OP_RECVMSG:
		return neg_errno(recvmsg(s->fd, (struct msghdr *)(uintptr_t)s->addr, flags));
	case IORING_OP_SENDMSG:
		return neg_errno(sendmsg(s->fd, (const struct msghdr *)(uintptr_t)s->addr, flags));
	case IORING_OP_ACCEPT:
		return neg_errno(accept4(s->fd, (struct sockaddr *)(uintptr_t)s->addr,
					 (socklen_t *)(uintptr_t)s->addr2, (int)s->accept_flags));
	case IORING_OP_CONNECT:
		return do_connect_again(op);
	case IORING_OP_READ:
	case IORING_OP_WRITE:
	case IORING_OP_READV:
	case IORING_OP_WRITEV:
		return do_rw_stream(op);
	default:
		return -EINVAL; /* not a readiness op */
	}
}

/* The blocking calls, on a pool thread. */
static int run_job(struct corio__op *op)
{
	struct io_uring_sqe *s = &op->sqe;
	const char *path = (const char *)(uintptr_t)s->addr;
	struct stat st;

	switch (s->opcode) {
	case IORING_OP_READ:
	case IORING_OP_WRITE:
	case IORING_OP_READV:
	case IORING_OP_WRITEV:
		/* The fd was classified as a file on the loop thread, perhaps
		 * from a record gone stale (closed with close(2) and the number
		 * reused). A socket or pipe here could block this thread for
		 * ever: check (the hop to this thread costs far more than the
		 * fstat) and send it back to wait for readiness instead. */
		if (!(P(op)->flags & F_BLOCKING)) {
			if (fstat(s->fd, &st) < 0)
				return -errno;
			if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
				return RES_NOT_A_FILE;
		}
		return do_rw(op, (int)s->rw_flags);
	case IORING_OP_FSYNC:
		return neg_errno(s->fsync_flags & IORING_FSYNC_DATASYNC ? fdatasync(s->fd)
									: fsync(s->fd));
	case IORING_OP_OPENAT:
		return neg_errno(openat(s->fd, path, (int)s->open_flags, (mode_t)s->len));
	case IORING_OP_CLOSE:
		return neg_errno(close(s->fd));
	case IORING_OP_STATX:
		return neg_errno(statx(s->fd, path, (int)s->statx_flags, s->len,
				       (struct statx *)(uintptr_t)s->off));
	case IORING_OP_FALLOCATE:
		return neg_errno(fallocate(s->fd, (int)s->len, (off_t)s->off, (off_t)s->addr));
	case IORING_OP_UNLINKAT:
		return neg_errno(unlinkat(s->fd, path, (int)s->unlink_flags));
	case IORING_OP_RENAMEAT:
		return neg_errno(renameat2(s->fd, path, (int)s->len,
					   (const char *)(uintptr_t)s->addr2, s->rename_flags));
	case IORING_OP_MKDIRAT:
		return neg_errno(mkdirat(s->fd, path, (mode_t)s->len));
	default:
		return -EOPNOTSUPP;
	}
}

/* -------------------------------------------------------- starting ops */

static void to_pool(corio_loop *loop, struct corio__op *op)
{
	int err;

	P(op)->state = ST_POOL;
	err = corio__tpool_submit(&B(loop)->pool, op);
	if (err)
		done_now(loop, op, err);
}

/* Queue @op on its fd until epoll says ready. Its attempt just failed with
 * EAGAIN (or it is a poll that found nothing ready). */
static void wait_on(corio_loop *loop, struct corio__op *op)
{
	struct ep *b = B(loop);
	struct efd *e = efd_of(b, op->sqe.fd);
	int q = queue_of(op->sqe.opcode), err;

	if (!e) {
		/* poll(2) ignores negative fds; io_uring says EBADF. */
		done_now(loop, op, op->sqe.fd < 0 ? -EBADF : -ENOMEM);
		return;
	}
	err = reg(b, e);
	if (err == -EPERM) {
		/* epoll cannot wait on this file (e.g. a character device
		 * without poll support): block on the pool if it is a read or
		 * write; a poll on it would wait for ever, as io_uring's would. */
		e->kind = KIND_FILE;
		if (q != Q_POLL) {
			P(op)->flags |= F_BLOCKING;
			to_pool(loop, op);
		} else {
			P(op)->state = ST_ORPHAN;
			corio__list_push_back(&b->orphans, &op->link);
		}
		return;
	}
	if (err) {
		done_now(loop, op, err);
		return;
	}
	P(op)->state = ST_WAIT;
	corio__list_push_back(&e->q[q], &op->link);
	if (b->verify_after && !corio__list_linked(&e->vlink)) {
		e->since = b->now;
		corio__list_push_back(&b->verify, &e->vlink);
	}
}

/*
 * The caller said not to wait (MSG_DONTWAIT, RWF_NOWAIT): io_uring then
 * returns -EAGAIN rather than waiting for readiness, and so do we.
 */
static bool no_wait(const struct corio__op *op)
{
	switch (op->sqe.opcode) {
	case IORING_OP_RECV:
	case IORING_OP_SEND:
	case IORING_OP_RECVMSG:
	case IORING_OP_SENDMSG:
		return op->sqe.msg_flags & MSG_DONTWAIT;
	case IORING_OP_READ:
	case IORING_OP_WRITE:
	case IORING_OP_READV:
	case IORING_OP_WRITEV:
		return op->sqe.rw_flags & RWF_NOWAIT;
	default:
		return false;
	}
}

/*
 * A recv that came back short on a TCP socket emptied its receive queue:
 * any byte that arrives later raises a new edge. Until that edge the next
 * recv need not try first (it would get EAGAIN: one system call for
 * nothing per message in a request-reply exchange). Not for datagrams or
 * records, where short means one message of several, nor at end of stream,
 * which raises no further edge: once an event has said the peer hung up or
 * the socket has an error (e->hup, kept until the record is reset for a new
 * file), the FIN or the error is queued behind the data, and the recv after
 * a short one must try, or it would wait for an edge that never comes.
 */
static bool plain_recv(const struct corio__op *op)
{
	return op->sqe.opcode == IORING_OP_RECV &&
	       !(op->sqe.msg_flags & (MSG_PEEK | MSG_WAITALL | MSG_DONTWAIT));
}

static void note_recv(struct efd *e, const struct corio__op *op, int res)
{
	if (!e || !e->registered || !plain_recv(op) || res <= 0 || (unsigned)res >= op->sqe.len)
		return;
	if (e->stream < 0) {
		int type = 0;
		socklen_t len = sizeof(type);

		e->stream = getsockopt(e->fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
			    type == SOCK_STREAM;
	}
	e->drained = e->stream && !e->hup;
}

/* Readiness ops: behind earlier waiters, or try now. */
static void start_ready(corio_loop *loop, struct corio__op *op)
{
	struct efd *e = get_efd(B(loop), op->sqe.fd);
	int res;

	if (e && !no_wait(op) &&
	    (!corio__list_empty(&e->q[queue_of(op->sqe.opcode)]) ||
	     (e->drained && plain_recv(op)))) {
		wait_on(loop, op);
		return;
	}
	res = attempt(op, e);
	note_recv(e, op, res);
	if (res == -EAGAIN && !no_wait(op))
		wait_on(loop, op);
	else
		done_now(loop, op, res);
}

/*
 * read/write/readv/writev: a file goes to the pool, a stream waits for
 * readiness. Telling them apart costs an fstat the first time an fd is
 * seen; the answer is kept in the fd's record, which is reset when corio
 * closes or creates that fd. A stale answer is safe either way: "stream"
 * on a file just does a nonblocking read that works, and "file" on a stream
 * is caught by the pool thread's own check (run_job).
 */
static void start_rw(corio_loop *loop, struct corio__op *op)
{
	struct ep *b = B(loop);
	struct efd *e = get_efd(b, op->sqe.fd);
	uint8_t kind = e ? e->kind : KIND_UNKNOWN;
	struct stat st;
	int res, err;

	if (kind == KIND_UNKNOWN) {
		if (fstat(op->sqe.fd, &st) < 0) {
			done_now(loop, op, -errno);
			return;
		}
		kind = S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)   ? KIND_FILE
		       : S_ISSOCK(st.st_mode) || S_ISFIFO(st.st_mode) ? KIND_SOCKET
								    : KIND_STREAM;
		e = efd_of(b, op->sqe.fd);
		if (e)
			e->kind = kind; /* else: ask again next time */
	}
	if (kind == KIND_FILE) {
		/* RWF_NOWAIT from the caller: it cannot block, do it here. */
		if (no_wait(op))
			done_now(loop, op, do_rw(op, (int)op->sqe.rw_flags));
		else
			to_pool(loop, op);
		return;
	}
	if (e && !corio__list_empty(&e->q[queue_of(op->sqe.opcode)]) && !no_wait(op)) {
		wait_on(loop, op);
		return;
	}
	res = attempt(op, e);
	if (res == RES_NEED_PLAIN) {
		/* No RWF_NOWAIT for this file (a tty, say): readiness, then
		 * the plain call (do_rw_stream), if epoll can wait on it.
		 * If it cannot, the call may block: only a pool thread may. */
		e = efd_of(b, op->sqe.fd);
		err = e ? reg(b, e) : -ENOMEM;
		if (err == -EPERM) {
			e->kind = KIND_FILE;
			P(op)->flags |= F_BLOCKING;
			to_pool(loop, op);
			return;
		}
		if (err) {
			done_now(loop, op, err);
			return;
		}
		P(op)->flags |= F_PLAIN;
		res = attempt(op, e);
	}
	if (res == -EAGAIN && !no_wait(op))
		wait_on(loop, op);
	else
		done_now(loop, op, res);
}

/* Make @fd nonblocking for accept and connect: a blocking socket would
 * block the loop in the system call. 0 or -errno; *old gets the flags. */
static int set_nonblock(int fd, int *old)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return -errno;
	*old = fl;
	if (fl & O_NONBLOCK)
		return 0;
	return fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ? -errno : 1;
}

/*
 * accept. The listening socket is left nonblocking: putting the flag back
 * after every accept would cost two system calls per connection, and a
 * listener served by corio is rarely used with blocking calls as well.
 */
static void start_accept(corio_loop *loop, struct corio__op *op)
{
	int old, err = set_nonblock(op->sqe.fd, &old);

	if (err < 0)
		done_now(loop, op, err);
	else
		start_ready(loop, op);
}

/*
 * connect: nonblocking connect, then wait for writability and connect
 * again to learn the outcome. A socket that was blocking gets its flags
 * back when the connect ends (connect is rare, and a connected socket is
 * often handed to code that expects the flags it set).
 */
static void start_connect(corio_loop *loop, struct corio__op *op)
{
	struct op_priv *p = P(op);
	struct efd *e;
	int old, err = set_nonblock(op->sqe.fd, &old);

	if (err < 0) {
		done_now(loop, op, err);
		return;
	}
	if (err == 1) {
		p->flags |= F_RESTORE_FL;
		p->saved_fl = old;
	}
	if (connect(op->sqe.fd, (const struct sockaddr *)(uintptr_t)op->sqe.addr,
		    (socklen_t)op->sqe.off) == 0) {
		done_now(loop, op, 0);
		return;
	}
	if (errno != EINPROGRESS) {
		/* AF_UNIX with a full backlog says EAGAIN: returned as it is. */
		done_now(loop, op, -errno);
		return;
	}
	/* A connecting socket is usually new: make sure epoll knows this
	 * file, whatever our record says (ADD answers EEXIST if it does). */
	e = get_efd(B(loop), op->sqe.fd);
	if (e)
		e->registered = false;
	wait_on(loop, op);
}

/* poll: report what is ready now, or wait for an edge. */
static void start_poll(corio_loop *loop, struct corio__op *op)
{
	unsigned want = op->sqe.poll32_events;
	struct pollfd pfd = {.fd = op->sqe.fd, .events = (short)(want | POLLRDHUP)};

	/* Always look first: pollers wait for different events, so one
	 * waiting says nothing about another's (and with edge triggering, an
	 * fd that is ready already would never report it). */
	if (poll(&pfd, 1, 0) < 0) {
		done_now(loop, op, -errno);
		return;
	}
	if (pfd.revents & POLLNVAL) {
		done_now(loop, op, -EBADF);
		return;
	}
	if (pfd.revents & (want | POLL_ALWAYS)) {
		done_now(loop, op, pfd.revents & (int)(want | POLL_ALWAYS));
		return;
	}
	wait_on(loop, op);
}

/*
 * An fd with waiters is being closed. io_uring's waiting ops hold their own
 * reference to the file, so closing the number does not end them: they go
 * on until the file is ready (the peer sends, or hangs up), cancelled, or
 * timed out. We keep that: the waiters move to a duplicate of the fd, which
 * is closed when the last of them leaves. If no duplicate can be had
 * (EMFILE), they are orphaned: they wait until cancelled.
 */
static void keep_open(struct ep *b, struct efd *e)
{
	int d = fcntl(e->fd, F_DUPFD_CLOEXEC, 0);
	struct efd *de = d >= 0 ? efd_of(b, d) : NULL;
	struct corio_list *n;

	if (!de) {
		if (d >= 0)
			close(d);
		orphan_waiters(b, e);
		return;
	}
	fresh_fd(b, d, e->kind);
	for (int i = 0; i < NQUEUES; i++) {
		for (n = e->q[i].next; n != &e->q[i]; n = n->next)
			corio__container_of(n, struct corio__op, link)->sqe.fd = d;
		corio__list_splice(&de->q[i], &e->q[i]);
	}
	de->owned = true;
	if (reg(b, de) < 0) {
		orphan_waiters(b, de);
		maybe_release(b, de);
	}
}

/*
 * close. The fd's record goes first (the number may be reused as soon as
 * the close happens). Sockets and pipes known as such close inline: their
 * close does not block (except a socket with SO_LINGER, on which io_uring
 * blocks too). Other fds close on the pool: a file's close may flush (NFS),
 * a serial tty's waits for its output to drain.
 */
static void start_close(corio_loop *loop, struct corio__op *op)
{
	struct ep *b = B(loop);
	struct efd *e = get_efd(b, op->sqe.fd);
	bool inline_ok = false;

	if (e) {
		if (has_waiters(e) && !e->owned)
			keep_open(b, e);
		inline_ok = e->kind == KIND_SOCKET;
		unregister(b, e);
		orphan_waiters(b, e); /* only if keep_open could not move them */
		efd_reset(e);
	}
	if (inline_ok)
		done_now(loop, op, neg_errno(close(op->sqe.fd)));
	else
		to_pool(loop, op);
}

static void start_socket(corio_loop *loop, struct corio__op *op)
{
	struct io_uring_sqe *s = &op->sqe;

	if (s->rw_flags) {
		done_now(loop, op, -EINVAL); /* as io_uring: no flags defined */
		return;
	}
	done_now(loop, op, neg_errno(socket(s->fd, (int)s->off, (int)s->len)));
}

/* What an SQE asks that epoll cannot do, beyond its opcode. */
static bool sqe_supported(const struct io_uring_sqe *s)
{
	if (s->flags & ~IOSQE_ASYNC) /* fixed files, links, drain, buffer select, skip */
		return false;
	switch (s->opcode) {
	case IORING_OP_RECV:
	case IORING_OP_RECVMSG:
		return !(s->ioprio & (IORING_RECV_MULTISHOT | IORING_RECVSEND_FIXED_BUF));
	case IORING_OP_SEND:
	case IORING_OP_SENDMSG:
		return !(s->ioprio & IORING_RECVSEND_FIXED_BUF);
	case IORING_OP_ACCEPT:
		return !(s->ioprio & IORING_ACCEPT_MULTISHOT) && !s->file_index;
	case IORING_OP_POLL_ADD:
		return !(s->len & (IORING_POLL_ADD_MULTI | IORING_POLL_UPDATE_EVENTS |
				   IORING_POLL_UPDATE_USER_DATA));
	case IORING_OP_OPENAT:
	case IORING_OP_SOCKET:
	case IORING_OP_CLOSE:
		return !s->file_index; /* direct descriptors */
	default:
		return true;
	}
}

static bool ep_supported(corio_loop *loop, int opcode)
{
	(void)loop;
	switch (opcode) {
	case IORING_OP_NOP:
	case IORING_OP_READ:
	case IORING_OP_WRITE:
	case IORING_OP_READV:
	case IORING_OP_WRITEV:
	case IORING_OP_FSYNC:
	case IORING_OP_OPENAT:
	case IORING_OP_CLOSE:
	case IORING_OP_STATX:
	case IORING_OP_FALLOCATE:
	case IORING_OP_UNLINKAT:
	case IORING_OP_RENAMEAT:
	case IORING_OP_MKDIRAT:
	case IORING_OP_SOCKET:
	case IORING_OP_ACCEPT:
	case IORING_OP_CONNECT:
	case IORING_OP_RECV:
	case IORING_OP_SEND:
	case IORING_OP_RECVMSG:
	case IORING_OP_SENDMSG:
	case IORING_OP_SHUTDOWN:
	case IORING_OP_POLL_ADD:
		return true;
	default:
		return false;
	}
}

static void ep_submit(corio_loop *loop, struct corio__op *op)
{
	struct io_uring_sqe *s = &op->sqe;

	memset(P(op), 0, sizeof(struct op_priv));
	if (CORIO_UNLIKELY(!ep_supported(loop, s->opcode) || !sqe_supported(s))) {
		corio__op_complete_inline(loop, op, -EOPNOTSUPP);
		return;
	}
	if (CORIO_UNLIKELY(s->fd >= CORIO_FD_DIRECT)) {
		corio__op_complete_inline(loop, op, -EBADF); /* no direct descriptors here */
		return;
	}
	switch (s->opcode) {
	case IORING_OP_NOP:
		corio__op_complete_inline(loop, op, 0);
		break;
	case IORING_OP_RECV:
	case IORING_OP_SEND:
	case IORING_OP_RECVMSG:
	case IORING_OP_SENDMSG:
		start_ready(loop, op);
		break;
	case IORING_OP_READ:
	case IORING_OP_WRITE:
	case IORING_OP_READV:
	case IORING_OP_WRITEV:
		start_rw(loop, op);
		break;
	case IORING_OP_ACCEPT:
		start_accept(loop, op);
		break;
	case IORING_OP_CONNECT:
		start_connect(loop, op);
		break;
	case IORING_OP_POLL_ADD:
		start_poll(loop, op);
		break;
	case IORING_OP_CLOSE:
		start_close(loop, op);
		break;
	case IORING_OP_SOCKET:
		start_socket(loop, op);
		break;
	case IORING_OP_SHUTDOWN:
		done_now(loop, op, neg_errno(shutdown(s->fd, (int)s->len)));
		break;
	default: /* fsync, openat, statx, fallocate, unlinkat, renameat, mkdirat */
		to_pool(loop, op);
		break;
	}
}

/* -------------------------------------------------------- cancellation */

/*
 * A waiting op leaves its queue at once (nothing touches its buffers after
 * this) and completes with -ECANCELED (or, for MSG_WAITALL, with the bytes
 * it already moved, as io_uring does) at the next poll: like io_uring's, the
 * completion of a cancellation comes from the loop, never from inside the
 * cancel call, so a fiber stays suspended in its I/O call until then. A
 * pool job that has not started is taken back; one that is running cannot
 * be interrupted, and its real result is delivered when it ends. An op
 * whose result is known already (ST_DONE) is delivered anyway.
 */
static void ep_cancel(corio_loop *loop, struct corio__op *op)
{
	struct ep *b = B(loop);
	struct op_priv *p = P(op);
	struct efd *e;
	int res = p->done && op->sqe.opcode != IORING_OP_CONNECT ? (int)p->done : -ECANCELED;

	switch (p->state) {
	case ST_WAIT:
		e = get_efd(b, op->sqe.fd);
		corio__list_remove(&op->link);
		done_later(b, op, res);
		maybe_release(b, e);
		break;
	case ST_ORPHAN:
		corio__list_remove(&op->link);
		done_later(b, op, res);
		break;
	case ST_POOL:
		if (corio__tpool_cancel(&b->pool, op))
			done_later(b, op, -ECANCELED);
		else
			p->canceled = true; /* for a read that comes back (drain_wakes) */
		break;
	default:
		break;
	}
}

/* -------------------------------------------------------------- events */

/* Retry a queue from the front until an op gets EAGAIN. Whether any op
 * moved forward. */
static bool retry(struct ep *b, struct efd *e, struct corio_list *q)
{
	struct corio_list *n;
	bool moved = false;

	while ((n = q->next) != q) {
		struct corio__op *op = corio__container_of(n, struct corio__op, link);
		int res = attempt(op, e);

		if (res == RES_NEED_PLAIN) {
			/* Queued behind others before it could find out; the
			 * fd is registered, so poll tells the truth about it. */
			P(op)->flags |= F_PLAIN;
			res = attempt(op, e);
		}

		if (res == -EAGAIN)
			break;
		note_recv(e, op, res);
		corio__list_remove(n);
		done_later(b, op, res);
		moved = true;
	}
	return moved;
}

static bool wake_pollers(struct ep *b, struct corio_list *q, uint32_t ev)
{
	struct corio_list *n, *next;
	bool moved = false;

	for (n = q->next; n != q; n = next) {
		struct corio__op *op = corio__container_of(n, struct corio__op, link);
		uint32_t got = ev & (op->sqe.poll32_events | POLL_ALWAYS);

		next = n->next;
		if (!got)
			continue;
		corio__list_remove(n);
		done_later(b, op, (int)got);
		moved = true;
	}
	return moved;
}

static void on_event(struct ep *b, int fd, uint32_t ev)
{
	struct efd *e = get_efd(b, fd);
	bool moved = false;

	if (!e)
		return; /* a number we no longer track */
	if (ev & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
		e->hup = true;
	if (ev & (EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
		e->drained = false;
		moved |= retry(b, e, &e->q[Q_READ]);
	}
	if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR))
		moved |= retry(b, e, &e->q[Q_WRITE]);
	if (!corio__list_empty(&e->q[Q_POLL]))
		moved |= wake_pollers(b, &e->q[Q_POLL], ev);
	/* Progress proves the registration; an event that moved nothing
	 * (it may come from a stale registration of an older file) does not. */
	if (moved) {
		corio__list_remove(&e->vlink);
		if (has_waiters(e) && b->verify_after) {
			e->since = b->now;
			corio__list_push_back(&b->verify, &e->vlink);
		}
	}
	maybe_release(b, e);
}

/*
 * Check the registration of fds that have waited verify_after without
 * progress (see the top of the file). MOD on a registered ET fd re-arms
 * it: if it is ready, an event follows. ENOENT: the file under this number
 * is not registered (the number was closed and reused): register it, or,
 * if epoll refuses the new file (a regular file), move its reads and writes
 * to the pool. EBADF: the number is closed: the waiters' file is gone.
 */
/* Reads and writes waiting on a number that now names a file epoll
 * refuses: the pool. (Socket calls waiting there were for a file that is
 * gone: they are left to be orphaned.) */
static void move_rw_to_pool(corio_loop *loop, struct corio_list *q)
{
	struct corio_list *n, *next;

	for (n = q->next; n != q; n = next) {
		struct corio__op *op = corio__container_of(n, struct corio__op, link);
		uint8_t opc = op->sqe.opcode;

		next = n->next;
		if (opc != IORING_OP_READ && opc != IORING_OP_WRITE && opc != IORING_OP_READV &&
		    opc != IORING_OP_WRITEV)
			continue;
		corio__list_remove(n);
		P(op)->flags |= F_BLOCKING;
		to_pool(loop, op);
	}
}

static void sweep(corio_loop *loop, struct ep *b)
{
	struct corio_list *n;
	int err;

	while ((n = b->verify.next) != &b->verify) {
		struct efd *e = corio__container_of(n, struct efd, vlink);
		struct epoll_event ev = {.events = REG_EVENTS, .data.u64 = (uint64_t)e->fd};

		if (e->since + b->verify_after > b->now)
			break;
		corio__list_remove(n);
		if (!has_waiters(e) || epoll_ctl(b->epfd, EPOLL_CTL_MOD, e->fd, &ev) == 0)
			continue;
		err = -errno;
		if (err == -ENOENT) {
			e->registered = false;
			err = reg(b, e);
			if (!err)
				continue;
		}
		if (err == -EPERM) {
			e->kind = KIND_FILE;
			move_rw_to_pool(loop, &e->q[Q_READ]);
			move_rw_to_pool(loop, &e->q[Q_WRITE]);
		}
		orphan_waiters(b, e);
		efd_reset(e);
	}
}

/* Pool jobs that finished, and wakes from other threads. */
static void drain_wakes(corio_loop *loop, struct ep *b)
{
	struct corio_list jobs, *n;
	uint64_t v;

	/*
	 * Read the counter, then clear the flag (libuv's uv__async_io does
	 * the same). The other order loses wakes: a waker that finds the flag
	 * clear and writes between the two would have its write consumed
	 * while its flag stays set, and every later wake would be skipped.
	 * The clear is an exchange so that it synchronises with every waker's
	 * exchange before it: what a waker published before its wake is
	 * visible to whatever the loop does after this.
	 */
	if (read(b->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		corio__log("epoll: eventfd read: %s", strerror(errno));
	atomic_exchange(&b->wake_pending, false);
	corio__list_init(&jobs);
	corio__tpool_reap(&b->pool, &jobs);
	while ((n = corio__list_pop_front(&jobs))) {
		struct corio__op *op = corio__container_of(n, struct corio__op, link);
		int res = corio__tpool_result(op);

		if (res == RES_NOT_A_FILE) {
			struct efd *e = get_efd(b, op->sqe.fd);

			if (e)
				e->kind = KIND_UNKNOWN; /* fstat it again */
			if (P(op)->canceled) {
				done_later(b, op, -ECANCELED); /* nothing was read */
				continue;
			}
			P(op)->state = ST_NONE;
			start_rw(loop, op); /* queues, or completes it (inline form) */
			continue;
		}
		done_later(b, op, res);
	}
}

static int wait_events(struct ep *b, int64_t timeout)
{
	struct timespec ts;
	int64_t ms;

	/*
	 * epoll_pwait2 (5.11) takes the timeout in nanoseconds, so a 100 us
	 * timer sleeps 100 us (plus timer slack), not a whole millisecond.
	 * epoll_wait takes milliseconds: round up, so that no timer is ever
	 * reported due before its time (the loop would turn for nothing).
	 */
	if (timeout > 0 && b->pwait2) {
		ts.tv_sec = timeout / CORIO_SEC;
		ts.tv_nsec = timeout % CORIO_SEC;
		return epoll_pwait2(b->epfd, b->events, EVENTS, &ts, NULL);
	}
	if (timeout > 0) {
		ms = (timeout + CORIO_MSEC - 1) / CORIO_MSEC;
		return epoll_wait(b->epfd, b->events, EVENTS, ms > INT_MAX ? INT_MAX : (int)ms);
	}
	return epoll_wait(b->epfd, b->events, EVENTS, timeout < 0 ? -1 : 0);
}

/* Returns how many completions (and wakes) it delivered, like io_uring's
 * count of CQEs reaped. */
static int ep_poll(corio_loop *loop, int64_t timeout)
{
	struct ep *b = B(loop);
	int n, events = 0;

	b->now = corio_now();
	if (!corio__list_empty(&b->done))
		timeout = 0; /* cancellations to deliver */
	if (!corio__list_empty(&b->verify)) {
		/* Wake up in time to check the oldest unproven registration. */
		struct efd *e = corio__container_of(b->verify.next, struct efd, vlink);
		int64_t due = e->since + b->verify_after - b->now;

		if (due < 0)
			due = 0;
		if (timeout < 0 || timeout > due)
			timeout = due;
	}
	loop->stats.enters++;
	n = wait_events(b, timeout);
	if (n < 0) {
		if (errno != EINTR)
			return -errno;
		n = 0;
	}
	if (timeout != 0)
		b->now = corio_now();
	for (int i = 0; i < n; i++) {
		uint64_t tag = b->events[i].data.u64;

		if (tag == WAKE_TAG) {
			drain_wakes(loop, b);
			events++;
		} else
			on_event(b, (int)tag, b->events[i].events);
	}
	if (!corio__list_empty(&b->verify))
		sweep(loop, b);
	return events + deliver(loop, b);
}

/* --------------------------------------------------------- set-up */

static __thread char why_buf[160];

/* A number from the environment in [min, max], or @def if unset. */
static int env_num(const char *name, unsigned long min, unsigned long max, unsigned long def,
		   unsigned long *out, const char **why)
{
	const char *env = getenv(name);
	char *end;

	*out = def;
	if (!env || !*env)
		return 0;
	errno = 0;
	*out = strtoul(env, &end, 10);
	if (errno || *end || *out < min || *out > max || *env == '-') {
		snprintf(why_buf, sizeof(why_buf), "%s=%.40s is not a number from %lu to %lu",
			 name, env, min, max);
		*why = why_buf;
		return -EINVAL;
	}
	return 0;
}

static int ep_init(corio_loop *loop, const struct corio_loop_opts *opts, const char **why)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAKE_TAG};
	struct timespec zero = {0, 0};
	struct ep *b;
	unsigned long threads, verify_ms;
	int err;

	(void)opts;
	err = env_num("CORIO_EPOLL_THREADS", 1, POOL_MAX, POOL_DEFAULT, &threads, why);
	if (!err)
		err = env_num("CORIO_EPOLL_VERIFY_MS", 0, 3600000, VERIFY_DEFAULT_MS, &verify_ms,
			      why);
	if (err)
		return err;
	b = calloc(1, sizeof(*b));
	if (!b) {
		*why = "out of memory";
		return -ENOMEM;
	}
	b->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (b->epfd < 0) {
		err = -errno;
		*why = "epoll_create1 failed";
		goto fail_epoll;
	}
	b->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (b->evfd < 0) {
		err = -errno;
		*why = "eventfd failed";
		goto fail_eventfd;
	}
	if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->evfd, &ev) < 0) {
		err = -errno;
		*why = "cannot watch the eventfd";
		goto fail_pool;
	}
	err = corio__tpool_init(&b->pool, (unsigned)threads, b->evfd, run_job);
	if (err) {
		*why = "out of memory";
		goto fail_pool;
	}
	/* ENOSYS before 5.11; EPERM under seccomp profiles that predate it. */
	b->pwait2 = epoll_pwait2(b->epfd, b->events, 1, &zero, NULL) >= 0;
	corio__list_init(&b->done);
	corio__list_init(&b->orphans);
	corio__list_init(&b->verify);
	b->verify_after = (int64_t)verify_ms * CORIO_MSEC;
	atomic_init(&b->wake_pending, false);
	loop->be_state = b;
	return 0;

fail_pool:
	close(b->evfd);
fail_eventfd:
	close(b->epfd);
fail_epoll:
	free(b);
	return err;
}

static void ep_fini(corio_loop *loop)
{
	struct ep *b = B(loop);

	corio__tpool_fini(&b->pool);
	for (size_t i = 0; i < b->nfds; i++) {
		if (b->fds[i] && b->fds[i]->owned)
			close((int)i); /* cannot happen: its waiters are gone */
		free(b->fds[i]);
	}
	free(b->fds);
	close(b->evfd);
	close(b->epfd);
	free(b);
	loop->be_state = NULL;
}

void corio__epoll_wake(corio_loop *loop)
{
	struct ep *b = B(loop);
	uint64_t one = 1;

	/* One write until the loop has seen it: a busy loop costs nothing more. */
	if (atomic_exchange(&b->wake_pending, true))
		return;
	while (write(b->evfd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
}

int corio__epoll_set_pool_hook(corio_loop *loop, void (*fn)(void *), void *arg)
{
	if (!loop || loop->be != &corio__backend_epoll)
		return -EINVAL;
	corio__tpool_set_hook(&B(loop)->pool, fn, arg);
	return 0;
}

/* Cross-thread wake: the eventfd (there is no ring to ring). */
static void ep_wake(corio_loop *target, corio_loop *sender)
{
	(void)sender;
	corio__epoll_wake(target);
}

/* Nothing is ever left queued for the next poll: wakes go out at once. */
static void ep_flush(corio_loop *loop)
{
	(void)loop;
}

const struct corio__backend corio__backend_epoll = {
	.name = "epoll",
	.init = ep_init,
	.fini = ep_fini,
	.submit = ep_submit,
	.cancel = ep_cancel,
	.poll = ep_poll,
	.supported = ep_supported,
	.wake = ep_wake,
	.flush = ep_flush,
};
