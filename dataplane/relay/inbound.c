/*
 * inbound.c - the SMTP service of a worker (inbound.h): the listener, one
 * session per connection wiring the SMTP engine to TCP events, relay
 * access, and the spool hooks (data_start → spool_msg_begin, data_chunk →
 * spool_msg_append, message_end → spool_msg_commit, the 250 from the
 * commit callback). Everything hangs off w->inbound and is touched by its
 * worker only; every session is on a list so teardown can account for it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>

#include <rte_common.h>
#include <rte_log.h>

#include "core/events.h"
#include "core/timer.h"
#include "core/worker.h"
#include "inbound.h"
#include "net/tcp.h"
#include "policy_lookup.h"
#include "result.h"
#include "settings.h"
#include "smtp/smtp_server.h"
#include "snap_format.h"
#include "spool/spool.h"
#include "tls_server.h"
#include "tls_stream.h"
#include "conn.h"
#include "list.h"

#define INBOUND_RESUME_NS (1000ull * 1000 * 1000) /* spool_resume retry period */

/* What a session waits for from the spool (a PG_AGAIN to retry). */
enum ib_wait {
	IB_WAIT_NONE,
	IB_WAIT_BEGIN,  /* spool_msg_begin: data_start is parked */
	IB_WAIT_APPEND, /* spool_msg_append: data_chunk is parked */
	IB_WAIT_COMMIT, /* spool_msg_commit: message_end is parked */
};

/* A growable byte buffer in the worker's arena. */
struct ib_buf {
	char *p;
	size_t len, cap;
};

struct ib_session {
	struct pg_list link;  /* ib->sessions */
	struct pg_list wlink; /* ib->waiting, while spool_wait != NONE */
	struct inbound *ib;
	struct conn conn; /* TCP, STARTTLS and the engine's I/O (conn.h) */
	struct smtp_server *smtp;
	struct pg_addr raddr; /* the client, either family */
	char peer[PG_ADDR_STRLEN];

	/* the transaction */
	struct ib_buf rcpts;   /* accepted recipients, each NUL-terminated */
	struct ib_buf rparams; /* their INBOUND_PARAMS_RCPT lines */
	uint32_t nrcpt;
	struct spool_msg *msg; /* begun, not yet committed or aborted */
	bool committing;       /* msg's commit callback is pending */
	enum ib_wait spool_wait;
	int data_err;  /* errno of a failed append, for the counters */
	uint64_t size; /* message_end's size, for the event */

	uint16_t tls_protocols; /* SNAP_TLS_P_* the STARTTLS handshake may negotiate */
};

struct inbound {
	struct worker *w;
	bool listening;  /* on 0.0.0.0:port */
	bool listening6; /* on [::]:port, every IPv6 address of the worker */
	uint16_t port;
	uint32_t max_sessions;
	struct smtp_server_config cfg; /* user is set per session */
	SSL_CTX *tls_ctx;              /* this generation's certificates; NULL: no STARTTLS */
	bool warned_no_certs;
	char hostname[SNAP_SMTP_HOSTNAME_MAX + 1];
	bool warned_no_spool;
	time_t (*now)(void);
	uint64_t next_resume_ns;
	struct pg_list sessions; /* ib_session.link */
	uint32_t nsessions;
	struct pg_list waiting; /* ib_session.wlink: parked on the spool */
	uint32_t nwaiting;
};

static void ib_free(struct ib_session *ss);

/* ---- lists and buffers ---- */

static void ib_link(struct inbound *ib, struct ib_session *ss)
{
	pg_list_add(&ib->sessions, &ss->link);
	ib->nsessions++;
}

static void ib_unlink(struct inbound *ib, struct ib_session *ss)
{
	pg_list_del(&ss->link);
	ib->nsessions--;
}

static void ib_wait(struct ib_session *ss, enum ib_wait why)
{
	struct inbound *ib = ss->ib;

	if (ss->spool_wait == IB_WAIT_NONE) {
		pg_list_add(&ib->waiting, &ss->wlink);
		ib->nwaiting++;
	}
	ss->spool_wait = why;
}

static void ib_unwait(struct ib_session *ss)
{
	struct inbound *ib = ss->ib;

	if (ss->spool_wait == IB_WAIT_NONE)
		return;
	pg_list_del(&ss->wlink);
	ss->spool_wait = IB_WAIT_NONE;
	ib->nwaiting--;
}

static int ib_buf_add(struct worker *w, struct ib_buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap != 0 ? b->cap : 256;
		char *np;

		while (cap < b->len + n)
			cap *= 2;
		np = worker_alloc(w, cap);
		if (np == NULL)
			return PG_ERROR;
		if (b->len != 0)
			memcpy(np, b->p, b->len);
		worker_free(w, b->p);
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return PG_OK;
}

static void ib_buf_free(struct worker *w, struct ib_buf *b)
{
	worker_free(w, b->p);
	memset(b, 0, sizeof(*b));
}

static void ib_txn_clear(struct ib_session *ss)
{
	ss->rcpts.len = 0;
	ss->rparams.len = 0;
	ss->nrcpt = 0;
	ss->data_err = 0;
	ss->size = 0;
}

/* ---- spool replies ---- */

/* RFC 3463: 4.3.1 "mail system full", 4.3.0 "other or undefined mail system status". */
static void ib_spool_verdict(int err, struct smtp_verdict *v)
{
	if (err == ENOSPC || err == EDQUOT) {
		v->code = 452;
		v->status = "4.3.1";
		v->text = "Error: insufficient system storage";
	} else {
		v->code = 451;
		v->status = "4.3.0";
		v->text = "Error: queue file write error";
	}
}

/* ---- the engine's upcalls ---- */

/* The negotiated version as a SNAP_TLS_P_* bit; 0 without TLS. */
static uint16_t ib_tls_version_bit(const struct ib_session *ss)
{
	if (!conn_tls_on(&ss->conn))
		return 0;
	switch (SSL_version(conn_ssl(&ss->conn))) {
	case TLS1_VERSION: return SNAP_TLS_P_TLSV1;
	case TLS1_1_VERSION: return SNAP_TLS_P_TLSV1_1;
	case TLS1_2_VERSION: return SNAP_TLS_P_TLSV1_2;
	case TLS1_3_VERSION: return SNAP_TLS_P_TLSV1_3;
	default: return 0;
	}
}

/* Does this session's TLS meet what a required sender or recipient asks? */
static bool ib_tls_meets(const struct ib_session *ss, uint16_t mandatory_protocols)
{
	uint16_t bit = ib_tls_version_bit(ss);

	return conn_tls_on(&ss->conn) && bit != 0 && (bit & mandatory_protocols) != 0;
}

/* 530 5.7.0: the message or recipient must come over TLS (RFC 3207 §4). */
static void ib_tls_refuse(const struct ib_session *ss, struct smtp_verdict *v)
{
	v->code = 530;
	v->status = "5.7.0";
	v->text = conn_tls_on(&ss->conn) ? "Must use a stronger TLS protocol version"
	                                 : "Must issue a STARTTLS command first";
}

static int ib_mail_from(struct smtp_server *s, const struct smtp_envelope *env,
                        struct smtp_verdict *v, void *owner)
{
	struct ib_session *ss = owner;
	struct worker *w = ss->ib->w;
	struct policy_inbound_verdict why;
	const char *at = strrchr(env->sender, '@');

	(void)s;
	ib_txn_clear(ss);
	/* a listed partner's mail comes over TLS (the per-sender rule) */
	if (w->snap != NULL && at != NULL &&
	    policy_inbound_required_addr(w->snap, &ss->raddr, at + 1, &why) &&
	    why.reason == POLICY_INBOUND_SENDER && !ib_tls_meets(ss, why.mandatory_protocols)) {
		WCOUNT(w, smtp_tls_required);
		ib_tls_refuse(ss, v);
		return PG_DECLINED;
	}
	return PG_OK;
}

/*
 * smtpd_tls_required_recipients: this recipient's mail comes over TLS
 * (Postfix's nearest: check_recipient_access with reject_plaintext_session).
 * Only this RCPT is refused; the transaction goes on for the others.
 */
static bool ib_rcpt_needs_tls(const struct ib_session *ss, const char *domain)
{
	struct policy_inbound_verdict why;
	const struct worker *w = ss->ib->w;

	if (policy_inbound_recipient(w->snap, domain, NULL) == NULL)
		return false;
	policy_inbound_required_addr(w->snap, &ss->raddr, NULL, &why);
	return !ib_tls_meets(ss, why.mandatory_protocols);
}

static int ib_rcpt_to(struct smtp_server *s, const struct smtp_envelope *env,
                      const struct smtp_rcpt *rcpt, struct smtp_verdict *v, void *owner)
{
	struct ib_session *ss = owner;
	struct worker *w = ss->ib->w;
	const char *at = strrchr(rcpt->addr, '@');
	char line[SMTP_ORCPT_MAX + 64];
	int n;

	(void)s, (void)env;
	if (w->snap == NULL) {
		/* no policy to decide with (snapshot refused): never guess "yes" */
		v->code = 451;
		v->status = "4.3.5";
		v->text = "Server configuration error";
		return PG_ERROR;
	}
	if (!relay_client_allowed_addr(w->snap, &ss->raddr) &&
	    (at == NULL || !relay_domain_allowed(w->snap, at + 1))) {
		WCOUNT(w, smtp_relay_denied);
		return PG_DECLINED; /* the engine's "554 5.7.1 <rcpt>: Relay access denied" */
	}
	if (at != NULL && ib_rcpt_needs_tls(ss, at + 1)) {
		WCOUNT(w, smtp_tls_required_rcpt);
		ib_tls_refuse(ss, v);
		return PG_DECLINED;
	}
	n = snprintf(line, sizeof(line), "%c", INBOUND_PARAMS_RCPT);
	if (rcpt->notify != 0) {
		static const struct {
			unsigned bit;
			const char *name;
		} names[] = {{SMTP_NOTIFY_NEVER, "NEVER"},
		             {SMTP_NOTIFY_SUCCESS, "SUCCESS"},
		             {SMTP_NOTIFY_FAILURE, "FAILURE"},
		             {SMTP_NOTIFY_DELAY, "DELAY"}};
		const char *sep = " NOTIFY=";

		for (size_t i = 0; i < RTE_DIM(names); i++) {
			if ((rcpt->notify & names[i].bit) == 0)
				continue;
			n += snprintf(line + n, sizeof(line) - (size_t)n, "%s%s", sep,
			              names[i].name);
			sep = ",";
		}
	}
	if (rcpt->orcpt[0] != '\0')
		n += snprintf(line + n, sizeof(line) - (size_t)n, " ORCPT=%s", rcpt->orcpt);
	n += snprintf(line + n, sizeof(line) - (size_t)n, "\n");
	if (ib_buf_add(w, &ss->rcpts, rcpt->addr, strlen(rcpt->addr) + 1) != PG_OK ||
	    ib_buf_add(w, &ss->rparams, line, (size_t)n) != PG_OK) {
		v->code = 451;
		v->status = "4.3.0";
		v->text = "Error: out of memory";
		return PG_ERROR;
	}
	ss->nrcpt++;
	WCOUNT(w, smtp_recipients_accepted);
	return PG_OK;
}

/* spool_msg_begin for the current transaction: PG_OK, PG_AGAIN or a verdict. */
static int ib_begin(struct ib_session *ss, struct smtp_verdict *v)
{
	struct worker *w = ss->ib->w;
	const struct smtp_envelope *env = smtp_server_envelope(ss->smtp);
	struct spool_envelope se;
	struct ib_buf params = {0};
	const char **rcpts;
	char mail[SMTP_ENVID_MAX + 64], id[SPOOL_ID_STRLEN], client[INET_ADDRSTRLEN + 4];
	struct timespec ts;
	const char *r;
	int n, nc, rc;

	if (w->spool == NULL || ss->nrcpt == 0 || ss->nrcpt != env->nrcpt) {
		/* no spool, or our recipient list and the engine's disagree (a bug) */
		v->code = 451;
		v->status = "4.3.0";
		v->text = "Error: queue file write error";
		return PG_ERROR;
	}
	rcpts = worker_alloc(w, ss->nrcpt * sizeof(*rcpts));
	if (rcpts == NULL)
		goto nomem;
	r = ss->rcpts.p;
	for (uint32_t i = 0; i < ss->nrcpt; i++) {
		rcpts[i] = r;
		r += strlen(r) + 1;
	}
	n = snprintf(mail, sizeof(mail), "%c%s%s%s%s%s%s\n", INBOUND_PARAMS_MAIL,
	             env->body == SMTP_BODY_8BITMIME ? " BODY=8BITMIME"
	             : env->body == SMTP_BODY_7BIT   ? " BODY=7BIT"
	                                             : "",
	             env->smtputf8 ? " SMTPUTF8" : "",
	             env->ret == SMTP_RET_FULL   ? " RET=FULL"
	             : env->ret == SMTP_RET_HDRS ? " RET=HDRS"
	                                         : "",
	             env->envid[0] != '\0' ? " ENVID=" : "", env->envid, "");
	/* who submitted it: the client networks of sender_tls_policy */
	nc = snprintf(client, sizeof(client), "%c %s\n", INBOUND_PARAMS_CLIENT, ss->peer);
	if (ib_buf_add(w, &params, mail, (size_t)n) != PG_OK ||
	    ib_buf_add(w, &params, client, (size_t)nc) != PG_OK ||
	    ib_buf_add(w, &params, ss->rparams.p, ss->rparams.len) != PG_OK) {
		worker_free(w, rcpts);
		ib_buf_free(w, &params);
		goto nomem;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	memset(&se, 0, sizeof(se));
	se.sender = env->sender;
	se.rcpts = rcpts;
	se.nrcpt = ss->nrcpt;
	se.params = params.p;
	se.params_len = (uint32_t)params.len;
	se.arrival_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	rc = spool_msg_begin(w->spool, &se, &ss->msg);
	worker_free(w, rcpts);
	ib_buf_free(w, &params);
	switch (rc) {
	case PG_OK:
		smtp_server_set_queue_id(ss->smtp, spool_id_str(spool_msg_id(ss->msg), id));
		return PG_OK;
	case PG_AGAIN:
		ss->msg = NULL;
		return PG_AGAIN;
	case PG_DECLINED:
		ss->msg = NULL;
		v->code = 552;
		v->status = "5.3.4";
		v->text = "Error: message envelope too large";
		return PG_DECLINED;
	default:
		ss->msg = NULL;
		WCOUNT(w, smtp_spool_errors);
		ib_spool_verdict(spool_errno(w->spool), v);
		return PG_ERROR;
	}
nomem:
	v->code = 451;
	v->status = "4.3.0";
	v->text = "Error: out of memory";
	return PG_ERROR;
}

static int ib_data_start(struct smtp_server *s, const struct smtp_envelope *env,
                         struct smtp_verdict *v, void *owner)
{
	struct ib_session *ss = owner;
	int rc;

	(void)s, (void)env;
	rc = ib_begin(ss, v);
	if (rc == PG_AGAIN)
		ib_wait(ss, IB_WAIT_BEGIN);
	return rc;
}

static int ib_data_chunk(struct smtp_server *s, const uint8_t *p, size_t n, void *owner)
{
	struct ib_session *ss = owner;
	struct worker *w = ss->ib->w;
	int rc;

	(void)s;
	if (ss->msg == NULL)
		return PG_ERROR; /* cannot happen: data_start begun it */
	rc = spool_msg_append(w->spool, ss->msg, p, n);
	if (rc == PG_OK) {
		if (ss->spool_wait == IB_WAIT_APPEND)
			ib_unwait(ss);
		return PG_OK;
	}
	if (rc == PG_AGAIN) {
		ib_wait(ss, IB_WAIT_APPEND);
		return PG_AGAIN;
	}
	/* the engine aborts the message (message_abort) and answers 451 at its end */
	ib_unwait(ss);
	ss->data_err = spool_errno(w->spool);
	WCOUNT(w, smtp_spool_errors);
	return PG_ERROR;
}

static void ib_commit_cb(struct spool_msg *m, int result, int err, void *owner);

/* spool_msg_commit: PG_AGAIN parks the session (committing, or waiting to retry). */
static int ib_commit(struct ib_session *ss, struct smtp_verdict *v)
{
	struct worker *w = ss->ib->w;
	int rc = spool_msg_commit(w->spool, ss->msg, ib_commit_cb, ss);

	if (rc == PG_OK) {
		ss->committing = true;
		ib_unwait(ss);
		return PG_AGAIN; /* the 250 waits for the fdatasync */
	}
	if (rc == PG_AGAIN) {
		ib_wait(ss, IB_WAIT_COMMIT);
		return PG_AGAIN;
	}
	ib_unwait(ss);
	spool_msg_abort(w->spool, ss->msg);
	ss->msg = NULL;
	WCOUNT(w, smtp_spool_errors);
	ib_spool_verdict(spool_errno(w->spool), v);
	return PG_ERROR;
}

static int ib_message_end(struct smtp_server *s, const struct smtp_envelope *env,
                          const struct smtp_message_info *info, struct smtp_verdict *v, void *owner)
{
	struct ib_session *ss = owner;

	(void)s, (void)env;
	if (ss->msg == NULL)
		return PG_ERROR;
	ss->size = info->size;
	return ib_commit(ss, v);
}

static void ib_event_value(char *dst, size_t size, const char *src);

static void ib_message_abort(struct smtp_server *s, void *owner)
{
	struct ib_session *ss = owner;

	if (smtp_server_loop_detected(s)) {
		struct worker *w = ss->ib->w;
		char sender[SMTP_PATH_MAX + 1];

		WCOUNT(w, smtp_loops_refused);
		ib_event_value(sender, sizeof(sender), smtp_server_envelope(s)->sender);
		dp_event(w, EV_SMTP_LOOP_REFUSED,
		         "client=%s" EVRING_SEP "sender=%s" EVRING_SEP "hopcount_limit=%u", ss->peer,
		         sender, ss->ib->cfg.max_hops);
	}
	ib_unwait(ss);
	if (ss->msg != NULL) {
		/* on a commit in flight this only forgets the callback (spool.h) */
		spool_msg_abort(ss->ib->w->spool, ss->msg);
		ss->msg = NULL;
		ss->committing = false;
	}
	ib_txn_clear(ss);
}

/* STARTTLS said 220: the driver sends it in plaintext, then starts TLS. */
static void ib_starttls(struct smtp_server *s, void *owner)
{
	struct ib_session *ss = owner;

	(void)s;
	conn_starttls(&ss->conn, ss->ib->tls_ctx);
}

static time_t ib_now(void *owner)
{
	struct ib_session *ss = owner;

	return ss->ib->now != NULL ? ss->ib->now() : time(NULL);
}

static const struct smtp_server_ops ib_smtp_ops = {
    .starttls = ib_starttls,
    .mail_from = ib_mail_from,
    .rcpt_to = ib_rcpt_to,
    .data_start = ib_data_start,
    .data_chunk = ib_data_chunk,
    .message_end = ib_message_end,
    .message_abort = ib_message_abort,
    .now = ib_now,
};

/* An event field value: no separator, no control characters. */
static void ib_event_value(char *dst, size_t size, const char *src)
{
	size_t i = 0;

	for (; src[i] != '\0' && i + 1 < size; i++)
		dst[i] = (unsigned char)src[i] < 32 || src[i] == 127 ? '?' : src[i];
	dst[i] = '\0';
}

/* From spool_poll, exactly once per commit (never after spool_msg_forget_cb). */
static void ib_commit_cb(struct spool_msg *m, int result, int err, void *owner)
{
	struct ib_session *ss = owner;
	struct worker *w = ss->ib->w;
	struct smtp_verdict v = {0};

	ss->committing = false;
	ss->msg = NULL;
	if (result == PG_OK) {
		char id[SPOOL_ID_STRLEN], sender[SMTP_PATH_MAX + 1];

		WCOUNT(w, smtp_messages_accepted);
		ib_event_value(sender, sizeof(sender), spool_msg_sender(m));
		dp_event(w, EV_SMTP_MESSAGE_ACCEPTED,
		         "queue_id=%s" EVRING_SEP "sender=%s" EVRING_SEP "nrcpt=%u" EVRING_SEP
		         "size=%" PRIu64 EVRING_SEP "client=%s",
		         spool_id_str(spool_msg_id(m), id), sender, spool_msg_nrcpt(m), ss->size,
		         ss->peer);
		smtp_server_message_committed(ss->smtp, true, NULL);
	} else {
		WCOUNT(w, smtp_spool_errors);
		ib_spool_verdict(err, &v);
		smtp_server_message_committed(ss->smtp, false, &v);
	}
	conn_run(&ss->conn);
}

/* ---- the session over TCP ---- */

static void ib_free(struct ib_session *ss)
{
	struct inbound *ib = ss->ib;
	struct worker *w = ib->w;

	/* an open transaction is aborted here (message_abort), unless committing */
	smtp_server_destroy(ss->smtp);
	ss->smtp = NULL;
	if (ss->msg != NULL) {
		spool_msg_forget_cb(w->spool, ss->msg); /* still queued: at-least-once */
		ss->msg = NULL;
	}
	ib_unwait(ss);
	ib_buf_free(w, &ss->rcpts);
	ib_buf_free(w, &ss->rparams);
	ib_unlink(ib, ss);
	worker_free(w, ss);
}

/* The handshake finished: the engine hears of it (RFC 3207 §4.2: EHLO again). */
static void ib_tls_done(struct ib_session *ss)
{
	struct worker *w = ss->ib->w;
	char info[SMTP_TLS_INFO_MAX + 1];

	if (!conn_tls_on(&ss->conn)) {
		char peer[PG_ADDR_STRLEN + 8], why[120];

		WCOUNT(w, smtp_tls_failures);
		ib_event_value(peer, sizeof(peer), ss->peer);
		ib_event_value(why, sizeof(why), conn_tls_why(&ss->conn));
		dp_event(w, EV_SMTP_TLS_FAILED, "client=%s" EVRING_SEP "why=%s", peer, why);
		smtp_server_tls_started(ss->smtp, false, NULL); /* the alert goes out, then the close */
		return;
	}
	WCOUNT(w, smtp_tls_handshakes);
	if (tls_stream_resumed(conn_stream(&ss->conn)))
		WCOUNT(w, smtp_tls_resumed);
	tls_stream_describe(conn_stream(&ss->conn), info, sizeof(info));
	smtp_server_tls_started(ss->smtp, true, info);
}

static bool ib_event(struct conn *c, enum conn_event ev, void *owner)
{
	struct ib_session *ss = owner;
	struct worker *w = ss->ib->w;

	(void)c;
	switch (ev) {
	case CONN_EV_TLS_START:
		if (tls_server_set_protocols(conn_ssl(&ss->conn), ss->tls_protocols) != PG_OK) {
			conn_tls_fail(&ss->conn, "no TLS version to offer");
			return false;
		}
		return true;
	case CONN_EV_TLS_DONE:
		ib_tls_done(ss);
		return true;
	case CONN_EV_TIMEOUT:
		WCOUNT(w, smtp_timeouts);
		if (conn_tls(&ss->conn) == CONN_TLS_HANDSHAKE) {
			/* a handshake that does not finish: nothing can be said in plaintext */
			WCOUNT(w, smtp_tls_failures);
			conn_close(&ss->conn, true);
		}
		return false;
	case CONN_EV_CLOSED:
		ib_free(ss);
		return false;
	default:
		return false;
	}
}

/* The client left: the connection stays while the spool still answers for its message. */
static bool ib_busy(struct conn *c, void *owner)
{
	const struct ib_session *ss = owner;

	(void)c;
	return ss->committing || ss->spool_wait != IB_WAIT_NONE;
}

static const struct conn_ops ib_conn_ops = {.event = ib_event, .busy = ib_busy};

static void ib_accepted(struct tcp_conn *c, void *user)
{
	struct inbound *ib = user;
	struct worker *w = ib->w;
	struct smtp_server_config cfg = ib->cfg;
	struct ib_session *ss = worker_alloc(w, sizeof(*ss));
	struct smtp_peer peer = {0};
	struct pg_addr laddr;
	uint16_t lport, rport;

	if (ss == NULL) {
		tcp_abort(c);
		return;
	}
	ss->ib = ib;
	tcp_conn_tuple_addr(c, &laddr, &lport, &ss->raddr, &rport);
	pg_addr_fmt(&ss->raddr, ss->peer, sizeof(ss->peer));
	peer.addr = ss->peer;
	cfg.owner = ss;
	cfg.over_capacity = ib->nsessions >= ib->max_sessions;
	/* TLS required for the listener or this client's network (per sender: at MAIL) */
	ss->tls_protocols = SNAP_TLS_P_TLSV1_2 | SNAP_TLS_P_TLSV1_3;
	if (w->snap != NULL) {
		struct policy_inbound_verdict v;

		cfg.tls_required = policy_inbound_required_addr(w->snap, &ss->raddr, NULL, &v);
		if (v.settings != NULL)
			ss->tls_protocols = cfg.tls_required ? v.mandatory_protocols : v.protocols;
	}
	ss->smtp = smtp_server_create(&cfg, &peer);
	if (ss->smtp == NULL) {
		worker_free(w, ss);
		tcp_abort(c);
		return;
	}
	pg_list_init(&ss->wlink);
	ib_link(ib, ss);
	if (cfg.over_capacity)
		WCOUNT(w, smtp_sessions_refused);
	else
		WCOUNT(w, smtp_sessions);
	if (!cfg.over_capacity && pg_addr_is_v6(&ss->raddr))
		WCOUNT(w, smtp_sessions_ipv6);
	conn_init(&ss->conn, w, &ib_conn_ops, ss);
	/* the handshake (Postfix smtpd_starttls_timeout) */
	ss->conn.handshake_timeout_ms = ib->cfg.cmd_timeout_ms;
	ss->conn.linger_ns = INBOUND_LINGER_NS;
	conn_accept(&ss->conn, c);
	conn_attach(&ss->conn, &conn_smtp_server, ss->smtp);
	conn_run(&ss->conn); /* the greeting; data may have come with the handshake's ACK */
}

static const struct tcp_ops ib_listen_ops = {.accepted = ib_accepted};

/* ---- the worker's side ---- */

static struct inbound *ib_get(struct worker *w)
{
	struct inbound *ib = w->inbound;

	if (ib != NULL)
		return ib;
	ib = worker_alloc(w, sizeof(*ib));
	if (ib == NULL)
		return NULL;
	ib->w = w;
	pg_list_init(&ib->sessions);
	pg_list_init(&ib->waiting);
	smtp_server_config_default(&ib->cfg);
	ib->cfg.ops = &ib_smtp_ops;
	snprintf(ib->hostname, sizeof(ib->hostname), "localhost");
	ib->cfg.hostname = ib->hostname;
	ib->max_sessions = 1000;
	w->inbound = ib;
	return ib;
}

static void *ib_spool_alloc(size_t size, void *owner)
{
	return worker_alloc(owner, size);
}

static void ib_spool_free(void *p, void *owner)
{
	worker_free(owner, p);
}

static void ib_spool_log(enum spool_log_level level, const char *msg, void *owner)
{
	struct worker *w = owner;

	switch (level) {
	case SPOOL_LOG_ERR:
		RTE_LOG(ERR, USER1, "worker %u: spool: %s\n", w->id, msg);
		break;
	case SPOOL_LOG_WARNING:
		RTE_LOG(WARNING, USER1, "worker %u: spool: %s\n", w->id, msg);
		break;
	case SPOOL_LOG_NOTICE:
		RTE_LOG(NOTICE, USER1, "worker %u: spool: %s\n", w->id, msg);
		break;
	default:
		RTE_LOG(INFO, USER1, "worker %u: spool: %s\n", w->id, msg);
		break;
	}
}

int inbound_spool_open(struct worker *w, const char *dir, const void *iowq_cpus,
                       size_t iowq_cpus_size, char *err, size_t errlen)
{
	struct spool_config cfg;
	struct spool_replay_report rep;
	struct spool *sp = NULL;

	memset(&cfg, 0, sizeof(cfg));
	cfg.dir = dir;
	cfg.worker = w->id;
	cfg.iowq_cpus = iowq_cpus;
	cfg.iowq_cpus_size = iowq_cpus_size;
	cfg.alloc = ib_spool_alloc;
	cfg.free = ib_spool_free;
	cfg.alloc_arg = w;
	cfg.log = ib_spool_log;
	cfg.log_arg = w;
	memset(&rep, 0, sizeof(rep));
	if (spool_open(&cfg, &sp, &rep) != PG_OK) {
		snprintf(err, errlen, "cannot open the spool %s/w%u: %s", dir, w->id,
		         strerror(errno));
		return PG_ERROR;
	}
	RTE_LOG(NOTICE, USER1,
	        "worker %u: spool %s/w%u: %u segment(s), %u message(s) queued, %u done, "
	        "%u discarded, %u torn; damage: %u corrupt, %u damaged, %u bad segment(s)\n",
	        w->id, dir, w->id, rep.segments, rep.queued, rep.done, rep.discarded, rep.torn,
	        rep.corrupt, rep.damaged, rep.bad_segments);
	w->spool = sp;
	w->ctr[CTR_spool_queued] = spool_queue_count(sp);
	return PG_OK;
}

/*
 * The listeners of both families on port (0: none): 0.0.0.0 and ::, so
 * every address of the worker, IPv4 or IPv6, takes mail (a port without
 * IPv6 simply never sees an IPv6 SYN). A family that cannot listen is
 * logged; the other one still runs.
 */
static void ib_listen(struct inbound *ib, uint16_t port)
{
	struct worker *w = ib->w;
	const struct pg_addr any[2] = {pg_addr_any(PG_AF_INET), pg_addr_any(PG_AF_INET6)};
	bool *on[2] = {&ib->listening, &ib->listening6};

	for (int f = 0; f < 2; f++) {
		int rc;

		if (*on[f] && ib->port != port) {
			tcp_unlisten_addr(w, &any[f], ib->port);
			*on[f] = false;
		}
		if (port == 0 || *on[f])
			continue;
		rc = tcp_listen_addr(w, &any[f], port, &ib_listen_ops, ib);
		if (rc == PG_OK)
			*on[f] = true;
		else
			RTE_LOG(ERR, USER1,
			        "worker %u: smtp_service: cannot listen on %s port %u%s\n", w->id,
			        f == 0 ? "IPv4" : "IPv6", port,
			        rc == PG_DECLINED ? " (already taken)" : "");
	}
	ib->port = port;
}

/*
 * This generation's STARTTLS: a new server context with its certificates
 * and ticket keys. Sessions in a handshake or in TLS keep the old one
 * (each SSL holds a reference): rotation never disturbs them.
 */
static void ib_tls_adopt(struct inbound *ib, const struct snap_header *h)
{
	const struct snap_inbound_tls *it;
	uint32_t n = 0;
	uint8_t level = SNAP_TLS_MAY;
	char err[160];
	SSL_CTX *ctx = NULL;

	it = snap_section(h, SNAP_SEC_INBOUND_TLS, &n);
	if (it != NULL && n == 1)
		level = it->level;
	if (level != SNAP_TLS_NONE) {
		uint32_t ncerts = 0;

		(void)snap_section(h, SNAP_SEC_TLS_CERTS, &ncerts);
		if (ncerts > 0) {
			ctx = tls_server_ctx_new(h, err, sizeof(err));
			if (ctx == NULL)
				RTE_LOG(ERR, USER1, "worker %u: STARTTLS off: %s\n", ib->w->id, err);
		} else if (level == SNAP_TLS_ENCRYPT && !ib->warned_no_certs) {
			RTE_LOG(WARNING, USER1,
			        "worker %u: smtpd_tls_security_level = encrypt without "
			        "tls_certificates: no client can send mail\n",
			        ib->w->id);
			ib->warned_no_certs = true;
		}
	}
	if (ib->tls_ctx != NULL)
		tls_server_ctx_put(ib->tls_ctx);
	ib->tls_ctx = ctx;
	ib->cfg.starttls = ctx != NULL;
}

void inbound_adopt(struct worker *w, const struct snap_header *h)
{
	const struct snap_smtp *t;
	struct inbound *ib;
	uint32_t n;
	bool on;

	if (w->tcp == NULL || w->timers == NULL || h == NULL)
		return;
	t = snap_section(h, SNAP_SEC_SMTP, &n);
	if (t != NULL && n != 1)
		t = NULL;
	on = t != NULL && (t->flags & SNAP_SMTP_F_SERVICE) != 0;
	if (!on && w->inbound == NULL)
		return;
	ib = ib_get(w);
	if (ib == NULL)
		return;
	if (on && w->spool == NULL) {
		if (!ib->warned_no_spool)
			RTE_LOG(WARNING, USER1,
			        "worker %u: smtp_service = yes needs a spool: restart postern-dp\n",
			        w->id);
		ib->warned_no_spool = true;
		on = false;
	}
	if (t != NULL) {
		snprintf(ib->hostname, sizeof(ib->hostname), "%s", snap_string(h, t->myhostname));
		ib->cfg.max_message_size = setting_u64(h, SET_message_size_limit);
		ib->cfg.max_rcpt = (uint32_t)setting_u64(h, SET_smtpd_recipient_limit);
		ib->cfg.max_hops = (uint32_t)setting_u64(h, SET_hopcount_limit);
		ib->cfg.bare = (t->flags & SNAP_SMTP_F_BARE_NORMALIZE) != 0 ? SMTP_BARE_NORMALIZE
		                                                            : SMTP_BARE_REJECT;
		ib->max_sessions = (uint32_t)setting_u64(h, SET_smtp_max_sessions);
	}
	ib_tls_adopt(ib, h);
	ib_listen(ib, on ? t->listen_port : 0);
}

/* Retry what a parked session asked the spool for; then run it. */
static void ib_retry(struct ib_session *ss, enum ib_wait why)
{
	struct smtp_verdict v = {0};
	int rc;

	switch (why) {
	case IB_WAIT_BEGIN:
		rc = ib_begin(ss, &v);
		if (rc == PG_AGAIN) {
			ib_wait(ss, IB_WAIT_BEGIN);
			return;
		}
		smtp_server_resume(ss->smtp, rc, &v);
		break;
	case IB_WAIT_COMMIT:
		rc = ib_commit(ss, &v);
		if (rc == PG_AGAIN)
			return; /* committing now, or still waiting */
		smtp_server_message_committed(ss->smtp, false, &v);
		break;
	default:
		break; /* APPEND: feeding again retries it */
	}
	conn_run(&ss->conn);
}

unsigned inbound_poll(struct worker *w)
{
	struct inbound *ib = w->inbound;
	struct spool *sp = w->spool;
	const struct spool_stats *st;
	unsigned n;

	if (sp == NULL)
		return 0;
	n = spool_poll(sp);
	if (ib != NULL && !pg_list_empty(&ib->waiting)) {
		/* take the list: a session still waiting puts itself back */
		struct pg_list batch;

		pg_list_splice_init(&ib->waiting, &batch);
		while (!pg_list_empty(&batch)) {
			struct ib_session *ss = PG_LIST_FIRST(&batch, struct ib_session, wlink);
			enum ib_wait why = ss->spool_wait;

			/* a session freed meanwhile leaves the batch (ib_unwait) */
			ib_unwait(ss);
			ib_retry(ss, why);
		}
	}
	if (spool_state(sp) == SPOOL_FAILED && w->now_ns >= (ib != NULL ? ib->next_resume_ns : 0)) {
		if (ib != NULL)
			ib->next_resume_ns = w->now_ns + INBOUND_RESUME_NS;
		if (spool_resume(sp) == PG_OK)
			RTE_LOG(NOTICE, USER1, "worker %u: spool resumed on a fresh segment\n",
			        w->id);
	}
	st = spool_stats(sp);
	w->ctr[CTR_spool_commits] = st->commits;
	w->ctr[CTR_spool_fsyncs] = st->fsyncs;
	w->ctr[CTR_spool_queued] = spool_queue_count(sp);
	return n;
}

bool inbound_busy(const struct worker *w)
{
	return w->spool != NULL && spool_busy(w->spool);
}

void inbound_destroy(struct worker *w)
{
	struct inbound *ib = w->inbound;

	if (ib == NULL)
		return;
	while (!pg_list_empty(&ib->sessions)) {
		struct ib_session *ss = PG_LIST_FIRST(&ib->sessions, struct ib_session, link);

		conn_destroy(&ss->conn);
		ib_free(ss);
	}
	ib_listen(ib, 0);
	if (ib->tls_ctx != NULL)
		tls_server_ctx_put(ib->tls_ctx);
	worker_free(w, ib);
	w->inbound = NULL;
}

bool inbound_listening(const struct worker *w)
{
	return w->inbound != NULL && w->inbound->listening;
}

uint32_t inbound_sessions(const struct worker *w)
{
	return w->inbound != NULL ? w->inbound->nsessions : 0;
}

uint32_t inbound_sessions_on_spool(const struct worker *w)
{
	uint32_t n = 0;

	if (w->inbound == NULL)
		return 0;
	struct pg_list *node, *tmp;

	pg_list_foreach_safe(node, tmp, &w->inbound->sessions)
	{
		const struct ib_session *ss = PG_LIST_ENTRY(node, struct ib_session, link);

		n += ss->committing || ss->spool_wait != IB_WAIT_NONE;
	}
	return n;
}

void inbound_set_clock(struct worker *w, time_t (*now)(void))
{
	struct inbound *ib = ib_get(w);

	if (ib != NULL)
		ib->now = now;
}
