/*
 * test_adopt.c - the seam between the control plane and the dataplane:
 * a postern.conf parsed and built by posternd's code, published into
 * shared memory, adopted by a worker through a second mapping (as the
 * dataplane process does), compiled into its net_config. Also: nothing
 * published, a corrupted snapshot refused while the old config stays,
 * and a device with fewer ports than the configuration.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cmocka.h>
#include <rte_eal.h>

#include "adopt.h"
#include "conf.h"
#include "result.h"
#include "shm.h"
#include "snap_build.h"
#include "worker.h"

static const char base_conf[] = "workers = 1\n"
				"port0_device = net_ring0\n"
				"port0_address = 198.18.0.1/24\n"
				"port1_device = net_ring1\n"
				"port1_address = 198.19.0.1/24\n"
				"port1_mtu = 9000\n"
				"default_gateway = 198.18.0.254\n"
				"static_routes = 198.20.0.0/16 via 198.19.0.2\n"
				"arp_cache_timeout = 42s\n"
				"arp_retry_interval = 250ms\n"
				"arp_max_retries = 5\n"
				"arp_pending_max = 77\n"
				"idle_polls = 99\n"
				"idle_sleep = 300us\n";

struct fixture {
	char name[64];
	struct shm_map control; /* posternd's mapping */
	struct shm_map dp;      /* the dataplane's mapping */
	struct worker w;
	struct adopt_hw hw;
};

static uint32_t ip(const char *s)
{
	struct in_addr a;

	assert_int_equal(inet_pton(AF_INET, s, &a), 1);
	return a.s_addr;
}

static void publish_text(struct fixture *f, const char *text, uint64_t expect_gen)
{
	struct pg_conf conf;
	char err[512];
	void *blob;
	size_t len;
	uint64_t gen;

	assert_int_equal(conf_parse_text("/test", text, strlen(text), &conf, err, sizeof(err)),
			 PG_OK);
	assert_int_equal(snap_build(&conf, &blob, &len, err, sizeof(err)), PG_OK);
	assert_int_equal(shm_publish(&f->control, blob, len, &gen, err, sizeof(err)), PG_OK);
	assert_int_equal(gen, expect_gen);
	free(blob);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	snprintf(f->name, sizeof(f->name), "pg-test-adopt-%d", (int)getpid());
	shm_unlink_name(f->name);
	assert_int_equal(shm_open_control(f->name, 1 << 20, &f->control, err, sizeof(err)), PG_OK);
	assert_int_equal(shm_attach(f->name, &f->dp, err, sizeof(err)), PG_OK);
	worker_init_detached(&f->w, 0, 1, NULL);
	f->w.shm = &f->dp;
	f->w.reader = 1;
	f->w.arp = arp_table_create(&f->w, 64);
	assert_non_null(f->w.arp);
	f->hw.nports = 2;
	for (uint16_t i = 0; i < 2; i++) {
		f->hw.ports[i].dpdk_port = i;
		f->hw.ports[i].mac.addr_bytes[0] = 0x02;
		f->hw.ports[i].mac.addr_bytes[5] = (uint8_t)(i + 1);
		f->hw.ports[i].tx_ip_cksum_offload = i == 1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	arp_table_destroy(&f->w, f->w.arp);
	worker_free(&f->w, f->w.net_owned);
	shm_detach(&f->dp);
	shm_detach(&f->control);
	shm_unlink_name(f->name);
	free(f);
	return 0;
}

static void test_nothing_published(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(adopt_snapshot(&f->w, &f->hw), PG_AGAIN);
	assert_null(f->w.net);
	assert_int_equal(f->w.gen, 0);
}

static void test_adopt_compiles_config(void **state)
{
	struct fixture *f = *state;
	const struct net_config *nc;
	const struct net_route *r;

	publish_text(f, base_conf, 1);
	assert_int_equal(adopt_snapshot(&f->w, &f->hw), PG_OK);
	assert_int_equal(f->w.gen, 1);
	assert_int_equal(atomic_load(&f->dp.region->readers[1].adopted), 1);
	assert_int_equal(atomic_load(&f->dp.region->readers[1].announced), 1);
	nc = f->w.net;
	assert_non_null(nc);
	assert_int_equal(nc->nports, 2);
	assert_int_equal(nc->ports[0].addr, ip("198.18.0.1"));
	assert_int_equal(nc->ports[0].netmask, ip("255.255.255.0"));
	assert_int_equal(nc->ports[0].prefix_len, 24);
	assert_int_equal(nc->ports[0].mtu, 1500);
	assert_int_equal(nc->ports[1].mtu, 9000);
	assert_int_equal(nc->ports[1].mac.addr_bytes[5], 2); /* from the hardware side */
	assert_true(nc->ports[1].tx_ip_cksum_offload);
	assert_int_equal(nc->arp_cache_ns, 42000000000ull);
	assert_int_equal(nc->arp_retry_ns, 250000000ull);
	assert_int_equal(nc->arp_max_retries, 5);
	assert_int_equal(nc->arp_pending_max, 77);
	assert_true(nc->gratuitous_arp);
	assert_int_equal(f->w.idle_polls_max, 99);
	assert_int_equal(f->w.idle_sleep_ns, 300000);

	/* Routes: the two /24s, the /16, then the default; longest first. */
	assert_int_equal(nc->nroutes, 4);
	assert_int_equal(net_route_lookup(nc, ip("198.19.0.77"), &r), PG_OK);
	assert_int_equal(r->port, 1);
	assert_int_equal(r->gateway, 0);
	assert_int_equal(net_route_lookup(nc, ip("198.20.3.4"), &r), PG_OK);
	assert_int_equal(r->port, 1);
	assert_int_equal(r->gateway, ip("198.19.0.2"));
	assert_int_equal(net_route_lookup(nc, ip("203.0.113.9"), &r), PG_OK);
	assert_int_equal(r->port, 0);
	assert_int_equal(r->gateway, ip("198.18.0.254"));
	assert_int_equal(f->w.ctr[CTR_snapshot_adopted], 1);
}

static void test_adopt_new_generation(void **state)
{
	struct fixture *f = *state;
	char text[sizeof(base_conf) + 64];
	const struct net_config *old;

	publish_text(f, base_conf, 1);
	assert_int_equal(adopt_snapshot(&f->w, &f->hw), PG_OK);
	old = f->w.net;
	/* Same generation again: nothing to do, nothing re-validated. */
	assert_int_equal(adopt_snapshot(&f->w, &f->hw), PG_OK);
	assert_ptr_equal(f->w.net, old);
	assert_int_equal(f->w.ctr[CTR_snapshot_adopted], 1);

	snprintf(text, sizeof(text), "%s", base_conf);
	memcpy(strstr(text, "198.18.0.1/24"), "198.18.0.9/24", 13);
	publish_text(f, text, 2);
	assert_int_equal(adopt_snapshot(&f->w, &f->hw), PG_OK);
	assert_int_equal(f->w.gen, 2);
	assert_int_equal(f->w.net->ports[0].addr, ip("198.18.0.9"));
	assert_int_equal(atomic_load(&f->dp.region->readers[1].adopted), 2);
	assert_int_equal(f->w.ctr[CTR_snapshot_adopted], 2);
}

static void test_corrupt_snapshot_refused(void **state)
{
	struct fixture *f = *state;
	struct shm_region *r = f->control.region;
	uint8_t *slot;

	publish_text(f, base_conf, 1);
	assert_int_equal(adopt_snapshot(&f->w, &f->hw), PG_OK);
	publish_text(f, base_conf, 2);
	/* Flip a byte inside the published blob, after the publisher's checks. */
	slot = (uint8_t *)r + r->slots[atomic_load(&r->published_slot)].offset;
	slot[sizeof(struct snap_header) + 40] ^= 0x5a;
	assert_int_equal(adopt_snapshot(&f->w, &f->hw), PG_ERROR);
	assert_int_equal(f->w.ctr[CTR_snapshot_rejected], 1);
	/* Still running the compiled config of generation 1. */
	assert_non_null(f->w.net);
	assert_int_equal(f->w.net->ports[0].addr, ip("198.18.0.1"));
	assert_int_equal(atomic_load(&f->dp.region->readers[1].adopted), 1);
	/* Not re-validated on every loop pass. */
	assert_int_equal(adopt_snapshot(&f->w, &f->hw), PG_OK);
	assert_int_equal(f->w.ctr[CTR_snapshot_rejected], 1);
	/* The next good generation is adopted. */
	publish_text(f, base_conf, 3);
	assert_int_equal(adopt_snapshot(&f->w, &f->hw), PG_OK);
	assert_int_equal(atomic_load(&f->dp.region->readers[1].adopted), 3);
}

static void test_fewer_hardware_ports(void **state)
{
	struct fixture *f = *state;
	const struct net_route *r;

	f->hw.nports = 1;
	publish_text(f, base_conf, 1);
	assert_int_equal(adopt_snapshot(&f->w, &f->hw), PG_OK);
	assert_int_equal(f->w.net->nports, 1);
	/*
	 * Routes out of the missing port are left out (as the kernel removes
	 * the routes of a missing interface); lookups fall through to the rest.
	 */
	for (uint16_t i = 0; i < f->w.net->nroutes; i++)
		assert_int_equal(f->w.net->routes[i].port, 0);
	assert_int_equal(net_route_lookup(f->w.net, ip("198.20.3.4"), &r), PG_OK);
	assert_int_equal(r->port, 0); /* via the default route now */
	assert_int_equal(r->gateway, ip("198.18.0.254"));
}

int main(void)
{
	char *eal[] = {"test_adopt", "--no-huge", "-m", "64", "--no-pci", "--no-shconf",
		       "-l", "0", "--log-level=*:error", NULL};
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_nothing_published, setup, teardown),
		cmocka_unit_test_setup_teardown(test_adopt_compiles_config, setup, teardown),
		cmocka_unit_test_setup_teardown(test_adopt_new_generation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_snapshot_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fewer_hardware_ports, setup, teardown),
	};
	int rc;

	if (rte_eal_init(9, eal) < 0) {
		fprintf(stderr, "EAL init failed\n");
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	rte_eal_cleanup();
	return rc;
}
