/*
 * Operations as system calls: what an op's SQE asks, done with the system
 * call that io_uring would make for it, for backends that run ops without
 * io_uring (the epoll backend: a nonblocking attempt on readiness, or the
 * blocking call on its thread pool). The rows of opdef.c name these.
 *
 * Each returns the result as io_uring would report it (>= 0 or -errno), or
 * an answer outside errno's range that the backend acts on
 * (CORIO__SYS_NOT_A_FILE, CORIO__SYS_NEED_PLAIN). State kept between
 * attempts of one op is in @st, which its backend keeps.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h> /* renameat2 */
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "op.h"

static int neg_errno(long r)
{
	return r < 0 ? -errno : (int)r;
}

int corio__sys_nop(struct corio__op *op, struct corio__sys *st)
{
	return 0;
}

/* Whether the socket keeps a byte stream (MSG_WAITALL may gather). */
static bool byte_stream(struct corio__op *op, struct corio__sys *st)
{
	int type = 0;
	socklen_t len = sizeof(type);

	if (!(st->flags & CORIO__SYS_SOCK_KNOWN)) {
		st->flags |= CORIO__SYS_SOCK_KNOWN;
		if (getsockopt(op->sqe.fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
		    (type == SOCK_STREAM || type == SOCK_SEQPACKET))
			st->flags |= CORIO__SYS_SOCK_SEQ;
	}
	return st->flags & CORIO__SYS_SOCK_SEQ;
}

/*
 * recv and send. MSG_WAITALL on a stream socket: io_uring keeps going until
 * the whole length has moved, and on EOF, an error or a cancellation
 * returns what moved so far; we do the same. A short transfer on a stream
 * socket means the socket buffer was drained (or filled), so waiting for
 * the next edge is safe without trying again first; except for a recv on
 * a socket whose hang-up or error was reported already (CORIO__SYS_HUP),
 * which must try again to find the end of stream.
 */
int corio__sys_recv_send(struct corio__op *op, struct corio__sys *st)
{
	char *buf = (char *)(uintptr_t)op->sqe.addr;
	size_t len = op->sqe.len;
	int flags = (int)op->sqe.msg_flags | MSG_DONTWAIT;
	ssize_t r;

again:
	if (op->sqe.opcode == IORING_OP_RECV)
		r = recv(op->sqe.fd, buf + st->done, len - st->done, flags);
	else if (op->sqe.addr_len)
		r = sendto(op->sqe.fd, buf + st->done, len - st->done, flags,
			   (const struct sockaddr *)(uintptr_t)op->sqe.addr2, op->sqe.addr_len);
	else
		r = send(op->sqe.fd, buf + st->done, len - st->done, flags);
	if (!(flags & MSG_WAITALL))
		return neg_errno(r);
	if (r > 0) {
		st->done += (uint32_t)r;
		if (st->done < len && byte_stream(op, st)) {
			if ((st->flags & CORIO__SYS_HUP) && op->sqe.opcode == IORING_OP_RECV)
				goto again;
			return -EAGAIN;
		}
		return (int)st->done;
	}
	if (r < 0 && errno == EAGAIN)
		return -EAGAIN;
	return st->done ? (int)st->done : neg_errno(r);
}

int corio__sys_recvmsg(struct corio__op *op, struct corio__sys *st)
{
	return neg_errno(recvmsg(op->sqe.fd, (struct msghdr *)(uintptr_t)op->sqe.addr,
				 (int)op->sqe.msg_flags | MSG_DONTWAIT));
}

int corio__sys_sendmsg(struct corio__op *op, struct corio__sys *st)
{
	return neg_errno(sendmsg(op->sqe.fd, (const struct msghdr *)(uintptr_t)op->sqe.addr,
				 (int)op->sqe.msg_flags | MSG_DONTWAIT));
}

/* On a listener its backend made nonblocking. */
int corio__sys_accept(struct corio__op *op, struct corio__sys *st)
{
	const struct io_uring_sqe *s = &op->sqe;

	return neg_errno(accept4(s->fd, (struct sockaddr *)(uintptr_t)s->addr,
				 (socklen_t *)(uintptr_t)s->addr2, (int)s->accept_flags));
}

/*
 * A connect in progress, on writability: call connect again, as io_uring
 * does. That is also what tells the socket layer the connect is over (a
 * later connect then says EISCONN); reading SO_ERROR would not.
 */
int corio__sys_connect(struct corio__op *op, struct corio__sys *st)
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

/* read, write, readv, writev at @off (-1: the current position, as
 * read(2)), with RWF_* @flags. */
static int rw_off(struct corio__op *op, off_t off, int flags)
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
 * the offset on streams too keeps a file right even when a backend's record
 * of the fd says "stream" wrongly (closed with close(2), number reused).
 */
static int rw(struct corio__op *op, int flags)
{
	off_t off = (off_t)op->sqe.off;
	int res = rw_off(op, off, flags);

	if (res == -ESPIPE && off != -1)
		res = rw_off(op, -1, flags);
	return res;
}

/*
 * read, write, readv, writev on a stream. RWF_NOWAIT makes the call
 * nonblocking without touching the file's flags (sockets, pipes, eventfds
 * support it). A file without it (a tty) gets what io_uring gives it: the
 * plain call, made only once poll says the file is ready, so that it does
 * not block (CORIO__SYS_PLAIN, which the backend sets when this says
 * CORIO__SYS_NEED_PLAIN); unless the caller asked for RWF_NOWAIT itself,
 * which such a file refuses with EOPNOTSUPP, with io_uring too.
 */
int corio__sys_rw_nowait(struct corio__op *op, struct corio__sys *st)
{
	bool wr = op->sqe.opcode == IORING_OP_WRITE || op->sqe.opcode == IORING_OP_WRITEV;
	struct pollfd pfd = {.fd = op->sqe.fd, .events = wr ? POLLOUT : POLLIN};
	int flags = (int)op->sqe.rw_flags;

	if (!(st->flags & CORIO__SYS_PLAIN)) {
		int res = rw(op, flags | RWF_NOWAIT);

		return res == -EOPNOTSUPP && !(flags & RWF_NOWAIT) ? CORIO__SYS_NEED_PLAIN : res;
	}
	if (poll(&pfd, 1, 0) < 0)
		return -errno;
	if (!pfd.revents)
		return -EAGAIN;
	return rw(op, flags);
}

/*
 * read, write, readv, writev on a file, blocking. The backend classified
 * the fd as a file, perhaps from a record gone stale (closed with close(2)
 * and the number reused). A socket or pipe here could block the calling
 * thread for ever: check (a pool thread's hop costs far more than the
 * fstat) and say CORIO__SYS_NOT_A_FILE, unless told not to check.
 */
int corio__sys_rw_file(struct corio__op *op, struct corio__sys *st)
{
	struct stat sb;

	if (!(st->flags & CORIO__SYS_NO_CHECK)) {
		if (fstat(op->sqe.fd, &sb) < 0)
			return -errno;
		if (!S_ISREG(sb.st_mode) && !S_ISBLK(sb.st_mode))
			return CORIO__SYS_NOT_A_FILE;
	}
	return rw(op, (int)op->sqe.rw_flags);
}

int corio__sys_fsync(struct corio__op *op, struct corio__sys *st)
{
	const struct io_uring_sqe *s = &op->sqe;

	return neg_errno(s->fsync_flags & IORING_FSYNC_DATASYNC ? fdatasync(s->fd) : fsync(s->fd));
}

static const char *path_of(const struct corio__op *op)
{
	return (const char *)(uintptr_t)op->sqe.addr;
}

int corio__sys_openat(struct corio__op *op, struct corio__sys *st)
{
	const struct io_uring_sqe *s = &op->sqe;

	return neg_errno(openat(s->fd, path_of(op), (int)s->open_flags, (mode_t)s->len));
}

int corio__sys_close(struct corio__op *op, struct corio__sys *st)
{
	return neg_errno(close(op->sqe.fd));
}

int corio__sys_statx(struct corio__op *op, struct corio__sys *st)
{
	const struct io_uring_sqe *s = &op->sqe;

	return neg_errno(statx(s->fd, path_of(op), (int)s->statx_flags, s->len,
			       (struct statx *)(uintptr_t)s->off));
}

int corio__sys_fallocate(struct corio__op *op, struct corio__sys *st)
{
	const struct io_uring_sqe *s = &op->sqe;

	return neg_errno(fallocate(s->fd, (int)s->len, (off_t)s->off, (off_t)s->addr));
}

int corio__sys_unlinkat(struct corio__op *op, struct corio__sys *st)
{
	return neg_errno(unlinkat(op->sqe.fd, path_of(op), (int)op->sqe.unlink_flags));
}

int corio__sys_renameat(struct corio__op *op, struct corio__sys *st)
{
	const struct io_uring_sqe *s = &op->sqe;

	return neg_errno(renameat2(s->fd, path_of(op), (int)s->len,
				   (const char *)(uintptr_t)s->addr2, s->rename_flags));
}

int corio__sys_mkdirat(struct corio__op *op, struct corio__sys *st)
{
	return neg_errno(mkdirat(op->sqe.fd, path_of(op), (mode_t)op->sqe.len));
}

int corio__sys_socket(struct corio__op *op, struct corio__sys *st)
{
	const struct io_uring_sqe *s = &op->sqe;

	if (s->rw_flags)
		return -EINVAL; /* as io_uring: no flags defined */
	return neg_errno(socket(s->fd, (int)s->off, (int)s->len));
}

int corio__sys_shutdown(struct corio__op *op, struct corio__sys *st)
{
	return neg_errno(shutdown(op->sqe.fd, (int)op->sqe.len));
}
