/*
 * test_ipv6.c - IPv6 input (RFC 8200): every malformed or unwanted packet
 * moves exactly its own counter and gets the ICMPv6 answer RFC 4443 asks
 * for (Parameter Problem with its code and pointer) or none (§2.4 (e)),
 * within the rate limit; the extension header chain (options and their
 * action bits, routing, atomic and real fragments, RFC 8504 limits);
 * padding trimmed; packets to a tentative address; the output path; and
 * steering by the IPv6 4-tuple.
 */
#include <string.h>

#include "net_harness.h"
#include "result.h"

#define END                                                                                        \
	{                                                                                          \
		-1, 0                                                                              \
	}
#define C(x) CTR_##x

static const struct rte_ether_addr mac_all_nodes = {.addr_bytes = {0x33, 0x33, 0, 0, 0, 1}};
static const uint8_t ip6_all_nodes_t[16] = {0xff, 0x02, [15] = 1};
static const uint8_t ip6_all_routers[16] = {0xff, 0x02, [15] = 2};
static const uint8_t ip6_loopback[16] = {[15] = 1};
static const uint8_t ip6_unspec[16];
static const uint8_t ip6_mapped[16] = {[10] = 0xff, [11] = 0xff, 198, 18, 0, 2};
static const uint8_t ip6_other[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0x18, [15] = 0x77};
static const uint8_t ip6_ll_peer[16] = {0xfe, 0x80, [15] = 0x22};

/* What a case expects to come out. */
enum out_kind { OUT_NONE, OUT_ECHO, OUT_PARAM };

struct ipv6_case {
	const char *name;
	size_t (*build)(uint8_t *f);
	size_t split; /* deliver in two segments at this offset (0 = one) */
	enum out_kind out;
	uint8_t code;     /* OUT_PARAM */
	uint32_t pointer; /* OUT_PARAM */
	struct th_ctr_delta ctr[4];
};

/* An echo request from peer0, behind `ext` bytes of extension headers starting with `nh`. */
static size_t echo_behind(uint8_t *f, const void *ext, size_t extlen, uint8_t nh,
                          const uint8_t *src, const uint8_t *dst, const struct rte_ether_addr *eth)
{
	static const uint8_t msg[16] = {128, 0,   0,   0,   0x42, 0x42, 0,   7,
	                                'p', 'i', 'n', 'g', '-',  'v',  '6', '!'};

	return th_build_icmp6(f, eth, src, dst, 64, ext, extlen, nh, msg, sizeof(msg));
}

static size_t echo_ext(uint8_t *f, const void *ext, size_t extlen, uint8_t nh)
{
	return echo_behind(f, ext, extlen, nh, th_ip6_peer0, th_ip6_port0, &th_mac_port0);
}

static size_t b_valid(uint8_t *f)
{
	return echo_ext(f, NULL, 0, 0);
}
static size_t b_short(uint8_t *f)
{
	b_valid(f);
	return 14 + 39;
}
static size_t b_version(uint8_t *f)
{
	size_t len = b_valid(f);

	th_ip6_of(f)->vtc_flow = rte_cpu_to_be_32(4u << 28);
	return len;
}
static size_t b_len_past(uint8_t *f)
{
	size_t len = b_valid(f);

	th_ip6_of(f)->payload_len = rte_cpu_to_be_16(17);
	return len;
}
static size_t b_jumbo(uint8_t *f)
{
	size_t len = b_valid(f);

	th_ip6_of(f)->payload_len = 0;
	return len;
}
static size_t b_src_mcast(uint8_t *f)
{
	return echo_behind(f, NULL, 0, 0, ip6_all_nodes_t, th_ip6_port0, &th_mac_port0);
}
static size_t b_src_loopback(uint8_t *f)
{
	return echo_behind(f, NULL, 0, 0, ip6_loopback, th_ip6_port0, &th_mac_port0);
}
static size_t b_src_mapped(uint8_t *f)
{
	return echo_behind(f, NULL, 0, 0, ip6_mapped, th_ip6_port0, &th_mac_port0);
}
static size_t b_src_ours(uint8_t *f)
{
	return echo_behind(f, NULL, 0, 0, th_ip6_port1, th_ip6_port0, &th_mac_port0);
}
static size_t b_src_unspec(uint8_t *f)
{
	return echo_behind(f, NULL, 0, 0, ip6_unspec, th_ip6_port0, &th_mac_port0);
}
static size_t b_dst_other(uint8_t *f)
{
	return echo_behind(f, NULL, 0, 0, th_ip6_peer0, ip6_other, &th_mac_port0);
}
static size_t b_dst_other_port(uint8_t *f)
{
	return echo_behind(f, NULL, 0, 0, th_ip6_peer0, th_ip6_port1, &th_mac_port0);
}
static size_t b_dst_group(uint8_t *f)
{
	return echo_behind(f, NULL, 0, 0, th_ip6_peer0, ip6_all_routers, &th_mac_port0);
}
static size_t b_link_bcast(uint8_t *f)
{
	return echo_behind(f, NULL, 0, 0, th_ip6_peer0, th_ip6_port0, &th_mac_bcast);
}
/* Hop-by-Hop after a Destination Options header (RFC 8200 §4.1). */
static size_t b_hbh_second(uint8_t *f)
{
	static const uint8_t ext[16] = {0, 0, 1, 4, 0, 0, 0, 0, 58, 0, 1, 4, 0, 0, 0, 0};

	return echo_ext(f, ext, sizeof(ext), 60);
}
static size_t b_opt_skip(uint8_t *f)
{
	/* HbH: option type 0x1e (00: skip), 2 bytes; PadN of 2 */
	static const uint8_t ext[8] = {58, 0, 0x1e, 2, 0xaa, 0xbb, 1, 0};

	return echo_ext(f, ext, sizeof(ext), 0);
}
static size_t b_opt_discard(uint8_t *f)
{
	static const uint8_t ext[8] = {58, 0, 0x5e, 2, 0xaa, 0xbb, 1, 0}; /* 01 */

	return echo_ext(f, ext, sizeof(ext), 60);
}
static size_t b_opt_icmp(uint8_t *f)
{
	static const uint8_t ext[8] = {58, 0, 1, 0, 0x9e, 2, 0xaa, 0xbb}; /* PadN 0, then 10 */

	return echo_ext(f, ext, sizeof(ext), 60);
}
static size_t b_opt_icmp_mcast11(uint8_t *f)
{
	static const uint8_t ext[8] = {58, 0, 0xde, 2, 0xaa, 0xbb, 1, 0}; /* 11, to a group */

	return echo_behind(f, ext, sizeof(ext), 60, th_ip6_peer0, ip6_all_nodes_t, &mac_all_nodes);
}
static size_t b_opt_icmp_mcast10(uint8_t *f)
{
	static const uint8_t ext[8] = {58, 0, 0x9e, 2, 0xaa, 0xbb, 1, 0}; /* 10, to a group */

	return echo_behind(f, ext, sizeof(ext), 60, th_ip6_peer0, ip6_all_nodes_t, &mac_all_nodes);
}
static size_t b_padn_nonzero(uint8_t *f)
{
	static const uint8_t ext[8] = {58, 0, 1, 4, 0, 0, 7, 0};

	return echo_ext(f, ext, sizeof(ext), 60);
}
static size_t b_pad_run(uint8_t *f)
{
	/* 6 bytes of PadN then Pad1 Pad1 ... 14 bytes of padding in one header */
	static const uint8_t ext[16] = {58, 1, 1, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

	return echo_ext(f, ext, sizeof(ext), 60);
}
static size_t b_opt_overrun(uint8_t *f)
{
	static const uint8_t ext[8] = {58, 0, 0x1e, 9, 0, 0, 0, 0};

	return echo_ext(f, ext, sizeof(ext), 60);
}
static size_t b_ext_past_payload(uint8_t *f)
{
	/* the header claims 16 bytes; 8 and the ICMPv6 message follow */
	static const uint8_t ext[8] = {58, 3, 1, 4, 0, 0, 0, 0};

	return echo_ext(f, ext, sizeof(ext), 60);
}
static size_t b_chain_too_long(uint8_t *f)
{
	uint8_t ext[9 * 8];

	for (unsigned i = 0; i < 9; i++) {
		uint8_t h[8] = {i == 8 ? 58 : 60, 0, 1, 4, 0, 0, 0, 0};

		memcpy(ext + 8 * i, h, 8);
	}
	return echo_ext(f, ext, sizeof(ext), 60);
}
static size_t b_chain_eight(uint8_t *f)
{
	uint8_t ext[8 * 8];

	for (unsigned i = 0; i < 8; i++) {
		uint8_t h[8] = {i == 7 ? 58 : 60, 0, 1, 4, 0, 0, 0, 0};

		memcpy(ext + 8 * i, h, 8);
	}
	return echo_ext(f, ext, sizeof(ext), 60);
}
static size_t b_routing_done(uint8_t *f)
{
	/* type 0 with Segments Left 0: ignored (RFC 8200 §4.4) */
	static const uint8_t ext[24] = {58, 2, 0, 0, 0, 0, 0, 0, 0x20, 0x01, 0x0d, 0xb8};

	return echo_ext(f, ext, sizeof(ext), 43);
}
static size_t b_routing_left(uint8_t *f)
{
	static const uint8_t ext[24] = {58, 2, 0, 1, 0, 0, 0, 0, 0x20, 0x01, 0x0d, 0xb8};

	return echo_ext(f, ext, sizeof(ext), 43);
}
static size_t b_atomic_fragment(uint8_t *f)
{
	static const uint8_t ext[8] = {58, 0, 0, 0, 0x12, 0x34, 0x56, 0x78};

	return echo_ext(f, ext, sizeof(ext), 44);
}
static size_t b_first_fragment(uint8_t *f)
{
	static const uint8_t ext[8] = {58, 0, 0, 1, 0x12, 0x34, 0x56, 0x78}; /* M = 1 */

	return echo_ext(f, ext, sizeof(ext), 44);
}
static size_t b_later_fragment(uint8_t *f)
{
	static const uint8_t ext[8] = {58, 0, 0, 8 << 3, 0x12, 0x34, 0x56, 0x78};

	return echo_ext(f, ext, sizeof(ext), 44);
}
static size_t b_no_next(uint8_t *f)
{
	static const uint8_t junk[16] = {1, 2, 3};

	return th_build_ipv6(f, &th_mac_port0, th_ip6_peer0, th_ip6_port0, 59, 64, junk,
	                     sizeof(junk));
}
static size_t b_udp(uint8_t *f)
{
	static const uint8_t udp[12] = {0x30, 0x39, 0, 53, 0, 12, 0, 0, 'a', 'b', 'c', 'd'};

	return th_build_ipv6(f, &th_mac_port0, th_ip6_peer0, th_ip6_port0, IPPROTO_UDP, 64, udp,
	                     sizeof(udp));
}
static size_t b_udp_behind(uint8_t *f)
{
	static const uint8_t p[20] = {17, 0, 1, 4, 0, 0, 0, 0, 0x30, 0x39, 0, 53, 0, 12};

	return th_build_ipv6(f, &th_mac_port0, th_ip6_peer0, th_ip6_port0, 60, 64, p, sizeof(p));
}
static size_t b_esp(uint8_t *f)
{
	static const uint8_t esp[16] = {0, 0, 1, 0, 0, 0, 0, 1};

	return th_build_ipv6(f, &th_mac_port0, th_ip6_peer0, th_ip6_port0, 50, 64, esp,
	                     sizeof(esp));
}
static size_t b_unspec_tcp(uint8_t *f)
{
	static const uint8_t tcp[20] = {0x30, 0x39, 0, 7, 0, 0, 0, 1, 0, 0, 0, 0, 5 << 4, 2};

	return th_build_ipv6(f, &th_mac_port0, ip6_unspec, th_ip6_port0, IPPROTO_TCP, 64, tcp,
	                     sizeof(tcp));
}
/* An unknown option (10) in front of an ICMPv6 error: no error about an error (§2.4 e.1). */
static size_t b_error_about_error(uint8_t *f)
{
	static const uint8_t ext[8] = {58, 0, 0x9e, 2, 0xaa, 0xbb, 1, 0};
	static const uint8_t msg[8] = {1, 4, 0, 0, 0, 0, 0, 0};

	return th_build_icmp6(f, &th_mac_port0, th_ip6_peer0, th_ip6_port0, 64, ext, sizeof(ext),
	                      60, msg, sizeof(msg));
}
/* Unicast to us, from a link-local source: the answer goes out link-local. */
static size_t b_ll_echo(uint8_t *f)
{
	return echo_behind(f, NULL, 0, 0, ip6_ll_peer, th_ip6_port0, &th_mac_port0);
}

/* clang-format off */
static const struct ipv6_case ipv6_cases[] = {
    {"valid echo", b_valid, 0, OUT_ECHO, 0, 0, {{C(icmp6_echo_rx), 1}, {C(icmp6_echo_reply_tx), 1}, END}},
    {"valid echo, two segments", b_valid, 60, OUT_ECHO, 0, 0, {{C(icmp6_echo_rx), 1}, {C(icmp6_echo_reply_tx), 1}, END}},
    {"header truncated", b_short, 0, OUT_NONE, 0, 0, {{C(ipv6_drop_short), 1}, END}},
    {"version 4", b_version, 0, OUT_NONE, 0, 0, {{C(ipv6_drop_version), 1}, END}},
    {"payload length past the frame", b_len_past, 0, OUT_NONE, 0, 0, {{C(ipv6_drop_len), 1}, END}},
    {"jumbogram (payload length 0)", b_jumbo, 0, OUT_NONE, 0, 0, {{C(ipv6_drop_len), 1}, END}},
    {"source multicast", b_src_mcast, 0, OUT_NONE, 0, 0, {{C(ipv6_drop_bad_src), 1}, END}},
    {"source loopback", b_src_loopback, 0, OUT_NONE, 0, 0, {{C(ipv6_drop_bad_src), 1}, END}},
    {"source IPv4-mapped", b_src_mapped, 0, OUT_NONE, 0, 0, {{C(ipv6_drop_bad_src), 1}, END}},
    {"source is ours", b_src_ours, 0, OUT_NONE, 0, 0, {{C(ipv6_drop_bad_src), 1}, END}},
    {"source unspecified, not ND", b_src_unspec, 0, OUT_NONE, 0, 0, {{C(ipv6_drop_bad_src), 1}, END}},
    {"source unspecified, TCP", b_unspec_tcp, 0, OUT_NONE, 0, 0, {{C(ipv6_drop_bad_src), 1}, END}},
    {"destination another host", b_dst_other, 0, OUT_NONE, 0, 0, {{C(ipv6_drop_not_for_us), 1}, END}},
    {"destination our other port", b_dst_other_port, 0, OUT_NONE, 0, 0, {{C(ipv6_drop_not_for_us), 1}, END}},
    {"destination a group we are not in", b_dst_group, 0, OUT_NONE, 0, 0, {{C(ipv6_drop_not_for_us), 1}, END}},
    {"Ethernet broadcast", b_link_bcast, 0, OUT_NONE, 0, 0, {{C(ipv6_drop_link_bcast), 1}, END}},
    {"Hop-by-Hop not first", b_hbh_second, 0, OUT_PARAM, 1, 40, {{C(ipv6_drop_exthdr), 1}, {C(icmp6_error_tx), 1}, END}},
    {"option 00 skipped", b_opt_skip, 0, OUT_ECHO, 0, 0, {{C(icmp6_echo_rx), 1}, {C(icmp6_echo_reply_tx), 1}, END}},
    {"option 01: discard", b_opt_discard, 0, OUT_NONE, 0, 0, {{C(ipv6_drop_option), 1}, END}},
    {"option 10: Parameter Problem", b_opt_icmp, 0, OUT_PARAM, 2, 44, {{C(ipv6_drop_option), 1}, {C(icmp6_error_tx), 1}, END}},
    {"option 11 to a group: silent", b_opt_icmp_mcast11, 0, OUT_NONE, 0, 0, {{C(ipv6_drop_option), 1}, {C(icmp6_error_suppressed), 1}, END}},
    {"option 10 to a group: answered", b_opt_icmp_mcast10, 0, OUT_PARAM, 2, 42, {{C(ipv6_drop_option), 1}, {C(icmp6_error_tx), 1}, END}},
    {"PadN not zero", b_padn_nonzero, 0, OUT_NONE, 0, 0, {{C(ipv6_drop_option), 1}, END}},
    {"padding longer than 7 bytes", b_pad_run, 0, OUT_NONE, 0, 0, {{C(ipv6_drop_option), 1}, END}},
    {"option past its header", b_opt_overrun, 0, OUT_NONE, 0, 0, {{C(ipv6_drop_exthdr), 1}, END}},
    {"header past the payload", b_ext_past_payload, 0, OUT_NONE, 0, 0, {{C(ipv6_drop_exthdr), 1}, END}},
    {"9 extension headers", b_chain_too_long, 0, OUT_NONE, 0, 0, {{C(ipv6_drop_exthdr), 1}, END}},
    {"8 extension headers, split", b_chain_eight, 70, OUT_ECHO, 0, 0, {{C(icmp6_echo_rx), 1}, {C(icmp6_echo_reply_tx), 1}, END}},
    {"routing, segments left 0", b_routing_done, 0, OUT_ECHO, 0, 0, {{C(icmp6_echo_rx), 1}, {C(icmp6_echo_reply_tx), 1}, END}},
    {"routing type 0, segments left 1", b_routing_left, 0, OUT_PARAM, 0, 42, {{C(ipv6_drop_routing), 1}, {C(icmp6_error_tx), 1}, END}},
    {"atomic fragment", b_atomic_fragment, 0, OUT_ECHO, 0, 0, {{C(icmp6_echo_rx), 1}, {C(icmp6_echo_reply_tx), 1}, END}},
    {"first fragment", b_first_fragment, 0, OUT_NONE, 0, 0, {{C(ipv6_drop_fragment), 1}, END}},
    {"later fragment", b_later_fragment, 0, OUT_NONE, 0, 0, {{C(ipv6_drop_fragment), 1}, END}},
    {"no next header", b_no_next, 0, OUT_NONE, 0, 0, {{C(ipv6_drop_no_next), 1}, END}},
    {"UDP", b_udp, 0, OUT_PARAM, 1, 6, {{C(ipv6_drop_proto), 1}, {C(icmp6_error_tx), 1}, END}},
    {"UDP behind options", b_udp_behind, 0, OUT_PARAM, 1, 40, {{C(ipv6_drop_proto), 1}, {C(icmp6_error_tx), 1}, END}},
    {"ESP", b_esp, 0, OUT_PARAM, 1, 6, {{C(ipv6_drop_proto), 1}, {C(icmp6_error_tx), 1}, END}},
    {"no error about an error", b_error_about_error, 0, OUT_NONE, 0, 0, {{C(ipv6_drop_option), 1}, {C(icmp6_error_suppressed), 1}, END}},
    {"link-local source", b_ll_echo, 0, OUT_ECHO, 0, 0, {{C(icmp6_echo_rx), 1}, {C(icmp6_echo_reply_tx), 1}, END}},
};
/* clang-format on */

/* An ICMPv6 message (at offset 54 of frame r) has a valid checksum. */
static void check_icmp6_cksum(struct rte_mbuf *r)
{
	const struct rte_ipv6_hdr *ip = rte_pktmbuf_mtod_offset(r, const struct rte_ipv6_hdr *, 14);
	uint32_t len = rte_be_to_cpu_16(ip->payload_len);
	uint8_t msg[TH_FRAME_MAX];

	assert_int_equal(rte_pktmbuf_pkt_len(r), 54 + len);
	assert_non_null(rte_pktmbuf_read(r, 54, len, msg));
	memcpy(msg, rte_pktmbuf_read(r, 54, len, msg), len);
	assert_int_equal(th_icmp6_cksum(ip->src_addr, ip->dst_addr, msg, len), 0);
}

static void check_out(struct th *t, const struct ipv6_case *c, const uint8_t *in, size_t inlen)
{
	const struct rte_ipv6_hdr *bad = (const struct rte_ipv6_hdr *)(in + 14);
	struct rte_mbuf *r;
	const struct rte_ether_hdr *eh;
	const struct rte_ipv6_hdr *ip;
	uint8_t icmp[TH_FRAME_MAX];
	const uint8_t *p;

	if (c->out == OUT_NONE) {
		assert_int_equal(th_flush(t, 0), 0);
		return;
	}
	assert_int_equal(th_flush(t, 0), 1);
	r = t->cap[0].pkts[0];
	assert_int_equal(t->cap[0].port[0], 0);
	eh = rte_pktmbuf_mtod(r, const struct rte_ether_hdr *);
	ip = (const struct rte_ipv6_hdr *)(eh + 1);
	/* the reply may reuse a request that came in two segments */
	p = rte_pktmbuf_read(r, 54, rte_pktmbuf_pkt_len(r) - 54, icmp);
	assert_non_null(p);
	if (p != icmp)
		memcpy(icmp, p, rte_pktmbuf_pkt_len(r) - 54);
	assert_true(rte_is_same_ether_addr(&eh->src_addr, &th_mac_port0));
	assert_true(rte_is_same_ether_addr(&eh->dst_addr, &th_mac_peer));
	assert_int_equal(rte_be_to_cpu_16(eh->ether_type), RTE_ETHER_TYPE_IPV6);
	assert_int_equal(rte_be_to_cpu_32(ip->vtc_flow) >> 28, 6);
	assert_int_equal(ip->proto, IPPROTO_ICMPV6);
	assert_int_equal(ip->hop_limits, 64);
	assert_memory_equal(ip->dst_addr, bad->src_addr, 16);
	/* From the address the packet went to, or for a group's the port's own (RFC 4443 §2.2). */
	assert_memory_equal(ip->src_addr, th_ip6_port0, 16);
	check_icmp6_cksum(r);
	if (c->out == OUT_ECHO) {
		assert_int_equal(icmp[0], 129);
		assert_int_equal(icmp[1], 0);
		/* identifier, sequence and data come back; extension headers do not */
		assert_int_equal(rte_be_to_cpu_16(ip->payload_len), 16);
		assert_memory_equal(icmp + 4, in + inlen - 12, 12);
	} else {
		uint32_t ptr;

		assert_int_equal(icmp[0], 4);
		assert_int_equal(icmp[1], c->code);
		memcpy(&ptr, icmp + 4, 4);
		assert_int_equal(rte_be_to_cpu_32(ptr), c->pointer);
		/* RFC 4443 §2.4 (c): the invoking packet follows, from its IPv6 header */
		assert_int_equal(rte_be_to_cpu_16(ip->payload_len), 8 + inlen - 14);
		assert_memory_equal(icmp + 8, in + 14, inlen - 14);
	}
	th_cap_clear(t, 0);
}

static void test_ipv6_input_table(void **state)
{
	struct th *t = *state;

	th_ipv6_setup(t, true);
	th_nd_learn(t, 0, 0, th_ip6_peer0, &th_mac_peer);
	th_nd_learn(t, 0, 0, ip6_ll_peer, &th_mac_peer);
	for (size_t k = 0; k < RTE_DIM(ipv6_cases); k++) {
		const struct ipv6_case *c = &ipv6_cases[k];
		uint64_t saved[CTR__COUNT];
		struct th_ctr_delta want[6];
		uint8_t f[TH_FRAME_MAX];
		size_t len = c->build(f), n = 0;

		print_message("# %s\n", c->name);
		want[n++] = (struct th_ctr_delta){C(ipv6_rx), 1};
		for (const struct th_ctr_delta *d = c->ctr; d->ctr >= 0; d++)
			want[n++] = *d;
		want[n] = (struct th_ctr_delta)END;
		th_ctr_save(t, 0, saved);
		net_input(&t->w[0], th_mbuf(f, len, c->split), 0, false);
		th_ctr_only(t, 0, saved, want);
		check_out(t, c, f, len);
		/* every error goes through the rate limiter: start each case afresh */
		t->w[0].now_ns += TH_NS_PER_S;
	}
}

/* Ethernet pads a short frame; the padding is not part of the packet. */
static void test_padding_trimmed(void **state)
{
	struct th *t = *state;
	uint8_t f[TH_FRAME_MAX];
	size_t len;

	th_ipv6_setup(t, true);
	th_nd_learn(t, 0, 0, th_ip6_peer0, &th_mac_peer);
	len = b_valid(f);
	memset(f + len, 0xee, 30);
	net_input(&t->w[0], th_mbuf(f, len + 30, 0), 0, false);
	assert_int_equal(th_flush(t, 0), 1);
	check_icmp6_cksum(t->cap[0].pkts[0]); /* also checks the reply is 54 + payload long */
	assert_int_equal(CTR(t, 0, icmp6_echo_reply_tx), 1);
}

/* RFC 4862 §5.4: while DAD runs, the addresses receive nothing. */
static void test_tentative_address(void **state)
{
	struct th *t = *state;
	uint8_t f[TH_FRAME_MAX];
	size_t len;

	th_ipv6_setup(t, false);
	assert_int_equal(nd_addr_state(&t->w[0], 0, th_ip6_port0), ND_ADDR_TENTATIVE);
	len = b_valid(f);
	net_input(&t->w[0], th_mbuf(f, len, 0), 0, false);
	assert_int_equal(CTR(t, 0, ipv6_drop_tentative), 1);
	assert_int_equal(CTR(t, 0, icmp6_echo_rx), 0);
	/* nothing may be sent from it either */
	{
		uint8_t src[16];

		assert_int_equal(net_ipv6_source(&t->w[0], th_ip6_peer0, src), PG_DECLINED);
	}
}

/* RFC 4443 §2.4 (f): errors are rate limited, and the limit recovers with time. */
static void test_error_rate_limit(void **state)
{
	struct th *t = *state;
	uint8_t f[TH_FRAME_MAX];
	size_t len;

	th_ipv6_setup(t, true);
	th_nd_learn(t, 0, 0, th_ip6_peer0, &th_mac_peer);
	len = b_udp(f);
	for (int i = 0; i < 25; i++)
		net_input(&t->w[0], th_mbuf(f, len, 0), 0, false);
	assert_int_equal(CTR(t, 0, ipv6_drop_proto), 25);
	assert_int_equal(CTR(t, 0, icmp6_error_tx), 10);
	assert_int_equal(CTR(t, 0, icmp6_error_limited), 15);
	assert_int_equal(th_flush(t, 0), 10);
	th_cap_clear(t, 0);
	/* 100 per second: 50 ms later, five more */
	t->w[0].now_ns += 50 * 1000 * 1000;
	for (int i = 0; i < 10; i++)
		net_input(&t->w[0], th_mbuf(f, len, 0), 0, false);
	assert_int_equal(CTR(t, 0, icmp6_error_tx), 15);
	assert_int_equal(CTR(t, 0, icmp6_error_limited), 20);
}

/* An error quotes only what fits in 1280 bytes (RFC 4443 §2.4 (c)). */
static void test_error_quote_bounded(void **state)
{
	struct th *t = *state;
	uint8_t f[TH_FRAME_MAX], udp[1400];
	const struct rte_ipv6_hdr *ip;
	size_t len;

	th_ipv6_setup(t, true);
	th_nd_learn(t, 0, 0, th_ip6_peer0, &th_mac_peer);
	memset(udp, 0x5a, sizeof(udp));
	len = th_build_ipv6(f, &th_mac_port0, th_ip6_peer0, th_ip6_port0, IPPROTO_UDP, 64, udp,
	                    sizeof(udp));
	net_input(&t->w[0], th_mbuf(f, len, 700), 0, false);
	assert_int_equal(th_flush(t, 0), 1);
	assert_int_equal(rte_pktmbuf_pkt_len(t->cap[0].pkts[0]), 14 + 1280);
	ip = rte_pktmbuf_mtod_offset(t->cap[0].pkts[0], const struct rte_ipv6_hdr *, 14);
	assert_int_equal(rte_be_to_cpu_16(ip->payload_len), 1240);
	check_icmp6_cksum(t->cap[0].pkts[0]);
}

/* A port without IPv6 does not speak it, whatever the rest of the fixture does. */
static void test_port_without_ipv6(void **state)
{
	struct th *t = *state;
	uint8_t f[TH_FRAME_MAX];
	size_t len;

	th_ipv6_setup(t, true);
	t->nc.ports[1].has_ip6 = false;
	th_config_changed(t);
	len = echo_behind(f, NULL, 0, 0, th_ip6_peer1, th_ip6_port1, &th_mac_port1);
	net_input(&t->w[0], th_mbuf(f, len, 0), 1, false);
	assert_int_equal(CTR(t, 0, eth_drop_type), 1);
	assert_int_equal(CTR(t, 0, ipv6_rx), 0);
}

/* ---- output ---- */

static struct rte_mbuf *out6(const uint8_t *src, const uint8_t *dst, size_t plen)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(th_pool());
	struct rte_ipv6_hdr *ip;

	assert_non_null(m);
	ip = (struct rte_ipv6_hdr *)rte_pktmbuf_append(m, (uint16_t)(40 + plen));
	assert_non_null(ip);
	memset(ip, 0, 40 + plen);
	ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
	ip->payload_len = rte_cpu_to_be_16((uint16_t)plen);
	ip->proto = IPPROTO_UDP;
	if (src != NULL)
		memcpy(ip->src_addr, src, 16);
	memcpy(ip->dst_addr, dst, 16);
	return m;
}

static void test_output(void **state)
{
	struct th *t = *state;
	static const uint8_t far[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0x99, 0, 1, [15] = 9};
	static const uint8_t internet[16] = {0x20, 0x01, 0x0d, 0xb8, 0xaa, [15] = 9};
	const struct rte_ipv6_hdr *ip;

	th_ipv6_setup(t, true);
	th_nd_learn(t, 0, 0, th_ip6_peer0, &th_mac_peer);
	th_nd_learn(t, 0, 1, th_ip6_gw1, &th_mac_peer2);
	th_nd_learn(t, 0, 0, th_ip6_gw0, &th_mac_peer2);

	/* on link: source and hop limit filled in */
	assert_int_equal(net_ipv6_output(&t->w[0], out6(NULL, th_ip6_peer0, 100), NET_PORT_ROUTE),
	                 PG_OK);
	/* static route via a gateway on port 1 */
	assert_int_equal(net_ipv6_output(&t->w[0], out6(NULL, far, 10), NET_PORT_ROUTE), PG_OK);
	/* the default route, via a link-local gateway on port 0 */
	assert_int_equal(net_ipv6_output(&t->w[0], out6(NULL, internet, 10), NET_PORT_ROUTE),
	                 PG_OK);
	/* flushed port by port: port 0's two, then port 1's */
	assert_int_equal(th_flush(t, 0), 3);
	ip = rte_pktmbuf_mtod_offset(t->cap[0].pkts[0], const struct rte_ipv6_hdr *, 14);
	assert_memory_equal(ip->src_addr, th_ip6_port0, 16);
	assert_int_equal(ip->hop_limits, 64);
	assert_int_equal(t->cap[0].port[0], 0);
	assert_true(rte_is_same_ether_addr(
	    &rte_pktmbuf_mtod(t->cap[0].pkts[0], struct rte_ether_hdr *)->dst_addr, &th_mac_peer));
	assert_int_equal(t->cap[0].port[1], 0);
	assert_true(rte_is_same_ether_addr(
	    &rte_pktmbuf_mtod(t->cap[0].pkts[1], struct rte_ether_hdr *)->dst_addr, &th_mac_peer2));
	assert_int_equal(t->cap[0].port[2], 1);
	assert_true(rte_is_same_ether_addr(
	    &rte_pktmbuf_mtod(t->cap[0].pkts[2], struct rte_ether_hdr *)->dst_addr, &th_mac_peer2));
	ip = rte_pktmbuf_mtod_offset(t->cap[0].pkts[2], const struct rte_ipv6_hdr *, 14);
	assert_memory_equal(ip->src_addr, th_ip6_port1, 16);
	th_cap_clear(t, 0);

	/* never fragmented: MTU 1500 takes 1460 bytes of payload, not 1461 */
	assert_int_equal(net_ipv6_output(&t->w[0], out6(NULL, th_ip6_peer0, 1461), NET_PORT_ROUTE),
	                 PG_ERROR);
	assert_int_equal(CTR(t, 0, ipv6_out_drop_mtu), 1);
	assert_int_equal(net_ipv6_output(&t->w[0], out6(NULL, th_ip6_peer0, 1460), NET_PORT_ROUTE),
	                 PG_OK);
	/* link-local or multicast without the port they belong to: no route */
	assert_int_equal(net_ipv6_output(&t->w[0], out6(NULL, ip6_ll_peer, 10), NET_PORT_ROUTE),
	                 PG_DECLINED);
	assert_int_equal(CTR(t, 0, route6_drop_noroute), 1);
	/* multicast on a port: 33:33 and the group's low bits, no neighbour needed */
	assert_int_equal(net_ipv6_output(&t->w[0], out6(NULL, ip6_all_nodes_t, 10), 1), PG_OK);
	assert_int_equal(th_flush(t, 0), 2);
	assert_true(rte_is_same_ether_addr(
	    &rte_pktmbuf_mtod(t->cap[0].pkts[1], struct rte_ether_hdr *)->dst_addr,
	    &mac_all_nodes));
	ip = rte_pktmbuf_mtod_offset(t->cap[0].pkts[1], const struct rte_ipv6_hdr *, 14);
	assert_memory_equal(ip->src_addr, th_ll6(t, 1), 16);
	th_cap_clear(t, 0);
	/* without the default route, the Internet is unreachable */
	t->nc.nroutes6 = 3;
	assert_int_equal(net_ipv6_output(&t->w[0], out6(NULL, internet, 10), NET_PORT_ROUTE),
	                 PG_DECLINED);
	assert_int_equal(CTR(t, 0, route6_drop_noroute), 2);
}

/* Source selection (RFC 6724, per port) and the link-local address from the MAC. */
static void test_source_and_link_local(void **state)
{
	struct th *t = *state;
	static const uint8_t ll0[16] = {0xfe, 0x80, [8] = 0x00, 0x00, 0x00, 0xff, 0xfe, 0, 0, 0x01};
	static const uint8_t far[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0x99, [15] = 1};
	uint8_t src[16];

	th_ipv6_setup(t, true);
	/* 02:00:00:00:00:01 -> fe80::ff:fe00:1 (the U/L bit of 02 inverted, RFC 4291 App. A) */
	assert_memory_equal(th_ll6(t, 0), ll0, 16);
	assert_int_equal(net_ipv6_source(&t->w[0], far, src), PG_OK);
	assert_memory_equal(src, th_ip6_port1, 16);
	assert_int_equal(net_ipv6_source(&t->w[0], th_ip6_peer0, src), PG_OK);
	assert_memory_equal(src, th_ip6_port0, 16);
	assert_int_equal(net_ipv6_source(&t->w[0], ip6_ll_peer, src), PG_DECLINED);
}

/* ---- steering ---- */

static void test_steer_hash6_symmetric(void **state)
{
	(void)state;
	uint8_t a[16], b[16];

	for (unsigned i = 0; i < 1000; i++) {
		uint16_t p = rte_cpu_to_be_16((uint16_t)(i * 7919)), q = rte_cpu_to_be_16(25);

		for (unsigned k = 0; k < 16; k++) {
			a[k] = (uint8_t)(i * 31 + k * 17);
			b[k] = (uint8_t)(i * 13 + k * 101);
		}
		assert_int_equal(steer_hash6(a, b, p, q), steer_hash6(b, a, q, p));
	}
}

/* The owner is the hash of the 4-tuple, past extension headers; fragments stay. */
static void test_steer_owner6(void **state)
{
	struct th *t = *state;
	static const uint8_t tcp[20] = {0x30, 0x39, 0, 25, 0, 0, 0, 1, 0, 0, 0, 0, 5 << 4, 2};
	uint8_t f[TH_FRAME_MAX], p[64];
	unsigned owners[4] = {0}, spread = 0;

	for (unsigned i = 0; i < 64; i++) {
		uint8_t src[16];
		uint16_t sport = rte_cpu_to_be_16((uint16_t)(1024 + i * 37));
		uint32_t want;
		size_t len;

		memcpy(src, th_ip6_peer0, 16);
		src[15] = (uint8_t)(i + 2);
		memcpy(p, tcp, sizeof(tcp));
		memcpy(p, &sport, 2);
		want = steer_hash6(src, th_ip6_port0, sport, rte_cpu_to_be_16(25)) % 4;
		len = th_build_ipv6(f, &th_mac_port0, src, th_ip6_port0, IPPROTO_TCP, 64, p, 20);
		{
			struct rte_mbuf *m = th_mbuf(f, len, 0);

			assert_int_equal(steer_owner(&t->w[0], m), want);
			rte_pktmbuf_free(m);
		}
		/* the same behind a Destination Options header */
		memmove(p + 8, p, 20);
		memcpy(p, (const uint8_t[8]){IPPROTO_TCP, 0, 1, 4, 0, 0, 0, 0}, 8);
		len = th_build_ipv6(f, &th_mac_port0, src, th_ip6_port0, 60, 64, p, 28);
		{
			struct rte_mbuf *m = th_mbuf(f, len, 0);

			assert_int_equal(steer_owner(&t->w[0], m), want);
			rte_pktmbuf_free(m);
		}
		/* a first fragment is not steered: it stays on the worker it reached */
		memcpy(p, (const uint8_t[8]){IPPROTO_TCP, 0, 0, 1, 0, 0, 0, 1}, 8);
		len = th_build_ipv6(f, &th_mac_port0, src, th_ip6_port0, 44, 64, p, 28);
		{
			struct rte_mbuf *m = th_mbuf(f, len, 0);

			assert_int_equal(steer_owner(&t->w[2], m), 2);
			rte_pktmbuf_free(m);
		}
		owners[want]++;
	}
	for (unsigned k = 0; k < 4; k++)
		spread += owners[k] > 0;
	assert_int_equal(spread, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_ipv6_input_table, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_padding_trimmed, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_tentative_address, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_error_rate_limit, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_error_quote_bounded, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_port_without_ipv6, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_output, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_source_and_link_local, th_setup1, th_teardown),
	    cmocka_unit_test(test_steer_hash6_symmetric),
	    cmocka_unit_test_setup_teardown(test_steer_owner6, th_setup4, th_teardown),
	};
	int rc;

	th_eal_init();
	rc = cmocka_run_group_tests_name("net_ipv6", tests, NULL, NULL);
	th_eal_fini();
	return rc;
}
