/*
 * echo_epoll: classic single-threaded TCP echo server on edge-triggered
 * epoll, the readiness-model peer for corio's echo server.
 *
 * Each socket is registered once for EPOLLIN | EPOLLOUT | EPOLLRDHUP with
 * EPOLLET, so the loop never calls epoll_ctl after accept. Data read is
 * written straight back; whatever the socket does not take goes to the
 * connection's output buffer, flushed on the next EPOLLOUT edge. While that
 * buffer holds more than OUT_HIGH bytes the connection stops reading
 * (backpressure) and resumes once the buffer is flushed.
 *
 * Edge-triggered reads stop at a short read rather than at EAGAIN: for a
 * stream socket a short read means the receive queue was empty at that
 * moment, and any later data raises a new edge (epoll(7), "edge-triggered").
 * That saves one read() per wakeup.
 *
 * Usage: echo_epoll PORT   (listens on 127.0.0.1)
 * Test with: nc 127.0.0.1 PORT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define RBUF 65536
#define OUT_HIGH (256 * 1024)
#define MAX_EVENTS 512

struct conn {
	int fd;
	int paused; /* stopped reading because out is above OUT_HIGH */
	int rdhup;  /* peer shut down its side: read to EOF, no more edges */
	char *out;  /* pending output: out[off..len) */
	size_t off, len, cap;
};

static int epfd;
static char rbuf[RBUF];

static void conn_close(struct conn *c)
{
	close(c->fd); /* also removes it from the epoll set */
	free(c->out);
	free(c);
}

/* Write out[off..len); returns -1 on a fatal error. */
static int flush_out(struct conn *c)
{
	while (c->off < c->len) {
		ssize_t n = send(c->fd, c->out + c->off, c->len - c->off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -1;
		}
		c->off += (size_t)n;
	}
	c->off = c->len = 0;
	return 0;
}

static int append_out(struct conn *c, const char *p, size_t n)
{
	if (c->off && c->off == c->len)
		c->off = c->len = 0;
	if (c->len + n > c->cap) {
		size_t used = c->len - c->off;
		size_t ncap = c->cap ? c->cap : 4096;

		while (ncap < used + n)
			ncap *= 2;
		if (ncap > c->cap) {
			char *nb = malloc(ncap);

			if (!nb)
				return -1;
			if (used)
				memcpy(nb, c->out + c->off, used);
			free(c->out);
			c->out = nb;
			c->cap = ncap;
		} else {
			memmove(c->out, c->out + c->off, used);
		}
		c->off = 0;
		c->len = used;
	}
	memcpy(c->out + c->len, p, n);
	c->len += n;
	return 0;
}

/*
 * Read and echo until the socket is drained or output backs up. With
 * `to_eof` (the peer has shut down) read on to the end of stream, since no
 * further edge will come.
 */
static int on_readable(struct conn *c, int to_eof)
{
	for (;;) {
		ssize_t n = recv(c->fd, rbuf, sizeof(rbuf), 0);

		if (n == 0)
			return -1;
		if (n < 0) {
			if (errno == EAGAIN)
				return 0;
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (c->len == c->off) { /* nothing queued: write directly */
			ssize_t w = send(c->fd, rbuf, (size_t)n, MSG_NOSIGNAL);

			if (w < 0) {
				if (errno != EAGAIN && errno != EINTR)
					return -1;
				w = 0;
			}
			if (w < n && append_out(c, rbuf + w, (size_t)(n - w)) < 0)
				return -1;
		} else if (append_out(c, (char *)rbuf, (size_t)n) < 0) {
			return -1;
		}
		if (c->len - c->off > OUT_HIGH) {
			c->paused = 1;
			return 0;
		}
		if ((size_t)n < sizeof(rbuf) && !to_eof)
			return 0; /* short read: drained, the next data is a new edge */
	}
}

static void on_accept(int lfd)
{
	for (;;) {
		struct epoll_event ev;
		struct conn *c;
		int one = 1, fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return; /* EAGAIN, or EMFILE and friends: try on the next edge */
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
		ev.data.ptr = c;
		if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			conn_close(c);
			continue;
		}
		/* data may already be queued; the ADD reports it as the first edge */
	}
}

static int listen_on(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4096) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	static struct epoll_event evs[MAX_EVENTS];
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET };
	static int listen_tag; /* address marks the listener in data.ptr */
	int lfd;

	if (argc < 2) {
		fprintf(stderr, "usage: %s PORT\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	lfd = listen_on(atoi(argv[1]));
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (lfd < 0 || epfd < 0) {
		perror("echo_epoll: listen");
		return 1;
	}
	ev.data.ptr = &listen_tag;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) < 0) {
		perror("echo_epoll: epoll_ctl");
		return 1;
	}

	for (;;) {
		int n = epoll_wait(epfd, evs, MAX_EVENTS, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("echo_epoll: epoll_wait");
			return 1;
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			uint32_t e = evs[i].events;

			if (evs[i].data.ptr == &listen_tag) {
				on_accept(lfd);
				continue;
			}
			if (e & (EPOLLERR | EPOLLHUP)) {
				conn_close(c);
				continue;
			}
			if ((e & EPOLLOUT) && c->len > c->off) {
				if (flush_out(c) < 0) {
					conn_close(c);
					continue;
				}
				if (c->paused && c->len == c->off) {
					c->paused = 0;
					e |= EPOLLIN; /* resume: drain what arrived meanwhile */
				}
			}
			if (e & EPOLLRDHUP)
				c->rdhup = 1;
			if ((e & (EPOLLIN | EPOLLRDHUP)) && !c->paused && on_readable(c, c->rdhup) < 0)
				conn_close(c);
		}
	}
}
