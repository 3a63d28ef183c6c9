/* docs/GUIDE.md, "Writing a server": run on a free port in a child; lines
 * come back in upper case (one at a time and two in one send); a line over
 * 4 KiB ends that connection; SIGTERM stops the server cleanly (exit 0). */
#include "doc.h"

#define main server_main
#include "block.c"
#undef main

int main(void)
{
	char *argv[] = {"server", "0", NULL};
	char big[5000], buf[16];
	int port, fd, st;
	pid_t pid = doc_start(server_main, 2, argv, &port);

	fd = doc_connect(port);
	doc_roundtrip(fd, "hello\n", "HELLO\n");
	doc_roundtrip(fd, "ab\ncd\n", "AB\nCD\n");
	memset(big, 'x', sizeof(big));
	DOC_CHECK(send(fd, big, sizeof(big), MSG_NOSIGNAL) == (ssize_t)sizeof(big));
	DOC_CHECK(recv(fd, buf, sizeof(buf), 0) <= 0); /* closed on us */
	close(fd);
	/* Another client, still served; then the stop. */
	fd = doc_connect(port);
	doc_roundtrip(fd, "still here\n", "STILL HERE\n");
	st = doc_stop(pid, SIGTERM);
	DOC_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(fd);
	return 0;
}
