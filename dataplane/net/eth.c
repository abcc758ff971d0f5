/*
 * eth.c - Ethernet input and the entry point of the net layer (net_input):
 * accept only frames addressed to the port (or broadcast, or an IPv6 group
 * it listens to), steer them to the worker that owns their flow, and
 * dispatch by EtherType.
 */
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_mbuf.h>

#include "core/worker.h"
#include "net.h"
#include "net_private.h"
#include "result.h"

void net_input(struct worker *w, struct rte_mbuf *m, uint16_t port, bool steered)
{
	const struct net_config *nc = w->net;
	const struct net_port *p;
	const struct rte_ether_hdr *eh;
	enum net_l2_cast cast;
	uint16_t type;

	/*
	 * A steered frame may carry a port index from before a config change
	 * that removed the port; it cannot be interpreted any more.
	 */
	if (nc == NULL || port >= nc->nports) {
		WCOUNT(w, eth_drop_port);
		goto drop;
	}
	p = &nc->ports[port];

	/* Headers are parsed in the first segment only; never trust the wire. */
	if (rte_pktmbuf_data_len(m) < sizeof(struct rte_ether_hdr)) {
		WCOUNT(w, eth_drop_short);
		goto drop;
	}
	eh = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);

	if (rte_is_same_ether_addr(&eh->dst_addr, &p->mac)) {
		cast = NET_L2_UNICAST;
	} else if (rte_is_broadcast_ether_addr(&eh->dst_addr)) {
		cast = NET_L2_BROADCAST;
	} else if (ip6_port_group_mac(p, &eh->dst_addr) && w->nd != NULL) {
		/* IPv6 all-nodes and our solicited-node groups (RFC 4861 §7.2.1). */
		cast = NET_L2_MULTICAST;
	} else if (rte_is_multicast_ether_addr(&eh->dst_addr)) {
		/* No IPv4 multicast service here (no IGMP, RFC 1112 level 0). */
		WCOUNT(w, eth_drop_multicast);
		goto drop;
	} else {
		WCOUNT(w, eth_drop_not_for_us);
		goto drop;
	}

	/*
	 * Our own frames seen again: af_packet and tap can loop TX back to
	 * RX. Processing them would, e.g., make our own ARP announcement look
	 * like an address conflict (RFC 5227 §2.4).
	 */
	if (rte_is_same_ether_addr(&eh->src_addr, &p->mac)) {
		WCOUNT(w, eth_drop_own_src);
		goto drop;
	}

	/*
	 * A tag the device moved into metadata (af_packet does: the kernel
	 * strips 802.1Q before the socket sees the frame) still means the
	 * frame belongs to a VLAN, and ports are untagged.
	 */
	if (m->ol_flags & (RTE_MBUF_F_RX_VLAN_STRIPPED | RTE_MBUF_F_RX_QINQ_STRIPPED)) {
		WCOUNT(w, eth_drop_vlan);
		goto drop;
	}

	/*
	 * Steer after the cheap MAC filter rather than before it: frames that
	 * are not ours (a promiscuous af_packet port sees the whole segment)
	 * should not cost a ring trip to another core before being dropped.
	 */
	if (w->nworkers > 1 && !steered) {
		uint32_t owner = steer_owner(w, m);

		if (owner != w->id) {
			worker_steer(w, owner, m, port);
			return;
		}
	}

	type = rte_be_to_cpu_16(eh->ether_type);
	switch (type) {
	case RTE_ETHER_TYPE_ARP:
		arp_input(w, m, port, steered);
		return;
	case RTE_ETHER_TYPE_IPV4:
		rte_pktmbuf_adj(m, sizeof(struct rte_ether_hdr));
		ipv4_input(w, m, port, cast);
		return;
	case RTE_ETHER_TYPE_IPV6:
		/* A port without an IPv6 address does not speak IPv6 (RFC 2464 framing otherwise).
		 */
		if (!p->has_ip6 || w->nd == NULL) {
			WCOUNT(w, eth_drop_type);
			goto drop;
		}
		rte_pktmbuf_adj(m, sizeof(struct rte_ether_hdr));
		ipv6_input(w, m, port, cast, steered);
		return;
	case RTE_ETHER_TYPE_VLAN:
	case RTE_ETHER_TYPE_QINQ:
	case RTE_ETHER_TYPE_QINQ1:
		/* Ports are untagged; a VLAN is configured on the switch or NIC. */
		WCOUNT(w, eth_drop_vlan);
		goto drop;
	default:
		WCOUNT(w, eth_drop_type);
		goto drop;
	}

drop:
	rte_pktmbuf_free(m);
}
