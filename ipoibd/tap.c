// SPDX-License-Identifier: MIT
/*
 * TAP interfaces through /dev/net/tun: see tap.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <net/if_arp.h>

#include <linux/if_tun.h>

#include "tap.h"

static int xioctl(int fd, unsigned long req, void *arg)
{
	int ret;

	do {
		ret = ioctl(fd, req, arg);
	} while (ret < 0 && errno == EINTR);
	return ret < 0 ? -errno : 0;
}

/* One queue fd attached to tap->name with tap->flags. */
static int tap_attach(struct ipoibd_tap *tap, struct ifreq *ifr)
{
	int fd, ret;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	memset(ifr, 0, sizeof(*ifr));
	snprintf(ifr->ifr_name, sizeof(ifr->ifr_name), "%s", tap->name);
	ifr->ifr_flags = IFF_TAP | IFF_NO_PI;
	if (tap->flags & IPOIBD_TAP_MULTI_QUEUE)
		ifr->ifr_flags |= IFF_MULTI_QUEUE;
	if (tap->flags & IPOIBD_TAP_VNET_HDR)
		ifr->ifr_flags |= IFF_VNET_HDR;
	ret = xioctl(fd, TUNSETIFF, ifr);
	if (ret)
		goto err_close;
	return fd;

err_close:
	close(fd);
	return ret;
}

int ipoibd_tap_open(struct ipoibd_tap *tap, const char *name,
		    unsigned int flags)
{
	struct ifreq ifr;
	int fd, ret;

	if (!name[0] || strlen(name) >= IFNAMSIZ)
		return -EINVAL;
	memset(tap, 0, sizeof(*tap));
	snprintf(tap->name, sizeof(tap->name), "%s", name);
	tap->flags = flags;
	tap->fd = -1;

	fd = tap_attach(tap, &ifr);
	if (fd < 0)
		return fd;
	/* The kernel may have changed the name (a '%d' pattern). */
	snprintf(tap->name, sizeof(tap->name), "%s", ifr.ifr_name);

	/* Should an old daemon have left it persistent, it is ours now. */
	ret = xioctl(fd, TUNSETPERSIST, (void *)0);
	if (ret)
		goto err_close;
	tap->fd = fd;
	return 0;

err_close:
	close(fd);
	return ret;
}

int ipoibd_tap_open_queue(struct ipoibd_tap *tap)
{
	struct ifreq ifr;

	if (!(tap->flags & IPOIBD_TAP_MULTI_QUEUE))
		return -EINVAL;
	return tap_attach(tap, &ifr);
}

void ipoibd_tap_close(struct ipoibd_tap *tap)
{
	if (tap->fd >= 0)
		close(tap->fd);
	tap->fd = -1;
}

int ipoibd_tap_set_mac(struct ipoibd_tap *tap, const uint8_t mac[6])
{
	struct ifreq ifr = {};

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", tap->name);
	ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
	memcpy(ifr.ifr_hwaddr.sa_data, mac, 6);
	/* tun handles SIOCSIFHWADDR on its own fd. */
	return xioctl(tap->fd, SIOCSIFHWADDR, &ifr);
}

int ipoibd_tap_set_carrier(struct ipoibd_tap *tap, bool on)
{
	int v = on;

	return xioctl(tap->fd, TUNSETCARRIER, &v);
}
