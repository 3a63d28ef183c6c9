/*
 * Timers: the loop's pairing heap (white-box: arm/disarm in random orders,
 * 100,000 random deadlines pop sorted, equal deadlines FIFO), sleeping
 * fibers woken in deadline order (100,000 of them on one loop, within
 * vm.max_map_count), and sleep's own contract.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "timer.h"
#include "util.h"

/* A small deterministic generator (xorshift64*). */
static uint64_t rng_state = 88172645463325252ULL;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ULL;
}

/* ------------------------------------------------------ the heap itself */

struct node {
	struct corio__timer t;
	uint32_t idx;
	uint32_t order; /* arming order, for the FIFO check */
};

/* Pop everything; check (deadline, arming order) never decreases. Returns
 * how many came out. */
static size_t drain_sorted(struct corio__timers *h)
{
	struct corio__timer *t;
	int64_t last_dl = INT64_MIN;
	uint32_t last_order = 0;
	size_t n = 0;

	while ((t = corio__timer_first(h))) {
		struct node *nd = corio__container_of(t, struct node, t);

		assert_true(t->armed);
		assert_true(t->deadline >= last_dl);
		if (t->deadline == last_dl)
			assert_true(nd->order > last_order); /* ties: FIFO */
		last_dl = t->deadline;
		last_order = nd->order;
		corio__timer_disarm(h, t);
		assert_false(t->armed);
		n++;
	}
	assert_int_equal(h->count, 0);
	return n;
}

static void heap_sorted_100k(void **state)
{
	enum { N = 100000 };
	struct corio__timers h = {0};
	struct node *nodes = calloc(N, sizeof(*nodes));

	(void)state;
	assert_non_null(nodes);
	assert_null(corio__timer_first(&h));
	for (uint32_t i = 0; i < N; i++) {
		nodes[i].idx = i;
		nodes[i].order = i + 1;
		/* A narrow range: many equal deadlines. */
		corio__timer_arm(&h, &nodes[i].t, (int64_t)(rnd() % 5000));
	}
	assert_int_equal(h.count, N);
	assert_int_equal(drain_sorted(&h), N);
	free(nodes);
}

static void heap_equal_deadlines_fifo(void **state)
{
	enum { N = 1000 };
	struct corio__timers h = {0};
	static struct node nodes[N];
	struct corio__timer *t;

	(void)state;
	for (uint32_t i = 0; i < N; i++) {
		nodes[i].order = i + 1;
		corio__timer_arm(&h, &nodes[i].t, 42);
	}
	/* Remove some from the middle: the rest keep their order. */
	for (uint32_t i = 0; i < N; i += 7)
		corio__timer_disarm(&h, &nodes[i].t);
	for (uint32_t i = 0; i < N; i++) {
		if (i % 7 == 0)
			continue;
		t = corio__timer_first(&h);
		assert_ptr_equal(t, &nodes[i].t);
		corio__timer_disarm(&h, t);
	}
	assert_null(corio__timer_first(&h));
	/* Re-arming moves a timer behind the others of its deadline. */
	for (uint32_t i = 0; i < 3; i++)
		corio__timer_arm(&h, &nodes[i].t, 7);
	corio__timer_arm(&h, &nodes[0].t, 7);
	assert_ptr_equal(corio__timer_first(&h), &nodes[1].t);
	corio__timer_disarm(&h, &nodes[1].t);
	assert_ptr_equal(corio__timer_first(&h), &nodes[2].t);
	corio__timer_disarm(&h, &nodes[2].t);
	assert_ptr_equal(corio__timer_first(&h), &nodes[0].t);
	corio__timer_disarm(&h, &nodes[0].t);
	assert_int_equal(h.count, 0);
}

/* Random interleavings of arm, re-arm, disarm of arbitrary nodes and pops,
 * checked against a plain array model. */
static void heap_random_ops(void **state)
{
	enum { N = 4000, STEPS = 200000 };
	struct corio__timers h = {0};
	struct node *nodes = calloc(N, sizeof(*nodes));
	uint32_t order = 0;
	size_t armed = 0;

	(void)state;
	assert_non_null(nodes);
	for (uint32_t i = 0; i < N; i++)
		nodes[i].idx = i;
	for (int step = 0; step < STEPS; step++) {
		struct node *nd = &nodes[rnd() % N];
		unsigned what = (unsigned)(rnd() % 8);

		if (what < 4) {
			/* (re-)arm */
			if (!nd->t.armed)
				armed++;
			nd->order = ++order;
			corio__timer_arm(&h, &nd->t, (int64_t)(rnd() % 1000));
		} else if (what < 6) {
			/* disarm an arbitrary node (a no-op when not armed) */
			if (nd->t.armed)
				armed--;
			corio__timer_disarm(&h, &nd->t);
		} else if (what == 6) {
			/* pop the minimum, and check it is the model's minimum */
			struct corio__timer *t = corio__timer_first(&h);
			struct node *best = NULL;

			for (uint32_t i = 0; i < N; i++) {
				struct node *c = &nodes[i];

				if (!c->t.armed)
					continue;
				if (!best || c->t.deadline < best->t.deadline ||
				    (c->t.deadline == best->t.deadline && c->order < best->order))
					best = c;
			}
			if (!best) {
				assert_null(t);
				continue;
			}
			assert_ptr_equal(t, &best->t);
			corio__timer_disarm(&h, t);
			armed--;
		} else if (step % 64 == 0) {
			assert_int_equal(h.count, armed);
		}
	}
	assert_int_equal(h.count, armed);
	assert_int_equal(drain_sorted(&h), armed);
	for (uint32_t i = 0; i < N; i++)
		assert_false(nodes[i].t.armed);
	free(nodes);
}

/* ------------------------------------------------------ sleeping fibers */

struct sleeper {
	int64_t deadline;
	uint32_t idx;
};

static uint32_t *woke;
static size_t nwoke;
static int sleep_errors;

static void *sleeper_fn(void *arg)
{
	struct sleeper *s = arg;

	if (corio_sleep_until(s->deadline) != 0)
		sleep_errors++;
	/* Never early. */
	if (corio_now() < s->deadline)
		sleep_errors++;
	woke[nwoke++] = s->idx;
	return NULL;
}

/* Spawn n detached sleepers with the given deadlines from the loop's own
 * stack, run the loop, check the wake order is the deadline order (ties in
 * spawn order, since every fiber parks in the same turn). */
static void run_sleepers(corio_loop *loop, struct sleeper *s, size_t n, size_t stack)
{
	struct corio_fiber_opts o = {.detached = true, .stack_size = stack};

	nwoke = 0;
	sleep_errors = 0;
	woke = calloc(n, sizeof(*woke));
	assert_non_null(woke);
	for (size_t i = 0; i < n; i++) {
		s[i].idx = (uint32_t)i;
		assert_int_equal(corio_spawn(NULL, loop, sleeper_fn, &s[i], &o), 0);
	}
	assert_int_equal(corio_loop_run(loop), 0);
	assert_int_equal(sleep_errors, 0);
	assert_int_equal(nwoke, n);
	for (size_t i = 1; i < n; i++) {
		const struct sleeper *a = &s[woke[i - 1]], *b = &s[woke[i]];

		assert_true(a->deadline <= b->deadline);
		if (a->deadline == b->deadline)
			assert_true(a->idx < b->idx);
	}
	free(woke);
}

static void sleep_order(void **state)
{
	enum { N = 500 };
	static struct sleeper s[N];
	corio_loop *loop = t_loop();
	int64_t base = corio_now() + 2 * CORIO_MSEC;

	(void)state;
	for (int i = 0; i < N; i++)
		s[i].deadline = base + (int64_t)(rnd() % 50) * 20 * CORIO_USEC;
	/* A few in the past: they wake first, in spawn order. */
	s[3].deadline = s[7].deadline = 1;
	run_sleepers(loop, s, N, 0);
	corio_loop_destroy(loop);
}

static bool guard_markers_supported(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	void *p = mmap(NULL, 2 * (size_t)pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	bool ok;

	assert_true(p != MAP_FAILED);
	ok = madvise(p, (size_t)pg, 102 /* MADV_GUARD_INSTALL */) == 0;
	munmap(p, 2 * (size_t)pg);
	return ok;
}

static long count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	long n = 0;
	int c;

	assert_non_null(f);
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static long maps_while_sleeping;

static void *map_counter(void *arg)
{
	/* Runs in the first batch, when every sleeper's stack is mapped. */
	(void)arg;
	maps_while_sleeping = count_maps();
	return NULL;
}

/* ThreadSanitizer keeps a context per fiber, which makes 100,000 of them
 * take most of a minute; the scale is the other builds' to check. */
#ifdef CORIO_TSAN
#define SLEEPERS 10000
#else
#define SLEEPERS 100000
#endif

static void sleepers_100k(void **state)
{
	enum { N = SLEEPERS };
	struct sleeper *s = calloc(N, sizeof(*s));
	struct corio_loop_stats st;
	corio_loop *loop;
	int64_t base;
	long max_maps = read_long("/proc/sys/vm/max_map_count");

	(void)state;
	if (!guard_markers_supported()) {
		/* With mprotect guards each stack costs two mappings: 100,000
		 * fibers cannot fit in the default vm.max_map_count. */
		fprintf(stderr, "no MADV_GUARD_INSTALL (Linux < 6.13): skipping\n");
		free(s);
		skip();
	}
	assert_non_null(s);
	loop = t_loop();
	/* Deadlines a little ahead, many ties, in random spawn order. */
	base = corio_now() + 20 * CORIO_MSEC;
	for (int i = 0; i < N; i++)
		s[i].deadline = base + (int64_t)(rnd() % 20000) * CORIO_USEC / 4;
	assert_int_equal(corio_spawn(NULL, loop, map_counter, NULL,
				     &(struct corio_fiber_opts){.detached = true}),
			 0);
	maps_while_sleeping = 0;
	/* The smallest stacks: what a program with this many fibers picks,
	 * and the lightest on memory. Every stack still has its own guard,
	 * so mprotect guards would still need two mappings per fiber. */
	run_sleepers(loop, s, N, 16384);
	corio_loop_stats(loop, &st, sizeof(st));
	assert_int_equal(st.timers_fired, N);
	assert_int_equal(st.fibers_spawned, N + 1);
	fprintf(stderr, "  %ld mappings with %d fibers parked (vm.max_map_count %ld)\n",
		maps_while_sleeping, N, max_maps);
	assert_true(maps_while_sleeping > 0);
	if (max_maps > 0)
		assert_true(maps_while_sleeping < max_maps / 2);
	corio_loop_destroy(loop);
	free(s);
}

static void *sleep_contract_body(void *arg)
{
	int64_t t0, dl;

	(void)arg;
	assert_int_equal(corio_sleep(0), 0);
	assert_int_equal(corio_sleep(-5), 0);
	assert_int_equal(corio_sleep_until(0), 0);
	assert_int_equal(corio_sleep_until(corio_now() - CORIO_SEC), 0);
	t0 = corio_now();
	assert_int_equal(corio_sleep(2 * CORIO_MSEC), 0);
	assert_true(corio_now() - t0 >= 2 * CORIO_MSEC);
	dl = corio_now() + CORIO_MSEC;
	assert_int_equal(corio_sleep_until(dl), 0);
	assert_true(corio_now() >= dl);
	return NULL;
}

/* A sleep "forever" stays asleep (it does not wrap into the past) until
 * cancelled. */
static int forever_res;

static void *forever(void *arg)
{
	forever_res = arg ? corio_sleep_until(INT64_MAX) : corio_sleep(INT64_MAX);
	return NULL;
}

static void *forever_body(void *arg)
{
	corio_fiber *f[2];

	(void)arg;
	forever_res = 1;
	f[0] = t_spawn(forever, NULL);
	t_turns(3);
	assert_int_equal(forever_res, 1);
	assert_int_equal(corio_cancel(f[0]), 0);
	t_join(f[0]);
	assert_int_equal(forever_res, -ECANCELED);
	/* Same with an explicit deadline at the end of time. */
	forever_res = 1;
	f[1] = t_spawn(forever, (void *)1);
	t_turns(3);
	assert_int_equal(forever_res, 1);
	assert_int_equal(corio_cancel(f[1]), 0);
	t_join(f[1]);
	assert_int_equal(forever_res, -ECANCELED);
	assert_int_equal(corio_sleep_until(INT64_MIN), 0);
	return NULL;
}

static void sleep_forever(void **state)
{
	(void)state;
	t_run(forever_body, NULL);
}

static void sleep_contract(void **state)
{
	(void)state;
	t_run(sleep_contract_body, NULL);
	assert_true(corio_now() > 0);
	assert_string_equal(corio_version(), "corio 0.1.0");
}

/* -------------------------------------------------------- async timers */

static int tlog[16], tn;

static void timer_cb(corio_loop *loop, int res, unsigned flags, void *user)
{
	(void)loop;
	assert_int_equal(flags, 0);
	assert_true(res == 0 || res == -ECANCELED);
	tlog[tn++] = res == 0 ? (int)(intptr_t)user : -(int)(intptr_t)user;
}

static void async_timer_order(void **state)
{
	corio_loop *loop = t_loop();
	int64_t base = corio_now() + CORIO_MSEC;
	corio_req id[6];
	const int want[] = {6, 5, 1, 2, 4};
	int fired[6], nf = 0, cancelled = 0;

	(void)state;
	tn = 0;
	id[0] = corio_async_timer(loop, base + 300 * CORIO_USEC, timer_cb, (void *)1);
	id[1] = corio_async_timer(loop, base + 300 * CORIO_USEC, timer_cb, (void *)2);
	id[2] = corio_async_timer(loop, base + 100 * CORIO_USEC, timer_cb, (void *)3);
	id[3] = corio_async_timer(loop, base + 900 * CORIO_USEC, timer_cb, (void *)4);
	id[4] = corio_async_timer(loop, base, timer_cb, (void *)5);
	id[5] = corio_async_timer(loop, 0, timer_cb, (void *)6); /* due at once */
	for (int i = 0; i < 6; i++)
		assert_true(id[i] > 0);
	assert_int_equal(corio_async_cancel(loop, id[2]), 0);
	/* Until its callback has run, the id still names it. */
	assert_int_equal(corio_async_cancel(loop, id[2]), 0);
	/* Nothing ran inside the calls. */
	assert_int_equal(tn, 0);
	assert_int_equal(corio_loop_run(loop), 0);
	assert_int_equal(tn, 6);
	/* The cancelled one got -ECANCELED; the others fired in deadline
	 * order, ties in arming order. */
	for (int i = 0; i < 6; i++) {
		if (tlog[i] == -3)
			cancelled++;
		else
			fired[nf++] = tlog[i];
	}
	assert_int_equal(cancelled, 1);
	assert_int_equal(nf, 5);
	assert_memory_equal(fired, want, sizeof(want));
	for (int i = 0; i < 6; i++)
		assert_int_equal(corio_async_cancel(loop, id[i]), -ENOENT);
	assert_int_equal(corio_async_timer(loop, 1, NULL, NULL), -EINVAL);
	assert_int_equal(corio_async_timer(NULL, 1, timer_cb, NULL), -EINVAL);
	corio_loop_destroy(loop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(heap_sorted_100k),
		cmocka_unit_test(heap_equal_deadlines_fifo),
		cmocka_unit_test(heap_random_ops),
		cmocka_unit_test(sleep_order),
		cmocka_unit_test(sleep_contract),
		cmocka_unit_test(sleep_forever),
		cmocka_unit_test(async_timer_order),
		cmocka_unit_test(sleepers_100k),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
