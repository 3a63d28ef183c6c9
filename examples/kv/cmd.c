/*
 * Commands: the table, checking arguments (on the connection's loop),
 * running operations (on the owning shard's loop) and assembling replies
 * (on the connection's loop again).
 *
 * A command is checked before anything runs, in the order Redis checks it,
 * so that the same mistake gets the same error: lookup, arity, options,
 * then numbers. What remains can only fail on the data (WRONGTYPE does not
 * arise: every value is a string; "not an integer" for INCR on a text value
 * does), and the shard writes that reply itself.
 *
 * Per-shard order is the connection's order: a shard runs its part of a
 * batch as one list in command order, so commands on one key see each other
 * as if run one by one. Commands on several shards (MGET, MSET, DEL,
 * EXISTS, DBSIZE, FLUSHALL) are atomic per shard only: another connection
 * may see half of an MSET that spans shards, never half of one shard's part.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kv.h"

/* SET's expiry options (besides F_* in kv.h). */
#define F_EX (1u << 8)
#define F_PX (1u << 9)
#define F_EXAT (1u << 10)
#define F_PXAT (1u << 11)
#define F_ANY_EXPIRE (F_EX | F_PX | F_EXAT | F_PXAT)

/* ------------------------------------------------------------- table */

static const struct kv_cmdspec command_subs[] = {
	{"command|count", C_COMMAND_COUNT, K_NOKEY, 2, 0, 0, 0, "loading stale", "server",
	 "2.8.13", "Get total number of Redis commands", NULL},
	{"command|docs", C_COMMAND_DOCS, K_NOKEY, -2, 0, 0, 0, "loading stale", "server",
	 "7.0.0", "Get array of specific Redis command documentation", NULL},
	{"command|info", C_COMMAND_INFO, K_NOKEY, -2, 0, 0, 0, "loading stale", "server",
	 "2.8.13", "Get array of specific Redis command details", NULL},
	{"command|list", C_COMMAND_LIST, K_NOKEY, -2, 0, 0, 0, "loading stale", "server",
	 "7.0.0", "Get an array of Redis command names", NULL},
	{NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL},
};

static const struct kv_cmdspec config_subs[] = {
	{"config|get", C_CONFIG_GET, K_NOKEY, -3, 0, 0, 0, "admin noscript loading stale",
	 "server", "2.0.0", "Get the values of configuration parameters", NULL},
	/* Every shard takes part: it re-checks its memory against the new
	 * maxmemory and policy (and evicts) at once. */
	{"config|set", C_CONFIG_SET, K_ALL, -4, 0, 0, 0, "admin noscript loading stale",
	 "server", "2.0.0", "Set configuration parameters to the given values", NULL},
	{NULL, 0, 0, 0, 0, 0, 0, NULL, NULL, NULL, NULL, NULL},
};

const struct kv_cmdspec kv_commands[] = {
	{"get", C_GET, K_SINGLE, 2, 1, 1, 1, "readonly fast", "string", "1.0.0",
	 "Get the value of a key", NULL},
	{"set", C_SET, K_SINGLE, -3, 1, 1, 1, "write denyoom", "string", "1.0.0",
	 "Set the string value of a key", NULL},
	{"del", C_DEL, K_MULTI, -2, 1, -1, 1, "write", "generic", "1.0.0", "Delete a key", NULL},
	{"exists", C_EXISTS, K_MULTI, -2, 1, -1, 1, "readonly fast", "generic", "1.0.0",
	 "Determine if a key exists", NULL},
	{"incr", C_INCR, K_SINGLE, 2, 1, 1, 1, "write denyoom fast", "string", "1.0.0",
	 "Increment the integer value of a key by one", NULL},
	{"decr", C_DECR, K_SINGLE, 2, 1, 1, 1, "write denyoom fast", "string", "1.0.0",
	 "Decrement the integer value of a key by one", NULL},
	{"incrby", C_INCRBY, K_SINGLE, 3, 1, 1, 1, "write denyoom fast", "string", "1.0.0",
	 "Increment the integer value of a key by the given amount", NULL},
	{"decrby", C_DECRBY, K_SINGLE, 3, 1, 1, 1, "write denyoom fast", "string", "1.0.0",
	 "Decrement the integer value of a key by the given number", NULL},
	{"mget", C_MGET, K_MULTI, -2, 1, -1, 1, "readonly fast", "string", "1.0.0",
	 "Get the values of all the given keys", NULL},
	{"mset", C_MSET, K_PAIRS, -3, 1, -1, 2, "write denyoom", "string", "1.0.1",
	 "Set multiple keys to multiple values", NULL},
	{"expire", C_EXPIRE, K_SINGLE, -3, 1, 1, 1, "write fast", "generic", "1.0.0",
	 "Set a key's time to live in seconds", NULL},
	{"pexpire", C_PEXPIRE, K_SINGLE, -3, 1, 1, 1, "write fast", "generic", "2.6.0",
	 "Set a key's time to live in milliseconds", NULL},
	{"ttl", C_TTL, K_SINGLE, 2, 1, 1, 1, "readonly fast", "generic", "1.0.0",
	 "Get the time to live for a key in seconds", NULL},
	{"pttl", C_PTTL, K_SINGLE, 2, 1, 1, 1, "readonly fast", "generic", "2.6.0",
	 "Get the time to live for a key in milliseconds", NULL},
	{"dbsize", C_DBSIZE, K_ALL, 1, 0, 0, 0, "readonly fast", "server", "1.0.0",
	 "Return the number of keys in the selected database", NULL},
	{"flushall", C_FLUSHALL, K_ALL, -1, 0, 0, 0, "write", "server", "1.0.0",
	 "Remove all keys from all databases", NULL},
	{"info", C_INFO, K_ALL, -1, 0, 0, 0, "loading stale", "server", "1.0.0",
	 "Get information and statistics about the server", NULL},
	{"command", C_COMMAND, K_NOKEY, -1, 0, 0, 0, "loading stale", "server", "2.8.13",
	 "Get array of Redis command details", command_subs},
	{"quit", C_QUIT, K_NOKEY, -1, 0, 0, 0, "loading stale fast", "connection", "1.0.0",
	 "Close the connection", NULL},
	{"ping", C_PING, K_NOKEY, -1, 0, 0, 0, "fast", "connection", "1.0.0",
	 "Ping the server", NULL},
	{"echo", C_ECHO, K_NOKEY, 2, 0, 0, 0, "fast", "connection", "1.0.0",
	 "Echo the given string", NULL},
	{"select", C_SELECT, K_NOKEY, 2, 0, 0, 0, "loading stale fast", "connection", "1.0.0",
	 "Change the selected database for the current connection", NULL},
	{"config", C_CONFIG, K_NOKEY, -2, 0, 0, 0, "", "server", "2.0.0",
	 "A container for server configuration commands", config_subs},
};

const size_t kv_ncommands = sizeof(kv_commands) / sizeof(kv_commands[0]);

static bool is(const struct resp_arg *a, const char *word)
{
	size_t n = strlen(word);

	return a->len == n && !strncasecmp(a->p, word, n);
}

/* The part of @name after "parent|", as clients spell it. */
static const char *short_name(const char *name)
{
	const char *bar = strchr(name, '|');

	return bar ? bar + 1 : name;
}

static const struct kv_cmdspec *find(const struct kv_cmdspec *t, size_t n,
				     const struct resp_arg *a)
{
	for (size_t i = 0; i < n && t[i].name; i++)
		if (is(a, short_name(t[i].name)))
			return &t[i];
	return NULL;
}

/* ---------------------------------------------------- checking (conn) */

static struct kv_part *part_of(struct kv_batch *b, unsigned shard)
{
	return &b->parts[shard];
}

static bool add_op(struct kv_batch *b, uint32_t cmd, uint32_t arg, uint64_t hash, unsigned shard)
{
	struct kv_part *p = part_of(b, shard);
	struct kv_op *op;

	if (b->nops == b->capops) {
		uint32_t cap = b->capops ? b->capops * 2 : 64;
		struct kv_op *ops = realloc(b->ops, cap * sizeof(*ops));

		if (!ops)
			return false;
		b->ops = ops;
		b->capops = cap;
	}
	op = &b->ops[b->nops];
	memset(op, 0, sizeof(*op));
	op->cmd = cmd;
	op->arg = arg;
	op->next = NO_OP;
	op->shard = shard;
	op->hash = hash;
	if (p->nops++)
		b->ops[p->tail].next = b->nops;
	else
		p->head = b->nops;
	p->tail = b->nops++;
	return true;
}

static bool add_key_op(struct kv_batch *b, uint32_t cmd, uint32_t arg)
{
	const struct resp_arg *a = kv_arg(b, &b->cmds[cmd], arg);
	uint64_t h = kv_hash(a->p, a->len);

	return add_op(b, cmd, arg, h, kv_shard_of_hash(h, b->srv->nshards));
}

static enum kv_err prep_set(struct kv_batch *b, struct kv_cmd *c)
{
	const struct resp_arg *exp = NULL;
	unsigned f = 0;
	long long ms;

	for (uint32_t j = 3; j < c->argc; j++) {
		const struct resp_arg *a = kv_arg(b, c, j);
		bool next = j + 1 < c->argc;

		if (is(a, "nx") && !(f & F_XX)) {
			f |= F_NX;
		} else if (is(a, "xx") && !(f & F_NX)) {
			f |= F_XX;
		} else if (is(a, "get")) {
			f |= F_GET;
		} else if (is(a, "keepttl") && !(f & F_ANY_EXPIRE)) {
			f |= F_KEEPTTL;
		} else if (next && !(f & F_KEEPTTL) &&
			   ((is(a, "ex") && !(f & (F_ANY_EXPIRE & ~F_EX))) ||
			    (is(a, "px") && !(f & (F_ANY_EXPIRE & ~F_PX))) ||
			    (is(a, "exat") && !(f & (F_ANY_EXPIRE & ~F_EXAT))) ||
			    (is(a, "pxat") && !(f & (F_ANY_EXPIRE & ~F_PXAT))))) {
			/* Like Redis: the same option twice is allowed (the
			 * last one counts), two different ones are not. */
			f |= is(a, "ex") ? F_EX : is(a, "px") ? F_PX : is(a, "exat") ? F_EXAT : F_PXAT;
			exp = kv_arg(b, c, ++j);
		} else {
			return E_SYNTAX;
		}
	}
	c->flags = f;
	c->n = 0;
	if (!exp)
		return E_NONE;
	if (!resp_strtoll(exp->p, exp->len, &ms))
		return E_NOTINT;
	if (ms <= 0 || ((f & (F_EX | F_EXAT)) && ms > LLONG_MAX / 1000))
		return E_EXPIRE_TIME;
	if (f & (F_EX | F_EXAT))
		ms *= 1000;
	if (f & (F_EX | F_PX)) {
		if (ms > LLONG_MAX - b->now)
			return E_EXPIRE_TIME;
		c->n = b->now + ms;
	} else {
		/* Wall-clock time to the monotonic clock; a time in the past
		 * sets a key that is already expired. */
		c->n = ms - (b->unixnow - b->now);
		if (c->n <= 0)
			c->n = 1;
	}
	return E_NONE;
}

static enum kv_err prep_expire(struct kv_batch *b, struct kv_cmd *c)
{
	bool nx = false, xx = false, gt = false, lt = false;
	long long when;

	for (uint32_t j = 3; j < c->argc; j++) {
		const struct resp_arg *a = kv_arg(b, c, j);

		if (is(a, "nx"))
			nx = true;
		else if (is(a, "xx"))
			xx = true;
		else if (is(a, "gt"))
			gt = true;
		else if (is(a, "lt"))
			lt = true;
		else {
			c->err_arg = j;
			return E_UNSUPPORTED_OPT;
		}
	}
	if (nx && (xx || gt || lt))
		return E_EXPIRE_NXXX;
	if (gt && lt)
		return E_EXPIRE_GTLT;
	c->flags = (nx ? F_NX : 0) | (xx ? F_XX : 0) | (gt ? F_GT : 0) | (lt ? F_LT : 0);
	if (!resp_strtoll(kv_arg(b, c, 2)->p, kv_arg(b, c, 2)->len, &when))
		return E_NOTINT;
	/* Negative times are allowed (the key goes at once); only overflow
	 * is an error. */
	if (c->spec->id == C_EXPIRE) {
		if (when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000)
			return E_EXPIRE_TIME;
		when *= 1000;
	}
	if (when > LLONG_MAX - b->now)
		return E_EXPIRE_TIME;
	c->n = when + b->now;
	return E_NONE;
}

static enum kv_err prep_incr(struct kv_batch *b, struct kv_cmd *c)
{
	long long v;

	switch (c->spec->id) {
	case C_INCR:
		c->n = 1;
		return E_NONE;
	case C_DECR:
		c->n = -1;
		return E_NONE;
	default:
		break;
	}
	if (!resp_strtoll(kv_arg(b, c, 2)->p, kv_arg(b, c, 2)->len, &v))
		return E_NOTINT;
	if (c->spec->id == C_DECRBY) {
		if (v == LLONG_MIN)
			return E_DECR_OVERFLOW;
		v = -v;
	}
	c->n = v;
	return E_NONE;
}

/* Options and numbers, checked before anything runs. */
static enum kv_err check(struct kv_batch *b, struct kv_cmd *c)
{
	long long v;

	switch (c->spec->id) {
	case C_SET:
		return prep_set(b, c);
	case C_EXPIRE:
	case C_PEXPIRE:
		return prep_expire(b, c);
	case C_INCR:
	case C_DECR:
	case C_INCRBY:
	case C_DECRBY:
		return prep_incr(b, c);
	case C_MSET:
		return c->argc % 2 ? E_NONE : E_ARITY;
	case C_PING:
		return c->argc > 2 ? E_ARITY : E_NONE;
	case C_FLUSHALL:
		if (c->argc > 2 ||
		    (c->argc == 2 && !is(kv_arg(b, c, 1), "async") && !is(kv_arg(b, c, 1), "sync")))
			return E_SYNTAX;
		return E_NONE;
	case C_SELECT:
		if (!resp_strtoll(kv_arg(b, c, 1)->p, kv_arg(b, c, 1)->len, &v))
			return E_NOTINT;
		return v == 0 ? E_NONE : E_DB_RANGE;
	case C_QUIT:
		b->quit = true;
		return E_NONE;
	case C_CONFIG_SET:
		return kv_config_set(b, c);
	default:
		return E_NONE;
	}
}

/* Commands that may add memory ("denyoom" in their flags, as in Redis). */
static bool denyoom(const struct kv_cmdspec *s)
{
	return strstr(s->flags, "denyoom") != NULL;
}

bool kv_prepare(struct kv_batch *b, struct kv_cmd *c)
{
	uint32_t idx = (uint32_t)(c - b->cmds);
	const struct resp_arg *argv = kv_arg(b, c, 0);
	const struct kv_cmdspec *spec = find(kv_commands, kv_ncommands, &argv[0]);

	c->op0 = b->nops;
	c->nops = 0;
	c->err = E_NONE;
	c->spec = spec;
	if (!spec) {
		c->err = E_UNKNOWN;
		return true;
	}
	if (spec->subs && c->argc >= 2) {
		c->spec = find(spec->subs, SIZE_MAX, &argv[1]);
		if (!c->spec) {
			c->spec = spec;
			c->err = E_UNKNOWN_SUB;
			return true;
		}
	}
	if ((c->spec->arity > 0 && (uint32_t)c->spec->arity != c->argc) ||
	    (c->spec->arity < 0 && c->argc < (uint32_t)-c->spec->arity)) {
		c->err = E_ARITY;
		return true;
	}
	c->err = check(b, c);
	if (c->err)
		return true;
	/* maxmemory: a shard over its share (the one load when none is). */
	if (atomic_load_explicit(&b->srv->shards_over, memory_order_relaxed) && denyoom(c->spec)) {
		c->err = E_OOM;
		return true;
	}
	switch (c->spec->kind) {
	case K_NOKEY:
		break;
	case K_SINGLE:
		if (!add_key_op(b, idx, 1))
			return false;
		break;
	case K_MULTI:
		for (uint32_t i = 1; i < c->argc; i++)
			if (!add_key_op(b, idx, i))
				return false;
		break;
	case K_PAIRS:
		for (uint32_t i = 1; i < c->argc; i += 2)
			if (!add_key_op(b, idx, i))
				return false;
		break;
	case K_ALL:
		for (unsigned s = 0; s < b->srv->nshards; s++)
			if (!add_op(b, idx, 0, 0, s))
				return false;
		break;
	}
	c->nops = b->nops - c->op0;
	return true;
}

/* ------------------------------------------------------ running (shard) */

static const char *const err_notint = "ERR value is not an integer or out of range";
static const char *const err_oom = "ERR out of memory";

static void exec_set(struct kv_store *st, struct kv_buf *r, const struct kv_cmd *c,
		     const struct resp_arg *argv, uint64_t h, int64_t now)
{
	size_t slot = SIZE_MAX, mark = r->len;
	struct kv_entry *e = kv_store_find(st, argv[1].p, argv[1].len, h, now, &slot);

	if (c->flags & F_GET) {
		if (e)
			r_bulk(r, kv_val(e), e->vlen);
		else
			r_nil(r);
	}
	if ((c->flags & F_NX && e) || (c->flags & F_XX && !e)) {
		if (!(c->flags & F_GET))
			r_nil(r);
		return;
	}
	e = kv_store_put(st, argv[1].p, argv[1].len, h, argv[2].p, argv[2].len,
			 e ? slot : SIZE_MAX);
	if (!e || !kv_store_set_expire(st, e, c->n ? c->n : (c->flags & F_KEEPTTL) ? e->expire : 0)) {
		r->len = mark;
		r_error(r, err_oom);
		return;
	}
	if (!(c->flags & F_GET))
		r_ok(r);
}

static void exec_incr(struct kv_store *st, struct kv_buf *r, const struct kv_cmd *c,
		      const struct resp_arg *argv, uint64_t h, int64_t now)
{
	size_t slot = SIZE_MAX;
	struct kv_entry *e = kv_store_find(st, argv[1].p, argv[1].len, h, now, &slot);
	long long v = 0, d = c->n;
	char num[24];

	if (e && !resp_strtoll(kv_val(e), e->vlen, &v)) {
		r_error(r, err_notint);
		return;
	}
	if ((d < 0 && v < 0 && d < LLONG_MIN - v) || (d > 0 && v > 0 && d > LLONG_MAX - v)) {
		r_error(r, "ERR increment or decrement would overflow");
		return;
	}
	v += d;
	/* The key keeps its TTL, as in Redis. */
	if (!kv_store_put(st, argv[1].p, argv[1].len, h, num, fmt_ll(num, v), e ? slot : SIZE_MAX)) {
		r_error(r, err_oom);
		return;
	}
	r_int(r, v);
}

static void exec_expire(struct kv_store *st, struct kv_buf *r, const struct kv_cmd *c,
			const struct resp_arg *argv, uint64_t h, int64_t now)
{
	size_t slot;
	struct kv_entry *e = kv_store_find(st, argv[1].p, argv[1].len, h, now, &slot);
	int64_t cur, when = c->n;

	if (!e) {
		r_int(r, 0);
		return;
	}
	cur = e->expire; /* 0: none, which GT and LT treat as infinite */
	if ((c->flags & F_NX && cur) || (c->flags & F_XX && !cur) ||
	    (c->flags & F_GT && (!cur || when <= cur)) || (c->flags & F_LT && cur && when >= cur)) {
		r_int(r, 0);
		return;
	}
	if (when <= now) {
		kv_store_del_slot(st, slot);
		r_int(r, 1);
		return;
	}
	if (!kv_store_set_expire(st, e, when)) {
		r_error(r, err_oom);
		return;
	}
	r_int(r, 1);
}

static void exec_ttl(struct kv_store *st, struct kv_buf *r, const struct kv_cmd *c,
		     const struct resp_arg *argv, uint64_t h, int64_t now)
{
	struct kv_entry *e = kv_store_find(st, argv[1].p, argv[1].len, h, now, NULL);
	int64_t ttl;

	if (!e) {
		r_int(r, -2);
		return;
	}
	if (!e->expire) {
		r_int(r, -1);
		return;
	}
	ttl = e->expire - now;
	if (ttl < 0)
		ttl = 0;
	r_int(r, c->spec->id == C_PTTL ? ttl : (ttl + 500) / 1000);
}

static void exec_op(struct kv_part *p, struct kv_shard *sh, struct kv_op *op, int64_t now)
{
	struct kv_batch *b = p->b;
	const struct kv_cmd *c = &b->cmds[op->cmd];
	const struct resp_arg *argv = kv_arg(b, c, 0);
	const struct resp_arg *key = &argv[op->arg];
	struct kv_store *st = &sh->store;
	struct kv_buf *r = &p->rbuf;
	struct kv_entry *e;
	size_t slot;

	op->roff = r->len;
	switch (c->spec->id) {
	case C_GET:
	case C_MGET:
		e = kv_store_find(st, key->p, key->len, op->hash, now, NULL);
		if (e) {
			st->st.hits++;
			r_bulk(r, kv_val(e), e->vlen);
		} else {
			st->st.misses++;
			r_nil(r);
		}
		break;
	case C_SET:
		exec_set(st, r, c, argv, op->hash, now);
		break;
	case C_INCR:
	case C_DECR:
	case C_INCRBY:
	case C_DECRBY:
		exec_incr(st, r, c, argv, op->hash, now);
		break;
	case C_EXPIRE:
	case C_PEXPIRE:
		exec_expire(st, r, c, argv, op->hash, now);
		break;
	case C_TTL:
	case C_PTTL:
		exec_ttl(st, r, c, argv, op->hash, now);
		break;
	case C_DEL:
		e = kv_store_find(st, key->p, key->len, op->hash, now, &slot);
		if (e)
			kv_store_del_slot(st, slot);
		op->val = e != NULL;
		break;
	case C_EXISTS:
		op->val = kv_store_find(st, key->p, key->len, op->hash, now, NULL) != NULL;
		break;
	case C_MSET:
		slot = SIZE_MAX;
		e = kv_store_find(st, key->p, key->len, op->hash, now, &slot);
		e = kv_store_put(st, key->p, key->len, op->hash, key[1].p, key[1].len,
				 e ? slot : SIZE_MAX);
		op->val = e && kv_store_set_expire(st, e, 0) ? 0 : -1;
		break;
	case C_DBSIZE:
		op->val = (int64_t)st->count;
		break;
	case C_FLUSHALL:
		kv_store_clear(st);
		break;
	case C_CONFIG_SET:
		break; /* the memory check at the end of the part does it */
	case C_INFO: {
		struct kv_shard_info info;

		kv_shard_info(sh, &info);
		buf_put(r, &info, sizeof(info));
		break;
	}
	default:
		break;
	}
	op->rlen = r->len - op->roff;
}

/* Evict to this many samples, as Redis's maxmemory-samples default. */
#define EVICT_SAMPLES 5u

void kv_shard_mem_update(struct kv_shard *sh)
{
	struct kv_server *srv = sh->srv;
	size_t max = atomic_load_explicit(&srv->cfg.maxmemory, memory_order_relaxed);
	/* Each shard has its share of maxmemory: the keys spread evenly over
	 * shards, and a shard can then decide alone, without adding up the
	 * others' memory. */
	size_t share = max / srv->nshards ? max / srv->nshards : 1;
	bool over;

	if (max && sh->store.mem > share &&
	    atomic_load_explicit(&srv->cfg.policy, memory_order_relaxed) == KV_ALLKEYS_LRU)
		kv_store_evict(&sh->store, share, EVICT_SAMPLES);
	over = max && sh->store.mem > share;
	if (over == sh->over)
		return;
	sh->over = over;
	if (over)
		atomic_fetch_add_explicit(&srv->shards_over, 1, memory_order_relaxed);
	else
		atomic_fetch_sub_explicit(&srv->shards_over, 1, memory_order_relaxed);
}

/*
 * The hard output limit while a part runs: parts run at once on several
 * loops, so each adds its replies to the batch's total in steps of
 * OBUF_STEP (one atomic add per step, not per reply) and stops once the
 * total passes the limit. A batch then holds at most the limit plus a step
 * and a reply per shard, however many GETs of big values it has.
 */
#define OBUF_STEP ((size_t)256 << 10)

static bool obuf_passed(struct kv_part *p)
{
	struct kv_batch *b = p->b;
	size_t add = p->rbuf.len - p->counted, total;

	if (!b->obuf_hard || add < OBUF_STEP)
		return false;
	total = atomic_fetch_add_explicit(&b->obuf_total, add, memory_order_relaxed) + add;
	p->counted = p->rbuf.len;
	return total > b->obuf_hard;
}

void kv_exec_part(struct kv_part *p, struct kv_shard *sh)
{
	int64_t now = p->b->now;
	struct kv_op *ops = p->b->ops;

	if (p->nops > 1) {
		/* A pipeline: touch every key's slot, then its entry, before
		 * running any command, so that their cache misses overlap. */
		for (uint32_t i = p->head; i != NO_OP; i = ops[i].next)
			if (ops[i].arg)
				kv_store_prefetch_slot(&sh->store, ops[i].hash);
		for (uint32_t i = p->head; i != NO_OP; i = ops[i].next)
			if (ops[i].arg)
				kv_store_prefetch_entry(&sh->store, ops[i].hash);
	}
	for (uint32_t i = p->head; p->nops && i != NO_OP; i = ops[i].next) {
		exec_op(p, sh, &ops[i], now);
		/* Past the limit, the client is closed: what follows is not
		 * run, as Redis stops reading a client it is closing. */
		if (obuf_passed(p)) {
			p->over = true;
			break;
		}
	}
	kv_shard_mem_update(sh);
}

/* ------------------------------------------------------- replies (conn) */

/* Bytes of @a that "%.*s" would print: up to @max, stopping at a NUL. */
static size_t cstr_len(const struct resp_arg *a, size_t max)
{
	size_t n = a->len < max ? a->len : max;
	const char *nul = memchr(a->p, '\0', n);

	return nul ? (size_t)(nul - a->p) : n;
}

/* An error reply built in @e, with CR and LF made spaces (as Redis does, so
 * the reply stays one line). */
static void r_error_buf(struct kv_buf *out, struct kv_buf *e)
{
	for (size_t i = 0; i < e->len; i++)
		if (e->p[i] == '\r' || e->p[i] == '\n')
			e->p[i] = ' ';
	buf_put(out, "-", 1);
	buf_put(out, e->p, e->len);
	buf_put(out, "\r\n", 2);
	if (e->oom)
		out->oom = true;
	buf_free(e);
}

static void reply_unknown(struct kv_batch *b, const struct kv_cmd *c)
{
	struct kv_buf e = {0};
	size_t args = 0;
	const struct resp_arg *a0 = kv_arg(b, c, 0);

	buf_str(&e, "ERR unknown command '");
	buf_put(&e, a0->p, cstr_len(a0, 128));
	buf_str(&e, "', with args beginning with: ");
	for (uint32_t i = 1; i < c->argc && args < 128; i++) {
		size_t n = cstr_len(kv_arg(b, c, i), 128 - args);

		buf_put(&e, "'", 1);
		buf_put(&e, kv_arg(b, c, i)->p, n);
		buf_put(&e, "' ", 2);
		args += n + 3;
	}
	r_error_buf(&b->out, &e);
}

static void reply_error(struct kv_batch *b, const struct kv_cmd *c)
{
	struct kv_buf e = {0};
	const struct resp_arg *a;
	char upper[16];
	size_t i;

	switch (c->err) {
	case E_UNKNOWN:
		reply_unknown(b, c);
		return;
	case E_UNKNOWN_SUB:
		a = kv_arg(b, c, 1);
		for (i = 0; c->spec->name[i] && i < sizeof(upper) - 1; i++)
			upper[i] = (char)toupper((unsigned char)c->spec->name[i]);
		upper[i] = '\0';
		buf_str(&e, "ERR unknown subcommand '");
		buf_put(&e, a->p, cstr_len(a, 128));
		buf_fmt(&e, "'. Try %s HELP.", upper);
		break;
	case E_ARITY:
		buf_fmt(&e, "ERR wrong number of arguments for '%s' command", c->spec->name);
		break;
	case E_SYNTAX:
		buf_str(&e, "ERR syntax error");
		break;
	case E_NOTINT:
		buf_str(&e, err_notint);
		break;
	case E_EXPIRE_TIME:
		buf_fmt(&e, "ERR invalid expire time in '%s' command", c->spec->name);
		break;
	case E_DECR_OVERFLOW:
		buf_str(&e, "ERR decrement would overflow");
		break;
	case E_EXPIRE_NXXX:
		buf_str(&e, "ERR NX and XX, GT or LT options at the same time are not compatible");
		break;
	case E_EXPIRE_GTLT:
		buf_str(&e, "ERR GT and LT options at the same time are not compatible");
		break;
	case E_UNSUPPORTED_OPT:
		a = kv_arg(b, c, c->err_arg);
		buf_str(&e, "ERR Unsupported option ");
		buf_put(&e, a->p, cstr_len(a, a->len));
		break;
	case E_DB_RANGE:
		buf_str(&e, "ERR DB index is out of range");
		break;
	case E_OOM:
		buf_str(&e, "OOM command not allowed when used memory > 'maxmemory'.");
		break;
	case E_CONFIG:
		a = kv_arg(b, c, c->err_arg);
		if (c->flags == CFG_UNKNOWN) {
			buf_str(&e, "ERR Unknown option or number of arguments for CONFIG SET - '");
			buf_put(&e, a->p, cstr_len(a, 128));
			buf_str(&e, "'");
			break;
		}
		buf_str(&e, "ERR CONFIG SET failed (possibly related to argument '");
		buf_put(&e, a->p, cstr_len(a, 128));
		buf_fmt(&e, "') - %s", kv_cfg_error((enum kv_cfg_err)c->flags));
		if (c->flags == CFG_TOO_MANY_CLIENTS)
			buf_fmt(&e, "%lld", (long long)c->n);
		break;
	case E_NONE:
		break;
	}
	r_error_buf(&b->out, &e);
}

static const struct kv_op *op_of(const struct kv_batch *b, const struct kv_cmd *c, uint32_t i)
{
	return &b->ops[c->op0 + i];
}

/* Copy operation @op's reply from its shard's buffer. */
static void put_piece(struct kv_batch *b, const struct kv_op *op)
{
	buf_put(&b->out, b->parts[op->shard].rbuf.p + op->roff, op->rlen);
}

void kv_reply(struct kv_batch *b, struct kv_cmd *c)
{
	struct kv_buf *out = &b->out;
	int64_t sum = 0;

	if (c->err) {
		reply_error(b, c);
		return;
	}
	switch (c->spec->id) {
	case C_PING:
		if (c->argc == 2)
			r_bulk(out, kv_arg(b, c, 1)->p, kv_arg(b, c, 1)->len);
		else
			r_simple(out, "PONG");
		return;
	case C_ECHO:
		r_bulk(out, kv_arg(b, c, 1)->p, kv_arg(b, c, 1)->len);
		return;
	case C_FLUSHALL:
		/* The keys' memory is free now, in every loop's arena: give
		 * the free pages back to the system (glibc keeps them
		 * otherwise), once, after all shards are done. */
#ifdef __GLIBC__
		malloc_trim(0);
#endif
		r_ok(out);
		return;
	case C_QUIT:
	case C_SELECT:
	case C_CONFIG_SET:
		r_ok(out);
		return;
	case C_COMMAND:
	case C_COMMAND_COUNT:
	case C_COMMAND_DOCS:
	case C_COMMAND_INFO:
	case C_COMMAND_LIST:
		kv_reply_command(b, c);
		return;
	case C_CONFIG_GET:
		kv_reply_config(b, c);
		return;
	case C_INFO:
		kv_reply_info(b, c);
		return;
	case C_MGET:
		r_array(out, c->nops);
		for (uint32_t i = 0; i < c->nops; i++)
			put_piece(b, op_of(b, c, i));
		return;
	case C_MSET:
		for (uint32_t i = 0; i < c->nops; i++)
			if (op_of(b, c, i)->val < 0) {
				r_error(out, err_oom);
				return;
			}
		r_ok(out);
		return;
	case C_DEL:
	case C_EXISTS:
	case C_DBSIZE:
		for (uint32_t i = 0; i < c->nops; i++)
			sum += op_of(b, c, i)->val;
		r_int(out, sum);
		return;
	default:
		/* One key: the shard wrote the whole reply. */
		put_piece(b, op_of(b, c, 0));
		return;
	}
}
