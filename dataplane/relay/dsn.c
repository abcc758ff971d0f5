/*
 * dsn.c - the text of a Delivery Status Notification (RFC 3464, RFC 6522):
 * one composer run twice, once counting (dsn_size_bound) and once writing
 * (dsn_write), so the bound and the output cannot drift apart. Decisions
 * are in dsn.h.
 */
#include <assert.h>
#include <string.h>
#include <strings.h>

#include "dsn.h"

/* RFC 5322 §2.1.1: lines SHOULD be at most 78 characters. */
#define DSN_FOLD_COL 78
/* Continuation indent of the human-readable lines (not a header). */
#define DSN_TEXT_INDENT "    "
#define DSN_TEXT_INDENT_LEN (sizeof(DSN_TEXT_INDENT) - 1)
/* RFC 3461 §4.2, §4.4: ORCPT up to 500 characters, ENVID up to 100. */
#define DSN_XTEXT_MAX 512
/* 9999-12-31T23:59:59Z: keeps a date four-digit and its length bounded. */
#define DSN_TIME_MAX 253402300799LL

#define BOUNDARY_PREFIX "DSN=_"
#define BOUNDARY_ID_MAX 48
#define BOUNDARY_COUNTER_DIGITS 8

/* Output: counts always, copies only while it fits (buf NULL: count only). */
struct dsn_out {
	char *buf;
	size_t cap;
	size_t len;
};

/* What the report is mostly about: decides Subject and wording. */
enum dsn_kind {
	KIND_FAILURE,
	KIND_DELAY,
	KIND_SUCCESS,
};

enum dsn_ret {
	RET_NONE, /* no header bytes to return: no third part */
	RET_HDRS,
	RET_FULL,
};

/* Everything decided from the message before writing. */
struct dsn_plan {
	enum dsn_kind kind;
	enum dsn_ret ret;
	size_t ret_len;       /* octets of orig returned */
	const char *ret_tail; /* "", "\n" or "\r\n" to end it with CRLF */
	bool cte_top;         /* Content-Transfer-Encoding: 8bit on the report */
	bool cte_ret;         /* ... and on the returned message */
	char boundary[DSN_BOUNDARY_MAX + 1];
	size_t boundary_len;
};

/* Value flags for put_value(). */
#define V_UTF8 0x1     /* keep well-formed UTF-8 (else non-ASCII is '?') */
#define V_COLLAPSE 0x2 /* free text: runs of spaces and controls, one space */
#define V_TEXT 0x4     /* a text/plain line: fold with an indent, not a header */

static const char *const action_names[] = {
    [DSN_FAILED] = "failed",   [DSN_DELAYED] = "delayed",   [DSN_DELIVERED] = "delivered",
    [DSN_RELAYED] = "relayed", [DSN_EXPANDED] = "expanded",
};

const char *dsn_action_name(enum dsn_action a)
{
	return action_names[(unsigned)a <= DSN_EXPANDED ? a : DSN_FAILED];
}

static const char *str_or_empty(const char *s)
{
	return s != NULL ? s : "";
}

static bool is_ctl(uint8_t b)
{
	return b < 0x20 || b == 0x7f;
}

/* An optional value is there when cleaning leaves something of it. */
static bool present(const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		if (!is_ctl((uint8_t)*s) && *s != ' ')
			return true;
	return false;
}

/* An action out of the enum is reported as the safe one, "failed". */
static enum dsn_action action_of(const struct dsn_rcpt *r)
{
	return (unsigned)r->action <= DSN_EXPANDED ? r->action : DSN_FAILED;
}

static void put(struct dsn_out *o, const void *s, size_t n)
{
	if (o->buf != NULL && o->len <= o->cap && n <= o->cap - o->len)
		memcpy(o->buf + o->len, s, n);
	o->len += n;
}

static void put_str(struct dsn_out *o, const char *s)
{
	put(o, s, strlen(s));
}

static void put_crlf(struct dsn_out *o)
{
	put(o, "\r\n", 2);
}

/* A fixed string on a line being folded: keeps the column. */
static void put_col(struct dsn_out *o, size_t *col, const char *s)
{
	size_t n = strlen(s);

	put(o, s, n);
	*col += n;
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629 §4), or 0. */
static size_t utf8_len(const uint8_t *s, size_t avail)
{
	uint8_t b = s[0], lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (b < 0x80)
		return 1;
	if (b >= 0xc2 && b <= 0xdf)
		n = 2;
	else if (b >= 0xe0 && b <= 0xef)
		n = 3;
	else if (b >= 0xf0 && b <= 0xf4)
		n = 4;
	else
		return 0;
	if (avail < n)
		return 0;
	if (b == 0xe0)
		lo = 0xa0; /* overlong */
	else if (b == 0xed)
		hi = 0x9f; /* surrogates */
	else if (b == 0xf0)
		lo = 0x90; /* overlong */
	else if (b == 0xf4)
		hi = 0x8f; /* over U+10FFFF */
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

static bool is_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((uint8_t)*s >= 0x80)
			return false;
	return true;
}

/*
 * The cleaned units of a value: a printable character, a well-formed UTF-8
 * sequence (V_UTF8), '?' for any other non-ASCII octet, and one space for a
 * run of controls (and, with V_COLLAPSE, of spaces): what makes a value
 * safe on one header or text line.
 */
struct cleaner {
	const uint8_t *p, *end;
	unsigned flags;
};

static size_t clean_next(struct cleaner *c, char u[4])
{
	uint8_t b;
	size_t n;

	if (c->p >= c->end)
		return 0;
	b = *c->p;
	if (is_ctl(b) || (b == ' ' && (c->flags & V_COLLAPSE))) {
		do
			c->p++;
		while (c->p < c->end &&
		       (is_ctl(*c->p) || (*c->p == ' ' && (c->flags & V_COLLAPSE))));
		u[0] = ' ';
		return 1;
	}
	if (b >= 0x80 && (c->flags & V_UTF8) &&
	    (n = utf8_len(c->p, (size_t)(c->end - c->p))) != 0) {
		memcpy(u, c->p, n);
		c->p += n;
		return n;
	}
	c->p++;
	u[0] = b < 0x80 ? (char)b : '?';
	return 1;
}

/*
 * Write the value [s, s + len) at column *col, cleaned and folded: at a
 * space when the next word would pass DSN_FOLD_COL, and inside a word that
 * would pass DSN_LINE_MAX. A header folds with CRLF before the space
 * (RFC 5322 §2.2.3, unfolding gives the value back) and cuts with CRLF SP;
 * a text line (V_TEXT) breaks with CRLF and an indent. Leading and
 * trailing spaces and controls are dropped, so no line is only white space.
 */
static void put_value(struct dsn_out *o, size_t *col, const char *s, size_t len, unsigned flags)
{
	const uint8_t *p = (const uint8_t *)s, *end = p + len;
	struct cleaner c;
	char u[4];
	size_t n;

	while (p < end && (is_ctl(*p) || *p == ' '))
		p++;
	while (end > p && (is_ctl(end[-1]) || end[-1] == ' '))
		end--;
	c = (struct cleaner){p, end, flags};
	for (;;) {
		struct cleaner look = c, save;
		size_t chunk;
		bool space_first, word = false;

		/* A chunk: an optional space and the word after it. */
		chunk = clean_next(&look, u);
		if (chunk == 0)
			break;
		space_first = u[0] == ' ';
		for (;;) {
			save = look;
			n = clean_next(&look, u);
			if (n == 0 || u[0] == ' ') {
				look = save;
				break;
			}
			chunk += n;
			word = true;
		}
		if (space_first && word && *col + chunk > DSN_FOLD_COL) {
			put_crlf(o);
			if (flags & V_TEXT) {
				put(o, DSN_TEXT_INDENT, DSN_TEXT_INDENT_LEN);
				*col = DSN_TEXT_INDENT_LEN;
				clean_next(&c, u); /* the space is the break */
			} else {
				*col = 0; /* the space is the folding white space */
			}
		}
		while (c.p < look.p) {
			n = clean_next(&c, u);
			if (*col + n > DSN_LINE_MAX) {
				put_crlf(o);
				if (flags & V_TEXT) {
					put(o, DSN_TEXT_INDENT, DSN_TEXT_INDENT_LEN);
					*col = DSN_TEXT_INDENT_LEN;
				} else {
					put(o, " ", 1);
					*col = 1;
				}
			}
			put(o, u, n);
			*col += n;
		}
	}
}

static void put_value_str(struct dsn_out *o, size_t *col, const char *s, unsigned flags)
{
	s = str_or_empty(s);
	put_value(o, col, s, strlen(s), flags);
}

/* "Name: [type; ]value" CRLF, the value cleaned and folded. */
static void put_field(struct dsn_out *o, const char *name, const char *type, const char *val,
                      size_t len, unsigned flags)
{
	size_t col = 0;

	put_col(o, &col, name);
	put_col(o, &col, ": ");
	if (type != NULL) {
		put_col(o, &col, type);
		put_col(o, &col, "; ");
	}
	put_value(o, &col, val, len, flags);
	put_crlf(o);
}

static void put_field_str(struct dsn_out *o, const char *name, const char *type, const char *val,
                          unsigned flags)
{
	val = str_or_empty(val);
	put_field(o, name, type, val, strlen(val), flags);
}

static void fmt_num(char *p, unsigned v, int digits)
{
	while (digits-- > 0) {
		p[digits] = (char)('0' + v % 10);
		v /= 10;
	}
}

/*
 * RFC 5322 §3.3 date-time in UTC, "Thu, 13 Feb 2025 09:05:00 +0000"; the
 * civil date from the day count as in H. Hinnant's days_from_civil inverse.
 */
static void put_date(struct dsn_out *o, int64_t t)
{
	static const char wdays[7][4] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
	static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	int64_t days, secs, z, era, doe, yoe, doy, mp, d, mon, y;
	char s[40], *p = s;

	if (t < 0)
		t = 0;
	if (t > DSN_TIME_MAX)
		t = DSN_TIME_MAX;
	days = t / 86400;
	secs = t % 86400;
	z = days + 719468;
	era = z / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	mon = mp < 10 ? mp + 3 : mp - 9;
	y = yoe + era * 400 + (mon <= 2);

	memcpy(p, wdays[days % 7], 3);
	p += 3;
	*p++ = ',';
	*p++ = ' ';
	if (d >= 10)
		*p++ = (char)('0' + d / 10);
	*p++ = (char)('0' + d % 10);
	*p++ = ' ';
	memcpy(p, months[mon - 1], 3);
	p += 3;
	*p++ = ' ';
	fmt_num(p, (unsigned)y, 4);
	p += 4;
	*p++ = ' ';
	fmt_num(p, (unsigned)(secs / 3600), 2);
	p += 2;
	*p++ = ':';
	fmt_num(p, (unsigned)(secs / 60 % 60), 2);
	p += 2;
	*p++ = ':';
	fmt_num(p, (unsigned)(secs % 60), 2);
	p += 2;
	memcpy(p, " +0000", 6);
	p += 6;
	put(o, s, (size_t)(p - s));
}

static void put_date_field(struct dsn_out *o, const char *name, int64_t t)
{
	put_str(o, name);
	put_str(o, ": ");
	put_date(o, t);
	put_crlf(o);
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

static size_t utf8_encode(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * Decode xtext (RFC 3461 §4: "+" two hex digits) or, with unicode, the
 * "\x{HEX}" of utf-8-addr-xtext (RFC 6533 §3) into out, which is never
 * longer than the input. false when malformed, or when the result would
 * carry a control, or non-ASCII that is not allowed (utf8) or not UTF-8:
 * the caller then reports the value as received.
 */
static bool xtext_decode(const char *s, size_t len, bool unicode, bool utf8, char *out,
                         size_t *out_len)
{
	size_t i = 0, n = 0, k;

	while (i < len) {
		if (!unicode && s[i] == '+') {
			int hi, lo;

			if (len - i < 3)
				return false;
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0)
				return false;
			out[n++] = (char)(hi << 4 | lo);
			i += 3;
		} else if (unicode && s[i] == '\\' && len - i >= 4 && s[i + 1] == 'x' &&
		           s[i + 2] == '{') {
			uint32_t cp = 0;
			int digits = 0, v;

			for (k = i + 3; k < len && (v = hexval(s[k])) >= 0 && digits < 6; k++) {
				cp = cp << 4 | (uint32_t)v;
				digits++;
			}
			if (digits == 0 || k >= len || s[k] != '}' || cp > 0x10ffff ||
			    (cp >= 0xd800 && cp <= 0xdfff))
				return false;
			n += utf8_encode(cp, out + n);
			i = k + 1;
		} else {
			out[n++] = s[i++];
		}
	}
	for (i = 0; i < n; i += k) {
		uint8_t b = (uint8_t)out[i];

		if (is_ctl(b))
			return false;
		if (b < 0x80) {
			k = 1;
			continue;
		}
		if (!utf8 || (k = utf8_len((const uint8_t *)out + i, n - i)) == 0)
			return false;
	}
	*out_len = n;
	return true;
}

/*
 * "Original-Recipient: type; address" (RFC 3464 §2.3.1) from an ORCPT
 * "type;xtext"; the "utf-8" type (RFC 6533 §3) decoded only in a global
 * DSN, where UTF-8 may stand as it is. No ";": not an ORCPT, left out.
 */
static void put_orcpt(struct dsn_out *o, const char *orcpt, bool utf8)
{
	const char *semi = strchr(orcpt, ';'), *addr;
	char type[64], dec[DSN_XTEXT_MAX];
	size_t type_len, addr_len, dec_len, col = 0;
	bool unicode;

	if (semi == NULL || semi == orcpt)
		return;
	type_len = (size_t)(semi - orcpt);
	if (type_len >= sizeof(type))
		return;
	memcpy(type, orcpt, type_len);
	type[type_len] = '\0';
	addr = semi + 1;
	addr_len = strlen(addr);
	unicode = type_len == 5 && strncasecmp(type, "utf-8", 5) == 0;

	put_col(o, &col, "Original-Recipient: ");
	put_value(o, &col, type, type_len, 0);
	put_col(o, &col, "; ");
	if (addr_len <= sizeof(dec) && (!unicode || utf8) &&
	    xtext_decode(addr, addr_len, unicode, unicode && utf8, dec, &dec_len))
		put_value(o, &col, dec, dec_len, utf8 ? V_UTF8 : 0);
	else
		put_value(o, &col, addr, addr_len, 0);
	put_crlf(o);
}

/* "Original-Envelope-Id: " the ENVID decoded (RFC 3464 §2.2.1). */
static void put_envid(struct dsn_out *o, const char *envid)
{
	size_t len = strlen(envid), dec_len, col = 0;
	char dec[DSN_XTEXT_MAX];

	put_col(o, &col, "Original-Envelope-Id: ");
	if (len <= sizeof(dec) && xtext_decode(envid, len, false, false, dec, &dec_len))
		put_value(o, &col, dec, dec_len, 0);
	else
		put_value(o, &col, envid, len, 0);
	put_crlf(o);
}

/*
 * The header block of orig: up to and with the CRLF before the first empty
 * line; without one, all of a complete message, or a prefix's complete
 * lines.
 */
static size_t header_block_len(const uint8_t *orig, size_t len, bool complete)
{
	const uint8_t *p;

	if (len >= 2 && orig[0] == '\r' && orig[1] == '\n')
		return 0;
	p = memmem(orig, len, "\r\n\r\n", 4);
	if (p != NULL)
		return (size_t)(p - orig) + 2;
	if (complete)
		return len;
	for (p = orig + len; p - orig >= 2; p--)
		if (p[-2] == '\r' && p[-1] == '\n')
			return (size_t)(p - orig);
	return 0;
}

/* What ends the returned bytes with a CRLF (RFC 5322 §2.1: CRLF lines). */
static const char *crlf_tail(const uint8_t *s, size_t len)
{
	if (len >= 2 && s[len - 2] == '\r' && s[len - 1] == '\n')
		return "";
	if (len >= 1 && s[len - 1] == '\r')
		return "\n";
	return "\r\n";
}

static bool has_8bit(const uint8_t *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] >= 0x80)
			return true;
	return false;
}

static bool str_has(const char *hay, const char *needle, size_t needle_len)
{
	return hay != NULL && memmem(hay, strlen(hay), needle, needle_len) != NULL;
}

/* The boundary occurs in something the report carries. */
static bool boundary_taken(const struct dsn_msg *m, const struct dsn_plan *pl)
{
	const char *b = pl->boundary;
	size_t n = pl->boundary_len;

	if (pl->ret != RET_NONE && memmem(m->orig, pl->ret_len, b, n) != NULL)
		return true;
	if (str_has(m->envid, b, n) || str_has(m->sender, b, n))
		return true;
	for (uint32_t i = 0; i < m->nrcpt; i++) {
		const struct dsn_rcpt *r = &m->rcpts[i];

		if (str_has(r->rcpt, b, n) || str_has(r->orcpt, b, n) ||
		    str_has(r->diagnostic, b, n) || str_has(r->remote_mta, b, n))
			return true;
	}
	return false;
}

/*
 * "DSN=_" + message_id + "/" + counter. RFC 2046 §5.1.1 bchars, less "?"
 * and space (a '?' could come out of cleaning a value).
 */
static void make_boundary(const struct dsn_msg *m, struct dsn_plan *pl, bool search)
{
	static const char hex[] = "0123456789abcdef";
	const char *id = str_or_empty(m->message_id);
	size_t n = 0, base;
	uint32_t counter = 0;

	memcpy(pl->boundary, BOUNDARY_PREFIX, sizeof(BOUNDARY_PREFIX) - 1);
	n = sizeof(BOUNDARY_PREFIX) - 1;
	for (size_t i = 0; id[i] != '\0' && i < BOUNDARY_ID_MAX; i++) {
		char ch = id[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || strchr("'()+_,-./:=", ch) != NULL))
			ch = '.';
		pl->boundary[n++] = ch;
	}
	pl->boundary[n++] = '/';
	base = n;
	pl->boundary_len = base + BOUNDARY_COUNTER_DIGITS;
	pl->boundary[pl->boundary_len] = '\0';
	for (;;) {
		for (int i = BOUNDARY_COUNTER_DIGITS - 1, v = 0; i >= 0; i--, v += 4)
			pl->boundary[base + (size_t)i] = hex[(counter >> v) & 0xf];
		if (!search || !boundary_taken(m, pl))
			return;
		/*
		 * Each taken candidate occurs in the carried text, which is
		 * far shorter than 2^32 boundaries: this ends.
		 */
		counter++;
	}
}

/* exact: search the boundary and scan for 8-bit; else assume the worst. */
static void make_plan(const struct dsn_msg *m, struct dsn_plan *pl, bool exact)
{
	bool failed = false, delayed = false;
	size_t len = m->orig != NULL ? m->orig_len : 0;

	assert(m->rcpts != NULL && m->nrcpt >= 1);
	for (uint32_t i = 0; i < m->nrcpt; i++) {
		failed |= action_of(&m->rcpts[i]) == DSN_FAILED;
		delayed |= action_of(&m->rcpts[i]) == DSN_DELAYED;
	}
	pl->kind = failed ? KIND_FAILURE : delayed ? KIND_DELAY : KIND_SUCCESS;

	/* RFC 3461 §4.3: the full message for failures only, when asked. */
	if (!m->ret_hdrs && m->orig_complete && failed && len > 0) {
		pl->ret = RET_FULL;
		pl->ret_len = len;
	} else {
		pl->ret_len = len > 0 ? header_block_len(m->orig, len, m->orig_complete) : 0;
		pl->ret = pl->ret_len > 0 ? RET_HDRS : RET_NONE;
	}
	pl->ret_tail = pl->ret != RET_NONE ? crlf_tail(m->orig, pl->ret_len) : "";

	if (exact) {
		pl->cte_ret = pl->ret != RET_NONE && has_8bit(m->orig, pl->ret_len);
		pl->cte_top = m->utf8 || pl->cte_ret;
	} else {
		pl->cte_ret = pl->ret != RET_NONE;
		pl->cte_top = true;
	}
	make_boundary(m, pl, exact);
}

/*
 * CRLF "--" boundary ["--"] CRLF: the CRLF before the dashes belongs to the
 * delimiter (RFC 2046 §5.1.1), so every part's content ends with its own.
 */
static void put_boundary(struct dsn_out *o, const struct dsn_plan *pl, bool last)
{
	put(o, "\r\n--", 4);
	put(o, pl->boundary, pl->boundary_len);
	if (last)
		put(o, "--", 2);
	put_crlf(o);
}

static void put_headers(struct dsn_out *o, const struct dsn_msg *m, const struct dsn_plan *pl)
{
	static const char *const subjects[] = {
	    [KIND_FAILURE] = "Undelivered Mail Returned to Sender",
	    [KIND_DELAY] = "Delayed Mail (still being retried)",
	    [KIND_SUCCESS] = "Successful Mail Delivery Report",
	};
	unsigned u8 = m->utf8 ? V_UTF8 : 0;
	size_t col = 0;

	put_date_field(o, "Date", m->now);
	put_col(o, &col, "From: Mail Delivery System <MAILER-DAEMON@");
	put_value_str(o, &col, m->reporting_mta, 0);
	put_col(o, &col, ">");
	put_crlf(o);
	col = 0;
	put_col(o, &col, "To: <");
	put_value_str(o, &col, m->sender, u8); /* RFC 6532 §3.2: UTF-8 as is */
	put_col(o, &col, ">");
	put_crlf(o);
	put_str(o, "Subject: ");
	put_str(o, subjects[pl->kind]);
	put_crlf(o);
	col = 0;
	put_col(o, &col, "Message-ID: <");
	put_value_str(o, &col, m->message_id, 0);
	put_col(o, &col, ">");
	put_crlf(o);
	put_str(o, "Auto-Submitted: auto-replied\r\n"); /* RFC 3834 §5 */
	put_str(o, "MIME-Version: 1.0\r\n");
	/* RFC 6522 §3: report-type is the subtype of the second part. */
	put_str(o, m->utf8
	               ? "Content-Type: multipart/report; report-type=global-delivery-status;\r\n"
	               : "Content-Type: multipart/report; report-type=delivery-status;\r\n");
	put_str(o, "\tboundary=\"");
	put(o, pl->boundary, pl->boundary_len);
	put_str(o, "\"\r\n");
	/* RFC 2045 §6.4: a multipart is 7bit, 8bit or binary as its parts. */
	if (pl->cte_top)
		put_str(o, "Content-Transfer-Encoding: 8bit\r\n");
	put_crlf(o);
	put_str(o, "This is a MIME-encapsulated message.\r\n"); /* the preamble */
}

/* "<rcpt>: what happened", one folded text line per recipient. */
static void put_rcpt_text(struct dsn_out *o, const struct dsn_msg *m, const struct dsn_rcpt *r)
{
	static const char *const phrases[] = {
	    [DSN_FAILED] = "undeliverable", [DSN_DELAYED] = "delivery temporarily deferred",
	    [DSN_DELIVERED] = "delivered",  [DSN_RELAYED] = "relayed",
	    [DSN_EXPANDED] = "expanded",
	};
	unsigned u8 = m->utf8 ? V_UTF8 | V_TEXT : V_TEXT;
	enum dsn_action action = action_of(r);
	bool success = action != DSN_FAILED && action != DSN_DELAYED;
	size_t col = 0;

	put_col(o, &col, "<");
	put_value_str(o, &col, r->rcpt, u8);
	put_col(o, &col, ">: ");
	if (present(r->diagnostic)) {
		if (present(r->remote_mta)) {
			put_col(o, &col, success ? "delivery via " : "host ");
			put_value_str(o, &col, r->remote_mta, V_TEXT);
			put_col(o, &col, success ? ": " : " said: ");
		}
		put_value_str(o, &col, r->diagnostic, u8 | V_COLLAPSE);
	} else {
		put_col(o, &col, phrases[action]);
		if (present(r->remote_mta)) {
			put_col(o, &col, " at host ");
			put_value_str(o, &col, r->remote_mta, V_TEXT);
		}
		if (present(r->status)) {
			put_col(o, &col, " (");
			put_value_str(o, &col, r->status, V_TEXT);
			put_col(o, &col, ")");
		}
	}
	put_crlf(o);
}

/* Part 1: for the person who sent the message (RFC 3464 §2, first part). */
static void put_notification(struct dsn_out *o, const struct dsn_msg *m, const struct dsn_plan *pl)
{
	static const char *const intros[] = {
	    [KIND_FAILURE] = "Your message could not be delivered to one or more recipients.\r\n"
	                     "The reasons are given below.\r\n",
	    [KIND_DELAY] = "Your message could not be delivered yet to one or more recipients.\r\n"
	                   "The mail system will keep trying; this is a warning only, you\r\n"
	                   "do not need to send the message again.\r\n",
	    [KIND_SUCCESS] = "Your message was delivered to the destinations listed below. If\r\n"
	                     "it was relayed to a system that does not report delivery, you may\r\n"
	                     "still hear of a failure from that system.\r\n",
	};
	size_t col = 0;

	put_boundary(o, pl, false);
	put_str(o, "Content-Description: Notification\r\n");
	if (m->utf8)
		put_str(o, "Content-Type: text/plain; charset=utf-8\r\n"
		           "Content-Transfer-Encoding: 8bit\r\n");
	else
		put_str(o, "Content-Type: text/plain; charset=us-ascii\r\n");
	put_crlf(o);
	put_col(o, &col, "This is the mail system at host ");
	put_value_str(o, &col, m->reporting_mta, V_TEXT);
	put_col(o, &col, ".");
	put_crlf(o);
	put_crlf(o);
	put_str(o, intros[pl->kind]);
	put_str(o, "\r\n"
	           "For further assistance, please send mail to postmaster.\r\n"
	           "If you do so, please include this report.\r\n"
	           "\r\n"
	           "                   The mail system\r\n");
	for (uint32_t i = 0; i < m->nrcpt; i++) {
		put_crlf(o);
		put_rcpt_text(o, m, &m->rcpts[i]);
	}
}

/* Part 2: RFC 3464 §2.1-§2.3, in the order of its ABNF. */
static void put_status(struct dsn_out *o, const struct dsn_msg *m, const struct dsn_plan *pl)
{
	static const char *const default_status[] = {
	    [DSN_FAILED] = "5.0.0",  [DSN_DELAYED] = "4.0.0",  [DSN_DELIVERED] = "2.0.0",
	    [DSN_RELAYED] = "2.0.0", [DSN_EXPANDED] = "2.0.0",
	};
	unsigned u8 = m->utf8 ? V_UTF8 : 0;

	put_boundary(o, pl, false);
	put_str(o, "Content-Description: Delivery report\r\n");
	if (m->utf8)
		put_str(o, "Content-Type: message/global-delivery-status\r\n"
		           "Content-Transfer-Encoding: 8bit\r\n");
	else
		put_str(o, "Content-Type: message/delivery-status\r\n");
	put_crlf(o);

	if (present(m->envid))
		put_envid(o, m->envid);
	put_field_str(o, "Reporting-MTA", "dns", m->reporting_mta, 0);
	if (m->arrival > 0)
		put_date_field(o, "Arrival-Date", m->arrival);

	for (uint32_t i = 0; i < m->nrcpt; i++) {
		const struct dsn_rcpt *r = &m->rcpts[i];
		const char *rcpt = str_or_empty(r->rcpt);
		enum dsn_action action = action_of(r);

		put_crlf(o); /* RFC 3464 §2.1: groups separated by an empty line */
		if (present(r->orcpt))
			put_orcpt(o, r->orcpt, m->utf8);
		/* RFC 6533 §3: the "utf-8" type only for a UTF-8 address. */
		put_field_str(o, "Final-Recipient", m->utf8 && !is_ascii(rcpt) ? "utf-8" : "rfc822",
		              rcpt, u8);
		put_field_str(o, "Action", NULL, dsn_action_name(action), 0);
		put_field_str(o, "Status", NULL,
		              present(r->status) ? r->status : default_status[action], 0);
		if (present(r->remote_mta))
			put_field_str(o, "Remote-MTA", "dns", r->remote_mta, 0);
		if (present(r->diagnostic))
			put_field_str(o, "Diagnostic-Code", "smtp", r->diagnostic, u8 | V_COLLAPSE);
		if (r->last_attempt > 0)
			put_date_field(o, "Last-Attempt-Date", r->last_attempt);
		/* RFC 3464 §2.3.8: a retry time only means something for "delayed". */
		if (action == DSN_DELAYED && r->will_retry_until > 0)
			put_date_field(o, "Will-Retry-Until", r->will_retry_until);
	}
}

/* Part 3: the original or its headers (RFC 3464 §2, third part). */
static void put_returned(struct dsn_out *o, const struct dsn_msg *m, const struct dsn_plan *pl)
{
	bool full = pl->ret == RET_FULL;

	put_boundary(o, pl, false);
	put_str(o, "Content-Description: ");
	if (pl->kind != KIND_SUCCESS)
		put_str(o, "Undelivered ");
	put_str(o, full ? "Message\r\n" : "Message Headers\r\n");
	if (m->utf8)
		put_str(o, full ? "Content-Type: message/global\r\n"
		                : "Content-Type: message/global-headers\r\n");
	else
		put_str(o, full ? "Content-Type: message/rfc822\r\n"
		                : "Content-Type: text/rfc822-headers\r\n");
	if (pl->cte_ret)
		put_str(o, "Content-Transfer-Encoding: 8bit\r\n");
	put_crlf(o);
	put(o, m->orig, pl->ret_len);
	put_str(o, pl->ret_tail);
}

static size_t compose(const struct dsn_msg *m, const struct dsn_plan *pl, char *buf, size_t cap)
{
	struct dsn_out o = {buf, cap, 0};

	put_headers(&o, m, pl);
	put_notification(&o, m, pl);
	put_status(&o, m, pl);
	if (pl->ret != RET_NONE)
		put_returned(&o, m, pl);
	put_boundary(&o, pl, true);
	return o.len;
}

size_t dsn_size_bound(const struct dsn_msg *m)
{
	struct dsn_plan pl;

	make_plan(m, &pl, false);
	return compose(m, &pl, NULL, 0);
}

size_t dsn_write(const struct dsn_msg *m, char *buf, size_t cap)
{
	struct dsn_plan pl;
	size_t len;

	make_plan(m, &pl, true);
	len = compose(m, &pl, buf, cap);
	return len <= cap ? len : 0;
}

bool dsn_is_8bit(const struct dsn_msg *m)
{
	struct dsn_plan pl;

	make_plan(m, &pl, false);
	return m->utf8 || (pl.ret != RET_NONE && has_8bit(m->orig, pl.ret_len));
}
