// SPDX-License-Identifier: MIT
/*
 * uib_rc_stress: an RC data check meant to have its peer killed.
 *
 *   uib_rc_stress [-d DEV] [-i PORT] [-p TCP_PORT] [-n MSGS] [-s SEED]
 *                 [--corrupt-at K] [--quiet-ms MS]           (server)
 *   uib_rc_stress ... HOST                                  (client)
 *
 * The two sides exchange QP numbers over TCP (like ibv_rc_pingpong), then
 * close the socket: from there on a peer's death is only visible through
 * verbs.  The client streams messages k = 0, 1, ...: an RDMA WRITE of a
 * pattern (of k, random length up to 64 KiB) into slot k % R of the
 * server's buffer, then a SEND (every third a SEND_WITH_IMM carrying k) of
 * a header {magic, k, lengths} and a pattern of its own.  The server checks
 * every SEND (status, opcode, length, immediate, sequence number k in
 * order, pattern) and the slot the WRITE before it filled, then acks k + 1
 * with a SEND back; the client keeps at most R messages unacked, so a slot
 * is never rewritten before it was checked.  A side that hears nothing for
 * --quiet-ms (200) RDMA-WRITEs a heartbeat into its peer, so that both
 * sides notice a dead peer through an error completion.
 *
 * With -n, the client ends after MSGS messages with a last "done" message
 * and both exit 0.  Without -n it runs until its peer dies or it gets
 * SIGTERM/SIGINT.  --corrupt-at K (client) spoils one byte of message K's
 * WRITE, which the server must report.
 *
 * Exit status: 0 = no corruption seen, and the run ended normally, or on
 * SIGTERM, or with the error completions of a vanished peer (RETRY_EXC_ERR,
 * RNR_RETRY_EXC_ERR, WR_FLUSH_ERR); 1 = corrupted data or a protocol
 * violation; 2 = usage; 3 = an unexpected completion status; 4 = verbs
 * setup failed; 5 = the peer went away during the TCP exchange.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>

#define R		16		/* receives / slots / credits */
#define WMAX		65536		/* largest WRITE */
#define SMAX		8192		/* largest SEND */
#define HDR		32
#define MAGIC		0x75696273u	/* "uibs" */
#define ACK_MAGIC	0x75696261u	/* "uiba" */
#define F_DONE		1u
#define HB_ID		(~0ull)
#define RECV_BIT	(1ull << 62)

struct hdr {
	uint32_t magic, flags;
	uint64_t seq;
	uint32_t wlen, slen;
	uint64_t pad;
};

struct ack {
	uint32_t magic, pad;
	uint64_t acked;		/* messages 0 .. acked-1 verified */
};

struct info {			/* sent over TCP, host order: same host */
	uint32_t magic;
	uint16_t lid;
	uint16_t pad;
	uint32_t qpn, psn, rkey;
	uint64_t slots;		/* server: slot 0 */
	uint64_t hb;		/* heartbeat target */
};

static const char *role = "?";
static volatile sig_atomic_t stop_sig;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void __attribute__((format(printf, 1, 2))) say(const char *fmt, ...)
{
	va_list ap;

	printf("rc_stress %s: ", role);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static void __attribute__((format(printf, 2, 3), noreturn))
die(int code, const char *fmt, ...)
{
	va_list ap;

	printf("rc_stress %s: ", role);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(code);
}

static uint64_t mix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t seed;

static uint64_t key_of(uint64_t k, unsigned int what)
{
	return mix64(seed ^ (k << 2) ^ what);
}

static void pat_fill(uint8_t *p, uint32_t len, uint64_t key)
{
	uint32_t i;

	for (i = 0; i < len; i += 8) {
		uint64_t v = mix64(key + i);

		memcpy(p + i, &v, len - i < 8 ? len - i : 8);
	}
}

/* Offset of the first wrong byte, or -1. */
static int64_t pat_check(const uint8_t *p, uint32_t len, uint64_t key,
			 uint8_t *want)
{
	uint32_t i, j, n;

	for (i = 0; i < len; i += 8) {
		uint64_t v = mix64(key + i);
		uint8_t b[8];

		n = len - i < 8 ? len - i : 8;
		memcpy(b, &v, 8);
		if (memcmp(p + i, b, n))
			for (j = 0; j < n; j++)
				if (p[i + j] != b[j]) {
					*want = b[j];
					return i + j;
				}
	}
	return -1;
}

/* Message k's lengths: the WRITE 1..WMAX, the SEND HDR..SMAX. */
static void lens_of(uint64_t k, uint32_t *wlen, uint32_t *slen)
{
	uint64_t r = key_of(k, 3);

	*wlen = 1 + (uint32_t)(r % WMAX);
	*slen = HDR + (uint32_t)((r >> 32) % (SMAX - HDR + 1));
}

/* ---------------------------------------------------------------- TCP -- */

static int xfer_all(int fd, void *buf, size_t len, bool out, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;
	uint8_t *p = buf;

	while (len) {
		struct pollfd pf = { .fd = fd, .events = out ? POLLOUT : POLLIN };
		uint64_t t = now_ms();
		ssize_t n;
		int r;

		if (t >= end || stop_sig)
			return -1;
		r = poll(&pf, 1, (int)(end - t));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		n = out ? write(fd, p, len) : read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int tcp_server(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_ANY) };
	struct pollfd pf;
	int one = 1, ls, fd;

	ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ls < 0)
		die(4, "socket: %s", strerror(errno));
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(ls, (struct sockaddr *)&a, sizeof(a)) || listen(ls, 1))
		die(4, "listen on port %d: %s", port, strerror(errno));
	pf.fd = ls;
	pf.events = POLLIN;
	if (poll(&pf, 1, 30000) != 1)
		die(5, "no client within 30 s");
	fd = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		die(5, "accept: %s", strerror(errno));
	close(ls);
	return fd;
}

static int tcp_client(const char *host, int port)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM }, *res, *ai;
	uint64_t end = now_ms() + 10000;
	char ps[16];
	int fd = -1;

	snprintf(ps, sizeof(ps), "%d", port);
	if (getaddrinfo(host, ps, &hints, &res))
		die(2, "cannot resolve %s", host);
	/* The server may not listen yet: retry for a while. */
	while (fd < 0 && now_ms() < end && !stop_sig) {
		for (ai = res; ai && fd < 0; ai = ai->ai_next) {
			fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
				    0);
			if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen)) {
				close(fd);
				fd = -1;
			}
		}
		if (fd < 0)
			usleep(50000);
	}
	freeaddrinfo(res);
	if (fd < 0)
		die(5, "cannot connect to %s:%d", host, port);
	return fd;
}

/* -------------------------------------------------------------- verbs -- */

struct side {
	bool server;
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	struct ibv_mr *mr;
	uint8_t *mem;
	size_t mem_len;
	/* server: slots, receive buffers, ack buffer; client: write data,
	 * send data, ack receive buffers.  Both: heartbeat target and
	 * source. */
	uint8_t *a, *b, *c, *hb, *hb_src;
	struct info peer;
	uint64_t last_activity;
	bool hb_out;
	/* error completions seen */
	unsigned int n_err;
	enum ibv_wc_status first_err;
	uint64_t first_err_wr;
	bool unexpected;
};

static void setup(struct side *s, const char *dev_name, int ib_port)
{
	struct ibv_device **list = ibv_get_device_list(NULL);
	struct ibv_qp_init_attr ia = { 0 };
	struct ibv_qp_attr qa = { 0 };
	int i;

	if (!list)
		die(4, "ibv_get_device_list: %s", strerror(errno));
	for (i = 0; list[i]; i++)
		if (!dev_name || !strcmp(ibv_get_device_name(list[i]), dev_name))
			break;
	if (!list[i])
		die(4, "no device %s", dev_name ? dev_name : "");
	s->ctx = ibv_open_device(list[i]);
	ibv_free_device_list(list);
	if (!s->ctx)
		die(4, "ibv_open_device: %s", strerror(errno));
	s->pd = ibv_alloc_pd(s->ctx);
	s->cq = ibv_create_cq(s->ctx, 4 * R + 16, NULL, NULL, 0);
	if (!s->pd || !s->cq)
		die(4, "PD/CQ: %s", strerror(errno));

	/* Server: R slots of WMAX, R receive buffers of SMAX, an ack buffer.
	 * Client: R write buffers, R send buffers, R ack receive buffers. */
	s->mem_len = (size_t)R * WMAX + (size_t)R * SMAX + (size_t)R * 64 +
		     2 * 64;
	s->mem = aligned_alloc(4096, (s->mem_len + 4095) & ~(size_t)4095);
	if (!s->mem)
		die(4, "out of memory");
	memset(s->mem, 0, s->mem_len);
	s->a = s->mem;
	s->b = s->a + (size_t)R * WMAX;
	s->c = s->b + (size_t)R * SMAX;
	s->hb = s->c + (size_t)R * 64;
	s->hb_src = s->hb + 64;
	s->mr = ibv_reg_mr(s->pd, s->mem, s->mem_len,
			   IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE);
	if (!s->mr)
		die(4, "ibv_reg_mr: %s", strerror(errno));

	ia.send_cq = s->cq;
	ia.recv_cq = s->cq;
	ia.cap.max_send_wr = 2 * R + 4;
	ia.cap.max_recv_wr = R;
	ia.cap.max_send_sge = 1;
	ia.cap.max_recv_sge = 1;
	ia.qp_type = IBV_QPT_RC;
	s->qp = ibv_create_qp(s->pd, &ia);
	if (!s->qp)
		die(4, "ibv_create_qp: %s", strerror(errno));
	qa.qp_state = IBV_QPS_INIT;
	qa.port_num = (uint8_t)ib_port;
	qa.qp_access_flags = IBV_ACCESS_REMOTE_WRITE;
	if (ibv_modify_qp(s->qp, &qa, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
					IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
		die(4, "QP to INIT: %s", strerror(errno));
}

static void post_recv(struct side *s, unsigned int i)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)(s->server ? s->b + (size_t)i * SMAX :
						s->c + (size_t)i * 64),
		.length = s->server ? SMAX : 64,
		.lkey = s->mr->lkey,
	};
	struct ibv_recv_wr wr = { .wr_id = RECV_BIT | i, .sg_list = &sge,
				  .num_sge = 1 }, *bad;
	int r = ibv_post_recv(s->qp, &wr, &bad);

	if (r)
		die(4, "ibv_post_recv: %s", strerror(r));
}

static void connect_qp(struct side *s, int ib_port, const char *host,
		       int tcp_port)
{
	struct ibv_port_attr pa;
	struct ibv_qp_attr qa = { 0 };
	struct info me = { .magic = MAGIC };
	unsigned int i;
	int fd;
	char ok = 'k';

	if (ibv_query_port(s->ctx, (uint8_t)ib_port, &pa))
		die(4, "ibv_query_port: %s", strerror(errno));
	me.lid = pa.lid;
	me.qpn = s->qp->qp_num;
	me.psn = (uint32_t)(mix64(seed ^ me.qpn) & 0xffffff);
	me.rkey = s->mr->rkey;
	me.slots = (uintptr_t)s->a;
	me.hb = (uintptr_t)s->hb;
	for (i = 0; i < R; i++)
		post_recv(s, i);

	fd = s->server ? tcp_server(tcp_port) : tcp_client(host, tcp_port);
	if (xfer_all(fd, &me, sizeof(me), true, 10000) ||
	    xfer_all(fd, &s->peer, sizeof(s->peer), false, 10000) ||
	    s->peer.magic != MAGIC)
		die(5, "peer went away during the exchange");

	qa.qp_state = IBV_QPS_RTR;
	qa.path_mtu = IBV_MTU_4096;
	qa.dest_qp_num = s->peer.qpn;
	qa.rq_psn = s->peer.psn;
	qa.max_dest_rd_atomic = 1;
	qa.min_rnr_timer = 12;
	qa.ah_attr.dlid = s->peer.lid;
	qa.ah_attr.port_num = (uint8_t)ib_port;
	if (ibv_modify_qp(s->qp, &qa, IBV_QP_STATE | IBV_QP_AV |
					IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
					IBV_QP_RQ_PSN |
					IBV_QP_MAX_DEST_RD_ATOMIC |
					IBV_QP_MIN_RNR_TIMER))
		die(4, "QP to RTR: %s", strerror(errno));
	memset(&qa, 0, sizeof(qa));
	qa.qp_state = IBV_QPS_RTS;
	qa.timeout = 14;
	qa.retry_cnt = 7;
	qa.rnr_retry = 7;
	qa.sq_psn = me.psn;
	qa.max_rd_atomic = 1;
	if (ibv_modify_qp(s->qp, &qa, IBV_QP_STATE | IBV_QP_TIMEOUT |
					IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
					IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC))
		die(4, "QP to RTS: %s", strerror(errno));

	/* Both ready before either sends; then the socket goes. */
	if (xfer_all(fd, &ok, 1, true, 10000) ||
	    xfer_all(fd, &ok, 1, false, 10000))
		die(5, "peer went away during the exchange");
	close(fd);
}

static void post_send(struct side *s, enum ibv_wr_opcode op, void *buf,
		      uint32_t len, uint64_t raddr, uint64_t wr_id,
		      bool signaled, uint32_t imm)
{
	struct ibv_sge sge = { .addr = (uintptr_t)buf, .length = len,
			       .lkey = s->mr->lkey };
	struct ibv_send_wr wr = {
		.wr_id = wr_id,
		.sg_list = &sge,
		.num_sge = 1,
		.opcode = op,
		.send_flags = signaled ? IBV_SEND_SIGNALED : 0,
		.imm_data = htonl(imm),
	}, *bad;
	int r;

	if (op == IBV_WR_RDMA_WRITE) {
		wr.wr.rdma.remote_addr = raddr;
		wr.wr.rdma.rkey = s->peer.rkey;
	}
	r = ibv_post_send(s->qp, &wr, &bad);
	if (r)
		die(4, "ibv_post_send: %s", strerror(r));
	s->last_activity = now_ms();
}

static void heartbeat(struct side *s, int quiet_ms)
{
	if (s->hb_out || now_ms() - s->last_activity < (uint64_t)quiet_ms)
		return;
	memcpy(s->hb_src, &s->last_activity, 8);
	post_send(s, IBV_WR_RDMA_WRITE, s->hb_src, 8, s->peer.hb, HB_ID, true,
		  0);
	s->hb_out = true;
}

static const char *status_name(enum ibv_wc_status st)
{
	static const char *const names[] = {
		[IBV_WC_SUCCESS] = "IBV_WC_SUCCESS",
		[IBV_WC_LOC_LEN_ERR] = "IBV_WC_LOC_LEN_ERR",
		[IBV_WC_LOC_QP_OP_ERR] = "IBV_WC_LOC_QP_OP_ERR",
		[IBV_WC_LOC_EEC_OP_ERR] = "IBV_WC_LOC_EEC_OP_ERR",
		[IBV_WC_LOC_PROT_ERR] = "IBV_WC_LOC_PROT_ERR",
		[IBV_WC_WR_FLUSH_ERR] = "IBV_WC_WR_FLUSH_ERR",
		[IBV_WC_MW_BIND_ERR] = "IBV_WC_MW_BIND_ERR",
		[IBV_WC_BAD_RESP_ERR] = "IBV_WC_BAD_RESP_ERR",
		[IBV_WC_LOC_ACCESS_ERR] = "IBV_WC_LOC_ACCESS_ERR",
		[IBV_WC_REM_INV_REQ_ERR] = "IBV_WC_REM_INV_REQ_ERR",
		[IBV_WC_REM_ACCESS_ERR] = "IBV_WC_REM_ACCESS_ERR",
		[IBV_WC_REM_OP_ERR] = "IBV_WC_REM_OP_ERR",
		[IBV_WC_RETRY_EXC_ERR] = "IBV_WC_RETRY_EXC_ERR",
		[IBV_WC_RNR_RETRY_EXC_ERR] = "IBV_WC_RNR_RETRY_EXC_ERR",
		[IBV_WC_LOC_RDD_VIOL_ERR] = "IBV_WC_LOC_RDD_VIOL_ERR",
		[IBV_WC_REM_INV_RD_REQ_ERR] = "IBV_WC_REM_INV_RD_REQ_ERR",
		[IBV_WC_REM_ABORT_ERR] = "IBV_WC_REM_ABORT_ERR",
		[IBV_WC_INV_EECN_ERR] = "IBV_WC_INV_EECN_ERR",
		[IBV_WC_INV_EEC_STATE_ERR] = "IBV_WC_INV_EEC_STATE_ERR",
		[IBV_WC_FATAL_ERR] = "IBV_WC_FATAL_ERR",
		[IBV_WC_RESP_TIMEOUT_ERR] = "IBV_WC_RESP_TIMEOUT_ERR",
		[IBV_WC_GENERAL_ERR] = "IBV_WC_GENERAL_ERR",
	};

	if ((size_t)st < sizeof(names) / sizeof(names[0]) && names[st])
		return names[st];
	return ibv_wc_status_str(st);
}

static bool peer_gone_status(enum ibv_wc_status st)
{
	return st == IBV_WC_RETRY_EXC_ERR || st == IBV_WC_RNR_RETRY_EXC_ERR ||
	       st == IBV_WC_WR_FLUSH_ERR;
}

/* Records an error completion; true if the QP is done for. */
static void note_error(struct side *s, const struct ibv_wc *wc)
{
	if (!s->n_err++) {
		s->first_err = wc->status;
		s->first_err_wr = wc->wr_id;
	}
	if (!peer_gone_status(wc->status)) {
		if (!s->unexpected)
			say("unexpected completion status %s (wr_id %#" PRIx64
			    ", opcode %d)", status_name(wc->status),
			    wc->wr_id, wc->opcode);
		s->unexpected = true;
	}
}

/* After the first error: collects the rest (flushes) for a while, then
 * reports and exits. */
static void __attribute__((noreturn))
finish_error(struct side *s, const char *progress)
{
	uint64_t end = now_ms() + 300;
	unsigned int n_flush = 0;
	struct ibv_wc wc[16];
	int i, n;

	while (now_ms() < end) {
		n = ibv_poll_cq(s->cq, 16, wc);
		for (i = 0; i < n; i++) {
			if (wc[i].status == IBV_WC_SUCCESS)
				continue;
			note_error(s, &wc[i]);
			n_flush += wc[i].status == IBV_WC_WR_FLUSH_ERR;
		}
		if (!n)
			usleep(1000);
	}
	say("peer gone: first error completion %s (wr %s), %u error "
	    "completion(s), %u flushed; %s; no corruption seen",
	    status_name(s->first_err),
	    s->first_err_wr == HB_ID ? "heartbeat" :
	    s->first_err_wr & RECV_BIT ? "receive" : "message",
	    s->n_err, n_flush, progress);
	exit(s->unexpected ? 3 : 0);
}

/* ------------------------------------------------------------- server -- */

static void __attribute__((format(printf, 2, 3), noreturn))
corrupt(uint64_t k, const char *fmt, ...)
{
	va_list ap;

	printf("rc_stress %s: CORRUPT message %" PRIu64 ": ", role, k);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(1);
}

/* Checks message `expect` in receive buffer i; true if it was "done". */
static bool verify(struct side *s, const struct ibv_wc *wc, uint64_t expect,
		   uint64_t *bytes)
{
	const uint8_t *buf = s->b + (size_t)(wc->wr_id & ~RECV_BIT) * SMAX;
	uint32_t wlen, slen;
	struct hdr h;
	int64_t off;
	uint8_t want;

	if (wc->opcode != IBV_WC_RECV)
		corrupt(expect, "receive completion opcode %d", wc->opcode);
	if (wc->byte_len < HDR)
		corrupt(expect, "%u bytes, shorter than a header", wc->byte_len);
	memcpy(&h, buf, sizeof(h));
	if (h.magic != MAGIC)
		corrupt(expect, "bad magic %#x", h.magic);
	if (h.seq != expect)
		corrupt(expect, "got sequence number %" PRIu64 " (lost, "
			"repeated or reordered message)", h.seq);
	if (h.slen != wc->byte_len)
		corrupt(expect, "byte_len %u, sender sent %u", wc->byte_len,
			h.slen);
	if (expect % 3 == 0) {
		if (!(wc->wc_flags & IBV_WC_WITH_IMM) ||
		    ntohl(wc->imm_data) != (uint32_t)expect)
			corrupt(expect, "immediate missing or wrong (flags %#x "
				"imm %u)", wc->wc_flags, ntohl(wc->imm_data));
	} else if (wc->wc_flags & IBV_WC_WITH_IMM) {
		corrupt(expect, "unexpected immediate");
	}
	if (h.flags & F_DONE) {
		*bytes += h.slen;
		return true;
	}
	lens_of(expect, &wlen, &slen);
	if (h.wlen != wlen || h.slen != slen)
		corrupt(expect, "lengths %u/%u, expected %u/%u", h.wlen, h.slen,
			wlen, slen);
	off = pat_check(buf + HDR, slen - HDR, key_of(expect, 1), &want);
	if (off >= 0)
		corrupt(expect, "SEND payload byte %" PRId64 " is %#x, "
			"expected %#x", off + HDR, buf[HDR + off], want);
	off = pat_check(s->a + (size_t)(expect % R) * WMAX, wlen,
			key_of(expect, 0), &want);
	if (off >= 0)
		corrupt(expect, "RDMA WRITE byte %" PRId64 " of %u in slot %u "
			"is %#x, expected %#x", off, wlen,
			(unsigned int)(expect % R),
			s->a[(expect % R) * WMAX + (size_t)off], want);
	*bytes += wlen + slen;
	return false;
}

static int run_server(struct side *s, int quiet_ms)
{
	uint64_t expect = 0, bytes = 0, acked_sent = 0, ack_no = 0;
	unsigned int acks_out = 0;
	bool done = false;
	struct ibv_wc wc[16];
	char progress[128];
	int i, n;

	s->last_activity = now_ms();
	while (!stop_sig) {
		n = ibv_poll_cq(s->cq, 16, wc);
		for (i = 0; i < n; i++) {
			if (wc[i].status != IBV_WC_SUCCESS) {
				note_error(s, &wc[i]);
				continue;
			}
			s->last_activity = now_ms();
			if (wc[i].wr_id == HB_ID) {
				s->hb_out = false;
			} else if (wc[i].wr_id & RECV_BIT) {
				done = verify(s, &wc[i], expect, &bytes);
				expect++;
				if (!done)
					post_recv(s, (unsigned int)(wc[i].wr_id &
								    ~RECV_BIT));
			} else {
				acks_out--;
			}
		}
		if (s->n_err) {
			snprintf(progress, sizeof(progress), "%" PRIu64
				 " messages (%" PRIu64 " bytes) verified",
				 expect, bytes);
			finish_error(s, progress);
		}
		/* Ack what was verified, cumulatively; at most R acks in
		 * flight, each from its own buffer (ack_no % R: the one that
		 * used it last has completed, as acks complete in order). */
		if (acked_sent < expect && acks_out < R) {
			struct ack *a = (struct ack *)(s->c +
						       (ack_no++ % R) * 64);

			a->magic = ACK_MAGIC;
			a->acked = expect;
			post_send(s, IBV_WR_SEND, a, sizeof(*a), 0,
				  expect, true, 0);
			acked_sent = expect;
			acks_out++;
		}
		if (done && acked_sent == expect && !acks_out) {
			say("done: %" PRIu64 " messages (%" PRIu64
			    " bytes) verified", expect - 1, bytes);
			return 0;
		}
		if (!done)
			heartbeat(s, quiet_ms);
		if (!n)
			usleep(50);
	}
	say("stopped by signal %d: %" PRIu64 " messages (%" PRIu64
	    " bytes) verified, no corruption seen", (int)stop_sig, expect,
	    bytes);
	return 0;
}

/* ------------------------------------------------------------- client -- */

static int run_client(struct side *s, uint64_t msgs, uint64_t corrupt_at,
		      int quiet_ms)
{
	uint64_t sent = 0, acked = 0, completed = 0, bytes = 0;
	bool done_sent = false;
	struct ibv_wc wc[16];
	char progress[128];
	int i, n;

	s->last_activity = now_ms();
	while (!stop_sig) {
		n = ibv_poll_cq(s->cq, 16, wc);
		for (i = 0; i < n; i++) {
			if (wc[i].status != IBV_WC_SUCCESS) {
				note_error(s, &wc[i]);
				continue;
			}
			s->last_activity = now_ms();
			if (wc[i].wr_id == HB_ID) {
				s->hb_out = false;
			} else if (wc[i].wr_id & RECV_BIT) {
				unsigned int j = (unsigned int)(wc[i].wr_id &
								~RECV_BIT);
				struct ack a;

				memcpy(&a, s->c + (size_t)j * 64, sizeof(a));
				if (wc[i].byte_len != sizeof(a) ||
				    a.magic != ACK_MAGIC || a.acked < acked ||
				    a.acked > sent)
					corrupt(a.acked, "bad ack (%u bytes, "
						"magic %#x, acked %" PRIu64
						", had %" PRIu64 " of %" PRIu64
						")", wc[i].byte_len, a.magic,
						a.acked, acked, sent);
				acked = a.acked;
				post_recv(s, j);
			} else {
				completed++;
			}
		}
		if (s->n_err) {
			snprintf(progress, sizeof(progress), "%" PRIu64
				 " messages (%" PRIu64 " bytes) sent, %" PRIu64
				 " acked", sent, bytes, acked);
			finish_error(s, progress);
		}
		if (done_sent && acked == sent && completed == sent) {
			say("done: %" PRIu64 " messages (%" PRIu64
			    " bytes) sent and acked", sent - 1, bytes);
			return 0;
		}
		/* At most R unacked, so no slot is rewritten unchecked. */
		while (!done_sent && sent < acked + R) {
			uint64_t k = sent;
			uint8_t *w = s->a + (k % R) * WMAX;
			uint8_t *sb = s->b + (k % R) * SMAX;
			struct hdr h = { .magic = MAGIC, .seq = k };

			if (msgs && k == msgs) {
				h.flags = F_DONE;
				h.slen = HDR;
				memcpy(sb, &h, sizeof(h));
				post_send(s, k % 3 ? IBV_WR_SEND :
					  IBV_WR_SEND_WITH_IMM, sb, HDR, 0, k,
					  true, (uint32_t)k);
				done_sent = true;
				bytes += HDR;
				sent++;
				break;
			}
			lens_of(k, &h.wlen, &h.slen);
			pat_fill(w, h.wlen, key_of(k, 0));
			if (corrupt_at != UINT64_MAX && k == corrupt_at) {
				w[h.wlen / 2] ^= 0x20;
				say("spoiling byte %u of message %" PRIu64
				    "'s WRITE", h.wlen / 2, k);
			}
			memcpy(sb, &h, sizeof(h));
			pat_fill(sb + HDR, h.slen - HDR, key_of(k, 1));
			post_send(s, IBV_WR_RDMA_WRITE, w, h.wlen,
				  s->peer.slots + (k % R) * WMAX, k, false, 0);
			post_send(s, k % 3 ? IBV_WR_SEND :
				  IBV_WR_SEND_WITH_IMM, sb, h.slen, 0, k, true,
				  (uint32_t)k);
			bytes += h.wlen + h.slen;
			sent++;
		}
		if (!done_sent)
			heartbeat(s, quiet_ms);
		if (!n)
			usleep(50);
	}
	say("stopped by signal %d: %" PRIu64 " messages (%" PRIu64
	    " bytes) sent, %" PRIu64 " acked, no corruption seen",
	    (int)stop_sig, sent, bytes, acked);
	return 0;
}

static void on_signal(int sig)
{
	stop_sig = sig;
}

static void usage(void)
{
	fprintf(stderr, "usage: uib_rc_stress [-d DEV] [-i PORT] [-p TCP_PORT] "
		"[-n MSGS] [-s SEED] [--corrupt-at K] [--quiet-ms MS] "
		"[HOST]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ib-dev", required_argument, NULL, 'd' },
		{ "ib-port", required_argument, NULL, 'i' },
		{ "port", required_argument, NULL, 'p' },
		{ "iters", required_argument, NULL, 'n' },
		{ "seed", required_argument, NULL, 's' },
		{ "corrupt-at", required_argument, NULL, 'C' },
		{ "quiet-ms", required_argument, NULL, 'Q' },
		{ NULL, 0, NULL, 0 },
	};
	struct sigaction sa = { .sa_handler = on_signal };
	const char *dev = NULL, *host = NULL;
	uint64_t msgs = 0, corrupt_at = UINT64_MAX;
	int c, ib_port = 1, tcp_port = 18515, quiet_ms = 200, rc;
	struct side s = { 0 };

	while ((c = getopt_long(argc, argv, "d:i:p:n:s:", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dev = optarg; break;
		case 'i': ib_port = atoi(optarg); break;
		case 'p': tcp_port = atoi(optarg); break;
		case 'n': msgs = strtoull(optarg, NULL, 0); break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'C': corrupt_at = strtoull(optarg, NULL, 0); break;
		case 'Q': quiet_ms = atoi(optarg); break;
		default: usage();
		}
	}
	if (optind + 1 < argc || ib_port < 1 || quiet_ms < 1)
		usage();
	if (optind < argc)
		host = argv[optind];
	s.server = !host;
	role = s.server ? "server" : "client";
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	setup(&s, dev, ib_port);
	connect_qp(&s, ib_port, host, tcp_port);
	say("connected: local QPN %#x, remote QPN %#x%s", s.qp->qp_num,
	    s.peer.qpn, msgs ? "" : ", running until stopped");
	rc = s.server ? run_server(&s, quiet_ms) :
			run_client(&s, msgs, corrupt_at, quiet_ms);
	ibv_destroy_qp(s.qp);
	ibv_dereg_mr(s.mr);
	ibv_destroy_cq(s.cq);
	ibv_dealloc_pd(s.pd);
	ibv_close_device(s.ctx);
	free(s.mem);
	return rc;
}
