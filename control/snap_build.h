/*
 * snap_build.h - turn a validated struct pg_conf into a snapshot blob in the
 * wire format of common/snap_format.h, ready for shm_publish.
 */
#ifndef PG_SNAP_BUILD_H
#define PG_SNAP_BUILD_H

#include <stddef.h>

#include "conf.h"

/*
 * Build the blob: header, section directory, then STRINGS, DATAPLANE,
 * PORTS and ROUTES, each 8-byte aligned. Generation and checksum are left 0
 * for the publisher. PG_OK with *blob (malloc'd, caller frees) and *len, or
 * PG_ERROR with a message.
 */
int snap_build(const struct pg_conf *conf, void **blob, size_t *len, char *err, size_t errlen);

#endif
