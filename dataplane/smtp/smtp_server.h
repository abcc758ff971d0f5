/*
 * smtp_server.h - the inbound SMTP protocol engine (RFC 5321 and the ESMTP
 * extensions of DESIGN.md) as a library with no I/O and no DPDK: the caller
 * feeds received bytes, drains reply bytes, and answers the upcalls of a
 * small ops table (what the relay must decide or store). The same engine
 * runs under the userspace TCP stack, under TLS, or byte by byte in a test.
 *
 * Driving it (the seam the TCP/TLS layer wires to):
 *
 *	s = smtp_server_create(&cfg, &peer);   greeting is already in the output
 *	on readable:  peek the receive spans; for each span
 *	                  rc = smtp_server_input(s, p, n, &used); consume(used);
 *	                  stop at the first rc != PG_OK
 *	              then send smtp_server_output() and output_consume() what
 *	              the socket took (writable events do the rest)
 *	rc == PG_AGAIN: the engine is parked - waiting for an upcall's deferred
 *	              answer (smtp_server_resume / _message_committed), for the
 *	              caller to drain output, or for data_chunk to take bytes.
 *	              Call smtp_server_input() again (with what is left, or with
 *	              len 0) when that has happened.
 *	rc == PG_DONE: send what is in the output, then close the connection.
 *	timer:        arm smtp_server_timeout_ms() after every input/output;
 *	              on expiry call smtp_server_timeout() (421 4.4.2, PG_DONE).
 *
 * Transaction contract: once mail_from accepted a sender, exactly one of
 * message_end or message_abort is called for that transaction.
 *
 * Decisions (see also enum smtp_bare_policy):
 * - Command lines: cmd_line_max octets with CRLF (default 2048: RFC 5321
 *   §4.5.3.1.4's 512 plus the room RFC 1869/3461/6531 parameters need, as
 *   Postfix's line_length_limit). Longer: "500 5.5.2 Error: line too long",
 *   the rest of the line skipped to its LF, the session goes on.
 * - Text lines in DATA/BDAT over 1000 octets (§4.5.3.1.6) are accepted
 *   unchanged, as Postfix's smtpd does: the body is streamed, never
 *   line-buffered, so nothing can overflow; message_end reports max_line
 *   and the outbound SMTP client wraps (Postfix smtp_line_length_limit).
 * - The Received: header (RFC 5321 §4.4) is made by the engine when the
 *   message starts (after data_start, so the queue id can be set there) and
 *   is the first data_chunk bytes: the spool stores one exact byte stream.
 * - Enhanced status codes (RFC 2034/3463) on every 2xx/4xx/5xx reply but
 *   the greeting and the HELO/EHLO replies (RFC 2034 §3); 354 has none.
 */
#ifndef PG_SMTP_SERVER_H
#define PG_SMTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "result.h"

struct smtp_server;

/* RFC 5321 §4.5.3.1: path 256 octets incl. <>, local part 64, domain 255. */
#define SMTP_PATH_MAX 256
#define SMTP_LOCAL_MAX 64
#define SMTP_DOMAIN_MAX 255
#define SMTP_ENVID_MAX 100 /* RFC 3461 §4.4 */
#define SMTP_ORCPT_MAX 500 /* RFC 3461 §4.2: the ORCPT parameter value */
#define SMTP_QUEUE_ID_MAX 31
#define SMTP_TLS_INFO_MAX 127

/*
 * What to do with a bare <LF> or bare <CR> in a command line, a DATA body
 * or a BDAT chunk (SMTP smuggling, CVE-2023-51764; Postfix
 * smtpd_forbid_bare_newline). Whatever the policy, the end of DATA is
 * only <CRLF>.<CRLF> on the wire: a "." line that follows a bare line
 * ending never ends the data.
 */
enum smtp_bare_policy {
	/*
	 * The command is refused, a message is refused at its end, both with
	 * 550 5.5.2 (Postfix "reject"); the session goes on. The default.
	 */
	SMTP_BARE_REJECT = 0,
	/*
	 * Accept, and pass the line ending on as <CRLF> (Postfix
	 * "normalize", extended to bare <CR> so that nothing but canonical
	 * CRLF ever reaches the spool and the next hop).
	 */
	SMTP_BARE_NORMALIZE,
};

enum smtp_body_type {
	SMTP_BODY_UNSPEC = 0, /* no BODY= parameter */
	SMTP_BODY_7BIT,
	SMTP_BODY_8BITMIME, /* RFC 6152 */
};

enum smtp_dsn_ret {
	SMTP_RET_UNSPEC = 0,
	SMTP_RET_FULL, /* RFC 3461 §4.3 */
	SMTP_RET_HDRS,
};

/* RFC 3461 §4.1 NOTIFY; 0 means the parameter was not given. */
enum {
	SMTP_NOTIFY_NEVER = 1u << 0,
	SMTP_NOTIFY_SUCCESS = 1u << 1,
	SMTP_NOTIFY_FAILURE = 1u << 2,
	SMTP_NOTIFY_DELAY = 1u << 3,
};

/* The MAIL FROM of the current transaction, as parsed and validated. */
struct smtp_envelope {
	char sender[SMTP_PATH_MAX + 1]; /* without <>; "" is the null sender */
	uint64_t size;                  /* RFC 1870 SIZE=, 0 when not given */
	enum smtp_body_type body;
	bool smtputf8; /* RFC 6531 SMTPUTF8 on MAIL */
	enum smtp_dsn_ret ret;
	char envid[SMTP_ENVID_MAX + 1]; /* RFC 3461 ENVID, still xtext-encoded; "" = none */
	uint32_t nrcpt;                 /* recipients accepted so far */
};

struct smtp_rcpt {
	char addr[SMTP_PATH_MAX + 1];   /* without <>, source route dropped */
	unsigned notify;                /* SMTP_NOTIFY_* mask, 0 = not given */
	char orcpt[SMTP_ORCPT_MAX + 1]; /* "addr-type;xtext" as received, "" = none */
};

/* What the engine learnt about a body, given with message_end. */
struct smtp_message_info {
	uint64_t size;     /* body bytes handed to data_chunk (Received: included) */
	uint32_t max_line; /* longest line in octets without CRLF (RFC 5321 §4.5.3.1.6) */
	bool bdat;         /* the body came by CHUNKING (RFC 3030) */
};

/*
 * An upper layer's answer to an upcall that it refuses or defers. code is
 * 200..599, status an RFC 3463 enhanced code ("5.7.1"), text one line with
 * no CR/LF (the engine replaces control characters). All three are copied
 * before the call that takes the verdict returns. A zero code means "use
 * the engine's default reply for that situation".
 */
struct smtp_verdict {
	uint16_t code;
	const char *status;
	const char *text;
};

/*
 * Upcalls. `user` is cfg->owner. The decision upcalls return
 *   PG_OK        accept (the engine sends its usual 250/354)
 *   PG_DECLINED  refuse with *v (default: 554 5.7.1 / 550 5.7.1 / 554 5.3.0)
 *   PG_ERROR     temporary failure (451 4.3.0 unless *v says otherwise)
 *   PG_AGAIN     answer later with smtp_server_resume() (message_end:
 *                smtp_server_message_committed()); the session is parked
 *                and reads no further input until then.
 * Every entry but data_chunk may be NULL (accept / do nothing).
 */
struct smtp_server_ops {
	int (*mail_from)(struct smtp_server *s, const struct smtp_envelope *env,
	                 struct smtp_verdict *v, void *owner);
	int (*rcpt_to)(struct smtp_server *s, const struct smtp_envelope *env,
	               const struct smtp_rcpt *rcpt, struct smtp_verdict *v, void *owner);
	/*
	 * DATA or the first BDAT, before 354 / before the first chunk is
	 * read: the last moment to refuse cheaply (spool full: 452 4.3.1) and
	 * to call smtp_server_set_queue_id() for the Received: header.
	 */
	int (*data_start)(struct smtp_server *s, const struct smtp_envelope *env,
	                  struct smtp_verdict *v, void *owner);
	/*
	 * Body bytes: un-dot-stuffed, line endings canonical CRLF; the first
	 * chunk of every message is the Received: header the engine made.
	 * PG_OK = took all; PG_AGAIN = took nothing, park (backpressure; call
	 * smtp_server_input() again later); PG_ERROR = the store failed: the
	 * message is dropped (message_abort) and refused 451 4.3.0 at its end.
	 */
	int (*data_chunk)(struct smtp_server *s, const uint8_t *p, size_t n, void *owner);
	/* End of data (or BDAT LAST) - usually PG_AGAIN until the spool commit. */
	int (*message_end)(struct smtp_server *s, const struct smtp_envelope *env,
	                   const struct smtp_message_info *info, struct smtp_verdict *v,
	                   void *owner);
	/* The transaction opened by mail_from was abandoned (RSET, errors, close). */
	void (*message_abort)(struct smtp_server *s, void *owner);
	/*
	 * STARTTLS accepted: "220 2.0.0 Ready to start TLS" is in the output.
	 * Send it, drop every plaintext byte already received (the engine
	 * already drops what it was given - CVE-2011-0411), run the handshake,
	 * then call smtp_server_tls_started(). The session is parked until then.
	 */
	void (*starttls)(struct smtp_server *s, void *owner);
	/* QUIT received; 221 is in the output and input returns PG_DONE. */
	void (*quit)(struct smtp_server *s, void *owner);
	/* Optional clock for the Received: date (tests); NULL = time(NULL). */
	time_t (*now)(void *owner);
	/* Optional trace of state changes (OpenSMTPD-style); NULL = silent. */
	void (*trace)(struct smtp_server *s, const char *from, const char *to, void *owner);
};

/* Limits and features; smtp_server_config_default() fills the [defaults]. */
struct smtp_server_config {
	const struct smtp_server_ops *ops;
	void *owner;
	const char *hostname;       /* ours, in the greeting and Received: ["localhost"] */
	uint64_t max_message_size;  /* SIZE limit, 0 = unlimited [10240000, Postfix's] */
	uint32_t max_rcpt;          /* per message (452 4.5.3) [1000] */
	uint32_t max_hops;          /* Received: fields incl. ours, beyond: 554 5.4.6; 0 = no
	                               limit [50, Postfix's hopcount_limit] */
	uint32_t hard_error_limit;  /* errors before 421 4.7.0 [20] */
	uint32_t cmd_line_max;      /* octets incl. CRLF, >= 512 [2048] */
	uint32_t cmd_timeout_ms;    /* RFC 5321 §4.5.3.2.7 server timeout [300000] */
	uint32_t data_timeout_ms;   /* between body bytes [300000] */
	enum smtp_bare_policy bare; /* [SMTP_BARE_REJECT] */
	bool starttls;              /* advertise STARTTLS (the hook must be set) [false] */
	bool tls_required;          /* MAIL before TLS gets 530 5.7.0 [false] */
	bool over_capacity;         /* greet 421 4.3.2 and close [false] */
};

void smtp_server_config_default(struct smtp_server_config *cfg);

/* The client as the upper layer knows it (strings copied). */
struct smtp_peer {
	const char *addr;     /* "198.18.0.2" or an IPv6 text form */
	const char *hostname; /* verified reverse DNS name, or NULL */
};

/*
 * A session; the greeting (220, or 421 when cfg->over_capacity) is already
 * in its output. NULL only when out of memory. cfg and peer are copied;
 * cfg->ops and the strings it points to must outlive the session.
 */
struct smtp_server *smtp_server_create(const struct smtp_server_config *cfg,
                                       const struct smtp_peer *peer);
/*
 * Free the session. A transaction still open is aborted (message_abort),
 * unless it is already with the upper layer (message_end returned
 * PG_AGAIN): then the upper layer must forget its handle on its own.
 */
void smtp_server_destroy(struct smtp_server *s);

/*
 * Feed received bytes. *used says how many were taken (a prefix of data);
 * the rest must be offered again later. PG_OK: all taken, want more.
 * PG_AGAIN: parked (see the top of this file). PG_DONE: the session is
 * over; drain the output and close. Never PG_ERROR for anything a client
 * can send.
 */
int smtp_server_input(struct smtp_server *s, const uint8_t *data, size_t len, size_t *used);

/* Reply bytes waiting to be sent, and how many the socket took. */
size_t smtp_server_output(const struct smtp_server *s, const uint8_t **p);
void smtp_server_output_consume(struct smtp_server *s, size_t n);

/*
 * The deferred answer to mail_from, rcpt_to or data_start (the result and
 * verdict mean what the upcall's return would have meant; PG_AGAIN is not
 * allowed). The reply is queued; then call smtp_server_input() again.
 */
void smtp_server_resume(struct smtp_server *s, int result, const struct smtp_verdict *v);
/*
 * The deferred answer to message_end: ok = on stable storage (250 2.0.0
 * Ok: queued as ID, or v), !ok = 451 4.3.0 unless v says otherwise.
 */
void smtp_server_message_committed(struct smtp_server *s, bool ok, const struct smtp_verdict *v);

/*
 * TLS is up (after the starttls upcall): the engine forgets the HELO name
 * (RFC 3207 §4.2) and records tls_info (e.g. "TLSv1.3 with cipher
 * TLS_AES_256_GCM_SHA384 (256/256 bits)") for the Received: header.
 * ok = false: the handshake failed; the session is over (input says PG_DONE).
 */
void smtp_server_tls_started(struct smtp_server *s, bool ok, const char *tls_info);

/* Queue id of the current message, for Received: and "queued as". */
void smtp_server_set_queue_id(struct smtp_server *s, const char *id);

/*
 * Milliseconds of client silence allowed in the current state (RFC 5321
 * §4.5.3.2); 0 = no timer (parked on the upper layer, or closed).
 */
uint32_t smtp_server_timeout_ms(const struct smtp_server *s);
/* The timer fired: 421 4.4.2 into the output; returns PG_DONE. */
int smtp_server_timeout(struct smtp_server *s);

/* Introspection (tests, diagnostics, the session list of posternctl). */
const char *smtp_server_state_name(const struct smtp_server *s);
const char *smtp_server_helo(const struct smtp_server *s);
const struct smtp_envelope *smtp_server_envelope(const struct smtp_server *s);
uint32_t smtp_server_errors(const struct smtp_server *s);
/*
 * The current message is being refused as a mail loop: more Received:
 * fields than cfg.max_hops (true from the message_abort upcall on).
 */
bool smtp_server_loop_detected(const struct smtp_server *s);
/* Bytes held by the session object (fixed: no growth with input). */
size_t smtp_server_footprint(const struct smtp_server *s);

#endif
