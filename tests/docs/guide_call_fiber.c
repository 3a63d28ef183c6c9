/* docs/GUIDE.md, "Blocking work on another loop": from this thread (no
 * loop), a file's size read by a fiber of loop 1; a missing file. */
#include "doc.h" /* first: _GNU_SOURCE */

#include <fcntl.h>
#include <sys/stat.h>

#include "block.c"

int main(void)
{
	char path[] = "/tmp/corio-doc-XXXXXX";
	static char data[12345];
	corio_pool *pool;
	int fd = mkstemp(path);

	DOC_CHECK(fd >= 0);
	DOC_CHECK(write(fd, data, sizeof(data)) == (ssize_t)sizeof(data));
	close(fd);
	DOC_CHECK(corio_pool_create(&pool, &(struct corio_pool_opts){.nloops = 2}) == 0);
	DOC_CHECK(size_on(pool, 1, path) == (int64_t)sizeof(data));
	unlink(path);
	DOC_CHECK(size_on(pool, 0, path) == -ENOENT);
	corio_pool_destroy(pool);
	return 0;
}
