/*
 * steer.c - which worker owns a packet. TCP and UDP, over IPv4 or IPv6,
 * belong to the worker chosen by a symmetric Toeplitz hash of the 4-tuple,
 * so both directions of a connection land on the same core; the same key
 * programs NIC RSS where the device allows it. Everything else stays on
 * the receiving worker.
 */
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_thash.h>
#include <rte_udp.h>

#include "core/worker.h"
#include "net.h"
#include "net_private.h"
#include "result.h"

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

uint32_t steer_hash6(const uint8_t saddr[16], const uint8_t daddr[16], uint16_t sport,
                     uint16_t dport)
{
	union rte_thash_tuple tuple;

	/*
	 * The same key is symmetric here too: swapping the addresses moves
	 * every bit by 128, swapping the ports by 16, both multiples of the
	 * key's 16-bit period. rte_softrss wants 32-bit words in host order.
	 */
	for (unsigned i = 0; i < 4; i++) {
		uint32_t s, d;

		memcpy(&s, saddr + 4 * i, 4);
		memcpy(&d, daddr + 4 * i, 4);
		((uint32_t *)tuple.v6.src_addr)[i] = rte_be_to_cpu_32(s);
		((uint32_t *)tuple.v6.dst_addr)[i] = rte_be_to_cpu_32(d);
	}
	tuple.v6.sport = rte_be_to_cpu_16(sport);
	tuple.v6.dport = rte_be_to_cpu_16(dport);
	return rte_softrss((uint32_t *)&tuple, RTE_THASH_V6_L4_LEN, steer_rss_key);
}

uint32_t steer_hash_addr(const struct pg_addr *saddr, const struct pg_addr *daddr, uint16_t sport,
                         uint16_t dport)
{
	if (pg_addr_is_v6(saddr))
		return steer_hash6(saddr->v6, daddr->v6, sport, dport);
	return steer_hash4(saddr->v4, daddr->v4, sport, dport);
}

/* IPv6 TCP/UDP: the owner by the 4-tuple, past any extension headers. */
static uint32_t steer_owner6(const struct worker *w, const struct rte_mbuf *m)
{
	const struct rte_ipv6_hdr *ip;
	uint8_t proto, buf[4];
	uint32_t l4off;
	uint16_t sport, dport;
	const uint8_t *l4;

	if (rte_pktmbuf_data_len(m) < sizeof(struct rte_ether_hdr) + sizeof(*ip))
		return w->id;
	ip = rte_pktmbuf_mtod_offset(m, const struct rte_ipv6_hdr *, sizeof(struct rte_ether_hdr));
	if ((rte_be_to_cpu_32(ip->vtc_flow) >> 28) != 6 ||
	    ip6_skip_exthdrs(m, sizeof(struct rte_ether_hdr), &proto, &l4off) != PG_OK ||
	    (proto != IPPROTO_TCP && proto != IPPROTO_UDP))
		return w->id;
	/* TCP and UDP both start with source port, destination port. */
	l4 = rte_pktmbuf_read(m, l4off, 4, buf);
	if (l4 == NULL)
		return w->id;
	/* behind extension headers the ports may sit at any offset: copy them */
	memcpy(&sport, l4, 2);
	memcpy(&dport, l4 + 2, 2);
	return steer_hash6(ip->src_addr, ip->dst_addr, sport, dport) % w->nworkers;
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
	if (eh->ether_type == rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6))
		return steer_owner6(w, m);
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
