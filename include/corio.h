/*
 * corio: one event loop per core on io_uring (epoll where io_uring is not
 * available), stackful fibers, and the completion API they are built on.
 *
 * This umbrella header includes every public area:
 *   corio/types.h  conventions (-errno, nanosecond deadlines), clock
 *   corio/loop.h   the per-thread loop
 *   corio/fiber.h  fibers: spawn, join, yield, sleep, cancel
 *   corio/io.h     blocking-style file and socket calls for fibers
 *   corio/async.h  the completion API: start an operation, get a callback
 *   corio/sync.h   mutex, condition, event, channel, wait group
 *   corio/pool.h   thread per core: a pool of loops, messages, cross-loop sync
 *   corio/net.h    TCP: listen, serve, connections with a buffered reader
 *   corio/signal.h waiting for signals in a fiber; the signal mask; SIGPIPE
 */
#ifndef CORIO_H
#define CORIO_H

#include "corio/types.h"
#include "corio/loop.h"
#include "corio/fiber.h"
#include "corio/io.h"
#include "corio/async.h"
#include "corio/sync.h"
#include "corio/pool.h"
#include "corio/net.h"
#include "corio/signal.h"

#endif
