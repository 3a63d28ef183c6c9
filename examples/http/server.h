/*
 * The HTTP/1.1 server of examples/http as a small library: start it on a
 * pool of loops, learn its port, stop it. main.c wraps it in a command;
 * tests/test_http.c runs it in-process.
 *
 * Routes:
 *   GET|HEAD /             a short hello (text/plain)
 *   GET|HEAD /file/<name>  the file <name> of the configured directory
 *   POST /echo             the request body, sent back
 *   anything else          404, or 405 (with Allow) for a known path
 */
#ifndef HTTP_SERVER_H
#define HTTP_SERVER_H

#include <corio.h>

struct http_server;

/* Zero fields take the default shown. Timeouts are in nanoseconds. */
struct http_server_opts {
	const char *addr;	/* IPv4 or IPv6 literal; NULL: 127.0.0.1 */
	int port;		/* 0: any free port (see http_server_port) */
	unsigned threads;	/* loops; 0: one per CPU of the affinity mask */
	const char *dir;	/* served under /file/; NULL: none (404) */
	int64_t header_timeout; /* a request head, from its first byte; then 408. 10 s */
	int64_t idle_timeout;	/* a kept-alive connection waits this long for a request. 60 s */
	int64_t body_timeout;	/* a request body, from the end of its head. 30 s */
	int64_t send_timeout;	/* each write of responses, for the client to take it. 30 s */
	size_t max_head;	/* request line and fields, bytes; over it: 431. 8 KiB */
	unsigned max_headers;	/* fields; over it: 431. 64 */
	uint64_t max_body;	/* Content-Length over it: 413. 1 MiB */
	unsigned max_clients;	/* connections at once; past it: 503 and close.
				   The open-file limit less 32 (at least 1) */
	struct corio_loop_opts loop; /* options of every loop */
};

/* Listen (one SO_REUSEPORT socket per loop) and serve on a new pool of
 * loops. Returns 0 or -errno (from the directory, the listeners or the
 * pool: -ENOSYS when the configured backend cannot run here). */
int http_server_start(struct http_server **out, const struct http_server_opts *opts);

/* The port it listens on. */
int http_server_port(const struct http_server *s);

/* The number of loops. */
unsigned http_server_threads(const struct http_server *s);

/* Stop: every connection's fiber is cancelled and closes its connection;
 * then the listeners are closed and everything is freed (after a log line
 * if connections were refused or accepts backed off). Not from a loop of
 * the server. */
void http_server_stop(struct http_server *s);

/*
 * Without listeners or loops: a server whose connections the caller hands
 * over one at a time (the fuzz target does). http_server_serve runs one
 * connection on the calling fiber until it ends, and closes @fd. Stop it
 * with http_server_stop.
 */
int http_server_open(struct http_server **out, const struct http_server_opts *opts);
void http_server_serve(struct http_server *s, int fd);

#endif
