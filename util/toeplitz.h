/* SPDX-License-Identifier: MIT */
/*
 * The Toeplitz hash that RSS steers receive traffic with, and the builder
 * of its input from an IP packet.  Pure functions: no allocation, no I/O,
 * safe to call from any thread and from the data path.
 *
 * The provider uses them to steer UD datagrams sent to an RSS parent QPN
 * (rx_hash_conf of ibv_create_qp_ex); ipoibd may use them to predict which
 * receive queue a flow lands on.
 */
#ifndef UIB_TOEPLITZ_H
#define UIB_TOEPLITZ_H

#include <stddef.h>
#include <stdint.h>

/* The largest hash input: IPv6 source and destination plus two ports. */
#define UIB_RSS_INPUT_MAX	36

/* The key commonly shipped as the default (the one of the published RSS
 * verification suite); 40 bytes, enough for UIB_RSS_INPUT_MAX + 4. */
#define UIB_RSS_KEY_LEN		40

/*
 * Toeplitz hash of in[0..in_len) under key[0..key_len).
 *
 * For every input bit, most significant bit of in[0] first, the 32-bit
 * window of the key that starts at that bit's index is XORed into the
 * result when the bit is set.  The last window therefore ends at key bit
 * in_len * 8 + 31, so the key must be at least in_len + 4 bytes long.
 *
 * A shorter key is not an error: the key is read as if it were followed by
 * zero bytes.  The hash stays deterministic and nothing is read past
 * key[key_len - 1], but the low-order bits of the late windows are then
 * always zero, which spreads flows worse; callers that care check
 * key_len >= in_len + 4 themselves (verbs' rx_hash_key_len is checked at QP
 * creation).
 */
uint32_t uib_toeplitz(const uint8_t *key, size_t key_len, const uint8_t *in,
		      size_t in_len);

/*
 * Builds the RSS hash input of the IP packet pkt[0..len), which starts at
 * its IPv4 or IPv6 header, for the libibverbs field mask `fields` (enum
 * ibv_rx_hash_fields: IBV_RX_HASH_{SRC,DST}_IPV4, _{SRC,DST}_IPV6,
 * _{SRC,DST}_PORT_TCP, _{SRC,DST}_PORT_UDP; other bits are ignored).
 *
 * The input is the selected fields, each in network byte order, in this
 * order: source address, destination address, source port, destination
 * port.  Rules:
 *  - Only the address bits of the packet's own family count: an IPv4
 *    packet uses the _IPV4 bits, an IPv6 packet the _IPV6 bits.
 *  - Ports are added only when the packet carries TCP (resp. UDP) and the
 *    TCP (resp. UDP) port bits ask for them; a UDP packet under a TCP-only
 *    mask is hashed on its addresses alone.
 *  - Fragments never contribute ports, not even the first one: every
 *    fragment of a datagram must land on the same queue, and only the first
 *    one carries the ports.  IPv4: MF set or a non-zero offset.  IPv6: a
 *    Fragment header (RFC 8200 §4.5), whatever its offset.
 *  - IPv4 options are skipped by the header length (IHL).
 *  - IPv6: Hop-by-Hop, Routing and Destination Options headers are walked
 *    to find TCP/UDP.  Any other next header (ESP, AH, No Next Header,
 *    unknown) gives an address-only input.  The addresses are always the
 *    fixed header's: no Home Address option or Routing header substitution.
 *
 * On entry *out_len is the room at out (UIB_RSS_INPUT_MAX is always
 * enough); on success it is the input's length, and 0 is returned.
 * Errors, on which the caller steers the packet to indirection entry 0:
 *   -EINVAL  not an IPv4/IPv6 header, or truncated or inconsistent
 *            (length fields that point past len or below the header).
 *            The fixed IP header is always checked; extension headers
 *            and the TCP/UDP header only when the mask asks for ports;
 *   -ENOENT  a valid IP packet of which the mask selects nothing;
 *   -ENOSPC  *out_len too small for the selected fields.
 */
int uib_rss_input(const uint8_t *pkt, size_t len, uint64_t fields,
		  uint8_t *out, size_t *out_len);

#endif /* UIB_TOEPLITZ_H */
