/*
 * tls_decide.h - the outbound TLS decision as a pure function: from the
 * policy of a delivery (its level and mode=testing), what the next hop did
 * (STARTTLS offered or not, accepted or refused, the handshake's result)
 * and whether its certificate met the level (tls_client_check), what
 * happens to the mail: it goes over TLS, it goes in plaintext, it goes
 * again on a new connection without STARTTLS, or it is deferred with an
 * enhanced status and a reason. Postfix's semantics (TLS_README
 * "Client-side TLS security levels"); above `may` nothing is ever sent in
 * plaintext. Also the outcome a delivery record names.
 *
 * No I/O, no clock, no allocation: delivery (dataplane/relay) calls it at
 * each point of a session, the unit tests call it cell by cell.
 */
#ifndef PG_TLS_DECIDE_H
#define PG_TLS_DECIDE_H

#include <stdbool.h>
#include <stdint.h>

#include "tls_client.h"

/* The handshake, as far as it went. */
enum tls_handshake {
	TLS_HS_NONE,   /* not attempted: no STARTTLS sent, or it was refused */
	TLS_HS_OK,     /* established */
	TLS_HS_FAILED, /* started and failed (or could not start here) */
};

/* What is known when a decision is due. */
struct tls_facts {
	uint8_t level;             /* enum snap_tls_level */
	bool testing;              /* mode=testing */
	bool local_tls;            /* we have a TLS client context */
	bool offered;              /* STARTTLS in the EHLO reply */
	uint16_t starttls_code;    /* our STARTTLS's reply when it was not 220; 0 = none */
	const char *starttls_text; /* that reply's text */
	enum tls_handshake handshake;
	const char *handshake_why; /* TLS_HS_FAILED: why ("handshake: ...") */
	bool cert_ok;         /* TLS_HS_OK: the certificate meets the level (tls_client_check) */
	const char *cert_why; /* !cert_ok: why ("Server certificate not trusted: ...") */
	const char *host;     /* the next hop, for the reasons */
};

enum tls_action {
	TLS_SEND_TLS,    /* the mail goes over the TLS just established */
	TLS_SEND_PLAIN,  /* the mail goes in plaintext (none; may or testing without TLS) */
	TLS_RETRY_PLAIN, /* may/testing after a failed handshake: again, without STARTTLS */
	TLS_DEFER,       /* deferred (4.7.x, status and why): never in plaintext */
};

struct tls_decision {
	enum tls_action action;
	bool would_defer; /* mode=testing: a strict level would have deferred; why says why */
	char status[8];   /* TLS_DEFER (and would_defer): "4.7.4" or "4.7.5" */
	char why[200];
};

/*
 * Send STARTTLS to this next hop? Every level but none when TLS is
 * available here; may and mode=testing not to a peer whose handshake
 * failed lately (peer_broken: they fall back to plaintext, as Postfix's
 * smtp_tls_... "may" does on a new connection).
 */
bool tls_decide_starttls(uint8_t level, bool testing, bool local_tls, bool peer_broken);

/*
 * The decision once EHLO is done (after TLS, if any: handshake NONE or
 * OK), or when the handshake failed (FAILED).
 */
void tls_decide(const struct tls_facts *f, struct tls_decision *d);

/*
 * The tls_outcome of a delivery record (control/tlsstats.h names): the
 * decision d, whether TLS was on, the peer's verdict, and whether the
 * message's bytes went to the next hop (body_sent) - "plaintext" means
 * exactly that they went unencrypted. d NULL: no session got as far as a
 * decision (no route, connection refused).
 */
const char *tls_decide_outcome(const struct tls_decision *d, bool tls_on, enum tls_verdict verdict,
                               bool body_sent);

#endif
