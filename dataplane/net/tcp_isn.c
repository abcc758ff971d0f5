/*
 * tcp_isn.c - RFC 6528 initial sequence numbers: a 4 µs clock plus a keyed
 * hash of the connection's 4-tuple, so an off-path attacker cannot predict
 * our ISNs while successive incarnations of one 4-tuple still move forward.
 * The PRF is SipHash-2-4, written from the reference algorithm in the
 * SipHash paper; tests check it against all 64 reference vectors.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>

#include "result.h"
#include "tcp_isn.h"

int tcp_isn_key_init(struct tcp_isn_key *k)
{
	uint8_t buf[16];
	size_t got = 0;

	while (got < sizeof(buf)) {
		ssize_t n = getrandom(buf + got, sizeof(buf) - got, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return PG_ERROR;
		}
		got += (size_t)n;
	}
	memcpy(&k->k0, buf, 8);
	memcpy(&k->k1, buf + 8, 8);
	/* Byte order of the key words does not matter for a random key. */
	explicit_bzero(buf, sizeof(buf));
	return PG_OK;
}

static inline uint64_t rotl64(uint64_t x, unsigned b)
{
	return (x << b) | (x >> (64 - b));
}

/* Little-endian load of n <= 8 bytes, independent of host byte order. */
static inline uint64_t load_le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

#define SIPROUND                                                                                   \
	do {                                                                                       \
		v0 += v1;                                                                          \
		v1 = rotl64(v1, 13);                                                               \
		v1 ^= v0;                                                                          \
		v0 = rotl64(v0, 32);                                                               \
		v2 += v3;                                                                          \
		v3 = rotl64(v3, 16);                                                               \
		v3 ^= v2;                                                                          \
		v0 += v3;                                                                          \
		v3 = rotl64(v3, 21);                                                               \
		v3 ^= v0;                                                                          \
		v2 += v1;                                                                          \
		v1 = rotl64(v1, 17);                                                               \
		v1 ^= v2;                                                                          \
		v2 = rotl64(v2, 32);                                                               \
	} while (0)

uint64_t tcp_siphash24(const struct tcp_isn_key *k, const void *data, size_t len)
{
	const uint8_t *p = data;
	size_t tail = len & 7;
	const uint8_t *end = p + (len - tail);
	/* "somepseudorandomlygeneratedbytes" */
	uint64_t v0 = 0x736f6d6570736575ULL ^ k->k0;
	uint64_t v1 = 0x646f72616e646f6dULL ^ k->k1;
	uint64_t v2 = 0x6c7967656e657261ULL ^ k->k0;
	uint64_t v3 = 0x7465646279746573ULL ^ k->k1;
	uint64_t m;

	for (; p != end; p += 8) {
		m = load_le(p, 8);
		v3 ^= m;
		SIPROUND; /* c = 2 compression rounds */
		SIPROUND;
		v0 ^= m;
	}
	/* Last block: the remaining bytes, and the length mod 256 on top. */
	m = ((uint64_t)len << 56) | load_le(p, tail);
	v3 ^= m;
	SIPROUND;
	SIPROUND;
	v0 ^= m;
	v2 ^= 0xff;
	SIPROUND; /* d = 4 finalization rounds */
	SIPROUND;
	SIPROUND;
	SIPROUND;
	return v0 ^ v1 ^ v2 ^ v3;
}

uint32_t tcp_isn(const struct tcp_isn_key *k, uint32_t laddr, uint32_t raddr, uint16_t lport,
                 uint16_t rport, uint64_t now_ns)
{
	uint8_t tuple[12];
	uint32_t m = (uint32_t)(now_ns / TCP_ISN_TICK_NS);

	/* Header byte order as-is: F only has to be a fixed function of the tuple. */
	memcpy(tuple, &laddr, 4);
	memcpy(tuple + 4, &raddr, 4);
	memcpy(tuple + 8, &lport, 2);
	memcpy(tuple + 10, &rport, 2);
	return m + (uint32_t)tcp_siphash24(k, tuple, sizeof(tuple));
}

uint32_t tcp_isn_addr(const struct tcp_isn_key *k, const struct pg_addr *laddr,
                      const struct pg_addr *raddr, uint16_t lport, uint16_t rport, uint64_t now_ns)
{
	uint8_t tuple[36];
	uint32_t m = (uint32_t)(now_ns / TCP_ISN_TICK_NS);

	if (!pg_addr_is_v6(laddr))
		return tcp_isn(k, laddr->v4, raddr->v4, lport, rport, now_ns);
	/* RFC 6528 §3 F() over the IPv6 tuple; 36 bytes never collide with the 12 above. */
	memcpy(tuple, laddr->v6, 16);
	memcpy(tuple + 16, raddr->v6, 16);
	memcpy(tuple + 32, &lport, 2);
	memcpy(tuple + 34, &rport, 2);
	return m + (uint32_t)tcp_siphash24(k, tuple, sizeof(tuple));
}
