/*
 * The KV server: a corio pool, one shard of the keyspace per loop, one
 * SO_REUSEPORT listener per loop, a fiber per connection.
 *
 * How a connection's input becomes replies (one batch):
 *
 *   1. Peek at what is buffered (the kernel's receive buffers, in place) and
 *      parse as many complete commands as are there: a pipeline. Multibulk
 *      arguments point into those buffers; nothing is copied.
 *   2. Check each command (arity, options, numbers) and split it into
 *      operations, one per key, each on the shard that owns the key (by a
 *      keyed hash). Each shard's operations form one list, in command order.
 *   3. Send one call per shard that has operations (corio_call_start to all
 *      of them, so they run in parallel on their loops), run this loop's own
 *      shard's list directly (no message at all), then corio_call_wait each.
 *      A shard writes its replies into the batch's buffer for that shard.
 *   4. Assemble every reply in command order (merging the pieces of MGET,
 *      summing DEL/EXISTS/DBSIZE counts) and send them with one write.
 *   5. Mark the input consumed, and go on with what follows.
 *
 * A command cut off at the end of the buffered bytes waits for more with
 * corio_conn_peek_more (the parser resumes where it stopped). A protocol
 * error is answered, after the replies of the commands before it, and the
 * connection closed, as Redis does.
 *
 * A batch ends after an inline command (its arguments live in the parser's
 * scratch memory, which the next inline command reuses), after QUIT, and at
 * BATCH_CMDS commands or BATCH_OPS operations, so that one client cannot
 * hold its shards for long.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kv.h"

#define BATCH_CMDS 1024u
#define BATCH_OPS 16384u
#define DEFAULT_MAX_REQUEST ((size_t)64 << 20)
/* The active expiry runs this often, for at most EXPIRE_BUDGET at a time. */
#define EXPIRE_PERIOD (100 * CORIO_MSEC)
#define EXPIRE_BUDGET CORIO_MSEC

struct conn {
	struct kv_shard *home; /* this loop's shard */
	corio_conn *c;
	struct resp_parser parser;
	struct kv_batch b;
};

/* ------------------------------------------------------------ batches */

static void batch_start(struct kv_batch *b)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	kv_batch_reset(b, corio_now() / CORIO_MSEC,
		       (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* On shard k's loop: run the batch's part k. */
static void *part_call(void *arg)
{
	struct kv_part *p = arg;

	kv_exec_part(p, p->b->srv->shards[p->shard]);
	return NULL;
}

/* Run every shard's part: one call per other shard, all in flight at once,
 * and our own part right here. Returns 0 or -errno (then not every part
 * ran; the connection must go). */
static int batch_run(struct conn *cn)
{
	struct kv_batch *b = &cn->b;
	corio_pool *pool = corio_pool_current();
	unsigned self = cn->home->index;
	int err = 0, e;

	for (unsigned s = 0; s < b->srv->nshards; s++) {
		struct kv_part *p = &b->parts[s];

		p->started = false;
		if (!p->nops || s == self || err)
			continue;
		err = corio_call_start(&p->req, pool, s, part_call, p);
		p->started = !err;
	}
	if (!err && b->parts[self].nops)
		kv_exec_part(&b->parts[self], cn->home);
	/* Wait for every call that started, whatever happened: the shards
	 * write into this batch until they reply. */
	for (unsigned s = 0; s < b->srv->nshards; s++) {
		if (!b->parts[s].started)
			continue;
		e = corio_call_wait(&b->parts[s].req, NULL);
		if (e && !err)
			err = e;
	}
	return err;
}

/* ---------------------------------------------------------- a connection */

/* "addr=IP:PORT" of the connection's peer, as Redis names clients. */
static void peer_name(const struct conn *cn, char *out, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	/* A direct descriptor is not a file descriptor: no address. */
	if (getpeername(corio_conn_fd(cn->c), (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip, sizeof(ip));
			port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip, sizeof(ip));
			port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		}
	}
	snprintf(out, size, "addr=%s:%d", ip, port);
}

/* The batch's replies passed client-output-buffer-limit: say so, count it,
 * and let the connection go (nothing of the batch is sent). */
static void obuf_close(struct conn *cn)
{
	const struct kv_batch *b = &cn->b;
	char peer[80];

	peer_name(cn, peer, sizeof(peer));
	cn->home->obuf_disconnects++;
	fprintf(stderr,
		"kv: client %s closed for overcoming of output buffer limits: %zu bytes of "
		"replies (client-output-buffer-limit normal %zu %zu %u)\n",
		peer, b->obuf_bytes, b->obuf_hard, b->obuf_soft, b->obuf_secs);
}

/* Serve one connection until it ends, errs or quits. */
static void conn_loop(struct conn *cn)
{
	struct kv_batch *b = &cn->b;
	bool more = false;

	for (;;) {
		const char *data;
		ssize_t n, r = RESP_MORE;
		size_t off = 0;
		bool stop = false;

		n = more ? corio_conn_peek_more(cn->c, (const void **)&data)
			 : corio_conn_peek(cn->c, (const void **)&data);
		if (n == -EMSGSIZE) {
			/* The limits keep a command within max_buffered;
			 * this is a last resort. */
			static const char e[] = "-ERR Protocol error: too big request\r\n";

			corio_conn_write(cn->c, e, sizeof(e) - 1);
			return;
		}
		if (n <= 0)
			return;
		batch_start(b);
		while (off < (size_t)n) {
			bool inl = data[off] != '*';

			r = resp_parse(&cn->parser, data + off, (size_t)n - off);
			if (r <= 0)
				break;
			off += (size_t)r;
			if (!cn->parser.argc)
				continue;
			if (!kv_batch_add(b, &cn->parser))
				return;
			if (inl || b->quit || b->ncmds >= BATCH_CMDS || b->nops >= BATCH_OPS)
				break;
		}
		if (b->ncmds) {
			int err = batch_run(cn);

			if (!err)
				err = kv_batch_reply(b);
			if (err == -ENOBUFS)
				obuf_close(cn);
			if (err)
				return;
			cn->home->cmds_total += b->ncmds;
		}
		if (r == RESP_ERR) {
			buf_fmt(&b->out, "-ERR Protocol error: %s\r\n", cn->parser.error);
			cn->home->proto_errors++;
			stop = true;
		} else if (r == RESP_NOMEM || b->quit) {
			stop = true;
		}
		if (b->out.oom)
			return;
		if (b->out.len && corio_conn_write(cn->c, b->out.p, b->out.len) < 0)
			return;
		if (off)
			corio_conn_consume(cn->c, off);
		if (stop)
			return;
		/* Only a command cut off at the very front needs more bytes
		 * than the buffer showed; otherwise look again. */
		more = r == RESP_MORE && off == 0;
	}
}

static void conn_main(int fd, void *arg)
{
	static const char full[] = "-ERR max number of clients reached\r\n";
	struct kv_shard *home = arg;
	struct kv_server *srv = home->srv;
	struct corio_conn_opts co = {
		/* A whole command must fit; the slack covers the receive
		 * buffer that brought its last bytes (and what follows). */
		.max_buffered = srv->lim.max_request + srv->lim.max_inline + (1u << 20),
	};
	struct conn cn = {.home = home};
	unsigned max = atomic_load_explicit(&srv->cfg.maxclients, memory_order_relaxed);

	if (corio_conn_open(&cn.c, fd, &co)) {
		corio_close(fd); /* corio_close: fd may be a direct descriptor */
		return;
	}
	/* maxclients, as Redis: past it the client is told, then closed. */
	if (atomic_fetch_add_explicit(&srv->nclients, 1, memory_order_relaxed) >= max) {
		/* Counted as a client only while it is one. */
		atomic_fetch_sub_explicit(&srv->nclients, 1, memory_order_relaxed);
		home->rejected++;
		corio_conn_write(cn.c, full, sizeof(full) - 1);
	} else {
		if (kv_batch_init(&cn.b, srv)) {
			home->clients++;
			home->conns_total++;
			resp_init(&cn.parser, &srv->lim);
			conn_loop(&cn);
			resp_free(&cn.parser);
			home->clients--;
		}
		atomic_fetch_sub_explicit(&srv->nclients, 1, memory_order_relaxed);
	}
	kv_batch_free(&cn.b);
	corio_conn_close(cn.c);
}

/* ---------------------------------------------------------- per loop */

static void *serve_main(void *arg)
{
	struct kv_shard *sh = arg;
	struct corio_serve_opts so = {.direct = sh->srv->o.direct, .stats = &sh->serve};
	int err = corio_serve(sh->srv->lfds[sh->index], conn_main, sh, &so);

	if (err != -ECANCELED)
		fprintf(stderr, "kv: loop %u stopped accepting: %s\n", sh->index, strerror(-err));
	return NULL;
}

/* Redis-style active expiry: a few samples every EXPIRE_PERIOD, more while
 * many keys are found expired, within EXPIRE_BUDGET. */
static void *expire_main(void *arg)
{
	struct kv_shard *sh = arg;

	while (corio_sleep(EXPIRE_PERIOD) == 0) {
		int64_t t0 = corio_now();

		while (kv_store_expire_cycle(&sh->store, corio_now() / CORIO_MSEC, 16) &&
		       corio_now() - t0 < EXPIRE_BUDGET)
			;
		kv_shard_mem_update(sh);
	}
	return NULL;
}

static void on_start(corio_loop *loop, unsigned index, void *arg)
{
	struct kv_server *srv = arg;
	struct kv_shard *sh = srv->shards[index];
	struct corio_fiber_opts fo = {.detached = true};

	sh->loop = loop;
	fo.name = "kv-accept";
	if (corio_spawn(NULL, loop, serve_main, sh, &fo))
		fprintf(stderr, "kv: loop %u: no memory to accept connections\n", index);
	fo.name = "kv-expire";
	if (corio_spawn(NULL, loop, expire_main, sh, &fo))
		fprintf(stderr, "kv: loop %u: no active expiry (no memory)\n", index);
}

/* ------------------------------------------------------------ server */

static void seed_once(void)
{
	static bool seeded;
	uint64_t seed;

	/* Process-wide: every server and shard must agree on the hash. */
	if (seeded)
		return;
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint64_t)corio_now() ^ (uint64_t)getpid() << 32;
	kv_hash_seed(seed);
	seeded = true;
}

static unsigned cpu_count(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 1;
	return (unsigned)CPU_COUNT(&set);
}

static void server_free(struct kv_server *s)
{
	for (unsigned i = 0; s->lfds && i < s->nshards; i++)
		if (s->lfds[i] >= 0)
			close(s->lfds[i]);
	for (unsigned i = 0; s->shards && i < s->nshards; i++) {
		if (s->shards[i])
			kv_store_free(&s->shards[i]->store);
		free(s->shards[i]);
	}
	free(s->lfds);
	free(s->shards);
	pthread_mutex_destroy(&s->cfg.lock);
	free(s);
}

int kv_server_start(struct kv_server **out, const struct kv_server_opts *opts)
{
	struct corio_pool_opts po = {0};
	struct kv_server *s;
	int err = -ENOMEM;

	/* Aligned: the shared counters have cache lines of their own. */
	s = aligned_alloc(_Alignof(struct kv_server), sizeof(*s));
	if (!s)
		return -ENOMEM;
	memset(s, 0, sizeof(*s));
	if (opts)
		s->o = *opts;
	err = kv_config_init(&s->cfg, s->o.config);
	if (err) {
		free(s);
		return err;
	}
	err = -ENOMEM;
	s->nshards = s->o.threads ? s->o.threads : cpu_count();
	s->lim.max_request = s->o.max_request ? s->o.max_request : DEFAULT_MAX_REQUEST;
	s->lim.max_bulk = s->lim.max_request;
	s->lim.max_args = RESP_DEFAULT_MAX_ARGS;
	s->lim.max_inline = RESP_DEFAULT_MAX_INLINE;
	s->lfds = malloc(s->nshards * sizeof(*s->lfds));
	s->shards = calloc(s->nshards, sizeof(*s->shards));
	if (!s->lfds || !s->shards) {
		free(s->lfds);
		s->lfds = NULL;
		goto fail;
	}
	for (unsigned i = 0; i < s->nshards; i++)
		s->lfds[i] = -1;
	seed_once();
	/* The first listener picks the port (0: any); the others share it. */
	for (unsigned i = 0; i < s->nshards; i++) {
		s->lfds[i] = corio_listen_tcp(s->o.addr, i ? s->port : s->o.port, 0,
					      CORIO_LISTEN_REUSEPORT);
		if (s->lfds[i] < 0) {
			err = s->lfds[i];
			goto fail;
		}
		if (i == 0)
			s->port = corio_local_port(s->lfds[0]);
	}
	/* Shards are allocated here, small; their tables grow on their own
	 * loops, so the memory a shard uses is first touched there. */
	for (unsigned i = 0; i < s->nshards; i++) {
		s->shards[i] = calloc(1, sizeof(*s->shards[i]));
		if (!s->shards[i] || kv_store_init(&s->shards[i]->store))
			goto fail;
		s->shards[i]->srv = s;
		s->shards[i]->index = i;
	}
	s->started = corio_now();
	po.nloops = s->nshards;
	po.on_start = on_start;
	po.arg = s;
	err = corio_pool_create(&s->pool, &po);
	if (err)
		goto fail;
	*out = s;
	return 0;
fail:
	server_free(s);
	return err;
}

int kv_server_port(const struct kv_server *s)
{
	return s->port;
}

unsigned kv_server_nshards(const struct kv_server *s)
{
	return s->nshards;
}

unsigned kv_server_shard_of(const struct kv_server *s, const void *key, size_t len)
{
	return kv_shard_of_hash(kv_hash(key, len), s->nshards);
}

void kv_server_stop(struct kv_server *s)
{
	if (!s)
		return;
	corio_pool_destroy(s->pool); /* cancels every fiber, joins the loops */
	server_free(s);
}
