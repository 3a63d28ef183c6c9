/*
 * Intrusive circular doubly-linked list with a sentinel head.
 *
 * The node is embedded in the element; corio__container_of() gets the
 * element back. Every operation is O(1) and none allocates, so a fiber can
 * be queued on a wait list without any failure path.
 *
 * A node that is on no list points to itself (corio__list_init), which lets
 * corio__list_remove() be called twice safely and corio__list_linked() tell
 * whether a node is queued.
 */
#ifndef CORIO_LIST_H
#define CORIO_LIST_H

#include <stdbool.h>
#include <stddef.h>

#include "corio/types.h"

#define corio__container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

static inline void corio__list_init(struct corio_list *l)
{
	l->next = l;
	l->prev = l;
}

static inline bool corio__list_empty(const struct corio_list *l)
{
	return l->next == l;
}

/* True when the node is queued somewhere (only for nodes that were init'ed). */
static inline bool corio__list_linked(const struct corio_list *n)
{
	return n->next != n;
}

static inline void corio__list_push_back(struct corio_list *head,
					 struct corio_list *n)
{
	n->prev = head->prev;
	n->next = head;
	head->prev->next = n;
	head->prev = n;
}

static inline void corio__list_push_front(struct corio_list *head,
					  struct corio_list *n)
{
	n->next = head->next;
	n->prev = head;
	head->next->prev = n;
	head->next = n;
}

static inline void corio__list_remove(struct corio_list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n;
	n->prev = n;
}

static inline struct corio_list *corio__list_pop_front(struct corio_list *head)
{
	struct corio_list *n = head->next;

	if (n == head)
		return NULL;
	corio__list_remove(n);
	return n;
}

/* Move every node of @from to the end of @to; @from becomes empty. */
static inline void corio__list_splice(struct corio_list *to,
				      struct corio_list *from)
{
	if (corio__list_empty(from))
		return;
	from->next->prev = to->prev;
	to->prev->next = from->next;
	from->prev->next = to;
	to->prev = from->prev;
	corio__list_init(from);
}

#endif
