/*
 * dns_route.h - MX routing as Postfix does it (RFC 5321 §5.1), the pure
 * part: no DPDK, no resolver, so the unit tests drive it with answers they
 * make up (tests/unit/dns). The resolver (resolver.h) feeds it real
 * answers; delivery (relay/outbound_route.c) acts on what it decides.
 *
 *   dns_mx_order    MX records by preference, equal preferences shuffled
 *                   (RFC 5321 §5.1: "randomized to spread the load")
 *   dns_route_build the ordered hosts and each one's addresses into at most
 *                   smtp_mx_address_limit next hops, every address of a
 *                   host in turn; or the reason there is none
 *   dns_route_self  an MX list that reaches Postern itself: cut at the
 *                   first of our addresses (Postfix smtp_addr.c), or
 *                   "mail loops back to myself" when we are the best MX
 *   dns_route_action the route's outcome -> deliver, defer or bounce, with
 *                   the status code and the reason
 */
#ifndef PG_DNS_ROUTE_H
#define PG_DNS_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_NAME_MAX 256 /* a presentation name, trailing dot dropped, NUL */
#define DNS_ROUTE_MAX 16 /* next hops of one route (OB_NH_MAX) */
#define DNS_MX_MAX 32    /* MX hosts considered (Postfix: no limit but the address limit) */
#define DNS_REASON_MAX 200

/* DNSSEC status of an answer (libunbound: secure, bogus, or neither). */
enum dns_sec { DNS_SEC_INSECURE, DNS_SEC_SECURE, DNS_SEC_BOGUS };

/* What one lookup (one name, one type) gave. */
enum dns_kind {
	DNS_K_DATA,     /* records of the type */
	DNS_K_NODATA,   /* the name exists, no record of the type */
	DNS_K_NXDOMAIN, /* no such name */
	DNS_K_SERVFAIL, /* the resolver could not get an answer (lame, refused, broken) */
	DNS_K_TIMEOUT,  /* no answer within dns_timeout */
	DNS_K_BOGUS,    /* DNSSEC validation failed */
	DNS_K_ERROR,    /* no resolver, a bad name, out of memory */
};

/* What a route lookup decided (dns_route_action maps it to SMTP). */
enum dns_route_kind {
	DNS_R_OK,       /* nhops next hops */
	DNS_R_NULLMX,   /* RFC 7505: 5.1.10 */
	DNS_R_NXDOMAIN, /* the domain does not exist: 5.1.2 */
	DNS_R_NOHOST,   /* MX hosts (or the domain) without any address: 5.4.4 */
	DNS_R_TEMP,     /* SERVFAIL, timeout, bogus, no resolver: 4.4.3, reason says which */
	DNS_R_LOOP,     /* the best MX is Postern itself: 5.4.6 */
};

struct dns_mx {
	uint16_t pref;
	char host[DNS_NAME_MAX];
};

/* One next hop: an address of an MX host. */
struct dns_hop {
	uint32_t addr; /* network order */
	uint16_t pref; /* of its MX record; 0 for an implicit MX or [host] */
	uint8_t sec;   /* enum dns_sec: the weaker of the MX answer's and the address answer's */
	uint8_t pad;
	char host[DNS_NAME_MAX]; /* the MX host (the domain for an implicit MX) */
};

struct dns_route {
	uint8_t kind;   /* enum dns_route_kind */
	uint8_t mx_sec; /* enum dns_sec of the MX answer (of the A answer without MX) */
	bool implicit;  /* no MX: the domain's own address (RFC 5321 §5.1) */
	bool cached;    /* every answer came from the cache */
	uint32_t nhops;
	uint32_t ttl; /* the shortest TTL of the answers used (s) */
	struct dns_hop hops[DNS_ROUTE_MAX];
	char reason[DNS_REASON_MAX];
};

/* One MX host's address lookup, as dns_route_build reads it. */
struct dns_host_answer {
	uint8_t kind; /* enum dns_kind */
	uint8_t sec;  /* enum dns_sec */
	uint32_t naddr;
	const uint32_t *addr; /* network order */
	const char *why;      /* for failures: the resolver's words */
};

/* A random number in [0, n), n > 0. */
typedef uint32_t (*dns_rand_fn)(void *ctx, uint32_t n);

const char *dns_sec_name(unsigned sec);
const char *dns_kind_name(unsigned kind);

/*
 * Null MX (RFC 7505 §3): exactly one MX, preference 0, target "." (host
 * ""). A "." among other records is not a null MX and is skipped.
 */
bool dns_mx_is_null(const struct dns_mx *mx, size_t n);

/*
 * Sort by preference, ascending; records of one preference in random
 * order (Fisher-Yates with rnd). Targets "" (the root) are dropped.
 * Returns the number left.
 */
size_t dns_mx_order(struct dns_mx *mx, size_t n, dns_rand_fn rnd, void *ctx);

/*
 * Next hops from ordered MX hosts and their answers (ans[i] for mx[i]):
 * every address of each host in turn, at most limit in all (1..DNS_ROUTE_MAX).
 * Hosts whose lookup failed are skipped; with no address at all, DNS_R_TEMP
 * if any host failed temporarily (SERVFAIL, timeout, bogus), else
 * DNS_R_NOHOST. mx_sec: the MX answer's status. r->reason names the hosts
 * that failed.
 */
void dns_route_build(struct dns_route *r, const struct dns_mx *mx, size_t n,
                     const struct dns_host_answer *ans, uint8_t mx_sec, uint32_t limit);

/*
 * Postfix's loop check: an MX host with one of our addresses (own[nown],
 * network order) cuts the list before its preference (we would only be
 * relaying to ourselves or worse MX hosts); when nothing is left, DNS_R_LOOP.
 * Only for MX routes (not [host] or transport next hops: Postfix checks
 * those too, but a configured next hop pointing at us is a configuration
 * error, also DNS_R_LOOP).
 */
void dns_route_self(struct dns_route *r, const uint32_t *own, size_t nown);

/* What delivery does with a route. */
struct dns_action {
	uint16_t code;  /* 0 = deliver to the hops; else 450 or 550 */
	char status[8]; /* "4.4.3", "5.1.10", ... */
	char text[DNS_REASON_MAX + 100];
};

/* The action for route r to domain (the name looked up). */
void dns_route_action(const struct dns_route *r, const char *domain, struct dns_action *a);

#endif
