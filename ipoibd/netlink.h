/* SPDX-License-Identifier: MIT */
/*
 * All of the daemon's rtnetlink, on libnl-route-3 (STYLE 12): link up and
 * down, MTU, addresses, ifindex, link state read-back.  Every helper
 * returns 0 or -errno (libnl's NLE_* codes are converted here, once) and
 * never prints.  One ipoibd_nl per thread: a libnl socket is not
 * thread-safe.
 */
#ifndef IPOIBD_NETLINK_H
#define IPOIBD_NETLINK_H

#include <stdbool.h>
#include <stdint.h>

struct nl_sock;

struct ipoibd_nl {
	struct nl_sock *sk;
};

struct ipoibd_nl_link {
	int ifindex;
	unsigned int mtu;
	bool up;			/* IFF_UP */
	bool carrier;			/* IFF_LOWER_UP */
	uint8_t mac[6];
};

int ipoibd_nl_init(struct ipoibd_nl *nl);
void ipoibd_nl_fini(struct ipoibd_nl *nl);

/* -ENODEV when there is no such interface. */
int ipoibd_nl_ifindex(struct ipoibd_nl *nl, const char *ifname, int *ifindex);
int ipoibd_nl_get_link(struct ipoibd_nl *nl, int ifindex,
		       struct ipoibd_nl_link *info);
int ipoibd_nl_set_up(struct ipoibd_nl *nl, int ifindex, bool up);
int ipoibd_nl_set_mtu(struct ipoibd_nl *nl, int ifindex, unsigned int mtu);
/*
 * Adds (add = true) or deletes an address; family AF_INET or AF_INET6,
 * addr the raw 4 or 16 bytes.  Adding an existing address is -EEXIST.
 */
int ipoibd_nl_addr(struct ipoibd_nl *nl, int ifindex, int family,
		   const void *addr, unsigned int prefixlen, bool add);

/* libnl's error (a positive or negative NLE_*) as -errno. */
int ipoibd_nl_errno(int nlerr);

#endif /* IPOIBD_NETLINK_H */
