/*
 * The HTTP/1.1 server of examples/http, run in-process on a pool of loops
 * and spoken to over plain blocking sockets: hello, keep-alive, pipelines
 * (also with heads spanning tiny receive buffers), bodies, files, path
 * traversal, malformed requests and every limit, the header deadline
 * (slowloris), the idle timeout, Connection: close, HTTP/1.0, and stopping
 * with connections open. Runs on both backends.
 *
 * Deadlines here are the subject of a test, never a synchronisation: a
 * server with short timeouts must answer 408 (or close), and the test
 * reads the answer however long it takes. Client sockets get a generous
 * receive timeout only so that a broken server fails the test instead of
 * hanging it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "server.h"
#include "util.h"

#define HELLO "Hello from corio!\n"
#define SECRET "TOP-SECRET-CONTENT"

/* ------------------------------------------------------------- servers */

static struct http_server *srv;	 /* default timeouts and limits */
static char *root;		 /* a temporary directory: root/www is served */
static char www[512];

static struct http_server *start(const struct http_server_opts *o)
{
	struct http_server *s;
	int err = http_server_start(&s, o);

	t_skip_unavailable(err);
	assert_int_equal(err, 0);
	assert_true(http_server_port(s) > 0);
	return s;
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[1024];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static unsigned char big[1 << 20];

static int setup(void **state)
{
	char path[1024];

	(void)state;
	root = t_tmpdir();
	snprintf(www, sizeof(www), "%s/www", root);
	assert_int_equal(mkdir(www, 0755), 0);
	write_file(root, "secret", SECRET, strlen(SECRET));
	write_file(www, "hello.txt", "hello, file\n", 12);
	write_file(www, "page.html", "<p>hi</p>\n", 10);
	write_file(www, "empty.json", "", 0);
	write_file(www, ".hidden", SECRET, strlen(SECRET));
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 2654435761u >> 13);
	write_file(www, "big.bin", big, sizeof(big));
	snprintf(path, sizeof(path), "%s/sub", www);
	assert_int_equal(mkdir(path, 0755), 0);
	write_file(path, "inner.txt", SECRET, strlen(SECRET));
	snprintf(path, sizeof(path), "%s/link", www);
	assert_int_equal(symlink("../secret", path), 0);
	snprintf(path, sizeof(path), "%s/fifo", www);
	assert_int_equal(mkfifo(path, 0644), 0);

	srv = start(&(struct http_server_opts){.threads = 2, .dir = www});
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	http_server_stop(srv);
	t_rmdir_r(root);
	free(root);
	return 0;
}

/* -------------------------------------------------------------- client */

struct client {
	int fd;
	char *buf;
	size_t len, off, cap;
};

static void cl_open(struct client *c, int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct timeval tv = {.tv_sec = 60}; /* a safety net, not a synchronisation */

	memset(c, 0, sizeof(*c));
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c->fd >= 0);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
}

static void cl_close(struct client *c)
{
	close(c->fd);
	free(c->buf);
	c->buf = NULL;
}

static void cl_send(struct client *c, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);

		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

static void cl_sends(struct client *c, const char *s)
{
	cl_send(c, s, strlen(s));
}

/* Sending from another thread, for requests the server answers while they
 * are still arriving (an echo): one thread sending everything before
 * reading could fill both directions' socket buffers and stall. */
struct bg_send {
	pthread_t thread;
	int fd;
	const char *p;
	size_t len;
	ssize_t res;
};

static void *bg_send_main(void *arg)
{
	struct bg_send *b = arg;
	size_t done = 0;

	while (done < b->len) {
		ssize_t n = send(b->fd, b->p + done, b->len - done, MSG_NOSIGNAL);

		if (n <= 0) {
			b->res = -1;
			return NULL;
		}
		done += (size_t)n;
	}
	b->res = (ssize_t)done;
	return NULL;
}

static void bg_send_start(struct bg_send *b, struct client *c, const void *p, size_t len)
{
	*b = (struct bg_send){.fd = c->fd, .p = p, .len = len};
	assert_int_equal(pthread_create(&b->thread, NULL, bg_send_main, b), 0);
}

static void bg_send_wait(struct bg_send *b)
{
	assert_int_equal(pthread_join(b->thread, NULL), 0);
	assert_int_equal(b->res, (ssize_t)b->len);
}

/* Receive more; returns the count, 0 at the end (or a reset), -1 on a
 * timeout of the safety net. */
static ssize_t cl_fill(struct client *c)
{
	ssize_t n;

	if (c->cap - c->len < 65536) {
		c->cap = c->cap ? c->cap * 2 : 65536 * 2;
		c->buf = realloc(c->buf, c->cap);
		assert_non_null(c->buf);
	}
	n = recv(c->fd, c->buf + c->len, c->cap - c->len - 1, 0);
	if (n < 0 && errno == ECONNRESET)
		return 0;
	if (n < 0)
		return -1;
	c->len += (size_t)n;
	c->buf[c->len] = '\0';
	return n;
}

struct resp {
	int status;
	char head[4096];
	long clen;
	char *body;
	size_t body_len;
};

/* The value of field @name in r->head (lower-case name), or "". */
static const char *field(const struct resp *r, const char *name, char *out, size_t size)
{
	char pat[64];
	const char *p;
	size_t n = 0;

	snprintf(pat, sizeof(pat), "\r\n%s:", name);
	p = strcasestr(r->head, pat);
	out[0] = '\0';
	if (!p)
		return out;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	while (p[n] && p[n] != '\r' && n + 1 < size)
		n++;
	memcpy(out, p, n);
	out[n] = '\0';
	return out;
}

static bool has_field(const struct resp *r, const char *name, const char *value)
{
	char v[256];

	return !strcasecmp(field(r, name, v, sizeof(v)), value);
}

/* Read one response (a HEAD's has no body). Returns 0, or -1 if the
 * connection ended first. */
static int cl_response(struct client *c, struct resp *r, bool head_req)
{
	char *end, v[64];
	size_t hl;

	free(r->body);
	memset(r, 0, sizeof(*r));
	while (!c->buf || !(end = strstr(c->buf + c->off, "\r\n\r\n")))
		if (cl_fill(c) <= 0)
			return -1;
	hl = (size_t)(end + 4 - (c->buf + c->off));
	assert_true(hl < sizeof(r->head));
	memcpy(r->head, c->buf + c->off, hl);
	r->head[hl] = '\0';
	assert_int_equal(sscanf(r->head, "HTTP/1.1 %d ", &r->status), 1);
	r->clen = -1;
	if (*field(r, "content-length", v, sizeof(v)))
		r->clen = atol(v);
	c->off += hl;
	if (!head_req && r->status >= 200) {
		assert_true(r->clen >= 0);
		while (c->len - c->off < (size_t)r->clen)
			if (cl_fill(c) <= 0)
				return -1;
		r->body_len = (size_t)r->clen;
		r->body = malloc(r->body_len + 1);
		memcpy(r->body, c->buf + c->off, r->body_len);
		r->body[r->body_len] = '\0';
		c->off += r->body_len;
	}
	return 0;
}

static void resp_free(struct resp *r)
{
	free(r->body);
	r->body = NULL;
}

/* The server closed: nothing more was sent, then the end of the stream. */
static bool cl_ended(struct client *c)
{
	while (c->len == c->off) {
		ssize_t n = cl_fill(c);

		if (n == 0)
			return true;
		if (n < 0)
			return false;
	}
	return false; /* unexpected bytes */
}

/* One request on a fresh connection; the response in *r. */
static void exchange(int port, const char *req, size_t len, struct resp *r)
{
	struct client c;
	struct bg_send b;

	cl_open(&c, port);
	bg_send_start(&b, &c, req, len);
	assert_int_equal(cl_response(&c, r, false), 0);
	bg_send_wait(&b);
	cl_close(&c);
}

static int status_of(const char *req)
{
	struct resp r = {0};

	exchange(http_server_port(srv), req, strlen(req), &r);
	resp_free(&r);
	return r.status;
}

/* --------------------------------------------------------------- tests */

static void get_hello(void **state)
{
	struct client c;
	struct resp r = {0};

	(void)state;
	cl_open(&c, http_server_port(srv));
	cl_sends(&c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(cl_response(&c, &r, false), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, HELLO);
	assert_true(has_field(&r, "content-type", "text/plain; charset=utf-8"));
	assert_true(has_field(&r, "connection", ""));
	resp_free(&r);
	/* HEAD: the same head, no body. */
	cl_sends(&c, "HEAD /?q=1 HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(cl_response(&c, &r, true), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.clen, (long)strlen(HELLO));
	/* Then GET again: the HEAD's length left no stray body behind. */
	cl_sends(&c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(cl_response(&c, &r, false), 0);
	assert_string_equal(r.body, HELLO);
	resp_free(&r);
	cl_close(&c);
}

static void keep_alive(void **state)
{
	struct client c;
	struct resp r = {0};

	(void)state;
	cl_open(&c, http_server_port(srv));
	for (int i = 0; i < 20; i++) {
		cl_sends(&c, i % 2 ? "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n" :
				     "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
		assert_int_equal(cl_response(&c, &r, false), 0);
		assert_int_equal(r.status, i % 2 ? 404 : 200);
		resp_free(&r);
	}
	cl_close(&c);
}

/* 100 requests in one write, of three kinds, answered in order. */
static void pipeline(int port, int nreq, size_t pad)
{
	struct client c;
	struct resp r = {0};
	size_t cap = (size_t)nreq * (256 + pad), len = 0;
	char *req = malloc(cap), *padding = malloc(pad + 1);

	assert_non_null(req);
	memset(padding, 'p', pad);
	padding[pad] = '\0';
	for (int i = 0; i < nreq; i++) {
		char body[32];
		int bl = snprintf(body, sizeof(body), "request %d", i);

		switch (i % 3) {
		case 0:
			len += (size_t)snprintf(req + len, cap - len,
						"GET /?n=%d HTTP/1.1\r\nHost: t\r\nX-Pad: %s\r\n\r\n",
						i, padding);
			break;
		case 1:
			len += (size_t)snprintf(req + len, cap - len,
						"POST /echo HTTP/1.1\r\nHost: t\r\nX-Pad: %s\r\n"
						"Content-Length: %d\r\n\r\n%s",
						padding, bl, body);
			break;
		case 2:
			len += (size_t)snprintf(req + len, cap - len,
						"GET /missing-%d HTTP/1.1\r\nHost: t\r\n\r\n", i);
			break;
		}
	}
	cl_open(&c, port);
	cl_send(&c, req, len);
	for (int i = 0; i < nreq; i++) {
		char body[32];

		assert_int_equal(cl_response(&c, &r, false), 0);
		switch (i % 3) {
		case 0:
			assert_int_equal(r.status, 200);
			assert_string_equal(r.body, HELLO);
			break;
		case 1:
			snprintf(body, sizeof(body), "request %d", i);
			assert_int_equal(r.status, 200);
			assert_string_equal(r.body, body);
			break;
		case 2:
			assert_int_equal(r.status, 404);
			break;
		}
		resp_free(&r);
	}
	/* And the connection is still usable. */
	cl_sends(&c, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
	assert_int_equal(cl_response(&c, &r, false), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	assert_true(cl_ended(&c));
	cl_close(&c);
	free(req);
	free(padding);
}

static void pipeline_100(void **state)
{
	(void)state;
	pipeline(http_server_port(srv), 100, 0);
}

/* Receive buffers of 64 bytes: every head spans several, and is
 * assembled by peek_more; the answers must not change. */
static void pipeline_tiny_buffers(void **state)
{
	struct http_server *s = start(&(struct http_server_opts){
		.threads = 1,
		.loop = {.recv_buffer_size = 64, .recv_buffers = 64, .recv_buffers_max = 128}});

	(void)state;
	pipeline(http_server_port(s), 100, 300);
	http_server_stop(s);
}

static void post_bodies(void **state)
{
	struct client c;
	struct resp r = {0};
	char head[256];
	size_t n = 200000;

	(void)state;
	cl_open(&c, http_server_port(srv));
	cl_sends(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
	assert_int_equal(cl_response(&c, &r, false), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "hello");
	resp_free(&r);

	/* Head and body in separate writes. */
	cl_sends(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n");
	cl_sends(&c, "hello ");
	cl_sends(&c, "world");
	assert_int_equal(cl_response(&c, &r, false), 0);
	assert_string_equal(r.body, "hello world");
	resp_free(&r);

	/* An empty body, then a large one (many receive buffers). */
	cl_sends(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
	assert_int_equal(cl_response(&c, &r, false), 0);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, 0);
	resp_free(&r);
	snprintf(head, sizeof(head), "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n",
		 n);
	cl_sends(&c, head);
	{
		struct bg_send b;

		bg_send_start(&b, &c, big, n);
		assert_int_equal(cl_response(&c, &r, false), 0);
		bg_send_wait(&b);
	}
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body_len, n);
	assert_memory_equal(r.body, big, n);
	resp_free(&r);

	/* A body sent to a route that does not take one is skipped: 405, and
	 * the next request is read where it starts. */
	cl_sends(&c, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 9\r\n\r\nGET / BAD"
		     "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(cl_response(&c, &r, false), 0);
	assert_int_equal(r.status, 405);
	assert_true(has_field(&r, "allow", "GET, HEAD"));
	resp_free(&r);
	assert_int_equal(cl_response(&c, &r, false), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, HELLO);
	resp_free(&r);
	cl_close(&c);
}

static void expect_continue(void **state)
{
	struct client c;
	struct resp r = {0};

	(void)state;
	cl_open(&c, http_server_port(srv));
	cl_sends(&c, "POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
		     "Content-Length: 4\r\n\r\n");
	assert_int_equal(cl_response(&c, &r, true), 0);
	assert_int_equal(r.status, 100);
	cl_sends(&c, "ping");
	assert_int_equal(cl_response(&c, &r, false), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "ping");
	resp_free(&r);
	cl_close(&c);
	assert_int_equal(status_of("POST /echo HTTP/1.1\r\nHost: t\r\nExpect: magic\r\n"
				   "Content-Length: 4\r\n\r\nping"),
			 417);
}

static void get_file(const char *name, int status, const void *data, size_t len,
		     const char *ctype)
{
	struct client c;
	struct resp r = {0};
	char req[512];

	cl_open(&c, http_server_port(srv));
	snprintf(req, sizeof(req), "GET /file/%s HTTP/1.1\r\nHost: t\r\n\r\n", name);
	cl_sends(&c, req);
	assert_int_equal(cl_response(&c, &r, false), 0);
	assert_int_equal(r.status, status);
	if (status == 200) {
		assert_int_equal(r.body_len, len);
		assert_memory_equal(r.body, data, len);
		assert_true(has_field(&r, "content-type", ctype));
		resp_free(&r);
		/* HEAD says the length and sends nothing. */
		snprintf(req, sizeof(req), "HEAD /file/%s HTTP/1.1\r\nHost: t\r\n\r\n", name);
		cl_sends(&c, req);
		assert_int_equal(cl_response(&c, &r, true), 0);
		assert_int_equal(r.status, 200);
		assert_int_equal(r.clen, (long)len);
	}
	resp_free(&r);
	/* The connection carries on (also after a 404). */
	cl_sends(&c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(cl_response(&c, &r, false), 0);
	assert_string_equal(r.body, HELLO);
	resp_free(&r);
	cl_close(&c);
}

static void files(void **state)
{
	(void)state;
	get_file("hello.txt", 200, "hello, file\n", 12, "text/plain; charset=utf-8");
	get_file("page.html", 200, "<p>hi</p>\n", 10, "text/html; charset=utf-8");
	get_file("empty.json", 200, "", 0, "application/json");
	get_file("big.bin", 200, big, sizeof(big), "application/octet-stream");
	get_file("big.bin?v=2", 200, big, sizeof(big), "application/octet-stream");
	get_file("missing.txt", 404, NULL, 0, NULL);
	get_file("sub", 404, NULL, 0, NULL);	/* a directory */
	get_file("link", 404, NULL, 0, NULL);	/* a symbolic link: not followed */
	get_file("fifo", 404, NULL, 0, NULL);	/* not a regular file; must not hang */
	assert_int_equal(status_of("DELETE /file/hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"), 405);
}

/* Ways out of the directory: none may give anything but 400 or 404, or
 * show a byte of a file outside it. */
static void path_traversal(void **state)
{
	static const char *const targets[] = {
		"/file/../secret",
		"/file/..%2fsecret",
		"/file/%2e%2e/secret",
		"/file/%2e%2e%2fsecret",
		"/file/..",
		"/file/.",
		"/file/",
		"/file//etc/passwd",
		"/file/sub/inner.txt",
		"/file/sub/../../secret",
		"/file/.hidden",
		"/file/..\\secret",
		"/file/%00secret",
		"/file/link",
		"/file/./link",
		"/file/~/secret",
		"/file/secret%00.txt",
		"/../secret",
		"/file/../../../../../../etc/passwd",
	};
	char req[512];

	(void)state;
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
		struct resp r = {0};
		int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", targets[i]);

		exchange(http_server_port(srv), req, (size_t)n, &r);
		if (r.status != 400 && r.status != 404)
			fail_msg("%s: %d", targets[i], r.status);
		assert_null(strstr(r.body, SECRET));
		assert_null(strstr(r.body, "root:"));
		resp_free(&r);
	}
	/* A NUL inside the target: the request is malformed. */
	{
		static const char nul[] = "GET /file/secret\0/../hello.txt HTTP/1.1\r\nHost: t\r\n\r\n";
		struct resp r = {0};

		exchange(http_server_port(srv), nul, sizeof(nul) - 1, &r);
		assert_int_equal(r.status, 400);
		assert_null(strstr(r.body, SECRET));
		resp_free(&r);
	}
}

/* An error answer and then the end of the connection. */
static void assert_fails(const char *req, size_t len, int status)
{
	struct client c;
	struct resp r = {0};

	cl_open(&c, http_server_port(srv));
	cl_send(&c, req, len);
	assert_int_equal(cl_response(&c, &r, false), 0);
	if (r.status != status)
		fail_msg("%.40s...: %d, not %d", req, r.status, status);
	assert_true(has_field(&r, "connection", "close"));
	assert_true(cl_ended(&c));
	resp_free(&r);
	cl_close(&c);
}

#define FAILS(lit, status) assert_fails(lit, sizeof(lit) - 1, status)

static void malformed(void **state)
{
	(void)state;
	FAILS("GET /\r\n\r\n", 400);
	FAILS("GET  / HTTP/1.1\r\nHost: t\r\n\r\n", 400);
	FAILS("GET / HTTP/1.1\nHost: t\n\n", 400);
	FAILS("GE\x01T / HTTP/1.1\r\nHost: t\r\n\r\n", 400);
	FAILS("GET / HTTP/1.1\r\nHost: t\r\nBad Name: x\r\n\r\n", 400);
	FAILS("GET / HTTP/1.1\r\nHost: t\r\nA: b\r\n folded\r\n\r\n", 400);
	FAILS("GET / HTTP/1.1\r\n\r\n", 400);			 /* no Host */
	FAILS("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400); /* two */
	FAILS("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
	      400);
	FAILS("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 12a\r\n\r\n", 400);
	FAILS("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999999\r\n\r\n",
	      400);
	FAILS("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
	      "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	      400);
	FAILS("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
	      "3\r\nabc\r\n0\r\n\r\n",
	      501);
	FAILS("GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505);
	/* The answer to a HEAD has no body, errors included. */
	{
		struct client c;
		struct resp r = {0};

		cl_open(&c, http_server_port(srv));
		cl_sends(&c, "HEAD / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
		assert_int_equal(cl_response(&c, &r, true), 0);
		assert_int_equal(r.status, 501);
		assert_true(r.clen > 0);
		assert_true(cl_ended(&c));
		cl_close(&c);
	}
	/* What comes after a malformed request is not answered. */
	FAILS("BAD\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n", 400);
	/* Other routes and methods. */
	assert_int_equal(status_of("DELETE / HTTP/1.1\r\nHost: t\r\n\r\n"), 405);
	assert_int_equal(status_of("GET /echo HTTP/1.1\r\nHost: t\r\n\r\n"), 405);
	assert_int_equal(status_of("BREW / HTTP/1.1\r\nHost: t\r\n\r\n"), 405);
	assert_int_equal(status_of("GET /nothing/here HTTP/1.1\r\nHost: t\r\n\r\n"), 404);
	/* The asterisk and authority forms are for proxies: 400. */
	assert_int_equal(status_of("OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n"), 400);
	assert_int_equal(status_of("CONNECT t:80 HTTP/1.1\r\nHost: t\r\n\r\n"), 400);
}

/* RFC 9112 3.2.2: the absolute form is served like the origin form. */
static void absolute_form(void **state)
{
	struct resp r = {0};
	static const char pipelined[] = "GET http://t/ HTTP/1.1\r\nHost: t\r\n\r\n"
					"GET HTTP://Other:8080/file/hello.txt?x=1 HTTP/1.1\r\n"
					"Host: t\r\n\r\n";
	struct client c;

	(void)state;
	cl_open(&c, http_server_port(srv));
	cl_sends(&c, pipelined);
	assert_int_equal(cl_response(&c, &r, false), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, HELLO);
	assert_int_equal(cl_response(&c, &r, false), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "hello, file\n");
	resp_free(&r);
	cl_close(&c);
	/* An empty path is "/"; https names the same resources. */
	assert_int_equal(status_of("GET http://t HTTP/1.1\r\nHost: t\r\n\r\n"), 200);
	assert_int_equal(status_of("GET http://t?q=1 HTTP/1.1\r\nHost: t\r\n\r\n"), 200);
	assert_int_equal(status_of("GET https://t/ HTTP/1.1\r\nHost: t\r\n\r\n"), 200);
	assert_int_equal(status_of("GET http://t/nothing HTTP/1.1\r\nHost: t\r\n\r\n"), 404);
	assert_int_equal(status_of("GET http://t/echo HTTP/1.1\r\nHost: t\r\n\r\n"), 405);
	/* No way out of the directory through it either. */
	assert_int_equal(status_of("GET http://t/file/../secret HTTP/1.1\r\nHost: t\r\n\r\n"),
			 400);
	/* Userinfo (RFC 9110 4.2.4), an empty host, other schemes: 400. */
	assert_int_equal(status_of("GET http://u@t/ HTTP/1.1\r\nHost: t\r\n\r\n"), 400);
	assert_int_equal(status_of("GET http:///x HTTP/1.1\r\nHost: t\r\n\r\n"), 400);
	assert_int_equal(status_of("GET ftp://t/ HTTP/1.1\r\nHost: t\r\n\r\n"), 400);
	assert_int_equal(status_of("GET http:/t/ HTTP/1.1\r\nHost: t\r\n\r\n"), 400);
	/* HTTP/1.1 still needs its one Host field. */
	assert_int_equal(status_of("GET http://t/ HTTP/1.1\r\n\r\n"), 400);
}

/* Past max_clients: 503 and close, logged once per episode; a place frees
 * when a client leaves. */
static void max_clients(void **state)
{
	struct http_server *s = start(&(struct http_server_opts){.threads = 2, .max_clients = 2});
	int port = http_server_port(s);
	struct client a, b, c;
	struct resp r = {0};
	int64_t deadline;
	char *log;

	(void)state;
	t_capture_start();
	cl_open(&a, port);
	cl_open(&b, port);
	/* Both admitted: each has had an answer. */
	cl_sends(&a, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(cl_response(&a, &r, false), 0);
	assert_int_equal(r.status, 200);
	cl_sends(&b, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(cl_response(&b, &r, false), 0);
	assert_int_equal(r.status, 200);
	for (int i = 0; i < 3; i++) {
		cl_open(&c, port);
		cl_sends(&c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
		assert_int_equal(cl_response(&c, &r, false), 0);
		assert_int_equal(r.status, 503);
		assert_true(has_field(&r, "connection", "close"));
		assert_true(cl_ended(&c));
		cl_close(&c);
	}
	/* One leaves: a new client is served (once its handler has seen the
	 * close: polled, bounded). */
	cl_close(&b);
	deadline = corio_now() + 20 * CORIO_SEC;
	do {
		assert_true(corio_now() < deadline);
		cl_open(&c, port);
		cl_sends(&c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
		assert_int_equal(cl_response(&c, &r, false), 0);
		cl_close(&c);
	} while (r.status == 503);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	cl_close(&a);
	http_server_stop(s);
	log = t_capture_end();
	assert_int_equal(t_count(log, "max_clients (2) reached"), 1);
	assert_int_equal(t_count(log, "admitting connections again"), 1);
	assert_int_equal(t_count(log, "connections refused, 0 accept back-offs"), 1);
	free(log);
}

static void limits(void **state)
{
	size_t n = 20000;
	char *req = malloc(n + 256);
	int k;

	(void)state;
	/* A head over 8 KiB: 431, whether it is one field or many. */
	k = snprintf(req, 256, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: ");
	memset(req + k, 'x', n);
	memcpy(req + k + n, "\r\n\r\n", 4);
	assert_fails(req, (size_t)k + n + 4, 431);
	k = snprintf(req, 256, "GET / HTTP/1.1\r\nHost: t\r\n");
	for (int i = 0; i < 100; i++)
		k += snprintf(req + k, n + 256 - (size_t)k, "F%d: v\r\n", i);
	k += snprintf(req + k, n + 256 - (size_t)k, "\r\n");
	assert_fails(req, (size_t)k, 431);
	/* A body over 1 MiB: 413 before any of it is read (and it is never
	 * sent: the client waits for the answer). */
	FAILS("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1048577\r\n\r\n", 413);
	/* ... even with some of it already sent. */
	k = snprintf(req, 256, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000000\r\n\r\n");
	memset(req + k, 'y', n);
	assert_fails(req, (size_t)k + n, 413);
	/* At the limit, fine. */
	{
		struct resp r = {0};
		size_t len = 1u << 20;
		char *post = malloc(len + 256);

		k = snprintf(post, 256, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n",
			     len);
		memcpy(post + k, big, len);
		exchange(http_server_port(srv), post, (size_t)k + len, &r);
		assert_int_equal(r.status, 200);
		assert_int_equal(r.body_len, len);
		assert_memory_equal(r.body, big, len);
		resp_free(&r);
		free(post);
	}
	free(req);
}

static void connection_close(void **state)
{
	struct client c;
	struct resp r = {0};

	(void)state;
	cl_open(&c, http_server_port(srv));
	cl_sends(&c, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
		     "GET /never-answered HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(cl_response(&c, &r, false), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, HELLO);
	assert_true(has_field(&r, "connection", "close"));
	resp_free(&r);
	assert_true(cl_ended(&c));
	cl_close(&c);
}

static void http_1_0(void **state)
{
	struct client c;
	struct resp r = {0};

	(void)state;
	/* No keep-alive by default; no Host needed. */
	cl_open(&c, http_server_port(srv));
	cl_sends(&c, "GET / HTTP/1.0\r\n\r\n");
	assert_int_equal(cl_response(&c, &r, false), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, HELLO);
	assert_true(has_field(&r, "connection", "close"));
	resp_free(&r);
	assert_true(cl_ended(&c));
	cl_close(&c);
	/* Keep-alive when asked for. */
	cl_open(&c, http_server_port(srv));
	for (int i = 0; i < 3; i++) {
		cl_sends(&c, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
		assert_int_equal(cl_response(&c, &r, false), 0);
		assert_int_equal(r.status, 200);
		assert_true(has_field(&r, "connection", "keep-alive"));
		resp_free(&r);
	}
	cl_sends(&c, "GET / HTTP/1.0\r\n\r\n");
	assert_int_equal(cl_response(&c, &r, false), 0);
	assert_true(has_field(&r, "connection", "close"));
	resp_free(&r);
	assert_true(cl_ended(&c));
	cl_close(&c);
}

/* ------------------------------------------------------------ deadlines */

static struct http_server *start_short(void)
{
	/* Short on purpose: these timeouts are what the tests check. */
	return start(&(struct http_server_opts){.threads = 1,
						.header_timeout = 200 * CORIO_MSEC,
						.idle_timeout = 200 * CORIO_MSEC,
						.body_timeout = 200 * CORIO_MSEC});
}

/* Half a request, then silence: 408, then the end. */
static void slowloris(void **state)
{
	struct http_server *s = start_short();
	struct client c;
	struct resp r = {0};

	(void)state;
	cl_open(&c, http_server_port(s));
	cl_sends(&c, "GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ");
	assert_int_equal(cl_response(&c, &r, false), 0);
	assert_int_equal(r.status, 408);
	assert_true(has_field(&r, "connection", "close"));
	assert_true(cl_ended(&c));
	resp_free(&r);
	cl_close(&c);

	/* The same after an answered request on a kept-alive connection. */
	cl_open(&c, http_server_port(s));
	cl_sends(&c, "GET / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\n");
	assert_int_equal(cl_response(&c, &r, false), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	assert_int_equal(cl_response(&c, &r, false), 0);
	assert_int_equal(r.status, 408);
	assert_true(cl_ended(&c));
	resp_free(&r);
	cl_close(&c);

	/* A body that never comes. */
	cl_open(&c, http_server_port(s));
	cl_sends(&c, "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc");
	assert_int_equal(cl_response(&c, &r, false), 0);
	assert_int_equal(r.status, 408);
	assert_true(cl_ended(&c));
	resp_free(&r);
	cl_close(&c);
	http_server_stop(s);
}

/* A kept-alive connection with nothing to say is closed, quietly. */
static void idle_timeout(void **state)
{
	struct http_server *s = start_short();
	struct client c;
	struct resp r = {0};

	(void)state;
	cl_open(&c, http_server_port(s));
	cl_sends(&c, "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(cl_response(&c, &r, false), 0);
	assert_int_equal(r.status, 200);
	resp_free(&r);
	assert_true(cl_ended(&c));
	cl_close(&c);
	/* And one that never sent anything. */
	cl_open(&c, http_server_port(s));
	assert_true(cl_ended(&c));
	cl_close(&c);
	http_server_stop(s);
}

/* ------------------------------------------------------------- stopping */

/* Open sockets of the process (what a connection left open would leak;
 * other descriptors a backend may keep for the process are not counted). */
static int count_sockets(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char path[300], target[64];
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		ssize_t k;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		k = readlink(path, target, sizeof(target) - 1);
		if (k > 0) {
			target[k] = '\0';
			n += !strncmp(target, "socket:", 7);
		}
	}
	closedir(d);
	return n;
}

/* Stopping with connections in every state closes them all: the clients
 * see the end, and no socket is left behind. */
static void stop_with_connections(void **state)
{
	struct client c[4];
	struct resp r = {0};
	int before = count_sockets();
	struct http_server *s = start(&(struct http_server_opts){.threads = 2, .dir = www});

	(void)state;
	for (int i = 0; i < 4; i++)
		cl_open(&c[i], http_server_port(s));
	/* Answered and kept alive; then idle, mid-head and mid-body ones. */
	cl_sends(&c[0], "GET / HTTP/1.1\r\nHost: t\r\n\r\n");
	assert_int_equal(cl_response(&c[0], &r, false), 0);
	resp_free(&r);
	cl_sends(&c[2], "GET / HTTP/1.1\r\nHo");
	cl_sends(&c[3], "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc");
	/* The echo's head is out before its body has arrived: the server is
	 * then surely waiting for the rest. */
	assert_int_equal(cl_response(&c[3], &r, true), 0);
	assert_int_equal(r.status, 200);
	http_server_stop(s);
	for (int i = 0; i < 4; i++) {
		char b[256];

		while (recv(c[i].fd, b, sizeof(b), 0) > 0)
			;
		cl_close(&c[i]);
	}
	assert_int_equal(count_sockets(), before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(get_hello),
		cmocka_unit_test(keep_alive),
		cmocka_unit_test(pipeline_100),
		cmocka_unit_test(pipeline_tiny_buffers),
		cmocka_unit_test(post_bodies),
		cmocka_unit_test(expect_continue),
		cmocka_unit_test(files),
		cmocka_unit_test(path_traversal),
		cmocka_unit_test(malformed),
		cmocka_unit_test(absolute_form),
		cmocka_unit_test(limits),
		cmocka_unit_test(max_clients),
		cmocka_unit_test(connection_close),
		cmocka_unit_test(http_1_0),
		cmocka_unit_test(slowloris),
		cmocka_unit_test(idle_timeout),
		cmocka_unit_test(stop_with_connections),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
