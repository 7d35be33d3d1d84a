// SPDX-License-Identifier: MIT
/*
 * RFC 4391 wire encodings and the ARP / Neighbor Discovery translation
 * between the TAP's Ethernet view and IPoIB.  See proto.h for contracts.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "proto.h"

#define IPV6_HLEN		40
#define PROTO_ICMPV6		58

#define ARP_HTYPE_ETHER		1
#define ARP_HTYPE_INFINIBAND	32	/* RFC 4391 §9.2 */
#define ARP_OP_REQUEST		1
#define ARP_OP_REPLY		2
#define ARP_HDR_LEN		8

#define ND_OPT_SOURCE_LLA	1
#define ND_OPT_TARGET_LLA	2
#define ND_OPT_ETH_LEN		8	/* type, length, 6-octet MAC */
#define ND_OPT_IB_LEN		24	/* type, length, 2 pad, 20-octet address */

static inline uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

int ipoib_encap_push(uint8_t *buf, size_t room, uint16_t ethertype)
{
	if (room < IPOIB_ENCAP_LEN)
		return -ENOSPC;
	put_be16(buf, ethertype);
	/* RFC 4391 §6: the reserved 16 bits are zero when sent. */
	buf[2] = 0;
	buf[3] = 0;
	return 0;
}

int ipoib_encap_pull(const uint8_t *buf, size_t len, uint16_t *ethertype)
{
	if (len < IPOIB_ENCAP_LEN)
		return -EINVAL;
	/* ... and ignored when received, whatever they hold. */
	*ethertype = get_be16(buf);
	return 0;
}

int ipoib_hwaddr_pack(const struct ipoib_hwaddr *a,
		      uint8_t out[IPOIB_HWADDR_LEN])
{
	if (a->qpn > IPOIB_QPN_MASK)
		return -EINVAL;
	/* RFC 4391 §9.1.1: flags octet, 24-bit QPN, GID; network order. */
	out[0] = a->flags;
	out[1] = (a->qpn >> 16) & 0xff;
	out[2] = (a->qpn >> 8) & 0xff;
	out[3] = a->qpn & 0xff;
	memcpy(out + 4, a->gid, IPOIB_GID_LEN);
	return 0;
}

void ipoib_hwaddr_unpack(const uint8_t in[IPOIB_HWADDR_LEN],
			 struct ipoib_hwaddr *a)
{
	a->flags = in[0];
	a->qpn = (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3];
	memcpy(a->gid, in + 4, IPOIB_GID_LEN);
}

/* The common prefix of IPoIB MGIDs (RFC 4391 §4.1): ff, flags 1 (transient)
 * and scope, the IPv4/IPv6 signature, the P_Key; the rest zero. */
static void mgid_prefix(uint8_t mgid[IPOIB_GID_LEN], uint8_t scope_octet,
			uint16_t signature, const uint8_t pkey[2])
{
	memset(mgid, 0, IPOIB_GID_LEN);
	mgid[0] = 0xff;
	mgid[1] = scope_octet;
	put_be16(mgid + 2, signature);
	mgid[4] = pkey[0];
	mgid[5] = pkey[1];
}

int ipoib_bcast_mgid(uint16_t pkey, unsigned int scope,
		     uint8_t mgid[IPOIB_GID_LEN])
{
	uint8_t pk[2];

	if (scope > 0xf)
		return -EINVAL;
	/* The group is always named by the full-member form of the P_Key,
	 * so limited and full members of a partition meet in one group. */
	put_be16(pk, pkey | IPOIB_PKEY_FULL);
	mgid_prefix(mgid, 0x10 | scope, 0x401b, pk);
	memset(mgid + 12, 0xff, 4);
	return 0;
}

/* bcast must look like a broadcast MGID: ff1S:401b:... */
static int check_bcast(const uint8_t bcast[IPOIB_GID_LEN])
{
	if (bcast[0] != 0xff || (bcast[1] & 0xf0) != 0x10 ||
	    get_be16(bcast + 2) != 0x401b)
		return -EINVAL;
	return 0;
}

int ipoib_mgid_ipv4(const uint8_t bcast[IPOIB_GID_LEN], const uint8_t group[4],
		    uint8_t mgid[IPOIB_GID_LEN])
{
	static const uint8_t limited_bcast[4] = { 0xff, 0xff, 0xff, 0xff };

	if (check_bcast(bcast))
		return -EINVAL;
	if (!memcmp(group, limited_bcast, 4)) {
		memcpy(mgid, bcast, IPOIB_GID_LEN);
		return 0;
	}
	if ((group[0] & 0xf0) != 0xe0)
		return -EINVAL;
	mgid_prefix(mgid, bcast[1], 0x401b, bcast + 4);
	/* The top nibble of an IPv4 group is always 1110; only the low
	 * 28 bits name it, right-aligned in the MGID. */
	mgid[12] = group[0] & 0x0f;
	memcpy(mgid + 13, group + 1, 3);
	return 0;
}

int ipoib_mgid_ipv6(const uint8_t bcast[IPOIB_GID_LEN],
		    const uint8_t group[16], uint8_t mgid[IPOIB_GID_LEN])
{
	if (check_bcast(bcast) || group[0] != 0xff)
		return -EINVAL;
	/* Scope from the broadcast group, not the IPv6 group: the RFC scopes
	 * every group of the link alike (Linux does the same). */
	mgid_prefix(mgid, bcast[1], 0x601b, bcast + 4);
	memcpy(mgid + 6, group + 6, 10);
	return 0;
}

/*
 * RFC 4391 §8 forms the interface identifier from the port GUID and
 * inverts the universal/local bit as for any EUI-64 (RFC 4291 App. A).
 * Linux (addrconf_ifid_infiniband) instead always *sets* it (OR 0x02), so
 * a locally administered GUID keeps the bit set rather than losing it.
 * We implement Linux's behaviour: peers on a fabric shared with kernel
 * IPoIB must derive the same link-local addresses, and for the usual
 * vendor GUIDs (bit clear) the two agree anyway.
 */
void ipoib_ifid(const uint8_t guid[8], uint8_t ifid[8])
{
	memcpy(ifid, guid, 8);
	ifid[0] |= 0x02;
}

void ipoib_ll_addr(const uint8_t guid[8], uint8_t addr[16])
{
	memset(addr, 0, 8);
	addr[0] = 0xfe;
	addr[1] = 0x80;
	ipoib_ifid(guid, addr + 8);
}

/*
 * FNV-1a (64 bit) over salt, QPN and GID: cheap, well mixed in its low
 * bits, and fixed forever, so a peer keeps its MAC across daemon restarts.
 */
void ipoib_synth_mac(const uint8_t hw[IPOIB_HWADDR_LEN], uint32_t salt,
		     uint8_t mac[IPOIB_ETH_ALEN])
{
	uint64_t h = 0xcbf29ce484222325ull;
	uint8_t in[4 + IPOIB_HWADDR_LEN - 1];
	size_t i;

	in[0] = salt >> 24;
	in[1] = (salt >> 16) & 0xff;
	in[2] = (salt >> 8) & 0xff;
	in[3] = salt & 0xff;
	memcpy(in + 4, hw + 1, IPOIB_HWADDR_LEN - 1);	/* not the flags */
	for (i = 0; i < sizeof(in); i++) {
		h ^= in[i];
		h *= 0x100000001b3ull;
	}
	for (i = 0; i < IPOIB_ETH_ALEN; i++)
		mac[i] = (h >> (40 - 8 * i)) & 0xff;
	/* IEEE 802: bit 0x02 of the first octet = locally administered,
	 * bit 0x01 = group; a neighbour is a unicast station. */
	mac[0] = (mac[0] & 0xfc) | 0x02;
}

/* Validates the fixed ARP header for hardware type htype / length hlen
 * (IPv4 only, request or reply) and that len covers the addresses. */
static int arp_check(const uint8_t *arp, size_t len, uint16_t htype,
		     uint8_t hlen)
{
	uint16_t op;

	if (len < ARP_HDR_LEN + 2 * ((size_t)hlen + 4))
		return -EINVAL;
	op = get_be16(arp + 6);
	if (get_be16(arp) != htype || get_be16(arp + 2) != IPOIB_ETHERTYPE_IPV4 ||
	    arp[4] != hlen || arp[5] != 4 ||
	    (op != ARP_OP_REQUEST && op != ARP_OP_REPLY))
		return -EINVAL;
	return 0;
}

static int mac_to_hw(const struct ipoib_addr_map *map, const uint8_t *mac,
		     uint8_t *hw)
{
	/* An ARP request's unknown target: zeros on both sides. */
	if (all_zero(mac, IPOIB_ETH_ALEN)) {
		memset(hw, 0, IPOIB_HWADDR_LEN);
		return 0;
	}
	return map->mac_to_hw(map->ctx, mac, hw);
}

static int hw_to_mac(const struct ipoib_addr_map *map, const uint8_t *hw,
		     uint8_t *mac)
{
	if (all_zero(hw, IPOIB_HWADDR_LEN)) {
		memset(mac, 0, IPOIB_ETH_ALEN);
		return 0;
	}
	return map->hw_to_mac(map->ctx, hw, mac);
}

int ipoib_arp_eth_to_ib(const uint8_t *arp, size_t len,
			const struct ipoib_addr_map *map, uint8_t *out,
			size_t *out_len)
{
	const uint8_t *sha = arp + 8, *spa = arp + 14;
	const uint8_t *tha = arp + 18, *tpa = arp + 24;
	int ret;

	ret = arp_check(arp, len, ARP_HTYPE_ETHER, IPOIB_ETH_ALEN);
	if (ret)
		return ret;
	if (*out_len < IPOIB_ARP_IB_LEN)
		return -ENOSPC;

	put_be16(out, ARP_HTYPE_INFINIBAND);
	put_be16(out + 2, IPOIB_ETHERTYPE_IPV4);
	out[4] = IPOIB_HWADDR_LEN;
	out[5] = 4;
	memcpy(out + 6, arp + 6, 2);			/* opcode */
	ret = mac_to_hw(map, sha, out + 8);
	if (ret)
		return ret;
	memcpy(out + 28, spa, 4);
	ret = mac_to_hw(map, tha, out + 32);
	if (ret)
		return ret;
	memcpy(out + 52, tpa, 4);
	*out_len = IPOIB_ARP_IB_LEN;
	return 0;
}

int ipoib_arp_ib_to_eth(const uint8_t *arp, size_t len,
			const struct ipoib_addr_map *map, uint8_t *out,
			size_t *out_len)
{
	const uint8_t *sha = arp + 8, *spa = arp + 28;
	const uint8_t *tha = arp + 32, *tpa = arp + 52;
	int ret;

	ret = arp_check(arp, len, ARP_HTYPE_INFINIBAND, IPOIB_HWADDR_LEN);
	if (ret)
		return ret;
	if (*out_len < IPOIB_ARP_ETH_LEN)
		return -ENOSPC;

	put_be16(out, ARP_HTYPE_ETHER);
	put_be16(out + 2, IPOIB_ETHERTYPE_IPV4);
	out[4] = IPOIB_ETH_ALEN;
	out[5] = 4;
	memcpy(out + 6, arp + 6, 2);
	ret = hw_to_mac(map, sha, out + 8);
	if (ret)
		return ret;
	memcpy(out + 14, spa, 4);
	ret = hw_to_mac(map, tha, out + 18);
	if (ret)
		return ret;
	memcpy(out + 24, tpa, 4);
	*out_len = IPOIB_ARP_ETH_LEN;
	return 0;
}

/* Offset of the options in an ND message (RFC 4861 §4.1-4.5), counted
 * from the ICMPv6 header; 0 for a type that is not ND. */
static size_t nd_opts_offset(uint8_t type)
{
	switch (type) {
	case 133:		/* Router Solicitation: reserved */
		return 8;
	case 134:		/* Router Advertisement: hop limit .. retrans */
		return 16;
	case 135:		/* Neighbor Solicitation: reserved, target */
	case 136:		/* Neighbor Advertisement: flags, target */
		return 24;
	case 137:		/* Redirect: reserved, target, destination */
		return 40;
	default:
		return 0;
	}
}

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		sum += get_be16(p + i);
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	return sum;
}

/* One's complement sum of the ICMPv6 pseudo-header (RFC 8200 §8.1:
 * source, destination, upper-layer length, next header) and the message. */
static uint16_t icmpv6_sum(const uint8_t *ip6, const uint8_t *icmp,
			   size_t icmp_len)
{
	uint32_t sum;

	sum = csum_add(0, ip6 + 8, 32);
	sum += (uint32_t)(icmp_len >> 16) + (icmp_len & 0xffff);
	sum += PROTO_ICMPV6;
	sum = csum_add(sum, icmp, icmp_len);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* Rewrites one link-layer address option at opt (olen bytes) into out;
 * returns the bytes written or -errno. */
static int nd_lla_opt(const uint8_t *opt, size_t olen, bool to_ib,
		      const struct ipoib_addr_map *map, uint8_t *out,
		      size_t room)
{
	int ret;

	if (to_ib) {
		if (olen != ND_OPT_ETH_LEN)
			return -EINVAL;
		if (room < ND_OPT_IB_LEN)
			return -ENOSPC;
		out[0] = opt[0];
		out[1] = ND_OPT_IB_LEN / 8;
		/* RFC 4391 §9.3: two octets of padding, zero when sent. */
		out[2] = 0;
		out[3] = 0;
		ret = map->mac_to_hw(map->ctx, opt + 2, out + 4);
		return ret ? ret : ND_OPT_IB_LEN;
	}
	if (olen != ND_OPT_IB_LEN)
		return -EINVAL;
	if (room < ND_OPT_ETH_LEN)
		return -ENOSPC;
	out[0] = opt[0];
	out[1] = ND_OPT_ETH_LEN / 8;
	ret = map->hw_to_mac(map->ctx, opt + 4, out + 2);
	return ret ? ret : ND_OPT_ETH_LEN;
}

static int nd_translate(const uint8_t *pkt, size_t len, bool to_ib,
			const struct ipoib_addr_map *map, uint8_t *out,
			size_t *out_len)
{
	const uint8_t *icmp = pkt + IPV6_HLEN;
	size_t plen, optoff, off, olen, o, room = *out_len;
	uint16_t sum;
	int ret;

	if (len < IPV6_HLEN || (pkt[0] >> 4) != 6)
		return -EINVAL;
	/* ND behind extension headers is not recognised: stacks send it
	 * bare, and the caller forwards what is not ND unchanged. */
	if (pkt[6] != PROTO_ICMPV6)
		return -ENOENT;
	plen = get_be16(pkt + 4);
	if (plen < 4 || plen > len - IPV6_HLEN)
		return -EINVAL;
	optoff = nd_opts_offset(icmp[0]);
	if (!optoff)
		return -ENOENT;
	/* RFC 4861 §6.1: code 0, and the fixed part present. */
	if (icmp[1] != 0 || plen < optoff)
		return -EINVAL;
	if (icmpv6_sum(pkt, icmp, plen) != 0xffff)
		return -EBADMSG;

	if (room < IPV6_HLEN + optoff)
		return -ENOSPC;
	memcpy(out, pkt, IPV6_HLEN + optoff);
	o = IPV6_HLEN + optoff;

	for (off = optoff; off < plen; off += olen) {
		/* RFC 4861 §4.6: length in units of 8 octets, never 0. */
		if (plen - off < 2)
			return -EINVAL;
		olen = (size_t)icmp[off + 1] * 8;
		if (!olen || olen > plen - off)
			return -EINVAL;
		if (icmp[off] == ND_OPT_SOURCE_LLA ||
		    icmp[off] == ND_OPT_TARGET_LLA) {
			ret = nd_lla_opt(icmp + off, olen, to_ib, map, out + o,
					 room - o);
			if (ret < 0)
				return ret;
			o += ret;
			continue;
		}
		if (room - o < olen)
			return -ENOSPC;
		memcpy(out + o, icmp + off, olen);
		o += olen;
	}

	if (o - IPV6_HLEN > 0xffff)
		return -EMSGSIZE;
	put_be16(out + 4, o - IPV6_HLEN);
	put_be16(out + IPV6_HLEN + 2, 0);
	sum = icmpv6_sum(out, out + IPV6_HLEN, o - IPV6_HLEN);
	put_be16(out + IPV6_HLEN + 2, (uint16_t)~sum);
	*out_len = o;
	return 0;
}

int ipoib_nd_eth_to_ib(const uint8_t *pkt, size_t len,
		       const struct ipoib_addr_map *map, uint8_t *out,
		       size_t *out_len)
{
	return nd_translate(pkt, len, true, map, out, out_len);
}

int ipoib_nd_ib_to_eth(const uint8_t *pkt, size_t len,
		       const struct ipoib_addr_map *map, uint8_t *out,
		       size_t *out_len)
{
	return nd_translate(pkt, len, false, map, out, out_len);
}
