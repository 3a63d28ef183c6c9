/*
 * What every layer uses and that knows nothing of loops: the clock, the
 * log, the version, and the calling thread's loop (set by corio_loop_create,
 * read everywhere).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "base.h"

__thread corio_loop *corio__tls_loop __attribute__((tls_model("initial-exec")));

int64_t corio_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * CORIO_SEC + ts.tv_nsec;
}

const char *corio_version(void)
{
	return "corio 0.1.0";
}

void corio__log(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	fprintf(stderr, "corio: %s\n", buf);
}
