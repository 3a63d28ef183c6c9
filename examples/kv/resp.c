/*
 * RESP2 request parser (see resp.h for the contract).
 *
 * State between calls (after RESP_MORE) is only offsets into the caller's
 * bytes: how far the multibulk command has been validated and where each
 * argument starts, or how far an inline line has been searched for its
 * newline. Nothing points into the caller's memory until the command is
 * complete, so the caller may move its buffer between calls.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

enum { IDLE, MULTIBULK, INLINE };

struct resp_span {
	size_t off, len;
};

int resp_strtoll(const char *s, size_t len, long long *out)
{
	unsigned long long v;
	size_t i = 0;
	int neg = 0;

	if (len == 0 || len >= 21)
		return 0;
	if (len == 1 && s[0] == '0') {
		*out = 0;
		return 1;
	}
	if (s[0] == '-') {
		neg = 1;
		if (++i == len)
			return 0;
	}
	if (s[i] < '1' || s[i] > '9')
		return 0;
	v = (unsigned long long)(s[i++] - '0');
	for (; i < len; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (d > 9)
			return 0;
		if (v > (ULLONG_MAX - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	if (neg) {
		if (v > (unsigned long long)LLONG_MAX + 1)
			return 0;
		*out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
	} else {
		if (v > (unsigned long long)LLONG_MAX)
			return 0;
		*out = (long long)v;
	}
	return 1;
}

void resp_init(struct resp_parser *p, const struct resp_limits *lim)
{
	memset(p, 0, sizeof(*p));
	if (lim)
		p->lim = *lim;
	if (!p->lim.max_args)
		p->lim.max_args = RESP_DEFAULT_MAX_ARGS;
	if (p->lim.max_args > INT_MAX)
		p->lim.max_args = INT_MAX;
	if (!p->lim.max_bulk)
		p->lim.max_bulk = RESP_DEFAULT_MAX_BULK;
	if (!p->lim.max_inline)
		p->lim.max_inline = RESP_DEFAULT_MAX_INLINE;
	if (!p->lim.max_request)
		p->lim.max_request = p->lim.max_bulk + p->lim.max_inline + 64;
}

void resp_free(struct resp_parser *p)
{
	free(p->argv);
	free(p->span);
	free(p->scratch);
	p->argv = NULL;
	p->span = NULL;
	p->scratch = NULL;
	p->cap = p->scap = 0;
}

void resp_reset(struct resp_parser *p)
{
	p->state = IDLE;
	p->pos = 0;
	p->expect = 0;
	p->need = 0;
}

/* Room for @n arguments. */
static int reserve(struct resp_parser *p, size_t n)
{
	struct resp_arg *a;
	struct resp_span *s;
	size_t cap = p->cap ? p->cap : 16;

	if (n <= p->cap)
		return 0;
	while (cap < n)
		cap *= 2;
	a = realloc(p->argv, cap * sizeof(*a));
	if (!a)
		return RESP_NOMEM;
	p->argv = a;
	s = realloc(p->span, cap * sizeof(*s));
	if (!s)
		return RESP_NOMEM;
	p->span = s;
	p->cap = cap;
	return 0;
}

static ssize_t fail(struct resp_parser *p, const char *msg)
{
	resp_reset(p);
	p->argc = 0;
	p->error = msg;
	return RESP_ERR;
}

/*
 * The line that starts at @from ends at the first '\r' (Redis looks for the
 * '\r' and skips the byte after it). 1: found, *cr set; 0: need more;
 * -1: no '\r' within max_inline bytes.
 */
static int find_cr(const struct resp_parser *p, const char *buf, size_t len, size_t from,
		   size_t *cr)
{
	size_t avail = len - from;
	size_t span = avail < p->lim.max_inline + 1 ? avail : p->lim.max_inline + 1;
	const char *r = memchr(buf + from, '\r', span);

	if (!r)
		return avail > p->lim.max_inline ? -1 : 0;
	*cr = (size_t)(r - buf);
	return *cr + 2 <= len ? 1 : 0;
}

static ssize_t more(struct resp_parser *p, size_t need)
{
	p->need = need;
	return RESP_MORE;
}

static ssize_t multibulk(struct resp_parser *p, const char *buf, size_t len)
{
	long long ll;
	size_t cr, used;
	int r;

	if (p->pos == 0) {
		/* "*<count>\r\n" */
		r = find_cr(p, buf, len, 0, &cr);
		if (r < 0)
			return fail(p, "too big mbulk count string");
		if (r == 0)
			return more(p, len + 1);
		if (!resp_strtoll(buf + 1, cr - 1, &ll) || ll > (long long)p->lim.max_args)
			return fail(p, "invalid multibulk length");
		if (ll <= 0) {
			resp_reset(p);
			p->argc = 0;
			return (ssize_t)(cr + 2);
		}
		p->expect = (size_t)ll;
		p->argc = 0;
		p->pos = cr + 2;
	}
	while (p->argc < p->expect) {
		size_t start, end;

		if (p->pos >= len)
			return more(p, p->pos + 1);
		/* "$<len>\r\n<bytes>\r\n" */
		r = find_cr(p, buf, len, p->pos, &cr);
		if (r < 0)
			return fail(p, "too big bulk count string");
		if (r == 0)
			return more(p, len + 1);
		if (buf[p->pos] != '$') {
			char c = buf[p->pos];

			/* Redis turns CR and LF in error text into spaces. */
			snprintf(p->errbuf, sizeof(p->errbuf), "expected '$', got '%c'",
				 c == '\r' || c == '\n' || c == '\0' ? ' ' : c);
			return fail(p, p->errbuf);
		}
		if (!resp_strtoll(buf + p->pos + 1, cr - p->pos - 1, &ll) || ll < 0 ||
		    (unsigned long long)ll > p->lim.max_bulk)
			return fail(p, "invalid bulk length");
		start = cr + 2;
		end = start + (size_t)ll + 2;
		if (end > p->lim.max_request)
			return fail(p, "invalid bulk length");
		if (end > len)
			return more(p, end);
		if (reserve(p, p->argc + 1))
			return RESP_NOMEM;
		p->span[p->argc].off = start;
		p->span[p->argc].len = (size_t)ll;
		p->argc++;
		p->pos = end;
	}
	for (size_t i = 0; i < p->argc; i++) {
		p->argv[i].p = buf + p->span[i].off;
		p->argv[i].len = p->span[i].len;
	}
	used = p->pos;
	resp_reset(p);
	return (ssize_t)used;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Split @line like Redis's inline reader (sdssplitargs): blanks separate
 * arguments; quotes may start inside an argument; a closing quote must be
 * followed by a blank or the end. The line ends at its first NUL, as it does
 * for Redis (which splits a C string). Returns 0, RESP_ERR or RESP_NOMEM.
 */
static int split_inline(struct resp_parser *p, const char *line, size_t n)
{
	const char *nul = memchr(line, '\0', n);
	const char *s, *end;
	char *out;

	if (nul)
		n = (size_t)(nul - line);
	if (n > p->scap) {
		char *x = realloc(p->scratch, n);

		if (!x)
			return RESP_NOMEM;
		p->scratch = x;
		p->scap = n;
	}
	s = line;
	end = line + n;
	out = p->scratch;
	p->argc = 0;
	for (;;) {
		int inq = 0, insq = 0, done = 0;
		char *arg;

		while (s < end && is_space(*s))
			s++;
		if (s == end)
			return 0;
		arg = out;
		while (!done) {
			int has1 = s + 1 < end;

			if (inq) {
				if (s == end)
					return RESP_ERR;
				if (*s == '\\' && s + 3 < end && s[1] == 'x' && hexval(s[2]) >= 0 &&
				    hexval(s[3]) >= 0) {
					*out++ = (char)(hexval(s[2]) * 16 + hexval(s[3]));
					s += 3;
				} else if (*s == '\\' && has1) {
					char c = *++s;

					switch (c) {
					case 'n': c = '\n'; break;
					case 'r': c = '\r'; break;
					case 't': c = '\t'; break;
					case 'b': c = '\b'; break;
					case 'a': c = '\a'; break;
					default: break;
					}
					*out++ = c;
				} else if (*s == '"') {
					if (has1 && !is_space(s[1]))
						return RESP_ERR;
					done = 1;
				} else {
					*out++ = *s;
				}
			} else if (insq) {
				if (s == end)
					return RESP_ERR;
				if (*s == '\\' && has1 && s[1] == '\'') {
					s++;
					*out++ = '\'';
				} else if (*s == '\'') {
					if (has1 && !is_space(s[1]))
						return RESP_ERR;
					done = 1;
				} else {
					*out++ = *s;
				}
			} else if (s == end) {
				done = 1;
			} else {
				switch (*s) {
				case ' ':
				case '\n':
				case '\r':
				case '\t':
					done = 1;
					break;
				case '"':
					inq = 1;
					break;
				case '\'':
					insq = 1;
					break;
				default:
					*out++ = *s;
					break;
				}
			}
			if (s < end)
				s++;
		}
		if (reserve(p, p->argc + 1))
			return RESP_NOMEM;
		p->argv[p->argc].p = arg;
		p->argv[p->argc].len = (size_t)(out - arg);
		p->argc++;
	}
}

static ssize_t inline_cmd(struct resp_parser *p, const char *buf, size_t len)
{
	size_t limit = p->lim.max_inline + 1; /* the '\n' may follow max_inline bytes */
	size_t stop = len < limit ? len : limit;
	const char *nl = NULL;
	size_t end;
	int err;

	if (p->pos < stop)
		nl = memchr(buf + p->pos, '\n', stop - p->pos);
	if (!nl) {
		if (len >= limit)
			return fail(p, "too big inline request");
		p->pos = len;
		return more(p, len + 1);
	}
	end = (size_t)(nl - buf);
	if (end > 0 && buf[end - 1] == '\r')
		end--;
	err = split_inline(p, buf, end);
	if (err == RESP_ERR)
		return fail(p, "unbalanced quotes in request");
	if (err)
		return err;
	resp_reset(p);
	return (ssize_t)(nl - buf) + 1;
}

ssize_t resp_parse(struct resp_parser *p, const char *buf, size_t len)
{
	p->error = NULL;
	if (p->state != IDLE && len < p->pos) {
		/* Fewer bytes than already seen: the caller broke the
		 * contract; start this command over rather than misread. */
		resp_reset(p);
	}
	if (len == 0)
		return more(p, 1);
	if (p->state == IDLE) {
		p->state = buf[0] == '*' ? MULTIBULK : INLINE;
		p->pos = 0;
	}
	if (p->state == MULTIBULK)
		return multibulk(p, buf, len);
	return inline_cmd(p, buf, len);
}
