/*
 * Layer backend: what the loop asks of the backend layer. (The backends
 * themselves are reached through loop->be, see seam.h.)
 */
#ifndef CORIO_BACKEND_H
#define CORIO_BACKEND_H

#include "../seam.h"

/* Choose the loop's backend (the option, else $CORIO_BACKEND, else auto:
 * io_uring, falling back to epoll with a line on stderr) and set it up. */
int corio__backend_init(corio_loop *loop, const struct corio_loop_opts *opts);

#endif
