/*
 * nd.c - IPv6 Neighbor Discovery for a host (RFC 4861): the Neighbor Cache
 * and its reachability states (§7.3), address resolution with parked
 * packets (§7.2), Neighbor Solicitations and Advertisements in and out,
 * and Duplicate Address Detection of the worker's own addresses (RFC 4862
 * §5.4). Each worker has its own cache and DAD state (share nothing);
 * every worker sees every NS and NA from the wire because the receiving
 * worker copies it to the others, as for ARP. What is per port rather than
 * per worker - DAD probes, unsolicited advertisements - only worker 0
 * transmits, so each address is probed once while every worker watches
 * for an answer; the MLD reports of the solicited-node groups (mld.c) start
 * with DAD. Routers are configured (default_gateway, static_routes):
 * Router Solicitations, Advertisements and Redirects are ignored.
 */
#include <inttypes.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_random.h>

#include "core/events.h"
#include "core/worker.h"
#include "net.h"
#include "neigh.h"
#include "net_private.h"
#include "result.h"

/* RFC 4861 §10 host constants. */
#define ND_REACHABLE_TIME_NS (30ull * 1000 * 1000 * 1000)   /* REACHABLE_TIME */
#define ND_DELAY_FIRST_PROBE_NS (5ull * 1000 * 1000 * 1000) /* DELAY_FIRST_PROBE_TIME */
#define ND_MAX_UNICAST_SOLICIT 3
/* RFC 4862 §5.1: DupAddrDetectTransmits, default 1. */
#define ND_DAD_TRANSMITS 1

#define ND_MSG_LEN 24 /* ICMPv6 header, reserved/flags word, target (RFC 4861 §4.3, §4.4) */
#define ND_OPT_SLLA 1 /* Source Link-Layer Address (§4.6.1) */
#define ND_OPT_TLLA 2 /* Target Link-Layer Address */
#define ND_NA_ROUTER 0x80u
#define ND_NA_SOLICITED 0x40u
#define ND_NA_OVERRIDE 0x20u

#define ND_LL 0     /* index of the link-local address in nd_port_state.dad */
#define ND_GLOBAL 1 /* ... of the configured global address */

/* DAD of one of our addresses. */
struct nd_dad {
	uint8_t state; /* enum nd_addr_state */
	uint8_t sent;  /* solicitations sent */
	uint64_t deadline_ns;
};

/* What a port looked like when DAD ran on it (see nd_config_changed). */
struct nd_port_state {
	bool valid;
	bool has_ip6;
	uint8_t addr6[16];
	struct rte_ether_addr mac;
	struct nd_dad dad[2]; /* ND_LL, ND_GLOBAL */
	struct mld_port mld;  /* the reports of its solicited-node groups (mld.c) */
};

/* The Neighbor Cache (neigh.h) and the per-port DAD state. */
struct nd_table {
	struct neigh_cache c;
	uint64_t reachable_ns; /* ReachableTime: REACHABLE_TIME randomized (§6.3.2) */
	struct nd_port_state ports[NET_MAX_PORTS];
};

static const char *const nd_state_names[ND__COUNT] = {
#define ND_STATE_NAME(s) #s,
    ND_STATES(ND_STATE_NAME)
#undef ND_STATE_NAME
};

const char *nd_state_name(enum nd_state s)
{
	return s < ND__COUNT ? nd_state_names[s] : "?";
}

struct nd_table *nd_table_create(struct worker *w, uint32_t capacity)
{
	struct nd_table *t = worker_alloc(w, sizeof(*t));

	if (t == NULL)
		return NULL;
	memset(t, 0, sizeof(*t));
	t->reachable_ns = ND_REACHABLE_TIME_NS;
	if (neigh_cache_init(w, &t->c, capacity) != PG_OK) {
		worker_free(w, t);
		return NULL;
	}
	return t;
}

void nd_table_destroy(struct worker *w, struct nd_table *t)
{
	if (t == NULL)
		return;
	neigh_cache_fini(w, &t->c);
	worker_free(w, t);
}

/* The one place an entry's state changes (§7.3.2), traced at debug level. */
static void nd_set_state(struct worker *w, struct neigh_entry *e, enum nd_state s,
                         uint64_t deadline)
{
	RTE_LOG_DP(DEBUG, USER1, "worker %u: nd port %u: %s -> %s\n", w->id, e->port,
	           nd_state_names[e->state], nd_state_names[s]);
	e->state = (uint8_t)s;
	e->deadline_ns = deadline;
}

enum nd_state nd_lookup(struct worker *w, uint16_t port, const uint8_t ip[16],
                        struct rte_ether_addr *mac)
{
	struct neigh_entry *e;

	if (w->nd == NULL || (e = neigh_find(&w->nd->c, port, ip)) == NULL)
		return ND_NONE;
	if (e->state != ND_INCOMPLETE && mac != NULL)
		*mac = e->mac;
	return (enum nd_state)e->state;
}

/* ---- our own addresses ---- */

/* Which of the port's addresses `a` is (ND_LL, ND_GLOBAL), or -1. */
static int nd_own_index(const struct net_port *p, const uint8_t a[16])
{
	if (!p->has_ip6)
		return -1;
	if (ip6_eq(a, p->ll6))
		return ND_LL;
	if (ip6_eq(a, p->addr6))
		return ND_GLOBAL;
	return -1;
}

struct mld_port *nd_mld_port(struct worker *w, uint16_t port)
{
	if (w->nd == NULL || w->net == NULL || port >= w->net->nports ||
	    !w->net->ports[port].has_ip6)
		return NULL;
	return &w->nd->ports[port].mld;
}

enum nd_addr_state nd_addr_state(const struct worker *w, uint16_t port, const uint8_t addr[16])
{
	int k;

	if (w->nd == NULL || w->net == NULL || port >= w->net->nports)
		return ND_ADDR_NONE;
	k = nd_own_index(&w->net->ports[port], addr);
	return k < 0 ? ND_ADDR_NONE : (enum nd_addr_state)w->nd->ports[port].dad[k].state;
}

/* ---- sending ---- */

/*
 * Build and send an NS or NA (RFC 4861 §4.3, §4.4) on `port`: src/dst
 * addresses, the target, the flags word (NA), and a link-layer address
 * option of type `opt` carrying our MAC (0 = none). The frame goes to
 * `dmac` when given, else through nd_output to dst (resolving it).
 */
static int nd_send(struct worker *w, uint16_t port, uint8_t type, const uint8_t src[16],
                   const uint8_t dst[16], const uint8_t target[16], uint32_t flags, uint8_t opt,
                   const struct rte_ether_addr *dmac)
{
	const struct net_port *p = &w->net->ports[port];
	uint32_t len = ND_MSG_LEN + (opt != 0 ? 8 : 0);
	struct rte_mbuf *m = rte_pktmbuf_alloc(w->pool);
	struct rte_ether_hdr *eh;
	struct rte_ipv6_hdr *ip;
	uint8_t *icmp;
	uint16_t sum;

	if (m == NULL) {
		WCOUNT(w, tx_drop_nombuf);
		return PG_ERROR;
	}
	eh = (struct rte_ether_hdr *)rte_pktmbuf_append(
	    m, (uint16_t)(sizeof(*eh) + sizeof(*ip) + len));
	if (eh == NULL) {
		WCOUNT(w, tx_drop_nombuf);
		rte_pktmbuf_free(m);
		return PG_ERROR;
	}
	eh->src_addr = p->mac;
	eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6);
	ip = (struct rte_ipv6_hdr *)(eh + 1);
	ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
	ip->payload_len = rte_cpu_to_be_16((uint16_t)len);
	ip->proto = IP6_NH_ICMP6;
	ip->hop_limits = IP6_ND_HOP_LIMIT; /* §7.1: receivers check 255 */
	memcpy(ip->src_addr, src, 16);
	memcpy(ip->dst_addr, dst, 16);
	icmp = (uint8_t *)(ip + 1);
	memset(icmp, 0, len);
	icmp[0] = type;
	flags = rte_cpu_to_be_32(flags);
	memcpy(icmp + 4, &flags, 4);
	memcpy(icmp + 8, target, 16);
	if (opt != 0) {
		icmp[24] = opt;
		icmp[25] = 1; /* in units of 8 bytes: an Ethernet address (RFC 2464 §6) */
		memcpy(icmp + 26, p->mac.addr_bytes, RTE_ETHER_ADDR_LEN);
	}
	sum = net_cksum_fold((uint32_t)rte_raw_cksum(icmp, len) +
	                     ip6_phdr_sum(src, dst, len, IP6_NH_ICMP6));
	sum = (uint16_t)~sum;
	memcpy(icmp + 2, &sum, 2);
	if (type == ND_NEIGHBOR_SOLICIT)
		WCOUNT(w, nd_ns_tx);
	else
		WCOUNT(w, nd_na_tx);
	if (ip6_is_multicast(dst)) {
		ip6_mcast_mac(dst, &eh->dst_addr);
		worker_tx(w, port, m);
		return PG_OK;
	}
	if (dmac != NULL) {
		eh->dst_addr = *dmac;
		worker_tx(w, port, m);
		return PG_OK;
	}
	return nd_output(w, port, dst, m);
}

/*
 * The source of a solicitation (§7.2.2): the source of the packet that
 * prompted it when that is ours, else one of the port's usable addresses,
 * link-local first. NULL if none is usable (DAD still running).
 */
static const uint8_t *nd_solicit_source(struct worker *w, uint16_t port,
                                        const struct rte_mbuf *prompt)
{
	const struct net_port *p = &w->net->ports[port];

	if (prompt != NULL) {
		uint8_t buf[16];
		const uint8_t *s = rte_pktmbuf_read(
		    prompt, sizeof(struct rte_ether_hdr) + offsetof(struct rte_ipv6_hdr, src_addr),
		    16, buf);

		if (s != NULL && nd_addr_state(w, port, s) == ND_ADDR_PREFERRED)
			return ip6_eq(s, p->ll6) ? p->ll6 : p->addr6;
	}
	if (nd_addr_state(w, port, p->ll6) == ND_ADDR_PREFERRED)
		return p->ll6;
	if (nd_addr_state(w, port, p->addr6) == ND_ADDR_PREFERRED)
		return p->addr6;
	return NULL;
}

/* Multicast NS for address resolution (§7.2.2), or unicast for NUD (§7.3.3). */
static void nd_solicit(struct worker *w, struct neigh_entry *e, bool unicast)
{
	const uint8_t *src = nd_solicit_source(w, e->port, e->npending > 0 ? e->pending[0] : NULL);
	uint8_t dst[16];

	if (src == NULL)
		return; /* no usable address yet: the retry timer tries again */
	if (unicast) {
		nd_send(w, e->port, ND_NEIGHBOR_SOLICIT, src, e->ip, e->ip, 0, ND_OPT_SLLA,
		        &e->mac);
		return;
	}
	ip6_solicited_node(e->ip, dst);
	nd_send(w, e->port, ND_NEIGHBOR_SOLICIT, src, dst, e->ip, 0, ND_OPT_SLLA, NULL);
}

/* ---- resolution (§7.2.2) and the states (§7.3.3) ---- */

/* Send m to a resolved entry; sending to a STALE one starts NUD (§7.3.3). */
static int nd_send_resolved(struct worker *w, struct neigh_entry *e, struct rte_mbuf *m)
{
	struct rte_ether_hdr *eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);

	if (e->state == ND_REACHABLE && w->now_ns >= e->deadline_ns)
		nd_set_state(w, e, ND_STALE, w->now_ns); /* the timer has not run yet */
	if (e->state == ND_STALE)
		nd_set_state(w, e, ND_DELAY, w->now_ns + ND_DELAY_FIRST_PROBE_NS);
	eh->dst_addr = e->mac;
	worker_tx(w, e->port, m);
	return PG_OK;
}

int nd_output(struct worker *w, uint16_t port, const uint8_t nexthop[16], struct rte_mbuf *m)
{
	struct nd_table *t = w->nd;
	struct neigh_entry *e;

	if (t == NULL) {
		rte_pktmbuf_free(m);
		return PG_ERROR;
	}
	e = neigh_find(&t->c, port, nexthop);
	if (e != NULL && e->state != ND_INCOMPLETE)
		return nd_send_resolved(w, e, m);
	if (e != NULL)
		return neigh_park(w, &t->c, e, m, w->net->arp_pending_max, CTR_nd_pending_queued,
		                  CTR_nd_pending_drop_full);
	e = neigh_insert(&t->c, port, nexthop, ND_INCOMPLETE);
	if (e == NULL) {
		WCOUNT(w, nd_cache_full);
		rte_pktmbuf_free(m);
		return PG_ERROR;
	}
	e->probes = 1;
	e->deadline_ns = w->now_ns + w->net->arp_retry_ns;
	/* Park first: the solicitation takes its source from the parked packet. */
	if (neigh_park(w, &t->c, e, m, w->net->arp_pending_max, CTR_nd_pending_queued,
	               CTR_nd_pending_drop_full) == PG_ERROR) {
		neigh_remove(&t->c, e);
		return PG_ERROR;
	}
	nd_solicit(w, e, false);
	return PG_AGAIN;
}

/* An address of ours turned out to be someone else's (RFC 4862 §5.4.5). */
static void nd_dad_failed(struct worker *w, uint16_t port, int k)
{
	struct nd_port_state *ps = &w->nd->ports[port];
	char text[PG_ADDR_STRLEN];
	struct pg_addr a;

	if (ps->dad[k].state == ND_ADDR_DUPLICATE)
		return;
	ps->dad[k].state = ND_ADDR_DUPLICATE;
	/*
	 * §5.4.5: a duplicate link-local address formed from the hardware
	 * address means the MAC itself is duplicated: IP operation on the
	 * interface SHOULD be disabled, so the global address goes too.
	 */
	if (k == ND_LL)
		ps->dad[ND_GLOBAL].state = ND_ADDR_DUPLICATE;
	if (w->id != 0)
		return;
	a = pg_addr_v6(k == ND_LL ? w->net->ports[port].ll6 : w->net->ports[port].addr6);
	pg_addr_fmt(&a, text, sizeof(text));
	WCOUNT(w, nd_dad_duplicate);
	RTE_LOG(ERR, USER1, "port %u: IPv6 address %s is a duplicate (DAD): not used\n", port,
	        text);
	dp_event(w, EV_ADDRESS_DUPLICATE, "port=%u" EVRING_SEP "address=%s", port, text);
}

/* ---- input ---- */

/* The NS/NA options that matter here, after validation (§7.1). */
struct nd_msg {
	uint8_t type, code;
	uint32_t flags; /* NA: R, S, O */
	uint8_t target[16];
	bool has_lla; /* SLLA in an NS, TLLA in an NA */
	struct rte_ether_addr lla;
};

/*
 * RFC 4861 §7.1.1 (NS) and §7.1.2 (NA) validity checks; the checksum was
 * checked by icmp6_input. false: the message is silently discarded.
 */
static bool nd_parse(const struct rte_mbuf *m, const struct ip6_rx *rx,
                     const struct rte_ipv6_hdr *ip, struct nd_msg *msg)
{
	uint8_t buf[ND_MSG_LEN], obuf[8];
	const uint8_t *h;
	uint32_t off;

	if (ip->hop_limits != IP6_ND_HOP_LIMIT || rx->l4len < ND_MSG_LEN)
		return false;
	h = rte_pktmbuf_read(m, rx->l4off, ND_MSG_LEN, buf);
	msg->type = h[0];
	msg->code = h[1];
	msg->flags = (uint32_t)h[4] << 24;
	memcpy(msg->target, h + 8, 16);
	msg->has_lla = false;
	if (msg->code != 0 || ip6_is_multicast(msg->target))
		return false;
	for (off = ND_MSG_LEN; off < rx->l4len;) {
		uint32_t olen;
		const uint8_t *o;

		if (rx->l4len - off < 2)
			return false;
		o = rte_pktmbuf_read(m, rx->l4off + off, 2, obuf);
		olen = (uint32_t)o[1] * 8;
		/* §7.1: every option has a length greater than zero, inside the message */
		if (olen == 0 || olen > rx->l4len - off)
			return false;
		if ((msg->type == ND_NEIGHBOR_SOLICIT && o[0] == ND_OPT_SLLA) ||
		    (msg->type == ND_NEIGHBOR_ADVERT && o[0] == ND_OPT_TLLA)) {
			/* RFC 2464 §6: on Ethernet the option is exactly 8 bytes */
			if (olen != 8)
				return false;
			o = rte_pktmbuf_read(m, rx->l4off + off, 8, obuf);
			memcpy(msg->lla.addr_bytes, o + 2, RTE_ETHER_ADDR_LEN);
			msg->has_lla = true;
		}
		off += olen;
	}
	if (msg->type == ND_NEIGHBOR_SOLICIT && ip6_is_unspec(ip->src_addr)) {
		uint8_t sn[16];

		/* §7.1.1: DAD probes go to the target's solicited-node group, without SLLA */
		ip6_solicited_node(msg->target, sn);
		if (!ip6_eq(ip->dst_addr, sn) || msg->has_lla)
			return false;
	}
	/* §7.1.2: an advertisement to a group is never "solicited" */
	if (msg->type == ND_NEIGHBOR_ADVERT && ip6_is_multicast(ip->dst_addr) &&
	    (msg->flags & (ND_NA_SOLICITED << 24)) != 0)
		return false;
	/* A link-layer address that no single host can own teaches nothing. */
	if (msg->has_lla &&
	    (rte_is_zero_ether_addr(&msg->lla) || rte_is_multicast_ether_addr(&msg->lla)))
		return false;
	return true;
}

/* Give every other worker a copy (the whole frame) so that each cache learns. */
static void nd_copy_to_others(struct worker *w, struct rte_mbuf *m, uint16_t port)
{
	/* ipv6_input stripped Ethernet; the bytes are still in front of the data. */
	if (rte_pktmbuf_prepend(m, sizeof(struct rte_ether_hdr)) == NULL)
		return;
	for (uint32_t i = 0; i < w->nworkers; i++) {
		struct rte_mbuf *c;

		if (i == w->id)
			continue;
		c = rte_pktmbuf_copy(m, w->pool, 0, UINT32_MAX);
		if (c == NULL) {
			WCOUNT(w, tx_drop_nombuf);
			continue;
		}
		WCOUNT(w, nd_bcast_fwd);
		worker_steer(w, i, c, port);
	}
	rte_pktmbuf_adj(m, sizeof(struct rte_ether_hdr));
}

/*
 * §7.2.3: a solicitation with a source address and SLLA creates the
 * sender's entry as STALE, or updates a different address and makes it
 * STALE; an INCOMPLETE entry so completed sends what it parked (Appendix C).
 */
static void nd_learn_from_ns(struct worker *w, uint16_t port, const uint8_t src[16],
                             const struct rte_ether_addr *lla)
{
	struct nd_table *t = w->nd;
	struct neigh_entry *e = neigh_find(&t->c, port, src);

	if (e == NULL) {
		e = neigh_insert(&t->c, port, src, ND_STALE);
		if (e == NULL) {
			WCOUNT(w, nd_cache_full);
			return;
		}
		e->mac = *lla;
		e->deadline_ns = w->now_ns + w->net->arp_cache_ns;
		WCOUNT(w, nd_learned);
		return;
	}
	if (e->state != ND_INCOMPLETE && rte_is_same_ether_addr(&e->mac, lla))
		return;
	e->mac = *lla;
	nd_set_state(w, e, ND_STALE, w->now_ns + w->net->arp_cache_ns);
	WCOUNT(w, nd_learned);
	/* Appendix C: INCOMPLETE completed by a solicitation sends what it parked. */
	neigh_release_pending(w, &t->c, e);
}

static void nd_ns_input(struct worker *w, const struct rte_ipv6_hdr *ip, const struct ip6_rx *rx,
                        const struct nd_msg *msg, bool steered)
{
	const struct net_port *p = &w->net->ports[rx->port];
	struct nd_port_state *ps = &w->nd->ports[rx->port];
	int k = nd_own_index(p, msg->target);
	bool from_dad = ip6_is_unspec(ip->src_addr);

	/* §7.2.3: a target not assigned to the receiving interface: discard. */
	if (k < 0 || ps->dad[k].state == ND_ADDR_NONE) {
		if (!steered)
			WCOUNT(w, nd_drop_not_for_us);
		return;
	}
	if (ps->dad[k].state == ND_ADDR_TENTATIVE) {
		/*
		 * RFC 4862 §5.4.3: another node runs DAD for the same
		 * address: it is a duplicate. A solicitation from a unicast
		 * source for a tentative target is silently ignored.
		 */
		if (from_dad)
			nd_dad_failed(w, rx->port, k);
		return;
	}
	if (ps->dad[k].state == ND_ADDR_DUPLICATE)
		return;
	if (!from_dad && msg->has_lla)
		nd_learn_from_ns(w, rx->port, ip->src_addr, &msg->lla);
	if (steered)
		return; /* the worker that got it from the wire answers */
	/*
	 * §7.2.4: answer with our address as target and TLLA, Override set
	 * (not an anycast address), Router clear (a host). To a DAD probe the
	 * answer goes to all nodes, unsolicited; otherwise to the asker.
	 */
	if (from_dad)
		nd_send(w, rx->port, ND_NEIGHBOR_ADVERT, msg->target, ip6_all_nodes, msg->target,
		        ND_NA_OVERRIDE << 24, ND_OPT_TLLA, NULL);
	else
		nd_send(w, rx->port, ND_NEIGHBOR_ADVERT, msg->target, ip->src_addr, msg->target,
		        (ND_NA_SOLICITED | ND_NA_OVERRIDE) << 24, ND_OPT_TLLA,
		        msg->has_lla ? &msg->lla : NULL);
}

/* §7.2.5: an advertisement updates an existing entry only. */
static void nd_na_input(struct worker *w, const struct ip6_rx *rx, const struct nd_msg *msg,
                        bool steered)
{
	struct nd_table *t = w->nd;
	int k = nd_own_index(&w->net->ports[rx->port], msg->target);
	bool solicited = (msg->flags & (ND_NA_SOLICITED << 24)) != 0;
	bool override = (msg->flags & (ND_NA_OVERRIDE << 24)) != 0;
	bool differs;
	struct neigh_entry *e;

	if (k >= 0 && t->ports[rx->port].dad[k].state != ND_ADDR_NONE) {
		/* RFC 4862 §5.4.4: an advertisement for a tentative address of ours. */
		if (t->ports[rx->port].dad[k].state == ND_ADDR_TENTATIVE)
			nd_dad_failed(w, rx->port, k);
		else if (!steered)
			WCOUNT(w, nd_conflict); /* in use: keep it, never learn it */
		return;
	}
	e = neigh_find(&t->c, rx->port, msg->target);
	if (e == NULL)
		return; /* §7.2.5: no entry, silently discarded */
	if (e->state == ND_INCOMPLETE) {
		if (!msg->has_lla)
			return;
		e->mac = msg->lla;
		e->router = (msg->flags & (ND_NA_ROUTER << 24)) != 0;
		if (solicited)
			nd_set_state(w, e, ND_REACHABLE, w->now_ns + t->reachable_ns);
		else
			nd_set_state(w, e, ND_STALE, w->now_ns + w->net->arp_cache_ns);
		WCOUNT(w, nd_learned);
		neigh_release_pending(w, &t->c, e);
		return;
	}
	differs = msg->has_lla && !rte_is_same_ether_addr(&msg->lla, &e->mac);
	if (!override && differs) {
		/* Not allowed to override: only doubt the entry we have. */
		if (e->state == ND_REACHABLE)
			nd_set_state(w, e, ND_STALE, w->now_ns + w->net->arp_cache_ns);
		return;
	}
	if (differs)
		e->mac = msg->lla;
	if (solicited)
		nd_set_state(w, e, ND_REACHABLE, w->now_ns + t->reachable_ns);
	else if (differs)
		nd_set_state(w, e, ND_STALE, w->now_ns + w->net->arp_cache_ns);
	e->router = (msg->flags & (ND_NA_ROUTER << 24)) != 0;
	WCOUNT(w, nd_learned);
}

void nd_input(struct worker *w, struct rte_mbuf *m, const struct ip6_rx *rx, bool steered)
{
	const struct rte_ipv6_hdr *ip = rte_pktmbuf_mtod(m, const struct rte_ipv6_hdr *);
	uint8_t tbuf, type;
	struct nd_msg msg;

	if (w->nd == NULL)
		goto drop;
	type = *(const uint8_t *)rte_pktmbuf_read(m, rx->l4off, 1, &tbuf);
	if (type == ND_ROUTER_SOLICIT || type == ND_ROUTER_ADVERT || type == ND_REDIRECT) {
		/*
		 * RS are for routers (§6.2.6); RA (§6.3.4) and Redirect (§8.3,
		 * a SHOULD) would let any node on the link reroute a relay
		 * whose routes are configured: ignored.
		 */
		if (!steered)
			WCOUNT(w, nd_ignored);
		goto drop;
	}
	if (!nd_parse(m, rx, ip, &msg)) {
		if (!steered)
			WCOUNT(w, nd_drop_invalid);
		goto drop;
	}
	if (!steered) {
		if (msg.type == ND_NEIGHBOR_SOLICIT)
			WCOUNT(w, nd_ns_rx);
		else
			WCOUNT(w, nd_na_rx);
		if (w->nworkers > 1)
			nd_copy_to_others(w, m, rx->port);
	}
	if (msg.type == ND_NEIGHBOR_SOLICIT)
		nd_ns_input(w, ip, rx, &msg, steered);
	else
		nd_na_input(w, rx, &msg, steered);
drop:
	rte_pktmbuf_free(m);
}

/* ---- timers ---- */

/* DAD of one address (RFC 4862 §5.4.2): probe, wait RetransTimer, then use it. */
static void nd_dad_step(struct worker *w, uint16_t port, int k)
{
	const struct net_port *p = &w->net->ports[port];
	struct nd_dad *d = &w->nd->ports[port].dad[k];
	const uint8_t *a = k == ND_LL ? p->ll6 : p->addr6;
	static const uint8_t unspec[16];
	uint8_t sn[16];

	if (d->state != ND_ADDR_TENTATIVE || w->now_ns < d->deadline_ns)
		return;
	if (d->sent < ND_DAD_TRANSMITS) {
		/*
		 * From the unspecified address to the solicited-node group,
		 * no SLLA (§5.4.2). The random delay before the first probe
		 * (a SHOULD, against storms of nodes booting together) is
		 * left out: the relay is one node, and waits for DAD anyway.
		 */
		if (w->id == 0) {
			ip6_solicited_node(a, sn);
			nd_send(w, port, ND_NEIGHBOR_SOLICIT, unspec, sn, a, 0, 0, NULL);
		}
		d->sent++;
		d->deadline_ns = w->now_ns + w->net->arp_retry_ns;
		return;
	}
	d->state = ND_ADDR_PREFERRED;
	if (w->id != 0)
		return;
	WCOUNT(w, nd_dad_ok);
	/* RFC 4861 §7.2.6: a node MAY announce itself with an unsolicited NA. */
	if (w->net->gratuitous_arp)
		nd_send(w, port, ND_NEIGHBOR_ADVERT, a, ip6_all_nodes, a, ND_NA_OVERRIDE << 24,
		        ND_OPT_TLLA, NULL);
}

void nd_timers(struct worker *w)
{
	struct nd_table *t = w->nd;
	uint32_t i = 0;

	if (t == NULL || w->net == NULL)
		return;
	for (uint16_t p = 0; p < w->net->nports; p++) {
		if (!w->net->ports[p].has_ip6)
			continue;
		mld_timers(w, p, &t->ports[p].mld); /* first: the join precedes DAD */
		nd_dad_step(w, p, ND_LL);
		nd_dad_step(w, p, ND_GLOBAL);
	}
	/* Removal shifts a later entry into slot i, so i is examined again. */
	while (i <= t->c.mask) {
		struct neigh_entry *e = &t->c.slots[i];

		if (e->state == ND_NONE || w->now_ns < e->deadline_ns) {
			i++;
			continue;
		}
		switch ((enum nd_state)e->state) {
		case ND_INCOMPLETE:
			/* The first solicitation plus arp_max_retries (MAX_MULTICAST_SOLICIT). */
			if (e->probes <= w->net->arp_max_retries) {
				e->probes++;
				e->deadline_ns = w->now_ns + w->net->arp_retry_ns;
				nd_solicit(w, e, false);
				i++;
				continue;
			}
			/*
			 * §7.2.2: resolution failed. The queued packets are
			 * our own: dropped and counted (an ICMPv6 error to
			 * ourselves would tell nobody more).
			 */
			WCOUNT_ADD(w, nd_unresolved_drop, e->npending);
			neigh_remove(&t->c, e);
			continue;
		case ND_REACHABLE:
			nd_set_state(w, e, ND_STALE, w->now_ns + w->net->arp_cache_ns);
			i++;
			continue;
		case ND_DELAY:
			/* §7.3.3: no confirmation within DELAY_FIRST_PROBE_TIME: probe. */
			nd_set_state(w, e, ND_PROBE, w->now_ns + w->net->arp_retry_ns);
			e->probes = 1;
			nd_solicit(w, e, true);
			i++;
			continue;
		case ND_PROBE:
			if (e->probes < ND_MAX_UNICAST_SOLICIT) {
				e->probes++;
				e->deadline_ns = w->now_ns + w->net->arp_retry_ns;
				nd_solicit(w, e, true);
				i++;
				continue;
			}
			break; /* unreachable: removed (§7.3.3) */
		case ND_STALE:
			break; /* unused for arp_cache_timeout: garbage collected */
		case ND_NONE:
		case ND__COUNT:
			i++;
			continue;
		}
		WCOUNT(w, nd_expired);
		neigh_remove(&t->c, e);
	}
}

/*
 * Keep what the cache and DAD know about ports whose IPv6 setup did not
 * change; for a port that changed (address, MAC) or is gone, forget its
 * neighbours and run DAD again on its addresses.
 */
void nd_config_changed(struct worker *w)
{
	struct nd_table *t = w->nd;
	const struct net_config *nc = w->net;
	bool stale[NET_MAX_PORTS];

	if (t == NULL || nc == NULL)
		return;
	/* §6.3.2: ReachableTime is BaseReachableTime times a random 0.5..1.5. */
	t->reachable_ns = ND_REACHABLE_TIME_NS / 2 + rte_rand() % ND_REACHABLE_TIME_NS;
	for (uint16_t p = 0; p < NET_MAX_PORTS; p++) {
		struct nd_port_state *ps = &t->ports[p];
		const struct net_port *np = p < nc->nports ? &nc->ports[p] : NULL;
		bool has = np != NULL && np->has_ip6;
		bool mac_changed, addr_changed;

		mac_changed =
		    !ps->valid || (np != NULL && !rte_is_same_ether_addr(&ps->mac, &np->mac));
		addr_changed = has != ps->has_ip6 || (has && !ip6_eq(ps->addr6, np->addr6));
		stale[p] = np == NULL || mac_changed || addr_changed;
		if (!stale[p])
			continue;
		memset(ps, 0, sizeof(*ps));
		ps->valid = np != NULL;
		if (np == NULL)
			continue;
		ps->mac = np->mac;
		ps->has_ip6 = has;
		if (!has)
			continue;
		memcpy(ps->addr6, np->addr6, 16);
		for (int k = ND_LL; k <= ND_GLOBAL; k++) {
			ps->dad[k].state = ND_ADDR_TENTATIVE;
			ps->dad[k].deadline_ns = w->now_ns; /* first probe at the next nd_timers */
		}
		mld_join(w, p, &ps->mld);
	}
	WCOUNT_ADD(w, nd_flush_drop, neigh_flush_ports(&t->c, stale));
}
