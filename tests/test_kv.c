/*
 * The KV server (examples/kv), end to end: a server started in-process on
 * an ephemeral port with three shards, and a small RESP client over plain
 * blocking sockets. Command semantics, Redis's exact error replies,
 * expiry (lazy and active), cross-shard commands, pipelining, protocol
 * errors, inline commands, QUIT, INFO/COMMAND, concurrent clients, and
 * redis-cli against the running server.
 *
 * Nothing waits on time: expiry is observed by polling a condition (with
 * a generous deadline so a broken server fails instead of hanging).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server.h"
#include "util.h"

#define SHARDS 3

static struct kv_server *srv;
static int port;
static bool direct_group; /* the group's connections are direct descriptors */

/* ------------------------------------------------------------ client */

struct cli {
	int fd;
	char *buf;
	size_t len, off, cap;
};

static struct cli *cli_open_port(int p)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct timeval tv = {.tv_sec = 20};
	struct cli *c = calloc(1, sizeof(*c));
	int one = 1;

	assert_non_null(c);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c->fd >= 0);
	assert_int_equal(connect(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* A server that does not answer fails the test, not hangs it. */
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	c->cap = 1 << 16;
	c->buf = malloc(c->cap);
	assert_non_null(c->buf);
	return c;
}

static struct cli *cli_open(void)
{
	return cli_open_port(port);
}

static void cli_close(struct cli *c)
{
	close(c->fd);
	free(c->buf);
	free(c);
}

static void cli_send(struct cli *c, const void *p, size_t n)
{
	const char *s = p;

	while (n) {
		ssize_t k = send(c->fd, s, n, MSG_NOSIGNAL);

		assert_true(k > 0);
		s += k;
		n -= (size_t)k;
	}
}

/* Read more into the buffer; false at end of stream. */
static bool cli_fill(struct cli *c)
{
	ssize_t k;

	if (c->off == c->len)
		c->off = c->len = 0;
	if (c->cap - c->len < 4096) {
		c->cap *= 2;
		c->buf = realloc(c->buf, c->cap);
		assert_non_null(c->buf);
	}
	k = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
	if (k < 0)
		fail_msg("recv: %s", strerror(errno));
	c->len += (size_t)k;
	return k > 0;
}

/* A line without its CRLF (malloc'ed), or NULL at end of stream. */
static char *cli_line(struct cli *c)
{
	for (;;) {
		char *nl = memmem(c->buf + c->off, c->len - c->off, "\r\n", 2);

		if (nl) {
			char *s = strndup(c->buf + c->off, (size_t)(nl - c->buf - c->off));

			c->off = (size_t)(nl - c->buf) + 2;
			return s;
		}
		if (!cli_fill(c))
			return NULL;
	}
}

struct text {
	char *p;
	size_t len;
};

static void text_put(struct text *t, const char *p, size_t n)
{
	t->p = realloc(t->p, t->len + n + 1);
	memcpy(t->p + t->len, p, n);
	t->len += n;
	t->p[t->len] = '\0';
}

static void text_str(struct text *t, const char *s)
{
	text_put(t, s, strlen(s));
}

/*
 * One reply as text: "+OK", "-ERR ...", ":5", "$value", "(nil)", arrays
 * as "[a,b]" of their elements. false at end of stream.
 */
static bool cli_reply_into(struct cli *c, struct text *t)
{
	char *l = cli_line(c);
	long long n;

	if (!l)
		return false;
	switch (l[0]) {
	case '+':
	case '-':
	case ':':
		text_str(t, l);
		break;
	case '$':
		n = atoll(l + 1);
		if (n < 0) {
			text_str(t, "(nil)");
			break;
		}
		while (c->len - c->off < (size_t)n + 2)
			assert_true(cli_fill(c));
		text_str(t, "$");
		text_put(t, c->buf + c->off, (size_t)n);
		c->off += (size_t)n + 2;
		break;
	case '*':
		n = atoll(l + 1);
		if (n < 0) {
			text_str(t, "(nil)");
			break;
		}
		text_str(t, "[");
		for (long long i = 0; i < n; i++) {
			if (i)
				text_str(t, ",");
			assert_true(cli_reply_into(c, t));
		}
		text_str(t, "]");
		break;
	default:
		fail_msg("bad reply line \"%s\"", l);
	}
	free(l);
	return true;
}

static char *cli_reply(struct cli *c)
{
	struct text t = {0};

	if (!cli_reply_into(c, &t))
		return NULL;
	return t.p ? t.p : strdup("");
}

/* The server closed the connection (after everything read so far). */
static void expect_closed(struct cli *c)
{
	if (c->off < c->len)
		fail_msg("unexpected bytes: %.*s", (int)(c->len - c->off), c->buf + c->off);
	assert_false(cli_fill(c));
}

static void encode_cmd(struct text *t, const char *const *argv, size_t argc, const size_t *lens)
{
	char hdr[32];

	snprintf(hdr, sizeof(hdr), "*%zu\r\n", argc);
	text_str(t, hdr);
	for (size_t i = 0; i < argc; i++) {
		size_t n = lens ? lens[i] : strlen(argv[i]);

		snprintf(hdr, sizeof(hdr), "$%zu\r\n", n);
		text_str(t, hdr);
		text_put(t, argv[i], n);
		text_str(t, "\r\n");
	}
}

/* Send a command (NULL-terminated arguments), return its reply. */
static char *cmdv(struct cli *c, va_list ap)
{
	const char *argv[64];
	size_t argc = 0;
	struct text t = {0};
	const char *a;

	while ((a = va_arg(ap, const char *)))
		argv[argc++] = a;
	encode_cmd(&t, argv, argc, NULL);
	cli_send(c, t.p, t.len);
	free(t.p);
	return cli_reply(c);
}

static void expect_(const char *file, int line, struct cli *c, const char *want, ...)
{
	va_list ap;
	char *got;

	va_start(ap, want);
	got = cmdv(c, ap);
	va_end(ap);
	if (!got)
		fail_msg("%s:%d: connection closed, want \"%s\"", file, line, want);
	if (strcmp(got, want))
		fail_msg("%s:%d: got \"%s\", want \"%s\"", file, line, got, want);
	free(got);
}

#define X(c, want, ...) expect_(__FILE__, __LINE__, c, want, __VA_ARGS__, (const char *)NULL)

static char *cmd(struct cli *c, ...)
{
	va_list ap;
	char *r;

	va_start(ap, c);
	r = cmdv(c, ap);
	va_end(ap);
	assert_non_null(r);
	return r;
}

static long long cmd_int(struct cli *c, ...)
{
	va_list ap;
	char *r;
	long long v;

	va_start(ap, c);
	r = cmdv(c, ap);
	va_end(ap);
	assert_non_null(r);
	if (r[0] != ':')
		fail_msg("not an integer reply: %s", r);
	v = atoll(r + 1);
	free(r);
	return v;
}

/* Raw bytes in, exact bytes out, then the server closes. */
static void expect_raw_close(const char *in, size_t len, const char *want)
{
	struct cli *c = cli_open();
	size_t n = strlen(want);

	cli_send(c, in, len);
	while (c->len < n && cli_fill(c))
		;
	if (c->len < n || memcmp(c->buf, want, n))
		fail_msg("sent %.*s: got \"%.*s\", want \"%s\"", (int)len, in, (int)c->len, c->buf,
			 want);
	c->off = n;
	expect_closed(c);
	cli_close(c);
}

#define RAW_CLOSE(lit, want) expect_raw_close(lit, sizeof(lit) - 1, want)

/* Poll @c's integer command until it returns @want (bounded). */
static void poll_until(struct cli *c, long long want, const char *a0, const char *a1)
{
	int64_t deadline = corio_now() + 20 * CORIO_SEC;
	long long v;

	while ((v = a1 ? cmd_int(c, a0, a1, NULL) : cmd_int(c, a0, NULL)) != want) {
		if (corio_now() > deadline)
			fail_msg("%s %s: still %lld, want %lld", a0, a1 ? a1 : "", v, want);
		sched_yield();
	}
}

/* ------------------------------------------------------------- setup */

static int start(bool direct)
{
	struct kv_server_opts o = {
		.addr = "127.0.0.1", .port = 0, .threads = SHARDS, .direct = direct};
	int err;

	err = kv_server_start(&srv, &o);
	t_skip_unavailable(err);
	assert_int_equal(err, 0);
	port = kv_server_port(srv);
	assert_true(port > 0);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	direct_group = false;
	return start(false);
}

/* The same server with its connections in direct descriptors. */
static int setup_direct(void **state)
{
	(void)state;
	direct_group = true;
	return start(true);
}

/* Another server, with settings as CONFIG SET takes them. */
static struct kv_server *start_with(unsigned threads, const char *const *config)
{
	struct kv_server_opts o = {.port = 0, .threads = threads, .direct = direct_group,
				   .config = config};
	struct kv_server *s;

	assert_int_equal(kv_server_start(&s, &o), 0);
	return s;
}

static int teardown(void **state)
{
	(void)state;
	kv_server_stop(srv);
	return 0;
}

static struct cli *fresh(void)
{
	struct cli *c = cli_open();

	X(c, "+OK", "FLUSHALL");
	return c;
}

/* ------------------------------------------------------------- tests */

static void ping_echo_select(void **state)
{
	struct cli *c = fresh();

	(void)state;
	X(c, "+PONG", "PING");
	X(c, "+PONG", "ping");
	X(c, "$hello", "PING", "hello");
	X(c, "$a b\r\nc", "ECHO", "a b\r\nc");
	X(c, "$", "ECHO", "");
	X(c, "+OK", "SELECT", "0");
	X(c, "-ERR DB index is out of range", "SELECT", "1");
	X(c, "-ERR value is not an integer or out of range", "SELECT", "x");
	cli_close(c);
}

static void set_get(void **state)
{
	struct cli *c = fresh();

	(void)state;
	X(c, "(nil)", "GET", "k");
	X(c, "+OK", "SET", "k", "v1");
	X(c, "$v1", "GET", "k");
	X(c, "(nil)", "SET", "k", "v2", "NX");
	X(c, "$v1", "GET", "k");
	X(c, "+OK", "SET", "k", "v2", "XX");
	X(c, "$v2", "GET", "k");
	X(c, "(nil)", "SET", "other", "v", "XX");
	X(c, "(nil)", "GET", "other");
	X(c, "+OK", "SET", "other", "v", "nx");
	/* GET: the old value (or nil), also when NX/XX refuses. */
	X(c, "$v2", "SET", "k", "v3", "GET");
	X(c, "$v3", "SET", "k", "v4", "NX", "GET");
	X(c, "$v3", "GET", "k");
	X(c, "(nil)", "SET", "new", "x", "GET");
	/* Values of every size, binary-safe; overwrite grows and shrinks. */
	X(c, "+OK", "SET", "k", "");
	X(c, "$", "GET", "k");
	X(c, "+OK", "SET", "k", "a much longer value than before, to make it grow");
	X(c, "$a much longer value than before, to make it grow", "GET", "k");
	X(c, "+OK", "SET", "k", "s");
	X(c, "$s", "GET", "k");
	/* EX/PX set a TTL; a plain SET drops it; KEEPTTL keeps it. */
	X(c, "+OK", "SET", "t", "v", "EX", "100");
	X(c, ":100", "TTL", "t");
	X(c, "+OK", "SET", "t", "v", "KEEPTTL");
	X(c, ":100", "TTL", "t");
	X(c, "+OK", "SET", "t", "v");
	X(c, ":-1", "TTL", "t");
	X(c, "+OK", "SET", "t", "v", "PX", "100000");
	X(c, ":100", "TTL", "t");
	X(c, "+OK", "SET", "t", "v", "ex", "10", "ex", "20"); /* the last one counts */
	X(c, ":20", "TTL", "t");
	cli_close(c);
}

static void set_errors(void **state)
{
	struct cli *c = fresh();

	(void)state;
	X(c, "-ERR wrong number of arguments for 'set' command", "SET", "k");
	X(c, "-ERR syntax error", "SET", "k", "v", "NX", "XX");
	X(c, "-ERR syntax error", "SET", "k", "v", "XX", "NX");
	X(c, "-ERR syntax error", "SET", "k", "v", "EX", "10", "PX", "100");
	X(c, "-ERR syntax error", "SET", "k", "v", "EX", "10", "KEEPTTL");
	X(c, "-ERR syntax error", "SET", "k", "v", "KEEPTTL", "EX", "10");
	X(c, "-ERR syntax error", "SET", "k", "v", "EX");
	X(c, "-ERR syntax error", "SET", "k", "v", "FOO");
	/* Syntax is checked before the number. */
	X(c, "-ERR syntax error", "SET", "k", "v", "EX", "abc", "NX", "XX");
	X(c, "-ERR value is not an integer or out of range", "SET", "k", "v", "EX", "abc");
	X(c, "-ERR value is not an integer or out of range", "SET", "k", "v", "PX", "1.5");
	X(c, "-ERR invalid expire time in 'set' command", "SET", "k", "v", "EX", "0");
	X(c, "-ERR invalid expire time in 'set' command", "SET", "k", "v", "PX", "-5");
	X(c, "-ERR invalid expire time in 'set' command", "SET", "k", "v", "EX",
	  "9223372036854775807");
	X(c, "-ERR invalid expire time in 'set' command", "SET", "k", "v", "PX",
	  "9223372036854775807");
	/* Nothing was set by any of them. */
	X(c, ":0", "EXISTS", "k");
	cli_close(c);
}

static void incr_family(void **state)
{
	struct cli *c = fresh();

	(void)state;
	X(c, ":1", "INCR", "n");
	X(c, ":2", "INCR", "n");
	X(c, ":1", "DECR", "n");
	X(c, ":11", "INCRBY", "n", "10");
	X(c, ":-9", "INCRBY", "n", "-20");
	X(c, ":-14", "DECRBY", "n", "5");
	X(c, "$-14", "GET", "n");
	X(c, ":-1", "DECR", "fresh");
	X(c, "-ERR value is not an integer or out of range", "INCRBY", "n", "abc");
	X(c, "-ERR value is not an integer or out of range", "INCRBY", "n", "1.5");
	X(c, "-ERR value is not an integer or out of range", "INCRBY", "n", "+5");
	X(c, "-ERR value is not an integer or out of range", "INCRBY", "n", "05");
	X(c, "-ERR value is not an integer or out of range", "INCRBY", "n",
	  "9223372036854775808");
	X(c, "-ERR decrement would overflow", "DECRBY", "n", "-9223372036854775808");
	X(c, "-ERR wrong number of arguments for 'incr' command", "INCR", "n", "x");
	X(c, "-ERR wrong number of arguments for 'incrby' command", "INCRBY", "n");
	/* Overflow, both ways; the value stays. */
	X(c, "+OK", "SET", "n", "9223372036854775807");
	X(c, "-ERR increment or decrement would overflow", "INCR", "n");
	X(c, "$9223372036854775807", "GET", "n");
	X(c, "+OK", "SET", "n", "-9223372036854775808");
	X(c, "-ERR increment or decrement would overflow", "DECR", "n");
	X(c, "-ERR increment or decrement would overflow", "INCRBY", "n", "-1");
	X(c, ":-9223372036854775807", "INCR", "n");
	/* Values that are not integers (Redis's string2ll). */
	const char *bad[] = {"abc", " 1", "1 ", "-0", "00", "", "-", "9223372036854775808",
			     "12345678901234567890", "1.0"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		X(c, "+OK", "SET", "s", bad[i]);
		X(c, "-ERR value is not an integer or out of range", "INCR", "s");
	}
	/* INCR keeps the TTL. */
	X(c, "+OK", "SET", "t", "5", "EX", "100");
	X(c, ":6", "INCR", "t");
	X(c, ":100", "TTL", "t");
	cli_close(c);
}

/* Keys that land on every shard. */
static void shard_keys(char keys[][16], int n)
{
	bool seen[SHARDS] = {false};

	for (int i = 0; i < n; i++) {
		snprintf(keys[i], 16, "key:%d", i);
		seen[kv_server_shard_of(srv, keys[i], strlen(keys[i]))] = true;
	}
	for (int s = 0; s < SHARDS; s++)
		assert_true(seen[s]);
}

static void multi_key_across_shards(void **state)
{
	struct cli *c = fresh();
	char keys[24][16], want[1024];
	struct text t = {0};
	const char *argv[64];
	char *r;
	size_t n = 0, len;

	(void)state;
	assert_int_equal(kv_server_nshards(srv), SHARDS);
	shard_keys(keys, 24);
	/* MSET k0 v0 k1 v1 ... (one command, every shard). */
	argv[n++] = "MSET";
	for (int i = 0; i < 24; i++) {
		argv[n++] = keys[i];
		argv[n++] = keys[i] + 4; /* the value: the key's number */
	}
	encode_cmd(&t, argv, n, NULL);
	cli_send(c, t.p, t.len);
	free(t.p);
	r = cli_reply(c);
	assert_string_equal(r, "+OK");
	free(r);
	X(c, ":24", "DBSIZE");
	/* MGET in the order asked, missing keys nil, repeats repeated. */
	n = 0;
	argv[n++] = "MGET";
	for (int i = 23; i >= 0; i--)
		argv[n++] = keys[i];
	argv[n++] = "missing";
	argv[n++] = keys[5];
	memset(&t, 0, sizeof(t));
	encode_cmd(&t, argv, n, NULL);
	cli_send(c, t.p, t.len);
	free(t.p);
	len = (size_t)sprintf(want, "[");
	for (int i = 23; i >= 0; i--)
		len += (size_t)sprintf(want + len, "$%d,", i);
	sprintf(want + len, "(nil),$5]");
	r = cli_reply(c);
	assert_string_equal(r, want);
	free(r);
	/* Counts sum across shards; a repeated key counts twice in EXISTS,
	 * once in DEL. */
	X(c, ":5", "EXISTS", keys[0], keys[1], keys[2], keys[2], "nope", keys[3]);
	X(c, ":3", "DEL", keys[0], keys[1], keys[1], "nope", keys[2]);
	X(c, ":0", "EXISTS", keys[0], keys[1], keys[2]);
	X(c, ":21", "DBSIZE");
	X(c, "-ERR wrong number of arguments for 'mset' command", "MSET", "a");
	X(c, "-ERR wrong number of arguments for 'mset' command", "MSET", "a", "1", "b");
	X(c, "-ERR wrong number of arguments for 'mget' command", "MGET");
	X(c, "-ERR wrong number of arguments for 'del' command", "DEL");
	X(c, "-ERR wrong number of arguments for 'exists' command", "EXISTS");
	/* MSET drops TTLs, like SET. */
	X(c, ":1", "EXPIRE", keys[3], "100");
	X(c, "+OK", "MSET", keys[3], "x", keys[4], "y");
	X(c, ":-1", "TTL", keys[3]);
	cli_close(c);
}

static void expire_ttl(void **state)
{
	struct cli *c = fresh();
	long long pttl;

	(void)state;
	X(c, ":-2", "TTL", "k");
	X(c, ":-2", "PTTL", "k");
	X(c, ":0", "EXPIRE", "k", "100");
	X(c, "+OK", "SET", "k", "v");
	X(c, ":-1", "TTL", "k");
	X(c, ":-1", "PTTL", "k");
	X(c, ":1", "EXPIRE", "k", "100");
	X(c, ":100", "TTL", "k");
	pttl = cmd_int(c, "PTTL", "k", NULL);
	assert_true(pttl > 99000 && pttl <= 100000);
	X(c, ":1", "PEXPIRE", "k", "5800");
	X(c, ":6", "TTL", "k"); /* 5.8 s rounded, as Redis does */
	/* NX XX GT LT (a key without TTL counts as infinite). */
	X(c, ":0", "EXPIRE", "k", "200", "NX");
	X(c, ":1", "EXPIRE", "k", "200", "XX");
	X(c, ":0", "EXPIRE", "k", "100", "GT");
	X(c, ":1", "EXPIRE", "k", "300", "GT");
	X(c, ":0", "EXPIRE", "k", "400", "LT");
	X(c, ":1", "EXPIRE", "k", "50", "LT");
	X(c, ":50", "TTL", "k");
	X(c, "+OK", "SET", "p", "v");
	X(c, ":0", "EXPIRE", "p", "100", "XX");
	X(c, ":0", "EXPIRE", "p", "100", "GT");
	X(c, ":1", "EXPIRE", "p", "100", "LT");
	X(c, "+OK", "SET", "p", "v");
	X(c, ":1", "EXPIRE", "p", "100", "NX");
	/* Errors, in Redis's words and order. */
	X(c, "-ERR wrong number of arguments for 'expire' command", "EXPIRE", "k");
	X(c, "-ERR value is not an integer or out of range", "EXPIRE", "k", "abc");
	X(c, "-ERR Unsupported option foo", "EXPIRE", "k", "100", "foo");
	X(c, "-ERR NX and XX, GT or LT options at the same time are not compatible", "EXPIRE",
	  "k", "100", "NX", "XX");
	X(c, "-ERR GT and LT options at the same time are not compatible", "EXPIRE", "k", "100",
	  "GT", "LT");
	X(c, "-ERR invalid expire time in 'expire' command", "EXPIRE", "k",
	  "9223372036854775807");
	X(c, "-ERR invalid expire time in 'pexpire' command", "PEXPIRE", "k",
	  "9223372036854775807");
	X(c, "-ERR wrong number of arguments for 'ttl' command", "TTL");
	X(c, ":50", "TTL", "k");
	/* A time in the past deletes the key at once. */
	X(c, ":1", "EXPIRE", "k", "-1");
	X(c, ":-2", "TTL", "k");
	X(c, "+OK", "SET", "k", "v");
	X(c, ":1", "PEXPIRE", "k", "0");
	X(c, ":0", "EXISTS", "k");
	cli_close(c);
}

/* Send @n commands built by @fmt (with %d = index) in one write; check
 * every reply. */
static void pipeline_expect(struct cli *c, int n, const char *const *argv_fmt, size_t argc,
			    const char *want_fmt)
{
	struct text t = {0};
	char bufs[8][64], want[128];
	const char *argv[8];

	for (int i = 0; i < n; i++) {
		for (size_t k = 0; k < argc; k++) {
			snprintf(bufs[k], sizeof(bufs[k]), argv_fmt[k], i);
			argv[k] = bufs[k];
		}
		encode_cmd(&t, argv, argc, NULL);
	}
	cli_send(c, t.p, t.len);
	free(t.p);
	for (int i = 0; i < n; i++) {
		char *r = cli_reply(c);

		snprintf(want, sizeof(want), want_fmt, i);
		assert_non_null(r);
		if (strcmp(r, want))
			fail_msg("reply %d: got \"%s\", want \"%s\"", i, r, want);
		free(r);
	}
}

static long long info_field(struct cli *c, const char *field)
{
	char *r = cmd(c, "INFO", NULL), *p;
	long long v;

	p = strstr(r, field);
	if (!p)
		fail_msg("no %s in INFO", field);
	v = atoll(p + strlen(field) + 1);
	free(r);
	return v;
}

static void expiry_observed(void **state)
{
	struct cli *c = fresh();
	const char *set_px[] = {"SET", "vol:%d", "v", "PX", "1"};
	long long before;

	(void)state;
	/* Lazy: PX of a few ms, then PTTL until the key is gone. */
	X(c, "+OK", "SET", "k", "v", "PX", "5");
	poll_until(c, -2, "PTTL", "k");
	X(c, "(nil)", "GET", "k");
	X(c, "+OK", "SET", "k", "v");
	X(c, ":1", "PEXPIRE", "k", "5");
	poll_until(c, -2, "PTTL", "k");
	X(c, ":0", "EXISTS", "k");
	/* Active: keys nobody reads are swept by each shard's expiry fiber;
	 * DBSIZE does not touch keys, so it sees only the sweep. */
	before = info_field(c, "expired_keys");
	X(c, "+OK", "SET", "stays", "v");
	pipeline_expect(c, 300, set_px, 5, "+OK");
	poll_until(c, 1, "DBSIZE", NULL);
	assert_true(info_field(c, "expired_keys") >= before + 300);
	X(c, "$v", "GET", "stays");
	cli_close(c);
}

static void dbsize_flushall(void **state)
{
	struct cli *c = fresh();
	const char *set[] = {"SET", "k%d", "v"};
	char keys[24][16];

	(void)state;
	shard_keys(keys, 24);
	X(c, ":0", "DBSIZE");
	pipeline_expect(c, 500, set, 3, "+OK");
	X(c, ":500", "DBSIZE");
	X(c, "+OK", "FLUSHALL");
	X(c, ":0", "DBSIZE");
	X(c, "(nil)", "GET", "k1");
	pipeline_expect(c, 50, set, 3, "+OK");
	X(c, "+OK", "FLUSHALL", "ASYNC");
	X(c, ":0", "DBSIZE");
	X(c, "+OK", "FLUSHALL", "sync");
	X(c, "-ERR syntax error", "FLUSHALL", "x");
	X(c, "-ERR syntax error", "FLUSHALL", "async", "x");
	X(c, "-ERR wrong number of arguments for 'dbsize' command", "DBSIZE", "x");
	cli_close(c);
}

static void error_replies(void **state)
{
	struct cli *c = fresh();
	static const struct {
		const char *name;
		int argc; /* a wrong count */
	} arity[] = {
		{"get", 1},	{"get", 3},    {"set", 2},    {"del", 1},   {"exists", 1},
		{"incr", 1},	{"decr", 3},   {"incrby", 2}, {"decrby", 4}, {"mget", 1},
		{"mset", 2},	{"expire", 2}, {"pexpire", 2}, {"ttl", 1},   {"pttl", 3},
		{"dbsize", 2}, {"echo", 1},   {"echo", 3},   {"ping", 3},  {"select", 1},
		{"config", 1},
	};
	char want[256], *r;
	struct text t = {0};
	const char *argv[8] = {0};
	char longarg[300];

	(void)state;
	X(c, "-ERR unknown command 'foo', with args beginning with: ", "foo");
	X(c, "-ERR unknown command 'FoO', with args beginning with: 'a' 'b c' ", "FoO", "a", "b c");
	/* CR and LF become spaces; arguments stop at 128 bytes in all. */
	X(c, "-ERR unknown command 'x', with args beginning with: 'a  b' ", "x", "a\r\nb");
	memset(longarg, 'y', sizeof(longarg) - 1);
	longarg[sizeof(longarg) - 1] = '\0';
	snprintf(want, sizeof(want), "-ERR unknown command 'x', with args beginning with: '%.128s' ",
		 longarg);
	X(c, want, "x", longarg, "more");
	X(c, "-ERR unknown command '', with args beginning with: ", "");
	X(c, "-ERR unknown subcommand 'foo'. Try COMMAND HELP.", "COMMAND", "foo");
	X(c, "-ERR unknown subcommand 'foo'. Try CONFIG HELP.", "CONFIG", "foo");
	X(c, "-ERR wrong number of arguments for 'command|count' command", "COMMAND", "count",
	  "x");
	X(c, "-ERR wrong number of arguments for 'config|get' command", "CONFIG", "GET");
	for (size_t i = 0; i < sizeof(arity) / sizeof(arity[0]); i++) {
		argv[0] = arity[i].name;
		for (int k = 1; k < arity[i].argc; k++)
			argv[k] = "1";
		memset(&t, 0, sizeof(t));
		encode_cmd(&t, argv, (size_t)arity[i].argc, NULL);
		cli_send(c, t.p, t.len);
		free(t.p);
		snprintf(want, sizeof(want), "-ERR wrong number of arguments for '%s' command",
			 arity[i].name);
		r = cli_reply(c);
		assert_non_null(r);
		assert_string_equal(r, want);
		free(r);
	}
	/* The connection is still fine. */
	X(c, "+PONG", "PING");
	cli_close(c);
}

static void pipelining(void **state)
{
	struct cli *c = fresh();
	struct text t = {0};
	char a[32], b[32], want[64];
	const int n = 1000;

	(void)state;
	/* 1000 commands over every shard in one write; replies in order. */
	for (int i = 0; i < n; i++) {
		snprintf(a, sizeof(a), "key:%d", i);
		snprintf(b, sizeof(b), "val:%d", i);
		switch (i % 4) {
		case 0:
			encode_cmd(&t, (const char *[]){"SET", a, b}, 3, NULL);
			break;
		case 1:
			encode_cmd(&t, (const char *[]){"INCR", "counter"}, 2, NULL);
			break;
		case 2:
			snprintf(a, sizeof(a), "key:%d", i - 2);
			encode_cmd(&t, (const char *[]){"GET", a}, 2, NULL);
			break;
		case 3:
			encode_cmd(&t, (const char *[]){"ECHO", b}, 2, NULL);
			break;
		}
	}
	cli_send(c, t.p, t.len);
	free(t.p);
	for (int i = 0; i < n; i++) {
		char *r = cli_reply(c);

		switch (i % 4) {
		case 0:
			snprintf(want, sizeof(want), "+OK");
			break;
		case 1:
			snprintf(want, sizeof(want), ":%d", i / 4 + 1);
			break;
		case 2:
			snprintf(want, sizeof(want), "$val:%d", i - 2);
			break;
		case 3:
			snprintf(want, sizeof(want), "$val:%d", i);
			break;
		}
		assert_non_null(r);
		if (strcmp(r, want))
			fail_msg("reply %d: got \"%s\", want \"%s\"", i, r, want);
		free(r);
	}
	X(c, ":251", "DBSIZE"); /* 250 keys and the counter */
	cli_close(c);
}

static void protocol_errors(void **state)
{
	(void)state;
	/* Answered as Redis answers, then the connection is closed. */
	RAW_CLOSE("*x\r\n", "-ERR Protocol error: invalid multibulk length\r\n");
	RAW_CLOSE("*1\r\n$x\r\n", "-ERR Protocol error: invalid bulk length\r\n");
	RAW_CLOSE("*1\r\n$-1\r\n", "-ERR Protocol error: invalid bulk length\r\n");
	RAW_CLOSE("*1\r\n:4\r\n", "-ERR Protocol error: expected '$', got ':'\r\n");
	RAW_CLOSE("PING \"a\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n");
	/* Commands before the error are answered first. */
	RAW_CLOSE("*1\r\n$4\r\nPING\r\nECHO x\r\n*1\r\n:4\r\n",
		  "+PONG\r\n$1\r\nx\r\n-ERR Protocol error: expected '$', got ':'\r\n");
	/* Beyond the line limit (64 KiB without a newline). */
	{
		size_t n = 70000;
		char *big = malloc(n);

		memset(big, 'x', n);
		expect_raw_close(big, n, "-ERR Protocol error: too big inline request\r\n");
		big[0] = '*';
		expect_raw_close(big, n, "-ERR Protocol error: too big mbulk count string\r\n");
		memcpy(big, "*1\r\n$", 5);
		expect_raw_close(big, n, "-ERR Protocol error: too big bulk count string\r\n");
		free(big);
	}
}

static void inline_commands(void **state)
{
	struct cli *c = fresh();
	const char mixed[] = "INCR n\r\n*2\r\n$4\r\nINCR\r\n$1\r\nn\r\nINCR n\n";
	const char typed[] = "\r\n\n  \r\nSET k \"a b\\x41\\n\"\nGET k\r\n"
			     "set 'x y' 'it\\'s'\nget \"x y\"\n";
	const char *want[] = {"+OK", "$a bA\n", "+OK", "$it's"};
	char *r;

	(void)state;
	cli_send(c, "PING\r\n", 6);
	r = cli_reply(c);
	assert_string_equal(r, "+PONG");
	free(r);
	/* Blank lines are skipped; quotes and escapes as redis-cli types them. */
	cli_send(c, typed, sizeof(typed) - 1);
	for (size_t i = 0; i < 4; i++) {
		r = cli_reply(c);
		assert_string_equal(r, want[i]);
		free(r);
	}
	/* Inline and multibulk mixed in one write. */
	cli_send(c, mixed, sizeof(mixed) - 1);
	for (int i = 1; i <= 3; i++) {
		char w[8];

		snprintf(w, sizeof(w), ":%d", i);
		r = cli_reply(c);
		assert_string_equal(r, w);
		free(r);
	}
	cli_send(c, "FOO bar\r\n", 9);
	r = cli_reply(c);
	assert_string_equal(r, "-ERR unknown command 'FOO', with args beginning with: 'bar' ");
	free(r);
	cli_close(c);
}

static void quit(void **state)
{
	struct cli *c = cli_open();
	const char in[] = "PING\r\nQUIT\r\nSET after-quit 1\r\n";

	(void)state;
	/* Nothing after QUIT runs. */
	cli_send(c, in, sizeof(in) - 1);
	while (c->len < 12 && cli_fill(c))
		;
	assert_int_equal(c->len, 12);
	assert_memory_equal(c->buf, "+PONG\r\n+OK\r\n", 12);
	c->off = 12;
	expect_closed(c);
	cli_close(c);
	c = cli_open();
	X(c, ":0", "EXISTS", "after-quit");
	X(c, "+OK", "QUIT");
	expect_closed(c);
	cli_close(c);
}

static void info_command_config(void **state)
{
	struct cli *c = fresh();
	char *r, field[32];

	(void)state;
	X(c, "+OK", "SET", "a", "1");
	r = cmd(c, "INFO", NULL);
	assert_true(r[0] == '$');
	assert_non_null(strstr(r, "# Server\r\nredis_version:"));
	assert_non_null(strstr(r, "\r\n# Clients\r\nconnected_clients:"));
	assert_non_null(strstr(r, "\r\n# Memory\r\nused_memory:"));
	assert_non_null(strstr(r, "\r\n# Stats\r\ntotal_connections_received:"));
	assert_non_null(strstr(r, "\r\n# Keyspace\r\ndb0:keys=1,expires=0"));
	assert_non_null(strstr(r, "\r\n# Corio\r\nbackend:"));
	/* corio's counters, per loop. */
	for (int i = 0; i < SHARDS; i++) {
		char *l;

		snprintf(field, sizeof(field), "\r\nloop%d:turns=", i);
		l = strstr(r, field);
		assert_non_null(l);
		assert_non_null(strstr(l, ",enters="));
		assert_non_null(strstr(l, ",wakes_sent="));
		assert_non_null(strstr(l, ",wakes_elided="));
		assert_non_null(strstr(l, ",msgs_received="));
	}
	free(r);
	/* One section; unknown sections are empty. */
	r = cmd(c, "INFO", "keyspace", NULL);
	assert_string_equal(r, "$# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n");
	free(r);
	X(c, "$", "INFO", "nosuchsection");
	r = cmd(c, "COMMAND", "COUNT", NULL);
	assert_true(atoi(r + 1) >= 20);
	free(r);
	X(c, "[$get,[$summary,$Get the value of a key,$since,$1.0.0,$group,$string]]", "COMMAND",
	  "DOCS", "get");
	X(c, "[[$get,:2,[+readonly,+fast],:1,:1,:1,[+@string],[],[],[]],(nil)]", "COMMAND", "INFO",
	  "GET", "nosuch");
	r = cmd(c, "COMMAND", NULL);
	assert_non_null(strstr(r, "[$mset,:-3,"));
	free(r);
	X(c, "[$appendonly,$no,$save,$]", "CONFIG", "GET", "save", "appendonly");
	X(c, "[]", "CONFIG", "GET", "nosuch");
	cli_close(c);
}

static void large_values(void **state)
{
	struct cli *c = fresh();
	size_t n = 3 << 20; /* many receive buffers, and a zero-copy send back */
	char *v = malloc(n), *r;
	struct text t = {0};
	const char *argv[3] = {"SET", "big", v};
	size_t lens[3] = {3, 3, n};

	(void)state;
	for (size_t i = 0; i < n; i++)
		v[i] = (char)('a' + i % 23);
	encode_cmd(&t, argv, 3, lens);
	/* Twice in one write, then a GET: a pipeline of big commands. */
	encode_cmd(&t, argv, 3, lens);
	argv[0] = "GET";
	encode_cmd(&t, argv, 2, lens);
	cli_send(c, t.p, t.len);
	free(t.p);
	for (int i = 0; i < 2; i++) {
		r = cli_reply(c);
		assert_string_equal(r, "+OK");
		free(r);
	}
	r = cli_reply(c);
	assert_int_equal(strlen(r), n + 1);
	assert_memory_equal(r + 1, v, n);
	free(r);
	X(c, ":1", "DEL", "big");
	free(v);
	cli_close(c);
}

#define CLIENTS 4
#define ROUNDS 50
#define PER_ROUND 40
#define COUNTERS 8

static void *client_thread(void *arg)
{
	struct cli *c = cli_open();
	struct text t = {0};
	char key[16];

	(void)arg;
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < PER_ROUND; i++) {
			snprintf(key, sizeof(key), "ctr:%d", i % COUNTERS);
			encode_cmd(&t, (const char *[]){"INCR", key}, 2, NULL);
		}
		cli_send(c, t.p, t.len);
		t.len = 0;
		for (int i = 0; i < PER_ROUND; i++) {
			char *rep = cli_reply(c);

			assert_true(rep && rep[0] == ':');
			free(rep);
		}
	}
	free(t.p);
	cli_close(c);
	return NULL;
}

static void concurrent_clients(void **state)
{
	struct cli *c = fresh();
	pthread_t th[CLIENTS];
	char key[16], want[16];

	(void)state;
	for (int i = 0; i < CLIENTS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, client_thread, NULL), 0);
	for (int i = 0; i < CLIENTS; i++)
		pthread_join(th[i], NULL);
	/* Every increment counted once, whichever loop took the connection. */
	for (int k = 0; k < COUNTERS; k++) {
		snprintf(key, sizeof(key), "ctr:%d", k);
		snprintf(want, sizeof(want), "$%d", CLIENTS * ROUNDS * PER_ROUND / COUNTERS);
		X(c, want, "GET", key);
	}
	cli_close(c);
}

/* Run redis-cli -p PORT @args; its output (malloc'ed), or NULL if it
 * cannot run here. */
static char *redis_cli(const char *args)
{
	char cmdline[256], *out = NULL;
	size_t len = 0, cap = 0, k;
	FILE *f;
	int st;

	snprintf(cmdline, sizeof(cmdline), "redis-cli -p %d %s 2>&1", port, args);
	f = popen(cmdline, "r");
	if (!f)
		return NULL;
	do {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			out = realloc(out, cap);
			assert_non_null(out);
		}
		k = fread(out + len, 1, cap - len - 1, f);
		len += k;
	} while (k);
	out[len] = '\0';
	st = pclose(f);
	if (!WIFEXITED(st) || WEXITSTATUS(st) == 127) {
		free(out);
		return NULL;
	}
	return out;
}

static void with_redis_cli(void **state)
{
	char *out;

	(void)state;
	out = redis_cli("ping");
	if (!out) {
		/* make test installs redis-tools; a bare build may lack it */
		fprintf(stderr, "redis-cli not installed: skipped\n");
		skip();
	}
	assert_string_equal(out, "PONG\n");
	free(out);
	out = redis_cli("set cli:key 'hello world'");
	assert_string_equal(out, "OK\n");
	free(out);
	out = redis_cli("get cli:key");
	assert_string_equal(out, "hello world\n");
	free(out);
	out = redis_cli("--no-raw incrby cli:n 41");
	assert_string_equal(out, "(integer) 41\n");
	free(out);
	out = redis_cli("--no-raw mget cli:key cli:none");
	assert_string_equal(out, "1) \"hello world\"\n2) (nil)\n");
	free(out);
	out = redis_cli("--no-raw foo");
	assert_string_equal(out, "(error) ERR unknown command 'foo', with args beginning with: \n");
	free(out);
	out = redis_cli("info");
	assert_non_null(strstr(out, "redis_version:"));
	assert_non_null(strstr(out, "# Corio"));
	assert_non_null(strstr(out, "loop0:turns="));
	free(out);
}


/* ------------------------------------------------------------- limits */

/* Poll INFO until @field is at least @want (bounded, like poll_until). */
static void poll_info(struct cli *c, const char *field, long long want, bool exact)
{
	int64_t deadline = corio_now() + 20 * CORIO_SEC;
	long long v;

	while ((v = info_field(c, field)) != want && (exact || v < want)) {
		if (corio_now() > deadline)
			fail_msg("%s: still %lld, want %lld", field, v, want);
		sched_yield();
	}
}

/* maxclients: past it a client is told so, as Redis tells it, and closed;
 * a place frees when a client leaves. */
static void maxclients(void **state)
{
	static const char full[] = "-ERR max number of clients reached\r\n";
	struct kv_server *s = start_with(SHARDS, (const char *[]){"maxclients", "2", NULL});
	int p = kv_server_port(s);
	struct cli *a = cli_open_port(p), *b = cli_open_port(p), *c;

	(void)state;
	/* Both served: their handlers have counted them. */
	X(a, "+PONG", "PING");
	X(b, "+PONG", "PING");
	for (int i = 0; i < 3; i++) {
		c = cli_open_port(p);
		while (c->len < sizeof(full) - 1 && cli_fill(c))
			;
		assert_int_equal(c->len, sizeof(full) - 1);
		assert_memory_equal(c->buf, full, sizeof(full) - 1);
		c->off = c->len;
		expect_closed(c);
		cli_close(c);
	}
	assert_int_equal(info_field(a, "rejected_connections"), 3);
	assert_int_equal(info_field(a, "maxclients"), 2);
	cli_close(b);
	poll_info(a, "connected_clients", 1, true);
	c = cli_open_port(p);
	X(c, "+PONG", "PING");
	/* And the limit moves with CONFIG SET. */
	X(a, "+OK", "CONFIG", "SET", "maxclients", "3");
	b = cli_open_port(p);
	X(b, "+PONG", "PING");
	cli_close(a);
	cli_close(b);
	cli_close(c);
	kv_server_stop(s);
}

/* A value of @n bytes under @key. */
static void set_big(struct cli *c, const char *key, size_t n)
{
	char *v = malloc(n);
	struct text t = {0};
	const char *argv[3] = {"SET", key, v};
	size_t lens[3] = {3, strlen(key), n};
	char *r;

	memset(v, 'v', n);
	encode_cmd(&t, argv, 3, lens);
	cli_send(c, t.p, t.len);
	r = cli_reply(c);
	assert_string_equal(r, "+OK");
	free(r);
	free(t.p);
	free(v);
}

/* Send @cmd (NULL-terminated) and expect the connection to be closed with
 * no reply at all. */
static void expect_dropped(struct cli *c, ...)
{
	const char *argv[64];
	size_t argc = 0;
	struct text t = {0};
	va_list ap;

	va_start(ap, c);
	while ((argv[argc] = va_arg(ap, const char *)))
		argc++;
	va_end(ap);
	encode_cmd(&t, argv, argc, NULL);
	cli_send(c, t.p, t.len);
	free(t.p);
	expect_closed(c);
}

/* client-output-buffer-limit normal: replies past the hard limit, or past
 * the soft one for longer than its seconds, close the client (logged and
 * counted); under them, or within the seconds, nothing happens. */
static void output_buffer_limit(void **state)
{
	struct kv_server *s = start_with(
		SHARDS, (const char *[]){"client-output-buffer-limit", "normal 1mb 0 0", NULL});
	int p = kv_server_port(s);
	struct cli *c = cli_open_port(p), *d;
	char *log, *r;

	(void)state;
	set_big(c, "big", 400 << 10);
	set_big(c, "huge", 1100 << 10);
	/* Under the limit: answered. */
	r = cmd(c, "MGET", "big", "big", NULL);
	assert_true(strlen(r) > 800 << 10);
	free(r);
	t_capture_start();
	/* 1.2 MiB of replies in one command, then one reply over 1 MiB. */
	expect_dropped(c, "MGET", "big", "big", "big", NULL);
	cli_close(c);
	c = cli_open_port(p);
	expect_dropped(c, "GET", "huge", NULL);
	cli_close(c);
	log = t_capture_end();
	assert_int_equal(t_count(log, "closed for overcoming of output buffer limits"), 2);
	free(log);
	c = cli_open_port(p);
	assert_int_equal(info_field(c, "client_output_buffer_limit_disconnections"), 2);
	/* Soft limit with seconds: over it now and then is fine... */
	X(c, "+OK", "CONFIG", "SET", "client-output-buffer-limit", "normal 0 512kb 3600");
	d = cli_open_port(p);
	for (int i = 0; i < 3; i++) {
		r = cmd(d, "MGET", "big", "big", NULL);
		assert_true(strlen(r) > 800 << 10);
		free(r);
	}
	/* ... with 0 seconds, it closes at once. */
	X(c, "+OK", "CONFIG", "SET", "client-output-buffer-limit", "normal 0 512kb 0");
	expect_dropped(d, "MGET", "big", "big", NULL);
	cli_close(d);
	/* Without limits, a big reply goes out. */
	X(c, "+OK", "CONFIG", "SET", "client-output-buffer-limit", "normal 0 0 0");
	r = cmd(c, "MGET", "huge", "huge", "big", NULL);
	assert_true(strlen(r) > 2600 << 10);
	free(r);
	X(c, "[$client-output-buffer-limit,$normal 0 0 0]", "CONFIG", "GET",
	  "client-output-buffer-limit");
	assert_int_equal(info_field(c, "client_output_buffer_limit_disconnections"), 3);
	cli_close(c);
	kv_server_stop(s);
}

/* SET of key<i> for i in [from, to) with @vlen-byte values, pipelined; the
 * replies must all be @want. */
static void fill(struct cli *c, int from, int to, size_t vlen, const char *want)
{
	char *v = malloc(vlen + 1);
	const int step = 100;

	memset(v, 'x', vlen);
	v[vlen] = '\0';
	for (int i = from; i < to; i += step) {
		struct text t = {0};
		char key[32];
		int n = to - i < step ? to - i : step;

		for (int k = 0; k < n; k++) {
			snprintf(key, sizeof(key), "key%d", i + k);
			encode_cmd(&t, (const char *[]){"SET", key, v}, 3, NULL);
		}
		cli_send(c, t.p, t.len);
		free(t.p);
		for (int k = 0; k < n; k++) {
			char *r = cli_reply(c);

			assert_non_null(r);
			if (strcmp(r, want))
				fail_msg("SET key%d: %s, want %s", i + k, r, want);
			free(r);
		}
	}
	free(v);
}

/* maxmemory with noeviction: writes that may add memory get Redis's OOM
 * error once a shard is over its share; reads and deletes still work, and
 * freeing memory lets writes in again. */
static void maxmemory_noeviction(void **state)
{
	struct kv_server *s = start_with(SHARDS, (const char *[]){"maxmemory", "300k", NULL});
	struct cli *c = cli_open_port(kv_server_port(s));
	const char *oom = "-OOM command not allowed when used memory > 'maxmemory'.";
	char key[32], v[1001], *r = NULL;
	int i;

	(void)state;
	memset(v, 'v', 1000);
	v[1000] = '\0';
	for (i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "key%d", i);
		free(r);
		r = cmd(c, "SET", key, v, NULL);
		if (strcmp(r, "+OK"))
			break;
	}
	assert_string_equal(r, oom);
	free(r);
	assert_true(i > 100); /* about 300 KiB of keys went in first */
	X(c, oom, "INCR", "counter");
	X(c, oom, "MSET", "a", "1", "b", "2");
	r = cmd(c, "GET", "key0", NULL);
	assert_int_equal(strlen(r), 1001);
	free(r);
	assert_true(info_field(c, "used_memory") > 300 * 1000 / SHARDS);
	r = cmd(c, "INFO", "memory", NULL);
	assert_non_null(strstr(r, "maxmemory:300000\r\n"));
	assert_non_null(strstr(r, "maxmemory_policy:noeviction\r\n"));
	free(r);
	X(c, ":1", "DEL", "key0");
	X(c, "+OK", "FLUSHALL");
	X(c, "+OK", "SET", "k", "v");
	/* Lowering the limit turns writes away at once, raising it lets them in. */
	fill(c, 0, 100, 1000, "+OK");
	X(c, "+OK", "CONFIG", "SET", "maxmemory", "30kb");
	X(c, oom, "SET", "k", "v");
	X(c, "+OK", "CONFIG", "SET", "maxmemory", "0");
	X(c, "+OK", "SET", "k", "v");
	cli_close(c);
	kv_server_stop(s);
}

/* maxmemory with allkeys-lru: writes always succeed, the least recently
 * used keys go (approximately: sampled), memory stays within the limit,
 * and a key read before every write survives. */
static void maxmemory_allkeys_lru(void **state)
{
	struct kv_server *s = start_with(SHARDS, (const char *[]){"maxmemory", "1500kb",
								  "maxmemory-policy", "allkeys-lru", NULL});
	struct cli *c = cli_open_port(kv_server_port(s));
	const int n = 20000;
	char v[101];

	(void)state;
	memset(v, 'y', 100);
	v[100] = '\0';
	X(c, "+OK", "SET", "hot", "stays");
	/* Ten "GET hot" + "SET key<i>" pairs per write: among the keys of
	 * one shard (thousands), the ten newest and hot are the youngest,
	 * and a sample of five would have to find only those to drop hot. */
	for (int i = 0; i < n; i += 10) {
		struct text t = {0};
		char key[32];

		for (int k = 0; k < 10; k++) {
			snprintf(key, sizeof(key), "key%d", i + k);
			encode_cmd(&t, (const char *[]){"GET", "hot"}, 2, NULL);
			encode_cmd(&t, (const char *[]){"SET", key, v}, 3, NULL);
		}
		cli_send(c, t.p, t.len);
		free(t.p);
		for (int k = 0; k < 20; k++) {
			char *r = cli_reply(c);

			assert_string_equal(r, k % 2 ? "+OK" : "$stays");
			free(r);
		}
	}
	X(c, "$stays", "GET", "hot");
	assert_true(info_field(c, "used_memory") <= 1500 * 1024);
	assert_true(info_field(c, "evicted_keys") > 0);
	assert_true(cmd_int(c, "DBSIZE", NULL) < n);
	/* The newest keys are there. */
	{
		char want[102] = "$";

		strcat(want, v);
		X(c, want, "GET", "key19999");
	}
	cli_close(c);
	kv_server_stop(s);
}

/* After FLUSHALL the store's own accounting is back at its baseline: every
 * block is freed (and the free pages given back, which is not asserted:
 * it is the allocator's business). */
static void flushall_frees(void **state)
{
	struct cli *c = fresh();
	long long base = info_field(c, "used_memory");

	(void)state;
	fill(c, 0, 10000, 200, "+OK");
	assert_true(info_field(c, "used_memory") > base + 10000 * 200);
	X(c, "+OK", "FLUSHALL");
	assert_int_equal(info_field(c, "used_memory"), base);
	cli_close(c);
}

/* Open descriptors of the process below @limit. */
static int count_fds(int limit)
{
	int n = 0;

	for (int fd = 0; fd < limit; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

/* Out of descriptors: the accept loop backs off, says so once with what to
 * raise, shows it in INFO, and serves every waiting client once
 * descriptors are back. With direct descriptors no process descriptor is
 * used per connection: the same clients are served at once. */
static void descriptor_exhaustion(void **state)
{
	/* The limit in the test, and maxclients within it (so that the
	 * server does not raise the limit again, as it does at start). */
	const int limit = 64;
	const char *const config[] = {"maxclients", "32", NULL};
	int fillers[64], nfill = 0, p, fds[6], used;
	struct rlimit rl, low;
	struct kv_server *s;
	struct cli *a, *w[6];
	/* Direct descriptors are io_uring's: on epoll the server takes plain ones. */
	bool direct = direct_group && !strcmp(t_backend(), "uring");
	char *log;

	(void)state;
	if (t_under_valgrind()) {
		/* valgrind emulates RLIMIT_NOFILE with descriptors of its own */
		fprintf(stderr, "under valgrind: descriptor exhaustion not tested\n");
		skip();
	}
	for (int i = 0; i < 6; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(fds[i] >= 0);
	}
	/* What a server takes to start (listener, rings...). */
	used = count_fds(limit);
	s = start_with(1, config);
	used = count_fds(limit) - used;
	kv_server_stop(s);
	t_capture_start();
	if (direct)
		s = start_with(1, config);
	/* Below the limit, room for the server, client a and its accepted
	 * end, and two more: the rest is taken by fillers. The limit is set
	 * before the server starts: io_uring's accept takes the limit when it
	 * is armed. (A direct table is registered only within the limit, so
	 * that server starts first.) */
	while (limit - count_fds(limit) > (direct ? 0 : used) + 2 + 2) {
		fillers[nfill] = open("/dev/null", O_RDONLY | O_CLOEXEC);
		assert_true(fillers[nfill] >= 0 && fillers[nfill] < limit);
		nfill++;
	}
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	low = rl;
	low.rlim_cur = limit;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	if (!direct)
		s = start_with(1, config);
	p = kv_server_port(s);
	a = cli_open_port(p);
	X(a, "+PONG", "PING");
	for (int i = 0; i < 6; i++) {
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

		assert_int_equal(connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
	}
	if (!direct)
		poll_info(a, "accept_backoffs", 1, false);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	for (int i = 0; i < 6; i++) {
		struct timeval tv = {.tv_sec = 20};

		w[i] = calloc(1, sizeof(*w[i]));
		w[i]->fd = fds[i];
		w[i]->cap = 1 << 16;
		w[i]->buf = malloc(w[i]->cap);
		setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		X(w[i], "+PONG", "PING");
	}
	log = t_capture_end();
	if (direct) {
		assert_int_equal(info_field(a, "accept_backoffs"), 0);
		assert_int_equal(t_count(log, "EMFILE"), 0);
	} else {
		assert_true(info_field(a, "accept_backoffs") >= 1);
		/* Once per episode, with the errno and what to raise. */
		assert_int_equal(t_count(log, "(EMFILE)"), 1);
		assert_int_equal(t_count(log, "ulimit -n"), 1);
		assert_int_equal(t_count(log, " again after "), 1);
	}
	free(log);
	for (int i = 0; i < nfill; i++)
		close(fillers[i]);
	for (int i = 0; i < 6; i++)
		cli_close(w[i]);
	cli_close(a);
	kv_server_stop(s);
}

/* CONFIG SET: values as Redis takes them, Redis's errors, all or nothing. */
static void config_set(void **state)
{
	struct cli *c = fresh();

	(void)state;
	X(c, "+OK", "CONFIG", "SET", "maxmemory", "10mb", "maxmemory-policy", "ALLKEYS-LRU");
	X(c, "[$maxmemory,$10485760,$maxmemory-policy,$allkeys-lru]", "CONFIG", "GET",
	  "maxmemory*");
	X(c, "+OK", "CONFIG", "SET", "maxmemory", "1GB");
	X(c, "[$maxmemory,$1073741824]", "CONFIG", "GET", "maxmemory");
	X(c, "+OK", "CONFIG", "SET", "maxmemory", "5k");
	X(c, "[$maxmemory,$5000]", "CONFIG", "GET", "maxmemory");
	X(c, "-ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must "
	     "be a memory value", "CONFIG", "SET", "maxmemory", "lots");
	X(c, "-ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - "
	     "argument(s) must be one of the following: noeviction, allkeys-lru",
	  "CONFIG", "SET", "maxmemory-policy", "volatile-lru");
	X(c, "-ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument "
	     "couldn't be parsed into an integer", "CONFIG", "SET", "maxclients", "x");
	X(c, "-ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument must "
	     "be between 1 and 4294967295 inclusive", "CONFIG", "SET", "maxclients", "0");
	X(c, "-ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - "
	     "Wrong number of arguments in buffer limit configuration.",
	  "CONFIG", "SET", "client-output-buffer-limit", "normal 1 2");
	X(c, "-ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - "
	     "Invalid client class specified in buffer limit configuration (only 'normal' clients "
	     "exist here).", "CONFIG", "SET", "client-output-buffer-limit", "pubsub 1 2 3");
	X(c, "-ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - "
	     "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
	  "CONFIG", "SET", "client-output-buffer-limit", "normal 1x 2 3");
	X(c, "-ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'", "CONFIG",
	  "SET", "nosuch", "1");
	X(c, "-ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable "
	     "config", "CONFIG", "SET", "port", "1");
	X(c, "-ERR CONFIG SET failed (possibly related to argument 'maxmemory') - duplicate "
	     "parameter", "CONFIG", "SET", "maxmemory", "1", "maxmemory", "2");
	X(c, "-ERR wrong number of arguments for 'config|set' command", "CONFIG", "SET",
	  "maxmemory");
	X(c, "-ERR wrong number of arguments for 'config|set' command", "CONFIG", "SET",
	  "maxmemory", "1", "maxclients");
	/* All or nothing: a bad second pair leaves the first unchanged. */
	X(c, "-ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - "
	     "argument(s) must be one of the following: noeviction, allkeys-lru",
	  "CONFIG", "SET", "maxmemory", "7", "maxmemory-policy", "lfu");
	X(c, "[$maxmemory,$5000]", "CONFIG", "GET", "maxmemory");
	X(c, "+OK", "CONFIG", "SET", "maxmemory", "0", "maxmemory-policy", "noeviction");
	cli_close(c);
}

/* A second server with a small request limit: a bulk beyond it is refused
 * as Redis refuses one beyond proto-max-bulk-len. */
static void request_limit(void **state)
{
	struct kv_server_opts o = {.port = 0, .threads = 1, .max_request = 4096};
	const char in[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5000\r\n";
	const char err[] = "-ERR Protocol error: invalid bulk length\r\n";
	struct kv_server *small;
	struct cli *c;
	char *v = malloc(4001);

	(void)state;
	assert_int_equal(kv_server_start(&small, &o), 0);
	c = cli_open_port(kv_server_port(small));
	memset(v, 'v', 4000);
	v[4000] = '\0';
	X(c, "+OK", "SET", "k", v);
	cli_send(c, in, sizeof(in) - 1);
	while (c->len - c->off < sizeof(err) - 1 && cli_fill(c))
		;
	assert_memory_equal(c->buf + c->off, err, sizeof(err) - 1);
	c->off += sizeof(err) - 1;
	expect_closed(c);
	cli_close(c);
	kv_server_stop(small);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ping_echo_select),
		cmocka_unit_test(set_get),
		cmocka_unit_test(set_errors),
		cmocka_unit_test(incr_family),
		cmocka_unit_test(multi_key_across_shards),
		cmocka_unit_test(expire_ttl),
		cmocka_unit_test(expiry_observed),
		cmocka_unit_test(dbsize_flushall),
		cmocka_unit_test(error_replies),
		cmocka_unit_test(pipelining),
		cmocka_unit_test(protocol_errors),
		cmocka_unit_test(inline_commands),
		cmocka_unit_test(quit),
		cmocka_unit_test(info_command_config),
		cmocka_unit_test(large_values),
		cmocka_unit_test(concurrent_clients),
		cmocka_unit_test(with_redis_cli),
		cmocka_unit_test(request_limit),
		cmocka_unit_test(maxclients),
		cmocka_unit_test(output_buffer_limit),
		cmocka_unit_test(maxmemory_noeviction),
		cmocka_unit_test(maxmemory_allkeys_lru),
		cmocka_unit_test(flushall_frees),
		cmocka_unit_test(descriptor_exhaustion),
		cmocka_unit_test(config_set),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("plain descriptors", tests, setup, teardown) |
	       cmocka_run_group_tests_name("direct descriptors", tests, setup_direct, teardown);
}
