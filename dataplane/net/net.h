/*
 * net.h - public interface of the dataplane's L2/L3 layer (Ethernet, ARP,
 * IPv4, ICMP, IPv6, Neighbor Discovery, ICMPv6, routing, steering). The
 * layers above see only these calls. Everything here runs on one worker
 * and touches only that worker's state.
 */
#ifndef PG_NET_H
#define PG_NET_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ether.h>
#include <rte_mbuf.h>

#include "addr.h"

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
	/*
	 * IPv6 (ipv6.c, nd.c): a port speaks IPv6 only with a configured
	 * address. ll6 is derived from the MAC when the config is compiled
	 * (net_port_ipv6_init); both go through DAD (RFC 4862 §5.4) first.
	 */
	bool has_ip6;
	uint8_t prefix6_len; /* of addr6, 1..128 */
	uint8_t addr6[16];   /* global unicast address, as configured */
	uint8_t ll6[16];     /* fe80::/64 link-local, modified EUI-64 of mac */
};

struct net_route {
	uint32_t prefix;  /* network order */
	uint32_t netmask; /* network order */
	uint8_t prefix_len;
	uint8_t port;     /* index into net_config.ports */
	uint32_t gateway; /* network order; 0 = on link */
};

struct net_route6 {
	uint8_t prefix[16];  /* host bits zero */
	uint8_t gateway[16]; /* all zero = on link; may be link-local (on `port`) */
	uint8_t prefix_len;
	uint8_t port; /* index into net_config.ports */
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
	uint16_t nroutes6; /* IPv6 routes, sorted like routes */
	struct net_route6 routes6[NET_MAX_ROUTES];
	/* Neighbour resolution, ARP and ND alike (RetransTimer, MAX_*_SOLICIT) */
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
/* The same over the IPv6 routes (dst as on the wire). */
int net_route6_lookup(const struct net_config *nc, const uint8_t dst[16],
                      const struct net_route6 **route);

/*
 * Output of an IPv6 packet whose fixed header is filled in (m's data
 * starts at it). A zero source is replaced by the address of the leaving
 * port; hop limit 0 becomes the default. Link-local and multicast
 * destinations leave from `port` (the one the packet answers), others
 * from the routed port (`port` is then NET_PORT_ROUTE). Resolves the next
 * hop (parking while ND resolves), prepends Ethernet and queues it.
 * Consumes the mbuf. PG_OK queued, PG_AGAIN parked, PG_DECLINED no route
 * or no usable source address, PG_ERROR dropped otherwise.
 */
#define NET_PORT_ROUTE UINT16_MAX
int net_ipv6_output(struct worker *w, struct rte_mbuf *m, uint16_t port);

/*
 * The source address for a connection to `dst` (RFC 6724, which with one
 * global and one link-local address per port reduces to: the global
 * address of the routed port). PG_OK, PG_DECLINED (no route, or the
 * address is not usable yet: DAD in progress or failed).
 */
int net_ipv6_source(struct worker *w, const uint8_t dst[16], uint8_t src[16]);

/* Fill in the port's link-local address from its MAC (adoption, tests). */
void net_port_ipv6_init(struct net_port *p);

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
/* The same for IPv6 (addresses as on the wire). */
uint32_t steer_hash6(const uint8_t saddr[16], const uint8_t daddr[16], uint16_t sport,
                     uint16_t dport);
/* Either family (both addresses of one family). */
uint32_t steer_hash_addr(const struct pg_addr *saddr, const struct pg_addr *daddr, uint16_t sport,
                         uint16_t dport);

/* Per-worker neighbour (ARP) state lives in struct arp_table (arp.c). */
struct arp_table;
struct arp_table *arp_table_create(struct worker *w, uint32_t capacity);
void arp_table_destroy(struct worker *w, struct arp_table *t);
/* Lookup for tests and diagnostics: PG_OK and *mac if resolved. */
int arp_lookup(struct worker *w, uint16_t port, uint32_t ip, struct rte_ether_addr *mac);

/*
 * Per-worker IPv6 neighbour state (nd.c): the Neighbor Cache of RFC 4861
 * §5.1 and the DAD state of the worker's own addresses (RFC 4862 §5.4).
 * A worker without one (w->nd == NULL) drops IPv6.
 */
struct nd_table;
struct nd_table *nd_table_create(struct worker *w, uint32_t capacity);
void nd_table_destroy(struct worker *w, struct nd_table *t);

/* The state of a neighbour cache entry (RFC 4861 §7.3.2). */
#define ND_STATES(X)                                                                               \
	X(NONE)                                                                                    \
	X(INCOMPLETE)                                                                              \
	X(REACHABLE)                                                                               \
	X(STALE)                                                                                   \
	X(DELAY)                                                                                   \
	X(PROBE)

enum nd_state {
#define ND_STATE_ENUM(s) ND_##s,
	ND_STATES(ND_STATE_ENUM)
#undef ND_STATE_ENUM
	    ND__COUNT
};
const char *nd_state_name(enum nd_state s);

/* Lookup for tests and diagnostics: the entry's state, and *mac when known. */
enum nd_state nd_lookup(struct worker *w, uint16_t port, const uint8_t ip[16],
                        struct rte_ether_addr *mac);

/* The state of one of our own addresses (RFC 4862 §5.4). */
enum nd_addr_state {
	ND_ADDR_NONE = 0,  /* not an address of this port */
	ND_ADDR_TENTATIVE, /* DAD in progress: not used, packets to it dropped */
	ND_ADDR_PREFERRED, /* DAD passed: in use */
	ND_ADDR_DUPLICATE, /* DAD found another owner: never used */
};
enum nd_addr_state nd_addr_state(const struct worker *w, uint16_t port, const uint8_t addr[16]);

#endif
