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

#include "fdpass.h"
#include "queue.h"

uint32_t uib_rwqe_stride(uint32_t max_sge)
{
	uint32_t need = sizeof(struct uib_rwqe) +
			max_sge * sizeof(struct uib_rsge), s = 32;

	while (s < need)
		s <<= 1;
	return s;
}

int uib_ring_from_hdr(struct uib_qhdr *h, size_t len, uint64_t uid,
		      enum uib_qkind kind, struct uib_ring *out)
{
	uint32_t log, stride, max_sge = 0;

	if (len < UIB_QHDR_SIZE || h->uid != uid || h->kind != (uint32_t)kind)
		return -EPROTO;
	/* One read of each field: the header may change under us. */
	log = *(volatile uint32_t *)&h->log_size;
	stride = *(volatile uint32_t *)&h->stride;
	if (log > UIB_RING_MAX_LOG)
		return -EPROTO;
	if (kind == UIB_QK_CQ) {
		if (stride != sizeof(struct uib_cqe))
			return -EPROTO;
	} else {
		max_sge = *(volatile uint32_t *)&h->max_sge;
		if (!max_sge || max_sge > UIB_RING_MAX_SGE ||
		    stride != uib_rwqe_stride(max_sge))
			return -EPROTO;
	}
	if (len < UIB_QHDR_SIZE + ((size_t)stride << log))
		return -EPROTO;
	out->hdr = h;
	out->mask = (1u << log) - 1;
	out->stride = stride;
	out->max_sge = max_sge;
	out->kind = kind;
	return 0;
}

int uib_qbuf_alloc(struct uib_qbuf *qb, enum uib_qkind kind,
		   uint32_t entries, uint32_t stride, uint32_t max_sge)
{
	struct uib_qhdr *h;
	uint32_t log = 0;
	struct stat sb;
	void *p;
	int ret;

	while ((1u << log) < entries)
		log++;
	if (log > UIB_RING_MAX_LOG || max_sge > UIB_RING_MAX_SGE)
		return -EINVAL;
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
	if (fstat(qb->fd, &sb)) {
		ret = -errno;
		munmap(p, qb->len);
		goto err_fd;
	}
	h = p;
	/* The memfd's inode number: unique among live memfds, and what a
	 * peer checks after opening /proc/<pid>/fd/<fd>. */
	h->uid = sb.st_ino;
	h->kind = kind;
	h->log_size = log;
	h->stride = stride;
	h->max_sge = max_sge;
	h->owner_pid = getpid();
	h->notify_fd = -1;
	/* Our own view, kept privately like a peer's. */
	qb->r.hdr = h;
	qb->r.mask = (1u << log) - 1;
	qb->r.stride = stride;
	qb->r.max_sge = max_sge;
	qb->r.kind = kind;
	return 0;

err_fd:
	close(qb->fd);
	qb->fd = -1;
	return ret;
}

void uib_qbuf_free(struct uib_qbuf *qb)
{
	if (qb->r.hdr)
		munmap(qb->r.hdr, qb->len);
	if (qb->fd >= 0)
		close(qb->fd);
	qb->r.hdr = NULL;
	qb->fd = -1;
}

/*
 * Peers' memory we have mapped (queues and shared MR segments), by
 * (pid, fd, inode).  Mappings stay until the peer is found dead: memory a
 * peer has freed stays valid (if unused) while we map it, so a stale entry
 * is harmless, and the inode check stops us from using a reused fd number.
 */
struct pmap {
	struct pmap *next;
	int32_t pid;
	int32_t fd;
	uint64_t ino;
	void *base;
	size_t len;
	bool dead;		/* its owner died: base maps nothing of it */
};

static pthread_mutex_t pmap_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pmap *pmaps;

/* Event pipes of peers' completion channels we have opened, by
 * (pid, fd, inode), like pmaps. */
struct nfd {
	struct nfd *next;
	int32_t pid;
	int32_t fd;
	uint64_t ino;
	int wfd;
};

static struct nfd *nfds;

static struct pmap *pmap_open(int32_t pid, int32_t fd, uint64_t ino)
{
	struct stat sb;
	struct pmap *m;
	void *p;
	int mfd;

	/* /proc/<pid>/fd/<fd>, or the peer's fd broker if we are another
	 * user (fdpass.h); either way the inode is checked. */
	mfd = uib_peer_fd_open_pid(pid, fd, ino, O_RDWR);
	if (mfd < 0)
		return NULL;
	if (fstat(mfd, &sb) || (uint64_t)sb.st_ino != ino || !sb.st_size) {
		close(mfd);
		return NULL;
	}
	p = mmap(NULL, sb.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	close(mfd);
	if (p == MAP_FAILED)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m) {
		munmap(p, sb.st_size);
		return NULL;
	}
	m->pid = pid;
	m->fd = fd;
	m->ino = ino;
	m->base = p;
	m->len = sb.st_size;
	return m;
}

void *uib_pmap_get(int32_t pid, int32_t fd, uint64_t ino, size_t *len)
{
	struct pmap *m;
	void *base = NULL;

	if (fd < 0)
		return NULL;
	pthread_mutex_lock(&pmap_lock);
	for (m = pmaps; m; m = m->next)
		if (m->pid == pid && m->fd == fd && m->ino == ino)
			break;
	if (!m) {
		m = pmap_open(pid, fd, ino);
		if (m) {
			m->next = pmaps;
			pmaps = m;
		}
	}
	if (m) {
		base = m->base;
		if (len)
			*len = m->len;
	}
	pthread_mutex_unlock(&pmap_lock);
	return base;
}

int uib_qmap_get(int32_t pid, int32_t fd, uint64_t uid, enum uib_qkind kind,
		 struct uib_ring *out)
{
	size_t len;
	struct uib_qhdr *q = uib_pmap_get(pid, fd, uid, &len);

	if (!q)
		return -ENOENT;
	return uib_ring_from_hdr(q, len, uid, kind, out);
}

void uib_pmap_forget(int32_t pid)
{
	struct nfd **np, *n;
	struct pmap *m;

	pthread_mutex_lock(&pmap_lock);
	for (np = &nfds; (n = *np);) {
		if (n->pid == pid) {
			*np = n->next;
			close(n->wfd);
			free(n);
		} else {
			np = &n->next;
		}
	}
	/*
	 * QPs may still hold pointers into a dead peer's memory, so the
	 * range stays mapped: anonymous memory replaces the peer's memfd,
	 * which frees it, and a late copy lands nowhere that matters.
	 */
	for (m = pmaps; m; m = m->next) {
		if (m->pid != pid || m->dead)
			continue;
		mmap(m->base, m->len, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
		     -1, 0);
		m->dead = true;
	}
	pthread_mutex_unlock(&pmap_lock);
}


static int notify_fd_get(int32_t pid, int32_t fd, uint64_t ino)
{
	struct stat sb;
	struct nfd *n;
	int wfd = -1;

	pthread_mutex_lock(&pmap_lock);
	for (n = nfds; n; n = n->next)
		if (n->pid == pid && n->fd == fd && n->ino == ino) {
			wfd = n->wfd;
			goto out;
		}
	/* A write end of our own: opened through /proc, or handed over by
	 * the owner's fd broker, which checks the inode too (fdpass.h). */
	wfd = uib_peer_fd_open_pid(pid, fd, ino, O_WRONLY | O_NONBLOCK);
	if (wfd < 0) {
		wfd = -1;
		goto out;
	}
	if (fstat(wfd, &sb) || (uint64_t)sb.st_ino != ino ||
	    !S_ISFIFO(sb.st_mode) || !(n = calloc(1, sizeof(*n)))) {
		close(wfd);
		wfd = -1;
		goto out;
	}
	n->pid = pid;
	n->fd = fd;
	n->ino = ino;
	n->wfd = wfd;
	n->next = nfds;
	nfds = n;
out:
	pthread_mutex_unlock(&pmap_lock);
	return wfd;
}

void uib_cq_notify(const struct uib_ring *ring, bool solicited)
{
	struct uib_qhdr *cq = ring->hdr;
	uint32_t a = atomic_load_explicit(&cq->armed, memory_order_acquire);
	uint64_t handle = cq->user_handle;
	int wfd;

	if (a == UIB_CQ_DISARMED || (a == UIB_CQ_ARM_SOLICITED && !solicited))
		return;
	/* One event per arming: whoever disarms sends it. */
	if (!atomic_compare_exchange_strong(&cq->armed, &a, UIB_CQ_DISARMED))
		return;
	wfd = notify_fd_get(cq->owner_pid, cq->notify_fd, cq->notify_ino);
	if (wfd < 0)
		return;
	/* A full pipe means the owner has events it has not read: they
	 * already wake it. */
	if (write(wfd, &handle, sizeof(handle)) < 0)
		return;
}
