/*
 * icmp6.c - ICMPv6 (RFC 4443): input (checksum, echo, Packet Too Big for
 * TCP's path MTU per RFC 8201, Neighbor Discovery handed to nd.c, MLD to
 * mld.c, errors counted) and the error messages this host originates, with
 * the rules of §2.4 on when not to send one and a per-worker rate limit.
 */
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

#include "core/worker.h"
#include "net.h"
#include "net_private.h"
#include "result.h"
#include "tcp.h"

#define ICMP6_HDR_LEN 8 /* type, code, checksum, and the 4-byte field of each message */
#define ICMP6_MLD_QUERY 130
#define ICMP6_MLD_V1_DONE 132
#define ICMP6_MLD_V2_REPORT 143
/*
 * RFC 4443 §2.4 (f): errors are rate limited; a token bucket of
 * ICMP6_ERR_BURST at ICMP6_ERR_PER_S per worker (Linux: one per second
 * per destination, burst 50 over all). Expressed as a theoretical arrival
 * time (GCRA): no state but one timestamp.
 */
#define ICMP6_ERR_PER_S 100
#define ICMP6_ERR_BURST 10
#define ICMP6_ERR_INTERVAL_NS (1000000000ull / ICMP6_ERR_PER_S)

/* The checksum covers the pseudo-header and the whole message (RFC 4443 §2.3). */
static bool icmp6_cksum_ok(const struct rte_mbuf *m, const struct ip6_rx *rx)
{
	const struct rte_ipv6_hdr *ip = rte_pktmbuf_mtod(m, const struct rte_ipv6_hdr *);
	uint16_t raw;

	if (rte_raw_cksum_mbuf(m, rx->l4off, rx->l4len, &raw) != 0)
		return false;
	return net_cksum_fold((uint32_t)raw + ip6_phdr_sum(ip->src_addr, ip->dst_addr, rx->l4len,
	                                                   IP6_NH_ICMP6)) == 0xffff;
}

/* Finish an ICMPv6 message in m (data at the IPv6 header) and send it. */
static int icmp6_output(struct worker *w, struct rte_mbuf *m, uint16_t port)
{
	struct rte_ipv6_hdr *ip = rte_pktmbuf_mtod(m, struct rte_ipv6_hdr *);
	uint32_t len = rte_pktmbuf_pkt_len(m) - IP6_HDR_LEN;
	uint8_t *icmp = (uint8_t *)(ip + 1);
	uint16_t raw, sum;

	icmp[2] = icmp[3] = 0;
	/* The source may still be unset: net_ipv6_output picks it; the sum needs it now. */
	if (ip6_is_unspec(ip->src_addr)) {
		const struct net_port *p = &w->net->ports[port];
		const uint8_t *src = ip6_is_linklocal(ip->dst_addr) ? p->ll6 : p->addr6;

		if (nd_addr_state(w, port, src) != ND_ADDR_PREFERRED) {
			WCOUNT(w, ipv6_out_drop_nosrc);
			rte_pktmbuf_free(m);
			return PG_DECLINED;
		}
		memcpy(ip->src_addr, src, 16);
	}
	rte_raw_cksum_mbuf(m, IP6_HDR_LEN, len, &raw);
	sum = (uint16_t)~net_cksum_fold(
	    (uint32_t)raw + ip6_phdr_sum(ip->src_addr, ip->dst_addr, len, IP6_NH_ICMP6));
	memcpy(icmp + 2, &sum, 2);
	return net_ipv6_output(w, m, port);
}

/*
 * RFC 4443 §4.1-4.2: the reply carries the request's identifier, sequence
 * and data; it goes from the address the request was sent to. The
 * request's buffer is reused, its extension headers left behind.
 */
static void icmp6_echo(struct worker *w, struct rte_mbuf *m, const struct ip6_rx *rx)
{
	const struct rte_ipv6_hdr *req = rte_pktmbuf_mtod(m, const struct rte_ipv6_hdr *);
	uint8_t peer[16], self[16];
	struct rte_ipv6_hdr *ip;
	uint8_t *icmp;
	uint32_t tc = rte_be_to_cpu_32(req->vtc_flow) & RTE_IPV6_HDR_TC_MASK;
	int rc;

	memcpy(peer, req->src_addr, 16);
	memcpy(self, req->dst_addr, 16);
	/*
	 * Writing in place needs a buffer nobody else references, with the
	 * ICMPv6 header in its first segment; otherwise the message alone is
	 * copied (extension headers may run past the first segment).
	 */
	if (!RTE_MBUF_DIRECT(m) || rte_mbuf_refcnt_read(m) != 1 ||
	    rx->l4off + ICMP6_HDR_LEN > rte_pktmbuf_data_len(m)) {
		struct rte_mbuf *c = rte_pktmbuf_copy(m, w->pool, rx->l4off, UINT32_MAX);

		rte_pktmbuf_free(m);
		if (c == NULL) {
			WCOUNT(w, tx_drop_nombuf);
			return;
		}
		m = c;
	} else {
		rte_pktmbuf_adj(m, (uint16_t)rx->l4off);
	}
	ip = (struct rte_ipv6_hdr *)rte_pktmbuf_prepend(m, IP6_HDR_LEN);
	if (ip == NULL) {
		WCOUNT(w, ipv6_out_drop_headroom);
		rte_pktmbuf_free(m);
		return;
	}
	/* The request may have come in two segments; the header is in the first. */
	net_mbuf_reset_offload(m);
	ip->vtc_flow = rte_cpu_to_be_32(6u << 28 | tc);
	ip->payload_len = rte_cpu_to_be_16((uint16_t)rx->l4len);
	ip->proto = IP6_NH_ICMP6;
	ip->hop_limits = 0; /* the default */
	memcpy(ip->src_addr, self, 16);
	memcpy(ip->dst_addr, peer, 16);
	icmp = (uint8_t *)(ip + 1);
	icmp[0] = ICMP6_ECHO_REPLY;
	icmp[1] = 0;
	rc = icmp6_output(w, m, rx->port);
	if (rc == PG_OK || rc == PG_AGAIN)
		WCOUNT(w, icmp6_echo_reply_tx);
}

/*
 * RFC 4443 §3.2 Packet Too Big: the quote starts with the IPv6 header of a
 * packet we sent. RFC 8201 §4 (and §5.2 on checking the quote) is done by
 * TCP, which knows which connection and sequence numbers are genuine.
 */
static void icmp6_too_big(struct worker *w, const struct rte_mbuf *m, const struct ip6_rx *rx)
{
	uint8_t hdr[ICMP6_HDR_LEN], quote[IP6_HDR_LEN + 20];
	const uint8_t *h = rte_pktmbuf_read(m, rx->l4off, ICMP6_HDR_LEN, hdr);
	uint32_t qlen = rx->l4len - ICMP6_HDR_LEN;
	const uint8_t *q;
	uint32_t mtu;

	if (qlen > sizeof(quote))
		qlen = sizeof(quote);
	q = rte_pktmbuf_read(m, rx->l4off + ICMP6_HDR_LEN, qlen, quote);
	mtu = (uint32_t)h[4] << 24 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 8 | h[7];
	if (q != NULL && w->tcp != NULL)
		tcp_pmtu_update6(w, q, qlen, mtu);
}

void icmp6_input(struct worker *w, struct rte_mbuf *m, const struct ip6_rx *rx, bool steered)
{
	const struct rte_ipv6_hdr *ip = rte_pktmbuf_mtod(m, const struct rte_ipv6_hdr *);
	uint8_t tbuf[2];
	const uint8_t *t;

	if (rx->l4len < 4) {
		WCOUNT(w, icmp6_drop_short);
		goto drop;
	}
	if (!icmp6_cksum_ok(m, rx)) {
		WCOUNT(w, icmp6_drop_cksum);
		goto drop;
	}
	t = rte_pktmbuf_read(m, rx->l4off, 2, tbuf);
	if (t[0] >= ND_ROUTER_SOLICIT && t[0] <= ND_REDIRECT) {
		nd_input(w, m, rx, steered);
		return;
	}
	if ((t[0] >= ICMP6_MLD_QUERY && t[0] <= ICMP6_MLD_V1_DONE) || t[0] == ICMP6_MLD_V2_REPORT) {
		mld_input(w, m, rx, steered);
		return;
	}
	/* Past ND, the unspecified source (DAD's) has no business here (RFC 4861 §7.1.1). */
	if (ip6_is_unspec(ip->src_addr)) {
		WCOUNT(w, ipv6_drop_bad_src);
		goto drop;
	}
	switch (t[0]) {
	case ICMP6_ECHO_REQUEST:
		if (rx->l4len < ICMP6_HDR_LEN) {
			WCOUNT(w, icmp6_drop_short);
			goto drop;
		}
		/*
		 * §4.1 says a reply SHOULD be sent to a multicast echo; like
		 * broadcast pings for IPv4, it only amplifies: not answered.
		 */
		if (ip6_is_multicast(ip->dst_addr)) {
			WCOUNT(w, icmp6_drop_mcast_echo);
			goto drop;
		}
		WCOUNT(w, icmp6_echo_rx);
		icmp6_echo(w, m, rx);
		return;
	case ICMP6_PACKET_TOO_BIG:
		WCOUNT(w, icmp6_error_rx);
		if (rx->l4len >= ICMP6_HDR_LEN + IP6_HDR_LEN)
			icmp6_too_big(w, m, rx);
		goto drop;
	default:
		/*
		 * §2.4 (a)/(b): errors of other types concern connections we
		 * would only abort on a hard error (RFC 5461: TCP keeps going);
		 * unknown informational messages MUST be silently discarded.
		 */
		if (t[0] < 128)
			WCOUNT(w, icmp6_error_rx);
		else
			WCOUNT(w, icmp6_drop_type);
		goto drop;
	}
drop:
	rte_pktmbuf_free(m);
}

/* §2.4 (e.1, e.2): never an error about an ICMPv6 error or a Redirect. */
static bool icmp6_about_error(const struct rte_mbuf *m)
{
	uint8_t proto, tbuf;
	uint32_t l4off;
	const uint8_t *t;

	if (ip6_skip_exthdrs(m, 0, &proto, &l4off) != PG_OK || proto != IP6_NH_ICMP6)
		return false;
	t = rte_pktmbuf_read(m, l4off, 1, &tbuf);
	return t != NULL && (t[0] < 128 || t[0] == ND_REDIRECT);
}

/* §2.4 (f): one more error now, or over the rate. */
static bool icmp6_rate_ok(struct worker *w)
{
	uint64_t tat = w->icmp6_err_tat_ns > w->now_ns ? w->icmp6_err_tat_ns : w->now_ns;

	if (tat - w->now_ns > (ICMP6_ERR_BURST - 1) * ICMP6_ERR_INTERVAL_NS)
		return false;
	w->icmp6_err_tat_ns = tat + ICMP6_ERR_INTERVAL_NS;
	return true;
}

void icmp6_send_error(struct worker *w, const struct rte_mbuf *m, const struct ip6_rx *rx,
                      uint8_t type, uint8_t code, uint32_t pointer, bool even_multicast)
{
	const struct rte_ipv6_hdr *bad = rte_pktmbuf_mtod(m, const struct rte_ipv6_hdr *);
	/* §2.4 (c): as much of the packet as fits the minimum MTU */
	uint32_t qlen = rte_pktmbuf_pkt_len(m);
	uint32_t room = RTE_IPV6_MIN_MTU - IP6_HDR_LEN - ICMP6_HDR_LEN;
	bool group = ip6_is_multicast(bad->dst_addr) || rx->cast != NET_L2_UNICAST;
	struct rte_ipv6_hdr *ip;
	struct rte_mbuf *e;
	const void *quote;
	uint8_t *icmp;
	int rc;

	/*
	 * §2.4 (e): not to a packet sent to a group (e.3) or by link-layer
	 * multicast or broadcast (e.4), Packet Too Big and option-type-10
	 * Parameter Problems excepted; not to a source that does not name a
	 * single node (e.5); not about an error or a redirect (e.1, e.2).
	 */
	if ((group &&
	     !(type == ICMP6_PACKET_TOO_BIG ||
	       (type == ICMP6_PARAM_PROB && code == ICMP6_PARAM_PROB_OPTION && even_multicast))) ||
	    ip6_is_unspec(bad->src_addr) || ip6_is_multicast(bad->src_addr) ||
	    icmp6_about_error(m)) {
		WCOUNT(w, icmp6_error_suppressed);
		return;
	}
	if (!icmp6_rate_ok(w)) {
		WCOUNT(w, icmp6_error_limited);
		return;
	}
	if (qlen > room)
		qlen = room;
	e = rte_pktmbuf_alloc(w->pool);
	if (e == NULL) {
		WCOUNT(w, tx_drop_nombuf);
		return;
	}
	ip = (struct rte_ipv6_hdr *)rte_pktmbuf_append(
	    e, (uint16_t)(IP6_HDR_LEN + ICMP6_HDR_LEN + qlen));
	if (ip == NULL) {
		WCOUNT(w, tx_drop_nombuf);
		rte_pktmbuf_free(e);
		return;
	}
	memset(ip, 0, IP6_HDR_LEN + ICMP6_HDR_LEN);
	ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
	ip->payload_len = rte_cpu_to_be_16((uint16_t)(ICMP6_HDR_LEN + qlen));
	ip->proto = IP6_NH_ICMP6;
	/* From the address the packet was sent to when that is ours; else chosen on output. */
	if (!ip6_is_multicast(bad->dst_addr))
		memcpy(ip->src_addr, bad->dst_addr, 16);
	memcpy(ip->dst_addr, bad->src_addr, 16);
	icmp = (uint8_t *)(ip + 1);
	icmp[0] = type;
	icmp[1] = code;
	pointer = rte_cpu_to_be_32(pointer); /* Parameter Problem: the offset (§3.4) */
	memcpy(icmp + 4, &pointer, 4);
	/* rte_pktmbuf_read copies only what is not contiguous: copy the rest. */
	quote = rte_pktmbuf_read(m, 0, qlen, icmp + ICMP6_HDR_LEN);
	if (quote != icmp + ICMP6_HDR_LEN)
		memcpy(icmp + ICMP6_HDR_LEN, quote, qlen);
	rc = icmp6_output(w, e, rx->port);
	if (rc == PG_OK || rc == PG_AGAIN)
		WCOUNT(w, icmp6_error_tx);
}
