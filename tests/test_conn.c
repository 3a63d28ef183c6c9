/*
 * Networking: corio_serve + corio_conn. The reader over a multishot receive
 * with a ring that runs dry, messages spanning buffers, partial and
 * zero-copy sends, peer resets, 1,000 concurrent connections, accepting
 * while RLIMIT_NOFILE is exhausted, and accepting into direct descriptors
 * with a table smaller than the connections (nothing may be dropped). Runs on both backends (epoll takes the
 * plain paths under the same API).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <liburing.h>

#include "util.h"

/* --------------------------------------------------- an echo server */

/* What the server's connections did, summed (one loop: no locking). */
static struct corio_conn_stats served;

static void add_stats(corio_conn *c)
{
	struct corio_conn_stats st;

	corio_conn_stats(c, &st, sizeof(st));
	served.bytes_in += st.bytes_in;
	served.recv_completions += st.recv_completions;
	served.rearms += st.rearms;
	served.coalesced += st.coalesced;
}

static bool uring(void)
{
	return !strcmp(corio_loop_backend(corio_loop_current()), "io_uring");
}

static void echo_handler(int fd, void *arg)
{
	corio_conn *c;
	const void *p;
	ssize_t n;

	(void)arg;
	if (corio_conn_open(&c, fd, NULL)) {
		close(fd);
		return;
	}
	while ((n = corio_conn_peek(c, &p)) > 0) {
		if (corio_conn_write(c, p, (size_t)n) != n)
			break;
		corio_conn_consume(c, (size_t)n);
	}
	add_stats(c);
	corio_conn_close(c);
}

struct server {
	int lfd, port;
	corio_fiber *f;
	int result;
};

static void *serve_fiber(void *a)
{
	struct server *s = a;

	s->result = corio_serve(s->lfd, echo_handler, NULL, NULL);
	return NULL;
}

static void server_start(struct server *s)
{
	s->lfd = corio_listen_tcp("127.0.0.1", 0, 4096, 0);
	assert_true(s->lfd >= 0);
	s->port = corio_local_port(s->lfd);
	assert_true(s->port > 0);
	assert_int_equal(corio_spawn(&s->f, NULL, serve_fiber, s, NULL), 0);
}

static void server_stop(struct server *s)
{
	assert_int_equal(corio_cancel(s->f), 0);
	assert_int_equal(corio_join(s->f, NULL), 0);
	assert_int_equal(s->result, -ECANCELED);
	close(s->lfd);
}

/* A client: sends @len bytes of a pattern in @chunk pieces, reads the echo
 * back, checks it. Returns 0 or an error. */
struct client {
	int port;
	size_t len, chunk;
	int err;
	corio_waitgroup *wg;
};

static void *client_fiber(void *a)
{
	struct client *cl = a;
	char *out = malloc(cl->len), *in = malloc(cl->len);
	size_t sent = 0, got = 0;
	int fd = corio_dial_tcp("127.0.0.1", cl->port);

	assert_non_null(out);
	assert_non_null(in);
	for (size_t i = 0; i < cl->len; i++)
		out[i] = (char)(i * 7 + cl->len);
	if (fd < 0) {
		cl->err = fd;
		goto done;
	}
	while (got < cl->len) {
		if (sent < cl->len) {
			size_t k = cl->len - sent < cl->chunk ? cl->len - sent : cl->chunk;
			ssize_t n = corio_send_all(fd, out + sent, k);

			if (n < 0) {
				cl->err = (int)n;
				break;
			}
			sent += k;
		}
		while (got < sent) {
			ssize_t n = corio_recv(fd, in + got, cl->len - got, 0);

			if (n <= 0) {
				cl->err = n ? (int)n : -EPIPE;
				goto closefd;
			}
			got += (size_t)n;
		}
	}
	if (!cl->err && memcmp(in, out, cl->len))
		cl->err = -EBADMSG;
closefd:
	corio_close(fd);
done:
	free(out);
	free(in);
	if (cl->wg)
		corio_waitgroup_done(cl->wg);
	return NULL;
}

struct many {
	unsigned n;
	size_t len, chunk;
	struct corio_loop_opts lo;
	int errors;
	bool uring;
};

static void *many_main(void *a)
{
	struct many *m = a;
	struct server s;
	struct client *cl = calloc(m->n, sizeof(*cl));
	corio_waitgroup wg;

	assert_non_null(cl);
	server_start(&s);
	corio_waitgroup_init(&wg);
	corio_waitgroup_add(&wg, m->n);
	for (unsigned i = 0; i < m->n; i++) {
		cl[i] = (struct client){.port = s.port, .len = m->len, .chunk = m->chunk, .wg = &wg};
		assert_int_equal(corio_spawn(NULL, NULL, client_fiber, &cl[i],
					     &(struct corio_fiber_opts){.detached = true}),
				 0);
	}
	assert_int_equal(corio_waitgroup_wait(&wg), 0);
	for (unsigned i = 0; i < m->n; i++)
		if (cl[i].err)
			m->errors++;
	m->uring = uring();
	server_stop(&s);
	free(cl);
	return NULL;
}

static void run_many(struct many *m)
{
	corio_loop *loop = t_loop_opts(&m->lo);
	corio_fiber *f;

	assert_int_equal(corio_spawn(&f, loop, many_main, m, NULL), 0);
	assert_int_equal(corio_loop_run(loop), 0);
	assert_int_equal(corio_join(f, NULL), 0);
	corio_loop_destroy(loop);
	assert_int_equal(m->errors, 0);
}

static void thousand_connections(void **state)
{
	struct rlimit rl;
	struct many m = {.n = 1000, .len = 4096, .chunk = 512};

	(void)state;
	/* 2 fds per connection (client and server side) plus the listener. */
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < 2200) {
		rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	run_many(&m);
}

/* A ring of 4 tiny buffers that may grow only to 8: the multishot runs dry
 * all the time; every byte must still arrive, in order. */
static void dry_ring(void **state)
{
	struct many m = {.n = 16,
			 .len = 256 * 1024,
			 .chunk = 64 * 1024,
			 .lo = {.recv_buffers = 4, .recv_buffers_max = 8, .recv_buffer_size = 256}};

	(void)state;
	memset(&served, 0, sizeof(served));
	run_many(&m);
	assert_int_equal(served.bytes_in, (uint64_t)m.n * m.len);
	if (m.uring)
		assert_true(served.rearms > 0); /* the ring did run dry */
}

/* --------------------------------------- messages spanning buffers */

/* Peek (then peek_more) until a whole line is buffered: its length, '\n'
 * included, with *line at its start; or what the peeks returned (0 at the
 * end of the stream, -EMSGSIZE past max_buffered...). */
static ssize_t peek_line(corio_conn *c, const char **line)
{
	const char *nl = NULL;
	const void *p;
	ssize_t n = corio_conn_peek(c, &p);

	while (n > 0 && !(nl = memchr(p, '\n', (size_t)n)))
		n = corio_conn_peek_more(c, &p);
	if (n <= 0)
		return n;
	*line = p;
	return nl - (const char *)p + 1;
}

struct lines {
	int sv[2];
	int lines, bad, end;
	ssize_t too_big;
	struct corio_conn_stats st;
	bool uring;
};

static void *line_reader(void *a)
{
	struct lines *t = a;
	corio_conn *c;
	const void *p;
	ssize_t n;

	assert_int_equal(corio_conn_open(&c, t->sv[0], &(struct corio_conn_opts){.max_buffered = 4096}), 0);
	for (;;) {
		const char *line;

		n = peek_line(c, &line);
		if (n <= 0)
			break;
		/* A line is "<len> <len x's>\n". */
		long want = strtol(line, NULL, 10);
		const char *sp = memchr(line, ' ', (size_t)n);

		if (!sp || (long)(line + n - 2 - sp) != want)
			t->bad++;
		t->lines++;
		corio_conn_consume(c, (size_t)n);
	}
	if (n == -EMSGSIZE) {
		t->too_big = n;
		/* Skip to the end: the rest is a line too long for us. */
		while ((n = corio_conn_peek(c, &p)) > 0)
			corio_conn_consume(c, (size_t)n);
	}
	t->end = (int)n;
	corio_conn_stats(c, &t->st, sizeof(t->st));
	t->uring = uring();
	corio_conn_close(c);
	return NULL;
}

static void *line_writer(void *a)
{
	struct lines *t = a;
	char buf[8192];

	for (int len = 0; len < 3000; len += 37) {
		int k = snprintf(buf, sizeof(buf), "%d ", len);

		memset(buf + k, 'x', (size_t)len);
		buf[k + len] = '\n';
		assert_int_equal(corio_send_all(t->sv[1], buf, (size_t)(k + len + 1)), k + len + 1);
	}
	/* One line longer than max_buffered, then the end. */
	memset(buf, 'y', sizeof(buf));
	assert_int_equal(corio_send_all(t->sv[1], buf, sizeof(buf)), (ssize_t)sizeof(buf));
	corio_shutdown(t->sv[1], SHUT_WR);
	return NULL;
}

static void *lines_main(void *a)
{
	struct lines *t = a;
	corio_fiber *r, *w;

	assert_int_equal(corio_spawn(&r, NULL, line_reader, t, NULL), 0);
	assert_int_equal(corio_spawn(&w, NULL, line_writer, t, NULL), 0);
	corio_join(w, NULL);
	corio_join(r, NULL);
	close(t->sv[1]);
	return NULL;
}

static void messages_span_buffers(void **state)
{
	/* 64-byte buffers: most lines span many of them. */
	struct corio_loop_opts lo = {.recv_buffer_size = 64, .recv_buffers = 64};
	corio_loop *loop = t_loop_opts(&lo);
	struct lines t = {0};
	corio_fiber *f;
	int port, lfd = t_listen_tcp(&port), cfd;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

	(void)state;
	/* TCP, since AF_UNIX has no multishot receive with buffer select. */
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&a, sizeof(a)), 0);
	t.sv[1] = cfd;
	t.sv[0] = accept(lfd, NULL, NULL);
	assert_true(t.sv[0] >= 0);
	close(lfd);
	assert_int_equal(corio_spawn(&f, loop, lines_main, &t, NULL), 0);
	assert_int_equal(corio_loop_run(loop), 0);
	corio_join(f, NULL);
	corio_loop_destroy(loop);
	assert_int_equal(t.lines, (3000 + 36) / 37);
	assert_int_equal(t.bad, 0);
	assert_int_equal(t.too_big, -EMSGSIZE);
	assert_int_equal(t.end, 0);
	if (t.uring)
		assert_true(t.st.coalesced > 0); /* lines did span buffers */
}

/* ------------------------- messages about a receive buffer's size */

/*
 * A line parser (peek, then peek_more until '\n') over lines whose sizes sit
 * just under, at and just over the receive-buffer size, between odd-sized
 * lines that move where the buffers begin and end. A line of up to
 * max_buffered bytes must be assembled wherever the boundaries fall, a
 * longer one gives -EMSGSIZE, on both backends alike.
 *
 * As much of the stream as the socket takes is queued before the reader
 * starts, so that on io_uring the receive fills whole buffers (a line left
 * over plus a whole buffer is the case that must not fail); the rest is
 * sent while the reader reads.
 */
struct sized {
	int sv[2];
	const size_t *sizes; /* line lengths, '\n' included */
	size_t n, max_buffered;
	char *stream;
	size_t total, queued;
	size_t lines, bad;
	ssize_t end;
	struct corio_conn_stats st;
};

static char sized_byte(size_t line, size_t i)
{
	return (char)('a' + (line * 7 + i) % 26);
}

static void sized_stream(struct sized *t)
{
	char *p;

	t->total = 0;
	for (size_t k = 0; k < t->n; k++)
		t->total += t->sizes[k];
	p = t->stream = malloc(t->total);
	assert_non_null(p);
	for (size_t k = 0; k < t->n; k++) {
		for (size_t i = 0; i + 1 < t->sizes[k]; i++)
			*p++ = sized_byte(k, i);
		*p++ = '\n';
	}
	while (t->queued < t->total) {
		ssize_t n = send(t->sv[1], t->stream + t->queued, t->total - t->queued,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n <= 0)
			break;
		t->queued += (size_t)n;
	}
}

static void *sized_writer(void *a)
{
	struct sized *t = a;
	size_t rest = t->total - t->queued;

	assert_int_equal(corio_send_all(t->sv[1], t->stream + t->queued, rest), (ssize_t)rest);
	corio_shutdown(t->sv[1], SHUT_WR);
	return NULL;
}

static void *sized_reader(void *a)
{
	struct sized *t = a;
	struct corio_conn_opts o = {.max_buffered = t->max_buffered};
	const char *line;
	corio_conn *c;
	const void *p;
	ssize_t n;

	assert_int_equal(corio_conn_open(&c, t->sv[0], &o), 0);
	for (;;) {
		n = peek_line(c, &line);
		if (n <= 0)
			break;
		size_t len = (size_t)n;

		if (t->lines >= t->n || len != t->sizes[t->lines]) {
			t->bad++;
		} else {
			for (size_t i = 0; i + 1 < len; i++)
				if (line[i] != sized_byte(t->lines, i)) {
					t->bad++;
					break;
				}
		}
		t->lines++;
		corio_conn_consume(c, len);
	}
	t->end = n;
	/* The rest is a line too long for us: drop it, up to the end. */
	while (n == -EMSGSIZE || n > 0) {
		n = corio_conn_peek(c, &p);
		if (n > 0)
			corio_conn_consume(c, (size_t)n);
	}
	corio_conn_stats(c, &t->st, sizeof(t->st));
	corio_conn_close(c);
	return NULL;
}

static void *sized_main(void *a)
{
	struct sized *t = a;
	corio_fiber *r, *w;

	r = t_spawn(sized_reader, t);
	w = t_spawn(sized_writer, t);
	t_join(w);
	t_join(r);
	return NULL;
}

static struct sized run_sized(unsigned recv_buffer_size, size_t max_buffered,
			      const size_t *sizes, size_t n, size_t want_lines, ssize_t want_end)
{
	struct sized t = {.sizes = sizes, .n = n, .max_buffered = max_buffered};

	t_tcp_pair(&t.sv[1], &t.sv[0]);
	sized_stream(&t);
	t_run_opts(sized_main, &t, &(struct corio_loop_opts){.recv_buffer_size = recv_buffer_size});
	close(t.sv[1]);
	free(t.stream);
	assert_int_equal(t.bad, 0);
	assert_int_equal(t.lines, want_lines);
	assert_int_equal(t.end, want_end);
	return t;
}

#define KB64 ((size_t)65536)

/* The defaults: 64 KiB receive buffers and max_buffered 64 KiB. A line as
 * long as max_buffered fits even when it starts in the middle of a buffer;
 * one byte more does not. */
static void lines_of_buffer_size(void **state)
{
	static const size_t sizes[] = {100,	 KB64 - 1, 37,	 KB64,	    1,	  KB64 - 1,
				       KB64,	 5000,	   KB64, KB64 - 1, 64000, KB64,
				       KB64 + 1};
	size_t n = sizeof(sizes) / sizeof(sizes[0]);

	(void)state;
	run_sized(0, 0, sizes, n, n - 1, -EMSGSIZE);
}

/* max_buffered above the buffer size: lines of one, two and three buffers
 * (and a byte either side) are all assembled. */
static void lines_over_buffer_size(void **state)
{
	static const size_t sizes[] = {3,	     KB64 - 1,	   KB64,	 KB64 + 1, 999,
				       2 * KB64 + 3, 3 * KB64 - 1, 3 * KB64 + 1, 10};

	(void)state;
	run_sized(0, 4 * KB64, sizes, sizeof(sizes) / sizeof(sizes[0]),
		  sizeof(sizes) / sizeof(sizes[0]), 0);
}

/* Small receive buffers, max_buffered four of them: under, at and over
 * both sizes. */
static void lines_small_buffers(void **state)
{
	static const size_t sizes[] = {4095, 4096, 4097, 1,    16383, 16384,
				       77,   16384, 4096, 4095, 16385};
	size_t n = sizeof(sizes) / sizeof(sizes[0]);

	(void)state;
	run_sized(4096, 16384, sizes, n, n - 1, -EMSGSIZE);
}

/* Receive buffers as large as max_buffered, all queued before the first
 * read, so that every buffer the reader gets is full. */
static void lines_at_max_buffered(void **state)
{
	static const size_t sizes[] = {100, 4095, 37, 4096, 1, 4096, 2000, 4095, 4096, 4097};
	size_t n = sizeof(sizes) / sizeof(sizes[0]);

	(void)state;
	run_sized(4096, 4096, sizes, n, n - 1, -EMSGSIZE);
}

/* 1 MiB of 1000-byte lines with the default options: every line arrives. */
static void thousand_byte_lines(void **state)
{
	enum { N = 1048 };
	static size_t sizes[N];
	struct sized t;

	(void)state;
	for (size_t i = 0; i < N; i++)
		sizes[i] = 1000;
	t = run_sized(0, 0, sizes, N, N, 0);
	/* Only the lines that span two buffers are copied: after each, the
	 * reader is back in the kernel's buffer (at most a chunk of 4 KiB and
	 * the line's start are copied per buffer). */
	assert_true(t.st.coalesced <= t.st.recv_completions * (4096 + 1000));
}

/* ------------------------------------- peekv, buffered, peek deadlines */

struct gather {
	int sv[2];
	int max_pieces, end;
	size_t got;
	bool ok, timed_out, uring;
};

static void *gather_main(void *a)
{
	struct gather *t = a;
	char out[3000], in[3000];
	struct iovec iov[64];
	corio_conn *c;
	const void *p;
	ssize_t n;
	int cnt;

	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (char)(i % 251);
	assert_int_equal(corio_conn_open(&c, t->sv[0], NULL), 0);
	assert_int_equal(corio_conn_buffered(c), 0);
	/* Nothing sent yet: a deadline ends the wait, the conn stays usable. */
	t->timed_out = corio_conn_peek_until(c, &p, corio_now() + CORIO_MSEC) == -ETIMEDOUT;
	assert_int_equal(corio_send_all(t->sv[1], out, sizeof(out)), (ssize_t)sizeof(out));
	corio_shutdown(t->sv[1], SHUT_WR);
	while (t->got < sizeof(out)) {
		cnt = 64;
		n = corio_conn_peekv(c, iov, &cnt);
		if (n <= 0)
			break;
		assert_int_equal((size_t)n, corio_conn_buffered(c));
		if (cnt > t->max_pieces)
			t->max_pieces = cnt;
		for (int i = 0; i < cnt; i++) {
			memcpy(in + t->got, iov[i].iov_base, iov[i].iov_len);
			t->got += iov[i].iov_len;
		}
		corio_conn_consume(c, (size_t)n);
	}
	t->ok = t->got == sizeof(out) && !memcmp(in, out, sizeof(out));
	cnt = 64;
	t->end = (int)corio_conn_peekv(c, iov, &cnt);
	t->uring = uring();
	corio_conn_close(c);
	return NULL;
}

static void peekv_gathers_buffers(void **state)
{
	struct corio_loop_opts lo = {.recv_buffer_size = 64, .recv_buffers = 128};
	corio_loop *loop = t_loop_opts(&lo);
	struct gather t = {0};
	corio_fiber *f;

	(void)state;
	t_tcp_pair(&t.sv[1], &t.sv[0]);
	assert_int_equal(corio_spawn(&f, loop, gather_main, &t, NULL), 0);
	assert_int_equal(corio_loop_run(loop), 0);
	corio_join(f, NULL);
	corio_loop_destroy(loop);
	close(t.sv[1]);
	assert_true(t.timed_out);
	assert_true(t.ok);
	assert_int_equal(t.end, 0);
	if (t.uring)
		assert_true(t.max_pieces > 1); /* 64-byte buffers, gathered */
}

/* ------------------------------------------- consuming nothing */

/* consume(0) consumes nothing, so it must not reset what peek_more counts
 * as "more": peek, consume(0), peek_more waits for new bytes. */
struct zero {
	int sv[2];
	corio_event peeked;
	ssize_t first, second;
};

static void *zero_reader(void *a)
{
	struct zero *t = a;
	corio_conn *c;
	const void *p;

	assert_int_equal(corio_conn_open(&c, t->sv[0], NULL), 0);
	t->first = corio_conn_peek(c, &p);
	corio_conn_consume(c, 0);
	corio_event_set(&t->peeked);
	t->second = corio_conn_peek_more(c, &p);
	corio_conn_close(c);
	return NULL;
}

static void *zero_writer(void *a)
{
	struct zero *t = a;

	assert_int_equal(corio_send_all(t->sv[1], "abc", 3), 3);
	assert_int_equal(corio_event_wait(&t->peeked), 0);
	assert_int_equal(corio_send_all(t->sv[1], "def", 3), 3);
	return NULL;
}

static void *zero_main(void *a)
{
	struct zero *t = a;
	corio_fiber *r, *w;

	corio_event_init(&t->peeked);
	assert_int_equal(corio_spawn(&r, NULL, zero_reader, t, NULL), 0);
	assert_int_equal(corio_spawn(&w, NULL, zero_writer, t, NULL), 0);
	corio_join(w, NULL);
	corio_join(r, NULL);
	return NULL;
}

static void consume_zero_keeps_peek(void **state)
{
	struct zero t = {0};

	(void)state;
	t_socketpair(t.sv);
	t_run(zero_main, &t);
	close(t.sv[1]);
	assert_int_equal(t.first, 3);
	assert_int_equal(t.second, 6);
}

/* ------------------------------------------------ deadlines on a conn */

/*
 * Every corio_conn call that waits has an _until form. Reads and peeks with
 * nothing to read, and writes into a socket whose peer does not read (32 MiB
 * is more than loopback buffers take), end at the deadline; the same calls
 * succeed with a deadline that does not pass; a write in progress can be
 * cancelled; a second fiber may not wait to read while one does.
 */
struct dl {
	int sv[2];
	size_t zc_threshold;
	corio_conn *c;
	ssize_t blocked_write;
};

static void *dl_blocked_writer(void *a)
{
	struct dl *t = a;
	size_t len = 32u << 20;
	char *big = calloc(1, len);

	assert_non_null(big);
	t->blocked_write = corio_conn_write(t->c, big, len);
	free(big);
	return NULL;
}

static void *dl_second_reader(void *a)
{
	struct dl *t = a;
	const void *p;

	return (void *)(intptr_t)corio_conn_peek(t->c, &p);
}

static void *dl_main(void *a)
{
	struct dl *t = a;
	struct corio_conn_opts o = {.zc_threshold = t->zc_threshold};
	size_t len = 32u << 20;
	char *big = calloc(1, len), buf[16];
	struct iovec iov[2] = {{big, len / 2}, {big + len / 2, len / 2}};
	int64_t soon = corio_now() + 20 * CORIO_MSEC, far = corio_now() + 60 * CORIO_SEC;
	corio_fiber *w, *r;
	struct iovec piece[4];
	const void *p;
	int cnt = 4;

	assert_non_null(big);
	assert_int_equal(corio_conn_open(&t->c, t->sv[0], &o), 0);
	/* Nothing to read: every read-side call ends at its deadline. */
	assert_int_equal(corio_conn_read_until(t->c, buf, sizeof(buf), soon), -ETIMEDOUT);
	assert_int_equal(corio_conn_peekv_until(t->c, piece, &cnt, soon), -ETIMEDOUT);
	assert_int_equal(corio_conn_peek_until(t->c, &p, 1), -ETIMEDOUT);
	assert_int_equal(corio_conn_peek_more_until(t->c, &p, 1), -ETIMEDOUT);
	/* One reader at a time. */
	r = t_spawn(dl_second_reader, t);
	t_turns(2);
	assert_int_equal(corio_conn_read_until(t->c, buf, sizeof(buf), soon), -EBUSY);
	/* Something arrives: the calls return it. */
	assert_int_equal(write(t->sv[1], "hello", 5), 5);
	assert_int_equal((intptr_t)t_join(r), 5);
	cnt = 4;
	assert_int_equal(corio_conn_peekv_until(t->c, piece, &cnt, far), 5);
	assert_int_equal(corio_conn_read_until(t->c, buf, sizeof(buf), far), 5);
	assert_memory_equal(buf, "hello", 5);
	/* The peer does not read: writes end at their deadline. */
	assert_int_equal(corio_conn_write_until(t->c, big, len, corio_now() + 20 * CORIO_MSEC),
			 -ETIMEDOUT);
	assert_int_equal(corio_conn_writev_until(t->c, iov, 2, corio_now() + 20 * CORIO_MSEC),
			 -ETIMEDOUT);
	assert_int_equal(corio_conn_write_until(t->c, "x", 1, 1), -ETIMEDOUT);
	{
		struct iovec many[17];

		for (int i = 0; i < 17; i++)
			many[i] = (struct iovec){big, 1};
		assert_int_equal(corio_conn_writev_until(t->c, many, 17, far), -EINVAL);
	}
	/* A write waiting for room is cancelled like any call (a copying one:
	 * a zero-copy write that has queued data waits for the peer to take
	 * it, cancelled or not, see net.h). */
	if (!t->zc_threshold) {
		w = t_spawn(dl_blocked_writer, t);
		t_turns(3);
		assert_int_equal(corio_cancel(w), 0);
		t_join(w);
		assert_int_equal(t->blocked_write, -ECANCELED);
	}
	assert_int_equal(corio_conn_shutdown_until(t->c, SHUT_WR, 1), -ETIMEDOUT);
	assert_int_equal(corio_conn_shutdown_until(t->c, SHUT_WR, far), 0);
	assert_int_equal(corio_conn_write_until(t->c, "x", 1, far), -EPIPE);
	/* The peer ends its side: reads see the end of the stream. */
	assert_int_equal(shutdown(t->sv[1], SHUT_WR), 0);
	assert_int_equal(corio_conn_read_until(t->c, buf, sizeof(buf), far), 0);
	cnt = 4;
	assert_int_equal(corio_conn_peekv_until(t->c, piece, &cnt, far), 0);
	assert_int_equal(corio_conn_close(t->c), 0);
	free(big);
	return NULL;
}

static void conn_deadlines(void **state)
{
	/* Plain sends, then a zero-copy threshold, which writes with a
	 * deadline ignore (they copy, so that the deadline holds). */
	for (int zc = 0; zc < 2; zc++) {
		struct dl t = {.zc_threshold = zc ? 4096 : 0};

		(void)state;
		t_tcp_pair(&t.sv[1], &t.sv[0]);
		t_run(dl_main, &t);
		close(t.sv[1]);
	}
}

/* -------------------------------------------- sends: partial, ZC, reset */

struct sends {
	int sv[2];
	size_t len;
	ssize_t sent;
	uint64_t sum_in, sum_out;
	bool zc;
};

static void *big_sender(void *a)
{
	struct sends *t = a;
	corio_conn *c;
	unsigned char *buf = malloc(t->len);
	struct corio_conn_opts o = {.zc_threshold = t->zc ? 1 : SIZE_MAX};

	for (size_t i = 0; i < t->len; i++) {
		buf[i] = (unsigned char)(i * 31);
		t->sum_out += buf[i];
	}
	assert_int_equal(corio_conn_open(&c, t->sv[0], &o), 0);
	t->sent = corio_conn_write(c, buf, t->len);
	/* The call returned: the kernel is done with buf (for zero-copy, the
	 * notification came). Scribbling now must not change what was sent. */
	memset(buf, 0xee, t->len);
	corio_conn_shutdown(c, SHUT_WR);
	if (t->zc) {
		struct corio_conn_stats st;

		corio_conn_stats(c, &st, sizeof(st));
		if (corio_op_supported(NULL, IORING_OP_SEND_ZC))
			assert_true(st.zc_sends > 0);
	}
	corio_conn_close(c);
	free(buf);
	return NULL;
}

static void *slow_receiver(void *a)
{
	struct sends *t = a;
	unsigned char buf[1000];
	ssize_t n;

	/* Small reads with yields: the sender's writes come back short. */
	while ((n = corio_recv(t->sv[1], buf, sizeof(buf), 0)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			t->sum_in += buf[i];
		corio_yield();
	}
	return NULL;
}

static void *sends_main(void *a)
{
	corio_fiber *s, *r;

	assert_int_equal(corio_spawn(&s, NULL, big_sender, a, NULL), 0);
	assert_int_equal(corio_spawn(&r, NULL, slow_receiver, a, NULL), 0);
	corio_join(s, NULL);
	corio_join(r, NULL);
	return NULL;
}

static void sends(bool zc)
{
	struct sends t = {.len = 8u << 20, .zc = zc};

	t_tcp_pair(&t.sv[1], &t.sv[0]);
	t_run(sends_main, &t);
	close(t.sv[1]);
	assert_int_equal(t.sent, (ssize_t)t.len);
	assert_int_equal(t.sum_in, t.sum_out);
}

static void partial_sends(void **state)
{
	(void)state;
	sends(false);
}

static void zero_copy_ownership(void **state)
{
	(void)state;
	sends(true);
}

struct reset {
	int sv[2];
	ssize_t res;
};

static void *reset_sender(void *a)
{
	struct reset *t = a;
	size_t len = 32u << 20;
	char *buf = calloc(1, len);

	t->res = corio_send_all(t->sv[0], buf, len);
	free(buf);
	return NULL;
}

static void *resetter(void *a)
{
	struct reset *t = a;
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	char buf[4096];

	/* Read a little, so the sender is mid-send, then reset. */
	assert_true(corio_recv(t->sv[1], buf, sizeof(buf), 0) > 0);
	setsockopt(t->sv[1], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(t->sv[1]);
	return NULL;
}

static void *reset_main(void *a)
{
	corio_fiber *s, *r;

	assert_int_equal(corio_spawn(&s, NULL, reset_sender, a, NULL), 0);
	assert_int_equal(corio_spawn(&r, NULL, resetter, a, NULL), 0);
	corio_join(r, NULL);
	corio_join(s, NULL);
	return NULL;
}

static void peer_reset_mid_send(void **state)
{
	struct reset t;

	(void)state;
	t_tcp_pair(&t.sv[1], &t.sv[0]);
	t_run(reset_main, &t); /* a SIGPIPE would kill the test here */
	close(t.sv[0]);
	assert_true(t.res == -ECONNRESET || t.res == -EPIPE);
}

/* ---------------------------------------- accept with no descriptors */

static void *nofile_serve(void *a)
{
	struct server *s = a;

	s->result = corio_serve(s->lfd, echo_handler, NULL,
				&(struct corio_serve_opts){.stats = (void *)(s + 1)});
	return NULL;
}

static void *nofile_main(void *a)
{
	struct {
		struct server s;
		struct corio_serve_stats st; /* right after s: nofile_serve finds it */
	} *srv = a;
	struct client cl = {.len = 1000, .chunk = 1000};
	int hog[256], nhog = 0, fd;
	corio_fiber *f;

	srv->s.lfd = corio_listen_tcp("127.0.0.1", 0, 16, 0);
	assert_true(srv->s.lfd >= 0);
	cl.port = corio_local_port(srv->s.lfd);
	assert_int_equal(corio_spawn(&srv->s.f, NULL, nofile_serve, &srv->s, NULL), 0);
	/* Use up every descriptor, then free one for the client's socket. */
	while (nhog < 256 && (fd = dup(srv->s.lfd)) >= 0)
		hog[nhog++] = fd;
	assert_true(nhog < 256); /* RLIMIT_NOFILE is 128 in this child */
	close(hog[--nhog]);
	/* The client connects (the kernel completes the handshake) but the
	 * server's accept fails with EMFILE: it must back off, not give up. */
	assert_int_equal(corio_spawn(&f, NULL, client_fiber, &cl, NULL), 0);
	while (srv->st.backoffs == 0)
		corio_yield();
	/* Give descriptors back: the waiting client must now be served. */
	while (nhog)
		close(hog[--nhog]);
	corio_join(f, NULL);
	assert_true(srv->st.accepted >= 1);
	server_stop(&srv->s);
	return (void *)(intptr_t)cl.err;
}

static void accept_without_descriptors(void **state)
{
	pid_t pid;
	int status;

	(void)state;
	if (t_under_valgrind())
		skip(); /* valgrind's emulated RLIMIT_NOFILE does not bind the kernel */
	/* In a child, with a small RLIMIT_NOFILE, not to starve the runner. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit rl = {.rlim_cur = 128, .rlim_max = 128};
		struct {
			struct server s;
			struct corio_serve_stats st;
		} srv = {0};
		corio_loop *loop;
		corio_fiber *f;
		void *res = (void *)1;

		setrlimit(RLIMIT_NOFILE, &rl);
		if (corio_loop_create(&loop, NULL))
			_exit(3);
		corio_spawn(&f, loop, nofile_main, &srv, NULL);
		corio_loop_run(loop);
		corio_join(f, &res);
		corio_loop_destroy(loop);
		_exit(res == NULL ? 0 : 4);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---------------------------------------------- max_conns, refusals */

/*
 * max_conns: at most that many handlers at once. More clients than that
 * connect at once (all of them in the listen queue before the server
 * looks); the server takes max_conns, and the next only when a handler
 * returns. Handlers hold until the test lets one go (a token each).
 */
#define LIMIT 2
#define CLIENTS 5

struct limited {
	struct server s;
	struct corio_serve_stats st;
	corio_chan tokens;
	unsigned entered, most; /* handlers started; most at once */
	unsigned running;
};

static void limited_handler(int fd, void *arg)
{
	struct limited *l = arg;
	char token;

	l->entered++;
	if (++l->running > l->most)
		l->most = l->running;
	assert_int_equal(corio_chan_recv(&l->tokens, &token), 0);
	l->running--;
	corio_close(fd);
}

static void *limited_serve(void *a)
{
	struct limited *l = a;

	l->s.result = corio_serve(l->s.lfd, limited_handler, l,
				  &(struct corio_serve_opts){.max_conns = LIMIT, .stats = &l->st});
	return NULL;
}

/* Turn until the server has started @n handlers, and as many turns again
 * in which it could wrongly start more (the connections wait in the
 * listen queue: an accept would complete at once). */
static void settle_at(struct limited *l, unsigned n)
{
	int turns = 0;

	while (l->entered < n && turns++ < 10000)
		assert_int_equal(corio_yield(), 0);
	assert_int_equal(l->entered, n);
	t_turns(turns + 10);
}

static void *limited_main(void *a)
{
	struct limited *l = a;
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int c[CLIENTS];
	char token = 't';

	assert_int_equal(corio_chan_init(&l->tokens, 1, CLIENTS), 0);
	l->s.lfd = corio_listen_tcp("127.0.0.1", 0, 64, 0);
	assert_true(l->s.lfd >= 0);
	addr.sin_port = htons((uint16_t)corio_local_port(l->s.lfd));
	/* Loopback connects complete against the listen queue. */
	for (int i = 0; i < CLIENTS; i++) {
		c[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(c[i] >= 0);
		assert_int_equal(connect(c[i], (struct sockaddr *)&addr, sizeof(addr)), 0);
	}
	assert_int_equal(corio_spawn(&l->s.f, NULL, limited_serve, l, NULL), 0);
	settle_at(l, LIMIT);
	assert_int_equal(l->st.active, LIMIT);
	assert_int_equal(l->st.accepted, LIMIT);
	/* One handler returns: one more client is taken, no more. */
	for (unsigned k = LIMIT + 1; k <= CLIENTS; k++) {
		assert_int_equal(corio_chan_send(&l->tokens, &token), 0);
		settle_at(l, k);
		assert_int_equal(l->st.active, LIMIT);
		assert_int_equal(l->st.accepted, k);
	}
	for (int i = 0; i < LIMIT; i++)
		assert_int_equal(corio_chan_send(&l->tokens, &token), 0);
	while (l->running)
		assert_int_equal(corio_yield(), 0);
	assert_int_equal(l->most, LIMIT);
	assert_int_equal(l->st.refused, 0);
	server_stop(&l->s);
	for (int i = 0; i < CLIENTS; i++)
		close(c[i]);
	corio_chan_destroy(&l->tokens);
	return NULL;
}

static void max_conns(void **state)
{
	struct limited l = {0};

	(void)state;
	t_run(limited_main, &l);
}

/* A connection accepted but with no memory for its handler's fiber (here:
 * a stack too large to map) is closed and counted as refused; serving goes
 * on. The client sees the end of the stream. */
static void never_runs(int fd, void *arg)
{
	(void)fd;
	(void)arg;
	fail();
}

static void *refusing_serve(void *a)
{
	struct limited *l = a;

	l->s.result = corio_serve(l->s.lfd, never_runs, NULL,
				  &(struct corio_serve_opts){.stack_size = SIZE_MAX, .stats = &l->st});
	return NULL;
}

static void *refused_main(void *a)
{
	struct limited *l = a;
	char c;

	l->s.lfd = corio_listen_tcp("127.0.0.1", 0, 64, 0);
	assert_true(l->s.lfd >= 0);
	assert_int_equal(corio_spawn(&l->s.f, NULL, refusing_serve, l, NULL), 0);
	for (uint64_t i = 1; i <= 3; i++) {
		int fd = corio_dial_tcp("127.0.0.1", corio_local_port(l->s.lfd));

		assert_true(fd >= 0);
		assert_int_equal(corio_recv(fd, &c, 1, 0), 0); /* closed by the server */
		assert_int_equal(l->st.refused, i);
		assert_int_equal(l->st.accepted, i); /* refused ones count as accepted */
		assert_int_equal(l->st.active, 0);
		corio_close(fd);
	}
	server_stop(&l->s);
	return NULL;
}

static void refused(void **state)
{
	struct limited l = {0};

	(void)state;
	t_run(refused_main, &l);
}

/* ------------------------------------------------ direct descriptors */

struct direct {
	corio_event gate;    /* handlers wait for it before echoing */
	unsigned handlers;   /* handlers started */
	unsigned direct;     /* of which with a direct descriptor */
	unsigned bad;	     /* failed checks inside handlers */
	uint64_t zc_sends;   /* by the handlers' conns */
};

#define DIRECT_LEN (128u << 10) /* above the zero-copy threshold */

/* Echo, half of them through a corio_conn, half through the plain calls
 * and corio_close (the kernel's close of a slot); both must free the slot,
 * or later connections would never be accepted. The conns write the
 * message back in one piece, above the zero-copy threshold: the peer is
 * loopback, which a direct descriptor cannot ask getpeername about, so
 * the accept must have noted it, or the send would go zero-copy. */
static void direct_handler(int fd, void *arg)
{
	struct direct *d = arg;
	char buf[4096];
	ssize_t n;
	unsigned nth = d->handlers++;

	if (corio_fd_is_direct(fd)) {
		d->direct++;
		if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
			d->bad++; /* not a descriptor of the process */
	}
	if (corio_event_wait(&d->gate))
		d->bad++;
	if (nth % 2 == 0) {
		struct corio_conn_stats st;
		char *big = malloc(DIRECT_LEN);
		size_t got = 0;
		corio_conn *c;

		if (!big || corio_conn_open(&c, fd, NULL)) {
			d->bad++;
			free(big);
			corio_close(fd);
			return;
		}
		while (got < DIRECT_LEN && (n = corio_conn_read(c, big + got, DIRECT_LEN - got)) > 0)
			got += (size_t)n;
		if (got != DIRECT_LEN || corio_conn_write(c, big, got) != (ssize_t)got)
			d->bad++;
		corio_conn_stats(c, &st, sizeof(st));
		d->zc_sends += st.zc_sends;
		if (corio_conn_close(c))
			d->bad++;
		free(big);
		return;
	}
	while ((n = corio_recv(fd, buf, sizeof(buf), 0)) > 0)
		if (corio_send_all(fd, buf, (size_t)n) != n)
			break;
	if (n < 0 || corio_close(fd) != 0)
		d->bad++;
}

static void *direct_serve(void *a)
{
	struct server *s = a;
	struct direct *d = (void *)(s + 1);
	struct corio_serve_stats *st = (void *)(d + 1);

	s->result = corio_serve(s->lfd, direct_handler, d,
				&(struct corio_serve_opts){.direct = true, .stats = st});
	return NULL;
}

#define DIRECT_CLIENTS 12
#define DIRECT_SLOTS 4

static void *direct_main(void *a)
{
	struct {
		struct server s;
		struct direct d;
		struct corio_serve_stats st; /* the layout direct_serve expects */
	} *srv = a;
	struct client cl[DIRECT_CLIENTS];
	corio_waitgroup wg;
	char c;

	/* Not a descriptor anywhere before a server hands it out. */
	assert_int_equal(corio_recv(CORIO_FD_DIRECT + 3, &c, 1, 0), -EBADF);
	assert_int_equal(corio_close(CORIO_FD_DIRECT + 3), -EBADF);

	corio_event_init(&srv->d.gate);
	srv->s.lfd = corio_listen_tcp("127.0.0.1", 0, 64, 0);
	assert_true(srv->s.lfd >= 0);
	srv->s.port = corio_local_port(srv->s.lfd);
	assert_int_equal(corio_spawn(&srv->s.f, NULL, direct_serve, &srv->s, NULL), 0);
	corio_waitgroup_init(&wg);
	corio_waitgroup_add(&wg, DIRECT_CLIENTS);
	for (unsigned i = 0; i < DIRECT_CLIENTS; i++) {
		cl[i] = (struct client){.port = srv->s.port, .len = DIRECT_LEN, .chunk = DIRECT_LEN,
					.wg = &wg};
		assert_int_equal(corio_spawn(NULL, NULL, client_fiber, &cl[i],
					     &(struct corio_fiber_opts){.detached = true}),
				 0);
	}
	if (uring()) {
		/* The table is full with the first DIRECT_SLOTS connections:
		 * the accept backs off (ENFILE) instead of failing. */
		while (srv->st.backoffs == 0)
			corio_yield();
		assert_int_equal(srv->st.active, DIRECT_SLOTS);
	}
	corio_event_set(&srv->d.gate);
	assert_int_equal(corio_waitgroup_wait(&wg), 0);
	for (unsigned i = 0; i < DIRECT_CLIENTS; i++)
		assert_int_equal(cl[i].err, 0);
	while (srv->st.active)
		corio_yield(); /* the last handlers close after their client */
	assert_int_equal(srv->d.handlers, DIRECT_CLIENTS);
	assert_int_equal(srv->d.direct, uring() ? DIRECT_CLIENTS : 0);
	assert_int_equal(srv->d.bad, 0);
	assert_int_equal(srv->d.zc_sends, 0);
	server_stop(&srv->s);
	/* Every slot was given back: an empty slot is no descriptor. */
	for (int i = 0; i < DIRECT_SLOTS; i++)
		assert_int_equal(corio_close(CORIO_FD_DIRECT + i), -EBADF);
	return NULL;
}

static void direct_descriptors(void **state)
{
	struct {
		struct server s;
		struct direct d;
		struct corio_serve_stats st;
	} srv = {0};

	(void)state;
	t_run_opts(direct_main, &srv, &(struct corio_loop_opts){.direct_files = DIRECT_SLOTS});
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(thousand_connections),
		cmocka_unit_test(dry_ring),
		cmocka_unit_test(messages_span_buffers),
		cmocka_unit_test(lines_of_buffer_size),
		cmocka_unit_test(lines_over_buffer_size),
		cmocka_unit_test(lines_small_buffers),
		cmocka_unit_test(lines_at_max_buffered),
		cmocka_unit_test(thousand_byte_lines),
		cmocka_unit_test(peekv_gathers_buffers),
		cmocka_unit_test(consume_zero_keeps_peek),
		cmocka_unit_test(conn_deadlines),
		cmocka_unit_test(partial_sends),
		cmocka_unit_test(zero_copy_ownership),
		cmocka_unit_test(peer_reset_mid_send),
		cmocka_unit_test(accept_without_descriptors),
		cmocka_unit_test(max_conns),
		cmocka_unit_test(refused),
		cmocka_unit_test(direct_descriptors),
	};

	t_sigpipe_fatal(); /* make sure a SIGPIPE would be fatal */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
