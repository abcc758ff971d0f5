/*
 * tls_server.c - the inbound TLS context of a generation (tls_server.h).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "result.h"
#include "tls_certs.h"
#include "tls_server.h"

#define TLS_TICKET_KEYS_MAX 2

struct tls_server_data {
	struct tls_cert_set certs;
	struct snap_tls_ticket_key keys[TLS_TICKET_KEYS_MAX]; /* [0] encrypts */
	unsigned nkeys;
};

static int tls_server_idx = -1;
static pthread_once_t tls_server_once = PTHREAD_ONCE_INIT;

static void tls_server_data_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                                 void *argp)
{
	struct tls_server_data *d = ptr;

	(void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
	if (d == NULL)
		return;
	tls_certs_free(&d->certs);
	OPENSSL_cleanse(d->keys, sizeof(d->keys));
	free(d);
}

static void tls_server_init_once(void)
{
	tls_server_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, tls_server_data_free);
}

/* The host name of a ClientHello's server_name extension (RFC 6066 §3). */
static void tls_hello_sni(SSL *s, char *out, size_t outlen)
{
	const unsigned char *p;
	size_t len, n;

	out[0] = '\0';
	if (SSL_client_hello_get0_ext(s, TLSEXT_TYPE_server_name, &p, &len) != 1 || len < 5)
		return;
	n = ((size_t)p[0] << 8) | p[1]; /* ServerNameList */
	if (n + 2 != len || p[2] != TLSEXT_NAMETYPE_host_name)
		return;
	n = ((size_t)p[3] << 8) | p[4];
	if (n + 5 > len || n >= outlen || n == 0)
		return;
	memcpy(out, p + 5, n);
	out[n] = '\0';
	if (memchr(out, '\0', n) != NULL)
		out[0] = '\0';
}

static int tls_use(SSL *s, const struct tls_cert *c)
{
	return SSL_use_cert_and_key(s, c->leaf, c->key, c->chain, 1) == 1;
}

/* Does the ClientHello offer TLS 1.3 (supported_versions, RFC 8446 §4.2.1)? */
static bool tls_hello_tls13(SSL *s)
{
	const unsigned char *p;
	size_t len;

	if (SSL_client_hello_get0_ext(s, TLSEXT_TYPE_supported_versions, &p, &len) != 1 || len < 1 ||
	    (size_t)p[0] + 1 != len)
		return false;
	for (size_t i = 1; i + 1 < len; i += 2)
		if (p[i] == 0x03 && p[i + 1] == 0x04)
			return true;
	return false;
}

/* Choose the certificate before OpenSSL looks at any (tls_certs.h). */
static int tls_server_hello_cb(SSL *s, int *al, void *arg)
{
	struct tls_server_data *d = arg;
	struct tls_cert_choice ch;
	char sni[TLS_SNI_MAX + 1];
	const unsigned char *sig;
	size_t siglen;
	unsigned allowed = 0;
	bool have_sigalgs;

	tls_hello_sni(s, sni, sizeof(sni));
	/*
	 * TLS 1.3: the certificate follows signature_algorithms alone, so we
	 * choose (ECDSA first). TLS 1.2: the cipher suite names the key type
	 * too, so every key type of the chosen name goes on the SSL and
	 * OpenSSL matches it to the suite it picks.
	 */
	have_sigalgs = tls_hello_tls13(s) &&
	               (SSL_get_max_proto_version(s) == 0 || SSL_get_max_proto_version(s) >= TLS1_3_VERSION) &&
	               SSL_client_hello_get0_ext(s, TLSEXT_TYPE_signature_algorithms, &sig, &siglen) == 1;
	if (have_sigalgs)
		allowed = tls_allowed_from_sigalgs(sig, siglen);
	if (tls_cert_select(&d->certs, sni, have_sigalgs && allowed != 0 ? allowed : TLS_ALLOW_ALL,
	                    &ch) != PG_OK) {
		*al = SSL_AD_INTERNAL_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	if (have_sigalgs && allowed != 0) {
		if (!tls_use(s, ch.cert))
			goto fail;
	} else {
		/* TLS 1.2 (RFC 5246 §7.4.1.4.1, §7.4.2): OpenSSL picks by suite and sigalgs */
		for (unsigned t = 0; t < TLS_KEY_TYPES; t++)
			if (ch.by_type[t] != NULL && !tls_use(s, ch.by_type[t]))
				goto fail;
	}
	return SSL_CLIENT_HELLO_SUCCESS;
fail:
	ERR_clear_error();
	*al = SSL_AD_INTERNAL_ERROR;
	return SSL_CLIENT_HELLO_ERROR;
}

static int tls_ticket_mac(EVP_MAC_CTX *hctx, uint8_t *key)
{
	OSSL_PARAM params[3];

	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, 32);
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	return EVP_MAC_CTX_set_params(hctx, params);
}

/*
 * RFC 5077 tickets with the control plane's keys: encrypt with the current
 * key; decrypt with whichever key the ticket names; a ticket of the
 * previous key is renewed, and so is every TLS 1.3 ticket (return 2).
 */
static int tls_ticket_cb(SSL *s, unsigned char name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                         EVP_MAC_CTX *hctx, int enc)
{
	SSL_CTX *ctx = SSL_get_SSL_CTX(s);
	struct tls_server_data *d = SSL_CTX_get_ex_data(ctx, tls_server_idx);

	if (d == NULL || d->nkeys == 0)
		return enc ? -1 : 0;
	if (enc) {
		struct snap_tls_ticket_key *k = &d->keys[0];

		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1)
			return -1;
		memcpy(name, k->name, 16);
		if (EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes_key, iv) != 1 ||
		    tls_ticket_mac(hctx, k->hmac_key) != 1)
			return -1;
		return 1;
	}
	for (unsigned i = 0; i < d->nkeys; i++) {
		struct snap_tls_ticket_key *k = &d->keys[i];

		if (memcmp(name, k->name, 16) != 0)
			continue;
		if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes_key, iv) != 1 ||
		    tls_ticket_mac(hctx, k->hmac_key) != 1)
			return -1;
		/*
		 * TLS 1.3: "renew" (2) for every key. With 1 OpenSSL 3.0 ends a
		 * resumed handshake without a NewSessionTicket (statem_srvr.c:
		 * "if we're not going to renew the ticket then we just finish"),
		 * so a client that uses each ticket once (RFC 8446 §C.4) has none
		 * for its next connection and every other one was a full
		 * handshake (tools/bench/tls.sh saw 50 % resumed). TLS 1.2: a ticket
		 * of the previous key gets a fresh one; a current one is kept.
		 */
		return SSL_version(s) >= TLS1_3_VERSION || i != 0 ? 2 : 1;
	}
	return 0; /* unknown key: a full handshake */
}

SSL_CTX *tls_server_ctx_new(const struct snap_header *h, char *err, size_t errlen)
{
	struct tls_server_data *d;
	const struct snap_tls_ticket_key *keys;
	uint32_t nkeys = 0;
	SSL_CTX *ctx;

	pthread_once(&tls_server_once, tls_server_init_once);
	if (tls_server_idx < 0) {
		snprintf(err, errlen, "OpenSSL ex_data index: out of memory");
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (tls_certs_load(h, &d->certs, err, errlen) != PG_OK) {
		free(d);
		return NULL;
	}
	if (d->certs.n == 0) {
		snprintf(err, errlen, "no certificate (tls_certificates)");
		tls_certs_free(&d->certs);
		free(d);
		return NULL;
	}
	keys = snap_ticket_keys(h, &nkeys);
	for (uint32_t i = 0; keys != NULL && i < nkeys && i < TLS_TICKET_KEYS_MAX; i++)
		d->keys[d->nkeys++] = keys[i];
	ctx = SSL_CTX_new(TLS_server_method());
	if (ctx == NULL || SSL_CTX_set_ex_data(ctx, tls_server_idx, d) != 1) {
		snprintf(err, errlen, "SSL_CTX_new: out of memory");
		SSL_CTX_free(ctx);
		tls_server_data_free(NULL, d, NULL, 0, 0, NULL);
		ERR_clear_error();
		return NULL;
	}
	/* d belongs to ctx from here: freed with its last reference */
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	                             SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL");
	SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"postern", 7);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF); /* tickets only: any worker */
	SSL_CTX_set_client_hello_cb(ctx, tls_server_hello_cb, d);
	if (d->nkeys > 0) {
		SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_ticket_cb);
		SSL_CTX_set_num_tickets(ctx, 1);
	} else {
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_num_tickets(ctx, 0);
	}
	ERR_clear_error();
	return ctx;
}

void tls_server_ctx_put(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

unsigned tls_server_ticket_keys(SSL_CTX *ctx)
{
	struct tls_server_data *d = ctx != NULL ? SSL_CTX_get_ex_data(ctx, tls_server_idx) : NULL;

	return d != NULL ? d->nkeys : 0;
}

int tls_server_set_protocols(SSL *ssl, uint16_t protocols)
{
	static const struct {
		uint16_t bit;
		int version;
	} v[] = {{SNAP_TLS_P_TLSV1, TLS1_VERSION},
	         {SNAP_TLS_P_TLSV1_1, TLS1_1_VERSION},
	         {SNAP_TLS_P_TLSV1_2, TLS1_2_VERSION},
	         {SNAP_TLS_P_TLSV1_3, TLS1_3_VERSION}};
	int lo = 0, hi = 0;

	if (protocols == 0)
		protocols = SNAP_TLS_P_TLSV1_2 | SNAP_TLS_P_TLSV1_3;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		if ((protocols & v[i].bit) == 0)
			continue;
		if (lo == 0)
			lo = v[i].version;
		hi = v[i].version;
	}
	if (lo == 0 || SSL_set_min_proto_version(ssl, lo) != 1 ||
	    SSL_set_max_proto_version(ssl, hi) != 1) {
		ERR_clear_error();
		return PG_ERROR;
	}
	return PG_OK;
}
