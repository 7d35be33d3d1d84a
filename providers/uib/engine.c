// SPDX-License-Identifier: MIT
/*
 * The engine: the requester executes its own send work, in order, retries
 * what cannot complete yet, and flushes.  Posting is in send.c, the
 * responder in responder.c.
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

#include "engine.h"

/* IBA table 45: RNR NAK timer field, in microseconds. */
static const uint32_t rnr_timer_us[32] = {
	655360, 10,    20,    30,    40,    60,     80,     120,
	160,    240,   320,   480,   640,   960,    1280,   1920,
	2560,   3840,  5120,  7680,  10240, 15360,  20480,  30720,
	40960,  61440, 81920, 122880, 163840, 245760, 327680, 491520,
};



static const uint8_t wc_opcode[] = {
	[IBV_WR_SEND] = IBV_WC_SEND,
	[IBV_WR_SEND_WITH_IMM] = IBV_WC_SEND,
	[IBV_WR_RDMA_WRITE] = IBV_WC_RDMA_WRITE,
	[IBV_WR_RDMA_WRITE_WITH_IMM] = IBV_WC_RDMA_WRITE,
	[IBV_WR_RDMA_READ] = IBV_WC_RDMA_READ,
	[IBV_WR_ATOMIC_CMP_AND_SWP] = IBV_WC_COMP_SWAP,
	[IBV_WR_ATOMIC_FETCH_AND_ADD] = IBV_WC_FETCH_ADD,
	[IBV_WR_TSO] = IBV_WC_TSO,
};


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
bool uib_port_active(const struct uib_state *st, uint8_t port)
{
	return port >= 1 && port <= UIB_MAX_PORTS &&
	       atomic_load_explicit(&st->sh->port[port - 1].state,
				    memory_order_relaxed) == IBV_PORT_ACTIVE;
}

static bool link_up(const struct uib_qp *qp, const struct uib_peer *p)
{
	return uib_port_active(&qp->ctx->st, qp->attr.port_num) &&
	       uib_port_active(&p->dev->st, p->port);
}

/* One datagram, x its payload: GRH first, then to its group or QP. */
static enum xres ud_send_one(struct uib_qp *qp, struct uib_swqe *w,
			     struct xfer *x, uint32_t *st)
{
	struct uib_peer *p = &qp->ud_peer;
	uint8_t grh[UIB_GRH_LEN];
	uint32_t qkey;
	uint8_t port;

	if (x->len > UIB_MTU) {
		*st = IBV_WC_LOC_LEN_ERR;
		return X_DONE;
	}
	/* IBA 11.4.1.2: the responder's buffer starts with 40 bytes for
	 * a GRH, which holds one only when the sender used a global route
	 * (IBV_WC_GRH); otherwise those bytes are zeroed. */
	memmove(&x->iov[1], &x->iov[0], x->n * sizeof(x->iov[0]));
	memset(grh, 0, sizeof(grh));
	if (w->ah.is_global)
		uib_build_grh(qp, &w->ah, x->len, grh);
	x->iov[0].iov_base = grh;
	x->iov[0].iov_len = UIB_GRH_LEN;
	x->n++;
	x->len += UIB_GRH_LEN;

	if (!uib_port_active(&qp->ctx->st, qp->attr.port_num))
		return X_DONE;	/* no link: lost */
	/* IBA 10.5.2: QPN 0xFFFFFF addresses a multicast group. */
	if (w->remote_qpn == UIB_MCAST_QPN) {
		uib_mcast_send(qp, w, x, qp->src_qpn);
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
	if (p->slot->qp_type != IBV_QPT_UD || !uib_resp_ready(p) ||
	    p->slot->qkey != qkey || !link_up(qp, p))
		return X_DONE;
	return uib_resp_send(qp, p, w, x, &w->ah, st);
}

/* Bytes [off, off + len) of src as a scatter list in dst (room for max);
 * returns the number of pieces. */
static int iov_slice(const struct iovec *src, int n, size_t off, size_t len,
		     struct iovec *dst, int max)
{
	int i, k = 0;

	for (i = 0; i < n && len && k < max; i++) {
		size_t l = src[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		dst[k].iov_base = (char *)src[i].iov_base + off;
		dst[k].iov_len = l - off < len ? l - off : len;
		len -= dst[k].iov_len;
		off = 0;
		k++;
	}
	return k;
}

/*
 * UD: one datagram, or for IBV_WR_TSO one per mss bytes of payload, each
 * the WQE's header followed by its slice, as an HCA with UD LSO sends
 * them (IP lengths and checksums stay the sender's business).  Each claims
 * a receive WQE of its own.
 */
static enum xres exec_ud(struct uib_qp *qp, struct uib_swqe *w, struct xfer *x,
			 uint32_t *st)
{
	size_t off = 0;

	if (w->opcode != IBV_WR_TSO)
		return ud_send_one(qp, w, x, st);
	do {
		size_t n = x->len - off < w->tso_mss ? x->len - off : w->tso_mss;
		struct xfer seg;

		seg.iov[0].iov_base = uib_tso_header(w);
		seg.iov[0].iov_len = w->tso_hdr_len;
		seg.n = 1 + iov_slice(x->iov, x->n, off, n, &seg.iov[1],
				      UIB_MAX_SGE);
		seg.len = w->tso_hdr_len + n;
		ud_send_one(qp, w, &seg, st);
		if (*st)
			return X_DONE;
		off += n;
	} while (off < x->len);
	return X_DONE;
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
	if (!uib_resp_ready(&qp->peer) || qp->peer.slot->qp_type != type ||
	    !link_up(qp, &qp->peer) ||
	    (type == IBV_QPT_RC && !peer_alive(qp, &qp->peer)))
		return type == IBV_QPT_RC ? X_UNREACH : X_DONE;

	switch (w->opcode) {
	case IBV_WR_SEND:
	case IBV_WR_SEND_WITH_IMM:
		return uib_resp_send(qp, &qp->peer, w, &x, NULL, st);
	case IBV_WR_RDMA_WRITE:
	case IBV_WR_RDMA_WRITE_WITH_IMM:
		return uib_resp_write(qp, &qp->peer, w, &x, st);
	case IBV_WR_RDMA_READ:
		return uib_resp_read(qp, &qp->peer, w, &x, st);
	default:
		return uib_resp_atomic(qp, &qp->peer, w, &x, st);
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
