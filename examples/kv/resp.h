/*
 * RESP2 requests: a parser that is a pure function over a byte span.
 *
 * resp_parse() looks at the bytes at the front of a connection's input and
 * says one of three things:
 *   > 0  a command is complete; it took that many bytes. p->argc and p->argv
 *        describe it (argc may be 0: an empty inline line, "*0", "*-1"; the
 *        caller skips those).
 *   0    (RESP_MORE) the command is not all there yet; call again with the
 *        same bytes and more after them. p->need is a hint: the command
 *        needs at least that many bytes in all.
 *   < 0  RESP_ERR: a protocol error; p->error is the text Redis puts after
 *        "ERR Protocol error: ". The connection should be answered and
 *        closed. RESP_NOMEM: no memory for the argument vector.
 *
 * Two forms, as Redis reads them:
 *   - multibulk: "*<n>\r\n" then n times "$<len>\r\n<len bytes>\r\n". The
 *     argv of a multibulk command points into the caller's bytes: no copy.
 *   - inline (telnet): a line ending in "\n" (or "\r\n"), split on blanks,
 *     with "double quotes" (escapes \n \r \t \b \a \xHH) and 'single quotes'
 *     (escape \'). Its argv points into the parser's own scratch memory.
 *
 * Leniency kept from Redis: the two bytes after a "\r" that ends a count or
 * length line, and after a bulk's data, are skipped without checking that
 * they are "\n" / "\r\n" (so the same bytes get the same answer from both).
 *
 * Incremental use: after RESP_MORE the parser remembers how far it got, so
 * feeding a large command in pieces costs O(new bytes), not O(command) per
 * piece. The bytes already seen must be passed again, unchanged, at the same
 * offsets (they may have moved in memory); resp_reset() forgets a partial
 * command. Answers never depend on how the input was split.
 *
 * Limits (struct resp_limits; 0 picks the default):
 *   - max_args: arguments of a multibulk command ("invalid multibulk length")
 *   - max_bulk: bytes of one argument ("invalid bulk length")
 *   - max_request: bytes of one multibulk command, so that a command always
 *     fits the caller's buffer ("invalid bulk length" for the bulk that
 *     would cross it)
 *   - max_inline: bytes of an inline line ("too big inline request") and of
 *     a count or length line ("too big mbulk/bulk count string")
 */
#ifndef KV_RESP_H
#define KV_RESP_H

#include <stddef.h>
#include <sys/types.h>

#define RESP_MORE 0
#define RESP_ERR (-1)
#define RESP_NOMEM (-2)

#define RESP_DEFAULT_MAX_ARGS (1024u * 1024)
#define RESP_DEFAULT_MAX_BULK ((size_t)512 * 1024 * 1024)
#define RESP_DEFAULT_MAX_INLINE ((size_t)64 * 1024)

struct resp_limits {
	size_t max_args;
	size_t max_bulk;
	size_t max_request; /* 0: max_bulk plus room for one argument's framing */
	size_t max_inline;
};

struct resp_arg {
	const char *p;
	size_t len;
};

struct resp_parser {
	/* The last complete command. */
	size_t argc;
	struct resp_arg *argv;
	/* After RESP_ERR: what went wrong (Redis's words). */
	const char *error;
	/* After RESP_MORE: bytes the command needs at least. */
	size_t need;

	/* private */
	struct resp_limits lim;
	struct resp_span *span; /* multibulk arguments as offsets while parsing */
	size_t cap;		/* entries of argv and span */
	char *scratch;		/* inline arguments, unescaped */
	size_t scap;
	int state;
	size_t pos;    /* multibulk: bytes validated; inline: bytes searched */
	size_t expect; /* multibulk: arguments announced */
	char errbuf[48];
};

void resp_init(struct resp_parser *p, const struct resp_limits *lim);
void resp_free(struct resp_parser *p);
void resp_reset(struct resp_parser *p);
ssize_t resp_parse(struct resp_parser *p, const char *buf, size_t len);

/* Redis's string2ll: an optional '-', then "0" or digits without a leading
 * zero, no blanks, no '+', within int64. Returns 1 and sets *out, or 0. */
int resp_strtoll(const char *s, size_t len, long long *out);

#endif
