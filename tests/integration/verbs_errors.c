// SPDX-License-Identifier: MIT
/*
 * uib_verbs_errors: bad input and remote/local errors, as the rdma-core man
 * pages and the IBTA specification define them, in one process.
 *
 *   uib_verbs_errors [-d DEV] [-i PORT] [-v]
 *
 * Control-path checks (reg_mr, dealloc_pd, query_port, create_qp,
 * modify_qp, post_send/post_recv in the wrong state or with too much) come
 * first; then, for each data-path error, a fresh pair of RC QPs on the
 * device connected to each other (A requests, B responds) and the
 * completion statuses and QP states that must follow.
 *
 * Every check prints "ok NAME" or "FAIL NAME: expected X got Y"; the last
 * line is "N passed, M failed".  Exit 0 only if nothing failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#include "verbs_check.h"

/* ------------------------------------------------------- control checks */

static void check_reg_mr(struct env *e)
{
	struct ibv_mr *mr;
	void *hole;
	int err;

	errno = 0;
	mr = ibv_reg_mr(e->pd, e->abuf, 4096, IBV_ACCESS_REMOTE_WRITE);
	err = errno;
	expect_null("reg_mr_remote_write_without_local_write", mr, err, EINVAL);
	if (mr)
		ibv_dereg_mr(mr);

	errno = 0;
	mr = ibv_reg_mr(e->pd, e->abuf, 4096, IBV_ACCESS_REMOTE_ATOMIC);
	err = errno;
	expect_null("reg_mr_remote_atomic_without_local_write", mr, err,
		    EINVAL);
	if (mr)
		ibv_dereg_mr(mr);

	errno = 0;
	mr = ibv_reg_mr(e->pd, e->abuf, 0, IBV_ACCESS_LOCAL_WRITE);
	err = errno;
	expect_null("reg_mr_length_0", mr, err, EINVAL);
	if (mr)
		ibv_dereg_mr(mr);

	hole = mmap(NULL, 2 * 4096, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (hole == MAP_FAILED || munmap(hole, 2 * 4096)) {
		failf("reg_mr_unmapped", "expected to make a hole got mmap "
		      "failure");
	} else {
		errno = 0;
		mr = ibv_reg_mr(e->pd, hole, 2 * 4096, IBV_ACCESS_LOCAL_WRITE);
		err = errno;
		expect_null("reg_mr_unmapped", mr, err, EFAULT);
		if (mr)
			ibv_dereg_mr(mr);
	}
}

static void check_dealloc_pd_busy(struct env *e)
{
	struct ibv_pd *pd = ibv_alloc_pd(e->ctx);
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;

	if (!pd) {
		failf("dealloc_pd_with_mr", "expected ibv_alloc_pd to work got "
		      "%s", errname(errno));
		return;
	}
	mr = ibv_reg_mr(pd, e->abuf, 4096, IBV_ACCESS_LOCAL_WRITE);
	if (!mr) {
		failf("dealloc_pd_with_mr", "expected ibv_reg_mr to work got %s",
		      errname(errno));
		ibv_dealloc_pd(pd);
		return;
	}
	if (!expect_ret("dealloc_pd_with_mr", ibv_dealloc_pd(pd), EBUSY))
		return;		/* the PD may be gone: leak the MR */
	expect_ret("dereg_mr_after_busy_pd", ibv_dereg_mr(mr), 0);

	cq = ibv_create_cq(e->ctx, CQ_DEPTH, NULL, NULL, 0);
	qp = cq ? make_qp(pd, cq, cq, IBV_QPT_RC, NULL) : NULL;
	if (!qp) {
		failf("dealloc_pd_with_qp", "expected to create a QP got %s",
		      errname(errno));
	} else if (expect_ret("dealloc_pd_with_qp", ibv_dealloc_pd(pd),
			      EBUSY)) {
		expect_ret("destroy_qp_after_busy_pd", ibv_destroy_qp(qp), 0);
	} else {
		return;
	}
	if (cq)
		ibv_destroy_cq(cq);
	expect_ret("dealloc_pd_when_unused", ibv_dealloc_pd(pd), 0);
}

static void check_query_port(struct env *e)
{
	struct ibv_port_attr pa;

	expect_ret("query_port_0", ibv_query_port(e->ctx, 0, &pa), EINVAL);
	expect_ret("query_port_99", ibv_query_port(e->ctx, 99, &pa), EINVAL);
	expect_ret("query_port_past_last",
		   ibv_query_port(e->ctx, e->dev.phys_port_cnt + 1, &pa),
		   EINVAL);
}

static void check_create_qp(struct env *e)
{
	static const struct {
		const char *name;
		int field;
	} cases[] = {
		{ "create_qp_max_send_sge_too_big", 0 },
		{ "create_qp_max_recv_sge_too_big", 1 },
		{ "create_qp_max_send_wr_too_big", 2 },
		{ "create_qp_max_recv_wr_too_big", 3 },
	};
	struct ibv_cq *cq = ibv_create_cq(e->ctx, CQ_DEPTH, NULL, NULL, 0);
	unsigned int i;

	if (!cq) {
		failf("create_qp", "expected ibv_create_cq to work got %s",
		      errname(errno));
		return;
	}
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ibv_qp_init_attr ia = {
			.send_cq = cq,
			.recv_cq = cq,
			.cap = {
				.max_send_wr = 4, .max_recv_wr = 4,
				.max_send_sge = 1, .max_recv_sge = 1,
			},
			.qp_type = IBV_QPT_RC,
		};
		struct ibv_qp *qp;
		int err;

		switch (cases[i].field) {
		case 0:
			ia.cap.max_send_sge = e->dev.max_sge + 1;
			break;
		case 1:
			ia.cap.max_recv_sge = e->dev.max_sge + 1;
			break;
		case 2:
			ia.cap.max_send_wr = e->dev.max_qp_wr + 1;
			break;
		case 3:
			ia.cap.max_recv_wr = e->dev.max_qp_wr + 1;
			break;
		}
		errno = 0;
		qp = ibv_create_qp(e->pd, &ia);
		err = errno;
		expect_null(cases[i].name, qp, err, EINVAL);
		if (qp)
			ibv_destroy_qp(qp);
	}
	ibv_destroy_cq(cq);
}

static void check_modify_qp(struct env *e)
{
	struct ibv_cq *cq = ibv_create_cq(e->ctx, CQ_DEPTH, NULL, NULL, 0);
	struct ibv_qp *qp = cq ? make_qp(e->pd, cq, cq, IBV_QPT_RC, NULL) :
				 NULL;
	struct ibv_qp_attr a;

	if (!qp) {
		failf("modify_qp", "expected to create a QP got %s",
		      errname(errno));
		goto out;
	}
	expect_state("new_qp_is_reset", qp, IBV_QPS_RESET);

	/* RESET -> RTR skips INIT: invalid transition (IBTA 10.3.1) */
	rtr_attr(e, &a, qp->qp_num);
	a.pkey_index = 0;
	a.port_num = e->ib_port;
	expect_ret("modify_reset_to_rtr", ibv_modify_qp(qp, &a, RTR_MASK |
			IBV_QP_PKEY_INDEX | IBV_QP_PORT | IBV_QP_ACCESS_FLAGS),
		   EINVAL);
	expect_state("modify_reset_to_rtr_state_kept", qp, IBV_QPS_RESET);

	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	expect_ret("modify_reset_to_rts", ibv_modify_qp(qp, &a, IBV_QP_STATE),
		   EINVAL);

	/* RESET -> INIT without IBV_QP_PORT (required for RC) */
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_INIT;
	a.pkey_index = 0;
	a.port_num = e->ib_port;
	a.qp_access_flags = IBV_ACCESS_REMOTE_WRITE;
	expect_ret("modify_init_without_port", ibv_modify_qp(qp, &a,
			IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			IBV_QP_ACCESS_FLAGS), EINVAL);
	expect_state("modify_init_without_port_state_kept", qp, IBV_QPS_RESET);

	a.port_num = 99;
	expect_ret("modify_init_bad_port", ibv_modify_qp(qp, &a,
			IBV_QP_STATE | IBV_QP_PKEY_INDEX | IBV_QP_PORT |
			IBV_QP_ACCESS_FLAGS), EINVAL);

	if (!expect_ret("modify_init", to_init(e, qp, IBV_ACCESS_REMOTE_WRITE),
			0))
		goto out;

	/* INIT -> RTR without the address vector */
	rtr_attr(e, &a, qp->qp_num);
	expect_ret("modify_rtr_without_av", ibv_modify_qp(qp, &a,
			RTR_MASK & ~IBV_QP_AV), EINVAL);
	expect_state("modify_rtr_without_av_state_kept", qp, IBV_QPS_INIT);

	rtr_attr(e, &a, qp->qp_num);
	expect_ret("modify_rtr_without_dest_qpn", ibv_modify_qp(qp, &a,
			RTR_MASK & ~IBV_QP_DEST_QPN), EINVAL);

	if (!expect_ret("modify_rtr", ibv_modify_qp(qp, &a, RTR_MASK), 0))
		goto out;

	/* RTR -> RTS without the RC send attributes */
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	expect_ret("modify_rts_without_sq_psn_etc",
		   ibv_modify_qp(qp, &a, IBV_QP_STATE), EINVAL);
	expect_state("modify_rts_without_sq_psn_etc_state_kept", qp,
		     IBV_QPS_RTR);
out:
	if (qp)
		ibv_destroy_qp(qp);
	if (cq)
		ibv_destroy_cq(cq);
}

/* post_send/post_recv where IBTA forbids it (C10-...: SQ in RESET/INIT) */
static void check_post_state(struct env *e)
{
	struct ibv_cq *cq = ibv_create_cq(e->ctx, CQ_DEPTH, NULL, NULL, 0);
	struct ibv_qp *qp = cq ? make_qp(e->pd, cq, cq, IBV_QPT_RC, NULL) :
				 NULL;
	struct ibv_sge sge = {
		.addr = (uintptr_t)e->abuf, .length = 64, .lkey = e->amr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = 1, .sg_list = &sge, .num_sge = 1,
		.opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED,
	}, *bad;
	struct ibv_recv_wr rwr = {
		.wr_id = 2, .sg_list = &sge, .num_sge = 1,
	}, *rbad;
	int ret;

	if (!qp) {
		failf("post_send_state", "expected to create a QP got %s",
		      errname(errno));
		goto out;
	}
	bad = NULL;
	ret = ibv_post_send(qp, &wr, &bad);
	if (expect_ret("post_send_in_reset", ret, EINVAL) && bad != &wr)
		failf("post_send_in_reset_bad_wr", "expected bad_wr to be the "
		      "WR got %p", (void *)bad);
	rbad = NULL;
	ret = ibv_post_recv(qp, &rwr, &rbad);
	if (expect_ret("post_recv_in_reset", ret, EINVAL) && rbad != &rwr)
		failf("post_recv_in_reset_bad_wr", "expected bad_wr to be the "
		      "WR got %p", (void *)rbad);

	if (to_init(e, qp, 0)) {
		failf("post_send_in_init", "expected modify to INIT to work");
		goto out;
	}
	bad = NULL;
	ret = ibv_post_send(qp, &wr, &bad);
	if (expect_ret("post_send_in_init", ret, EINVAL) && bad != &wr)
		failf("post_send_in_init_bad_wr", "expected bad_wr to be the "
		      "WR got %p", (void *)bad);
	/* nothing was queued, so nothing completes */
	expect_no_wc("post_send_in_init_no_completion", cq);
out:
	if (qp)
		ibv_destroy_qp(qp);
	if (cq)
		ibv_destroy_cq(cq);
}

/* Malformed WRs on a working QP: rejected at post time with bad_wr. */
static void check_post_limits(struct env *e)
{
	struct ibv_sge sges[64];
	struct ibv_send_wr wr[2], *bad;
	struct ibv_recv_wr rwr, *rbad;
	uint8_t *inl;
	struct pair p;
	uint32_t i, n;
	int ret;

	if (!pair_make(e, &p, "post_limits", &default_opts))
		return;
	poison_b(e);
	n = p.acap.max_send_sge + 1;
	if (n > 64)
		n = 64;
	for (i = 0; i < 64; i++) {
		sges[i].addr = (uintptr_t)e->abuf + i;
		sges[i].length = 1;
		sges[i].lkey = e->amr->lkey;
	}

	/* a valid RDMA WRITE, then one with too many SGEs */
	memset(wr, 0, sizeof(wr));
	wr[0].wr_id = 10;
	wr[0].sg_list = sges;
	wr[0].num_sge = 1;
	wr[0].opcode = IBV_WR_RDMA_WRITE;
	wr[0].send_flags = IBV_SEND_SIGNALED;
	wr[0].wr.rdma.remote_addr = (uintptr_t)e->bbuf;
	wr[0].wr.rdma.rkey = e->bmr->rkey;
	wr[0].next = &wr[1];
	wr[1] = wr[0];
	wr[1].wr_id = 11;
	wr[1].num_sge = n;
	wr[1].next = NULL;
	bad = NULL;
	ret = ibv_post_send(p.a, wr, &bad);
	if (expect_ret("post_send_too_many_sge", ret, EINVAL)) {
		if (bad != &wr[1])
			failf("post_send_too_many_sge_bad_wr", "expected bad_wr "
			      "to be the second WR got %s",
			      bad == &wr[0] ? "the first" : "something else");
		else
			pass("post_send_too_many_sge_bad_wr");
		/* the WR before the bad one was posted and completes */
		expect_wc("post_send_before_bad_wr_completes", p.as, 10,
			  IBV_WC_SUCCESS);
		expect_no_wc("post_send_too_many_sge_no_completion", p.as);
	}

	/* inline data beyond max_inline_data */
	inl = calloc(1, p.acap.max_inline_data + 1);
	memset(wr, 0, sizeof(wr));
	sges[0].addr = (uintptr_t)inl;
	sges[0].length = p.acap.max_inline_data + 1;
	wr[0].wr_id = 12;
	wr[0].sg_list = sges;
	wr[0].num_sge = 1;
	wr[0].opcode = IBV_WR_RDMA_WRITE;
	wr[0].send_flags = IBV_SEND_SIGNALED | IBV_SEND_INLINE;
	wr[0].wr.rdma.remote_addr = (uintptr_t)e->bbuf;
	wr[0].wr.rdma.rkey = e->bmr->rkey;
	bad = NULL;
	ret = ibv_post_send(p.a, wr, &bad);
	if (expect_ret("post_send_inline_too_big", ret, EINVAL)) {
		if (bad != &wr[0])
			failf("post_send_inline_too_big_bad_wr", "expected "
			      "bad_wr to be the WR got %p", (void *)bad);
		expect_no_wc("post_send_inline_too_big_no_completion", p.as);
	}
	free(inl);

	/* a receive with too many SGEs */
	for (i = 0; i < 64; i++)
		sges[i].addr = (uintptr_t)e->abuf + 4096 + i;
	memset(&rwr, 0, sizeof(rwr));
	rwr.wr_id = 13;
	rwr.sg_list = sges;
	rwr.num_sge = p.acap.max_recv_sge + 1 > 64 ? 64 :
		      p.acap.max_recv_sge + 1;
	rbad = NULL;
	ret = ibv_post_recv(p.a, &rwr, &rbad);
	if (expect_ret("post_recv_too_many_sge", ret, EINVAL) && rbad != &rwr)
		failf("post_recv_too_many_sge_bad_wr", "expected bad_wr to be "
		      "the WR got %p", (void *)rbad);
	expect_state("post_errors_leave_qp_rts", p.a, IBV_QPS_RTS);
	pair_destroy(&p);
}

static void check_destroy_cq_busy(struct env *e)
{
	struct ibv_cq *cq = ibv_create_cq(e->ctx, CQ_DEPTH, NULL, NULL, 0);
	struct ibv_qp *qp = cq ? make_qp(e->pd, cq, cq, IBV_QPT_RC, NULL) :
				 NULL;

	if (!qp) {
		failf("destroy_cq_in_use", "expected to create a CQ and QP got "
		      "%s", errname(errno));
		if (cq)
			ibv_destroy_cq(cq);
		return;
	}
	if (!expect_ret("destroy_cq_in_use", ibv_destroy_cq(cq), EBUSY))
		return;		/* the CQ may be gone: leak the QP */
	expect_ret("destroy_qp_of_busy_cq", ibv_destroy_qp(qp), 0);
	expect_ret("destroy_cq_when_unused", ibv_destroy_cq(cq), 0);
}

/* ------------------------------------------------------- data-path errors */

/*
 * A wrong R_Key: NAK remote access error (IBA 9.7.5.2.4); the requester
 * completes with REM_ACCESS_ERR, both QPs go to the error state, nothing
 * is written, and later work on A is flushed.
 */
static void check_bad_rkey(struct env *e)
{
	struct pair p;

	if (!pair_make(e, &p, "write_wrong_rkey", &default_opts))
		return;
	poison_b(e);
	expect_ret("write_wrong_rkey_post",
		   post(p.a, IBV_WR_RDMA_WRITE, 100, e->abuf, 64, e->amr->lkey,
			(uintptr_t)e->bbuf, ~e->bmr->rkey), 0);
	expect_wc("write_wrong_rkey", p.as, 100, IBV_WC_REM_ACCESS_ERR);
	expect_untouched("write_wrong_rkey_nothing_written", e, 0, 4096);
	expect_state("write_wrong_rkey_requester_err", p.a, IBV_QPS_ERR);
	expect_state("write_wrong_rkey_responder_err", p.b, IBV_QPS_ERR);

	/* work posted to a QP in ERR completes with a flush error */
	expect_ret("post_send_in_err",
		   post(p.a, IBV_WR_SEND, 101, e->abuf, 64, e->amr->lkey, 0, 0),
		   0);
	expect_wc("post_send_in_err_flushed", p.as, 101, IBV_WC_WR_FLUSH_ERR);
	expect_ret("post_recv_in_err",
		   post_recv(p.a, 102, e->abuf, 64, e->amr->lkey), 0);
	expect_wc("post_recv_in_err_flushed", p.ar, 102, IBV_WC_WR_FLUSH_ERR);
	pair_destroy(&p);
}

/* The WRs behind a failed one in the same chain are flushed, not run. */
static void check_flush_chain(struct env *e)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)e->abuf, .length = 64, .lkey = e->amr->lkey,
	};
	struct ibv_send_wr wr[3], *bad = NULL;
	struct pair p;
	int i;

	if (!pair_make(e, &p, "chain_after_error", &default_opts))
		return;
	poison_b(e);
	memset(wr, 0, sizeof(wr));
	for (i = 0; i < 3; i++) {
		wr[i].wr_id = 200 + i;
		wr[i].sg_list = &sge;
		wr[i].num_sge = 1;
		wr[i].opcode = IBV_WR_RDMA_WRITE;
		wr[i].send_flags = IBV_SEND_SIGNALED;
		wr[i].wr.rdma.remote_addr = (uintptr_t)e->bbuf + 1024 * i;
		wr[i].wr.rdma.rkey = e->bmr->rkey;
		wr[i].next = i < 2 ? &wr[i + 1] : NULL;
	}
	wr[0].wr.rdma.rkey = ~e->bmr->rkey;
	if (expect_ret("chain_after_error_post", ibv_post_send(p.a, wr, &bad),
		       0)) {
		expect_wc("chain_after_error_first", p.as, 200,
			  IBV_WC_REM_ACCESS_ERR);
		expect_wc("chain_after_error_second_flushed", p.as, 201,
			  IBV_WC_WR_FLUSH_ERR);
		expect_wc("chain_after_error_third_flushed", p.as, 202,
			  IBV_WC_WR_FLUSH_ERR);
		expect_untouched("chain_after_error_nothing_written", e, 0,
				 4096);
	}
	pair_destroy(&p);
}

/* One remote-access case: post op against (raddr, rkey) on a fresh pair. */
static void remote_case(struct env *e, const char *name,
			enum ibv_wr_opcode op, uint64_t raddr, uint32_t rkey,
			const struct pair_opts *po, enum ibv_wc_status want,
			size_t untouched_off, size_t untouched_len)
{
	char n[128];
	struct pair p;
	uint32_t len = op == IBV_WR_RDMA_WRITE || op == IBV_WR_RDMA_READ ?
		       64 : 8;

	if (!pair_make(e, &p, name, po))
		return;
	poison_b(e);
	memset(e->abuf, 0x11, 4096);
	snprintf(n, sizeof(n), "%s_post", name);
	if (expect_ret(n, post(p.a, op, 300, e->abuf, len, e->amr->lkey,
			       raddr, rkey), 0)) {
		expect_wc(name, p.as, 300, want);
		snprintf(n, sizeof(n), "%s_nothing_written", name);
		if (untouched_len)
			expect_untouched(n, e, untouched_off, untouched_len);
		snprintf(n, sizeof(n), "%s_requester_err", name);
		expect_state(n, p.a, IBV_QPS_ERR);
	}
	pair_destroy(&p);
}

static void check_remote_access(struct env *e)
{
	uintptr_t b = (uintptr_t)e->bbuf;
	struct pair_opts po = default_opts;
	struct ibv_mr *mr;

	/* 4 KiB window at bbuf + 8 KiB, all access */
	mr = ibv_reg_mr(e->pd, e->bbuf + 8192, 4096, IBV_ACCESS_LOCAL_WRITE |
			IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
			IBV_ACCESS_REMOTE_ATOMIC);
	if (!mr) {
		failf("write_beyond_mr", "expected ibv_reg_mr to work got %s",
		      errname(errno));
	} else {
		remote_case(e, "write_beyond_mr", IBV_WR_RDMA_WRITE,
			    b + 8192 + 4096 - 32, mr->rkey, &default_opts,
			    IBV_WC_REM_ACCESS_ERR, 8192, 8192);
		remote_case(e, "write_before_mr", IBV_WR_RDMA_WRITE,
			    b + 8192 - 8, mr->rkey, &default_opts,
			    IBV_WC_REM_ACCESS_ERR, 0, 16384);
		remote_case(e, "read_beyond_mr", IBV_WR_RDMA_READ,
			    b + 8192 + 4096 - 32, mr->rkey, &default_opts,
			    IBV_WC_REM_ACCESS_ERR, 0, 0);
		remote_case(e, "atomic_beyond_mr", IBV_WR_ATOMIC_FETCH_AND_ADD,
			    b + 8192 + 4096, mr->rkey, &default_opts,
			    IBV_WC_REM_ACCESS_ERR, 8192, 8192);
		/* IBA 9.4.5: the atomic VA must be 8-byte aligned, else
		 * NAK invalid request */
		remote_case(e, "atomic_misaligned", IBV_WR_ATOMIC_FETCH_AND_ADD,
			    b + 8192 + 4, mr->rkey, &default_opts,
			    IBV_WC_REM_INV_REQ_ERR, 8192, 4096);
		remote_case(e, "cmp_swap_misaligned", IBV_WR_ATOMIC_CMP_AND_SWP,
			    b + 8192 + 12, mr->rkey, &default_opts,
			    IBV_WC_REM_INV_REQ_ERR, 8192, 4096);
		ibv_dereg_mr(mr);
	}

	mr = ibv_reg_mr(e->pd, e->bbuf, 4096, IBV_ACCESS_LOCAL_WRITE |
			IBV_ACCESS_REMOTE_READ);
	if (mr) {
		remote_case(e, "write_mr_without_remote_write",
			    IBV_WR_RDMA_WRITE, b, mr->rkey, &default_opts,
			    IBV_WC_REM_ACCESS_ERR, 0, 4096);
		remote_case(e, "atomic_mr_without_remote_atomic",
			    IBV_WR_ATOMIC_FETCH_AND_ADD, b, mr->rkey,
			    &default_opts, IBV_WC_REM_ACCESS_ERR, 0, 4096);
		ibv_dereg_mr(mr);
	} else {
		failf("write_mr_without_remote_write", "expected ibv_reg_mr to "
		      "work got %s", errname(errno));
	}
	mr = ibv_reg_mr(e->pd, e->bbuf, 4096, IBV_ACCESS_LOCAL_WRITE |
			IBV_ACCESS_REMOTE_WRITE);
	if (mr) {
		remote_case(e, "read_mr_without_remote_read", IBV_WR_RDMA_READ,
			    b, mr->rkey, &default_opts,
			    IBV_WC_REM_ACCESS_ERR, 0, 0);
		ibv_dereg_mr(mr);
	} else {
		failf("read_mr_without_remote_read", "expected ibv_reg_mr to "
		      "work got %s", errname(errno));
	}

	/* an R_Key of another PD than the responder QP's (IBA 10.6.3.2) */
	mr = ibv_reg_mr(e->pd2, e->bbuf, 4096, IBV_ACCESS_LOCAL_WRITE |
			IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
			IBV_ACCESS_REMOTE_ATOMIC);
	if (mr) {
		remote_case(e, "write_rkey_of_other_pd", IBV_WR_RDMA_WRITE, b,
			    mr->rkey, &default_opts, IBV_WC_REM_ACCESS_ERR, 0,
			    4096);
		ibv_dereg_mr(mr);
	} else {
		failf("write_rkey_of_other_pd", "expected ibv_reg_mr to work "
		      "got %s", errname(errno));
	}

	/* the MR allows it but B's QP access flags do not */
	po.b_access = IBV_ACCESS_REMOTE_READ;
	remote_case(e, "write_qp_without_remote_write", IBV_WR_RDMA_WRITE, b,
		    e->bmr->rkey, &po, IBV_WC_REM_ACCESS_ERR, 0, 4096);
	po.b_access = IBV_ACCESS_REMOTE_WRITE;
	remote_case(e, "read_qp_without_remote_read", IBV_WR_RDMA_READ, b,
		    e->bmr->rkey, &po, IBV_WC_REM_ACCESS_ERR, 0, 0);
	remote_case(e, "atomic_qp_without_remote_atomic",
		    IBV_WR_ATOMIC_FETCH_AND_ADD, b, e->bmr->rkey, &po,
		    IBV_WC_REM_ACCESS_ERR, 0, 4096);
}

/* One local-protection case: A's SGE is bad; nothing reaches B. */
static void local_case(struct env *e, const char *name, enum ibv_wr_opcode op,
		       void *laddr, uint32_t len, uint32_t lkey)
{
	char n[128];
	struct pair p;

	if (!pair_make(e, &p, name, &default_opts))
		return;
	poison_b(e);
	snprintf(n, sizeof(n), "%s_post", name);
	if (expect_ret(n, post(p.a, op, 400, laddr, len, lkey,
			       (uintptr_t)e->bbuf, e->bmr->rkey), 0)) {
		expect_wc(name, p.as, 400, IBV_WC_LOC_PROT_ERR);
		snprintf(n, sizeof(n), "%s_nothing_written", name);
		expect_untouched(n, e, 0, 4096);
		snprintf(n, sizeof(n), "%s_requester_err", name);
		expect_state(n, p.a, IBV_QPS_ERR);
	}
	pair_destroy(&p);
}

static void check_local_protection(struct env *e)
{
	struct ibv_mr *mr;

	local_case(e, "write_wrong_lkey", IBV_WR_RDMA_WRITE, e->abuf, 64,
		   e->amr->lkey ^ 0x00a5a5a5);
	local_case(e, "write_lkey_out_of_bounds", IBV_WR_RDMA_WRITE,
		   e->abuf + BUF_LEN - 32, 64, e->amr->lkey);
	mr = ibv_reg_mr(e->pd2, e->abuf, 4096, IBV_ACCESS_LOCAL_WRITE);
	if (mr) {
		local_case(e, "write_lkey_of_other_pd", IBV_WR_RDMA_WRITE,
			   e->abuf, 64, mr->lkey);
		ibv_dereg_mr(mr);
	} else {
		failf("write_lkey_of_other_pd", "expected ibv_reg_mr to work "
		      "got %s", errname(errno));
	}
	/* RDMA READ scatters into local memory: needs LOCAL_WRITE */
	mr = ibv_reg_mr(e->pd, e->abuf, 4096, 0);
	if (mr) {
		local_case(e, "read_into_mr_without_local_write",
			   IBV_WR_RDMA_READ, e->abuf, 64, mr->lkey);
		ibv_dereg_mr(mr);
	} else {
		failf("read_into_mr_without_local_write", "expected ibv_reg_mr "
		      "(read-only) to work got %s", errname(errno));
	}
}

/* A SEND longer than the receive: IBA 9.7.5.2.2 NAK invalid request. */
static void check_send_too_long(struct env *e)
{
	struct pair p;

	if (!pair_make(e, &p, "send_longer_than_recv", &default_opts))
		return;
	poison_b(e);
	if (!expect_ret("send_longer_than_recv_post_recv",
			post_recv(p.b, 500, e->bbuf, 16, e->bmr->lkey), 0))
		goto out;
	if (!expect_ret("send_longer_than_recv_post",
			post(p.a, IBV_WR_SEND, 501, e->abuf, 64, e->amr->lkey,
			     0, 0), 0))
		goto out;
	expect_wc("send_longer_than_recv_requester", p.as, 501,
		  IBV_WC_REM_INV_REQ_ERR);
	expect_wc("send_longer_than_recv_responder", p.br, 500,
		  IBV_WC_LOC_LEN_ERR);
	expect_state("send_longer_than_recv_requester_err", p.a, IBV_QPS_ERR);
	expect_state("send_longer_than_recv_responder_err", p.b, IBV_QPS_ERR);
out:
	pair_destroy(&p);
}

/* A receive into memory without LOCAL_WRITE: a local protection error
 * at the responder; the requester gets an error NAK. */
static void check_recv_prot(struct env *e)
{
	struct ibv_mr *mr = ibv_reg_mr(e->pd, e->bbuf, 4096, 0);
	struct pair p;

	if (!mr) {
		failf("recv_into_mr_without_local_write", "expected ibv_reg_mr "
		      "(read-only) to work got %s", errname(errno));
		return;
	}
	if (!pair_make(e, &p, "recv_into_mr_without_local_write",
		       &default_opts))
		goto out_mr;
	poison_b(e);
	if (expect_ret("recv_into_mr_without_local_write_post_recv",
		       post_recv(p.b, 600, e->bbuf, 64, mr->lkey), 0) &&
	    expect_ret("recv_into_mr_without_local_write_post",
		       post(p.a, IBV_WR_SEND, 601, e->abuf, 64, e->amr->lkey,
			    0, 0), 0)) {
		expect_wc_error("recv_into_mr_without_local_write_requester",
				p.as, 601);
		expect_wc2("recv_into_mr_without_local_write_responder", p.br,
			   600, IBV_WC_LOC_PROT_ERR, IBV_WC_LOC_QP_OP_ERR);
		expect_untouched("recv_into_mr_without_local_write_nothing_"
				 "written", e, 0, 4096);
	}
	pair_destroy(&p);
out_mr:
	ibv_dereg_mr(mr);
}

/* No receive posted and rnr_retry 0: RNR NAK, no retries (IBA 9.7.5.2.8) */
static void check_rnr(struct env *e)
{
	struct pair_opts po = default_opts;
	struct pair p;

	po.rnr_retry = 0;
	if (!pair_make(e, &p, "send_rnr_retry_0", &po))
		return;
	if (expect_ret("send_rnr_retry_0_post",
		       post(p.a, IBV_WR_SEND, 700, e->abuf, 64, e->amr->lkey,
			    0, 0), 0)) {
		expect_wc("send_rnr_retry_0", p.as, 700,
			  IBV_WC_RNR_RETRY_EXC_ERR);
		expect_state("send_rnr_retry_0_requester_err", p.a,
			     IBV_QPS_ERR);
		/* RNR is flow control, not an error of the responder */
		expect_state("send_rnr_retry_0_responder_still_rts", p.b,
			     IBV_QPS_RTS);
		expect_no_wc("send_rnr_retry_0_responder_no_completion", p.br);
	}
	pair_destroy(&p);
}

/* The responder QP is gone: the transport retries, then gives up. */
static void check_peer_gone(struct env *e)
{
	struct pair_opts po = default_opts;
	struct pair p;

	po.timeout = 8;		/* 4.096 us * 2^8 ~ 1 ms */
	po.retry_cnt = 1;
	if (!pair_make(e, &p, "send_to_destroyed_qp", &po))
		return;
	if (!expect_ret("send_to_destroyed_qp_destroy", ibv_destroy_qp(p.b),
			0))
		goto out;
	p.b = NULL;
	if (expect_ret("send_to_destroyed_qp_post",
		       post(p.a, IBV_WR_SEND, 800, e->abuf, 64, e->amr->lkey,
			    0, 0), 0)) {
		expect_wc("send_to_destroyed_qp", p.as, 800,
			  IBV_WC_RETRY_EXC_ERR);
		expect_state("send_to_destroyed_qp_requester_err", p.a,
			     IBV_QPS_ERR);
	}
out:
	pair_destroy(&p);
}

/* A sanity pass first: if even a good write fails, say so plainly. */
static bool check_good_path(struct env *e)
{
	struct pair p;
	bool ok;

	if (!pair_make(e, &p, "good_write", &default_opts))
		return false;
	poison_b(e);
	memset(e->abuf, 0x42, 64);
	ok = expect_ret("good_write_post", post(p.a, IBV_WR_RDMA_WRITE, 1,
						e->abuf, 64, e->amr->lkey,
						(uintptr_t)e->bbuf,
						e->bmr->rkey), 0) &&
	     expect_wc("good_write", p.as, 1, IBV_WC_SUCCESS);
	if (ok && (e->bbuf[0] != 0x42 || e->bbuf[63] != 0x42 ||
		   e->bbuf[64] != POISON)) {
		failf("good_write_data", "expected 64 bytes of 0x42 got %#x.."
		      "%#x, then %#x", e->bbuf[0], e->bbuf[63], e->bbuf[64]);
		ok = false;
	}
	if (ok)
		expect_state("good_write_qp_still_rts", p.a, IBV_QPS_RTS);
	pair_destroy(&p);
	return ok;
}

/* ------------------------------------------------------------------ main */

static void usage(FILE *f, const char *argv0)
{
	fprintf(f, "usage: %s [-d DEV] [-i PORT]\n"
		"  -d, --ib-dev=DEV     device (default: the first one)\n"
		"  -i, --ib-port=PORT   port (default 1)\n"
		"  -t, --timeout=SEC    abort the whole run after SEC (default 120)\n",
		argv0);
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "ib-dev", required_argument, NULL, 'd' },
		{ "ib-port", required_argument, NULL, 'i' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct ibv_device **list, *dev = NULL;
	struct env e = { .ib_port = 1 };
	const char *devname = NULL;
	unsigned int timeout = 120;
	int n, i, ch, ret;

	while ((ch = getopt_long(argc, argv, "d:i:t:h", lopts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			devname = optarg;
			break;
		case 'i':
			e.ib_port = atoi(optarg);
			break;
		case 't':
			timeout = atoi(optarg);
			break;
		case 'h':
			usage(stdout, argv[0]);
			return 0;
		default:
			usage(stderr, argv[0]);
			return 2;
		}
	}
	if (optind != argc || e.ib_port < 1 || e.ib_port > 255 || !timeout) {
		usage(stderr, argv[0]);
		return 2;
	}
	alarm(timeout);		/* a hung verb kills the run (SIGALRM) */
	setvbuf(stdout, NULL, _IOLBF, 0);

	list = ibv_get_device_list(&n);
	if (!list || !n) {
		fprintf(stderr, "verbs_errors: no RDMA devices found%s%s (for "
			"uib devices, set SYSFS_PATH and RDMAV_DRIVERS as "
			"'uibctl env' prints)\n", list ? "" : ": ",
			list ? "" : strerror(errno));
		return 1;
	}
	for (i = 0; i < n; i++)
		if (!devname || !strcmp(ibv_get_device_name(list[i]), devname)) {
			dev = list[i];
			break;
		}
	if (!dev) {
		fprintf(stderr, "verbs_errors: device %s not found\n", devname);
		return 1;
	}
	e.ctx = ibv_open_device(dev);
	if (!e.ctx) {
		fprintf(stderr, "verbs_errors: cannot open %s: %s\n",
			ibv_get_device_name(dev), strerror(errno));
		return 1;
	}
	ibv_free_device_list(list);
	e.devname = devname;
	if (ibv_query_device(e.ctx, &e.dev) ||
	    (ret = ibv_query_port(e.ctx, e.ib_port, &e.port))) {
		fprintf(stderr, "verbs_errors: cannot query the device/port\n");
		return 1;
	}
	if (e.port.state != IBV_PORT_ACTIVE) {
		fprintf(stderr, "verbs_errors: port %d is not active\n",
			e.ib_port);
		return 1;
	}
	e.pd = ibv_alloc_pd(e.ctx);
	e.pd2 = ibv_alloc_pd(e.ctx);
	e.abuf = mmap(NULL, BUF_LEN, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	e.bbuf = mmap(NULL, BUF_LEN, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!e.pd || !e.pd2 || e.abuf == MAP_FAILED || e.bbuf == MAP_FAILED) {
		fprintf(stderr, "verbs_errors: cannot allocate PDs/buffers\n");
		return 1;
	}
	e.amr = ibv_reg_mr(e.pd, e.abuf, BUF_LEN, IBV_ACCESS_LOCAL_WRITE);
	e.bmr = ibv_reg_mr(e.pd, e.bbuf, BUF_LEN, IBV_ACCESS_LOCAL_WRITE |
			   IBV_ACCESS_REMOTE_WRITE | IBV_ACCESS_REMOTE_READ |
			   IBV_ACCESS_REMOTE_ATOMIC);
	if (!e.amr || !e.bmr) {
		fprintf(stderr, "verbs_errors: cannot register memory: %s\n",
			strerror(errno));
		return 1;
	}

	check_reg_mr(&e);
	check_dealloc_pd_busy(&e);
	check_query_port(&e);
	check_create_qp(&e);
	check_modify_qp(&e);
	check_post_state(&e);
	check_destroy_cq_busy(&e);

	if (!check_good_path(&e))
		printf("# a plain RDMA WRITE between two QPs fails: the error "
		       "checks below cannot mean much\n");
	check_post_limits(&e);
	check_bad_rkey(&e);
	check_flush_chain(&e);
	check_remote_access(&e);
	check_local_protection(&e);
	check_send_too_long(&e);
	check_recv_prot(&e);
	check_rnr(&e);
	check_peer_gone(&e);
	run_hardening_checks(&e);

	ibv_dereg_mr(e.amr);
	ibv_dereg_mr(e.bmr);
	ibv_dealloc_pd(e.pd);
	ibv_dealloc_pd(e.pd2);
	ibv_close_device(e.ctx);

	printf("%d passed, %d failed\n", npass, nfail);
	return nfail ? 1 : 0;
}
