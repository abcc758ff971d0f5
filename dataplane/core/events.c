/*
 * events.c - dp_event: format an event into the calling thread's ring in
 * shared memory (events.h). The ring is the thread's alone, so there is
 * nothing to lock; the level comes from the kind table in evring.h.
 */
#include <stdarg.h>

#include "events.h"
#include "shm.h"
#include "worker.h"

static bool dp_event_ring(struct shm_map *shm, unsigned ring, enum evring_kind kind,
			  const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

static bool dp_event_ring(struct shm_map *shm, unsigned ring, enum evring_kind kind,
			  const char *fmt, va_list ap)
{
	struct evring *r;

	if (shm == NULL || shm->region == NULL)
		return false; /* detached (unit tests without a region) */
	r = shm_evring(shm->region, ring);
	if (r == NULL)
		return false;
	return evring_vprintf(r, (uint16_t)kind, evring_kind_level(kind), evring_realtime_ns(),
			      fmt, ap);
}

bool dp_event(struct worker *w, enum evring_kind kind, const char *fmt, ...)
{
	va_list ap;
	bool ok;

	va_start(ap, fmt);
	ok = dp_event_ring(w->shm, w->reader, kind, fmt, ap);
	va_end(ap);
	return ok;
}

bool dp_event_main(struct shm_map *shm, enum evring_kind kind, const char *fmt, ...)
{
	va_list ap;
	bool ok;

	va_start(ap, fmt);
	ok = dp_event_ring(shm, 0, kind, fmt, ap);
	va_end(ap);
	return ok;
}
