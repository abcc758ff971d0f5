/*
 * test_fuzz.c - thousands of random and mutated frames of random lengths
 * (some split over two segments) through net_input on two workers, with
 * steering, timers and TX in between. Passes if nothing crashes, ASan and
 * UBSan stay quiet, and every mbuf comes back to the pool. Seeded, so a
 * failure replays: PG_FUZZ_SEED=n PG_FUZZ_ITERS=n.
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

static const struct rte_ether_addr *rnd_mac(unsigned *seed)
{
	static const struct rte_ether_addr *macs[] = {&th_mac_port0, &th_mac_port1, &th_mac_bcast,
	                                              &th_mac_peer,  &th_mac_peer2, &th_mac_zero};

	return macs[rnd(seed) % RTE_DIM(macs)];
}

static uint32_t rnd_ip(unsigned *seed)
{
	const uint32_t ips[] = {TH_PORT0_IP, TH_PORT1_IP,       TH_PEER0_IP,
	                        TH_PEER1_IP, TH_GW0_IP,         0,
	                        UINT32_MAX,  IP4(224, 0, 0, 1), IP4(198, 18, 0, 255)};

	if (rnd(seed) % 4 == 0)
		return rnd(seed);
	return ips[rnd(seed) % RTE_DIM(ips)];
}

/* A plausible frame to start from, so mutations reach the deep paths. */
static size_t template(unsigned *seed, uint8_t *f)
{
	uint8_t body[1500];
	size_t blen = rnd(seed) % 1400;

	for (size_t k = 0; k < blen; k++)
		body[k] = (uint8_t)rnd(seed);
	switch (rnd(seed) % 5) {
	case 0:
		return th_build_arp(f, rnd_mac(seed), (uint16_t)(1 + rnd(seed) % 3), rnd_mac(seed),
		                    rnd(seed) % 2 ? TH_PEER0_IP : rnd_ip(seed), rnd_mac(seed),
		                    rnd(seed) % 2 ? TH_PORT0_IP : rnd_ip(seed));
	case 1:
		return th_build_icmp_echo(f, &th_mac_port0,
		                          rnd(seed) % 2 ? TH_PEER0_IP : rnd_ip(seed),
		                          rnd(seed) % 2 ? TH_PORT0_IP : rnd_ip(seed),
		                          (uint16_t)rnd(seed), (uint16_t)rnd(seed), body, blen);
	case 2:
		return th_build_tcp(f, rnd_ip(seed), rnd_ip(seed), (uint16_t)rnd(seed),
		                    (uint16_t)rnd(seed));
	case 3:
		return th_build_ipv4(f, rnd_mac(seed), rnd_ip(seed), rnd_ip(seed),
		                     (uint8_t)rnd(seed), body, blen);
	default:
		for (size_t k = 0; k < blen; k++)
			f[k] = (uint8_t)rnd(seed);
		return blen;
	}
}

static void mutate(unsigned *seed, uint8_t *f, size_t *len)
{
	unsigned n = rnd(seed) % 6;

	for (unsigned k = 0; k<n && * len> 0; k++) {
		size_t at = rnd(seed) % *len;

		switch (rnd(seed) % 4) {
		case 0:
			f[at] ^= (uint8_t)(1u << (rnd(seed) % 8));
			break;
		case 1:
			f[at] = (uint8_t)rnd(seed);
			break;
		case 2:
			f[at] = rnd(seed) % 2 ? 0 : 0xff;
			break;
		default:
			/* Fix the IPv4 checksum so validation goes further. */
			if (*len >= 34)
				th_ipv4_fix_cksum(f);
			break;
		}
	}
	switch (rnd(seed) % 4) {
	case 0: /* truncate */
		*len = rnd(seed) % (*len + 1);
		break;
	case 1: /* trailing junk or padding */
	{
		size_t extra = rnd(seed) % 64;

		if (*len + extra > TH_FRAME_MAX)
			extra = TH_FRAME_MAX - *len;
		for (size_t k = 0; k < extra; k++)
			f[*len + k] = (uint8_t)rnd(seed);
		*len += extra;
	} break;
	default:
		break;
	}
}

static void test_fuzz(void **state)
{
	struct th *t = *state;
	const char *env_seed = getenv("PG_FUZZ_SEED");
	const char *env_iters = getenv("PG_FUZZ_ITERS");
	unsigned seed = env_seed ? (unsigned)strtoul(env_seed, NULL, 0) : 20240601u;
	long iters = env_iters ? strtol(env_iters, NULL, 0) : 50000;

	print_message("# seed %u, %ld frames\n", seed, iters);
	/* Small caches and queues so that the bounds are hit too. */
	t->nc.arp_pending_max = 8;
	t->nc.arp_retry_ns = TH_NS_PER_S / 10;
	t->nc.arp_cache_ns = TH_NS_PER_S;
	for (long k = 0; k < iters; k++) {
		uint8_t f[TH_FRAME_MAX];
		size_t len = template(&seed, f), split = 0;
		unsigned i = rnd(&seed) % t->nworkers;
		/* Mostly port 0 (where the templates aim); 2 is not configured. */
		uint16_t port = (uint16_t)(rnd(&seed) % 4 < 2 ? 0 : rnd(&seed) % 3);

		mutate(&seed, f, &len);
		if (len == 0)
			len = 1;
		if (len > 1 && rnd(&seed) % 5 == 0)
			split = 1 + rnd(&seed) % (len - 1);
		net_input(&t->w[i], th_mbuf(f, len, split), port, rnd(&seed) % 8 == 0);

		/* Upper-layer traffic into the same state. */
		if (rnd(&seed) % 16 == 0)
			net_ipv4_output(&t->w[i],
			                th_out_packet(rnd_ip(&seed), (uint16_t)k, rnd(&seed) % 64));
		if (rnd(&seed) % 64 == 0) {
			for (unsigned w = 0; w < t->nworkers; w++) {
				t->w[w].now_ns += rnd(&seed) % (TH_NS_PER_S / 4);
				net_timers(&t->w[w]);
				th_deliver_steered(t, w);
				th_flush(t, w);
				th_cap_clear(t, w);
			}
		}
		if (rnd(&seed) % 5000 == 0)
			for (unsigned w = 0; w < t->nworkers; w++)
				net_announce(&t->w[w]);
	}
	/* Let every parked packet resolve or time out before the leak check. */
	for (int round = 0; round < 20; round++) {
		for (unsigned w = 0; w < t->nworkers; w++) {
			t->w[w].now_ns += TH_NS_PER_S;
			net_timers(&t->w[w]);
			th_deliver_steered(t, w);
			th_flush(t, w);
			th_cap_clear(t, w);
		}
	}
	for (unsigned w = 0; w < t->nworkers; w++)
		print_message("# worker %u: rx %" PRIu64 " ipv4, %" PRIu64
		              " arp replies sent, %" PRIu64 " echo replies, %" PRIu64 " steered\n",
		              w, CTR(t, w, ipv4_rx), CTR(t, w, arp_reply_tx),
		              CTR(t, w, icmp_echo_reply_tx), CTR(t, w, steer_fwd));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_fuzz, th_setup2, th_teardown),
	    cmocka_unit_test_setup_teardown(test_fuzz, th_setup4, th_teardown),
	};
	int rc;

	th_eal_init();
	rc = cmocka_run_group_tests_name("net_fuzz", tests, NULL, NULL);
	th_eal_fini();
	return rc;
}
