/*
 * Layer stack: fiber stacks (stack.c), mmap'ed with a guard region below
 * each, pooled per loop. Knows nothing of fibers.
 */
#ifndef CORIO_STACK_H
#define CORIO_STACK_H

#include "../base.h"

/* Bytes of guard region below each stack. */
#define CORIO__GUARD ((size_t)16384)

struct corio__stack {
	char *lo;		   /* lowest usable byte (the guard is just below) */
	size_t size;		   /* usable bytes */
	struct corio__stack *next; /* free list */
	unsigned valgrind_id;
	bool resident; /* pages may be in memory (not yet given back) */
};

struct corio__stack_class {
	size_t size;
	struct corio__stack *free;
	struct corio__stack_class *next;
};

struct corio__stack_slab {
	struct corio__stack_slab *next;
	void *map;
	size_t map_len;
	unsigned n;
	struct corio__stack stacks[];
};

struct corio__stack_pool {
	struct corio__stack_class *classes;
	struct corio__stack_slab *slabs;
	size_t page;
	unsigned cache;	   /* resident free stacks to keep */
	size_t nstacks;	   /* stacks carved from slabs (in use or free) */
	unsigned resident; /* resident free stacks now */
};

int corio__stack_pool_init(struct corio__stack_pool *p, unsigned cache);
void corio__stack_pool_term(struct corio__stack_pool *p);
int corio__stack_get(struct corio__stack_pool *p, size_t size, struct corio__stack **out);
void corio__stack_put(struct corio__stack_pool *p, struct corio__stack *s);

#endif
