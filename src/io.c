/*
 * The typed operations. Each has one prep function that describes it in an
 * io_uring SQE (with liburing's helpers), shared by its three public forms,
 * written out one after the other:
 *
 *   corio_<op>_until(args, deadline) fiber call with a deadline
 *   corio_<op>(args)                 the same without one
 *   corio_async_<op>(loop, args, cb, user)
 *
 * Both backends read the same SQE: io_uring copies it into the ring, epoll
 * runs it as its row in the table of opcodes says (opdef.c). Adding an op:
 * CONTRIBUTING.md.
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

/* ------------------------------------------------------------------- nop */

static void prep_nop(struct io_uring_sqe *sqe)
{
	io_uring_prep_nop(sqe);
}

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

/* ------------------------------------------------------------------ read */

static void prep_read(struct io_uring_sqe *sqe, int fd, void *buf, size_t len, int64_t off)
{
	io_uring_prep_read(sqe, fd, buf, clamp_len(len), off64(off));
}

ssize_t corio_read_until(int fd, void *buf, size_t len, int64_t off, int64_t deadline)
{
	struct corio__op op;

	prep_read(&op.sqe, fd, buf, len, off);
	return corio__fiber_io(&op, deadline);
}

ssize_t corio_read(int fd, void *buf, size_t len, int64_t off)
{
	return corio_read_until(fd, buf, len, off, 0);
}

corio_req corio_async_read(corio_loop *loop, int fd, void *buf, size_t len, int64_t off,
			   corio_cb cb, void *user)
{
	int err;
	struct corio__op *op = corio__async_op(loop, cb, &err);

	if (!op)
		return err;
	prep_read(&op->sqe, fd, buf, len, off);
	return corio__async_start(loop, op, cb, user);
}

/* ----------------------------------------------------------------- write */

static void prep_write(struct io_uring_sqe *sqe, int fd, const void *buf, size_t len, int64_t off)
{
	io_uring_prep_write(sqe, fd, buf, clamp_len(len), off64(off));
}

ssize_t corio_write_until(int fd, const void *buf, size_t len, int64_t off, int64_t deadline)
{
	struct corio__op op;

	prep_write(&op.sqe, fd, buf, len, off);
	return corio__fiber_io(&op, deadline);
}

ssize_t corio_write(int fd, const void *buf, size_t len, int64_t off)
{
	return corio_write_until(fd, buf, len, off, 0);
}

corio_req corio_async_write(corio_loop *loop, int fd, const void *buf, size_t len, int64_t off,
			    corio_cb cb, void *user)
{
	int err;
	struct corio__op *op = corio__async_op(loop, cb, &err);

	if (!op)
		return err;
	prep_write(&op->sqe, fd, buf, len, off);
	return corio__async_start(loop, op, cb, user);
}

/* ----------------------------------------------------------------- readv */

static void prep_readv(struct io_uring_sqe *sqe, int fd, const struct iovec *iov, int iovcnt,
		       int64_t off)
{
	io_uring_prep_readv(sqe, fd, iov, (unsigned)iovcnt, off64(off));
}

ssize_t corio_readv_until(int fd, const struct iovec *iov, int iovcnt, int64_t off,
			  int64_t deadline)
{
	struct corio__op op;

	prep_readv(&op.sqe, fd, iov, iovcnt, off);
	return corio__fiber_io(&op, deadline);
}

ssize_t corio_readv(int fd, const struct iovec *iov, int iovcnt, int64_t off)
{
	return corio_readv_until(fd, iov, iovcnt, off, 0);
}

corio_req corio_async_readv(corio_loop *loop, int fd, const struct iovec *iov, int iovcnt,
			    int64_t off, corio_cb cb, void *user)
{
	int err;
	struct corio__op *op = corio__async_op(loop, cb, &err);

	if (!op)
		return err;
	prep_readv(&op->sqe, fd, iov, iovcnt, off);
	return corio__async_start(loop, op, cb, user);
}

/* ---------------------------------------------------------------- writev */

static void prep_writev(struct io_uring_sqe *sqe, int fd, const struct iovec *iov, int iovcnt,
			int64_t off)
{
	io_uring_prep_writev(sqe, fd, iov, (unsigned)iovcnt, off64(off));
}

ssize_t corio_writev_until(int fd, const struct iovec *iov, int iovcnt, int64_t off,
			   int64_t deadline)
{
	struct corio__op op;

	prep_writev(&op.sqe, fd, iov, iovcnt, off);
	return corio__fiber_io(&op, deadline);
}

ssize_t corio_writev(int fd, const struct iovec *iov, int iovcnt, int64_t off)
{
	return corio_writev_until(fd, iov, iovcnt, off, 0);
}

corio_req corio_async_writev(corio_loop *loop, int fd, const struct iovec *iov, int iovcnt,
			     int64_t off, corio_cb cb, void *user)
{
	int err;
	struct corio__op *op = corio__async_op(loop, cb, &err);

	if (!op)
		return err;
	prep_writev(&op->sqe, fd, iov, iovcnt, off);
	return corio__async_start(loop, op, cb, user);
}

/* ----------------------------------------------------------------- fsync */

static void prep_fsync(struct io_uring_sqe *sqe, int fd)
{
	io_uring_prep_fsync(sqe, fd, 0);
}

int corio_fsync_until(int fd, int64_t deadline)
{
	struct corio__op op;

	prep_fsync(&op.sqe, fd);
	return corio__fiber_io(&op, deadline);
}

int corio_fsync(int fd)
{
	return corio_fsync_until(fd, 0);
}

corio_req corio_async_fsync(corio_loop *loop, int fd, corio_cb cb, void *user)
{
	int err;
	struct corio__op *op = corio__async_op(loop, cb, &err);

	if (!op)
		return err;
	prep_fsync(&op->sqe, fd);
	return corio__async_start(loop, op, cb, user);
}

/* ------------------------------------------------------------- fdatasync */

static void prep_fdatasync(struct io_uring_sqe *sqe, int fd)
{
	io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
}

int corio_fdatasync_until(int fd, int64_t deadline)
{
	struct corio__op op;

	prep_fdatasync(&op.sqe, fd);
	return corio__fiber_io(&op, deadline);
}

int corio_fdatasync(int fd)
{
	return corio_fdatasync_until(fd, 0);
}

corio_req corio_async_fdatasync(corio_loop *loop, int fd, corio_cb cb, void *user)
{
	int err;
	struct corio__op *op = corio__async_op(loop, cb, &err);

	if (!op)
		return err;
	prep_fdatasync(&op->sqe, fd);
	return corio__async_start(loop, op, cb, user);
}

/* ---------------------------------------------------------------- openat */

static void prep_openat(struct io_uring_sqe *sqe, int dfd, const char *path, int flags,
			mode_t mode)
{
	io_uring_prep_openat(sqe, dfd, path, flags, mode);
}

int corio_openat_until(int dfd, const char *path, int flags, mode_t mode, int64_t deadline)
{
	struct corio__op op;

	prep_openat(&op.sqe, dfd, path, flags, mode);
	return corio__fiber_io(&op, deadline);
}

int corio_openat(int dfd, const char *path, int flags, mode_t mode)
{
	return corio_openat_until(dfd, path, flags, mode, 0);
}

corio_req corio_async_openat(corio_loop *loop, int dfd, const char *path, int flags, mode_t mode,
			     corio_cb cb, void *user)
{
	int err;
	struct corio__op *op = corio__async_op(loop, cb, &err);

	if (!op)
		return err;
	prep_openat(&op->sqe, dfd, path, flags, mode);
	return corio__async_start(loop, op, cb, user);
}

/* ----------------------------------------------------------------- close */

#ifdef CORIO_TSAN
/* The sanitizers' hook for a close(2) they do not intercept
 * (<sanitizer/linux_syscall_hooks.h>, which gcc does not ship). */
void __sanitizer_syscall_pre_impl_close(long fd);
#endif

static void prep_close(struct io_uring_sqe *sqe, int fd)
{
#ifdef CORIO_TSAN
	/* ThreadSanitizer follows descriptors through the calls it intercepts;
	 * a close the kernel runs from the ring (or the epoll backend's
	 * close(2), told twice: harmless) would leave the number open in its
	 * books, and the next file given that number, in any thread, would
	 * look like a race with the closed one's past. */
	if (!corio_fd_is_direct(fd))
		__sanitizer_syscall_pre_impl_close(fd);
#endif
	io_uring_prep_close(sqe, fd);
}

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

/* ----------------------------------------------------------------- statx */

static void prep_statx(struct io_uring_sqe *sqe, int dfd, const char *path, int flags,
		       unsigned mask, struct statx *st)
{
	io_uring_prep_statx(sqe, dfd, path, flags, mask, st);
}

int corio_statx_until(int dfd, const char *path, int flags, unsigned mask, struct statx *st,
		      int64_t deadline)
{
	struct corio__op op;

	prep_statx(&op.sqe, dfd, path, flags, mask, st);
	return corio__fiber_io(&op, deadline);
}

int corio_statx(int dfd, const char *path, int flags, unsigned mask, struct statx *st)
{
	return corio_statx_until(dfd, path, flags, mask, st, 0);
}

corio_req corio_async_statx(corio_loop *loop, int dfd, const char *path, int flags, unsigned mask,
			    struct statx *st, corio_cb cb, void *user)
{
	int err;
	struct corio__op *op = corio__async_op(loop, cb, &err);

	if (!op)
		return err;
	prep_statx(&op->sqe, dfd, path, flags, mask, st);
	return corio__async_start(loop, op, cb, user);
}

/* ------------------------------------------------------------- fallocate */

static void prep_fallocate(struct io_uring_sqe *sqe, int fd, int mode, int64_t off, int64_t len)
{
	io_uring_prep_fallocate(sqe, fd, mode, (off_t)off, (off_t)len);
}

int corio_fallocate_until(int fd, int mode, int64_t off, int64_t len, int64_t deadline)
{
	struct corio__op op;

	prep_fallocate(&op.sqe, fd, mode, off, len);
	return corio__fiber_io(&op, deadline);
}

int corio_fallocate(int fd, int mode, int64_t off, int64_t len)
{
	return corio_fallocate_until(fd, mode, off, len, 0);
}

corio_req corio_async_fallocate(corio_loop *loop, int fd, int mode, int64_t off, int64_t len,
				corio_cb cb, void *user)
{
	int err;
	struct corio__op *op = corio__async_op(loop, cb, &err);

	if (!op)
		return err;
	prep_fallocate(&op->sqe, fd, mode, off, len);
	return corio__async_start(loop, op, cb, user);
}

/* -------------------------------------------------------------- unlinkat */

static void prep_unlinkat(struct io_uring_sqe *sqe, int dfd, const char *path, int flags)
{
	io_uring_prep_unlinkat(sqe, dfd, path, flags);
}

int corio_unlinkat_until(int dfd, const char *path, int flags, int64_t deadline)
{
	struct corio__op op;

	prep_unlinkat(&op.sqe, dfd, path, flags);
	return corio__fiber_io(&op, deadline);
}

int corio_unlinkat(int dfd, const char *path, int flags)
{
	return corio_unlinkat_until(dfd, path, flags, 0);
}

corio_req corio_async_unlinkat(corio_loop *loop, int dfd, const char *path, int flags, corio_cb cb,
			       void *user)
{
	int err;
	struct corio__op *op = corio__async_op(loop, cb, &err);

	if (!op)
		return err;
	prep_unlinkat(&op->sqe, dfd, path, flags);
	return corio__async_start(loop, op, cb, user);
}

/* -------------------------------------------------------------- renameat */

static void prep_renameat(struct io_uring_sqe *sqe, int olddfd, const char *oldpath, int newdfd,
			  const char *newpath, unsigned flags)
{
	io_uring_prep_renameat(sqe, olddfd, oldpath, newdfd, newpath, (int)flags);
}

int corio_renameat_until(int olddfd, const char *oldpath, int newdfd, const char *newpath,
			 unsigned flags, int64_t deadline)
{
	struct corio__op op;

	prep_renameat(&op.sqe, olddfd, oldpath, newdfd, newpath, flags);
	return corio__fiber_io(&op, deadline);
}

int corio_renameat(int olddfd, const char *oldpath, int newdfd, const char *newpath, unsigned flags)
{
	return corio_renameat_until(olddfd, oldpath, newdfd, newpath, flags, 0);
}

corio_req corio_async_renameat(corio_loop *loop, int olddfd, const char *oldpath, int newdfd,
			       const char *newpath, unsigned flags, corio_cb cb, void *user)
{
	int err;
	struct corio__op *op = corio__async_op(loop, cb, &err);

	if (!op)
		return err;
	prep_renameat(&op->sqe, olddfd, oldpath, newdfd, newpath, flags);
	return corio__async_start(loop, op, cb, user);
}

/* --------------------------------------------------------------- mkdirat */

static void prep_mkdirat(struct io_uring_sqe *sqe, int dfd, const char *path, mode_t mode)
{
	io_uring_prep_mkdirat(sqe, dfd, path, mode);
}

int corio_mkdirat_until(int dfd, const char *path, mode_t mode, int64_t deadline)
{
	struct corio__op op;

	prep_mkdirat(&op.sqe, dfd, path, mode);
	return corio__fiber_io(&op, deadline);
}

int corio_mkdirat(int dfd, const char *path, mode_t mode)
{
	return corio_mkdirat_until(dfd, path, mode, 0);
}

corio_req corio_async_mkdirat(corio_loop *loop, int dfd, const char *path, mode_t mode, corio_cb cb,
			      void *user)
{
	int err;
	struct corio__op *op = corio__async_op(loop, cb, &err);

	if (!op)
		return err;
	prep_mkdirat(&op->sqe, dfd, path, mode);
	return corio__async_start(loop, op, cb, user);
}

/* ---------------------------------------------------------------- socket */

static void prep_socket(struct io_uring_sqe *sqe, int domain, int type, int protocol)
{
	io_uring_prep_socket(sqe, domain, type, protocol, 0);
}

int corio_socket_until(int domain, int type, int protocol, int64_t deadline)
{
	struct corio__op op;

	prep_socket(&op.sqe, domain, type, protocol);
	return corio__fiber_io(&op, deadline);
}

int corio_socket(int domain, int type, int protocol)
{
	return corio_socket_until(domain, type, protocol, 0);
}

corio_req corio_async_socket(corio_loop *loop, int domain, int type, int protocol, corio_cb cb,
			     void *user)
{
	int err;
	struct corio__op *op = corio__async_op(loop, cb, &err);

	if (!op)
		return err;
	prep_socket(&op->sqe, domain, type, protocol);
	return corio__async_start(loop, op, cb, user);
}

/* ---------------------------------------------------------------- accept */

static void prep_accept(struct io_uring_sqe *sqe, int fd, struct sockaddr *addr,
			socklen_t *addrlen, int flags)
{
	io_uring_prep_accept(sqe, fd, addr, addrlen, flags);
}

int corio_accept_until(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags,
		       int64_t deadline)
{
	struct corio__op op;

	prep_accept(&op.sqe, fd, addr, addrlen, flags);
	return corio__fiber_io(&op, deadline);
}

int corio_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
	return corio_accept_until(fd, addr, addrlen, flags, 0);
}

corio_req corio_async_accept(corio_loop *loop, int fd, struct sockaddr *addr, socklen_t *addrlen,
			     int flags, corio_cb cb, void *user)
{
	int err;
	struct corio__op *op = corio__async_op(loop, cb, &err);

	if (!op)
		return err;
	prep_accept(&op->sqe, fd, addr, addrlen, flags);
	return corio__async_start(loop, op, cb, user);
}

/* --------------------------------------------------------------- connect */

static void prep_connect(struct io_uring_sqe *sqe, int fd, const struct sockaddr *addr,
			 socklen_t addrlen)
{
	io_uring_prep_connect(sqe, fd, addr, addrlen);
}

int corio_connect_until(int fd, const struct sockaddr *addr, socklen_t addrlen, int64_t deadline)
{
	struct corio__op op;

	prep_connect(&op.sqe, fd, addr, addrlen);
	return corio__fiber_io(&op, deadline);
}

int corio_connect(int fd, const struct sockaddr *addr, socklen_t addrlen)
{
	return corio_connect_until(fd, addr, addrlen, 0);
}

corio_req corio_async_connect(corio_loop *loop, int fd, const struct sockaddr *addr,
			      socklen_t addrlen, corio_cb cb, void *user)
{
	int err;
	struct corio__op *op = corio__async_op(loop, cb, &err);

	if (!op)
		return err;
	prep_connect(&op->sqe, fd, addr, addrlen);
	return corio__async_start(loop, op, cb, user);
}

/* ------------------------------------------------------------------ recv */

static void prep_recv(struct io_uring_sqe *sqe, int fd, void *buf, size_t len, int flags)
{
	io_uring_prep_recv(sqe, fd, buf, clamp_len(len), flags);
}

ssize_t corio_recv_until(int fd, void *buf, size_t len, int flags, int64_t deadline)
{
	struct corio__op op;

	prep_recv(&op.sqe, fd, buf, len, flags);
	return corio__fiber_io(&op, deadline);
}

ssize_t corio_recv(int fd, void *buf, size_t len, int flags)
{
	return corio_recv_until(fd, buf, len, flags, 0);
}

corio_req corio_async_recv(corio_loop *loop, int fd, void *buf, size_t len, int flags, corio_cb cb,
			   void *user)
{
	int err;
	struct corio__op *op = corio__async_op(loop, cb, &err);

	if (!op)
		return err;
	prep_recv(&op->sqe, fd, buf, len, flags);
	return corio__async_start(loop, op, cb, user);
}

/* ------------------------------------------------------------------ send */

static void prep_send(struct io_uring_sqe *sqe, int fd, const void *buf, size_t len, int flags)
{
	io_uring_prep_send(sqe, fd, buf, clamp_len(len), flags | MSG_NOSIGNAL);
}

ssize_t corio_send_until(int fd, const void *buf, size_t len, int flags, int64_t deadline)
{
	struct corio__op op;

	prep_send(&op.sqe, fd, buf, len, flags);
	return corio__fiber_io(&op, deadline);
}

ssize_t corio_send(int fd, const void *buf, size_t len, int flags)
{
	return corio_send_until(fd, buf, len, flags, 0);
}

corio_req corio_async_send(corio_loop *loop, int fd, const void *buf, size_t len, int flags,
			   corio_cb cb, void *user)
{
	int err;
	struct corio__op *op = corio__async_op(loop, cb, &err);

	if (!op)
		return err;
	prep_send(&op->sqe, fd, buf, len, flags);
	return corio__async_start(loop, op, cb, user);
}

/* --------------------------------------------------------------- recvmsg */

static void prep_recvmsg(struct io_uring_sqe *sqe, int fd, struct msghdr *msg, int flags)
{
	io_uring_prep_recvmsg(sqe, fd, msg, (unsigned)flags);
}

ssize_t corio_recvmsg_until(int fd, struct msghdr *msg, int flags, int64_t deadline)
{
	struct corio__op op;

	prep_recvmsg(&op.sqe, fd, msg, flags);
	return corio__fiber_io(&op, deadline);
}

ssize_t corio_recvmsg(int fd, struct msghdr *msg, int flags)
{
	return corio_recvmsg_until(fd, msg, flags, 0);
}

corio_req corio_async_recvmsg(corio_loop *loop, int fd, struct msghdr *msg, int flags, corio_cb cb,
			      void *user)
{
	int err;
	struct corio__op *op = corio__async_op(loop, cb, &err);

	if (!op)
		return err;
	prep_recvmsg(&op->sqe, fd, msg, flags);
	return corio__async_start(loop, op, cb, user);
}

/* --------------------------------------------------------------- sendmsg */

static void prep_sendmsg(struct io_uring_sqe *sqe, int fd, const struct msghdr *msg, int flags)
{
	io_uring_prep_sendmsg(sqe, fd, msg, (unsigned)(flags | MSG_NOSIGNAL));
}

ssize_t corio_sendmsg_until(int fd, const struct msghdr *msg, int flags, int64_t deadline)
{
	struct corio__op op;

	prep_sendmsg(&op.sqe, fd, msg, flags);
	return corio__fiber_io(&op, deadline);
}

ssize_t corio_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	return corio_sendmsg_until(fd, msg, flags, 0);
}

corio_req corio_async_sendmsg(corio_loop *loop, int fd, const struct msghdr *msg, int flags,
			      corio_cb cb, void *user)
{
	int err;
	struct corio__op *op = corio__async_op(loop, cb, &err);

	if (!op)
		return err;
	prep_sendmsg(&op->sqe, fd, msg, flags);
	return corio__async_start(loop, op, cb, user);
}

/* -------------------------------------------------------------- shutdown */

static void prep_shutdown(struct io_uring_sqe *sqe, int fd, int how)
{
	io_uring_prep_shutdown(sqe, fd, how);
}

int corio_shutdown_until(int fd, int how, int64_t deadline)
{
	struct corio__op op;

	prep_shutdown(&op.sqe, fd, how);
	return corio__fiber_io(&op, deadline);
}

int corio_shutdown(int fd, int how)
{
	return corio_shutdown_until(fd, how, 0);
}

corio_req corio_async_shutdown(corio_loop *loop, int fd, int how, corio_cb cb, void *user)
{
	int err;
	struct corio__op *op = corio__async_op(loop, cb, &err);

	if (!op)
		return err;
	prep_shutdown(&op->sqe, fd, how);
	return corio__async_start(loop, op, cb, user);
}

/* ------------------------------------------------------------------ poll */

static void prep_poll(struct io_uring_sqe *sqe, int fd, unsigned events)
{
	io_uring_prep_poll_add(sqe, fd, events);
}

int corio_poll_until(int fd, unsigned events, int64_t deadline)
{
	struct corio__op op;

	prep_poll(&op.sqe, fd, events);
	return corio__fiber_io(&op, deadline);
}

int corio_poll(int fd, unsigned events)
{
	return corio_poll_until(fd, events, 0);
}

corio_req corio_async_poll(corio_loop *loop, int fd, unsigned events, corio_cb cb, void *user)
{
	int err;
	struct corio__op *op = corio__async_op(loop, cb, &err);

	if (!op)
		return err;
	prep_poll(&op->sqe, fd, events);
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
