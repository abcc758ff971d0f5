/*
 * dsn.h - Delivery Status Notifications (RFC 3464) as the relay sends them
 * to an envelope sender: a multipart/report (RFC 6522) with a text/plain
 * explanation, the message/delivery-status fields and the returned message
 * or its headers, written as CRLF text ready to be spooled. A pure library:
 * no DPDK, no allocation, no I/O (outbound.c owns the spool record).
 *
 * Decisions:
 * - Wording, headers and part layout follow Postfix's bounce(8) (failure,
 *   delay and success templates); From: is MAILER-DAEMON@reporting_mta,
 *   Auto-Submitted: auto-replied (RFC 3834 §5) so that no responder answers
 *   it, and the DSN itself goes out with the null reverse-path (RFC 3464 §3,
 *   the caller's job).
 * - The delivery-status fields are in the order of the ABNF of RFC 3464
 *   §2.2 and §2.3 (Original-Envelope-Id before Reporting-MTA,
 *   Original-Recipient before Final-Recipient).
 * - ENVID and ORCPT are given as received (xtext, RFC 3461 §4.2, §4.4) and
 *   reported decoded, as Postfix does; a value whose decoding would put a
 *   control (or, outside SMTPUTF8, a non-ASCII octet) in the report is
 *   reported still encoded.
 * - The returned content (RFC 3461 §4.3): the whole message only with RET
 *   not HDRS, a complete spooled copy and at least one failed recipient
 *   ("if a DSN contains no indications of delivery failure, only the
 *   headers of the message SHOULD be returned"); otherwise the header block.
 *   No header bytes at all: the optional third part is left out.
 * - Every line this file writes is at most DSN_LINE_MAX octets: values are
 *   folded at spaces near 78 columns (RFC 5322 §2.1.1, §2.2.3), and a word
 *   longer than a line is cut with CRLF SP. Controls in values (a
 *   multi-line SMTP reply's CRLFs) become one space. The returned original
 *   is copied as it is: it is CRLF text already, and the outbound client
 *   wraps text lines over 1000 octets as it does for any message.
 * - The MIME boundary is "DSN=_" + the DSN's Message-ID (boundary chars
 *   only) + "/" + 8 hex digits, the first value of the counter for which
 *   the boundary occurs neither in the returned original nor in any
 *   diagnostic (RFC 2046 §5.1.1). "=_" cannot occur in quoted-printable or
 *   base64 text (RFC 2045 §6.7). Its length does not depend on the counter,
 *   so dsn_size_bound() needs no search.
 * - SMTPUTF8 originals (utf8) get message/global-delivery-status and
 *   message/global or message/global-headers (RFC 6533 §6), report-type
 *   global-delivery-status, UTF-8 addresses as "utf-8;" address type, and a
 *   utf-8 text/plain part; otherwise the report is US-ASCII (non-ASCII
 *   octets in values become '?'), except the returned original which may be
 *   8bit (then labelled Content-Transfer-Encoding: 8bit, RFC 6152).
 */
#ifndef PG_RELAY_DSN_H
#define PG_RELAY_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 5322 §2.1.1: a line is at most 998 octets without its CRLF. */
#define DSN_LINE_MAX 998
/* RFC 2046 §5.1.1: a boundary is 1 to 70 characters. */
#define DSN_BOUNDARY_MAX 70

/* RFC 3464 §2.3.3 action-value. */
enum dsn_action {
	DSN_FAILED,
	DSN_DELAYED,
	DSN_DELIVERED,
	DSN_RELAYED,
	DSN_EXPANDED,
};

struct dsn_rcpt {
	const char *rcpt;  /* forward-path without <> */
	const char *orcpt; /* ORCPT as received "rfc822;xtext", or NULL/"" */
	enum dsn_action action;
	const char *status;       /* "5.1.1"; NULL/"": X.0.0 of the action */
	const char *remote_mta;   /* "198.19.0.2" (Remote-MTA: dns; ...) or NULL */
	const char *diagnostic;   /* the SMTP reply "550 5.1.1 ..." or NULL */
	int64_t last_attempt;     /* unix seconds, 0 = omit */
	int64_t will_retry_until; /* unix seconds, DSN_DELAYED only, 0 = omit */
};

struct dsn_msg {
	const char *reporting_mta; /* our myhostname */
	const char *sender;        /* the original envelope sender, never "" */
	const char *envid;         /* ENVID as received (xtext) or NULL/"" */
	int64_t arrival;           /* Arrival-Date, unix seconds, 0 = omit */
	int64_t now;               /* Date: */
	const char *message_id;    /* the DSN's own Message-ID, without <> */
	bool ret_hdrs;             /* RET=HDRS */
	const uint8_t *orig;       /* the original as spooled (CRLF), or a prefix */
	size_t orig_len;
	bool orig_complete; /* orig is the whole message */
	const struct dsn_rcpt *rcpts;
	uint32_t nrcpt; /* >= 1 */
	bool utf8;      /* the original was sent with SMTPUTF8 (RFC 6533) */
};

/*
 * An upper bound of dsn_write()'s output for m, without scanning the
 * original (exact but for up to three Content-Transfer-Encoding lines).
 */
size_t dsn_size_bound(const struct dsn_msg *m);

/*
 * Write the DSN for m into buf: the number of bytes written, or 0 when cap
 * is too small (buf's content is then unspecified). Not NUL-terminated.
 */
size_t dsn_write(const struct dsn_msg *m, char *buf, size_t cap);

/*
 * The DSN of m is 8-bit text: it must be relayed with BODY=8BITMIME
 * (RFC 6152), and with SMTPUTF8 as well when m->utf8.
 */
bool dsn_is_8bit(const struct dsn_msg *m);

/* "failed", "delayed", ... (RFC 3464 §2.3.3). */
const char *dsn_action_name(enum dsn_action a);

#endif /* PG_RELAY_DSN_H */
