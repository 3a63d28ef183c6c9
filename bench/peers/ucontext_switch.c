/*
 * Peer for "bench_fiber switch": the same ping-pong between two contexts
 * with glibc's swapcontext(3). glibc saves and restores the signal mask on
 * every swap (an rt_sigprocmask system call), which corio's switch does not
 * do: fibers of one thread share its signal mask.
 *
 *   peer_ucontext [iters]
 *
 * Figure: nanoseconds per switch (lower is better).
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <ucontext.h>

#include "../bench.h"

static ucontext_t main_uc, co_uc;

static void bounce(void)
{
	for (;;)
		swapcontext(&co_uc, &main_uc);
}

/* Separate from main: getcontext() returns twice, which would make every
 * local of its caller suspect. */
static __attribute__((noinline)) void make_co(char *stack, size_t size)
{
	getcontext(&co_uc);
	co_uc.uc_stack.ss_sp = stack;
	co_uc.uc_stack.ss_size = size;
	co_uc.uc_link = NULL;
	makecontext(&co_uc, bounce, 0);
}

int main(int argc, char **argv)
{
	long iters = bench_arg(argc, argv, 1, 2000000);
	size_t size = 64 * 1024;
	char *stack = malloc(size);
	int64_t t0;

	make_co(stack, size);
	for (long i = 0; i < iters / 10; i++)
		swapcontext(&main_uc, &co_uc);
	t0 = bench_now();
	for (long i = 0; i < iters; i++)
		swapcontext(&main_uc, &co_uc);
	bench_report("switch", "ucontext", (double)(bench_now() - t0) / (2.0 * (double)iters), "ns");
	free(stack);
	return 0;
}
