/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the stress programs (cq_stress.c, corrupt_check.c):
 * messages, a seeded generator, bounded socket I/O, device opening and RC/UD
 * QP state transitions.  Header-only (static functions), no state.
 */
#ifndef UIB_STRESS_COMMON_H
#define UIB_STRESS_COMMON_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <infiniband/verbs.h>

static const char *st_role = "?";

static inline uint64_t st_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline uint64_t st_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void __attribute__((format(printf, 1, 2))) st_say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "%s[%d]: ", st_role, (int)getpid());
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	strcat(buf, "\n");
	/* One write: lines of many processes do not interleave. */
	if (write(STDOUT_FILENO, buf, strlen(buf)) < 0)
		return;
}

#define st_die(code, ...) do { st_say(__VA_ARGS__); _exit(code); } while (0)

static inline uint64_t st_mix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* splitmix64 stream */
struct st_rng {
	uint64_t s;
};

static inline uint64_t st_rand(struct st_rng *r)
{
	r->s += 0x9e3779b97f4a7c15ull;
	return st_mix64(r->s);
}

/* 0 .. n-1 */
static inline uint64_t st_below(struct st_rng *r, uint64_t n)
{
	return n ? st_rand(r) % n : 0;
}

/* Reads or writes exactly len bytes within ms milliseconds: 0, or -1 on
 * timeout, EOF or error. */
static int st_xfer(int fd, void *buf, size_t len, bool out, int ms)
{
	uint64_t end = st_now_ms() + (uint64_t)ms;
	uint8_t *p = buf;

	while (len) {
		struct pollfd pf = { .fd = fd, .events = out ? POLLOUT : POLLIN };
		uint64_t t = st_now_ms();
		ssize_t n;
		int r;

		if (t >= end)
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

static struct ibv_context *st_open(const char *name)
{
	struct ibv_device **list = ibv_get_device_list(NULL);
	struct ibv_context *ctx;
	int i;

	if (!list)
		st_die(4, "ibv_get_device_list: %s", strerror(errno));
	for (i = 0; list[i]; i++)
		if (!name || !strcmp(ibv_get_device_name(list[i]), name))
			break;
	if (!list[i])
		st_die(4, "no device %s", name ? name : "(any)");
	ctx = ibv_open_device(list[i]);
	ibv_free_device_list(list);
	if (!ctx)
		st_die(4, "ibv_open_device: %s", strerror(errno));
	/* Async events are polled, never waited for. */
	fcntl(ctx->async_fd, F_SETFL, fcntl(ctx->async_fd, F_GETFL) | O_NONBLOCK);
	return ctx;
}

static inline uint16_t st_lid(struct ibv_context *ctx)
{
	struct ibv_port_attr pa;

	if (ibv_query_port(ctx, 1, &pa))
		st_die(4, "ibv_query_port: %s", strerror(errno));
	return pa.lid;
}

static struct ibv_qp *st_rc_qp(struct ibv_pd *pd, struct ibv_cq *scq,
			       struct ibv_cq *rcq, uint32_t sq, uint32_t rq,
			       uint32_t max_inline)
{
	struct ibv_qp_init_attr ia = {
		.send_cq = scq, .recv_cq = rcq, .qp_type = IBV_QPT_RC,
		.cap = { .max_send_wr = sq, .max_recv_wr = rq,
			 .max_send_sge = 1, .max_recv_sge = 1,
			 .max_inline_data = max_inline },
	};
	struct ibv_qp_attr qa = {
		.qp_state = IBV_QPS_INIT, .port_num = 1,
		.qp_access_flags = IBV_ACCESS_REMOTE_WRITE,
	};
	struct ibv_qp *qp = ibv_create_qp(pd, &ia);

	if (!qp)
		st_die(4, "ibv_create_qp(RC): %s", strerror(errno));
	if (ibv_modify_qp(qp, &qa, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
				   IBV_QP_PORT | IBV_QP_ACCESS_FLAGS))
		st_die(4, "RC QP to INIT: %s", strerror(errno));
	return qp;
}

/* RTR then RTS; rnr_retry 7 = forever, timeout/retry as given. */
static void st_rc_connect(struct ibv_qp *qp, uint32_t dqpn, uint16_t dlid,
			  uint8_t timeout, uint8_t retry_cnt, uint8_t rnr_retry,
			  uint8_t min_rnr_timer)
{
	struct ibv_qp_attr qa = {
		.qp_state = IBV_QPS_RTR, .path_mtu = IBV_MTU_4096,
		.dest_qp_num = dqpn, .rq_psn = 0, .max_dest_rd_atomic = 1,
		.min_rnr_timer = min_rnr_timer,
		.ah_attr = { .dlid = dlid, .port_num = 1 },
	};

	if (ibv_modify_qp(qp, &qa, IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU |
				   IBV_QP_DEST_QPN | IBV_QP_RQ_PSN |
				   IBV_QP_MAX_DEST_RD_ATOMIC |
				   IBV_QP_MIN_RNR_TIMER))
		st_die(4, "RC QP to RTR: %s", strerror(errno));
	memset(&qa, 0, sizeof(qa));
	qa.qp_state = IBV_QPS_RTS;
	qa.timeout = timeout;
	qa.retry_cnt = retry_cnt;
	qa.rnr_retry = rnr_retry;
	qa.sq_psn = 0;
	qa.max_rd_atomic = 1;
	if (ibv_modify_qp(qp, &qa, IBV_QP_STATE | IBV_QP_TIMEOUT |
				   IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY |
				   IBV_QP_SQ_PSN | IBV_QP_MAX_QP_RD_ATOMIC))
		st_die(4, "RC QP to RTS: %s", strerror(errno));
}

/* Reads every pending async event (non-blocking fd); returns how many,
 * and calls fn on each. */
static int st_drain_async(struct ibv_context *ctx,
			  void (*fn)(const struct ibv_async_event *, void *),
			  void *arg)
{
	struct pollfd pf = { .fd = ctx->async_fd, .events = POLLIN };
	struct ibv_async_event ev;
	int n = 0;

	while (poll(&pf, 1, 0) == 1 && (pf.revents & POLLIN)) {
		if (ibv_get_async_event(ctx, &ev))
			break;
		if (fn)
			fn(&ev, arg);
		ibv_ack_async_event(&ev);
		n++;
	}
	return n;
}

#endif /* UIB_STRESS_COMMON_H */
