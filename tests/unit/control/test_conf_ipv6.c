/*
 * test_conf_ipv6.c - IPv6 in postern.conf (control/conf_ipv6.c): good
 * files and what they compile to (port addresses of one or both families,
 * gateways with zones, the IPv6 route table in first-match order), bad
 * files with the exact "FILE:LINE: message" each must give, and the ABI
 * 2.3 snapshot sections built from them, validated, and refused when
 * tampered with.
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

#include "addr.h"
#include "conf.h"
#include "policy_lookup.h"
#include "result.h"
#include "snap_build.h"
#include "snap_format.h"

#define DIR "/tmp/conf6"
#define FILE DIR "/postern.conf"
#define BASE6                                                                                      \
	"port0_device = net_tap0\n"                                                                \
	"port0_address = 198.18.0.1/24, 2001:db8:18::1/64\n"

static void addr6(const char *s, uint8_t out[16])
{
	assert_int_equal(inet_pton(AF_INET6, s, out), 1);
}

static int parse(const char *text, struct pg_conf *c, char *err, size_t errlen)
{
	return conf_parse_text(DIR, text, strlen(text), c, err, errlen);
}

/* ---- bad files ---- */

static const struct bad6 {
	const char *text;
	const char *want; /* after FILE */
} bad_cases[] = {
    {"port0_device = net_tap0\nport0_address = 2001:db8:18::1\n",
     ":2: bad value for port0_address: \"2001:db8:18::1\": expected IPv6/prefix, e.g. "
     "2001:db8:18::1/64"},
    {"port0_device = net_tap0\nport0_address = 2001:db8:18::g/64\n",
     ":2: bad value for port0_address: \"2001:db8:18::g/64\": \"2001:db8:18::g\" is not an IPv6 "
     "address"},
    {"port0_device = net_tap0\nport0_address = 2001:db8:18::1/129\n",
     ":2: bad value for port0_address: \"2001:db8:18::1/129\": IPv6 prefix length must be "
     "0..128"},
    {"port0_device = net_tap0\nport0_address = 2001:db8:18::1/0\n",
     ":2: bad value for port0_address: \"2001:db8:18::1/0\": IPv6 prefix length must be 1..128 "
     "for a port"},
    {"port0_device = net_tap0\nport0_address = fe80::1/64\n",
     ":2: bad value for port0_address: \"fe80::1/64\": a link-local address: each port has its "
     "own, derived from its MAC (RFC 4862 §5.3)"},
    {"port0_device = net_tap0\nport0_address = ff02::1/64\n",
     ":2: bad value for port0_address: \"ff02::1/64\": not a unicast address (multicast)"},
    {"port0_device = net_tap0\nport0_address = ::/64\n",
     ":2: bad value for port0_address: \"::/64\": not a unicast address (:: is the unspecified "
     "address)"},
    {"port0_device = net_tap0\nport0_address = ::ffff:198.18.0.1/96\n",
     ":2: bad value for port0_address: \"::ffff:198.18.0.1/96\": an IPv4-mapped address: write "
     "IPv4 addresses as such"},
    {"port0_device = net_tap0\nport0_address = 2001:db8:18::/64\n",
     ":2: bad value for port0_address: \"2001:db8:18::/64\": host part is zero (that is the "
     "Subnet-Router anycast address, RFC 4291 §2.6.1)"},
    {"port0_device = net_tap0\nport0_address = 2001:db8:18::1/64, 2001:db8:28::1/64\n",
     ":2: bad value for port0_address: \"2001:db8:18::1/64, 2001:db8:28::1/64\": more than one "
     "IPv6 address (one of each family)"},
    {"port0_device = net_tap0\nport0_address = 198.18.0.1/24 198.18.1.1/24\n",
     ":2: bad value for port0_address: \"198.18.0.1/24 198.18.1.1/24\": more than one IPv4 "
     "address (one of each family)"},
    {"port0_device = net_tap0\nport0_address = 198.18.0.256/24, 2001:db8:18::1/64\n",
     ":2: bad value for port0_address: \"198.18.0.256/24, 2001:db8:18::1/64\": "
     "\"198.18.0.256/24\": \"198.18.0.256\" is not an IPv4 address"},
    {BASE6 "port1_device = net_tap1\nport1_address = 2001:db8:18::2/64\n",
     ":4: port1_address overlaps the IPv6 subnet of port0_address 2001:db8:18::1/64"},
    {BASE6 "port0_mtu = 1000\n",
     ":3: port0_mtu 1000 is below 1280, the IPv6 minimum (RFC 8200 §5) that port0_address "
     "needs"},
    {BASE6 "default_gateway = 2001:db8:99::1\n",
     ":3: bad value for default_gateway: gateway 2001:db8:99::1 is not in a connected IPv6 "
     "subnet"},
    {BASE6 "default_gateway = 2001:db8:18::1\n",
     ":3: bad value for default_gateway: gateway 2001:db8:18::1 is port0's own address"},
    {BASE6 "default_gateway = 2001:db8:18::\n",
     ":3: bad value for default_gateway: gateway 2001:db8:18:: is the Subnet-Router anycast "
     "address of port0"},
    {BASE6 "default_gateway = fe80::1\n",
     ":3: bad value for default_gateway: \"fe80::1\": a link-local gateway needs its port, e.g. "
     "fe80::1%port0"},
    {BASE6 "default_gateway = 2001:db8:18::fe%port0\n",
     ":3: bad value for default_gateway: \"2001:db8:18::fe%port0\": a zone (%portN) only goes "
     "with a link-local gateway"},
    {BASE6 "default_gateway = fe80::1%port1\n",
     ":3: bad value for default_gateway: gateway fe80::1%port1: port1 has no IPv6 address"},
    {BASE6 "default_gateway = fe80::1%eth0\n",
     ":3: bad value for default_gateway: \"fe80::1%eth0\": \"fe80::1%eth0\": the zone must name "
     "a port, %port0..%port7"},
    {BASE6 "default_gateway = fe80::1%port0, 2001:db8:18::fe\n",
     ":3: bad value for default_gateway: \"fe80::1%port0, 2001:db8:18::fe\": more than one IPv6 "
     "gateway (one of each family)"},
    {BASE6 "static_routes = 2001:db8:99::1/48 via 2001:db8:18::fe\n",
     ":3: bad value for static_routes: \"2001:db8:99::1/48 via 2001:db8:18::fe\": host bits of "
     "2001:db8:99::1/48 are not zero (did you mean 2001:db8:99::/48?)"},
    {BASE6 "static_routes = 2001:db8:99::/48 2001:db8:18::fe\n",
     ":3: bad value for static_routes: \"2001:db8:99::/48 2001:db8:18::fe\": expected PREFIX/LEN "
     "via GATEWAY"},
    {BASE6 "static_routes = 10.0.0.0/8 via 198.18.0.254, 2001:db8:99::/48 via 2001:db8:77::1\n",
     ":3: bad value for static_routes: \"2001:db8:99::/48 via 2001:db8:77::1\": gateway "
     "2001:db8:77::1 is not in a connected IPv6 subnet"},
    {BASE6 "static_routes = 2001:db8:18::/64 via 2001:db8:18::fe\n",
     ":3: bad value for static_routes: \"2001:db8:18::/64 via 2001:db8:18::fe\": duplicates the "
     "connected subnet of a port"},
    {BASE6 "default_gateway = fe80::1%port0\nstatic_routes = ::/0 via 2001:db8:18::fe\n",
     ":4: bad value for static_routes: \"::/0 via 2001:db8:18::fe\": a default route is already "
     "set by default_gateway"},
    {BASE6 "static_routes = 2001:db8:99::/48 via fe80::1\n",
     ":3: bad value for static_routes: \"2001:db8:99::/48 via fe80::1\": a link-local gateway "
     "needs its port (fe80::1%port0), and only a link-local one"},
    {BASE6 "diag_client = [2001:db8::g]:7 echo 10\n",
     ":3: bad value for diag_client: \"[2001:db8::g]:7 echo 10\": \"2001:db8::g\" is not an "
     "IPv6 address"},
    {BASE6 "diag_client = [fe80::1]:7 echo 10\n",
     ":3: bad value for diag_client: \"[fe80::1]:7 echo 10\": fe80::1: a link-local address (no "
     "TCP there)"},
    {BASE6 "diag_client = [2001:db8:19::2] echo 10\n",
     ":3: bad value for diag_client: \"[2001:db8:19::2] echo 10\": \"[2001:db8:19::2]\": "
     "expected [IPv6]:PORT"},
};

static void test_bad_configs(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct pg_conf *c = calloc(1, sizeof(*c));
		char err[512], want[512];

		assert_non_null(c);
		snprintf(want, sizeof(want), "%s%s", FILE, bad_cases[i].want);
		err[0] = '\0';
		if (parse(bad_cases[i].text, c, err, sizeof(err)) != PG_ERROR)
			fail_msg("accepted: %s", bad_cases[i].text);
		assert_string_equal(err, want);
		free(c);
	}
}

/* ---- good files ---- */

static void test_dual_stack_routes(void **state)
{
	static const char text[] =
	    "port0_device = net_tap0\n"
	    "port0_address = 198.18.0.1/24, 2001:db8:18::1/64\n"
	    "port1_device = net_tap1\n"
	    "port1_address = 2001:db8:19::1/64\n"
	    "default_gateway = 198.18.0.254, fe80::1%port1\n"
	    "static_routes = 10.0.0.0/8 via 198.18.0.254, 2001:db8:99::/48 via 2001:db8:19::fe,\n"
	    "  2001:db8:99:1::/64 via 2001:db8:18::fe\n";
	struct pg_conf *c = calloc(1, sizeof(*c));
	uint8_t a[16];
	char err[512];

	(void)state;
	assert_non_null(c);
	assert_int_equal(parse(text, c, err, sizeof(err)), PG_OK);
	assert_int_equal(c->nports, 2);
	addr6("2001:db8:18::1", a);
	assert_memory_equal(c->ports[0].addr6, a, 16);
	assert_int_equal(c->ports[0].prefix6_len, 64);
	assert_int_equal(c->ports[0].prefix_len, 24);
	/* port 1 is IPv6 only: no IPv4 address, no IPv4 connected route */
	assert_int_equal(c->ports[1].addr, 0);
	assert_int_equal(c->nroutes, 3);
	/* IPv6 routes, first match: /64s (connected first, by address), the /48, the default */
	assert_int_equal(c->nroutes6, 5);
	addr6("2001:db8:18::", a);
	assert_memory_equal(c->routes6[0].prefix, a, 16);
	assert_int_equal(c->routes6[0].port, 0);
	addr6("2001:db8:19::", a);
	assert_memory_equal(c->routes6[1].prefix, a, 16);
	assert_int_equal(c->routes6[1].port, 1);
	addr6("2001:db8:99:1::", a);
	assert_memory_equal(c->routes6[2].prefix, a, 16);
	assert_int_equal(c->routes6[2].prefix_len, 64);
	assert_int_equal(c->routes6[2].port, 0);
	addr6("2001:db8:18::fe", a);
	assert_memory_equal(c->routes6[2].gateway, a, 16);
	assert_int_equal(c->routes6[3].prefix_len, 48);
	assert_int_equal(c->routes6[3].port, 1);
	assert_int_equal(c->routes6[4].prefix_len, 0);
	assert_int_equal(c->routes6[4].port, 1);
	addr6("fe80::1", a);
	assert_memory_equal(c->routes6[4].gateway, a, 16);
	free(c);
}

static void test_v6_only_and_forms(void **state)
{
	static const char *const ok[] = {
	    "port0_device = net_tap0\nport0_address = 2001:db8:18::1/64\n",
	    "port0_device = net_tap0\nport0_address = 2001:db8:18::1/64 198.18.0.1/24\n",
	    "port0_device = net_tap0\nport0_address = 2001:db8:18::1/127\n",
	    "port0_device = net_tap0\nport0_address = 2001:db8:18::/128\n",
	    "port0_device = net_tap0\nport0_address = fd00:1::1/64\n",
	    BASE6 "diag_client = [2001:db8:18::2]:5001 source 100 3\n",
	};
	struct pg_conf *c = calloc(1, sizeof(*c));
	char err[512];

	(void)state;
	assert_non_null(c);
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		if (parse(ok[i], c, err, sizeof(err)) != PG_OK)
			fail_msg("%s: %s", ok[i], err);
		assert_int_not_equal(c->ports[0].prefix6_len, 0);
	}
	assert_true(c->diag_client.set && c->diag_client.v6);
	assert_int_equal(c->diag_client.port, 5001);
	assert_int_equal(c->diag_client.count, 3);
	assert_int_equal(parse(ok[0], c, err, sizeof(err)), PG_OK);
	assert_int_equal(c->nroutes, 0);
	assert_int_equal(c->nroutes6, 1);
	free(c);
}

/* ---- the snapshot ---- */

static const void *section(const struct snap_header *h, uint32_t kind, uint32_t *count)
{
	for (uint32_t i = 0; i < h->nsections; i++)
		if (h->sections[i].kind == kind) {
			*count = h->sections[i].count;
			return (const uint8_t *)h + h->sections[i].offset;
		}
	return NULL;
}

static void reseal(void *blob, size_t len)
{
	((struct snap_header *)blob)->checksum = 0;
	((struct snap_header *)blob)->checksum = snap_checksum(blob, len);
}

static void test_snapshot_sections(void **state)
{
	static const char text[] = "port0_device = net_tap0\n"
	                           "port0_address = 198.18.0.1/24, 2001:db8:18::1/64\n"
	                           "port1_device = net_tap1\n"
	                           "port1_address = 198.19.0.1/24\n"
	                           "default_gateway = fe80::1%port0\n"
	                           "diag_client = [2001:db8:18::2]:7 echo 1000\n";
	struct pg_conf *c = calloc(1, sizeof(*c));
	const struct snap_port6 *p6;
	const struct snap_route6 *r6;
	const struct snap_diag_client6 *d6;
	struct snap_header *h;
	void *blob;
	size_t len;
	uint32_t n;
	uint8_t a[16];
	char err[512];

	(void)state;
	assert_non_null(c);
	assert_int_equal(parse(text, c, err, sizeof(err)), PG_OK);
	assert_int_equal(snap_build(c, &blob, &len, err, sizeof(err)), PG_OK);
	h = blob;
	assert_int_equal(h->abi_minor, SNAP_ABI_MINOR); /* the IPv6 sections came with 2.3 */
	reseal(blob, len); /* the publisher's job */
	if (snap_validate(blob, len, err, sizeof(err)) != 0)
		fail_msg("snapshot refused: %s", err);
	p6 = section(h, SNAP_SEC_PORTS6, &n);
	assert_non_null(p6);
	assert_int_equal(n, 2);
	addr6("2001:db8:18::1", a);
	assert_memory_equal(p6[0].addr, a, 16);
	assert_int_equal(p6[0].prefix_len, 64);
	assert_int_equal(p6[1].prefix_len, 0);
	r6 = section(h, SNAP_SEC_ROUTES6, &n);
	assert_int_equal(n, 2);
	assert_int_equal(r6[1].prefix_len, 0);
	addr6("fe80::1", a);
	assert_memory_equal(r6[1].gateway, a, 16);
	d6 = section(h, SNAP_SEC_DIAG_CLIENT6, &n);
	assert_int_equal(n, 1);
	addr6("2001:db8:18::2", a);
	assert_memory_equal(d6->addr, a, 16);
	assert_int_equal(d6->port, 7);
	assert_int_equal(d6->bytes, 1000);
	assert_non_null(section(h, SNAP_SEC_DIAG_CLIENT, &n));
	assert_int_equal(n, 0);

	/* tampered fields are refused, each with its reason */
	((struct snap_port6 *)p6)[0].prefix_len = 129;
	reseal(blob, len);
	assert_int_not_equal(snap_validate(blob, len, err, sizeof(err)), 0);
	assert_string_equal(err, "IPv6 port 0: bad address");
	((struct snap_port6 *)p6)[0].prefix_len = 64;
	((struct snap_route6 *)r6)[0].port = SNAP_MAX_PORTS;
	reseal(blob, len);
	assert_int_not_equal(snap_validate(blob, len, err, sizeof(err)), 0);
	assert_string_equal(err, "IPv6 route 0: out of range");
	((struct snap_route6 *)r6)[0].port = 0;
	((struct snap_diag_client6 *)d6)->mode = 4;
	reseal(blob, len);
	assert_int_not_equal(snap_validate(blob, len, err, sizeof(err)), 0);
	assert_string_equal(err, "IPv6 diag client section: field out of range");
	((struct snap_diag_client6 *)d6)->mode = 1;
	reseal(blob, len);
	if (snap_validate(blob, len, err, sizeof(err)) != 0)
		fail_msg("restored snapshot refused: %s", err);
	free(blob);
	free(c);
}

/*
 * mynetworks and smtpd_tls_required_networks with IPv6 entries: each
 * family in its own section (IPv6 ones of ABI 2.3), the relay and TLS
 * decisions for clients of both families, and a tampered prefix refused.
 */
static void test_smtp_networks(void **state)
{
	static const char text[] =
	    BASE6 "mynetworks = 198.18.0.0/24 [2001:db8:18::]/64,\n"
	          "  2001:db8:77::5\n"
	          "smtpd_tls_security_level = may\n"
	          "tls_certificates = mx.pem\n"
	          "smtpd_tls_required_networks = [2001:db8:18:0:8000::]/65\n";
	static const struct {
		const char *client;
		bool relay, tls;
	} cases[] = {
	    {"198.18.0.7", true, false},        {"198.19.0.7", false, false},
	    {"2001:db8:18::2", true, false},    {"2001:db8:18:0:8000::2", true, true},
	    {"2001:db8:18:1::2", false, false}, {"2001:db8:77::5", true, false},
	    {"2001:db8:77::6", false, false},   {"::ffff:198.18.0.7", false, false},
	};
	struct pg_conf *c = calloc(1, sizeof(*c));
	const struct snap_cidr6 *m6, *t6;
	struct snap_header *h;
	void *blob;
	size_t len;
	uint32_t n;
	uint8_t a[16];
	char err[512];

	(void)state;
	assert_non_null(c);
	if (parse(text, c, err, sizeof(err)) != PG_OK)
		fail_msg("%s", err);
	assert_int_equal(snap_build(c, &blob, &len, err, sizeof(err)), PG_OK);
	h = blob;
	reseal(blob, len);
	if (snap_validate(blob, len, err, sizeof(err)) != 0)
		fail_msg("snapshot refused: %s", err);
	assert_non_null(section(h, SNAP_SEC_MYNETWORKS, &n));
	assert_int_equal(n, 1);
	m6 = section(h, SNAP_SEC_MYNETWORKS6, &n);
	assert_int_equal(n, 2);
	addr6("2001:db8:18::", a);
	assert_memory_equal(m6[0].prefix, a, 16);
	assert_int_equal(m6[0].len, 64);
	assert_int_equal(m6[1].len, 128);
	assert_non_null(section(h, SNAP_SEC_INBOUND_TLS_NETWORKS, &n));
	assert_int_equal(n, 0);
	t6 = section(h, SNAP_SEC_INBOUND_TLS_NETWORKS6, &n);
	assert_int_equal(n, 1);
	assert_int_equal(t6[0].len, 65);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pg_addr ca;
		struct policy_inbound_verdict v;

		assert_int_equal(pg_addr_parse(cases[i].client, &ca), 0);
		if (relay_client_allowed_addr(h, &ca) != cases[i].relay ||
		    policy_inbound_required_addr(h, &ca, NULL, &v) != cases[i].tls)
			fail_msg("%s: relay %d tls %d, want %d %d", cases[i].client,
			         relay_client_allowed_addr(h, &ca), v.required, cases[i].relay,
			         cases[i].tls);
		if (cases[i].tls && (v.reason != POLICY_INBOUND_NETWORK || v.network6 != &t6[0] ||
		                     v.network != NULL))
			fail_msg("%s: not named by its IPv6 network", cases[i].client);
	}

	/* host bits set behind the prefix, and a length past 128: refused */
	((struct snap_cidr6 *)m6)[0].prefix[15] = 1;
	reseal(blob, len);
	assert_int_not_equal(snap_validate(blob, len, err, sizeof(err)), 0);
	assert_string_equal(err, "mynetworks entry 0: bad IPv6 prefix");
	((struct snap_cidr6 *)m6)[0].prefix[15] = 0;
	((struct snap_cidr6 *)t6)[0].len = 129;
	reseal(blob, len);
	assert_int_not_equal(snap_validate(blob, len, err, sizeof(err)), 0);
	assert_string_equal(err, "inbound tls network entry 0: bad IPv6 prefix");
	free(blob);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bad_configs),       cmocka_unit_test(test_dual_stack_routes),
	    cmocka_unit_test(test_v6_only_and_forms), cmocka_unit_test(test_snapshot_sections),
	    cmocka_unit_test(test_smtp_networks),
	};

	return cmocka_run_group_tests_name("conf_ipv6", tests, NULL, NULL);
}
