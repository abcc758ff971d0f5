/*
 * tls_stream.c - TLS over a BIO pair (tls_stream.h). The SSL owns the
 * internal half of the pair; we hold the network half and read and write
 * it zero-copy with BIO_nread0/BIO_nread and BIO_nwrite0/BIO_nwrite.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "result.h"
#include "tls_stream.h"

/* The first error on OpenSSL's queue (or what SSL_get_error said) into why. */
static void ts_fail(struct tls_stream *ts, int sslerr, const char *doing)
{
	unsigned long e = ERR_peek_error();
	const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;

	ts->failed = true;
	if (reason != NULL) {
		long vr = SSL_get_verify_result(ts->ssl);

		if (ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED && vr != X509_V_OK)
			snprintf(ts->why, sizeof(ts->why), "%s: %s: %s", doing, reason,
			         X509_verify_cert_error_string(vr));
		else
			snprintf(ts->why, sizeof(ts->why), "%s: %s", doing, reason);
	} else if (sslerr == SSL_ERROR_SYSCALL || sslerr == SSL_ERROR_ZERO_RETURN) {
		snprintf(ts->why, sizeof(ts->why), "%s: connection closed by peer", doing);
	} else {
		snprintf(ts->why, sizeof(ts->why), "%s: TLS error %d", doing, sslerr);
	}
	ERR_clear_error();
}

static bool ts_again(int sslerr)
{
	switch (sslerr) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
	case SSL_ERROR_WANT_ASYNC:
	case SSL_ERROR_WANT_ASYNC_JOB:
	case SSL_ERROR_WANT_X509_LOOKUP:
	case SSL_ERROR_WANT_CLIENT_HELLO_CB:
		return true;
	default:
		return false;
	}
}

int tls_stream_init(struct tls_stream *ts, SSL_CTX *ctx, bool server)
{
	BIO *inner = NULL;

	memset(ts, 0, offsetof(struct tls_stream, plain));
	ts->server = server;
	ts->ssl = SSL_new(ctx);
	if (ts->ssl == NULL || BIO_new_bio_pair(&inner, TLS_STREAM_BIO, &ts->net, TLS_STREAM_BIO) != 1) {
		snprintf(ts->why, sizeof(ts->why), "out of memory");
		SSL_free(ts->ssl);
		ts->ssl = NULL;
		ERR_clear_error();
		return PG_ERROR;
	}
	SSL_set_bio(ts->ssl, inner, inner);
	SSL_set_mode(ts->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (server)
		SSL_set_accept_state(ts->ssl);
	else
		SSL_set_connect_state(ts->ssl);
	return PG_OK;
}

int tls_stream_free(struct tls_stream *ts)
{
	if (ts->ssl != NULL && SSL_waiting_for_async(ts->ssl))
		return PG_AGAIN;
	SSL_free(ts->ssl); /* frees the inner half */
	BIO_free(ts->net);
	ts->ssl = NULL;
	ts->net = NULL;
	return PG_OK;
}

size_t tls_stream_net_in_space(struct tls_stream *ts, uint8_t **p)
{
	char *buf = NULL;
	int n = BIO_nwrite0(ts->net, &buf);

	if (n <= 0) {
		*p = NULL;
		return 0;
	}
	*p = (uint8_t *)buf;
	return (size_t)n;
}

void tls_stream_net_in_commit(struct tls_stream *ts, size_t n)
{
	char *buf;

	if (n > 0)
		BIO_nwrite(ts->net, &buf, (int)n);
}

size_t tls_stream_net_in(struct tls_stream *ts, const uint8_t *p, size_t n)
{
	size_t done = 0;

	/* the pair is a ring: the room may come in two pieces */
	while (done < n) {
		uint8_t *room;
		size_t k = tls_stream_net_in_space(ts, &room);

		if (k == 0)
			break;
		if (k > n - done)
			k = n - done;
		memcpy(room, p + done, k);
		tls_stream_net_in_commit(ts, k);
		done += k;
	}
	return done;
}

size_t tls_stream_net_out(struct tls_stream *ts, const uint8_t **p)
{
	char *buf = NULL;
	int n = BIO_nread0(ts->net, &buf);

	if (n <= 0) {
		*p = NULL;
		return 0;
	}
	*p = (const uint8_t *)buf;
	return (size_t)n;
}

void tls_stream_net_out_consume(struct tls_stream *ts, size_t n)
{
	char *buf;

	if (n > 0)
		BIO_nread(ts->net, &buf, (int)n);
}

int tls_stream_handshake(struct tls_stream *ts)
{
	int rc, e;

	if (ts->failed)
		return PG_ERROR;
	if (ts->established)
		return PG_OK;
	ERR_clear_error();
	rc = SSL_do_handshake(ts->ssl);
	if (rc == 1) {
		ts->established = true;
		return PG_OK;
	}
	e = SSL_get_error(ts->ssl, rc);
	if (ts_again(e))
		return PG_AGAIN;
	ts_fail(ts, e, "handshake");
	return PG_ERROR;
}

int tls_stream_decrypt(struct tls_stream *ts)
{
	if (ts->failed)
		return PG_ERROR;
	if (ts->plain_off > 0 && ts->plain_off == ts->plain_len)
		ts->plain_off = ts->plain_len = 0;
	if (ts->plain_off > 0 && ts->plain_len == sizeof(ts->plain)) {
		memmove(ts->plain, ts->plain + ts->plain_off, ts->plain_len - ts->plain_off);
		ts->plain_len -= ts->plain_off;
		ts->plain_off = 0;
	}
	while (!ts->eof && ts->plain_len < sizeof(ts->plain)) {
		size_t got = 0;
		int e;

		ERR_clear_error();
		if (SSL_read_ex(ts->ssl, ts->plain + ts->plain_len, sizeof(ts->plain) - ts->plain_len,
		                &got) == 1) {
			ts->plain_len += got;
			continue;
		}
		e = SSL_get_error(ts->ssl, 0);
		if (ts_again(e))
			break;
		if (e == SSL_ERROR_ZERO_RETURN) {
			ts->eof = true; /* close_notify */
			break;
		}
		ts_fail(ts, e, "read");
		return PG_ERROR;
	}
	return ts->eof ? PG_DONE : PG_OK;
}

bool tls_stream_drained(const struct tls_stream *ts)
{
	if (ts->plain_len > ts->plain_off)
		return false;
	if (ts->ssl == NULL || ts->failed)
		return true;
	return SSL_pending(ts->ssl) == 0 && BIO_ctrl_pending(SSL_get_rbio(ts->ssl)) == 0;
}

size_t tls_stream_plain(const struct tls_stream *ts, const uint8_t **p)
{
	*p = ts->plain + ts->plain_off;
	return ts->plain_len - ts->plain_off;
}

void tls_stream_plain_consume(struct tls_stream *ts, size_t n)
{
	if (n > ts->plain_len - ts->plain_off)
		n = ts->plain_len - ts->plain_off;
	ts->plain_off += n;
	if (ts->plain_off == ts->plain_len)
		ts->plain_off = ts->plain_len = 0;
}

int tls_stream_write(struct tls_stream *ts, const uint8_t *p, size_t n)
{
	size_t done = 0;
	int e;

	if (ts->failed)
		return PG_ERROR;
	if (n == 0)
		return 0;
	ERR_clear_error();
	if (SSL_write_ex(ts->ssl, p, n, &done) == 1)
		return (int)(done > (size_t)INT32_MAX ? INT32_MAX : done);
	e = SSL_get_error(ts->ssl, 0);
	if (ts_again(e))
		return PG_AGAIN;
	ts_fail(ts, e, "write");
	return PG_ERROR;
}

void tls_stream_shutdown(struct tls_stream *ts)
{
	if (ts->ssl == NULL || ts->failed || !ts->established)
		return;
	ERR_clear_error();
	(void)SSL_shutdown(ts->ssl); /* 0: ours is queued, the peer's not awaited */
	ERR_clear_error();
}

void tls_stream_describe(const struct tls_stream *ts, char *out, size_t outlen)
{
	const SSL_CIPHER *c;
	int alg = 0, bits;

	if (outlen == 0)
		return;
	out[0] = '\0';
	if (ts->ssl == NULL || !ts->established)
		return;
	c = SSL_get_current_cipher(ts->ssl);
	if (c == NULL)
		return;
	bits = SSL_CIPHER_get_bits(c, &alg);
	snprintf(out, outlen, "%s with cipher %s (%d/%d bits)", SSL_get_version(ts->ssl),
	         SSL_CIPHER_get_name(c), bits, alg);
}

bool tls_stream_resumed(const struct tls_stream *ts)
{
	return ts->ssl != NULL && SSL_session_reused(ts->ssl) == 1;
}
