/*
 * pingpong_spin: cross-core round trip through shared memory, both threads
 * busy-polling. The floor for any cross-core handoff: one cache line moving
 * to the other core and one moving back.
 *
 * A (pinned to CPU_A) stores round i into `ping` and spins until `pong`
 * reads i; B (pinned to CPU_B) spins until `ping` reads i and stores i into
 * `pong`. The two words sit on separate cache lines. Stores are release and
 * loads acquire (the pairing a message queue needs), or all seq_cst with -s.
 * Round trips are timed in batches of BATCH (a clock read costs about as
 * much as the thing measured); the output is the distribution of the batch
 * averages, after a warm-up batch set.
 *
 * On a machine where the two CPUs are not both free (a shared VM) a spinning
 * thread may wait for its partner to be scheduled; the p50 is robust to that,
 * the max is not. Both threads spin, so keep runs short.
 *
 * Usage: pingpong_spin [-n ROUNDS=2000000] [-a CPU_A=0] [-b CPU_B=1] [-s]
 * Output: rtt_p50_ns=... rtt_p99_ns=... rtt_min_ns=... rounds=... order=... cpus=A,B
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define BATCH 1000

static _Alignas(128) _Atomic uint64_t ping;
static _Alignas(128) _Atomic uint64_t pong;
static long nbatches;
static int seqcst;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

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

/* Wait until *w == v, then store v into *out. */
static inline void wait_then_store(_Atomic uint64_t *w, _Atomic uint64_t *out, uint64_t v)
{
	if (seqcst) {
		while (atomic_load_explicit(w, memory_order_seq_cst) != v)
			cpu_relax();
		atomic_store_explicit(out, v, memory_order_seq_cst);
	} else {
		while (atomic_load_explicit(w, memory_order_acquire) != v)
			cpu_relax();
		atomic_store_explicit(out, v, memory_order_release);
	}
}

static inline void store_then_wait(_Atomic uint64_t *out, _Atomic uint64_t *w, uint64_t v)
{
	if (seqcst) {
		atomic_store_explicit(out, v, memory_order_seq_cst);
		while (atomic_load_explicit(w, memory_order_seq_cst) != v)
			cpu_relax();
	} else {
		atomic_store_explicit(out, v, memory_order_release);
		while (atomic_load_explicit(w, memory_order_acquire) != v)
			cpu_relax();
	}
}

static void *side_b(void *arg)
{
	uint64_t total = (uint64_t)nbatches * BATCH;

	if (pin(*(int *)arg))
		fprintf(stderr, "pingpong_spin: cannot pin B\n");
	for (uint64_t i = 1; i <= total; i++)
		wait_then_store(&ping, &pong, i);
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
	long rounds = 2000000, warm;
	uint64_t *avg, i = 0;
	pthread_t tb;

	while ((opt = getopt(argc, argv, "n:a:b:s")) != -1) {
		switch (opt) {
		case 'n': rounds = atol(optarg); break;
		case 'a': cpu_a = atoi(optarg); break;
		case 'b': cpu_b = atoi(optarg); break;
		case 's': seqcst = 1; break;
		default:
			fprintf(stderr, "usage: %s [-n ROUNDS] [-a CPU_A] [-b CPU_B] [-s]\n", argv[0]);
			return 2;
		}
	}
	if (rounds < BATCH)
		rounds = BATCH;
	warm = rounds / BATCH / 10 + 1;
	nbatches = rounds / BATCH + warm;
	alarm(60); /* default action ends a run whose partner never answers */
	avg = malloc((size_t)nbatches * sizeof(*avg));
	if (!avg)
		return 1;
	if (pin(cpu_a)) {
		fprintf(stderr, "pingpong_spin: cannot pin to CPU %d\n", cpu_a);
		return 1;
	}
	if (pthread_create(&tb, NULL, side_b, &cpu_b)) {
		perror("pthread_create");
		return 1;
	}
	for (long b = 0; b < nbatches; b++) {
		uint64_t t0 = now_ns();

		for (int k = 0; k < BATCH; k++)
			store_then_wait(&ping, &pong, ++i);
		avg[b] = (now_ns() - t0) / BATCH;
	}
	pthread_join(tb, NULL);
	nbatches -= warm;
	qsort(avg + warm, (size_t)nbatches, sizeof(*avg), cmp_u64);
	printf("rtt_p50_ns=%llu rtt_p99_ns=%llu rtt_min_ns=%llu rounds=%ld order=%s cpus=%d,%d\n",
	       (unsigned long long)avg[warm + nbatches / 2],
	       (unsigned long long)avg[warm + nbatches * 99 / 100], (unsigned long long)avg[warm],
	       nbatches * (long)BATCH, seqcst ? "seq_cst" : "acq_rel", cpu_a, cpu_b);
	free(avg);
	return 0;
}
