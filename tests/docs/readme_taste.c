/* README.md, "A taste": the echo server runs in a child (on a free port
 * rather than 7000), echoes, and, having no stop of its own, ends by
 * SIGTERM. */
#include "doc.h"

#define corio_listen_tcp(host, port, backlog, flags) doc_listen(host, backlog, flags)
#define main taste_main
#include "block.c"
#undef main

static int run_taste(int argc, char **argv)
{
	return taste_main();
}

int main(void)
{
	int port, fd, st;
	pid_t pid = doc_start(run_taste, 0, NULL, &port);

	fd = doc_connect(port);
	doc_roundtrip(fd, "hello", "hello");
	doc_roundtrip(fd, "again\n", "again\n");
	close(fd);
	st = doc_stop(pid, SIGTERM);
	DOC_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
	return 0;
}
