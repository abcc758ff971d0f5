/*
 * ipv6.c - IPv6 input (RFC 8200: header validation, the extension header
 * chain, local delivery to ICMPv6 and TCP) and output (route, source
 * address, hand to Neighbor Discovery). Postern is a host, not a router:
 * packets not addressed to the receiving port are dropped, never
 * forwarded, and fragments are dropped since nothing here reassembles
 * (atomic fragments excepted, RFC 6946).
 */
#include <assert.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

#include "core/worker.h"
#include "net.h"
#include "net_private.h"
#include "result.h"
#include "tcp_private.h"

const uint8_t ip6_all_nodes[16] = {0xff, 0x02, [15] = 0x01};

/*
 * RFC 8504 §5.3 lets a node bound what it walks: at most this many
 * extension headers before the upper layer, and no run of padding longer
 * than 7 bytes (one option of alignment never needs more; longer runs are
 * a covert channel or an evasion, RFC 4942 §2.1.9.5).
 */
#define IP6_MAX_EXTHDRS 8
#define IP6_MAX_PAD_RUN 7

#define IP6_OPT_PAD1 0
#define IP6_OPT_PADN 1

void net_port_ipv6_init(struct net_port *p)
{
	const uint8_t *mac = p->mac.addr_bytes;

	memset(p->ll6, 0, sizeof(p->ll6));
	if (!p->has_ip6)
		return;
	/*
	 * RFC 4291 §2.5.6 and Appendix A: fe80::/64 with the modified EUI-64
	 * of the MAC (universal/local bit inverted, ff:fe in the middle), as
	 * RFC 4862 §5.3 forms a link-local address.
	 */
	p->ll6[0] = 0xfe;
	p->ll6[1] = 0x80;
	p->ll6[8] = mac[0] ^ 0x02;
	p->ll6[9] = mac[1];
	p->ll6[10] = mac[2];
	p->ll6[11] = 0xff;
	p->ll6[12] = 0xfe;
	p->ll6[13] = mac[3];
	p->ll6[14] = mac[4];
	p->ll6[15] = mac[5];
}

/* How a walk of the header chain ended. */
enum ip6_walk_end {
	IP6_WALK_UPPER,     /* w.nh at w.off is the upper layer (or 59) */
	IP6_WALK_DROP,      /* silently, counter in w.ctr */
	IP6_WALK_PARAMPROB, /* drop with Parameter Problem w.code at w.pointer */
};

struct ip6_walk {
	uint8_t nh;        /* next header value found last */
	uint32_t off;      /* offset of the header it names */
	uint32_t nh_field; /* offset of the Next Header field naming it */
	enum pg_counter ctr;
	uint8_t code;
	uint32_t pointer;
	bool even_multicast; /* RFC 4443 §2.4 (e.3): option type high bits 10 */
};

/*
 * The options of a Hop-by-Hop or Destination Options header (RFC 8200
 * §4.2): `h` is the whole header of `len` bytes at offset `off`. None are
 * implemented beyond padding, so every other option is unrecognized and
 * its type's two high bits decide.
 */
static enum ip6_walk_end ipv6_options(const uint8_t *h, uint32_t len, uint32_t off,
                                      struct ip6_walk *wk)
{
	uint32_t i = 2, pad_run = 0;

	while (i < len) {
		uint8_t type = h[i], olen;

		if (type == IP6_OPT_PAD1) {
			i++;
			if (++pad_run > IP6_MAX_PAD_RUN)
				goto bad_padding;
			continue;
		}
		if (i + 2 > len || (olen = h[i + 1]) > len - i - 2) {
			wk->ctr = CTR_ipv6_drop_exthdr; /* an option overruns its header */
			return IP6_WALK_DROP;
		}
		if (type == IP6_OPT_PADN) {
			pad_run += 2u + olen;
			if (pad_run > IP6_MAX_PAD_RUN)
				goto bad_padding;
			/* RFC 4942 §2.1.9.5: PadN carries zeros, nothing else. */
			for (uint8_t k = 0; k < olen; k++)
				if (h[i + 2 + k] != 0)
					goto bad_padding;
			i += 2u + olen;
			continue;
		}
		pad_run = 0;
		switch (type >> 6) {
		case 0: /* 00: skip over this option */
			break;
		case 1: /* 01: discard the packet */
			wk->ctr = CTR_ipv6_drop_option;
			return IP6_WALK_DROP;
		case 2: /* 10: discard, Parameter Problem code 2 even to multicast */
		case 3: /* 11: discard, Parameter Problem code 2 unless to multicast */
			wk->ctr = CTR_ipv6_drop_option;
			wk->code = ICMP6_PARAM_PROB_OPTION;
			wk->pointer = off + i;
			wk->even_multicast = (type >> 6) == 2;
			return IP6_WALK_PARAMPROB;
		}
		i += 2u + olen;
	}
	return IP6_WALK_UPPER;

bad_padding:
	wk->ctr = CTR_ipv6_drop_option;
	return IP6_WALK_DROP;
}

/*
 * Walk the extension headers from the fixed header to the upper layer
 * (RFC 8200 §4). m is trimmed to the datagram; reads are segment-safe.
 */
static enum ip6_walk_end ipv6_walk(const struct rte_mbuf *m, const struct rte_ipv6_hdr *ip,
                                   struct ip6_walk *wk)
{
	uint32_t total = rte_pktmbuf_pkt_len(m);
	uint8_t buf[2048]; /* the longest extension header: (255 + 1) * 8 bytes */

	wk->nh = ip->proto;
	wk->off = IP6_HDR_LEN;
	wk->nh_field = offsetof(struct rte_ipv6_hdr, proto);
	for (unsigned n = 0;; n++) {
		const uint8_t *h;
		uint32_t len;
		enum ip6_walk_end end;

		switch (wk->nh) {
		case IP6_NH_HOPOPTS:
		case IP6_NH_DSTOPTS:
		case IP6_NH_ROUTING:
		case IP6_NH_FRAGMENT:
			break;
		default:
			return IP6_WALK_UPPER;
		}
		if (n == IP6_MAX_EXTHDRS) {
			wk->ctr = CTR_ipv6_drop_exthdr;
			return IP6_WALK_DROP;
		}
		/*
		 * RFC 8200 §4.1: Hop-by-Hop Options only right after the
		 * IPv6 header; elsewhere its value is an unrecognized Next
		 * Header (Parameter Problem code 1, as Linux answers).
		 */
		if (wk->nh == IP6_NH_HOPOPTS && wk->off != IP6_HDR_LEN) {
			wk->ctr = CTR_ipv6_drop_exthdr;
			wk->code = ICMP6_PARAM_PROB_NH;
			wk->pointer = wk->nh_field;
			return IP6_WALK_PARAMPROB;
		}
		/* Every extension header starts with Next Header and its length. */
		if (total < wk->off + 8) {
			wk->ctr = CTR_ipv6_drop_exthdr;
			return IP6_WALK_DROP;
		}
		h = rte_pktmbuf_read(m, wk->off, 2, buf);
		len = wk->nh == IP6_NH_FRAGMENT ? 8 : ((uint32_t)h[1] + 1) * 8;
		if (total < wk->off + len) {
			wk->ctr = CTR_ipv6_drop_exthdr;
			return IP6_WALK_DROP;
		}
		h = rte_pktmbuf_read(m, wk->off, len, buf);
		switch (wk->nh) {
		case IP6_NH_HOPOPTS:
		case IP6_NH_DSTOPTS:
			end = ipv6_options(h, len, wk->off, wk);
			if (end != IP6_WALK_UPPER)
				return end;
			break;
		case IP6_NH_ROUTING:
			/*
			 * RFC 8200 §4.4: with Segments Left 0 the header is
			 * ignored; otherwise this node would have to act on a
			 * routing type, and it implements none (type 0 is
			 * deprecated and MUST be treated as unrecognized, RFC
			 * 5095 §3): Parameter Problem code 0 at the type.
			 */
			if (h[3] != 0) {
				wk->ctr = CTR_ipv6_drop_routing;
				wk->code = ICMP6_PARAM_PROB_HEADER;
				wk->pointer = wk->off + 2;
				return IP6_WALK_PARAMPROB;
			}
			break;
		case IP6_NH_FRAGMENT: {
			uint16_t frag = (uint16_t)(h[2] << 8 | h[3]);

			/*
			 * RFC 6946 §4: an atomic fragment (offset 0, M 0) is
			 * processed in isolation, as if unfragmented. Real
			 * fragments are dropped: no reassembly by design
			 * (RFC 8200 §4.5 makes it a host's duty; Postern's
			 * TCP never provokes fragmentation, and its ICMPv6 is
			 * small).
			 */
			if ((frag & 0xfff9) != 0) {
				wk->ctr = CTR_ipv6_drop_fragment;
				return IP6_WALK_DROP;
			}
			break;
		}
		}
		wk->nh_field = wk->off;
		wk->nh = h[0];
		wk->off += len;
	}
}

int ip6_skip_exthdrs(const struct rte_mbuf *m, uint32_t off, uint8_t *proto, uint32_t *l4off)
{
	uint8_t buf[4];
	const uint8_t *h = rte_pktmbuf_read(m, off + offsetof(struct rte_ipv6_hdr, proto), 1, buf);
	uint8_t nh;

	if (h == NULL)
		return PG_DECLINED;
	nh = h[0];
	off += IP6_HDR_LEN;
	for (unsigned n = 0;; n++) {
		if (nh != IP6_NH_HOPOPTS && nh != IP6_NH_DSTOPTS && nh != IP6_NH_ROUTING &&
		    nh != IP6_NH_FRAGMENT) {
			*proto = nh;
			*l4off = off;
			return PG_OK;
		}
		if (n == IP6_MAX_EXTHDRS || (h = rte_pktmbuf_read(m, off, 4, buf)) == NULL)
			return PG_DECLINED;
		if (nh == IP6_NH_FRAGMENT) {
			if (((h[2] << 8 | h[3]) & 0xfff9) != 0)
				return PG_DECLINED; /* a real fragment: no whole upper layer */
			off += 8;
		} else {
			off += ((uint32_t)h[1] + 1) * 8;
		}
		nh = h[0];
	}
}

/*
 * A source no packet may carry here: multicast (RFC 4291 §2.7), loopback
 * (§2.5.3), IPv4-mapped (RFC 4942 §2.2), or one of our own addresses in
 * use (a spoof or a loop). An address of ours still in DAD is another
 * matter: the node defending it advertises from it (RFC 4861 §7.2.4), and
 * that advertisement is what DAD waits for (RFC 4862 §5.4.4). The
 * unspecified source is judged later: only DAD's solicitations use it
 * (RFC 4861 §7.1.1).
 */
static bool ipv6_bad_src(const struct worker *w, const uint8_t src[16])
{
	int own = net_port_of_addr6(w->net, src);

	return ip6_is_multicast(src) || ip6_is_loopback(src) || ip6_is_v4mapped(src) ||
	       (own >= 0 && nd_addr_state(w, (uint16_t)own, src) == ND_ADDR_PREFERRED);
}

/* TCP over IPv6: both addresses global (no zones in a TCP tuple), then tcp_input. */
static void ipv6_tcp(struct worker *w, struct rte_mbuf *m, const struct rte_ipv6_hdr *ip,
                     const struct ip6_rx *rx)
{
	struct tcp_l3 l3;

	/*
	 * A link-local address is only unique with its zone (RFC 4007 §6),
	 * which a TCP tuple does not carry; an SMTP relay has no use for
	 * TCP on link-local addresses, so it is not served.
	 */
	if (ip6_is_linklocal(ip->src_addr) || ip6_is_linklocal(ip->dst_addr)) {
		WCOUNT(w, ipv6_drop_scope);
		goto drop;
	}
	if (ip6_is_multicast(ip->dst_addr)) {
		WCOUNT(w, ipv6_drop_not_for_us);
		goto drop;
	}
	l3.src = pg_addr_v6(ip->src_addr);
	l3.dst = pg_addr_v6(ip->dst_addr);
	l3.l4off = rx->l4off;
	tcp_input(w, m, &l3);
	return;
drop:
	rte_pktmbuf_free(m);
}

/* m starts at the IPv6 header. */
void ipv6_input(struct worker *w, struct rte_mbuf *m, uint16_t port, enum net_l2_cast cast,
                bool steered)
{
	const struct net_config *nc = w->net;
	const struct net_port *p = &nc->ports[port];
	struct rte_ipv6_hdr *ip;
	struct ip6_walk wk = {0};
	struct ip6_rx rx = {.port = port, .cast = cast};
	uint32_t plen;

	if (!steered)
		WCOUNT(w, ipv6_rx);
	if (rte_pktmbuf_data_len(m) < sizeof(*ip)) {
		WCOUNT(w, ipv6_drop_short);
		goto drop;
	}
	ip = rte_pktmbuf_mtod(m, struct rte_ipv6_hdr *);
	if ((rte_be_to_cpu_32(ip->vtc_flow) >> 28) != 6) {
		WCOUNT(w, ipv6_drop_version);
		goto drop;
	}
	/*
	 * RFC 8200 §3: Payload Length counts everything after the fixed
	 * header. Zero means a jumbogram (RFC 2675), which no link of ours
	 * can carry: dropped with the malformed lengths.
	 */
	plen = rte_be_to_cpu_16(ip->payload_len);
	if (plen == 0 || IP6_HDR_LEN + plen > rte_pktmbuf_pkt_len(m)) {
		WCOUNT(w, ipv6_drop_len);
		goto drop;
	}
	if (IP6_HDR_LEN + plen < rte_pktmbuf_pkt_len(m))
		net_mbuf_trim(m, IP6_HDR_LEN + plen);

	if (ipv6_bad_src(w, ip->src_addr)) {
		WCOUNT(w, ipv6_drop_bad_src);
		goto drop;
	}
	/* IPv6 has no broadcast (RFC 4291 §2): such a frame is not for an IPv6 node. */
	if (cast == NET_L2_BROADCAST) {
		WCOUNT(w, ipv6_drop_link_bcast);
		goto drop;
	}
	/*
	 * Strong host model as for IPv4: the destination is an address of the
	 * receiving port or a group it listens to. A unicast address still in
	 * DAD, or found duplicate, receives nothing (RFC 4862 §5.4).
	 */
	if (ip6_is_multicast(ip->dst_addr)) {
		if (!ip6_port_group(p, ip->dst_addr)) {
			WCOUNT(w, ipv6_drop_not_for_us);
			goto drop;
		}
	} else if (!p->has_ip6 ||
	           (!ip6_eq(ip->dst_addr, p->addr6) && !ip6_eq(ip->dst_addr, p->ll6))) {
		WCOUNT(w, ipv6_drop_not_for_us);
		goto drop;
	} else if (nd_addr_state(w, port, ip->dst_addr) != ND_ADDR_PREFERRED) {
		WCOUNT(w, ipv6_drop_tentative);
		goto drop;
	}

	switch (ipv6_walk(m, ip, &wk)) {
	case IP6_WALK_UPPER:
		break;
	case IP6_WALK_DROP:
		w->ctr[wk.ctr]++;
		goto drop;
	case IP6_WALK_PARAMPROB:
		w->ctr[wk.ctr]++;
		icmp6_send_error(w, m, &rx, ICMP6_PARAM_PROB, wk.code, wk.pointer,
		                 wk.even_multicast);
		goto drop;
	}
	/* Steered to its owner (TCP), not a copy of ND: received here, for the counts. */
	if (steered && wk.nh != IP6_NH_ICMP6)
		WCOUNT(w, ipv6_rx);
	rx.proto = wk.nh;
	rx.l4off = wk.off;
	rx.l4len = rte_pktmbuf_pkt_len(m) - wk.off;
	/* Only DAD sends from the unspecified address, and only ND messages. */
	if (ip6_is_unspec(ip->src_addr) && wk.nh != IP6_NH_ICMP6) {
		WCOUNT(w, ipv6_drop_bad_src);
		goto drop;
	}

	switch (wk.nh) {
	case IP6_NH_ICMP6:
		icmp6_input(w, m, &rx, steered);
		return;
	case IP6_NH_TCP:
		if (w->tcp != NULL) {
			ipv6_tcp(w, m, ip, &rx);
			return;
		}
		break;
	case IP6_NH_NONE:
		/* RFC 8200 §4.7: nothing follows; the packet is ignored. */
		WCOUNT(w, ipv6_drop_no_next);
		goto drop;
	default:
		break;
	}
	/*
	 * RFC 8200 §4: an unrecognized Next Header value is answered with a
	 * Parameter Problem, code 1, pointing at the field that named it. UDP
	 * is one of them here, as for a node without UDP.
	 */
	WCOUNT(w, ipv6_drop_proto);
	icmp6_send_error(w, m, &rx, ICMP6_PARAM_PROB, ICMP6_PARAM_PROB_NH, wk.nh_field, false);
drop:
	rte_pktmbuf_free(m);
}

/* The address of port p to send from toward dst, or NULL if none may be used now. */
static const uint8_t *ipv6_port_source(struct worker *w, uint16_t port, const uint8_t dst[16])
{
	const struct net_port *p = &w->net->ports[port];
	/* RFC 6724 §5 rule 2: the scope of the source matches the destination's. */
	const uint8_t *src = ip6_is_linklocal(dst) || ip6_is_multicast(dst) ? p->ll6 : p->addr6;

	return nd_addr_state(w, port, src) == ND_ADDR_PREFERRED ? src : NULL;
}

int net_ipv6_source(struct worker *w, const uint8_t dst[16], uint8_t src[16])
{
	const struct net_route6 *rt;
	const uint8_t *s;

	if (w->net == NULL || ip6_is_linklocal(dst) || ip6_is_multicast(dst) ||
	    net_route6_lookup(w->net, dst, &rt) != PG_OK || !w->net->ports[rt->port].has_ip6)
		return PG_DECLINED;
	s = ipv6_port_source(w, rt->port, dst);
	if (s == NULL)
		return PG_DECLINED;
	memcpy(src, s, 16);
	return PG_OK;
}

int net_ipv6_output(struct worker *w, struct rte_mbuf *m, uint16_t port)
{
	const struct net_config *nc = w->net;
	const struct net_route6 *rt;
	const struct net_port *p;
	const uint8_t *nexthop;
	struct rte_ipv6_hdr *ip;
	struct rte_ether_hdr *eh;

	/* Our own layers build the header: a short one is a bug, not input. */
	assert(rte_pktmbuf_data_len(m) >= sizeof(*ip));
	ip = rte_pktmbuf_mtod(m, struct rte_ipv6_hdr *);
	assert((uint32_t)rte_be_to_cpu_16(ip->payload_len) + IP6_HDR_LEN == rte_pktmbuf_pkt_len(m));

	if (ip6_is_multicast(ip->dst_addr) || ip6_is_linklocal(ip->dst_addr)) {
		/* On-link scope: out of the port the exchange belongs to. */
		if (port >= nc->nports) {
			WCOUNT(w, route6_drop_noroute);
			rte_pktmbuf_free(m);
			return PG_DECLINED;
		}
		nexthop = ip->dst_addr;
	} else {
		if (net_route6_lookup(nc, ip->dst_addr, &rt) != PG_OK) {
			WCOUNT(w, route6_drop_noroute);
			rte_pktmbuf_free(m);
			return PG_DECLINED;
		}
		port = rt->port;
		nexthop = ip6_is_unspec(rt->gateway) ? ip->dst_addr : rt->gateway;
	}
	p = &nc->ports[port];
	if (!p->has_ip6) {
		WCOUNT(w, route6_drop_noroute);
		rte_pktmbuf_free(m);
		return PG_DECLINED;
	}
	/* We never fragment (RFC 8200 §5 lets a source; TCP sizes to the MTU instead). */
	if (rte_pktmbuf_pkt_len(m) > p->mtu) {
		WCOUNT(w, ipv6_out_drop_mtu);
		rte_pktmbuf_free(m);
		return PG_ERROR;
	}
	if (ip6_is_unspec(ip->src_addr)) {
		const uint8_t *src = ipv6_port_source(w, port, ip->dst_addr);

		if (src == NULL) {
			WCOUNT(w, ipv6_out_drop_nosrc);
			rte_pktmbuf_free(m);
			return PG_DECLINED;
		}
		memcpy(ip->src_addr, src, 16);
	}
	if (ip->hop_limits == 0)
		ip->hop_limits = IP6_DEFAULT_HOP_LIMIT;

	eh = (struct rte_ether_hdr *)rte_pktmbuf_prepend(m, sizeof(*eh));
	if (eh == NULL) {
		WCOUNT(w, ipv6_out_drop_headroom);
		rte_pktmbuf_free(m);
		return PG_ERROR;
	}
	net_mbuf_reset_offload(m);
	eh->src_addr = p->mac;
	eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6);
	if (ip6_is_multicast(nexthop)) {
		/* RFC 2464 §7: multicast needs no neighbour. */
		ip6_mcast_mac(nexthop, &eh->dst_addr);
		worker_tx(w, port, m);
		return PG_OK;
	}
	return nd_output(w, port, nexthop, m);
}
