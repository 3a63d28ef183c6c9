/*
 * The KV server's RESP parser (examples/kv/resp.c), on its own: both
 * request forms, pipelines, every way of splitting the input, Redis's
 * protocol errors word for word, the limits, Redis's integer syntax.
 * No I/O; the answers must not depend on how the bytes arrived.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"
#include "util.h"

/* A command as text: arguments joined by '|' (argc 0: ""). */
static char *joined(const struct resp_parser *p)
{
	size_t n = 1;
	char *s, *o;

	for (size_t i = 0; i < p->argc; i++)
		n += p->argv[i].len + 1;
	s = o = malloc(n);
	assert_non_null(s);
	for (size_t i = 0; i < p->argc; i++) {
		if (i)
			*o++ = '|';
		memcpy(o, p->argv[i].p, p->argv[i].len);
		o += p->argv[i].len;
	}
	*o = '\0';
	return s;
}

/*
 * Parse all of @in (@len bytes), handing the parser @step more bytes at a
 * time, each time from a fresh copy (so nothing may point into an old one).
 * Returns the commands as "a|b;c;" and the end as "!error" or "+" (more
 * needed) or "." (all consumed).
 */
static char *parse_all(const struct resp_limits *lim, const char *in, size_t len, size_t step)
{
	struct resp_parser p;
	size_t off = 0, have;
	char *out = calloc(1, 1);
	size_t outlen = 0;

	resp_init(&p, lim);
	have = step < len ? step : len;
	for (;;) {
		char *copy = malloc(have - off + 1);
		ssize_t r;

		memcpy(copy, in + off, have - off);
		r = resp_parse(&p, copy, have - off);
		if (r > 0) {
			char *cmd = joined(&p);

			assert_true((size_t)r <= have - off);
			out = realloc(out, outlen + strlen(cmd) + 2);
			outlen += (size_t)sprintf(out + outlen, "%s;", cmd);
			free(cmd);
			off += (size_t)r;
			free(copy);
			if (off == len)
				break;
			if (have == off)
				have = off + step < len ? off + step : len;
			continue;
		}
		free(copy);
		if (r == RESP_ERR) {
			out = realloc(out, outlen + strlen(p.error) + 2);
			sprintf(out + outlen, "!%s", p.error);
			resp_free(&p);
			return out;
		}
		assert_int_equal(r, RESP_MORE);
		assert_true(p.need > have - off);
		if (have == len) {
			out = realloc(out, outlen + 2);
			strcpy(out + outlen, "+");
			resp_free(&p);
			return out;
		}
		have = have + step < len ? have + step : len;
	}
	out = realloc(out, outlen + 2);
	strcpy(out + outlen, ".");
	resp_free(&p);
	return out;
}

static void expect_parse(const char *in, size_t len, const char *want)
{
	/* Whole, then byte by byte, then in a few odd step sizes. */
	size_t steps[] = {len ? len : 1, 1, 2, 3, 7, 64};

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		char *got = parse_all(NULL, in, len, steps[i]);

		if (strcmp(got, want))
			fail_msg("input %.*s, step %zu: got \"%s\", want \"%s\"", (int)len, in, steps[i],
				 got, want);
		free(got);
	}
}

#define EXPECT(lit, want) expect_parse(lit, sizeof(lit) - 1, want)

static void multibulk(void **state)
{
	struct resp_parser p;
	const char in[] = "*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n";
	ssize_t r;

	(void)state;
	resp_init(&p, NULL);
	r = resp_parse(&p, in, sizeof(in) - 1);
	assert_int_equal(r, sizeof(in) - 1);
	assert_int_equal(p.argc, 2);
	/* Zero copy: the arguments point into the input. */
	assert_ptr_equal(p.argv[0].p, in + 8);
	assert_ptr_equal(p.argv[1].p, in + 17);
	assert_int_equal(p.argv[1].len, 3);
	resp_free(&p);

	EXPECT("*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n", "GET|key;.");
	/* Binary-safe: CR, LF and other bytes inside a bulk... */
	EXPECT("*2\r\n$4\r\nECHO\r\n$5\r\na\r\n\x01" "b\r\n", "ECHO|a\r\n\x01" "b;.");
	/* ...NUL too. */
	resp_init(&p, NULL);
	assert_int_equal(resp_parse(&p, "*1\r\n$3\r\na\0b\r\n", 13), 13);
	assert_int_equal(p.argc, 1);
	assert_int_equal(p.argv[0].len, 3);
	assert_memory_equal(p.argv[0].p, "a\0b", 3);
	resp_free(&p);
	EXPECT("*1\r\n$0\r\n\r\n", ";.");
	EXPECT("*3\r\n$1\r\na\r\n$0\r\n\r\n$1\r\nc\r\n", "a||c;.");
}

static void pipeline(void **state)
{
	(void)state;
	EXPECT("*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nPING\r\n*1\r\n$4\r\nQUIT\r\n",
	       "PING;ECHO|hi;PING;QUIT;.");
	/* A command cut off at the end waits for more. */
	EXPECT("*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nh", "PING;+");
	EXPECT("PING\r\nPI", "PING;+");
}

static void empty_commands(void **state)
{
	(void)state;
	/* Consumed, with no arguments (Redis skips them). */
	EXPECT("*0\r\n", ";.");
	EXPECT("*-1\r\n", ";.");
	EXPECT("*-5\r\nPING\r\n", ";PING;.");
	EXPECT("\r\n", ";.");
	EXPECT("\n", ";.");
	EXPECT("   \t \r\n", ";.");
}

static void inline_commands(void **state)
{
	(void)state;
	EXPECT("PING\r\n", "PING;.");
	EXPECT("PING\n", "PING;.");
	EXPECT("  SET   k \t v  \r\n", "SET|k|v;.");
	EXPECT("ECHO \"a b\" 'c d'\r\n", "ECHO|a b|c d;.");
	EXPECT("ECHO \"\\x41\\x4a\\x4g\\n\\r\\t\\b\\a\\z\\\"\"\n", "ECHO|AJx4g\n\r\t\b\az\";.");
	EXPECT("ECHO 'it\\'s' '\\n'\n", "ECHO|it's|\\n;.");
	/* Quotes may start inside an argument. */
	EXPECT("ECHO a\"b c\"d\n", "!unbalanced quotes in request");
	EXPECT("ECHO a\"b c\"\n", "ECHO|ab c;.");
	EXPECT("ECHO \"\"\n", "ECHO|;.");
	/* The line ends at a NUL, as for Redis. */
	EXPECT("ECHO a\0b c\r\n", "ECHO|a;.");
	/* \v and \f separate (skipped as blanks) only between arguments. */
	EXPECT("ECHO\va\fb\n", "ECHO\va\fb;.");
	EXPECT("\vECHO\n", "ECHO;.");
}

static void lenient_crlf(void **state)
{
	(void)state;
	/* Redis skips the two bytes after a bulk and the byte after a '\r'
	 * without looking at them; so do we, for the same answers. */
	EXPECT("*1\r\n$4\r\nPINGxx", "PING;.");
	EXPECT("*1\rx$4\ryPING\r\n", "PING;.");
}

struct err_case {
	const char *in;
	size_t len;
	const char *want;
};

#define E(lit, want) {lit, sizeof(lit) - 1, "!" want}

static void protocol_errors(void **state)
{
	static const struct err_case cases[] = {
		E("*x\r\n", "invalid multibulk length"),
		E("*+1\r\n", "invalid multibulk length"),
		E("* 1\r\n", "invalid multibulk length"),
		E("*1 \r\n", "invalid multibulk length"),
		E("*01\r\n", "invalid multibulk length"),
		E("*\r\n", "invalid multibulk length"),
		E("*99999999999999999999\r\n", "invalid multibulk length"),
		E("*1\r\n$x\r\n", "invalid bulk length"),
		E("*1\r\n$-1\r\n", "invalid bulk length"),
		E("*1\r\n$+4\r\nping\r\n", "invalid bulk length"),
		E("*1\r\n$4 \r\nping\r\n", "invalid bulk length"),
		E("*1\r\n$04\r\nping\r\n", "invalid bulk length"),
		E("*1\r\n:4\r\n", "expected '$', got ':'"),
		E("*1\r\n\r\n", "expected '$', got ' '"),
		E("*2\r\n$1\r\na\r\nb\r\n", "expected '$', got 'b'"),
		E("PING \"a\r\n", "unbalanced quotes in request"),
		E("PING 'a\r\n", "unbalanced quotes in request"),
		E("ECHO \"a\"b\r\n", "unbalanced quotes in request"),
		E("ECHO 'a'b\r\n", "unbalanced quotes in request"),
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_parse(cases[i].in, cases[i].len, cases[i].want);
	/* Commands before the error are still parsed. */
	EXPECT("*1\r\n$4\r\nping\r\n*1\r\n:4\r\n", "ping;!expected '$', got ':'");
}

static void limits(void **state)
{
	struct resp_limits lim = {.max_args = 3, .max_bulk = 10, .max_request = 40,
				  .max_inline = 16};
	char big[64];
	char *got;

	(void)state;
#define LIM(lit, want)                                                   \
	do {                                                             \
		got = parse_all(&lim, lit, sizeof(lit) - 1, 1);          \
		assert_string_equal(got, want);                          \
		free(got);                                               \
		got = parse_all(&lim, lit, sizeof(lit) - 1, 1000);       \
		assert_string_equal(got, want);                          \
		free(got);                                               \
	} while (0)
	LIM("*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", "a|b|c;.");
	LIM("*4\r\n", "!invalid multibulk length");
	LIM("*1\r\n$10\r\n0123456789\r\n", "0123456789;.");
	LIM("*1\r\n$11\r\n", "!invalid bulk length");
	/* 40 bytes a command: the third bulk would cross it. */
	LIM("*3\r\n$8\r\n01234567\r\n$1\r\na\r\n$10\r\n", "!invalid bulk length");
	LIM("*3\r\n$8\r\n01234567\r\n$1\r\na\r\n$1\r\nb\r\n", "01234567|a|b;.");
	/* Lines: 16 bytes at most before the CR / LF. */
	LIM("0123456789abcdef\n", "0123456789abcdef;.");
	LIM("0123456789abcdefg\n", "!too big inline request");
	LIM("0123456789abcdefg", "!too big inline request");
	LIM("*000000000000000000\r\n", "!too big mbulk count string");
	LIM("*1\r\n$000000000000000000\r\n", "!too big bulk count string");
	LIM("*1\r\n$0000000000000000", "!too big bulk count string");
	LIM("*1\r\n$000000000000000", "+");
#undef LIM
	/* The defaults: Redis's 64 KiB lines. */
	memset(big, 'x', sizeof(big));
	got = parse_all(NULL, big, sizeof(big), 64);
	assert_string_equal(got, "+");
	free(got);
}

static void need_hint(void **state)
{
	struct resp_parser p;
	const char in[] = "*2\r\n$3\r\nSET\r\n$100000\r\nabc";
	const size_t hdr = sizeof(in) - 1 - 3;
	char *whole;
	ssize_t r;

	(void)state;
	resp_init(&p, NULL);
	r = resp_parse(&p, in, sizeof(in) - 1);
	assert_int_equal(r, RESP_MORE);
	/* Everything up to the value's CRLF. */
	assert_int_equal(p.need, hdr + 100000 + 2);
	/* Fed the rest, from memory elsewhere. */
	whole = malloc(p.need);
	memcpy(whole, in, sizeof(in) - 1);
	memset(whole + sizeof(in) - 1, 'v', p.need - (sizeof(in) - 1));
	memcpy(whole + p.need - 2, "\r\n", 2);
	r = resp_parse(&p, whole, p.need - 1);
	assert_int_equal(r, RESP_MORE);
	r = resp_parse(&p, whole, hdr + 100000 + 2);
	assert_int_equal(r, hdr + 100000 + 2);
	assert_int_equal(p.argc, 2);
	assert_int_equal(p.argv[1].len, 100000);
	assert_ptr_equal(p.argv[1].p, whole + hdr);
	free(whole);
	resp_free(&p);
}

static void many_args_incremental(void **state)
{
	/* 100,000 arguments fed 1 KiB at a time: linear, not quadratic,
	 * because the parser resumes where it stopped. */
	const size_t n = 100000;
	size_t len = 0, cap = n * 8 + 32, off = 0;
	char *in = malloc(cap);
	struct resp_parser p;
	ssize_t r = RESP_MORE;

	(void)state;
	len += (size_t)sprintf(in, "*%zu\r\n", n);
	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(in + len, "$1\r\n%c\r\n", (char)('a' + i % 26));
	resp_init(&p, NULL);
	while (off < len) {
		off = off + 1024 < len ? off + 1024 : len;
		r = resp_parse(&p, in, off);
		if (r != RESP_MORE)
			break;
	}
	assert_int_equal(r, (ssize_t)len);
	assert_int_equal(p.argc, n);
	assert_int_equal(p.argv[n - 1].p[0], 'a' + (n - 1) % 26);
	resp_free(&p);
	free(in);
}

static void integers(void **state)
{
	static const struct {
		const char *s;
		int ok;
		long long v;
	} cases[] = {
		{"0", 1, 0},
		{"1", 1, 1},
		{"-1", 1, -1},
		{"9223372036854775807", 1, LLONG_MAX},
		{"-9223372036854775808", 1, LLONG_MIN},
		{"9223372036854775808", 0, 0},
		{"-9223372036854775809", 0, 0},
		{"18446744073709551616", 0, 0},
		{"", 0, 0},
		{"-", 0, 0},
		{"-0", 0, 0},
		{"01", 0, 0},
		{"+1", 0, 0},
		{" 1", 0, 0},
		{"1 ", 0, 0},
		{"1.5", 0, 0},
		{"000000000000000000001", 0, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long long v = 12345;
		int ok = resp_strtoll(cases[i].s, strlen(cases[i].s), &v);

		if (ok != cases[i].ok || (ok && v != cases[i].v))
			fail_msg("\"%s\": ok %d v %lld", cases[i].s, ok, v);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(multibulk),
		cmocka_unit_test(pipeline),
		cmocka_unit_test(empty_commands),
		cmocka_unit_test(inline_commands),
		cmocka_unit_test(lenient_crlf),
		cmocka_unit_test(protocol_errors),
		cmocka_unit_test(limits),
		cmocka_unit_test(need_hint),
		cmocka_unit_test(many_args_incremental),
		cmocka_unit_test(integers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
