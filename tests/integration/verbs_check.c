// SPDX-License-Identifier: MIT
/* The harness of uib_verbs_errors (verbs_check.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "verbs_check.h"

int npass, nfail;

/* ------------------------------------------------------------ reporting */

void pass(const char *name)
{
	printf("ok %s\n", name);
	npass++;
}

void __attribute__((format(printf, 2, 3)))
failf(const char *name, const char *fmt, ...)
{
	va_list ap;

	printf("FAIL %s: ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	nfail++;
}

const char *errname(int e)
{
	const char *n;

	if (!e)
		return "0 (success)";
	n = strerrorname_np(e);
	return n ? n : "an unknown errno";
}

/* Up to four results may be used in one printf. */
const char *statname(int s)
{
	static char bufs[4][64];
	static unsigned int next;
	char *buf = bufs[next++ % 4];

	if (s < 0)
		return "no completion";
	snprintf(buf, sizeof(bufs[0]), "IBV_WC_%s (%s)",
		 s == IBV_WC_SUCCESS ? "SUCCESS" :
		 s == IBV_WC_LOC_LEN_ERR ? "LOC_LEN_ERR" :
		 s == IBV_WC_LOC_QP_OP_ERR ? "LOC_QP_OP_ERR" :
		 s == IBV_WC_LOC_PROT_ERR ? "LOC_PROT_ERR" :
		 s == IBV_WC_WR_FLUSH_ERR ? "WR_FLUSH_ERR" :
		 s == IBV_WC_REM_INV_REQ_ERR ? "REM_INV_REQ_ERR" :
		 s == IBV_WC_REM_ACCESS_ERR ? "REM_ACCESS_ERR" :
		 s == IBV_WC_REM_OP_ERR ? "REM_OP_ERR" :
		 s == IBV_WC_RETRY_EXC_ERR ? "RETRY_EXC_ERR" :
		 s == IBV_WC_RNR_RETRY_EXC_ERR ? "RNR_RETRY_EXC_ERR" : "other",
		 ibv_wc_status_str(s));
	return buf;
}

const char *qpsname(int s)
{
	static const char *const n[] = {
		"RESET", "INIT", "RTR", "RTS", "SQD", "SQE", "ERR",
	};

	if (s < 0)
		return "ibv_query_qp failed";
	return s <= IBV_QPS_ERR ? n[s] : "unknown";
}

/* A verb that returns 0 or an errno value. */
bool expect_ret(const char *name, int got, int want)
{
	if (got == want) {
		pass(name);
		return true;
	}
	failf(name, "expected %s got %s", errname(want), errname(got));
	return false;
}

/* A verb that returns NULL and sets errno. */
bool expect_null(const char *name, const void *p, int err, int want)
{
	if (!p && err == want) {
		pass(name);
		return true;
	}
	if (p)
		failf(name, "expected NULL with errno %s got a valid object",
		      errname(want));
	else
		failf(name, "expected NULL with errno %s got NULL with errno %s",
		      errname(want), errname(err));
	return false;
}

/* ---------------------------------------------------------------- helpers */

uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Polls one completion; returns its status, or -1 after WAIT_MS. */
int poll_one(struct ibv_cq *cq, struct ibv_wc *wc)
{
	uint64_t deadline = now_ms() + WAIT_MS;
	int r;

	do {
		r = ibv_poll_cq(cq, 1, wc);
		if (r < 0)
			return -1;
		if (r == 1)
			return wc->status;
	} while (now_ms() < deadline);
	return -1;
}

/* Expects the next completion on cq to carry wr_id and status 'want'. */
bool expect_wc(const char *name, struct ibv_cq *cq, uint64_t wr_id,
	       enum ibv_wc_status want)
{
	struct ibv_wc wc;
	int st = poll_one(cq, &wc);

	if (st != (int)want) {
		failf(name, "expected %s got %s", statname(want), statname(st));
		return false;
	}
	if (wc.wr_id != wr_id) {
		failf(name, "expected wr_id %#" PRIx64 " got %#" PRIx64, wr_id,
		      wc.wr_id);
		return false;
	}
	pass(name);
	return true;
}

/* Like expect_wc() but any of two statuses will do. */
bool expect_wc2(const char *name, struct ibv_cq *cq, uint64_t wr_id,
		enum ibv_wc_status w1, enum ibv_wc_status w2)
{
	struct ibv_wc wc;
	int st = poll_one(cq, &wc);

	if (st != (int)w1 && st != (int)w2) {
		failf(name, "expected %s or %s got %s", statname(w1),
		      statname(w2), statname(st));
		return false;
	}
	if (wc.wr_id != wr_id) {
		failf(name, "expected wr_id %#" PRIx64 " got %#" PRIx64, wr_id,
		      wc.wr_id);
		return false;
	}
	pass(name);
	return true;
}

/* Any error status but a flush. */
bool expect_wc_error(const char *name, struct ibv_cq *cq,
		     uint64_t wr_id)
{
	struct ibv_wc wc;
	int st = poll_one(cq, &wc);

	if (st < 0 || st == IBV_WC_SUCCESS || st == IBV_WC_WR_FLUSH_ERR) {
		failf(name, "expected an error completion got %s",
		      statname(st));
		return false;
	}
	if (wc.wr_id != wr_id) {
		failf(name, "expected wr_id %#" PRIx64 " got %#" PRIx64, wr_id,
		      wc.wr_id);
		return false;
	}
	pass(name);
	return true;
}

bool expect_no_wc(const char *name, struct ibv_cq *cq)
{
	struct ibv_wc wc;
	int i;

	for (i = 0; i < 1000; i++) {
		if (ibv_poll_cq(cq, 1, &wc) == 1) {
			failf(name, "expected no completion got %s (wr_id %#"
			      PRIx64 ")", statname(wc.status), wc.wr_id);
			return false;
		}
	}
	pass(name);
	return true;
}

int qp_state(struct ibv_qp *qp)
{
	struct ibv_qp_init_attr init;
	struct ibv_qp_attr a;

	if (ibv_query_qp(qp, &a, IBV_QP_STATE, &init))
		return -1;
	return a.qp_state;
}

bool expect_state(const char *name, struct ibv_qp *qp,
		  enum ibv_qp_state want)
{
	int st = qp_state(qp);

	if (st != (int)want) {
		failf(name, "expected QP state %s got %s", qpsname(want),
		      qpsname(st));
		return false;
	}
	pass(name);
	return true;
}

/* bytes [off, off+len) of B's buffer must still be POISON */
bool expect_untouched(const char *name, struct env *e, size_t off,
		      size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (e->bbuf[off + i] != POISON) {
			failf(name, "expected target memory untouched got "
			      "byte %zu changed to %#x", off + i,
			      e->bbuf[off + i]);
			return false;
		}
	pass(name);
	return true;
}

int post(struct ibv_qp *qp, enum ibv_wr_opcode op, uint64_t wr_id,
	 void *laddr, uint32_t len, uint32_t lkey, uint64_t raddr,
	 uint32_t rkey)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)laddr, .length = len, .lkey = lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = wr_id,
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = op,
		.send_flags = IBV_SEND_SIGNALED,
	}, *bad = NULL;

	if (op == IBV_WR_ATOMIC_FETCH_AND_ADD || op == IBV_WR_ATOMIC_CMP_AND_SWP) {
		wr.wr.atomic.remote_addr = raddr;
		wr.wr.atomic.rkey = rkey;
		wr.wr.atomic.compare_add = 1;
		wr.wr.atomic.swap = 2;
	} else {
		wr.wr.rdma.remote_addr = raddr;
		wr.wr.rdma.rkey = rkey;
	}
	return ibv_post_send(qp, &wr, &bad);
}

int post_recv(struct ibv_qp *qp, uint64_t wr_id, void *addr,
	      uint32_t len, uint32_t lkey)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)addr, .length = len, .lkey = lkey,
	};
	struct ibv_recv_wr wr = {
		.wr_id = wr_id, .sg_list = &sge, .num_sge = 1,
	}, *bad = NULL;

	return ibv_post_recv(qp, &wr, &bad);
}

/* ------------------------------------------------------------- QP setup */

struct ibv_qp *make_qp(struct ibv_pd *pd, struct ibv_cq *scq,
		       struct ibv_cq *rcq, enum ibv_qp_type type,
		       struct ibv_qp_cap *cap)
{
	struct ibv_qp_init_attr ia = {
		.send_cq = scq,
		.recv_cq = rcq,
		.cap = {
			.max_send_wr = 16,
			.max_recv_wr = 16,
			.max_send_sge = 2,
			.max_recv_sge = 2,
			.max_inline_data = 64,
		},
		.qp_type = type,
	};
	struct ibv_qp *qp;

	qp = ibv_create_qp(pd, &ia);
	if (!qp) {
		/* maybe no inline support at all */
		ia.cap.max_inline_data = 0;
		qp = ibv_create_qp(pd, &ia);
	}
	if (qp && cap)
		*cap = ia.cap;
	return qp;
}

int to_init(struct env *e, struct ibv_qp *qp, unsigned int access)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT,
		.pkey_index = 0,
		.port_num = e->ib_port,
		.qp_access_flags = access,
	};

	return ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			     IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
}

void rtr_attr(struct env *e, struct ibv_qp_attr *a, uint32_t dest_qpn)
{
	memset(a, 0, sizeof(*a));
	a->qp_state = IBV_QPS_RTR;
	a->path_mtu = e->port.active_mtu;
	a->dest_qp_num = dest_qpn;
	a->rq_psn = 0;
	a->max_dest_rd_atomic = e->dev.max_qp_rd_atom < 4 ?
				e->dev.max_qp_rd_atom : 4;
	a->min_rnr_timer = 1;		/* 0.01 ms */
	a->ah_attr.dlid = e->port.lid;
	a->ah_attr.port_num = e->ib_port;
}

const struct pair_opts default_opts = {
	.b_access = IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
		    IBV_ACCESS_REMOTE_ATOMIC,
	.rnr_retry = 7,
	.retry_cnt = 7,
	.timeout = 14,
};

int connect_one(struct env *e, struct ibv_qp *qp, uint32_t dest,
		const struct pair_opts *po)
{
	struct ibv_qp_attr a;
	int ret;

	rtr_attr(e, &a, dest);
	ret = ibv_modify_qp(qp, &a, RTR_MASK);
	if (ret)
		return ret;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = 0;
	a.timeout = po->timeout;
	a.retry_cnt = po->retry_cnt;
	a.rnr_retry = po->rnr_retry;
	a.max_rd_atomic = e->dev.max_qp_init_rd_atom < 4 ?
			  e->dev.max_qp_init_rd_atom : 4;
	return ibv_modify_qp(qp, &a, RTS_MASK);
}

void pair_destroy(struct pair *p)
{
	if (p->a)
		ibv_destroy_qp(p->a);
	if (p->b)
		ibv_destroy_qp(p->b);
	if (p->as)
		ibv_destroy_cq(p->as);
	if (p->ar)
		ibv_destroy_cq(p->ar);
	if (p->bs)
		ibv_destroy_cq(p->bs);
	if (p->br)
		ibv_destroy_cq(p->br);
	memset(p, 0, sizeof(*p));
}

/* Two RC QPs on the device, A <-> B; a failure is reported under name. */
bool pair_make(struct env *e, struct pair *p, const char *name,
	       const struct pair_opts *po)
{
	int ret;

	memset(p, 0, sizeof(*p));
	p->as = ibv_create_cq(e->ctx, CQ_DEPTH, NULL, NULL, 0);
	p->ar = ibv_create_cq(e->ctx, CQ_DEPTH, NULL, NULL, 0);
	p->bs = ibv_create_cq(e->ctx, CQ_DEPTH, NULL, NULL, 0);
	p->br = ibv_create_cq(e->ctx, CQ_DEPTH, NULL, NULL, 0);
	if (!p->as || !p->ar || !p->bs || !p->br) {
		failf(name, "expected to set up a QP pair got ibv_create_cq "
		      "failure (%s)", errname(errno));
		goto err;
	}
	p->a = make_qp(e->pd, p->as, p->ar, IBV_QPT_RC, &p->acap);
	p->b = make_qp(e->pd, p->bs, p->br, IBV_QPT_RC, NULL);
	if (!p->a || !p->b) {
		failf(name, "expected to set up a QP pair got ibv_create_qp "
		      "failure (%s)", errname(errno));
		goto err;
	}
	ret = to_init(e, p->a, default_opts.b_access);
	ret = ret ?: to_init(e, p->b, po->b_access);
	ret = ret ?: connect_one(e, p->a, p->b->qp_num, po);
	ret = ret ?: connect_one(e, p->b, p->a->qp_num, po);
	if (ret) {
		failf(name, "expected to connect a QP pair got ibv_modify_qp "
		      "failure (%s)", errname(ret));
		goto err;
	}
	return true;
err:
	pair_destroy(p);
	return false;
}

void poison_b(struct env *e)
{
	memset(e->bbuf, POISON, BUF_LEN);
}

