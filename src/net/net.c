/*
 * TCP helpers: listen, dial, send everything, and the accept loop.
 *
 * corio_serve on io_uring keeps one multishot accept armed: each completion
 * is a new connection, handed to a new fiber. The multishot ends on errors;
 * the serving fiber then decides: retry at once (ECONNABORTED and the like),
 * back off until a connection closes or a timer passes (EMFILE, ENFILE,
 * ENOBUFS, ENOMEM: the process or the system is short of something a closing
 * connection gives back), or give up (the listener itself is bad). With
 * max_conns there is no multishot: one accept runs at a time (as on epoll),
 * pausing at the limit until a handler returns, because a multishot cannot
 * be bounded: the kernel accepts every connection waiting in the listen
 * queue in one go, and cancelling it at the limit comes too late for those.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../op.h"
#include "net.h"

static int parse_addr(const char *host, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

	if (port < 0 || port > 65535)
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	if (!host)
		host = "127.0.0.1";
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*len = sizeof(*a4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a6);
		return 0;
	}
	return -EINVAL;
}

int corio_listen_tcp(const char *host, int port, int backlog, unsigned flags)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, fd, err;

	err = parse_addr(host, port, &ss, &len);
	if (err)
		return err;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* TCP_NODELAY on the listener is inherited by accepted sockets. */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) ||
	    ((flags & CORIO_LISTEN_REUSEPORT) &&
	     setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) ||
	    bind(fd, (struct sockaddr *)&ss, len) || listen(fd, backlog > 0 ? backlog : 4096)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int corio_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return -errno;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -EAFNOSUPPORT;
}

int corio_dial_tcp_until(const char *host, int port, int64_t deadline)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int one = 1, fd, err;

	err = parse_addr(host, port, &ss, &len);
	if (err)
		return err;
	if (!corio__self())
		return -EPERM;
	if (deadline && deadline <= corio_now())
		return -ETIMEDOUT; /* as an I/O call: no socket made */
	fd = corio_socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fd;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	err = corio_connect_until(fd, (struct sockaddr *)&ss, len, deadline);
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

int corio_dial_tcp(const char *host, int port)
{
	return corio_dial_tcp_until(host, port, 0);
}

ssize_t corio_send_all_until(int fd, const void *buf, size_t len, int64_t deadline)
{
	const char *p = buf;
	size_t done = 0;

	while (done < len) {
		ssize_t n = corio_send_until(fd, p + done, len - done, 0, deadline);

		if (n < 0)
			return n;
		if (n == 0)
			return -EPIPE;
		done += (size_t)n;
	}
	return (ssize_t)len;
}

ssize_t corio_send_all(int fd, const void *buf, size_t len)
{
	return corio_send_all_until(fd, buf, len, 0);
}

bool corio__addr_loopback(const struct sockaddr_storage *ss)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	if (ss->ss_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;

		if (!memcmp(a, mapped, 12))
			return a[12] == 127;
		return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
	}
	return false;
}

/* -------------------------------------------------------- accept loop */

#define ARMED 16 /* direct accepts waiting in the kernel at once */

struct server;

struct armed {
	struct server *s;
	corio_req id; /* 0: free */
	struct sockaddr_storage peer;
	socklen_t peer_len;
};

/* Shared by the serving fiber and its handlers: it outlives whichever ends
 * first. */
struct server {
	unsigned refs;
	corio_handler_fn handler;
	void *arg;
	struct corio_serve_opts o;
	corio_loop *loop;
	int64_t deadline; /* serve until then (0: for ever) */
	int lfd;
	unsigned active; /* handlers running */
	uint64_t accepted;
	struct corio_serve_stats st;
	corio_req acc;	    /* the armed multishot accept, or 0 */
	bool acc_stopping;  /* we cancelled it (max_conns) */
	int acc_err;	    /* the error that ended it */
	bool direct;	    /* accepting into direct descriptors */
	int64_t short_since; /* accepts failing for want of descriptors or memory since; 0: not */
	uint64_t short_backoffs; /* back-offs in this episode */
	unsigned narmed;    /* direct accepts in the kernel */
	struct armed armed[ARMED];
	corio_event kick; /* the multishot ended, or a handler returned */
};

static void server_put(struct server *s)
{
	if (--s->refs == 0)
		free(s);
}

static void publish(struct server *s)
{
	s->st.accepted = s->accepted;
	s->st.active = s->active;
	if (s->o.stats)
		*s->o.stats = s->st;
}

static void *handler_main(void *arg)
{
	corio_fiber *self = corio__self();
	struct server *s = self->data;
	int fd = (int)(intptr_t)arg;

	self->data = NULL;
	s->handler(fd, s->arg);
	s->active--;
	publish(s);
	corio_event_set(&s->kick);
	server_put(s);
	return NULL;
}

static void start_handler(struct server *s, int fd)
{
	struct corio_fiber_opts fo = {.stack_size = s->o.stack_size, .detached = true};
	corio_fiber *f;

	if (s->short_since) {
		corio__log("accepting on fd %d again after %llu back-offs in %.1f s", s->lfd,
			   (unsigned long long)s->short_backoffs,
			   (double)(corio_now() - s->short_since) / CORIO_SEC);
		s->short_since = 0;
	}
	s->accepted++;
	if (corio_spawn(&f, s->loop, handler_main, (void *)(intptr_t)fd, &fo)) {
		corio__close_now(fd); /* no memory for a fiber: refuse this connection */
		s->st.refused++;
		publish(s);
		return;
	}
	f->data = s;
	s->refs++;
	s->active++;
	publish(s);
}

static void on_accept(corio_loop *loop, int res, unsigned flags, void *user)
{
	struct server *s = user;

	if (res >= 0)
		start_handler(s, res);
	else if (!(res == -ECANCELED && s->acc_stopping))
		s->acc_err = res;
	if (!(flags & IORING_CQE_F_MORE)) {
		s->acc = 0;
		corio_event_set(&s->kick);
		server_put(s); /* the op's reference, taken in arm_accept */
	}
}

static bool transient(int err)
{
	return err == -EMFILE || err == -ENFILE || err == -ENOBUFS || err == -ENOMEM;
}

static bool retry_now(int err)
{
	return err == -ECONNABORTED || err == -EINTR || err == -EAGAIN || err == -EPROTO ||
	       err == -ENETDOWN || err == -EHOSTUNREACH || err == -ENETUNREACH;
}

static int arm_accept(struct server *s)
{
	struct io_uring_sqe sqe;
	corio_req id;

	memset(&sqe, 0, sizeof(sqe));
	io_uring_prep_multishot_accept(&sqe, s->lfd, NULL, NULL, SOCK_CLOEXEC);
	s->refs++; /* held by the op until its last completion */
	id = corio_async_sqe(s->loop, &sqe, on_accept, s);
	if (id < 0) {
		s->refs--;
		return (int)id;
	}
	s->acc = id;
	return 0;
}

static bool full(const struct server *s)
{
	return s->o.max_conns && s->active >= s->o.max_conns;
}

/* Wait for the kick (a multishot end or a handler's return), at most until
 * @until (0: no limit) and the serving deadline. 0 when kicked or @until
 * passed; -ETIMEDOUT when the serving deadline passed, -ECANCELED when the
 * serving fiber is cancelled. */
static int wait_kick(struct server *s, int64_t until)
{
	int64_t d = s->deadline && (!until || s->deadline < until) ? s->deadline : until;
	int err = corio_event_wait_until(&s->kick, d);

	corio_event_reset(&s->kick);
	if (err != -ETIMEDOUT)
		return err;
	return s->deadline && corio_now() >= s->deadline ? -ETIMEDOUT : 0;
}

static int serve_plain(struct server *s);

/*
 * The first failure of an episode (until an accept succeeds again) is
 * logged, once, with what to raise: the connections wait in the listen
 * queue meanwhile, and nothing else would tell anyone why.
 */
static void note_shortage(struct server *s, int err)
{
	struct rlimit rl;

	s->short_backoffs++;
	if (s->short_since)
		return;
	s->short_since = corio_now();
	s->short_backoffs = 1;
	switch (err) {
	case -EMFILE:
		if (getrlimit(RLIMIT_NOFILE, &rl))
			rl.rlim_cur = RLIM_INFINITY;
		corio__log("accept on fd %d: %s (EMFILE): the process has reached its limit of "
			   "%lld open files; connections wait until some close (raise the limit: "
			   "ulimit -n, or LimitNOFILE= under systemd)", s->lfd, strerror(-err),
			   rl.rlim_cur == RLIM_INFINITY ? -1ll : (long long)rl.rlim_cur);
		break;
	case -ENFILE:
		corio__log("accept on fd %d: %s (ENFILE): the system's open-file table is full; "
			   "connections wait until some close (raise fs.file-max)", s->lfd,
			   strerror(-err));
		break;
	default:
		corio__log("accept on fd %d: %s: out of memory for sockets; connections wait until "
			   "some close (free memory, or raise net.ipv4.tcp_mem)", s->lfd,
			   strerror(-err));
		break;
	}
}

/* Short of descriptors or memory: wait for a handler to give some back, or
 * for the back-off (1 ms doubling to 100 ms) to pass. */
static int back_off(struct server *s, int64_t *backoff)
{
	*backoff = *backoff ? *backoff * 2 : CORIO_MSEC;
	if (*backoff > 100 * CORIO_MSEC)
		*backoff = 100 * CORIO_MSEC;
	s->st.backoffs++;
	publish(s);
	return wait_kick(s, corio_now() + *backoff);
}

/*
 * Direct descriptors: single accepts, each with a slot reserved for it, up
 * to ARMED of them in the kernel at once. Not one multishot accept: it
 * cannot be bounded, and an accept that finds the table full has already
 * taken the connection off the listen queue; the kernel then closes it.
 * A connection accepted must never be lost, so a full table pauses the
 * accepting instead (the listen queue holds the connections meanwhile).
 */
static void on_accept_direct(corio_loop *loop, int res, unsigned flags, void *user)
{
	struct armed *a = user;
	struct server *s = a->s;

	(void)flags;
	a->id = 0;
	s->narmed--;
	if (res >= 0) {
		loop->be->direct->note_peer(loop, (unsigned)res, corio__addr_loopback(&a->peer));
		start_handler(s, CORIO_FD_DIRECT + res);
	} else {
		loop->be->direct->release(loop);
		if (!(res == -ECANCELED && s->acc_stopping))
			s->acc_err = res;
	}
	corio_event_set(&s->kick);
	server_put(s);
}

static int arm_direct(struct server *s)
{
	struct io_uring_sqe sqe;

	for (unsigned i = 0; i < ARMED; i++) {
		struct armed *a = &s->armed[i];
		corio_req id;

		if (a->id)
			continue;
		if (s->o.max_conns && s->active + s->narmed >= s->o.max_conns)
			break;
		if (s->loop->be->direct->reserve(s->loop))
			break; /* the table is taken: wait for a close */
		memset(&sqe, 0, sizeof(sqe));
		a->peer_len = sizeof(a->peer);
		io_uring_prep_accept(&sqe, s->lfd, (struct sockaddr *)&a->peer, &a->peer_len, 0);
		/* Any free slot (liburing 2.3's accept_direct gets this wrong). */
		sqe.file_index = IORING_FILE_INDEX_ALLOC;
		a->s = s;
		s->refs++; /* held by the op until its completion */
		id = corio_async_sqe(s->loop, &sqe, on_accept_direct, a);
		if (id < 0) {
			s->refs--;
			s->loop->be->direct->release(s->loop);
			return (int)id;
		}
		a->id = id;
		s->narmed++;
	}
	return 0;
}

/* A failed accept: 0 to accept again (now, or after a back-off while
 * short of descriptors or memory), or the error that ends serving. */
static int accept_failed(struct server *s, int err, int64_t *backoff)
{
	if (retry_now(err))
		return 0;
	if (!transient(err))
		return err;
	note_shortage(s, err);
	return back_off(s, backoff);
}

/* Accepts armed in the kernel: one multishot accept, or direct accepts. */
static int serve_armed(struct server *s)
{
	int64_t backoff = 0;
	int err;

	for (;;) {
		if (s->direct)
			err = arm_direct(s);
		else
			err = !s->acc ? arm_accept(s) : 0;
		if (err)
			return err;
		if (s->direct && !s->narmed && !full(s))
			err = back_off(s, &backoff); /* the table is taken */
		else
			err = wait_kick(s, 0);
		if (err)
			return err;
		if (s->acc || !s->acc_err)
			continue;
		err = s->acc_err;
		s->acc_err = 0;
		if (err == -EINVAL && !s->accepted) {
			if (!s->direct)
				return serve_plain(s); /* no multishot accept before 5.19 */
			s->direct = false; /* no IORING_FILE_INDEX_ALLOC before 5.19 */
			continue;
		}
		err = accept_failed(s, err, &backoff);
		if (err)
			return err;
	}
}

static int serve_plain(struct server *s)
{
	int64_t backoff = 0;
	int fd, err;

	for (;;) {
		while (full(s)) {
			err = wait_kick(s, 0);
			if (err)
				return err;
		}
		fd = corio_accept_until(s->lfd, NULL, NULL, SOCK_CLOEXEC, s->deadline);
		if (fd >= 0) {
			backoff = 0;
			start_handler(s, fd);
			continue;
		}
		err = accept_failed(s, fd, &backoff);
		if (err)
			return err;
	}
}

int corio_serve_until(int listen_fd, corio_handler_fn handler, void *arg,
		      const struct corio_serve_opts *opts, int64_t deadline)
{
	struct server *s;
	int err;

	if (listen_fd < 0 || !handler)
		return -EINVAL;
	if (!corio__self())
		return -EPERM;
	if (deadline && deadline <= corio_now())
		return -ETIMEDOUT; /* as an I/O call: nothing started */
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->refs = 1;
	s->handler = handler;
	s->arg = arg;
	if (opts)
		s->o = *opts;
	s->loop = corio__tls_loop;
	s->deadline = deadline;
	s->lfd = listen_fd;
	corio_event_init(&s->kick);
	/* Direct descriptors where the loop can have them; plain ones
	 * elsewhere, for the same handlers. */
	s->direct = s->o.direct && (s->loop->caps & CORIO__CAP_DIRECT) &&
		    !s->loop->be->direct->setup(s->loop);
	/* Direct accepts are single and bounded by max_conns (arm_direct); a
	 * multishot accept would take more than max_conns off the queue. */
	if ((s->loop->caps & CORIO__CAP_MULTISHOT) && (s->direct || !s->o.max_conns))
		err = serve_armed(s);
	else
		err = serve_plain(s);
	/* Stop accepting; the ops keep their references until their end. */
	s->acc_stopping = true;
	if (s->acc)
		corio_async_cancel(s->loop, s->acc);
	for (unsigned i = 0; i < ARMED; i++)
		if (s->armed[i].id)
			corio_async_cancel(s->loop, s->armed[i].id);
	server_put(s);
	return err;
}

int corio_serve(int listen_fd, corio_handler_fn handler, void *arg,
		const struct corio_serve_opts *opts)
{
	return corio_serve_until(listen_fd, handler, arg, opts, 0);
}
