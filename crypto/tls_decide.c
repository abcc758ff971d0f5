/*
 * tls_decide.c - the outbound TLS decision (tls_decide.h). Every branch
 * that decides whether mail may go in plaintext is here, and nowhere else.
 */
#include <stdio.h>
#include <string.h>

#include "snap_format.h"
#include "tls_decide.h"

bool tls_decide_starttls(uint8_t level, bool testing, bool local_tls, bool peer_broken)
{
	if (level == SNAP_TLS_NONE || !local_tls)
		return false;
	/*
	 * Strict levels always try (and defer without TLS). may and
	 * mode=testing skip a peer whose handshake failed lately: its mail
	 * goes in plaintext on a fresh connection, as Postfix retries "may"
	 * without TLS.
	 */
	if ((level == SNAP_TLS_MAY || testing) && peer_broken)
		return false;
	return true;
}

/* Why TLS did not happen although the level requires it (Postfix's wording). */
static void tls_decide_no_tls(const struct tls_facts *f, struct tls_decision *d)
{
	const char *host = f->host != NULL ? f->host : "?";

	snprintf(d->status, sizeof(d->status), "4.7.4");
	if (!f->local_tls)
		snprintf(d->why, sizeof(d->why), "TLS is required, but unavailable locally");
	else if (!f->offered)
		snprintf(d->why, sizeof(d->why), "TLS is required, but was not offered by host %s",
		         host);
	else if (f->starttls_code != 0)
		snprintf(d->why, sizeof(d->why),
		         "TLS is required, but host %s refused to start TLS: %u %.100s", host,
		         f->starttls_code, f->starttls_text != NULL ? f->starttls_text : "");
	else
		snprintf(d->why, sizeof(d->why), "TLS is required, but was not used");
}

void tls_decide(const struct tls_facts *f, struct tls_decision *d)
{
	bool strict = f->level >= SNAP_TLS_ENCRYPT;

	memset(d, 0, sizeof(*d));
	if (f->handshake == TLS_HS_FAILED) {
		/*
		 * may, and mode=testing of any level: the mail goes again on a
		 * new connection without STARTTLS (never on this one: after
		 * STARTTLS the server expects TLS, RFC 3207 §4.1).
		 */
		snprintf(d->why, sizeof(d->why), "Cannot start TLS: %.170s",
		         f->handshake_why != NULL ? f->handshake_why : "handshake failed");
		if (!strict || f->testing) {
			d->action = TLS_RETRY_PLAIN;
			d->would_defer = strict;
			if (strict)
				snprintf(d->status, sizeof(d->status), "4.7.5");
			return;
		}
		d->action = TLS_DEFER;
		snprintf(d->status, sizeof(d->status), "4.7.5");
		return;
	}
	d->action = f->handshake == TLS_HS_OK ? TLS_SEND_TLS : TLS_SEND_PLAIN;
	if (!strict)
		return; /* none, may: plaintext is allowed, the certificate is not checked */
	if (f->handshake == TLS_HS_NONE) {
		tls_decide_no_tls(f, d);
	} else if (!f->cert_ok) {
		snprintf(d->status, sizeof(d->status), "4.7.5");
		snprintf(d->why, sizeof(d->why), "%s",
		         f->cert_why != NULL ? f->cert_why : "Server certificate not verified");
	} else {
		return; /* TLS that meets the level */
	}
	if (f->testing) {
		d->would_defer =
		    true; /* logged and counted; the mail goes as the weaker levels allow */
		return;
	}
	d->action = TLS_DEFER;
}

const char *tls_decide_outcome(const struct tls_decision *d, bool tls_on, enum tls_verdict verdict,
                               bool body_sent)
{
	if (d != NULL && d->action == TLS_DEFER)
		return "deferred";
	if (d != NULL && d->would_defer)
		return "would_defer";
	if (!body_sent)
		return "not_sent";
	if (!tls_on)
		return "plaintext";
	if (verdict == TLS_VERDICT_VERIFIED)
		return "verified";
	if (verdict == TLS_VERDICT_FP_MATCHED)
		return "fingerprint";
	return "encrypted";
}
