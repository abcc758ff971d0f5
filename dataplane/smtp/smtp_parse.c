/*
 * smtp_parse.c - the grammar of RFC 5321 §4.1.2 / §4.1.3 (with the
 * RFC 6531 UTF-8 extensions), RFC 3461 xtext and ESMTP parameters, as
 * small recursive-descent checks over counted strings. Every function
 * reads only within [s, s + len) and never allocates.
 */
#include <arpa/inet.h>
#include <string.h>

#include "smtp_parse.h"
#include "smtp_server.h"

static bool is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool is_hexdig_upper(int c)
{
	return is_digit(c) || (c >= 'A' && c <= 'F');
}

static bool is_hexdig(int c)
{
	return is_hexdig_upper(c) || (c >= 'a' && c <= 'f');
}

/* RFC 5322 atext, as RFC 5321 §4.1.2 uses it in Atom. */
static bool is_atext(int c)
{
	return is_alpha(c) || is_digit(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

bool smtp_token_is(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && strncasecmp(s, word, len) == 0;
}

/* Length of the UTF-8 sequence starting at s (RFC 3629 §4), 0 if invalid. */
static size_t utf8_seq(const uint8_t *s, size_t len)
{
	uint8_t c = s[0];
	size_t n;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4, cp = c & 0x07;
	else
		return 0;
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

bool smtp_utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t n = utf8_seq(s + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}

/*
 * sub-domain = Let-dig [Ldh-str] (RFC 5321 §4.1.2), at most 63 octets
 * (RFC 1035 §2.3.4). With utf8, a U-label: any well-formed non-ASCII
 * sequence counts as a letter (IDNA validity is the resolver's concern).
 */
static bool valid_label(const uint8_t *s, size_t len, bool utf8, bool underscore)
{
	if (len == 0 || len > 63)
		return false;
	for (size_t i = 0; i < len;) {
		uint8_t c = s[i];
		if (c >= 0x80) {
			size_t n;
			if (!utf8 || (n = utf8_seq(s + i, len - i)) == 0)
				return false;
			i += n;
			continue;
		}
		if (!is_alpha(c) && !is_digit(c) && !(c == '-' && i > 0 && i + 1 < len) &&
		    !(c == '_' && underscore))
			return false;
		i++;
	}
	return true;
}

static bool valid_domain(const char *s, size_t len, bool utf8, bool underscore)
{
	size_t start = 0;

	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '.') {
			if (!valid_label((const uint8_t *)s + start, i - start, utf8, underscore))
				return false;
			start = i + 1;
		}
	}
	return true;
}

bool smtp_valid_domain(const char *s, size_t len, bool utf8)
{
	return valid_domain(s, len, utf8, false);
}

/* IPv4-address-literal = Snum 3("." Snum), Snum = 1*3DIGIT 0..255. */
static bool valid_ipv4(const char *s, size_t len)
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		unsigned v = 0, nd = 0;
		if (part > 0) {
			if (i >= len || s[i] != '.')
				return false;
			i++;
		}
		while (i < len && is_digit(s[i]) && nd < 3) {
			v = v * 10 + (unsigned)(s[i] - '0');
			i++, nd++;
		}
		if (nd == 0 || v > 255)
			return false;
	}
	return i == len;
}

bool smtp_valid_address_literal(const char *s, size_t len)
{
	char buf[64];
	struct in6_addr a6;
	size_t colon;

	if (len < 3 || s[0] != '[' || s[len - 1] != ']')
		return false;
	s++, len -= 2;
	if (valid_ipv4(s, len))
		return true;
	/* IPv6-address-literal = "IPv6:" IPv6-addr; General = tag ":" 1*dcontent. */
	for (colon = 0; colon < len && s[colon] != ':'; colon++)
		;
	if (colon == 0 || colon >= len - 1)
		return false;
	if (colon == 4 && strncasecmp(s, "IPv6", 4) == 0) {
		if (len - 5 >= sizeof(buf))
			return false;
		memcpy(buf, s + 5, len - 5);
		buf[len - 5] = '\0';
		return inet_pton(AF_INET6, buf, &a6) == 1;
	}
	/* Standardized-tag = Ldh-str (registered with IANA; none exist but IPv6). */
	if (!valid_label((const uint8_t *)s, colon, false, false))
		return false;
	for (size_t i = colon + 1; i < len; i++) {
		uint8_t c = (uint8_t)s[i];
		if (c < 33 || c > 126 || c == '[' || c == '\\' || c == ']')
			return false;
	}
	return true;
}

bool smtp_valid_helo(const char *s, size_t len)
{
	if (len > 0 && s[0] == '[')
		return smtp_valid_address_literal(s, len);
	/* A trailing dot (FQDN form) is common and harmless. */
	if (len > 1 && s[len - 1] == '.')
		len--;
	return valid_domain(s, len, false, true);
}

/*
 * Local-part = Dot-string / Quoted-string (RFC 5321 §4.1.2), returns its
 * length at s or 0. Sets *utf8 when non-ASCII octets are seen.
 */
static size_t parse_local_part(const char *s, size_t len, bool allow8, bool *utf8)
{
	const uint8_t *u = (const uint8_t *)s;
	size_t i = 0, n;

	if (len == 0)
		return 0;
	if (s[0] == '"') {
		for (i = 1; i < len; i++) {
			uint8_t c = u[i];
			if (c == '"')
				return i + 1;
			if (c == '\\') { /* quoted-pairSMTP = %d92 %d32-126 */
				if (i + 1 >= len || u[i + 1] < 32 || u[i + 1] > 126)
					return 0;
				i++;
			} else if (c >= 0x80) {
				if (!allow8 || (n = utf8_seq(u + i, len - i)) == 0)
					return 0;
				*utf8 = true;
				i += n - 1;
			} else if (c < 32 || c > 126) { /* qtextSMTP: 32-33, 35-91, 93-126 */
				return 0;
			}
		}
		return 0; /* unterminated */
	}
	/* Dot-string = Atom *("." Atom) */
	for (;;) {
		size_t atom = i;
		while (i < len) {
			if (u[i] >= 0x80) {
				if (!allow8 || (n = utf8_seq(u + i, len - i)) == 0)
					return 0;
				*utf8 = true;
				i += n;
			} else if (is_atext(u[i])) {
				i++;
			} else {
				break;
			}
		}
		if (i == atom)
			return 0;
		if (i < len && s[i] == '.') {
			i++;
			continue;
		}
		return i;
	}
}

/* Length of a domain or address literal at s, ending at '>' or ',' or ':'. */
static size_t domain_span(const char *s, size_t len)
{
	size_t i = 0;

	if (len > 0 && s[0] == '[') {
		while (i < len && s[i] != ']')
			i++;
		return i < len ? i + 1 : 0;
	}
	while (i < len && s[i] != '>' && s[i] != ',' && s[i] != ':')
		i++;
	return i;
}

static bool valid_domain_or_literal(const char *s, size_t len, bool allow8, bool *utf8)
{
	if (len > 0 && s[0] == '[')
		return smtp_valid_address_literal(s, len);
	for (size_t i = 0; i < len; i++)
		if ((uint8_t)s[i] >= 0x80)
			*utf8 = true;
	return smtp_valid_domain(s, len, allow8);
}

enum smtp_path_result smtp_parse_path(const char *s, size_t len, unsigned flags, char *out,
                                      size_t outsz, size_t *consumed, bool *utf8)
{
	bool allow8 = flags & SMTP_PATH_ALLOW_UTF8;
	size_t i = 1, mbox, lp, dom, end;
	bool saw8 = false;

	*utf8 = false;
	if (len < 2 || s[0] != '<')
		return SMTP_PATH_SYNTAX;
	if (s[1] == '>') {
		if (!(flags & SMTP_PATH_ALLOW_NULL))
			return SMTP_PATH_SYNTAX;
		out[0] = '\0';
		*consumed = 2;
		return SMTP_PATH_OK;
	}
	/* A-d-l = At-domain *( "," At-domain ) ":" - accepted and ignored. */
	if (s[i] == '@') {
		for (;;) {
			size_t d;
			bool ignored8 = false;
			i++; /* '@' */
			d = domain_span(s + i, len - i);
			if (d == 0 || !valid_domain_or_literal(s + i, d, false, &ignored8))
				return SMTP_PATH_SYNTAX;
			i += d;
			if (i < len && s[i] == ',' && i + 1 < len && s[i + 1] == '@') {
				i++;
				continue;
			}
			if (i < len && s[i] == ':') {
				i++;
				break;
			}
			return SMTP_PATH_SYNTAX;
		}
	}
	mbox = i;
	lp = parse_local_part(s + i, len - i, true, &saw8);
	if (lp == 0)
		return SMTP_PATH_SYNTAX;
	i += lp;
	if (i < len && s[i] == '>' && (flags & SMTP_PATH_ALLOW_POSTMASTER) &&
	    smtp_token_is(s + mbox, lp, "postmaster")) {
		dom = 0; /* RFC 5321 §4.1.1.3: <Postmaster> with no domain */
	} else {
		if (i >= len || s[i] != '@')
			return SMTP_PATH_SYNTAX;
		i++;
		dom = domain_span(s + i, len - i);
		if (dom == 0)
			return SMTP_PATH_SYNTAX;
		if (dom > SMTP_DOMAIN_MAX)
			return SMTP_PATH_TOOLONG;
		if (!valid_domain_or_literal(s + i, dom, true, &saw8))
			return SMTP_PATH_SYNTAX;
		i += dom;
	}
	if (i >= len || s[i] != '>')
		return SMTP_PATH_SYNTAX;
	end = i;
	if (lp > SMTP_LOCAL_MAX || end - mbox + 2 > SMTP_PATH_MAX || end - mbox >= outsz)
		return SMTP_PATH_TOOLONG;
	if (saw8 && !allow8)
		return SMTP_PATH_UTF8;
	memcpy(out, s + mbox, end - mbox);
	out[end - mbox] = '\0';
	*consumed = end + 1;
	*utf8 = saw8;
	return SMTP_PATH_OK;
}

bool smtp_valid_xtext(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t c = (uint8_t)s[i];
		if (c == '+') {
			if (len - i < 3 || !is_hexdig_upper(s[i + 1]) || !is_hexdig_upper(s[i + 2]))
				return false;
			i += 2;
		} else if (c < 33 || c > 126 || c == '=') {
			return false;
		}
	}
	return true;
}

bool smtp_valid_utf8_xtext(const char *s, size_t len)
{
	const uint8_t *u = (const uint8_t *)s;

	for (size_t i = 0; i < len;) {
		uint8_t c = u[i];
		if (c >= 0x80) {
			size_t n = utf8_seq(u + i, len - i);
			if (n == 0)
				return false;
			i += n;
		} else if (c == '\\') { /* EmbeddedUnicodeChar = "\x{" HEXPOINT "}" */
			size_t j = i + 3, nd = 0;
			if (len - i < 5 || s[i + 1] != 'x' || s[i + 2] != '{')
				return false;
			while (j < len && is_hexdig(s[j]) && nd < 6)
				j++, nd++;
			if (nd < 2 || j >= len || s[j] != '}')
				return false;
			i = j + 1;
		} else if (c == '+') {
			if (len - i < 3 || !is_hexdig_upper(s[i + 1]) || !is_hexdig_upper(s[i + 2]))
				return false;
			i += 3;
		} else if (c < 33 || c > 126 || c == '=') {
			return false;
		} else {
			i++;
		}
	}
	return true;
}

/*
 * esmtp-param = esmtp-keyword ["=" esmtp-value]
 * esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-")
 * esmtp-value = 1*(%d33-60 / %d62-126)   (RFC 6531 §3.3 adds UTF8-non-ascii)
 */
int smtp_next_param(const char **cur, const char *end, const char **key, size_t *keylen,
                    const char **val, size_t *vallen, bool utf8)
{
	const char *p = *cur, *k;

	while (p < end && *p == ' ')
		p++;
	if (p == end) {
		*cur = p;
		return 0;
	}
	k = p;
	if (!is_alpha(*p) && !is_digit(*p))
		return -1;
	while (p < end && (is_alpha(*p) || is_digit(*p) || *p == '-'))
		p++;
	*key = k;
	*keylen = (size_t)(p - k);
	*val = NULL;
	*vallen = 0;
	if (p < end && *p == '=') {
		const char *v = ++p;
		while (p < end && *p != ' ') {
			uint8_t c = (uint8_t)*p;
			if (c >= 0x80) {
				size_t n;
				if (!utf8 ||
				    (n = utf8_seq((const uint8_t *)p, (size_t)(end - p))) == 0)
					return -1;
				p += n;
				continue;
			}
			if (c < 33 || c > 126 || c == '=')
				return -1;
			p++;
		}
		if (p == v)
			return -1;
		*val = v;
		*vallen = (size_t)(p - v);
	}
	if (p < end && *p != ' ')
		return -1;
	*cur = p;
	return 1;
}
