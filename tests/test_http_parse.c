/*
 * The HTTP request parser of examples/http (parse.c): what it accepts,
 * what it refuses and with which status, its limits, and that a head cut
 * anywhere is "incomplete" rather than an error. Pure: no loop, no I/O.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"
#include "util.h"

static struct http_request req;
static char *copy; /* what req points into, until the next parse */

static int parse_n(const char *s, size_t n)
{
	/* An exact-size copy, so that ASan sees any read past the span. */
	free(copy);
	copy = malloc(n ? n : 1);
	assert_non_null(copy);
	memcpy(copy, s, n);
	return http_parse_request(copy, n, NULL, &req);
}

static int parse(const char *s)
{
	return parse_n(s, strlen(s));
}

static int parse_lim(const char *s, size_t max_head, unsigned max_headers)
{
	struct http_limits lim = {.max_head = max_head, .max_headers = max_headers};

	return http_parse_request(s, strlen(s), &lim, &req);
}

#define assert_parses(s) assert_int_equal(parse(s), (int)strlen(s))
#define assert_refused(s, status) assert_int_equal(parse(s), -(status))

static bool span_eq(const char *p, size_t n, const char *want)
{
	return n == strlen(want) && !memcmp(p, want, n);
}

static void simple_get(void **state)
{
	const char *s = "GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\n"
			"User-Agent:  test/1.0  \r\nAccept:*/*\r\n\r\n";

	(void)state;
	assert_parses(s);
	assert_int_equal(req.method, HTTP_GET);
	assert_true(span_eq(req.method_str, req.method_len, "GET"));
	assert_true(span_eq(req.target, req.target_len, "/index.html?x=1"));
	assert_int_equal(req.version_minor, 1);
	assert_int_equal(req.nheaders, 3);
	assert_int_equal(req.host_count, 1);
	assert_int_equal(req.flags, 0);
	assert_int_equal(req.head_len, strlen(s));
	assert_true(span_eq(req.headers[1].name, req.headers[1].name_len, "User-Agent"));
	/* Surrounding whitespace is not part of the value. */
	assert_true(span_eq(req.headers[1].value, req.headers[1].value_len, "test/1.0"));
	assert_true(span_eq(req.headers[2].value, req.headers[2].value_len, "*/*"));
	assert_non_null(http_find_header(&req, "user-agent"));
	assert_non_null(http_find_header(&req, "HOST"));
	assert_null(http_find_header(&req, "Hos"));
	assert_null(http_find_header(&req, "Cookie"));
}

static void methods_and_versions(void **state)
{
	static const struct {
		const char *line;
		enum http_method m;
		unsigned minor;
	} ok[] = {
		{"GET / HTTP/1.1\r\n\r\n", HTTP_GET, 1},
		{"HEAD / HTTP/1.0\r\n\r\n", HTTP_HEAD, 0},
		{"POST / HTTP/1.1\r\n\r\n", HTTP_POST, 1},
		{"PUT / HTTP/1.1\r\n\r\n", HTTP_PUT, 1},
		{"DELETE / HTTP/1.1\r\n\r\n", HTTP_DELETE, 1},
		{"OPTIONS * HTTP/1.1\r\n\r\n", HTTP_OPTIONS, 1},
		{"PATCH / HTTP/1.1\r\n\r\n", HTTP_OTHER, 1},
		{"get / HTTP/1.1\r\n\r\n", HTTP_OTHER, 1}, /* methods are case-sensitive */
		{"GET / HTTP/1.9\r\n\r\n", HTTP_GET, 9},   /* a later 1.x is served as 1.1 */
		{"GET http://h/x HTTP/1.1\r\n\r\n", HTTP_GET, 1},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_parses(ok[i].line);
		assert_int_equal(req.method, ok[i].m);
		assert_int_equal(req.version_minor, ok[i].minor);
	}
	assert_refused("GET / HTTP/2.0\r\n\r\n", 505);
	assert_refused("GET / HTTP/0.9\r\n\r\n", 505);
}

static void leading_empty_lines(void **state)
{
	const char *s = "\r\n\r\nGET / HTTP/1.1\r\n\r\n";

	(void)state;
	assert_parses(s);
	assert_true(span_eq(req.target, req.target_len, "/"));
	assert_refused("\n\nGET / HTTP/1.1\r\n\r\n", 400);
	assert_refused("\r\rGET / HTTP/1.1\r\n\r\n", 400);
}

static void malformed_request_lines(void **state)
{
	static const char *const bad[] = {
		"GET  / HTTP/1.1\r\n\r\n",	  /* two spaces */
		"GET /  HTTP/1.1\r\n\r\n",	  /* two spaces */
		" GET / HTTP/1.1\r\n\r\n",	  /* leading space */
		"GET\t/ HTTP/1.1\r\n\r\n",	  /* tab */
		"GET / HTTP/1.1 \r\n\r\n",	  /* trailing space */
		"GET /\r\n\r\n",		  /* HTTP/0.9 style */
		"GET HTTP/1.1\r\n\r\n",		  /* no target */
		"GET / http/1.1\r\n\r\n",	  /* lower-case version */
		"GET / HTTP/1.10\r\n\r\n",	  /* two-digit minor */
		"GET / HTTP/1\r\n\r\n",		  /* no minor */
		"GET / HTTP/a.1\r\n\r\n",	  /* not a digit */
		"GET / HTTP/1.1\n\r\n",		  /* bare LF */
		"GET / HTTP/1.1\r\r\n",		  /* CR CR */
		"G(T / HTTP/1.1\r\n\r\n",	  /* not a token */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = parse(bad[i]);

		if (r != -400)
			fail_msg("\"%s\": %d, not -400", bad[i], r);
	}
	/* Any VCHAR is taken in a target (the server decides what it means). */
	assert_parses("GET /a\"b{}%00 HTTP/1.1\r\n\r\n");
	/* Controls, NUL, DEL and bytes above 0x7e in the target. */
	assert_int_equal(parse_n("GET /a\0b HTTP/1.1\r\n\r\n", 22), -400);
	assert_refused("GET /a\x7f HTTP/1.1\r\n\r\n", 400);
	assert_refused("GET /\xc3\xa9 HTTP/1.1\r\n\r\n", 400);
	assert_refused("GET /\x01 HTTP/1.1\r\n\r\n", 400);
}

static void malformed_fields(void **state)
{
	static const char *const bad[] = {
		"GET / HTTP/1.1\r\nHost : x\r\n\r\n",		/* space before colon */
		"GET / HTTP/1.1\r\nHost\t: x\r\n\r\n",		/* tab before colon */
		"GET / HTTP/1.1\r\n: x\r\n\r\n",		/* empty name */
		"GET / HTTP/1.1\r\nHost x\r\n\r\n",		/* no colon */
		"GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n",		/* obs-fold */
		"GET / HTTP/1.1\r\nA: b\r\n\tc\r\n\r\n",	/* obs-fold with tab */
		"GET / HTTP/1.1\r\n Host: x\r\n\r\n",		/* space before first field */
		"GET / HTTP/1.1\r\nA: b\nC: d\r\n\r\n",		/* bare LF */
		"GET / HTTP/1.1\r\nA: b\rC: d\r\n\r\n",		/* bare CR */
		"GET / HTTP/1.1\r\nA: b\r\n\n",			/* bare LF ends the head */
		"GET / HTTP/1.1\r\nA: b\x7f\r\n\r\n",		/* DEL */
		"GET / HTTP/1.1\r\nA: b\x01\r\n\r\n",		/* control */
		"GET / HTTP/1.1\r\nA(b: c\r\n\r\n",		/* not a token */
		"GET / HTTP/1.1\r\nA\xc3\xa9: c\r\n\r\n",	/* not a token */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = parse(bad[i]);

		if (r != -400)
			fail_msg("field case %zu: %d, not -400", i, r);
	}
	/* NUL in a value. */
	assert_int_equal(parse_n("GET / HTTP/1.1\r\nA: b\0c\r\n\r\n", 27), -400);
	/* obs-text, tabs and inner spaces are fine in values; empty values too. */
	assert_parses("GET / HTTP/1.1\r\nA: caf\xc3\xa9\r\nB:\tx \t y\t\r\nC:\r\nD:   \r\n\r\n");
	assert_true(span_eq(req.headers[0].value, req.headers[0].value_len, "caf\xc3\xa9"));
	assert_true(span_eq(req.headers[1].value, req.headers[1].value_len, "x \t y"));
	assert_int_equal(req.headers[2].value_len, 0);
	assert_int_equal(req.headers[3].value_len, 0);
}

static void content_length(void **state)
{
	static const char *const bad[] = {
		"Content-Length: -1",
		"Content-Length: +1",
		"Content-Length: 1 2",
		"Content-Length: 0x10",
		"Content-Length: 1.0",
		"Content-Length: ",
		"Content-Length: 5, 5",
		"Content-Length: 18446744073709551616",	 /* 2^64 */
		"Content-Length: 99999999999999999999999",
		"Content-Length: 5\r\nContent-Length: 5",	 /* duplicate, even equal */
		"Content-Length: 5\r\ncontent-length: 6",	 /* conflicting */
		"Content-Length: 5\r\nTransfer-Encoding: chunked", /* both */
		"Transfer-Encoding: chunked\r\nContent-Length: 5",
	};
	char buf[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r;

		snprintf(buf, sizeof(buf), "POST / HTTP/1.1\r\nHost: h\r\n%s\r\n\r\n", bad[i]);
		r = parse(buf);
		if (r != -400)
			fail_msg("\"%s\": %d, not -400", bad[i], r);
	}
	assert_parses("POST / HTTP/1.1\r\nContent-Length: 42\r\n\r\n");
	assert_true(req.flags & HTTP_F_CONTENT_LENGTH);
	assert_int_equal(req.content_length, 42);
	assert_parses("POST / HTTP/1.1\r\ncontent-LENGTH:   007  \r\n\r\n");
	assert_int_equal(req.content_length, 7);
	assert_parses("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
	assert_true(req.flags & HTTP_F_CONTENT_LENGTH);
	assert_int_equal(req.content_length, 0);
	assert_parses("POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n");
	assert_true(req.content_length == UINT64_MAX);
	assert_parses("GET / HTTP/1.1\r\n\r\n");
	assert_false(req.flags & HTTP_F_CONTENT_LENGTH);
	assert_parses("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
	assert_true(req.flags & HTTP_F_TRANSFER_ENCODING);
}

static void connection_and_expect(void **state)
{
	(void)state;
	assert_parses("GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
	assert_int_equal(req.flags, HTTP_F_CLOSE);
	assert_parses("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
	assert_int_equal(req.flags, HTTP_F_KEEP_ALIVE);
	assert_parses("GET / HTTP/1.1\r\nConnection: upgrade ,CLOSE\r\n\r\n");
	assert_int_equal(req.flags, HTTP_F_CLOSE);
	assert_parses("GET / HTTP/1.1\r\nConnection: closed, keep-alive-ish\r\n\r\n");
	assert_int_equal(req.flags, 0);
	assert_parses("GET / HTTP/1.1\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n");
	assert_int_equal(req.flags, HTTP_F_CLOSE | HTTP_F_KEEP_ALIVE);
	assert_parses("POST / HTTP/1.1\r\nExpect: 100-Continue\r\n\r\n");
	assert_int_equal(req.flags, HTTP_F_EXPECT_CONTINUE);
	assert_parses("POST / HTTP/1.1\r\nExpect: 200-ok\r\n\r\n");
	assert_int_equal(req.flags, HTTP_F_EXPECT_OTHER);
	assert_parses("GET / HTTP/1.1\r\nHost: a\r\nHOST: b\r\n\r\n");
	assert_int_equal(req.host_count, 2);
}

/* Every cut of a valid head is incomplete; the whole is complete, however
 * much follows it. */
static void incomplete_prefixes(void **state)
{
	const char *s = "\r\nPOST /echo HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
			"Connection: keep-alive\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n";
	size_t head = strlen(s) - strlen("helloGET / HTTP/1.1\r\n\r\n");

	(void)state;
	for (size_t n = 0; n < head; n++) {
		int r = parse_n(s, n);

		if (r != HTTP_INCOMPLETE)
			fail_msg("prefix of %zu bytes: %d", n, r);
	}
	for (size_t n = head; n <= strlen(s); n++)
		assert_int_equal(parse_n(s, n), (int)head);
	assert_int_equal(req.content_length, 5);
	/* An error shows as soon as its byte arrives, without the rest. */
	assert_int_equal(parse_n("GET / HTTP/1.1\r\nA\0", 18), -400);
	assert_int_equal(parse_n("GET / HTTP/1.1\r\n ", 17), -400);
	assert_int_equal(parse_n("GET / HTTPS", 11), -400);
	assert_int_equal(parse_n("GET / HTTP/3", 12), HTTP_INCOMPLETE);
	assert_int_equal(parse_n("GET / HTTP/3.0\r\n", 16), -505);
}

static void limits(void **state)
{
	char buf[HTTP_DEFAULT_MAX_HEAD * 2];
	size_t n;

	(void)state;
	/* A head of exactly max_head bytes is fine; one more byte is 431,
	 * and so is an incomplete head once max_head bytes are here. */
	n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nX: ");
	memset(buf + n, 'a', 100 - n - 4);
	memcpy(buf + 100 - 4, "\r\n\r\n", 5);
	assert_int_equal(strlen(buf), 100);
	assert_int_equal(parse_lim(buf, 100, 0), 100);
	assert_int_equal(parse_lim(buf, 99, 0), -431);
	assert_int_equal(parse_lim(buf, 101, 0), 100);
	buf[99] = '\0';
	assert_int_equal(parse_lim(buf, 99, 0), -431);
	assert_int_equal(parse_lim(buf, 100, 0), HTTP_INCOMPLETE);

	/* The default: 8 KiB. */
	n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nX: ");
	memset(buf + n, 'b', sizeof(buf) - n - 1);
	buf[sizeof(buf) - 1] = '\0';
	assert_int_equal(parse(buf), -431);
	assert_int_equal(parse_n(buf, HTTP_DEFAULT_MAX_HEAD - 1), HTTP_INCOMPLETE);

	/* Field count. */
	n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n");
	for (int i = 0; i < 3; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "F%d: v\r\n", i);
	snprintf(buf + n, sizeof(buf) - n, "\r\n");
	assert_int_equal(parse_lim(buf, 0, 3), (int)strlen(buf));
	assert_int_equal(parse_lim(buf, 0, 2), -431);
	n = (size_t)snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\n");
	for (int i = 0; i <= HTTP_MAX_HEADERS; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "F%d: v\r\n", i);
	snprintf(buf + n, sizeof(buf) - n, "\r\n");
	assert_int_equal(parse(buf), -431);
	assert_int_equal(parse_lim(buf, sizeof(buf), 1000), -431); /* clamped to the array */
}

/* The character table against the RFC's definitions, byte by byte. */
static bool is_tchar(int c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static void every_byte(void **state)
{
	char buf[64];

	(void)state;
	for (int c = 0; c < 256; c++) {
		int n, r;
		bool ok;

		/* in a method */
		if (c != ' ') {
			n = snprintf(buf, sizeof(buf), "A%cA / HTTP/1.1\r\n\r\n", 'x');
			buf[1] = (char)c;
			r = parse_n(buf, (size_t)n);
			assert_int_equal(r, is_tchar(c) ? n : -400);
		}
		/* in a target */
		n = snprintf(buf, sizeof(buf), "GET /%c HTTP/1.1\r\n\r\n", 'x');
		buf[5] = (char)c;
		ok = c >= 0x21 && c <= 0x7e;
		assert_int_equal(parse_n(buf, (size_t)n), ok ? n : -400);
		/* in a field name */
		if (c != ':') {
			n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nA%cB: v\r\n\r\n", 'x');
			buf[17] = (char)c;
			assert_int_equal(parse_n(buf, (size_t)n), is_tchar(c) ? n : -400);
		}
		/* in a field value */
		n = snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nA: x%cy\r\n\r\n", 'x');
		buf[20] = (char)c;
		ok = c == '\t' || c == ' ' || (c >= 0x21 && c <= 0x7e) || c >= 0x80;
		assert_int_equal(parse_n(buf, (size_t)n), ok ? n : -400);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(simple_get),
		cmocka_unit_test(methods_and_versions),
		cmocka_unit_test(leading_empty_lines),
		cmocka_unit_test(malformed_request_lines),
		cmocka_unit_test(malformed_fields),
		cmocka_unit_test(content_length),
		cmocka_unit_test(connection_and_expect),
		cmocka_unit_test(incomplete_prefixes),
		cmocka_unit_test(limits),
		cmocka_unit_test(every_byte),
	};

	int r = cmocka_run_group_tests(tests, NULL, NULL);

	free(copy);
	return r;
}
