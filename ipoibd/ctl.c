// SPDX-License-Identifier: MIT
/*
 * The control socket and `ipoibd status`.  The socket is abstract
 * (IPOIBD_CTL_NAME): abstract Unix names belong to the network namespace,
 * so each namespace has its own daemon and `ipoibd status` run in it
 * reaches that one.  One request per connection, a line:
 * "status" or "status json"; the answer follows and the daemon closes.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "ipoib.h"

static socklen_t ctl_addr(struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	/* sun_path[0] = '\0': abstract; the length bounds the name. */
	memcpy(sun->sun_path + 1, IPOIBD_CTL_NAME, strlen(IPOIBD_CTL_NAME));
	return offsetof(struct sockaddr_un, sun_path) + 1 +
	       strlen(IPOIBD_CTL_NAME);
}

static void print_queue(FILE *f, const struct ipoib_queue *q, bool json)
{
	const struct ipoib_queue_stats *s = &q->stats;

	if (json)
		fprintf(f, "{\"index\":%u,\"rx_packets\":%lu,\"rx_bytes\":%lu,\"rx_dropped\":%lu,"
			"\"tx_packets\":%lu,\"tx_bytes\":%lu,\"tx_dropped\":%lu}",
			q->index, atomic_load(&s->rx_packets),
			atomic_load(&s->rx_bytes), atomic_load(&s->rx_dropped),
			atomic_load(&s->tx_packets), atomic_load(&s->tx_bytes),
			atomic_load(&s->tx_dropped));
	else
		fprintf(f, "  queue %u: rx %lu packets %lu bytes %lu dropped, tx %lu packets %lu bytes %lu dropped\n",
			q->index, atomic_load(&s->rx_packets),
			atomic_load(&s->rx_bytes), atomic_load(&s->rx_dropped),
			atomic_load(&s->tx_packets), atomic_load(&s->tx_bytes),
			atomic_load(&s->tx_dropped));
}

static void print_link(FILE *f, const struct ipoib_dev_priv *priv, bool json,
		       bool first)
{
	char gid[INET6_ADDRSTRLEN];
	unsigned int i;

	inet_ntop(AF_INET6, priv->gid.raw, gid, sizeof(gid));
	if (json) {
		fprintf(f, "%s{\"ifname\":\"%s\",\"device\":\"%s\",\"port\":%u,"
			"\"pkey\":\"0x%04x\",\"mode\":\"%s\",\"qpn\":%u,"
			"\"gid\":\"%s\",\"mtu\":%u,\"carrier\":%s,\"queues\":[",
			first ? "" : ",", priv->name, priv->dev->rdev.name,
			priv->port, priv->cfg->pkey,
			ipoibd_mode_name(priv->cfg->mode), priv->qpn, gid,
			priv->mtu, priv->carrier ? "true" : "false");
		for (i = 0; i < priv->num_queues; i++) {
			if (i)
				fputc(',', f);
			print_queue(f, &priv->queues[i], true);
		}
		/* TODO(proto): the neighbour table and multicast groups. */
		fputs("],\"neighbours\":[],\"multicast\":[]}", f);
		return;
	}
	fprintf(f, "link %s: device %s port %u pkey 0x%04x mode %s\n"
		"  qpn 0x%06x gid %s mtu %u carrier %s\n",
		priv->name, priv->dev->rdev.name, priv->port, priv->cfg->pkey,
		ipoibd_mode_name(priv->cfg->mode), priv->qpn, gid, priv->mtu,
		priv->carrier ? "on" : "off");
	for (i = 0; i < priv->num_queues; i++)
		print_queue(f, &priv->queues[i], false);
}

static void print_status(struct ipoibd *d, FILE *f, bool json)
{
	struct ipoibd_device *dev;
	struct ipoib_dev_ctx *dctx;
	struct ipoib_dev_priv *priv;
	bool first = true;

	if (json) {
		fputs("{\"devices\":[", f);
		TAILQ_FOREACH(dev, &d->devices, link)
			fprintf(f, "%s{\"name\":\"%s\",\"ports\":%u,\"num_vfs\":%u}",
				dev == TAILQ_FIRST(&d->devices) ? "" : ",",
				dev->rdev.name, dev->attr.phys_port_cnt,
				dev->rdev.num_vfs);
		fputs("],\"links\":[", f);
	} else {
		TAILQ_FOREACH(dev, &d->devices, link)
			fprintf(f, "device %s: %u port(s)\n", dev->rdev.name,
				dev->attr.phys_port_cnt);
	}
	TAILQ_FOREACH(dev, &d->devices, link) {
		dctx = ipoib_dev_ctx_get(d, dev);
		if (!dctx)
			continue;
		TAILQ_FOREACH(priv, &dctx->links, link) {
			print_link(f, priv, json, first);
			first = false;
		}
	}
	if (json)
		fputs("]}\n", f);
}

static int write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len) {
		n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= n;
	}
	return 0;
}

/*
 * Serves one client on the main thread.  The client is local and root
 * or not, it only reads; the timeouts keep a stuck one from wedging the
 * loop for more than a second.
 */
static void ctl_cb(struct ipoibd_fd_handler *h, uint32_t events)
{
	struct timeval tv = { .tv_sec = 1 };
	struct ipoibd *d = h->arg;
	char req[64], *out = NULL;
	size_t outlen = 0;
	ssize_t n;
	FILE *f;
	int fd;

	fd = accept4(h->fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	do {
		n = read(fd, req, sizeof(req) - 1);
	} while (n < 0 && errno == EINTR);
	if (n <= 0)
		goto out_close;
	req[n] = '\0';
	req[strcspn(req, "\n")] = '\0';

	f = open_memstream(&out, &outlen);
	if (!f)
		goto out_close;
	if (!strcmp(req, "status"))
		print_status(d, f, false);
	else if (!strcmp(req, "status json"))
		print_status(d, f, true);
	else
		fprintf(f, "error: unknown request '%.40s'\n", req);
	fclose(f);
	if (write_all(fd, out, outlen))
		ipoibd_dbg("control: a client left before its answer");
	free(out);
out_close:
	close(fd);
}

int ipoibd_ctl_init(struct ipoibd *d)
{
	struct sockaddr_un sun;
	socklen_t len = ctl_addr(&sun);
	int fd, ret;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sun, len)) {
		ret = -errno;
		if (ret == -EADDRINUSE)
			ipoibd_err("another ipoibd runs in this network namespace");
		goto err_close;
	}
	if (listen(fd, 8)) {
		ret = -errno;
		goto err_close;
	}
	d->ctl_h.name = "control";
	d->ctl_h.fd = fd;
	d->ctl_h.cb = ctl_cb;
	d->ctl_h.arg = d;
	ret = ipoibd_loop_add(&d->loop, &d->ctl_h);
	if (ret)
		goto err_close;
	return 0;

err_close:
	close(fd);
	return ret;
}

void ipoibd_ctl_fini(struct ipoibd *d)
{
	ipoibd_loop_del(&d->loop, &d->ctl_h);
	close(d->ctl_h.fd);
}

int ipoibd_status_cmd(bool json)
{
	const char *req = json ? "status json\n" : "status\n";
	struct sockaddr_un sun;
	socklen_t len = ctl_addr(&sun);
	char buf[4096];
	ssize_t n;
	int fd;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, len)) {
		fprintf(stderr, "ipoibd: no ipoibd runs in this network namespace (%s)\n",
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	if (write_all(fd, req, strlen(req)))
		goto err_io;
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto err_io;
		if (!n)
			break;
		if (fwrite(buf, 1, n, stdout) != (size_t)n)
			goto err_io;
	}
	close(fd);
	return 0;

err_io:
	fprintf(stderr, "ipoibd: status: %s\n", strerror(errno));
	close(fd);
	return 1;
}
