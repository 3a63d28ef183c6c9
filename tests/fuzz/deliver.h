/*
 * For the fuzz targets that talk to a connection (fuzz_conn, fuzz_http_server):
 * a loop per input, chosen by the input (io_uring or epoll; default or tiny
 * receive buffers, so that messages span many of them and the buffer ring
 * runs dry), and a byte stream delivered into a socketpair in pieces whose
 * sizes the input chooses, the loop turning between pieces so that the
 * reader sees them arrive one by one.
 *
 * Input layout: one config byte (see config_loop), then pieces, each a
 * length byte and that many bytes (the last one may be short).
 */
#ifndef FUZZ_DELIVER_H
#define FUZZ_DELIVER_H

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "corio.h"

/* A loop as the config byte says: bit 0 epoll, bit 1 tiny receive buffers
 * (io_uring: 256 bytes, 8 of them at first, at most 16). NULL if the
 * backend cannot run here. */
static corio_loop *config_loop(unsigned config)
{
	struct corio_loop_opts o = {
		.backend = config & 1 ? CORIO_BACKEND_EPOLL : CORIO_BACKEND_URING,
	};
	corio_loop *loop;

	if (config & 2) {
		o.recv_buffer_size = 256;
		o.recv_buffers = 8;
		o.recv_buffers_max = 16;
	}
	signal(SIGPIPE, SIG_IGN);
	if (corio_loop_create(&loop, &o)) {
		o.backend = CORIO_BACKEND_EPOLL; /* io_uring blocked here: epoll only */
		if (corio_loop_create(&loop, &o))
			return NULL;
	}
	return loop;
}

/* The stream's bytes and its cut points, from the input after the config
 * byte. */
struct stream {
	uint8_t *bytes;
	size_t len;
	size_t *cuts; /* piece lengths, summing to len */
	size_t ncuts;
};

static void stream_parse(struct stream *s, const uint8_t *p, size_t n)
{
	size_t i = 0;

	s->bytes = malloc(n + 1);
	s->cuts = malloc((n + 1) * sizeof(*s->cuts));
	FUZZ_CHECK(s->bytes && s->cuts);
	s->len = s->ncuts = 0;
	while (i < n) {
		size_t k = p[i++];

		if (k > n - i)
			k = n - i;
		memcpy(s->bytes + s->len, p + i, k);
		s->len += k;
		i += k;
		if (k)
			s->cuts[s->ncuts++] = k;
	}
}

static void stream_free(struct stream *s)
{
	free(s->bytes);
	free(s->cuts);
}

struct deliver {
	int fd;
	const struct stream *s;
	bool whole; /* all in one piece, not as cut */
};

/* A fiber: send the pieces, turning the loop between them, then SHUT_WR.
 * A peer that stops reading and closes ends it early (EPIPE). */
static void *deliver_main(void *arg)
{
	struct deliver *d = arg;
	const struct stream *s = d->s;
	size_t off = 0;

	for (size_t c = 0; c < (d->whole ? 1 : s->ncuts) && off < s->len; c++) {
		size_t end = d->whole ? s->len : off + s->cuts[c];

		while (off < end) {
			ssize_t n = corio_send(d->fd, s->bytes + off, end - off, MSG_NOSIGNAL);

			if (n <= 0)
				goto out;
			off += (size_t)n;
		}
		for (int t = 0; t < 3; t++)
			corio_yield();
	}
out:
	corio_shutdown(d->fd, SHUT_WR);
	return NULL;
}

#endif
