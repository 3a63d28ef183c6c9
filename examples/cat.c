/*
 * cat: copy files to standard output with corio's file calls.
 *
 * What it shows:
 *  - corio_main(): a loop on this thread with one fiber, in one call;
 *  - file I/O as blocking-style fiber calls: corio_openat, corio_read,
 *    corio_write and corio_close, each one io_uring operation;
 *  - offset -1 ("current position"), which works for files, pipes and
 *    terminals alike, so standard input and output need no special case;
 *  - errors as -errno values: a file that cannot be opened or read is
 *    reported and skipped, and the exit code is 1; an error writing
 *    standard output ends the copy;
 *  - SIGPIPE as an error: when the reader of standard output goes away
 *    (`cat big | head`), the write fails with -EPIPE instead of killing the
 *    process (corio/signal.h); cat then stops quietly, with the status it
 *    had, as a filter whose reader has all it wanted should.
 *
 * Usage: cat [FILE]...    (no FILE, or "-", reads standard input)
 *
 * Test with: cat /etc/hostname - <<< hello
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <corio.h>

#define BUF_SIZE (128 * 1024)

/* Not on the fiber's stack: a fiber has 64 KiB by default. */
static char buf[BUF_SIZE];

struct args {
	int argc;
	char **argv;
};

/* Write all of buf[0, len) to standard output. */
static int write_all(size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = corio_write(STDOUT_FILENO, buf + done, len - done, -1);

		if (n < 0)
			return (int)n;
		done += (size_t)n;
	}
	return 0;
}

/* Copy one file. Returns 0, 1 (input error, reported) or -errno (output error). */
static int copy(const char *path)
{
	bool is_stdin = !strcmp(path, "-");
	int fd = is_stdin ? STDIN_FILENO : corio_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
	ssize_t n;
	int err = 0;

	if (fd < 0) {
		fprintf(stderr, "cat: %s: %s\n", path, strerror(-fd));
		return 1;
	}
	while ((n = corio_read(fd, buf, sizeof(buf), -1)) > 0) {
		err = write_all((size_t)n);
		if (err)
			break;
	}
	if (n < 0) {
		fprintf(stderr, "cat: %s: %s\n", is_stdin ? "standard input" : path,
			strerror((int)-n));
		err = 1;
	}
	if (!is_stdin)
		corio_close(fd);
	return err;
}

static void *run(void *arg)
{
	struct args *a = arg;
	char *dash[] = {"-"};
	char **files = a->argc > 1 ? a->argv + 1 : dash;
	int nfiles = a->argc > 1 ? a->argc - 1 : 1;
	intptr_t status = 0;

	for (int i = 0; i < nfiles; i++) {
		int err = copy(files[i]);

		if (err == -EPIPE)
			break; /* nobody reads any more: done */
		if (err < 0) {
			fprintf(stderr, "cat: write error: %s\n", strerror(-err));
			return (void *)(intptr_t)1;
		}
		if (err)
			status = 1;
	}
	return (void *)status;
}

int main(int argc, char **argv)
{
	struct args a = {argc, argv};
	int ret = corio_main(run, &a);

	if (ret < 0) {
		fprintf(stderr, "cat: cannot start: %s\n", strerror(-ret));
		return 1;
	}
	return ret;
}
