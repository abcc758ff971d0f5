/*
 * net_private.h - what the files of dataplane/net share with each other and
 * nobody else: the per-protocol input functions, the neighbour output hooks
 * (ARP for IPv4, ND for IPv6), and small address predicates. Public callers
 * use net.h.
 */
#ifndef PG_NET_PRIVATE_H
#define PG_NET_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

#include "net.h"

struct worker;

/* How the frame reached us at layer 2 (RFC 1122 §3.3.6 needs to know). */
enum net_l2_cast {
	NET_L2_UNICAST,
	NET_L2_BROADCAST,
	NET_L2_MULTICAST, /* a group we listen to (IPv6 only: all-nodes, solicited-node) */
};

/*
 * Per-protocol input. Each consumes the mbuf. On entry, m's data starts at
 * the protocol's own header (Ethernet stripped), except for arp_input,
 * which gets the whole frame because it copies it to the other workers.
 */
void arp_input(struct worker *w, struct rte_mbuf *m, uint16_t port, bool steered);
void ipv4_input(struct worker *w, struct rte_mbuf *m, uint16_t port, enum net_l2_cast cast);
void icmp_input(struct worker *w, struct rte_mbuf *m, uint16_t port);

/*
 * Hand a frame to the neighbour layer: m starts at a complete Ethernet
 * header whose destination is filled in here once `nexthop` (network
 * order) on port index `port` is resolved. Consumes the mbuf. Returns
 * PG_OK (queued for TX), PG_AGAIN (parked until ARP resolves) or PG_ERROR
 * (dropped and counted).
 */
int arp_output(struct worker *w, uint16_t port, uint32_t nexthop, struct rte_mbuf *m);

/* ARP retries and expiry (net_timers) and config change (net_config_changed). */
void arp_timers(struct worker *w);
void arp_config_changed(struct worker *w);
/* RFC 5227 §3 announcements on every addressed port. */
void arp_announce(struct worker *w);

/* ---- IPv6 ---- */

#define IP6_HDR_LEN 40
#define IP6_DEFAULT_HOP_LIMIT 64 /* as Linux; RFC 8200 §3 leaves it to the node */
#define IP6_ND_HOP_LIMIT 255     /* RFC 4861 §7.1: ND messages, sent and accepted */

/* IPv6 next-header values (RFC 8200 §4, IANA) that ipv6.c acts on. */
#define IP6_NH_HOPOPTS 0
#define IP6_NH_TCP 6
#define IP6_NH_ROUTING 43
#define IP6_NH_FRAGMENT 44
#define IP6_NH_ICMP6 58
#define IP6_NH_NONE 59
#define IP6_NH_DSTOPTS 60

/* What ipv6_input found out about a packet, for the protocol above it. */
struct ip6_rx {
	uint16_t port;
	enum net_l2_cast cast;
	uint8_t proto;  /* the upper-layer protocol */
	uint32_t l4off; /* its offset from the IPv6 header */
	uint32_t l4len; /* its length (the payload less extension headers) */
};

/*
 * m starts at the IPv6 header (Ethernet stripped). Consumes the mbuf.
 * `steered`: it came from another worker's ring - a TCP segment steered
 * to its owner, or a copy of an ND message (nd.c) - and is not counted
 * again as received.
 */
void ipv6_input(struct worker *w, struct rte_mbuf *m, uint16_t port, enum net_l2_cast cast,
                bool steered);
/*
 * Skip the extension headers of the packet whose fixed IPv6 header is at
 * `off` in m, without judging them (steering, ICMPv6 error eligibility):
 * PG_OK with the upper-layer protocol and its offset, or PG_DECLINED when
 * the chain is cut short, too long, or a fragment other than atomic.
 */
int ip6_skip_exthdrs(const struct rte_mbuf *m, uint32_t off, uint8_t *proto, uint32_t *l4off);
/* m starts at the IPv6 header, validated by ipv6_input; consumed. */
void icmp6_input(struct worker *w, struct rte_mbuf *m, const struct ip6_rx *rx, bool steered);
/*
 * Neighbor Discovery messages (RFC 4861 types 133-137), m at the IPv6
 * header and checksum already verified by icmp6_input; consumed.
 */
void nd_input(struct worker *w, struct rte_mbuf *m, const struct ip6_rx *rx, bool steered);

/*
 * ICMPv6 error about the packet m (starting at its IPv6 header, not
 * consumed) received on rx->port: RFC 4443 §2.4 (e) decides whether one
 * may be sent at all, (f) its rate, (c) how much of m it quotes.
 * `even_multicast` is the exception of (e.3)/(e.4) for Parameter Problem
 * code 2 with an option type whose high bits are 10.
 */
void icmp6_send_error(struct worker *w, const struct rte_mbuf *m, const struct ip6_rx *rx,
                      uint8_t type, uint8_t code, uint32_t pointer, bool even_multicast);
#define ICMP6_DST_UNREACH 1
#define ICMP6_PACKET_TOO_BIG 2
#define ICMP6_TIME_EXCEEDED 3
#define ICMP6_PARAM_PROB 4
#define ICMP6_PARAM_PROB_HEADER 0 /* erroneous header field */
#define ICMP6_PARAM_PROB_NH 1     /* unrecognized Next Header type */
#define ICMP6_PARAM_PROB_OPTION 2 /* unrecognized IPv6 option */
#define ICMP6_ECHO_REQUEST 128
#define ICMP6_ECHO_REPLY 129
#define ND_ROUTER_SOLICIT 133
#define ND_ROUTER_ADVERT 134
#define ND_NEIGHBOR_SOLICIT 135
#define ND_NEIGHBOR_ADVERT 136
#define ND_REDIRECT 137

/*
 * Hand an IPv6 frame to ND: m starts at a complete Ethernet header whose
 * destination is filled in once `nexthop` on port index `port` is
 * resolved. Consumes the mbuf. PG_OK (queued), PG_AGAIN (parked),
 * PG_ERROR (dropped and counted).
 */
int nd_output(struct worker *w, uint16_t port, const uint8_t nexthop[16], struct rte_mbuf *m);
/* Retransmissions, NUD and DAD timers (net_timers), config change. */
void nd_timers(struct worker *w);
void nd_config_changed(struct worker *w);

/* MLD (mld.c): what one worker knows of a port's membership reports. */
struct mld_port {
	uint8_t unsolicited_left; /* state-change reports still to send (worker 0) */
	bool v1_mode;             /* an MLDv1 querier is present (RFC 3810 §8.2) */
	uint64_t next_ns;         /* next unsolicited report */
	uint64_t query_due_ns;    /* answer to a query due then, 0 = none */
	uint64_t v1_until_ns;     /* Older Version Querier Present timer */
};
/* The port's MLD state, kept with its DAD state (nd.c); NULL without IPv6. */
struct mld_port *nd_mld_port(struct worker *w, uint16_t port);
/* The port's groups changed (config): report them (RFC 4862 §5.4.2: before DAD). */
void mld_join(struct worker *w, uint16_t port, struct mld_port *s);
void mld_timers(struct worker *w, uint16_t port, struct mld_port *s);
/* MLD messages (types 130-132, 143), m at the IPv6 header, checksum verified; consumed. */
void mld_input(struct worker *w, struct rte_mbuf *m, const struct ip6_rx *rx, bool steered);

/* IPv6 address predicates; addresses as on the wire. */
static inline bool ip6_is_multicast(const uint8_t a[16])
{
	return a[0] == 0xff; /* ff00::/8, RFC 4291 §2.7 */
}

static inline bool ip6_is_linklocal(const uint8_t a[16])
{
	return a[0] == 0xfe && (a[1] & 0xc0) == 0x80; /* fe80::/10, RFC 4291 §2.5.6 */
}

static inline bool ip6_is_unspec(const uint8_t a[16])
{
	static const uint8_t zero[16];

	return memcmp(a, zero, 16) == 0;
}

static inline bool ip6_is_loopback(const uint8_t a[16])
{
	static const uint8_t one[16] = {[15] = 1};

	return memcmp(a, one, 16) == 0;
}

/* ::ffff:0:0/96 (RFC 4291 §2.5.5.2): never on the wire (RFC 4942 §2.2). */
static inline bool ip6_is_v4mapped(const uint8_t a[16])
{
	static const uint8_t pfx[12] = {[10] = 0xff, [11] = 0xff};

	return memcmp(a, pfx, 12) == 0;
}

static inline bool ip6_eq(const uint8_t a[16], const uint8_t b[16])
{
	return memcmp(a, b, 16) == 0;
}

/* The first `len` bits of a and b agree. */
static inline bool ip6_prefix_match(const uint8_t a[16], const uint8_t b[16], unsigned len)
{
	unsigned bytes = len / 8, bits = len % 8;

	if (memcmp(a, b, bytes) != 0)
		return false;
	return bits == 0 || ((a[bytes] ^ b[bytes]) & (uint8_t)(0xff00u >> bits)) == 0;
}

/* ff02::1, all nodes on the link (RFC 4291 §2.7.1). */
extern const uint8_t ip6_all_nodes[16];

/* ff02::1:ffXX:XXXX, the solicited-node group of `a` (RFC 4291 §2.7.1). */
static inline void ip6_solicited_node(const uint8_t a[16], uint8_t out[16])
{
	memset(out, 0, 16);
	out[0] = 0xff;
	out[1] = 0x02;
	out[11] = 0x01;
	out[12] = 0xff;
	memcpy(out + 13, a + 13, 3);
}

/* 33:33 and the group's low 32 bits (RFC 2464 §7). */
static inline void ip6_mcast_mac(const uint8_t a[16], struct rte_ether_addr *mac)
{
	mac->addr_bytes[0] = 0x33;
	mac->addr_bytes[1] = 0x33;
	memcpy(&mac->addr_bytes[2], a + 12, 4);
}

/* Whether a multicast group (IPv6 address) is one the port listens to. */
static inline bool ip6_port_group(const struct net_port *p, const uint8_t a[16])
{
	uint8_t sn[16];

	if (!p->has_ip6)
		return false;
	if (ip6_eq(a, ip6_all_nodes))
		return true;
	ip6_solicited_node(p->ll6, sn);
	if (ip6_eq(a, sn))
		return true;
	ip6_solicited_node(p->addr6, sn);
	return ip6_eq(a, sn);
}

/* Whether a multicast MAC carries a group the port listens to. */
static inline bool ip6_port_group_mac(const struct net_port *p, const struct rte_ether_addr *mac)
{
	const uint8_t *b = mac->addr_bytes;

	if (!p->has_ip6 || b[0] != 0x33 || b[1] != 0x33)
		return false;
	if (b[2] == 0 && b[3] == 0 && b[4] == 0 && b[5] == 1)
		return true; /* all nodes */
	if (b[2] != 0xff)
		return false;
	return memcmp(b + 3, p->ll6 + 13, 3) == 0 || memcmp(b + 3, p->addr6 + 13, 3) == 0;
}

/* Index of the port owning unicast IPv6 address `a` (global or link-local), or -1. */
static inline int net_port_of_addr6(const struct net_config *nc, const uint8_t a[16])
{
	for (uint16_t i = 0; i < nc->nports; i++)
		if (nc->ports[i].has_ip6 &&
		    (ip6_eq(nc->ports[i].addr6, a) || ip6_eq(nc->ports[i].ll6, a)))
			return i;
	return -1;
}

/*
 * The Internet checksum of the IPv6 pseudo-header (RFC 8200 §8.1) for
 * `len` upper-layer bytes of protocol `nh`: a 16-bit one's-complement sum,
 * not complemented, to be added to the sum of the upper-layer bytes.
 */
static inline uint16_t ip6_phdr_sum(const uint8_t src[16], const uint8_t dst[16], uint32_t len,
                                    uint8_t nh)
{
	struct {
		uint8_t src[16], dst[16];
		rte_be32_t len;
		uint8_t zero[3];
		uint8_t nh;
	} __rte_packed ph;

	memcpy(ph.src, src, 16);
	memcpy(ph.dst, dst, 16);
	ph.len = rte_cpu_to_be_32(len);
	memset(ph.zero, 0, sizeof(ph.zero));
	ph.nh = nh;
	return rte_raw_cksum(&ph, sizeof(ph));
}

/* Fold a 32-bit sum of 16-bit sums into one 16-bit one's-complement sum. */
static inline uint16_t net_cksum_fold(uint32_t sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* Address predicates; all addresses in network order. */
static inline bool net_ip_is_multicast(uint32_t a)
{
	return (rte_be_to_cpu_32(a) & 0xf0000000u) == 0xe0000000u; /* 224/4 */
}

static inline bool net_ip_is_limited_bcast(uint32_t a)
{
	return a == UINT32_MAX;
}

/*
 * The subnet-directed broadcast of a port (RFC 919/922). A /31 has none:
 * both addresses are hosts (RFC 3021 §2.1), and /32 has no subnet.
 */
static inline bool net_ip_is_port_bcast(const struct net_port *p, uint32_t a)
{
	return p->addr != 0 && p->prefix_len < 31 && a == (p->addr | ~p->netmask);
}

/* Index of the port owning address `a`, or -1. */
static inline int net_port_of_addr(const struct net_config *nc, uint32_t a)
{
	for (uint16_t i = 0; i < nc->nports; i++)
		if (nc->ports[i].addr != 0 && nc->ports[i].addr == a)
			return i;
	return -1;
}

/*
 * Cut the packet to `len` bytes (<= its length), whatever the segment
 * layout: Ethernet pads short frames, and the padding is not part of the
 * datagram (IPv4 total length, IPv6 payload length).
 */
void net_mbuf_trim(struct rte_mbuf *m, uint32_t len);

/*
 * An mbuf received from a NIC and reused for output must not carry RX
 * offload results into the TX path; keep only what describes the buffer.
 */
static inline void net_mbuf_reset_offload(struct rte_mbuf *m)
{
	m->ol_flags &= RTE_MBUF_F_EXTERNAL | RTE_MBUF_F_INDIRECT;
	m->packet_type = 0;
	m->tx_offload = 0;
}

#endif
