/*
 * The loop's timers: one pairing heap holds every sleep, wait deadline, op
 * deadline and async timer of a loop. The kernel is never given one timeout
 * per timer: the loop passes the time until the earliest deadline as the
 * timeout of its single wait (io_uring_enter's EXT_ARG timeout, or
 * epoll_wait's). So a million sleeping fibers cost a million heap nodes and
 * nothing in the kernel.
 *
 * Pairing heap: insert and meld are O(1); removing the minimum or an
 * arbitrary node is O(log n) amortised. Nodes are intrusive (no allocation,
 * so arming a timer cannot fail). Each node's prev points to its parent when
 * it is the first child, else to its previous sibling.
 *
 * Ordering is by (deadline, seq): timers with equal deadlines fire in the
 * order they were armed.
 */
#include "timer.h"

static bool before(const struct corio__timer *a, const struct corio__timer *b)
{
	if (a->deadline != b->deadline)
		return a->deadline < b->deadline;
	return a->seq < b->seq;
}

/* Meld two roots (either may be NULL); returns the new root. */
static struct corio__timer *meld(struct corio__timer *a, struct corio__timer *b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	if (before(b, a)) {
		struct corio__timer *t = a;
		a = b;
		b = t;
	}
	/* b becomes a's first child. */
	b->prev = a;
	b->next = a->child;
	if (a->child)
		a->child->prev = b;
	a->child = b;
	a->next = NULL;
	a->prev = NULL;
	return a;
}

/*
 * Combine a list of siblings into one heap: meld pairs left to right, then
 * meld the results right to left (the classic two-pass). Iterative, so a
 * root with 100,000 children does not recurse.
 */
static struct corio__timer *merge_pairs(struct corio__timer *first)
{
	struct corio__timer *pairs = NULL; /* reversed list of melded pairs */
	struct corio__timer *a, *b, *next, *root;

	while (first) {
		a = first;
		b = a->next;
		next = b ? b->next : NULL;
		a->next = a->prev = NULL;
		if (b)
			b->next = b->prev = NULL;
		a = meld(a, b);
		a->next = pairs; /* push, reusing next as the stack link */
		pairs = a;
		first = next;
	}
	root = NULL;
	while (pairs) {
		next = pairs->next;
		pairs->next = NULL;
		root = meld(pairs, root);
		pairs = next;
	}
	return root;
}

void corio__timer_arm(struct corio__timers *h, struct corio__timer *t, int64_t deadline)
{
	if (t->armed)
		corio__timer_disarm(h, t);
	t->deadline = deadline;
	t->seq = ++h->seq;
	t->child = t->next = t->prev = NULL;
	t->armed = true;
	h->root = meld(h->root, t);
	h->count++;
}

void corio__timer_disarm(struct corio__timers *h, struct corio__timer *t)
{
	struct corio__timer *sub;

	if (!t->armed)
		return;
	t->armed = false;
	h->count--;
	sub = merge_pairs(t->child);
	t->child = NULL;
	if (t == h->root) {
		h->root = sub;
		return;
	}
	/* Unlink t from its parent's child list. */
	if (t->prev->child == t)
		t->prev->child = t->next;
	else
		t->prev->next = t->next;
	if (t->next)
		t->next->prev = t->prev;
	t->next = t->prev = NULL;
	h->root = meld(h->root, sub);
}
