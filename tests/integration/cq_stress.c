// SPDX-License-Identifier: MIT
/*
 * uib_cq_stress: many producers, one CQ (issue 7, finding 2).
 *
 *   uib_cq_stress [-d DEV] -n CLIENTS [--threads] -m MSGS [-s SEED]
 *                 [--cqe N] [--timeout SEC] [--stall SEC]
 *
 * The process is the server; before it touches verbs it forks the clients:
 * CLIENTS processes, or with --threads one process whose CLIENTS threads
 * share a context and PD and each have their own CQ and RC QP.  A socketpair
 * per client carries the QP exchange and the final report (no sleeps).
 *
 * The server has ONE receive CQ (--cqe, default 255: a ring of 256) shared
 * by the receive queues of all its RC QPs (one per client); its own RDMA
 * WRITEs go to a separate send CQ.  Client c sends MSGS SEND_WITH_IMMs,
 * imm = c << 24 | seq, payload 0..64 bytes (both the inline-in-CQE and the
 * copied path) whose length and bytes are a function of (seed, c, seq).
 * Flow control makes a full receive CQ impossible in a correct provider:
 * a client may have at most W messages not yet consumed by the server, where
 * CLIENTS * W <= cqe; the server returns credits by RDMA WRITEing its
 * cumulative consumed count into the client's credit word (a message is
 * consumed once polled and its receive reposted, so the RQ never runs dry
 * either).  Client timing (burst sizes, yields, spins, short sleeps) is
 * drawn from the seed.
 *
 * The server checks: every completion succeeds; opcode RECV with an
 * immediate; imm's client matches the QP it arrived on; per client, seq is
 * exactly the next one (no loss, duplicate or reordering); byte_len and the
 * payload are right; no async event at all (CQ_ERR, QP_FATAL ...) in the
 * server or any client; the total is CLIENTS * MSGS and nothing more arrives;
 * clients see only successful send completions.  Every wait is bounded
 * (--timeout overall, --stall without progress).
 *
 * Output: a last line "cq_stress: OK ..." or "cq_stress: FAIL ..."; exit 0
 * or 1 (2 usage, 4 setup).
 */
#include "stress_common.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define MAXC		64
#define PAYMAX		64
#define SQD		16	/* server SQ depth per QP, client send window */
#define MAGIC		0x63717374u

struct cinfo {			/* client -> server */
	uint32_t magic, id;
	uint32_t qpn, rkey;
	uint64_t credit_addr;
	uint16_t lid;
	uint16_t pad[3];
};

struct sinfo {			/* server -> client */
	uint32_t magic, qpn;
	uint32_t window;
	uint16_t lid;
	uint16_t pad;
};

struct creport {		/* client -> server at the end */
	uint32_t magic, id;
	uint64_t sent, send_completions, errors, events;
};

static const char *dev_name;
static uint64_t seed;
static uint32_t msgs;
static int nclients;
static int timeout_s = 100, stall_s = 10;
static int cqe_arg = 255;

static int cqe_req(void)
{
	return cqe_arg;
}

static uint32_t len_of(uint32_t c, uint32_t seq)
{
	return (uint32_t)(st_mix64(seed ^ ((uint64_t)c << 40) ^ seq) %
			  (PAYMAX + 1));
}

static void fill(uint8_t *p, uint32_t len, uint32_t c, uint32_t seq)
{
	uint64_t key = st_mix64(seed + 7) ^ ((uint64_t)c << 32) ^ seq;
	uint32_t i;

	for (i = 0; i < len; i++)
		p[i] = (uint8_t)(st_mix64(key + i / 8) >> (8 * (i % 8)));
}

/* ------------------------------------------------------------ client -- */

struct client {
	int id, fd;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	int rc;
};

static void client_ev(const struct ibv_async_event *ev, void *arg)
{
	st_say("client %d: UNEXPECTED async event %s", *(int *)arg,
	       ibv_event_type_str(ev->event_type));
}

static int client_run(struct client *cl)
{
	struct st_rng rng = { st_mix64(seed ^ 0xc11e47ull ^ (uint64_t)cl->id) };
	struct ibv_cq *cq = ibv_create_cq(cl->ctx, 2 * SQD, NULL, NULL, 0);
	uint8_t *mem = aligned_alloc(4096, 4096);
	_Atomic uint64_t *credit = (_Atomic uint64_t *)mem;
	uint8_t *sbuf = mem + 64;
	struct ibv_mr *mr;
	struct ibv_qp *qp;
	struct cinfo ci = { .magic = MAGIC, .id = (uint32_t)cl->id };
	struct sinfo si;
	struct creport rep = { .magic = MAGIC, .id = (uint32_t)cl->id };
	uint64_t sent = 0, done = 0, deadline, last_progress;
	struct ibv_wc wc[16];
	uint32_t window, iter = 0;
	char go;
	int i, n;

	if (!cq || !mem)
		st_die(4, "client %d: CQ/memory: %s", cl->id, strerror(errno));
	memset(mem, 0, 4096);
	mr = ibv_reg_mr(cl->pd, mem, 4096, IBV_ACCESS_LOCAL_WRITE |
			IBV_ACCESS_REMOTE_WRITE);
	if (!mr)
		st_die(4, "client %d: ibv_reg_mr: %s", cl->id, strerror(errno));
	qp = st_rc_qp(cl->pd, cq, cq, SQD, 1, 0);
	ci.qpn = qp->qp_num;
	ci.rkey = mr->rkey;
	ci.credit_addr = (uintptr_t)credit;
	ci.lid = st_lid(cl->ctx);
	if (st_xfer(cl->fd, &ci, sizeof(ci), true, 30000) ||
	    st_xfer(cl->fd, &si, sizeof(si), false, 30000) ||
	    si.magic != MAGIC)
		st_die(5, "client %d: server went away in the exchange", cl->id);
	window = si.window;
	st_rc_connect(qp, si.qpn, si.lid, 14, 7, 7, 1);
	if (st_xfer(cl->fd, &go, 1, true, 30000) ||
	    st_xfer(cl->fd, &go, 1, false, 30000))
		st_die(5, "client %d: server went away before go", cl->id);

	deadline = st_now_ms() + (uint64_t)timeout_s * 1000;
	last_progress = st_now_ms();
	while (done < msgs || atomic_load(credit) < msgs) {
		uint64_t cr = atomic_load_explicit(credit, memory_order_acquire);
		uint64_t burst = 1 + st_below(&rng, window);
		uint64_t t;

		while (sent < msgs && sent < cr + window && burst-- &&
		       sent - done < SQD) {
			uint32_t seq = (uint32_t)sent;
			uint32_t len = len_of((uint32_t)cl->id, seq);
			uint8_t *p = sbuf + (sent % SQD) * PAYMAX;
			struct ibv_sge sge = { .addr = (uintptr_t)p,
					       .length = len,
					       .lkey = mr->lkey };
			struct ibv_send_wr wr = {
				.wr_id = sent, .sg_list = &sge,
				.num_sge = len ? 1 : 0,
				.opcode = IBV_WR_SEND_WITH_IMM,
				.send_flags = IBV_SEND_SIGNALED,
				.imm_data = htonl((uint32_t)cl->id << 24 | seq),
			}, *bad;
			int r;

			fill(p, len, (uint32_t)cl->id, seq);
			r = ibv_post_send(qp, &wr, &bad);
			if (r)
				st_die(3, "client %d: ibv_post_send seq %u: %s",
				       cl->id, seq, strerror(r));
			sent++;
		}
		n = ibv_poll_cq(cq, 16, wc);
		if (n < 0)
			st_die(3, "client %d: ibv_poll_cq failed", cl->id);
		for (i = 0; i < n; i++) {
			if (wc[i].status != IBV_WC_SUCCESS)
				st_die(3, "client %d: send completion %s "
				       "(seq %" PRIu64 ")", cl->id,
				       ibv_wc_status_str(wc[i].status),
				       wc[i].wr_id);
			if (wc[i].wr_id != done)
				st_die(3, "client %d: send completion for "
				       "seq %" PRIu64 ", expected %" PRIu64,
				       cl->id, wc[i].wr_id, done);
			done++;
		}
		if (!(++iter & 255) &&
		    st_drain_async(cl->ctx, client_ev, &cl->id))
			st_die(3, "client %d: async event(s)", cl->id);
		t = st_now_ms();
		if (n || atomic_load(credit) != cr)
			last_progress = t;
		if (t > deadline || t - last_progress > (uint64_t)stall_s * 1000)
			st_die(3, "client %d: no progress (sent %" PRIu64
			       ", completed %" PRIu64 ", credit %" PRIu64
			       " of %u)", cl->id, sent, done,
			       (uint64_t)atomic_load(credit), msgs);
		/* Jitter, from the seed. */
		switch (st_below(&rng, 20)) {
		case 0: case 1: case 2:
			sched_yield();
			break;
		case 3: {
			volatile uint64_t k, spin = st_below(&rng, 3000);

			for (k = 0; k < spin; k++)
				;
			break;
		}
		case 4:
			if (st_below(&rng, 8) == 0)
				usleep(1 + (useconds_t)st_below(&rng, 100));
			break;
		default:
			if (!n && sent >= cr + window)
				sched_yield();
			break;
		}
	}
	rep.sent = sent;
	rep.send_completions = done;
	if (st_xfer(cl->fd, &rep, sizeof(rep), true, 10000))
		st_die(5, "client %d: server went away at the end", cl->id);
	/* The server says when it has checked everything: keep the QP up
	 * until then. */
	st_xfer(cl->fd, &go, 1, false, 30000);
	ibv_destroy_qp(qp);
	ibv_dereg_mr(mr);
	ibv_destroy_cq(cq);
	free(mem);
	return 0;
}

static void *client_thread(void *arg)
{
	struct client *cl = arg;

	cl->rc = client_run(cl);
	return NULL;
}

/* Child process: one client, or nclients threads. */
static void __attribute__((noreturn)) client_proc(int first, int count,
						  int *fds, bool threads)
{
	struct client cl[MAXC];
	pthread_t th[MAXC];
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	int i, rc = 0;

	st_role = threads ? "clients" : "client";
	ctx = st_open(dev_name);
	pd = ibv_alloc_pd(ctx);
	if (!pd)
		st_die(4, "ibv_alloc_pd: %s", strerror(errno));
	for (i = 0; i < count; i++) {
		cl[i] = (struct client){ .id = first + i, .fd = fds[i],
					 .ctx = ctx, .pd = pd };
		if (!threads) {
			rc = client_run(&cl[i]);
			continue;
		}
		if (pthread_create(&th[i], NULL, client_thread, &cl[i]))
			st_die(4, "pthread_create failed");
	}
	if (threads)
		for (i = 0; i < count; i++) {
			pthread_join(th[i], NULL);
			rc |= cl[i].rc;
		}
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
	_exit(rc);
}

/* ------------------------------------------------------------ server -- */

struct peer {
	struct ibv_qp *qp;
	struct cinfo ci;
	uint32_t expect;	/* next seq */
	uint64_t consumed, credit_sent, writes_out, wr_no;
	bool reported;
};

static pid_t kids[MAXC];
static int nkids;
static unsigned int n_fail;

static void __attribute__((format(printf, 1, 2))) fail(const char *fmt, ...)
{
	char buf[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n_fail++ < 20)
		st_say("FAIL: %s", buf);
}

static void server_ev(const struct ibv_async_event *ev, void *arg)
{
	fail("async event %s in the server",
	     ibv_event_type_str(ev->event_type));
}

static void kill_kids(void)
{
	int i;

	for (i = 0; i < nkids; i++)
		kill(kids[i], SIGKILL);
}

static void __attribute__((noreturn)) server_abort(const char *what,
						   uint64_t total)
{
	st_say("cq_stress: FAIL (%s) after %" PRIu64 " completions; %u "
	       "failure(s)", what, total, n_fail);
	kill_kids();
	while (wait(NULL) > 0)
		;
	exit(1);
}

static void post_recv(struct peer *p, struct ibv_mr *mr, uint8_t *rbuf,
		      uint32_t c, uint32_t slot, uint32_t window)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)(rbuf + ((size_t)c * window + slot) * PAYMAX),
		.length = PAYMAX, .lkey = mr->lkey,
	};
	struct ibv_recv_wr wr = { .wr_id = (uint64_t)c << 32 | slot,
				  .sg_list = &sge, .num_sge = 1 }, *bad;
	int r = ibv_post_recv(p->qp, &wr, &bad);

	if (r) {
		fail("ibv_post_recv (client %u): %s", c, strerror(r));
		server_abort("post_recv", 0);
	}
}

static int server(int *fds)
{
	struct ibv_context *ctx = st_open(dev_name);
	struct ibv_pd *pd = ibv_alloc_pd(ctx);
	struct ibv_cq *rcq, *scq;
	struct peer *pe = calloc((size_t)nclients, sizeof(*pe));
	uint64_t total = 0, want = (uint64_t)nclients * msgs, extra = 0;
	uint64_t t0, deadline, last_progress, last_total = 0, *src;
	struct ibv_wc wc[32];
	uint8_t *rbuf, *mem;
	struct ibv_mr *mr;
	uint32_t window, cqe, iter = 0;
	size_t mlen;
	int c, i, n, reported = 0;
	char go = 'g';

	st_role = "server";
	rcq = ibv_create_cq(ctx, (int)cqe_req(), NULL, NULL, 0);
	scq = ibv_create_cq(ctx, nclients * SQD + 16, NULL, NULL, 0);
	if (!pd || !rcq || !scq || !pe)
		st_die(4, "PD/CQs: %s", strerror(errno));
	cqe = (uint32_t)rcq->cqe;
	/* All clients' unconsumed messages fit the receive CQ. */
	window = cqe / (uint32_t)nclients;
	if (window > 32)
		window = 32;
	if (window < 1)
		st_die(2, "%d clients do not fit a CQ of %u", nclients, cqe);
	mlen = (size_t)nclients * window * PAYMAX + (size_t)nclients * SQD * 8;
	mlen = (mlen + 4095) & ~(size_t)4095;
	mem = aligned_alloc(4096, mlen);
	if (!mem)
		st_die(4, "out of memory");
	memset(mem, 0, mlen);
	rbuf = mem;
	src = (uint64_t *)(mem + (size_t)nclients * window * PAYMAX);
	mr = ibv_reg_mr(pd, mem, mlen, IBV_ACCESS_LOCAL_WRITE);
	if (!mr)
		st_die(4, "ibv_reg_mr: %s", strerror(errno));

	for (c = 0; c < nclients; c++) {
		struct sinfo si = { .magic = MAGIC, .window = window,
				    .lid = st_lid(ctx) };

		pe[c].qp = st_rc_qp(pd, scq, rcq, SQD, window, 0);
		for (i = 0; i < (int)window; i++)
			post_recv(&pe[c], mr, rbuf, (uint32_t)c, (uint32_t)i,
				  window);
		si.qpn = pe[c].qp->qp_num;
		if (st_xfer(fds[c], &pe[c].ci, sizeof(pe[c].ci), false, 30000) ||
		    pe[c].ci.magic != MAGIC || pe[c].ci.id != (uint32_t)c ||
		    st_xfer(fds[c], &si, sizeof(si), true, 30000)) {
			fail("client %d did not connect", c);
			server_abort("setup", 0);
		}
		st_rc_connect(pe[c].qp, pe[c].ci.qpn, pe[c].ci.lid, 14, 7, 7, 1);
	}
	for (c = 0; c < nclients; c++)
		if (st_xfer(fds[c], &go, 1, false, 30000)) {
			fail("client %d did not get ready", c);
			server_abort("setup", 0);
		}
	for (c = 0; c < nclients; c++)
		st_xfer(fds[c], &go, 1, true, 1000);
	st_say("%d clients, receive CQ of %u entries, window %u per client, "
	       "%u messages each, seed %" PRIu64, nclients, cqe, window, msgs,
	       seed);

	t0 = st_now_ms();
	deadline = t0 + (uint64_t)timeout_s * 1000;
	last_progress = t0;
	while (total < want || reported < nclients) {
		uint64_t t;

		n = ibv_poll_cq(rcq, 32, wc);
		if (n < 0) {
			fail("ibv_poll_cq(receive CQ) returned %d", n);
			server_abort("poll", total);
		}
		for (i = 0; i < n; i++) {
			uint32_t wc_c = (uint32_t)(wc[i].wr_id >> 32);
			uint32_t slot = (uint32_t)wc[i].wr_id;
			uint32_t imm = ntohl(wc[i].imm_data);
			uint32_t ic = imm >> 24, seq = imm & 0xffffff;
			struct peer *p;
			uint8_t want_b[PAYMAX];
			uint8_t *buf;

			if (wc[i].status != IBV_WC_SUCCESS) {
				fail("receive completion %s (vendor_err %#x, "
				     "wr_id %#" PRIx64 ", qp %#x)",
				     ibv_wc_status_str(wc[i].status),
				     wc[i].vendor_err, wc[i].wr_id,
				     wc[i].qp_num);
				continue;
			}
			if (wc_c >= (uint32_t)nclients || slot >= window) {
				fail("completion with unknown wr_id %#" PRIx64,
				     wc[i].wr_id);
				continue;
			}
			p = &pe[wc_c];
			buf = rbuf + ((size_t)wc_c * window + slot) * PAYMAX;
			if (wc[i].opcode != IBV_WC_RECV ||
			    !(wc[i].wc_flags & IBV_WC_WITH_IMM))
				fail("client %u: opcode %d flags %#x, expected "
				     "RECV with immediate", wc_c, wc[i].opcode,
				     wc[i].wc_flags);
			if (wc[i].qp_num != p->qp->qp_num)
				fail("client %u: completion names QP %#x, its "
				     "receive was posted on %#x", wc_c,
				     wc[i].qp_num, p->qp->qp_num);
			if (ic != wc_c)
				fail("client %u's QP got imm %#x (client %u)",
				     wc_c, imm, ic);
			else if (seq != (p->expect & 0xffffff))
				fail("client %u: got seq %u, expected %u (%s)",
				     wc_c, seq, p->expect,
				     seq < (p->expect & 0xffffff) ?
				     "duplicate or reordered" : "lost");
			else if (wc[i].byte_len != len_of(wc_c, p->expect))
				fail("client %u seq %u: byte_len %u, sent %u",
				     wc_c, seq, wc[i].byte_len,
				     len_of(wc_c, p->expect));
			else {
				fill(want_b, wc[i].byte_len, wc_c, p->expect);
				if (memcmp(buf, want_b, wc[i].byte_len))
					fail("client %u seq %u: payload of %u "
					     "bytes differs", wc_c, seq,
					     wc[i].byte_len);
			}
			/* Resynchronise on what arrived, to report once. */
			if (ic == wc_c)
				p->expect = seq + 1;
			else
				p->expect++;
			post_recv(p, mr, rbuf, wc_c, slot, window);
			p->consumed++;
			total++;
		}
		if (n_fail)
			server_abort("bad completion", total);
		if (total > want)
			extra = total - want;

		/* Credit WRITEs: cumulative consumed count. */
		n = ibv_poll_cq(scq, 32, wc);
		for (i = 0; i < n; i++) {
			if (wc[i].status != IBV_WC_SUCCESS) {
				fail("credit WRITE completion %s",
				     ibv_wc_status_str(wc[i].status));
				server_abort("credit write", total);
			}
			pe[wc[i].wr_id].writes_out--;
		}
		for (c = 0; c < nclients; c++) {
			struct peer *p = &pe[c];
			uint64_t *s;
			struct ibv_sge sge;
			struct ibv_send_wr wr = { 0 }, *bad;
			int r;

			if (p->credit_sent == p->consumed ||
			    p->writes_out >= SQD ||
			    (p->consumed - p->credit_sent < (window + 3) / 4 &&
			     p->consumed != msgs))
				continue;
			s = &src[(size_t)c * SQD + p->wr_no++ % SQD];
			*s = p->consumed;
			sge = (struct ibv_sge){ .addr = (uintptr_t)s,
						.length = 8, .lkey = mr->lkey };
			wr.wr_id = (uint64_t)c;
			wr.sg_list = &sge;
			wr.num_sge = 1;
			wr.opcode = IBV_WR_RDMA_WRITE;
			wr.send_flags = IBV_SEND_SIGNALED;
			wr.wr.rdma.remote_addr = p->ci.credit_addr;
			wr.wr.rdma.rkey = p->ci.rkey;
			r = ibv_post_send(p->qp, &wr, &bad);
			if (r) {
				fail("credit WRITE to client %d: %s", c,
				     strerror(r));
				server_abort("credit write", total);
			}
			p->credit_sent = p->consumed;
			p->writes_out++;
		}
		if (++iter & 255)
			continue;
		if (st_drain_async(ctx, server_ev, NULL))
			server_abort("async event", total);

		/* Clients' final reports. */
		for (c = 0; c < nclients; c++) {
			struct pollfd pf = { .fd = fds[c], .events = POLLIN };
			struct creport rep;

			if (pe[c].reported || poll(&pf, 1, 0) != 1)
				continue;
			if (st_xfer(fds[c], &rep, sizeof(rep), false, 1000) ||
			    rep.magic != MAGIC) {
				fail("client %d went away (sent %u of %u; see "
				     "its output)", c, pe[c].expect, msgs);
				server_abort("client failed", total);
			}
			if (rep.sent != msgs || rep.send_completions != msgs)
				fail("client %d: sent %" PRIu64 ", %" PRIu64
				     " send completions, expected %u", c,
				     rep.sent, rep.send_completions, msgs);
			pe[c].reported = true;
			reported++;
			last_progress = st_now_ms();
		}
		t = st_now_ms();
		if (total != last_total)
			last_progress = t;
		last_total = total;
		if (t > deadline || t - last_progress > (uint64_t)stall_s * 1000) {
			for (c = 0; c < nclients; c++)
				if (pe[c].expect != msgs)
					fail("client %d: %u of %u messages "
					     "arrived", c, pe[c].expect, msgs);
			server_abort(t > deadline ? "timeout" : "stalled", total);
		}
	}
	/* Nothing more may arrive. */
	{
		uint64_t end = st_now_ms() + 50;

		while (st_now_ms() < end) {
			n = ibv_poll_cq(rcq, 32, wc);
			if (n > 0)
				extra += (uint64_t)n;
		}
	}
	st_drain_async(ctx, server_ev, NULL);
	if (extra)
		fail("%" PRIu64 " completions more than %" PRIu64, extra, want);
	for (c = 0; c < nclients; c++)
		st_xfer(fds[c], &go, 1, true, 1000);
	if (n_fail)
		server_abort("after the run", total);
	st_say("cq_stress: OK %d clients x %u = %" PRIu64 " completions on one "
	       "CQ of %u in %.1f s, in order, no errors, no async events",
	       nclients, msgs, total, cqe, (double)(st_now_ms() - t0) / 1000);
	for (c = 0; c < nclients; c++)
		ibv_destroy_qp(pe[c].qp);
	ibv_dereg_mr(mr);
	ibv_destroy_cq(rcq);
	ibv_destroy_cq(scq);
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
	free(mem);
	free(pe);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: uib_cq_stress [-d DEV] -n CLIENTS [--threads] "
		"-m MSGS [-s SEED] [--cqe N] [--timeout SEC] [--stall SEC]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ib-dev", required_argument, NULL, 'd' },
		{ "clients", required_argument, NULL, 'n' },
		{ "threads", no_argument, NULL, 'T' },
		{ "msgs", required_argument, NULL, 'm' },
		{ "seed", required_argument, NULL, 's' },
		{ "cqe", required_argument, NULL, 'C' },
		{ "timeout", required_argument, NULL, 't' },
		{ "stall", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	int fds[MAXC][2], sfd[MAXC], cfd[MAXC];
	bool threads = false;
	int c, i, rc, status;
	uint64_t end;
	pid_t pid;

	while ((c = getopt_long(argc, argv, "d:n:m:s:", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dev_name = optarg; break;
		case 'n': nclients = atoi(optarg); break;
		case 'T': threads = true; break;
		case 'm': msgs = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'C': cqe_arg = atoi(optarg); break;
		case 't': timeout_s = atoi(optarg); break;
		case 'S': stall_s = atoi(optarg); break;
		default: usage();
		}
	}
	if (optind != argc || nclients < 1 || nclients > MAXC || !msgs ||
	    msgs > 0xffffff || cqe_arg < 1)
		usage();
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IONBF, 0);
	for (i = 0; i < nclients; i++) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds[i]))
			st_die(4, "socketpair: %s", strerror(errno));
		sfd[i] = fds[i][0];
		cfd[i] = fds[i][1];
	}
	/* Fork before any verbs call. */
	for (i = 0; i < (threads ? 1 : nclients); i++) {
		pid = fork();
		if (pid < 0)
			st_die(4, "fork: %s", strerror(errno));
		if (!pid) {
			for (c = 0; c < nclients; c++)
				close(sfd[c]);
			if (threads)
				client_proc(0, nclients, cfd, true);
			client_proc(i, 1, &cfd[i], false);
		}
		kids[nkids++] = pid;
	}
	for (i = 0; i < nclients; i++)
		close(cfd[i]);
	rc = server(sfd);
	/* Clients exit once told; a client that does not is killed. */
	end = st_now_ms() + 10000;
	for (i = 0; i < nkids; i++) {
		while ((pid = waitpid(kids[i], &status, WNOHANG)) == 0 &&
		       st_now_ms() < end)
			usleep(1000);
		if (pid == 0) {
			kill(kids[i], SIGKILL);
			waitpid(kids[i], &status, 0);
			st_say("cq_stress: FAIL client process %d did not exit",
			       (int)kids[i]);
			rc = 1;
		} else if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			st_say("cq_stress: FAIL client process %d: %s %d",
			       (int)kids[i], WIFEXITED(status) ? "exit" :
			       "signal", WIFEXITED(status) ?
			       WEXITSTATUS(status) : WTERMSIG(status));
			rc = 1;
		}
	}
	return rc;
}
