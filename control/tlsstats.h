/*
 * tlsstats.h - posternd's count of deliveries per recipient domain and TLS
 * outcome (issue 6, "Evidence"), taken from the "delivery attempt" records
 * it drains from the event rings (one record per recipient per attempt).
 * Rendered by `posternctl stats` (report.c) and GET /metrics (metrics.c).
 *
 * The counts live in posternd's memory only: a restarted posternd starts
 * from zero. The table is bounded: after TLSSTATS_MAX_DOMAINS domains, new
 * domains are counted under the domain "other" (the domains already in the
 * table keep their own rows; a real domain named "other" shares that row),
 * so neither posternd's memory nor the number of Prometheus series grows
 * with what senders send.
 */
#ifndef PG_TLSSTATS_H
#define PG_TLSSTATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLSSTATS_MAX_DOMAINS 1000
#define TLSSTATS_DOMAIN_MAX 255 /* RFC 5321 §4.5.3.1.2: a domain is at most 255 octets */
#define TLSSTATS_OTHER "other"  /* where domains beyond the bound are counted */

/*
 * The tls_outcome values of a delivery record (dataplane/relay/outbound.c),
 * in the column order of the reports. PLAINTEXT means the message's bytes
 * went to the next hop unencrypted, and nothing else. NOT_SENT: no byte of
 * the message left (no route, connection refused or lost, the greeting,
 * EHLO, MAIL, RCPT or DATA refused); such attempts are neither plaintext
 * nor TLS deliveries. DEFERRED: held back by the TLS policy.
 */
#define TLSSTATS_OUTCOMES(X)                                                                       \
	X(VERIFIED, "verified")                                                                    \
	X(FINGERPRINT, "fingerprint")                                                              \
	X(ENCRYPTED, "encrypted")                                                                  \
	X(PLAINTEXT, "plaintext")                                                                  \
	X(DEFERRED, "deferred")                                                                    \
	X(WOULD_DEFER, "would_defer")                                                              \
	X(NOT_SENT, "not_sent")

enum tlsstats_outcome {
#define TLSSTATS_OUTCOME_ENUM(name, text) TLSSTATS_##name,
	TLSSTATS_OUTCOMES(TLSSTATS_OUTCOME_ENUM)
#undef TLSSTATS_OUTCOME_ENUM
	    TLSSTATS__COUNT
};

struct tlsstats_row {
	char domain[TLSSTATS_DOMAIN_MAX + 1]; /* lower case, printable: see tlsstats_add */
	uint64_t count[TLSSTATS__COUNT];      /* by enum tlsstats_outcome */
};

struct tlsstats {
	struct tlsstats_row *rows; /* sorted by domain (strcmp) */
	uint32_t nrows;
	uint32_t max_domains; /* rows other than "other" may not exceed this */
	/*
	 * Delivery records that could not be counted: no recipient domain
	 * (no to=, no '@', nothing after it) or no known tls_outcome (a
	 * truncated record, a newer dataplane's outcome).
	 */
	uint64_t skipped;
};

/*
 * An empty table of at most max_domains domains plus "other" (allocated
 * now, so counting never fails later). PG_OK, or PG_ERROR out of memory.
 */
int tlsstats_init(struct tlsstats *s, uint32_t max_domains);
void tlsstats_free(struct tlsstats *s);

/*
 * Count one delivery to domain (domlen bytes, no NUL needed) with outcome
 * (a tls_outcome name). The domain is lowercased (RFC 5321 §2.4: domains
 * are case-insensitive) and cut at TLSSTATS_DOMAIN_MAX; a byte that is not
 * printable ASCII or part of well-formed UTF-8 (RFC 6531 domains) becomes
 * '?', so every rendering is valid JSON and a valid label value. PG_OK, or
 * PG_DECLINED (counted in skipped) for an empty domain or an unknown outcome.
 */
int tlsstats_add(struct tlsstats *s, const char *domain, size_t domlen, const char *outcome,
                 size_t outlen);

/*
 * Count one "delivery attempt" record: its text (evring.h fields) gives
 * to=ADDRESS, whose domain is what follows the last '@', and tls_outcome=.
 * Same result as tlsstats_add.
 */
int tlsstats_add_event(struct tlsstats *s, const char *text);

/* The outcome's name ("verified"...), "unknown" out of range. */
const char *tlsstats_outcome_name(unsigned outcome);
/* The outcome named by name[0..len), or -1. */
int tlsstats_outcome_parse(const char *name, size_t len);

#endif
