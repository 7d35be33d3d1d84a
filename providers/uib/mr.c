// SPDX-License-Identifier: MIT
/*
 * Memory registration, and the shared backing that gives registered memory
 * a one-copy, no-system-call path between processes.
 *
 * Registering a range of private anonymous memory moves its pages onto a
 * memfd ("segment") in place: the contents are copied once into the memfd,
 * which is then mapped MAP_FIXED over the same addresses.  The program sees
 * the same memory at the same addresses; peers map the memfd through
 * /proc/<pid>/fd and read and write it with plain loads, stores and CPU
 * atomics.  Deregistering the last MR of a segment moves the pages back to
 * private memory (mremap of a private copy over the range), so that nothing
 * a peer does afterwards reaches memory that is no longer registered.
 *
 * fork(): the child would inherit the segments as shared memory, and its
 * writes would land in the parent's buffers.  An atfork handler gives the
 * child private copies instead, which is what fork() means for memory.
 *
 * Not shared (the MR falls back to process_vm_readv/writev): file-backed or
 * hugetlb memory, the stack, ranges that overlap a segment without lying
 * inside it, and everything when UIB_SHARED_MR=0.  Caveat, as for any
 * remapping: a thread writing into the range while it is being registered
 * may lose that write.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "uib.h"

struct uib_seg {
	struct uib_seg *next;
	uintptr_t start, end;	/* page aligned */
	int fd;
	uint64_t ino;
	int refs;
};

static pthread_mutex_t seg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct uib_seg *segs;

static void atfork_prepare(void)
{
	pthread_mutex_lock(&seg_lock);
}

static void atfork_parent(void)
{
	pthread_mutex_unlock(&seg_lock);
}

static void copy_pages(void *dst, const void *src, size_t len);

/* In the child: every segment becomes private memory again, with the
 * contents it had at fork() time, and leaves the list.  The structs stay
 * (fd -1) for the child's MRs that still point at them. */
static void atfork_child(void)
{
	struct uib_seg *seg, *next;

	for (seg = segs; seg; seg = next) {
		size_t len = seg->end - seg->start;
		void *tmp;

		next = seg->next;
		tmp = mmap(NULL, len, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (tmp != MAP_FAILED) {
			copy_pages(tmp, (void *)seg->start, len);
			if (mremap(tmp, len, len, MREMAP_MAYMOVE | MREMAP_FIXED,
				   (void *)seg->start) == MAP_FAILED)
				munmap(tmp, len);
		}
		close(seg->fd);
		seg->fd = -1;
		seg->next = NULL;
	}
	segs = NULL;
	pthread_mutex_unlock(&seg_lock);
}

static void register_atfork(void)
{
	pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

static bool sharing_enabled(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	const char *e = getenv("UIB_SHARED_MR");

	pthread_once(&once, register_atfork);
	return !e || strcmp(e, "0");
}

/*
 * Copies whole pages of our own memory.  The pages may hold other objects
 * than the registered buffer (malloc'd neighbours): the kernel copies them
 * for us, so that a memory checker (ASan) does not take the copy for an
 * overflow of the buffer.
 */
static void copy_pages(void *dst, const void *src, size_t len)
{
	struct iovec l = { dst, len }, r = { (void *)src, len };

	if (process_vm_readv(getpid(), &l, 1, &r, 1, 0) != (ssize_t)len)
		memcpy(dst, src, len);
}

/* Is [start, end) entirely private anonymous read-write memory? */
static bool range_is_anon(uintptr_t start, uintptr_t end)
{
	char line[512];
	uintptr_t covered = start;
	FILE *f = fopen("/proc/self/maps", "re");

	if (!f)
		return false;
	while (covered < end && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, off;
		char perms[8], path[256] = "";
		unsigned int maj, min;
		unsigned long ino;

		if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu %255s", &lo, &hi,
			   perms, &off, &maj, &min, &ino, path) < 7)
			continue;
		if (hi <= covered)
			continue;
		if (lo > covered)
			break;		/* a hole */
		if (strcmp(perms, "rw-p") || ino ||
		    (path[0] && strcmp(path, "[heap]")))
			break;
		covered = hi;
	}
	fclose(f);
	return covered >= end;
}

/* Caller holds seg_lock. */
static struct uib_seg *__seg_share(uintptr_t start, uintptr_t end)
{
	size_t len = end - start;
	struct uib_seg *seg;
	struct stat sb;
	void *tmp;
	int fd;

	if (!range_is_anon(start, end))
		return NULL;
	seg = calloc(1, sizeof(*seg));
	if (!seg)
		return NULL;
	fd = memfd_create("uib-mr", MFD_CLOEXEC);
	if (fd < 0)
		goto err_free;
	if (ftruncate(fd, len) || fstat(fd, &sb))
		goto err_fd;
	tmp = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (tmp == MAP_FAILED)
		goto err_fd;
	copy_pages(tmp, (void *)start, len);
	/* Same addresses, same contents, now shareable. */
	if (mmap((void *)start, len, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED, fd, 0) == MAP_FAILED) {
		munmap(tmp, len);
		goto err_fd;
	}
	munmap(tmp, len);
	seg->start = start;
	seg->end = end;
	seg->fd = fd;
	seg->ino = sb.st_ino;
	seg->next = segs;
	segs = seg;
	return seg;

err_fd:
	close(fd);
err_free:
	free(seg);
	return NULL;
}

/* Does the range still map our memfd (the program may have unmapped it)? */
static bool seg_still_mapped(const struct uib_seg *seg)
{
	char line[512];
	bool ok = false;
	FILE *f = fopen("/proc/self/maps", "re");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, off, ino;
		unsigned int maj, min;
		char perms[8];

		if (sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &lo, &hi, perms,
			   &off, &maj, &min, &ino) != 7)
			continue;
		if (lo <= seg->start && hi > seg->start) {
			ok = ino == seg->ino && hi >= seg->end &&
			     off == seg->start - lo;
			break;
		}
	}
	fclose(f);
	return ok;
}

/* Caller holds seg_lock: the last MR is gone, give the pages back. */
static void __seg_unshare(struct uib_seg *seg)
{
	size_t len = seg->end - seg->start;
	struct uib_seg **pp;
	void *tmp;

	for (pp = &segs; *pp; pp = &(*pp)->next)
		if (*pp == seg) {
			*pp = seg->next;
			break;
		}
	if (seg_still_mapped(seg)) {
		tmp = mmap(NULL, len, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (tmp != MAP_FAILED) {
			copy_pages(tmp, (void *)seg->start, len);
			if (mremap(tmp, len, len, MREMAP_MAYMOVE | MREMAP_FIXED,
				   (void *)seg->start) == MAP_FAILED)
				munmap(tmp, len);
		}
	}
	if (seg->fd >= 0)
		close(seg->fd);
	free(seg);
}

static struct uib_seg *seg_get(void *addr, size_t length)
{
	long psz = sysconf(_SC_PAGESIZE);
	uintptr_t start = (uintptr_t)addr & ~(uintptr_t)(psz - 1);
	uintptr_t end = ((uintptr_t)addr + length + psz - 1) &
			~(uintptr_t)(psz - 1);
	struct uib_seg *seg;

	if (!sharing_enabled())
		return NULL;
	pthread_mutex_lock(&seg_lock);
	for (seg = segs; seg; seg = seg->next) {
		if (start >= seg->start && end <= seg->end)
			break;			/* inside: share it */
		if (start < seg->end && end > seg->start) {
			pthread_mutex_unlock(&seg_lock);
			return NULL;		/* overlaps: not shared */
		}
	}
	if (!seg)
		seg = __seg_share(start, end);
	if (seg)
		seg->refs++;
	pthread_mutex_unlock(&seg_lock);
	return seg;
}

static void seg_put(struct uib_seg *seg)
{
	if (!seg)
		return;
	pthread_mutex_lock(&seg_lock);
	if (!--seg->refs)
		__seg_unshare(seg);
	pthread_mutex_unlock(&seg_lock);
}

enum {
	UIB_ACCESS_SUPPORTED = IBV_ACCESS_LOCAL_WRITE |
			       IBV_ACCESS_REMOTE_WRITE |
			       IBV_ACCESS_REMOTE_READ |
			       IBV_ACCESS_REMOTE_ATOMIC | IBV_ACCESS_MW_BIND |
			       IBV_ACCESS_ZERO_BASED | IBV_ACCESS_RELAXED_ORDERING,
};

/* Is every page of [addr, addr+len) mapped?  A real HCA pins the pages
 * and fails with EFAULT; mincore() answers ENOMEM for a hole. */
static int check_mapped(void *addr, size_t len)
{
	long psz = sysconf(_SC_PAGESIZE);
	uintptr_t start = (uintptr_t)addr & ~(uintptr_t)(psz - 1);
	uintptr_t end = (uintptr_t)addr + len;
	unsigned char vec[256];

	while (start < end) {
		size_t chunk = end - start;

		if (chunk > sizeof(vec) * psz)
			chunk = sizeof(vec) * psz;
		if (mincore((void *)start, chunk, vec))
			return errno == ENOMEM ? EFAULT : errno;
		start += chunk;
	}
	return 0;
}

struct ibv_mr *uib_reg_mr(struct ibv_pd *ibpd, void *addr, size_t length,
			  uint64_t hca_va, int access)
{
	struct uib_context *ctx = to_uctx(ibpd->context);
	struct uib_pd *pd = to_upd(ibpd);
	struct uib_mr_slot tmpl = {};
	struct uib_mr *mr;
	uint32_t key;
	int ret;

	if (access & ~UIB_ACCESS_SUPPORTED) {
		errno = (access & IBV_ACCESS_ON_DEMAND) ? EOPNOTSUPP : EINVAL;
		return NULL;
	}
	/* IBA 10.6.3.1: remote write or atomic access needs local write. */
	if ((access & (IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_ATOMIC)) &&
	    !(access & IBV_ACCESS_LOCAL_WRITE)) {
		errno = EINVAL;
		return NULL;
	}
	if (!length || length > UIB_MAX_MR_SIZE ||
	    (uintptr_t)addr + length < (uintptr_t)addr ||
	    hca_va + length < hca_va) {
		errno = EINVAL;
		return NULL;
	}
	ret = check_mapped(addr, length);
	if (ret) {
		errno = ret;
		return NULL;
	}

	mr = calloc(1, sizeof(*mr));
	if (!mr) {
		errno = ENOMEM;
		return NULL;
	}
	tmpl.ctx = ctx->ctx_slot;
	tmpl.pd = pd->pdn;
	tmpl.access = access;
	tmpl.addr = (uintptr_t)addr;
	tmpl.length = length;
	tmpl.iova = (access & IBV_ACCESS_ZERO_BASED) ? 0 : hca_va;
	tmpl.shm_fd = -1;
	mr->seg = seg_get(addr, length);
	if (mr->seg) {
		tmpl.shm_fd = mr->seg->fd;
		tmpl.shm_ino = mr->seg->ino;
		tmpl.shm_off = (uintptr_t)addr - mr->seg->start;
	}
	ret = uib_mr_alloc(&ctx->st, &tmpl, &key);
	if (ret) {
		seg_put(mr->seg);
		free(mr);
		errno = -ret;
		return NULL;
	}
	mr->pd = pd;
	atomic_fetch_add(&pd->users, 1);
	mr->vmr.mr_type = IBV_MR_TYPE_MR;
	mr->vmr.access = access;
	mr->vmr.ibv_mr.lkey = key;
	mr->vmr.ibv_mr.rkey = key;
	mr->vmr.ibv_mr.handle = key;
	return &mr->vmr.ibv_mr;
}

int uib_dereg_mr(struct verbs_mr *vmr)
{
	struct uib_mr *mr = to_umr(&vmr->ibv_mr);
	struct uib_context *ctx = to_uctx(vmr->ibv_mr.context);
	int ret;

	ret = uib_mr_free(&ctx->st, vmr->ibv_mr.lkey);
	if (ret)
		return -ret;
	atomic_fetch_sub(&mr->pd->users, 1);
	seg_put(mr->seg);
	free(mr);
	return 0;
}

