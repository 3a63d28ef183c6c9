/*
 * The /dev/fuse transport: each loop reads requests from its own
 * descriptor, and answers on the one it read from (the kernel looks the
 * answer up in that descriptor's list of requests being processed).
 *
 * Loop 0 uses the descriptor that was mounted; every other loop opens
 * /dev/fuse and clones it (FUSE_DEV_IOC_CLONE). Clones share the
 * connection's single queue of pending requests: any loop gets the next
 * one; what a clone saves is contention on the lists of requests being
 * processed, which are per descriptor.
 *
 * The descriptors are O_NONBLOCK. A read then never blocks a thread: on
 * io_uring, a read that finds no request arms a poll and is retried when
 * one arrives (without O_NONBLOCK it would park an io-wq thread per read
 * in flight); on epoll, /dev/fuse refuses RWF_NOWAIT, so corio waits for
 * readiness and makes the plain read, which must not block when another
 * loop took the request first.
 *
 * Buffers. A worker reads into a buffer of max_write + 4 KiB placed so that
 * the data of a WRITE (after the 40-byte header and the 40-byte
 * fuse_write_in) starts on a page boundary, and answers from a separate
 * page-aligned payload buffer, header apart (writev): a source file opened
 * with O_DIRECT is then read into and written from aligned memory.
 *
 * ThreadSanitizer cannot see the order the kernel gives requests: a FLUSH
 * answered on one loop comes before the RELEASE another loop reads next,
 * which frees the handle the FLUSH used. So in a TSan build every answer
 * releases, and every request read acquires, one address per server: what
 * a loop did before answering happens before what any loop does with a
 * request read after it, which FUSE guarantees for the requests that
 * depend on an answer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fuse.h"

#if defined(__SANITIZE_THREAD__)
#define FUSE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FUSE_TSAN 1
#endif
#endif
#ifdef FUSE_TSAN
#include <sanitizer/tsan_interface.h>
#define KERNEL_ORDER(how, s) how(s)
#else
#define KERNEL_ORDER(how, s) ((void)(s))
#endif

#define PAGE 4096u
#define WRITE_HEAD (sizeof(struct fuse_in_header) + sizeof(struct fuse_write_in))

struct fuse_chan {
	struct fuse_server *s;
	int fd;
	bool owned; /* a clone (closed with the channel), not the mounted one */
};

struct devslot {
	char *mem;   /* PAGE + request buffer */
	size_t cap;  /* bytes a read may fill */
};

static int dev_chan_open(struct fuse_server *s, unsigned index, struct fuse_chan **out)
{
	struct fuse_chan *ch = calloc(1, sizeof(*ch));
	uint32_t master = (uint32_t)fuse_server_devfd(s);
	int err;

	if (!ch)
		return -ENOMEM;
	ch->s = s;
	ch->fd = fuse_server_devfd(s);
	if (index > 0) {
		/* Opening /dev/fuse and the ioctl are quick system calls, once
		 * per loop at start. */
		ch->fd = open("/dev/fuse", O_RDWR | O_CLOEXEC | O_NONBLOCK);
		if (ch->fd < 0) {
			err = -errno;
			free(ch);
			return err;
		}
		ch->owned = true;
		if (ioctl(ch->fd, FUSE_DEV_IOC_CLONE, &master) < 0) {
			err = -errno;
			close(ch->fd);
			free(ch);
			return err;
		}
	}
	*out = ch;
	return 0;
}

static void dev_chan_close(struct fuse_chan *ch)
{
	if (ch->owned)
		close(ch->fd);
	free(ch);
}

static int dev_slot_init(struct fuse_chan *ch, struct fuse_slot *slot)
{
	struct devslot *d = calloc(1, sizeof(*d));
	size_t in = fuse_server_max_request(ch->s), out = fuse_server_max_reply(ch->s);

	if (!d)
		return -ENOMEM;
	/* Untouched pages of these cost nothing until used. */
	d->cap = in;
	if (posix_memalign((void **)&d->mem, PAGE, PAGE + in)) {
		free(d);
		return -ENOMEM;
	}
	if (posix_memalign(&slot->out, PAGE, out)) {
		free(d->mem);
		free(d);
		return -ENOMEM;
	}
	slot->out_cap = out;
	slot->priv = d;
	return 0;
}

static void dev_slot_free(struct fuse_chan *ch, struct fuse_slot *slot)
{
	struct devslot *d = slot->priv;

	free(slot->out);
	if (d)
		free(d->mem);
	free(d);
	slot->priv = slot->out = NULL;
}

static int dev_recv(struct fuse_chan *ch, struct fuse_slot *slot, struct fuse_req *req)
{
	struct devslot *d = slot->priv;
	char *buf = d->mem + PAGE - WRITE_HEAD;
	ssize_t n;
	int err;

	for (;;) {
		n = corio_read(ch->fd, buf, d->cap, -1);
		/* ENOENT: the request was interrupted and answered by the
		 * kernel meanwhile; EINTR, EAGAIN: nothing after all. */
		if (n == -ENOENT || n == -EINTR || n == -EAGAIN)
			continue;
		if (n == -ECONNABORTED)
			return -ENODEV;
		if (n < 0)
			return (int)n;
		break;
	}
	KERNEL_ORDER(__tsan_acquire, ch->s);
	err = fuse_parse(buf, (size_t)n, req);
	return err == -ENOSYS ? 0 : err;
}

static int dev_send(struct fuse_chan *ch, struct fuse_slot *slot, uint64_t unique, int error,
		    size_t len)
{
	struct fuse_out_header oh = {.unique = unique, .error = error};
	struct iovec iov[2] = {{&oh, sizeof(oh)}, {slot->out, error ? 0 : len}};
	ssize_t n;

	oh.len = (uint32_t)(sizeof(oh) + iov[1].iov_len);
	KERNEL_ORDER(__tsan_release, ch->s);
	n = corio_writev(ch->fd, iov, iov[1].iov_len ? 2 : 1, -1);
	/* ENOENT: the request was interrupted (or aborted) meanwhile and the
	 * kernel does not want the answer any more: not an error. */
	if (n == -ENOENT)
		return 0;
	return n < 0 ? (int)n : 0;
}

const struct fuse_transport fuse_dev_transport = {
	.name = "/dev/fuse",
	.chan_open = dev_chan_open,
	.chan_close = dev_chan_close,
	.slot_init = dev_slot_init,
	.slot_free = dev_slot_free,
	.recv = dev_recv,
	.send = dev_send,
};
