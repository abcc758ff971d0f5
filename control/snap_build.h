/*
 * snap_build.h - turn a validated configuration (struct pg_conf, the
 * tls_policy and transport tables) into a snapshot blob in the wire format
 * of common/snap_format.h, ready for shm_publish.
 */
#ifndef PG_SNAP_BUILD_H
#define PG_SNAP_BUILD_H

#include <stddef.h>

#include "certs.h"
#include "conf.h"
#include "policy.h"
#include "sender_policy.h"
#include "tickets.h"
#include "transport.h"
#include "trust.h"

/*
 * Build the blob: header, section directory, then STRINGS, DATAPLANE,
 * PORTS, ROUTES, RELAY, TLS_POLICY (+ index), TRANSPORT (+ index),
 * NEXTHOPS, MYNETWORKS and RELAY_DOMAINS (+ index), each 8-byte aligned.
 * policy and transport may be NULL (empty tables). Generation and checksum
 * are left 0 for the publisher. PG_OK with *blob (malloc'd, caller frees)
 * and *len, or PG_ERROR with a message.
 */
int snap_build_all(const struct pg_conf *conf, const struct pg_policy *policy,
                   const struct pg_transport *transport, void **blob, size_t *len, char *err,
                   size_t errlen);

/*
 * snap_build_all plus the inbound TLS certificates (ABI 1.2): TLS_CERTS,
 * TLS_CERT_NAMES, TLS_CERT_CHAIN and TLS_DER after the other sections.
 * certs may be NULL (no certificates; the four sections are still present,
 * empty). snap_build_all is this with certs NULL.
 */
int snap_build_full(const struct pg_conf *conf, const struct pg_policy *policy,
                    const struct pg_transport *transport, const struct pg_certs *certs, void **blob,
                    size_t *len, char *err, size_t errlen);

/* Everything a snapshot is built from (snap_build_from). */
struct snap_build_input {
	const struct pg_conf *conf;
	const struct pg_policy *policy;       /* NULL: empty table */
	const struct pg_transport *transport; /* NULL: empty table */
	const struct pg_certs *certs;         /* NULL: no inbound certificate */
	const struct trust_bundle *cafile;    /* smtp_tls_CAfile; NULL: none */
	const struct tickets *tickets;        /* session-ticket keys; NULL: none */
	const struct pg_sender_policy *senders; /* sender_tls_policy; NULL: no floors */
};

/*
 * snap_build_full plus the ABI 1.8 sections: TLS_TRUST and TLS_TRUST_DER
 * (the anchors of in->cafile as SNAP_TRUST_GLOBAL, then those of each
 * tls_policy entry's tafile bundle, each bundle's DER written once) and
 * TLS_TICKET_KEYS (in->tickets as they are: this never rotates them).
 * The sections are present, empty, when there is nothing to carry. And
 * the ABI 2.1 sections: SENDER_TLS (+ index, + networks longest first)
 * from in->senders, INBOUND_TLS_RECIPIENTS (+ index) from postern.conf.
 * snap_build_full is this with cafile, tickets and senders NULL.
 */
int snap_build_from(const struct snap_build_input *in, void **blob, size_t *len, char *err,
                    size_t errlen);

/* snap_build_all with empty tls_policy and transport tables. */
int snap_build(const struct pg_conf *conf, void **blob, size_t *len, char *err, size_t errlen);

#endif
