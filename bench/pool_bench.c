/*
 * Messages between two loops of a pool, pinned to two CPUs.
 *
 *   pool_bench oneway   N  [poll|interrupt|working]   one-way throughput: a
 *                          fiber on loop 0 posts N messages to loop 1 as fast
 *                          as it can
 *   pool_bench roundtrip N [poll|interrupt]   a fiber on loop 0 calls loop 1
 *                          N times (corio_call of an empty function)
 *
 * The mode: poll (busy: the loops never sleep, so no message needs a wake,
 * by construction), interrupt (they sleep when idle, so every message of a
 * round trip must wake its target), or, for oneway, working: loop 1 in
 * interrupt mode with a fiber that computes (about a microsecond at a
 * time) and yields, so that the loop is busy but would sleep the moment it
 * ran out of work; whether messages to it cost a wake then depends on the
 * loop's own word, not on a mode that never sleeps. For oneway it is loop
 * 1's mode (the sender is busy anyway); for roundtrip both loops'. Prints
 * one line:
 *   bench=pool_<test>_<mode> n=N ns_per_msg=... msgs_per_sec=...
 *   syscalls_per_msg=... wakes_sent=... wakes_elided=...
 * where syscalls counts io_uring_enter / epoll_wait calls of both loops plus
 * the eventfd writes of wakes (a ring message rides on an enter), over N.
 * Then RESULT lines for bench/run.sh: name=xcore_<test>_<mode> with the
 * time per message (ns; msgs/s for oneway), and name=..._syscalls and
 * ..._elided (percent of messages that needed no wake).
 * CORIO_WAKE=eventfd forces eventfd wakes between loops (default: MSG_RING).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corio.h"

struct bench {
	corio_pool *pool;
	uint64_t n;
	int64_t *rtt; /* roundtrip: each call's time, for the median */
	uint64_t received; /* touched by loop 1 only */
	int64_t t0, t1;
	struct corio_loop_stats st[2];
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	bool working; /* loop 1 runs worker() */
	bool worker_up;
	uint64_t work_rounds, work_sink;
};

/* A flag of @b set on one thread and waited for on another. */
static void raise_flag(struct bench *b, bool *flag)
{
	pthread_mutex_lock(&b->lock);
	*flag = true;
	pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

static void wait_flag(struct bench *b, const bool *flag)
{
	pthread_mutex_lock(&b->lock);
	while (!*flag)
		pthread_cond_wait(&b->cond, &b->lock);
	pthread_mutex_unlock(&b->lock);
}

static void finish(struct bench *b)
{
	b->t1 = corio_now();
	raise_flag(b, &b->done);
}

static void on_msg(void *arg)
{
	struct bench *b = arg;

	if (++b->received == b->n)
		finish(b);
}

static void *oneway(void *arg)
{
	struct bench *b = arg;

	b->t0 = corio_now();
	for (uint64_t i = 0; i < b->n; i++)
		if (corio_post(b->pool, 1, on_msg, b, 0))
			abort();
	return NULL;
}

static void *noop(void *arg)
{
	return arg;
}

static void *roundtrip(void *arg)
{
	struct bench *b = arg;

	b->t0 = corio_now();
	for (uint64_t i = 0; i < b->n; i++) {
		int64_t t = corio_now();

		if (corio_call(b->pool, 1, noop, NULL, NULL))
			abort();
		b->rtt[i] = corio_now() - t;
	}
	finish(b);
	return NULL;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static corio_fiber_fn test_fn;

static void start(void *arg)
{
	corio_go(test_fn, arg);
}

/* On loop 1 (working mode): compute for about a microsecond, yield, until
 * every message has arrived. on_msg runs on this loop too, between turns. */
static void *worker(void *arg)
{
	struct bench *b = arg;
	uint64_t x = 88172645463325252ull;

	raise_flag(b, &b->worker_up);
	while (b->received < b->n) {
		for (int i = 0; i < 400; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
		}
		b->work_rounds++;
		corio_yield();
	}
	b->work_sink = x;
	return NULL;
}

static void start_worker(void *arg)
{
	corio_go(worker, arg);
}

/* Counters are read on each loop by a message (only its thread may). */
struct snap {
	struct bench *b;
	struct corio_loop_stats *out;
	int pending;
};

static void snap_msg(void *arg)
{
	struct snap *s = arg;
	struct bench *b = s->b;

	corio_loop_stats(corio_loop_current(), &s->out[corio_pool_index()], sizeof(*s->out));
	pthread_mutex_lock(&b->lock);
	s->pending--;
	pthread_cond_signal(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

static void snapshot(struct bench *b, struct corio_loop_stats *out)
{
	struct snap s = {b, out, 2};

	for (unsigned k = 0; k < 2; k++)
		if (corio_post(b->pool, k, snap_msg, &s, 0))
			abort();
	pthread_mutex_lock(&b->lock);
	while (s.pending)
		pthread_cond_wait(&b->cond, &b->lock);
	pthread_mutex_unlock(&b->lock);
}

int main(int argc, char **argv)
{
	static const int cpus[2] = {0, 1};
	enum corio_loop_mode modes[2] = {CORIO_MODE_INTERRUPT, CORIO_MODE_INTERRUPT};
	struct bench b = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
	struct corio_loop_stats before[2], after[2];
	const char *wake = getenv("CORIO_WAKE");
	bool eventfd_wakes = wake && !strcmp(wake, "eventfd");
	uint64_t enters = 0, sent = 0, elided = 0;
	double ns;
	int err;

	if (argc < 3) {
		fprintf(stderr, "usage: %s oneway|roundtrip N [poll|interrupt]\n", argv[0]);
		return 2;
	}
	test_fn = !strcmp(argv[1], "oneway") ? oneway : roundtrip;
	b.n = strtoull(argv[2], NULL, 10);
	if (!b.n)
		return 2;
	b.rtt = calloc(b.n, sizeof(*b.rtt));
	if (!b.rtt)
		return 1;
	if (argc > 3 && !strcmp(argv[3], "poll")) {
		modes[1] = CORIO_MODE_POLL;
		if (test_fn == roundtrip)
			modes[0] = CORIO_MODE_POLL;
	}
	b.working = argc > 3 && !strcmp(argv[3], "working") && test_fn == oneway;
	err = corio_pool_create(&b.pool, &(struct corio_pool_opts){
		.nloops = 2, .cpus = cpus, .ncpus = 2, .modes = modes});
	if (err) {
		fprintf(stderr, "pool: %s\n", strerror(-err));
		return 1;
	}
	if (b.working) {
		/* The worker runs before the first message is sent. */
		if (corio_post(b.pool, 1, start_worker, &b, 0))
			abort();
		wait_flag(&b, &b.worker_up);
	}
	snapshot(&b, before);
	if (corio_post(b.pool, 0, start, &b, 0))
		abort();
	wait_flag(&b, &b.done);
	snapshot(&b, after);
	corio_pool_destroy(b.pool);
	for (int k = 0; k < 2; k++) {
		enters += after[k].enters - before[k].enters;
		sent += after[k].wakes_sent - before[k].wakes_sent;
		elided += after[k].wakes_elided - before[k].wakes_elided;
	}
	ns = (double)(b.t1 - b.t0) / (double)b.n;
	printf("bench=pool_%s_%s wake=%s n=%llu ns_per_msg=%.1f msgs_per_sec=%.0f "
	       "syscalls_per_msg=%.4f wakes_sent=%llu wakes_elided=%llu work_rounds=%llu\n",
	       argv[1], b.working ? "working" : modes[1] == CORIO_MODE_POLL ? "poll" : "interrupt",
	       eventfd_wakes ? "eventfd" : "msg_ring", (unsigned long long)b.n, ns, 1e9 / ns,
	       (double)(enters + (eventfd_wakes ? sent : 0)) / (double)b.n,
	       (unsigned long long)sent, (unsigned long long)elided,
	       (unsigned long long)b.work_rounds);
	{
		const char *m = b.working ? "working" : modes[1] == CORIO_MODE_POLL ? "busy" : "asleep";
		const char *impl = eventfd_wakes ? "corio_eventfd" : "corio";

		if (test_fn == oneway)
			printf("RESULT name=xcore_oneway_%s impl=%s value=%.0f unit=ops/s\n", m,
			       impl, 1e9 / ns);
		else {
			qsort(b.rtt, b.n, sizeof(*b.rtt), cmp64);
			printf("rtt_p50_ns=%lld rtt_p99_ns=%lld\n", (long long)b.rtt[b.n / 2],
			       (long long)b.rtt[b.n * 99 / 100]);
			printf("RESULT name=xcore_rtt_%s impl=%s value=%lld unit=ns\n", m, impl,
			       (long long)b.rtt[b.n / 2]);
		}
		printf("RESULT name=xcore_%s_%s_syscalls impl=%s value=%.4f unit=x\n", argv[1], m,
		       impl, (double)(enters + (eventfd_wakes ? sent : 0)) / (double)b.n);
		printf("RESULT name=xcore_%s_%s_elided impl=%s value=%.2f unit=%%\n", argv[1], m, impl,
		       sent + elided ? 100.0 * (double)elided / (double)(sent + elided) : 100.0);
	}
	return 0;
}
