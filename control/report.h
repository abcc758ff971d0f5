/*
 * report.h - the answers of posternd to `status` and `stats`, in text and
 * JSON, computed from the shared memory region. Kept apart from the daemon
 * so tests can run them over a fabricated region.
 */
#ifndef PG_REPORT_H
#define PG_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shm.h"

/* A growing output buffer; on allocation failure it keeps what it had. */
struct ctl_buf {
	char *p;
	size_t len, cap;
	bool oom;
};

void ctl_buf_printf(struct ctl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* s as a JSON string, quotes included (RFC 8259 §7 escaping). */
void ctl_buf_json_str(struct ctl_buf *b, const char *s, size_t maxlen);
void ctl_buf_free(struct ctl_buf *b);

/* What status says about posternd itself. */
struct ctl_daemon_info {
	pid_t pid;
	uint64_t start_ns; /* CLOCK_MONOTONIC */
	uint64_t now_ns;   /* CLOCK_MONOTONIC, also used for dataplane ages */
	const char *config_dir;
};

/* absent/starting/ready/stopping/failed, or "dead" for a vanished pid. */
const char *ctl_dp_state_name(const struct shm_region *rg);

/*
 * Append the status report. Returns true when the dataplane is ready and
 * every worker runs the published generation (posternctl exit 0, else 4).
 */
bool ctl_status_report(struct ctl_buf *b, const struct shm_region *rg,
                       const struct ctl_daemon_info *d, bool json);

/* Counters; text hides zero counters unless all. JSON lists every counter. */
void ctl_stats_report(struct ctl_buf *b, const struct shm_region *rg, bool all, bool json);

#endif
