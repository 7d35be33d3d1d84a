// SPDX-License-Identifier: MIT
/*
 * Verbs devices: found with ibv_get_device_list() at start and every
 * second after, registered with the interface registry, their async
 * events turned into registry events.  Only libibverbs: any verbs device
 * with UD QPs will do.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipoib.h"

#define SCAN_PERIOD_MS 1000

static void async_cb(struct ipoibd_fd_handler *h, uint32_t events)
{
	struct ipoibd_device *dev = h->arg;
	struct ibv_async_event ev;
	enum ipoibd_dev_event rev;
	unsigned long param = 0;

	if (ibv_get_async_event(dev->ctx, &ev))
		return;		/* EAGAIN: the fd is non-blocking */
	ipoibd_dbg("%s: async event %s", dev->rdev.name,
		   ibv_event_type_str(ev.event_type));
	switch (ev.event_type) {
	case IBV_EVENT_PORT_ACTIVE:
		rev = IPOIBD_EV_PORT_ACTIVE;
		param = ev.element.port_num;
		break;
	case IBV_EVENT_PORT_ERR:
		rev = IPOIBD_EV_PORT_DOWN;
		param = ev.element.port_num;
		break;
	case IBV_EVENT_DEVICE_FATAL:
		rev = IPOIBD_EV_DEVICE_FATAL;
		break;
	default:
		/* QP/CQ events belong to the links' queues: TODO route them. */
		ibv_ack_async_event(&ev);
		return;
	}
	/* Acked before the callbacks, which may destroy what it names. */
	ibv_ack_async_event(&ev);
	ipoibd_dev_event(&dev->d->reg, &dev->rdev, rev, param);
}

static struct ipoibd_device *find_device(struct ipoibd *d, const char *name)
{
	struct ipoibd_device *dev;

	TAILQ_FOREACH(dev, &d->devices, link)
		if (!strcmp(dev->rdev.name, name))
			return dev;
	return NULL;
}

static int device_open(struct ipoibd *d, struct ibv_device *ibdev)
{
	struct ipoibd_device *dev;
	int ret, flags;

	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->d = d;
	dev->rdev.priv = dev;
	snprintf(dev->rdev.name, sizeof(dev->rdev.name), "%s",
		 ibv_get_device_name(ibdev));
	ret = ipoibd_read_numvfs(ibdev->ibdev_path, &dev->rdev.num_vfs);
	if (ret)
		ipoibd_warn("%s: reading sriov_numvfs: %s; taking 0",
			    dev->rdev.name, strerror(-ret));

	dev->ctx = ibv_open_device(ibdev);
	if (!dev->ctx) {
		ret = errno ? -errno : -ENODEV;
		goto err_free;
	}
	ret = ibv_query_device(dev->ctx, &dev->attr);
	if (ret) {
		ret = -ret;
		goto err_close;
	}
	flags = fcntl(dev->ctx->async_fd, F_GETFL);
	if (flags < 0 ||
	    fcntl(dev->ctx->async_fd, F_SETFL, flags | O_NONBLOCK) < 0) {
		ret = -errno;
		goto err_close;
	}
	dev->async_h.name = "async-events";
	dev->async_h.fd = dev->ctx->async_fd;
	dev->async_h.cb = async_cb;
	dev->async_h.arg = dev;
	ret = ipoibd_loop_add(&d->loop, &dev->async_h);
	if (ret)
		goto err_close;

	dev->seen = true;
	TAILQ_INSERT_TAIL(&d->devices, dev, link);
	ipoibd_info("device %s: %u port(s)%s", dev->rdev.name,
		    dev->attr.phys_port_cnt,
		    dev->rdev.num_vfs ? ", multi-function" : "");
	/* The interfaces' add() run from here. */
	ret = ipoibd_dev_add(&d->reg, &dev->rdev);
	if (ret)
		goto err_unlink;
	return 0;

err_unlink:
	TAILQ_REMOVE(&d->devices, dev, link);
	ipoibd_loop_del(&d->loop, &dev->async_h);
err_close:
	ibv_close_device(dev->ctx);
err_free:
	ipoibd_err("device %s: cannot use it: %s", dev->rdev.name,
		   strerror(-ret));
	free(dev);
	return ret;
}

/* The same steps as device_open()'s unwind, in the same order. */
static void device_close(struct ipoibd *d, struct ipoibd_device *dev)
{
	ipoibd_info("device %s: gone", dev->rdev.name);
	ipoibd_dev_remove(&d->reg, &dev->rdev);
	TAILQ_REMOVE(&d->devices, dev, link);
	ipoibd_loop_del(&d->loop, &dev->async_h);
	ibv_close_device(dev->ctx);
	free(dev);
}

void ipoibd_devices_scan(struct ipoibd *d)
{
	struct ipoibd_device *dev, *tmp;
	struct ibv_device **list;
	int i, n;

	list = ibv_get_device_list(&n);
	if (!list) {
		ipoibd_warn("ibv_get_device_list: %s", strerror(errno));
		return;
	}
	TAILQ_FOREACH(dev, &d->devices, link)
		dev->seen = false;
	for (i = 0; i < n; i++) {
		dev = find_device(d, ibv_get_device_name(list[i]));
		if (dev)
			dev->seen = true;
		else
			device_open(d, list[i]);
	}
	ibv_free_device_list(list);

	for (dev = TAILQ_FIRST(&d->devices); dev; dev = tmp) {
		tmp = TAILQ_NEXT(dev, link);
		if (!dev->seen)
			device_close(d, dev);
	}
}

static void scan_cb(struct ipoibd_fd_handler *h, uint32_t events)
{
	uint64_t expirations;

	if (read(h->fd, &expirations, sizeof(expirations)) < 0)
		return;
	ipoibd_devices_scan(h->arg);
}

int ipoibd_devices_init(struct ipoibd *d)
{
	TAILQ_INIT(&d->devices);
	ipoibd_devices_scan(d);
	d->scan_h.name = "device-scan";
	d->scan_h.cb = scan_cb;
	d->scan_h.arg = d;
	return ipoibd_loop_add_timer(&d->loop, &d->scan_h, SCAN_PERIOD_MS);
}

void ipoibd_devices_fini(struct ipoibd *d)
{
	struct ipoibd_device *dev;

	ipoibd_loop_del_timer(&d->loop, &d->scan_h);
	while ((dev = TAILQ_FIRST(&d->devices)))
		device_close(d, dev);
}
