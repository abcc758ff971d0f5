/*
 * trust.c - read the PEM bundles of outbound trust anchors (trust.h):
 * smtp_tls_CAfile of postern.conf here, tafile= of tls_policy through
 * policy.c. Every certificate must parse, so a damaged bundle is refused at
 * load time with the file and line that named it instead of failing every
 * verify-level delivery later.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "files.h"
#include "result.h"
#include "trust.h"

static int trust_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int trust_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	ERR_clear_error(); /* nothing of this file may leak into the next one */
	return PG_ERROR;
}

void trust_bundle_free(struct trust_bundle *b)
{
	for (uint32_t i = 0; i < b->n; i++)
		free(b->der[i]);
	free(b->der);
	free(b->len);
	free(b->file);
	memset(b, 0, sizeof(*b));
}

/* Append one certificate's DER (a copy of data). */
static int trust_add(struct trust_bundle *b, const unsigned char *data, size_t n, char *why,
                     size_t whylen)
{
	uint8_t **der = realloc(b->der, (b->n + 1) * sizeof(*der));
	size_t *len;

	if (der == NULL)
		return trust_why(why, whylen, "out of memory");
	b->der = der;
	len = realloc(b->len, (b->n + 1) * sizeof(*len));
	if (len == NULL)
		return trust_why(why, whylen, "out of memory");
	b->len = len;
	if ((b->der[b->n] = malloc(n)) == NULL)
		return trust_why(why, whylen, "out of memory");
	memcpy(b->der[b->n], data, n);
	b->len[b->n] = n;
	b->n++;
	return PG_OK;
}

struct trust_walk {
	struct trust_bundle *b;
	char *why;
	size_t whylen;
};

/* One PEM block: a certificate that parses, nothing else. */
static int trust_block(const struct pem_block *blk, void *owner)
{
	struct trust_walk *t = owner;
	const unsigned char *p = blk->data;
	X509 *c;
	int rc;

	if (strcmp(blk->name, "CERTIFICATE") != 0)
		return trust_why(t->why, t->whylen,
		                 "PEM block %u: unexpected \"%.60s\" (CA certificates only)",
		                 blk->index, blk->name);
	c = d2i_X509(NULL, &p, blk->len);
	if (c == NULL || p != blk->data + blk->len)
		rc = trust_why(t->why, t->whylen, "PEM block %u: not a valid X.509 certificate",
		               blk->index);
	else if (t->b->n == TRUST_CERTS_MAX)
		rc = trust_why(t->why, t->whylen, "more than %d certificates", TRUST_CERTS_MAX);
	else
		rc = trust_add(t->b, blk->data, (size_t)blk->len, t->why, t->whylen);
	X509_free(c);
	return rc;
}

/* The PEM blocks of text: certificates only, each one parsed. */
static int trust_parse_pem(const char *text, size_t len, struct trust_bundle *b, char *why,
                           size_t whylen)
{
	struct trust_walk t = {b, why, whylen};
	int rc = files_pem_blocks(text, len, trust_block, &t, why, whylen);

	if (rc == PG_DECLINED)
		rc = trust_why(why, whylen,
		               "no certificate (no \"-----BEGIN CERTIFICATE-----\" line)");
	ERR_clear_error();
	return rc;
}

int trust_read_pem(const char *path, struct trust_bundle *out, char *why, size_t whylen)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (files_read(path, TRUST_FILE_MAX, false, &text, &len, why, whylen) != PG_OK)
		return PG_ERROR;
	rc = trust_parse_pem(text, len, out, why, whylen);
	free(text);
	if (rc == PG_OK && (out->file = strdup(path)) == NULL)
		rc = trust_why(why, whylen, "out of memory");
	if (rc != PG_OK)
		trust_bundle_free(out);
	return rc;
}

int trust_load_cafile(const struct pg_conf *conf, struct trust_bundle *out, char *err,
                      size_t errlen)
{
	const char *f = conf->smtp_tls_cafile;
	char path[CONF_PATH_MAX * 2], why[512];

	memset(out, 0, sizeof(*out));
	if (f[0] == '\0')
		return PG_OK;
	/* relative names are relative to the configuration directory */
	snprintf(path, sizeof(path), "%s%s%s", f[0] == '/' ? "" : conf->dir, f[0] == '/' ? "" : "/",
	         f);
	if (trust_read_pem(path, out, why, sizeof(why)) != PG_OK) {
		snprintf(err, errlen, "%s:%u: smtp_tls_CAfile %s: %s", conf->path,
		         conf->smtp_tls_cafile_line, path, why);
		return PG_ERROR;
	}
	return PG_OK;
}
