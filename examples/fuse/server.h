/*
 * The passthrough FUSE server of examples/fuse as a small library: mount a
 * source directory at a mount point and serve it on a pool of loops; stop
 * it. main.c wraps it in a command; tests/test_fuse.c runs it in-process.
 */
#ifndef FUSE_SERVER_H
#define FUSE_SERVER_H

#include <corio.h>

#include "transport.h"

struct fuse_server;

/* Zero fields take the default shown. */
struct fuse_server_opts {
	const char *source;	/* the directory mirrored (required) */
	const char *mountpoint; /* NULL: no mount, the transport brings requests (tests) */
	unsigned threads;	/* loops; 0: one per CPU of the affinity mask */
	unsigned readers;	/* reads in flight per loop when idle; 0: 4 */
	unsigned max_workers;	/* request fibers per loop at most; 0: 64 */
	int64_t timeout_ns;	/* how long the kernel may cache names and attributes;
				   0: 1 s; negative: not at all */
	bool writeback;		/* FUSE_WRITEBACK_CACHE: the kernel caches writes */
	const struct fuse_transport *transport; /* NULL: /dev/fuse */
	void *transport_arg;
	struct corio_loop_opts loop; /* options of every loop */
};

/*
 * Open the source, mount (as root, with mount(2)) and start serving.
 * Returns 0 or -errno; on failure @why (if not NULL) gets a sentence saying
 * what went wrong (a missing or busy mount point, a dead mount left by a
 * killed server, no /dev/fuse, not root...). Sets the process's umask to 0,
 * as passthrough servers do: the kernel has applied the caller's umask to
 * the modes it sends.
 */
int fuse_server_start(struct fuse_server **out, const struct fuse_server_opts *opts, char *why,
		      size_t whylen);

/*
 * Stop: unmount (lazily if the mount is busy: processes with files open on
 * it then get ENOTCONN), stop reading requests, let the requests being
 * handled finish and answer (for up to 5 s; then they are cancelled), close
 * every descriptor and free. Not from a loop of the server.
 */
void fuse_server_stop(struct fuse_server *s);

/* A descriptor (eventfd) that becomes readable when the connection ended
 * by itself (unmounted from outside, aborted): time to call stop. */
int fuse_server_end_fd(const struct fuse_server *s);

struct fuse_server_stats {
	uint64_t requests;     /* read from the transport */
	uint64_t bad_requests; /* answered EIO because they could not be parsed */
	uint64_t unknown;      /* answered ENOSYS */
	uint64_t nodes;	       /* inodes the kernel holds (the root included) */
	uint64_t handles;      /* open files and directories */
	bool lazy_unmount;     /* stop found the mount busy and detached it */
};
void fuse_server_stats(const struct fuse_server *s, struct fuse_server_stats *st);

/* The number of loops. */
unsigned fuse_server_threads(const struct fuse_server *s);

#endif
