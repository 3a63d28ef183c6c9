/*
 * The typed operations: each is one prep function that describes it in an
 * io_uring SQE (with liburing's helpers), and one DEFINE_OP line that makes
 * its three public forms:
 *
 *   corio_<op>(args)                 fiber call
 *   corio_<op>_until(args, deadline) fiber call with a deadline
 *   corio_async_<op>(loop, args, cb, user)
 *
 * Both backends read the same SQE: io_uring copies it into the ring, epoll
 * decodes it (backend/epoll.c). Adding an op means a prep function here, a
 * DEFINE_OP line, declarations in corio/io.h and corio/async.h, and its case
 * in the epoll backend.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "op.h"

static unsigned clamp_len(size_t len)
{
	return len > CORIO__MAX_RW ? CORIO__MAX_RW : (unsigned)len;
}

/* io_uring takes the offset as u64; -1 (all ones) is "current position". */
static uint64_t off64(int64_t off)
{
	return off < 0 ? (uint64_t)-1 : (uint64_t)off;
}

static void prep_nop(struct io_uring_sqe *sqe)
{
	io_uring_prep_nop(sqe);
}

static void prep_read(struct io_uring_sqe *sqe, int fd, void *buf, size_t len, int64_t off)
{
	io_uring_prep_read(sqe, fd, buf, clamp_len(len), off64(off));
}

static void prep_write(struct io_uring_sqe *sqe, int fd, const void *buf, size_t len, int64_t off)
{
	io_uring_prep_write(sqe, fd, buf, clamp_len(len), off64(off));
}

static void prep_readv(struct io_uring_sqe *sqe, int fd, const struct iovec *iov, int iovcnt,
		       int64_t off)
{
	io_uring_prep_readv(sqe, fd, iov, (unsigned)iovcnt, off64(off));
}

static void prep_writev(struct io_uring_sqe *sqe, int fd, const struct iovec *iov, int iovcnt,
			int64_t off)
{
	io_uring_prep_writev(sqe, fd, iov, (unsigned)iovcnt, off64(off));
}

static void prep_fsync(struct io_uring_sqe *sqe, int fd)
{
	io_uring_prep_fsync(sqe, fd, 0);
}

static void prep_fdatasync(struct io_uring_sqe *sqe, int fd)
{
	io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
}

static void prep_openat(struct io_uring_sqe *sqe, int dfd, const char *path, int flags,
			mode_t mode)
{
	io_uring_prep_openat(sqe, dfd, path, flags, mode);
}

static void prep_close(struct io_uring_sqe *sqe, int fd)
{
	io_uring_prep_close(sqe, fd);
}

static void prep_statx(struct io_uring_sqe *sqe, int dfd, const char *path, int flags,
		       unsigned mask, struct statx *st)
{
	io_uring_prep_statx(sqe, dfd, path, flags, mask, st);
}

static void prep_fallocate(struct io_uring_sqe *sqe, int fd, int mode, int64_t off, int64_t len)
{
	io_uring_prep_fallocate(sqe, fd, mode, (off_t)off, (off_t)len);
}

static void prep_unlinkat(struct io_uring_sqe *sqe, int dfd, const char *path, int flags)
{
	io_uring_prep_unlinkat(sqe, dfd, path, flags);
}

static void prep_renameat(struct io_uring_sqe *sqe, int olddfd, const char *oldpath, int newdfd,
			  const char *newpath, unsigned flags)
{
	io_uring_prep_renameat(sqe, olddfd, oldpath, newdfd, newpath, (int)flags);
}

static void prep_mkdirat(struct io_uring_sqe *sqe, int dfd, const char *path, mode_t mode)
{
	io_uring_prep_mkdirat(sqe, dfd, path, mode);
}

static void prep_socket(struct io_uring_sqe *sqe, int domain, int type, int protocol)
{
	io_uring_prep_socket(sqe, domain, type, protocol, 0);
}

static void prep_accept(struct io_uring_sqe *sqe, int fd, struct sockaddr *addr,
			socklen_t *addrlen, int flags)
{
	io_uring_prep_accept(sqe, fd, addr, addrlen, flags);
}

static void prep_connect(struct io_uring_sqe *sqe, int fd, const struct sockaddr *addr,
			 socklen_t addrlen)
{
	io_uring_prep_connect(sqe, fd, addr, addrlen);
}

static void prep_recv(struct io_uring_sqe *sqe, int fd, void *buf, size_t len, int flags)
{
	io_uring_prep_recv(sqe, fd, buf, clamp_len(len), flags);
}

static void prep_send(struct io_uring_sqe *sqe, int fd, const void *buf, size_t len, int flags)
{
	io_uring_prep_send(sqe, fd, buf, clamp_len(len), flags | MSG_NOSIGNAL);
}

static void prep_recvmsg(struct io_uring_sqe *sqe, int fd, struct msghdr *msg, int flags)
{
	io_uring_prep_recvmsg(sqe, fd, msg, (unsigned)flags);
}

static void prep_sendmsg(struct io_uring_sqe *sqe, int fd, const struct msghdr *msg, int flags)
{
	io_uring_prep_sendmsg(sqe, fd, msg, (unsigned)(flags | MSG_NOSIGNAL));
}

static void prep_shutdown(struct io_uring_sqe *sqe, int fd, int how)
{
	io_uring_prep_shutdown(sqe, fd, how);
}

static void prep_poll(struct io_uring_sqe *sqe, int fd, unsigned events)
{
	io_uring_prep_poll_add(sqe, fd, events);
}

#define UNPAREN(...) __VA_ARGS__

#define DEFINE_OP(ret, name, params, args)                                                   \
	ret corio_##name##_until(UNPAREN params, int64_t deadline)                           \
	{                                                                                    \
		struct corio__op op;                                                         \
		prep_##name(&op.sqe, UNPAREN args);                                          \
		return corio__fiber_io(&op, deadline);                                       \
	}                                                                                    \
	ret corio_##name(UNPAREN params)                                                     \
	{                                                                                    \
		return corio_##name##_until(UNPAREN args, 0);                                \
	}                                                                                    \
	corio_req corio_async_##name(corio_loop *loop, UNPAREN params, corio_cb cb, void *user) \
	{                                                                                    \
		int err;                                                                     \
		struct corio__op *op = corio__async_op(loop, cb, &err);                      \
		if (!op)                                                                     \
			return err;                                                          \
		prep_##name(&op->sqe, UNPAREN args);                                         \
		return corio__async_start(loop, op, cb, user);                               \
	}

DEFINE_OP(ssize_t, read, (int fd, void *buf, size_t len, int64_t off), (fd, buf, len, off))
DEFINE_OP(ssize_t, write, (int fd, const void *buf, size_t len, int64_t off), (fd, buf, len, off))
DEFINE_OP(ssize_t, readv, (int fd, const struct iovec *iov, int iovcnt, int64_t off),
	  (fd, iov, iovcnt, off))
DEFINE_OP(ssize_t, writev, (int fd, const struct iovec *iov, int iovcnt, int64_t off),
	  (fd, iov, iovcnt, off))
DEFINE_OP(int, fsync, (int fd), (fd))
DEFINE_OP(int, fdatasync, (int fd), (fd))
DEFINE_OP(int, openat, (int dfd, const char *path, int flags, mode_t mode),
	  (dfd, path, flags, mode))

int corio__close_now(int fd)
{
	corio_loop *loop = corio__tls_loop;

	if (!corio_fd_is_direct(fd))
		return close(fd) ? -errno : 0;
	if (!loop || !(loop->caps & CORIO__CAP_DIRECT))
		return -EBADF;
	return loop->be->direct->close_now(loop, (unsigned)(fd - CORIO_FD_DIRECT));
}

/*
 * Close is not refused to a cancelled fiber (a cancellation pending, or its
 * loop being destroyed, when every call returns -ECANCELED): a close that
 * never ran would leak the descriptor and leave a peer waiting for an end of
 * stream. Such a fiber closes synchronously (close(2) does not block on
 * sockets and regular files), and its cancellation stays pending for its
 * next call. A close cancelled or timed out in the kernel did not run (once
 * it runs, its own result comes back), so it is done here too.
 */
int corio_close_until(int fd, int64_t deadline)
{
	corio_fiber *f = corio__self();
	struct corio__op op;
	int err;

	if (f && (f->cancel_pending || f->loop->closing))
		return corio__close_now(fd);
	prep_close(&op.sqe, fd);
	err = corio__fiber_io(&op, deadline);
	if (err == -ECANCELED || err == -ETIMEDOUT)
		err = corio__close_now(fd);
	return err;
}

int corio_close(int fd)
{
	return corio_close_until(fd, 0);
}

corio_req corio_async_close(corio_loop *loop, int fd, corio_cb cb, void *user)
{
	int err;
	struct corio__op *op = corio__async_op(loop, cb, &err);

	if (!op)
		return err;
	prep_close(&op->sqe, fd);
	return corio__async_start(loop, op, cb, user);
}

DEFINE_OP(int, statx, (int dfd, const char *path, int flags, unsigned mask, struct statx *st),
	  (dfd, path, flags, mask, st))
DEFINE_OP(int, fallocate, (int fd, int mode, int64_t off, int64_t len), (fd, mode, off, len))
DEFINE_OP(int, unlinkat, (int dfd, const char *path, int flags), (dfd, path, flags))
DEFINE_OP(int, renameat,
	  (int olddfd, const char *oldpath, int newdfd, const char *newpath, unsigned flags),
	  (olddfd, oldpath, newdfd, newpath, flags))
DEFINE_OP(int, mkdirat, (int dfd, const char *path, mode_t mode), (dfd, path, mode))
DEFINE_OP(int, socket, (int domain, int type, int protocol), (domain, type, protocol))
DEFINE_OP(int, accept, (int fd, struct sockaddr *addr, socklen_t *addrlen, int flags),
	  (fd, addr, addrlen, flags))
DEFINE_OP(int, connect, (int fd, const struct sockaddr *addr, socklen_t addrlen),
	  (fd, addr, addrlen))
DEFINE_OP(ssize_t, recv, (int fd, void *buf, size_t len, int flags), (fd, buf, len, flags))
DEFINE_OP(ssize_t, send, (int fd, const void *buf, size_t len, int flags), (fd, buf, len, flags))
DEFINE_OP(ssize_t, recvmsg, (int fd, struct msghdr *msg, int flags), (fd, msg, flags))
DEFINE_OP(ssize_t, sendmsg, (int fd, const struct msghdr *msg, int flags), (fd, msg, flags))
DEFINE_OP(int, shutdown, (int fd, int how), (fd, how))
DEFINE_OP(int, poll, (int fd, unsigned events), (fd, events))

/* nop has no arguments, so it cannot go through DEFINE_OP's parameter lists. */
int corio_nop_until(int64_t deadline)
{
	struct corio__op op;

	prep_nop(&op.sqe);
	return corio__fiber_io(&op, deadline);
}

int corio_nop(void)
{
	return corio_nop_until(0);
}

corio_req corio_async_nop(corio_loop *loop, corio_cb cb, void *user)
{
	int err;
	struct corio__op *op = corio__async_op(loop, cb, &err);

	if (!op)
		return err;
	prep_nop(&op->sqe);
	return corio__async_start(loop, op, cb, user);
}

/* ------------------------------------------------------ the escape hatch */

#define REFUSED_FLAGS (IOSQE_IO_LINK | IOSQE_IO_HARDLINK | IOSQE_CQE_SKIP_SUCCESS)

int corio_sqe_until(const struct io_uring_sqe *sqe, int64_t deadline)
{
	struct corio__op op;

	/* A fiber gets one result: it cannot take the multishot forms, whose
	 * later results (an accepted fd, a buffer id) would be lost. Any other
	 * op that still completes more than once is cut short in op.c. */
	if (!sqe || (sqe->flags & REFUSED_FLAGS) || corio__sqe_multishot(sqe))
		return -EINVAL;
	op.sqe = *sqe;
	return corio__fiber_io(&op, deadline);
}

int corio_sqe(const struct io_uring_sqe *sqe)
{
	return corio_sqe_until(sqe, 0);
}

corio_req corio_async_sqe(corio_loop *loop, const struct io_uring_sqe *sqe, corio_cb cb,
			  void *user)
{
	int err;
	struct corio__op *op;

	if (!sqe || (sqe->flags & REFUSED_FLAGS))
		return -EINVAL;
	op = corio__async_op(loop, cb, &err);
	if (!op)
		return err;
	op->sqe = *sqe;
	return corio__async_start(loop, op, cb, user);
}

bool corio_op_supported(corio_loop *loop, int opcode)
{
	if (!loop)
		loop = corio__tls_loop;
	return loop && loop->be->supported(loop, opcode);
}
