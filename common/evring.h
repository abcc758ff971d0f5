/*
 * evring.h - the dataplane → control event rings (DESIGN.md, "Control plane
 * and shared memory"): one single-producer/single-consumer ring of
 * fixed-size records per dataplane thread, living in the shared memory
 * region. The producer (a worker lcore, or the dataplane's main lcore) never
 * blocks and never waits: when the ring is full the record is dropped and
 * counted; posternd drains the rings into its JSON log and reports drops.
 *
 * Protocol: head and tail are free-running 64-bit counters (index = counter
 * & (capacity - 1)), head written by the producer only, tail by the consumer
 * only. The producer fills record[head], then release-stores head + 1; the
 * consumer acquire-loads head, copies record[tail] out, then release-stores
 * tail + 1, and the producer acquire-loads tail before reusing a slot. So a
 * record is never read while written nor overwritten while read, and
 * head - tail <= capacity always holds; a consumer that sees more than that
 * is looking at a corrupt ring and resynchronises.
 *
 * The ring itself does not look into its records: the command channel
 * (cmdring.h) carries records of another layout, of the same size, on
 * rings of this kind.
 *
 * Payload: text of fields "key=value" separated by EVRING_SEP (ASCII unit
 * separator), e.g. "generation=5" EVRING_SEP "reason=bad checksum". posternd
 * turns them into JSON members, escaping everything: a producer can never
 * make it write an invalid log line.
 */
#ifndef PG_EVRING_H
#define PG_EVRING_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EVRING_RECORD_SIZE 1024 /* 1024 since shm ABI 4: a delivery record with its TLS evidence */
#define EVRING_TEXT_MAX (EVRING_RECORD_SIZE - 16)
#define EVRING_SEP "\x1f"
#define EVRING_SEP_CHAR '\x1f'
#define EVRING_CACHE_LINE 64

/* Record flags. */
#define EVRING_F_TRUNCATED 0x01 /* the payload did not fit EVRING_TEXT_MAX */

enum evring_level {
	EVRING_DEBUG = 0,
	EVRING_INFO = 1,
	EVRING_NOTICE = 2,
	EVRING_WARNING = 3,
	EVRING_ERROR = 4,
	EVRING_LEVEL__COUNT
};

/*
 * Every event the dataplane can report: constant, log name, level. The
 * names are the "event" field of the log; append only (the number travels
 * in shared memory and posternd may be older or newer than postern-dp).
 */
#define EVRING_KINDS(X)                                                                            \
	X(WORKER_STARTED, "worker started", EVRING_INFO)                                           \
	X(WORKER_STOPPED, "worker stopped", EVRING_INFO)                                           \
	X(SNAPSHOT_ADOPTED, "snapshot adopted", EVRING_INFO)                                       \
	X(SNAPSHOT_REFUSED, "snapshot refused", EVRING_ERROR)                                      \
	X(PORT_LINK, "port link", EVRING_INFO)                                                     \
	X(DATAPLANE_READY, "dataplane ready", EVRING_NOTICE)                                       \
	X(RESTART_NEEDED, "restart needed", EVRING_WARNING)                                        \
	X(DIAG_CLIENT_OK, "diag client run ok", EVRING_NOTICE)                                     \
	X(DIAG_CLIENT_FAILED, "diag client run failed", EVRING_WARNING)                            \
	X(SMTP_MESSAGE_ACCEPTED, "smtp message accepted", EVRING_INFO)                             \
	X(SPOOL_FAILED, "spool failed", EVRING_ERROR)                                              \
	X(DELIVERY_ATTEMPT, "delivery attempt", EVRING_INFO)                                       \
	X(SMTP_TLS_FAILED, "smtp tls handshake failed", EVRING_NOTICE)                             \
	X(SMTP_LOOP_REFUSED, "smtp mail loop refused", EVRING_WARNING)                             \
	X(ADDRESS_DUPLICATE, "ipv6 address duplicate", EVRING_ERROR)

enum evring_kind {
#define EVRING_KIND_ENUM(name, text, level) EV_##name,
	EVRING_KINDS(EVRING_KIND_ENUM)
#undef EVRING_KIND_ENUM
	    EV__COUNT
};

struct evring_record {
	uint64_t ts_ns; /* CLOCK_REALTIME of the event */
	uint16_t kind;  /* enum evring_kind */
	uint8_t level;  /* enum evring_level */
	uint8_t flags;  /* EVRING_F_* */
	uint16_t len;   /* bytes of text, without the NUL */
	uint16_t reserved;
	char text[EVRING_TEXT_MAX]; /* NUL-terminated fields, see above */
};

_Static_assert(sizeof(struct evring_record) == EVRING_RECORD_SIZE, "record size");

struct evring {
	/* producer's line */
	_Atomic uint64_t head;    /* records ever committed */
	_Atomic uint64_t dropped; /* records dropped because the ring was full */
	/* consumer's line */
	_Atomic uint64_t tail __attribute__((aligned(EVRING_CACHE_LINE))); /* records consumed */
	_Atomic uint64_t dropped_seen; /* drops already reported */
	/* read-only after evring_init */
	uint32_t capacity __attribute__((aligned(EVRING_CACHE_LINE))); /* power of two */
	struct evring_record rec[] __attribute__((aligned(EVRING_CACHE_LINE)));
};

/* Bytes one ring of capacity records takes (header + records). */
size_t evring_bytes(uint32_t capacity);
/* Reset a ring to empty; capacity must be a power of two >= 2. */
void evring_init(struct evring *r, uint32_t capacity);

/* ---- producer side (one thread per ring) ---- */

/* The record to fill, or NULL when full (the drop is counted). */
struct evring_record *evring_reserve(struct evring *r);
/* Publish the record evring_reserve returned. */
void evring_commit(struct evring *r);
/* Records the producer can still commit before the ring is full. */
uint32_t evring_space(struct evring *r);
/*
 * Format "key=value" fields (printf style) into a new record and commit it.
 * true if committed, false if dropped. Not for the fast path: rare events.
 */
bool evring_vprintf(struct evring *r, uint16_t kind, uint8_t level, uint64_t ts_ns, const char *fmt,
                    va_list ap) __attribute__((format(printf, 5, 0)));
bool evring_printf(struct evring *r, uint16_t kind, uint8_t level, uint64_t ts_ns, const char *fmt,
                   ...) __attribute__((format(printf, 5, 6)));

/* ---- consumer side (one thread per ring) ---- */

enum evring_pop_result {
	EVRING_EMPTY = 0,
	EVRING_RECORD = 1,  /* *out holds the next record, text NUL-terminated */
	EVRING_CORRUPT = 2, /* head/tail impossible: skipped to head, *lost set */
};

/*
 * Take the next record. The copy in *out is sanitised (len and NUL
 * bounded), since another process wrote it.
 */
enum evring_pop_result evring_pop(struct evring *r, struct evring_record *out, uint64_t *lost);
/*
 * The same without interpreting the record: its EVRING_RECORD_SIZE bytes
 * are copied to out as written. For rings carrying another record format
 * of the same size (the command channel, cmdring.h); the caller sanitises.
 */
enum evring_pop_result evring_pop_raw(struct evring *r, void *out, uint64_t *lost);
/* Nothing to pop (a cheap check: one load of each index). */
bool evring_empty(struct evring *r);
/*
 * Drops not reported yet: returns them and marks them reported. A counter
 * that went backwards (a new ring) is taken as the new baseline.
 */
uint64_t evring_take_dropped(struct evring *r);

/* Names for the log; "unknown" out of range. */
const char *evring_kind_name(unsigned kind);
const char *evring_level_name(unsigned level);
/* The default level of a kind (EVRING_INFO out of range). */
uint8_t evring_kind_level(unsigned kind);

/* CLOCK_REALTIME in ns. */
uint64_t evring_realtime_ns(void);

#endif
