// SPDX-License-Identifier: MIT
/*
 * Shared device state: creation, mapping, the robust lock, and the slot
 * allocators for contexts, MR keys and QPNs.  See state.h.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "devtree.h"
#include "fdpass.h"
#include "state.h"

static int map_state(int fd, struct uib_state *st)
{
	void *p;

	p = mmap(NULL, sizeof(struct uib_dev_shared), PROT_READ | PROT_WRITE,
		 MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	st->sh = p;
	st->fd = fd;
	return 0;
}

int uib_state_create(const char *path, const struct uib_dev_config *cfg,
		     struct uib_state *st)
{
	struct uib_dev_shared *sh;
	pthread_mutexattr_t ma;
	unsigned int i;
	int fd, ret;

	/* Owner only until uibctl gives the device its owner, group and
	 * mode (devtree.c): nobody else opens a half-made device. */
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0)
		return -errno;
	/* Sparse: untouched table pages cost nothing. */
	if (ftruncate(fd, sizeof(*sh))) {
		ret = -errno;
		goto err_unlink;
	}
	ret = map_state(fd, st);
	if (ret)
		goto err_unlink;
	if (fchmod(fd, 0600)) {	/* whatever the umask */
		ret = -errno;
		goto err_unmap;
	}

	sh = st->sh;
	sh->magic = UIB_STATE_MAGIC;
	sh->version = UIB_STATE_VERSION;
	sh->size = sizeof(*sh);
	snprintf(sh->name, sizeof(sh->name), "%s", cfg->name);
	sh->uverbs_index = -1;
	sh->num_ports = cfg->num_ports;
	sh->num_vfs = cfg->num_vfs;
	sh->node_guid = cfg->node_guid;
	sh->sys_image_guid = cfg->node_guid;
	atomic_init(&sh->next_pd, 1);

	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	ret = -pthread_mutex_init(&sh->lock, &ma);
	if (!ret)
		ret = -pthread_mutex_init(&sh->atomic_lock, &ma);
	pthread_mutexattr_destroy(&ma);
	if (ret)
		goto err_unmap;

	for (i = 0; i < cfg->num_ports; i++) {
		struct uib_port_shared *port = &sh->port[i];

		atomic_init(&port->state, IBV_PORT_ACTIVE);
		port->lid = cfg->base_lid + i;
		port->sm_lid = 1;
		port->guid = cfg->node_guid + 1 + i;
		port->pkey[0] = 0xffff;
	}
	return 0;

err_unmap:
	munmap(st->sh, sizeof(*st->sh));
err_unlink:
	unlink(path);
	close(fd);
	return ret;
}

/*
 * The header of a state file is input like any other: whoever may write the
 * file may have written anything into it.  Everything later code indexes
 * with or prints is checked here, once; callers that re-read a field from
 * the shared mapping still clamp it.
 */
static bool header_valid(const struct uib_dev_shared *sh, const char *path)
{
	const char *base = strrchr(path, '/');
	size_t n;

	if (sh->magic != UIB_STATE_MAGIC || sh->version != UIB_STATE_VERSION ||
	    sh->size != sizeof(struct uib_dev_shared))
		return false;
	if (atomic_load_explicit(&sh->ready, memory_order_relaxed) > 1 ||
	    sh->num_ports < 1 || sh->num_ports > UIB_MAX_PORTS ||
	    sh->num_vfs > UIB_MAX_VFS || sh->uverbs_index < -1 ||
	    sh->uverbs_index >= UIB_MAX_UVERBS)
		return false;
	n = strnlen(sh->name, UIB_NAME_MAX);
	if (n == 0 || n == UIB_NAME_MAX)
		return false;
	/* <dir>/<name>.state: the name inside must be the file's. */
	base = base ? base + 1 : path;
	if (strlen(base) == n + 6 && !strcmp(base + n, ".state") &&
	    !strncmp(base, sh->name, n))
		return true;
	return false;
}

int uib_state_open(const char *path, struct uib_state *st)
{
	struct stat sb;
	int fd, ret;

	fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb)) {
		ret = -errno;
		goto err;
	}
	/* A file cut short by a killed uibctl is not a device. */
	if (!S_ISREG(sb.st_mode) ||
	    (size_t)sb.st_size < sizeof(struct uib_dev_shared)) {
		ret = -EBADF;
		goto err;
	}
	ret = map_state(fd, st);
	if (ret)
		goto err;
	if (!header_valid(st->sh, path)) {
		uib_state_close(st);
		return -EPROTO;
	}
	return 0;
err:
	close(fd);
	return ret;
}

void uib_state_close(struct uib_state *st)
{
	if (st->sh)
		munmap(st->sh, sizeof(*st->sh));
	if (st->fd >= 0)
		close(st->fd);
	st->sh = NULL;
	st->fd = -1;
}

int uib_state_lock(struct uib_state *st)
{
	int ret = pthread_mutex_lock(&st->sh->lock);

	/*
	 * The previous owner died holding the lock.  Every update under it
	 * is ordered so that a half-done one is a slot left BUSY, which
	 * reclaim treats like the dead owner's other slots; so the tables
	 * are consistent and we only need to say so.
	 */
	if (ret == EOWNERDEAD)
		ret = pthread_mutex_consistent(&st->sh->lock);
	return -ret;
}

void uib_state_unlock(struct uib_state *st)
{
	pthread_mutex_unlock(&st->sh->lock);
}

/* Reads field 22 (start time) of /proc/PID/stat; a zombie (state Z or X)
 * has no start time worth trusting: it is gone but for its exit status. */
static int read_start_time(pid_t pid, uint64_t *start)
{
	char path[64], buf[1024], *p;
	unsigned long long v;
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = 0;
	/* The command name may hold spaces and ')': skip past the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	/* p+2 is field 3 (state); start time is field 22. */
	p += 2;
	if (*p == 'Z' || *p == 'X')
		return -ESRCH;
	for (field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -EIO;
		p++;
	}
	if (sscanf(p, "%llu", &v) != 1)
		return -EIO;
	*start = v;
	return 0;
}

int uib_proc_self(struct uib_proc_id *id)
{
	memset(id, 0, sizeof(*id));
	id->pid = getpid();
	return read_start_time(id->pid, &id->start_time);
}

bool uib_proc_alive(const struct uib_proc_id *id)
{
	uint64_t start;

	if (id->pid <= 0)
		return false;
	if (kill(id->pid, 0) && errno == ESRCH)
		return false;
	/* Same PID, other process: the owner is gone. */
	if (read_start_time(id->pid, &start))
		return false;
	return start == id->start_time;
}

int uib_ctx_attach(struct uib_state *st, int async_fd)
{
	struct uib_proc_id self;
	struct stat sb;
	int i, ret;

	ret = uib_proc_self(&self);
	if (ret)
		return ret;
	if (async_fd >= 0 && fstat(async_fd, &sb))
		return -errno;
	ret = uib_state_lock(st);
	if (ret)
		return ret;
	for (i = 0; i < UIB_MAX_CTX; i++) {
		struct uib_ctx_slot *c = &st->sh->ctx[i];

		if (atomic_load_explicit(&c->state, memory_order_relaxed) !=
		    UIB_SLOT_FREE)
			continue;
		c->proc = self;
		c->async_fd = async_fd;
		c->async_ino = async_fd >= 0 ? (uint64_t)sb.st_ino : 0;
		atomic_store_explicit(&c->state, UIB_SLOT_LIVE,
				      memory_order_release);
		uib_state_unlock(st);
		return i;
	}
	uib_state_unlock(st);
	/* Out of a device resource, as the kernel reports it (not EMFILE,
	 * which reads like the process's own fd limit). */
	return -ENOMEM;
}

/* Caller holds st->lock.  Frees every slot of context ctx, then ctx. */
static void __uib_ctx_release(struct uib_state *st, int ctx)
{
	struct uib_dev_shared *sh = st->sh;
	int i;

	for (i = 0; i < UIB_MAX_MR; i++)
		if (atomic_load_explicit(&sh->mr[i].state,
					 memory_order_relaxed) != UIB_SLOT_FREE &&
		    sh->mr[i].ctx == ctx)
			atomic_store_explicit(&sh->mr[i].state, UIB_SLOT_FREE,
					      memory_order_release);
	for (i = 0; i < UIB_MAX_QP; i++)
		if (atomic_load_explicit(&sh->qp[i].state,
					 memory_order_relaxed) != UIB_SLOT_FREE &&
		    sh->qp[i].ctx == ctx)
			atomic_store_explicit(&sh->qp[i].state, UIB_SLOT_FREE,
					      memory_order_release);
	for (i = 0; i < UIB_MAX_MCAST_ATTACH; i++)
		if (atomic_load_explicit(&sh->mcast[i].state,
					 memory_order_relaxed) != UIB_SLOT_FREE &&
		    sh->mcast[i].ctx == ctx)
			atomic_store_explicit(&sh->mcast[i].state,
					      UIB_SLOT_FREE,
					      memory_order_release);
	for (i = 0; i < UIB_RES_NUM; i++)
		atomic_fetch_sub(&sh->res_used[i],
				 atomic_exchange(&sh->ctx[ctx].res[i], 0));
	atomic_store_explicit(&sh->ctx[ctx].state, UIB_SLOT_FREE,
			      memory_order_release);
}

void uib_ctx_detach(struct uib_state *st, int ctx)
{
	if (ctx < 0 || ctx >= UIB_MAX_CTX || uib_state_lock(st))
		return;
	__uib_ctx_release(st, ctx);
	uib_state_unlock(st);
}

int uib_state_reclaim(struct uib_state *st)
{
	int i, n = 0;

	if (uib_state_lock(st))
		return 0;
	for (i = 0; i < UIB_MAX_CTX; i++) {
		struct uib_ctx_slot *c = &st->sh->ctx[i];

		if (atomic_load_explicit(&c->state, memory_order_relaxed) ==
		    UIB_SLOT_FREE)
			continue;
		if (uib_proc_alive(&c->proc))
			continue;
		__uib_ctx_release(st, i);
		n++;
	}
	uib_state_unlock(st);
	return n;
}

uint32_t uib_pd_alloc(struct uib_state *st)
{
	uint32_t pd;

	/* 0 is never a PD number, so that 0 can mean "none". */
	do
		pd = atomic_fetch_add_explicit(&st->sh->next_pd, 1,
					       memory_order_relaxed);
	while (pd == 0);
	return pd;
}

int uib_res_get(struct uib_state *st, int ctx, enum uib_res r, uint32_t max)
{
	struct uib_dev_shared *sh = st->sh;

	/* Device count first: a process killed in between leaks one unit
	 * rather than making reclaim give back one it never took. */
	if (atomic_fetch_add(&sh->res_used[r], 1) >= max) {
		atomic_fetch_sub(&sh->res_used[r], 1);
		return -ENOMEM;
	}
	atomic_fetch_add(&sh->ctx[ctx].res[r], 1);
	return 0;
}

void uib_res_put(struct uib_state *st, int ctx, enum uib_res r)
{
	struct uib_dev_shared *sh = st->sh;

	atomic_fetch_sub(&sh->ctx[ctx].res[r], 1);
	atomic_fetch_sub(&sh->res_used[r], 1);
}

/*
 * Caller holds st->lock.  The first free slot at or after *hint, round
 * robin, of n slots 'stride' bytes apart that each start with their state
 * word; *hint moves past it, so that a slot is not reused at once.
 * Returns its index, or -1 if all are taken.
 */
static int __find_free(void *base, size_t stride, uint32_t n,
		       _Atomic uint32_t *hint)
{
	uint32_t start = atomic_load_explicit(hint, memory_order_relaxed), i;

	for (i = 0; i < n; i++) {
		uint32_t idx = (start + i) % n;
		_Atomic uint32_t *state =
			(_Atomic uint32_t *)((char *)base + idx * stride);

		if (atomic_load_explicit(state, memory_order_relaxed) ==
		    UIB_SLOT_FREE) {
			atomic_store_explicit(hint, idx + 1,
					      memory_order_relaxed);
			return idx;
		}
	}
	return -1;
}

int uib_mr_alloc(struct uib_state *st, const struct uib_mr_slot *tmpl,
		 uint32_t *key)
{
	struct uib_dev_shared *sh = st->sh;
	struct uib_mr_slot *m;
	uint8_t gen;
	int idx, ret;

	ret = uib_state_lock(st);
	if (ret)
		return ret;
	idx = __find_free(sh->mr, sizeof(sh->mr[0]), UIB_MAX_MR, &sh->mr_hint);
	if (idx < 0) {
		uib_state_unlock(st);
		return -ENOMEM;
	}
	m = &sh->mr[idx];
	/* A new generation makes every key of the slot's last
	 * owner stale; 0 is skipped so that key 0 never exists. */
	gen = m->key_gen + 1;
	if (!gen)
		gen = 1;
	m->ctx = tmpl->ctx;
	m->key_gen = gen;
	m->pd = tmpl->pd;
	m->access = tmpl->access;
	m->addr = tmpl->addr;
	m->length = tmpl->length;
	m->iova = tmpl->iova;
	m->shm_fd = tmpl->shm_fd;
	m->shm_ino = tmpl->shm_ino;
	m->shm_off = tmpl->shm_off;
	atomic_store_explicit(&m->state, UIB_SLOT_LIVE,
			      memory_order_release);
	uib_state_unlock(st);
	*key = (uint32_t)idx << 8 | gen;
	return 0;
}

int uib_mr_free(struct uib_state *st, uint32_t key)
{
	struct uib_mr_slot *m;
	int ret;

	if ((key >> 8) >= UIB_MAX_MR)
		return -EINVAL;
	m = &st->sh->mr[key >> 8];
	ret = uib_state_lock(st);
	if (ret)
		return ret;
	if (atomic_load_explicit(&m->state, memory_order_relaxed) !=
		    UIB_SLOT_LIVE ||
	    m->key_gen != (key & 0xff)) {
		uib_state_unlock(st);
		return -EINVAL;
	}
	atomic_store_explicit(&m->state, UIB_SLOT_FREE, memory_order_seq_cst);
	uib_state_unlock(st);
	/* Wait out peers that took the key before it went: their copies
	 * end in microseconds.  One that died holding it is given up on
	 * after a second. */
	{
		uint64_t spins = 0;

		while (atomic_load_explicit(&m->busy, memory_order_seq_cst) &&
		       spins++ < 1000000)
			sched_yield();
		if (spins > 1000000)
			atomic_store(&m->busy, 0);
	}
	return 0;
}

struct uib_mr_slot *uib_mr_get(const struct uib_state *st, uint32_t key)
{
	struct uib_mr_slot *m;

	if ((key >> 8) >= UIB_MAX_MR)
		return NULL;
	m = &st->sh->mr[key >> 8];
	/* Announce first, then check: uib_mr_free() frees first, then
	 * waits; seq_cst on both sides means one of us sees the other. */
	atomic_fetch_add_explicit(&m->busy, 1, memory_order_seq_cst);
	if (atomic_load_explicit(&m->state, memory_order_seq_cst) !=
		    UIB_SLOT_LIVE ||
	    m->key_gen != (key & 0xff)) {
		atomic_fetch_sub_explicit(&m->busy, 1, memory_order_release);
		return NULL;
	}
	return m;
}

void uib_mr_put(struct uib_mr_slot *mr)
{
	if (mr)
		atomic_fetch_sub_explicit(&mr->busy, 1, memory_order_release);
}

const struct uib_mr_slot *uib_mr_lookup(const struct uib_state *st,
					uint32_t key)
{
	const struct uib_mr_slot *m;

	if ((key >> 8) >= UIB_MAX_MR)
		return NULL;
	m = &st->sh->mr[key >> 8];
	/* Pairs with the release store in uib_mr_alloc(). */
	if (atomic_load_explicit(&m->state, memory_order_acquire) !=
		    UIB_SLOT_LIVE ||
	    m->key_gen != (key & 0xff))
		return NULL;
	return m;
}

int uib_qpn_alloc(struct uib_state *st, const struct uib_qp_slot *tmpl,
		  uint32_t *qpn)
{
	struct uib_dev_shared *sh = st->sh;
	struct uib_qp_slot *q;
	int idx, ret;

	ret = uib_state_lock(st);
	if (ret)
		return ret;
	/* Round robin: a QPN is not reused at once, so a late packet for a
	 * dead QP does not reach a new one. */
	idx = __find_free(sh->qp, sizeof(sh->qp[0]), UIB_MAX_QP, &sh->qp_hint);
	if (idx < 0) {
		uib_state_unlock(st);
		return -ENOMEM;
	}
	q = &sh->qp[idx];
	q->ctx = tmpl->ctx;
	q->port = tmpl->port;
	q->pd = tmpl->pd;
	q->qp_type = tmpl->qp_type;
	q->qkey = tmpl->qkey;
	q->access = tmpl->access;
	q->min_rnr_timer = tmpl->min_rnr_timer;
	q->dest_qpn = tmpl->dest_qpn;
	q->pkey = tmpl->pkey;
	q->pid = tmpl->pid;
	q->rq_fd = tmpl->rq_fd;
	q->srq_fd = tmpl->srq_fd;
	q->rcq_fd = tmpl->rcq_fd;
	q->rq_uid = tmpl->rq_uid;
	q->srq_uid = tmpl->srq_uid;
	q->rcq_uid = tmpl->rcq_uid;
	q->user_qp = tmpl->user_qp;
	atomic_store_explicit(&q->qp_state, IBV_QPS_RESET,
			      memory_order_relaxed);
	atomic_fetch_add_explicit(&q->incarnation, 1,
				  memory_order_relaxed);
	atomic_store_explicit(&q->state, UIB_SLOT_LIVE,
			      memory_order_release);
	uib_state_unlock(st);
	*qpn = idx + UIB_QPN_BASE;
	return 0;
}

int uib_qpn_free(struct uib_state *st, uint32_t qpn)
{
	uint32_t idx = qpn - UIB_QPN_BASE;
	int ret;

	if (qpn < UIB_QPN_BASE || idx >= UIB_MAX_QP)
		return -EINVAL;
	ret = uib_state_lock(st);
	if (ret)
		return ret;
	if (atomic_load_explicit(&st->sh->qp[idx].state,
				 memory_order_relaxed) == UIB_SLOT_FREE) {
		uib_state_unlock(st);
		return -EINVAL;
	}
	atomic_store_explicit(&st->sh->qp[idx].state, UIB_SLOT_FREE,
			      memory_order_release);
	uib_state_unlock(st);
	return 0;
}

struct uib_qp_slot *uib_qp_lookup(const struct uib_state *st, uint32_t qpn)
{
	uint32_t idx = qpn - UIB_QPN_BASE;
	struct uib_qp_slot *q;

	if (qpn < UIB_QPN_BASE || idx >= UIB_MAX_QP)
		return NULL;
	q = &st->sh->qp[idx];
	/* Pairs with the release store in uib_qpn_alloc(). */
	if (atomic_load_explicit(&q->state, memory_order_acquire) !=
	    UIB_SLOT_LIVE)
		return NULL;
	return q;
}

void uib_state_usage(const struct uib_state *st, struct uib_state_usage *u)
{
	const struct uib_dev_shared *sh = st->sh;
	int i;

	memset(u, 0, sizeof(*u));
	for (i = 0; i < UIB_MAX_CTX; i++) {
		if (atomic_load(&sh->ctx[i].state) == UIB_SLOT_FREE)
			continue;
		u->contexts++;
		if (!uib_proc_alive(&sh->ctx[i].proc))
			u->dead_contexts++;
	}
	for (i = 0; i < UIB_MAX_MR; i++)
		if (atomic_load(&sh->mr[i].state) != UIB_SLOT_FREE)
			u->mrs++;
	for (i = 0; i < UIB_MAX_QP; i++)
		if (atomic_load(&sh->qp[i].state) != UIB_SLOT_FREE)
			u->qps++;
}

/* <run> of the <run>/dev/<name>.state we have mapped, from our own fd. */
static int state_run_dir(const struct uib_state *st, char *buf, size_t len)
{
	char link[64], *p;
	ssize_t n;
	int i;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", st->fd);
	n = readlink(link, buf, len - 1);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	for (i = 0; i < 2; i++) {	/* strip "/<name>.state", "/dev" */
		p = strrchr(buf, '/');
		if (!p || p == buf)
			return -EINVAL;
		*p = 0;
	}
	return 0;
}

int uib_ctx_notify(const struct uib_state *st, int ctx, uint32_t type,
		   uint64_t element)
{
	const struct uib_ctx_slot *c;
	struct {
		uint64_t element;
		uint32_t event_type;
		uint32_t reserved;
	} ev = { element, type, 0 };
	char run_dir[PATH_MAX];
	ssize_t n;
	int fd;

	if (ctx < 0 || ctx >= UIB_MAX_CTX)
		return -EINVAL;
	c = &st->sh->ctx[ctx];
	if (atomic_load_explicit(&c->state, memory_order_acquire) !=
		    UIB_SLOT_LIVE ||
	    c->async_fd < 0 || !uib_proc_alive(&c->proc))
		return -ESRCH;
	/* A write end of the context's pipe: through /proc/<pid>/fd if we
	 * are its user or root, else from its fd broker (fdpass.h), which
	 * also checks the inode against a reused fd number. */
	if (state_run_dir(st, run_dir, sizeof(run_dir)))
		run_dir[0] = 0;
	fd = uib_peer_fd_open(run_dir, st->sh->name, ctx, c->proc.pid,
			      c->async_fd, c->async_ino,
			      O_WRONLY | O_NONBLOCK);
	if (fd < 0)
		return fd == -ENOENT ? -ESRCH : fd;
	n = write(fd, &ev, sizeof(ev));
	close(fd);
	return n == sizeof(ev) ? 0 : -EAGAIN;
}

static bool mcast_live(const struct uib_mcast_slot *m)
{
	return atomic_load_explicit(&m->state, memory_order_relaxed) ==
	       UIB_SLOT_LIVE;
}

int uib_mcast_add(struct uib_state *st, const struct uib_mcast_slot *tmpl,
		  unsigned int max_groups, unsigned int max_per_group)
{
	struct uib_dev_shared *sh = st->sh;
	unsigned int i, hw, groups = 0, members = 0;
	int free_idx = -1, ret;

	ret = uib_state_lock(st);
	if (ret)
		return ret;
	hw = atomic_load_explicit(&sh->mcast_hw, memory_order_relaxed);
	if (hw > UIB_MAX_MCAST_ATTACH)
		hw = UIB_MAX_MCAST_ATTACH;
	for (i = 0; i < hw; i++) {
		const struct uib_mcast_slot *m = &sh->mcast[i];
		unsigned int j;

		if (!mcast_live(m)) {
			if (free_idx < 0)
				free_idx = i;
			continue;
		}
		if (memcmp(m->gid, tmpl->gid, 16)) {
			/* Count each other group once: at its first slot. */
			for (j = 0; j < i; j++)
				if (mcast_live(&sh->mcast[j]) &&
				    !memcmp(sh->mcast[j].gid, m->gid, 16))
					break;
			groups += j == i;
			continue;
		}
		if (m->qpn == tmpl->qpn) {
			uib_state_unlock(st);
			return -EEXIST;
		}
		members++;
	}
	if (free_idx < 0 && hw < UIB_MAX_MCAST_ATTACH)
		free_idx = hw;
	if (free_idx < 0 || members >= max_per_group ||
	    (!members && groups >= max_groups)) {
		uib_state_unlock(st);
		return -ENOMEM;
	}
	sh->mcast[free_idx].ctx = tmpl->ctx;
	sh->mcast[free_idx].lid = tmpl->lid;
	sh->mcast[free_idx].qpn = tmpl->qpn;
	sh->mcast[free_idx].incarnation = tmpl->incarnation;
	memcpy(sh->mcast[free_idx].gid, tmpl->gid, 16);
	/* Release: senders that see LIVE see the whole slot. */
	atomic_store_explicit(&sh->mcast[free_idx].state, UIB_SLOT_LIVE,
			      memory_order_release);
	if ((unsigned int)free_idx >= hw)
		atomic_store_explicit(&sh->mcast_hw, free_idx + 1,
				      memory_order_release);
	uib_state_unlock(st);
	return 0;
}

int uib_mcast_del(struct uib_state *st, uint32_t qpn, const uint8_t *gid)
{
	struct uib_dev_shared *sh = st->sh;
	unsigned int i, hw;
	int ret;

	ret = uib_state_lock(st);
	if (ret)
		return ret;
	hw = atomic_load_explicit(&sh->mcast_hw, memory_order_relaxed);
	ret = -ENOENT;
	for (i = 0; i < hw && i < UIB_MAX_MCAST_ATTACH; i++) {
		struct uib_mcast_slot *m = &sh->mcast[i];

		if (mcast_live(m) && m->qpn == qpn && !memcmp(m->gid, gid, 16)) {
			atomic_store_explicit(&m->state, UIB_SLOT_FREE,
					      memory_order_release);
			ret = 0;
			break;
		}
	}
	uib_state_unlock(st);
	return ret;
}
