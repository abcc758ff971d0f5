/*
 * net_harness.c - the fixture behind net_harness.h: EAL with no NIC and no
 * hugepages, captured TX, rings for steering, and the leak check every
 * teardown performs (the pool's in-use count must return to baseline).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_icmp.h>
#include <rte_lcore.h>
#include <rte_mempool.h>
#include <rte_tcp.h>

#include "net_harness.h"
#include "result.h"

const struct rte_ether_addr th_mac_port0 = {.addr_bytes = {0x02, 0, 0, 0, 0, 0x01}};
const struct rte_ether_addr th_mac_port1 = {.addr_bytes = {0x02, 0, 0, 0, 0, 0x02}};
const struct rte_ether_addr th_mac_peer = {.addr_bytes = {0x02, 0, 0, 0, 0, 0xaa}};
const struct rte_ether_addr th_mac_peer2 = {.addr_bytes = {0x02, 0, 0, 0, 0, 0xbb}};
const struct rte_ether_addr th_mac_bcast = {.addr_bytes = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
const struct rte_ether_addr th_mac_zero;

static struct rte_mempool *th_mbuf_pool;
static struct rte_ring *th_rings[TH_MAX_WORKERS];
static struct worker th_workers[TH_MAX_WORKERS];
static struct th th_fixture;

void th_eal_init(void)
{
	char *argv[] = {"test", "--no-huge",           "-m", "128", "--no-pci", "--no-shconf", "-l",
	                "0",    "--log-level=*:error", NULL};
	int argc = (int)RTE_DIM(argv) - 1;

	if (rte_eal_init(argc, argv) < 0) {
		fprintf(stderr, "rte_eal_init failed\n");
		exit(1);
	}
	th_mbuf_pool = rte_pktmbuf_pool_create("th_pool", 8191, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
	                                       (int)rte_socket_id());
	if (th_mbuf_pool == NULL) {
		fprintf(stderr, "mbuf pool: %s\n", rte_strerror(rte_errno));
		exit(1);
	}
	for (unsigned i = 0; i < TH_MAX_WORKERS; i++) {
		char name[32];

		snprintf(name, sizeof(name), "th_ring%u", i);
		th_rings[i] =
		    rte_ring_create(name, WORKER_RING_SIZE, (int)rte_socket_id(), RING_F_SC_DEQ);
		if (th_rings[i] == NULL) {
			fprintf(stderr, "ring: %s\n", rte_strerror(rte_errno));
			exit(1);
		}
	}
}

void th_eal_fini(void)
{
	for (unsigned i = 0; i < TH_MAX_WORKERS; i++)
		rte_ring_free(th_rings[i]);
	rte_mempool_free(th_mbuf_pool);
	rte_eal_cleanup();
}

struct rte_mempool *th_pool(void)
{
	return th_mbuf_pool;
}

static uint16_t th_capture_burst(struct worker *w, uint16_t port, struct rte_mbuf **pkts,
                                 uint16_t n)
{
	struct th_capture *c = w->tx_capture;
	uint16_t i;

	for (i = 0; i < n && c->n < TH_CAPTURE_MAX; i++) {
		c->pkts[c->n] = pkts[i];
		c->port[c->n] = port;
		c->n++;
	}
	return i;
}

/*
 * Port 0 198.18.0.1/24 toward the senders, port 1 198.19.0.1/24 toward the
 * next hops; a static 10.0.0.0/8 via 198.19.0.254 and a default route via
 * 198.18.0.254, sorted longest prefix first as posternd builds them (adopt.c checks).
 */
static void th_default_config(struct net_config *nc)
{
	memset(nc, 0, sizeof(*nc));
	nc->nports = 2;
	nc->ports[0] = (struct net_port){.dpdk_port = 0,
	                                 .mtu = 1500,
	                                 .addr = TH_PORT0_IP,
	                                 .netmask = IP4(255, 255, 255, 0),
	                                 .prefix_len = 24,
	                                 .mac = th_mac_port0};
	nc->ports[1] = (struct net_port){.dpdk_port = 1,
	                                 .mtu = 1500,
	                                 .addr = TH_PORT1_IP,
	                                 .netmask = IP4(255, 255, 255, 0),
	                                 .prefix_len = 24,
	                                 .mac = th_mac_port1};
	nc->nroutes = 4;
	nc->routes[0] = (struct net_route){.prefix = IP4(198, 18, 0, 0),
	                                   .netmask = IP4(255, 255, 255, 0),
	                                   .prefix_len = 24,
	                                   .port = 0};
	nc->routes[1] = (struct net_route){.prefix = IP4(198, 19, 0, 0),
	                                   .netmask = IP4(255, 255, 255, 0),
	                                   .prefix_len = 24,
	                                   .port = 1};
	nc->routes[2] = (struct net_route){.prefix = IP4(10, 0, 0, 0),
	                                   .netmask = IP4(255, 0, 0, 0),
	                                   .prefix_len = 8,
	                                   .port = 1,
	                                   .gateway = TH_GW1_IP};
	nc->routes[3] = (struct net_route){
	    .prefix = 0, .netmask = 0, .prefix_len = 0, .port = 0, .gateway = TH_GW0_IP};
	nc->arp_retry_ns = 1 * TH_NS_PER_S;
	nc->arp_cache_ns = 60 * TH_NS_PER_S;
	nc->arp_max_retries = 3;
	nc->arp_pending_max = 64;
	nc->gratuitous_arp = true;
}

static int th_setup(void **state, unsigned nworkers)
{
	struct th *t = &th_fixture;

	memset(t, 0, sizeof(*t));
	t->nworkers = nworkers;
	t->w = th_workers;
	th_default_config(&t->nc);
	for (unsigned i = 0; i < nworkers; i++) {
		struct worker *w = &t->w[i];

		t->rings[i] = th_rings[i];
		worker_init_detached(w, i, nworkers, th_mbuf_pool);
		w->rings = t->rings;
		w->net = &t->nc;
		w->arp = arp_table_create(w, 256);
		assert_non_null(w->arp);
		w->tx_burst = th_capture_burst;
		w->tx_capture = &t->cap[i];
		w->now_ns = 1000 * TH_NS_PER_S;
	}
	th_config_changed(t);
	t->baseline = rte_mempool_in_use_count(th_mbuf_pool);
	*state = t;
	return 0;
}

int th_setup1(void **state)
{
	return th_setup(state, 1);
}

int th_setup2(void **state)
{
	return th_setup(state, 2);
}

int th_setup4(void **state)
{
	return th_setup(state, 4);
}

void th_config_changed(struct th *t)
{
	for (unsigned i = 0; i < t->nworkers; i++)
		net_config_changed(&t->w[i]);
}

int th_teardown(void **state)
{
	struct th *t = *state;
	unsigned in_use;

	for (unsigned i = 0; i < t->nworkers; i++) {
		struct rte_mbuf *m;

		th_flush(t, i);
		th_cap_clear(t, i);
		while (rte_ring_dequeue(t->rings[i], (void **)&m) == 0)
			rte_pktmbuf_free(m);
		arp_table_destroy(&t->w[i], t->w[i].arp);
		t->w[i].arp = NULL;
		nd_table_destroy(&t->w[i], t->w[i].nd);
		t->w[i].nd = NULL;
	}
	in_use = rte_mempool_in_use_count(th_mbuf_pool);
	if (in_use != t->baseline) {
		fprintf(stderr, "mbuf leak: %u in use, baseline %u\n", in_use, t->baseline);
		return -1;
	}
	return 0;
}

unsigned th_flush(struct th *t, unsigned i)
{
	worker_tx_flush(&t->w[i]);
	return t->cap[i].n;
}

void th_cap_clear(struct th *t, unsigned i)
{
	for (unsigned k = 0; k < t->cap[i].n; k++)
		rte_pktmbuf_free(t->cap[i].pkts[k]);
	t->cap[i].n = 0;
}

unsigned th_deliver_steered(struct th *t, unsigned i)
{
	struct rte_mbuf *m;
	unsigned n = 0;

	while (rte_ring_dequeue(t->rings[i], (void **)&m) == 0) {
		net_input(&t->w[i], m, m->port, true);
		n++;
	}
	return n;
}

struct rte_mbuf *th_mbuf(const void *bytes, size_t len, size_t split)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(th_mbuf_pool);
	struct rte_mbuf *tail;
	char *p;

	assert_non_null(m);
	if (split == 0 || split >= len) {
		p = rte_pktmbuf_append(m, (uint16_t)len);
		assert_non_null(p);
		memcpy(p, bytes, len);
		return m;
	}
	p = rte_pktmbuf_append(m, (uint16_t)split);
	assert_non_null(p);
	memcpy(p, bytes, split);
	tail = rte_pktmbuf_alloc(th_mbuf_pool);
	assert_non_null(tail);
	p = rte_pktmbuf_append(tail, (uint16_t)(len - split));
	assert_non_null(p);
	memcpy(p, (const uint8_t *)bytes + split, len - split);
	assert_int_equal(rte_pktmbuf_chain(m, tail), 0);
	return m;
}

size_t th_build_eth(uint8_t *buf, const struct rte_ether_addr *dst,
                    const struct rte_ether_addr *src, uint16_t type)
{
	struct rte_ether_hdr *eh = (struct rte_ether_hdr *)buf;

	eh->dst_addr = *dst;
	eh->src_addr = *src;
	eh->ether_type = rte_cpu_to_be_16(type);
	return sizeof(*eh);
}

size_t th_build_arp(uint8_t *buf, const struct rte_ether_addr *eth_dst, uint16_t op,
                    const struct rte_ether_addr *sha, uint32_t sip,
                    const struct rte_ether_addr *tha, uint32_t tip)
{
	size_t off = th_build_eth(buf, eth_dst, sha, RTE_ETHER_TYPE_ARP);
	struct rte_arp_hdr *ah = (struct rte_arp_hdr *)(buf + off);

	ah->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
	ah->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	ah->arp_hlen = 6;
	ah->arp_plen = 4;
	ah->arp_opcode = rte_cpu_to_be_16(op);
	ah->arp_data.arp_sha = *sha;
	ah->arp_data.arp_sip = sip;
	ah->arp_data.arp_tha = *tha;
	ah->arp_data.arp_tip = tip;
	/* Padded to the Ethernet minimum, as on the wire. */
	memset(buf + off + sizeof(*ah), 0, 60 - off - sizeof(*ah));
	return 60;
}

size_t th_build_ipv4(uint8_t *buf, const struct rte_ether_addr *eth_dst, uint32_t src, uint32_t dst,
                     uint8_t proto, const void *payload, size_t plen)
{
	size_t off = th_build_eth(buf, eth_dst, &th_mac_peer, RTE_ETHER_TYPE_IPV4);
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(buf + off);

	memset(ip, 0, sizeof(*ip));
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*ip) + plen));
	ip->packet_id = rte_cpu_to_be_16(0x1234);
	ip->time_to_live = 64;
	ip->next_proto_id = proto;
	ip->src_addr = src;
	ip->dst_addr = dst;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	if (plen > 0)
		memcpy(ip + 1, payload, plen);
	return off + sizeof(*ip) + plen;
}

size_t th_build_icmp_echo(uint8_t *buf, const struct rte_ether_addr *eth_dst, uint32_t src,
                          uint32_t dst, uint16_t id, uint16_t seq, const void *body, size_t blen)
{
	uint8_t icmp_buf[TH_FRAME_MAX];
	struct rte_icmp_hdr *icmp = (struct rte_icmp_hdr *)icmp_buf;

	memset(icmp, 0, sizeof(*icmp));
	icmp->icmp_type = RTE_IP_ICMP_ECHO_REQUEST;
	icmp->icmp_ident = rte_cpu_to_be_16(id);
	icmp->icmp_seq_nb = rte_cpu_to_be_16(seq);
	if (blen > 0)
		memcpy(icmp + 1, body, blen);
	icmp->icmp_cksum = (uint16_t)~rte_raw_cksum(icmp, sizeof(*icmp) + blen);
	return th_build_ipv4(buf, eth_dst, src, dst, IPPROTO_ICMP, icmp, sizeof(*icmp) + blen);
}

size_t th_build_tcp(uint8_t *buf, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport)
{
	struct rte_tcp_hdr tcp;

	memset(&tcp, 0, sizeof(tcp));
	tcp.src_port = sport;
	tcp.dst_port = dport;
	tcp.data_off = 5 << 4;
	tcp.tcp_flags = RTE_TCP_SYN_FLAG;
	return th_build_ipv4(buf, &th_mac_port0, src, dst, IPPROTO_TCP, &tcp, sizeof(tcp));
}

struct rte_mbuf *th_out_packet(uint32_t dst, uint16_t id, size_t plen)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(th_mbuf_pool);
	struct rte_ipv4_hdr *ip;

	assert_non_null(m);
	ip = (struct rte_ipv4_hdr *)rte_pktmbuf_append(m, (uint16_t)(sizeof(*ip) + plen));
	assert_non_null(ip);
	memset(ip, 0, sizeof(*ip) + plen);
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*ip) + plen));
	ip->packet_id = rte_cpu_to_be_16(id);
	ip->next_proto_id = IPPROTO_UDP;
	ip->dst_addr = dst;
	return m;
}

void th_ipv4_fix_cksum(uint8_t *frame)
{
	struct rte_ipv4_hdr *ip = th_ip_of(frame);

	ip->hdr_checksum = 0;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
}

void th_ctr_save(struct th *t, unsigned i, uint64_t *saved)
{
	memcpy(saved, t->w[i].ctr, sizeof(t->w[i].ctr));
}

void th_ctr_only(struct th *t, unsigned i, const uint64_t *saved, const struct th_ctr_delta *want)
{
	for (int c = 0; c < CTR__COUNT; c++) {
		uint64_t by = 0;

		for (const struct th_ctr_delta *d = want; d->ctr >= 0; d++)
			if (d->ctr == c)
				by = d->by;
		if (t->w[i].ctr[c] - saved[c] != by)
			fail_msg("counter %s changed by %" PRIu64 ", expected %" PRIu64,
			         pg_counter_names[c], t->w[i].ctr[c] - saved[c], by);
	}
}

/* ---- IPv6 ---- */

#define A6(third, last)                                                                            \
	{                                                                                          \
		0x20, 0x01, 0x0d, 0xb8, 0, third, [15] = last                                      \
	}
const uint8_t th_ip6_port0[16] = A6(0x18, 1);
const uint8_t th_ip6_port1[16] = A6(0x19, 1);
const uint8_t th_ip6_peer0[16] = A6(0x18, 2);
const uint8_t th_ip6_peer1[16] = A6(0x19, 2);
const uint8_t th_ip6_gw0[16] = {0xfe, 0x80, [15] = 0xfe};
const uint8_t th_ip6_gw1[16] = A6(0x19, 0xfe);

void th_advance(struct th *t, uint64_t ns)
{
	for (unsigned i = 0; i < t->nworkers; i++) {
		t->w[i].now_ns += ns;
		net_timers(&t->w[i]);
	}
}

void th_ipv6_setup(struct th *t, bool complete_dad)
{
	struct net_config *nc = &t->nc;
	const uint8_t *addr[2] = {th_ip6_port0, th_ip6_port1};

	for (uint16_t p = 0; p < 2; p++) {
		nc->ports[p].has_ip6 = true;
		nc->ports[p].prefix6_len = 64;
		memcpy(nc->ports[p].addr6, addr[p], 16);
		net_port_ipv6_init(&nc->ports[p]);
	}
	/* longest prefix first, as posternd sorts them */
	nc->nroutes6 = 4;
	memset(nc->routes6, 0, 4 * sizeof(nc->routes6[0]));
	memcpy(nc->routes6[0].prefix, th_ip6_port0, 8);
	nc->routes6[0].prefix_len = 64;
	nc->routes6[0].port = 0;
	memcpy(nc->routes6[1].prefix, th_ip6_port1, 8);
	nc->routes6[1].prefix_len = 64;
	nc->routes6[1].port = 1;
	memcpy(nc->routes6[2].prefix, (const uint8_t[])A6(0x99, 0), 6);
	nc->routes6[2].prefix_len = 48;
	nc->routes6[2].port = 1;
	memcpy(nc->routes6[2].gateway, th_ip6_gw1, 16);
	nc->routes6[3].prefix_len = 0;
	nc->routes6[3].port = 0;
	memcpy(nc->routes6[3].gateway, th_ip6_gw0, 16);
	for (unsigned i = 0; i < t->nworkers; i++) {
		t->w[i].nd = nd_table_create(&t->w[i], 256);
		assert_non_null(t->w[i].nd);
	}
	th_config_changed(t);
	if (!complete_dad)
		return;
	/* first probe, then RetransTimer (1 s) later the addresses are preferred */
	th_advance(t, 0);
	th_advance(t, 1 * TH_NS_PER_S + 1);
	for (unsigned i = 0; i < t->nworkers; i++) {
		th_flush(t, i);
		th_cap_clear(t, i);
	}
	assert_int_equal(nd_addr_state(&t->w[0], 0, th_ip6_port0), ND_ADDR_PREFERRED);
	assert_int_equal(nd_addr_state(&t->w[0], 0, nc->ports[0].ll6), ND_ADDR_PREFERRED);
}

const uint8_t *th_ll6(struct th *t, uint16_t p)
{
	return t->nc.ports[p].ll6;
}

size_t th_build_ipv6(uint8_t *buf, const struct rte_ether_addr *eth_dst, const uint8_t src[16],
                     const uint8_t dst[16], uint8_t nh, uint8_t hop, const void *payload,
                     size_t plen)
{
	size_t off = th_build_eth(buf, eth_dst, &th_mac_peer, RTE_ETHER_TYPE_IPV6);
	struct rte_ipv6_hdr *ip = (struct rte_ipv6_hdr *)(buf + off);

	memset(ip, 0, sizeof(*ip));
	ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
	ip->payload_len = rte_cpu_to_be_16((uint16_t)plen);
	ip->proto = nh;
	ip->hop_limits = hop;
	memcpy(ip->src_addr, src, 16);
	memcpy(ip->dst_addr, dst, 16);
	if (plen > 0)
		memcpy(ip + 1, payload, plen);
	return off + sizeof(*ip) + plen;
}

uint16_t th_icmp6_cksum(const uint8_t src[16], const uint8_t dst[16], const void *msg, size_t len)
{
	uint8_t ph[40];
	uint32_t sum;

	memcpy(ph, src, 16);
	memcpy(ph + 16, dst, 16);
	ph[32] = (uint8_t)(len >> 24);
	ph[33] = (uint8_t)(len >> 16);
	ph[34] = (uint8_t)(len >> 8);
	ph[35] = (uint8_t)len;
	ph[36] = ph[37] = ph[38] = 0;
	ph[39] = IPPROTO_ICMPV6;
	sum = (uint32_t)rte_raw_cksum(ph, sizeof(ph)) + rte_raw_cksum(msg, len);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

size_t th_build_icmp6(uint8_t *buf, const struct rte_ether_addr *eth_dst, const uint8_t src[16],
                      const uint8_t dst[16], uint8_t hop, const void *ext, size_t extlen,
                      uint8_t first_nh, const void *msg, size_t mlen)
{
	uint8_t payload[TH_FRAME_MAX];
	uint16_t sum;

	assert_true(extlen + mlen <= sizeof(payload));
	if (extlen > 0) /* ext may be NULL then (memcpy's arguments must not be) */
		memcpy(payload, ext, extlen);
	memcpy(payload + extlen, msg, mlen);
	payload[extlen + 2] = payload[extlen + 3] = 0;
	sum = th_icmp6_cksum(src, dst, payload + extlen, mlen);
	memcpy(payload + extlen + 2, &sum, 2);
	return th_build_ipv6(buf, eth_dst, src, dst, extlen > 0 ? first_nh : IPPROTO_ICMPV6, hop,
	                     payload, extlen + mlen);
}

size_t th_build_echo6(uint8_t *buf, const struct rte_ether_addr *eth_dst, const uint8_t src[16],
                      const uint8_t dst[16], uint16_t id, uint16_t seq, const void *body,
                      size_t blen)
{
	uint8_t msg[TH_FRAME_MAX];

	memset(msg, 0, 8);
	msg[0] = 128;
	msg[4] = (uint8_t)(id >> 8);
	msg[5] = (uint8_t)id;
	msg[6] = (uint8_t)(seq >> 8);
	msg[7] = (uint8_t)seq;
	if (blen > 0)
		memcpy(msg + 8, body, blen);
	return th_build_icmp6(buf, eth_dst, src, dst, 64, NULL, 0, 0, msg, 8 + blen);
}

void th_nd_learn(struct th *t, unsigned i, uint16_t port, const uint8_t ip[16],
                 const struct rte_ether_addr *mac)
{
	const struct rte_ether_addr *ours = port == 0 ? &th_mac_port0 : &th_mac_port1;
	const uint8_t *our_ip = port == 0 ? th_ip6_port0 : th_ip6_port1;
	uint8_t msg[32], f[TH_FRAME_MAX];
	size_t len;

	/* An NS with SLLA creates the entry, STALE (RFC 4861 §7.2.3): usable at once. */
	memset(msg, 0, sizeof(msg));
	msg[0] = 135;
	memcpy(msg + 8, our_ip, 16);
	msg[24] = 1;
	msg[25] = 1;
	memcpy(msg + 26, mac->addr_bytes, 6);
	len = th_build_icmp6(f, ours, ip, our_ip, 255, NULL, 0, 0, msg, 32);
	memcpy(f + 6, mac->addr_bytes, 6);
	net_input(&t->w[i], th_mbuf(f, len, 0), port, false);
	th_flush(t, i);
	th_cap_clear(t, i);
	for (unsigned k = 0; k < t->nworkers; k++)
		if (k != i) {
			th_deliver_steered(t, k);
			th_flush(t, k);
			th_cap_clear(t, k);
		}
}
