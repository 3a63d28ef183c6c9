/* docs/OWNERSHIP.md, rule 1: a receive into the fiber's stack, with a
 * deadline: data that came, then nothing for a second. */
#include "doc.h"

#include "block.c"

static void *body(void *arg)
{
	int sv[2];

	DOC_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	DOC_CHECK(write(sv[1], "x", 1) == 1);
	DOC_CHECK(recv_for_a_second(sv[0]) == 1);
	DOC_CHECK(recv_for_a_second(sv[0]) == -ETIMEDOUT);
	close(sv[0]);
	close(sv[1]);
	return NULL;
}

int main(void)
{
	DOC_CHECK(corio_main(body, NULL) == 0);
	return 0;
}
