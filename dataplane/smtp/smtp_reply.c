/*
 * smtp_reply.c - what the SMTP server writes: replies into the session's
 * output buffer (RFC 5321 §4.2 reply lines, RFC 2034 enhanced status
 * codes), verdicts from the upper layer made safe to send, and the
 * Received: trace header (RFC 5321 §4.4, protocol names of RFC 3848 and
 * RFC 6531 §3.7.3).
 */
#include <stdio.h>
#include <string.h>

#include "smtp_private.h"

/* Append to the output; never overflows (the watermark keeps room). */
static void out_append(struct smtp_server *s, const char *p, size_t n)
{
	size_t room;

	if (s->out_head > 0 && s->out_head + s->out_len + n > SMTP_OUT_CAP) {
		memmove(s->out, s->out + s->out_head, s->out_len);
		s->out_head = 0;
	}
	room = SMTP_OUT_CAP - s->out_head - s->out_len;
	if (n > room)
		n = room; /* unreachable while input stops at SMTP_OUT_WATERMARK */
	memcpy(s->out + s->out_head + s->out_len, p, n);
	s->out_len += n;
}

size_t smtp_server_output(const struct smtp_server *s, const uint8_t **p)
{
	*p = s->out + s->out_head;
	return s->out_len;
}

void smtp_server_output_consume(struct smtp_server *s, size_t n)
{
	if (n > s->out_len)
		n = s->out_len;
	s->out_head += n;
	s->out_len -= n;
	if (s->out_len == 0)
		s->out_head = 0;
}

/* Replace what would break the reply line: CR, LF, other controls. */
static void sanitize(char *p)
{
	for (; *p; p++)
		if ((unsigned char)*p < 32 || *p == 127)
			*p = '?';
}

static void reply_v(struct smtp_server *s, int code, char sep, const char *status, const char *fmt,
                    va_list ap)
{
	char line[SMTP_REPLY_TEXT_MAX + SMTP_PATH_MAX + 64];
	int n;

	n = snprintf(line, sizeof(line), "%03d%c%s%s", code, sep, status ? status : "",
	             status ? " " : "");
	vsnprintf(line + n, sizeof(line) - (size_t)n - 2, fmt, ap);
	sanitize(line);
	n = (int)strlen(line);
	line[n++] = '\r';
	line[n++] = '\n';
	out_append(s, line, (size_t)n);
}

void smtp_reply(struct smtp_server *s, int code, const char *status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_v(s, code, ' ', status, fmt, ap);
	va_end(ap);
}

/* One line of a multi-line reply with no enhanced code (EHLO, RFC 2034 §3). */
void smtp_reply_cont(struct smtp_server *s, int code, bool last, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	reply_v(s, code, last ? ' ' : '-', NULL, fmt, ap);
	va_end(ap);
}

/* A complete reply line already formatted (with CRLF). */
void smtp_reply_raw(struct smtp_server *s, const char *text)
{
	out_append(s, text, strlen(text));
}

/* "d.ddd.ddd" (RFC 3463 §2) whose class matches the reply code. */
static bool status_ok(const char *st, int code)
{
	int i = 0, field = 0, digits = 0;

	if (!st || st[0] != '0' + code / 100 || st[1] != '.')
		return false;
	for (i = 2; st[i]; i++) {
		if (st[i] == '.') {
			if (digits == 0 || ++field > 1)
				return false;
			digits = 0;
		} else if (st[i] >= '0' && st[i] <= '9' && digits < 3) {
			digits++;
		} else {
			return false;
		}
	}
	return field == 1 && digits > 0;
}

/*
 * A verdict as one reply line "code status text\r\n" in buf. The upper
 * layer's code is kept if it is of the right kind (dcode's class for a
 * refusal, 2xx for an acceptance); text and status fall back to the
 * defaults. Returns the length.
 */
int smtp_format_verdict(char *buf, size_t size, const struct smtp_verdict *v, int dcode,
                        const char *dstatus, const char *dtext)
{
	int code = dcode;
	const char *status = dstatus, *text = dtext;
	char defstatus[8];
	char clean[SMTP_REPLY_TEXT_MAX + 1];
	int n;

	if (v && v->code >= 200 && v->code <= 599 &&
	    (dcode >= 400 ? v->code >= 400 : v->code / 100 == dcode / 100)) {
		code = v->code;
		if (code / 100 != dcode / 100) { /* 4xx asked where 5xx was the default */
			snprintf(defstatus, sizeof(defstatus), "%d.0.0", code / 100);
			status = defstatus;
			text = code >= 500 ? "Error: rejected" : "Error: try again later";
		}
		if (status_ok(v->status, code))
			status = v->status;
		if (v->text && v->text[0])
			text = v->text;
	}
	snprintf(clean, sizeof(clean), "%s", text);
	sanitize(clean);
	n = snprintf(buf, size, "%03d %s %s\r\n", code, status, clean);
	if (n < 0 || (size_t)n >= size)
		n = (int)size - 1;
	return n;
}

void smtp_reply_verdict(struct smtp_server *s, const struct smtp_verdict *v, int dcode,
                        const char *dstatus, const char *dtext)
{
	char line[SMTP_REPLY_TEXT_MAX + 32];
	int n = smtp_format_verdict(line, sizeof(line), v, dcode, dstatus, dtext);

	out_append(s, line, (size_t)n);
}

/*
 * RFC 3848 (ESMTP, ESMTPS, ESMTPA, ESMTPSA) and RFC 6531 §3.7.3
 * (UTF8SMTP...) "with" values; plain "SMTP" after HELO.
 */
const char *smtp_protocol_name(const struct smtp_server *s)
{
	static const char *const names[2][2][2] = {
	    /* !utf8 */ {{"ESMTP", "ESMTPA"}, {"ESMTPS", "ESMTPSA"}},
	    /* utf8 */ {{"UTF8SMTP", "UTF8SMTPA"}, {"UTF8SMTPS", "UTF8SMTPSA"}},
	};

	if (!s->esmtp)
		return "SMTP";
	return names[s->env.smtputf8][s->tls][s->authenticated];
}

/* RFC 5322 §3.3 date-time in UTC, independent of the locale. */
static void rfc5322_date(time_t t, char *buf, size_t size)
{
	static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(buf, size, "%s, %02d %s %04d %02d:%02d:%02d +0000", wd[tm.tm_wday % 7], tm.tm_mday,
	         mo[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/*
 * The Received: header of RFC 5321 §4.4, in Postfix's layout:
 *
 *   Received: from HELO (NAME [ADDR])
 *   	(using TLS-INFO)
 *   	by HOST (Postern) with PROTO id QID
 *   	for <RCPT>; DATE
 *
 * TCP-info is "NAME [ADDR]" or just "[ADDR]" (IPv6 as "[IPv6:...]");
 * "for" only with a single recipient (more would disclose the list).
 */
size_t smtp_received_header(const struct smtp_server *s, char *buf, size_t size)
{
	char date[64], lit[80], idpart[SMTP_QUEUE_ID_MAX + 8];
	char forpart[SMTP_PATH_MAX + 16];
	time_t now = s->ops->now ? s->ops->now(s->cfg.owner) : time(NULL);
	int n;

	rfc5322_date(now, date, sizeof(date));
	snprintf(lit, sizeof(lit), "[%s%s]", strchr(s->peer_addr, ':') ? "IPv6:" : "",
	         s->peer_addr);
	idpart[0] = forpart[0] = '\0';
	if (s->queue_id[0])
		snprintf(idpart, sizeof(idpart), " id %s", s->queue_id);
	if (s->env.nrcpt == 1)
		snprintf(forpart, sizeof(forpart), "\r\n\tfor <%s>", s->first_rcpt);
	n = snprintf(buf, size,
	             "Received: from %s (%s%s%s)\r\n"
	             "%s%s%s"
	             "\tby %s (Postern) with %s%s%s; %s\r\n",
	             s->helo, s->peer_name, s->peer_name[0] ? " " : "", lit,
	             s->tls_info[0] ? "\t(using " : "", s->tls_info, s->tls_info[0] ? ")\r\n" : "",
	             s->hostname, smtp_protocol_name(s), idpart, forpart, date);
	if (n < 0 || (size_t)n >= size)
		return 0; /* cannot happen: every part is bounded */
	return (size_t)n;
}
