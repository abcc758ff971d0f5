/*
 * gen_client.c - postern-gen's client mode: SMTP sessions from Postern's
 * own client engine (dataplane/smtp/smtp_client) over the userspace TCP
 * stack, with STARTTLS on crypto/tls_stream, timing every phase.
 *
 * Load models:
 * - closed loop (--rate 0): --sessions connections at all times; each
 *   sends --per-conn messages back to back, QUITs, and is replaced.
 * - open loop (--rate R): message i is due at start + i/R whatever the
 *   server does; a due message goes to an idle session, or opens a new
 *   connection while fewer than --sessions exist, or waits. Its
 *   "message" latency runs from the time it was due, so a slow server
 *   shows as latency and not as a lower offered rate (no coordinated
 *   omission, as wrk2 and HdrHistogram's docs describe).
 *
 * Every connection carries a message from the moment it is opened, so a
 * refused or timed-out connection is a failed message: --messages bounds
 * the attempts as well as the successes. With --per-conn 0 sessions carry
 * no mail (greeting, EHLO, STARTTLS, EHLO, QUIT: the handshake benchmark)
 * and --messages counts sessions.
 *
 * Phase latencies come from the engine's reply upcall: each reply is
 * timed from the previous event of the session (connect, the previous
 * reply, the end of the TLS handshake, the message handed to the engine);
 * end of data from the moment the final "." was queued. With pipelining,
 * MAIL carries the round trip and RCPT/DATA replies that arrive in the
 * same segment show as near zero - which is what pipelining buys.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_common.h>

#include "gen.h"
#include "result.h"
#include "timer.h"
#include "worker.h"
#include "net/tcp.h"
#include "relay/conn.h"
#include "smtp/smtp_client.h"
#include "tls_stream.h"

#define GC_LINGER_NS (5ull * 1000 * 1000 * 1000) /* the peer must take our last bytes */
#define GC_DUE_CAP (1u << 16)

struct gc_sess {
	struct gen *g;
	struct pg_list link;      /* g->sessions */
	struct pg_list idle_link; /* g->idle: open loop, waiting for a message */
	struct conn conn;         /* TCP, STARTTLS, the engine's I/O (relay/conn.h) */
	struct smtp_client *smtp;
	bool established, idle;
	bool has_msg;  /* a message is in flight (taken, not yet accounted) */
	bool msg_sent; /* ...and handed to the engine */
	bool msg_done; /* message_done came: account it outside the engine */
	int conn_err;  /* enum gen_err of the connection's end, -1 = none */
	uint32_t msgs; /* messages on this connection */
	uint64_t t_open, t_mark, t_eod, t_tls;
	/* the message */
	uint64_t intended;
	uint64_t size, off;
	uint32_t r_ok, r_temp, r_perm, r_local;
	int local_err;
	struct smtp_client_envelope env;
	const char **rcpts;
	char *rbuf;
	char hdr[384];
	size_t hdr_len;
};

static uint64_t gc_now(const struct gen *g)
{
	return g->w->now_ns;
}

/* ---- lists ---- */

static void gc_idle_add(struct gc_sess *s)
{
	struct gen *g = s->g;

	if (s->idle)
		return;
	s->idle = true;
	pg_list_add(&g->idle, &s->idle_link);
}

static void gc_idle_del(struct gc_sess *s)
{
	if (!s->idle)
		return;
	s->idle = false;
	pg_list_del(&s->idle_link);
}

/* ---- the message ---- */

static uint64_t gc_pick_size(struct gen *g)
{
	double total = 0, x;

	if (g->o.nsizes == 1)
		return g->o.size[0];
	for (unsigned i = 0; i < g->o.nsizes; i++)
		total += g->o.size_w[i];
	x = gen_rand01(g) * total;
	for (unsigned i = 0; i < g->o.nsizes; i++) {
		if (x < g->o.size_w[i])
			return g->o.size[i];
		x -= g->o.size_w[i];
	}
	return g->o.size[g->o.nsizes - 1];
}

/* Hand the session's message to the engine. */
static void gc_send(struct gc_sess *s)
{
	struct gen *g = s->g;
	int n;

	s->size = gc_pick_size(g);
	n = snprintf(s->hdr, sizeof(s->hdr),
	             "From: <%s>\r\nTo: <%s>\r\nSubject: postern-gen message %lu\r\n"
	             "Message-ID: <%lu.%lu@postern-gen.invalid>\r\n\r\n",
	             g->o.from, s->rcpts[0], (unsigned long)g->n.msgs_started,
	             (unsigned long)g->n.msgs_started, (unsigned long)g->o.seed);
	s->hdr_len = (size_t)n < sizeof(s->hdr) ? (size_t)n : sizeof(s->hdr) - 1;
	if (s->size < s->hdr_len)
		s->size = s->hdr_len; /* the smallest message is its header */
	s->off = 0;
	s->r_ok = s->r_temp = s->r_perm = s->r_local = 0;
	s->local_err = -1;
	s->env.sender = g->o.from;
	s->env.rcpts = s->rcpts;
	s->env.nrcpt = g->o.rcpts;
	s->env.size = s->size;
	s->msgs++;
	s->msg_sent = true;
	s->t_mark = gc_now(g);
	(void)smtp_client_send(s->smtp, &s->env);
}

/*
 * A message for this session now? Closed loop: while the budget lasts.
 * Open loop: the oldest due message. *intended: when it was due.
 */
static bool gc_take(struct gen *g, uint64_t *intended)
{
	if (g->o.rate > 0) {
		if (g->due_len == 0)
			return false;
		*intended = g->due[g->due_head];
		g->due_head = (g->due_head + 1) % g->due_cap;
		g->due_len--;
	} else {
		if (g->stopping)
			return false;
		if (g->o.messages != 0 && g->n.msgs_started >= g->o.messages)
			return false;
		*intended = gc_now(g);
	}
	g->n.msgs_started++;
	return true;
}

/* The outcome of the session's message, once. */
static void gc_account(struct gc_sess *s)
{
	struct gen *g = s->g;
	uint64_t now = gc_now(g);

	if (!s->has_msg)
		return;
	s->has_msg = false;
	s->msg_sent = false;
	s->msg_done = false;
	g->n.rcpts_accepted += s->r_ok;
	g->n.rcpts_tempfail += s->r_temp;
	g->n.rcpts_permfail += s->r_perm;
	if (s->r_ok == g->o.rcpts) {
		g->n.msgs_accepted++;
		g->n.msg_bytes += s->size;
		gen_hist_add(&g->lat[GEN_L_MESSAGE], now - s->intended);
	} else if (s->r_local > 0 || s->r_ok + s->r_temp + s->r_perm < g->o.rcpts) {
		int kind = s->conn_err >= 0 ? s->conn_err : s->local_err;

		g->n.msgs_failed++;
		g->n.err[kind >= 0 ? kind : GEN_E_PROTOCOL]++;
	} else if (s->r_temp > 0) {
		g->n.msgs_tempfail++;
	} else {
		g->n.msgs_permfail++;
	}
}

/* After a message: the next one, wait for one (open loop), or QUIT. */
static void gc_next(struct gc_sess *s)
{
	struct gen *g = s->g;

	if (conn_state(&s->conn) != CONN_S_OPEN || s->smtp == NULL)
		return;
	if (s->msgs < g->o.per_conn && smtp_client_reusable(s->smtp)) {
		if (gc_take(g, &s->intended)) {
			s->has_msg = true;
			gc_send(s);
			return;
		}
		if (g->o.rate > 0 && !g->stopping) {
			gc_idle_add(s);
			return;
		}
	}
	smtp_client_quit(s->smtp);
}

/* ---- engine upcalls ---- */

static int gc_body_read(struct smtp_client *c, const uint8_t **p, size_t *n, void *owner)
{
	struct gc_sess *s = owner;
	struct gen *g = s->g;
	size_t pos;

	(void)c;
	if (s->off < s->hdr_len) {
		*p = (const uint8_t *)s->hdr + s->off;
		*n = s->hdr_len - s->off;
		s->off = s->hdr_len;
		return PG_OK;
	}
	if (s->off >= s->size)
		return PG_DONE;
	pos = (size_t)((s->off - s->hdr_len) % g->filler_len);
	*p = g->filler + pos;
	*n = (size_t)RTE_MIN((uint64_t)(g->filler_len - pos), s->size - s->off);
	s->off += *n;
	return PG_OK;
}

static int gc_local_kind(const struct smtp_client_reply *r)
{
	if (r->phase == SMTP_PHASE_TLS)
		return GEN_E_TLS;
	if (r->phase == SMTP_PHASE_POLICY)
		return GEN_E_NO_STARTTLS;
	if (strstr(r->text, "timed out") != NULL)
		return GEN_E_SMTP_TIMEOUT;
	if (strstr(r->text, "Lost connection") != NULL)
		return GEN_E_CLOSED;
	return GEN_E_PROTOCOL;
}

static void gc_rcpt_result(struct smtp_client *c, uint32_t i, const struct smtp_client_reply *r,
                           void *owner)
{
	struct gc_sess *s = owner;

	(void)c, (void)i;
	if (r->local && r->code >= 400) {
		s->r_local++;
		if (s->local_err < 0)
			s->local_err = gc_local_kind(r);
	} else if (r->code < 300) {
		s->r_ok++;
	} else if (r->code < 500) {
		s->r_temp++;
	} else {
		s->r_perm++;
	}
}

static void gc_message_done(struct smtp_client *c, void *owner)
{
	struct gc_sess *s = owner;

	(void)c;
	s->msg_done = true;
}

static void gc_starttls(struct smtp_client *c, void *owner)
{
	struct gc_sess *s = owner;

	(void)c;
	conn_starttls(&s->conn, s->g->ssl_ctx);
}

static int gc_helo_done(struct smtp_client *c, const struct smtp_client_info *info,
                        struct smtp_client_reply *r, void *owner)
{
	struct gc_sess *s = owner;

	(void)c;
	if (s->g->o.starttls && !info->tls) {
		r->code = 451;
		snprintf(r->status, sizeof(r->status), "4.7.4");
		snprintf(r->text, sizeof(r->text), "STARTTLS wanted but not offered");
		return PG_DECLINED;
	}
	return PG_OK;
}

static void gc_trace(struct smtp_client *c, const char *from, const char *to, void *owner)
{
	struct gc_sess *s = owner;

	(void)c, (void)from;
	if (strcmp(to, "DOT") == 0)
		s->t_eod = gc_now(s->g);
}

static void gc_reply(struct smtp_client *c, const struct smtp_client_reply *r, void *owner)
{
	struct gc_sess *s = owner;
	struct gen *g = s->g;
	uint64_t now = gc_now(g);
	int l;

	(void)c;
	switch (r->phase) {
	case SMTP_PHASE_GREETING: l = GEN_L_GREETING; break;
	case SMTP_PHASE_EHLO:
	case SMTP_PHASE_HELO: l = GEN_L_EHLO; break;
	case SMTP_PHASE_STARTTLS: l = GEN_L_STARTTLS; break;
	case SMTP_PHASE_RSET: l = GEN_L_RSET; break;
	case SMTP_PHASE_MAIL: l = GEN_L_MAIL; break;
	case SMTP_PHASE_RCPT: l = GEN_L_RCPT; break;
	case SMTP_PHASE_DATA: l = GEN_L_DATA; break;
	case SMTP_PHASE_EOD: l = GEN_L_EOD; break;
	case SMTP_PHASE_QUIT: l = GEN_L_QUIT; break;
	default: l = -1; break;
	}
	if (l == GEN_L_EOD && s->t_eod != 0) {
		gen_hist_add(&g->lat[l], now - s->t_eod);
		s->t_eod = 0;
	} else if (l >= 0) {
		gen_hist_add(&g->lat[l], now - s->t_mark);
	}
	s->t_mark = now;
}

static const struct smtp_client_ops gc_smtp_ops = {
    .body_read = gc_body_read,
    .rcpt_result = gc_rcpt_result,
    .message_done = gc_message_done,
    .starttls = gc_starttls,
    .helo_done = gc_helo_done,
    .trace = gc_trace,
    .reply = gc_reply,
};

/* ---- the connection's events ---- */

/* The stream exists: a ticket to resume with, the SNI name. */
static void gc_tls_start(struct gc_sess *s)
{
	struct gen *g = s->g;
	SSL *ssl = conn_ssl(&s->conn);

	s->t_tls = gc_now(g);
	if (g->o.resume && g->ntickets > 0) {
		SSL_SESSION *t = g->tickets[--g->ntickets];

		SSL_set_session(ssl, t); /* takes its own reference */
		SSL_SESSION_free(t);
	} else if (g->o.resume && g->resume_sess != NULL) {
		SSL_set_session(ssl, g->resume_sess);
	}
	if (g->o.sni != NULL)
		SSL_set_tlsext_host_name(ssl, g->o.sni);
}

static void gc_tls_done(struct gc_sess *s)
{
	struct gen *g = s->g;

	if (!conn_tls_on(&s->conn)) {
		s->conn_err = GEN_E_TLS;
		smtp_client_tls_done(s->smtp, false);
		return;
	}
	g->n.tls_handshakes++;
	if (tls_stream_resumed(conn_stream(&s->conn)))
		g->n.tls_resumed++;
	gen_hist_add(&g->lat[GEN_L_TLS], gc_now(g) - s->t_tls);
	s->t_mark = gc_now(g);
	smtp_client_tls_done(s->smtp, true);
}

/* How the connection ended, as the generator counts it (-1: normally). */
static int gc_end_kind(const struct gc_sess *s)
{
	switch (conn_end(&s->conn)) {
	case CONN_END_REFUSED:
		return GEN_E_REFUSED;
	case CONN_END_TIMEOUT:
		return GEN_E_CONN_TIMEOUT;
	case CONN_END_RESET:
	case CONN_END_LINGER:
		return GEN_E_RESET;
	case CONN_END_NOROUTE:
		return GEN_E_NO_PORT;
	default:
		return s->has_msg ? GEN_E_CLOSED : -1;
	}
}

static void gc_free(struct gc_sess *s)
{
	struct gen *g = s->g;

	if (s->conn_err < 0)
		s->conn_err = gc_end_kind(s);
	if (s->has_msg) {
		if (!s->msg_sent) {
			/* the connection never got to SMTP */
			g->n.msgs_failed++;
			g->n.err[s->conn_err >= 0 ? s->conn_err : GEN_E_CLOSED]++;
			s->has_msg = false;
		} else if (s->msg_done) {
			gc_account(s);
		} else {
			g->n.msgs_failed++;
			g->n.err[GEN_E_UNFINISHED]++;
			s->has_msg = false;
		}
	} else if (s->conn_err >= 0 && s->conn_err != GEN_E_CLOSED) {
		g->n.err[s->conn_err]++; /* between messages */
	}
	if (s->established)
		g->n.conns_closed++;
	gc_idle_del(s);
	if (s->smtp != NULL)
		smtp_client_destroy(s->smtp);
	pg_list_del(&s->link);
	g->nsess--;
	free(s->rcpts);
	free(s->rbuf);
	worker_free(g->w, s);
}

static void gc_connected(struct gc_sess *s)
{
	struct gen *g = s->g;
	struct smtp_client_config cfg;
	uint64_t now = gc_now(g);

	s->established = true;
	g->n.conns_established++;
	gen_hist_add(&g->lat[GEN_L_CONNECT], now - s->t_open);
	s->t_mark = now;
	smtp_client_config_default(&cfg);
	cfg.ops = &gc_smtp_ops;
	cfg.owner = s;
	cfg.helo_name = g->o.helo;
	cfg.starttls = g->o.starttls;
	cfg.no_pipelining = !g->o.pipelining;
	cfg.greeting_timeout_ms = cfg.helo_timeout_ms = cfg.mail_timeout_ms =
	    cfg.rcpt_timeout_ms = cfg.data_timeout_ms = cfg.block_timeout_ms =
	        cfg.dot_timeout_ms = cfg.rset_timeout_ms = cfg.quit_timeout_ms =
	            (uint32_t)(g->o.drain_s * 1000);
	s->smtp = smtp_client_create(&cfg);
	if (s->smtp == NULL) {
		s->conn_err = GEN_E_PROTOCOL;
		conn_close(&s->conn, true);
		return;
	}
	conn_attach(&s->conn, &conn_smtp_client, s->smtp);
	if (g->o.per_conn == 0)
		smtp_client_quit(s->smtp); /* sessions only: EHLO, STARTTLS, EHLO, QUIT */
	else
		gc_send(s);
}

static bool gc_event(struct conn *c, enum conn_event ev, void *owner)
{
	struct gc_sess *s = owner;

	(void)c;
	switch (ev) {
	case CONN_EV_CONNECTED:
		gc_connected(s);
		return false;
	case CONN_EV_INPUT:
		if (conn_peer_left(&s->conn) && s->conn_err < 0)
			s->conn_err = gc_end_kind(s);
		if (!s->msg_done)
			return false;
		gc_account(s);
		gc_next(s);
		return true;
	case CONN_EV_TLS_START:
		gc_tls_start(s);
		return true;
	case CONN_EV_TLS_DONE:
		gc_tls_done(s);
		return true;
	case CONN_EV_TIMEOUT:
		if (conn_tls(&s->conn) == CONN_TLS_HANDSHAKE) {
			s->conn_err = GEN_E_TLS;
			smtp_client_closed(s->smtp);
			conn_close(&s->conn, true);
		}
		return false;
	case CONN_EV_CLOSED:
		gc_free(s);
		return false;
	}
	return false;
}

static const struct conn_ops gc_conn_ops = {.event = gc_event};

/* Open a connection carrying the message due at `intended`. */
static int gc_open(struct gen *g, uint64_t intended)
{
	struct gc_sess *s = worker_alloc(g->w, sizeof(*s));
	size_t per;
	char *p;
	int rc;

	if (s == NULL)
		return PG_ERROR;
	per = strlen(g->o.to_domain) + 16;
	s->rcpts = calloc(g->o.rcpts, sizeof(*s->rcpts));
	s->rbuf = malloc(per * g->o.rcpts);
	if (s->rcpts == NULL || s->rbuf == NULL) {
		free(s->rcpts);
		free(s->rbuf);
		worker_free(g->w, s);
		return PG_ERROR;
	}
	p = s->rbuf;
	for (uint32_t i = 0; i < g->o.rcpts; i++) {
		snprintf(p, per, "r%u@%s", i, g->o.to_domain);
		s->rcpts[i] = p;
		p += per;
	}
	s->g = g;
	s->conn_err = -1;
	s->local_err = -1;
	s->intended = intended;
	s->t_open = gc_now(g);
	conn_init(&s->conn, g->w, &gc_conn_ops, s);
	s->conn.handshake_timeout_ms = (uint32_t)(g->o.drain_s * 1000);
	s->conn.linger_ns = GC_LINGER_NS;
	/* no connect timeout: TCP's own SYN retries bound it */
	rc = conn_connect(&s->conn, g->o.server, g->o.server_port, 0);
	if (rc != PG_OK) {
		free(s->rcpts);
		free(s->rbuf);
		worker_free(g->w, s);
		return rc;
	}
	s->has_msg = g->o.per_conn > 0;
	pg_list_init(&s->idle_link);
	pg_list_add(&g->sessions, &s->link);
	g->nsess++;
	g->n.conns_opened++;
	return PG_OK;
}

/* ---- the mode ---- */

/*
 * Before the clock starts: one connection, aborted once it is up, so that
 * ARP is resolved on both sides. Otherwise the first burst of SYNs meets
 * the peer's bounded queue of packets waiting for ARP, and a dropped
 * SYN-ACK shows as a one-second connect time (the SYN retransmission).
 */
static void gc_warm_done(struct tcp_conn *c, void *user)
{
	*(int *)user = 1;
	tcp_abort(c);
}

static void gc_warm_error(struct tcp_conn *c, enum tcp_error err, void *user)
{
	(void)err;
	*(int *)user = 2;
	tcp_close(c);
}

static const struct tcp_ops gc_warm_ops = {.connected = gc_warm_done, .error = gc_warm_error};

int gen_client_warmup(struct gen *g, unsigned (*poll)(struct gen *))
{
	static int state;
	struct tcp_conn *c;

	state = 0;
	if (tcp_connect(g->w, g->o.server, g->o.server_port, &gc_warm_ops, &state, &c) != PG_OK)
		return PG_ERROR;
	for (int i = 0; i < 5000 && state == 0; i++) {
		if (poll(g) == 0)
			usleep(1000);
	}
	return state == 1 ? PG_OK : PG_ERROR;
}

int gen_client_start(struct gen *g)
{
	static const char line[] = "The quick brown fox jumps over the lazy dog; "
	                           "postern-gen filler text 0123456789\r\n";
	size_t ll = sizeof(line) - 1, lines = 840; /* 78 * 840 = 65520 octets */

	pg_list_init(&g->sessions);
	pg_list_init(&g->idle);

	g->filler_len = ll * lines;
	g->filler = malloc(g->filler_len);
	if (g->filler == NULL)
		return PG_ERROR;
	for (size_t i = 0; i < lines; i++)
		memcpy(g->filler + i * ll, line, ll);
	if (g->o.rate > 0) {
		g->due_cap = GC_DUE_CAP;
		g->due = calloc(g->due_cap, sizeof(*g->due));
		if (g->due == NULL)
			return PG_ERROR;
		g->next_due_ns = g->start_ns;
	}
	return PG_OK;
}

/* Open-loop schedule: every message due by now goes on the due queue. */
static unsigned gc_schedule(struct gen *g)
{
	uint64_t now = gc_now(g), step = (uint64_t)(1e9 / g->o.rate);
	unsigned n = 0;

	if (step == 0)
		step = 1;
	while (!g->stopping && g->next_due_ns <= now) {
		if (g->o.messages != 0 && g->n.msgs_started + g->due_len >= g->o.messages) {
			g->stopping = true;
			break;
		}
		if (g->due_len == g->due_cap) {
			g->n.err[GEN_E_BACKLOG]++;
		} else {
			g->due[(g->due_head + g->due_len) % g->due_cap] = g->next_due_ns;
			g->due_len++;
		}
		g->next_due_ns += step;
		n++;
	}
	return n;
}

static void gc_abort_all(struct gen *g)
{
	while (!pg_list_empty(&g->sessions)) {
		struct gc_sess *s = PG_LIST_FIRST(&g->sessions, struct gc_sess, link);

		if (s->has_msg && s->msg_sent && !s->msg_done) {
			s->has_msg = false;
			g->n.msgs_failed++;
			g->n.err[GEN_E_UNFINISHED]++;
		}
		conn_close(&s->conn, true);
	}
	g->n.err[GEN_E_UNFINISHED] += g->due_len;
	g->n.msgs_failed += g->due_len;
	g->n.msgs_started += g->due_len;
	g->due_len = 0;
}

unsigned gen_client_poll(struct gen *g)
{
	uint64_t now = gc_now(g);
	unsigned work = 0;

	if (!g->stopping && g->o.duration_s > 0 && now >= g->stop_ns)
		g->stopping = true;
	if (g->o.rate > 0) {
		work += gc_schedule(g);
		while (g->due_len > 0) {
			uint64_t intended;

			if (!pg_list_empty(&g->idle)) {
				struct gc_sess *s =
				    PG_LIST_FIRST(&g->idle, struct gc_sess, idle_link);

				gc_idle_del(s);
				(void)gc_take(g, &s->intended);
				s->has_msg = true;
				gc_send(s);
				conn_run(&s->conn);
				work++;
				continue;
			}
			if (g->nsess >= g->o.sessions)
				break;
			intended = g->due[g->due_head];
			if (gc_open(g, intended) != PG_OK) {
				g->n.err[GEN_E_NO_PORT]++;
				break;
			}
			g->due_head = (g->due_head + 1) % g->due_cap;
			g->due_len--;
			g->n.msgs_started++;
			work++;
		}
		if (g->stopping && g->due_len == 0) {
			while (!pg_list_empty(&g->idle)) {
				struct gc_sess *s =
				    PG_LIST_FIRST(&g->idle, struct gc_sess, idle_link);

				gc_idle_del(s);
				smtp_client_quit(s->smtp);
				conn_run(&s->conn);
				work++;
			}
		}
	} else {
		/* --per-conn 0: --messages counts sessions */
		uint64_t *started = g->o.per_conn > 0 ? &g->n.msgs_started : &g->n.conns_opened;

		if (!g->stopping && g->o.messages != 0 && *started >= g->o.messages)
			g->stopping = true;
		while (!g->stopping && g->nsess < g->o.sessions &&
		       (g->o.messages == 0 || *started < g->o.messages)) {
			if (gc_open(g, now) != PG_OK) {
				g->n.err[GEN_E_NO_PORT]++;
				break;
			}
			if (g->o.per_conn > 0)
				g->n.msgs_started++;
			work++;
		}
	}
	if (g->stopping) {
		if (g->drain_from_ns == 0)
			g->drain_from_ns = now;
		if (g->nsess == 0 && g->due_len == 0) {
			g->done = true;
		} else if (now >= g->drain_from_ns + (uint64_t)(g->o.drain_s * 1e9)) {
			gc_abort_all(g);
			g->done = true;
		}
	}
	return work;
}
