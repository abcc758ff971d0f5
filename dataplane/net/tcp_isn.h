/*
 * tcp_isn.h - keyed initial sequence numbers (RFC 6528) and the SipHash-2-4
 * PRF behind them, which SYN cookies (tcp_syncookie.h) reuse. Pure
 * functions: no connection state, no clock of their own, no DPDK.
 */
#ifndef PG_TCP_ISN_H
#define PG_TCP_ISN_H

#include <stddef.h>
#include <stdint.h>

#include "addr.h"

/*
 * The 128-bit secret of RFC 6528 §3. One per process, created at start-up
 * with tcp_isn_key_init() and read-only afterwards, so every worker may
 * share it. k0/k1 are the key bytes 0..7 and 8..15 read little-endian, as
 * in the SipHash paper.
 */
struct tcp_isn_key {
	uint64_t k0, k1;
};

/* Fills *k from getrandom(2). PG_OK, or PG_ERROR (errno set) if the kernel
 * could not supply 16 random bytes. */
int tcp_isn_key_init(struct tcp_isn_key *k);

/*
 * SipHash-2-4 (Aumasson and Bernstein, 2012) of len bytes at data, the
 * 64-bit output as the reference returns it (its 8 output bytes read
 * little-endian).
 */
uint64_t tcp_siphash24(const struct tcp_isn_key *k, const void *data, size_t len);

/* The RFC 6528 clock M ticks every 4 microseconds: 250,000 per second. */
#define TCP_ISN_TICK_NS 4000u

/*
 * ISN = M + F(localip, localport, remoteip, remoteport, secretkey)
 * (RFC 6528 §3), M = now_ns / 4 µs (wrapping), F = SipHash-2-4 of the
 * 4-tuple truncated to 32 bits.
 *
 * laddr/lport are OUR side of the connection, raddr/rport the peer's, all
 * in network order exactly as in the packet headers. Pass the same
 * orientation for active and passive opens: then a new incarnation of a
 * 4-tuple starts above the old one's sequence space whichever side opened
 * it (RFC 6528 §3, RFC 6191). now_ns is any monotonic nanosecond clock
 * (the worker's now_ns); it must not jump backwards.
 */
uint32_t tcp_isn(const struct tcp_isn_key *k, uint32_t laddr, uint32_t raddr, uint16_t lport,
                 uint16_t rport, uint64_t now_ns);

/*
 * The same for either family: an IPv4 tuple gives exactly tcp_isn(); an
 * IPv6 one hashes both 16-byte addresses and the ports (same order:
 * ours, theirs, our port, their port).
 */
uint32_t tcp_isn_addr(const struct tcp_isn_key *k, const struct pg_addr *laddr,
                      const struct pg_addr *raddr, uint16_t lport, uint16_t rport, uint64_t now_ns);

#endif
