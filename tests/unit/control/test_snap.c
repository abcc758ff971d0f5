/*
 * test_snap.c - the snapshot format and its publication: build -> validate
 * round trip, every kind of corruption refused without a crash (each byte
 * flipped, every truncation, sections pointing outside the blob), and the
 * shared-memory slot protocol: publish/acquire, PG_AGAIN while readers hold
 * every spare slot, stale readers of a dead dataplane ignored, re-attach
 * keeping the generation count.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf.h"
#include "settings.h"
#include "result.h"
#include "shm.h"
#include "policy_lookup.h"
#include "report.h"
#include "snap_build.h"

static const char conf_text[] = "workers = 3\n"
                                "port0_device = net_af_packet0,iface=dp0\n"
                                "port0_address = 198.18.0.1/24\n"
                                "port1_device = net_af_packet1,iface=dp1\n"
                                "port1_address = 198.19.0.1/24\n"
                                "port1_mtu = 9000\n"
                                "default_gateway = 198.19.0.2\n"
                                "static_routes = 10.0.0.0/8 via 198.18.0.254\n"
                                "arp_retry_interval = 200ms\n"
                                "gratuitous_arp = no\n";

/* A built blob with a valid checksum, as the publisher would stamp it. */
static void *build_blob(size_t *len)
{
	struct pg_conf *c = malloc(sizeof(*c));
	struct snap_header *h;
	char err[512];
	void *blob;

	assert_non_null(c);
	if (conf_parse_text("/test", conf_text, strlen(conf_text), c, err, sizeof(err)) != PG_OK)
		fail_msg("%s", err);
	assert_int_equal(snap_build(c, &blob, len, err, sizeof(err)), PG_OK);
	free(c);
	h = blob;
	h->generation = 7;
	h->checksum = snap_checksum(blob, *len);
	return blob;
}

static void restamp(void *blob, size_t len)
{
	((struct snap_header *)blob)->checksum = snap_checksum(blob, len);
}

static void test_round_trip(void **state)
{
	size_t len;
	void *blob = build_blob(&len);
	const struct snap_header *h = blob;
	const struct snap_dataplane *dp;
	const struct snap_port *ports;
	const struct snap_route *routes;
	char err[256];
	uint32_t n;

	(void)state;
	assert_int_equal(snap_validate(blob, len, err, sizeof(err)), 0);
	assert_int_equal(h->size, len);
	assert_int_equal(len % 8, 0);
	assert_true(h->built_unix_ns > 0);
	for (uint32_t i = 0; i < h->nsections; i++)
		assert_int_equal(h->sections[i].offset % 8, 0);

	dp = snap_section(h, SNAP_SEC_DATAPLANE, &n);
	assert_non_null(dp);
	assert_int_equal(n, 1);
	assert_int_equal(dp->workers, 3);
	assert_int_equal(dp->nports, 2);
	assert_int_equal(dp->arp_retry_ns, 200000000ull);
	assert_int_equal(dp->arp_cache_ns, 300000000000ull);
	assert_int_equal(dp->flags & SNAP_DP_F_GRATUITOUS_ARP, 0);
	assert_int_equal(dp->default_gateway, inet_addr("198.19.0.2"));

	ports = snap_section(h, SNAP_SEC_PORTS, &n);
	assert_int_equal(n, 2);
	assert_string_equal(snap_string(h, ports[0].device), "net_af_packet0,iface=dp0");
	assert_string_equal(snap_string(h, ports[1].device), "net_af_packet1,iface=dp1");
	assert_int_equal(ports[1].addr, inet_addr("198.19.0.1"));
	assert_int_equal(ports[1].prefix_len, 24);
	assert_int_equal(ports[1].mtu, 9000);
	assert_int_equal(ports[0].mtu, 1500);

	routes = snap_section(h, SNAP_SEC_ROUTES, &n);
	assert_int_equal(n, 4);
	assert_int_equal(routes[0].prefix, inet_addr("198.18.0.0"));
	assert_int_equal(routes[1].prefix, inet_addr("198.19.0.0"));
	assert_int_equal(routes[2].prefix, inet_addr("10.0.0.0"));
	assert_int_equal(routes[2].gateway, inet_addr("198.18.0.254"));
	assert_int_equal(routes[2].port, 0);
	assert_int_equal(routes[3].prefix_len, 0);
	assert_int_equal(routes[3].port, 1);

	assert_null(snap_section(h, 99, &n));
	assert_int_equal(n, 0);
	/* out-of-range strings are "", never a wild pointer */
	assert_string_equal(snap_string(h, (struct snap_str){0, 0}), "");
	assert_string_equal(snap_string(h, (struct snap_str){1u << 30, 3}), "");
	assert_string_equal(snap_string(h, (struct snap_str){1, 1u << 31}), "");
	assert_string_equal(snap_string(h, (struct snap_str){1, 3}), ""); /* no NUL at 4 */
	free(blob);
}

static void test_checksum_ignores_its_field(void **state)
{
	size_t len;
	uint8_t *blob = build_blob(&len);
	uint32_t sum = snap_checksum(blob, len);

	(void)state;
	((struct snap_header *)blob)->checksum = 0x12345678;
	assert_int_equal(snap_checksum(blob, len), sum);
	/* and the blob was not modified by computing it */
	assert_int_equal(((struct snap_header *)blob)->checksum, 0x12345678);
	free(blob);
}

static void test_every_byte_flipped(void **state)
{
	size_t len;
	uint8_t *blob = build_blob(&len);
	uint8_t *copy = malloc(len);
	char err[256];

	(void)state;
	assert_non_null(copy);
	for (size_t i = 0; i < len; i++) {
		memcpy(copy, blob, len);
		copy[i] ^= 0x5a;
		if (snap_validate(copy, len, err, sizeof(err)) == 0)
			fail_msg("flipping byte %zu went unnoticed", i);
	}
	free(copy);
	free(blob);
}

static void test_truncations(void **state)
{
	size_t len;
	uint8_t *blob = build_blob(&len);
	char err[256];

	(void)state;
	for (size_t n = 0; n < len; n++) {
		/* a fresh exact-size copy so ASan catches any read past n */
		uint8_t *copy = malloc(n ? n : 1);

		assert_non_null(copy);
		memcpy(copy, blob, n);
		if (snap_validate(copy, n, err, sizeof(err)) == 0)
			fail_msg("truncated to %zu of %zu bytes and accepted", n, len);
		free(copy);
	}
	assert_int_equal(snap_validate(NULL, len, err, sizeof(err)), PG_ERROR);
	assert_string_equal(err, "no snapshot");
	free(blob);
}

/* Hostile headers with a correct checksum: the structure checks must catch them. */
static const struct corrupt_case {
	const char *name;
	void (*mutate)(struct snap_header *h, size_t len);
	const char *want_prefix;
} corrupt_cases[];

static void m_magic(struct snap_header *h, size_t len)
{
	(void)len;
	h->magic ^= 1;
}
static void m_abi(struct snap_header *h, size_t len)
{
	(void)len;
	h->abi_major = SNAP_ABI_MAJOR + 1;
}
static void m_minor(struct snap_header *h, size_t len)
{
	(void)len;
	h->abi_minor = SNAP_ABI_MINOR + 1;
}
static void m_size_small(struct snap_header *h, size_t len)
{
	(void)len;
	h->size = 8;
}
static void m_size_big(struct snap_header *h, size_t len)
{
	h->size = len + 8;
}
static void m_nsections(struct snap_header *h, size_t len)
{
	(void)len;
	h->nsections = 1u << 30;
}
static void m_off_end(struct snap_header *h, size_t len)
{
	h->sections[2].offset = len + 8;
}
static void m_off_unaligned(struct snap_header *h, size_t len)
{
	(void)len;
	h->sections[1].offset += 4;
}
static void m_off_in_header(struct snap_header *h, size_t len)
{
	(void)len;
	h->sections[3].offset = 0;
}
static void m_off_wrap(struct snap_header *h, size_t len)
{
	(void)len;
	h->sections[3].offset = UINT64_MAX - 7;
}
static void m_size_wrap(struct snap_header *h, size_t len)
{
	(void)len;
	h->sections[3].size = UINT64_MAX - 8;
}
static void m_count(struct snap_header *h, size_t len)
{
	(void)len;
	h->sections[3].count = UINT32_MAX;
}
static void m_dp_count(struct snap_header *h, size_t len)
{
	(void)len;
	h->sections[1].count = 2; /* fits the size, but there is one dataplane */
	h->sections[1].size *= 2;
}
static void m_strings_nul(struct snap_header *h, size_t len)
{
	(void)len;
	((char *)h)[h->sections[0].offset + h->sections[0].size - 1] = 'x';
}
static void m_unknown_kind(struct snap_header *h, size_t len)
{
	(void)len;
	h->sections[3].kind = 77; /* a newer minor: must be skipped, not refused */
}

static const struct corrupt_case corrupt_cases[] = {
    {"magic", m_magic, "bad magic"},
    {"abi major", m_abi, "snapshot ABI 3."},
    {"abi minor is fine", m_minor, NULL},
    {"size below header", m_size_small, "size field 8 smaller"},
    {"size above len", m_size_big, "size field"},
    {"nsections", m_nsections, "1073741824 sections do not fit"},
    {"offset past end", m_off_end, "section 2:"},
    {"offset unaligned", m_off_unaligned, "section 1: offset"},
    {"offset inside header", m_off_in_header, "section 3:"},
    {"offset wraps", m_off_wrap, "section 3:"},
    {"size wraps", m_size_wrap, "section 3:"},
    {"count too big", m_count, "section 3 (kind 4)"},
    {"dataplane count", m_dp_count, "dataplane section count 2"},
    {"strings not terminated", m_strings_nul, "strings section not NUL-terminated"},
    {"unknown kind", m_unknown_kind, NULL},
};

static void test_corrupt_headers(void **state)
{
	size_t len;
	uint8_t *blob = build_blob(&len);
	uint8_t *copy = malloc(len);
	char err[256];

	(void)state;
	assert_non_null(copy);
	for (size_t i = 0; i < sizeof(corrupt_cases) / sizeof(corrupt_cases[0]); i++) {
		const struct corrupt_case *t = &corrupt_cases[i];
		int rc;

		memcpy(copy, blob, len);
		t->mutate((struct snap_header *)copy, len);
		restamp(copy, len);
		err[0] = '\0';
		rc = snap_validate(copy, len, err, sizeof(err));
		if (t->want_prefix == NULL && rc != 0)
			fail_msg("case \"%s\": refused: %s", t->name, err);
		if (t->want_prefix != NULL &&
		    (rc == 0 || strncmp(err, t->want_prefix, strlen(t->want_prefix)) != 0))
			fail_msg("case \"%s\": rc %d, message \"%s\"", t->name, rc, err);
	}
	free(copy);
	free(blob);
}

/* ---- shared memory ---- */

/* ---- the ABI 1.1 name tables: every offset, count and enum checked ---- */

#define FP32                                                                                       \
	"AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:"  \
	"45:67:89"

static const char policy_text[] = "# tls_policy\n"
                                  "example.com secure match=nexthop:dot-nexthop\n"
                                  ".example.com encrypt ciphers=high\n"
                                  "[mx.partner.test]:587 fingerprint match=" FP32 "\n";
static const char transport_text[] = "partner.test smtp:[mx.partner.test]:587, [198.19.0.2]\n"
                                     "* smtp:\n";

/* Section positions in snap_build_all's order. */
enum {
	S_STR,
	S_DP,
	S_PORTS,
	S_ROUTES,
	S_RELAY,
	S_TLS,
	S_TLSX,
	S_TR,
	S_TRX,
	S_NH,
	S_MYN,
	S_RD,
	S_RDX
};

static void *build_policy_blob(size_t *len)
{
	static const char extra[] = "mynetworks = 198.18.0.0/24\n"
	                            "relay_domains = example.com .example.net\n"
	                            "tls_default_level = encrypt\n";
	struct pg_conf *c = malloc(sizeof(*c));
	struct pg_policy pol;
	struct pg_transport tr;
	char text[2048], err[512];
	void *blob;

	assert_non_null(c);
	snprintf(text, sizeof(text), "%s%s", conf_text, extra);
	if (conf_parse_text("/test", text, strlen(text), c, err, sizeof(err)) != PG_OK ||
	    policy_parse_text("/test", policy_text, strlen(policy_text), &pol, err, sizeof(err)) !=
	        PG_OK ||
	    transport_parse_text("/test", transport_text, strlen(transport_text), &tr, err,
	                         sizeof(err)) != PG_OK)
		fail_msg("%s", err);
	assert_int_equal(snap_build_all(c, &pol, &tr, &blob, len, err, sizeof(err)), PG_OK);
	free(c);
	policy_free(&pol);
	transport_free(&tr);
	restamp(blob, *len);
	return blob;
}

static void *sec_at(struct snap_header *h, int i)
{
	return (uint8_t *)h + h->sections[i].offset;
}

static void test_policy_round_trip(void **state)
{
	size_t len;
	void *blob = build_policy_blob(&len);
	const struct snap_header *h = blob;
	const struct snap_tls_policy *p;
	const struct snap_transport *t;
	const struct snap_cidr *mn;
	struct policy_result r;
	char err[256];
	uint32_t n;

	(void)state;
	assert_int_equal(h->abi_minor, SNAP_ABI_MINOR);
	assert_int_equal(snap_validate(blob, len, err, sizeof(err)), 0);
	p = snap_section(h, SNAP_SEC_TLS_POLICY, &n);
	assert_int_equal(n, 3);
	assert_string_equal(snap_string(h, p[0].key.name), "example.com");
	assert_int_equal(p[0].key.line, 2);
	assert_string_equal(snap_string(h, p[0].match), "nexthop:dot-nexthop");
	assert_string_equal(snap_string(h, p[0].text),
	                    "example.com secure match=nexthop:dot-nexthop");
	assert_int_equal(p[1].ciphers, SNAP_TLS_GRADE_HIGH);
	assert_string_equal(snap_string(h, p[2].match), FP32);
	t = snap_section(h, SNAP_SEC_TRANSPORT, &n);
	assert_int_equal(n, 2);
	assert_int_equal(t[0].nexthop_count, 2);
	mn = snap_section(h, SNAP_SEC_MYNETWORKS, &n);
	assert_int_equal(n, 1);
	assert_int_equal(mn[0].prefix, inet_addr("198.18.0.0"));
	assert_int_equal(policy_default_level(h), SNAP_TLS_ENCRYPT);
	assert_int_equal(policy_tls_lookup(h, "partner.test", "[mx.partner.test]:587", &r), PG_OK);
	assert_int_equal(r.level, SNAP_TLS_FINGERPRINT);
	assert_true(relay_domain_allowed(h, "a.example.net"));
	/* an ABI 1.0 reader skips the new kinds: they are unknown to it */
	free(blob);
}

static void p_level(struct snap_header *h)
{
	((struct snap_tls_policy *)sec_at(h, S_TLS))[0].level = SNAP_TLS_LEVEL_MAX + 1;
}
static void p_grade(struct snap_header *h)
{
	((struct snap_tls_policy *)sec_at(h, S_TLS))[1].ciphers = 9;
}
static void p_flags(struct snap_header *h)
{
	((struct snap_tls_policy *)sec_at(h, S_TLS))[1].flags = 0x80;
}
static void p_key_off(struct snap_header *h)
{
	((struct snap_tls_policy *)sec_at(h, S_TLS))[0].key.name.off = 1u << 30;
}
static void p_key_len(struct snap_header *h)
{
	((struct snap_tls_policy *)sec_at(h, S_TLS))[0].key.name.len += 1; /* NUL not after it */
}
static void p_hash(struct snap_header *h)
{
	((struct snap_tls_policy *)sec_at(h, S_TLS))[2].key.hash ^= 1;
}
static void p_kind(struct snap_header *h)
{
	((struct snap_transport *)sec_at(h, S_TR))[0].key.kind = SNAP_NAME_NEXTHOP;
}
static void p_text(struct snap_header *h)
{
	struct snap_tls_policy *p = sec_at(h, S_TLS);

	p[1].text.len = p[1].text.len + 1 + p[2].key.name.len; /* spans a NUL */
}
static void p_match_off(struct snap_header *h)
{
	((struct snap_tls_policy *)sec_at(h, S_TLS))[2].match.off =
	    (uint32_t)h->sections[S_STR].size;
}
static void p_bucket(struct snap_header *h)
{
	uint32_t *b = sec_at(h, S_TLSX);

	for (uint32_t i = 0; i < h->sections[S_TLSX].count; i++)
		if (b[i] != 0)
			b[i] = 4; /* there are 3 entries */
}
static void p_buckets_pow2(struct snap_header *h)
{
	h->sections[S_TLSX].count = 3;
}
static void p_buckets_full(struct snap_header *h)
{
	h->sections[S_RDX].count = 2; /* two entries, no empty bucket left */
	h->sections[S_RDX].size = 8;
}
static void p_bucket_dup(struct snap_header *h)
{
	uint32_t *b = sec_at(h, S_TLSX);

	for (uint32_t i = 0; i < h->sections[S_TLSX].count; i++)
		if (b[i] == 1)
			b[i] = 2; /* entry 0 unreachable, entry 1 twice */
}
static void p_index_gone(struct snap_header *h)
{
	h->sections[S_TRX].kind = 77;
}
static void p_nh_range(struct snap_header *h)
{
	((struct snap_transport *)sec_at(h, S_TR))[0].nexthop_first = 1; /* 1 + 2 > 2 */
}
static void p_nh_port(struct snap_header *h)
{
	((struct snap_nexthop *)sec_at(h, S_NH))[1].port = 0;
}
static void p_nh_host(struct snap_header *h)
{
	((struct snap_nexthop *)sec_at(h, S_NH))[0].dest.off = 1u << 31;
}
static void p_cidr(struct snap_header *h)
{
	((struct snap_cidr *)sec_at(h, S_MYN))[0].prefix = inet_addr("198.18.0.1");
}
static void p_cidr_len(struct snap_header *h)
{
	((struct snap_cidr *)sec_at(h, S_MYN))[0].len = 33;
}
static void p_default(struct snap_header *h)
{
	((struct snap_relay *)sec_at(h, S_RELAY))->tls_default_level = 9;
}
static void p_relay_count(struct snap_header *h)
{
	h->sections[S_RELAY].count = 0;
}
static void p_dup_kind(struct snap_header *h)
{
	h->sections[S_RDX].kind = SNAP_SEC_TLS_POLICY_INDEX;
}

static const struct policy_corrupt {
	const char *name;
	void (*mutate)(struct snap_header *h);
	const char *want_prefix;
} policy_corrupt[] = {
    {"level", p_level, "tls_policy entry 0: level, ciphers, protocols or flags out of range"},
    {"grade", p_grade, "tls_policy entry 1: level"},
    {"flags", p_flags, "tls_policy entry 1: level"},
    {"key offset", p_key_off, "tls_policy of entry 0: string"},
    {"key length", p_key_len, "tls_policy of entry 0: string"},
    {"hash", p_hash, "tls_policy entry 2: hash does not match its key"},
    {"key kind", p_kind, "transport entry 0: key kind 3"},
    {"text spans a NUL", p_text, "tls_policy text of entry 1: string"},
    {"match offset", p_match_off, "tls_policy match of entry 2: string"},
    {"bucket past entries", p_bucket, "tls_policy index: bucket"},
    {"buckets not a power of two", p_buckets_pow2, "tls_policy index: 3 buckets for 3 entries"},
    {"no empty bucket", p_buckets_full, "relay_domains index: 2 buckets for 2 entries"},
    {"entry unreachable", p_bucket_dup, "tls_policy index: entry 0 cannot be found"},
    {"index missing", p_index_gone, "transport: table without its index"},
    {"next-hop range", p_nh_range, "transport entry 0: next hops [1, +2) outside the 2"},
    {"next-hop port", p_nh_port, "next hop 1: port, flags or name missing"},
    {"next-hop string", p_nh_host, "next hop destination of entry 0: string"},
    {"cidr host bits", p_cidr, "mynetworks entry 0: bad prefix"},
    {"cidr length", p_cidr_len, "mynetworks entry 0: bad prefix"},
    {"default level", p_default, "relay section: default TLS level out of range"},
    {"relay count", p_relay_count, "relay section count 0, expected 1"},
    {"duplicate kind", p_dup_kind, "section 12: a second section of kind 7"},
};

static void test_policy_corrupt(void **state)
{
	size_t len;
	uint8_t *blob = build_policy_blob(&len);
	uint8_t *copy = malloc(len);
	char err[256];

	(void)state;
	assert_non_null(copy);
	for (size_t i = 0; i < sizeof(policy_corrupt) / sizeof(policy_corrupt[0]); i++) {
		const struct policy_corrupt *t = &policy_corrupt[i];

		memcpy(copy, blob, len);
		t->mutate((struct snap_header *)copy);
		restamp(copy, len);
		err[0] = '\0';
		if (snap_validate(copy, len, err, sizeof(err)) == 0 ||
		    strncmp(err, t->want_prefix, strlen(t->want_prefix)) != 0)
			fail_msg("case \"%s\": message \"%s\"", t->name, err);
	}
	/* and every single byte flipped is refused (checksum) without a crash */
	for (size_t i = 0; i < len; i++) {
		memcpy(copy, blob, len);
		copy[i] ^= 0x40;
		assert_int_equal(snap_validate(copy, len, err, sizeof(err)), PG_ERROR);
	}
	free(copy);
	free(blob);
}

/* ---- ABI 1.4 TCP settings: every field range-checked ---- */

static struct snap_section *tcp_sec(struct snap_header *h)
{
	for (uint32_t i = 0; i < h->nsections; i++)
		if (h->sections[i].kind == SNAP_SEC_TCP)
			return &h->sections[i];
	fail_msg("no TCP section");
	return NULL;
}

static struct snap_tcp *tcp_of(struct snap_header *h)
{
	return (struct snap_tcp *)((uint8_t *)h + tcp_sec(h)->offset);
}

static void t_conns(struct snap_header *h)
{
	tcp_of(h)->max_conns = 0;
}
static void t_conns_big(struct snap_header *h)
{
	tcp_of(h)->max_conns = SNAP_TCP_CONNS_MAX + 1;
}
static void t_backlog(struct snap_header *h)
{
	tcp_of(h)->syn_backlog = 0;
}
static void t_mem(struct snap_header *h)
{
	tcp_of(h)->max_buf_bytes = SNAP_TCP_MEM_MAX + 1;
}
static void t_sndbuf(struct snap_header *h)
{
	tcp_of(h)->sndbuf = SNAP_TCP_BUF_MIN - 1;
}
static void t_rcvbuf(struct snap_header *h)
{
	tcp_of(h)->rcvbuf = 1u << 30; /* beyond what window scale 14 advertises */
}
static void t_bufs_over_mem(struct snap_header *h)
{
	tcp_of(h)->max_buf_bytes = SNAP_TCP_MEM_MIN;
	tcp_of(h)->sndbuf = tcp_of(h)->rcvbuf = SNAP_TCP_MEM_MIN / 2 + 1;
}
static void t_ka_off_intvl(struct snap_header *h)
{
	tcp_of(h)->keepalive_intvl_ns = 1000000000;
}
static void t_ka_off_probes(struct snap_header *h)
{
	tcp_of(h)->keepalive_probes = 9;
}
static void t_ka_idle(struct snap_header *h)
{
	tcp_of(h)->keepalive_idle_ns = SNAP_TCP_KA_IDLE_MAX_NS + 1;
	tcp_of(h)->keepalive_intvl_ns = SNAP_TCP_KA_INTVL_MIN_NS;
	tcp_of(h)->keepalive_probes = 1;
}
static void t_ka_no_probes(struct snap_header *h)
{
	tcp_of(h)->keepalive_idle_ns = SNAP_TCP_KA_IDLE_MIN_NS;
	tcp_of(h)->keepalive_intvl_ns = SNAP_TCP_KA_INTVL_MIN_NS;
}
static void t_retries(struct snap_header *h)
{
	tcp_of(h)->max_retries = SNAP_TCP_RETRIES_MAX + 1;
}
static void t_cc(struct snap_header *h)
{
	tcp_of(h)->cc = 0; /* a zeroed section is never valid */
}
static void t_watermark(struct snap_header *h)
{
	tcp_of(h)->watermark_pct = 49;
}
static void t_flags(struct snap_header *h)
{
	tcp_of(h)->flags = 0x2;
}
static void t_reserved(struct snap_header *h)
{
	tcp_of(h)->reserved = 1;
}
static void t_count(struct snap_header *h)
{
	tcp_sec(h)->count = 0;
}

static const struct tcp_corrupt {
	const char *name;
	void (*mutate)(struct snap_header *h);
	const char *want;
} tcp_corrupt[] = {
    {"max_conns 0", t_conns, "tcp section: max_conns 0 out of range 1..4194304"},
    {"max_conns big", t_conns_big, "tcp section: max_conns 4194305 out of range 1..4194304"},
    {"syn_backlog 0", t_backlog, "tcp section: syn_backlog 0 out of range 1..1048576"},
    {"max_buf_bytes", t_mem,
     "tcp section: max_buf_bytes 274877906945 out of range 1048576..274877906944"},
    {"sndbuf", t_sndbuf, "tcp section: sndbuf 4095 out of range 4096..536870912"},
    {"rcvbuf", t_rcvbuf, "tcp section: rcvbuf 1073741824 out of range 4096..536870912"},
    {"buffers over memory", t_bufs_over_mem,
     "tcp section: sndbuf + rcvbuf exceed max_buf_bytes 1048576"},
    {"keepalive off, interval", t_ka_off_intvl,
     "tcp section: keepalive_intvl_ns 1000000000 out of range 0..0"},
    {"keepalive off, probes", t_ka_off_probes,
     "tcp section: keepalive_probes 9 out of range 0..0"},
    {"keepalive idle", t_ka_idle,
     "tcp section: keepalive_idle_ns 86400000000001 out of range 1000000000..86400000000000"},
    {"keepalive without probes", t_ka_no_probes,
     "tcp section: keepalive_probes 0 out of range 1..100"},
    {"max_retries", t_retries, "tcp section: max_retries 31 out of range 3..30"},
    {"cc", t_cc, "tcp section: cc 0 out of range 1..2"},
    {"watermark", t_watermark, "tcp section: watermark_pct 49 out of range 50..100"},
    {"flags", t_flags, "tcp section: unknown flags 0x2"},
    {"reserved", t_reserved, "tcp section: reserved 1 out of range 0..0"},
    {"count", t_count, "tcp section count 0, expected 1"},
};

/*
 * Each case mutates a copy of blob (then restamped): snap_validate must
 * refuse it with exactly `want` (or a message starting with it, prefix).
 */
static void expect_refused(const uint8_t *blob, size_t len, const struct tcp_corrupt *cases,
                           size_t n, bool prefix)
{
	uint8_t *copy = malloc(len);
	char err[256];

	assert_non_null(copy);
	for (size_t i = 0; i < n; i++) {
		memcpy(copy, blob, len);
		cases[i].mutate((struct snap_header *)copy);
		restamp(copy, len);
		err[0] = '\0';
		if (snap_validate(copy, len, err, sizeof(err)) == 0 ||
		    (prefix ? strncmp(err, cases[i].want, strlen(cases[i].want))
		            : strcmp(err, cases[i].want)) != 0)
			fail_msg("case \"%s\":\n  want: %s\n  got:  %s", cases[i].name,
			         cases[i].want, err);
	}
	free(copy);
}

static void test_tcp_section(void **state)
{
	size_t len;
	uint8_t *blob = build_blob(&len);
	uint8_t *copy = malloc(len);
	const struct snap_tcp *t;
	char err[256];
	uint32_t n;

	(void)state;
	assert_non_null(copy);
	assert_true(SNAP_ABI_MAJOR * 100 + SNAP_ABI_MINOR >=
	            100 + 4); /* 1.4 brought the TCP section */
	t = snap_section((const struct snap_header *)blob, SNAP_SEC_TCP, &n);
	assert_non_null(t);
	assert_int_equal(n, 1);
	assert_int_equal(t->cc, SNAP_TCP_CC_CUBIC); /* postern.conf's defaults */
	assert_int_equal(t->max_conns, 65536);
	assert_int_equal(t->flags, SNAP_TCP_F_SYNCOOKIES);
	assert_int_equal(t->keepalive_idle_ns, 0);
	expect_refused(blob, len, tcp_corrupt, sizeof(tcp_corrupt) / sizeof(tcp_corrupt[0]), false);
	/* keepalive on, every field at its bound: valid */
	memcpy(copy, blob, len);
	tcp_of((struct snap_header *)copy)->keepalive_idle_ns = SNAP_TCP_KA_IDLE_MAX_NS;
	tcp_of((struct snap_header *)copy)->keepalive_intvl_ns = SNAP_TCP_KA_INTVL_MAX_NS;
	tcp_of((struct snap_header *)copy)->keepalive_probes = SNAP_TCP_KA_PROBES_MAX;
	restamp(copy, len);
	assert_int_equal(snap_validate(copy, len, err, sizeof(err)), 0);
	/* a reader of ABI <= 1.3 skips the section as an unknown kind (kind 77 here) */
	memcpy(copy, blob, len);
	tcp_of((struct snap_header *)copy)->cc = 0;
	tcp_sec((struct snap_header *)copy)->kind = 77;
	restamp(copy, len);
	assert_int_equal(snap_validate(copy, len, err, sizeof(err)), 0);
	assert_null(snap_section((const struct snap_header *)copy, SNAP_SEC_TCP, &n));
	free(copy);
	free(blob);
}

/* ---- ABI 1.6 inbound TLS requirements: strict validation ---- */

static struct snap_section *sec_of(struct snap_header *h, uint32_t kind)
{
	for (uint32_t i = 0; i < h->nsections; i++)
		if (h->sections[i].kind == kind)
			return &h->sections[i];
	fail_msg("no section of kind %u", kind);
	return NULL;
}

static void *body_of(struct snap_header *h, uint32_t kind)
{
	return (uint8_t *)h + sec_of(h, kind)->offset;
}

static struct snap_inbound_tls *itls(struct snap_header *h)
{
	return body_of(h, SNAP_SEC_INBOUND_TLS);
}

static void i_level(struct snap_header *h)
{
	itls(h)->level = SNAP_TLS_FINGERPRINT;
}
static void i_protocols_zero(struct snap_header *h)
{
	itls(h)->protocols = 0;
}
static void i_protocols_ssl(struct snap_header *h)
{
	itls(h)->protocols |= SNAP_TLS_P_SSLV3;
}
static void i_mandatory_zero(struct snap_header *h)
{
	itls(h)->mandatory_protocols = 0;
}
static void i_reserved(struct snap_header *h)
{
	itls(h)->reserved2 = 1;
}
static void i_pad(struct snap_header *h)
{
	itls(h)->pad = 1;
}
static void i_none_with_lists(struct snap_header *h)
{
	itls(h)->level = SNAP_TLS_NONE;
}
static void i_count(struct snap_header *h)
{
	sec_of(h, SNAP_SEC_INBOUND_TLS)->count = 2;
	sec_of(h, SNAP_SEC_INBOUND_TLS)->size *= 2; /* over the next section: still inside */
}
static void i_count0(struct snap_header *h)
{
	sec_of(h, SNAP_SEC_INBOUND_TLS)->count = 0;
}
static void i_net_bits(struct snap_header *h)
{
	((struct snap_cidr *)body_of(h, SNAP_SEC_INBOUND_TLS_NETWORKS))[0].prefix =
	    inet_addr("198.19.0.1");
}
static void i_net_len(struct snap_header *h)
{
	((struct snap_cidr *)body_of(h, SNAP_SEC_INBOUND_TLS_NETWORKS))[0].len = 33;
}
static void i_sender_hash(struct snap_header *h)
{
	((struct snap_name_key *)body_of(h, SNAP_SEC_INBOUND_TLS_SENDERS))[1].hash ^= 1;
}
static void i_sender_kind(struct snap_header *h)
{
	((struct snap_name_key *)body_of(h, SNAP_SEC_INBOUND_TLS_SENDERS))[0].kind =
	    SNAP_NAME_NEXTHOP;
}
static void i_sender_str(struct snap_header *h)
{
	((struct snap_name_key *)body_of(h, SNAP_SEC_INBOUND_TLS_SENDERS))[1].name.off = 1u << 30;
}
static void i_index_gone(struct snap_header *h)
{
	sec_of(h, SNAP_SEC_INBOUND_TLS_SENDERS_INDEX)->kind = 77;
}
static void i_settings_gone(struct snap_header *h)
{
	sec_of(h, SNAP_SEC_INBOUND_TLS)->kind = 78;
}
static void i_bucket(struct snap_header *h)
{
	struct snap_section *x = sec_of(h, SNAP_SEC_INBOUND_TLS_SENDERS_INDEX);
	uint32_t *b = (uint32_t *)((uint8_t *)h + x->offset);

	for (uint32_t i = 0; i < x->count; i++)
		if (b[i] != 0)
			b[i] = 3; /* there are 2 entries */
}

static const struct tcp_corrupt inbound_corrupt[] = {
    {"level fingerprint", i_level, "inbound tls section: level 3 is not none, may or encrypt"},
    {"protocols 0", i_protocols_zero,
     "inbound tls section: protocols 0x0, mandatory 0x30 (TLSv1 to TLSv1.3 only, at least one)"},
    {"protocols SSLv3", i_protocols_ssl,
     "inbound tls section: protocols 0x32, mandatory 0x30 (TLSv1 to TLSv1.3 only, at least"
     " one)"},
    {"mandatory 0", i_mandatory_zero,
     "inbound tls section: protocols 0x30, mandatory 0x0 (TLSv1 to TLSv1.3 only, at least one)"},
    {"reserved", i_reserved, "inbound tls section: reserved field not 0"},
    {"pad", i_pad, "inbound tls section: reserved field not 0"},
    {"level none with lists", i_none_with_lists,
     "inbound tls section: level none with required networks or senders"},
    {"count 2", i_count, "inbound tls section count 2, expected 1"},
    {"count 0", i_count0, "inbound tls section count 0, expected 1"},
    {"network host bits", i_net_bits, "inbound tls network entry 0: bad prefix"},
    {"network length", i_net_len, "inbound tls network entry 0: bad prefix"},
    {"sender hash", i_sender_hash, "inbound tls senders entry 1: hash does not match its key"},
    {"sender kind", i_sender_kind, "inbound tls senders entry 0: key kind 3"},
    {"sender string", i_sender_str,
     "inbound tls senders of entry 1: string [1073741824, +17) is not a string of the strings"
     " section"},
    {"index missing", i_index_gone,
     "inbound tls: the settings, networks, senders and senders index sections come together"},
    {"settings missing", i_settings_gone,
     "inbound tls: the settings, networks, senders and senders index sections come together"},
    {"bucket past entries", i_bucket, "inbound tls senders index: bucket"},
};

static void test_inbound_tls_section(void **state)
{
	static const char extra[] = "tls_certificates = mx.pem\n"
	                            "smtpd_tls_required_networks = 198.19.0.0/24\n"
	                            "smtpd_tls_required_senders = partner.test .partners.example\n";
	struct pg_conf *c = malloc(sizeof(*c));
	char text[2048], err[512];
	const struct snap_inbound_tls *t;
	uint8_t *blob, *copy;
	size_t len;
	uint32_t n;

	(void)state;
	assert_non_null(c);
	assert_true(SNAP_ABI_MAJOR * 100 + SNAP_ABI_MINOR >=
	            100 + 6); /* 1.6 brought the inbound TLS sections */
	snprintf(text, sizeof(text), "%s%s", conf_text, extra);
	if (conf_parse_text("/test", text, strlen(text), c, err, sizeof(err)) != PG_OK)
		fail_msg("%s", err);
	assert_int_equal(snap_build(c, (void **)&blob, &len, err, sizeof(err)), PG_OK);
	free(c);
	restamp(blob, len);
	assert_int_equal(snap_validate(blob, len, err, sizeof(err)), 0);
	t = snap_section((const struct snap_header *)blob, SNAP_SEC_INBOUND_TLS, &n);
	assert_non_null(t);
	assert_int_equal(n, 1);
	assert_int_equal(t->level, SNAP_TLS_MAY);
	assert_int_equal(t->protocols, SNAP_TLS_P_TLSV1_2 | SNAP_TLS_P_TLSV1_3);
	assert_int_equal(t->networks_line, 12);
	assert_int_equal(t->senders_line, 13);
	expect_refused(blob, len, inbound_corrupt,
	               sizeof(inbound_corrupt) / sizeof(inbound_corrupt[0]), true);
	copy = malloc(len);
	assert_non_null(copy);
	/* a reader of ABI <= 1.5 skips all four (and 2.1's recipients) as unknown kinds, even
	 * broken */
	memcpy(copy, blob, len);
	itls((struct snap_header *)copy)->level = 9;
	for (uint32_t k = SNAP_SEC_INBOUND_TLS; k <= SNAP_SEC_INBOUND_TLS_SENDERS_INDEX; k++)
		sec_of((struct snap_header *)copy, k)->kind = k + 100;
	for (uint32_t k = SNAP_SEC_INBOUND_TLS_RECIPIENTS;
	     k <= SNAP_SEC_INBOUND_TLS_RECIPIENTS_INDEX; k++)
		sec_of((struct snap_header *)copy, k)->kind = k + 100;
	restamp(copy, len);
	assert_int_equal(snap_validate(copy, len, err, sizeof(err)), 0);
	/* every single byte flipped is refused (checksum) without a crash */
	for (size_t i = 0; i < len; i++) {
		memcpy(copy, blob, len);
		copy[i] ^= 0x40;
		assert_int_equal(snap_validate(copy, len, err, sizeof(err)), PG_ERROR);
	}
	free(copy);
	free(blob);
}

/* ---- ABI 2.1: sender TLS floors and inbound TLS per recipient ---- */

static const char sender_text[] = "provider.example encrypt\n"             /* entry 0 */
                                  ".provider.example verify\n"             /* 1 */
                                  "[198.18.0.0/24] encrypt mode=testing\n" /* 2 */
                                  "[198.18.0.7] secure\n"                  /* 3: /32 */
                                  "[0.0.0.0/0] encrypt mode=testing\n";    /* 4 */

/* conf_text with a listener, STARTTLS and required recipients; and the floors above. */
static uint8_t *build_sender_blob_text(const char *stext, size_t *len)
{
	static const char extra[] = "tls_certificates = mx.pem\n"
	                            "smtpd_tls_required_recipients = strict.test .strict.example\n";
	struct pg_conf *c = malloc(sizeof(*c));
	struct pg_sender_policy snd;
	char text[2048], err[512];
	uint8_t *blob;

	assert_non_null(c);
	snprintf(text, sizeof(text), "%s%s", conf_text, extra);
	if (conf_parse_text("/test", text, strlen(text), c, err, sizeof(err)) != PG_OK)
		fail_msg("%s", err);
	if (sender_policy_parse_text("/test", stext, strlen(stext), &snd, err, sizeof(err)) !=
	    PG_OK)
		fail_msg("%s", err);
	{
		const struct snap_build_input in = {.conf = c, .senders = &snd};

		assert_int_equal(snap_build_from(&in, (void **)&blob, len, err, sizeof(err)),
		                 PG_OK);
	}
	sender_policy_free(&snd);
	free(c);
	restamp(blob, *len);
	return blob;
}

static uint8_t *build_sender_blob(size_t *len)
{
	return build_sender_blob_text(sender_text, len);
}

static struct snap_sender_tls *snd_entries(struct snap_header *h)
{
	return body_of(h, SNAP_SEC_SENDER_TLS);
}
static void snd_s_level_may(struct snap_header *h)
{
	snd_entries(h)[0].level = SNAP_TLS_MAY;
}
static void snd_s_level_fp(struct snap_header *h)
{
	snd_entries(h)[1].level = SNAP_TLS_FINGERPRINT;
}
static void snd_s_flags(struct snap_header *h)
{
	snd_entries(h)[0].flags = SNAP_TLS_F_SNI_HOSTNAME;
}
static void snd_s_reserved(struct snap_header *h)
{
	snd_entries(h)[1].reserved = 1;
}
static void snd_s_pad(struct snap_header *h)
{
	snd_entries(h)[0].pad = 1;
}
static void snd_s_host_bits(struct snap_header *h)
{
	snd_entries(h)[2].prefix = inet_addr("198.18.0.1");
}
static void snd_s_len33(struct snap_header *h)
{
	snd_entries(h)[3].prefix_len = 33;
}
static void snd_s_prefix_not_key(struct snap_header *h)
{
	snd_entries(h)[2].prefix = inet_addr("198.18.1.0"); /* key says 198.18.0.0/24 */
}
static void snd_s_len_not_key(struct snap_header *h)
{
	snd_entries(h)[3].prefix_len = 31; /* 198.18.0.7/31 has host bits; key says /32 */
	snd_entries(h)[3].prefix = inet_addr("198.18.0.6");
}
static void snd_s_domain_prefix(struct snap_header *h)
{
	snd_entries(h)[0].prefix_len = 8;
}
static void snd_s_kind(struct snap_header *h)
{
	snd_entries(h)[0].key.kind = SNAP_NAME_NEXTHOP;
}
static void snd_s_text(struct snap_header *h)
{
	snd_entries(h)[1].text.off = 1u << 30;
}
static void snd_s_index_gone(struct snap_header *h)
{
	sec_of(h, SNAP_SEC_SENDER_TLS_INDEX)->kind = 97;
}
static void snd_s_networks_gone(struct snap_header *h)
{
	sec_of(h, SNAP_SEC_SENDER_TLS_NETWORKS)->kind = 98;
}
static uint32_t *snd_nets(struct snap_header *h)
{
	return body_of(h, SNAP_SEC_SENDER_TLS_NETWORKS);
}
static void snd_s_net_order(struct snap_header *h)
{
	uint32_t t = snd_nets(h)[0]; /* [198.18.0.7/32] first, then /24, then /0 */

	snd_nets(h)[0] = snd_nets(h)[1];
	snd_nets(h)[1] = t;
}
static void snd_s_net_twice(struct snap_header *h)
{
	snd_nets(h)[1] = snd_nets(h)[0];
}
static void snd_s_net_domain(struct snap_header *h)
{
	snd_nets(h)[2] = 0; /* entry 0 is a domain */
}
static void snd_s_net_past(struct snap_header *h)
{
	snd_nets(h)[2] = 5;
}
static void snd_s_net_count(struct snap_header *h)
{
	sec_of(h, SNAP_SEC_SENDER_TLS_NETWORKS)->count = 2;
}
static void snd_r_none(struct snap_header *h)
{
	itls(h)->level = SNAP_TLS_NONE;
}
static void snd_r_kind(struct snap_header *h)
{
	((struct snap_name_key *)body_of(h, SNAP_SEC_INBOUND_TLS_RECIPIENTS))[0].kind =
	    SNAP_NAME_NETWORK;
}
static void snd_r_index_gone(struct snap_header *h)
{
	sec_of(h, SNAP_SEC_INBOUND_TLS_RECIPIENTS_INDEX)->kind = 99;
}

static const struct tcp_corrupt sender_corrupt[] = {
    {"level may", snd_s_level_may,
     "sender tls entry 0: level 1 is not a floor (encrypt, verify, secure)"},
    {"level fingerprint", snd_s_level_fp,
     "sender tls entry 1: level 3 is not a floor (encrypt, verify, secure)"},
    {"flags", snd_s_flags, "sender tls entry 0: flags 0x2 or a reserved field not 0"},
    {"reserved", snd_s_reserved, "sender tls entry 1: flags 0x0 or a reserved field not 0"},
    {"pad", snd_s_pad, "sender tls entry 0: flags 0x0 or a reserved field not 0"},
    {"host bits", snd_s_host_bits, "sender tls entry 2: bad prefix"},
    {"length 33", snd_s_len33, "sender tls entry 3: bad prefix"},
    {"prefix is not the key's", snd_s_prefix_not_key,
     "sender tls entry 2: key is not its prefix [198.18.1.0/24]"},
    {"length is not the key's", snd_s_len_not_key,
     "sender tls entry 3: key is not its prefix [198.18.0.6/31]"},
    {"domain with a prefix", snd_s_domain_prefix, "sender tls entry 0: a prefix on a domain key"},
    {"key kind", snd_s_kind, "sender tls entry 0: key kind 3"},
    {"text", snd_s_text,
     "sender tls text of entry 1: string [1073741824, +24) is not a string of the strings"
     " section"},
    {"index missing", snd_s_index_gone,
     "sender tls: the table, index and network sections come together"},
    {"networks missing", snd_s_networks_gone,
     "sender tls: the table, index and network sections come together"},
    {"networks out of order", snd_s_net_order,
     "sender tls networks: item 1 out of order (longest prefix first, then entry order)"},
    {"network twice", snd_s_net_twice,
     "sender tls networks: item 1 out of order (longest prefix first, then entry order)"},
    {"network list names a domain", snd_s_net_domain,
     "sender tls networks: item 2 is not a network entry"},
    {"network list past the table", snd_s_net_past,
     "sender tls networks: item 2 is not a network entry"},
    {"network count", snd_s_net_count, "sender tls networks: 2 listed, 3 network entries"},
    {"recipients at level none", snd_r_none,
     "inbound tls section: level none with required recipients"},
    {"recipient kind", snd_r_kind, "inbound tls recipients entry 0: key kind 5"},
    {"recipients index missing", snd_r_index_gone,
     "inbound tls recipients: table without its index or index without its table"},
};

static void test_sender_tls_section(void **state)
{
	size_t len;
	uint8_t *blob = build_sender_blob(&len), *copy;
	const struct snap_header *h = (const struct snap_header *)blob;
	const struct snap_sender_tls *e;
	const uint32_t *nets;
	struct sender_tls_result r;
	enum policy_match m;
	char err[256];
	uint32_t n;

	(void)state;
	assert_true(SNAP_ABI_MAJOR * 100 + SNAP_ABI_MINOR >= 201);
	if (snap_validate(blob, len, err, sizeof(err)) != PG_OK)
		fail_msg("%s", err);
	e = snap_section(h, SNAP_SEC_SENDER_TLS, &n);
	assert_int_equal(n, 5);
	assert_string_equal(snap_string(h, e[3].key.name), "[198.18.0.7/32]");
	assert_int_equal(e[3].key.kind, SNAP_NAME_NETWORK);
	assert_int_equal(e[3].prefix_len, 32);
	assert_int_equal(e[2].flags, SNAP_TLS_F_TESTING);
	assert_int_equal(e[1].key.line, 2);
	assert_string_equal(snap_string(h, e[2].text), "[198.18.0.0/24] encrypt mode=testing");
	nets = snap_section(h, SNAP_SEC_SENDER_TLS_NETWORKS, &n);
	assert_int_equal(n, 3);
	assert_int_equal(nets[0], 3); /* /32, /24, /0 */
	assert_int_equal(nets[1], 2);
	assert_int_equal(nets[2], 4);
	/* the lookups on the built blob */
	assert_int_equal(sender_tls_lookup(h, "Provider.Example", 0, false, &r), PG_OK);
	assert_ptr_equal(r.entry, &e[0]);
	assert_int_equal(r.match, POLICY_MATCH_EXACT);
	assert_int_equal(sender_tls_lookup(h, "mail.eu.provider.example", 0, false, &r), PG_OK);
	assert_ptr_equal(r.entry, &e[1]);
	assert_int_equal(r.match, POLICY_MATCH_PARENT);
	assert_int_equal(sender_tls_lookup(h, "customer.test", 0, false, &r), PG_OK);
	assert_null(r.entry);
	/* the client network, longest first: /32 beats /24 beats /0 */
	sender_tls_lookup(h, "customer.test", inet_addr("198.18.0.7"), true, &r);
	assert_ptr_equal(r.entry, &e[3]);
	assert_int_equal(r.match, POLICY_MATCH_NETWORK);
	sender_tls_lookup(h, "customer.test", inet_addr("198.18.0.8"), true, &r);
	assert_ptr_equal(r.entry, &e[2]);
	sender_tls_lookup(h, NULL, inet_addr("203.0.113.9"), true, &r);
	assert_ptr_equal(r.entry, &e[4]);
	/* both match: enforcing beats testing, then the stricter; a tie keeps the domain */
	sender_tls_lookup(h, "provider.example", inet_addr("198.18.0.8"), true, &r);
	assert_ptr_equal(r.entry, &e[0]); /* encrypt over encrypt/testing */
	assert_ptr_equal(r.network_entry, &e[2]);
	assert_ptr_equal(r.domain_entry, &e[0]);
	sender_tls_lookup(h, "provider.example", inet_addr("198.18.0.7"), true, &r);
	assert_ptr_equal(r.entry, &e[3]); /* secure over encrypt */
	sender_tls_lookup(h, "x.provider.example", inet_addr("198.18.0.7"), true, &r);
	assert_ptr_equal(r.entry, &e[3]); /* secure over verify */
	/* no client known: no network lookup (not even /0) */
	sender_tls_lookup(h, "customer.test", 0, false, &r);
	assert_null(r.entry);
	/* an address literal or a network key is no sender domain */
	sender_tls_lookup(h, "[198.18.0.7/32]", 0, false, &r);
	assert_null(r.entry);
	sender_tls_lookup(h, "[198.18.0.7]", 0, false, &r);
	assert_null(r.entry);
	/* required recipients */
	assert_non_null(policy_inbound_recipient(h, "STRICT.test", &m));
	assert_int_equal(m, POLICY_MATCH_EXACT);
	assert_non_null(policy_inbound_recipient(h, "a.strict.example", &m));
	assert_int_equal(m, POLICY_MATCH_PARENT);
	assert_null(policy_inbound_recipient(h, "strict.example", &m));
	assert_null(policy_inbound_recipient(h, "other.test", &m));
	assert_null(policy_inbound_recipient(h, NULL, &m));
	expect_refused(blob, len, sender_corrupt,
	               sizeof(sender_corrupt) / sizeof(sender_corrupt[0]), false);
	copy = malloc(len);
	assert_non_null(copy);
	/* a reader of ABI 2.0 skips the new sections as unknown kinds, even broken */
	memcpy(copy, blob, len);
	snd_entries((struct snap_header *)copy)[0].level = 9;
	for (uint32_t k = SNAP_SEC_SENDER_TLS; k <= SNAP_SEC_INBOUND_TLS_RECIPIENTS_INDEX; k++)
		sec_of((struct snap_header *)copy, k)->kind = k + 100;
	sec_of((struct snap_header *)copy, SNAP_SEC_SENDER_TLS_NETWORKS6)->kind += 100;
	restamp(copy, len);
	assert_int_equal(snap_validate(copy, len, err, sizeof(err)), 0);
	sender_tls_lookup((const struct snap_header *)copy, "provider.example", 0, false, &r);
	assert_null(r.entry); /* no floors without the sections */
	assert_null(policy_inbound_recipient((const struct snap_header *)copy, "strict.test", &m));
	/* every single byte flipped is refused (checksum) without a crash */
	for (size_t i = 0; i < len; i++) {
		memcpy(copy, blob, len);
		copy[i] ^= 0x40;
		assert_int_equal(snap_validate(copy, len, err, sizeof(err)), PG_ERROR);
	}
	free(copy);
	free(blob);
}

/* ---- ABI 2.3: IPv6 client networks among the floors ---- */

static const char sender6_text[] = "[2001:db8:18::/48] encrypt\n"    /* 0 */
                                   "provider.example verify\n"       /* 1 */
                                   "[2001:DB8:18:0::100] secure\n"   /* 2: a /128 */
                                   "[198.18.0.0/24] encrypt\n"       /* 3 */
                                   "[::/0] encrypt, mode=testing\n"  /* 4 */
                                   "[2001:db8:18:7::/64] encrypt\n"; /* 5 */

static struct snap_sender_net6 *snd_nets6(struct snap_header *h)
{
	return body_of(h, SNAP_SEC_SENDER_TLS_NETWORKS6);
}
static void snd6_order(struct snap_header *h)
{
	struct snap_sender_net6 t = snd_nets6(h)[1]; /* /128, /64, /48, /0 */

	snd_nets6(h)[1] = snd_nets6(h)[2];
	snd_nets6(h)[2] = t;
}
static void snd6_host_bits(struct snap_header *h)
{
	snd_nets6(h)[2].prefix[15] = 1; /* 2001:db8:18::1 in a /48 */
}
static void snd6_key(struct snap_header *h)
{
	snd_nets6(h)[2].prefix[5] = 0x19; /* 2001:db8:19::/48 under the key [2001:db8:18::/48] */
}
static void snd6_v4_entry(struct snap_header *h)
{
	snd_nets6(h)[3].entry = 3; /* [198.18.0.0/24] */
}
static void snd6_past(struct snap_header *h)
{
	snd_nets6(h)[3].entry = 6;
}
static void snd6_count(struct snap_header *h)
{
	sec_of(h, SNAP_SEC_SENDER_TLS_NETWORKS6)->count = 3;
}
static void snd6_len(struct snap_header *h)
{
	snd_entries(h)[0].prefix_len = 129;
}
static void snd6_kind(struct snap_header *h)
{
	/* the IPv4 list names an IPv6 entry */
	((uint32_t *)body_of(h, SNAP_SEC_SENDER_TLS_NETWORKS))[0] = 0;
}

static void snd6_alone(struct snap_header *h)
{
	for (uint32_t k = SNAP_SEC_SENDER_TLS; k <= SNAP_SEC_SENDER_TLS_NETWORKS; k++)
		sec_of(h, k)->kind = k + 100;
}

static const struct tcp_corrupt sender6_corrupt[] = {
    {"IPv6 networks out of order", snd6_order,
     "sender tls IPv6 networks: item 2 out of order (longest prefix first, then entry order)"},
    {"IPv6 host bits", snd6_host_bits, "sender tls IPv6 networks: item 2: host bits set"},
    {"IPv6 prefix not its key", snd6_key,
     "sender tls entry 0: key is not its prefix [2001:db8:19::/48]"},
    {"IPv6 list names an IPv4 entry", snd6_v4_entry,
     "sender tls IPv6 networks: item 3 is not an IPv6 network entry"},
    {"IPv6 list past the table", snd6_past,
     "sender tls IPv6 networks: item 3 is not an IPv6 network entry"},
    {"IPv6 count", snd6_count, "sender tls IPv6 networks: 3 listed, 4 IPv6 network entries"},
    {"IPv6 prefix length", snd6_len, "sender tls entry 0: bad IPv6 prefix length"},
    {"IPv4 list names an IPv6 entry", snd6_kind,
     "sender tls networks: item 0 is not a network entry"},
    {"IPv6 list without the table", snd6_alone,
     "sender tls IPv6 networks without the sender tls table"},
};

static void test_sender_tls_ipv6(void **state)
{
	size_t len;
	uint8_t *blob = build_sender_blob_text(sender6_text, &len);
	const struct snap_header *h = (const struct snap_header *)blob;
	const struct snap_sender_tls *e;
	const struct snap_sender_net6 *n6;
	struct sender_tls_result r;
	struct pg_addr a;
	char err[256];
	uint32_t n;

	(void)state;
	if (snap_validate(blob, len, err, sizeof(err)) != PG_OK)
		fail_msg("%s", err);
	e = snap_section(h, SNAP_SEC_SENDER_TLS, &n);
	assert_int_equal(n, 6);
	assert_string_equal(snap_string(h, e[2].key.name), "[2001:db8:18::100/128]");
	assert_int_equal(e[2].key.kind, SNAP_NAME_NETWORK6);
	assert_int_equal(e[2].prefix_len, 128);
	assert_int_equal(e[2].prefix, 0);
	assert_int_equal(e[3].key.kind, SNAP_NAME_NETWORK);
	n6 = snap_section(h, SNAP_SEC_SENDER_TLS_NETWORKS6, &n);
	assert_int_equal(n, 4);
	assert_int_equal(n6[0].entry, 2); /* /128, /64, /48, /0 */
	assert_int_equal(n6[1].entry, 5);
	assert_int_equal(n6[2].entry, 0);
	assert_int_equal(n6[3].entry, 4);
	snap_section(h, SNAP_SEC_SENDER_TLS_NETWORKS, &n);
	assert_int_equal(n, 1); /* only the IPv4 one */
	/* longest IPv6 prefix first */
	assert_int_equal(pg_addr_parse("2001:db8:18::100", &a), 0);
	sender_tls_lookup_addr(h, "customer.test", &a, &r);
	assert_ptr_equal(r.entry, &e[2]);
	assert_int_equal(r.match, POLICY_MATCH_NETWORK);
	assert_int_equal(pg_addr_parse("2001:db8:18:7::9", &a), 0);
	sender_tls_lookup_addr(h, "customer.test", &a, &r);
	assert_ptr_equal(r.entry, &e[5]);
	assert_int_equal(pg_addr_parse("2001:db8:18:8::9", &a), 0);
	sender_tls_lookup_addr(h, "customer.test", &a, &r);
	assert_ptr_equal(r.entry, &e[0]);
	assert_int_equal(pg_addr_parse("2001:db8:99::1", &a), 0);
	sender_tls_lookup_addr(h, NULL, &a, &r);
	assert_ptr_equal(r.entry, &e[4]); /* [::/0] holds every IPv6 client */
	/* the families do not mix: ::/0 is no floor for IPv4, nor 198.18.0.0/24 for IPv6 */
	assert_int_equal(pg_addr_parse("203.0.113.9", &a), 0);
	sender_tls_lookup_addr(h, "customer.test", &a, &r);
	assert_null(r.entry);
	assert_int_equal(pg_addr_parse("198.18.0.9", &a), 0);
	sender_tls_lookup_addr(h, "customer.test", &a, &r);
	assert_ptr_equal(r.entry, &e[3]);
	assert_int_equal(pg_addr_parse("::ffff:198.18.0.9", &a), 0);
	sender_tls_lookup_addr(h, "customer.test", &a, &r);
	assert_ptr_equal(r.entry, &e[4]); /* an IPv6 address: only [::/0] holds it */
	/* the domain and the network: the stricter wins (verify over encrypt) */
	assert_int_equal(pg_addr_parse("2001:db8:18:8::9", &a), 0);
	sender_tls_lookup_addr(h, "provider.example", &a, &r);
	assert_ptr_equal(r.entry, &e[1]);
	assert_ptr_equal(r.network_entry, &e[0]);
	/* unknown client: no network lookup; an IPv6 key is no sender domain */
	sender_tls_lookup_addr(h, "customer.test", NULL, &r);
	assert_null(r.entry);
	sender_tls_lookup_addr(h, "[2001:db8:18::/48]", NULL, &r);
	assert_null(r.entry);
	expect_refused(blob, len, sender6_corrupt,
	               sizeof(sender6_corrupt) / sizeof(sender6_corrupt[0]), false);
	free(blob);
}

/*
 * The operator's view of the floors (report.c): policy list --sender, and
 * policy test --sender ADDRESS [--client IP] with the effective level per
 * next hop and the rule that decided, from the same blob.
 */
static void test_sender_reports(void **state)
{
	size_t len;
	uint8_t *blob = build_sender_blob(&len);
	const struct snap_header *h = (const struct snap_header *)blob;
	struct ctl_buf b = {0};
	struct ctl_sender_query q = {.address = "ops@provider.example", .domain = "provider.example"};
	struct in_addr ip;

	(void)state;
	ctl_sender_list(&b, h, "/test", false);
	assert_non_null(strstr(b.p, "/test/sender_tls_policy: 5 sender floors\n"));
	assert_non_null(strstr(b.p, "[198.18.0.0/24]"));
	assert_non_null(strstr(b.p, "encrypt  testing [198.18.0.0/24] encrypt mode=testing\n"));
	ctl_buf_free(&b);
	memset(&b, 0, sizeof(b));
	ctl_sender_list(&b, h, "/test", true);
	assert_non_null(strstr(b.p, "{\"key\":\"[198.18.0.7/32]\",\"kind\":\"network\""));
	assert_non_null(strstr(b.p, "\"floor\":\"secure\",\"testing\":false}"));
	ctl_buf_free(&b);

	/* a may destination under an encrypt floor: the floor decides */
	assert_int_equal(sender_tls_lookup(h, q.domain, 0, false, &q.r), PG_OK);
	memset(&b, 0, sizeof(b));
	ctl_policy_test(&b, h, "/test", "far.test", NULL, &q, false);
	assert_non_null(strstr(b.p, "sender:     ops@provider.example (domain provider.example)\n"));
	assert_non_null(strstr(b.p, "floor:      encrypt - /test/sender_tls_policy:1: provider.example"
	                            " encrypt (exact match)\n"));
	assert_non_null(strstr(b.p, "effective:  encrypt\ndecided by: sender rule (the"
	                            " destination's may is below the floor encrypt)\n"));
	ctl_buf_free(&b);

	/* a sender without a floor, from a network with a testing one: evaluated only */
	q.address = q.domain = "";
	inet_pton(AF_INET, "198.18.0.9", &ip);
	q.has_client = true;
	q.client = pg_addr_v4(ip.s_addr);
	assert_int_equal(sender_tls_lookup_addr(h, NULL, &q.client, &q.r), PG_OK);
	memset(&b, 0, sizeof(b));
	ctl_policy_test(&b, h, "/test", "far.test", NULL, &q, true);
	assert_non_null(strstr(b.p, "\"client\":\"198.18.0.9\",\"sender_rule\":{\"match\":"
	                            "\"network\""));
	assert_non_null(strstr(b.p, "\"effective\":{\"level\":\"encrypt\",\"testing\":true,"
	                            "\"enforced\":\"may\",\"level_by\":\"sender\","
	                            "\"decided_by\":\"destination\"}"));
	ctl_buf_free(&b);

	/* without --sender: no sender lines at all */
	memset(&b, 0, sizeof(b));
	ctl_policy_test(&b, h, "/test", "far.test", NULL, NULL, false);
	assert_null(strstr(b.p, "floor:"));
	assert_null(strstr(b.p, "decided by:"));
	ctl_buf_free(&b);
	free(blob);
}

/* ---- the delivery section (the retry schedule): built from postern.conf, strictly validated ----
 */

static struct snap_delivery *dlv(struct snap_header *h)
{
	return body_of(h, SNAP_SEC_DELIVERY);
}

static void d_flags(struct snap_header *h)
{
	dlv(h)->flags = 1;
}
static void d_nschedule0(struct snap_header *h)
{
	dlv(h)->nschedule = 0;
}
static void d_nschedule17(struct snap_header *h)
{
	dlv(h)->nschedule = SNAP_DELIVERY_SCHEDULE_MAX + 1;
}
static void d_nschedule_short(struct snap_header *h)
{
	dlv(h)->nschedule = 2; /* entry 2 is now past the end and not 0 */
}
static void d_nschedule_long(struct snap_header *h)
{
	dlv(h)->nschedule = 4; /* entry 3 is now inside and 0 */
}
static void d_entry0(struct snap_header *h)
{
	dlv(h)->schedule_s[1] = 0;
}
static void d_entry_big(struct snap_header *h)
{
	dlv(h)->schedule_s[0] = 86401;
}
static void d_entry_tail(struct snap_header *h)
{
	dlv(h)->schedule_s[SNAP_DELIVERY_SCHEDULE_MAX - 1] = 60;
}
static void d_reserved(struct snap_header *h)
{
	dlv(h)->reserved[3] = 1;
}
static void d_count0(struct snap_header *h)
{
	sec_of(h, SNAP_SEC_DELIVERY)->count = 0;
}
static void d_count2(struct snap_header *h)
{
	sec_of(h, SNAP_SEC_DELIVERY)->count = 2;
	sec_of(h, SNAP_SEC_DELIVERY)->size *= 2; /* into the spare bytes: still inside */
}
static void d_size(struct snap_header *h)
{
	sec_of(h, SNAP_SEC_DELIVERY)->size += 8;
}

static const struct tcp_corrupt delivery_corrupt[] = {
    {"flags", d_flags, "delivery section: flags 1 out of range 0..0"},
    {"nschedule 0", d_nschedule0, "delivery section: nschedule 0 out of range 1..16"},
    {"nschedule 17", d_nschedule17, "delivery section: nschedule 17 out of range 1..16"},
    {"entry past nschedule", d_nschedule_short,
     "delivery section: schedule_s[2] 86400 out of range 0..0 (nschedule 2)"},
    {"entry 0 inside nschedule", d_nschedule_long,
     "delivery section: schedule_s[3] 0 out of range 1..86400 (nschedule 4)"},
    {"entry 0", d_entry0, "delivery section: schedule_s[1] 0 out of range 1..86400 (nschedule 3)"},
    {"entry over a day", d_entry_big,
     "delivery section: schedule_s[0] 86401 out of range 1..86400 (nschedule 3)"},
    {"last entry set", d_entry_tail,
     "delivery section: schedule_s[15] 60 out of range 0..0 (nschedule 3)"},
    {"reserved", d_reserved, "delivery section: reserved[3] not 0"},
    {"count 0", d_count0, "delivery section count 0, expected 1"},
    {"count 2", d_count2, "delivery section count 2, expected 1"},
    {"size", d_size, "delivery section size 96, expected 88"},
};

static void test_delivery_section(void **state)
{
	static const char extra[] = "delivery_retry_schedule = 1m, 30s 1d\n";
	struct pg_conf *c = malloc(sizeof(*c));
	struct snap_delivery def, fallback;
	const struct snap_delivery *d;
	char text[2048], err[512];
	uint8_t *blob, *copy;
	size_t len, spare = 2 * sizeof(struct snap_delivery);
	uint32_t n;

	(void)state;
	assert_non_null(c);
	assert_int_equal(sizeof(struct snap_delivery), 88);

	/* postern.conf's default schedule is snap_delivery_default()'s, byte for byte */
	blob = build_blob(&len);
	d = snap_section((const struct snap_header *)blob, SNAP_SEC_DELIVERY, &n);
	assert_non_null(d);
	assert_int_equal(n, 1);
	snap_delivery_default(&def);
	assert_memory_equal(d, &def, sizeof(def));
	assert_int_equal(def.nschedule, 5);
	assert_int_equal(def.schedule_s[0], 300);
	assert_int_equal(def.schedule_s[4], 4020);
	assert_int_equal(def.schedule_s[5], 0);
	assert_ptr_equal(snap_delivery((const struct snap_header *)blob, &fallback), d);
	free(blob);

	/* the schedule round-trips */
	snprintf(text, sizeof(text), "%s%s", conf_text, extra);
	if (conf_parse_text("/test", text, strlen(text), c, err, sizeof(err)) != PG_OK)
		fail_msg("%s", err);
	assert_int_equal(snap_build(c, (void **)&blob, &len, err, sizeof(err)), PG_OK);
	free(c);
	restamp(blob, len);
	assert_int_equal(snap_validate(blob, len, err, sizeof(err)), PG_OK);
	d = snap_delivery((const struct snap_header *)blob, &fallback);
	assert_ptr_not_equal(d, &fallback);
	assert_int_equal(d->flags, 0);
	assert_int_equal(d->nschedule, 3);
	assert_int_equal(d->schedule_s[0], 60);
	assert_int_equal(d->schedule_s[1], 30);
	assert_int_equal(d->schedule_s[2], 86400);
	for (uint32_t i = 3; i < SNAP_DELIVERY_SCHEDULE_MAX; i++)
		assert_int_equal(d->schedule_s[i], 0);

	/*
	 * The corruptions, on a copy with spare bytes after the last section
	 * (delivery) so that "count 2" fits inside the blob and reaches the
	 * section's own check.
	 */
	assert_int_equal(sec_of((struct snap_header *)blob, SNAP_SEC_DELIVERY)->offset +
	                     sizeof(struct snap_delivery),
	                 len);
	copy = calloc(1, len + spare);
	assert_non_null(copy);
	memcpy(copy, blob, len);
	((struct snap_header *)copy)->size = len + spare;
	restamp(copy, len + spare);
	assert_int_equal(snap_validate(copy, len + spare, err, sizeof(err)), PG_OK);
	expect_refused(copy, len + spare, delivery_corrupt,
	               sizeof(delivery_corrupt) / sizeof(delivery_corrupt[0]), false);

	/* every entry at its bound: valid */
	memcpy(copy, blob, len);
	dlv((struct snap_header *)copy)->nschedule = SNAP_DELIVERY_SCHEDULE_MAX;
	for (uint32_t i = 0; i < SNAP_DELIVERY_SCHEDULE_MAX; i++)
		dlv((struct snap_header *)copy)->schedule_s[i] = SNAP_DELIVERY_RETRY_MAX_S;
	restamp(copy, len);
	assert_int_equal(snap_validate(copy, len, err, sizeof(err)), PG_OK);

	/* a snapshot without the section: the reader gets the default schedule */
	memcpy(copy, blob, len);
	sec_of((struct snap_header *)copy, SNAP_SEC_DELIVERY)->kind = 77;
	restamp(copy, len);
	assert_int_equal(snap_validate(copy, len, err, sizeof(err)), PG_OK);
	memset(&fallback, 0xa5, sizeof(fallback));
	d = snap_delivery((const struct snap_header *)copy, &fallback);
	assert_ptr_equal(d, &fallback);
	assert_memory_equal(d, &def, sizeof(def));

	/* every single byte flipped is refused (checksum) without a crash */
	for (size_t i = 0; i < len; i++) {
		memcpy(copy, blob, len);
		copy[i] ^= 0x40;
		assert_int_equal(snap_validate(copy, len, err, sizeof(err)), PG_ERROR);
	}
	free(copy);
	free(blob);
}

/* ---- ABI 2.0 settings: the declared-once keys (common/settings.h) ---- */

static struct snap_setting *setting_of(struct snap_header *h, enum setting_id id)
{
	struct snap_setting *st = body_of(h, SNAP_SEC_SETTINGS);

	for (uint32_t i = 0; i < sec_of(h, SNAP_SEC_SETTINGS)->count; i++)
		if (st[i].id == (uint32_t)id)
			return &st[i];
	fail_msg("no setting %d", (int)id);
	return NULL;
}

static void s_concurrency0(struct snap_header *h)
{
	setting_of(h, SET_smtp_destination_concurrency_limit)->value = 0;
}
static void s_concurrency_big(struct snap_header *h)
{
	setting_of(h, SET_smtp_destination_concurrency_limit)->value = 1001;
}
static void s_connect_short(struct snap_header *h)
{
	setting_of(h, SET_smtp_connect_timeout)->value = 999 * SETTING_MS;
}
static void s_cache(struct snap_header *h)
{
	setting_of(h, SET_smtp_connection_cache_time_limit)->value = 300001 * SETTING_MS;
}
static void s_lifetime(struct snap_header *h)
{
	setting_of(h, SET_maximal_queue_lifetime)->value = (365 * 86400 + 1) * SETTING_S;
}
static void s_hops0(struct snap_header *h)
{
	setting_of(h, SET_hopcount_limit)->value = 0;
}
static void s_size(struct snap_header *h)
{
	setting_of(h, SET_message_size_limit)->value = (UINT64_C(1) << 36) + 1;
}
static void s_reserved(struct snap_header *h)
{
	setting_of(h, SET_smtp_max_sessions)->reserved = 1;
}
static void s_order(struct snap_header *h)
{
	struct snap_setting *st = body_of(h, SNAP_SEC_SETTINGS), t = st[0];

	st[0] = st[1];
	st[1] = t;
}
static void s_twice(struct snap_header *h)
{
	struct snap_setting *st = body_of(h, SNAP_SEC_SETTINGS);

	st[2].id = st[1].id;
}

static const struct tcp_corrupt settings_corrupt[] = {
    {"concurrency 0", s_concurrency0,
     "settings section: smtp_destination_concurrency_limit 0 out of range 1..1000"},
    {"concurrency big", s_concurrency_big,
     "settings section: smtp_destination_concurrency_limit 1001 out of range 1..1000"},
    {"connect short", s_connect_short,
     "settings section: smtp_connect_timeout 999000000 out of range 1000000000..600000000000"},
    {"cache", s_cache,
     "settings section: smtp_connection_cache_time_limit 300001000000 out of range "
     "0..300000000000"},
    {"lifetime", s_lifetime,
     "settings section: maximal_queue_lifetime 31536001000000000 out of range "
     "0..31536000000000000"},
    {"hops 0", s_hops0, "settings section: hopcount_limit 0 out of range 1..1000"},
    {"size", s_size,
     "settings section: message_size_limit 68719476737 out of range 0..68719476736"},
    {"reserved", s_reserved, "settings section: entry 0 reserved not 0"},
    {"order", s_order, "settings section: id 0 after 1 (not increasing)"},
    {"twice", s_twice, "settings section: id 1 after 1 (not increasing)"},
};

static void test_settings_section(void **state)
{
	static const char extra[] = "smtp_destination_concurrency_limit = 7\n"
	                            "smtp_connect_timeout = 1500ms\n"
	                            "smtp_connection_cache_time_limit = 0\n"
	                            "maximal_queue_lifetime = 2w\n"
	                            "hopcount_limit = 12\n"
	                            "message_size_limit = 0\n";
	struct pg_conf *c = malloc(sizeof(*c));
	char text[2048], err[512];
	uint8_t *blob, *copy;
	size_t len;
	uint32_t n;

	(void)state;
	assert_non_null(c);
	assert_int_equal(sizeof(struct snap_setting), 16);

	/* postern.conf's defaults are the table's */
	blob = build_blob(&len);
	assert_non_null(snap_section((const struct snap_header *)blob, SNAP_SEC_SETTINGS, &n));
	assert_int_equal(n, SET__COUNT);
	for (int id = 0; id < SET__COUNT; id++)
		assert_int_equal(setting_u64((const struct snap_header *)blob, id),
		                 setting_defs[id].default_value);
	assert_int_equal(setting_u64(NULL, SET_smtp_connect_timeout), 30 * SETTING_S);
	free(blob);

	/* values round-trip, in the declared unit */
	snprintf(text, sizeof(text), "%s%s", conf_text, extra);
	if (conf_parse_text("/test", text, strlen(text), c, err, sizeof(err)) != PG_OK)
		fail_msg("%s", err);
	assert_int_equal(snap_build(c, (void **)&blob, &len, err, sizeof(err)), PG_OK);
	free(c);
	restamp(blob, len);
	assert_int_equal(snap_validate(blob, len, err, sizeof(err)), PG_OK);
	{
		const struct snap_header *h = (const struct snap_header *)blob;

		assert_int_equal(setting_u64(h, SET_smtp_destination_concurrency_limit), 7);
		assert_int_equal(setting_u64(h, SET_smtp_connect_timeout), 1500 * SETTING_MS);
		assert_int_equal(setting_u64(h, SET_smtp_connection_cache_time_limit), 0);
		assert_int_equal(setting_u64(h, SET_maximal_queue_lifetime),
		                 14 * 86400 * SETTING_S);
		assert_int_equal(setting_u64(h, SET_hopcount_limit), 12);
		assert_int_equal(setting_u64(h, SET_message_size_limit), 0);
		assert_int_equal(setting_u64(h, SET_smtp_max_sessions),
		                 1000); /* not set: default */
	}

	copy = malloc(len);
	assert_non_null(copy);
	memcpy(copy, blob, len);
	expect_refused(copy, len, settings_corrupt,
	               sizeof(settings_corrupt) / sizeof(settings_corrupt[0]), false);

	/* every known key at its bounds: valid */
	for (int id = 0; id < SET__COUNT; id++) {
		for (int end = 0; end < 2; end++) {
			memcpy(copy, blob, len);
			setting_of((struct snap_header *)copy, id)->value =
			    end ? setting_defs[id].max : setting_defs[id].min;
			restamp(copy, len);
			if (snap_validate(copy, len, err, sizeof(err)) != PG_OK)
				fail_msg("%s at %s: %s", setting_defs[id].name, end ? "max" : "min",
				         err);
		}
	}

	/* an id this reader does not know (a newer posternd): skipped, any value */
	memcpy(copy, blob, len);
	((struct snap_setting *)body_of((struct snap_header *)copy,
	                                SNAP_SEC_SETTINGS))[SET__COUNT - 1] =
	    (struct snap_setting){.id = 4000, .value = UINT64_MAX};
	restamp(copy, len);
	assert_int_equal(snap_validate(copy, len, err, sizeof(err)), PG_OK);
	/* ... and the key whose entry it replaced reads as its default */
	assert_int_equal(setting_u64((const struct snap_header *)copy, SET__COUNT - 1),
	                 setting_defs[SET__COUNT - 1].default_value);

	/* a snapshot without the section: every key has its default */
	memcpy(copy, blob, len);
	sec_of((struct snap_header *)copy, SNAP_SEC_SETTINGS)->kind = 77;
	restamp(copy, len);
	assert_int_equal(snap_validate(copy, len, err, sizeof(err)), PG_OK);
	assert_int_equal(setting_u64((const struct snap_header *)copy, SET_hopcount_limit), 50);
	free(copy);
	free(blob);
}

/* ABI 2.2: the DNS section round-trips, is absent without DNS, and bad ones are refused. */
static void test_dns_section(void **state)
{
	static const char extra[] = "dns_resolvers = 198.18.255.53 198.18.255.54\n"
	                            "dns_trust_anchor_file = /run/lab/root.key\n"
	                            "dns_unbound_conf = /run/lab/unbound.conf\n";
	struct pg_conf *c = malloc(sizeof(*c));
	char text[2048], err[512];
	uint8_t *blob, *copy;
	size_t len;
	uint32_t n = 7;
	const struct snap_dns *d;
	struct snap_dns *w;

	(void)state;
	assert_non_null(c);
	blob = build_blob(&len); /* the base configuration: no DNS, a section of count 0 */
	(void)snap_section((const struct snap_header *)blob, SNAP_SEC_DNS, &n);
	assert_int_equal(n, 0);
	free(blob);

	snprintf(text, sizeof(text), "%s%s", conf_text, extra);
	if (conf_parse_text("/test", text, strlen(text), c, err, sizeof(err)) != PG_OK)
		fail_msg("%s", err);
	assert_int_equal(snap_build(c, (void **)&blob, &len, err, sizeof(err)), PG_OK);
	free(c);
	restamp(blob, len);
	assert_int_equal(snap_validate(blob, len, err, sizeof(err)), PG_OK);
	d = snap_section((const struct snap_header *)blob, SNAP_SEC_DNS, &n);
	assert_non_null(d);
	assert_int_equal(n, 1);
	assert_int_equal(d->nresolvers, 2);
	assert_int_equal(d->resolvers[1], htonl(0xc612ff36));
	assert_string_equal(snap_string((const struct snap_header *)blob, d->trust_anchor_file),
	                    "/run/lab/root.key");
	assert_string_equal(snap_string((const struct snap_header *)blob, d->unbound_conf),
	                    "/run/lab/unbound.conf");
	assert_int_equal(d->root_hints_file.len, 0);

	copy = malloc(len);
	assert_non_null(copy);
	/* too many resolvers, flags, a relative path: refused */
	for (int k = 0; k < 3; k++) {
		memcpy(copy, blob, len);
		w = body_of((struct snap_header *)copy, SNAP_SEC_DNS);
		if (k == 0)
			w->nresolvers = SNAP_DNS_RESOLVERS_MAX + 1;
		else if (k == 1)
			w->flags = 1;
		else
			w->trust_anchor_file.off += 1; /* "run/lab/root.key" */
		w->trust_anchor_file.len -= k == 2 ? 1 : 0;
		restamp(copy, len);
		assert_int_not_equal(snap_validate(copy, len, err, sizeof(err)), PG_OK);
		printf("# dns corrupt %d: %s\n", k, err);
	}
	free(copy);
	free(blob);
}

static char shm_name[64];

static int shm_setup(void **state)
{
	(void)state;
	snprintf(shm_name, sizeof(shm_name), "pg-test-snap-%d", (int)getpid());
	shm_unlink_name(shm_name);
	return 0;
}

static int shm_teardown(void **state)
{
	(void)state;
	shm_unlink_name(shm_name);
	return 0;
}

static void test_publish_acquire(void **state)
{
	struct shm_map ctl, dp;
	const struct snap_header *h;
	size_t len;
	void *blob = build_blob(&len);
	char err[512];
	uint64_t gen = 0, got = 0;

	(void)state;
	assert_int_equal(shm_attach(shm_name, &dp, err, sizeof(err)), PG_AGAIN);
	assert_int_equal(shm_open_control(shm_name, 64 << 10, &ctl, err, sizeof(err)), PG_OK);
	assert_int_equal(ctl.region->control_pid, getpid());
	assert_int_equal(shm_attach(shm_name, &dp, err, sizeof(err)), PG_OK);
	assert_null(shm_acquire(&dp, 0, &got)); /* nothing published yet */

	assert_int_equal(shm_publish(&ctl, blob, len, &gen, err, sizeof(err)), PG_OK);
	assert_int_equal(gen, 1);
	assert_int_equal(shm_published_gen(&dp), 1);
	h = shm_acquire(&dp, 0, &got);
	assert_non_null(h);
	assert_int_equal(got, 1);
	assert_int_equal(h->generation, 1);
	assert_int_equal(snap_validate(h, len, err, sizeof(err)), 0);
	/* slots are page aligned */
	assert_int_equal(((uintptr_t)h - (uintptr_t)dp.region) % (size_t)sysconf(_SC_PAGESIZE), 0);
	assert_int_equal(dp.region->readers[0].announced, 1);
	shm_release(&dp, 0);
	assert_int_equal(dp.region->readers[0].announced, 0);

	assert_int_equal(shm_publish(&ctl, blob, len, &gen, err, sizeof(err)), PG_OK);
	assert_int_equal(gen, 2);
	h = shm_acquire(&dp, 0, &got);
	assert_int_equal(got, 2);
	assert_int_equal(h->generation, 2);
	shm_release(&dp, 0);

	/* a blob larger than a slot is an error, not AGAIN */
	{
		size_t big = (64 << 10) + 8;
		struct snap_header *bh = calloc(1, big);

		assert_non_null(bh);
		bh->magic = SNAP_MAGIC;
		bh->abi_major = SNAP_ABI_MAJOR;
		bh->size = big;
		assert_int_equal(shm_publish(&ctl, bh, big, &gen, err, sizeof(err)), PG_ERROR);
		free(bh);
	}

	/* a restarted posternd continues the generation count */
	shm_detach(&ctl);
	assert_int_equal(shm_open_control(shm_name, 64 << 10, &ctl, err, sizeof(err)), PG_OK);
	assert_int_equal(shm_published_gen(&ctl), 2);
	assert_int_equal(shm_publish(&ctl, blob, len, &gen, err, sizeof(err)), PG_OK);
	assert_int_equal(gen, 3);

	/* an incompatible layout is refused with a message, not clobbered */
	{
		struct shm_map other;

		assert_int_equal(shm_open_control(shm_name, 128 << 10, &other, err, sizeof(err)),
		                 PG_ERROR);
		assert_non_null(strstr(err, "incompatible layout"));
	}
	assert_int_equal(shm_open_control("bad/name", 64 << 10, &ctl, err, sizeof(err)), PG_ERROR);

	shm_detach(&dp);
	free(blob);
}

/* Readers 1..3 each hold one generation; with 4 slots the 4th is current. */
static void fill_all_slots(struct shm_map *ctl, struct shm_map *dp, const void *blob, size_t len)
{
	char err[256];
	uint64_t gen, got;

	for (unsigned r = 1; r <= SHM_NSLOTS - 1; r++) {
		assert_int_equal(shm_publish(ctl, blob, len, &gen, err, sizeof(err)), PG_OK);
		assert_non_null(shm_acquire(dp, r, &got));
		assert_int_equal(got, gen);
	}
	assert_int_equal(shm_publish(ctl, blob, len, &gen, err, sizeof(err)), PG_OK);
}

static void test_again_when_slots_held(void **state)
{
	struct shm_map ctl, dp;
	size_t len;
	void *blob = build_blob(&len);
	const struct snap_header *held[SHM_NSLOTS];
	uint64_t held_gen[SHM_NSLOTS], gen, got;
	char err[256];

	(void)state;
	shm_unlink_name(shm_name);
	assert_int_equal(shm_open_control(shm_name, 64 << 10, &ctl, err, sizeof(err)), PG_OK);
	assert_int_equal(shm_attach(shm_name, &dp, err, sizeof(err)), PG_OK);
	for (unsigned r = 1; r <= SHM_NSLOTS - 1; r++) {
		assert_int_equal(shm_publish(&ctl, blob, len, &gen, err, sizeof(err)), PG_OK);
		held[r] = shm_acquire(&dp, r, &held_gen[r]);
		assert_int_equal(held_gen[r], gen);
	}
	assert_int_equal(shm_publish(&ctl, blob, len, &gen, err, sizeof(err)), PG_OK);
	assert_int_equal(gen, SHM_NSLOTS);

	/* every non-current slot is held: AGAIN, and twice (RETIRING remembered) */
	assert_int_equal(shm_publish(&ctl, blob, len, &got, err, sizeof(err)), PG_AGAIN);
	assert_int_equal(shm_publish(&ctl, blob, len, &got, err, sizeof(err)), PG_AGAIN);
	assert_int_equal(shm_published_gen(&ctl), SHM_NSLOTS);
	for (unsigned r = 1; r <= SHM_NSLOTS - 1; r++) {
		assert_int_equal(held[r]->generation, held_gen[r]);
		assert_int_equal(snap_validate(held[r], len, err, sizeof(err)), 0);
	}

	/* reader 2 lets go: exactly its slot is reused, the others stay intact */
	shm_release(&dp, 2);
	assert_int_equal(shm_publish(&ctl, blob, len, &gen, err, sizeof(err)), PG_OK);
	assert_int_equal(gen, SHM_NSLOTS + 1);
	assert_int_equal(held[2]->generation, gen);
	assert_int_equal(held[1]->generation, held_gen[1]);
	assert_int_equal(held[3]->generation, held_gen[3]);
	/* reader 2 takes the new one; the slot of generation 4 is free now */
	held[2] = shm_acquire(&dp, 2, &held_gen[2]);
	assert_int_equal(held_gen[2], SHM_NSLOTS + 1);
	assert_int_equal(shm_publish(&ctl, blob, len, &gen, err, sizeof(err)), PG_OK);
	assert_int_equal(gen, SHM_NSLOTS + 2);
	assert_int_equal(shm_publish(&ctl, blob, len, &got, err, sizeof(err)), PG_AGAIN);
	for (unsigned r = 1; r <= SHM_NSLOTS - 1; r++)
		assert_int_equal(held[r]->generation, held_gen[r]);

	/* an inactive record does not count */
	atomic_store(&dp.region->readers[1].active, 0);
	assert_int_equal(shm_publish(&ctl, blob, len, &gen, err, sizeof(err)), PG_OK);
	assert_int_equal(held[1]->generation, gen);

	shm_detach(&ctl);
	shm_detach(&dp);
	free(blob);
}

static void test_stale_readers_of_dead_dataplane(void **state)
{
	struct shm_map ctl, dp;
	size_t len;
	void *blob = build_blob(&len);
	uint64_t gen;
	char err[256];
	pid_t child;
	int status;

	(void)state;
	shm_unlink_name(shm_name);
	assert_int_equal(shm_open_control(shm_name, 64 << 10, &ctl, err, sizeof(err)), PG_OK);
	assert_int_equal(shm_attach(shm_name, &dp, err, sizeof(err)), PG_OK);
	fill_all_slots(&ctl, &dp, blob, len);

	/* a live dataplane's readers block publication */
	atomic_store(&dp.region->dp.pid, (int32_t)getpid());
	assert_int_equal(shm_publish(&ctl, blob, len, &gen, err, sizeof(err)), PG_AGAIN);

	/* the same records left behind by a dataplane that died do not */
	child = fork();
	assert_true(child >= 0);
	if (child == 0)
		_exit(0);
	assert_int_equal(waitpid(child, &status, 0), child);
	atomic_store(&dp.region->dp.pid, (int32_t)child);
	assert_int_equal(shm_publish(&ctl, blob, len, &gen, err, sizeof(err)), PG_OK);
	assert_int_equal(gen, SHM_NSLOTS + 1);

	shm_detach(&ctl);
	shm_detach(&dp);
	free(blob);
}

static void test_reader_survives_out_of_sync_fields(void **state)
{
	struct shm_map ctl, dp;
	const struct snap_header *h;
	size_t len;
	void *blob = build_blob(&len);
	uint64_t gen, got;
	uint32_t slot;
	char err[256];

	(void)state;
	shm_unlink_name(shm_name);
	assert_int_equal(shm_open_control(shm_name, 64 << 10, &ctl, err, sizeof(err)), PG_OK);
	assert_int_equal(shm_attach(shm_name, &dp, err, sizeof(err)), PG_OK);
	assert_int_equal(shm_publish(&ctl, blob, len, &gen, err, sizeof(err)), PG_OK);
	assert_int_equal(shm_publish(&ctl, blob, len, &gen, err, sizeof(err)), PG_OK);
	/* a publisher that stopped between storing the slot and the generation */
	slot = atomic_load(&ctl.region->published_slot);
	atomic_store(&ctl.region->published_slot, (slot + 1) % SHM_NSLOTS);
	h = shm_acquire(&dp, 0, &got);
	assert_non_null(h);
	assert_int_equal(got, 2);
	assert_int_equal(h->generation, 2);
	/* garbage in published_slot is survived too */
	atomic_store(&ctl.region->published_slot, 1000);
	h = shm_acquire(&dp, 0, &got);
	assert_non_null(h);
	assert_int_equal(h->generation, 2);
	/* and a restarted posternd repairs the pair */
	shm_detach(&ctl);
	assert_int_equal(shm_open_control(shm_name, 64 << 10, &ctl, err, sizeof(err)), PG_OK);
	assert_int_equal(atomic_load(&ctl.region->published_slot), slot);
	shm_detach(&ctl);
	shm_detach(&dp);
	free(blob);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_checksum_ignores_its_field),
	    cmocka_unit_test(test_every_byte_flipped),
	    cmocka_unit_test(test_truncations),
	    cmocka_unit_test(test_corrupt_headers),
	    cmocka_unit_test(test_policy_round_trip),
	    cmocka_unit_test(test_policy_corrupt),
	    cmocka_unit_test(test_tcp_section),
	    cmocka_unit_test(test_inbound_tls_section),
	    cmocka_unit_test(test_sender_tls_section),
	    cmocka_unit_test(test_sender_tls_ipv6),
	    cmocka_unit_test(test_sender_reports),
	    cmocka_unit_test(test_delivery_section),
	    cmocka_unit_test(test_settings_section),
	    cmocka_unit_test(test_dns_section),
	    cmocka_unit_test(test_publish_acquire),
	    cmocka_unit_test(test_again_when_slots_held),
	    cmocka_unit_test(test_stale_readers_of_dead_dataplane),
	    cmocka_unit_test(test_reader_survives_out_of_sync_fields),
	};

	return cmocka_run_group_tests(tests, shm_setup, shm_teardown);
}
