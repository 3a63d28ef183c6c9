/*
 * Layer sync: what the cross-loop objects share with fiber sync (sync.c).
 */
#ifndef CORIO_SYNC_INTERNAL_H
#define CORIO_SYNC_INTERNAL_H

#include "base.h"

/* The ring of elements behind corio_chan and corio_xchan. */
int corio__elems_init(struct corio__elems *q, size_t elem_size, size_t cap); /* 0, -EINVAL, -ENOMEM */
void corio__elems_fini(struct corio__elems *q);
bool corio__elems_push(struct corio__elems *q, const void *elem); /* false: full */
bool corio__elems_pop(struct corio__elems *q, void *elem);	   /* false: empty */

#endif
