/*
 * Fiber stacks: mmap'ed, with a guard region below each, pooled per loop.
 *
 * Stacks are carved from slabs (one mmap holds many stacks). Each stack has
 * CORIO__GUARD bytes of guard below it. The guard is installed with
 * MADV_GUARD_INSTALL (Linux 6.13), which marks page-table entries and does
 * not split the mapping; older kernels get mprotect(PROT_NONE), which splits
 * it into two VMAs per stack. That matters: vm.max_map_count defaults to
 * 65530, so with mprotect guards a process tops out near 32,000 fibers,
 * while with guard markers 100,000 fibers use a few thousand VMAs.
 *
 * Freed stacks go back to a per-size free list (LIFO, so the hottest stack
 * is reused first). At most `cache` of them keep their pages; beyond that a
 * freed stack's pages are returned with MADV_DONTNEED, keeping the address
 * range. Slabs are unmapped when the loop is destroyed.
 *
 * A fault in a guard region is reported by overflow.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "stack.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define CORIO_VALGRIND 1
#endif
#endif

#ifdef CORIO_ASAN
#include <sanitizer/asan_interface.h>
#endif

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13; not in glibc 2.36's headers */
#endif

#define SLAB_BYTES ((size_t)2 << 20)
#define SLAB_MAX 64

/* 0 unknown, 1 madvise, 2 mprotect. Loops on several threads may find out
 * at once; they find the same answer, so relaxed is enough (an atomic
 * only so that the race is defined). */
static _Atomic int guard_mode;

static int install_guard(void *p, size_t len)
{
	if (atomic_load_explicit(&guard_mode, memory_order_relaxed) != 2) {
		if (madvise(p, len, MADV_GUARD_INSTALL) == 0) {
			atomic_store_explicit(&guard_mode, 1, memory_order_relaxed);
			return 0;
		}
		if (errno != EINVAL)
			return -errno;
		atomic_store_explicit(&guard_mode, 2, memory_order_relaxed);
	}
	return mprotect(p, len, PROT_NONE) ? -errno : 0;
}

int corio__stack_pool_init(struct corio__stack_pool *p, unsigned cache)
{
	memset(p, 0, sizeof(*p));
	p->page = (size_t)sysconf(_SC_PAGESIZE);
	p->cache = cache;
	return 0;
}

void corio__stack_pool_term(struct corio__stack_pool *p)
{
	struct corio__stack_slab *s, *sn;
	struct corio__stack_class *c, *cn;

	for (s = p->slabs; s; s = sn) {
		sn = s->next;
#ifdef CORIO_VALGRIND
		for (unsigned i = 0; i < s->n; i++)
			VALGRIND_STACK_DEREGISTER(s->stacks[i].valgrind_id);
#endif
		munmap(s->map, s->map_len);
		free(s);
	}
	for (c = p->classes; c; c = cn) {
		cn = c->next;
		free(c);
	}
	memset(p, 0, sizeof(*p));
}

static struct corio__stack_class *get_class(struct corio__stack_pool *p, size_t size)
{
	struct corio__stack_class *c;

	for (c = p->classes; c; c = c->next)
		if (c->size == size)
			return c;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->size = size;
	c->next = p->classes;
	p->classes = c;
	return c;
}

/* Map a slab of stacks of @c->size and put them on the class's free list. */
static int grow(struct corio__stack_pool *p, struct corio__stack_class *c)
{
	size_t span = CORIO__GUARD + c->size;
	unsigned n = (unsigned)(SLAB_BYTES / span);
	struct corio__stack_slab *slab;
	char *map;
	int err;

	if (n < 1)
		n = 1;
	if (n > SLAB_MAX)
		n = SLAB_MAX;
	slab = malloc(sizeof(*slab) + n * sizeof(slab->stacks[0]));
	if (!slab)
		return -ENOMEM;
	map = mmap(NULL, span * n, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (map == MAP_FAILED) {
		free(slab);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++) {
		err = install_guard(map + i * span, CORIO__GUARD);
		if (err) {
			munmap(map, span * n);
			free(slab);
			return err == -EINVAL ? -EINVAL : -ENOMEM;
		}
	}
	slab->map = map;
	slab->map_len = span * n;
	slab->n = n;
	for (unsigned i = n; i-- > 0;) {
		struct corio__stack *s = &slab->stacks[i];

		s->lo = map + i * span + CORIO__GUARD;
		s->size = c->size;
		s->resident = false;
#ifdef CORIO_VALGRIND
		s->valgrind_id = VALGRIND_STACK_REGISTER(s->lo, s->lo + s->size);
#else
		s->valgrind_id = 0;
#endif
		s->next = c->free;
		c->free = s;
	}
	slab->next = p->slabs;
	p->slabs = slab;
	p->nstacks += n;
	return 0;
}

int corio__stack_get(struct corio__stack_pool *p, size_t size, struct corio__stack **out)
{
	struct corio__stack_class *c;
	struct corio__stack *s;
	int err;

	/* Rounding up, or adding the guard, must not wrap around to a tiny
	 * (or empty) stack. */
	if (size > SIZE_MAX - CORIO__GUARD - p->page)
		return -ENOMEM;
	size = (size + p->page - 1) & ~(p->page - 1);
	c = get_class(p, size);
	if (!c)
		return -ENOMEM;
	if (!c->free) {
		err = grow(p, c);
		if (err)
			return err;
	}
	s = c->free;
	c->free = s->next;
	s->next = NULL;
	if (s->resident)
		p->resident--;
#ifdef CORIO_ASAN
	/* Frames of the previous fiber never returned: clear their redzones. */
	ASAN_UNPOISON_MEMORY_REGION(s->lo, s->size);
#endif
	*out = s;
	return 0;
}

void corio__stack_put(struct corio__stack_pool *p, struct corio__stack *s)
{
	struct corio__stack_class *c;

	for (c = p->classes; c->size != s->size; c = c->next)
		;
	if (p->resident < p->cache) {
		s->resident = true;
		p->resident++;
	} else {
		madvise(s->lo, s->size, MADV_DONTNEED);
		s->resident = false;
	}
	s->next = c->free;
	c->free = s;
}
