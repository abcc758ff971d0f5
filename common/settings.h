/*
 * settings.h - postern.conf's scalar keys, each declared once: name, type,
 * default, range and what it does. From this one line
 *   - posternd parses and range-checks the key (control/conf.c builds its
 *     key table from it) and names file and line on a bad value;
 *   - the snapshot carries its value in the settings section (snap_format.h
 *     SNAP_SEC_SETTINGS), checked against the same range by snap_validate;
 *   - the consumer in the dataplane reads it where it needs it with
 *     setting_u64(h, SET_<name>), in the unit it was declared in; a
 *     snapshot from before the key gives the default.
 * Adding a scalar key is one line here, its consumer and its test. Keys
 * with structure (lists, networks, files, next hops) keep their own parsers
 * and snapshot sections.
 *
 * The X-macro's order is the ABI: ids are positions, append only (a
 * reader skips ids it does not know).
 */
#ifndef PG_SETTINGS_H
#define PG_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

struct snap_header;

/* How a value is written in postern.conf and stored (always a uint64_t). */
enum setting_type {
	SETTING_UINT,     /* a decimal integer */
	SETTING_SIZE,     /* bytes, with an optional k, M or G */
	SETTING_TIME_MS,  /* a time (us ms s m h d w, bare = seconds), whole ms; stored in ns */
	SETTING_LIFETIME, /* a time in whole seconds, a unit required but for 0; stored in ns */
	SETTING_BOOL,     /* yes or no; stored as 1 or 0 */
};

#define SETTING_MS UINT64_C(1000000)
#define SETTING_S UINT64_C(1000000000)

/*
 * X(name, type, default as written, default value, min, max, doc)
 * Postfix's names and defaults where Postfix has the setting.
 */
#define PG_SETTINGS(X)                                                                             \
	X(smtp_max_sessions, SETTING_UINT, "1000", 1000, 1, 1u << 20,                              \
	  "SMTP sessions per worker; beyond, 421 4.3.2 at the greeting")                           \
	X(message_size_limit, SETTING_SIZE, "10240000", 10240000, 0, UINT64_C(1) << 36,            \
	  "bytes (0 = no limit), announced with SIZE")                                             \
	X(smtpd_recipient_limit, SETTING_UINT, "1000", 1000, 1, 100000,                            \
	  "recipients per message (452 4.5.3 beyond)")                                             \
	X(hopcount_limit, SETTING_UINT, "50", 50, 1, 1000,                                         \
	  "Received: fields a message may carry, ours included (554 5.4.6 beyond)")                \
	X(smtp_destination_concurrency_limit, SETTING_UINT, "20", 20, 1, 1000,                     \
	  "outbound connections per next hop, per worker")                                         \
	X(smtp_connect_timeout, SETTING_TIME_MS, "30s", 30 * SETTING_S, 1 * SETTING_S,             \
	  600 * SETTING_S, "to complete the TCP connection to a next hop")                         \
	X(smtp_connection_cache_time_limit, SETTING_TIME_MS, "2s", 2 * SETTING_S, 0,               \
	  300 * SETTING_S, "an idle outbound connection is kept this long for the next message")   \
	X(maximal_queue_lifetime, SETTING_LIFETIME, "5d", 5 * 86400 * SETTING_S, 0,                \
	  365 * 86400 * SETTING_S, "a recipient still deferred after this long is bounced")

enum setting_id {
#define SETTING_ENUM(name, type, text, def, min, max, doc) SET_##name,
	PG_SETTINGS(SETTING_ENUM)
#undef SETTING_ENUM
	    SET__COUNT
};

struct setting_def {
	const char *name;
	enum setting_type type;
	const char *default_text;
	uint64_t default_value;
	uint64_t min, max;
	const char *doc;
};

/* The table, indexed by enum setting_id. */
extern const struct setting_def setting_defs[SET__COUNT];

/*
 * The value of a key in a validated snapshot, or its default when the
 * snapshot has none (an older posternd) or h is NULL.
 */
uint64_t setting_u64(const struct snap_header *h, enum setting_id id);

/* The id of a key by name, or -1. */
int setting_find(const char *name);

#endif
