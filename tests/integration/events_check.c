// SPDX-License-Identifier: MIT
/*
 * uib_events_check: completion channels and async events on one uib
 * device, in one process (RC QP pairs in loopback).
 *
 *   uib_events_check [-d DEV] [--preloaded]
 *
 * Checks uibdv_create_comp_channel(), CQs on it, ibv_req_notify_cq() (any
 * and solicited-only), ibv_get_cq_event(), ibv_ack_cq_events(),
 * ibv_destroy_comp_channel() (EBUSY while a CQ uses it), the stock
 * ibv_create_comp_channel() (EBADF without libuib-preload.so; a working
 * channel with it, --preloaded), and the async events SRQ_LIMIT_REACHED and
 * QP_ACCESS_ERR.  Prints "ok NAME" or "FAIL NAME: why" per check and
 * "N passed, N failed"; exits 1 if any check failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>
#include <infiniband/uibdv.h>

#define BUF_SIZE	4096
#define EVENT_MS	2000	/* an event must arrive within this */
#define QUIET_MS	200	/* no event within this counts as none */

static int n_pass, n_fail;

static void ok(const char *name)
{
	printf("ok %s\n", name);
	fflush(stdout);
	n_pass++;
}

static void __attribute__((format(printf, 2, 3)))
fail(const char *name, const char *fmt, ...)
{
	va_list ap;

	printf("FAIL %s: ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	n_fail++;
}

/* Evaluates to true and records a failure if cond is false. */
#define FAILED(name, cond, ...) \
	(!(cond) ? (fail(name, __VA_ARGS__), true) : false)

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* 1 if fd became readable within ms, 0 on timeout, -1 on error. */
static int wait_readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t end = now_ms() + (uint64_t)ms;
	int r;

	for (;;) {
		uint64_t t = now_ms();

		r = poll(&p, 1, t >= end ? 0 : (int)(end - t));
		if (r >= 0 || errno != EINTR)
			break;
	}
	if (r > 0 && !(p.revents & POLLIN))
		return -1;
	return r;
}

struct dev {
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	uint16_t lid;
	uint8_t *buf;		/* [0, BUF_SIZE): send side, then receive side */
	struct ibv_mr *mr;
};

struct pair {
	struct ibv_qp *a, *b;	/* a sends to b */
	struct ibv_cq *acq, *bcq;
};

static int qp_connect(struct dev *d, struct ibv_qp *qp, uint32_t dqpn)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT,
		.pkey_index = 0,
		.port_num = 1,
		.qp_access_flags = IBV_ACCESS_REMOTE_WRITE |
				   IBV_ACCESS_REMOTE_READ,
	};

	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
				  IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
		return -1;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	a.path_mtu = IBV_MTU_4096;
	a.dest_qp_num = dqpn;
	a.rq_psn = 0;
	a.max_dest_rd_atomic = 1;
	a.min_rnr_timer = 1;
	a.ah_attr.dlid = d->lid;
	a.ah_attr.port_num = 1;
	if (ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
				  IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
				  IBV_QP_MAX_DEST_RD_ATOMIC |
				  IBV_QP_MIN_RNR_TIMER))
		return -1;
	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.timeout = 14;
	a.retry_cnt = 7;
	a.rnr_retry = 7;
	a.sq_psn = 0;
	a.max_rd_atomic = 1;
	return ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_TIMEOUT |
				     IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
				     IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC);
}

static struct ibv_qp *rc_qp(struct dev *d, struct ibv_cq *cq,
			    struct ibv_srq *srq)
{
	struct ibv_qp_init_attr ia = {
		.send_cq = cq,
		.recv_cq = cq,
		.srq = srq,
		.cap = { .max_send_wr = 16, .max_recv_wr = srq ? 0 : 16,
			 .max_send_sge = 1, .max_recv_sge = 1 },
		.qp_type = IBV_QPT_RC,
	};

	return ibv_create_qp(d->pd, &ia);
}

/* A connected pair a -> b, a on acq and b on bcq (b on srq if given). */
static int pair_make(struct dev *d, struct pair *p, struct ibv_cq *acq,
		     struct ibv_cq *bcq, struct ibv_srq *srq)
{
	memset(p, 0, sizeof(*p));
	p->acq = acq;
	p->bcq = bcq;
	p->a = rc_qp(d, acq, NULL);
	p->b = rc_qp(d, bcq, srq);
	if (!p->a || !p->b)
		return -1;
	if (qp_connect(d, p->a, p->b->qp_num) ||
	    qp_connect(d, p->b, p->a->qp_num))
		return -1;
	return 0;
}

static void pair_free(struct pair *p)
{
	if (p->a)
		ibv_destroy_qp(p->a);
	if (p->b)
		ibv_destroy_qp(p->b);
	memset(p, 0, sizeof(*p));
}

static int post_recv(struct dev *d, struct ibv_qp *qp, struct ibv_srq *srq,
		     uint64_t wr_id)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)(d->buf + BUF_SIZE),
		.length = BUF_SIZE,
		.lkey = d->mr->lkey,
	};
	struct ibv_recv_wr wr = { .wr_id = wr_id, .sg_list = &sge,
				  .num_sge = 1 }, *bad;

	return srq ? ibv_post_srq_recv(srq, &wr, &bad) :
		     ibv_post_recv(qp, &wr, &bad);
}

static int post_send(struct dev *d, struct ibv_qp *qp, enum ibv_wr_opcode op,
		     unsigned int flags, uint32_t rkey, uint64_t wr_id)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)d->buf,
		.length = 64,
		.lkey = d->mr->lkey,
	};
	struct ibv_send_wr wr = {
		.wr_id = wr_id,
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = op,
		.send_flags = IBV_SEND_SIGNALED | flags,
	}, *bad;

	if (op == IBV_WR_RDMA_WRITE) {
		wr.wr.rdma.remote_addr = (uintptr_t)(d->buf + BUF_SIZE);
		wr.wr.rdma.rkey = rkey;
	}
	return ibv_post_send(qp, &wr, &bad);
}

/* Polls cq (which drives the requester) until one completion or ms. */
static int poll_one(struct ibv_cq *cq, struct ibv_wc *wc, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;
	int n;

	do {
		n = ibv_poll_cq(cq, 1, wc);
		if (n)
			return n;
		usleep(100);
	} while (now_ms() < end);
	return 0;
}

/* Posts one SEND a -> b and waits for a's send completion; b's
 * completion stays in b's CQ.  0, or -1 with why set. */
static int send_msg(struct dev *d, struct pair *p, unsigned int flags,
		    uint64_t id, char *why, size_t wl)
{
	struct ibv_wc wc;

	if (post_send(d, p->a, IBV_WR_SEND, flags, 0, id)) {
		snprintf(why, wl, "post send: %s", strerror(errno));
		return -1;
	}
	if (poll_one(p->acq, &wc, EVENT_MS) != 1) {
		snprintf(why, wl, "no send completion within %d ms", EVENT_MS);
		return -1;
	}
	if (wc.status != IBV_WC_SUCCESS || wc.wr_id != id) {
		snprintf(why, wl, "send completion %s wr_id %" PRIu64,
			 ibv_wc_status_str(wc.status), wc.wr_id);
		return -1;
	}
	return 0;
}

/* A receive posted on b, then send_msg(). */
static int send_one(struct dev *d, struct pair *p, unsigned int flags,
		    uint64_t id, char *why, size_t wl)
{
	if (post_recv(d, p->b, NULL, id)) {
		snprintf(why, wl, "post recv: %s", strerror(errno));
		return -1;
	}
	return send_msg(d, p, flags, id, why, wl);
}

/* Takes b's receive completion out of its CQ. */
static int recv_one(struct ibv_cq *cq, uint64_t id, char *why, size_t wl)
{
	struct ibv_wc wc;

	if (poll_one(cq, &wc, EVENT_MS) != 1) {
		snprintf(why, wl, "no receive completion within %d ms",
			 EVENT_MS);
		return -1;
	}
	if (wc.status != IBV_WC_SUCCESS || wc.wr_id != id ||
	    wc.opcode != IBV_WC_RECV) {
		snprintf(why, wl, "receive completion %s opcode %d wr_id %"
			 PRIu64, ibv_wc_status_str(wc.status), wc.opcode,
			 wc.wr_id);
		return -1;
	}
	return 0;
}

/*
 * Waits for a CQ event: 1 with *cq and *cq_ctx set, 0 if none came within ms
 * (the fd stayed unreadable), -1 on error.
 */
static int cq_event(struct ibv_comp_channel *ch, int ms, struct ibv_cq **cq,
		    void **cq_ctx)
{
	int r = wait_readable(ch->fd, ms);

	if (r <= 0)
		return r;
	if (ibv_get_cq_event(ch, cq, cq_ctx))
		return -1;
	return 1;
}

/* Describes what cq_event() gave, for a failure message. */
static const char *ev_desc(int r, struct ibv_cq *got, void *got_ctx,
			   struct ibv_cq *want, void *want_ctx, char *buf,
			   size_t len)
{
	if (r == 0)
		snprintf(buf, len, "no event within %d ms", EVENT_MS);
	else if (r < 0)
		snprintf(buf, len, "ibv_get_cq_event: %s", strerror(errno));
	else
		snprintf(buf, len, "event for cq %p context %p, expected "
			 "cq %p context %p", (void *)got, got_ctx,
			 (void *)want, want_ctx);
	return buf;
}

/* Reads and acks whatever async events are pending; returns how many. */
static int async_drain(struct ibv_context *ctx, const char *name)
{
	struct ibv_async_event ev;
	int n = 0;

	while (wait_readable(ctx->async_fd, 0) > 0 &&
	       !ibv_get_async_event(ctx, &ev)) {
		printf("# %s: pending async event %s\n", name,
		       ibv_event_type_str(ev.event_type));
		ibv_ack_async_event(&ev);
		n++;
	}
	return n;
}

/*
 * Waits up to ms for an async event; 1 with *ev filled (to be acked), 0 on
 * timeout, -1 on error.
 */
static int async_event(struct ibv_context *ctx, int ms,
		       struct ibv_async_event *ev)
{
	int r = wait_readable(ctx->async_fd, ms);

	if (r <= 0)
		return r;
	return ibv_get_async_event(ctx, ev) ? -1 : 1;
}

/* ------------------------------------------------------------------------ */

static int tag_a, tag_b, tag_c;	/* cq_context values */

static void check_channels(struct dev *d)
{
	struct ibv_comp_channel *ch;
	struct ibv_cq *cq_a = NULL, *cq_b = NULL, *cq_c = NULL, *ev_cq;
	struct pair p = { 0 };
	unsigned int b_events = 0;
	void *ev_ctx;
	char why[160];
	int r;

	errno = 0;
	ch = uibdv_create_comp_channel(NULL);
	if (!FAILED("uibdv_channel_null_context", !ch && errno == EOPNOTSUPP,
		    "got %p errno %d (%s), expected NULL, EOPNOTSUPP",
		    (void *)ch, errno, strerror(errno)))
		ok("uibdv_channel_null_context");

	ch = uibdv_create_comp_channel(d->ctx);
	if (FAILED("uibdv_create_comp_channel", ch && ch->fd >= 0 &&
		   ch->context == d->ctx, "got %p: %s", (void *)ch,
		   strerror(errno)))
		return;
	ok("uibdv_create_comp_channel");
	if (!FAILED("channel_fd_quiet", wait_readable(ch->fd, 0) == 0,
		    "a new channel's fd is readable"))
		ok("channel_fd_quiet");

	cq_a = ibv_create_cq(d->ctx, 16, &tag_a, ch, 0);
	cq_b = ibv_create_cq(d->ctx, 16, &tag_b, ch, 0);
	if (FAILED("create_cq_on_channel", cq_a && cq_b &&
		   cq_b->channel == ch && cq_b->cq_context == &tag_b,
		   "ibv_create_cq: %s", strerror(errno)))
		goto out;
	ok("create_cq_on_channel");

	if (FAILED("loopback_rc_pair", !pair_make(d, &p, cq_a, cq_b, NULL),
		   "RC QP pair: %s", strerror(errno)))
		goto out;

	/* No arm, no event. */
	if (send_one(d, &p, 0, 1, why, sizeof(why)) ||
	    recv_one(cq_b, 1, why, sizeof(why)))
		fail("unarmed_no_event", "%s", why);
	else if (!FAILED("unarmed_no_event",
			 (r = cq_event(ch, QUIET_MS, &ev_cq, &ev_ctx)) == 0,
			 "an unarmed CQ raised an event (%d)", r))
		ok("unarmed_no_event");

	/* Armed: the receive completion raises one event for cq_b. */
	if (FAILED("req_notify_cq", !ibv_req_notify_cq(cq_b, 0),
		   "ibv_req_notify_cq: %s", strerror(errno)))
		goto out;
	ok("req_notify_cq");
	if (send_one(d, &p, 0, 2, why, sizeof(why))) {
		fail("cq_event", "%s", why);
		goto out;
	}
	r = cq_event(ch, EVENT_MS, &ev_cq, &ev_ctx);
	if (r == 1)
		b_events += ev_cq == cq_b;
	if (!FAILED("cq_event", r == 1 && ev_cq == cq_b && ev_ctx == &tag_b,
		    "%s", ev_desc(r, ev_cq, ev_ctx, cq_b, &tag_b, why,
				  sizeof(why))))
		ok("cq_event");
	if (recv_one(cq_b, 2, why, sizeof(why)))
		fail("cq_event_completion", "%s", why);
	else
		ok("cq_event_completion");

	/* The arm is spent: the next completion raises nothing. */
	if (send_one(d, &p, 0, 3, why, sizeof(why)) ||
	    recv_one(cq_b, 3, why, sizeof(why)))
		fail("arm_is_one_shot", "%s", why);
	else if (!FAILED("arm_is_one_shot",
			 (r = cq_event(ch, QUIET_MS, &ev_cq, &ev_ctx)) == 0,
			 "a second event without re-arming (%d)", r))
		ok("arm_is_one_shot");

	/* The requester's own CQ: an armed cq_a gets its send completion. */
	if (FAILED("send_cq_event", !ibv_req_notify_cq(cq_a, 0),
		   "ibv_req_notify_cq: %s", strerror(errno)))
		goto out;
	if (send_one(d, &p, 0, 4, why, sizeof(why)) ||
	    recv_one(cq_b, 4, why, sizeof(why))) {
		fail("send_cq_event", "%s", why);
	} else {
		r = cq_event(ch, EVENT_MS, &ev_cq, &ev_ctx);
		if (!FAILED("send_cq_event", r == 1 && ev_cq == cq_a &&
			    ev_ctx == &tag_a, "%s", ev_desc(r, ev_cq, ev_ctx,
			    cq_a, &tag_a, why, sizeof(why)))) {
			ok("send_cq_event");
			ibv_ack_cq_events(cq_a, 1);
		} else if (r == 1) {
			ibv_ack_cq_events(ev_cq, 1);
		}
	}

	/* Solicited only: an unsolicited SEND raises nothing... */
	if (FAILED("solicited_arm", !ibv_req_notify_cq(cq_b, 1),
		   "ibv_req_notify_cq(solicited): %s", strerror(errno)))
		goto out;
	if (send_one(d, &p, 0, 5, why, sizeof(why))) {
		fail("solicited_arm_unsolicited_send", "%s", why);
		goto out;
	}
	r = cq_event(ch, QUIET_MS, &ev_cq, &ev_ctx);
	if (r == 1 && ev_cq == cq_b)
		b_events++;
	if (!FAILED("solicited_arm_unsolicited_send", r == 0,
		    "an unsolicited completion raised an event (%d)", r))
		ok("solicited_arm_unsolicited_send");
	if (recv_one(cq_b, 5, why, sizeof(why)))
		fail("solicited_arm_unsolicited_send", "%s", why);

	/* ... a solicited one does. */
	if (send_one(d, &p, IBV_SEND_SOLICITED, 6, why, sizeof(why))) {
		fail("solicited_arm_solicited_send", "%s", why);
		goto out;
	}
	r = cq_event(ch, EVENT_MS, &ev_cq, &ev_ctx);
	if (r == 1 && ev_cq == cq_b)
		b_events++;
	if (!FAILED("solicited_arm_solicited_send", r == 1 && ev_cq == cq_b &&
		    ev_ctx == &tag_b, "%s", ev_desc(r, ev_cq, ev_ctx, cq_b,
		    &tag_b, why, sizeof(why))))
		ok("solicited_arm_solicited_send");
	if (recv_one(cq_b, 6, why, sizeof(why)))
		fail("solicited_arm_solicited_send", "%s", why);

	/* Ack what was taken, then the CQ goes. */
	ibv_ack_cq_events(cq_b, b_events);
	pair_free(&p);
	if (!FAILED("ack_and_destroy_cq", !(r = ibv_destroy_cq(cq_b)),
		    "ibv_destroy_cq: %s", strerror(r)))
		ok("ack_and_destroy_cq");
	cq_b = NULL;
	if (!FAILED("destroy_cq_a", !(r = ibv_destroy_cq(cq_a)),
		    "ibv_destroy_cq: %s", strerror(r)))
		cq_a = NULL;

	/* A channel in use cannot go. */
	cq_c = ibv_create_cq(d->ctx, 4, &tag_c, ch, 0);
	if (FAILED("destroy_channel_busy", cq_c, "ibv_create_cq: %s",
		   strerror(errno)))
		goto out;
	r = ibv_destroy_comp_channel(ch);
	if (!FAILED("destroy_channel_busy", r == EBUSY,
		    "ibv_destroy_comp_channel returned %d (%s), expected EBUSY",
		    r, strerror(r)))
		ok("destroy_channel_busy");
	if (r == 0)
		ch = NULL;	/* gone, though it should not be */
	r = ibv_destroy_cq(cq_c);
	cq_c = NULL;
	if (FAILED("destroy_channel", !r, "ibv_destroy_cq: %s", strerror(r)))
		goto out;
	if (ch) {
		r = ibv_destroy_comp_channel(ch);
		ch = NULL;
		if (!FAILED("destroy_channel", r == 0,
			    "ibv_destroy_comp_channel: %d (%s)", r,
			    strerror(r)))
			ok("destroy_channel");
	}
out:
	pair_free(&p);
	if (cq_a)
		ibv_destroy_cq(cq_a);
	if (cq_b)
		ibv_destroy_cq(cq_b);
	if (cq_c)
		ibv_destroy_cq(cq_c);
	if (ch)
		ibv_destroy_comp_channel(ch);
}

/* The stock ibv_create_comp_channel(): no kernel, so EBADF; unless
 * libuib-preload.so is in, when it must be a working channel. */
static void check_stock_channel(struct dev *d, bool preloaded)
{
	struct ibv_comp_channel *ch;
	struct ibv_cq *cq, *ev_cq = NULL;
	struct pair p;
	void *ev_ctx;
	char why[160];
	int r;

	errno = 0;
	ch = ibv_create_comp_channel(d->ctx);
	if (!preloaded) {
		if (!FAILED("stock_create_comp_channel", !ch && errno == EBADF,
			    "got %p errno %d (%s), expected NULL, EBADF",
			    (void *)ch, errno, strerror(errno)))
			ok("stock_create_comp_channel");
		if (ch)
			ibv_destroy_comp_channel(ch);
		return;
	}
	if (FAILED("preloaded_create_comp_channel", ch, "NULL: %s",
		   strerror(errno)))
		return;
	cq = ibv_create_cq(d->ctx, 16, &tag_a, ch, 0);
	if (FAILED("preloaded_create_comp_channel", cq, "ibv_create_cq: %s",
		   strerror(errno))) {
		ibv_destroy_comp_channel(ch);
		return;
	}
	if (pair_make(d, &p, cq, cq, NULL)) {
		fail("preloaded_create_comp_channel", "RC pair: %s",
		     strerror(errno));
	} else if (ibv_req_notify_cq(cq, 0) ||
		   send_one(d, &p, 0, 7, why, sizeof(why))) {
		fail("preloaded_create_comp_channel", "send: %s", why);
	} else {
		r = cq_event(ch, EVENT_MS, &ev_cq, &ev_ctx);
		if (!FAILED("preloaded_create_comp_channel", r == 1 &&
			    ev_cq == cq && ev_ctx == &tag_a,
			    "no event for the armed CQ (%d)", r)) {
			ok("preloaded_create_comp_channel");
			ibv_ack_cq_events(cq, 1);
		}
	}
	pair_free(&p);
	ibv_destroy_cq(cq);
	r = ibv_destroy_comp_channel(ch);
	if (r)
		fail("preloaded_destroy_comp_channel", "%s", strerror(r));
}

/* Waits for one async event and checks its type and element. */
static void expect_async(struct dev *d, const char *name,
			 enum ibv_event_type type, void *element)
{
	struct ibv_async_event ev;
	int r = async_event(d->ctx, EVENT_MS, &ev);
	void *got;

	if (r != 1) {
		fail(name, r ? "ibv_get_async_event: %s" :
			       "no async event within 2000 ms%s",
		     r ? strerror(errno) : "");
		return;
	}
	got = type == IBV_EVENT_SRQ_LIMIT_REACHED ? (void *)ev.element.srq :
						    (void *)ev.element.qp;
	if (!FAILED(name, ev.event_type == type && got == element,
		    "got %s for %p, expected %s for %p",
		    ibv_event_type_str(ev.event_type), got,
		    ibv_event_type_str(type), element))
		ok(name);
	ibv_ack_async_event(&ev);
}

static void check_srq_limit(struct dev *d)
{
	const char *name = "srq_limit_event";
	struct ibv_srq_init_attr sia = { .attr = { .max_wr = 16,
						   .max_sge = 1 } };
	struct ibv_srq_attr sa = { .srq_limit = 4 };
	struct ibv_async_event ev;
	struct ibv_srq *srq;
	struct ibv_cq *cq_a = NULL, *cq_b = NULL;
	struct pair p = { 0 };
	char why[160];
	int i, r;

	async_drain(d->ctx, name);
	srq = ibv_create_srq(d->pd, &sia);
	cq_a = ibv_create_cq(d->ctx, 32, NULL, NULL, 0);
	cq_b = ibv_create_cq(d->ctx, 32, NULL, NULL, 0);
	if (FAILED(name, srq && cq_a && cq_b, "create SRQ/CQ: %s",
		   strerror(errno)))
		goto out;
	if (FAILED(name, !pair_make(d, &p, cq_a, cq_b, srq),
		   "RC pair on SRQ: %s", strerror(errno)))
		goto out;
	/* 8 receives posted, limit 4: the 5th message takes it below. */
	for (i = 0; i < 8; i++)
		if (FAILED(name, !post_recv(d, NULL, srq, 100 + i),
			   "post srq recv: %s", strerror(errno)))
			goto out;
	r = ibv_modify_srq(srq, &sa, IBV_SRQ_LIMIT);
	if (FAILED(name, !r, "ibv_modify_srq(IBV_SRQ_LIMIT): %s", strerror(r)))
		goto out;
	memset(&sa, 0, sizeof(sa));
	r = ibv_query_srq(srq, &sa);
	if (FAILED(name, !r && sa.srq_limit == 4,
		   "ibv_query_srq: %d, srq_limit %u, expected 4", r,
		   sa.srq_limit))
		goto out;
	for (i = 0; i < 4; i++)
		if (send_msg(d, &p, 0, i, why, sizeof(why)) ||
		    recv_one(cq_b, 100 + i, why, sizeof(why))) {
			fail(name, "message %d: %s", i, why);
			goto out;
		}
	r = async_event(d->ctx, QUIET_MS, &ev);
	if (r == 1) {
		fail("srq_limit_not_early", "%s with 4 receives left, limit 4",
		     ibv_event_type_str(ev.event_type));
		ibv_ack_async_event(&ev);
	} else {
		ok("srq_limit_not_early");
	}
	/* The 5th leaves 3. */
	if (send_msg(d, &p, 0, 4, why, sizeof(why)) ||
	    recv_one(cq_b, 104, why, sizeof(why))) {
		fail(name, "message 4: %s", why);
		goto out;
	}
	expect_async(d, name, IBV_EVENT_SRQ_LIMIT_REACHED, srq);

	/* IBA 10.2.9.2: the limit disarms when it fires, and fires once. */
	memset(&sa, 0, sizeof(sa));
	r = ibv_query_srq(srq, &sa);
	if (!FAILED("srq_limit_disarmed", !r && sa.srq_limit == 0,
		    "ibv_query_srq: %d, srq_limit %u, expected 0", r,
		    sa.srq_limit))
		ok("srq_limit_disarmed");
	if (send_msg(d, &p, 0, 5, why, sizeof(why)) ||
	    recv_one(cq_b, 105, why, sizeof(why))) {
		fail("srq_limit_once", "message 5: %s", why);
		goto out;
	}
	r = async_event(d->ctx, QUIET_MS, &ev);
	if (r == 1) {
		fail("srq_limit_once", "another %s",
		     ibv_event_type_str(ev.event_type));
		ibv_ack_async_event(&ev);
	} else {
		ok("srq_limit_once");
	}
out:
	pair_free(&p);
	if (srq)
		ibv_destroy_srq(srq);
	if (cq_a)
		ibv_destroy_cq(cq_a);
	if (cq_b)
		ibv_destroy_cq(cq_b);
	async_drain(d->ctx, name);
}

/* RDMA WRITE with a bad rkey: the requester completes with
 * IBV_WC_REM_ACCESS_ERR, the responder QP hears IBV_EVENT_QP_ACCESS_ERR. */
static void check_access_err(struct dev *d)
{
	const char *name = "qp_access_err_event";
	struct ibv_cq *cq_a, *cq_b;
	struct ibv_qp_attr qa;
	struct ibv_qp_init_attr qia;
	struct ibv_wc wc;
	struct pair p = { 0 };
	struct ibv_mr *mr2;
	uint32_t bad_rkey;

	async_drain(d->ctx, name);
	cq_a = ibv_create_cq(d->ctx, 16, NULL, NULL, 0);
	cq_b = ibv_create_cq(d->ctx, 16, NULL, NULL, 0);
	if (FAILED(name, cq_a && cq_b, "create CQ: %s", strerror(errno)))
		goto out;
	if (FAILED(name, !pair_make(d, &p, cq_a, cq_b, NULL), "RC pair: %s",
		   strerror(errno)))
		goto out;
	/* A key that existed and is gone: surely not a valid one. */
	mr2 = ibv_reg_mr(d->pd, d->buf, BUF_SIZE, IBV_ACCESS_LOCAL_WRITE |
			 IBV_ACCESS_REMOTE_WRITE);
	if (FAILED(name, mr2, "ibv_reg_mr: %s", strerror(errno)))
		goto out;
	bad_rkey = mr2->rkey;
	ibv_dereg_mr(mr2);
	if (FAILED(name, !post_send(d, p.a, IBV_WR_RDMA_WRITE, 0, bad_rkey, 9),
		   "post RDMA WRITE: %s", strerror(errno)))
		goto out;
	if (poll_one(cq_a, &wc, EVENT_MS) != 1)
		fail("bad_rkey_rem_access_err", "no completion within %d ms",
		     EVENT_MS);
	else if (!FAILED("bad_rkey_rem_access_err",
			 wc.status == IBV_WC_REM_ACCESS_ERR && wc.wr_id == 9,
			 "completion %s wr_id %" PRIu64 ", expected "
			 "IBV_WC_REM_ACCESS_ERR", ibv_wc_status_str(wc.status),
			 wc.wr_id))
		ok("bad_rkey_rem_access_err");
	expect_async(d, name, IBV_EVENT_QP_ACCESS_ERR, p.b);
	if (!ibv_query_qp(p.b, &qa, IBV_QP_STATE, &qia) &&
	    !FAILED("responder_qp_in_error", qa.qp_state == IBV_QPS_ERR,
		    "responder QP state %d, expected IBV_QPS_ERR (%d)",
		    qa.qp_state, IBV_QPS_ERR))
		ok("responder_qp_in_error");
out:
	pair_free(&p);
	if (cq_a)
		ibv_destroy_cq(cq_a);
	if (cq_b)
		ibv_destroy_cq(cq_b);
	async_drain(d->ctx, name);
}

static void usage(const char *argv0)
{
	fprintf(stderr, "usage: %s [-d DEVICE] [--preloaded]\n", argv0);
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ib-dev", required_argument, NULL, 'd' },
		{ "preloaded", no_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	struct ibv_device **list, *dev = NULL;
	const char *name = NULL;
	struct ibv_port_attr pa;
	struct dev d = { 0 };
	bool preloaded = false;
	int c, i, n;

	while ((c = getopt_long(argc, argv, "d:", opts, NULL)) != -1) {
		if (c == 'd')
			name = optarg;
		else if (c == 'P')
			preloaded = true;
		else
			usage(argv[0]);
	}
	if (optind != argc)
		usage(argv[0]);
	setvbuf(stdout, NULL, _IOLBF, 0);

	list = ibv_get_device_list(&n);
	if (!list) {
		printf("FAIL setup: ibv_get_device_list: %s\n", strerror(errno));
		return 1;
	}
	for (i = 0; i < n && !dev; i++)
		if (name ? !strcmp(ibv_get_device_name(list[i]), name) :
			   uibdv_is_uib_device(list[i]))
			dev = list[i];
	if (!dev || !uibdv_is_uib_device(dev)) {
		printf("FAIL setup: no uib device %s\n", name ? name : "");
		return 1;
	}
	d.ctx = ibv_open_device(dev);
	if (d.ctx)
		d.pd = ibv_alloc_pd(d.ctx);
	d.buf = aligned_alloc(4096, 2 * BUF_SIZE);
	if (d.pd && d.buf) {
		memset(d.buf, 0xab, 2 * BUF_SIZE);
		d.mr = ibv_reg_mr(d.pd, d.buf, 2 * BUF_SIZE,
				  IBV_ACCESS_LOCAL_WRITE |
				  IBV_ACCESS_REMOTE_WRITE);
	}
	if (!d.mr || ibv_query_port(d.ctx, 1, &pa)) {
		printf("FAIL setup: open %s, PD, MR: %s\n",
		       ibv_get_device_name(dev), strerror(errno));
		return 1;
	}
	d.lid = pa.lid;
	printf("# device %s, port 1 lid %u%s\n", ibv_get_device_name(dev),
	       d.lid, preloaded ? ", libuib-preload.so expected" : "");

	check_channels(&d);
	check_stock_channel(&d, preloaded);
	check_srq_limit(&d);
	check_access_err(&d);

	ibv_dereg_mr(d.mr);
	ibv_dealloc_pd(d.pd);
	ibv_close_device(d.ctx);
	ibv_free_device_list(list);
	free(d.buf);
	printf("%d passed, %d failed\n", n_pass, n_fail);
	return n_fail ? 1 : 0;
}
