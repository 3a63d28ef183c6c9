/*
 * corio: stackful fibers.
 *
 * A fiber runs on one loop, on its own stack (mmap'ed from a per-loop pool,
 * with a 16 KiB guard region below it). Fibers are cooperative: one runs
 * until it blocks in a corio call, yields or returns. Blocking calls
 * (corio/io.h, corio/sync.h, corio_sleep) suspend only the calling fiber.
 *
 * Handles: a fiber that is not detached stays valid until corio_join() has
 * returned for it; a detached fiber's handle must not be used once it may
 * have ended.
 *
 * Cancellation: corio_cancel(f) makes the blocking call f is suspended in
 * (or, if it is not suspended, the next one it makes) return -ECANCELED.
 * An I/O operation is cancelled in the kernel and the fiber resumes only
 * after the kernel's completion has arrived, so buffers on its stack are never
 * written after the call returned. If the operation completed anyway, its
 * real result is returned instead.
 */
#ifndef CORIO_FIBER_H
#define CORIO_FIBER_H

#include "corio/types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef void *(*corio_fiber_fn)(void *arg);

struct corio_fiber_opts {
	size_t stack_size; /* 0: the loop's default (64 KiB); rounded up to pages */
	const char *name;  /* copied (up to 31 bytes); shown in overflow reports */
	bool detached;	   /* resources go back when it ends; no join */
};

/*
 * Create a fiber running fn(arg) on @loop (NULL: the calling thread's loop).
 * It starts at the loop's next turn. @opts may be NULL. On success returns 0
 * and, if @out is not NULL, sets *out. With @out NULL the fiber is detached
 * (nothing could join it), whatever opts->detached says. Errors: -EINVAL
 * (no loop, or no @fn), -EPERM (@loop is another thread's), -ENOMEM. Must be
 * called on the loop's thread.
 */
CORIO_API int corio_spawn(corio_fiber **out, corio_loop *loop, corio_fiber_fn fn, void *arg,
			  const struct corio_fiber_opts *opts);

/* Shorthand: a detached fiber on the current loop with default options. */
CORIO_API int corio_go(corio_fiber_fn fn, void *arg);

/*
 * Wait for @f to end and release it; *result (if not NULL) gets what its
 * function returned. Returns 0, -EINVAL (f detached, joined already, being
 * joined, or f is the caller), -EPERM (not in a fiber, and f has not ended),
 * -ECANCELED, or -ETIMEDOUT for the _until variant (then @f is still
 * joinable).
 */
CORIO_API int corio_join(corio_fiber *f, void **result);
CORIO_API int corio_join_until(corio_fiber *f, void **result, int64_t deadline);

/* Release @f when it ends, without joining. Returns 0 or -EINVAL. */
CORIO_API int corio_detach(corio_fiber *f);

/* Let the other ready fibers run; resume at the next turn. 0 or -EPERM. */
CORIO_API int corio_yield(void);

/* Sleep for @ns / until @deadline. Returns 0, -ECANCELED or -EPERM. */
CORIO_API int corio_sleep(int64_t ns);
CORIO_API int corio_sleep_until(int64_t deadline);

/* Request cancellation of @f (see above). Returns 0, or -EINVAL if f ended. */
CORIO_API int corio_cancel(corio_fiber *f);

/* The running fiber, or NULL on the loop's own stack / outside corio. */
CORIO_API corio_fiber *corio_self(void);

/* Name ("" when unnamed) and numeric id (unique per process). */
CORIO_API const char *corio_fiber_name(const corio_fiber *f);
CORIO_API int corio_fiber_set_name(corio_fiber *f, const char *name);
CORIO_API uint64_t corio_fiber_id(const corio_fiber *f);

/* One pointer of fiber-local data for the running fiber (-EPERM outside). */
CORIO_API void *corio_fiber_data(void);
CORIO_API int corio_fiber_set_data(void *data);

#ifdef __cplusplus
}
#endif
#endif
