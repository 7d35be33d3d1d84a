// SPDX-License-Identifier: MIT
/*
 * Receive side: SRQs, posting receives into a QP's RQ or an SRQ, claiming
 * receive WQEs (done by requesters, in any process) and flushing them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "uib.h"

int uib_rq_alloc(struct uib_qbuf *qb, enum uib_qkind kind, uint32_t max_wr,
		 uint32_t max_sge)
{
	if (!max_sge)
		max_sge = 1;
	return uib_qbuf_alloc(qb, kind, max_wr, uib_rwqe_stride(max_sge),
			      max_sge);
}

/* Owner side: appends wr to the ring; caller holds the ring's lock. */
static int __rq_post(const struct uib_ring *q, struct ibv_recv_wr *wr)
{
	struct uib_qhdr *h = q->hdr;
	uint32_t prod = atomic_load_explicit(&h->prod, memory_order_relaxed);
	struct uib_rwqe *w;
	int i;

	if ((uint32_t)wr->num_sge > q->max_sge || wr->num_sge < 0)
		return EINVAL;
	/* Acquire: requesters are done copying the slot we reuse. */
	if (prod - atomic_load_explicit(&h->cons, memory_order_acquire) >=
	    uib_qsize(q))
		return ENOMEM;
	w = uib_qentry(q, prod);
	w->wr_id = wr->wr_id;
	w->num_sge = wr->num_sge;
	for (i = 0; i < wr->num_sge; i++) {
		w->sge[i].addr = wr->sg_list[i].addr;
		w->sge[i].length = wr->sg_list[i].length;
		w->sge[i].lkey = wr->sg_list[i].lkey;
	}
	/* Release: the WQE is visible before the index that publishes it. */
	atomic_store_explicit(&h->prod, prod + 1, memory_order_release);
	return 0;
}

int uib_rq_claim(const struct uib_ring *q, struct uib_rwqe *out)
{
	struct uib_qhdr *h = q->hdr;
	uint32_t cons = atomic_load_explicit(&h->cons, memory_order_acquire);

	for (;;) {
		struct uib_rwqe *w;
		uint32_t n;

		if (cons == atomic_load_explicit(&h->prod,
						 memory_order_acquire))
			return -ENOENT;
		w = uib_qentry(q, cons);
		/* One read: the owner (or a stray write) may change it. */
		n = *(volatile uint32_t *)&w->num_sge;
		if (n > q->max_sge)
			n = q->max_sge;
		out->wr_id = w->wr_id;
		out->num_sge = n;
		memcpy(out->sge, w->sge, n * sizeof(w->sge[0]));
		/* Success validates the copy: the owner cannot have reused
		 * the slot while cons had not moved past it. */
		if (atomic_compare_exchange_weak_explicit(
			    &h->cons, &cons, cons + 1, memory_order_acq_rel,
			    memory_order_acquire))
			return 0;
	}
}

void uib_rq_flush(struct uib_qp *qp)
{
	struct uib_cq *cq = to_ucq(qp->vqp.qp.recv_cq);
	union {
		struct uib_rwqe w;
		uint8_t buf[sizeof(struct uib_rwqe) +
			    UIB_MAX_SGE * sizeof(struct uib_rsge)];
	} u;

	if (!qp->rq.r.hdr)
		return;
	while (!uib_rq_claim(&qp->rq.r, &u.w)) {
		struct uib_cqe cqe = {
			.wr_id = u.w.wr_id,
			.status = IBV_WC_WR_FLUSH_ERR,
			.opcode = IBV_WC_RECV,
			.qp_num = qp->qpn,
		};

		uib_cq_push(cq, &cqe);
	}
}

int uib_post_recv(struct ibv_qp *ibqp, struct ibv_recv_wr *wr,
		  struct ibv_recv_wr **bad_wr)
{
	struct uib_qp *qp = to_uqp(ibqp);
	uint32_t state = uib_qp_state(qp);
	int ret = 0;

	if (ibqp->srq) {
		*bad_wr = wr;
		return EINVAL;	/* receives go to the SRQ */
	}
	/* IBA 10.8.2: receives may be posted in any state but RESET. */
	if (state == IBV_QPS_RESET) {
		*bad_wr = wr;
		return EINVAL;
	}
	pthread_spin_lock(&qp->rq_lock);
	for (; wr; wr = wr->next) {
		ret = __rq_post(&qp->rq.r, wr);
		if (ret) {
			*bad_wr = wr;
			break;
		}
	}
	pthread_spin_unlock(&qp->rq_lock);
	/* In ERR, what was posted completes at once, flushed. */
	if (state == IBV_QPS_ERR)
		uib_rq_flush(qp);
	return ret;
}

int uib_post_srq_recv(struct ibv_srq *ibsrq, struct ibv_recv_wr *wr,
		      struct ibv_recv_wr **bad_wr)
{
	struct uib_srq *srq = to_usrq(ibsrq);
	int ret = 0;

	pthread_spin_lock(&srq->lock);
	for (; wr; wr = wr->next) {
		ret = __rq_post(&srq->q.r, wr);
		if (ret) {
			*bad_wr = wr;
			break;
		}
	}
	pthread_spin_unlock(&srq->lock);
	return ret;
}

struct ibv_srq *uib_create_srq(struct ibv_pd *pd,
			       struct ibv_srq_init_attr *attr)
{
	struct uib_context *ctx = to_uctx(pd->context);
	struct uib_srq *srq;
	int ret;

	if (!attr->attr.max_wr || attr->attr.max_wr > UIB_MAX_SRQ_WR ||
	    attr->attr.max_sge > UIB_MAX_SGE ||
	    attr->attr.srq_limit > attr->attr.max_wr) {
		errno = EINVAL;
		return NULL;
	}
	ret = uib_res_get(&ctx->st, ctx->ctx_slot, UIB_RES_SRQ, UIB_MAX_SRQ);
	if (ret) {
		errno = -ret;
		return NULL;
	}
	srq = calloc(1, sizeof(*srq));
	if (!srq) {
		ret = -ENOMEM;
		goto err_res;
	}
	ret = uib_rq_alloc(&srq->q, UIB_QK_SRQ, attr->attr.max_wr,
			   attr->attr.max_sge);
	if (ret)
		goto err_free;
	pthread_spin_init(&srq->lock, PTHREAD_PROCESS_PRIVATE);
	srq->max_wr = uib_qsize(&srq->q.r);
	srq->max_sge = srq->q.r.max_sge;
	attr->attr.max_wr = srq->max_wr;
	attr->attr.max_sge = srq->max_sge;
	srq->vsrq.srq_type = IBV_SRQT_BASIC;
	srq->q.r.hdr->user_handle = (uintptr_t)&srq->vsrq.srq;
	atomic_store(&srq->q.r.hdr->srq_limit, attr->attr.srq_limit);
	atomic_fetch_add(&to_upd(pd)->users, 1);
	return &srq->vsrq.srq;

err_free:
	free(srq);
err_res:
	uib_res_put(&ctx->st, ctx->ctx_slot, UIB_RES_SRQ);
	errno = -ret;
	return NULL;
}

int uib_modify_srq(struct ibv_srq *ibsrq, struct ibv_srq_attr *attr, int mask)
{
	struct uib_srq *srq = to_usrq(ibsrq);

	/* Resizing is not offered (no IBV_DEVICE_SRQ_RESIZE). */
	if (mask & ~IBV_SRQ_LIMIT || mask & IBV_SRQ_MAX_WR)
		return EINVAL;
	if (mask & IBV_SRQ_LIMIT) {
		if (attr->srq_limit > srq->max_wr)
			return EINVAL;
		atomic_store(&srq->q.r.hdr->srq_limit, attr->srq_limit);
	}
	return 0;
}

int uib_query_srq(struct ibv_srq *ibsrq, struct ibv_srq_attr *attr)
{
	struct uib_srq *srq = to_usrq(ibsrq);

	attr->max_wr = srq->max_wr;
	attr->max_sge = srq->max_sge;
	attr->srq_limit = atomic_load(&srq->q.r.hdr->srq_limit);
	return 0;
}

int uib_destroy_srq(struct ibv_srq *ibsrq)
{
	struct uib_srq *srq = to_usrq(ibsrq);

	struct uib_context *ctx = to_uctx(ibsrq->context);

	if (atomic_load(&srq->users))
		return EBUSY;
	uib_res_put(&ctx->st, ctx->ctx_slot, UIB_RES_SRQ);
	atomic_fetch_sub(&to_upd(ibsrq->pd)->users, 1);
	uib_qbuf_free(&srq->q);
	pthread_spin_destroy(&srq->lock);
	free(srq);
	return 0;
}
