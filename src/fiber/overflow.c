/*
 * Stack overflow reports. A fault in a fiber's guard region (stack.c) is
 * reported by a SIGSEGV handler running on an alternate signal stack: it
 * names the fiber, then lets the default action kill the process. Faults
 * elsewhere go to the previous handler.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fiber.h"

static struct sigaction old_segv, old_bus;
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;

/* Async-signal-safe formatting into a fixed buffer. */
struct sbuf {
	char b[256];
	size_t n;
};

static void put_str(struct sbuf *s, const char *str)
{
	while (*str && s->n < sizeof(s->b) - 1)
		s->b[s->n++] = *str++;
}

static void put_num(struct sbuf *s, uint64_t v, unsigned base)
{
	char tmp[24];
	int i = 0;

	do {
		tmp[i++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (base == 16)
		put_str(s, "0x");
	while (i > 0 && s->n < sizeof(s->b) - 1)
		s->b[s->n++] = tmp[--i];
}

static void chain(int sig, siginfo_t *si, void *uc)
{
	struct sigaction *old = sig == SIGSEGV ? &old_segv : &old_bus;

	if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction) {
		old->sa_sigaction(sig, si, uc);
		return;
	}
	if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
		old->sa_handler(sig);
		return;
	}
	/* Default action: restore it; the faulting access repeats and kills. */
	signal(sig, SIG_DFL);
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
	corio_loop *loop = corio__tls_loop;
	corio_fiber *f = loop ? loop->current : NULL;
	char *a = si->si_addr;

	if (f && f->stack && a >= f->stack->lo - CORIO__GUARD && a < f->stack->lo) {
		struct sbuf s = {.n = 0};
		ssize_t w;

		put_str(&s, "corio: fiber ");
		put_num(&s, f->id, 10);
		put_str(&s, " \"");
		put_str(&s, f->name);
		put_str(&s, "\" overflowed its ");
		put_num(&s, f->stack->size, 10);
		put_str(&s, "-byte stack (fault at ");
		put_num(&s, (uint64_t)(uintptr_t)a, 16);
		put_str(&s, "); give it a larger corio_fiber_opts.stack_size\n");
		w = write(STDERR_FILENO, s.b, s.n);
		(void)w;
		signal(SIGSEGV, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		return; /* the access repeats and the default action kills */
	}
	chain(sig, si, uc);
}

static void install_handlers(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old_segv);
	sigaction(SIGBUS, &sa, &old_bus);
}

int corio__overflow_handler_install(corio_loop *loop)
{
	stack_t cur, ss;

	pthread_once(&handler_once, install_handlers);
	if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE))
		return 0; /* the thread has one already (ours or the program's) */
	loop->altstack_size = 64 * 1024;
	loop->altstack = mmap(NULL, loop->altstack_size, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (loop->altstack == MAP_FAILED) {
		loop->altstack = NULL;
		return -ENOMEM;
	}
	ss.ss_sp = loop->altstack;
	ss.ss_size = loop->altstack_size;
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL)) {
		munmap(loop->altstack, loop->altstack_size);
		loop->altstack = NULL;
		return -errno;
	}
	loop->altstack_ours = true;
	return 0;
}

void corio__overflow_handler_remove(corio_loop *loop)
{
	stack_t ss = {.ss_flags = SS_DISABLE};

	if (!loop->altstack_ours)
		return;
	sigaltstack(&ss, NULL);
	munmap(loop->altstack, loop->altstack_size);
	loop->altstack = NULL;
	loop->altstack_ours = false;
}
