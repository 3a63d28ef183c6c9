/*
 * echo: a TCP echo server on one corio loop, one fiber per connection, on
 * the io_uring fast path.
 *
 * What it shows:
 *  - corio_serve: one multishot accept keeps the listener armed; every
 *    connection gets its own fiber, written as blocking code;
 *  - corio_conn: a multishot receive fills the loop's provided-buffer ring;
 *    the handler echoes straight out of the kernel's buffers, all that has
 *    arrived in one writev (peekv, writev, consume): no system call and no
 *    copy per read;
 *  - signals as I/O: SIGINT and SIGTERM are read from a signalfd by a fiber,
 *    which stops the loop; corio_loop_destroy() then cancels what is still
 *    waiting, and waits for the kernel to give back every buffer;
 *  - errors as values: a client's reset ends its fiber with -ECONNRESET or
 *    -EPIPE (never SIGPIPE); running out of descriptors makes the accept loop
 *    back off, not die.
 * Kernel: io_uring multishot receive needs Linux 6.0; older kernels and the
 * epoll backend take the plain path under the same code.
 *
 *  - --direct: connections are accepted into direct descriptors (io_uring's
 *    registered files): the kernel skips the file lookup on every receive
 *    and send; the handler is the same.
 *
 * Usage: echo [--direct] [host] [port]   (default 127.0.0.1 7000; port 0
 * picks one)
 * Once ready it prints "listening on PORT" on standard output.
 *
 * Test with: nc 127.0.0.1 7000
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <corio.h>

static void connection(int fd, void *arg)
{
	struct iovec iov[16];
	corio_conn *c;
	ssize_t n;
	int cnt;

	(void)arg;
	if (corio_conn_open(&c, fd, NULL)) {
		corio_close(fd); /* corio_close: fd may be a direct descriptor */
		return;
	}
	while ((n = corio_conn_peekv(c, iov, (cnt = 16, &cnt))) > 0) {
		if (corio_conn_writev(c, iov, cnt) < 0)
			break;
		corio_conn_consume(c, (size_t)n);
	}
	if (n < 0 && n != -ECONNRESET && n != -EPIPE && n != -ECANCELED)
		fprintf(stderr, "echo: connection %d: %s\n", fd, strerror((int)-n));
	corio_conn_close(c);
}

static bool direct;

static void *acceptor(void *arg)
{
	struct corio_serve_opts so = {.direct = direct};
	int err = corio_serve((int)(intptr_t)arg, connection, NULL, &so);

	if (err != -ECANCELED)
		fprintf(stderr, "echo: accept: %s\n", strerror(-err));
	return NULL;
}

/* Waits for SIGINT or SIGTERM, then stops the loop. */
static void *signals(void *arg)
{
	struct signalfd_siginfo si;
	ssize_t n = corio_read((int)(intptr_t)arg, &si, sizeof(si), -1);

	if (n == (ssize_t)sizeof(si))
		fprintf(stderr, "echo: %s, stopping\n", strsignal((int)si.ssi_signo));
	corio_loop_stop(corio_loop_current());
	return NULL;
}

int main(int argc, char **argv)
{
	struct corio_fiber_opts detached = {.detached = true};
	const char *host;
	corio_loop *loop;
	sigset_t mask;
	int port, sfd, lfd, err, status = 1;

	if (argc > 1 && !strcmp(argv[1], "--direct")) {
		direct = true;
		argv++;
		argc--;
	}
	if (argc > 3 || (argc > 1 && argv[1][0] == '-')) {
		fprintf(stderr, "usage: echo [--direct] [host] [port]\n");
		return 2;
	}
	host = argc > 1 ? argv[1] : "127.0.0.1";
	port = argc > 2 ? atoi(argv[2]) : 7000;
	/* Block the signals before any thread exists: only the signalfd sees them. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0) {
		perror("echo: signalfd");
		return 1;
	}
	lfd = corio_listen_tcp(host, port, 0, 0);
	if (lfd < 0) {
		fprintf(stderr, "echo: cannot listen on %s:%d: %s\n", host, port, strerror(-lfd));
		goto out_sfd;
	}
	err = corio_loop_create(&loop, NULL);
	if (err) {
		fprintf(stderr, "echo: cannot create the loop: %s\n", strerror(-err));
		goto out_listen;
	}
	err = corio_spawn(NULL, loop, signals, (void *)(intptr_t)sfd, &detached);
	if (!err)
		err = corio_spawn(NULL, loop, acceptor, (void *)(intptr_t)lfd, &detached);
	if (err) {
		fprintf(stderr, "echo: cannot start: %s\n", strerror(-err));
		goto out_loop;
	}
	printf("listening on %d\n", corio_local_port(lfd));
	fflush(stdout);
	/* Which backend serves: scripts check it before a figure counts. */
	fprintf(stderr, "echo: serving on %s\n", corio_loop_backend(loop));
	err = corio_loop_run(loop);
	if (err)
		fprintf(stderr, "echo: loop: %s\n", strerror(-err));
	else
		status = 0;
out_loop:
	/* Cancels the acceptor and every connection, and waits for them. */
	corio_loop_destroy(loop);
out_listen:
	close(lfd);
out_sfd:
	close(sfd);
	return status;
}
