/*
 * Building the first frame of a fiber, matching what corio__ctx_switch pops
 * (see the layout comments in switch_<arch>.S). The control words of the
 * floating-point unit are inherited from the creating thread, so a program
 * that set flush-to-zero or a rounding mode keeps it inside its fibers.
 */
#include <stdint.h>
#include <string.h>

#include "ctx.h"

void corio__fiber_trampoline(void);

#if defined(__x86_64__)

enum {
	X86_CSR, /* MXCSR in the low 4 bytes, x87 CW in the next 2 */
	X86_R15,
	X86_R14,
	X86_R13,
	X86_R12,
	X86_RBX,
	X86_RBP,
	X86_RET,
	X86_ZERO, /* the trampoline's (absent) return address */
	X86_WORDS,
};
_Static_assert(X86_WORDS * 8 % 16 == 8, "frame must leave the trampoline at a call boundary");

void corio__ctx_make(struct corio__ctx *ctx, void *hi, void (*entry)(void *), void *arg)
{
	uint64_t *sp = (uint64_t *)((uintptr_t)hi & ~(uintptr_t)15) - X86_WORDS;
	uint32_t mxcsr;
	uint16_t fpcw;

	/* sp is 8 mod 16. After the switch pops the first 8 words (ret being
	 * the last), the trampoline runs with rsp == hi - 8, pointing at the
	 * zero word: exactly the state of a function entered by a call. */
	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
	__asm__ volatile("fnstcw %0" : "=m"(fpcw));
	memset(sp, 0, X86_WORDS * sizeof(*sp));
	memcpy(&sp[X86_CSR], &mxcsr, 4);
	memcpy((char *)&sp[X86_CSR] + 4, &fpcw, 2);
	sp[X86_R12] = (uint64_t)(uintptr_t)arg;
	sp[X86_R13] = (uint64_t)(uintptr_t)entry;
	sp[X86_RET] = (uint64_t)(uintptr_t)corio__fiber_trampoline;
	ctx->sp = sp;
}

#elif defined(__aarch64__)

enum {
	A64_X19,
	A64_X20,
	A64_X30 = 11,
	A64_FPCR = 20,
	A64_WORDS = 22, /* 176 bytes */
};

void corio__ctx_make(struct corio__ctx *ctx, void *hi, void (*entry)(void *), void *arg)
{
	uint64_t *sp = (uint64_t *)((uintptr_t)hi & ~(uintptr_t)15) - A64_WORDS;
	uint64_t fpcr;

	__asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
	memset(sp, 0, A64_WORDS * sizeof(*sp));
	sp[A64_X19] = (uint64_t)(uintptr_t)arg;
	sp[A64_X20] = (uint64_t)(uintptr_t)entry;
	sp[A64_X30] = (uint64_t)(uintptr_t)corio__fiber_trampoline;
	sp[A64_FPCR] = fpcr;
	ctx->sp = sp;
}

#else
#error "corio: no context switch for this architecture (x86_64 and aarch64 are supported)"
#endif
