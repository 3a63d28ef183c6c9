/*
 * HTTP/1.1 request heads (RFC 9112), parsed in place.
 *
 * http_parse_request() is a pure function over a byte span: it never
 * allocates, never copies and keeps no state between calls. The request it
 * fills points into the span, so the span must stay untouched while the
 * request is used (for corio_conn: until the next peek or consume). Called
 * again on a longer span after "incomplete", it starts over; a head is
 * small and bounded by max_head, so the rescan costs little.
 *
 * Strict on purpose, because a lenient parser in front of another one is
 * how requests get smuggled:
 *  - lines end in CRLF (a bare CR or LF is an error), one SP between the
 *    parts of the request line; empty lines before the request line are
 *    skipped (RFC 9112 2.2);
 *  - the method is a token, the target visible ASCII, the version
 *    "HTTP/" DIGIT "." DIGIT (major other than 1: 505);
 *  - a field name is a token followed at once by ':' (whitespace before
 *    the colon is an error); a line starting with SP or HTAB (obs-fold) is
 *    an error; a value is VCHAR, obs-text, SP and HTAB (no NUL, no other
 *    control), with surrounding whitespace trimmed;
 *  - Content-Length is 1*DIGIT that fits 64 bits; a second Content-Length
 *    header (even with the same value), a list, a sign or an overflow is an
 *    error; Content-Length together with Transfer-Encoding is an error;
 *  - more than max_head bytes, or more than max_headers fields, without
 *    reaching the end of the head: 431.
 * What the request means (a Host is present, the method is allowed, the
 * body fits) is the server's business: the parser reports the facts.
 */
#ifndef HTTP_PARSE_H
#define HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEADERS 64		   /* room in struct http_request */
#define HTTP_DEFAULT_MAX_HEAD 8192	   /* bytes, request line and fields */
#define HTTP_MAX_HEAD_LIMIT (1u << 20)	   /* max_head is clamped to this */

struct http_limits {
	size_t max_head;      /* 0: HTTP_DEFAULT_MAX_HEAD */
	unsigned max_headers; /* 0 or more than HTTP_MAX_HEADERS: HTTP_MAX_HEADERS */
};

enum http_method {
	HTTP_OTHER = 0, /* a valid token we do not know: see method_str */
	HTTP_GET,
	HTTP_HEAD,
	HTTP_POST,
	HTTP_PUT,
	HTTP_DELETE,
	HTTP_OPTIONS,
};

struct http_header {
	const char *name, *value;
	size_t name_len, value_len;
};

/* What the head says about framing and the connection. */
#define HTTP_F_CONTENT_LENGTH (1u << 0)	   /* content_length is set */
#define HTTP_F_TRANSFER_ENCODING (1u << 1) /* some Transfer-Encoding (not supported here) */
#define HTTP_F_CLOSE (1u << 2)		   /* Connection: close */
#define HTTP_F_KEEP_ALIVE (1u << 3)	   /* Connection: keep-alive */
#define HTTP_F_EXPECT_CONTINUE (1u << 4)   /* Expect: 100-continue */
#define HTTP_F_EXPECT_OTHER (1u << 5)	   /* an Expect we cannot meet (417) */

struct http_request {
	enum http_method method;
	const char *method_str, *target;
	size_t method_len, target_len;
	unsigned version_minor; /* HTTP/1.<minor>: 0 is 1.0, anything else is 1.1 */
	unsigned flags;		/* HTTP_F_* */
	uint64_t content_length;
	unsigned host_count; /* Host fields seen (1.1 needs exactly one) */
	size_t head_len;     /* bytes through the empty line; the body follows */
	unsigned nheaders;
	struct http_header headers[HTTP_MAX_HEADERS];
};

#define HTTP_INCOMPLETE 0

/*
 * Parse the request head at the start of buf[0..len).
 * Returns:
 *   > 0  the head is complete; the value is its length (req->head_len);
 *   0    HTTP_INCOMPLETE: valid so far, more bytes are needed;
 *   < 0  the negated status to answer: -400 (malformed), -431 (head over
 *        the limits), -505 (HTTP major version other than 1).
 * @lim may be NULL for the defaults. Bytes after the head are not looked
 * at (they may be a body or the next, pipelined, request).
 */
int http_parse_request(const char *buf, size_t len, const struct http_limits *lim,
		       struct http_request *req);

/* Case-insensitive lookup of a field; NULL if absent (the first if many). */
const struct http_header *http_find_header(const struct http_request *req, const char *name);

#endif
