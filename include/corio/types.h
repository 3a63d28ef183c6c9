/*
 * corio: basic types shared by every public header.
 *
 * Conventions of the whole API:
 *  - Every call that can fail returns >= 0 on success and -errno on failure
 *    (like the kernel and liburing). errno is never read or set.
 *  - Times are int64_t nanoseconds. A *deadline* is an absolute time on
 *    CLOCK_MONOTONIC (see corio_now()); 0 means "no deadline".
 *  - `corio_` names are public; `corio__` names are internal.
 */
#ifndef CORIO_TYPES_H
#define CORIO_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define CORIO_API __attribute__((visibility("default")))
#else
#define CORIO_API
#endif

#define CORIO_VERSION_MAJOR 0
#define CORIO_VERSION_MINOR 1
#define CORIO_VERSION_PATCH 0

#define CORIO_NSEC ((int64_t)1)
#define CORIO_USEC ((int64_t)1000)
#define CORIO_MSEC ((int64_t)1000000)
#define CORIO_SEC ((int64_t)1000000000)

typedef struct corio_loop corio_loop;
typedef struct corio_fiber corio_fiber;

/* Intrusive list node, embedded in public structs that hold wait queues.
 * Treat as private. */
struct corio_list {
	struct corio_list *next, *prev;
};

/* Monotonic clock (CLOCK_MONOTONIC) in nanoseconds. */
CORIO_API int64_t corio_now(void);

/* "corio 0.1.0" */
CORIO_API const char *corio_version(void);

#ifdef __cplusplus
}
#endif
#endif
