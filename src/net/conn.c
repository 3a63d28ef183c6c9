/*
 * Connections: a buffered reader over a multishot receive.
 *
 * Ring mode (io_uring with provided buffers): one multishot receive stays
 * armed; each completion hands us a kernel-filled buffer, queued on the conn
 * as a list of buffer nodes (no allocation). Readers look at the front
 * buffer in place and give buffers back to the ring as they consume them.
 *
 *   - ENOBUFS (the ring ran dry) ends the multishot. The next wait for data
 *     grows the ring (once per dry ring, not once per connection) and
 *     re-arms; if the ring may not grow any more, that wait reads into the
 *     conn's own memory instead. The unread data stayed in the socket, so
 *     nothing is lost, and no reader waits on a receive that cannot come.
 *   - Flow control: a conn that holds FLOW_MAX buffers it has not consumed
 *     stops its receive (so one slow reader cannot drain the ring for all)
 *     and re-arms when its reader wants more.
 *
 * The stage: contiguous memory of the conn's own, in front of the buffer
 * list. peek_more copies there when a message spans buffers (as much of a
 * buffer as max_buffered allows, the rest staying in the buffer), and the
 * reader goes back to the buffers in place once it has consumed what came
 * before them; plain mode (epoll, or no buffer rings) receives straight
 * into it.
 *
 * Closing cancels the receive and waits for its last completion before the
 * buffers go back and the conn is freed (DESIGN rule 1).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../op.h"
#include "net.h"

#define FLOW_MAX 64u
#define STAGE_MIN 16384u
#define STAGE_CHUNK 4096u
#define DEFAULT_MAX_BUFFERED (64u * 1024)
/*
 * Zero-copy sends. To a peer on this machine (loopback) the kernel copies
 * the data anyway when it delivers it, after pinning the pages: measured
 * (bench/zc.c, docs/BENCHMARKS.md) zero-copy runs at 0.48x to 0.80x of a
 * plain send, from 1 MiB down to 4 KiB writes. So a loopback peer never
 * gets it. For other peers the default threshold is 64 KiB, where zero-copy
 * usually pays on a real NIC; this machine has none to measure it on.
 */
#define DEFAULT_ZC_THRESHOLD ((size_t)64 * 1024)

struct corio_conn {
	corio_loop *loop;
	int fd;
	struct corio_conn_opts o;

	/* ring mode */
	struct corio__bufnode *head, *tail; /* filled buffers, oldest first */
	unsigned held;
	corio_req rx; /* the armed multishot receive, or 0 */
	struct corio__bufgroup *rx_group;
	bool rx_cancelling;
	bool rx_dry; /* the last receive ended with ENOBUFS */
	bool plain;  /* no buffer ring: receive into the stage */
	bool peer_checked; /* zero-copy: we know whether the peer is local */
	bool reading;	   /* a fiber waits for data */

	/* the stage */
	char *stage;
	size_t soff, slen, scap;
	size_t want; /* plain mode: room to have for the next receive */
	size_t staged_head; /* the stage's last bytes, copied from the head buffer */

	int end; /* 0: open; 1: end of stream; < 0: the error that ended it */
	struct corio__wait *reader;
	struct corio__wait *closer;
	size_t last_peek;
	struct corio_conn_stats st;
};

int corio_conn_open(corio_conn **out, int fd, const struct corio_conn_opts *opts)
{
	corio_conn *c;

	if (!out || fd < 0)
		return -EINVAL;
	if (!corio__tls_loop)
		return -EPERM;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->loop = corio__tls_loop;
	c->fd = fd;
	if (opts)
		c->o = *opts;
	if (!c->o.max_buffered)
		c->o.max_buffered = DEFAULT_MAX_BUFFERED;
	if (!c->o.zc_threshold)
		c->o.zc_threshold = DEFAULT_ZC_THRESHOLD;
	c->plain = !(c->loop->caps & CORIO__CAP_BUFS) || !c->loop->be->bufs->current(c->loop);
	*out = c;
	return 0;
}

int corio_conn_fd(const corio_conn *c)
{
	return c ? c->fd : -EINVAL;
}

void corio_conn_stats(const corio_conn *c, struct corio_conn_stats *out, size_t size)
{
	if (!c || !out)
		return;
	if (size > sizeof(c->st))
		size = sizeof(c->st);
	memcpy(out, &c->st, size);
}

/* ------------------------------------------------------- the receive */

static void wake_reader(corio_conn *c, int res)
{
	if (c->reader) {
		struct corio__wait *w = c->reader;

		c->reader = NULL;
		corio__wake(w, res);
	}
}

static void on_rx(corio_loop *loop, int res, unsigned flags, void *user)
{
	corio_conn *c = user;
	bool more = flags & IORING_CQE_F_MORE;

	c->st.recv_completions++;
	if (res > 0 && (flags & IORING_CQE_F_BUFFER)) {
		struct corio__bufnode *n =
			corio__bufgroup_take(c->rx_group, flags >> IORING_CQE_BUFFER_SHIFT);

		n->len = (uint32_t)res;
		n->off = 0;
		n->next = NULL;
		if (c->tail)
			c->tail->next = n;
		else
			c->head = n;
		c->tail = n;
		c->held++;
		c->st.bytes_in += (uint64_t)res;
		if (more && c->held >= FLOW_MAX && !c->rx_cancelling) {
			corio_async_cancel(loop, c->rx);
			c->rx_cancelling = true;
		}
	} else if (res == -ENOBUFS) {
		c->rx_dry = true;
	} else if (res == 0) {
		c->end = 1;
	} else if (res == -EINVAL && !c->held && !c->st.bytes_in) {
		c->plain = true; /* no multishot receive in this kernel */
	} else if (res < 0 && !(res == -ECANCELED && c->rx_cancelling)) {
		c->end = res;
	}
	if (!more) {
		c->rx = 0;
		c->rx_cancelling = false;
		if (c->closer)
			corio__wake(c->closer, 0);
	}
	wake_reader(c, 0);
}

static int arm(corio_conn *c)
{
	const struct corio__be_bufs *bufs = c->loop->be->bufs;
	struct corio__bufgroup *g = bufs->current(c->loop);
	struct io_uring_sqe sqe;
	corio_req id;

	if (c->rx_dry) {
		/* Grow the ring only if nobody did since we found it dry. */
		c->rx_dry = false;
		if (g == c->rx_group && bufs->grow(c->loop) < 0)
			return -ENOBUFS;
		g = bufs->current(c->loop);
	}
	memset(&sqe, 0, sizeof(sqe));
	io_uring_prep_recv(&sqe, c->fd, NULL, 0, 0);
	sqe.ioprio |= IORING_RECV_MULTISHOT;
	sqe.flags |= IOSQE_BUFFER_SELECT;
	sqe.buf_group = g->bgid;
	id = corio_async_sqe(c->loop, &sqe, on_rx, c);
	if (id < 0)
		return (int)id;
	c->rx = id;
	c->rx_group = g;
	if (c->st.recv_completions)
		c->st.rearms++;
	return 0;
}

/* Room for @need more bytes in the stage (compacting, then growing up to
 * @limit). */
static int stage_reserve(corio_conn *c, size_t need, size_t limit)
{
	size_t cap;
	char *p;

	if (c->soff && c->scap - c->slen < need) {
		memmove(c->stage, c->stage + c->soff, c->slen - c->soff);
		c->slen -= c->soff;
		c->soff = 0;
	}
	if (c->scap - c->slen >= need)
		return 0;
	if (c->slen + need > limit)
		return -EMSGSIZE;
	cap = c->scap ? c->scap : STAGE_MIN;
	while (cap < c->slen + need)
		cap *= 2;
	if (cap > limit)
		cap = limit;
	p = realloc(c->stage, cap);
	if (!p)
		return -ENOMEM;
	c->stage = p;
	c->scap = cap;
	return 0;
}

/* The earlier of the caller's deadline and the read timeout (0: none). */
static int64_t deadline_of(const corio_conn *c, int64_t deadline)
{
	int64_t t = c->o.read_timeout ? corio_now() + c->o.read_timeout : 0;

	if (!t || (deadline && deadline < t))
		return deadline;
	return t;
}

/* Receive straight into the stage (plain mode, or a dry ring at its limit).
 * A receive that fills the room it had doubles the room for the next one
 * (up to @limit): a busy connection reads in big gulps, as many system calls
 * fewer, while an idle one keeps a small stage. */
static int read_plain(corio_conn *c, size_t limit, int64_t deadline)
{
	size_t used = c->slen - c->soff, want = c->want ? c->want : 1;
	ssize_t n;
	int err;

	if (used >= limit)
		return -EMSGSIZE;
	if (want > limit - used)
		want = limit - used;
	err = stage_reserve(c, want, limit);
	if (err)
		return err;
	n = corio_recv_until(c->fd, c->stage + c->slen, c->scap - c->slen, 0,
			     deadline_of(c, deadline));
	c->st.recv_completions++;
	if (n > 0) {
		if ((size_t)n == c->scap - c->slen)
			c->want = 2 * (size_t)n; /* it was full: twice the room next time */
		c->slen += (size_t)n;
		c->st.bytes_in += (uint64_t)n;
		return 0;
	}
	if (n == 0) {
		c->end = 1;
		return 0;
	}
	if (n != -ETIMEDOUT && n != -ECANCELED)
		c->end = (int)n;
	return (int)n;
}

static void abort_read(struct corio__wait *w, int reason)
{
	corio_conn *c = w->obj;

	if (c->reader == w)
		c->reader = NULL;
	corio__wake(w, reason);
}

static int wait_ring(corio_conn *c, corio_fiber *f, size_t limit, int64_t deadline)
{
	struct corio__wait w = {.abort = abort_read, .obj = c};
	int err;

	if (c->plain)
		return read_plain(c, limit, deadline);
	if (!c->rx && !c->rx_cancelling) {
		err = arm(c);
		if (err == -ENOBUFS)
			return read_plain(c, limit, deadline); /* the ring may not grow */
		if (err)
			return err;
	}
	err = corio__take_cancel(f);
	if (err)
		return err;
	c->reader = &w;
	return corio__park(&w, deadline_of(c, deadline));
}

/* Wait until something more arrived (or the stream ended). One fiber at a
 * time: the stage and the reader's wake are the conn's, not per fiber. */
static int wait_data(corio_conn *c, size_t limit, int64_t deadline)
{
	corio_fiber *f = corio__self();
	int err;

	if (!f)
		return -EPERM;
	if (c->reading)
		return -EBUSY;
	c->reading = true;
	err = wait_ring(c, f, limit, deadline);
	c->reading = false;
	return err;
}

/* The contiguous bytes at the front of the stream. */
static size_t front(const corio_conn *c, const void **data)
{
	if (c->slen > c->soff) {
		*data = c->stage + c->soff;
		return c->slen - c->soff;
	}
	if (c->head) {
		*data = corio__bufnode_data(c->head) + c->head->off;
		return c->head->len - c->head->off;
	}
	return 0;
}

static ssize_t ended(const corio_conn *c)
{
	return c->end > 0 ? 0 : c->end;
}

ssize_t corio_conn_peek_until(corio_conn *c, const void **data, int64_t deadline)
{
	size_t n;
	int err;

	for (;;) {
		n = front(c, data);
		if (n) {
			c->last_peek = n;
			return (ssize_t)n;
		}
		if (c->end)
			return ended(c);
		err = wait_data(c, c->o.max_buffered, deadline);
		if (err)
			return err;
	}
}

ssize_t corio_conn_peek(corio_conn *c, const void **data)
{
	return corio_conn_peek_until(c, data, 0);
}

size_t corio_conn_buffered(const corio_conn *c)
{
	size_t n = c->slen - c->soff;

	for (const struct corio__bufnode *b = c->head; b; b = b->next)
		n += b->len - b->off;
	return n;
}

ssize_t corio_conn_peekv_until(corio_conn *c, struct iovec *iov, int *iovcnt, int64_t deadline)
{
	const void *p;
	ssize_t n = corio_conn_peek_until(c, &p, deadline); /* waits for the first byte */
	size_t total;
	int k = 0;

	if (n <= 0 || *iovcnt <= 0) {
		*iovcnt = 0;
		return n > 0 ? -EINVAL : n;
	}
	iov[k].iov_base = (void *)p;
	iov[k++].iov_len = (size_t)n;
	total = (size_t)n;
	/* p was the stage or the head; what follows is the buffer list. */
	for (struct corio__bufnode *b = c->slen > c->soff ? c->head : c->head->next;
	     b && k < *iovcnt; b = b->next) {
		iov[k].iov_base = corio__bufnode_data(b) + b->off;
		iov[k++].iov_len = b->len - b->off;
		total += b->len - b->off;
	}
	*iovcnt = k;
	return (ssize_t)total;
}

ssize_t corio_conn_peekv(corio_conn *c, struct iovec *iov, int *iovcnt)
{
	return corio_conn_peekv_until(c, iov, iovcnt, 0);
}

/* Give the front buffer back (it is fully consumed or copied out). */
static void pop_buffer(corio_conn *c)
{
	struct corio__bufnode *n = c->head;

	c->head = n->next;
	if (!c->head)
		c->tail = NULL;
	c->held--;
	c->staged_head = 0;
	c->loop->be->bufs->put(n);
}

/*
 * Copy the next bytes of the front buffer to the end of the stage: at least
 * as many as the stage holds (so a growing message takes a logarithmic
 * number of peek_more calls), at least STAGE_CHUNK, and never beyond
 * max_buffered. What is not copied stays in the buffer, behind the stage, so
 * a message of up to max_buffered bytes is assembled wherever the kernel's
 * buffers begin and end (a single buffer may be as large as max_buffered).
 * The buffer keeps the bytes that were copied from it too: once the reader
 * has consumed the stage down to them, consume() drops the stage and points
 * back into the buffer, so only messages that span buffers pay for a copy.
 */
static int stage_buffer(corio_conn *c)
{
	struct corio__bufnode *n = c->head;
	size_t len = n->len - n->off, used = c->slen - c->soff;
	size_t chunk = used > STAGE_CHUNK ? used : STAGE_CHUNK;
	int err;

	if (used >= c->o.max_buffered)
		return -EMSGSIZE;
	if (len > chunk)
		len = chunk;
	if (len > c->o.max_buffered - used)
		len = c->o.max_buffered - used;
	err = stage_reserve(c, len, c->o.max_buffered);
	if (err)
		return err;
	memcpy(c->stage + c->slen, corio__bufnode_data(n) + n->off, len);
	c->slen += len;
	c->st.coalesced += len;
	n->off += (uint32_t)len;
	c->staged_head += len;
	if (n->off == n->len)
		pop_buffer(c);
	return 0;
}

ssize_t corio_conn_peek_more_until(corio_conn *c, const void **data, int64_t deadline)
{
	size_t n;
	int err;

	for (;;) {
		n = front(c, data);
		if (n > c->last_peek) {
			c->last_peek = n;
			return (ssize_t)n;
		}
		/* The front is all we have seen: grow it in the stage. */
		if (c->head) {
			err = stage_buffer(c);
			if (err)
				return err;
			continue;
		}
		if (c->end)
			return ended(c);
		if (c->slen - c->soff >= c->o.max_buffered)
			return -EMSGSIZE;
		err = wait_data(c, c->o.max_buffered, deadline);
		if (err)
			return err;
	}
}

ssize_t corio_conn_peek_more(corio_conn *c, const void **data)
{
	return corio_conn_peek_more_until(c, data, 0);
}

void corio_conn_consume(corio_conn *c, size_t n)
{
	size_t left;

	/* Nothing consumed: what the last peek showed is still unread, and
	 * a following peek_more must still return more than that. */
	if (!n)
		return;
	while (n) {
		size_t k;

		if (c->slen > c->soff) {
			k = c->slen - c->soff < n ? c->slen - c->soff : n;
			c->soff += k;
			if (c->soff == c->slen) {
				c->soff = c->slen = 0;
				c->staged_head = 0;
			}
		} else if (c->head) {
			struct corio__bufnode *b = c->head;

			k = b->len - b->off < n ? b->len - b->off : n;
			b->off += (uint32_t)k;
			if (b->off == b->len)
				pop_buffer(c);
		} else {
			break; /* more than was buffered: ignore the excess */
		}
		n -= k;
	}
	/* What is left of the stage is a copy of bytes the head buffer still
	 * holds: read them there again (see stage_buffer). */
	left = c->slen - c->soff;
	if (left && left <= c->staged_head) {
		c->head->off -= (uint32_t)left;
		c->soff = c->slen = 0;
		c->staged_head = 0;
	}
	c->last_peek = 0;
}

ssize_t corio_conn_read_until(corio_conn *c, void *buf, size_t len, int64_t deadline)
{
	const void *p;
	ssize_t n = corio_conn_peek_until(c, &p, deadline);

	if (n <= 0)
		return n;
	if ((size_t)n > len)
		n = (ssize_t)len;
	memcpy(buf, p, (size_t)n);
	corio_conn_consume(c, (size_t)n);
	return n;
}

ssize_t corio_conn_read(corio_conn *c, void *buf, size_t len)
{
	return corio_conn_read_until(c, buf, len, 0);
}

/* ------------------------------------------------------------- writes */

static ssize_t send_zc_all(corio_conn *c, const char *p, size_t len)
{
	struct io_uring_sqe sqe;
	size_t done = 0;

	while (done < len) {
		int n;

		memset(&sqe, 0, sizeof(sqe));
		io_uring_prep_send_zc(&sqe, c->fd, p + done, len - done > CORIO__MAX_RW ?
			CORIO__MAX_RW : len - done, MSG_NOSIGNAL, 0);
		/* Returns after the notification: the kernel is done with p. */
		n = corio_sqe(&sqe);
		if (n == -EOPNOTSUPP && done == 0)
			return corio_send_all(c->fd, p, len); /* e.g. AF_UNIX */
		if (n < 0)
			return n;
		done += (size_t)n;
		c->st.zc_sends++;
	}
	return (ssize_t)len;
}

/* Whether the peer is this machine. A direct descriptor has no
 * getpeername: its accept noted the answer. */
static bool loopback_peer(corio_conn *c)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (corio_fd_is_direct(c->fd))
		return (c->loop->caps & CORIO__CAP_DIRECT) &&
		       c->loop->be->direct->loopback(c->loop, c->fd);
	return !getpeername(c->fd, (struct sockaddr *)&ss, &len) && corio__addr_loopback(&ss);
}

/* Whether a write of @len goes zero-copy (see DEFAULT_ZC_THRESHOLD). */
static bool use_zc(corio_conn *c, size_t len)
{
	if (len < c->o.zc_threshold || !corio_op_supported(c->loop, IORING_OP_SEND_ZC))
		return false;
	if (!c->peer_checked) {
		c->peer_checked = true;
		if (c->o.zc_threshold == DEFAULT_ZC_THRESHOLD && loopback_peer(c))
			c->o.zc_threshold = SIZE_MAX; /* a threshold set by the caller is obeyed */
	}
	return len >= c->o.zc_threshold;
}

ssize_t corio_conn_write_until(corio_conn *c, const void *buf, size_t len, int64_t deadline)
{
	ssize_t n;

	/* Zero-copy only without a deadline: its buffer stays the kernel's
	 * until the peer has taken the data (on loopback: read it), and no
	 * deadline can shorten that. */
	if (!deadline && use_zc(c, len))
		n = send_zc_all(c, buf, len);
	else
		n = corio_send_all_until(c->fd, buf, len, deadline);
	if (n > 0)
		c->st.bytes_out += (uint64_t)n;
	return n;
}

ssize_t corio_conn_write(corio_conn *c, const void *buf, size_t len)
{
	return corio_conn_write_until(c, buf, len, 0);
}

ssize_t corio_conn_writev_until(corio_conn *c, const struct iovec *iov, int iovcnt,
				int64_t deadline)
{
	struct iovec local[16];
	struct msghdr msg;
	size_t total = 0;
	int i = 0;

	if (iovcnt < 0 || iovcnt > 16)
		return -EINVAL;
	if (iovcnt == 1) /* send: cheaper than sendmsg in the kernel */
		return corio_conn_write_until(c, iov[0].iov_base, iov[0].iov_len, deadline);
	memcpy(local, iov, (size_t)iovcnt * sizeof(*iov));
	while (i < iovcnt) {
		ssize_t n;

		memset(&msg, 0, sizeof(msg));
		msg.msg_iov = local + i;
		msg.msg_iovlen = (size_t)(iovcnt - i);
		n = corio_sendmsg_until(c->fd, &msg, 0, deadline);
		if (n < 0)
			return n;
		total += (size_t)n;
		/* Skip what was sent; continue a short write mid-iovec. */
		while (i < iovcnt && (size_t)n >= local[i].iov_len)
			n -= (ssize_t)local[i++].iov_len;
		if (i < iovcnt) {
			local[i].iov_base = (char *)local[i].iov_base + n;
			local[i].iov_len -= (size_t)n;
		}
	}
	c->st.bytes_out += total;
	return (ssize_t)total;
}

ssize_t corio_conn_writev(corio_conn *c, const struct iovec *iov, int iovcnt)
{
	return corio_conn_writev_until(c, iov, iovcnt, 0);
}

int corio_conn_shutdown_until(corio_conn *c, int how, int64_t deadline)
{
	return corio_shutdown_until(c->fd, how, deadline);
}

int corio_conn_shutdown(corio_conn *c, int how)
{
	return corio_conn_shutdown_until(c, how, 0);
}

static void abort_close(struct corio__wait *w, int reason)
{
	(void)w;
	(void)reason; /* closing waits for the kernel whatever happens */
}

int corio_conn_close(corio_conn *c)
{
	int err;

	if (!c)
		return -EINVAL;
	if (c->rx) {
		struct corio__wait w = {.abort = abort_close, .obj = c};

		if (!corio__self())
			return -EPERM;
		if (!c->rx_cancelling) {
			corio_async_cancel(c->loop, c->rx);
			c->rx_cancelling = true;
		}
		/* Uncancellable: the kernel must let go of the conn first. */
		while (c->rx) {
			c->closer = &w;
			corio__park(&w, 0);
			c->closer = NULL;
		}
	}
	while (c->head)
		pop_buffer(c);
	free(c->stage);
	/* close(2) of a socket does not block; unlike corio_close it also
	 * works while the fiber is being cancelled (loop destroy). */
	err = corio__close_now(c->fd);
	free(c);
	return err;
}
