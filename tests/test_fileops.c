/*
 * Description: file and path operations on both backends (on epoll they
 * run on the thread pool): offsets and the current position (-1),
 * vectors, O_APPEND, sync calls, fallocate, statx, renameat, unlinkat,
 * mkdirat, openat and close, with their errors; character devices; a
 * FIFO (not a regular file: it waits for readiness and can be cancelled);
 * many concurrent operations; the completion API on files.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

static char *dir;

static const char *in_dir(const char *name)
{
	static char buf[4][256];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static int setup(void **state)
{
	(void)state;
	dir = t_tmpdir();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	t_rmdir_r(dir);
	free(dir);
	return 0;
}

/* ----------------------------------------------- offsets and position */

static void *offsets_body(void *arg)
{
	char buf[32] = {0};
	struct iovec wv[2] = {{"ab", 2}, {"cde", 3}};
	char r1[2], r2[3];
	struct iovec rv[2] = {{r1, 2}, {r2, 3}};
	int fd;

	(void)arg;
	fd = corio_openat(AT_FDCWD, in_dir("off"), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	/* At an offset: the file position does not move. */
	assert_int_equal(corio_write(fd, "hello world", 11, 0), 11);
	assert_int_equal(corio_read(fd, buf, 5, 6), 5);
	assert_memory_equal(buf, "world", 5);
	/* -1: the current position, which moves. */
	assert_int_equal(corio_read(fd, buf, 5, -1), 5);
	assert_memory_equal(buf, "hello", 5);
	assert_int_equal(corio_read(fd, buf, 6, -1), 6);
	assert_memory_equal(buf, " world", 6);
	assert_int_equal(corio_read(fd, buf, 6, -1), 0); /* end of file */
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 11);
	assert_int_equal(corio_write(fd, "!", 1, -1), 1);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 12);
	/* Vectors, at an offset and at the position. */
	assert_int_equal(corio_writev(fd, wv, 2, 100), 5);
	assert_int_equal(corio_readv(fd, rv, 2, 100), 5);
	assert_memory_equal(r1, "ab", 2);
	assert_memory_equal(r2, "cde", 3);
	assert_int_equal(lseek(fd, 100, SEEK_SET), 100);
	memset(r1, 0, 2);
	assert_int_equal(corio_readv(fd, rv, 2, -1), 5);
	assert_memory_equal(r1, "ab", 2);
	/* Reading past the end and a hole. */
	assert_int_equal(corio_read(fd, buf, 4, 1000), 0);
	assert_int_equal(corio_read(fd, buf, 4, 50), 4);
	assert_memory_equal(buf, "\0\0\0\0", 4);
	assert_int_equal(corio_close(fd), 0);

	/* O_APPEND: every write at the end, whatever the offset says. */
	fd = corio_openat(AT_FDCWD, in_dir("app"), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(corio_write(fd, "12", 2, -1), 2);
	assert_int_equal(corio_write(fd, "34", 2, -1), 2);
	assert_int_equal(corio_close(fd), 0);
	fd = corio_openat(AT_FDCWD, in_dir("app"), O_RDONLY | O_CLOEXEC, 0);
	assert_int_equal(corio_read(fd, buf, sizeof(buf), 0), 4);
	assert_memory_equal(buf, "1234", 4);
	/* Wrong direction, a directory. */
	assert_int_equal(corio_write(fd, "x", 1, 0), -EBADF);
	assert_int_equal(corio_close(fd), 0);
	fd = corio_openat(AT_FDCWD, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(corio_read(fd, buf, 1, 0), -EISDIR);
	assert_int_equal(corio_read(fd, buf, 1, -1), -EISDIR);
	assert_int_equal(corio_close(fd), 0);
	return NULL;
}

static void offsets(void **state)
{
	(void)state;
	t_run(offsets_body, NULL);
}

/* ------------------------------------------------------- path calls */

static void *paths_body(void *arg)
{
	struct statx st;
	int fd, dfd, x;

	(void)arg;
	/* openat relative to a directory fd; errors as the kernel says. */
	dfd = corio_openat(AT_FDCWD, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
	assert_true(dfd >= 0);
	assert_int_equal(corio_openat(dfd, "missing", O_RDONLY | O_CLOEXEC, 0), -ENOENT);
	fd = corio_openat(dfd, "p", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	assert_true(fd >= 0);
	assert_int_equal(corio_openat(dfd, "p", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640),
			 -EEXIST);
	assert_int_equal(corio_openat(-1, "p", O_RDONLY | O_CLOEXEC, 0), -EBADF);

	/* fallocate, the sync calls, statx (by fd and by path). */
	assert_int_equal(corio_fallocate(fd, 0, 0, 8192), 0);
	assert_int_equal(corio_write(fd, "data", 4, 0), 4);
	assert_int_equal(corio_fsync(fd), 0);
	assert_int_equal(corio_fdatasync(fd), 0);
	memset(&st, 0, sizeof(st));
	assert_int_equal(corio_statx(fd, "", AT_EMPTY_PATH, STATX_SIZE | STATX_MODE, &st), 0);
	assert_int_equal(st.stx_size, 8192);
	assert_int_equal(st.stx_mode & 0777, 0640);
	assert_int_equal(corio_fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, 0, 4096),
			 0);
	assert_int_equal(corio_statx(dfd, "p", 0, STATX_SIZE, &st), 0);
	assert_int_equal(st.stx_size, 8192);
	assert_int_equal(corio_statx(dfd, "nope", 0, STATX_SIZE, &st), -ENOENT);
	assert_int_equal(corio_fallocate(fd, 0, -1, 10), -EINVAL);

	/* mkdirat, renameat (with flags), unlinkat. */
	assert_int_equal(corio_mkdirat(dfd, "d", 0700), 0);
	assert_int_equal(corio_mkdirat(dfd, "d", 0700), -EEXIST);
	assert_int_equal(corio_renameat(dfd, "p", dfd, "d/q", 0), 0);
	assert_int_equal(corio_statx(dfd, "p", 0, STATX_SIZE, &st), -ENOENT);
	x = corio_openat(dfd, "r", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(x >= 0);
	assert_int_equal(corio_close(x), 0);
	assert_int_equal(corio_renameat(dfd, "r", dfd, "d/q", RENAME_NOREPLACE), -EEXIST);
	assert_int_equal(corio_unlinkat(dfd, "d", AT_REMOVEDIR), -ENOTEMPTY);
	assert_int_equal(corio_unlinkat(dfd, "d/q", 0), 0);
	assert_int_equal(corio_unlinkat(dfd, "d/q", 0), -ENOENT);
	assert_int_equal(corio_unlinkat(dfd, "d", AT_REMOVEDIR), 0);
	assert_int_equal(corio_unlinkat(dfd, "r", 0), 0);

	/* The file stays readable through its fd after the rename/unlink. */
	assert_int_equal(corio_read(fd, &st, 4, 0), 4);
	assert_int_equal(corio_close(fd), 0);
	assert_int_equal(corio_close(fd), -EBADF);
	assert_int_equal(corio_fsync(fd), -EBADF);
	assert_int_equal(corio_close(dfd), 0);
	return NULL;
}

static void paths(void **state)
{
	(void)state;
	t_run(paths_body, NULL);
}

/* ------------------------------------------------- character devices */

static void *devices_body(void *arg)
{
	char buf[4096];
	int z, n;

	(void)arg;
	z = corio_openat(AT_FDCWD, "/dev/zero", O_RDONLY | O_CLOEXEC, 0);
	n = corio_openat(AT_FDCWD, "/dev/null", O_RDWR | O_CLOEXEC, 0);
	assert_true(z >= 0 && n >= 0);
	memset(buf, 1, sizeof(buf));
	assert_int_equal(corio_read(z, buf, sizeof(buf), -1), sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);
	assert_int_equal(corio_write(n, buf, sizeof(buf), -1), sizeof(buf));
	assert_int_equal(corio_read(n, buf, sizeof(buf), -1), 0);
	assert_int_equal(corio_close(z), 0);
	assert_int_equal(corio_close(n), 0);
	return NULL;
}

static void devices(void **state)
{
	(void)state;
	t_run(devices_body, NULL);
}

/* -------------------------------------------------------------- FIFO */

static void *fifo_reader(void *arg)
{
	char c;

	return (void *)(intptr_t)corio_read_until((int)(intptr_t)arg, &c, 1, -1,
						  corio_now() + 10 * CORIO_SEC);
}

/* A FIFO is no regular file: a read waits for data and can be cancelled
 * (it must not sit in a blocking read on a pool thread). */
static void *fifo_body(void *arg)
{
	const char *path = in_dir("fifo");
	corio_fiber *f;
	int fd;
	char c;

	(void)arg;
	assert_int_equal(mkfifo(path, 0600), 0);
	/* O_RDWR: the open does not wait for a writer. */
	fd = corio_openat(AT_FDCWD, path, O_RDWR | O_CLOEXEC, 0);
	assert_true(fd >= 0);
	f = t_spawn(fifo_reader, (void *)(intptr_t)fd);
	for (int i = 0; i < 3; i++)
		assert_int_equal(corio_yield(), 0);
	assert_int_equal(corio_cancel(f), 0);
	assert_int_equal((intptr_t)t_join(f), -ECANCELED);
	f = t_spawn(fifo_reader, (void *)(intptr_t)fd);
	for (int i = 0; i < 3; i++)
		assert_int_equal(corio_yield(), 0);
	assert_int_equal(corio_write(fd, "f", 1, -1), 1);
	assert_int_equal((intptr_t)t_join(f), 1);
	assert_int_equal(corio_read_until(fd, &c, 1, -1, corio_now() + CORIO_MSEC), -ETIMEDOUT);
	assert_int_equal(corio_close(fd), 0);
	return NULL;
}

static void fifo(void **state)
{
	(void)state;
	t_run(fifo_body, NULL);
}

/* ------------------------------------------------- many at once */

#define NFIB 64
#define BLK 4096

static int many_fd;

static void *block_job(void *arg)
{
	int i = (int)(intptr_t)arg;
	char out[BLK], in[BLK];

	memset(out, 'A' + i % 26, sizeof(out));
	out[0] = (char)i;
	assert_int_equal(corio_write(many_fd, out, BLK, (int64_t)i * BLK), BLK);
	assert_int_equal(corio_fdatasync(many_fd), 0);
	assert_int_equal(corio_read(many_fd, in, BLK, (int64_t)i * BLK), BLK);
	assert_memory_equal(in, out, BLK);
	return NULL;
}

static void *many_body(void *arg)
{
	corio_fiber *f[NFIB];
	struct statx st;

	(void)arg;
	many_fd = corio_openat(AT_FDCWD, in_dir("many"), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
			       0600);
	assert_true(many_fd >= 0);
	for (int i = 0; i < NFIB; i++)
		f[i] = t_spawn(block_job, (void *)(intptr_t)i);
	for (int i = 0; i < NFIB; i++)
		t_join(f[i]);
	assert_int_equal(corio_statx(many_fd, "", AT_EMPTY_PATH, STATX_SIZE, &st), 0);
	assert_int_equal(st.stx_size, (uint64_t)NFIB * BLK);
	assert_int_equal(corio_close(many_fd), 0);
	return NULL;
}

static void many_at_once(void **state)
{
	(void)state;
	t_run(many_body, NULL);
}

/* ---------------------------------------------- the completion API */

struct cb {
	int res;
	int calls;
	bool inside; /* called from inside the start call */
};

static bool starting;

static void on_done(corio_loop *loop, int res, unsigned flags, void *user)
{
	struct cb *c = user;

	(void)loop;
	(void)flags;
	c->res = res;
	c->calls++;
	c->inside = starting;
}

static void async_files(void **state)
{
	corio_loop *loop = t_loop();
	struct cb o = {0}, w = {0}, r = {0}, s = {0}, cl = {0}, x = {0};
	char buf[8] = {0};
	corio_req id;
	int fd;

	(void)state;
	starting = true;
	assert_true(corio_async_openat(loop, AT_FDCWD, in_dir("async"),
				       O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600, on_done,
				       &o) > 0);
	starting = false;
	assert_int_equal(corio_loop_run(loop), 0);
	assert_int_equal(o.calls, 1);
	assert_false(o.inside);
	fd = o.res;
	assert_true(fd >= 0);
	assert_true(corio_async_write(loop, fd, "async", 5, 0, on_done, &w) > 0);
	assert_int_equal(corio_loop_run(loop), 0);
	assert_int_equal(w.res, 5);
	assert_true(corio_async_read(loop, fd, buf, 5, 0, on_done, &r) > 0);
	assert_true(corio_async_fsync(loop, fd, on_done, &s) > 0);
	assert_int_equal(corio_loop_run(loop), 0);
	assert_int_equal(r.res, 5);
	assert_memory_equal(buf, "async", 5);
	assert_int_equal(s.res, 0);
	/* Cancelled at once: either not started (-ECANCELED) or already
	 * done (its result); never both, never lost. */
	id = corio_async_read(loop, fd, buf, 5, 0, on_done, &x);
	assert_true(id > 0);
	assert_int_equal(corio_async_cancel(loop, id), 0);
	assert_int_equal(corio_loop_run(loop), 0);
	assert_int_equal(x.calls, 1);
	assert_true(x.res == -ECANCELED || x.res == 5);
	assert_true(corio_async_close(loop, fd, on_done, &cl) > 0);
	assert_int_equal(corio_loop_run(loop), 0);
	assert_int_equal(cl.calls, 1);
	assert_int_equal(cl.res, 0);
	corio_loop_destroy(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(offsets),
		cmocka_unit_test(paths),
		cmocka_unit_test(devices),
		cmocka_unit_test(fifo),
		cmocka_unit_test(many_at_once),
		cmocka_unit_test(async_files),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
