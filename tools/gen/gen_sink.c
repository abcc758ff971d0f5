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
#include "relay/tlsio.h"
#include "smtp/smtp_server.h"
#include "tls_stream.h"

#define GS_RUN_ROUNDS 64
#define GS_LINGER_NS (5ull * 1000 * 1000 * 1000)

struct gs_sess {
	struct gen *g;
	struct tcp_conn *c;
	struct smtp_server *smtp;
	struct tls_stream *tls;
	struct timer timer;
	bool closing, in_run, dead;
	bool tls_pending, tls_on, tls_shut;
	bool holding;      /* an end-of-data reply waits for --delay */
	int held_rc;       /* PG_OK, PG_ERROR (4xx) or PG_DECLINED (5xx) */
	uint64_t greet_at; /* --greet-delay: the greeting goes out then (0: it has) */
	char peer[INET_ADDRSTRLEN];
};

static void gs_run(struct gs_sess *s);

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

static int gs_rcpt_to(void *user, struct smtp_server *smtp, const struct smtp_envelope *env,
                      const struct smtp_rcpt *rcpt, struct smtp_verdict *v)
{
	struct gs_sess *s = user;
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

static int gs_data_start(void *user, struct smtp_server *smtp, const struct smtp_envelope *env,
                         struct smtp_verdict *v)
{
	struct gs_sess *s = user;

	(void)smtp, (void)env, (void)v;
	s->g->n.msgs_started++;
	return PG_OK;
}

static int gs_data_chunk(void *user, struct smtp_server *smtp, const uint8_t *p, size_t n)
{
	(void)user, (void)smtp, (void)p, (void)n;
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

static int gs_message_end(void *user, struct smtp_server *smtp, const struct smtp_envelope *env,
                          const struct smtp_message_info *info, struct smtp_verdict *v)
{
	struct gs_sess *s = user;
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

static void gs_starttls(void *user, struct smtp_server *smtp)
{
	struct gs_sess *s = user;

	(void)smtp;
	s->tls_pending = true;
}

static const struct smtp_server_ops gs_smtp_ops = {
    .rcpt_to = gs_rcpt_to,
    .data_start = gs_data_start,
    .data_chunk = gs_data_chunk,
    .message_end = gs_message_end,
    .starttls = gs_starttls,
};

/* ---- TLS ---- */

static void gs_tls_start(struct gs_sess *s)
{
	struct gen *g = s->g;
	struct tls_stream *ts = worker_alloc_buf(g->w, sizeof(*ts));

	s->tls_pending = false;
	if (ts == NULL || tls_stream_init(ts, g->ssl_ctx, true) != PG_OK) {
		worker_free(g->w, ts);
		g->n.err[GEN_E_TLS]++;
		smtp_server_tls_started(s->smtp, false, NULL);
		s->closing = true;
		return;
	}
	s->tls = ts;
}

static int gs_feed_tls(struct gs_sess *s, size_t *fed)
{
	struct gen *g = s->g;
	struct tls_stream *ts = s->tls;
	const uint8_t *p;
	size_t n, used = 0;
	int rc = PG_OK, d;

	*fed = tlsio_pull(ts, s->c);
	if (!s->tls_on) {
		char info[SMTP_TLS_INFO_MAX + 1];
		int h = tls_stream_handshake(ts);

		if (h == PG_AGAIN)
			return PG_OK;
		if (h == PG_ERROR) {
			g->n.err[GEN_E_TLS]++;
			smtp_server_tls_started(s->smtp, false, NULL);
			return PG_DONE;
		}
		s->tls_on = true;
		g->n.tls_handshakes++;
		if (tls_stream_resumed(ts))
			g->n.tls_resumed++;
		tls_stream_describe(ts, info, sizeof(info));
		smtp_server_tls_started(s->smtp, true, info);
		*fed += 1;
	}
	d = tls_stream_decrypt(ts);
	if (d == PG_ERROR)
		return PG_DONE;
	n = tls_stream_plain(ts, &p);
	if (n > 0) {
		rc = smtp_server_input(s->smtp, p, n, &used);
		tls_stream_plain_consume(ts, used);
		*fed += used;
	} else if (d == PG_DONE) {
		rc = smtp_server_input(s->smtp, (const uint8_t *)"", 0, &used);
		if (rc == PG_OK)
			rc = PG_DONE;
	}
	return rc;
}

/* ---- I/O ---- */

static int gs_feed(struct gs_sess *s, size_t *fed)
{
	const uint8_t *p[2];
	uint32_t l[2], total = 0;
	size_t used = 0;
	int rc = PG_OK;

	*fed = 0;
	if (s->tls != NULL)
		return gs_feed_tls(s, fed);
	if (s->tls_pending) {
		*fed = tcp_recv_discard(s->c); /* plaintext after STARTTLS (CVE-2011-0411) */
		return PG_OK;
	}
	if (tcp_recv_peek(s->c, &p[0], &l[0], &p[1], &l[1]) == 0)
		return smtp_server_input(s->smtp, (const uint8_t *)"", 0, &used);
	for (unsigned i = 0; i < 2; i++) {
		if (l[i] == 0)
			continue;
		used = 0;
		rc = smtp_server_input(s->smtp, p[i], l[i], &used);
		total += (uint32_t)used;
		if (rc != PG_OK)
			break;
	}
	if (total > 0)
		tcp_recv_consume(s->c, total);
	*fed = total;
	if (s->tls_pending)
		tcp_recv_discard(s->c);
	return rc;
}

/* ---- lifecycle ---- */

static void gs_free(struct gs_sess *s)
{
	struct gen *g = s->g;

	timer_cancel(g->w->timers, &s->timer);
	smtp_server_destroy(s->smtp);
	if (s->tls != NULL) {
		(void)tls_stream_free(s->tls);
		worker_free(g->w, s->tls);
	}
	g->nsink--;
	g->n.conns_closed++;
	worker_free(g->w, s);
}

static void gs_end(struct gs_sess *s, bool reset)
{
	tcp_release(&s->c, reset);
	if (s->in_run)
		s->dead = true;
	else
		gs_free(s);
}

static void gs_arm(struct gs_sess *s)
{
	struct gen *g = s->g;
	uint32_t ms;

	if (s->holding)
		return; /* the delay timer is armed */
	if (s->greet_at != 0) {
		timer_arm(g->w->timers, &s->timer, s->greet_at);
		return;
	}
	if (s->closing) {
		if (!timer_armed(&s->timer))
			timer_arm(g->w->timers, &s->timer, g->w->now_ns + GS_LINGER_NS);
		return;
	}
	ms = smtp_server_timeout_ms(s->smtp);
	if (ms == 0)
		timer_cancel(g->w->timers, &s->timer);
	else
		timer_arm(g->w->timers, &s->timer, g->w->now_ns + (uint64_t)ms * 1000000ull);
}

static void gs_run(struct gs_sess *s)
{
	bool was_closing;

	if (s->in_run || s->c == NULL)
		return;
	s->in_run = true;
	was_closing = s->closing;
	for (unsigned round = 0; round < GS_RUN_ROUNDS; round++) {
		size_t fed = 0, sent = 0;
		int out;

		if (!s->closing && !s->holding && s->greet_at == 0 && gs_feed(s, &fed) == PG_DONE)
			s->closing = true;
		if (s->greet_at != 0) {
			out = PG_OK; /* --greet-delay: nothing goes out yet */
		} else {
			struct tlsio_engine e = tlsio_server(s->smtp);

			out = tlsio_flush(s->tls, s->tls_on, s->c, &e, &sent);
		}
		if (out == PG_ERROR) {
			gs_end(s, true);
			break;
		}
		if (out == PG_OK && s->tls_pending && !s->closing) {
			gs_tls_start(s);
			sent++;
		}
		if (out == PG_OK && s->closing && s->tls_on && !s->tls_shut) {
			size_t pushed;

			s->tls_shut = true;
			tls_stream_shutdown(s->tls);
			if (tlsio_push(s->tls, s->c, &pushed) == PG_ERROR) {
				gs_end(s, true);
				break;
			}
		}
		if (!s->closing && !s->holding && tlsio_eof(s->tls, s->c))
			s->closing = true;
		if (s->closing) {
			if (out == PG_OK) {
				tcp_recv_discard(s->c);
				gs_end(s, false);
			}
			break;
		}
		if (fed == 0 && sent == 0)
			break;
	}
	s->in_run = false;
	if (s->dead) {
		gs_free(s);
		return;
	}
	if (s->closing && !was_closing)
		timer_cancel(s->g->w->timers, &s->timer);
	gs_arm(s);
}

static void gs_timer_fired(struct timer *t, void *owner)
{
	struct gs_sess *s = container_of(t, struct gs_sess, timer);
	struct gen *g = s->g;

	(void)owner;
	if (s->holding) {
		struct smtp_verdict v = {0};

		s->holding = false;
		gs_verdict(s->held_rc, &v);
		smtp_server_message_committed(s->smtp, s->held_rc == PG_OK, &v);
		gs_run(s);
		return;
	}
	if (s->greet_at != 0) {
		s->greet_at = 0; /* the greeting is due: out it goes */
		gs_run(s);
		return;
	}
	if (s->closing) {
		gs_end(s, true);
		return;
	}
	if (s->tls != NULL && !s->tls_on) {
		g->n.err[GEN_E_TLS]++;
		gs_end(s, true);
		return;
	}
	g->n.err[GEN_E_SMTP_TIMEOUT]++;
	if (smtp_server_timeout(s->smtp) == PG_DONE)
		s->closing = true;
	gs_run(s);
}

/* ---- TCP events ---- */

static void gs_readable(struct tcp_conn *c, void *user)
{
	(void)c;
	gs_run(user);
}

static void gs_closed(struct tcp_conn *c, void *user)
{
	(void)c;
	gs_end(user, false);
}

static void gs_error(struct tcp_conn *c, enum tcp_error err, void *user)
{
	struct gs_sess *s = user;

	(void)c;
	s->g->n.err[err == TCP_ERR_TIMEOUT ? GEN_E_CONN_TIMEOUT : GEN_E_RESET]++;
	gs_end(s, false);
}

static const struct tcp_ops gs_session_ops = {
    .readable = gs_readable,
    .writable = gs_readable,
    .closed = gs_closed,
    .error = gs_error,
};

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
	s->c = c;
	timer_init(&s->timer, gs_timer_fired);
	tcp_conn_tuple(c, &laddr, &lport, &raddr, &rport);
	inet_ntop(AF_INET, &raddr, s->peer, sizeof(s->peer));
	peer.addr = s->peer;
	smtp_server_config_default(&cfg);
	cfg.ops = &gs_smtp_ops;
	cfg.user = s;
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
	if (g->o.greet_delay_ms != 0)
		s->greet_at = g->w->now_ns + (uint64_t)g->o.greet_delay_ms * 1000000ull;
	tcp_set_handler(c, &gs_session_ops, s);
	gs_run(s);
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
