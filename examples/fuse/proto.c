/*
 * FUSE requests, checked and split: a pure function over a byte span, so
 * that a transport of any kind, and the tests, can feed it anything.
 *
 * A request is a fuse_in_header, the opcode's fixed-size argument (if it
 * has one), then names or data, then extensions (total_extlen * 8 bytes,
 * for options the server did not ask for at INIT; they are cut off). What
 * is checked: the lengths add up, the fixed argument is all there, names
 * end with a NUL inside the request and are single path components (not
 * empty, no '/', not "." or ".."), a write carries the bytes it announces,
 * a batch of forgets the entries it counts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "transport.h"

enum tail {
	T_NONE,	 /* nothing after the fixed argument (anything there is ignored) */
	T_NAME,	 /* one name */
	T_NAME2, /* two names (rename) */
	T_LINK,	 /* a name, then a symbolic link's target */
	T_WRITE, /* fuse_write_in.size bytes of data */
	T_FORGETS,
};

struct opdef {
	unsigned char known;
	unsigned char tail;
	unsigned short argsize; /* minimum size of the fixed argument */
};

#define OP(op, size, t) [op] = {.known = 1, .tail = t, .argsize = size}

/* The opcodes the server serves; others are answered ENOSYS. INIT's
 * argument was 16 bytes up to protocol 7.35, 64 since; the rest of the
 * sizes have not changed since 7.9. */
static const struct opdef ops[] = {
	OP(FUSE_INIT, 16, T_NONE),
	OP(FUSE_DESTROY, 0, T_NONE),
	OP(FUSE_LOOKUP, 0, T_NAME),
	OP(FUSE_FORGET, sizeof(struct fuse_forget_in), T_NONE),
	OP(FUSE_BATCH_FORGET, sizeof(struct fuse_batch_forget_in), T_FORGETS),
	OP(FUSE_GETATTR, sizeof(struct fuse_getattr_in), T_NONE),
	OP(FUSE_SETATTR, sizeof(struct fuse_setattr_in), T_NONE),
	OP(FUSE_READLINK, 0, T_NONE),
	OP(FUSE_SYMLINK, 0, T_LINK),
	OP(FUSE_MKDIR, sizeof(struct fuse_mkdir_in), T_NAME),
	OP(FUSE_UNLINK, 0, T_NAME),
	OP(FUSE_RMDIR, 0, T_NAME),
	OP(FUSE_RENAME, sizeof(struct fuse_rename_in), T_NAME2),
	OP(FUSE_RENAME2, sizeof(struct fuse_rename2_in), T_NAME2),
	OP(FUSE_LINK, sizeof(struct fuse_link_in), T_NAME),
	OP(FUSE_OPEN, sizeof(struct fuse_open_in), T_NONE),
	OP(FUSE_CREATE, sizeof(struct fuse_create_in), T_NAME),
	OP(FUSE_READ, sizeof(struct fuse_read_in), T_NONE),
	OP(FUSE_WRITE, sizeof(struct fuse_write_in), T_WRITE),
	OP(FUSE_STATFS, 0, T_NONE),
	OP(FUSE_RELEASE, sizeof(struct fuse_release_in), T_NONE),
	OP(FUSE_FSYNC, sizeof(struct fuse_fsync_in), T_NONE),
	OP(FUSE_FLUSH, sizeof(struct fuse_flush_in), T_NONE),
	OP(FUSE_OPENDIR, sizeof(struct fuse_open_in), T_NONE),
	OP(FUSE_READDIR, sizeof(struct fuse_read_in), T_NONE),
	OP(FUSE_READDIRPLUS, sizeof(struct fuse_read_in), T_NONE),
	OP(FUSE_RELEASEDIR, sizeof(struct fuse_release_in), T_NONE),
	OP(FUSE_FSYNCDIR, sizeof(struct fuse_fsync_in), T_NONE),
	OP(FUSE_ACCESS, sizeof(struct fuse_access_in), T_NONE),
	OP(FUSE_FALLOCATE, sizeof(struct fuse_fallocate_in), T_NONE),
};

/* A single path component ending with a NUL within @len bytes; returns
 * its length with the NUL, or 0. */
static size_t name_len(const char *p, size_t len)
{
	const char *nul = memchr(p, 0, len);

	if (!nul || nul == p || memchr(p, '/', (size_t)(nul - p)))
		return 0;
	if (!strcmp(p, ".") || !strcmp(p, ".."))
		return 0;
	return (size_t)(nul - p) + 1;
}

int fuse_parse(const void *buf, size_t len, struct fuse_req *req)
{
	const struct fuse_in_header *h = buf;
	const struct opdef *d;
	size_t body, ext, n, m;

	memset(req, 0, sizeof(*req));
	if (len < sizeof(*h)) {
		req->why = "shorter than a request header";
		return -EBADMSG;
	}
	req->h = h;
	if (h->len != len) {
		req->why = "length field does not match the bytes received";
		return -EBADMSG;
	}
	if (h->opcode >= sizeof(ops) / sizeof(ops[0]) || !ops[h->opcode].known)
		return -ENOSYS;
	d = &ops[h->opcode];
	body = len - sizeof(*h);
	ext = (size_t)h->total_extlen * 8;
	if (ext > body || body - ext < d->argsize) {
		req->why = "argument cut short";
		return -EBADMSG;
	}
	body -= ext;
	if (h->opcode != FUSE_INIT && h->opcode != FUSE_FORGET && h->opcode != FUSE_BATCH_FORGET &&
	    h->nodeid == 0) {
		req->why = "no inode";
		return -EBADMSG;
	}
	req->arg = d->argsize ? (const char *)(h + 1) : NULL;
	req->data = (const char *)(h + 1) + d->argsize;
	req->datalen = body - d->argsize;

	switch (d->tail) {
	case T_NAME:
		if (!name_len(req->data, req->datalen))
			goto bad_name;
		break;
	case T_NAME2:
	case T_LINK:
		n = name_len(req->data, req->datalen);
		if (!n)
			goto bad_name;
		if (d->tail == T_NAME2)
			m = name_len(req->data + n, req->datalen - n);
		else /* a link target: any non-empty string */
			m = memchr(req->data + n, 0, req->datalen - n) && req->data[n] ? 1 : 0;
		if (!m)
			goto bad_name;
		break;
	case T_WRITE:
		if (((const struct fuse_write_in *)req->arg)->size > req->datalen) {
			req->why = "write shorter than its size field";
			return -EBADMSG;
		}
		break;
	case T_FORGETS:
		if (((const struct fuse_batch_forget_in *)req->arg)->count >
		    req->datalen / sizeof(struct fuse_forget_one)) {
			req->why = "batch forget shorter than its count";
			return -EBADMSG;
		}
		break;
	}
	return 0;
bad_name:
	req->why = "name missing, not terminated, or not a single path component";
	return -EBADMSG;
}
