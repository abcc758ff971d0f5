/*
 * tls_certs.h - the inbound TLS certificates of one snapshot generation as
 * OpenSSL objects, and their selection by SNI. A worker calls
 * tls_certs_load when it adopts a generation and tls_certs_free when it
 * leaves it; everything a set holds is released together. OpenSSL
 * reference-counts the EVP_PKEY and X509 objects, so an SSL or SSL_CTX
 * that took its own references (SSL_use_cert_and_key, SSL_CTX_use_*) keeps
 * working after the set is freed: established connections finish on the
 * old certificate while new ones get the new one (certificate rotation).
 *
 * No DPDK here: posternd uses the same code to answer `posternctl cert
 * show`, so what it explains is what the dataplane does.
 */
#ifndef PG_TLS_CERTS_H
#define PG_TLS_CERTS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "snap_format.h"

#define TLS_KEY_TYPES SNAP_TLS_KEY_MAX /* by_type[] is indexed by key_type - 1 */
#define TLS_SNI_MAX 253                /* RFC 1035 §2.3.4, without the trailing dot */

/* Key types a client can use, as bits of `allowed` (see tls_cert_select). */
#define TLS_ALLOW(key_type) (1u << (key_type))
#define TLS_ALLOW_RSA TLS_ALLOW(SNAP_TLS_KEY_RSA)
#define TLS_ALLOW_ECDSA TLS_ALLOW(SNAP_TLS_KEY_ECDSA)
#define TLS_ALLOW_ED25519 TLS_ALLOW(SNAP_TLS_KEY_ED25519)
#define TLS_ALLOW_ALL (TLS_ALLOW_RSA | TLS_ALLOW_ECDSA | TLS_ALLOW_ED25519)

struct tls_cert {
	EVP_PKEY *key;
	X509 *leaf;
	STACK_OF(X509) * chain; /* the issuers after the leaf, in order; maybe empty */
	uint8_t key_type;       /* enum snap_tls_key_type */
	uint32_t key_bits;
	int64_t not_before, not_after; /* unix seconds */
	uint8_t sha256[32];            /* of the leaf DER */
	const char *file;              /* the PEM file posternd read */
	unsigned line;                 /* of tls_certificates in postern.conf */
	const char *const *names;      /* [nnames], lowercased */
	uint32_t nnames;
	uint32_t index; /* configuration order */
};

/* A name of a certificate, for the sorted lookup array. */
struct tls_cert_name {
	const char *name;
	uint32_t cert;
};

struct tls_cert_set {
	uint32_t n;
	struct tls_cert *certs; /* configuration order */
	uint32_t nnames;
	struct tls_cert_name *names; /* sorted by name, then configuration order */
	uint64_t generation;         /* of the snapshot it came from */
	void *arena;                 /* certs, names and strings: one allocation */
};

enum tls_cert_match {
	TLS_MATCH_EXACT = 1,    /* a certificate names the SNI host */
	TLS_MATCH_WILDCARD = 2, /* "*.example.com" covers it (RFC 6125 §6.4.3) */
	TLS_MATCH_DEFAULT = 3,  /* no SNI, an invalid one, or no certificate names it */
};

struct tls_cert_choice {
	enum tls_cert_match how;
	const char *matched; /* the certificate name that matched; NULL for default */
	/* every certificate at that level, by key type (first configured wins) */
	const struct tls_cert *by_type[TLS_KEY_TYPES];
	/* the one to use: the preferred of by_type among the allowed types */
	const struct tls_cert *cert;
};

/*
 * Turn the certificate sections of a validated snapshot (snap_validate) into
 * OpenSSL objects: each key with d2i_AutoPrivateKey, each certificate with
 * d2i_X509, and check again that every key matches its leaf. A snapshot
 * without the sections (ABI 1.1) gives an empty set. PG_OK, or PG_ERROR
 * with a message and *out empty.
 */
int tls_certs_load(const struct snap_header *h, struct tls_cert_set *out, char *err, size_t errlen);
void tls_certs_free(struct tls_cert_set *set);

/*
 * Normalize an SNI host name (RFC 6066 §3: a DNS host name, no trailing
 * dot, no IP literal) into out, lowercased. -1 if it is not a host name.
 */
int tls_sni_normalize(const char *sni, char *out, size_t outlen);

/*
 * Choose the certificate for a ClientHello. sni is the server_name (NULL or
 * "" if none; an invalid one counts as none). allowed is the set of key
 * types the client can verify (TLS_ALLOW_*; tls_allowed_from_sigalgs
 * computes it from the signature_algorithms extension; TLS_ALLOW_ALL if the
 * caller does not care).
 *
 * Names decide first, then key types: the certificates naming sni exactly;
 * else those whose wildcard covers it ("*.example.com" covers
 * "a.example.com", not "example.com" nor "a.b.example.com"); else the
 * defaults, which are the first configured certificate of each key type.
 * A level is taken only if it has a certificate of an allowed type, and
 * among those ECDSA is preferred, then Ed25519, then RSA (cheaper
 * handshakes). If no certificate at all has an allowed type, the first
 * level that has one is returned with its preferred certificate, and the
 * handshake fails as it must. Fills *out: PG_OK, or PG_DECLINED when the
 * set is empty.
 *
 * A caller that lets OpenSSL choose by signature algorithm can instead
 * install every non-NULL by_type[] certificate on the SSL.
 */
int tls_cert_select(const struct tls_cert_set *set, const char *sni, unsigned allowed,
                    struct tls_cert_choice *out);

/*
 * The key types a client can verify, from the body of its
 * signature_algorithms extension (RFC 8446 §4.2.3: a 2-byte length, then
 * 2-byte SignatureScheme codes), e.g. as SSL_client_hello_get0_ext returns
 * it. 0 if the body is malformed. Without the extension (TLS 1.2, RFC 5246
 * §7.4.1.4.1) a client accepts RSA (and ECDSA if it offers ECDSA suites):
 * that decision stays with the caller.
 */
unsigned tls_allowed_from_sigalgs(const uint8_t *ext, size_t len);

#endif
