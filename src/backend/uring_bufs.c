/*
 * Provided-buffer rings (Linux 5.19): the kernel picks a buffer for each
 * receive from a ring we fill, so a multishot receive needs no buffer of its
 * own and no SQE per read.
 *
 * A loop starts with one group (recv_buffers x recv_buffer_size) on first
 * use. When receives find the ring empty (ENOBUFS) and the caller asks to
 * grow, a new group twice as large is registered and new receives use it;
 * older groups keep serving the buffers they lent out. Groups are freed with
 * the loop. The total is capped (recv_buffers_max); past it, receivers fall
 * back to reading into memory of their own (net/conn.c), so a ring that stays
 * dry slows connections down but never stalls them.
 *
 * Ring memory must be page-aligned; liburing 2.3 has no io_uring_setup_buf_ring,
 * so it is mmap'ed and registered here.
 *
 * The ring holds only some of a group's buffers (target, 64 at first).
 * The kernel takes buffers from a ring in order, so a ring holding all of
 * them would cycle every receive through the whole group, and each copy
 * would land in memory long out of cache. Buffers given back go on a stack
 * instead, and each loop turn tops the ring up from its top: the most
 * recently used buffers, still in cache. When a receive finds the ring
 * empty while buffers wait on the stack, the target doubles.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "uring.h"

static unsigned pow2(unsigned n)
{
	unsigned p = 1;

	while (p < n && p < 32768)
		p <<= 1;
	return p;
}

static void group_free(struct uring *u, struct corio__bufgroup *g, bool registered)
{
	if (registered)
		io_uring_unregister_buf_ring(&u->ring, g->bgid);
	if (g->br)
		munmap(g->br, g->nbufs * sizeof(struct io_uring_buf));
	if (g->base)
		munmap(g->base, (size_t)g->nbufs * g->size);
	free(g->nodes);
	free(g->free);
	free(g);
}

static void refill(struct corio__bufgroup *g)
{
	int n = 0;

	while (g->posted < g->target && g->nfree) {
		unsigned bid = g->free[--g->nfree];

		io_uring_buf_ring_add(g->br, g->base + (size_t)bid * g->size, g->size,
				      (uint16_t)bid, (int)g->mask, n++);
		g->posted++;
	}
	if (n)
		io_uring_buf_ring_advance(g->br, n);
}

void corio__bufs_refill(corio_loop *loop)
{
	for (struct corio__bufgroup *g = U(loop)->bufs; g; g = g->next)
		if (g->posted < g->target && g->nfree)
			refill(g);
}

static int group_add(corio_loop *loop, unsigned nbufs)
{
	struct uring *u = U(loop);
	struct io_uring_buf_reg reg;
	struct corio__bufgroup *g;
	int err;

	nbufs = pow2(nbufs); /* ring entries must be a power of 2, <= 32768 */
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->nbufs = nbufs;
	g->size = u->buf_size;
	g->mask = (unsigned)io_uring_buf_ring_mask(nbufs);
	g->bgid = (uint16_t)(u->bufs ? u->bufs->bgid + 1 : 0);
	g->nodes = calloc(nbufs, sizeof(*g->nodes));
	g->free = calloc(nbufs, sizeof(*g->free));
	g->br = mmap(NULL, nbufs * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	g->base = mmap(NULL, (size_t)nbufs * g->size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (g->br == MAP_FAILED)
		g->br = NULL;
	if (g->base == MAP_FAILED)
		g->base = NULL;
	if (!g->nodes || !g->free || !g->br || !g->base) {
		group_free(u, g, false);
		return -ENOMEM;
	}
	io_uring_buf_ring_init(g->br);
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (uint64_t)(uintptr_t)g->br;
	reg.ring_entries = nbufs;
	reg.bgid = g->bgid;
	err = io_uring_register_buf_ring(&u->ring, &reg, 0);
	if (err) {
		group_free(u, g, false);
		return err;
	}
	for (unsigned i = 0; i < nbufs; i++) {
		g->nodes[i].g = g;
		g->free[i] = (uint16_t)(nbufs - 1 - i); /* buffer 0 on top */
	}
	g->nfree = nbufs;
	g->target = nbufs < 64 ? nbufs : 64;
	refill(g);
	g->next = u->bufs;
	u->bufs = g;
	u->buf_total += nbufs;
	return 0;
}

static struct corio__bufgroup *bufs_current(corio_loop *loop)
{
	struct uring *u = U(loop);

	if (!u->bufs && group_add(loop, u->buf_first))
		loop->caps &= ~CORIO__CAP_BUFS; /* e.g. EINVAL before 5.19: use plain receives */
	return u->bufs;
}

static int bufs_grow(corio_loop *loop)
{
	struct uring *u = U(loop);
	struct corio__bufgroup *g = u->bufs;
	unsigned n = g ? g->nbufs * 2 : u->buf_first;

	if (g && (g->nfree || g->posted)) {
		/* Buffers to spare: a deeper ring, not a new group. */
		if (g->target < g->nbufs)
			g->target *= 2;
		refill(g);
		return 0;
	}
	if (n > 32768)
		n = 32768;
	if (u->buf_total + n > u->buf_max)
		return -ENOBUFS;
	return group_add(loop, n) ? -ENOBUFS : 0;
}

static void bufs_put(struct corio__bufnode *n)
{
	struct corio__bufgroup *g = n->g;
	unsigned bid = (unsigned)(n - g->nodes);

	n->next = NULL;
	n->len = n->off = 0;
	g->free[g->nfree++] = (uint16_t)bid;
}

void corio__bufs_fini(corio_loop *loop)
{
	struct uring *u = U(loop);
	struct corio__bufgroup *g, *next;

	for (g = u->bufs; g; g = next) {
		next = g->next;
		group_free(u, g, true);
	}
	u->bufs = NULL;
}

const struct corio__be_bufs corio__uring_bufs = {
	.current = bufs_current,
	.grow = bufs_grow,
	.put = bufs_put,
};
