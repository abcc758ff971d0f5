/*
 * test_mld.c - MLD for the solicited-node groups (mld.c, RFC 3810): the
 * unsolicited reports when a port's addresses are configured (before DAD,
 * twice, from :: while the link-local address is tentative), answers to
 * general and group-specific queries within the Maximum Response Delay,
 * queries that are not (not link-local, hop limit, length), and an MLDv1
 * querier answered with MLDv1 reports until it has gone.
 */
#include <string.h>

#include "net_harness.h"
#include "result.h"

static const uint8_t all_nodes[16] = {0xff, 0x02, [15] = 1};
static const uint8_t v2_routers[16] = {0xff, 0x02, [15] = 0x16};
static const uint8_t querier[16] = {0xfe, 0x80, [15] = 1};
static const uint8_t unspec[16];
static const uint8_t ra_hbh[8] = {58, 0, 5, 2, 0, 0, 1, 0};
static const struct rte_ether_addr mac_all = {{0x33, 0x33, 0, 0, 0, 1}};
static const uint8_t mac_v2_routers[6] = {0x33, 0x33, 0, 0, 0, 0x16};

static void sn_of(const uint8_t a[16], uint8_t out[16])
{
	memset(out, 0, 16);
	out[0] = 0xff;
	out[1] = 0x02;
	out[11] = 1;
	out[12] = 0xff;
	memcpy(out + 13, a + 13, 3);
}

/* The MLD frames in worker i's capture (the others, DAD probes and the like, are freed). */
static unsigned mld_frames(struct th *t, unsigned i)
{
	struct th_capture *c = &t->cap[i];
	unsigned kept = 0;

	th_flush(t, i);
	for (unsigned k = 0; k < c->n; k++) {
		const uint8_t *f = rte_pktmbuf_mtod(c->pkts[k], const uint8_t *);

		if (f[20] == 0 && (f[62] == 143 || f[62] == 131)) {
			c->pkts[kept] = c->pkts[k];
			c->port[kept++] = c->port[k];
		} else {
			rte_pktmbuf_free(c->pkts[k]);
		}
	}
	c->n = kept;
	return kept;
}

/*
 * Check an MLDv2 report on port p: headers, and a record of `rtype` for each
 * of our groups - two, or one when both addresses share their low 24 bits
 * (port 0 of the fixture: fe80::ff:fe00:1 and 2001:db8:18::1).
 */
static void check_v2_report(struct th *t, unsigned k, uint16_t p, uint8_t rtype, const uint8_t *src)
{
	struct rte_mbuf *m = t->cap[0].pkts[k];
	const uint8_t *f = rte_pktmbuf_mtod(m, const uint8_t *);
	const struct rte_ipv6_hdr *ip = (const struct rte_ipv6_hdr *)(f + 14);
	const uint8_t *msg = f + 62;
	const uint8_t *addr = p == 0 ? th_ip6_port0 : th_ip6_port1;
	uint8_t groups[2][16];
	unsigned n;

	sn_of(th_ll6(t, p), groups[0]);
	sn_of(addr, groups[1]);
	n = memcmp(groups[0], groups[1], 16) == 0 ? 1 : 2;
	assert_int_equal(t->cap[0].port[k], p);
	assert_memory_equal(f, mac_v2_routers, 6);
	assert_int_equal(ip->hop_limits, 1);
	assert_int_equal(ip->proto, 0);
	assert_memory_equal(ip->dst_addr, v2_routers, 16);
	assert_memory_equal(ip->src_addr, src, 16);
	assert_memory_equal(f + 54, ra_hbh, 8); /* Router Alert, MLD */
	assert_int_equal(rte_be_to_cpu_16(ip->payload_len), 8 + 8 + 20 * n);
	assert_int_equal(rte_pktmbuf_pkt_len(m), 62 + 8 + 20 * n);
	assert_int_equal(msg[0], 143);
	assert_int_equal(msg[7], n);
	assert_int_equal(th_icmp6_cksum(ip->src_addr, ip->dst_addr, msg, 8 + 20 * n), 0);
	for (unsigned g = 0; g < n; g++) {
		assert_int_equal(msg[8 + 20 * g], rtype);
		assert_memory_equal(msg + 12 + 20 * g, groups[g], 16);
	}
}

/* A query to port p from `src` with hop limit `hop`, for `group` (NULL: general), `len` bytes. */
static void query(struct th *t, uint16_t p, const uint8_t *src, uint8_t hop, const uint8_t *group,
                  size_t len, uint16_t max_resp_ms)
{
	uint8_t msg[28], f[TH_FRAME_MAX];
	size_t flen;

	memset(msg, 0, sizeof(msg));
	msg[0] = 130;
	msg[4] = (uint8_t)(max_resp_ms >> 8);
	msg[5] = (uint8_t)max_resp_ms;
	if (group != NULL)
		memcpy(msg + 8, group, 16);
	flen =
	    th_build_icmp6(f, group != NULL ? (p == 0 ? &th_mac_port0 : &th_mac_port1) : &mac_all,
	                   src, group != NULL ? group : all_nodes, hop, ra_hbh, 8, 0, msg, len);
	net_input(&t->w[0], th_mbuf(f, flen, 0), p, false);
}

static void test_unsolicited_reports(void **state)
{
	struct th *t = *state;

	th_ipv6_setup(t, false);
	th_advance(t, 0);
	/* RFC 4862 §5.4.2: joined before the first DAD probe; from :: while tentative */
	assert_int_equal(mld_frames(t, 0), 2);
	check_v2_report(t, 0, 0, 4 /* CHANGE_TO_EXCLUDE */, unspec);
	check_v2_report(t, 1, 1, 4, unspec);
	th_cap_clear(t, 0);
	assert_int_equal(CTR(t, 0, mld_report_tx), 2);
	/* Robustness Variable 2: once more a second later, then silence */
	th_advance(t, TH_NS_PER_S);
	assert_int_equal(mld_frames(t, 0), 2);
	th_cap_clear(t, 0);
	th_advance(t, 10 * TH_NS_PER_S);
	assert_int_equal(mld_frames(t, 0), 0);
	assert_int_equal(CTR(t, 0, mld_report_tx), 4);
}

static void test_general_query(void **state)
{
	struct th *t = *state;

	th_ipv6_setup(t, true);
	query(t, 1, querier, 1, NULL, 28, 1000);
	assert_int_equal(CTR(t, 0, mld_query_rx), 1);
	/* within the Maximum Response Delay (1 s), once; from the link-local address */
	th_advance(t, 1001 * 1000 * 1000);
	assert_int_equal(mld_frames(t, 0), 1);
	check_v2_report(t, 0, 1, 2 /* MODE_IS_EXCLUDE */, th_ll6(t, 1));
	th_cap_clear(t, 0);
	th_advance(t, 5 * TH_NS_PER_S);
	assert_int_equal(mld_frames(t, 0), 0);
}

static void test_specific_query(void **state)
{
	struct th *t = *state;
	uint8_t sn[16];

	th_ipv6_setup(t, true);
	sn_of((const uint8_t[16]){0x20, 0x01, 0x0d, 0xb8, 0, 0x19, [15] = 0x77}, sn); /* not ours */
	query(t, 1, querier, 1, sn, 28, 100);
	assert_int_equal(CTR(t, 0, ipv6_drop_not_for_us), 1);
	sn_of(th_ip6_port1, sn);
	query(t, 1, querier, 1, sn, 28, 100);
	assert_int_equal(CTR(t, 0, mld_query_rx), 1);
	th_advance(t, 101 * 1000 * 1000);
	assert_int_equal(mld_frames(t, 0), 1);
	check_v2_report(t, 0, 1, 2, th_ll6(t, 1));
}

/* RFC 3810 §5.1.14-15: queries from global sources, routed ones, odd lengths: not queries. */
static void test_invalid_queries(void **state)
{
	struct th *t = *state;

	th_ipv6_setup(t, true);
	query(t, 0, th_ip6_peer0, 1, NULL, 28, 1000);
	query(t, 0, querier, 64, NULL, 28, 1000);
	query(t, 0, querier, 1, NULL, 26, 1000);
	assert_int_equal(CTR(t, 0, mld_drop_invalid), 3);
	assert_int_equal(CTR(t, 0, mld_query_rx), 0);
	th_advance(t, 2 * TH_NS_PER_S);
	assert_int_equal(mld_frames(t, 0), 0);
}

/* RFC 3810 §8.2: an MLDv1 querier gets MLDv1 reports, one per group, to the group. */
static void test_v1_querier(void **state)
{
	struct th *t = *state;
	uint8_t sn_ll[16], sn_g[16];

	th_ipv6_setup(t, true);
	sn_of(th_ll6(t, 1), sn_ll);
	sn_of(th_ip6_port1, sn_g);
	query(t, 1, querier, 1, NULL, 24, 500);
	th_advance(t, 501 * 1000 * 1000);
	assert_int_equal(mld_frames(t, 0), 2);
	for (unsigned k = 0; k < 2; k++) {
		const uint8_t *f = rte_pktmbuf_mtod(t->cap[0].pkts[k], const uint8_t *);
		const struct rte_ipv6_hdr *ip = (const struct rte_ipv6_hdr *)(f + 14);

		assert_int_equal(f[62], 131);
		assert_memory_equal(ip->dst_addr, k == 0 ? sn_ll : sn_g, 16);
		assert_memory_equal(f + 62 + 8, ip->dst_addr, 16);
		assert_int_equal(f[0], 0x33);
		assert_int_equal(f[2], 0xff);
		assert_int_equal(th_icmp6_cksum(ip->src_addr, ip->dst_addr, f + 62, 24), 0);
	}
	th_cap_clear(t, 0);
	/* 260 s without MLDv1 queries: back to MLDv2 */
	th_advance(t, 261 * TH_NS_PER_S);
	query(t, 1, querier, 1, NULL, 28, 0);
	th_advance(t, 0);
	assert_int_equal(mld_frames(t, 0), 1);
	check_v2_report(t, 0, 1, 2, th_ll6(t, 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_unsolicited_reports, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_general_query, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_specific_query, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_invalid_queries, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_v1_querier, th_setup1, th_teardown),
	};
	int rc;

	th_eal_init();
	rc = cmocka_run_group_tests_name("net_mld", tests, NULL, NULL);
	th_eal_fini();
	return rc;
}
