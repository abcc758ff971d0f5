/*
 * trust.h - the outbound TLS trust anchors: the CA certificates of
 * postern.conf smtp_tls_CAfile and of tls_policy tafile= attributes, read
 * from PEM bundles with OpenSSL 3 and kept as DER for the snapshot
 * (SNAP_SEC_TLS_TRUST, snap_format.h). posternd is the only PEM parser: the
 * dataplane builds its X509_STOREs from DER.
 */
#ifndef PG_TRUST_H
#define PG_TRUST_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"

#define TRUST_FILE_MAX (16u << 20) /* a system CA bundle is a few hundred KB */
#define TRUST_CERTS_MAX 10000      /* certificates in one bundle */

/* The certificates of one PEM file, in file order. */
struct trust_bundle {
	char *file;    /* the path opened; NULL for an empty bundle */
	uint32_t n;    /* certificates: at least 1 once read */
	uint8_t **der; /* [n] X.509 DER */
	size_t *len;   /* [n] */
};

/*
 * Read a PEM file of CA certificates into *out: every PEM block must be a
 * CERTIFICATE that parses (text between blocks, such as the comments of a
 * system bundle, is skipped), and there must be at least one. A private
 * key, a CRL or any other block is refused rather than ignored. PG_OK, or
 * PG_ERROR with the reason, without the path, in why ("cannot open: ...",
 * "no certificate (...)", "PEM block 2 is malformed: ...", "PEM block 1:
 * not a valid X.509 certificate", ...); *out is empty then.
 */
int trust_read_pem(const char *path, struct trust_bundle *out, char *why, size_t whylen);
void trust_bundle_free(struct trust_bundle *b);

/*
 * conf->smtp_tls_cafile (relative to conf->dir unless absolute) into *out;
 * an empty bundle when it is not set. PG_OK, or PG_ERROR with
 * "CONFDIR/postern.conf:LINE: smtp_tls_CAfile FILE: reason".
 */
int trust_load_cafile(const struct pg_conf *conf, struct trust_bundle *out, char *err,
                      size_t errlen);

#endif
