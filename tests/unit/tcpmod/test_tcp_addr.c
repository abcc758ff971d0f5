/*
 * test_tcp_addr.c - the keyed functions of the TCP core over IPv6 tuples
 * (struct pg_addr): RFC 6528 ISNs (an IPv4 tuple gives exactly tcp_isn();
 * an IPv6 one depends on every byte of both addresses and both ports) and
 * SYN cookies for IPv6 peers (every MSS class of the IPv6 table round
 * trips; a change to any byte of the tuple, the peer ISN or the cookie is
 * refused; an IPv6 cookie is not valid for an IPv4 tuple with the same low
 * bytes, nor the reverse; expiry as for IPv4).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "net/tcp_isn.h"
#include "net/tcp_syncookie.h"
#include "result.h"

#define SEC 1000000000ULL

static const struct tcp_isn_key key = {0x0123456789abcdefULL, 0xfedcba9876543210ULL};

static struct pg_addr a6(uint8_t last)
{
	uint8_t b[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0x18, [15] = last};

	return pg_addr_v6(b);
}

static void test_isn_v4_unchanged(void **state)
{
	(void)state;
	for (uint32_t i = 0; i < 1000; i++) {
		uint32_t l = htonl(0xc6120001u + i), r = htonl(0xcb007100u + 7 * i);
		struct pg_addr la = pg_addr_v4(l), ra = pg_addr_v4(r);
		uint16_t lp = htons((uint16_t)(25 + i)), rp = htons((uint16_t)(40000 + i));

		assert_int_equal(tcp_isn_addr(&key, &la, &ra, lp, rp, i * 123457ULL),
		                 tcp_isn(&key, l, r, lp, rp, i * 123457ULL));
	}
}

static void test_isn_v6_every_byte(void **state)
{
	struct pg_addr l = a6(1), r = a6(2);
	uint16_t lp = htons(25), rp = htons(40001);
	uint64_t t = 5 * SEC;
	uint32_t base = tcp_isn_addr(&key, &l, &r, lp, rp, t);

	(void)state;
	for (unsigned k = 0; k < 16; k++) {
		struct pg_addr x = l, y = r;

		x.v6[k] ^= 0x01;
		y.v6[k] ^= 0x80;
		assert_int_not_equal(tcp_isn_addr(&key, &x, &r, lp, rp, t), base);
		assert_int_not_equal(tcp_isn_addr(&key, &l, &y, lp, rp, t), base);
	}
	assert_int_not_equal(tcp_isn_addr(&key, &l, &r, htons(26), rp, t), base);
	assert_int_not_equal(tcp_isn_addr(&key, &l, &r, lp, htons(40002), t), base);
	/* the orientation matters: ours first */
	assert_int_not_equal(tcp_isn_addr(&key, &r, &l, rp, lp, t), base);
	/* the RFC 6528 clock: 4 us ticks on top of F */
	assert_int_equal(tcp_isn_addr(&key, &l, &r, lp, rp, t + SEC) - base, 250000);
}

static void test_cookie6_classes(void **state)
{
	struct pg_addr s = a6(7), d = a6(1);
	uint16_t sp = htons(51515), dp = htons(25);
	static const struct {
		uint16_t peer, want;
	} cases[] = {{0, 1220},    {536, 1220},  {1219, 1220}, {1220, 1220},
	             {1419, 1220}, {1420, 1420}, {1439, 1420}, {1440, 1440},
	             {1460, 1440}, {8939, 1440}, {8940, 8940}, {65535, 8940}};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t c =
		    tcp_syncookie_make_addr(&key, &s, &d, sp, dp, 0x1234, cases[i].peer, 10 * SEC);
		uint16_t mss = 0;

		assert_int_equal(tcp_syncookie_mss6(cases[i].peer), cases[i].want);
		assert_int_equal(
		    tcp_syncookie_check_addr(&key, &s, &d, sp, dp, 0x1234, c, 11 * SEC, &mss),
		    PG_OK);
		assert_int_equal(mss, cases[i].want);
	}
}

static void test_cookie6_tamper(void **state)
{
	struct pg_addr s = a6(7), d = a6(1);
	uint16_t sp = htons(51515), dp = htons(25), mss;
	uint64_t now = 100 * SEC;
	uint32_t c = tcp_syncookie_make_addr(&key, &s, &d, sp, dp, 0xdeadbeef, 1440, now);
	struct pg_addr s4 = pg_addr_v4(0), d4 = pg_addr_v4(0);

	(void)state;
	assert_int_equal(tcp_syncookie_check_addr(&key, &s, &d, sp, dp, 0xdeadbeef, c, now, &mss),
	                 PG_OK);
	for (unsigned k = 0; k < 16; k++) {
		struct pg_addr x = s, y = d;

		x.v6[k] ^= 0x04;
		y.v6[k] ^= 0x20;
		assert_int_equal(
		    tcp_syncookie_check_addr(&key, &x, &d, sp, dp, 0xdeadbeef, c, now, &mss),
		    PG_DECLINED);
		assert_int_equal(
		    tcp_syncookie_check_addr(&key, &s, &y, sp, dp, 0xdeadbeef, c, now, &mss),
		    PG_DECLINED);
	}
	assert_int_equal(
	    tcp_syncookie_check_addr(&key, &s, &d, htons(51516), dp, 0xdeadbeef, c, now, &mss),
	    PG_DECLINED);
	assert_int_equal(tcp_syncookie_check_addr(&key, &s, &d, sp, dp, 0xdeadbeee, c, now, &mss),
	                 PG_DECLINED);
	for (unsigned bit = 0; bit < 32; bit++)
		assert_int_equal(tcp_syncookie_check_addr(&key, &s, &d, sp, dp, 0xdeadbeef,
		                                          c ^ (1u << bit), now, &mss),
		                 PG_DECLINED);
	/* the same low 4 bytes as IPv4 addresses: another tuple altogether */
	memcpy(&s4.v4, s.v6 + 12, 4);
	memcpy(&d4.v4, d.v6 + 12, 4);
	assert_int_equal(tcp_syncookie_check_addr(&key, &s4, &d4, sp, dp, 0xdeadbeef, c, now, &mss),
	                 PG_DECLINED);
	/* expired after MAX_AGE + 1 periods */
	assert_int_equal(tcp_syncookie_check_addr(
	                     &key, &s, &d, sp, dp, 0xdeadbeef, c,
	                     now + (TCP_SYNCOOKIE_MAX_AGE + 1) * TCP_SYNCOOKIE_PERIOD_NS, &mss),
	                 PG_DECLINED);
}

/* The IPv4 entry points are the *_addr ones with IPv4 addresses: one cookie, both ways. */
static void test_cookie_v4_wrappers(void **state)
{
	uint32_t s = htonl(0xcb007107), d = htonl(0xc6120001);
	struct pg_addr sa = pg_addr_v4(s), da = pg_addr_v4(d);
	uint16_t mss = 0;
	uint32_t c = tcp_syncookie_make(&key, s, d, htons(1), htons(25), 42, 1460, 3 * SEC);

	(void)state;
	assert_int_equal(
	    c, tcp_syncookie_make_addr(&key, &sa, &da, htons(1), htons(25), 42, 1460, 3 * SEC));
	assert_int_equal(
	    tcp_syncookie_check_addr(&key, &sa, &da, htons(1), htons(25), 42, c, 3 * SEC, &mss),
	    PG_OK);
	assert_int_equal(mss, 1460);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_isn_v4_unchanged),   cmocka_unit_test(test_isn_v6_every_byte),
	    cmocka_unit_test(test_cookie6_classes),    cmocka_unit_test(test_cookie6_tamper),
	    cmocka_unit_test(test_cookie_v4_wrappers),
	};

	return cmocka_run_group_tests_name("tcp_addr", tests, NULL, NULL);
}
