/*
 * The KV server's internals: shards, a connection's batch of commands, the
 * command table. See server.c for how a batch flows.
 *
 * Threads: a kv_shard is touched only by its own loop. A batch belongs to
 * its connection's fiber, except while that fiber waits for calls: then
 * shard k's loop writes the batch's part k and the results of its own
 * operations (each operation belongs to one shard), and only reads the
 * commands and arguments; the call's reply hands the part back.
 */
#ifndef KV_KV_H
#define KV_KV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "corio.h"
#include "resp.h"
#include "server.h"
#include "store.h"

/* ------------------------------------------------------------ buffers */

struct kv_buf {
	char *p;
	size_t len, cap;
	bool oom; /* an append failed: the contents are incomplete */
};

void buf_free(struct kv_buf *b);
bool buf_reserve(struct kv_buf *b, size_t n);
void buf_put(struct kv_buf *b, const void *p, size_t n);
void buf_str(struct kv_buf *b, const char *s);
void buf_fmt(struct kv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* RESP2 replies. */
void r_ok(struct kv_buf *b);
void r_simple(struct kv_buf *b, const char *s);
void r_error(struct kv_buf *b, const char *s); /* s: "ERR ..." (no '-') */
void r_int(struct kv_buf *b, long long v);
void r_bulk(struct kv_buf *b, const void *p, size_t n);
void r_bulkstr(struct kv_buf *b, const char *s);
void r_nil(struct kv_buf *b);
void r_array(struct kv_buf *b, size_t n);

/* Decimal digits of @v into @out (at least 21 bytes); returns the length. */
size_t fmt_ll(char *out, long long v);

/* ----------------------------------------------------------- settings */

enum kv_policy { KV_NOEVICTION, KV_ALLKEYS_LRU, KV_POLICY_COUNT };

/* client-output-buffer-limit normal: the hard limit unless set (Redis has
 * none for normal clients; without one, a client that pipelines GETs of big
 * values and never reads makes the server hold all the replies). */
#define KV_DEFAULT_OBUF_HARD ((size_t)256 << 20)

/* Settings as plain values (0: no limit, for the sizes). */
struct kv_settings {
	size_t maxmemory;
	int policy;
	unsigned maxclients;
	size_t obuf_hard, obuf_soft;
	unsigned obuf_secs;
};

/* The live settings, read by every loop. */
struct kv_config {
	_Atomic(size_t) maxmemory;
	_Atomic(int) policy;
	_Atomic(unsigned) maxclients;
	_Atomic(size_t) obuf_hard, obuf_soft;
	_Atomic(unsigned) obuf_secs;
	pthread_mutex_t lock; /* CONFIG SET: one writer at a time */
};

enum kv_cfg_err {
	CFG_OK, CFG_UNKNOWN, CFG_IMMUTABLE, CFG_MEMORY, CFG_POLICY, CFG_INTEGER, CFG_RANGE,
	CFG_TOO_MANY_CLIENTS, CFG_OBUF_ARGS, CFG_OBUF_CLASS, CFG_OBUF_VALUE, CFG_DUPLICATE,
};

/* config.c */
/* Parse one setting into @st. CFG_TOO_MANY_CLIENTS sets *extra to what the
 * open-file limit allows. */
enum kv_cfg_err kv_setting_parse(struct kv_settings *st, const char *name, size_t nlen,
				 const char *val, size_t vlen, long long *extra);
const char *kv_cfg_error(enum kv_cfg_err e);
const char *kv_policy_name(int policy);
/* Defaults, then the "name", "value" pairs (NULL-terminated; NULL: none).
 * Returns 0 or -EINVAL (said on stderr). */
int kv_config_init(struct kv_config *cfg, const char *const *pairs);
void kv_config_load(const struct kv_config *cfg, struct kv_settings *st);
void kv_config_store(struct kv_config *cfg, const struct kv_settings *st);

/* ------------------------------------------------------------- shards */

struct kv_shard {
	struct kv_store store;
	struct kv_server *srv;
	corio_loop *loop; /* set when its loop starts */
	unsigned index;
	bool over;	  /* store.mem above this shard's share of maxmemory */
	/* Counters of the connections this loop serves. */
	uint64_t clients, conns_total, cmds_total, proto_errors;
	uint64_t rejected;	   /* refused: maxclients */
	uint64_t obuf_disconnects; /* closed: client-output-buffer-limit */
	struct corio_serve_stats serve; /* this loop's accept loop */
};

struct kv_server {
	struct kv_server_opts o;
	struct kv_config cfg;
	corio_pool *pool;
	unsigned nshards;
	struct kv_shard **shards; /* [k] set and used by loop k only */
	int *lfds;		  /* one SO_REUSEPORT listener per loop */
	int port;
	int64_t started;	  /* corio_now() at start */
	struct resp_limits lim;
	/* Connections open now, every loop's (maxclients). */
	_Alignas(64) atomic_uint nclients;
	/* Shards over their share of maxmemory: while any is, commands that
	 * may add memory get -OOM (noeviction, or nothing left to evict). */
	_Alignas(64) atomic_uint shards_over;
};

/* A shard's memory changed (writes, expiry, FLUSHALL, CONFIG SET): evict
 * if the policy says so, and publish whether it is over its share. */
void kv_shard_mem_update(struct kv_shard *sh);

/* The shard a key belongs to. */
static inline unsigned kv_shard_of_hash(uint64_t h, unsigned nshards)
{
	return (unsigned)(((h >> 32) * (uint64_t)nshards) >> 32);
}

/* ------------------------------------------------------------ batches */

enum kv_kind {
	K_NOKEY,  /* answered by the connection's fiber (PING, ECHO...) */
	K_SINGLE, /* one key: the key's shard writes the whole reply */
	K_MULTI,  /* every argument is a key (MGET, DEL, EXISTS) */
	K_PAIRS,  /* key value pairs (MSET) */
	K_ALL,	  /* every shard takes part (DBSIZE, FLUSHALL, INFO) */
};

enum kv_id {
	C_GET, C_SET, C_DEL, C_EXISTS, C_INCR, C_DECR, C_INCRBY, C_DECRBY, C_MGET, C_MSET,
	C_EXPIRE, C_PEXPIRE, C_TTL, C_PTTL, C_DBSIZE, C_FLUSHALL, C_INFO, C_COMMAND,
	C_QUIT, C_PING, C_ECHO, C_SELECT, C_CONFIG,
	C_COMMAND_COUNT, C_COMMAND_DOCS, C_COMMAND_INFO, C_COMMAND_LIST, C_CONFIG_GET,
	C_CONFIG_SET,
};

struct kv_cmdspec {
	const char *name; /* lowercase; "parent|sub" for subcommands */
	enum kv_id id;
	enum kv_kind kind;
	int arity; /* Redis's: n exactly, or -n for at least n */
	int first, last, step; /* key positions (COMMAND INFO) */
	const char *flags;     /* space-separated (COMMAND INFO) */
	const char *group, *since, *summary; /* COMMAND DOCS */
	const struct kv_cmdspec *subs;	     /* container commands */
};

extern const struct kv_cmdspec kv_commands[];
extern const size_t kv_ncommands;

/* Errors found before execution (the connection's fiber answers them). */
enum kv_err {
	E_NONE, E_UNKNOWN, E_UNKNOWN_SUB, E_ARITY, E_SYNTAX, E_NOTINT, E_EXPIRE_TIME,
	E_DECR_OVERFLOW, E_EXPIRE_NXXX, E_EXPIRE_GTLT, E_UNSUPPORTED_OPT, E_DB_RANGE,
	E_OOM,	  /* maxmemory reached */
	E_CONFIG, /* CONFIG SET: err_arg names the setting, flags the kv_cfg_err */
};

/* Option bits of SET and EXPIRE. */
#define F_NX (1u << 0)
#define F_XX (1u << 1)
#define F_GET (1u << 2)
#define F_KEEPTTL (1u << 3)
#define F_GT (1u << 4)
#define F_LT (1u << 5)

#define NO_OP UINT32_MAX

struct kv_cmd {
	const struct kv_cmdspec *spec; /* NULL: unknown */
	uint32_t arg0, argc;	       /* its arguments: batch args[arg0 .. arg0+argc) */
	uint32_t op0, nops;	       /* its shard operations: ops[op0 .. op0+nops) */
	int64_t n;		       /* SET/EXPIRE: absolute expiry (ms); INCRBY: delta */
	unsigned flags;
	enum kv_err err;
	uint32_t err_arg; /* the argument an error names */
};

struct kv_op {
	uint32_t cmd;	/* the command, by index */
	uint32_t arg;	/* the key's argument index in the command (0: none) */
	uint32_t next;	/* the next operation of the same shard, or NO_OP */
	uint32_t shard;
	uint64_t hash;	/* of the key */
	size_t roff, rlen; /* its reply in the shard part's buffer */
	int64_t val;	/* its integer result (counts, OOM flag) */
};

struct kv_part {
	struct kv_batch *b;
	unsigned shard;
	uint32_t head, tail, nops;
	struct kv_buf rbuf; /* replies written by the shard */
	size_t counted;	    /* of rbuf.len, added to the batch's obuf_total */
	corio_call_req req;
	bool started;
	bool over; /* stopped: the batch's replies passed the hard limit */
};

struct kv_batch {
	struct kv_server *srv;
	struct kv_cmd *cmds;
	uint32_t ncmds, capcmds;
	struct resp_arg *args;
	uint32_t nargs, capargs;
	struct kv_op *ops;
	uint32_t nops, capops;
	struct kv_part *parts; /* one per shard */
	struct kv_buf out;
	int64_t now;	/* ms, monotonic: the batch's time */
	int64_t unixnow; /* ms, wall clock (EXAT, PXAT) */
	bool quit;
	bool oom;
	/* client-output-buffer-limit normal, read when the batch starts. */
	size_t obuf_hard, obuf_soft;
	unsigned obuf_secs;
	int64_t soft_since;	    /* over the soft limit since (ms); 0: not */
	size_t obuf_bytes;	    /* the replies that passed the limit (for the log) */
	_Atomic(size_t) obuf_total; /* replies of all parts, in steps (kv_exec_part) */
};

/* batch.c */
bool kv_batch_init(struct kv_batch *b, struct kv_server *srv);
void kv_batch_free(struct kv_batch *b);
/* Empty it for the next commands, with the time and settings of now. */
void kv_batch_reset(struct kv_batch *b, int64_t now_ms, int64_t unix_ms);
/* Add a parsed command (checked, split into operations). false: no memory. */
bool kv_batch_add(struct kv_batch *b, const struct resp_parser *p);
/* Every part, one after the other on this thread (no pool: tests, fuzzing). */
void kv_batch_run_here(struct kv_batch *b);
/* The replies in command order into b->out: 0, -ENOMEM, or -ENOBUFS when
 * they pass client-output-buffer-limit (the client must be closed). */
int kv_batch_reply(struct kv_batch *b);

/* cmd.c */
/* Check arguments and add the command's operations; false: out of memory. */
bool kv_prepare(struct kv_batch *b, struct kv_cmd *c);
/* On the shard's loop: run part @p's operations in order. */
void kv_exec_part(struct kv_part *p, struct kv_shard *sh);
/* Append command @c's reply to b->out. */
void kv_reply(struct kv_batch *b, struct kv_cmd *c);

/* info.c */
struct kv_shard_info {
	uint64_t keys, expires, mem, expired, evicted, hits, misses;
	uint64_t clients, conns_total, cmds_total, proto_errors;
	uint64_t rejected, obuf_disconnects, backoffs;
	struct corio_loop_stats loop;
	char backend[16];
};
void kv_shard_info(struct kv_shard *sh, struct kv_shard_info *out);
void kv_reply_info(struct kv_batch *b, struct kv_cmd *c);
void kv_reply_command(struct kv_batch *b, struct kv_cmd *c);
void kv_reply_config(struct kv_batch *b, struct kv_cmd *c);
/* CONFIG SET, on the connection's loop: check every pair, then apply them
 * all (or none). Returns E_NONE or the error (c->err_arg, c->flags set). */
enum kv_err kv_config_set(struct kv_batch *b, struct kv_cmd *c);

static inline struct resp_arg *kv_arg(const struct kv_batch *b, const struct kv_cmd *c,
				      uint32_t i)
{
	return &b->args[c->arg0 + i];
}

#endif
