/*
 * Description: io_uring really blocked. Run by seccomp_exec, under a
 * seccomp filter that makes io_uring_setup fail with EPERM (as Docker's
 * default profile does). The automatic choice falls back to epoll, says
 * why in one line, and works; forcing io_uring fails with -EPERM and a
 * line that names seccomp and the fix; forcing epoll says nothing.
 * Skipped when run without the filter.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "util.h"

/* Capture what corio logs on stderr. */
static int saved_fd = -1;
static FILE *capture;

static void capture_begin(void)
{
	fflush(stderr);
	capture = tmpfile();
	assert_non_null(capture);
	saved_fd = dup(2);
	assert_true(saved_fd >= 0);
	assert_int_equal(dup2(fileno(capture), 2), 2);
}

/* Stop capturing; returns what was written (static buffer). */
static const char *capture_end(void)
{
	static char buf[2048];
	size_t n;

	fflush(stderr);
	assert_int_equal(dup2(saved_fd, 2), 2);
	close(saved_fd);
	rewind(capture);
	n = fread(buf, 1, sizeof(buf) - 1, capture);
	buf[n] = '\0';
	fclose(capture);
	fprintf(stderr, "logged: %s", n ? buf : "(nothing)\n");
	return buf;
}

static int lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static int filtered(void **state)
{
	struct io_uring_params p;

	(void)state;
	memset(&p, 0, sizeof(p));
	errno = 0;
	if (syscall(__NR_io_uring_setup, 4, &p) >= 0 || errno != EPERM) {
		fprintf(stderr, "io_uring is not blocked: run this under seccomp_exec\n");
		exit(77);
	}
	return 0;
}

static void *work(void *arg)
{
	int p[2];
	char c = 0;

	(void)arg;
	assert_int_equal(corio_nop(), 0);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(corio_write(p[1], "e", 1, -1), 1);
	assert_int_equal(corio_read(p[0], &c, 1, -1), 1);
	assert_int_equal(c, 'e');
	close(p[0]);
	close(p[1]);
	return NULL;
}

static void auto_falls_back(void **state)
{
	corio_loop *loop = NULL;
	corio_fiber *f;
	const char *log;
	int err;

	(void)state;
	assert_null(getenv("CORIO_BACKEND")); /* the launcher unset it */
	capture_begin();
	err = corio_loop_create(&loop, NULL);
	log = capture_end();
	assert_int_equal(err, 0);
	assert_string_equal(corio_loop_backend(loop), "epoll");
	assert_int_equal(lines(log), 1);
	assert_non_null(strstr(log, "corio: io_uring unavailable"));
	assert_non_null(strstr(log, "seccomp"));
	assert_non_null(strstr(log, "using epoll"));
	assert_int_equal(corio_spawn(&f, loop, work, NULL, NULL), 0);
	assert_int_equal(corio_loop_run(loop), 0);
	assert_int_equal(corio_join(f, NULL), 0);
	corio_loop_destroy(loop);
}

static void check_refusal(const struct corio_loop_opts *opts)
{
	corio_loop *loop = NULL;
	const char *log;
	int err;

	capture_begin();
	err = corio_loop_create(&loop, opts);
	log = capture_end();
	assert_int_equal(err, -EPERM);
	assert_null(loop);
	assert_null(corio_loop_current());
	assert_int_equal(lines(log), 1);
	assert_non_null(strstr(log, "cannot use io_uring"));
	assert_non_null(strstr(log, "EPERM"));
	assert_non_null(strstr(log, "seccomp"));		/* the cause */
	assert_non_null(strstr(log, "allow io_uring_setup"));	/* a fix */
	assert_non_null(strstr(log, "CORIO_BACKEND=epoll"));	/* the other */
}

static void forced_uring_fails(void **state)
{
	struct corio_loop_opts o = {.backend = CORIO_BACKEND_URING};

	(void)state;
	setenv("CORIO_BACKEND", "uring", 1);
	check_refusal(NULL);
	unsetenv("CORIO_BACKEND");
	check_refusal(&o);
}

static void forced_epoll_quiet(void **state)
{
	corio_loop *loop = NULL;
	const char *log;
	int err;

	(void)state;
	setenv("CORIO_BACKEND", "epoll", 1);
	capture_begin();
	err = corio_loop_create(&loop, NULL);
	log = capture_end();
	unsetenv("CORIO_BACKEND");
	assert_int_equal(err, 0);
	assert_string_equal(log, "");
	assert_string_equal(corio_loop_backend(loop), "epoll");
	corio_loop_destroy(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(auto_falls_back),
		cmocka_unit_test(forced_uring_fails),
		cmocka_unit_test(forced_epoll_quiet),
	};

	return cmocka_run_group_tests(tests, filtered, NULL);
}
