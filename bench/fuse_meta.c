/*
 * fuse_meta: the metadata job of bench/fuse.sh. In a fresh directory under
 * DIR: create N small files (open O_CREAT|O_EXCL, write 100 bytes, close),
 * stat each, unlink each. Three operations per file; prints
 *
 *   ops_per_sec=... ops=... seconds=... create_s=... stat_s=... unlink_s=...
 *
 * Usage: fuse_meta DIR [N=10000]
 * Plain system calls, no corio: it is the load, not the subject.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *path)
{
	fprintf(stderr, "fuse_meta: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

int main(int argc, char **argv)
{
	char dir[4096], path[4200], data[100];
	long n = argc > 2 ? strtol(argv[2], NULL, 10) : 10000;
	double t0, t1, t2, t3;
	struct stat st;
	int fd;

	if (argc < 2 || n <= 0) {
		fprintf(stderr, "usage: fuse_meta DIR [N]\n");
		return 2;
	}
	snprintf(dir, sizeof(dir), "%s/meta.%d", argv[1], (int)getpid());
	if (mkdir(dir, 0755))
		die("mkdir", dir);
	memset(data, 'm', sizeof(data));

	t0 = now();
	for (long i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/f%ld", dir, i);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		if (fd < 0)
			die("create", path);
		if (write(fd, data, sizeof(data)) != sizeof(data))
			die("write", path);
		if (close(fd))
			die("close", path);
	}
	t1 = now();
	for (long i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/f%ld", dir, i);
		if (stat(path, &st) || st.st_size != sizeof(data))
			die("stat", path);
	}
	t2 = now();
	for (long i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/f%ld", dir, i);
		if (unlink(path))
			die("unlink", path);
	}
	t3 = now();
	if (rmdir(dir))
		die("rmdir", dir);
	printf("ops_per_sec=%.0f ops=%ld seconds=%.3f create_s=%.3f stat_s=%.3f unlink_s=%.3f\n",
	       3.0 * (double)n / (t3 - t0), 3 * n, t3 - t0, t1 - t0, t2 - t1, t3 - t2);
	return 0;
}
