/* docs/GUIDE.md, "Networking": the accept loop and handler in a child, on
 * a free port rather than 7000; an echo; SIGTERM ends it. */
#include "doc.h"

#define corio_listen_tcp(host, port, backlog, flags) doc_listen(host, backlog, flags)
#include "block.c"

static int run_server(int argc, char **argv)
{
	return corio_main(server, NULL);
}

int main(void)
{
	int port, fd, st;
	pid_t pid = doc_start(run_server, 0, NULL, &port);

	fd = doc_connect(port);
	doc_roundtrip(fd, "ping\n", "ping\n");
	close(fd);
	st = doc_stop(pid, SIGTERM);
	DOC_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
	return 0;
}
