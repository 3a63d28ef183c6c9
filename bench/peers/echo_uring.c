/*
 * echo_uring: single-threaded TCP echo server on raw liburing, the io_uring
 * peer that corio's echo server is measured against.
 *
 * Techniques (kernel >= 6.1, liburing 2.3):
 *   - IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN, registered ring fd;
 *     one io_uring_submit_and_wait() per loop iteration, CQEs reaped in batch;
 *   - multishot accept into the fixed-file table (direct descriptors), so
 *     recv/send never take a file reference from the fd table;
 *   - multishot recv with a provided buffer ring (registered by hand with
 *     io_uring_register_buf_ring(), since io_uring_setup_buf_ring() came
 *     after 2.3);
 *   - the received buffer itself is sent back, and returned to the ring only
 *     when its send has completed; the ring is kept shallow and refilled
 *     with the most recently freed buffers, so that copies hit warm cache.
 *
 * Ordering: two sends in flight on one socket may complete out of order (the
 * first can hit a full socket buffer and go to poll while the second goes
 * through), so each connection has at most one send in flight and a FIFO of
 * received buffers behind it. When several buffers are queued they go out in
 * one sendmsg() with an iovec per buffer.
 *
 * Backpressure: a peer that sends but does not read would otherwise drain
 * the whole buffer pool. When a connection has QUEUE_HIGH buffers waiting,
 * its multishot recv is cancelled, and it is re-armed once the queue is back
 * under QUEUE_LOW.
 *
 * Lifetime: a connection's slot is released (close_direct) only when neither
 * its recv nor a send is in flight, so a CQE never refers to a reused slot.
 *
 * Usage: echo_uring PORT [NBUFS=1024 [BUFSIZE=65536]]   (listens on 127.0.0.1)
 * NBUFS is a power of two; buffer memory is reserved for all of them but only
 * the ones the load needs get touched.
 * Test with: nc 127.0.0.1 PORT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 16384 /* size of the sparse fixed-file table */
#define BGID 1
#define IOV_BATCH 32 /* max buffers gathered into one sendmsg */
#define QUEUE_HIGH 64
#define QUEUE_LOW 16

enum op { OP_ACCEPT, OP_RECV, OP_SEND, OP_CANCEL, OP_CLOSE };

/* user_data = slot << 8 | op */
#define UD(slot, op) (((uint64_t)(slot) << 8) | (op))
#define UD_OP(ud) ((unsigned)((ud) & 0xff))
#define UD_SLOT(ud) ((unsigned)((ud) >> 8))

struct qent {
	uint16_t bid;
	uint32_t off; /* bytes of this buffer already sent */
	uint32_t len; /* bytes received into it */
};

struct conn {
	uint8_t recv_armed;  /* multishot recv in flight */
	uint8_t send_busy;   /* one send/sendmsg in flight */
	uint8_t cancelling;  /* cancel of the recv submitted */
	uint8_t eof;         /* peer closed or error: close when idle */
	uint8_t failed;      /* drop queued data instead of sending it */
	uint32_t qhead, qcount, qcap; /* FIFO of received buffers */
	struct qent *q;
	struct msghdr msg;
	struct iovec iov[IOV_BATCH];
};

static struct io_uring ring;
static struct io_uring_buf_ring *br;
static unsigned char *bufbase;
static unsigned nbufs = 1024, bufsize = 65536;
static int br_mask;
/*
 * Buffer pool, kept cache-hot. The kernel takes buffers from the ring in
 * FIFO order, so a ring holding the whole pool would cycle every recv
 * through all NBUFS buffers and each copy would land in cold memory (that
 * cost ~20% of throughput with 4 KiB messages, against epoll's single hot
 * read buffer). Instead the ring holds only ring_target buffers; freed ones
 * go on a LIFO stack, and after each batch the ring is topped up from the
 * stack's top, i.e. with the most recently used buffers. ring_target doubles
 * after each batch in which a recv met an empty ring (ENOBUFS), up to the
 * whole pool.
 */
static uint16_t *free_stack;
static unsigned free_top, ring_avail, ring_target = 64;
static int ring_starved;
static struct conn *conns;

static struct io_uring_sqe *get_sqe(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

	if (!sqe) { /* SQ full: flush it and retry */
		io_uring_submit(&ring);
		sqe = io_uring_get_sqe(&ring);
		if (!sqe) {
			fprintf(stderr, "echo_uring: no sqe\n");
			exit(1);
		}
	}
	return sqe;
}

static void recycle(unsigned bid)
{
	free_stack[free_top++] = (uint16_t)bid;
}

static void refill_ring(void)
{
	int n = 0;

	if (ring_starved && ring_target < nbufs)
		ring_target *= 2;
	ring_starved = 0;
	while (ring_avail < ring_target && free_top) {
		unsigned bid = free_stack[--free_top];

		io_uring_buf_ring_add(br, bufbase + (size_t)bid * bufsize, bufsize, bid, br_mask,
				      n++);
		ring_avail++;
	}
	if (n)
		io_uring_buf_ring_advance(br, n);
}

static void arm_accept(int lfd)
{
	struct io_uring_sqe *sqe = get_sqe();

	io_uring_prep_multishot_accept_direct(sqe, lfd, NULL, NULL, 0);
	io_uring_sqe_set_data64(sqe, UD(0, OP_ACCEPT));
}

static void arm_recv(unsigned slot)
{
	struct io_uring_sqe *sqe = get_sqe();

	io_uring_prep_recv_multishot(sqe, slot, NULL, 0, 0);
	sqe->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, UD(slot, OP_RECV));
	conns[slot].recv_armed = 1;
}

static void cancel_recv(unsigned slot)
{
	struct io_uring_sqe *sqe = get_sqe();

	io_uring_prep_cancel64(sqe, UD(slot, OP_RECV), 0);
	io_uring_sqe_set_data64(sqe, UD(slot, OP_CANCEL));
	conns[slot].cancelling = 1;
}

static void start_send(unsigned slot)
{
	struct conn *c = &conns[slot];
	struct io_uring_sqe *sqe = get_sqe();
	unsigned n = c->qcount < IOV_BATCH ? c->qcount : IOV_BATCH;

	if (n == 1) {
		struct qent *e = &c->q[c->qhead];

		io_uring_prep_send(sqe, slot, bufbase + (size_t)e->bid * bufsize + e->off,
				   e->len - e->off, MSG_NOSIGNAL);
	} else {
		for (unsigned i = 0; i < n; i++) {
			struct qent *e = &c->q[(c->qhead + i) & (c->qcap - 1)];

			c->iov[i].iov_base = bufbase + (size_t)e->bid * bufsize + e->off;
			c->iov[i].iov_len = e->len - e->off;
		}
		memset(&c->msg, 0, sizeof(c->msg));
		c->msg.msg_iov = c->iov;
		c->msg.msg_iovlen = n;
		io_uring_prep_sendmsg(sqe, slot, &c->msg, MSG_NOSIGNAL);
	}
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, UD(slot, OP_SEND));
	c->send_busy = 1;
}

static void enqueue(struct conn *c, unsigned bid, unsigned len)
{
	if (c->qcount == c->qcap) { /* grow the power-of-two FIFO, unwrapped */
		unsigned ncap = c->qcap ? c->qcap * 2 : 16;
		struct qent *nq = malloc(ncap * sizeof(*nq));

		if (!nq) {
			fprintf(stderr, "echo_uring: out of memory\n");
			exit(1);
		}
		for (unsigned i = 0; i < c->qcount; i++)
			nq[i] = c->q[(c->qhead + i) & (c->qcap - 1)];
		free(c->q);
		c->q = nq;
		c->qcap = ncap;
		c->qhead = 0;
	}
	c->q[(c->qhead + c->qcount) & (c->qcap - 1)] = (struct qent){ bid, 0, len };
	c->qcount++;
}

static void drop_queue(struct conn *c)
{
	while (c->qcount) {
		recycle(c->q[c->qhead].bid);
		c->qhead = (c->qhead + 1) & (c->qcap - 1);
		c->qcount--;
	}
}

/* Decide what a connection needs next: more sends, a re-armed recv, or close. */
static void progress(unsigned slot)
{
	struct conn *c = &conns[slot];

	if (c->failed)
		drop_queue(c);
	if (c->qcount && !c->send_busy)
		start_send(slot);
	if (!c->eof) {
		if (!c->recv_armed && c->qcount < QUEUE_LOW)
			arm_recv(slot);
		else if (c->recv_armed && !c->cancelling && c->qcount >= QUEUE_HIGH)
			cancel_recv(slot);
		return;
	}
	if (c->recv_armed) {
		if (!c->cancelling)
			cancel_recv(slot);
		return;
	}
	if (c->send_busy || c->qcount)
		return; /* flush what the peer sent before it closed */

	struct io_uring_sqe *sqe = get_sqe();

	io_uring_prep_close_direct(sqe, slot);
	io_uring_sqe_set_data64(sqe, UD(slot, OP_CLOSE));
	free(c->q);
	memset(c, 0, sizeof(*c));
}

static void on_recv(unsigned slot, struct io_uring_cqe *cqe)
{
	struct conn *c = &conns[slot];

	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		c->recv_armed = 0;
		c->cancelling = 0;
	}
	if (cqe->flags & IORING_CQE_F_BUFFER)
		ring_avail--;
	if (cqe->res == -ENOBUFS)
		ring_starved = 1;
	if (cqe->res > 0) {
		unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

		if (c->eof)
			recycle(bid);
		else
			enqueue(c, bid, (unsigned)cqe->res);
	} else if (cqe->res == 0) {
		c->eof = 1;
	} else if (cqe->res != -ENOBUFS && cqe->res != -ECANCELED) {
		c->eof = 1; /* ECONNRESET and friends */
		c->failed = 1;
	}
	/* ENOBUFS: the pool ran dry; progress() re-arms once the recv has ended */
	progress(slot);
}

static void on_send(unsigned slot, struct io_uring_cqe *cqe)
{
	struct conn *c = &conns[slot];
	unsigned done = cqe->res > 0 ? (unsigned)cqe->res : 0;

	c->send_busy = 0;
	if (cqe->res < 0) {
		c->eof = 1;
		c->failed = 1;
	}
	while (done && c->qcount) {
		struct qent *e = &c->q[c->qhead];
		unsigned left = e->len - e->off;

		if (done < left) {
			e->off += done;
			break;
		}
		done -= left;
		recycle(e->bid);
		c->qhead = (c->qhead + 1) & (c->qcap - 1);
		c->qcount--;
	}
	progress(slot);
}

static int listen_on(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* Accepted sockets inherit TCP_NODELAY from the listener on Linux. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4096) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int setup_buffers(void)
{
	struct io_uring_buf_reg reg = { 0 };
	size_t rsz = nbufs * sizeof(struct io_uring_buf);
	int ret;

	free_stack = calloc(nbufs, sizeof(*free_stack));
	br = mmap(NULL, rsz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bufbase = mmap(NULL, (size_t)nbufs * bufsize, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!free_stack || br == MAP_FAILED || bufbase == MAP_FAILED)
		return -ENOMEM;
	reg.ring_addr = (uintptr_t)br;
	reg.ring_entries = nbufs;
	reg.bgid = BGID;
	ret = io_uring_register_buf_ring(&ring, &reg, 0);
	if (ret)
		return ret;
	io_uring_buf_ring_init(br);
	br_mask = io_uring_buf_ring_mask(nbufs);
	for (unsigned i = nbufs; i-- > 0;) /* buffer 0 on top */
		recycle(i);
	if (ring_target > nbufs)
		ring_target = nbufs;
	refill_ring();
	return 0;
}

int main(int argc, char **argv)
{
	struct io_uring_params p = { 0 };
	int port, lfd, ret;

	if (argc < 2) {
		fprintf(stderr, "usage: %s PORT [NBUFS [BUFSIZE]]\n", argv[0]);
		return 2;
	}
	port = atoi(argv[1]);
	if (argc > 2)
		nbufs = (unsigned)atoi(argv[2]);
	if (argc > 3)
		bufsize = (unsigned)atoi(argv[3]);
	if (!nbufs || (nbufs & (nbufs - 1)) || nbufs > 32768 || bufsize < 64) {
		fprintf(stderr, "echo_uring: NBUFS must be a power of two <= 32768\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);

	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
		  IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
	p.cq_entries = 16384;
	ret = io_uring_queue_init_params(1024, &ring, &p);
	if (ret < 0) {
		fprintf(stderr, "echo_uring: io_uring_queue_init: %s\n", strerror(-ret));
		return 1;
	}
	io_uring_register_ring_fd(&ring); /* optional: saves an fdget per enter */
	ret = io_uring_register_files_sparse(&ring, MAX_CONNS);
	if (ret < 0) {
		fprintf(stderr, "echo_uring: register_files_sparse: %s\n", strerror(-ret));
		return 1;
	}
	ret = setup_buffers();
	if (ret < 0) {
		fprintf(stderr, "echo_uring: buffer ring: %s\n", strerror(-ret));
		return 1;
	}
	conns = calloc(MAX_CONNS, sizeof(*conns));
	lfd = listen_on(port);
	if (!conns || lfd < 0) {
		perror("echo_uring: listen");
		return 1;
	}
	arm_accept(lfd);

	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, count = 0;

		ret = io_uring_submit_and_wait(&ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
			fprintf(stderr, "echo_uring: submit_and_wait: %s\n", strerror(-ret));
			return 1;
		}
		io_uring_for_each_cqe(&ring, head, cqe) {
			uint64_t ud = cqe->user_data;
			unsigned slot = UD_SLOT(ud);

			count++;
			switch (UD_OP(ud)) {
			case OP_ACCEPT:
				if (cqe->res >= 0 && (unsigned)cqe->res < MAX_CONNS) {
					arm_recv((unsigned)cqe->res);
				}
				if (!(cqe->flags & IORING_CQE_F_MORE))
					arm_accept(lfd);
				break;
			case OP_RECV:
				on_recv(slot, cqe);
				break;
			case OP_SEND:
				on_send(slot, cqe);
				break;
			default: /* cancel and close results need no action */
				break;
			}
		}
		/* one store for the ring tail, one for the CQ head */
		refill_ring();
		io_uring_cq_advance(&ring, count);
	}
}
