/* docs/GUIDE.md, "Fibers": spawn, join, corio_go. */
#include "doc.h"

#include "block.c"

int main(void)
{
	/* parent returns what the joined worker returned: its argument. */
	DOC_CHECK(corio_main(parent, (void *)(intptr_t)42) == 42);
	return 0;
}
