/*
 * Helpers for the wrappers of documentation blocks (tests/doc_blocks.sh):
 * run a server block in a child process on a free port, talk to it, stop
 * it. Plain blocking sockets with a receive timeout, so that a broken
 * server fails the test instead of hanging it.
 */
#ifndef CORIO_DOC_H
#define CORIO_DOC_H

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <corio.h>

#define DOC_FAIL(...)                                                                        \
	do {                                                                                 \
		fprintf(stderr, "doc: " __VA_ARGS__);                                        \
		fprintf(stderr, " (%s:%d)\n", __FILE__, __LINE__);                           \
		exit(1);                                                                     \
	} while (0)
#define DOC_CHECK(cond)                                                                      \
	do {                                                                                 \
		if (!(cond))                                                                 \
			DOC_FAIL("check failed: %s", #cond);                                 \
	} while (0)

/* For blocks that listen on a fixed port: listen on a free one instead and
 * say which on standard output, as "listening on PORT". */
static inline int doc_listen(const char *host, int backlog, unsigned flags)
{
	int fd = corio_listen_tcp(host, 0, backlog, flags);

	if (fd >= 0) {
		printf("listening on %d\n", corio_local_port(fd));
		fflush(stdout);
	}
	return fd;
}

/* Run fn(argc, argv) in a child whose standard output comes to us; wait for
 * its "listening on PORT" line. Returns the child's pid, *port the port. */
static inline pid_t doc_start(int (*fn)(int, char **), int argc, char **argv, int *port)
{
	char line[128];
	int p[2];
	pid_t pid;
	FILE *f;

	DOC_CHECK(pipe(p) == 0);
	pid = fork();
	DOC_CHECK(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		dup2(p[1], STDOUT_FILENO);
		close(p[1]);
		exit(fn(argc, argv));
	}
	close(p[1]);
	f = fdopen(p[0], "r");
	DOC_CHECK(f && fgets(line, sizeof(line), f));
	DOC_CHECK(sscanf(line, "listening on %d", port) == 1);
	fclose(f);
	return pid;
}

static inline int doc_connect(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {.tv_sec = 20};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	DOC_CHECK(fd >= 0);
	DOC_CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0);
	DOC_CHECK(connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	return fd;
}

/* Send @out, expect @in back (exactly). */
static inline void doc_roundtrip(int fd, const char *out, const char *in)
{
	size_t len = strlen(in), got = 0;
	char buf[256];

	DOC_CHECK(len < sizeof(buf));
	DOC_CHECK(send(fd, out, strlen(out), MSG_NOSIGNAL) == (ssize_t)strlen(out));
	while (got < len) {
		ssize_t n = recv(fd, buf + got, len - got, 0);

		if (n <= 0)
			DOC_FAIL("expected %zu bytes back, got %zu", len, got);
		got += (size_t)n;
	}
	if (memcmp(buf, in, len))
		DOC_FAIL("wrong answer: %.*s", (int)len, buf);
}

/* Send @sig to the child and return its wait status. */
static inline int doc_stop(pid_t pid, int sig)
{
	int st;

	DOC_CHECK(kill(pid, sig) == 0);
	DOC_CHECK(waitpid(pid, &st, 0) == pid);
	return st;
}

#endif
