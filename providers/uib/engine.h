/* SPDX-License-Identifier: MIT */
/*
 * Inside the data path: what the posting code (send.c), the engine that
 * executes and retries send work (engine.c) and the responder (responder.c)
 * share.  Not seen by the verbs layer.
 *
 * The requester executes its own WQEs (engine.c): it checks the local side,
 * finds the destination (xport.c), and calls the responder, which applies
 * the receive-side semantics to the destination QP's queues and memory:
 * claiming the receive WQE, key/PD/access checks, placing data, writing the
 * responder's CQE, moving it to error, SRQ-limit and last-WQE events,
 * device-wide atomics, the UD GRH, multicast fan-out (mcast.c).  The local
 * transport calls the responder inline; a wire transport would call the
 * same functions from its receive thread.
 */
#ifndef UIB_ENGINE_H
#define UIB_ENGINE_H

#include "uib.h"

enum xres {
	X_DONE,		/* completed, *status says how */
	X_RNR,		/* responder had no receive posted */
	X_UNREACH,	/* responder not there or not ready */
	X_CQ_FULL,	/* our own CQ has no room for the completion */
};

/* The local side of a WQE, checked against our MRs. */
struct xfer {
	struct iovec iov[UIB_MAX_SGE + 2];	/* +2: a UD GRH, a TSO header */
	int n;
	size_t len;
};

static inline struct ibv_sge *wqe_sges(struct uib_swqe *w)
{
	return (struct ibv_sge *)w->payload;
}

/* IBV_WR_TSO: the header, after the WQE's SGEs. */
static inline uint8_t *uib_tso_header(struct uib_swqe *w)
{
	return w->payload + w->num_sge * sizeof(struct ibv_sge);
}

/* responder.c: receive-side semantics, applied to peer p on behalf of
 * requester qp.  *rst is the requester's completion status. */
bool uib_resp_ready(const struct uib_peer *p);
enum xres uib_resp_send(struct uib_qp *qp, struct uib_peer *p,
			struct uib_swqe *w, struct xfer *x,
			const struct ibv_ah_attr *ah, uint32_t *rst);
enum xres uib_resp_write(struct uib_qp *qp, struct uib_peer *p,
			 struct uib_swqe *w, struct xfer *x, uint32_t *rst);
enum xres uib_resp_read(struct uib_qp *qp, struct uib_peer *p,
			struct uib_swqe *w, struct xfer *x, uint32_t *rst);
enum xres uib_resp_atomic(struct uib_qp *qp, struct uib_peer *p,
			  struct uib_swqe *w, struct xfer *x, uint32_t *rst);
void uib_build_grh(struct uib_qp *qp, const struct ibv_ah_attr *ah,
		   size_t len, uint8_t *grh);

/* mcast.c: sends a datagram to every member of its group (w->ah), as
 * source QPN src_qpn. */
void uib_mcast_send(struct uib_qp *qp, struct uib_swqe *w, struct xfer *x,
		    uint32_t src_qpn);

/* engine.c */
bool uib_port_active(const struct uib_state *st, uint8_t port);

#endif /* UIB_ENGINE_H */
