// SPDX-License-Identifier: MIT
/*
 * Unit: RFC 4391 wire encodings and the ARP/ND translation
 * (ipoibd/proto.c).
 *
 * Every expected byte string is written out here, derived from the RFCs
 * by hand (ND checksums with an independent one's-complement sum), never
 * produced by the code under test.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "check_suites.h"
#include "proto.h"

/* Two neighbours: A (datagram mode) and B (connected mode flag). */
static const uint8_t hw_a[IPOIB_HWADDR_LEN] = {
	0x00, 0x00, 0x00, 0x48,			/* flags, QPN 0x48 */
	0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x02, 0xc9, 0x03, 0x00, 0x01, 0x23, 0x45,
};
static const uint8_t hw_b[IPOIB_HWADDR_LEN] = {
	0x80, 0x00, 0x01, 0x02,			/* CM, QPN 0x102 */
	0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x02, 0x75, 0x69, 0x62, 0x00, 0xab, 0xcd, 0x01,
};
static const uint8_t mac_a[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a };
static const uint8_t mac_b[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x0b };

/* The neighbour table the translators see: A and B, nothing else. */
static int calls;

static int test_mac_to_hw(void *ctx, const uint8_t mac[6], uint8_t hw[20])
{
	calls++;
	if (!memcmp(mac, mac_a, 6))
		memcpy(hw, hw_a, 20);
	else if (!memcmp(mac, mac_b, 6))
		memcpy(hw, hw_b, 20);
	else
		return -ENOENT;
	return 0;
}

static int test_hw_to_mac(void *ctx, const uint8_t hw[20], uint8_t mac[6])
{
	calls++;
	if (!memcmp(hw, hw_a, 20))
		memcpy(mac, mac_a, 6);
	else if (!memcmp(hw, hw_b, 20))
		memcpy(mac, mac_b, 6);
	else
		return -ENOENT;
	return 0;
}

static const struct ipoib_addr_map map = {
	.mac_to_hw = test_mac_to_hw,
	.hw_to_mac = test_hw_to_mac,
};

#define ck_assert_bytes(got, want, n, ...)				\
	ck_assert_msg(!memcmp((got), (want), (n)), __VA_ARGS__)

/* ---- encapsulation header (RFC 4391 §6) ---- */

START_TEST(test_encap)
{
	static const uint8_t want_ip[4] = { 0x08, 0x00, 0x00, 0x00 };
	static const uint8_t want_ip6[4] = { 0x86, 0xdd, 0x00, 0x00 };
	static const uint8_t rx[4] = { 0x08, 0x06, 0xab, 0xcd };
	uint8_t buf[4];
	uint16_t et = 0;

	memset(buf, 0xee, sizeof(buf));
	ck_assert_msg(ipoib_encap_push(buf, 4, IPOIB_ETHERTYPE_IPV4) == 0 &&
		      !memcmp(buf, want_ip, 4),
		      "an IPv4 header should be 08 00 00 00 (reserved bits zero)");
	ck_assert_msg(ipoib_encap_push(buf, 4, IPOIB_ETHERTYPE_IPV6) == 0 &&
		      !memcmp(buf, want_ip6, 4),
		      "an IPv6 header should be 86 dd 00 00");
	ck_assert_msg(ipoib_encap_push(buf, 3, IPOIB_ETHERTYPE_IPV4) == -ENOSPC,
		      "pushing into 3 bytes should give -ENOSPC");
	ck_assert_msg(ipoib_encap_pull(rx, 4, &et) == 0 &&
		      et == IPOIB_ETHERTYPE_ARP,
		      "08 06 ab cd should read as ARP, reserved bits ignored (got 0x%04x)",
		      et);
	ck_assert_msg(ipoib_encap_pull(rx, 3, &et) == -EINVAL,
		      "a 3-byte datagram should give -EINVAL");
}
END_TEST

/* ---- link-layer address (RFC 4391 §9.1.1) ---- */

START_TEST(test_hwaddr)
{
	struct ipoib_hwaddr a = {
		.flags = IPOIB_HWFLAG_CM,
		.qpn = 0x000102,
		.gid = { 0xfe, 0x80, 0, 0, 0, 0, 0, 0,
			 0x02, 0x75, 0x69, 0x62, 0x00, 0xab, 0xcd, 0x01 },
	};
	static const uint8_t wide[20] = { 0x40, 0xab, 0xcd, 0xef };
	struct ipoib_hwaddr b;
	uint8_t out[20];

	ck_assert_msg(ipoib_hwaddr_pack(&a, out) == 0, "packing B should succeed");
	ck_assert_bytes(out, hw_b, 20,
			"B should pack as 80 | 00 01 02 | fe80::275:6962:ab:cd01");
	ipoib_hwaddr_unpack(hw_a, &b);
	ck_assert_msg(b.flags == 0 && b.qpn == 0x48 && b.gid[0] == 0xfe &&
		      b.gid[15] == 0x45,
		      "A should unpack as flags 0, QPN 0x48, GID fe80::...2345");
	ipoib_hwaddr_unpack(wide, &b);
	ck_assert_msg(b.flags == IPOIB_HWFLAG_UC && b.qpn == 0xabcdef,
		      "40 ab cd ef should unpack as flag 0x40 (kept) and QPN 0xabcdef, got 0x%02x 0x%06x",
		      b.flags, b.qpn);
	ck_assert_msg(ipoib_hwaddr_pack(&b, out) == 0 && !memcmp(out, wide, 20),
		      "unpack then pack should give the same 20 octets");
	a.qpn = 0x1000000;
	ck_assert_msg(ipoib_hwaddr_pack(&a, out) == -EINVAL,
		      "a QPN wider than 24 bits should give -EINVAL");
}
END_TEST

/* ---- multicast GIDs (RFC 4391 §4.1) ---- */

static const uint8_t bcast_ffff[16] = {
	0xff, 0x12, 0x40, 0x1b, 0xff, 0xff, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
};
static const uint8_t bcast_8001_s5[16] = {
	0xff, 0x15, 0x40, 0x1b, 0x80, 0x01, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
};

START_TEST(test_bcast_mgid)
{
	uint8_t mgid[16];

	ck_assert_msg(ipoib_bcast_mgid(0xffff, IPOIB_SCOPE_LINK, mgid) == 0 &&
		      !memcmp(mgid, bcast_ffff, 16),
		      "the default partition's group should be ff12:401b:ffff::ffff:ffff");
	/* A limited-member P_Key names the group by its full-member form. */
	ck_assert_msg(ipoib_bcast_mgid(0x0001, 5, mgid) == 0 &&
		      !memcmp(mgid, bcast_8001_s5, 16),
		      "P_Key 0x0001, scope 5 should give ff15:401b:8001::ffff:ffff");
	ck_assert_msg(ipoib_bcast_mgid(0xffff, 16, mgid) == -EINVAL,
		      "a scope above 15 should give -EINVAL");
}
END_TEST

START_TEST(test_mgid_ipv4)
{
	static const uint8_t all_hosts[4] = { 224, 0, 0, 1 };
	static const uint8_t ssdp[4] = { 239, 255, 255, 250 };
	static const uint8_t mdns[4] = { 224, 0, 0, 251 };
	static const uint8_t limited[4] = { 255, 255, 255, 255 };
	static const uint8_t unicast[4] = { 10, 0, 0, 1 };
	uint8_t want[16];
	static const uint8_t want_all_hosts[16] = {
		0xff, 0x12, 0x40, 0x1b, 0xff, 0xff, 0, 0,
		0, 0, 0, 0, 0x00, 0x00, 0x00, 0x01,
	};
	static const uint8_t want_ssdp[16] = {
		0xff, 0x12, 0x40, 0x1b, 0xff, 0xff, 0, 0,
		0, 0, 0, 0, 0x0f, 0xff, 0xff, 0xfa,
	};
	static const uint8_t want_mdns_8001[16] = {
		0xff, 0x15, 0x40, 0x1b, 0x80, 0x01, 0, 0,
		0, 0, 0, 0, 0x00, 0x00, 0x00, 0xfb,
	};
	uint8_t mgid[16];

	ck_assert_msg(ipoib_mgid_ipv4(bcast_ffff, all_hosts, mgid) == 0 &&
		      !memcmp(mgid, want_all_hosts, 16),
		      "224.0.0.1 should map to ff12:401b:ffff::1");
	ck_assert_msg(ipoib_mgid_ipv4(bcast_ffff, ssdp, mgid) == 0 &&
		      !memcmp(mgid, want_ssdp, 16),
		      "239.255.255.250 should keep its low 28 bits: ff12:401b:ffff::fff:fffa");
	ck_assert_msg(ipoib_mgid_ipv4(bcast_8001_s5, mdns, mgid) == 0 &&
		      !memcmp(mgid, want_mdns_8001, 16),
		      "224.0.0.251 on ff15:401b:8001 should take that P_Key and scope");
	ck_assert_msg(ipoib_mgid_ipv4(bcast_ffff, limited, mgid) == 0 &&
		      !memcmp(mgid, bcast_ffff, 16),
		      "255.255.255.255 should map to the broadcast group");
	ck_assert_msg(ipoib_mgid_ipv4(bcast_ffff, unicast, mgid) == -EINVAL,
		      "a unicast group should give -EINVAL");
	ck_assert_msg(ipoib_mgid_ipv4(want_all_hosts, all_hosts, mgid) == 0,
		      "any ff1S:401b MGID should be accepted as the broadcast group");
	mgid[2] = 0x60;
	ck_assert_msg(ipoib_mgid_ipv4(mgid, all_hosts, want) == -EINVAL,
		      "an IPv6-signature MGID as broadcast group should give -EINVAL");
}
END_TEST

START_TEST(test_mgid_ipv6)
{
	static const uint8_t solicited[16] = {
		0xff, 0x02, 0, 0, 0, 0, 0, 0,
		0, 0, 0, 0x01, 0xff, 0x12, 0x34, 0x56,
	};
	static const uint8_t site_routers[16] = {
		0xff, 0x05, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02,
	};
	static const uint8_t link_local[16] = {
		0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
	};
	static const uint8_t want_solicited[16] = {
		0xff, 0x12, 0x60, 0x1b, 0xff, 0xff, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x01, 0xff, 0x12, 0x34, 0x56,
	};
	static const uint8_t want_routers_8001[16] = {
		0xff, 0x15, 0x60, 0x1b, 0x80, 0x01, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
	};
	uint8_t mgid[16];

	ck_assert_msg(ipoib_mgid_ipv6(bcast_ffff, solicited, mgid) == 0 &&
		      !memcmp(mgid, want_solicited, 16),
		      "ff02::1:ff12:3456 should map to ff12:601b:ffff::1:ff12:3456");
	ck_assert_msg(ipoib_mgid_ipv6(bcast_8001_s5, site_routers, mgid) == 0 &&
		      !memcmp(mgid, want_routers_8001, 16),
		      "ff05::2 should take the broadcast group's P_Key 8001 and scope 5");
	ck_assert_msg(ipoib_mgid_ipv6(bcast_ffff, site_routers, mgid) == 0 &&
		      mgid[1] == 0x12,
		      "ff05::2 on a scope-2 link should get scope 2, got 0x%02x",
		      mgid[1]);
	ck_assert_msg(ipoib_mgid_ipv6(bcast_ffff, link_local, mgid) == -EINVAL,
		      "a unicast IPv6 address should give -EINVAL");
}
END_TEST

/* ---- IPv6 interface identifier (RFC 4391 §8, Linux behaviour) ---- */

START_TEST(test_ifid)
{
	static const uint8_t guid_vendor[8] = {
		0x00, 0x02, 0xc9, 0x03, 0x00, 0x01, 0x23, 0x45,
	};
	static const uint8_t guid_local[8] = {
		0x02, 0x75, 0x69, 0x62, 0x00, 0xab, 0xcd, 0x01,
	};
	static const uint8_t want_vendor[16] = {
		0xfe, 0x80, 0, 0, 0, 0, 0, 0,
		0x02, 0x02, 0xc9, 0x03, 0x00, 0x01, 0x23, 0x45,
	};
	uint8_t ifid[8], addr[16];

	ipoib_ll_addr(guid_vendor, addr);
	ck_assert_bytes(addr, want_vendor, 16,
			"GUID 0002:c903:0001:2345 should give fe80::202:c903:1:2345");
	/* The RFC's inversion would clear the bit here; Linux keeps it. */
	ipoib_ifid(guid_local, ifid);
	ck_assert_msg(ifid[0] == 0x02 && !memcmp(ifid + 1, guid_local + 1, 7),
		      "a locally administered GUID should keep U/L set (0x02), got 0x%02x",
		      ifid[0]);
}
END_TEST

/* ---- synthetic MACs ---- */

START_TEST(test_synth_mac)
{
	/* FNV-1a 64 of salt (4 octets BE), QPN and GID, low 6 octets, then
	 * 0x02 set and 0x01 cleared in the first: worked out independently. */
	static const uint8_t want_a0[6] = { 0xda, 0xa8, 0xe4, 0x11, 0x45, 0x58 };
	static const uint8_t want_a1[6] = { 0xea, 0xab, 0x5f, 0xa5, 0xc8, 0x9d };
	static const uint8_t want_b0[6] = { 0x0e, 0x63, 0x31, 0xcf, 0xba, 0x33 };
	uint8_t mac[6], again[6], flagged[20];

	ipoib_synth_mac(hw_a, 0, mac);
	ck_assert_bytes(mac, want_a0, 6, "A, salt 0 should give da:a8:e4:11:45:58");
	ipoib_synth_mac(hw_a, 1, mac);
	ck_assert_bytes(mac, want_a1, 6, "A, salt 1 should give ea:ab:5f:a5:c8:9d");
	ipoib_synth_mac(hw_b, 0, mac);
	ck_assert_bytes(mac, want_b0, 6, "B, salt 0 should give 0e:63:31:cf:ba:33");
	ck_assert_msg((mac[0] & 0x03) == 0x02,
		      "a synthetic MAC should be locally administered unicast");

	memcpy(flagged, hw_a, 20);
	flagged[0] = IPOIB_HWFLAG_CM;
	ipoib_synth_mac(hw_a, 7, mac);
	ipoib_synth_mac(flagged, 7, again);
	ck_assert_bytes(mac, again, 6,
			"the flags octet should not change the synthetic MAC");
}
END_TEST


/* ---- ARP (RFC 826 on the TAP, RFC 4391 §9.2 on the fabric) ---- */

/* A asks who has 10.0.0.2; target hardware address unknown (zeros). */
static const uint8_t arp_req_eth[28] = {
	0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,
	0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 10, 0, 0, 1,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 10, 0, 0, 2,
};
static const uint8_t arp_req_ib[56] = {
	0x00, 0x20, 0x08, 0x00, 0x14, 0x04, 0x00, 0x01,
	0x00, 0x00, 0x00, 0x48, 0xfe, 0x80, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xc9, 0x03,
	0x00, 0x01, 0x23, 0x45, 10, 0, 0, 1,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 10, 0, 0, 2,
};
/* B answers A: 10.0.0.2 is at B. */
static const uint8_t arp_rep_eth[28] = {
	0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02,
	0x02, 0x00, 0x00, 0x00, 0x00, 0x0b, 10, 0, 0, 2,
	0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 10, 0, 0, 1,
};
static const uint8_t arp_rep_ib[56] = {
	0x00, 0x20, 0x08, 0x00, 0x14, 0x04, 0x00, 0x02,
	0x80, 0x00, 0x01, 0x02, 0xfe, 0x80, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x02, 0x75, 0x69, 0x62,
	0x00, 0xab, 0xcd, 0x01, 10, 0, 0, 2,
	0x00, 0x00, 0x00, 0x48, 0xfe, 0x80, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0xc9, 0x03,
	0x00, 0x01, 0x23, 0x45, 10, 0, 0, 1,
};

START_TEST(test_arp_vectors)
{
	uint8_t out[64], back[64];
	size_t n, m;
	int ret;

	n = sizeof(out);
	ret = ipoib_arp_eth_to_ib(arp_req_eth, 28, &map, out, &n);
	ck_assert_msg(ret == 0 && n == 56, "an Ethernet request should become 56 bytes, got %d/%zu",
		      ret, n);
	ck_assert_bytes(out, arp_req_ib, 56,
			"the request should read htype 32, hlen 20, A's address, zero target");

	n = sizeof(out);
	ret = ipoib_arp_ib_to_eth(arp_rep_ib, 56, &map, out, &n);
	ck_assert_msg(ret == 0 && n == 28, "an IPoIB reply should become 28 bytes, got %d/%zu",
		      ret, n);
	ck_assert_bytes(out, arp_rep_eth, 28,
			"the reply should read htype 1, hlen 6, B's then A's MAC");

	/* Round trips, with Ethernet padding after the packet ignored. */
	memset(back, 0, sizeof(back));
	memcpy(back, arp_rep_eth, 28);
	n = sizeof(out);
	ck_assert_int_eq(ipoib_arp_eth_to_ib(back, 46, &map, out, &n), 0);
	ck_assert_bytes(out, arp_rep_ib, 56,
			"a padded Ethernet reply should translate as the bare one");
	m = sizeof(back);
	ck_assert_int_eq(ipoib_arp_ib_to_eth(out, n, &map, back, &m), 0);
	ck_assert_msg(m == 28 && !memcmp(back, arp_rep_eth, 28),
		      "Ethernet -> IPoIB -> Ethernet should give the reply back");
	n = sizeof(out);
	ck_assert_int_eq(ipoib_arp_ib_to_eth(arp_req_ib, 56, &map, out, &n), 0);
	ck_assert_bytes(out, arp_req_eth, 28,
			"IPoIB -> Ethernet of the request should give it back");
}
END_TEST

/* Corruption i of an otherwise valid packet, and what it must give. */
struct corrupt {
	size_t at;
	uint8_t val;
	const char *what;
};

static const struct corrupt arp_eth_bad[] = {
	{ 1, 0x06, "hardware type 6" },
	{ 1, 0x20, "hardware type 32 on the Ethernet side" },
	{ 2, 0x86, "protocol 0x8600" },
	{ 4, 0x14, "hlen 20 on the Ethernet side" },
	{ 5, 0x10, "plen 16" },
	{ 7, 0x03, "opcode 3 (RARP)" },
	{ 7, 0x00, "opcode 0" },
};

START_TEST(test_arp_malformed)
{
	uint8_t pkt[56], out[64];
	size_t n, i;
	int ret;

	for (i = 0; i < sizeof(arp_eth_bad) / sizeof(arp_eth_bad[0]); i++) {
		memcpy(pkt, arp_req_eth, 28);
		pkt[arp_eth_bad[i].at] = arp_eth_bad[i].val;
		n = sizeof(out);
		ret = ipoib_arp_eth_to_ib(pkt, 28, &map, out, &n);
		ck_assert_msg(ret == -EINVAL,
			      "an Ethernet ARP with %s should give -EINVAL, got %d",
			      arp_eth_bad[i].what, ret);
	}
	n = sizeof(out);
	ck_assert_msg(ipoib_arp_eth_to_ib(arp_req_eth, 27, &map, out, &n) ==
		      -EINVAL, "a 27-byte Ethernet ARP should give -EINVAL");
	n = sizeof(out);
	ck_assert_msg(ipoib_arp_ib_to_eth(arp_req_ib, 55, &map, out, &n) ==
		      -EINVAL, "a 55-byte IPoIB ARP should give -EINVAL");
	n = sizeof(out);
	ck_assert_msg(ipoib_arp_ib_to_eth(arp_req_eth, 28, &map, out, &n) ==
		      -EINVAL, "Ethernet ARP fed to the IPoIB side should give -EINVAL");
	memcpy(pkt, arp_req_ib, 56);
	pkt[4] = 6;
	n = sizeof(out);
	ck_assert_msg(ipoib_arp_ib_to_eth(pkt, 56, &map, out, &n) == -EINVAL,
		      "an IPoIB ARP with hlen 6 should give -EINVAL");
	n = 55;
	ck_assert_msg(ipoib_arp_eth_to_ib(arp_req_eth, 28, &map, out, &n) ==
		      -ENOSPC, "55 bytes of room for 56 should give -ENOSPC");

	/* A MAC the table does not know: the table's error comes back. */
	memcpy(pkt, arp_req_eth, 28);
	pkt[13] = 0x0c;
	n = sizeof(out);
	ck_assert_msg(ipoib_arp_eth_to_ib(pkt, 28, &map, out, &n) == -ENOENT,
		      "an unknown sender MAC should give the table's -ENOENT");
}
END_TEST

/* ---- Neighbor Discovery (RFC 4861, RFC 4391 §9.3) ---- */

/*
 * Each message in both forms.  Ethernet: LLA option type, length 1, MAC.
 * IPoIB: type, length 3, two zero octets, the 20-octet address; the
 * Payload Length grows by 16 and the checksum changes with it.
 */
/* NS fe80::1 -> ff02::1:ff00:2, target fe80::2, source LLA = A; 72 bytes */
static const uint8_t ns_eth[] = {
	0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff,
	0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x01, 0xff, 0x00, 0x00, 0x02,
	0x87, 0x00, 0x7a, 0x8e, 0x00, 0x00, 0x00, 0x00,
	0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
	0x01, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a,
};
/* the same NS on IPoIB; 88 bytes */
static const uint8_t ns_ib[] = {
	0x60, 0x00, 0x00, 0x00, 0x00, 0x30, 0x3a, 0xff,
	0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x01, 0xff, 0x00, 0x00, 0x02,
	0x87, 0x00, 0x91, 0x71, 0x00, 0x00, 0x00, 0x00,
	0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
	0x01, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x48,
	0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x02, 0xc9, 0x03, 0x00, 0x01, 0x23, 0x45,
};
/* NA fe80::2 -> fe80::1, S|O, target fe80::2, target LLA = B; 72 bytes */
static const uint8_t na_eth[] = {
	0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff,
	0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
	0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x88, 0x00, 0x18, 0x11, 0x60, 0x00, 0x00, 0x00,
	0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
	0x02, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0b,
};
/* the same NA on IPoIB; 88 bytes */
static const uint8_t na_ib[] = {
	0x60, 0x00, 0x00, 0x00, 0x00, 0x30, 0x3a, 0xff,
	0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
	0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x88, 0x00, 0x61, 0x02, 0x60, 0x00, 0x00, 0x00,
	0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
	0x02, 0x03, 0x00, 0x00, 0x80, 0x00, 0x01, 0x02,
	0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x02, 0x75, 0x69, 0x62, 0x00, 0xab, 0xcd, 0x01,
};
/* RA fe80::2 -> ff02::1, hop limit 64, lifetime 1800, source LLA = B,
 * MTU 2044 (copied unchanged); 72 bytes */
static const uint8_t ra_eth[] = {
	0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff,
	0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
	0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x86, 0x00, 0x25, 0x0d, 0x40, 0x00, 0x07, 0x08,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x01, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0b,
	0x05, 0x01, 0x00, 0x00, 0x00, 0x00, 0x07, 0xfc,
};
/* the same RA on IPoIB; 88 bytes */
static const uint8_t ra_ib[] = {
	0x60, 0x00, 0x00, 0x00, 0x00, 0x30, 0x3a, 0xff,
	0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
	0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x86, 0x00, 0x6d, 0xfe, 0x40, 0x00, 0x07, 0x08,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x01, 0x03, 0x00, 0x00, 0x80, 0x00, 0x01, 0x02,
	0xfe, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x02, 0x75, 0x69, 0x62, 0x00, 0xab, 0xcd, 0x01,
	0x05, 0x01, 0x00, 0x00, 0x00, 0x00, 0x07, 0xfc,
};

/* Recomputes the ICMPv6 checksum of an IPv6 packet after the test has
 * corrupted it, so that the corruption, not the checksum, is judged.
 * An independent one's-complement sum (RFC 1071), not the code under test. */
static void fix_csum(uint8_t *pkt)
{
	size_t plen = (size_t)pkt[4] << 8 | pkt[5], i;
	uint32_t sum = plen + 58;

	pkt[42] = 0;
	pkt[43] = 0;
	for (i = 8; i < 40; i += 2)
		sum += (uint32_t)pkt[i] << 8 | pkt[i + 1];
	for (i = 0; i < plen; i++)
		sum += (i & 1) ? pkt[40 + i] : (uint32_t)pkt[40 + i] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	pkt[42] = (uint8_t)(~sum >> 8);
	pkt[43] = (uint8_t)~sum;
}

struct nd_vec {
	const char *name;
	const uint8_t *eth, *ib;
	size_t eth_len, ib_len;
};

static const struct nd_vec nd_vecs[] = {
	{ "NS with a source LLA", ns_eth, ns_ib, sizeof(ns_eth), sizeof(ns_ib) },
	{ "NA with a target LLA", na_eth, na_ib, sizeof(na_eth), sizeof(na_ib) },
	{ "RA with a source LLA and an MTU option", ra_eth, ra_ib,
	  sizeof(ra_eth), sizeof(ra_ib) },
};

START_TEST(test_nd_vectors)
{
	const struct nd_vec *v = &nd_vecs[_i];
	uint8_t out[128];
	size_t n;
	int ret;

	n = sizeof(out);
	ret = ipoib_nd_eth_to_ib(v->eth, v->eth_len, &map, out, &n);
	ck_assert_msg(ret == 0 && n == v->ib_len,
		      "%s should become %zu bytes on IPoIB, got %d/%zu",
		      v->name, v->ib_len, ret, n);
	ck_assert_msg(!memcmp(out, v->ib, n),
		      "%s should read as the IPoIB form (length 3 option, payload length, checksum)",
		      v->name);

	n = sizeof(out);
	ret = ipoib_nd_ib_to_eth(v->ib, v->ib_len, &map, out, &n);
	ck_assert_msg(ret == 0 && n == v->eth_len,
		      "%s should become %zu bytes on Ethernet, got %d/%zu",
		      v->name, v->eth_len, ret, n);
	ck_assert_msg(!memcmp(out, v->eth, n),
		      "%s should read as the Ethernet form (length 1 option, payload length, checksum)",
		      v->name);
}
END_TEST

START_TEST(test_nd_not_nd)
{
	uint8_t pkt[128], out[128];
	size_t n;

	memcpy(pkt, ns_eth, sizeof(ns_eth));
	pkt[40] = 128;			/* Echo Request */
	fix_csum(pkt);
	n = sizeof(out);
	ck_assert_msg(ipoib_nd_eth_to_ib(pkt, sizeof(ns_eth), &map, out, &n) ==
		      -ENOENT, "an Echo Request should give -ENOENT (not ND)");
	memcpy(pkt, ns_eth, sizeof(ns_eth));
	pkt[6] = 17;			/* UDP */
	n = sizeof(out);
	ck_assert_msg(ipoib_nd_eth_to_ib(pkt, sizeof(ns_eth), &map, out, &n) ==
		      -ENOENT, "a UDP packet should give -ENOENT (not ND)");
}
END_TEST

START_TEST(test_nd_malformed)
{
	uint8_t pkt[128], out[128];
	size_t n;
	int ret;

	/* Checksum off by one. */
	memcpy(pkt, ns_eth, sizeof(ns_eth));
	pkt[43] ^= 1;
	n = sizeof(out);
	ret = ipoib_nd_eth_to_ib(pkt, sizeof(ns_eth), &map, out, &n);
	ck_assert_msg(ret == -EBADMSG, "a bad ICMPv6 checksum should give -EBADMSG, got %d",
		      ret);

	/* Code 1. */
	memcpy(pkt, ns_eth, sizeof(ns_eth));
	pkt[41] = 1;
	fix_csum(pkt);
	n = sizeof(out);
	ck_assert_msg(ipoib_nd_eth_to_ib(pkt, sizeof(ns_eth), &map, out, &n) ==
		      -EINVAL, "an NS with code 1 should give -EINVAL");

	/* Option length 0 (RFC 4861 §4.6: must be discarded). */
	memcpy(pkt, ns_eth, sizeof(ns_eth));
	pkt[65] = 0;
	fix_csum(pkt);
	n = sizeof(out);
	ck_assert_msg(ipoib_nd_eth_to_ib(pkt, sizeof(ns_eth), &map, out, &n) ==
		      -EINVAL, "an option of length 0 should give -EINVAL");

	/* Option claiming 16 bytes where 8 are left. */
	pkt[65] = 2;
	fix_csum(pkt);
	n = sizeof(out);
	ck_assert_msg(ipoib_nd_eth_to_ib(pkt, sizeof(ns_eth), &map, out, &n) ==
		      -EINVAL, "an option running past the message should give -EINVAL");

	/* An IPoIB-length LLA option arriving from the Ethernet side. */
	memcpy(pkt, ns_ib, sizeof(ns_ib));
	n = sizeof(out);
	ck_assert_msg(ipoib_nd_eth_to_ib(pkt, sizeof(ns_ib), &map, out, &n) ==
		      -EINVAL, "a length-3 LLA option on the Ethernet side should give -EINVAL");
	memcpy(pkt, ns_eth, sizeof(ns_eth));
	n = sizeof(out);
	ck_assert_msg(ipoib_nd_ib_to_eth(pkt, sizeof(ns_eth), &map, out, &n) ==
		      -EINVAL, "a length-1 LLA option on the IPoIB side should give -EINVAL");

	/* Truncated: Payload Length past the buffer; fixed part cut. */
	n = sizeof(out);
	ck_assert_msg(ipoib_nd_eth_to_ib(ns_eth, sizeof(ns_eth) - 1, &map, out,
					 &n) == -EINVAL,
		      "a Payload Length past the buffer should give -EINVAL");
	memcpy(pkt, ns_eth, sizeof(ns_eth));
	pkt[5] = 20;			/* NS needs 24 bytes before options */
	fix_csum(pkt);
	n = sizeof(out);
	ck_assert_msg(ipoib_nd_eth_to_ib(pkt, sizeof(ns_eth), &map, out, &n) ==
		      -EINVAL, "an NS shorter than its fixed part should give -EINVAL");
	n = sizeof(out);
	ck_assert_msg(ipoib_nd_eth_to_ib(ns_eth, 39, &map, out, &n) == -EINVAL,
		      "a 39-byte packet should give -EINVAL");

	/* No room for the grown option. */
	n = sizeof(ns_ib) - 1;
	ck_assert_msg(ipoib_nd_eth_to_ib(ns_eth, sizeof(ns_eth), &map, out, &n) ==
		      -ENOSPC, "one byte short of the IPoIB form should give -ENOSPC");

	/* Unknown MAC in the option: the table's error. */
	memcpy(pkt, ns_eth, sizeof(ns_eth));
	pkt[71] = 0x0c;
	fix_csum(pkt);
	n = sizeof(out);
	ck_assert_msg(ipoib_nd_eth_to_ib(pkt, sizeof(ns_eth), &map, out, &n) ==
		      -ENOENT, "an unknown MAC in the option should give the table's -ENOENT");
}
END_TEST

Suite *make_ipoib_proto_suite(void)
{
	Suite *s = suite_create("ipoib_proto");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_encap);
	tcase_add_test(tc, test_hwaddr);
	tcase_add_test(tc, test_bcast_mgid);
	tcase_add_test(tc, test_mgid_ipv4);
	tcase_add_test(tc, test_mgid_ipv6);
	tcase_add_test(tc, test_ifid);
	tcase_add_test(tc, test_synth_mac);
	tcase_add_test(tc, test_arp_vectors);
	tcase_add_test(tc, test_arp_malformed);
	tcase_add_loop_test(tc, test_nd_vectors, 0,
			    sizeof(nd_vecs) / sizeof(nd_vecs[0]));
	tcase_add_test(tc, test_nd_not_nd);
	tcase_add_test(tc, test_nd_malformed);
	suite_add_tcase(s, tc);
	return s;
}
