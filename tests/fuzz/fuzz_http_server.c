/*
 * Fuzz target: the HTTP server's connection state machine (examples/http
 * server.c: heads across buffers, bodies, pipelines, errors, lingering
 * close) over corio_conn, on both backends.
 *
 * Input: a config byte (backend and receive buffer size: deliver.h; bit 2:
 * small limits, 256-byte heads, 8 fields, 600-byte bodies), then the bytes
 * a client sends, in pieces (deliver.h). The server serves one connection
 * of a socketpair (http_server_serve); the client fiber sends the pieces
 * and shuts its side down; a reader fiber takes every byte of the answer
 * until the server closes.
 *
 * Checked, besides crashes, leaks, bad accesses and hangs (a run waits on
 * no timer: every wait ends with the client's bytes or their end):
 *   - the answer does not depend on how the request bytes arrived: the same
 *     bytes sent all at once give the same answer, byte for byte, once the
 *     Date fields are set aside and the interim "100 Continue" (sent only
 *     when the body is not there yet) is removed;
 *   - the answer is a sequence of HTTP/1.1 responses, each head complete,
 *     with a status the server uses.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/stat.h>

#include "deliver.h"
#include "server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ANSWER ((size_t)8 << 20)

struct answer {
	int fd;
	char *p;
	size_t len;
};

static void *read_main(void *arg)
{
	struct answer *a = arg;
	size_t cap = 0;

	for (;;) {
		ssize_t n;

		if (cap - a->len < 65536) {
			cap = cap ? cap * 2 : 131072;
			FUZZ_CHECK(cap <= 2 * MAX_ANSWER);
			a->p = realloc(a->p, cap);
			FUZZ_CHECK(a->p);
		}
		n = corio_recv(a->fd, a->p + a->len, cap - a->len, 0);
		if (n <= 0)
			break;
		a->len += (size_t)n;
	}
	return NULL;
}

struct serve {
	struct http_server *s;
	int fd;
};

static void *serve_main(void *arg)
{
	struct serve *v = arg;

	http_server_serve(v->s, v->fd);
	return NULL;
}

static struct http_server *servers[2];
static char dir[64];

static void rm_dir(void)
{
	char path[128];

	for (int i = 0; i < 2; i++)
		if (servers[i])
			http_server_stop(servers[i]);
	snprintf(path, sizeof(path), "%s/hello.txt", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/big.bin", dir);
	unlink(path);
	rmdir(dir);
}

static void write_file(const char *name, size_t len)
{
	char path[128], *buf = malloc(len + 1);
	int fd;

	FUZZ_CHECK(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)('a' + i % 26);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	FUZZ_CHECK(fd >= 0 && write(fd, buf, len) == (ssize_t)len);
	close(fd);
	free(buf);
}

/* Two servers without listeners: default limits, and small ones. Long
 * timeouts: nothing here may wait for one. */
static struct http_server *server(bool small)
{
	struct http_server_opts o = {.dir = dir, .header_timeout = 60 * CORIO_SEC};

	if (!dir[0]) {
		snprintf(dir, sizeof(dir), "/tmp/corio-fuzz-http-XXXXXX");
		FUZZ_CHECK(mkdtemp(dir));
		write_file("hello.txt", 12);
		write_file("big.bin", 300000);
		atexit(rm_dir);
	}
	if (!servers[small]) {
		if (small) {
			o.max_head = 256;
			o.max_headers = 8;
			o.max_body = 600;
		}
		FUZZ_CHECK(http_server_open(&servers[small], &o) == 0);
	}
	return servers[small];
}

/* One exchange: the server's whole answer to the stream. */
static void exchange(unsigned config, const struct stream *st, bool whole, struct answer *a)
{
	struct corio_fiber_opts fo = {.detached = true};
	struct serve v;
	struct deliver d;
	corio_loop *loop = config_loop(config);
	int sv[2];

	FUZZ_CHECK(loop);
	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	v = (struct serve){.s = server(config & 4), .fd = sv[0]};
	d = (struct deliver){.fd = sv[1], .s = st, .whole = whole};
	*a = (struct answer){.fd = sv[1]};
	FUZZ_CHECK(corio_spawn(NULL, loop, serve_main, &v, &fo) == 0);
	FUZZ_CHECK(corio_spawn(NULL, loop, deliver_main, &d, &fo) == 0);
	FUZZ_CHECK(corio_spawn(NULL, loop, read_main, a, &fo) == 0);
	FUZZ_CHECK(corio_loop_run(loop) == 0);
	corio_loop_destroy(loop);
	close(sv[1]);
}

/* Drop the interim 100 Continue responses, and blank the Date values. */
static void normalize(struct answer *a)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
	size_t o = 0;

	for (size_t i = 0; i < a->len;) {
		if (a->len - i >= sizeof(cont) - 1 && !memcmp(a->p + i, cont, sizeof(cont) - 1)) {
			i += sizeof(cont) - 1;
			continue;
		}
		if (a->len - i >= 8 && !memcmp(a->p + i, "\r\nDate: ", 8)) {
			memcpy(a->p + o, "\r\nDate: ", 8);
			o += 8;
			i += 8;
			while (i < a->len && a->p[i] != '\r')
				i++;
			continue;
		}
		a->p[o++] = a->p[i++];
	}
	a->len = o;
}

/* Each response: a status line the server writes, a complete head. (The
 * bodies are not walked: a HEAD's answer has none, and the request methods
 * are not known here.) */
static void check_first(const struct answer *a)
{
	static const int statuses[] = {200, 400, 403, 404, 405, 408, 413, 417, 431, 500,
				       501, 503, 505};
	int status, ok = 0;

	if (!a->len)
		return;
	FUZZ_CHECK(a->len >= 12 && !memcmp(a->p, "HTTP/1.1 ", 9));
	status = (a->p[9] - '0') * 100 + (a->p[10] - '0') * 10 + (a->p[11] - '0');
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		ok |= status == statuses[i];
	FUZZ_CHECK(ok);
	FUZZ_CHECK(memmem(a->p, a->len, "\r\n\r\n", 4));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct answer cut = {0}, whole = {0};
	struct stream st;

	if (size < 1)
		return 0;
	stream_parse(&st, data + 1, size - 1);
	exchange(data[0], &st, false, &cut);
	exchange(data[0], &st, true, &whole);
	normalize(&cut);
	normalize(&whole);
	check_first(&whole);
	if (cut.len != whole.len || (cut.len && memcmp(cut.p, whole.p, cut.len))) {
		fprintf(stderr, "answers differ: %zu bytes in pieces, %zu at once\n", cut.len,
			whole.len);
		fprintf(stderr, "in pieces:\n%.*s\nat once:\n%.*s\n", (int)(cut.len > 2000 ? 2000 : cut.len),
			cut.p, (int)(whole.len > 2000 ? 2000 : whole.len), whole.p);
		abort();
	}
	free(cut.p);
	free(whole.p);
	stream_free(&st);
	return 0;
}
