/* SPDX-License-Identifier: MIT */
/*
 * The kernel side of a link: a TAP interface made with the /dev/net/tun
 * ioctls (IFF_TAP | IFF_NO_PI; IFF_MULTI_QUEUE and IFF_VNET_HDR on
 * request).  Not persistent: the interface goes when its last queue fd is
 * closed, so a killed daemon leaves no interface behind.  0 or -errno.
 */
#ifndef IPOIBD_TAP_H
#define IPOIBD_TAP_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

enum ipoibd_tap_flags {
	IPOIBD_TAP_MULTI_QUEUE = 1u << 0,
	IPOIBD_TAP_VNET_HDR = 1u << 1,
};

struct ipoibd_tap {
	char name[IFNAMSIZ];		/* as the kernel named it */
	int fd;				/* queue 0, O_NONBLOCK */
	unsigned int flags;
};

/* Creates (or attaches to) the TAP called name. */
int ipoibd_tap_open(struct ipoibd_tap *tap, const char *name,
		    unsigned int flags);
/* Another queue fd of a multi-queue TAP (O_NONBLOCK); returns fd or -errno. */
int ipoibd_tap_open_queue(struct ipoibd_tap *tap);
void ipoibd_tap_close(struct ipoibd_tap *tap);

int ipoibd_tap_set_mac(struct ipoibd_tap *tap, const uint8_t mac[6]);
/* Carrier (IFF_LOWER_UP) through TUNSETCARRIER (Linux >= 5.0). */
int ipoibd_tap_set_carrier(struct ipoibd_tap *tap, bool on);

#endif /* IPOIBD_TAP_H */
