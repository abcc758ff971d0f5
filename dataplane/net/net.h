/*
 * net.h - public interface of the dataplane's L2/L3 layer (Ethernet, ARP,
 * IPv4, ICMP, routing, steering). The layers above see only these calls.
 * Everything here runs on one worker and touches only that worker's state.
 */
#ifndef PG_NET_H
#define PG_NET_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ether.h>
#include <rte_mbuf.h>

struct worker;

#define NET_MAX_PORTS 8
#define NET_MAX_ROUTES 256

/* One port as the worker sees it (compiled from the snapshot). */
struct net_port {
	uint16_t dpdk_port;         /* DPDK port id */
	uint16_t mtu;
	uint32_t addr;              /* network order; 0 = no address */
	uint32_t netmask;           /* network order */
	uint8_t prefix_len;
	struct rte_ether_addr mac;
	bool tx_ip_cksum_offload;   /* NIC computes the IPv4 header checksum */
	bool rx_ip_cksum_offload;   /* NIC reports IPv4 header checksum status */
};

struct net_route {
	uint32_t prefix;  /* network order */
	uint32_t netmask; /* network order */
	uint8_t prefix_len;
	uint8_t port;     /* index into net_config.ports */
	uint32_t gateway; /* network order; 0 = on link */
};

/*
 * A worker's network configuration. Built from a snapshot at adoption
 * (dataplane/core/adopt.c); immutable while in use; routes sorted longest
 * prefix first (connected subnets, static routes, then default).
 */
struct net_config {
	uint16_t nports;
	uint16_t nroutes;
	struct net_port ports[NET_MAX_PORTS];
	struct net_route routes[NET_MAX_ROUTES];
	uint64_t arp_retry_ns;
	uint64_t arp_cache_ns;
	uint32_t arp_max_retries;
	uint32_t arp_pending_max;
	bool gratuitous_arp;
};

/*
 * Input: one frame received on port index `port` (index into
 * net_config.ports). Consumes the mbuf: it is freed, transmitted, parked,
 * or steered to its owner. `steered` is true when it came from another
 * worker's ring (it is then not steered again nor re-broadcast).
 */
void net_input(struct worker *w, struct rte_mbuf *m, uint16_t port, bool steered);

/*
 * Output of an IPv4 packet whose IPv4 header is filled in (checksum
 * included or left to net_ipv4_output): routes it, resolves the next hop
 * (parking it while ARP resolves), prepends Ethernet, and queues it on the
 * worker's TX buffer. Consumes the mbuf. m's data starts at the IPv4 header.
 */
int net_ipv4_output(struct worker *w, struct rte_mbuf *m);

/* Route lookup: PG_OK with *route set, or PG_DECLINED if none. */
int net_route_lookup(const struct net_config *nc, uint32_t dst, const struct net_route **route);

/* Periodic work (ARP retries and expiry); call with w->now_ns updated. */
void net_timers(struct worker *w);

/* Announce our addresses (gratuitous ARP) on every port. */
void net_announce(struct worker *w);

/* Called when the worker adopts a new net_config (flush stale state). */
void net_config_changed(struct worker *w);

/*
 * Steering. The owner of a TCP/UDP packet is the symmetric Toeplitz hash
 * of its 4-tuple modulo the worker count (the same key programs NIC RSS
 * where the device allows it); other traffic is owned by the receiving
 * worker. Returns the owning worker index.
 */
uint32_t steer_owner(const struct worker *w, const struct rte_mbuf *m);
/* Symmetric hash of an IPv4 4-tuple (addresses/ports network order). */
uint32_t steer_hash4(uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport);

/* Per-worker neighbour (ARP) state lives in struct arp_table (arp.c). */
struct arp_table;
struct arp_table *arp_table_create(struct worker *w, uint32_t capacity);
void arp_table_destroy(struct worker *w, struct arp_table *t);
/* Lookup for tests and diagnostics: PG_OK and *mac if resolved. */
int arp_lookup(struct worker *w, uint16_t port, uint32_t ip, struct rte_ether_addr *mac);

#endif
