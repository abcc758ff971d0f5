/*
 * tcp_syncookie.h - stateless SYN cookies (RFC 4987 §3.6) for when a
 * worker's SYN backlog is full: the SYN-ACK's ISN carries everything the
 * listener must remember, authenticated with the process key, and the
 * peer's ACK brings it back. Pure functions of their arguments.
 *
 * How the TCP core uses it (addresses and ports in network order, exactly
 * as in the received IPv4/TCP headers, so saddr/sport are the PEER's):
 *
 *   SYN arrives, backlog full:
 *     iss = tcp_syncookie_make(k, ip.src, ip.dst, th.sport, th.dport,
 *                              SEG.SEQ, peer_mss, now_ns);
 *     Send SYN-ACK with SEQ = iss, ACK = SEG.SEQ + 1, our MSS option, and
 *     free everything. If the SYN had a timestamp option, also send
 *     WS/SACK-permitted as usual and TSval = tcp_syncookie_tsval(ts_now, &o)
 *     where o describes the SYN's options. If it had none, send MSS only:
 *     nothing would remember WS or SACK-permitted (Linux does the same).
 *   A bare ACK arrives with no matching connection or SYN_RECEIVED entry:
 *     rc = tcp_syncookie_check(k, ip.src, ip.dst, th.sport, th.dport,
 *                              SEG.SEQ - 1, SEG.ACK - 1, now_ns, &mss);
 *     PG_OK: create the connection in ESTABLISHED with IRS = SEG.SEQ - 1,
 *     ISS = SEG.ACK - 1, SND.MSS = mss; if the ACK has a timestamp option,
 *     tcp_syncookie_ts_decode(TSecr, &o) gives the peer's window scale and
 *     SACK-permitted (PG_DECLINED: drop it); without one, o = no options.
 *     Our own window scale must be a fixed function of configuration so it
 *     can be recomputed here. PG_DECLINED: treat as any stray ACK (RST).
 */
#ifndef PG_TCP_SYNCOOKIE_H
#define PG_TCP_SYNCOOKIE_H

#include <stdbool.h>
#include <stdint.h>

#include "tcp_isn.h"

/*
 * Lifetime: the cookie carries a counter of 64 s periods; a check accepts
 * the current period and TCP_SYNCOOKIE_MAX_AGE before it, so a cookie is
 * good for at least 64 s and at most 128 s (Linux: 60 to 120 s).
 */
#define TCP_SYNCOOKIE_PERIOD_NS (64ull * 1000000000ull)
#define TCP_SYNCOOKIE_MAX_AGE 1

/* Peer MSS classes a cookie can carry (IPv4, as Linux's msstab; IPv6, msstab6). */
#define TCP_SYNCOOKIE_NMSS 4
extern const uint16_t tcp_syncookie_msstab[TCP_SYNCOOKIE_NMSS];
extern const uint16_t tcp_syncookie_msstab6[TCP_SYNCOOKIE_NMSS];

/* The peer's SYN options as remembered through the timestamp. */
#define TCP_SYNCOOKIE_WSCALE_NONE 0xf
struct tcp_syncookie_opts {
	uint8_t wscale; /* the peer's shift 0..14, or TCP_SYNCOOKIE_WSCALE_NONE; a
	                   SYN's shift above 14 must be passed as 14 (RFC 7323 §2.3) */
	bool sack_ok;   /* the SYN carried SACK-permitted */
	bool ts_ok;     /* timestamps in use (always true after a successful decode) */
};

/*
 * The MSS a cookie made for a peer advertising peer_mss will give back:
 * the largest table entry not above it. 0 means "no MSS option", i.e. 536
 * (RFC 9293 §3.7.1). Below 536 also gives 536, as Linux does: every host
 * must take 576-byte datagrams (RFC 1122 §3.3.3) and honouring a tiny MSS
 * from a stateless handshake invites small-segment resource attacks.
 */
uint16_t tcp_syncookie_mss(uint16_t peer_mss);
/* The same over the IPv6 classes: below 1220 (a 1280-byte path, RFC 8200 §5) gives 1220. */
uint16_t tcp_syncookie_mss6(uint16_t peer_mss);

/*
 * The ISS for our SYN-ACK. peer_isn = SEG.SEQ of the SYN; peer_mss = the
 * MSS to remember (the SYN's MSS option, or 0 if absent; the core may
 * clamp it to its own first). now_ns: the worker's monotonic clock.
 */
uint32_t tcp_syncookie_make(const struct tcp_isn_key *k, uint32_t saddr, uint32_t daddr,
                            uint16_t sport, uint16_t dport, uint32_t peer_isn, uint16_t peer_mss,
                            uint64_t now_ns);

/*
 * Validates a returning cookie. On the ACK: peer_isn = SEG.SEQ - 1 and
 * cookie = SEG.ACK - 1 (the ACK must be the peer's first segment after its
 * SYN; a later one fails, as in Linux). PG_OK with *mss_out set to the
 * table MSS, or PG_DECLINED (forged, tampered or expired; *mss_out untouched).
 */
int tcp_syncookie_check(const struct tcp_isn_key *k, uint32_t saddr, uint32_t daddr, uint16_t sport,
                        uint16_t dport, uint32_t peer_isn, uint32_t cookie, uint64_t now_ns,
                        uint16_t *mss_out);

/*
 * Either family (the IPv4 functions above are these with IPv4 addresses):
 * both addresses of one family, IPv6 ones hashed whole; the MSS classes
 * are the family's.
 */
uint32_t tcp_syncookie_make_addr(const struct tcp_isn_key *k, const struct pg_addr *saddr,
                                 const struct pg_addr *daddr, uint16_t sport, uint16_t dport,
                                 uint32_t peer_isn, uint16_t peer_mss, uint64_t now_ns);
int tcp_syncookie_check_addr(const struct tcp_isn_key *k, const struct pg_addr *saddr,
                             const struct pg_addr *daddr, uint16_t sport, uint16_t dport,
                             uint32_t peer_isn, uint32_t cookie, uint64_t now_ns,
                             uint16_t *mss_out);

/*
 * TSval for the cookie SYN-ACK: ts_now (the core's current timestamp clock
 * value for this connection, offset included) with its low 6 bits
 * replaced by the options (bits 0-3 wscale, bit 4 SACK-permitted, bit 5
 * zero), moved back 64 ticks if that would put it in the future, so our
 * TSval never runs ahead of the clock (Linux cookie_init_timestamp).
 * o->ts_ok is not read: call this only when the SYN carried timestamps.
 */
uint32_t tcp_syncookie_tsval(uint32_t ts_now, const struct tcp_syncookie_opts *o);

/*
 * Options from the TSecr of the returning ACK (the TSval we sent). PG_OK
 * with *o filled and ts_ok true; PG_DECLINED if the low bits cannot be
 * ours (bit 5 set). Freshness is the cookie's business, not the TSecr's.
 */
int tcp_syncookie_ts_decode(uint32_t tsecr, struct tcp_syncookie_opts *o);

#endif
