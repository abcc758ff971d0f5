/*
 * policy_lookup.h - lookups in the name tables of a validated snapshot
 * (common/snap_format.h, ABI 1.1): the outbound TLS policy, the transport
 * table, relay access, and (ABI 1.6) the inbound TLS requirements. Plain C on the blob, offsets
 * only, no allocation and no DPDK: the dataplane calls these per delivery, posternd for `posternctl
 * policy test`. Every lookup costs O(length of the name).
 */
#ifndef PG_POLICY_LOOKUP_H
#define PG_POLICY_LOOKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "snap_format.h"

#define POLICY_SMTP_PORT 25

/* How an entry was found. */
enum policy_match {
	POLICY_MATCH_DEFAULT = 0, /* no entry: the default applies */
	POLICY_MATCH_NEXTHOP,     /* "[host]" / "[host]:port" of the next hop */
	POLICY_MATCH_EXACT,       /* "domain" */
	POLICY_MATCH_PARENT,      /* ".parent" of the domain */
	POLICY_MATCH_WILDCARD,    /* "*" (transport table only) */
	POLICY_MATCH_NETWORK,     /* "[a.b.c.d/len]" holds the client (sender_tls_policy) */
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

/* mynetworks: is this client address inside one (IPv6: ABI 2.3 section)? */
bool relay_client_allowed_addr(const struct snap_header *h, const struct pg_addr *addr);
/* IPv4, network order. */
bool relay_client_allowed(const struct snap_header *h, uint32_t addr);

/* Default level from SNAP_SEC_RELAY (may when the section is absent). */
uint8_t policy_default_level(const struct snap_header *h);

/*
 * ---- Inbound TLS requirements (ABI 1.6) ----
 *
 * Whether an SMTP client must use STARTTLS before MAIL FROM, and why.
 * Precedence, first that applies wins (each is a reason on its own; the
 * order only decides which one the verdict names):
 *   1. the listener: smtpd_tls_security_level = encrypt;
 *   2. the client network: client_ip inside smtpd_tls_required_networks
 *      (the longest prefix is named);
 *   3. the sender domain: sender_domain (the domain of MAIL FROM; NULL
 *      before MAIL, and for the null reverse-path <>) exactly in
 *      smtpd_tls_required_senders, or a ".parent" entry, nearest first.
 * 1 and 2 are known at connection time, so the SMTP layer can refuse every
 * command but EHLO, HELO, STARTTLS, NOOP and QUIT in plaintext, as Postfix
 * does at encrypt (src/smtpd/smtpd.c smtpd_proto: "530 5.7.0 Must issue a
 * STARTTLS command first", RFC 3207 §4); 3 is known at MAIL FROM, which
 * gets that same reply in plaintext (the per-partner rule; Postfix's
 * nearest tool, reject_plaintext_session, answers 450 4.7.1 "Session
 * encryption is required"). A snapshot without the sections (minor < 6)
 * requires nothing. O(length of sender_domain) for step 3, one pass over at
 * most CONF_MYNETWORKS_MAX networks for step 2. Never allocates.
 */
#define POLICY_INBOUND_REPLY "530 5.7.0 Must issue a STARTTLS command first"

enum policy_inbound_reason {
	INBOUND_TLS_NOT_REQUIRED = 0, /* none applies (TLS optional or not offered) */
	POLICY_INBOUND_LISTENER,      /* smtpd_tls_security_level = encrypt */
	POLICY_INBOUND_NETWORK,       /* smtpd_tls_required_networks */
	POLICY_INBOUND_SENDER,        /* smtpd_tls_required_senders */
};

struct policy_inbound_verdict {
	bool required;
	enum policy_inbound_reason reason;
	uint8_t level; /* the listener's level, enum snap_tls_level */
	/*
	 * Versions the handshake may negotiate: smtpd_tls_mandatory_protocols
	 * when TLS is required at connection time (reasons 1 and 2), else
	 * smtpd_tls_protocols. With reason 3 a session that negotiated a
	 * version outside mandatory_protocols does not meet the requirement.
	 */
	uint16_t protocols;
	uint16_t mandatory_protocols;
	const struct snap_inbound_tls *settings; /* NULL: no sections (minor < 6) */
	const struct snap_cidr *network;         /* reason NETWORK: the entry (IPv4) */
	const struct snap_cidr6 *network6;       /* reason NETWORK: the entry (IPv6) */
	const struct snap_name_key *sender;      /* reason SENDER: the entry */
	enum policy_match sender_match;          /* EXACT or PARENT */
};

const char *policy_inbound_reason_name(enum policy_inbound_reason r); /* "listener", ... */

/* Each step on its own (posternctl explains all three): the entry or NULL. */
const struct snap_cidr *policy_inbound_network(const struct snap_header *h, uint32_t client_ip);
const struct snap_cidr6 *policy_inbound_network6(const struct snap_header *h,
                                                 const uint8_t client[16]);
const struct snap_name_key *policy_inbound_sender(const struct snap_header *h,
                                                  const char *sender_domain, enum policy_match *m);

/* Either family; why may be NULL. */
bool policy_inbound_required_addr(const struct snap_header *h, const struct pg_addr *client,
                                  const char *sender_domain, struct policy_inbound_verdict *why);
/* client_ip is IPv4 in network order; why may be NULL. */
bool policy_inbound_required(const struct snap_header *h, uint32_t client_ip,
                             const char *sender_domain, struct policy_inbound_verdict *why);

/*
 * ABI 2.1 smtpd_tls_required_recipients: the entry that lists the domain
 * of a recipient (exactly, or a ".parent" entry nearest first), or NULL.
 * An entry applies only when the listener offers STARTTLS at all (the
 * snapshot keeps the table empty at level none).
 */
const struct snap_name_key *policy_inbound_recipient(const struct snap_header *h,
                                                     const char *rcpt_domain, enum policy_match *m);

/*
 * ---- Sender TLS floors (ABI 2.1, sender_tls_policy) ----
 *
 * The floor for mail from sender_domain (the domain of MAIL FROM; NULL or
 * "" for the null reverse-path, which has none) submitted by client
 * (either family; NULL when unknown: mail spooled by an older dataplane, or
 * a bounce). Each key is looked up on its own: the sender domain exactly,
 * then its ".parent" entries nearest first; the client address in the
 * networks of its family (IPv6 ones since ABI 2.3), longest prefix first. When both match,
 * the floor is the one that gives more: an enforcing entry over one in
 * mode=testing, then the stricter level (crypto/tls_decide.h
 * tls_level_meets), then the domain's. PG_OK with *r filled (r->entry NULL:
 * no floor), or PG_ERROR for a sender domain longer than SNAP_NAME_MAX (the
 * network is still looked up). Never allocates; O(length of the domain +
 * number of networks).
 */
struct sender_tls_result {
	const struct snap_sender_tls *entry; /* the floor; NULL: none applies */
	enum policy_match match;             /* EXACT, PARENT or NETWORK (either family) */
	/* each lookup's own answer, for `policy test --sender` */
	const struct snap_sender_tls *domain_entry;
	enum policy_match domain_match; /* EXACT or PARENT */
	const struct snap_sender_tls *network_entry;
};

int sender_tls_lookup_addr(const struct snap_header *h, const char *sender_domain,
                           const struct pg_addr *client, struct sender_tls_result *r);

/* The same for an IPv4 client (network order), has_client false: unknown. */
int sender_tls_lookup(const struct snap_header *h, const char *sender_domain, uint32_t client_ip,
                      bool has_client, struct sender_tls_result *r);

#endif
