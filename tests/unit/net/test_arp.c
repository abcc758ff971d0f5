/*
 * test_arp.c - ARP (RFC 826, RFC 5227) driven by injected frames: replies,
 * every reason to ignore a frame, learning, resolution with parked
 * packets, retries and expiry on the virtual clock, announcements,
 * conflicts, config changes, and the copies to the other workers.
 */
#include <string.h>

#include "net_harness.h"
#include "result.h"

#define END                                                                                        \
	{                                                                                          \
		-1, 0                                                                              \
	}

static const struct rte_arp_hdr *arp_of(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod_offset(m, const struct rte_arp_hdr *, sizeof(struct rte_ether_hdr));
}

static const struct rte_ether_hdr *eth_of(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod(m, const struct rte_ether_hdr *);
}

static void inject(struct th *t, unsigned i, uint16_t port, const uint8_t *frame, size_t len)
{
	net_input(&t->w[i], th_mbuf(frame, len, 0), port, false);
}

/* The request a peer sends to find us, and the reply we must send back. */
static void test_request_for_us_is_answered(void **state)
{
	struct th *t = *state;
	uint8_t f[TH_FRAME_MAX];
	size_t len = th_build_arp(f, &th_mac_bcast, RTE_ARP_OP_REQUEST, &th_mac_peer, TH_PEER0_IP,
	                          &th_mac_zero, TH_PORT0_IP);
	struct rte_ether_addr mac;
	const struct rte_arp_hdr *ah;
	struct rte_mbuf *r;

	inject(t, 0, 0, f, len);
	assert_int_equal(th_flush(t, 0), 1);
	r = t->cap[0].pkts[0];
	assert_int_equal(t->cap[0].port[0], 0);
	assert_int_equal(rte_pktmbuf_pkt_len(r), sizeof(struct rte_ether_hdr) + sizeof(*ah));
	assert_true(rte_is_same_ether_addr(&eth_of(r)->dst_addr, &th_mac_peer));
	assert_true(rte_is_same_ether_addr(&eth_of(r)->src_addr, &th_mac_port0));
	assert_int_equal(rte_be_to_cpu_16(eth_of(r)->ether_type), RTE_ETHER_TYPE_ARP);
	ah = arp_of(r);
	assert_int_equal(rte_be_to_cpu_16(ah->arp_hardware), RTE_ARP_HRD_ETHER);
	assert_int_equal(rte_be_to_cpu_16(ah->arp_protocol), RTE_ETHER_TYPE_IPV4);
	assert_int_equal(ah->arp_hlen, 6);
	assert_int_equal(ah->arp_plen, 4);
	assert_int_equal(rte_be_to_cpu_16(ah->arp_opcode), RTE_ARP_OP_REPLY);
	assert_true(rte_is_same_ether_addr(&ah->arp_data.arp_sha, &th_mac_port0));
	assert_int_equal(ah->arp_data.arp_sip, TH_PORT0_IP);
	assert_true(rte_is_same_ether_addr(&ah->arp_data.arp_tha, &th_mac_peer));
	assert_int_equal(ah->arp_data.arp_tip, TH_PEER0_IP);
	assert_int_equal(CTR(t, 0, arp_request_rx), 1);
	assert_int_equal(CTR(t, 0, arp_reply_tx), 1);
	/* RFC 826: we were the target, so the sender is now in the cache. */
	assert_int_equal(arp_lookup(&t->w[0], 0, TH_PEER0_IP, &mac), PG_OK);
	assert_true(rte_is_same_ether_addr(&mac, &th_mac_peer));
	/* Strong host: not learned on the other port. */
	assert_int_equal(arp_lookup(&t->w[0], 1, TH_PEER0_IP, &mac), PG_DECLINED);
}

/* One row: a frame edit, then exactly these counters, this many frames out. */
struct arp_case {
	const char *name;
	void (*edit)(uint8_t *f, size_t *len);
	uint16_t port;
	struct th_ctr_delta want[4];
	unsigned tx;
	bool learned; /* sender 198.18.0.2 ends up in the cache */
};

static struct rte_arp_hdr *arp_in(uint8_t *f)
{
	return (struct rte_arp_hdr *)(f + sizeof(struct rte_ether_hdr));
}

static void e_none(uint8_t *f, size_t *len)
{
	(void)f, (void)len;
}
static void e_other_target(uint8_t *f, size_t *len)
{
	(void)len;
	arp_in(f)->arp_data.arp_tip = IP4(198, 18, 0, 77);
}
static void e_short(uint8_t *f, size_t *len)
{
	(void)f;
	*len = sizeof(struct rte_ether_hdr) + sizeof(struct rte_arp_hdr) - 1;
}
static void e_hrd(uint8_t *f, size_t *len)
{
	(void)len;
	arp_in(f)->arp_hardware = rte_cpu_to_be_16(6); /* IEEE 802 */
}
static void e_pro(uint8_t *f, size_t *len)
{
	(void)len;
	arp_in(f)->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6);
}
static void e_hln(uint8_t *f, size_t *len)
{
	(void)len;
	arp_in(f)->arp_hlen = 8;
}
static void e_pln(uint8_t *f, size_t *len)
{
	(void)len;
	arp_in(f)->arp_plen = 16;
}
static void e_op_rarp(uint8_t *f, size_t *len)
{
	(void)len;
	arp_in(f)->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REVREQUEST);
}
static void e_op_zero(uint8_t *f, size_t *len)
{
	(void)len;
	arp_in(f)->arp_opcode = 0;
}
static void e_sha_bcast(uint8_t *f, size_t *len)
{
	(void)len;
	arp_in(f)->arp_data.arp_sha = th_mac_bcast;
}
static void e_sha_mcast(uint8_t *f, size_t *len)
{
	(void)len;
	arp_in(f)->arp_data.arp_sha.addr_bytes[0] = 0x01;
}
static void e_sha_zero(uint8_t *f, size_t *len)
{
	(void)len;
	arp_in(f)->arp_data.arp_sha = th_mac_zero;
}
static void e_sha_ours(uint8_t *f, size_t *len)
{
	(void)len;
	arp_in(f)->arp_data.arp_sha = th_mac_port0;
}
static void e_sip_mcast(uint8_t *f, size_t *len)
{
	(void)len;
	arp_in(f)->arp_data.arp_sip = IP4(224, 0, 0, 1);
}
static void e_sip_bcast(uint8_t *f, size_t *len)
{
	(void)len;
	arp_in(f)->arp_data.arp_sip = IP4(255, 255, 255, 255);
}
static void e_probe(uint8_t *f, size_t *len)
{
	(void)len;
	arp_in(f)->arp_data.arp_sip = 0; /* RFC 5227 §2.1.1 probe */
}
static void e_conflict(uint8_t *f, size_t *len)
{
	(void)len;
	arp_in(f)->arp_data.arp_sip = TH_PORT0_IP;
	arp_in(f)->arp_data.arp_tip = TH_PORT0_IP;
}
static void e_eth_unicast_other(uint8_t *f, size_t *len)
{
	(void)len;
	((struct rte_ether_hdr *)f)->dst_addr = th_mac_peer2;
}
static void e_eth_multicast(uint8_t *f, size_t *len)
{
	(void)len;
	((struct rte_ether_hdr *)f)->dst_addr.addr_bytes[0] = 0x01;
}
static void e_eth_own_src(uint8_t *f, size_t *len)
{
	(void)len;
	((struct rte_ether_hdr *)f)->src_addr = th_mac_port0;
}
static void e_eth_short(uint8_t *f, size_t *len)
{
	(void)f;
	*len = 13;
}
static void e_eth_vlan(uint8_t *f, size_t *len)
{
	(void)len;
	((struct rte_ether_hdr *)f)->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_VLAN);
}
static void e_eth_type(uint8_t *f, size_t *len)
{
	(void)len;
	((struct rte_ether_hdr *)f)->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV6);
}
static void e_reply_to_us(uint8_t *f, size_t *len)
{
	(void)len;
	arp_in(f)->arp_opcode = rte_cpu_to_be_16(RTE_ARP_OP_REPLY);
	arp_in(f)->arp_data.arp_tha = th_mac_port0;
	((struct rte_ether_hdr *)f)->dst_addr = th_mac_port0;
}
static void e_gratuitous_unknown(uint8_t *f, size_t *len)
{
	(void)len;
	arp_in(f)->arp_data.arp_tip = TH_PEER0_IP; /* sip == tip, not us */
}

#define C(x) CTR_##x
/* One row per case reads better than the wrapped form. */
/* clang-format off */
static const struct arp_case arp_cases[] = {
	{"request for us", e_none, 0, {{C(arp_request_rx), 1}, {C(arp_reply_tx), 1}, {C(arp_learned), 1}, END}, 1, true},
	{"request for us on the wrong port", e_none, 1, {{C(arp_drop_not_for_us), 1}, END}, 0, false},
	{"request for another host", e_other_target, 0, {{C(arp_drop_not_for_us), 1}, END}, 0, false},
	{"gratuitous from unknown host", e_gratuitous_unknown, 0, {{C(arp_drop_not_for_us), 1}, END}, 0, false},
	{"reply to us", e_reply_to_us, 0, {{C(arp_reply_rx), 1}, {C(arp_learned), 1}, END}, 0, true},
	{"truncated", e_short, 0, {{C(arp_drop_malformed), 1}, END}, 0, false},
	{"hardware not Ethernet", e_hrd, 0, {{C(arp_drop_malformed), 1}, END}, 0, false},
	{"protocol not IPv4", e_pro, 0, {{C(arp_drop_malformed), 1}, END}, 0, false},
	{"hln 8", e_hln, 0, {{C(arp_drop_malformed), 1}, END}, 0, false},
	{"pln 16", e_pln, 0, {{C(arp_drop_malformed), 1}, END}, 0, false},
	{"RARP op", e_op_rarp, 0, {{C(arp_drop_op), 1}, END}, 0, false},
	{"op 0", e_op_zero, 0, {{C(arp_drop_op), 1}, END}, 0, false},
	{"sender MAC broadcast", e_sha_bcast, 0, {{C(arp_drop_bad_sender), 1}, END}, 0, false},
	{"sender MAC multicast", e_sha_mcast, 0, {{C(arp_drop_bad_sender), 1}, END}, 0, false},
	{"sender MAC zero", e_sha_zero, 0, {{C(arp_drop_bad_sender), 1}, END}, 0, false},
	{"sender MAC ours", e_sha_ours, 0, {{C(arp_drop_bad_sender), 1}, END}, 0, false},
	{"sender IP multicast", e_sip_mcast, 0, {{C(arp_drop_bad_sender), 1}, END}, 0, false},
	{"sender IP broadcast", e_sip_bcast, 0, {{C(arp_drop_bad_sender), 1}, END}, 0, false},
	/* RFC 5227 §2.1.1: answer the probe, learn nothing. */
	{"probe for our address", e_probe, 0, {{C(arp_request_rx), 1}, {C(arp_reply_tx), 1}, END}, 1, false},
	/* RFC 5227 §2.4 (b): defend with one announcement. */
	{"conflict: our address, other MAC", e_conflict, 0, {{C(arp_drop_bad_sender), 1}, {C(arp_conflict), 1}, {C(arp_gratuitous_tx), 1}, END}, 1, false},
	{"Ethernet unicast to another host", e_eth_unicast_other, 0, {{C(eth_drop_not_for_us), 1}, END}, 0, false},
	{"Ethernet multicast", e_eth_multicast, 0, {{C(eth_drop_multicast), 1}, END}, 0, false},
	{"Ethernet source is ours", e_eth_own_src, 0, {{C(eth_drop_own_src), 1}, END}, 0, false},
	{"Ethernet runt", e_eth_short, 0, {{C(eth_drop_short), 1}, END}, 0, false},
	{"VLAN tagged", e_eth_vlan, 0, {{C(eth_drop_vlan), 1}, END}, 0, false},
	{"IPv6 EtherType", e_eth_type, 0, {{C(eth_drop_type), 1}, END}, 0, false},
};
/* clang-format on */

static void test_arp_input_table(void **state)
{
	struct th *t = *state;

	for (size_t k = 0; k < RTE_DIM(arp_cases); k++) {
		const struct arp_case *c = &arp_cases[k];
		uint8_t f[TH_FRAME_MAX];
		uint64_t saved[CTR__COUNT];
		struct rte_ether_addr mac;
		size_t len = th_build_arp(f, &th_mac_bcast, RTE_ARP_OP_REQUEST, &th_mac_peer,
		                          TH_PEER0_IP, &th_mac_zero, TH_PORT0_IP);
		struct th_ctr_delta want[5];
		unsigned n = 0;

		/* A fresh cache per row; a frame out brings tx_packets with it. */
		arp_table_destroy(&t->w[0], t->w[0].arp);
		t->w[0].arp = arp_table_create(&t->w[0], 256);
		t->w[0].now_ns += 3600 * TH_NS_PER_S; /* outside any defend interval */
		net_config_changed(&t->w[0]);
		for (; c->want[n].ctr >= 0; n++)
			want[n] = c->want[n];
		if (c->tx > 0)
			want[n++] = (struct th_ctr_delta){CTR_tx_packets, c->tx};
		want[n] = (struct th_ctr_delta)END;

		c->edit(f, &len);
		th_ctr_save(t, 0, saved);
		inject(t, 0, c->port, f, len);
		print_message("# %s\n", c->name);
		assert_int_equal(th_flush(t, 0), c->tx);
		/* tx_bytes moves with tx_packets; take it out of the comparison. */
		saved[CTR_tx_bytes] = t->w[0].ctr[CTR_tx_bytes];
		th_ctr_only(t, 0, saved, want);
		assert_int_equal(arp_lookup(&t->w[0], 0, TH_PEER0_IP, &mac) == PG_OK, c->learned);
		th_cap_clear(t, 0);
	}
}

/*
 * af_packet (like many NICs) strips the 802.1Q tag into the mbuf's
 * metadata: the frame then looks untagged but still belongs to a VLAN.
 */
static void test_vlan_stripped_by_device_is_dropped(void **state)
{
	struct th *t = *state;
	uint8_t f[TH_FRAME_MAX];
	uint64_t saved[CTR__COUNT];
	const struct th_ctr_delta want[] = {{C(eth_drop_vlan), 1}, END};
	size_t len = th_build_arp(f, &th_mac_bcast, RTE_ARP_OP_REQUEST, &th_mac_peer, TH_PEER0_IP,
	                          &th_mac_zero, TH_PORT0_IP);
	struct rte_mbuf *m = th_mbuf(f, len, 0);

	m->ol_flags |= RTE_MBUF_F_RX_VLAN | RTE_MBUF_F_RX_VLAN_STRIPPED;
	m->vlan_tci = 42;
	th_ctr_save(t, 0, saved);
	net_input(&t->w[0], m, 0, false);
	assert_int_equal(th_flush(t, 0), 0);
	th_ctr_only(t, 0, saved, want);
}

/* RFC 826 merge: a frame not for us still refreshes an entry we already have. */
static void test_merge_updates_existing_only(void **state)
{
	struct th *t = *state;
	uint8_t f[TH_FRAME_MAX];
	struct rte_ether_addr mac;
	size_t len;

	/* Unknown host announces itself: not created (we are not the target). */
	len = th_build_arp(f, &th_mac_bcast, RTE_ARP_OP_REQUEST, &th_mac_peer, TH_PEER0_IP,
	                   &th_mac_zero, TH_PEER0_IP);
	inject(t, 0, 0, f, len);
	assert_int_equal(arp_lookup(&t->w[0], 0, TH_PEER0_IP, &mac), PG_DECLINED);

	/* It asks for us: created. */
	len = th_build_arp(f, &th_mac_bcast, RTE_ARP_OP_REQUEST, &th_mac_peer, TH_PEER0_IP,
	                   &th_mac_zero, TH_PORT0_IP);
	inject(t, 0, 0, f, len);
	assert_int_equal(arp_lookup(&t->w[0], 0, TH_PEER0_IP, &mac), PG_OK);
	assert_true(rte_is_same_ether_addr(&mac, &th_mac_peer));

	/* It moves to another MAC and announces it (gratuitous): merged. */
	len = th_build_arp(f, &th_mac_bcast, RTE_ARP_OP_REQUEST, &th_mac_peer2, TH_PEER0_IP,
	                   &th_mac_zero, TH_PEER0_IP);
	inject(t, 0, 0, f, len);
	assert_int_equal(arp_lookup(&t->w[0], 0, TH_PEER0_IP, &mac), PG_OK);
	assert_true(rte_is_same_ether_addr(&mac, &th_mac_peer2));
}

static uint16_t packet_id_of(struct rte_mbuf *m)
{
	const struct rte_ipv4_hdr *ip =
	    rte_pktmbuf_mtod_offset(m, const struct rte_ipv4_hdr *, sizeof(struct rte_ether_hdr));

	return rte_be_to_cpu_16(ip->packet_id);
}

static void reply_from(struct th *t, unsigned i, uint16_t port, const struct rte_ether_addr *mac,
                       uint32_t ip)
{
	uint8_t f[TH_FRAME_MAX];
	const struct rte_ether_addr *ours = port == 0 ? &th_mac_port0 : &th_mac_port1;
	uint32_t our_ip = port == 0 ? TH_PORT0_IP : TH_PORT1_IP;
	size_t len = th_build_arp(f, ours, RTE_ARP_OP_REPLY, mac, ip, ours, our_ip);

	inject(t, i, port, f, len);
}

static void test_resolution_parks_then_sends(void **state)
{
	struct th *t = *state;
	const struct rte_arp_hdr *ah;
	struct rte_mbuf *req;

	assert_int_equal(net_ipv4_output(&t->w[0], th_out_packet(TH_PEER0_IP, 1, 16)), PG_AGAIN);
	assert_int_equal(net_ipv4_output(&t->w[0], th_out_packet(TH_PEER0_IP, 2, 16)), PG_AGAIN);
	assert_int_equal(net_ipv4_output(&t->w[0], th_out_packet(TH_PEER0_IP, 3, 16)), PG_AGAIN);
	assert_int_equal(CTR(t, 0, arp_pending_queued), 3);

	/* One request, not three. */
	assert_int_equal(th_flush(t, 0), 1);
	req = t->cap[0].pkts[0];
	assert_true(rte_is_broadcast_ether_addr(&eth_of(req)->dst_addr));
	assert_true(rte_is_same_ether_addr(&eth_of(req)->src_addr, &th_mac_port0));
	ah = arp_of(req);
	assert_int_equal(rte_be_to_cpu_16(ah->arp_opcode), RTE_ARP_OP_REQUEST);
	assert_true(rte_is_same_ether_addr(&ah->arp_data.arp_sha, &th_mac_port0));
	assert_int_equal(ah->arp_data.arp_sip, TH_PORT0_IP);
	assert_true(rte_is_zero_ether_addr(&ah->arp_data.arp_tha));
	assert_int_equal(ah->arp_data.arp_tip, TH_PEER0_IP);
	assert_int_equal(CTR(t, 0, arp_request_tx), 1);
	th_cap_clear(t, 0);

	reply_from(t, 0, 0, &th_mac_peer, TH_PEER0_IP);
	assert_int_equal(th_flush(t, 0), 3);
	for (unsigned k = 0; k < 3; k++) {
		struct rte_mbuf *m = t->cap[0].pkts[k];

		assert_int_equal(t->cap[0].port[k], 0);
		assert_true(rte_is_same_ether_addr(&eth_of(m)->dst_addr, &th_mac_peer));
		assert_true(rte_is_same_ether_addr(&eth_of(m)->src_addr, &th_mac_port0));
		assert_int_equal(packet_id_of(m), k + 1); /* in order */
	}
	th_cap_clear(t, 0);

	/* Resolved: the next packet goes straight out. */
	assert_int_equal(net_ipv4_output(&t->w[0], th_out_packet(TH_PEER0_IP, 4, 16)), PG_OK);
	assert_int_equal(th_flush(t, 0), 1);
	assert_true(rte_is_same_ether_addr(&eth_of(t->cap[0].pkts[0])->dst_addr, &th_mac_peer));
}

static void test_retries_then_unresolved_drop(void **state)
{
	struct th *t = *state;
	struct worker *w = &t->w[0];
	struct rte_ether_addr mac;

	assert_int_equal(net_ipv4_output(w, th_out_packet(TH_PEER0_IP, 1, 16)), PG_AGAIN);
	assert_int_equal(net_ipv4_output(w, th_out_packet(TH_PEER0_IP, 2, 16)), PG_AGAIN);
	assert_int_equal(CTR(t, 0, arp_request_tx), 1);

	/* Nothing before the retry interval. */
	w->now_ns += t->nc.arp_retry_ns - 1;
	net_timers(w);
	assert_int_equal(CTR(t, 0, arp_request_tx), 1);

	for (uint32_t k = 1; k <= t->nc.arp_max_retries; k++) {
		w->now_ns += t->nc.arp_retry_ns;
		net_timers(w);
		assert_int_equal(CTR(t, 0, arp_request_tx), 1 + k);
		assert_int_equal(CTR(t, 0, arp_unresolved_drop), 0);
	}
	w->now_ns += t->nc.arp_retry_ns;
	net_timers(w);
	assert_int_equal(CTR(t, 0, arp_request_tx), 1 + t->nc.arp_max_retries);
	assert_int_equal(CTR(t, 0, arp_unresolved_drop), 2);
	assert_int_equal(arp_lookup(w, 0, TH_PEER0_IP, &mac), PG_DECLINED);
	assert_int_equal(th_flush(t, 0), 1 + t->nc.arp_max_retries);
	th_cap_clear(t, 0);

	/* Forgotten: the next packet starts a fresh resolution. */
	assert_int_equal(net_ipv4_output(w, th_out_packet(TH_PEER0_IP, 3, 16)), PG_AGAIN);
	assert_int_equal(CTR(t, 0, arp_request_tx), 2 + t->nc.arp_max_retries);
}

static void test_pending_per_entry_keeps_latest(void **state)
{
	struct th *t = *state;

	for (uint16_t id = 1; id <= 7; id++)
		net_ipv4_output(&t->w[0], th_out_packet(TH_PEER0_IP, id, 16));
	assert_int_equal(CTR(t, 0, arp_pending_drop_full), 3);
	th_flush(t, 0);
	th_cap_clear(t, 0);
	reply_from(t, 0, 0, &th_mac_peer, TH_PEER0_IP);
	assert_int_equal(th_flush(t, 0), 4);
	for (unsigned k = 0; k < 4; k++)
		assert_int_equal(packet_id_of(t->cap[0].pkts[k]), 4 + k);
}

static void test_pending_worker_total_bound(void **state)
{
	struct th *t = *state;
	struct worker *w = &t->w[0];

	t->nc.arp_pending_max = 3;
	/* Three neighbours, one packet each: the third is the bound. */
	assert_int_equal(net_ipv4_output(w, th_out_packet(IP4(198, 18, 0, 10), 1, 8)), PG_AGAIN);
	assert_int_equal(net_ipv4_output(w, th_out_packet(IP4(198, 18, 0, 11), 2, 8)), PG_AGAIN);
	assert_int_equal(net_ipv4_output(w, th_out_packet(IP4(198, 18, 0, 12), 3, 8)), PG_AGAIN);
	/* A fourth neighbour has nothing to give up: its packet is dropped. */
	assert_int_equal(net_ipv4_output(w, th_out_packet(IP4(198, 18, 0, 13), 4, 8)), PG_ERROR);
	assert_int_equal(CTR(t, 0, arp_pending_drop_full), 1);
	/* A neighbour with a parked packet trades its oldest for the newest. */
	assert_int_equal(net_ipv4_output(w, th_out_packet(IP4(198, 18, 0, 10), 5, 8)), PG_AGAIN);
	assert_int_equal(CTR(t, 0, arp_pending_drop_full), 2);
	th_flush(t, 0);
	th_cap_clear(t, 0);
	reply_from(t, 0, 0, &th_mac_peer, IP4(198, 18, 0, 10));
	assert_int_equal(th_flush(t, 0), 1);
	assert_int_equal(packet_id_of(t->cap[0].pkts[0]), 5);
}

static void test_expiry(void **state)
{
	struct th *t = *state;
	struct worker *w = &t->w[0];
	struct rte_ether_addr mac;

	reply_from(t, 0, 0, &th_mac_peer, TH_PEER0_IP);
	assert_int_equal(arp_lookup(w, 0, TH_PEER0_IP, &mac), PG_OK);
	w->now_ns += t->nc.arp_cache_ns - 1;
	net_timers(w);
	assert_int_equal(arp_lookup(w, 0, TH_PEER0_IP, &mac), PG_OK);
	w->now_ns += 1;
	net_timers(w);
	assert_int_equal(CTR(t, 0, arp_expired), 1);
	assert_int_equal(arp_lookup(w, 0, TH_PEER0_IP, &mac), PG_DECLINED);

	/* Expired but the timer has not run: output re-resolves, no stale MAC. */
	reply_from(t, 0, 0, &th_mac_peer, TH_PEER0_IP);
	w->now_ns += t->nc.arp_cache_ns;
	assert_int_equal(net_ipv4_output(w, th_out_packet(TH_PEER0_IP, 1, 8)), PG_AGAIN);
	assert_int_equal(CTR(t, 0, arp_expired), 2);
	assert_int_equal(CTR(t, 0, arp_request_tx), 1);
}

static void test_announce(void **state)
{
	struct th *t = *state;

	net_announce(&t->w[0]);
	assert_int_equal(th_flush(t, 0), 2);
	for (unsigned k = 0; k < 2; k++) {
		struct rte_mbuf *m = t->cap[0].pkts[k];
		const struct rte_arp_hdr *ah = arp_of(m);
		uint32_t ip = t->cap[0].port[k] == 0 ? TH_PORT0_IP : TH_PORT1_IP;
		const struct rte_ether_addr *mac =
		    t->cap[0].port[k] == 0 ? &th_mac_port0 : &th_mac_port1;

		/* RFC 5227 §3: request, sender = target = our address, broadcast. */
		assert_true(rte_is_broadcast_ether_addr(&eth_of(m)->dst_addr));
		assert_true(rte_is_same_ether_addr(&eth_of(m)->src_addr, mac));
		assert_int_equal(rte_be_to_cpu_16(ah->arp_opcode), RTE_ARP_OP_REQUEST);
		assert_true(rte_is_same_ether_addr(&ah->arp_data.arp_sha, mac));
		assert_int_equal(ah->arp_data.arp_sip, ip);
		assert_int_equal(ah->arp_data.arp_tip, ip);
		assert_true(rte_is_zero_ether_addr(&ah->arp_data.arp_tha));
	}
	assert_int_equal(CTR(t, 0, arp_gratuitous_tx), 2);
	th_cap_clear(t, 0);

	t->nc.gratuitous_arp = false;
	net_announce(&t->w[0]);
	assert_int_equal(th_flush(t, 0), 0);
}

static void test_conflict_defence_rate_limited(void **state)
{
	struct th *t = *state;
	uint8_t f[TH_FRAME_MAX];
	size_t len = th_build_arp(f, &th_mac_bcast, RTE_ARP_OP_REQUEST, &th_mac_peer, TH_PORT0_IP,
	                          &th_mac_zero, TH_PORT0_IP);

	inject(t, 0, 0, f, len);
	t->w[0].now_ns += 5 * TH_NS_PER_S;
	inject(t, 0, 0, f, len);
	assert_int_equal(CTR(t, 0, arp_conflict), 2);
	assert_int_equal(CTR(t, 0, arp_gratuitous_tx), 1);
	t->w[0].now_ns += 5 * TH_NS_PER_S;
	inject(t, 0, 0, f, len);
	assert_int_equal(CTR(t, 0, arp_gratuitous_tx), 2);
}

static void test_config_change_flushes_changed_port_only(void **state)
{
	struct th *t = *state;
	struct worker *w = &t->w[0];
	struct rte_ether_addr mac;

	reply_from(t, 0, 0, &th_mac_peer, TH_PEER0_IP);
	reply_from(t, 0, 1, &th_mac_peer2, TH_PEER1_IP);
	net_ipv4_output(w, th_out_packet(IP4(198, 19, 0, 9), 1, 8)); /* parked on port 1 */
	t->nc.ports[1].mac.addr_bytes[5] = 0x22;
	net_config_changed(w);
	assert_int_equal(arp_lookup(w, 0, TH_PEER0_IP, &mac), PG_OK);
	assert_int_equal(arp_lookup(w, 1, TH_PEER1_IP, &mac), PG_DECLINED);
	assert_int_equal(CTR(t, 0, arp_flush_drop), 1);

	/* A port that disappears takes its neighbours with it. */
	t->nc.nports = 1;
	t->nc.nroutes = 1;
	net_config_changed(w);
	assert_int_equal(arp_lookup(w, 0, TH_PEER0_IP, &mac), PG_OK);
}

static void test_cache_full(void **state)
{
	struct th *t = *state;
	struct worker *w = &t->w[0];

	arp_table_destroy(w, w->arp);
	w->arp = arp_table_create(w, 2);
	net_config_changed(w);
	assert_int_equal(net_ipv4_output(w, th_out_packet(IP4(198, 18, 0, 10), 1, 8)), PG_AGAIN);
	assert_int_equal(net_ipv4_output(w, th_out_packet(IP4(198, 18, 0, 11), 2, 8)), PG_AGAIN);
	assert_int_equal(net_ipv4_output(w, th_out_packet(IP4(198, 18, 0, 12), 3, 8)), PG_ERROR);
	assert_int_equal(CTR(t, 0, arp_cache_full), 1);
}

/* Many entries in a small table: probing, removal by backward shift, reuse. */
static void test_table_churn(void **state)
{
	struct th *t = *state;
	struct worker *w = &t->w[0];
	struct rte_ether_addr mac;

	for (int round = 0; round < 3; round++) {
		for (unsigned k = 1; k <= 200; k++)
			reply_from(t, 0, 0, &th_mac_peer, IP4(198, 18, k / 250, k % 250 + 2));
		for (unsigned k = 1; k <= 200; k++)
			assert_int_equal(arp_lookup(w, 0, IP4(198, 18, k / 250, k % 250 + 2), &mac),
			                 PG_OK);
		/* Expire half of them by refreshing the other half first. */
		w->now_ns += t->nc.arp_cache_ns / 2;
		for (unsigned k = 1; k <= 200; k += 2)
			reply_from(t, 0, 0, &th_mac_peer, IP4(198, 18, k / 250, k % 250 + 2));
		w->now_ns += t->nc.arp_cache_ns / 2;
		net_timers(w);
		for (unsigned k = 1; k <= 200; k++)
			assert_int_equal(
			    arp_lookup(w, 0, IP4(198, 18, k / 250, k % 250 + 2), &mac) == PG_OK,
			    k % 2 == 1);
		w->now_ns += t->nc.arp_cache_ns;
		net_timers(w);
		for (unsigned k = 1; k <= 200; k++)
			assert_int_equal(arp_lookup(w, 0, IP4(198, 18, k / 250, k % 250 + 2), &mac),
			                 PG_DECLINED);
	}
	assert_int_equal(CTR(t, 0, arp_expired), 600);
	assert_int_equal(CTR(t, 0, arp_cache_full), 0);
}

/* ARP reaches every worker's cache; only the receiving worker answers. */
static void test_copies_to_other_workers(void **state)
{
	struct th *t = *state;
	uint8_t f[TH_FRAME_MAX];
	size_t len = th_build_arp(f, &th_mac_bcast, RTE_ARP_OP_REQUEST, &th_mac_peer, TH_PEER0_IP,
	                          &th_mac_zero, TH_PORT0_IP);
	struct rte_ether_addr mac;

	inject(t, 1, 0, f, len);
	assert_int_equal(CTR(t, 1, arp_bcast_fwd), 3);
	assert_int_equal(th_flush(t, 1), 1); /* the reply */
	for (unsigned i = 0; i < 4; i++) {
		if (i == 1) {
			assert_int_equal(rte_ring_count(t->rings[i]), 0);
			continue;
		}
		assert_int_equal(th_deliver_steered(t, i), 1);
		assert_int_equal(th_flush(t, i), 0);           /* never answered twice */
		assert_int_equal(CTR(t, i, arp_bcast_fwd), 0); /* never re-broadcast */
		assert_int_equal(CTR(t, i, arp_request_rx), 0);
	}
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(arp_lookup(&t->w[i], 0, TH_PEER0_IP, &mac), PG_OK);
		assert_int_equal(rte_ring_count(t->rings[i]), 0);
	}

	/* A reply landing on worker 3 releases packets parked on worker 0. */
	assert_int_equal(net_ipv4_output(&t->w[0], th_out_packet(TH_PEER1_IP, 9, 8)), PG_AGAIN);
	th_flush(t, 0);
	th_cap_clear(t, 0);
	reply_from(t, 3, 1, &th_mac_peer2, TH_PEER1_IP);
	assert_int_equal(th_deliver_steered(t, 0), 1);
	assert_int_equal(th_flush(t, 0), 1);
	assert_true(rte_is_same_ether_addr(&eth_of(t->cap[0].pkts[0])->dst_addr, &th_mac_peer2));
	for (unsigned i = 1; i < 3; i++)
		th_deliver_steered(t, i);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_request_for_us_is_answered, th_setup1,
	                                    th_teardown),
	    cmocka_unit_test_setup_teardown(test_arp_input_table, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_vlan_stripped_by_device_is_dropped, th_setup1,
	                                    th_teardown),
	    cmocka_unit_test_setup_teardown(test_merge_updates_existing_only, th_setup1,
	                                    th_teardown),
	    cmocka_unit_test_setup_teardown(test_resolution_parks_then_sends, th_setup1,
	                                    th_teardown),
	    cmocka_unit_test_setup_teardown(test_retries_then_unresolved_drop, th_setup1,
	                                    th_teardown),
	    cmocka_unit_test_setup_teardown(test_pending_per_entry_keeps_latest, th_setup1,
	                                    th_teardown),
	    cmocka_unit_test_setup_teardown(test_pending_worker_total_bound, th_setup1,
	                                    th_teardown),
	    cmocka_unit_test_setup_teardown(test_expiry, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_announce, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_conflict_defence_rate_limited, th_setup1,
	                                    th_teardown),
	    cmocka_unit_test_setup_teardown(test_config_change_flushes_changed_port_only, th_setup1,
	                                    th_teardown),
	    cmocka_unit_test_setup_teardown(test_cache_full, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_table_churn, th_setup1, th_teardown),
	    cmocka_unit_test_setup_teardown(test_copies_to_other_workers, th_setup4, th_teardown),
	};
	int rc;

	th_eal_init();
	rc = cmocka_run_group_tests_name("net_arp", tests, NULL, NULL);
	th_eal_fini();
	return rc;
}
