/* Blocking calls of every kind, for the deadline and cancellation tests. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <liburing.h>

#include "blockers.h"

struct fixture fx;


/* Fill a blocking fd's buffer without blocking, and return how much went in. */
static size_t fill(int fd, bool sock)
{
	static char junk[4096];
	size_t total = 0;
	ssize_t n;
	int fl = fcntl(fd, F_GETFL);

	/* io_uring honours O_NONBLOCK (it would fail with -EAGAIN instead of
	 * waiting), so it is set only while filling. */
	if (!sock)
		assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
	for (;;) {
		if (sock)
			n = send(fd, junk, sizeof(junk), MSG_DONTWAIT);
		else
			n = write(fd, junk, sizeof(junk));
		if (n < 0) {
			assert_int_equal(errno, EAGAIN);
			break;
		}
		total += (size_t)n;
	}
	if (!sock)
		assert_int_equal(fcntl(fd, F_SETFL, fl), 0);
	return total;
}

static void *target_fn(void *arg)
{
	assert_int_equal(corio_event_wait(&fx.ev_target), 0);
	return arg;
}

void fx_setup(void)
{
	int v = 1, sz = 4096;

	memset(&fx, 0, sizeof(fx));
	t_pipe(fx.pipe);
	t_pipe(fx.full_pipe);
	assert_true(fcntl(fx.full_pipe[1], F_SETPIPE_SZ, sz) >= sz);
	fx.full_pipe_bytes = fill(fx.full_pipe[1], false);
	t_socketpair(fx.sp);
	t_socketpair(fx.full_sp);
	assert_int_equal(setsockopt(fx.full_sp[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)), 0);
	assert_int_equal(setsockopt(fx.full_sp[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)), 0);
	fx.full_sp_bytes = fill(fx.full_sp[0], true);
	fx.lfd = t_listen_tcp(&fx.lport);
	corio_mutex_init(&fx.mu);
	assert_int_equal(corio_mutex_lock(&fx.mu), 0);
	corio_mutex_init(&fx.cvmu);
	corio_cond_init(&fx.cv);
	corio_event_init(&fx.ev);
	corio_event_init(&fx.ev_target);
	assert_int_equal(corio_chan_init(&fx.ch0, sizeof(int), 0), 0);
	assert_int_equal(corio_chan_init(&fx.ch_full, sizeof(int), 1), 0);
	assert_int_equal(corio_chan_send(&fx.ch_full, &v), 0);
	corio_waitgroup_init(&fx.wg);
	assert_int_equal(corio_waitgroup_add(&fx.wg, 1), 0);
	fx.target = t_spawn(target_fn, (void *)5);
}

/* Read @fd until @n bytes came (they must be there already). */
static void drain(int fd, size_t n)
{
	char buf[4096];

	while (n) {
		ssize_t r = read(fd, buf, n < sizeof(buf) ? n : sizeof(buf));

		assert_true(r > 0);
		n -= (size_t)r;
	}
}

void fx_teardown(void)
{
	int v;

	/* Everything left as set up: the full buffers still hold exactly
	 * what was put in (no cancelled write slipped data in). */
	assert_int_equal(t_readable(fx.full_pipe[0]), (int)fx.full_pipe_bytes);
	assert_int_equal(t_readable(fx.pipe[0]), 0);
	assert_int_equal(t_readable(fx.sp[0]), 0);
	drain(fx.full_sp[1], fx.full_sp_bytes);
	assert_int_equal(recv(fx.full_sp[1], &v, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(corio_chan_try_recv(&fx.ch_full, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(corio_chan_try_recv(&fx.ch_full, &v), -EAGAIN);
	assert_int_equal(corio_chan_len(&fx.ch0), 0);
	assert_int_equal(corio_mutex_unlock(&fx.mu), 0);
	corio_event_set(&fx.ev_target);
	assert_ptr_equal(t_join(fx.target), (void *)5);
	assert_int_equal(corio_waitgroup_done(&fx.wg), 0);
	corio_chan_destroy(&fx.ch0);
	corio_chan_destroy(&fx.ch_full);
	close(fx.lfd);
	for (int i = 0; i < 2; i++) {
		close(fx.pipe[i]);
		close(fx.full_pipe[i]);
		close(fx.sp[i]);
		close(fx.full_sp[i]);
	}
}

/* ------------------------------------------------------------ blockers */

/* I/O: the buffer lives on the blocked fiber's stack (DESIGN rule 1), and
 * is checked untouched after the call returned and data was sent. */

static char *stack_buf_check(char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		assert_int_equal(buf[i], 'Z');
	return buf;
}

/* After an I/O blocker on fx.pipe / fx.sp returned without data, data sent
 * now stays readable in full: no operation is still reading. */
static void check_stream(int rfd, int wfd, int res)
{
	char buf[MSGLEN];

	if (res >= 0) {
		assert_int_equal(res, MSGLEN);
		return;
	}
	assert_int_equal(write(wfd, MSG, MSGLEN), MSGLEN);
	/* Let the loop (and the kernel) turn: a stray op would take it now. */
	assert_int_equal(corio_nop(), 0);
	t_turns(2);
	assert_int_equal(t_readable(rfd), MSGLEN);
	assert_int_equal(read(rfd, buf, MSGLEN), MSGLEN);
	assert_memory_equal(buf, MSG, MSGLEN);
}

static void check_pipe(int res)
{
	check_stream(fx.pipe[0], fx.pipe[1], res);
}

static void check_sp(int res)
{
	check_stream(fx.sp[0], fx.sp[1], res);
}

static int b_read(int64_t dl)
{
	char buf[64];
	ssize_t r;

	memset(buf, 'Z', sizeof(buf));
	r = dl ? corio_read_until(fx.pipe[0], buf, sizeof(buf), -1, dl)
	       : corio_read(fx.pipe[0], buf, sizeof(buf), -1);
	if (r >= 0)
		assert_memory_equal(buf, MSG, MSGLEN);
	if (r < 0) {
		check_pipe((int)r);
		stack_buf_check(buf, sizeof(buf));
	}
	return (int)r;
}

static int b_readv(int64_t dl)
{
	char a[8], b[56];
	struct iovec iov[2] = {{a, sizeof(a)}, {b, sizeof(b)}};
	ssize_t r;

	memset(a, 'Z', sizeof(a));
	memset(b, 'Z', sizeof(b));
	r = dl ? corio_readv_until(fx.pipe[0], iov, 2, -1, dl)
	       : corio_readv(fx.pipe[0], iov, 2, -1);
	if (r >= 0) {
		assert_memory_equal(a, MSG, 8);
		assert_memory_equal(b, &MSG[8], MSGLEN - 8);
	}
	if (r < 0) {
		check_pipe((int)r);
		stack_buf_check(a, sizeof(a));
		stack_buf_check(b, sizeof(b));
	}
	return (int)r;
}

static int b_recv(int64_t dl)
{
	char buf[64];
	ssize_t r;

	memset(buf, 'Z', sizeof(buf));
	r = dl ? corio_recv_until(fx.sp[0], buf, sizeof(buf), 0, dl)
	       : corio_recv(fx.sp[0], buf, sizeof(buf), 0);
	if (r >= 0)
		assert_memory_equal(buf, MSG, MSGLEN);
	if (r < 0) {
		check_sp((int)r);
		stack_buf_check(buf, sizeof(buf));
	}
	return (int)r;
}

static int b_recvmsg(int64_t dl)
{
	char buf[64];
	struct iovec iov = {buf, sizeof(buf)};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t r;

	memset(buf, 'Z', sizeof(buf));
	r = dl ? corio_recvmsg_until(fx.sp[0], &m, 0, dl) : corio_recvmsg(fx.sp[0], &m, 0);
	if (r >= 0)
		assert_memory_equal(buf, MSG, MSGLEN);
	if (r < 0) {
		check_sp((int)r);
		stack_buf_check(buf, sizeof(buf));
	}
	return (int)r;
}

static int b_poll(int64_t dl)
{
	int r = dl ? corio_poll_until(fx.pipe[0], POLLIN, dl) : corio_poll(fx.pipe[0], POLLIN);

	if (r < 0)
		check_pipe(-1); /* poll consumes nothing: just check the pipe works */
	return r;
}

static int b_sqe_read(int64_t dl)
{
	struct io_uring_sqe sqe;
	char buf[64];
	int r;

	memset(&sqe, 0, sizeof(sqe));
	memset(buf, 'Z', sizeof(buf));
	io_uring_prep_read(&sqe, fx.pipe[0], buf, sizeof(buf), (uint64_t)-1);
	r = dl ? corio_sqe_until(&sqe, dl) : corio_sqe(&sqe);
	if (r >= 0)
		assert_memory_equal(buf, MSG, MSGLEN);
	if (r < 0) {
		check_pipe(r);
		stack_buf_check(buf, sizeof(buf));
	}
	return r;
}

static int connect_listener(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(c >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)fx.lport);
	assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	return c;
}

static void check_accept(int res)
{
	int c, s;

	if (res >= 0) {
		close(res);
		return;
	}
	/* A client connecting now is still in the backlog for us. */
	c = connect_listener();
	t_turns(2);
	s = accept4(fx.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	assert_true(s >= 0);
	close(s);
	close(c);
}

static int b_accept(int64_t dl)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	return dl ? corio_accept_until(fx.lfd, (struct sockaddr *)&ss, &sl, 0, dl)
		  : corio_accept(fx.lfd, (struct sockaddr *)&ss, &sl, 0);
}

static int b_write_full(int64_t dl)
{
	char buf[4096] = {0};

	return (int)(dl ? corio_write_until(fx.full_pipe[1], buf, sizeof(buf), -1, dl)
			: corio_write(fx.full_pipe[1], buf, sizeof(buf), -1));
}

static int b_send_full(int64_t dl)
{
	char buf[4096] = {0};

	return (int)(dl ? corio_send_until(fx.full_sp[0], buf, sizeof(buf), 0, dl)
			: corio_send(fx.full_sp[0], buf, sizeof(buf), 0));
}

static int b_send_all_full(int64_t dl)
{
	char buf[4096] = {0};

	return (int)(dl ? corio_send_all_until(fx.full_sp[0], buf, sizeof(buf), dl)
			: corio_send_all(fx.full_sp[0], buf, sizeof(buf)));
}

static void serve_handler(int fd, void *arg)
{
	(void)arg;
	corio_close(fd); /* nobody connects: never runs */
}

/* The accept loop on a listener nobody connects to: a wait, not one I/O
 * call (on io_uring it waits on an event while its accept is armed). */
static int b_serve(int64_t dl)
{
	return dl ? corio_serve_until(fx.lfd, serve_handler, NULL, NULL, dl)
		  : corio_serve(fx.lfd, serve_handler, NULL, NULL);
}

static void check_none(int res)
{
	(void)res;
}

static int b_sleep(int64_t dl)
{
	/* A sleep's own end is not a timeout: this blocker ignores @dl. */
	(void)dl;
	return corio_sleep(3600 * CORIO_SEC);
}

static int b_mutex(int64_t dl)
{
	int r = dl ? corio_mutex_lock_until(&fx.mu, dl) : corio_mutex_lock(&fx.mu);

	if (r == 0)
		corio_mutex_unlock(&fx.mu);
	return r;
}

static void check_mutex(int res)
{
	/* Not handed over: still the controller's. */
	if (res < 0)
		assert_int_equal(corio_mutex_try_lock(&fx.mu), -EBUSY);
}

static int b_cond(int64_t dl)
{
	int r;

	assert_int_equal(corio_mutex_lock(&fx.cvmu), 0);
	r = dl ? corio_cond_wait_until(&fx.cv, &fx.cvmu, dl) : corio_cond_wait(&fx.cv, &fx.cvmu);
	/* Holds the mutex again, whatever the result. */
	assert_int_equal(corio_mutex_unlock(&fx.cvmu), 0);
	return r;
}

static int b_event(int64_t dl)
{
	return dl ? corio_event_wait_until(&fx.ev, dl) : corio_event_wait(&fx.ev);
}

static int b_chan_send(int64_t dl)
{
	int v = 42;

	return dl ? corio_chan_send_until(&fx.ch0, &v, dl) : corio_chan_send(&fx.ch0, &v);
}

static int b_chan_send_full(int64_t dl)
{
	int v = 43;

	return dl ? corio_chan_send_until(&fx.ch_full, &v, dl) : corio_chan_send(&fx.ch_full, &v);
}

static int b_chan_recv(int64_t dl)
{
	int v = -1, r;

	r = dl ? corio_chan_recv_until(&fx.ch0, &v, dl) : corio_chan_recv(&fx.ch0, &v);
	assert_int_equal(v, r < 0 ? -1 : 7);
	return r;
}

static void check_chan(int res)
{
	int v = 7;

	(void)res;
	/* The aborted waiter left the channel: nobody takes or gives. */
	assert_int_equal(corio_chan_try_send(&fx.ch0, &v), -EAGAIN);
	assert_int_equal(corio_chan_try_recv(&fx.ch0, &v), -EAGAIN);
}

static int b_waitgroup(int64_t dl)
{
	return dl ? corio_waitgroup_wait_until(&fx.wg, dl) : corio_waitgroup_wait(&fx.wg);
}

static int b_join(int64_t dl)
{
	void *res = NULL;
	int r = dl ? corio_join_until(fx.target, &res, dl) : corio_join(fx.target, &res);

	assert_ptr_equal(res, r < 0 ? NULL : (void *)5);
	return r;
}

static void check_join(int res)
{
	(void)res;
	/* Still joinable (fx_teardown joins it). */
}

/* -------------------------------------------------- satisfy, restore */

static void sat_pipe(void)
{
	assert_int_equal(write(fx.pipe[1], MSG, MSGLEN), MSGLEN);
}

static void sat_sp(void)
{
	assert_int_equal(write(fx.sp[1], MSG, MSGLEN), MSGLEN);
}

static void restore_pipe(void)
{
	char buf[MSGLEN];

	assert_int_equal(read(fx.pipe[0], buf, MSGLEN), MSGLEN);
	assert_memory_equal(buf, MSG, MSGLEN);
}

static void sat_accept(void)
{
	fx.client = connect_listener();
}

static void restore_accept(void)
{
	close(fx.client);
}

static void sat_write_full(void)
{
	/* One pipe buffer (4096 bytes) frees room for the whole write. */
	drain(fx.full_pipe[0], 4096);
}

static void sat_mutex(void)
{
	assert_int_equal(corio_mutex_unlock(&fx.mu), 0);
}

static void restore_mutex(void)
{
	assert_int_equal(corio_mutex_lock(&fx.mu), 0);
}

static void sat_cond(void)
{
	corio_cond_signal(&fx.cv);
}

static void sat_event(void)
{
	corio_event_set(&fx.ev);
}

static void restore_event(void)
{
	corio_event_reset(&fx.ev);
}

static void sat_chan_send(void)
{
	int v = 0;

	assert_int_equal(corio_chan_recv(&fx.ch0, &v), 0);
	assert_int_equal(v, 42);
}

static void sat_chan_send_full(void)
{
	int v = 0;

	assert_int_equal(corio_chan_recv(&fx.ch_full, &v), 0);
	assert_int_equal(v, 1);
}

static void restore_chan_send_full(void)
{
	int v = 0;

	assert_int_equal(corio_chan_try_recv(&fx.ch_full, &v), 0);
	assert_int_equal(v, 43);
	v = 1;
	assert_int_equal(corio_chan_try_send(&fx.ch_full, &v), 0);
}

static void sat_chan_recv(void)
{
	int v = 7;

	assert_int_equal(corio_chan_send(&fx.ch0, &v), 0);
}

static void sat_waitgroup(void)
{
	assert_int_equal(corio_waitgroup_done(&fx.wg), 0);
}

static void restore_waitgroup(void)
{
	assert_int_equal(corio_waitgroup_add(&fx.wg, 1), 0);
}

static void sat_join(void)
{
	corio_event_set(&fx.ev_target);
}

static void restore_join(void)
{
	corio_event_reset(&fx.ev_target);
	fx.target = t_spawn(target_fn, (void *)5);
}

static void nothing(void)
{
}

const struct blocker blockers[] = {
	{"read", true, b_read, check_none, sat_pipe, nothing},
	{"readv", true, b_readv, check_none, sat_pipe, nothing},
	{"recv", true, b_recv, check_none, sat_sp, nothing},
	{"recvmsg", true, b_recvmsg, check_none, sat_sp, nothing},
	{"poll", true, b_poll, check_none, sat_pipe, restore_pipe},
	{"sqe_read", true, b_sqe_read, check_none, sat_pipe, nothing},
	{"accept", true, b_accept, check_accept, sat_accept, restore_accept},
	{"write_full_pipe", true, b_write_full, check_none, sat_write_full, nothing},
	{"send_full_socket", true, b_send_full, check_none, NULL, NULL},
	{"send_all_full_socket", true, b_send_all_full, check_none, NULL, NULL},
	{"sleep", false, b_sleep, check_none, NULL, NULL},
	{"mutex", false, b_mutex, check_mutex, sat_mutex, restore_mutex},
	{"cond", false, b_cond, check_none, sat_cond, nothing},
	{"event", false, b_event, check_none, sat_event, restore_event},
	{"chan_send", false, b_chan_send, check_chan, sat_chan_send, nothing},
	{"chan_send_full", false, b_chan_send_full, check_none, sat_chan_send_full,
	 restore_chan_send_full},
	{"chan_recv", false, b_chan_recv, check_chan, sat_chan_recv, nothing},
	{"waitgroup", false, b_waitgroup, check_none, sat_waitgroup, restore_waitgroup},
	{"join", false, b_join, check_join, sat_join, restore_join},
	{"serve", false, b_serve, check_none, NULL, NULL},
};

const size_t nblockers = sizeof(blockers) / sizeof(blockers[0]);
