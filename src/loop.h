/*
 * Layer loop: what the pool asks of the loop (loop.c).
 */
#ifndef CORIO_LOOP_INTERNAL_H
#define CORIO_LOOP_INTERNAL_H

#include "core.h"

/* One loop turn (see loop.c). */
int corio__turn(corio_loop *loop, bool wait);
/* Start closing: cancel every fiber and async op (destroy, pool stop). */
void corio__loop_close(corio_loop *loop);

#endif
