/*
 * net_harness.h - shared fixture for the net layer unit tests: EAL without
 * a NIC, one mbuf pool, up to four detached workers whose TX is captured
 * and whose steering rings are plain rte_rings, a hand-written net_config,
 * frame builders, counter checks and the no-leak check.
 */
#ifndef PG_TEST_NET_HARNESS_H
#define PG_TEST_NET_HARNESS_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "core/worker.h"
#include "net/net.h"

#define TH_MAX_WORKERS 4
#define TH_CAPTURE_MAX 1024
#define TH_FRAME_MAX 2048

/*
 * IPv4 address in network order from dotted parts. Not RTE_IPV4: in DPDK
 * 22.11 it shifts an int left by 24, undefined for a first octet >= 128.
 */
#define IP4(a, b, c, d)                                                                            \
	rte_cpu_to_be_32((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 |          \
	                 (uint32_t)(d))
#define CTR(t, i, name) ((t)->w[i].ctr[CTR_##name])

#define TH_NS_PER_S 1000000000ull

/* Addresses of the default fixture (DESIGN.md lab topology). */
#define TH_PORT0_IP IP4(198, 18, 0, 1)
#define TH_PORT1_IP IP4(198, 19, 0, 1)
#define TH_PEER0_IP IP4(198, 18, 0, 2)
#define TH_PEER1_IP IP4(198, 19, 0, 2)
#define TH_GW0_IP IP4(198, 18, 0, 254) /* default route */
#define TH_GW1_IP IP4(198, 19, 0, 254) /* static 10.0.0.0/8 */

extern const struct rte_ether_addr th_mac_port0, th_mac_port1, th_mac_peer, th_mac_peer2,
    th_mac_bcast, th_mac_zero;

struct th_capture {
	unsigned n;
	struct rte_mbuf *pkts[TH_CAPTURE_MAX];
	uint16_t port[TH_CAPTURE_MAX];
};

struct th {
	unsigned nworkers;
	struct worker *w;
	struct net_config nc;
	struct th_capture cap[TH_MAX_WORKERS];
	struct rte_ring *rings[TH_MAX_WORKERS];
	unsigned baseline; /* mbufs in use before the test */
};

/* EAL and the pool, once per binary. */
void th_eal_init(void);
void th_eal_fini(void);
struct rte_mempool *th_pool(void);

/* cmocka setup/teardown: *state becomes a struct th with 1, 2 or 4 workers. */
int th_setup1(void **state);
int th_setup2(void **state);
int th_setup4(void **state);
int th_teardown(void **state);

/* Re-adopt t->nc after a test changed it (net_config_changed on each worker). */
void th_config_changed(struct th *t);

/* Flush worker i's TX buffers into its capture; returns the capture size. */
unsigned th_flush(struct th *t, unsigned i);
void th_cap_clear(struct th *t, unsigned i);
/* Feed everything queued on worker i's steering ring to net_input (steered). */
unsigned th_deliver_steered(struct th *t, unsigned i);

/* An mbuf holding a copy of `len` bytes (split into two segments if split > 0). */
struct rte_mbuf *th_mbuf(const void *bytes, size_t len, size_t split);

/* Frame builders: write into buf, return the frame length. */
size_t th_build_eth(uint8_t *buf, const struct rte_ether_addr *dst,
                    const struct rte_ether_addr *src, uint16_t type);
size_t th_build_arp(uint8_t *buf, const struct rte_ether_addr *eth_dst, uint16_t op,
                    const struct rte_ether_addr *sha, uint32_t sip,
                    const struct rte_ether_addr *tha, uint32_t tip);
size_t th_build_ipv4(uint8_t *buf, const struct rte_ether_addr *eth_dst, uint32_t src, uint32_t dst,
                     uint8_t proto, const void *payload, size_t plen);
size_t th_build_icmp_echo(uint8_t *buf, const struct rte_ether_addr *eth_dst, uint32_t src,
                          uint32_t dst, uint16_t id, uint16_t seq, const void *body, size_t blen);
size_t th_build_tcp(uint8_t *buf, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport);
/*
 * A packet as an upper layer hands it to net_ipv4_output: data at the IPv4
 * header, source, TTL and checksum left 0, `id` in packet_id for tracing.
 */
struct rte_mbuf *th_out_packet(uint32_t dst, uint16_t id, size_t plen);
/* Recompute the IPv4 header checksum of a frame built above (after edits). */
void th_ipv4_fix_cksum(uint8_t *frame);

static inline struct rte_ipv4_hdr *th_ip_of(uint8_t *frame)
{
	return (struct rte_ipv4_hdr *)(frame + sizeof(struct rte_ether_hdr));
}

/* ---- IPv6 (test_ipv6.c, test_nd.c, test_icmp6.c) ---- */

/*
 * The IPv6 side of the fixture: port 0 2001:db8:18::1/64, port 1
 * 2001:db8:19::1/64, a static 2001:db8:99::/48 via 2001:db8:19::fe and a
 * default route via fe80::fe on port 0; each worker gets an ND table. With
 * `complete_dad`, the clock moves past DAD (and the probes and
 * announcements it sent are discarded), so the addresses are in use.
 */
extern const uint8_t th_ip6_port0[16], th_ip6_port1[16], th_ip6_peer0[16], th_ip6_peer1[16],
    th_ip6_gw0[16], th_ip6_gw1[16];
void th_ipv6_setup(struct th *t, bool complete_dad);
/* The link-local address of port `p` (from its MAC). */
const uint8_t *th_ll6(struct th *t, uint16_t p);
/* Advance every worker's clock by ns and run its net timers. */
void th_advance(struct th *t, uint64_t ns);

/*
 * An IPv6 frame to `eth_dst`, from th_mac_peer: fixed header (hop limit
 * `hop`), then `plen` bytes of payload whose first header is `nh`. The
 * payload is copied as given: extension headers are the caller's.
 */
size_t th_build_ipv6(uint8_t *buf, const struct rte_ether_addr *eth_dst, const uint8_t src[16],
                     const uint8_t dst[16], uint8_t nh, uint8_t hop, const void *payload,
                     size_t plen);
/* The ICMPv6 checksum of `len` bytes of message at msg, for src/dst. */
uint16_t th_icmp6_cksum(const uint8_t src[16], const uint8_t dst[16], const void *msg, size_t len);
/* An ICMPv6 message (checksum filled in) behind `ext` bytes of extension headers. */
size_t th_build_icmp6(uint8_t *buf, const struct rte_ether_addr *eth_dst, const uint8_t src[16],
                      const uint8_t dst[16], uint8_t hop, const void *ext, size_t extlen,
                      uint8_t first_nh, const void *msg, size_t mlen);
/* An echo request (id, seq, body) with no extension headers, hop limit 64. */
size_t th_build_echo6(uint8_t *buf, const struct rte_ether_addr *eth_dst, const uint8_t src[16],
                      const uint8_t dst[16], uint16_t id, uint16_t seq, const void *body,
                      size_t blen);
/* Teach worker i that `ip` on `port` is at `mac` (a solicited NA). */
void th_nd_learn(struct th *t, unsigned i, uint16_t port, const uint8_t ip[16],
                 const struct rte_ether_addr *mac);

static inline struct rte_ipv6_hdr *th_ip6_of(uint8_t *frame)
{
	return (struct rte_ipv6_hdr *)(frame + sizeof(struct rte_ether_hdr));
}

/*
 * Counter delta check: after th_ctr_save(), th_ctr_only() asserts that
 * exactly the named counters changed, each by the given amount.
 */
void th_ctr_save(struct th *t, unsigned i, uint64_t *saved);
struct th_ctr_delta {
	int ctr; /* enum pg_counter, -1 ends the list */
	uint64_t by;
};
void th_ctr_only(struct th *t, unsigned i, const uint64_t *saved, const struct th_ctr_delta *want);

#endif
