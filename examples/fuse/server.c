/*
 * The FUSE server: mount, a pool of loops, workers, stop.
 *
 * Each loop opens its channel of the transport (for /dev/fuse, its own
 * cloned descriptor) and starts `readers` worker fibers. A worker owns a
 * slot (request and answer buffers) and loops: receive a request, handle
 * it (ops.c), answer. So `readers` reads are in flight on an idle loop and
 * every request has a fiber of its own. When a worker takes a request and
 * no other worker of its loop is left waiting for one, it starts another
 * (up to max_workers), so that slow requests (an fsync, a cold read) never
 * leave the loop without a read in flight; workers beyond `readers` end
 * once enough of their loop's workers are idle again.
 *
 * Stopping (fuse_server_stop, from a thread that is not a loop):
 *  1. unmount; if the mount is busy (files open on it), detach it lazily:
 *     it leaves the namespace at once, and the open files keep the
 *     connection until step 4;
 *  2. tell every loop to stop: workers waiting for a request are cancelled,
 *     workers handling one finish it, answer, and end;
 *  3. wait for the workers to end, up to STOP_GRACE; then the pool is
 *     stopped, which cancels whatever still runs (an operation on the
 *     source then fails with ECANCELED, which is the answer);
 *  4. close the channels and the mounted descriptor: once the last
 *     /dev/fuse descriptor of the connection is closed, the kernel aborts
 *     it, so any request still queued or sent later fails (ECONNABORTED,
 *     then ENOTCONN) instead of waiting for ever;
 *  5. close every open file and inode descriptor, free.
 * An unmount from outside (or an abort) ends the connection too: the
 * workers' reads fail with ENODEV, they end, and end_fd becomes readable
 * so that the program calls stop.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fuse.h"

#define DEFAULT_READERS 4u
#define DEFAULT_MAX_WORKERS 64u
#define DEFAULT_TIMEOUT CORIO_SEC
#define MAX_WRITE (1u << 20) /* as libfuse: 256 pages */
#define STOP_GRACE 5	     /* seconds */
#define LOG_FIRST 20	     /* bad requests logged before thinning out */

struct worker;

struct floop {
	struct fuse_server *s;
	unsigned index;
	int err;		 /* from opening the channel */
	struct fuse_chan *ch;
	unsigned workers, idle;	 /* idle: waiting in recv, in the list below */
	bool stopping;
	struct worker *waiting;	 /* doubly linked through prev/next */
};

struct worker {
	struct floop *fl;
	corio_fiber *self;
	struct worker *prev, *next;
	bool cancelled; /* by stop_loop, while in the waiting list */
	struct fuse_slot slot;
};

/* -------------------------------------------------------------- accessors */

int fuse_server_devfd(const struct fuse_server *s)
{
	return s->devfd;
}

void *fuse_server_transport_arg(const struct fuse_server *s)
{
	return s->o.transport_arg;
}

size_t fuse_server_max_request(const struct fuse_server *s)
{
	/* Header, fuse_write_in and the data of the largest write; names are
	 * far shorter. The kernel refuses reads into less. */
	return sizeof(struct fuse_in_header) + sizeof(struct fuse_write_in) + s->max_write;
}

size_t fuse_server_max_reply(const struct fuse_server *s)
{
	return s->max_read;
}

int fuse_server_end_fd(const struct fuse_server *s)
{
	return s->endfd;
}

unsigned fuse_server_threads(const struct fuse_server *s)
{
	return s->nloops;
}

void fuse_server_stats(const struct fuse_server *s, struct fuse_server_stats *st)
{
	struct fuse_server *m = (struct fuse_server *)s;

	memset(st, 0, sizeof(*st));
	st->requests = atomic_load(&m->requests);
	st->bad_requests = atomic_load(&m->bad_requests);
	st->unknown = atomic_load(&m->unknown);
	st->nodes = nodes_count(&m->nodes);
	pthread_mutex_lock(&m->handles.lock);
	st->handles = m->handles.ids.count;
	pthread_mutex_unlock(&m->handles.lock);
	st->lazy_unmount = s->lazy_unmount;
}

void fuse_log_bad(struct fuse_server *s, const struct fuse_in_header *h, const char *why)
{
	uint64_t n = atomic_fetch_add(&s->bad_requests, 1) + 1;

	/* The first few, then one in a thousand: a confused kernel or a
	 * hostile transport must not flood the log. */
	if (n > LOG_FIRST && n % 1000)
		return;
	if (h)
		fprintf(stderr,
			"fuse: bad request (opcode %u, unique %llu, %u bytes): %s; answered EIO",
			h->opcode, (unsigned long long)h->unique, h->len, why);
	else
		fprintf(stderr, "fuse: bad request: %s; dropped", why);
	if (n > LOG_FIRST)
		fprintf(stderr, " (%llu bad requests so far)", (unsigned long long)n);
	fputc('\n', stderr);
}

/* ---------------------------------------------------------------- workers */

static void worker_end(struct floop *fl)
{
	struct fuse_server *s = fl->s;

	fl->workers--;
	pthread_mutex_lock(&s->wlock);
	if (--s->workers == 0)
		pthread_cond_broadcast(&s->wcond);
	pthread_mutex_unlock(&s->wlock);
}

static void *worker_main(void *arg);

static int worker_start(struct floop *fl)
{
	struct fuse_server *s = fl->s;
	struct worker *w = calloc(1, sizeof(*w));
	struct corio_fiber_opts fo = {.detached = true, .name = "fuse-worker"};
	int err;

	if (!w)
		return -ENOMEM;
	w->fl = fl;
	err = s->t->slot_init(fl->ch, &w->slot);
	if (err) {
		free(w);
		return err;
	}
	pthread_mutex_lock(&s->wlock);
	s->workers++;
	pthread_mutex_unlock(&s->wlock);
	fl->workers++;
	err = corio_spawn(&w->self, NULL, worker_main, w, &fo);
	if (err) {
		s->t->slot_free(fl->ch, &w->slot);
		free(w);
		worker_end(fl);
	}
	return err;
}

/* The connection is over (unmounted or aborted from outside): stop every
 * loop's reading and tell the program. */
static void connection_ended(struct fuse_server *s)
{
	uint64_t one = 1;

	if (!atomic_exchange(&s->stopping, true))
		if (write(s->endfd, &one, sizeof(one)) < 0)
			perror("fuse: eventfd");
}

static void wait_list_add(struct floop *fl, struct worker *w)
{
	w->prev = NULL;
	w->next = fl->waiting;
	if (w->next)
		w->next->prev = w;
	fl->waiting = w;
	fl->idle++;
}

static void wait_list_del(struct floop *fl, struct worker *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		fl->waiting = w->next;
	if (w->next)
		w->next->prev = w->prev;
	fl->idle--;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct floop *fl = w->fl;
	struct fuse_server *s = fl->s;
	struct fuse_req req;
	int err;

	while (!fl->stopping) {
		wait_list_add(fl, w);
		err = s->t->recv(fl->ch, &w->slot, &req);
		wait_list_del(fl, w);
		if (err == -ENODEV) {
			connection_ended(s);
			break;
		}
		if (err == -ECANCELED)
			break;
		if (err && err != -EBADMSG) {
			fprintf(stderr, "fuse: loop %u: receiving a request: %s\n", fl->index,
				strerror(-err));
			break;
		}
		/* Stopping cancelled us, but the request had arrived: answer
		 * it. The cancellation is still pending for our next call;
		 * spend it on a nop, not on the request's own operations. */
		if (w->cancelled) {
			corio_nop();
			w->cancelled = false;
		}
		atomic_fetch_add_explicit(&s->requests, 1, memory_order_relaxed);
		if (err == -EBADMSG) {
			fuse_log_bad(s, req.h, req.why);
			if (req.h)
				fuse_reply(s, fl->ch, &w->slot, req.h->unique, -EIO, 0);
			continue;
		}
		/* Keep a read in flight while this request is handled. */
		if (fl->idle == 0 && !fl->stopping && fl->workers < s->o.max_workers)
			worker_start(fl);
		fuse_handle(s, fl->ch, &w->slot, &req);
		if (fl->workers > s->o.readers && fl->idle >= s->o.readers)
			break;
	}
	s->t->slot_free(fl->ch, &w->slot);
	free(w);
	worker_end(fl);
	return NULL;
}

/* ------------------------------------------------------------------ loops */

static void on_start(corio_loop *loop, unsigned index, void *arg)
{
	struct fuse_server *s = arg;
	struct floop *fl = s->loops[index];

	(void)loop;
	fl->err = s->t->chan_open(s, index, &fl->ch);
	for (unsigned i = 0; i < s->o.readers && !fl->err; i++)
		fl->err = worker_start(fl);
	/* corio_pool_create returns once every loop runs, before (or while)
	 * its on_start does: fuse_server_start waits here for fl->err. */
	pthread_mutex_lock(&s->wlock);
	s->started++;
	pthread_cond_broadcast(&s->wcond);
	pthread_mutex_unlock(&s->wlock);
}

/* On loop @arg: stop reading. Workers waiting for a request are cancelled;
 * those handling one answer it and end. */
static void stop_loop(void *arg)
{
	struct floop *fl = arg;

	fl->stopping = true;
	for (struct worker *w = fl->waiting; w; w = w->next) {
		w->cancelled = true;
		corio_cancel(w->self);
	}
}

/* ------------------------------------------------------------------ mount */

static int say(char *why, size_t len, int err, const char *fmt, ...)
{
	va_list ap;

	if (why && len) {
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return err;
}

/* A mount point must exist, be a directory and not be one already. The
 * kernel would stack a second mount on a busy one without complaint. */
static int check_mountpoint(const char *mnt, char *why, size_t len)
{
	struct statx st;

	if (statx(AT_FDCWD, mnt, AT_NO_AUTOMOUNT, STATX_TYPE, &st) < 0) {
		int e = errno;

		if (e == ENOENT)
			return say(why, len, -e, "mount point %s does not exist", mnt);
		if (e == ENOTCONN || e == ECONNABORTED)
			return say(why, len, -e,
				   "mount point %s is a FUSE mount whose server is gone "
				   "(unmount it: umount -l %s)",
				   mnt, mnt);
		return say(why, len, -e, "mount point %s: %s", mnt, strerror(e));
	}
	if (!S_ISDIR(st.stx_mode))
		return say(why, len, -ENOTDIR, "mount point %s is not a directory", mnt);
	if ((st.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
	    (st.stx_attributes & STATX_ATTR_MOUNT_ROOT))
		return say(why, len, -EBUSY,
			   "mount point %s is busy: something is mounted there already", mnt);
	return 0;
}

static int do_mount(struct fuse_server *s, char *why, size_t len)
{
	char opts[256];
	int err;

	err = check_mountpoint(s->mnt, why, len);
	if (err)
		return err;
	s->devfd = open("/dev/fuse", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (s->devfd < 0) {
		err = -errno;
		if (err == -ENOENT || err == -ENODEV)
			return say(why, len, err, "no /dev/fuse: the kernel has no FUSE "
				   "(modprobe fuse)");
		return say(why, len, err, "cannot open /dev/fuse: %s", strerror(-err));
	}
	/* The same options libfuse passes, and max_read so that no read asks
	 * for more than an answer buffer holds. */
	snprintf(opts, sizeof(opts),
		 "fd=%d,rootmode=%o,user_id=%u,group_id=%u,default_permissions,allow_other,"
		 "max_read=%zu",
		 s->devfd, S_IFDIR, getuid(), getgid(), s->max_read);
	if (mount(s->source, s->mnt, "fuse.corio", MS_NOSUID | MS_NODEV, opts) < 0) {
		err = -errno;
		if (err == -EPERM)
			return say(why, len, err, "mounting %s needs root (CAP_SYS_ADMIN)",
				   s->mnt);
		if (err == -EBUSY)
			return say(why, len, err, "mount point %s is busy", s->mnt);
		return say(why, len, err, "mount on %s failed: %s", s->mnt, strerror(-err));
	}
	s->mounted = true;
	return 0;
}

/* Unmount; a busy mount is detached lazily (see the head of the file). */
static void do_unmount(struct fuse_server *s)
{
	if (!s->mounted)
		return;
	s->mounted = false;
	if (umount2(s->mnt, 0) == 0)
		return;
	if (errno == EBUSY && umount2(s->mnt, MNT_DETACH) == 0) {
		s->lazy_unmount = true;
		fprintf(stderr, "fuse: %s was busy: detached; files still open on it "
				"will get ENOTCONN\n", s->mnt);
		return;
	}
	/* EINVAL: not mounted any more (unmounted from outside). */
	if (errno != EINVAL)
		fprintf(stderr, "fuse: cannot unmount %s: %s\n", s->mnt, strerror(errno));
}

/* ----------------------------------------------------------------- server */

static unsigned cpu_count(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return 1;
	return (unsigned)CPU_COUNT(&set);
}

static void server_free(struct fuse_server *s)
{
	for (unsigned i = 0; s->loops && i < s->nloops; i++) {
		if (s->loops[i] && s->loops[i]->ch)
			s->t->chan_close(s->loops[i]->ch);
		free(s->loops[i]);
	}
	free(s->loops);
	if (s->devfd >= 0)
		close(s->devfd);
	handles_close_all(&s->handles);
	table_free(&s->handles.ids);
	pthread_mutex_destroy(&s->handles.lock);
	if (s->nodes.hash)
		nodes_free(&s->nodes);
	if (s->endfd >= 0)
		close(s->endfd);
	pthread_mutex_destroy(&s->wlock);
	pthread_cond_destroy(&s->wcond);
	free(s->source);
	free(s->mnt);
	free(s);
}

int fuse_server_start(struct fuse_server **out, const struct fuse_server_opts *opts, char *why,
		      size_t whylen)
{
	struct corio_pool_opts po = {0};
	pthread_condattr_t ca;
	struct fuse_server *s;
	struct statx st;
	int rootfd, err;

	if (!opts || !opts->source)
		return say(why, whylen, -EINVAL, "no source directory");
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->o = *opts;
	s->devfd = s->endfd = -1;
	pthread_mutex_init(&s->wlock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->wcond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&s->handles.lock, NULL);
	s->handles.ids.next = 1; /* id 0 means "none" to table_put */
	s->t = s->o.transport ? s->o.transport : &fuse_dev_transport;
	s->o.readers = s->o.readers ? s->o.readers : DEFAULT_READERS;
	s->o.max_workers = s->o.max_workers ? s->o.max_workers : DEFAULT_MAX_WORKERS;
	if (s->o.max_workers < s->o.readers)
		s->o.max_workers = s->o.readers;
	s->timeout_ns = s->o.timeout_ns > 0 ? s->o.timeout_ns
			: s->o.timeout_ns < 0 ? 0
					      : DEFAULT_TIMEOUT;
	s->max_write = MAX_WRITE;
	s->max_read = MAX_WRITE;
	s->nloops = s->o.threads ? s->o.threads : cpu_count();
	s->source = strdup(s->o.source);
	s->mnt = s->o.mountpoint ? strdup(s->o.mountpoint) : NULL;
	s->endfd = eventfd(0, EFD_CLOEXEC);
	s->loops = calloc(s->nloops, sizeof(*s->loops));
	err = -ENOMEM;
	if (!s->source || (s->o.mountpoint && !s->mnt) || !s->loops)
		goto fail;
	if (s->endfd < 0) {
		err = -errno;
		goto fail;
	}
	for (unsigned i = 0; i < s->nloops; i++) {
		s->loops[i] = calloc(1, sizeof(*s->loops[i]));
		if (!s->loops[i])
			goto fail;
		s->loops[i]->s = s;
		s->loops[i]->index = i;
	}

	rootfd = open(s->source, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		err = say(why, whylen, -errno, "source %s: %s", s->source, strerror(errno));
		goto fail;
	}
	if (statx(rootfd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &st) < 0) {
		err = say(why, whylen, -errno, "source %s: %s", s->source, strerror(errno));
		close(rootfd);
		goto fail;
	}
	err = nodes_init(&s->nodes, rootfd, &st);
	if (err) {
		close(rootfd);
		goto fail;
	}
	umask(0);

	if (s->mnt) {
		err = do_mount(s, why, whylen);
		if (err)
			goto fail;
	}
	po.nloops = s->nloops;
	po.loop = s->o.loop;
	po.on_start = on_start;
	po.arg = s;
	err = corio_pool_create(&s->pool, &po);
	if (err) {
		say(why, whylen, err, "cannot start the loops: %s", strerror(-err));
		goto fail_mounted;
	}
	pthread_mutex_lock(&s->wlock);
	while (s->started < s->nloops)
		pthread_cond_wait(&s->wcond, &s->wlock);
	pthread_mutex_unlock(&s->wlock);
	for (unsigned i = 0; i < s->nloops; i++) {
		if (s->loops[i]->err) {
			err = say(why, whylen, s->loops[i]->err,
				  "loop %u cannot serve the %s transport: %s", i, s->t->name,
				  strerror(-s->loops[i]->err));
			fuse_server_stop(s);
			return err;
		}
	}
	*out = s;
	return 0;

fail_mounted:
	do_unmount(s);
fail:
	server_free(s);
	return err;
}

void fuse_server_stop(struct fuse_server *s)
{
	struct timespec until;
	int rc = 0;

	do_unmount(s);
	atomic_store(&s->stopping, true);
	for (unsigned i = 0; i < s->nloops; i++)
		corio_post(s->pool, i, stop_loop, s->loops[i], 0);

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += STOP_GRACE;
	pthread_mutex_lock(&s->wlock);
	while (s->workers > 0 && rc == 0)
		rc = pthread_cond_timedwait(&s->wcond, &s->wlock, &until);
	if (s->workers > 0)
		fprintf(stderr, "fuse: %u requests still running after %d s: cancelling them\n",
			s->workers, STOP_GRACE);
	pthread_mutex_unlock(&s->wlock);

	corio_pool_destroy(s->pool); /* cancels what is left, joins the loops */
	s->pool = NULL;
	server_free(s);
}
