/*
 * A connection's batch of commands (see server.c for how it flows): the
 * commands and their arguments, the operations split by shard, each
 * shard's reply buffer, and the assembled replies. Nothing here knows
 * about loops or sockets: server.c runs the parts on their shards' loops,
 * the command fuzzer (tests/fuzz/fuzz_kv_cmd.c) runs them all in place.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"

/* Buffers bigger than this are given back after the batch that needed them. */
#define KEEP_BYTES ((size_t)1 << 20)
/* Operation and argument arrays bigger than this are given back too. */
#define KEEP_OPS 16384u

bool kv_batch_init(struct kv_batch *b, struct kv_server *srv)
{
	memset(b, 0, sizeof(*b));
	b->srv = srv;
	b->parts = calloc(srv->nshards, sizeof(*b->parts));
	if (!b->parts)
		return false;
	for (unsigned i = 0; i < srv->nshards; i++) {
		b->parts[i].b = b;
		b->parts[i].shard = i;
	}
	return true;
}

void kv_batch_free(struct kv_batch *b)
{
	for (unsigned i = 0; b->parts && i < b->srv->nshards; i++)
		buf_free(&b->parts[i].rbuf);
	free(b->parts);
	free(b->cmds);
	free(b->args);
	free(b->ops);
	buf_free(&b->out);
}

static void trim(struct kv_buf *buf)
{
	if (buf->cap > KEEP_BYTES || buf->oom)
		buf_free(buf);
	buf->len = 0;
}

void kv_batch_reset(struct kv_batch *b, int64_t now_ms, int64_t unix_ms)
{
	const struct kv_config *cfg = &b->srv->cfg;

	for (unsigned i = 0; i < b->srv->nshards; i++) {
		b->parts[i].nops = 0;
		b->parts[i].counted = 0;
		b->parts[i].over = false;
		trim(&b->parts[i].rbuf);
	}
	trim(&b->out);
	if (b->capops > KEEP_OPS) {
		free(b->ops);
		b->ops = NULL;
		b->capops = 0;
	}
	if (b->capargs > KEEP_OPS) {
		free(b->args);
		b->args = NULL;
		b->capargs = 0;
	}
	b->ncmds = b->nargs = b->nops = 0;
	b->quit = false;
	b->oom = false;
	b->now = now_ms;
	b->unixnow = unix_ms;
	b->obuf_hard = atomic_load_explicit(&cfg->obuf_hard, memory_order_relaxed);
	b->obuf_soft = atomic_load_explicit(&cfg->obuf_soft, memory_order_relaxed);
	b->obuf_secs = atomic_load_explicit(&cfg->obuf_secs, memory_order_relaxed);
	atomic_store_explicit(&b->obuf_total, 0, memory_order_relaxed);
}

static bool grow(void **p, uint32_t *cap, uint32_t need, size_t elem)
{
	uint32_t n = *cap ? *cap : 16;
	void *q;

	if (need <= *cap)
		return true;
	while (n < need)
		n *= 2;
	q = realloc(*p, (size_t)n * elem);
	if (!q)
		return false;
	*p = q;
	*cap = n;
	return true;
}

bool kv_batch_add(struct kv_batch *b, const struct resp_parser *p)
{
	struct kv_cmd *c;

	if (p->argc > UINT32_MAX - b->nargs ||
	    !grow((void **)&b->cmds, &b->capcmds, b->ncmds + 1, sizeof(*b->cmds)) ||
	    !grow((void **)&b->args, &b->capargs, b->nargs + (uint32_t)p->argc, sizeof(*b->args)))
		return false;
	c = &b->cmds[b->ncmds++];
	memset(c, 0, sizeof(*c));
	c->arg0 = b->nargs;
	c->argc = (uint32_t)p->argc;
	memcpy(&b->args[b->nargs], p->argv, p->argc * sizeof(*p->argv));
	b->nargs += (uint32_t)p->argc;
	return kv_prepare(b, c);
}

void kv_batch_run_here(struct kv_batch *b)
{
	for (unsigned s = 0; s < b->srv->nshards; s++)
		if (b->parts[s].nops)
			kv_exec_part(&b->parts[s], b->srv->shards[s]);
}

/*
 * client-output-buffer-limit normal <hard> <soft> <seconds>, as Redis
 * applies it to what a client has not been sent yet: here, a batch's
 * replies (the write of the previous batch has returned, so nothing else is
 * held). Over the hard limit, or over the soft one in batches spanning more
 * than <seconds> (0: at once), the client is closed and nothing of the
 * batch is sent.
 */
static bool obuf_over(struct kv_batch *b, size_t bytes)
{
	if (b->obuf_hard && bytes > b->obuf_hard)
		return true;
	if (!b->obuf_soft || bytes <= b->obuf_soft) {
		b->soft_since = 0;
		return false;
	}
	if (!b->soft_since)
		b->soft_since = b->now;
	return !b->obuf_secs || b->now - b->soft_since > (int64_t)b->obuf_secs * 1000;
}

int kv_batch_reply(struct kv_batch *b)
{
	size_t total = 0;
	bool over = false;

	for (unsigned s = 0; s < b->srv->nshards; s++) {
		const struct kv_part *p = &b->parts[s];

		if (p->rbuf.oom)
			return -ENOMEM;
		over |= p->over;
		total += p->rbuf.len;
	}
	/* Checked before assembling too, so that the copy is never made. */
	b->obuf_bytes = total;
	if (over || (b->obuf_hard && total > b->obuf_hard))
		return -ENOBUFS;
	for (uint32_t i = 0; i < b->ncmds; i++)
		kv_reply(b, &b->cmds[i]);
	if (b->out.oom)
		return -ENOMEM;
	b->obuf_bytes = b->out.len;
	return obuf_over(b, b->out.len) ? -ENOBUFS : 0;
}
