/*
 * Cancellation (corio_cancel) of a fiber blocked in every kind of wait,
 * before it blocks (its next blocking call, once), racing a completion in
 * the same loop turn (the data is returned or stays readable, never lost),
 * and buffer ownership: once a cancelled or timed-out call returned, the
 * kernel no longer writes into its buffer.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "blockers.h"
#include "core.h"

struct run {
	const struct blocker *b;
	int64_t deadline;
	int res;
	int after; /* a blocking call made after the cancelled one */
};

static void *blocker_fiber(void *arg)
{
	struct run *r = arg;

	r->res = r->b->block(r->deadline);
	r->b->check(r->res);
	/* The cancellation was for one call only. */
	r->after = corio_sleep(0);
	return NULL;
}

static size_t timers_armed(void)
{
	return corio_loop_current()->timers.count;
}

/* --------------------------------------------- cancel a blocked fiber */

static void *blocked_body(void *arg)
{
	(void)arg;
	fx_setup();
	for (size_t i = 0; i < nblockers; i++) {
		const struct blocker *b = &blockers[i];

		/* Without a deadline, and with one that is far away (the
		 * result is -ECANCELED, not -ETIMEDOUT, and its timer goes). */
		for (int with_dl = 0; with_dl < 2; with_dl++) {
			struct run r = {.b = b, .res = 1, .after = 1};
			corio_fiber *f;

			fprintf(stderr, "  %s%s\n", b->name, with_dl ? " (deadline)" : "");
			r.deadline = with_dl ? corio_now() + 3600 * CORIO_SEC : 0;
			f = t_spawn(blocker_fiber, &r);
			t_turns(2); /* it parks; its operation reaches the kernel */
			assert_int_equal(r.res, 1);
			assert_int_equal(corio_cancel(f), 0);
			/* An I/O call stays suspended until the kernel is done:
			 * a second request meanwhile is for that same call. (A
			 * wait on a queue ends at once; the fiber is no longer
			 * suspended, and a second request would be for its next
			 * call.) */
			if (b->io)
				assert_int_equal(corio_cancel(f), 0);
			t_join(f);
			assert_int_equal(r.res, -ECANCELED);
			assert_int_equal(r.after, 0);
			assert_int_equal(timers_armed(), 0);
		}
	}
	fx_teardown();
	return NULL;
}

static void cancel_blocked(void **state)
{
	(void)state;
	t_run(blocked_body, NULL);
}

/* ----------------------------------------- cancel before it blocks */

static void *before_body(void *arg)
{
	(void)arg;
	fx_setup();
	for (size_t i = 0; i < nblockers; i++) {
		const struct blocker *b = &blockers[i];
		struct run r = {.b = b, .res = 1, .after = 1};
		corio_fiber *f;

		fprintf(stderr, "  %s\n", b->name);
		f = t_spawn(blocker_fiber, &r);
		/* It has not run yet: its first blocking call is cancelled. */
		assert_int_equal(corio_cancel(f), 0);
		t_join(f);
		assert_int_equal(r.res, -ECANCELED);
		assert_int_equal(r.after, 0);
		assert_int_equal(timers_armed(), 0);
	}
	fx_teardown();
	return NULL;
}

static void cancel_before_block(void **state)
{
	(void)state;
	t_run(before_body, NULL);
}

static int self_res[4];

static void *self_cancel(void *arg)
{
	(void)arg;
	assert_int_equal(corio_cancel(corio_self()), 0);
	/* Non-blocking work is not affected. */
	assert_int_equal(corio_yield(), 0);
	self_res[0] = corio_nop();
	self_res[1] = corio_nop();
	assert_int_equal(corio_cancel(corio_self()), 0);
	self_res[2] = corio_sleep(1);
	self_res[3] = corio_sleep(1);
	return NULL;
}

static void *ended(void *arg)
{
	return arg;
}

static void *misc_body(void *arg)
{
	corio_fiber *f;

	(void)arg;
	t_join(t_spawn(self_cancel, NULL));
	assert_int_equal(self_res[0], -ECANCELED);
	assert_int_equal(self_res[1], 0);
	assert_int_equal(self_res[2], -ECANCELED);
	assert_int_equal(self_res[3], 0);
	/* An ended fiber cannot be cancelled. */
	f = t_spawn(ended, NULL);
	t_turns(1);
	assert_int_equal(corio_cancel(f), -EINVAL);
	t_join(f);
	assert_int_equal(corio_cancel(NULL), -EINVAL);
	return NULL;
}

static void cancel_self_and_errors(void **state)
{
	(void)state;
	t_run(misc_body, NULL);
}

/* A cancelled cond wait returns holding the mutex, also when the mutex is
 * busy at the time; a cancellation that arrives while it re-acquires the
 * mutex is kept for the next call. */
static corio_mutex cmu;
static corio_cond ccv;
static int cond_res[2];

static void *cond_waiter(void *arg)
{
	(void)arg;
	assert_int_equal(corio_mutex_lock(&cmu), 0);
	cond_res[0] = corio_cond_wait(&ccv, &cmu);
	/* Ours again. */
	assert_int_equal(corio_mutex_unlock(&cmu), 0);
	cond_res[1] = corio_sleep(1);
	return NULL;
}

static void *cond_body(void *arg)
{
	corio_fiber *f;

	(void)arg;
	corio_mutex_init(&cmu);
	corio_cond_init(&ccv);

	/* Cancelled in the wait, while the canceller holds the mutex. */
	f = t_spawn(cond_waiter, NULL);
	t_turns(1);
	assert_int_equal(corio_mutex_lock(&cmu), 0);
	assert_int_equal(corio_cancel(f), 0);
	t_turns(2);
	assert_int_equal(corio_mutex_unlock(&cmu), 0);
	t_join(f);
	assert_int_equal(cond_res[0], -ECANCELED);
	assert_int_equal(cond_res[1], 0);

	/* Signalled, then cancelled while waiting for the mutex: the wait
	 * itself succeeded; the next blocking call is cancelled. */
	f = t_spawn(cond_waiter, NULL);
	t_turns(1);
	assert_int_equal(corio_mutex_lock(&cmu), 0);
	corio_cond_signal(&ccv);
	t_turns(2); /* it wakes and parks on the mutex */
	assert_int_equal(corio_cancel(f), 0);
	t_turns(2);
	assert_int_equal(corio_mutex_unlock(&cmu), 0);
	t_join(f);
	assert_int_equal(cond_res[0], 0);
	assert_int_equal(cond_res[1], -ECANCELED);
	return NULL;
}

static void cancel_cond_mutex(void **state)
{
	(void)state;
	t_run(cond_body, NULL);
}

/* ------------------------------------------ cancellation vs completion */

enum how {
	SYNC_WRITE_THEN_CANCEL, /* data arrives before the loop polls */
	CANCEL_THEN_SYNC_WRITE,
	RING_WRITE_THEN_CANCEL, /* data arrives through the loop, same submission batch */
	CANCEL_THEN_RING_WRITE,
	DEADLINE_AND_WRITE, /* the deadline fires in the turn the data is written */
	COMPLETED_THEN_CANCEL, /* completion reaped, reader not yet resumed */
	HOW_MAX,
};

struct race {
	int rfd, wfd;
	bool sock;
	enum how how;
	int64_t deadline;
	ssize_t res;
	char data[MSGLEN];
};

static void *race_reader(void *arg)
{
	struct race *r = arg;
	char buf[64];

	memset(buf, 'Z', sizeof(buf));
	if (r->sock)
		r->res = corio_recv_until(r->rfd, buf, sizeof(buf), 0, r->deadline);
	else
		r->res = corio_read_until(r->rfd, buf, sizeof(buf), -1, r->deadline);
	if (r->res >= 0) {
		assert_int_equal(r->res, MSGLEN);
		assert_memory_equal(buf, r->data, MSGLEN);
	} else {
		for (size_t i = 0; i < sizeof(buf); i++)
			assert_int_equal(buf[i], 'Z');
	}
	return NULL;
}

static void *ring_writer(void *arg)
{
	struct race *r = arg;

	assert_int_equal(corio_write(r->wfd, r->data, MSGLEN, -1), MSGLEN);
	return NULL;
}

static void *deadline_writer(void *arg)
{
	struct race *r = arg;

	/* Armed after the reader's deadline, equal to it: fires right after
	 * it, in the same turn. */
	assert_int_equal(corio_sleep_until(r->deadline), 0);
	assert_int_equal(write(r->wfd, r->data, MSGLEN), MSGLEN);
	return NULL;
}

static int race_once(struct race *r, int iter)
{
	corio_fiber *rd, *w = NULL;
	char got[MSGLEN];
	int want_err = r->how == DEADLINE_AND_WRITE ? -ETIMEDOUT : -ECANCELED;

	snprintf(r->data, sizeof(r->data), "%015d", iter);
	r->res = 1;
	r->deadline = r->how == DEADLINE_AND_WRITE ? corio_now() + 200 * CORIO_USEC : 0;
	rd = t_spawn(race_reader, r);
	if (r->how == DEADLINE_AND_WRITE) {
		w = t_spawn(deadline_writer, r);
	} else {
		t_turns(2); /* the read is in the kernel, waiting */
		switch (r->how) {
		case SYNC_WRITE_THEN_CANCEL:
			assert_int_equal(write(r->wfd, r->data, MSGLEN), MSGLEN);
			assert_int_equal(corio_cancel(rd), 0);
			break;
		case CANCEL_THEN_SYNC_WRITE:
			assert_int_equal(corio_cancel(rd), 0);
			assert_int_equal(write(r->wfd, r->data, MSGLEN), MSGLEN);
			break;
		case RING_WRITE_THEN_CANCEL:
			/* The writer starts its write before we cancel. */
			w = t_spawn(ring_writer, r);
			t_turns(1);
			assert_int_equal(corio_cancel(rd), 0);
			break;
		case CANCEL_THEN_RING_WRITE:
			assert_int_equal(corio_cancel(rd), 0);
			w = t_spawn(ring_writer, r);
			break;
		case COMPLETED_THEN_CANCEL:
			/* We are ahead of the reader in the next batch: the
			 * completion wakes it in that turn's poll, and we
			 * cancel before it runs. */
			assert_int_equal(write(r->wfd, r->data, MSGLEN), MSGLEN);
			t_turns(1);
			assert_int_equal(corio_cancel(rd), 0);
			break;
		default:
			break;
		}
	}
	t_join(rd);
	if (w)
		t_join(w);
	if (r->res >= 0) {
		assert_int_equal(t_readable(r->rfd), 0);
		return 1;
	}
	/* Not delivered: still there, whole. */
	assert_int_equal(r->res, want_err);
	assert_int_equal(t_readable(r->rfd), MSGLEN);
	assert_int_equal(read(r->rfd, got, MSGLEN), MSGLEN);
	assert_memory_equal(got, r->data, MSGLEN);
	return 0;
}

static void *race_body(void *arg)
{
	(void)arg;
	for (int sock = 0; sock < 2; sock++) {
		for (int how = 0; how < HOW_MAX; how++) {
			struct race r = {.sock = sock, .how = how};
			int fds[2], got = 0, n = how == DEADLINE_AND_WRITE ? 30 : 100;

			if (sock)
				t_socketpair(fds);
			else
				t_pipe(fds);
			r.rfd = fds[0];
			r.wfd = fds[1];
			for (int i = 0; i < n; i++)
				got += race_once(&r, i);
			fprintf(stderr, "  %s, way %d: %d of %d delivered, %d cancelled\n",
				sock ? "socket" : "pipe", how, got, n, n - got);
			close(fds[0]);
			close(fds[1]);
		}
	}
	assert_int_equal(timers_armed(), 0);
	return NULL;
}

static void cancel_races_completion(void **state)
{
	(void)state;
	t_run(race_body, NULL);
}

/* ------------------------------------------------------------ ownership */

/*
 * The kernel must not write into a buffer once the call that owned it
 * returned. The buffer is on the fiber's stack; data is sent after the
 * call returned, the loop turns, and the buffer must still hold its old
 * contents while the socket still holds all the data.
 */
static int own_sv[2];
static corio_event own_sent;

static void *owner(void *arg)
{
	char buf[256];
	bool cancel = arg != NULL;
	ssize_t r;

	memset(buf, 'A', sizeof(buf));
	if (cancel)
		r = corio_recv(own_sv[0], buf, sizeof(buf), 0);
	else
		r = corio_recv_until(own_sv[0], buf, sizeof(buf), 0, corio_now() + CORIO_MSEC);
	assert_int_equal(r, cancel ? -ECANCELED : -ETIMEDOUT);
	/* Let the controller send, then give the kernel every chance. */
	corio_event_set(&own_sent);
	corio_event_reset(&own_sent);
	assert_int_equal(corio_event_wait(&own_sent), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(corio_nop(), 0);
	t_turns(3);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 'A');
	return NULL;
}

/* A fiber that takes over the stack of one whose recv was cancelled. */
static void *stack_heir(void *arg)
{
	char buf[4096];

	(void)arg;
	memset(buf, 'H', sizeof(buf));
	corio_event_set(&own_sent);
	t_turns(3);
	assert_int_equal(corio_nop(), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 'H');
	return NULL;
}

static void *recv_then_end(void *arg)
{
	char buf[4096];

	(void)arg;
	assert_int_equal(corio_recv(own_sv[0], buf, sizeof(buf), 0), -ECANCELED);
	return NULL;
}

static void *ownership_body(void *arg)
{
	char data[256], got[256];
	corio_fiber *f;

	(void)arg;
	t_socketpair(own_sv);
	corio_event_init(&own_sent);
	memset(data, 'B', sizeof(data));
	for (int cancel = 0; cancel < 2; cancel++) {
		f = t_spawn(owner, cancel ? (void *)1 : NULL);
		if (cancel) {
			t_turns(2);
			assert_int_equal(corio_cancel(f), 0);
		}
		assert_int_equal(corio_event_wait(&own_sent), 0);
		assert_int_equal(write(own_sv[1], data, sizeof(data)), (ssize_t)sizeof(data));
		corio_event_set(&own_sent);
		t_join(f);
		assert_int_equal(t_readable(own_sv[0]), (int)sizeof(data));
		assert_int_equal(read(own_sv[0], got, sizeof(got)), (ssize_t)sizeof(got));
		assert_memory_equal(got, data, sizeof(data));
		corio_event_reset(&own_sent);
	}

	/* The stack goes to the next fiber (the pool reuses the most recent
	 * stack first); data sent then must not land in it. */
	f = t_spawn(recv_then_end, NULL);
	t_turns(2);
	assert_int_equal(corio_cancel(f), 0);
	t_join(f);
	f = t_spawn(stack_heir, NULL);
	assert_int_equal(corio_event_wait(&own_sent), 0);
	assert_int_equal(write(own_sv[1], data, sizeof(data)), (ssize_t)sizeof(data));
	t_join(f);
	assert_int_equal(t_readable(own_sv[0]), (int)sizeof(data));
	close(own_sv[0]);
	close(own_sv[1]);
	return NULL;
}

static void ownership_after_return(void **state)
{
	(void)state;
	t_run(ownership_body, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cancel_blocked),
		cmocka_unit_test(cancel_before_block),
		cmocka_unit_test(cancel_self_and_errors),
		cmocka_unit_test(cancel_cond_mutex),
		cmocka_unit_test(cancel_races_completion),
		cmocka_unit_test(ownership_after_return),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
