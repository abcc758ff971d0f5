/*
 * tcp_syncookie.c - SYN cookies (RFC 4987 §3.6), Linux-style in what they
 * remember (a coarse clock, an MSS class, and via the timestamp the window
 * scale and SACK-permitted) but with a 28-bit MAC rather than Linux's
 * additive hashes, so a blind guess is accepted with probability 2^-29.
 *
 * Cookie layout before whitening:
 *   bits 31-30  period counter mod 4   (now_ns / 64 s)
 *   bits 29-28  MSS class              (index into tcp_syncookie_msstab, or msstab6)
 *   bits 27-0   MAC = SipHash(key, "SCm", 4-tuple, peer ISN, full counter, class)
 * cookie = that + SipHash(key, "SCw", 4-tuple, peer ISN), mod 2^32, so all
 * 32 bits of our ISN are unpredictable to an off-path attacker (the point
 * of RFC 6528), not just the MAC. An IPv6 4-tuple is hashed whole, in a
 * message of its own layout and tag version.
 */
#include <string.h>

#include "result.h"
#include "tcp_syncookie.h"

const uint16_t tcp_syncookie_msstab[TCP_SYNCOOKIE_NMSS] = {536, 1300, 1440, 1460};
/* 1280, 1480, 1500 and 9000-byte IPv6 paths, less 60 bytes of headers (Linux's msstab6) */
const uint16_t tcp_syncookie_msstab6[TCP_SYNCOOKIE_NMSS] = {1220, 1420, 1440, 8940};

#define COOKIE_MAC_BITS 28
#define COOKIE_MAC_MASK ((1u << COOKIE_MAC_BITS) - 1)
#define COOKIE_CLASS_SHIFT 28
#define COOKIE_COUNT_SHIFT 30

/* Two counter bits tell apart MAX_AGE + 1 candidate periods. */
_Static_assert(TCP_SYNCOOKIE_MAX_AGE < 4, "cookie counter bits too few for MAX_AGE");
_Static_assert(TCP_SYNCOOKIE_NMSS == 4, "cookie has 2 bits of MSS class");

/* Low 6 bits of TSval: window scale, SACK-permitted, one reserved bit. */
#define TS_OPT_WSCALE_MASK 0x0fu
#define TS_OPT_SACK 0x10u
#define TS_OPT_RESERVED 0x20u
#define TS_OPT_MASK 0x3fu
#define TCP_MAX_WSCALE 14 /* RFC 7323 §2.3 */

/* The hash input. Tags keep these hashes apart from tcp_isn's (12 bytes). */
struct cookie_msg {
	uint8_t tag[4];
	uint32_t saddr, daddr;
	uint16_t sport, dport;
	uint32_t peer_isn;
	uint32_t mss_class; /* MAC only */
	uint64_t count;     /* MAC only */
};
_Static_assert(sizeof(struct cookie_msg) == 32, "cookie_msg has hidden padding");

#define COOKIE_MSG_WHITEN_LEN 20 /* tag + tuple + peer ISN */

/* The same for an IPv6 tuple, tag version 2 (tcp_isn_addr hashes 36 bytes). */
struct cookie_msg6 {
	uint8_t tag[4];
	uint8_t saddr[16], daddr[16];
	uint16_t sport, dport;
	uint32_t peer_isn;
	uint32_t mss_class; /* MAC only */
	uint64_t count;     /* MAC only */
};
_Static_assert(sizeof(struct cookie_msg6) == 56, "cookie_msg6 has hidden padding");

#define COOKIE_MSG6_WHITEN_LEN 44 /* tag + tuple + peer ISN */

/* SipHash of the tuple, peer ISN and, for the MAC (`count` given), period and class. */
static uint64_t cookie_hash(const struct tcp_isn_key *k, char kind, const struct pg_addr *saddr,
                            const struct pg_addr *daddr, uint16_t sport, uint16_t dport,
                            uint32_t peer_isn, const uint64_t *count, uint32_t mss_class)
{
	if (pg_addr_is_v6(saddr)) {
		struct cookie_msg6 msg;

		memset(&msg, 0, sizeof(msg));
		memcpy(msg.tag, (const uint8_t[4]){'S', 'C', (uint8_t)kind, 2}, 4);
		memcpy(msg.saddr, saddr->v6, 16);
		memcpy(msg.daddr, daddr->v6, 16);
		msg.sport = sport;
		msg.dport = dport;
		msg.peer_isn = peer_isn;
		if (count == NULL)
			return tcp_siphash24(k, &msg, COOKIE_MSG6_WHITEN_LEN);
		msg.count = *count;
		msg.mss_class = mss_class;
		return tcp_siphash24(k, &msg, sizeof(msg));
	} else {
		struct cookie_msg msg;

		memset(&msg, 0, sizeof(msg));
		memcpy(msg.tag, (const uint8_t[4]){'S', 'C', (uint8_t)kind, 1}, 4); /* version 1 */
		msg.saddr = saddr->v4;
		msg.daddr = daddr->v4;
		msg.sport = sport;
		msg.dport = dport;
		msg.peer_isn = peer_isn;
		if (count == NULL)
			return tcp_siphash24(k, &msg, COOKIE_MSG_WHITEN_LEN);
		msg.count = *count;
		msg.mss_class = mss_class;
		return tcp_siphash24(k, &msg, sizeof(msg));
	}
}

static uint32_t cookie_whiten(const struct tcp_isn_key *k, const struct pg_addr *saddr,
                              const struct pg_addr *daddr, uint16_t sport, uint16_t dport,
                              uint32_t peer_isn)
{
	return (uint32_t)cookie_hash(k, 'w', saddr, daddr, sport, dport, peer_isn, NULL, 0);
}

static uint32_t cookie_mac(const struct tcp_isn_key *k, const struct pg_addr *saddr,
                           const struct pg_addr *daddr, uint16_t sport, uint16_t dport,
                           uint32_t peer_isn, uint64_t count, uint32_t mss_class)
{
	return (uint32_t)cookie_hash(k, 'm', saddr, daddr, sport, dport, peer_isn, &count,
	                             mss_class) &
	       COOKIE_MAC_MASK;
}

static uint32_t mss_class_of(const uint16_t *tab, uint16_t peer_mss)
{
	uint32_t i;

	for (i = TCP_SYNCOOKIE_NMSS - 1; i > 0; i--)
		if (peer_mss >= tab[i])
			break;
	return i;
}

static const uint16_t *cookie_msstab(const struct pg_addr *a)
{
	return pg_addr_is_v6(a) ? tcp_syncookie_msstab6 : tcp_syncookie_msstab;
}

uint16_t tcp_syncookie_mss(uint16_t peer_mss)
{
	return tcp_syncookie_msstab[mss_class_of(tcp_syncookie_msstab, peer_mss)];
}

uint16_t tcp_syncookie_mss6(uint16_t peer_mss)
{
	return tcp_syncookie_msstab6[mss_class_of(tcp_syncookie_msstab6, peer_mss)];
}

uint32_t tcp_syncookie_make_addr(const struct tcp_isn_key *k, const struct pg_addr *saddr,
                                 const struct pg_addr *daddr, uint16_t sport, uint16_t dport,
                                 uint32_t peer_isn, uint16_t peer_mss, uint64_t now_ns)
{
	uint64_t count = now_ns / TCP_SYNCOOKIE_PERIOD_NS;
	uint32_t mss_class = mss_class_of(cookie_msstab(saddr), peer_mss);
	uint32_t v;

	v = (uint32_t)(count & 3) << COOKIE_COUNT_SHIFT | mss_class << COOKIE_CLASS_SHIFT |
	    cookie_mac(k, saddr, daddr, sport, dport, peer_isn, count, mss_class);
	return v + cookie_whiten(k, saddr, daddr, sport, dport, peer_isn);
}

int tcp_syncookie_check_addr(const struct tcp_isn_key *k, const struct pg_addr *saddr,
                             const struct pg_addr *daddr, uint16_t sport, uint16_t dport,
                             uint32_t peer_isn, uint32_t cookie, uint64_t now_ns, uint16_t *mss_out)
{
	uint64_t now_count = now_ns / TCP_SYNCOOKIE_PERIOD_NS;
	uint32_t v = cookie - cookie_whiten(k, saddr, daddr, sport, dport, peer_isn);
	uint32_t count_bits = v >> COOKIE_COUNT_SHIFT;
	uint32_t mss_class = (v >> COOKIE_CLASS_SHIFT) & 3;

	for (uint64_t age = 0; age <= TCP_SYNCOOKIE_MAX_AGE && age <= now_count; age++) {
		uint64_t count = now_count - age;

		if ((count & 3) != count_bits)
			continue;
		/* Only one candidate period can match the two bits; its MAC decides. */
		if (cookie_mac(k, saddr, daddr, sport, dport, peer_isn, count, mss_class) !=
		    (v & COOKIE_MAC_MASK))
			return PG_DECLINED;
		*mss_out = cookie_msstab(saddr)[mss_class];
		return PG_OK;
	}
	return PG_DECLINED;
}

uint32_t tcp_syncookie_make(const struct tcp_isn_key *k, uint32_t saddr, uint32_t daddr,
                            uint16_t sport, uint16_t dport, uint32_t peer_isn, uint16_t peer_mss,
                            uint64_t now_ns)
{
	struct pg_addr s = pg_addr_v4(saddr), d = pg_addr_v4(daddr);

	return tcp_syncookie_make_addr(k, &s, &d, sport, dport, peer_isn, peer_mss, now_ns);
}

int tcp_syncookie_check(const struct tcp_isn_key *k, uint32_t saddr, uint32_t daddr, uint16_t sport,
                        uint16_t dport, uint32_t peer_isn, uint32_t cookie, uint64_t now_ns,
                        uint16_t *mss_out)
{
	struct pg_addr s = pg_addr_v4(saddr), d = pg_addr_v4(daddr);

	return tcp_syncookie_check_addr(k, &s, &d, sport, dport, peer_isn, cookie, now_ns, mss_out);
}

uint32_t tcp_syncookie_tsval(uint32_t ts_now, const struct tcp_syncookie_opts *o)
{
	uint32_t opts = o->wscale;
	uint32_t ts;

	/* RFC 7323 §2.3: a shift above 14 is used as 14 (NONE excepted). */
	if (opts != TCP_SYNCOOKIE_WSCALE_NONE && opts > TCP_MAX_WSCALE)
		opts = TCP_MAX_WSCALE;

	if (o->sack_ok)
		opts |= TS_OPT_SACK;
	ts = (ts_now & ~TS_OPT_MASK) | opts;
	/* Never ahead of our clock: a later TSval would break PAWS (RFC 7323 §5). */
	if ((int32_t)(ts - ts_now) > 0)
		ts -= TS_OPT_MASK + 1;
	return ts;
}

int tcp_syncookie_ts_decode(uint32_t tsecr, struct tcp_syncookie_opts *o)
{
	/* Four bits hold 0..14 or NONE (15): any value is one we could have sent. */
	if ((tsecr & TS_OPT_RESERVED) != 0)
		return PG_DECLINED;
	o->wscale = (uint8_t)(tsecr & TS_OPT_WSCALE_MASK);
	o->sack_ok = (tsecr & TS_OPT_SACK) != 0;
	o->ts_ok = true;
	return PG_OK;
}
