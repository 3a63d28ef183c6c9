/* docs/GUIDE.md, "Thread per core": on_start runs on every loop. */
#include "doc.h" /* first: _GNU_SOURCE */

#include <sched.h>
#include <stdatomic.h>

static _Atomic int started;

static void *serve_shard(void *arg)
{
	atomic_fetch_add((_Atomic int *)arg, 1);
	return NULL;
}

#include "block.c"

int main(void)
{
	cpu_set_t set;

	DOC_CHECK(sched_getaffinity(0, sizeof(set), &set) == 0);
	DOC_CHECK(run_pool(&started) == 0);
	DOC_CHECK(atomic_load(&started) == CPU_COUNT(&set)); /* one loop per CPU */
	return 0;
}
