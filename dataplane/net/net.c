/*
 * net.c - the net layer's housekeeping entry points: timers, announcements
 * and adoption of a new configuration. Protocol work lives in eth.c,
 * arp.c, ipv4.c, icmp.c, ipv6.c, nd.c, icmp6.c; this file only fans out
 * to them, and holds what IPv4 and IPv6 input share (net_mbuf_trim). IPv6
 * announces itself when DAD completes, from nd_timers.
 */
#include "core/worker.h"
#include "net.h"
#include "net_private.h"

void net_timers(struct worker *w)
{
	arp_timers(w);
	nd_timers(w);
}

void net_announce(struct worker *w)
{
	arp_announce(w);
}

void net_config_changed(struct worker *w)
{
	arp_config_changed(w);
	nd_config_changed(w);
}

void net_mbuf_trim(struct rte_mbuf *m, uint32_t len)
{
	struct rte_mbuf *seg = m, *rest;
	uint32_t left = len;

	while (left > rte_pktmbuf_data_len(seg)) {
		left -= rte_pktmbuf_data_len(seg);
		seg = seg->next;
	}
	seg->data_len = (uint16_t)left;
	rest = seg->next;
	seg->next = NULL;
	if (rest != NULL) {
		uint16_t nsegs = 0;

		for (struct rte_mbuf *s = m; s != NULL; s = s->next)
			nsegs++;
		m->nb_segs = nsegs;
		rte_pktmbuf_free(rest);
	}
	m->pkt_len = len;
}
