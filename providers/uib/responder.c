// SPDX-License-Identifier: MIT
/*
 * The responder: receive-side semantics of every operation (engine.h).
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "engine.h"

bool uib_resp_ready(const struct uib_peer *p)
{
	uint32_t s = atomic_load_explicit(&p->slot->qp_state,
					  memory_order_acquire);

	return s == IBV_QPS_RTR || s == IBV_QPS_RTS || s == IBV_QPS_SQD ||
	       s == IBV_QPS_SQE;
}

/* Responder's view of a receive scatter list covering len bytes. */
static int recv_target(struct uib_peer *p, const struct uib_rwqe *rw,
		       size_t len, struct uib_target *t)
{
	uint32_t i;

	t->pid = p->pid;
	t->n = 0;
	t->nheld = 0;
	for (i = 0; i < rw->num_sge && len; i++) {
		const struct uib_rsge *s = &rw->sge[i];
		struct uib_mr_slot *mr;
		size_t n = s->length < len ? s->length : len;

		if (!n)
			continue;
		t->lkey[t->n] = s->lkey;
		mr = uib_mr_get(&p->dev->st, s->lkey);
		if (mr)
			t->held[t->nheld++] = mr;
		/* Overflow-safe: the WQE is the peer's memory, any value. */
		if (!mr || mr->ctx != p->slot->ctx || mr->pd != p->slot->pd ||
		    !(mr->access & IBV_ACCESS_LOCAL_WRITE) ||
		    s->addr < mr->addr || s->addr - mr->addr > mr->length ||
		    n > mr->length - (s->addr - mr->addr))
			return -EACCES;
		uib_target_add(t, p, mr, s->addr, n);
		len -= n;
	}
	return len ? -EMSGSIZE : 0;
}

/* Responder's view of [raddr, raddr+len) under rkey, with access. */
static int rkey_target(struct uib_peer *p, uint32_t rkey,
		       uint64_t raddr, size_t len, int access,
		       struct uib_target *t)
{
	struct uib_mr_slot *mr = uib_mr_get(&p->dev->st, rkey);

	t->nheld = 0;
	if (mr)
		t->held[t->nheld++] = mr;
	if (!mr || mr->pd != p->slot->pd || !(mr->access & access) ||
	    !(p->slot->access & access) || raddr < mr->iova ||
	    raddr - mr->iova > mr->length || len > mr->length - (raddr - mr->iova))
		return -EACCES;
	t->pid = uib_mr_owner_pid(&p->dev->st, mr);
	t->n = 0;
	uib_target_add(t, p, mr, mr->addr + (raddr - mr->iova), len);
	return 0;
}

/* IBA 9.9.3: a fatal responder error moves the responder QP to ERR too;
 * its owner flushes when it polls the CQ we flag, and hears of it through
 * its async events (IBA 11.6.2: access error or fatal; and the last WQE
 * reached, for a QP on an SRQ). */
static void responder_to_err(struct uib_peer *p, bool access)
{
	const struct uib_state *st = &p->dev->st;
	uint32_t old = atomic_exchange_explicit(&p->slot->qp_state, IBV_QPS_ERR,
						memory_order_acq_rel);

	atomic_fetch_or_explicit(&p->rcq.hdr->error, UIB_Q_ATTENTION,
				 memory_order_release);
	if (old == IBV_QPS_ERR)
		return;
	uib_ctx_notify(st, p->slot->ctx,
		       access ? IBV_EVENT_QP_ACCESS_ERR : IBV_EVENT_QP_FATAL,
		       p->slot->user_qp);
	if (p->slot->srq_fd >= 0)
		uib_ctx_notify(st, p->slot->ctx, IBV_EVENT_QP_LAST_WQE_REACHED,
			       p->slot->user_qp);
}

/* IBA 10.2.9.2: an armed SRQ limit fires once when the posted receives
 * fall below it. */
static void srq_check_limit(struct uib_peer *p)
{
	struct uib_qhdr *q = p->rq.hdr;
	uint32_t limit = atomic_load_explicit(&q->srq_limit,
					      memory_order_relaxed);

	if (!limit || atomic_load(&q->prod) - atomic_load(&q->cons) >= limit)
		return;
	if (atomic_compare_exchange_strong(&q->srq_limit, &limit, 0))
		uib_ctx_notify(&p->dev->st, p->slot->ctx,
			       IBV_EVENT_SRQ_LIMIT_REACHED, q->user_handle);
}

void uib_build_grh(struct uib_qp *qp, const struct ibv_ah_attr *ah,
		   size_t len, uint8_t *grh)
{
	const struct uib_port_shared *port =
		&qp->ctx->st.sh->port[ah->port_num - 1];
	uint32_t w0 = htobe32(6u << 28 | (uint32_t)ah->grh.traffic_class << 20 |
			      (ah->grh.flow_label & 0xfffff));
	uint16_t plen = htobe16((uint16_t)len);
	uint64_t prefix = htobe64(0xfe80000000000000ull);
	uint64_t guid = htobe64(port->guid);

	memcpy(grh, &w0, 4);
	memcpy(grh + 4, &plen, 2);
	grh[6] = 0x1b;			/* next header: IBA transport */
	grh[7] = ah->grh.hop_limit;
	memcpy(grh + 8, &prefix, 8);
	memcpy(grh + 16, &guid, 8);
	memcpy(grh + 24, ah->grh.dgid.raw, 16);
}

/*
 * Delivers a message to the responder's receive queue: claims a receive
 * WQE, places the data (none for RDMA WRITE with immediate), then writes
 * the responder's completion.  The CQ slot is reserved only once the data
 * is in place, so that a requester killed part way never leaves a hole in
 * the responder's CQ.  *rst is the requester's status.
 */
enum xres uib_resp_send(struct uib_qp *qp, struct uib_peer *p,
			struct uib_swqe *w, struct xfer *x,
			const struct ibv_ah_attr *ah, uint32_t *rst)
{
	union {
		struct uib_rwqe w;
		uint8_t buf[sizeof(struct uib_rwqe) +
			    UIB_MAX_SGE * sizeof(struct uib_rsge)];
	} rw;
	enum ibv_qp_type type = qp->vqp.qp.qp_type;
	bool write_imm = w->opcode == IBV_WR_RDMA_WRITE_WITH_IMM;
	bool small = false;
	struct uib_target t = { .n = 0 };
	struct uib_cqe *cqe;
	uint32_t slot, status = IBV_WC_SUCCESS;
	size_t total = x->len;
	int ret, i;

	if (uib_rq_claim(&p->rq, &rw.w))
		return type == IBV_QPT_RC ? X_RNR : X_DONE;
	if (p->slot->srq_fd >= 0)
		srq_check_limit(p);

	ret = write_imm ? 0 : recv_target(p, &rw.w, total, &t);
	if (ret) {
		uib_target_release(&t);
		status = ret == -EMSGSIZE ? IBV_WC_LOC_LEN_ERR :
					    IBV_WC_LOC_PROT_ERR;
		if (type == IBV_QPT_RC) {
			*rst = ret == -EMSGSIZE ? IBV_WC_REM_INV_REQ_ERR :
						  IBV_WC_REM_OP_ERR;
			responder_to_err(p, false);
		}
	} else if (!write_imm) {
		/* Small and not shared: carry the data in the CQE. */
		small = total <= UIB_CQE_INLINE_MAX && t.n <= 2 && !t.mapped;
		ret = small ? 0 : uib_xport_write(&t, x->iov, x->n);
		uib_target_release(&t);
		if (ret == -ESRCH)
			return type == IBV_QPT_RC ? X_UNREACH : X_DONE;
		if (ret) {
			status = IBV_WC_LOC_PROT_ERR;
			if (type == IBV_QPT_RC) {
				*rst = IBV_WC_REM_OP_ERR;
				responder_to_err(p, false);
			}
		}
	}

	if (uib_cq_reserve(&p->rcq, &slot)) {
		/* IBA 11.4.2.1: CQ overrun is an error of the CQ. */
		uib_cq_overrun(&p->dev->st, p->slot->ctx, &p->rcq);
		if (type == IBV_QPT_RC) {
			responder_to_err(p, false);
			*rst = IBV_WC_REM_OP_ERR;
		}
		return X_DONE;
	}
	cqe = uib_qentry(&p->rcq, slot);
	memset(cqe, 0, offsetof(struct uib_cqe, seq));
	cqe->wr_id = rw.w.wr_id;
	cqe->status = status;
	cqe->qp_num = p->qpn;
	cqe->src_qp = qp->src_qpn;	/* TSS: the parent */
	cqe->slid = qp->ctx->st.sh->port[(qp->attr.port_num ?: 1) - 1].lid;
	cqe->sl = ah ? ah->sl : qp->attr.ah_attr.sl;
	cqe->opcode = write_imm ? IBV_WC_RECV_RDMA_WITH_IMM : IBV_WC_RECV;
	cqe->byte_len = total;
	if (w->opcode == IBV_WR_SEND_WITH_IMM || write_imm) {
		cqe->imm_data = w->imm_data;
		cqe->wc_flags |= IBV_WC_WITH_IMM;
	}
	if (ah && ah->is_global)
		cqe->wc_flags |= IBV_WC_GRH;
	if (w->send_flags & IBV_SEND_SOLICITED)
		cqe->flags |= UIB_CQE_F_SOLICITED;
	if (small && status == IBV_WC_SUCCESS) {
		size_t off = 0;

		for (i = 0; i < x->n; i++) {
			memcpy(cqe->data + off, x->iov[i].iov_base,
			       x->iov[i].iov_len);
			off += x->iov[i].iov_len;
		}
		for (i = 0; i < t.n; i++) {
			cqe->frag[i].addr = (uintptr_t)t.iov[i].iov_base;
			cqe->frag[i].len = t.iov[i].iov_len;
			cqe->frag[i].lkey = t.lkey[i];
		}
		cqe->nfrag = t.n;
		cqe->flags |= UIB_CQE_F_INLINE;
	}
	uib_cq_publish(cqe, slot);
	uib_cq_notify(&p->rcq, status != IBV_WC_SUCCESS ||
				      (w->send_flags & IBV_SEND_SOLICITED));
	return X_DONE;
}

enum xres uib_resp_write(struct uib_qp *qp, struct uib_peer *p,
			 struct uib_swqe *w, struct xfer *x, uint32_t *st)
{
	struct uib_target t;
	int ret;

	if (x->len) {
		ret = rkey_target(p, w->rkey, w->remote_addr, x->len,
				  IBV_ACCESS_REMOTE_WRITE, &t);
		if (!ret)
			ret = uib_xport_write(&t, x->iov, x->n);
		uib_target_release(&t);
		if (ret == -ESRCH)
			return X_UNREACH;
		if (ret) {
			if (qp->vqp.qp.qp_type == IBV_QPT_RC) {
				*st = IBV_WC_REM_ACCESS_ERR;
				responder_to_err(p, true);
			}
			return X_DONE;
		}
	}
	if (w->opcode == IBV_WR_RDMA_WRITE_WITH_IMM)
		return uib_resp_send(qp, p, w, x, NULL, st);
	return X_DONE;
}

enum xres uib_resp_read(struct uib_qp *qp, struct uib_peer *p,
			struct uib_swqe *w, struct xfer *x, uint32_t *st)
{
	struct uib_target t;
	int ret;

	if (!x->len)
		return X_DONE;
	ret = rkey_target(p, w->rkey, w->remote_addr, x->len,
			  IBV_ACCESS_REMOTE_READ, &t);
	if (!ret)
		ret = uib_xport_read(&t, x->iov, x->n);
	uib_target_release(&t);
	if (ret == -ESRCH)
		return X_UNREACH;
	if (ret) {
		*st = IBV_WC_REM_ACCESS_ERR;
		responder_to_err(p, true);
	}
	return X_DONE;
}

static int lock_robust(pthread_mutex_t *m)
{
	int ret = pthread_mutex_lock(m);

	if (ret == EOWNERDEAD)
		ret = pthread_mutex_consistent(m);
	return ret;
}

/* Atomics take the responder device's atomic lock, so they are atomic
 * with respect to every atomic on the device (IBV_ATOMIC_HCA). */
enum xres uib_resp_atomic(struct uib_qp *qp, struct uib_peer *p,
			  struct uib_swqe *w, struct xfer *x, uint32_t *st)
{
	pthread_mutex_t *lock = &p->dev->st.sh->atomic_lock;
	uint64_t old = 0, val;
	struct iovec liov = { &old, 8 };
	struct uib_target t;
	int ret;

	/* IBA 9.4.5: the local side of an atomic is one 8-byte buffer. */
	if (x->len != 8 || x->n != 1) {
		*st = IBV_WC_LOC_LEN_ERR;
		return X_DONE;
	}
	if (w->remote_addr & 7) {
		*st = IBV_WC_REM_INV_REQ_ERR;
		responder_to_err(p, false);
		return X_DONE;
	}
	ret = rkey_target(p, w->rkey, w->remote_addr, 8,
			  IBV_ACCESS_REMOTE_ATOMIC, &t);
	if (ret) {
		uib_target_release(&t);
		*st = IBV_WC_REM_ACCESS_ERR;
		responder_to_err(p, true);
		return X_DONE;
	}
	if (lock_robust(lock)) {
		uib_target_release(&t);
		*st = IBV_WC_REM_OP_ERR;
		return X_DONE;
	}
	if (t.mapped) {
		/* Shared memory: a CPU atomic, so that the owner's own CPU
		 * atomics on it are atomic with ours too. */
		uint64_t *target = t.iov[0].iov_base;

		if (w->opcode == IBV_WR_ATOMIC_FETCH_AND_ADD) {
			old = __atomic_fetch_add(target, w->compare_add,
						 __ATOMIC_SEQ_CST);
		} else {
			old = w->compare_add;
			__atomic_compare_exchange_n(target, &old, w->swap,
						    false, __ATOMIC_SEQ_CST,
						    __ATOMIC_SEQ_CST);
		}
		ret = 0;
	} else {
		ret = uib_xport_read(&t, &liov, 1);
		if (!ret) {
			if (w->opcode == IBV_WR_ATOMIC_FETCH_AND_ADD)
				val = old + w->compare_add;
			else
				val = old == w->compare_add ? w->swap : old;
			liov.iov_base = &val;
			ret = uib_xport_write(&t, &liov, 1);
		}
	}
	pthread_mutex_unlock(lock);
	uib_target_release(&t);
	if (ret == -ESRCH)
		return X_UNREACH;
	if (ret) {
		*st = IBV_WC_REM_ACCESS_ERR;
		responder_to_err(p, true);
		return X_DONE;
	}
	memcpy(x->iov[0].iov_base, &old, 8);
	return X_DONE;
}

