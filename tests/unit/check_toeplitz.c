// SPDX-License-Identifier: MIT
/*
 * Unit: the Toeplitz hash and the RSS hash input (util/toeplitz.c).
 *
 * The expected hashes are the published RSS verification suite (Microsoft's
 * "Verifying the RSS hash calculation", also in Intel's 82599 datasheet)
 * under its 40-byte key.  The vectors go through uib_rss_input on packets
 * built here byte by byte, so that a byte-order slip anywhere between the
 * wire and the hash shows up as a wrong hash.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <infiniband/verbs.h>

#include "check_suites.h"
#include "toeplitz.h"

static const uint8_t ms_key[UIB_RSS_KEY_LEN] = {
	0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2,
	0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
	0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4,
	0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
	0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
};

struct rss_vec {
	const char *src, *dst;
	uint16_t sport, dport;
	uint32_t hash_ip, hash_l4;
};

static const struct rss_vec v4_vecs[] = {
	{ "66.9.149.187", "161.142.100.80", 2794, 1766,
	  0x323e8fc2, 0x51ccc178 },
	{ "199.92.111.2", "65.69.140.83", 14230, 4739,
	  0xd718262a, 0xc626b0ea },
	{ "24.19.198.95", "12.22.207.184", 12898, 38024,
	  0xd2d0a5de, 0x5c2b394a },
	{ "38.27.205.30", "209.142.163.6", 48228, 2217,
	  0x82989176, 0xafc7327f },
	{ "153.39.163.191", "202.188.127.2", 44251, 1303,
	  0x5d1809c5, 0x10e828a2 },
};

static const struct rss_vec v6_vecs[] = {
	{ "3ffe:2501:200:1fff::7", "3ffe:2501:200:3::1", 2794, 1766,
	  0x2cc18cd5, 0x40207d3d },
	{ "3ffe:501:8::260:97ff:fe40:efab", "ff02::1", 14230, 4739,
	  0x0f0c461c, 0xdde51bbf },
	{ "3ffe:1900:4545:3:200:f8ff:fe21:67cf", "fe80::200:f8ff:fe21:67cf",
	  44251, 38024, 0x4b61e985, 0x02d1feef },
};

#define V4_ADDRS (IBV_RX_HASH_SRC_IPV4 | IBV_RX_HASH_DST_IPV4)
#define V6_ADDRS (IBV_RX_HASH_SRC_IPV6 | IBV_RX_HASH_DST_IPV6)
#define TCP_PORTS (IBV_RX_HASH_SRC_PORT_TCP | IBV_RX_HASH_DST_PORT_TCP)
#define UDP_PORTS (IBV_RX_HASH_SRC_PORT_UDP | IBV_RX_HASH_DST_PORT_UDP)

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v & 0xff;
}

/*
 * An IPv4 packet with `optwords` words of options (NOPs), protocol proto
 * and an 8-byte L4 header carrying the ports.  Returns its length.
 */
static size_t build_v4(uint8_t *pkt, const struct rss_vec *v, uint8_t proto,
		       unsigned int optwords)
{
	size_t hlen = 20 + optwords * 4, tot = hlen + 8;

	memset(pkt, 0, tot);
	pkt[0] = 0x40 | (5 + optwords);
	put16(pkt + 2, tot);
	put16(pkt + 4, 0x1234);		/* identification */
	pkt[8] = 64;			/* TTL */
	pkt[9] = proto;
	ck_assert(inet_pton(AF_INET, v->src, pkt + 12) == 1);
	ck_assert(inet_pton(AF_INET, v->dst, pkt + 16) == 1);
	memset(pkt + 20, 0x01, optwords * 4);
	put16(pkt + hlen, v->sport);
	put16(pkt + hlen + 2, v->dport);
	return tot;
}

/* An IPv6 packet, next header nh, followed by `ext` (extlen bytes) and an
 * 8-byte L4 header carrying the ports.  Returns its length. */
static size_t build_v6(uint8_t *pkt, const struct rss_vec *v, uint8_t nh,
		       const uint8_t *ext, size_t extlen)
{
	size_t plen = extlen + 8;

	memset(pkt, 0, 40 + plen);
	pkt[0] = 0x60;
	put16(pkt + 4, plen);
	pkt[6] = nh;
	pkt[7] = 64;
	ck_assert(inet_pton(AF_INET6, v->src, pkt + 8) == 1);
	ck_assert(inet_pton(AF_INET6, v->dst, pkt + 24) == 1);
	if (extlen)
		memcpy(pkt + 40, ext, extlen);
	put16(pkt + 40 + extlen, v->sport);
	put16(pkt + 40 + extlen + 2, v->dport);
	return 40 + plen;
}

/* Hash of pkt under the mask; fails the test if no input can be built. */
static uint32_t hash_pkt(const uint8_t *pkt, size_t len, uint64_t fields)
{
	uint8_t in[UIB_RSS_INPUT_MAX];
	size_t in_len = sizeof(in);
	int ret;

	ret = uib_rss_input(pkt, len, fields, in, &in_len);
	ck_assert_msg(ret == 0, "uib_rss_input should accept the packet, got %d",
		      ret);
	return uib_toeplitz(ms_key, sizeof(ms_key), in, in_len);
}

static int input_err(const uint8_t *pkt, size_t len, uint64_t fields)
{
	uint8_t in[UIB_RSS_INPUT_MAX];
	size_t in_len = sizeof(in);

	return uib_rss_input(pkt, len, fields, in, &in_len);
}

START_TEST(test_raw_vector)
{
	/* 66.9.149.187:2794 -> 161.142.100.80:1766, laid out by hand. */
	static const uint8_t in[12] = {
		0x42, 0x09, 0x95, 0xbb, 0xa1, 0x8e, 0x64, 0x50,
		0x0a, 0xea, 0x06, 0xe6,
	};
	uint32_t h;

	h = uib_toeplitz(ms_key, sizeof(ms_key), in, 12);
	ck_assert_msg(h == 0x51ccc178,
		      "the first 4-tuple vector should hash to 0x51ccc178, got 0x%08x",
		      h);
	h = uib_toeplitz(ms_key, sizeof(ms_key), in, 8);
	ck_assert_msg(h == 0x323e8fc2,
		      "its address pair should hash to 0x323e8fc2, got 0x%08x",
		      h);
	h = uib_toeplitz(ms_key, sizeof(ms_key), in, 0);
	ck_assert_msg(h == 0, "an empty input should hash to 0, got 0x%08x", h);
}
END_TEST

START_TEST(test_ipv4_vectors)
{
	const struct rss_vec *v = &v4_vecs[_i];
	uint8_t pkt[64];
	size_t len;
	uint32_t h;

	len = build_v4(pkt, v, 6, 0);
	h = hash_pkt(pkt, len, V4_ADDRS);
	ck_assert_msg(h == v->hash_ip,
		      "IPv4 %s -> %s should hash to 0x%08x, got 0x%08x",
		      v->src, v->dst, v->hash_ip, h);
	h = hash_pkt(pkt, len, V4_ADDRS | TCP_PORTS);
	ck_assert_msg(h == v->hash_l4,
		      "TCP/IPv4 %s:%u -> %s:%u should hash to 0x%08x, got 0x%08x",
		      v->src, v->sport, v->dst, v->dport, v->hash_l4, h);

	/* The same tuple over UDP hashes the same under the UDP mask. */
	len = build_v4(pkt, v, 17, 0);
	h = hash_pkt(pkt, len, V4_ADDRS | UDP_PORTS);
	ck_assert_msg(h == v->hash_l4,
		      "UDP/IPv4 under the UDP mask should hash to 0x%08x, got 0x%08x",
		      v->hash_l4, h);
	/* ... and on its addresses alone under a TCP-only mask. */
	h = hash_pkt(pkt, len, V4_ADDRS | TCP_PORTS);
	ck_assert_msg(h == v->hash_ip,
		      "UDP/IPv4 under a TCP mask should hash its addresses only (0x%08x), got 0x%08x",
		      v->hash_ip, h);
}
END_TEST

START_TEST(test_ipv6_vectors)
{
	const struct rss_vec *v = &v6_vecs[_i];
	uint8_t pkt[128];
	size_t len;
	uint32_t h;

	len = build_v6(pkt, v, 6, NULL, 0);
	h = hash_pkt(pkt, len, V6_ADDRS);
	ck_assert_msg(h == v->hash_ip,
		      "IPv6 %s -> %s should hash to 0x%08x, got 0x%08x",
		      v->src, v->dst, v->hash_ip, h);
	h = hash_pkt(pkt, len, V6_ADDRS | TCP_PORTS);
	ck_assert_msg(h == v->hash_l4,
		      "TCP/IPv6 %s -> %s should hash to 0x%08x, got 0x%08x",
		      v->src, v->dst, v->hash_l4, h);
	/* An IPv4-only mask selects nothing of an IPv6 packet. */
	ck_assert_msg(input_err(pkt, len, V4_ADDRS) == -ENOENT,
		      "an IPv6 packet under an IPv4 mask should give -ENOENT");
}
END_TEST

START_TEST(test_input_layout)
{
	static const uint8_t want[12] = {
		0x42, 0x09, 0x95, 0xbb, 0xa1, 0x8e, 0x64, 0x50,
		0x0a, 0xea, 0x06, 0xe6,
	};
	uint8_t pkt[64], in[UIB_RSS_INPUT_MAX];
	size_t len, in_len = sizeof(in);
	int ret;

	len = build_v4(pkt, &v4_vecs[0], 6, 0);
	ret = uib_rss_input(pkt, len, V4_ADDRS | TCP_PORTS, in, &in_len);
	ck_assert_msg(ret == 0 && in_len == 12 && !memcmp(in, want, 12),
		      "the input should be src, dst, sport, dport in network order");

	/* Only the destination port: the last two bytes alone. */
	in_len = sizeof(in);
	ret = uib_rss_input(pkt, len, IBV_RX_HASH_DST_PORT_TCP, in, &in_len);
	ck_assert_msg(ret == 0 && in_len == 2 && in[0] == 0x06 && in[1] == 0xe6,
		      "a DST_PORT_TCP-only mask should give the 2 bytes 06 e6");

	/* Room for the addresses but not the ports. */
	in_len = 8;
	ret = uib_rss_input(pkt, len, V4_ADDRS | TCP_PORTS, in, &in_len);
	ck_assert_msg(ret == -ENOSPC,
		      "an 8-byte output for a 12-byte input should give -ENOSPC, got %d",
		      ret);
}
END_TEST

START_TEST(test_ipv4_options)
{
	const struct rss_vec *v = &v4_vecs[1];
	uint8_t pkt[128];
	size_t len;
	uint32_t h;

	/* 3 words of options: the ports sit at IHL * 4 = 32. */
	len = build_v4(pkt, v, 6, 3);
	h = hash_pkt(pkt, len, V4_ADDRS | TCP_PORTS);
	ck_assert_msg(h == v->hash_l4,
		      "IPv4 options should be skipped by IHL (want 0x%08x, got 0x%08x)",
		      v->hash_l4, h);
}
END_TEST

START_TEST(test_ipv4_fragments)
{
	const struct rss_vec *v = &v4_vecs[2];
	uint8_t pkt[64];
	size_t len;
	uint32_t h;

	len = build_v4(pkt, v, 17, 0);
	put16(pkt + 6, 0x2000);		/* MF, offset 0: first fragment */
	h = hash_pkt(pkt, len, V4_ADDRS | UDP_PORTS);
	ck_assert_msg(h == v->hash_ip,
		      "a first fragment should hash its addresses only (0x%08x), got 0x%08x",
		      v->hash_ip, h);
	put16(pkt + 6, 0x0010);		/* last fragment, offset 128 */
	h = hash_pkt(pkt, len, V4_ADDRS | UDP_PORTS);
	ck_assert_msg(h == v->hash_ip,
		      "a later fragment should hash its addresses only (0x%08x), got 0x%08x",
		      v->hash_ip, h);
	put16(pkt + 6, 0x4000);		/* DF only: not a fragment */
	h = hash_pkt(pkt, len, V4_ADDRS | UDP_PORTS);
	ck_assert_msg(h == v->hash_l4,
		      "DF alone should not make a fragment (want 0x%08x), got 0x%08x",
		      v->hash_l4, h);
}
END_TEST

START_TEST(test_ipv6_ext_headers)
{
	const struct rss_vec *v = &v6_vecs[0];
	/* Hop-by-Hop (8 bytes, PadN) -> Destination Options (16 bytes) ->
	 * TCP. */
	static const uint8_t ext[24] = {
		60, 0, 1, 4, 0, 0, 0, 0,
		6, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	};
	/* A Fragment header (first fragment, M set) -> UDP. */
	static const uint8_t frag[8] = { 17, 0, 0x00, 0x01, 0, 0, 0, 1 };
	uint8_t pkt[128];
	size_t len;
	uint32_t h;

	len = build_v6(pkt, v, 0, ext, sizeof(ext));
	h = hash_pkt(pkt, len, V6_ADDRS | TCP_PORTS);
	ck_assert_msg(h == v->hash_l4,
		      "TCP behind Hop-by-Hop and Destination Options should hash to 0x%08x, got 0x%08x",
		      v->hash_l4, h);

	len = build_v6(pkt, v, 44, frag, sizeof(frag));
	h = hash_pkt(pkt, len, V6_ADDRS | UDP_PORTS);
	ck_assert_msg(h == v->hash_ip,
		      "an IPv6 fragment should hash its addresses only (0x%08x), got 0x%08x",
		      v->hash_ip, h);

	/* Destination Options claiming 24 bytes where 16 are left. */
	len = build_v6(pkt, v, 60, ext + 8, 8);
	pkt[41] = 2;
	ck_assert_msg(input_err(pkt, len, V6_ADDRS | TCP_PORTS) == -EINVAL,
		      "an extension header running past the payload should give -EINVAL");
}
END_TEST

START_TEST(test_malformed)
{
	static const uint8_t arp[28] = { 0x00, 0x01, 0x08, 0x00, 6, 4, 0, 1 };
	uint8_t pkt[128];
	size_t len;

	ck_assert_msg(input_err(arp, sizeof(arp), V4_ADDRS) == -EINVAL,
		      "an ARP packet (version nibble 0) should give -EINVAL");
	len = build_v4(pkt, &v4_vecs[0], 6, 0);
	ck_assert_msg(input_err(pkt, 0, V4_ADDRS) == -EINVAL,
		      "an empty packet should give -EINVAL");
	ck_assert_msg(input_err(pkt, 19, V4_ADDRS) == -EINVAL,
		      "a 19-byte IPv4 header should give -EINVAL");
	ck_assert_msg(input_err(pkt, len - 1, V4_ADDRS) == -EINVAL,
		      "an IPv4 Total Length past the buffer should give -EINVAL");
	pkt[0] = 0x44;
	ck_assert_msg(input_err(pkt, len, V4_ADDRS) == -EINVAL,
		      "an IHL below 5 should give -EINVAL");
	pkt[0] = 0x45;
	put16(pkt + 2, 22);		/* only 2 bytes of TCP */
	ck_assert_msg(input_err(pkt, len, V4_ADDRS | TCP_PORTS) == -EINVAL,
		      "TCP ports cut off by Total Length should give -EINVAL");
	ck_assert_msg(input_err(pkt, len, V4_ADDRS) == 0,
		      "the same packet under an address-only mask should be accepted");
	put16(pkt + 2, len);
	ck_assert_msg(input_err(pkt, len, V6_ADDRS | IBV_RX_HASH_IPSEC_SPI) ==
		      -ENOENT,
		      "an IPv4 packet under an IPv6 mask should give -ENOENT");
	pkt[9] = 1;			/* ICMP */
	ck_assert_msg(input_err(pkt, len, TCP_PORTS | UDP_PORTS) == -ENOENT,
		      "ICMP under a ports-only mask should give -ENOENT");

	len = build_v6(pkt, &v6_vecs[0], 6, NULL, 0);
	ck_assert_msg(input_err(pkt, 39, V6_ADDRS) == -EINVAL,
		      "a 39-byte IPv6 header should give -EINVAL");
	ck_assert_msg(input_err(pkt, len - 1, V6_ADDRS) == -EINVAL,
		      "an IPv6 Payload Length past the buffer should give -EINVAL");
}
END_TEST

START_TEST(test_short_key)
{
	uint8_t padded[UIB_RSS_KEY_LEN] = { 0 };
	uint8_t in[UIB_RSS_INPUT_MAX];
	uint32_t h_short, h_padded;
	unsigned int i;

	for (i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(0x5a ^ (i * 37));
	memcpy(padded, ms_key, 16);
	/* 16 bytes of key for 36 bytes of input: the rest reads as zero. */
	h_short = uib_toeplitz(ms_key, 16, in, sizeof(in));
	h_padded = uib_toeplitz(padded, sizeof(padded), in, sizeof(in));
	ck_assert_msg(h_short == h_padded,
		      "a short key should hash as if zero-extended (0x%08x), got 0x%08x",
		      h_padded, h_short);
	h_short = uib_toeplitz(ms_key, 0, in, sizeof(in));
	ck_assert_msg(h_short == 0, "an empty key should hash to 0, got 0x%08x",
		      h_short);
}
END_TEST

Suite *make_toeplitz_suite(void)
{
	Suite *s = suite_create("toeplitz");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_raw_vector);
	tcase_add_loop_test(tc, test_ipv4_vectors, 0,
			    sizeof(v4_vecs) / sizeof(v4_vecs[0]));
	tcase_add_loop_test(tc, test_ipv6_vectors, 0,
			    sizeof(v6_vecs) / sizeof(v6_vecs[0]));
	tcase_add_test(tc, test_input_layout);
	tcase_add_test(tc, test_ipv4_options);
	tcase_add_test(tc, test_ipv4_fragments);
	tcase_add_test(tc, test_ipv6_ext_headers);
	tcase_add_test(tc, test_malformed);
	tcase_add_test(tc, test_short_key);
	suite_add_tcase(s, tc);
	return s;
}
