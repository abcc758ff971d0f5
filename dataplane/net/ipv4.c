/*
 * ipv4.c - IPv4 input (validation and local delivery) and output (route,
 * fill in the header, hand to ARP). Postern is a host, not a router
 * (RFC 1122): packets not addressed to one of our ports are dropped, never
 * forwarded, and fragments are dropped since nothing here reassembles.
 */
#include <assert.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

#include "core/worker.h"
#include "net.h"
#include "net_private.h"
#include "result.h"
#include "tcp_private.h"

#define IPV4_DEFAULT_TTL 64 /* RFC 1700 / RFC 1122 §3.2.1.7 recommended value */

/*
 * A source no packet may legitimately carry (RFC 1122 §3.2.1.3, RFC 1812
 * §5.3.7): this network (0/8), loopback (127/8), multicast, class E and
 * broadcast; also our own addresses (a spoof or a loop) and the
 * subnet-directed broadcast of the receiving port.
 */
static bool ipv4_bad_src(const struct net_config *nc, const struct net_port *p, uint32_t src)
{
	uint8_t first = (uint8_t)(rte_be_to_cpu_32(src) >> 24);

	return first == 0 || first == 127 || first >= 224 || net_ip_is_port_bcast(p, src) ||
	       net_port_of_addr(nc, src) >= 0;
}

/* m starts at the IPv4 header. */
void ipv4_input(struct worker *w, struct rte_mbuf *m, uint16_t port, enum net_l2_cast cast)
{
	const struct net_config *nc = w->net;
	const struct net_port *p = &nc->ports[port];
	struct rte_ipv4_hdr *ip;
	uint32_t pkt_len = rte_pktmbuf_pkt_len(m);
	uint32_t hlen, totlen;
	uint16_t frag;

	WCOUNT(w, ipv4_rx);
	/* RFC 1122 §3.2.1.1-3.2.1.2: validate before using any field. */
	if (rte_pktmbuf_data_len(m) < sizeof(*ip)) {
		WCOUNT(w, ipv4_drop_short);
		goto drop;
	}
	ip = rte_pktmbuf_mtod(m, struct rte_ipv4_hdr *);
	if ((ip->version_ihl >> 4) != 4) {
		WCOUNT(w, ipv4_drop_version);
		goto drop;
	}
	hlen = (uint32_t)(ip->version_ihl & RTE_IPV4_HDR_IHL_MASK) * RTE_IPV4_IHL_MULTIPLIER;
	/* The whole header, options included, must sit in the first segment. */
	if (hlen < sizeof(*ip) || hlen > rte_pktmbuf_data_len(m)) {
		WCOUNT(w, ipv4_drop_hdrlen);
		goto drop;
	}
	totlen = rte_be_to_cpu_16(ip->total_length);
	if (totlen < hlen || totlen > pkt_len) {
		WCOUNT(w, ipv4_drop_totlen);
		goto drop;
	}
	if (totlen < pkt_len)
		net_mbuf_trim(m, totlen);

	if (p->rx_ip_cksum_offload &&
	    (m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) != RTE_MBUF_F_RX_IP_CKSUM_UNKNOWN) {
		/* NONE: the NIC verified the header but left the field as sent. */
		if ((m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) == RTE_MBUF_F_RX_IP_CKSUM_BAD) {
			WCOUNT(w, ipv4_drop_cksum);
			goto drop;
		}
	} else if (rte_ipv4_cksum(ip) != 0) {
		/* Summed over the checksum field too: a valid header sums to 0xffff. */
		WCOUNT(w, ipv4_drop_cksum);
		goto drop;
	}

	/*
	 * RFC 1812 §5.3.1 speaks of TTL for forwarding; a host delivers a
	 * packet addressed to it whatever its TTL (RFC 1122 §3.2.1.7), so TTL
	 * 1 is fine here. TTL 0 can only come from a broken sender: drop.
	 */
	if (ip->time_to_live == 0) {
		WCOUNT(w, ipv4_drop_ttl);
		goto drop;
	}

	frag = rte_be_to_cpu_16(ip->fragment_offset);
	if ((frag & (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) != 0) {
		/* No reassembly (RFC 791 §3.2 makes it a MUST for hosts): by design for now. */
		WCOUNT(w, ipv4_drop_fragment);
		goto drop;
	}

	if (ipv4_bad_src(nc, p, ip->src_addr)) {
		WCOUNT(w, ipv4_drop_bad_src);
		goto drop;
	}
	/*
	 * Strong host model (RFC 1122 §3.3.4.2): the destination must be the
	 * address of the port the packet came in on. Broadcast and multicast
	 * destinations serve nothing we run.
	 */
	if (p->addr == 0 || ip->dst_addr != p->addr) {
		WCOUNT(w, ipv4_drop_not_for_us);
		goto drop;
	}
	/*
	 * RFC 1122 §3.3.6: a host SHOULD silently discard a datagram received
	 * via a link-layer broadcast that is not addressed to an IP broadcast
	 * or multicast address.
	 */
	if (cast == NET_L2_BROADCAST) {
		WCOUNT(w, ipv4_drop_link_bcast);
		goto drop;
	}

	switch (ip->next_proto_id) {
	case IPPROTO_ICMP:
		icmp_input(w, m, port);
		return;
	case IPPROTO_TCP:
		/* A worker without TCP state (tests of L3 alone) treats TCP as unknown. */
		if (w->tcp != NULL) {
			struct tcp_l3 l3 = {.src = pg_addr_v4(ip->src_addr),
			                    .dst = pg_addr_v4(ip->dst_addr),
			                    .l4off = hlen};

			tcp_input(w, m, &l3);
			return;
		}
		WCOUNT(w, ipv4_drop_proto);
		goto drop;
	default:
		/* UDP arrives with its own issue; nothing else ever will. */
		WCOUNT(w, ipv4_drop_proto);
		goto drop;
	}

drop:
	rte_pktmbuf_free(m);
}

/*
 * Return codes: PG_OK queued for TX, PG_AGAIN parked until ARP resolves
 * (still consumed), PG_DECLINED no route, PG_ERROR dropped otherwise.
 */
int net_ipv4_output(struct worker *w, struct rte_mbuf *m)
{
	const struct net_config *nc = w->net;
	const struct net_route *rt;
	const struct net_port *p;
	struct rte_ipv4_hdr *ip;
	struct rte_ether_hdr *eh;
	uint32_t hlen, nexthop;

	/* Our own layers build the header: a short one is a bug, not input. */
	assert(rte_pktmbuf_data_len(m) >= sizeof(*ip));
	ip = rte_pktmbuf_mtod(m, struct rte_ipv4_hdr *);
	hlen = rte_ipv4_hdr_len(ip);
	assert(hlen >= sizeof(*ip) && hlen <= rte_pktmbuf_data_len(m));

	if (net_route_lookup(nc, ip->dst_addr, &rt) != PG_OK) {
		WCOUNT(w, route_drop_noroute);
		rte_pktmbuf_free(m);
		return PG_DECLINED;
	}
	p = &nc->ports[rt->port];
	nexthop = rt->gateway != 0 ? rt->gateway : ip->dst_addr;

	/* We never fragment; the layers above size packets to the MTU. */
	if (p->mtu != 0 && rte_pktmbuf_pkt_len(m) > p->mtu) {
		WCOUNT(w, ipv4_out_drop_mtu);
		rte_pktmbuf_free(m);
		return PG_ERROR;
	}
	if (ip->src_addr == 0)
		ip->src_addr = p->addr;
	if (ip->time_to_live == 0)
		ip->time_to_live = IPV4_DEFAULT_TTL;
	assert(rte_be_to_cpu_16(ip->total_length) == rte_pktmbuf_pkt_len(m));
	ip->hdr_checksum = 0;
	m->ol_flags &= ~(RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM);
	if (p->tx_ip_cksum_offload) {
		m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
		m->l2_len = sizeof(struct rte_ether_hdr);
		m->l3_len = hlen;
	} else {
		ip->hdr_checksum = rte_ipv4_cksum(ip);
	}

	eh = (struct rte_ether_hdr *)rte_pktmbuf_prepend(m, sizeof(*eh));
	if (eh == NULL) {
		WCOUNT(w, ipv4_out_drop_headroom);
		rte_pktmbuf_free(m);
		return PG_ERROR;
	}
	eh->src_addr = p->mac;
	eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	return arp_output(w, rt->port, nexthop, m);
}
