/*
 * tls_decide.h - the outbound TLS decision as a pure function: from the
 * policy of a delivery (its level and mode=testing), what the next hop did
 * (STARTTLS offered or not, accepted or refused, the handshake's result)
 * and whether its certificate met the level (tls_client_check), what
 * happens to the mail: it goes over TLS, it goes in plaintext, it goes
 * again on a new connection without STARTTLS, or it is deferred with an
 * enhanced status and a reason. Postfix's semantics (TLS_README
 * "Client-side TLS security levels"); above `may` nothing is ever sent in
 * plaintext. Also the outcome a delivery record names, and how a sender's
 * floor (sender_tls_policy) combines with the destination's own level
 * (tls_decide_combine).
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
	uint8_t level; /* enum snap_tls_level: the level evaluated */
	bool testing;  /* mode=testing: level is evaluated, not enforced */
	/*
	 * With testing: the level that is still enforced (tls_combined.enforced).
	 * Below encrypt (0 = none, the default) nothing is: the mail goes as
	 * may allows. At encrypt and above a failure of it defers, whatever
	 * the evaluated level says; its certificate verdict is enforced_cert_ok.
	 */
	uint8_t enforced;
	bool enforced_cert_ok;         /* TLS_HS_OK: the certificate meets enforced */
	const char *enforced_cert_why; /* !enforced_cert_ok: why */
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
 * smtp_tls_... "may" does on a new connection) - unless mode=testing
 * still enforces encrypt or more (enforced, as in tls_facts).
 */
bool tls_decide_starttls(uint8_t level, bool testing, uint8_t enforced, bool local_tls,
                         bool peer_broken);

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

/*
 * ---- A sender's floor (sender_tls_policy) ----
 *
 * A floor says "mail from this sender domain or client network is never
 * sent unencrypted" (encrypt) or "only to an authenticated peer" (verify,
 * secure), optionally in mode=testing. Per recipient, the destination's
 * own decision (its tls_policy entry or tls_default_level) stands when it
 * is at least as strict as the floor (tls_level_meets); otherwise the
 * floor's level applies. A destination entry in mode=testing enforces
 * nothing (it never defers), so it never stands against an enforcing floor;
 * a floor in mode=testing enforces nothing either: it is evaluated and its
 * would-be deferrals recorded while the destination's level holds.
 */

/* The two rules of a delivery, for records and explanations. */
enum tls_rule {
	TLS_RULE_DESTINATION = 0, /* tls_policy entry, or tls_default_level */
	TLS_RULE_SENDER,          /* sender_tls_policy entry (the floor) */
};

const char *tls_rule_name(enum tls_rule r); /* "destination", "sender" */

/* One rule's level, as written. */
struct tls_rule_level {
	uint8_t level; /* enum snap_tls_level */
	bool testing;  /* mode=testing */
};

/*
 * Does `level` meet a floor? encrypt: any level that requires TLS
 * (encrypt, fingerprint, verify, secure). verify: a level that
 * authenticates the peer (fingerprint - a pinned certificate -, verify,
 * secure). secure: fingerprint or secure. none and may meet no floor.
 */
bool tls_level_meets(uint8_t level, uint8_t floor);

/* The policy of one delivery once both rules are combined. */
struct tls_combined {
	uint8_t level;            /* evaluated: STARTTLS and the certificate are judged by it */
	bool testing;             /* level is only evaluated; enforced is what holds */
	uint8_t enforced;         /* the level enforced (= level without testing); below
	                             encrypt nothing is (plaintext allowed) */
	enum tls_rule level_by;   /* whose level is evaluated */
	enum tls_rule decided_by; /* whose level is enforced: the rule that decided */
};

/*
 * Combine the destination's level with the sender's floor (NULL: none).
 * Enforced: the destination's level when it meets an enforcing floor (a
 * destination in mode=testing enforces may), else the floor's. Evaluated:
 * the destination's level when it meets the floor (testing or not), else
 * the floor's. testing is set when the two differ, so a testing rule is
 * evaluated in full while the other one holds. Never weaker than either
 * enforcing rule: under an enforcing floor, c->enforced meets the floor.
 */
void tls_decide_combine(const struct tls_rule_level *dest, const struct tls_rule_level *floor,
                        struct tls_combined *c);

#endif
