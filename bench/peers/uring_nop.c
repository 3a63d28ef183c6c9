/*
 * Peer for bench/nop.c: the same no-op workload written directly against
 * liburing, as fast as it can honestly be made while doing the same work
 * per operation (one SQE, one CQE, the CQE's user_data consumed).
 *
 *   peer_uring_nop [total] [depth]
 *
 * The ring is set up like corio's loop does it: 256 SQ entries, a CQ of
 * 8 x 256, SINGLE_ISSUER | DEFER_TASKRUN | TASKRUN_FLAG | SUBMIT_ALL, the
 * ring fd registered. @depth nops stay in flight; each round submits every
 * prepared SQE and waits for at least one completion in one
 * io_uring_submit_and_wait(), reaps every CQE there is in one batch
 * (for_each_cqe + one cq_advance) and prepares one new nop per completion.
 * Figure: operations per second (higher is better).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <liburing.h>
#include <string.h>

#include "../bench.h"

#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif

static void queue_nops(struct io_uring *ring, unsigned n, uint64_t *started)
{
	for (unsigned i = 0; i < n; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data64(sqe, ++*started);
	}
}

static void run(struct io_uring *ring, uint64_t total, unsigned depth)
{
	uint64_t started = 0, done = 0, sum = 0;

	queue_nops(ring, depth < total ? depth : (unsigned)total, &started);
	while (done < total) {
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		int ret = io_uring_submit_and_wait(ring, 1);

		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
			fprintf(stderr, "peer_uring_nop: submit: %s\n", strerror(-ret));
			exit(1);
		}
		io_uring_for_each_cqe(ring, head, cqe) {
			sum += cqe->user_data;
			n++;
		}
		io_uring_cq_advance(ring, n);
		done += n;
		if (total - started < n)
			n = (unsigned)(total - started);
		queue_nops(ring, n, &started);
	}
	bench_keep(sum);
}

int main(int argc, char **argv)
{
	uint64_t total = (uint64_t)bench_arg(argc, argv, 1, 4000000);
	unsigned depth = (unsigned)bench_arg(argc, argv, 2, 128);
	struct io_uring_params p;
	struct io_uring ring;
	int64_t t0, t1;
	int ret;

	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
		  IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_CQSIZE;
	p.cq_entries = 8 * 256;
	ret = io_uring_queue_init_params(256, &ring, &p);
	if (ret < 0) {
		fprintf(stderr, "peer_uring_nop: io_uring_queue_init: %s\n", strerror(-ret));
		return 1;
	}
	if (depth > 256) {
		fprintf(stderr, "peer_uring_nop: depth > 256\n");
		return 2;
	}
	io_uring_register_ring_fd(&ring);
	run(&ring, total / 10, depth); /* warm-up */
	t0 = bench_now();
	run(&ring, total, depth);
	t1 = bench_now();
	bench_report("nop", "liburing", (double)total * 1e9 / (double)(t1 - t0), "ops/s");
	io_uring_queue_exit(&ring);
	return 0;
}
