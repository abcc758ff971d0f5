/*
 * report.h - the answers of posternd to `status` and `stats`, computed from
 * the shared memory region, and to `policy list|show|test` and `transport
 * test`, computed from the published snapshot; in text and JSON. Kept apart
 * from the daemon so tests can run them over a fabricated region or blob.
 */
#ifndef PG_REPORT_H
#define PG_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "addr.h"
#include "policy_lookup.h"
#include "shm.h"
#include "snap_format.h"
#include "tlsstats.h"

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

/*
 * Counters; text hides zero counters unless all. JSON lists every counter.
 * Then the deliveries by TLS outcome per domain of tls (NULL: none), in
 * text a second table after an empty line (`stats --watch` reads the first
 * table only), in JSON the members "tls_outcomes" and "tls_outcomes_skipped".
 */
void ctl_stats_report(struct ctl_buf *b, const struct shm_region *rg, const struct tlsstats *tls,
                      bool all, bool json);

/*
 * The TLS policy and transport answers. h is a validated snapshot, dir the
 * configuration directory (for FILE:LINE). Names are checked by the caller.
 */
void ctl_policy_list(struct ctl_buf *b, const struct snap_header *h, const char *dir, bool json);
/* PG_OK, or PG_DECLINED (message appended) when KEY has no entry. */
int ctl_policy_show(struct ctl_buf *b, const struct snap_header *h, const char *dir,
                    const char *key, bool json);
/* policy list --sender: every sender floor of the live snapshot, in file order. */
void ctl_sender_list(struct ctl_buf *b, const struct snap_header *h, const char *dir, bool json);

/* policy test --sender ADDRESS [--client IP]: the sender and its floor (sender_tls_lookup). */
struct ctl_sender_query {
	const char *address; /* as given; "" for the null sender */
	const char *domain;  /* its domain, lowercased; "" for the null sender */
	bool has_client;
	struct pg_addr client; /* either family */
	struct sender_tls_result r;
};

/*
 * Which entry applies to a delivery to domain, and why. nexthop NULL: the
 * next hops of the transport table (or the domain's MX hosts) are used.
 * With q (--sender), also the sender's floor and, per next hop, the
 * effective level and which rule decided (tls_decide_combine).
 */
void ctl_policy_test(struct ctl_buf *b, const struct snap_header *h, const char *dir,
                     const char *domain, const char *nexthop, const struct ctl_sender_query *q,
                     bool json);
void ctl_transport_test(struct ctl_buf *b, const struct snap_header *h, const char *dir,
                        const char *domain, bool json);

/* SNAP_TLS_P_* as "TLSv1.2:TLSv1.3" (Postfix include-list syntax). */
void ctl_protocols_text(uint16_t mask, char *buf, size_t len);

/*
 * policy inbound CLIENT_IP [SENDER_DOMAIN] (inbound_report.c): whether the
 * client must use STARTTLS before MAIL FROM and why, with each of the three
 * checks (listener level, client network, sender domain) and the postern.conf
 * line it comes from. client_ip is of either family (an IPv6 client is
 * matched against the IPv6 networks); sender NULL = before MAIL FROM. Names
 * are checked by the caller.
 */
void ctl_policy_inbound(struct ctl_buf *b, const struct snap_header *h, const char *dir,
                        const struct pg_addr *client_ip, const char *sender, bool json);

#endif
