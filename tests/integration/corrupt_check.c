// SPDX-License-Identifier: MIT
/*
 * uib_corrupt_check: a process that scribbles over its own queue memory
 * must never crash, hang or corrupt its peers (issue 7, finding 4).
 *
 *   uib_corrupt_check [-d DEV] [-r ROUNDS] [-s SEED] [--ms MS] [--peers P]
 *                     [--peer-timeout SEC] [--no-corrupt]
 *
 * Every round forks fresh processes (before any verbs call): a corrupter
 * and P peers, joined by socketpairs.  The corrupter has one CQ, three RC
 * QPs per peer and one UD QP, all completing to that CQ, receives posted
 * and reposted, and an MR (receive slots and a region peers RDMA WRITE
 * into).  It finds its OWN rings by scanning /proc/self/maps for
 * "/memfd:uib-queue" mappings whose header (struct uib_qhdr, queue.h) has
 * owner_pid == getpid(), records their geometry, and then, seeded, for MS
 * milliseconds writes random and "interesting" values into them: RQ/CQ
 * header fields (log_size, stride, max_sge, prod, cons, kind), RQ WQEs
 * (num_sge, SGE addr/len/lkey pointing at its canaries, past its MR, near
 * 2^64), CQE bodies (nfrag, frag addr/len/lkey, flags, byte_len, and forged
 * seq so that a fake inline CQE is polled) and random bytes anywhere in the
 * ring.  Meanwhile each peer sends to it: RC SENDs of 1..44 bytes (inline
 * in the CQE) and larger, SEND_WITH_IMM, RDMA WRITEs, UD SENDs.
 *
 * A peer passes when it exits 0 within --peer-timeout: it did not crash
 * (any signal, or a sanitizer report, fails), every completion it waited
 * for arrived (after MS it moves its QPs to ERR and every outstanding
 * work request must complete, flushed or not, within a bounded time), its
 * canary bytes around its registered buffer (and PROT_NONE guard pages
 * beyond) and a canary array on its stack are intact.  Error completions
 * and async events are allowed and counted.  The corrupter may crash or
 * hang (it is killed after the round) and its exit status is not counted,
 * except one: if it survives, it checks the canaries around its own MR and
 * exits 10 when memory outside its buffers was written, which fails the
 * round.
 *
 * Last line: "N passed, N failed" (rounds); exit 0 if none failed.
 */
#include "stress_common.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "queue.h"

#define NRC		3	/* RC QPs per peer */
#define MAXP		4
#define RQD		16	/* RC receive depth */
#define UDRQD		32
#define SLOT		8192
#define WREG		65536	/* RDMA WRITE target */
#define CAN		4352	/* canary bytes each side */
#define MAGIC		0x636f7272u
#define EXIT_CANARY	10

static const char *dev_name;
static uint64_t round_seed;
static int npeers = 2, round_ms = 600, peer_timeout = 20;
static bool do_corrupt = true;

/* Where the corrupter's canaries are: shared with the launcher, which
 * checks them itself (process_vm_readv) when the corrupter hangs. */
struct where {
	uint64_t map, map_len, buf, len, stack, stack_len;
};
static struct where *where;

struct cinfo {			/* corrupter -> peer */
	uint32_t magic;
	uint16_t lid, pad;
	uint32_t rc_qpn[NRC], ud_qpn, qkey, rkey;
	uint64_t waddr;
};

struct pinfo {			/* peer -> corrupter */
	uint32_t magic;
	uint16_t lid, pad;
	uint32_t rc_qpn[NRC];
};

/* --------------------------------------------- guarded, canaried memory -- */

struct guarded {
	uint8_t *map, *buf;	/* mapping; the registered buffer */
	size_t map_len, len;
};

static uint8_t canary_byte(size_t i)
{
	return (uint8_t)(st_mix64(round_seed ^ 0xca11a7ull ^ (i / 8)) >>
			 (8 * (i % 8)));
}

/* PROT_NONE page, CAN canary bytes, len bytes, CAN canary bytes, PROT_NONE
 * page: the canaries share pages with the buffer's first and last bytes. */
static void guarded_alloc(struct guarded *g, size_t len)
{
	size_t i, inner = 2 * (size_t)CAN + len;

	inner = (inner + 4095) & ~(size_t)4095;
	g->map_len = inner + 2 * 4096;
	g->map = mmap(NULL, g->map_len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (g->map == MAP_FAILED)
		st_die(4, "mmap: %s", strerror(errno));
	mprotect(g->map, 4096, PROT_NONE);
	mprotect(g->map + g->map_len - 4096, 4096, PROT_NONE);
	g->buf = g->map + 4096 + CAN;
	g->len = len;
	for (i = 4096; i < g->map_len - 4096; i++)
		g->map[i] = canary_byte(i);
	memset(g->buf, 0, len);
}

/* Offset (from buf) of the first damaged canary byte, or 0 if intact. */
static long guarded_check(const struct guarded *g)
{
	size_t i;

	for (i = 4096; i < g->map_len - 4096; i++) {
		if (g->map + i >= g->buf && g->map + i < g->buf + g->len)
			continue;
		if (g->map[i] != canary_byte(i))
			return (long)(g->map + i - g->buf) ?: 1;
	}
	return 0;
}

/* -------------------------------------------------------------- corrupter -- */

struct ring {
	uint8_t *base;
	size_t len;
	uint32_t kind, size, stride, max_sge, prod0;
};

static struct ring rings[64];
static int nrings;

static void find_own_rings(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	uint64_t inos[64];
	int ninos = 0, i;

	if (!f)
		st_die(4, "/proc/self/maps: %s", strerror(errno));
	while (fgets(line, sizeof(line), f) && nrings < 64) {
		unsigned long lo, hi, ino;
		struct uib_qhdr *h;
		struct ring *r;
		bool seen = false;

		if (!strstr(line, "/memfd:uib-queue"))
			continue;
		if (sscanf(line, "%lx-%lx %*s %*s %*s %lu", &lo, &hi, &ino) != 3)
			continue;
		for (i = 0; i < ninos; i++)
			seen |= inos[i] == ino;
		if (seen || ninos == 64)
			continue;
		h = (struct uib_qhdr *)lo;
		if (!strstr(line, "rw") || h->owner_pid != getpid() ||
		    h->kind < UIB_QK_CQ || h->kind > UIB_QK_SRQ ||
		    h->log_size > UIB_RING_MAX_LOG || !h->stride)
			continue;
		inos[ninos++] = ino;
		r = &rings[nrings++];
		r->base = (uint8_t *)lo;
		r->len = hi - lo;
		r->kind = h->kind;
		r->size = 1u << h->log_size;
		r->stride = h->stride;
		r->max_sge = h->max_sge;
	}
	fclose(f);
}

struct targets {
	struct guarded *g;
	uint32_t lkey;
	uint64_t stack_addr;
};

static uint64_t any_addr(struct st_rng *rng, const struct targets *t)
{
	const struct guarded *g = t->g;

	switch (st_below(rng, 10)) {
	case 0: return (uintptr_t)g->buf - 1 - st_below(rng, CAN);
	case 1: return (uintptr_t)g->buf + g->len - st_below(rng, 64);
	case 2: return (uintptr_t)g->buf + g->len + st_below(rng, CAN);
	case 3: return UINT64_MAX - st_below(rng, 4096);
	case 4: return t->stack_addr;
	case 5: return 0;
	case 6: return st_rand(rng);
	case 7: return (uintptr_t)g->map + st_below(rng, 4096);
	default: return (uintptr_t)g->buf + st_below(rng, g->len);
	}
}

static uint32_t any_len(struct st_rng *rng)
{
	static const uint32_t v[] = { 0, 1, 44, 45, 64, 4096, 8192, 65536,
				      0x7fffffff, 0x80000000, 0xffffffff };

	if (st_below(rng, 3) == 0)
		return (uint32_t)st_rand(rng);
	return v[st_below(rng, sizeof(v) / sizeof(v[0]))];
}

static uint32_t any_u32(struct st_rng *rng, uint32_t orig)
{
	switch (st_below(rng, 8)) {
	case 0: return 0;
	case 1: return orig + 1 + (uint32_t)st_below(rng, 4);
	case 2: return orig - 1 - (uint32_t)st_below(rng, 4);
	case 3: return orig << 1;
	case 4: return 0xffffffffu - (uint32_t)st_below(rng, 2);
	case 5: return (uint32_t)st_below(rng, 70);
	case 6: return orig ^ (1u << st_below(rng, 32));
	default: return (uint32_t)st_rand(rng);
	}
}

#define ST32(p, v) atomic_store_explicit((_Atomic uint32_t *)(void *)(p), \
					 (v), memory_order_relaxed)

static void corrupt_once(struct st_rng *rng, const struct targets *t)
{
	struct ring *r = &rings[st_below(rng, (uint64_t)nrings)];
	struct uib_qhdr *h = (struct uib_qhdr *)r->base;
	uint32_t cons = atomic_load(&h->cons), prod = atomic_load(&h->prod);
	/* Entries about to be used are the interesting ones. */
	uint32_t idx = (st_below(rng, 4) ? cons + (uint32_t)st_below(rng, 4) :
			(uint32_t)st_rand(rng)) & (r->size - 1);
	uint8_t *e = r->base + UIB_QHDR_SIZE + (size_t)idx * r->stride;
	uint64_t pick = st_below(rng, 16);

	if (pick == 0) {		/* random bytes anywhere in the ring */
		size_t off = st_below(rng, r->len), n = 1 + st_below(rng, 16);

		while (n-- && off < r->len)
			r->base[off++] = (uint8_t)st_rand(rng);
		return;
	}
	if (pick <= 3) {		/* header geometry */
		switch (st_below(rng, 4)) {
		case 0: h->log_size = any_u32(rng, h->log_size); break;
		case 1: h->stride = any_u32(rng, h->stride); break;
		case 2: h->max_sge = any_u32(rng, h->max_sge); break;
		default: h->kind = any_u32(rng, h->kind); break;
		}
		return;
	}
	if (pick <= 5) {		/* indices */
		if (st_below(rng, 2))
			ST32(&h->prod, any_u32(rng, prod));
		else
			ST32(&h->cons, any_u32(rng, cons));
		return;
	}
	if (r->kind != UIB_QK_CQ) {	/* a receive WQE */
		struct uib_rwqe *w = (struct uib_rwqe *)e;
		uint32_t nsge = (r->stride - sizeof(*w)) / sizeof(w->sge[0]);
		uint32_t j = (uint32_t)st_below(rng, nsge ? nsge : 1);

		switch (st_below(rng, 4)) {
		case 0:
			w->num_sge = any_u32(rng, w->num_sge);
			break;
		default:
			if (!nsge)
				break;
			w->sge[j].addr = any_addr(rng, t);
			if (st_below(rng, 2))
				w->sge[j].length = any_len(rng);
			if (st_below(rng, 4))
				w->sge[j].lkey = t->lkey;
			else
				w->sge[j].lkey = (uint32_t)st_rand(rng);
			if (st_below(rng, 2))
				w->num_sge = j + 1;
			break;
		}
		return;
	}
	/* A CQE: often forge a complete inline CQE the owner will poll. */
	{
		struct uib_cqe *q = (struct uib_cqe *)e;
		unsigned int k = (unsigned int)st_below(rng, 2);

		switch (st_below(rng, 6)) {
		case 0:
			q->nfrag = (uint8_t)st_rand(rng);
			break;
		case 1:
			q->frag[k].addr = any_addr(rng, t);
			q->frag[k].len = any_len(rng);
			break;
		case 2:
			q->flags = (uint8_t)st_rand(rng);
			q->byte_len = any_len(rng);
			break;
		default:
			q->flags = UIB_CQE_F_INLINE;
			q->status = IBV_WC_SUCCESS;
			q->opcode = IBV_WC_RECV;
			q->byte_len = (uint32_t)st_below(rng, 2) ?
				      (uint32_t)st_below(rng, 45) : any_len(rng);
			q->nfrag = (uint8_t)(1 + st_below(rng, 2));
			for (k = 0; k < 2; k++) {
				q->frag[k].addr = any_addr(rng, t);
				q->frag[k].len = (uint32_t)st_below(rng, 4) ?
						 (uint32_t)st_below(rng, 45) :
						 any_len(rng);
				q->frag[k].lkey = st_below(rng, 4) ? t->lkey :
						  (uint32_t)st_rand(rng);
			}
			memset(q->data, 0xee, sizeof(q->data));
			if (st_below(rng, 2))
				atomic_store_explicit(&q->seq, idx == (cons &
					(r->size - 1)) ? cons + 1 :
					(uint32_t)st_rand(rng),
					memory_order_release);
			break;
		}
	}
}

static int corrupter(int *fds, int ctl)
{
	struct st_rng rng = { st_mix64(round_seed ^ 0xbadull) };
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *rc[MAXP][NRC], *ud;
	struct ibv_mr *mr;
	struct guarded g;
	struct targets t;
	volatile uint8_t stack_canary[512];
	uint64_t n_corrupt = 0, n_wc = 0, n_err = 0, next_us, gap_us, end;
	uint32_t nslots = (uint32_t)npeers * NRC * RQD + UDRQD;
	struct ibv_wc wc[16];
	int p, k, i, n;
	size_t j;
	char c;

	st_role = "corrupter";
	ctx = st_open(dev_name);
	pd = ibv_alloc_pd(ctx);
	cq = ibv_create_cq(ctx, 255, NULL, NULL, 0);
	if (!pd || !cq)
		st_die(4, "PD/CQ: %s", strerror(errno));
	guarded_alloc(&g, (size_t)nslots * SLOT + WREG);
	mr = ibv_reg_mr(pd, g.buf, g.len, IBV_ACCESS_LOCAL_WRITE |
			IBV_ACCESS_REMOTE_WRITE);
	if (!mr)
		st_die(4, "ibv_reg_mr: %s", strerror(errno));
	for (j = 0; j < sizeof(stack_canary); j++)
		stack_canary[j] = canary_byte(j);
	*where = (struct where){ (uintptr_t)g.map, g.map_len,
				 (uintptr_t)g.buf, g.len,
				 (uintptr_t)stack_canary, sizeof(stack_canary) };
	t = (struct targets){ .g = &g, .lkey = mr->lkey,
			      .stack_addr = (uintptr_t)stack_canary };
	{
		struct ibv_qp_init_attr ia = {
			.send_cq = cq, .recv_cq = cq, .qp_type = IBV_QPT_UD,
			.cap = { .max_send_wr = 4, .max_recv_wr = UDRQD,
				 .max_send_sge = 1, .max_recv_sge = 2 },
		};
		struct ibv_qp_attr qa = { .qp_state = IBV_QPS_INIT,
					  .port_num = 1, .qkey = 0x1111 };

		ud = ibv_create_qp(pd, &ia);
		if (!ud || ibv_modify_qp(ud, &qa, IBV_QP_STATE |
					 IBV_QP_PKEY_INDEX | IBV_QP_PORT |
					 IBV_QP_QKEY))
			st_die(4, "UD QP: %s", strerror(errno));
		qa.qp_state = IBV_QPS_RTR;
		if (ibv_modify_qp(ud, &qa, IBV_QP_STATE))
			st_die(4, "UD RTR: %s", strerror(errno));
		qa.qp_state = IBV_QPS_RTS;
		qa.sq_psn = 0;
		if (ibv_modify_qp(ud, &qa, IBV_QP_STATE | IBV_QP_SQ_PSN))
			st_die(4, "UD RTS: %s", strerror(errno));
	}
	for (p = 0; p < npeers; p++) {
		struct cinfo ci = { .magic = MAGIC, .lid = st_lid(ctx),
				    .ud_qpn = ud->qp_num, .qkey = 0x1111,
				    .rkey = mr->rkey,
				    .waddr = (uintptr_t)g.buf +
					     (size_t)nslots * SLOT };
		struct pinfo pi;

		for (k = 0; k < NRC; k++) {
			/* two receive SGEs: the second rarely used */
			struct ibv_qp_init_attr ia = {
				.send_cq = cq, .recv_cq = cq,
				.qp_type = IBV_QPT_RC,
				.cap = { .max_send_wr = 4, .max_recv_wr = RQD,
					 .max_send_sge = 1,
					 .max_recv_sge = 2 },
			};
			struct ibv_qp_attr qa = {
				.qp_state = IBV_QPS_INIT, .port_num = 1,
				.qp_access_flags = IBV_ACCESS_REMOTE_WRITE,
			};

			rc[p][k] = ibv_create_qp(pd, &ia);
			if (!rc[p][k] ||
			    ibv_modify_qp(rc[p][k], &qa, IBV_QP_STATE |
					  IBV_QP_PKEY_INDEX | IBV_QP_PORT |
					  IBV_QP_ACCESS_FLAGS))
				st_die(4, "RC QP: %s", strerror(errno));
			ci.rc_qpn[k] = rc[p][k]->qp_num;
		}
		if (st_xfer(fds[p], &ci, sizeof(ci), true, 10000) ||
		    st_xfer(fds[p], &pi, sizeof(pi), false, 10000) ||
		    pi.magic != MAGIC)
			st_die(5, "peer %d went away in the exchange", p);
		for (k = 0; k < NRC; k++)
			st_rc_connect(rc[p][k], pi.rc_qpn[k], pi.lid, 10, 3, 7,
				      1);
	}
	/* Receives: slot s of QP q; wr_id = slot. */
	for (i = 0; i < (int)nslots; i++) {
		struct ibv_sge sge = { .addr = (uintptr_t)g.buf +
					       (size_t)i * SLOT,
				       .length = SLOT, .lkey = mr->lkey };
		struct ibv_recv_wr wr = { .wr_id = (uint64_t)i, .sg_list = &sge,
					  .num_sge = 1 }, *bad;
		int q = i / RQD;

		if (ibv_post_recv(q < npeers * NRC ? rc[q / NRC][q % NRC] : ud,
				  &wr, &bad))
			st_die(4, "ibv_post_recv");
	}
	find_own_rings();
	if (nrings < 2)
		st_die(4, "found only %d own rings in /proc/self/maps", nrings);
	for (p = 0; p < npeers; p++)
		if (st_xfer(fds[p], &c, 1, true, 10000))
			st_die(5, "peer %d went away before go", p);

	/* Rate: from one corruption per ~20 ms to bursts every ~50 us. */
	gap_us = 50u << st_below(&rng, 9);
	next_us = st_now_us() + gap_us * 4 + st_below(&rng, 20000);
	end = st_now_ms() + 120000;
	for (;;) {
		struct pollfd pf = { .fd = ctl, .events = POLLIN };

		n = ibv_poll_cq(cq, 16, wc);
		for (i = 0; i < n; i++) {
			uint64_t s = wc[i].wr_id;

			n_wc++;
			if (wc[i].status != IBV_WC_SUCCESS) {
				n_err++;
				continue;
			}
			if (s < nslots && (wc[i].opcode & IBV_WC_RECV)) {
				struct ibv_sge sge = {
					.addr = (uintptr_t)g.buf + s * SLOT,
					.length = SLOT, .lkey = mr->lkey };
				struct ibv_recv_wr wr = { .wr_id = s,
							  .sg_list = &sge,
							  .num_sge = 1 }, *bad;
				int q = (int)(s / RQD);

				ibv_post_recv(q < npeers * NRC ?
					      rc[q / NRC][q % NRC] : ud,
					      &wr, &bad);
			}
		}
		st_drain_async(ctx, NULL, NULL);
		if (do_corrupt && st_now_us() >= next_us) {
			int burst = 1 + (int)st_below(&rng, 4);

			while (burst--) {
				corrupt_once(&rng, &t);
				n_corrupt++;
			}
			next_us = st_now_us() + st_below(&rng, 2 * gap_us);
		}
		if (poll(&pf, 1, 0) == 1 || st_now_ms() > end)
			break;
		if (!n)
			sched_yield();
	}
	for (j = 0; j < sizeof(stack_canary); j++)
		if (stack_canary[j] != canary_byte(j))
			st_die(EXIT_CANARY, "CANARY: stack byte %zu written", j);
	{
		long off = guarded_check(&g);

		if (off)
			st_die(EXIT_CANARY, "CANARY: memory at MR %+ld written "
			       "(outside the registered buffer)", off);
	}
	st_say("survived: %" PRIu64 " corruptions, %" PRIu64 " completions "
	       "(%" PRIu64 " errors), canaries intact", n_corrupt, n_wc, n_err);
	_exit(0);
}

/* ------------------------------------------------------------------ peer -- */

struct counts {
	uint64_t ok, err[32], events[32];
};

static void peer_ev(const struct ibv_async_event *ev, void *arg)
{
	struct counts *c = arg;

	c->events[ev->event_type & 31]++;
}

static int peer(int id, int fd)
{
	struct st_rng rng = { st_mix64(round_seed ^ 0x9ee4ull ^ (uint64_t)id) };
	volatile uint8_t stack_canary[512];
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_qp *qp[NRC + 1];
	struct ibv_ah *ah;
	struct ibv_mr *mr;
	struct guarded g;
	struct cinfo ci;
	struct pinfo pi = { .magic = MAGIC };
	struct counts cnt = { 0 };
	unsigned int out[NRC + 1] = { 0 }, total_out = 0;
	bool dead[NRC + 1] = { 0 };
	struct ibv_wc wc[16];
	uint64_t end, wr_no = 0;
	char line[400], go;
	int i, k, n, len;
	size_t j;
	long off;

	st_role = "peer";
	ctx = st_open(dev_name);
	pd = ibv_alloc_pd(ctx);
	cq = ibv_create_cq(ctx, 255, NULL, NULL, 0);
	if (!pd || !cq)
		st_die(4, "PD/CQ: %s", strerror(errno));
	guarded_alloc(&g, 16 * 4096);
	for (j = 0; j < g.len; j++)
		g.buf[j] = (uint8_t)st_rand(&rng);
	mr = ibv_reg_mr(pd, g.buf, g.len, IBV_ACCESS_LOCAL_WRITE);
	if (!mr)
		st_die(4, "ibv_reg_mr: %s", strerror(errno));
	for (j = 0; j < sizeof(stack_canary); j++)
		stack_canary[j] = canary_byte(j + 7);
	for (k = 0; k < NRC; k++) {
		qp[k] = st_rc_qp(pd, cq, cq, 16, 1, 64);
		pi.rc_qpn[k] = qp[k]->qp_num;
	}
	{
		struct ibv_qp_init_attr ia = {
			.send_cq = cq, .recv_cq = cq, .qp_type = IBV_QPT_UD,
			.cap = { .max_send_wr = 16, .max_recv_wr = 1,
				 .max_send_sge = 1, .max_recv_sge = 1 },
		};
		struct ibv_qp_attr qa = { .qp_state = IBV_QPS_INIT,
					  .port_num = 1, .qkey = 0x1111 };

		qp[NRC] = ibv_create_qp(pd, &ia);
		if (!qp[NRC] || ibv_modify_qp(qp[NRC], &qa, IBV_QP_STATE |
					      IBV_QP_PKEY_INDEX | IBV_QP_PORT |
					      IBV_QP_QKEY))
			st_die(4, "UD QP: %s", strerror(errno));
		qa.qp_state = IBV_QPS_RTR;
		ibv_modify_qp(qp[NRC], &qa, IBV_QP_STATE);
		qa.qp_state = IBV_QPS_RTS;
		if (ibv_modify_qp(qp[NRC], &qa, IBV_QP_STATE | IBV_QP_SQ_PSN))
			st_die(4, "UD RTS: %s", strerror(errno));
	}
	pi.lid = st_lid(ctx);
	/* The corrupter may die before or during the exchange: not ours. */
	if (st_xfer(fd, &ci, sizeof(ci), false, 15000) || ci.magic != MAGIC ||
	    st_xfer(fd, &pi, sizeof(pi), true, 10000)) {
		st_say("corrupter gone before the exchange; nothing to check");
		_exit(0);
	}
	for (k = 0; k < NRC; k++)
		st_rc_connect(qp[k], ci.rc_qpn[k], ci.lid, 10, 3, 7, 1);
	{
		struct ibv_ah_attr aa = { .dlid = ci.lid, .port_num = 1 };

		ah = ibv_create_ah(pd, &aa);
		if (!ah)
			st_die(4, "ibv_create_ah: %s", strerror(errno));
	}
	if (st_xfer(fd, &go, 1, false, 15000)) {
		st_say("corrupter gone before go; nothing to check");
		_exit(0);
	}

	end = st_now_ms() + (uint64_t)round_ms;
	for (;;) {
		bool sending = st_now_ms() < end;

		for (k = 0; sending && k <= NRC; k++) {
			struct ibv_sge sge;
			struct ibv_send_wr wr = { 0 }, *bad;
			uint64_t op = st_below(&rng, 6);
			int r;

			if (dead[k] || out[k] >= 8)
				continue;
			len = (int)(st_below(&rng, 3) ? st_below(&rng, 45) :
				    st_below(&rng, 4097));
			sge.addr = (uintptr_t)g.buf +
				   st_below(&rng, g.len - 4096);
			sge.length = (uint32_t)len;
			sge.lkey = mr->lkey;
			wr.wr_id = (uint64_t)k << 56 | wr_no++;
			wr.sg_list = &sge;
			wr.num_sge = len ? 1 : 0;
			wr.send_flags = IBV_SEND_SIGNALED;
			if (k < NRC && len <= 64 && st_below(&rng, 2))
				wr.send_flags |= IBV_SEND_INLINE;
			if (k == NRC) {
				if (len > 2048)
					sge.length = 2048;
				wr.opcode = IBV_WR_SEND;
				wr.wr.ud.ah = ah;
				wr.wr.ud.remote_qpn = ci.ud_qpn;
				wr.wr.ud.remote_qkey = ci.qkey;
			} else if (op <= 1) {
				wr.opcode = op ? IBV_WR_RDMA_WRITE_WITH_IMM :
					    IBV_WR_RDMA_WRITE;
				wr.wr.rdma.rkey = ci.rkey;
				wr.wr.rdma.remote_addr = ci.waddr +
					st_below(&rng, WREG - 4096);
			} else {
				wr.opcode = op == 2 ? IBV_WR_SEND_WITH_IMM :
					    IBV_WR_SEND;
			}
			wr.imm_data = htonl((uint32_t)wr_no);
			r = ibv_post_send(qp[k], &wr, &bad);
			if (r) {
				dead[k] = true;	/* QP in error: stop using it */
				continue;
			}
			out[k]++;
			total_out++;
		}
		n = ibv_poll_cq(cq, 16, wc);
		if (n < 0)
			st_die(3, "ibv_poll_cq returned %d", n);
		for (i = 0; i < n; i++) {
			k = (int)(wc[i].wr_id >> 56);
			if (k > NRC || !out[k])
				st_die(3, "completion for unknown wr_id %#"
				       PRIx64, wc[i].wr_id);
			out[k]--;
			total_out--;
			if (wc[i].status == IBV_WC_SUCCESS) {
				cnt.ok++;
			} else {
				cnt.err[wc[i].status & 31]++;
				if (k < NRC)
					dead[k] = true;
			}
		}
		st_drain_async(ctx, peer_ev, &cnt);
		for (j = 0; j < sizeof(stack_canary); j++)
			if (stack_canary[j] != canary_byte(j + 7))
				st_die(1, "CANARY: stack byte %zu written", j);
		if (!sending)
			break;
		if (!n)
			sched_yield();
	}
	/* Stop: every outstanding request must complete (flushed or not). */
	for (k = 0; k <= NRC; k++) {
		struct ibv_qp_attr qa = { .qp_state = IBV_QPS_ERR };

		ibv_modify_qp(qp[k], &qa, IBV_QP_STATE);
	}
	end = st_now_ms() + 5000;
	while (total_out && st_now_ms() < end) {
		n = ibv_poll_cq(cq, 16, wc);
		for (i = 0; i < n; i++) {
			k = (int)(wc[i].wr_id >> 56);
			if (k > NRC || !out[k])
				st_die(3, "completion for unknown wr_id %#"
				       PRIx64, wc[i].wr_id);
			out[k]--;
			total_out--;
			if (wc[i].status == IBV_WC_SUCCESS)
				cnt.ok++;
			else
				cnt.err[wc[i].status & 31]++;
		}
		if (!n)
			usleep(1000);
	}
	st_drain_async(ctx, peer_ev, &cnt);
	if (total_out)
		st_die(6, "HANG: %u work requests never completed after the "
		       "QPs were moved to ERR", total_out);
	for (j = 0; j < sizeof(stack_canary); j++)
		if (stack_canary[j] != canary_byte(j + 7))
			st_die(1, "CANARY: stack byte %zu written", j);
	off = guarded_check(&g);
	if (off)
		st_die(1, "CANARY: memory at MR %+ld written (outside the "
		       "registered buffer)", off);
	n = snprintf(line, sizeof(line), "ok %" PRIu64, cnt.ok);
	for (i = 1; i < 32; i++)
		if (cnt.err[i])
			n += snprintf(line + n, sizeof(line) - (size_t)n,
				      ", %s %" PRIu64,
				      ibv_wc_status_str((enum ibv_wc_status)i),
				      cnt.err[i]);
	for (i = 0; i < 32; i++)
		if (cnt.events[i])
			n += snprintf(line + n, sizeof(line) - (size_t)n,
				      ", event %s %" PRIu64,
				      ibv_event_type_str((enum ibv_event_type)i),
				      cnt.events[i]);
	st_say("intact: %s", line);
	for (k = 0; k <= NRC; k++)
		ibv_destroy_qp(qp[k]);
	ibv_destroy_ah(ah);
	ibv_dereg_mr(mr);
	ibv_destroy_cq(cq);
	ibv_dealloc_pd(pd);
	ibv_close_device(ctx);
	return 0;
}

/* ---------------------------------------------------------------- rounds -- */

static const char *describe(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit %d", WEXITSTATUS(status));
	else
		snprintf(buf, len, "signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	return buf;
}

/* Waits for pid until deadline (ms clock); true if it exited. */
static bool wait_until(pid_t pid, int *status, uint64_t deadline)
{
	pid_t r;

	while ((r = waitpid(pid, status, WNOHANG)) == 0 &&
	       st_now_ms() < deadline)
		usleep(2000);
	return r == pid;
}

/* The launcher's look at a stopped corrupter's canaries: true if intact
 * (or not readable: nothing to say). */
static bool remote_canaries_ok(pid_t pid, int round)
{
	struct where w = *where;
	struct guarded g;
	struct iovec l, r;
	uint8_t stack[512];
	size_t j;
	long off;
	bool ok = true;

	if (!w.map || w.map_len > (64u << 20) || w.stack_len > sizeof(stack))
		return true;
	g.map = malloc(w.map_len);
	if (!g.map)
		return true;
	g.map_len = w.map_len;
	g.buf = g.map + (w.buf - w.map);
	g.len = w.len;
	/* Only the canary pages: the guard pages cannot be read. */
	l.iov_base = g.map + 4096;
	l.iov_len = w.map_len - 2 * 4096;
	r.iov_base = (void *)(uintptr_t)(w.map + 4096);
	r.iov_len = l.iov_len;
	if (process_vm_readv(pid, &l, 1, &r, 1, 0) == (ssize_t)l.iov_len) {
		off = guarded_check(&g);
		if (off) {
			st_say("round %d: CANARY: the hung corrupter's memory at "
			       "MR %+ld was written", round, off);
			ok = false;
		}
	}
	l.iov_base = stack;
	l.iov_len = w.stack_len;
	r.iov_base = (void *)(uintptr_t)w.stack;
	r.iov_len = w.stack_len;
	if (ok && process_vm_readv(pid, &l, 1, &r, 1, 0) == (ssize_t)l.iov_len)
		for (j = 0; j < w.stack_len; j++)
			if (stack[j] != canary_byte(j)) {
				st_say("round %d: CANARY: the hung corrupter's "
				       "stack byte %zu was written", round, j);
				ok = false;
				break;
			}
	free(g.map);
	return ok;
}

static bool one_round(int round, uint64_t seed)
{
	int sp[MAXP][2], ctl[2], p, status;
	pid_t cpid, ppid[MAXP];
	bool ok = true;
	char d[64];
	uint64_t t0 = st_now_ms();

	round_seed = st_mix64(seed) ^ (uint64_t)round;
	memset(where, 0, sizeof(*where));
	for (p = 0; p < npeers; p++)
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp[p]))
			st_die(4, "socketpair: %s", strerror(errno));
	if (pipe2(ctl, O_CLOEXEC))
		st_die(4, "pipe: %s", strerror(errno));
	cpid = fork();
	if (cpid < 0)
		st_die(4, "fork: %s", strerror(errno));
	if (!cpid) {
		int fds[MAXP];

		close(ctl[1]);
		for (p = 0; p < npeers; p++) {
			close(sp[p][1]);
			fds[p] = sp[p][0];
		}
		corrupter(fds, ctl[0]);
	}
	close(ctl[0]);
	for (p = 0; p < npeers; p++) {
		ppid[p] = fork();
		if (ppid[p] < 0)
			st_die(4, "fork: %s", strerror(errno));
		if (!ppid[p]) {
			int q;

			close(ctl[1]);
			for (q = 0; q < npeers; q++) {
				close(sp[q][0]);
				if (q != p)
					close(sp[q][1]);
			}
			_exit(peer(p, sp[p][1]));
		}
	}
	for (p = 0; p < npeers; p++) {
		close(sp[p][0]);
		close(sp[p][1]);
	}
	for (p = 0; p < npeers; p++) {
		if (!wait_until(ppid[p], &status, t0 + (uint64_t)round_ms +
				(uint64_t)peer_timeout * 1000)) {
			kill(ppid[p], SIGKILL);
			waitpid(ppid[p], &status, 0);
			st_say("round %d: FAIL peer %d (pid %d) did not finish "
			       "within %d s (hang)", round, p, (int)ppid[p],
			       peer_timeout);
			ok = false;
		} else if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			st_say("round %d: FAIL peer %d (pid %d): %s", round, p,
			       (int)ppid[p], describe(status, d, sizeof(d)));
			ok = false;
		}
	}
	/* The corrupter: told to stop, killed if it does not. */
	if (write(ctl[1], "s", 1) < 0)
		(void)0;
	close(ctl[1]);
	if (!wait_until(cpid, &status, st_now_ms() + 1000)) {
		kill(cpid, SIGSTOP);
		if (!remote_canaries_ok(cpid, round))
			ok = false;
		kill(cpid, SIGKILL);
		waitpid(cpid, &status, 0);
		st_say("round %d: corrupter hung, killed (not counted; its "
		       "canaries checked from outside)", round);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == EXIT_CANARY) {
		st_say("round %d: FAIL corrupter's memory outside its buffers "
		       "was written", round);
		ok = false;
	} else if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		st_say("round %d: corrupter %s (not counted)", round,
		       describe(status, d, sizeof(d)));
	}
	st_say("round %d (seed %#" PRIx64 "): %s in %.1f s", round, round_seed,
	       ok ? "PASS" : "FAIL", (double)(st_now_ms() - t0) / 1000);
	return ok;
}

static void usage(void)
{
	fprintf(stderr, "usage: uib_corrupt_check [-d DEV] [-r ROUNDS] "
		"[-s SEED] [--first N] [--ms MS] [--peers P] "
		"[--peer-timeout SEC] [--no-corrupt]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ib-dev", required_argument, NULL, 'd' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "first", required_argument, NULL, 'f' },
		{ "seed", required_argument, NULL, 's' },
		{ "ms", required_argument, NULL, 'M' },
		{ "peers", required_argument, NULL, 'P' },
		{ "peer-timeout", required_argument, NULL, 'T' },
		{ "no-corrupt", no_argument, NULL, 'N' },
		{ NULL, 0, NULL, 0 },
	};
	int c, r, rounds = 50, first = 0, passed = 0, failed = 0;
	uint64_t seed = 1;

	while ((c = getopt_long(argc, argv, "d:r:s:", opts, NULL)) != -1) {
		switch (c) {
		case 'd': dev_name = optarg; break;
		case 'r': rounds = atoi(optarg); break;
		case 'f': first = atoi(optarg); break;
		case 's': seed = strtoull(optarg, NULL, 0); break;
		case 'M': round_ms = atoi(optarg); break;
		case 'P': npeers = atoi(optarg); break;
		case 'T': peer_timeout = atoi(optarg); break;
		case 'N': do_corrupt = false; break;
		default: usage();
		}
	}
	if (optind != argc || rounds < 1 || npeers < 1 || npeers > MAXP ||
	    round_ms < 1)
		usage();
	st_role = "corrupt_check";
	signal(SIGPIPE, SIG_IGN);
	where = mmap(NULL, sizeof(*where), PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (where == MAP_FAILED)
		st_die(4, "mmap: %s", strerror(errno));
	for (r = first; r < first + rounds; r++) {
		if (one_round(r, seed))
			passed++;
		else
			failed++;
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
