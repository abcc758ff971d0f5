/*
 * smtp_server.c - the SMTP server session: lifecycle, the resumable input
 * loop (command lines, DATA bodies, BDAT chunks, split at any byte), the
 * body decoders with the SMTP smuggling defence, the end of a message and
 * its asynchronous commit, timeouts and limits. Commands themselves are in
 * smtp_cmd.c, reply text in smtp_reply.c.
 */
#include <assert.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "smtp_private.h"

static const char *const state_names[SMTP_S_COUNT] = {
    [SMTP_S_GREETED] = "GREETED", [SMTP_S_HELO] = "HELO", [SMTP_S_MAIL] = "MAIL",
    [SMTP_S_RCPT] = "RCPT",       [SMTP_S_DATA] = "DATA", [SMTP_S_CHUNKING] = "CHUNKING",
    [SMTP_S_COMMIT] = "COMMIT",   [SMTP_S_TLS] = "TLS",   [SMTP_S_CLOSED] = "CLOSED",
};

const char *smtp_state_name(enum smtp_state st)
{
	return st < SMTP_S_COUNT ? state_names[st] : "?";
}

/* The one place the state changes, traced (OpenSMTPD smtp_enter_state). */
void smtp_set_state(struct smtp_server *s, enum smtp_state st)
{
	assert(st < SMTP_S_COUNT);
	if (s->state == st)
		return;
	if (s->ops->trace)
		s->ops->trace(s, state_names[s->state], state_names[st], s->cfg.owner);
	s->state = st;
}

void smtp_server_config_default(struct smtp_server_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->hostname = "localhost";
	cfg->max_message_size = 10240000;
	cfg->max_rcpt = 1000;
	cfg->max_hops = 50;
	cfg->hard_error_limit = 20;
	cfg->cmd_line_max = 2048;
	cfg->cmd_timeout_ms = 300000;
	cfg->data_timeout_ms = 300000;
	cfg->bare = SMTP_BARE_REJECT;
}

static void copy_str(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

struct smtp_server *smtp_server_create(const struct smtp_server_config *cfg,
                                       const struct smtp_peer *peer)
{
	struct smtp_server *s;
	uint32_t linemax = cfg->cmd_line_max;

	assert(cfg->ops && cfg->ops->data_chunk);
	if (linemax < SMTP_CMD_LINE_MIN)
		linemax = SMTP_CMD_LINE_MIN;
	if (linemax > SMTP_CMD_LINE_CAP)
		linemax = SMTP_CMD_LINE_CAP;
	/*
	 * malloc + memset, not calloc: for a block this size jemalloc makes
	 * zeroed memory by madvise(MADV_DONTNEED) on a recycled extent, and
	 * the page faults and TLB shootdowns that follow cost far more than
	 * the memset (found by tools/bench/tls.sh: most of a session's CPU).
	 * explicit_bzero because GCC folds malloc + memset(0) back into calloc.
	 */
	s = malloc(sizeof(*s) + linemax);
	if (!s)
		return NULL;
	explicit_bzero(s, sizeof(*s) + linemax);
	s->cfg = *cfg;
	s->cfg.cmd_line_max = linemax;
	s->ops = cfg->ops;
	s->line = (char *)(s + 1);
	copy_str(s->hostname, sizeof(s->hostname), cfg->hostname);
	copy_str(s->peer_addr, sizeof(s->peer_addr), peer ? peer->addr : NULL);
	copy_str(s->peer_name, sizeof(s->peer_name), peer ? peer->hostname : NULL);
	/* Names in Received: must stay a Domain; anything else is left out. */
	if (!s->peer_name[0] ||
	    strspn(s->peer_name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                         "0123456789.-_") != strlen(s->peer_name))
		s->peer_name[0] = '\0';
	if (strspn(s->peer_addr, "0123456789abcdefABCDEF.:") != strlen(s->peer_addr) ||
	    !s->peer_addr[0])
		copy_str(s->peer_addr, sizeof(s->peer_addr), "0.0.0.0");
	s->state = SMTP_S_GREETED;
	s->in = SMTP_IN_LINE;
	if (cfg->over_capacity) {
		/* DESIGN.md "backpressure before exhaustion"; RFC 5321 §3.1 allows 421 here. */
		smtp_reply(s, 421, "4.3.2",
		           "%s Service not available, closing transmission channel", s->hostname);
		smtp_close(s);
	} else {
		/* RFC 2034 §3: no enhanced code in the greeting. */
		smtp_reply(s, 220, NULL, "%s ESMTP Postern", s->hostname);
	}
	return s;
}

void smtp_server_destroy(struct smtp_server *s)
{
	if (!s)
		return;
	if (s->txn_open && s->await != SMTP_AWAIT_END)
		smtp_txn_reset(s, true);
	free(s);
}

/*
 * Forget the transaction (RFC 5321 §4.1.1.5 RSET semantics). With abort,
 * tell the upper layer the transaction it accepted is abandoned.
 */
void smtp_txn_reset(struct smtp_server *s, bool abort)
{
	if (s->txn_open && abort && s->ops->message_abort)
		s->ops->message_abort(s, s->cfg.owner);
	s->txn_open = false;
	memset(&s->env, 0, sizeof(s->env));
	s->first_rcpt[0] = '\0';
	s->queue_id[0] = '\0';
	s->rcpt_tried = 0;
	s->msg_fail = SMTP_MSG_OK;
	s->body_fill = 0;
	s->eod = false;
}

void smtp_close(struct smtp_server *s)
{
	/* A pending upcall stays pending: its late answer is then ignored. */
	if (s->txn_open && s->await != SMTP_AWAIT_END)
		smtp_txn_reset(s, true);
	s->in = SMTP_IN_DROP;
	smtp_set_state(s, SMTP_S_CLOSED);
}

/*
 * A command that failed through the client's fault. Postfix
 * smtpd_hard_error_limit: past the limit, 421 4.7.0 and disconnect.
 */
void smtp_count_error(struct smtp_server *s)
{
	if (++s->errors >= s->cfg.hard_error_limit && s->cfg.hard_error_limit > 0 &&
	    s->state != SMTP_S_CLOSED) {
		smtp_reply(s, 421, "4.7.0", "%s Error: too many errors", s->hostname);
		smtp_close(s);
	}
}

/* ---- body ------------------------------------------------------------ */

/* The message will be refused at its end; the upper layer drops it now. */
static void body_fail(struct smtp_server *s, enum smtp_msg_fail why)
{
	if (s->msg_fail != SMTP_MSG_OK || s->bdat_skip)
		return;
	s->msg_fail = why;
	s->body_fill = 0;
	if (s->txn_open && s->ops->message_abort)
		s->ops->message_abort(s, s->cfg.owner);
	s->txn_open = false;
}

/* Hand the batched body to the upper layer. PG_OK or PG_AGAIN. */
static int body_flush(struct smtp_server *s)
{
	int rc;

	if (s->body_fill == 0)
		return PG_OK;
	if (s->msg_fail != SMTP_MSG_OK) {
		s->body_fill = 0;
		return PG_OK;
	}
	rc = s->ops->data_chunk(s, s->body, s->body_fill, s->cfg.owner);
	if (rc == PG_AGAIN)
		return PG_AGAIN;
	if (rc != PG_OK)
		body_fail(s, SMTP_MSG_STORE);
	else
		s->body_total += s->body_fill;
	s->body_fill = 0;
	return PG_OK;
}

/* Room for at least n more body bytes? (The decoders emit at most 2 per step.) */
static bool body_room(struct smtp_server *s, size_t n)
{
	return s->body_fill + n <= SMTP_BODY_BUF;
}

/*
 * RFC 5321 §6.3: "a relay MUST ... count the number of Received header
 * fields" to detect a loop; beyond the limit the message is refused
 * (554 5.4.6, RFC 3463 "routing loop detected") before any 250, as
 * Postfix's hopcount_limit does. The count covers the header section
 * only: a Received: line in the body is content. p[0..n) holds no CR/LF.
 */
static void hdr_colon(struct smtp_server *s)
{
	s->hdr = SMTP_H_LINE;
	if (s->hdr_match == 8 && ++s->hops > s->cfg.max_hops && s->cfg.max_hops != 0)
		body_fail(s, SMTP_MSG_HOPS);
}

static void hdr_scan(struct smtp_server *s, const uint8_t *p, size_t n)
{
	static const char received[] = "received";

	for (size_t i = 0; i < n && s->hdr != SMTP_H_LINE && s->hdr != SMTP_H_BODY; i++) {
		uint8_t c = p[i];

		switch (s->hdr) {
		case SMTP_H_BOL:
			if (c == ' ' || c == '\t') {
				s->hdr = SMTP_H_LINE; /* a folded continuation of the field above */
				break;
			}
			if (c == ':' || c < 33 || c > 126) {
				s->hdr = SMTP_H_BODY; /* not a field: the body has begun */
				break;
			}
			s->hdr = SMTP_H_NAME;
			s->hdr_match = 0;
			/* fall through */
		case SMTP_H_NAME:
			if (c == ':') {
				hdr_colon(s);
				break;
			}
			if (c == ' ' || c == '\t') {
				s->hdr = SMTP_H_WSP;
				break;
			}
			if (c < 33 || c > 126) {
				s->hdr = SMTP_H_BODY;
				break;
			}
			if (s->hdr_match < 8 && (c | 0x20) == received[s->hdr_match])
				s->hdr_match++;
			else
				s->hdr_match = 9;
			break;
		case SMTP_H_WSP:
			if (c == ' ' || c == '\t')
				break;
			if (c == ':')
				hdr_colon(s);
			else
				s->hdr = SMTP_H_BODY;
			break;
		default:
			break;
		}
	}
}

/* Body bytes with no CR or LF among them. */
static void emit_run(struct smtp_server *s, const uint8_t *p, size_t n)
{
	if (s->msg_fail != SMTP_MSG_OK || s->bdat_skip)
		return;
	if (s->hdr != SMTP_H_BODY) {
		hdr_scan(s, p, n);
		if (s->msg_fail != SMTP_MSG_OK)
			return;
	}
	s->body_len += n;
	if (s->cfg.max_message_size && s->body_len > s->cfg.max_message_size) {
		body_fail(s, SMTP_MSG_SIZE); /* RFC 1870 §6.3: refuse at the end */
		return;
	}
	memcpy(s->body + s->body_fill, p, n);
	s->body_fill += n;
	s->cur_line += (uint32_t)n;
	s->body_bol = false;
}

static void emit_crlf(struct smtp_server *s)
{
	if (s->msg_fail != SMTP_MSG_OK || s->bdat_skip)
		return;
	if (s->cur_line > s->max_line)
		s->max_line = s->cur_line;
	s->cur_line = 0;
	/* an empty line (or one that is no field) ends the header section */
	s->hdr = s->hdr == SMTP_H_LINE ? SMTP_H_BOL : SMTP_H_BODY;
	s->body_len += 2;
	if (s->cfg.max_message_size && s->body_len > s->cfg.max_message_size) {
		body_fail(s, SMTP_MSG_SIZE);
		return;
	}
	s->body[s->body_fill++] = '\r';
	s->body[s->body_fill++] = '\n';
	s->body_bol = true;
}

/* A bare <LF> or <CR> in the body: refuse the message, or pass on CRLF. */
static void bare_ending(struct smtp_server *s, enum smtp_msg_fail why)
{
	if (s->cfg.bare == SMTP_BARE_REJECT)
		body_fail(s, why);
	emit_crlf(s);
}

/*
 * Start of a message body (DATA accepted or first BDAT): the Received:
 * header is the first body bytes (RFC 5321 §4.4: "MUST insert ... at the
 * beginning of the message content").
 */
void smtp_body_begin(struct smtp_server *s)
{
	s->msg_fail = SMTP_MSG_OK;
	s->body_len = s->body_total = 0;
	s->cur_line = s->max_line = 0;
	s->body_bol = true;
	s->eod = false;
	s->bdat_cr = false;
	s->body_fill = smtp_received_header(s, (char *)s->body, sizeof(s->body));
	s->hdr = SMTP_H_BOL;
	s->hops = 1; /* the Received: field just written */
}

/*
 * The DATA decoder: dot-stuffing undone (RFC 5321 §4.5.2), end of data
 * recognised only as <CRLF>.<CRLF> (§4.1.1.4) - the "." line must follow
 * a CRLF line ending and end with one. A "." line after a bare line ending
 * is content (un-stuffed), so none of the smuggling forms (\n.\n, \r.\r,
 * \n.\r\n, \r\n.\n, \r\n.\r...) ends the data. Returns bytes consumed;
 * stops at the end of data or when the body buffer needs a flush.
 */
static size_t data_feed(struct smtp_server *s, const uint8_t *p, size_t len)
{
	size_t i = 0;

	while (i < len && !s->eod) {
		uint8_t c = p[i];

		if (!body_room(s, 2))
			break;
		switch (s->dstate) {
		case SMTP_D_BOL:
			if (c == '.') {
				s->dstate = SMTP_D_DOT;
				i++;
			} else {
				s->dstate = SMTP_D_TEXT;
			}
			break;
		case SMTP_D_DOT:
			if (c == '\r') {
				s->dstate = SMTP_D_DOT_CR;
				i++;
			} else {
				s->dstate = SMTP_D_TEXT; /* the stuffed dot is dropped */
			}
			break;
		case SMTP_D_DOT_CR:
			if (c == '\n') {
				i++;
				if (s->line_clean) {
					s->eod = true;
					break;
				}
				emit_crlf(s); /* "." after a bare ending: an empty line */
				s->line_clean = true;
				s->dstate = SMTP_D_BOL;
			} else {
				bare_ending(s, SMTP_MSG_BARE_CR);
				s->line_clean = false;
				s->dstate = SMTP_D_BOL;
			}
			break;
		case SMTP_D_TEXT: {
			size_t j = i, room = SMTP_BODY_BUF - s->body_fill;
			while (j < len && j - i < room && p[j] != '\r' && p[j] != '\n')
				j++;
			if (j > i) {
				emit_run(s, p + i, j - i);
				i = j;
				break;
			}
			if (c == '\r') {
				s->dstate = SMTP_D_CR;
			} else if (c == '\n') {
				bare_ending(s, SMTP_MSG_BARE_LF);
				s->line_clean = false;
				s->dstate = SMTP_D_BOL;
			}
			i++;
			break;
		}
		case SMTP_D_CR:
			if (c == '\n') {
				emit_crlf(s);
				s->line_clean = true;
				i++;
			} else {
				bare_ending(s, SMTP_MSG_BARE_CR);
				s->line_clean = false;
			}
			s->dstate = SMTP_D_BOL;
			break;
		}
	}
	return i;
}

/*
 * Prepare to read a BDAT chunk of `size` octets (RFC 3030 §2): stored, or
 * skipped when the command was refused - the octets follow regardless and
 * must never be read as commands.
 */
void smtp_bdat_begin(struct smtp_server *s, uint64_t size, bool last, bool skip)
{
	s->bdat_size = s->bdat_left = size;
	s->bdat_last = last;
	s->bdat_skip = skip;
	s->in = SMTP_IN_BDAT;
}

/*
 * BDAT octets: no dot-stuffing and no end marker, but the same line-ending
 * policy as DATA (a <CR> at a chunk's end pairs with a <LF> starting the
 * next), so the spool only ever holds canonical CRLF.
 */
static size_t bdat_feed(struct smtp_server *s, const uint8_t *p, size_t len)
{
	size_t i = 0;

	if (len > s->bdat_left)
		len = (size_t)s->bdat_left;
	if (s->bdat_skip || s->msg_fail != SMTP_MSG_OK) {
		s->bdat_left -= len;
		return len;
	}
	while (i < len && body_room(s, 2)) {
		uint8_t c = p[i];

		if (s->bdat_cr) {
			s->bdat_cr = false;
			if (c == '\n') {
				emit_crlf(s);
				i++;
			} else {
				bare_ending(s, SMTP_MSG_BARE_CR);
			}
			continue;
		}
		if (c == '\r') {
			s->bdat_cr = true;
			i++;
		} else if (c == '\n') {
			bare_ending(s, SMTP_MSG_BARE_LF);
			i++;
		} else {
			size_t j = i, room = SMTP_BODY_BUF - s->body_fill;
			while (j < len && j - i < room && p[j] != '\r' && p[j] != '\n')
				j++;
			emit_run(s, p + i, j - i);
			i = j;
		}
	}
	s->bdat_left -= i;
	return i;
}

/* The reply that ends a refused message. */
static void reply_msg_fail(struct smtp_server *s)
{
	switch (s->msg_fail) {
	case SMTP_MSG_BARE_LF:
		smtp_reply(s, 550, "5.5.2", "Error: bare <LF> received");
		break;
	case SMTP_MSG_BARE_CR:
		smtp_reply(s, 550, "5.5.2", "Error: bare <CR> received");
		break;
	case SMTP_MSG_SIZE:
		smtp_reply(s, 552, "5.3.4",
		           "Error: message size exceeds fixed maximum message size");
		break;
	case SMTP_MSG_STORE:
		smtp_reply(s, 451, "4.3.0", "Error: queue file write error");
		break;
	case SMTP_MSG_HOPS:
		smtp_reply(s, 554, "5.4.6", "Error: too many hops");
		break;
	case SMTP_MSG_OK:
		break;
	}
}

/* Back to "no transaction" after a message ended one way or another. */
void smtp_message_done(struct smtp_server *s)
{
	s->in = SMTP_IN_LINE;
	s->dstate = SMTP_D_BOL;
	s->bdat_skip = false;
	smtp_txn_reset(s, false);
	smtp_set_state(s, SMTP_S_HELO);
}

static void finish_end(struct smtp_server *s, int rc, const struct smtp_verdict *v)
{
	char dtext[SMTP_QUEUE_ID_MAX + 32];

	s->txn_open = false; /* the upper layer has the message now */
	if (rc == PG_OK) {
		snprintf(dtext, sizeof(dtext), "Ok: queued%s%s", s->queue_id[0] ? " as " : "",
		         s->queue_id);
		smtp_reply_verdict(s, v, 250, "2.0.0", dtext);
		s->errors = 0; /* Postfix: errors count "without delivering mail" */
	} else if (rc == PG_DECLINED) {
		smtp_reply_verdict(s, v, 554, "5.7.1", "Error: message rejected");
	} else {
		smtp_reply_verdict(s, v, 451, "4.3.0", "Error: queue file write error");
	}
	smtp_message_done(s);
}

/* End of data (or of the LAST chunk) with the body flushed. */
static void message_end(struct smtp_server *s)
{
	struct smtp_message_info info;
	struct smtp_verdict v = {0};
	int rc;

	s->eod = false;
	if (s->msg_fail != SMTP_MSG_OK) {
		bool client_fault = s->msg_fail != SMTP_MSG_STORE;
		reply_msg_fail(s);
		smtp_message_done(s);
		if (client_fault)
			smtp_count_error(s);
		return;
	}
	if (s->cur_line > s->max_line)
		s->max_line = s->cur_line;
	info.size = s->body_total;
	info.max_line = s->max_line;
	info.bdat = s->state == SMTP_S_CHUNKING;
	rc = s->ops->message_end ? s->ops->message_end(s, &s->env, &info, &v, s->cfg.owner) : PG_OK;
	if (rc == PG_AGAIN) {
		/* DESIGN.md "Durability": the 250 waits for the spool commit. */
		s->await = SMTP_AWAIT_END;
		smtp_set_state(s, SMTP_S_COMMIT);
		return;
	}
	finish_end(s, rc, &v);
}

void smtp_server_message_committed(struct smtp_server *s, bool ok, const struct smtp_verdict *v)
{
	assert(s->await == SMTP_AWAIT_END);
	s->await = SMTP_AWAIT_NONE;
	if (s->state == SMTP_S_CLOSED)
		return; /* timed out or dropped meanwhile: nobody to tell */
	finish_end(s, ok ? PG_OK : PG_ERROR, v);
}

void smtp_server_resume(struct smtp_server *s, int result, const struct smtp_verdict *v)
{
	enum smtp_await w = s->await;

	assert(result != PG_AGAIN);
	s->await = SMTP_AWAIT_NONE;
	if (s->state == SMTP_S_CLOSED)
		return;
	switch (w) {
	case SMTP_AWAIT_MAIL:
		smtp_finish_mail(s, result, v);
		break;
	case SMTP_AWAIT_RCPT:
		smtp_finish_rcpt(s, result, v);
		break;
	case SMTP_AWAIT_DATA:
		smtp_finish_data(s, result, v);
		break;
	default:
		assert(!"smtp_server_resume without a pending upcall");
	}
}

/*
 * Text that goes into a Received: comment (RFC 5322 §3.2.2): controls and
 * backslashes become spaces; nested parentheses are kept only if balanced.
 */
static void sanitize_comment(char *text)
{
	int depth = 0;
	bool balanced = true;

	for (char *p = text; *p; p++) {
		if ((unsigned char)*p < 32 || *p == 127 || *p == '\\')
			*p = ' ';
		else if (*p == '(')
			depth++;
		else if (*p == ')' && --depth < 0)
			balanced = false;
	}
	if (balanced && depth == 0)
		return;
	for (char *p = text; *p; p++)
		if (*p == '(' || *p == ')')
			*p = ' ';
}

void smtp_server_tls_started(struct smtp_server *s, bool ok, const char *tls_info)
{
	assert(s->await == SMTP_AWAIT_TLS);
	s->await = SMTP_AWAIT_NONE;
	if (s->state == SMTP_S_CLOSED)
		return;
	if (!ok) {
		smtp_close(s);
		return;
	}
	/* RFC 3207 §4.2: discard all knowledge obtained from the client. */
	s->tls = true;
	s->esmtp = false;
	s->helo[0] = '\0';
	copy_str(s->tls_info, sizeof(s->tls_info), tls_info);
	sanitize_comment(s->tls_info);
	smtp_txn_reset(s, true);
	s->in = SMTP_IN_LINE;
	s->line_len = 0;
	s->line_long = false;
	smtp_set_state(s, SMTP_S_GREETED);
}

void smtp_server_set_queue_id(struct smtp_server *s, const char *id)
{
	copy_str(s->queue_id, sizeof(s->queue_id), id);
	for (char *p = s->queue_id; *p; p++)
		if ((unsigned char)*p <= 32 || *p >= 127 || *p == ';' || *p == '(' || *p == ')')
			*p = '_';
}

/* ---- command lines --------------------------------------------------- */

/*
 * A complete line (without its CR LF). Bare LF: with REJECT the command
 * is refused 550 5.5.2 (Postfix smtpd_forbid_bare_newline = reject) and
 * not executed; with NORMALIZE it runs. A CR inside the line is never a
 * line ending: 550 5.5.2 under either policy.
 */
static void line_done(struct smtp_server *s, bool bare_lf)
{
	const char *line = s->line;
	size_t len = s->line_len;

	s->line_len = 0;
	s->line_bare = bare_lf;
	if (s->line_long) {
		s->line_long = false;
		smtp_reply(s, 500, "5.5.2", "Error: line too long"); /* RFC 5321 §4.5.3.1.10 */
		smtp_count_error(s);
		return;
	}
	if (bare_lf && s->cfg.bare == SMTP_BARE_REJECT) {
		smtp_reply(s, 550, "5.5.2", "Error: bare <LF> received");
		smtp_count_error(s);
		return;
	}
	if (memchr(line, '\r', len)) {
		smtp_reply(s, 550, "5.5.2", "Error: bare <CR> received");
		smtp_count_error(s);
		return;
	}
	smtp_cmd_dispatch(s, line, len);
}

/* Assemble lines; returns bytes consumed (stops after each complete line). */
static size_t line_feed(struct smtp_server *s, const uint8_t *p, size_t len)
{
	const uint8_t *lf = memchr(p, '\n', len);
	size_t take = lf ? (size_t)(lf - p) + 1 : len;
	size_t room = s->cfg.cmd_line_max - s->line_len;
	size_t body = lf ? take - 1 : take; /* without the LF */

	if (s->in == SMTP_IN_LINE_SKIP) {
		if (lf) {
			s->in = SMTP_IN_LINE;
			s->line_long = true;
			s->line_len = 0;
			line_done(s, false);
		}
		return take;
	}
	/* The limit counts the CR LF (RFC 5321 §4.5.3.1.4). */
	if (body + 1 > room) {
		if (lf) {
			s->line_long = true;
			s->line_len = 0;
			line_done(s, false);
		} else {
			s->in = SMTP_IN_LINE_SKIP;
		}
		return take;
	}
	memcpy(s->line + s->line_len, p, body);
	s->line_len += body;
	if (lf) {
		bool bare = s->line_len == 0 || s->line[s->line_len - 1] != '\r';
		if (!bare)
			s->line_len--;
		line_done(s, bare);
	}
	return take;
}

/* ---- the input loop -------------------------------------------------- */

int smtp_server_input(struct smtp_server *s, const uint8_t *data, size_t len, size_t *used)
{
	size_t pos = 0;

	*used = 0;
	for (;;) {
		if (s->state == SMTP_S_CLOSED) {
			*used = len; /* RFC 2920 §3.1: input after QUIT is discarded */
			return PG_DONE;
		}
		if (s->state == SMTP_S_TLS) {
			/* CVE-2011-0411: plaintext pipelined after STARTTLS is dropped. */
			*used = len;
			return s->await == SMTP_AWAIT_TLS ? PG_AGAIN : PG_OK;
		}
		if (s->await != SMTP_AWAIT_NONE)
			goto again;
		if (s->out_len > SMTP_OUT_WATERMARK)
			goto again; /* a client that pipelines without reading */
		if (body_flush(s) == PG_AGAIN)
			goto again;
		if (s->eod) {
			message_end(s);
			continue;
		}
		if (s->in == SMTP_IN_BDAT && s->bdat_left == 0) {
			bool last = s->bdat_last;
			if (s->bdat_skip) {
				s->in = SMTP_IN_LINE;
				s->bdat_skip = false;
				smtp_reply_raw(s, s->bdat_reply);
				continue;
			}
			if (!last) {
				s->in = SMTP_IN_LINE;
				if (s->msg_fail == SMTP_MSG_SIZE) {
					/* Refuse now: the client need not send the rest. */
					reply_msg_fail(s);
					smtp_message_done(s);
					smtp_count_error(s);
				} else {
					smtp_reply(s, 250, "2.0.0", "Ok: %llu octets received",
					           (unsigned long long)s->bdat_size);
				}
				continue;
			}
			/* LAST: a final <CR>, and a body not ending in CRLF (RFC 3030 §2). */
			if (!body_room(s, 4))
				continue; /* flushed on the next turn */
			if (s->bdat_cr) {
				s->bdat_cr = false;
				bare_ending(s, SMTP_MSG_BARE_CR);
			}
			if (!s->body_bol)
				emit_crlf(s);
			s->in = SMTP_IN_LINE;
			s->eod = true;
			continue;
		}
		if (pos == len)
			break;
		switch (s->in) {
		case SMTP_IN_LINE:
		case SMTP_IN_LINE_SKIP:
			pos += line_feed(s, data + pos, len - pos);
			if (s->starttls_drop) {
				/* Even if the handshake already finished inside the hook. */
				s->starttls_drop = false;
				pos = len;
			}
			break;
		case SMTP_IN_DATA:
			pos += data_feed(s, data + pos, len - pos);
			break;
		case SMTP_IN_BDAT:
			pos += bdat_feed(s, data + pos, len - pos);
			break;
		case SMTP_IN_DROP:
			pos = len;
			break;
		}
	}
	*used = pos;
	return PG_OK;
again:
	*used = pos;
	return PG_AGAIN;
}

/* ---- timers and introspection ----------------------------------------- */

uint32_t smtp_server_timeout_ms(const struct smtp_server *s)
{
	if (s->state == SMTP_S_CLOSED || s->await != SMTP_AWAIT_NONE)
		return 0;
	if (s->state == SMTP_S_DATA || s->in == SMTP_IN_BDAT)
		return s->cfg.data_timeout_ms;
	return s->cfg.cmd_timeout_ms;
}

int smtp_server_timeout(struct smtp_server *s)
{
	if (s->state != SMTP_S_CLOSED) {
		smtp_reply(s, 421, "4.4.2", "%s Error: timeout exceeded", s->hostname);
		smtp_close(s);
	}
	return PG_DONE;
}

const char *smtp_server_state_name(const struct smtp_server *s)
{
	return smtp_state_name(s->state);
}

const char *smtp_server_helo(const struct smtp_server *s)
{
	return s->helo;
}

const struct smtp_envelope *smtp_server_envelope(const struct smtp_server *s)
{
	return &s->env;
}

uint32_t smtp_server_errors(const struct smtp_server *s)
{
	return s->errors;
}

bool smtp_server_loop_detected(const struct smtp_server *s)
{
	return s->msg_fail == SMTP_MSG_HOPS;
}

size_t smtp_server_footprint(const struct smtp_server *s)
{
	return sizeof(*s) + s->cfg.cmd_line_max;
}
