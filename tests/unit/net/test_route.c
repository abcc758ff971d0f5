/*
 * test_route.c - route lookup (connected, static, default, longest prefix,
 * no route) and the next hop that output resolves for each.
 */
#include "net_harness.h"
#include "result.h"

struct route_case {
	const char *name;
	uint32_t dst;
	int rc;
	uint8_t port;
	uint32_t nexthop; /* what ARP must be asked for */
};

static void test_route_table(void **state)
{
	struct th *t = *state;
	const struct route_case cases[] = {
	    {"connected port 0", IP4(198, 18, 0, 77), PG_OK, 0, IP4(198, 18, 0, 77)},
	    {"connected port 1", IP4(198, 19, 0, 5), PG_OK, 1, IP4(198, 19, 0, 5)},
	    {"static 10/8", IP4(10, 1, 2, 3), PG_OK, 1, TH_GW1_IP},
	    {"longer static 10.9/16", IP4(10, 9, 0, 1), PG_OK, 0, IP4(198, 18, 0, 99)},
	    {"default", IP4(8, 8, 8, 8), PG_OK, 0, TH_GW0_IP},
	    {"edge of connected", IP4(198, 18, 1, 0), PG_OK, 0, TH_GW0_IP},
	};

	/* Insert 10.9.0.0/16 via 198.18.0.99 ahead of the /8, as adopt.c sorts. */
	for (int k = t->nc.nroutes; k > 2; k--)
		t->nc.routes[k] = t->nc.routes[k - 1];
	t->nc.routes[2] = (struct net_route){.prefix = IP4(10, 9, 0, 0),
	                                     .netmask = IP4(255, 255, 0, 0),
	                                     .prefix_len = 16,
	                                     .port = 0,
	                                     .gateway = IP4(198, 18, 0, 99)};
	t->nc.nroutes++;

	for (size_t k = 0; k < RTE_DIM(cases); k++) {
		const struct route_case *c = &cases[k];
		const struct net_route *r = NULL;
		const struct rte_arp_hdr *ah;

		print_message("# %s\n", c->name);
		assert_int_equal(net_route_lookup(&t->nc, c->dst, &r), c->rc);
		assert_non_null(r);
		assert_int_equal(r->port, c->port);
		assert_int_equal(r->gateway ? r->gateway : c->dst, c->nexthop);

		assert_int_equal(net_ipv4_output(&t->w[0], th_out_packet(c->dst, 1, 8)), PG_AGAIN);
		assert_int_equal(th_flush(t, 0), 1);
		assert_int_equal(t->cap[0].port[0], c->port);
		ah = rte_pktmbuf_mtod_offset(t->cap[0].pkts[0], const struct rte_arp_hdr *, 14);
		assert_int_equal(ah->arp_data.arp_tip, c->nexthop);
		th_cap_clear(t, 0);
		/* Forget the parked packet before the next row. */
		t->w[0].now_ns += 10 * t->nc.arp_retry_ns;
		for (int i = 0; i < 10; i++) {
			t->w[0].now_ns += t->nc.arp_retry_ns;
			net_timers(&t->w[0]);
		}
		th_flush(t, 0);
		th_cap_clear(t, 0);
	}
}

static void test_no_route(void **state)
{
	struct th *t = *state;
	const struct net_route *r = NULL;

	t->nc.nroutes = 2; /* connected only */
	assert_int_equal(net_route_lookup(&t->nc, IP4(8, 8, 8, 8), &r), PG_DECLINED);
	assert_int_equal(net_route_lookup(&t->nc, IP4(10, 1, 1, 1), &r), PG_DECLINED);
	assert_int_equal(net_ipv4_output(&t->w[0], th_out_packet(IP4(8, 8, 8, 8), 1, 8)),
	                 PG_DECLINED);
	assert_int_equal(CTR(t, 0, route_drop_noroute), 1);
	t->nc.nroutes = 0;
	assert_int_equal(net_route_lookup(&t->nc, TH_PEER0_IP, &r), PG_DECLINED);
}

/* Broadcast destinations need no ARP. */
static void test_broadcast_output(void **state)
{
	struct th *t = *state;
	const struct rte_ether_hdr *eh;

	assert_int_equal(net_ipv4_output(&t->w[0], th_out_packet(IP4(198, 19, 0, 255), 1, 8)),
	                 PG_OK);
	assert_int_equal(th_flush(t, 0), 1);
	eh = rte_pktmbuf_mtod(t->cap[0].pkts[0], const struct rte_ether_hdr *);
	assert_true(rte_is_broadcast_ether_addr(&eh->dst_addr));
	assert_int_equal(t->cap[0].port[0], 1);
	assert_int_equal(CTR(t, 0, arp_request_tx), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_route_table, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_no_route, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_broadcast_output, th_setup1, th_teardown),
	};
	int rc;

	th_eal_init();
	rc = cmocka_run_group_tests_name("net_route", tests, NULL, NULL);
	th_eal_fini();
	return rc;
}
