/*
 * evring.c - the single-producer/single-consumer event rings between the
 * dataplane and posternd. The memory-ordering argument is in evring.h; each
 * function below is one side of it. No locks, no waiting, no DPDK.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "evring.h"

static const char *const evring_kind_names[EV__COUNT] = {
#define EVRING_KIND_NAME(name, text, level) text,
    EVRING_KINDS(EVRING_KIND_NAME)
#undef EVRING_KIND_NAME
};

static const uint8_t evring_kind_levels[EV__COUNT] = {
#define EVRING_KIND_LEVEL(name, text, level) level,
    EVRING_KINDS(EVRING_KIND_LEVEL)
#undef EVRING_KIND_LEVEL
};

static const char *const evring_level_names[EVRING_LEVEL__COUNT] = {
    [EVRING_DEBUG] = "debug",     [EVRING_INFO] = "info",   [EVRING_NOTICE] = "notice",
    [EVRING_WARNING] = "warning", [EVRING_ERROR] = "error",
};

const char *evring_kind_name(unsigned kind)
{
	return kind < EV__COUNT ? evring_kind_names[kind] : "unknown";
}

const char *evring_level_name(unsigned level)
{
	return level < EVRING_LEVEL__COUNT ? evring_level_names[level] : "unknown";
}

uint8_t evring_kind_level(unsigned kind)
{
	return kind < EV__COUNT ? evring_kind_levels[kind] : EVRING_INFO;
}

uint64_t evring_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

size_t evring_bytes(uint32_t capacity)
{
	return sizeof(struct evring) + (size_t)capacity * sizeof(struct evring_record);
}

void evring_init(struct evring *r, uint32_t capacity)
{
	atomic_store(&r->head, 0);
	atomic_store(&r->dropped, 0);
	atomic_store(&r->tail, 0);
	atomic_store(&r->dropped_seen, 0);
	r->capacity = capacity;
}

struct evring_record *evring_reserve(struct evring *r)
{
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	/* acquire: the consumer's copy of the slot is complete before we reuse it */
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);

	if (head - tail >= r->capacity) {
		/* single writer: a plain increment, no read-modify-write needed */
		atomic_store_explicit(&r->dropped,
		                      atomic_load_explicit(&r->dropped, memory_order_relaxed) + 1,
		                      memory_order_relaxed);
		return NULL;
	}
	return &r->rec[head & (r->capacity - 1)];
}

void evring_commit(struct evring *r)
{
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);

	/* release: the record's bytes are visible before the new head */
	atomic_store_explicit(&r->head, head + 1, memory_order_release);
}

uint32_t evring_space(struct evring *r)
{
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);

	return head - tail >= r->capacity ? 0 : (uint32_t)(r->capacity - (head - tail));
}

bool evring_vprintf(struct evring *r, uint16_t kind, uint8_t level, uint64_t ts_ns, const char *fmt,
                    va_list ap)
{
	struct evring_record *rec = evring_reserve(r);
	int n;

	if (rec == NULL)
		return false;
	rec->ts_ns = ts_ns;
	rec->kind = kind;
	rec->level = level;
	rec->flags = 0;
	rec->reserved = 0;
	n = vsnprintf(rec->text, sizeof(rec->text), fmt, ap);
	if (n < 0)
		n = 0, rec->text[0] = '\0';
	if ((size_t)n >= sizeof(rec->text)) {
		rec->flags |= EVRING_F_TRUNCATED;
		n = (int)sizeof(rec->text) - 1;
	}
	rec->len = (uint16_t)n;
	evring_commit(r);
	return true;
}

bool evring_printf(struct evring *r, uint16_t kind, uint8_t level, uint64_t ts_ns, const char *fmt,
                   ...)
{
	va_list ap;
	bool ok;

	va_start(ap, fmt);
	ok = evring_vprintf(r, kind, level, ts_ns, fmt, ap);
	va_end(ap);
	return ok;
}

bool evring_empty(struct evring *r)
{
	return atomic_load_explicit(&r->head, memory_order_acquire) ==
	       atomic_load_explicit(&r->tail, memory_order_relaxed);
}

enum evring_pop_result evring_pop_raw(struct evring *r, void *out, uint64_t *lost)
{
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	/* acquire: the record's bytes are visible once we see its head */
	uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	uint32_t cap = r->capacity;

	if (head == tail)
		return EVRING_EMPTY;
	if (cap == 0 || (cap & (cap - 1)) != 0 || head - tail > cap) {
		/* impossible for a sane producer: skip what cannot be trusted */
		if (lost != NULL)
			*lost = head - tail;
		atomic_store_explicit(&r->tail, head, memory_order_release);
		return EVRING_CORRUPT;
	}
	memcpy(out, &r->rec[tail & (cap - 1)], EVRING_RECORD_SIZE);
	/* release: our copy is complete before the producer may reuse the slot */
	atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
	return EVRING_RECORD;
}

enum evring_pop_result evring_pop(struct evring *r, struct evring_record *out, uint64_t *lost)
{
	enum evring_pop_result res = evring_pop_raw(r, out, lost);

	if (res != EVRING_RECORD)
		return res;
	if (out->len >= sizeof(out->text))
		out->len = sizeof(out->text) - 1;
	out->text[out->len] = '\0';
	out->len = (uint16_t)strlen(out->text);
	return EVRING_RECORD;
}

uint64_t evring_take_dropped(struct evring *r)
{
	uint64_t d = atomic_load_explicit(&r->dropped, memory_order_relaxed);
	uint64_t seen = atomic_load_explicit(&r->dropped_seen, memory_order_relaxed);

	atomic_store_explicit(&r->dropped_seen, d, memory_order_relaxed);
	return d > seen ? d - seen : 0;
}
