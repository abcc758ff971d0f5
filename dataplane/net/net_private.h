/*
 * net_private.h - what the files of dataplane/net share with each other and
 * nobody else: the per-protocol input functions, the ARP output hook used by
 * IPv4 output, and small address predicates. Public callers use net.h.
 */
#ifndef PG_NET_PRIVATE_H
#define PG_NET_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_mbuf.h>

#include "net.h"

struct worker;

/* How the frame reached us at layer 2 (RFC 1122 §3.3.6 needs to know). */
enum net_l2_cast {
	NET_L2_UNICAST,
	NET_L2_BROADCAST,
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
