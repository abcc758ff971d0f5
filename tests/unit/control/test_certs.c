/*
 * test_certs.c - tls_certificates end to end without a dataplane: test
 * certificates generated here with the OpenSSL API (a CA, RSA-2048, ECDSA
 * P-256/P-384 and Ed25519 leaves, and every kind of broken file) are
 * written to a temporary directory; a table of configurations checks the
 * exact "PEMFILE: message (from postern.conf:LINE)" of each refusal; then
 * config -> snapshot -> tls_certs_load -> SNI selection (exact, wildcard,
 * default, key-type preference) with keys checked against their leaves
 * and fingerprints; and a table of corruptions of the certificate
 * sections that snap_validate must refuse with its exact message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certs.h"
#include "conf.h"
#include "result.h"
#include "snap_build.h"
#include "tls_certs.h"

#define BASE "port0_device = net_tap0\nport0_address = 198.18.0.1/24\n"

static char tmpdir[] = "/tmp/test_certs.XXXXXX";

/* The generated material, made once for the whole file. */
static struct {
	EVP_PKEY *ca_key, *other_key, *ec_key, *ec2_key, *rsa_key, *p384_key, *ed_key;
	EVP_PKEY *rsa1024_key, *p521_key;
	X509 *ca, *other_ca, *ec_leaf, *rsa_leaf, *www_leaf, *ed_leaf;
} g;

/* ---- generation ---- */

static EVP_PKEY *keygen(const char *type, const char *curve, size_t bits)
{
	EVP_PKEY *k;

	if (curve != NULL)
		k = EVP_PKEY_Q_keygen(NULL, NULL, type, curve);
	else if (bits != 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, type, bits);
	else
		k = EVP_PKEY_Q_keygen(NULL, NULL, type);
	assert_non_null(k);
	return k;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	e = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

/*
 * A certificate for key named cn, with subjectAltName san (NULL: none),
 * issued by issuer/issuer_key (NULL: self-signed), valid from nb to na
 * (NULL: yesterday to 30 days from now), a CA if ca.
 */
static X509 *mkcert(EVP_PKEY *key, const char *cn, const char *san, X509 *issuer,
                    EVP_PKEY *issuer_key, const char *nb, const char *na, bool ca)
{
	static long serial = 1;
	X509 *x = X509_new();
	EVP_PKEY *signer = issuer_key != NULL ? issuer_key : key;
	X509_NAME *name;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name);
	X509_set_pubkey(x, key);
	if (nb != NULL)
		assert_int_equal(ASN1_TIME_set_string_X509(X509_getm_notBefore(x), nb), 1);
	else
		X509_gmtime_adj(X509_getm_notBefore(x), -86400);
	if (na != NULL)
		assert_int_equal(ASN1_TIME_set_string_X509(X509_getm_notAfter(x), na), 1);
	else
		X509_gmtime_adj(X509_getm_notAfter(x), 30 * 86400L);
	if (san != NULL)
		add_ext(x, issuer != NULL ? issuer : x, NID_subject_alt_name, san);
	if (ca) {
		add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
	}
	assert_true(
	    X509_sign(x, signer,
	              EVP_PKEY_get_base_id(signer) == EVP_PKEY_ED25519 ? NULL : EVP_sha256()) > 0);
	return x;
}

/* A PEM file in tmpdir made of parts: 'k' key (PKCS#8), 't' key
 * (traditional), 'e' encrypted key, 'c' certificate, 's' raw text. */
static void write_pem(const char *file, const char *layout, ...)
{
	char path[512];
	FILE *f;
	va_list ap;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, file);
	f = fopen(path, "w");
	assert_non_null(f);
	va_start(ap, layout);
	for (const char *l = layout; *l != '\0'; l++) {
		switch (*l) {
		case 'k':
			assert_int_equal(PEM_write_PrivateKey(f, va_arg(ap, EVP_PKEY *), NULL, NULL,
			                                      0, NULL, NULL),
			                 1);
			break;
		case 't': {
			BIO *b = BIO_new_fp(f, BIO_NOCLOSE);

			assert_int_equal(PEM_write_bio_PrivateKey_traditional(
			                     b, va_arg(ap, EVP_PKEY *), NULL, NULL, 0, NULL, NULL),
			                 1);
			BIO_free(b);
			break;
		}
		case 'e':
			assert_int_equal(PEM_write_PKCS8PrivateKey(f, va_arg(ap, EVP_PKEY *),
			                                           EVP_aes_128_cbc(), NULL, 0, NULL,
			                                           (void *)"secret"),
			                 1);
			break;
		case 'c':
			assert_int_equal(PEM_write_X509(f, va_arg(ap, X509 *)), 1);
			break;
		case 's':
			fputs(va_arg(ap, const char *), f);
			break;
		}
	}
	va_end(ap);
	assert_int_equal(fclose(f), 0);
}

/* file with its first `keep` bytes, or with one base64 character broken */
static void mangle(const char *from, const char *to, long keep, bool break_b64)
{
	char src[512], dst[512], buf[16384];
	FILE *f;
	size_t n;

	snprintf(src, sizeof(src), "%s/%s", tmpdir, from);
	snprintf(dst, sizeof(dst), "%s/%s", tmpdir, to);
	f = fopen(src, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	if (keep >= 0 && (size_t)keep < n)
		n = (size_t)keep;
	if (break_b64)
		buf[strchr(buf, '\n') - buf + 5] = '!';
	f = fopen(dst, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, n, f), n);
	fclose(f);
}

static int setup(void **state)
{
	char path[512];
	X509 *x;

	(void)state;
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	g.ca_key = keygen("EC", "P-256", 0);
	g.other_key = keygen("EC", "P-256", 0);
	g.ec_key = keygen("EC", "P-256", 0);
	g.ec2_key = keygen("EC", "P-256", 0);
	g.rsa_key = keygen("RSA", NULL, 2048);
	g.p384_key = keygen("EC", "P-384", 0);
	g.ed_key = keygen("ED25519", NULL, 0);
	g.rsa1024_key = keygen("RSA", NULL, 1024);
	g.p521_key = keygen("EC", "P-521", 0);
	g.ca = mkcert(g.ca_key, "Postern Test CA", NULL, NULL, NULL, NULL, NULL, true);
	g.other_ca = mkcert(g.other_key, "Other CA", NULL, NULL, NULL, NULL, NULL, true);
	g.ec_leaf = mkcert(g.ec_key, "mail.example.com", "DNS:mail.example.com,DNS:*.example.com",
	                   g.ca, g.ca_key, NULL, NULL, false);
	g.rsa_leaf = mkcert(g.rsa_key, "mail.example.com",
	                    "DNS:Mail.Example.COM,DNS:*.example.com,DNS:mail.example.com", g.ca,
	                    g.ca_key, NULL, NULL, false);
	g.www_leaf = mkcert(g.p384_key, "www", "DNS:www.example.com,DNS:other.test,IP:198.19.0.2",
	                    g.ca, g.ca_key, NULL, NULL, false);
	g.ed_leaf = mkcert(g.ed_key, "ed.test", NULL, g.ca, g.ca_key, NULL, NULL, false);

	/* good files */
	write_pem("ec.pem", "kcc", g.ec_key, g.ec_leaf, g.ca);
	write_pem("rsa.pem", "tcc", g.rsa_key, g.rsa_leaf, g.ca);
	write_pem("www.pem", "ck", g.www_leaf, g.p384_key); /* the key may follow */
	write_pem("ed.pem", "kc", g.ed_key, g.ed_leaf);

	/* broken files */
	x = mkcert(g.ec2_key, "old.example.com", "DNS:old.example.com", g.ca, g.ca_key,
	           "20200101000000Z", "20210101000000Z", false);
	write_pem("expired.pem", "kc", g.ec2_key, x);
	X509_free(x);
	x = mkcert(g.ec2_key, "new.example.com", "DNS:new.example.com", g.ca, g.ca_key,
	           "20990101000000Z", "21000101120000Z", false);
	write_pem("future.pem", "kc", g.ec2_key, x);
	X509_free(x);
	write_pem("mismatch.pem", "kcc", g.ec2_key, g.ec_leaf, g.ca);
	write_pem("ca_first.pem", "kcc", g.ec_key, g.ca, g.ec_leaf);
	write_pem("unrelated.pem", "kcc", g.ec_key, g.ec_leaf, g.other_ca);
	write_pem("nopem.pem", "s", "this is not PEM\n");
	write_pem("nokey.pem", "cc", g.ec_leaf, g.ca);
	write_pem("nocert.pem", "k", g.ec_key);
	write_pem("twokeys.pem", "kkc", g.ec_key, g.ec_key, g.ec_leaf);
	write_pem("encrypted.pem", "ec", g.ec_key, g.ec_leaf);
	write_pem("crl.pem", "kcs", g.ec_key, g.ec_leaf,
	          "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n");
	write_pem("badcert.pem", "ks", g.ec_key,
	          "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
	mangle("ec.pem", "truncated.pem", 300, false);
	mangle("ec.pem", "corrupt.pem", -1, true);
	x = mkcert(g.rsa1024_key, "small.example.com", "DNS:small.example.com", g.ca, g.ca_key,
	           NULL, NULL, false);
	write_pem("rsa1024.pem", "kc", g.rsa1024_key, x);
	X509_free(x);
	x = mkcert(g.p521_key, "big.example.com", "DNS:big.example.com", g.ca, g.ca_key, NULL, NULL,
	           false);
	write_pem("p521.pem", "kc", g.p521_key, x);
	X509_free(x);
	x = mkcert(g.ec2_key, "x", "DNS:bad_name.example.com", g.ca, g.ca_key, NULL, NULL, false);
	write_pem("badsan.pem", "kc", g.ec2_key, x);
	X509_free(x);
	x = mkcert(g.ec2_key, "x", "DNS:*.com", g.ca, g.ca_key, NULL, NULL, false);
	write_pem("tldwild.pem", "kc", g.ec2_key, x);
	X509_free(x);
	x = mkcert(g.ec2_key, "x", "DNS:a.*.example.com", g.ca, g.ca_key, NULL, NULL, false);
	write_pem("midwild.pem", "kc", g.ec2_key, x);
	X509_free(x);
	x = mkcert(g.ec2_key, "x", "DNS:shop.example.org,DNS:MAIL.example.com", g.ca, g.ca_key,
	           NULL, NULL, false);
	write_pem("dup_ec.pem", "kc", g.ec2_key, x);
	X509_free(x);
	x = mkcert(g.ec2_key, "Example Server", NULL, g.ca, g.ca_key, NULL, NULL, false);
	write_pem("noname_ec.pem", "kc", g.ec2_key, x);
	X509_free(x);
	x = mkcert(g.ec2_key, "ignored.example", "DNS:san.example.org", g.ca, g.ca_key, NULL, NULL,
	           false);
	write_pem("sanwins.pem", "kc", g.ec2_key, x);
	X509_free(x);
	snprintf(path, sizeof(path), "%s/adir.pem", tmpdir);
	return mkdir(path, 0755);
}

static int teardown(void **state)
{
	char cmd[300];

	(void)state;
	EVP_PKEY_free(g.ca_key);
	EVP_PKEY_free(g.other_key);
	EVP_PKEY_free(g.ec_key);
	EVP_PKEY_free(g.ec2_key);
	EVP_PKEY_free(g.rsa_key);
	EVP_PKEY_free(g.p384_key);
	EVP_PKEY_free(g.ed_key);
	EVP_PKEY_free(g.rsa1024_key);
	EVP_PKEY_free(g.p521_key);
	X509_free(g.ca);
	X509_free(g.other_ca);
	X509_free(g.ec_leaf);
	X509_free(g.rsa_leaf);
	X509_free(g.www_leaf);
	X509_free(g.ed_leaf);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* "@" in a wanted message stands for the temporary directory. */
static void expand(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (; *in != '\0' && o + 1 < len; in++) {
		if (*in == '@')
			o += (size_t)snprintf(out + o, len - o, "%s", tmpdir);
		else
			out[o++] = *in;
	}
	out[o < len ? o : len - 1] = '\0';
}

static void write_conf(const char *certs_value)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, CONF_FILE_NAME);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "%s# inbound TLS\ntls_certificates = %s\n", BASE, certs_value);
	assert_int_equal(fclose(f), 0);
}

/* Load postern.conf and its certificates: PG_OK or the message in err. */
static int load(const char *certs_value, struct pg_conf *c, struct pg_certs *certs, char *err,
                size_t errlen)
{
	write_conf(certs_value);
	if (conf_load(tmpdir, c, err, errlen) != PG_OK)
		return PG_ERROR;
	return certs_load(c, certs, err, errlen);
}

/* ---- refusals, each with its exact message ---- */

#define FROM " (from @/postern.conf:4)"

static const struct bad_case {
	const char *value; /* tls_certificates = */
	const char *want;
} bad_cases[] = {
    {"missing.pem", "@/missing.pem: cannot open: No such file or directory" FROM},
    {"adir.pem", "@/adir.pem: cannot read: Is a directory" FROM},
    {"nopem.pem", "@/nopem.pem: no PEM data (\"-----BEGIN\" line) found" FROM},
    {"truncated.pem", "@/truncated.pem: PEM block 2 is malformed: bad end line" FROM},
    {"corrupt.pem", "@/corrupt.pem: PEM block 1 is malformed: bad base64 decode" FROM},
    {"badcert.pem", "@/badcert.pem: PEM block 2: not a valid X.509 certificate" FROM},
    {"nokey.pem", "@/nokey.pem: no private key (each file holds the key and its chain)" FROM},
    {"nocert.pem", "@/nocert.pem: no certificate (each file holds the key and its chain)" FROM},
    {"twokeys.pem", "@/twokeys.pem: more than one private key (PEM blocks 1 and 2)" FROM},
    {"encrypted.pem",
     "@/encrypted.pem: PEM block 1: the private key is encrypted; posternd cannot ask for a"
     " passphrase (decrypt it with `openssl pkey`)" FROM},
    {"crl.pem", "@/crl.pem: PEM block 3: unexpected \"X509 CRL\" (a private key and certificates"
                " only)" FROM},
    {"rsa1024.pem", "@/rsa1024.pem: RSA key of 1024 bits: at least 2048 are required" FROM},
    {"p521.pem", "@/p521.pem: ECDSA key on curve secp521r1: only P-256 (prime256v1) and P-384"
                 " (secp384r1) are supported" FROM},
    {"mismatch.pem", "@/mismatch.pem: the private key does not match the certificate"
                     " (CN=mail.example.com)" FROM},
    {"ca_first.pem",
     "@/ca_first.pem: the private key does not match the first certificate (CN=Postern Test"
     " CA) but certificate 2: put the leaf first, then each issuer" FROM},
    {"unrelated.pem",
     "@/unrelated.pem: certificate 2 (CN=Other CA) is not the issuer of certificate 1"
     " (CN=mail.example.com): the file must hold the leaf first, then each issuer in"
     " order" FROM},
    {"expired.pem",
     "@/expired.pem: the certificate has expired: valid from 2020-01-01 00:00:00 UTC until"
     " 2021-01-01 00:00:00 UTC" FROM},
    {"future.pem",
     "@/future.pem: the certificate is not valid yet: valid from 2099-01-01 00:00:00 UTC"
     " until 2100-01-01 12:00:00 UTC" FROM},
    {"badsan.pem",
     "@/badsan.pem: subjectAltName DNS name \"bad_name.example.com\": a character other"
     " than letters, digits, '-' and '.'" FROM},
    {"tldwild.pem", "@/tldwild.pem: subjectAltName DNS name \"*.com\": a wildcard over a top-level"
                    " domain" FROM},
    {"midwild.pem",
     "@/midwild.pem: subjectAltName DNS name \"a.*.example.com\": a wildcard that is not"
     " the whole left-most label" FROM},
    {"ec.pem rsa.pem, dup_ec.pem",
     "@/dup_ec.pem: \"mail.example.com\" with an ECDSA key is already covered by"
     " @/ec.pem" FROM},
    {"ec.pem noname_ec.pem",
     "@/noname_ec.pem: the certificate has no DNS name and @/ec.pem already has the default"
     " ECDSA key: it could never be chosen" FROM},
    /* the first bad file stops the load, whatever follows */
    {"ec.pem, missing.pem, expired.pem",
     "@/missing.pem: cannot open: No such file or directory" FROM},
    /* what postern.conf itself gets wrong is FILE:LINE */
    {"ec.pem ec.pem", "@/postern.conf:4: bad value for tls_certificates: \"ec.pem\": listed"
                      " twice"},
};

static void test_refusals(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct pg_conf *c = malloc(sizeof(*c));
		struct pg_certs certs = {0};
		char err[2048], want[2048];

		assert_non_null(c);
		expand(bad_cases[i].want, want, sizeof(want));
		if (load(bad_cases[i].value, c, &certs, err, sizeof(err)) == PG_OK)
			fail_msg("case %zu (%s) accepted", i, bad_cases[i].value);
		if (strcmp(err, want) != 0)
			fail_msg("case %zu (%s):\n got  %s\n want %s", i, bad_cases[i].value, err,
			         want);
		assert_int_equal(certs.n, 0);
		assert_null(certs.entries);
		free(c);
	}
}

static void test_accepted(void **state)
{
	struct pg_conf *c = malloc(sizeof(*c));
	struct pg_certs certs;
	char err[2048], abs[600];

	(void)state;
	assert_non_null(c);
	/* absolute and relative names, commas and spaces; P-384, Ed25519, CN only */
	snprintf(abs, sizeof(abs), "%s/www.pem,ec.pem rsa.pem,\ted.pem sanwins.pem", tmpdir);
	if (load(abs, c, &certs, err, sizeof(err)) != PG_OK)
		fail_msg("%s", err);
	assert_int_equal(c->tls_certificates_line, 4);
	assert_int_equal(certs.n, 5);
	assert_int_equal(certs.entries[0].key_type, SNAP_TLS_KEY_ECDSA);
	assert_int_equal(certs.entries[0].key_bits, 384);
	assert_int_equal(certs.entries[0].nnames, 2); /* the IP entry is not a DNS name */
	assert_string_equal(certs.entries[0].names[1], "other.test");
	assert_int_equal(certs.entries[1].nchain, 2);
	/* lowercased and deduplicated in certificate order */
	assert_int_equal(certs.entries[2].key_type, SNAP_TLS_KEY_RSA);
	assert_int_equal(certs.entries[2].key_bits, 2048);
	assert_int_equal(certs.entries[2].nnames, 2);
	assert_string_equal(certs.entries[2].names[0], "mail.example.com");
	assert_string_equal(certs.entries[2].names[1], "*.example.com");
	/* Ed25519, no SAN: the CN is the name */
	assert_int_equal(certs.entries[3].key_type, SNAP_TLS_KEY_ED25519);
	assert_int_equal(certs.entries[3].nnames, 1);
	assert_string_equal(certs.entries[3].names[0], "ed.test");
	/* a SAN present: the CN is not a name */
	assert_int_equal(certs.entries[4].nnames, 1);
	assert_string_equal(certs.entries[4].names[0], "san.example.org");
	snprintf(abs, sizeof(abs), "%s/ec.pem", tmpdir);
	assert_string_equal(certs.entries[1].file, abs);
	certs_free(&certs);
	/* not set: no certificates, not an error */
	write_conf("");
	assert_int_equal(conf_load(tmpdir, c, err, sizeof(err)), PG_OK);
	assert_int_equal(certs_load(c, &certs, err, sizeof(err)), PG_OK);
	assert_int_equal(certs.n, 0);
	free(c);
}

/* ---- config -> snapshot -> OpenSSL objects -> SNI ---- */

static void *build(const char *value, size_t *len, struct pg_conf **cp)
{
	struct pg_conf *c = malloc(sizeof(*c));
	struct pg_certs certs;
	char err[2048];
	void *blob;

	assert_non_null(c);
	if (load(value, c, &certs, err, sizeof(err)) != PG_OK)
		fail_msg("%s", err);
	assert_int_equal(snap_build_full(c, NULL, NULL, &certs, &blob, len, err, sizeof(err)),
	                 PG_OK);
	certs_free(&certs);
	((struct snap_header *)blob)->generation = 7;
	((struct snap_header *)blob)->checksum = snap_checksum(blob, *len);
	if (cp != NULL)
		*cp = c;
	else
		free(c);
	return blob;
}

static void assert_same_cert(const struct tls_cert *c, X509 *want, EVP_PKEY *want_key)
{
	uint8_t md[32];
	unsigned int n = 0;

	assert_non_null(c);
	assert_int_equal(X509_cmp(c->leaf, want), 0);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(c->leaf), c->key), 1);
	assert_int_equal(X509_check_private_key(c->leaf, c->key), 1);
	assert_int_equal(EVP_PKEY_eq(c->key, want_key), 1);
	assert_int_equal(X509_digest(want, EVP_sha256(), md, &n), 1);
	assert_memory_equal(c->sha256, md, sizeof(md));
}

struct sni_case {
	const char *sni;
	unsigned allowed;
	enum tls_cert_match how;
	const char *matched;
	int cert; /* index in configuration order */
};

static void test_round_trip(void **state)
{
	/* 0 www (P-384), 1 ec (P-256), 2 rsa, 3 ed */
	static const struct sni_case cases[] = {
	    {"mail.example.com", TLS_ALLOW_ALL, TLS_MATCH_EXACT, "mail.example.com", 1},
	    {"MAIL.Example.com.", TLS_ALLOW_ALL, TLS_MATCH_EXACT, "mail.example.com", 1},
	    {"mail.example.com", TLS_ALLOW_RSA, TLS_MATCH_EXACT, "mail.example.com", 2},
	    {"a.example.com", TLS_ALLOW_ALL, TLS_MATCH_WILDCARD, "*.example.com", 1},
	    {"a.example.com", TLS_ALLOW_RSA, TLS_MATCH_WILDCARD, "*.example.com", 2},
	    /* www has an exact ECDSA certificate, and the wildcard an RSA one */
	    {"www.example.com", TLS_ALLOW_ALL, TLS_MATCH_EXACT, "www.example.com", 0},
	    {"www.example.com", TLS_ALLOW_RSA, TLS_MATCH_WILDCARD, "*.example.com", 2},
	    /* one label only (RFC 6125 §6.4.3) */
	    {"a.b.example.com", TLS_ALLOW_ALL, TLS_MATCH_DEFAULT, NULL, 0},
	    {"example.com", TLS_ALLOW_ALL, TLS_MATCH_DEFAULT, NULL, 0},
	    {"example.com", TLS_ALLOW_RSA, TLS_MATCH_DEFAULT, NULL, 2},
	    {NULL, TLS_ALLOW_ALL, TLS_MATCH_DEFAULT, NULL, 0},
	    {"", TLS_ALLOW_ECDSA, TLS_MATCH_DEFAULT, NULL, 0},
	    {"198.19.0.2", TLS_ALLOW_ALL, TLS_MATCH_DEFAULT, NULL, 0},
	    {"bad name", TLS_ALLOW_ALL, TLS_MATCH_DEFAULT, NULL, 0},
	    {"ed.test", TLS_ALLOW_ALL, TLS_MATCH_EXACT, "ed.test", 3},
	    {"ed.test", TLS_ALLOW_ECDSA | TLS_ALLOW_RSA, TLS_MATCH_DEFAULT, NULL, 0},
	    {"other.test", TLS_ALLOW_ED25519, TLS_MATCH_DEFAULT, NULL, 3},
	    /* nothing the client can verify: the best name, and the handshake fails */
	    {"mail.example.com", 0, TLS_MATCH_EXACT, "mail.example.com", 1},
	    {"nowhere.test", 0, TLS_MATCH_DEFAULT, NULL, 0},
	};
	X509 *leaves[] = {g.www_leaf, g.ec_leaf, g.rsa_leaf, g.ed_leaf};
	EVP_PKEY *keys[] = {g.p384_key, g.ec_key, g.rsa_key, g.ed_key};
	size_t len;
	void *blob = build("www.pem ec.pem rsa.pem ed.pem", &len, NULL);
	const struct snap_header *h = blob;
	struct tls_cert_set set;
	struct tls_cert_choice ch;
	char err[512];

	(void)state;
	assert_int_equal(h->abi_minor, SNAP_ABI_MINOR);
	assert_true(SNAP_ABI_MAJOR * 100 + SNAP_ABI_MINOR >=
	            100 + 2); /* 1.2 brought the certificates */
	if (snap_validate(blob, len, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	assert_int_equal(tls_certs_load(h, &set, err, sizeof(err)), PG_OK);
	assert_int_equal(set.n, 4);
	assert_int_equal(set.generation, 7);
	for (uint32_t i = 0; i < set.n; i++)
		assert_same_cert(&set.certs[i], leaves[i], keys[i]);
	/* the chain after the leaf: the CA */
	assert_int_equal(sk_X509_num(set.certs[1].chain), 1);
	assert_int_equal(X509_cmp(sk_X509_value(set.certs[1].chain, 0), g.ca), 0);
	assert_int_equal(sk_X509_num(set.certs[3].chain), 0);
	assert_int_equal(set.certs[2].nnames, 2);
	assert_string_equal(set.certs[2].names[1], "*.example.com");
	assert_true(set.certs[1].not_after > set.certs[1].not_before);

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct sni_case *k = &cases[i];

		assert_int_equal(tls_cert_select(&set, k->sni, k->allowed, &ch), PG_OK);
		if (ch.how != k->how || ch.cert != &set.certs[k->cert] ||
		    (k->matched == NULL) != (ch.matched == NULL) ||
		    (k->matched != NULL && strcmp(k->matched, ch.matched) != 0))
			fail_msg("case %zu (%s, allowed 0x%x): got how %d cert %u matched %s", i,
			         k->sni != NULL ? k->sni : "(null)", k->allowed, ch.how,
			         ch.cert != NULL ? ch.cert->index : 99,
			         ch.matched != NULL ? ch.matched : "(null)");
		assert_same_cert(ch.cert, leaves[k->cert], keys[k->cert]);
	}
	/* every certificate at the chosen level, per key type */
	assert_int_equal(tls_cert_select(&set, "mail.example.com", TLS_ALLOW_ALL, &ch), PG_OK);
	assert_ptr_equal(ch.by_type[SNAP_TLS_KEY_ECDSA - 1], &set.certs[1]);
	assert_ptr_equal(ch.by_type[SNAP_TLS_KEY_RSA - 1], &set.certs[2]);
	assert_null(ch.by_type[SNAP_TLS_KEY_ED25519 - 1]);
	assert_int_equal(tls_cert_select(&set, NULL, TLS_ALLOW_ALL, &ch), PG_OK);
	assert_ptr_equal(ch.by_type[SNAP_TLS_KEY_ECDSA - 1], &set.certs[0]);
	assert_ptr_equal(ch.by_type[SNAP_TLS_KEY_ED25519 - 1], &set.certs[3]);
	tls_certs_free(&set);
	assert_null(set.certs);
	free(blob);
}

static void test_no_certificates(void **state)
{
	struct pg_conf *c;
	size_t len;
	void *blob = build("", &len, &c), *old;
	struct tls_cert_set set;
	struct tls_cert_choice ch;
	char err[512];

	(void)state;
	assert_int_equal(snap_validate(blob, len, err, sizeof(err)), 0);
	assert_int_equal(tls_certs_load(blob, &set, err, sizeof(err)), PG_OK);
	assert_int_equal(set.n, 0);
	assert_int_equal(tls_cert_select(&set, "mail.example.com", TLS_ALLOW_ALL, &ch),
	                 PG_DECLINED);
	assert_null(ch.cert);
	tls_certs_free(&set);
	/* a snapshot of ABI 1.1 layout (snap_build: no certificate sections at all) */
	assert_int_equal(snap_build(c, &old, &len, err, sizeof(err)), PG_OK);
	assert_int_equal(tls_certs_load(old, &set, err, sizeof(err)), PG_OK);
	assert_int_equal(set.n, 0);
	free(old);
	free(blob);
	free(c);
}

static void test_sigalgs(void **state)
{
	static const uint8_t modern[] = {0x00, 0x06, 0x04, 0x03, 0x08, 0x04, 0x08, 0x07};
	static const uint8_t rsa_only[] = {0x00, 0x04, 0x04, 0x01, 0x08, 0x09};
	static const uint8_t bad_len[] = {0x00, 0x05, 0x04, 0x03, 0x08, 0x04, 0x08};
	static const uint8_t pss_only[] = {0x00, 0x02, 0x08, 0x0a};

	(void)state;
	assert_int_equal(tls_allowed_from_sigalgs(modern, sizeof(modern)), TLS_ALLOW_ALL);
	assert_int_equal(tls_allowed_from_sigalgs(rsa_only, sizeof(rsa_only)), TLS_ALLOW_RSA);
	assert_int_equal(tls_allowed_from_sigalgs(bad_len, sizeof(bad_len)), 0);
	assert_int_equal(tls_allowed_from_sigalgs(modern, 1), 0);
	assert_int_equal(tls_allowed_from_sigalgs(NULL, 0), 0);
	/* rsa_pss_pss_* needs an RSA-PSS key, which Postern does not load */
	assert_int_equal(tls_allowed_from_sigalgs(pss_only, sizeof(pss_only)), 0);
}

/* ---- corruption of the certificate sections ---- */

static const struct snap_section *sec(const struct snap_header *h, uint32_t kind)
{
	for (uint32_t i = 0; i < h->nsections; i++)
		if (h->sections[i].kind == kind)
			return &h->sections[i];
	fail_msg("no section %u", kind);
	return NULL;
}

static void *at(struct snap_header *h, uint32_t kind)
{
	return (uint8_t *)h + sec(h, kind)->offset;
}

#define CERT(h, i) (((struct snap_tls_cert *)at(h, SNAP_SEC_TLS_CERTS))[i])

static void c_type0(struct snap_header *h)
{
	CERT(h, 0).key_type = 0;
}
static void c_type9(struct snap_header *h)
{
	CERT(h, 1).key_type = SNAP_TLS_KEY_MAX + 1;
}
static void c_key_off(struct snap_header *h)
{
	CERT(h, 0).key.off = 0xfffffff0u;
}
static void c_key_len(struct snap_header *h)
{
	CERT(h, 1).key.len = (uint32_t)sec(h, SNAP_SEC_TLS_DER)->size;
}
static void c_key_empty(struct snap_header *h)
{
	CERT(h, 0).key.len = 0;
}
static void c_chain0(struct snap_header *h)
{
	CERT(h, 1).chain_count = 0;
}
static void c_chain_far(struct snap_header *h)
{
	CERT(h, 1).chain_first = 0xffffffffu;
}
static void c_names_far(struct snap_header *h)
{
	CERT(h, 0).name_count = 0x7fffffffu;
}
static void c_times(struct snap_header *h)
{
	CERT(h, 0).not_before = CERT(h, 0).not_after + 1;
}
static void c_file(struct snap_header *h)
{
	CERT(h, 1).file.len += 1;
}
static void c_chain_entry(struct snap_header *h)
{
	((struct snap_bytes *)at(h, SNAP_SEC_TLS_CERT_CHAIN))[2].off =
	    (uint32_t)sec(h, SNAP_SEC_TLS_DER)->size;
}
static void c_name_str(struct snap_header *h)
{
	((struct snap_str *)at(h, SNAP_SEC_TLS_CERT_NAMES))[1].off = 0x10000000u;
}
static void c_name_empty(struct snap_header *h)
{
	((struct snap_str *)at(h, SNAP_SEC_TLS_CERT_NAMES))[0] = (struct snap_str){0, 0};
}
static void c_name_upper(struct snap_header *h)
{
	struct snap_str s = ((struct snap_str *)at(h, SNAP_SEC_TLS_CERT_NAMES))[0];

	((char *)at(h, SNAP_SEC_STRINGS))[s.off] = 'M';
}
static void c_der_count(struct snap_header *h)
{
	((struct snap_section *)sec(h, SNAP_SEC_TLS_DER))->count -= 1;
}
static void c_missing(struct snap_header *h)
{
	((struct snap_section *)sec(h, SNAP_SEC_TLS_CERT_CHAIN))->kind = 99;
}

static void test_corruption(void **state)
{
	static const struct {
		void (*mutate)(struct snap_header *h);
		const char *want; /* %u: DER bytes, %c: chain entries, %n: names */
	} cases[] = {
	    {c_type0, "certificate 0: key type 0 out of range"},
	    {c_type9, "certificate 1: key type 4 out of range"},
	    {c_key_off, "private key of certificate 0: bytes [4294967280, +%k) outside the %u"
	                " DER bytes"},
	    {c_key_len, "private key of certificate 1: bytes [%o, +%u) outside the %u DER bytes"},
	    {c_key_empty, "private key of certificate 0: bytes [0, +0) outside the %u DER bytes"},
	    {c_chain0, "certificate 1: chain [2, +0) outside the %c chain entries"},
	    {c_chain_far, "certificate 1: chain [4294967295, +2) outside the %c chain entries"},
	    {c_names_far, "certificate 0: names [0, +2147483647) outside the %n names"},
	    {c_times, "certificate 0: not_before after not_after"},
	    {c_file, NULL}, /* "certificate file of entry 1: string [...]": checked by prefix */
	    {c_chain_entry, "chain entry 2: bytes [%u, +%l) outside the %u DER"
	                    " bytes"},
	    {c_name_str, "certificate name of entry 1: string [268435456, +13) is not a string of"
	                 " the strings section"},
	    {c_name_empty, "certificate name 0: length 0"},
	    {c_name_upper, "certificate name 0: not lowercased"},
	    {c_der_count, "tls certificates: DER section count %d is not its size %u"},
	    {c_missing, "tls certificates: the certificate, name, chain and DER sections come"
	                " together"},
	};
	size_t len;
	void *good = build("ec.pem rsa.pem", &len, NULL);
	struct snap_header *gh = good;
	const struct snap_tls_cert *gc = at(gh, SNAP_SEC_TLS_CERTS);
	uint32_t der = (uint32_t)sec(gh, SNAP_SEC_TLS_DER)->size;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		void *blob = malloc(len);
		struct snap_header *h = blob;
		char err[512], want[512];
		size_t o = 0;

		memcpy(blob, good, len);
		cases[i].mutate(h);
		h->checksum = snap_checksum(blob, len);
		assert_int_not_equal(snap_validate(blob, len, err, sizeof(err)), 0);
		if (cases[i].want == NULL) {
			assert_memory_equal(err, "certificate file of entry 1: string [", 37);
			free(blob);
			continue;
		}
		for (const char *w = cases[i].want; *w != '\0' && o + 20 < sizeof(want); w++) {
			if (*w != '%') {
				want[o++] = *w;
				continue;
			}
			switch (*++w) {
			case 'u':
				o += (size_t)snprintf(want + o, sizeof(want) - o, "%u", der);
				break;
			case 'd':
				o += (size_t)snprintf(want + o, sizeof(want) - o, "%u", der - 1);
				break;
			case 'k':
				o += (size_t)snprintf(want + o, sizeof(want) - o, "%u",
				                      gc[0].key.len);
				break;
			case 'o':
				o += (size_t)snprintf(want + o, sizeof(want) - o, "%u",
				                      gc[1].key.off);
				break;
			case 'l':
				o += (size_t)snprintf(
				    want + o, sizeof(want) - o, "%u",
				    ((struct snap_bytes *)at(gh, SNAP_SEC_TLS_CERT_CHAIN))[2].len);
				break;
			case 'c':
				o += (size_t)snprintf(want + o, sizeof(want) - o, "%u",
				                      sec(gh, SNAP_SEC_TLS_CERT_CHAIN)->count);
				break;
			case 'n':
				o += (size_t)snprintf(want + o, sizeof(want) - o, "%u",
				                      sec(gh, SNAP_SEC_TLS_CERT_NAMES)->count);
				break;
			}
		}
		want[o] = '\0';
		if (strcmp(err, want) != 0)
			fail_msg("case %zu:\n got  %s\n want %s", i, err, want);
		free(blob);
	}
	free(good);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_refusals),   cmocka_unit_test(test_accepted),
	    cmocka_unit_test(test_round_trip), cmocka_unit_test(test_no_certificates),
	    cmocka_unit_test(test_sigalgs),    cmocka_unit_test(test_corruption),
	};
	int rc = cmocka_run_group_tests(tests, setup, teardown);

	OPENSSL_cleanup(); /* so LeakSanitizer sees only our own leaks */
	return rc;
}
