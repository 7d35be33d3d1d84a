// SPDX-License-Identifier: MIT
/*
 * The subnet and the local transport.
 *
 * All uib devices of a run directory form one IB subnet: a requester finds
 * the device behind a LID or GID by mapping the other devices' shared state
 * (cached per process), and the destination QP through that device's QP
 * table.  Bytes then move with one copy between the two processes'
 * registered buffers, by process_vm_writev/readv; this file is the one
 * place that knows how, so that a wire transport can sit beside it later
 * (DESIGN.md section 4, "Beyond one host").
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "uib.h"

static pthread_mutex_t subnet_lock = PTHREAD_MUTEX_INITIALIZER;
static struct uib_devref *subnet;

static bool dev_has(struct uib_devref *d, const struct ibv_ah_attr *ah,
		    uint8_t *port)
{
	const struct uib_dev_shared *sh = d->st.sh;
	unsigned int p;

	if (atomic_load_explicit(&sh->ready, memory_order_acquire) != 1)
		return false;
	for (p = 0; p < sh->num_ports && p < UIB_MAX_PORTS; p++) {
		bool match;

		if (ah->is_global) {
			uint64_t guid = be64toh(ah->grh.dgid.global.interface_id);

			match = sh->port[p].guid == guid;
		} else {
			match = sh->port[p].lid == ah->dlid;
		}
		if (match) {
			*port = p + 1;
			return true;
		}
	}
	return false;
}

/* Maps devices of the run directory we have not seen yet.  Caller holds
 * subnet_lock. */
static void __subnet_scan(const char *run_dir)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/dev", run_dir);
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		struct uib_devref *r;
		char *dot = strrchr(de->d_name, '.');
		size_t n;

		if (de->d_name[0] == '.' || !dot || strcmp(dot, ".state"))
			continue;
		n = dot - de->d_name;
		if (n >= UIB_NAME_MAX)
			continue;
		for (r = subnet; r; r = r->next)
			if (strlen(r->name) == n &&
			    !strncmp(r->name, de->d_name, n) &&
			    atomic_load(&r->st.sh->ready) == 1)
				break;
		if (r)
			continue;
		r = calloc(1, sizeof(*r));
		if (!r)
			break;
		memcpy(r->name, de->d_name, n);
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (uib_state_open(path, &r->st)) {
			free(r);
			continue;
		}
		r->next = subnet;
		subnet = r;
	}
	closedir(d);
}

struct uib_devref *uib_subnet_find(struct uib_context *ctx,
				   const struct ibv_ah_attr *ah, uint8_t *port)
{
	struct uib_devref *r;
	int pass;

	pthread_mutex_lock(&subnet_lock);
	for (pass = 0; pass < 2; pass++) {
		for (r = subnet; r; r = r->next)
			if (dev_has(r, ah, port)) {
				pthread_mutex_unlock(&subnet_lock);
				return r;
			}
		/* A device added since we last looked. */
		__subnet_scan(ctx->run_dir);
	}
	pthread_mutex_unlock(&subnet_lock);
	return NULL;
}

struct uib_devref *uib_subnet_first(struct uib_context *ctx)
{
	static uint64_t scanned_ns;
	struct uib_devref *head;
	uint64_t now = uib_now_ns();

	pthread_mutex_lock(&subnet_lock);
	/* New devices appear rarely: look for them at most every 100 ms. */
	if (now - scanned_ns > 100000000ull) {
		__subnet_scan(ctx->run_dir);
		scanned_ns = now;
	}
	head = subnet;
	pthread_mutex_unlock(&subnet_lock);
	return head;
}

int uib_peer_resolve(struct uib_peer *p, struct uib_devref *dev, uint8_t port,
		     uint32_t qpn)
{
	struct uib_qp_slot *s = uib_qp_lookup(&dev->st, qpn);
	struct uib_peer n = {};
	int ret;

	if (!s)
		return -ENOENT;
	n.dev = dev;
	n.slot = s;
	n.qpn = qpn;
	n.port = port;
	n.incarnation = atomic_load_explicit(&s->incarnation,
					     memory_order_acquire);
	n.pid = s->pid;
	if (s->srq_fd >= 0)
		ret = uib_qmap_get(s->pid, s->srq_fd, s->srq_uid, UIB_QK_SRQ,
				   &n.rq);
	else
		ret = uib_qmap_get(s->pid, s->rq_fd, s->rq_uid, UIB_QK_RQ,
				   &n.rq);
	ret = ret ?: uib_qmap_get(s->pid, s->rcq_fd, s->rcq_uid, UIB_QK_CQ,
				  &n.rcq);
	if (ret == -EPROTO)
		uib_dbg("QP %u of pid %d: its queues are not sound rings; "
			"not sending to it", qpn, s->pid);
	if (ret)
		return ret;
	*p = n;
	return 0;
}

bool uib_peer_valid(const struct uib_peer *p)
{
	return p->slot &&
	       atomic_load_explicit(&p->slot->state, memory_order_acquire) ==
		       UIB_SLOT_LIVE &&
	       atomic_load_explicit(&p->slot->incarnation,
				    memory_order_acquire) == p->incarnation;
}

int32_t uib_mr_owner_pid(const struct uib_state *st,
			 const struct uib_mr_slot *mr)
{
	if (mr->ctx >= UIB_MAX_CTX)
		return -1;
	return st->sh->ctx[mr->ctx].proc.pid;
}

/* Same process: a plain copy between the two scatter lists. */
static void copy_iov(const struct iovec *dst, int nd, const struct iovec *src,
		     int ns)
{
	size_t doff = 0, soff = 0;
	int di = 0, si = 0;

	while (di < nd && si < ns) {
		size_t n = dst[di].iov_len - doff;

		if (n > src[si].iov_len - soff)
			n = src[si].iov_len - soff;
		memcpy((char *)dst[di].iov_base + doff,
		       (char *)src[si].iov_base + soff, n);
		doff += n;
		soff += n;
		if (doff == dst[di].iov_len) {
			di++;
			doff = 0;
		}
		if (soff == src[si].iov_len) {
			si++;
			soff = 0;
		}
	}
}

static size_t iov_total(const struct iovec *v, int n)
{
	size_t t = 0;
	int i;

	for (i = 0; i < n; i++)
		t += v[i].iov_len;
	return t;
}

/* process_vm_{read,write}v may move less than asked (a fault part way,
 * or more than IOV_MAX pieces); anything short is an error to us. */
static int pvm(bool write, int32_t pid, const struct iovec *local, int nl,
	       const struct iovec *remote, int nr)
{
	size_t want = iov_total(local, nl);
	ssize_t n;

	if (!want)
		return 0;
	if (pid == getpid()) {
		if (write)
			copy_iov(remote, nr, local, nl);
		else
			copy_iov(local, nl, remote, nr);
		return 0;
	}
	do
		n = write ? process_vm_writev(pid, local, nl, remote, nr, 0) :
			    process_vm_readv(pid, local, nl, remote, nr, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == want ? 0 : -EFAULT;
}

/* The peer's segment mapping, through its two-entry cache. */
static char *seg_map(struct uib_peer *p, int32_t pid, int32_t fd,
		     uint64_t ino, size_t *len)
{
	struct uib_segcache *c;
	unsigned int i;

	for (i = 0; i < 2; i++) {
		c = &p->seg[i];
		if (c->base && c->pid == pid && c->fd == fd && c->ino == ino) {
			*len = c->len;
			return c->base;
		}
	}
	c = &p->seg[p->seg_next++ & 1];
	c->base = uib_pmap_get(pid, fd, ino, &c->len);
	c->pid = pid;
	c->fd = fd;
	c->ino = ino;
	*len = c->len;
	return c->base;
}

void uib_target_add(struct uib_target *t, struct uib_peer *p,
		    const struct uib_mr_slot *mr, uint64_t addr, size_t len)
{
	size_t seglen = 0;
	char *base = NULL;

	if (t->n == 0)
		t->mapped = true;
	if (t->mapped && mr->shm_fd >= 0)
		base = seg_map(p, t->pid, mr->shm_fd, mr->shm_ino, &seglen);
	if (base && mr->shm_off + mr->length <= seglen) {
		t->iov[t->n].iov_base = base + mr->shm_off + (addr - mr->addr);
	} else {
		/* Not shared: every piece goes through the kernel. */
		int i;

		for (i = 0; t->mapped && i < t->n; i++)
			t->iov[i].iov_base = (char *)t->iov[i].iov_base +
					     t->iov_remote_delta[i];
		t->mapped = false;
		t->iov[t->n].iov_base = (void *)(uintptr_t)addr;
	}
	t->iov_remote_delta[t->n] = (intptr_t)addr -
				    (intptr_t)t->iov[t->n].iov_base;
	t->iov[t->n].iov_len = len;
	t->n++;
}

int uib_xport_write(const struct uib_target *t, const struct iovec *local,
		    int nl)
{
	if (t->mapped) {
		copy_iov(t->iov, t->n, local, nl);
		return 0;
	}
	return pvm(true, t->pid, local, nl, t->iov, t->n);
}

int uib_xport_read(const struct uib_target *t, const struct iovec *local,
		   int nl)
{
	if (t->mapped) {
		copy_iov(local, nl, t->iov, t->n);
		return 0;
	}
	return pvm(false, t->pid, local, nl, t->iov, t->n);
}
