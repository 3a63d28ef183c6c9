/*
 * Replies about the server: INFO (Redis's sections plus one with corio's
 * per-loop counters), COMMAND (enough for redis-cli and client libraries
 * that introspect), CONFIG GET (what redis-benchmark asks for).
 *
 * INFO runs as one operation on every shard (each reads its own loop's
 * counters on its own thread), and the connection's fiber formats the
 * gathered figures.
 */
#define _GNU_SOURCE
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "kv.h"

void kv_shard_info(struct kv_shard *sh, struct kv_shard_info *out)
{
	memset(out, 0, sizeof(*out));
	out->keys = sh->store.count;
	out->expires = sh->store.nvol;
	out->mem = sh->store.mem;
	out->expired = sh->store.st.expired;
	out->evicted = sh->store.st.evicted;
	out->hits = sh->store.st.hits;
	out->misses = sh->store.st.misses;
	out->clients = sh->clients;
	out->conns_total = sh->conns_total;
	out->cmds_total = sh->cmds_total;
	out->proto_errors = sh->proto_errors;
	out->rejected = sh->rejected + sh->serve.refused;
	out->obuf_disconnects = sh->obuf_disconnects;
	out->backoffs = sh->serve.backoffs;
	corio_loop_stats(sh->loop, &out->loop, sizeof(out->loop));
	snprintf(out->backend, sizeof(out->backend), "%s", corio_loop_backend(sh->loop));
}

/* ---------------------------------------------------------------- INFO */

enum { S_SERVER, S_CLIENTS, S_MEMORY, S_STATS, S_KEYSPACE, S_CORIO, S_COUNT };

static const char *const section_names[S_COUNT] = {
	"server", "clients", "memory", "stats", "keyspace", "corio",
};

/* Which sections the arguments ask for (none, "default", "all" and
 * "everything" mean all of ours). */
static unsigned wanted_sections(struct kv_batch *b, struct kv_cmd *c)
{
	unsigned mask = 0;

	if (c->argc == 1)
		return (1u << S_COUNT) - 1;
	for (uint32_t i = 1; i < c->argc; i++) {
		const struct resp_arg *a = kv_arg(b, c, i);

		if ((a->len == 7 && !strncasecmp(a->p, "default", 7)) ||
		    (a->len == 3 && !strncasecmp(a->p, "all", 3)) ||
		    (a->len == 10 && !strncasecmp(a->p, "everything", 10)))
			return (1u << S_COUNT) - 1;
		for (unsigned s = 0; s < S_COUNT; s++)
			if (a->len == strlen(section_names[s]) &&
			    !strncasecmp(a->p, section_names[s], a->len))
				mask |= 1u << s;
	}
	return mask;
}

static void human_bytes(char *out, size_t n, uint64_t v)
{
	if (v < 1024)
		snprintf(out, n, "%lluB", (unsigned long long)v);
	else if (v < 1024 * 1024)
		snprintf(out, n, "%.2fK", v / 1024.0);
	else if (v < 1024ull * 1024 * 1024)
		snprintf(out, n, "%.2fM", v / (1024.0 * 1024));
	else
		snprintf(out, n, "%.2fG", v / (1024.0 * 1024 * 1024));
}

/* Resident set size, from /proc/self/statm (0 if unreadable). */
static uint64_t rss_bytes(void)
{
	unsigned long long pages = 0;
	FILE *f = fopen("/proc/self/statm", "re");

	if (f) {
		if (fscanf(f, "%*u %llu", &pages) != 1)
			pages = 0;
		fclose(f);
	}
	return pages * (uint64_t)sysconf(_SC_PAGESIZE);
}

static void section(struct kv_buf *t, unsigned *first, const char *title)
{
	if (!*first)
		buf_str(t, "\r\n");
	*first = 0;
	buf_fmt(t, "# %s\r\n", title);
}

void kv_reply_info(struct kv_batch *b, struct kv_cmd *c)
{
	struct kv_server *srv = b->srv;
	unsigned n = c->nops, first = 1, want = wanted_sections(b, c);
	struct kv_shard_info *si = calloc(n ? n : 1, sizeof(*si));
	struct kv_shard_info sum = {0};
	struct kv_buf t = {0};
	int64_t up = (corio_now() - srv->started) / CORIO_SEC;
	struct kv_settings cfg;
	struct utsname u;
	char human[32];

	if (!si) {
		b->out.oom = true;
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		const struct kv_op *op = &b->ops[c->op0 + i];

		if (op->rlen == sizeof(si[i]))
			memcpy(&si[i], b->parts[op->shard].rbuf.p + op->roff, sizeof(si[i]));
		sum.keys += si[i].keys;
		sum.expires += si[i].expires;
		sum.mem += si[i].mem;
		sum.expired += si[i].expired;
		sum.evicted += si[i].evicted;
		sum.hits += si[i].hits;
		sum.misses += si[i].misses;
		sum.clients += si[i].clients;
		sum.conns_total += si[i].conns_total;
		sum.cmds_total += si[i].cmds_total;
		sum.proto_errors += si[i].proto_errors;
		sum.rejected += si[i].rejected;
		sum.obuf_disconnects += si[i].obuf_disconnects;
		sum.backoffs += si[i].backoffs;
	}
	if (want & (1u << S_SERVER)) {
		section(&t, &first, "Server");
		if (uname(&u))
			memset(&u, 0, sizeof(u));
		/* Clients and tools read redis_version to pick a dialect. */
		buf_fmt(&t,
			"redis_version:7.0.0\r\ncorio_version:%s\r\nredis_mode:standalone\r\n"
			"os:%s %s %s\r\narch_bits:%d\r\nmultiplexing_api:%s\r\nprocess_id:%ld\r\n"
			"tcp_port:%d\r\nuptime_in_seconds:%lld\r\nuptime_in_days:%lld\r\n",
			corio_version(), u.sysname, u.release, u.machine, (int)(sizeof(void *) * 8),
			n ? si[0].backend : "", (long)getpid(), srv->port, (long long)up,
			(long long)(up / 86400));
	}
	kv_config_load(&srv->cfg, &cfg);
	if (want & (1u << S_CLIENTS)) {
		section(&t, &first, "Clients");
		buf_fmt(&t, "connected_clients:%llu\r\nmaxclients:%u\r\n",
			(unsigned long long)sum.clients, cfg.maxclients);
	}
	if (want & (1u << S_MEMORY)) {
		uint64_t rss = rss_bytes();

		section(&t, &first, "Memory");
		human_bytes(human, sizeof(human), sum.mem);
		buf_fmt(&t, "used_memory:%llu\r\nused_memory_human:%s\r\n",
			(unsigned long long)sum.mem, human);
		human_bytes(human, sizeof(human), rss);
		buf_fmt(&t, "used_memory_rss:%llu\r\nused_memory_rss_human:%s\r\n",
			(unsigned long long)rss, human);
		human_bytes(human, sizeof(human), cfg.maxmemory);
		buf_fmt(&t, "maxmemory:%zu\r\nmaxmemory_human:%s\r\nmaxmemory_policy:%s\r\n",
			cfg.maxmemory, human, kv_policy_name(cfg.policy));
	}
	if (want & (1u << S_STATS)) {
		section(&t, &first, "Stats");
		buf_fmt(&t,
			"total_connections_received:%llu\r\ntotal_commands_processed:%llu\r\n"
			"rejected_connections:%llu\r\nexpired_keys:%llu\r\nevicted_keys:%llu\r\n"
			"keyspace_hits:%llu\r\nkeyspace_misses:%llu\r\nprotocol_errors:%llu\r\n"
			"client_output_buffer_limit_disconnections:%llu\r\naccept_backoffs:%llu\r\n",
			(unsigned long long)sum.conns_total, (unsigned long long)sum.cmds_total,
			(unsigned long long)sum.rejected, (unsigned long long)sum.expired,
			(unsigned long long)sum.evicted, (unsigned long long)sum.hits,
			(unsigned long long)sum.misses, (unsigned long long)sum.proto_errors,
			(unsigned long long)sum.obuf_disconnects, (unsigned long long)sum.backoffs);
	}
	if (want & (1u << S_KEYSPACE)) {
		section(&t, &first, "Keyspace");
		if (sum.keys)
			buf_fmt(&t, "db0:keys=%llu,expires=%llu,avg_ttl=0\r\n",
				(unsigned long long)sum.keys, (unsigned long long)sum.expires);
	}
	if (want & (1u << S_CORIO)) {
		section(&t, &first, "Corio");
		buf_fmt(&t, "backend:%s\r\nloops:%u\r\n", n ? si[0].backend : "", n);
		for (unsigned i = 0; i < n; i++) {
			const struct corio_loop_stats *l = &si[i].loop;

			buf_fmt(&t,
				"loop%u:turns=%llu,enters=%llu,wakes_sent=%llu,wakes_elided=%llu,"
				"msgs_received=%llu,sleeps=%llu,ops_completed=%llu,keys=%llu,"
				"clients=%llu,commands=%llu\r\n",
				i, (unsigned long long)l->turns, (unsigned long long)l->enters,
				(unsigned long long)l->wakes_sent, (unsigned long long)l->wakes_elided,
				(unsigned long long)l->msgs_received, (unsigned long long)l->sleeps,
				(unsigned long long)l->ops_completed, (unsigned long long)si[i].keys,
				(unsigned long long)si[i].clients, (unsigned long long)si[i].cmds_total);
		}
	}
	if (t.oom)
		b->out.oom = true;
	else
		r_bulk(&b->out, t.p ? t.p : "", t.len);
	buf_free(&t);
	free(si);
}

/* ------------------------------------------------------------- COMMAND */

static void reply_flags(struct kv_buf *o, const char *flags)
{
	char tmp[128];
	size_t n = 0;
	char *save, *w;

	snprintf(tmp, sizeof(tmp), "%s", flags);
	for (w = strtok_r(tmp, " ", &save); w; w = strtok_r(NULL, " ", &save))
		n++;
	r_array(o, n);
	snprintf(tmp, sizeof(tmp), "%s", flags);
	for (w = strtok_r(tmp, " ", &save); w; w = strtok_r(NULL, " ", &save))
		r_simple(o, w);
}

static size_t count_subs(const struct kv_cmdspec *subs)
{
	size_t n = 0;

	while (subs && subs[n].name)
		n++;
	return n;
}

/* Redis 7's ten-field command description (RESP2). */
static void reply_cmd_info(struct kv_buf *o, const struct kv_cmdspec *s)
{
	size_t nsub = count_subs(s->subs);

	r_array(o, 10);
	r_bulkstr(o, s->name);
	r_int(o, s->arity);
	reply_flags(o, s->flags);
	r_int(o, s->first);
	r_int(o, s->last);
	r_int(o, s->step);
	r_array(o, 1);
	buf_fmt(o, "+@%s\r\n", s->group);
	r_array(o, 0); /* tips */
	r_array(o, 0); /* key specs */
	r_array(o, nsub);
	for (size_t i = 0; i < nsub; i++)
		reply_cmd_info(o, &s->subs[i]);
}

static void reply_cmd_docs(struct kv_buf *o, const struct kv_cmdspec *s)
{
	size_t nsub = count_subs(s->subs);

	r_bulkstr(o, s->name);
	r_array(o, nsub ? 8 : 6);
	r_bulkstr(o, "summary");
	r_bulkstr(o, s->summary);
	r_bulkstr(o, "since");
	r_bulkstr(o, s->since);
	r_bulkstr(o, "group");
	r_bulkstr(o, s->group);
	if (nsub) {
		r_bulkstr(o, "subcommands");
		r_array(o, nsub * 2);
		for (size_t i = 0; i < nsub; i++)
			reply_cmd_docs(o, &s->subs[i]);
	}
}

static const struct kv_cmdspec *by_name(const struct resp_arg *a)
{
	for (size_t i = 0; i < kv_ncommands; i++)
		if (a->len == strlen(kv_commands[i].name) &&
		    !strncasecmp(a->p, kv_commands[i].name, a->len))
			return &kv_commands[i];
	return NULL;
}

void kv_reply_command(struct kv_batch *b, struct kv_cmd *c)
{
	struct kv_buf *o = &b->out;
	size_t n = 0;

	switch (c->spec->id) {
	case C_COMMAND_COUNT:
		r_int(o, (long long)kv_ncommands);
		return;
	case C_COMMAND_LIST:
		r_array(o, kv_ncommands);
		for (size_t i = 0; i < kv_ncommands; i++)
			r_bulkstr(o, kv_commands[i].name);
		return;
	case C_COMMAND_INFO:
		if (c->argc > 2) {
			r_array(o, c->argc - 2);
			for (uint32_t i = 2; i < c->argc; i++) {
				const struct kv_cmdspec *s = by_name(kv_arg(b, c, i));

				if (s)
					reply_cmd_info(o, s);
				else
					buf_str(o, "*-1\r\n");
			}
			return;
		}
		break; /* no names: every command */
	case C_COMMAND_DOCS:
		if (c->argc > 2) {
			for (uint32_t i = 2; i < c->argc; i++)
				n += by_name(kv_arg(b, c, i)) != NULL;
			r_array(o, n * 2);
			for (uint32_t i = 2; i < c->argc; i++) {
				const struct kv_cmdspec *s = by_name(kv_arg(b, c, i));

				if (s)
					reply_cmd_docs(o, s);
			}
		} else {
			r_array(o, kv_ncommands * 2);
			for (size_t i = 0; i < kv_ncommands; i++)
				reply_cmd_docs(o, &kv_commands[i]);
		}
		return;
	default:
		break;
	}
	r_array(o, kv_ncommands);
	for (size_t i = 0; i < kv_ncommands; i++)
		reply_cmd_info(o, &kv_commands[i]);
}

/* -------------------------------------------------------------- CONFIG */

enum { P_APPENDONLY, P_BIND, P_OBUF, P_DATABASES, P_MAXCLIENTS, P_MAXMEMORY, P_POLICY, P_PORT,
       P_SAVE, P_COUNT };

static const char *const param_names[P_COUNT] = {
	"appendonly", "bind", "client-output-buffer-limit", "databases", "maxclients",
	"maxmemory", "maxmemory-policy", "port", "save",
};

void kv_reply_config(struct kv_batch *b, struct kv_cmd *c)
{
	const struct kv_server *srv = b->srv;
	char vals[P_COUNT][96];
	bool hit[P_COUNT] = {false};
	struct kv_settings st;
	size_t n = 0;

	kv_config_load(&srv->cfg, &st);
	snprintf(vals[P_APPENDONLY], sizeof(vals[0]), "no");
	snprintf(vals[P_BIND], sizeof(vals[0]), "%s", srv->o.addr ? srv->o.addr : "127.0.0.1");
	snprintf(vals[P_OBUF], sizeof(vals[0]), "normal %zu %zu %u", st.obuf_hard, st.obuf_soft,
		 st.obuf_secs);
	snprintf(vals[P_DATABASES], sizeof(vals[0]), "1");
	snprintf(vals[P_MAXCLIENTS], sizeof(vals[0]), "%u", st.maxclients);
	snprintf(vals[P_MAXMEMORY], sizeof(vals[0]), "%zu", st.maxmemory);
	snprintf(vals[P_POLICY], sizeof(vals[0]), "%s", kv_policy_name(st.policy));
	snprintf(vals[P_PORT], sizeof(vals[0]), "%d", srv->port);
	vals[P_SAVE][0] = '\0';
	for (uint32_t i = 2; i < c->argc; i++) {
		const struct resp_arg *a = kv_arg(b, c, i);
		char *pat = strndup(a->p, a->len);

		if (!pat) {
			b->out.oom = true;
			return;
		}
		for (size_t k = 0; k < P_COUNT; k++)
			if (!hit[k] && !fnmatch(pat, param_names[k], FNM_CASEFOLD)) {
				hit[k] = true;
				n++;
			}
		free(pat);
	}
	r_array(&b->out, n * 2);
	for (size_t k = 0; k < P_COUNT; k++)
		if (hit[k]) {
			r_bulkstr(&b->out, param_names[k]);
			r_bulkstr(&b->out, vals[k]);
		}
}

static bool same_arg(const struct resp_arg *x, const struct resp_arg *y)
{
	return x->len == y->len && !strncasecmp(x->p, y->p, x->len);
}

enum kv_err kv_config_set(struct kv_batch *b, struct kv_cmd *c)
{
	struct kv_config *cfg = &b->srv->cfg;
	enum kv_cfg_err e = CFG_OK;
	struct kv_settings st;
	long long extra = 0;

	if ((c->argc - 2) % 2)
		return E_ARITY;
	/* All or nothing, as Redis 7: parse every pair into a copy, then
	 * store it, under the lock so that two CONFIG SETs do not mix. */
	pthread_mutex_lock(&cfg->lock);
	kv_config_load(cfg, &st);
	for (uint32_t i = 2; i < c->argc && !e; i += 2) {
		const struct resp_arg *name = kv_arg(b, c, i), *val = kv_arg(b, c, i + 1);

		for (uint32_t j = 2; j < i && !e; j += 2)
			if (same_arg(name, kv_arg(b, c, j)))
				e = CFG_DUPLICATE;
		if (!e)
			e = kv_setting_parse(&st, name->p, name->len, val->p, val->len, &extra);
		if (e) {
			c->err_arg = i;
			c->flags = e;
			c->n = extra;
		}
	}
	if (!e)
		kv_config_store(cfg, &st);
	pthread_mutex_unlock(&cfg->lock);
	return e ? E_CONFIG : E_NONE;
}
