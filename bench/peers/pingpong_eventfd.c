/*
 * pingpong_eventfd: cross-thread wakeup round trip through two eventfds.
 *
 * Thread A (pinned to CPU_A) writes ping and blocks reading pong; thread B
 * (pinned to CPU_B) blocks reading ping and writes pong. Each round trip is
 * timed on A; the output is the distribution over ROUNDS round trips, after
 * a warm-up of ROUNDS/10. This is the cost of a blocking cross-core wakeup
 * in both directions: the floor for any design that parks an idle thread in
 * the kernel and wakes it from another core.
 *
 * Usage: pingpong_eventfd [-n ROUNDS=100000] [-a CPU_A=0] [-b CPU_B=1]
 * Output: rtt_p50_ns=... rtt_p99_ns=... rtt_min_ns=... rounds=... cpus=A,B
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static int ping_fd, pong_fd;
static long rounds = 100000, warmup;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void must(int ok, const char *what)
{
	if (!ok) {
		perror(what);
		exit(1);
	}
}

static void *side_b(void *arg)
{
	uint64_t v;

	if (pin(*(int *)arg))
		fprintf(stderr, "pingpong_eventfd: cannot pin B\n");
	for (long i = 0; i < warmup + rounds; i++) {
		must(read(ping_fd, &v, 8) == 8, "read ping");
		must(write(pong_fd, &v, 8) == 8, "write pong");
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int opt, cpu_a = 0, cpu_b = 1;
	uint64_t *rtt, v = 1;
	pthread_t tb;

	while ((opt = getopt(argc, argv, "n:a:b:")) != -1) {
		switch (opt) {
		case 'n': rounds = atol(optarg); break;
		case 'a': cpu_a = atoi(optarg); break;
		case 'b': cpu_b = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-n ROUNDS] [-a CPU_A] [-b CPU_B]\n", argv[0]);
			return 2;
		}
	}
	if (rounds < 1)
		return 2;
	warmup = rounds / 10;
	alarm(60); /* default action ends a run whose partner never answers */
	rtt = malloc((size_t)rounds * sizeof(*rtt));
	ping_fd = eventfd(0, EFD_CLOEXEC);
	pong_fd = eventfd(0, EFD_CLOEXEC);
	must(rtt && ping_fd >= 0 && pong_fd >= 0, "setup");
	if (pin(cpu_a)) {
		fprintf(stderr, "pingpong_eventfd: cannot pin to CPU %d\n", cpu_a);
		return 1;
	}
	must(pthread_create(&tb, NULL, side_b, &cpu_b) == 0, "pthread_create");
	for (long i = 0; i < warmup + rounds; i++) {
		uint64_t t0 = now_ns();

		must(write(ping_fd, &v, 8) == 8, "write ping");
		must(read(pong_fd, &v, 8) == 8, "read pong");
		if (i >= warmup)
			rtt[i - warmup] = now_ns() - t0;
	}
	pthread_join(tb, NULL);
	qsort(rtt, (size_t)rounds, sizeof(*rtt), cmp_u64);
	printf("rtt_p50_ns=%llu rtt_p99_ns=%llu rtt_min_ns=%llu rounds=%ld cpus=%d,%d\n",
	       (unsigned long long)rtt[rounds / 2], (unsigned long long)rtt[rounds * 99 / 100],
	       (unsigned long long)rtt[0], rounds, cpu_a, cpu_b);
	free(rtt);
	return 0;
}
