/*
 * corio: synchronisation between fibers of one loop.
 *
 * These objects belong to one loop and are used by its fibers only (no
 * atomics, no system calls). Waiting calls suspend the calling fiber, are
 * FIFO-fair, can be cancelled (-ECANCELED), and have an _until variant
 * (-ETIMEDOUT). Outside a fiber they return -EPERM.
 *
 * The structs are public so they can be embedded; their fields are private.
 * Initialise with the _init call; nothing to free except a channel.
 */
#ifndef CORIO_SYNC_H
#define CORIO_SYNC_H

#include "corio/types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Mutex: unlock hands the lock to the first waiter (no barging). */
typedef struct corio_mutex {
	/* private */
	corio_fiber *owner;
	struct corio_list waiters;
} corio_mutex;

CORIO_API void corio_mutex_init(corio_mutex *m);
CORIO_API int corio_mutex_lock(corio_mutex *m);
CORIO_API int corio_mutex_lock_until(corio_mutex *m, int64_t deadline);
CORIO_API int corio_mutex_try_lock(corio_mutex *m); /* 0 or -EBUSY */
CORIO_API int corio_mutex_unlock(corio_mutex *m);  /* 0 or -EPERM (not the owner) */

/* Condition variable. wait releases @m, waits, and re-acquires @m before
 * returning (also on -ETIMEDOUT and -ECANCELED). */
typedef struct corio_cond {
	/* private */
	struct corio_list waiters;
} corio_cond;

CORIO_API void corio_cond_init(corio_cond *c);
CORIO_API int corio_cond_wait(corio_cond *c, corio_mutex *m);
CORIO_API int corio_cond_wait_until(corio_cond *c, corio_mutex *m, int64_t deadline);
CORIO_API void corio_cond_signal(corio_cond *c);
CORIO_API void corio_cond_broadcast(corio_cond *c);

/* Event: once set, wait returns at once until reset. set wakes all waiters. */
typedef struct corio_event {
	/* private */
	bool set;
	struct corio_list waiters;
} corio_event;

CORIO_API void corio_event_init(corio_event *e);
CORIO_API void corio_event_set(corio_event *e);
CORIO_API void corio_event_reset(corio_event *e);
CORIO_API bool corio_event_is_set(const corio_event *e);
CORIO_API int corio_event_wait(corio_event *e);
CORIO_API int corio_event_wait_until(corio_event *e, int64_t deadline);

/*
 * Bounded channel of fixed-size elements (copied in and out). Capacity 0
 * makes a rendezvous channel: send waits for a receiver. After close, send
 * returns -EPIPE and recv drains what is buffered, then returns -EPIPE.
 */
struct corio__elems { /* private: a channel's buffered elements */
	unsigned char *buf;
	size_t elem_size, cap, head, count;
};

typedef struct corio_chan {
	/* private */
	struct corio__elems q;
	bool closed;
	struct corio_list senders, receivers;
} corio_chan;

CORIO_API int corio_chan_init(corio_chan *ch, size_t elem_size, size_t capacity); /* 0, -EINVAL, -ENOMEM */
CORIO_API void corio_chan_destroy(corio_chan *ch); /* no fiber may be waiting on it */
CORIO_API int corio_chan_send(corio_chan *ch, const void *elem);
CORIO_API int corio_chan_send_until(corio_chan *ch, const void *elem, int64_t deadline);
CORIO_API int corio_chan_recv(corio_chan *ch, void *elem);
CORIO_API int corio_chan_recv_until(corio_chan *ch, void *elem, int64_t deadline);
CORIO_API int corio_chan_try_send(corio_chan *ch, const void *elem); /* 0, -EAGAIN, -EPIPE */
CORIO_API int corio_chan_try_recv(corio_chan *ch, void *elem);	     /* 0, -EAGAIN, -EPIPE */
CORIO_API void corio_chan_close(corio_chan *ch);
CORIO_API size_t corio_chan_len(const corio_chan *ch);

/* Wait group: wait returns when the counter is zero. */
typedef struct corio_waitgroup {
	/* private */
	int64_t count;
	struct corio_list waiters;
} corio_waitgroup;

CORIO_API void corio_waitgroup_init(corio_waitgroup *wg);
CORIO_API int corio_waitgroup_add(corio_waitgroup *wg, int64_t n); /* -EINVAL if it would go below 0 */
CORIO_API int corio_waitgroup_done(corio_waitgroup *wg);
CORIO_API int corio_waitgroup_wait(corio_waitgroup *wg);
CORIO_API int corio_waitgroup_wait_until(corio_waitgroup *wg, int64_t deadline);

#ifdef __cplusplus
}
#endif
#endif
