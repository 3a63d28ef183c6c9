/*
 * The FUSE operations, each on the source directory, from a worker fiber.
 *
 * Inodes are O_PATH descriptors of the source (node.c); names are resolved
 * relative to their parent's descriptor (openat, statx, mkdirat, unlinkat,
 * renameat), and a file is opened again for reading or writing through
 * /proc/self/fd/N, as libfuse's passthrough_hp does. An error from the
 * source is the answer, errno for errno.
 *
 * Through corio (io_uring operations, or the epoll backend's thread pool):
 * openat, close, statx, read, write, fsync, fdatasync, fallocate, mkdirat,
 * unlinkat, renameat; symlinkat and linkat as raw io_uring operations
 * (corio_sqe) where the backend has them.
 *
 * Plain system calls, made on the loop's thread, where there is no
 * asynchronous operation to make: getdents64 and lseek (io_uring has no
 * directory read), readlinkat, fstatfs, faccessat, fchmod/chmod,
 * fchownat, ftruncate/truncate and utimensat (SETATTR), dup (FLUSH), and
 * symlinkat/linkat on epoll. Each is a short metadata call on a local
 * file system whose inode the same request has just looked at, so it is
 * almost always served from memory; at worst one loop waits for one disk
 * read while the others serve. A call corio could hand to a blocking
 * thread (a "run this function off the loop" operation) would remove that
 * worst case; the library has none yet.
 *
 * Answers are written into slot->out only once the request's own bytes
 * are no longer needed, and the request is answered exactly once; FORGET
 * and BATCH_FORGET get no answer, as the protocol says.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "fuse.h"

#define DIRBUF (32u * 1024)

struct ctx {
	struct fuse_server *s;
	struct fuse_chan *ch;
	struct fuse_slot *slot;
	const struct fuse_req *r;
	const struct fuse_in_header *h;
};

void fuse_reply(struct fuse_server *s, struct fuse_chan *ch, struct fuse_slot *slot,
		uint64_t unique, int error, size_t len)
{
	int err = s->t->send(ch, slot, unique, error, len);

	/* ENODEV: the connection is gone, nobody waits for the answer. */
	if (err && err != -ENODEV && err != -ECONNABORTED)
		fprintf(stderr, "fuse: answering request %llu: %s\n", (unsigned long long)unique,
			strerror(-err));
}

static void answer(struct ctx *c, int err, size_t len)
{
	fuse_reply(c->s, c->ch, c->slot, c->h->unique, err > 0 ? 0 : err, len);
}

/* A request that names an inode or handle the server does not have: the
 * kernel never sends one, so it is malformed. */
static void bad(struct ctx *c, const char *why)
{
	fuse_log_bad(c->s, c->h, why);
	answer(c, -EIO, 0);
}

static void proc_path(char buf[32], int fd)
{
	snprintf(buf, 32, "/proc/self/fd/%d", fd);
}

/* ------------------------------------------------------------ attributes */

static void fill_attr(struct fuse_attr *a, const struct statx *st)
{
	memset(a, 0, sizeof(*a));
	a->ino = st->stx_ino;
	a->size = st->stx_size;
	a->blocks = st->stx_blocks;
	a->atime = (uint64_t)st->stx_atime.tv_sec;
	a->atimensec = st->stx_atime.tv_nsec;
	a->mtime = (uint64_t)st->stx_mtime.tv_sec;
	a->mtimensec = st->stx_mtime.tv_nsec;
	a->ctime = (uint64_t)st->stx_ctime.tv_sec;
	a->ctimensec = st->stx_ctime.tv_nsec;
	a->mode = st->stx_mode;
	a->nlink = st->stx_nlink;
	a->uid = st->stx_uid;
	a->gid = st->stx_gid;
	a->rdev = (uint32_t)makedev(st->stx_rdev_major, st->stx_rdev_minor);
	a->blksize = st->stx_blksize;
}

static int stat_fd(int fd, struct statx *st)
{
	return corio_statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, st);
}

static void fill_entry(struct fuse_server *s, struct fuse_entry_out *e, const struct node *nd,
		       const struct statx *st)
{
	memset(e, 0, sizeof(*e));
	e->nodeid = nd->id;
	e->generation = nd->gen;
	e->entry_valid = e->attr_valid = (uint64_t)(s->timeout_ns / CORIO_SEC);
	e->entry_valid_nsec = e->attr_valid_nsec = (uint32_t)(s->timeout_ns % CORIO_SEC);
	fill_attr(&e->attr, st);
}

/*
 * Look @name up in @parent: the inode, with one more lookup reference for
 * the kernel. A known inode (found by device and inode number) costs one
 * statx; a new one an openat (O_PATH) and a statx of what was opened.
 */
static int lookup(struct fuse_server *s, struct node *parent, const char *name,
		  struct fuse_entry_out *e)
{
	struct statx st;
	struct node *nd;
	bool dup;
	int fd, err;

	err = corio_statx(parent->fd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT,
			  STATX_BASIC_STATS, &st);
	if (err)
		return err;
	nd = node_ref(&s->nodes, &st);
	if (!nd) {
		fd = corio_openat(parent->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);
		if (fd < 0)
			return fd;
		err = stat_fd(fd, &st);
		if (err) {
			corio_close(fd);
			return err;
		}
		nd = node_add(&s->nodes, fd, &st, &dup);
		if (!nd || dup)
			corio_close(fd);
		if (!nd)
			return -ENOMEM;
	}
	fill_entry(s, e, nd, &st);
	return 0;
}

/* --------------------------------------------------------------- handles */

static int handle_new(struct fuse_server *s, int fd, struct dirstream *dir, uint64_t *fh)
{
	struct handle *hd = malloc(sizeof(*hd));

	if (!hd)
		return -ENOMEM;
	hd->fd = fd;
	hd->dir = dir;
	pthread_mutex_lock(&s->handles.lock);
	*fh = table_put(&s->handles.ids, hd);
	pthread_mutex_unlock(&s->handles.lock);
	if (!*fh) {
		free(hd);
		return -ENOMEM;
	}
	return 0;
}

static struct handle *handle_get(struct fuse_server *s, uint64_t fh)
{
	return table_get(&s->handles.ids, fh);
}

static struct handle *handle_take(struct fuse_server *s, uint64_t fh)
{
	struct handle *hd;

	pthread_mutex_lock(&s->handles.lock);
	hd = table_get(&s->handles.ids, fh);
	if (hd)
		table_del(&s->handles.ids, fh);
	pthread_mutex_unlock(&s->handles.lock);
	return hd;
}

static void handle_free(struct handle *hd)
{
	if (hd->dir)
		free(hd->dir->buf);
	free(hd->dir);
	free(hd);
}

void handles_close_all(struct handles *h)
{
	for (uint64_t id = 1; id < h->ids.next; id++) {
		struct handle *hd = table_get(&h->ids, id);

		if (hd) {
			close(hd->fd);
			handle_free(hd);
		}
	}
}

/* ------------------------------------------------------------- operations */

static void op_init(struct ctx *c)
{
	struct fuse_server *s = c->s;
	struct fuse_init_in in = {0};
	struct fuse_init_out *out = c->slot->out;
	uint64_t kflags, want;
	size_t have = 16 + c->r->datalen;

	memcpy(&in, c->r->arg, have < sizeof(in) ? have : sizeof(in));
	if (atomic_load(&s->inited))
		return bad(c, "INIT again");
	if (in.major < 7 || (in.major == 7 && in.minor < 12)) {
		fprintf(stderr, "fuse: kernel protocol %u.%u is too old (7.12 at least)\n",
			in.major, in.minor);
		return answer(c, -EPROTO, 0);
	}
	memset(out, 0, sizeof(*out));
	out->major = FUSE_KERNEL_VERSION;
	out->minor = FUSE_KERNEL_MINOR_VERSION;
	if (in.major > 7) /* it asks again, for 7 */
		return answer(c, 0, sizeof(*out));
	kflags = in.flags;
	if (in.flags & FUSE_INIT_EXT)
		kflags |= (uint64_t)in.flags2 << 32;
	/* What libfuse 3 asks for by default, less splice, locks and ioctls
	 * (not served here). */
	want = FUSE_ASYNC_READ | FUSE_BIG_WRITES | FUSE_ATOMIC_O_TRUNC | FUSE_AUTO_INVAL_DATA |
	       FUSE_ASYNC_DIO | FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES | FUSE_DO_READDIRPLUS |
	       FUSE_READDIRPLUS_AUTO;
	if (s->o.writeback)
		want |= FUSE_WRITEBACK_CACHE;
	out->flags = (uint32_t)(want & kflags);
	out->max_readahead = in.max_readahead;
	out->max_write = (uint32_t)s->max_write;
	out->max_pages = (uint16_t)(s->max_write / 4096);
	out->time_gran = 1;
	s->minor = in.minor < FUSE_KERNEL_MINOR_VERSION ? in.minor : FUSE_KERNEL_MINOR_VERSION;
	atomic_store(&s->inited, true);
	/* Before 7.23 the answer was shorter. */
	answer(c, 0, in.minor < 23 ? FUSE_COMPAT_22_INIT_OUT_SIZE : sizeof(*out));
}

static void op_lookup(struct ctx *c, struct node *nd)
{
	struct fuse_entry_out e;
	int err = lookup(c->s, nd, c->r->data, &e);

	if (!err)
		memcpy(c->slot->out, &e, sizeof(e));
	answer(c, err, sizeof(e));
}

static void forget(struct fuse_server *s, uint64_t id, uint64_t n)
{
	int fd = node_forget(&s->nodes, id, n);

	if (fd >= 0)
		corio_close(fd);
}

static void op_batch_forget(struct ctx *c)
{
	const struct fuse_batch_forget_in *in = c->r->arg;
	struct fuse_forget_one one;

	for (uint32_t i = 0; i < in->count; i++) {
		memcpy(&one, c->r->data + i * sizeof(one), sizeof(one));
		forget(c->s, one.nodeid, one.nlookup);
	}
}

static void answer_attr(struct ctx *c, int err, const struct statx *st)
{
	struct fuse_attr_out *out = c->slot->out;

	if (!err) {
		memset(out, 0, sizeof(*out));
		out->attr_valid = (uint64_t)(c->s->timeout_ns / CORIO_SEC);
		out->attr_valid_nsec = (uint32_t)(c->s->timeout_ns % CORIO_SEC);
		fill_attr(&out->attr, st);
	}
	answer(c, err, sizeof(*out));
}

static void op_getattr(struct ctx *c, struct node *nd)
{
	const struct fuse_getattr_in *in = c->r->arg;
	struct handle *hd = NULL;
	struct statx st;

	if (in->getattr_flags & FUSE_GETATTR_FH) {
		hd = handle_get(c->s, in->fh);
		if (!hd)
			return bad(c, "unknown file handle");
	}
	answer_attr(c, stat_fd(hd ? hd->fd : nd->fd, &st), &st);
}

static int neg(int rc)
{
	return rc < 0 ? -errno : 0;
}

static void op_setattr(struct ctx *c, struct node *nd)
{
	const struct fuse_setattr_in *in = c->r->arg;
	struct handle *hd = NULL;
	struct statx st;
	char path[32];
	int err = 0;

	if (in->valid & FATTR_FH) {
		hd = handle_get(c->s, in->fh);
		if (!hd)
			return bad(c, "unknown file handle");
	}
	proc_path(path, nd->fd);
	if (in->valid & FATTR_MODE)
		err = neg(hd ? fchmod(hd->fd, in->mode) : chmod(path, in->mode));
	if (!err && (in->valid & (FATTR_UID | FATTR_GID)))
		err = neg(fchownat(nd->fd, "", (in->valid & FATTR_UID) ? in->uid : (uid_t)-1,
				   (in->valid & FATTR_GID) ? in->gid : (gid_t)-1,
				   AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW));
	if (!err && (in->valid & FATTR_SIZE))
		err = neg(hd ? ftruncate(hd->fd, (off_t)in->size) : truncate(path, (off_t)in->size));
	if (!err && (in->valid & (FATTR_ATIME | FATTR_MTIME))) {
		struct timespec ts[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_OMIT}};

		if (in->valid & FATTR_ATIME_NOW)
			ts[0].tv_nsec = UTIME_NOW;
		else if (in->valid & FATTR_ATIME)
			ts[0] = (struct timespec){(time_t)in->atime, in->atimensec};
		if (in->valid & FATTR_MTIME_NOW)
			ts[1].tv_nsec = UTIME_NOW;
		else if (in->valid & FATTR_MTIME)
			ts[1] = (struct timespec){(time_t)in->mtime, in->mtimensec};
		err = neg(hd ? futimens(hd->fd, ts)
			     : utimensat(nd->fd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW));
	}
	if (!err)
		err = stat_fd(hd ? hd->fd : nd->fd, &st);
	answer_attr(c, err, &st);
}

/* Open flags for the source. With the writeback cache the kernel reads
 * pages of files opened write-only and handles O_APPEND itself. */
static int open_flags(struct fuse_server *s, uint32_t flags)
{
	int f = (int)flags & ~(O_NOFOLLOW | O_NOCTTY);

	if (s->o.writeback) {
		if ((f & O_ACCMODE) == O_WRONLY)
			f = (f & ~O_ACCMODE) | O_RDWR;
		f &= ~O_APPEND;
	}
	return f | O_CLOEXEC;
}

static uint32_t fopen_flags(struct fuse_server *s)
{
	/* Everything reaches the source through us: the kernel's cached
	 * pages stay valid across opens while names and attributes may be
	 * cached. */
	return s->timeout_ns ? FOPEN_KEEP_CACHE : 0;
}

static void op_open(struct ctx *c, struct node *nd)
{
	const struct fuse_open_in *in = c->r->arg;
	struct fuse_open_out *out = c->slot->out;
	char path[32];
	uint64_t fh;
	int fd, err;

	proc_path(path, nd->fd);
	fd = corio_openat(AT_FDCWD, path, open_flags(c->s, in->flags & ~(O_CREAT | O_EXCL)), 0);
	if (fd < 0)
		return answer(c, fd, 0);
	err = handle_new(c->s, fd, NULL, &fh);
	if (err) {
		corio_close(fd);
		return answer(c, err, 0);
	}
	memset(out, 0, sizeof(*out));
	out->fh = fh;
	out->open_flags = fopen_flags(c->s);
	answer(c, 0, sizeof(*out));
}

static void op_create(struct ctx *c, struct node *nd)
{
	const struct fuse_create_in *in = c->r->arg;
	struct fuse_entry_out e;
	struct fuse_open_out o = {0};
	uint64_t fh;
	int fd, err;

	fd = corio_openat(nd->fd, c->r->data, open_flags(c->s, in->flags | O_CREAT), in->mode);
	if (fd < 0)
		return answer(c, fd, 0);
	err = lookup(c->s, nd, c->r->data, &e);
	if (!err) {
		err = handle_new(c->s, fd, NULL, &fh);
		if (err)
			forget(c->s, e.nodeid, 1);
	}
	if (err) {
		corio_close(fd);
		return answer(c, err, 0);
	}
	o.fh = fh;
	o.open_flags = fopen_flags(c->s);
	memcpy(c->slot->out, &e, sizeof(e));
	memcpy((char *)c->slot->out + sizeof(e), &o, sizeof(o));
	answer(c, 0, sizeof(e) + sizeof(o));
}

static void op_read(struct ctx *c)
{
	const struct fuse_read_in *in = c->r->arg;
	struct handle *hd = handle_get(c->s, in->fh);
	size_t size = in->size < c->slot->out_cap ? in->size : c->slot->out_cap;
	ssize_t n;

	if (!hd || hd->dir)
		return bad(c, "unknown file handle");
	n = corio_read(hd->fd, c->slot->out, size, (int64_t)in->offset);
	answer(c, (int)(n < 0 ? n : 0), n < 0 ? 0 : (size_t)n);
}

static void op_write(struct ctx *c)
{
	const struct fuse_write_in *in = c->r->arg;
	struct handle *hd = handle_get(c->s, in->fh);
	struct fuse_write_out *out = c->slot->out;
	ssize_t n;

	if (!hd || hd->dir)
		return bad(c, "unknown file handle");
	n = corio_write(hd->fd, c->r->data, in->size, (int64_t)in->offset);
	if (n < 0)
		return answer(c, (int)n, 0);
	memset(out, 0, sizeof(*out));
	out->size = (uint32_t)n;
	answer(c, 0, sizeof(*out));
}

static void op_statfs(struct ctx *c, struct node *nd)
{
	struct fuse_statfs_out *out = c->slot->out;
	struct statfs sf;

	if (fstatfs(nd->fd, &sf) < 0)
		return answer(c, -errno, 0);
	memset(out, 0, sizeof(*out));
	out->st.blocks = sf.f_blocks;
	out->st.bfree = sf.f_bfree;
	out->st.bavail = sf.f_bavail;
	out->st.files = sf.f_files;
	out->st.ffree = sf.f_ffree;
	out->st.bsize = (uint32_t)sf.f_bsize;
	out->st.namelen = (uint32_t)sf.f_namelen;
	out->st.frsize = (uint32_t)sf.f_frsize;
	answer(c, 0, sizeof(*out));
}

static void op_release(struct ctx *c)
{
	const struct fuse_release_in *in = c->r->arg;
	struct handle *hd = handle_get(c->s, in->fh);

	/* A file released as a directory, or the reverse, is not ours. */
	if (!hd || !hd->dir != (c->h->opcode == FUSE_RELEASE))
		return bad(c, "unknown handle");
	hd = handle_take(c->s, in->fh);
	corio_close(hd->fd);
	handle_free(hd);
	answer(c, 0, 0);
}

/* close(2) of a duplicate: what a close would report (NFS reports write
 * errors there), without closing the handle. */
static void op_flush(struct ctx *c)
{
	const struct fuse_flush_in *in = c->r->arg;
	struct handle *hd = handle_get(c->s, in->fh);
	int fd;

	if (!hd)
		return bad(c, "unknown file handle");
	fd = dup(hd->fd);
	answer(c, fd < 0 ? -errno : corio_close(fd), 0);
}

static void op_fsync(struct ctx *c)
{
	const struct fuse_fsync_in *in = c->r->arg;
	struct handle *hd = handle_get(c->s, in->fh);

	if (!hd)
		return bad(c, "unknown handle");
	answer(c, (in->fsync_flags & FUSE_FSYNC_FDATASYNC) ? corio_fdatasync(hd->fd)
							    : corio_fsync(hd->fd), 0);
}

static void op_opendir(struct ctx *c, struct node *nd)
{
	struct fuse_open_out *out = c->slot->out;
	struct dirstream *d = calloc(1, sizeof(*d));
	char path[32];
	uint64_t fh;
	int fd, err;

	if (!d || !(d->buf = malloc(DIRBUF))) {
		free(d);
		return answer(c, -ENOMEM, 0);
	}
	proc_path(path, nd->fd);
	fd = corio_openat(AT_FDCWD, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	if (fd < 0) {
		free(d->buf);
		free(d);
		return answer(c, fd, 0);
	}
	err = handle_new(c->s, fd, d, &fh);
	if (err) {
		corio_close(fd);
		free(d->buf);
		free(d);
		return answer(c, err, 0);
	}
	memset(out, 0, sizeof(*out));
	out->fh = fh;
	answer(c, 0, sizeof(*out));
}

/*
 * READDIR and READDIRPLUS. Entries come from getdents64 into the stream's
 * buffer; an entry's offset for the kernel is the d_off the source gave
 * it, so a READDIR at another offset than where the stream stands is an
 * lseek there. READDIRPLUS looks every entry up (but "." and "..", which
 * the kernel does not instantiate), so each entry it returns holds one
 * lookup reference; an entry that vanished since getdents is skipped.
 */
static void op_readdir(struct ctx *c, struct node *nd)
{
	const struct fuse_read_in *in = c->r->arg;
	bool plus = c->h->opcode == FUSE_READDIRPLUS;
	struct handle *hd = handle_get(c->s, in->fh);
	size_t size = in->size < c->slot->out_cap ? in->size : c->slot->out_cap;
	char *out = c->slot->out;
	struct dirstream *d;
	size_t used = 0;
	int err = 0;

	if (!hd || !hd->dir)
		return bad(c, "unknown directory handle");
	d = hd->dir;
	if ((int64_t)in->offset != d->pos) {
		if (lseek(hd->fd, (off_t)in->offset, SEEK_SET) < 0)
			return answer(c, -errno, 0);
		d->len = d->at = 0;
		d->eof = false;
		d->pos = (int64_t)in->offset;
	}
	for (;;) {
		struct dirent64 *de;
		struct fuse_dirent *fd;
		size_t namelen, head, entsize;

		if (d->at >= d->len) {
			ssize_t n;

			if (d->eof)
				break;
			n = getdents64(hd->fd, d->buf, DIRBUF);
			if (n < 0) {
				err = -errno;
				break;
			}
			if (n == 0) {
				d->eof = true;
				break;
			}
			d->len = (size_t)n;
			d->at = 0;
		}
		de = (struct dirent64 *)(d->buf + d->at);
		namelen = strlen(de->d_name);
		head = plus ? sizeof(struct fuse_entry_out) : 0;
		entsize = head + FUSE_DIRENT_ALIGN(FUSE_NAME_OFFSET + namelen);
		if (used + entsize > size)
			break;
		if (plus) {
			struct fuse_entry_out *e = (void *)(out + used);

			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) {
				memset(e, 0, sizeof(*e));
				e->attr.ino = de->d_ino;
				e->attr.mode = (uint32_t)de->d_type << 12;
			} else {
				err = lookup(c->s, nd, de->d_name, e);
				if (err == -ENOENT) {
					err = 0;
					d->at += de->d_reclen;
					d->pos = de->d_off;
					continue;
				}
				if (err)
					break;
			}
		}
		fd = (void *)(out + used + head);
		fd->ino = de->d_ino;
		fd->off = (uint64_t)de->d_off;
		fd->namelen = (uint32_t)namelen;
		fd->type = de->d_type;
		memcpy(fd->name, de->d_name, namelen);
		/* The padding goes to the kernel too: no stale bytes. */
		memset(fd->name + namelen, 0, entsize - head - FUSE_NAME_OFFSET - namelen);
		used += entsize;
		d->at += de->d_reclen;
		d->pos = de->d_off;
	}
	/* An error after some entries: send those; the next call meets it. */
	answer(c, used ? 0 : err, used);
}

static void op_mkdir(struct ctx *c, struct node *nd)
{
	const struct fuse_mkdir_in *in = c->r->arg;
	int err = corio_mkdirat(nd->fd, c->r->data, in->mode);

	if (err)
		return answer(c, err, 0);
	op_lookup(c, nd);
}

static void op_unlink(struct ctx *c, struct node *nd)
{
	answer(c, corio_unlinkat(nd->fd, c->r->data,
				 c->h->opcode == FUSE_RMDIR ? AT_REMOVEDIR : 0), 0);
}

static void op_rename(struct ctx *c, struct node *nd)
{
	uint64_t newdir;
	unsigned flags = 0;
	const char *oldname = c->r->data, *newname = oldname + strlen(oldname) + 1;
	struct node *to;

	if (c->h->opcode == FUSE_RENAME2) {
		const struct fuse_rename2_in *in = c->r->arg;

		newdir = in->newdir;
		flags = in->flags;
	} else {
		newdir = ((const struct fuse_rename_in *)c->r->arg)->newdir;
	}
	to = node_get(&c->s->nodes, newdir);
	if (!to)
		return bad(c, "unknown target directory");
	answer(c, corio_renameat(nd->fd, oldname, to->fd, newname, flags), 0);
}

/* symlinkat and linkat: io_uring has them (5.15), the epoll backend not. */
static int run_sqe_or(struct io_uring_sqe *sqe, int (*sync)(const struct io_uring_sqe *))
{
	if (corio_op_supported(corio_loop_current(), sqe->opcode))
		return corio_sqe(sqe);
	return sync(sqe);
}

static int symlink_sync(const struct io_uring_sqe *sqe)
{
	return neg(symlinkat((const char *)(uintptr_t)sqe->addr, sqe->fd,
			     (const char *)(uintptr_t)sqe->addr2));
}

static int link_sync(const struct io_uring_sqe *sqe)
{
	return neg(linkat(sqe->fd, (const char *)(uintptr_t)sqe->addr, (int)sqe->len,
			  (const char *)(uintptr_t)sqe->addr2, (int)sqe->hardlink_flags));
}

static void op_symlink(struct ctx *c, struct node *nd)
{
	const char *name = c->r->data, *target = name + strlen(name) + 1;
	struct io_uring_sqe sqe = {0};
	int err;

	io_uring_prep_symlinkat(&sqe, target, nd->fd, name);
	err = run_sqe_or(&sqe, symlink_sync);
	if (err)
		return answer(c, err, 0);
	op_lookup(c, nd);
}

static void op_link(struct ctx *c, struct node *nd)
{
	const struct fuse_link_in *in = c->r->arg;
	struct node *old = node_get(&c->s->nodes, in->oldnodeid);
	struct io_uring_sqe sqe = {0};
	char path[32];
	int err;

	if (!old)
		return bad(c, "unknown inode to link");
	proc_path(path, old->fd);
	/* Through /proc: linking an O_PATH descriptor with AT_EMPTY_PATH
	 * would need CAP_DAC_READ_SEARCH. The magic link is not followed
	 * further, so a symbolic link is linked, not its target. */
	io_uring_prep_linkat(&sqe, AT_FDCWD, path, nd->fd, c->r->data, AT_SYMLINK_FOLLOW);
	err = run_sqe_or(&sqe, link_sync);
	if (err)
		return answer(c, err, 0);
	op_lookup(c, nd);
}

static void op_readlink(struct ctx *c, struct node *nd)
{
	ssize_t n = readlinkat(nd->fd, "", c->slot->out, c->slot->out_cap);

	answer(c, n < 0 ? -errno : 0, n < 0 ? 0 : (size_t)n);
}

static void op_access(struct ctx *c, struct node *nd)
{
	const struct fuse_access_in *in = c->r->arg;
	char path[32];

	proc_path(path, nd->fd);
	answer(c, neg(faccessat(AT_FDCWD, path, (int)in->mask, 0)), 0);
}

static void op_fallocate(struct ctx *c)
{
	const struct fuse_fallocate_in *in = c->r->arg;
	struct handle *hd = handle_get(c->s, in->fh);

	if (!hd || hd->dir)
		return bad(c, "unknown file handle");
	answer(c, corio_fallocate(hd->fd, (int)in->mode, (int64_t)in->offset,
				  (int64_t)in->length), 0);
}

/* ---------------------------------------------------------------- dispatch */

void fuse_handle(struct fuse_server *s, struct fuse_chan *ch, struct fuse_slot *slot,
		 const struct fuse_req *req)
{
	struct ctx c = {.s = s, .ch = ch, .slot = slot, .r = req, .h = req->h};
	uint32_t op = req->h->opcode;
	struct node *nd = NULL;

	if (op == FUSE_INIT)
		return op_init(&c);
	if (!atomic_load_explicit(&s->inited, memory_order_acquire))
		return bad(&c, "request before INIT");
	switch (op) {
	case FUSE_FORGET:
		forget(s, req->h->nodeid, ((const struct fuse_forget_in *)req->arg)->nlookup);
		return;
	case FUSE_BATCH_FORGET:
		return op_batch_forget(&c);
	case FUSE_DESTROY:
		return answer(&c, 0, 0);
	case FUSE_READ:
		return op_read(&c);
	case FUSE_WRITE:
		return op_write(&c);
	case FUSE_RELEASE:
	case FUSE_RELEASEDIR:
		return op_release(&c);
	case FUSE_FLUSH:
		return op_flush(&c);
	case FUSE_FSYNC:
	case FUSE_FSYNCDIR:
		return op_fsync(&c);
	case FUSE_FALLOCATE:
		return op_fallocate(&c);
	}
	nd = node_get(&s->nodes, req->h->nodeid);
	switch (op) {
	case FUSE_LOOKUP:
	case FUSE_GETATTR:
	case FUSE_SETATTR:
	case FUSE_READLINK:
	case FUSE_SYMLINK:
	case FUSE_MKDIR:
	case FUSE_UNLINK:
	case FUSE_RMDIR:
	case FUSE_RENAME:
	case FUSE_RENAME2:
	case FUSE_LINK:
	case FUSE_OPEN:
	case FUSE_CREATE:
	case FUSE_STATFS:
	case FUSE_OPENDIR:
	case FUSE_READDIR:
	case FUSE_READDIRPLUS:
	case FUSE_ACCESS:
		if (!nd)
			return bad(&c, "unknown inode");
		break;
	default:
		atomic_fetch_add_explicit(&s->unknown, 1, memory_order_relaxed);
		return answer(&c, -ENOSYS, 0);
	}
	switch (op) {
	case FUSE_LOOKUP:
		return op_lookup(&c, nd);
	case FUSE_GETATTR:
		return op_getattr(&c, nd);
	case FUSE_SETATTR:
		return op_setattr(&c, nd);
	case FUSE_READLINK:
		return op_readlink(&c, nd);
	case FUSE_SYMLINK:
		return op_symlink(&c, nd);
	case FUSE_MKDIR:
		return op_mkdir(&c, nd);
	case FUSE_UNLINK:
	case FUSE_RMDIR:
		return op_unlink(&c, nd);
	case FUSE_RENAME:
	case FUSE_RENAME2:
		return op_rename(&c, nd);
	case FUSE_LINK:
		return op_link(&c, nd);
	case FUSE_OPEN:
		return op_open(&c, nd);
	case FUSE_CREATE:
		return op_create(&c, nd);
	case FUSE_STATFS:
		return op_statfs(&c, nd);
	case FUSE_OPENDIR:
		return op_opendir(&c, nd);
	case FUSE_READDIR:
	case FUSE_READDIRPLUS:
		return op_readdir(&c, nd);
	case FUSE_ACCESS:
		return op_access(&c, nd);
	}
}
