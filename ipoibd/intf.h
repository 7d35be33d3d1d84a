/* SPDX-License-Identifier: MIT */
/*
 * The interface-client registry (the mlx4 intf.c shape, STYLE 8).
 *
 * Interfaces are clients such as the "ipoib" link builder; devices are the
 * verbs devices the daemon has opened.  The registry keeps one binding per
 * (interface, device) pair whose add() succeeded, calls add/activate when
 * either side appears, remove when either side goes, and hands device
 * events to every interface bound to the device.
 *
 * Locking and callbacks.  One mutex protects the lists; no callback ever
 * runs under it.  Each public call validates and changes the lists under
 * the mutex, then queues the callbacks it implies as a work item.  One
 * thread at a time (the "runner") drains the queue, dropping the mutex
 * around every callback, so callbacks run one at a time and in the order
 * of the calls that caused them.
 *  - A call made from a thread that is not the runner becomes the runner,
 *    or, if another thread runs, waits until its work is done: when it
 *    returns, its callbacks have run.
 *  - A call made from inside a callback (on the runner thread) only queues
 *    its work and returns: the callbacks it implies run after the current
 *    callback returns, before the outermost call returns.  So a callback
 *    may register or unregister interfaces, add or remove devices, without
 *    deadlock; it must not wait for another thread that makes a registry
 *    call.
 * Interface and device structs are owned by the caller and must stay valid
 * until ipoibd_unregister_interface() / ipoibd_dev_remove() returns from a
 * non-callback context (from a callback: until the outermost call returns).
 */
#ifndef IPOIBD_INTF_H
#define IPOIBD_INTF_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

enum ipoibd_intf_flags {
	/* The client may bond ports (HA); cleared on multi-function devices. */
	IPOIBD_INTF_BONDING = 1u << 0,
};

enum ipoibd_protocol {
	IPOIBD_PROT_IPOIB = 1,
	IPOIBD_PROT_STATS,
	IPOIBD_PROT_HA,
};

enum ipoibd_dev_event {
	IPOIBD_EV_PORT_ACTIVE,		/* param: port number */
	IPOIBD_EV_PORT_DOWN,		/* param: port number */
	IPOIBD_EV_DEVICE_REMOVED,	/* device is going away; remove follows */
	IPOIBD_EV_DEVICE_FATAL,		/* IBV_EVENT_DEVICE_FATAL */
};

struct ipoibd_registry;
struct ipoibd_binding;

/* One verbs device.  Filled in by the caller before ipoibd_dev_add(). */
struct ipoibd_dev {
	char name[64];
	unsigned int num_vfs;		/* sriov_numvfs; > 0: multi-function */
	void *priv;			/* the caller's (an ibv_context owner) */

	/* registry-private */
	TAILQ_ENTRY(ipoibd_dev) link;
	bool present;
};

struct ipoibd_interface {
	const char *name;
	enum ipoibd_protocol protocol;
	unsigned int flags;		/* enum ipoibd_intf_flags */
	/*
	 * Required.  flags are the interface's flags as they apply to this
	 * device (BONDING may be cleared).  Returns 0 and sets *ctx, or
	 * -errno: then no binding is kept and remove is not called.
	 */
	int (*add)(struct ipoibd_dev *dev, unsigned int flags, void **ctx);
	void (*remove)(struct ipoibd_dev *dev, void *ctx);
	/* Optional: called after a successful add. */
	void (*activate)(struct ipoibd_dev *dev, void *ctx);
	/* Optional. */
	void (*event)(struct ipoibd_dev *dev, void *ctx,
		      enum ipoibd_dev_event event, unsigned long param);

	/* registry-private */
	TAILQ_ENTRY(ipoibd_interface) link;
	bool registered;
	unsigned int add_failures;	/* adds that returned an error */
	int last_add_error;		/* -errno of the latest one */
};

TAILQ_HEAD(ipoibd_intf_list, ipoibd_interface);
TAILQ_HEAD(ipoibd_dev_list, ipoibd_dev);
TAILQ_HEAD(ipoibd_binding_list, ipoibd_binding);
STAILQ_HEAD(ipoibd_work_list, ipoibd_work);

struct ipoibd_registry {
	pthread_mutex_t lock;		/* everything below */
	pthread_cond_t done;		/* done_seq advanced */
	struct ipoibd_intf_list intfs;	/* registration order */
	struct ipoibd_dev_list devs;	/* arrival order */
	struct ipoibd_binding_list bindings;
	struct ipoibd_work_list work;
	bool running;
	pthread_t runner;
	uint64_t queued_seq, done_seq;
};

int ipoibd_registry_init(struct ipoibd_registry *reg);
/* Every device and interface must be gone. */
void ipoibd_registry_fini(struct ipoibd_registry *reg);

/* 0, -EINVAL (no name, add or remove), -EEXIST, -ENOMEM. */
int ipoibd_register_interface(struct ipoibd_registry *reg,
			      struct ipoibd_interface *intf);
/* 0 or -ENOENT. */
int ipoibd_unregister_interface(struct ipoibd_registry *reg,
				struct ipoibd_interface *intf);

/* 0, -EINVAL, -EEXIST (same name present), -ENOMEM. */
int ipoibd_dev_add(struct ipoibd_registry *reg, struct ipoibd_dev *dev);
/* Delivers IPOIBD_EV_DEVICE_REMOVED, then removes every binding. */
int ipoibd_dev_remove(struct ipoibd_registry *reg, struct ipoibd_dev *dev);
/* Hands an event to every interface bound to dev.  0 or -ENOENT. */
int ipoibd_dev_event(struct ipoibd_registry *reg, struct ipoibd_dev *dev,
		     enum ipoibd_dev_event event, unsigned long param);

/*
 * The context add() returned for (intf, dev), or NULL when not bound.
 * The pointer is only stable while the binding lives (callers: the runner,
 * or code that owns the interface's lifetime).
 */
void *ipoibd_intf_get_ctx(struct ipoibd_registry *reg,
			  struct ipoibd_interface *intf, struct ipoibd_dev *dev);
/* The flags the binding was added with, or -ENOENT. */
int ipoibd_intf_get_flags(struct ipoibd_registry *reg,
			  struct ipoibd_interface *intf, struct ipoibd_dev *dev);

/*
 * sriov_numvfs of a verbs device: <ibdev_path>/device/sriov_numvfs, where
 * ibdev_path is struct ibv_device's (…/class/infiniband/<dev>).  A missing
 * file means 0 (not a PF).  0 or -errno.
 */
int ipoibd_read_numvfs(const char *ibdev_path, unsigned int *num_vfs);

const char *ipoibd_protocol_name(enum ipoibd_protocol p);

#endif /* IPOIBD_INTF_H */
