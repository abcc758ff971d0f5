/*
 * outbound_result.c - the end of a delivery attempt (outbound_private.h):
 * the engine's replies become each recipient's result, a job that failed
 * for a reason of the connection moves on to its next next hop (Postfix
 * trying the next MX host), a failed handshake at may goes again in
 * plaintext; then, message by message, the spool learns what was
 * delivered, bounced or deferred (with the retry schedule and
 * maximal_queue_lifetime), bounces become DSNs (RFC 3464) committed before
 * the recipients they report on are marked done, and every recipient's
 * attempt is one delivery record.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <rte_common.h>

#include "core/counters.h"
#include "core/events.h"
#include "core/worker.h"
#include "dsn.h"
#include "inbound.h"
#include "outbound_private.h"
#include "result.h"
#include "spool/spool.h"

static bool ob_failover_reply(const struct smtp_client_reply *r)
{
	if (r->code < 400)
		return false;
	switch (r->phase) {
	case SMTP_PHASE_GREETING:
	case SMTP_PHASE_EHLO:
	case SMTP_PHASE_HELO:
	case SMTP_PHASE_STARTTLS:
	case SMTP_PHASE_TLS:
	case SMTP_PHASE_POLICY: /* TLS policy: another next hop may do better */
		return true;
	case SMTP_PHASE_RSET:
	case SMTP_PHASE_MAIL:
		return r->local; /* lost the connection before the transaction */
	default:
		return false;
	}
}

/*
 * The delivery record of recipient i: what happened, and the TLS evidence
 * with the two rules (the destination's tls_policy entry and the sender's
 * sender_tls_policy floor) and which one decided. The structured fields
 * come first and the free texts (reply, peer subject, note) last, so a
 * record cut at EVRING_TEXT_MAX loses only the end of a text.
 */
static void ob_event_result(struct outbound *ob, struct ob_msg *om, uint32_t i,
                            const struct ob_result *res, const char *what)
{
	char id[SPOOL_ID_STRLEN], to[96], from[96], text[OB_REPLY_MAX + 1], policy[96],
	    sender_policy[96], subject[128], note[160];
	const struct ob_tls_ev *t = &res->tls;

	ob_value(to, sizeof(to), om->rcpts[i]);
	ob_value(from, sizeof(from), om->env.sender != NULL ? om->env.sender : "");
	ob_value(text, sizeof(text), res->text);
	ob_value(policy, sizeof(policy), t->policy);
	ob_value(sender_policy, sizeof(sender_policy), om->floor.present ? om->floor.text : "");
	ob_value(subject, sizeof(subject), t->subject);
	ob_value(note, sizeof(note), t->note);
	dp_event(ob->w, EV_DELIVERY_ATTEMPT,
	         "queue_id=%s" EVRING_SEP "to=%s" EVRING_SEP "from=%s" EVRING_SEP
	         "relay=%s" EVRING_SEP "mx_host=%s" EVRING_SEP "dnssec=%s" EVRING_SEP
	         "status=%s" EVRING_SEP "dsn=%s" EVRING_SEP
	         "tls_policy=%s" EVRING_SEP "tls_sender_policy=%s" EVRING_SEP
	         "tls_decided_by=%s" EVRING_SEP "tls_level=%s" EVRING_SEP "tls=%s" EVRING_SEP
	         "tls_cipher=%s" EVRING_SEP "tls_verdict=%s" EVRING_SEP "tls_outcome=%s" EVRING_SEP
	         "peer_fingerprint=%s" EVRING_SEP "reply=%s" EVRING_SEP "peer_subject=%s" EVRING_SEP
	         "tls_note=%s",
	         spool_id_str(spool_msg_id(om->m), id), to, from,
	         res->remote[0] ? res->remote : "none", res->mxhost[0] ? res->mxhost : "none",
	         res->dnssec[0] ? res->dnssec : "none", what, res->status,
	         policy[0] ? policy : "none", sender_policy[0] ? sender_policy : "none",
	         t->decided_by[0] ? t->decided_by : "none", t->level[0] ? t->level : "none",
	         t->tls[0] ? t->tls : "none", t->cipher, t->verdict[0] ? t->verdict : "none",
	         t->outcome[0] ? t->outcome : "not_sent", t->fingerprint, text, subject, note);
}

/*
 * A job is over: its results go to the message (or, on a connection
 * failure with next hops left, it moves on to the next one).
 */
void ob_job_finish(struct outbound *ob, struct ob_job *j, bool failover)
{
	struct ob_msg *om = j->om;

	if (failover && j->at + 1 < j->nnh) {
		j->at++;
		ob_job_enqueue(ob, j);
		return;
	}
	ob_job_free(ob, j);
	if (--om->jobs_left == 0)
		ob_msg_done(ob, om);
}

/*
 * Level may (or a mode=testing entry) whose handshake failed: remember the
 * peer and send the job again; the new connection skips STARTTLS.
 */
static bool ob_tls_fallback(struct outbound *ob, struct ob_dest *d, const struct ob_sess *s,
                            struct ob_job *j)
{
	if (s == NULL || !s->decided || s->tls.action != TLS_RETRY_PLAIN || j->tls_retried)
		return false;
	ob_tls_mark_broken(ob, &d->addr, d->port);
	WCOUNT(ob->w, delivery_tls_plaintext_fallbacks);
	if (s->tls.would_defer)
		WCOUNT(ob->w, delivery_tls_would_defer);
	j->tls_retried = true;
	for (uint32_t i = 0; i < j->nrcpt; i++)
		j->got[i] = false;
	ob_job_enqueue(ob, j);
	return true;
}

/*
 * A deferral the sender's floor made: the reply (and so the DSN, and
 * `queue show`) names the floor, since the destination alone would have
 * let the mail go.
 */
static void ob_floor_reason(struct ob_result *res, const struct ob_floor *floor)
{
	size_t n = strlen(res->text);

	if (n + 8 < sizeof(res->text))
		snprintf(res->text + n, sizeof(res->text) - n, " (sender_tls_policy: %s)",
		         floor->text);
}

/* The engine's results of job j at destination d (s: the session that ran it, if any). */
void ob_job_results(struct outbound *ob, struct ob_dest *d, struct ob_sess *s, struct ob_job *j)
{
	bool failover = true;

	if (ob_tls_fallback(ob, d, s, j))
		return;
	if (s != NULL)
		j->sessions++; /* a server answered (smtp_mx_session_limit) */
	for (uint32_t i = 0; i < j->nrcpt; i++) {
		if (!j->got[i]) {
			/* the engine's contract says this cannot happen; never lose it */
			j->reply[i].code = 451;
			snprintf(j->reply[i].status, sizeof(j->reply[i].status), "4.3.0");
			snprintf(j->reply[i].text, sizeof(j->reply[i].text), "no result");
			j->reply[i].local = true;
			j->reply[i].phase = SMTP_PHASE_MAIL;
		}
		failover = failover && ob_failover_reply(&j->reply[i]);
	}
	if (failover && j->at + 1 < j->nnh &&
	    (j->nh[j->at].mx[0] == '\0' ||
	     j->sessions < ob_setting(ob, SET_smtp_mx_session_limit))) {
		WCOUNT(ob->w, delivery_failovers);
		ob_job_finish(ob, j, true);
		return;
	}
	for (uint32_t i = 0; i < j->nrcpt; i++) {
		const struct smtp_client_reply *r = &j->reply[i];
		struct ob_result *res = &j->om->res[j->idx[i]];

		res->code = r->code;
		snprintf(res->status, sizeof(res->status), "%.15s", r->status);
		snprintf(res->remote, sizeof(res->remote), "%s", d->name);
		snprintf(res->mxhost, sizeof(res->mxhost), "%s", j->nh[j->at].mx);
		snprintf(res->dnssec, sizeof(res->dnssec), "%s",
		         j->nh[j->at].mx[0] != '\0' ? dns_sec_name(j->nh[j->at].dnssec) : "");
		/* local or not, the reply as a server would have said it */
		snprintf(res->text, sizeof(res->text), "%u %.15s %.*s", r->code, r->status,
		         (int)(sizeof(res->text) - 24), r->text);
		res->state = r->code < 400   ? OB_R_DELIVERED
		             : r->code < 500 ? OB_R_DEFERRED
		                             : OB_R_BOUNCED;
		if (r->phase == SMTP_PHASE_TLS && s != NULL && s->decided && s->tls.why[0] != '\0')
			snprintf(res->text, sizeof(res->text), "%u %.15s %.*s", r->code, r->status,
			         (int)(sizeof(res->text) - 24), s->tls.why);
		if (s != NULL && s->decided && s->tls.action == TLS_DEFER &&
		    j->tls.decided_by == TLS_RULE_SENDER)
			ob_floor_reason(res, &j->om->floor);
		ob_tls_evidence(d, s, j, r, &res->tls);
	}
	ob_job_finish(ob, j, false);
}

static uint64_t ob_retry_delay_ns(const struct snap_delivery *cfg, uint32_t attempts)
{
	uint32_t k = attempts == 0 ? 0 : attempts - 1;

	if (k >= cfg->nschedule)
		k = cfg->nschedule - 1;
	return (uint64_t)cfg->schedule_s[k] * 1000000000ull;
}

/* Apply the attempt's results to the spool; om is gone if the message is. */
static void ob_msg_apply(struct outbound *ob, struct ob_msg *om)
{
	struct worker *w = ob->w;
	struct spool *sp = w->spool;
	struct spool_msg *m = om->m;
	uint32_t left = 0;
	uint32_t attempts = spool_msg_attempts(m) + 1;

	for (uint32_t i = 0; i < om->nrcpt; i++) {
		struct ob_result *res = &om->res[i];

		if (spool_msg_rcpt_done(m, i))
			continue;
		if (res->state == OB_R_DEFERRED) {
			left++;
			snprintf(om->last_reply, sizeof(om->last_reply), "%s", res->text);
		} else if (res->state == OB_R_PENDING) {
			left++; /* not attempted (cannot happen): stays queued */
		}
	}
	ob_msg_unlink(ob, om);
	om->state = OB_M_IDLE;
	if (om->delete_pending || left == 0) {
		/* the message leaves the queue: om goes first (spool_msg_user) */
		bool del = om->delete_pending;

		om->m = NULL;
		spool_msg_set_user(m, NULL);
		ob_msg_release(ob, om);
		worker_free(w, om);
		if (del) {
			WCOUNT(w, queue_deleted);
			spool_msg_delete(sp, m);
		} else {
			spool_msg_delivered(sp, m, SPOOL_RCPT_ALL);
		}
		return;
	}
	spool_msg_defer(sp, m, ob_realtime() + ob_retry_delay_ns(&ob->cfg, attempts), attempts);
	for (uint32_t i = 0; i < om->nrcpt; i++) {
		uint8_t st = om->res[i].state;

		if (!spool_msg_rcpt_done(m, i) && (st == OB_R_DELIVERED || st == OB_R_BOUNCED))
			spool_msg_delivered(sp, m, i); /* recipients remain: m stays */
	}
	ob_msg_release(ob, om);
	/* the next full scan finds it when it is due */
}

/*
 * Every job of the message is over. Decide each recipient: delivered,
 * bounced (5xx, or 4xx past the queue lifetime), deferred. Bounces go
 * into a DSN first; the spool is told only once the DSN is committed.
 */
void ob_msg_done(struct outbound *ob, struct ob_msg *om)
{
	struct worker *w = ob->w;
	struct spool_msg *m = om->m;
	uint64_t now = ob_realtime();
	uint64_t age = now > spool_msg_arrival(m) ? now - spool_msg_arrival(m) : 0;
	bool expired = age >= ob_setting(ob, SET_maximal_queue_lifetime);
	bool dsn = false;

	for (uint32_t i = 0; i < om->nrcpt; i++) {
		struct ob_result *res = &om->res[i];

		if (spool_msg_rcpt_done(m, i))
			continue;
		if (res->state == OB_R_DEFERRED && expired) {
			char why[OB_REPLY_MAX + 1];

			snprintf(why, sizeof(why), "%s", res->text);
			snprintf(res->text, sizeof(res->text),
			         "delivery time expired (maximal_queue_lifetime): %.*s",
			         (int)(sizeof(res->text) - 50), why);
			snprintf(res->status, sizeof(res->status), "4.4.7");
			res->state = OB_R_BOUNCED;
		}
		switch (res->state) {
		case OB_R_DELIVERED:
			WCOUNT(w, delivery_rcpts_delivered);
			ob_event_result(ob, om, i, res, "sent");
			break;
		case OB_R_DEFERRED:
			WCOUNT(w, delivery_rcpts_deferred);
			ob_event_result(ob, om, i, res, "deferred");
			break;
		case OB_R_BOUNCED:
			WCOUNT(w, delivery_rcpts_bounced);
			ob_event_result(ob, om, i, res, "bounced");
			if ((om->notify[i] & SMTP_NOTIFY_NEVER) == 0 &&
			    (om->notify[i] == 0 || (om->notify[i] & SMTP_NOTIFY_FAILURE) != 0))
				dsn = true;
			break;
		default:
			break;
		}
	}
	if (dsn && spool_msg_sender(m)[0] == '\0') {
		/* RFC 5321 §6.1: never a bounce to the null sender */
		WCOUNT(w, dsn_discarded);
		dsn = false;
	}
	if (!dsn || om->delete_pending) {
		ob_msg_apply(ob, om);
		return;
	}
	/* the original's first chunk: its headers, the whole of a small message */
	if (spool_msg_nchunks(m) == 0) {
		om->orig_complete = true;
		om->state = OB_M_DSN_PUT;
		ob_dsn_put(ob, om);
		return;
	}
	om->state = OB_M_DSN;
	ob_dsn_read_start(ob, om); /* on PG_AGAIN the poll starts it */
}

/* ---- the DSN ---- */

static void ob_dsn_read_cb(struct spool_msg *m, uint32_t chunk, const void *data, size_t len,
                           int result, int err, void *owner)
{
	struct ob_read *rd = owner;
	struct ob_msg *om = rd->om;
	struct outbound *ob;

	(void)m, (void)chunk, (void)err;
	worker_free(rd->w, rd);
	if (om == NULL)
		return; /* shutting down */
	ob = om->ob;
	om->rd = NULL;
	if (result == PG_OK) {
		size_t n = RTE_MIN(len, (size_t)OB_DSN_READ_MAX);

		om->orig = worker_alloc(ob->w, n + 1);
		if (om->orig != NULL) {
			memcpy(om->orig, data, n);
			om->orig_len = n;
			om->orig_complete = n == spool_msg_body_len(om->m);
		}
	}
	/* without the original (read error, memory): a DSN with no content part */
	om->state = OB_M_DSN_PUT;
	ob_dsn_put(ob, om);
}

void ob_dsn_read_start(struct outbound *ob, struct ob_msg *om)
{
	struct worker *w = ob->w;
	struct ob_read *rd = worker_alloc(w, sizeof(*rd));

	if (rd == NULL)
		return;
	rd->w = w;
	rd->om = om;
	if (spool_read_chunk(w->spool, om->m, 0, ob_dsn_read_cb, rd) != PG_OK) {
		worker_free(w, rd);
		return;
	}
	om->rd = rd;
	om->state = OB_M_DSN_READING;
}

static void ob_dsn_commit_cb(struct spool_msg *m, int result, int err, void *owner)
{
	struct ob_msg *om = owner;
	struct outbound *ob = om->ob;

	(void)m, (void)err;
	om->dsn_msg = NULL;
	if (result != PG_OK) {
		/* not written: the bounced recipients stay queued, tried again later */
		for (uint32_t i = 0; i < om->nrcpt; i++)
			if (om->res[i].state == OB_R_BOUNCED) {
				om->res[i].state = OB_R_DEFERRED;
				snprintf(om->res[i].text, sizeof(om->res[i].text),
				         "bounce not written: spool error");
			}
	} else {
		WCOUNT(ob->w, dsn_sent);
	}
	ob_msg_apply(ob, om);
}

/*
 * The spool params of a DSN (inbound.h INBOUND_PARAMS_*): 8-bit if the
 * original was (RFC 6152: the DSN quotes it); and, since it quotes the
 * original, the original's client and sender domain, so the sender's floor
 * (sender_tls_policy) covers the bounce too. NULL out of memory.
 */
static char *ob_dsn_params(struct outbound *ob, const struct ob_msg *om)
{
	const char *sender = spool_msg_sender(om->m), *at = strrchr(sender, '@');
	const char *origin = at != NULL ? at + 1 : "";
	char client[PG_ADDR_STRLEN] = "";
	size_t cap = strlen(origin) + 64;
	char *p = worker_alloc(ob->w, cap);
	int n;

	if (p == NULL)
		return NULL;
	if (om->has_client)
		pg_addr_fmt(&om->client, client, sizeof(client));
	/* a domain is one token: anything else is left out rather than mangle the record */
	if (strcspn(origin, " \t\r\n") != strlen(origin))
		origin = "";
	n = snprintf(p, cap, "%c%s\n", INBOUND_PARAMS_MAIL, om->dsn_8bit ? " BODY=8BITMIME" : "");
	if (client[0] != '\0')
		n += snprintf(p + n, cap - (size_t)n, "%c %s\n", INBOUND_PARAMS_CLIENT, client);
	if (origin[0] != '\0')
		n += snprintf(p + n, cap - (size_t)n, "%c %s\n", INBOUND_PARAMS_ORIGIN, origin);
	snprintf(p + n, cap - (size_t)n, "%c\n", INBOUND_PARAMS_RCPT);
	return p;
}

/* Build the DSN and write it to the spool; PG_AGAIN from the spool retries from the poll. */
void ob_dsn_put(struct outbound *ob, struct ob_msg *om)
{
	struct worker *w = ob->w;
	struct spool *sp = w->spool;
	struct spool_msg *m = om->m;
	struct spool_envelope se;
	const char *rcpt = spool_msg_sender(m);
	char id[SPOOL_ID_STRLEN], msgid[SNAP_SMTP_HOSTNAME_MAX + 64];
	int rc;

	if (om->dsn == NULL) {
		struct dsn_rcpt *dr = worker_alloc(w, om->nrcpt * sizeof(*dr));
		struct dsn_msg dm;
		uint32_t nd = 0;
		size_t cap;
		uint64_t now = ob_realtime();

		if (dr == NULL)
			goto fail;
		for (uint32_t i = 0; i < om->nrcpt; i++) {
			struct ob_result *res = &om->res[i];

			if (spool_msg_rcpt_done(m, i) || res->state != OB_R_BOUNCED)
				continue;
			if ((om->notify[i] & SMTP_NOTIFY_NEVER) != 0 ||
			    (om->notify[i] != 0 && (om->notify[i] & SMTP_NOTIFY_FAILURE) == 0))
				continue;
			dr[nd].rcpt = om->rcpts[i];
			dr[nd].orcpt = om->orcpt[i];
			dr[nd].action = DSN_FAILED;
			dr[nd].status = res->status;
			dr[nd].remote_mta = res->remote[0] != '\0' ? res->remote : NULL;
			dr[nd].diagnostic = res->text;
			dr[nd].last_attempt = (int64_t)(now / 1000000000ull);
			nd++;
		}
		snprintf(msgid, sizeof(msgid), "%s.%" PRIu64 ".%u@%s",
		         spool_id_str(spool_msg_id(m), id), ++ob->dsn_seq, w->id, ob->hostname);
		memset(&dm, 0, sizeof(dm));
		dm.reporting_mta = ob->hostname;
		dm.sender = rcpt;
		dm.envid = om->env.envid;
		dm.arrival = (int64_t)(spool_msg_arrival(m) / 1000000000ull);
		dm.now = (int64_t)(now / 1000000000ull);
		dm.message_id = msgid;
		dm.ret_hdrs = om->env.ret == SMTP_RET_HDRS;
		dm.orig = om->orig;
		dm.orig_len = om->orig_len;
		dm.orig_complete = om->orig_complete;
		dm.rcpts = dr;
		dm.nrcpt = nd;
		dm.utf8 = om->env.smtputf8;
		cap = dsn_size_bound(&dm);
		om->dsn = worker_alloc(w, cap);
		if (om->dsn != NULL)
			om->dsn_len = dsn_write(&dm, om->dsn, cap);
		om->dsn_8bit = dsn_is_8bit(&dm);
		om->dsn_params = ob_dsn_params(ob, om);
		worker_free(w, dr);
		if (om->dsn == NULL || om->dsn_len == 0 || om->dsn_params == NULL)
			goto fail;
	}
	memset(&se, 0, sizeof(se));
	se.sender = "";
	se.rcpts = &rcpt;
	se.nrcpt = 1;
	se.params = om->dsn_params;
	se.params_len = (uint32_t)strlen(se.params);
	se.arrival_ns = ob_realtime();
	if (om->dsn_msg == NULL) {
		rc = spool_msg_begin(sp, &se, &om->dsn_msg);
		if (rc == PG_AGAIN)
			return; /* the poll retries */
		if (rc != PG_OK)
			goto fail;
		rc = spool_msg_append(sp, om->dsn_msg, om->dsn, om->dsn_len);
		if (rc == PG_AGAIN) {
			spool_msg_abort(sp, om->dsn_msg);
			om->dsn_msg = NULL;
			return;
		}
		if (rc != PG_OK) {
			spool_msg_abort(sp, om->dsn_msg);
			om->dsn_msg = NULL;
			goto fail;
		}
	}
	rc = spool_msg_commit(sp, om->dsn_msg, ob_dsn_commit_cb, om);
	if (rc == PG_AGAIN)
		return;
	if (rc != PG_OK) {
		spool_msg_abort(sp, om->dsn_msg);
		om->dsn_msg = NULL;
		goto fail;
	}
	om->state = OB_M_DSN_SYNC;
	return;
fail:
	ob_dsn_commit_cb(NULL, PG_ERROR, EIO, om);
}
