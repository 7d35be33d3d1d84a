/* SPDX-License-Identifier: MIT */
/*
 * Queue memory: the "hardware" queues of uib.
 *
 * Every receive queue, SRQ and CQ is a ring in its own memfd, mapped by its
 * owner and, through /proc/<owner>/fd/<fd>, by every process that sends to
 * it.  A header (one cache line per index) precedes a power-of-two array of
 * fixed-stride entries.
 *
 * Receive queue / SRQ: one producer (the owner, under its own lock), many
 * consumers (the requesters that deliver messages into it).
 *   owner:     writes the WQE at prod, then store-release prod + 1;
 *              never writes slot i while i - cons >= size (load-acquire cons).
 *   requester: load-acquire prod, copies the WQE at cons, then claims it with
 *              a CAS cons -> cons + 1.  The owner cannot have rewritten that
 *              slot before the CAS succeeds (cons had not passed it), so a
 *              successful CAS validates the copy.
 *
 * CQ: many producers (the owner's own send completions, and requesters
 * delivering receive completions), one consumer (the owner).
 *   producer:  load-acquire cons, then load prod; reserves slot r with a
 *              CAS on prod while r - cons < size, writes the CQE body, then
 *              store-release seq = r + 1.
 *   consumer:  the CQE at cons is valid once load-acquire seq == cons + 1;
 *              after reading it, store-release cons + 1.
 * Why cons is read before prod: the consumer stored cons = c + 1 only after
 * it saw (acquire) the seq published for slot c, which its producer stored
 * (release) after its CAS took prod past c.  A producer whose acquire load
 * returns cons = c + 1 therefore happens-after that CAS, and its next load
 * of prod returns c + 1 or later: prod - cons never wraps below zero.  The
 * other order (prod first) lets a producer pair a stale prod with a newer
 * cons; the unsigned difference then wraps and a CQ that is nearly empty
 * looks full (issue 7: false IBV_EVENT_CQ_ERR under many producers).  A
 * difference that is still negative means the header was overwritten: the
 * CQ is in error.
 * A reserved slot that turns out not to be needed is published as a NOP
 * CQE, which the consumer skips.
 *
 * Shared memory is input: a ring's geometry (size, stride, SGE count) is
 * read once, when its owner creates it or a peer maps it, validated, and
 * kept privately in struct uib_ring; every entry address is computed from
 * that private copy, so a stray write into a header can make a peer read
 * wrong entries but never reach outside the ring.
 */
#ifndef UIB_QUEUE_H
#define UIB_QUEUE_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UIB_CACHELINE 64

enum uib_qkind {
	UIB_QK_CQ = 1,
	UIB_QK_RQ = 2,
	UIB_QK_SRQ = 3,
};

enum {
	UIB_Q_OVERRUN = 1 << 0,		/* a completion found the CQ full */
	UIB_Q_ATTENTION = 1 << 1,	/* a peer moved a QP of this CQ to ERR */
};

struct uib_qhdr {
	uint64_t uid;		/* the memfd's inode number */
	uint32_t kind;		/* enum uib_qkind */
	uint32_t log_size;
	uint32_t stride;	/* bytes per entry */
	uint32_t max_sge;	/* RQ/SRQ */
	int32_t owner_pid;
	_Atomic uint32_t srq_limit;	/* SRQ: armed limit, 0 = not armed */
	_Atomic uint32_t error;		/* CQ: UIB_Q_* */
	_Atomic uint32_t armed;		/* CQ: enum uib_cq_arm */
	int32_t notify_fd;		/* CQ: owner's channel pipe, or -1 */
	uint64_t notify_ino;		/* its inode, checked by peers */
	uint64_t user_handle;		/* owner's ibv_cq / ibv_srq pointer */
	uint8_t pad0[UIB_CACHELINE - 64];

	_Atomic uint32_t prod __attribute__((aligned(UIB_CACHELINE)));
	uint8_t pad1[UIB_CACHELINE - 4];
	_Atomic uint32_t cons __attribute__((aligned(UIB_CACHELINE)));
	uint8_t pad2[UIB_CACHELINE - 4];
};

#define UIB_QHDR_SIZE sizeof(struct uib_qhdr)

/* A receive WQE: wr_id and a scatter list in the owner's address space. */
struct uib_rsge {
	uint64_t addr;
	uint32_t length;
	uint32_t lkey;
};

struct uib_rwqe {
	uint64_t wr_id;
	uint32_t num_sge;
	uint32_t reserved;
	struct uib_rsge sge[];
};

/* Small SEND payloads ride in the CQE; the owner scatters them into its
 * receive buffer when it polls (one copy, no system call), after checking
 * each fragment against its own MR (lkey): a CQE is written by a peer and
 * is input like any shared memory. */
enum { UIB_CQE_INLINE_MAX = 44 };

enum {
	UIB_CQE_F_NOP = 1 << 0,		/* skip: a reservation not used */
	UIB_CQE_F_INLINE = 1 << 1,	/* data[] goes to frag[] at poll */
	UIB_CQE_F_SOLICITED = 1 << 2,	/* wakes a solicited-only arm */
};

/* ibv_req_notify_cq(): what the next CQE must be to raise an event. */
enum uib_cq_arm {
	UIB_CQ_DISARMED = 0,
	UIB_CQ_ARM_NEXT = 1,
	UIB_CQ_ARM_SOLICITED = 2,
};

struct uib_cqe {
	uint64_t wr_id;
	uint32_t status;	/* enum ibv_wc_status */
	uint32_t opcode;	/* enum ibv_wc_opcode */
	uint32_t vendor_err;
	uint32_t byte_len;
	uint32_t imm_data;	/* network order, as in ibv_wc */
	uint32_t qp_num;
	uint32_t src_qp;
	uint32_t wc_flags;
	uint16_t pkey_index;
	uint16_t slid;
	uint8_t sl;
	uint8_t dlid_path_bits;
	uint8_t flags;		/* UIB_CQE_F_* */
	uint8_t nfrag;
	struct {
		uint64_t addr;
		uint32_t len;
		uint32_t lkey;
	} frag[2];
	uint8_t data[UIB_CQE_INLINE_MAX];
	_Atomic uint32_t seq;	/* written last: r + 1 for slot r */
};

_Static_assert(sizeof(struct uib_cqe) == 128, "CQE is two cache lines");

/* Largest rings: CQs of UIB_MAX_CQE + 1 entries, RQs of 16384. */
enum { UIB_RING_MAX_LOG = 17, UIB_RING_MAX_SGE = 32 };

/* A ring as this process sees it: the shared header, and the geometry
 * that was validated when the ring was made or mapped (never re-read). */
struct uib_ring {
	struct uib_qhdr *hdr;
	uint32_t mask;		/* entries - 1 */
	uint32_t stride;	/* bytes per entry */
	uint32_t max_sge;	/* RQ/SRQ: SGEs per WQE, <= UIB_MAX_SGE */
	uint32_t kind;		/* enum uib_qkind */
};

static inline void *uib_qentry(const struct uib_ring *q, uint32_t idx)
{
	return (char *)q->hdr + UIB_QHDR_SIZE + (size_t)(idx & q->mask) *
						       q->stride;
}

static inline uint32_t uib_qsize(const struct uib_ring *q)
{
	return q->mask + 1;
}

/*
 * CQ producer: reserve a slot.  Any process.  Returns 0, -EAGAIN if the CQ
 * is full, or -EIO if its indices are impossible (header overwritten).
 * See the ordering argument at the top of this file.
 */
static inline int uib_cq_reserve(const struct uib_ring *cq, uint32_t *slot)
{
	struct uib_qhdr *h = cq->hdr;
	uint32_t c = atomic_load_explicit(&h->cons, memory_order_acquire);
	uint32_t r = atomic_load_explicit(&h->prod, memory_order_relaxed);

	for (;;) {
		if ((int32_t)(r - c) < 0)
			return -EIO;
		if (r - c >= uib_qsize(cq)) {
			/* Full as of c; the consumer may have moved since. */
			uint32_t c2 = atomic_load_explicit(
				&h->cons, memory_order_acquire);

			if (c2 == c)
				return -EAGAIN;
			c = c2;
			r = atomic_load_explicit(&h->prod,
						 memory_order_relaxed);
			continue;
		}
		/* Relaxed is enough: the CQE body is published by seq. */
		if (atomic_compare_exchange_weak_explicit(
			    &h->prod, &r, r + 1, memory_order_relaxed,
			    memory_order_relaxed))
			break;
	}
	*slot = r;
	return 0;
}

/* CQ producer: publish the CQE written into reserved slot r. */
static inline void uib_cq_publish(struct uib_cqe *cqe, uint32_t r)
{
	atomic_store_explicit(&cqe->seq, r + 1, memory_order_release);
}

/* Queue memory owned by this process. */
struct uib_qbuf {
	struct uib_ring r;
	size_t len;
	int fd;			/* memfd; peers open /proc/<pid>/fd/<fd> */
};

int uib_qbuf_alloc(struct uib_qbuf *qb, enum uib_qkind kind,
		   uint32_t entries, uint32_t stride, uint32_t max_sge);
void uib_qbuf_free(struct uib_qbuf *qb);

/* Raises the CQ's completion event if it is armed for a CQE like this one
 * (IBA 11.4.2.2); any process.  Call after publishing. */
void uib_cq_notify(const struct uib_ring *cq, bool solicited);

/* Maps a peer's memfd (cached): its base and size, or NULL if the peer or
 * the memory is gone or the inode does not match. */
void *uib_pmap_get(int32_t pid, int32_t fd, uint64_t ino, size_t *len);
/* A peer's queue of kind 'kind', mapped and validated into *out: 0, or
 * -ENOENT if it is gone, -EPROTO if its header is not a sound ring. */
int uib_qmap_get(int32_t pid, int32_t fd, uint64_t uid, enum uib_qkind kind,
		 struct uib_ring *out);
/* Validates a ring header against the memory that holds it. */
int uib_ring_from_hdr(struct uib_qhdr *h, size_t len, uint64_t uid,
		      enum uib_qkind kind, struct uib_ring *out);
/* Receive WQE stride for max_sge SGEs (a power of two). */
uint32_t uib_rwqe_stride(uint32_t max_sge);
/* Drops cached mappings of a dead process. */
void uib_pmap_forget(int32_t pid);

#endif /* UIB_QUEUE_H */
