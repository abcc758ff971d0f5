/*
 * test_fuzz6.c - the IPv6 side of test_fuzz.c: thousands of random and
 * mutated IPv6 frames (echo requests, Neighbor Discovery messages,
 * extension header chains, TCP and UDP headers, noise; some split over two
 * segments, some with their ICMPv6 checksum repaired after mutation)
 * through net_input on two and four workers with ND, DAD, steering,
 * timers and IPv6 output in between. Passes if nothing crashes, ASan and
 * UBSan stay quiet, and every mbuf comes back to the pool. Seeded:
 * PG_FUZZ_SEED=n PG_FUZZ_ITERS=n replays a failure.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_harness.h"
#include "result.h"

static uint32_t rnd(unsigned *seed)
{
	return ((uint32_t)rand_r(seed) << 16) ^ (uint32_t)rand_r(seed);
}

static const uint8_t *rnd_ip6(struct th *t, unsigned *seed)
{
	static const uint8_t all_nodes[16] = {0xff, 0x02, [15] = 1};
	static const uint8_t sn0[16] = {0xff, 0x02, [11] = 1, 0xff, 0, 0, 1};
	static const uint8_t unspec[16];
	static const uint8_t ll_peer[16] = {0xfe, 0x80, [15] = 0x22};
	static uint8_t random_addr[16];
	const uint8_t *ips[] = {th_ip6_port0, th_ip6_port1, th_ip6_peer0, th_ip6_peer1, th_ip6_gw1,
	                        th_ll6(t, 0), all_nodes,    sn0,          unspec,       ll_peer};

	if (rnd(seed) % 5 == 0) {
		for (unsigned k = 0; k < 16; k++)
			random_addr[k] = (uint8_t)rnd(seed);
		return random_addr;
	}
	return ips[rnd(seed) % RTE_DIM(ips)];
}

static const struct rte_ether_addr *rnd_mac(unsigned *seed)
{
	static const struct rte_ether_addr all = {{0x33, 0x33, 0, 0, 0, 1}};
	static const struct rte_ether_addr sn = {{0x33, 0x33, 0xff, 0, 0, 1}};
	static const struct rte_ether_addr *macs[] = {&th_mac_port0, &th_mac_port0, &th_mac_port1,
	                                              &all,          &sn,           &th_mac_bcast};

	return macs[rnd(seed) % RTE_DIM(macs)];
}

/* Extension headers: a random chain of HbH/DstOpts/Routing/Fragment with random options. */
static size_t rnd_ext(unsigned *seed, uint8_t *ext, uint8_t last, uint8_t *first)
{
	static const uint8_t kinds[] = {0, 60, 43, 44};
	uint8_t chain[3];
	unsigned n = rnd(seed) % 4;
	size_t off = 0;

	for (unsigned i = 0; i < n; i++)
		chain[i] = kinds[rnd(seed) % RTE_DIM(kinds)];
	*first = n > 0 ? chain[0] : last;
	for (unsigned i = 0; i < n; i++) {
		size_t len = chain[i] == 44 ? 8 : 8 * (1 + rnd(seed) % 3);

		for (size_t k = 0; k < len; k++)
			ext[off + k] = (uint8_t)(rnd(seed) % 3 == 0 ? rnd(seed) : 0);
		ext[off] = i + 1 < n ? chain[i + 1] : last;
		ext[off + 1] = chain[i] == 44 ? ext[off + 1] : (uint8_t)(len / 8 - 1);
		off += len;
	}
	return off;
}

static size_t template(struct th *t, unsigned *seed, uint8_t *f)
{
	uint8_t msg[1500], ext[96], first;
	size_t mlen = 8 + rnd(seed) % 200, elen;

	for (size_t k = 0; k < mlen; k++)
		msg[k] = (uint8_t)rnd(seed);
	switch (rnd(seed) % 6) {
	case 0: /* echo request */
		msg[0] = 128;
		msg[1] = 0;
		break;
	case 1: /* NS or NA, with or without an option */
		msg[0] = (uint8_t)(135 + rnd(seed) % 2);
		msg[1] = 0;
		memcpy(msg + 8, rnd_ip6(t, seed), 16);
		mlen = rnd(seed) % 2 ? 24 : 32;
		msg[24] = (uint8_t)(1 + rnd(seed) % 2);
		msg[25] = (uint8_t)(rnd(seed) % 3);
		break;
	case 2: /* an error quoting something */
		msg[0] = (uint8_t)(1 + rnd(seed) % 4);
		break;
	case 3: { /* TCP or UDP behind a chain */
		uint8_t p[128];

		elen = rnd_ext(seed, ext, rnd(seed) % 2 ? 6 : 17, &first);
		memcpy(p, ext, elen);
		for (size_t k = 0; k < 20; k++)
			p[elen + k] = (uint8_t)rnd(seed);
		return th_build_ipv6(f, rnd_mac(seed), rnd_ip6(t, seed), rnd_ip6(t, seed), first,
		                     (uint8_t)rnd(seed), p,
		                     elen + 20 > sizeof(p) ? sizeof(p) : elen + 20);
	}
	case 4:
		for (size_t k = 0; k < mlen + 40; k++)
			f[14 + k] = (uint8_t)rnd(seed);
		th_build_eth(f, rnd_mac(seed), &th_mac_peer, RTE_ETHER_TYPE_IPV6);
		return 14 + mlen;
	default:
		break;
	}
	elen = rnd(seed) % 3 == 0 ? rnd_ext(seed, ext, 58, &first) : 0;
	return th_build_icmp6(f, rnd_mac(seed), rnd_ip6(t, seed), rnd_ip6(t, seed),
	                      rnd(seed) % 2 ? 255 : (uint8_t)rnd(seed), ext, elen, first, msg,
	                      mlen);
}

static void mutate(unsigned *seed, uint8_t *f, size_t *len)
{
	unsigned n = rnd(seed) % 5;

	for (unsigned k = 0; k<n && * len> 0; k++) {
		size_t at = rnd(seed) % *len;

		if (rnd(seed) % 2)
			f[at] ^= (uint8_t)(1u << (rnd(seed) % 8));
		else
			f[at] = (uint8_t)rnd(seed);
	}
	/* repair an ICMPv6 checksum now and then, so mutations reach ND and echo */
	if (*len >= 58 && f[20] == 58 && rnd(seed) % 2) {
		size_t mlen = *len - 54;
		uint16_t sum;

		f[56] = f[57] = 0;
		sum = th_icmp6_cksum(f + 22, f + 38, f + 54, mlen);
		memcpy(f + 56, &sum, 2);
	}
	if (rnd(seed) % 4 == 0)
		*len = rnd(seed) % (*len + 1);
}

static void test_fuzz6(void **state)
{
	struct th *t = *state;
	const char *env_seed = getenv("PG_FUZZ_SEED");
	const char *env_iters = getenv("PG_FUZZ_ITERS");
	unsigned seed = env_seed ? (unsigned)strtoul(env_seed, NULL, 0) : 20260601u;
	long iters = env_iters ? strtol(env_iters, NULL, 0) : 50000;

	print_message("# seed %u, %ld frames\n", seed, iters);
	t->nc.arp_pending_max = 8;
	t->nc.arp_retry_ns = TH_NS_PER_S / 10;
	t->nc.arp_cache_ns = TH_NS_PER_S;
	th_ipv6_setup(t, rnd(&seed) % 2);
	for (long k = 0; k < iters; k++) {
		uint8_t f[TH_FRAME_MAX];
		size_t len = template(t, &seed, f), split = 0;
		unsigned i = rnd(&seed) % t->nworkers;
		uint16_t port = (uint16_t)(rnd(&seed) % 4 < 3 ? 0 : rnd(&seed) % 3);

		mutate(&seed, f, &len);
		if (len == 0)
			len = 1;
		if (len > 1 && rnd(&seed) % 5 == 0)
			split = 1 + rnd(&seed) % (len - 1);
		net_input(&t->w[i], th_mbuf(f, len, split), port, rnd(&seed) % 8 == 0);
		if (rnd(&seed) % 16 == 0) {
			uint8_t pkt[48];

			memset(pkt, 0, sizeof(pkt));
			pkt[0] = 0x60;
			pkt[5] = 8;
			pkt[6] = 17;
			memcpy(pkt + 24, rnd_ip6(t, &seed), 16);
			net_ipv6_output(&t->w[i], th_mbuf(pkt, sizeof(pkt), 0),
			                rnd(&seed) % 2 ? NET_PORT_ROUTE
			                               : (uint16_t)(rnd(&seed) % 2));
		}
		if (rnd(&seed) % 64 == 0) {
			for (unsigned w = 0; w < t->nworkers; w++) {
				t->w[w].now_ns += rnd(&seed) % (TH_NS_PER_S / 2);
				net_timers(&t->w[w]);
				th_deliver_steered(t, w);
				th_flush(t, w);
				th_cap_clear(t, w);
			}
		}
	}
	for (int round = 0; round < 60; round++) {
		for (unsigned w = 0; w < t->nworkers; w++) {
			t->w[w].now_ns += TH_NS_PER_S;
			net_timers(&t->w[w]);
			th_deliver_steered(t, w);
			th_flush(t, w);
			th_cap_clear(t, w);
		}
	}
	for (unsigned w = 0; w < t->nworkers; w++)
		print_message("# worker %u: rx %" PRIu64 " ipv6, %" PRIu64 " NS, %" PRIu64
		              " NA, %" PRIu64 " echo replies, %" PRIu64 " errors sent, %" PRIu64
		              " drops (header chain), %" PRIu64 " steered\n",
		              w, CTR(t, w, ipv6_rx), CTR(t, w, nd_ns_rx), CTR(t, w, nd_na_rx),
		              CTR(t, w, icmp6_echo_reply_tx), CTR(t, w, icmp6_error_tx),
		              CTR(t, w, ipv6_drop_exthdr), CTR(t, w, steer_fwd));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_fuzz6, th_setup2, th_teardown),
	    cmocka_unit_test_setup_teardown(test_fuzz6, th_setup4, th_teardown),
	};
	int rc;

	th_eal_init();
	rc = cmocka_run_group_tests_name("net_fuzz6", tests, NULL, NULL);
	th_eal_fini();
	return rc;
}
