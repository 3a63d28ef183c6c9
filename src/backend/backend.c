/*
 * Choosing a loop's backend: the one place that names them. Everything else
 * reaches a backend through loop->be and tests loop->caps.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "backends.h"

/* Which backend: the option, else $CORIO_BACKEND, else auto. */
static int pick(const struct corio_loop_opts *opts, enum corio_backend *out)
{
	const char *env;

	*out = opts ? opts->backend : CORIO_BACKEND_AUTO;
	if (*out != CORIO_BACKEND_AUTO)
		return 0;
	env = getenv("CORIO_BACKEND");
	if (!env || !*env || !strcmp(env, "auto"))
		return 0;
	if (!strcmp(env, "uring") || !strcmp(env, "io_uring")) {
		*out = CORIO_BACKEND_URING;
		return 0;
	}
	if (!strcmp(env, "epoll")) {
		*out = CORIO_BACKEND_EPOLL;
		return 0;
	}
	corio__log("CORIO_BACKEND=%s is not a backend (use uring, epoll or auto)", env);
	return -EINVAL;
}

int corio__backend_init(corio_loop *loop, const struct corio_loop_opts *opts)
{
	enum corio_backend which;
	const char *why = "";
	int err = pick(opts, &which);

	if (err)
		return err;
	if (which != CORIO_BACKEND_EPOLL) {
		err = corio__backend_uring.init(loop, opts, &why);
		if (err == 0) {
			loop->be = &corio__backend_uring;
			return 0;
		}
		if (which == CORIO_BACKEND_URING) {
			corio__log("cannot use io_uring: %s", why);
			return err;
		}
		corio__log("io_uring unavailable (%s); using epoll", why);
	}
	err = corio__backend_epoll.init(loop, opts, &why);
	if (err) {
		corio__log("cannot use epoll: %s", why);
		return err;
	}
	loop->be = &corio__backend_epoll;
	return 0;
}
