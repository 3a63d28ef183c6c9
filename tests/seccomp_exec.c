/*
 * seccomp_exec: run a program with io_uring blocked, as in a container
 * whose seccomp profile denies it (Docker's default profile does).
 *
 *   seccomp_exec PROGRAM [ARGS...]
 *
 * Installs a filter under which io_uring_setup, io_uring_enter and
 * io_uring_register fail with EPERM, unsets CORIO_BACKEND (so that the
 * program has to find a backend on its own), and execs PROGRAM. A seccomp
 * filter stays across exec and applies to every thread the program starts.
 * Exits 77 (skip) where seccomp filters cannot be installed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	static const char *blocked[] = {"io_uring_setup", "io_uring_enter", "io_uring_register"};
	scmp_filter_ctx ctx;
	int err;

	if (argc < 2) {
		fprintf(stderr, "usage: %s PROGRAM [ARGS...]\n", argv[0]);
		return 2;
	}
	/* Allow everything else. No new privileges (the default of
	 * seccomp_load) is what lets an unprivileged process install it. */
	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx) {
		fprintf(stderr, "seccomp_exec: seccomp_init failed\n");
		return 77;
	}
	for (size_t i = 0; i < sizeof(blocked) / sizeof(blocked[0]); i++) {
		int nr = seccomp_syscall_resolve_name(blocked[i]);

		if (nr == __NR_SCMP_ERROR) {
			fprintf(stderr, "seccomp_exec: libseccomp does not know %s\n", blocked[i]);
			return 77;
		}
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
		if (err) {
			fprintf(stderr, "seccomp_exec: rule for %s: %s\n", blocked[i],
				strerror(-err));
			return 77;
		}
	}
	err = seccomp_load(ctx);
	seccomp_release(ctx);
	if (err) {
		fprintf(stderr, "seccomp_exec: cannot install the filter: %s\n", strerror(-err));
		return 77;
	}
	unsetenv("CORIO_BACKEND");
	execv(argv[1], argv + 1);
	fprintf(stderr, "seccomp_exec: %s: %s\n", argv[1], strerror(errno));
	return 127;
}
