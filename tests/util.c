#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif

bool t_under_valgrind(void)
{
#ifdef RUNNING_ON_VALGRIND
	return RUNNING_ON_VALGRIND;
#else
	return false;
#endif
}

const char *t_backend(void)
{
	const char *b = getenv("CORIO_BACKEND");

	return b && *b ? b : "uring";
}

void t_skip(const char *fmt, ...)
{
	const char *strict = getenv("CORIO_TEST_NO_SKIP");
	bool fail = strict && strstr(strict, t_backend());
	va_list ap;

	fprintf(stderr, fail ? "FAIL, not skipped (CORIO_TEST_NO_SKIP=%s): " : "SKIP: ", strict);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(fail ? 1 : 77);
}

void t_skip_unavailable(int err)
{
	if (err == -ENOSYS || err == -EPERM)
		t_skip("backend %s unavailable here (%s)", t_backend(), strerror(-err));
}

void t_check_backend(const corio_loop *loop)
{
	const char *want = getenv("CORIO_BACKEND");

	if (!want || !*want || !strcmp(want, "auto"))
		return;
	assert_string_equal(corio_loop_backend(loop), !strcmp(want, "epoll") ? "epoll" : "io_uring");
}

corio_loop *t_loop_opts(const struct corio_loop_opts *opts)
{
	corio_loop *loop = NULL;
	int err = corio_loop_create(&loop, opts);

	t_skip_unavailable(err);
	assert_int_equal(err, 0);
	assert_non_null(loop);
	if (!opts || opts->backend == CORIO_BACKEND_AUTO)
		t_check_backend(loop);
	return loop;
}

corio_pool *t_pool(const struct corio_pool_opts *opts)
{
	corio_pool *p = NULL;
	int err = corio_pool_create(&p, opts);

	t_skip_unavailable(err);
	assert_int_equal(err, 0);
	if (opts->loop.backend == CORIO_BACKEND_AUTO)
		for (unsigned i = 0; i < corio_pool_nloops(p); i++)
			t_check_backend(corio_pool_loop(p, i));
	return p;
}

corio_loop *t_loop(void)
{
	return t_loop_opts(NULL);
}

bool t_is_uring(const corio_loop *loop)
{
	return strcmp(corio_loop_backend(loop), "io_uring") == 0;
}

void *t_run(void *(*fn)(void *), void *arg)
{
	return t_run_opts(fn, arg, NULL);
}

void *t_run_opts(void *(*fn)(void *), void *arg, const struct corio_loop_opts *opts)
{
	corio_loop *loop = t_loop_opts(opts);
	corio_fiber *f;
	void *res = NULL;

	assert_int_equal(corio_spawn(&f, loop, fn, arg, NULL), 0);
	assert_int_equal(corio_loop_run(loop), 0);
	assert_int_equal(corio_join(f, &res), 0);
	corio_loop_destroy(loop);
	return res;
}

void t_socketpair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

int t_listen_tcp(int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 1024), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

char *t_tmpdir(void)
{
	char *p = strdup("/tmp/corio-test-XXXXXX");

	assert_non_null(p);
	assert_non_null(mkdtemp(p));
	return p;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void t_rmdir_r(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

corio_fiber *t_spawn(void *(*fn)(void *), void *arg)
{
	corio_fiber *f = NULL;

	assert_int_equal(corio_spawn(&f, NULL, fn, arg, NULL), 0);
	assert_non_null(f);
	return f;
}

void *t_join(corio_fiber *f)
{
	void *res = NULL;

	assert_int_equal(corio_join(f, &res), 0);
	return res;
}

void t_turns(int n)
{
	while (n-- > 0)
		assert_int_equal(corio_yield(), 0);
}

void t_pipe(int p[2])
{
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
}

void t_tcp_pair(int *client, int *server)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	int port, lfd = t_listen_tcp(&port);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(c >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	/* Loopback connect completes against the backlog without accept. */
	assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	*server = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(*server >= 0);
	*client = c;
	close(lfd);
}

void t_fill(void *buf, size_t len, unsigned seed)
{
	unsigned char *b = buf;
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		b[i] = (unsigned char)(x >> 16);
	}
}

bool t_check(const void *buf, size_t len, unsigned seed)
{
	const unsigned char *b = buf;
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < len; i++) {
		x = x * 1103515245u + 12345u;
		if (b[i] != (unsigned char)(x >> 16))
			return false;
	}
	return true;
}

int t_readable(int fd)
{
	int n = -1;

	assert_int_equal(ioctl(fd, FIONREAD, &n), 0);
	return n;
}

void t_sigpipe_fatal(void)
{
	struct sigaction sa;

	corio_loop_destroy(t_loop());
	signal(SIGPIPE, SIG_DFL);
	assert_int_equal(sigaction(SIGPIPE, NULL, &sa), 0);
	assert_true(sa.sa_handler == SIG_DFL);
}

static int capture_fd = -1, saved_stderr = -1;

void t_capture_start(void)
{
	char path[] = "/tmp/corio-stderr-XXXXXX";

	if (capture_fd >= 0)
		free(t_capture_end()); /* a test failed while capturing */
	fflush(stderr);
	capture_fd = mkstemp(path);
	assert_true(capture_fd >= 0);
	unlink(path);
	saved_stderr = dup(2);
	assert_true(saved_stderr >= 0);
	assert_int_equal(dup2(capture_fd, 2), 2);
}

char *t_capture_end(void)
{
	off_t n;
	char *out;

	fflush(stderr);
	assert_int_equal(dup2(saved_stderr, 2), 2);
	close(saved_stderr);
	n = lseek(capture_fd, 0, SEEK_END);
	assert_true(n >= 0);
	out = malloc((size_t)n + 1);
	assert_non_null(out);
	assert_int_equal(pread(capture_fd, out, (size_t)n, 0), n);
	out[n] = '\0';
	close(capture_fd);
	capture_fd = saved_stderr = -1;
	/* What was captured still shows in the test's log. */
	fputs(out, stderr);
	return out;
}

int t_count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}
