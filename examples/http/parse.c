/*
 * HTTP/1.1 request heads: a single forward pass over the span with a
 * character-class table; see parse.h for the grammar we accept.
 *
 * Every read of buf[i] is guarded by i < end, where end is the smaller of
 * len and max_head: running into end means "incomplete" when the span was
 * short, and 431 when it was max_head bytes long. So an error is found as
 * soon as the offending byte arrives, and an incomplete head costs no more
 * than one scan of what has arrived.
 */
#include <string.h>

#include "parse.h"

#define C_TCHAR 1  /* token: field names, methods */
#define C_TARGET 2 /* VCHAR: request-target */
#define C_VALUE 4  /* field-value: VCHAR, obs-text, SP, HTAB */

/* Generated from the RFC 9110 definitions of tchar, VCHAR and field-vchar;
 * test_http_parse checks every byte against them. */
static const unsigned char cls[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, /* 0x00 */
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
	4, 7, 6, 7, 7, 7, 7, 7, 6, 6, 7, 7, 6, 7, 7, 6, /* 0x20 */
	7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 6, 6, 6, /* 0x30 */
	6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, /* 0x40 */
	7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 6, 6, 7, 7, /* 0x50 */
	7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, /* 0x60 */
	7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 6, 7, 6, 7, 0, /* 0x70 */
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0x80 */
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0x90 */
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0xa0 */
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0xb0 */
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0xc0 */
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0xd0 */
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0xe0 */
	4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, /* 0xf0 */
};

/*
 * Case-insensitive compare of @p[0..n) with the lower-case @lower. OR-ing
 * 0x20 folds A-Z onto a-z; the other bytes of our keywords ('-' and
 * digits) already have that bit, and the only other bytes that fold onto
 * them (CR, DLE...) never reach here: field names are tokens and values
 * have no controls.
 */
static int ieq(const char *p, size_t n, const char *lower, size_t ln)
{
	if (n != ln)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)p[i] | 0x20) != (unsigned char)lower[i])
			return 0;
	return 1;
}

#define IEQ(p, n, lit) ieq((p), (n), lit, sizeof(lit) - 1)

static enum http_method method_of(const char *m, size_t n)
{
	switch (n) {
	case 3:
		if (!memcmp(m, "GET", 3))
			return HTTP_GET;
		if (!memcmp(m, "PUT", 3))
			return HTTP_PUT;
		break;
	case 4:
		if (!memcmp(m, "HEAD", 4))
			return HTTP_HEAD;
		if (!memcmp(m, "POST", 4))
			return HTTP_POST;
		break;
	case 6:
		if (!memcmp(m, "DELETE", 6))
			return HTTP_DELETE;
		break;
	case 7:
		if (!memcmp(m, "OPTIONS", 7))
			return HTTP_OPTIONS;
		break;
	}
	return HTTP_OTHER;
}

/* Content-Length = 1*DIGIT, in 64 bits. */
static int parse_length(const char *v, size_t n, uint64_t *out)
{
	uint64_t x = 0;

	if (n == 0)
		return -400;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned char)v[i] - '0';

		if (d > 9)
			return -400;
		if (x > (UINT64_MAX - d) / 10)
			return -400; /* does not fit: no body that big is framed here */
		x = x * 10 + d;
	}
	*out = x;
	return 0;
}

/* Connection = #token: look for "close" and "keep-alive" in the list. */
static unsigned connection_flags(const char *v, size_t n)
{
	unsigned flags = 0;
	size_t i = 0;

	while (i < n) {
		size_t s, e;

		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < n && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (IEQ(v + s, e - s, "close"))
			flags |= HTTP_F_CLOSE;
		else if (IEQ(v + s, e - s, "keep-alive"))
			flags |= HTTP_F_KEEP_ALIVE;
	}
	return flags;
}

/* Record what a field means for framing and the connection. */
static int interpret(struct http_request *req, const struct http_header *h)
{
	switch (h->name_len) {
	case 4:
		if (IEQ(h->name, 4, "host"))
			req->host_count++;
		break;
	case 6:
		if (IEQ(h->name, 6, "expect"))
			req->flags |= IEQ(h->value, h->value_len, "100-continue") ?
					      HTTP_F_EXPECT_CONTINUE :
					      HTTP_F_EXPECT_OTHER;
		break;
	case 10:
		if (IEQ(h->name, 10, "connection"))
			req->flags |= connection_flags(h->value, h->value_len);
		break;
	case 14:
		if (IEQ(h->name, 14, "content-length")) {
			/* Two of them, even equal, is a framing conflict. */
			if (req->flags & HTTP_F_CONTENT_LENGTH)
				return -400;
			req->flags |= HTTP_F_CONTENT_LENGTH;
			return parse_length(h->value, h->value_len, &req->content_length);
		}
		break;
	case 17:
		if (IEQ(h->name, 17, "transfer-encoding"))
			req->flags |= HTTP_F_TRANSFER_ENCODING;
		break;
	}
	return 0;
}

/* "HTTP/" DIGIT "." DIGIT CRLF against what we have of it (k bytes). */
static int version_prefix_ok(const unsigned char *v, size_t k)
{
	static const char pat[] = "HTTP/#.#\r\n";

	for (size_t i = 0; i < k && i < sizeof(pat) - 1; i++) {
		if (pat[i] == '#' ? (v[i] < '0' || v[i] > '9') : v[i] != (unsigned char)pat[i])
			return 0;
	}
	return 1;
}

int http_parse_request(const char *buf, size_t len, const struct http_limits *lim,
		       struct http_request *req)
{
	const unsigned char *b = (const unsigned char *)buf;
	size_t max_head = lim && lim->max_head ? lim->max_head : HTTP_DEFAULT_MAX_HEAD;
	unsigned max_headers = lim && lim->max_headers ? lim->max_headers : HTTP_MAX_HEADERS;
	size_t end, i = 0, s;
	int err;

	if (max_head > HTTP_MAX_HEAD_LIMIT)
		max_head = HTTP_MAX_HEAD_LIMIT;
	if (max_headers > HTTP_MAX_HEADERS)
		max_headers = HTTP_MAX_HEADERS;
	end = len < max_head ? len : max_head;
	/* The header array is filled as we go; the rest starts cleared. */
	memset(req, 0, offsetof(struct http_request, headers));

/* Out of bytes at @k: incomplete, or too big if we may not look further. */
#define NEED(k)                                                  \
	do {                                                     \
		if ((k) >= end)                                  \
			return len >= max_head ? -431 : HTTP_INCOMPLETE; \
	} while (0)

	/* Empty lines before the request line are ignored (RFC 9112 2.2). */
	for (;;) {
		NEED(i);
		if (b[i] != '\r')
			break;
		NEED(i + 1);
		if (b[i + 1] != '\n')
			return -400;
		i += 2;
	}

	/* method SP */
	s = i;
	while (i < end && (cls[b[i]] & C_TCHAR))
		i++;
	NEED(i);
	if (i == s || b[i] != ' ')
		return -400;
	req->method_str = buf + s;
	req->method_len = i - s;
	req->method = method_of(req->method_str, req->method_len);
	i++;

	/* request-target SP */
	s = i;
	while (i < end && (cls[b[i]] & C_TARGET))
		i++;
	NEED(i);
	if (i == s || b[i] != ' ')
		return -400;
	req->target = buf + s;
	req->target_len = i - s;
	i++;

	/* HTTP-version CRLF */
	if (!version_prefix_ok(b + i, end - i))
		return -400;
	NEED(i + 9);
	if (b[i + 5] != '1')
		return -505;
	req->version_minor = (unsigned)(b[i + 7] - '0');
	i += 10;

	/* *( field-name ":" OWS field-value OWS CRLF ) CRLF */
	for (;;) {
		struct http_header *h;
		size_t vs, ve;

		NEED(i);
		if (b[i] == '\r') {
			NEED(i + 1);
			if (b[i + 1] != '\n')
				return -400;
			i += 2;
			break;
		}
		/* A line starting with SP or HTAB (obs-fold) fails here too. */
		s = i;
		while (i < end && (cls[b[i]] & C_TCHAR))
			i++;
		NEED(i);
		if (i == s || b[i] != ':')
			return -400;
		if (req->nheaders == max_headers)
			return -431;
		h = &req->headers[req->nheaders];
		h->name = buf + s;
		h->name_len = i - s;
		i++;
		while (i < end && (b[i] == ' ' || b[i] == '\t'))
			i++;
		vs = i;
		while (i < end && (cls[b[i]] & C_VALUE))
			i++;
		NEED(i);
		if (b[i] != '\r')
			return -400; /* NUL, bare LF, DEL, other controls */
		NEED(i + 1);
		if (b[i + 1] != '\n')
			return -400;
		ve = i;
		while (ve > vs && (b[ve - 1] == ' ' || b[ve - 1] == '\t'))
			ve--;
		h->value = buf + vs;
		h->value_len = ve - vs;
		i += 2;
		req->nheaders++;
		err = interpret(req, h);
		if (err)
			return err;
	}
#undef NEED

	/* RFC 9112 6.3: both is a smuggling attempt, not a message to guess at. */
	if ((req->flags & HTTP_F_TRANSFER_ENCODING) && (req->flags & HTTP_F_CONTENT_LENGTH))
		return -400;
	req->head_len = i;
	return (int)i;
}

static unsigned char lower(unsigned char c)
{
	return c >= 'A' && c <= 'Z' ? (unsigned char)(c | 0x20) : c;
}

const struct http_header *http_find_header(const struct http_request *req, const char *name)
{
	size_t n = strlen(name);

	for (unsigned i = 0; i < req->nheaders; i++) {
		const struct http_header *h = &req->headers[i];
		size_t k = 0;

		while (k < n && k < h->name_len &&
		       lower((unsigned char)h->name[k]) == lower((unsigned char)name[k]))
			k++;
		if (k == n && h->name_len == n)
			return h;
	}
	return NULL;
}
