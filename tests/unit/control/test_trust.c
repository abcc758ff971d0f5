/*
 * test_trust.c - outbound trust anchors end to end without a dataplane:
 * CA certificates generated here with the OpenSSL API are written to a
 * temporary directory as good and broken PEM bundles; a table of
 * smtp_tls_CAfile settings and one of tafile= entries check the exact
 * "FILE:LINE: ... FILE: message" of each refusal; then config -> snapshot
 * (SNAP_SEC_TLS_TRUST: GLOBAL anchors first, each tafile's under the index
 * of its tls_policy entry, the DER byte for byte, a shared file's DER
 * written once) and a table of corruptions snap_validate must refuse with
 * its exact message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "conf.h"
#include "policy.h"
#include "result.h"
#include "snap_build.h"
#include "trust.h"

#define BASE "port0_device = net_tap0\nport0_address = 198.18.0.1/24\n"

static char tmpdir[] = "/tmp/test_trust.XXXXXX";

/* Three self-signed CAs and their DER, made once for the whole file. */
static struct {
	EVP_PKEY *key;
	X509 *ca[3];
	unsigned char *der[3];
	int len[3];
} g;

static X509 *mkca(const char *cn)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509_NAME *name;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, name);
	X509_set_pubkey(x, g.key);
	X509_gmtime_adj(X509_getm_notBefore(x), -86400);
	X509_gmtime_adj(X509_getm_notAfter(x), 30 * 86400L);
	assert_true(X509_sign(x, g.key, EVP_sha256()) > 0);
	return x;
}

/* A file in tmpdir of parts: 'c' a CA (index), 'k' the private key, 's' text. */
static void write_file(const char *file, const char *layout, ...)
{
	char path[512];
	FILE *f;
	va_list ap;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, file);
	f = fopen(path, "w");
	assert_non_null(f);
	va_start(ap, layout);
	for (const char *l = layout; *l != '\0'; l++) {
		if (*l == 'c')
			assert_int_equal(PEM_write_X509(f, g.ca[va_arg(ap, int)]), 1);
		else if (*l == 'k')
			assert_int_equal(PEM_write_PrivateKey(f, g.key, NULL, NULL, 0, NULL, NULL),
			                 1);
		else
			fputs(va_arg(ap, const char *), f);
	}
	va_end(ap);
	assert_int_equal(fclose(f), 0);
}

/* The PEM of CA i with the 5th character of its base64 replaced by c. */
static void write_broken(const char *file, int i, char c, size_t keep)
{
	char path[512], *pem;
	BIO *b = BIO_new(BIO_s_mem());
	long n;
	FILE *f;

	assert_non_null(b);
	assert_int_equal(PEM_write_bio_X509(b, g.ca[i]), 1);
	n = BIO_get_mem_data(b, &pem);
	if (c != 0)
		pem[strchr(pem, '\n') - pem + 5] = c;
	if (keep != 0 && keep < (size_t)n)
		n = (long)keep;
	snprintf(path, sizeof(path), "%s/%s", tmpdir, file);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(pem, 1, (size_t)n, f), (size_t)n);
	assert_int_equal(fclose(f), 0);
	BIO_free(b);
}

static int setup(void **state)
{
	(void)state;
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	g.key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (g.key == NULL)
		return -1;
	g.ca[0] = mkca("Postern Test Root A");
	g.ca[1] = mkca("Postern Test Root B");
	g.ca[2] = mkca("Partner Pinned CA");
	for (int i = 0; i < 3; i++) {
		g.der[i] = NULL;
		g.len[i] = i2d_X509(g.ca[i], &g.der[i]);
		if (g.len[i] <= 0)
			return -1;
	}
	/* good bundles: text between blocks is skipped, as in system bundles */
	write_file("bundle.pem", "scsc", "# Postern Test Root A\n", 0, "\n# Root B\n", 1);
	write_file("partner.pem", "c", 2);
	/* broken ones */
	write_file("empty.pem", "");
	write_file("text.pem", "s", "this is not PEM\n");
	write_file("key.pem", "kc", 0);
	write_file("crl.pem", "cs", 0, "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n");
	write_file("badcert.pem", "cs", 1,
	           "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
	write_file(
	    "trusted.pem", "s",
	    "-----BEGIN TRUSTED CERTIFICATE-----\nAAAA\n-----END TRUSTED CERTIFICATE-----\n");
	write_broken("corrupt.pem", 0, '!', 0);
	write_broken("truncated.pem", 0, 0, 200);
	return 0;
}

static int teardown(void **state)
{
	char cmd[256];

	(void)state;
	for (int i = 0; i < 3; i++) {
		X509_free(g.ca[i]);
		OPENSSL_free(g.der[i]);
	}
	EVP_PKEY_free(g.key);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_conf(const char *text)
{
	write_file(CONF_FILE_NAME, "s", text);
}

/* ---- smtp_tls_CAfile ---- */

/*
 * In want, "@" stands for the temporary directory; every message names
 * postern.conf and the line of smtp_tls_CAfile (3), then the file.
 */
#define CONF "@/postern.conf:3: smtp_tls_CAfile "

static const struct {
	const char *value;
	const char *want;
} cafile_bad[] = {
    {"missing.pem", CONF "@/missing.pem: cannot open: No such file or directory"},
    {"/nonexistent/ca.pem", CONF "/nonexistent/ca.pem: cannot open: No such file or directory"},
    {"empty.pem", CONF "@/empty.pem: no certificate (no \"-----BEGIN CERTIFICATE-----\" line)"},
    {"text.pem", CONF "@/text.pem: no certificate (no \"-----BEGIN CERTIFICATE-----\" line)"},
    {"key.pem", CONF "@/key.pem: PEM block 1: unexpected \"PRIVATE KEY\" (CA certificates only)"},
    {"crl.pem", CONF "@/crl.pem: PEM block 2: unexpected \"X509 CRL\" (CA certificates only)"},
    {"badcert.pem", CONF "@/badcert.pem: PEM block 2: not a valid X.509 certificate"},
    {"trusted.pem", CONF "@/trusted.pem: PEM block 1: unexpected \"TRUSTED CERTIFICATE\""
                         " (CA certificates only)"},
    {"corrupt.pem", CONF "@/corrupt.pem: PEM block 1 is malformed: bad base64 decode"},
    {"truncated.pem", CONF "@/truncated.pem: PEM block 1 is malformed: bad end line"},
};

/* s with every '@' replaced by the temporary directory. */
static void expand(const char *s, char *out, size_t len)
{
	size_t o = 0;

	for (; *s != '\0' && o + 1 < len; s++) {
		if (*s == '@')
			o += (size_t)snprintf(out + o, len - o, "%s", tmpdir);
		else
			out[o++] = *s;
	}
	out[o < len ? o : len - 1] = '\0';
}

static void test_cafile_bad(void **state)
{
	struct pg_conf *c = malloc(sizeof(*c));
	struct trust_bundle b;
	char text[512], want[1024], err[1024];

	(void)state;
	assert_non_null(c);
	for (size_t i = 0; i < sizeof(cafile_bad) / sizeof(cafile_bad[0]); i++) {
		snprintf(text, sizeof(text), BASE "smtp_tls_CAfile = %s\n", cafile_bad[i].value);
		write_conf(text);
		if (conf_load(tmpdir, c, err, sizeof(err)) != PG_OK)
			fail_msg("case %s: %s", cafile_bad[i].value, err);
		expand(cafile_bad[i].want, want, sizeof(want));
		err[0] = '\0';
		if (trust_load_cafile(c, &b, err, sizeof(err)) != PG_ERROR ||
		    strcmp(err, want) != 0)
			fail_msg("case %s:\n  want: %s\n  got:  %s", cafile_bad[i].value, want,
			         err);
		assert_int_equal(b.n, 0);
		assert_null(b.der);
	}
	free(c);
}

static void test_cafile_good(void **state)
{
	struct pg_conf *c = malloc(sizeof(*c));
	struct trust_bundle b;
	char text[512], path[512], err[1024];

	(void)state;
	assert_non_null(c);
	/* not set: no anchors, no error */
	write_conf(BASE);
	assert_int_equal(conf_load(tmpdir, c, err, sizeof(err)), PG_OK);
	assert_string_equal(c->smtp_tls_cafile, "");
	assert_int_equal(trust_load_cafile(c, &b, err, sizeof(err)), PG_OK);
	assert_int_equal(b.n, 0);
	/* relative to the configuration directory, every certificate in order */
	write_conf(BASE "smtp_tls_CAfile = bundle.pem\n");
	assert_int_equal(conf_load(tmpdir, c, err, sizeof(err)), PG_OK);
	assert_int_equal(c->smtp_tls_cafile_line, 3);
	assert_int_equal(trust_load_cafile(c, &b, err, sizeof(err)), PG_OK);
	snprintf(path, sizeof(path), "%s/bundle.pem", tmpdir);
	assert_string_equal(b.file, path);
	assert_int_equal(b.n, 2);
	assert_int_equal(b.len[0], g.len[0]);
	assert_memory_equal(b.der[0], g.der[0], (size_t)g.len[0]);
	assert_int_equal(b.len[1], g.len[1]);
	assert_memory_equal(b.der[1], g.der[1], (size_t)g.len[1]);
	trust_bundle_free(&b);
	/* absolute */
	snprintf(text, sizeof(text), BASE "\nsmtp_tls_CAfile = %s/partner.pem\n", tmpdir);
	write_conf(text);
	assert_int_equal(conf_load(tmpdir, c, err, sizeof(err)), PG_OK);
	assert_int_equal(c->smtp_tls_cafile_line, 4);
	assert_int_equal(trust_load_cafile(c, &b, err, sizeof(err)), PG_OK);
	assert_int_equal(b.n, 1);
	assert_memory_equal(b.der[0], g.der[2], (size_t)g.len[2]);
	trust_bundle_free(&b);
	free(c);
}

/* ---- tafile= ---- */

#define PFILE "@/tls_policy"

static const struct {
	const char *text;
	const char *want;
} tafile_bad[] = {
    {"a.test verify tafile=partner.pem\nb.test secure tafile=empty.pem\n",
     PFILE ":2: tafile @/empty.pem: no certificate (no \"-----BEGIN CERTIFICATE-----\" line)"},
    {"b.test secure tafile=@/text.pem\n",
     PFILE ":1: tafile @/text.pem: no certificate (no \"-----BEGIN CERTIFICATE-----\" line)"},
    {"# pinned\nb.test secure tafile=key.pem\n",
     PFILE ":2: tafile @/key.pem: PEM block 1: unexpected \"PRIVATE KEY\" (CA certificates"
           " only)"},
    {"b.test verify match=hostname\n  tafile=badcert.pem\n",
     PFILE ":1: tafile @/badcert.pem: PEM block 2: not a valid X.509 certificate"},
    {"b.test verify tafile=corrupt.pem\n",
     PFILE ":1: tafile @/corrupt.pem: PEM block 1 is malformed: bad base64 decode"},
    {"b.test verify tafile=missing.pem\n",
     PFILE ":1: tafile @/missing.pem: cannot read: No such file or directory"},
};

static void test_tafile_bad(void **state)
{
	struct pg_policy p;
	char text[512], want[1024], err[1024];

	(void)state;
	for (size_t i = 0; i < sizeof(tafile_bad) / sizeof(tafile_bad[0]); i++) {
		expand(tafile_bad[i].text, text, sizeof(text));
		expand(tafile_bad[i].want, want, sizeof(want));
		err[0] = '\0';
		if (policy_parse_text(tmpdir, text, strlen(text), &p, err, sizeof(err)) !=
		        PG_ERROR ||
		    strcmp(err, want) != 0)
			fail_msg("case %zu:\n  want: %s\n  got:  %s", i, want, err);
		assert_int_equal(p.ntafiles, 0);
		assert_null(p.tafiles);
	}
}

/*
 * Entries 0 and 3 name the same file (read once, one bundle), entry 2 its
 * own; 1 and 4 have none.
 */
static const char policy_text[] = "partner.test secure tafile=partner.pem\n"
                                  "example.com encrypt\n"
                                  "bank.test verify tafile=bundle.pem match=hostname\n"
                                  ".partner.test secure tafile=./partner.pem\n"
                                  "[mx.other.test]:587 may\n";

static void load_policy(struct pg_policy *p)
{
	char err[1024];

	if (policy_parse_text(tmpdir, policy_text, strlen(policy_text), p, err, sizeof(err)) !=
	    PG_OK)
		fail_msg("%s", err);
}

static void test_tafile_bundles(void **state)
{
	struct pg_policy p;

	(void)state;
	load_policy(&p);
	assert_int_equal(p.n, 5);
	/* "partner.pem" and "./partner.pem" are different names: two reads */
	assert_int_equal(p.ntafiles, 3);
	assert_int_equal(p.entries[0].tafile_bundle, 1);
	assert_int_equal(p.entries[1].tafile_bundle, 0);
	assert_int_equal(p.entries[2].tafile_bundle, 2);
	assert_int_equal(p.entries[3].tafile_bundle, 3);
	assert_int_equal(p.entries[4].tafile_bundle, 0);
	assert_int_equal(p.tafiles[1].n, 2);
	assert_memory_equal(p.tafiles[1].der[1], g.der[1], (size_t)g.len[1]);
	policy_free(&p);

	/* the same name twice: one bundle */
	{
		static const char twice[] = "a.test secure tafile=partner.pem\n"
		                            "b.test verify tafile=partner.pem\n";
		char err[1024];

		assert_int_equal(
		    policy_parse_text(tmpdir, twice, strlen(twice), &p, err, sizeof(err)), PG_OK);
		assert_int_equal(p.ntafiles, 1);
		assert_int_equal(p.entries[0].tafile_bundle, 1);
		assert_int_equal(p.entries[1].tafile_bundle, 1);
		policy_free(&p);
	}
}

/* ---- the snapshot ---- */

static void *build(size_t *len, bool with_cafile, bool with_policy)
{
	struct pg_conf *c = malloc(sizeof(*c));
	struct trust_bundle cafile;
	struct pg_policy p = {0};
	char err[1024];
	void *blob;

	assert_non_null(c);
	write_conf(with_cafile ? BASE "smtp_tls_CAfile = bundle.pem\n" : BASE);
	assert_int_equal(conf_load(tmpdir, c, err, sizeof(err)), PG_OK);
	assert_int_equal(trust_load_cafile(c, &cafile, err, sizeof(err)), PG_OK);
	if (with_policy)
		load_policy(&p);
	{
		const struct snap_build_input in = {.conf = c, .policy = &p, .cafile = &cafile};

		if (snap_build_from(&in, &blob, len, err, sizeof(err)) != PG_OK)
			fail_msg("%s", err);
	}
	((struct snap_header *)blob)->checksum = snap_checksum(blob, *len);
	trust_bundle_free(&cafile);
	policy_free(&p);
	free(c);
	return blob;
}

static void expect_der(const struct snap_header *h, const struct snap_tls_trust *t, int ca)
{
	const uint8_t *der = snap_trust_der(h, t);

	assert_non_null(der);
	assert_int_equal(t->der.len, g.len[ca]);
	assert_memory_equal(der, g.der[ca], (size_t)g.len[ca]);
}

static void test_snapshot(void **state)
{
	size_t len;
	void *blob = build(&len, true, true);
	const struct snap_header *h = blob;
	const struct snap_tls_trust *t;
	uint32_t n, first, der_size;
	char err[512];

	(void)state;
	assert_true(SNAP_ABI_MAJOR * 100 + SNAP_ABI_MINOR >=
	            100 + 8); /* 1.8 brought the trust anchors */
	assert_int_equal(sizeof(struct snap_tls_trust), 16);
	assert_int_equal(snap_validate(blob, len, err, sizeof(err)), 0);
	t = snap_tls_trust(h, &n);
	assert_non_null(t);
	/* CAfile (2), then entry 0 (1), entry 2 (2), entry 3 (1) */
	assert_int_equal(n, 6);
	assert_int_equal(t[0].policy, SNAP_TRUST_GLOBAL);
	assert_int_equal(t[1].policy, SNAP_TRUST_GLOBAL);
	assert_int_equal(t[2].policy, 0);
	assert_int_equal(t[3].policy, 2);
	assert_int_equal(t[4].policy, 2);
	assert_int_equal(t[5].policy, 3);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(t[i].reserved, 0);
	expect_der(h, &t[0], 0);
	expect_der(h, &t[1], 1);
	expect_der(h, &t[2], 2);
	expect_der(h, &t[3], 0);
	expect_der(h, &t[4], 1);
	expect_der(h, &t[5], 2);
	/* the CAfile and bundle.pem of entry 2 are separate reads: separate bytes */
	assert_int_not_equal(t[0].der.off, t[3].der.off);
	/* every bundle written once: CAfile + partner.pem + bundle.pem + ./partner.pem */
	snap_section(h, SNAP_SEC_TLS_TRUST_DER, &der_size);
	assert_int_equal(der_size, 2 * (g.len[0] + g.len[1]) + 2 * g.len[2]);

	/* ranges */
	assert_int_equal(snap_tls_trust_range(h, SNAP_TRUST_GLOBAL, &first), 2);
	assert_int_equal(first, 0);
	assert_int_equal(snap_tls_trust_range(h, 0, &first), 1);
	assert_int_equal(first, 2);
	assert_int_equal(snap_tls_trust_range(h, 1, &first), 0);
	assert_int_equal(snap_tls_trust_range(h, 2, &first), 2);
	assert_int_equal(first, 3);
	assert_int_equal(snap_tls_trust_range(h, 3, &first), 1);
	assert_int_equal(first, 5);
	assert_int_equal(snap_tls_trust_range(h, 4, &first), 0);
	assert_int_equal(snap_tls_trust_range(h, 99, &first), 0);
	free(blob);

	/* no CAfile: the tafile anchors alone */
	blob = build(&len, false, true);
	h = blob;
	assert_int_equal(snap_validate(blob, len, err, sizeof(err)), 0);
	t = snap_tls_trust(h, &n);
	assert_int_equal(n, 4);
	assert_int_equal(t[0].policy, 0);
	assert_int_equal(snap_tls_trust_range(h, SNAP_TRUST_GLOBAL, &first), 0);
	assert_int_equal(snap_tls_trust_range(h, 2, &first), 2);
	assert_int_equal(first, 1);
	free(blob);

	/* nothing: the sections are there, empty */
	blob = build(&len, false, false);
	h = blob;
	assert_int_equal(snap_validate(blob, len, err, sizeof(err)), 0);
	assert_null(snap_tls_trust(h, &n));
	assert_int_equal(n, 0);
	assert_non_null(snap_section(h, SNAP_SEC_TLS_TRUST_DER, &n));
	assert_int_equal(n, 0);
	free(blob);
}

/* ---- corruptions ---- */

static struct snap_section *sec(struct snap_header *h, uint32_t kind)
{
	for (uint32_t i = 0; i < h->nsections; i++)
		if (h->sections[i].kind == kind)
			return &h->sections[i];
	fail_msg("no section %u", kind);
	return NULL;
}

#define TRUST(h, i)                                                                                \
	(((struct snap_tls_trust *)((uint8_t *)(h) + sec(h, SNAP_SEC_TLS_TRUST)->offset))[i])

static void x_der_off(struct snap_header *h)
{
	TRUST(h, 1).der.off = (uint32_t)sec(h, SNAP_SEC_TLS_TRUST_DER)->size;
}
static void x_der_len(struct snap_header *h)
{
	TRUST(h, 5).der.len += 1;
}
static void x_der_empty(struct snap_header *h)
{
	TRUST(h, 0).der.len = 0;
}
static void x_der_wrap(struct snap_header *h)
{
	TRUST(h, 2).der.off = 0xfffffff0u;
	TRUST(h, 2).der.len = 0x20u;
}
static void x_policy(struct snap_header *h)
{
	TRUST(h, 5).policy = 5;
}
static void x_policy_big(struct snap_header *h)
{
	TRUST(h, 5).policy = 0xfffffffeu;
}
static void x_policy_no_tafile(struct snap_header *h)
{
	TRUST(h, 3).policy = TRUST(h, 4).policy = 1;
}
static void x_reserved(struct snap_header *h)
{
	TRUST(h, 4).reserved = 1;
}
static void x_global_late(struct snap_header *h)
{
	TRUST(h, 5).policy = SNAP_TRUST_GLOBAL;
}
static void x_descending(struct snap_header *h)
{
	TRUST(h, 2).policy = 3;
}
static void x_der_count(struct snap_header *h)
{
	sec(h, SNAP_SEC_TLS_TRUST_DER)->count -= 1;
}
static void x_missing(struct snap_header *h)
{
	sec(h, SNAP_SEC_TLS_TRUST_DER)->kind = 99;
}
static void x_count(struct snap_header *h)
{
	sec(h, SNAP_SEC_TLS_TRUST)->count += 1;
}

static void test_corruption(void **state)
{
	static const struct {
		const char *name;
		void (*mutate)(struct snap_header *h);
		const char *want; /* %u: the DER bytes; %o, %l: their offset and length */
	} cases[] = {
	    {"DER past the end", x_der_off,
	     "trust anchor 1: bytes [%u, +%l) outside the %u DER bytes"},
	    {"DER one byte long", x_der_len,
	     "trust anchor 5: bytes [%o, +%l) outside the %u DER bytes"},
	    {"DER empty", x_der_empty, "trust anchor 0: bytes [0, +0) outside the %u DER bytes"},
	    {"DER wraps", x_der_wrap,
	     "trust anchor 2: bytes [4294967280, +32) outside the %u DER bytes"},
	    {"policy index", x_policy, "trust anchor 5: tls_policy entry 5 of 5"},
	    {"policy index big", x_policy_big, "trust anchor 5: tls_policy entry 4294967294 of 5"},
	    {"entry without tafile", x_policy_no_tafile,
	     "trust anchor 3: tls_policy entry 1 has no tafile"},
	    {"reserved", x_reserved, "trust anchor 4: reserved field not 0"},
	    {"global after an entry", x_global_late,
	     "trust anchor 5: a global anchor after those of a tls_policy entry"},
	    {"descending", x_descending,
	     "trust anchor 3: tls_policy entry 2 after entry 3 (ascending order)"},
	    {"DER count", x_der_count, "trust anchors: DER section count %d is not its size %u"},
	    {"DER section missing", x_missing,
	     "trust anchors: the anchor and DER sections come together"},
	    {"count", x_count, "section %s (kind 26): 7 elements do not fit in 96 bytes"},
	};
	size_t len;
	void *good = build(&len, true, true);
	struct snap_header *gh = good;
	uint32_t der = (uint32_t)sec(gh, SNAP_SEC_TLS_TRUST_DER)->size;
	char err[512];

	(void)state;
	assert_int_equal(snap_validate(good, len, err, sizeof(err)), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		void *blob = malloc(len);
		struct snap_header *h = blob;
		char want[512];
		size_t o = 0;
		uint32_t idx = (uint32_t)(sec(gh, SNAP_SEC_TLS_TRUST) - gh->sections);

		assert_non_null(blob);
		memcpy(blob, good, len);
		cases[i].mutate(h);
		h->checksum = snap_checksum(blob, len);
		/* the placeholders, from the mutated anchor's fields */
		for (const char *w = cases[i].want; *w != '\0' && o + 16 < sizeof(want); w++) {
			if (w[0] != '%') {
				want[o++] = *w;
				continue;
			}
			w++;
			if (*w == 'u')
				o += (size_t)snprintf(want + o, sizeof(want) - o, "%u", der);
			else if (*w == 'd')
				o += (size_t)snprintf(want + o, sizeof(want) - o, "%u", der - 1);
			else if (*w == 'o')
				o += (size_t)snprintf(want + o, sizeof(want) - o, "%u",
				                      TRUST(h, 5).der.off);
			else if (*w == 'l')
				o += (size_t)snprintf(want + o, sizeof(want) - o, "%u",
				                      cases[i].mutate == x_der_off
				                          ? TRUST(h, 1).der.len
				                          : TRUST(h, 5).der.len);
			else if (*w == 's')
				o += (size_t)snprintf(want + o, sizeof(want) - o, "%u", idx);
		}
		want[o] = '\0';
		err[0] = '\0';
		if (snap_validate(blob, len, err, sizeof(err)) == 0 || strcmp(err, want) != 0)
			fail_msg("case \"%s\":\n  want: %s\n  got:  %s", cases[i].name, want, err);
		free(blob);
	}

	/* a snapshot of minor 7 has no such sections: valid, and no anchors */
	{
		void *blob = malloc(len);
		struct snap_header *h = blob;
		uint32_t n, first;

		assert_non_null(blob);
		memcpy(blob, good, len);
		h->abi_minor = 7;
		sec(h, SNAP_SEC_TLS_TRUST)->kind = 77;
		sec(h, SNAP_SEC_TLS_TRUST_DER)->kind = 78;
		sec(h, SNAP_SEC_TLS_TICKET_KEYS)->kind = 79;
		h->checksum = snap_checksum(blob, len);
		assert_int_equal(snap_validate(blob, len, err, sizeof(err)), 0);
		assert_null(snap_tls_trust(h, &n));
		assert_int_equal(n, 0);
		assert_int_equal(snap_tls_trust_range(h, SNAP_TRUST_GLOBAL, &first), 0);
		free(blob);
	}
	free(good);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cafile_bad), cmocka_unit_test(test_cafile_good),
	    cmocka_unit_test(test_tafile_bad), cmocka_unit_test(test_tafile_bundles),
	    cmocka_unit_test(test_snapshot),   cmocka_unit_test(test_corruption),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
