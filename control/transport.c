/*
 * transport.c - reader and validator of CONFIG_DIR/transport (see
 * transport.h). Keys follow transport(5) with parent_domain_matches_
 * subdomains not listing transport_maps (the Postfix default): "domain"
 * matches that domain only, ".domain" its sub-domains, "*" everything else.
 * Values are "smtp:NEXTHOP[, NEXTHOP...]"; other transports (local, lmtp,
 * error, discard, ...) do not exist in Postern and are refused by name.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"
#include "policy.h"
#include "policy_lookup.h"
#include "result.h"
#include "transport.h"

#define TRANSPORT_WHY 512

static int transport_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int transport_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}

int transport_parse_nexthop(const char *in, struct transport_nexthop *nh, char *why, size_t whylen)
{
	char host[SNAP_NAME_MAX + 1], inner[TRANSPORT_WHY];
	const char *hs = in, *he, *ps = NULL;
	struct in_addr a;
	bool bracket = in[0] == '[';
	unsigned long port = POLICY_SMTP_PORT;

	memset(nh, 0, sizeof(*nh));
	if (!bracket && strchr(in, ':') != strrchr(in, ':'))
		return transport_why(why, whylen,
		                     "next hop \"%.100s\": an IPv6 address must be in"
		                     " brackets: [ipv6:ADDRESS] or [ipv6:ADDRESS]:port",
		                     in);
	if (bracket) {
		hs = in + 1;
		he = strchr(hs, ']');
		if (he == NULL)
			return transport_why(why, whylen, "next hop \"%.100s\": missing ']'", in);
		if (he[1] == ':')
			ps = he + 2;
		else if (he[1] != '\0')
			return transport_why(why, whylen,
			                     "next hop \"%.100s\": expected [host] or"
			                     " [host]:port",
			                     in);
	} else {
		he = strchr(in, ':');
		if (he != NULL)
			ps = he + 1;
		else
			he = in + strlen(in);
	}
	if ((size_t)(he - hs) >= sizeof(host))
		return transport_why(why, whylen, "next hop \"%.40s...\": host name too long", in);
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	if (strncasecmp(host, "ipv6:", 5) == 0 || strchr(host, ':') != NULL) {
		/* RFC 5321 §4.1.3 IPv6-address-literal "[IPv6:...]"; Postfix takes it bare too */
		const char *a6 = strncasecmp(host, "ipv6:", 5) == 0 ? host + 5 : host;
		static const uint8_t zero6[16], loop6[16] = {[15] = 1};
		uint8_t b6[16];

		if (!bracket)
			return transport_why(why, whylen,
			                     "next hop \"%.100s\": an IPv6 address must be in"
			                     " brackets: [ipv6:ADDRESS] or [ipv6:ADDRESS]:port",
			                     in);
		if (inet_pton(AF_INET6, a6, b6) != 1)
			return transport_why(why, whylen,
			                     "next hop \"%.100s\": \"%s\" is not an IPv6 address",
			                     in, a6);
		if (b6[0] == 0xff || (b6[0] == 0xfe && (b6[1] & 0xc0) == 0x80) ||
		    memcmp(b6, zero6, 16) == 0 || memcmp(b6, loop6, 16) == 0)
			return transport_why(why, whylen,
			                     "next hop \"%.100s\": not a routable unicast address"
			                     " (multicast, link-local, :: or ::1)",
			                     in);
		inet_ntop(AF_INET6, b6, nh->host, sizeof(nh->host));
		nh->flags |= SNAP_NH_F_IP6 | SNAP_NH_F_NO_MX;
		if (ps != NULL) {
			char *end;

			errno = 0;
			port = isdigit((unsigned char)*ps) ? strtoul(ps, &end, 10) : 0;
			if (port == 0 || port > 65535 || *end != '\0' || errno != 0)
				return transport_why(why, whylen,
				                     "next hop \"%.100s\": port must be a number"
				                     " 1..65535",
				                     in);
		}
		nh->port = (uint16_t)port;
		/* the destination as Postfix names it: the literal with its tag */
		if (port != POLICY_SMTP_PORT)
			snprintf(nh->dest, sizeof(nh->dest), "[ipv6:%.46s]:%lu", nh->host, port);
		else
			snprintf(nh->dest, sizeof(nh->dest), "[ipv6:%.46s]", nh->host);
		return 0;
	}
	if (ps != NULL) {
		char *end;

		errno = 0;
		port = isdigit((unsigned char)*ps) ? strtoul(ps, &end, 10) : 0;
		if (port == 0 || port > 65535 || *end != '\0' || errno != 0)
			return transport_why(why, whylen,
			                     "next hop \"%.100s\": port must be a number"
			                     " 1..65535",
			                     in);
	}
	if (inet_pton(AF_INET, host, &a) == 1) {
		/* Postfix: a bare address would be looked up as a host name */
		if (!bracket)
			return transport_why(why, whylen,
			                     "next hop \"%.100s\": an IP address must be in"
			                     " brackets: [%s]",
			                     in, host);
		snprintf(nh->host, sizeof(nh->host), "%s", host);
		nh->flags |= SNAP_NH_F_IP;
		nh->addr = a.s_addr;
	} else {
		if (host[0] != '\0' && strspn(host, "0123456789.") == strlen(host))
			return transport_why(why, whylen,
			                     "next hop \"%.100s\": \"%s\" is not an IPv4 address",
			                     in, host);
		if (policy_check_domain(host, false, nh->host, sizeof(nh->host), inner,
		                        sizeof(inner)) != 0)
			return transport_why(why, whylen, "next hop \"%.100s\": %s", in, inner);
	}
	if (bracket)
		nh->flags |= SNAP_NH_F_NO_MX;
	nh->port = (uint16_t)port;
	/* the Postfix next-hop destination: brackets kept, default port omitted */
	if (strlen(nh->host) > 253)
		return transport_why(why, whylen, "next hop \"%.40s...\": too long", in);
	if (bracket && port != POLICY_SMTP_PORT)
		snprintf(nh->dest, sizeof(nh->dest), "[%.253s]:%lu", nh->host, port);
	else if (bracket)
		snprintf(nh->dest, sizeof(nh->dest), "[%.253s]", nh->host);
	else if (port != POLICY_SMTP_PORT)
		snprintf(nh->dest, sizeof(nh->dest), "%.253s:%lu", nh->host, port);
	else
		snprintf(nh->dest, sizeof(nh->dest), "%.253s", nh->host);
	return 0;
}

struct transport_parser {
	const char *file;
	struct pg_transport *out;
	char *err;
	size_t errlen;
};

static int transport_error(struct transport_parser *p, unsigned line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int transport_error(struct transport_parser *p, unsigned line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	files_verror(p->err, p->errlen, p->file, line, fmt, ap);
	va_end(ap);
	return PG_ERROR;
}

static void transport_entry_free(struct transport_entry *e)
{
	free(e->nexthops);
	free(e->text);
	memset(e, 0, sizeof(*e));
}

static int transport_key(const char *in, struct transport_entry *e, char *why, size_t whylen)
{
	if (strcmp(in, "*") == 0) {
		snprintf(e->key, sizeof(e->key), "*");
		e->kind = SNAP_NAME_WILDCARD;
		return 0;
	}
	if (strchr(in, '@') != NULL)
		return transport_why(why, whylen,
		                     "address keys (user@domain) are not supported: keys are"
		                     " domains, .domains or *");
	if (in[0] == '[')
		return transport_why(why, whylen,
		                     "keys are recipient domains, .domains or *, not next"
		                     " hops");
	e->kind = in[0] == '.' ? SNAP_NAME_PARENT : SNAP_NAME_DOMAIN;
	return policy_check_domain(in, true, e->key, sizeof(e->key), why, whylen);
}

static int transport_logical_line(char *line, unsigned lineno, void *owner)
{
	struct transport_parser *p = owner;
	struct transport_entry e = {0};
	char why[TRANSPORT_WHY], *save = NULL, *keytok, *value, *colon, *tok;
	struct transport_nexthop nhs[TRANSPORT_MAX_NEXTHOPS];

	e.line = lineno;
	e.text = strdup(line);
	if (e.text == NULL)
		return transport_error(p, lineno, "out of memory");
	keytok = strtok_r(line, " \t", &save);
	if (transport_key(keytok, &e, why, sizeof(why)) != 0) {
		transport_entry_free(&e);
		return transport_error(p, lineno, "bad key \"%.100s\": %s", keytok, why);
	}
	for (size_t i = 0; i < p->out->n; i++) {
		if (strcmp(p->out->entries[i].key, e.key) == 0) {
			unsigned first = p->out->entries[i].line;

			transport_entry_free(&e);
			return transport_error(p, lineno, "duplicate key \"%s\" (first at line %u)",
			                       keytok, first);
		}
	}
	value = save;
	while (value != NULL && isspace((unsigned char)*value))
		value++;
	if (value == NULL || *value == '\0') {
		transport_entry_free(&e);
		return transport_error(p, lineno, "missing transport:nexthop after \"%.100s\"",
		                       keytok);
	}
	colon = strchr(value, ':');
	if (colon != NULL)
		*colon = '\0';
	/* Postfix: an empty transport field means the default, smtp */
	if (value[strcspn(value, " \t,")] != '\0' && colon == NULL) {
		transport_entry_free(&e);
		return transport_error(p, lineno, "\"%.100s\": expected smtp:NEXTHOP[, NEXTHOP...]",
		                       value);
	}
	if (value[0] != '\0' && strcmp(value, "smtp") != 0) {
		transport_entry_free(&e);
		if (value[0] == '[' || strchr(value, '.') != NULL)
			return transport_error(p, lineno,
			                       "\"%.100s\": a next hop needs the transport"
			                       " first: smtp:NEXTHOP",
			                       value);
		return transport_error(p, lineno,
		                       "transport \"%.40s\" is not supported (Postern delivers"
		                       " with smtp only)",
		                       value);
	}
	if (colon != NULL) {
		char *rest = colon + 1, *save2 = NULL;

		for (tok = strtok_r(rest, ", \t", &save2); tok != NULL;
		     tok = strtok_r(NULL, ", \t", &save2)) {
			if (e.nnexthops == TRANSPORT_MAX_NEXTHOPS) {
				transport_entry_free(&e);
				return transport_error(p, lineno, "more than %d next hops",
				                       TRANSPORT_MAX_NEXTHOPS);
			}
			if (strncmp(tok, "smtp:", 5) == 0) {
				transport_entry_free(&e);
				return transport_error(p, lineno,
				                       "\"%.100s\": write the transport once:"
				                       " smtp:NEXTHOP, NEXTHOP",
				                       tok);
			}
			if (transport_parse_nexthop(tok, &nhs[e.nnexthops], why, sizeof(why)) !=
			    0) {
				transport_entry_free(&e);
				return transport_error(p, lineno, "%s", why);
			}
			e.nnexthops++;
		}
	}
	if (e.nnexthops > 0) {
		e.nexthops = malloc(e.nnexthops * sizeof(*e.nexthops));
		if (e.nexthops == NULL) {
			transport_entry_free(&e);
			return transport_error(p, lineno, "out of memory");
		}
		memcpy(e.nexthops, nhs, e.nnexthops * sizeof(*e.nexthops));
	}
	if (p->out->n == p->out->cap) {
		size_t ncap = p->out->cap ? p->out->cap * 2 : 16;
		struct transport_entry *np = realloc(p->out->entries, ncap * sizeof(*np));

		if (np == NULL) {
			transport_entry_free(&e);
			return transport_error(p, lineno, "out of memory");
		}
		p->out->entries = np;
		p->out->cap = ncap;
	}
	p->out->entries[p->out->n++] = e;
	return PG_OK;
}

int transport_add_relayhost(struct pg_transport *t, const char *relayhost, char *why,
                            size_t whylen)
{
	struct transport_entry e = {0};

	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->entries[i].key, "*") == 0)
			return PG_DECLINED;
	snprintf(e.key, sizeof(e.key), "*");
	e.kind = SNAP_NAME_WILDCARD;
	e.nnexthops = 1;
	e.nexthops = calloc(1, sizeof(*e.nexthops));
	if (e.nexthops == NULL || asprintf(&e.text, "*\tsmtp:%s\t(relayhost in postern.conf)",
	                                   relayhost) < 0) {
		free(e.nexthops);
		transport_why(why, whylen, "out of memory");
		return PG_ERROR;
	}
	if (transport_parse_nexthop(relayhost, e.nexthops, why, whylen) != 0) {
		transport_entry_free(&e);
		return PG_ERROR;
	}
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 16;
		struct transport_entry *np = realloc(t->entries, ncap * sizeof(*np));

		if (np == NULL) {
			transport_entry_free(&e);
			transport_why(why, whylen, "out of memory");
			return PG_ERROR;
		}
		t->entries = np;
		t->cap = ncap;
	}
	t->entries[t->n++] = e;
	return PG_OK;
}

void transport_free(struct pg_transport *t)
{
	for (size_t i = 0; i < t->n; i++)
		transport_entry_free(&t->entries[i]);
	free(t->entries);
	t->entries = NULL;
	t->n = t->cap = 0;
}

int transport_parse_text(const char *dir, const char *text, size_t len, struct pg_transport *out,
                         char *err, size_t errlen)
{
	struct transport_parser p = {.out = out, .err = err, .errlen = errlen};

	memset(out, 0, sizeof(*out));
	snprintf(out->path, sizeof(out->path), "%s/%s", dir, TRANSPORT_FILE_NAME);
	p.file = out->path;
	if (policy_table_lines(p.file, text, len, transport_logical_line, &p, err, errlen) !=
	    PG_OK) {
		transport_free(out);
		return PG_ERROR;
	}
	return PG_OK;
}

int transport_load(const char *dir, struct pg_transport *out, char *err, size_t errlen)
{
	char path[CONF_PATH_MAX + 32];
	char *text = NULL;
	size_t len = 0;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", dir, TRANSPORT_FILE_NAME);
	rc = policy_read_file(path, TRANSPORT_FILE_MAX, &text, &len, err, errlen);
	if (rc == PG_ERROR) {
		memset(out, 0, sizeof(*out));
		return PG_ERROR;
	}
	rc = transport_parse_text(dir, text != NULL ? text : "", len, out, err, errlen);
	free(text);
	return rc;
}
