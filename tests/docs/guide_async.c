/* docs/GUIDE.md, "The completion API": a read with a deadline, of a file
 * (it completes) and of an empty pipe (the deadline ends it). */
#include "doc.h"

#include "block.c"

int main(void)
{
	char path[] = "/tmp/corio-doc-XXXXXX", buf[16];
	corio_loop *loop;
	int fd = mkstemp(path), p[2];

	DOC_CHECK(fd >= 0);
	unlink(path);
	DOC_CHECK(write(fd, "hello", 5) == 5);
	DOC_CHECK(corio_loop_create(&loop, NULL) == 0);
	DOC_CHECK(read_with_deadline(loop, fd, buf, sizeof(buf)) == 5);
	DOC_CHECK(!memcmp(buf, "hello", 5));
	DOC_CHECK(pipe(p) == 0);
	DOC_CHECK(read_with_deadline(loop, p[0], buf, sizeof(buf)) == -ETIMEDOUT);
	corio_loop_destroy(loop);
	close(fd);
	close(p[0]);
	close(p[1]);
	return 0;
}
