/*
 * smtp_client.h - the outbound SMTP protocol engine (RFC 5321 client side
 * with PIPELINING, SIZE, 8BITMIME, SMTPUTF8, DSN, CHUNKING, STARTTLS and
 * ENHANCEDSTATUSCODES) as a library with no I/O and no DPDK, the mirror of
 * smtp_server.h: the caller feeds the server's reply bytes, drains the
 * command/body bytes, pulls the body through an ops callback and gets one
 * result per recipient. The same engine runs over the userspace TCP stack,
 * under TLS, or byte by byte in a test.
 *
 * Driving it (the seam the relay's delivery side wires to):
 *
 *	c = smtp_client_create(&cfg);         connection established, nothing sent
 *	smtp_client_send(c, &env);            the first message (may be queued
 *	                                      before the greeting has arrived)
 *	on readable:  rc = smtp_client_input(c, p, n, &used); consume(used)
 *	then / on writable: send smtp_client_output(), output_consume() what
 *	              the socket took, then smtp_client_run(c)
 *	rc == PG_OK:    waiting for the server (or idle: message_done was called
 *	                and the engine waits for smtp_client_send/_quit).
 *	rc == PG_AGAIN: parked on the caller - body_read said PG_AGAIN, the
 *	                output is full, or the TLS handshake hook is running.
 *	                Call smtp_client_run() when that has changed.
 *	rc == PG_DONE:  send what is in the output, then close the connection.
 *	timer:          arm smtp_client_timeout_ms() after every input/output;
 *	                on expiry call smtp_client_timeout() (4.4.2, PG_DONE).
 *	EOF/RST:        smtp_client_closed() (4.4.2 for whatever was pending).
 *
 * Result contract: after smtp_client_send(), rcpt_result is called exactly
 * once per recipient, then message_done once; only then may the caller
 * call smtp_client_send() again (connection reuse, RFC 5321 §4.1.1.5: the
 * engine sends RSET before every message but the first) or
 * smtp_client_quit(). The envelope must stay valid until message_done.
 *
 * Decisions (each also at the code that implements it):
 * - EHLO refused with anything but 421: fall back to HELO (RFC 5321 §3.2
 *   and §4.1.4; Postfix smtp_helo() does the same for every non-2xx but
 *   421). 421 anywhere: the server is closing (§3.8): every recipient not
 *   yet final gets that 421 and the session is over, without QUIT.
 * - Greeting 4xx/5xx: every recipient gets that reply; QUIT is sent unless
 *   it was 421 (§3.1: a server that greets 554 waits for QUIT).
 * - Pipelining (RFC 2920): RSET, MAIL, every RCPT and DATA go out as one
 *   group, replies are matched in order. If no recipient was accepted and
 *   the pipelined DATA still got 354, a lone "." is sent (RFC 2920 §3.1:
 *   "the client SHOULD send a single dot"); its reply is read and ignored.
 *   Without PIPELINING one command at a time, and DATA is not sent when no
 *   recipient was accepted.
 * - CHUNKING (RFC 3030), when advertised and cfg.prefer_bdat: MAIL/RCPT as
 *   above (without DATA), then BDAT chunks of up to SMTP_CLIENT_BDAT_CHUNK
 *   octets, each waiting for its 250 (not pipelined), the last "BDAT n LAST".
 * - The body is always sent with canonical CRLF line endings: a bare LF or
 *   bare CR read from the spool is sent as CRLF (SMTP smuggling,
 *   CVE-2023-51764; the server engine already only stores CRLF, so this is
 *   belt and braces against a damaged or foreign spool), dot-stuffed for
 *   DATA (RFC 5321 §4.5.2), ended with CRLF if the body lacked a final line
 *   ending, and lines over cfg.line_limit octets are folded with
 *   "CRLF SPACE" like Postfix smtp_line_length_limit (RFC 5321 §4.5.3.1.6).
 * - ESMTP parameters are sent only when the server advertised their
 *   extension: SIZE= (SIZE), BODY= (8BITMIME), SMTPUTF8 (SMTPUTF8), RET=,
 *   ENVID=, NOTIFY=, ORCPT= (DSN). A declared size over the server's SIZE
 *   limit fails the message at once, 552 5.3.4 (RFC 1870 §6.1, Postfix).
 *   A message that needs SMTPUTF8 (it was received with SMTPUTF8 and has a
 *   non-ASCII envelope address, or env.utf8_headers) to a server without
 *   SMTPUTF8 fails permanently, 553 5.6.7 (RFC 6531 §3.2 item 8 forbids
 *   sending it; RFC 6531 §3.5 X.6.7; Postfix bounces it with 5.6.7 too).
 *   Without such content it is sent without the SMTPUTF8 parameter
 *   (Postfix "smtputf8_autodetect" does the same downgrade).
 *   BODY=8BITMIME to a server without 8BITMIME: sent as is without BODY=
 *   (no MIME down-conversion; what most MTAs do in practice).
 * - TLS policy is the caller's: the engine sends STARTTLS when offered and
 *   cfg.starttls is set, runs the hook, and says EHLO again afterwards
 *   forgetting what it learnt before (RFC 3207 §4.2). Reply bytes the
 *   server sent after its 220 to STARTTLS are discarded (response
 *   injection, the client side of CVE-2011-0411). Then helo_done reports
 *   what the server offered and what STARTTLS got; it may stop the
 *   delivery (e.g. 4.7.4 under a strict level) with its own verdict.
 * - Results made by the engine itself (timeouts, lost connection,
 *   protocol errors, size, SMTPUTF8, TLS handshake) have `local` set, for
 *   the DSN's "reported by" and the delivery record of issue 6.
 */
#ifndef PG_SMTP_CLIENT_H
#define PG_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "result.h"
#include "smtp_server.h" /* shared envelope enums: smtp_body_type, smtp_dsn_ret, SMTP_NOTIFY_* */

struct smtp_client;

#define SMTP_CLIENT_TEXT_MAX 511  /* reply text kept per result (lines joined with " ") */
#define SMTP_CLIENT_LINE_MAX 2048 /* reply line kept; longer lines are truncated */
#define SMTP_CLIENT_KEYWORDS_MAX 511
#define SMTP_CLIENT_BDAT_CHUNK 16384

/* Extensions learnt from EHLO (RFC 1869 keywords). */
enum {
	SMTP_EXT_PIPELINING = 1u << 0,          /* RFC 2920 */
	SMTP_EXT_SIZE = 1u << 1,                /* RFC 1870 */
	SMTP_EXT_8BITMIME = 1u << 2,            /* RFC 6152 */
	SMTP_EXT_SMTPUTF8 = 1u << 3,            /* RFC 6531 */
	SMTP_EXT_CHUNKING = 1u << 4,            /* RFC 3030 */
	SMTP_EXT_DSN = 1u << 5,                 /* RFC 3461 */
	SMTP_EXT_STARTTLS = 1u << 6,            /* RFC 3207 */
	SMTP_EXT_ENHANCEDSTATUSCODES = 1u << 7, /* RFC 2034 */
};

/* The step a result comes from (for logs, DSNs and the delivery record). */
enum smtp_client_phase {
	SMTP_PHASE_GREETING,
	SMTP_PHASE_EHLO,
	SMTP_PHASE_HELO,
	SMTP_PHASE_STARTTLS,
	SMTP_PHASE_TLS,    /* the handshake (local) */
	SMTP_PHASE_POLICY, /* helo_done refused (the caller's verdict) */
	SMTP_PHASE_RSET,
	SMTP_PHASE_MAIL,
	SMTP_PHASE_RCPT,
	SMTP_PHASE_DATA,
	SMTP_PHASE_BODY, /* sending the body (local failures) */
	SMTP_PHASE_EOD,  /* the reply to end of data or to a BDAT chunk */
	SMTP_PHASE_QUIT,
	SMTP_PHASE_COUNT
};

const char *smtp_client_phase_name(enum smtp_client_phase p);

/* One reply as a result: the server's, or one the engine made (local). */
struct smtp_client_reply {
	uint16_t code;   /* 200..599 */
	char status[16]; /* RFC 3463 "5.1.1"; "c.0.0" when the server gave none */
	char text[SMTP_CLIENT_TEXT_MAX + 1]; /* controls replaced, lines joined by " " */
	enum smtp_client_phase phase;
	bool local; /* made by the engine, not said by the server */
};

/* What the server offered, for the policy and the delivery record (issue 6). */
struct smtp_client_info {
	char greeting[SMTP_CLIENT_TEXT_MAX + 1];
	bool esmtp;                                  /* EHLO worked (else HELO) */
	unsigned ext;                                /* SMTP_EXT_* of the last EHLO */
	uint64_t size_limit;                         /* SIZE n, 0 = none given */
	char keywords[SMTP_CLIENT_KEYWORDS_MAX + 1]; /* EHLO lines after the first, ","-joined */
	bool starttls_offered;                       /* the plaintext EHLO advertised STARTTLS */
	bool starttls_sent;
	struct smtp_client_reply starttls_reply; /* code 0 unless STARTTLS was sent */
	bool tls;                                /* the handshake completed */
};

/* One message to deliver. Strings are without <>; all must outlive it. */
struct smtp_client_envelope {
	const char *sender;       /* "" = null sender */
	const char *const *rcpts; /* nrcpt forward-paths */
	const unsigned *notify;   /* per recipient SMTP_NOTIFY_* or NULL */
	const char *const *orcpt; /* per recipient "type;xtext" or NULL/"" */
	uint32_t nrcpt;           /* >= 1 */
	uint64_t size;            /* body octets for SIZE=, 0 = not declared */
	enum smtp_body_type body; /* BODY= of the original MAIL */
	bool smtputf8;            /* the original MAIL had SMTPUTF8 */
	bool utf8_headers;        /* the caller knows the header needs SMTPUTF8 */
	enum smtp_dsn_ret ret;    /* RET= */
	const char *envid;        /* ENVID= (xtext), NULL/"" = none */
};

/*
 * Upcalls; `user` is cfg->owner. body_read and rcpt_result are required.
 */
struct smtp_client_ops {
	/*
	 * The next body bytes, as stored (CRLF lines, the engine stuffs and
	 * canonicalises). PG_OK: *p and *n (n > 0) valid until the next call;
	 * PG_DONE: the body is complete; PG_AGAIN: not yet (spool read in
	 * flight), call smtp_client_run() when it is; PG_ERROR: the body
	 * cannot be read - the connection is dropped without ending the DATA
	 * (a truncated message must never be delivered), 451 4.3.0.
	 */
	int (*body_read)(struct smtp_client *c, const uint8_t **p, size_t *n, void *owner);
	/* Final result of recipient `i` of the current envelope (exactly once). */
	void (*rcpt_result)(struct smtp_client *c, uint32_t i, const struct smtp_client_reply *r,
	                    void *owner);
	/* Every recipient has its result; smtp_client_send/_quit may follow. */
	void (*message_done)(struct smtp_client *c, void *owner);
	/*
	 * STARTTLS got 220: run the TLS handshake on the connection, then
	 * call smtp_client_tls_done(). The session is parked. Everything the
	 * engine was given after the 220 was dropped; the caller must not feed
	 * it plaintext bytes that arrived before the handshake either.
	 */
	void (*starttls)(struct smtp_client *c, void *owner);
	/*
	 * The handshake phase is over (EHLO/HELO done, after TLS if any):
	 * info says what the server offered. PG_OK: deliver; PG_DECLINED:
	 * every recipient gets *r (code/status/text; default 451 4.7.4) and
	 * the session ends with QUIT. NULL = always deliver.
	 */
	int (*helo_done)(struct smtp_client *c, const struct smtp_client_info *info,
	                 struct smtp_client_reply *r, void *owner);
	/* Optional trace of state changes; NULL = silent. */
	void (*trace)(struct smtp_client *c, const char *from, const char *to, void *owner);
	/*
	 * Optional: every server reply as it is parsed, with the phase it
	 * answers (the traffic generator times each SMTP phase with it).
	 * Called before the engine acts on the reply; NULL = not wanted.
	 */
	void (*reply)(struct smtp_client *c, const struct smtp_client_reply *r, void *owner);
};

struct smtp_client_config {
	const struct smtp_client_ops *ops;
	void *owner;
	const char *helo_name; /* ours, for EHLO/HELO ["localhost"] */
	bool starttls;         /* send STARTTLS when offered (hook required) [false] */
	bool prefer_bdat;      /* use BDAT when CHUNKING is offered [false] */
	bool no_pipelining;    /* one command at a time even if PIPELINING is offered [false] */
	uint32_t line_limit;   /* fold longer body lines, 0 = never [998, Postfix] */
	/* RFC 5321 §4.5.3.2 client timeouts, milliseconds. */
	uint32_t greeting_timeout_ms; /* §4.5.3.2.1 initial 220 [300000] */
	uint32_t helo_timeout_ms;     /* EHLO/HELO/STARTTLS (Postfix smtp_helo_timeout) [300000] */
	uint32_t mail_timeout_ms;     /* §4.5.3.2.2 [300000] */
	uint32_t rcpt_timeout_ms;     /* §4.5.3.2.3 [300000] */
	uint32_t data_timeout_ms;     /* §4.5.3.2.4 DATA initiation [120000] */
	uint32_t block_timeout_ms;    /* §4.5.3.2.5 data block [180000] */
	uint32_t dot_timeout_ms;      /* §4.5.3.2.6 DATA termination, BDAT replies [600000] */
	uint32_t rset_timeout_ms;     /* RSET (Postfix smtp_rset_timeout: 20 s) [20000] */
	uint32_t quit_timeout_ms;     /* QUIT (Postfix smtp_quit_timeout) [300000] */
};

void smtp_client_config_default(struct smtp_client_config *cfg);

/* A session on an established connection; NULL only when out of memory. */
struct smtp_client *smtp_client_create(const struct smtp_client_config *cfg);
void smtp_client_destroy(struct smtp_client *c);

/*
 * Deliver one message. Allowed when no message is in progress (right
 * after create, or after message_done). On a session that is already over
 * the results come at once (the reason the session ended). Returns what
 * smtp_client_run() returns.
 */
int smtp_client_send(struct smtp_client *c, const struct smtp_client_envelope *env);
/* No more messages: QUIT (RFC 5321 §4.1.1.10), then PG_DONE after its reply. */
int smtp_client_quit(struct smtp_client *c);

/*
 * Server bytes. *used is how many were taken; the rest must be offered
 * again. Returns PG_OK / PG_AGAIN / PG_DONE as above; never PG_ERROR for
 * anything a server can send.
 */
int smtp_client_input(struct smtp_client *c, const uint8_t *data, size_t len, size_t *used);
/* Go on after a PG_AGAIN (body bytes ready, output drained). */
int smtp_client_run(struct smtp_client *c);

/* Bytes to send, and how many the socket took. */
size_t smtp_client_output(const struct smtp_client *c, const uint8_t **p);
void smtp_client_output_consume(struct smtp_client *c, size_t n);

/*
 * The TLS handshake after the starttls upcall: ok - EHLO again; !ok - the
 * peer is in an undefined state, the session ends without QUIT and what is
 * pending gets 451 4.7.5 "Cannot start TLS: handshake failure" (the caller
 * may retry in plaintext on a new connection where its policy allows).
 */
void smtp_client_tls_done(struct smtp_client *c, bool ok);

/* The connection was closed or reset by the peer (4.4.2 for the pending). */
void smtp_client_closed(struct smtp_client *c);

/* Milliseconds of server silence allowed now; 0 = no timer (idle, parked). */
uint32_t smtp_client_timeout_ms(const struct smtp_client *c);
/* The timer fired: pending recipients get 451 4.4.2; returns PG_DONE. */
int smtp_client_timeout(struct smtp_client *c);

/* Introspection. */
const struct smtp_client_info *smtp_client_info(const struct smtp_client *c);
const char *smtp_client_state_name(const struct smtp_client *c);
/* Why the session ended (code 0 while it has not). */
const struct smtp_client_reply *smtp_client_failure(const struct smtp_client *c);
/* Whether another message may be sent on this session. */
bool smtp_client_reusable(const struct smtp_client *c);
size_t smtp_client_footprint(const struct smtp_client *c);

#endif
