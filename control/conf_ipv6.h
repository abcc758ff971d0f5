/*
 * conf_ipv6.h - the IPv6 half of postern.conf's network keys, shared by
 * conf.c and conf_ipv6.c only. Every key that takes an address takes an
 * IPv6 one too: portN_address (one IPv4 and/or one IPv6 prefix),
 * default_gateway (one of each family), static_routes (routes of either
 * family), diag_client ([IPv6]:PORT). conf.c hands each element holding a
 * ':' here; the second pass checks and compiles what involves several keys.
 */
#ifndef PG_CONF_IPV6_H
#define PG_CONF_IPV6_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"

#define CONF6_ROUTE_TEXT 120

/* A static IPv6 route as written, kept for the second pass and its messages. */
struct conf6_static_route {
	uint8_t prefix[16], gateway[16];
	uint8_t len;
	uint8_t gw_port; /* N of "%portN", or CONF6_NO_PORT */
	char text[CONF6_ROUTE_TEXT];
};

#define CONF6_NO_PORT 0xff

/* What the first pass collected for the second. */
struct conf6_pending {
	unsigned nstatic;
	struct conf6_static_route statics[SNAP_MAX_ROUTES];
};

/*
 * An IPv6 unicast address in text form ("2001:db8::1"), with an optional
 * "%portN" zone when `zone` is not NULL (*zone = N, or CONF6_NO_PORT).
 * 0, or -1 with the reason in why.
 */
int conf6_parse_addr(const char *s, uint8_t addr[16], uint8_t *zone, char *why, size_t whylen);

/* portN_address, the IPv6 element ("2001:db8:18::1/64"): into port->addr6. */
int conf6_port_address(const char *s, struct pg_conf_port *port, char *why, size_t whylen);

/* default_gateway, the IPv6 element ("2001:db8:19::fe", "fe80::1%port1"). */
int conf6_default_gateway(const char *s, struct pg_conf *c, char *why, size_t whylen);

/* static_routes, one IPv6 element ("2001:db8:99::/48 via 2001:db8:19::2"). */
int conf6_static_route(struct conf6_pending *pend, const char *elem, char *why, size_t whylen);

/*
 * An IPv6 element of mynetworks or smtpd_tls_required_networks, as Postfix
 * writes them: "[2001:db8::]/32", "[2001:db8::1]" (a /128), or the same
 * without brackets. Host bits must be zero; with `relay` (mynetworks) a
 * network shorter than /16 is refused as an open relay. Into n (v6 set).
 */
int conf6_network(const char *elem, bool relay, struct pg_conf_cidr *n, char *why, size_t whylen);

/* a with every bit past the first len (0..128) cleared, into out. */
void conf6_mask(const uint8_t a[16], unsigned len, uint8_t out[16]);

/* Which key a second-pass error is about, for its line number. */
enum conf6_key { CONF6_KEY_ADDRESS, CONF6_KEY_MTU, CONF6_KEY_ROUTES, CONF6_KEY_GATEWAY };

/*
 * Second pass, after the ports are known: IPv6 port prefixes must not
 * overlap and their ports need an MTU of at least 1280; then the IPv6
 * route table (connected prefixes, static routes, the default) is
 * compiled, longest prefix first. PG_OK, or PG_ERROR with the reason in
 * why, the key in *key and the port in *port (for per-port keys).
 */
int conf6_check_ports(const struct pg_conf *c, enum conf6_key *key, unsigned *port, char *why,
                      size_t whylen);
int conf6_compile_routes(struct pg_conf *c, const struct conf6_pending *pend, enum conf6_key *key,
                         char *why, size_t whylen);

#endif
