/*
 * Peer for "bench_fiber spawn": pthread_create() + pthread_join() of a
 * thread that returns at once, the cost a thread-per-task design pays where
 * corio spawns a fiber.
 *
 *   peer_pthread [iters]
 *
 * Figure: nanoseconds per create + join (lower is better).
 */
#define _GNU_SOURCE
#include <pthread.h>

#include "../bench.h"

static void *child(void *arg)
{
	return arg;
}

static void run(long n)
{
	for (long i = 0; i < n; i++) {
		pthread_t t;

		if (pthread_create(&t, NULL, child, NULL) || pthread_join(t, NULL))
			exit(1);
	}
}

int main(int argc, char **argv)
{
	long iters = bench_arg(argc, argv, 1, 20000);
	int64_t t0;

	run(iters / 10);
	t0 = bench_now();
	run(iters);
	bench_report("spawn_join", "pthread", (double)(bench_now() - t0) / (double)iters, "ns");
	return 0;
}
