/*
 * Layer pool: what its files (pool.c, call.c, xsync.c) share beyond the
 * public corio/pool.h.
 */
#ifndef CORIO_POOL_POOL_H
#define CORIO_POOL_POOL_H

#include "inbox.h"

/* Deliver @r to loop @k of @pool (r->fn runs there at its next turn),
 * unless its slot is closed (it is leaving or stopping: -ESHUTDOWN) or
 * empty (-EINVAL). Never refuses for lack of room, unlike corio_post. */
int corio__pool_deliver(corio_pool *pool, unsigned k, struct corio__remote *r);

#endif
