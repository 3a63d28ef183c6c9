/*
 * Layer timer: the timer heap (timer.c). One per loop holds every sleep,
 * wait deadline, op deadline and async timer.
 */
#ifndef CORIO_TIMER_H
#define CORIO_TIMER_H

#include "base.h"

enum corio__timer_kind {
	CORIO__TIMER_WAIT, /* a parked fiber's deadline (struct corio__wait) */
	CORIO__TIMER_OP,   /* an op's deadline, or an async timer (struct corio__op) */
};

/* A node of the loop's timer heap (a pairing heap: O(1) insert, O(log n)
 * amortised removal, no allocation). Ties are broken by arming order. */
struct corio__timer {
	struct corio__timer *child, *next, *prev; /* prev: parent if first child */
	int64_t deadline;
	uint64_t seq;
	uint8_t kind;
	bool armed;
};

struct corio__timers {
	struct corio__timer *root;
	uint64_t seq;
	size_t count;
};

void corio__timer_arm(struct corio__timers *h, struct corio__timer *t, int64_t deadline);
void corio__timer_disarm(struct corio__timers *h, struct corio__timer *t);
static inline struct corio__timer *corio__timer_first(const struct corio__timers *h)
{
	return h->root;
}

#endif
