/*
 * events.h - the dataplane's side of the event rings (common/evring.h):
 * rare events (a worker started, a snapshot adopted or refused, a port's
 * link) formatted into the thread's own ring in shared memory, which
 * posternd drains into its JSON log. Never on the per-packet path: it
 * formats text. It never blocks either: a full ring drops and counts.
 *
 *   dp_event(w, EV_SNAPSHOT_ADOPTED, "generation=%" PRIu64, gen);
 *
 * Fields are "key=value" pairs separated by EVRING_SEP; keys are lowercase
 * [a-z0-9_]; values must not contain EVRING_SEP.
 */
#ifndef PG_EVENTS_H
#define PG_EVENTS_H

#include <stdbool.h>

#include "evring.h"

struct worker;
struct shm_map;

/* An event of worker w, into its ring (reader w->reader). */
bool dp_event(struct worker *w, enum evring_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* An event of the dataplane's main lcore (ring 0). */
bool dp_event_main(struct shm_map *shm, enum evring_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
