// SPDX-License-Identifier: MIT
/*
 * Posting send work: ibv_post_send and the ibv_wr_* API.  Each post hands
 * the queued WQEs to the engine (engine.c), which executes them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "engine.h"

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
	case IBV_WR_TSO:
		return type == IBV_QPT_UD;
	default:
		return false;
	}
}

static bool may_inline(uint32_t op)
{
	return op == IBV_WR_SEND || op == IBV_WR_SEND_WITH_IMM ||
	       op == IBV_WR_RDMA_WRITE || op == IBV_WR_RDMA_WRITE_WITH_IMM;
}

/*
 * IBV_WR_TSO (UD LSO): one WQE of a header and up to max_tso payload bytes
 * leaves as datagrams of the header plus mss payload bytes each, so every
 * one must fit the MTU.  EINVAL for an mss of 0, a header larger than the
 * QP's max_tso_header, or a payload larger than max_tso.
 */
static int tso_check(const struct uib_qp *qp, const struct ibv_sge *sg,
		     int num_sge, uint32_t hdr_sz, uint32_t mss)
{
	uint64_t len = 0;
	int i;

	for (i = 0; i < num_sge; i++)
		len += sg[i].length;
	if (!qp->max_tso_header || !mss || hdr_sz > qp->max_tso_header ||
	    hdr_sz + mss > UIB_MTU || len > UIB_MAX_TSO)
		return EINVAL;
	return 0;
}

static void tso_set_header(struct uib_swqe *w, const void *hdr,
			   uint16_t hdr_sz, uint16_t mss)
{
	w->tso_hdr_len = hdr_sz;
	w->tso_mss = mss;
	if (hdr_sz)
		memcpy(uib_tso_header(w), hdr, hdr_sz);
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
	if (wr->opcode == IBV_WR_TSO &&
	    tso_check(qp, wr->sg_list, wr->num_sge, wr->tso.hdr_sz,
		      wr->tso.mss))
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
		if (wr->num_sge)
			memcpy(wqe_sges(w), wr->sg_list,
			       wr->num_sge * sizeof(struct ibv_sge));
	}
	if (wr->opcode == IBV_WR_TSO)
		tso_set_header(w, wr->tso.hdr, wr->tso.hdr_sz, wr->tso.mss);
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

/* The header is kept now; the payload SGEs come with wr_set_sge*(),
 * after which wr_complete() checks the sizes (tso_check()). */
static void wr_send_tso(struct ibv_qp_ex *x, void *hdr, uint16_t hdr_sz,
			uint16_t mss)
{
	struct uib_qp *qp = to_uqp_ex(x);
	struct uib_swqe *w;

	if (!qp->wr_err && (!qp->max_tso_header || !mss ||
			    hdr_sz > qp->max_tso_header)) {
		qp->wr_err = EINVAL;
		return;
	}
	w = wr_new(x, IBV_WR_TSO);
	if (w)
		tso_set_header(w, hdr, hdr_sz, mss);
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
	if (n > qp->cap.max_send_sge ||
	    (w->opcode == IBV_WR_TSO &&
	     tso_check(qp, list, n, w->tso_hdr_len, w->tso_mss))) {
		qp->wr_err = EINVAL;
		return;
	}
	/* A TSO header sits after the SGEs: keep it where it is. */
	if (w->opcode == IBV_WR_TSO && n != w->num_sge)
		memmove((uint8_t *)wqe_sges(w) + n * sizeof(*list),
			uib_tso_header(w), w->tso_hdr_len);
	w->num_sge = n;
	if (n)
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
	x->wr_send_tso = wr_send_tso;
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

