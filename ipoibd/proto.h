/* SPDX-License-Identifier: MIT */
/*
 * RFC 4391 (IP over InfiniBand) wire encodings: the encapsulation header,
 * the 20-octet link-layer address, multicast GIDs, the IPv6 interface
 * identifier, and the translation of ARP and Neighbor Discovery between the
 * Ethernet form the TAP side speaks and the IPoIB form on the fabric.
 *
 * Pure functions, no I/O and no allocation: the daemon's data path and the
 * unit tests call them alike.  Errors are 0 or -errno.  Addresses are byte
 * arrays in network order throughout, so no caller has to think about host
 * byte order.  Output buffers never overlap input buffers.
 */
#ifndef IPOIB_PROTO_H
#define IPOIB_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define IPOIB_ENCAP_LEN		4	/* RFC 4391 §6 */
#define IPOIB_HWADDR_LEN	20	/* RFC 4391 §9.1.1 */
#define IPOIB_GID_LEN		16
#define IPOIB_ETH_ALEN		6

#define IPOIB_ETHERTYPE_IPV4	0x0800
#define IPOIB_ETHERTYPE_ARP	0x0806
#define IPOIB_ETHERTYPE_IPV6	0x86dd

#define IPOIB_QKEY		0x0b1b
#define IPOIB_MCAST_QPN		0xffffff	/* QPN of multicast link addresses */
#define IPOIB_QPN_MASK		0xffffff

/*
 * Flags octet of the link-layer address.  RFC 4391 §9.1.1 reserves the
 * octet; RFC 4755 §3.1 gives 0x80 to "connected mode supported".  Linux
 * names 0x40 UC (connected mode over UC QPs) but never negotiates it: we
 * never set it and carry it through unchanged, like every reserved bit.
 */
#define IPOIB_HWFLAG_CM		0x80
#define IPOIB_HWFLAG_UC		0x40

#define IPOIB_PKEY_FULL		0x8000	/* full-membership bit of a P_Key */
#define IPOIB_SCOPE_LINK	0x2	/* MGID scope nibble, link-local */

/* An IPoIB link-layer address, unpacked. */
struct ipoib_hwaddr {
	uint8_t flags;				/* IPOIB_HWFLAG_* and reserved */
	uint32_t qpn;				/* 24 bits */
	uint8_t gid[IPOIB_GID_LEN];		/* port GID or MGID */
};

/*
 * Encapsulation header (RFC 4391 §6): the EtherType, then 16 reserved bits
 * that are zero when sent and ignored when received.
 * push writes IPOIB_ENCAP_LEN bytes at buf (-ENOSPC if room is smaller);
 * pull reads the EtherType (-EINVAL if len < IPOIB_ENCAP_LEN).  Neither
 * judges the EtherType: which ones the link carries is the caller's call.
 */
int ipoib_encap_push(uint8_t *buf, size_t room, uint16_t ethertype);
int ipoib_encap_pull(const uint8_t *buf, size_t len, uint16_t *ethertype);

/* Link-layer address <-> its 20 wire octets.  pack refuses a QPN wider than
 * 24 bits with -EINVAL; unpack accepts any octets. */
int ipoib_hwaddr_pack(const struct ipoib_hwaddr *a,
		      uint8_t out[IPOIB_HWADDR_LEN]);
void ipoib_hwaddr_unpack(const uint8_t in[IPOIB_HWADDR_LEN],
			 struct ipoib_hwaddr *a);

/*
 * Broadcast group of a partition (RFC 4391 §4.1):
 * ff1S:401b:PPPP:0000:0000:0000:ffff:ffff, S = scope, PPPP = pkey with the
 * full-membership bit set.  -EINVAL for a scope above 15.
 */
int ipoib_bcast_mgid(uint16_t pkey, unsigned int scope,
		     uint8_t mgid[IPOIB_GID_LEN]);

/*
 * IP multicast group -> MGID (RFC 4391 §4.1), on the link whose broadcast
 * MGID is bcast: its P_Key and scope carry over, whatever the IPv6 group's
 * own scope.  IPv4: ff1S:401b:PPPP:: plus the low 28 bits of the group in
 * the last four octets; 255.255.255.255 gives the broadcast group itself.
 * IPv6: ff1S:601b:PPPP: plus the low 80 bits of the group.
 * -EINVAL for a group that is not multicast (IPv4 224/4, IPv6 ff00::/8).
 */
int ipoib_mgid_ipv4(const uint8_t bcast[IPOIB_GID_LEN], const uint8_t group[4],
		    uint8_t mgid[IPOIB_GID_LEN]);
int ipoib_mgid_ipv6(const uint8_t bcast[IPOIB_GID_LEN],
		    const uint8_t group[16], uint8_t mgid[IPOIB_GID_LEN]);

/*
 * IPv6 interface identifier from the port GUID (RFC 4391 §8), and the
 * link-local address fe80::/64 + that identifier.  See proto.c for which
 * treatment of the universal/local bit this implements (Linux's).
 */
void ipoib_ifid(const uint8_t guid[8], uint8_t ifid[8]);
void ipoib_ll_addr(const uint8_t guid[8], uint8_t addr[16]);

/*
 * Synthetic MAC standing for a link-layer address on the TAP side: a
 * locally administered unicast MAC derived from the QPN and GID (not the
 * flags, so a peer that turns connected mode on or off keeps its MAC).
 * Deterministic; different addresses can collide.  Detecting that is the
 * caller's (the neighbour table): it retries with salt + 1 until the MAC
 * is free, and remembers the salt it settled on.
 */
void ipoib_synth_mac(const uint8_t hw[IPOIB_HWADDR_LEN], uint32_t salt,
		     uint8_t mac[IPOIB_ETH_ALEN]);

/*
 * The daemon's neighbour table, as the ARP/ND translators see it.
 * mac_to_hw: the link-layer address behind a MAC of the TAP side (our own
 * TAP MAC included, and ff:ff:ff:ff:ff:ff if the table wants to allow it).
 * hw_to_mac: the MAC standing for a link-layer address, learning it if it
 * is new.  Both return 0 or -errno; an error aborts the translation and is
 * returned as is.  The all-zero "unknown" address of an ARP request's
 * target is translated without asking (zeros <-> zeros).
 */
struct ipoib_addr_map {
	int (*mac_to_hw)(void *ctx, const uint8_t mac[IPOIB_ETH_ALEN],
			 uint8_t hw[IPOIB_HWADDR_LEN]);
	int (*hw_to_mac)(void *ctx, const uint8_t hw[IPOIB_HWADDR_LEN],
			 uint8_t mac[IPOIB_ETH_ALEN]);
	void *ctx;
};

#define IPOIB_ARP_ETH_LEN	28	/* 8 + 2 * (6 + 4) */
#define IPOIB_ARP_IB_LEN	56	/* 8 + 2 * (20 + 4), RFC 4391 §9.2 */

/*
 * ARP packet (the payload after the Ethernet header / the encapsulation
 * header) from Ethernet form (htype 1, hlen 6) to IPoIB form (htype 32,
 * hlen 20) and back.  Only IPv4 (ptype 0x0800, plen 4) requests and
 * replies (opcode 1, 2) are valid; anything else is -EINVAL.  Trailing
 * bytes (Ethernet padding) are ignored.  On entry *out_len is the room at
 * out; on success it is the length written (-ENOSPC if too small).
 */
int ipoib_arp_eth_to_ib(const uint8_t *arp, size_t len,
			const struct ipoib_addr_map *map, uint8_t *out,
			size_t *out_len);
int ipoib_arp_ib_to_eth(const uint8_t *arp, size_t len,
			const struct ipoib_addr_map *map, uint8_t *out,
			size_t *out_len);

/*
 * IPv6 Neighbor Discovery (RS, RA, NS, NA, Redirect; RFC 4861 §4) from
 * Ethernet form to IPoIB form and back: source/target link-layer address
 * options are rewritten (Ethernet: length 1, 6-octet MAC; IPoIB, RFC 4391
 * §9.3: length 3, two zero octets, then the 20-octet address), the IPv6
 * Payload Length and the ICMPv6 checksum are recomputed, other options are
 * copied unchanged.  pkt starts at the IPv6 header.
 *   -ENOENT   not an ND message (not ICMPv6 right after the fixed header,
 *             or another ICMPv6 type): the caller forwards it unchanged;
 *   -EINVAL   malformed: truncated, a code other than 0, an option of
 *             length 0 or running past the message, or a link-layer
 *             address option of the wrong length for its side;
 *   -EBADMSG  the ICMPv6 checksum is wrong (translating would launder it);
 *   -ENOSPC   *out_len too small; -EMSGSIZE the result exceeds 65535.
 * On entry *out_len is the room at out; on success, the length written.
 */
int ipoib_nd_eth_to_ib(const uint8_t *pkt, size_t len,
		       const struct ipoib_addr_map *map, uint8_t *out,
		       size_t *out_len);
int ipoib_nd_ib_to_eth(const uint8_t *pkt, size_t len,
		       const struct ipoib_addr_map *map, uint8_t *out,
		       size_t *out_len);

#endif /* IPOIB_PROTO_H */
