/*
 * certs.h - the inbound TLS certificates of postern.conf tls_certificates:
 * each PEM file (private key + chain, leaf first, like Postfix
 * smtpd_tls_chain_files) read and validated with OpenSSL 3, and kept as DER
 * for the snapshot (SNAP_SEC_TLS_CERTS, snap_format.h); and posternd's
 * answers to `posternctl cert list|show`, computed from the published
 * snapshot with the same selection code the dataplane runs
 * (crypto/tls_certs.h).
 */
#ifndef PG_CERTS_H
#define PG_CERTS_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "report.h"
#include "snap_format.h"

#define CERTS_FILE_MAX (1u << 20) /* a PEM chain file is a few KB */
#define CERTS_CHAIN_MAX 10        /* certificates in one file */
#define CERTS_NAMES_MAX 1024      /* DNS names of one leaf */
#define CERTS_RSA_MIN_BITS 2048

/* One PEM file of tls_certificates, validated. */
struct cert_entry {
	char *file;       /* the path opened: DIR/NAME for a relative NAME */
	unsigned line;    /* of tls_certificates in postern.conf */
	uint8_t key_type; /* enum snap_tls_key_type */
	uint32_t key_bits;
	uint8_t *key_der; /* PKCS#8 PrivateKeyInfo; cleansed before it is freed */
	size_t key_len;
	uint32_t nchain;     /* the leaf, then each issuer, as in the file */
	uint8_t **chain_der; /* [nchain] */
	size_t *chain_len;   /* [nchain] */
	uint32_t nnames;     /* leaf subjectAltName DNS names (CN without any) */
	char **names;        /* lowercased, deduplicated, in certificate order */
	int64_t not_before;  /* leaf validity, unix seconds */
	int64_t not_after;
	uint8_t sha256[32]; /* of the leaf DER */
};

struct pg_certs {
	size_t n;
	struct cert_entry *entries; /* configuration order */
};

/*
 * Read and validate every file of conf->tls_certificates into *out (empty
 * when the key is not set). Checks, in this order, each stopping the load:
 * the file opens and reads; its PEM blocks parse (a private key, unencrypted,
 * and 1..CERTS_CHAIN_MAX certificates); the key type is RSA >= 2048 bits,
 * ECDSA P-256/P-384 or Ed25519; the key matches the first certificate (the
 * leaf); the leaf is valid now (notBefore, notAfter); each certificate is
 * issued by the next; the leaf's DNS names are host names or "*." wildcards;
 * no two files of the same key type cover the same name. PG_OK, or PG_ERROR
 * with "PEMFILE: message (from CONFDIR/postern.conf:LINE)".
 */
int certs_load(const struct pg_conf *conf, struct pg_certs *out, char *err, size_t errlen);
void certs_free(struct pg_certs *certs);

/* "RSA", "ECDSA", "Ed25519" (or "?"). */
const char *certs_key_type_name(unsigned key_type);
/* "RSA-2048", "ECDSA-P256", "Ed25519". */
void certs_key_label(unsigned key_type, uint32_t key_bits, char *buf, size_t len);
/* "AB:CD:..." (95 characters + NUL). */
void certs_fingerprint_hex(const uint8_t sha256[32], char *buf, size_t len);

/*
 * posternd's `cert` command (control/cert_report.c): "cert list [--json]"
 * and "cert show NAME [--json]" over the validated snapshot h of generation
 * gen, now in unix seconds (days left). Returns the verdict "ok" or "error".
 */
const char *ctl_cert_command(struct ctl_buf *b, const struct snap_header *h, uint64_t gen,
                             int64_t now, int argc, char **argv);

#endif
