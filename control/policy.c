/*
 * policy.c - reader, validator and editor of CONFIG_DIR/tls_policy, the
 * outbound TLS policy table in Postfix smtp_tls_policy_maps syntax:
 *
 *     KEY  LEVEL  [NAME=VALUE ...]
 *
 * Keys, levels and attributes follow Postfix (TLS_README "TLS policy
 * table"; src/smtp/smtp_tls_policy.c decides the corner cases). Where
 * Postfix defers mail at delivery time because an entry is invalid
 * ("4.7.5 client TLS configuration problem"), or ignores attributes with a
 * warning, Postern refuses the file at load time with FILE:LINE, so a bad
 * entry never reaches the dataplane and nothing is ever silently weakened.
 * Deviations from Postfix are listed in README.md ("tls_policy").
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "policy.h"
#include "policy_lookup.h"
#include "result.h"

#define POLICY_LINE_MAX 65536
#define POLICY_WHY POLICY_WHY_MAX

static int policy_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int policy_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return PG_ERROR;
}

/* ---- names ---- */

int policy_check_domain(const char *in, bool allow_parent, char *out, size_t outlen, char *why,
                        size_t whylen)
{
	const char *s = in, *label;
	size_t n, o = 0;
	bool digits_only = true;

	if (allow_parent && *s == '.')
		s++;
	n = strlen(s);
	if (n == 0)
		return policy_why(why, whylen, "empty domain name");
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80)
			return policy_why(why, whylen,
			                  "not ASCII: write an internationalized domain in its"
			                  " A-label (xn--) form (RFC 5890); UTF-8 names are not"
			                  " supported yet");
	if (n > 253)
		return policy_why(why, whylen, "longer than 253 characters (RFC 1035 §2.3.4)");
	if (n + 2 > outlen)
		return policy_why(why, whylen, "too long");
	if (s != in)
		out[o++] = '.';
	label = s;
	for (size_t i = 0; i <= n; i++) {
		char c = s[i];

		if (c == '.' || c == '\0') {
			size_t len = (size_t)(s + i - label);

			if (len == 0)
				return policy_why(why, whylen, "empty label");
			if (len > 63)
				return policy_why(why, whylen,
				                  "label \"%.20s...\" longer than 63 characters",
				                  label);
			if (label[0] == '-' || label[len - 1] == '-')
				return policy_why(why, whylen,
				                  "label \"%.*s\" starts or ends with '-'",
				                  (int)len, label);
			if (c == '\0' && digits_only && n > 0)
				return policy_why(why, whylen,
				                  "the last label \"%.*s\" is all digits (an IP"
				                  " address goes in [brackets])",
				                  (int)len, label);
			digits_only = true;
			label = s + i + 1;
			if (c == '.')
				out[o++] = '.';
			continue;
		}
		if (!isalnum((unsigned char)c) && c != '-')
			return policy_why(why, whylen,
			                  "invalid character '%c' (letters, digits, '-' and '.'"
			                  " only)",
			                  isprint((unsigned char)c) ? c : '?');
		if (!isdigit((unsigned char)c))
			digits_only = false;
		out[o++] = (char)tolower((unsigned char)c);
	}
	out[o] = '\0';
	return 0;
}

/*
 * "[host]" or "[host]:port" -> normalized; host a DNS name, IPv4, or IPv6
 * with or without its RFC 5321 tag, normalized "[ipv6:ADDRESS]" as the
 * transport's destinations (control/transport.c) are named.
 */
static int policy_parse_nexthop_key(const char *in, char *out, size_t outlen, char *why,
                                    size_t whylen)
{
	const char *close = strchr(in, ']');
	char host[300], norm[300];
	struct in_addr a;
	unsigned long port = POLICY_SMTP_PORT;

	if (close == NULL)
		return policy_why(why, whylen, "missing ']'");
	if ((size_t)(close - in - 1) >= sizeof(host))
		return policy_why(why, whylen, "host name too long");
	memcpy(host, in + 1, (size_t)(close - in - 1));
	host[close - in - 1] = '\0';
	if (close[1] != '\0') {
		char *end;

		if (close[1] != ':' || !isdigit((unsigned char)close[2]))
			return policy_why(why, whylen, "expected [host] or [host]:port");
		errno = 0;
		port = strtoul(close + 2, &end, 10);
		if (*end != '\0' || port == 0 || port > 65535 || errno != 0)
			return policy_why(why, whylen, "port must be a number 1..65535");
	}
	if (strncasecmp(host, "ipv6:", 5) == 0 || strchr(host, ':') != NULL) {
		const char *a6 = strncasecmp(host, "ipv6:", 5) == 0 ? host + 5 : host;
		uint8_t b6[16];
		char t6[INET6_ADDRSTRLEN];

		if (inet_pton(AF_INET6, a6, b6) != 1)
			return policy_why(why, whylen, "\"%s\" is not an IPv6 address", a6);
		inet_ntop(AF_INET6, b6, t6, sizeof(t6));
		snprintf(norm, sizeof(norm), "ipv6:%s", t6);
	} else if (inet_pton(AF_INET, host, &a) == 1) {
		snprintf(norm, sizeof(norm), "%s", host);
	} else {
		char inner[POLICY_WHY];

		if (host[0] != '\0' && strspn(host, "0123456789.") == strlen(host))
			return policy_why(why, whylen, "\"%s\" is not an IPv4 address", host);
		if (policy_check_domain(host, false, norm, sizeof(norm), inner, sizeof(inner)) != 0)
			return policy_why(why, whylen, "host \"%s\": %s", host, inner);
	}
	/* Postfix keys include only a non-default port (TLS_README) */
	if (port == POLICY_SMTP_PORT)
		snprintf(out, outlen, "[%s]", norm);
	else
		snprintf(out, outlen, "[%s]:%lu", norm, port);
	return 0;
}

int policy_parse_key(const char *in, char *out, size_t outlen, uint32_t *kind, char *why,
                     size_t whylen)
{
	char inner[POLICY_WHY];

	if (strcmp(in, "*") == 0)
		return policy_why(why, whylen,
		                  "\"*\" is not a tls_policy key: the level for"
		                  " destinations without an entry is tls_default_level in"
		                  " postern.conf");
	if (strchr(in, '@') != NULL)
		return policy_why(why, whylen,
		                  "keys are next-hop domains or [host]:port, not addresses");
	if (in[0] == '[') {
		*kind = SNAP_NAME_NEXTHOP;
		if (policy_parse_nexthop_key(in, out, outlen, inner, sizeof(inner)) != 0)
			return policy_why(why, whylen, "%s", inner);
		return 0;
	}
	if (strchr(in, ':') != NULL)
		return policy_why(why, whylen, "a port needs the next-hop form [host]:port");
	*kind = in[0] == '.' ? SNAP_NAME_PARENT : SNAP_NAME_DOMAIN;
	return policy_check_domain(in, true, out, outlen, why, whylen);
}

/* ---- levels and attributes ---- */

static const char *const policy_level_words[] = {
    [SNAP_TLS_NONE] = "none",       [SNAP_TLS_MAY] = "may",
    [SNAP_TLS_ENCRYPT] = "encrypt", [SNAP_TLS_FINGERPRINT] = "fingerprint",
    [SNAP_TLS_VERIFY] = "verify",   [SNAP_TLS_SECURE] = "secure",
};

static int policy_parse_level(const char *s, uint8_t *level, char *why, size_t whylen)
{
	for (unsigned i = 0; i <= SNAP_TLS_LEVEL_MAX; i++) {
		if (strcasecmp(s, policy_level_words[i]) == 0) {
			*level = (uint8_t)i;
			return 0;
		}
	}
	/* Postfix would fall back from dane to may/encrypt without DNSSEC
	 * (dane_init); Postern refuses rather than weaken silently */
	if (strcasecmp(s, "dane") == 0 || strcasecmp(s, "dane-only") == 0)
		return policy_why(why, whylen, "%s requires DNSSEC lookups, not supported yet",
		                  strcasecmp(s, "dane") == 0 ? "dane" : "dane-only");
	return policy_why(why, whylen,
	                  "unknown security level \"%.40s\" (none, may, encrypt,"
	                  " fingerprint, verify, secure)",
	                  s);
}

int policy_parse_default_level(const char *s, uint8_t *level, char *why, size_t whylen)
{
	if (policy_parse_level(s, level, why, whylen) != 0)
		return PG_ERROR;
	if (*level == SNAP_TLS_FINGERPRINT)
		return policy_why(why, whylen,
		                  "fingerprint needs the fingerprints of one destination:"
		                  " set it per destination in tls_policy");
	return 0;
}

static const struct {
	const char *name;
	uint16_t bit;
} policy_protocols[] = {
    {"SSLv2", SNAP_TLS_P_SSLV2},     {"SSLv3", SNAP_TLS_P_SSLV3},
    {"TLSv1", SNAP_TLS_P_TLSV1},     {"TLSv1.1", SNAP_TLS_P_TLSV1_1},
    {"TLSv1.2", SNAP_TLS_P_TLSV1_2}, {"TLSv1.3", SNAP_TLS_P_TLSV1_3},
};

#define POLICY_NPROTOCOLS (sizeof(policy_protocols) / sizeof(policy_protocols[0]))

/*
 * Postfix protocols syntax (postconf(5) smtp_tls_mandatory_protocols):
 * a list separated by ':' (whitespace and ',' also in main.cf, but not
 * inside a policy attribute: seps says which) of "NAME" (include only
 * these), "!NAME" (exclude), and since Postfix 3.6 ">=NAME" / "<=NAME"
 * bounds. The result is the set of versions allowed; it must not be empty.
 */
int policy_parse_protocols(const char *s, const char *seps, uint16_t *mask, char *why,
                           size_t whylen)
{
	uint16_t include = 0, exclude = 0, allowed;
	int lo = 0, hi = (int)POLICY_NPROTOCOLS - 1;
	char buf[256], *save = NULL;

	if (strlen(s) >= sizeof(buf))
		return policy_why(why, whylen, "too long");
	snprintf(buf, sizeof(buf), "%s", s);
	for (char *t = strtok_r(buf, seps, &save); t != NULL; t = strtok_r(NULL, seps, &save)) {
		int op = 0; /* 0 include, '!' exclude, '>' min, '<' max */
		size_t i;

		if (t[0] == '!') {
			op = '!';
			t++;
		} else if ((t[0] == '>' || t[0] == '<') && t[1] == '=') {
			op = t[0];
			t += 2;
		}
		for (i = 0; i < POLICY_NPROTOCOLS; i++)
			if (strcasecmp(t, policy_protocols[i].name) == 0)
				break;
		if (i == POLICY_NPROTOCOLS)
			return policy_why(why, whylen,
			                  "unknown protocol \"%.40s\" (SSLv2, SSLv3, TLSv1,"
			                  " TLSv1.1, TLSv1.2, TLSv1.3, each optionally after"
			                  " !, >= or <=)",
			                  t);
		if (op == '!')
			exclude |= policy_protocols[i].bit;
		else if (op == '>')
			lo = (int)i;
		else if (op == '<')
			hi = (int)i;
		else
			include |= policy_protocols[i].bit;
	}
	allowed = include != 0 ? include : SNAP_TLS_P_ALL;
	allowed &= (uint16_t)~exclude;
	for (int i = 0; i < (int)POLICY_NPROTOCOLS; i++)
		if (i < lo || i > hi)
			allowed &= (uint16_t)~policy_protocols[i].bit;
	if (allowed == 0)
		return policy_why(why, whylen, "leaves no protocol version enabled");
	*mask = allowed;
	return 0;
}

static int policy_parse_grade(const char *s, uint8_t *grade, char *why, size_t whylen)
{
	for (unsigned g = SNAP_TLS_GRADE_EXPORT; g <= SNAP_TLS_GRADE_MAX; g++) {
		if (strcasecmp(s, policy_grade_name(g)) == 0) {
			*grade = (uint8_t)g;
			return 0;
		}
	}
	return policy_why(why, whylen, "expected export, low, medium, high or null");
}

/* One SHA-256 fingerprint, "AB:CD:.." or plain hex, into "AB:CD:..". */
static int policy_parse_fingerprint(const char *s, char *out, size_t outlen)
{
	size_t nbytes = 0, o = 0;

	while (*s != '\0') {
		if (!isxdigit((unsigned char)s[0]) || !isxdigit((unsigned char)s[1]))
			return PG_ERROR;
		if (o + 3 > outlen || nbytes == 32)
			return PG_ERROR;
		if (nbytes > 0)
			out[o++] = ':';
		out[o++] = (char)toupper((unsigned char)s[0]);
		out[o++] = (char)toupper((unsigned char)s[1]);
		nbytes++;
		s += 2;
		if (*s == ':' && s[1] != '\0')
			s++;
	}
	out[o] = '\0';
	return nbytes == 32 ? 0 : -1;
}

/* Append s to a heap string, with sep between elements. */
static int policy_append(char **dst, const char *s, char sep)
{
	size_t old = *dst != NULL ? strlen(*dst) : 0;
	char *np = realloc(*dst, old + 1 + strlen(s) + 1);

	if (np == NULL)
		return PG_ERROR;
	if (old > 0)
		np[old++] = sep;
	strcpy(np + old, s);
	*dst = np;
	return 0;
}

/* match= of fingerprint: fingerprints separated by '|' (Postfix argv_split "|"). */
static int policy_match_fingerprints(struct policy_entry *e, const char *val, char *why,
                                     size_t whylen)
{
	char buf[POLICY_LINE_MAX], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", val);
	for (char *t = strtok_r(buf, "|", &save); t != NULL; t = strtok_r(NULL, "|", &save)) {
		char fp[100];

		if (policy_parse_fingerprint(t, fp, sizeof(fp)) != 0)
			return policy_why(why, whylen,
			                  "bad match= fingerprint \"%.100s\": expected a SHA-256"
			                  " digest, 32 hex bytes separated by ':'",
			                  t);
		if (policy_append(&e->match, fp, '|') != 0)
			return policy_why(why, whylen, "out of memory");
	}
	return 0;
}

/* match= of verify/secure: strategies separated by ':' (Postfix argv_split ":"). */
static int policy_match_names(struct policy_entry *e, const char *val, char *why, size_t whylen)
{
	static const char *const keywords[] = {"hostname", "nexthop", "dot-nexthop"};
	char buf[POLICY_LINE_MAX], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", val);
	for (char *t = strtok_r(buf, ":", &save); t != NULL; t = strtok_r(NULL, ":", &save)) {
		char name[SNAP_NAME_MAX + 1], inner[POLICY_WHY];
		bool kw = false;

		for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++) {
			if (strcasecmp(t, keywords[i]) == 0) {
				snprintf(name, sizeof(name), "%s", keywords[i]);
				kw = true;
			}
		}
		if (!kw &&
		    policy_check_domain(t, true, name, sizeof(name), inner, sizeof(inner)) != 0)
			return policy_why(why, whylen,
			                  "bad match= name \"%.100s\": %s (or hostname, nexthop,"
			                  " dot-nexthop)",
			                  t, inner);
		if (policy_append(&e->match, name, ':') != 0)
			return policy_why(why, whylen, "out of memory");
	}
	return 0;
}

static bool policy_cipher_list_ok(const char *s)
{
	/* OpenSSL cipher-list characters (ciphers(1)): names, + - ! @ = . : , */
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	                 "_-+!@=.:") == strlen(s);
}

struct policy_parser {
	const char *file;
	const char *dir;
	struct pg_policy *out;
	char *err;
	size_t errlen;
};

static int policy_error(struct policy_parser *p, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int policy_error(struct policy_parser *p, unsigned line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	files_verror(p->err, p->errlen, p->file, line, fmt, ap);
	va_end(ap);
	return PG_ERROR;
}

/* Attributes seen once per entry (Postfix: "specified multiple times"). */
enum {
	A_PROTOCOLS = 1,
	A_CIPHERS = 2,
	A_EXCLUDE = 4,
	A_SERVERNAME = 8,
	A_TAFILE = 16,
	A_MODE = 32
};

/*
 * The trust anchors of tafile= path: its bundle in out->tafiles, read now
 * unless an earlier entry named the same file. *bundle = 1 + its index.
 */
static int policy_tafile(struct pg_policy *out, const char *path, uint32_t *bundle, char *why,
                         size_t whylen)
{
	struct trust_bundle b, *nb;
	char inner[POLICY_WHY];

	for (size_t i = 0; i < out->ntafiles; i++) {
		if (strcmp(out->tafiles[i].file, path) == 0) {
			*bundle = (uint32_t)i + 1;
			return 0;
		}
	}
	if (out->ntafiles >= UINT32_MAX - 1)
		return policy_why(why, whylen, "too many tafile= files");
	if (trust_read_pem(path, &b, inner, sizeof(inner)) != PG_OK)
		return policy_why(why, whylen, "tafile %s: %s", path, inner);
	nb = realloc(out->tafiles, (out->ntafiles + 1) * sizeof(*nb));
	if (nb == NULL) {
		trust_bundle_free(&b);
		return policy_why(why, whylen, "out of memory");
	}
	out->tafiles = nb;
	out->tafiles[out->ntafiles++] = b;
	*bundle = (uint32_t)out->ntafiles;
	return 0;
}

static int policy_attribute(struct policy_parser *p, struct policy_entry *e, const char *tok,
                            unsigned *seen, char *why, size_t whylen)
{
	static const struct {
		const char *name;
		unsigned bit;
	} once[] = {
	    {"protocols", A_PROTOCOLS},   {"ciphers", A_CIPHERS}, {"exclude", A_EXCLUDE},
	    {"servername", A_SERVERNAME}, {"tafile", A_TAFILE},   {"mode", A_MODE},
	};
	const char *eq = strchr(tok, '=');
	const char *lvl = policy_level_words[e->level];
	char name[32];
	const char *val;
	size_t nlen;

	if (tok[0] == '#')
		return policy_why(why, whylen,
		                  "\"%.60s\": a comment must start its own line (Postfix"
		                  " tables have no trailing comments)",
		                  tok);
	if (tok[0] == '{')
		return policy_why(why, whylen,
		                  "\"%.60s\": brace-quoted attributes are not supported", tok);
	if (eq == NULL || eq == tok)
		return policy_why(why, whylen, "\"%.60s\": expected NAME=VALUE", tok);
	nlen = (size_t)(eq - tok);
	if (nlen >= sizeof(name))
		nlen = sizeof(name) - 1;
	memcpy(name, tok, nlen);
	name[nlen] = '\0';
	for (char *c = name; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	val = eq + 1;
	if (e->level == SNAP_TLS_NONE)
		return policy_why(why, whylen,
		                  "attribute \"%.60s\" has no effect at level none (Postfix"
		                  " ignores it with a warning; Postern refuses it)",
		                  tok);
	if (*val == '\0')
		return policy_why(why, whylen, "attribute \"%s\" has an empty value", name);
	for (size_t i = 0; i < sizeof(once) / sizeof(once[0]); i++) {
		if (strcmp(name, once[i].name) != 0)
			continue;
		if (*seen & once[i].bit)
			return policy_why(why, whylen,
			                  "attribute \"%s\" is specified more than once", name);
		*seen |= once[i].bit;
	}
	if (strcmp(name, "match") == 0) {
		/* Postfix: match only at fingerprint, verify and secure */
		if (e->level == SNAP_TLS_FINGERPRINT)
			return policy_match_fingerprints(e, val, why, whylen);
		if (e->level == SNAP_TLS_VERIFY || e->level == SNAP_TLS_SECURE)
			return policy_match_names(e, val, why, whylen);
		return policy_why(why, whylen,
		                  "attribute \"match\" is invalid at level %s (fingerprint,"
		                  " verify and secure only)",
		                  lvl);
	}
	if (strcmp(name, "protocols") == 0) {
		char inner[POLICY_WHY];

		if (policy_parse_protocols(val, ":", &e->protocols, inner, sizeof(inner)) != 0)
			return policy_why(why, whylen, "bad protocols=%.100s: %s", val, inner);
		return 0;
	}
	if (strcmp(name, "ciphers") == 0) {
		char inner[POLICY_WHY];

		if (policy_parse_grade(val, &e->ciphers, inner, sizeof(inner)) != 0)
			return policy_why(why, whylen, "bad ciphers=%.60s: %s", val, inner);
		return 0;
	}
	if (strcmp(name, "exclude") == 0) {
		if (!policy_cipher_list_ok(val))
			return policy_why(why, whylen,
			                  "bad exclude=%.100s: not an OpenSSL cipher list", val);
		free(e->exclude);
		e->exclude = strdup(val);
		return e->exclude != NULL ? 0 : policy_why(why, whylen, "out of memory");
	}
	if (strcmp(name, "servername") == 0) {
		char host[SNAP_NAME_MAX + 1], inner[POLICY_WHY];

		/* Postfix 3.4: "hostname" means the name of the MX host */
		if (strcasecmp(val, "hostname") == 0) {
			e->flags |= SNAP_TLS_F_SNI_HOSTNAME;
			return 0;
		}
		if (policy_check_domain(val, false, host, sizeof(host), inner, sizeof(inner)) != 0)
			return policy_why(why, whylen, "bad servername=%.100s: %s", val, inner);
		free(e->servername);
		e->servername = strdup(host);
		return e->servername != NULL ? 0 : policy_why(why, whylen, "out of memory");
	}
	if (strcmp(name, "tafile") == 0) {
		char path[CONF_PATH_MAX * 2];
		FILE *f;

		/* Postfix TLS_MUST_PKIX: trust anchors only where PKIX is used */
		if (e->level != SNAP_TLS_VERIFY && e->level != SNAP_TLS_SECURE)
			return policy_why(why, whylen,
			                  "attribute \"tafile\" is invalid at level %s (verify"
			                  " and secure only)",
			                  lvl);
		if (val[0] == '/')
			snprintf(path, sizeof(path), "%s", val);
		else
			snprintf(path, sizeof(path), "%s/%s", p->dir, val);
		f = fopen(path, "r");
		if (f == NULL)
			return policy_why(why, whylen, "tafile %s: cannot read: %s", path,
			                  strerror(errno));
		fclose(f);
		if (policy_tafile(p->out, path, &e->tafile_bundle, why, whylen) != 0)
			return PG_ERROR;
		free(e->tafile);
		e->tafile = strdup(path);
		return e->tafile != NULL ? 0 : policy_why(why, whylen, "out of memory");
	}
	if (strcmp(name, "mode") == 0) {
		if (strcasecmp(val, "testing") != 0)
			return policy_why(why, whylen,
			                  "bad mode=%.60s: the only mode is \"testing\"", val);
		if (e->level < SNAP_TLS_ENCRYPT)
			return policy_why(why, whylen,
			                  "mode=testing has no effect at level %s: only levels"
			                  " that defer mail (encrypt, fingerprint, verify, secure)"
			                  " can be tested",
			                  lvl);
		e->flags |= SNAP_TLS_F_TESTING;
		return 0;
	}
	return policy_why(why, whylen,
	                  "unknown attribute \"%s\" (match, protocols, ciphers, exclude,"
	                  " servername, tafile, mode)",
	                  name);
}

static void policy_entry_free(struct policy_entry *e)
{
	free(e->match);
	free(e->exclude);
	free(e->servername);
	free(e->tafile);
	free(e->text);
	memset(e, 0, sizeof(*e));
}

/* Token separators of a policy value: Postfix CHARS_COMMA_SP. */
#define POLICY_SEP ", \t"

static int policy_logical_line(char *line, unsigned lineno, void *owner)
{
	struct policy_parser *p = owner;
	struct policy_entry e = {0};
	char why[POLICY_WHY], *save = NULL, *keytok, *tok;
	unsigned seen = 0;
	const struct policy_entry *dup;

	e.line = lineno;
	e.text = strdup(line);
	if (e.text == NULL)
		return policy_error(p, lineno, "out of memory");
	keytok = strtok_r(line, " \t", &save);
	if (policy_parse_key(keytok, e.key, sizeof(e.key), &e.kind, why, sizeof(why)) != 0) {
		policy_entry_free(&e);
		return policy_error(p, lineno, "bad key \"%.100s\": %s", keytok, why);
	}
	dup = policy_find(p->out, e.key);
	if (dup != NULL) {
		unsigned first = dup->line;

		policy_entry_free(&e);
		return policy_error(p, lineno, "duplicate key \"%s\" (first at line %u)", keytok,
		                    first);
	}
	tok = strtok_r(NULL, POLICY_SEP, &save);
	if (tok == NULL) {
		policy_entry_free(&e);
		return policy_error(p, lineno, "missing security level after \"%.100s\"", keytok);
	}
	if (policy_parse_level(tok, &e.level, why, sizeof(why)) != 0) {
		policy_entry_free(&e);
		return policy_error(p, lineno, "%s", why);
	}
	while ((tok = strtok_r(NULL, POLICY_SEP, &save)) != NULL) {
		if (policy_attribute(p, &e, tok, &seen, why, sizeof(why)) != 0) {
			policy_entry_free(&e);
			return policy_error(p, lineno, "%s", why);
		}
	}
	/* Postfix smtp_tls_policy.c: "configured at fingerprint security level,
	 * but with no fingerprints to match" (Postern has no global list) */
	if (e.level == SNAP_TLS_FINGERPRINT && e.match == NULL) {
		policy_entry_free(&e);
		return policy_error(p, lineno,
		                    "level fingerprint needs at least one"
		                    " match=FINGERPRINT");
	}
	if (p->out->n == p->out->cap) {
		size_t ncap = p->out->cap ? p->out->cap * 2 : 16;
		struct policy_entry *np = realloc(p->out->entries, ncap * sizeof(*np));

		if (np == NULL) {
			policy_entry_free(&e);
			return policy_error(p, lineno, "out of memory");
		}
		p->out->entries = np;
		p->out->cap = ncap;
	}
	p->out->entries[p->out->n++] = e;
	return PG_OK;
}

int policy_table_lines(const char *file, const char *text, size_t len, policy_line_fn fn, void *arg,
                       char *err, size_t errlen)
{
	char *logical = malloc(POLICY_LINE_MAX);
	size_t llen = 0, pos = 0;
	unsigned lline = 0, lineno = 0;
	int rc = PG_OK;

	if (logical == NULL) {
		snprintf(err, errlen, "%s: out of memory", file);
		return PG_ERROR;
	}
	while (pos < len && rc == PG_OK) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t n = nl != NULL ? (size_t)(nl - (text + pos)) : len - pos;
		const char *phys = text + pos;
		size_t skip = 0;

		lineno++;
		pos += n + (nl != NULL);
		if (n > 0 && phys[n - 1] == '\r')
			n--;
		if (memchr(phys, '\0', n) != NULL) {
			snprintf(err, errlen, "%s:%u: NUL byte in line", file, lineno);
			rc = PG_ERROR;
			break;
		}
		while (skip < n && isspace((unsigned char)phys[skip]))
			skip++;
		if (skip == n || phys[skip] == '#')
			continue;
		if (skip > 0) {
			if (lline == 0) {
				snprintf(err, errlen,
				         "%s:%u: continuation line (starts with whitespace)"
				         " without a preceding entry",
				         file, lineno);
				rc = PG_ERROR;
				break;
			}
			if (llen + 1 + (n - skip) >= POLICY_LINE_MAX) {
				snprintf(err, errlen, "%s:%u: logical line longer than %d bytes",
				         file, lline, POLICY_LINE_MAX);
				rc = PG_ERROR;
				break;
			}
			logical[llen++] = ' ';
			memcpy(logical + llen, phys + skip, n - skip);
			llen += n - skip;
			continue;
		}
		if (lline != 0) {
			while (llen > 0 && isspace((unsigned char)logical[llen - 1]))
				llen--;
			logical[llen] = '\0';
			rc = fn(logical, lline, arg);
			if (rc != PG_OK)
				break;
		}
		if (n >= POLICY_LINE_MAX) {
			snprintf(err, errlen, "%s:%u: line longer than %d bytes", file, lineno,
			         POLICY_LINE_MAX);
			rc = PG_ERROR;
			break;
		}
		memcpy(logical, phys, n);
		llen = n;
		lline = lineno;
	}
	if (rc == PG_OK && lline != 0) {
		while (llen > 0 && isspace((unsigned char)logical[llen - 1]))
			llen--;
		logical[llen] = '\0';
		rc = fn(logical, lline, arg);
	}
	free(logical);
	return rc;
}

void policy_free(struct pg_policy *p)
{
	for (size_t i = 0; i < p->n; i++)
		policy_entry_free(&p->entries[i]);
	free(p->entries);
	p->entries = NULL;
	p->n = p->cap = 0;
	for (size_t i = 0; i < p->ntafiles; i++)
		trust_bundle_free(&p->tafiles[i]);
	free(p->tafiles);
	p->tafiles = NULL;
	p->ntafiles = 0;
}

const struct policy_entry *policy_find(const struct pg_policy *p, const char *key)
{
	/* load-time only (duplicates, show): a linear scan is fine */
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->entries[i].key, key) == 0)
			return &p->entries[i];
	return NULL;
}

int policy_parse_text(const char *dir, const char *text, size_t len, struct pg_policy *out,
                      char *err, size_t errlen)
{
	struct policy_parser p = {.dir = dir, .out = out, .err = err, .errlen = errlen};
	int rc;

	memset(out, 0, sizeof(*out));
	snprintf(out->path, sizeof(out->path), "%s/%s", dir, POLICY_FILE_NAME);
	p.file = out->path;
	rc = policy_table_lines(p.file, text, len, policy_logical_line, &p, err, errlen);
	if (rc != PG_OK) {
		policy_free(out);
		return PG_ERROR;
	}
	/* every string present, so the snapshot builder needs no NULL checks */
	for (size_t i = 0; i < out->n; i++) {
		struct policy_entry *e = &out->entries[i];
		char **fields[] = {&e->match, &e->exclude, &e->servername, &e->tafile};

		for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
			if (*fields[f] == NULL && (*fields[f] = strdup("")) == NULL) {
				policy_free(out);
				snprintf(err, errlen, "%s: out of memory", p.file);
				return PG_ERROR;
			}
		}
	}
	return PG_OK;
}

int policy_read_file(const char *path, size_t max, char **text, size_t *len, char *err,
		     size_t errlen)
{
	char why[256];
	int rc = files_read(path, max, true, text, len, why, sizeof(why));

	if (rc == PG_ERROR)
		snprintf(err, errlen, "%s: %s", path, why);
	return rc;
}

int policy_load(const char *dir, struct pg_policy *out, char *err, size_t errlen)
{
	char path[CONF_PATH_MAX + 32];
	char *text = NULL;
	size_t len = 0;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, POLICY_FILE_NAME);
	rc = policy_read_file(path, POLICY_FILE_MAX, &text, &len, err, errlen);
	if (rc == PG_ERROR) {
		memset(out, 0, sizeof(*out));
		return PG_ERROR;
	}
	/* absent: an empty table, the default level for every destination */
	rc = policy_parse_text(dir, text != NULL ? text : "", len, out, err, errlen);
	free(text);
	return rc;
}

/* ---- policy set / del ---- */

/* The normalized key of an entry line, or "" for a line that has none. */
static void policy_line_key(const struct policy_table_kind *k, const char *line, size_t n,
                            char *key, size_t keylen)
{
	char tok[SNAP_NAME_MAX + 16], why[POLICY_WHY];
	size_t len = 0;

	key[0] = '\0';
	while (len < n && !isspace((unsigned char)line[len]))
		len++;
	if (len == 0 || len >= sizeof(tok))
		return;
	memcpy(tok, line, len);
	tok[len] = '\0';
	if (k->parse_key(tok, key, keylen, why, sizeof(why)) != 0)
		key[0] = '\0';
}

int policy_edit_table(const struct policy_table_kind *k, const char *dir, const char *old,
                      size_t oldlen, const char *key_in, const char *args, char **out,
                      size_t *outlen, char *err, size_t errlen)
{
	char key[SNAP_NAME_MAX + 1], why[POLICY_WHY], path[CONF_PATH_MAX + 32];
	size_t cap = oldlen + strlen(key_in) + (args ? strlen(args) : 0) + 8, o = 0, pos = 0;
	char *buf;
	bool found = false, skipping = false;

	snprintf(path, sizeof(path), "%s/%s", dir, k->file_name);
	if (k->parse_key(key_in, key, sizeof(key), why, sizeof(why)) != 0) {
		snprintf(err, errlen, "bad key \"%.100s\": %s", key_in, why);
		return PG_ERROR;
	}
	if (args != NULL && strpbrk(args, "\n\r") != NULL) {
		snprintf(err, errlen, "the policy must be one line");
		return PG_ERROR;
	}
	buf = malloc(cap + 1);
	if (buf == NULL) {
		snprintf(err, errlen, "out of memory");
		return PG_ERROR;
	}
	while (pos < oldlen) {
		const char *line = old + pos;
		const char *nl = memchr(line, '\n', oldlen - pos);
		size_t n = nl != NULL ? (size_t)(nl - line) + 1 : oldlen - pos;
		size_t skip = 0;
		bool blank_or_comment, continuation;
		char lkey[SNAP_NAME_MAX + 1];

		pos += n;
		while (skip < n && (line[skip] == ' ' || line[skip] == '\t'))
			skip++;
		blank_or_comment =
		    skip == n || line[skip] == '\n' || line[skip] == '\r' || line[skip] == '#';
		continuation = !blank_or_comment && skip > 0;
		if (continuation && skipping)
			continue; /* the rest of the entry being replaced or removed */
		if (!blank_or_comment && !continuation) {
			skipping = false;
			policy_line_key(k, line, n, lkey, sizeof(lkey));
			if (!found && strcmp(lkey, key) == 0) {
				found = true;
				skipping = true;
				if (args != NULL)
					o += (size_t)snprintf(buf + o, cap + 1 - o, "%s %s\n",
					                      key_in, args);
				continue;
			}
		}
		memcpy(buf + o, line, n);
		o += n;
	}
	if (!found && args == NULL) {
		free(buf);
		snprintf(err, errlen, "%s: no entry for \"%s\"", path, key);
		return PG_DECLINED;
	}
	if (!found) {
		if (o > 0 && buf[o - 1] != '\n')
			buf[o++] = '\n';
		o += (size_t)snprintf(buf + o, cap + 1 - o, "%s %s\n", key_in, args);
	}
	buf[o] = '\0';
	/* the whole new file must be valid before anything is replaced */
	if (k->validate(dir, buf, o, err, errlen) != PG_OK) {
		free(buf);
		return PG_ERROR;
	}
	*out = buf;
	*outlen = o;
	return PG_OK;
}

static int policy_key_only(const char *in, char *out, size_t outlen, char *why, size_t whylen)
{
	uint32_t kind;

	return policy_parse_key(in, out, outlen, &kind, why, whylen);
}

static int policy_validate(const char *dir, const char *text, size_t len, char *err, size_t errlen)
{
	struct pg_policy check;

	if (policy_parse_text(dir, text, len, &check, err, errlen) != PG_OK)
		return PG_ERROR;
	policy_free(&check);
	return PG_OK;
}

static const struct policy_table_kind policy_tls_kind = {
    .file_name = POLICY_FILE_NAME,
    .parse_key = policy_key_only,
    .validate = policy_validate,
};

int policy_edit(const char *dir, const char *old, size_t oldlen, const char *key_in,
                const char *args, char **out, size_t *outlen, char *err, size_t errlen)
{
	return policy_edit_table(&policy_tls_kind, dir, old, oldlen, key_in, args, out, outlen, err,
	                         errlen);
}

int policy_write_file(const char *path, const char *text, size_t len, char *err, size_t errlen)
{
	char tmp[CONF_PATH_MAX + 64], dir[CONF_PATH_MAX + 32];
	const char *slash = strrchr(path, '/');
	struct stat st;
	mode_t mode = 0644;
	size_t off = 0;
	int fd, dfd;

	if (slash == NULL) {
		snprintf(dir, sizeof(dir), ".");
	} else {
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
		if (dir[0] == '\0')
			snprintf(dir, sizeof(dir), "/");
	}
	if (stat(path, &st) == 0)
		mode = st.st_mode & 07777;
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp.%d", dir, slash ? slash + 1 : path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "%s: cannot create: %s", tmp, strerror(errno));
		return PG_ERROR;
	}
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		off += (size_t)w;
	}
	if (fchmod(fd, mode) != 0 || fsync(fd) != 0)
		goto fail;
	if (close(fd) != 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0)
		goto fail;
	/* the rename itself must reach the disk (the directory entry) */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) != 0) {
		snprintf(err, errlen, "%s: fsync of the directory: %s", dir, strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return PG_ERROR;
	}
	close(dfd);
	return PG_OK;
fail:
	snprintf(err, errlen, "%s: cannot write: %s", tmp, strerror(errno));
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return PG_ERROR;
}
