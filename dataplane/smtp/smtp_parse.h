/*
 * smtp_parse.h - pure syntax checks of the SMTP server: paths and mailboxes
 * (RFC 5321 §4.1.2, RFC 6531 §3.3), domains and address literals, HELO
 * arguments, ESMTP parameters (RFC 5321 §4.1.2 esmtp-param), xtext (RFC
 * 3461 §4), UTF-8 (RFC 3629). No state, no allocation: table-tested alone.
 */
#ifndef PG_SMTP_PARSE_H
#define PG_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum smtp_path_result {
	SMTP_PATH_OK = 0,
	SMTP_PATH_SYNTAX,  /* not a Path per RFC 5321 §4.1.2 */
	SMTP_PATH_TOOLONG, /* over §4.5.3.1.1-3 limits */
	SMTP_PATH_UTF8,    /* non-ASCII while UTF-8 is not allowed (RFC 6531 §3.4) */
};

/* Flags for smtp_parse_path(). */
enum {
	SMTP_PATH_ALLOW_NULL = 1u << 0,       /* "<>" (reverse-path only) */
	SMTP_PATH_ALLOW_POSTMASTER = 1u << 1, /* "<Postmaster>" (RCPT, §4.1.1.3) */
	SMTP_PATH_ALLOW_UTF8 = 1u << 2,       /* SMTPUTF8 given on MAIL */
};

/*
 * Parse a Path or "<>" at the start of s[0..len). On success the mailbox
 * (source route dropped, RFC 5321 §3.3 and Appendix C) is copied to
 * out (NUL-terminated, outsz >= SMTP_PATH_MAX + 1) and *consumed is the
 * length of the path including the brackets. *utf8 says whether the
 * mailbox has non-ASCII octets.
 */
enum smtp_path_result smtp_parse_path(const char *s, size_t len, unsigned flags, char *out,
                                      size_t outsz, size_t *consumed, bool *utf8);

/* Domain (RFC 5321 §4.1.2; U-labels when utf8) - whole string. */
bool smtp_valid_domain(const char *s, size_t len, bool utf8);
/* address-literal "[...]" (RFC 5321 §4.1.3) - whole string. */
bool smtp_valid_address_literal(const char *s, size_t len);
/*
 * A HELO/EHLO argument: a domain or address literal, tolerant like
 * Postfix of '_' in labels (Windows hosts) - whole string.
 */
bool smtp_valid_helo(const char *s, size_t len);

/* Well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF). */
bool smtp_utf8_valid(const uint8_t *s, size_t len);

/* xtext (RFC 3461 §4): xchar or "+" two upper-case hex digits. */
bool smtp_valid_xtext(const char *s, size_t len);
/* utf-8-addr-xtext (RFC 6533 §3): xtext with UTF-8 and "\x{HEX}". */
bool smtp_valid_utf8_xtext(const char *s, size_t len);

/*
 * Next esmtp-param "keyword[=value]" from *cur (separated by spaces,
 * RFC 5321 §4.1.2). PG-style: 1 = one found (key/val point into the
 * buffer, vallen 0 and val NULL when there is no "="), 0 = none left,
 * -1 = syntax error (bad keyword or empty/illegal value). utf8 admits
 * non-ASCII octets in values (RFC 6531 §3.3).
 */
int smtp_next_param(const char **cur, const char *end, const char **key, size_t *keylen,
                    const char **val, size_t *vallen, bool utf8);

/* Case-insensitive compare of a counted token with a NUL-terminated word. */
bool smtp_token_is(const char *s, size_t len, const char *word);

#endif
