/* docs/GUIDE.md, "Signals": SIGHUP twice (a reload each), then SIGTERM
 * stops the loop; none of them reaches the process's default action. */
#include "doc.h"

static int reloads;

static void reload_config(void)
{
	reloads++;
}

#include "block.c"

static void *sender(void *arg)
{
	/* One at a time: a second SIGHUP sent while one is pending counts once. */
	for (int want = 1; want <= 2; want++) {
		DOC_CHECK(kill(getpid(), SIGHUP) == 0);
		while (reloads < want)
			corio_yield();
	}
	DOC_CHECK(kill(getpid(), SIGTERM) == 0);
	return NULL;
}

static void *first(void *arg)
{
	corio_go(on_signals, arg);
	corio_go(sender, NULL);
	return NULL;
}

int main(void)
{
	sigset_t set;

	DOC_CHECK(block_signals(&set) == 0);
	DOC_CHECK(corio_main(first, &set) == 0);
	DOC_CHECK(reloads == 2);
	return 0;
}
