/*
 * Layer op: the table of opcodes (opdef.c), in the spirit of the kernel's
 * io_uring/opdef.c. Everything corio knows about an io_uring opcode, beyond
 * how its typed call prepares it (io.c), is one row here: its name, its
 * flags and multishot form, what its completion writes, and how a backend
 * without io_uring runs it. The layers read the row instead of switching on
 * the opcode.
 *
 * The system calls that run an op without io_uring are opsys.c's: the
 * epoll backend calls them (a nonblocking attempt, or the blocking call on
 * its thread pool), and so can any path that wants an op done at once.
 */
#ifndef CORIO_OPDEF_H
#define CORIO_OPDEF_H

#include <liburing.h>

#include "base.h"

struct corio__op;

/* Opcodes the table has room for. io_uring's own count must fit, so that a
 * newer liburing with more opcodes fails the build until rows are added. */
#define CORIO__OP_MAX 64
_Static_assert(IORING_OP_LAST <= CORIO__OP_MAX, "more io_uring opcodes than opdef rows");

#ifndef IORING_OP_READ_MULTISHOT
#define IORING_OP_READ_MULTISHOT 49 /* Linux 6.7 */
#endif
#ifndef IORING_TIMEOUT_MULTISHOT
#define IORING_TIMEOUT_MULTISHOT (1U << 6) /* Linux 6.4 */
#endif

/* Where an SQE carries the opcode's own flags (multishot and the like). */
enum corio__opfield {
	CORIO__FIELD_NONE,
	CORIO__FIELD_IOPRIO,	    /* sqe->ioprio: accept, recv, send */
	CORIO__FIELD_LEN,	    /* sqe->len: poll */
	CORIO__FIELD_TIMEOUT_FLAGS, /* sqe->timeout_flags */
	CORIO__FIELD_ALWAYS,	    /* no flag: every such op is multishot */
};

/* What a completion wrote into the caller's memory, for tools that cannot
 * see the kernel write (valgrind). */
enum corio__opwrites {
	CORIO__WRITES_NOTHING,
	CORIO__WRITES_BUF,	/* res bytes at addr */
	CORIO__WRITES_IOV,	/* res bytes over the len iovecs at addr */
	CORIO__WRITES_MSG,	/* the msghdr at addr: iovecs, name, control */
	CORIO__WRITES_STATX,	/* a struct statx at addr2 */
	CORIO__WRITES_SOCKADDR, /* an address at addr, its length at addr2 (if set) */
};

/* How a backend without io_uring (epoll and its thread pool) runs it. */
enum corio__oprun {
	CORIO__RUN_NONE,    /* it cannot: -EOPNOTSUPP */
	CORIO__RUN_INLINE,  /* call() at once, in the start call: it never blocks */
	CORIO__RUN_READY,   /* attempt(); on -EAGAIN wait in a queue for readiness */
	CORIO__RUN_RW,	    /* a file or block device: call() on the pool; else as READY */
	CORIO__RUN_POOL,    /* call() on the pool: it may block on a disk */
	CORIO__RUN_ACCEPT,  /* READY on a listener made nonblocking */
	CORIO__RUN_CONNECT, /* nonblocking connect, then attempt() on writability */
	CORIO__RUN_POLL,    /* look now, then wait for the events */
	CORIO__RUN_CLOSE,   /* call() inline for a socket or pipe, else on the pool */
};

/* Which of an fd's readiness queues a waiting op joins. */
enum corio__opqueue {
	CORIO__Q_READ,
	CORIO__Q_WRITE,
	CORIO__Q_POLL,
	CORIO__NQUEUES,
};

/* How a caller says "do not wait" (then -EAGAIN comes back, as from
 * io_uring, instead of a wait for readiness). */
enum corio__opnowait {
	CORIO__NOWAIT_NONE,
	CORIO__NOWAIT_MSG, /* MSG_DONTWAIT in msg_flags */
	CORIO__NOWAIT_RW,  /* RWF_NOWAIT in rw_flags */
};

/* What the result is, beyond a count. */
enum corio__opresult {
	CORIO__RESULT_PLAIN,
	CORIO__RESULT_SOCKET, /* a new socket: accept, socket */
	CORIO__RESULT_FD,     /* a new descriptor of any kind: openat */
};

/*
 * The progress of one op's system calls, kept by the backend that runs it
 * between attempts (opsys.c reads and writes it).
 */
struct corio__sys {
	uint32_t done; /* MSG_WAITALL: bytes moved so far (at most sqe->len) */
	uint8_t flags; /* CORIO__SYS_* */
};

#define CORIO__SYS_PLAIN 0x01	   /* the file lacks RWF_NOWAIT: poll, then the plain call */
#define CORIO__SYS_NO_CHECK 0x02   /* call(): do not check that the fd is a file */
#define CORIO__SYS_SOCK_KNOWN 0x04 /* MSG_WAITALL: socket type looked up ... */
#define CORIO__SYS_SOCK_SEQ 0x08   /* ... and it keeps byte order (stream, seqpacket) */
#define CORIO__SYS_HUP 0x10	   /* the peer's hang-up or an error was reported: a
				    * short recv tries again, to find the end */

/* Answers of attempt() and call() that are not results, outside errno's
 * range (compare the kernel's IOU_REQUEUE). */
#define CORIO__SYS_NOT_A_FILE (-5000) /* call(): the fd is not a file; wait for readiness */
#define CORIO__SYS_NEED_PLAIN (-5001) /* attempt(): the file refuses RWF_NOWAIT */

struct corio__opdef {
	const char *name;
	uint8_t field;	     /* enum corio__opfield: where its flags are */
	uint32_t multishot;  /* flags in that field that make it multishot */
	uint32_t uring_only; /* flags in that field only io_uring honours */
	bool notif;	     /* CORIO_F_MORE announces a notification, not more results */
	bool direct_result;  /* file_index may ask for the result in a direct slot */
	bool proves_socket;  /* success means the fd is a socket */
	uint8_t writes;	     /* enum corio__opwrites */
	uint8_t run;	     /* enum corio__oprun */
	uint8_t queue;	     /* enum corio__opqueue (READY, RW, ACCEPT, CONNECT, POLL) */
	uint8_t nowait;	     /* enum corio__opnowait */
	uint8_t result;	     /* enum corio__opresult */
	/* One nonblocking try: the result, or -EAGAIN to wait for readiness. */
	int (*attempt)(struct corio__op *op, struct corio__sys *st);
	/* The call itself, which may block (on a pool thread unless INLINE). */
	int (*call)(struct corio__op *op, struct corio__sys *st);
};

extern const struct corio__opdef corio__opdefs[CORIO__OP_MAX];
extern const struct corio__opdef corio__opdef_unknown;

static inline const struct corio__opdef *corio__opdef(unsigned opcode)
{
	return CORIO_LIKELY(opcode < CORIO__OP_MAX) ? &corio__opdefs[opcode] : &corio__opdef_unknown;
}

/* The opcode's name ("read", ...), or NULL for one the table lacks. */
static inline const char *corio__opname(unsigned opcode)
{
	return corio__opdef(opcode)->name;
}

/* The SQE's opcode flags, from where its row says they are. */
static inline uint32_t corio__sqe_opflags(const struct io_uring_sqe *sqe,
					  const struct corio__opdef *d)
{
	switch (d->field) {
	case CORIO__FIELD_IOPRIO:
		return sqe->ioprio;
	case CORIO__FIELD_LEN:
		return sqe->len;
	case CORIO__FIELD_TIMEOUT_FLAGS:
		return sqe->timeout_flags;
	case CORIO__FIELD_ALWAYS:
		return ~0u;
	default:
		return 0;
	}
}

/* Whether the SQE asks for a multishot op (many completions). */
static inline bool corio__sqe_multishot(const struct io_uring_sqe *sqe)
{
	const struct corio__opdef *d = corio__opdef(sqe->opcode);

	return corio__sqe_opflags(sqe, d) & d->multishot;
}

/* The system calls the rows name (opsys.c). */
int corio__sys_nop(struct corio__op *op, struct corio__sys *st);
int corio__sys_recv_send(struct corio__op *op, struct corio__sys *st);
int corio__sys_recvmsg(struct corio__op *op, struct corio__sys *st);
int corio__sys_sendmsg(struct corio__op *op, struct corio__sys *st);
int corio__sys_accept(struct corio__op *op, struct corio__sys *st);
int corio__sys_connect(struct corio__op *op, struct corio__sys *st);
int corio__sys_rw_nowait(struct corio__op *op, struct corio__sys *st);
int corio__sys_rw_file(struct corio__op *op, struct corio__sys *st);
int corio__sys_fsync(struct corio__op *op, struct corio__sys *st);
int corio__sys_openat(struct corio__op *op, struct corio__sys *st);
int corio__sys_close(struct corio__op *op, struct corio__sys *st);
int corio__sys_statx(struct corio__op *op, struct corio__sys *st);
int corio__sys_fallocate(struct corio__op *op, struct corio__sys *st);
int corio__sys_unlinkat(struct corio__op *op, struct corio__sys *st);
int corio__sys_renameat(struct corio__op *op, struct corio__sys *st);
int corio__sys_mkdirat(struct corio__op *op, struct corio__sys *st);
int corio__sys_socket(struct corio__op *op, struct corio__sys *st);
int corio__sys_shutdown(struct corio__op *op, struct corio__sys *st);

#endif
