/*
 * Fuzz target: the KV server's command layer (examples/kv: cmd.c, batch.c,
 * store.c) against a model of the keyspace.
 *
 * The input is a program, not raw bytes: its first byte picks the server
 * (1 to 3 shards; a maxmemory with noeviction; a maxmemory with allkeys-lru;
 * a small client-output-buffer-limit), then each command takes a few bytes
 * that pick it, its keys (six names, spread over the shards), values
 * (integers at the edges, text, a big one), options (valid and invalid
 * combinations) and numbers. Commands gather into batches, as a pipeline
 * arrives; a batch ends, and time moves on by a chosen step, where the
 * program says so. Each batch is written as RESP, parsed by the real
 * parser, split into operations over the shards and run one shard after
 * the other (kv_batch_run_here), as the server runs them on their loops.
 *
 * Checked after every batch:
 *   - the replies, byte for byte, against the model's: a plain keyspace of
 *     {value, expiry}, run one command after the other (lazy expiry on
 *     access; DBSIZE counts keys not yet touched since they expired);
 *   - every shard's store invariants (kv_store_check: probe runs, counts,
 *     the TTL list, the memory accounting);
 *   - noeviction: write commands get -OOM exactly while a shard was over
 *     its share when the batch started, and change nothing;
 *   - allkeys-lru: the replies cannot be foreseen (keys vanish); each shard
 *     ends within its share unless it has no keys left;
 *   - output limit: the batch is refused (-ENOBUFS) exactly when its
 *     replies pass the hard limit; the commands have run all the same.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "kv.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


#define NKEYS 6
#define MAXARGS 16
#define OBUF_HARD 2000
#define UNIX_OFFSET 1700000000000ll /* wall clock = monotonic + this */

static const char *const keys[NKEYS] = {"k0", "k1", "k2", "k3", "k4", "k5"};
static char bigval[300];
static const char *const values[] = {
	"", "0", "1", "-1", "42", "9223372036854775807", "-9223372036854775808", "abc", "12a",
	" 1", "01", "3.0", "9223372036854775806", bigval,
};
static const char *const numbers[] = {
	"1", "2", "10", "100", "1000", "0", "-1", "abc", "9223372036854775807",
	"-9223372036854775808", "9223372036854775", "1500", "01", "", "-1000", "999",
};

/* ------------------------------------------------------------- input */

struct prog {
	const uint8_t *p;
	size_t n, i;
};

static unsigned take(struct prog *g)
{
	return g->i < g->n ? g->p[g->i++] : 0;
}

static const char *pick(struct prog *g, const char *const *t, size_t n)
{
	return t[take(g) % n];
}

#define PICK(g, t) pick(g, t, sizeof(t) / sizeof(t[0]))

/* ------------------------------------------------------------- model */

struct mkey {
	bool present;
	char *val;
	size_t len;
	int64_t expire;
};

static struct mkey model[NKEYS];
static int64_t now;

static void m_del(int k)
{
	free(model[k].val);
	memset(&model[k], 0, sizeof(model[k]));
}

/* A lookup: an expired key goes, as the store's lookup deletes it. */
static struct mkey *m_find(int k)
{
	if (model[k].present && model[k].expire && model[k].expire <= now)
		m_del(k);
	return model[k].present ? &model[k] : NULL;
}

static void m_set(int k, const char *v, size_t len)
{
	char *p = malloc(len ? len : 1);

	FUZZ_CHECK(p);
	memcpy(p, v, len);
	free(model[k].val);
	model[k].val = p;
	model[k].len = len;
	if (!model[k].present)
		model[k].expire = 0;
	model[k].present = true;
}

/* ------------------------------------------------- expected replies */

struct out {
	char *p;
	size_t len, cap;
};

static void put(struct out *o, const void *p, size_t n)
{
	if (o->cap - o->len < n) {
		o->cap = (o->len + n) * 2 + 64;
		o->p = realloc(o->p, o->cap);
		FUZZ_CHECK(o->p);
	}
	memcpy(o->p + o->len, p, n);
	o->len += n;
}

static void puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void put_int(struct out *o, char prefix, long long v)
{
	char b[32];

	snprintf(b, sizeof(b), "%c%lld\r\n", prefix, v);
	puts_(o, b);
}

static void put_bulk(struct out *o, const char *p, size_t n)
{
	put_int(o, '$', (long long)n);
	put(o, p, n);
	puts_(o, "\r\n");
}

/* A GET's reply: the value, or nil. */
static void put_value(struct out *o, const struct mkey *e)
{
	if (e)
		put_bulk(o, e->val, e->len);
	else
		puts_(o, "$-1\r\n");
}

static void put_err(struct out *o, const char *e)
{
	puts_(o, "-");
	puts_(o, e);
	puts_(o, "\r\n");
}

static const char *const e_notint = "ERR value is not an integer or out of range";
static const char *const e_oom = "OOM command not allowed when used memory > 'maxmemory'.";

/* -------------------------------------------------------- one command */

struct cmd {
	const char *argv[MAXARGS];
	size_t argc;
};

static void arg(struct cmd *c, const char *a)
{
	FUZZ_CHECK(c->argc < MAXARGS);
	c->argv[c->argc++] = a;
}

static int key_arg(struct prog *g, struct cmd *c)
{
	int k = (int)(take(g) % NKEYS);

	arg(c, keys[k]);
	return k;
}

static bool parse_ll(const char *s, long long *v)
{
	return resp_strtoll(s, strlen(s), v);
}

/* SET's options: the model's reading of them, in prep_set's order. */
static void run_set(struct prog *g, struct cmd *c, struct out *o, bool oom)
{
	static const char *const menus[][5] = {
		{NULL}, {"NX"}, {"XX"}, {"GET"}, {"NX", "GET"}, {"XX", "GET"}, {"EX", "#"},
		{"PX", "#"}, {"EXAT", "#"}, {"PXAT", "#"}, {"KEEPTTL"}, {"EX", "#", "KEEPTTL"},
		{"NX", "XX"}, {"EX", "#", "PX", "#"}, {"EX", "#", "EX", "#"}, {"GET", "XX", "NX"},
		{"keepttl", "get"}, {"px", "#", "nx"},
	};
	const char *const *m = menus[take(g) % (sizeof(menus) / sizeof(menus[0]))];
	bool nx = false, xx = false, get = false, keepttl = false, syntax = false;
	int unit = 0; /* 1 EX, 2 PX, 3 EXAT, 4 PXAT */
	const char *num = NULL;
	int k = key_arg(g, c);
	const char *v = PICK(g, values);
	long long ms;
	int64_t when = 0;
	struct mkey *e;

	arg(c, v);
	for (int i = 0; i < 5 && m[i]; i++) {
		const char *w = m[i];

		if (!strcmp(w, "#")) {
			num = PICK(g, numbers);
			arg(c, num);
			continue;
		}
		arg(c, w);
		if (!strcasecmp(w, "NX"))
			syntax |= xx, nx = true;
		else if (!strcasecmp(w, "XX"))
			syntax |= nx, xx = true;
		else if (!strcasecmp(w, "GET"))
			get = true;
		else if (!strcasecmp(w, "KEEPTTL"))
			syntax |= unit != 0, keepttl = true;
		else {
			int u = !strcasecmp(w, "EX") ? 1 : !strcasecmp(w, "PX") ? 2 :
				!strcasecmp(w, "EXAT") ? 3 : 4;

			syntax |= keepttl || (unit && unit != u);
			unit = u;
		}
	}
	if (syntax) {
		put_err(o, "ERR syntax error");
		return;
	}
	if (unit) {
		if (!parse_ll(num, &ms)) {
			put_err(o, e_notint);
			return;
		}
		if (ms <= 0 || ((unit == 1 || unit == 3) && ms > LLONG_MAX / 1000)) {
			put_err(o, "ERR invalid expire time in 'set' command");
			return;
		}
		if (unit == 1 || unit == 3)
			ms *= 1000;
		if (unit <= 2) {
			if (ms > LLONG_MAX - now) {
				put_err(o, "ERR invalid expire time in 'set' command");
				return;
			}
			when = now + ms;
		} else {
			when = ms - UNIX_OFFSET;
			if (when <= 0)
				when = 1;
		}
	}
	if (oom) {
		put_err(o, e_oom);
		return;
	}
	e = m_find(k);
	if (get)
		put_value(o, e);
	if ((nx && e) || (xx && !e)) {
		if (!get)
			puts_(o, "$-1\r\n");
		return;
	}
	{
		int64_t old = e ? e->expire : 0;

		m_set(k, v, strlen(v));
		model[k].expire = when ? when : keepttl ? old : 0;
	}
	if (!get)
		puts_(o, "+OK\r\n");
}

static void run_incr(struct prog *g, struct cmd *c, struct out *o, int op, bool oom)
{
	static const char *const names[] = {"INCR", "DECR", "INCRBY", "DECRBY"};
	long long d = op == 0 ? 1 : -1, v = 0;
	struct mkey *e;
	char num[32];
	int k;

	arg(c, names[op]);
	k = key_arg(g, c);
	if (op >= 2) {
		const char *n = PICK(g, numbers);

		arg(c, n);
		if (!parse_ll(n, &d)) {
			put_err(o, e_notint);
			return;
		}
		if (op == 3) {
			if (d == LLONG_MIN) {
				put_err(o, "ERR decrement would overflow");
				return;
			}
			d = -d;
		}
	}
	if (oom) {
		put_err(o, e_oom);
		return;
	}
	e = m_find(k);
	if (e && !resp_strtoll(e->val, e->len, &v)) {
		put_err(o, e_notint);
		return;
	}
	if ((d < 0 && v < 0 && d < LLONG_MIN - v) || (d > 0 && v > 0 && d > LLONG_MAX - v)) {
		put_err(o, "ERR increment or decrement would overflow");
		return;
	}
	v += d;
	snprintf(num, sizeof(num), "%lld", v);
	m_set(k, num, strlen(num)); /* keeps the expiry */
	put_int(o, ':', v);
}

static void run_expire(struct prog *g, struct cmd *c, struct out *o, bool ms_unit)
{
	static const char *const menus[][3] = {
		{NULL}, {"NX"}, {"XX"}, {"GT"}, {"LT"}, {"NX", "XX"}, {"GT", "LT"}, {"FOO"},
		{"xx", "gt"}, {"lt", "nx"},
	};
	const char *const *m = menus[take(g) % (sizeof(menus) / sizeof(menus[0]))];
	bool nx = false, xx = false, gt = false, lt = false;
	const char *n, *bad = NULL;
	long long when;
	struct mkey *e;
	int k;

	arg(c, ms_unit ? "PEXPIRE" : "EXPIRE");
	k = key_arg(g, c);
	n = PICK(g, numbers);
	arg(c, n);
	for (int i = 0; i < 3 && m[i]; i++) {
		arg(c, m[i]);
		if (!strcasecmp(m[i], "NX"))
			nx = true;
		else if (!strcasecmp(m[i], "XX"))
			xx = true;
		else if (!strcasecmp(m[i], "GT"))
			gt = true;
		else if (!strcasecmp(m[i], "LT"))
			lt = true;
		else if (!bad)
			bad = m[i];
	}
	if (bad) {
		char msg[64];

		snprintf(msg, sizeof(msg), "ERR Unsupported option %s", bad);
		put_err(o, msg);
		return;
	}
	if (nx && (xx || gt || lt)) {
		put_err(o, "ERR NX and XX, GT or LT options at the same time are not compatible");
		return;
	}
	if (gt && lt) {
		put_err(o, "ERR GT and LT options at the same time are not compatible");
		return;
	}
	if (!parse_ll(n, &when)) {
		put_err(o, e_notint);
		return;
	}
	if (!ms_unit) {
		if (when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000) {
			put_err(o, "ERR invalid expire time in 'expire' command");
			return;
		}
		when *= 1000;
	}
	if (when > LLONG_MAX - now) {
		put_err(o, ms_unit ? "ERR invalid expire time in 'pexpire' command" :
				     "ERR invalid expire time in 'expire' command");
		return;
	}
	when += now;
	e = m_find(k);
	if (!e) {
		puts_(o, ":0\r\n");
		return;
	}
	if ((nx && e->expire) || (xx && !e->expire) || (gt && (!e->expire || when <= e->expire)) ||
	    (lt && e->expire && when >= e->expire)) {
		puts_(o, ":0\r\n");
		return;
	}
	if (when <= now)
		m_del(k);
	else
		e->expire = when;
	puts_(o, ":1\r\n");
}

/*
 * Append the next command of the program to @c and its expected reply to
 * @o. Returns false at the end of a batch (or of the program).
 */
static bool next_cmd(struct prog *g, struct cmd *c, struct out *o, bool oom)
{
	unsigned op = take(g) % 20, n;
	int k;
	struct mkey *e;
	long long sum;

	c->argc = 0;
	switch (op) {
	case 0:
		arg(c, "GET");
		put_value(o, m_find(key_arg(g, c)));
		break;
	case 1:
		arg(c, "SET");
		run_set(g, c, o, oom);
		break;
	case 2:
	case 3:
		arg(c, op == 2 ? "DEL" : "EXISTS");
		n = 1 + take(g) % 3;
		sum = 0;
		for (unsigned i = 0; i < n; i++) {
			k = key_arg(g, c);
			if (m_find(k)) {
				sum++;
				if (op == 2)
					m_del(k);
			}
		}
		put_int(o, ':', sum);
		break;
	case 4:
	case 5:
	case 6:
	case 7:
		run_incr(g, c, o, (int)op - 4, oom);
		break;
	case 8:
		arg(c, "MGET");
		n = 1 + take(g) % 4;
		put_int(o, '*', n);
		for (unsigned i = 0; i < n; i++)
			put_value(o, m_find(key_arg(g, c)));
		break;
	case 9: {
		int ks[3];
		const char *vs[3];

		arg(c, "MSET");
		n = 1 + take(g) % 3;
		for (unsigned i = 0; i < n; i++) {
			ks[i] = key_arg(g, c);
			vs[i] = PICK(g, values);
			arg(c, vs[i]);
		}
		if (oom) {
			put_err(o, e_oom);
			break;
		}
		for (unsigned i = 0; i < n; i++) {
			m_find(ks[i]);
			m_set(ks[i], vs[i], strlen(vs[i]));
			model[ks[i]].expire = 0;
		}
		puts_(o, "+OK\r\n");
		break;
	}
	case 10:
	case 11:
		run_expire(g, c, o, op == 11);
		break;
	case 12:
	case 13:
		arg(c, op == 12 ? "TTL" : "PTTL");
		e = m_find(key_arg(g, c));
		if (!e)
			puts_(o, ":-2\r\n");
		else if (!e->expire)
			puts_(o, ":-1\r\n");
		else {
			int64_t ttl = e->expire - now;

			put_int(o, ':', op == 13 ? ttl : (ttl + 500) / 1000);
		}
		break;
	case 14:
		arg(c, "DBSIZE");
		sum = 0;
		for (k = 0; k < NKEYS; k++)
			sum += model[k].present;
		put_int(o, ':', sum);
		break;
	case 15:
		if (take(g) % 4) {
			arg(c, "PING");
			puts_(o, "+PONG\r\n");
			break;
		}
		arg(c, "FLUSHALL");
		for (k = 0; k < NKEYS; k++)
			m_del(k);
		puts_(o, "+OK\r\n");
		break;
	case 16:
		arg(c, "ECHO");
		arg(c, PICK(g, values));
		put_bulk(o, c->argv[1], strlen(c->argv[1]));
		break;
	case 17:
		return false;
	case 18:
		arg(c, take(g) % 2 ? "GET" : "TTL");
		put_err(o, !strcmp(c->argv[0], "GET") ?
				   "ERR wrong number of arguments for 'get' command" :
				   "ERR wrong number of arguments for 'ttl' command");
		break;
	default:
		arg(c, "NOSUCH");
		put_err(o, "ERR unknown command 'NOSUCH', with args beginning with: ");
		break;
	}
	return true;
}

/* ------------------------------------------------------------ server */

static struct kv_server *servers[3];

static struct kv_server *server(unsigned nshards)
{
	struct kv_server *s = servers[nshards - 1];

	if (s)
		return s;
	s = aligned_alloc(_Alignof(struct kv_server), sizeof(*s));
	FUZZ_CHECK(s);
	memset(s, 0, sizeof(*s));
	FUZZ_CHECK(kv_config_init(&s->cfg, NULL) == 0);
	s->nshards = nshards;
	s->shards = calloc(nshards, sizeof(*s->shards));
	FUZZ_CHECK(s->shards);
	for (unsigned i = 0; i < nshards; i++) {
		s->shards[i] = calloc(1, sizeof(*s->shards[i]));
		FUZZ_CHECK(s->shards[i] && kv_store_init(&s->shards[i]->store) == 0);
		s->shards[i]->srv = s;
		s->shards[i]->index = i;
	}
	s->lim = (struct resp_limits){.max_args = 64, .max_bulk = 1 << 20,
				       .max_request = 1 << 20, .max_inline = 1 << 16};
	servers[nshards - 1] = s;
	return s;
}

static void reset(struct kv_server *s, const struct kv_settings *st)
{
	for (unsigned i = 0; i < s->nshards; i++) {
		kv_store_clear(&s->shards[i]->store);
		s->shards[i]->store.st = (struct kv_store_stats){0};
		s->shards[i]->over = false;
	}
	atomic_store(&s->shards_over, 0);
	kv_config_store(&s->cfg, st);
	for (int k = 0; k < NKEYS; k++)
		m_del(k);
}

/* ------------------------------------------------------------- a run */

static void encode(struct out *t, const struct cmd *c)
{
	char h[32];

	snprintf(h, sizeof(h), "*%zu\r\n", c->argc);
	puts_(t, h);
	for (size_t i = 0; i < c->argc; i++) {
		snprintf(h, sizeof(h), "$%zu\r\n", strlen(c->argv[i]));
		puts_(t, h);
		puts_(t, c->argv[i]);
		puts_(t, "\r\n");
	}
}

static void dump(const char *what, const char *p, size_t n)
{
	fprintf(stderr, "%s (%zu bytes):\n", what, n);
	for (size_t i = 0; i < n; i++)
		fputc(p[i] == '\r' ? '|' : p[i], stderr);
	fputc('\n', stderr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int64_t steps[] = {0, 1, 5, 100, 499, 500, 999, 1000, 1001, 1500, 60000};
	struct prog g = {data, size, 0};
	unsigned mode = take(&g);
	struct kv_server *s = server(1 + mode % 3);
	struct kv_settings st = {.maxclients = 1, .policy = KV_NOEVICTION};
	bool lru = false, exact = true;
	struct kv_batch b;
	struct resp_parser p;

	memset(bigval, 'x', sizeof(bigval) - 1);
	if (mode & 4) {
		st.maxmemory = 1000 + 500 * (take(&g) % 16);
	} else if (mode & 8) {
		st.maxmemory = 1000 + 500 * (take(&g) % 16);
		st.policy = KV_ALLKEYS_LRU;
		lru = true;
		exact = false;
	} else if (mode & 16) {
		st.obuf_hard = OBUF_HARD;
	}
	kv_hash_seed(0x1234567);
	reset(s, &st);
	now = 1000000;
	FUZZ_CHECK(kv_batch_init(&b, s));
	resp_init(&p, &s->lim);
	while (g.i < g.n) {
		struct out want = {0}, wire = {0};
		bool oom = atomic_load(&s->shards_over) > 0;
		struct cmd c;
		size_t off = 0, ncmds = 0;
		int err;

		kv_batch_reset(&b, now, now + UNIX_OFFSET);
		while (g.i < g.n && ncmds < 200 && next_cmd(&g, &c, &want, oom)) {
			encode(&wire, &c);
			ncmds++;
		}
		while (off < wire.len) {
			ssize_t r = resp_parse(&p, wire.p + off, wire.len - off);

			FUZZ_CHECK(r > 0);
			off += (size_t)r;
			FUZZ_CHECK(kv_batch_add(&b, &p));
		}
		FUZZ_CHECK(b.ncmds == ncmds);
		kv_batch_run_here(&b);
		err = kv_batch_reply(&b);
		if (st.obuf_hard && want.len > st.obuf_hard) {
			FUZZ_CHECK(err == -ENOBUFS);
		} else {
			FUZZ_CHECK(err == 0);
			if (exact && (b.out.len != want.len ||
				      (want.len && memcmp(b.out.p, want.p, want.len)))) {
				dump("commands", wire.p, wire.len);
				dump("replies", b.out.p, b.out.len);
				dump("model", want.p, want.len);
				abort();
			}
		}
		for (unsigned i = 0; i < s->nshards; i++) {
			const struct kv_store *kst = &s->shards[i]->store;

			FUZZ_CHECK(kv_store_check(kst));
			if (lru)
				FUZZ_CHECK(kst->mem <= st.maxmemory / s->nshards || kst->count == 0);
		}
		free(want.p);
		free(wire.p);
		now += steps[take(&g) % (sizeof(steps) / sizeof(steps[0]))];
	}
	resp_free(&p);
	kv_batch_free(&b);
	reset(s, &st);
	return 0;
}
