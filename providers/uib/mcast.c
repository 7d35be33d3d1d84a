// SPDX-License-Identifier: MIT
/*
 * UD multicast: ibv_attach_mcast / ibv_detach_mcast, and the fan-out of a
 * datagram sent to a multicast group.
 *
 * Attachments live in the device's shared state (state.h, uib_mcast_slot).
 * There is no subnet manager to hand out multicast LIDs, so a datagram
 * reaches every QP attached to its group on every uib device of the
 * subnet, found by the MGID in its GRH; an AH without a GRH matches by the
 * MLID given at attach time.  Each member is checked like a unicast
 * destination (UD, ready, Q_Key, its port ACTIVE) and gets its own copy,
 * GRH first (IBA 10.5.2).  IBV_QP_CREATE_BLOCK_SELF_MCAST_LB keeps a copy
 * from returning to the sending QP.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "engine.h"

/* IBA 4.1.1: multicast LIDs are 0xC000-0xFFFE; 0xFFFF is permissive. */
static bool mlid_ok(uint16_t lid)
{
	return lid >= 0xc000 && lid != 0xffff;
}

int uib_attach_mcast(struct ibv_qp *ibqp, const union ibv_gid *gid,
		     uint16_t lid)
{
	struct uib_qp *qp = to_uqp(ibqp);
	struct uib_mcast_slot m = {
		.ctx = qp->ctx->ctx_slot,
		.lid = lid,
		.qpn = qp->qpn,
		.incarnation = atomic_load(&qp->slot->incarnation),
	};
	int ret;

	/* As the kernel's ib_attach_mcast(): UD only, a multicast GID
	 * (IBA 4.1.1: first octet 0xFF) and a multicast LID. */
	if (ibqp->qp_type != IBV_QPT_UD || gid->raw[0] != 0xff ||
	    !mlid_ok(lid))
		return EINVAL;
	memcpy(m.gid, gid->raw, 16);
	ret = uib_mcast_add(&qp->ctx->st, &m, UIB_MAX_MCAST_GRP,
			    UIB_MAX_MCAST_QP_ATTACH);
	if (ret == -EEXIST)
		return 0;	/* attached already: nothing to do */
	if (ret)
		return -ret;
	atomic_fetch_add(&qp->nmcast, 1);
	return 0;
}

int uib_detach_mcast(struct ibv_qp *ibqp, const union ibv_gid *gid,
		     uint16_t lid)
{
	struct uib_qp *qp = to_uqp(ibqp);
	int ret;

	if (ibqp->qp_type != IBV_QPT_UD || gid->raw[0] != 0xff)
		return EINVAL;
	ret = uib_mcast_del(&qp->ctx->st, qp->qpn, gid->raw);
	if (ret)
		return ret == -ENOENT ? EINVAL : -ret;
	atomic_fetch_sub(&qp->nmcast, 1);
	return 0;
}

/* Delivers to one member, if it may receive this datagram. */
static void member_send(struct uib_qp *qp, struct uib_devref *dev,
			const struct uib_mcast_slot *m, struct uib_swqe *w,
			struct xfer *x, uint32_t src_qpn)
{
	struct uib_qp_slot *s = uib_qp_lookup(&dev->st, m->qpn);
	struct uib_peer p;
	uint32_t qkey, st = IBV_WC_SUCCESS;

	if (!s || atomic_load_explicit(&s->incarnation, memory_order_acquire) !=
			  m->incarnation)
		return;		/* stale: the QP is gone */
	if (qp->block_mcast_lb &&
	    dev->st.sh->node_guid == qp->ctx->st.sh->node_guid &&
	    m->qpn == src_qpn)
		return;
	if (uib_peer_resolve(&p, dev, s->port, m->qpn))
		return;
	qkey = (w->remote_qkey & 0x80000000u) ? qp->attr.qkey : w->remote_qkey;
	if (s->qp_type != IBV_QPT_UD || !uib_resp_ready(&p) ||
	    s->qkey != qkey || !uib_port_active(&dev->st, p.port))
		return;
	/* Unreliable: a member without a receive posted just misses it. */
	uib_resp_send(qp, &p, w, x, &w->ah, &st);
}

void uib_mcast_send(struct uib_qp *qp, struct uib_swqe *w, struct xfer *x,
		    uint32_t src_qpn)
{
	const uint8_t *mgid = w->ah.grh.dgid.raw;
	struct uib_devref *dev;

	for (dev = uib_subnet_first(qp->ctx); dev; dev = dev->next) {
		const struct uib_dev_shared *sh = dev->st.sh;
		unsigned int i, hw;

		if (atomic_load_explicit(&sh->ready, memory_order_acquire) != 1)
			continue;
		hw = atomic_load_explicit(&sh->mcast_hw, memory_order_acquire);
		for (i = 0; i < hw && i < UIB_MAX_MCAST_ATTACH; i++) {
			const struct uib_mcast_slot *m = &sh->mcast[i];
			struct uib_mcast_slot c;

			/* Acquire: a LIVE slot is whole; copy it once. */
			if (atomic_load_explicit(&m->state,
						 memory_order_acquire) !=
			    UIB_SLOT_LIVE)
				continue;
			memcpy(&c, m, sizeof(c));
			if (w->ah.is_global ? memcmp(c.gid, mgid, 16) :
					      c.lid != w->ah.dlid)
				continue;
			member_send(qp, dev, &c, w, x, src_qpn);
		}
	}
}
