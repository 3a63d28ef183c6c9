/*
 * The examples, run as programs: echo (start on an ephemeral port, echo
 * through it from several clients, survive clients that reset, stop on
 * SIGTERM) and cat (files, standard input, a missing file).
 *
 * No sleeps: echo says "listening on PORT" on its standard output when it
 * is ready, and the test reads that line. Client sockets have a receive
 * timeout only so that a broken server fails the test instead of hanging it.
 *
 * The binaries come from $CORIO_TEST_BINDIR/examples; they inherit
 * CORIO_BACKEND, so each backend runs them.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

static char echo_bin[4096], cat_bin[4096];

static int setup(void **state)
{
	const char *dir = getenv("CORIO_TEST_BINDIR");
	corio_loop *loop;

	(void)state;
	/* Skips when this backend cannot run here; the examples could not. */
	loop = t_loop();
	corio_loop_destroy(loop);
	snprintf(echo_bin, sizeof(echo_bin), "%s/examples/echo", dir ? dir : ".");
	snprintf(cat_bin, sizeof(cat_bin), "%s/examples/cat", dir ? dir : ".");
	if (access(echo_bin, X_OK) || access(cat_bin, X_OK))
		t_skip("examples not built (%s)", echo_bin);
	return 0;
}

/* fork + exec @argv with the given descriptors as 0, 1, 2 (-1: inherit). */
static pid_t run(char *const argv[], int in, int out, int err)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGPIPE, SIG_DFL); /* as a shell starts it */
		if ((in >= 0 && dup2(in, 0) < 0) || (out >= 0 && dup2(out, 1) < 0) ||
		    (err >= 0 && dup2(err, 2) < 0))
			_exit(126);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static int wait_exit(pid_t pid)
{
	int st;

	assert_int_equal(waitpid(pid, &st, 0), pid);
	if (!WIFEXITED(st)) {
		fprintf(stderr, "child ended by signal %d\n", WTERMSIG(st));
		fail();
	}
	return WEXITSTATUS(st);
}

/* --------------------------------------------------------------- echo */

static int connect_to(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	struct timeval tv = {.tv_sec = 30};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static void send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue; /* see recv_exact */
		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

static void recv_exact(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = recv(fd, p, len, 0);

		/* With SO_RCVTIMEO the kernel returns EINTR rather than
		 * restarting when the thread is notified, e.g. by the teardown
		 * of the io_uring that setup() created. */
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fprintf(stderr, "recv: %zd (%s)\n", n, n < 0 ? strerror(errno) : "EOF");
		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

static void expect_echo(int fd, const void *msg, size_t len)
{
	char back[4096];

	assert_true(len <= sizeof(back));
	send_all(fd, msg, len);
	recv_exact(fd, back, len);
	assert_memory_equal(back, msg, len);
}

/* Close with a reset (RST) instead of an orderly FIN. */
static void reset(int fd)
{
	struct linger l = {.l_onoff = 1, .l_linger = 0};

	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)), 0);
	close(fd);
}

static void echo_run(char **argv)
{
	int out[2], fds[16], port = 0, fd, idle;
	char line[128], msg[4096];
	FILE *f;
	pid_t pid;

	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	pid = run(argv, -1, out[1], -1);
	close(out[1]);
	f = fdopen(out[0], "r");
	assert_non_null(f);
	if (!fgets(line, sizeof(line), f) || sscanf(line, "listening on %d", &port) != 1) {
		fprintf(stderr, "echo did not start (exit %d)\n", wait_exit(pid));
		fail();
	}
	assert_true(port > 0);

	/* One client. */
	fd = connect_to(port);
	expect_echo(fd, "hello\n", 6);
	close(fd);

	/* Many at once: each has its own fiber; answer in reverse order. */
	for (int i = 0; i < 16; i++) {
		fds[i] = connect_to(port);
		snprintf(msg, sizeof(msg), "client %d\n", i);
		send_all(fds[i], msg, strlen(msg));
	}
	for (int i = 15; i >= 0; i--) {
		char back[32];

		snprintf(msg, sizeof(msg), "client %d\n", i);
		recv_exact(fds[i], back, strlen(msg));
		assert_memory_equal(back, msg, strlen(msg));
		close(fds[i]);
	}

	/* 256 KiB through one connection, 4 KiB at a time. */
	fd = connect_to(port);
	for (int i = 0; i < 64; i++) {
		memset(msg, 'a' + i % 26, sizeof(msg));
		expect_echo(fd, msg, sizeof(msg));
	}
	close(fd);

	/* Resets: right after sending, and while the server is blocked sending
	 * to a client that never reads. */
	fd = connect_to(port);
	send_all(fd, "x", 1);
	reset(fd);
	fd = connect_to(port);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	memset(msg, 'z', sizeof(msg));
	for (int i = 0; i < 1024 && send(fd, msg, sizeof(msg), MSG_NOSIGNAL) > 0; i++)
		;
	reset(fd);

	/* Still serving; and a connection left open across the stop. */
	fd = connect_to(port);
	expect_echo(fd, "still here\n", 11);
	close(fd);
	idle = connect_to(port);
	expect_echo(idle, "idle\n", 5);

	assert_int_equal(kill(pid, SIGTERM), 0);
	assert_int_equal(wait_exit(pid), 0);
	/* The server closed the idle connection on its way out. */
	{
		ssize_t n;

		while ((n = recv(idle, msg, sizeof(msg), 0)) < 0 && errno == EINTR)
			;
		assert_int_equal(n, 0);
	}
	close(idle);
	fclose(f);
}

static void echo_server(void **state)
{
	char *argv[] = {echo_bin, "127.0.0.1", "0", NULL};

	(void)state;
	echo_run(argv);
}

/* The same with direct descriptors (plain ones on epoll): as many clients
 * at once as the accepts it keeps armed, resets, the stop. */
static void echo_server_direct(void **state)
{
	char *argv[] = {echo_bin, "--direct", "127.0.0.1", "0", NULL};

	(void)state;
	echo_run(argv);
}

static void echo_usage(void **state)
{
	char *argv[] = {echo_bin, "--bogus", NULL};

	(void)state;
	assert_int_equal(wait_exit(run(argv, -1, -1, -1)), 2);
}

/* ---------------------------------------------------------------- cat */

static char *path_in(const char *dir, const char *name)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static char *read_file(const char *path, size_t *len)
{
	struct stat st;
	char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	buf[st.st_size] = '\0';
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

static int open_rd(const char *p)
{
	int fd = open(p, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

static int open_wr(const char *p)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	return fd;
}

static void cat_files(void **state)
{
	char *dir = t_tmpdir();
	char *a = path_in(dir, "a"), *b = path_in(dir, "b"), *in = path_in(dir, "in");
	char *out = path_in(dir, "out"), *err = path_in(dir, "err");
	char *missing = path_in(dir, "missing");
	size_t alen = 300000, len, elen;
	char *data = malloc(alen), *got, *expect, *errs;
	int fin, fout, ferr;

	(void)state;
	/* Larger than cat's buffer, so it takes several reads. */
	for (size_t i = 0; i < alen; i++)
		data[i] = (char)(i * 7919 % 251);
	write_file(a, data, alen);
	write_file(b, "tail\n", 5);
	write_file(in, "from stdin\n", 11);

	/* Files, "-" and a missing file: everything else copied, exit 1. */
	{
		char *argv[] = {cat_bin, a, "-", missing, b, NULL};

		fin = open_rd(in);
		fout = open_wr(out);
		ferr = open_wr(err);
		assert_int_equal(wait_exit(run(argv, fin, fout, ferr)), 1);
		close(fin);
		close(fout);
		close(ferr);
	}
	got = read_file(out, &len);
	expect = malloc(alen + 16);
	memcpy(expect, data, alen);
	memcpy(expect + alen, "from stdin\ntail\n", 16);
	assert_int_equal(len, alen + 16);
	assert_memory_equal(got, expect, len);
	errs = read_file(err, &elen);
	assert_non_null(strstr(errs, "missing"));
	free(got);
	free(errs);

	/* No argument: standard input. */
	{
		char *argv[] = {cat_bin, NULL};

		fin = open_rd(a);
		fout = open_wr(out);
		assert_int_equal(wait_exit(run(argv, fin, fout, -1)), 0);
		close(fin);
		close(fout);
	}
	got = read_file(out, &len);
	assert_int_equal(len, alen);
	assert_memory_equal(got, data, alen);

	free(got);
	free(expect);
	free(data);
	free(a);
	free(b);
	free(in);
	free(out);
	free(err);
	free(missing);
	t_rmdir_r(dir);
	free(dir);
}

/* cat into a pipe whose reader stops early (`cat big | head -c 10`): the
 * write fails with -EPIPE, not SIGPIPE, and cat stops quietly with 0. The
 * file is larger than the pipe holds, so cat is still writing then. */
static void cat_reader_gone(void **state)
{
	char *dir = t_tmpdir();
	char *a = path_in(dir, "a"), *err = path_in(dir, "err");
	size_t alen = 1 << 20, elen;
	char *data = calloc(1, alen), *errs, buf[10];
	char *argv[] = {cat_bin, a, a, NULL};
	int p[2], ferr;
	pid_t pid;

	(void)state;
	write_file(a, data, alen);
	t_pipe(p);
	ferr = open_wr(err);
	pid = run(argv, -1, p[1], ferr);
	close(p[1]);
	close(ferr);
	assert_int_equal(read(p[0], buf, sizeof(buf)), (ssize_t)sizeof(buf));
	close(p[0]);
	assert_int_equal(wait_exit(pid), 0);
	errs = read_file(err, &elen);
	assert_int_equal(elen, 0);
	free(errs);
	free(data);
	free(a);
	free(err);
	t_rmdir_r(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(echo_server),
		cmocka_unit_test(echo_server_direct),
		cmocka_unit_test(echo_usage),
		cmocka_unit_test(cat_files),
		cmocka_unit_test(cat_reader_gone),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, NULL);
}
