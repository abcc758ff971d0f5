/*
 * tls_stream.h - one TLS connection over bytes the caller moves: OpenSSL 3
 * on a BIO pair, no sockets, no DPDK. The dataplane moves ciphertext
 * between the pair and the userspace TCP buffers (dataplane/relay/tlsio.c);
 * the unit tests move it between two streams in memory.
 *
 *	network side                       application side
 *	  tcp rx -> tls_stream_net_in*      tls_stream_decrypt -> tls_stream_plain
 *	  tcp tx <- tls_stream_net_out*     tls_stream_write  <- engine output
 *
 * Every "not yet" of OpenSSL (SSL_ERROR_WANT_READ, _WANT_WRITE,
 * _WANT_ASYNC, _WANT_X509_LOOKUP, _WANT_CLIENT_HELLO_CB) is PG_AGAIN: the
 * caller moves bytes (or waits for its poll loop) and calls again. Nothing
 * here blocks.
 *
 * Lifetime: tls_stream_free refuses (returns PG_AGAIN) while an ASYNC job
 * of OpenSSL is paused inside the SSL (SSL_waiting_for_async): an SSL is
 * never freed while OpenSSL still holds work for it. Streams here do not
 * enable SSL_MODE_ASYNC yet, so that cannot happen today; the check is the
 * contract the async offload will rely on.
 */
#ifndef PG_TLS_STREAM_H
#define PG_TLS_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#define TLS_STREAM_BIO 34816u  /* each direction of the pair: two full records */
#define TLS_STREAM_PLAIN 16384u /* decrypted bytes held for the application */
#define TLS_STREAM_WHY 200

struct tls_stream {
	SSL *ssl;
	BIO *net; /* our half of the pair */
	bool server;
	bool established; /* the handshake completed */
	bool eof;         /* the peer's close_notify (or a clean EOF) was read */
	bool failed;      /* a fatal error: the connection is unusable */
	char why[TLS_STREAM_WHY]; /* the failure, for logs and replies */
	size_t plain_off, plain_len;
	uint8_t plain[TLS_STREAM_PLAIN];
};

/*
 * Set up *ts (caller's memory) for one connection under ctx. server: we
 * accept; else we connect. PG_OK or PG_ERROR (memory) with ts->why.
 * Settings per connection (SNI, versions, verification store) go on
 * ts->ssl before the first tls_stream_handshake.
 */
int tls_stream_init(struct tls_stream *ts, SSL_CTX *ctx, bool server);

/*
 * Release the SSL and the pair. PG_OK, or PG_AGAIN while an ASYNC job is
 * paused in the SSL (nothing is freed; call again after it finishes).
 */
int tls_stream_free(struct tls_stream *ts);

/* ---- the network side ---- */

/* Room for ciphertext from the peer: *p and the bytes that fit (0: full). */
size_t tls_stream_net_in_space(struct tls_stream *ts, uint8_t **p);
/* n bytes were copied to that room. */
void tls_stream_net_in_commit(struct tls_stream *ts, size_t n);
/* Copy up to n ciphertext bytes in; returns how many fit. */
size_t tls_stream_net_in(struct tls_stream *ts, const uint8_t *p, size_t n);
/* Ciphertext waiting to go to the peer: *p and its length (0: none). */
size_t tls_stream_net_out(struct tls_stream *ts, const uint8_t **p);
/* n of those bytes were sent. */
void tls_stream_net_out_consume(struct tls_stream *ts, size_t n);

/* ---- the application side ---- */

/*
 * Advance the handshake: PG_OK once established, PG_AGAIN (move bytes and
 * call again), PG_ERROR (ts->why says why; alerts for the peer may still
 * be in net_out).
 */
int tls_stream_handshake(struct tls_stream *ts);

/*
 * Decrypt what came in into the plaintext buffer, as far as it has room.
 * PG_OK (maybe nothing new), PG_DONE (the peer closed: no more plaintext
 * after what is buffered), PG_ERROR (ts->why).
 */
int tls_stream_decrypt(struct tls_stream *ts);
/* Nothing received is left undecrypted or unread by the application. */
bool tls_stream_drained(const struct tls_stream *ts);
/* Plaintext for the application: *p and its length. */
size_t tls_stream_plain(const struct tls_stream *ts, const uint8_t **p);
void tls_stream_plain_consume(struct tls_stream *ts, size_t n);

/*
 * Encrypt up to n bytes: how many were taken (> 0), PG_AGAIN (the pair is
 * full: drain net_out first), or PG_ERROR. A short count is normal
 * (partial writes are on). After PG_AGAIN the next call must offer the same
 * bytes again, at least as many (OpenSSL's write retry rule; the buffer
 * may move): the SMTP engines' output only grows until consumed.
 */
int tls_stream_write(struct tls_stream *ts, const uint8_t *p, size_t n);

/* Queue our close_notify (we do not wait for the peer's). */
void tls_stream_shutdown(struct tls_stream *ts);

/*
 * The session for a Received: header and the logs, Postfix style:
 * "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)". "" before
 * the handshake completes.
 */
void tls_stream_describe(const struct tls_stream *ts, char *out, size_t outlen);

/* Was the session resumed (ticket or cache)? */
bool tls_stream_resumed(const struct tls_stream *ts);

#endif
