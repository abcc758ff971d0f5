/*
 * resolver.h - postern-dp's DNS resolver (dataplane/dns/README.md): one
 * libunbound context on the main (housekeeping) lcore, validating with the
 * configured trust anchor, a cache shared by every worker, and rings
 * between them. Workers never block and never touch libunbound:
 *
 *   worker                         main lcore (dns_run)
 *   dns_submit(op) --MP/SC ring-->  route lookup: MX, then A of each host
 *                                   (cache, or one query per name and type
 *                                   however many ask: merged)
 *   dns_poll(worker) <--SP/SC ring-- op->route filled in
 *
 * A struct dns_op is allocated by the worker (dns_op_new), owned by the
 * main lcore from dns_submit until it comes back, then freed by the worker
 * (dns_op_free). Packets leave through the kernel's sockets of postern-dp's
 * network namespace (the management interface), not through the DPDK ports.
 */
#ifndef PG_DNS_RESOLVER_H
#define PG_DNS_RESOLVER_H

#include <stdbool.h>
#include <stdint.h>

#include "dns_route.h"

struct snap_header;

#define DNS_OP_NO_MX 0x1u /* "[host]": the host's A records only */
#define DNS_OP_FLUSH 0x2u /* no lookup: drop name's entries ("" = all), count in flushed */
#define DNS_RING_SIZE 4096u

struct dns_op {
	/* the request (the worker's) */
	uint32_t worker;
	uint32_t flags;       /* DNS_OP_* */
	uint32_t addr_limit;  /* smtp_mx_address_limit */
	uint32_t slot;        /* the worker's */
	uint64_t cookie, seq; /* the worker's, returned as they are */
	uint64_t submitted_ns;
	char name[DNS_NAME_MAX]; /* lowercase, no trailing dot */
	/* the answer (the main lcore's) */
	struct dns_route route;
	uint32_t queries, hits, merged; /* for the worker's counters */
	uint32_t flushed;               /* DNS_OP_FLUSH: entries dropped */
	uint8_t fail_kind;              /* enum dns_kind behind a DNS_R_TEMP */
	uint64_t answered_ns;
};

/*
 * Main lcore, once, after rte_eal_init: the rings for nworkers workers.
 * PG_OK or PG_ERROR with err.
 */
int dns_init(unsigned nworkers, char *err, size_t errlen);

/*
 * Main lcore: adopt a validated snapshot's DNS section and settings. A
 * changed section makes a new libunbound context (lookups in flight fail
 * with "resolver reconfigured", 4.4.3, and the cache is emptied); no
 * section: no DNS. Problems are logged, never fatal (lookups then fail).
 */
void dns_adopt(const struct snap_header *h);

/*
 * Main lcore: serve lookups for up to max_ms milliseconds: requests from
 * the ring, libunbound's answers, timeouts, completions to the workers.
 */
void dns_run(unsigned max_ms);

/* Main lcore, at exit, after the workers stopped. */
void dns_destroy(void);

/* Main lcore: empty the cache, or only name's entries ("" = all). Returns how many. */
unsigned dns_flush(const char *name);

/* Workers. */
bool dns_available(void); /* a resolver is configured */
struct dns_op *dns_op_new(void);
void dns_op_free(struct dns_op *op);
/* PG_OK (the op is the resolver's now), PG_AGAIN (the ring is full) or PG_ERROR (no DNS). */
int dns_submit(struct dns_op *op);
/* Answered ops of this worker, up to max. */
unsigned dns_poll(uint32_t worker, struct dns_op **ops, unsigned max);

#endif
