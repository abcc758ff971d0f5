/*
 * outbound_sess.c - one delivery session (outbound_private.h): the SMTP
 * client engine on a connection of the driver (conn.h), running its
 * destination's jobs one after the other. The engine's upcalls feed it
 * the message body from the spool and collect its replies; the driver's
 * events bring the connection's life: connected, TLS set up and done,
 * input taken (a job finished), timeouts, closed. The TLS policy is asked
 * at the two points where it decides: whether to send STARTTLS, and once
 * EHLO is done (or the handshake failed) - crypto/tls_decide.h.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_common.h>
#include <rte_log.h>

#include "core/counters.h"
#include "core/worker.h"
#include "outbound_private.h"
#include "policy_lookup.h"
#include "result.h"
#include "spool/spool.h"
#include "tls_stream.h"

static const char *const ob_sstate_names[OB_S_COUNT] = {
    [OB_S_CONNECTING] = "CONNECTING",
    [OB_S_BUSY] = "BUSY",
    [OB_S_IDLE] = "IDLE",
};

static void ob_sess_set_state(struct ob_sess *s, enum ob_sstate st)
{
	if (s->state == st)
		return;
	RTE_LOG(DEBUG, USER1, "worker %u: delivery session %p to %s:%u %s -> %s\n", s->ob->w->id,
	        (void *)s, s->d->name, s->d->port, ob_sstate_names[s->state], ob_sstate_names[st]);
	s->state = st;
}

static bool ob_testing(const struct ob_sess *s)
{
	return ob_tls_testing(&s->d->pol);
}

/* Under mode=testing, the level still enforced (a floor, or a strict destination). */
static uint8_t ob_enforced(const struct ob_sess *s)
{
	return ob_testing(s) ? s->d->enf.level : SNAP_TLS_NONE;
}

static void ob_sess_link(struct ob_dest *d, struct ob_sess *s)
{
	pg_list_add(&d->sessions, &s->link);
	d->nconn++;
}

static void ob_sess_unlink(struct ob_dest *d, struct ob_sess *s)
{
	pg_list_del(&s->link);
	d->nconn--;
}

/* ---- the body, chunk by chunk from the spool ---- */

static void ob_read_cb(struct spool_msg *m, uint32_t chunk, const void *data, size_t len,
                       int result, int err, void *owner)
{
	struct ob_read *rd = owner;
	struct ob_sess *s = rd->s;

	(void)m, (void)chunk;
	worker_free(rd->w, rd);
	if (s == NULL)
		return; /* the session went away meanwhile */
	s->rd = NULL;
	if (result == PG_OK && len > s->buf_cap) {
		uint8_t *nb = worker_alloc_buf(s->ob->w, len);

		if (nb == NULL) {
			result = PG_ERROR;
			err = ENOMEM;
		} else {
			worker_free(s->ob->w, s->buf);
			s->buf = nb;
			s->buf_cap = len;
		}
	}
	if (result != PG_OK) {
		s->read_err = err != 0 ? err : EIO;
		s->body = OB_B_FAILED;
	} else {
		if (len > 0)
			memcpy(s->buf, data, len);
		s->buf_len = len;
		s->body = OB_B_READY;
		s->chunk++;
	}
	conn_run(&s->conn);
}

static int ob_read_start(struct ob_sess *s)
{
	struct ob_read *rd = worker_alloc(s->ob->w, sizeof(*rd));
	int rc;

	if (rd == NULL)
		return PG_AGAIN;
	rd->s = s;
	rd->w = s->ob->w;
	rc = spool_read_chunk(s->ob->w->spool, s->job->om->m, s->chunk, ob_read_cb, rd);
	if (rc != PG_OK) {
		worker_free(s->ob->w, rd);
		return rc;
	}
	s->rd = rd;
	return PG_OK;
}

/* Forget a read in flight: it completes on its own. */
static void ob_read_detach(struct ob_sess *s)
{
	if (s->rd != NULL) {
		s->rd->s = NULL;
		s->rd = NULL;
	}
	s->body = OB_B_NONE;
}

void ob_sess_retry_read(struct ob_sess *s)
{
	if (s->body != OB_B_WAIT || s->job == NULL)
		return;
	s->body = OB_B_NONE;
	conn_run(&s->conn); /* body_read asks the spool again */
}

/* ---- the engine's upcalls ---- */

static int ob_body_read(struct smtp_client *c, const uint8_t **p, size_t *n, void *owner)
{
	struct ob_sess *s = owner;

	(void)c;
	switch (s->body) {
	case OB_B_FAILED:
		return PG_ERROR; /* a truncated message is never delivered */
	case OB_B_READING:
	case OB_B_WAIT:
		return PG_AGAIN;
	case OB_B_READY:
		s->body = OB_B_NONE;
		*p = s->buf;
		*n = s->buf_len;
		if (s->buf_len > 0)
			return PG_OK;
		break;
	case OB_B_NONE:
		break;
	}
	if (s->chunk >= spool_msg_nchunks(s->job->om->m))
		return PG_DONE;
	/* the spool's ring is full: the poll starts the read (ob_sess_retry_read) */
	s->body = ob_read_start(s) == PG_OK ? OB_B_READING : OB_B_WAIT;
	return PG_AGAIN;
}

static void ob_rcpt_result(struct smtp_client *c, uint32_t i, const struct smtp_client_reply *r,
                           void *owner)
{
	struct ob_sess *s = owner;
	struct ob_job *j = s->job;

	(void)c;
	if (j == NULL || i >= j->nrcpt)
		return;
	j->reply[i] = *r;
	j->got[i] = true;
}

static void ob_message_done(struct smtp_client *c, void *owner)
{
	struct ob_sess *s = owner;

	(void)c;
	s->job_done = true; /* the job is finished outside the engine: CONN_EV_INPUT */
}

/* STARTTLS got 220: the driver drops what followed it and starts the handshake. */
static void ob_starttls(struct smtp_client *c, void *owner)
{
	struct ob_sess *s = owner;

	(void)c;
	conn_starttls(&s->conn, s->ob->tls_ctx);
}

/* The decision for a handshake that failed (or timed out), why it did. */
static void ob_decide_failed(struct ob_sess *s, const char *why)
{
	struct tls_facts f = {
	    .level = s->d->pol.level,
	    .testing = ob_testing(s),
	    .enforced = ob_enforced(s),
	    .local_tls = s->ob->tls_ctx != NULL,
	    .offered = true,
	    .handshake = TLS_HS_FAILED,
	    .handshake_why = why,
	    .host = s->d->name,
	};

	tls_decide(&f, &s->tls);
	s->decided = true;
}

/*
 * EHLO is done (after TLS, if any): the TLS policy decides whether the
 * mail goes (tls_decide). Postfix's wording and codes: 4.7.4 when TLS did
 * not happen, 4.7.5 when the peer's certificate fails the level. Under
 * mode=testing the verdict is logged and counted, and the mail goes as the
 * weaker levels allow (TLS as established, else plaintext).
 */
static int ob_helo_done(struct smtp_client *c, const struct smtp_client_info *info,
                        struct smtp_client_reply *r, void *owner)
{
	struct ob_sess *s = owner;
	struct worker *w = s->ob->w;
	struct tls_facts f = {
	    .level = s->d->pol.level,
	    .testing = ob_testing(s),
	    .enforced = ob_enforced(s),
	    .enforced_cert_ok = s->enf_cert_ok,
	    .enforced_cert_why = s->enf_cert_why,
	    .local_tls = s->ob->tls_ctx != NULL,
	    .offered = info->starttls_offered,
	    .starttls_code = info->tls ? 0 : info->starttls_reply.code,
	    .starttls_text = info->starttls_reply.text,
	    .handshake = info->tls ? TLS_HS_OK : TLS_HS_NONE,
	    .cert_ok = s->cert_ok,
	    .cert_why = s->cert_why,
	    .host = s->d->name,
	};

	(void)c;
	tls_decide(&f, &s->tls);
	s->decided = true;
	if (s->tls.would_defer)
		WCOUNT(w, delivery_tls_would_defer);
	if (s->tls.action != TLS_DEFER)
		return PG_OK;
	WCOUNT(w, delivery_tls_policy_deferred);
	r->code = 451;
	snprintf(r->status, sizeof(r->status), "%s", s->tls.status);
	snprintf(r->text, sizeof(r->text), "%s", s->tls.why);
	return PG_DECLINED;
}

static const struct smtp_client_ops ob_smtp_ops = {
    .body_read = ob_body_read,
    .rcpt_result = ob_rcpt_result,
    .message_done = ob_message_done,
    .starttls = ob_starttls,
    .helo_done = ob_helo_done,
};

/* ---- jobs on the session ---- */

/* Start the next queued job of the destination on s. */
void ob_sess_take(struct ob_sess *s)
{
	struct ob_dest *d = s->d;
	struct ob_job *j = d->qhead;

	d->qhead = j->next;
	if (d->qhead == NULL)
		d->qtail = NULL;
	d->nqueued--;
	j->next = NULL;
	s->job = j;
	s->chunk = 0;
	s->body = OB_B_NONE;
	s->read_err = 0;
	s->job_done = false;
	ob_sess_set_state(s, OB_S_BUSY);
	if (s->messages++ > 0)
		WCOUNT(s->ob->w, delivery_connection_reuses);
	WCOUNT(s->ob->w, delivery_attempts);
	smtp_client_send(s->smtp, &j->env);
}

/* The job is over on this session: results, then the next job, idle or QUIT. */
static void ob_job_over(struct ob_sess *s)
{
	struct ob_job *j = s->job;
	struct worker *w = s->ob->w;
	uint64_t cache_ns = ob_setting(s->ob, SET_smtp_connection_cache_time_limit);

	s->job = NULL;
	s->job_done = false;
	ob_read_detach(s);
	ob_job_results(s->ob, s->d, s, j);
	if (conn_state(&s->conn) != CONN_S_OPEN)
		return;
	if (smtp_client_reusable(s->smtp) && s->d->qhead != NULL) {
		ob_sess_take(s);
		return;
	}
	if (!smtp_client_reusable(s->smtp) || cache_ns == 0) {
		smtp_client_quit(s->smtp); /* PG_DONE comes through the next run */
		return;
	}
	ob_sess_set_state(s, OB_S_IDLE);
	timer_arm(w->timers, &s->idle_timer, w->now_ns + cache_ns);
}

/* The connection cache's limit: an idle session says QUIT. */
static void ob_idle_timer(struct timer *t, void *owner)
{
	struct ob_sess *s = container_of(t, struct ob_sess, idle_timer);

	(void)owner;
	if (s->state != OB_S_IDLE)
		return;
	ob_sess_set_state(s, OB_S_BUSY); /* QUIT, then the close */
	smtp_client_quit(s->smtp);
	conn_run(&s->conn);
}

/* ---- the driver's events ---- */

static void ob_connected(struct ob_sess *s)
{
	struct outbound *ob = s->ob;
	struct ob_dest *d = s->d;
	struct smtp_client_config cfg = ob->ccfg;

	cfg.ops = &ob_smtp_ops;
	cfg.owner = s;
	s->starttls =
	    tls_decide_starttls(d->pol.level, ob_testing(s), ob_enforced(s), ob->tls_ctx != NULL,
	                        ob_tls_broken(ob, &d->addr, d->port));
	cfg.starttls = s->starttls;
	ob_sess_set_state(s, OB_S_BUSY);
	s->smtp = smtp_client_create(&cfg);
	if (s->smtp == NULL) {
		conn_close(&s->conn, true);
		return;
	}
	conn_attach(&s->conn, &conn_smtp_client, s->smtp);
	if (d->qhead == NULL) {
		smtp_client_quit(s->smtp); /* another connection took the jobs */
		return;
	}
	ob_sess_take(s);
}

/* The stream exists: the policy's versions, ciphers, SNI and trust store. */
static bool ob_tls_start(struct ob_sess *s)
{
	char why[200];

	if (tls_client_prepare(conn_ssl(&s->conn), &s->d->pol, s->d->name, why, sizeof(why)) !=
	    PG_OK) {
		conn_tls_fail(&s->conn, "%s", why);
		return false;
	}
	return true;
}

static void ob_tls_done(struct ob_sess *s)
{
	struct worker *w = s->ob->w;

	if (!conn_tls_on(&s->conn)) {
		WCOUNT(w, delivery_tls_failures);
		ob_decide_failed(s, conn_tls_why(&s->conn));
		smtp_client_tls_done(s->smtp, false);
		return;
	}
	WCOUNT(w, delivery_tls_handshakes);
	s->cert_ok = tls_client_check(conn_ssl(&s->conn), &s->d->pol, s->d->name, s->d->name,
	                              &s->peer, s->cert_why, sizeof(s->cert_why)) == PG_OK;
	/* mode=testing over an enforced level that checks the certificate: check it too */
	s->enf_cert_ok = true;
	if (ob_enforced(s) >= SNAP_TLS_FINGERPRINT) {
		struct tls_peer enf_peer;

		s->enf_cert_ok =
		    tls_client_check(conn_ssl(&s->conn), &s->d->enf, s->d->name, s->d->name,
		                     &enf_peer, s->enf_cert_why, sizeof(s->enf_cert_why)) == PG_OK;
	}
	smtp_client_tls_done(s->smtp, true); /* EHLO again, over TLS */
}

static void ob_sess_free(struct ob_sess *s)
{
	struct outbound *ob = s->ob;
	struct worker *w = ob->w;
	struct ob_dest *d = s->d;
	struct ob_job *j = s->job;

	timer_cancel(w->timers, &s->idle_timer);
	ob_read_detach(s);
	s->job = NULL;
	if (j != NULL)
		ob_job_results(ob, d, s, j); /* the engine gave every pending recipient a result */
	if (s->smtp != NULL)
		smtp_client_destroy(s->smtp);
	worker_free(w, s->buf);
	ob_sess_unlink(d, s);
	ob->nsess--;
	worker_free(w, s);
	ob_dispatch(ob, d); /* a slot is free */
}

/* The connection is gone: before SMTP its destination's jobs fail over or defer. */
static void ob_closed(struct ob_sess *s)
{
	struct outbound *ob = s->ob;
	struct ob_dest *d = s->d;
	const char *why;

	if (s->state != OB_S_CONNECTING) {
		ob_sess_free(s);
		return;
	}
	switch (conn_end(&s->conn)) {
	case CONN_END_REFUSED:
		why = "Connection refused";
		break;
	case CONN_END_TIMEOUT:
		why = "Connection timed out";
		break;
	case CONN_END_CLOSED:
		why = "Connection closed";
		break;
	default:
		why = "Connection reset by peer";
		break;
	}
	WCOUNT(ob->w, delivery_connect_failures);
	ob_sess_unlink(d, s);
	ob->nsess--;
	worker_free(ob->w, s);
	ob_dest_fail_queue(ob, d, why);
}

static bool ob_conn_event(struct conn *c, enum conn_event ev, void *owner)
{
	struct ob_sess *s = owner;

	(void)c;
	switch (ev) {
	case CONN_EV_CONNECTED:
		ob_connected(s);
		return false;
	case CONN_EV_INPUT:
		if (!s->job_done)
			return false;
		ob_job_over(s);
		return true;
	case CONN_EV_TLS_START:
		return ob_tls_start(s);
	case CONN_EV_TLS_DONE:
		ob_tls_done(s);
		return true;
	case CONN_EV_TIMEOUT:
		WCOUNT(s->ob->w, delivery_timeouts);
		if (conn_tls(&s->conn) == CONN_TLS_HANDSHAKE) {
			WCOUNT(s->ob->w, delivery_tls_failures);
			ob_decide_failed(
			    s, "handshake: timed out"); /* level may: plaintext next time */
		}
		return false;
	case CONN_EV_CLOSED:
		ob_closed(s);
		return false;
	}
	return false;
}

static const struct conn_ops ob_conn_ops = {.event = ob_conn_event};

/* ---- opening and tearing down ---- */

struct ob_sess *ob_sess_open(struct outbound *ob, struct ob_dest *d, int *rc)
{
	struct worker *w = ob->w;
	struct ob_sess *s = worker_alloc(w, sizeof(*s));

	if (s == NULL) {
		*rc = PG_AGAIN;
		return NULL;
	}
	s->ob = ob;
	s->d = d;
	s->state = OB_S_CONNECTING;
	timer_init(&s->idle_timer, ob_idle_timer);
	conn_init(&s->conn, w, &ob_conn_ops, s);
	s->conn.handshake_timeout_ms = ob->ccfg.helo_timeout_ms; /* Postfix smtp_starttls_timeout */
	s->conn.linger_ns = OB_LINGER_NS;
	*rc = conn_connect_addr(&s->conn, &d->addr, d->port,
	                        (uint32_t)(ob_setting(ob, SET_smtp_connect_timeout) / SETTING_MS));
	if (*rc != PG_OK) {
		worker_free(w, s);
		return NULL;
	}
	ob->nsess++;
	ob_sess_link(d, s);
	return s;
}

void ob_sess_destroy(struct ob_sess *s)
{
	struct outbound *ob = s->ob;
	struct worker *w = ob->w;

	timer_cancel(w->timers, &s->idle_timer);
	ob_read_detach(s);
	conn_destroy(&s->conn);
	if (s->smtp != NULL)
		smtp_client_destroy(s->smtp);
	if (s->job != NULL)
		ob_job_free(ob, s->job); /* its results are dropped: the spool keeps the mail */
	worker_free(w, s->buf);
	ob_sess_unlink(s->d, s);
	ob->nsess--;
	worker_free(w, s);
}
