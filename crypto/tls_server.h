/*
 * tls_server.h - the inbound TLS context of one snapshot generation: the
 * certificates (tls_certs.h) chosen per ClientHello by SNI and by the key
 * types the client can verify, TLS 1.2 and 1.3 only unless
 * smtpd_tls_protocols says otherwise, and stateless session tickets whose
 * keys come from the control plane (snapshot section
 * SNAP_SEC_TLS_TICKET_KEYS), so that a session a client made on one worker
 * resumes on any other, and across posternd reloads.
 *
 * Lifetime: the SSL_CTX owns everything (certificates, ticket keys) through
 * its ex_data; every SSL made from it holds a reference to it. A worker
 * adopting a new generation drops its reference to the old context
 * (tls_server_ctx_put) and makes a new one: new connections get the new
 * certificates at once, established ones finish on the old (rotation).
 */
#ifndef PG_TLS_SERVER_H
#define PG_TLS_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "snap_format.h"

/*
 * The context for a validated snapshot. NULL with err when the snapshot
 * has no certificate (STARTTLS is then not offered) or on failure.
 */
SSL_CTX *tls_server_ctx_new(const struct snap_header *h, char *err, size_t errlen);
void tls_server_ctx_put(SSL_CTX *ctx);

/* How many ticket keys the context holds (0: tickets off). */
unsigned tls_server_ticket_keys(SSL_CTX *ctx);

/*
 * Versions a connection may negotiate, from SNAP_TLS_P_* bits (the
 * inbound verdict's protocols). PG_OK or PG_ERROR if none is allowed.
 */
int tls_server_set_protocols(SSL *ssl, uint16_t protocols);

#endif
