/*
 * test_dns_route.c - MX routing's pure part (dataplane/dns/dns_route.c):
 * MX ordering (preference, equal preferences shuffled and every order
 * reachable), null MX, next hops from hosts' answers (every address of a
 * host in turn, smtp_mx_address_limit, failed hosts skipped, DNSSEC status
 * per hop), the loop check (Postfix's cut at our own preference), and the
 * route -> action table (deliver, 4.4.3, 5.1.10, 5.1.2, 5.4.4, 5.4.6).
 * The answers are made up here: the resolver itself is tested in the lab
 * (tests/lab/test_dns.sh) against real DNS servers.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "dns/dns_route.h"

#define NB(a) (sizeof(a) / sizeof((a)[0]))

/* a deterministic generator (LCG), so each run checks the same orders */
static uint32_t lcg_rand(void *ctx, uint32_t n)
{
	uint64_t *s = ctx;

	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)((*s >> 33) % n);
}

/* always the last candidate: Fisher-Yates then keeps the order */
static uint32_t keep_rand(void *ctx, uint32_t n)
{
	(void)ctx;
	return n - 1;
}

static uint32_t ip(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

static void set_mx(struct dns_mx *mx, uint16_t pref, const char *host)
{
	mx->pref = pref;
	snprintf(mx->host, sizeof(mx->host), "%s", host);
}

static void test_order_by_preference(void **state)
{
	struct dns_mx mx[4];
	uint64_t seed = 1;

	(void)state;
	set_mx(&mx[0], 30, "mx3");
	set_mx(&mx[1], 10, "mx1");
	set_mx(&mx[2], 20, "mx2");
	set_mx(&mx[3], 5, "mx0");
	assert_int_equal(dns_mx_order(mx, 4, lcg_rand, &seed), 4);
	assert_string_equal(mx[0].host, "mx0");
	assert_string_equal(mx[1].host, "mx1");
	assert_string_equal(mx[2].host, "mx2");
	assert_string_equal(mx[3].host, "mx3");
}

/* Equal preferences: every host comes first sometimes, none leaves its group. */
static void test_order_equal_spread(void **state)
{
	unsigned first[3] = {0, 0, 0};
	uint64_t seed = 42;

	(void)state;
	for (int run = 0; run < 600; run++) {
		struct dns_mx mx[5];

		set_mx(&mx[0], 10, "a");
		set_mx(&mx[1], 10, "b");
		set_mx(&mx[2], 10, "c");
		set_mx(&mx[3], 20, "z");
		set_mx(&mx[4], 5, "best");
		assert_int_equal(dns_mx_order(mx, 5, lcg_rand, &seed), 5);
		assert_string_equal(mx[0].host, "best");
		assert_string_equal(mx[4].host, "z");
		for (int k = 1; k <= 3; k++) {
			assert_int_equal(mx[k].pref, 10);
			assert_true(mx[k].host[0] >= 'a' && mx[k].host[0] <= 'c');
		}
		/* a permutation: three different hosts */
		assert_true(mx[1].host[0] != mx[2].host[0] && mx[2].host[0] != mx[3].host[0] &&
		            mx[1].host[0] != mx[3].host[0]);
		first[mx[1].host[0] - 'a']++;
	}
	/* 200 expected each; a fixed seed, so this is exact, not flaky */
	for (int k = 0; k < 3; k++)
		assert_true(first[k] > 120);
}

static void test_order_drops_root_target(void **state)
{
	struct dns_mx mx[3];

	(void)state;
	set_mx(&mx[0], 0, "");
	set_mx(&mx[1], 10, "mx");
	set_mx(&mx[2], 0, "");
	assert_false(dns_mx_is_null(mx, 3));
	assert_int_equal(dns_mx_order(mx, 3, keep_rand, NULL), 1);
	assert_string_equal(mx[0].host, "mx");
}

static void test_null_mx(void **state)
{
	struct dns_mx mx[1];

	(void)state;
	set_mx(&mx[0], 0, "");
	assert_true(dns_mx_is_null(mx, 1));
	set_mx(&mx[0], 10, ""); /* not preference 0: not RFC 7505's */
	assert_false(dns_mx_is_null(mx, 1));
	set_mx(&mx[0], 0, "mx");
	assert_false(dns_mx_is_null(mx, 1));
}

/* Every address of a host in turn, hosts in MX order, up to the limit. */
static void test_build_addresses_in_turn(void **state)
{
	struct dns_mx mx[2];
	uint32_t a1[3] = {ip("198.19.0.16"), ip("198.19.0.17"), ip("198.19.0.18")};
	uint32_t a2[1] = {ip("198.19.0.20")};
	struct dns_host_answer ans[2] = {
	    {.kind = DNS_K_DATA, .sec = DNS_SEC_SECURE, .naddr = 3, .addr = a1},
	    {.kind = DNS_K_DATA, .sec = DNS_SEC_INSECURE, .naddr = 1, .addr = a2},
	};
	struct dns_route r;

	(void)state;
	set_mx(&mx[0], 10, "mx.multi-a.test");
	set_mx(&mx[1], 20, "backup.test");
	memset(&r, 0, sizeof(r));
	dns_route_build(&r, mx, 2, ans, DNS_SEC_SECURE, 5);
	assert_int_equal(r.kind, DNS_R_OK);
	assert_int_equal(r.nhops, 4);
	assert_int_equal(r.hops[0].addr, a1[0]);
	assert_int_equal(r.hops[1].addr, a1[1]);
	assert_int_equal(r.hops[2].addr, a1[2]);
	assert_int_equal(r.hops[3].addr, a2[0]);
	assert_string_equal(r.hops[2].host, "mx.multi-a.test");
	assert_string_equal(r.hops[3].host, "backup.test");
	assert_int_equal(r.hops[0].sec, DNS_SEC_SECURE);
	assert_int_equal(r.hops[3].sec, DNS_SEC_INSECURE); /* its A answer was insecure */
	assert_int_equal(r.hops[3].pref, 20);
	/* smtp_mx_address_limit = 2: the first host's first two */
	dns_route_build(&r, mx, 2, ans, DNS_SEC_SECURE, 2);
	assert_int_equal(r.nhops, 2);
	assert_int_equal(r.hops[1].addr, a1[1]);
	/* an insecure MX answer makes every hop insecure */
	dns_route_build(&r, mx, 2, ans, DNS_SEC_INSECURE, 5);
	assert_int_equal(r.hops[0].sec, DNS_SEC_INSECURE);
}

/* Hosts whose lookup failed are skipped; none left: temporary or permanent. */
static void test_build_failures(void **state)
{
	static const struct {
		uint8_t k1, k2;
		uint8_t want;
		uint32_t nhops;
	} t[] = {
	    {DNS_K_SERVFAIL, DNS_K_DATA, DNS_R_OK, 1},
	    {DNS_K_NXDOMAIN, DNS_K_DATA, DNS_R_OK, 1},
	    {DNS_K_NXDOMAIN, DNS_K_NODATA, DNS_R_NOHOST, 0},
	    {DNS_K_NXDOMAIN, DNS_K_TIMEOUT, DNS_R_TEMP, 0},
	    {DNS_K_BOGUS, DNS_K_NXDOMAIN, DNS_R_TEMP, 0},
	    {DNS_K_SERVFAIL, DNS_K_SERVFAIL, DNS_R_TEMP, 0},
	    {DNS_K_ERROR, DNS_K_NODATA, DNS_R_TEMP, 0},
	};
	uint32_t a[1] = {ip("198.19.0.11")};
	struct dns_mx mx[2];

	(void)state;
	set_mx(&mx[0], 10, "mx1.test");
	set_mx(&mx[1], 20, "mx2.test");
	for (size_t i = 0; i < NB(t); i++) {
		struct dns_host_answer ans[2] = {
		    {.kind = t[i].k1, .naddr = t[i].k1 == DNS_K_DATA, .addr = a, .why = "w1"},
		    {.kind = t[i].k2, .naddr = t[i].k2 == DNS_K_DATA, .addr = a, .why = "w2"},
		};
		struct dns_route r;

		memset(&r, 0, sizeof(r));
		dns_route_build(&r, mx, 2, ans, DNS_SEC_INSECURE, 5);
		printf("# case %zu: kind %u hops %u reason %s\n", i, r.kind, r.nhops, r.reason);
		assert_int_equal(r.kind, t[i].want);
		assert_int_equal(r.nhops, t[i].nhops);
		/* the failed first host is named with its reason */
		assert_non_null(strstr(r.reason, "mx1.test"));
		assert_non_null(strstr(r.reason, "w1"));
	}
}

static void route_of(struct dns_route *r, const uint16_t *pref, const char *const *addr, size_t n)
{
	memset(r, 0, sizeof(*r));
	r->kind = DNS_R_OK;
	r->nhops = (uint32_t)n;
	for (size_t i = 0; i < n; i++) {
		r->hops[i].pref = pref[i];
		r->hops[i].addr = ip(addr[i]);
		snprintf(r->hops[i].host, sizeof(r->hops[i].host), "h%zu", i);
	}
}

/* Postfix smtp_truncate_self: our preference and worse go; we are best: loop. */
static void test_self(void **state)
{
	static const uint16_t pref[] = {10, 10, 20, 30};
	static const char *const addr[] = {"198.19.0.10", "198.19.0.11", "198.19.0.1",
	                                   "198.19.0.12"};
	uint32_t own[2];
	struct dns_route r;

	(void)state;
	own[0] = ip("198.18.0.1");
	own[1] = ip("198.19.0.1");
	route_of(&r, pref, addr, 4);
	dns_route_self(&r, own, 2);
	assert_int_equal(r.kind, DNS_R_OK);
	assert_int_equal(r.nhops, 2); /* the two of preference 10 */
	/* we share the best preference: nothing better than us is left */
	{
		static const uint16_t p2[] = {10, 10};
		static const char *const a2[] = {"198.19.0.10", "198.18.0.1"};

		route_of(&r, p2, a2, 2);
		dns_route_self(&r, own, 2);
		assert_int_equal(r.kind, DNS_R_LOOP);
		assert_int_equal(r.nhops, 0);
	}
	/* not ours at all: untouched */
	route_of(&r, pref, addr, 4);
	r.hops[2].addr = ip("198.19.0.99");
	dns_route_self(&r, own, 2);
	assert_int_equal(r.nhops, 4);
}

/* The result -> action table. */
static void test_action(void **state)
{
	static const struct {
		uint8_t kind;
		uint16_t code;
		const char *status;
		const char *words;
	} t[] = {
	    {DNS_R_OK, 0, "", ""},
	    {DNS_R_NULLMX, 550, "5.1.10", "does not accept mail (nullMX"},
	    {DNS_R_NXDOMAIN, 550, "5.1.2", "Host or domain name not found"},
	    {DNS_R_NOHOST, 550, "5.4.4", "No address for the mail exchangers"},
	    {DNS_R_TEMP, 450, "4.4.3", "timeout: no answer"},
	    {DNS_R_LOOP, 550, "5.4.6", "loops back to myself"},
	};

	(void)state;
	for (size_t i = 0; i < NB(t); i++) {
		struct dns_route r;
		struct dns_action a;

		memset(&r, 0, sizeof(r));
		r.kind = t[i].kind;
		snprintf(r.reason, sizeof(r.reason), "timeout: no answer within 10 s");
		dns_route_action(&r, "example.test", &a);
		assert_int_equal(a.code, t[i].code);
		assert_string_equal(a.status, t[i].status);
		assert_non_null(strstr(a.text, t[i].words));
		if (a.code != 0)
			assert_non_null(strstr(a.text, "example.test"));
	}
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(dns_sec_name(DNS_SEC_SECURE), "secure");
	assert_string_equal(dns_sec_name(DNS_SEC_INSECURE), "insecure");
	assert_string_equal(dns_sec_name(DNS_SEC_BOGUS), "bogus");
	assert_string_equal(dns_sec_name(9), "?");
	assert_string_equal(dns_kind_name(DNS_K_TIMEOUT), "timeout");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order_by_preference),
	    cmocka_unit_test(test_order_equal_spread),
	    cmocka_unit_test(test_order_drops_root_target),
	    cmocka_unit_test(test_null_mx),
	    cmocka_unit_test(test_build_addresses_in_turn),
	    cmocka_unit_test(test_build_failures),
	    cmocka_unit_test(test_self),
	    cmocka_unit_test(test_action),
	    cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
