/*
 * fuse_server: a passthrough FUSE file system on corio. It mirrors a
 * source directory at a mount point, speaking the FUSE protocol itself
 * (<linux/fuse.h>; no libfuse).
 *
 * What it shows:
 *  - thread per core: a pool of loops, one per CPU by default (-t N), each
 *    reading requests from its own cloned /dev/fuse descriptor;
 *  - a fiber per request, several reads in flight per loop, more fibers
 *    started when requests are slow (an fsync) so that a read is always
 *    waiting for the next request;
 *  - every file operation on the source through corio: openat, statx,
 *    read, write, fsync, fallocate, mkdirat, unlinkat, renameat, close (on
 *    io_uring, or the epoll backend's thread pool), inodes as O_PATH
 *    descriptors of the source;
 *  - a transport interface (transport.h): receive a request, send an
 *    answer; /dev/fuse behind it today, FUSE over io_uring to come;
 *  - a clean stop on SIGINT or SIGTERM: unmount (lazily when busy),
 *    requests being handled are answered, the rest aborted, every
 *    descriptor closed.
 *
 * Usage: fuse_server [options] SOURCE MOUNTPOINT       (as root)
 *   -t, --threads N       loops (default: one per CPU)
 *   -r, --readers N       reads in flight per loop (default 4)
 *   --timeout SECONDS     how long the kernel caches names and attributes
 *                         (default 1; 0: not at all)
 *   --writeback           let the kernel cache writes (FUSE_WRITEBACK_CACHE)
 *   --transport dev|uring|auto
 *                         how requests arrive (default auto: /dev/fuse)
 *
 * It prints "mounted SOURCE on MOUNTPOINT" once the mount is up, and exits
 * when stopped or when the file system is unmounted from outside.
 *
 * Test with: fuse_server /srv/data /mnt/data &  ls -l /mnt/data
 *            fio --directory=/mnt/data --rw=randread --bs=4k --size=64m ...
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "server.h"

#define URING_PARAM "/sys/module/fuse/parameters/enable_uring"

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [-t threads] [-r readers] [--timeout seconds] [--writeback]\n"
		"       [--transport dev|uring|auto] SOURCE MOUNTPOINT\n",
		prog);
	exit(2);
}

static long number(const char *s, long min, long max, const char *prog)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || !*s || *end || v < min || v > max)
		usage(prog);
	return v;
}

/* Whether the kernel offers FUSE over io_uring (Linux 6.14, off by
 * default: the fuse module's enable_uring parameter). */
static bool kernel_has_uring(void)
{
	FILE *f = fopen(URING_PARAM, "r");
	int c = f ? fgetc(f) : EOF;

	if (f)
		fclose(f);
	return c == 'Y' || c == 'y' || c == '1';
}

/* Every inode the kernel knows holds a descriptor: take all we may. */
static void raise_fd_limit(void)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < r.rlim_max) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {
		{"threads", required_argument, NULL, 't'},
		{"readers", required_argument, NULL, 'r'},
		{"timeout", required_argument, NULL, 'T'},
		{"writeback", no_argument, NULL, 'W'},
		{"transport", required_argument, NULL, 'X'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct fuse_server_opts o = {0};
	const char *transport = "auto";
	struct fuse_server *s;
	struct pollfd pfd[2];
	char why[512];
	sigset_t set;
	int c, err;

	while ((c = getopt_long(argc, argv, "t:r:h", longs, NULL)) != -1) {
		switch (c) {
		case 't':
			o.threads = (unsigned)number(optarg, 1, 1024, argv[0]);
			break;
		case 'r':
			o.readers = (unsigned)number(optarg, 1, 1024, argv[0]);
			break;
		case 'T': {
			long sec = number(optarg, 0, 1L << 30, argv[0]);

			o.timeout_ns = sec ? sec * CORIO_SEC : -1;
			break;
		}
		case 'W':
			o.writeback = true;
			break;
		case 'X':
			transport = optarg;
			break;
		default:
			usage(argv[0]);
		}
	}
	if (argc - optind != 2)
		usage(argv[0]);
	o.source = argv[optind];
	o.mountpoint = argv[optind + 1];

	if (!strcmp(transport, "uring")) {
		fprintf(stderr,
			"fuse_server: the io_uring transport is not available yet: it needs "
			"128-byte SQEs and IORING_OP_URING_CMD (FUSE_IO_URING_CMD_REGISTER, "
			"COMMIT_AND_FETCH), which corio does not offer yet%s; use --transport dev\n",
			kernel_has_uring() ? ""
					   : " (and this kernel has it off: " URING_PARAM " is not Y)");
		return 2;
	}
	if (strcmp(transport, "dev") && strcmp(transport, "auto"))
		usage(argv[0]);

	/* Signals arrive through a signalfd; the pool's threads inherit the
	 * blocked mask. A shell starts background jobs with SIGINT ignored,
	 * and an ignored signal is dropped even while blocked: take both back
	 * to their default first. */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pfd[0].fd = signalfd(-1, &set, SFD_CLOEXEC);
	if (pfd[0].fd < 0) {
		perror("fuse_server: signalfd");
		return 1;
	}
	raise_fd_limit();

	err = fuse_server_start(&s, &o, why, sizeof(why));
	if (err) {
		fprintf(stderr, "fuse_server: %s\n", why);
		return 1;
	}
	/* Exactly this line on stdout: scripts and tests wait for it. */
	printf("mounted %s on %s\n", o.source, o.mountpoint);
	fflush(stdout);
	fprintf(stderr, "fuse_server: transport /dev/fuse%s, %u threads\n",
		!strcmp(transport, "auto") ? " (io_uring transport not available yet)" : "",
		fuse_server_threads(s));

	pfd[0].events = pfd[1].events = POLLIN;
	pfd[1].fd = fuse_server_end_fd(s);
	while (poll(pfd, 2, -1) < 0 && errno == EINTR)
		;
	if (pfd[0].revents) {
		struct signalfd_siginfo si;

		if (read(pfd[0].fd, &si, sizeof(si)) == sizeof(si))
			fprintf(stderr, "fuse_server: %s, unmounting\n", strsignal((int)si.ssi_signo));
	} else {
		fprintf(stderr, "fuse_server: unmounted from outside, stopping\n");
	}
	fuse_server_stop(s);
	close(pfd[0].fd);
	return 0;
}
