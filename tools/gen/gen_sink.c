/*
 * gen_sink.c - postern-gen's sink mode: a next hop on Postern's own SMTP
 * server engine (dataplane/smtp/smtp_server) over the userspace TCP stack.
 * It stores nothing. Per message (or per recipient with --fail-at rcpt)
 * it draws from --seed whether to answer 4xx (--tempfail PCT), 5xx
 * (--permfail PCT) or accept; it can hold every end-of-data reply
 * (--delay MS) and the greeting (--greet-delay MS), and offers STARTTLS
 * with the certificate of --cert. Counts are printed at exit (SIGTERM,
 * SIGINT or --duration).
 */
#include <arpa/inet.h>
#include <string.h>

#include <rte_common.h>

#include "gen.h"
#include "result.h"
#include "timer.h"
#include "worker.h"
#include "net/tcp.h"
#include "relay/conn.h"
#include "smtp/smtp_server.h"
#include "tls_stream.h"

#define GS_LINGER_NS (5ull * 1000 * 1000 * 1000)

struct gs_sess {
	struct gen *g;
	struct conn conn; /* TCP, STARTTLS, the engine's I/O (relay/conn.h) */
	struct smtp_server *smtp;
	struct timer timer; /* --delay of a held reply, --greet-delay */
	bool holding;       /* an end-of-data reply waits for --delay */
	int held_rc;        /* PG_OK, PG_ERROR (4xx) or PG_DECLINED (5xx) */
	bool greeting_held; /* --greet-delay: the engine is attached (and greets) when the timer
	                       fires */
	char peer[INET_ADDRSTRLEN];
};

static const struct smtp_verdict gs_temp = {451, "4.3.2", "postern-gen sink: injected temporary failure"};
static const struct smtp_verdict gs_perm = {554, "5.7.1", "postern-gen sink: injected permanent failure"};

/* PG_OK, PG_ERROR (tempfail) or PG_DECLINED (permfail), drawn per --seed. */
static int gs_draw(struct gen *g)
{
	double x = gen_rand01(g) * 100.0;

	if (x < g->o.tempfail_pct)
		return PG_ERROR;
	if (x < g->o.tempfail_pct + g->o.permfail_pct)
		return PG_DECLINED;
	return PG_OK;
}

static int gs_verdict(int rc, struct smtp_verdict *v)
{
	if (rc == PG_ERROR)
		*v = gs_temp;
	else if (rc == PG_DECLINED)
		*v = gs_perm;
	return rc;
}

/* ---- engine upcalls ---- */

static int gs_rcpt_to(struct smtp_server *smtp, const struct smtp_envelope *env,
                      const struct smtp_rcpt *rcpt, struct smtp_verdict *v, void *owner)
{
	struct gs_sess *s = owner;
	struct gen *g = s->g;
	int rc = g->o.fail_at_rcpt ? gs_draw(g) : PG_OK;

	(void)smtp, (void)env, (void)rcpt;
	if (rc == PG_OK)
		g->n.rcpts_accepted++;
	else if (rc == PG_ERROR)
		g->n.rcpts_tempfail++;
	else
		g->n.rcpts_permfail++;
	return gs_verdict(rc, v);
}

static int gs_data_start(struct smtp_server *smtp, const struct smtp_envelope *env,
                         struct smtp_verdict *v, void *owner)
{
	struct gs_sess *s = owner;

	(void)smtp, (void)env, (void)v;
	s->g->n.msgs_started++;
	return PG_OK;
}

static int gs_data_chunk(struct smtp_server *smtp, const uint8_t *p, size_t n, void *owner)
{
	(void)owner, (void)smtp, (void)p, (void)n;
	return PG_OK; /* stored nowhere: the size comes with message_end */
}

static void gs_count(struct gen *g, int rc, const struct smtp_message_info *info)
{
	if (rc == PG_OK) {
		g->n.msgs_accepted++;
		g->n.msg_bytes += info->size;
	} else if (rc == PG_ERROR) {
		g->n.msgs_tempfail++;
	} else {
		g->n.msgs_permfail++;
	}
}

static int gs_message_end(struct smtp_server *smtp, const struct smtp_envelope *env,
                          const struct smtp_message_info *info, struct smtp_verdict *v, void *owner)
{
	struct gs_sess *s = owner;
	struct gen *g = s->g;
	int rc = g->o.fail_at_rcpt ? PG_OK : gs_draw(g);

	(void)smtp;
	/* with --fail-at rcpt every recipient of a message may have been refused */
	if (env->nrcpt == 0)
		rc = PG_DECLINED;
	gs_count(g, rc, info);
	if (g->o.delay_ms == 0)
		return gs_verdict(rc, v);
	s->holding = true;
	s->held_rc = rc;
	g->n.delayed++;
	timer_arm(g->w->timers, &s->timer, g->w->now_ns + (uint64_t)g->o.delay_ms * 1000000ull);
	return PG_AGAIN;
}

static void gs_starttls(struct smtp_server *smtp, void *owner)
{
	struct gs_sess *s = owner;

	(void)smtp;
	conn_starttls(&s->conn, s->g->ssl_ctx);
}

static const struct smtp_server_ops gs_smtp_ops = {
    .rcpt_to = gs_rcpt_to,
    .data_start = gs_data_start,
    .data_chunk = gs_data_chunk,
    .message_end = gs_message_end,
    .starttls = gs_starttls,
};

/* ---- the connection's events ---- */

static void gs_tls_done(struct gs_sess *s)
{
	struct gen *g = s->g;
	char info[SMTP_TLS_INFO_MAX + 1];

	if (!conn_tls_on(&s->conn)) {
		g->n.err[GEN_E_TLS]++;
		smtp_server_tls_started(s->smtp, false, NULL);
		return;
	}
	g->n.tls_handshakes++;
	if (tls_stream_resumed(conn_stream(&s->conn)))
		g->n.tls_resumed++;
	tls_stream_describe(conn_stream(&s->conn), info, sizeof(info));
	smtp_server_tls_started(s->smtp, true, info);
}

static void gs_free(struct gs_sess *s)
{
	struct gen *g = s->g;

	switch (conn_end(&s->conn)) {
	case CONN_END_TIMEOUT:
		g->n.err[GEN_E_CONN_TIMEOUT]++;
		break;
	case CONN_END_RESET:
		g->n.err[GEN_E_RESET]++;
		break;
	default:
		break;
	}
	timer_cancel(g->w->timers, &s->timer);
	smtp_server_destroy(s->smtp);
	g->nsink--;
	g->n.conns_closed++;
	worker_free(g->w, s);
}

static bool gs_event(struct conn *c, enum conn_event ev, void *owner)
{
	struct gs_sess *s = owner;
	struct gen *g = s->g;

	(void)c;
	switch (ev) {
	case CONN_EV_TLS_DONE:
		gs_tls_done(s);
		return true;
	case CONN_EV_TIMEOUT:
		if (conn_tls(&s->conn) == CONN_TLS_HANDSHAKE) {
			g->n.err[GEN_E_TLS]++;
			conn_close(&s->conn, true);
		} else {
			g->n.err[GEN_E_SMTP_TIMEOUT]++;
		}
		return false;
	case CONN_EV_CLOSED:
		gs_free(s);
		return false;
	default:
		return ev == CONN_EV_TLS_START;
	}
}

/* The client left while an end-of-data reply is held: it is given first. */
static bool gs_busy(struct conn *c, void *owner)
{
	(void)c;
	return ((const struct gs_sess *)owner)->holding;
}

static const struct conn_ops gs_conn_ops = {.event = gs_event, .busy = gs_busy};

static void gs_timer_fired(struct timer *t, void *owner)
{
	struct gs_sess *s = container_of(t, struct gs_sess, timer);

	(void)owner;
	if (s->holding) {
		struct smtp_verdict v = {0};

		s->holding = false;
		gs_verdict(s->held_rc, &v);
		smtp_server_message_committed(s->smtp, s->held_rc == PG_OK, &v);
	} else if (s->greeting_held) {
		s->greeting_held = false; /* the greeting is due: out it goes */
		conn_attach(&s->conn, &conn_smtp_server, s->smtp);
	}
	conn_run(&s->conn);
}

static void gs_accepted(struct tcp_conn *c, void *user)
{
	struct gen *g = user;
	struct gs_sess *s = worker_alloc(g->w, sizeof(*s));
	struct smtp_server_config cfg;
	struct smtp_peer peer = {0};
	uint32_t laddr, raddr;
	uint16_t lport, rport;

	if (s == NULL) {
		tcp_abort(c);
		return;
	}
	s->g = g;
	timer_init(&s->timer, gs_timer_fired);
	tcp_conn_tuple(c, &laddr, &lport, &raddr, &rport);
	inet_ntop(AF_INET, &raddr, s->peer, sizeof(s->peer));
	peer.addr = s->peer;
	smtp_server_config_default(&cfg);
	cfg.ops = &gs_smtp_ops;
	cfg.owner = s;
	cfg.hostname = g->o.hostname;
	cfg.max_message_size = 0;
	cfg.max_rcpt = GEN_RCPTS_MAX;
	cfg.bare = SMTP_BARE_NORMALIZE;
	cfg.starttls = g->ssl_ctx != NULL;
	s->smtp = smtp_server_create(&cfg, &peer);
	if (s->smtp == NULL) {
		worker_free(g->w, s);
		tcp_abort(c);
		return;
	}
	g->nsink++;
	g->n.conns_opened++;
	g->n.conns_established++;
	conn_init(&s->conn, g->w, &gs_conn_ops, s);
	s->conn.handshake_timeout_ms = cfg.cmd_timeout_ms;
	s->conn.linger_ns = GS_LINGER_NS;
	conn_accept(&s->conn, c);
	if (g->o.greet_delay_ms != 0) {
		/* input waits in TCP until the engine is attached */
		s->greeting_held = true;
		timer_arm(g->w->timers, &s->timer,
		          g->w->now_ns + (uint64_t)g->o.greet_delay_ms * 1000000ull);
		return;
	}
	conn_attach(&s->conn, &conn_smtp_server, s->smtp);
	conn_run(&s->conn);
}

static const struct tcp_ops gs_listen_ops = {.accepted = gs_accepted};

int gen_sink_start(struct gen *g)
{
	if (tcp_listen(g->w, 0, g->o.listen_port, &gs_listen_ops, g) != PG_OK)
		return PG_ERROR;
	g->listening = true;
	return PG_OK;
}

unsigned gen_sink_poll(struct gen *g)
{
	if (!g->done && g->o.duration_s > 0 && g->w->now_ns >= g->stop_ns)
		g->done = true;
	return 0;
}
