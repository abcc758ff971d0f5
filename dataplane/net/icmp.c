/*
 * icmp.c - ICMP input: answer echo requests (RFC 792, RFC 1122 §3.2.2.6),
 * drop everything else for now. The reply reuses the request's buffer and
 * goes out through the normal routed output path.
 */
#include <rte_byteorder.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

#include "core/worker.h"
#include "net.h"
#include "net_private.h"
#include "result.h"
#include "tcp.h"

#define ICMP_REPLY_TTL 64
#define ICMP_DEST_UNREACH 3
#define ICMP_FRAG_NEEDED 4 /* code: fragmentation needed and DF set (RFC 1191) */

/*
 * m starts at the IPv4 header, validated by ipv4_input and trimmed to the
 * total length: its destination is our port's unicast address and it did
 * not come by link-layer broadcast. That is what keeps us from answering
 * broadcast pings (RFC 1122 §3.2.2.6 allows silence; smurf amplification
 * makes it the only sane choice).
 */
void icmp_input(struct worker *w, struct rte_mbuf *m, uint16_t port)
{
	const struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod(m, const struct rte_ipv4_hdr *);
	struct rte_ipv4_hdr *rip;
	struct rte_icmp_hdr *icmp;
	uint32_t hlen = rte_ipv4_hdr_len(ip);
	uint32_t icmp_len = rte_pktmbuf_pkt_len(m) - hlen;
	uint32_t peer = ip->src_addr, self = ip->dst_addr;
	uint8_t tos = ip->type_of_service;
	uint16_t sum;
	int rc;

	(void)port;
	if (icmp_len < sizeof(*icmp) || hlen + sizeof(*icmp) > rte_pktmbuf_data_len(m)) {
		WCOUNT(w, icmp_drop_short);
		goto drop;
	}
	/* RFC 792: the checksum covers the whole ICMP message; valid sums to 0xffff. */
	if (rte_raw_cksum_mbuf(m, hlen, icmp_len, &sum) != 0 || sum != 0xffff) {
		WCOUNT(w, icmp_drop_cksum);
		goto drop;
	}
	icmp = rte_pktmbuf_mtod_offset(m, struct rte_icmp_hdr *, hlen);
	if (icmp->icmp_type == ICMP_DEST_UNREACH && icmp->icmp_code == ICMP_FRAG_NEEDED &&
	    w->tcp != NULL) {
		/*
		 * RFC 1191 §4: the next-hop MTU sits in the low 16 bits of the
		 * second word; the quoted datagram follows. TCP checks the
		 * quote against its connection before believing it.
		 */
		uint8_t quote[60 + 8];
		uint32_t qlen = icmp_len - 8 < sizeof(quote) ? icmp_len - 8 : sizeof(quote);
		const uint8_t *q = icmp_len > 8 ? rte_pktmbuf_read(m, hlen + 8, qlen, quote) : NULL;

		if (q != NULL)
			tcp_pmtu_update(w, q, qlen, rte_be_to_cpu_16(icmp->icmp_seq_nb));
		goto drop;
	}
	if (icmp->icmp_type != RTE_IP_ICMP_ECHO_REQUEST) {
		WCOUNT(w, icmp_drop_type);
		goto drop;
	}
	WCOUNT(w, icmp_echo_rx);

	/* Writing in place needs a buffer nobody else references. */
	if (!RTE_MBUF_DIRECT(m) || rte_mbuf_refcnt_read(m) != 1) {
		struct rte_mbuf *c = rte_pktmbuf_copy(m, w->pool, 0, UINT32_MAX);

		rte_pktmbuf_free(m);
		if (c == NULL) {
			WCOUNT(w, tx_drop_nombuf);
			return;
		}
		m = c;
	}

	/*
	 * RFC 1122 §3.2.2.6: the reply carries the same identifier, sequence
	 * number and data; only type and checksum change. Options of the
	 * request (record route, timestamp: a SHOULD) are not echoed.
	 */
	rte_pktmbuf_adj(m, (uint16_t)hlen);
	icmp = rte_pktmbuf_mtod(m, struct rte_icmp_hdr *);
	icmp->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
	icmp->icmp_code = 0;
	icmp->icmp_cksum = 0;
	rte_raw_cksum_mbuf(m, 0, icmp_len, &sum);
	icmp->icmp_cksum = (uint16_t)~sum;

	rip = (struct rte_ipv4_hdr *)rte_pktmbuf_prepend(m, sizeof(*rip));
	if (rip == NULL) {
		WCOUNT(w, ipv4_out_drop_headroom);
		goto drop;
	}
	net_mbuf_reset_offload(m);
	rip->version_ihl = RTE_IPV4_VHL_DEF;
	rip->type_of_service = tos;
	rip->total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*rip) + icmp_len));
	/* Atomic datagram (DF, never fragmented): the ID may be 0 (RFC 6864 §4.1). */
	rip->packet_id = 0;
	rip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	rip->time_to_live = ICMP_REPLY_TTL;
	rip->next_proto_id = IPPROTO_ICMP;
	rip->hdr_checksum = 0;
	rip->src_addr = self;
	rip->dst_addr = peer;
	rc = net_ipv4_output(w, m);
	if (rc == PG_OK || rc == PG_AGAIN)
		WCOUNT(w, icmp_echo_reply_tx);
	return;

drop:
	rte_pktmbuf_free(m);
}
