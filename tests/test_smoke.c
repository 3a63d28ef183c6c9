/* Smoke: a fiber runs, sleeps, does a nop, reads a pipe. */
#define _GNU_SOURCE
#include <unistd.h>

#include "util.h"

static void *body(void *arg)
{
	int p[2];
	char buf[8] = {0};

	(void)arg;
	assert_int_equal(corio_nop(), 0);
	assert_int_equal(corio_sleep(CORIO_MSEC), 0);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "hi", 2), 2);
	assert_int_equal(corio_read(p[0], buf, sizeof(buf), -1), 2);
	assert_string_equal(buf, "hi");
	close(p[0]);
	close(p[1]);
	return (void *)42;
}

static void smoke(void **state)
{
	(void)state;
	assert_ptr_equal(t_run(body, NULL), (void *)42);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(smoke)};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
