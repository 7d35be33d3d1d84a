// SPDX-License-Identifier: MIT
/*
 * The interface-client registry: see intf.h for the locking scheme.
 *
 * Who changes what:
 *  - the public calls, under reg->lock: append to the interface and device
 *    lists, clear 'registered'/'present', queue work;
 *  - the runner, under reg->lock: create and destroy bindings, unlink
 *    interfaces and devices.
 * Since only the runner unlinks anything, it can walk the lists across the
 * windows where it drops the lock for a callback: the nodes it stands on
 * stay linked.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "intf.h"
#include "log.h"

struct ipoibd_binding {
	TAILQ_ENTRY(ipoibd_binding) link;
	struct ipoibd_interface *intf;
	struct ipoibd_dev *dev;
	void *ctx;
	unsigned int flags;
};

enum work_type {
	WORK_REGISTER,
	WORK_UNREGISTER,
	WORK_DEV_ADD,
	WORK_DEV_REMOVE,
	WORK_EVENT,
};

struct ipoibd_work {
	STAILQ_ENTRY(ipoibd_work) link;
	enum work_type type;
	struct ipoibd_interface *intf;
	struct ipoibd_dev *dev;
	enum ipoibd_dev_event event;
	unsigned long param;
	uint64_t seq;
};

const char *ipoibd_protocol_name(enum ipoibd_protocol p)
{
	switch (p) {
	case IPOIBD_PROT_IPOIB:
		return "ipoib";
	case IPOIBD_PROT_STATS:
		return "stats";
	case IPOIBD_PROT_HA:
		return "ha";
	}
	return "unknown";
}

int ipoibd_registry_init(struct ipoibd_registry *reg)
{
	int ret;

	memset(reg, 0, sizeof(*reg));
	TAILQ_INIT(&reg->intfs);
	TAILQ_INIT(&reg->devs);
	TAILQ_INIT(&reg->bindings);
	STAILQ_INIT(&reg->work);
	ret = pthread_mutex_init(&reg->lock, NULL);
	if (ret)
		return -ret;
	ret = pthread_cond_init(&reg->done, NULL);
	if (ret)
		goto err_lock;
	return 0;

err_lock:
	pthread_mutex_destroy(&reg->lock);
	return -ret;
}

void ipoibd_registry_fini(struct ipoibd_registry *reg)
{
	if (!TAILQ_EMPTY(&reg->intfs) || !TAILQ_EMPTY(&reg->devs))
		ipoibd_warn("interface registry torn down with %s still present",
			    TAILQ_EMPTY(&reg->devs) ? "interfaces" : "devices");
	pthread_cond_destroy(&reg->done);
	pthread_mutex_destroy(&reg->lock);
}

/* Caller holds reg->lock. */
static struct ipoibd_binding *__find_binding(struct ipoibd_registry *reg,
					     struct ipoibd_interface *intf,
					     struct ipoibd_dev *dev)
{
	struct ipoibd_binding *b;

	TAILQ_FOREACH(b, &reg->bindings, link)
		if (b->intf == intf && b->dev == dev)
			return b;
	return NULL;
}

/*
 * Runner, reg->lock held (dropped around the callbacks).  The binding is
 * allocated before add() so that a successful add is never undone for
 * want of memory.
 */
static void __add_one(struct ipoibd_registry *reg,
		      struct ipoibd_interface *intf, struct ipoibd_dev *dev)
{
	struct ipoibd_binding *b;
	unsigned int flags = intf->flags;
	void *ctx = NULL;
	int ret;

	if (__find_binding(reg, intf, dev))
		return;

	/* HA needs both ports of one function; a VF-capable PF cannot bond. */
	if (dev->num_vfs > 0 && (flags & IPOIBD_INTF_BONDING)) {
		flags &= ~IPOIBD_INTF_BONDING;
		ipoibd_dbg("HA mode disabled for protocol %s on device %s (multi-function device)",
			   ipoibd_protocol_name(intf->protocol), dev->name);
	}

	b = calloc(1, sizeof(*b));
	if (!b) {
		ret = -ENOMEM;
		goto err_report;
	}

	pthread_mutex_unlock(&reg->lock);
	ret = intf->add(dev, flags, &ctx);
	pthread_mutex_lock(&reg->lock);
	if (ret)
		goto err_free;

	b->intf = intf;
	b->dev = dev;
	b->ctx = ctx;
	b->flags = flags;
	TAILQ_INSERT_TAIL(&reg->bindings, b, link);

	if (intf->activate) {
		pthread_mutex_unlock(&reg->lock);
		intf->activate(dev, ctx);
		pthread_mutex_lock(&reg->lock);
	}
	return;

err_free:
	free(b);
err_report:
	if (ret > 0)	/* a client that forgot the sign */
		ret = -ret;
	intf->add_failures++;
	intf->last_add_error = ret;
	ipoibd_err("interface %s: adding device %s failed: %s",
		   intf->name, dev->name, strerror(-ret));
}

/* Runner, reg->lock held (dropped around remove()). */
static void __remove_one(struct ipoibd_registry *reg, struct ipoibd_binding *b)
{
	TAILQ_REMOVE(&reg->bindings, b, link);
	pthread_mutex_unlock(&reg->lock);
	b->intf->remove(b->dev, b->ctx);
	pthread_mutex_lock(&reg->lock);
	free(b);
}

static void __do_register(struct ipoibd_registry *reg,
			  struct ipoibd_interface *intf)
{
	struct ipoibd_dev *dev;

	TAILQ_FOREACH(dev, &reg->devs, link) {
		if (!intf->registered)
			return;		/* unregistered from a callback */
		if (dev->present)
			__add_one(reg, intf, dev);
	}
}

static void __do_unregister(struct ipoibd_registry *reg,
			    struct ipoibd_interface *intf)
{
	struct ipoibd_binding *b;

	for (;;) {
		TAILQ_FOREACH(b, &reg->bindings, link)
			if (b->intf == intf)
				break;
		if (!b)
			break;
		__remove_one(reg, b);
	}
	TAILQ_REMOVE(&reg->intfs, intf, link);
}

static void __do_dev_add(struct ipoibd_registry *reg, struct ipoibd_dev *dev)
{
	struct ipoibd_interface *intf;

	TAILQ_FOREACH(intf, &reg->intfs, link) {
		if (!dev->present)
			return;		/* removed from a callback */
		if (intf->registered)
			__add_one(reg, intf, dev);
	}
}

/*
 * Bindings change only on the runner, so the walk is safe across the
 * callbacks.
 */
static void __do_event(struct ipoibd_registry *reg, struct ipoibd_dev *dev,
		       enum ipoibd_dev_event event, unsigned long param)
{
	struct ipoibd_binding *b;

	TAILQ_FOREACH(b, &reg->bindings, link) {
		if (b->dev != dev || !b->intf->event)
			continue;
		pthread_mutex_unlock(&reg->lock);
		b->intf->event(dev, b->ctx, event, param);
		pthread_mutex_lock(&reg->lock);
	}
}

/* Bindings go in the reverse order of their creation. */
static void __do_dev_remove(struct ipoibd_registry *reg, struct ipoibd_dev *dev)
{
	struct ipoibd_binding *b;

	__do_event(reg, dev, IPOIBD_EV_DEVICE_REMOVED, 0);
	for (;;) {
		TAILQ_FOREACH_REVERSE(b, &reg->bindings, ipoibd_binding_list,
				      link)
			if (b->dev == dev)
				break;
		if (!b)
			break;
		__remove_one(reg, b);
	}
	TAILQ_REMOVE(&reg->devs, dev, link);
}

/* The runner's loop: reg->lock held. */
static void __run_work(struct ipoibd_registry *reg)
{
	struct ipoibd_work *w;

	while ((w = STAILQ_FIRST(&reg->work))) {
		STAILQ_REMOVE_HEAD(&reg->work, link);
		switch (w->type) {
		case WORK_REGISTER:
			__do_register(reg, w->intf);
			break;
		case WORK_UNREGISTER:
			__do_unregister(reg, w->intf);
			break;
		case WORK_DEV_ADD:
			__do_dev_add(reg, w->dev);
			break;
		case WORK_DEV_REMOVE:
			__do_dev_remove(reg, w->dev);
			break;
		case WORK_EVENT:
			if (w->dev->present)
				__do_event(reg, w->dev, w->event, w->param);
			break;
		}
		reg->done_seq = w->seq;
		pthread_cond_broadcast(&reg->done);
		free(w);
	}
}

/*
 * Queues w and sees it done (or, from a callback, deferred).  Called with
 * reg->lock held; returns with it released.
 */
static void __submit_unlock(struct ipoibd_registry *reg, struct ipoibd_work *w)
{
	uint64_t seq;

	seq = w->seq = ++reg->queued_seq;
	STAILQ_INSERT_TAIL(&reg->work, w, link);

	if (reg->running) {
		/* From a callback: the runner is below us on this stack. */
		if (pthread_equal(reg->runner, pthread_self()))
			goto out_unlock;
		while (reg->done_seq < seq && reg->running)
			pthread_cond_wait(&reg->done, &reg->lock);
		/* The runner may have left before our item: take over. */
		if (reg->done_seq >= seq)
			goto out_unlock;
	}

	reg->running = true;
	reg->runner = pthread_self();
	__run_work(reg);
	reg->running = false;
	pthread_cond_broadcast(&reg->done);
out_unlock:
	pthread_mutex_unlock(&reg->lock);
}

static struct ipoibd_work *work_new(enum work_type type,
				    struct ipoibd_interface *intf,
				    struct ipoibd_dev *dev)
{
	struct ipoibd_work *w = calloc(1, sizeof(*w));

	if (w) {
		w->type = type;
		w->intf = intf;
		w->dev = dev;
	}
	return w;
}

int ipoibd_register_interface(struct ipoibd_registry *reg,
			      struct ipoibd_interface *intf)
{
	struct ipoibd_interface *i;
	struct ipoibd_work *w;

	if (!intf || !intf->name || !intf->add || !intf->remove)
		return -EINVAL;
	w = work_new(WORK_REGISTER, intf, NULL);
	if (!w)
		return -ENOMEM;

	pthread_mutex_lock(&reg->lock);
	TAILQ_FOREACH(i, &reg->intfs, link) {
		/* Still linked while its unregistration is pending. */
		if (i == intf || (i->registered && !strcmp(i->name, intf->name))) {
			pthread_mutex_unlock(&reg->lock);
			free(w);
			return i == intf && !i->registered ? -EBUSY : -EEXIST;
		}
	}
	intf->registered = true;
	intf->add_failures = 0;
	intf->last_add_error = 0;
	TAILQ_INSERT_TAIL(&reg->intfs, intf, link);
	__submit_unlock(reg, w);
	return 0;
}

int ipoibd_unregister_interface(struct ipoibd_registry *reg,
				struct ipoibd_interface *intf)
{
	struct ipoibd_work *w;

	w = work_new(WORK_UNREGISTER, intf, NULL);
	if (!w)
		return -ENOMEM;
	pthread_mutex_lock(&reg->lock);
	if (!intf->registered) {
		pthread_mutex_unlock(&reg->lock);
		free(w);
		return -ENOENT;
	}
	intf->registered = false;
	__submit_unlock(reg, w);
	return 0;
}

int ipoibd_dev_add(struct ipoibd_registry *reg, struct ipoibd_dev *dev)
{
	struct ipoibd_dev *d;
	struct ipoibd_work *w;

	if (!dev || !dev->name[0])
		return -EINVAL;
	w = work_new(WORK_DEV_ADD, NULL, dev);
	if (!w)
		return -ENOMEM;
	pthread_mutex_lock(&reg->lock);
	TAILQ_FOREACH(d, &reg->devs, link) {
		if (d == dev || (d->present && !strcmp(d->name, dev->name))) {
			pthread_mutex_unlock(&reg->lock);
			free(w);
			return d == dev && !d->present ? -EBUSY : -EEXIST;
		}
	}
	dev->present = true;
	TAILQ_INSERT_TAIL(&reg->devs, dev, link);
	__submit_unlock(reg, w);
	return 0;
}

int ipoibd_dev_remove(struct ipoibd_registry *reg, struct ipoibd_dev *dev)
{
	struct ipoibd_work *w;

	w = work_new(WORK_DEV_REMOVE, NULL, dev);
	if (!w)
		return -ENOMEM;
	pthread_mutex_lock(&reg->lock);
	if (!dev->present) {
		pthread_mutex_unlock(&reg->lock);
		free(w);
		return -ENOENT;
	}
	dev->present = false;
	__submit_unlock(reg, w);
	return 0;
}

int ipoibd_dev_event(struct ipoibd_registry *reg, struct ipoibd_dev *dev,
		     enum ipoibd_dev_event event, unsigned long param)
{
	struct ipoibd_work *w;

	w = work_new(WORK_EVENT, NULL, dev);
	if (!w)
		return -ENOMEM;
	w->event = event;
	w->param = param;
	pthread_mutex_lock(&reg->lock);
	if (!dev->present) {
		pthread_mutex_unlock(&reg->lock);
		free(w);
		return -ENOENT;
	}
	__submit_unlock(reg, w);
	return 0;
}

void *ipoibd_intf_get_ctx(struct ipoibd_registry *reg,
			  struct ipoibd_interface *intf, struct ipoibd_dev *dev)
{
	struct ipoibd_binding *b;
	void *ctx;

	pthread_mutex_lock(&reg->lock);
	b = __find_binding(reg, intf, dev);
	ctx = b ? b->ctx : NULL;
	pthread_mutex_unlock(&reg->lock);
	return ctx;
}

int ipoibd_intf_get_flags(struct ipoibd_registry *reg,
			  struct ipoibd_interface *intf, struct ipoibd_dev *dev)
{
	struct ipoibd_binding *b;
	int flags;

	pthread_mutex_lock(&reg->lock);
	b = __find_binding(reg, intf, dev);
	flags = b ? (int)b->flags : -ENOENT;
	pthread_mutex_unlock(&reg->lock);
	return flags;
}

int ipoibd_read_numvfs(const char *ibdev_path, unsigned int *num_vfs)
{
	char path[4096], buf[32], *end;
	unsigned long v;
	ssize_t n;
	int fd, ret = 0;

	*num_vfs = 0;
	if ((size_t)snprintf(path, sizeof(path), "%s/device/sriov_numvfs",
			     ibdev_path) >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	do {
		n = read(fd, buf, sizeof(buf) - 1);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		ret = -errno;
		goto out_close;
	}
	buf[n] = '\0';
	errno = 0;
	v = strtoul(buf, &end, 10);
	if (errno || end == buf || (*end && *end != '\n') || v > 0xffff) {
		ret = -EINVAL;
		goto out_close;
	}
	*num_vfs = v;
out_close:
	close(fd);
	return ret;
}
