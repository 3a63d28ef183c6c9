/*
 * Fuzz target: corio_conn's buffered reader (src/net/conn.c), on both
 * backends, against the byte stream it must deliver.
 *
 * Input: a config byte (backend and receive buffer size: deliver.h; bits
 * 2-4 pick max_buffered, from 16 bytes to 64 KiB), a byte giving how many
 * of the following bytes are reader operations, those operations, then the
 * stream in pieces (deliver.h). A writer fiber sends the pieces into a
 * socketpair; a reader fiber runs the operations on a corio_conn over the
 * other end: peek, peek_more, consume (some, all, more than there is),
 * read, peekv, buffered. Then it consumes everything to the end.
 *
 * Checked: every byte the reader is shown is the stream's byte at that
 * place (nothing lost, duplicated, reordered or stale after a consume);
 * peek_more shows more than the last peek or says why not (end of stream,
 * -EMSGSIZE only at max_buffered); buffered() never counts more than was
 * sent and not consumed; the end comes exactly after the last byte; no
 * error; no leak or bad access (ASan), and close gives every buffer back.
 */
#include "deliver.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct reader {
	int fd;
	const struct stream *s;
	const uint8_t *ops;
	size_t nops;
	size_t max_buffered;
};

/* @p[0..n) must be the stream from @at on. */
static void same(const struct stream *s, size_t at, const void *p, size_t n)
{
	FUZZ_CHECK(at <= s->len && n <= s->len - at);
	FUZZ_CHECK(!n || !memcmp(s->bytes + at, p, n));
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	const struct stream *s = r->s;
	struct corio_conn_opts co = {.max_buffered = r->max_buffered};
	size_t at = 0, shown = 0; /* consumed; what the last peek showed */
	struct iovec iov[8];
	corio_conn *c;
	const void *p;
	ssize_t n;
	char buf[512];
	int cnt;

	FUZZ_CHECK(corio_conn_open(&c, r->fd, &co) == 0);
	for (size_t i = 0; i < r->nops; i++) {
		unsigned op = r->ops[i];

		FUZZ_CHECK(corio_conn_buffered(c) <= s->len - at);
		switch (op % 6) {
		case 0:
			n = corio_conn_peek(c, &p);
			FUZZ_CHECK(n >= 0);
			same(s, at, p, (size_t)n);
			FUZZ_CHECK(n > 0 || at == s->len);
			shown = (size_t)n;
			break;
		case 1:
			n = corio_conn_peek_more(c, &p);
			if (n == -EMSGSIZE) {
				FUZZ_CHECK(corio_conn_buffered(c) >= r->max_buffered ||
					   shown >= r->max_buffered);
				break;
			}
			FUZZ_CHECK(n >= 0);
			if (n == 0) { /* the end: nothing more will come */
				FUZZ_CHECK(at + shown == s->len ||
					   at + corio_conn_buffered(c) == s->len);
				break;
			}
			FUZZ_CHECK((size_t)n > shown);
			same(s, at, p, (size_t)n);
			shown = (size_t)n;
			break;
		case 2: {
			/* All the last peek showed, some of it, more than is
			 * buffered (the excess is ignored), or nothing. */
			size_t have = corio_conn_buffered(c), k;

			switch ((op >> 3) % 4) {
			case 0:
				k = shown;
				break;
			case 1:
				k = (op >> 5) % (shown + 1);
				break;
			case 2:
				k = have + 10;
				break;
			default:
				k = 0;
				break;
			}
			corio_conn_consume(c, k);
			at += k < have ? k : have;
			if (k)
				shown = 0;
			break;
		}
		case 3:
			n = corio_conn_read(c, buf, 1 + (op >> 3) % sizeof(buf));
			FUZZ_CHECK(n >= 0);
			same(s, at, buf, (size_t)n);
			FUZZ_CHECK(n > 0 || at == s->len);
			at += (size_t)n;
			shown = 0;
			break;
		case 4:
			cnt = 1 + (int)((op >> 3) % 8);
			n = corio_conn_peekv(c, iov, &cnt);
			FUZZ_CHECK(n >= 0);
			{
				size_t off = 0;

				for (int k = 0; k < cnt; k++) {
					same(s, at + off, iov[k].iov_base, iov[k].iov_len);
					off += iov[k].iov_len;
				}
				FUZZ_CHECK(off == (size_t)n);
			}
			FUZZ_CHECK(n > 0 || at == s->len);
			shown = cnt ? iov[0].iov_len : 0;
			break;
		default:
			corio_yield(); /* let more arrive */
			break;
		}
	}
	/* Everything else, to the end. */
	while ((n = corio_conn_peek(c, &p)) > 0) {
		same(s, at, p, (size_t)n);
		corio_conn_consume(c, (size_t)n);
		at += (size_t)n;
	}
	FUZZ_CHECK(n == 0);
	FUZZ_CHECK(at == s->len);
	FUZZ_CHECK(corio_conn_close(c) == 0);
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t max_buffered[] = {16, 100, 256, 1000, 4096, 16384, 65536, 300};
	struct corio_fiber_opts fo = {.detached = true};
	struct stream s;
	struct reader r = {0};
	struct deliver d = {0};
	corio_loop *loop;
	size_t nops;
	int sv[2];

	if (size < 2)
		return 0;
	loop = config_loop(data[0]);
	if (!loop)
		return 0;
	nops = data[1] < size - 2 ? data[1] : size - 2;
	stream_parse(&s, data + 2 + nops, size - 2 - nops);
	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	r = (struct reader){.fd = sv[0], .s = &s, .ops = data + 2, .nops = nops,
			    .max_buffered = max_buffered[(data[0] >> 2) % 8]};
	d = (struct deliver){.fd = sv[1], .s = &s};
	FUZZ_CHECK(corio_spawn(NULL, loop, reader_main, &r, &fo) == 0);
	FUZZ_CHECK(corio_spawn(NULL, loop, deliver_main, &d, &fo) == 0);
	FUZZ_CHECK(corio_loop_run(loop) == 0);
	corio_loop_destroy(loop);
	close(sv[1]);
	stream_free(&s);
	return 0;
}
