/*
 * policy_lookup.h - lookups in the name tables of a validated snapshot
 * (common/snap_format.h, ABI 1.1): the outbound TLS policy, the transport
 * table and relay access. Plain C on the blob, offsets only, no allocation
 * and no DPDK: the dataplane calls these per delivery, posternd for
 * `posternctl policy test`. Every lookup costs O(length of the name).
 */
#ifndef PG_POLICY_LOOKUP_H
#define PG_POLICY_LOOKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snap_format.h"

#define POLICY_SMTP_PORT 25

/* How an entry was found. */
enum policy_match {
	POLICY_MATCH_DEFAULT = 0, /* no entry: the default applies */
	POLICY_MATCH_NEXTHOP,     /* "[host]" / "[host]:port" of the next hop */
	POLICY_MATCH_EXACT,       /* "domain" */
	POLICY_MATCH_PARENT,      /* ".parent" of the domain */
	POLICY_MATCH_WILDCARD,    /* "*" (transport table only) */
};

const char *policy_match_name(enum policy_match m);
const char *policy_level_name(unsigned level); /* "none" .. "secure", "?" */
const char *policy_grade_name(unsigned grade); /* "" for the default */

/* FNV-1a 64 over s[0..len) from the last byte to the first (snap_format.h). */
uint64_t policy_hash(const char *s, size_t len);

/*
 * The TLS policy for a delivery to recipient domain `domain` through the
 * next-hop destination `nexthop` (NULL or "" when the mail goes to the
 * domain's own MX hosts). Precedence, first match wins:
 *   1. the next-hop destination as Postfix looks it up: "[host]:port" or
 *      "[host]" exactly (":25" is the same key as none), or an unbracketed
 *      next-hop domain exactly and then its parents (nearest first);
 *   2. the recipient domain exactly, then ".parent" entries nearest first;
 *   3. the default level (tls_default_level).
 * Step 2 after a next hop is Postern's addition to Postfix (which stops at
 * the next-hop key): a strict policy for a domain is not lost because the
 * transport table routes the domain through an explicit relay.
 * Names are matched case-insensitively. PG_OK with *r filled, or
 * PG_ERROR if a name is longer than SNAP_NAME_MAX (nothing matches then).
 */
struct policy_result {
	const struct snap_tls_policy *entry; /* NULL: the default applies */
	enum policy_match match;
	bool via_nexthop; /* matched a name of the next hop, not the domain */
	uint8_t level;    /* the entry's level, or the default */
};

int policy_tls_lookup(const struct snap_header *h, const char *domain, const char *nexthop,
                      struct policy_result *r);

/*
 * The transport entry for a recipient domain: exact, then ".parent"
 * nearest first, then "*". Without one (match DEFAULT) the mail goes to the
 * domain's MX hosts. *nexthops points into SNAP_SEC_NEXTHOPS.
 */
struct transport_result {
	const struct snap_transport *entry; /* NULL: no entry */
	enum policy_match match;
	const struct snap_nexthop *nexthops;
	uint32_t nnexthops; /* 0: deliver to the recipient domain's MX hosts */
};

int transport_lookup(const struct snap_header *h, const char *domain, struct transport_result *r);

/* relay_domains: "domain" exactly or a ".parent" entry. */
bool relay_domain_allowed(const struct snap_header *h, const char *domain);

/* mynetworks: is this client address (IPv4, network order) inside one? */
bool relay_client_allowed(const struct snap_header *h, uint32_t addr);

/* Default level from SNAP_SEC_RELAY (may when the section is absent). */
uint8_t policy_default_level(const struct snap_header *h);

#endif
