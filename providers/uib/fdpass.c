// SPDX-License-Identifier: MIT
/*
 * The fd broker.  See fdpass.h.
 *
 * Lives in uib_core (not only in the provider) because state.c's
 * uib_ctx_notify(), which uibctl calls too, reaches peers through it.
 *
 * Locking: broker_lock guards the broker list, the run directory list and
 * the exported pipe table.  A broker thread takes it only to look a pipe
 * up; it never calls back into the provider.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include "fdpass.h"
#include "state.h"

#define BROKER_MAGIC 0x55494246u	/* "FBIU" */
#define BROKER_TIMEOUT_MS 2000

enum { KIND_MEMFD = 1, KIND_PIPE = 2 };

struct broker_req {
	uint32_t magic;
	uint32_t kind;
	int32_t fd;
	uint32_t reserved;
	uint64_t ino;
};

struct broker_rep {
	uint32_t magic;
	int32_t status;		/* 0: the fd follows (SCM_RIGHTS), else errno */
};

struct broker {
	struct broker *next;
	const void *owner;
	pid_t pid;		/* the process that started it (fork) */
	pthread_t thread;
	int lfd;
	int stop[2];
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t sock_dev;		/* the socket file, to remove only ours */
	ino_t sock_ino;
	uid_t dev_uid;		/* the device's owner, group and mode */
	gid_t dev_gid;
	mode_t dev_mode;
	char dev[UIB_NAME_MAX];
	int slot;
};

struct export_pipe {
	uint64_t ino;
	int fd;
};

enum { MAX_RUN_DIRS = 8, MAX_PIPES = 4096 };

static pthread_mutex_t broker_lock = PTHREAD_MUTEX_INITIALIZER;
static struct broker *brokers;
static char *run_dirs[MAX_RUN_DIRS];
static struct export_pipe pipes[MAX_PIPES];
static unsigned int npipes;

static bool fdpass_debug(void)
{
	static int on = -1;

	if (on < 0) {
		const char *d = getenv("UIB_DEBUG");

		on = d && *d && strcmp(d, "0");
	}
	return on;
}

/* The provider's uib_dbg(), which this file cannot include (uibctl links
 * it too). */
#define fp_dbg(fmt, ...)                                                     \
	do {                                                                 \
		if (fdpass_debug())                                          \
			fprintf(stderr, "uib: " fmt "\n", ##__VA_ARGS__);    \
	} while (0)

int uib_broker_path(const char *run_dir, const char *dev, int ctx_slot,
		    char *buf, size_t len)
{
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path);
	int n = snprintf(buf, len, "%s/dev/%s.ctx/%d.sock", run_dir, dev,
			 ctx_slot);

	if (n < 0 || (size_t)n >= len || (size_t)n >= max)
		return -ENAMETOOLONG;
	return 0;
}

int uib_fdpass_export_pipe(int fd)
{
	struct stat sb;
	int ret = 0;

	if (fstat(fd, &sb))
		return -errno;
	if (!S_ISFIFO(sb.st_mode))
		return -EINVAL;
	pthread_mutex_lock(&broker_lock);
	if (npipes < MAX_PIPES)
		pipes[npipes++] = (struct export_pipe){ sb.st_ino, fd };
	else
		ret = -ENOSPC;
	pthread_mutex_unlock(&broker_lock);
	return ret;
}

void uib_fdpass_unexport_pipe(int fd)
{
	unsigned int i;

	pthread_mutex_lock(&broker_lock);
	for (i = 0; i < npipes; i++)
		if (pipes[i].fd == fd) {
			pipes[i] = pipes[--npipes];
			break;
		}
	pthread_mutex_unlock(&broker_lock);
}

/* Is gid among the groups of process pid (/proc/PID/status, Groups:)? */
static bool proc_in_group(pid_t pid, gid_t gid)
{
	char path[64], line[4096];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *p, *end;

		if (strncmp(line, "Groups:", 7))
			continue;
		for (p = line + 7;; p = end) {
			unsigned long g = strtoul(p, &end, 10);

			if (end == p)
				break;
			if (g == gid)
				found = true;
		}
		break;
	}
	fclose(f);
	return found;
}

/* May the process at the other end of c open this device? */
static bool peer_allowed(const struct broker *b, const struct ucred *cr)
{
	if (cr->uid == 0 || cr->uid == geteuid() || cr->uid == b->dev_uid)
		return true;
	if (b->dev_mode & 0006)
		return true;
	if ((b->dev_mode & 0060) &&
	    (cr->gid == b->dev_gid || proc_in_group(cr->pid, b->dev_gid)))
		return true;
	return false;
}

/* The fd to hand out for a request, opened or dup'ed for the peer; or
 * -errno.  Only exported fds: "uib-" memfds and registered pipes. */
static int export_lookup(const struct broker_req *rq)
{
	char path[64], target[64];
	struct stat sb;
	unsigned int i;
	ssize_t n;
	int wr = -1;

	if (rq->kind == KIND_MEMFD) {
		if (rq->fd < 0 || fstat(rq->fd, &sb) || !S_ISREG(sb.st_mode) ||
		    (uint64_t)sb.st_ino != rq->ino)
			return -ENOENT;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", rq->fd);
		n = readlink(path, target, sizeof(target) - 1);
		if (n < 0)
			return -ENOENT;
		target[n] = 0;
		if (strncmp(target, "/memfd:uib-", 11))
			return -EPERM;
		wr = fcntl(rq->fd, F_DUPFD_CLOEXEC, 0);
		return wr < 0 ? -errno : wr;
	}
	if (rq->kind != KIND_PIPE)
		return -EINVAL;
	pthread_mutex_lock(&broker_lock);
	for (i = 0; i < npipes; i++)
		if (pipes[i].ino == rq->ino) {
			wr = pipes[i].fd;
			break;
		}
	pthread_mutex_unlock(&broker_lock);
	if (wr < 0)
		return -EPERM;
	if (fstat(wr, &sb) || !S_ISFIFO(sb.st_mode) ||
	    (uint64_t)sb.st_ino != rq->ino)
		return -ENOENT;
	/* A description of the peer's own, non-blocking: its O_NONBLOCK
	 * must not change ours. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", wr);
	wr = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	return wr < 0 ? -errno : wr;
}

static void serve_one(struct broker *b, int c)
{
	struct timeval tv = { BROKER_TIMEOUT_MS / 1000, 0 };
	struct broker_rep rep = { BROKER_MAGIC, 0 };
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { &rep, sizeof(rep) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	socklen_t clen = sizeof(struct ucred);
	struct broker_req rq;
	struct ucred cr;
	ssize_t n;
	int fd = -1;

	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &clen))
		return;
	if (!peer_allowed(b, &cr)) {
		fp_dbg("%s: broker of slot %d: refused pid %d (uid %u): not owner or member of group %u",
		       b->dev, b->slot, (int)cr.pid, (unsigned int)cr.uid,
		       (unsigned int)b->dev_gid);
		rep.status = EACCES;
		goto reply;
	}
	do
		n = recv(c, &rq, sizeof(rq), MSG_WAITALL);
	while (n < 0 && errno == EINTR);
	if (n != sizeof(rq) || rq.magic != BROKER_MAGIC)
		return;
	fd = export_lookup(&rq);
	if (fd < 0) {
		rep.status = -fd;
		fp_dbg("%s: broker of slot %d: refused fd %d (kind %u) to pid %d: %s",
		       b->dev, b->slot, rq.fd, rq.kind, (int)cr.pid,
		       strerror(-fd));
		goto reply;
	}
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	CMSG_FIRSTHDR(&mh)->cmsg_level = SOL_SOCKET;
	CMSG_FIRSTHDR(&mh)->cmsg_type = SCM_RIGHTS;
	CMSG_FIRSTHDR(&mh)->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(CMSG_FIRSTHDR(&mh)), &fd, sizeof(int));
reply:
	sendmsg(c, &mh, MSG_NOSIGNAL);
	if (fd >= 0)
		close(fd);
}

static void *broker_thread(void *arg)
{
	struct broker *b = arg;

	for (;;) {
		struct pollfd p[2] = { { b->lfd, POLLIN, 0 },
				       { b->stop[0], POLLIN, 0 } };
		int c;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		if (!(p[0].revents & POLLIN))
			continue;
		c = accept4(b->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		serve_one(b, c);
		close(c);
	}
	return NULL;
}

static void remember_run_dir(const char *run_dir)
{
	int i;

	for (i = 0; i < MAX_RUN_DIRS && run_dirs[i]; i++)
		if (!strcmp(run_dirs[i], run_dir))
			return;
	if (i < MAX_RUN_DIRS)
		run_dirs[i] = strdup(run_dir);
}

static void broker_free(struct broker *b)
{
	if (b->lfd >= 0)
		close(b->lfd);
	if (b->stop[0] >= 0)
		close(b->stop[0]);
	if (b->stop[1] >= 0)
		close(b->stop[1]);
	free(b);
}

int uib_broker_start(const void *owner, const char *run_dir, const char *dev,
		     int ctx_slot, int state_fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	sigset_t all, old;
	struct stat sb;
	struct broker *b;
	int ret;

	if (fstat(state_fd, &sb))
		return -errno;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->lfd = b->stop[0] = b->stop[1] = -1;
	b->owner = owner;
	b->pid = getpid();
	b->dev_uid = sb.st_uid;
	b->dev_gid = sb.st_gid;
	b->dev_mode = sb.st_mode & 0777;
	b->slot = ctx_slot;
	snprintf(b->dev, sizeof(b->dev), "%s", dev);
	ret = uib_broker_path(run_dir, dev, ctx_slot, b->path, sizeof(b->path));
	if (ret)
		goto err;
	if (pipe2(b->stop, O_CLOEXEC)) {
		ret = -errno;
		goto err;
	}
	b->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (b->lfd < 0) {
		ret = -errno;
		goto err;
	}
	/* We hold the slot: a socket already there is a dead holder's. */
	unlink(b->path);
	memcpy(sa.sun_path, b->path, strlen(b->path) + 1);
	if (bind(b->lfd, (struct sockaddr *)&sa, sizeof(sa))) {
		ret = -errno;
		goto err;
	}
	/* Connecting needs write permission on the socket file: give it
	 * exactly to those who may open the device.  Until listen() nobody
	 * can connect, so the order leaves no window. */
	if (chown(b->path, -1, b->dev_gid) && getegid() != b->dev_gid)
		fp_dbg("%s: cannot give %s to group %u: %s", dev, b->path,
		       (unsigned int)b->dev_gid, strerror(errno));
	if (chmod(b->path, b->dev_mode) || stat(b->path, &sb)) {
		ret = -errno;
		goto err_unlink;
	}
	b->sock_dev = sb.st_dev;
	b->sock_ino = sb.st_ino;
	if (listen(b->lfd, 64)) {
		ret = -errno;
		goto err_unlink;
	}

	/* The thread takes none of the program's signals. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = -pthread_create(&b->thread, NULL, broker_thread, b);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret)
		goto err_unlink;

	pthread_mutex_lock(&broker_lock);
	b->next = brokers;
	brokers = b;
	remember_run_dir(run_dir);
	pthread_mutex_unlock(&broker_lock);
	return 0;

err_unlink:
	unlink(b->path);
err:
	fp_dbg("%s: no fd broker for context slot %d (%s): peers of other users cannot reach this process",
	       dev, ctx_slot, strerror(-ret));
	broker_free(b);
	return ret;
}

void uib_broker_stop(const void *owner)
{
	struct broker **bp, *b;
	struct stat sb;

	pthread_mutex_lock(&broker_lock);
	for (bp = &brokers; (b = *bp); bp = &b->next)
		if (b->owner == owner) {
			*bp = b->next;
			break;
		}
	pthread_mutex_unlock(&broker_lock);
	if (!b)
		return;
	/* A forked child has the fds but not the thread, nor the socket. */
	if (b->pid == getpid()) {
		char c = 0;

		if (write(b->stop[1], &c, 1) == 1)
			pthread_join(b->thread, NULL);
		if (!stat(b->path, &sb) && sb.st_dev == b->sock_dev &&
		    sb.st_ino == b->sock_ino)
			unlink(b->path);
	}
	broker_free(b);
}

/* Is fd what the caller asked for: inode ino, a pipe or a regular file? */
static int check_fd(int fd, uint64_t ino, int kind)
{
	struct stat sb;

	if (fstat(fd, &sb))
		return -errno;
	if ((uint64_t)sb.st_ino != ino ||
	    (kind == KIND_PIPE ? !S_ISFIFO(sb.st_mode) : !S_ISREG(sb.st_mode)))
		return -ESRCH;
	return 0;
}

static int broker_ask(const char *path, int32_t pid, int32_t fd, uint64_t ino,
		      int kind)
{
	struct timeval tv = { BROKER_TIMEOUT_MS / 1000, 0 };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct broker_req rq = { BROKER_MAGIC, kind, fd, 0, ino };
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct broker_rep rep;
	struct iovec iov = { &rep, sizeof(rep) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	socklen_t clen = sizeof(struct ucred);
	struct cmsghdr *cm;
	struct ucred cr;
	int s, got = -1, ret;
	ssize_t n;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa))) {
		ret = errno == EACCES || errno == EPERM ? -EACCES : -ESRCH;
		goto out;
	}
	/* A socket left by a dead holder of the slot, or a new holder's. */
	if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cr, &clen) ||
	    cr.pid != pid) {
		ret = -ESRCH;
		goto out;
	}
	if (send(s, &rq, sizeof(rq), MSG_NOSIGNAL) != sizeof(rq)) {
		ret = -EIO;
		goto out;
	}
	do
		n = recvmsg(s, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	for (cm = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL; cm;
	     cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET &&
		    cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&got, CMSG_DATA(cm), sizeof(int));
	if (n != sizeof(rep) || rep.magic != BROKER_MAGIC) {
		ret = -EIO;
		goto out;
	}
	if (rep.status) {
		ret = -rep.status;
		goto out;
	}
	if (got < 0) {
		ret = -EIO;
		goto out;
	}
	ret = check_fd(got, ino, kind);
	if (!ret) {
		ret = got;
		got = -1;
	}
out:
	if (got >= 0)
		close(got);
	close(s);
	return ret;
}

/* /proc/<pid>/fd/<fd>: an fd, or -errno (-EACCES if not permitted). */
static int proc_fd_open(int32_t pid, int32_t fd, uint64_t ino, int flags,
			int kind)
{
	char path[64];
	int f, ret;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	f = open(path, flags | O_CLOEXEC);
	if (f < 0)
		return errno == EPERM ? -EACCES : -errno;
	ret = check_fd(f, ino, kind);
	if (ret) {
		close(f);
		return ret;
	}
	return f;
}

static int kind_of(int flags)
{
	return (flags & O_ACCMODE) == O_WRONLY ? KIND_PIPE : KIND_MEMFD;
}

static void log_refused(int32_t pid, int32_t fd, int kind, int err)
{
	if (err == -EACCES)
		fp_dbg("cannot reach %s fd %d of pid %d: permission denied",
		       kind == KIND_PIPE ? "event pipe" : "memory", fd, pid);
}

int uib_peer_fd_open(const char *run_dir, const char *dev, int ctx_slot,
		     int32_t pid, int32_t fd, uint64_t ino, int flags)
{
	int kind = kind_of(flags);
	char path[PATH_MAX];
	int ret;

	if (pid <= 0 || fd < 0)
		return -EINVAL;
	ret = proc_fd_open(pid, fd, ino, flags, kind);
	if (ret != -EACCES)
		return ret;
	ret = uib_broker_path(run_dir, dev, ctx_slot, path, sizeof(path));
	if (!ret)
		ret = broker_ask(path, pid, fd, ino, kind);
	log_refused(pid, fd, kind, ret);
	return ret;
}

static bool state_name(const char *file, char *name, size_t len)
{
	size_t n = strlen(file);

	if (n <= 6 || strcmp(file + n - 6, ".state") || n - 6 >= len)
		return false;
	memcpy(name, file, n - 6);
	name[n - 6] = 0;
	return true;
}

/* Asks every context of pid on the devices of run_dir. */
static int ask_run_dir(const char *run_dir, int32_t pid, int32_t fd,
		       uint64_t ino, int kind)
{
	char dir[PATH_MAX], path[PATH_MAX], name[UIB_NAME_MAX];
	struct dirent *de;
	int ret = -ESRCH;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/dev", run_dir);
	d = opendir(dir);
	while (d && ret < 0 && ret != -EACCES && (de = readdir(d))) {
		struct uib_state st = { .fd = -1 };
		int i;

		if (!state_name(de->d_name, name, sizeof(name)))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (uib_state_open(path, &st))
			continue;
		for (i = 0; i < UIB_MAX_CTX && ret < 0 && ret != -EACCES;
		     i++) {
			const struct uib_ctx_slot *c = &st.sh->ctx[i];

			if (atomic_load_explicit(&c->state,
						 memory_order_acquire) !=
				    UIB_SLOT_LIVE ||
			    c->proc.pid != pid ||
			    uib_broker_path(run_dir, name, i, path,
					    sizeof(path)))
				continue;
			ret = broker_ask(path, pid, fd, ino, kind);
		}
		uib_state_close(&st);
	}
	if (d)
		closedir(d);
	return ret;
}

int uib_peer_fd_open_pid(int32_t pid, int32_t fd, uint64_t ino, int flags)
{
	char *dirs[MAX_RUN_DIRS] = { 0 };
	int kind = kind_of(flags);
	int i, ret;

	if (pid <= 0 || fd < 0)
		return -EINVAL;
	ret = proc_fd_open(pid, fd, ino, flags, kind);
	if (ret != -EACCES)
		return ret;
	pthread_mutex_lock(&broker_lock);
	for (i = 0; i < MAX_RUN_DIRS && run_dirs[i]; i++)
		dirs[i] = strdup(run_dirs[i]);
	pthread_mutex_unlock(&broker_lock);
	for (i = 0; i < MAX_RUN_DIRS && dirs[i]; i++) {
		if (ret < 0)
			ret = ask_run_dir(dirs[i], pid, fd, ino, kind);
		free(dirs[i]);
	}
	log_refused(pid, fd, kind, ret);
	return ret;
}
