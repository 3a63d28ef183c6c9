/*
 * The context switch (switch_<arch>.S, ctx.c). Kept apart from the rest of
 * the internals so that it can be built and tested on its own, also for
 * another architecture (tests/arch/).
 */
#ifndef CORIO_CTX_H
#define CORIO_CTX_H

/* Saved context: the stack pointer; the registers are on that stack. */
struct corio__ctx {
	void *sp;
};

/* Switch from the context saved in @from to the one in @to (assembly). */
void corio__ctx_switch(struct corio__ctx *from, struct corio__ctx *to);
/* Prepare @ctx so that switching to it calls entry(arg) on the stack that
 * ends at @hi (entry must never return). */
void corio__ctx_make(struct corio__ctx *ctx, void *hi, void (*entry)(void *), void *arg);

#endif
