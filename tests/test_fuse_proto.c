/*
 * The FUSE server's protocol handling, without the kernel: the test plays
 * the kernel over a SOCK_SEQPACKET socket pair, through a transport of its
 * own (the interface of examples/fuse/transport.h), and sends what the
 * kernel never would: requests cut short, lengths that lie, names that are
 * paths, unknown inodes and handles, unknown opcodes. Each must get EIO (or
 * ENOSYS), be counted and logged, and the server must go on serving.
 * Runs without root.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "server.h"
#include "util.h"

/* ---------------------------------------------- the test's transport */

struct fuse_chan {
	int fd;
};

struct tslot {
	char *in;
	size_t cap;
};

static int sp_chan_open(struct fuse_server *s, unsigned index, struct fuse_chan **out)
{
	struct fuse_chan *ch = calloc(1, sizeof(*ch));

	(void)index;
	if (!ch)
		return -ENOMEM;
	ch->fd = *(int *)fuse_server_transport_arg(s);
	*out = ch;
	return 0;
}

static void sp_chan_close(struct fuse_chan *ch)
{
	free(ch);
}

static int sp_slot_init(struct fuse_chan *ch, struct fuse_slot *slot)
{
	struct tslot *t = calloc(1, sizeof(*t));

	(void)ch;
	if (!t)
		return -ENOMEM;
	t->cap = 65536;
	t->in = malloc(t->cap);
	slot->out_cap = 65536;
	if (!t->in || posix_memalign(&slot->out, 4096, slot->out_cap)) {
		free(t->in);
		free(t);
		return -ENOMEM;
	}
	slot->priv = t;
	return 0;
}

static void sp_slot_free(struct fuse_chan *ch, struct fuse_slot *slot)
{
	struct tslot *t = slot->priv;

	(void)ch;
	free(t->in);
	free(t);
	free(slot->out);
}

static int sp_recv(struct fuse_chan *ch, struct fuse_slot *slot, struct fuse_req *req)
{
	struct tslot *t = slot->priv;
	ssize_t n = corio_recv(ch->fd, t->in, t->cap, 0);
	int err;

	if (n == 0)
		return -ENODEV; /* the "kernel" went away */
	if (n < 0)
		return (int)n;
	err = fuse_parse(t->in, (size_t)n, req);
	return err == -ENOSYS ? 0 : err;
}

static int sp_send(struct fuse_chan *ch, struct fuse_slot *slot, uint64_t unique, int error,
		   size_t len)
{
	struct fuse_out_header oh = {.unique = unique, .error = error};
	struct iovec iov[2] = {{&oh, sizeof(oh)}, {slot->out, error ? 0 : len}};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 2};
	ssize_t n;

	oh.len = (uint32_t)(sizeof(oh) + iov[1].iov_len);
	n = corio_sendmsg(ch->fd, &mh, 0);
	return n < 0 ? (int)n : 0;
}

static const struct fuse_transport sp_transport = {
	.name = "socketpair",
	.chan_open = sp_chan_open,
	.chan_close = sp_chan_close,
	.slot_init = sp_slot_init,
	.slot_free = sp_slot_free,
	.recv = sp_recv,
	.send = sp_send,
};

/* ------------------------------------------------------ the "kernel" */

struct kern {
	char *src;
	int fd, server_fd;
	struct fuse_server *s;
	uint64_t unique;
};

struct answer {
	struct fuse_out_header h;
	char body[65536];
};

static void k_start(struct kern *k)
{
	struct fuse_server_opts o = {0};
	struct timeval tv = {.tv_sec = 30};
	char why[256];
	int sv[2];

	memset(k, 0, sizeof(*k));
	k->src = t_tmpdir();
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	k->fd = sv[0];
	k->server_fd = sv[1];
	/* A server that stops answering fails the test instead of hanging it. */
	setsockopt(k->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	o.source = k->src;
	o.threads = 1;
	o.readers = 2;
	o.transport = &sp_transport;
	o.transport_arg = &k->server_fd;
	assert_int_equal(fuse_server_start(&k->s, &o, why, sizeof(why)), 0);
}

static void k_stop(struct kern *k)
{
	fuse_server_stop(k->s);
	close(k->fd);
	close(k->server_fd);
	t_rmdir_r(k->src);
	free(k->src);
}

/* Send raw bytes as one request. */
static void k_send_raw(struct kern *k, const void *buf, size_t len)
{
	assert_int_equal(send(k->fd, buf, len, 0), (ssize_t)len);
}

/* Send a request: header (len, unique filled in), @arg, then @data. */
static uint64_t k_send(struct kern *k, uint32_t opcode, uint64_t nodeid, const void *arg,
		       size_t arglen, const void *data, size_t datalen)
{
	struct fuse_in_header h = {.opcode = opcode, .nodeid = nodeid, .unique = ++k->unique};
	char buf[8192];

	h.len = (uint32_t)(sizeof(h) + arglen + datalen);
	assert_true(h.len <= sizeof(buf));
	memcpy(buf, &h, sizeof(h));
	if (arglen)
		memcpy(buf + sizeof(h), arg, arglen);
	if (datalen)
		memcpy(buf + sizeof(h) + arglen, data, datalen);
	k_send_raw(k, buf, h.len);
	return h.unique;
}

/* The next answer: it must be for @unique; returns its error. */
static int k_answer(struct kern *k, uint64_t unique, struct answer *a)
{
	ssize_t n;

	do
		n = recv(k->fd, a, sizeof(*a), 0);
	while (n < 0 && errno == EINTR);
	assert_true(n >= (ssize_t)sizeof(a->h));
	assert_int_equal(a->h.len, n);
	assert_int_equal(a->h.unique, unique);
	return a->h.error;
}

static int k_call(struct kern *k, uint32_t opcode, uint64_t nodeid, const void *arg,
		  size_t arglen, const void *data, size_t datalen, struct answer *a)
{
	return k_answer(k, k_send(k, opcode, nodeid, arg, arglen, data, datalen), a);
}

static void k_init(struct kern *k)
{
	struct fuse_init_in in = {.major = 7, .minor = 38, .max_readahead = 131072,
				  .flags = FUSE_ASYNC_READ | FUSE_MAX_PAGES | FUSE_DO_READDIRPLUS};
	struct answer a;
	struct fuse_init_out *out = (void *)a.body;

	assert_int_equal(k_call(k, FUSE_INIT, 0, &in, sizeof(in), NULL, 0, &a), 0);
	assert_int_equal(a.h.len, sizeof(a.h) + sizeof(*out));
	assert_int_equal(out->major, 7);
	assert_int_equal(out->max_write, 1 << 20);
	assert_int_equal(out->max_pages, 256);
	/* only what the kernel offered, and not all of it */
	assert_int_equal(out->flags & ~in.flags, 0);
	assert_true(out->flags & FUSE_MAX_PAGES);
}

/* ------------------------------------------------------------- tests */

/* A request before INIT, then INIT, then a normal lookup and read. */
static void serves(void **state)
{
	struct kern k;
	struct answer a;
	struct fuse_getattr_in ga = {0};
	struct fuse_open_in oi = {.flags = O_RDONLY};
	struct fuse_read_in ri = {.size = 100};
	struct fuse_entry_out *e = (void *)a.body;
	struct fuse_open_out *oo = (void *)a.body;
	char path[PATH_MAX];
	uint64_t node;
	int fd;

	(void)state;
	k_start(&k);
	snprintf(path, sizeof(path), "%s/hello", k.src);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_int_equal(write(fd, "hello, fuse", 11), 11);
	close(fd);

	assert_int_equal(k_call(&k, FUSE_GETATTR, FUSE_ROOT_ID, &ga, sizeof(ga), NULL, 0, &a),
			 -EIO);
	k_init(&k);
	assert_int_equal(k_call(&k, FUSE_GETATTR, FUSE_ROOT_ID, &ga, sizeof(ga), NULL, 0, &a), 0);
	assert_true(S_ISDIR(((struct fuse_attr_out *)a.body)->attr.mode));

	assert_int_equal(k_call(&k, FUSE_LOOKUP, FUSE_ROOT_ID, NULL, 0, "nothing", 8, &a),
			 -ENOENT);
	assert_int_equal(k_call(&k, FUSE_LOOKUP, FUSE_ROOT_ID, NULL, 0, "hello", 6, &a), 0);
	assert_int_equal(e->attr.size, 11);
	node = e->nodeid;
	assert_int_equal(k_call(&k, FUSE_OPEN, node, &oi, sizeof(oi), NULL, 0, &a), 0);
	ri.fh = oo->fh;
	assert_int_equal(k_call(&k, FUSE_READ, node, &ri, sizeof(ri), NULL, 0, &a), 0);
	assert_int_equal(a.h.len, sizeof(a.h) + 11);
	assert_memory_equal(a.body, "hello, fuse", 11);
	k_stop(&k);
}

/* Everything malformed gets EIO (or nothing, without a header), is
 * counted, and the server keeps serving. */
static void bad_requests(void **state)
{
	struct kern k;
	struct answer a;
	struct fuse_server_stats st;
	struct fuse_getattr_in ga = {0};
	struct fuse_read_in ri = {.fh = 12345, .size = 10};
	struct fuse_write_in wi = {.size = 100};
	struct fuse_batch_forget_in bf = {.count = 1000};
	struct fuse_in_header h = {.opcode = FUSE_GETATTR, .nodeid = 1};
	char buf[256], log[4096];
	uint64_t u;
	int saved, logfd;
	ssize_t n;
	unsigned bad = 0;

	(void)state;
	k_start(&k);
	k_init(&k);

	/* The first bad request is logged, with what is wrong. */
	snprintf(log, sizeof(log), "%s.log", k.src);
	logfd = open(log, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(logfd >= 0);
	fflush(stderr);
	saved = dup(2);
	dup2(logfd, 2);
	/* the length field lies */
	h.len = 1000;
	h.unique = ++k.unique;
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &ga, sizeof(ga));
	k_send_raw(&k, buf, sizeof(h) + sizeof(ga));
	assert_int_equal(k_answer(&k, h.unique, &a), -EIO);
	bad++;
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(logfd, log, sizeof(log) - 1, 0);
	assert_true(n > 0);
	log[n] = 0;
	assert_non_null(strstr(log, "bad request"));
	assert_non_null(strstr(log, "length"));
	close(logfd);
	snprintf(log, sizeof(log), "%s.log", k.src);
	unlink(log);

	/* cut short: no room for the argument */
	assert_int_equal(k_call(&k, FUSE_GETATTR, 1, &ga, 4, NULL, 0, &a), -EIO), bad++;
	/* names: missing NUL, empty, a path, dot-dot */
	assert_int_equal(k_call(&k, FUSE_LOOKUP, 1, NULL, 0, "abc", 3, &a), -EIO), bad++;
	assert_int_equal(k_call(&k, FUSE_LOOKUP, 1, NULL, 0, "", 1, &a), -EIO), bad++;
	assert_int_equal(k_call(&k, FUSE_LOOKUP, 1, NULL, 0, "../etc", 7, &a), -EIO), bad++;
	assert_int_equal(k_call(&k, FUSE_LOOKUP, 1, NULL, 0, "..", 3, &a), -EIO), bad++;
	assert_int_equal(k_call(&k, FUSE_UNLINK, 1, NULL, 0, "a/b", 4, &a), -EIO), bad++;
	/* rename with one name only */
	struct fuse_rename_in rn = {.newdir = 1};
	assert_int_equal(k_call(&k, FUSE_RENAME, 1, &rn, sizeof(rn), "a", 2, &a), -EIO), bad++;
	/* no inode, an unknown inode, an unknown handle */
	assert_int_equal(k_call(&k, FUSE_GETATTR, 0, &ga, sizeof(ga), NULL, 0, &a), -EIO), bad++;
	assert_int_equal(k_call(&k, FUSE_GETATTR, 999, &ga, sizeof(ga), NULL, 0, &a), -EIO), bad++;
	assert_int_equal(k_call(&k, FUSE_GETATTR, (uint64_t)1 << 40, &ga, sizeof(ga), NULL, 0, &a),
			 -EIO), bad++;
	assert_int_equal(k_call(&k, FUSE_READ, 1, &ri, sizeof(ri), NULL, 0, &a), -EIO), bad++;
	/* a write shorter than it says; a batch of forgets likewise */
	assert_int_equal(k_call(&k, FUSE_WRITE, 1, &wi, sizeof(wi), "xyz", 3, &a), -EIO), bad++;
	assert_int_equal(k_call(&k, FUSE_BATCH_FORGET, 0, &bf, sizeof(bf), NULL, 0, &a), -EIO),
		bad++;
	/* INIT twice */
	struct fuse_init_in ii = {.major = 7, .minor = 38};
	assert_int_equal(k_call(&k, FUSE_INIT, 0, &ii, sizeof(ii), NULL, 0, &a), -EIO), bad++;
	/* shorter than a header: nothing to answer; the next answer is the
	 * next request's */
	k_send_raw(&k, "tiny", 4);
	bad++;

	/* unknown opcodes: ENOSYS, which the kernel remembers */
	assert_int_equal(k_call(&k, FUSE_GETXATTR, 1, &ga, sizeof(ga), NULL, 0, &a), -ENOSYS);
	assert_int_equal(k_call(&k, 4000, 1, NULL, 0, NULL, 0, &a), -ENOSYS);

	/* and it still serves */
	u = k_send(&k, FUSE_GETATTR, 1, &ga, sizeof(ga), NULL, 0);
	assert_int_equal(k_answer(&k, u, &a), 0);
	fuse_server_stats(k.s, &st);
	assert_int_equal(st.bad_requests, bad);
	assert_int_equal(st.unknown, 2);
	k_stop(&k);
}

/* The parser alone, on the edges of each check. */
static void parse(void **state)
{
	struct {
		struct fuse_in_header h;
		struct fuse_write_in w;
		char data[8];
	} rq = {.h = {.opcode = FUSE_WRITE, .nodeid = 2}, .w = {.size = 8}};
	struct fuse_req r;

	(void)state;
	rq.h.len = sizeof(rq);
	assert_int_equal(fuse_parse(&rq, sizeof(rq), &r), 0);
	assert_ptr_equal(r.arg, &rq.w);
	assert_ptr_equal(r.data, rq.data);
	assert_int_equal(r.datalen, 8);
	/* extensions are cut off the end: then the data is short */
	rq.h.total_extlen = 1;
	assert_int_equal(fuse_parse(&rq, sizeof(rq), &r), -EBADMSG);
	rq.w.size = 0;
	assert_int_equal(fuse_parse(&rq, sizeof(rq), &r), 0);
	assert_int_equal(r.datalen, 0);
	rq.h.total_extlen = 3; /* more than there is */
	assert_int_equal(fuse_parse(&rq, sizeof(rq), &r), -EBADMSG);
	rq.h.total_extlen = 0;
	assert_int_equal(fuse_parse(&rq, 10, &r), -EBADMSG);
	assert_null(r.h);
	rq.h.opcode = 1000;
	assert_int_equal(fuse_parse(&rq, sizeof(rq), &r), -ENOSYS);
	assert_non_null(r.h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse),
		cmocka_unit_test(serves),
		cmocka_unit_test(bad_requests),
	};

	corio_loop_destroy(t_loop()); /* exits 77 if this backend cannot run */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
