/*
 * Settings: parsed the way CONFIG SET takes them, whether they come from
 * the command line (main.c), the tests (kv_server_opts.config) or a client.
 *
 *   maxclients N                        connections at once (default: 10000,
 *                                       or the open-file limit less 32)
 *   maxmemory BYTES                     0: no limit ("100mb", "1gb", "512kb")
 *   maxmemory-policy noeviction|allkeys-lru
 *   client-output-buffer-limit "normal HARD SOFT SECONDS"
 *
 * The live values are atomics in struct kv_config, read (relaxed) by every
 * loop; a CONFIG SET stores them all under a mutex, so that two of them do
 * not interleave. A reader may see a new maxmemory with the old policy for
 * a moment; nothing depends on seeing them together.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#include "kv.h"

/* Descriptors kept for the server's own use (listeners, rings, logs), as
 * Redis keeps CONFIG_MIN_RESERVED_FDS. */
#define RESERVED_FDS 32u
#define DEFAULT_MAXCLIENTS 10000u

static const char *const policy_names[] = {
	[KV_NOEVICTION] = "noeviction",
	[KV_ALLKEYS_LRU] = "allkeys-lru",
};

const char *kv_policy_name(int policy)
{
	return policy == KV_ALLKEYS_LRU ? policy_names[KV_ALLKEYS_LRU] : policy_names[KV_NOEVICTION];
}

static bool word_is(const char *p, size_t n, const char *word)
{
	return strlen(word) == n && !strncasecmp(p, word, n);
}

/* Redis's memtoull: digits, then b, k, kb, m, mb, g or gb (k = 1000, kb =
 * 1024...), any case. */
static bool parse_memory(const char *p, size_t n, size_t *out)
{
	static const struct {
		const char *unit;
		unsigned long long mul;
	} units[] = {
		{"", 1}, {"b", 1}, {"k", 1000}, {"kb", 1024}, {"m", 1000 * 1000},
		{"mb", 1024 * 1024}, {"g", 1000ull * 1000 * 1000}, {"gb", 1024ull * 1024 * 1024},
	};
	unsigned long long v = 0;
	size_t i = 0;

	while (i < n && p[i] >= '0' && p[i] <= '9') {
		if (v > (ULLONG_MAX - 9) / 10)
			return false;
		v = v * 10 + (unsigned)(p[i++] - '0');
	}
	if (i == 0)
		return false;
	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++)
		if (word_is(p + i, n - i, units[u].unit)) {
			if (v > SIZE_MAX / units[u].mul)
				return false;
			*out = (size_t)(v * units[u].mul);
			return true;
		}
	return false;
}

/* The next blank-separated word of [*p, end). */
static bool next_word(const char **p, const char *end, const char **w, size_t *wn)
{
	while (*p < end && isspace((unsigned char)**p))
		(*p)++;
	*w = *p;
	while (*p < end && !isspace((unsigned char)**p))
		(*p)++;
	*wn = (size_t)(*p - *w);
	return *wn > 0;
}

static enum kv_cfg_err parse_obuf(struct kv_settings *st, const char *p, size_t n)
{
	const char *end = p + n, *w[4];
	size_t wn[4], hard, soft, secs;
	int k;

	for (;;) {
		for (k = 0; k < 4 && next_word(&p, end, &w[k], &wn[k]); k++)
			;
		if (k == 0)
			return CFG_OK;
		if (k < 4)
			return CFG_OBUF_ARGS;
		/* Only normal clients exist here: no replicas, no pubsub. */
		if (!word_is(w[0], wn[0], "normal"))
			return CFG_OBUF_CLASS;
		if (!parse_memory(w[1], wn[1], &hard) || !parse_memory(w[2], wn[2], &soft) ||
		    !parse_memory(w[3], wn[3], &secs) || secs > UINT_MAX)
			return CFG_OBUF_VALUE;
		st->obuf_hard = hard;
		st->obuf_soft = soft;
		st->obuf_secs = (unsigned)secs;
	}
}

/*
 * Make room for @want clients under RLIMIT_NOFILE: raise the soft limit
 * towards want + RESERVED_FDS (up to the hard limit), as Redis does.
 * Returns how many clients the limit allows now.
 */
static unsigned fit_clients(unsigned want)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)want + RESERVED_FDS;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return want;
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
		struct rlimit up = rl;

		up.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
		if (!setrlimit(RLIMIT_NOFILE, &up))
			rl = up;
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
		return want;
	return rl.rlim_cur > RESERVED_FDS ? (unsigned)(rl.rlim_cur - RESERVED_FDS) : 1;
}

enum kv_cfg_err kv_setting_parse(struct kv_settings *st, const char *name, size_t nlen,
				 const char *val, size_t vlen, long long *extra)
{
	static const char *const fixed[] = {"appendonly", "bind", "databases", "port", "save"};

	if (word_is(name, nlen, "maxmemory")) {
		if (!parse_memory(val, vlen, &st->maxmemory))
			return CFG_MEMORY;
	} else if (word_is(name, nlen, "maxmemory-policy")) {
		for (int i = 0; i < KV_POLICY_COUNT; i++)
			if (word_is(val, vlen, policy_names[i])) {
				st->policy = i;
				return CFG_OK;
			}
		return CFG_POLICY;
	} else if (word_is(name, nlen, "maxclients")) {
		long long n;
		unsigned can;

		if (!resp_strtoll(val, vlen, &n))
			return CFG_INTEGER;
		if (n < 1 || n > UINT_MAX)
			return CFG_RANGE;
		can = fit_clients((unsigned)n);
		if (can < n) {
			*extra = can;
			return CFG_TOO_MANY_CLIENTS;
		}
		st->maxclients = (unsigned)n;
	} else if (word_is(name, nlen, "client-output-buffer-limit")) {
		return parse_obuf(st, val, vlen);
	} else {
		for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
			if (word_is(name, nlen, fixed[i]))
				return CFG_IMMUTABLE;
		return CFG_UNKNOWN;
	}
	return CFG_OK;
}

const char *kv_cfg_error(enum kv_cfg_err e)
{
	switch (e) {
	case CFG_OK: return "";
	case CFG_UNKNOWN: return "unknown option";
	case CFG_IMMUTABLE: return "can't set immutable config";
	case CFG_MEMORY: return "argument must be a memory value";
	case CFG_POLICY:
		return "argument(s) must be one of the following: noeviction, allkeys-lru";
	case CFG_INTEGER: return "argument couldn't be parsed into an integer";
	case CFG_RANGE: return "argument must be between 1 and 4294967295 inclusive";
	case CFG_TOO_MANY_CLIENTS:
		return "The operating system is not able to handle the specified number of "
		       "clients, try with ";
	case CFG_OBUF_ARGS: return "Wrong number of arguments in buffer limit configuration.";
	case CFG_OBUF_CLASS:
		return "Invalid client class specified in buffer limit configuration "
		       "(only 'normal' clients exist here).";
	case CFG_OBUF_VALUE:
		return "Error in hard, soft or soft_seconds setting in buffer limit configuration.";
	case CFG_DUPLICATE: return "duplicate parameter";
	}
	return "";
}

void kv_config_load(const struct kv_config *cfg, struct kv_settings *st)
{
	st->maxmemory = atomic_load_explicit(&cfg->maxmemory, memory_order_relaxed);
	st->policy = atomic_load_explicit(&cfg->policy, memory_order_relaxed);
	st->maxclients = atomic_load_explicit(&cfg->maxclients, memory_order_relaxed);
	st->obuf_hard = atomic_load_explicit(&cfg->obuf_hard, memory_order_relaxed);
	st->obuf_soft = atomic_load_explicit(&cfg->obuf_soft, memory_order_relaxed);
	st->obuf_secs = atomic_load_explicit(&cfg->obuf_secs, memory_order_relaxed);
}

void kv_config_store(struct kv_config *cfg, const struct kv_settings *st)
{
	atomic_store_explicit(&cfg->maxmemory, st->maxmemory, memory_order_relaxed);
	atomic_store_explicit(&cfg->policy, st->policy, memory_order_relaxed);
	atomic_store_explicit(&cfg->maxclients, st->maxclients, memory_order_relaxed);
	atomic_store_explicit(&cfg->obuf_hard, st->obuf_hard, memory_order_relaxed);
	atomic_store_explicit(&cfg->obuf_soft, st->obuf_soft, memory_order_relaxed);
	atomic_store_explicit(&cfg->obuf_secs, st->obuf_secs, memory_order_relaxed);
}

int kv_config_init(struct kv_config *cfg, const char *const *pairs)
{
	struct kv_settings st = {
		.maxclients = DEFAULT_MAXCLIENTS,
		.policy = KV_NOEVICTION,
		.obuf_hard = KV_DEFAULT_OBUF_HARD,
	};
	bool asked = false;
	unsigned can;

	pthread_mutex_init(&cfg->lock, NULL);
	for (size_t i = 0; pairs && pairs[i]; i += 2) {
		long long extra = 0;
		enum kv_cfg_err e;

		if (!pairs[i + 1]) {
			fprintf(stderr, "kv: setting '%s' has no value\n", pairs[i]);
			return -EINVAL;
		}
		e = kv_setting_parse(&st, pairs[i], strlen(pairs[i]), pairs[i + 1],
				     strlen(pairs[i + 1]), &extra);
		if (e == CFG_TOO_MANY_CLIENTS) {
			/* At start, as Redis: fewer clients, and a warning below. */
			st.maxclients = (unsigned)strtoul(pairs[i + 1], NULL, 10);
			asked = true;
		} else if (e) {
			fprintf(stderr, "kv: %s '%s': %s\n", pairs[i], pairs[i + 1], kv_cfg_error(e));
			return -EINVAL;
		} else if (!strcasecmp(pairs[i], "maxclients")) {
			asked = true;
		}
	}
	can = fit_clients(st.maxclients);
	if (can < st.maxclients) {
		if (asked)
			fprintf(stderr,
				"kv: maxclients %u needs %u open files, but the limit is %u "
				"(ulimit -n): maxclients is %u\n",
				st.maxclients, st.maxclients + RESERVED_FDS, can + RESERVED_FDS, can);
		st.maxclients = can;
	}
	kv_config_store(cfg, &st);
	return 0;
}
