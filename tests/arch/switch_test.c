/*
 * The context switch on its own (no loop, no liburing), so that it can also
 * be built for another architecture and run under an emulator
 * (tests/arch/cross.sh). Checks:
 *  - many switches back and forth, with values carried in locals that the
 *    compiler keeps in callee-saved registers (integer and floating point)
 *    across the switch;
 *  - the floating-point control words (rounding mode) belong to each context:
 *    a new context inherits the creator's, and a change made on one side is
 *    not seen on the other;
 *  - the stack alignment the ABI promises at function entry.
 * Exit 0 on success, 1 with a message otherwise.
 */
#include <fenv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fiber/ctx.h"

#define ROUNDS 100000
#define STACK (64 * 1024)

/* The rounding mode as the SSE unit sees it (MXCSR), which fegetround does
 * not read on x86_64 (it reads the x87 control word): the switch must keep
 * both. Elsewhere the one control register fegetround reads. */
static int sse_round(void)
{
#if defined(__x86_64__)
	unsigned csr;

	__asm__ volatile("stmxcsr %0" : "=m"(csr));
	return (int)(csr >> 13) & 3; /* 0 nearest, 1 down, 2 up, 3 toward zero */
#else
	return fegetround();
#endif
}

#if defined(__x86_64__)
#define SSE(mode) (mode == FE_TONEAREST ? 0 : mode == FE_DOWNWARD ? 1 : mode == FE_UPWARD ? 2 : 3)
#else
#define SSE(mode) (mode)
#endif

static struct corio__ctx main_ctx, fib_ctx;
static volatile unsigned long shared;
static int fib_round_at_start, fib_round_after, fib_sse_after;
static uintptr_t entry_sp;
static int failures;

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "switch_test: %s:%d: %s\n", __FILE__, \
				__LINE__, #cond);                              \
			failures++;                                            \
		}                                                              \
	} while (0)

/* Not inlined, so that its callers must keep their values in callee-saved
 * registers or on the stack across it. */
__attribute__((noinline)) static void to_main(void)
{
	corio__ctx_switch(&fib_ctx, &main_ctx);
}

__attribute__((noinline)) static void to_fiber(void)
{
	corio__ctx_switch(&main_ctx, &fib_ctx);
}

static void entry(void *arg)
{
	unsigned long a = (unsigned long)(uintptr_t)arg, b = 7, c = 11, d = 13;
	double x = 1.5, y = 2.25;

	entry_sp = (uintptr_t)__builtin_frame_address(0);
	fib_round_at_start = fegetround();
	fesetround(FE_TOWARDZERO);
	for (unsigned long i = 0; i < ROUNDS; i++) {
		a += i;
		b ^= a;
		c += b;
		d -= c;
		x += 0.5; /* exact: the same under any rounding mode */
		y += x * 0.25;
		shared = a + b + c + d + (unsigned long)x + (unsigned long)y;
		to_main();
	}
	fib_round_after = fegetround();
	fib_sse_after = sse_round();
	shared = ~0ul;
	for (;;)
		to_main(); /* never returns */
}

int main(void)
{
	char *stack = aligned_alloc(16, STACK);
	unsigned long a = 3, b = 5, c = 9, d = 17;
	double x = 0.75, y = 4.5;
	unsigned long fa = 42, fb = 7, fc = 11, fd = 13;
	double fx = 1.5, fy = 2.25;

	if (!stack)
		return 1;
	fesetround(FE_TONEAREST);
	corio__ctx_make(&fib_ctx, stack + STACK, entry, (void *)(intptr_t)42);
	fesetround(FE_UPWARD);
	for (unsigned long i = 0; i < ROUNDS; i++) {
		to_fiber();
		/* What the fiber computed, step by step, computed again here. */
		fa += i;
		fb ^= fa;
		fc += fb;
		fd -= fc;
		fx += 0.5;
		fy += fx * 0.25;
		if (shared != fa + fb + fc + fd + (unsigned long)fx + (unsigned long)fy) {
			CHECK(shared == fa + fb + fc + fd + (unsigned long)fx + (unsigned long)fy);
			break;
		}
		/* Our own locals survive the switch too. */
		a = a * 3 + 1;
		b += a;
		c ^= b;
		d += c;
		x += 0.5;
		y *= 1.0;
	}
	CHECK(fegetround() == FE_UPWARD); /* the fiber's TOWARDZERO stayed there */
	CHECK(sse_round() == SSE(FE_UPWARD));
	to_fiber();
	CHECK(shared == ~0ul);
	CHECK(fib_round_at_start == FE_TONEAREST); /* inherited at creation */
	CHECK(fib_round_after == FE_TOWARDZERO);   /* ours (UPWARD) did not leak in */
	CHECK(fib_sse_after == SSE(FE_TOWARDZERO));
	/* At function entry the psABI wants sp + word to be 16-aligned on
	 * x86_64 (so the frame address is 16-aligned), and sp itself on
	 * AArch64. */
	CHECK(entry_sp % 16 == 0);
	CHECK(x == 0.75 + 0.5 * ROUNDS && y == 4.5 && a != 3 && d != 17 && c != 9);
	free(stack);
	if (failures)
		return 1;
	printf("switch_test: %d switches ok\n", 2 * ROUNDS + 2);
	return 0;
}
