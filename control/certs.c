/*
 * certs.c - read and validate the PEM files of tls_certificates (certs.h)
 * with OpenSSL 3, keeping what the snapshot needs as DER. posternd is the
 * only process that parses PEM: the dataplane receives DER it can load
 * without a parser for operator input. Every refusal names the PEM file and
 * the postern.conf line that listed it.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "certs.h"
#include "files.h"
#include "result.h"

/* Where a message comes from: the PEM file and the line that listed it. */
struct certs_ctx {
	const struct pg_conf *conf;
	const char *file;
	char *err;
	size_t errlen;
};

static int certs_fail(const struct certs_ctx *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int certs_fail(const struct certs_ctx *x, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(x->err, x->errlen, "%s: %s (from %s:%u)", x->file, msg, x->conf->path,
	         x->conf->tls_certificates_line);
	ERR_clear_error(); /* nothing of this file may leak into the next one */
	return PG_ERROR;
}

const char *certs_key_type_name(unsigned key_type)
{
	switch (key_type) {
	case SNAP_TLS_KEY_RSA:
		return "RSA";
	case SNAP_TLS_KEY_ECDSA:
		return "ECDSA";
	case SNAP_TLS_KEY_ED25519:
		return "Ed25519";
	}
	return "?";
}

void certs_key_label(unsigned key_type, uint32_t key_bits, char *buf, size_t len)
{
	if (key_type == SNAP_TLS_KEY_RSA)
		snprintf(buf, len, "RSA-%" PRIu32, key_bits);
	else if (key_type == SNAP_TLS_KEY_ECDSA)
		snprintf(buf, len, "ECDSA-P%" PRIu32, key_bits);
	else
		snprintf(buf, len, "%s", certs_key_type_name(key_type));
}

void certs_fingerprint_hex(const uint8_t sha256[32], char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (int i = 0; i < 32 && o + 3 < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%02X", i ? ":" : "", sha256[i]);
}

/* "2026-01-31 12:00:00 UTC"; unix seconds in *unix_s. */
static void certs_time(const ASN1_TIME *t, char *buf, size_t len, int64_t *unix_s)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (ASN1_TIME_to_tm(t, &tm) != 1) {
		snprintf(buf, len, "(unreadable time)");
		*unix_s = 0;
		return;
	}
	strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
	*unix_s = (int64_t)timegm(&tm);
}

/* An X509_NAME in RFC 2253 form ("CN=mail.example.com,O=Example"). */
static void certs_subject(const X509 *x, char *buf, size_t len)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n;

	buf[0] = '\0';
	if (b == NULL)
		return;
	X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253);
	n = BIO_read(b, buf, (int)len - 1);
	buf[n > 0 ? n : 0] = '\0';
	BIO_free(b);
}

static int certs_slurp(const struct certs_ctx *x, char **text, size_t *len)
{
	char why[256];

	if (files_read(x->file, CERTS_FILE_MAX, false, text, len, why, sizeof(why)) != PG_OK)
		return certs_fail(x, "%s", why);
	return PG_OK;
}

struct certs_walk {
	const struct certs_ctx *x;
	EVP_PKEY **key;
	STACK_OF(X509) * chain;
	unsigned key_block;
};

static int certs_encrypted_key(const struct certs_ctx *x, unsigned index)
{
	return certs_fail(x,
	                  "PEM block %u: the private key is encrypted; posternd cannot"
	                  " ask for a passphrase (decrypt it with `openssl pkey`)",
	                  index);
}

/* One PEM block of a certificate file (certs_parse_pem). */
static int certs_block(const struct pem_block *b, void *owner)
{
	struct certs_walk *wk = owner;
	const struct certs_ctx *x = wk->x;
	const unsigned char *p = b->data;

	if (strcmp(b->name, "CERTIFICATE") == 0) {
		X509 *c = d2i_X509(NULL, &p, b->len);

		if (c == NULL || p != b->data + b->len) {
			X509_free(c);
			return certs_fail(x, "PEM block %u: not a valid X.509 certificate", b->index);
		}
		if (sk_X509_num(wk->chain) == CERTS_CHAIN_MAX) {
			X509_free(c);
			return certs_fail(x, "more than %d certificates", CERTS_CHAIN_MAX);
		}
		if (!sk_X509_push(wk->chain, c)) {
			X509_free(c);
			return certs_fail(x, "out of memory");
		}
		return PG_OK;
	}
	if (strcmp(b->name, "PRIVATE KEY") == 0 || strcmp(b->name, "RSA PRIVATE KEY") == 0 ||
	    strcmp(b->name, "EC PRIVATE KEY") == 0) {
		if (strstr(b->header, "ENCRYPTED") != NULL)
			return certs_encrypted_key(x, b->index);
		if (*wk->key != NULL)
			return certs_fail(x, "more than one private key (PEM blocks %u and %u)",
			                  wk->key_block, b->index);
		wk->key_block = b->index;
		if ((*wk->key = d2i_AutoPrivateKey(NULL, &p, b->len)) == NULL)
			return certs_fail(x, "PEM block %u: not a valid private key", b->index);
		return PG_OK;
	}
	if (strcmp(b->name, "ENCRYPTED PRIVATE KEY") == 0)
		return certs_encrypted_key(x, b->index);
	if (strcmp(b->name, "EC PARAMETERS") != 0)
		return certs_fail(x,
		                  "PEM block %u: unexpected \"%.60s\" (a private key and"
		                  " certificates only)",
		                  b->index, b->name);
	return PG_OK;
}

/*
 * The PEM blocks of one file: one unencrypted private key (PKCS#8 or the
 * traditional RSA/EC forms) anywhere, and certificates in file order.
 * "EC PARAMETERS" (openssl ecparam -genkey) is skipped; anything else is
 * refused rather than ignored.
 */
static int certs_parse_pem(const struct certs_ctx *x, const char *text, size_t len, EVP_PKEY **key,
                           STACK_OF(X509) * chain)
{
	struct certs_walk wk = {x, key, chain, 0};
	char why[256] = "";
	int rc = files_pem_blocks(text, len, certs_block, &wk, why, sizeof(why));

	if (rc == PG_DECLINED)
		return certs_fail(x, "no PEM data (\"-----BEGIN\" line) found");
	if (rc != PG_OK)
		return why[0] != '\0' ? certs_fail(x, "%s", why) : rc; /* else certs_block said it */
	if (*key == NULL)
		return certs_fail(x, "no private key (each file holds the key and its chain)");
	if (sk_X509_num(chain) == 0)
		return certs_fail(x, "no certificate (each file holds the key and its chain)");
	return PG_OK;
}

/* RSA >= 2048 bits, ECDSA on P-256 or P-384, Ed25519. */
static int certs_key_type(const struct certs_ctx *x, EVP_PKEY *key, struct cert_entry *e)
{
	char group[64];
	size_t glen = 0;
	int bits = EVP_PKEY_get_bits(key);

	e->key_bits = bits > 0 ? (uint32_t)bits : 0;
	switch (EVP_PKEY_get_base_id(key)) {
	case EVP_PKEY_RSA:
		if (bits < CERTS_RSA_MIN_BITS)
			return certs_fail(x, "RSA key of %d bits: at least %d are required", bits,
			                  CERTS_RSA_MIN_BITS);
		e->key_type = SNAP_TLS_KEY_RSA;
		return PG_OK;
	case EVP_PKEY_EC:
		if (EVP_PKEY_get_group_name(key, group, sizeof(group), &glen) != 1)
			snprintf(group, sizeof(group), "(unnamed)");
		if (strcmp(group, "prime256v1") != 0 && strcmp(group, "secp384r1") != 0)
			return certs_fail(x,
			                  "ECDSA key on curve %s: only P-256 (prime256v1) and P-384"
			                  " (secp384r1) are supported",
			                  group);
		e->key_type = SNAP_TLS_KEY_ECDSA;
		return PG_OK;
	case EVP_PKEY_ED25519:
		e->key_type = SNAP_TLS_KEY_ED25519;
		return PG_OK;
	}
	return certs_fail(x,
	                  "unsupported key type %s (RSA of at least %d bits, ECDSA P-256 or"
	                  " P-384, Ed25519)",
	                  EVP_PKEY_get0_type_name(key) != NULL ? EVP_PKEY_get0_type_name(key)
	                                                       : "(unknown)",
	                  CERTS_RSA_MIN_BITS);
}

/*
 * The key belongs to the leaf (the first certificate). When it belongs to a
 * later one instead, the file is in the wrong order: say so.
 */
static int certs_key_match(const struct certs_ctx *x, EVP_PKEY *key, STACK_OF(X509) * chain)
{
	char subject[256];
	X509 *leaf = sk_X509_value(chain, 0);

	if (EVP_PKEY_eq(X509_get0_pubkey(leaf), key) == 1)
		return PG_OK;
	certs_subject(leaf, subject, sizeof(subject));
	for (int i = 1; i < sk_X509_num(chain); i++)
		if (EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(chain, i)), key) == 1)
			return certs_fail(x,
			                  "the private key does not match the first certificate"
			                  " (%s) but certificate %d: put the leaf first, then each"
			                  " issuer",
			                  subject, i + 1);
	return certs_fail(x, "the private key does not match the certificate (%s)", subject);
}

/* The leaf is valid now (RFC 5280 §4.1.2.5). */
static int certs_validity(const struct certs_ctx *x, X509 *leaf, struct cert_entry *e)
{
	char from[40], until[40];

	certs_time(X509_get0_notBefore(leaf), from, sizeof(from), &e->not_before);
	certs_time(X509_get0_notAfter(leaf), until, sizeof(until), &e->not_after);
	if (X509_cmp_current_time(X509_get0_notBefore(leaf)) >= 0)
		return certs_fail(x, "the certificate is not valid yet: valid from %s until %s",
		                  from, until);
	if (X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0)
		return certs_fail(x, "the certificate has expired: valid from %s until %s", from,
		                  until);
	return PG_OK;
}

/* Certificate i+1 issued certificate i, for every i (RFC 8446 §4.4.2). */
static int certs_chain_order(const struct certs_ctx *x, STACK_OF(X509) * chain)
{
	char a[256], b[256];

	for (int i = 1; i < sk_X509_num(chain); i++) {
		X509 *child = sk_X509_value(chain, i - 1), *issuer = sk_X509_value(chain, i);

		if (X509_check_issued(issuer, child) == X509_V_OK)
			continue;
		certs_subject(issuer, a, sizeof(a));
		certs_subject(child, b, sizeof(b));
		return certs_fail(x,
		                  "certificate %d (%s) is not the issuer of certificate %d (%s):"
		                  " the file must hold the leaf first, then each issuer in order",
		                  i + 1, a, i, b);
	}
	return PG_OK;
}

/*
 * A DNS name of the leaf, lowercased into out: a host name (labels of
 * letters, digits and '-', RFC 1123 §2.1) or "*." and a host name of at
 * least two labels (RFC 6125 §6.4.3: the wildcard is the whole left-most
 * label; "*.com" is refused, no CA issues it). A trailing dot is dropped.
 */
static int certs_check_name(const char *in, size_t n, char *out, size_t outlen, const char **why)
{
	size_t start = 0, label = 0, dots = 0;

	while (n > 0 && in[n - 1] == '.')
		n--;
	if (n == 0 || n > 253 || n >= outlen) {
		*why = "empty or longer than 253 characters";
		return PG_ERROR;
	}
	for (size_t i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	out[n] = '\0';
	if (n >= 2 && out[0] == '*' && out[1] == '.')
		start = 2;
	for (size_t i = start; i <= n; i++) {
		char ch = i < n ? out[i] : '.';

		if (ch == '.') {
			if (label == 0 || out[i - 1] == '-' || out[i - label] == '-') {
				*why = "an empty label or one that starts or ends with '-'";
				return PG_ERROR;
			}
			if (label > 63) {
				*why = "a label longer than 63 characters";
				return PG_ERROR;
			}
			dots += i < n;
			label = 0;
		} else if (isalnum((unsigned char)ch) || ch == '-') {
			label++;
		} else {
			*why = start == 0 && ch == '*'
			           ? "a wildcard that is not the whole left-most"
			             " label"
			           : "a character other than letters, digits,"
			             " '-' and '.'";
			return PG_ERROR;
		}
	}
	if (start == 2 && dots == 0) {
		*why = "a wildcard over a top-level domain";
		return PG_ERROR;
	}
	return 0;
}

static int certs_add_name(const struct certs_ctx *x, struct cert_entry *e, const char *name)
{
	char **np;

	for (uint32_t i = 0; i < e->nnames; i++)
		if (strcmp(e->names[i], name) == 0)
			return PG_OK; /* listed twice in the certificate: once is enough */
	if (e->nnames == CERTS_NAMES_MAX)
		return certs_fail(x, "more than %d DNS names", CERTS_NAMES_MAX);
	np = realloc(e->names, (e->nnames + 1) * sizeof(*np));
	if (np == NULL)
		return certs_fail(x, "out of memory");
	e->names = np;
	if ((e->names[e->nnames] = strdup(name)) == NULL)
		return certs_fail(x, "out of memory");
	e->nnames++;
	return PG_OK;
}

/*
 * The names SNI selects the certificate by: subjectAltName dNSName entries;
 * the subject CN only when there is none (RFC 6125 §6.4.4), and only if it
 * is a host name (a CN like "Example Server" names no host). A bad SAN
 * entry is refused: it could never match, and it is likely a mistake.
 */
static int certs_names(const struct certs_ctx *x, X509 *leaf, struct cert_entry *e)
{
	GENERAL_NAMES *san = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
	char norm[256];
	const char *why;
	int rc = PG_OK;

	for (int i = 0; san != NULL && i < sk_GENERAL_NAME_num(san) && rc == PG_OK; i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(san, i);
		const unsigned char *d;
		int n;

		if (gn->type != GEN_DNS)
			continue;
		d = ASN1_STRING_get0_data(gn->d.dNSName);
		n = ASN1_STRING_length(gn->d.dNSName);
		if (memchr(d, '\0', (size_t)n) != NULL ||
		    certs_check_name((const char *)d, (size_t)n, norm, sizeof(norm), &why) != 0)
			rc = certs_fail(x, "subjectAltName DNS name \"%.*s\": %s",
			                n > 100 ? 100 : n, (const char *)d,
			                memchr(d, '\0', (size_t)n) != NULL ? "contains a NUL byte"
			                                                   : why);
		else
			rc = certs_add_name(x, e, norm);
	}
	GENERAL_NAMES_free(san);
	if (rc != PG_OK || e->nnames > 0)
		return rc;
	{
		const X509_NAME *subj = X509_get_subject_name(leaf);
		int idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
		unsigned char *cn = NULL;
		int n;

		if (idx < 0)
			return PG_OK;
		n = ASN1_STRING_to_UTF8(&cn,
		                        X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx)));
		if (n > 0 && memchr(cn, '\0', (size_t)n) == NULL &&
		    certs_check_name((const char *)cn, (size_t)n, norm, sizeof(norm), &why) == 0)
			rc = certs_add_name(x, e, norm);
		OPENSSL_free(cn);
	}
	return rc;
}

/* The DER forms the snapshot carries, and the leaf fingerprint. */
static int certs_der(const struct certs_ctx *x, EVP_PKEY *key, STACK_OF(X509) * chain,
                     struct cert_entry *e)
{
	PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
	unsigned int mdlen = 0;
	unsigned char *p;
	int n;

	n = p8 != NULL ? i2d_PKCS8_PRIV_KEY_INFO(p8, NULL) : -1;
	if (n <= 0 || (e->key_der = malloc((size_t)n)) == NULL) {
		PKCS8_PRIV_KEY_INFO_free(p8);
		return certs_fail(x, "cannot encode the private key as PKCS#8");
	}
	p = e->key_der;
	e->key_len = (size_t)i2d_PKCS8_PRIV_KEY_INFO(p8, &p);
	PKCS8_PRIV_KEY_INFO_free(p8);

	e->chain_der = calloc((size_t)sk_X509_num(chain), sizeof(*e->chain_der));
	e->chain_len = calloc((size_t)sk_X509_num(chain), sizeof(*e->chain_len));
	if (e->chain_der == NULL || e->chain_len == NULL)
		return certs_fail(x, "out of memory");
	for (int i = 0; i < sk_X509_num(chain); i++) {
		X509 *c = sk_X509_value(chain, i);

		n = i2d_X509(c, NULL);
		if (n <= 0 || (e->chain_der[i] = malloc((size_t)n)) == NULL)
			return certs_fail(x, "cannot encode certificate %d", i + 1);
		p = e->chain_der[i];
		e->chain_len[i] = (size_t)i2d_X509(c, &p);
		e->nchain++;
	}
	if (X509_digest(sk_X509_value(chain, 0), EVP_sha256(), e->sha256, &mdlen) != 1 ||
	    mdlen != sizeof(e->sha256))
		return certs_fail(x, "cannot compute the SHA-256 fingerprint");
	return PG_OK;
}

/*
 * Two files of the same key type for one name would make SNI selection
 * depend on file order; a file without names behind an earlier default of
 * its type could never be chosen. Both are refused.
 */
static int certs_check_overlap(const struct certs_ctx *x, const struct pg_certs *done,
                               const struct cert_entry *e)
{
	for (size_t i = 0; i < done->n; i++) {
		const struct cert_entry *o = &done->entries[i];

		if (o->key_type != e->key_type)
			continue;
		if (e->nnames == 0)
			return certs_fail(x,
			                  "the certificate has no DNS name and %s already has the"
			                  " default %s key: it could never be chosen",
			                  o->file, certs_key_type_name(e->key_type));
		for (uint32_t a = 0; a < e->nnames; a++)
			for (uint32_t b = 0; b < o->nnames; b++)
				if (strcmp(e->names[a], o->names[b]) == 0)
					return certs_fail(
					    x,
					    "\"%s\" with an %s key is already covered"
					    " by %s",
					    e->names[a], certs_key_type_name(e->key_type), o->file);
	}
	return PG_OK;
}

static void certs_entry_free(struct cert_entry *e)
{
	free(e->file);
	if (e->key_der != NULL)
		OPENSSL_cleanse(e->key_der, e->key_len);
	free(e->key_der);
	for (uint32_t i = 0; i < e->nchain; i++)
		free(e->chain_der[i]);
	free(e->chain_der);
	free(e->chain_len);
	for (uint32_t i = 0; i < e->nnames; i++)
		free(e->names[i]);
	free(e->names);
	memset(e, 0, sizeof(*e));
}

static int certs_load_file(const struct certs_ctx *x, const struct pg_certs *done,
                           struct cert_entry *e)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	EVP_PKEY *key = NULL;
	char *text = NULL;
	size_t len = 0;
	int rc;

	if (chain == NULL)
		return certs_fail(x, "out of memory");
	rc = certs_slurp(x, &text, &len);
	if (rc == PG_OK)
		rc = certs_parse_pem(x, text, len, &key, chain);
	if (rc == PG_OK)
		rc = certs_key_type(x, key, e);
	if (rc == PG_OK)
		rc = certs_key_match(x, key, chain);
	if (rc == PG_OK)
		rc = certs_validity(x, sk_X509_value(chain, 0), e);
	if (rc == PG_OK)
		rc = certs_chain_order(x, chain);
	if (rc == PG_OK)
		rc = certs_names(x, sk_X509_value(chain, 0), e);
	if (rc == PG_OK)
		rc = certs_check_overlap(x, done, e);
	if (rc == PG_OK)
		rc = certs_der(x, key, chain, e);
	if (text != NULL)
		OPENSSL_clear_free(text, len); /* the PEM held the private key */
	EVP_PKEY_free(key);
	sk_X509_pop_free(chain, X509_free);
	return rc;
}

int certs_load(const struct pg_conf *conf, struct pg_certs *out, char *err, size_t errlen)
{
	const char *s = conf->tls_certificates;
	struct certs_ctx x = {.conf = conf, .err = err, .errlen = errlen};

	memset(out, 0, sizeof(*out));
	if (conf->ntls_certificates == 0)
		return PG_OK;
	out->entries = calloc(conf->ntls_certificates, sizeof(*out->entries));
	if (out->entries == NULL) {
		snprintf(err, errlen, "%s: out of memory", conf->path);
		return PG_ERROR;
	}
	while (*s != '\0' && out->n < conf->ntls_certificates) {
		size_t n = strcspn(s, " ");
		struct cert_entry *e = &out->entries[out->n];
		char *path;

		/* relative names are relative to the configuration directory */
		if (asprintf(&path, "%s%s%.*s", s[0] == '/' ? "" : conf->dir,
		             s[0] == '/' ? "" : "/", (int)n, s) < 0) {
			certs_free(out);
			snprintf(err, errlen, "%s: out of memory", conf->path);
			return PG_ERROR;
		}
		e->file = path;
		e->line = conf->tls_certificates_line;
		x.file = path;
		if (certs_load_file(&x, out, e) != PG_OK) {
			certs_entry_free(e);
			certs_free(out);
			return PG_ERROR;
		}
		out->n++;
		s += n + (s[n] == ' ');
	}
	return PG_OK;
}

void certs_free(struct pg_certs *certs)
{
	for (size_t i = 0; i < certs->n; i++)
		certs_entry_free(&certs->entries[i]);
	free(certs->entries);
	memset(certs, 0, sizeof(*certs));
}
