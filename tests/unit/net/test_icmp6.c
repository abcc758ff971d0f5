/*
 * test_icmp6.c - ICMPv6 (RFC 4443): echo replies keep identifier,
 * sequence and data, swap addresses, carry a valid checksum and go to the
 * requester's MAC (resolving it when unknown), from a link-local address
 * to a link-local requester; bad, short, unknown and multicast requests
 * get no reply, each counted.
 */
#include <string.h>

#include "net_harness.h"
#include "result.h"

static const uint8_t ll_peer[16] = {0xfe, 0x80, [15] = 0x22};
static const uint8_t all_nodes[16] = {0xff, 0x02, [15] = 1};

static void check_reply(struct rte_mbuf *r, const uint8_t *self, const uint8_t *peer,
                        const uint8_t *body, size_t blen)
{
	const struct rte_ether_hdr *eh = rte_pktmbuf_mtod(r, const struct rte_ether_hdr *);
	const struct rte_ipv6_hdr *ip = (const struct rte_ipv6_hdr *)(eh + 1);
	uint8_t msg[TH_FRAME_MAX];
	const uint8_t *icmp;

	assert_true(rte_is_same_ether_addr(&eh->dst_addr, &th_mac_peer));
	assert_true(rte_is_same_ether_addr(&eh->src_addr, &th_mac_port0));
	assert_int_equal(rte_pktmbuf_pkt_len(r), 14 + 40 + 8 + blen);
	assert_int_equal(rte_be_to_cpu_16(ip->payload_len), 8 + blen);
	assert_int_equal(ip->proto, IPPROTO_ICMPV6);
	assert_int_equal(ip->hop_limits, 64);
	assert_memory_equal(ip->src_addr, self, 16);
	assert_memory_equal(ip->dst_addr, peer, 16);
	icmp = rte_pktmbuf_read(r, 54, (uint32_t)(8 + blen), msg);
	assert_non_null(icmp);
	if (icmp != msg)
		memcpy(msg, icmp, 8 + blen);
	assert_int_equal(th_icmp6_cksum(self, peer, msg, 8 + blen), 0);
	assert_int_equal(msg[0], 129);
	assert_int_equal(msg[1], 0);
	assert_int_equal(msg[4] << 8 | msg[5], 0x4242);
	assert_int_equal(msg[6] << 8 | msg[7], 17);
	if (blen > 0)
		assert_memory_equal(msg + 8, body, blen);
}

static void test_echo_reply(void **state)
{
	struct th *t = *state;
	static const size_t sizes[] = {0, 1, 56, 1452};
	static const size_t splits[] = {0, 0, 70, 700};

	th_ipv6_setup(t, true);
	th_nd_learn(t, 0, 0, th_ip6_peer0, &th_mac_peer);
	for (size_t k = 0; k < RTE_DIM(sizes); k++) {
		uint8_t body[1500], f[TH_FRAME_MAX];
		size_t len;

		for (size_t b = 0; b < sizes[k]; b++)
			body[b] = (uint8_t)(b * 13 + k);
		len = th_build_echo6(f, &th_mac_port0, th_ip6_peer0, th_ip6_port0, 0x4242, 17, body,
		                     sizes[k]);
		net_input(&t->w[0], th_mbuf(f, len, splits[k]), 0, false);
		assert_int_equal(th_flush(t, 0), 1);
		check_reply(t->cap[0].pkts[0], th_ip6_port0, th_ip6_peer0, body, sizes[k]);
		th_cap_clear(t, 0);
	}
	assert_int_equal(CTR(t, 0, icmp6_echo_rx), RTE_DIM(sizes));
	assert_int_equal(CTR(t, 0, icmp6_echo_reply_tx), RTE_DIM(sizes));
}

/* Link-local to link-local: the reply leaves the port the request came in on. */
static void test_echo_link_local(void **state)
{
	struct th *t = *state;
	uint8_t f[TH_FRAME_MAX];
	size_t len;

	th_ipv6_setup(t, true);
	th_nd_learn(t, 0, 0, ll_peer, &th_mac_peer);
	len = th_build_echo6(f, &th_mac_port0, ll_peer, th_ll6(t, 0), 0x4242, 17, "ll", 2);
	net_input(&t->w[0], th_mbuf(f, len, 0), 0, false);
	assert_int_equal(th_flush(t, 0), 1);
	assert_int_equal(t->cap[0].port[0], 0);
	check_reply(t->cap[0].pkts[0], th_ll6(t, 0), ll_peer, (const uint8_t *)"ll", 2);
}

/* Unknown requester: the reply waits for ND, then leaves. */
static void test_echo_reply_resolves(void **state)
{
	struct th *t = *state;
	uint8_t f[TH_FRAME_MAX], na[32];
	size_t len;

	th_ipv6_setup(t, true);
	len = th_build_echo6(f, &th_mac_port0, th_ip6_peer0, th_ip6_port0, 0x4242, 17, NULL, 0);
	net_input(&t->w[0], th_mbuf(f, len, 0), 0, false);
	assert_int_equal(th_flush(t, 0), 1); /* the solicitation */
	assert_int_equal(CTR(t, 0, nd_ns_tx), 5);
	th_cap_clear(t, 0);
	memset(na, 0, sizeof(na));
	na[0] = 136;
	na[4] = 0x60; /* solicited, override */
	memcpy(na + 8, th_ip6_peer0, 16);
	na[24] = 2;
	na[25] = 1;
	memcpy(na + 26, th_mac_peer.addr_bytes, 6);
	len = th_build_icmp6(f, &th_mac_port0, th_ip6_peer0, th_ip6_port0, 255, NULL, 0, 0, na,
	                     sizeof(na));
	net_input(&t->w[0], th_mbuf(f, len, 0), 0, false);
	assert_int_equal(th_flush(t, 0), 1);
	check_reply(t->cap[0].pkts[0], th_ip6_port0, th_ip6_peer0, NULL, 0);
}

struct icmp6_drop {
	const char *name;
	uint8_t type, code;
	size_t mlen;
	bool bad_cksum, to_group;
	int ctr;
};

static void test_icmp6_drops(void **state)
{
	struct th *t = *state;
	static const struct icmp6_drop cases[] = {
	    {"bad checksum", 128, 0, 16, true, false, CTR_icmp6_drop_cksum},
	    {"3 bytes", 128, 0, 3, false, false, CTR_icmp6_drop_short},
	    {"echo without identifier", 128, 0, 6, false, false, CTR_icmp6_drop_short},
	    {"echo to all nodes", 128, 0, 16, false, true, CTR_icmp6_drop_mcast_echo},
	    {"echo reply (not ours)", 129, 0, 16, false, false, CTR_icmp6_drop_type},
	    {"unknown informational 200", 200, 0, 16, false, false, CTR_icmp6_drop_type},
	    {"destination unreachable", 1, 4, 56, false, false, CTR_icmp6_error_rx},
	    {"parameter problem", 4, 0, 56, false, false, CTR_icmp6_error_rx},
	    {"packet too big (no TCP here)", 2, 0, 56, false, false, CTR_icmp6_error_rx},
	    {"unknown error 100", 100, 0, 56, false, false, CTR_icmp6_error_rx},
	};

	th_ipv6_setup(t, true);
	th_nd_learn(t, 0, 0, th_ip6_peer0, &th_mac_peer);
	for (size_t k = 0; k < RTE_DIM(cases); k++) {
		const struct icmp6_drop *c = &cases[k];
		static const struct rte_ether_addr all = {{0x33, 0x33, 0, 0, 0, 1}};
		uint8_t msg[64], f[TH_FRAME_MAX];
		uint64_t before = t->w[0].ctr[c->ctr];
		size_t len;

		print_message("# %s\n", c->name);
		memset(msg, 0, sizeof(msg));
		msg[0] = c->type;
		msg[1] = c->code;
		len = th_build_icmp6(f, c->to_group ? &all : &th_mac_port0, th_ip6_peer0,
		                     c->to_group ? all_nodes : th_ip6_port0, 64, NULL, 0, 0, msg,
		                     c->mlen);
		if (c->bad_cksum)
			f[54 + 2] ^= 0x10;
		net_input(&t->w[0], th_mbuf(f, len, 0), 0, false);
		assert_int_equal(t->w[0].ctr[c->ctr], before + 1);
		assert_int_equal(th_flush(t, 0), 0);
	}
	assert_int_equal(CTR(t, 0, icmp6_echo_reply_tx), 0);
	assert_int_equal(CTR(t, 0, tcp_pmtu_update), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_echo_reply, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_echo_link_local, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_echo_reply_resolves, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_icmp6_drops, th_setup1, th_teardown),
	};
	int rc;

	th_eal_init();
	rc = cmocka_run_group_tests_name("net_icmp6", tests, NULL, NULL);
	th_eal_fini();
	return rc;
}
