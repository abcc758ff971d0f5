/*
 * smtp_client_reply.c - reading the server's replies (RFC 5321 §4.2): a
 * resumable line assembler (split at any byte), multiline replies with the
 * same code on every line (§4.2.1), enhanced status codes when present
 * (RFC 2034 / RFC 3463), text bounded and made safe for logs and DSNs,
 * and the EHLO keywords (RFC 1869 §4.3). Anything malformed is a protocol
 * error for the session, never a crash.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_client_private.h"

void smtpc_reply_reset(struct smtpc_reply_parser *rp)
{
	rp->lines = 0;
	rp->code = 0;
	rp->status[0] = '\0';
	rp->text[0] = '\0';
	rp->textlen = 0;
}

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/*
 * An enhanced status code "class.subject.detail" (RFC 3463 §2: class 2, 4
 * or 5 matching the reply, subject 1-3 digits, detail 1-3 digits) at the
 * start of s, followed by a space or the end. Returns its length or 0.
 */
static size_t status_len(const char *s, size_t len, int code)
{
	size_t i = 0;
	int field, digits;

	if (len < 5 || s[0] != (char)('0' + code / 100) || s[1] != '.')
		return 0;
	i = 2;
	for (field = 0; field < 2; field++) {
		for (digits = 0; i < len && is_digit(s[i]) && digits < 3; digits++)
			i++;
		if (digits == 0)
			return 0;
		if (field == 0) {
			if (i >= len || s[i] != '.')
				return 0;
			i++;
		}
	}
	if (i < len && s[i] != ' ')
		return 0;
	return i;
}

/* Append reply text, controls replaced, clamped to SMTP_CLIENT_TEXT_MAX. */
static void text_append(struct smtpc_reply_parser *rp, const char *s, size_t len)
{
	if (rp->textlen > 0 && rp->textlen < SMTP_CLIENT_TEXT_MAX && len > 0)
		rp->text[rp->textlen++] = ' ';
	for (size_t i = 0; i < len && rp->textlen < SMTP_CLIENT_TEXT_MAX; i++) {
		unsigned char ch = (unsigned char)s[i];
		rp->text[rp->textlen++] = (ch < 32 || ch == 127) ? '?' : (char)ch;
	}
	rp->text[rp->textlen] = '\0';
}

/*
 * One complete line (CR LF or a bare LF stripped). Reply-line per RFC 5321
 * §4.2: Reply-code [ SP text ] or Reply-code "-" text; Reply-code is
 * %x32-35 %x30-35 %x30-39.
 */
static void line_done(struct smtp_client *c, const char *line, size_t len)
{
	struct smtpc_reply_parser *rp = &c->rp;
	struct smtp_client_reply r;
	int code;
	bool last;
	const char *text;
	size_t tlen, slen;

	if (len < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '5' ||
	    !is_digit(line[2]) || (len > 3 && line[3] != ' ' && line[3] != '-')) {
		smtpc_protocol_error(c, "malformed reply line");
		return;
	}
	code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
	if (rp->lines > 0 && code != rp->code) {
		/* RFC 5321 §4.2.1: every line of a reply has the same code. */
		smtpc_protocol_error(c, "reply code changed within a multiline reply");
		return;
	}
	last = len == 3 || line[3] == ' ';
	text = len > 4 ? line + 4 : "";
	tlen = len > 4 ? len - 4 : 0;
	smtpc_on_line(c, text, tlen, rp->lines);
	if (c->state == SMTPC_S_CLOSED)
		return;
	if (rp->lines == 0) {
		rp->code = code;
		slen = status_len(text, tlen, code);
		if (slen > 0 && slen < sizeof(rp->status)) {
			memcpy(rp->status, text, slen);
			rp->status[slen] = '\0';
		}
	} else {
		slen = rp->status[0] ? status_len(text, tlen, code) : 0;
		if (slen && (slen != strlen(rp->status) || memcmp(text, rp->status, slen)))
			slen = 0;
	}
	if (slen) {
		text += slen;
		tlen -= slen;
		while (tlen > 0 && *text == ' ')
			text++, tlen--;
	}
	text_append(rp, text, tlen);
	rp->lines++;
	if (!last)
		return;
	memset(&r, 0, sizeof(r));
	r.code = (uint16_t)rp->code;
	if (rp->status[0])
		snprintf(r.status, sizeof(r.status), "%s", rp->status);
	else
		snprintf(r.status, sizeof(r.status), "%d.0.0", rp->code / 100);
	memcpy(r.text, rp->text, rp->textlen + 1);
	smtpc_reply_reset(rp);
	smtpc_on_reply(c, &r);
}

/*
 * Take bytes up to and including one line ending; returns how many. A line
 * longer than SMTP_CLIENT_LINE_MAX is kept truncated (RFC 5321 §4.5.3.1.5
 * allows 512 octets; real servers exceed it in EHLO and 5xx texts).
 */
size_t smtpc_reply_feed(struct smtp_client *c, const uint8_t *p, size_t len)
{
	struct smtpc_reply_parser *rp = &c->rp;
	const uint8_t *lf = memchr(p, '\n', len);
	size_t take = lf ? (size_t)(lf - p) + 1 : len;
	size_t body = lf ? take - 1 : take;
	size_t room = SMTP_CLIENT_LINE_MAX - rp->len;

	if (!rp->skip) {
		size_t n = body < room ? body : room;
		memcpy(rp->line + rp->len, p, n);
		rp->len += n;
		if (n < body)
			rp->skip = true;
	}
	if (lf) {
		size_t n = rp->len;
		if (n > 0 && rp->line[n - 1] == '\r' && !rp->skip)
			n--;
		rp->line[n] = '\0';
		rp->len = 0;
		rp->skip = false;
		line_done(c, rp->line, n);
	}
	return take;
}

/*
 * One EHLO line after the first (RFC 5321 §4.1.1.1 ehlo-line: keyword and
 * parameters). Recorded for the delivery record, matched case-blind.
 */
void smtpc_ehlo_keyword(struct smtp_client_info *info, const char *kw, size_t len)
{
	static const struct {
		const char *name;
		unsigned bit;
	} table[] = {
	    {"PIPELINING", SMTP_EXT_PIPELINING},
	    {"SIZE", SMTP_EXT_SIZE},
	    {"8BITMIME", SMTP_EXT_8BITMIME},
	    {"SMTPUTF8", SMTP_EXT_SMTPUTF8},
	    {"CHUNKING", SMTP_EXT_CHUNKING},
	    {"DSN", SMTP_EXT_DSN},
	    {"STARTTLS", SMTP_EXT_STARTTLS},
	    {"ENHANCEDSTATUSCODES", SMTP_EXT_ENHANCEDSTATUSCODES},
	};
	size_t klen = 0, used = strlen(info->keywords);

	/* The record: keywords joined with ",", controls replaced. */
	if (used > 0 && used < SMTP_CLIENT_KEYWORDS_MAX)
		info->keywords[used++] = ',';
	for (size_t i = 0; i < len && used < SMTP_CLIENT_KEYWORDS_MAX; i++) {
		unsigned char ch = (unsigned char)kw[i];
		info->keywords[used++] = (ch < 32 || ch == 127 || ch == ',') ? '?' : (char)ch;
	}
	info->keywords[used] = '\0';

	while (klen < len && kw[klen] != ' ')
		klen++;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (strlen(table[i].name) != klen || strncasecmp(kw, table[i].name, klen) != 0)
			continue;
		info->ext |= table[i].bit;
		if (table[i].bit == SMTP_EXT_SIZE) {
			/* RFC 1870 §4: "SIZE" [SP number]; 0 or none = no fixed limit. */
			uint64_t v = 0;
			size_t j = klen;
			while (j < len && kw[j] == ' ')
				j++;
			for (; j < len && is_digit(kw[j]) && v < UINT64_MAX / 10 - 10; j++)
				v = v * 10 + (uint64_t)(kw[j] - '0');
			info->size_limit = (j == len) ? v : 0;
		}
	}
}
