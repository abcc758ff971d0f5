/*
 * tlsio.h - ciphertext between a TLS stream (crypto/tls_stream.h) and a
 * connection of the userspace TCP stack, for the connection driver
 * (conn.h). Both directions are bounded by the buffers on each side;
 * nothing here blocks.
 */
#ifndef PG_TLSIO_H
#define PG_TLSIO_H

#include <stdbool.h>
#include <stddef.h>

#include "net/tcp.h"
#include "tls_stream.h"

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

/* The peer closed and everything it sent was read (and decrypted) already. */
bool tlsio_eof(const struct tls_stream *ts, struct tcp_conn *c);

#endif
