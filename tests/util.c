#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

const char *t_backend(void)
{
	const char *b = getenv("CORIO_BACKEND");

	return b && *b ? b : "uring";
}

corio_loop *t_loop_opts(const struct corio_loop_opts *opts)
{
	corio_loop *loop = NULL;
	int err = corio_loop_create(&loop, opts);

	if (err == -ENOSYS || err == -EPERM) {
		fprintf(stderr, "backend %s unavailable here (%s): skipping\n", t_backend(),
			strerror(-err));
		exit(77);
	}
	assert_int_equal(err, 0);
	assert_non_null(loop);
	return loop;
}

corio_loop *t_loop(void)
{
	return t_loop_opts(NULL);
}

void *t_run(void *(*fn)(void *), void *arg)
{
	corio_loop *loop = t_loop();
	corio_fiber *f;
	void *res = NULL;

	assert_int_equal(corio_spawn(loop, &f, fn, arg, NULL), 0);
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
