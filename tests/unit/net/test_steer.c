/*
 * test_steer.c - flow ownership: the 4-tuple hash is symmetric and spreads
 * evenly; a TCP frame on the wrong worker goes to its owner's ring once
 * (never again from there); non-TCP/UDP stays on the receiving worker.
 */
#include <stdlib.h>
#include <string.h>

#include <rte_tcp.h>

#include "net_harness.h"
#include "result.h"

static uint32_t rnd32(unsigned *seed)
{
	return ((uint32_t)rand_r(seed) << 16) ^ (uint32_t)rand_r(seed);
}

static void test_hash_symmetric(void **state)
{
	unsigned seed = 12345;

	(void)state;
	for (int k = 0; k < 200000; k++) {
		uint32_t a = rnd32(&seed), b = rnd32(&seed);
		uint16_t p = (uint16_t)rnd32(&seed), q = (uint16_t)rnd32(&seed);

		assert_int_equal(steer_hash4(a, b, p, q), steer_hash4(b, a, q, p));
	}
}

/* Not a constant and not a function of one field only. */
static void test_hash_mixes_every_field(void **state)
{
	uint32_t base =
	    steer_hash4(TH_PEER0_IP, TH_PORT0_IP, rte_cpu_to_be_16(40000), rte_cpu_to_be_16(25));

	(void)state;
	assert_int_not_equal(base, steer_hash4(IP4(198, 18, 0, 3), TH_PORT0_IP,
	                                       rte_cpu_to_be_16(40000), rte_cpu_to_be_16(25)));
	assert_int_not_equal(base, steer_hash4(TH_PEER0_IP, TH_PORT1_IP, rte_cpu_to_be_16(40000),
	                                       rte_cpu_to_be_16(25)));
	assert_int_not_equal(base, steer_hash4(TH_PEER0_IP, TH_PORT0_IP, rte_cpu_to_be_16(40001),
	                                       rte_cpu_to_be_16(25)));
	assert_int_not_equal(base, steer_hash4(TH_PEER0_IP, TH_PORT0_IP, rte_cpu_to_be_16(40000),
	                                       rte_cpu_to_be_16(587)));
}

/*
 * The realistic case: many clients of one subnet to one address and port,
 * random source ports. Every worker within 5% of its fair share.
 */
static void test_distribution(void **state)
{
	static const uint32_t nworkers[] = {2, 3, 4};
	unsigned seed = 777;
	const int n = 100000;

	(void)state;
	for (size_t k = 0; k < RTE_DIM(nworkers); k++) {
		unsigned count[4] = {0};

		for (int i = 0; i < n; i++) {
			uint32_t src = IP4(198, 18, 0, 2 + rnd32(&seed) % 250);
			uint16_t sport = rte_cpu_to_be_16((uint16_t)(32768 + rnd32(&seed) % 28000));

			count[steer_hash4(src, TH_PORT0_IP, sport, rte_cpu_to_be_16(25)) %
			      nworkers[k]]++;
		}
		for (uint32_t w = 0; w < nworkers[k]; w++) {
			double share = (double)count[w] * nworkers[k] / n;

			print_message("# %u workers: worker %u share %.3f\n", nworkers[k], w,
			              share);
			assert_true(share > 0.95 && share < 1.05);
		}
	}
}

static struct rte_mbuf *tcp_frame(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport)
{
	uint8_t f[TH_FRAME_MAX];
	size_t len = th_build_tcp(f, src, dst, rte_cpu_to_be_16(sport), rte_cpu_to_be_16(dport));

	return th_mbuf(f, len, 0);
}

static void test_owner_rules(void **state)
{
	struct th *t = *state;
	uint8_t f[TH_FRAME_MAX];
	size_t len;
	struct rte_mbuf *m;
	uint32_t h =
	    steer_hash4(TH_PEER0_IP, TH_PORT0_IP, rte_cpu_to_be_16(1000), rte_cpu_to_be_16(25));

	m = tcp_frame(TH_PEER0_IP, TH_PORT0_IP, 1000, 25);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(steer_owner(&t->w[i], m), h % 4);
	rte_pktmbuf_free(m);

	/* Fragments, short TCP headers and ICMP stay with the receiver. */
	len = th_build_tcp(f, TH_PEER0_IP, TH_PORT0_IP, 1, 2);
	th_ip_of(f)->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG);
	m = th_mbuf(f, len, 0);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(steer_owner(&t->w[i], m), i);
	rte_pktmbuf_free(m);
	th_ip_of(f)->fragment_offset = 0;
	m = th_mbuf(f, len - 1, 0); /* TCP header one byte short */
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(steer_owner(&t->w[i], m), i);
	rte_pktmbuf_free(m);
	len = th_build_icmp_echo(f, &th_mac_port0, TH_PEER0_IP, TH_PORT0_IP, 1, 1, NULL, 0);
	m = th_mbuf(f, len, 0);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(steer_owner(&t->w[i], m), i);
	rte_pktmbuf_free(m);
}

static void test_misdirected_tcp_is_steered_once(void **state)
{
	struct th *t = *state;
	uint16_t sport = 1000, first;
	uint32_t owner;

	/* Find a flow that worker 0 does not own. */
	while ((owner = steer_hash4(TH_PEER0_IP, TH_PORT0_IP, rte_cpu_to_be_16(sport),
	                            rte_cpu_to_be_16(25)) %
	                4) == 0)
		sport++;
	first = sport;
	net_input(&t->w[0], tcp_frame(TH_PEER0_IP, TH_PORT0_IP, sport, 25), 0, false);
	assert_int_equal(CTR(t, 0, steer_fwd), 1);
	assert_int_equal(CTR(t, 0, ipv4_rx), 0);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(rte_ring_count(t->rings[i]), i == owner ? 1 : 0);

	/* The owner takes it as its own: into IPv4, not steered again. */
	assert_int_equal(th_deliver_steered(t, owner), 1);
	assert_int_equal(CTR(t, owner, steer_fwd), 0);
	assert_int_equal(CTR(t, owner, ipv4_rx), 1);
	assert_int_equal(CTR(t, owner, ipv4_drop_proto), 1); /* TCP arrives later */

	/* Even if a steered frame hashed elsewhere (config change), it stays. */
	while (
	    steer_hash4(TH_PEER0_IP, TH_PORT0_IP, rte_cpu_to_be_16(sport), rte_cpu_to_be_16(25)) %
	        4 ==
	    1)
		sport++;
	net_input(&t->w[1], tcp_frame(TH_PEER0_IP, TH_PORT0_IP, sport, 25), 0, true);
	assert_int_equal(CTR(t, 1, steer_fwd), 0);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(rte_ring_count(t->rings[i]), 0);

	/* The owner's own flow, received by the owner, stays there. */
	net_input(&t->w[owner], tcp_frame(TH_PEER0_IP, TH_PORT0_IP, first, 25), 0, false);
	assert_int_equal(CTR(t, owner, steer_fwd), 0);
	assert_int_equal(CTR(t, owner, ipv4_rx), 2);
}

/* Frames for other hosts never cost a ring trip. */
static void test_not_ours_not_steered(void **state)
{
	struct th *t = *state;

	for (uint16_t sport = 1000; sport < 1100; sport++) {
		struct rte_mbuf *m = tcp_frame(TH_PEER0_IP, TH_PORT0_IP, sport, 25);
		struct rte_ether_hdr *eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);

		eh->dst_addr = th_mac_peer2;
		net_input(&t->w[0], m, 0, false);
	}
	assert_int_equal(CTR(t, 0, steer_fwd), 0);
	assert_int_equal(CTR(t, 0, eth_drop_not_for_us), 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hash_symmetric),
	    cmocka_unit_test(test_hash_mixes_every_field),
	    cmocka_unit_test(test_distribution),
	    cmocka_unit_test_setup_teardown(test_owner_rules, th_setup4, th_teardown),
	    cmocka_unit_test_setup_teardown(test_misdirected_tcp_is_steered_once, th_setup4,
	                                    th_teardown),
	    cmocka_unit_test_setup_teardown(test_not_ours_not_steered, th_setup4, th_teardown),
	};
	int rc;

	th_eal_init();
	rc = cmocka_run_group_tests_name("net_steer", tests, NULL, NULL);
	th_eal_fini();
	return rc;
}
