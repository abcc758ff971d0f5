/*
 * test_adopt.c - the seam between the control plane and the dataplane:
 * a postern.conf parsed and built by posternd's code, published into
 * shared memory, adopted by a worker through a second mapping (as the
 * dataplane process does), compiled into its net_config. Also: nothing
 * published, a corrupted snapshot refused while the old config stays,
 * a device with fewer ports than the configuration, and the tcp_* keys
 * reaching the worker's TCP stack.
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
#include <rte_mbuf.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "adopt.h"
#include "certs.h"
#include "crypto/tls_certs.h"
#include "conf.h"
#include "result.h"
#include "shm.h"
#include "snap_build.h"
#include "timer.h"
#include "worker.h"
#include "net/tcp_isn.h"

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

	adopt_release_certs(&f->w);
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

/* A snapshot and its blob, built from text (not published). */
static void *build_text(const char *text, size_t *len)
{
	struct pg_conf conf;
	char err[512];
	void *blob;

	if (conf_parse_text("/test", text, strlen(text), &conf, err, sizeof(err)) != PG_OK)
		fail_msg("%s", err);
	assert_int_equal(snap_build(&conf, &blob, len, err, sizeof(err)), PG_OK);
	return blob;
}

/*
 * postern.conf -> snapshot -> adoption -> the worker's TCP stack: the
 * defaults of postern.conf are tcp_config_default()'s, every tcp_* key
 * arrives, "tcp_keepalive = no" switches it off again, and a snapshot
 * from before ABI 1.4 (no TCP section) means the defaults.
 */
static void test_adopt_tcp_settings(void **state)
{
	struct fixture *f = *state;
	char text[2048];
	struct tcp_config def, cfg;
	const struct tcp_config *now;
	struct tcp_isn_key key;
	struct rte_mempool *pool;
	size_t len;
	void *blob;

	pool = rte_pktmbuf_pool_create("adopt_tcp", 511, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
				       SOCKET_ID_ANY);
	assert_non_null(pool);
	f->w.pool = pool;
	f->w.timers = worker_alloc(&f->w, sizeof(*f->w.timers));
	assert_non_null(f->w.timers);
	timer_wheel_init(f->w.timers, TIMER_TICK_NS_DEFAULT, 0, &f->w);
	assert_int_equal(tcp_isn_key_init(&key), PG_OK);
	tcp_config_default(&def);
	f->w.tcp = tcp_stack_create(&f->w, &def, &key);
	assert_non_null(f->w.tcp);
	now = tcp_stack_config(f->w.tcp);

	/* No tcp_* key: the stack's defaults, untouched. */
	publish_text(f, base_conf, 1);
	assert_int_equal(adopt_snapshot(&f->w, &f->hw), PG_OK);
	assert_int_equal(now->max_conns, def.max_conns);
	assert_int_equal(now->syn_backlog, def.syn_backlog);
	assert_int_equal(now->max_buf_bytes, def.max_buf_bytes);
	assert_int_equal(now->sndbuf, def.sndbuf);
	assert_int_equal(now->rcvbuf, def.rcvbuf);
	assert_int_equal(now->max_retries, def.max_retries);
	assert_int_equal(now->watermark_pct, def.watermark_pct);
	assert_int_equal(now->syncookies, def.syncookies);
	assert_int_equal(now->cc, def.cc);
	assert_int_equal(now->keepalive_idle_ns, def.keepalive_idle_ns);
	assert_int_equal(now->keepalive_intvl_ns, def.keepalive_intvl_ns);
	assert_int_equal(now->keepalive_probes, def.keepalive_probes);

	/* Every key, through a second generation. */
	snprintf(text, sizeof(text),
		 "%stcp_congestion_control = newreno\n"
		 "tcp_keepalive = 10m 30s 5\n"
		 "tcp_max_connections = 1000\n"
		 "tcp_buffer_memory_max = 64M\n"
		 "tcp_send_buffer = 128k\n"
		 "tcp_receive_buffer = 1M\n"
		 "tcp_backpressure_watermark = 80%%\n"
		 "tcp_syn_backlog = 256\n"
		 "tcp_syncookies = no\n"
		 "tcp_max_retries = 8\n",
		 base_conf);
	publish_text(f, text, 2);
	assert_int_equal(adopt_snapshot(&f->w, &f->hw), PG_OK);
	assert_int_equal(f->w.gen, 2);
	assert_int_equal(now->cc, TCP_CC_NEWRENO);
	assert_int_equal(now->keepalive_idle_ns, 600ull * 1000000000ull);
	assert_int_equal(now->keepalive_intvl_ns, 30ull * 1000000000ull);
	assert_int_equal(now->keepalive_probes, 5);
	assert_int_equal(now->max_conns, 1000);
	assert_int_equal(now->max_buf_bytes, 64ull << 20);
	assert_int_equal(now->sndbuf, 128 << 10);
	assert_int_equal(now->rcvbuf, 1 << 20);
	assert_int_equal(now->watermark_pct, 80);
	assert_int_equal(now->syn_backlog, 256);
	assert_false(now->syncookies);
	assert_int_equal(now->max_retries, 8);
	/* what nobody configures stays as it was */
	assert_int_equal(now->msl_ns, def.msl_ns);
	assert_int_equal(now->ephemeral_lo, def.ephemeral_lo);
	assert_true(now->timestamps && now->window_scale && now->sack);

	/* Keepalive off again; the interval and count stay for the next "on". */
	snprintf(text, sizeof(text), "%stcp_keepalive = no\n", base_conf);
	publish_text(f, text, 3);
	assert_int_equal(adopt_snapshot(&f->w, &f->hw), PG_OK);
	assert_int_equal(now->keepalive_idle_ns, 0);
	assert_int_equal(now->cc, TCP_CC_CUBIC);
	assert_int_equal(now->max_conns, def.max_conns);
	assert_true(now->syncookies);

	/* A snapshot of ABI 1.3 has no TCP section: the defaults. */
	blob = build_text(text, &len);
	for (uint32_t i = 0; i < ((struct snap_header *)blob)->nsections; i++)
		if (((struct snap_header *)blob)->sections[i].kind == SNAP_SEC_TCP)
			((struct snap_header *)blob)->sections[i].kind = 77;
	cfg = *now;
	cfg.max_conns = 5;
	cfg.cc = TCP_CC_NEWRENO;
	cfg.keepalive_idle_ns = 1;
	adopt_compile_tcp(blob, &cfg);
	assert_int_equal(cfg.max_conns, def.max_conns);
	assert_int_equal(cfg.cc, TCP_CC_CUBIC);
	assert_int_equal(cfg.keepalive_idle_ns, 0);
	free(blob);

	tcp_stack_destroy(&f->w, f->w.tcp);
	f->w.tcp = NULL;
	worker_free(&f->w, f->w.timers);
	f->w.timers = NULL;
	f->w.pool = NULL;
	rte_mempool_free(pool);
}

/* A self-signed ECDSA P-256 certificate for NAME, key first, into PATH. */
static void write_cert(const char *path, const char *name)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *subj;
	X509_EXTENSION *ext;
	char san[300];
	FILE *f;

	assert_non_null(key);
	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, key);
	subj = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC, (const unsigned char *)name, -1, -1, 0);
	X509_set_issuer_name(x, subj);
	snprintf(san, sizeof(san), "DNS:%s", name);
	ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san);
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	assert_true(X509_sign(x, key, EVP_sha256()) > 0);
	f = fopen(path, "w");
	assert_non_null(f);
	PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	PEM_write_X509(f, x);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(key);
}

static void publish_with_certs(struct fixture *f, const char *dir, const char *extra,
			       uint64_t expect_gen)
{
	char text[sizeof(base_conf) + 512], err[512];
	struct pg_conf conf;
	struct pg_certs certs;
	void *blob;
	size_t len;
	uint64_t gen;

	snprintf(text, sizeof(text), "%stls_certificates = %s/mx.pem\n%s", base_conf, dir, extra);
	if (conf_parse_text(dir, text, strlen(text), &conf, err, sizeof(err)) != PG_OK) {
		fprintf(stderr, "# %s\n", err);
		fail();
	}
	assert_int_equal(certs_load(&conf, &certs, err, sizeof(err)), PG_OK);
	assert_int_equal(snap_build_full(&conf, NULL, NULL, &certs, &blob, &len, err, sizeof(err)),
			 PG_OK);
	assert_int_equal(shm_publish(&f->control, blob, len, &gen, err, sizeof(err)), PG_OK);
	assert_int_equal(gen, expect_gen);
	certs_free(&certs);
	free(blob);
}

/*
 * Workers turn the certificates' DER into OpenSSL objects when they adopt
 * a generation; a generation that only changes something else keeps the
 * objects (no key parsing on every policy change); a rotation replaces them.
 */
static void test_adopt_certificates(void **state)
{
	struct fixture *f = *state;
	char dir[] = "/tmp/pg-adopt-certs.XXXXXX", path[64];
	struct tls_cert_choice choice;
	const struct tls_cert_set *first;
	uint8_t fp[32];

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/mx.pem", dir);
	write_cert(path, "mx.example.net");
	publish_with_certs(f, dir, "", 1);
	assert_int_equal(adopt_snapshot(&f->w, &f->hw), PG_OK);
	assert_non_null(f->w.certs);
	assert_int_equal(f->w.certs->n, 1);
	assert_int_equal(tls_cert_select(f->w.certs, "mx.example.net", TLS_ALLOW_ALL, &choice), PG_OK);
	assert_int_equal(choice.how, TLS_MATCH_EXACT);
	assert_int_equal(X509_check_private_key(choice.cert->leaf, choice.cert->key), 1);
	first = f->w.certs;
	memcpy(fp, first->certs[0].sha256, sizeof(fp));

	/* Something else changes: same objects. */
	publish_with_certs(f, dir, "gratuitous_arp = no\n", 2);
	assert_int_equal(adopt_snapshot(&f->w, &f->hw), PG_OK);
	assert_int_equal(f->w.gen, 2);
	assert_ptr_equal(f->w.certs, first);

	/* Rotation: a new key and certificate under the same name. */
	write_cert(path, "mx.example.net");
	publish_with_certs(f, dir, "", 3);
	assert_int_equal(adopt_snapshot(&f->w, &f->hw), PG_OK);
	assert_int_equal(f->w.certs->n, 1);
	assert_memory_not_equal(f->w.certs->certs[0].sha256, fp, sizeof(fp));
	assert_int_equal(X509_check_private_key(f->w.certs->certs[0].leaf, f->w.certs->certs[0].key),
			 1);
	adopt_release_certs(&f->w);
	unlink(path);
	rmdir(dir);
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
		cmocka_unit_test_setup_teardown(test_adopt_certificates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_adopt_tcp_settings, setup, teardown),
	};
	int rc;

	if (rte_eal_init(9, eal) < 0) {
		fprintf(stderr, "EAL init failed\n");
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	rte_eal_cleanup();
	OPENSSL_cleanup();
	return rc;
}
