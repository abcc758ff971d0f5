/*
 * neigh.h - what the two neighbour caches of a worker share: ARP's
 * (arp.c) and IPv6 Neighbor Discovery's (nd.c). A table of entries keyed
 * by (port, address), open addressing with linear probing and
 * backward-shift deletion (no tombstones, so lookups never degrade; slots
 * are at least twice the entry cap), and the packets parked on an entry
 * while its address resolves. The states, the messages and the timers are
 * each protocol's own.
 */
#ifndef PG_NEIGH_H
#define PG_NEIGH_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ether.h>
#include <rte_mbuf.h>

#include "core/counters.h"

struct worker;

/*
 * Packets parked per unresolved neighbour. RFC 1122 §2.3.2.2 (and RFC
 * 4861 §7.2.2 for IPv6): the link layer SHOULD save at least one (the
 * latest) packet; a few cover a TCP handshake retry plus an ICMP reply.
 */
#define NEIGH_PENDING_PER_ENTRY 4

struct neigh_entry {
	uint8_t ip[16]; /* an IPv4 address in the first 4 bytes (network order), the rest 0 */
	uint16_t port;  /* index into net_config.ports */
	uint8_t state;  /* the protocol's state enum; 0 = free slot */
	uint8_t npending;
	uint32_t probes; /* requests or solicitations sent in the current phase */
	bool router;     /* ND: IsRouter (RFC 4861 §5.1) */
	struct rte_ether_addr mac;
	uint64_t deadline_ns;                              /* the protocol's next timer */
	struct rte_mbuf *pending[NEIGH_PENDING_PER_ENTRY]; /* oldest first */
};

struct neigh_cache {
	uint32_t mask; /* nslots - 1 */
	uint32_t count;
	uint32_t max_entries;
	uint32_t npending; /* parked packets in all entries */
	struct neigh_entry *slots;
};

/* PG_OK, or PG_ERROR (no memory, capacity 0 or above 2^24). */
int neigh_cache_init(struct worker *w, struct neigh_cache *c, uint32_t capacity);
/* Free the slots and every parked packet. */
void neigh_cache_fini(struct worker *w, struct neigh_cache *c);

/* The key of an IPv4 address (network order). */
static inline void neigh_key4(uint32_t ip, uint8_t key[16])
{
	__builtin_memset(key, 0, 16);
	__builtin_memcpy(key, &ip, 4);
}

static inline uint32_t neigh_ip4(const struct neigh_entry *e)
{
	uint32_t ip;

	__builtin_memcpy(&ip, e->ip, 4);
	return ip;
}

struct neigh_entry *neigh_find(struct neigh_cache *c, uint16_t port, const uint8_t ip[16]);
/* A new entry in `state` (zeroed otherwise), or NULL if the cache is at its cap. */
struct neigh_entry *neigh_insert(struct neigh_cache *c, uint16_t port, const uint8_t ip[16],
                                 uint8_t state);
/*
 * Remove the entry, freeing what it parked, and shift back the entries of
 * its cluster: the slot may then hold another entry, so a walk over the
 * slots examines the same index again.
 */
void neigh_remove(struct neigh_cache *c, struct neigh_entry *e);
/*
 * Remove the entries on ports marked in stale[] (indexed by port, at
 * least NET_MAX_PORTS); returns the parked packets so dropped.
 */
uint32_t neigh_flush_ports(struct neigh_cache *c, const bool *stale);
/* Free the entry's parked packets; returns how many. */
uint8_t neigh_drop_pending(struct neigh_cache *c, struct neigh_entry *e);

/*
 * Park m on an unresolved entry within the per-entry and per-cache
 * (`max_pending`) bounds, dropping the oldest of the entry's when full:
 * PG_AGAIN (parked) or PG_ERROR (m dropped). Counts `queued` or `dropped`.
 */
int neigh_park(struct worker *w, struct neigh_cache *c, struct neigh_entry *e, struct rte_mbuf *m,
               uint32_t max_pending, enum pg_counter queued, enum pg_counter dropped);
/* Resolved: send the parked packets to e->mac, in arrival order. */
void neigh_release_pending(struct worker *w, struct neigh_cache *c, struct neigh_entry *e);

#endif
