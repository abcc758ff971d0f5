/*
 * test_tls.c - crypto/tls_stream and crypto/tls_client without a network:
 * two streams pass ciphertext to each other in memory, in pieces of
 * varying size. Certificates are made at test time with OpenSSL: a CA, a
 * leaf it signed for mx.test and 10.0.0.1, an expired one, one for
 * another name, and a self-signed one. Each outbound level is judged
 * against each of them as Postfix defines the levels.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "result.h"
#include "tls_client.h"
#include "tls_stream.h"

struct cred {
	EVP_PKEY *key;
	X509 *cert;
};

static struct cred ca, good, expired, wrongname, selfsigned;
static SSL_CTX *client_ctx;

static EVP_PKEY *make_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	assert_non_null(k);
	return k;
}

/* A certificate for key, signed by issuer (NULL: self-signed). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *san, const struct cred *issuer,
                       long from_s, long to_s, bool is_ca)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	X509V3_CTX v3;
	static long serial = 1;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), from_s);
	X509_gmtime_adj(X509_getm_notAfter(x), to_s);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer->cert) : n);
	X509V3_set_ctx(&v3, issuer != NULL ? issuer->cert : x, x, NULL, NULL, 0);
	if (is_ca) {
		X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints, "critical,CA:TRUE");

		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
		e = X509V3_EXT_conf_nid(NULL, &v3, NID_key_usage, "critical,keyCertSign,cRLSign");
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	if (san != NULL) {
		X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);

		assert_non_null(e);
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	assert_true(X509_sign(x, issuer != NULL ? issuer->key : key, EVP_sha256()) > 0);
	X509_NAME_free(n);
	return x;
}

static int setup(void **state)
{
	(void)state;
	ca.key = make_key();
	ca.cert = make_cert(ca.key, "Test CA", NULL, NULL, -3600, 86400 * 30, true);
	good.key = make_key();
	good.cert = make_cert(good.key, "mx.test", "DNS:mx.test,IP:10.0.0.1", &ca, -3600, 86400, false);
	expired.key = make_key();
	expired.cert = make_cert(expired.key, "mx.test", "DNS:mx.test", &ca, -86400 * 10, -86400, false);
	wrongname.key = make_key();
	wrongname.cert = make_cert(wrongname.key, "other.example", "DNS:other.example", &ca, -3600, 86400,
	                           false);
	selfsigned.key = make_key();
	selfsigned.cert = make_cert(selfsigned.key, "mx.test", "DNS:mx.test", NULL, -3600, 86400, false);
	client_ctx = tls_client_ctx_new();
	assert_non_null(client_ctx);
	return 0;
}

static int teardown(void **state)
{
	struct cred *all[] = {&ca, &good, &expired, &wrongname, &selfsigned};

	(void)state;
	for (size_t i = 0; i < 5; i++) {
		EVP_PKEY_free(all[i]->key);
		X509_free(all[i]->cert);
	}
	SSL_CTX_free(client_ctx);
	return 0;
}

static SSL_CTX *server_ctx(const struct cred *c, int max_version)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_use_certificate(ctx, c->cert), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(ctx, c->key), 1);
	if (max_version != 0)
		SSL_CTX_set_max_proto_version(ctx, max_version);
	return ctx;
}

/* Move up to `piece` bytes of ciphertext from a to b; returns bytes moved. */
static size_t wire(struct tls_stream *a, struct tls_stream *b, size_t piece)
{
	const uint8_t *p;
	size_t n = tls_stream_net_out(a, &p), k;

	if (n > piece)
		n = piece;
	k = tls_stream_net_in(b, p, n);
	tls_stream_net_out_consume(a, k);
	return k;
}

/* Run both handshakes to the end: PG_OK, or the client's/server's error. */
static int handshake(struct tls_stream *c, struct tls_stream *s, int *src, int *srs)
{
	size_t piece = 7;

	for (int round = 0; round < 10000; round++) {
		size_t moved;

		*src = tls_stream_handshake(c);
		*srs = tls_stream_handshake(s);
		moved = wire(c, s, piece) + wire(s, c, piece);
		piece = piece * 3 % 4099 + 1;
		if (*src != PG_AGAIN && *srs != PG_AGAIN && moved == 0)
			break;
		if ((*src == PG_ERROR || *srs == PG_ERROR) && moved == 0)
			break;
	}
	return *src == PG_OK && *srs == PG_OK ? PG_OK : PG_ERROR;
}

static void pair(struct tls_stream *c, struct tls_stream *s, SSL_CTX *sctx)
{
	assert_int_equal(tls_stream_init(c, client_ctx, false), PG_OK);
	assert_int_equal(tls_stream_init(s, sctx, true), PG_OK);
}

static void unpair(struct tls_stream *c, struct tls_stream *s, SSL_CTX *sctx)
{
	assert_int_equal(tls_stream_free(c), PG_OK);
	assert_int_equal(tls_stream_free(s), PG_OK);
	SSL_CTX_free(sctx);
}

/* Send len bytes from a to b through the whole stack, check them. */
static void transfer(struct tls_stream *a, struct tls_stream *b, size_t len)
{
	uint8_t *src = malloc(len), *dst = malloc(len);
	size_t sent = 0, got = 0, piece = 1, retry = 0;

	assert_non_null(src);
	assert_non_null(dst);
	for (size_t i = 0; i < len; i++)
		src[i] = (uint8_t)(i * 131 + (i >> 8));
	for (int round = 0; got < len && round < 1000000; round++) {
		const uint8_t *p;
		size_t n;

		if (sent < len) {
			size_t want = len - sent > piece ? piece : len - sent;
			int k;

			if (want < retry) /* OpenSSL: a retried write offers at least as much */
				want = retry;
			k = tls_stream_write(a, src + sent, want);
			retry = k == PG_AGAIN ? want : 0;

			if (!(k > 0 || k == PG_AGAIN))
				fail_msg("write: %d %s", k, a->why);
			if (k > 0)
				sent += (size_t)k;
		}
		wire(a, b, piece * 2);
		assert_int_not_equal(tls_stream_decrypt(b), PG_ERROR);
		n = tls_stream_plain(b, &p);
		if (n > 3000)
			n = 3000; /* the application takes part of it */
		memcpy(dst + got, p, n);
		tls_stream_plain_consume(b, n);
		got += n;
		piece = piece * 7 % 20000 + 1;
	}
	assert_int_equal(got, len);
	assert_memory_equal(src, dst, len);
	free(src);
	free(dst);
}

static void test_stream_transfer_and_close(void **state)
{
	struct tls_stream *c = malloc(sizeof(*c)), *s = malloc(sizeof(*s));
	SSL_CTX *sctx = server_ctx(&good, 0);
	int rc, rs;
	char info[128];
	const uint8_t *p;

	(void)state;
	pair(c, s, sctx);
	assert_int_equal(handshake(c, s, &rc, &rs), PG_OK);
	tls_stream_describe(c, info, sizeof(info));
	assert_non_null(strstr(info, "TLSv1.3 with cipher TLS_"));
	assert_non_null(strstr(info, " bits)"));
	transfer(c, s, 1 << 20);
	transfer(s, c, 300000);
	/* close_notify ends the peer's stream after what was buffered */
	assert_int_equal(tls_stream_write(c, (const uint8_t *)"QUIT\r\n", 6), 6);
	tls_stream_shutdown(c);
	wire(c, s, 100000);
	assert_int_equal(tls_stream_decrypt(s), PG_DONE);
	assert_int_equal(tls_stream_plain(s, &p), 6);
	assert_memory_equal(p, "QUIT\r\n", 6);
	unpair(c, s, sctx);
	free(c);
	free(s);
}

static void test_stream_garbage_fails(void **state)
{
	struct tls_stream *c = malloc(sizeof(*c));
	const char junk[] = "220 this is not TLS at all\r\n";

	(void)state;
	assert_int_equal(tls_stream_init(c, client_ctx, false), PG_OK);
	assert_int_equal(tls_stream_handshake(c), PG_AGAIN);
	assert_int_equal(tls_stream_net_in(c, (const uint8_t *)junk, sizeof(junk) - 1),
	                 sizeof(junk) - 1);
	assert_int_equal(tls_stream_handshake(c), PG_ERROR);
	assert_true(c->failed);
	assert_non_null(strstr(c->why, "handshake: "));
	assert_int_equal(tls_stream_write(c, (const uint8_t *)"x", 1), PG_ERROR);
	assert_int_equal(tls_stream_free(c), PG_OK);
	free(c);
}

static void policy(struct tls_client_policy *p, uint8_t level, const char *match, X509_STORE *st)
{
	memset(p, 0, sizeof(*p));
	p->level = level;
	snprintf(p->match, sizeof(p->match), "%s", match);
	p->store = st;
}

static X509_STORE *ca_store(void)
{
	X509_STORE *st = X509_STORE_new();

	assert_int_equal(X509_STORE_add_cert(st, ca.cert), 1);
	return st;
}

/* One delivery's TLS: handshake with cred, then the level's verdict. */
static int judge(const struct cred *cr, const struct tls_client_policy *p, const char *host,
                 const char *nexthop, struct tls_peer *peer, char *why, size_t whylen)
{
	struct tls_stream *c = malloc(sizeof(*c)), *s = malloc(sizeof(*s));
	SSL_CTX *sctx = server_ctx(cr, 0);
	int rc, rs, v;

	pair(c, s, sctx);
	assert_int_equal(tls_client_prepare(c->ssl, p, host, why, whylen), PG_OK);
	assert_int_equal(handshake(c, s, &rc, &rs), PG_OK); /* never aborted inside OpenSSL */
	why[0] = '\0';
	v = tls_client_check(c->ssl, p, host, nexthop, peer, why, whylen);
	unpair(c, s, sctx);
	free(c);
	free(s);
	return v;
}

static void fingerprint_of(X509 *x, bool pubkey, char *out, size_t outlen)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned n = 0;

	if (pubkey)
		assert_int_equal(X509_pubkey_digest(x, EVP_sha256(), md, &n), 1);
	else
		assert_int_equal(X509_digest(x, EVP_sha256(), md, &n), 1);
	tls_hex_colon(md, n, out, outlen);
}

static void test_levels(void **state)
{
	X509_STORE *st = ca_store();
	struct tls_client_policy p;
	struct tls_peer peer;
	char why[256], fp[96], pfp[96];
	const struct {
		const struct cred *cred;
		uint8_t level;
		const char *match;
		bool store;
		const char *host;
		int want;
		enum tls_verdict verdict;
		const char *why;
	} rows[] = {
	    /* may and encrypt check nothing */
	    {&selfsigned, SNAP_TLS_MAY, "", false, "10.0.0.1", PG_OK, TLS_VERDICT_ANONYMOUS, ""},
	    {&expired, SNAP_TLS_ENCRYPT, "", false, "10.0.0.1", PG_OK, TLS_VERDICT_ANONYMOUS, ""},
	    /* verify: chain and name */
	    {&good, SNAP_TLS_VERIFY, "mx.test", true, "10.0.0.1", PG_OK, TLS_VERDICT_VERIFIED, ""},
	    {&good, SNAP_TLS_VERIFY, "", true, "10.0.0.1", PG_OK, TLS_VERDICT_VERIFIED, ""}, /* IP SAN */
	    {&good, SNAP_TLS_VERIFY, "", true, "10.0.0.9", PG_DECLINED, TLS_VERDICT_TRUSTED,
	     "Server certificate not verified: no name"},
	    {&good, SNAP_TLS_VERIFY, "mx.test", false, "10.0.0.1", PG_DECLINED,
	     TLS_VERDICT_UNTRUSTED, "Server certificate not trusted: unable to get local issuer"},
	    {&wrongname, SNAP_TLS_VERIFY, "mx.test", true, "10.0.0.1", PG_DECLINED,
	     TLS_VERDICT_TRUSTED, "not verified"},
	    {&expired, SNAP_TLS_VERIFY, "mx.test", true, "10.0.0.1", PG_DECLINED,
	     TLS_VERDICT_UNTRUSTED, "certificate has expired"},
	    {&selfsigned, SNAP_TLS_VERIFY, "mx.test", true, "10.0.0.1", PG_DECLINED,
	     TLS_VERDICT_UNTRUSTED, "not trusted"},
	    {&good, SNAP_TLS_VERIFY, "other.example:.test", true, "10.0.0.1", PG_OK,
	     TLS_VERDICT_VERIFIED, ""}, /* ".test": sub-domains */
	    /* secure: nexthop:dot-nexthop by default (nexthop "test" below) */
	    {&good, SNAP_TLS_SECURE, "", true, "10.0.0.1", PG_OK, TLS_VERDICT_VERIFIED, ""},
	    {&wrongname, SNAP_TLS_SECURE, "", true, "10.0.0.1", PG_DECLINED, TLS_VERDICT_TRUSTED,
	     "nexthop:dot-nexthop"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int v;

		policy(&p, rows[i].level, rows[i].match, rows[i].store ? st : NULL);
		v = judge(rows[i].cred, &p, rows[i].host, "test", &peer, why, sizeof(why));
		if (v != rows[i].want || peer.verdict != rows[i].verdict ||
		    strstr(why, rows[i].why) == NULL)
			fail_msg("row %zu: got %d %s \"%s\"", i, v, tls_verdict_name(peer.verdict), why);
		assert_string_equal(peer.protocol, "TLSv1.3");
		assert_non_null(strstr(peer.subject, "CN="));
	}
	/* fingerprint: the certificate's digest or its public key's; nothing else matters */
	fingerprint_of(selfsigned.cert, false, fp, sizeof(fp));
	fingerprint_of(selfsigned.cert, true, pfp, sizeof(pfp));
	snprintf(why, sizeof(why), "00:11|%s", fp);
	policy(&p, SNAP_TLS_FINGERPRINT, why, NULL);
	assert_int_equal(judge(&selfsigned, &p, "10.0.0.1", "test", &peer, why, sizeof(why)), PG_OK);
	assert_int_equal(peer.verdict, TLS_VERDICT_FP_MATCHED);
	assert_string_equal(peer.fingerprint, fp);
	assert_string_equal(peer.matched, fp);
	policy(&p, SNAP_TLS_FINGERPRINT, pfp, NULL);
	assert_int_equal(judge(&selfsigned, &p, "10.0.0.1", "test", &peer, why, sizeof(why)), PG_OK);
	assert_string_equal(peer.pkey_fingerprint, pfp);
	policy(&p, SNAP_TLS_FINGERPRINT, fp, st);
	assert_int_equal(judge(&good, &p, "10.0.0.1", "test", &peer, why, sizeof(why)), PG_DECLINED);
	assert_int_equal(peer.verdict, TLS_VERDICT_FP_MISMATCH);
	assert_non_null(strstr(why, "fingerprint"));
	X509_STORE_free(st);
}

/* tafile= trust anchors may be intermediates or the leaf itself (partial chains). */
static void test_store_from_der(void **state)
{
	unsigned char *der = NULL;
	int len = i2d_X509(good.cert, &der);
	const uint8_t *blobs[1] = {der};
	size_t lens[1] = {(size_t)len};
	size_t bad = (size_t)len - 1;
	X509_STORE *st;
	struct tls_client_policy p;
	struct tls_peer peer;
	char why[256];

	(void)state;
	assert_true(len > 0);
	assert_null(tls_store_from_der(blobs, &bad, 1, true));
	st = tls_store_from_der(blobs, lens, 1, true);
	assert_non_null(st);
	policy(&p, SNAP_TLS_VERIFY, "mx.test", st);
	assert_int_equal(judge(&good, &p, "10.0.0.1", "test", &peer, why, sizeof(why)), PG_OK);
	X509_STORE_free(st);
	st = tls_store_from_der(blobs, lens, 1, false); /* a leaf is no root without partial chains */
	policy(&p, SNAP_TLS_VERIFY, "mx.test", st);
	assert_int_equal(judge(&good, &p, "10.0.0.1", "test", &peer, why, sizeof(why)), PG_DECLINED);
	X509_STORE_free(st);
	OPENSSL_free(der);
}

/* protocols= narrows the versions: a TLS 1.2-only server fails a TLS 1.3-only policy. */
static void test_protocols(void **state)
{
	struct tls_stream *c = malloc(sizeof(*c)), *s = malloc(sizeof(*s));
	SSL_CTX *sctx = server_ctx(&good, TLS1_2_VERSION);
	struct tls_client_policy p;
	char why[256];
	int rc, rs;

	(void)state;
	policy(&p, SNAP_TLS_ENCRYPT, "", NULL);
	p.protocols = SNAP_TLS_P_TLSV1_3;
	pair(c, s, sctx);
	assert_int_equal(tls_client_prepare(c->ssl, &p, "10.0.0.1", why, sizeof(why)), PG_OK);
	assert_int_equal(handshake(c, s, &rc, &rs), PG_ERROR);
	assert_true(c->failed || s->failed);
	unpair(c, s, sctx);
	/* TLS 1.2 allowed: the same server works, and exclude= is applied */
	sctx = server_ctx(&good, TLS1_2_VERSION);
	p.protocols = SNAP_TLS_P_TLSV1_2 | SNAP_TLS_P_TLSV1_3;
	snprintf(p.exclude, sizeof(p.exclude), "ECDHE-ECDSA-AES256-GCM-SHA384");
	pair(c, s, sctx);
	assert_int_equal(tls_client_prepare(c->ssl, &p, "10.0.0.1", why, sizeof(why)), PG_OK);
	assert_int_equal(handshake(c, s, &rc, &rs), PG_OK);
	assert_string_equal(SSL_get_version(c->ssl), "TLSv1.2");
	assert_string_not_equal(SSL_CIPHER_get_name(SSL_get_current_cipher(c->ssl)),
	                        "ECDHE-ECDSA-AES256-GCM-SHA384");
	unpair(c, s, sctx);
	/* a protocols= set with no TLS version is refused, never weakened */
	p.protocols = SNAP_TLS_P_SSLV3;
	assert_int_equal(tls_stream_init(c, client_ctx, false), PG_OK);
	assert_int_equal(tls_client_prepare(c->ssl, &p, "10.0.0.1", why, sizeof(why)), PG_ERROR);
	assert_int_equal(tls_stream_free(c), PG_OK);
	free(c);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stream_transfer_and_close),
	    cmocka_unit_test(test_stream_garbage_fails),
	    cmocka_unit_test(test_levels),
	    cmocka_unit_test(test_store_from_der),
	    cmocka_unit_test(test_protocols),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
