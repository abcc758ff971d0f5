/*
 * sender_policy.c - reader, validator and editor of
 * CONFIG_DIR/sender_tls_policy (sender_policy.h): one floor per line,
 *
 *     KEY  FLOOR  [mode=testing]
 *
 * in the line discipline of a Postfix lookup table (policy_table_lines).
 * Postfix has no such table: its users build the same thing from
 * sender_dependent_default_transport_maps and a second smtp transport with
 * -o smtp_tls_security_level=encrypt. Anything that is not a floor - the
 * levels none and may, fingerprint (a pin belongs to one destination),
 * attributes other than mode=testing - is refused with FILE:LINE, so a
 * floor never silently means less than it says.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf_ipv6.h"
#include "files.h"
#include "policy_lookup.h"
#include "result.h"
#include "sender_policy.h"

#define SENDER_WHY POLICY_WHY_MAX

static int sender_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int sender_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return PG_ERROR;
}

/* ---- keys ---- */

/*
 * "[2001:db8::/32]" or "[2001:db8::1]" (a /128): a client network of IPv6,
 * its key written back in RFC 5952 form.
 */
static int sender_parse_network6(char *inner, char *out, size_t outlen, struct pg_addr *prefix,
                                 uint8_t *len, char *why, size_t whylen)
{
	char *slash = strchr(inner, '/');
	unsigned long bits = 128;
	uint8_t a[16], m[16];
	char n[INET6_ADDRSTRLEN];

	if (slash != NULL) {
		char *end;

		*slash = '\0';
		if (!isdigit((unsigned char)slash[1]) || strlen(slash + 1) > 3)
			return sender_why(why, whylen, "prefix length must be a number 0..128");
		bits = strtoul(slash + 1, &end, 10);
		if (*end != '\0' || bits > 128)
			return sender_why(why, whylen, "prefix length must be a number 0..128");
	}
	if (inet_pton(AF_INET6, inner, a) != 1)
		return sender_why(why, whylen, "\"%s\" is not an IPv6 address", inner);
	conf6_mask(a, (unsigned)bits, m);
	if (memcmp(m, a, sizeof(m)) != 0) {
		inet_ntop(AF_INET6, m, n, sizeof(n));
		return sender_why(why, whylen, "host bits set in %s/%lu (the network is [%s/%lu])",
		                  inner, bits, n, bits);
	}
	*prefix = pg_addr_v6(a);
	*len = (uint8_t)bits;
	inet_ntop(AF_INET6, a, n, sizeof(n));
	snprintf(out, outlen, "[%s/%lu]", n, bits);
	return 0;
}

/*
 * "[a.b.c.d/len]" or "[a.b.c.d]" (a /32): a client network of IPv4; with
 * a ':' inside the brackets, one of IPv6 (*kind becomes NETWORK6).
 */
static int sender_parse_network(const char *in, char *out, size_t outlen, uint32_t *kind,
                                struct pg_addr *prefix, uint8_t *len, char *why, size_t whylen)
{
	const char *close = strchr(in, ']');
	char inner[64], *slash;
	struct in_addr a;
	unsigned long bits = 32;
	uint32_t mask;

	if (close == NULL)
		return sender_why(why, whylen, "missing ']'");
	if (close[1] == '/' && (size_t)(close - in - 1) < 64 && strlen(close + 1) < 8)
		return sender_why(why, whylen,
		                  "the prefix length goes inside the brackets: [%.*s%s]",
		                  (int)(close - in - 1), in + 1, close + 1);
	if (close[1] != '\0')
		return sender_why(why, whylen,
		                  "nothing may follow ']' (a client network is [a.b.c.d/len] or"
		                  " [2001:db8::/len])");
	if ((size_t)(close - in - 1) >= sizeof(inner))
		return sender_why(why, whylen,
		                  "not a client network [a.b.c.d/len] or [2001:db8::/len]");
	memcpy(inner, in + 1, (size_t)(close - in - 1));
	inner[close - in - 1] = '\0';
	if (strchr(inner, ':') != NULL) {
		*kind = SNAP_NAME_NETWORK6;
		return sender_parse_network6(inner, out, outlen, prefix, len, why, whylen);
	}
	slash = strchr(inner, '/');
	if (slash != NULL) {
		char *end;

		*slash = '\0';
		if (!isdigit((unsigned char)slash[1]) || strlen(slash + 1) > 2)
			return sender_why(why, whylen, "prefix length must be a number 0..32");
		bits = strtoul(slash + 1, &end, 10);
		if (*end != '\0' || bits > 32)
			return sender_why(why, whylen, "prefix length must be a number 0..32");
	}
	if (inet_pton(AF_INET, inner, &a) != 1)
		return sender_why(why, whylen, "\"%s\" is not an IPv4 address", inner);
	mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
	if ((ntohl(a.s_addr) & ~mask) != 0) {
		struct in_addr net = {.s_addr = htonl(ntohl(a.s_addr) & mask)};
		char n[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &net, n, sizeof(n));
		return sender_why(why, whylen, "host bits set in %s/%lu (the network is [%s/%lu])",
		                  inner, bits, n, bits);
	}
	*prefix = pg_addr_v4(a.s_addr);
	*len = (uint8_t)bits;
	inet_ntop(AF_INET, &a, inner, sizeof(inner));
	snprintf(out, outlen, "[%s/%lu]", inner, bits);
	return 0;
}

int sender_policy_parse_key(const char *in, char *out, size_t outlen, uint32_t *kind,
                            struct pg_addr *prefix, uint8_t *len, char *why, size_t whylen)
{
	memset(prefix, 0, sizeof(*prefix));
	*len = 0;
	if (strcmp(in, "*") == 0)
		return sender_why(why, whylen,
		                  "\"*\" is not a sender_tls_policy key: a floor for all mail is"
		                  " the client network [0.0.0.0/0], or tls_default_level");
	if (strchr(in, '@') != NULL)
		return sender_why(why, whylen,
		                  "keys are sender domains (domain, .domain) or client networks"
		                  " ([a.b.c.d/len]), not addresses");
	if (in[0] == '[') {
		*kind = SNAP_NAME_NETWORK;
		return sender_parse_network(in, out, outlen, kind, prefix, len, why, whylen);
	}
	if (strchr(in, ':') != NULL || strchr(in, '/') != NULL)
		return sender_why(why, whylen,
		                  "a client network is written [a.b.c.d/len] or [2001:db8::/len]");
	*kind = in[0] == '.' ? SNAP_NAME_PARENT : SNAP_NAME_DOMAIN;
	return policy_check_domain(in, true, out, outlen, why, whylen);
}

/* ---- floors ---- */

static int sender_parse_level(const char *s, uint8_t *level, char *why, size_t whylen)
{
	static const struct {
		const char *word;
		uint8_t level;
	} floors[] = {
	    {"encrypt", SNAP_TLS_ENCRYPT},
	    {"verify", SNAP_TLS_VERIFY},
	    {"secure", SNAP_TLS_SECURE},
	};

	for (size_t i = 0; i < sizeof(floors) / sizeof(floors[0]); i++) {
		if (strcasecmp(s, floors[i].word) == 0) {
			*level = floors[i].level;
			return 0;
		}
	}
	if (strcasecmp(s, "none") == 0 || strcasecmp(s, "may") == 0)
		return sender_why(why, whylen,
		                  "\"%s\" is not a floor: a sender_tls_policy entry raises what"
		                  " the destinations decide, never lowers it (encrypt, verify,"
		                  " secure)",
		                  s);
	if (strcasecmp(s, "fingerprint") == 0)
		return sender_why(why, whylen,
		                  "fingerprint pins the certificate of one destination: set it in"
		                  " tls_policy (floors: encrypt, verify, secure)");
	if (strcasecmp(s, "dane") == 0 || strcasecmp(s, "dane-only") == 0)
		return sender_why(why, whylen, "%s requires DNSSEC lookups, not supported yet",
		                  strcasecmp(s, "dane") == 0 ? "dane" : "dane-only");
	return sender_why(why, whylen, "unknown floor \"%.40s\" (encrypt, verify, secure)", s);
}

/* One attribute: mode=testing is the only one a floor has. */
static int sender_attribute(struct sender_entry *e, const char *tok, char *why, size_t whylen)
{
	const char *eq = strchr(tok, '=');

	if (tok[0] == '#')
		return sender_why(why, whylen,
		                  "\"%.60s\": a comment must start its own line (Postfix tables"
		                  " have no trailing comments)",
		                  tok);
	if (eq == NULL || eq == tok)
		return sender_why(why, whylen, "\"%.60s\": expected NAME=VALUE (mode=testing)",
		                  tok);
	if ((size_t)(eq - tok) != 4 || strncasecmp(tok, "mode", 4) != 0)
		return sender_why(why, whylen,
		                  "attribute \"%.*s\" is not a floor's: a floor keeps the"
		                  " destination's own attributes (set them in tls_policy); the"
		                  " only one here is mode=testing",
		                  (int)((eq - tok) > 40 ? 40 : (eq - tok)), tok);
	if ((e->flags & SNAP_TLS_F_TESTING) != 0)
		return sender_why(why, whylen, "attribute \"mode\" is specified more than once");
	if (strcasecmp(eq + 1, "testing") != 0)
		return sender_why(why, whylen, "bad mode=%.60s: the only mode is \"testing\"",
		                  eq + 1);
	e->flags |= SNAP_TLS_F_TESTING;
	return 0;
}

/* ---- the file ---- */

struct sender_parser {
	const char *file;
	struct pg_sender_policy *out;
	char *err;
	size_t errlen;
};

static int sender_error(struct sender_parser *p, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int sender_error(struct sender_parser *p, unsigned line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	files_verror(p->err, p->errlen, p->file, line, fmt, ap);
	va_end(ap);
	return PG_ERROR;
}

static void sender_entry_free(struct sender_entry *e)
{
	free(e->text);
	memset(e, 0, sizeof(*e));
}

/* Token separators of a value: Postfix CHARS_COMMA_SP, as in tls_policy. */
#define SENDER_SEP ", \t"

static int sender_logical_line(char *line, unsigned lineno, void *owner)
{
	struct sender_parser *p = owner;
	struct sender_entry e = {0};
	char why[SENDER_WHY], *save = NULL, *keytok, *tok;
	const struct sender_entry *dup;
	struct sender_entry *grown;

	e.line = lineno;
	e.text = strdup(line);
	if (e.text == NULL)
		return sender_error(p, lineno, "out of memory");
	keytok = strtok_r(line, " \t", &save);
	if (sender_policy_parse_key(keytok, e.key, sizeof(e.key), &e.kind, &e.prefix, &e.prefix_len,
	                            why, sizeof(why)) != 0) {
		sender_entry_free(&e);
		return sender_error(p, lineno, "bad key \"%.100s\": %s", keytok, why);
	}
	dup = sender_policy_find(p->out, e.key);
	if (dup != NULL) {
		unsigned first = dup->line;

		sender_entry_free(&e);
		return sender_error(p, lineno, "duplicate key \"%s\" (first at line %u)", keytok,
		                    first);
	}
	tok = strtok_r(NULL, SENDER_SEP, &save);
	if (tok == NULL) {
		sender_entry_free(&e);
		return sender_error(
		    p, lineno, "missing floor after \"%.100s\" (encrypt, verify, secure)", keytok);
	}
	if (sender_parse_level(tok, &e.level, why, sizeof(why)) != 0) {
		sender_entry_free(&e);
		return sender_error(p, lineno, "%s", why);
	}
	while ((tok = strtok_r(NULL, SENDER_SEP, &save)) != NULL) {
		if (sender_attribute(&e, tok, why, sizeof(why)) != 0) {
			sender_entry_free(&e);
			return sender_error(p, lineno, "%s", why);
		}
	}
	if (p->out->n == p->out->cap) {
		size_t ncap = p->out->cap ? p->out->cap * 2 : 16;

		grown = realloc(p->out->entries, ncap * sizeof(*grown));
		if (grown == NULL) {
			sender_entry_free(&e);
			return sender_error(p, lineno, "out of memory");
		}
		p->out->entries = grown;
		p->out->cap = ncap;
	}
	p->out->entries[p->out->n++] = e;
	return PG_OK;
}

void sender_policy_free(struct pg_sender_policy *p)
{
	for (size_t i = 0; i < p->n; i++)
		sender_entry_free(&p->entries[i]);
	free(p->entries);
	p->entries = NULL;
	p->n = p->cap = 0;
}

const struct sender_entry *sender_policy_find(const struct pg_sender_policy *p, const char *key)
{
	/* load-time only (duplicates): a linear scan is fine */
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->entries[i].key, key) == 0)
			return &p->entries[i];
	return NULL;
}

int sender_policy_parse_text(const char *dir, const char *text, size_t len,
                             struct pg_sender_policy *out, char *err, size_t errlen)
{
	struct sender_parser p = {.out = out, .err = err, .errlen = errlen};

	memset(out, 0, sizeof(*out));
	snprintf(out->path, sizeof(out->path), "%s/%s", dir, SENDER_POLICY_FILE_NAME);
	p.file = out->path;
	if (policy_table_lines(p.file, text, len, sender_logical_line, &p, err, errlen) != PG_OK) {
		sender_policy_free(out);
		return PG_ERROR;
	}
	return PG_OK;
}

int sender_policy_load(const char *dir, struct pg_sender_policy *out, char *err, size_t errlen)
{
	char path[CONF_PATH_MAX + 32];
	char *text = NULL;
	size_t len = 0;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, SENDER_POLICY_FILE_NAME);
	rc = policy_read_file(path, SENDER_POLICY_FILE_MAX, &text, &len, err, errlen);
	if (rc == PG_ERROR) {
		memset(out, 0, sizeof(*out));
		return PG_ERROR;
	}
	/* absent: no floors */
	rc = sender_policy_parse_text(dir, text != NULL ? text : "", len, out, err, errlen);
	free(text);
	return rc;
}

/* ---- policy set / del --sender ---- */

static int sender_key_only(const char *in, char *out, size_t outlen, char *why, size_t whylen)
{
	uint32_t kind;
	struct pg_addr prefix;
	uint8_t len;

	return sender_policy_parse_key(in, out, outlen, &kind, &prefix, &len, why, whylen);
}

static int sender_validate(const char *dir, const char *text, size_t len, char *err, size_t errlen)
{
	struct pg_sender_policy check;

	if (sender_policy_parse_text(dir, text, len, &check, err, errlen) != PG_OK)
		return PG_ERROR;
	sender_policy_free(&check);
	return PG_OK;
}

static const struct policy_table_kind sender_table_kind = {
    .file_name = SENDER_POLICY_FILE_NAME,
    .parse_key = sender_key_only,
    .validate = sender_validate,
};

int sender_policy_edit(const char *dir, const char *old, size_t oldlen, const char *key,
                       const char *args, char **out, size_t *outlen, char *err, size_t errlen)
{
	return policy_edit_table(&sender_table_kind, dir, old, oldlen, key, args, out, outlen, err,
	                         errlen);
}
