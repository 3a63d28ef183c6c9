/*
 * Layer base: what every layer uses and that knows nothing of loops (the
 * clock, the log, compiler hints, lists) and the calling thread's loop.
 *
 * src/ is layered; each header says its layer, and a file includes only
 * headers of its own layer or below (scripts/layers.txt has the order and
 * the check; CONTRIBUTING.md says why).
 */
#ifndef CORIO_BASE_H
#define CORIO_BASE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "corio.h"
#include "list.h"

#if defined(__SANITIZE_ADDRESS__)
#define CORIO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORIO_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define CORIO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CORIO_TSAN 1
#endif
#endif

#define CORIO_LIKELY(x) __builtin_expect(!!(x), 1)
#define CORIO_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Largest read/write length; what Linux itself clamps to (MAX_RW_COUNT). */
#define CORIO__MAX_RW 0x7ffff000u

/* The calling thread's loop, or NULL (set by corio_loop_create). */
extern __thread corio_loop *corio__tls_loop;

/* Log a line to stderr, prefixed "corio: ". */
void corio__log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* SIGPIPE becomes -EPIPE unless the program chose (once; corio/signal.h). */
void corio__sigpipe_setup(void);
/* Block the signals a thread does not raise on itself, for a thread about to
 * be started (it inherits the mask); *old gets the mask to restore. */
int corio__block_signals(sigset_t *old);

#endif
