// SPDX-License-Identifier: MIT
/*
 * Completion queues: creation, ibv_poll_cq and the ibv_cq_ex poll API.
 *
 * A CQ is a ring in queue memory (queue.h) that the owner consumes and any
 * process produces into.  Polling also drives the context's blocked send
 * work (RNR and transport retries), since the requester executes its own
 * work and has no thread of its own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "uib.h"

/*
 * IBA 11.4.2.1: a completion that finds its CQ full is a CQ overrun, an
 * error of the CQ: raise IBV_EVENT_CQ_ERR once, in whatever process owns
 * it.  st/ctx name the CQ owner's device state and context slot.
 */
void uib_cq_overrun(const struct uib_state *st, int ctx,
		    const struct uib_ring *cq)
{
	if (!(atomic_fetch_or(&cq->hdr->error, UIB_Q_OVERRUN) &
	      UIB_Q_OVERRUN))
		uib_ctx_notify(st, ctx, IBV_EVENT_CQ_ERR, cq->hdr->user_handle);
}

int uib_cq_push(struct uib_cq *cq, const struct uib_cqe *src)
{
	struct uib_context *ctx = to_uctx(cq->vcq.cq.context);
	struct uib_cqe *cqe;
	uint32_t r;
	int ret;

	ret = uib_cq_reserve(&cq->q.r, &r);
	if (ret) {
		uib_cq_overrun(&ctx->st, ctx->ctx_slot, &cq->q.r);
		return ret;
	}
	cqe = uib_qentry(&cq->q.r, r);
	memcpy(cqe, src, offsetof(struct uib_cqe, seq));
	uib_cq_publish(cqe, r);
	uib_cq_notify(&cq->q.r, src->status != IBV_WC_SUCCESS ||
				    (src->flags & UIB_CQE_F_SOLICITED));
	return 0;
}

static struct uib_cq *cq_alloc(struct ibv_context *context, int cqe,
			       struct ibv_comp_channel *channel)
{
	struct uib_context *ctx = to_uctx(context);
	struct uib_cq *cq;
	struct stat sb;
	int ret;

	if (cqe < 1 || cqe > UIB_MAX_CQE) {
		errno = EINVAL;
		return NULL;
	}
	/* A channel from uibdv_create_comp_channel() is a pipe: peers
	 * raising our events open it through /proc/<pid>/fd/<fd>. */
	if (channel && (fstat(channel->fd, &sb) || !S_ISFIFO(sb.st_mode))) {
		errno = EINVAL;
		return NULL;
	}
	/* max_cq is a device limit, across every process (as ENOMEM, like
	 * the kernel when a device runs out of CQs). */
	ret = uib_res_get(&ctx->st, ctx->ctx_slot, UIB_RES_CQ, UIB_MAX_CQ);
	if (ret) {
		errno = -ret;
		return NULL;
	}
	cq = calloc(1, sizeof(*cq));
	if (!cq) {
		ret = -ENOMEM;
		goto err_res;
	}
	/* One spare slot: a full ring is cqe + 1 entries apart. */
	ret = uib_qbuf_alloc(&cq->q, UIB_QK_CQ, cqe + 1,
			     sizeof(struct uib_cqe), 0);
	if (ret)
		goto err_free;
	pthread_spin_init(&cq->lock, PTHREAD_PROCESS_PRIVATE);
	cq->vcq.cq.cqe = uib_qsize(&cq->q.r) - 1;
	cq->q.r.hdr->user_handle = (uintptr_t)&cq->vcq.cq;
	if (channel) {
		cq->q.r.hdr->notify_fd = channel->fd;
		cq->q.r.hdr->notify_ino = sb.st_ino;
	}
	return cq;

err_free:
	free(cq);
err_res:
	uib_res_put(&ctx->st, ctx->ctx_slot, UIB_RES_CQ);
	errno = -ret;
	return NULL;
}

struct ibv_cq *uib_create_cq(struct ibv_context *context, int cqe,
			     struct ibv_comp_channel *channel, int comp_vector)
{
	struct uib_cq *cq;

	if (comp_vector < 0 || comp_vector >= context->num_comp_vectors) {
		errno = EINVAL;
		return NULL;
	}
	cq = cq_alloc(context, cqe, channel);
	return cq ? &cq->vcq.cq : NULL;
}

/*
 * Is the slot at cons a hole?  A producer reserves a slot only when its
 * data is in place and publishes it a few stores later; a slot reserved
 * but unpublished for two seconds belongs to a producer that was killed
 * in between.  Caller holds cq->lock.
 */
static bool __cq_hole(struct uib_cq *cq)
{
	uint64_t now;

	if (atomic_load_explicit(&cq->q.r.hdr->prod, memory_order_acquire) ==
	    cq->cons) {
		cq->stall_since_ns = 0;
		return false;		/* simply empty */
	}
	now = uib_now_ns();
	if (!cq->stall_since_ns) {
		cq->stall_since_ns = now;
		return false;
	}
	if (now - cq->stall_since_ns < 2000000000ull)
		return false;
	cq->stall_since_ns = 0;
	return true;
}

/*
 * A small SEND carried in the CQE: the requester checked the destination
 * against our MRs, but the CQE is shared memory, so each fragment is
 * checked again against our own MR before we write: it must lie inside a
 * live MR of this context with local write access (IBA 10.6.3).  Returns
 * false, having written nothing, if any does not.
 */
static bool cqe_place_inline(struct uib_cq *cq, const struct uib_cqe *cqe)
{
	struct uib_context *ctx = to_uctx(cq->vcq.cq.context);
	unsigned int i, nfrag = cqe->nfrag;
	size_t off = 0;

	if (nfrag > 2)
		return false;
	for (i = 0; i < nfrag; i++) {
		const struct uib_mr_slot *mr =
			uib_mr_lookup(&ctx->st, cqe->frag[i].lkey);
		uint64_t addr = cqe->frag[i].addr;
		uint32_t len = cqe->frag[i].len;

		if (!mr || mr->ctx != ctx->ctx_slot ||
		    !(mr->access & IBV_ACCESS_LOCAL_WRITE) ||
		    len > UIB_CQE_INLINE_MAX - off || addr < mr->addr ||
		    addr - mr->addr > mr->length ||
		    len > mr->length - (addr - mr->addr))
			return false;
		off += len;
	}
	off = 0;
	for (i = 0; i < nfrag; i++) {
		memcpy((void *)(uintptr_t)cqe->frag[i].addr, cqe->data + off,
		       cqe->frag[i].len);
		off += cqe->frag[i].len;
	}
	return true;
}

/* IBA 10.10.2: a local protection error on a receive moves the QP to
 * ERR; its queues are flushed by the next cq_drive(). */
static void cq_qp_to_err(struct uib_cq *cq, uint32_t qpn)
{
	struct uib_context *ctx = to_uctx(cq->vcq.cq.context);
	struct uib_qp_slot *s = uib_qp_lookup(&ctx->st, qpn);

	if (!s || s->ctx != ctx->ctx_slot)
		return;
	atomic_store_explicit(&s->qp_state, IBV_QPS_ERR, memory_order_release);
	atomic_fetch_or_explicit(&cq->q.r.hdr->error, UIB_Q_ATTENTION,
				 memory_order_release);
}

/* Pops the next real CQE into wc; caller holds cq->lock.  Returns false
 * when the ring is empty. */
static bool __cq_pop(struct uib_cq *cq, struct ibv_wc *wc)
{
	struct uib_qhdr *q = cq->q.r.hdr;

	for (;;) {
		struct uib_cqe *cqe = uib_qentry(&cq->q.r, cq->cons);

		/* Acquire: the CQE body was written before its seq. */
		if (atomic_load_explicit(&cqe->seq, memory_order_acquire) !=
		    cq->cons + 1) {
			if (!__cq_hole(cq))
				return false;
			/* Its producer died between reserving and publishing:
			 * skip the slot rather than stall forever. */
			cq->cons++;
			atomic_store_explicit(&q->cons, cq->cons,
					      memory_order_release);
			continue;
		}
		cq->stall_since_ns = 0;
		if (cqe->flags & UIB_CQE_F_NOP) {
			cq->cons++;
			atomic_store_explicit(&q->cons, cq->cons,
					      memory_order_release);
			continue;
		}
		wc->wr_id = cqe->wr_id;
		wc->status = cqe->status;
		wc->opcode = cqe->opcode;
		wc->vendor_err = cqe->vendor_err;
		wc->byte_len = cqe->byte_len;
		wc->imm_data = cqe->imm_data;
		wc->qp_num = cqe->qp_num;
		wc->src_qp = cqe->src_qp;
		wc->wc_flags = cqe->wc_flags;
		wc->pkey_index = cqe->pkey_index;
		wc->slid = cqe->slid;
		wc->sl = cqe->sl;
		wc->dlid_path_bits = cqe->dlid_path_bits;
		/* A small SEND: placing it is our one copy. */
		if ((cqe->flags & UIB_CQE_F_INLINE) &&
		    wc->status == IBV_WC_SUCCESS &&
		    !cqe_place_inline(cq, cqe)) {
			wc->status = IBV_WC_LOC_PROT_ERR;
			wc->byte_len = 0;
			cq_qp_to_err(cq, wc->qp_num);
		}
		cq->cons++;
		/* Release: we are done reading the slot. */
		atomic_store_explicit(&q->cons, cq->cons, memory_order_release);
		return true;
	}
}

static void cq_drive(struct uib_cq *cq)
{
	struct uib_context *ctx = to_uctx(cq->vcq.cq.context);

	if (atomic_load_explicit(&ctx->npending, memory_order_relaxed))
		uib_ctx_progress(ctx);
	/* A peer moved one of our QPs to ERR: flush its queues. */
	if (atomic_load_explicit(&cq->q.r.hdr->error, memory_order_relaxed) &
	    UIB_Q_ATTENTION) {
		atomic_fetch_and(&cq->q.r.hdr->error,
				 ~(uint32_t)UIB_Q_ATTENTION);
		uib_ctx_check_errors(ctx);
	}
}

int uib_poll_cq(struct ibv_cq *ibcq, int n, struct ibv_wc *wc)
{
	struct uib_cq *cq = to_ucq(ibcq);
	int i = 0;

	if (n < 0)
		return -EINVAL;
	cq_drive(cq);
	pthread_spin_lock(&cq->lock);
	while (i < n && __cq_pop(cq, &wc[i]))
		i++;
	pthread_spin_unlock(&cq->lock);
	return i;
}

int uib_req_notify_cq(struct ibv_cq *ibcq, int solicited_only)
{
	struct uib_cq *cq = to_ucq(ibcq);

	/* Arming a CQ without a channel is harmless, as with any provider:
	 * there is just nobody to tell. */
	atomic_store_explicit(&cq->q.r.hdr->armed,
			      solicited_only ? UIB_CQ_ARM_SOLICITED :
					       UIB_CQ_ARM_NEXT,
			      memory_order_release);
	return 0;
}

int uib_destroy_cq(struct ibv_cq *ibcq)
{
	struct uib_cq *cq = to_ucq(ibcq);

	struct uib_context *ctx = to_uctx(ibcq->context);

	if (atomic_load(&cq->users))
		return EBUSY;
	uib_res_put(&ctx->st, ctx->ctx_slot, UIB_RES_CQ);
	uib_qbuf_free(&cq->q);
	pthread_spin_destroy(&cq->lock);
	free(cq);
	return 0;
}

/* ibv_cq_ex: start_poll takes the lock and the first entry; next_poll
 * moves on; end_poll drops the lock.  The read_* helpers read the entry
 * copied into cq->cur. */
static void cqx_load(struct ibv_cq_ex *ibcq, struct uib_cq *cq)
{
	ibcq->wr_id = cq->cur.wr_id;
	ibcq->status = cq->cur.status;
}

static int cqx_start_poll(struct ibv_cq_ex *ibcq, struct ibv_poll_cq_attr *attr)
{
	struct uib_cq *cq = to_ucq_ex(ibcq);

	if (attr->comp_mask)
		return EINVAL;
	cq_drive(cq);
	pthread_spin_lock(&cq->lock);
	if (!__cq_pop(cq, &cq->cur)) {
		pthread_spin_unlock(&cq->lock);
		return ENOENT;
	}
	cqx_load(ibcq, cq);
	return 0;
}

static int cqx_next_poll(struct ibv_cq_ex *ibcq)
{
	struct uib_cq *cq = to_ucq_ex(ibcq);

	if (!__cq_pop(cq, &cq->cur))
		return ENOENT;
	cqx_load(ibcq, cq);
	return 0;
}

static void cqx_end_poll(struct ibv_cq_ex *ibcq)
{
	pthread_spin_unlock(&to_ucq_ex(ibcq)->lock);
}

static enum ibv_wc_opcode cqx_read_opcode(struct ibv_cq_ex *ibcq)
{
	return to_ucq_ex(ibcq)->cur.opcode;
}

static uint32_t cqx_read_vendor_err(struct ibv_cq_ex *ibcq)
{
	return to_ucq_ex(ibcq)->cur.vendor_err;
}

static uint32_t cqx_read_byte_len(struct ibv_cq_ex *ibcq)
{
	return to_ucq_ex(ibcq)->cur.byte_len;
}

static __be32 cqx_read_imm_data(struct ibv_cq_ex *ibcq)
{
	return to_ucq_ex(ibcq)->cur.imm_data;
}

static uint32_t cqx_read_qp_num(struct ibv_cq_ex *ibcq)
{
	return to_ucq_ex(ibcq)->cur.qp_num;
}

static uint32_t cqx_read_src_qp(struct ibv_cq_ex *ibcq)
{
	return to_ucq_ex(ibcq)->cur.src_qp;
}

static unsigned int cqx_read_wc_flags(struct ibv_cq_ex *ibcq)
{
	return to_ucq_ex(ibcq)->cur.wc_flags;
}

static uint32_t cqx_read_slid(struct ibv_cq_ex *ibcq)
{
	return to_ucq_ex(ibcq)->cur.slid;
}

static uint8_t cqx_read_sl(struct ibv_cq_ex *ibcq)
{
	return to_ucq_ex(ibcq)->cur.sl;
}

static uint8_t cqx_read_dlid_path_bits(struct ibv_cq_ex *ibcq)
{
	return to_ucq_ex(ibcq)->cur.dlid_path_bits;
}

struct ibv_cq_ex *uib_create_cq_ex(struct ibv_context *context,
				   struct ibv_cq_init_attr_ex *attr)
{
	struct ibv_cq_ex *x;
	struct uib_cq *cq;

	if (attr->wc_flags & ~(uint64_t)IBV_WC_STANDARD_FLAGS) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	if (attr->comp_mask & ~(uint32_t)IBV_CQ_INIT_ATTR_MASK_FLAGS ||
	    ((attr->comp_mask & IBV_CQ_INIT_ATTR_MASK_FLAGS) &&
	     attr->flags & ~(uint32_t)IBV_CREATE_CQ_ATTR_SINGLE_THREADED)) {
		errno = EOPNOTSUPP;
		return NULL;
	}
	if (attr->comp_vector >= (uint32_t)context->num_comp_vectors) {
		errno = EINVAL;
		return NULL;
	}
	cq = cq_alloc(context, attr->cqe, attr->channel);
	if (!cq)
		return NULL;
	x = &cq->vcq.cq_ex;
	x->start_poll = cqx_start_poll;
	x->next_poll = cqx_next_poll;
	x->end_poll = cqx_end_poll;
	x->read_opcode = cqx_read_opcode;
	x->read_vendor_err = cqx_read_vendor_err;
	x->read_byte_len = cqx_read_byte_len;
	x->read_imm_data = cqx_read_imm_data;
	x->read_qp_num = cqx_read_qp_num;
	x->read_src_qp = cqx_read_src_qp;
	x->read_wc_flags = cqx_read_wc_flags;
	x->read_slid = cqx_read_slid;
	x->read_sl = cqx_read_sl;
	x->read_dlid_path_bits = cqx_read_dlid_path_bits;
	return x;
}
