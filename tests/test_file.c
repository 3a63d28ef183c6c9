/*
 * File calls from fibers, in a temporary directory: openat, close, read,
 * write, readv, writev (explicit offsets and -1 for the file position),
 * fsync, fdatasync, statx, fallocate, unlinkat, renameat, mkdirat, with
 * their error paths and their _until forms.
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
static int dfd;

static int setup(void **state)
{
	(void)state;
	dir = t_tmpdir();
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(dfd >= 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	close(dfd);
	t_rmdir_r(dir);
	free(dir);
	return 0;
}

static int64_t far(void)
{
	return corio_now() + 3600 * CORIO_SEC;
}

/* ------------------------------------------------------- open and close */

static void *open_close_body(void *arg)
{
	int fd, fd2;
	char path[256];

	(void)arg;
	fd = corio_openat(dfd, "a", O_CREAT | O_RDWR | O_CLOEXEC, 0640);
	assert_true(fd >= 0);
	assert_int_equal(corio_openat(dfd, "a", O_CREAT | O_EXCL | O_RDWR, 0640), -EEXIST);
	assert_int_equal(corio_openat(dfd, "missing", O_RDONLY, 0), -ENOENT);
	assert_int_equal(corio_openat(-1, "a", O_RDONLY, 0), -EBADF);
	assert_int_equal(corio_openat(dfd, "a/b", O_RDONLY, 0), -ENOTDIR);
	/* Absolute paths ignore dfd; AT_FDCWD works. */
	snprintf(path, sizeof(path), "%s/a", dir);
	fd2 = corio_openat_until(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0, far());
	assert_true(fd2 >= 0);
	assert_int_equal(corio_close_until(fd2, far()), 0);
	assert_int_equal(corio_close(fd), 0);
	/* Closed: the fd is gone. */
	assert_int_equal(corio_close(fd), -EBADF);
	assert_int_equal(fcntl(fd, F_GETFD), -1);
	assert_int_equal(corio_close(-1), -EBADF);
	assert_int_equal(corio_unlinkat(dfd, "a", 0), 0);
	return NULL;
}

static void open_close(void **state)
{
	(void)state;
	t_run(open_close_body, NULL);
}

/* ---------------------------------------------------- read and write */

static void *rw_body(void *arg)
{
	char buf[64];
	int fd, ro;

	(void)arg;
	fd = corio_openat(dfd, "rw", O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	/* Explicit offsets do not move the file position. */
	assert_int_equal(corio_write(fd, "hello", 5, 0), 5);
	assert_int_equal(corio_write(fd, "world", 5, 100), 5);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 0);
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(corio_read(fd, buf, 5, 100), 5);
	assert_memory_equal(buf, "world", 5);
	/* The hole reads as zeros; a read across EOF is short; at EOF, 0. */
	assert_int_equal(corio_read(fd, buf, 10, 5), 10);
	for (int i = 0; i < 10; i++)
		assert_int_equal(buf[i], 0);
	assert_int_equal(corio_read(fd, buf, sizeof(buf), 98), 7);
	assert_memory_equal(buf, "\0\0world", 7);
	assert_int_equal(corio_read(fd, buf, sizeof(buf), 105), 0);
	assert_int_equal(corio_read(fd, buf, sizeof(buf), 1000), 0);

	/* -1: the current position, which the call advances. */
	assert_int_equal(lseek(fd, 1, SEEK_SET), 1);
	assert_int_equal(corio_read(fd, buf, 4, -1), 4);
	assert_memory_equal(buf, "ello", 4);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 5);
	assert_int_equal(corio_write(fd, "12", 2, -1), 2);
	assert_int_equal(corio_write_until(fd, "34", 2, -1, far()), 2);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 9);
	assert_int_equal(corio_read_until(fd, buf, 4, 3, far()), 4);
	assert_memory_equal(buf, "lo12", 4);
	assert_int_equal(corio_read(fd, buf, 2, 7), 2);
	assert_memory_equal(buf, "34", 2);

	/* Lengths beyond what Linux does in one call are clamped, not refused:
	 * the call reads what the file has. (A length larger than the buffer,
	 * which valgrind rightly reports when it sees the system call.) */
	if (!t_under_valgrind()) {
		assert_int_equal(corio_read(fd, buf, SIZE_MAX, 100), 5);
		assert_memory_equal(buf, "world", 5);
	}

	/* Errors. */
	assert_int_equal(corio_read(-1, buf, 1, 0), -EBADF);
	assert_int_equal(corio_write(-1, buf, 1, 0), -EBADF);
	assert_int_equal(corio_read(9999, buf, 1, -1), -EBADF);
	ro = corio_openat(dfd, "rw", O_RDONLY | O_CLOEXEC, 0);
	assert_true(ro >= 0);
	assert_int_equal(corio_write(ro, "x", 1, 0), -EBADF);
	assert_int_equal(corio_read(dfd, buf, 1, 0), -EISDIR);
	assert_int_equal(corio_close(ro), 0);
	assert_int_equal(corio_close(fd), 0);
	return NULL;
}

static void read_write(void **state)
{
	(void)state;
	t_run(rw_body, NULL);
}

static void *append_body(void *arg)
{
	char buf[16];
	int fd;

	(void)arg;
	fd = corio_openat(dfd, "log", O_CREAT | O_WRONLY | O_APPEND | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(corio_write(fd, "ab", 2, -1), 2);
	assert_int_equal(corio_write(fd, "cd", 2, -1), 2);
	assert_int_equal(corio_close(fd), 0);
	fd = corio_openat(dfd, "log", O_RDONLY | O_CLOEXEC, 0);
	assert_int_equal(corio_read(fd, buf, sizeof(buf), 0), 4);
	assert_memory_equal(buf, "abcd", 4);
	assert_int_equal(corio_close(fd), 0);
	return NULL;
}

static void write_append(void **state)
{
	(void)state;
	t_run(append_body, NULL);
}

/* A large transfer, in one call each way. */
static void *big_body(void *arg)
{
	size_t n = 4 << 20;
	char *a = malloc(n), *b = malloc(n);
	int fd;

	(void)arg;
	assert_non_null(a);
	assert_non_null(b);
	t_fill(a, n, 11);
	fd = corio_openat(dfd, "big", O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(corio_write(fd, a, n, 0), (ssize_t)n);
	assert_int_equal(corio_fsync(fd), 0);
	memset(b, 0, n);
	assert_int_equal(corio_read(fd, b, n, 0), (ssize_t)n);
	assert_true(t_check(b, n, 11));
	assert_int_equal(corio_close(fd), 0);
	assert_int_equal(corio_unlinkat(dfd, "big", 0), 0);
	free(a);
	free(b);
	return NULL;
}

static void big_transfer(void **state)
{
	(void)state;
	t_run(big_body, NULL);
}

/* --------------------------------------------------------- vectored */

static void *vec_body(void *arg)
{
	char a[3], b[5], c[64];
	struct iovec w[3] = {{"abc", 3}, {"", 0}, {"defgh", 5}};
	struct iovec r[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
	struct iovec r1 = {c, sizeof(c)};
	int fd;

	(void)arg;
	fd = corio_openat(dfd, "vec", O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(corio_writev(fd, w, 3, 10), 8);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 0);
	assert_int_equal(corio_readv(fd, r, 2, 10), 8);
	assert_memory_equal(a, "abc", 3);
	assert_memory_equal(b, "defgh", 5);
	/* -1: current position. */
	assert_int_equal(lseek(fd, 12, SEEK_SET), 12);
	assert_int_equal(corio_readv(fd, &r1, 1, -1), 6);
	assert_memory_equal(c, "cdefgh", 6);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 18);
	assert_int_equal(corio_writev_until(fd, w, 1, -1, far()), 3);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 21);
	assert_int_equal(corio_readv_until(fd, &r1, 1, 15, far()), 6);
	assert_memory_equal(c, "fghabc", 6);
	/* Errors. */
	assert_int_equal(corio_readv(-1, r, 2, 0), -EBADF);
	assert_int_equal(corio_writev(-1, w, 3, 0), -EBADF);
	assert_int_equal(corio_readv(fd, r, -1, 0), -EINVAL);
	assert_int_equal(corio_writev(fd, w, 100000, 0), -EINVAL);
	assert_int_equal(corio_close(fd), 0);
	return NULL;
}

static void vectored(void **state)
{
	(void)state;
	t_run(vec_body, NULL);
}

/* ------------------------------------------------------ sync, allocate */

static void *sync_body(void *arg)
{
	struct statx st;
	int fd, p[2];

	(void)arg;
	fd = corio_openat(dfd, "s", O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(corio_write(fd, "data", 4, 0), 4);
	assert_int_equal(corio_fsync(fd), 0);
	assert_int_equal(corio_fdatasync(fd), 0);
	assert_int_equal(corio_fsync_until(fd, far()), 0);
	assert_int_equal(corio_fdatasync_until(fd, far()), 0);
	assert_int_equal(corio_fsync(-1), -EBADF);
	assert_int_equal(corio_fdatasync(-1), -EBADF);

	/* fallocate: mode 0 grows the file; KEEP_SIZE does not. */
	assert_int_equal(corio_fallocate(fd, 0, 0, 8192), 0);
	assert_int_equal(corio_statx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &st), 0);
	assert_int_equal(st.stx_size, 8192);
	assert_int_equal(corio_fallocate_until(fd, FALLOC_FL_KEEP_SIZE, 8192, 8192, far()), 0);
	assert_int_equal(corio_statx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &st), 0);
	assert_int_equal(st.stx_size, 8192);
	assert_int_equal(corio_fallocate(-1, 0, 0, 1), -EBADF);
	assert_int_equal(corio_fallocate(fd, 0, 0, 0), -EINVAL);
	assert_int_equal(corio_fallocate(fd, 0, -1, 10), -EINVAL);
	t_pipe(p);
	assert_int_equal(corio_fallocate(p[1], 0, 0, 10), -ESPIPE);
	close(p[0]);
	close(p[1]);
	assert_int_equal(corio_close(fd), 0);
	return NULL;
}

static void sync_allocate(void **state)
{
	(void)state;
	t_run(sync_body, NULL);
}

/* -------------------------------------------------------------- statx */

static void *statx_body(void *arg)
{
	struct statx st;
	int fd;

	(void)arg;
	fd = corio_openat(dfd, "st", O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0604);
	assert_true(fd >= 0);
	assert_int_equal(corio_write(fd, "12345", 5, 0), 5);
	memset(&st, 0, sizeof(st));
	assert_int_equal(corio_statx(dfd, "st", 0, STATX_BASIC_STATS, &st), 0);
	assert_true(st.stx_mask & STATX_SIZE);
	assert_int_equal(st.stx_size, 5);
	assert_true(S_ISREG(st.stx_mode));
	assert_int_equal(st.stx_mode & 0777, 0604); /* umask is 0 here */
	memset(&st, 0, sizeof(st));
	assert_int_equal(corio_statx_until(dfd, ".", 0, STATX_TYPE, &st, far()), 0);
	assert_true(S_ISDIR(st.stx_mode));
	assert_int_equal(corio_statx(dfd, "nope", 0, STATX_BASIC_STATS, &st), -ENOENT);
	assert_int_equal(corio_statx(-1, "st", 0, STATX_BASIC_STATS, &st), -EBADF);
	assert_int_equal(corio_statx(dfd, "st", 0x7fff0000, STATX_BASIC_STATS, &st), -EINVAL);
	assert_int_equal(corio_close(fd), 0);
	return NULL;
}

static void statx_calls(void **state)
{
	mode_t old = umask(0);

	(void)state;
	t_run(statx_body, NULL);
	umask(old);
}

/* ---------------------------------------------- directories and names */

static void *names_body(void *arg)
{
	struct statx st;
	int fd;

	(void)arg;
	assert_int_equal(corio_mkdirat(dfd, "d", 0750), 0);
	assert_int_equal(corio_mkdirat(dfd, "d", 0750), -EEXIST);
	assert_int_equal(corio_mkdirat(dfd, "no/such", 0750), -ENOENT);
	assert_int_equal(corio_mkdirat_until(dfd, "d/e", 0700, far()), 0);
	assert_int_equal(corio_statx(dfd, "d", 0, STATX_TYPE | STATX_MODE, &st), 0);
	assert_true(S_ISDIR(st.stx_mode));
	assert_int_equal(st.stx_mode & 0777, 0750);

	fd = corio_openat(dfd, "d/f", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(corio_close(fd), 0);

	/* rename, with and without replacing. */
	assert_int_equal(corio_renameat(dfd, "d/f", dfd, "g", 0), 0);
	assert_int_equal(corio_statx(dfd, "d/f", 0, STATX_TYPE, &st), -ENOENT);
	assert_int_equal(corio_statx(dfd, "g", 0, STATX_TYPE, &st), 0);
	assert_int_equal(corio_renameat(dfd, "d/f", dfd, "h", 0), -ENOENT);
	fd = corio_openat(dfd, "h", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	assert_int_equal(corio_close(fd), 0);
	assert_int_equal(corio_renameat(dfd, "g", dfd, "h", RENAME_NOREPLACE), -EEXIST);
	assert_int_equal(corio_renameat_until(dfd, "g", dfd, "h", 0, far()), 0);
	assert_int_equal(corio_statx(dfd, "g", 0, STATX_TYPE, &st), -ENOENT);
	assert_int_equal(corio_renameat(dfd, "h", dfd, "d", 0), -EISDIR);

	/* unlink: files, directories with AT_REMOVEDIR, and the errors. */
	assert_int_equal(corio_unlinkat(dfd, "d", 0), -EISDIR);
	assert_int_equal(corio_unlinkat(dfd, "d", AT_REMOVEDIR), -ENOTEMPTY);
	assert_int_equal(corio_unlinkat(dfd, "d/e", AT_REMOVEDIR), 0);
	assert_int_equal(corio_unlinkat_until(dfd, "d", AT_REMOVEDIR, far()), 0);
	assert_int_equal(corio_unlinkat(dfd, "h", 0), 0);
	assert_int_equal(corio_unlinkat(dfd, "h", 0), -ENOENT);
	assert_int_equal(corio_unlinkat(-1, "h", 0), -EBADF);
	return NULL;
}

static void directories_and_names(void **state)
{
	mode_t old = umask(0);

	(void)state;
	t_run(names_body, NULL);
	umask(old);
}

/* Many fibers write disjoint parts of one file at explicit offsets. */
static int shared_fd;

static void *part_writer(void *arg)
{
	int i = (int)(intptr_t)arg;
	char buf[4096];

	t_fill(buf, sizeof(buf), (unsigned)i);
	assert_int_equal(corio_write(shared_fd, buf, sizeof(buf), (int64_t)i * 4096), 4096);
	return NULL;
}

static void *parts_body(void *arg)
{
	corio_fiber *f[32];
	char buf[4096];

	(void)arg;
	shared_fd = corio_openat(dfd, "parts", O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(shared_fd >= 0);
	for (int i = 0; i < 32; i++)
		f[i] = t_spawn(part_writer, (void *)(intptr_t)i);
	for (int i = 0; i < 32; i++)
		t_join(f[i]);
	for (int i = 0; i < 32; i++) {
		assert_int_equal(corio_read(shared_fd, buf, sizeof(buf), (int64_t)i * 4096), 4096);
		assert_true(t_check(buf, sizeof(buf), (unsigned)i));
	}
	assert_int_equal(corio_close(shared_fd), 0);
	return NULL;
}

static void concurrent_writers(void **state)
{
	(void)state;
	t_run(parts_body, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(open_close, setup, teardown),
		cmocka_unit_test_setup_teardown(read_write, setup, teardown),
		cmocka_unit_test_setup_teardown(write_append, setup, teardown),
		cmocka_unit_test_setup_teardown(big_transfer, setup, teardown),
		cmocka_unit_test_setup_teardown(vectored, setup, teardown),
		cmocka_unit_test_setup_teardown(sync_allocate, setup, teardown),
		cmocka_unit_test_setup_teardown(statx_calls, setup, teardown),
		cmocka_unit_test_setup_teardown(directories_and_names, setup, teardown),
		cmocka_unit_test_setup_teardown(concurrent_writers, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
