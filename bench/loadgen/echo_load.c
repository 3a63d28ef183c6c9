/*
 * echo_load: closed-loop load generator for TCP echo servers on 127.0.0.1.
 *
 * One thread, one io_uring (SINGLE_ISSUER | DEFER_TASKRUN), fixed files,
 * multishot recv into a provided buffer ring, one send in flight per
 * connection. Each of the -c connections keeps -d messages of -s bytes in
 * flight: a new message becomes due the moment an earlier one has been
 * echoed in full, and all messages due on a connection go out in one send.
 *
 * Message layout: 8-byte sequence number, 4-byte connection index, 4-byte
 * size, then a payload pattern that depends on the connection. Every echoed
 * byte is compared with what was sent; a message with any wrong byte counts
 * as one error (so do connections that fail or close early).
 *
 * Latency is per message, from the moment it became due to the moment its
 * last byte came back, recorded in a log-linear histogram (64 sub-buckets per
 * power of two, < 1.6 % error); timestamps are taken once per completion, so
 * all messages completed by one recv share one timestamp.
 *
 * The run is -w seconds of warm-up (not counted) followed by -t seconds of
 * measurement. It ends on time even if the server stops answering: waits are
 * bounded, connect() has a send timeout, and an alarm is the last resort.
 *
 * Output, one line:
 *   msgs_per_sec=... p50_us=... p99_us=... p999_us=... max_us=... errors=...
 *   mismatches=... conn_errors=... msgs=... total_msgs=... conns=... size=...
 *   depth=... duration_s=... client_cpu=...
 * total_msgs includes the warm-up (use it with server CPU time measured over
 * the whole run); client_cpu is this process's CPU time during the
 * measurement divided by its length (near 1.00 = the generator saturated).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HDR 16
#define BGID 1
#define NBUFS 2048
#define BUFSZ 16384

enum op { OP_RECV, OP_SEND };
#define UD(i, op) (((uint64_t)(i) << 8) | (op))

/* ---- log-linear latency histogram (values in ns) ---- */
#define SUB_BITS 6
#define SUB (1u << SUB_BITS)
#define NBUCKETS (64 * SUB)

static uint64_t hist[NBUCKETS], hist_n, hist_max;

static unsigned bucket_of(uint64_t v)
{
	unsigned msb, shift;

	if (v < 2 * SUB)
		return (unsigned)v;
	msb = 63 - (unsigned)__builtin_clzll(v);
	shift = msb - SUB_BITS;
	return shift * SUB + (unsigned)(v >> shift);
}

/* midpoint of a bucket */
static double bucket_value(unsigned b)
{
	unsigned shift, mant;

	if (b < 2 * SUB)
		return b;
	shift = b / SUB - 1;
	mant = b - shift * SUB;
	return ((double)mant + 0.5) * (double)(1ull << shift);
}

static void hist_add(uint64_t v)
{
	hist[bucket_of(v)]++;
	hist_n++;
	if (v > hist_max)
		hist_max = v;
}

static double hist_pct(double p)
{
	uint64_t rank = (uint64_t)ceil(p * (double)hist_n), seen = 0;

	if (!hist_n)
		return 0;
	if (rank < 1)
		rank = 1;
	for (unsigned b = 0; b < NBUCKETS; b++) {
		seen += hist[b];
		if (seen >= rank) /* a midpoint can exceed the largest sample */
			return bucket_value(b) < (double)hist_max ? bucket_value(b)
								  : (double)hist_max;
	}
	return (double)hist_max;
}

/* ---- connections ---- */
struct lconn {
	uint8_t dead, send_busy, bad;
	uint32_t pending;   /* messages due but not yet handed to a send */
	uint64_t next_due;  /* seq of the next message to become due */
	uint64_t next_send; /* seq of the next message to put in a send */
	uint64_t next_recv; /* seq of the message being received */
	uint32_t rpos;      /* bytes of next_recv received so far */
	uint32_t soff, slen; /* current send: sbuf[soff..slen) */
	uint64_t *ts;       /* [depth] due time of each message in flight */
	unsigned char *sbuf; /* depth slots of `size` bytes, payload pre-filled */
};

static struct io_uring ring;
static struct io_uring_buf_ring *br;
static unsigned char *bufbase;
static int recycled;
static struct lconn *conns;
static int nconns = 64, size = 64, depth = 1;
static uint64_t win_start, win_end, msgs, total_msgs, mismatches, conn_errors;
static int stopping, ndead;
static int *fds; /* the sockets, open for the whole run */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct io_uring_sqe *get_sqe(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

	if (!sqe) {
		io_uring_submit(&ring);
		sqe = io_uring_get_sqe(&ring);
		if (!sqe) {
			fprintf(stderr, "echo_load: no sqe\n");
			exit(1);
		}
	}
	return sqe;
}

static void make_hdr(unsigned char *h, uint64_t seq, uint32_t idx)
{
	uint32_t sz = (uint32_t)size;

	memcpy(h, &seq, 8);
	memcpy(h + 8, &idx, 4);
	memcpy(h + 12, &sz, 4);
}

static void kill_conn(int i)
{
	if (!conns[i].dead) {
		conns[i].dead = 1;
		conn_errors++;
		ndead++;
	}
}

static void arm_recv(int i)
{
	struct io_uring_sqe *sqe = get_sqe();

	io_uring_prep_recv_multishot(sqe, i, NULL, 0, 0);
	sqe->flags |= IOSQE_FIXED_FILE | IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, UD(i, OP_RECV));
}

static void submit_send(int i)
{
	struct lconn *c = &conns[i];
	struct io_uring_sqe *sqe = get_sqe();

	io_uring_prep_send(sqe, i, c->sbuf + c->soff, c->slen - c->soff, MSG_NOSIGNAL);
	sqe->flags |= IOSQE_FIXED_FILE;
	io_uring_sqe_set_data64(sqe, UD(i, OP_SEND));
	c->send_busy = 1;
}

/* Put every due message into one send; sbuf is free since no send is busy. */
static void flush(int i)
{
	struct lconn *c = &conns[i];

	for (uint32_t k = 0; k < c->pending; k++)
		make_hdr(c->sbuf + (size_t)k * size, c->next_send + k, (uint32_t)i);
	c->next_send += c->pending;
	c->soff = 0;
	c->slen = c->pending * (uint32_t)size;
	c->pending = 0;
	submit_send(i);
}

static void message_done(int i, uint64_t now)
{
	struct lconn *c = &conns[i];
	uint64_t t0 = c->ts[c->next_recv % (uint64_t)depth];

	total_msgs++;
	if (now >= win_start && now < win_end) {
		msgs++;
		hist_add(now - t0);
	}
	mismatches += c->bad;
	c->bad = 0;
	c->rpos = 0;
	c->next_recv++;
	if (!stopping) { /* the freed slot makes the next message due */
		c->ts[c->next_due % (uint64_t)depth] = now;
		c->next_due++;
		c->pending++;
	}
}

static void on_data(int i, const unsigned char *p, uint32_t len, uint64_t now)
{
	struct lconn *c = &conns[i];
	unsigned char h[HDR];

	while (len) {
		uint32_t take = (uint32_t)size - c->rpos;

		if (take > len)
			take = len;
		if (c->next_recv >= c->next_send) { /* more bytes than were sent */
			mismatches++;
			kill_conn(i);
			return;
		}
		if (c->rpos < HDR) {
			uint32_t n = HDR - c->rpos < take ? HDR - c->rpos : take;

			make_hdr(h, c->next_recv, (uint32_t)i);
			if (memcmp(p, h + c->rpos, n))
				c->bad = 1;
			if (take > n && memcmp(p + n, c->sbuf + HDR, take - n))
				c->bad = 1;
		} else if (memcmp(p, c->sbuf + c->rpos, take)) {
			c->bad = 1;
		}
		c->rpos += take;
		p += take;
		len -= take;
		if (c->rpos == (uint32_t)size)
			message_done(i, now);
	}
	if (c->pending && !c->send_busy)
		flush(i);
}

static void on_cqe(struct io_uring_cqe *cqe)
{
	int i = (int)(cqe->user_data >> 8);
	struct lconn *c = &conns[i];

	if ((cqe->user_data & 0xff) == OP_SEND) {
		c->send_busy = 0;
		if (cqe->res <= 0) {
			kill_conn(i);
			return;
		}
		c->soff += (uint32_t)cqe->res;
		if (c->soff < c->slen)
			submit_send(i);
		else if (c->pending && !c->dead)
			flush(i);
		return;
	}
	if (cqe->res > 0) {
		unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
		unsigned char *buf = bufbase + (size_t)bid * BUFSZ;

		if (!c->dead)
			on_data(i, buf, (uint32_t)cqe->res, now_ns());
		io_uring_buf_ring_add(br, buf, BUFSZ, bid, NBUFS - 1, recycled++);
	} else if (cqe->res != -ENOBUFS) {
		if (!stopping)
			kill_conn(i); /* EOF or error before the end */
		return;
	}
	if (!(cqe->flags & IORING_CQE_F_MORE) && !c->dead)
		arm_recv(i);
}

static int connect_one(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct timeval tv = { .tv_sec = 2 }; /* bounds connect() */
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void on_alarm(int sig)
{
	static const char m[] = "echo_load: hard time limit hit\n";

	(void)!write(2, m, sizeof(m) - 1);
	_exit(3);
}

static void usage(const char *p)
{
	fprintf(stderr,
		"usage: %s -p PORT [-c CONNS=64] [-s SIZE=64] [-d DEPTH=1] [-t SECONDS=5]"
		" [-w WARMUP=1]\n", p);
	exit(2);
}

static int setup(int port)
{
	struct io_uring_params prm = { 0 };
	struct io_uring_buf_reg reg = { 0 };
	int ret;

	prm.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
		    IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
	prm.cq_entries = 16384;
	ret = io_uring_queue_init_params(1024, &ring, &prm);
	if (ret < 0) {
		fprintf(stderr, "echo_load: io_uring init: %s\n", strerror(-ret));
		return -1;
	}
	io_uring_register_ring_fd(&ring);
	br = mmap(NULL, NBUFS * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bufbase = mmap(NULL, (size_t)NBUFS * BUFSZ, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (br == MAP_FAILED || bufbase == MAP_FAILED)
		return -1;
	reg.ring_addr = (uintptr_t)br;
	reg.ring_entries = NBUFS;
	reg.bgid = BGID;
	ret = io_uring_register_buf_ring(&ring, &reg, 0);
	if (ret) {
		fprintf(stderr, "echo_load: register_buf_ring: %s\n", strerror(-ret));
		return -1;
	}
	io_uring_buf_ring_init(br);
	for (int b = 0; b < NBUFS; b++)
		io_uring_buf_ring_add(br, bufbase + (size_t)b * BUFSZ, BUFSZ, (unsigned short)b,
				      NBUFS - 1, b);
	io_uring_buf_ring_advance(br, NBUFS);

	conns = calloc((size_t)nconns, sizeof(*conns));
	fds = calloc((size_t)nconns, sizeof(int));
	if (!conns || !fds)
		return -1;
	for (int i = 0; i < nconns; i++) {
		struct lconn *c = &conns[i];

		fds[i] = connect_one(port);
		if (fds[i] < 0) {
			fprintf(stderr, "echo_load: connect 127.0.0.1:%d: %s\n", port,
				strerror(errno));
			return -1;
		}
		c->ts = calloc((size_t)depth, sizeof(uint64_t));
		c->sbuf = malloc((size_t)depth * size);
		if (!c->ts || !c->sbuf)
			return -1;
		for (int s = 0; s < depth; s++)
			for (int b = HDR; b < size; b++)
				c->sbuf[(size_t)s * size + b] = (unsigned char)(b * 31 + i * 7 + 0x5a);
	}
	ret = io_uring_register_files(&ring, fds, (unsigned)nconns);
	if (ret < 0) {
		fprintf(stderr, "echo_load: register_files: %s\n", strerror(-ret));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	double dur = 5, warm = 1, cpu0 = 0, cpu1 = 0;
	uint64_t t0, end;
	int opt, port = 0, measuring = 0;

	while ((opt = getopt(argc, argv, "p:c:s:d:t:w:h")) != -1) {
		switch (opt) {
		case 'p': port = atoi(optarg); break;
		case 'c': nconns = atoi(optarg); break;
		case 's': size = atoi(optarg); break;
		case 'd': depth = atoi(optarg); break;
		case 't': dur = atof(optarg); break;
		case 'w': warm = atof(optarg); break;
		default: usage(argv[0]);
		}
	}
	if (port <= 0 || nconns < 1 || nconns > 65536 || size < HDR || size > (1 << 20) ||
	    depth < 1 || depth > 1024 || dur <= 0 || warm < 0)
		usage(argv[0]);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	alarm((unsigned)(warm + dur) + 15);
	if (setup(port) < 0)
		return 1;

	t0 = now_ns();
	win_start = t0 + (uint64_t)(warm * 1e9);
	win_end = win_start + (uint64_t)(dur * 1e9);
	end = win_end;
	for (int i = 0; i < nconns; i++) {
		arm_recv(i);
		for (int k = 0; k < depth; k++)
			conns[i].ts[k] = t0;
		conns[i].next_due = (uint64_t)depth;
		conns[i].pending = (uint32_t)depth;
		flush(i);
	}

	for (;;) {
		struct __kernel_timespec to;
		struct io_uring_cqe *cqe;
		unsigned head, count = 0;
		uint64_t now = now_ns();

		if (!measuring && now >= win_start) {
			measuring = 1;
			cpu0 = cpu_s();
		}
		if (now >= end || ndead == nconns)
			break;
		/* wake at least every 50 ms so the deadline is honoured */
		to.tv_sec = 0;
		to.tv_nsec = (long long)(end - now < 50000000 ? end - now : 50000000);
		io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &to, NULL);
		io_uring_for_each_cqe(&ring, head, cqe) {
			count++;
			on_cqe(cqe);
		}
		if (recycled) {
			io_uring_buf_ring_advance(br, recycled);
			recycled = 0;
		}
		io_uring_cq_advance(&ring, count);
	}
	stopping = 1;
	cpu1 = cpu_s();
	if (!measuring)
		cpu0 = cpu1;
	printf("msgs_per_sec=%.0f p50_us=%.2f p99_us=%.2f p999_us=%.2f max_us=%.2f errors=%llu "
	       "mismatches=%llu conn_errors=%llu msgs=%llu total_msgs=%llu conns=%d size=%d "
	       "depth=%d duration_s=%.3f client_cpu=%.2f\n",
	       (double)msgs / dur, hist_pct(0.50) / 1e3, hist_pct(0.99) / 1e3,
	       hist_pct(0.999) / 1e3, (double)hist_max / 1e3,
	       (unsigned long long)(mismatches + conn_errors), (unsigned long long)mismatches,
	       (unsigned long long)conn_errors, (unsigned long long)msgs,
	       (unsigned long long)total_msgs, nconns, size, depth, dur, (cpu1 - cpu0) / dur);
	return 0;
}
