/*
 * transport.h - the transport table, CONFIG_DIR/transport: which next hops
 * mail for a recipient domain goes to. A subset of Postfix transport(5):
 *
 *     example.com     smtp:[mx.example.net]:587
 *     .example.com    smtp:relay.example.net
 *     partner.test    smtp:[198.19.0.2], [198.19.0.3]:2525
 *     *               smtp:[smarthost.example.net]
 *
 * Only the smtp transport exists. Several next hops (Postfix 3.5 syntax,
 * comma or whitespace separated) are tried in order.
 */
#ifndef PG_TRANSPORT_H
#define PG_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "snap_format.h"

#define TRANSPORT_FILE_NAME "transport"
#define TRANSPORT_FILE_MAX (16u << 20)
#define TRANSPORT_MAX_NEXTHOPS 16

struct transport_nexthop {
	char host[SNAP_NAME_MAX + 1]; /* lowercased, no brackets */
	char dest[SNAP_NAME_MAX + 1]; /* "[host]", "[host]:587", "host", "host:2525" */
	uint16_t port;
	uint8_t flags; /* SNAP_NH_F_* */
	uint32_t addr; /* network order with SNAP_NH_F_IP */
};

struct transport_entry {
	char key[SNAP_NAME_MAX + 1]; /* "d.com", ".d.com" or "*" */
	uint32_t kind;               /* enum snap_name_kind */
	unsigned line;
	uint32_t nnexthops; /* 0: "smtp:" alone, the domain's own MX hosts */
	struct transport_nexthop *nexthops;
	char *text;
};

struct pg_transport {
	char path[CONF_PATH_MAX + 32];
	size_t n, cap;
	struct transport_entry *entries; /* file order */
};

/* DIR/transport (absent = empty) into *out; PG_OK or PG_ERROR + FILE:LINE. */
int transport_load(const char *dir, struct pg_transport *out, char *err, size_t errlen);
int transport_parse_text(const char *dir, const char *text, size_t len, struct pg_transport *out,
                         char *err, size_t errlen);
void transport_free(struct pg_transport *t);

/*
 * relayhost of postern.conf (conf.h) as the "*" entry: added unless the
 * table has its own "*" (then PG_DECLINED: the table wins, as in Postfix).
 * PG_OK, PG_DECLINED, or PG_ERROR + why (bad next hop, memory).
 */
int transport_add_relayhost(struct pg_transport *t, const char *relayhost, char *why,
                            size_t whylen);

/*
 * One next hop as a transport entry or `policy test --nexthop` gives it:
 * "[host]", "[host]:port", "host", "host:port"; 0 or -1 + why.
 */
int transport_parse_nexthop(const char *in, struct transport_nexthop *nh, char *why, size_t whylen);

#endif
