/*
 * arp.c - the neighbour layer: RFC 826 ARP with the RFC 5227 rules for
 * probes, announcements and conflicts. Each worker has its own table
 * (share nothing; the table itself is neigh.c's, shared with ND); every
 * worker sees every ARP frame from the wire because the receiving worker
 * copies it to the others, so replies that the NIC delivered to any queue
 * teach every cache.
 */
#include <assert.h>
#include <string.h>

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_mbuf.h>

#include "core/worker.h"
#include "neigh.h"
#include "net.h"
#include "net_private.h"
#include "result.h"

/* RFC 5227 §1.1 DEFEND_INTERVAL: at most one defence per 10 s. */
#define ARP_DEFEND_INTERVAL_NS (10ull * 1000 * 1000 * 1000)

/* The states of an entry of the cache (struct neigh_entry, neigh.h). */
enum arp_state {
	ARP_FREE = 0,
	ARP_INCOMPLETE, /* request sent, packets may be parked; probes: requests sent */
	ARP_REACHABLE,  /* mac valid until deadline_ns */
};

/* What a port looked like when the cache learned on it (see arp_config_changed). */
struct arp_port_sig {
	bool valid;
	uint32_t addr;
	uint32_t netmask;
	struct rte_ether_addr mac;
};

struct arp_table {
	struct neigh_cache c;              /* the entries, keyed by (port, address) */
	uint64_t defend_ns[NET_MAX_PORTS]; /* last RFC 5227 defence per port */
	struct arp_port_sig sig[NET_MAX_PORTS];
};

struct arp_table *arp_table_create(struct worker *w, uint32_t capacity)
{
	struct arp_table *t = worker_alloc(w, sizeof(*t));

	if (t == NULL)
		return NULL;
	if (neigh_cache_init(w, &t->c, capacity) != PG_OK) {
		worker_free(w, t);
		return NULL;
	}
	return t;
}

void arp_table_destroy(struct worker *w, struct arp_table *t)
{
	if (t == NULL)
		return;
	neigh_cache_fini(w, &t->c);
	worker_free(w, t);
}

static struct neigh_entry *arp_find(struct arp_table *t, uint16_t port, uint32_t ip)
{
	uint8_t key[16];

	neigh_key4(ip, key);
	return neigh_find(&t->c, port, key);
}

static struct neigh_entry *arp_insert(struct arp_table *t, uint16_t port, uint32_t ip)
{
	uint8_t key[16];

	neigh_key4(ip, key);
	return neigh_insert(&t->c, port, key, ARP_INCOMPLETE);
}

int arp_lookup(struct worker *w, uint16_t port, uint32_t ip, struct rte_ether_addr *mac)
{
	struct neigh_entry *e = arp_find(w->arp, port, ip);

	if (e == NULL || e->state != ARP_REACHABLE || w->now_ns >= e->deadline_ns)
		return PG_DECLINED;
	*mac = e->mac;
	return PG_OK;
}

/*
 * Build and queue one ARP frame on `port`. Frames we build come from the
 * worker's pool; the NIC pads to the Ethernet minimum.
 */
static int arp_send(struct worker *w, uint16_t port, uint16_t op,
                    const struct rte_ether_addr *eth_dst, uint32_t sip,
                    const struct rte_ether_addr *tha, uint32_t tip)
{
	const struct net_port *p = &w->net->ports[port];
	struct rte_ether_hdr *eh;
	struct rte_arp_hdr *ah;
	struct rte_mbuf *m = rte_pktmbuf_alloc(w->pool);

	if (m == NULL) {
		WCOUNT(w, tx_drop_nombuf);
		return PG_ERROR;
	}
	eh = (struct rte_ether_hdr *)rte_pktmbuf_append(m, sizeof(*eh) + sizeof(*ah));
	if (eh == NULL) {
		WCOUNT(w, tx_drop_nombuf);
		rte_pktmbuf_free(m);
		return PG_ERROR;
	}
	eh->dst_addr = *eth_dst;
	eh->src_addr = p->mac;
	eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
	ah = (struct rte_arp_hdr *)(eh + 1);
	ah->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
	ah->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	ah->arp_hlen = RTE_ETHER_ADDR_LEN;
	ah->arp_plen = sizeof(uint32_t);
	ah->arp_opcode = rte_cpu_to_be_16(op);
	ah->arp_data.arp_sha = p->mac;
	ah->arp_data.arp_sip = sip;
	ah->arp_data.arp_tha = *tha;
	ah->arp_data.arp_tip = tip;
	worker_tx(w, port, m);
	return PG_OK;
}

static void arp_send_request(struct worker *w, uint16_t port, uint32_t tip)
{
	static const struct rte_ether_addr bcast = {
	    .addr_bytes = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
	static const struct rte_ether_addr zero;

	if (arp_send(w, port, RTE_ARP_OP_REQUEST, &bcast, w->net->ports[port].addr, &zero, tip) ==
	    PG_OK)
		WCOUNT(w, arp_request_tx);
}

/*
 * RFC 5227 §3: an announcement is a request with sender and target both
 * set to our address and a zero target hardware address, broadcast.
 */
static void arp_send_announcement(struct worker *w, uint16_t port)
{
	static const struct rte_ether_addr bcast = {
	    .addr_bytes = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
	static const struct rte_ether_addr zero;
	uint32_t addr = w->net->ports[port].addr;

	if (arp_send(w, port, RTE_ARP_OP_REQUEST, &bcast, addr, &zero, addr) == PG_OK)
		WCOUNT(w, arp_gratuitous_tx);
}

void arp_announce(struct worker *w)
{
	const struct net_config *nc = w->net;

	if (nc == NULL || !nc->gratuitous_arp)
		return;
	for (uint16_t i = 0; i < nc->nports; i++)
		if (nc->ports[i].addr != 0)
			arp_send_announcement(w, i);
}

/* Record (or refresh) that the entry's address is at `mac`; send what it parked. */
static void arp_entry_learn(struct worker *w, struct arp_table *t, struct neigh_entry *e,
                            const struct rte_ether_addr *mac)
{
	e->mac = *mac;
	e->state = ARP_REACHABLE;
	e->probes = 0;
	e->deadline_ns = w->now_ns + w->net->arp_cache_ns;
	WCOUNT(w, arp_learned);
	if (e->npending > 0)
		neigh_release_pending(w, &t->c, e);
}

static int arp_park(struct worker *w, struct arp_table *t, struct neigh_entry *e,
                    struct rte_mbuf *m)
{
	return neigh_park(w, &t->c, e, m, w->net->arp_pending_max, CTR_arp_pending_queued,
	                  CTR_arp_pending_drop_full);
}

static void arp_start_resolution(struct worker *w, struct neigh_entry *e)
{
	e->state = ARP_INCOMPLETE;
	e->probes = 1;
	e->deadline_ns = w->now_ns + w->net->arp_retry_ns;
	arp_send_request(w, e->port, neigh_ip4(e));
}

int arp_output(struct worker *w, uint16_t port, uint32_t nexthop, struct rte_mbuf *m)
{
	struct arp_table *t = w->arp;
	struct rte_ether_hdr *eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct neigh_entry *e;

	/* Broadcasts need no neighbour (RFC 1122 §3.3.6). */
	if (net_ip_is_limited_bcast(nexthop) ||
	    net_ip_is_port_bcast(&w->net->ports[port], nexthop)) {
		memset(&eh->dst_addr, 0xff, sizeof(eh->dst_addr));
		worker_tx(w, port, m);
		return PG_OK;
	}

	e = arp_find(t, port, nexthop);
	if (e != NULL && e->state == ARP_REACHABLE) {
		if (w->now_ns < e->deadline_ns) {
			eh->dst_addr = e->mac;
			worker_tx(w, port, m);
			return PG_OK;
		}
		/* Expired but the timer has not run yet: resolve again now. */
		WCOUNT(w, arp_expired);
		arp_start_resolution(w, e);
		return arp_park(w, t, e, m);
	}
	if (e != NULL)
		return arp_park(w, t, e, m);

	e = arp_insert(t, port, nexthop);
	if (e == NULL) {
		WCOUNT(w, arp_cache_full);
		rte_pktmbuf_free(m);
		return PG_ERROR;
	}
	arp_start_resolution(w, e);
	return arp_park(w, t, e, m);
}

void arp_timers(struct worker *w)
{
	struct arp_table *t = w->arp;
	uint32_t i = 0;

	if (t == NULL || w->net == NULL)
		return;
	/*
	 * Removal shifts a later entry into slot i, so i is examined again;
	 * an entry that wraps around from slot 0 may be seen twice, which is
	 * harmless because its deadline has just moved forward.
	 */
	while (i <= t->c.mask) {
		struct neigh_entry *e = &t->c.slots[i];

		if (e->state == ARP_FREE || w->now_ns < e->deadline_ns) {
			i++;
			continue;
		}
		if (e->state == ARP_REACHABLE) {
			WCOUNT(w, arp_expired);
			neigh_remove(&t->c, e);
			continue;
		}
		/* INCOMPLETE: the first request plus arp_max_retries retries. */
		if (e->probes <= w->net->arp_max_retries) {
			e->probes++;
			e->deadline_ns = w->now_ns + w->net->arp_retry_ns;
			arp_send_request(w, e->port, neigh_ip4(e));
			i++;
			continue;
		}
		WCOUNT_ADD(w, arp_unresolved_drop, e->npending);
		neigh_remove(&t->c, e);
	}
}

/*
 * Keep what the cache knows about ports that did not change; forget the
 * neighbours of a port whose address, mask or MAC changed or that is gone
 * (their mappings, and the Ethernet source of parked frames, are stale).
 */
void arp_config_changed(struct worker *w)
{
	struct arp_table *t = w->arp;
	const struct net_config *nc = w->net;
	bool stale[NET_MAX_PORTS];

	if (t == NULL || nc == NULL)
		return;
	for (uint16_t p = 0; p < NET_MAX_PORTS; p++) {
		struct arp_port_sig now = {.valid = false};

		if (p < nc->nports) {
			now.valid = true;
			now.addr = nc->ports[p].addr;
			now.netmask = nc->ports[p].netmask;
			now.mac = nc->ports[p].mac;
		}
		stale[p] = !now.valid || !t->sig[p].valid || t->sig[p].addr != now.addr ||
		           t->sig[p].netmask != now.netmask ||
		           !rte_is_same_ether_addr(&t->sig[p].mac, &now.mac);
		t->sig[p] = now;
	}
	WCOUNT_ADD(w, arp_flush_drop, neigh_flush_ports(&t->c, stale));
}

/*
 * A hardware sender address that no single host can own, or ours (our own
 * frame looped back, or someone impersonating us: never learn it).
 */
static bool arp_bad_sha(const struct rte_ether_addr *sha, const struct net_port *p)
{
	return rte_is_zero_ether_addr(sha) || rte_is_multicast_ether_addr(sha) ||
	       rte_is_same_ether_addr(sha, &p->mac);
}

static bool arp_bad_sip(uint32_t sip)
{
	return net_ip_is_multicast(sip) || net_ip_is_limited_bcast(sip);
}

/* Give every other worker a copy so that each cache learns (see file header). */
static void arp_copy_to_others(struct worker *w, const struct rte_mbuf *m, uint16_t port)
{
	for (uint32_t i = 0; i < w->nworkers; i++) {
		struct rte_mbuf *c;

		if (i == w->id)
			continue;
		/* The whole frame: the receiver runs it through net_input. */
		c = rte_pktmbuf_copy(m, w->pool, 0, UINT32_MAX);
		if (c == NULL) {
			WCOUNT(w, tx_drop_nombuf);
			continue;
		}
		WCOUNT(w, arp_bcast_fwd);
		worker_steer(w, i, c, port);
	}
}

/*
 * m starts at the Ethernet header, kept so that copies for the other
 * workers are whole frames. RFC 826 "Packet Reception" order: check hardware and protocol type,
 * merge the sender into an existing entry, add it if we are the target,
 * then answer requests.
 */
void arp_input(struct worker *w, struct rte_mbuf *m, uint16_t port, bool steered)
{
	const struct net_port *p = &w->net->ports[port];
	struct arp_table *t = w->arp;
	const struct rte_arp_hdr *ah;
	struct rte_ether_addr sha;
	uint32_t sip, tip;
	uint16_t op;
	bool for_us;
	struct neigh_entry *e;

	if (rte_pktmbuf_data_len(m) < sizeof(struct rte_ether_hdr) + sizeof(*ah)) {
		WCOUNT(w, arp_drop_malformed);
		goto drop;
	}
	ah = rte_pktmbuf_mtod_offset(m, const struct rte_arp_hdr *, sizeof(struct rte_ether_hdr));
	if (ah->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
	    ah->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
	    ah->arp_hlen != RTE_ETHER_ADDR_LEN || ah->arp_plen != sizeof(uint32_t)) {
		WCOUNT(w, arp_drop_malformed);
		goto drop;
	}
	op = rte_be_to_cpu_16(ah->arp_opcode);
	if (op != RTE_ARP_OP_REQUEST && op != RTE_ARP_OP_REPLY) {
		WCOUNT(w, arp_drop_op);
		goto drop;
	}
	sha = ah->arp_data.arp_sha;
	sip = ah->arp_data.arp_sip;
	tip = ah->arp_data.arp_tip;
	if (arp_bad_sha(&sha, p) || arp_bad_sip(sip)) {
		WCOUNT(w, arp_drop_bad_sender);
		goto drop;
	}
	if (sip != 0 && sip == p->addr) {
		/*
		 * RFC 5227 §2.4: someone else claims our address. We keep it
		 * (configured, not negotiated) and defend it per (b): one
		 * announcement, at most once per DEFEND_INTERVAL. Only the
		 * worker that received the frame from the wire acts.
		 */
		WCOUNT(w, arp_drop_bad_sender);
		if (!steered) {
			WCOUNT(w, arp_conflict);
			if (t->defend_ns[port] == 0 ||
			    w->now_ns - t->defend_ns[port] >= ARP_DEFEND_INTERVAL_NS) {
				t->defend_ns[port] = w->now_ns ? w->now_ns : 1;
				arp_send_announcement(w, port);
			}
		}
		goto drop;
	}

	if (!steered && w->nworkers > 1)
		arp_copy_to_others(w, m, port);

	for_us = p->addr != 0 && tip == p->addr;
	/*
	 * RFC 5227 §2.1.1: a probe (sender address 0) must not update any
	 * cache. Otherwise RFC 826: merge into an existing entry whatever the
	 * target; create one only when we are the target.
	 */
	if (sip != 0) {
		e = arp_find(t, port, sip);
		if (e == NULL && for_us) {
			e = arp_insert(t, port, sip);
			if (e == NULL)
				WCOUNT(w, arp_cache_full);
		}
		if (e != NULL)
			arp_entry_learn(w, t, e, &sha);
	}

	/* Counted once, by the worker that got it from the wire. */
	if (op == RTE_ARP_OP_REPLY) {
		if (!steered)
			WCOUNT(w, arp_reply_rx);
		goto drop;
	}
	if (!for_us) {
		if (!steered)
			WCOUNT(w, arp_drop_not_for_us);
		goto drop;
	}
	if (steered)
		goto drop;
	WCOUNT(w, arp_request_rx);
	/* RFC 826: swap, fill in our address, opcode reply, send to the asker. */
	if (arp_send(w, port, RTE_ARP_OP_REPLY, &sha, p->addr, &sha, sip) == PG_OK)
		WCOUNT(w, arp_reply_tx);
drop:
	rte_pktmbuf_free(m);
}
