/*
 * Fiber context switch, x86_64 System V.
 *
 * void corio__ctx_switch(struct corio__ctx *from, struct corio__ctx *to)
 *
 * Saves only what the psABI says a callee must preserve: rbx, rbp, r12-r15,
 * the stack pointer, the SSE control/status word (MXCSR, control bits) and
 * the x87 control word. Everything else is caller-saved, so the C caller has
 * already spilled it. The registers go on the current stack; the context
 * struct holds just the stack pointer. Layout at the saved sp, upward:
 *
 *   +0  MXCSR (4 bytes), x87 CW (2 bytes), pad
 *   +8  r15   +16 r14   +24 r13   +32 r12   +40 rbx   +48 rbp
 *   +56 return address
 *
 * corio__ctx_make() (fiber/ctx.c) builds the same layout for a new fiber,
 * with corio__fiber_trampoline as the return address: it moves r12 (the
 * argument) into rdi and jumps to r13 (the entry function), with a zero
 * return address above it so that backtraces stop there.
 */
	.text
	.globl	corio__ctx_switch
	.hidden	corio__ctx_switch
	.type	corio__ctx_switch, @function
	.p2align 4
corio__ctx_switch:
	.cfi_startproc
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	subq	$8, %rsp
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movq	%rsp, (%rdi)
	movq	(%rsi), %rsp
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	addq	$8, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
	.cfi_endproc
	.size	corio__ctx_switch, .-corio__ctx_switch

	.globl	corio__fiber_trampoline
	.hidden	corio__fiber_trampoline
	.type	corio__fiber_trampoline, @function
	.p2align 4
corio__fiber_trampoline:
	.cfi_startproc
	.cfi_undefined rip
	movq	%r12, %rdi
	jmpq	*%r13
	.cfi_endproc
	.size	corio__fiber_trampoline, .-corio__fiber_trampoline

	.section .note.GNU-stack,"",@progbits
