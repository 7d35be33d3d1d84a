// SPDX-License-Identifier: MIT
/*
 * uib_datacheck: a two-process data-integrity test of a verbs device.
 *
 *   server: uib_datacheck -d DEV [-p TCPPORT] [-g GIDIDX] [-c rc|uc|ud]
 *                         [--new-api]
 *   client: the same options plus the server's host (e.g. 127.0.0.1)
 *
 * The two processes exchange their QP and memory details over TCP (like
 * ibv_rc_pingpong), connect one QP each and then run the same plan of
 * steps twice: first the client is the requester and the server the
 * responder, then the other way round.  Every step is bracketed by TCP
 * syncs: the responder poisons its windows and posts its receives, the
 * requester fills its sources with a pattern that depends on the seed,
 * the message and the byte offset (so stale or misplaced data cannot
 * pass), posts the work and checks its completions; the responder checks
 * its completions, every received byte and that the bytes around every
 * message were left alone.  Both sides then agree on the outcome.
 *
 * RC covers SEND, SEND_WITH_IMM, RDMA_WRITE(+IMM), RDMA_READ and both
 * atomics; UC SEND(+IMM) and RDMA_WRITE(+IMM); UD SEND(+IMM) up to the
 * path MTU with the 40-byte GRH area.  Sizes, multi-SGE gather/scatter,
 * inline data from unregistered memory, unsignaled WRs and long WR chains
 * are all exercised.  --new-api posts through ibv_create_qp_ex() and the
 * ibv_wr_*() builders instead of ibv_post_send().
 *
 * Exit 0 only if everything was verified; every wait is bounded.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <infiniband/verbs.h>

#define DEFAULT_TCP_PORT 18777
#define WAIT_MS		10000		/* any single wait */
#define SYNC_MS		30000		/* a TCP sync: the peer may be in a wait */
#define ACCEPT_MS	30000		/* server waiting for its client */
#define CAP_MSG		(8u << 20)	/* largest message we move */
#define REGION		(CAP_MSG + (1u << 20))
#define GUARD		64		/* poisoned bytes around windows */
#define GAP		32		/* poisoned bytes between pieces */
#define MAXSGE		16
#define NCOUNTERS	16
#define NRESULTS	64
#define INLINE_REQ	256
#define SQ_DEPTH	256
#define RQ_DEPTH	512
#define CQ_DEPTH	1024
#define UD_QKEY		0x11111111u
#define GRH_LEN		40
#define INL_BUF		(64u * 1024)
#define MAX_REPORTS	20

enum transport { TR_RC, TR_UC, TR_UD };
enum memkind { MEM_ANON, MEM_FILE, MEM_HEAP };
static const char *const tr_name[] = { "rc", "uc", "ud" };

struct opts {
	const char *dev;
	const char *server;
	int ib_port;
	int tcp_port;
	int gid_idx;		/* -1: address by LID */
	enum transport tr;
	enum memkind mem;
	bool new_api;
	bool verbose;
	unsigned int timeout;	/* whole-run alarm, seconds */
	uint64_t seed;
	bool seed_set;
};

/* What each side tells the other (sent big-endian, field by field). */
struct info {
	uint32_t transport, new_api;
	uint32_t lid, qpn, psn, rkey;
	uint8_t gid[16];
	uint64_t dst_addr, atom_addr;
	uint32_t region;
	uint32_t max_msg, mtu;
	uint32_t max_send_sge, max_recv_sge, max_sge_rd, max_inline;
	uint32_t max_send_wr, max_recv_wr;
	uint32_t max_rd_atomic, max_dest_rd_atomic;
	uint64_t seed;
};

enum xkind { X_SEND, X_SEND_IMM, X_WRITE, X_WRITE_IMM, X_READ, X_FADD, X_CAS };
static const char *const xkind_name[] = {
	"SEND", "SEND_WITH_IMM", "RDMA_WRITE", "RDMA_WRITE_WITH_IMM",
	"RDMA_READ", "ATOMIC_FETCH_AND_ADD", "ATOMIC_CMP_AND_SWP",
};

struct piece {
	uint32_t off, len;
};

/* One work request of a step, as both sides see it. */
struct xfer {
	enum xkind kind;
	uint32_t len;
	uint64_t key;		/* pattern key */
	bool signaled, inl;
	uint32_t imm;		/* host order; travels as htobe32() */
	/* Requester: gather pieces (src region, or the inline buffer) or,
	 * for RDMA_READ, scatter pieces in its own dst region. */
	int nl;
	struct piece l[MAXSGE];
	struct piece lwin;
	/* Responder: receive pieces, or the RDMA target/source (nr == 1),
	 * in its dst region. */
	int nr;
	struct piece r[MAXSGE];
	struct piece rwin;
	/* RDMA_WRITE_WITH_IMM: the receive it consumes (must stay poison). */
	struct piece rcv;
	/* Atomics. */
	int cidx, ridx;
	uint64_t op1, op2, orig;
};

struct step {
	char name[64];
	int nx, cap;
	struct xfer *x;
	bool sep_posts;		/* one post call per WR instead of a chain */
	bool atomics;
	uint64_t init[NCOUNTERS], final[NCOUNTERS];
};

struct plan {
	struct step *steps;
	int nsteps, cap;
	/* inputs, identical on both sides */
	enum transport tr;
	int round;
	uint64_t seed;
	uint32_t max_msg, mtu, nsge_send, nsge_recv, nsge_rd, max_inline;
	uint32_t sq, rq;
	/* cursors of the step being built */
	uint32_t cur_src, cur_ldst, cur_rdst, cur_inl;
	int nres;
	uint64_t sim[NCOUNTERS];
};

struct ctx {
	struct opts *o;
	struct ibv_context *ctx;
	struct ibv_device_attr dev;
	struct ibv_port_attr port;
	struct ibv_pd *pd;
	struct ibv_cq *scq, *rcq;
	struct ibv_qp *qp;
	struct ibv_qp_ex *qpx;
	struct ibv_ah *ah;
	struct ibv_mr *mr;
	struct ibv_qp_cap cap;
	uint8_t *buf;
	size_t buflen;
	void *alloc;			/* what to munmap()/free() */
	size_t alloc_len;
	uint8_t *src, *dst;
	uint64_t *atom, *res;
	uint8_t *inl;
	union ibv_gid gid;
	struct info me, peer;
	int sock;
	bool requester;
	int round;
	const struct step *cur;
	uint32_t step_no;
	int failures;
	uint64_t nmsgs, nbytes;
};

/* ---------------------------------------------------------------- misc */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void __attribute__((format(printf, 2, 3)))
fail(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	if (++c->failures > MAX_REPORTS)
		return;
	if (c->cur)
		fprintf(stderr, "datacheck: FAIL [round %d, %s, step '%s']: ",
			c->round, c->requester ? "requester" : "responder",
			c->cur->name);
	else
		fprintf(stderr, "datacheck: FAIL: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void __attribute__((format(printf, 1, 2), noreturn))
die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "datacheck: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static uint64_t mix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Byte 'off' of the pattern of message 'key'. */
static inline uint8_t pat_byte(uint64_t key, uint64_t off)
{
	return mix64(key ^ ((off >> 3) * 0xd6e8feb86659fd93ull)) >>
	       ((off & 7) * 8);
}

static void pat_fill(uint8_t *p, uint32_t len, uint64_t key, uint64_t off)
{
	uint64_t w = 0;
	uint32_t i;

	for (i = 0; i < len; i++, off++) {
		if (i == 0 || (off & 7) == 0)
			w = mix64(key ^ ((off >> 3) * 0xd6e8feb86659fd93ull));
		p[i] = w >> ((off & 7) * 8);
	}
}

/* Returns the index of the first mismatch, or -1; counts mismatches. */
static int64_t pat_check(const uint8_t *p, uint32_t len, uint64_t key,
			 uint64_t off, uint64_t *nbad)
{
	int64_t first = -1;
	uint64_t w = 0;
	uint32_t i;

	for (i = 0; i < len; i++, off++) {
		if (i == 0 || (off & 7) == 0)
			w = mix64(key ^ ((off >> 3) * 0xd6e8feb86659fd93ull));
		if (p[i] != (uint8_t)(w >> ((off & 7) * 8))) {
			if (first < 0)
				first = i;
			++*nbad;
		}
	}
	return first;
}

static int64_t poison_check(const uint8_t *p, uint32_t len, uint8_t poison)
{
	uint32_t i;

	for (i = 0; i < len; i++)
		if (p[i] != poison)
			return i;
	return -1;
}

static uint8_t step_poison(uint32_t step_no)
{
	return 0x80 | ((step_no * 37u) & 0x7f);
}

#define JUNK 0xee		/* fills requester gaps: gathering them is a bug */

/* ----------------------------------------------------------------- TCP */

static int xwrite(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= n;
	}
	return 0;
}

/* 0, or -1 with a reason in 'why'. */
static int xread(int fd, void *buf, size_t len, int timeout_ms,
		 const char **why)
{
	uint64_t deadline = now_ms() + timeout_ms;
	uint8_t *p = buf;

	while (len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left = (int64_t)(deadline - now_ms());
		ssize_t n;
		int r;

		if (left <= 0) {
			*why = "timed out waiting for the peer";
			return -1;
		}
		r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			*why = strerror(errno);
			return -1;
		}
		if (r == 0)
			continue;
		n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*why = strerror(errno);
			return -1;
		}
		if (n == 0) {
			*why = "the peer closed the connection (it failed or exited)";
			return -1;
		}
		p += n;
		len -= n;
	}
	return 0;
}

static int tcp_server(int port)
{
	struct sockaddr_in sa = {
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_ANY),
	};
	struct pollfd pfd;
	int one = 1, lfd, fd, r;

	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		die("socket: %s", strerror(errno));
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("cannot listen on TCP port %d: %s", port, strerror(errno));
	if (listen(lfd, 1) < 0)
		die("listen: %s", strerror(errno));
	pfd.fd = lfd;
	pfd.events = POLLIN;
	do
		r = poll(&pfd, 1, ACCEPT_MS);
	while (r < 0 && errno == EINTR);
	if (r <= 0)
		die("no client connected to TCP port %d within %d s", port,
		    ACCEPT_MS / 1000);
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		die("accept: %s", strerror(errno));
	close(lfd);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int tcp_client(const char *host, int port)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
	};
	uint64_t deadline = now_ms() + WAIT_MS;
	struct addrinfo *res, *t;
	char service[16];
	int one = 1, fd = -1, r, err = 0;

	snprintf(service, sizeof(service), "%d", port);
	r = getaddrinfo(host, service, &hints, &res);
	if (r)
		die("cannot resolve %s: %s", host, gai_strerror(r));
	/* The server may not be listening yet: retry until the deadline. */
	while (fd < 0 && now_ms() < deadline) {
		for (t = res; t; t = t->ai_next) {
			fd = socket(t->ai_family, t->ai_socktype | SOCK_CLOEXEC,
				    t->ai_protocol);
			if (fd < 0)
				continue;
			if (!connect(fd, t->ai_addr, t->ai_addrlen))
				break;
			err = errno;
			close(fd);
			fd = -1;
		}
		if (fd < 0)
			usleep(50000);
	}
	freeaddrinfo(res);
	if (fd < 0)
		die("cannot connect to %s:%d: %s", host, port,
		    strerror(err ? err : ETIMEDOUT));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
	v = htobe32(v);
	memcpy(p, &v, 4);
	return p + 4;
}

static uint8_t *put64(uint8_t *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, 8);
	return p + 8;
}

static const uint8_t *get32(const uint8_t *p, uint32_t *v)
{
	memcpy(v, p, 4);
	*v = be32toh(*v);
	return p + 4;
}

static const uint8_t *get64(const uint8_t *p, uint64_t *v)
{
	memcpy(v, p, 8);
	*v = be64toh(*v);
	return p + 8;
}

#define INFO_MAGIC 0x55494244434b3031ull	/* "UIBDCK01" */
#define INFO_WIRE_LEN (8 + 17 * 4 + 16 + 3 * 8)

static void info_exchange(struct ctx *c)
{
	uint8_t out[INFO_WIRE_LEN], in[INFO_WIRE_LEN], *p = out;
	const uint8_t *q = in;
	const struct info *m = &c->me;
	struct info *r = &c->peer;
	const char *why;
	uint64_t magic;

	p = put64(p, INFO_MAGIC);
	p = put32(p, m->transport);
	p = put32(p, m->new_api);
	p = put32(p, m->lid);
	p = put32(p, m->qpn);
	p = put32(p, m->psn);
	p = put32(p, m->rkey);
	memcpy(p, m->gid, 16);
	p += 16;
	p = put64(p, m->dst_addr);
	p = put64(p, m->atom_addr);
	p = put32(p, m->region);
	p = put32(p, m->max_msg);
	p = put32(p, m->mtu);
	p = put32(p, m->max_send_sge);
	p = put32(p, m->max_recv_sge);
	p = put32(p, m->max_sge_rd);
	p = put32(p, m->max_inline);
	p = put32(p, m->max_send_wr);
	p = put32(p, m->max_recv_wr);
	p = put32(p, m->max_rd_atomic);
	p = put32(p, m->max_dest_rd_atomic);
	p = put64(p, m->seed);
	if (p - out != INFO_WIRE_LEN)
		die("internal error: info encoding is %zd bytes", p - out);

	if (xwrite(c->sock, out, sizeof(out)))
		die("cannot send QP information: %s", strerror(errno));
	if (xread(c->sock, in, sizeof(in), WAIT_MS, &why))
		die("cannot receive the peer's QP information: %s", why);

	q = get64(q, &magic);
	if (magic != INFO_MAGIC)
		die("the peer is not uib_datacheck (bad magic)");
	q = get32(q, &r->transport);
	q = get32(q, &r->new_api);
	q = get32(q, &r->lid);
	q = get32(q, &r->qpn);
	q = get32(q, &r->psn);
	q = get32(q, &r->rkey);
	memcpy(r->gid, q, 16);
	q += 16;
	q = get64(q, &r->dst_addr);
	q = get64(q, &r->atom_addr);
	q = get32(q, &r->region);
	q = get32(q, &r->max_msg);
	q = get32(q, &r->mtu);
	q = get32(q, &r->max_send_sge);
	q = get32(q, &r->max_recv_sge);
	q = get32(q, &r->max_sge_rd);
	q = get32(q, &r->max_inline);
	q = get32(q, &r->max_send_wr);
	q = get32(q, &r->max_recv_wr);
	q = get32(q, &r->max_rd_atomic);
	q = get32(q, &r->max_dest_rd_atomic);
	get64(q, &r->seed);

	if (r->transport != m->transport)
		die("transport mismatch: this side runs %s, the peer %s",
		    tr_name[m->transport],
		    r->transport < 3 ? tr_name[r->transport] : "?");
	if (r->region != m->region)
		die("buffer size mismatch (%u vs %u)", m->region, r->region);
}

/*
 * Both sides send (tag, ok) and read the peer's.  Returns true only if the
 * peer is at the same point and, when 'peer_ok' is wanted, reports success.
 */
static bool sync_tag(struct ctx *c, uint32_t tag, bool ok, bool *peer_ok)
{
	uint8_t out[8], in[8];
	uint32_t ptag, pok;
	const char *why;

	put32(put32(out, tag), ok);
	if (xwrite(c->sock, out, sizeof(out))) {
		fail(c, "TCP sync %#x: cannot write: %s", tag, strerror(errno));
		return false;
	}
	if (xread(c->sock, in, sizeof(in), SYNC_MS, &why)) {
		fail(c, "TCP sync %#x: %s", tag, why);
		return false;
	}
	get32(get32(in, &ptag), &pok);
	if (ptag != tag) {
		fail(c, "TCP sync: the peer is at %#x, this side at %#x",
		     ptag, tag);
		return false;
	}
	if (peer_ok)
		*peer_ok = pok;
	return true;
}

/* ---------------------------------------------------------------- plan */

static struct step *step_new(struct plan *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static struct step *step_new(struct plan *p, const char *fmt, ...)
{
	struct step *s;
	va_list ap;
	int i;

	if (p->nsteps == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 64;
		p->steps = realloc(p->steps, p->cap * sizeof(*p->steps));
		if (!p->steps)
			die("out of memory");
	}
	s = &p->steps[p->nsteps++];
	memset(s, 0, sizeof(*s));
	va_start(ap, fmt);
	vsnprintf(s->name, sizeof(s->name), fmt, ap);
	va_end(ap);
	p->cur_src = p->cur_ldst = p->cur_rdst = p->cur_inl = 0;
	p->nres = 0;
	for (i = 0; i < NCOUNTERS; i++) {
		s->init[i] = mix64(p->seed ^ ((uint64_t)p->round << 32) ^
				   ((uint64_t)p->nsteps << 8) ^ i);
		/* counter 7 exercises the 64-bit wrap-around */
		if (i == 7)
			s->init[i] = UINT64_MAX - 1;
		p->sim[i] = s->init[i];
	}
	return s;
}

static struct xfer *x_new(struct plan *p, struct step *s, enum xkind k,
			  uint32_t len)
{
	struct xfer *x;

	if (s->nx == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 8;
		s->x = realloc(s->x, s->cap * sizeof(*s->x));
		if (!s->x)
			die("out of memory");
	}
	x = &s->x[s->nx++];
	memset(x, 0, sizeof(*x));
	x->kind = k;
	x->len = len;
	x->signaled = true;
	/* Unique per (round, step, WR): stale data never matches. */
	x->key = mix64(p->seed ^ mix64(((uint64_t)p->round << 48) |
				       ((uint64_t)p->nsteps << 20) |
				       (uint64_t)s->nx));
	x->imm = (uint32_t)mix64(x->key);
	return x;
}

/* Lays n pieces out in a window at *cur; 'mis' misaligns the first. */
static void lay_out(uint32_t *cur, uint32_t limit, int n, const uint32_t *lens,
		    uint32_t mis, struct piece *pc, struct piece *win)
{
	uint32_t start = *cur, off = start + GUARD + mis;
	int i;

	for (i = 0; i < n; i++) {
		pc[i].off = off;
		pc[i].len = lens[i];
		off += lens[i] + (i + 1 < n ? GAP : 0);
	}
	off += GUARD;
	win->off = start;
	win->len = off - start;
	*cur = (off + 63) & ~63u;
	if (*cur > limit)
		die("internal error: step layout needs %u bytes, have %u",
		    *cur, limit);
}

/* Splits len into n uneven parts, each >= 1 (needs len >= n). */
static void split(uint32_t len, int n, uint32_t *lens)
{
	uint32_t wsum = 0, left = len, w[MAXSGE] = { 0 };
	int i;

	if (n < 1 || n > MAXSGE || len < (uint32_t)n)
		die("internal error: cannot split %u bytes into %d", len, n);
	for (i = 0; i < n; i++) {
		w[i] = (i * 7 % 5) + 1;
		wsum += w[i];
	}
	for (i = 0; i < n - 1; i++) {
		uint32_t part = (uint64_t)(len - n) * w[i] / wsum + 1;

		lens[i] = part;
		left -= part;
	}
	lens[n - 1] = left;
}

static uint32_t hdr_len(const struct plan *p)
{
	return p->tr == TR_UD ? GRH_LEN : 0;
}

/* Requester's gather list (from the inline buffer if x->inl). */
static void x_gather(struct plan *p, struct xfer *x, int n,
		     const uint32_t *lens, uint32_t mis)
{
	x->nl = n;
	if (x->inl)
		lay_out(&p->cur_inl, INL_BUF, n, lens, mis, x->l, &x->lwin);
	else
		lay_out(&p->cur_src, REGION, n, lens, mis, x->l, &x->lwin);
}

/* Responder's receive scatter list; lens include the GRH area on UD. */
static void x_recv(struct plan *p, struct xfer *x, int n, const uint32_t *lens,
		   uint32_t mis)
{
	uint32_t tot = 0;
	int i;

	for (i = 0; i < n; i++)
		tot += lens[i];
	if (tot < hdr_len(p) + x->len)
		die("internal error: receive of %u for a %u-byte message", tot,
		    x->len);
	x->nr = n;
	lay_out(&p->cur_rdst, REGION, n, lens, mis, x->r, &x->rwin);
}

/* A message with one SGE on each side; the receive has 16 bytes spare. */
static struct xfer *add_msg(struct plan *p, struct step *s, enum xkind k,
			    uint32_t len, uint32_t mis)
{
	struct xfer *x = x_new(p, s, k, len);
	uint32_t rl = hdr_len(p) + len + 16;

	x_gather(p, x, 1, &len, mis);
	x_recv(p, x, 1, &rl, (mis * 3) & 7);
	return x;
}

static struct xfer *add_msg_sge(struct plan *p, struct step *s, enum xkind k,
				uint32_t len, int ns, const uint32_t *slens,
				int nr, const uint32_t *rlens, bool inl)
{
	struct xfer *x = x_new(p, s, k, len);
	uint32_t tot = 0;
	int i;

	for (i = 0; i < ns; i++)
		tot += slens[i];
	if (tot != len)
		die("internal error: gather list of %u for %u bytes", tot, len);
	x->inl = inl;
	x_gather(p, x, ns, slens, 1);
	x_recv(p, x, nr, rlens, 3);
	return x;
}

/* RDMA_WRITE(+IMM) of len at remote misalignment roff. */
static struct xfer *add_write(struct plan *p, struct step *s, bool imm,
			      uint32_t len, int ns, const uint32_t *slens,
			      uint32_t roff, bool inl)
{
	struct xfer *x = x_new(p, s, imm ? X_WRITE_IMM : X_WRITE, len);
	struct piece dummy;

	x->inl = inl;
	if (ns)
		x_gather(p, x, ns, slens, roff ^ 5);
	else
		x_gather(p, x, 1, &len, roff ^ 5);
	x->nr = 1;
	lay_out(&p->cur_rdst, REGION, 1, &len, roff, x->r, &x->rwin);
	if (imm) {
		uint32_t l = 16;

		lay_out(&p->cur_rdst, REGION, 1, &l, 0, &x->rcv, &dummy);
	}
	return x;
}

/* RDMA_READ of len into ns local pieces. */
static struct xfer *add_read(struct plan *p, struct step *s, uint32_t len,
			     int ns, const uint32_t *llens, uint32_t roff)
{
	struct xfer *x = x_new(p, s, X_READ, len);

	x->nl = ns ? ns : 1;
	lay_out(&p->cur_ldst, REGION, x->nl, ns ? llens : &len, roff ^ 3, x->l,
		&x->lwin);
	x->nr = 1;
	lay_out(&p->cur_rdst, REGION, 1, &len, roff, x->r, &x->rwin);
	return x;
}

static struct xfer *add_atomic(struct plan *p, struct step *s, enum xkind k,
			       int cidx, uint64_t op1, uint64_t op2)
{
	struct xfer *x = x_new(p, s, k, 8);

	if (p->nres >= NRESULTS)
		die("internal error: too many atomics in one step");
	s->atomics = true;
	x->cidx = cidx;
	x->ridx = p->nres++;
	x->op1 = op1;
	x->op2 = op2;
	x->orig = p->sim[cidx];
	if (k == X_FADD)
		p->sim[cidx] += op1;
	else if (p->sim[cidx] == op1)
		p->sim[cidx] = op2;
	memcpy(s->final, p->sim, sizeof(s->final));
	return x;
}

/* An 8-byte SEND after RDMA writes/atomics: when the responder sees it,
 * everything before it on the QP must be visible (in-order delivery). */
static void add_notify(struct plan *p, struct step *s)
{
	add_msg(p, s, X_SEND, 8, 0);
}

static bool consumes_recv(enum xkind k)
{
	return k == X_SEND || k == X_SEND_IMM || k == X_WRITE_IMM;
}

static void build_plan(struct plan *p)
{
	static const uint32_t base_sizes[] = {
		1, 2, 63, 64, 4095, 4096, 4097, 65536, 1u << 20,
	};
	static const uint32_t ud_sizes[] = {
		1, 2, 63, 64, 1024, 2048, 4095, 4096,
	};
	uint32_t sizes[16], lens[MAXSGE], rl[MAXSGE], n = 0, i, j;
	bool rc = p->tr == TR_RC, ud = p->tr == TR_UD;
	uint32_t hdr = hdr_len(p);
	struct step *s;
	struct xfer *x;

	if (ud) {
		for (i = 0; i < sizeof(ud_sizes) / sizeof(ud_sizes[0]); i++)
			if (ud_sizes[i] < p->mtu)
				sizes[n++] = ud_sizes[i];
		sizes[n++] = p->mtu;
	} else {
		for (i = 0; i < sizeof(base_sizes) / sizeof(base_sizes[0]); i++)
			if (base_sizes[i] < p->max_msg)
				sizes[n++] = base_sizes[i];
		sizes[n++] = p->max_msg;
	}

	/* Every opcode at every size, one WR per step. */
	for (i = 0; i < n; i++) {
		uint32_t mis = (i * 3) & 7;

		s = step_new(p, "send %u", sizes[i]);
		add_msg(p, s, X_SEND, sizes[i], mis);
		s = step_new(p, "send_imm %u", sizes[i]);
		add_msg(p, s, X_SEND_IMM, sizes[i], mis);
		if (ud)
			continue;
		s = step_new(p, "write %u", sizes[i]);
		add_write(p, s, false, sizes[i], 0, NULL, mis, false);
		add_notify(p, s);
		s = step_new(p, "write_imm %u", sizes[i]);
		add_write(p, s, true, sizes[i], 0, NULL, mis, false);
		if (!rc)
			continue;
		s = step_new(p, "read %u", sizes[i]);
		add_read(p, s, sizes[i], 0, NULL, mis);
	}

	/* Multi-SGE gather and scatter. */
	if (p->nsge_send >= 3 && p->nsge_recv >= 3) {
		static const uint32_t s3[] = { 7, 4096 + 13, 1000 };
		static const uint32_t r3[] = { 100, 5000, 3000 };
		static const uint32_t s3ud[] = { 7, 2000, 1000 };
		static const uint32_t r3ud[] = { GRH_LEN, 1000, 4000 };
		uint32_t len;

		s = step_new(p, "send sge 3x3");
		if (ud)
			add_msg_sge(p, s, X_SEND, 3007, 3, s3ud, 3, r3ud, false);
		else
			add_msg_sge(p, s, X_SEND, 5116, 3, s3, 3, r3, false);
		s = step_new(p, "send_imm sge 3x3");
		if (ud)
			add_msg_sge(p, s, X_SEND_IMM, 3007, 3, s3ud, 3, r3ud,
				    false);
		else
			add_msg_sge(p, s, X_SEND_IMM, 5116, 3, s3, 3, r3, false);

		/* as many SGEs as both QPs allow */
		len = ud ? p->mtu - 100 : 20000;
		split(len, p->nsge_send, lens);
		split(hdr + len + 50, p->nsge_recv, rl);
		s = step_new(p, "send sge %ux%u", p->nsge_send, p->nsge_recv);
		add_msg_sge(p, s, X_SEND, len, p->nsge_send, lens,
			    p->nsge_recv, rl, false);

		if (!ud) {
			static const uint32_t bs[] = { 65541, 1, 1000000 };
			static const uint32_t br[] = { 1000000, 65542 + 16 };

			if (p->max_msg >= 1065542) {
				s = step_new(p, "send sge big");
				add_msg_sge(p, s, X_SEND, 1065542, 3, bs, 2, br,
					    false);
			}
			s = step_new(p, "write sge 3");
			add_write(p, s, false, 5116, 3, s3, 3, false);
			add_notify(p, s);
			s = step_new(p, "write_imm sge 3");
			add_write(p, s, true, 5116, 3, s3, 6, false);
			split(len, p->nsge_send, lens);
			s = step_new(p, "write sge %u", p->nsge_send);
			add_write(p, s, false, len, p->nsge_send, lens, 1,
				  false);
			add_notify(p, s);
		}
		if (rc && p->nsge_rd >= 3) {
			s = step_new(p, "read sge 3");
			add_read(p, s, 5116, 3, s3, 2);
			split(len, p->nsge_rd, lens);
			s = step_new(p, "read sge %u", p->nsge_rd);
			add_read(p, s, len, p->nsge_rd, lens, 5);
		}
	} else if (!p->round) {
		printf("datacheck: note: QPs allow only %u send / %u receive "
		       "SGEs, multi-SGE steps skipped\n", p->nsge_send,
		       p->nsge_recv);
	}

	/* Inline data, from memory that is not registered at all. */
	if (p->max_inline) {
		uint32_t mi = p->max_inline, isz[3] = { 1, mi < 63 ? mi : 63, mi };

		if (ud && mi > p->mtu)
			mi = isz[2] = p->mtu;
		for (i = 0; i < 3; i++) {
			if (i && isz[i] == isz[i - 1])
				continue;
			s = step_new(p, "send inline %u", isz[i]);
			x = add_msg(p, s, X_SEND, isz[i], i);
			x->inl = true;
			/* re-lay the source in the inline buffer */
			x_gather(p, x, 1, &isz[i], i);
			s = step_new(p, "send_imm inline %u", isz[i]);
			x = add_msg(p, s, X_SEND_IMM, isz[i], i);
			x->inl = true;
			x_gather(p, x, 1, &isz[i], i);
		}
		if (mi >= 2 && p->nsge_send >= 2) {
			uint32_t two[2] = { mi / 2, mi - mi / 2 };
			uint32_t r1 = hdr + mi + 8;

			s = step_new(p, "send inline sge 2");
			add_msg_sge(p, s, X_SEND, mi, 2, two, 1, &r1, true);
		}
		if (!ud) {
			s = step_new(p, "write inline %u", mi);
			add_write(p, s, false, mi, 0, NULL, 3, true);
			add_notify(p, s);
			s = step_new(p, "write_imm inline %u", mi < 17 ? mi : 17);
			add_write(p, s, true, mi < 17 ? mi : 17, 0, NULL, 1,
				  true);
		}
		/* a chain of inline sends, mostly unsignaled: the sources
		 * are overwritten right after the post returns */
		s = step_new(p, "send inline chain");
		for (i = 0; i < 16; i++) {
			uint32_t l = 1 + (i * 37) % mi;

			x = x_new(p, s, X_SEND, l);
			x->inl = true;
			x->signaled = (i % 4 == 3);
			x_gather(p, x, 1, &l, i & 7);
			rl[0] = hdr + l + 8;
			x_recv(p, x, 1, rl, 0);
		}
	} else if (!p->round) {
		printf("datacheck: note: the QP has max_inline_data 0, "
		       "inline steps skipped\n");
	}

	/* Unsignaled WRs, one post each, every 16th signaled. */
	s = step_new(p, "send unsignaled");
	s->sep_posts = true;
	for (i = 0; i < 64; i++) {
		x = add_msg(p, s, X_SEND, 1 + (i * 97) % (ud ? p->mtu : 3000),
			    i & 7);
		x->signaled = (i % 16 == 15);
	}
	if (!ud) {
		s = step_new(p, "write unsignaled");
		s->sep_posts = true;
		for (i = 0; i < 32; i++) {
			x = add_write(p, s, false, 1 + (i * 131) % 3000, 0,
				      NULL, i & 7, false);
			x->signaled = false;
		}
		add_notify(p, s);
	}

	/* A long chain in one post call, every WR signaled. */
	{
		uint32_t nb = 128;

		if (nb > p->sq - 2)
			nb = p->sq - 2;
		if (nb > p->rq - 2)
			nb = p->rq - 2;
		s = step_new(p, "send chain %u", nb);
		for (i = 0; i < nb; i++)
			add_msg(p, s, (i % 5 == 4) ? X_SEND_IMM : X_SEND,
				1 + (i * 1237) % (ud ? p->mtu : 5000), i & 7);
		s = step_new(p, "send chain %u unsignaled", nb);
		for (i = 0; i < nb; i++) {
			x = add_msg(p, s, X_SEND,
				    1 + (i * 311) % (ud ? p->mtu : 5000), i & 7);
			x->signaled = (i % 10 == 9) || i == nb - 1;
		}
	}

	if (!ud) {
		/* every opcode the transport has, in one chain */
		s = step_new(p, "mixed chain");
		add_write(p, s, false, 4000, 0, NULL, 1, false);
		add_msg(p, s, X_SEND, 100, 2);
		add_write(p, s, true, 300, 0, NULL, 3, false);
		if (rc) {
			add_read(p, s, 5000, 0, NULL, 4);
			add_atomic(p, s, X_FADD, 0, 12345, 0);
			x = add_atomic(p, s, X_CAS, 1, s->init[1], 77);
			x->signaled = false;
			add_read(p, s, 1, 0, NULL, 0);
		}
		add_msg(p, s, X_SEND_IMM, 64, 5);
		x = add_write(p, s, false, 1, 0, NULL, 7, false);
		x->signaled = false;
		add_notify(p, s);
	}

	if (rc) {
		s = step_new(p, "fetch_add separate posts");
		s->sep_posts = true;
		for (i = 0; i < 8; i++)
			add_atomic(p, s, X_FADD, 0, i * 1000 + 1, 0);
		add_notify(p, s);

		s = step_new(p, "fetch_add chain");
		for (i = 0; i < 16; i++) {
			x = add_atomic(p, s, X_FADD, 1 + i % 4,
				       i == 5 ? 1ull << 63 : mix64(i) >> 20, 0);
			x->signaled = (i % 4 == 3);
		}
		add_notify(p, s);

		s = step_new(p, "cmp_swap");
		for (i = 0; i < 6; i++) {
			uint64_t cur = p->sim[5];
			uint64_t cmp = (i % 2) ? cur ^ (1ull << (i * 9)) : cur;

			add_atomic(p, s, X_CAS, 5, cmp, mix64(i + 100));
		}
		add_atomic(p, s, X_CAS, 6, p->sim[6] ^ 1, 1);
		add_atomic(p, s, X_CAS, 6, p->sim[6], 0);
		add_notify(p, s);

		s = step_new(p, "fetch_add wrap");
		add_atomic(p, s, X_FADD, 7, 3, 0);	/* 2^64-2 + 3 = 1 */
		add_atomic(p, s, X_FADD, 7, UINT64_MAX, 0);	/* -1 */
		add_atomic(p, s, X_CAS, 7, 0, 5);
		add_notify(p, s);

		/* all counters, interleaved */
		s = step_new(p, "atomics interleaved");
		for (i = 0; i < 48; i++) {
			j = (i * 5) % NCOUNTERS;
			if (i % 3 == 2)
				add_atomic(p, s, X_CAS, j,
					   (i % 2) ? p->sim[j] : ~p->sim[j], i);
			else
				add_atomic(p, s, X_FADD, j, i * 0x10001ull, 0);
		}
		add_notify(p, s);
	}
}

static void free_plan(struct plan *p)
{
	int i;

	for (i = 0; i < p->nsteps; i++)
		free(p->steps[i].x);
	free(p->steps);
}

/* ------------------------------------------------------------- posting */

static enum ibv_wr_opcode wr_opcode(enum xkind k)
{
	switch (k) {
	case X_SEND:
		return IBV_WR_SEND;
	case X_SEND_IMM:
		return IBV_WR_SEND_WITH_IMM;
	case X_WRITE:
		return IBV_WR_RDMA_WRITE;
	case X_WRITE_IMM:
		return IBV_WR_RDMA_WRITE_WITH_IMM;
	case X_READ:
		return IBV_WR_RDMA_READ;
	case X_FADD:
		return IBV_WR_ATOMIC_FETCH_AND_ADD;
	case X_CAS:
		return IBV_WR_ATOMIC_CMP_AND_SWP;
	}
	abort();
}

static enum ibv_wc_opcode wc_send_opcode(enum xkind k)
{
	switch (k) {
	case X_SEND:
	case X_SEND_IMM:
		return IBV_WC_SEND;
	case X_WRITE:
	case X_WRITE_IMM:
		return IBV_WC_RDMA_WRITE;
	case X_READ:
		return IBV_WC_RDMA_READ;
	case X_FADD:
		return IBV_WC_FETCH_ADD;
	case X_CAS:
		return IBV_WC_COMP_SWAP;
	}
	abort();
}

static uint64_t wrid(uint32_t step_no, int i, bool recv)
{
	return ((uint64_t)recv << 63) | ((uint64_t)step_no << 20) | i;
}

/* The ibv_wr_*() equivalent of ibv_post_send() for one chain. */
static int post_new_api(struct ctx *c, struct ibv_send_wr *wr,
			struct ibv_send_wr **bad)
{
	struct ibv_qp_ex *qx = c->qpx;
	struct ibv_send_wr *first = wr;
	struct ibv_data_buf db[MAXSGE];
	int i, ret;

	ibv_wr_start(qx);
	for (; wr; wr = wr->next) {
		qx->wr_id = wr->wr_id;
		qx->wr_flags = wr->send_flags & (IBV_SEND_SIGNALED |
						 IBV_SEND_SOLICITED |
						 IBV_SEND_FENCE);
		switch (wr->opcode) {
		case IBV_WR_SEND:
			ibv_wr_send(qx);
			break;
		case IBV_WR_SEND_WITH_IMM:
			ibv_wr_send_imm(qx, wr->imm_data);
			break;
		case IBV_WR_RDMA_WRITE:
			ibv_wr_rdma_write(qx, wr->wr.rdma.rkey,
					  wr->wr.rdma.remote_addr);
			break;
		case IBV_WR_RDMA_WRITE_WITH_IMM:
			ibv_wr_rdma_write_imm(qx, wr->wr.rdma.rkey,
					      wr->wr.rdma.remote_addr,
					      wr->imm_data);
			break;
		case IBV_WR_RDMA_READ:
			ibv_wr_rdma_read(qx, wr->wr.rdma.rkey,
					 wr->wr.rdma.remote_addr);
			break;
		case IBV_WR_ATOMIC_FETCH_AND_ADD:
			ibv_wr_atomic_fetch_add(qx, wr->wr.atomic.rkey,
						wr->wr.atomic.remote_addr,
						wr->wr.atomic.compare_add);
			break;
		case IBV_WR_ATOMIC_CMP_AND_SWP:
			ibv_wr_atomic_cmp_swp(qx, wr->wr.atomic.rkey,
					      wr->wr.atomic.remote_addr,
					      wr->wr.atomic.compare_add,
					      wr->wr.atomic.swap);
			break;
		default:
			ibv_wr_abort(qx);
			*bad = wr;
			return EINVAL;
		}
		if (c->o->tr == TR_UD)
			ibv_wr_set_ud_addr(qx, wr->wr.ud.ah, wr->wr.ud.remote_qpn,
					   wr->wr.ud.remote_qkey);
		if (wr->send_flags & IBV_SEND_INLINE) {
			for (i = 0; i < wr->num_sge; i++) {
				db[i].addr = (void *)(uintptr_t)wr->sg_list[i].addr;
				db[i].length = wr->sg_list[i].length;
			}
			ibv_wr_set_inline_data_list(qx, wr->num_sge, db);
		} else if (wr->num_sge == 1) {
			ibv_wr_set_sge(qx, wr->sg_list[0].lkey,
				       wr->sg_list[0].addr,
				       wr->sg_list[0].length);
		} else {
			ibv_wr_set_sge_list(qx, wr->num_sge, wr->sg_list);
		}
	}
	ret = ibv_wr_complete(qx);
	if (ret)
		*bad = first;	/* the whole batch was discarded */
	return ret;
}

static int post_chain(struct ctx *c, struct ibv_send_wr *wr,
		      struct ibv_send_wr **bad)
{
	if (c->o->new_api)
		return post_new_api(c, wr, bad);
	return ibv_post_send(c->qp, wr, bad);
}

/* ------------------------------------------------------------- polling */

/* Polls exactly n completions (in order) within the deadline. */
static int poll_n(struct ctx *c, struct ibv_cq *cq, struct ibv_wc *wc, int n,
		  const char *what)
{
	uint64_t deadline = now_ms() + WAIT_MS;
	int got = 0, r;

	while (got < n) {
		r = ibv_poll_cq(cq, n - got, wc + got);
		if (r < 0) {
			fail(c, "ibv_poll_cq(%s) returned %d", what, r);
			return got;
		}
		got += r;
		if (!r && now_ms() > deadline) {
			fail(c, "timed out after %d s waiting for %s "
			     "completions: got %d of %d", WAIT_MS / 1000, what,
			     got, n);
			return got;
		}
	}
	return got;
}

/* Nothing more may show up: unsignaled WRs make no completions. */
static void expect_no_more(struct ctx *c, struct ibv_cq *cq, const char *what)
{
	struct ibv_wc wc;
	int i, r;

	for (i = 0; i < 200; i++) {
		r = ibv_poll_cq(cq, 1, &wc);
		if (r > 0) {
			fail(c, "unexpected extra %s completion: wr_id %#" PRIx64
			     " status %s opcode %d", what, wc.wr_id,
			     ibv_wc_status_str(wc.status), wc.opcode);
			return;
		}
		if (r < 0) {
			fail(c, "ibv_poll_cq(%s) returned %d", what, r);
			return;
		}
	}
}

/* ----------------------------------------------------------- verifying */

static uint8_t *region_base(struct ctx *c, const struct xfer *x, bool local)
{
	if (local)
		return x->inl ? c->inl : (x->kind == X_READ ? c->dst : c->src);
	return c->dst;
}

/*
 * Checks a scatter list that received hdr + len bytes: bytes [hdr,
 * hdr+len) of the concatenated pieces hold the pattern, the rest of every
 * piece and the rest of the window hold poison.  The first hdr bytes (the
 * GRH area) are copied to 'hdr_out' and not checked here.
 */
static bool check_scatter(struct ctx *c, const char *what, uint8_t *base,
			  const struct piece *pc, int n,
			  const struct piece *win, uint32_t hdr, uint32_t len,
			  uint64_t key, uint8_t poison, uint8_t *hdr_out)
{
	uint64_t stream = 0, nbad = 0;
	uint32_t cur = win->off;
	int64_t bad;
	int i;

	for (i = 0; i < n; i++) {
		uint8_t *p = base + pc[i].off;
		uint32_t plen = pc[i].len, used = 0, h = 0;

		/* poison between the previous piece and this one */
		bad = poison_check(base + cur, pc[i].off - cur, poison);
		if (bad >= 0) {
			fail(c, "%s: byte at window offset %" PRId64 " (outside "
			     "every SGE) was overwritten: %#x, poison %#x",
			     what, cur - win->off + bad, base[cur + bad],
			     poison);
			return false;
		}
		cur = pc[i].off + plen;

		if (stream < hdr) {
			h = hdr - stream < plen ? hdr - stream : plen;
			if (hdr_out)
				memcpy(hdr_out + stream, p, h);
			stream += h;
		}
		if (stream >= hdr && stream < (uint64_t)hdr + len) {
			uint64_t pos = stream - hdr;

			used = plen - h;
			if (used > len - pos)
				used = len - pos;
			bad = pat_check(p + h, used, key, pos, &nbad);
			if (bad >= 0) {
				fail(c, "%s: data mismatch at message offset %"
				     PRIu64 " (SGE %d, +%" PRId64 "): got %#x "
				     "expected %#x; %" PRIu64 " of %u bytes "
				     "wrong", what, pos + bad, i, h + bad,
				     p[h + bad], pat_byte(key, pos + bad), nbad,
				     len);
				return false;
			}
			stream += used;
		}
		bad = poison_check(p + h + used, plen - h - used, poison);
		if (bad >= 0) {
			fail(c, "%s: SGE %d byte %" PRId64 " beyond the message "
			     "(%u bytes) was overwritten: %#x, poison %#x",
			     what, i, h + used + bad, len, p[h + used + bad],
			     poison);
			return false;
		}
	}
	if (stream != (uint64_t)hdr + len) {
		fail(c, "%s: internal error: scatter list holds %" PRIu64
		     " of %u bytes", what, stream, hdr + len);
		return false;
	}
	bad = poison_check(base + cur, win->off + win->len - cur, poison);
	if (bad >= 0) {
		fail(c, "%s: byte %" PRId64 " after the last SGE was "
		     "overwritten: %#x, poison %#x", what, bad, base[cur + bad],
		     poison);
		return false;
	}
	return true;
}

static void fill_gather(uint8_t *base, const struct xfer *x)
{
	uint64_t off = 0;
	int i;

	memset(base + x->lwin.off, JUNK, x->lwin.len);
	for (i = 0; i < x->nl; i++) {
		pat_fill(base + x->l[i].off, x->l[i].len, x->key, off);
		off += x->l[i].len;
	}
}

static bool check_wc(struct ctx *c, const struct ibv_wc *wc, uint64_t wr_id,
		     enum ibv_wc_opcode op, int64_t byte_len, const char *what,
		     const struct xfer *x)
{
	if (wc->status != IBV_WC_SUCCESS) {
		fail(c, "%s completion of %s (%u bytes): status %s (%d), "
		     "vendor_err %#x", what, xkind_name[x->kind], x->len,
		     ibv_wc_status_str(wc->status), wc->status, wc->vendor_err);
		return false;
	}
	if (wc->wr_id != wr_id) {
		fail(c, "%s completion: wr_id %#" PRIx64 ", expected %#" PRIx64
		     " (%s, %u bytes): completions out of order or lost",
		     what, wc->wr_id, wr_id, xkind_name[x->kind], x->len);
		return false;
	}
	if (wc->opcode != op) {
		fail(c, "%s completion of %s: opcode %d, expected %d", what,
		     xkind_name[x->kind], wc->opcode, op);
		return false;
	}
	if (wc->qp_num != c->qp->qp_num) {
		fail(c, "%s completion: qp_num %#x, expected %#x", what,
		     wc->qp_num, c->qp->qp_num);
		return false;
	}
	if (byte_len >= 0 && wc->byte_len != byte_len) {
		fail(c, "%s completion of %s: byte_len %u, expected %" PRId64,
		     what, xkind_name[x->kind], wc->byte_len, byte_len);
		return false;
	}
	return true;
}

static bool check_recv_wc(struct ctx *c, const struct ibv_wc *wc,
			  const struct xfer *x, uint64_t wr_id)
{
	bool ud = c->o->tr == TR_UD, imm = x->kind != X_SEND;
	enum ibv_wc_opcode op = x->kind == X_WRITE_IMM ?
				IBV_WC_RECV_RDMA_WITH_IMM : IBV_WC_RECV;
	/* RDMA_WRITE_WITH_IMM: byte_len is the length of the write (as
	 * mlx5 and rxe report it); its receive buffer is not touched. */
	int64_t blen = x->kind == X_WRITE_IMM ? x->len :
		       (int64_t)x->len + (ud ? GRH_LEN : 0);

	if (!check_wc(c, wc, wr_id, op, blen, "receive", x))
		return false;
	if (imm && !(wc->wc_flags & IBV_WC_WITH_IMM)) {
		fail(c, "receive of %s: IBV_WC_WITH_IMM not set (wc_flags %#x)",
		     xkind_name[x->kind], wc->wc_flags);
		return false;
	}
	if (!imm && (wc->wc_flags & IBV_WC_WITH_IMM)) {
		fail(c, "receive of SEND: IBV_WC_WITH_IMM set (wc_flags %#x)",
		     wc->wc_flags);
		return false;
	}
	if (imm && wc->imm_data != htobe32(x->imm)) {
		fail(c, "receive of %s: imm_data %#x, expected %#x (both in "
		     "network order)", xkind_name[x->kind], wc->imm_data,
		     htobe32(x->imm));
		return false;
	}
	if (ud) {
		if (wc->src_qp != c->peer.qpn) {
			fail(c, "UD receive: src_qp %#x, expected %#x",
			     wc->src_qp, c->peer.qpn);
			return false;
		}
		if (wc->slid != c->peer.lid) {
			fail(c, "UD receive: slid %u, expected %u", wc->slid,
			     c->peer.lid);
			return false;
		}
		if (c->o->gid_idx >= 0 && !(wc->wc_flags & IBV_WC_GRH)) {
			fail(c, "UD receive from a global AH: IBV_WC_GRH not "
			     "set (wc_flags %#x)", wc->wc_flags);
			return false;
		}
	}
	return true;
}

static bool check_grh(struct ctx *c, const uint8_t *raw)
{
	struct ibv_grh grh;

	memcpy(&grh, raw, sizeof(grh));
	if (memcmp(&grh.sgid, c->peer.gid, 16)) {
		fail(c, "UD receive: GRH sgid is not the sender's GID");
		return false;
	}
	if (memcmp(&grh.dgid, &c->gid, 16)) {
		fail(c, "UD receive: GRH dgid is not this port's GID");
		return false;
	}
	if ((be32toh(grh.version_tclass_flow) >> 28) != 6) {
		fail(c, "UD receive: GRH IP version %u, expected 6",
		     be32toh(grh.version_tclass_flow) >> 28);
		return false;
	}
	return true;
}

/* -------------------------------------------------------------- a step */

static void responder_prepare(struct ctx *c, const struct step *s,
			      uint8_t poison)
{
	int i;

	for (i = 0; i < s->nx; i++) {
		const struct xfer *x = &s->x[i];

		switch (x->kind) {
		case X_SEND:
		case X_SEND_IMM:
		case X_WRITE:
			memset(c->dst + x->rwin.off, poison, x->rwin.len);
			break;
		case X_WRITE_IMM:
			memset(c->dst + x->rwin.off, poison, x->rwin.len);
			memset(c->dst + x->rcv.off - GUARD, poison,
			       x->rcv.len + 2 * GUARD);
			break;
		case X_READ:
			memset(c->dst + x->rwin.off, poison, x->rwin.len);
			pat_fill(c->dst + x->r[0].off, x->len, x->key, 0);
			break;
		case X_FADD:
		case X_CAS:
			break;
		}
	}
	if (s->atomics)
		for (i = 0; i < NCOUNTERS; i++)
			c->atom[i] = s->init[i];
}

static bool responder_post_recvs(struct ctx *c, const struct step *s)
{
	struct ibv_recv_wr *wr, *bad = NULL;
	struct ibv_sge *sg;
	int i, j, n = 0, ret;

	wr = calloc(s->nx, sizeof(*wr));
	sg = calloc((size_t)s->nx * MAXSGE, sizeof(*sg));
	if (!wr || !sg)
		die("out of memory");
	for (i = 0; i < s->nx; i++) {
		const struct xfer *x = &s->x[i];
		struct ibv_sge *g = sg + (size_t)n * MAXSGE;

		if (!consumes_recv(x->kind))
			continue;
		wr[n].wr_id = wrid(c->step_no, i, true);
		wr[n].sg_list = g;
		if (x->kind == X_WRITE_IMM) {
			g[0].addr = (uintptr_t)(c->dst + x->rcv.off);
			g[0].length = x->rcv.len;
			g[0].lkey = c->mr->lkey;
			wr[n].num_sge = 1;
		} else {
			for (j = 0; j < x->nr; j++) {
				g[j].addr = (uintptr_t)(c->dst + x->r[j].off);
				g[j].length = x->r[j].len;
				g[j].lkey = c->mr->lkey;
			}
			wr[n].num_sge = x->nr;
		}
		if (n)
			wr[n - 1].next = &wr[n];
		n++;
	}
	ret = n ? ibv_post_recv(c->qp, wr, &bad) : 0;
	if (ret)
		fail(c, "ibv_post_recv of %d receives: %s (bad_wr is #%td)", n,
		     strerror(ret), bad ? bad - wr : -1);
	free(sg);
	free(wr);
	return !ret;
}

static bool responder_complete(struct ctx *c, const struct step *s,
			       uint8_t poison)
{
	uint8_t grh[GRH_LEN];
	struct ibv_wc *wc;
	uint32_t hdr = c->o->tr == TR_UD ? GRH_LEN : 0;
	int i, n = 0, k = 0, got;
	bool ok = true;
	char what[96];

	for (i = 0; i < s->nx; i++)
		n += consumes_recv(s->x[i].kind);
	wc = calloc(n ? n : 1, sizeof(*wc));
	if (!wc)
		die("out of memory");
	got = poll_n(c, c->rcq, wc, n, "receive");
	if (got < n)
		ok = false;

	for (i = 0; i < s->nx && ok; i++) {
		const struct xfer *x = &s->x[i];

		snprintf(what, sizeof(what), "WR #%d %s %u bytes", i,
			 xkind_name[x->kind], x->len);
		if (consumes_recv(x->kind)) {
			if (!check_recv_wc(c, &wc[k++], x,
					   wrid(c->step_no, i, true))) {
				ok = false;
				break;
			}
		}
		switch (x->kind) {
		case X_SEND:
		case X_SEND_IMM:
			memset(grh, 0, sizeof(grh));
			ok = check_scatter(c, what, c->dst, x->r, x->nr,
					   &x->rwin, hdr, x->len, x->key,
					   poison, grh);
			if (ok && hdr && (wc[k - 1].wc_flags & IBV_WC_GRH))
				ok = check_grh(c, grh);
			break;
		case X_WRITE:
		case X_WRITE_IMM:
			/* Placed before any later message completes. */
			ok = check_scatter(c, what, c->dst, x->r, 1, &x->rwin,
					   0, x->len, x->key, poison, NULL);
			if (ok && x->kind == X_WRITE_IMM) {
				struct piece w = {
					x->rcv.off - GUARD, x->rcv.len + 2 * GUARD
				};

				ok = check_scatter(c, "receive buffer of "
						   "RDMA_WRITE_WITH_IMM",
						   c->dst, &x->rcv, 1, &w, 0, 0,
						   0, poison, NULL);
			}
			break;
		case X_READ:
			/* the source must still be intact */
			ok = check_scatter(c, what, c->dst, x->r, 1, &x->rwin,
					   0, x->len, x->key, poison, NULL);
			continue;
		case X_FADD:
		case X_CAS:
			continue;
		}
		if (ok) {
			c->nmsgs++;
			c->nbytes += x->len;
		}
	}
	/* The trailing notify SEND has completed: the atomics before it
	 * must have been executed in order. */
	if (ok && s->atomics) {
		for (i = 0; i < NCOUNTERS; i++) {
			if (c->atom[i] != s->final[i]) {
				fail(c, "atomic counter %d is %#" PRIx64
				     ", expected %#" PRIx64 " (initial %#"
				     PRIx64 ")", i, c->atom[i], s->final[i],
				     s->init[i]);
				ok = false;
				break;
			}
		}
		if (ok)
			c->nmsgs += NCOUNTERS;
	}
	if (ok)
		expect_no_more(c, c->rcq, "receive");
	free(wc);
	return ok && !c->failures;
}

static void requester_prepare(struct ctx *c, const struct step *s,
			      uint8_t poison)
{
	int i;

	for (i = 0; i < s->nx; i++) {
		const struct xfer *x = &s->x[i];

		switch (x->kind) {
		case X_SEND:
		case X_SEND_IMM:
		case X_WRITE:
		case X_WRITE_IMM:
			fill_gather(region_base(c, x, true), x);
			break;
		case X_READ:
			memset(c->dst + x->lwin.off, poison, x->lwin.len);
			break;
		case X_FADD:
		case X_CAS:
			c->res[x->ridx] = 0xdeadbeefcafef00dull ^ x->ridx;
			break;
		}
	}
}

static bool requester_run(struct ctx *c, const struct step *s, uint8_t poison)
{
	struct ibv_send_wr *wr, *bad = NULL;
	struct ibv_sge *sg;
	struct ibv_wc *wc;
	bool ok = true, any_inline = false;
	int i, j, nsig = 0, k, ret;
	char what[96];

	wr = calloc(s->nx, sizeof(*wr));
	sg = calloc((size_t)s->nx * MAXSGE, sizeof(*sg));
	wc = calloc(s->nx, sizeof(*wc));
	if (!wr || !sg || !wc)
		die("out of memory");

	for (i = 0; i < s->nx; i++) {
		const struct xfer *x = &s->x[i];
		struct ibv_sge *g = sg + (size_t)i * MAXSGE;
		uint8_t *base = region_base(c, x, true);

		wr[i].wr_id = wrid(c->step_no, i, false);
		wr[i].opcode = wr_opcode(x->kind);
		wr[i].send_flags = (x->signaled ? IBV_SEND_SIGNALED : 0) |
				   (x->inl ? IBV_SEND_INLINE : 0);
		wr[i].sg_list = g;
		any_inline |= x->inl;
		if (x->kind == X_FADD || x->kind == X_CAS) {
			g[0].addr = (uintptr_t)&c->res[x->ridx];
			g[0].length = 8;
			g[0].lkey = c->mr->lkey;
			wr[i].num_sge = 1;
			wr[i].wr.atomic.remote_addr = c->peer.atom_addr +
						      8 * x->cidx;
			wr[i].wr.atomic.rkey = c->peer.rkey;
			wr[i].wr.atomic.compare_add = x->op1;
			wr[i].wr.atomic.swap = x->op2;
			nsig += x->signaled;
			continue;
		}
		for (j = 0; j < x->nl; j++) {
			g[j].addr = (uintptr_t)(base + x->l[j].off);
			g[j].length = x->l[j].len;
			/* IBV_SEND_INLINE: "The L_Key will not be checked" */
			g[j].lkey = x->inl ? 0 : c->mr->lkey;
		}
		wr[i].num_sge = x->nl;
		if (x->kind == X_SEND_IMM || x->kind == X_WRITE_IMM)
			wr[i].imm_data = htobe32(x->imm);
		if (x->kind == X_WRITE || x->kind == X_WRITE_IMM ||
		    x->kind == X_READ) {
			wr[i].wr.rdma.remote_addr = c->peer.dst_addr +
						    x->r[0].off;
			wr[i].wr.rdma.rkey = c->peer.rkey;
		}
		if (c->o->tr == TR_UD) {
			wr[i].wr.ud.ah = c->ah;
			wr[i].wr.ud.remote_qpn = c->peer.qpn;
			wr[i].wr.ud.remote_qkey = UD_QKEY;
		}
		nsig += x->signaled;
	}

	if (s->sep_posts) {
		for (i = 0; i < s->nx && ok; i++) {
			ret = post_chain(c, &wr[i], &bad);
			if (ret) {
				fail(c, "posting WR #%d (%s, %u bytes): %s", i,
				     xkind_name[s->x[i].kind], s->x[i].len,
				     strerror(ret));
				ok = false;
			} else if (s->x[i].inl) {
				memset(c->inl, 0xcc, INL_BUF);
			}
		}
	} else {
		for (i = 0; i + 1 < s->nx; i++)
			wr[i].next = &wr[i + 1];
		ret = post_chain(c, wr, &bad);
		if (ret) {
			fail(c, "posting a chain of %d WRs: %s (bad_wr is #%td)",
			     s->nx, strerror(ret), bad ? bad - wr : -1);
			ok = false;
		} else if (any_inline) {
			/* inline sources may be reused as soon as the post
			 * returns: whatever is sent now must be the copy */
			memset(c->inl, 0xcc, INL_BUF);
		}
	}

	if (ok && poll_n(c, c->scq, wc, nsig, "send") < nsig)
		ok = false;

	for (i = 0, k = 0; i < s->nx && ok; i++) {
		const struct xfer *x = &s->x[i];
		int64_t blen = -1;

		if (x->kind == X_READ)
			blen = x->len;
		else if (x->kind == X_FADD || x->kind == X_CAS)
			blen = 8;
		if (!x->signaled)
			continue;
		for (j = 0; j < s->nx; j++)
			if (!s->x[j].signaled && wc[k].status == IBV_WC_SUCCESS &&
			    wc[k].wr_id == wrid(c->step_no, j, false))
				break;
		if (j < s->nx) {
			fail(c, "a completion for unsignaled WR #%d (%s) "
			     "appeared (sq_sig_all is 0)", j,
			     xkind_name[s->x[j].kind]);
			ok = false;
			break;
		}
		if (!check_wc(c, &wc[k++], wrid(c->step_no, i, false),
			      wc_send_opcode(x->kind), blen, "send", x)) {
			ok = false;
			break;
		}
	}
	if (ok)
		expect_no_more(c, c->scq, "send");

	/* The last WR is signaled (or its successors are): when its
	 * completion is in, every earlier READ and atomic has finished. */
	for (i = 0; i < s->nx && ok; i++) {
		const struct xfer *x = &s->x[i];

		snprintf(what, sizeof(what), "WR #%d %s %u bytes", i,
			 xkind_name[x->kind], x->len);
		if (x->kind == X_READ) {
			ok = check_scatter(c, what, c->dst, x->l, x->nl,
					   &x->lwin, 0, x->len, x->key, poison,
					   NULL);
			if (ok) {
				c->nmsgs++;
				c->nbytes += x->len;
			}
		} else if (x->kind == X_FADD || x->kind == X_CAS) {
			if (c->res[x->ridx] != x->orig) {
				fail(c, "%s on counter %d (operands %#" PRIx64
				     ", %#" PRIx64 ") returned %#" PRIx64
				     ", expected the original %#" PRIx64, what,
				     x->cidx, x->op1, x->op2, c->res[x->ridx],
				     x->orig);
				ok = false;
			} else {
				c->nmsgs++;
				c->nbytes += 8;
			}
		}
	}
	free(wc);
	free(sg);
	free(wr);
	return ok && !c->failures;
}

static bool run_step(struct ctx *c, const struct step *s)
{
	uint8_t poison = step_poison(c->step_no);
	uint32_t tag = c->step_no << 4;
	bool ok = true, peer_ok = false;

	c->cur = s;
	if (c->requester) {
		requester_prepare(c, s, poison);
	} else {
		responder_prepare(c, s, poison);
		ok = responder_post_recvs(c, s);
	}
	/* 1: receives posted, sources ready */
	if (!sync_tag(c, tag | 1, ok, &peer_ok))
		return false;
	if (!ok || !peer_ok) {
		if (!peer_ok)
			fail(c, "the peer failed to prepare");
		return false;
	}
	if (c->requester)
		ok = requester_run(c, s, poison);
	else
		ok = responder_complete(c, s, poison);
	/* 2: both sides report */
	if (!sync_tag(c, tag | 2, ok, &peer_ok))
		return false;
	if (ok && !peer_ok)
		fail(c, "the peer reported a failure (see its output)");
	if (c->o->verbose)
		printf("round %d %-9s step %3u %-28s %s\n", c->round,
		       c->requester ? "requester" : "responder", c->step_no,
		       s->name, ok && peer_ok ? "ok" : "FAILED");
	c->cur = NULL;
	return ok && peer_ok;
}

/* --------------------------------------------------------------- setup */

static struct ibv_context *open_dev(const char *name)
{
	struct ibv_device **list, *dev = NULL;
	struct ibv_context *ctx;
	int n, i;

	list = ibv_get_device_list(&n);
	if (!list || !n)
		die("no RDMA devices found%s%s (for uib devices, set SYSFS_PATH "
		    "and RDMAV_DRIVERS as 'uibctl env' prints)",
		    list ? "" : ": ", list ? "" : strerror(errno));
	for (i = 0; i < n; i++)
		if (!name || !strcmp(ibv_get_device_name(list[i]), name)) {
			dev = list[i];
			break;
		}
	if (!dev) {
		fprintf(stderr, "datacheck: device %s not found; devices:",
			name);
		for (i = 0; i < n; i++)
			fprintf(stderr, " %s", ibv_get_device_name(list[i]));
		fputc('\n', stderr);
		exit(1);
	}
	ctx = ibv_open_device(dev);
	if (!ctx)
		die("cannot open %s: %s", ibv_get_device_name(dev),
		    strerror(errno));
	ibv_free_device_list(list);
	return ctx;
}

static uint32_t mtu_bytes(enum ibv_mtu m)
{
	return m >= IBV_MTU_256 && m <= IBV_MTU_4096 ? 128u << m : 0;
}

static enum ibv_mtu mtu_enum(uint32_t bytes)
{
	enum ibv_mtu m = IBV_MTU_256;

	while (m < IBV_MTU_4096 && (128u << (m + 1)) <= bytes)
		m++;
	return m;
}

static void create_qp(struct ctx *c, uint32_t inline_req)
{
	enum transport tr = c->o->tr;
	struct ibv_qp_init_attr_ex ia = {
		.send_cq = c->scq,
		.recv_cq = c->rcq,
		.cap = {
			.max_send_wr = SQ_DEPTH,
			.max_recv_wr = RQ_DEPTH,
			.max_send_sge = c->dev.max_sge < MAXSGE ?
					c->dev.max_sge : MAXSGE,
			.max_recv_sge = c->dev.max_sge < MAXSGE ?
					c->dev.max_sge : MAXSGE,
			.max_inline_data = inline_req,
		},
		.qp_type = tr == TR_RC ? IBV_QPT_RC :
			   tr == TR_UC ? IBV_QPT_UC : IBV_QPT_UD,
		.sq_sig_all = 0,
		.comp_mask = IBV_QP_INIT_ATTR_PD,
		.pd = c->pd,
	};

	if (c->dev.max_qp_wr > 0 && (uint32_t)c->dev.max_qp_wr < RQ_DEPTH)
		ia.cap.max_send_wr = ia.cap.max_recv_wr = c->dev.max_qp_wr;
	if (c->o->new_api) {
		ia.comp_mask |= IBV_QP_INIT_ATTR_SEND_OPS_FLAGS;
		ia.send_ops_flags = IBV_QP_EX_WITH_SEND |
				    IBV_QP_EX_WITH_SEND_WITH_IMM;
		if (tr != TR_UD)
			ia.send_ops_flags |= IBV_QP_EX_WITH_RDMA_WRITE |
					     IBV_QP_EX_WITH_RDMA_WRITE_WITH_IMM;
		if (tr == TR_RC)
			ia.send_ops_flags |= IBV_QP_EX_WITH_RDMA_READ |
					     IBV_QP_EX_WITH_ATOMIC_CMP_AND_SWP |
					     IBV_QP_EX_WITH_ATOMIC_FETCH_AND_ADD;
		c->qp = ibv_create_qp_ex(c->ctx, &ia);
	} else {
		struct ibv_qp_init_attr a = {
			.send_cq = ia.send_cq,
			.recv_cq = ia.recv_cq,
			.cap = ia.cap,
			.qp_type = ia.qp_type,
		};

		c->qp = ibv_create_qp(c->pd, &a);
		ia.cap = a.cap;
	}
	if (!c->qp)
		return;
	c->cap = ia.cap;
	if (c->o->new_api) {
		c->qpx = ibv_qp_to_qp_ex(c->qp);
		if (!c->qpx)
			die("ibv_qp_to_qp_ex returned NULL for a QP made by "
			    "ibv_create_qp_ex");
	}
}

/*
 * The registered buffer: private anonymous memory (the usual case),
 * a MAP_SHARED mapping of an unlinked file, or malloc()ed memory that
 * does not start on a page boundary.  Providers may treat these
 * differently (pinning, sharing, copying), so the test can use each.
 */
static void alloc_buf(struct ctx *c)
{
	int fd;

	switch (c->o->mem) {
	case MEM_ANON:
		c->alloc_len = c->buflen;
		c->alloc = mmap(NULL, c->alloc_len, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (c->alloc == MAP_FAILED)
			die("mmap of %zu bytes: %s", c->alloc_len,
			    strerror(errno));
		c->buf = c->alloc;
		break;
	case MEM_FILE:
		c->alloc_len = c->buflen;
		fd = open("/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fd < 0) {
			char name[] = "/tmp/uib_datacheck.XXXXXX";

			fd = mkstemp(name);
			if (fd >= 0)
				unlink(name);
		}
		if (fd < 0 || ftruncate(fd, c->alloc_len))
			die("cannot make a %zu-byte file in /tmp: %s",
			    c->alloc_len, strerror(errno));
		c->alloc = mmap(NULL, c->alloc_len, PROT_READ | PROT_WRITE,
				MAP_SHARED, fd, 0);
		if (c->alloc == MAP_FAILED)
			die("mmap of a file: %s", strerror(errno));
		close(fd);
		c->buf = c->alloc;
		break;
	case MEM_HEAP:
		/* 8-aligned (atomics) but not page-aligned */
		c->alloc_len = c->buflen + 4096;
		c->alloc = malloc(c->alloc_len);
		if (!c->alloc)
			die("out of memory");
		c->buf = (uint8_t *)(((uintptr_t)c->alloc + 4095) & ~4095ul) +
			 24;
		break;
	}
}

static void setup(struct ctx *c)
{
	struct opts *o = c->o;
	int access = IBV_ACCESS_LOCAL_WRITE;
	struct ibv_qp_attr a;
	int ret;

	c->ctx = open_dev(o->dev);
	if (ibv_query_device(c->ctx, &c->dev))
		die("ibv_query_device failed");
	ret = ibv_query_port(c->ctx, o->ib_port, &c->port);
	if (ret)
		die("ibv_query_port(%d): %s", o->ib_port, strerror(ret));
	if (c->port.state != IBV_PORT_ACTIVE)
		die("port %d is %s, not active", o->ib_port,
		    ibv_port_state_str(c->port.state));
	if (o->gid_idx >= 0) {
		if (ibv_query_gid(c->ctx, o->ib_port, o->gid_idx, &c->gid))
			die("ibv_query_gid(port %d, index %d) failed",
			    o->ib_port, o->gid_idx);
	} else if (ibv_query_gid(c->ctx, o->ib_port, 0, &c->gid)) {
		memset(&c->gid, 0, sizeof(c->gid));
	}
	if (o->tr == TR_RC && c->dev.atomic_cap == IBV_ATOMIC_NONE)
		die("the device reports atomic_cap NONE: cannot test atomics");
	if (o->tr == TR_RC && (!c->dev.max_qp_rd_atom ||
			       !c->dev.max_qp_init_rd_atom))
		die("the device reports no RDMA READ/atomic resources");

	c->pd = ibv_alloc_pd(c->ctx);
	if (!c->pd)
		die("ibv_alloc_pd: %s", strerror(errno));

	/* src region | dst region | atomic counters | atomic results */
	c->buflen = 2 * (size_t)REGION + 2 * 4096;
	alloc_buf(c);
	c->src = c->buf;
	c->dst = c->buf + REGION;
	c->atom = (uint64_t *)(c->buf + 2 * (size_t)REGION);
	c->res = (uint64_t *)(c->buf + 2 * (size_t)REGION + 4096);
	c->inl = malloc(INL_BUF);
	if (!c->inl)
		die("out of memory");
	if (o->tr != TR_UD)
		access |= IBV_ACCESS_REMOTE_WRITE;
	if (o->tr == TR_RC)
		access |= IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_ATOMIC;
	c->mr = ibv_reg_mr(c->pd, c->buf, c->buflen, access);
	if (!c->mr)
		die("ibv_reg_mr of %zu bytes: %s", c->buflen, strerror(errno));

	c->scq = ibv_create_cq(c->ctx, CQ_DEPTH, NULL, NULL, 0);
	c->rcq = ibv_create_cq(c->ctx, CQ_DEPTH, NULL, NULL, 0);
	if (!c->scq || !c->rcq)
		die("ibv_create_cq(%d): %s", CQ_DEPTH, strerror(errno));

	create_qp(c, INLINE_REQ);
	if (!c->qp) {
		ret = errno;
		create_qp(c, 0);
		if (!c->qp)
			die("cannot create a %s QP: %s", tr_name[o->tr],
			    strerror(errno));
		printf("datacheck: note: QP creation with max_inline_data %d "
		       "failed (%s); testing without inline data\n",
		       INLINE_REQ, strerror(ret));
	}

	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_INIT;
	a.pkey_index = 0;
	a.port_num = o->ib_port;
	if (o->tr == TR_UD) {
		a.qkey = UD_QKEY;
		ret = ibv_modify_qp(c->qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
				    IBV_QP_PORT | IBV_QP_QKEY);
	} else {
		a.qp_access_flags = access & ~IBV_ACCESS_LOCAL_WRITE;
		ret = ibv_modify_qp(c->qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
				    IBV_QP_PORT | IBV_QP_ACCESS_FLAGS);
	}
	if (ret)
		die("modify QP to INIT: %s", strerror(ret));

	c->me.transport = o->tr;
	c->me.new_api = o->new_api;
	c->me.lid = c->port.lid;
	c->me.qpn = c->qp->qp_num;
	c->me.psn = lrand48() & 0xffffff;
	c->me.rkey = c->mr->rkey;
	memcpy(c->me.gid, &c->gid, 16);
	c->me.dst_addr = (uintptr_t)c->dst;
	c->me.atom_addr = (uintptr_t)c->atom;
	c->me.region = REGION;
	c->me.max_msg = c->port.max_msg_sz;
	c->me.mtu = mtu_bytes(c->port.active_mtu);
	c->me.max_send_sge = c->cap.max_send_sge;
	c->me.max_recv_sge = c->cap.max_recv_sge;
	c->me.max_sge_rd = c->dev.max_sge_rd;
	c->me.max_inline = c->cap.max_inline_data;
	c->me.max_send_wr = c->cap.max_send_wr;
	c->me.max_recv_wr = c->cap.max_recv_wr;
	c->me.max_rd_atomic = c->dev.max_qp_init_rd_atom < 16 ?
			      c->dev.max_qp_init_rd_atom : 16;
	c->me.max_dest_rd_atomic = c->dev.max_qp_rd_atom < 16 ?
				   c->dev.max_qp_rd_atom : 16;
	c->me.seed = o->seed;
}

static void connect_qp(struct ctx *c)
{
	struct opts *o = c->o;
	struct ibv_ah_attr ah = {
		.dlid = c->peer.lid,
		.sl = 0,
		.src_path_bits = 0,
		.port_num = o->ib_port,
	};
	uint32_t mtu = c->me.mtu < c->peer.mtu ? c->me.mtu : c->peer.mtu;
	struct ibv_qp_attr a;
	int ret;

	if (o->gid_idx >= 0) {
		ah.is_global = 1;
		memcpy(&ah.grh.dgid, c->peer.gid, 16);
		ah.grh.sgid_index = o->gid_idx;
		ah.grh.hop_limit = 64;
	}

	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTR;
	if (o->tr == TR_UD) {
		ret = ibv_modify_qp(c->qp, &a, IBV_QP_STATE);
	} else {
		a.path_mtu = mtu_enum(mtu);
		a.dest_qp_num = c->peer.qpn;
		a.rq_psn = c->peer.psn;
		a.ah_attr = ah;
		if (o->tr == TR_RC) {
			a.max_dest_rd_atomic = c->me.max_dest_rd_atomic;
			a.min_rnr_timer = 12;
			ret = ibv_modify_qp(c->qp, &a, IBV_QP_STATE | IBV_QP_AV |
					    IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
					    IBV_QP_RQ_PSN |
					    IBV_QP_MAX_DEST_RD_ATOMIC |
					    IBV_QP_MIN_RNR_TIMER);
		} else {
			ret = ibv_modify_qp(c->qp, &a, IBV_QP_STATE | IBV_QP_AV |
					    IBV_QP_PATH_MTU | IBV_QP_DEST_QPN |
					    IBV_QP_RQ_PSN);
		}
	}
	if (ret)
		die("modify QP to RTR: %s", strerror(ret));

	memset(&a, 0, sizeof(a));
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = c->me.psn;
	if (o->tr == TR_RC) {
		a.timeout = 14;
		a.retry_cnt = 7;
		a.rnr_retry = 7;
		a.max_rd_atomic = c->me.max_rd_atomic <
				  c->peer.max_dest_rd_atomic ?
				  c->me.max_rd_atomic :
				  c->peer.max_dest_rd_atomic;
		ret = ibv_modify_qp(c->qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN |
				    IBV_QP_TIMEOUT | IBV_QP_RETRY_CNT |
				    IBV_QP_RNR_RETRY | IBV_QP_MAX_QP_RD_ATOMIC);
	} else {
		ret = ibv_modify_qp(c->qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN);
	}
	if (ret)
		die("modify QP to RTS: %s", strerror(ret));

	if (o->tr == TR_UD) {
		c->ah = ibv_create_ah(c->pd, &ah);
		if (!c->ah)
			die("ibv_create_ah: %s", strerror(errno));
	}
}

static int teardown(struct ctx *c)
{
	int ret, bad = 0;

	if (c->ah && (ret = ibv_destroy_ah(c->ah)))
		bad = fprintf(stderr, "datacheck: ibv_destroy_ah: %s\n",
			      strerror(ret));
	if ((ret = ibv_destroy_qp(c->qp)))
		bad = fprintf(stderr, "datacheck: ibv_destroy_qp: %s\n",
			      strerror(ret));
	if ((ret = ibv_destroy_cq(c->scq)) || (ret = ibv_destroy_cq(c->rcq)))
		bad = fprintf(stderr, "datacheck: ibv_destroy_cq: %s\n",
			      strerror(ret));
	if ((ret = ibv_dereg_mr(c->mr)))
		bad = fprintf(stderr, "datacheck: ibv_dereg_mr: %s\n",
			      strerror(ret));
	if ((ret = ibv_dealloc_pd(c->pd)))
		bad = fprintf(stderr, "datacheck: ibv_dealloc_pd: %s\n",
			      strerror(ret));
	if ((ret = ibv_close_device(c->ctx)))
		bad = fprintf(stderr, "datacheck: ibv_close_device: %s\n",
			      strerror(ret));
	if (c->o->mem == MEM_HEAP)
		free(c->alloc);
	else
		munmap(c->alloc, c->alloc_len);
	free(c->inl);
	return bad ? -1 : 0;
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f, const char *argv0)
{
	fprintf(f,
		"usage: %s [options]            run the server\n"
		"       %s [options] HOST       run the client against HOST\n"
		"  -d, --ib-dev=DEV      device (default: the first one)\n"
		"  -i, --ib-port=PORT    port of the device (default 1)\n"
		"  -p, --port=TCPPORT    TCP port for the exchange (default %d)\n"
		"  -g, --gid-idx=IDX     address by GID IDX (default: by LID)\n"
		"  -c, --transport=T     rc, uc or ud (default rc)\n"
		"  -N, --new-api         post with ibv_wr_*() on an\n"
		"                        ibv_create_qp_ex() QP\n"
		"  -m, --mem=KIND        registered memory: anon (private\n"
		"                        anonymous, default), file (MAP_SHARED\n"
		"                        file) or heap (malloc, not page-aligned)\n"
		"  -S, --seed=N          pattern seed (client; default random)\n"
		"  -t, --timeout=SEC     abort the whole run after SEC (default 60)\n"
		"  -v, --verbose         print every step\n",
		argv0, argv0, DEFAULT_TCP_PORT);
}

static long parse_num(const char *s, const char *what, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "datacheck: bad %s '%s' (expected %ld..%ld)\n",
			what, s, lo, hi);
		exit(2);
	}
	return v;
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option lopts[] = {
		{ "ib-dev", required_argument, NULL, 'd' },
		{ "ib-port", required_argument, NULL, 'i' },
		{ "port", required_argument, NULL, 'p' },
		{ "gid-idx", required_argument, NULL, 'g' },
		{ "transport", required_argument, NULL, 'c' },
		{ "new-api", no_argument, NULL, 'N' },
		{ "mem", required_argument, NULL, 'm' },
		{ "seed", required_argument, NULL, 'S' },
		{ "timeout", required_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	int ch;

	o->ib_port = 1;
	o->tcp_port = DEFAULT_TCP_PORT;
	o->gid_idx = -1;
	o->tr = TR_RC;
	o->timeout = 60;
	while ((ch = getopt_long(argc, argv, "d:i:p:g:c:Nm:S:t:vh", lopts,
				 NULL)) != -1) {
		switch (ch) {
		case 'd':
			o->dev = optarg;
			break;
		case 'i':
			o->ib_port = parse_num(optarg, "IB port", 1, 255);
			break;
		case 'p':
			o->tcp_port = parse_num(optarg, "TCP port", 1, 65535);
			break;
		case 'g':
			o->gid_idx = parse_num(optarg, "GID index", 0, 255);
			break;
		case 'c':
			if (!strcasecmp(optarg, "rc"))
				o->tr = TR_RC;
			else if (!strcasecmp(optarg, "uc"))
				o->tr = TR_UC;
			else if (!strcasecmp(optarg, "ud"))
				o->tr = TR_UD;
			else {
				fprintf(stderr, "datacheck: unknown transport "
					"'%s' (rc, uc or ud)\n", optarg);
				exit(2);
			}
			break;
		case 'N':
			o->new_api = true;
			break;
		case 'm':
			if (!strcmp(optarg, "anon"))
				o->mem = MEM_ANON;
			else if (!strcmp(optarg, "file"))
				o->mem = MEM_FILE;
			else if (!strcmp(optarg, "heap"))
				o->mem = MEM_HEAP;
			else {
				fprintf(stderr, "datacheck: unknown memory kind "
					"'%s' (anon, file or heap)\n", optarg);
				exit(2);
			}
			break;
		case 'S':
			errno = 0;
			o->seed = strtoull(optarg, NULL, 0);
			if (errno)
				exit(2);
			o->seed_set = true;
			break;
		case 't':
			o->timeout = parse_num(optarg, "timeout", 1, 3600);
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'h':
			usage(stdout, argv[0]);
			exit(0);
		default:
			usage(stderr, argv[0]);
			exit(2);
		}
	}
	if (optind + 1 == argc)
		o->server = argv[optind];
	else if (optind < argc) {
		usage(stderr, argv[0]);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	struct opts o = { 0 };
	struct ctx c = { .o = &o, .sock = -1 };
	struct plan plan;
	bool ok = true, peer_ok = false;
	int round, i;

	parse_args(argc, argv, &o);
	signal(SIGPIPE, SIG_IGN);
	alarm(o.timeout);	/* last resort: SIGALRM kills a hung run */
	srand48(getpid() ^ time(NULL));
	if (!o.seed_set)
		o.seed = ((uint64_t)lrand48() << 32) ^ lrand48() ^ now_ms();

	setup(&c);
	c.sock = o.server ? tcp_client(o.server, o.tcp_port) :
			    tcp_server(o.tcp_port);
	info_exchange(&c);
	connect_qp(&c);
	/* both QPs must be in RTS/RTR before anyone sends */
	if (!sync_tag(&c, 0xc0ffee, true, NULL))
		die("cannot synchronise with the peer after connecting");

	for (round = 0; round < 2 && ok; round++) {
		const struct info *req, *rsp;

		/* round 0: the client requests; round 1: the server */
		c.requester = (round == 0) == (o.server != NULL);
		c.round = round;
		req = c.requester ? &c.me : &c.peer;
		rsp = c.requester ? &c.peer : &c.me;
		memset(&plan, 0, sizeof(plan));
		plan.tr = o.tr;
		plan.round = round;
		plan.seed = o.server ? c.me.seed : c.peer.seed;
		plan.max_msg = req->max_msg < rsp->max_msg ? req->max_msg :
							     rsp->max_msg;
		if (plan.max_msg > CAP_MSG)
			plan.max_msg = CAP_MSG;
		plan.mtu = req->mtu < rsp->mtu ? req->mtu : rsp->mtu;
		plan.nsge_send = req->max_send_sge < MAXSGE ?
				 req->max_send_sge : MAXSGE;
		plan.nsge_recv = rsp->max_recv_sge < MAXSGE ?
				 rsp->max_recv_sge : MAXSGE;
		plan.nsge_rd = req->max_sge_rd < plan.nsge_send ?
			       req->max_sge_rd : plan.nsge_send;
		plan.max_inline = req->max_inline < INL_BUF / 64 ?
				  req->max_inline : INL_BUF / 64;
		plan.sq = req->max_send_wr;
		plan.rq = rsp->max_recv_wr;
		if (plan.sq < 70 || plan.rq < 70 || !plan.mtu ||
		    plan.max_msg < 4096)
			die("the QPs are too small to test (send queue %u, "
			    "receive queue %u, MTU %u, max message %u)",
			    plan.sq, plan.rq, plan.mtu, plan.max_msg);
		build_plan(&plan);

		for (i = 0; i < plan.nsteps && ok; i++) {
			c.step_no = round * 1000 + i;
			ok = run_step(&c, &plan.steps[i]);
		}
		free_plan(&plan);
	}

	/* the final word: both must have passed every step */
	if (ok && (!sync_tag(&c, 0xd0d0, true, &peer_ok) || !peer_ok))
		ok = false;
	close(c.sock);
	if (teardown(&c))
		ok = false;
	if (ok && (c.failures || !c.nmsgs)) {
		fprintf(stderr, "datacheck: nothing was verified\n");
		ok = false;
	}
	if (!ok) {
		fprintf(stderr, "datacheck %s: FAILED (%d failure(s); %"
			PRIu64 " messages, %" PRIu64 " bytes verified before)\n",
			tr_name[o.tr], c.failures, c.nmsgs, c.nbytes);
		return 1;
	}
	printf("datacheck %s: %" PRIu64 " messages, %" PRIu64
	       " bytes verified\n", tr_name[o.tr], c.nmsgs, c.nbytes);
	return 0;
}
