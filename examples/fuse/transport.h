/*
 * How requests reach the FUSE server and answers go back: the transport.
 *
 * The server's workers are fibers, several per loop. Each owns a slot (its
 * buffers) and loops: recv a request into its slot, handle it, send the
 * answer from the slot. That is all a transport does, per loop:
 *
 *   chan_open   on loop @index, when the loop starts (on the loop's own
 *               stack: must not block); a channel belongs to its loop
 *   slot_init   a worker's buffers: slot->out is where handlers write an
 *               answer's payload (page-aligned, slot->out_cap bytes)
 *   recv        wait (fiber) for the next request; fill *req with views
 *               into the slot's memory, valid until the next recv
 *   send        answer request @unique with @error (0 or -errno) and, on
 *               success, @len bytes of payload at slot->out
 *
 * /dev/fuse (dev.c): recv is a read(2) of the loop's own descriptor (cloned
 * with FUSE_DEV_IOC_CLONE) into the slot, send a writev(2) of a header and
 * the payload. FUSE over io_uring (Linux 6.14, not built yet) fits the same
 * shape: a slot is a ring entry registered with FUSE_IO_URING_CMD_REGISTER,
 * whose header and payload buffers the kernel fills; send records the
 * answer and the next recv submits COMMIT_AND_FETCH, which hands the answer
 * over and waits for the next request in one operation.
 */
#ifndef FUSE_TRANSPORT_H
#define FUSE_TRANSPORT_H

#include <linux/fuse.h>
#include <stddef.h>
#include <stdint.h>

struct fuse_server;
struct fuse_chan; /* the transport's own, one per loop */

/* A request, parsed (fuse_parse): the header, the opcode's fixed-size
 * argument (NULL when it has none), and what follows it (names, the data of
 * a write). Extensions (fuse_in_header.total_extlen) are not in data. */
struct fuse_req {
	const struct fuse_in_header *h;
	const void *arg;
	const char *data;
	size_t datalen;
	const char *why; /* set by fuse_parse for a malformed request */
};

struct fuse_slot {
	void *out;	/* answer payload, page-aligned */
	size_t out_cap;
	void *priv;	/* the transport's */
};

struct fuse_transport {
	const char *name;
	int (*chan_open)(struct fuse_server *s, unsigned index, struct fuse_chan **out);
	void (*chan_close)(struct fuse_chan *ch);
	int (*slot_init)(struct fuse_chan *ch, struct fuse_slot *slot);
	void (*slot_free)(struct fuse_chan *ch, struct fuse_slot *slot);
	/*
	 * 0: *req holds a request. -EBADMSG: a request arrived that could not
	 * be parsed (req->why says why); if it had a readable header, req->h
	 * is set (the server answers EIO), else req->h is NULL (nothing to
	 * answer). The server logs it. -ENODEV: the
	 * connection is over (unmounted or aborted). -ECANCELED: the worker
	 * was cancelled. Other -errno: the transport failed.
	 */
	int (*recv)(struct fuse_chan *ch, struct fuse_slot *slot, struct fuse_req *req);
	int (*send)(struct fuse_chan *ch, struct fuse_slot *slot, uint64_t unique, int error,
		    size_t len);
};

/* The /dev/fuse transport (dev.c). */
extern const struct fuse_transport fuse_dev_transport;

/*
 * Check one request of @len bytes at @buf and split it into *req (views
 * into @buf). Returns 0; -ENOSYS for an opcode the server does not know
 * (req->h is set: it is answered ENOSYS); -EBADMSG for a malformed request,
 * with req->why saying what is wrong and req->h set if the header itself
 * was readable (it is answered EIO), NULL if not.
 */
int fuse_parse(const void *buf, size_t len, struct fuse_req *req);

/* What a transport needs from the server. */
int fuse_server_devfd(const struct fuse_server *s);	 /* the mounted /dev/fuse, or -1 */
void *fuse_server_transport_arg(const struct fuse_server *s); /* fuse_server_opts.transport_arg */
size_t fuse_server_max_request(const struct fuse_server *s);  /* largest request, bytes */
size_t fuse_server_max_reply(const struct fuse_server *s);    /* largest answer payload */

#endif
