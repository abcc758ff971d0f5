/*
 * conf_ipv6.c - the IPv6 elements of postern.conf's address keys (see
 * conf_ipv6.h): port prefixes, gateways (a link-local one with its
 * "%portN" zone, RFC 4007 §11), static routes, and the second pass that
 * checks ports against each other and compiles the IPv6 route table the
 * dataplane scans first-match, longest prefix first.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_ipv6.h"
#include "result.h"

#define CONF6_MIN_MTU 1280 /* RFC 8200 §5 */

static int conf6_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int conf6_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}

static void conf6_fmt(const uint8_t a[16], char *buf, size_t len)
{
	inet_ntop(AF_INET6, a, buf, (socklen_t)len);
}

static bool conf6_is_linklocal(const uint8_t a[16])
{
	return a[0] == 0xfe && (a[1] & 0xc0) == 0x80;
}

static bool conf6_is_zero(const uint8_t a[16])
{
	static const uint8_t zero[16];

	return memcmp(a, zero, 16) == 0;
}

/* out = the first len bits of a, the rest zero. */
void conf6_mask(const uint8_t a[16], unsigned len, uint8_t out[16])
{
	memset(out, 0, 16);
	memcpy(out, a, len / 8);
	if (len % 8 != 0)
		out[len / 8] = a[len / 8] & (uint8_t)(0xff00u >> (len % 8));
}

static bool conf6_in_prefix(const uint8_t a[16], const uint8_t p[16], unsigned len)
{
	uint8_t x[16], y[16];

	conf6_mask(a, len, x);
	conf6_mask(p, len, y);
	return memcmp(x, y, 16) == 0;
}

/* Unicast and usable as a host or gateway (RFC 4291 §2.4, §2.5). */
static const char *conf6_not_unicast(const uint8_t a[16])
{
	static const uint8_t loopback[16] = {[15] = 1};
	static const uint8_t mapped[12] = {[10] = 0xff, [11] = 0xff};

	if (conf6_is_zero(a))
		return "not a unicast address (:: is the unspecified address)";
	if (memcmp(a, loopback, 16) == 0)
		return "not a unicast address (::1 is loopback)";
	if (a[0] == 0xff)
		return "not a unicast address (multicast)";
	if (memcmp(a, mapped, 12) == 0)
		return "an IPv4-mapped address: write IPv4 addresses as such";
	return NULL;
}

int conf6_parse_addr(const char *s, uint8_t addr[16], uint8_t *zone, char *why, size_t whylen)
{
	char text[INET6_ADDRSTRLEN + 8];
	const char *pct = strchr(s, '%');
	size_t n = pct != NULL ? (size_t)(pct - s) : strlen(s);
	const char *bad;

	if (n >= sizeof(text))
		return conf6_why(why, whylen, "\"%.60s\" is not an IPv6 address", s);
	memcpy(text, s, n);
	text[n] = '\0';
	if (inet_pton(AF_INET6, text, addr) != 1)
		return conf6_why(why, whylen, "\"%s\" is not an IPv6 address", text);
	if ((bad = conf6_not_unicast(addr)) != NULL)
		return conf6_why(why, whylen, "%s: %s", text, bad);
	if (zone != NULL)
		*zone = CONF6_NO_PORT;
	if (pct == NULL)
		return 0;
	/* RFC 4007 §11: ADDRESS%ZONE; the zones here are the ports, "port0".."port7". */
	if (zone == NULL)
		return conf6_why(why, whylen, "\"%s\": a zone (%%portN) is not allowed here", s);
	if (strncmp(pct + 1, "port", 4) != 0 || !isdigit((unsigned char)pct[5]) || pct[6] != '\0' ||
	    pct[5] - '0' >= SNAP_MAX_PORTS)
		return conf6_why(why, whylen,
		                 "\"%s\": the zone must name a port, %%port0..%%port%d", s,
		                 SNAP_MAX_PORTS - 1);
	*zone = (uint8_t)(pct[5] - '0');
	return 0;
}

/* "ADDRESS/LEN" with LEN in 0..128. */
static int conf6_parse_prefix(const char *s, uint8_t addr[16], uint8_t *len, char *why,
                              size_t whylen)
{
	char text[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(s, '/');
	const char *d;

	if (slash == NULL || (size_t)(slash - s) >= sizeof(text))
		return conf6_why(why, whylen, "expected IPv6/prefix, e.g. 2001:db8:18::1/64");
	memcpy(text, s, (size_t)(slash - s));
	text[slash - s] = '\0';
	if (strchr(text, '%') != NULL)
		return conf6_why(why, whylen, "\"%s\": a zone (%%portN) is not allowed here", text);
	if (inet_pton(AF_INET6, text, addr) != 1)
		return conf6_why(why, whylen, "\"%s\" is not an IPv6 address", text);
	d = slash + 1;
	if (*d == '\0' || strlen(d) > 3 || strspn(d, "0123456789") != strlen(d) || atoi(d) > 128)
		return conf6_why(why, whylen, "IPv6 prefix length must be 0..128");
	*len = (uint8_t)atoi(d);
	return 0;
}

int conf6_network(const char *elem, bool relay, struct pg_conf_cidr *n, char *why, size_t whylen)
{
	char text[INET6_ADDRSTRLEN + 8], inner[160], fix[INET6_ADDRSTRLEN];
	const char *close = strchr(elem, ']');
	const char *rest;
	uint8_t masked[16];
	size_t alen;

	memset(n, 0, sizeof(*n));
	n->v6 = true;
	n->len = 128;
	if (elem[0] == '[') {
		if (close == NULL)
			return conf6_why(why, whylen, "\"%s\": missing ']'", elem);
		alen = (size_t)(close - elem - 1);
		rest = close + 1;
		if (alen >= sizeof(text))
			return conf6_why(why, whylen, "\"%.60s\" is not an IPv6 network", elem);
		memcpy(text, elem + 1, alen);
		text[alen] = '\0';
		if (*rest != '\0' && *rest != '/')
			return conf6_why(why, whylen,
			                 "\"%s\": expected [IPv6] or [IPv6]/len, e.g."
			                 " [2001:db8::]/32",
			                 elem);
		if (snprintf(inner, sizeof(inner), "%s%s", text, *rest == '/' ? rest : "/128") >=
		    (int)sizeof(inner))
			return conf6_why(why, whylen, "\"%.60s\" is not an IPv6 network", elem);
	} else if (close != NULL) {
		return conf6_why(why, whylen, "\"%s\": ']' without '['", elem);
	} else if (snprintf(inner, sizeof(inner), "%s%s", elem,
	                    strchr(elem, '/') != NULL ? "" : "/128") >= (int)sizeof(inner)) {
		return conf6_why(why, whylen, "\"%.60s\" is not an IPv6 network", elem);
	}
	if (conf6_parse_prefix(inner, n->addr6, &n->len, text, sizeof(text)) != 0)
		return conf6_why(why, whylen, "\"%s\": %s", elem, text);
	if (n->addr6[0] == 0xff)
		return conf6_why(why, whylen, "\"%s\": a multicast prefix", elem);
	conf6_mask(n->addr6, n->len, masked);
	if (memcmp(masked, n->addr6, 16) != 0) {
		conf6_fmt(masked, fix, sizeof(fix));
		return conf6_why(why, whylen,
		                 "\"%s\": host bits are not zero (did you mean [%s]/%u?)", elem,
		                 fix, n->len);
	}
	if (relay && n->len < 16)
		return conf6_why(why, whylen,
		                 "\"%s\": a /%u network would make Postern an open relay"
		                 " (shortest allowed for IPv6: /16)",
		                 elem, n->len);
	return 0;
}

int conf6_port_address(const char *s, struct pg_conf_port *port, char *why, size_t whylen)
{
	uint8_t a[16], host[16];
	const char *bad;
	uint8_t len;

	if (conf6_parse_prefix(s, a, &len, why, whylen) != 0)
		return -1;
	if ((bad = conf6_not_unicast(a)) != NULL)
		return conf6_why(why, whylen, "%s", bad);
	if (conf6_is_linklocal(a))
		return conf6_why(why, whylen,
		                 "a link-local address: each port has its own, derived from its"
		                 " MAC (RFC 4862 §5.3)");
	if (len == 0)
		return conf6_why(why, whylen, "IPv6 prefix length must be 1..128 for a port");
	/* RFC 6164 makes both addresses of a /127 hosts; /128 is a single address */
	conf6_mask(a, len, host);
	if (len < 127 && memcmp(a, host, 16) == 0)
		return conf6_why(why, whylen,
		                 "host part is zero (that is the Subnet-Router anycast address,"
		                 " RFC 4291 §2.6.1)");
	memcpy(port->addr6, a, 16);
	port->prefix6_len = len;
	return 0;
}

int conf6_default_gateway(const char *s, struct pg_conf *c, char *why, size_t whylen)
{
	uint8_t a[16], zone;

	if (conf6_parse_addr(s, a, &zone, why, whylen) != 0)
		return -1;
	if (conf6_is_linklocal(a) && zone == CONF6_NO_PORT)
		return conf6_why(why, whylen,
		                 "a link-local gateway needs its port, e.g. fe80::1%%port0");
	if (!conf6_is_linklocal(a) && zone != CONF6_NO_PORT)
		return conf6_why(why, whylen,
		                 "a zone (%%portN) only goes with a link-local gateway");
	memcpy(c->default_gateway6, a, 16);
	c->default_gateway6_port = zone;
	return 0;
}

int conf6_static_route(struct conf6_pending *pend, const char *elem, char *why, size_t whylen)
{
	char pfx[CONF6_ROUTE_TEXT], via[8], gw[CONF6_ROUTE_TEXT], extra;
	struct conf6_static_route *r;
	uint8_t masked[16];
	char inner[160];

	if (strlen(elem) >= CONF6_ROUTE_TEXT)
		return conf6_why(why, whylen, "route \"%.40s...\" too long", elem);
	if (pend->nstatic >= SNAP_MAX_ROUTES - SNAP_MAX_PORTS - 1)
		return conf6_why(why, whylen, "more than %d static IPv6 routes",
		                 SNAP_MAX_ROUTES - SNAP_MAX_PORTS - 1);
	r = &pend->statics[pend->nstatic];
	memset(r, 0, sizeof(*r));
	if (sscanf(elem, "%119s %7s %119s %c", pfx, via, gw, &extra) != 3 ||
	    strcmp(via, "via") != 0)
		return conf6_why(why, whylen, "\"%s\": expected PREFIX/LEN via GATEWAY", elem);
	if (conf6_parse_prefix(pfx, r->prefix, &r->len, inner, sizeof(inner)) != 0)
		return conf6_why(why, whylen, "\"%s\": %s", elem, inner);
	conf6_mask(r->prefix, r->len, masked);
	if (memcmp(masked, r->prefix, 16) != 0) {
		char fix[INET6_ADDRSTRLEN];

		conf6_fmt(masked, fix, sizeof(fix));
		return conf6_why(why, whylen,
		                 "\"%s\": host bits of %s are not zero (did you mean %s/%u?)", elem,
		                 pfx, fix, r->len);
	}
	if (conf6_parse_addr(gw, r->gateway, &r->gw_port, inner, sizeof(inner)) != 0)
		return conf6_why(why, whylen, "\"%s\": gateway %s", elem, inner);
	if (conf6_is_linklocal(r->gateway) != (r->gw_port != CONF6_NO_PORT))
		return conf6_why(why, whylen,
		                 "\"%s\": a link-local gateway needs its port (fe80::1%%port0),"
		                 " and only a link-local one",
		                 elem);
	snprintf(r->text, sizeof(r->text), "%s", elem);
	pend->nstatic++;
	return 0;
}

int conf6_check_ports(const struct pg_conf *c, enum conf6_key *key, unsigned *port, char *why,
                      size_t whylen)
{
	for (unsigned j = 0; j < c->nports; j++) {
		const struct pg_conf_port *b = &c->ports[j];
		char ip[INET6_ADDRSTRLEN];

		if (b->prefix6_len == 0)
			continue;
		*port = j;
		if (b->mtu < CONF6_MIN_MTU) {
			*key = CONF6_KEY_MTU;
			return conf6_why(
			    why, whylen,
			    "port%u_mtu %u is below 1280, the IPv6 minimum (RFC 8200 §5)"
			    " that port%u_address needs",
			    j, b->mtu, j);
		}
		for (unsigned i = 0; i < j; i++) {
			const struct pg_conf_port *a = &c->ports[i];
			unsigned len =
			    a->prefix6_len < b->prefix6_len ? a->prefix6_len : b->prefix6_len;

			if (a->prefix6_len == 0 || !conf6_in_prefix(a->addr6, b->addr6, len))
				continue;
			conf6_fmt(a->addr6, ip, sizeof(ip));
			*key = CONF6_KEY_ADDRESS;
			return conf6_why(why, whylen,
			                 "port%u_address overlaps the IPv6 subnet of port%u_address"
			                 " %s/%u",
			                 j, i, ip, a->prefix6_len);
		}
	}
	return PG_OK;
}

/*
 * A next hop must be a neighbour: a link-local address on a port with
 * IPv6, or an address inside a connected IPv6 prefix that is neither ours
 * nor that prefix's Subnet-Router anycast address.
 */
static int conf6_check_gateway(const struct pg_conf *c, const uint8_t gw[16], uint8_t zone,
                               uint8_t *port_out, char *why, size_t whylen)
{
	char ip[INET6_ADDRSTRLEN];

	conf6_fmt(gw, ip, sizeof(ip));
	if (zone != CONF6_NO_PORT) {
		if (zone >= c->nports || c->ports[zone].prefix6_len == 0)
			return conf6_why(why, whylen,
			                 "gateway %s%%port%u: port%u has no IPv6 address", ip, zone,
			                 zone);
		*port_out = zone;
		return 0;
	}
	for (uint32_t i = 0; i < c->nports; i++) {
		const struct pg_conf_port *pt = &c->ports[i];
		uint8_t net[16];

		if (pt->prefix6_len == 0 || !conf6_in_prefix(gw, pt->addr6, pt->prefix6_len))
			continue;
		if (memcmp(gw, pt->addr6, 16) == 0)
			return conf6_why(why, whylen, "gateway %s is port%u's own address", ip, i);
		conf6_mask(gw, pt->prefix6_len, net);
		if (pt->prefix6_len < 127 && memcmp(gw, net, 16) == 0)
			return conf6_why(
			    why, whylen,
			    "gateway %s is the Subnet-Router anycast address of port%u", ip, i);
		*port_out = (uint8_t)i;
		return 0;
	}
	return conf6_why(why, whylen, "gateway %s is not in a connected IPv6 subnet", ip);
}

static int conf6_route_cmp(const void *x, const void *y)
{
	const struct pg_conf_route6 *a = x, *b = y;
	bool ca = conf6_is_zero(a->gateway), cb = conf6_is_zero(b->gateway);

	if (a->prefix_len != b->prefix_len)
		return a->prefix_len > b->prefix_len ? -1 : 1;
	/* same length: connected before via-gateway, then by address */
	if (ca != cb)
		return ca ? -1 : 1;
	return memcmp(a->prefix, b->prefix, 16);
}

int conf6_compile_routes(struct pg_conf *c, const struct conf6_pending *pend, enum conf6_key *key,
                         char *why, size_t whylen)
{
	char inner[200];

	c->nroutes6 = 0;
	for (uint32_t i = 0; i < c->nports; i++) {
		struct pg_conf_route6 *r;

		if (c->ports[i].prefix6_len == 0)
			continue;
		r = &c->routes6[c->nroutes6++];
		memset(r, 0, sizeof(*r));
		r->prefix_len = c->ports[i].prefix6_len;
		conf6_mask(c->ports[i].addr6, r->prefix_len, r->prefix);
		r->port = (uint8_t)i;
	}
	*key = CONF6_KEY_ROUTES;
	for (unsigned i = 0; i < pend->nstatic; i++) {
		const struct conf6_static_route *s = &pend->statics[i];
		struct pg_conf_route6 *r;

		if (s->len == 0 && !conf6_is_zero(c->default_gateway6))
			return conf6_why(
			    why, whylen,
			    "\"%s\": a default route is already set by default_gateway", s->text);
		for (uint32_t j = 0; j < c->nroutes6; j++) {
			if (c->routes6[j].prefix_len == s->len &&
			    memcmp(c->routes6[j].prefix, s->prefix, 16) == 0)
				return conf6_why(why, whylen, "\"%s\": duplicates %s", s->text,
				                 conf6_is_zero(c->routes6[j].gateway)
				                     ? "the connected subnet of a port"
				                     : "an earlier route");
		}
		r = &c->routes6[c->nroutes6];
		memset(r, 0, sizeof(*r));
		if (conf6_check_gateway(c, s->gateway, s->gw_port, &r->port, inner,
		                        sizeof(inner)) != 0)
			return conf6_why(why, whylen, "\"%s\": %s", s->text, inner);
		memcpy(r->prefix, s->prefix, 16);
		memcpy(r->gateway, s->gateway, 16);
		r->prefix_len = s->len;
		c->nroutes6++;
	}
	if (!conf6_is_zero(c->default_gateway6)) {
		struct pg_conf_route6 *r = &c->routes6[c->nroutes6];

		memset(r, 0, sizeof(*r));
		*key = CONF6_KEY_GATEWAY;
		if (conf6_check_gateway(c, c->default_gateway6, c->default_gateway6_port, &r->port,
		                        why, whylen) != 0)
			return -1;
		memcpy(r->gateway, c->default_gateway6, 16);
		c->nroutes6++;
	}
	/* the dataplane does a first-match scan, so order is the semantics */
	qsort(c->routes6, c->nroutes6, sizeof(c->routes6[0]), conf6_route_cmp);
	return PG_OK;
}
