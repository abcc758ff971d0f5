/*
 * outbound.h - the delivering half of the relay (issue 5): per worker, a
 * scheduler that walks the worker's spool queue for messages that are due,
 * routes each recipient through the adopted snapshot's transport table,
 * and runs the SMTP client engine (smtp/smtp_client.h) over connections of
 * the userspace TCP stack (net/tcp.h) to the next hops.
 *
 * Seams with the worker:
 *   adoption  outbound_adopt(): delivery settings (SNAP_SEC_DELIVERY),
 *             myhostname for EHLO and the DSNs
 *   loop      outbound_poll() in the completion step, after inbound_poll()
 *   commands  outbound_flush(), outbound_msg_delete(), outbound_msg_info()
 *             for `posternctl queue` (core/cmd.c)
 *   shutdown  outbound_destroy() before tcp_stack_destroy()
 *
 * Decisions:
 * - A destination is one next-hop address and port ("[198.19.0.2]:25").
 *   Jobs (a message's recipients routed to the same next-hop list) wait on
 *   the destination of the list entry they are at. At most
 *   smtp_destination_concurrency_limit connections per destination per
 *   worker; an idle connection is kept for smtp_connection_cache_time_limit
 *   and reused for the next job (RFC 5321 §4.1.1.5 RSET between messages).
 * - Several next hops are tried in order when a whole job fails for a
 *   reason of the connection (TCP refused or timed out, greeting or EHLO
 *   4xx/5xx, lost connection before any recipient got an answer), like
 *   Postfix trying the next MX host. Replies to MAIL, RCPT or the data
 *   are the destination's answer and are final for this attempt.
 * - Per recipient: 2xx delivered; 5xx bounced at once; 4xx deferred to the
 *   next slot of delivery_retry_schedule, or bounced once the message is
 *   older than maximal_queue_lifetime (4.4.7). A next hop that needs DNS
 *   (a host name, or no transport entry) defers with 4.4.3: there is no
 *   resolver yet.
 * - Bounces are DSNs (RFC 3464, dsn.h) to the envelope sender, written to
 *   the spool and committed before the recipients they report on are
 *   marked done, so a crash in between gives a duplicate, never a loss.
 *   A message from the null sender is never bounced (RFC 5321 §6.1,
 *   §4.5.5): its failure is logged and the message dropped.
 * - Marking a recipient done, and the retry time, are spool records made
 *   durable with the next group commit: a crash can repeat a delivery
 *   (at least once), never skip one.
 */
#ifndef PG_RELAY_OUTBOUND_H
#define PG_RELAY_OUTBOUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct worker;
struct snap_header;
struct spool_msg;

/* Take the delivery settings of a validated snapshot. */
void outbound_adopt(struct worker *w, const struct snap_header *h);

/* The loop's delivery step. Returns the work done (0 = idle). */
unsigned outbound_poll(struct worker *w);

/* Connections and reads in flight: the loop should not sleep long. */
bool outbound_busy(const struct worker *w);

/* Abort every connection (no QUIT) and free; the spool keeps the queue. */
void outbound_destroy(struct worker *w);

/*
 * `posternctl queue flush [ID]`: make m (NULL: every queued message) due
 * now and wake the scheduler. Held messages stay held. Returns the number
 * of messages made due.
 */
unsigned outbound_flush(struct worker *w, struct spool_msg *m);

/*
 * `posternctl queue delete ID`: PG_OK - gone; PG_AGAIN - a delivery
 * attempt is running: the message is deleted when it ends (recipients it
 * delivers meanwhile stay delivered); PG_ERROR - the spool refused.
 */
int outbound_msg_delete(struct worker *w, struct spool_msg *m);

/* What the scheduler knows of a queued message, for `queue list|show`. */
struct outbound_msg_info {
	bool active;            /* a delivery attempt is running now */
	bool delete_pending;    /* deleted; waits for the attempt to end */
	const char *last_reply; /* the last deferral's reason, "" if none yet */
};
void outbound_msg_info(const struct worker *w, const struct spool_msg *m,
                       struct outbound_msg_info *out);

/*
 * `posternctl dns lookup|flush` (common/cmdring.h CMD_DNS): worker 0 asks
 * the resolver and answers PENDING until the answer came; the others add
 * nothing.
 */
struct cmd_dns_req;
struct cmdring_reply;
void outbound_dns_cmd(struct worker *w, const struct cmd_dns_req *req, struct cmdring_reply *rp);

/* Introspection (tests). */
uint32_t outbound_connections(const struct worker *w);
uint32_t outbound_active_messages(const struct worker *w);

#endif
