/*
 * test_ipv4.c - IPv4 input validation (each failure moves exactly its own
 * counter), padding trim, checksum offload flags, and the output path:
 * source/TTL fill-in, header checksum or offload, MTU, no route.
 */
#include <string.h>

#include <rte_icmp.h>

#include "net_harness.h"
#include "result.h"

#define END                                                                                        \
	{                                                                                          \
		-1, 0                                                                              \
	}
#define C(x) CTR_##x

struct ipv4_case {
	const char *name;
	void (*edit)(uint8_t *f, size_t *len);
	bool fix_cksum;
	int ctr; /* the one drop counter, besides ipv4_rx */
};

static void e_short(uint8_t *f, size_t *len)
{
	(void)f;
	*len = sizeof(struct rte_ether_hdr) + 19;
}
static void e_version6(uint8_t *f, size_t *len)
{
	(void)len;
	th_ip_of(f)->version_ihl = 0x65;
}
static void e_ihl4(uint8_t *f, size_t *len)
{
	(void)len;
	th_ip_of(f)->version_ihl = 0x44;
}
static void e_ihl_past_data(uint8_t *f, size_t *len)
{
	(void)len;
	th_ip_of(f)->version_ihl = 0x4f; /* 60 bytes of header, 48 of packet */
}
static void e_totlen_below_hdr(uint8_t *f, size_t *len)
{
	(void)len;
	th_ip_of(f)->total_length = rte_cpu_to_be_16(19);
}
static void e_totlen_past_data(uint8_t *f, size_t *len)
{
	(void)len;
	th_ip_of(f)->total_length =
	    rte_cpu_to_be_16(rte_be_to_cpu_16(th_ip_of(f)->total_length) + 1);
}
static void e_cksum(uint8_t *f, size_t *len)
{
	(void)len;
	th_ip_of(f)->hdr_checksum ^= 0x0100;
}
static void e_ttl0(uint8_t *f, size_t *len)
{
	(void)len;
	th_ip_of(f)->time_to_live = 0;
}
static void e_mf(uint8_t *f, size_t *len)
{
	(void)len;
	th_ip_of(f)->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG);
}
static void e_offset(uint8_t *f, size_t *len)
{
	(void)len;
	th_ip_of(f)->fragment_offset = rte_cpu_to_be_16(185);
}
static void e_src_mcast(uint8_t *f, size_t *len)
{
	(void)len;
	th_ip_of(f)->src_addr = IP4(224, 0, 0, 5);
}
static void e_src_bcast(uint8_t *f, size_t *len)
{
	(void)len;
	th_ip_of(f)->src_addr = IP4(255, 255, 255, 255);
}
static void e_src_subnet_bcast(uint8_t *f, size_t *len)
{
	(void)len;
	th_ip_of(f)->src_addr = IP4(198, 18, 0, 255);
}
static void e_src_ours(uint8_t *f, size_t *len)
{
	(void)len;
	th_ip_of(f)->src_addr = TH_PORT1_IP;
}
static void e_src_loopback(uint8_t *f, size_t *len)
{
	(void)len;
	th_ip_of(f)->src_addr = IP4(127, 0, 0, 1);
}
static void e_src_zero(uint8_t *f, size_t *len)
{
	(void)len;
	th_ip_of(f)->src_addr = 0;
}
static void e_dst_other(uint8_t *f, size_t *len)
{
	(void)len;
	th_ip_of(f)->dst_addr = IP4(198, 18, 0, 9);
}
static void e_dst_other_port(uint8_t *f, size_t *len)
{
	(void)len;
	th_ip_of(f)->dst_addr = TH_PORT1_IP; /* strong host model */
}
static void e_dst_bcast(uint8_t *f, size_t *len)
{
	(void)len;
	th_ip_of(f)->dst_addr = IP4(255, 255, 255, 255);
}
static void e_dst_subnet_bcast(uint8_t *f, size_t *len)
{
	(void)len;
	th_ip_of(f)->dst_addr = IP4(198, 18, 0, 255);
}
static void e_link_bcast(uint8_t *f, size_t *len)
{
	(void)len;
	((struct rte_ether_hdr *)f)->dst_addr = th_mac_bcast;
}
static void e_tcp(uint8_t *f, size_t *len)
{
	(void)len;
	th_ip_of(f)->next_proto_id = IPPROTO_TCP;
}
static void e_udp(uint8_t *f, size_t *len)
{
	(void)len;
	th_ip_of(f)->next_proto_id = IPPROTO_UDP;
}
static void e_gre(uint8_t *f, size_t *len)
{
	(void)len;
	th_ip_of(f)->next_proto_id = IPPROTO_GRE;
}

static const struct ipv4_case ipv4_cases[] = {
    {"header truncated", e_short, false, C(ipv4_drop_short)},
    {"version 6", e_version6, true, C(ipv4_drop_version)},
    {"IHL 4", e_ihl4, true, C(ipv4_drop_hdrlen)},
    {"IHL past the data", e_ihl_past_data, false, C(ipv4_drop_hdrlen)},
    {"total length below header", e_totlen_below_hdr, true, C(ipv4_drop_totlen)},
    {"total length past the data", e_totlen_past_data, true, C(ipv4_drop_totlen)},
    {"header checksum", e_cksum, false, C(ipv4_drop_cksum)},
    {"TTL 0", e_ttl0, true, C(ipv4_drop_ttl)},
    {"more fragments", e_mf, true, C(ipv4_drop_fragment)},
    {"fragment offset", e_offset, true, C(ipv4_drop_fragment)},
    {"source multicast", e_src_mcast, true, C(ipv4_drop_bad_src)},
    {"source broadcast", e_src_bcast, true, C(ipv4_drop_bad_src)},
    {"source subnet broadcast", e_src_subnet_bcast, true, C(ipv4_drop_bad_src)},
    {"source is ours", e_src_ours, true, C(ipv4_drop_bad_src)},
    {"source loopback", e_src_loopback, true, C(ipv4_drop_bad_src)},
    {"source 0.0.0.0", e_src_zero, true, C(ipv4_drop_bad_src)},
    {"destination another host", e_dst_other, true, C(ipv4_drop_not_for_us)},
    {"destination our other port", e_dst_other_port, true, C(ipv4_drop_not_for_us)},
    {"destination broadcast", e_dst_bcast, true, C(ipv4_drop_not_for_us)},
    {"destination subnet broadcast", e_dst_subnet_bcast, true, C(ipv4_drop_not_for_us)},
    {"unicast IP in link broadcast", e_link_bcast, false, C(ipv4_drop_link_bcast)},
    {"TCP (not yet)", e_tcp, true, C(ipv4_drop_proto)},
    {"UDP (not yet)", e_udp, true, C(ipv4_drop_proto)},
    {"GRE", e_gre, true, C(ipv4_drop_proto)},
};

static void test_ipv4_input_table(void **state)
{
	struct th *t = *state;
	static const uint8_t payload[28] = {1, 2, 3};

	for (size_t k = 0; k < RTE_DIM(ipv4_cases); k++) {
		const struct ipv4_case *c = &ipv4_cases[k];
		uint8_t f[TH_FRAME_MAX];
		uint64_t saved[CTR__COUNT];
		size_t len = th_build_ipv4(f, &th_mac_port0, TH_PEER0_IP, TH_PORT0_IP, IPPROTO_ICMP,
		                           payload, sizeof(payload));
		struct th_ctr_delta want[] = {{C(ipv4_rx), 1}, {c->ctr, 1}, END};

		print_message("# %s\n", c->name);
		c->edit(f, &len);
		if (c->fix_cksum)
			th_ipv4_fix_cksum(f);
		th_ctr_save(t, 0, saved);
		net_input(&t->w[0], th_mbuf(f, len, 0), 0, false);
		th_ctr_only(t, 0, saved, want);
		assert_int_equal(th_flush(t, 0), 0);
	}
}

static void learn_peer(struct th *t, unsigned i)
{
	uint8_t f[TH_FRAME_MAX];
	size_t len = th_build_arp(f, &th_mac_port0, RTE_ARP_OP_REPLY, &th_mac_peer, TH_PEER0_IP,
	                          &th_mac_port0, TH_PORT0_IP);

	net_input(&t->w[i], th_mbuf(f, len, 0), 0, false);
}

static size_t echo(uint8_t *f, size_t blen)
{
	uint8_t body[TH_FRAME_MAX];

	for (size_t k = 0; k < blen; k++)
		body[k] = (uint8_t)(k * 7);
	return th_build_icmp_echo(f, &th_mac_port0, TH_PEER0_IP, TH_PORT0_IP, 7, 9, body, blen);
}

/* RFC 1122 §3.2.1.7: a host delivers a packet addressed to it whatever its TTL. */
static void test_ttl1_delivered(void **state)
{
	struct th *t = *state;
	uint8_t f[TH_FRAME_MAX];
	size_t len = echo(f, 8);

	learn_peer(t, 0);
	th_ip_of(f)->time_to_live = 1;
	th_ipv4_fix_cksum(f);
	net_input(&t->w[0], th_mbuf(f, len, 0), 0, false);
	assert_int_equal(CTR(t, 0, icmp_echo_reply_tx), 1);
	assert_int_equal(th_flush(t, 0), 1);
}

/*
 * RFC 3021: on a /31 both addresses are hosts. The peer's address is not a
 * subnet broadcast: its packets are accepted and replies go to its MAC.
 */
static void test_slash31_peer_is_a_host(void **state)
{
	struct th *t = *state;
	uint8_t f[TH_FRAME_MAX], body[16] = "point-to-point";
	const uint32_t us = IP4(198, 18, 0, 0), peer = IP4(198, 18, 0, 1);
	struct rte_ether_hdr *eh;
	size_t len;

	t->nc.ports[0].addr = us;
	t->nc.ports[0].netmask = IP4(255, 255, 255, 254);
	t->nc.ports[0].prefix_len = 31;
	t->nc.routes[0].prefix = us;
	t->nc.routes[0].netmask = IP4(255, 255, 255, 254);
	t->nc.routes[0].prefix_len = 31;
	th_config_changed(t);

	len = th_build_arp(f, &th_mac_port0, RTE_ARP_OP_REPLY, &th_mac_peer, peer, &th_mac_port0, us);
	net_input(&t->w[0], th_mbuf(f, len, 0), 0, false);
	len = th_build_icmp_echo(f, &th_mac_port0, peer, us, 7, 9, body, sizeof(body));
	net_input(&t->w[0], th_mbuf(f, len, 0), 0, false);
	assert_int_equal(CTR(t, 0, ipv4_drop_bad_src), 0);
	assert_int_equal(CTR(t, 0, icmp_echo_reply_tx), 1);
	assert_int_equal(th_flush(t, 0), 1);
	eh = rte_pktmbuf_mtod(t->cap[0].pkts[0], struct rte_ether_hdr *);
	assert_true(rte_is_same_ether_addr(&eh->dst_addr, &th_mac_peer));
	th_cap_clear(t, 0);
}

/*
 * Ethernet pads a short frame to 60 bytes: the padding is not data. If it
 * were kept, the echo reply would carry it. Also when the padding sits in
 * a second segment of its own, or straddles two segments.
 */
static void test_padding_trimmed(void **state)
{
	struct th *t = *state;
	static const size_t splits[] = {0, 42, 48};

	learn_peer(t, 0);
	for (size_t k = 0; k < RTE_DIM(splits); k++) {
		uint8_t f[TH_FRAME_MAX];
		size_t len = echo(f, 8); /* 14 + 20 + 16 = 50 bytes */
		struct rte_mbuf *r;

		memset(f + len, 0xee, 60 - len);
		net_input(&t->w[0], th_mbuf(f, 60, splits[k]), 0, false);
		assert_int_equal(th_flush(t, 0), 1);
		r = t->cap[0].pkts[0];
		assert_int_equal(rte_pktmbuf_pkt_len(r), len);
		th_cap_clear(t, 0);
	}
	assert_int_equal(CTR(t, 0, icmp_echo_reply_tx), 3);
}

struct offload_case {
	const char *name;
	bool offload;
	uint64_t flags;
	bool corrupt;
	bool delivered;
};

static const struct offload_case offload_cases[] = {
    {"software, good", false, 0, false, true},
    {"software, bad", false, 0, true, false},
    {"software ignores a GOOD flag", false, RTE_MBUF_F_RX_IP_CKSUM_GOOD, true, false},
    {"offload GOOD trusted", true, RTE_MBUF_F_RX_IP_CKSUM_GOOD, true, true},
    {"offload BAD trusted", true, RTE_MBUF_F_RX_IP_CKSUM_BAD, false, false},
    {"offload NONE: header verified", true, RTE_MBUF_F_RX_IP_CKSUM_NONE, true, true},
    {"offload UNKNOWN: verify in software", true, RTE_MBUF_F_RX_IP_CKSUM_UNKNOWN, true, false},
    {"offload UNKNOWN, good", true, RTE_MBUF_F_RX_IP_CKSUM_UNKNOWN, false, true},
};

static void test_rx_cksum_offload(void **state)
{
	struct th *t = *state;

	for (size_t k = 0; k < RTE_DIM(offload_cases); k++) {
		const struct offload_case *c = &offload_cases[k];
		uint8_t f[TH_FRAME_MAX];
		size_t len =
		    th_build_ipv4(f, &th_mac_port0, TH_PEER0_IP, TH_PORT0_IP, IPPROTO_UDP, NULL, 0);
		uint64_t cks = CTR(t, 0, ipv4_drop_cksum), proto = CTR(t, 0, ipv4_drop_proto);
		struct rte_mbuf *m;

		print_message("# %s\n", c->name);
		t->nc.ports[0].rx_ip_cksum_offload = c->offload;
		if (c->corrupt)
			th_ip_of(f)->hdr_checksum ^= 0xffff;
		m = th_mbuf(f, len, 0);
		m->ol_flags |= c->flags;
		net_input(&t->w[0], m, 0, false);
		/* Delivered packets reach protocol dispatch (UDP: not yet). */
		assert_int_equal(CTR(t, 0, ipv4_drop_proto) - proto, c->delivered);
		assert_int_equal(CTR(t, 0, ipv4_drop_cksum) - cks, !c->delivered);
	}
}

static void test_output_fills_header(void **state)
{
	struct th *t = *state;
	const struct rte_ipv4_hdr *ip;
	const struct rte_ether_hdr *eh;
	struct rte_mbuf *m;

	learn_peer(t, 0);
	assert_int_equal(net_ipv4_output(&t->w[0], th_out_packet(TH_PEER0_IP, 1, 100)), PG_OK);
	assert_int_equal(th_flush(t, 0), 1);
	m = t->cap[0].pkts[0];
	eh = rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
	ip = (const struct rte_ipv4_hdr *)(eh + 1);
	assert_true(rte_is_same_ether_addr(&eh->dst_addr, &th_mac_peer));
	assert_true(rte_is_same_ether_addr(&eh->src_addr, &th_mac_port0));
	assert_int_equal(rte_be_to_cpu_16(eh->ether_type), RTE_ETHER_TYPE_IPV4);
	assert_int_equal(ip->src_addr, TH_PORT0_IP);
	assert_int_equal(ip->dst_addr, TH_PEER0_IP);
	assert_int_equal(ip->time_to_live, 64);
	assert_int_equal(rte_ipv4_cksum(ip), 0); /* valid */
	assert_int_equal(m->ol_flags & (RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM), 0);
	th_cap_clear(t, 0);

	/* A source and TTL set by the caller are kept. */
	m = th_out_packet(TH_PEER0_IP, 2, 10);
	ip = rte_pktmbuf_mtod(m, const struct rte_ipv4_hdr *);
	((struct rte_ipv4_hdr *)(uintptr_t)ip)->src_addr = TH_PORT1_IP;
	((struct rte_ipv4_hdr *)(uintptr_t)ip)->time_to_live = 5;
	assert_int_equal(net_ipv4_output(&t->w[0], m), PG_OK);
	assert_int_equal(th_flush(t, 0), 1);
	ip = rte_pktmbuf_mtod_offset(t->cap[0].pkts[0], const struct rte_ipv4_hdr *, 14);
	assert_int_equal(ip->src_addr, TH_PORT1_IP);
	assert_int_equal(ip->time_to_live, 5);
	assert_int_equal(rte_ipv4_cksum(ip), 0);
}

static void test_output_tx_cksum_offload(void **state)
{
	struct th *t = *state;
	const struct rte_ipv4_hdr *ip;
	struct rte_mbuf *m;

	t->nc.ports[0].tx_ip_cksum_offload = true;
	learn_peer(t, 0);
	assert_int_equal(net_ipv4_output(&t->w[0], th_out_packet(TH_PEER0_IP, 1, 10)), PG_OK);
	assert_int_equal(th_flush(t, 0), 1);
	m = t->cap[0].pkts[0];
	ip = rte_pktmbuf_mtod_offset(m, const struct rte_ipv4_hdr *, 14);
	assert_int_equal(m->ol_flags & (RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM),
	                 RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM);
	assert_int_equal(m->l2_len, 14);
	assert_int_equal(m->l3_len, 20);
	assert_int_equal(ip->hdr_checksum, 0); /* the NIC fills it */
}

static void test_output_drops(void **state)
{
	struct th *t = *state;
	struct rte_ipv4_hdr *ip;
	struct rte_mbuf *m;

	/* Larger than the port MTU: we never fragment. */
	learn_peer(t, 0);
	assert_int_equal(net_ipv4_output(&t->w[0], th_out_packet(TH_PEER0_IP, 1, 1481)), PG_ERROR);
	assert_int_equal(CTR(t, 0, ipv4_out_drop_mtu), 1);
	assert_int_equal(net_ipv4_output(&t->w[0], th_out_packet(TH_PEER0_IP, 1, 1480)), PG_OK);

	/* No room in front for the Ethernet header: data at the buffer start. */
	m = th_out_packet(TH_PEER0_IP, 2, 10);
	ip = rte_pktmbuf_mtod(m, struct rte_ipv4_hdr *);
	memmove(m->buf_addr, ip, rte_pktmbuf_data_len(m));
	m->data_off = 0;
	assert_int_equal(net_ipv4_output(&t->w[0], m), PG_ERROR);
	assert_int_equal(CTR(t, 0, ipv4_out_drop_headroom), 1);

	/* No route once the default route is gone. */
	t->nc.nroutes = 3;
	assert_int_equal(net_ipv4_output(&t->w[0], th_out_packet(IP4(192, 0, 2, 1), 3, 10)),
	                 PG_DECLINED);
	assert_int_equal(CTR(t, 0, route_drop_noroute), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_ipv4_input_table, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_ttl1_delivered, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_slash31_peer_is_a_host, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_padding_trimmed, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_rx_cksum_offload, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_output_fills_header, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_output_tx_cksum_offload, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_output_drops, th_setup1, th_teardown),
	};
	int rc;

	th_eal_init();
	rc = cmocka_run_group_tests_name("net_ipv4", tests, NULL, NULL);
	th_eal_fini();
	return rc;
}
