/*
 * test_tcp_syncookie.c - SYN cookies (RFC 4987 §3.6): every MSS class
 * round-trips, any change to the 4-tuple, peer ISN or cookie is refused,
 * cookies expire on a virtual clock, options survive through the
 * timestamp, and a million blind guesses are all refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdlib.h>

#include "net/tcp_syncookie.h"
#include "result.h"

#define SEC 1000000000ULL
#define IP4(a, b, c, d) htonl((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

static const struct tcp_isn_key key = {0x0123456789abcdefULL, 0xfedcba9876543210ULL};

/* The SYN as received: source = the peer. */
struct syn {
	uint32_t saddr, daddr;
	uint16_t sport, dport;
	uint32_t peer_isn;
};

static struct syn syn_fixed(void)
{
	struct syn s = {IP4(203, 0, 113, 7), IP4(198, 18, 0, 1), htons(51515), htons(25),
	                0x89abcdefu};

	return s;
}

static uint32_t make(const struct syn *s, uint16_t mss, uint64_t now)
{
	return tcp_syncookie_make(&key, s->saddr, s->daddr, s->sport, s->dport, s->peer_isn, mss,
	                          now);
}

static int check(const struct syn *s, uint32_t cookie, uint64_t now, uint16_t *mss)
{
	return tcp_syncookie_check(&key, s->saddr, s->daddr, s->sport, s->dport, s->peer_isn,
	                           cookie, now, mss);
}

static uint32_t rnd32(unsigned *seed)
{
	return ((uint32_t)rand_r(seed) << 16) ^ (uint32_t)rand_r(seed);
}

static void test_mss_rounds_down_to_table(void **state)
{
	static const struct {
		uint16_t peer, want;
	} cases[] = {
	    {0, 536},     {1, 536},     {535, 536},   {536, 536},   {537, 536},
	    {1299, 536},  {1300, 1300}, {1400, 1300}, {1439, 1300}, {1440, 1440},
	    {1459, 1440}, {1460, 1460}, {1461, 1460}, {8960, 1460}, {65535, 1460},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(tcp_syncookie_mss(cases[i].peer), cases[i].want);
}

/* Every class, through the handshake arithmetic the core will do. */
static void test_round_trip_every_mss_class(void **state)
{
	struct syn s = syn_fixed();
	const uint64_t now = 1000 * SEC + 12345;

	(void)state;
	for (int i = 0; i < TCP_SYNCOOKIE_NMSS; i++) {
		uint16_t mss = 0;
		uint32_t iss = make(&s, tcp_syncookie_msstab[i], now);
		/* The ACK: SEG.SEQ = peer ISN + 1, SEG.ACK = ISS + 1. */
		uint32_t seg_seq = s.peer_isn + 1, seg_ack = iss + 1;
		struct syn ack = s;

		ack.peer_isn = seg_seq - 1;
		assert_int_equal(check(&ack, seg_ack - 1, now + 2 * SEC, &mss), PG_OK);
		assert_int_equal(mss, tcp_syncookie_msstab[i]);
	}
}

/* Many tuples and ISNs, including the wrap of the peer ISN. */
static void test_round_trip_random(void **state)
{
	unsigned seed = 99;

	(void)state;
	for (int i = 0; i < 20000; i++) {
		struct syn s = {rnd32(&seed), rnd32(&seed), (uint16_t)rnd32(&seed),
		                (uint16_t)rnd32(&seed), i == 0 ? 0xffffffffu : rnd32(&seed)};
		uint16_t peer_mss = (uint16_t)rnd32(&seed), mss = 0;
		uint64_t now = (uint64_t)rnd32(&seed) * 1000 + i;

		assert_int_equal(check(&s, make(&s, peer_mss, now), now + 30 * SEC, &mss), PG_OK);
		assert_int_equal(mss, tcp_syncookie_mss(peer_mss));
	}
}

static void test_tampering_fails(void **state)
{
	struct syn s = syn_fixed();
	const uint64_t now = 5000 * SEC;
	uint32_t cookie = make(&s, 1460, now);
	struct syn t;
	struct tcp_isn_key other = key;
	uint16_t mss = 0xdead;

	(void)state;
	assert_int_equal(check(&s, cookie, now, &mss), PG_OK);
	mss = 0xdead;
	for (int bit = 0; bit < 32; bit++) {
		t = s;
		t.saddr ^= 1u << bit;
		assert_int_equal(check(&t, cookie, now, &mss), PG_DECLINED);
		t = s;
		t.daddr ^= 1u << bit;
		assert_int_equal(check(&t, cookie, now, &mss), PG_DECLINED);
		t = s;
		t.peer_isn ^= 1u << bit;
		assert_int_equal(check(&t, cookie, now, &mss), PG_DECLINED);
		assert_int_equal(check(&s, cookie ^ (1u << bit), now, &mss), PG_DECLINED);
		if (bit < 16) {
			t = s;
			t.sport ^= (uint16_t)(1u << bit);
			assert_int_equal(check(&t, cookie, now, &mss), PG_DECLINED);
			t = s;
			t.dport ^= (uint16_t)(1u << bit);
			assert_int_equal(check(&t, cookie, now, &mss), PG_DECLINED);
		}
	}
	/* Off by one either way: the SEG.ACK - 1 / SEG.SEQ - 1 contract matters. */
	assert_int_equal(check(&s, cookie + 1, now, &mss), PG_DECLINED);
	assert_int_equal(check(&s, cookie - 1, now, &mss), PG_DECLINED);
	t = s;
	t.peer_isn = s.peer_isn + 1;
	assert_int_equal(check(&t, cookie, now, &mss), PG_DECLINED);
	/* Swapped orientation (the core passing our side as source). */
	t.saddr = s.daddr;
	t.daddr = s.saddr;
	t.sport = s.dport;
	t.dport = s.sport;
	t.peer_isn = s.peer_isn;
	assert_int_equal(check(&t, cookie, now, &mss), PG_DECLINED);
	/* Another process key. */
	other.k1 ^= 1;
	assert_int_equal(tcp_syncookie_check(&other, s.saddr, s.daddr, s.sport, s.dport, s.peer_isn,
	                                     cookie, now, &mss),
	                 PG_DECLINED);
	/* A refusal leaves *mss_out alone. */
	assert_int_equal(mss, 0xdead);
}

/*
 * Lifetime on a virtual clock: from at least one 64 s period to under two.
 * Made at the start, the middle and the last nanosecond of a period.
 */
static void test_expiry(void **state)
{
	const uint64_t period = TCP_SYNCOOKIE_PERIOD_NS;
	const uint64_t made_at[] = {100 * period, 100 * period + period / 2, 101 * period - 1};
	struct syn s = syn_fixed();
	uint16_t mss;

	(void)state;
	for (size_t i = 0; i < sizeof(made_at) / sizeof(made_at[0]); i++) {
		uint64_t t = made_at[i];
		uint64_t last_ok = (t / period + 2) * period - 1; /* end of the next period */
		uint32_t cookie = make(&s, 1440, t);

		assert_int_equal(check(&s, cookie, t, &mss), PG_OK);
		assert_int_equal(check(&s, cookie, t + period - 1, &mss), PG_OK);
		assert_int_equal(check(&s, cookie, last_ok, &mss), PG_OK);
		assert_int_equal(mss, 1440);
		assert_true(last_ok - t >= period - 1 && last_ok - t < 2 * period);
		assert_int_equal(check(&s, cookie, last_ok + 1, &mss), PG_DECLINED);
		assert_int_equal(check(&s, cookie, t + 2 * period, &mss), PG_DECLINED);
		/* Four periods on, the counter bits alias; the MAC still refuses. */
		for (uint64_t p = 2; p <= 8; p++)
			assert_int_equal(check(&s, cookie, t + p * period, &mss), PG_DECLINED);
		/* A cookie from the future (clock went back a period) is refused. */
		assert_int_equal(check(&s, cookie, t - period, &mss), PG_DECLINED);
	}
	/* Near time zero there is no previous period to look at. */
	assert_int_equal(check(&s, make(&s, 536, 0), 0, &mss), PG_OK);
	assert_int_equal(check(&s, make(&s, 536, 0), period, &mss), PG_OK);
}

/* RFC 6528's point, kept by the whitening: cookies look uniformly random. */
static void test_cookies_look_random(void **state)
{
	struct syn s = syn_fixed();
	unsigned bucket[16] = {0};
	const int n = 65536;

	(void)state;
	for (int i = 0; i < n; i++) {
		s.sport = htons((uint16_t)i);
		bucket[make(&s, 1460, 777 * SEC) >> 28]++;
	}
	for (int b = 0; b < 16; b++)
		assert_true(bucket[b] > n / 16 * 0.93 && bucket[b] < n / 16 * 1.07);
}

static void test_timestamp_options_round_trip(void **state)
{
	static const uint32_t clocks[] = {0,       5,          63,         64,        65,
	                                  1000000, 0x7fffffff, 0xffffffc0, 0xffffffff};

	(void)state;
	for (size_t c = 0; c < sizeof(clocks) / sizeof(clocks[0]); c++) {
		/* Shifts 0..14, then 15 = TCP_SYNCOOKIE_WSCALE_NONE. */
		for (unsigned ws = 0; ws <= TCP_SYNCOOKIE_WSCALE_NONE; ws++) {
			for (int sack = 0; sack <= 1; sack++) {
				struct tcp_syncookie_opts in = {(uint8_t)ws, sack != 0, true};
				struct tcp_syncookie_opts out = {0, false, false};
				uint32_t tsval = tcp_syncookie_tsval(clocks[c], &in);
				int32_t behind = (int32_t)(clocks[c] - tsval);

				/* Never ahead of our clock, at most 63 ticks behind. */
				assert_true(behind >= 0 && behind <= 63);
				assert_int_equal(tcp_syncookie_ts_decode(tsval, &out), PG_OK);
				assert_int_equal(out.wscale, ws);
				assert_int_equal(out.sack_ok, sack != 0);
				assert_true(out.ts_ok);
			}
		}
	}
}

static void test_timestamp_edge_cases(void **state)
{
	struct tcp_syncookie_opts in = {200, false, true}, out;

	(void)state;
	/* RFC 7323 §2.3: a shift above 14 is remembered as 14. */
	assert_int_equal(tcp_syncookie_ts_decode(tcp_syncookie_tsval(1000, &in), &out), PG_OK);
	assert_int_equal(out.wscale, 14);
	/* Bit 5 is never ours. */
	assert_int_equal(tcp_syncookie_ts_decode(0x20, &out), PG_DECLINED);
	assert_int_equal(tcp_syncookie_ts_decode(0x12345660 | 0x20, &out), PG_DECLINED);
}

/*
 * Blind guessing, the attack cookies must survive: a million random ACKs,
 * each from a random spoofed tuple and ISN, then a million random cookies
 * for one fixed tuple. Expected acceptances about 0.002 per million
 * (2 of 4 counter values, times 2^-28); any acceptance here fails.
 */
static void test_random_cookies_refused(void **state)
{
	struct syn fixed = syn_fixed();
	const uint64_t now = 86400 * SEC;
	unsigned seed = 20260101;
	unsigned accepted = 0;
	uint16_t mss;

	(void)state;
	for (int i = 0; i < 1000000; i++) {
		struct syn s = {rnd32(&seed), rnd32(&seed), (uint16_t)rnd32(&seed),
		                (uint16_t)rnd32(&seed), rnd32(&seed)};

		accepted += check(&s, rnd32(&seed), now, &mss) == PG_OK;
	}
	for (int i = 0; i < 1000000; i++)
		accepted += check(&fixed, rnd32(&seed), now, &mss) == PG_OK;
	print_message("# %u of 2000000 random cookies accepted\n", accepted);
	assert_int_equal(accepted, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mss_rounds_down_to_table),
	    cmocka_unit_test(test_round_trip_every_mss_class),
	    cmocka_unit_test(test_round_trip_random),
	    cmocka_unit_test(test_tampering_fails),
	    cmocka_unit_test(test_expiry),
	    cmocka_unit_test(test_cookies_look_random),
	    cmocka_unit_test(test_timestamp_options_round_trip),
	    cmocka_unit_test(test_timestamp_edge_cases),
	    cmocka_unit_test(test_random_cookies_refused),
	};

	return cmocka_run_group_tests_name("tcp_syncookie", tests, NULL, NULL);
}
