/*
 * corio: blocking-style I/O calls for fibers.
 *
 * Each call suspends only the calling fiber and returns what the system call
 * of the same name would return, as >= 0 or -errno. Each has an _until
 * variant taking an absolute deadline (corio_now() based): when it passes,
 * the operation is cancelled and the call returns -ETIMEDOUT (or the real
 * result, if the operation completed in the meantime). A deadline already in
 * the past returns -ETIMEDOUT without starting the operation.
 *
 * Ownership: buffers passed in belong to the kernel until the call returns,
 * and the call returns only after the kernel is done with them, including
 * after a deadline or a cancellation. Buffers on the fiber's stack are safe.
 *
 * Called outside a fiber, these return -EPERM.
 *
 * Offsets (@off) of read/write: a file offset, or -1 for the current file
 * position (and for pipes, sockets and other streams). Lengths above
 * 0x7ffff000 are clamped, as Linux does.
 *
 * send and sendmsg always add MSG_NOSIGNAL: a peer reset gives -EPIPE, never
 * SIGPIPE. A write to a pipe whose reader is gone gives -EPIPE as well, once
 * corio has made SIGPIPE harmless (corio/signal.h).
 */
#ifndef CORIO_IO_H
#define CORIO_IO_H

#include <sys/socket.h>
#include <sys/uio.h>

#include "corio/types.h"

#ifdef __cplusplus
extern "C" {
#endif

struct statx;
struct io_uring_sqe;

CORIO_API int corio_nop(void);
CORIO_API int corio_nop_until(int64_t deadline);

CORIO_API ssize_t corio_read(int fd, void *buf, size_t len, int64_t off);
CORIO_API ssize_t corio_read_until(int fd, void *buf, size_t len, int64_t off, int64_t deadline);
CORIO_API ssize_t corio_write(int fd, const void *buf, size_t len, int64_t off);
CORIO_API ssize_t corio_write_until(int fd, const void *buf, size_t len, int64_t off,
				    int64_t deadline);
CORIO_API ssize_t corio_readv(int fd, const struct iovec *iov, int iovcnt, int64_t off);
CORIO_API ssize_t corio_readv_until(int fd, const struct iovec *iov, int iovcnt, int64_t off,
				    int64_t deadline);
CORIO_API ssize_t corio_writev(int fd, const struct iovec *iov, int iovcnt, int64_t off);
CORIO_API ssize_t corio_writev_until(int fd, const struct iovec *iov, int iovcnt, int64_t off,
				     int64_t deadline);

CORIO_API int corio_fsync(int fd);
CORIO_API int corio_fsync_until(int fd, int64_t deadline);
CORIO_API int corio_fdatasync(int fd);
CORIO_API int corio_fdatasync_until(int fd, int64_t deadline);

CORIO_API int corio_openat(int dfd, const char *path, int flags, mode_t mode);
CORIO_API int corio_openat_until(int dfd, const char *path, int flags, mode_t mode,
				 int64_t deadline);
/*
 * Direct descriptors (io_uring's registered files). A server can accept
 * connections straight into its loop's table of registered files
 * (corio_serve_opts.direct), which spares the kernel a file-table lookup and
 * a reference count on every operation. Such a descriptor is an int with
 * CORIO_FD_DIRECT set: every corio call on the loop that accepted it takes
 * it (corio_close and corio_conn_* included); plain system calls do not
 * (they fail with EBADF), and it means nothing on another loop. The epoll
 * backend never hands one out.
 */
#define CORIO_FD_DIRECT 0x40000000
static inline int corio_fd_is_direct(int fd)
{
	return fd >= CORIO_FD_DIRECT;
}

CORIO_API int corio_close(int fd);
CORIO_API int corio_close_until(int fd, int64_t deadline);
CORIO_API int corio_statx(int dfd, const char *path, int flags, unsigned mask, struct statx *st);
CORIO_API int corio_statx_until(int dfd, const char *path, int flags, unsigned mask,
				struct statx *st, int64_t deadline);
CORIO_API int corio_fallocate(int fd, int mode, int64_t off, int64_t len);
CORIO_API int corio_fallocate_until(int fd, int mode, int64_t off, int64_t len, int64_t deadline);
CORIO_API int corio_unlinkat(int dfd, const char *path, int flags);
CORIO_API int corio_unlinkat_until(int dfd, const char *path, int flags, int64_t deadline);
CORIO_API int corio_renameat(int olddfd, const char *oldpath, int newdfd, const char *newpath,
			     unsigned flags);
CORIO_API int corio_renameat_until(int olddfd, const char *oldpath, int newdfd,
				   const char *newpath, unsigned flags, int64_t deadline);
CORIO_API int corio_mkdirat(int dfd, const char *path, mode_t mode);
CORIO_API int corio_mkdirat_until(int dfd, const char *path, mode_t mode, int64_t deadline);

CORIO_API int corio_socket(int domain, int type, int protocol);
CORIO_API int corio_socket_until(int domain, int type, int protocol, int64_t deadline);
CORIO_API int corio_accept(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags);
CORIO_API int corio_accept_until(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags,
				 int64_t deadline);
CORIO_API int corio_connect(int fd, const struct sockaddr *addr, socklen_t addrlen);
CORIO_API int corio_connect_until(int fd, const struct sockaddr *addr, socklen_t addrlen,
				  int64_t deadline);
CORIO_API ssize_t corio_recv(int fd, void *buf, size_t len, int flags);
CORIO_API ssize_t corio_recv_until(int fd, void *buf, size_t len, int flags, int64_t deadline);
CORIO_API ssize_t corio_send(int fd, const void *buf, size_t len, int flags);
CORIO_API ssize_t corio_send_until(int fd, const void *buf, size_t len, int flags,
				   int64_t deadline);
CORIO_API ssize_t corio_recvmsg(int fd, struct msghdr *msg, int flags);
CORIO_API ssize_t corio_recvmsg_until(int fd, struct msghdr *msg, int flags, int64_t deadline);
CORIO_API ssize_t corio_sendmsg(int fd, const struct msghdr *msg, int flags);
CORIO_API ssize_t corio_sendmsg_until(int fd, const struct msghdr *msg, int flags,
				      int64_t deadline);
CORIO_API int corio_shutdown(int fd, int how);
CORIO_API int corio_shutdown_until(int fd, int how, int64_t deadline);

/* Wait until @fd is ready for @events (POLLIN, POLLOUT, ...); returns the
 * ready events (revents) or -errno. */
CORIO_API int corio_poll(int fd, unsigned events);
CORIO_API int corio_poll_until(int fd, unsigned events, int64_t deadline);

/*
 * Escape hatch: run any io_uring operation, prepared by the caller (with
 * liburing's io_uring_prep_* helpers) in @sqe, which is copied. user_data is
 * corio's own; IOSQE_IO_LINK, IOSQE_IO_HARDLINK and IOSQE_CQE_SKIP_SUCCESS
 * are refused (-EINVAL), and so are multishot operations (a fiber takes one
 * result; use corio_async_sqe for every completion). Returns the
 * completion's result; a zero-copy send returns when its buffer is free
 * again (after the notification). On the epoll backend the opcodes corio
 * itself uses work; others return -EOPNOTSUPP.
 */
CORIO_API int corio_sqe(const struct io_uring_sqe *sqe);
CORIO_API int corio_sqe_until(const struct io_uring_sqe *sqe, int64_t deadline);

/* Whether the loop's backend can run io_uring opcode @opcode. */
CORIO_API bool corio_op_supported(corio_loop *loop, int opcode);

#ifdef __cplusplus
}
#endif
#endif
