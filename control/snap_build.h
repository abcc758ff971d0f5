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
#include "transport.h"

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

/* snap_build_all with empty tls_policy and transport tables. */
int snap_build(const struct pg_conf *conf, void **blob, size_t *len, char *err, size_t errlen);

#endif
