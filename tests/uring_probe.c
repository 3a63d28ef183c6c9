/*
 * Whether a loop can run on io_uring here: exit 0, or say why and exit 1.
 * make test and scripts/valgrind.sh ask it before running the tests: where
 * io_uring works, a .uring test must not skip (CORIO_TEST_NO_SKIP, see
 * tests/util.c).
 */
#include <stdio.h>
#include <string.h>

#include "corio.h"

int main(void)
{
	struct corio_loop_opts o = {.backend = CORIO_BACKEND_URING};
	corio_loop *loop;
	int err = corio_loop_create(&loop, &o);

	if (err) {
		fprintf(stderr, "uring_probe: io_uring unavailable here (%s): .uring tests may skip\n",
			strerror(-err));
		return 1;
	}
	corio_loop_destroy(loop);
	return 0;
}
