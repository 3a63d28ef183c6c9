/*
 * Operations per second through corio, with no-op operations (IORING_OP_NOP),
 * so that what is measured is corio's own cost per operation plus the
 * kernel's minimum, the same minimum the raw liburing peer
 * (peers/uring_nop.c) pays.
 *
 *   bench_nop async [total] [depth]  completion API: @depth corio_async_nop
 *                                    in flight; each callback starts the next
 *   bench_nop fiber [total] [depth]  @depth fibers, each looping corio_nop()
 *
 * The loop uses its default ring (256 SQ entries; SINGLE_ISSUER |
 * DEFER_TASKRUN on kernels that have it), which the peer copies. Figures are
 * operations per second (higher is better).
 */
#define _GNU_SOURCE
#include <string.h>

#include <corio.h>

#include "bench.h"

struct state {
	uint64_t started, done, total;
};

static void on_nop(corio_loop *loop, int res, unsigned flags, void *user)
{
	struct state *s = user;

	(void)flags;
	if (res != 0)
		exit(1);
	s->done++;
	if (s->started < s->total) {
		s->started++;
		if (corio_async_nop(loop, on_nop, s) < 0)
			exit(1);
	}
}

static void run_async(corio_loop *loop, uint64_t total, unsigned depth)
{
	struct state s = {.total = total};

	for (unsigned i = 0; i < depth && s.started < total; i++) {
		s.started++;
		if (corio_async_nop(loop, on_nop, &s) < 0)
			exit(1);
	}
	if (corio_loop_run(loop) || s.done != total)
		exit(1);
}

static uint64_t per_fiber;

static void *nopper(void *arg)
{
	(void)arg;
	for (uint64_t i = 0; i < per_fiber; i++)
		if (corio_nop() != 0)
			exit(1);
	return NULL;
}

static void run_fibers(corio_loop *loop, uint64_t total, unsigned depth)
{
	struct corio_fiber_opts o = {.detached = true};

	per_fiber = total / depth;
	for (unsigned i = 0; i < depth; i++)
		if (corio_spawn(NULL, loop, nopper, NULL, &o))
			exit(1);
	if (corio_loop_run(loop))
		exit(1);
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	uint64_t total = (uint64_t)bench_arg(argc, argv, 2, 4000000);
	unsigned depth = (unsigned)bench_arg(argc, argv, 3, 128);
	void (*run)(corio_loop *, uint64_t, unsigned);
	struct corio_loop_stats st0, st1;
	corio_loop *loop;
	int64_t t0, t1;
	int err;

	if (!strcmp(mode, "async")) {
		run = run_async;
	} else if (!strcmp(mode, "fiber")) {
		run = run_fibers;
		total -= total % depth;
	} else {
		fprintf(stderr, "usage: %s async|fiber [total] [depth]\n", argv[0]);
		return 2;
	}
	err = corio_loop_create(&loop, NULL);
	if (err) {
		fprintf(stderr, "bench_nop: no loop: %s\n", strerror(-err));
		return 1;
	}
	run(loop, total / 10 - total / 10 % depth, depth); /* warm-up */
	corio_loop_stats(loop, &st0, sizeof(st0));
	t0 = bench_now();
	run(loop, total, depth);
	t1 = bench_now();
	corio_loop_stats(loop, &st1, sizeof(st1));
	bench_report(!strcmp(mode, "async") ? "nop_async" : "nop_fiber", "corio",
		     (double)total * 1e9 / (double)(t1 - t0), "ops/s");
	fprintf(stderr, "bench_nop %s: %.1f ops per io_uring_enter, %.2f turns per 1k ops\n", mode,
		(double)(st1.ops_completed - st0.ops_completed) / (double)(st1.enters - st0.enters),
		1000.0 * (double)(st1.turns - st0.turns) / (double)total);
	corio_loop_destroy(loop);
	return 0;
}
