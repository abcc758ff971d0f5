/*
 * test_tcp_isn.c - SipHash-2-4 against the 64 reference vectors of the
 * SipHash paper (key 00..0f, messages of 0..63 bytes 00 01 02 ...), and
 * RFC 6528 ISNs: a 250,000/s clock plus a keyed, tuple-dependent offset,
 * checked against known answers computed with OpenSSL's SipHash.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "net/tcp_isn.h"
#include "result.h"

/* Key bytes 00..0f read little-endian, as the reference does. */
static const struct tcp_isn_key ref_key = {0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};

/*
 * vectors_sip64[] of the reference implementation (github.com/veorq/SipHash,
 * vectors.h): output bytes for the message of i bytes 00, 01, .., i-1.
 * Cross-checked when written against OpenSSL 3's SIPHASH MAC (size 8).
 */
static const uint8_t sip64_vectors[64][8] = {
    {0x31, 0x0e, 0x0e, 0xdd, 0x47, 0xdb, 0x6f, 0x72}, /*  0 */
    {0xfd, 0x67, 0xdc, 0x93, 0xc5, 0x39, 0xf8, 0x74}, /*  1 */
    {0x5a, 0x4f, 0xa9, 0xd9, 0x09, 0x80, 0x6c, 0x0d}, /*  2 */
    {0x2d, 0x7e, 0xfb, 0xd7, 0x96, 0x66, 0x67, 0x85}, /*  3 */
    {0xb7, 0x87, 0x71, 0x27, 0xe0, 0x94, 0x27, 0xcf}, /*  4 */
    {0x8d, 0xa6, 0x99, 0xcd, 0x64, 0x55, 0x76, 0x18}, /*  5 */
    {0xce, 0xe3, 0xfe, 0x58, 0x6e, 0x46, 0xc9, 0xcb}, /*  6 */
    {0x37, 0xd1, 0x01, 0x8b, 0xf5, 0x00, 0x02, 0xab}, /*  7 */
    {0x62, 0x24, 0x93, 0x9a, 0x79, 0xf5, 0xf5, 0x93}, /*  8 */
    {0xb0, 0xe4, 0xa9, 0x0b, 0xdf, 0x82, 0x00, 0x9e}, /*  9 */
    {0xf3, 0xb9, 0xdd, 0x94, 0xc5, 0xbb, 0x5d, 0x7a}, /* 10 */
    {0xa7, 0xad, 0x6b, 0x22, 0x46, 0x2f, 0xb3, 0xf4}, /* 11 */
    {0xfb, 0xe5, 0x0e, 0x86, 0xbc, 0x8f, 0x1e, 0x75}, /* 12 */
    {0x90, 0x3d, 0x84, 0xc0, 0x27, 0x56, 0xea, 0x14}, /* 13 */
    {0xee, 0xf2, 0x7a, 0x8e, 0x90, 0xca, 0x23, 0xf7}, /* 14 */
    {0xe5, 0x45, 0xbe, 0x49, 0x61, 0xca, 0x29, 0xa1}, /* 15 */
    {0xdb, 0x9b, 0xc2, 0x57, 0x7f, 0xcc, 0x2a, 0x3f}, /* 16 */
    {0x94, 0x47, 0xbe, 0x2c, 0xf5, 0xe9, 0x9a, 0x69}, /* 17 */
    {0x9c, 0xd3, 0x8d, 0x96, 0xf0, 0xb3, 0xc1, 0x4b}, /* 18 */
    {0xbd, 0x61, 0x79, 0xa7, 0x1d, 0xc9, 0x6d, 0xbb}, /* 19 */
    {0x98, 0xee, 0xa2, 0x1a, 0xf2, 0x5c, 0xd6, 0xbe}, /* 20 */
    {0xc7, 0x67, 0x3b, 0x2e, 0xb0, 0xcb, 0xf2, 0xd0}, /* 21 */
    {0x88, 0x3e, 0xa3, 0xe3, 0x95, 0x67, 0x53, 0x93}, /* 22 */
    {0xc8, 0xce, 0x5c, 0xcd, 0x8c, 0x03, 0x0c, 0xa8}, /* 23 */
    {0x94, 0xaf, 0x49, 0xf6, 0xc6, 0x50, 0xad, 0xb8}, /* 24 */
    {0xea, 0xb8, 0x85, 0x8a, 0xde, 0x92, 0xe1, 0xbc}, /* 25 */
    {0xf3, 0x15, 0xbb, 0x5b, 0xb8, 0x35, 0xd8, 0x17}, /* 26 */
    {0xad, 0xcf, 0x6b, 0x07, 0x63, 0x61, 0x2e, 0x2f}, /* 27 */
    {0xa5, 0xc9, 0x1d, 0xa7, 0xac, 0xaa, 0x4d, 0xde}, /* 28 */
    {0x71, 0x65, 0x95, 0x87, 0x66, 0x50, 0xa2, 0xa6}, /* 29 */
    {0x28, 0xef, 0x49, 0x5c, 0x53, 0xa3, 0x87, 0xad}, /* 30 */
    {0x42, 0xc3, 0x41, 0xd8, 0xfa, 0x92, 0xd8, 0x32}, /* 31 */
    {0xce, 0x7c, 0xf2, 0x72, 0x2f, 0x51, 0x27, 0x71}, /* 32 */
    {0xe3, 0x78, 0x59, 0xf9, 0x46, 0x23, 0xf3, 0xa7}, /* 33 */
    {0x38, 0x12, 0x05, 0xbb, 0x1a, 0xb0, 0xe0, 0x12}, /* 34 */
    {0xae, 0x97, 0xa1, 0x0f, 0xd4, 0x34, 0xe0, 0x15}, /* 35 */
    {0xb4, 0xa3, 0x15, 0x08, 0xbe, 0xff, 0x4d, 0x31}, /* 36 */
    {0x81, 0x39, 0x62, 0x29, 0xf0, 0x90, 0x79, 0x02}, /* 37 */
    {0x4d, 0x0c, 0xf4, 0x9e, 0xe5, 0xd4, 0xdc, 0xca}, /* 38 */
    {0x5c, 0x73, 0x33, 0x6a, 0x76, 0xd8, 0xbf, 0x9a}, /* 39 */
    {0xd0, 0xa7, 0x04, 0x53, 0x6b, 0xa9, 0x3e, 0x0e}, /* 40 */
    {0x92, 0x59, 0x58, 0xfc, 0xd6, 0x42, 0x0c, 0xad}, /* 41 */
    {0xa9, 0x15, 0xc2, 0x9b, 0xc8, 0x06, 0x73, 0x18}, /* 42 */
    {0x95, 0x2b, 0x79, 0xf3, 0xbc, 0x0a, 0xa6, 0xd4}, /* 43 */
    {0xf2, 0x1d, 0xf2, 0xe4, 0x1d, 0x45, 0x35, 0xf9}, /* 44 */
    {0x87, 0x57, 0x75, 0x19, 0x04, 0x8f, 0x53, 0xa9}, /* 45 */
    {0x10, 0xa5, 0x6c, 0xf5, 0xdf, 0xcd, 0x9a, 0xdb}, /* 46 */
    {0xeb, 0x75, 0x09, 0x5c, 0xcd, 0x98, 0x6c, 0xd0}, /* 47 */
    {0x51, 0xa9, 0xcb, 0x9e, 0xcb, 0xa3, 0x12, 0xe6}, /* 48 */
    {0x96, 0xaf, 0xad, 0xfc, 0x2c, 0xe6, 0x66, 0xc7}, /* 49 */
    {0x72, 0xfe, 0x52, 0x97, 0x5a, 0x43, 0x64, 0xee}, /* 50 */
    {0x5a, 0x16, 0x45, 0xb2, 0x76, 0xd5, 0x92, 0xa1}, /* 51 */
    {0xb2, 0x74, 0xcb, 0x8e, 0xbf, 0x87, 0x87, 0x0a}, /* 52 */
    {0x6f, 0x9b, 0xb4, 0x20, 0x3d, 0xe7, 0xb3, 0x81}, /* 53 */
    {0xea, 0xec, 0xb2, 0xa3, 0x0b, 0x22, 0xa8, 0x7f}, /* 54 */
    {0x99, 0x24, 0xa4, 0x3c, 0xc1, 0x31, 0x57, 0x24}, /* 55 */
    {0xbd, 0x83, 0x8d, 0x3a, 0xaf, 0xbf, 0x8d, 0xb7}, /* 56 */
    {0x0b, 0x1a, 0x2a, 0x32, 0x65, 0xd5, 0x1a, 0xea}, /* 57 */
    {0x13, 0x50, 0x79, 0xa3, 0x23, 0x1c, 0xe6, 0x60}, /* 58 */
    {0x93, 0x2b, 0x28, 0x46, 0xe4, 0xd7, 0x06, 0x66}, /* 59 */
    {0xe1, 0x91, 0x5f, 0x5c, 0xb1, 0xec, 0xa4, 0x6c}, /* 60 */
    {0xf3, 0x25, 0x96, 0x5c, 0xa1, 0x6d, 0x62, 0x9f}, /* 61 */
    {0x57, 0x5f, 0xf2, 0x8e, 0x60, 0x38, 0x1b, 0xe5}, /* 62 */
    {0x72, 0x45, 0x06, 0xeb, 0x4c, 0x32, 0x8a, 0x95}, /* 63 */
};

static uint64_t le64(const uint8_t b[8])
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

static void test_siphash_reference_vectors(void **state)
{
	uint8_t msg[64];

	(void)state;
	for (int i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	/* The paper's worked example (Appendix A) is the 15-byte message. */
	assert_true(tcp_siphash24(&ref_key, msg, 15) == 0xa129ca6149be45e5ULL);
	assert_true(tcp_siphash24(&ref_key, msg, 0) == 0x726fdb47dd0e0e31ULL);
	assert_true(tcp_siphash24(&ref_key, msg, 63) == 0x958a324ceb064572ULL);
	for (int len = 0; len < 64; len++) {
		uint64_t want = le64(sip64_vectors[len]), got = tcp_siphash24(&ref_key, msg, len);

		if (got != want)
			print_message("# len %d: got %016llx want %016llx\n", len,
			              (unsigned long long)got, (unsigned long long)want);
		assert_true(got == want);
	}
}

/* Any alignment of the input gives the same answer (loads are bytewise). */
static void test_siphash_unaligned(void **state)
{
	uint8_t buf[80];

	(void)state;
	for (int off = 1; off < 8; off++) {
		for (int i = 0; i < 64; i++)
			buf[off + i] = (uint8_t)i;
		for (int len = 0; len < 64; len++)
			assert_true(tcp_siphash24(&ref_key, buf + off, len) ==
			            le64(sip64_vectors[len]));
	}
}

#define IP4(a, b, c, d) htonl((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

#define OUR_IP IP4(198, 18, 0, 1)
#define PEER_IP IP4(198, 18, 0, 2)

/* M is a 4 µs clock: exactly 250,000 ticks a second, whatever the tuple. */
static void test_isn_clock_rate(void **state)
{
	const uint16_t lp = htons(25), rp = htons(40000);
	const uint64_t t0 = 1234567890123ULL;
	const uint64_t to_tick = TCP_ISN_TICK_NS - t0 % TCP_ISN_TICK_NS;
	uint32_t isn0 = tcp_isn(&ref_key, OUR_IP, PEER_IP, lp, rp, t0);

	(void)state;
	assert_int_equal(tcp_isn(&ref_key, OUR_IP, PEER_IP, lp, rp, t0 + 1000000000ULL) - isn0,
	                 250000);
	assert_int_equal(tcp_isn(&ref_key, OUR_IP, PEER_IP, lp, rp, t0 + 60000000000ULL) - isn0,
	                 15000000);
	/* The next tick comes exactly on the next multiple of 4 µs. */
	assert_int_equal(tcp_isn(&ref_key, OUR_IP, PEER_IP, lp, rp, t0 + to_tick - 1) - isn0, 0);
	assert_int_equal(tcp_isn(&ref_key, OUR_IP, PEER_IP, lp, rp, t0 + to_tick) - isn0, 1);
	/* It wraps about every 4.77 hours (RFC 6528 §3), modulo 2^32. */
	assert_int_equal(tcp_isn(&ref_key, OUR_IP, PEER_IP, lp, rp,
	                         t0 + (uint64_t)TCP_ISN_TICK_NS * 0x100000000ULL) -
	                     isn0,
	                 0);
	/* Far in the future: no overflow trouble, still the same rate. */
	assert_int_equal(tcp_isn(&ref_key, OUR_IP, PEER_IP, lp, rp, UINT64_MAX) -
	                     tcp_isn(&ref_key, OUR_IP, PEER_IP, lp, rp, UINT64_MAX - 4000000ULL),
	                 1000);
}

/*
 * Known answers, computed outside Postern: F = the first 4 output bytes
 * (little-endian) of OpenSSL 3's SIPHASH MAC (size 8) over the 12 tuple
 * bytes laddr, raddr, lport, rport as they stand in the headers, e.g.
 *   printf '\xc6\x12\x00\x01\xc6\x12\x00\x02\x00\x19\x04\x00' |
 *     openssl mac -macopt hexkey:000102030405060708090a0b0c0d0e0f \
 *     -macopt size:8 SIPHASH                      -> 9D56B03ACF2D4D9C
 * and ISN = (now_ns / 4000 mod 2^32) + F mod 2^32 (RFC 6528 §3).
 */
static void test_isn_known_answers(void **state)
{
	/* key bytes ff ee .. 00 */
	static const struct tcp_isn_key k2 = {0x8899aabbccddeeffULL, 0x0011223344556677ULL};
	static const struct {
		const struct tcp_isn_key *key;
		uint8_t la[4], ra[4];
		uint16_t lport, rport;
		uint64_t now_ns;
		uint32_t isn;
	} kat[] = {
	    {&ref_key, {198, 18, 0, 1}, {198, 18, 0, 2}, 25, 1024, 0, 0x3ab0569d},
	    {&ref_key, {198, 18, 0, 1}, {198, 18, 0, 2}, 25, 1024, 7777, 0x3ab0569e},
	    {&ref_key, {198, 18, 0, 1}, {198, 18, 0, 2}, 25, 40000, 5000000000ULL, 0x3da4e674},
	    {&ref_key, {198, 19, 0, 1}, {198, 19, 0, 2}, 61000, 25, 1234567890123ULL, 0x28dca1a4},
	    {&ref_key, {198, 18, 0, 1}, {203, 0, 113, 250}, 25, 40399, 777000000000ULL, 0xc2fdc27f},
	    {&ref_key, {10, 0, 0, 1}, {10, 0, 0, 2}, 65535, 1, UINT64_MAX, 0x45d438f3},
	    /* M = 2^32 ticks: wrapped to 0, only F is left */
	    {&k2, {198, 18, 0, 1}, {198, 18, 0, 2}, 25, 40000, 17179869184000ULL, 0x9d7bd935},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(kat) / sizeof(kat[0]); i++) {
		uint32_t la, ra;
		uint32_t got;

		memcpy(&la, kat[i].la, 4);
		memcpy(&ra, kat[i].ra, 4);
		got = tcp_isn(kat[i].key, la, ra, htons(kat[i].lport), htons(kat[i].rport),
		              kat[i].now_ns);
		if (got != kat[i].isn)
			print_message("# vector %zu: got %08x want %08x\n", i, got, kat[i].isn);
		assert_int_equal(got, kat[i].isn);
	}
}

/* Every field and both key halves move F; the tuple orientation matters. */
static void test_isn_depends_on_tuple_and_key(void **state)
{
	const uint64_t t = 5000000000ULL;
	const uint16_t lp = htons(25), rp = htons(40000);
	uint32_t base = tcp_isn(&ref_key, OUR_IP, PEER_IP, lp, rp, t);
	struct tcp_isn_key k2 = ref_key;

	(void)state;
	assert_int_not_equal(base, tcp_isn(&ref_key, OUR_IP ^ htonl(1), PEER_IP, lp, rp, t));
	assert_int_not_equal(base, tcp_isn(&ref_key, OUR_IP, PEER_IP ^ htonl(1), lp, rp, t));
	assert_int_not_equal(base, tcp_isn(&ref_key, OUR_IP, PEER_IP, htons(26), rp, t));
	assert_int_not_equal(base, tcp_isn(&ref_key, OUR_IP, PEER_IP, lp, htons(40001), t));
	assert_int_not_equal(base, tcp_isn(&ref_key, PEER_IP, OUR_IP, rp, lp, t));
	k2.k0 ^= 1;
	assert_int_not_equal(base, tcp_isn(&k2, OUR_IP, PEER_IP, lp, rp, t));
	k2 = ref_key;
	k2.k1 ^= 1ULL << 63;
	assert_int_not_equal(base, tcp_isn(&k2, OUR_IP, PEER_IP, lp, rp, t));
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The realistic stream: 100,000 distinct tuples from one client range (250
 * hosts, 400 source ports each), all at the same instant. The offsets look
 * uniform: birthday collisions as for random 32-bit values (about 1.2
 * expected), and each of the 16 top-nibble buckets within 5% of its share.
 */
static void test_isn_spread(void **state)
{
	const int n = 250 * 400;
	uint32_t *isn = calloc(n, sizeof(*isn));
	unsigned bucket[16] = {0};
	int collisions = 0, i = 0;

	(void)state;
	assert_non_null(isn);
	for (int host = 1; host <= 250; host++) {
		for (int port = 0; port < 400; port++, i++) {
			isn[i] = tcp_isn(&ref_key, OUR_IP, IP4(203, 0, 113, host), htons(25),
			                 htons((uint16_t)(40000 + port)), 777000000000ULL);
			bucket[isn[i] >> 28]++;
		}
	}
	qsort(isn, n, sizeof(*isn), cmp_u32);
	for (i = 1; i < n; i++)
		collisions += isn[i] == isn[i - 1];
	print_message("# %d collisions among %d ISNs\n", collisions, n);
	assert_true(collisions < 10);
	for (int b = 0; b < 16; b++)
		assert_true(bucket[b] > n / 16 * 0.95 && bucket[b] < n / 16 * 1.05);
	free(isn);
}

static void test_key_init(void **state)
{
	struct tcp_isn_key a, b;

	(void)state;
	assert_int_equal(tcp_isn_key_init(&a), PG_OK);
	assert_int_equal(tcp_isn_key_init(&b), PG_OK);
	assert_false(a.k0 == b.k0 && a.k1 == b.k1);
	assert_false(a.k0 == 0 && a.k1 == 0);
	assert_int_not_equal(tcp_isn(&a, OUR_IP, PEER_IP, htons(25), htons(40000), 0),
	                     tcp_isn(&b, OUR_IP, PEER_IP, htons(25), htons(40000), 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_siphash_reference_vectors),
	    cmocka_unit_test(test_siphash_unaligned),
	    cmocka_unit_test(test_isn_clock_rate),
	    cmocka_unit_test(test_isn_known_answers),
	    cmocka_unit_test(test_isn_depends_on_tuple_and_key),
	    cmocka_unit_test(test_isn_spread),
	    cmocka_unit_test(test_key_init),
	};

	return cmocka_run_group_tests_name("tcp_isn", tests, NULL, NULL);
}
