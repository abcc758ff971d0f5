/*
 * test_adopt_ipv6.c - IPv6 from postern.conf to a worker's net_config:
 * posternd's parser and snapshot builder on one side, adopt_compile_net on
 * the other. Port addresses (link-local derived from each MAC), the IPv6
 * route table in order, routes out of a port the hardware lacks left out,
 * an old snapshot without the IPv6 sections, and snapshots that break the
 * rules the dataplane checks (route order, an IPv6 port below 1280 bytes).
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "adopt.h"
#include "conf.h"
#include "result.h"
#include "snap_build.h"
#include "snap_format.h"

static const char conf_text[] = "port0_device = net_ring0\n"
                                "port0_address = 198.18.0.1/24, 2001:db8:18::1/64\n"
                                "port1_device = net_ring1\n"
                                "port1_address = 2001:db8:19::1/64\n"
                                "port2_device = net_ring2\n"
                                "port2_address = 2001:db8:20::1/64\n"
                                "default_gateway = fe80::1%port0\n"
                                "static_routes = 2001:db8:99::/48 via 2001:db8:19::fe,\n"
                                "  2001:db8:77::/48 via 2001:db8:20::fe\n";

static void addr6(const char *s, uint8_t out[16])
{
	assert_int_equal(inet_pton(AF_INET6, s, out), 1);
}

static void *build(const char *text, size_t *len)
{
	struct pg_conf *c = calloc(1, sizeof(*c));
	char err[256];
	void *blob;

	assert_non_null(c);
	if (conf_parse_text("/tmp", text, strlen(text), c, err, sizeof(err)) != PG_OK)
		fail_msg("%s", err);
	assert_int_equal(snap_build(c, &blob, len, err, sizeof(err)), PG_OK);
	free(c);
	return blob;
}

/* Two ports of hardware: the configuration's third is missing. */
static void hw_two(struct adopt_hw *hw)
{
	memset(hw, 0, sizeof(*hw));
	hw->nports = 2;
	for (uint16_t i = 0; i < 2; i++) {
		hw->ports[i].dpdk_port = i;
		hw->ports[i].mac =
		    (struct rte_ether_addr){{0x00, 0x1b, 0x21, 0xab, 0xcd, (uint8_t)i}};
	}
}

static struct snap_route6 *routes6(void *blob, uint32_t *n)
{
	struct snap_header *h = blob;

	for (uint32_t i = 0; i < h->nsections; i++)
		if (h->sections[i].kind == SNAP_SEC_ROUTES6) {
			*n = h->sections[i].count;
			return (struct snap_route6 *)((uint8_t *)blob + h->sections[i].offset);
		}
	return NULL;
}

static void test_compile(void **state)
{
	struct net_config *nc = calloc(1, sizeof(*nc));
	struct adopt_hw hw;
	uint8_t a[16];
	char err[256];
	size_t len;
	void *blob = build(conf_text, &len);

	(void)state;
	hw_two(&hw);
	assert_int_equal(adopt_compile_net(blob, &hw, nc, err, sizeof(err)), PG_OK);
	assert_int_equal(nc->nports, 2);
	assert_true(nc->ports[0].has_ip6 && nc->ports[1].has_ip6);
	addr6("2001:db8:19::1", a);
	assert_memory_equal(nc->ports[1].addr6, a, 16);
	assert_int_equal(nc->ports[1].prefix6_len, 64);
	assert_int_equal(nc->ports[1].addr, 0); /* IPv6 only */
	/* 00:1b:21:ab:cd:01 -> fe80::21b:21ff:feab:cd01 (RFC 4291 Appendix A) */
	addr6("fe80::21b:21ff:feab:cd01", a);
	assert_memory_equal(nc->ports[1].ll6, a, 16);
	/* connected 18::/64, 19::/64 (20::/64 is on the missing port), 99::/48, the default */
	assert_int_equal(nc->nroutes6, 4);
	addr6("2001:db8:18::", a);
	assert_memory_equal(nc->routes6[0].prefix, a, 16);
	addr6("2001:db8:99::", a);
	assert_memory_equal(nc->routes6[2].prefix, a, 16);
	assert_int_equal(nc->routes6[2].port, 1);
	assert_int_equal(nc->routes6[3].prefix_len, 0);
	addr6("fe80::1", a);
	assert_memory_equal(nc->routes6[3].gateway, a, 16);
	assert_int_equal(nc->routes6[3].port, 0);
	assert_int_equal(nc->nroutes, 1); /* IPv4: port 0's subnet only */
	free(blob);
	free(nc);
}

/* A snapshot from before ABI 2.3 (no IPv6 sections): no port speaks IPv6. */
static void test_old_snapshot(void **state)
{
	struct net_config *nc = calloc(1, sizeof(*nc));
	struct adopt_hw hw;
	char err[256];
	size_t len;
	void *blob = build(conf_text, &len);
	struct snap_header *h = blob;

	(void)state;
	for (uint32_t i = 0; i < h->nsections; i++)
		if (h->sections[i].kind == SNAP_SEC_PORTS6 ||
		    h->sections[i].kind == SNAP_SEC_ROUTES6)
			h->sections[i].kind += 1000; /* unknown to this reader: skipped */
	hw_two(&hw);
	assert_int_equal(adopt_compile_net(blob, &hw, nc, err, sizeof(err)), PG_OK);
	assert_false(nc->ports[0].has_ip6);
	assert_false(nc->ports[1].has_ip6);
	assert_int_equal(nc->nroutes6, 0);
	free(blob);
	free(nc);
}

static void test_refused(void **state)
{
	struct net_config *nc = calloc(1, sizeof(*nc));
	struct adopt_hw hw;
	struct snap_route6 *r, tmp;
	char err[256];
	size_t len;
	uint32_t n;
	void *blob = build(conf_text, &len);

	(void)state;
	hw_two(&hw);
	/* longest prefix first, or first match is not longest match */
	r = routes6(blob, &n);
	assert_true(n >= 4);
	tmp = r[0];
	r[0] = r[n - 1];
	r[n - 1] = tmp;
	assert_int_equal(adopt_compile_net(blob, &hw, nc, err, sizeof(err)), PG_ERROR);
	assert_string_equal(err, "IPv6 route 1: prefix /64 out of range or out of order");
	free(blob);
	/* a device that cannot carry 1280 bytes cannot carry IPv6 (RFC 8200 §5) */
	blob = build(conf_text, &len);
	hw.ports[1].mtu = 1200;
	assert_int_equal(adopt_compile_net(blob, &hw, nc, err, sizeof(err)), PG_ERROR);
	assert_string_equal(err, "port 1: IPv6 prefix /64 or MTU 1200 out of range");
	free(blob);
	free(nc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_compile),
	    cmocka_unit_test(test_old_snapshot),
	    cmocka_unit_test(test_refused),
	};

	return cmocka_run_group_tests_name("adopt_ipv6", tests, NULL, NULL);
}
