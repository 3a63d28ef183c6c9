/*
 * Fiber costs.
 *
 *   bench_fiber switch [iters]  one context switch (corio__ctx_switch, the
 *                               assembly primitive every fiber switch uses),
 *                               ping-pong between two contexts
 *   bench_fiber yield [iters]   corio_yield() between two fibers: fiber ->
 *                               loop -> other fiber, including the loop turn
 *   bench_fiber spawn [iters]   corio_spawn() + corio_join() of a fiber that
 *                               returns at once, from a fiber
 *
 * All figures are nanoseconds per operation (lower is better).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "bench.h"
#include "corio.h"
#include "fiber/ctx.h"

/* ---------------------------------------------------------------- switch */

static struct corio__ctx main_ctx, co_ctx;

static void bounce(void *arg)
{
	(void)arg;
	for (;;)
		corio__ctx_switch(&co_ctx, &main_ctx);
}

static void bench_switch(long iters)
{
	size_t size = 64 * 1024;
	char *stack = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int64_t t0;

	if (stack == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	corio__ctx_make(&co_ctx, stack + size, bounce, NULL);
	for (long i = 0; i < iters / 10; i++) /* warm-up */
		corio__ctx_switch(&main_ctx, &co_ctx);
	t0 = bench_now();
	for (long i = 0; i < iters; i++)
		corio__ctx_switch(&main_ctx, &co_ctx);
	bench_report("switch", "corio", (double)(bench_now() - t0) / (2.0 * (double)iters), "ns");
	munmap(stack, size);
}

/* ----------------------------------------------------------------- yield */

static long yields;

static void *yielder(void *arg)
{
	(void)arg;
	for (long i = 0; i < yields; i++)
		corio_yield();
	return NULL;
}

static void run_yield(corio_loop *loop, long n)
{
	yields = n;
	for (int i = 0; i < 2; i++)
		if (corio_spawn(NULL, loop, yielder, NULL, &(struct corio_fiber_opts){.detached = true}))
			exit(1);
	if (corio_loop_run(loop))
		exit(1);
}

static void bench_yield(corio_loop *loop, long iters)
{
	int64_t t0;

	run_yield(loop, iters / 10);
	t0 = bench_now();
	run_yield(loop, iters);
	bench_report("yield", "corio", (double)(bench_now() - t0) / (2.0 * (double)iters), "ns");
}

/* ----------------------------------------------------------------- spawn */

static void *child(void *arg)
{
	return arg;
}

static void *spawner(void *arg)
{
	long n = *(long *)arg;

	for (long i = 0; i < n; i++) {
		corio_fiber *f;

		if (corio_spawn(&f, NULL, child, NULL, NULL) || corio_join(f, NULL))
			exit(1);
	}
	return NULL;
}

static void run_spawn(corio_loop *loop, long n)
{
	if (corio_spawn(NULL, loop, spawner, &n, &(struct corio_fiber_opts){.detached = true}))
		exit(1);
	if (corio_loop_run(loop))
		exit(1);
}

static void bench_spawn(corio_loop *loop, long iters)
{
	int64_t t0;

	run_spawn(loop, iters / 10);
	t0 = bench_now();
	run_spawn(loop, iters);
	bench_report("spawn_join", "corio", (double)(bench_now() - t0) / (double)iters, "ns");
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	corio_loop *loop;
	int err;

	if (!strcmp(mode, "switch")) {
		bench_switch(bench_arg(argc, argv, 2, 20000000));
		return 0;
	}
	err = corio_loop_create(&loop, NULL);
	if (err) {
		fprintf(stderr, "bench_fiber: no loop: %s\n", strerror(-err));
		return 1;
	}
	if (!strcmp(mode, "yield")) {
		bench_yield(loop, bench_arg(argc, argv, 2, 2000000));
	} else if (!strcmp(mode, "spawn")) {
		bench_spawn(loop, bench_arg(argc, argv, 2, 1000000));
	} else {
		fprintf(stderr, "usage: %s switch|yield|spawn [iterations]\n", argv[0]);
		return 2;
	}
	corio_loop_destroy(loop);
	return 0;
}
