/*
 * corio: the completion API. Start an operation, get a callback with its
 * result. No fibers needed; the fiber calls of corio/io.h are built on the
 * same machinery.
 *
 * Rules:
 *  - Call from the loop's thread. The callback runs on that thread, from
 *    the loop, never from inside the call that started the operation.
 *  - The callback runs exactly once per completion: once for a normal
 *    operation (also when it failed, was cancelled (-ECANCELED) or timed out
 *    (-ETIMEDOUT)), and once per completion of a multishot operation, with
 *    CORIO_F_MORE set in @flags on every one but the last.
 *  - Ownership: the buffers of an operation belong to the kernel from the
 *    start call until its (last) callback. Do not free or reuse them before,
 *    even after asking for cancellation: the callback is the only signal
 *    that the kernel is done.
 *  - A request id (> 0) names the operation until its last callback; after
 *    that, calls with the id return -ENOENT (ids are never reused).
 *  - Starting an operation never fails because a queue is full: when the
 *    kernel pushes back, the operation waits in a backlog.
 */
#ifndef CORIO_ASYNC_H
#define CORIO_ASYNC_H

#include <sys/socket.h>
#include <sys/uio.h>

#include "corio/types.h"

#ifdef __cplusplus
extern "C" {
#endif

struct statx;
struct io_uring_sqe;

/* @flags: the completion's flags (IORING_CQE_F_* values). */
#define CORIO_F_MORE (1U << 1)	 /* more completions follow (multishot) */
#define CORIO_F_BUFFER (1U << 0) /* a provided buffer was used; id in flags >> 16 */

typedef void (*corio_cb)(corio_loop *loop, int res, unsigned flags, void *user);

/* > 0: a request id; < 0: -errno (-EINVAL for a bad argument). */
typedef int64_t corio_req;

/* Ask for cancellation: the callback follows, with -ECANCELED unless the
 * operation completed first. 0, or -ENOENT if the id is not pending. */
CORIO_API int corio_async_cancel(corio_loop *loop, corio_req id);

/* Give a pending operation a deadline: when it passes, the operation is
 * cancelled and completes with -ETIMEDOUT (unless it completed first).
 * 0 clears the deadline. Returns 0 or -ENOENT. */
CORIO_API int corio_async_deadline(corio_loop *loop, corio_req id, int64_t deadline);

/* A timer: @cb gets 0 at @deadline (-ECANCELED if cancelled first). */
CORIO_API corio_req corio_async_timer(corio_loop *loop, int64_t deadline, corio_cb cb, void *user);

/* Any io_uring operation (see corio_sqe in corio/io.h); multishot allowed. */
CORIO_API corio_req corio_async_sqe(corio_loop *loop, const struct io_uring_sqe *sqe, corio_cb cb,
				    void *user);

CORIO_API corio_req corio_async_nop(corio_loop *loop, corio_cb cb, void *user);
CORIO_API corio_req corio_async_read(corio_loop *loop, int fd, void *buf, size_t len, int64_t off,
				     corio_cb cb, void *user);
CORIO_API corio_req corio_async_write(corio_loop *loop, int fd, const void *buf, size_t len,
				      int64_t off, corio_cb cb, void *user);
CORIO_API corio_req corio_async_readv(corio_loop *loop, int fd, const struct iovec *iov, int iovcnt,
				      int64_t off, corio_cb cb, void *user);
CORIO_API corio_req corio_async_writev(corio_loop *loop, int fd, const struct iovec *iov,
				       int iovcnt, int64_t off, corio_cb cb, void *user);
CORIO_API corio_req corio_async_fsync(corio_loop *loop, int fd, corio_cb cb, void *user);
CORIO_API corio_req corio_async_fdatasync(corio_loop *loop, int fd, corio_cb cb, void *user);
CORIO_API corio_req corio_async_openat(corio_loop *loop, int dfd, const char *path, int flags,
				       mode_t mode, corio_cb cb, void *user);
CORIO_API corio_req corio_async_close(corio_loop *loop, int fd, corio_cb cb, void *user);
CORIO_API corio_req corio_async_statx(corio_loop *loop, int dfd, const char *path, int flags,
				      unsigned mask, struct statx *st, corio_cb cb, void *user);
CORIO_API corio_req corio_async_fallocate(corio_loop *loop, int fd, int mode, int64_t off,
					  int64_t len, corio_cb cb, void *user);
CORIO_API corio_req corio_async_unlinkat(corio_loop *loop, int dfd, const char *path, int flags,
					 corio_cb cb, void *user);
CORIO_API corio_req corio_async_renameat(corio_loop *loop, int olddfd, const char *oldpath,
					 int newdfd, const char *newpath, unsigned flags,
					 corio_cb cb, void *user);
CORIO_API corio_req corio_async_mkdirat(corio_loop *loop, int dfd, const char *path, mode_t mode,
					corio_cb cb, void *user);
CORIO_API corio_req corio_async_socket(corio_loop *loop, int domain, int type, int protocol,
				       corio_cb cb, void *user);
CORIO_API corio_req corio_async_accept(corio_loop *loop, int fd, struct sockaddr *addr,
				       socklen_t *addrlen, int flags, corio_cb cb, void *user);
CORIO_API corio_req corio_async_connect(corio_loop *loop, int fd, const struct sockaddr *addr,
					socklen_t addrlen, corio_cb cb, void *user);
CORIO_API corio_req corio_async_recv(corio_loop *loop, int fd, void *buf, size_t len, int flags,
				     corio_cb cb, void *user);
CORIO_API corio_req corio_async_send(corio_loop *loop, int fd, const void *buf, size_t len,
				     int flags, corio_cb cb, void *user);
CORIO_API corio_req corio_async_recvmsg(corio_loop *loop, int fd, struct msghdr *msg, int flags,
					corio_cb cb, void *user);
CORIO_API corio_req corio_async_sendmsg(corio_loop *loop, int fd, const struct msghdr *msg,
					int flags, corio_cb cb, void *user);
CORIO_API corio_req corio_async_shutdown(corio_loop *loop, int fd, int how, corio_cb cb,
					 void *user);
CORIO_API corio_req corio_async_poll(corio_loop *loop, int fd, unsigned events, corio_cb cb,
				     void *user);

#ifdef __cplusplus
}
#endif
#endif
