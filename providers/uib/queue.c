// SPDX-License-Identifier: MIT
/*
 * Queue memory: allocation of our own rings (memfd) and the cache of peers'
 * rings we have mapped.  See queue.h for the ring protocols.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue.h"

static uint64_t new_uid(void)
{
	static _Atomic uint64_t counter;
	uint64_t r = 0;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		r = (uint64_t)getpid() << 32;
	return r ^ atomic_fetch_add(&counter, 0x9e3779b97f4a7c15ull);
}

int uib_qbuf_alloc(struct uib_qbuf *qb, enum uib_qkind kind,
		   uint32_t entries, uint32_t stride, uint32_t max_sge)
{
	uint32_t log = 0;
	void *p;
	int ret;

	while ((1u << log) < entries)
		log++;
	qb->len = UIB_QHDR_SIZE + ((size_t)stride << log);
	qb->fd = memfd_create("uib-queue", MFD_CLOEXEC);
	if (qb->fd < 0)
		return -errno;
	if (ftruncate(qb->fd, qb->len)) {
		ret = -errno;
		goto err_fd;
	}
	p = mmap(NULL, qb->len, PROT_READ | PROT_WRITE, MAP_SHARED, qb->fd, 0);
	if (p == MAP_FAILED) {
		ret = -errno;
		goto err_fd;
	}
	qb->hdr = p;
	qb->hdr->uid = new_uid();
	qb->hdr->kind = kind;
	qb->hdr->log_size = log;
	qb->hdr->stride = stride;
	qb->hdr->max_sge = max_sge;
	qb->hdr->owner_pid = getpid();
	return 0;

err_fd:
	close(qb->fd);
	qb->fd = -1;
	return ret;
}

void uib_qbuf_free(struct uib_qbuf *qb)
{
	if (qb->hdr)
		munmap(qb->hdr, qb->len);
	if (qb->fd >= 0)
		close(qb->fd);
	qb->hdr = NULL;
	qb->fd = -1;
}

/*
 * Peers' queues we have mapped, by (pid, fd, uid).  Mappings stay until
 * the peer is found dead: a destroyed queue's memory stays valid (if
 * unused) while we map it, so a stale entry is harmless, and the uid
 * check stops us from using a reused fd number.
 */
struct qmap {
	struct qmap *next;
	int32_t pid;
	int32_t fd;
	uint64_t uid;
	struct uib_qhdr *hdr;
	size_t len;
};

static pthread_mutex_t qmap_lock = PTHREAD_MUTEX_INITIALIZER;
static struct qmap *qmaps;

static struct qmap *qmap_open(int32_t pid, int32_t fd, uint64_t uid)
{
	char path[64];
	struct stat sb;
	struct qmap *m;
	void *p;
	int qfd;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	qfd = open(path, O_RDWR | O_CLOEXEC);
	if (qfd < 0)
		return NULL;
	if (fstat(qfd, &sb) || (size_t)sb.st_size < UIB_QHDR_SIZE) {
		close(qfd);
		return NULL;
	}
	p = mmap(NULL, sb.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, qfd, 0);
	close(qfd);
	if (p == MAP_FAILED)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m || ((struct uib_qhdr *)p)->uid != uid) {
		munmap(p, sb.st_size);
		free(m);
		return NULL;
	}
	m->pid = pid;
	m->fd = fd;
	m->uid = uid;
	m->hdr = p;
	m->len = sb.st_size;
	return m;
}

struct uib_qhdr *uib_qmap_get(int32_t pid, int32_t fd, uint64_t uid)
{
	struct uib_qhdr *hdr = NULL;
	struct qmap *m;

	if (fd < 0)
		return NULL;
	/* Our own queues: the peer is us. */
	pthread_mutex_lock(&qmap_lock);
	for (m = qmaps; m; m = m->next)
		if (m->pid == pid && m->fd == fd && m->uid == uid) {
			hdr = m->hdr;
			break;
		}
	if (!hdr) {
		m = qmap_open(pid, fd, uid);
		if (m) {
			m->next = qmaps;
			qmaps = m;
			hdr = m->hdr;
		}
	}
	pthread_mutex_unlock(&qmap_lock);
	return hdr;
}

void uib_qmap_forget(int32_t pid)
{
	struct qmap **pp, *m;

	pthread_mutex_lock(&qmap_lock);
	for (pp = &qmaps; (m = *pp);) {
		if (m->pid == pid) {
			*pp = m->next;
			munmap(m->hdr, m->len);
			free(m);
		} else {
			pp = &m->next;
		}
	}
	pthread_mutex_unlock(&qmap_lock);
}
