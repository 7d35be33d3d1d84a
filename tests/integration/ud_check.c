// SPDX-License-Identifier: MIT
/*
 * uib_ud_check: the UD features IPoIB needs (issue 9), between processes,
 * with the data checked byte for byte.
 *
 *   uib_ud_check -d DEV [-s SEED]
 *
 * Multicast: members in three processes receive every datagram sent to
 * their group (GRH first, IBV_WC_GRH, the sender's QPN); a member that
 * detached and a member with another Q_Key receive nothing; self-loopback
 * is blocked only with IBV_QP_CREATE_BLOCK_SELF_MCAST_LB; a killed
 * member's attachments are reclaimed; bad input gets the errno rdma-core
 * documents.  TSS: a QP created with IBV_QP_CREATE_SOURCE_QPN is seen with
 * its parent's QPN.  TSO: one IBV_WR_TSO of 64 KiB arrives as header +
 * mss-byte datagrams, byte for byte (ibv_post_send and ibv_wr_send_tso).  Absence is checked without timing: delivery happens inside
 * the sender's post, so a unicast "end" datagram sent after the multicast
 * ones arrives after anything the member could have received.
 *
 * Every check prints "ok NAME" or "FAIL NAME: ..."; the last line is
 * "N passed, M failed".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#define QKEY		0x0b1b
#define GRH		40
#define MSG		256
#define NMSG		16
#define NRECV		64
#define WAIT_MS		5000
#define END_TAG		0xee

static const char *devname;
static int npass, nfail;

static void pass(const char *name)
{
	printf("ok %s\n", name);
	npass++;
}

static void __attribute__((format(printf, 2, 3)))
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

static void __attribute__((format(printf, 3, 4)))
check(const char *name, bool ok, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		pass(name);
		return;
	}
	printf("FAIL %s: ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	nfail++;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One process's view: a context, a UD QP, its CQ and buffers. */
struct node {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;		/* receive completions */
	struct ibv_cq *scq;		/* send completions */
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	uint8_t *buf;			/* NRECV receive slots, then a send slot */
	struct ibv_port_attr port;
	union ibv_gid gid;
};

static struct ibv_context *open_dev(void)
{
	struct ibv_device **list = ibv_get_device_list(NULL);
	struct ibv_context *ctx = NULL;
	int i;

	for (i = 0; list && list[i]; i++)
		if (!strcmp(ibv_get_device_name(list[i]), devname))
			ctx = ibv_open_device(list[i]);
	if (list)
		ibv_free_device_list(list);
	return ctx;
}

static int ud_to_rts(struct ibv_qp *qp, uint32_t qkey)
{
	struct ibv_qp_attr a = { .qp_state = IBV_QPS_INIT, .port_num = 1,
				 .qkey = qkey };

	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			  IBV_QP_PORT | IBV_QP_QKEY))
		return -1;
	a.qp_state = IBV_QPS_RTR;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE))
		return -1;
	a.qp_state = IBV_QPS_RTS;
	return ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN);
}

static struct ibv_qp *ud_qp(struct node *n, uint32_t qkey, uint32_t flags)
{
	struct ibv_qp_init_attr_ex ia = {
		.send_cq = n->scq, .recv_cq = n->cq,
		.cap = { .max_send_wr = 64, .max_recv_wr = NRECV,
			 .max_send_sge = 1, .max_recv_sge = 1 },
		.qp_type = IBV_QPT_UD,
		.comp_mask = IBV_QP_INIT_ATTR_PD,
		.pd = n->pd,
	};
	struct ibv_qp *qp;

	if (flags) {
		ia.comp_mask |= IBV_QP_INIT_ATTR_CREATE_FLAGS;
		ia.create_flags = flags;
	}
	qp = ibv_create_qp_ex(n->ctx, &ia);
	if (qp && ud_to_rts(qp, qkey)) {
		ibv_destroy_qp(qp);
		qp = NULL;
	}
	return qp;
}

static int node_init(struct node *n, uint32_t qkey, uint32_t flags)
{
	size_t len = (NRECV + 1) * (MSG + GRH);

	memset(n, 0, sizeof(*n));
	n->ctx = open_dev();
	if (!n->ctx || ibv_query_port(n->ctx, 1, &n->port) ||
	    ibv_query_gid(n->ctx, 1, 0, &n->gid))
		return -1;
	n->pd = ibv_alloc_pd(n->ctx);
	n->cq = ibv_create_cq(n->ctx, 4 * NRECV, NULL, NULL, 0);
	n->scq = ibv_create_cq(n->ctx, 4 * NRECV, NULL, NULL, 0);
	n->buf = mmap(NULL, len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (!n->pd || !n->cq || !n->scq || n->buf == MAP_FAILED)
		return -1;
	n->mr = ibv_reg_mr(n->pd, n->buf, len, IBV_ACCESS_LOCAL_WRITE);
	n->qp = n->mr ? ud_qp(n, qkey, flags) : NULL;
	return n->qp ? 0 : -1;
}

static uint8_t *slot(struct node *n, int i)
{
	return n->buf + (size_t)i * (MSG + GRH);
}

static int post_recvs(struct node *n, struct ibv_qp *qp)
{
	int i;

	for (i = 0; i < NRECV; i++) {
		struct ibv_sge sge = { .addr = (uintptr_t)slot(n, i),
				       .length = MSG + GRH,
				       .lkey = n->mr->lkey };
		struct ibv_recv_wr wr = { .wr_id = i, .sg_list = &sge,
					  .num_sge = 1 }, *bad;

		if (ibv_post_recv(qp, &wr, &bad))
			return -1;
	}
	return 0;
}

/* Fills the send slot with message k's pattern (tag in byte 0). */
static void pattern(uint8_t *p, unsigned int seed, int k, uint8_t tag)
{
	int i;

	p[0] = tag;
	for (i = 1; i < MSG; i++)
		p[i] = (uint8_t)(seed * 31 + k * 7 + i);
}

static int send_one(struct node *n, struct ibv_qp *qp, struct ibv_ah *ah,
		    uint32_t qpn, int k, unsigned int seed, uint8_t tag)
{
	uint8_t *p = slot(n, NRECV);
	struct ibv_sge sge = { .addr = (uintptr_t)p, .length = MSG,
			       .lkey = n->mr->lkey };
	struct ibv_send_wr wr = {
		.wr_id = k, .sg_list = &sge, .num_sge = 1,
		.opcode = IBV_WR_SEND, .send_flags = IBV_SEND_SIGNALED,
		.wr.ud = { .ah = ah, .remote_qpn = qpn, .remote_qkey = QKEY },
	}, *bad;
	struct ibv_wc wc;
	uint64_t deadline = now_ms() + WAIT_MS;
	int r;

	pattern(p, seed, k, tag);
	if (ibv_post_send(qp, &wr, &bad))
		return -1;
	do {
		r = ibv_poll_cq(n->scq, 1, &wc);
		if (r == 1)
			return wc.status == IBV_WC_SUCCESS ? 0 : -1;
	} while (r >= 0 && now_ms() < deadline);
	return -1;
}

static struct ibv_ah *mcast_ah(struct node *n, const union ibv_gid *mgid)
{
	struct ibv_ah_attr a = {
		.is_global = 1, .dlid = 0xc001, .port_num = 1,
		.grh = { .dgid = *mgid, .hop_limit = 1 },
	};

	return ibv_create_ah(n->pd, &a);
}

static struct ibv_ah *ucast_ah(struct node *n, uint16_t lid)
{
	struct ibv_ah_attr a = { .dlid = lid, .port_num = 1 };

	return ibv_create_ah(n->pd, &a);
}

/*
 * A member process: attaches its QP (unless 'detach' says to detach again,
 * or qkey differs), reports its QPN and LID on 'to', waits for "go" on
 * 'from', then counts datagrams until the unicast end marker and reports
 * "got N bad M" on 'to'.
 */
struct member_report {
	uint32_t qpn;
	uint16_t lid;
	int got, bad;
	uint32_t src_qp;
};

static void member(int to, int from, const union ibv_gid *mgid,
		   uint32_t qkey, bool detach, unsigned int seed)
{
	struct member_report r = {};
	struct node n;
	char go;
	int done = 0;
	uint64_t deadline;

	if (node_init(&n, qkey, 0) || post_recvs(&n, n.qp) ||
	    ibv_attach_mcast(n.qp, mgid, 0xc001) ||
	    (detach && ibv_detach_mcast(n.qp, mgid, 0xc001)))
		_exit(3);
	r.qpn = n.qp->qp_num;
	r.lid = n.port.lid;
	if (write(to, &r, sizeof(r)) != sizeof(r) ||
	    read(from, &go, 1) != 1)
		_exit(4);
	deadline = now_ms() + WAIT_MS;
	while (!done && now_ms() < deadline) {
		struct ibv_wc wc;
		uint8_t want[MSG], *p;

		if (ibv_poll_cq(n.cq, 1, &wc) != 1)
			continue;
		p = slot(&n, wc.wr_id) + GRH;
		if (wc.status != IBV_WC_SUCCESS) {
			r.bad++;
			continue;
		}
		if (p[0] == END_TAG) {
			done = 1;
			break;
		}
		pattern(want, seed, r.got, 'M');
		if (wc.byte_len != MSG + GRH || !(wc.wc_flags & IBV_WC_GRH) ||
		    memcmp(p, want, MSG) ||
		    slot(&n, wc.wr_id)[0] >> 4 != 6)	/* GRH IPVer 6 */
			r.bad++;
		r.src_qp = wc.src_qp;
		r.got++;
	}
	if (!done)
		r.bad += 1000;
	if (ibv_detach_mcast(n.qp, mgid, 0xc001) && !detach)
		r.bad += 10000;
	if (write(to, &r, sizeof(r)) != sizeof(r))
		_exit(5);
	_exit(0);
}

struct child {
	pid_t pid;
	int to, from;		/* our ends */
	struct member_report r;
};

static int spawn(struct child *c, const union ibv_gid *mgid, uint32_t qkey,
		 bool detach, unsigned int seed)
{
	int up[2], down[2];

	if (pipe(up) || pipe(down))
		return -1;
	c->pid = fork();
	if (c->pid < 0)
		return -1;
	if (!c->pid) {
		close(up[0]);
		close(down[1]);
		member(up[1], down[0], mgid, qkey, detach, seed);
	}
	close(up[1]);
	close(down[0]);
	c->from = up[0];
	c->to = down[1];
	return read(c->from, &c->r, sizeof(c->r)) == sizeof(c->r) ? 0 : -1;
}

static void check_mcast_fanout(unsigned int seed)
{
	union ibv_gid mgid = { .raw = { 0xff, 0x12, 0x40, 0x1b, 0xff, 0xff,
					[12] = 0xff, 0xff, 0xff, 0xff } };
	struct child c[5];
	struct node s;
	struct ibv_ah *mah;
	int i, k, nc = 0, status;
	bool ok = true;

	/* 0-2: members; 3: attached then detached; 4: another Q_Key. */
	for (i = 0; i < 5 && ok; i++, nc++)
		ok = !spawn(&c[i], &mgid, i == 4 ? QKEY + 1 : QKEY, i == 3,
			    seed);
	if (!ok || node_init(&s, QKEY, 0)) {
		failf("multicast fan-out", "expected members and a sender "
		      "to set up got a failure (%s)", strerror(errno));
		goto out;
	}
	mah = mcast_ah(&s, &mgid);
	for (i = 0; i < nc; i++)
		if (write(c[i].to, "g", 1) != 1)
			ok = false;
	for (k = 0; k < NMSG && ok; k++)
		ok = !send_one(&s, s.qp, mah, 0xffffff, k, seed, 'M');
	check("multicast sends complete", ok, "a send failed");
	/* The end marker, unicast to each member, after everything. */
	for (i = 0; i < nc; i++) {
		struct ibv_ah *ah = ucast_ah(&s, c[i].r.lid);
		struct ibv_send_wr *bad;
		uint8_t *p = slot(&s, NRECV);
		struct ibv_sge sge = { .addr = (uintptr_t)p, .length = MSG,
				       .lkey = s.mr->lkey };
		struct ibv_send_wr wr = {
			.sg_list = &sge, .num_sge = 1, .opcode = IBV_WR_SEND,
			.wr.ud = { .ah = ah, .remote_qpn = c[i].r.qpn,
				   .remote_qkey = i == 4 ? QKEY + 1 : QKEY },
		};

		p[0] = END_TAG;
		ibv_post_send(s.qp, &wr, &bad);
	}
	for (i = 0; i < nc; i++) {
		char name[80];

		if (read(c[i].from, &c[i].r, sizeof(c[i].r)) != sizeof(c[i].r))
			c[i].r.bad = -1;
		snprintf(name, sizeof(name), "%s %d",
			 i < 3 ? "member in its own process" :
			 i == 3 ? "detached member" : "member with another Q_Key",
			 i);
		if (i < 3)
			check(name, c[i].r.got == NMSG && !c[i].r.bad &&
				    c[i].r.src_qp == s.qp->qp_num,
			      "expected %d datagrams with GRH and data intact "
			      "from QPN %#x got %d (bad %d) from %#x", NMSG,
			      s.qp->qp_num, c[i].r.got, c[i].r.bad,
			      c[i].r.src_qp);
		else
			check(name, c[i].r.got == 0 && !c[i].r.bad,
			      "expected no multicast datagram got %d (bad %d)",
			      c[i].r.got, c[i].r.bad);
	}
out:
	for (i = 0; i < nc; i++) {
		close(c[i].to);
		waitpid(c[i].pid, &status, 0);
	}
}

/* A QP attached to the group it sends to gets its own datagrams back
 * unless it was created with IBV_QP_CREATE_BLOCK_SELF_MCAST_LB. */
static void check_self_loopback(unsigned int seed)
{
	union ibv_gid mgid = { .raw = { 0xff, 0x12, 0x40, 0x1b, 0xff, 0xff,
					[15] = 0x42 } };
	struct node n;
	struct ibv_qp *blk;
	struct ibv_ah *ah;
	struct ibv_wc wc;
	int pass_no, got;

	if (node_init(&n, QKEY, 0)) {
		failf("self-loopback", "expected a node got a failure");
		return;
	}
	blk = ud_qp(&n, QKEY, IBV_QP_CREATE_BLOCK_SELF_MCAST_LB);
	ah = mcast_ah(&n, &mgid);
	if (!blk || !ah || ibv_attach_mcast(n.qp, &mgid, 0xc002) ||
	    ibv_attach_mcast(blk, &mgid, 0xc002) || post_recvs(&n, n.qp)) {
		failf("self-loopback", "expected setup to work got %s",
		      strerror(errno));
		return;
	}
	for (pass_no = 0; pass_no < 2; pass_no++) {
		struct ibv_qp *from = pass_no ? blk : n.qp;

		send_one(&n, from, ah, 0xffffff, 0, seed, 'L');
		got = 0;
		while (ibv_poll_cq(n.cq, 1, &wc) == 1)
			if (wc.opcode == IBV_WC_RECV && wc.qp_num == n.qp->qp_num &&
			    wc.src_qp == from->qp_num)
				got++;
		if (!pass_no)
			check("multicast loops back to an attached sender", got == 1,
			      "expected 1 copy back got %d", got);
	}
	/* blk sent while attached; n.qp (a member) got one copy of that, but
	 * blk itself has no receives posted: post one and resend. */
	{
		struct ibv_sge sge = { .addr = (uintptr_t)slot(&n, 0),
				       .length = MSG + GRH, .lkey = n.mr->lkey };
		struct ibv_recv_wr wr = { .wr_id = 0xb1, .sg_list = &sge,
					  .num_sge = 1 }, *bad;

		ibv_post_recv(blk, &wr, &bad);
		send_one(&n, blk, ah, 0xffffff, 1, seed, 'L');
		got = 0;
		while (ibv_poll_cq(n.cq, 1, &wc) == 1)
			if (wc.opcode == IBV_WC_RECV && wc.qp_num == blk->qp_num)
				got++;
		check("BLOCK_SELF_MCAST_LB stops the copy to the sender",
		      got == 0, "expected no copy got %d", got);
	}
	ibv_detach_mcast(n.qp, &mgid, 0xc002);
	ibv_detach_mcast(blk, &mgid, 0xc002);
}

static void check_mcast_errors(void)
{
	union ibv_gid mgid = { .raw = { 0xff, 0x12, 0x40, 0x1b, [15] = 7 } };
	union ibv_gid ucast = { .raw = { 0xfe, 0x80, [15] = 1 } };
	struct ibv_qp_init_attr rc = { .qp_type = IBV_QPT_RC,
				       .cap = { .max_send_wr = 1,
						.max_recv_wr = 1,
						.max_send_sge = 1,
						.max_recv_sge = 1 } };
	struct ibv_device_attr da;
	struct ibv_qp **qps;
	struct ibv_qp *rcqp;
	struct node n;
	int i, ret = 0, made;

	if (node_init(&n, QKEY, 0) || ibv_query_device(n.ctx, &da)) {
		failf("multicast bad input", "expected a node");
		return;
	}
	check("attach of a unicast GID is EINVAL",
	      ibv_attach_mcast(n.qp, &ucast, 0xc001) == EINVAL, "got another");
	check("attach with a unicast LID is EINVAL",
	      ibv_attach_mcast(n.qp, &mgid, 0x0001) == EINVAL, "got another");
	rc.send_cq = rc.recv_cq = n.cq;
	rcqp = ibv_create_qp(n.pd, &rc);
	check("attach of an RC QP is EINVAL",
	      rcqp && ibv_attach_mcast(rcqp, &mgid, 0xc001) == EINVAL,
	      "got another");
	if (rcqp)
		ibv_destroy_qp(rcqp);
	check("detach of a group never joined is EINVAL",
	      ibv_detach_mcast(n.qp, &mgid, 0xc001) == EINVAL, "got another");
	check("attach twice is idempotent",
	      !ibv_attach_mcast(n.qp, &mgid, 0xc001) &&
		      !ibv_attach_mcast(n.qp, &mgid, 0xc001) &&
		      !ibv_detach_mcast(n.qp, &mgid, 0xc001) &&
		      ibv_detach_mcast(n.qp, &mgid, 0xc001) == EINVAL,
	      "expected 0, 0, 0, EINVAL");
	check("destroying an attached QP is EBUSY",
	      !ibv_attach_mcast(n.qp, &mgid, 0xc001) &&
		      ibv_destroy_qp(n.qp) == EBUSY &&
		      !ibv_detach_mcast(n.qp, &mgid, 0xc001),
	      "expected EBUSY");
	/* max_mcast_qp_attach QPs fit in one group; one more does not. */
	qps = calloc(da.max_mcast_qp_attach + 1, sizeof(*qps));
	for (made = 0; made <= da.max_mcast_qp_attach; made++) {
		qps[made] = ud_qp(&n, QKEY, 0);
		if (!qps[made])
			break;
		ret = ibv_attach_mcast(qps[made], &mgid, 0xc001);
		if (ret)
			break;
	}
	check("max_mcast_qp_attach is enforced with ENOMEM",
	      made == da.max_mcast_qp_attach && ret == ENOMEM,
	      "expected %d attachments then ENOMEM got %d then %d",
	      da.max_mcast_qp_attach, made, ret);
	for (i = 0; i <= made && i <= da.max_mcast_qp_attach; i++) {
		if (!qps[i])
			continue;
		ibv_detach_mcast(qps[i], &mgid, 0xc001);
		ibv_destroy_qp(qps[i]);
	}
	free(qps);
}

/* A member killed with its attachments in place: the next open of the
 * device reclaims them, so the group has room for max again. */
static void check_mcast_reclaim(void)
{
	union ibv_gid mgid = { .raw = { 0xff, 0x12, 0x40, 0x1b, [15] = 9 } };
	int p[2], status, i, ret = 0, made;
	struct ibv_device_attr da;
	struct ibv_qp **qps;
	struct node n;
	pid_t pid;
	char c;

	if (pipe(p))
		return;
	pid = fork();
	if (!pid) {
		struct node k;

		if (node_init(&k, QKEY, 0) ||
		    ibv_attach_mcast(k.qp, &mgid, 0xc001))
			_exit(3);
		if (write(p[1], "a", 1) != 1)
			_exit(4);
		pause();
		_exit(0);
	}
	close(p[1]);
	if (read(p[0], &c, 1) != 1) {
		failf("killed member's attachment is reclaimed",
		      "expected the member to attach");
		return;
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	/* node_init opens the device: that reclaims the dead context. */
	if (node_init(&n, QKEY, 0) || ibv_query_device(n.ctx, &da))
		return;
	qps = calloc(da.max_mcast_qp_attach, sizeof(*qps));
	for (made = 0; made < da.max_mcast_qp_attach; made++) {
		qps[made] = ud_qp(&n, QKEY, 0);
		if (!qps[made] || (ret = ibv_attach_mcast(qps[made], &mgid,
							  0xc001)))
			break;
	}
	check("killed member's attachment is reclaimed",
	      made == da.max_mcast_qp_attach,
	      "expected %d attachments to fit got %d (%s)",
	      da.max_mcast_qp_attach, made, strerror(ret));
	for (i = 0; i < made; i++) {
		ibv_detach_mcast(qps[i], &mgid, 0xc001);
		ibv_destroy_qp(qps[i]);
	}
	free(qps);
}

/* A QP created with IBV_QP_CREATE_SOURCE_QPN sends as its parent. */
static void check_tss(unsigned int seed)
{
	struct node tx, rx;
	struct ibv_qp_init_attr_ex ia;
	struct ibv_qp *child, *bad;
	struct ibv_ah *ah;
	struct ibv_wc wc;
	int p[2], hold[2], status, got = 0;
	uint32_t other_qpn = 0;
	pid_t pid;

	if (node_init(&tx, QKEY, 0) || node_init(&rx, QKEY, 0) ||
	    post_recvs(&rx, rx.qp)) {
		failf("TSS", "expected two nodes");
		return;
	}
	memset(&ia, 0, sizeof(ia));
	ia.send_cq = tx.scq;
	ia.recv_cq = tx.cq;
	ia.cap.max_send_wr = 16;
	ia.cap.max_send_sge = 1;
	ia.qp_type = IBV_QPT_UD;
	ia.comp_mask = IBV_QP_INIT_ATTR_PD | IBV_QP_INIT_ATTR_CREATE_FLAGS;
	ia.pd = tx.pd;
	ia.create_flags = IBV_QP_CREATE_SOURCE_QPN;
	ia.source_qpn = tx.qp->qp_num;
	child = ibv_create_qp_ex(tx.ctx, &ia);
	if (!child || ud_to_rts(child, QKEY)) {
		failf("SOURCE_QPN send QP", "expected it to be created got %s",
		      strerror(errno));
		return;
	}
	ah = ucast_ah(&tx, rx.port.lid);
	send_one(&tx, child, ah, rx.qp->qp_num, 0, seed, 'T');
	while (ibv_poll_cq(rx.cq, 1, &wc) == 1)
		if (wc.status == IBV_WC_SUCCESS && wc.src_qp == tx.qp->qp_num)
			got++;
	check("SOURCE_QPN QP is seen with the parent's QPN", got == 1,
	      "expected 1 datagram from QPN %#x got %d", tx.qp->qp_num, got);

	ia.qp_type = IBV_QPT_RC;
	errno = 0;
	bad = ibv_create_qp_ex(tx.ctx, &ia);
	check("SOURCE_QPN on an RC QP is EINVAL", !bad && errno == EINVAL,
	      "got %s", bad ? "a QP" : strerror(errno));
	ia.qp_type = IBV_QPT_UD;
	ia.source_qpn = 0xabcdef;
	errno = 0;
	bad = ibv_create_qp_ex(tx.ctx, &ia);
	check("SOURCE_QPN of no QP is EINVAL", !bad && errno == EINVAL,
	      "got %s", bad ? "a QP" : strerror(errno));
	/* A QP of another process: not ours to send as.  The child keeps
	 * it until we close 'hold'. */
	if (pipe(p) || pipe(hold))
		return;
	pid = fork();
	if (!pid) {
		struct node o;
		char c;

		close(hold[1]);
		if (node_init(&o, QKEY, 0))
			_exit(3);
		if (write(p[1], &o.qp->qp_num, 4) != 4 ||
		    read(hold[0], &c, 1) < 0)
			_exit(4);
		_exit(0);
	}
	close(hold[0]);
	if (read(p[0], &other_qpn, 4) != 4)
		other_qpn = 0;
	ia.source_qpn = other_qpn;
	errno = 0;
	bad = ibv_create_qp_ex(tx.ctx, &ia);
	check("SOURCE_QPN of another process's QP is EPERM",
	      !bad && errno == EPERM, "got %s", bad ? "a QP" : strerror(errno));
	close(hold[1]);
	close(p[1]);
	close(p[0]);
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

#define TSO_HDR		54
#define TSO_MSS		4000
#define TSO_LEN		(64 * 1024)
#define TSO_SEGS	((TSO_LEN + TSO_MSS - 1) / TSO_MSS)

struct tso_node {
	struct node n;
	struct ibv_qp *qp;
	uint8_t *big;
	struct ibv_mr *bmr;
	size_t blen;
};

static uint8_t tso_byte(unsigned int seed, size_t i)
{
	return (uint8_t)(seed + i * 13 + (i >> 8));
}

/* Receives TSO_SEGS datagrams and checks each: GRH, header, its slice. */
static void tso_expect(const char *name, struct tso_node *r, unsigned int seed,
		       const uint8_t *hdr)
{
	int i, bad = 0, got = 0;
	size_t off = 0;

	for (i = 0; i < TSO_SEGS; i++) {
		struct ibv_wc wc;
		size_t n = TSO_LEN - off < TSO_MSS ? TSO_LEN - off : TSO_MSS;
		uint8_t *p;
		size_t j;

		if (ibv_poll_cq(r->n.cq, 1, &wc) != 1)
			break;
		got++;
		p = r->big + wc.wr_id * (4096 + GRH) + GRH;
		if (wc.status || wc.byte_len != GRH + TSO_HDR + n ||
		    memcmp(p, hdr, TSO_HDR))
			bad++;
		for (j = 0; j < n; j++)
			if (p[TSO_HDR + j] != tso_byte(seed, off + j)) {
				bad++;
				break;
			}
		off += n;
	}
	check(name, got == TSO_SEGS && !bad,
	      "expected %d datagrams of header + slice got %d (%d bad)",
	      TSO_SEGS, got, bad);
}

static int tso_node_init(struct tso_node *t, bool with_recvs)
{
	struct ibv_qp_init_attr_ex ia = {};
	int i;

	if (node_init(&t->n, QKEY, 0))
		return -1;
	t->blen = TSO_SEGS * 2 * (4096 + GRH) + TSO_LEN;
	t->big = mmap(NULL, t->blen, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	t->bmr = ibv_reg_mr(t->n.pd, t->big, t->blen, IBV_ACCESS_LOCAL_WRITE);
	ia.send_cq = t->n.scq;
	ia.recv_cq = t->n.cq;
	ia.cap.max_send_wr = 16;
	ia.cap.max_recv_wr = 2 * TSO_SEGS;
	ia.cap.max_send_sge = 2;
	ia.cap.max_recv_sge = 1;
	ia.qp_type = IBV_QPT_UD;
	ia.comp_mask = IBV_QP_INIT_ATTR_PD | IBV_QP_INIT_ATTR_MAX_TSO_HEADER |
		       IBV_QP_INIT_ATTR_SEND_OPS_FLAGS;
	ia.send_ops_flags = IBV_QP_EX_WITH_SEND | IBV_QP_EX_WITH_TSO;
	ia.pd = t->n.pd;
	ia.max_tso_header = 128;
	t->qp = t->bmr ? ibv_create_qp_ex(t->n.ctx, &ia) : NULL;
	if (!t->qp || ud_to_rts(t->qp, QKEY))
		return -1;
	for (i = 0; with_recvs && i < 2 * TSO_SEGS; i++) {
		struct ibv_sge sge = {
			.addr = (uintptr_t)t->big + i * (4096 + GRH),
			.length = 4096 + GRH, .lkey = t->bmr->lkey };
		struct ibv_recv_wr wr = { .wr_id = i, .sg_list = &sge,
					  .num_sge = 1 }, *bad;

		if (ibv_post_recv(t->qp, &wr, &bad))
			return -1;
	}
	return 0;
}

static void check_tso(unsigned int seed)
{
	struct ibv_device_attr_ex dx;
	struct tso_node tx, rx;
	uint8_t hdr[TSO_HDR], *payload;
	struct ibv_send_wr wr, *bad;
	struct ibv_sge sge[2];
	struct ibv_ah *ah;
	struct ibv_wc wc;
	struct ibv_qp_ex *qx;
	size_t i;
	int st;

	if (tso_node_init(&tx, false) || tso_node_init(&rx, true)) {
		failf("TSO", "expected TSO QPs got %s", strerror(errno));
		return;
	}
	check("tso_caps: max_tso >= 64 KiB for UD",
	      !ibv_query_device_ex(tx.n.ctx, NULL, &dx) &&
		      dx.tso_caps.max_tso >= 65536 &&
		      (dx.tso_caps.supported_qpts & (1u << IBV_QPT_UD)),
	      "got max_tso %u qpts %#x", dx.tso_caps.max_tso,
	      dx.tso_caps.supported_qpts);
	for (i = 0; i < TSO_HDR; i++)
		hdr[i] = (uint8_t)(0xa0 + i);
	/* Payload in two SGEs, split off the mss grid. */
	payload = tx.big + 2 * TSO_SEGS * (4096 + GRH);
	for (i = 0; i < TSO_LEN; i++)
		payload[i] = tso_byte(seed, i);
	sge[0] = (struct ibv_sge){ (uintptr_t)payload, 10001, tx.bmr->lkey };
	sge[1] = (struct ibv_sge){ (uintptr_t)payload + 10001, TSO_LEN - 10001,
				   tx.bmr->lkey };
	ah = ucast_ah(&tx.n, rx.n.port.lid);
	memset(&wr, 0, sizeof(wr));
	wr.wr_id = 0x7;
	wr.sg_list = sge;
	wr.num_sge = 2;
	wr.opcode = IBV_WR_TSO;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.wr.ud.ah = ah;
	wr.wr.ud.remote_qpn = rx.qp->qp_num;
	wr.wr.ud.remote_qkey = QKEY;
	wr.tso.hdr = hdr;
	wr.tso.hdr_sz = TSO_HDR;
	wr.tso.mss = TSO_MSS;
	check("post of a 64 KiB TSO WQE", !ibv_post_send(tx.qp, &wr, &bad),
	      "failed");
	st = ibv_poll_cq(tx.n.scq, 1, &wc) == 1 ? (int)wc.status : -1;
	check("TSO send completes with IBV_WC_TSO",
	      st == IBV_WC_SUCCESS && wc.opcode == IBV_WC_TSO,
	      "got status %d opcode %d", st, wc.opcode);
	tso_expect("TSO WQE arrives as header + mss datagrams", &rx, seed, hdr);

	/* The same through ibv_wr_send_tso. */
	qx = ibv_qp_to_qp_ex(tx.qp);
	ibv_wr_start(qx);
	qx->wr_id = 0x8;
	qx->wr_flags = IBV_SEND_SIGNALED;
	ibv_wr_send_tso(qx, hdr, TSO_HDR, TSO_MSS);
	ibv_wr_set_ud_addr(qx, ah, rx.qp->qp_num, QKEY);
	ibv_wr_set_sge_list(qx, 2, sge);
	check("ibv_wr_send_tso posts", !ibv_wr_complete(qx), "failed");
	tso_expect("ibv_wr_send_tso arrives as header + mss datagrams", &rx,
		   seed, hdr);

	wr.tso.mss = 0;
	check("TSO with mss 0 is EINVAL",
	      ibv_post_send(tx.qp, &wr, &bad) == EINVAL, "got another");
	wr.tso.mss = TSO_MSS;
	wr.tso.hdr_sz = 129;
	check("TSO header above max_tso_header is EINVAL",
	      ibv_post_send(tx.qp, &wr, &bad) == EINVAL, "got another");
	wr.tso.hdr_sz = TSO_HDR;
	sge[1].length = dx.tso_caps.max_tso;
	check("TSO payload above max_tso is EINVAL",
	      ibv_post_send(tx.qp, &wr, &bad) == EINVAL, "got another");
	sge[1].length = TSO_LEN - 10001;
	wr.opcode = IBV_WR_TSO;
	check("TSO on a QP without max_tso_header is EINVAL",
	      ibv_post_send(tx.n.qp, &wr, &bad) == EINVAL, "got another");
}

int main(int argc, char **argv)
{
	unsigned int seed = 1;
	int ch;

	while ((ch = getopt(argc, argv, "d:s:")) != -1) {
		if (ch == 'd')
			devname = optarg;
		else if (ch == 's')
			seed = strtoul(optarg, NULL, 0);
		else
			return 2;
	}
	if (!devname) {
		fprintf(stderr, "usage: %s -d DEV [-s SEED]\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	alarm(120);
	check_mcast_fanout(seed);
	check_self_loopback(seed);
	check_mcast_errors();
	check_mcast_reclaim();
	check_tss(seed);
	check_tso(seed);
	printf("%d passed, %d failed\n", npass, nfail);
	return nfail ? 1 : 0;
}
