/* docs/GUIDE.md, "Loops": the steps of corio_main, by hand. */
#include "doc.h"

static int ran;

static void *first_fiber(void *arg)
{
	ran = *(int *)arg;
	return NULL;
}

static int run(void)
{
	int value = 42;
	void *arg = &value;

#include "block.c"
	return ran == 42 ? 0 : 1;
}

int main(void)
{
	DOC_CHECK(run() == 0);
	return 0;
}
