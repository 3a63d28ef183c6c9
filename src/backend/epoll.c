/* Placeholder until the epoll backend lands (issue: epoll backend). */
#include <errno.h>

#include "../internal.h"

static int epoll_init(corio_loop *loop, const struct corio_loop_opts *opts, const char **why)
{
	(void)loop;
	(void)opts;
	*why = "the epoll backend is not built yet";
	return -ENOSYS;
}

const struct corio__backend corio__backend_epoll = {
	.name = "epoll",
	.init = epoll_init,
};
