/*
 * Helpers shared by the benchmark programs.
 *
 * Every program measures one thing once (after a warm-up) and prints one
 * machine-readable line per figure on standard output:
 *
 *   RESULT name=<metric> impl=<who> value=<number> unit=<ns|ops/s>
 *
 * bench/run.sh runs each program several times, pinned, and aggregates the
 * lines into a table. Anything else (diagnostics) goes to standard error.
 */
#ifndef CORIO_BENCH_H
#define CORIO_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline int64_t bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void bench_report(const char *name, const char *impl, double value,
				const char *unit)
{
	printf("RESULT name=%s impl=%s value=%.3f unit=%s\n", name, impl, value, unit);
	fflush(stdout);
}

/* Positional argument @i as a positive number, or @def. */
static inline long bench_arg(int argc, char **argv, int i, long def)
{
	long v;

	if (i >= argc)
		return def;
	v = strtol(argv[i], NULL, 0);
	if (v <= 0) {
		fprintf(stderr, "bad argument: %s\n", argv[i]);
		exit(2);
	}
	return v;
}

/* Keep the compiler from deleting a computation whose result is unused. */
#define bench_keep(x) __asm__ volatile("" : : "r"(x) : "memory")

#endif
