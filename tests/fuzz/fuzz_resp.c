/*
 * Fuzz target: the KV server's RESP parser (examples/kv/resp.c).
 *
 * Input: one byte choosing the limits (bit 0: tiny limits, so that every
 * limit is hit often; else the server's defaults), then the byte stream a
 * client would send. For every input:
 *   - no crash, leak, or read outside the bytes given (ASan, UBSan);
 *   - a complete command takes 1..len bytes, and a multibulk argument lies
 *     inside the command's bytes;
 *   - the answers do not depend on how the stream is split: parsing it all
 *     at once and feeding it in pieces (sizes taken from the input itself,
 *     each piece in a fresh copy, as a connection's buffer moves) give the
 *     same commands and the same end (error text, or need-more).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

struct transcript {
	char *p;
	size_t len, cap;
};

static void put(struct transcript *t, const void *p, size_t n)
{
	if (t->cap - t->len < n) {
		size_t cap = t->cap ? t->cap : 256;

		while (cap - t->len < n)
			cap *= 2;
		t->p = realloc(t->p, cap);
		if (!t->p)
			abort();
		t->cap = cap;
	}
	memcpy(t->p + t->len, p, n);
	t->len += n;
}

/* Commands as length-prefixed arguments, then how the stream ended. */
static void put_cmd(struct transcript *t, const struct resp_parser *p)
{
	uint64_t n = p->argc;

	put(t, "C", 1);
	put(t, &n, sizeof(n));
	for (size_t i = 0; i < p->argc; i++) {
		n = p->argv[i].len;
		put(t, &n, sizeof(n));
		put(t, p->argv[i].p, p->argv[i].len);
	}
}

static void put_end(struct transcript *t, ssize_t r, const struct resp_parser *p)
{
	if (r == RESP_ERR) {
		put(t, "E", 1);
		put(t, p->error, strlen(p->error));
	} else if (r == RESP_MORE) {
		put(t, "M", 1);
	} else if (r == RESP_NOMEM) {
		abort(); /* not expected with the fuzzer's memory limit */
	} else {
		put(t, ".", 1);
	}
}

/* A finished command must lie within the bytes it was parsed from. */
static void check_cmd(const struct resp_parser *p, const char *buf, size_t len, ssize_t r)
{
	if (r <= 0 || (size_t)r > len)
		abort();
	if (buf[0] != '*')
		return; /* inline: the arguments are in the parser's memory */
	for (size_t i = 0; i < p->argc; i++) {
		const char *a = p->argv[i].p;

		if (a < buf || a + p->argv[i].len > buf + r)
			abort();
	}
}

static void whole(const struct resp_limits *lim, const char *in, size_t len,
		  struct transcript *t)
{
	struct resp_parser p;
	size_t off = 0;
	ssize_t r = 1;

	resp_init(&p, lim);
	while (off < len) {
		r = resp_parse(&p, in + off, len - off);
		if (r <= 0)
			break;
		check_cmd(&p, in + off, len - off, r);
		put_cmd(t, &p);
		off += (size_t)r;
	}
	put_end(t, off == len ? 1 : r, &p);
	resp_free(&p);
}

static void pieces(const struct resp_limits *lim, const char *in, size_t len,
		   struct transcript *t)
{
	struct resp_parser p;
	size_t off = 0, have = 0, k = 0;
	ssize_t r = 1;

	resp_init(&p, lim);
	while (off < len) {
		char *copy;

		if (have == off || r == RESP_MORE) {
			/* The next piece: 1..64 bytes, sized by the input. */
			size_t step = 1 + (unsigned char)in[k++ % len] % 64;

			have = have + step < len ? have + step : len;
		}
		copy = malloc(have - off ? have - off : 1);
		if (!copy)
			abort();
		memcpy(copy, in + off, have - off);
		r = resp_parse(&p, copy, have - off);
		if (r > 0) {
			check_cmd(&p, copy, have - off, r);
			put_cmd(t, &p);
			off += (size_t)r;
		} else if (r == RESP_MORE) {
			if (p.need <= have - off)
				abort(); /* asked for more, but had enough */
			if (have == len) {
				free(copy);
				break;
			}
		}
		free(copy);
		if (r < 0)
			break;
	}
	put_end(t, off == len ? 1 : r, &p);
	resp_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct resp_limits tiny = {
		.max_args = 8, .max_bulk = 64, .max_request = 200, .max_inline = 32};
	struct transcript a = {0}, b = {0};
	const struct resp_limits *lim;

	if (size < 1)
		return 0;
	lim = data[0] & 1 ? &tiny : NULL;
	whole(lim, (const char *)data + 1, size - 1, &a);
	pieces(lim, (const char *)data + 1, size - 1, &b);
	if (a.len != b.len || (a.len && memcmp(a.p, b.p, a.len)))
		abort(); /* the answer depended on how the bytes arrived */
	free(a.p);
	free(b.p);
	return 0;
}
