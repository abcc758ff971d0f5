/*
 * tls_client.h - outbound TLS policy as Postfix defines it
 * (postfix.org/TLS_README.html "Client-side TLS security levels",
 * smtp_tls_policy_maps): how one SSL is set up for a level and its
 * attributes, and whether the finished handshake meets the level.
 * No DPDK: unit tests drive it over two tls_streams in memory.
 *
 * Levels (enum snap_tls_level):
 *   none        no STARTTLS.
 *   may         STARTTLS when offered, nothing checked; the caller falls
 *               back to plaintext when the handshake fails.
 *   encrypt     TLS required, the certificate is not checked.
 *   fingerprint TLS required, the leaf certificate's SHA-256 digest or the
 *               digest of its public key (DER SubjectPublicKeyInfo) is one
 *               of match= ("AB:CD:..", '|'-separated). No chain, no names.
 *   verify      TLS required, the chain verifies to a trust anchor (tafile=
 *               of the entry, else smtp_tls_CAfile) and a name of the leaf
 *               matches a match= strategy; default "hostname".
 *   secure      as verify, default match "nexthop:dot-nexthop".
 * Match strategies (':'-separated): "hostname" - the next-hop host;
 * "nexthop" - the next-hop destination; "dot-nexthop" - any sub-domain of
 * it; "name" - that name; ".name" - any sub-domain of name. Names are
 * compared by X509_check_host (subjectAltName DNS, RFC 6125 wildcards in
 * the certificate's left-most label, CN only without DNS names). Postern
 * runs no DNS yet, so next hops are IP literals: a strategy whose name is
 * an IPv4 literal matches an IP subjectAltName (X509_check_ip_asc).
 *
 * Protocols: TLS 1.2 and 1.3 unless protocols= narrows them (Postfix
 * syntax compiled to SNAP_TLS_P_* bits; the lowest and highest allowed
 * version bound the handshake). Ciphers: the grade of ciphers= (export and
 * low do not exist in OpenSSL 3 and mean medium), minus exclude=.
 */
#ifndef PG_TLS_CLIENT_H
#define PG_TLS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "snap_format.h"

#define TLS_POLICY_TEXT_MAX 255
#define TLS_MATCH_MAX 1023

/* A policy as a connection needs it: a copy, independent of the snapshot. */
struct tls_client_policy {
	uint8_t level;      /* enum snap_tls_level */
	uint8_t grade;      /* enum snap_tls_grade */
	uint16_t protocols; /* SNAP_TLS_P_*; 0 = TLS 1.2 and 1.3 */
	uint32_t flags;     /* SNAP_TLS_F_* */
	char match[TLS_MATCH_MAX + 1];
	char exclude[TLS_POLICY_TEXT_MAX + 1];
	char servername[SNAP_NAME_MAX + 1];
	char source[TLS_POLICY_TEXT_MAX + 1]; /* the entry as written, or "default" */
	X509_STORE *store; /* trust anchors for verify/secure; a reference, or NULL */
};

/* What the handshake showed, for the verdict and the delivery record. */
enum tls_verdict {
	TLS_VERDICT_NONE = 0,     /* no TLS */
	TLS_VERDICT_ANONYMOUS,    /* TLS, the certificate was not checked (may, encrypt) */
	TLS_VERDICT_UNTRUSTED,    /* the chain did not verify */
	TLS_VERDICT_TRUSTED,      /* the chain verified, no match= name matched */
	TLS_VERDICT_VERIFIED,     /* chain and name */
	TLS_VERDICT_FP_MATCHED,   /* fingerprint level: a pinned digest matched */
	TLS_VERDICT_FP_MISMATCH,  /* fingerprint level: none matched */
};

const char *tls_verdict_name(enum tls_verdict v); /* "verified", ... */

struct tls_peer {
	enum tls_verdict verdict;
	char protocol[16];          /* "TLSv1.3" */
	char cipher[64];            /* "TLS_AES_256_GCM_SHA384" */
	char subject[160];          /* RFC 2253 one-line subject of the leaf */
	char issuer[160];
	char fingerprint[96];       /* SHA-256 of the leaf DER, "AB:CD:.." */
	char pkey_fingerprint[96];  /* SHA-256 of its SubjectPublicKeyInfo */
	char verify_error[96];      /* X509_verify_cert_error_string, "" if ok */
	char matched[SNAP_NAME_MAX + 1]; /* the name or digest that matched */
	bool resumed;
};

/*
 * The client context of a worker: certificates are checked after the
 * handshake (tls_client_check), so verification never aborts it inside
 * OpenSSL. NULL on failure.
 */
SSL_CTX *tls_client_ctx_new(void);

/*
 * Set up ssl (before its first handshake step) for policy p: versions,
 * ciphers, SNI, and the trust store. host is the next-hop host (a name or
 * an IPv4 literal). PG_OK, or PG_ERROR with why (a cipher list OpenSSL
 * refuses, ...): the delivery is then deferred, never downgraded.
 */
int tls_client_prepare(SSL *ssl, const struct tls_client_policy *p, const char *host, char *why,
                       size_t whylen);

/*
 * After the handshake: fill *peer and decide whether the session meets
 * the level. host is the next-hop host, nexthop the next-hop destination
 * (the same for "[host]" next hops; the recipient domain for MX delivery).
 * PG_OK, or PG_DECLINED with why ("Server certificate not trusted: ...").
 */
int tls_client_check(SSL *ssl, const struct tls_client_policy *p, const char *host,
                     const char *nexthop, struct tls_peer *peer, char *why, size_t whylen);

/*
 * A trust store from DER certificates (smtp_tls_CAfile, tafile=).
 * partial_chain: a trust anchor need not be self-signed (tafile=, as
 * Postfix). NULL if out of memory or if a blob does not parse.
 */
X509_STORE *tls_store_from_der(const uint8_t *const *der, const size_t *len, size_t n,
                               bool partial_chain);
/* Add one DER certificate to st: PG_OK, or PG_ERROR if it does not parse. */
int tls_store_add_der(X509_STORE *st, const uint8_t *der, size_t len);

/* "AB:CD:.." of a SHA-256 digest. out must hold 96 bytes. */
void tls_hex_colon(const uint8_t *md, size_t n, char *out, size_t outlen);

#endif
