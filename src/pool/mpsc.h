/*
 * The two queues of a loop's inbox, written here because they are the core
 * of cross-core messaging and their memory ordering is the whole point.
 *
 * 1. The message queue: bounded, multi-producer, single-consumer, an array of
 *    cells each carrying a sequence number (the scheme of D. Vyukov's bounded
 *    queue). A producer claims position `pos` by CAS on `tail` when the
 *    cell's seq equals pos, writes the message, then publishes it with
 *    seq = pos + 1 (release). The consumer takes the cell at `head` when its
 *    seq is head + 1 (acquire) and frees it with seq = head + size (release)
 *    for the producer one lap later. A cell whose seq lags pos means the
 *    queue is full: the producer gets -EAGAIN; memory never grows.
 *
 * 2. The delivery stack: unbounded, intrusive, multi-producer (Treiber push
 *    by CAS), drained whole by the consumer with one exchange and reversed
 *    to arrival order. Nodes are owned by whoever waits for their delivery
 *    (a call record, a cross-loop waiter), so no allocation and no bound is
 *    needed, and a reply can never be refused for lack of room (refusing a
 *    reply could deadlock two loops calling each other).
 *
 * Hot fields sit on their own cache lines: producers write `tail`, the
 * consumer writes `head`, and `state` is the sleeping word of rule 5.
 */
#ifndef CORIO_MPSC_H
#define CORIO_MPSC_H

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define CORIO__CACHELINE 64

struct corio__remote {
	struct corio__remote *next;
	void (*fn)(struct corio__remote *r); /* runs on the receiving loop */
};

struct corio__cell {
	_Atomic uint64_t seq;
	void (*fn)(void *arg);
	void *arg;
};

enum { CORIO__AWAKE = 0, CORIO__SLEEPING = 1 };

struct corio__inbox {
	_Alignas(CORIO__CACHELINE) _Atomic uint64_t tail;
	_Alignas(CORIO__CACHELINE) uint64_t head;
	uint64_t mask;
	struct corio__cell *cells;
	_Alignas(CORIO__CACHELINE) _Atomic(struct corio__remote *) remote;
	_Atomic(struct corio__remote *) space_waiters;
	_Alignas(CORIO__CACHELINE) _Atomic uint32_t state;
	_Atomic uint32_t remote_posting; /* deliveries between push and notify */
};

static inline int corio__inbox_push(struct corio__inbox *q, void (*fn)(void *), void *arg)
{
	uint64_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
	struct corio__cell *c;

	for (;;) {
		c = &q->cells[pos & q->mask];
		uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
		int64_t diff = (int64_t)(seq - pos);

		if (diff == 0) {
			if (atomic_compare_exchange_weak_explicit(&q->tail, &pos, pos + 1,
								  memory_order_relaxed,
								  memory_order_relaxed))
				break;
		} else if (diff < 0) {
			return -EAGAIN; /* the consumer has not freed this cell yet */
		} else {
			pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
		}
	}
	c->fn = fn;
	c->arg = arg;
	atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
	return 0;
}

/* Consumer only. Returns 1 and the message, or 0 if nothing is published. */
static inline int corio__inbox_pop(struct corio__inbox *q, void (**fn)(void *), void **arg)
{
	struct corio__cell *c = &q->cells[q->head & q->mask];

	if (atomic_load_explicit(&c->seq, memory_order_acquire) != q->head + 1)
		return 0;
	*fn = c->fn;
	*arg = c->arg;
	atomic_store_explicit(&c->seq, q->head + q->mask + 1, memory_order_release);
	q->head++;
	return 1;
}

static inline int corio__inbox_has_msg(struct corio__inbox *q)
{
	struct corio__cell *c = &q->cells[q->head & q->mask];

	return atomic_load_explicit(&c->seq, memory_order_acquire) == q->head + 1;
}

static inline void corio__stack_push(_Atomic(struct corio__remote *) *top,
				     struct corio__remote *r)
{
	struct corio__remote *old = atomic_load_explicit(top, memory_order_relaxed);

	do {
		r->next = old;
	} while (!atomic_compare_exchange_weak_explicit(top, &old, r, memory_order_release,
							memory_order_relaxed));
}

/* Take everything pushed so far, oldest first. */
static inline struct corio__remote *corio__stack_take(_Atomic(struct corio__remote *) *top)
{
	struct corio__remote *r, *next, *fifo = NULL;

	if (!atomic_load_explicit(top, memory_order_relaxed))
		return NULL;
	r = atomic_exchange_explicit(top, NULL, memory_order_acquire);
	for (; r; r = next) {
		next = r->next;
		r->next = fifo;
		fifo = r;
	}
	return fifo;
}

#endif
