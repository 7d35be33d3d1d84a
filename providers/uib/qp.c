// SPDX-License-Identifier: MIT
/*
 * Queue pairs: creation, the IBA state machine (IBA 10.3, table of
 * required and optional attributes per transition), query, destruction,
 * and moving a QP to the error state with its flush (IBA 10.3.1).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "uib.h"

uint32_t uib_qp_state(const struct uib_qp *qp)
{
	return atomic_load_explicit(&qp->slot->qp_state, memory_order_acquire);
}

static void set_state(struct uib_qp *qp, uint32_t state)
{
	atomic_store_explicit(&qp->slot->qp_state, state, memory_order_release);
	qp->vqp.qp.state = state;
	qp->attr.qp_state = state;
}

void __uib_qp_to_err(struct uib_qp *qp)
{
	set_state(qp, IBV_QPS_ERR);
	qp->flushed = true;
	__uib_sq_flush(qp);
	uib_rq_flush(qp);
}

void uib_ctx_check_errors(struct uib_context *ctx)
{
	struct uib_qp *qp;

	pthread_mutex_lock(&ctx->qp_lock);
	for (qp = ctx->qps; qp; qp = qp->next) {
		if (qp->flushed || uib_qp_state(qp) != IBV_QPS_ERR)
			continue;
		pthread_spin_lock(&qp->sq_lock);
		__uib_qp_to_err(qp);
		pthread_spin_unlock(&qp->sq_lock);
	}
	pthread_mutex_unlock(&ctx->qp_lock);
}

static int check_cap(struct ibv_qp_cap *cap, bool has_srq)
{
	if (cap->max_send_wr > UIB_MAX_QP_WR || cap->max_send_sge > UIB_MAX_SGE ||
	    cap->max_inline_data > UIB_MAX_INLINE)
		return EINVAL;
	if (!has_srq && (cap->max_recv_wr > UIB_MAX_QP_WR ||
			 cap->max_recv_sge > UIB_MAX_SGE))
		return EINVAL;
	return 0;
}

static uint32_t roundup_pow2(uint32_t v)
{
	uint32_t r = 1;

	while (r < v)
		r <<= 1;
	return r;
}

static struct ibv_qp *create_qp(struct ibv_context *context,
				struct ibv_qp_init_attr_ex *attr)
{
	struct uib_context *ctx = to_uctx(context);
	struct uib_qp_slot tmpl = {};
	struct uib_pd *pd = to_upd(attr->pd);
	struct uib_cq *scq, *rcq;
	struct uib_srq *srq = NULL;
	struct ibv_qp *ibqp;
	struct uib_qp *qp;
	uint32_t sq_entries, payload;
	int ret;

	if (attr->qp_type != IBV_QPT_RC && attr->qp_type != IBV_QPT_UC &&
	    attr->qp_type != IBV_QPT_UD) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	if (!attr->send_cq || !attr->recv_cq) {
		errno = EINVAL;
		return NULL;
	}
	ret = check_cap(&attr->cap, attr->srq);
	if (ret) {
		errno = ret;
		return NULL;
	}
	scq = to_ucq(attr->send_cq);
	rcq = to_ucq(attr->recv_cq);
	if (attr->srq)
		srq = to_usrq(attr->srq);

	qp = calloc(1, sizeof(*qp));
	if (!qp) {
		errno = ENOMEM;
		return NULL;
	}
	qp->ctx = ctx;
	qp->rq.fd = -1;
	pthread_spin_init(&qp->sq_lock, PTHREAD_PROCESS_PRIVATE);
	pthread_spin_init(&qp->rq_lock, PTHREAD_PROCESS_PRIVATE);

	/* The send queue is ours alone: plain memory. */
	sq_entries = roundup_pow2(attr->cap.max_send_wr ?: 1);
	payload = attr->cap.max_send_sge * sizeof(struct ibv_sge);
	if (payload < attr->cap.max_inline_data)
		payload = attr->cap.max_inline_data;
	/* A TSO WQE keeps its header after its SGEs. */
	if (attr->comp_mask & IBV_QP_INIT_ATTR_MAX_TSO_HEADER) {
		if (attr->qp_type != IBV_QPT_UD ||
		    attr->max_tso_header > UIB_MAX_TSO_HEADER) {
			ret = EINVAL;
			goto err_free;
		}
		qp->max_tso_header = attr->max_tso_header;
		if (payload < attr->cap.max_send_sge * sizeof(struct ibv_sge) +
				      attr->max_tso_header)
			payload = attr->cap.max_send_sge *
					  sizeof(struct ibv_sge) +
				  attr->max_tso_header;
	}
	qp->sq_stride = (sizeof(struct uib_swqe) + payload + 15) & ~15u;
	qp->sq_mask = sq_entries - 1;
	qp->sq = calloc(sq_entries, qp->sq_stride);
	if (!qp->sq) {
		ret = ENOMEM;
		goto err_free;
	}
	if (!srq) {
		ret = -uib_rq_alloc(&qp->rq, UIB_QK_RQ,
				    attr->cap.max_recv_wr ?: 1,
				    attr->cap.max_recv_sge);
		if (ret)
			goto err_sq;
	}

	qp->cap.max_send_wr = sq_entries;
	qp->cap.max_send_sge = attr->cap.max_send_sge;
	qp->cap.max_inline_data = attr->cap.max_inline_data;
	if (srq) {
		qp->cap.max_recv_wr = 0;
		qp->cap.max_recv_sge = 0;
	} else {
		qp->cap.max_recv_wr = uib_qsize(&qp->rq.r);
		qp->cap.max_recv_sge = qp->rq.r.max_sge;
	}
	attr->cap = qp->cap;
	qp->sq_sig_all = attr->sq_sig_all;

	ibqp = &qp->vqp.qp;
	tmpl.ctx = ctx->ctx_slot;
	tmpl.pd = pd->pdn;
	tmpl.qp_type = attr->qp_type;
	tmpl.pid = getpid();
	tmpl.rq_fd = srq ? -1 : qp->rq.fd;
	tmpl.rq_uid = srq ? 0 : qp->rq.r.hdr->uid;
	tmpl.srq_fd = srq ? srq->q.fd : -1;
	tmpl.srq_uid = srq ? srq->q.r.hdr->uid : 0;
	tmpl.rcq_fd = rcq->q.fd;
	tmpl.rcq_uid = rcq->q.r.hdr->uid;
	tmpl.pkey = 0xffff;
	tmpl.user_qp = (uintptr_t)ibqp;
	ret = -uib_qpn_alloc(&ctx->st, &tmpl, &qp->qpn);
	if (ret)
		goto err_rq;
	qp->slot = uib_qp_lookup(&ctx->st, qp->qpn);
	qp->src_qpn = qp->qpn;

	ibqp->context = context;
	ibqp->qp_context = attr->qp_context;
	ibqp->pd = attr->pd;
	ibqp->send_cq = attr->send_cq;
	ibqp->recv_cq = attr->recv_cq;
	ibqp->srq = attr->srq;
	ibqp->handle = qp->qpn;
	ibqp->qp_num = qp->qpn;
	ibqp->state = IBV_QPS_RESET;
	ibqp->qp_type = attr->qp_type;
	ibqp->events_completed = 0;
	pthread_mutex_init(&ibqp->mutex, NULL);
	pthread_cond_init(&ibqp->cond, NULL);
	qp->attr.qp_state = IBV_QPS_RESET;
	qp->attr.cap = qp->cap;

	atomic_fetch_add(&pd->users, 1);
	atomic_fetch_add(&scq->users, 1);
	atomic_fetch_add(&rcq->users, 1);
	if (srq)
		atomic_fetch_add(&srq->users, 1);

	pthread_mutex_lock(&ctx->qp_lock);
	qp->next = ctx->qps;
	ctx->qps = qp;
	pthread_mutex_unlock(&ctx->qp_lock);
	return ibqp;

err_rq:
	uib_qbuf_free(&qp->rq);
err_sq:
	free(qp->sq);
err_free:
	free(qp);
	errno = ret;
	return NULL;
}

struct ibv_qp *uib_create_qp(struct ibv_pd *pd, struct ibv_qp_init_attr *attr)
{
	struct ibv_qp_init_attr_ex ax = {};
	struct ibv_qp *qp;

	memcpy(&ax, attr, sizeof(*attr));
	ax.comp_mask = IBV_QP_INIT_ATTR_PD;
	ax.pd = pd;
	qp = create_qp(pd->context, &ax);
	if (qp)
		attr->cap = ax.cap;
	return qp;
}

enum {
	UIB_QP_INIT_ATTR_SUPPORTED = IBV_QP_INIT_ATTR_PD |
				     IBV_QP_INIT_ATTR_SEND_OPS_FLAGS |
				     IBV_QP_INIT_ATTR_CREATE_FLAGS |
				     IBV_QP_INIT_ATTR_MAX_TSO_HEADER,
	UIB_QP_CREATE_SUPPORTED = IBV_QP_CREATE_BLOCK_SELF_MCAST_LB |
				  IBV_QP_CREATE_SOURCE_QPN,
	UIB_SEND_OPS_SUPPORTED =
		IBV_QP_EX_WITH_RDMA_WRITE | IBV_QP_EX_WITH_RDMA_WRITE_WITH_IMM |
		IBV_QP_EX_WITH_SEND | IBV_QP_EX_WITH_SEND_WITH_IMM |
		IBV_QP_EX_WITH_RDMA_READ | IBV_QP_EX_WITH_ATOMIC_CMP_AND_SWP |
		IBV_QP_EX_WITH_ATOMIC_FETCH_AND_ADD | IBV_QP_EX_WITH_TSO,
};

/*
 * IBV_QP_CREATE_SOURCE_QPN (TSS): a UD QP that sends as another UD QP of
 * the same device.  Only the process that owns that QP may (the kernel asks
 * for CAP_NET_RAW; our boundary is the owning process): EPERM otherwise,
 * EINVAL for a QP that is not UD or does not exist.
 */
static int check_source_qpn(struct ibv_context *context,
			    const struct ibv_qp_init_attr_ex *attr)
{
	struct uib_context *ctx = to_uctx(context);
	struct uib_qp_slot *s = uib_qp_lookup(&ctx->st, attr->source_qpn);

	if (attr->qp_type != IBV_QPT_UD || !s || s->qp_type != IBV_QPT_UD)
		return EINVAL;
	if (s->pid != getpid())
		return EPERM;
	return 0;
}

struct ibv_qp *uib_create_qp_ex(struct ibv_context *context,
				struct ibv_qp_init_attr_ex *attr)
{
	struct ibv_qp *ibqp;
	struct uib_qp *qp;

	if (attr->comp_mask & ~(uint32_t)UIB_QP_INIT_ATTR_SUPPORTED ||
	    !(attr->comp_mask & IBV_QP_INIT_ATTR_PD)) {
		errno = attr->comp_mask & IBV_QP_INIT_ATTR_PD ? EOPNOTSUPP :
								EINVAL;
		return NULL;
	}
	if (attr->comp_mask & IBV_QP_INIT_ATTR_SEND_OPS_FLAGS &&
	    attr->send_ops_flags & ~(uint64_t)UIB_SEND_OPS_SUPPORTED) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	if (attr->comp_mask & IBV_QP_INIT_ATTR_CREATE_FLAGS &&
	    attr->create_flags & ~(uint32_t)UIB_QP_CREATE_SUPPORTED) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	if (attr->comp_mask & IBV_QP_INIT_ATTR_CREATE_FLAGS &&
	    attr->create_flags & IBV_QP_CREATE_SOURCE_QPN) {
		errno = check_source_qpn(context, attr);
		if (errno)
			return NULL;
	}
	ibqp = create_qp(context, attr);
	if (!ibqp)
		return NULL;
	qp = to_uqp(ibqp);
	if (attr->comp_mask & IBV_QP_INIT_ATTR_CREATE_FLAGS) {
		qp->block_mcast_lb = attr->create_flags &
				     IBV_QP_CREATE_BLOCK_SELF_MCAST_LB;
		if (attr->create_flags & IBV_QP_CREATE_SOURCE_QPN)
			qp->src_qpn = attr->source_qpn;
	}
	if (attr->comp_mask & IBV_QP_INIT_ATTR_SEND_OPS_FLAGS) {
		qp->vqp.comp_mask |= 1 << 1;	/* VERBS_QP_EX */
		uib_qp_init_wr_ops(qp);
	}
	return ibqp;
}

/*
 * IBA 10.3 / table 91: for each transition and QP type, the attributes
 * that must and may be given.  Anything else in the mask is an error.
 */
struct qp_trans {
	int req[3];	/* RC, UC, UD */
	int opt[3];
};


static const struct qp_trans *trans_rule(uint32_t cur, uint32_t next)
{
	static const struct qp_trans reset_init = {
		.req = { IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS,
			 IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS,
			 IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_QKEY },
	};
	static const struct qp_trans init_init = {
		.opt = { IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS,
			 IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS,
			 IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_QKEY },
	};
	static const struct qp_trans init_rtr = {
		.req = { IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
				 IBV_QP_RQ_PSN | IBV_QP_MAX_DEST_RD_ATOMIC |
				 IBV_QP_MIN_RNR_TIMER,
			 IBV_QP_AV | IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
				 IBV_QP_RQ_PSN,
			 0 },
		.opt = { IBV_QP_ALT_PATH | IBV_QP_ACCESS_FLAGS |
				 IBV_QP_PKEY_INDEX,
			 IBV_QP_ALT_PATH | IBV_QP_ACCESS_FLAGS |
				 IBV_QP_PKEY_INDEX,
			 IBV_QP_PKEY_INDEX | IBV_QP_QKEY },
	};
	static const struct qp_trans rtr_rts = {
		.req = { IBV_QP_SQ_PSN | IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
				 IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC,
			 IBV_QP_SQ_PSN, IBV_QP_SQ_PSN },
		.opt = { IBV_QP_CUR_STATE | IBV_QP_ALT_PATH |
				 IBV_QP_ACCESS_FLAGS | IBV_QP_MIN_RNR_TIMER |
				 IBV_QP_PATH_MIG_STATE,
			 IBV_QP_CUR_STATE | IBV_QP_ALT_PATH |
				 IBV_QP_ACCESS_FLAGS | IBV_QP_PATH_MIG_STATE,
			 IBV_QP_CUR_STATE | IBV_QP_QKEY },
	};
	static const struct qp_trans rts_rts = {
		.opt = { IBV_QP_CUR_STATE | IBV_QP_ACCESS_FLAGS |
				 IBV_QP_ALT_PATH | IBV_QP_PATH_MIG_STATE |
				 IBV_QP_MIN_RNR_TIMER,
			 IBV_QP_CUR_STATE | IBV_QP_ACCESS_FLAGS |
				 IBV_QP_ALT_PATH | IBV_QP_PATH_MIG_STATE,
			 IBV_QP_CUR_STATE | IBV_QP_QKEY },
	};
	static const struct qp_trans to_sqd = {
		.opt = { IBV_QP_EN_SQD_ASYNC_NOTIFY, IBV_QP_EN_SQD_ASYNC_NOTIFY,
			 IBV_QP_EN_SQD_ASYNC_NOTIFY },
	};
	static const struct qp_trans sqe_rts = {
		.opt = { 0, IBV_QP_CUR_STATE | IBV_QP_ACCESS_FLAGS,
			 IBV_QP_CUR_STATE | IBV_QP_QKEY },
	};
	static const struct qp_trans any_reset_err = {};

	if (next == IBV_QPS_RESET || next == IBV_QPS_ERR)
		return &any_reset_err;
	switch (cur) {
	case IBV_QPS_RESET:
		return next == IBV_QPS_INIT ? &reset_init : NULL;
	case IBV_QPS_INIT:
		return next == IBV_QPS_INIT ? &init_init :
		       next == IBV_QPS_RTR  ? &init_rtr :
					      NULL;
	case IBV_QPS_RTR:
		return next == IBV_QPS_RTS ? &rtr_rts : NULL;
	case IBV_QPS_RTS:
		return next == IBV_QPS_RTS ? &rts_rts :
		       next == IBV_QPS_SQD ? &to_sqd :
					     NULL;
	case IBV_QPS_SQD:
		return next == IBV_QPS_RTS ? &rts_rts :
		       next == IBV_QPS_SQD ? &to_sqd :
					     NULL;
	case IBV_QPS_SQE:
		return next == IBV_QPS_RTS ? &sqe_rts : NULL;
	default:
		return NULL;
	}
}

static int type_idx(enum ibv_qp_type t)
{
	return t == IBV_QPT_RC ? 0 : t == IBV_QPT_UC ? 1 : 2;
}

static int check_ah_attr(struct uib_context *ctx, const struct ibv_ah_attr *ah)
{
	if (ah->port_num < 1 || ah->port_num > ctx->st.sh->num_ports ||
	    ah->sl > 15)
		return EINVAL;
	if (!ah->is_global && (!ah->dlid || ah->dlid > UIB_MAX_LID))
		return EINVAL;
	if (ah->is_global && ah->grh.sgid_index >= UIB_GID_TBL_LEN)
		return EINVAL;
	return 0;
}

static int check_values(struct uib_qp *qp, const struct ibv_qp_attr *a,
			int mask)
{
	struct uib_context *ctx = qp->ctx;

	if (mask & IBV_QP_PORT &&
	    (a->port_num < 1 || a->port_num > ctx->st.sh->num_ports))
		return EINVAL;
	if (mask & IBV_QP_PKEY_INDEX &&
	    (a->pkey_index >= UIB_PKEY_TBL_LEN ||
	     !ctx->st.sh->port[0].pkey[a->pkey_index]))
		return EINVAL;
	if (mask & IBV_QP_ACCESS_FLAGS &&
	    a->qp_access_flags & ~(IBV_ACCESS_LOCAL_WRITE |
				   IBV_ACCESS_REMOTE_WRITE |
				   IBV_ACCESS_REMOTE_READ |
				   IBV_ACCESS_REMOTE_ATOMIC))
		return EINVAL;
	if (mask & IBV_QP_PATH_MTU &&
	    (a->path_mtu < IBV_MTU_256 || a->path_mtu > IBV_MTU_4096))
		return EINVAL;
	if (mask & IBV_QP_AV && check_ah_attr(ctx, &a->ah_attr))
		return EINVAL;
	if (mask & IBV_QP_DEST_QPN && a->dest_qp_num > 0xffffff)
		return EINVAL;
	if (mask & IBV_QP_RQ_PSN && a->rq_psn > 0xffffff)
		return EINVAL;
	if (mask & IBV_QP_SQ_PSN && a->sq_psn > 0xffffff)
		return EINVAL;
	if (mask & IBV_QP_MAX_DEST_RD_ATOMIC &&
	    a->max_dest_rd_atomic > UIB_MAX_RD_ATOM)
		return EINVAL;
	if (mask & IBV_QP_MAX_QP_RD_ATOMIC && a->max_rd_atomic > UIB_MAX_RD_ATOM)
		return EINVAL;
	if (mask & IBV_QP_MIN_RNR_TIMER && a->min_rnr_timer > 31)
		return EINVAL;
	if (mask & IBV_QP_TIMEOUT && a->timeout > 31)
		return EINVAL;
	if (mask & IBV_QP_RETRY_CNT && a->retry_cnt > 7)
		return EINVAL;
	if (mask & IBV_QP_RNR_RETRY && a->rnr_retry > 7)
		return EINVAL;
	if (mask & IBV_QP_CUR_STATE && a->cur_qp_state != uib_qp_state(qp))
		return EINVAL;
	return 0;
}

/* Receive-side attributes peers read from our slot. */
static void publish_attrs(struct uib_qp *qp, int mask)
{
	struct uib_qp_slot *s = qp->slot;

	if (mask & IBV_QP_QKEY)
		s->qkey = qp->attr.qkey;
	if (mask & IBV_QP_ACCESS_FLAGS)
		s->access = qp->attr.qp_access_flags;
	if (mask & IBV_QP_MIN_RNR_TIMER)
		s->min_rnr_timer = qp->attr.min_rnr_timer;
	if (mask & IBV_QP_DEST_QPN)
		s->dest_qpn = qp->attr.dest_qp_num;
	if (mask & IBV_QP_PORT)
		s->port = qp->attr.port_num;
}

static void copy_attrs(struct ibv_qp_attr *dst, const struct ibv_qp_attr *a,
		       int mask)
{
#define C(bit, field)              \
	do {                       \
		if (mask & (bit))  \
			dst->field = a->field; \
	} while (0)
	C(IBV_QP_PKEY_INDEX, pkey_index);
	C(IBV_QP_PORT, port_num);
	C(IBV_QP_ACCESS_FLAGS, qp_access_flags);
	C(IBV_QP_QKEY, qkey);
	C(IBV_QP_AV, ah_attr);
	C(IBV_QP_ALT_PATH, alt_ah_attr);
	C(IBV_QP_PATH_MTU, path_mtu);
	C(IBV_QP_DEST_QPN, dest_qp_num);
	C(IBV_QP_RQ_PSN, rq_psn);
	C(IBV_QP_SQ_PSN, sq_psn);
	C(IBV_QP_MAX_DEST_RD_ATOMIC, max_dest_rd_atomic);
	C(IBV_QP_MAX_QP_RD_ATOMIC, max_rd_atomic);
	C(IBV_QP_MIN_RNR_TIMER, min_rnr_timer);
	C(IBV_QP_TIMEOUT, timeout);
	C(IBV_QP_RETRY_CNT, retry_cnt);
	C(IBV_QP_RNR_RETRY, rnr_retry);
	C(IBV_QP_PATH_MIG_STATE, path_mig_state);
	C(IBV_QP_EN_SQD_ASYNC_NOTIFY, en_sqd_async_notify);
#undef C
}

static void reset_queues(struct uib_qp *qp)
{
	qp->sq_head = qp->sq_tail = qp->wr_begin = 0;
	if (qp->pending) {
		qp->pending = false;
		atomic_fetch_sub(&qp->ctx->npending, 1);
	}
	if (qp->rq.r.hdr) {
		uint32_t prod = atomic_load(&qp->rq.r.hdr->prod);

		atomic_store(&qp->rq.r.hdr->cons, prod);
	}
	memset(&qp->peer, 0, sizeof(qp->peer));
	memset(&qp->ud_peer, 0, sizeof(qp->ud_peer));
	qp->flushed = false;
}

int uib_modify_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr, int mask)
{
	struct uib_qp *qp = to_uqp(ibqp);
	const struct qp_trans *rule;
	uint32_t cur, next;
	int t = type_idx(ibqp->qp_type), ret = 0;

	pthread_spin_lock(&qp->sq_lock);
	cur = uib_qp_state(qp);
	next = mask & IBV_QP_STATE ? attr->qp_state : cur;
	if (next > IBV_QPS_ERR) {
		ret = EINVAL;
		goto out;
	}
	rule = trans_rule(cur, next);
	if (!rule ||
	    (mask & ~IBV_QP_STATE & rule->req[t]) != rule->req[t] ||
	    mask & ~(IBV_QP_STATE | rule->req[t] | rule->opt[t])) {
		ret = EINVAL;
		goto out;
	}
	ret = check_values(qp, attr, mask);
	if (ret)
		goto out;

	copy_attrs(&qp->attr, attr, mask);
	publish_attrs(qp, mask);
	if (mask & (IBV_QP_AV | IBV_QP_DEST_QPN))
		memset(&qp->peer, 0, sizeof(qp->peer));
	if (!(mask & IBV_QP_STATE))
		goto out;

	switch (next) {
	case IBV_QPS_RESET:
		set_state(qp, next);
		reset_queues(qp);
		break;
	case IBV_QPS_ERR:
		__uib_qp_to_err(qp);
		break;
	default:
		set_state(qp, next);
		if (next == IBV_QPS_RTS)
			__uib_sq_progress(qp);
		break;
	}
out:
	pthread_spin_unlock(&qp->sq_lock);
	return ret;
}

int uib_query_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr, int mask,
		 struct ibv_qp_init_attr *init)
{
	struct uib_qp *qp = to_uqp(ibqp);

	pthread_spin_lock(&qp->sq_lock);
	*attr = qp->attr;
	attr->qp_state = uib_qp_state(qp);
	attr->cur_qp_state = attr->qp_state;
	attr->cap = qp->cap;
	attr->sq_draining = 0;
	pthread_spin_unlock(&qp->sq_lock);

	memset(init, 0, sizeof(*init));
	init->qp_context = ibqp->qp_context;
	init->send_cq = ibqp->send_cq;
	init->recv_cq = ibqp->recv_cq;
	init->srq = ibqp->srq;
	init->cap = qp->cap;
	init->qp_type = ibqp->qp_type;
	init->sq_sig_all = qp->sq_sig_all;
	return 0;
}

int uib_destroy_qp(struct ibv_qp *ibqp)
{
	struct uib_qp *qp = to_uqp(ibqp);
	struct uib_context *ctx = qp->ctx;
	struct uib_qp **pp;

	/* ibv_destroy_qp(3): EBUSY while still attached to a group. */
	if (atomic_load(&qp->nmcast))
		return EBUSY;
	pthread_mutex_lock(&ctx->qp_lock);
	for (pp = &ctx->qps; *pp; pp = &(*pp)->next)
		if (*pp == qp) {
			*pp = qp->next;
			break;
		}
	pthread_mutex_unlock(&ctx->qp_lock);
	if (qp->pending)
		atomic_fetch_sub(&ctx->npending, 1);

	/* Peers stop finding us first; then our memory goes. */
	atomic_store(&qp->slot->qp_state, IBV_QPS_RESET);
	uib_qpn_free(&ctx->st, qp->qpn);
	atomic_fetch_sub(&to_ucq(ibqp->send_cq)->users, 1);
	atomic_fetch_sub(&to_ucq(ibqp->recv_cq)->users, 1);
	if (ibqp->srq)
		atomic_fetch_sub(&to_usrq(ibqp->srq)->users, 1);
	atomic_fetch_sub(&to_upd(ibqp->pd)->users, 1);
	uib_qbuf_free(&qp->rq);
	free(qp->sq);
	pthread_spin_destroy(&qp->sq_lock);
	pthread_spin_destroy(&qp->rq_lock);
	free(qp);
	return 0;
}
