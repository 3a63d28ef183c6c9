/*
 * echo: a TCP echo server on one corio loop, one fiber per connection.
 *
 * What it shows:
 *  - a fiber per connection written as blocking code: corio_accept,
 *    corio_recv and corio_send suspend only the calling fiber, and the
 *    loop batches every fiber's operation into one io_uring_enter per turn;
 *  - signals as I/O: SIGINT and SIGTERM are blocked and read from a
 *    signalfd by a fiber, which stops the loop; corio_loop_destroy() then
 *    cancels the fibers still waiting (their calls return -ECANCELED), and
 *    each closes its own socket;
 *  - errors as values: a client that resets its connection makes recv or
 *    send return -ECONNRESET / -EPIPE (send never raises SIGPIPE), which
 *    ends that connection's fiber and nothing else; a failing accept
 *    (e.g. -EMFILE) is reported and retried after a short pause.
 *
 * Usage: echo [host] [port]     (default 127.0.0.1 7000; port 0 picks one)
 * Once ready it prints "listening on PORT" on standard output.
 *
 * Test with: nc 127.0.0.1 7000
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <corio.h>

#define BUF_SIZE 16384

static int listen_fd = -1;

/* Set-up uses plain system calls: nothing to wait for yet. */
static int open_listener(const char *host, const char *port)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	};
	struct addrinfo *res, *ai;
	int fd = -1, one = 1, err;

	err = getaddrinfo(host, port, &hints, &res);
	if (err) {
		fprintf(stderr, "echo: %s:%s: %s\n", host, port, gai_strerror(err));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, SOMAXCONN) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
		errno = err;
	}
	if (fd < 0)
		fprintf(stderr, "echo: cannot listen on %s:%s: %s\n", host, port,
			strerror(errno));
	freeaddrinfo(res);
	return fd;
}

static int bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return -1;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Send all of buf; a short send is followed by another. */
static ssize_t send_all(int fd, const char *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = corio_send(fd, buf + done, len - done, 0);

		if (n < 0)
			return n;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

static void *connection(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[BUF_SIZE]; /* on the fiber's stack: safe, see corio/io.h */
	ssize_t n;

	for (;;) {
		n = corio_recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			break; /* 0: the client closed; < 0: reset, or we are stopping */
		n = send_all(fd, buf, (size_t)n);
		if (n < 0)
			break;
	}
	if (n < 0 && n != -ECONNRESET && n != -EPIPE && n != -ECANCELED)
		fprintf(stderr, "echo: connection %d: %s\n", fd, strerror((int)-n));
	/* Plain close: while the loop is being destroyed every corio call returns
	 * -ECANCELED, and closing a socket never blocks anyway. */
	close(fd);
	return NULL;
}

static void *acceptor(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = corio_accept(listen_fd, NULL, NULL, SOCK_CLOEXEC);

		if (fd == -ECANCELED)
			break;
		if (fd < 0) {
			/* Out of descriptors or memory, or a connection aborted before
			 * we took it: report, breathe, go on. */
			fprintf(stderr, "echo: accept: %s\n", strerror(-fd));
			if (fd != -ECONNABORTED && corio_sleep(100 * CORIO_MSEC) == -ECANCELED)
				break;
			continue;
		}
		struct corio_fiber_opts o = {.detached = true, .name = "connection"};
		int err = corio_spawn(NULL, NULL, connection, (void *)(intptr_t)fd, &o);

		if (err) {
			fprintf(stderr, "echo: no fiber for a connection: %s\n", strerror(-err));
			close(fd);
		}
	}
	return NULL;
}

/* Waits for SIGINT or SIGTERM, then stops the loop. */
static void *signals(void *arg)
{
	int sfd = (int)(intptr_t)arg;
	struct signalfd_siginfo si;
	ssize_t n = corio_read(sfd, &si, sizeof(si), -1);

	if (n == (ssize_t)sizeof(si))
		fprintf(stderr, "echo: %s, stopping\n", strsignal((int)si.ssi_signo));
	corio_loop_stop(corio_loop_current());
	return NULL;
}

int main(int argc, char **argv)
{
	const char *host = argc > 1 ? argv[1] : "127.0.0.1";
	const char *port = argc > 2 ? argv[2] : "7000";
	struct corio_fiber_opts detached = {.detached = true};
	corio_loop *loop;
	sigset_t mask;
	int sfd, err, status = 1;

	if (argc > 3) {
		fprintf(stderr, "usage: %s [host] [port]\n", argv[0]);
		return 2;
	}
	/* Block the signals before any thread exists, so that only the signalfd
	 * sees them. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0) {
		perror("echo: signalfd");
		return 1;
	}
	listen_fd = open_listener(host, port);
	if (listen_fd < 0)
		goto out_sfd;
	err = corio_loop_create(&loop, NULL);
	if (err) {
		fprintf(stderr, "echo: cannot create the loop: %s\n", strerror(-err));
		goto out_listen;
	}
	err = corio_spawn(loop, NULL, signals, (void *)(intptr_t)sfd, &detached);
	if (!err)
		err = corio_spawn(loop, NULL, acceptor, NULL, &detached);
	if (err) {
		fprintf(stderr, "echo: cannot start: %s\n", strerror(-err));
		goto out_loop;
	}
	printf("listening on %d\n", bound_port(listen_fd));
	fflush(stdout);
	err = corio_loop_run(loop);
	if (err)
		fprintf(stderr, "echo: loop: %s\n", strerror(-err));
	else
		status = 0;
out_loop:
	/* Cancels the acceptor and every connection, and waits for them. */
	corio_loop_destroy(loop);
out_listen:
	close(listen_fd);
out_sfd:
	close(sfd);
	return status;
}
