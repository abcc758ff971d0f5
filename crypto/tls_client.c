/*
 * tls_client.c - outbound TLS levels, Postfix semantics (tls_client.h).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "result.h"
#include "tls_client.h"

const char *tls_verdict_name(enum tls_verdict v)
{
	switch (v) {
	case TLS_VERDICT_NONE: return "none";
	case TLS_VERDICT_ANONYMOUS: return "anonymous";
	case TLS_VERDICT_UNTRUSTED: return "untrusted";
	case TLS_VERDICT_TRUSTED: return "trusted";
	case TLS_VERDICT_VERIFIED: return "verified";
	case TLS_VERDICT_FP_MATCHED: return "fingerprint-matched";
	case TLS_VERDICT_FP_MISMATCH: return "fingerprint-mismatch";
	}
	return "?";
}

void tls_hex_colon(const uint8_t *md, size_t n, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (size_t i = 0; i < n && o + 3 < outlen; i++) {
		if (i > 0)
			out[o++] = ':';
		out[o++] = hex[md[i] >> 4];
		out[o++] = hex[md[i] & 15];
	}
	if (outlen > 0)
		out[o < outlen ? o : outlen - 1] = '\0';
}

SSL_CTX *tls_client_ctx_new(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* judged by tls_client_check */
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	return ctx;
}

static const int tls_versions[] = {TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION, TLS1_3_VERSION};
static const uint16_t tls_version_bits[] = {SNAP_TLS_P_TLSV1, SNAP_TLS_P_TLSV1_1,
                                            SNAP_TLS_P_TLSV1_2, SNAP_TLS_P_TLSV1_3};

static const char *tls_grade_ciphers(uint8_t grade)
{
	switch (grade) {
	case SNAP_TLS_GRADE_HIGH: return "HIGH:!aNULL:!eNULL";
	case SNAP_TLS_GRADE_NULL: return "eNULL:!aNULL:@SECLEVEL=0";
	default: return "HIGH:MEDIUM:!aNULL:!eNULL"; /* medium; export and low are gone */
	}
}

static bool tls_is_ipv4(const char *s)
{
	struct in_addr a;

	return s != NULL && inet_pton(AF_INET, s, &a) == 1;
}

int tls_client_prepare(SSL *ssl, const struct tls_client_policy *p, const char *host, char *why,
                       size_t whylen)
{
	char list[TLS_POLICY_TEXT_MAX * 2 + 64];
	int lo = 0, hi = 0;
	uint16_t prot = p->protocols != 0 ? p->protocols : SNAP_TLS_P_TLSV1_2 | SNAP_TLS_P_TLSV1_3;

	for (size_t i = 0; i < sizeof(tls_versions) / sizeof(tls_versions[0]); i++) {
		if ((prot & tls_version_bits[i]) == 0)
			continue;
		if (lo == 0)
			lo = tls_versions[i];
		hi = tls_versions[i];
	}
	if (lo == 0) {
		snprintf(why, whylen, "protocols= allows no TLS version");
		return PG_ERROR;
	}
	if (SSL_set_min_proto_version(ssl, lo) != 1 || SSL_set_max_proto_version(ssl, hi) != 1) {
		snprintf(why, whylen, "protocols= cannot be applied");
		ERR_clear_error();
		return PG_ERROR;
	}
	snprintf(list, sizeof(list), "%s", tls_grade_ciphers(p->grade));
	if (p->exclude[0] != '\0') {
		char ex[TLS_POLICY_TEXT_MAX + 1], *save = NULL;

		snprintf(ex, sizeof(ex), "%s", p->exclude);
		for (char *t = strtok_r(ex, ":, ", &save); t != NULL; t = strtok_r(NULL, ":, ", &save)) {
			size_t o = strlen(list);

			snprintf(list + o, sizeof(list) - o, ":!%s", t);
		}
	}
	if (SSL_set_cipher_list(ssl, list) != 1) {
		snprintf(why, whylen, "no usable cipher in \"%s\"", list);
		ERR_clear_error();
		return PG_ERROR;
	}
	if (p->servername[0] != '\0')
		SSL_set_tlsext_host_name(ssl, p->servername);
	else if ((p->flags & SNAP_TLS_F_SNI_HOSTNAME) != 0 && host != NULL && !tls_is_ipv4(host))
		SSL_set_tlsext_host_name(ssl, host);
	if (p->store != NULL && SSL_set1_verify_cert_store(ssl, p->store) != 1) {
		snprintf(why, whylen, "out of memory");
		ERR_clear_error();
		return PG_ERROR;
	}
	return PG_OK;
}

static bool tls_name_matches(X509 *leaf, const char *name, bool subdomains, char *matched,
                             size_t mlen)
{
	char *peer = NULL;

	if (name == NULL || name[0] == '\0')
		return false;
	if (!subdomains && tls_is_ipv4(name)) {
		if (X509_check_ip_asc(leaf, name, 0) == 1) {
			snprintf(matched, mlen, "%s", name);
			return true;
		}
		return false;
	}
	if (subdomains) {
		/* ".example.com": any name below it (X509_CHECK_FLAG_SINGLE_LABEL_SUBDOMAINS is one label) */
		char dot[SNAP_NAME_MAX + 3];

		if (strlen(name) > SNAP_NAME_MAX)
			return false;
		dot[0] = '.';
		memcpy(dot + 1, name, strlen(name) + 1);
		if (X509_check_host(leaf, dot, 0, 0, &peer) == 1) {
			snprintf(matched, mlen, "%s", peer != NULL ? peer : dot);
			OPENSSL_free(peer);
			return true;
		}
		return false;
	}
	if (X509_check_host(leaf, name, 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, &peer) == 1) {
		snprintf(matched, mlen, "%s", peer != NULL ? peer : name);
		OPENSSL_free(peer);
		return true;
	}
	return false;
}

/* verify/secure: does any match= strategy name the leaf? */
static bool tls_match_names(X509 *leaf, const struct tls_client_policy *p, const char *host,
                            const char *nexthop, char *matched, size_t mlen)
{
	char list[TLS_MATCH_MAX + 1], *save = NULL;

	if (p->match[0] != '\0')
		snprintf(list, sizeof(list), "%s", p->match);
	else if (p->level == SNAP_TLS_SECURE)
		snprintf(list, sizeof(list), "nexthop:dot-nexthop");
	else
		snprintf(list, sizeof(list), "hostname");
	for (char *t = strtok_r(list, ":", &save); t != NULL; t = strtok_r(NULL, ":", &save)) {
		bool ok;

		if (strcasecmp(t, "hostname") == 0)
			ok = tls_name_matches(leaf, host, false, matched, mlen);
		else if (strcasecmp(t, "nexthop") == 0)
			ok = tls_name_matches(leaf, nexthop, false, matched, mlen);
		else if (strcasecmp(t, "dot-nexthop") == 0)
			ok = !tls_is_ipv4(nexthop) && tls_name_matches(leaf, nexthop, true, matched, mlen);
		else if (t[0] == '.')
			ok = tls_name_matches(leaf, t + 1, true, matched, mlen);
		else
			ok = tls_name_matches(leaf, t, false, matched, mlen);
		if (ok)
			return true;
	}
	return false;
}

static void tls_leaf_digests(X509 *leaf, struct tls_peer *peer)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;

	if (X509_digest(leaf, EVP_sha256(), md, &mdlen) == 1)
		tls_hex_colon(md, mdlen, peer->fingerprint, sizeof(peer->fingerprint));
	if (X509_pubkey_digest(leaf, EVP_sha256(), md, &mdlen) == 1)
		tls_hex_colon(md, mdlen, peer->pkey_fingerprint, sizeof(peer->pkey_fingerprint));
}

static bool tls_match_fingerprint(const struct tls_client_policy *p, struct tls_peer *peer)
{
	char list[TLS_MATCH_MAX + 1], *save = NULL;

	snprintf(list, sizeof(list), "%s", p->match);
	for (char *t = strtok_r(list, "|", &save); t != NULL; t = strtok_r(NULL, "|", &save)) {
		if (strcasecmp(t, peer->fingerprint) == 0 || strcasecmp(t, peer->pkey_fingerprint) == 0) {
			snprintf(peer->matched, sizeof(peer->matched), "%.*s", (int)sizeof(peer->matched) - 1,
			         t);
			return true;
		}
	}
	return false;
}

int tls_client_check(SSL *ssl, const struct tls_client_policy *p, const char *host,
                     const char *nexthop, struct tls_peer *peer, char *why, size_t whylen)
{
	const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
	X509 *leaf = SSL_get0_peer_certificate(ssl);
	long vr;

	memset(peer, 0, sizeof(*peer));
	snprintf(peer->protocol, sizeof(peer->protocol), "%s", SSL_get_version(ssl));
	snprintf(peer->cipher, sizeof(peer->cipher), "%s", c != NULL ? SSL_CIPHER_get_name(c) : "");
	peer->resumed = SSL_session_reused(ssl) == 1;
	peer->verdict = TLS_VERDICT_ANONYMOUS;
	if (leaf != NULL) {
		X509_NAME_oneline(X509_get_subject_name(leaf), peer->subject, sizeof(peer->subject));
		X509_NAME_oneline(X509_get_issuer_name(leaf), peer->issuer, sizeof(peer->issuer));
		tls_leaf_digests(leaf, peer);
	}
	switch (p->level) {
	case SNAP_TLS_FINGERPRINT:
		if (leaf != NULL && tls_match_fingerprint(p, peer)) {
			peer->verdict = TLS_VERDICT_FP_MATCHED;
			return PG_OK;
		}
		peer->verdict = TLS_VERDICT_FP_MISMATCH;
		snprintf(why, whylen, "Server certificate not verified: fingerprint %s matches no match= digest",
		         leaf != NULL ? peer->fingerprint : "(no certificate)");
		return PG_DECLINED;
	case SNAP_TLS_VERIFY:
	case SNAP_TLS_SECURE:
		break;
	default:
		return PG_OK; /* may, encrypt: encryption is all that is asked */
	}
	if (leaf == NULL) {
		peer->verdict = TLS_VERDICT_UNTRUSTED;
		snprintf(why, whylen, "Server certificate not trusted: the server sent none");
		return PG_DECLINED;
	}
	vr = SSL_get_verify_result(ssl);
	if (vr != X509_V_OK) {
		peer->verdict = TLS_VERDICT_UNTRUSTED;
		snprintf(peer->verify_error, sizeof(peer->verify_error), "%s",
		         X509_verify_cert_error_string(vr));
		snprintf(why, whylen, "Server certificate not trusted: %s", peer->verify_error);
		return PG_DECLINED;
	}
	if (!tls_match_names(leaf, p, host, nexthop, peer->matched, sizeof(peer->matched))) {
		peer->verdict = TLS_VERDICT_TRUSTED;
		snprintf(peer->verify_error, sizeof(peer->verify_error), "no name matches");
		snprintf(why, whylen, "Server certificate not verified: no name of %s matches %s",
		         peer->subject, p->match[0] ? p->match
		                        : p->level == SNAP_TLS_SECURE ? "nexthop:dot-nexthop"
		                                                       : "hostname");
		return PG_DECLINED;
	}
	peer->verdict = TLS_VERDICT_VERIFIED;
	return PG_OK;
}

int tls_store_add_der(X509_STORE *st, const uint8_t *der, size_t len)
{
	const unsigned char *q = der;
	X509 *x = d2i_X509(NULL, &q, (long)len);
	int ok = x != NULL && q == der + len && X509_STORE_add_cert(st, x) == 1;

	X509_free(x);
	if (!ok)
		ERR_clear_error();
	return ok ? PG_OK : PG_ERROR;
}

X509_STORE *tls_store_from_der(const uint8_t *const *der, const size_t *len, size_t n,
                               bool partial_chain)
{
	X509_STORE *st = X509_STORE_new();

	if (st == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (tls_store_add_der(st, der[i], len[i]) != PG_OK) {
			X509_STORE_free(st);
			return NULL;
		}
	}
	if (partial_chain)
		X509_STORE_set_flags(st, X509_V_FLAG_PARTIAL_CHAIN);
	return st;
}
