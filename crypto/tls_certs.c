/*
 * tls_certs.c - the snapshot's certificate sections (snap_format.h, ABI
 * 1.2) as OpenSSL objects, and certificate selection by SNI (tls_certs.h).
 * Loading runs once per worker per generation, off the handshake path;
 * selection runs per ClientHello: a binary search over the sorted names,
 * two lookups at most (exact, wildcard), no allocation.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "result.h"
#include "tls_certs.h"

/* Preference among the allowed key types: cheapest handshake first. */
static const uint8_t tls_key_pref[TLS_KEY_TYPES] = {
    SNAP_TLS_KEY_ECDSA,
    SNAP_TLS_KEY_ED25519,
    SNAP_TLS_KEY_RSA,
};

static int tls_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int tls_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	ERR_clear_error();
	return PG_ERROR;
}

static size_t tls_align(size_t v)
{
	return (v + sizeof(void *) - 1) & ~(sizeof(void *) - 1);
}

static int tls_name_cmp(const void *x, const void *y)
{
	const struct tls_cert_name *a = x, *b = y;
	int c = strcmp(a->name, b->name);

	if (c != 0)
		return c;
	return a->cert < b->cert ? -1 : a->cert > b->cert;
}

/* The OpenSSL objects of certificate i; the checks repeat posternd's. */
static int tls_cert_objects(const struct snap_header *h, const struct snap_tls_cert *sc,
                            const struct snap_bytes *chain, const uint8_t *der, struct tls_cert *c,
                            char *err, size_t errlen)
{
	const unsigned char *p = der + sc->key.off;

	c->key = d2i_AutoPrivateKey(NULL, &p, (long)sc->key.len);
	if (c->key == NULL || p != der + sc->key.off + sc->key.len)
		return tls_fail(err, errlen,
		                "certificate %" PRIu32 " (%s): the private key does"
		                " not decode",
		                c->index, snap_string(h, sc->file));
	c->chain = sk_X509_new_null();
	if (c->chain == NULL)
		return tls_fail(err, errlen, "out of memory");
	for (uint32_t j = 0; j < sc->chain_count; j++) {
		const struct snap_bytes *b = &chain[sc->chain_first + j];
		X509 *x;

		p = der + b->off;
		x = d2i_X509(NULL, &p, (long)b->len);
		if (x == NULL || p != der + b->off + b->len) {
			X509_free(x);
			return tls_fail(err, errlen,
			                "certificate %" PRIu32 " (%s): chain entry %" PRIu32
			                " does not decode",
			                c->index, snap_string(h, sc->file), j + 1);
		}
		if (j == 0) {
			c->leaf = x;
		} else if (!sk_X509_push(c->chain, x)) {
			X509_free(x);
			return tls_fail(err, errlen, "out of memory");
		}
	}
	if (EVP_PKEY_eq(X509_get0_pubkey(c->leaf), c->key) != 1)
		return tls_fail(err, errlen,
		                "certificate %" PRIu32 " (%s): the private key does not match"
		                " the leaf",
		                c->index, snap_string(h, sc->file));
	return PG_OK;
}

int tls_certs_load(const struct snap_header *h, struct tls_cert_set *out, char *err, size_t errlen)
{
	uint32_t n, nnames, nchain, nder;
	const struct snap_tls_cert *sc = snap_section(h, SNAP_SEC_TLS_CERTS, &n);
	const struct snap_str *names = snap_section(h, SNAP_SEC_TLS_CERT_NAMES, &nnames);
	const struct snap_bytes *chain = snap_section(h, SNAP_SEC_TLS_CERT_CHAIN, &nchain);
	const uint8_t *der = snap_section(h, SNAP_SEC_TLS_DER, &nder);
	size_t size, chars = 0, off_ptrs, off_names, off_chars;
	uint32_t total_names = 0, k = 0;
	char *arena, *strp;

	memset(out, 0, sizeof(*out));
	out->generation = h->generation;
	if (sc == NULL || n == 0)
		return PG_OK;
	if (names == NULL || chain == NULL || der == NULL)
		return tls_fail(err, errlen, "certificate sections incomplete");
	for (uint32_t i = 0; i < n; i++) {
		total_names += sc[i].name_count;
		chars += strlen(snap_string(h, sc[i].file)) + 1;
		for (uint32_t j = 0; j < sc[i].name_count; j++)
			chars += strlen(snap_string(h, names[sc[i].name_first + j])) + 1;
	}
	/* one arena: certs, name pointers per cert, the sorted names, chars */
	off_ptrs = tls_align((size_t)n * sizeof(struct tls_cert));
	off_names = off_ptrs + tls_align((size_t)total_names * sizeof(char *));
	off_chars = off_names + tls_align((size_t)total_names * sizeof(struct tls_cert_name));
	size = off_chars + chars;
	arena = calloc(1, size);
	if (arena == NULL)
		return tls_fail(err, errlen, "out of memory loading %" PRIu32 " certificates", n);
	out->arena = arena;
	out->certs = (struct tls_cert *)arena;
	out->names = (struct tls_cert_name *)(arena + off_names);
	out->n = n;
	strp = arena + off_chars;

	for (uint32_t i = 0; i < n; i++) {
		struct tls_cert *c = &out->certs[i];
		const char **ptrs = (const char **)(arena + off_ptrs) + k;
		const char *file = snap_string(h, sc[i].file);

		c->index = i;
		c->key_type = sc[i].key_type;
		c->key_bits = sc[i].key_bits;
		c->not_before = sc[i].not_before;
		c->not_after = sc[i].not_after;
		c->line = sc[i].line;
		memcpy(c->sha256, sc[i].sha256, sizeof(c->sha256));
		c->file = strcpy(strp, file);
		strp += strlen(file) + 1;
		for (uint32_t j = 0; j < sc[i].name_count; j++) {
			const char *name = snap_string(h, names[sc[i].name_first + j]);

			ptrs[j] = strcpy(strp, name);
			strp += strlen(name) + 1;
			out->names[k + j] = (struct tls_cert_name){.name = ptrs[j], .cert = i};
		}
		c->names = ptrs;
		c->nnames = sc[i].name_count;
		k += sc[i].name_count;
		if (tls_cert_objects(h, &sc[i], chain, der, c, err, errlen) != PG_OK) {
			tls_certs_free(out);
			return PG_ERROR;
		}
	}
	out->nnames = total_names;
	qsort(out->names, total_names, sizeof(*out->names), tls_name_cmp);
	return PG_OK;
}

void tls_certs_free(struct tls_cert_set *set)
{
	for (uint32_t i = 0; set->certs != NULL && i < set->n; i++) {
		EVP_PKEY_free(set->certs[i].key);
		X509_free(set->certs[i].leaf);
		sk_X509_pop_free(set->certs[i].chain, X509_free);
	}
	free(set->arena);
	memset(set, 0, sizeof(*set));
}

int tls_sni_normalize(const char *sni, char *out, size_t outlen)
{
	size_t n, label = 0;
	bool digits_only = true;

	if (sni == NULL)
		return -1;
	n = strnlen(sni, TLS_SNI_MAX + 2);
	if (n > 0 && sni[n - 1] == '.')
		n--;
	if (n == 0 || n > TLS_SNI_MAX || n >= outlen)
		return -1;
	for (size_t i = 0; i <= n; i++) {
		char ch = i < n ? (char)tolower((unsigned char)sni[i]) : '.';

		if (ch == '.') {
			if (label == 0 || label > 63)
				return -1;
			label = 0;
			if (i < n)
				digits_only = true;
		} else if (isalnum((unsigned char)ch) || ch == '-') {
			label++;
			digits_only = digits_only && isdigit((unsigned char)ch);
		} else {
			return -1;
		}
		if (i < n)
			out[i] = ch;
	}
	out[n] = '\0';
	/* an all-digit last label is an IPv4 literal, not allowed in SNI */
	return digits_only ? -1 : 0;
}

/* Fill by_type with the certificates naming name; the stored name or NULL. */
static const char *tls_level(const struct tls_cert_set *set, const char *name,
                             const struct tls_cert *by_type[TLS_KEY_TYPES])
{
	uint32_t lo = 0, hi = set->nnames;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (strcmp(set->names[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == set->nnames || strcmp(set->names[lo].name, name) != 0)
		return NULL;
	for (uint32_t i = lo; i < set->nnames && strcmp(set->names[i].name, name) == 0; i++) {
		const struct tls_cert *c = &set->certs[set->names[i].cert];

		if (by_type[c->key_type - 1] == NULL)
			by_type[c->key_type - 1] = c;
	}
	return set->names[lo].name;
}

static const struct tls_cert *tls_pick(const struct tls_cert *const by_type[TLS_KEY_TYPES],
                                       unsigned allowed)
{
	for (int i = 0; i < TLS_KEY_TYPES; i++) {
		uint8_t t = tls_key_pref[i];

		if (by_type[t - 1] != NULL && (allowed & TLS_ALLOW(t)))
			return by_type[t - 1];
	}
	return NULL;
}

int tls_cert_select(const struct tls_cert_set *set, const char *sni, unsigned allowed,
                    struct tls_cert_choice *out)
{
	struct tls_cert_choice levels[3];
	char norm[TLS_SNI_MAX + 1], wild[TLS_SNI_MAX + 2];
	int nlevels = 0;

	memset(out, 0, sizeof(*out));
	if (set == NULL || set->n == 0)
		return PG_DECLINED;
	memset(levels, 0, sizeof(levels));
	if (sni != NULL && sni[0] != '\0' && tls_sni_normalize(sni, norm, sizeof(norm)) == 0) {
		const char *dot = strchr(norm, '.');

		levels[nlevels].how = TLS_MATCH_EXACT;
		levels[nlevels].matched = tls_level(set, norm, levels[nlevels].by_type);
		if (levels[nlevels].matched != NULL)
			nlevels++;
		/* RFC 6125 §6.4.3: "*" stands for exactly the left-most label */
		if (dot != NULL && strchr(dot + 1, '.') != NULL) {
			snprintf(wild, sizeof(wild), "*%s", dot);
			levels[nlevels].how = TLS_MATCH_WILDCARD;
			levels[nlevels].matched = tls_level(set, wild, levels[nlevels].by_type);
			if (levels[nlevels].matched != NULL)
				nlevels++;
		}
	}
	memset(&levels[nlevels], 0, sizeof(levels[nlevels]));
	levels[nlevels].how = TLS_MATCH_DEFAULT;
	for (uint32_t i = 0; i < set->n; i++) {
		const struct tls_cert *c = &set->certs[i];

		if (levels[nlevels].by_type[c->key_type - 1] == NULL)
			levels[nlevels].by_type[c->key_type - 1] = c;
	}
	nlevels++;
	for (int l = 0; l < nlevels; l++) {
		const struct tls_cert *c = tls_pick(levels[l].by_type, allowed);

		if (c != NULL) {
			*out = levels[l];
			out->cert = c;
			return PG_OK;
		}
	}
	/* the client can verify none of our key types: best name, then fail */
	*out = levels[0];
	out->cert = tls_pick(levels[0].by_type, TLS_ALLOW_ALL);
	return PG_OK;
}

unsigned tls_allowed_from_sigalgs(const uint8_t *ext, size_t len)
{
	unsigned allowed = 0;
	size_t n;

	if (ext == NULL || len < 2)
		return 0;
	n = (size_t)ext[0] << 8 | ext[1];
	if (n != len - 2 || n % 2 != 0)
		return 0;
	for (size_t i = 2; i < len; i += 2) {
		unsigned code = (unsigned)ext[i] << 8 | ext[i + 1];

		switch (code) {
		case 0x0201: /* rsa_pkcs1_sha1 */
		case 0x0401: /* rsa_pkcs1_sha256 */
		case 0x0501: /* rsa_pkcs1_sha384 */
		case 0x0601: /* rsa_pkcs1_sha512 */
		case 0x0804: /* rsa_pss_rsae_sha256: an rsaEncryption key (RFC 8446) */
		case 0x0805:
		case 0x0806:
			allowed |= TLS_ALLOW_RSA;
			break;
		case 0x0203: /* ecdsa_sha1 */
		case 0x0403: /* ecdsa_secp256r1_sha256 */
		case 0x0503: /* ecdsa_secp384r1_sha384 */
		case 0x0603: /* ecdsa_secp521r1_sha512 */
			allowed |= TLS_ALLOW_ECDSA;
			break;
		case 0x0807: /* ed25519 */
			allowed |= TLS_ALLOW_ED25519;
			break;
		}
	}
	return allowed;
}
