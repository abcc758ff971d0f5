/*
 * test_nd.c - IPv6 Neighbor Discovery (RFC 4861) and Duplicate Address
 * Detection (RFC 4862 §5.4): DAD probes and the announcement after them,
 * duplicates found by an advertisement or by another node's probe (on one
 * worker or seen through another's copy), solicitations answered,
 * resolution with parked packets, its failure, NUD (STALE, DELAY, PROBE),
 * the Override rules of advertisements, §7.1 validation, ignored router
 * messages, the multicast MAC filter and a configuration change. (MLD
 * reports, which start with DAD, are left to test_mld.c.)
 */
#include <string.h>

#include "net_harness.h"
#include "result.h"

#define NA_R 0x80
#define NA_S 0x40
#define NA_O 0x20

static const uint8_t all_nodes[16] = {0xff, 0x02, [15] = 1};
static const uint8_t unspec[16];
static const uint8_t ll_peer[16] = {0xfe, 0x80, [15] = 0x22};
static const uint8_t other[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0x18, [15] = 0x77};

static void sn_of(const uint8_t a[16], uint8_t out[16])
{
	memset(out, 0, 16);
	out[0] = 0xff;
	out[1] = 0x02;
	out[11] = 1;
	out[12] = 0xff;
	memcpy(out + 13, a + 13, 3);
}

static void sn_mac(const uint8_t a[16], struct rte_ether_addr *mac)
{
	*mac = (struct rte_ether_addr){.addr_bytes = {0x33, 0x33, 0xff, a[13], a[14], a[15]}};
}

/* An NS or NA message: 24 bytes, plus an 8-byte link-layer option if lla is given. */
static size_t nd_msg(uint8_t *msg, uint8_t type, uint8_t flags, const uint8_t target[16],
                     uint8_t opt, const struct rte_ether_addr *lla)
{
	memset(msg, 0, 32);
	msg[0] = type;
	msg[4] = flags;
	memcpy(msg + 8, target, 16);
	if (lla == NULL)
		return 24;
	msg[24] = opt;
	msg[25] = 1;
	memcpy(msg + 26, lla->addr_bytes, 6);
	return 32;
}

/* Deliver an ND message from th_mac_peer (or `from`) to worker i, port p. */
static void nd_in(struct th *t, unsigned i, uint16_t p, const struct rte_ether_addr *eth_dst,
                  const uint8_t src[16], const uint8_t dst[16], uint8_t hop, const uint8_t *msg,
                  size_t mlen)
{
	uint8_t f[TH_FRAME_MAX];
	size_t len = th_build_icmp6(f, eth_dst, src, dst, hop, NULL, 0, 0, msg, mlen);

	net_input(&t->w[i], th_mbuf(f, len, 0), p, false);
}

/* What we sent: the IPv6 header and ICMPv6 message of captured frame k of worker i. */
struct sent {
	const struct rte_ether_hdr *eh;
	const struct rte_ipv6_hdr *ip;
	const uint8_t *icmp;
	uint32_t len;
};

static struct sent sent_frame(struct th *t, unsigned i, unsigned k)
{
	struct rte_mbuf *m = t->cap[i].pkts[k];
	struct sent s;

	s.eh = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	s.ip = (const struct rte_ipv6_hdr *)(s.eh + 1);
	s.icmp = (const uint8_t *)(s.ip + 1);
	s.len = rte_be_to_cpu_16(s.ip->payload_len);
	assert_int_equal(rte_be_to_cpu_16(s.eh->ether_type), RTE_ETHER_TYPE_IPV6);
	assert_int_equal(rte_pktmbuf_pkt_len(m), 54 + s.len);
	assert_int_equal(s.ip->proto, IPPROTO_ICMPV6);
	assert_int_equal(s.ip->hop_limits, 255); /* RFC 4861 §7.1: every ND message */
	assert_int_equal(th_icmp6_cksum(s.ip->src_addr, s.ip->dst_addr, s.icmp, s.len), 0);
	return s;
}

/* Take the MLD reports (mld.c, tested in test_mld.c) out of worker i's capture; how many. */
static unsigned drop_mld(struct th *t, unsigned i)
{
	struct th_capture *c = &t->cap[i];
	unsigned kept = 0, n = 0;

	th_flush(t, i);
	for (unsigned k = 0; k < c->n; k++) {
		const uint8_t *f = rte_pktmbuf_mtod(c->pkts[k], const uint8_t *);

		/* hop limit 1, Hop-by-Hop first, ICMPv6 143 behind it */
		if (f[20] == 0 && f[21] == 1 && f[54] == IPPROTO_ICMPV6 && f[62] == 143) {
			rte_pktmbuf_free(c->pkts[k]);
			n++;
			continue;
		}
		c->pkts[kept] = c->pkts[k];
		c->port[kept++] = c->port[k];
	}
	c->n = kept;
	return n;
}

/* An advertisement we sent: target, flags, TLLA with our MAC on port p. */
static void check_na(struct sent s, const uint8_t target[16], uint8_t flags, uint16_t p)
{
	const struct rte_ether_addr *ours = p == 0 ? &th_mac_port0 : &th_mac_port1;

	assert_int_equal(s.icmp[0], 136);
	assert_int_equal(s.icmp[1], 0);
	assert_int_equal(s.icmp[4], flags);
	assert_memory_equal(s.icmp + 8, target, 16);
	assert_int_equal(s.len, 32);
	assert_int_equal(s.icmp[24], 2); /* TLLA */
	assert_int_equal(s.icmp[25], 1);
	assert_memory_equal(s.icmp + 26, ours->addr_bytes, 6);
	assert_true(rte_is_same_ether_addr(&s.eh->src_addr, ours));
}

/* RFC 4862 §5.4.2: probes from ::, to the solicited-node group, no option; then announce. */
static void test_dad_probes_and_announcement(void **state)
{
	struct th *t = *state;
	const uint8_t *addrs[4] = {th_ll6(t, 0), th_ip6_port0, th_ll6(t, 1), th_ip6_port1};

	th_ipv6_setup(t, false);
	addrs[0] = th_ll6(t, 0);
	addrs[2] = th_ll6(t, 1);
	th_advance(t, 0);
	assert_int_equal(drop_mld(t, 0), 2); /* the groups are joined first, one report per port */
	assert_int_equal(th_flush(t, 0), 4);
	for (unsigned k = 0; k < 4; k++) {
		struct sent s = sent_frame(t, 0, k);
		struct rte_ether_addr mac;
		uint8_t sn[16];

		sn_of(addrs[k], sn);
		sn_mac(addrs[k], &mac);
		assert_int_equal(t->cap[0].port[k], k / 2);
		assert_true(rte_is_same_ether_addr(&s.eh->dst_addr, &mac));
		assert_memory_equal(s.ip->src_addr, unspec, 16);
		assert_memory_equal(s.ip->dst_addr, sn, 16);
		assert_int_equal(s.icmp[0], 135);
		assert_int_equal(s.len, 24);
		assert_memory_equal(s.icmp + 8, addrs[k], 16);
	}
	th_cap_clear(t, 0);
	assert_int_equal(CTR(t, 0, nd_ns_tx), 4);
	/* within RetransTimer (1 s) nothing changes */
	th_advance(t, TH_NS_PER_S - 1);
	assert_int_equal(th_flush(t, 0), 0);
	assert_int_equal(nd_addr_state(&t->w[0], 0, th_ip6_port0), ND_ADDR_TENTATIVE);
	th_advance(t, 1);
	for (unsigned k = 0; k < 4; k++)
		assert_int_equal(nd_addr_state(&t->w[0], (uint16_t)(k / 2), addrs[k]),
		                 ND_ADDR_PREFERRED);
	assert_int_equal(CTR(t, 0, nd_dad_ok), 4);
	/* RFC 4861 §7.2.6: announced to all nodes, Override set, not solicited */
	assert_int_equal(drop_mld(t, 0), 2); /* MLD's second unsolicited report */
	assert_int_equal(th_flush(t, 0), 4);
	for (unsigned k = 0; k < 4; k++) {
		struct sent s = sent_frame(t, 0, k);

		check_na(s, addrs[k], NA_O, (uint16_t)(k / 2));
		assert_memory_equal(s.ip->src_addr, addrs[k], 16);
		assert_memory_equal(s.ip->dst_addr, all_nodes, 16);
	}
	assert_int_equal(CTR(t, 0, nd_na_tx), 4);
}

/* Without gratuitous_arp the addresses come up silently. */
static void test_dad_no_announcement(void **state)
{
	struct th *t = *state;

	t->nc.gratuitous_arp = false;
	th_ipv6_setup(t, false);
	th_advance(t, 0);
	th_flush(t, 0);
	th_cap_clear(t, 0);
	th_advance(t, TH_NS_PER_S);
	assert_int_equal(CTR(t, 0, nd_dad_ok), 4);
	drop_mld(t, 0);
	assert_int_equal(th_flush(t, 0), 0);
}

/*
 * RFC 4862 §5.4.4: an advertisement for a tentative address: a duplicate,
 * never used. The defender advertises from the contested address itself
 * (RFC 4861 §7.2.4, as Linux does): a source of ours, but not yet in use.
 */
static void test_dad_duplicate_by_na(void **state)
{
	struct th *t = *state;
	uint8_t msg[32], f[TH_FRAME_MAX];
	size_t len;

	th_ipv6_setup(t, false);
	th_advance(t, 0);
	th_flush(t, 0);
	th_cap_clear(t, 0);
	len = nd_msg(msg, 136, NA_O, th_ip6_port0, 2, &th_mac_peer);
	nd_in(t, 0, 0, &th_mac_port0, th_ip6_port0, all_nodes, 255, msg, len);
	assert_int_equal(CTR(t, 0, ipv6_drop_bad_src), 0);
	assert_int_equal(CTR(t, 0, nd_dad_duplicate), 1);
	assert_int_equal(nd_addr_state(&t->w[0], 0, th_ip6_port0), ND_ADDR_DUPLICATE);
	th_advance(t, 2 * TH_NS_PER_S);
	assert_int_equal(nd_addr_state(&t->w[0], 0, th_ip6_port0), ND_ADDR_DUPLICATE);
	assert_int_equal(nd_addr_state(&t->w[0], 0, th_ll6(t, 0)), ND_ADDR_PREFERRED);
	assert_int_equal(CTR(t, 0, nd_dad_ok), 3);
	/* not announced, not answered, not used as a source */
	drop_mld(t, 0);
	for (unsigned k = 0; k < t->cap[0].n; k++)
		assert_memory_not_equal(sent_frame(t, 0, k).icmp + 8, th_ip6_port0, 16);
	th_cap_clear(t, 0);
	len = th_build_echo6(f, &th_mac_port0, th_ip6_peer0, th_ip6_port0, 1, 1, NULL, 0);
	net_input(&t->w[0], th_mbuf(f, len, 0), 0, false);
	assert_int_equal(CTR(t, 0, ipv6_drop_tentative), 1);
	{
		uint8_t src[16];

		assert_int_equal(net_ipv6_source(&t->w[0], th_ip6_peer0, src), PG_DECLINED);
	}
	/* a solicitation for it goes unanswered */
	len = nd_msg(msg, 135, 0, th_ip6_port0, 1, &th_mac_peer);
	nd_in(t, 0, 0, &th_mac_port0, th_ip6_peer0, th_ip6_port0, 255, msg, len);
	assert_int_equal(CTR(t, 0, ipv6_drop_tentative), 2);
	assert_int_equal(th_flush(t, 0), 0);
}

/*
 * RFC 4862 §5.4.3: another node's probe for our tentative link-local
 * address: a duplicate, and (§5.4.5, a MAC-derived address) IPv6 on the
 * port stops: the global address goes too.
 */
static void test_dad_duplicate_by_probe(void **state)
{
	struct th *t = *state;
	uint8_t msg[32], sn[16];
	struct rte_ether_addr mac;
	size_t len;

	th_ipv6_setup(t, false);
	th_advance(t, 0);
	th_flush(t, 0);
	th_cap_clear(t, 0);
	/* a probe from a unicast source for a tentative target is ignored */
	sn_of(th_ll6(t, 1), sn);
	sn_mac(th_ll6(t, 1), &mac);
	len = nd_msg(msg, 135, 0, th_ll6(t, 1), 1, &th_mac_peer);
	nd_in(t, 0, 1, &mac, ll_peer, sn, 255, msg, len);
	assert_int_equal(CTR(t, 0, nd_dad_duplicate), 0);
	/* from :: it is another node's DAD */
	len = nd_msg(msg, 135, 0, th_ll6(t, 1), 0, NULL);
	nd_in(t, 0, 1, &mac, unspec, sn, 255, msg, len);
	assert_int_equal(CTR(t, 0, nd_dad_duplicate), 1);
	assert_int_equal(nd_addr_state(&t->w[0], 1, th_ll6(t, 1)), ND_ADDR_DUPLICATE);
	assert_int_equal(nd_addr_state(&t->w[0], 1, th_ip6_port1), ND_ADDR_DUPLICATE);
	th_advance(t, 2 * TH_NS_PER_S);
	assert_int_equal(nd_addr_state(&t->w[0], 1, th_ip6_port1), ND_ADDR_DUPLICATE);
	assert_int_equal(nd_addr_state(&t->w[0], 0, th_ip6_port0), ND_ADDR_PREFERRED);
	assert_int_equal(CTR(t, 0, nd_dad_ok), 2);
}

/* Two workers: one probe per address (worker 0's); a duplicate is seen by both. */
static void test_dad_two_workers(void **state)
{
	struct th *t = *state;
	uint8_t msg[32];
	size_t len;

	th_ipv6_setup(t, false);
	th_advance(t, 0);
	assert_int_equal(drop_mld(t, 0), 2);
	assert_int_equal(th_flush(t, 0), 4);
	assert_int_equal(th_flush(t, 1), 0);
	th_cap_clear(t, 0);
	/* the advertisement reaches worker 1's queue; worker 0 learns from its copy */
	len = nd_msg(msg, 136, NA_O, th_ip6_port0, 2, &th_mac_peer);
	nd_in(t, 1, 0, &th_mac_port0, th_ip6_peer0, all_nodes, 255, msg, len);
	assert_int_equal(CTR(t, 1, nd_bcast_fwd), 1);
	assert_int_equal(CTR(t, 1, nd_na_rx), 1);
	assert_int_equal(th_deliver_steered(t, 0), 1);
	assert_int_equal(CTR(t, 0, nd_na_rx), 0); /* a copy is not counted again */
	assert_int_equal(CTR(t, 0, ipv6_rx), 0);
	assert_int_equal(nd_addr_state(&t->w[0], 0, th_ip6_port0), ND_ADDR_DUPLICATE);
	assert_int_equal(nd_addr_state(&t->w[1], 0, th_ip6_port0), ND_ADDR_DUPLICATE);
	assert_int_equal(CTR(t, 0, nd_dad_duplicate) + CTR(t, 1, nd_dad_duplicate), 1);
	th_advance(t, 2 * TH_NS_PER_S);
	assert_int_equal(nd_addr_state(&t->w[1], 0, th_ip6_port1), ND_ADDR_NONE);
	assert_int_equal(nd_addr_state(&t->w[1], 1, th_ip6_port1), ND_ADDR_PREFERRED);
	assert_int_equal(CTR(t, 0, nd_dad_ok) + CTR(t, 1, nd_dad_ok), 3);
}

/* §7.2.3-7.2.4: a solicitation is answered to the asker, and teaches us the asker. */
static void test_ns_answered(void **state)
{
	struct th *t = *state;
	uint8_t msg[32], sn[16];
	struct rte_ether_addr mac, got;
	struct sent s;
	size_t len;

	th_ipv6_setup(t, true);
	sn_of(th_ip6_port0, sn);
	sn_mac(th_ip6_port0, &mac);
	len = nd_msg(msg, 135, 0, th_ip6_port0, 1, &th_mac_peer2);
	nd_in(t, 0, 0, &mac, th_ip6_peer0, sn, 255, msg, len);
	assert_int_equal(CTR(t, 0, nd_ns_rx), 1);
	assert_int_equal(th_flush(t, 0), 1);
	s = sent_frame(t, 0, 0);
	check_na(s, th_ip6_port0, NA_S | NA_O, 0);
	assert_memory_equal(s.ip->src_addr, th_ip6_port0, 16);
	assert_memory_equal(s.ip->dst_addr, th_ip6_peer0, 16);
	assert_true(rte_is_same_ether_addr(&s.eh->dst_addr, &th_mac_peer2)); /* from its SLLA */
	th_cap_clear(t, 0);
	assert_int_equal(nd_lookup(&t->w[0], 0, th_ip6_peer0, &got), ND_STALE);
	assert_true(rte_is_same_ether_addr(&got, &th_mac_peer2));

	/* for the link-local address, from a link-local asker, unicast */
	len = nd_msg(msg, 135, 0, th_ll6(t, 0), 1, &th_mac_peer);
	nd_in(t, 0, 0, &th_mac_port0, ll_peer, th_ll6(t, 0), 255, msg, len);
	assert_int_equal(th_flush(t, 0), 1);
	s = sent_frame(t, 0, 0);
	check_na(s, th_ll6(t, 0), NA_S | NA_O, 0);
	assert_memory_equal(s.ip->src_addr, th_ll6(t, 0), 16);
	assert_memory_equal(s.ip->dst_addr, ll_peer, 16);
}

/* §7.2.4: another node's DAD probe for our address in use: answered to all nodes. */
static void test_ns_from_dad_answered(void **state)
{
	struct th *t = *state;
	uint8_t msg[32], sn[16];
	struct rte_ether_addr mac;
	struct sent s;
	size_t len;

	th_ipv6_setup(t, true);
	sn_of(th_ip6_port0, sn);
	sn_mac(th_ip6_port0, &mac);
	len = nd_msg(msg, 135, 0, th_ip6_port0, 0, NULL);
	nd_in(t, 0, 0, &mac, unspec, sn, 255, msg, len);
	assert_int_equal(th_flush(t, 0), 1);
	s = sent_frame(t, 0, 0);
	check_na(s, th_ip6_port0, NA_O, 0);
	assert_memory_equal(s.ip->dst_addr, all_nodes, 16);
	assert_int_equal(CTR(t, 0, nd_learned), 0);
}

static void test_ns_not_for_us(void **state)
{
	struct th *t = *state;
	uint8_t msg[32], sn[16];
	struct rte_ether_addr mac;
	size_t len;

	th_ipv6_setup(t, true);
	/* to our group, but for a target that is not ours */
	sn_of(th_ip6_port0, sn);
	sn_mac(th_ip6_port0, &mac);
	len = nd_msg(msg, 135, 0, other, 1, &th_mac_peer);
	nd_in(t, 0, 0, &mac, th_ip6_peer0, sn, 255, msg, len);
	assert_int_equal(CTR(t, 0, nd_drop_not_for_us), 1);
	assert_int_equal(CTR(t, 0, nd_learned), 0); /* §7.2.3: discarded before learning */
	assert_int_equal(th_flush(t, 0), 0);
}

/* §7.1: what makes a solicitation or advertisement invalid; each dropped and counted. */
struct nd_bad {
	const char *name;
	uint8_t type, hop, code, opt_len;
	bool from_unspec, to_unicast, solicited_to_group, target_group, short_msg;
};

static void test_nd_invalid_table(void **state)
{
	struct th *t = *state;
	static const struct nd_bad cases[] = {
	    {"NS hop limit 254", 135, 254, 0, 1, false, false, false, false, false},
	    {"NA hop limit 64", 136, 64, 0, 1, false, false, false, false, false},
	    {"NS code 1", 135, 255, 1, 1, false, false, false, false, false},
	    {"NS of 20 bytes", 135, 255, 0, 1, false, false, false, false, true},
	    {"NS for a multicast target", 135, 255, 0, 1, false, false, false, true, false},
	    {"NS option of length 0", 135, 255, 0, 0, false, false, false, false, false},
	    {"NS SLLA of 16 bytes", 135, 255, 0, 2, false, false, false, false, false},
	    {"DAD probe with SLLA", 135, 255, 0, 1, true, false, false, false, false},
	    {"DAD probe to a unicast address", 135, 255, 0, 0xff, true, true, false, false, false},
	    {"solicited NA to a group", 136, 255, 0, 1, false, false, true, false, false},
	};
	uint8_t sn[16];
	struct rte_ether_addr mac;

	th_ipv6_setup(t, true);
	sn_of(th_ip6_port0, sn);
	sn_mac(th_ip6_port0, &mac);
	for (size_t k = 0; k < RTE_DIM(cases); k++) {
		const struct nd_bad *c = &cases[k];
		uint8_t msg[48];
		size_t len;
		uint64_t before = CTR(t, 0, nd_drop_invalid);
		const uint8_t *dst = c->to_unicast ? th_ip6_port0 : c->type == 136 ? all_nodes : sn;
		const struct rte_ether_addr *edst =
		    c->to_unicast    ? &th_mac_port0
		    : c->type == 136 ? &(const struct rte_ether_addr){{0x33, 0x33, 0, 0, 0, 1}}
		                     : &mac;

		print_message("# %s\n", c->name);
		len = nd_msg(msg, c->type, c->solicited_to_group ? NA_S : 0,
		             c->target_group ? all_nodes : th_ip6_port0, c->type == 135 ? 1 : 2,
		             c->opt_len == 0xff ? NULL : &th_mac_peer);
		msg[1] = c->code;
		if (c->opt_len != 0xff)
			msg[25] = c->opt_len;
		if (c->opt_len == 2) {
			memset(msg + 32, 0, 8);
			len = 40;
		}
		if (c->short_msg)
			len = 20;
		nd_in(t, 0, 0, edst, c->from_unspec ? unspec : th_ip6_peer0, dst, c->hop, msg, len);
		assert_int_equal(CTR(t, 0, nd_drop_invalid), before + 1);
		assert_int_equal(th_flush(t, 0), 0);
	}
	assert_int_equal(CTR(t, 0, nd_ns_rx) + CTR(t, 0, nd_na_rx), 0);
	assert_int_equal(CTR(t, 0, nd_learned), 0);
	assert_int_equal(nd_addr_state(&t->w[0], 0, th_ip6_port0), ND_ADDR_PREFERRED);
}

static struct rte_mbuf *udp6_to(const uint8_t dst[16], uint8_t tag)
{
	uint8_t pkt[48];

	memset(pkt, 0, sizeof(pkt));
	pkt[0] = 0x60;
	pkt[5] = 8; /* payload length */
	pkt[6] = IPPROTO_UDP;
	memcpy(pkt + 24, dst, 16);
	pkt[40] = tag;
	return th_mbuf(pkt, sizeof(pkt), 0);
}

/* §7.2.2: an unknown neighbour is solicited (multicast, SLLA) and the packet waits. */
static void test_resolution(void **state)
{
	struct th *t = *state;
	uint8_t msg[32], sn[16];
	struct rte_ether_addr mac, got;
	struct sent s;
	size_t len;

	th_ipv6_setup(t, true);
	assert_int_equal(net_ipv6_output(&t->w[0], udp6_to(th_ip6_peer0, 1), NET_PORT_ROUTE),
	                 PG_AGAIN);
	assert_int_equal(net_ipv6_output(&t->w[0], udp6_to(th_ip6_peer0, 2), NET_PORT_ROUTE),
	                 PG_AGAIN);
	assert_int_equal(CTR(t, 0, nd_pending_queued), 2);
	assert_int_equal(nd_lookup(&t->w[0], 0, th_ip6_peer0, NULL), ND_INCOMPLETE);
	assert_int_equal(th_flush(t, 0), 1);
	s = sent_frame(t, 0, 0);
	sn_of(th_ip6_peer0, sn);
	sn_mac(th_ip6_peer0, &mac);
	assert_true(rte_is_same_ether_addr(&s.eh->dst_addr, &mac));
	assert_memory_equal(s.ip->dst_addr, sn, 16);
	assert_memory_equal(s.ip->src_addr, th_ip6_port0, 16); /* the parked packet's source */
	assert_int_equal(s.icmp[0], 135);
	assert_memory_equal(s.icmp + 8, th_ip6_peer0, 16);
	assert_int_equal(s.len, 32);
	assert_int_equal(s.icmp[24], 1); /* SLLA */
	assert_memory_equal(s.icmp + 26, th_mac_port0.addr_bytes, 6);
	th_cap_clear(t, 0);
	/* the answer releases both, in order, to the advertised MAC */
	len = nd_msg(msg, 136, NA_S | NA_O, th_ip6_peer0, 2, &th_mac_peer2);
	nd_in(t, 0, 0, &th_mac_port0, th_ip6_peer0, th_ip6_port0, 255, msg, len);
	assert_int_equal(th_flush(t, 0), 2);
	for (unsigned k = 0; k < 2; k++) {
		struct rte_mbuf *m = t->cap[0].pkts[k];

		assert_true(rte_is_same_ether_addr(
		    &rte_pktmbuf_mtod(m, struct rte_ether_hdr *)->dst_addr, &th_mac_peer2));
		assert_int_equal(*rte_pktmbuf_mtod_offset(m, uint8_t *, 54), k + 1);
	}
	assert_int_equal(nd_lookup(&t->w[0], 0, th_ip6_peer0, &got), ND_REACHABLE);
	assert_true(rte_is_same_ether_addr(&got, &th_mac_peer2));
}

/* No answer: 1 + arp_max_retries solicitations, then the parked packets are dropped. */
static void test_resolution_fails(void **state)
{
	struct th *t = *state;

	th_ipv6_setup(t, true);
	assert_int_equal(net_ipv6_output(&t->w[0], udp6_to(th_ip6_peer0, 1), NET_PORT_ROUTE),
	                 PG_AGAIN);
	for (int i = 0; i < 6; i++)
		th_advance(t, TH_NS_PER_S);
	assert_int_equal(CTR(t, 0, nd_ns_tx) - 4, 4); /* the 4 DAD probes were counted too */
	assert_int_equal(CTR(t, 0, nd_unresolved_drop), 1);
	assert_int_equal(nd_lookup(&t->w[0], 0, th_ip6_peer0, NULL), ND_NONE);
}

/* §7.3.3: REACHABLE -> STALE -> (send) DELAY -> PROBE -> REACHABLE, or removed. */
static void test_nud(void **state)
{
	struct th *t = *state;
	uint8_t msg[32];
	struct sent s;
	size_t len;

	th_ipv6_setup(t, true);
	assert_int_equal(net_ipv6_output(&t->w[0], udp6_to(th_ip6_peer0, 1), NET_PORT_ROUTE),
	                 PG_AGAIN);
	len = nd_msg(msg, 136, NA_S | NA_O, th_ip6_peer0, 2, &th_mac_peer);
	nd_in(t, 0, 0, &th_mac_port0, th_ip6_peer0, th_ip6_port0, 255, msg, len);
	th_flush(t, 0);
	th_cap_clear(t, 0);
	assert_int_equal(nd_lookup(&t->w[0], 0, th_ip6_peer0, NULL), ND_REACHABLE);
	/* ReachableTime is 15..45 s (§6.3.2) */
	th_advance(t, 46 * TH_NS_PER_S);
	assert_int_equal(nd_lookup(&t->w[0], 0, th_ip6_peer0, NULL), ND_STALE);
	assert_int_equal(net_ipv6_output(&t->w[0], udp6_to(th_ip6_peer0, 2), NET_PORT_ROUTE),
	                 PG_OK);
	assert_int_equal(nd_lookup(&t->w[0], 0, th_ip6_peer0, NULL), ND_DELAY);
	th_flush(t, 0);
	th_cap_clear(t, 0);
	th_advance(t, 5 * TH_NS_PER_S);
	assert_int_equal(nd_lookup(&t->w[0], 0, th_ip6_peer0, NULL), ND_PROBE);
	/* the probe is unicast, to the cached MAC */
	assert_int_equal(th_flush(t, 0), 1);
	s = sent_frame(t, 0, 0);
	assert_int_equal(s.icmp[0], 135);
	assert_memory_equal(s.ip->dst_addr, th_ip6_peer0, 16);
	assert_true(rte_is_same_ether_addr(&s.eh->dst_addr, &th_mac_peer));
	th_cap_clear(t, 0);
	nd_in(t, 0, 0, &th_mac_port0, th_ip6_peer0, th_ip6_port0, 255, msg, len);
	assert_int_equal(nd_lookup(&t->w[0], 0, th_ip6_peer0, NULL), ND_REACHABLE);

	/* again, and this time nobody answers: three probes, then gone */
	th_advance(t, 46 * TH_NS_PER_S);
	assert_int_equal(net_ipv6_output(&t->w[0], udp6_to(th_ip6_peer0, 3), NET_PORT_ROUTE),
	                 PG_OK);
	th_advance(t, 5 * TH_NS_PER_S);
	th_advance(t, TH_NS_PER_S);
	th_advance(t, TH_NS_PER_S);
	assert_int_equal(nd_lookup(&t->w[0], 0, th_ip6_peer0, NULL), ND_PROBE);
	th_advance(t, TH_NS_PER_S);
	assert_int_equal(nd_lookup(&t->w[0], 0, th_ip6_peer0, NULL), ND_NONE);
	assert_int_equal(CTR(t, 0, nd_expired), 1);
	th_flush(t, 0);
	{
		unsigned probes = 0;

		/* the data packet that started NUD went out too; count the probes */
		for (unsigned k = 0; k < t->cap[0].n; k++)
			if (rte_pktmbuf_mtod_offset(t->cap[0].pkts[k], const uint8_t *, 20)[0] ==
			    IPPROTO_ICMPV6)
				probes += sent_frame(t, 0, k).icmp[0] == 135;
		assert_int_equal(probes, 3);
	}
}

/* §7.2.5: without Override a different address only casts doubt; with it, it wins. */
static void test_na_override(void **state)
{
	struct th *t = *state;
	uint8_t msg[32];
	struct rte_ether_addr got;
	size_t len;

	th_ipv6_setup(t, true);
	net_ipv6_output(&t->w[0], udp6_to(th_ip6_peer0, 1), NET_PORT_ROUTE);
	len = nd_msg(msg, 136, NA_S | NA_O, th_ip6_peer0, 2, &th_mac_peer);
	nd_in(t, 0, 0, &th_mac_port0, th_ip6_peer0, th_ip6_port0, 255, msg, len);
	assert_int_equal(nd_lookup(&t->w[0], 0, th_ip6_peer0, &got), ND_REACHABLE);
	len = nd_msg(msg, 136, 0, th_ip6_peer0, 2, &th_mac_peer2);
	nd_in(t, 0, 0, &th_mac_port0, th_ip6_peer0, all_nodes, 255, msg, len);
	assert_int_equal(nd_lookup(&t->w[0], 0, th_ip6_peer0, &got), ND_STALE);
	assert_true(rte_is_same_ether_addr(&got, &th_mac_peer));
	len = nd_msg(msg, 136, NA_S | NA_O | NA_R, th_ip6_peer0, 2, &th_mac_peer2);
	nd_in(t, 0, 0, &th_mac_port0, th_ip6_peer0, th_ip6_port0, 255, msg, len);
	assert_int_equal(nd_lookup(&t->w[0], 0, th_ip6_peer0, &got), ND_REACHABLE);
	assert_true(rte_is_same_ether_addr(&got, &th_mac_peer2));
	/* an advertisement for a neighbour we never asked about creates nothing */
	len = nd_msg(msg, 136, NA_O, th_ip6_peer1, 2, &th_mac_peer);
	nd_in(t, 0, 1, &th_mac_port1, th_ip6_peer1, all_nodes, 255, msg, len);
	assert_int_equal(nd_lookup(&t->w[0], 1, th_ip6_peer1, NULL), ND_NONE);
	/* nor does one for our own address in use: a conflict, counted */
	len = nd_msg(msg, 136, NA_O, th_ip6_port1, 2, &th_mac_peer);
	nd_in(t, 0, 1, &th_mac_port1, th_ip6_peer1, all_nodes, 255, msg, len);
	assert_int_equal(CTR(t, 0, nd_conflict), 1);
	assert_int_equal(nd_addr_state(&t->w[0], 1, th_ip6_port1), ND_ADDR_PREFERRED);
}

/* Router Solicitation, Advertisement and Redirect are ignored by this host. */
static void test_router_messages_ignored(void **state)
{
	struct th *t = *state;
	static const uint8_t rs[8] = {133};
	static const uint8_t ra[16] = {134, 0, 0, 0, 64, 0, 0x07, 0x08};
	uint8_t redirect[40] = {137};
	const struct rte_ether_addr all = {{0x33, 0x33, 0, 0, 0, 1}};

	th_ipv6_setup(t, true);
	memcpy(redirect + 8, ll_peer, 16);
	memcpy(redirect + 24, th_ip6_peer0, 16);
	nd_in(t, 0, 0, &all, ll_peer, all_nodes, 255, rs, sizeof(rs));
	nd_in(t, 0, 0, &all, ll_peer, all_nodes, 255, ra, sizeof(ra));
	nd_in(t, 0, 0, &th_mac_port0, ll_peer, th_ll6(t, 0), 255, redirect, sizeof(redirect));
	assert_int_equal(CTR(t, 0, nd_ignored), 3);
	assert_int_equal(th_flush(t, 0), 0);
	assert_int_equal(nd_lookup(&t->w[0], 0, ll_peer, NULL), ND_NONE);
}

/* Every worker learns from a solicitation one of them received. */
static void test_nd_copied_to_workers(void **state)
{
	struct th *t = *state;
	uint8_t msg[32], sn[16];
	struct rte_ether_addr mac, got;
	size_t len;

	th_ipv6_setup(t, true);
	sn_of(th_ip6_port0, sn);
	sn_mac(th_ip6_port0, &mac);
	len = nd_msg(msg, 135, 0, th_ip6_port0, 1, &th_mac_peer);
	nd_in(t, 0, 0, &mac, th_ip6_peer0, sn, 255, msg, len);
	assert_int_equal(CTR(t, 0, nd_bcast_fwd), 1);
	assert_int_equal(th_flush(t, 0), 1); /* the answer, once */
	assert_int_equal(th_deliver_steered(t, 1), 1);
	assert_int_equal(th_flush(t, 1), 0);
	assert_int_equal(CTR(t, 1, nd_ns_rx), 0);
	assert_int_equal(nd_lookup(&t->w[1], 0, th_ip6_peer0, &got), ND_STALE);
	assert_true(rte_is_same_ether_addr(&got, &th_mac_peer));
}

/* Only our groups pass the Ethernet filter: all-nodes and our solicited-node groups. */
static void test_multicast_filter(void **state)
{
	struct th *t = *state;
	static const uint8_t routers[16] = {0xff, 0x02, [15] = 2};
	uint8_t msg[32], sn[16];
	struct rte_ether_addr mac;
	size_t len;

	th_ipv6_setup(t, true);
	len = nd_msg(msg, 133, 0, routers, 0, NULL);
	nd_in(t, 0, 0, &(const struct rte_ether_addr){{0x33, 0x33, 0, 0, 0, 2}}, ll_peer, routers,
	      255, msg, 8);
	assert_int_equal(CTR(t, 0, eth_drop_multicast), 1);
	sn_of(th_ip6_peer0, sn); /* someone else's group */
	sn_mac(th_ip6_peer0, &mac);
	len = nd_msg(msg, 135, 0, th_ip6_peer0, 1, &th_mac_peer);
	nd_in(t, 0, 0, &mac, ll_peer, sn, 255, msg, len);
	assert_int_equal(CTR(t, 0, eth_drop_multicast), 2);
	assert_int_equal(CTR(t, 0, ipv6_rx), 0);
}

/* A new address on port 0: its neighbours are forgotten and DAD runs again; port 1 keeps all. */
static void test_config_change(void **state)
{
	struct th *t = *state;
	static const uint8_t renumbered[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0x28, [15] = 1};

	th_ipv6_setup(t, true);
	th_nd_learn(t, 0, 1, th_ip6_peer1, &th_mac_peer);
	assert_int_equal(net_ipv6_output(&t->w[0], udp6_to(th_ip6_peer0, 1), NET_PORT_ROUTE),
	                 PG_AGAIN);
	th_flush(t, 0);
	th_cap_clear(t, 0);
	memcpy(t->nc.ports[0].addr6, renumbered, 16);
	memcpy(t->nc.routes6[0].prefix, renumbered, 8);
	th_config_changed(t);
	assert_int_equal(CTR(t, 0, nd_flush_drop), 1);
	assert_int_equal(nd_lookup(&t->w[0], 0, th_ip6_peer0, NULL), ND_NONE);
	assert_int_equal(nd_lookup(&t->w[0], 1, th_ip6_peer1, NULL), ND_STALE);
	assert_int_equal(nd_addr_state(&t->w[0], 0, renumbered), ND_ADDR_TENTATIVE);
	assert_int_equal(nd_addr_state(&t->w[0], 0, th_ip6_port0), ND_ADDR_NONE);
	assert_int_equal(nd_addr_state(&t->w[0], 1, th_ip6_port1), ND_ADDR_PREFERRED);
	th_advance(t, 0);
	th_advance(t, TH_NS_PER_S);
	assert_int_equal(nd_addr_state(&t->w[0], 0, renumbered), ND_ADDR_PREFERRED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_dad_probes_and_announcement, th_setup1,
	                                    th_teardown),
	    cmocka_unit_test_setup_teardown(test_dad_no_announcement, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_dad_duplicate_by_na, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_dad_duplicate_by_probe, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_dad_two_workers, th_setup2, th_teardown),
	    cmocka_unit_test_setup_teardown(test_ns_answered, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_ns_from_dad_answered, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_ns_not_for_us, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_nd_invalid_table, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_resolution, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_resolution_fails, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_nud, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_na_override, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_router_messages_ignored, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_nd_copied_to_workers, th_setup2, th_teardown),
	    cmocka_unit_test_setup_teardown(test_multicast_filter, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_config_change, th_setup1, th_teardown),
	};
	int rc;

	th_eal_init();
	rc = cmocka_run_group_tests_name("net_nd", tests, NULL, NULL);
	th_eal_fini();
	return rc;
}
