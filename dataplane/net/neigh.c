/*
 * neigh.c - the table and the parked packets both neighbour caches use
 * (neigh.h): ARP's for IPv4 (arp.c) and Neighbor Discovery's for IPv6
 * (nd.c), one of each per worker.
 */
#include <string.h>

#include <rte_ether.h>
#include <rte_jhash.h>
#include <rte_mbuf.h>

#include "core/worker.h"
#include "neigh.h"
#include "result.h"

int neigh_cache_init(struct worker *w, struct neigh_cache *c, uint32_t capacity)
{
	memset(c, 0, sizeof(*c));
	if (capacity == 0 || capacity > (1u << 24))
		return PG_ERROR;
	c->max_entries = capacity;
	c->mask = rte_align32pow2(capacity * 2) - 1;
	c->slots = worker_alloc(w, (size_t)(c->mask + 1) * sizeof(*c->slots));
	return c->slots != NULL ? PG_OK : PG_ERROR;
}

uint8_t neigh_drop_pending(struct neigh_cache *c, struct neigh_entry *e)
{
	uint8_t n = e->npending;

	for (uint8_t i = 0; i < n; i++)
		rte_pktmbuf_free(e->pending[i]);
	c->npending -= n;
	e->npending = 0;
	return n;
}

void neigh_cache_fini(struct worker *w, struct neigh_cache *c)
{
	if (c->slots == NULL)
		return;
	for (uint32_t i = 0; i <= c->mask; i++)
		if (c->slots[i].state != 0)
			neigh_drop_pending(c, &c->slots[i]);
	worker_free(w, c->slots);
	c->slots = NULL;
}

static uint32_t neigh_slot_of(const struct neigh_cache *c, uint16_t port, const uint8_t ip[16])
{
	uint32_t k[4];

	memcpy(k, ip, 16);
	return rte_jhash_32b(k, 4, 0x9e3779b9u + port) & c->mask;
}

struct neigh_entry *neigh_find(struct neigh_cache *c, uint16_t port, const uint8_t ip[16])
{
	for (uint32_t i = neigh_slot_of(c, port, ip);; i = (i + 1) & c->mask) {
		struct neigh_entry *e = &c->slots[i];

		if (e->state == 0)
			return NULL;
		if (e->port == port && memcmp(e->ip, ip, 16) == 0)
			return e;
	}
}

struct neigh_entry *neigh_insert(struct neigh_cache *c, uint16_t port, const uint8_t ip[16],
                                 uint8_t state)
{
	uint32_t i;

	if (c->count >= c->max_entries)
		return NULL;
	for (i = neigh_slot_of(c, port, ip); c->slots[i].state != 0; i = (i + 1) & c->mask)
		;
	memset(&c->slots[i], 0, sizeof(c->slots[i]));
	memcpy(c->slots[i].ip, ip, 16);
	c->slots[i].port = port;
	c->slots[i].state = state;
	c->count++;
	return &c->slots[i];
}

void neigh_remove(struct neigh_cache *c, struct neigh_entry *e)
{
	uint32_t hole = (uint32_t)(e - c->slots);

	neigh_drop_pending(c, e);
	for (uint32_t i = (hole + 1) & c->mask; c->slots[i].state != 0; i = (i + 1) & c->mask) {
		uint32_t home = neigh_slot_of(c, c->slots[i].port, c->slots[i].ip);

		/* Movable iff its home is not cyclically within (hole, i]. */
		if (((i - home) & c->mask) >= ((i - hole) & c->mask)) {
			c->slots[hole] = c->slots[i];
			hole = i;
		}
	}
	memset(&c->slots[hole], 0, sizeof(c->slots[hole]));
	c->count--;
}

uint32_t neigh_flush_ports(struct neigh_cache *c, const bool *stale)
{
	uint32_t i = 0, dropped = 0;

	/* Removal shifts a later entry into slot i, so i is examined again. */
	while (i <= c->mask) {
		struct neigh_entry *e = &c->slots[i];

		if (e->state == 0 || !stale[e->port]) {
			i++;
			continue;
		}
		dropped += e->npending;
		neigh_remove(c, e);
	}
	return dropped;
}

int neigh_park(struct worker *w, struct neigh_cache *c, struct neigh_entry *e, struct rte_mbuf *m,
               uint32_t max_pending, enum pg_counter queued, enum pg_counter dropped)
{
	if (e->npending == NEIGH_PENDING_PER_ENTRY ||
	    (c->npending >= max_pending && e->npending > 0)) {
		/* Keep the latest packet, as RFC 1122 §2.3.2.2 suggests. */
		rte_pktmbuf_free(e->pending[0]);
		memmove(&e->pending[0], &e->pending[1], (e->npending - 1) * sizeof(e->pending[0]));
		e->npending--;
		c->npending--;
		w->ctr[dropped]++;
	} else if (c->npending >= max_pending) {
		w->ctr[dropped]++;
		rte_pktmbuf_free(m);
		return PG_ERROR;
	}
	e->pending[e->npending++] = m;
	c->npending++;
	w->ctr[queued]++;
	return PG_AGAIN;
}

void neigh_release_pending(struct worker *w, struct neigh_cache *c, struct neigh_entry *e)
{
	for (uint8_t i = 0; i < e->npending; i++) {
		struct rte_mbuf *m = e->pending[i];
		struct rte_ether_hdr *eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);

		eh->dst_addr = e->mac;
		worker_tx(w, e->port, m);
	}
	c->npending -= e->npending;
	e->npending = 0;
}
