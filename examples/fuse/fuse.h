/*
 * The FUSE server's internal types: the server, its table of inodes (each
 * an O_PATH descriptor of the source), its table of open files and
 * directories, and the request handlers.
 *
 * Threads. Every loop of the pool reads requests from the same kernel queue
 * (cloned descriptors share it), so any loop may handle any inode or
 * handle. The tables are shared: a lookup by id is lock-free (ids index a
 * two-level array whose chunks never move), and what changes them (a new
 * inode, a forget, an open, a release) takes the table's pthread mutex for
 * a few instructions, never across a fiber switch. The kernel guarantees
 * that no request names an inode after its FORGET or a handle after its
 * RELEASE, so lock-free readers never see freed memory.
 */
#ifndef FUSE_INTERNAL_H
#define FUSE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "server.h"

/* ---------------------------------------------------------------- tables */

#define TABLE_CHUNK_BITS 12
#define TABLE_CHUNK (1u << TABLE_CHUNK_BITS)
#define TABLE_CHUNKS 4096u /* 16 Mi ids */

/* Ids to pointers. Readers: table_get, lock-free. Writers: under lock. */
struct table {
	_Atomic(_Atomic(void *) *) chunks[TABLE_CHUNKS];
	uint32_t *free;
	size_t nfree, free_cap;
	uint64_t next; /* the lowest id never handed out */
	uint64_t count;
};

void *table_get(struct table *t, uint64_t id);
/* Under the owner's lock: a free id for @p (0 if none: out of memory). */
uint64_t table_put(struct table *t, void *p);
void table_del(struct table *t, uint64_t id);
void table_free(struct table *t);

/* ---------------------------------------------------------------- inodes */

struct node {
	uint64_t id;
	uint64_t gen;
	int fd; /* O_PATH | O_NOFOLLOW */
	uint64_t dev, ino;
	uint64_t nlookup; /* under nodes.lock */
	struct node *hnext;
};

struct nodes {
	pthread_mutex_t lock;
	struct table ids;
	struct node **hash; /* by (dev, ino) */
	size_t nbuckets;
	uint64_t gen;
};

struct statx;

int nodes_init(struct nodes *n, int rootfd, const struct statx *st);
/* Close every descriptor and free (the server is stopped). */
void nodes_free(struct nodes *n);
struct node *node_get(struct nodes *n, uint64_t id);
/* The inode of @st if known, with one more lookup reference; or NULL. */
struct node *node_ref(struct nodes *n, const struct statx *st);
/* Add @fd (an O_PATH descriptor of @st) as a new inode with one lookup
 * reference, or, if another fiber added it meanwhile, take a reference on
 * that one and set *dup (the caller closes @fd). NULL: out of memory. */
struct node *node_add(struct nodes *n, int fd, const struct statx *st, bool *dup);
/* Drop @count lookup references; returns the descriptor to close when the
 * inode goes (-1 if it stays). */
int node_forget(struct nodes *n, uint64_t id, uint64_t count);
uint64_t nodes_count(struct nodes *n);

/* ------------------------------------------------------- open files, dirs */

struct dirstream {
	char *buf;
	size_t len, at; /* getdents64 bytes in buf; the next entry's offset */
	int64_t pos;	/* directory offset after the entries returned so far */
	bool eof;
};

struct handle {
	int fd;
	struct dirstream *dir; /* NULL for a file */
};

struct handles {
	pthread_mutex_t lock;
	struct table ids;
};

/* ---------------------------------------------------------------- server */

struct floop; /* per loop: server.c */

struct fuse_server {
	struct fuse_server_opts o;
	const struct fuse_transport *t;
	char *source, *mnt;
	int devfd;   /* the /dev/fuse descriptor that was mounted, or -1 */
	bool mounted;
	int endfd;   /* eventfd: the connection ended by itself */
	int64_t timeout_ns;
	size_t max_write, max_read;
	struct nodes nodes;
	struct handles handles;

	/* Set by INIT (once, on whichever loop reads it). */
	atomic_bool inited;
	uint32_t minor;

	corio_pool *pool;
	unsigned nloops;
	struct floop **loops;
	atomic_bool stopping;

	pthread_mutex_t wlock; /* live workers, for stop; loops started */
	pthread_cond_t wcond;
	unsigned workers;
	unsigned started; /* loops whose on_start has finished */

	atomic_uint_fast64_t requests, bad_requests, unknown;
	bool lazy_unmount;
};

/* ops.c: handle one parsed request (from a worker fiber) and answer it. */
void fuse_handle(struct fuse_server *s, struct fuse_chan *ch, struct fuse_slot *slot,
		 const struct fuse_req *req);
/* Answer @unique with @error (0 or -errno) and @len bytes of slot->out. */
void fuse_reply(struct fuse_server *s, struct fuse_chan *ch, struct fuse_slot *slot,
		uint64_t unique, int error, size_t len);
/* Count and log (the first few, then one in a thousand) a request the
 * server cannot parse or serve. */
void fuse_log_bad(struct fuse_server *s, const struct fuse_in_header *h, const char *why);

/* Close every handle still open (stop). */
void handles_close_all(struct handles *h);

#endif
