/*
 * The FUSE server (examples/fuse) mounted for real: the server runs in this
 * process (so that the sanitizers see it, and the test can count its
 * descriptors), the test works on the mount with plain system calls from
 * its own thread, and checks the source directory afterwards. The program
 * itself (build/examples/fuse_server) is run for what only a process can
 * show: a clean stop on SIGTERM, SIGKILL (the mount is left dead:
 * ENOTCONN), the error messages.
 *
 * Under valgrind the server runs as that program instead, itself under
 * valgrind: valgrind runs one thread at a time and lets another run during
 * a system call only if it knows the call may block, which it does not
 * assume of stat, mkdir or unlink; a test thread in such a call on the
 * mount would then wait for ever for a server thread of its own process.
 * CORIO_FUSE_ENTRIES (set by scripts/valgrind.sh) scales the big
 * directory down there.
 *
 * Needs root and /dev/fuse; without either it says SKIPPED and exits 77.
 *
 * No mount is ever left behind: every mount is under one base directory,
 * and a guardian process (a shell, started first) waits for this process
 * to end, however it ends (a failed assertion, a timeout, SIGKILL), then
 * unmounts (lazily) whatever is still mounted there and removes the
 * directory. The guardian also bounds the time: past its deadline it
 * aborts the FUSE connections under the base (fusectl), which ends any
 * wait on them. That matters for a process that serves a mount and uses
 * it: killed, it closes its files one by one, and the close of a file on
 * the mount (a FLUSH) can wait for ever for a server that was itself. The random-operation test
 * prints its seed; CORIO_FUSE_SEED=n replays it.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server.h"
#include "util.h"

static char base[64];
static char bin[PATH_MAX];
static int dirs; /* counter for fresh directories under base */

/* ------------------------------------------------------------- helpers */

static void mkpath(char *out, size_t len, const char *what)
{
	snprintf(out, len, "%s/%s%d", base, what, ++dirs);
	assert_int_equal(mkdir(out, 0755), 0);
}

static bool is_mounted(const char *path)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[4096], mp[PATH_MAX];
	bool found = false;

	assert_non_null(f);
	while (!found && fgets(line, sizeof(line), f))
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && !strcmp(mp, path))
			found = true;
	fclose(f);
	return found;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

struct proc {
	pid_t pid;
	int out, err; /* its stdout and stderr */
};

static void spawn(struct proc *p, const char *const argv[]);
static int reap(struct proc *p, char *err, size_t len);
static void first_line(struct proc *p, char *buf, size_t len);

/* The server, mounted at a fresh directory: in this process, or (under
 * valgrind) as the program, under valgrind too. */
struct mount {
	char src[PATH_MAX], mnt[PATH_MAX];
	struct fuse_server *s; /* NULL: the program */
	struct proc pr;
};

static void mount_up(struct mount *m)
{
	struct fuse_server_opts o = {0};
	char why[512] = "";
	int err;

	mkpath(m->src, sizeof(m->src), "src");
	mkpath(m->mnt, sizeof(m->mnt), "mnt");
	m->s = NULL;
	if (t_under_valgrind()) {
		char log[PATH_MAX], line[PATH_MAX];
		const char *argv[] = {"/usr/bin/valgrind", "-q", "--error-exitcode=99",
				      "--leak-check=full", "--errors-for-leak-kinds=definite",
				      log, bin, "-t", "2", m->src, m->mnt, NULL};

		snprintf(log, sizeof(log), "--log-file=%s/server.%d.log", base, dirs);
		spawn(&m->pr, argv);
		first_line(&m->pr, line, sizeof(line));
		assert_true(!strncmp(line, "mounted ", 8));
	} else {
		o.source = m->src;
		o.mountpoint = m->mnt;
		o.threads = 2;
		err = fuse_server_start(&m->s, &o, why, sizeof(why));
		if (err)
			fprintf(stderr, "fuse_server_start: %s\n", why);
		assert_int_equal(err, 0);
	}
	assert_true(is_mounted(m->mnt));
}

static void mount_down(struct mount *m)
{
	char err[8192];
	int rc;

	if (m->s) {
		fuse_server_stop(m->s);
	} else {
		kill(m->pr.pid, SIGTERM);
		rc = reap(&m->pr, err, sizeof(err));
		if (rc) { /* 99: valgrind found errors; its log is under base */
			char cmd[PATH_MAX];

			fprintf(stderr, "server exit %d:\n%s\n", rc, err);
			snprintf(cmd, sizeof(cmd), "cat %s/server.*.log >&2", base);
			if (system(cmd))
				fprintf(stderr, "(no valgrind log)\n");
		}
		assert_int_equal(rc, 0);
	}
	assert_false(is_mounted(m->mnt));
}

static void path_of(char *out, const char *dir, const char *name)
{
	if (snprintf(out, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX)
		fail();
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
}

static ssize_t read_file(const char *path, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n, got = 0;

	if (fd < 0)
		return -errno;
	while ((n = read(fd, (char *)buf + got, len - (size_t)got)) > 0)
		got += n;
	close(fd);
	return n < 0 ? -1 : got;
}

/* How many entries (without . and ..) of @dir; with @stat_each, each one is
 * stat'ed too (READDIRPLUS and LOOKUP). */
static int list_dir(const char *dir, bool stat_each)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	struct stat st;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (stat_each)
			assert_int_equal(fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW), 0);
		n++;
	}
	closedir(d);
	return n;
}

static unsigned entries(void)
{
	const char *e = getenv("CORIO_FUSE_ENTRIES");

	return e && *e ? (unsigned)atoi(e) : 10000;
}

/* ------------------------------------------------------------ workload */

/* The file workload through the mount, then the source checked. */
static void workload(void **state)
{
	struct mount m;
	char p[PATH_MAX], q[PATH_MAX], r[PATH_MAX], buf[8192], data[8192];
	struct stat st, st2;
	struct statfs sf, sf2;
	int fd, fd2, fds0 = count_fds();
	unsigned n = entries();

	(void)state;
	mount_up(&m);

	/* create, write at offsets, read back */
	path_of(p, m.mnt, "file");
	fd = open(p, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	assert_true(fd >= 0);
	t_fill(data, sizeof(data), 1);
	assert_int_equal(pwrite(fd, data, 4096, 0), 4096);
	assert_int_equal(pwrite(fd, data + 4096, 4096, 10000), 4096);
	assert_int_equal(pread(fd, buf, 4096, 10000), 4096);
	assert_memory_equal(buf, data + 4096, 4096);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 14096);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(fsync(fd), 0);
	assert_int_equal(fdatasync(fd), 0);
	/* the hole reads as zeroes */
	assert_int_equal(pread(fd, buf, 100, 5000), 100);
	for (int i = 0; i < 100; i++)
		assert_int_equal(buf[i], 0);
	assert_int_equal(close(fd), 0);
	path_of(q, m.src, "file");
	assert_int_equal(read_file(q, buf, sizeof(buf)), sizeof(buf));
	assert_memory_equal(buf, data, 4096);

	/* truncate: down through a path, up through a descriptor */
	assert_int_equal(truncate(p, 3000), 0);
	assert_int_equal(stat(q, &st), 0);
	assert_int_equal(st.st_size, 3000);
	fd = open(p, O_RDWR | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 5000), 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 5000);
	assert_int_equal(close(fd), 0);
	assert_int_equal(stat(q, &st), 0);
	assert_int_equal(st.st_size, 5000);

	/* attributes */
	assert_int_equal(chmod(p, 0600), 0);
	assert_int_equal(chown(p, 1234, 5678), 0);
	struct timespec ts[2] = {{1000000000, 5}, {1100000000, 7}};
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	assert_int_equal(stat(q, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_uid, 1234);
	assert_int_equal(st.st_gid, 5678);
	assert_int_equal(st.st_mtim.tv_sec, 1100000000);
	assert_int_equal(st.st_mtim.tv_nsec, 7);

	/* rename across directories */
	path_of(r, m.mnt, "d1");
	assert_int_equal(mkdir(r, 0750), 0);
	path_of(r, m.mnt, "d2");
	assert_int_equal(mkdir(r, 0750), 0);
	path_of(r, m.mnt, "d1/moved");
	assert_int_equal(rename(p, r), 0);
	path_of(q, m.mnt, "d2/moved");
	assert_int_equal(rename(r, q), 0);
	path_of(r, m.src, "d2/moved");
	assert_int_equal(stat(r, &st), 0);
	assert_int_equal(st.st_size, 5000);
	path_of(r, m.src, "file");
	assert_int_equal(stat(r, &st), -1);
	assert_int_equal(errno, ENOENT);

	/* hard link: one inode, two names, in the mount as in the source */
	path_of(p, m.mnt, "d1/hard");
	assert_int_equal(link(q, p), 0);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(stat(q, &st2), 0);
	assert_int_equal(st.st_ino, st2.st_ino);
	assert_int_equal(st.st_nlink, 2);
	path_of(r, m.src, "d1/hard");
	assert_int_equal(stat(r, &st), 0);
	assert_int_equal(st.st_nlink, 2);

	/* symbolic link */
	path_of(p, m.mnt, "d1/sym");
	assert_int_equal(symlink("../d2/moved", p), 0);
	assert_int_equal(readlink(p, buf, sizeof(buf)), 11);
	assert_memory_equal(buf, "../d2/moved", 11);
	assert_int_equal(stat(p, &st), 0); /* followed, through the mount */
	assert_int_equal(st.st_size, 5000);
	path_of(r, m.src, "d1/sym");
	assert_int_equal(lstat(r, &st), 0);
	assert_true(S_ISLNK(st.st_mode));

	/* errors from the source reach the caller as the same errno */
	path_of(p, m.mnt, "nothing");
	assert_int_equal(open(p, O_RDONLY), -1);
	assert_int_equal(errno, ENOENT);
	path_of(p, m.mnt, "d1");
	assert_int_equal(mkdir(p, 0700), -1);
	assert_int_equal(errno, EEXIST);
	assert_int_equal(rmdir(p), -1);
	assert_int_equal(errno, ENOTEMPTY);
	assert_int_equal(unlink(p), -1);
	assert_int_equal(errno, EISDIR);
	path_of(q, m.mnt, "d2/moved");
	path_of(p, m.mnt, "d1/hard");
	assert_int_equal(renameat2(AT_FDCWD, q, AT_FDCWD, p, RENAME_NOREPLACE), -1);
	assert_int_equal(errno, EEXIST);
	path_of(p, m.mnt, "d1/hard/x");
	assert_int_equal(open(p, O_RDONLY), -1);
	assert_int_equal(errno, ENOTDIR);

	/* statfs is the source's */
	assert_int_equal(statfs(m.mnt, &sf), 0);
	assert_int_equal(statfs(m.src, &sf2), 0);
	assert_int_equal(sf.f_blocks, sf2.f_blocks);
	assert_int_equal(sf.f_bsize, sf2.f_bsize);

	/* unlink while open: the name goes, the file stays usable */
	path_of(p, m.mnt, "open-unlinked");
	fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	fd2 = open(p, O_RDONLY | O_CLOEXEC);
	assert_true(fd2 >= 0);
	assert_int_equal(unlink(p), 0);
	path_of(q, m.src, "open-unlinked");
	assert_int_equal(access(q, F_OK), -1);
	assert_int_equal(write(fd, "still here", 10), 10);
	assert_int_equal(fsync(fd), 0);
	assert_int_equal(pread(fd2, buf, 10, 0), 10);
	assert_memory_equal(buf, "still here", 10);
	assert_int_equal(close(fd), 0);
	assert_int_equal(close(fd2), 0);

	/* fallocate: allocate, then punch a hole */
	path_of(p, m.mnt, "falloc");
	fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(fallocate(fd, 0, 0, 65536), 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 65536);
	memset(data, 'x', 8192);
	assert_int_equal(pwrite(fd, data, 8192, 0), 8192);
	assert_int_equal(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096), 0);
	assert_int_equal(close(fd), 0);
	path_of(q, m.src, "falloc");
	assert_int_equal(read_file(q, buf, 8192), 8192);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(buf[i], 0);
	assert_int_equal(buf[4096], 'x');

	/* a directory of many entries: made through the mount, listed
	 * through it (READDIR), then stat'ed entry by entry (READDIRPLUS and
	 * LOOKUP), and compared with the source */
	path_of(p, m.mnt, "many");
	assert_int_equal(mkdir(p, 0755), 0);
	for (unsigned i = 0; i < n; i++) {
		if (snprintf(q, sizeof(q), "%s/many/entry-%u", m.mnt, i) >= (int)sizeof(q))
			fail();
		fd = open(q, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		assert_true(fd >= 0);
		assert_int_equal(close(fd), 0);
	}
	assert_int_equal(list_dir(p, false), (int)n);
	assert_int_equal(list_dir(p, true), (int)n);
	path_of(q, m.src, "many");
	assert_int_equal(list_dir(q, false), (int)n);

	mount_down(&m);
	/* every file and inode descriptor closed: none leaked */
	if (!t_under_valgrind())
		assert_int_equal(count_fds(), fds0);
	t_rmdir_r(m.src);
}

/* ----------------------------------------------------- the differential */

#define FSX_MAX (256 * 1024)

static uint64_t rnd_state;

static uint64_t rnd(void)
{
	/* xorshift64*: deterministic for a seed, nothing shared */
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return rnd_state * 0x2545f4914f6cdd1dull;
}

static void compare_files(int a, int b, unsigned op)
{
	static char x[FSX_MAX], y[FSX_MAX];
	struct stat sa, sb;

	assert_int_equal(fstat(a, &sa), 0);
	assert_int_equal(fstat(b, &sb), 0);
	if (sa.st_size != sb.st_size)
		fprintf(stderr, "fsx: after op %u, size %lld != %lld\n", op,
			(long long)sa.st_size, (long long)sb.st_size);
	assert_int_equal(sa.st_size, sb.st_size);
	assert_int_equal(pread(a, x, FSX_MAX, 0), sa.st_size);
	assert_int_equal(pread(b, y, FSX_MAX, 0), sb.st_size);
	for (off_t i = 0; i < sa.st_size; i++)
		if (x[i] != y[i]) {
			fprintf(stderr, "fsx: after op %u, byte %lld differs\n", op, (long long)i);
			fail();
		}
}

/*
 * fsx: random writes, reads, truncates, fallocates and mmap reads, each
 * applied through the mount and to a reference file outside it; every
 * result compared, and the files byte for byte every 100 operations and at
 * the end (the source file too).
 */
static void fsx(void **state)
{
	static char wbuf[65536], ra[65536], rb[65536];
	const char *env = getenv("CORIO_FUSE_SEED");
	uint64_t seed = env && *env ? strtoull(env, NULL, 0) : 20261204;
	unsigned nops = t_under_valgrind() ? 1000 : 4000;
	struct mount m;
	char p[PATH_MAX], ref[PATH_MAX], src[PATH_MAX];
	int a, b, s;

	(void)state;
	fprintf(stderr, "fsx: seed %llu, %u operations (CORIO_FUSE_SEED=n to replay)\n",
		(unsigned long long)seed, nops);
	rnd_state = seed | 1;
	mount_up(&m);
	mkpath(ref, sizeof(ref), "ref");
	path_of(p, m.mnt, "fsx");
	strcat(ref, "/fsx");
	a = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	b = open(ref, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	assert_true(a >= 0 && b >= 0);

	for (unsigned op = 1; op <= nops; op++) {
		unsigned kind = (unsigned)(rnd() % 100);
		off_t off = (off_t)(rnd() % (FSX_MAX - sizeof(wbuf)));
		size_t len = 1 + (size_t)(rnd() % sizeof(wbuf));
		struct stat st;
		ssize_t x, y;

		if (kind < 35) { /* write */
			t_fill(wbuf, len, (unsigned)rnd());
			assert_int_equal(pwrite(a, wbuf, len, off), (ssize_t)len);
			assert_int_equal(pwrite(b, wbuf, len, off), (ssize_t)len);
		} else if (kind < 65) { /* read */
			x = pread(a, ra, len, off);
			y = pread(b, rb, len, off);
			assert_int_equal(x, y);
			assert_true(x >= 0);
			assert_memory_equal(ra, rb, (size_t)x);
		} else if (kind < 75) { /* truncate */
			off_t to = (off_t)(rnd() % FSX_MAX);

			assert_int_equal(ftruncate(a, to), 0);
			assert_int_equal(ftruncate(b, to), 0);
		} else if (kind < 85) { /* fallocate, of several kinds */
			static const int modes[] = {0, FALLOC_FL_KEEP_SIZE,
						    FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
						    FALLOC_FL_ZERO_RANGE};
			int mode = modes[rnd() % 4];
			int ra_ = fallocate(a, mode, off, (off_t)len) ? errno : 0;
			int rb_ = fallocate(b, mode, off, (off_t)len) ? errno : 0;

			assert_int_equal(ra_, rb_);
		} else if (kind < 95) { /* mmap read */
			assert_int_equal(fstat(a, &st), 0);
			if (st.st_size > 0) {
				size_t l = (size_t)st.st_size;
				char *ma = mmap(NULL, l, PROT_READ, MAP_SHARED, a, 0);

				assert_true(ma != MAP_FAILED);
				off = (off_t)(rnd() % l);
				len = (size_t)(rnd() % (l - (size_t)off)) + 1;
				if (len > sizeof(rb))
					len = sizeof(rb);
				assert_int_equal(pread(b, rb, len, off), (ssize_t)len);
				assert_memory_equal(ma + off, rb, len);
				munmap(ma, l);
			}
		} else { /* close and open again */
			assert_int_equal(close(a), 0);
			a = open(p, O_RDWR | O_CLOEXEC);
			assert_true(a >= 0);
		}
		if (op % 100 == 0)
			compare_files(a, b, op);
	}
	compare_files(a, b, nops);
	assert_int_equal(fsync(a), 0);
	assert_int_equal(close(a), 0);
	/* the source itself holds what the reference holds */
	path_of(src, m.src, "fsx");
	s = open(src, O_RDONLY | O_CLOEXEC);
	assert_true(s >= 0);
	compare_files(s, b, nops);
	close(s);
	close(b);
	mount_down(&m);
	t_rmdir_r(m.src);
}

/* ------------------------------------------------- unmount under load */

struct loader {
	pthread_t t;
	char dir[PATH_MAX];
	sem_t *started;
	unsigned ops;
	int last_err;
};

static void *load_main(void *arg)
{
	struct loader *l = arg;
	char p[32], buf[4096];
	struct stat st;
	/* Relative to the directory's descriptor: after the lazy unmount
	 * the path leads elsewhere, the descriptor still into the mount. */
	int dfd = open(l->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), fd, held = -1;

	memset(buf, 'l', sizeof(buf));
	while (dfd >= 0) {
		snprintf(p, sizeof(p), "f%u", l->ops % 16);
		fd = openat(dfd, p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0)
			break;
		if (pwrite(fd, buf, sizeof(buf), 0) != sizeof(buf) ||
		    pread(fd, buf, sizeof(buf), 0) != sizeof(buf) || fstat(fd, &st) < 0) {
			close(fd);
			break;
		}
		/* keep one file open across iterations: the mount stays busy */
		if (held >= 0)
			close(held);
		held = fd;
		if (++l->ops == 50)
			sem_post(l->started);
	}
	l->last_err = errno;
	if (held >= 0)
		close(held);
	if (dfd >= 0)
		close(dfd);
	if (l->ops < 50)
		sem_post(l->started);
	return NULL;
}

static void unmount_under_load(void **state)
{
	enum { NLOAD = 4 };
	struct loader l[NLOAD];
	struct fuse_server_stats st;
	struct mount m;
	sem_t started;
	char p[PATH_MAX];
	int fds0 = count_fds(), fd;

	(void)state;
	mount_up(&m);
	assert_int_equal(sem_init(&started, 0, 0), 0);
	for (int i = 0; i < NLOAD; i++) {
		memset(&l[i], 0, sizeof(l[i]));
		if (snprintf(l[i].dir, sizeof(l[i].dir), "%s/load%d", m.mnt, i) >=
		    (int)sizeof(l[i].dir))
			fail();
		assert_int_equal(mkdir(l[i].dir, 0755), 0);
		l[i].started = &started;
		assert_int_equal(pthread_create(&l[i].t, NULL, load_main, &l[i]), 0);
	}
	for (int i = 0; i < NLOAD; i++)
		assert_int_equal(sem_wait(&started), 0);
	path_of(p, m.mnt, "held");
	fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);

	/* Stop with every loader busy on the mount and a file held open. */
	if (m.s) {
		fuse_server_stats(m.s, &st);
		assert_true(st.requests > 0);
	}
	mount_down(&m);
	for (int i = 0; i < NLOAD; i++) {
		assert_int_equal(pthread_join(l[i].t, NULL), 0);
		assert_true(l[i].ops >= 50);
		/* the connection was aborted under them */
		if (l[i].last_err != ENOTCONN && l[i].last_err != ECONNABORTED)
			fprintf(stderr, "loader %d: %s\n", i, strerror(l[i].last_err));
		assert_true(l[i].last_err == ENOTCONN || l[i].last_err == ECONNABORTED);
	}
	assert_int_equal(write(fd, "x", 1), -1);
	assert_true(errno == ENOTCONN || errno == ECONNABORTED);
	/* its FLUSH fails the same way; the descriptor is closed all the same */
	if (close(fd))
		assert_int_equal(errno, ENOTCONN);
	sem_destroy(&started);
	assert_int_equal(count_fds(), fds0);
	t_rmdir_r(m.src);
}

/* ------------------------------------------------------- the program */

static void spawn(struct proc *p, const char *const argv[])
{
	int o[2], e[2];

	assert_int_equal(pipe2(o, O_CLOEXEC), 0);
	assert_int_equal(pipe2(e, O_CLOEXEC), 0);
	p->pid = fork();
	assert_true(p->pid >= 0);
	if (p->pid == 0) {
		dup2(o[1], 1);
		dup2(e[1], 2);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(o[1]);
	close(e[1]);
	p->out = o[0];
	p->err = e[0];
}

/* Read @fd to its end (the process exited or closed it). */
static void slurp(int fd, char *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got + 1 < len && (n = read(fd, buf + got, len - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = 0;
}

/* The first line the program prints on stdout. */
static void first_line(struct proc *p, char *buf, size_t len)
{
	size_t got = 0;

	while (got + 1 < len && read(p->out, buf + got, 1) == 1 && buf[got] != '\n')
		got++;
	buf[got] = 0;
}

static int reap(struct proc *p, char *err, size_t len)
{
	int st;

	slurp(p->err, err, len);
	assert_int_equal(waitpid(p->pid, &st, 0), p->pid);
	close(p->out);
	close(p->err);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void start_program(struct proc *p, const char *src, const char *mnt)
{
	const char *argv[] = {bin, "-t", "2", src, mnt, NULL};
	char line[PATH_MAX * 2 + 32], want[PATH_MAX * 2 + 32];

	spawn(p, argv);
	first_line(p, line, sizeof(line));
	snprintf(want, sizeof(want), "mounted %s on %s", src, mnt);
	assert_string_equal(line, want);
	assert_true(is_mounted(mnt));
}

/* The program on fresh directories, with a file written through it. */
static void program_with_file(struct proc *pr, char *src, char *mnt)
{
	char p[PATH_MAX];

	mkpath(src, PATH_MAX, "src");
	mkpath(mnt, PATH_MAX, "mnt");
	start_program(pr, src, mnt);
	path_of(p, mnt, "f");
	write_file(p, "hello", 5);
}

/* SIGTERM: unmounted, exit 0. An unmount from outside stops it too. */
static void program_stops(void **state)
{
	char src[PATH_MAX], mnt[PATH_MAX], p[PATH_MAX], err[4096], buf[16];
	struct proc pr;

	(void)state;
	program_with_file(&pr, src, mnt);
	kill(pr.pid, SIGTERM);
	assert_int_equal(reap(&pr, err, sizeof(err)), 0);
	assert_false(is_mounted(mnt));
	assert_non_null(strstr(err, "unmounting"));
	path_of(p, src, "f");
	assert_int_equal(read_file(p, buf, sizeof(buf)), 5);

	start_program(&pr, src, mnt);
	assert_int_equal(umount2(mnt, 0), 0);
	assert_int_equal(reap(&pr, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "unmounted from outside"));
	t_rmdir_r(src);
}

/* SIGKILL: the mount is left dead (ENOTCONN), the program refuses it with
 * a clear message, and it can be unmounted. */
static void program_killed(void **state)
{
	char src[PATH_MAX], mnt[PATH_MAX], err[4096];
	const char *argv[] = {bin, NULL, NULL, NULL};
	struct proc pr;
	struct stat st;

	(void)state;
	program_with_file(&pr, src, mnt);
	kill(pr.pid, SIGKILL);
	assert_int_equal(reap(&pr, err, sizeof(err)), 128 + SIGKILL);
	/* The first access may still see the abort itself (ECONNABORTED, on
	 * Linux 6.18); from then on the mount says ENOTCONN. */
	assert_int_equal(stat(mnt, &st), -1);
	assert_true(errno == ENOTCONN || errno == ECONNABORTED);
	assert_int_equal(stat(mnt, &st), -1);
	assert_int_equal(errno, ENOTCONN);

	argv[1] = src;
	argv[2] = mnt;
	spawn(&pr, argv);
	assert_int_equal(reap(&pr, err, sizeof(err)), 1);
	assert_non_null(strstr(err, "server is gone"));

	assert_int_equal(umount2(mnt, MNT_DETACH), 0);
	assert_int_equal(stat(mnt, &st), 0);
	assert_false(is_mounted(mnt));
	t_rmdir_r(src);
}

/* A busy or missing mount point, the io_uring transport: clear errors. */
static void program_errors(void **state)
{
	char src[PATH_MAX], missing[PATH_MAX + 16], err[4096];
	const char *argv[] = {bin, NULL, NULL, NULL, NULL, NULL};
	struct mount m;
	struct proc pr;

	(void)state;
	mount_up(&m);
	mkpath(src, sizeof(src), "src");
	argv[1] = src;
	argv[2] = m.mnt;
	spawn(&pr, argv);
	assert_int_equal(reap(&pr, err, sizeof(err)), 1);
	assert_non_null(strstr(err, "is busy"));

	snprintf(missing, sizeof(missing), "%s/not-there", base);
	argv[2] = missing;
	spawn(&pr, argv);
	assert_int_equal(reap(&pr, err, sizeof(err)), 1);
	assert_non_null(strstr(err, "does not exist"));

	argv[1] = "--transport";
	argv[2] = "uring";
	argv[3] = src;
	argv[4] = missing;
	spawn(&pr, argv);
	assert_int_equal(reap(&pr, err, sizeof(err)), 2);
	assert_non_null(strstr(err, "io_uring transport is not available yet"));

	mount_down(&m);
	t_rmdir_r(m.src);
	t_rmdir_r(src);
}

/* -------------------------------------------------------------- set-up */

static void skip_loudly(const char *why)
{
	fprintf(stderr, "SKIPPED: %s\n", why);
	exit(77);
}

/*
 * A shell that outlives us: when our end of its standard input closes (we
 * ended, however), or its deadline passes first, it aborts the FUSE
 * connections of the mounts left under base (their fusectl "abort" file,
 * named by the mount's device number), unmounts them lazily and removes
 * base.
 */
static void start_guardian(int deadline)
{
	static const char script[] =
		"read -t \"$2\" _\n"
		"mountpoint -q /sys/fs/fuse/connections || "
		"mount -t fusectl none /sys/fs/fuse/connections 2>/dev/null\n"
		"awk -v b=\"$1/\" 'index($5, b) == 1 { split($3, d, \":\"); print d[2], $5 }' "
		"/proc/self/mountinfo | sort -r -k2 | while read dev m; do\n"
		"  echo 1 > /sys/fs/fuse/connections/$dev/abort 2>/dev/null\n"
		"  umount -l \"$m\"\n"
		"done\n"
		"rm -rf \"$1\"\n";
	char secs[16];
	int p[2];
	pid_t pid;

	snprintf(secs, sizeof(secs), "%d", deadline);
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		setsid(); /* not killed with our process group */
		dup2(p[0], 0);
		execl("/bin/bash", "bash", "-c", script, "bash", base, secs, (char *)NULL);
		_exit(127);
	}
	close(p[0]);
	/* p[1] stays open (close-on-exec) until this process ends. */
}

int main(void)
{
	const char *dir = getenv("CORIO_TEST_BINDIR");
	corio_loop *loop;
	int fd;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(workload),
		cmocka_unit_test(fsx),
		cmocka_unit_test(unmount_under_load),
		cmocka_unit_test(program_stops),
		cmocka_unit_test(program_killed),
		cmocka_unit_test(program_errors),
	};

	if (geteuid() != 0)
		skip_loudly("the FUSE tests mount file systems: they need root");
	fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		skip_loudly("no usable /dev/fuse (modprobe fuse)");
	close(fd);
	/* Exits 77 when this backend cannot run here. */
	loop = t_loop();
	corio_loop_destroy(loop);
	snprintf(bin, sizeof(bin), "%s/examples/fuse_server", dir ? dir : ".");
	if (access(bin, X_OK))
		skip_loudly("examples/fuse_server is not built");

	snprintf(base, sizeof(base), "/tmp/corio-fuse-XXXXXX");
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	/* Bounded: past the deadline the guardian aborts the connections,
	 * which ends any wait on the mounts, and the alarm ends us. */
	start_guardian(t_under_valgrind() ? 700 : 240);
	alarm(t_under_valgrind() ? 720 : 260);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
