/*
 * mld.c - Multicast Listener Discovery for the groups this host joins: the
 * solicited-node group of each IPv6 address of a port (RFC 4861 §7.2.1;
 * RFC 8504 §5.10 makes MLDv2 a MUST for nodes that join groups). Without
 * reports, a switch doing MLD snooping would keep Neighbor Solicitations
 * for our addresses away from us. MLDv2 (RFC 3810) reports are sent when a
 * port's groups change (unsolicited, [Robustness Variable] times) and in
 * answer to queries; a querier speaking MLDv1 (RFC 2710) is answered in
 * kind for the Older Version Querier Present Timeout (RFC 3810 §8.2).
 * All-nodes (ff02::1) is never reported (§6). Worker 0 sends the
 * unsolicited reports; the worker that receives a query answers it.
 */
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_random.h>

#include "core/worker.h"
#include "net.h"
#include "net_private.h"
#include "result.h"

#define MLD_QUERY 130
#define MLD_V1_REPORT 131
#define MLD_V1_DONE 132
#define MLD_V2_REPORT 143
#define MLD_V1_QUERY_LEN 24 /* RFC 2710 §3 */
#define MLD_V2_QUERY_LEN 28 /* RFC 3810 §5.1 */

/* RFC 3810 §9 defaults. */
#define MLD_ROBUSTNESS 2
#define MLD_UNSOLICITED_INTERVAL_NS (1000ull * 1000 * 1000) /* §9.11: 1 s */
#define MLD_QUERY_INTERVAL_NS (125ull * 1000 * 1000 * 1000)
#define MLD_QUERY_RESPONSE_NS (10ull * 1000 * 1000 * 1000)
/* §9.12 Older Version Querier Present Timeout: Robustness * Query Interval + Response. */
#define MLD_V1_TIMEOUT_NS (MLD_ROBUSTNESS * MLD_QUERY_INTERVAL_NS + MLD_QUERY_RESPONSE_NS)

/* §5.2.12 record types. */
#define MLD_MODE_IS_EXCLUDE 2
#define MLD_CHANGE_TO_EXCLUDE 4

/* ff02::16, all MLDv2-capable routers (RFC 3810 §5.2.14). */
static const uint8_t mld_v2_routers[16] = {0xff, 0x02, [15] = 0x16};

/* The port's groups to report: the solicited-node groups of its two addresses (one if equal). */
static unsigned mld_groups(const struct net_port *p, uint8_t groups[2][16])
{
	ip6_solicited_node(p->ll6, groups[0]);
	ip6_solicited_node(p->addr6, groups[1]);
	return ip6_eq(groups[0], groups[1]) ? 1 : 2;
}

/*
 * One report on `port`: MLDv2 to ff02::16 with a record of `rtype` per
 * group, or MLDv1 to the group itself (`v1_group`). Hop limit 1 and a
 * Router Alert option (RFC 3810 §5, RFC 2711); from the link-local address,
 * or from :: while it is not usable yet (RFC 3590 §4, RFC 3810 §5.2.13).
 */
static void mld_send(struct worker *w, uint16_t port, uint8_t rtype, const uint8_t *v1_group)
{
	static const uint8_t unspec[16];
	const struct net_port *p = &w->net->ports[port];
	uint8_t groups[2][16];
	unsigned ngroups = mld_groups(p, groups);
	uint32_t mlen = v1_group != NULL ? 24 : 8 + 20 * ngroups;
	const uint8_t *dst = v1_group != NULL ? v1_group : mld_v2_routers;
	const uint8_t *src = nd_addr_state(w, port, p->ll6) == ND_ADDR_PREFERRED ? p->ll6 : unspec;
	struct rte_mbuf *m = rte_pktmbuf_alloc(w->pool);
	struct rte_ether_hdr *eh;
	struct rte_ipv6_hdr *ip;
	uint8_t *hbh, *msg;
	uint16_t sum;

	if (m == NULL) {
		WCOUNT(w, tx_drop_nombuf);
		return;
	}
	eh = (struct rte_ether_hdr *)rte_pktmbuf_append(
	    m, (uint16_t)(sizeof(*eh) + IP6_HDR_LEN + 8 + mlen));
	if (eh == NULL) {
		WCOUNT(w, tx_drop_nombuf);
		rte_pktmbuf_free(m);
		return;
	}
	ip6_mcast_mac(dst, &eh->dst_addr);
	eh->src_addr = p->mac;
	eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6);
	ip = (struct rte_ipv6_hdr *)(eh + 1);
	ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
	ip->payload_len = rte_cpu_to_be_16((uint16_t)(8 + mlen));
	ip->proto = IP6_NH_HOPOPTS;
	ip->hop_limits = 1;
	memcpy(ip->src_addr, src, 16);
	memcpy(ip->dst_addr, dst, 16);
	/* Hop-by-Hop: Router Alert, value 0 = MLD (RFC 2711 §2.1), then PadN of 2 */
	hbh = (uint8_t *)(ip + 1);
	memcpy(hbh, (const uint8_t[8]){IP6_NH_ICMP6, 0, 5, 2, 0, 0, 1, 0}, 8);
	msg = hbh + 8;
	memset(msg, 0, mlen);
	if (v1_group != NULL) {
		msg[0] = MLD_V1_REPORT;
		memcpy(msg + 8, v1_group, 16);
	} else {
		msg[0] = MLD_V2_REPORT;
		msg[7] = (uint8_t)ngroups;
		for (unsigned g = 0; g < ngroups; g++) {
			msg[8 + 20 * g] = rtype;
			memcpy(msg + 8 + 20 * g + 4, groups[g], 16);
		}
	}
	sum = (uint16_t)~net_cksum_fold((uint32_t)rte_raw_cksum(msg, mlen) +
	                                ip6_phdr_sum(src, dst, mlen, IP6_NH_ICMP6));
	memcpy(msg + 2, &sum, 2);
	WCOUNT(w, mld_report_tx);
	worker_tx(w, port, m);
}

/* A report of every group: MLDv2 with records of `rtype`, or one MLDv1 report per group. */
static void mld_report(struct worker *w, uint16_t port, const struct mld_port *s, uint8_t rtype)
{
	uint8_t groups[2][16];
	unsigned n;

	if (!s->v1_mode) {
		mld_send(w, port, rtype, NULL);
		return;
	}
	n = mld_groups(&w->net->ports[port], groups);
	for (unsigned g = 0; g < n; g++)
		mld_send(w, port, 0, groups[g]);
}

void mld_join(struct worker *w, uint16_t port, struct mld_port *s)
{
	memset(s, 0, sizeof(*s));
	(void)port;
	/*
	 * RFC 4862 §5.4.2: join before the first DAD probe; RFC 3810 §6.1:
	 * the state change is reported [Robustness Variable] times.
	 */
	s->unsolicited_left = MLD_ROBUSTNESS;
	s->next_ns = w->now_ns;
}

void mld_timers(struct worker *w, uint16_t port, struct mld_port *s)
{
	if (s->v1_mode && w->now_ns >= s->v1_until_ns)
		s->v1_mode = false; /* §8.2.1: back to MLDv2 */
	if (s->unsolicited_left > 0 && w->now_ns >= s->next_ns) {
		if (w->id == 0)
			mld_report(w, port, s, MLD_CHANGE_TO_EXCLUDE);
		s->unsolicited_left--;
		s->next_ns = w->now_ns + MLD_UNSOLICITED_INTERVAL_NS;
	}
	if (s->query_due_ns != 0 && w->now_ns >= s->query_due_ns) {
		s->query_due_ns = 0;
		mld_report(w, port, s, MLD_MODE_IS_EXCLUDE);
	}
}

/* §5.1.3 Maximum Response Code (milliseconds), exponent form from 32768 on. */
static uint64_t mld_max_resp_ms(uint16_t code)
{
	if (code < 32768)
		return code;
	return (uint64_t)((code & 0x0fff) | 0x1000) << (((code >> 12) & 0x7) + 3);
}

void mld_input(struct worker *w, struct rte_mbuf *m, const struct ip6_rx *rx, bool steered)
{
	const struct rte_ipv6_hdr *ip = rte_pktmbuf_mtod(m, const struct rte_ipv6_hdr *);
	const struct net_port *p = &w->net->ports[rx->port];
	struct mld_port *s = nd_mld_port(w, rx->port);
	uint8_t buf[MLD_V2_QUERY_LEN], groups[2][16];
	const uint8_t *q;
	uint64_t delay_ms;
	unsigned n;
	bool ours = false;

	/* Reports and Dones of other listeners concern routers only. */
	q = rte_pktmbuf_read(m, rx->l4off, 1, buf);
	if (steered || s == NULL || q == NULL || q[0] != MLD_QUERY) {
		if (!steered)
			WCOUNT(w, nd_ignored);
		goto drop;
	}
	/*
	 * RFC 3810 §5.1.14-15: a query comes from a link-local source with
	 * hop limit 1; a query of any other length than an MLDv1 (24) or an
	 * MLDv2 one (28 and more) is not one.
	 */
	if (!ip6_is_linklocal(ip->src_addr) || ip->hop_limits != 1 ||
	    (rx->l4len != MLD_V1_QUERY_LEN && rx->l4len < MLD_V2_QUERY_LEN)) {
		WCOUNT(w, mld_drop_invalid);
		goto drop;
	}
	WCOUNT(w, mld_query_rx);
	q = rte_pktmbuf_read(m, rx->l4off, MLD_V1_QUERY_LEN, buf);
	if (rx->l4len == MLD_V1_QUERY_LEN) {
		/* §8.2.1: an MLDv1 querier: answer in MLDv1 while it is around */
		s->v1_mode = true;
		s->v1_until_ns = w->now_ns + MLD_V1_TIMEOUT_NS;
		delay_ms = (uint64_t)(q[4] << 8 | q[5]);
	} else {
		delay_ms = mld_max_resp_ms((uint16_t)(q[4] << 8 | q[5]));
	}
	/*
	 * A general query (::), or one for a group of ours. The answer reports
	 * every group of the port (all in the same state): more than a
	 * group-specific query asks, nothing untrue.
	 */
	n = mld_groups(p, groups);
	for (unsigned g = 0; g < n; g++)
		ours |= ip6_eq(q + 8, groups[g]);
	if (!ip6_is_unspec(q + 8) && !ours)
		goto drop;
	/* §6.2: answer after a random delay within the Maximum Response Delay, once. */
	{
		uint64_t due = w->now_ns + (rte_rand() % (delay_ms + 1)) * 1000000ull;

		if (s->query_due_ns == 0 || due < s->query_due_ns)
			s->query_due_ns = due == 0 ? 1 : due;
	}
drop:
	rte_pktmbuf_free(m);
}
