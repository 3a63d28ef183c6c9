/*
 * The HTTP/1.1 server: one fiber per connection, requests parsed in place.
 *
 * A connection's fiber loops: peek at the buffered bytes (the kernel's own
 * receive buffers on io_uring), parse a request head there, answer it,
 * consume it, and go on with what follows. A head that spans buffers is
 * grown with peek_more (corio_conn copies it into one piece); a head that
 * fits one buffer is never copied.
 *
 * Pipelining and batching. Responses go into an output buffer that is sent
 * only before the fiber would wait for the client: when nothing more is
 * buffered (corio_conn_buffered) or the next request is not complete yet.
 * So a pipeline is answered with one send, however many kernel buffers it
 * arrived in.
 *
 * Bodies: Content-Length only. Any Transfer-Encoding gets 501 (with
 * Content-Length too: 400, from the parser) and the connection is closed,
 * since the body cannot be skipped. Bodies of other routes are read and
 * dropped, so that the connection stays usable.
 *
 * Deadlines: every wait for the client has the deadline of what it waits
 * for (corio_conn_peek_until): the head (header_timeout from its first
 * byte: 408 and close, so a client trickling a head byte by byte is cut off
 * too), the body (body_timeout from the end of the head), the next request
 * on a kept-alive connection (idle_timeout: closed quietly) and the
 * lingering close. Sends have their own deadline (send_timeout, per flush),
 * so a client that stops reading its responses cannot hold its fiber for
 * ever.
 *
 * Closing after a final response (an error, Connection: close, HTTP/1.0)
 * is lingering: flush, shut down our side, then read and drop what the
 * client still sends, for a short while. Closing with unread bytes in the
 * socket would send a reset, which can destroy the response before the
 * client has read it (a 413 or 431 sent while the client is still sending).
 *
 * Files. A name under /file/ is 1 to 255 characters of [A-Za-z0-9._-] not
 * starting with '.': no '/', so no path at all and nothing to traverse; no
 * '%', so no encoded tricks; no NUL (the parser refuses controls anyway).
 * It is opened relative to the directory's descriptor with O_NOFOLLOW (a
 * symbolic link in the directory is not followed: 404), O_NONBLOCK (a FIFO
 * does not hang the open) and served only if it is a regular file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "parse.h"
#include "server.h"

#define OUT_MIN 4096u		/* output buffer at first */
#define OUT_MAX (128u * 1024)	/* and at most (file data is sent in such pieces) */
#define OUT_KEEP (16u * 1024)	/* kept between requests; a bigger one is freed */
#define HEAD_ROOM 512u		/* enough for any response head we write */
#define LINGER_TIME (2 * CORIO_SEC)
#define LINGER_BYTES (1u << 20)
#define RECV_BUFFER_SIZE 4096u	/* corio's default provided-buffer size */

static const char hello[] = "Hello from corio!\n";

/* Descriptors kept for the server's own use (listeners, rings, files
 * being served) when max_clients comes from the open-file limit. */
#define RESERVED_FDS 32u

struct listener {
	struct http_server *s;
	int fd;
	struct corio_serve_stats st; /* its loop's accept loop */
};

struct http_server {
	struct http_server_opts o;
	struct http_limits lim;
	size_t max_buffered;
	int dirfd;
	int port;
	unsigned n;
	struct listener *ls;
	corio_pool *pool;
	atomic_uint conns;	    /* connections open now, every loop's */
	atomic_bool refusing;	    /* at max_clients since the last admitted one */
	atomic_ullong refused;	    /* answered 503 for max_clients */
};

/* One connection; lives on its fiber's stack. */
struct hconn {
	struct http_server *s;
	corio_conn *c;
	char *out;	   /* responses not sent yet */
	size_t olen, ocap;
	size_t rest;	   /* bytes of the last span after what we consumed */
	size_t span;	   /* an incomplete head: the bytes it has so far */
};

/* How a response ends the exchange. */
#define KEEP 0	/* the connection carries on */
#define CLOSE 1 /* after this response, close (lingering) */
#define DROP -1 /* the connection is broken: close at once */

/* ---------------------------------------------------------------- output */

static int flush(struct hconn *h)
{
	ssize_t n;

	if (!h->olen)
		return 0;
	n = corio_conn_write_until(h->c, h->out, h->olen, corio_now() + h->s->o.send_timeout);
	h->olen = 0;
	return n < 0 ? (int)n : 0;
}

/* Room for @need (<= OUT_MAX) more bytes, sending what is queued if the
 * buffer would grow past OUT_MAX. */
static int out_room(struct hconn *h, size_t need)
{
	size_t cap;
	char *p;
	int err;

	if (h->ocap - h->olen >= need)
		return 0;
	if (h->olen + need > OUT_MAX) {
		err = flush(h);
		if (err)
			return err;
		if (h->ocap >= need)
			return 0;
	}
	cap = h->ocap ? h->ocap : OUT_MIN;
	while (cap < h->olen + need)
		cap *= 2;
	p = realloc(h->out, cap);
	if (!p)
		return -ENOMEM;
	h->out = p;
	h->ocap = cap;
	return 0;
}

/* Queue @len bytes; big pieces (request bodies being echoed) are sent
 * straight from where they are, after what is queued. */
static int out_put(struct hconn *h, const void *data, size_t len)
{
	int err;

	if (len > OUT_MAX / 2) {
		err = flush(h);
		if (err)
			return err;
		ssize_t n = corio_conn_write_until(h->c, data, len,
						    corio_now() + h->s->o.send_timeout);

		return n < 0 ? (int)n : 0;
	}
	err = out_room(h, len);
	if (err)
		return err;
	memcpy(h->out + h->olen, data, len);
	h->olen += len;
	return 0;
}

/* The Date field, formatted once a second per thread. */
static const char *http_date(void)
{
	static __thread time_t last = -1;
	static __thread char buf[40];
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	if (ts.tv_sec != last) {
		last = ts.tv_sec;
		gmtime_r(&ts.tv_sec, &tm);
		strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	}
	return buf;
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 413: return "Content Too Large";
	case 417: return "Expectation Failed";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}

/* What the Connection field of a response says. */
enum conn_say { SAY_NOTHING, SAY_CLOSE, SAY_KEEP_ALIVE };

/* Appending to a response head without snprintf, which cost more than
 * the rest of the head's making (perf, wrk at 64 connections). */
struct head {
	char *p, *end;
};

static void put_str(struct head *o, const char *s)
{
	size_t n = strlen(s);

	if (n > (size_t)(o->end - o->p))
		n = (size_t)(o->end - o->p);
	memcpy(o->p, s, n);
	o->p += n;
}

static void put_u64(struct head *o, uint64_t v)
{
	char d[20];
	int n = 0;

	do
		d[n++] = (char)('0' + v % 10);
	while ((v /= 10) && n < 20);
	while (n && o->p < o->end)
		*o->p++ = d[--n];
}

static int put_head(struct hconn *h, int status, const char *ctype, uint64_t clen,
		    enum conn_say say, const char *allow)
{
	int err = out_room(h, HEAD_ROOM);
	struct head o;

	if (err)
		return err;
	o.p = h->out + h->olen;
	o.end = o.p + HEAD_ROOM;
	put_str(&o, "HTTP/1.1 ");
	put_u64(&o, (uint64_t)status);
	put_str(&o, " ");
	put_str(&o, reason(status));
	put_str(&o, "\r\nServer: corio\r\nDate: ");
	put_str(&o, http_date());
	put_str(&o, "\r\nContent-Type: ");
	put_str(&o, ctype);
	put_str(&o, "\r\nContent-Length: ");
	put_u64(&o, clen);
	put_str(&o, "\r\n");
	if (say == SAY_CLOSE)
		put_str(&o, "Connection: close\r\n");
	else if (say == SAY_KEEP_ALIVE)
		put_str(&o, "Connection: keep-alive\r\n");
	if (allow) {
		put_str(&o, "Allow: ");
		put_str(&o, allow);
		put_str(&o, "\r\n");
	}
	put_str(&o, "\r\n");
	if (o.p == o.end)
		return -EOVERFLOW; /* no room left: the head was cut */
	h->olen = (size_t)(o.p - h->out);
	return 0;
}

/* A response whose body is its status line's text. */
static int simple(struct hconn *h, int status, enum conn_say say, const char *allow, bool body)
{
	char text[64];
	int k = snprintf(text, sizeof(text), "%d %s\n", status, reason(status));
	int err = put_head(h, status, "text/plain; charset=utf-8", (uint64_t)k, say, allow);

	if (!err && body)
		err = out_put(h, text, (size_t)k);
	return err;
}

/* ----------------------------------------------------------------- input */

/* Peek (or peek_more) until data, the end, an error or @deadline. What is
 * queued for the client goes out first if the call may have to wait. */
static ssize_t read_until(struct hconn *h, bool more, const void **data, int64_t deadline)
{
	size_t have = corio_conn_buffered(h->c);

	if ((more ? have <= h->span : have == 0) && flush(h))
		return -EPIPE;
	return more ? corio_conn_peek_more_until(h->c, data, deadline)
		    : corio_conn_peek_until(h->c, data, deadline);
}

static void consume(struct hconn *h, size_t n, size_t span)
{
	corio_conn_consume(h->c, n);
	h->rest = span - n;
	h->span = 0;
}

/* Read @len bytes of body, echoing them or not. Flushes before waiting. */
static int take_body(struct hconn *h, uint64_t len, bool echo, int64_t deadline)
{
	while (len) {
		const void *data;
		ssize_t n;
		size_t k;
		int err;

		n = read_until(h, false, &data, deadline);
		if (n <= 0)
			return n ? (int)n : -EPIPE; /* the client ended mid-body */
		k = (uint64_t)n < len ? (size_t)n : (size_t)len;
		if (echo && (err = out_put(h, data, k)))
			return err;
		consume(h, k, (size_t)n);
		len -= k;
	}
	return 0;
}

/* Flush, tell the client we are done, and drain what it still sends for a
 * while (see the top of the file). */
static void linger_close(struct hconn *h)
{
	int64_t deadline;
	size_t total = 0;

	if (flush(h))
		return;
	corio_conn_shutdown(h->c, SHUT_WR);
	deadline = corio_now() + (h->s->o.header_timeout < LINGER_TIME ?
				   h->s->o.header_timeout : LINGER_TIME);
	while (total < LINGER_BYTES) {
		const void *data;
		ssize_t n = read_until(h, false, &data, deadline);

		if (n <= 0)
			break;
		corio_conn_consume(h->c, (size_t)n);
		total += (size_t)n;
	}
}

/* An error answered with Connection: close (with a body unless the
 * request was a HEAD). */
static int fail_req(struct hconn *h, int status, bool body)
{
	return simple(h, status, SAY_CLOSE, NULL, body) ? DROP : CLOSE;
}

static int fail(struct hconn *h, int status)
{
	return fail_req(h, status, true);
}

/* ----------------------------------------------------------------- files */

static bool valid_name(const char *n, size_t len)
{
	if (len == 0 || len > 255 || n[0] == '.')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = n[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static const char *content_type(const char *name)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
		{".html", "text/html; charset=utf-8"},
		{".htm", "text/html; charset=utf-8"},
		{".txt", "text/plain; charset=utf-8"},
		{".css", "text/css; charset=utf-8"},
		{".js", "text/javascript; charset=utf-8"},
		{".json", "application/json"},
		{".png", "image/png"},
		{".jpg", "image/jpeg"},
		{".jpeg", "image/jpeg"},
		{".gif", "image/gif"},
		{".svg", "image/svg+xml"},
	};
	const char *dot = strrchr(name, '.');

	for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
		if (!strcasecmp(dot, types[i].ext))
			return types[i].type;
	return "application/octet-stream";
}

/* Send the file's bytes, [0, size), after its head. */
static int send_file_data(struct hconn *h, int fd, uint64_t size)
{
	uint64_t off = 0;

	while (off < size) {
		size_t want = size - off < OUT_MAX ? (size_t)(size - off) : OUT_MAX;
		ssize_t n;
		int err = out_room(h, want);

		if (err)
			return err;
		n = corio_read(fd, h->out + h->olen, want, (int64_t)off);
		if (n <= 0)
			return n ? (int)n : -ENODATA; /* shrank under us: the length was a lie */
		h->olen += (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int serve_file(struct hconn *h, const char *name, bool head_only, enum conn_say say)
{
	struct statx st;
	int fd, err;

	if (h->s->dirfd < 0)
		return simple(h, 404, say, NULL, !head_only);
	fd = corio_openat(h->s->dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
			  0);
	if (fd < 0)
		return simple(h, fd == -EACCES ? 403 : fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM ?
				  500 : 404, say, NULL, !head_only);
	err = corio_statx(fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_SIZE, &st);
	if (err || !S_ISREG(st.stx_mode)) {
		corio_close(fd);
		return simple(h, err ? 500 : 404, say, NULL, !head_only);
	}
	/* Back to blocking reads: io_uring would fail them with EAGAIN on a
	 * page-cache miss instead of waiting for the disk. */
	fcntl(fd, F_SETFL, 0);
	err = put_head(h, 200, content_type(name), st.stx_size, say, NULL);
	if (!err && !head_only)
		err = send_file_data(h, fd, st.stx_size);
	corio_close(fd);
	return err;
}

/* --------------------------------------------------------------- requests */

enum route { R_HELLO, R_ECHO, R_FILE, R_NOT_FOUND, R_BAD_TARGET };

/*
 * The target's path and query, from the origin form ("/path?q") or the
 * absolute form ("http://host/path?q"), which RFC 9112 3.2.2 says a server
 * must accept (a client talking to a proxy sends it). The host in it is
 * not checked against ours: every name is served alike. An absolute form
 * with userinfo ("http://u@host/", an error per RFC 9110 4.2.4) or an empty
 * host is refused, and so are the authority and asterisk forms (CONNECT,
 * OPTIONS *), which only proxies serve. An empty path is "/".
 */
static bool origin_form(const char **t, size_t *len)
{
	const char *p = *t, *end = p + *len, *host;

	if (*len && p[0] == '/')
		return true;
	if (*len >= 7 && !strncasecmp(p, "http://", 7))
		host = p + 7;
	else if (*len >= 8 && !strncasecmp(p, "https://", 8))
		host = p + 8;
	else
		return false;
	for (p = host; p < end && *p != '/' && *p != '?'; p++)
		if (*p == '@')
			return false;
	if (p == host)
		return false;
	*t = p;
	*len = (size_t)(end - p);
	return true;
}

static enum route route_of(const char *path, size_t len)
{
	if (len == 0)
		return R_HELLO; /* an absolute form without a path: "/" */
	if (path[0] != '/')
		return R_BAD_TARGET;
	if (len == 1)
		return R_HELLO;
	if (len == 5 && !memcmp(path, "/echo", 5))
		return R_ECHO;
	if (len >= 6 && !memcmp(path, "/file/", 6))
		return R_FILE;
	return R_NOT_FOUND;
}

/*
 * Answer one request, parsed at the start of the span we peeked (@n bytes).
 * The head is consumed here, once what we need from it is copied: after
 * that, @req's strings point to memory we gave back. Returns KEEP, CLOSE
 * or DROP.
 */
static int serve_request(struct hconn *h, const struct http_request *req, size_t n)
{
	struct http_server *s = h->s;
	bool v11 = req->version_minor >= 1;
	bool keep = v11 ? !(req->flags & HTTP_F_CLOSE) :
			  (req->flags & HTTP_F_KEEP_ALIVE) && !(req->flags & HTTP_F_CLOSE);
	enum conn_say say = !keep ? SAY_CLOSE : v11 ? SAY_NOTHING : SAY_KEEP_ALIVE;
	const char *path = req->target, *q;
	size_t plen = req->target_len;
	enum route r = R_BAD_TARGET;
	bool get = req->method == HTTP_GET, head = req->method == HTTP_HEAD;
	uint64_t body = req->content_length;
	char name[256];
	int err;

	/* Framing we cannot follow, or will not: answer and close. */
	if (v11 ? req->host_count != 1 : req->host_count > 1)
		return fail_req(h, 400, !head); /* RFC 9112 3.2 */
	if (req->flags & HTTP_F_TRANSFER_ENCODING)
		return fail_req(h, 501, !head);
	if (req->flags & HTTP_F_EXPECT_OTHER)
		return fail_req(h, 417, !head);
	if (body > s->o.max_body)
		return fail_req(h, 413, !head);

	if (origin_form(&path, &plen)) {
		q = memchr(path, '?', plen);
		if (q)
			plen = (size_t)(q - path);
		r = route_of(path, plen);
	}
	if (r == R_FILE) {
		if (!valid_name(path + 6, plen - 6))
			r = R_BAD_TARGET;
		else {
			memcpy(name, path + 6, plen - 6);
			name[plen - 6] = '\0';
		}
	}
	consume(h, req->head_len, n);

	/* The client waits for our go before sending a body we will read. */
	if ((req->flags & HTTP_F_EXPECT_CONTINUE) && v11 && body > h->rest &&
	    (err = out_put(h, "HTTP/1.1 100 Continue\r\n\r\n", 25)))
		return DROP;

	if (r == R_ECHO && req->method == HTTP_POST) {
		err = put_head(h, 200, "application/octet-stream", body, say, NULL);
		if (!err)
			err = take_body(h, body, true, corio_now() + s->o.body_timeout);
		/* A body cut short leaves a response we cannot finish. */
		return err ? DROP : keep ? KEEP : CLOSE;
	}
	err = take_body(h, body, false, corio_now() + s->o.body_timeout);
	if (err == -ETIMEDOUT)
		return fail_req(h, 408, !head);
	if (err)
		return DROP;

	switch (r) {
	case R_HELLO:
		if (!get && !head)
			err = simple(h, 405, say, "GET, HEAD", true);
		else if (!(err = put_head(h, 200, "text/plain; charset=utf-8", sizeof(hello) - 1, say,
					 NULL)) && get)
			err = out_put(h, hello, sizeof(hello) - 1);
		break;
	case R_FILE:
		if (!get && !head)
			err = simple(h, 405, say, "GET, HEAD", true);
		else
			err = serve_file(h, name, head, say);
		break;
	case R_ECHO:
		err = simple(h, 405, say, "POST", !head);
		break;
	case R_NOT_FOUND:
		err = simple(h, 404, say, NULL, !head);
		break;
	case R_BAD_TARGET:
		err = simple(h, 400, say, NULL, !head);
		break;
	}
	return err ? DROP : keep ? KEEP : CLOSE;
}

/* The requests of one connection, until it ends. Returns CLOSE (answered,
 * close lingering) or DROP. */
static int serve_conn(struct hconn *h)
{
	const struct http_server *s = h->s;
	struct http_request req;
	const void *data;
	int64_t head_deadline;
	ssize_t n;
	int r;

	for (;;) {
		/* The next request is already here (pipelined), or we wait for
		 * it, with our answers sent (read_until flushes first). */
		if (!corio_conn_buffered(h->c)) {
			if (flush(h))
				return DROP;
			/* A buffer grown for a file is not kept while idle. */
			if (h->ocap > OUT_KEEP) {
				free(h->out);
				h->out = NULL;
				h->ocap = 0;
			}
		}
		n = read_until(h, false, &data, corio_now() + s->o.idle_timeout);
		if (n <= 0)
			return DROP; /* the end, an error, idle too long, or stopping */
		head_deadline = corio_now() + s->o.header_timeout;
		while ((r = http_parse_request(data, (size_t)n, &s->lim, &req)) == HTTP_INCOMPLETE) {
			h->span = (size_t)n;
			n = read_until(h, true, &data, head_deadline);
			if (n == -ETIMEDOUT)
				return fail(h, 408);
			if (n == -EMSGSIZE)
				return fail(h, 431);
			if (n <= 0)
				return DROP; /* the end mid-head: nobody to answer */
		}
		if (r < 0)
			return fail(h, -r);
		r = serve_request(h, &req, (size_t)n);
		if (r != KEEP)
			return r;
	}
}

/* Past max_clients: 503 and close, logged once per episode (until a
 * connection is admitted again). Returns whether to serve. */
static bool admit(struct http_server *s, struct hconn *h)
{
	if (atomic_fetch_add_explicit(&s->conns, 1, memory_order_relaxed) < s->o.max_clients) {
		/* A load first: the exchange only while an episode is on. */
		if (atomic_load_explicit(&s->refusing, memory_order_relaxed) &&
		    atomic_exchange_explicit(&s->refusing, false, memory_order_relaxed))
			fprintf(stderr, "http: admitting connections again (%llu refused so far)\n",
				atomic_load(&s->refused));
		return true;
	}
	/* Not counted while it lingers: only admitted clients are. */
	atomic_fetch_sub_explicit(&s->conns, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->refused, 1, memory_order_relaxed);
	if (!atomic_exchange_explicit(&s->refusing, true, memory_order_relaxed))
		fprintf(stderr,
			"http: max_clients (%u) reached: answering 503 to new connections until "
			"some close\n", s->o.max_clients);
	if (!simple(h, 503, SAY_CLOSE, NULL, true))
		linger_close(h);
	return false;
}

static void handle_conn(int fd, void *arg)
{
	struct http_server *s = arg;
	struct corio_conn_opts co = {.max_buffered = s->max_buffered};
	struct hconn h = {.s = s};

	if (corio_conn_open(&h.c, fd, &co)) {
		close(fd);
		return;
	}
	if (admit(s, &h)) {
		if (serve_conn(&h) == CLOSE)
			linger_close(&h);
		atomic_fetch_sub_explicit(&s->conns, 1, memory_order_relaxed);
	}
	corio_conn_close(h.c);
	free(h.out);
}

void http_server_serve(struct http_server *s, int fd)
{
	handle_conn(fd, s);
}

/* ------------------------------------------------------------ the server */

static void *serve_main(void *arg)
{
	struct listener *l = arg;
	struct corio_serve_opts so = {.stats = &l->st};
	int err = corio_serve(l->fd, handle_conn, l->s, &so);

	if (err != -ECANCELED)
		fprintf(stderr, "http: serving stopped: %s\n", strerror(-err));
	return NULL;
}

static void on_loop_start(corio_loop *loop, unsigned index, void *arg)
{
	struct http_server *s = arg;
	struct corio_fiber_opts fo = {.detached = true, .name = "http-serve"};
	int err = corio_spawn(NULL, loop, serve_main, &s->ls[index], &fo);

	/* Which backend serves: scripts check it before a figure counts. */
	if (index == 0)
		fprintf(stderr, "http: serving on %s\n", corio_loop_backend(loop));
	if (err)
		fprintf(stderr, "http: loop %u cannot serve: %s\n", index, strerror(-err));
}

static unsigned cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 1;
	return (unsigned)CPU_COUNT(&set);
}

static void defaults(struct http_server *s)
{
	struct http_server_opts *o = &s->o;

	if (!o->header_timeout)
		o->header_timeout = 10 * CORIO_SEC;
	if (!o->idle_timeout)
		o->idle_timeout = 60 * CORIO_SEC;
	if (!o->body_timeout)
		o->body_timeout = 30 * CORIO_SEC;
	if (!o->send_timeout)
		o->send_timeout = 30 * CORIO_SEC;
	if (!o->max_head)
		o->max_head = HTTP_DEFAULT_MAX_HEAD;
	if (o->max_head > HTTP_MAX_HEAD_LIMIT)
		o->max_head = HTTP_MAX_HEAD_LIMIT;
	if (!o->max_headers || o->max_headers > HTTP_MAX_HEADERS)
		o->max_headers = HTTP_MAX_HEADERS;
	if (!o->max_body)
		o->max_body = 1u << 20;
	if (!o->max_clients) {
		struct rlimit rl;

		o->max_clients = UINT32_MAX;
		if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur != RLIM_INFINITY)
			o->max_clients = rl.rlim_cur > RESERVED_FDS + 1 ?
						 (unsigned)(rl.rlim_cur - RESERVED_FDS) : 1;
	}
	s->lim = (struct http_limits){.max_head = o->max_head, .max_headers = o->max_headers};
	/* Room to assemble a head of max_head bytes that starts in one kernel
	 * buffer and ends in another, which may hold more behind it. */
	s->max_buffered = o->max_head +
			  (o->loop.recv_buffer_size ? o->loop.recv_buffer_size : RECV_BUFFER_SIZE);
}

static void destroy(struct http_server *s)
{
	unsigned long long backoffs = 0, refused = atomic_load(&s->refused);

	if (s->pool)
		corio_pool_destroy(s->pool);
	for (unsigned i = 0; s->ls && i < s->n; i++) {
		backoffs += s->ls[i].st.backoffs;
		refused += s->ls[i].st.refused;
	}
	if (refused || backoffs)
		fprintf(stderr, "http: %llu connections refused, %llu accept back-offs\n", refused,
			backoffs);
	for (unsigned i = 0; s->ls && i < s->n; i++)
		if (s->ls[i].fd >= 0)
			close(s->ls[i].fd);
	if (s->dirfd >= 0)
		close(s->dirfd);
	free(s->ls);
	free(s);
}

int http_server_start(struct http_server **out, const struct http_server_opts *opts)
{
	struct corio_pool_opts po = {0};
	struct http_server *s;
	int err = http_server_open(&s, opts);

	if (err)
		return err;
	s->n = s->o.threads ? s->o.threads : cpus();
	s->ls = calloc(s->n, sizeof(*s->ls));
	if (!s->ls) {
		err = -ENOMEM;
		goto fail;
	}
	for (unsigned i = 0; i < s->n; i++)
		s->ls[i] = (struct listener){.s = s, .fd = -1};
	/* One listener per loop on one port: the kernel spreads connections
	 * over them, and each loop accepts only its own. */
	s->port = s->o.port;
	for (unsigned i = 0; i < s->n; i++) {
		s->ls[i].fd = corio_listen_tcp(s->o.addr, s->port, 4096, CORIO_LISTEN_REUSEPORT);
		if (s->ls[i].fd < 0) {
			err = s->ls[i].fd;
			goto fail;
		}
		if (i == 0 && (s->port = corio_local_port(s->ls[0].fd)) < 0) {
			err = s->port;
			goto fail;
		}
	}
	po.nloops = s->n;
	po.loop = s->o.loop;
	po.on_start = on_loop_start;
	po.arg = s;
	err = corio_pool_create(&s->pool, &po);
	if (err) {
		s->pool = NULL;
		goto fail;
	}
	*out = s;
	return 0;
fail:
	destroy(s);
	return err;
}

int http_server_open(struct http_server **out, const struct http_server_opts *opts)
{
	struct http_server *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->dirfd = -1;
	if (opts)
		s->o = *opts;
	defaults(s);
	if (s->o.dir && (s->dirfd = open(s->o.dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		int err = -errno;

		destroy(s);
		return err;
	}
	*out = s;
	return 0;
}

int http_server_port(const struct http_server *s)
{
	return s->port;
}

unsigned http_server_threads(const struct http_server *s)
{
	return s->n;
}

void http_server_stop(struct http_server *s)
{
	if (s)
		destroy(s);
}
