/*
 * Valgrind and io_uring. Valgrind follows system calls, so it knows what
 * read(2) writes; it does not know what the kernel writes on behalf of an
 * SQE, and reports the filled buffers as uninitialised. Under valgrind
 * (RUNNING_ON_VALGRIND at loop set-up) the backend tells it what a
 * completion wrote, as the opcode's row says (opdef.c). Outside valgrind none of this runs.
 */
#define _GNU_SOURCE
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "uring.h"

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define HAVE_MEMCHECK 1
#endif
#endif

bool corio__valgrind;

static void defined(const void *p, size_t len)
{
#ifdef HAVE_MEMCHECK
	if (p && len)
		VALGRIND_MAKE_MEM_DEFINED(p, len);
#else
	(void)p;
	(void)len;
#endif
}

/* @n bytes spread over @iov. */
static void iov_defined(const struct iovec *iov, size_t cnt, size_t n)
{
	for (size_t i = 0; i < cnt && n; i++) {
		size_t k = iov[i].iov_len < n ? iov[i].iov_len : n;

		defined(iov[i].iov_base, k);
		n -= k;
	}
}

/* A provided buffer the kernel filled: buffer @bid of the op's group. */
static void buffer_defined(corio_loop *loop, const struct corio__op *op, int res, uint32_t flags)
{
	unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;

	for (struct corio__bufgroup *g = U(loop)->bufs; g; g = g->next)
		if (g->bgid == op->sqe.buf_group && bid < g->nbufs)
			defined(g->base + (size_t)bid * g->size, (size_t)res);
}

void corio__valgrind_completed(corio_loop *loop, const struct corio__op *op, int res,
			       uint32_t flags)
{
	const struct io_uring_sqe *sqe = &op->sqe;
	void *addr = (void *)(uintptr_t)sqe->addr;

	if (res < 0)
		return;
	if (flags & IORING_CQE_F_BUFFER) {
		buffer_defined(loop, op, res, flags);
		return;
	}
	switch (corio__opdef(sqe->opcode)->writes) {
	case CORIO__WRITES_BUF:
		defined(addr, (size_t)res);
		break;
	case CORIO__WRITES_IOV:
		iov_defined(addr, sqe->len, (size_t)res);
		break;
	case CORIO__WRITES_MSG: {
		struct msghdr *m = addr;

		defined(m, sizeof(*m));
		iov_defined(m->msg_iov, m->msg_iovlen, (size_t)res);
		defined(m->msg_name, m->msg_namelen);
		defined(m->msg_control, m->msg_controllen);
		break;
	}
	case CORIO__WRITES_STATX:
		defined((void *)(uintptr_t)sqe->addr2, sizeof(struct statx));
		break;
	case CORIO__WRITES_SOCKADDR:
		if (sqe->addr2) {
			socklen_t *len = (socklen_t *)(uintptr_t)sqe->addr2;

			defined(len, sizeof(*len));
			defined(addr, *len);
		}
		break;
	default:
		break;
	}
}
