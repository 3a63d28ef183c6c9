/*
 * echo_libuv: single-loop TCP echo server on libuv, the callback-library
 * peer for corio's echo server.
 *
 * Reads land in one loop-wide buffer (libuv calls alloc_cb right before each
 * read and the data is consumed inside read_cb). uv_try_write() sends it
 * straight back; only the part the socket does not take is copied into a
 * uv_write() request. uv_try_write() refuses while earlier writes are queued,
 * which keeps the byte order. A connection with more than OUT_HIGH bytes
 * queued stops reading until its queue is empty again.
 *
 * Usage: echo_libuv PORT   (listens on 127.0.0.1)
 * Test with: nc 127.0.0.1 PORT
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define RBUF 65536
#define OUT_HIGH (256 * 1024)

struct wreq {
	uv_write_t req;
	uv_buf_t buf;
	char data[];
};

static uv_loop_t *loop;
static char rbuf[RBUF];

static void on_close(uv_handle_t *h)
{
	free(h);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	*buf = uv_buf_init(rbuf, sizeof(rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_write(uv_write_t *req, int status)
{
	uv_stream_t *s = req->handle;

	free(req);
	if (status < 0) {
		if (!uv_is_closing((uv_handle_t *)s))
			uv_close((uv_handle_t *)s, on_close);
		return;
	}
	/* resume a connection paused for backpressure once its queue is empty */
	if (s->data && s->write_queue_size == 0 && !uv_is_closing((uv_handle_t *)s)) {
		s->data = NULL;
		uv_read_start(s, on_alloc, on_read);
	}
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	uv_buf_t data;
	ssize_t w;
	struct wreq *wr;

	if (nread <= 0) {
		if (nread < 0) /* UV_EOF or an error */
			uv_close((uv_handle_t *)s, on_close);
		return;
	}
	data = uv_buf_init(buf->base, (unsigned)nread);
	w = uv_try_write(s, &data, 1);
	if (w == nread)
		return;
	if (w < 0) {
		if (w != UV_EAGAIN) {
			uv_close((uv_handle_t *)s, on_close);
			return;
		}
		w = 0;
	}
	wr = malloc(sizeof(*wr) + (size_t)(nread - w));
	if (!wr) {
		uv_close((uv_handle_t *)s, on_close);
		return;
	}
	memcpy(wr->data, buf->base + w, (size_t)(nread - w));
	wr->buf = uv_buf_init(wr->data, (unsigned)(nread - w));
	if (uv_write(&wr->req, s, &wr->buf, 1, on_write) < 0) {
		free(wr);
		uv_close((uv_handle_t *)s, on_close);
		return;
	}
	if (s->write_queue_size > OUT_HIGH) {
		s->data = s; /* marks "paused" */
		uv_read_stop(s);
	}
}

static void on_connection(uv_stream_t *server, int status)
{
	uv_tcp_t *c;

	if (status < 0)
		return;
	c = malloc(sizeof(*c));
	if (!c || uv_tcp_init(loop, c) < 0) {
		free(c);
		return;
	}
	c->data = NULL;
	if (uv_accept(server, (uv_stream_t *)c) < 0) {
		uv_close((uv_handle_t *)c, on_close);
		return;
	}
	uv_tcp_nodelay(c, 1);
	uv_read_start((uv_stream_t *)c, on_alloc, on_read);
}

int main(int argc, char **argv)
{
	static uv_tcp_t server;
	struct sockaddr_in addr;
	int ret;

	if (argc < 2) {
		fprintf(stderr, "usage: %s PORT\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	loop = uv_default_loop();
	uv_ip4_addr("127.0.0.1", atoi(argv[1]), &addr);
	uv_tcp_init(loop, &server);
	ret = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
	if (!ret)
		ret = uv_listen((uv_stream_t *)&server, 4096, on_connection);
	if (ret) {
		fprintf(stderr, "echo_libuv: listen: %s\n", uv_strerror(ret));
		return 1;
	}
	return uv_run(loop, UV_RUN_DEFAULT);
}
