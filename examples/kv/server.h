/*
 * A Redis-protocol key-value server on a corio pool: start it, learn its
 * port, stop it. The program (main.c) and the tests use the same calls.
 */
#ifndef KV_SERVER_H
#define KV_SERVER_H

#include <stdbool.h>
#include <stddef.h>

struct kv_server;

struct kv_server_opts {
	const char *addr;   /* IPv4/IPv6 literal; NULL: 127.0.0.1 */
	int port;	    /* 0: an ephemeral port (see kv_server_port) */
	unsigned threads;   /* loops (and shards); 0: one per CPU */
	size_t max_request; /* bytes of one command; 0: 64 MiB */
	bool direct;	    /* connections in direct descriptors (io_uring) */
	/* Settings as CONFIG SET takes them, "name", "value", ..., NULL (e.g.
	 * "maxmemory", "100mb"); NULL: the defaults. See config.c. */
	const char *const *config;
};

/* Bind one listener per loop, start the pool, serve. Returns 0 or -errno
 * (-ENOSYS/-EPERM when the backend cannot run here, -EINVAL for a bad
 * setting, said on stderr). */
int kv_server_start(struct kv_server **out, const struct kv_server_opts *opts);

/* The port it listens on. */
int kv_server_port(const struct kv_server *s);

/* The number of shards, and the shard that owns @key. */
unsigned kv_server_nshards(const struct kv_server *s);
unsigned kv_server_shard_of(const struct kv_server *s, const void *key, size_t len);

/* Stop serving (connections are closed), free everything. From a thread
 * that is not one of the server's loops. */
void kv_server_stop(struct kv_server *s);

#endif
