/* SPDX-License-Identifier: MIT */
/*
 * ipoibd's private header: the daemon context and its subsystems, split
 * by concern like the kernel's IPoIB driver (STYLE 9):
 *   main.c        lifecycle: options, init/fini order, readiness, signals
 *   loop.c        the epoll loop: named fd handlers, timers, work queue
 *   device.c      verbs devices: discovery, async events -> registry
 *   ipoib_link.c  the "ipoib" interface client: one link per device port
 *   ctl.c         the control socket and `ipoibd status`
 * Everything but the link workers runs on the main thread.
 */
#ifndef IPOIBD_IPOIB_H
#define IPOIBD_IPOIB_H

#include <net/if.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <infiniband/verbs.h>

#include "config.h"
#include "intf.h"
#include "log.h"
#include "netlink.h"
#include "tap.h"

/* RFC 4391: the Q_Key of the broadcast group in practice (IPOIB-NOTES). */
#define IPOIB_QKEY 0x0B1B
/* RFC 4391 §6: the encapsulation header. */
#define IPOIB_ENCAP_LEN 4
#define IPOIB_GRH_LEN 40
#define IPOIB_RECV_DEPTH 64
#define IPOIB_SEND_DEPTH 64

struct ipoibd;

/* ---- loop.c ------------------------------------------------------------ */

struct ipoibd_fd_handler {
	const char *name;		/* for logs */
	int fd;
	void (*cb)(struct ipoibd_fd_handler *h, uint32_t events);
	void *arg;
};

struct ipoibd_work_item {
	STAILQ_ENTRY(ipoibd_work_item) link;
	void (*fn)(void *arg);
	void *arg;
};

struct ipoibd_loop {
	int epfd;
	struct ipoibd_fd_handler kick;	/* eventfd: work queued */
	pthread_mutex_t lock;		/* work */
	STAILQ_HEAD(, ipoibd_work_item) work;
	unsigned int del_gen;		/* bumped by every handler removal */
	bool stop;
};

int ipoibd_loop_init(struct ipoibd_loop *loop);
void ipoibd_loop_fini(struct ipoibd_loop *loop);
int ipoibd_loop_add(struct ipoibd_loop *loop, struct ipoibd_fd_handler *h);
void ipoibd_loop_del(struct ipoibd_loop *loop, struct ipoibd_fd_handler *h);
/* A periodic timer handler (timerfd); h->fd is set here. */
int ipoibd_loop_add_timer(struct ipoibd_loop *loop,
			  struct ipoibd_fd_handler *h, unsigned int period_ms);
void ipoibd_loop_del_timer(struct ipoibd_loop *loop,
			   struct ipoibd_fd_handler *h);
/* Any thread: runs fn(arg) on the main thread soon. */
int ipoibd_loop_queue_work(struct ipoibd_loop *loop, void (*fn)(void *),
			   void *arg);
/* Runs until ipoibd_loop_stop(); 0 or -errno. */
int ipoibd_loop_run(struct ipoibd_loop *loop);
void ipoibd_loop_stop(struct ipoibd_loop *loop);

/* ---- device.c ---------------------------------------------------------- */

struct ipoibd_device {
	struct ipoibd_dev rdev;		/* registry node; rdev.priv = this */
	struct ipoibd *d;
	struct ibv_context *ctx;
	struct ibv_device_attr attr;
	struct ipoibd_fd_handler async_h;
	TAILQ_ENTRY(ipoibd_device) link;
	bool seen;			/* in the latest device list */
};

int ipoibd_devices_init(struct ipoibd *d);
void ipoibd_devices_fini(struct ipoibd *d);
/* One discovery pass (also run every second by a timer). */
void ipoibd_devices_scan(struct ipoibd *d);
static inline struct ipoibd_device *to_ipoibd_device(struct ipoibd_dev *rdev)
{
	return rdev->priv;
}

/* ---- ipoib_link.c ------------------------------------------------------ */

/* Per-queue counters, written by the worker, read by `ipoibd status`. */
struct ipoib_queue_stats {
	_Atomic uint64_t rx_packets, rx_bytes, rx_dropped;
	_Atomic uint64_t tx_packets, tx_bytes, tx_dropped;
};

struct ipoib_queue {
	struct ipoib_dev_priv *priv;
	unsigned int index;
	struct ibv_comp_channel *channel;	/* NULL: the device has none */
	struct ibv_cq *cq;
	struct ibv_qp *qp;
	int tap_fd;
	int stop_fd;			/* eventfd: worker, stop */
	pthread_t worker;
	bool worker_started;
	struct ipoib_queue_stats stats;
};

/* One IPoIB link (the kernel's ipoib_dev_priv). */
struct ipoib_dev_priv {
	char name[IFNAMSIZ];		/* ipoib_err() prefix: the TAP name */
	const struct ipoibd_link_config *cfg;
	struct ipoibd_device *dev;
	struct ipoibd *d;
	uint8_t port;
	uint16_t pkey_index;
	unsigned int mtu;		/* link MTU: IB MTU - 4 or cfg */
	union ibv_gid gid;
	uint32_t qpn;
	bool carrier;
	struct ipoibd_tap tap;
	int ifindex;
	struct ibv_pd *pd;
	struct ibv_mr *rx_mr;
	void *rx_buf;
	size_t rx_buf_size;		/* per receive: GRH + encap + MTU */
	unsigned int num_queues;
	struct ipoib_queue *queues;
	TAILQ_ENTRY(ipoib_dev_priv) link;
};

/* The "ipoib" client's context for one device: its links. */
struct ipoib_dev_ctx {
	struct ipoibd_device *dev;
	TAILQ_HEAD(, ipoib_dev_priv) links;
};

int ipoib_client_init(struct ipoibd *d);
void ipoib_client_fini(struct ipoibd *d);
/* Logs each configured link that was not built; 0 or -ENODEV. */
int ipoib_check_links(struct ipoibd *d);
/* The client's context on dev (its links), or NULL.  Main thread. */
struct ipoib_dev_ctx *ipoib_dev_ctx_get(struct ipoibd *d,
				       struct ipoibd_device *dev);

/* ---- ctl.c ------------------------------------------------------------- */

/* Abstract socket: one name per network namespace. */
#define IPOIBD_CTL_NAME "ipoibd.control"

int ipoibd_ctl_init(struct ipoibd *d);
void ipoibd_ctl_fini(struct ipoibd *d);
/* The client side: `ipoibd status [--json]`; returns an exit code. */
int ipoibd_status_cmd(bool json);

/* ---- the daemon --------------------------------------------------------- */

struct ipoibd {
	struct ipoibd_config cfg;
	struct ipoibd_loop loop;
	struct ipoibd_registry reg;
	struct ipoibd_nl nl;		/* main thread only */
	struct ipoibd_fd_handler signal_h;
	struct ipoibd_fd_handler scan_h;
	struct ipoibd_fd_handler ctl_h;
	TAILQ_HEAD(, ipoibd_device) devices;
	struct ipoibd_interface ipoib_intf;
};

#endif /* IPOIBD_IPOIB_H */
