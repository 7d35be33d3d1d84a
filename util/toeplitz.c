// SPDX-License-Identifier: MIT
/*
 * Toeplitz hash and RSS hash input.  See toeplitz.h for the contract.
 */
#include <errno.h>
#include <string.h>

#include <infiniband/verbs.h>

#include "toeplitz.h"

#define IPV4_HLEN_MIN	20
#define IPV6_HLEN	40
#define IP_MF		0x2000
#define IP_OFFSET	0x1fff

#define PROTO_HOPOPTS	0
#define PROTO_TCP	6
#define PROTO_UDP	17
#define PROTO_ROUTING	43
#define PROTO_FRAGMENT	44
#define PROTO_DSTOPTS	60

/* Extension headers walked before giving up on finding the ports: more
 * than a sane packet carries, and a bound on the work a hostile one buys. */
#define IPV6_EXT_MAX	8

#define PORT_TCP (IBV_RX_HASH_SRC_PORT_TCP | IBV_RX_HASH_DST_PORT_TCP)
#define PORT_UDP (IBV_RX_HASH_SRC_PORT_UDP | IBV_RX_HASH_DST_PORT_UDP)

/* Key bit i, most significant bit of key[0] first; zero past the key. */
static inline unsigned int key_bit(const uint8_t *key, size_t key_len,
				   size_t i)
{
	if (i / 8 >= key_len)
		return 0;
	return (key[i / 8] >> (7 - i % 8)) & 1;
}

uint32_t uib_toeplitz(const uint8_t *key, size_t key_len, const uint8_t *in,
		      size_t in_len)
{
	uint32_t window = 0, hash = 0;
	size_t i, next;
	int b;

	/* window holds key bits [n, n + 32) while input bit n is examined. */
	for (i = 0; i < 32; i++)
		window = (window << 1) | key_bit(key, key_len, i);
	next = 32;

	for (i = 0; i < in_len; i++) {
		for (b = 7; b >= 0; b--) {
			if (in[i] & (1u << b))
				hash ^= window;
			window = (window << 1) | key_bit(key, key_len, next++);
		}
	}
	return hash;
}

static inline uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* Appends n bytes to the input being built, if there is room. */
struct rss_buf {
	uint8_t *out;
	size_t len;
	size_t room;
};

static int put(struct rss_buf *rb, const uint8_t *p, size_t n)
{
	if (rb->room - rb->len < n)
		return -ENOSPC;
	memcpy(rb->out + rb->len, p, n);
	rb->len += n;
	return 0;
}

/*
 * Adds the ports of the L4 header at pkt + l4 (bounded by end) selected by
 * the mask, for protocol proto.  Other protocols add nothing.
 */
static int put_ports(struct rss_buf *rb, const uint8_t *pkt, size_t l4,
		     size_t end, unsigned int proto, uint64_t fields)
{
	uint64_t src, dst;
	int ret;

	if (proto == PROTO_TCP) {
		src = fields & IBV_RX_HASH_SRC_PORT_TCP;
		dst = fields & IBV_RX_HASH_DST_PORT_TCP;
	} else if (proto == PROTO_UDP) {
		src = fields & IBV_RX_HASH_SRC_PORT_UDP;
		dst = fields & IBV_RX_HASH_DST_PORT_UDP;
	} else {
		return 0;
	}
	if (!src && !dst)
		return 0;
	/* Both TCP and UDP start with source port then destination port. */
	if (end < l4 || end - l4 < 4)
		return -EINVAL;
	if (src) {
		ret = put(rb, pkt + l4, 2);
		if (ret)
			return ret;
	}
	if (dst)
		return put(rb, pkt + l4 + 2, 2);
	return 0;
}

static int rss_input_ipv4(const uint8_t *pkt, size_t len, uint64_t fields,
			  struct rss_buf *rb)
{
	size_t hlen, tot;
	uint16_t frag;
	int ret;

	/* RFC 791 §3.1: IHL counts 32-bit words and is at least 5; Total
	 * Length covers header and data.  Bytes past it are link padding. */
	if (len < IPV4_HLEN_MIN)
		return -EINVAL;
	hlen = (size_t)(pkt[0] & 0x0f) * 4;
	tot = get_be16(pkt + 2);
	if (hlen < IPV4_HLEN_MIN || tot < hlen || tot > len)
		return -EINVAL;

	if (!(fields & (IBV_RX_HASH_SRC_IPV4 | IBV_RX_HASH_DST_IPV4 |
			PORT_TCP | PORT_UDP)))
		return -ENOENT;
	if (fields & IBV_RX_HASH_SRC_IPV4) {
		ret = put(rb, pkt + 12, 4);
		if (ret)
			return ret;
	}
	if (fields & IBV_RX_HASH_DST_IPV4) {
		ret = put(rb, pkt + 16, 4);
		if (ret)
			return ret;
	}

	frag = get_be16(pkt + 6);
	if (!(frag & (IP_MF | IP_OFFSET))) {
		ret = put_ports(rb, pkt, hlen, tot, pkt[9], fields);
		if (ret)
			return ret;
	}
	return rb->len ? 0 : -ENOENT;
}

/*
 * Finds the upper-layer protocol of an IPv6 packet by walking the
 * extension headers that may precede TCP/UDP (RFC 8200 §4).  Returns the
 * protocol and sets *l4, or a protocol of 256 ("none to hash") for a
 * Fragment header, an unwalked header or too long a chain.
 */
static int ipv6_upper(const uint8_t *pkt, size_t end, size_t *l4)
{
	unsigned int nh = pkt[6];
	size_t off = IPV6_HLEN;
	int i;

	for (i = 0; i < IPV6_EXT_MAX; i++) {
		switch (nh) {
		case PROTO_HOPOPTS:
		case PROTO_ROUTING:
		case PROTO_DSTOPTS:
			/* Next Header, then Hdr Ext Len in 8-octet units
			 * not counting the first 8 (RFC 8200 §4.3-4.6). */
			if (end - off < 8)
				return -EINVAL;
			nh = pkt[off];
			off += ((size_t)pkt[off + 1] + 1) * 8;
			if (off > end)
				return -EINVAL;
			break;
		default:
			*l4 = off;
			/* A Fragment header (44) is left as is: see the
			 * header comment on why fragments hash no ports. */
			return nh;
		}
	}
	return 256;
}

static int rss_input_ipv6(const uint8_t *pkt, size_t len, uint64_t fields,
			  struct rss_buf *rb)
{
	size_t plen, end, l4 = 0;
	int ret, proto;

	if (len < IPV6_HLEN)
		return -EINVAL;
	/* RFC 8200 §3: Payload Length excludes the fixed header.  Zero means
	 * a jumbogram (RFC 2675) whose length we do not parse: use len. */
	plen = get_be16(pkt + 4);
	if (plen && plen > len - IPV6_HLEN)
		return -EINVAL;
	end = plen ? IPV6_HLEN + plen : len;

	if (!(fields & (IBV_RX_HASH_SRC_IPV6 | IBV_RX_HASH_DST_IPV6 |
			PORT_TCP | PORT_UDP)))
		return -ENOENT;
	if (fields & IBV_RX_HASH_SRC_IPV6) {
		ret = put(rb, pkt + 8, 16);
		if (ret)
			return ret;
	}
	if (fields & IBV_RX_HASH_DST_IPV6) {
		ret = put(rb, pkt + 24, 16);
		if (ret)
			return ret;
	}

	if (fields & (PORT_TCP | PORT_UDP)) {
		proto = ipv6_upper(pkt, end, &l4);
		if (proto < 0)
			return proto;
		ret = put_ports(rb, pkt, l4, end, proto, fields);
		if (ret)
			return ret;
	}
	return rb->len ? 0 : -ENOENT;
}

int uib_rss_input(const uint8_t *pkt, size_t len, uint64_t fields,
		  uint8_t *out, size_t *out_len)
{
	struct rss_buf rb = { .out = out, .len = 0, .room = *out_len };
	int ret;

	if (!pkt || len < 1)
		return -EINVAL;
	switch (pkt[0] >> 4) {
	case 4:
		ret = rss_input_ipv4(pkt, len, fields, &rb);
		break;
	case 6:
		ret = rss_input_ipv6(pkt, len, fields, &rb);
		break;
	default:
		return -EINVAL;
	}
	if (ret)
		return ret;
	*out_len = rb.len;
	return 0;
}
