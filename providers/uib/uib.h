/* SPDX-License-Identifier: MIT */
/*
 * The uib provider's private header: its objects, each embedding the
 * libibverbs object it extends, and the one-line conversions between them.
 *
 * Files: uib.c (registration, device and context setup), verbs.c (control
 * verbs: query, PD, MR, AH), qp.c (QP create/modify/query, the IBA state
 * machine, flush), srq.c (SRQ and receive posting), cq.c (CQ and polling),
 * send.c (send posting: ibv_post_send, ibv_wr_*), engine.c (executing,
 * retrying and flushing send work: the requester side), responder.c (the
 * receive side of every operation), engine.h (what those three share),
 * xport.c (finding peers and moving bytes between processes), queue.c
 * (queue memory).
 * Error convention: verbs return NULL + errno, or a positive errno;
 * internal helpers return 0 or -errno.
 */
#ifndef UIB_H
#define UIB_H

#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include <infiniband/verbs.h>

#include <pthread.h>
#include <stdbool.h>
#include <sys/uio.h>

#include "uib_pabi.h"
#include "queue.h"
#include "state.h"

#define UIB_VENDOR_ID 0x000000
#define UIB_VENDOR_PART_ID 0x5542	/* "UB" */

/* Honest device limits: what the tables and rings can hold. */
enum {
	UIB_MAX_QP_WR = 16384,
	UIB_MAX_SGE = 32,
	UIB_MAX_CQ = 4096,
	UIB_MAX_CQE = 65535,
	UIB_MAX_SRQ = 1024,
	UIB_MAX_SRQ_WR = 16384,
	UIB_MAX_RD_ATOM = 16,
	UIB_MAX_MCAST_GRP = 1024,
	UIB_MAX_MCAST_QP_ATTACH = 64,
	UIB_MAX_AH = 65536,
	UIB_MAX_PD = 1 << 24,
	UIB_MAX_INLINE = 512,
	UIB_MAX_TSO_HEADER = 256,	/* IBV_WR_TSO: header bytes per WQE */
	UIB_MAX_TSO = 256 * 1024,	/* IBV_WR_TSO: payload bytes per WQE */
	UIB_MTU = 4096,
	UIB_GRH_LEN = 40,
	UIB_MAX_MSG = 1u << 31,
};
#define UIB_MAX_MR_SIZE (1ull << 40)
#define UIB_MCAST_QPN 0xffffffu		/* IBA 10.5.2: multicast QPN */
_Static_assert((int)UIB_MAX_SGE == (int)UIB_RING_MAX_SGE, "RQ rings hold UIB_MAX_SGE");

struct uib_device {
	struct verbs_device vdev;
	char run_dir[PATH_MAX / 4];
	char state_path[PATH_MAX / 2];
};

struct uib_qp;

struct uib_context {
	struct verbs_context vctx;
	struct uib_state st;
	int ctx_slot;		/* our slot in the device's context table */
	int async_wr;		/* write end behind context.async_fd */
	char run_dir[PATH_MAX / 4];

	pthread_mutex_t qp_lock;	/* guards qps */
	struct uib_qp *qps;		/* every QP of this context */
	atomic_int npending;		/* QPs with send work blocked */

	/* Retries blocked send work while the program sleeps (in
	 * ibv_get_cq_event, say): started on first need, asleep on
	 * 'wake' while nothing is blocked, idle while the program's own
	 * polls drive the work ('drives' moves). */
	atomic_uint drives;
	pthread_mutex_t progress_lock;
	pthread_cond_t wake;
	pthread_t progress_thread;
	bool progress_started;
	bool progress_stop;
};

struct uib_cq {
	struct verbs_cq vcq;
	struct uib_qbuf q;
	pthread_spinlock_t lock;	/* consumer side */
	uint32_t cons;			/* our copy of q.hdr->cons */
	uint64_t stall_since_ns;	/* slot at cons reserved, unpublished */
	atomic_int users;		/* QPs using this CQ */
	struct ibv_wc cur;		/* ibv_cq_ex: the entry being read */
};

struct uib_srq {
	struct verbs_srq vsrq;
	struct uib_qbuf q;
	pthread_spinlock_t lock;	/* producer side */
	uint32_t max_wr;
	uint32_t max_sge;
	atomic_int users;
};

struct uib_ah {
	struct ibv_ah ibv_ah;
	struct ibv_ah_attr attr;
};

/* A device of the subnet (any uib device in our run directory). */
struct uib_devref {
	struct uib_devref *next;
	char name[UIB_NAME_MAX];
	struct uib_state st;
};

/* A remote QP, resolved: where its receive queue and CQ are. */
struct uib_peer {
	struct uib_devref *dev;
	struct uib_qp_slot *slot;
	uint32_t qpn;
	uint32_t incarnation;
	int32_t pid;
	uint8_t port;
	bool dead;			/* its process was found gone */
	struct uib_ring rq;		/* its RQ, or its SRQ */
	struct uib_ring rcq;
	struct uib_segcache {		/* its MR segments we mapped last */
		int32_t pid;
		int32_t fd;
		uint64_t ino;
		char *base;
		size_t len;
	} seg[2];
	unsigned int seg_next;
};

/* A send WQE as the requester keeps it until executed. */
struct uib_swqe {
	uint64_t wr_id;
	uint32_t opcode;		/* enum ibv_wr_opcode */
	uint32_t send_flags;
	uint32_t num_sge;
	uint32_t imm_data;		/* network order */
	uint64_t remote_addr;
	uint32_t rkey;
	uint32_t inline_len;
	uint64_t compare_add;
	uint64_t swap;
	/* UD */
	uint32_t remote_qpn;
	uint32_t remote_qkey;
	struct ibv_ah_attr ah;
	/* IBV_WR_TSO: header length and payload bytes per datagram */
	uint16_t tso_hdr_len;
	uint16_t tso_mss;
	/* then num_sge struct ibv_sge, or inline_len bytes; for TSO, the
	 * tso_hdr_len header bytes after the SGEs */
	uint8_t payload[] __attribute__((aligned(16)));
};

struct uib_qp {
	struct verbs_qp vqp;
	struct uib_context *ctx;
	struct uib_qp *next;		/* in ctx->qps */
	struct uib_qp_slot *slot;	/* ours, in the device state */
	uint32_t qpn;
	struct ibv_qp_attr attr;	/* as modified, for query_qp */
	struct ibv_qp_cap cap;
	bool sq_sig_all;
	bool flushed;
	bool block_mcast_lb;		/* IBV_QP_CREATE_BLOCK_SELF_MCAST_LB */
	uint32_t src_qpn;		/* sends as (IBV_QP_CREATE_SOURCE_QPN) */
	uint32_t max_tso_header;	/* IBV_WR_TSO allowed when non-zero */
	atomic_int nmcast;		/* multicast groups attached */			/* queues flushed since entering ERR */

	struct uib_qbuf rq;		/* unused with an SRQ */
	pthread_spinlock_t rq_lock;

	pthread_spinlock_t sq_lock;
	uint8_t *sq;
	uint32_t sq_stride;
	uint32_t sq_mask;
	uint32_t sq_head;		/* next WQE to execute */
	uint32_t sq_tail;		/* next free */
	uint32_t wr_begin;		/* ibv_wr_start(): first staged WQE */
	int wr_err;			/* ibv_wr_*(): first error staged */
	/* The head WQE is waiting (RNR, retry).  Written under sq_lock;
	 * read without it by uib_ctx_progress() to skip idle QPs. */
	atomic_bool pending;
	uint64_t wait_since_ns;		/* when the head WQE started waiting */
	uint64_t peer_checked_ns;	/* last check that the peer lives */

	struct uib_peer peer;		/* RC/UC: the connected QP */
	struct uib_peer ud_peer;	/* UD: last destination */
};

static inline struct uib_cq *to_ucq(struct ibv_cq *ibcq)
{
	return uib_pabi_container_of(ibcq, struct uib_cq, vcq.cq);
}

static inline struct uib_cq *to_ucq_ex(struct ibv_cq_ex *ibcq)
{
	return uib_pabi_container_of(ibcq, struct uib_cq, vcq.cq_ex);
}

static inline struct uib_qp *to_uqp(struct ibv_qp *ibqp)
{
	return uib_pabi_container_of(ibqp, struct uib_qp, vqp.qp);
}

static inline struct uib_qp *to_uqp_ex(struct ibv_qp_ex *ibqp)
{
	return uib_pabi_container_of(ibqp, struct uib_qp, vqp.qp_ex);
}

static inline struct uib_srq *to_usrq(struct ibv_srq *ibsrq)
{
	return uib_pabi_container_of(ibsrq, struct uib_srq, vsrq.srq);
}

static inline struct uib_ah *to_uah(struct ibv_ah *ibah)
{
	return uib_pabi_container_of(ibah, struct uib_ah, ibv_ah);
}

static inline struct uib_swqe *uib_sq_wqe(struct uib_qp *qp, uint32_t idx)
{
	return (struct uib_swqe *)(qp->sq + (size_t)(idx & qp->sq_mask) *
						   qp->sq_stride);
}

struct uib_pd {
	struct ibv_pd ibv_pd;
	uint32_t pdn;		/* device-unique, recorded in MR/QP slots */
	atomic_int users;	/* MRs and QPs on this PD */
};

struct uib_seg;

struct uib_mr {
	struct verbs_mr vmr;
	struct uib_pd *pd;
	struct uib_seg *seg;	/* shared backing, or NULL (mr.c) */
};

static inline struct uib_device *to_udev(struct ibv_device *ibdev)
{
	return uib_pabi_container_of(ibdev, struct uib_device, vdev.device);
}

static inline struct uib_context *to_uctx(struct ibv_context *ibctx)
{
	return uib_pabi_container_of(ibctx, struct uib_context, vctx.context);
}

static inline struct uib_pd *to_upd(struct ibv_pd *ibpd)
{
	return uib_pabi_container_of(ibpd, struct uib_pd, ibv_pd);
}

static inline struct uib_mr *to_umr(struct ibv_mr *ibmr)
{
	return uib_pabi_container_of(ibmr, struct uib_mr, vmr.ibv_mr);
}

/* Control-path log lines go to stderr; uib_dbg only with UIB_DEBUG set. */
extern int uib_debug;
#define uib_err(fmt, ...) fprintf(stderr, "uib: " fmt "\n", ##__VA_ARGS__)
#define uib_dbg(fmt, ...)                                                    \
	do {                                                                 \
		if (uib_debug)                                               \
			fprintf(stderr, "uib: " fmt "\n", ##__VA_ARGS__);    \
	} while (0)

/* verbs.c */
int uib_query_device_ex(struct ibv_context *context,
			const struct ibv_query_device_ex_input *input,
			struct ibv_device_attr_ex *attr, size_t attr_size);
int uib_query_port(struct ibv_context *context, uint8_t port_num,
		   struct ibv_port_attr *port_attr);
struct ibv_pd *uib_alloc_pd(struct ibv_context *context);
int uib_dealloc_pd(struct ibv_pd *pd);

/* mr.c */
struct ibv_mr *uib_reg_mr(struct ibv_pd *pd, void *addr, size_t length,
			  uint64_t hca_va, int access);
int uib_dereg_mr(struct verbs_mr *vmr);

/* verbs.c */
struct ibv_ah *uib_create_ah(struct ibv_pd *pd, struct ibv_ah_attr *attr);
int uib_destroy_ah(struct ibv_ah *ah);
/* Checks lkey/addr/length against our MRs; 0 or an ibv_wc_status. */
int uib_check_lkey(struct uib_context *ctx, uint32_t pdn,
		   const struct ibv_sge *sge, int need_access);

/* cq.c */
struct ibv_cq *uib_create_cq(struct ibv_context *context, int cqe,
			     struct ibv_comp_channel *channel, int comp_vector);
struct ibv_cq_ex *uib_create_cq_ex(struct ibv_context *context,
				   struct ibv_cq_init_attr_ex *attr);
int uib_destroy_cq(struct ibv_cq *cq);
int uib_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc);
int uib_req_notify_cq(struct ibv_cq *cq, int solicited_only);
/* Writes a CQE into one of our CQs: 0, or -EAGAIN if it is full (the CQ
 * is then in overrun: IBV_EVENT_CQ_ERR was raised) or -EIO if its
 * header is corrupt. */
int uib_cq_push(struct uib_cq *cq, const struct uib_cqe *cqe);
/* Marks a CQ (ours or a peer's) overrun and raises IBV_EVENT_CQ_ERR in
 * its owner's context ctx of device state st, once. */
void uib_cq_overrun(const struct uib_state *st, int ctx,
		    const struct uib_ring *cq);

/* qp.c */
struct ibv_qp *uib_create_qp(struct ibv_pd *pd, struct ibv_qp_init_attr *attr);
struct ibv_qp *uib_create_qp_ex(struct ibv_context *context,
				struct ibv_qp_init_attr_ex *attr);
int uib_modify_qp(struct ibv_qp *qp, struct ibv_qp_attr *attr, int mask);
int uib_query_qp(struct ibv_qp *qp, struct ibv_qp_attr *attr, int mask,
		 struct ibv_qp_init_attr *init_attr);
int uib_destroy_qp(struct ibv_qp *qp);
/* Moves qp to ERR (shared state) and flushes; caller holds sq_lock. */
void __uib_qp_to_err(struct uib_qp *qp);
/* Flushes the queues of every QP of ctx that a peer moved to ERR. */
void uib_ctx_check_errors(struct uib_context *ctx);
uint32_t uib_qp_state(const struct uib_qp *qp);

/* mcast.c */
int uib_attach_mcast(struct ibv_qp *qp, const union ibv_gid *gid,
		     uint16_t lid);
int uib_detach_mcast(struct ibv_qp *qp, const union ibv_gid *gid,
		     uint16_t lid);

/* srq.c */
struct ibv_srq *uib_create_srq(struct ibv_pd *pd,
			       struct ibv_srq_init_attr *attr);
int uib_modify_srq(struct ibv_srq *srq, struct ibv_srq_attr *attr, int mask);
int uib_query_srq(struct ibv_srq *srq, struct ibv_srq_attr *attr);
int uib_destroy_srq(struct ibv_srq *srq);
int uib_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr,
		  struct ibv_recv_wr **bad_wr);
int uib_post_srq_recv(struct ibv_srq *srq, struct ibv_recv_wr *wr,
		      struct ibv_recv_wr **bad_wr);
int uib_rq_alloc(struct uib_qbuf *qb, enum uib_qkind kind, uint32_t max_wr,
		 uint32_t max_sge);
/* Claims the next receive WQE of a ring (any process); copies it to out.
 * Returns 0, or -ENOENT if none is posted. */
int uib_rq_claim(const struct uib_ring *rq, struct uib_rwqe *out);
/* Completes every posted receive of qp's own RQ with FLUSH_ERR. */
void uib_rq_flush(struct uib_qp *qp);

/* send.c */
int uib_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr,
		  struct ibv_send_wr **bad_wr);
void uib_qp_init_wr_ops(struct uib_qp *qp);
/* Executes queued send work; caller holds qp->sq_lock. */
void __uib_sq_progress(struct uib_qp *qp);
/* Runs blocked send work of every QP of ctx (from poll_cq). */
void uib_ctx_progress(struct uib_context *ctx);
void uib_progress_stop(struct uib_context *ctx);
/* Completes every queued send WQE with FLUSH_ERR; caller holds sq_lock. */
void __uib_sq_flush(struct uib_qp *qp);

/* xport.c: the subnet and the local transport */
struct uib_devref *uib_subnet_find(struct uib_context *ctx,
				   const struct ibv_ah_attr *ah,
				   uint8_t *port);
/* The subnet's devices, for walking with ->next (entries are never freed
 * and the list only grows at its head); a device that is not ready must
 * be skipped. */
struct uib_devref *uib_subnet_first(struct uib_context *ctx);
int uib_peer_resolve(struct uib_peer *p, struct uib_devref *dev,
		     uint8_t port, uint32_t qpn);
bool uib_peer_valid(const struct uib_peer *p);
int32_t uib_mr_owner_pid(const struct uib_state *st,
			 const struct uib_mr_slot *mr);
/* Where a transfer lands in a peer: either its shared MR segments mapped
 * here (mapped: iov holds our addresses of them) or its own addresses. */
struct uib_target {
	int32_t pid;
	bool mapped;
	int n;
	struct iovec iov[UIB_MAX_SGE];
	intptr_t iov_remote_delta[UIB_MAX_SGE];	/* peer address - iov_base */
	uint32_t lkey[UIB_MAX_SGE];		/* receive targets: their lkeys */
	struct uib_mr_slot *held[UIB_MAX_SGE];	/* MRs held while we copy */
	int nheld;
};

static inline void uib_target_release(struct uib_target *t)
{
	while (t->nheld)
		uib_mr_put(t->held[--t->nheld]);
}
/* Adds [addr, addr+len) of MR mr (owned by t->pid) to t; p caches the
 * segment mappings of the peer. */
void uib_target_add(struct uib_target *t, struct uib_peer *p,
		    const struct uib_mr_slot *mr, uint64_t addr, size_t len);
/* Copies between our memory and the target: 0 or -errno (-ESRCH: the
 * peer is gone, -EFAULT: its memory is not mapped). */
int uib_xport_write(const struct uib_target *t, const struct iovec *local,
		    int nl);
int uib_xport_read(const struct uib_target *t, const struct iovec *local,
		   int nl);

static inline uint64_t uib_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

#endif /* UIB_H */
