// SPDX-License-Identifier: MIT
/*
 * The "ipoib" interface client: for each configured (device, port) one
 * link, built like the kernel's ipoib_intf_init(): a TAP towards the
 * kernel, a UD QP with its own CQ and worker thread on the fabric side,
 * MTU = IB MTU - 4 (RFC 4391 §6: the 4-byte encapsulation header), carrier
 * following the port.  Single queue only; the RSS/TSS ops come later.
 *
 * What proto.{c,h} (RFC 4391 encodings) will plug into is marked TODO(proto).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "ipoib.h"

static unsigned int ib_mtu_bytes(enum ibv_mtu mtu)
{
	return mtu >= IBV_MTU_256 && mtu <= IBV_MTU_4096 ? 128u << mtu : 0;
}

/* ---- data path skeleton ------------------------------------------------ */

static int post_recv(struct ipoib_dev_priv *priv, struct ipoib_queue *q,
		     unsigned int i)
{
	struct ibv_sge sge = {
		.addr = (uintptr_t)priv->rx_buf + (size_t)i * priv->rx_buf_size,
		.length = priv->rx_buf_size,
		.lkey = priv->rx_mr->lkey,
	};
	struct ibv_recv_wr wr = { .wr_id = i, .sg_list = &sge, .num_sge = 1 };
	struct ibv_recv_wr *bad;

	return -ibv_post_recv(q->qp, &wr, &bad);
}

static void drain_cq(struct ipoib_queue *q)
{
	struct ipoib_dev_priv *priv = q->priv;
	struct ibv_wc wc[16];
	int n, i;

	while ((n = ibv_poll_cq(q->cq, 16, wc)) > 0) {
		for (i = 0; i < n; i++) {
			if (!(wc[i].opcode & IBV_WC_RECV))
				continue;	/* sends: nothing posted yet */
			if (wc[i].status == IBV_WC_SUCCESS) {
				/*
				 * TODO(proto): strip the GRH if IBV_WC_GRH
				 * (RFC 4391 §6 accepts both), check the
				 * encapsulation header, translate ARP/ND and
				 * write the Ethernet frame to q->tap_fd:
				 *   ipoib_ib_to_tap(priv, q, buf, wc.byte_len, &wc)
				 * Until then a datagram is dropped, counted.
				 */
				atomic_fetch_add(&q->stats.rx_dropped, 1);
			}
			if (wc[i].status != IBV_WC_WR_FLUSH_ERR &&
			    post_recv(priv, q, wc[i].wr_id))
				ipoib_warn_ratelimited(priv, "cannot repost a receive");
		}
	}
}

static void drain_tap(struct ipoib_queue *q)
{
	struct ipoib_dev_priv *priv = q->priv;
	uint8_t frame[65536];
	ssize_t n;

	for (;;) {
		n = read(q->tap_fd, frame, sizeof(frame));
		if (n < 0) {
			if (errno != EINTR && errno != EAGAIN)
				ipoib_warn_ratelimited(priv, "TAP read: %s",
						       strerror(errno));
			if (errno != EINTR)
				return;
			continue;
		}
		/*
		 * TODO(proto): resolve the destination MAC in the neighbour
		 * table, translate ARP/ND, prepend the encapsulation header
		 * and post a UD send (the per-link ops->send):
		 *   ipoib_tap_to_ib(priv, q, frame, n)
		 * Until then a frame is dropped, counted.
		 */
		atomic_fetch_add(&q->stats.tx_dropped, 1);
	}
}

/* One per queue: sleeps in poll() on the TAP, the CQ channel and stop. */
static void *queue_worker(void *arg)
{
	struct ipoib_queue *q = arg;
	struct pollfd pfd[3] = {
		{ .fd = q->stop_fd, .events = POLLIN },
		{ .fd = q->tap_fd, .events = POLLIN },
		{ .fd = q->channel ? q->channel->fd : -1, .events = POLLIN },
	};
	struct ibv_cq *ev_cq;
	void *ev_ctx;

	for (;;) {
		/*
		 * Without a completion channel (a device or library without
		 * one) the CQ is looked at every 10 ms.
		 */
		if (poll(pfd, 3, q->channel ? -1 : 10) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents)
			break;
		if (pfd[1].revents)
			drain_tap(q);
		if (q->channel && pfd[2].revents &&
		    !ibv_get_cq_event(q->channel, &ev_cq, &ev_ctx)) {
			ibv_ack_cq_events(ev_cq, 1);
			ibv_req_notify_cq(ev_cq, 0);
		}
		drain_cq(q);
	}
	return NULL;
}

/* ---- verbs setup ------------------------------------------------------- */

static int qp_to_rts(struct ipoib_dev_priv *priv, struct ibv_qp *qp)
{
	struct ibv_qp_attr a = {
		.qp_state = IBV_QPS_INIT,
		.pkey_index = priv->pkey_index,
		.port_num = priv->port,
		.qkey = IPOIB_QKEY,
	};
	int ret;

	ret = ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_PKEY_INDEX |
			    IBV_QP_PORT | IBV_QP_QKEY);
	if (ret)
		return -ret;
	a.qp_state = IBV_QPS_RTR;
	ret = ibv_modify_qp(qp, &a, IBV_QP_STATE);
	if (ret)
		return -ret;
	a.qp_state = IBV_QPS_RTS;
	a.sq_psn = 0;
	return -ibv_modify_qp(qp, &a, IBV_QP_STATE | IBV_QP_SQ_PSN);
}

static void queue_fini(struct ipoib_queue *q)
{
	uint64_t one = 1;

	if (q->worker_started) {
		if (write(q->stop_fd, &one, sizeof(one)) < 0)
			ipoib_err(q->priv, "cannot stop worker: %s",
				  strerror(errno));
		pthread_join(q->worker, NULL);
		q->worker_started = false;
	}
	ibv_destroy_qp(q->qp);
	ibv_destroy_cq(q->cq);
	if (q->channel)
		ibv_destroy_comp_channel(q->channel);
	close(q->stop_fd);
}

static int queue_init(struct ipoib_dev_priv *priv, struct ipoib_queue *q)
{
	struct ibv_context *ctx = priv->dev->ctx;
	struct ibv_qp_init_attr qa = {
		.qp_type = IBV_QPT_UD,
		.cap = {
			.max_send_wr = IPOIB_SEND_DEPTH,
			.max_recv_wr = IPOIB_RECV_DEPTH,
			.max_send_sge = 1,
			.max_recv_sge = 1,
		},
	};
	unsigned int i;
	int ret;

	q->priv = priv;
	q->tap_fd = priv->tap.fd;
	q->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (q->stop_fd < 0)
		return -errno;
	/* Optional: some providers need help for channels (uib: preload). */
	q->channel = ibv_create_comp_channel(ctx);
	if (!q->channel)
		ipoib_dbg(priv, "no completion channel (%s): the CQ is polled every 10 ms",
			  strerror(errno));
	q->cq = ibv_create_cq(ctx, IPOIB_SEND_DEPTH + IPOIB_RECV_DEPTH, q,
			      q->channel, 0);
	if (!q->cq) {
		ret = -errno;
		goto err_channel;
	}
	if (q->channel && ibv_req_notify_cq(q->cq, 0)) {
		ret = -EIO;
		goto err_cq;
	}
	qa.send_cq = qa.recv_cq = q->cq;
	q->qp = ibv_create_qp(priv->pd, &qa);
	if (!q->qp) {
		ret = -errno;
		goto err_cq;
	}
	ret = qp_to_rts(priv, q->qp);
	if (ret)
		goto err_qp;
	for (i = 0; i < IPOIB_RECV_DEPTH; i++) {
		ret = post_recv(priv, q, i);
		if (ret)
			goto err_qp;
	}
	ret = -pthread_create(&q->worker, NULL, queue_worker, q);
	if (ret)
		goto err_qp;
	q->worker_started = true;
	return 0;

err_qp:
	ibv_destroy_qp(q->qp);
err_cq:
	ibv_destroy_cq(q->cq);
err_channel:
	if (q->channel)
		ibv_destroy_comp_channel(q->channel);
	close(q->stop_fd);
	return ret;
}

/* Index of the P_Key in the port's table; membership bit ignored. */
static int find_pkey_index(struct ipoib_dev_priv *priv)
{
	unsigned int i;
	__be16 pkey;

	for (i = 0; i < priv->dev->attr.max_pkeys && i < 0xffff; i++) {
		if (ibv_query_pkey(priv->dev->ctx, priv->port, i, &pkey))
			break;
		if ((be16toh(pkey) & 0x7fff) == (priv->cfg->pkey & 0x7fff)) {
			priv->pkey_index = i;
			return 0;
		}
	}
	return -ENOENT;
}

/*
 * TODO(proto): the TAP's synthetic MAC comes from proto.h, e.g.
 * ipoib_synthetic_mac(hwaddr20, mac).  Until then: locally administered,
 * unicast, from the QPN and the low GID bytes.
 */
static void link_mac(struct ipoib_dev_priv *priv, uint8_t mac[6])
{
	mac[0] = 0x02;
	mac[1] = priv->gid.raw[14];
	mac[2] = priv->gid.raw[15];
	mac[3] = priv->qpn >> 16;
	mac[4] = priv->qpn >> 8;
	mac[5] = priv->qpn;
}

static int link_set_carrier(struct ipoib_dev_priv *priv, bool on)
{
	int ret = ipoibd_tap_set_carrier(&priv->tap, on);

	if (ret)
		ipoib_warn(priv, "cannot set carrier: %s", strerror(-ret));
	else if (on != priv->carrier)
		ipoib_info(priv, "carrier %s", on ? "on" : "off");
	priv->carrier = on;
	return ret;
}

static void link_fini(struct ipoib_dev_priv *priv)
{
	unsigned int i;

	/* TODO(proto): leave the broadcast and multicast groups. */
	ipoibd_nl_set_up(&priv->d->nl, priv->ifindex, false);
	for (i = priv->num_queues; i-- > 0;)
		queue_fini(&priv->queues[i]);
	ipoibd_tap_close(&priv->tap);	/* the TAP goes with its last fd */
	free(priv->queues);
	ibv_dereg_mr(priv->rx_mr);
	free(priv->rx_buf);
	ibv_dealloc_pd(priv->pd);
	ipoib_info(priv, "link down and removed");
	free(priv);
}

static int link_init(struct ipoibd *d, struct ipoibd_device *dev,
		     const struct ipoibd_link_config *cfg,
		     struct ipoib_dev_priv **out)
{
	struct ipoib_dev_priv *priv;
	struct ibv_port_attr pa;
	unsigned int ib_mtu;
	uint8_t mac[6];
	int ret;

	priv = calloc(1, sizeof(*priv));
	if (!priv)
		return -ENOMEM;
	snprintf(priv->name, sizeof(priv->name), "%s", cfg->ifname);
	priv->cfg = cfg;
	priv->dev = dev;
	priv->d = d;
	priv->port = cfg->port;

	if (cfg->port > dev->attr.phys_port_cnt) {
		ipoib_err(priv, "%s:%u: device %s has no port %u", d->cfg.source,
			  cfg->line, dev->rdev.name, cfg->port);
		ret = -ENODEV;
		goto err_free;
	}
	if (cfg->mode != IPOIBD_MODE_DATAGRAM || cfg->queues != 1) {
		ipoib_err(priv, "%s:%u: only datagram mode with 1 queue is implemented",
			  d->cfg.source, cfg->line);
		ret = -EOPNOTSUPP;
		goto err_free;
	}
	ret = -ibv_query_port(dev->ctx, priv->port, &pa);
	if (ret)
		goto err_free;
	ib_mtu = ib_mtu_bytes(pa.active_mtu);
	priv->mtu = cfg->mtu ? cfg->mtu : ib_mtu - IPOIB_ENCAP_LEN;
	if (priv->mtu + IPOIB_ENCAP_LEN > ib_mtu) {
		ipoib_err(priv, "%s:%u: MTU %u is more than %s port %u carries (%u)",
			  d->cfg.source, cfg->line, priv->mtu, dev->rdev.name,
			  priv->port, ib_mtu - IPOIB_ENCAP_LEN);
		ret = -EINVAL;
		goto err_free;
	}
	ret = find_pkey_index(priv);
	if (ret) {
		ipoib_err(priv, "P_Key 0x%04x is not in %s port %u's table",
			  cfg->pkey, dev->rdev.name, priv->port);
		goto err_free;
	}
	ret = -ibv_query_gid(dev->ctx, priv->port, 0, &priv->gid);
	if (ret)
		goto err_free;

	priv->pd = ibv_alloc_pd(dev->ctx);
	if (!priv->pd) {
		ret = -errno;
		goto err_free;
	}
	/* A receive holds the GRH (IBA: always 40 bytes first), header, MTU. */
	priv->rx_buf_size = (IPOIB_GRH_LEN + IPOIB_ENCAP_LEN + priv->mtu + 63) & ~63ul;
	priv->rx_buf = aligned_alloc(4096, priv->rx_buf_size * IPOIB_RECV_DEPTH);
	if (!priv->rx_buf) {
		ret = -ENOMEM;
		goto err_pd;
	}
	priv->rx_mr = ibv_reg_mr(priv->pd, priv->rx_buf,
				 priv->rx_buf_size * IPOIB_RECV_DEPTH,
				 IBV_ACCESS_LOCAL_WRITE);
	if (!priv->rx_mr) {
		ret = -errno;
		goto err_buf;
	}

	ret = ipoibd_tap_open(&priv->tap, cfg->ifname, 0);
	if (ret) {
		ipoib_err(priv, "cannot create TAP: %s", strerror(-ret));
		goto err_mr;
	}
	ret = ipoibd_nl_ifindex(&d->nl, priv->tap.name, &priv->ifindex);
	if (ret)
		goto err_tap;

	priv->num_queues = 1;
	priv->queues = calloc(priv->num_queues, sizeof(*priv->queues));
	if (!priv->queues) {
		ret = -ENOMEM;
		goto err_tap;
	}
	ret = queue_init(priv, &priv->queues[0]);
	if (ret)
		goto err_queues;
	/* RFC 4391 §9.1.1: the link's address is QPN + port GID. */
	priv->qpn = priv->queues[0].qp->qp_num;

	link_mac(priv, mac);
	ret = ipoibd_tap_set_mac(&priv->tap, mac);
	if (ret)
		goto err_queue;
	ret = ipoibd_nl_set_mtu(&d->nl, priv->ifindex, priv->mtu);
	if (ret) {
		ipoib_err(priv, "cannot set MTU %u: %s", priv->mtu,
			  strerror(-ret));
		goto err_queue;
	}
	link_set_carrier(priv, pa.state == IBV_PORT_ACTIVE);
	ret = ipoibd_nl_set_up(&d->nl, priv->ifindex, true);
	if (ret)
		goto err_queue;
	/*
	 * TODO(proto): join the broadcast group (RFC 4391 §4.1) through the
	 * per-link ops->attach_mcast, once ibv_attach_mcast works:
	 *   ipoib_mgid_broadcast(cfg->pkey, scope 2, &mgid);
	 *   ibv_attach_mcast(qp, &mgid, 0);
	 * and set the GUID-derived link-local address (RFC 4391 §8):
	 *   ipoib_ll_addr_from_guid(&priv->gid, &in6);
	 *   ipoibd_nl_addr(&d->nl, priv->ifindex, AF_INET6, &in6, 64, true);
	 */
	ipoib_info(priv, "up on %s port %u: QPN 0x%06x MTU %u", dev->rdev.name,
		   priv->port, priv->qpn, priv->mtu);
	*out = priv;
	return 0;

err_queue:
	queue_fini(&priv->queues[0]);
err_queues:
	free(priv->queues);
err_tap:
	ipoibd_tap_close(&priv->tap);
err_mr:
	ibv_dereg_mr(priv->rx_mr);
err_buf:
	free(priv->rx_buf);
err_pd:
	ibv_dealloc_pd(priv->pd);
err_free:
	ipoib_err(priv, "cannot build the link on %s port %u: %s",
		  dev->rdev.name, cfg->port, strerror(-ret));
	free(priv);
	return ret;
}

/* ---- interface client hooks (registry callbacks, main thread) ---------- */

static void ipoib_remove_one(struct ipoibd_dev *rdev, void *ctx)
{
	struct ipoib_dev_ctx *dctx = ctx;
	struct ipoib_dev_priv *priv;

	while ((priv = TAILQ_FIRST(&dctx->links))) {
		TAILQ_REMOVE(&dctx->links, priv, link);
		link_fini(priv);
	}
	free(dctx);
}

static int ipoib_add_one(struct ipoibd_dev *rdev, unsigned int flags,
			 void **ctx)
{
	struct ipoibd_device *dev = to_ipoibd_device(rdev);
	struct ipoibd *d = dev->d;
	struct ipoib_dev_ctx *dctx;
	struct ipoib_dev_priv *priv;
	unsigned int i;
	int ret;

	dctx = calloc(1, sizeof(*dctx));
	if (!dctx)
		return -ENOMEM;
	dctx->dev = dev;
	TAILQ_INIT(&dctx->links);
	for (i = 0; i < d->cfg.num_links; i++) {
		if (strcmp(d->cfg.links[i].device, rdev->name))
			continue;
		ret = link_init(d, dev, &d->cfg.links[i], &priv);
		if (ret)
			goto err_links;
		TAILQ_INSERT_TAIL(&dctx->links, priv, link);
	}
	*ctx = dctx;
	return 0;

err_links:
	ipoib_remove_one(rdev, dctx);
	return ret;
}

static void ipoib_event(struct ipoibd_dev *rdev, void *ctx,
			enum ipoibd_dev_event event, unsigned long param)
{
	struct ipoib_dev_ctx *dctx = ctx;
	struct ipoib_dev_priv *priv;

	TAILQ_FOREACH(priv, &dctx->links, link) {
		switch (event) {
		case IPOIBD_EV_PORT_ACTIVE:
		case IPOIBD_EV_PORT_DOWN:
			if (priv->port == param)
				link_set_carrier(priv,
						 event == IPOIBD_EV_PORT_ACTIVE);
			break;
		case IPOIBD_EV_DEVICE_FATAL:
		case IPOIBD_EV_DEVICE_REMOVED:
			link_set_carrier(priv, false);
			break;
		}
	}
}

int ipoib_client_init(struct ipoibd *d)
{
	d->ipoib_intf = (struct ipoibd_interface){
		.name = "ipoib",
		.protocol = IPOIBD_PROT_IPOIB,
		.flags = IPOIBD_INTF_BONDING,
		.add = ipoib_add_one,
		.remove = ipoib_remove_one,
		.event = ipoib_event,
	};
	return ipoibd_register_interface(&d->reg, &d->ipoib_intf);
}

void ipoib_client_fini(struct ipoibd *d)
{
	ipoibd_unregister_interface(&d->reg, &d->ipoib_intf);
}

struct ipoib_dev_ctx *ipoib_dev_ctx_get(struct ipoibd *d,
				       struct ipoibd_device *dev)
{
	return ipoibd_intf_get_ctx(&d->reg, &d->ipoib_intf, &dev->rdev);
}

int ipoib_check_links(struct ipoibd *d)
{
	const struct ipoibd_link_config *cfg;
	struct ipoibd_device *dev;
	struct ipoib_dev_ctx *dctx;
	struct ipoib_dev_priv *priv;
	unsigned int i;
	bool found;
	int ret = 0;

	for (i = 0; i < d->cfg.num_links; i++) {
		cfg = &d->cfg.links[i];
		found = false;
		TAILQ_FOREACH(dev, &d->devices, link) {
			if (strcmp(dev->rdev.name, cfg->device))
				continue;
			dctx = ipoib_dev_ctx_get(d, dev);
			if (!dctx)
				break;
			TAILQ_FOREACH(priv, &dctx->links, link)
				found |= priv->cfg == cfg;
		}
		if (found)
			continue;
		if (!dev && cfg->line)
			ipoibd_err("%s:%u: link '%s': no device %s",
				   d->cfg.source, cfg->line, cfg->ifname,
				   cfg->device);
		else if (!dev)
			ipoibd_err("link '%s': no device %s", cfg->ifname,
				   cfg->device);
		ret = -ENODEV;
	}
	return ret;
}
