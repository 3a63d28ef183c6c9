/*
 * Growable reply buffers and the RESP2 reply writers.
 *
 * An append that cannot get memory marks the buffer (oom) and drops the
 * bytes; whoever sends the buffer checks the mark and closes the connection
 * instead of sending a reply with a hole in it.
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"

void buf_free(struct kv_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

bool buf_reserve(struct kv_buf *b, size_t n)
{
	size_t cap;
	char *p;

	if (b->oom)
		return false;
	if (b->cap - b->len >= n)
		return true;
	cap = b->cap ? b->cap : 256;
	while (cap - b->len < n)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

void buf_put(struct kv_buf *b, const void *p, size_t n)
{
	if (!buf_reserve(b, n))
		return;
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

void buf_str(struct kv_buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

void buf_fmt(struct kv_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !buf_reserve(b, (size_t)n + 1))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

size_t fmt_ll(char *out, long long v)
{
	char tmp[24];
	unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
	size_t n = 0, len = 0;

	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		out[len++] = '-';
	while (n)
		out[len++] = tmp[--n];
	return len;
}

/* "<prefix><v>\r\n" */
static void line_ll(struct kv_buf *b, char prefix, long long v)
{
	char *p;

	if (!buf_reserve(b, 24))
		return;
	p = b->p + b->len;
	*p++ = prefix;
	p += fmt_ll(p, v);
	*p++ = '\r';
	*p++ = '\n';
	b->len = (size_t)(p - b->p);
}

void r_ok(struct kv_buf *b)
{
	buf_put(b, "+OK\r\n", 5);
}

void r_simple(struct kv_buf *b, const char *s)
{
	buf_put(b, "+", 1);
	buf_str(b, s);
	buf_put(b, "\r\n", 2);
}

void r_error(struct kv_buf *b, const char *s)
{
	buf_put(b, "-", 1);
	buf_str(b, s);
	buf_put(b, "\r\n", 2);
}

void r_int(struct kv_buf *b, long long v)
{
	line_ll(b, ':', v);
}

void r_bulk(struct kv_buf *b, const void *p, size_t n)
{
	if (!buf_reserve(b, n + 26))
		return;
	line_ll(b, '$', (long long)n);
	memcpy(b->p + b->len, p, n);
	memcpy(b->p + b->len + n, "\r\n", 2);
	b->len += n + 2;
}

void r_bulkstr(struct kv_buf *b, const char *s)
{
	r_bulk(b, s, strlen(s));
}

void r_nil(struct kv_buf *b)
{
	buf_put(b, "$-1\r\n", 5);
}

void r_array(struct kv_buf *b, size_t n)
{
	line_ll(b, '*', (long long)n);
}
