// SPDX-License-Identifier: MIT
/*
 * The requester side of the data path: posting send work (ibv_post_send
 * and the ibv_wr_* API) and executing it.
 *
 * The requester's own calls execute its work requests, in order, straight
 * into the responder's queues and memory: there is no daemon and no thread
 * on the data path.  A WQE that cannot complete yet (no receive posted: RNR;
 * responder unreachable: transport retry) stays at the head of the send
 * queue and is retried from the next post or poll, until the QP's
 * rnr_retry / retry_cnt x timeout budget is spent (IBA 9.7.5.2.8, 9.7.6.1).
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "uib.h"

/* IBA table 45: RNR NAK timer field, in microseconds. */
static const uint32_t rnr_timer_us[32] = {
	655360, 10,    20,    30,    40,    60,     80,     120,
	160,    240,   320,   480,   640,   960,    1280,   1920,
	2560,   3840,  5120,  7680,  10240, 15360,  20480,  30720,
	40960,  61440, 81920, 122880, 163840, 245760, 327680, 491520,
};

enum xres {
	X_DONE,		/* completed, *status says how */
	X_RNR,		/* responder had no receive posted */
	X_UNREACH,	/* responder not there or not ready */
	X_CQ_FULL,	/* our own CQ has no room for the completion */
};

/* The local side of a WQE, checked against our MRs. */
struct xfer {
	struct iovec iov[UIB_MAX_SGE + 1];	/* +1: a UD GRH */
	int n;
	size_t len;
};

static const uint8_t wc_opcode[] = {
	[IBV_WR_SEND] = IBV_WC_SEND,
	[IBV_WR_SEND_WITH_IMM] = IBV_WC_SEND,
	[IBV_WR_RDMA_WRITE] = IBV_WC_RDMA_WRITE,
	[IBV_WR_RDMA_WRITE_WITH_IMM] = IBV_WC_RDMA_WRITE,
	[IBV_WR_RDMA_READ] = IBV_WC_RDMA_READ,
	[IBV_WR_ATOMIC_CMP_AND_SWP] = IBV_WC_COMP_SWAP,
	[IBV_WR_ATOMIC_FETCH_AND_ADD] = IBV_WC_FETCH_ADD,
};

static struct ibv_sge *wqe_sges(struct uib_swqe *w)
{
	return (struct ibv_sge *)w->payload;
}

static int local_xfer(struct uib_qp *qp, struct uib_swqe *w, int access,
		      struct xfer *x)
{
	struct ibv_sge *sge = wqe_sges(w);
	uint32_t pdn = to_upd(qp->vqp.qp.pd)->pdn;
	uint32_t i;
	int st;

	x->n = 0;
	x->len = 0;
	if (w->send_flags & IBV_SEND_INLINE) {
		x->iov[0].iov_base = w->payload;
		x->iov[0].iov_len = w->inline_len;
		x->n = w->inline_len ? 1 : 0;
		x->len = w->inline_len;
		return IBV_WC_SUCCESS;
	}
	for (i = 0; i < w->num_sge; i++) {
		if (!sge[i].length)
			continue;
		st = uib_check_lkey(qp->ctx, pdn, &sge[i], access);
		if (st)
			return st;
		x->iov[x->n].iov_base = (void *)(uintptr_t)sge[i].addr;
		x->iov[x->n].iov_len = sge[i].length;
		x->n++;
		x->len += sge[i].length;
	}
	if (x->len > UIB_MAX_MSG)
		return IBV_WC_LOC_LEN_ERR;
	return IBV_WC_SUCCESS;
}

/*
 * A port that is not ACTIVE has no link: nothing leaves or reaches it
 * (IBA 7.2: a link that is down carries no packets; the QP state machine
 * of 10.3 does not depend on it).  So traffic through a DOWN port, at
 * either end, is lost like traffic into an unplugged cable: RC retries
 * until its budget gives IBV_WC_RETRY_EXC_ERR, UC and UD lose it silently.
 */
static bool port_active(const struct uib_state *st, uint8_t port)
{
	return port >= 1 && port <= UIB_MAX_PORTS &&
	       atomic_load_explicit(&st->sh->port[port - 1].state,
				    memory_order_relaxed) == IBV_PORT_ACTIVE;
}

static bool link_up(const struct uib_qp *qp, const struct uib_peer *p)
{
	return port_active(&qp->ctx->st, qp->attr.port_num) &&
	       port_active(&p->dev->st, p->port);
}

static bool responder_ready(const struct uib_peer *p)
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

static void build_grh(struct uib_qp *qp, const struct ibv_ah_attr *ah,
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
static enum xres deliver(struct uib_qp *qp, struct uib_peer *p,
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
	cqe->src_qp = qp->qpn;
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

static enum xres rdma_write(struct uib_qp *qp, struct uib_peer *p,
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
		return deliver(qp, p, w, x, NULL, st);
	return X_DONE;
}

static enum xres rdma_read(struct uib_qp *qp, struct uib_peer *p,
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
static enum xres atomic_op(struct uib_qp *qp, struct uib_peer *p,
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

static enum xres exec_ud(struct uib_qp *qp, struct uib_swqe *w, struct xfer *x,
			 uint32_t *st)
{
	struct uib_peer *p = &qp->ud_peer;
	uint8_t grh[UIB_GRH_LEN];
	uint32_t qkey;
	uint8_t port;

	if (x->len > UIB_MTU) {
		*st = IBV_WC_LOC_LEN_ERR;
		return X_DONE;
	}
	if (!uib_peer_valid(p) || p->qpn != w->remote_qpn ||
	    (w->ah.is_global ?
		     be64toh(w->ah.grh.dgid.global.interface_id) !=
			     p->dev->st.sh->port[p->port - 1].guid :
		     w->ah.dlid != p->dev->st.sh->port[p->port - 1].lid)) {
		struct uib_devref *dev = uib_subnet_find(qp->ctx, &w->ah, &port);

		/* Unreliable: nobody there, the datagram is lost. */
		if (!dev || uib_peer_resolve(p, dev, port, w->remote_qpn))
			return X_DONE;
	}
	/* IBA 10.2.4: a Q_Key with the high bit set means "use ours". */
	qkey = (w->remote_qkey & 0x80000000u) ? qp->attr.qkey : w->remote_qkey;
	if (p->slot->qp_type != IBV_QPT_UD || !responder_ready(p) ||
	    p->slot->qkey != qkey || !link_up(qp, p))
		return X_DONE;

	/* IBA 11.4.1.2: the responder's buffer starts with 40 bytes for
	 * a GRH, which holds one only when the sender used a global route
	 * (IBV_WC_GRH); otherwise those bytes are zeroed. */
	memmove(&x->iov[1], &x->iov[0], x->n * sizeof(x->iov[0]));
	memset(grh, 0, sizeof(grh));
	if (w->ah.is_global)
		build_grh(qp, &w->ah, x->len, grh);
	x->iov[0].iov_base = grh;
	x->iov[0].iov_len = UIB_GRH_LEN;
	x->n++;
	x->len += UIB_GRH_LEN;
	return deliver(qp, p, w, x, &w->ah, st);
}

static bool peer_alive(struct uib_qp *qp, struct uib_peer *p);

static enum xres exec_wqe(struct uib_qp *qp, struct uib_swqe *w, uint32_t *st)
{
	enum ibv_qp_type type = qp->vqp.qp.qp_type;
	int access = 0;
	struct xfer x;
	uint8_t port;

	if (w->opcode == IBV_WR_RDMA_READ ||
	    w->opcode == IBV_WR_ATOMIC_CMP_AND_SWP ||
	    w->opcode == IBV_WR_ATOMIC_FETCH_AND_ADD)
		access = IBV_ACCESS_LOCAL_WRITE;
	*st = local_xfer(qp, w, access, &x);
	if (*st)
		return X_DONE;
	if (type == IBV_QPT_UD)
		return exec_ud(qp, w, &x, st);

	if (!uib_peer_valid(&qp->peer)) {
		struct uib_devref *dev =
			uib_subnet_find(qp->ctx, &qp->attr.ah_attr, &port);

		if (!dev ||
		    uib_peer_resolve(&qp->peer, dev, port, qp->attr.dest_qp_num))
			return type == IBV_QPT_RC ? X_UNREACH : X_DONE;
	}
	if (!responder_ready(&qp->peer) || qp->peer.slot->qp_type != type ||
	    !link_up(qp, &qp->peer) ||
	    (type == IBV_QPT_RC && !peer_alive(qp, &qp->peer)))
		return type == IBV_QPT_RC ? X_UNREACH : X_DONE;

	switch (w->opcode) {
	case IBV_WR_SEND:
	case IBV_WR_SEND_WITH_IMM:
		return deliver(qp, &qp->peer, w, &x, NULL, st);
	case IBV_WR_RDMA_WRITE:
	case IBV_WR_RDMA_WRITE_WITH_IMM:
		return rdma_write(qp, &qp->peer, w, &x, st);
	case IBV_WR_RDMA_READ:
		return rdma_read(qp, &qp->peer, w, &x, st);
	default:
		return atomic_op(qp, &qp->peer, w, &x, st);
	}
}

/* Writes the send completion if one is due; false if our CQ overran. */
static bool complete(struct uib_qp *qp, struct uib_swqe *w, uint32_t status)
{
	struct uib_cqe cqe = {};
	struct ibv_sge *sge = wqe_sges(w);
	uint32_t i;

	if (status == IBV_WC_SUCCESS && !qp->sq_sig_all &&
	    !(w->send_flags & IBV_SEND_SIGNALED))
		return true;
	cqe.wr_id = w->wr_id;
	cqe.status = status;
	cqe.opcode = wc_opcode[w->opcode];
	cqe.qp_num = qp->qpn;
	if (w->opcode == IBV_WR_RDMA_READ)
		for (i = 0; i < w->num_sge; i++)
			cqe.byte_len += sge[i].length;
	else if (w->opcode == IBV_WR_ATOMIC_CMP_AND_SWP ||
		 w->opcode == IBV_WR_ATOMIC_FETCH_AND_ADD)
		cqe.byte_len = 8;
	return !uib_cq_push(to_ucq(qp->vqp.qp.send_cq), &cqe);
}

static void *progress_main(void *arg)
{
	struct uib_context *ctx = arg;

	unsigned int seen = atomic_load(&ctx->drives);

	pthread_mutex_lock(&ctx->progress_lock);
	while (!ctx->progress_stop) {
		unsigned int now;

		if (!atomic_load(&ctx->npending)) {
			pthread_cond_wait(&ctx->wake, &ctx->progress_lock);
			continue;
		}
		pthread_mutex_unlock(&ctx->progress_lock);
		/* Sleep a short RNR timer (IBA table 45: 0.16 ms).  Retry only
		 * if the program has not polled or posted meanwhile: while
		 * it does, it drives the retries itself, and on a small
		 * machine a third busy thread would only slow it down. */
		usleep(160);
		now = atomic_load_explicit(&ctx->drives, memory_order_relaxed);
		if (now == seen) {
			uib_ctx_progress(ctx);
			now = atomic_load_explicit(&ctx->drives,
						   memory_order_relaxed);
		}
		seen = now;
		pthread_mutex_lock(&ctx->progress_lock);
	}
	pthread_mutex_unlock(&ctx->progress_lock);
	return NULL;
}

static void progress_kick(struct uib_context *ctx)
{
	pthread_mutex_lock(&ctx->progress_lock);
	if (!ctx->progress_started && !ctx->progress_stop) {
		sigset_t all, old;

		/* The helper must not take the program's signals. */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		ctx->progress_started = !pthread_create(
			&ctx->progress_thread, NULL, progress_main, ctx);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	pthread_cond_signal(&ctx->wake);
	pthread_mutex_unlock(&ctx->progress_lock);
}

void uib_progress_stop(struct uib_context *ctx)
{
	pthread_mutex_lock(&ctx->progress_lock);
	ctx->progress_stop = true;
	pthread_cond_signal(&ctx->wake);
	pthread_mutex_unlock(&ctx->progress_lock);
	if (ctx->progress_started)
		pthread_join(ctx->progress_thread, NULL);
}

static void set_pending(struct uib_qp *qp, bool on)
{
	if (qp->pending == on)
		return;
	qp->pending = on;
	if (atomic_fetch_add(&qp->ctx->npending, on ? 1 : -1) == 0 && on)
		progress_kick(qp->ctx);
}

/* Is the peer's process still there?  Checked every 10 ms at most: a dead
 * peer then looks like a silent one, and the retry budget runs out. */
static bool peer_alive(struct uib_qp *qp, struct uib_peer *p)
{
	const struct uib_ctx_slot *c;
	uint64_t now;

	if (p->dead)
		return false;
	now = uib_now_ns();
	if (now - qp->peer_checked_ns < 10000000ull)
		return true;
	qp->peer_checked_ns = now;
	c = &p->dev->st.sh->ctx[p->slot->ctx % UIB_MAX_CTX];
	if (uib_proc_alive(&c->proc))
		return true;
	p->dead = true;
	uib_pmap_forget(p->pid);
	return false;
}

/* How long the head WQE may wait before it fails; 0 = forever. */
static uint64_t wait_budget_ns(struct uib_qp *qp, enum xres why)
{
	if (why == X_RNR) {
		uint32_t t = qp->peer.slot ? qp->peer.slot->min_rnr_timer : 0;

		/* IBA 9.7.5.2.8: rnr_retry 7 retries forever. */
		if (qp->attr.rnr_retry == 7)
			return 0;
		return (uint64_t)qp->attr.rnr_retry * rnr_timer_us[t & 31] *
			       1000 + 1;
	}
	/* IBA 9.7.6.1.3: local ACK timeout 4.096 us x 2^timeout, tried
	 * retry_cnt + 1 times; timeout 0 means wait forever. */
	if (!qp->attr.timeout)
		return 0;
	return (uint64_t)(qp->attr.retry_cnt + 1) * (4096ull << qp->attr.timeout);
}

void __uib_sq_flush(struct uib_qp *qp)
{
	while (qp->sq_head != qp->sq_tail) {
		struct uib_swqe *w = uib_sq_wqe(qp, qp->sq_head);
		struct uib_cqe cqe = {
			.wr_id = w->wr_id,
			.status = IBV_WC_WR_FLUSH_ERR,
			.opcode = wc_opcode[w->opcode],
			.qp_num = qp->qpn,
		};

		/* IBA 10.3.1: every WQE flushed gets a completion. */
		uib_cq_push(to_ucq(qp->vqp.qp.send_cq), &cqe);
		qp->sq_head++;
	}
	qp->wr_begin = qp->sq_tail;
	set_pending(qp, false);
}

void __uib_sq_progress(struct uib_qp *qp)
{
	uint32_t state = uib_qp_state(qp);

	if (state == IBV_QPS_ERR) {
		if (!qp->flushed)
			__uib_qp_to_err(qp);
		else
			__uib_sq_flush(qp);
		return;
	}
	if (state != IBV_QPS_RTS)
		return;
	while (qp->sq_head != qp->wr_begin) {
		struct uib_swqe *w = uib_sq_wqe(qp, qp->sq_head);
		uint32_t status;
		enum xres r;
		bool ok;

		r = exec_wqe(qp, w, &status);
		/* A dead responder sends no RNR NAKs: it is silent. */
		if (r == X_RNR && !peer_alive(qp, &qp->peer))
			r = X_UNREACH;
		if (r == X_RNR || r == X_UNREACH) {
			uint64_t now = uib_now_ns(), budget;

			if (!qp->pending) {
				qp->wait_since_ns = now;
				set_pending(qp, true);
			}
			budget = wait_budget_ns(qp, r);
			if (!budget || now - qp->wait_since_ns < budget)
				return;
			status = r == X_RNR ? IBV_WC_RNR_RETRY_EXC_ERR :
					      IBV_WC_RETRY_EXC_ERR;
		}
		set_pending(qp, false);
		ok = complete(qp, w, status);
		qp->sq_head++;
		/* IBA 11.4.2.1: an overrun CQ is in error, and so is the QP
		 * whose completion it lost. */
		if (status != IBV_WC_SUCCESS || !ok) {
			__uib_qp_to_err(qp);
			return;
		}
	}
}

void uib_ctx_progress(struct uib_context *ctx)
{
	struct uib_qp *qp;

	atomic_fetch_add_explicit(&ctx->drives, 1, memory_order_relaxed);
	if (pthread_mutex_trylock(&ctx->qp_lock))
		return;
	for (qp = ctx->qps; qp; qp = qp->next) {
		if (!atomic_load_explicit(&qp->pending, memory_order_relaxed) ||
		    pthread_spin_trylock(&qp->sq_lock))
			continue;
		__uib_sq_progress(qp);
		pthread_spin_unlock(&qp->sq_lock);
	}
	pthread_mutex_unlock(&ctx->qp_lock);
}

/* Which opcodes each transport carries (IBA table 38). */
static bool opcode_ok(enum ibv_qp_type type, uint32_t op)
{
	switch (op) {
	case IBV_WR_SEND:
	case IBV_WR_SEND_WITH_IMM:
		return true;
	case IBV_WR_RDMA_WRITE:
	case IBV_WR_RDMA_WRITE_WITH_IMM:
		return type != IBV_QPT_UD;
	case IBV_WR_RDMA_READ:
	case IBV_WR_ATOMIC_CMP_AND_SWP:
	case IBV_WR_ATOMIC_FETCH_AND_ADD:
		return type == IBV_QPT_RC;
	default:
		return false;
	}
}

static bool may_inline(uint32_t op)
{
	return op == IBV_WR_SEND || op == IBV_WR_SEND_WITH_IMM ||
	       op == IBV_WR_RDMA_WRITE || op == IBV_WR_RDMA_WRITE_WITH_IMM;
}

/* Takes the next free SQ slot; caller holds sq_lock. */
static struct uib_swqe *sq_next(struct uib_qp *qp)
{
	struct uib_swqe *w;

	if (qp->sq_tail - qp->sq_head > qp->sq_mask)
		return NULL;
	w = uib_sq_wqe(qp, qp->sq_tail);
	memset(w, 0, sizeof(*w));
	return w;
}

static int post_one(struct uib_qp *qp, struct ibv_send_wr *wr)
{
	enum ibv_qp_type type = qp->vqp.qp.qp_type;
	struct uib_swqe *w;
	int i;

	if (!opcode_ok(type, wr->opcode) || wr->num_sge < 0 ||
	    (uint32_t)wr->num_sge > qp->cap.max_send_sge)
		return EINVAL;
	if (type == IBV_QPT_UD && !wr->wr.ud.ah)
		return EINVAL;
	w = sq_next(qp);
	if (!w)
		return ENOMEM;
	w->wr_id = wr->wr_id;
	w->opcode = wr->opcode;
	w->send_flags = wr->send_flags;
	w->imm_data = wr->imm_data;
	switch (wr->opcode) {
	case IBV_WR_RDMA_WRITE:
	case IBV_WR_RDMA_WRITE_WITH_IMM:
	case IBV_WR_RDMA_READ:
		w->remote_addr = wr->wr.rdma.remote_addr;
		w->rkey = wr->wr.rdma.rkey;
		break;
	case IBV_WR_ATOMIC_CMP_AND_SWP:
	case IBV_WR_ATOMIC_FETCH_AND_ADD:
		w->remote_addr = wr->wr.atomic.remote_addr;
		w->rkey = wr->wr.atomic.rkey;
		w->compare_add = wr->wr.atomic.compare_add;
		w->swap = wr->wr.atomic.swap;
		break;
	default:
		break;
	}
	if (type == IBV_QPT_UD) {
		w->ah = to_uah(wr->wr.ud.ah)->attr;
		w->remote_qpn = wr->wr.ud.remote_qpn;
		w->remote_qkey = wr->wr.ud.remote_qkey;
	}
	if (wr->send_flags & IBV_SEND_INLINE && may_inline(wr->opcode)) {
		size_t len = 0;

		for (i = 0; i < wr->num_sge; i++)
			len += wr->sg_list[i].length;
		if (len > qp->cap.max_inline_data)
			return EINVAL;
		for (i = 0; i < wr->num_sge; i++) {
			memcpy(w->payload + w->inline_len,
			       (void *)(uintptr_t)wr->sg_list[i].addr,
			       wr->sg_list[i].length);
			w->inline_len += wr->sg_list[i].length;
		}
	} else {
		w->send_flags &= ~IBV_SEND_INLINE;
		w->num_sge = wr->num_sge;
		memcpy(wqe_sges(w), wr->sg_list,
		       wr->num_sge * sizeof(struct ibv_sge));
	}
	qp->sq_tail++;
	return 0;
}

int uib_post_send(struct ibv_qp *ibqp, struct ibv_send_wr *wr,
		  struct ibv_send_wr **bad_wr)
{
	struct uib_qp *qp = to_uqp(ibqp);
	uint32_t state;
	int ret = 0;

	pthread_spin_lock(&qp->sq_lock);
	state = uib_qp_state(qp);
	/* IBA 10.8.1: sends are posted in RTS (or SQD); in ERR they are
	 * accepted and flushed. */
	if (state != IBV_QPS_RTS && state != IBV_QPS_SQD &&
	    state != IBV_QPS_ERR) {
		*bad_wr = wr;
		ret = EINVAL;
		goto out;
	}
	for (; wr; wr = wr->next) {
		ret = post_one(qp, wr);
		if (ret) {
			*bad_wr = wr;
			break;
		}
	}
	qp->wr_begin = qp->sq_tail;
	__uib_sq_progress(qp);
out:
	pthread_spin_unlock(&qp->sq_lock);
	return ret;
}

/*
 * The ibv_wr_* API: wr_start takes the SQ lock, each builder stages one
 * WQE after wr_begin, setters fill the last one, wr_complete executes them
 * (or wr_abort drops them) and releases the lock.
 */
static struct uib_swqe *wr_cur(struct uib_qp *qp)
{
	if (qp->wr_err || qp->sq_tail == qp->wr_begin)
		return NULL;
	return uib_sq_wqe(qp, qp->sq_tail - 1);
}

static void wr_start(struct ibv_qp_ex *x)
{
	struct uib_qp *qp = to_uqp_ex(x);

	pthread_spin_lock(&qp->sq_lock);
	qp->wr_begin = qp->sq_tail;
	qp->wr_err = 0;
}

static struct uib_swqe *wr_new(struct ibv_qp_ex *x, uint32_t op)
{
	struct uib_qp *qp = to_uqp_ex(x);
	struct uib_swqe *w;

	if (qp->wr_err)
		return NULL;
	if (!opcode_ok(qp->vqp.qp.qp_type, op)) {
		qp->wr_err = EINVAL;
		return NULL;
	}
	w = sq_next(qp);
	if (!w) {
		qp->wr_err = ENOMEM;
		return NULL;
	}
	w->wr_id = x->wr_id;
	w->send_flags = x->wr_flags & ~IBV_SEND_INLINE;
	w->opcode = op;
	qp->sq_tail++;
	return w;
}

static void wr_send(struct ibv_qp_ex *x)
{
	wr_new(x, IBV_WR_SEND);
}

static void wr_send_imm(struct ibv_qp_ex *x, __be32 imm)
{
	struct uib_swqe *w = wr_new(x, IBV_WR_SEND_WITH_IMM);

	if (w)
		w->imm_data = imm;
}

static void wr_rdma(struct ibv_qp_ex *x, uint32_t op, uint32_t rkey,
		    uint64_t raddr, __be32 imm)
{
	struct uib_swqe *w = wr_new(x, op);

	if (!w)
		return;
	w->rkey = rkey;
	w->remote_addr = raddr;
	w->imm_data = imm;
}

static void wr_rdma_write(struct ibv_qp_ex *x, uint32_t rkey, uint64_t raddr)
{
	wr_rdma(x, IBV_WR_RDMA_WRITE, rkey, raddr, 0);
}

static void wr_rdma_write_imm(struct ibv_qp_ex *x, uint32_t rkey,
			      uint64_t raddr, __be32 imm)
{
	wr_rdma(x, IBV_WR_RDMA_WRITE_WITH_IMM, rkey, raddr, imm);
}

static void wr_rdma_read(struct ibv_qp_ex *x, uint32_t rkey, uint64_t raddr)
{
	wr_rdma(x, IBV_WR_RDMA_READ, rkey, raddr, 0);
}

static void wr_atomic_cmp_swp(struct ibv_qp_ex *x, uint32_t rkey,
			      uint64_t raddr, uint64_t compare, uint64_t swap)
{
	struct uib_swqe *w = wr_new(x, IBV_WR_ATOMIC_CMP_AND_SWP);

	if (!w)
		return;
	w->rkey = rkey;
	w->remote_addr = raddr;
	w->compare_add = compare;
	w->swap = swap;
}

static void wr_atomic_fetch_add(struct ibv_qp_ex *x, uint32_t rkey,
				uint64_t raddr, uint64_t add)
{
	struct uib_swqe *w = wr_new(x, IBV_WR_ATOMIC_FETCH_AND_ADD);

	if (!w)
		return;
	w->rkey = rkey;
	w->remote_addr = raddr;
	w->compare_add = add;
}

static void wr_set_sge_list(struct ibv_qp_ex *x, size_t n,
			    const struct ibv_sge *list)
{
	struct uib_qp *qp = to_uqp_ex(x);
	struct uib_swqe *w = wr_cur(qp);

	if (!w)
		return;
	if (n > qp->cap.max_send_sge) {
		qp->wr_err = EINVAL;
		return;
	}
	w->num_sge = n;
	memcpy(wqe_sges(w), list, n * sizeof(*list));
}

static void wr_set_sge(struct ibv_qp_ex *x, uint32_t lkey, uint64_t addr,
		       uint32_t length)
{
	struct ibv_sge sge = { .addr = addr, .length = length, .lkey = lkey };

	wr_set_sge_list(x, 1, &sge);
}

static void wr_set_inline_data_list(struct ibv_qp_ex *x, size_t n,
				    const struct ibv_data_buf *bufs)
{
	struct uib_qp *qp = to_uqp_ex(x);
	struct uib_swqe *w = wr_cur(qp);
	size_t i, len = 0;

	if (!w)
		return;
	for (i = 0; i < n; i++)
		len += bufs[i].length;
	if (!may_inline(w->opcode) || len > qp->cap.max_inline_data) {
		qp->wr_err = EINVAL;
		return;
	}
	w->inline_len = 0;
	for (i = 0; i < n; i++) {
		memcpy(w->payload + w->inline_len, bufs[i].addr,
		       bufs[i].length);
		w->inline_len += bufs[i].length;
	}
	w->send_flags |= IBV_SEND_INLINE;
}

static void wr_set_inline_data(struct ibv_qp_ex *x, void *addr, size_t length)
{
	struct ibv_data_buf buf = { .addr = addr, .length = length };

	wr_set_inline_data_list(x, 1, &buf);
}

static void wr_set_ud_addr(struct ibv_qp_ex *x, struct ibv_ah *ah,
			   uint32_t remote_qpn, uint32_t remote_qkey)
{
	struct uib_qp *qp = to_uqp_ex(x);
	struct uib_swqe *w = wr_cur(qp);

	if (!w)
		return;
	if (qp->vqp.qp.qp_type != IBV_QPT_UD || !ah) {
		qp->wr_err = EINVAL;
		return;
	}
	w->ah = to_uah(ah)->attr;
	w->remote_qpn = remote_qpn;
	w->remote_qkey = remote_qkey;
}

static int wr_complete(struct ibv_qp_ex *x)
{
	struct uib_qp *qp = to_uqp_ex(x);
	uint32_t state = uib_qp_state(qp);
	int ret = qp->wr_err;

	if (!ret && state != IBV_QPS_RTS && state != IBV_QPS_SQD &&
	    state != IBV_QPS_ERR)
		ret = EINVAL;
	if (ret)
		qp->sq_tail = qp->wr_begin;	/* nothing of the batch posts */
	qp->wr_begin = qp->sq_tail;
	if (!ret)
		__uib_sq_progress(qp);
	pthread_spin_unlock(&qp->sq_lock);
	return ret;
}

static void wr_abort(struct ibv_qp_ex *x)
{
	struct uib_qp *qp = to_uqp_ex(x);

	qp->sq_tail = qp->wr_begin;
	pthread_spin_unlock(&qp->sq_lock);
}

void uib_qp_init_wr_ops(struct uib_qp *qp)
{
	struct ibv_qp_ex *x = &qp->vqp.qp_ex;

	x->wr_start = wr_start;
	x->wr_complete = wr_complete;
	x->wr_abort = wr_abort;
	x->wr_send = wr_send;
	x->wr_send_imm = wr_send_imm;
	x->wr_rdma_write = wr_rdma_write;
	x->wr_rdma_write_imm = wr_rdma_write_imm;
	x->wr_rdma_read = wr_rdma_read;
	x->wr_atomic_cmp_swp = wr_atomic_cmp_swp;
	x->wr_atomic_fetch_add = wr_atomic_fetch_add;
	x->wr_set_sge = wr_set_sge;
	x->wr_set_sge_list = wr_set_sge_list;
	x->wr_set_inline_data = wr_set_inline_data;
	x->wr_set_inline_data_list = wr_set_inline_data_list;
	x->wr_set_ud_addr = wr_set_ud_addr;
}
