/*
 * inbound.h - the receiving half of the relay (issue 5): per worker, an SMTP
 * listener whose sessions run the protocol engine (smtp/smtp_server.h) over
 * the userspace TCP stack (net/tcp.h), decide relay access from the adopted
 * snapshot (common/policy_lookup.h) and make every accepted message durable
 * in the worker's spool (spool/spool.h) before the 250 goes out.
 *
 * Seams with the worker:
 *   start-up  inbound_spool_open(), blocking, before the lcores run (main.c)
 *   adoption  inbound_adopt(): smtp_service on/off, port, engine limits
 *   loop      inbound_poll() in the completion step (spool completions,
 *             sessions parked on the spool, counters); inbound_busy() keeps
 *             the loop from sleeping long while spool I/O is in flight
 *   shutdown  inbound_destroy() before tcp_stack_destroy(), spool_close() after
 *
 * Decisions:
 * - Relay access (never an open relay): RCPT is accepted when the client
 *   is in mynetworks or the recipient's domain is in relay_domains, else
 *   "554 5.7.1 <rcpt>: Relay access denied" (Postfix
 *   reject_unauth_destination with relay_domains_reject_code = 554).
 *   Then a recipient whose domain is in smtpd_tls_required_recipients gets
 *   "530 5.7.0 Must issue a STARTTLS command first" in a plaintext session
 *   (or one below smtpd_tls_mandatory_protocols); the other recipients of
 *   the transaction are not affected.
 *   Without an adopted snapshot: 451 4.3.5 (Postfix's "Server configuration
 *   error"), never an accept.
 * - The spool record of a message: the envelope's sender and recipients,
 *   and as params the ESMTP parameters the delivery side needs, as text
 *   (INBOUND_PARAMS_* below). The body is the engine's exact byte stream,
 *   its Received: header first.
 * - A session that goes away while its message is being committed forgets
 *   the commit callback (spool_msg_forget_cb): the message stays queued
 *   (at-least-once, as every MTA: the client saw no 250 and will retry).
 * - Over smtp_max_sessions sessions on this worker, a new connection gets
 *   "421 4.3.2 ... Service not available" and is closed (DESIGN.md,
 *   backpressure before exhaustion).
 */
#ifndef PG_RELAY_INBOUND_H
#define PG_RELAY_INBOUND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct worker;
struct snap_header;

/*
 * The params of a spooled envelope, one line per item, LF-terminated:
 *   "M BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=xtext\n"  (only what was given;
 *                                                      "M\n" when nothing)
 *   "C 198.18.0.2\n"                                   the submitting client's
 *                                                      address (since ABI 2.3's
 *                                                      sender floors: client
 *                                                      networks of
 *                                                      sender_tls_policy)
 *   "R NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;xtext\n"    one per recipient, in
 *                                                      the envelope's order
 *   "O provider.example\n"                             a bounce (DSN) only:
 *                                                      the domain of the
 *                                                      original's sender,
 *                                                      whose floor the
 *                                                      bounce keeps (it
 *                                                      quotes the original)
 * Values are as the client sent them (xtext still encoded, RFC 3461). A
 * reader skips the lines of a kind it does not know (older dataplanes
 * ignore C); a record without a C line has no known client.
 */
#define INBOUND_PARAMS_MAIL 'M'
#define INBOUND_PARAMS_CLIENT 'C'
#define INBOUND_PARAMS_RCPT 'R'
#define INBOUND_PARAMS_ORIGIN 'O'

/* How long a closing session may take to hand its last reply to TCP. */
#define INBOUND_LINGER_NS (30ull * 1000 * 1000 * 1000)

/*
 * Open the worker's spool under dir (dir/w<id>/), replaying what is there.
 * Blocking: call before the worker's loop runs. iowq_cpus (cpu_set_t, may
 * be NULL) is where io_uring's kernel workers - the fdatasyncs - run.
 * PG_OK with w->spool set, or PG_ERROR with the reason in err.
 */
int inbound_spool_open(struct worker *w, const char *dir, const void *iowq_cpus,
                       size_t iowq_cpus_size, char *err, size_t errlen);

/*
 * Take the SMTP settings of a validated snapshot (SNAP_SEC_SMTP): listen
 * on smtp_listen_port on every address of the worker when smtp_service is
 * on and the worker has a spool, stop listening otherwise (sessions in
 * progress finish). New sessions get the new limits.
 */
void inbound_adopt(struct worker *w, const struct snap_header *h);

/* The loop's completion step. Returns the work done (0 = idle). */
unsigned inbound_poll(struct worker *w);
/* Spool I/O in flight: the loop should not sleep long. */
bool inbound_busy(const struct worker *w);

/* Abort every session (no reply), stop listening, free. The spool stays. */
void inbound_destroy(struct worker *w);

/* Introspection (tests, diagnostics). */
bool inbound_listening(const struct worker *w);
uint32_t inbound_sessions(const struct worker *w);
/* Sessions waiting for the spool: room to write, or a commit. */
uint32_t inbound_sessions_on_spool(const struct worker *w);

/* Tests: a fixed clock for the Received: date (NULL = time(NULL)). */
void inbound_set_clock(struct worker *w, time_t (*now)(void));

#endif
