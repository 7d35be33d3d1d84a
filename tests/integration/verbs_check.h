/* SPDX-License-Identifier: MIT */
/*
 * The harness of uib_verbs_errors: one device opened by main(), reporting
 * ("ok NAME" / "FAIL NAME: expected X got Y"), completion and state
 * expectations, and RC QP pairs on the device.  Checks live in
 * verbs_errors.c (bad input, remote and local errors) and
 * verbs_hardening.c (issue 7 regressions).
 */
#ifndef UIB_VERBS_CHECK_H
#define UIB_VERBS_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include <infiniband/verbs.h>

#define WAIT_MS		5000
#define BUF_LEN		(64 * 1024)
#define POISON		0x5c
#define CQ_DEPTH	64

struct env {
	const char *devname;
	struct ibv_context *ctx;
	struct ibv_device_attr dev;
	struct ibv_port_attr port;
	int ib_port;
	bool verbose;
	struct ibv_pd *pd, *pd2;
	uint8_t *abuf, *bbuf;		/* A's local memory, B's target */
	struct ibv_mr *amr, *bmr;	/* amr: LOCAL_WRITE; bmr: all access */
};


extern int npass, nfail;

#define RTR_MASK (IBV_QP_STATE | IBV_QP_AV | IBV_QP_PATH_MTU | \
		  IBV_QP_DEST_QPN | IBV_QP_RQ_PSN | \
		  IBV_QP_MAX_DEST_RD_ATOMIC | IBV_QP_MIN_RNR_TIMER)
#define RTS_MASK (IBV_QP_STATE | IBV_QP_SQ_PSN | IBV_QP_TIMEOUT | \
		  IBV_QP_RETRY_CNT | IBV_QP_RNR_RETRY | \
		  IBV_QP_MAX_QP_RD_ATOMIC)

struct pair_opts {
	unsigned int b_access;		/* B's qp_access_flags */
	uint8_t rnr_retry, retry_cnt, timeout;
};

extern const struct pair_opts default_opts;

struct pair {
	struct ibv_qp *a, *b;
	struct ibv_cq *as, *ar, *bs, *br;
	struct ibv_qp_cap acap;
};

void pass(const char *name);
void __attribute__((format(printf, 2, 3)))
failf(const char *name, const char *fmt, ...);
const char *errname(int e);
const char *statname(int s);
const char *qpsname(int s);
bool expect_ret(const char *name, int got, int want);
bool expect_null(const char *name, const void *p, int err, int want);
uint64_t now_ms(void);
int poll_one(struct ibv_cq *cq, struct ibv_wc *wc);
bool expect_wc(const char *name, struct ibv_cq *cq, uint64_t wr_id,
	       enum ibv_wc_status want);
bool expect_wc2(const char *name, struct ibv_cq *cq, uint64_t wr_id,
		enum ibv_wc_status w1, enum ibv_wc_status w2);
bool expect_wc_error(const char *name, struct ibv_cq *cq,
		     uint64_t wr_id);
bool expect_no_wc(const char *name, struct ibv_cq *cq);
int qp_state(struct ibv_qp *qp);
bool expect_state(const char *name, struct ibv_qp *qp,
		  enum ibv_qp_state want);
bool expect_untouched(const char *name, struct env *e, size_t off,
		      size_t len);
int post(struct ibv_qp *qp, enum ibv_wr_opcode op, uint64_t wr_id,
	 void *laddr, uint32_t len, uint32_t lkey, uint64_t raddr,
	 uint32_t rkey);
int post_recv(struct ibv_qp *qp, uint64_t wr_id, void *addr,
	      uint32_t len, uint32_t lkey);
struct ibv_qp *make_qp(struct ibv_pd *pd, struct ibv_cq *scq,
		       struct ibv_cq *rcq, enum ibv_qp_type type,
		       struct ibv_qp_cap *cap);
int to_init(struct env *e, struct ibv_qp *qp, unsigned int access);
void rtr_attr(struct env *e, struct ibv_qp_attr *a, uint32_t dest_qpn);
int connect_one(struct env *e, struct ibv_qp *qp, uint32_t dest,
		const struct pair_opts *po);
void pair_destroy(struct pair *p);
bool pair_make(struct env *e, struct pair *p, const char *name,
	       const struct pair_opts *po);
void poison_b(struct env *e);

/* verbs_hardening.c */
void run_hardening_checks(struct env *e);

#endif /* UIB_VERBS_CHECK_H */
