/*
 * libFuzzer target: the HTTP request parser of examples/http (parse.c).
 *
 * Input: one byte that picks the limits ('0' is the defaults; see below),
 * then the bytes to parse. Built with ASan and UBSan, so any read outside
 * the span or undefined arithmetic is a crash. Beyond that, the parser's
 * promises are checked, and a broken one aborts:
 *  - a complete head lies within the span and within max_head, ends with
 *    CRLF CRLF, and everything the request points to lies inside it;
 *  - the result depends only on the bytes up to the head's end: the head
 *    alone gives the same length, and a shorter prefix is incomplete;
 *  - "incomplete" only while fewer than max_head bytes were given;
 *  - an error is one of 400, 431, 505, and a prefix of the input gives
 *    either "incomplete" or that same error (errors show as their byte
 *    arrives, and do not change as more bytes arrive).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                         \
	do {                             \
		if (!(x))                \
			__builtin_trap(); \
	} while (0)

static struct http_request req, req2;

static int parse(const uint8_t *p, size_t n, const struct http_limits *lim, struct http_request *r)
{
	/* A copy of exactly n bytes: a read past the span is caught. */
	uint8_t *copy = malloc(n ? n : 1);
	int res;

	memcpy(copy, p, n);
	res = http_parse_request((const char *)copy, n, lim, r);
	free(copy);
	return res;
}

static int inside(const char *p, size_t n, const char *base, size_t len)
{
	return p >= base && n <= len && (size_t)(p - base) <= len - n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t heads[4] = {0, 64, 256, 1024};
	static const unsigned counts[4] = {0, 2, 8, 64};
	struct http_limits lim;
	const char *buf;
	size_t len, max_head, k;
	int r;

	if (size < 1)
		return 0;
	lim.max_head = heads[data[0] & 3];
	lim.max_headers = counts[(data[0] >> 2) & 3];
	max_head = lim.max_head ? lim.max_head : HTTP_DEFAULT_MAX_HEAD;
	buf = (const char *)data + 1;
	len = size - 1;

	r = http_parse_request(buf, len, &lim, &req);
	if (r > 0) {
		size_t h = (size_t)r;

		CHECK(h <= len && h <= max_head && h == req.head_len && h >= 4);
		CHECK(!memcmp(buf + h - 4, "\r\n\r\n", 4));
		CHECK(inside(req.method_str, req.method_len, buf, h) && req.method_len > 0);
		CHECK(inside(req.target, req.target_len, buf, h) && req.target_len > 0);
		CHECK(req.nheaders <= (lim.max_headers ? lim.max_headers : HTTP_MAX_HEADERS));
		for (unsigned i = 0; i < req.nheaders; i++) {
			const struct http_header *f = &req.headers[i];

			CHECK(inside(f->name, f->name_len, buf, h) && f->name_len > 0);
			CHECK(inside(f->value, f->value_len, buf, h));
		}
		CHECK(!((req.flags & HTTP_F_CONTENT_LENGTH) && (req.flags & HTTP_F_TRANSFER_ENCODING)));
		/* The head alone, and cut short. */
		CHECK(parse(data + 1, h, &lim, &req2) == r);
		CHECK(req2.content_length == req.content_length && req2.flags == req.flags &&
		      req2.nheaders == req.nheaders && req2.method == req.method);
		CHECK(parse(data + 1, h - 1, &lim, &req2) == HTTP_INCOMPLETE);
		k = (h * 7919u + size) % h;
		CHECK(parse(data + 1, k, &lim, &req2) == HTTP_INCOMPLETE);
	} else if (r == HTTP_INCOMPLETE) {
		CHECK(len < max_head);
		if (len) {
			k = (len * 7919u + size) % len;
			CHECK(parse(data + 1, k, &lim, &req2) == HTTP_INCOMPLETE);
		}
	} else {
		int p;

		CHECK(r == -400 || r == -431 || r == -505);
		if (len) {
			k = (len * 7919u + size) % len;
			p = parse(data + 1, k, &lim, &req2);
			CHECK(p == HTTP_INCOMPLETE || p == r);
		}
	}
	return 0;
}
