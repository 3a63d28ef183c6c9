/*
 * The table of opcodes: one row per io_uring opcode (opdef.h says what
 * each field means). An opcode without a row, or with only a name, is one
 * corio passes through to io_uring (corio_sqe) and the epoll backend
 * refuses with -EOPNOTSUPP.
 *
 * Adding an operation: its row here, its prep function and typed calls in
 * io.c (with their declarations in corio/io.h and corio/async.h), and, if
 * a backend without io_uring should run it, the system call in opsys.c
 * that the row names.
 */
#include "op.h"

#define IOPRIO CORIO__FIELD_IOPRIO
#define RECV_MS IORING_RECV_MULTISHOT
#define FIXED_BUF IORING_RECVSEND_FIXED_BUF

/* A row reads better a few fields to the line than one field per line. */
/* clang-format off */
const struct corio__opdef corio__opdefs[CORIO__OP_MAX] = {
	[IORING_OP_NOP] = {
		.name = "nop",
		.run = CORIO__RUN_INLINE, .call = corio__sys_nop,
	},
	[IORING_OP_READV] = {
		.name = "readv", .writes = CORIO__WRITES_IOV,
		.run = CORIO__RUN_RW, .queue = CORIO__Q_READ, .nowait = CORIO__NOWAIT_RW,
		.attempt = corio__sys_rw_nowait, .call = corio__sys_rw_file,
	},
	[IORING_OP_WRITEV] = {
		.name = "writev",
		.run = CORIO__RUN_RW, .queue = CORIO__Q_WRITE, .nowait = CORIO__NOWAIT_RW,
		.attempt = corio__sys_rw_nowait, .call = corio__sys_rw_file,
	},
	[IORING_OP_FSYNC] = {
		.name = "fsync",
		.run = CORIO__RUN_POOL, .call = corio__sys_fsync,
	},
	[IORING_OP_READ_FIXED] = {.name = "read_fixed"},
	[IORING_OP_WRITE_FIXED] = {.name = "write_fixed"},
	[IORING_OP_POLL_ADD] = {
		.name = "poll",
		.field = CORIO__FIELD_LEN, .multishot = IORING_POLL_ADD_MULTI,
		.uring_only = IORING_POLL_ADD_MULTI | IORING_POLL_UPDATE_EVENTS |
			      IORING_POLL_UPDATE_USER_DATA,
		.run = CORIO__RUN_POLL, .queue = CORIO__Q_POLL,
	},
	[IORING_OP_POLL_REMOVE] = {.name = "poll_remove"},
	[IORING_OP_SYNC_FILE_RANGE] = {.name = "sync_file_range"},
	[IORING_OP_SENDMSG] = {
		.name = "sendmsg",
		.field = IOPRIO, .uring_only = FIXED_BUF, .proves_socket = true,
		.run = CORIO__RUN_READY, .queue = CORIO__Q_WRITE, .nowait = CORIO__NOWAIT_MSG,
		.attempt = corio__sys_sendmsg,
	},
	[IORING_OP_RECVMSG] = {
		.name = "recvmsg", .writes = CORIO__WRITES_MSG,
		.field = IOPRIO, .multishot = RECV_MS, .uring_only = RECV_MS | FIXED_BUF,
		.proves_socket = true,
		.run = CORIO__RUN_READY, .queue = CORIO__Q_READ, .nowait = CORIO__NOWAIT_MSG,
		.attempt = corio__sys_recvmsg,
	},
	[IORING_OP_TIMEOUT] = {
		.name = "timeout",
		.field = CORIO__FIELD_TIMEOUT_FLAGS, .multishot = IORING_TIMEOUT_MULTISHOT,
	},
	[IORING_OP_TIMEOUT_REMOVE] = {.name = "timeout_remove"},
	[IORING_OP_ACCEPT] = {
		.name = "accept", .writes = CORIO__WRITES_SOCKADDR,
		.field = IOPRIO, .multishot = IORING_ACCEPT_MULTISHOT,
		.uring_only = IORING_ACCEPT_MULTISHOT, .direct_result = true,
		.result = CORIO__RESULT_SOCKET,
		.run = CORIO__RUN_ACCEPT, .queue = CORIO__Q_READ,
		.attempt = corio__sys_accept,
	},
	[IORING_OP_ASYNC_CANCEL] = {.name = "async_cancel"},
	[IORING_OP_LINK_TIMEOUT] = {.name = "link_timeout"},
	[IORING_OP_CONNECT] = {
		.name = "connect",
		.run = CORIO__RUN_CONNECT, .queue = CORIO__Q_WRITE,
		.attempt = corio__sys_connect,
	},
	[IORING_OP_FALLOCATE] = {
		.name = "fallocate",
		.run = CORIO__RUN_POOL, .call = corio__sys_fallocate,
	},
	[IORING_OP_OPENAT] = {
		.name = "openat",
		.direct_result = true, .result = CORIO__RESULT_FD,
		.run = CORIO__RUN_POOL, .call = corio__sys_openat,
	},
	[IORING_OP_CLOSE] = {
		.name = "close",
		.direct_result = true,
		.run = CORIO__RUN_CLOSE, .call = corio__sys_close,
	},
	[IORING_OP_FILES_UPDATE] = {.name = "files_update"},
	[IORING_OP_STATX] = {
		.name = "statx", .writes = CORIO__WRITES_STATX,
		.run = CORIO__RUN_POOL, .call = corio__sys_statx,
	},
	[IORING_OP_READ] = {
		.name = "read", .writes = CORIO__WRITES_BUF,
		.run = CORIO__RUN_RW, .queue = CORIO__Q_READ, .nowait = CORIO__NOWAIT_RW,
		.attempt = corio__sys_rw_nowait, .call = corio__sys_rw_file,
	},
	[IORING_OP_WRITE] = {
		.name = "write",
		.run = CORIO__RUN_RW, .queue = CORIO__Q_WRITE, .nowait = CORIO__NOWAIT_RW,
		.attempt = corio__sys_rw_nowait, .call = corio__sys_rw_file,
	},
	[IORING_OP_FADVISE] = {.name = "fadvise"},
	[IORING_OP_MADVISE] = {.name = "madvise"},
	[IORING_OP_SEND] = {
		.name = "send",
		.field = IOPRIO, .uring_only = FIXED_BUF, .proves_socket = true,
		.run = CORIO__RUN_READY, .queue = CORIO__Q_WRITE, .nowait = CORIO__NOWAIT_MSG,
		.attempt = corio__sys_recv_send,
	},
	[IORING_OP_RECV] = {
		.name = "recv", .writes = CORIO__WRITES_BUF,
		.field = IOPRIO, .multishot = RECV_MS, .uring_only = RECV_MS | FIXED_BUF,
		.proves_socket = true,
		.run = CORIO__RUN_READY, .queue = CORIO__Q_READ, .nowait = CORIO__NOWAIT_MSG,
		.attempt = corio__sys_recv_send,
	},
	[IORING_OP_OPENAT2] = {.name = "openat2"},
	[IORING_OP_EPOLL_CTL] = {.name = "epoll_ctl"},
	[IORING_OP_SPLICE] = {.name = "splice"},
	[IORING_OP_PROVIDE_BUFFERS] = {.name = "provide_buffers"},
	[IORING_OP_REMOVE_BUFFERS] = {.name = "remove_buffers"},
	[IORING_OP_TEE] = {.name = "tee"},
	[IORING_OP_SHUTDOWN] = {
		.name = "shutdown",
		.run = CORIO__RUN_INLINE, .call = corio__sys_shutdown,
	},
	[IORING_OP_RENAMEAT] = {
		.name = "renameat",
		.run = CORIO__RUN_POOL, .call = corio__sys_renameat,
	},
	[IORING_OP_UNLINKAT] = {
		.name = "unlinkat",
		.run = CORIO__RUN_POOL, .call = corio__sys_unlinkat,
	},
	[IORING_OP_MKDIRAT] = {
		.name = "mkdirat",
		.run = CORIO__RUN_POOL, .call = corio__sys_mkdirat,
	},
	[IORING_OP_SYMLINKAT] = {.name = "symlinkat"},
	[IORING_OP_LINKAT] = {.name = "linkat"},
	[IORING_OP_MSG_RING] = {.name = "msg_ring"},
	[IORING_OP_FSETXATTR] = {.name = "fsetxattr"},
	[IORING_OP_SETXATTR] = {.name = "setxattr"},
	[IORING_OP_FGETXATTR] = {.name = "fgetxattr"},
	[IORING_OP_GETXATTR] = {.name = "getxattr"},
	[IORING_OP_SOCKET] = {
		.name = "socket",
		.direct_result = true, .result = CORIO__RESULT_SOCKET,
		.run = CORIO__RUN_INLINE, .call = corio__sys_socket,
	},
	[IORING_OP_URING_CMD] = {.name = "uring_cmd"},
	/* The second CQE of a zero-copy send says the buffer is free again. */
	[IORING_OP_SEND_ZC] = {.name = "send_zc", .notif = true},
	[IORING_OP_SENDMSG_ZC] = {.name = "sendmsg_zc", .notif = true},
	[IORING_OP_READ_MULTISHOT] = {
		.name = "read_multishot",
		.field = CORIO__FIELD_ALWAYS, .multishot = ~0u,
	},
};
/* clang-format on */

/* Opcodes beyond the table: nothing known, nothing run without io_uring. */
const struct corio__opdef corio__opdef_unknown = {.name = NULL};
