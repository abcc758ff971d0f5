/*
 * tlsio.h - ciphertext between a TLS stream (crypto/tls_stream.h) and a
 * connection of the userspace TCP stack. Both directions are bounded by
 * the buffers on each side; neither call blocks.
 */
#ifndef PG_TLSIO_H
#define PG_TLSIO_H

#include <stdbool.h>
#include <stddef.h>

#include "net/tcp.h"
#include "tls_stream.h"

struct smtp_server;
struct smtp_client;

/* What TCP received, into the stream, as far as it has room: bytes moved. */
size_t tlsio_pull(struct tls_stream *ts, struct tcp_conn *c);

/*
 * What the stream has for the peer, to TCP. *sent: bytes TCP took.
 * PG_OK (all out), PG_AGAIN (TCP is full: a writable event follows),
 * PG_ERROR (the connection is gone).
 */
int tlsio_push(struct tls_stream *ts, struct tcp_conn *c, size_t *sent);

/*
 * Plaintext p[0..n) into the stream, pushing ciphertext to TCP whenever
 * the stream is full. *taken: plaintext bytes taken (the caller consumes
 * them from its engine; the rest must be offered again, unchanged, as
 * tls_stream_write requires). PG_OK (all taken; ciphertext may still wait:
 * tlsio_push), PG_AGAIN (TCP is full), PG_ERROR.
 */
int tlsio_send(struct tls_stream *ts, struct tcp_conn *c, const uint8_t *p, size_t n,
               size_t *taken);

/*
 * An SMTP engine's output as tlsio_flush sees it: what is waiting, and
 * how much was taken. tlsio_server()/tlsio_client() make one for the
 * server and the client engine (dataplane/smtp).
 */
struct tlsio_engine {
	size_t (*output)(void *engine, const uint8_t **p);
	void (*consume)(void *engine, size_t n);
	void *engine;
};
struct tlsio_engine tlsio_server(struct smtp_server *s);
struct tlsio_engine tlsio_client(struct smtp_client *c);

/*
 * Hand the engine's output to the connection: straight to TCP when ts is
 * NULL; through the stream when ts is set and tls_on; while a handshake
 * runs (or after it failed) the output is dropped, never sent in
 * plaintext. Then the stream's pending ciphertext. *sent: bytes moved.
 * PG_OK (all out), PG_AGAIN (TCP is full: a writable event follows),
 * PG_ERROR (the connection is gone). Used by the relay's sessions both
 * ways and by postern-gen.
 */
int tlsio_flush(struct tls_stream *ts, bool tls_on, struct tcp_conn *c,
                const struct tlsio_engine *e, size_t *sent);

/* The peer closed and everything it sent was read (and decrypted) already. */
bool tlsio_eof(const struct tls_stream *ts, struct tcp_conn *c);

#endif
