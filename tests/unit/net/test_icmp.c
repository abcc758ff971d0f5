/*
 * test_icmp.c - ICMP echo (RFC 792, RFC 1122 §3.2.2.6): the reply keeps
 * identifier, sequence and data, swaps addresses, carries valid checksums
 * and goes to the requester's MAC; bad, short, other-type and non-local
 * requests get no reply.
 */
#include <string.h>

#include <rte_icmp.h>

#include "net_harness.h"
#include "result.h"

static void learn(struct th *t, uint16_t port, const struct rte_ether_addr *mac, uint32_t ip)
{
	uint8_t f[TH_FRAME_MAX];
	const struct rte_ether_addr *ours = port == 0 ? &th_mac_port0 : &th_mac_port1;
	uint32_t our_ip = port == 0 ? TH_PORT0_IP : TH_PORT1_IP;
	size_t len = th_build_arp(f, ours, RTE_ARP_OP_REPLY, mac, ip, ours, our_ip);

	net_input(&t->w[0], th_mbuf(f, len, 0), port, false);
}

static void check_reply(struct rte_mbuf *r, const struct rte_ether_addr *dst_mac, uint32_t peer,
                        const uint8_t *body, size_t blen)
{
	const struct rte_ether_hdr *eh = rte_pktmbuf_mtod(r, const struct rte_ether_hdr *);
	const struct rte_ipv4_hdr *ip = (const struct rte_ipv4_hdr *)(eh + 1);
	const struct rte_icmp_hdr *icmp = (const struct rte_icmp_hdr *)(ip + 1);
	uint16_t sum;

	assert_true(rte_is_same_ether_addr(&eh->dst_addr, dst_mac));
	assert_true(rte_is_same_ether_addr(&eh->src_addr, &th_mac_port0));
	assert_int_equal(rte_pktmbuf_pkt_len(r), 14 + 20 + 8 + blen);
	assert_int_equal(ip->version_ihl, RTE_IPV4_VHL_DEF);
	assert_int_equal(rte_be_to_cpu_16(ip->total_length), 20 + 8 + blen);
	assert_int_equal(ip->src_addr, TH_PORT0_IP);
	assert_int_equal(ip->dst_addr, peer);
	assert_int_equal(ip->next_proto_id, IPPROTO_ICMP);
	assert_true(ip->time_to_live > 0);
	assert_int_equal(rte_ipv4_cksum(ip), 0);
	assert_int_equal(icmp->icmp_type, RTE_IP_ICMP_ECHO_REPLY);
	assert_int_equal(icmp->icmp_code, 0);
	assert_int_equal(rte_be_to_cpu_16(icmp->icmp_ident), 0x4242);
	assert_int_equal(rte_be_to_cpu_16(icmp->icmp_seq_nb), 17);
	assert_int_equal(rte_raw_cksum_mbuf(r, 34, (uint32_t)(8 + blen), &sum), 0);
	assert_int_equal(sum, 0xffff);
	for (size_t k = 0; k < blen; k++) {
		const uint8_t *b = rte_pktmbuf_read(r, (uint32_t)(42 + k), 1, NULL);

		assert_non_null(b);
		assert_int_equal(*b, body[k]);
	}
}

static void test_echo_reply(void **state)
{
	struct th *t = *state;
	static const size_t sizes[] = {0, 1, 56, 1472};
	static const size_t splits[] = {0, 0, 60, 700};

	learn(t, 0, &th_mac_peer, TH_PEER0_IP);
	for (size_t k = 0; k < RTE_DIM(sizes); k++) {
		uint8_t body[1500], f[TH_FRAME_MAX];
		size_t len;

		for (size_t b = 0; b < sizes[k]; b++)
			body[b] = (uint8_t)(b * 13 + k);
		len = th_build_icmp_echo(f, &th_mac_port0, TH_PEER0_IP, TH_PORT0_IP, 0x4242, 17,
		                         body, sizes[k]);
		net_input(&t->w[0], th_mbuf(f, len, splits[k]), 0, false);
		assert_int_equal(th_flush(t, 0), 1);
		check_reply(t->cap[0].pkts[0], &th_mac_peer, TH_PEER0_IP, body, sizes[k]);
		th_cap_clear(t, 0);
	}
	assert_int_equal(CTR(t, 0, icmp_echo_rx), RTE_DIM(sizes));
	assert_int_equal(CTR(t, 0, icmp_echo_reply_tx), RTE_DIM(sizes));
}

/* Options of the request are not echoed; the reply header is 20 bytes. */
static void test_echo_with_ip_options(void **state)
{
	struct th *t = *state;
	uint8_t f[TH_FRAME_MAX], g[TH_FRAME_MAX];
	static const uint8_t body[4] = {9, 8, 7, 6};
	size_t len = th_build_icmp_echo(f, &th_mac_port0, TH_PEER0_IP, TH_PORT0_IP, 0x4242, 17,
	                                body, sizeof(body));
	struct rte_ipv4_hdr *ip;

	learn(t, 0, &th_mac_peer, TH_PEER0_IP);
	/* Insert 4 bytes of options (NOP x3, EOL) after the fixed header. */
	memcpy(g, f, 34);
	memcpy(g + 34, "\x01\x01\x01\x00", 4);
	memcpy(g + 38, f + 34, len - 34);
	ip = th_ip_of(g);
	ip->version_ihl = 0x46;
	ip->total_length = rte_cpu_to_be_16(rte_be_to_cpu_16(ip->total_length) + 4);
	th_ipv4_fix_cksum(g);
	net_input(&t->w[0], th_mbuf(g, len + 4, 0), 0, false);
	assert_int_equal(th_flush(t, 0), 1);
	check_reply(t->cap[0].pkts[0], &th_mac_peer, TH_PEER0_IP, body, sizeof(body));
}

/* Off-link requester: the reply follows the route, to the gateway's MAC. */
static void test_echo_reply_routed(void **state)
{
	struct th *t = *state;
	uint8_t f[TH_FRAME_MAX];
	size_t len = th_build_icmp_echo(f, &th_mac_port0, IP4(203, 0, 113, 5), TH_PORT0_IP, 0x4242,
	                                17, NULL, 0);

	learn(t, 0, &th_mac_peer2, TH_GW0_IP);
	net_input(&t->w[0], th_mbuf(f, len, 0), 0, false);
	assert_int_equal(th_flush(t, 0), 1);
	check_reply(t->cap[0].pkts[0], &th_mac_peer2, IP4(203, 0, 113, 5), NULL, 0);
}

/* Unknown requester MAC: the reply waits for ARP, then leaves. */
static void test_echo_reply_resolves(void **state)
{
	struct th *t = *state;
	uint8_t f[TH_FRAME_MAX];
	size_t len =
	    th_build_icmp_echo(f, &th_mac_port0, TH_PEER0_IP, TH_PORT0_IP, 0x4242, 17, NULL, 0);

	net_input(&t->w[0], th_mbuf(f, len, 0), 0, false);
	assert_int_equal(th_flush(t, 0), 1); /* the ARP request */
	assert_int_equal(CTR(t, 0, arp_request_tx), 1);
	th_cap_clear(t, 0);
	learn(t, 0, &th_mac_peer, TH_PEER0_IP);
	assert_int_equal(th_flush(t, 0), 1);
	check_reply(t->cap[0].pkts[0], &th_mac_peer, TH_PEER0_IP, NULL, 0);
}

struct icmp_drop_case {
	const char *name;
	void (*edit)(uint8_t *f, size_t *len);
	int ctr;
};

static struct rte_icmp_hdr *icmp_in(uint8_t *f)
{
	return (struct rte_icmp_hdr *)(th_ip_of(f) + 1);
}
static void e_cksum(uint8_t *f, size_t *len)
{
	(void)len;
	icmp_in(f)->icmp_cksum ^= 0x0001;
}
static void e_data_corrupt(uint8_t *f, size_t *len)
{
	(void)len;
	((uint8_t *)(icmp_in(f) + 1))[3] ^= 0x80;
}
static void e_short(uint8_t *f, size_t *len)
{
	*len = 14 + 20 + 4;
	th_ip_of(f)->total_length = rte_cpu_to_be_16(24);
	th_ipv4_fix_cksum(f);
}
static void retype(uint8_t *f, uint8_t type)
{
	struct rte_icmp_hdr *icmp = icmp_in(f);
	size_t ilen = rte_be_to_cpu_16(th_ip_of(f)->total_length) - 20;

	icmp->icmp_type = type;
	icmp->icmp_cksum = 0;
	icmp->icmp_cksum = (uint16_t)~rte_raw_cksum(icmp, ilen);
}
static void e_echo_reply(uint8_t *f, size_t *len)
{
	(void)len;
	retype(f, RTE_IP_ICMP_ECHO_REPLY);
}
static void e_timestamp(uint8_t *f, size_t *len)
{
	(void)len;
	retype(f, 13);
}
static void e_unreachable(uint8_t *f, size_t *len)
{
	(void)len;
	retype(f, 3);
}
static void e_not_local(uint8_t *f, size_t *len)
{
	(void)len;
	th_ip_of(f)->dst_addr = IP4(198, 18, 0, 50);
	th_ipv4_fix_cksum(f);
}
static void e_ip_bcast(uint8_t *f, size_t *len)
{
	(void)len;
	((struct rte_ether_hdr *)f)->dst_addr = th_mac_bcast;
	th_ip_of(f)->dst_addr = IP4(198, 18, 0, 255);
	th_ipv4_fix_cksum(f);
}
static void e_link_bcast(uint8_t *f, size_t *len)
{
	(void)len;
	((struct rte_ether_hdr *)f)->dst_addr = th_mac_bcast;
}

static const struct icmp_drop_case icmp_drop_cases[] = {
    {"bad checksum", e_cksum, CTR_icmp_drop_cksum},
    {"corrupted data", e_data_corrupt, CTR_icmp_drop_cksum},
    {"truncated header", e_short, CTR_icmp_drop_short},
    {"echo reply (we never ask)", e_echo_reply, CTR_icmp_drop_type},
    {"timestamp", e_timestamp, CTR_icmp_drop_type},
    {"destination unreachable", e_unreachable, CTR_icmp_drop_type},
    {"echo to another host", e_not_local, CTR_ipv4_drop_not_for_us},
    {"echo to the subnet broadcast", e_ip_bcast, CTR_ipv4_drop_not_for_us},
    {"echo in a link broadcast", e_link_bcast, CTR_ipv4_drop_link_bcast},
};

static void test_echo_drops(void **state)
{
	struct th *t = *state;
	static const uint8_t body[16] = {1, 2, 3, 4, 5, 6, 7, 8};

	learn(t, 0, &th_mac_peer, TH_PEER0_IP);
	for (size_t k = 0; k < RTE_DIM(icmp_drop_cases); k++) {
		const struct icmp_drop_case *c = &icmp_drop_cases[k];
		uint8_t f[TH_FRAME_MAX];
		size_t len = th_build_icmp_echo(f, &th_mac_port0, TH_PEER0_IP, TH_PORT0_IP, 1, 2,
		                                body, sizeof(body));
		uint64_t before = t->w[0].ctr[c->ctr];

		print_message("# %s\n", c->name);
		c->edit(f, &len);
		net_input(&t->w[0], th_mbuf(f, len, 0), 0, false);
		assert_int_equal(t->w[0].ctr[c->ctr] - before, 1);
		assert_int_equal(th_flush(t, 0), 0);
	}
	assert_int_equal(CTR(t, 0, icmp_echo_reply_tx), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_echo_reply, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_echo_with_ip_options, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_echo_reply_routed, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_echo_reply_resolves, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_echo_drops, th_setup1, th_teardown),
	};
	int rc;

	th_eal_init();
	rc = cmocka_run_group_tests_name("net_icmp", tests, NULL, NULL);
	th_eal_fini();
	return rc;
}
