// SPDX-License-Identifier: MIT
/*
 * rtnetlink helpers on libnl-route-3: see netlink.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>

#include "netlink.h"

/* <linux/if.h> has it, but clashes with <net/if.h>. */
#ifndef IFF_LOWER_UP
#define IFF_LOWER_UP 0x10000
#endif

/*
 * The one place libnl's error space meets ours.  libnl maps the kernel's
 * errno to NLE_* on receive; this maps back, losing only what libnl lost.
 */
int ipoibd_nl_errno(int nlerr)
{
	switch (abs(nlerr)) {
	case NLE_SUCCESS:
		return 0;
	case NLE_INTR:
		return -EINTR;
	case NLE_BAD_SOCK:
		return -EBADF;
	case NLE_AGAIN:
		return -EAGAIN;
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_EXIST:
		return -EEXIST;
	case NLE_INVAL:
	case NLE_MSG_TOOSHORT:
	case NLE_MSGTYPE_NOSUPPORT:
	case NLE_PARSE_ERR:
		return -EINVAL;
	case NLE_RANGE:
		return -ERANGE;
	case NLE_MSGSIZE:
		return -EMSGSIZE;
	case NLE_OPNOTSUPP:
		return -EOPNOTSUPP;
	case NLE_AF_NOSUPPORT:
		return -EAFNOSUPPORT;
	case NLE_OBJ_NOTFOUND:
	case NLE_NOADDR:
		return -ENOENT;
	case NLE_NODEV:
		return -ENODEV;
	case NLE_BUSY:
		return -EBUSY;
	case NLE_PERM:
		return -EPERM;
	case NLE_NOACCESS:
		return -EACCES;
	case NLE_NOATTR:
		return -ENODATA;
	case NLE_PROTO_MISMATCH:
		return -EPROTONOSUPPORT;
	case NLE_MSG_TRUNC:
		return -EMSGSIZE;
	case NLE_AF_MISMATCH:
		return -EAFNOSUPPORT;
	case NLE_IMMUTABLE:
		return -EROFS;
	default:
		return -EIO;
	}
}

int ipoibd_nl_init(struct ipoibd_nl *nl)
{
	int ret;

	nl->sk = nl_socket_alloc();
	if (!nl->sk)
		return -ENOMEM;
	ret = nl_connect(nl->sk, NETLINK_ROUTE);
	if (ret < 0)
		goto err_free;
	return 0;

err_free:
	nl_socket_free(nl->sk);
	nl->sk = NULL;
	return ipoibd_nl_errno(ret);
}

void ipoibd_nl_fini(struct ipoibd_nl *nl)
{
	if (nl->sk)
		nl_socket_free(nl->sk);	/* closes it too */
	nl->sk = NULL;
}

int ipoibd_nl_ifindex(struct ipoibd_nl *nl, const char *ifname, int *ifindex)
{
	struct rtnl_link *link;
	int ret;

	ret = rtnl_link_get_kernel(nl->sk, 0, ifname, &link);
	if (ret < 0)
		return ipoibd_nl_errno(ret);
	*ifindex = rtnl_link_get_ifindex(link);
	rtnl_link_put(link);
	return 0;
}

int ipoibd_nl_get_link(struct ipoibd_nl *nl, int ifindex,
		       struct ipoibd_nl_link *info)
{
	struct rtnl_link *link;
	struct nl_addr *mac;
	unsigned int flags;
	int ret;

	ret = rtnl_link_get_kernel(nl->sk, ifindex, NULL, &link);
	if (ret < 0)
		return ipoibd_nl_errno(ret);
	memset(info, 0, sizeof(*info));
	info->ifindex = ifindex;
	info->mtu = rtnl_link_get_mtu(link);
	flags = rtnl_link_get_flags(link);
	info->up = flags & IFF_UP;
	info->carrier = flags & IFF_LOWER_UP;
	mac = rtnl_link_get_addr(link);
	if (mac && nl_addr_get_len(mac) == sizeof(info->mac))
		memcpy(info->mac, nl_addr_get_binary_addr(mac),
		       sizeof(info->mac));
	rtnl_link_put(link);
	return 0;
}

/* Applies what 'fill' sets on a change request to the live link. */
static int link_change(struct ipoibd_nl *nl, int ifindex,
		       void (*fill)(struct rtnl_link *req, unsigned long arg),
		       unsigned long arg)
{
	struct rtnl_link *orig, *req;
	int ret;

	ret = rtnl_link_get_kernel(nl->sk, ifindex, NULL, &orig);
	if (ret < 0)
		return ipoibd_nl_errno(ret);
	req = rtnl_link_alloc();
	if (!req) {
		ret = -ENOMEM;
		goto out_orig;
	}
	fill(req, arg);
	ret = ipoibd_nl_errno(rtnl_link_change(nl->sk, orig, req, 0));
	rtnl_link_put(req);
out_orig:
	rtnl_link_put(orig);
	return ret;
}

static void fill_up(struct rtnl_link *req, unsigned long up)
{
	if (up)
		rtnl_link_set_flags(req, IFF_UP);
	else
		rtnl_link_unset_flags(req, IFF_UP);
}

static void fill_mtu(struct rtnl_link *req, unsigned long mtu)
{
	rtnl_link_set_mtu(req, mtu);
}

int ipoibd_nl_set_up(struct ipoibd_nl *nl, int ifindex, bool up)
{
	return link_change(nl, ifindex, fill_up, up);
}

int ipoibd_nl_set_mtu(struct ipoibd_nl *nl, int ifindex, unsigned int mtu)
{
	return link_change(nl, ifindex, fill_mtu, mtu);
}

int ipoibd_nl_addr(struct ipoibd_nl *nl, int ifindex, int family,
		   const void *addr, unsigned int prefixlen, bool add)
{
	size_t len = family == AF_INET6 ? 16 : family == AF_INET ? 4 : 0;
	struct rtnl_addr *ra;
	struct nl_addr *local;
	int ret;

	if (!len || prefixlen > len * 8)
		return -EINVAL;
	ra = rtnl_addr_alloc();
	if (!ra)
		return -ENOMEM;
	local = nl_addr_build(family, addr, len);
	if (!local) {
		ret = -ENOMEM;
		goto out_addr;
	}
	nl_addr_set_prefixlen(local, prefixlen);
	rtnl_addr_set_ifindex(ra, ifindex);
	ret = rtnl_addr_set_local(ra, local);
	if (ret < 0) {
		ret = ipoibd_nl_errno(ret);
		goto out_local;
	}
	rtnl_addr_set_prefixlen(ra, prefixlen);
	if (add)
		ret = rtnl_addr_add(nl->sk, ra, NLM_F_EXCL);
	else
		ret = rtnl_addr_delete(nl->sk, ra, 0);
	ret = ipoibd_nl_errno(ret);
out_local:
	nl_addr_put(local);
out_addr:
	rtnl_addr_put(ra);
	return ret;
}
