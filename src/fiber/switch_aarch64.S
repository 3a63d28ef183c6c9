/*
 * Fiber context switch, AArch64 (AAPCS64).
 *
 * void corio__ctx_switch(struct corio__ctx *from, struct corio__ctx *to)
 *
 * Callee-saved: x19-x28, x29 (fp), x30 (lr), sp, the low 64 bits of v8-v15
 * (d8-d15) and the FPCR. They are stored in a 176-byte frame on the current
 * stack; the context struct holds the stack pointer. Frame layout:
 *
 *   +0 x19 x20  +16 x21 x22  +32 x23 x24  +48 x25 x26  +64 x27 x28
 *   +80 x29 x30  +96 d8 d9  +112 d10 d11  +128 d12 d13  +144 d14 d15
 *   +160 fpcr   +168 pad
 *
 * corio__ctx_make() builds a frame with x19 = argument, x20 = entry and
 * x30 = corio__fiber_trampoline.
 */
	.text
	.globl	corio__ctx_switch
	.hidden	corio__ctx_switch
	.type	corio__ctx_switch, %function
	.p2align 4
corio__ctx_switch:
	sub	sp, sp, #176
	stp	x19, x20, [sp, #0]
	stp	x21, x22, [sp, #16]
	stp	x23, x24, [sp, #32]
	stp	x25, x26, [sp, #48]
	stp	x27, x28, [sp, #64]
	stp	x29, x30, [sp, #80]
	stp	d8, d9, [sp, #96]
	stp	d10, d11, [sp, #112]
	stp	d12, d13, [sp, #128]
	stp	d14, d15, [sp, #144]
	mrs	x9, fpcr
	str	x9, [sp, #160]
	mov	x9, sp
	str	x9, [x0]
	ldr	x9, [x1]
	mov	sp, x9
	ldp	x19, x20, [sp, #0]
	ldp	x21, x22, [sp, #16]
	ldp	x23, x24, [sp, #32]
	ldp	x25, x26, [sp, #48]
	ldp	x27, x28, [sp, #64]
	ldp	x29, x30, [sp, #80]
	ldp	d8, d9, [sp, #96]
	ldp	d10, d11, [sp, #112]
	ldp	d12, d13, [sp, #128]
	ldp	d14, d15, [sp, #144]
	ldr	x9, [sp, #160]
	msr	fpcr, x9
	add	sp, sp, #176
	ret
	.size	corio__ctx_switch, .-corio__ctx_switch

	.globl	corio__fiber_trampoline
	.hidden	corio__fiber_trampoline
	.type	corio__fiber_trampoline, %function
	.p2align 4
corio__fiber_trampoline:
	mov	x0, x19
	mov	x29, #0
	mov	x30, #0
	br	x20
	.size	corio__fiber_trampoline, .-corio__fiber_trampoline

	.section .note.GNU-stack,"",%progbits
