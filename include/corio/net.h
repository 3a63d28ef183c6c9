/*
 * corio: TCP servers and connections, at io_uring's pace.
 *
 *  - corio_listen_tcp(): a listening socket, TCP_NODELAY (inherited by every
 *    accepted socket), optionally SO_REUSEPORT for one listener per loop.
 *  - corio_serve(): an accept loop that runs a handler in a new fiber per
 *    connection. On io_uring it is one multishot accept; when the process
 *    runs out of descriptors (EMFILE/ENFILE) or memory it backs off and
 *    resumes when connections close, without dropping the listener; the
 *    first failure of such an episode is logged (with what to raise), and
 *    so is its end.
 *    Optionally it accepts into direct descriptors (corio/io.h), with a
 *    slot reserved per accept so that a full table pauses accepting and
 *    never drops a connection.
 *  - corio_conn: a connection with a buffered reader. On io_uring the reader
 *    is fed by a multishot receive into the loop's provided-buffer ring: no
 *    system call and no SQE per read; the handler looks at the kernel's
 *    buffers in place (corio_conn_peek) and hands them back when consumed.
 *    When the ring runs dry (ENOBUFS) it is grown and the receive re-armed;
 *    nothing is lost and nothing hangs. On epoll the same API reads into a
 *    per-connection buffer on readiness.
 *  - Writes send everything (short writes are continued), with zero-copy
 *    send (IORING_OP_SEND_ZC) at and above a size threshold, except to a
 *    loopback peer, where it is slower; the call returns only once the
 *    kernel has let go of the buffer.
 *
 * Errors are -errno: a peer reset gives -ECONNRESET or -EPIPE, never a
 * signal; 0 from a read is the peer's end of stream.
 */
#ifndef CORIO_NET_H
#define CORIO_NET_H

#include <sys/uio.h>

#include "corio/types.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CORIO_LISTEN_REUSEPORT (1u << 0) /* SO_REUSEPORT: several listeners, one port */

/*
 * Create, bind and listen (plain system calls: do it at start-up). @host is
 * an IPv4 or IPv6 literal (NULL: 127.0.0.1); @port 0 picks a free port (see
 * corio_local_port). Returns the fd or -errno.
 */
CORIO_API int corio_listen_tcp(const char *host, int port, int backlog, unsigned flags);

/* The local port of a bound socket, or -errno. */
CORIO_API int corio_local_port(int fd);

/* From a fiber: connect to @host:@port (literal address), TCP_NODELAY set.
 * Returns the fd or -errno (-ECONNREFUSED, -ETIMEDOUT at @deadline...). */
CORIO_API int corio_dial_tcp(const char *host, int port);
CORIO_API int corio_dial_tcp_until(const char *host, int port, int64_t deadline);

/* Send all of @buf (continuing short sends). Returns len or -errno
 * (-ETIMEDOUT at @deadline); on an error some bytes may have been sent.
 * From a fiber. */
CORIO_API ssize_t corio_send_all(int fd, const void *buf, size_t len);
CORIO_API ssize_t corio_send_all_until(int fd, const void *buf, size_t len, int64_t deadline);

typedef void (*corio_handler_fn)(int fd, void *arg);

struct corio_serve_stats {
	uint64_t accepted; /* connections accepted (the refused ones too) */
	uint64_t refused;  /* accepted but closed: no memory for a fiber */
	uint64_t backoffs; /* pauses after EMFILE, ENFILE, ENOBUFS or ENOMEM */
	uint64_t active;   /* handlers running now */
};

struct corio_serve_opts {
	size_t stack_size;		 /* handler fibers' stacks; 0: the loop default */
	unsigned max_conns;		 /* at most this many handlers at once; 0: no limit
					    (with a limit, one accept at a time: no multishot) */
	struct corio_serve_stats *stats; /* if set, kept up to date while serving */
	bool direct; /* accept into direct descriptors (see corio/io.h) where
			the loop can (io_uring); plain descriptors elsewhere */
};

/*
 * From a fiber: accept connections on @listen_fd for ever, running
 * handler(fd, arg) in a new detached fiber for each. The handler owns fd
 * (close it, or hand it to corio_conn_open, whose close closes it).
 * Returns only on an error that is not the listener's fault to retry
 * (-EBADF, -EINVAL...), -ECANCELED when the serving fiber is cancelled, or,
 * for the _until form, -ETIMEDOUT at @deadline; running handlers carry on.
 */
CORIO_API int corio_serve(int listen_fd, corio_handler_fn handler, void *arg,
			  const struct corio_serve_opts *opts);
CORIO_API int corio_serve_until(int listen_fd, corio_handler_fn handler, void *arg,
				const struct corio_serve_opts *opts, int64_t deadline);

/* ---------------------------------------------------------- connections */

/*
 * A connection: the socket's reading side belongs to the conn, the writing
 * side is shared.
 *  - Deadlines: every call that waits has an _until form; read_timeout
 *    (below) also bounds each wait for data. close waits for the kernel
 *    only (it cannot be cancelled and needs no deadline).
 *  - The descriptor (corio_conn_fd): writes may go to it directly (corio_send,
 *    corio_send_all, corio_sendmsg, corio_write, a file's contents with
 *    corio_sqe) between the conn's own writes, and so may socket options and
 *    getpeername (not on a direct descriptor). Reads must not: on io_uring a
 *    multishot receive may be armed on the socket at any time, and a read
 *    of one's own would take bytes out of the middle of the conn's stream.
 *    Close it only with corio_conn_close.
 *  - One fiber at a time per direction: a second fiber that waits to read
 *    while one already does gets -EBUSY; two fibers writing at once
 *    interleave their bytes (put a corio_mutex around writes if several
 *    fibers write).
 */
typedef struct corio_conn corio_conn;

struct corio_conn_opts {
	int64_t read_timeout;  /* a read waits at most this long (ns); 0: no limit */
	size_t max_buffered;   /* peek_more assembles at most this much; 0: 64 KiB
				  (see corio_conn_peek_more) */
	size_t zc_threshold;   /* writes of this size or more, without a deadline,
				  use SEND_ZC; 0: the default, 64 KiB, and never to
				  a loopback peer (measured slower there);
				  SIZE_MAX: never */
};

/* Wrap a connected socket (ownership of @fd passes to the conn). From the
 * loop's thread. Returns 0 or -errno (-ENOMEM). */
CORIO_API int corio_conn_open(corio_conn **out, int fd, const struct corio_conn_opts *opts);

/* Close: stop receiving, give back buffers, close the fd. From a fiber of
 * the conn's loop; waits for the kernel to let go of the conn's buffers. */
CORIO_API int corio_conn_close(corio_conn *c);

CORIO_API int corio_conn_fd(const corio_conn *c);

/*
 * Look at buffered data without copying: waits until there is some, then
 * sets *data to it and returns its length (> 0): the front receive buffer,
 * which may hold more than max_buffered bytes. Returns 0 at the end of the
 * stream, -ETIMEDOUT after read_timeout, -EBUSY if another fiber is waiting
 * to read, or -errno. The data stays valid until corio_conn_consume or the
 * next peek.
 */
CORIO_API ssize_t corio_conn_peek(corio_conn *c, const void **data);

/*
 * Like peek, but returns more than the previous peek returned (waiting for
 * more bytes and, if they arrive in separate buffers, making them
 * contiguous). For parsers that need more of a message. Returns -EMSGSIZE
 * when max_buffered would be exceeded, 0 at end of stream.
 *
 * Sizing: the bytes counted against max_buffered are the unconsumed ones,
 * from the first byte not yet consumed. A message of up to max_buffered
 * bytes is always assembled, wherever the kernel's receive buffers begin
 * and end and whatever their size (corio_loop_opts.recv_buffer_size), on
 * both backends; a longer one gets -EMSGSIZE. So consume what has been
 * parsed before asking for more, and set max_buffered to the largest
 * message the protocol allows (a connection may hold that much memory of
 * its own while a message spans buffers). Only such messages are copied:
 * once they are consumed, peek reads the kernel's buffers in place again.
 */
CORIO_API ssize_t corio_conn_peek_more(corio_conn *c, const void **data);

/* Deadline forms of peek and peek_more: -ETIMEDOUT at @deadline (the
 * conn's read_timeout still applies to each wait). */
CORIO_API ssize_t corio_conn_peek_until(corio_conn *c, const void **data, int64_t deadline);
CORIO_API ssize_t corio_conn_peek_more_until(corio_conn *c, const void **data, int64_t deadline);

/*
 * Everything buffered, in place, as up to *iovcnt pieces (waiting until
 * there is something): sets *iovcnt to the pieces used and returns their
 * total length; 0 at end of stream, or -errno. For forwarding received data
 * (one writev for many receive buffers). Valid until consume or next peek.
 */
CORIO_API ssize_t corio_conn_peekv(corio_conn *c, struct iovec *iov, int *iovcnt);
CORIO_API ssize_t corio_conn_peekv_until(corio_conn *c, struct iovec *iov, int *iovcnt,
					 int64_t deadline);

/* Bytes buffered now, without waiting (what a peekv would see). */
CORIO_API size_t corio_conn_buffered(const corio_conn *c);

/* Mark @n bytes from the start of the buffered data as used (0: no effect;
 * a later peek_more still returns more than the last peek did). */
CORIO_API void corio_conn_consume(corio_conn *c, size_t n);

/* Copy up to @len bytes out (waiting for at least one). Returns the count,
 * 0 at end of stream, or -errno. */
CORIO_API ssize_t corio_conn_read(corio_conn *c, void *buf, size_t len);
CORIO_API ssize_t corio_conn_read_until(corio_conn *c, void *buf, size_t len, int64_t deadline);

/*
 * Send all of @buf, continuing short sends. Returns len or -errno. The
 * _until forms bound the whole write: at @deadline they return -ETIMEDOUT.
 * After an error (a deadline too) part of the data may have been sent: the
 * stream is then out of step, and the connection is best closed. writev
 * takes at most 16 pieces (-EINVAL beyond).
 *
 * Zero-copy (zc_threshold): the buffer stays the kernel's until the peer has
 * taken the data (acknowledged it; on loopback, read it), and the call
 * returns only then, also when cancelled: a zero-copy write to a peer that
 * stops reading holds its fiber (and a loop or pool being stopped) until the
 * peer reads or the connection ends. No deadline could shorten that, so
 * writes with a deadline (the _until forms, deadline != 0) always copy; use
 * them where a peer may stall.
 */
CORIO_API ssize_t corio_conn_write(corio_conn *c, const void *buf, size_t len);
CORIO_API ssize_t corio_conn_write_until(corio_conn *c, const void *buf, size_t len,
					 int64_t deadline);
CORIO_API ssize_t corio_conn_writev(corio_conn *c, const struct iovec *iov, int iovcnt);
CORIO_API ssize_t corio_conn_writev_until(corio_conn *c, const struct iovec *iov, int iovcnt,
					  int64_t deadline);

/* Shut down one or both directions (shutdown(2)'s @how: SHUT_WR tells the
 * peer we are done sending; the conn still reads what the peer sends). */
CORIO_API int corio_conn_shutdown(corio_conn *c, int how);
CORIO_API int corio_conn_shutdown_until(corio_conn *c, int how, int64_t deadline);

struct corio_conn_stats {
	uint64_t bytes_in, bytes_out;
	uint64_t recv_completions; /* multishot CQEs, or recv calls on epoll */
	uint64_t rearms;	   /* multishot receive re-armed (ENOBUFS, flow control) */
	uint64_t coalesced;	   /* bytes copied to make data contiguous */
	uint64_t zc_sends;	   /* zero-copy sends */
};
CORIO_API void corio_conn_stats(const corio_conn *c, struct corio_conn_stats *out, size_t size);

#ifdef __cplusplus
}
#endif
#endif
