/*
 * evlog.h - posternd's structured log: one JSON object per line in
 * log_file, from the dataplane's event rings (drained every 50 ms) and from
 * posternd's own events (configuration published or refused, dataplane
 * attached or lost). SIGUSR1 reopens the file, for logrotate.
 *
 *   {"ts":"2025-01-31T12:00:00.123Z","source":"worker 0","level":"info",
 *    "event":"snapshot adopted","generation":5}
 *
 * Fields after "event" come from "key=value" pairs (evring.h): values that
 * are small decimal integers become JSON numbers, the rest JSON strings.
 */
#ifndef PG_EVLOG_H
#define PG_EVLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "evring.h"
#include "report.h"
#include "shm.h"
#include "tlsstats.h"

#define EVLOG_DRAIN_NS (50 * 1000000ull) /* posternd drains the rings this often */

struct evlog {
	char path[CONF_LOG_PATH_MAX];
	int fd;       /* -1: no file (events are counted as lost) */
	long gid;     /* group of the file (control_group), -1 none */
	bool failing; /* the last write failed; said once on stderr */
	uint64_t lines, write_errors;
	/* what evlog_watch_dataplane saw last */
	int32_t dp_pid;
	char dp_state[16];
	/*
	 * Where evlog_drain counts the "delivery attempt" records, by
	 * recipient domain and TLS outcome; NULL: not counted. Set by the
	 * caller after evlog_open (which clears it).
	 */
	struct tlsstats *tls;
};

/*
 * Open (create, mode 0640, parent directories 0755) path for appending.
 * gid >= 0: the file's group (so control_group may read it). PG_OK, or
 * PG_ERROR with the reason in err; l is usable (fd -1) either way.
 */
int evlog_open(struct evlog *l, const char *path, long gid, char *err, size_t errlen);
/* Reopen the same path (after a rotation); on failure the old file stays. */
int evlog_reopen(struct evlog *l, char *err, size_t errlen);
void evlog_close(struct evlog *l);
/* Create the missing parent directories of path (0755); -1 with errno. */
int evlog_mkdir_parents(const char *path);

/*
 * One event of posternd itself. fmt gives the fields, "key=value" pairs
 * separated by EVRING_SEP; NULL for none.
 */
void evlog_event(struct evlog *l, uint8_t level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * Drain every event ring of the region into the log, with an "events
 * dropped" line per ring that dropped records since the last call, and log
 * the dataplane appearing ("dataplane attached"), stopping or dying
 * ("dataplane lost") since the last call; count the delivery attempts into
 * l->tls (whether or not the log file can be written). Returns the records
 * read.
 */
unsigned evlog_drain(struct evlog *l, struct shm_region *rg);

/* ---- pieces, for posternctl and the tests ---- */

/* One complete line, "\n" included; ts_ns is CLOCK_REALTIME. */
void evlog_render(struct ctl_buf *b, uint64_t ts_ns, const char *source, const char *level,
                  const char *event, const char *fields, bool truncated);
/* The "source" of ring r: "dataplane" for 0, "worker N" for 1 + N. */
void evlog_ring_source(unsigned r, char *buf, size_t len);
/* RFC 3339 UTC with milliseconds: 2025-01-31T12:00:00.123Z */
void evlog_timestamp(uint64_t ts_ns, char *buf, size_t len);
/*
 * A log line for people: "TS SOURCE LEVEL EVENT key=value ...". false if
 * the line is not a flat JSON object (out untouched then).
 */
bool evlog_line_text(const char *line, struct ctl_buf *out);

#endif
