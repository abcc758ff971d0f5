/*
 * steer.c - which worker owns a packet. TCP and UDP belong to the worker
 * chosen by a symmetric Toeplitz hash of the 4-tuple, so both directions of
 * a connection land on the same core; the same key programs NIC RSS where
 * the device allows it. Everything else stays on the receiving worker.
 */
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_thash.h>
#include <rte_udp.h>

#include "core/worker.h"
#include "net.h"

/*
 * The Toeplitz key 0x6d5a repeated (Woo and Park, "Scalable TCP Session
 * Monitoring with Symmetric Receive-side Scaling", 2012). A key with a
 * 16-bit period makes the hash depend only on bit positions modulo 16, and
 * the swapped tuple moves every bit by 32 (addresses) or 16 (ports), so
 * hash(a, b, p, q) == hash(b, a, q, p).
 */
static const uint8_t steer_rss_key[40] = {
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
    0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
};

uint32_t steer_hash4(uint32_t saddr, uint32_t daddr, uint16_t sport, uint16_t dport)
{
	union rte_thash_tuple tuple;

	/* rte_softrss takes the tuple in host order, as the NIC sees it on the wire. */
	tuple.v4.src_addr = rte_be_to_cpu_32(saddr);
	tuple.v4.dst_addr = rte_be_to_cpu_32(daddr);
	tuple.v4.sport = rte_be_to_cpu_16(sport);
	tuple.v4.dport = rte_be_to_cpu_16(dport);
	return rte_softrss((uint32_t *)&tuple, RTE_THASH_V4_L4_LEN, steer_rss_key);
}

/*
 * m starts at the Ethernet header. Anything we cannot parse fully is not
 * a connection and stays where it arrived; the protocol layer will judge it.
 */
uint32_t steer_owner(const struct worker *w, const struct rte_mbuf *m)
{
	const struct rte_ether_hdr *eh;
	const struct rte_ipv4_hdr *ip;
	const uint8_t *l4;
	uint32_t len = rte_pktmbuf_data_len(m);
	uint32_t ihl, l4min;
	uint16_t sport, dport;

	if (w->nworkers <= 1)
		return w->id;
	if (len < sizeof(*eh) + sizeof(*ip))
		return w->id;
	eh = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	if (eh->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4))
		return w->id;
	ip = (const struct rte_ipv4_hdr *)(eh + 1);
	if ((ip->version_ihl >> 4) != 4)
		return w->id;
	ihl = (uint32_t)(ip->version_ihl & 0x0f) * 4;
	if (ihl < sizeof(*ip))
		return w->id;
	/* A fragment has no (or not only its own) L4 header: not steerable. */
	if ((rte_be_to_cpu_16(ip->fragment_offset) &
	     (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) != 0)
		return w->id;
	if (ip->next_proto_id == IPPROTO_TCP)
		l4min = sizeof(struct rte_tcp_hdr);
	else if (ip->next_proto_id == IPPROTO_UDP)
		l4min = sizeof(struct rte_udp_hdr);
	else
		return w->id;
	if (len < sizeof(*eh) + ihl + l4min)
		return w->id;
	/* TCP and UDP both start with source port, destination port. */
	l4 = (const uint8_t *)ip + ihl;
	sport = *(const unaligned_uint16_t *)l4;
	dport = *(const unaligned_uint16_t *)(l4 + 2);
	return steer_hash4(ip->src_addr, ip->dst_addr, sport, dport) % w->nworkers;
}
