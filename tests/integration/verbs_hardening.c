// SPDX-License-Identifier: MIT
/*
 * Regression checks for the hardening findings of issue 7, run by
 * uib_verbs_errors after its own checks (verbs_check.h):
 *
 *   - a receive SGE near 2^64 with a valid lkey (the bounds check used to
 *     overflow, and the sender crashed);
 *   - an atomic whose local side is two 4-byte SGEs (used to overflow a
 *     heap buffer and complete with success);
 *   - ibv_post_recv / ibv_post_send with a NULL sg_list and num_sge 0;
 *   - a requester's own send CQ overrun (used to lose completions silently:
 *     now IBV_EVENT_CQ_ERR and the QP in ERR);
 *   - max_cq and max_srq enforced with ENOMEM (19,990 CQs were created);
 *   - a DOWN port carries nothing: RC fails with RETRY_EXC_ERR, a UD
 *     datagram sent while it is down never arrives (needs UIB_UIBCTL).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "verbs_check.h"

static void check_recv_bounds_overflow(struct env *e)
{
	const char *name = "recv SGE near 2^64 with a valid lkey";
	struct pair p;
	struct ibv_sge sge = {
		.addr = UINT64_MAX - 16, .length = 256, .lkey = e->bmr->lkey,
	};
	struct ibv_recv_wr rwr = { .wr_id = 0xb0, .sg_list = &sge,
				   .num_sge = 1 }, *bad;
	struct ibv_wc wc;

	poison_b(e);
	if (!pair_make(e, &p, name, &default_opts))
		return;
	if (!expect_ret("post_recv of an SGE near 2^64", ibv_post_recv(p.b,
				&rwr, &bad), 0))
		goto out;
	memset(e->abuf, 0xa5, 256);
	if (post(p.a, IBV_WR_SEND, 0xa0, e->abuf, 256, e->amr->lkey, 0, 0)) {
		failf(name, "expected post_send to succeed got %s",
		      errname(errno));
		goto out;
	}
	/* The sender survives; the responder's buffer is not ours to write. */
	expect_wc2("SEND into an SGE near 2^64: requester error",
		   p.as, 0xa0, IBV_WC_REM_OP_ERR, IBV_WC_REM_INV_REQ_ERR);
	if (poll_one(p.br, &wc) != IBV_WC_LOC_PROT_ERR || wc.wr_id != 0xb0)
		failf("SEND into an SGE near 2^64: responder LOC_PROT_ERR",
		      "expected %s got %s", statname(IBV_WC_LOC_PROT_ERR),
		      statname(wc.status));
	else
		pass("SEND into an SGE near 2^64: responder LOC_PROT_ERR");
	expect_untouched("SEND into an SGE near 2^64 writes nothing", e, 0,
			 BUF_LEN);
out:
	pair_destroy(&p);
}

static void check_atomic_split_sge(struct env *e)
{
	const char *name = "atomic with two 4-byte SGEs";
	struct ibv_sge sge[2] = {
		{ .addr = (uintptr_t)e->abuf, .length = 4,
		  .lkey = e->amr->lkey },
		{ .addr = (uintptr_t)e->abuf + 64, .length = 4,
		  .lkey = e->amr->lkey },
	};
	struct ibv_send_wr wr = {
		.wr_id = 0xa1, .sg_list = sge, .num_sge = 2,
		.opcode = IBV_WR_ATOMIC_FETCH_AND_ADD,
		.send_flags = IBV_SEND_SIGNALED,
		.wr.atomic = { .remote_addr = (uintptr_t)e->bbuf,
			       .rkey = e->bmr->rkey, .compare_add = 1 },
	}, *bad;
	struct pair p;
	size_t i;

	poison_b(e);
	memset(e->abuf, 0x33, 128);
	if (!pair_make(e, &p, name, &default_opts))
		return;
	if (ibv_post_send(p.a, &wr, &bad)) {
		/* Refusing it at post time would be as good. */
		pass(name);
		goto out;
	}
	expect_wc("atomic with two 4-byte SGEs: LOC_LEN_ERR", p.as, 0xa1,
		  IBV_WC_LOC_LEN_ERR);
	for (i = 0; i < 128; i++)
		if (e->abuf[i] != 0x33)
			break;
	if (i < 128)
		failf("atomic with two 4-byte SGEs leaves local memory alone",
		      "expected byte %zu to stay 0x33 got %#x", i, e->abuf[i]);
	else
		pass("atomic with two 4-byte SGEs leaves local memory alone");
	expect_untouched("atomic with two 4-byte SGEs leaves the target alone",
			 e, 0, 8);
out:
	pair_destroy(&p);
}

static void check_null_sg_list(struct env *e)
{
	struct ibv_recv_wr rwr = { .wr_id = 0xb2 }, *rbad;
	struct ibv_send_wr swr = { .wr_id = 0xa2, .opcode = IBV_WR_SEND,
				   .send_flags = IBV_SEND_SIGNALED }, *sbad;
	struct ibv_wc wc;
	struct pair p;
	int st;

	if (!pair_make(e, &p, "NULL sg_list", &default_opts))
		return;
	expect_ret("post_recv with a NULL sg_list and num_sge 0",
		   ibv_post_recv(p.b, &rwr, &rbad), 0);
	expect_ret("post_send with a NULL sg_list and num_sge 0",
		   ibv_post_send(p.a, &swr, &sbad), 0);
	expect_wc("zero-length SEND completes", p.as, 0xa2, IBV_WC_SUCCESS);
	st = poll_one(p.br, &wc);
	if (st != IBV_WC_SUCCESS || wc.wr_id != 0xb2 || wc.byte_len)
		failf("zero-length SEND received", "expected %s, wr_id 0xb2, "
		      "byte_len 0 got %s, wr_id %#" PRIx64 ", byte_len %u",
		      statname(IBV_WC_SUCCESS), statname(st), wc.wr_id,
		      wc.byte_len);
	else
		pass("zero-length SEND received");
	pair_destroy(&p);
}

/* Waits up to WAIT_MS for async event 'type' about cq; others are
 * skipped. */
static bool wait_async(struct env *e, enum ibv_event_type type, void *elem)
{
	uint64_t deadline = now_ms() + WAIT_MS;
	int fl = fcntl(e->ctx->async_fd, F_GETFL);
	bool found = false;

	fcntl(e->ctx->async_fd, F_SETFL, fl | O_NONBLOCK);
	while (!found && now_ms() < deadline) {
		struct pollfd pfd = { .fd = e->ctx->async_fd, .events = POLLIN };
		struct ibv_async_event ev;

		if (poll(&pfd, 1, 100) <= 0 || ibv_get_async_event(e->ctx, &ev))
			continue;
		/* Events of earlier checks name objects destroyed since:
		 * only the one we wait for is acknowledged. */
		found = ev.event_type == type && ev.element.cq == elem;
		if (found)
			ibv_ack_async_event(&ev);
	}
	fcntl(e->ctx->async_fd, F_SETFL, fl);
	return found;
}

static void check_send_cq_overrun(struct env *e)
{
	const char *name = "requester CQ overrun";
	struct ibv_cq *scq, *rcq, *bcq;
	struct ibv_qp *a, *b;
	int i, ret;

	scq = ibv_create_cq(e->ctx, 1, NULL, NULL, 0);
	rcq = ibv_create_cq(e->ctx, 4, NULL, NULL, 0);
	bcq = ibv_create_cq(e->ctx, 4, NULL, NULL, 0);
	a = scq && rcq ? make_qp(e->pd, scq, rcq, IBV_QPT_RC, NULL) : NULL;
	b = bcq ? make_qp(e->pd, bcq, bcq, IBV_QPT_RC, NULL) : NULL;
	if (!a || !b) {
		failf(name, "expected to set up QPs got %s", errname(errno));
		goto out;
	}
	ret = to_init(e, a, 0);
	ret = ret ?: to_init(e, b, default_opts.b_access);
	ret = ret ?: connect_one(e, a, b->qp_num, &default_opts);
	ret = ret ?: connect_one(e, b, a->qp_num, &default_opts);
	if (ret) {
		failf(name, "expected to connect got %s", errname(ret));
		goto out;
	}
	/* The ring holds scq->cqe + 1 entries; one more overruns it. */
	for (i = 0; i <= scq->cqe + 1; i++)
		if (post(a, IBV_WR_RDMA_WRITE, 0x100 + i, e->abuf, 8,
			 e->amr->lkey, (uintptr_t)e->bbuf, e->bmr->rkey))
			break;
	if (wait_async(e, IBV_EVENT_CQ_ERR, scq))
		pass("requester CQ overrun raises IBV_EVENT_CQ_ERR");
	else
		failf("requester CQ overrun raises IBV_EVENT_CQ_ERR",
		      "expected the event within %d ms got none", WAIT_MS);
	expect_state("requester CQ overrun moves the QP to ERR", a,
		     IBV_QPS_ERR);
out:
	if (a)
		ibv_destroy_qp(a);
	if (b)
		ibv_destroy_qp(b);
	if (scq)
		ibv_destroy_cq(scq);
	if (rcq)
		ibv_destroy_cq(rcq);
	if (bcq)
		ibv_destroy_cq(bcq);
}

/* Creates objects until the device says no; expects exactly 'max' of
 * them (none exist before) and ENOMEM. */
static void check_limit(struct env *e, const char *what, int max)
{
	void **objs = calloc(max + 1, sizeof(*objs));
	char name[96];
	int n = 0, err = 0;
	bool is_cq = !strcmp(what, "CQ");

	snprintf(name, sizeof(name), "max_%s (%d) is enforced with ENOMEM",
		 is_cq ? "cq" : "srq", max);
	while (objs && n <= max) {
		struct ibv_srq_init_attr sa = { .attr = { .max_wr = 1,
							  .max_sge = 1 } };

		objs[n] = is_cq ? (void *)ibv_create_cq(e->ctx, 1, NULL, NULL, 0) :
				  (void *)ibv_create_srq(e->pd, &sa);
		if (!objs[n]) {
			err = errno;
			break;
		}
		n++;
	}
	if (n != max || err != ENOMEM)
		failf(name, "expected %d %ss then ENOMEM got %d then %s", max,
		      what, n, errname(err));
	else
		pass(name);
	/* One freed, one can be made again. */
	if (n > 0) {
		struct ibv_srq_init_attr sa = { .attr = { .max_wr = 1,
							  .max_sge = 1 } };

		if (is_cq)
			ibv_destroy_cq(objs[--n]);
		else
			ibv_destroy_srq(objs[--n]);
		objs[n] = is_cq ? (void *)ibv_create_cq(e->ctx, 1, NULL, NULL, 0) :
				  (void *)ibv_create_srq(e->pd, &sa);
		snprintf(name, sizeof(name), "a %s can be made again after "
			 "one is destroyed", what);
		if (objs[n]) {
			pass(name);
			n++;
		} else {
			failf(name, "expected success got %s", errname(errno));
		}
	}
	while (n > 0) {
		n--;
		if (is_cq)
			ibv_destroy_cq(objs[n]);
		else
			ibv_destroy_srq(objs[n]);
	}
	free(objs);
}

static void check_limits(struct env *e)
{
	struct rlimit rl;

	/* Every CQ and SRQ holds a memfd: allow more fds than the limits. */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < 16384) {
		rl.rlim_cur = rl.rlim_max < 16384 ? rl.rlim_max : 16384;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	check_limit(e, "CQ", e->dev.max_cq);
	check_limit(e, "SRQ", e->dev.max_srq);
}

static int port_set(struct env *e, const char *state)
{
	const char *uibctl = getenv("UIB_UIBCTL");
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "%s port %s %d %s", uibctl, e->devname,
		 e->ib_port, state);
	return system(cmd);
}

static void check_port_down_rc(struct env *e)
{
	struct pair_opts po = default_opts;
	struct pair p;

	po.timeout = 8;		/* 1 ms x 8 tries: quick to give up */
	poison_b(e);
	if (!pair_make(e, &p, "RC over a DOWN port", &po))
		return;
	if (port_set(e, "down")) {
		failf("RC over a DOWN port", "expected uibctl port down to work");
		goto out;
	}
	memset(e->abuf, 0x77, 64);
	post(p.a, IBV_WR_RDMA_WRITE, 0xa3, e->abuf, 64, e->amr->lkey,
	     (uintptr_t)e->bbuf, e->bmr->rkey);
	expect_wc("RDMA WRITE over a DOWN port: RETRY_EXC_ERR", p.as, 0xa3,
		  IBV_WC_RETRY_EXC_ERR);
	expect_untouched("RDMA WRITE over a DOWN port writes nothing", e, 0,
			 64);
	port_set(e, "up");
out:
	pair_destroy(&p);
}

static struct ibv_qp *ud_qp(struct env *e, struct ibv_cq *cq)
{
	struct ibv_qp *qp = make_qp(e->pd, cq, cq, IBV_QPT_UD, NULL);
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT,
				 .port_num = e->ib_port, .qkey = 0x11 };

	if (!qp)
		return NULL;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			  IBV_QP_PORT | IBV_QP_QKEY))
		goto err;
	a.qp_state = IBV_QPS_RTR;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE))
		goto err;
	a.qp_state = IBV_QPS_RTS;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN))
		goto err;
	return qp;
err:
	ibv_destroy_qp(qp);
	return NULL;
}

static void ud_send(struct ibv_qp *qp, struct ibv_ah *ah, uint32_t qpn,
		    struct env *e, uint64_t wr_id, char tag)
{
	struct ibv_sge sge = { .addr = (uintptr_t)e->abuf, .length = 32,
			       .lkey = e->amr->lkey };
	struct ibv_send_wr wr = {
		.wr_id = wr_id, .sg_list = &sge, .num_sge = 1,
		.opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED,
		.wr.ud = { .ah = ah, .remote_qpn = qpn, .remote_qkey = 0x11 },
	}, *bad;

	memset(e->abuf, tag, 32);
	ibv_post_send(qp, &wr, &bad);
}

static void check_port_down_ud(struct env *e)
{
	const char *name = "UD datagram sent while the port is DOWN is lost";
	struct ibv_ah_attr aa = { .dlid = e->port.lid, .port_num = e->ib_port };
	struct ibv_cq *cq = ibv_create_cq(e->ctx, 16, NULL, NULL, 0);
	struct ibv_qp *a = cq ? ud_qp(e, cq) : NULL, *b = cq ? ud_qp(e, cq) : NULL;
	struct ibv_ah *ah = ibv_create_ah(e->pd, &aa);
	struct ibv_wc wc;
	int i;

	if (!a || !b || !ah) {
		failf(name, "expected UD QPs and an AH got %s", errname(errno));
		goto out;
	}
	memset(e->bbuf, 0, 256);
	for (i = 0; i < 2; i++)
		post_recv(b, 0xb0 + i, e->bbuf + i * 128, 128, e->bmr->lkey);
	port_set(e, "down");
	ud_send(a, ah, b->qp_num, e, 0xa4, 'D');
	port_set(e, "up");
	ud_send(a, ah, b->qp_num, e, 0xa5, 'U');
	/* Both sends complete (UD is unreliable); only 'U' arrives. */
	for (i = 0; i < 3; i++) {
		if (poll_one(cq, &wc) < 0) {
			failf(name, "expected 3 completions got %d", i);
			goto out;
		}
		if (wc.opcode == IBV_WC_RECV &&
		    (wc.status != IBV_WC_SUCCESS || wc.wr_id != 0xb0 ||
		     e->bbuf[40] != 'U')) {
			failf(name, "expected the first receive to hold the "
			      "datagram sent once the port was up ('U') got "
			      "%s wr_id %#" PRIx64 " '%c'",
			      statname(wc.status), wc.wr_id, e->bbuf[40]);
			goto out;
		}
	}
	expect_no_wc(name, cq);
out:
	if (ah)
		ibv_destroy_ah(ah);
	if (a)
		ibv_destroy_qp(a);
	if (b)
		ibv_destroy_qp(b);
	if (cq)
		ibv_destroy_cq(cq);
}

void run_hardening_checks(struct env *e)
{
	check_recv_bounds_overflow(e);
	check_atomic_split_sge(e);
	check_null_sg_list(e);
	check_send_cq_overrun(e);
	check_limits(e);
	if (!getenv("UIB_UIBCTL") || !e->devname) {
		printf("# port-down checks not run: UIB_UIBCTL and -d DEV "
		       "are needed\n");
		nfail++;
		return;
	}
	check_port_down_rc(e);
	check_port_down_ud(e);
}
