/*
 * Fibers: spawn and join with a result, detach, yield order, names, ids,
 * fiber-local data, the join and detach error paths, stack sizes and stack
 * reuse, and the fiber calls made outside a fiber.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

/* ------------------------------------------------------------- helpers */

static void *ret_arg_plus_one(void *arg)
{
	return (void *)((intptr_t)arg + 1);
}

static void *yield_then_ret(void *arg)
{
	t_turns(3);
	return arg;
}

/* ----------------------------------------------------------- spawn/join */

static void *join_body(void *arg)
{
	corio_fiber *a = t_spawn(ret_arg_plus_one, (void *)41);
	corio_fiber *b = t_spawn(yield_then_ret, (void *)7);
	void *res = NULL;

	(void)arg;
	assert_ptr_not_equal(a, b);
	/* a has not run yet: it starts at the next turn. */
	assert_int_equal(corio_join(a, &res), 0);
	assert_ptr_equal(res, (void *)42);
	assert_int_equal(corio_join(b, &res), 0);
	assert_ptr_equal(res, (void *)7);
	/* NULL result pointer is allowed. */
	assert_int_equal(corio_join(t_spawn(ret_arg_plus_one, NULL), NULL), 0);
	return (void *)1;
}

static void spawn_join_result(void **state)
{
	(void)state;
	assert_ptr_equal(t_run(join_body, NULL), (void *)1);
}

/* The joiner is parked until the joined fiber ends. */
static int order_log[64], order_n;

static void *logging_child(void *arg)
{
	for (int i = 0; i < 3; i++) {
		order_log[order_n++] = 100 + i;
		t_turns(1);
	}
	return arg;
}

static void *joiner_body(void *arg)
{
	corio_fiber *c = t_spawn(logging_child, (void *)5);

	(void)arg;
	order_log[order_n++] = 1;
	assert_ptr_equal(t_join(c), (void *)5);
	order_log[order_n++] = 2;
	return NULL;
}

static void join_waits_for_end(void **state)
{
	const int want[] = {1, 100, 101, 102, 2};

	(void)state;
	order_n = 0;
	t_run(joiner_body, NULL);
	assert_int_equal(order_n, 5);
	assert_memory_equal(order_log, want, sizeof(want));
}

/* Joining from outside any fiber works once the fiber has ended. */
static void join_outside_after_end(void **state)
{
	corio_loop *loop = t_loop();
	corio_fiber *f;
	void *res = NULL;

	(void)state;
	assert_int_equal(corio_spawn(&f, loop, ret_arg_plus_one, (void *)9, NULL), 0);
	/* Not ended yet: a thread cannot wait without a fiber. */
	assert_int_equal(corio_join(f, &res), -EPERM);
	assert_int_equal(corio_loop_run(loop), 0);
	assert_int_equal(corio_join(f, &res), 0);
	assert_ptr_equal(res, (void *)10);
	corio_loop_destroy(loop);
}

/* --------------------------------------------------------------- detach */

static int detached_ran;

static void *detached_child(void *arg)
{
	t_turns(2);
	detached_ran += (int)(intptr_t)arg;
	return NULL;
}

static void *detach_body(void *arg)
{
	struct corio_fiber_opts o = {.detached = true};
	corio_fiber *f, *g;

	(void)arg;
	/* Born detached. */
	assert_int_equal(corio_spawn(&f, NULL, detached_child, (void *)1, &o), 0);
	assert_int_equal(corio_join(f, NULL), -EINVAL);
	assert_int_equal(corio_detach(f), -EINVAL);
	/* Detached later, while alive. */
	g = t_spawn(detached_child, (void *)10);
	assert_int_equal(corio_detach(g), 0);
	assert_int_equal(corio_detach(g), -EINVAL);
	assert_int_equal(corio_join(g, NULL), -EINVAL);
	/* corio_go: detached, current loop. */
	assert_int_equal(corio_go(detached_child, (void *)100), 0);
	/* Detached after it ended: released at once (LeakSanitizer checks). */
	g = t_spawn(ret_arg_plus_one, NULL);
	t_turns(2);
	assert_int_equal(corio_detach(g), 0);
	return NULL;
}

static void detach_runs_to_end(void **state)
{
	(void)state;
	detached_ran = 0;
	t_run(detach_body, NULL);
	/* The loop ran until the detached fibers ended. */
	assert_int_equal(detached_ran, 111);
}

static void *self_detach_body(void *arg)
{
	(void)arg;
	assert_int_equal(corio_detach(corio_self()), 0);
	t_turns(1);
	detached_ran++;
	return NULL;
}

static void detach_self(void **state)
{
	corio_loop *loop = t_loop();
	corio_fiber *f;

	(void)state;
	detached_ran = 0;
	/* A handle, or the fiber would be detached from the start. */
	assert_int_equal(corio_spawn(&f, loop, self_detach_body, NULL, NULL), 0);
	assert_int_equal(corio_loop_run(loop), 0);
	assert_int_equal(detached_ran, 1);
	corio_loop_destroy(loop);
}

/* ------------------------------------------------------------- join errors */

static corio_event gate;

static void *wait_gate(void *arg)
{
	assert_int_equal(corio_event_wait(&gate), 0);
	return arg;
}

static void *join_self_body(void *arg)
{
	(void)arg;
	assert_int_equal(corio_join(corio_self(), NULL), -EINVAL);
	assert_int_equal(corio_join_until(corio_self(), NULL, corio_now() + CORIO_SEC), -EINVAL);
	return NULL;
}

static int second_join_res;

static void *second_joiner(void *arg)
{
	void *res = NULL;

	second_join_res = corio_join(arg, &res);
	return res;
}

static void *join_errors_body(void *arg)
{
	corio_fiber *target, *j2;

	(void)arg;
	corio_event_init(&gate);
	assert_int_equal(corio_join(NULL, NULL), -EINVAL);
	assert_int_equal(corio_detach(NULL), -EINVAL);
	t_join(t_spawn(join_self_body, NULL));

	/* While another fiber is joining it, a fiber can be neither joined
	 * (a second time) nor detached. */
	target = t_spawn(wait_gate, (void *)3);
	j2 = t_spawn(second_joiner, target);
	second_join_res = 1;
	t_turns(1); /* target parks on the gate, j2 parks in its join */
	assert_int_equal(corio_join(target, NULL), -EINVAL);
	assert_int_equal(corio_join_until(target, NULL, corio_now() + CORIO_SEC), -EINVAL);
	assert_int_equal(corio_detach(target), -EINVAL);
	corio_event_set(&gate);
	assert_ptr_equal(t_join(j2), (void *)3);
	assert_int_equal(second_join_res, 0);
	return NULL;
}

/* The target has ended and woken its joiner, which has not run yet: the
 * fiber is still being joined. Neither a second join nor a detach may
 * take it (that would free it under the first joiner). */
static void *window_body(void *arg)
{
	corio_fiber *target, *j1;
	void *res = NULL;

	(void)arg;
	corio_event_init(&gate);
	target = t_spawn(wait_gate, (void *)8);
	j1 = t_spawn(second_joiner, target);
	second_join_res = 1;
	t_turns(1); /* target parks on the gate, j1 in its join */
	corio_event_set(&gate);
	/* Next batch: target (readied by the set) runs first and ends,
	 * waking j1 for the batch after; then we run. */
	t_turns(1);
	assert_int_equal(second_join_res, 1); /* j1 has not resumed yet */
	assert_int_equal(corio_join(target, &res), -EINVAL);
	assert_int_equal(corio_join_until(target, &res, corio_now() + CORIO_SEC), -EINVAL);
	assert_int_equal(corio_detach(target), -EINVAL);
	assert_int_equal(corio_cancel(target), -EINVAL);
	assert_null(res);
	/* The first joiner gets it. */
	assert_ptr_equal(t_join(j1), (void *)8);
	assert_int_equal(second_join_res, 0);
	return NULL;
}

static void join_errors(void **state)
{
	(void)state;
	t_run(join_errors_body, NULL);
	t_run(window_body, NULL);
}

/* join_until times out and the fiber stays joinable; a cancelled join
 * returns -ECANCELED and the fiber stays joinable too. */
static void *join_until_body(void *arg)
{
	corio_fiber *target;
	void *res = NULL;

	(void)arg;
	corio_event_init(&gate);
	target = t_spawn(wait_gate, (void *)77);
	assert_int_equal(corio_join_until(target, &res, corio_now() + CORIO_MSEC), -ETIMEDOUT);
	assert_null(res);
	/* Deadline already past. */
	assert_int_equal(corio_join_until(target, &res, corio_now() - 1), -ETIMEDOUT);
	corio_event_set(&gate);
	assert_int_equal(corio_join_until(target, &res, corio_now() + 3600 * CORIO_SEC), 0);
	assert_ptr_equal(res, (void *)77);
	return NULL;
}

static void join_until_timeout(void **state)
{
	(void)state;
	t_run(join_until_body, NULL);
}

/* --------------------------------------------------------------- yield */

#define NY 4
#define ROUNDS 5
static int ylog[NY * ROUNDS], ycount;

static void *yielder(void *arg)
{
	for (int r = 0; r < ROUNDS; r++) {
		ylog[ycount++] = (int)(intptr_t)arg;
		assert_int_equal(corio_yield(), 0);
	}
	return NULL;
}

static void *yield_body(void *arg)
{
	corio_fiber *f[NY];

	(void)arg;
	for (int i = 0; i < NY; i++)
		f[i] = t_spawn(yielder, (void *)(intptr_t)i);
	for (int i = 0; i < NY; i++)
		t_join(f[i]);
	return NULL;
}

static void yield_fifo(void **state)
{
	(void)state;
	ycount = 0;
	t_run(yield_body, NULL);
	assert_int_equal(ycount, NY * ROUNDS);
	/* Round robin: every round runs every fiber once, in spawn order. */
	for (int i = 0; i < NY * ROUNDS; i++)
		assert_int_equal(ylog[i], i % NY);
	assert_int_equal(corio_yield(), -EPERM);
}

/* A fiber that keeps yielding does not starve the others, nor I/O. */
static bool stop_spin;

static void *spinner(void *arg)
{
	long n = 0;

	(void)arg;
	while (!stop_spin) {
		corio_yield();
		n++;
	}
	return (void *)n;
}

static void *spin_body(void *arg)
{
	corio_fiber *s;
	int p[2];
	char c = 0;

	(void)arg;
	stop_spin = false;
	s = t_spawn(spinner, NULL);
	t_pipe(p);
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(corio_read(p[0], &c, 1, -1), 1);
	assert_int_equal(corio_nop(), 0);
	assert_int_equal(corio_sleep(CORIO_MSEC), 0);
	stop_spin = true;
	assert_true((long)t_join(s) > 0);
	close(p[0]);
	close(p[1]);
	return NULL;
}

static void yield_no_starvation(void **state)
{
	(void)state;
	t_run(spin_body, NULL);
}

/* ---------------------------------------------------- names, ids, self */

static void *name_body(void *arg)
{
	struct corio_fiber_opts o = {.name = "worker-1"};
	char longname[64];
	corio_fiber *f, *g, *self = corio_self();

	(void)arg;
	assert_non_null(self);
	assert_string_equal(corio_fiber_name(self), "");
	assert_int_equal(corio_spawn(&f, NULL, ret_arg_plus_one, NULL, &o), 0);
	assert_string_equal(corio_fiber_name(f), "worker-1");
	/* The name is copied. */
	o.name = "changed";
	assert_string_equal(corio_fiber_name(f), "worker-1");
	assert_int_equal(corio_fiber_set_name(f, "renamed"), 0);
	assert_string_equal(corio_fiber_name(f), "renamed");
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	assert_int_equal(corio_fiber_set_name(self, longname), 0);
	assert_int_equal(strlen(corio_fiber_name(self)), 31);
	assert_memory_equal(corio_fiber_name(self), longname, 31);
	assert_int_equal(corio_fiber_set_name(NULL, "x"), -EINVAL);
	assert_int_equal(corio_fiber_set_name(self, NULL), -EINVAL);
	assert_string_equal(corio_fiber_name(NULL), "");

	/* Ids: unique, non-zero, increasing with creation. */
	g = t_spawn(ret_arg_plus_one, NULL);
	assert_true(corio_fiber_id(self) > 0);
	assert_true(corio_fiber_id(f) > corio_fiber_id(self));
	assert_true(corio_fiber_id(g) > corio_fiber_id(f));
	assert_int_equal(corio_fiber_id(NULL), 0);
	t_join(f);
	t_join(g);
	return self;
}

static void names_ids_self(void **state)
{
	corio_loop *loop = t_loop();
	corio_fiber *f;
	void *res;

	(void)state;
	assert_null(corio_self());
	assert_int_equal(corio_spawn(&f, loop, name_body, NULL, NULL), 0);
	assert_int_equal(corio_loop_run(loop), 0);
	/* corio_self() inside was the handle spawn returned. */
	assert_int_equal(corio_join(f, &res), 0);
	assert_ptr_equal(res, f);
	assert_null(corio_self());
	corio_loop_destroy(loop);
}

/* ------------------------------------------------------- fiber-local data */

static void *data_child(void *arg)
{
	assert_null(corio_fiber_data());
	assert_int_equal(corio_fiber_set_data(arg), 0);
	t_turns(2); /* others set theirs meanwhile */
	assert_ptr_equal(corio_fiber_data(), arg);
	return NULL;
}

static void *data_body(void *arg)
{
	int x[3];
	corio_fiber *f[3];

	(void)arg;
	for (int i = 0; i < 3; i++)
		f[i] = t_spawn(data_child, &x[i]);
	assert_null(corio_fiber_data());
	for (int i = 0; i < 3; i++)
		t_join(f[i]);
	assert_null(corio_fiber_data());
	return NULL;
}

static void fiber_data(void **state)
{
	(void)state;
	t_run(data_body, NULL);
	assert_null(corio_fiber_data());
	assert_int_equal(corio_fiber_set_data(&state), -EPERM);
}

/* --------------------------------------------------------- spawn errors */

static corio_loop *other_loop;

static void *other_thread(void *arg)
{
	corio_fiber *f = NULL;

	(void)arg;
	assert_int_equal(corio_spawn(&f, NULL, ret_arg_plus_one, NULL, NULL), -EINVAL);
	assert_int_equal(corio_spawn(&f, other_loop, ret_arg_plus_one, NULL, NULL), -EPERM);
	assert_int_equal(corio_go(ret_arg_plus_one, NULL), -EINVAL);
	assert_null(f);
	return NULL;
}

static void spawn_errors(void **state)
{
	pthread_t t;

	(void)state;
	/* No loop on this thread. */
	assert_int_equal(corio_spawn(NULL, NULL, ret_arg_plus_one, NULL, NULL), -EINVAL);
	other_loop = t_loop();
	assert_int_equal(corio_spawn(NULL, other_loop, NULL, NULL, NULL), -EINVAL);
	/* Another thread's loop. */
	assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	corio_loop_destroy(other_loop);
}

/* ------------------------------------------------------- stacks */

static void *big_frame(void *arg)
{
	size_t n = (size_t)(uintptr_t)arg;
	volatile char buf[n];

	for (size_t i = 0; i < n; i += 512)
		buf[i] = (char)i;
	t_turns(1);
	for (size_t i = 0; i < n; i += 512)
		assert_int_equal(buf[i], (char)i);
	return NULL;
}

static void *stack_body(void *arg)
{
	struct corio_fiber_opts o = {.stack_size = 1024 * 1024};
	corio_fiber *f;

	(void)arg;
	/* A 1 MiB stack holds a 768 KiB frame. */
	assert_int_equal(corio_spawn(&f, NULL, big_frame, (void *)(uintptr_t)(768 * 1024), &o), 0);
	t_join(f);
	/* The default (64 KiB) holds 32 KiB; a tiny request is rounded up. */
	t_join(t_spawn(big_frame, (void *)(uintptr_t)(32 * 1024)));
	o.stack_size = 1;
	assert_int_equal(corio_spawn(&f, NULL, big_frame, (void *)(uintptr_t)4096, &o), 0);
	t_join(f);
	/* Sizes that cannot be mapped (or that would wrap around when
	 * rounded up to pages) are refused, not truncated. */
	f = NULL;
	o.stack_size = SIZE_MAX;
	assert_int_equal(corio_spawn(&f, NULL, big_frame, NULL, &o), -ENOMEM);
	o.stack_size = SIZE_MAX - 4095;
	assert_int_equal(corio_spawn(&f, NULL, big_frame, NULL, &o), -ENOMEM);
	o.stack_size = SIZE_MAX / 2;
	assert_int_equal(corio_spawn(&f, NULL, big_frame, NULL, &o), -ENOMEM);
	assert_null(f);
	/* Still fine afterwards. */
	t_join(t_spawn(big_frame, (void *)(uintptr_t)1024));
	return NULL;
}

static void stack_sizes(void **state)
{
	(void)state;
	t_run(stack_body, NULL);
}

/* Spawning and ending many fibers reuses stacks; a reused stack is clean
 * (AddressSanitizer finds no stale poisoning from the previous owner). */
static void *churn_child(void *arg)
{
	char buf[512];

	memset(buf, (int)(intptr_t)arg, sizeof(buf));
	if ((intptr_t)arg % 2)
		t_turns(1);
	return (void *)(intptr_t)buf[17];
}

static void *churn_body(void *arg)
{
	corio_fiber *f[16];

	(void)arg;
	for (int round = 0; round < 200; round++) {
		for (int i = 0; i < 16; i++)
			f[i] = t_spawn(churn_child, (void *)(intptr_t)(round + i));
		for (int i = 0; i < 16; i++)
			assert_int_equal((intptr_t)t_join(f[i]), (char)(round + i));
	}
	return NULL;
}

static void stack_reuse(void **state)
{
	struct corio_loop_opts o = {.stack_cache = 4};
	struct corio_loop_stats st;
	corio_loop *loop = t_loop_opts(&o);
	corio_fiber *f;

	(void)state;
	assert_int_equal(corio_spawn(&f, loop, churn_body, NULL, NULL), 0);
	assert_int_equal(corio_loop_run(loop), 0);
	t_join(f);
	corio_loop_stats(loop, &st, sizeof(st));
	assert_int_equal(st.fibers_spawned, 1 + 200 * 16);
	corio_loop_destroy(loop);
}

/* ------------------------------------------------ spawn without a handle */

/*
 * corio_spawn(NULL, loop, ...) makes a detached fiber: a million of them
 * (a hundred thousand under valgrind), spawned in batches, leave nothing
 * behind. Checked on the loop's own accounting: no fiber left unjoined, no
 * fiber alive but the spawner, and the stacks stay at what one batch needs.
 */
enum { BATCH = 50 }; /* under the stack cache (64): no madvise per fiber */
static long nohandle_ran;

static void *nohandle_child(void *arg)
{
	(void)arg;
	nohandle_ran++;
	return NULL;
}

static void *nohandle_body(void *arg)
{
	long total = *(long *)arg;
	struct corio_loop_stats st;
	uint64_t stacks_after_first = 0;

	for (long spawned = 0; spawned < total;) {
		for (int i = 0; i < BATCH; i++, spawned++)
			assert_int_equal(corio_spawn(NULL, NULL, nohandle_child, NULL, NULL), 0);
		while (nohandle_ran < spawned)
			corio_yield();
		corio_loop_stats(corio_loop_current(), &st, sizeof(st));
		assert_int_equal(st.fibers_live, 1); /* this one */
		assert_int_equal(st.fibers_unjoined, 0);
		if (!stacks_after_first)
			stacks_after_first = st.stacks;
		assert_int_equal(st.stacks, stacks_after_first);
	}
	/* One batch's stacks, rounded up to whole slabs of them. */
	assert_true(stacks_after_first >= BATCH + 1 && stacks_after_first <= BATCH + 1 + 64);
	return NULL;
}

static void spawn_without_handle(void **state)
{
	long total = t_under_valgrind() ? 100000 : 1000000;
	corio_loop *loop = t_loop();
	struct corio_loop_stats st;
	corio_fiber *f;

	(void)state;
	nohandle_ran = 0;
	assert_int_equal(corio_spawn(&f, loop, nohandle_body, &total, NULL), 0);
	assert_int_equal(corio_loop_run(loop), 0);
	t_join(f);
	assert_int_equal(nohandle_ran, total);
	corio_loop_stats(loop, &st, sizeof(st));
	assert_int_equal(st.fibers_spawned, (uint64_t)total + 1);
	assert_int_equal(st.fibers_live, 0);
	assert_int_equal(st.fibers_unjoined, 0);
	corio_loop_destroy(loop);
}

/* An ended fiber with a handle is counted until it is joined. */
static void *unjoined_body(void *arg)
{
	struct corio_loop_stats st;
	corio_fiber *f = t_spawn(ret_arg_plus_one, arg);

	t_turns(2);
	corio_loop_stats(corio_loop_current(), &st, sizeof(st));
	assert_int_equal(st.fibers_live, 1);
	assert_int_equal(st.fibers_unjoined, 1);
	t_join(f);
	corio_loop_stats(corio_loop_current(), &st, sizeof(st));
	assert_int_equal(st.fibers_unjoined, 0);
	f = t_spawn(ret_arg_plus_one, arg);
	t_turns(2);
	assert_int_equal(corio_detach(f), 0);
	corio_loop_stats(corio_loop_current(), &st, sizeof(st));
	assert_int_equal(st.fibers_unjoined, 0);
	return NULL;
}

static void unjoined_counted(void **state)
{
	(void)state;
	t_run(unjoined_body, NULL);
}

/* ------------------------------------------- calls made outside a fiber */

static void outside_checks(void)
{
	char buf[4];
	struct iovec iov = {buf, sizeof(buf)};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	struct statx stx;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int64_t dl = corio_now() + CORIO_SEC;

	assert_int_equal(corio_nop(), -EPERM);
	assert_int_equal(corio_nop_until(dl), -EPERM);
	assert_int_equal(corio_read(0, buf, 1, -1), -EPERM);
	assert_int_equal(corio_read_until(0, buf, 1, -1, dl), -EPERM);
	assert_int_equal(corio_write(1, buf, 1, -1), -EPERM);
	assert_int_equal(corio_write_until(1, buf, 1, -1, dl), -EPERM);
	assert_int_equal(corio_readv(0, &iov, 1, -1), -EPERM);
	assert_int_equal(corio_readv_until(0, &iov, 1, -1, dl), -EPERM);
	assert_int_equal(corio_writev(1, &iov, 1, -1), -EPERM);
	assert_int_equal(corio_writev_until(1, &iov, 1, -1, dl), -EPERM);
	assert_int_equal(corio_fsync(1), -EPERM);
	assert_int_equal(corio_fsync_until(1, dl), -EPERM);
	assert_int_equal(corio_fdatasync(1), -EPERM);
	assert_int_equal(corio_fdatasync_until(1, dl), -EPERM);
	assert_int_equal(corio_openat(AT_FDCWD, "/", O_RDONLY, 0), -EPERM);
	assert_int_equal(corio_openat_until(AT_FDCWD, "/", O_RDONLY, 0, dl), -EPERM);
	assert_int_equal(corio_close(-1), -EPERM);
	assert_int_equal(corio_close_until(-1, dl), -EPERM);
	assert_int_equal(corio_statx(AT_FDCWD, "/", 0, STATX_BASIC_STATS, &stx), -EPERM);
	assert_int_equal(corio_statx_until(AT_FDCWD, "/", 0, STATX_BASIC_STATS, &stx, dl), -EPERM);
	assert_int_equal(corio_fallocate(-1, 0, 0, 1), -EPERM);
	assert_int_equal(corio_fallocate_until(-1, 0, 0, 1, dl), -EPERM);
	assert_int_equal(corio_unlinkat(AT_FDCWD, "/nonexistent-corio", 0), -EPERM);
	assert_int_equal(corio_unlinkat_until(AT_FDCWD, "/nonexistent-corio", 0, dl), -EPERM);
	assert_int_equal(corio_renameat(AT_FDCWD, "/a-corio", AT_FDCWD, "/b-corio", 0), -EPERM);
	assert_int_equal(corio_renameat_until(AT_FDCWD, "/a-corio", AT_FDCWD, "/b-corio", 0, dl),
			 -EPERM);
	assert_int_equal(corio_mkdirat(AT_FDCWD, "/nonexistent-corio", 0700), -EPERM);
	assert_int_equal(corio_mkdirat_until(AT_FDCWD, "/nonexistent-corio", 0700, dl), -EPERM);
	assert_int_equal(corio_socket(AF_INET, SOCK_STREAM, 0), -EPERM);
	assert_int_equal(corio_socket_until(AF_INET, SOCK_STREAM, 0, dl), -EPERM);
	assert_int_equal(corio_accept(-1, (struct sockaddr *)&ss, &sl, 0), -EPERM);
	assert_int_equal(corio_accept_until(-1, (struct sockaddr *)&ss, &sl, 0, dl), -EPERM);
	assert_int_equal(corio_connect(-1, (struct sockaddr *)&ss, sl), -EPERM);
	assert_int_equal(corio_connect_until(-1, (struct sockaddr *)&ss, sl, dl), -EPERM);
	assert_int_equal(corio_recv(-1, buf, 1, 0), -EPERM);
	assert_int_equal(corio_recv_until(-1, buf, 1, 0, dl), -EPERM);
	assert_int_equal(corio_send(-1, buf, 1, 0), -EPERM);
	assert_int_equal(corio_send_until(-1, buf, 1, 0, dl), -EPERM);
	assert_int_equal(corio_recvmsg(-1, &msg, 0), -EPERM);
	assert_int_equal(corio_recvmsg_until(-1, &msg, 0, dl), -EPERM);
	assert_int_equal(corio_sendmsg(-1, &msg, 0), -EPERM);
	assert_int_equal(corio_sendmsg_until(-1, &msg, 0, dl), -EPERM);
	assert_int_equal(corio_shutdown(-1, SHUT_RDWR), -EPERM);
	assert_int_equal(corio_shutdown_until(-1, SHUT_RDWR, dl), -EPERM);
	assert_int_equal(corio_poll(0, POLLIN), -EPERM);
	assert_int_equal(corio_poll_until(0, POLLIN, dl), -EPERM);
	assert_int_equal(corio_sleep(1), -EPERM);
	assert_int_equal(corio_sleep_until(dl), -EPERM);
	assert_int_equal(corio_yield(), -EPERM);
	assert_int_equal(corio_fiber_set_data(buf), -EPERM);
	assert_null(corio_fiber_data());
	assert_null(corio_self());
}

static void calls_outside_fiber(void **state)
{
	corio_loop *loop;

	(void)state;
	/* Without any loop on the thread, and on the loop's own stack. */
	outside_checks();
	loop = t_loop();
	outside_checks();
	corio_loop_destroy(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(spawn_join_result),
		cmocka_unit_test(spawn_without_handle),
		cmocka_unit_test(unjoined_counted),
		cmocka_unit_test(join_waits_for_end),
		cmocka_unit_test(join_outside_after_end),
		cmocka_unit_test(detach_runs_to_end),
		cmocka_unit_test(detach_self),
		cmocka_unit_test(join_errors),
		cmocka_unit_test(join_until_timeout),
		cmocka_unit_test(yield_fifo),
		cmocka_unit_test(yield_no_starvation),
		cmocka_unit_test(names_ids_self),
		cmocka_unit_test(fiber_data),
		cmocka_unit_test(spawn_errors),
		cmocka_unit_test(stack_sizes),
		cmocka_unit_test(stack_reuse),
		cmocka_unit_test(calls_outside_fiber),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
