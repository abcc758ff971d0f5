/*
 * conn.c - the connection driver (conn.h): TCP events in, the engine fed
 * and drained, STARTTLS and the TLS stream, EOF, the close sequence, and
 * one timer for whatever the connection waits on. The owner hears of it
 * through conn_ops.event only.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <rte_common.h>
#include <rte_log.h>

#include "conn.h"
#include "core/worker.h"
#include "net/tcp.h"
#include "result.h"
#include "smtp/smtp_client.h"
#include "smtp/smtp_server.h"
#include "tls_stream.h"
#include "tlsio.h"

#define CONN_RUN_ROUNDS 64 /* feed/flush rounds per conn_run: bounded work per event */
#define CONN_HANDSHAKE_MS_DEFAULT 300000u
#define CONN_LINGER_NS_DEFAULT (30ull * 1000 * 1000 * 1000)

static const char *const conn_state_names[CONN_S_COUNT] = {
    [CONN_S_NEW] = "NEW",         [CONN_S_CONNECTING] = "CONNECTING", [CONN_S_OPEN] = "OPEN",
    [CONN_S_CLOSING] = "CLOSING", [CONN_S_CLOSED] = "CLOSED",
};
static const char *const conn_tls_names[CONN_TLS_COUNT] = {
    [CONN_TLS_NONE] = "NONE", [CONN_TLS_PENDING] = "PENDING", [CONN_TLS_HANDSHAKE] = "HANDSHAKE",
    [CONN_TLS_ON] = "ON",     [CONN_TLS_FAILED] = "FAILED",   [CONN_TLS_SHUT] = "SHUT",
};
static const char *const conn_end_names[CONN_END_COUNT] = {
    [CONN_END_NONE] = "open",         [CONN_END_CLOSED] = "closed",
    [CONN_END_LOCAL] = "closed here", [CONN_END_REFUSED] = "connection refused",
    [CONN_END_NOROUTE] = "no route",  [CONN_END_TIMEOUT] = "timed out",
    [CONN_END_RESET] = "reset",       [CONN_END_LINGER] = "last bytes not taken",
};

const char *conn_state_name(enum conn_state s)
{
	return s < CONN_S_COUNT ? conn_state_names[s] : "?";
}

const char *conn_tls_name(enum conn_tls t)
{
	return t < CONN_TLS_COUNT ? conn_tls_names[t] : "?";
}

const char *conn_end_name(enum conn_end e)
{
	return e < CONN_END_COUNT ? conn_end_names[e] : "?";
}

static void conn_timer_fired(struct timer *t, void *owner);
static const struct tcp_ops conn_tcp_ops;

/* ---- state, traced ---- */

static void conn_set_state(struct conn *c, enum conn_state st)
{
	if (c->state == st)
		return;
	RTE_LOG(DEBUG, USER1, "worker %u: conn %p %s -> %s\n", c->w->id, (void *)c,
	        conn_state_names[c->state], conn_state_names[st]);
	c->state = st;
	if (st == CONN_S_CLOSING) /* the linger guard starts now, whatever was armed */
		timer_arm(c->w->timers, &c->timer, c->w->now_ns + c->linger_ns);
}

static void conn_set_tls(struct conn *c, enum conn_tls t)
{
	if (c->tls_state == t)
		return;
	RTE_LOG(DEBUG, USER1, "worker %u: conn %p TLS %s -> %s\n", c->w->id, (void *)c,
	        conn_tls_names[c->tls_state], conn_tls_names[t]);
	c->tls_state = t;
}

static bool conn_emit(struct conn *c, enum conn_event ev)
{
	return c->ops->event(c, ev, c->owner);
}

/*
 * Entering and leaving the driver: while inside (a run, a TCP or timer
 * event), an end is only noted, and CONN_EV_CLOSED goes out when the
 * outermost entry leaves - never while a caller up the stack still holds
 * the session.
 */
static bool conn_enter(struct conn *c)
{
	if (c->in_run)
		return false;
	c->in_run = true;
	return true;
}

static void conn_arm(struct conn *c)
{
	uint32_t ms;

	if (c->state != CONN_S_OPEN || c->eng == NULL)
		return; /* CONNECTING, CLOSING: armed on entry; no engine: nothing to time */
	ms = c->tls_state == CONN_TLS_HANDSHAKE ? c->handshake_timeout_ms
	                                        : c->eng->timeout_ms(c->engine);
	if (ms == 0)
		timer_cancel(c->w->timers, &c->timer);
	else
		timer_arm(c->w->timers, &c->timer, c->w->now_ns + (uint64_t)ms * 1000000ull);
}

static void conn_leave(struct conn *c)
{
	c->in_run = false;
	if (c->state == CONN_S_CLOSED) {
		conn_emit(c, CONN_EV_CLOSED); /* the owner frees c: nothing after this */
		return;
	}
	conn_arm(c);
}

static void conn_free_tls(struct conn *c)
{
	if (c->tls == NULL)
		return;
	/* no ASYNC jobs on these streams yet: nothing can be paused inside (tls_stream.h) */
	(void)tls_stream_free(c->tls);
	worker_free(c->w, c->tls);
	c->tls = NULL;
}

/* The connection is over: TCP released, CONN_EV_CLOSED due (conn_leave). */
static void conn_finish(struct conn *c, enum conn_end why, bool reset)
{
	if (c->state == CONN_S_CLOSED)
		return;
	timer_cancel(c->w->timers, &c->timer);
	tcp_release(&c->tcp, reset);
	if (c->end == CONN_END_NONE)
		c->end = why;
	conn_free_tls(c);
	conn_set_state(c, CONN_S_CLOSED);
}

/* The peer is gone or going: the engine fails what was pending, the owner hears of it. */
static bool conn_peer_gone(struct conn *c)
{
	if (c->eng == NULL || c->eof)
		return false;
	c->eof = true;
	c->eng->peer_closed(c->engine);
	return conn_emit(c, CONN_EV_INPUT);
}

/* ---- TLS ---- */

void conn_tls_fail(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->tls_why, sizeof(c->tls_why), fmt, ap);
	va_end(ap);
}

SSL *conn_ssl(const struct conn *c)
{
	return c->tls != NULL ? c->tls->ssl : NULL;
}

void conn_starttls(struct conn *c, SSL_CTX *ctx)
{
	c->tls_ctx = ctx;
	conn_set_tls(c, CONN_TLS_PENDING);
}

/* One step of the handshake: PG_OK (established), PG_AGAIN, PG_DONE (failed). */
static int conn_handshake(struct conn *c)
{
	int h = tls_stream_handshake(c->tls);

	if (h == PG_AGAIN)
		return PG_AGAIN;
	if (h == PG_ERROR) {
		snprintf(c->tls_why, sizeof(c->tls_why), "%s", c->tls->why);
		conn_set_tls(c, CONN_TLS_FAILED);
		conn_emit(c, CONN_EV_TLS_DONE);
		return PG_DONE;
	}
	conn_set_tls(c, CONN_TLS_ON);
	conn_emit(c, CONN_EV_TLS_DONE);
	return PG_OK;
}

/*
 * STARTTLS is through (the server's 220 is out, or the client read it):
 * the stream starts, the owner sets it up, the handshake begins.
 */
static void conn_tls_begin(struct conn *c)
{
	struct tls_stream *ts = c->tls_ctx != NULL ? worker_alloc_buf(c->w, sizeof(*ts)) : NULL;

	if (ts == NULL || tls_stream_init(ts, c->tls_ctx, c->server) != PG_OK) {
		worker_free(c->w, ts);
		conn_tls_fail(c, "%s",
		              c->tls_ctx == NULL ? "TLS is unavailable locally"
		                                 : "TLS unavailable locally (memory)");
		conn_set_tls(c, CONN_TLS_FAILED);
		conn_emit(c, CONN_EV_TLS_DONE);
		return;
	}
	c->tls = ts;
	conn_set_tls(c, CONN_TLS_HANDSHAKE);
	if (!conn_emit(c, CONN_EV_TLS_START)) {
		if (c->tls_why[0] == '\0')
			conn_tls_fail(c, "TLS setup failed");
		conn_set_tls(c, CONN_TLS_FAILED);
		conn_emit(c, CONN_EV_TLS_DONE);
		return;
	}
	(void)conn_handshake(c); /* a client's ClientHello goes out now */
}

/* ---- input ---- */

/* Ciphertext in, the handshake while it runs, then plaintext to the engine. */
static int conn_feed_tls(struct conn *c, size_t *fed)
{
	struct tls_stream *ts = c->tls;
	const uint8_t *p;
	size_t n, used = 0;
	int rc, d;

	*fed = tlsio_pull(ts, c->tcp);
	if (c->tls_state == CONN_TLS_HANDSHAKE) {
		rc = conn_handshake(c);
		if (rc == PG_AGAIN)
			return PG_OK;
		if (rc == PG_OK)
			*fed += 1; /* progress: the engine has things to say again */
	}
	if (c->tls_state == CONN_TLS_FAILED)
		return c->eng->run(c->engine); /* nothing is read any more */
	d = tls_stream_decrypt(ts);
	if (d == PG_ERROR) {
		conn_peer_gone(c);
		return PG_DONE;
	}
	n = tls_stream_plain(ts, &p);
	if (n > 0) {
		rc = c->eng->input(c->engine, p, n, &used);
		tls_stream_plain_consume(ts, used);
		*fed += used;
		return rc;
	}
	if (d == PG_DONE) {
		conn_peer_gone(c); /* the peer's close_notify: nothing more will come */
		return PG_DONE;
	}
	return c->eng->run(c->engine);
}

/* Offer what the peer sent to the engine. *fed: progress (bytes taken, steps made). */
static int conn_feed(struct conn *c, size_t *fed)
{
	const uint8_t *p[2];
	uint32_t l[2], total = 0;
	size_t used;
	int rc = PG_OK;

	*fed = 0;
	if (c->tls != NULL)
		return conn_feed_tls(c, fed);
	if (c->tls_state == CONN_TLS_PENDING) {
		/*
		 * Server, STARTTLS answered 220 but not yet sent: whatever the
		 * client sends before it could have read the 220 is plaintext
		 * injection (CVE-2011-0411) and is never read.
		 */
		*fed = tcp_recv_discard(c->tcp);
		return PG_OK;
	}
	if (c->tls_state == CONN_TLS_FAILED)
		return c->eng->run(c->engine); /* STARTTLS could not start: nothing is read */
	if (tcp_recv_peek(c->tcp, &p[0], &l[0], &p[1], &l[1]) == 0)
		return c->eng->run(c->engine);
	for (unsigned i = 0; i < 2; i++) {
		if (l[i] == 0)
			continue;
		used = 0;
		rc = c->eng->input(c->engine, p[i], l[i], &used);
		total += (uint32_t)used;
		if (rc != PG_OK || used < l[i])
			break;
	}
	if (total > 0)
		tcp_recv_consume(c->tcp, total);
	*fed = total;
	if (c->tls_state == CONN_TLS_PENDING) {
		/*
		 * RFC 3207 §4.2, §5: what came in the same read as STARTTLS
		 * (server) or after the server's 220 (client) is dropped: the
		 * next byte that counts is TLS.
		 */
		tcp_recv_discard(c->tcp);
		if (!c->server) {
			*fed += 1;
			conn_tls_begin(c);
			return c->tls_state == CONN_TLS_FAILED ? c->eng->run(c->engine) : PG_OK;
		}
	}
	return rc;
}

/* ---- output ---- */

/*
 * The engine's output to the peer: in plaintext, through the stream once
 * TLS is on, and dropped while STARTTLS is under way or after it failed -
 * never in plaintext after STARTTLS. Then the stream's own ciphertext
 * (handshake, alerts). PG_OK (all out), PG_AGAIN (TCP is full: a writable
 * event follows), PG_ERROR (the connection is gone).
 */
static int conn_flush(struct conn *c, size_t *sent)
{
	const uint8_t *p;
	size_t n, taken;
	int out = PG_OK;
	bool drop = c->tls_state == CONN_TLS_HANDSHAKE || c->tls_state == CONN_TLS_FAILED ||
	            (c->tls_state == CONN_TLS_PENDING && !c->server);

	*sent = 0;
	while ((n = c->eng->output(c->engine, &p)) > 0) {
		if (drop) {
			c->eng->consume(c->engine, n);
			continue;
		}
		if (c->tls != NULL) {
			out = tlsio_send(c->tls, c->tcp, p, n, &taken);
		} else {
			int k = tcp_send(c->tcp, p, (uint32_t)RTE_MIN(n, (size_t)UINT32_MAX));

			out = k == PG_AGAIN ? PG_AGAIN : k < 0 ? PG_ERROR : PG_OK;
			taken = k > 0 ? (size_t)k : 0;
		}
		c->eng->consume(c->engine, taken);
		*sent += taken;
		if (out != PG_OK)
			return out;
	}
	if (c->tls != NULL) {
		out = tlsio_push(c->tls, c->tcp, &taken);
		*sent += taken;
	}
	return out;
}

/* ---- the pump ---- */

static void conn_pump(struct conn *c)
{
	if (c->eng == NULL || c->tcp == NULL)
		return; /* connecting, or no engine yet: input waits in TCP */
	for (unsigned round = 0; round < CONN_RUN_ROUNDS; round++) {
		size_t fed = 0, sent = 0;
		bool moved = false;
		int out;

		if (c->state == CONN_S_OPEN) {
			int rc = conn_feed(c, &fed);

			if (c->state == CONN_S_CLOSED)
				return;
			moved = conn_emit(c, CONN_EV_INPUT);
			if (c->state == CONN_S_CLOSED)
				return;
			if (rc == PG_DONE)
				conn_set_state(c, CONN_S_CLOSING);
		}
		out = conn_flush(c, &sent);
		if (out == PG_ERROR) {
			c->end = CONN_END_RESET; /* TCP takes no more: the connection is gone */
			conn_peer_gone(c);
			conn_finish(c, CONN_END_RESET, true);
			return;
		}
		if (out == PG_OK && c->state == CONN_S_OPEN && c->server &&
		    c->tls_state == CONN_TLS_PENDING) {
			conn_tls_begin(c); /* the 220 is out: TLS from the next byte on */
			sent++;
			if (c->state == CONN_S_CLOSED)
				return;
		}
		if (c->state == CONN_S_OPEN && tlsio_eof(c->tls, c->tcp) &&
		    (c->ops->busy == NULL || !c->ops->busy(c, c->owner))) {
			conn_peer_gone(c); /* the peer left: nothing more will come */
			if (c->state == CONN_S_CLOSED)
				return;
			conn_set_state(c, CONN_S_CLOSING);
		}
		if (c->state == CONN_S_CLOSING && out == PG_OK && c->tls_state == CONN_TLS_ON) {
			size_t pushed;

			conn_set_tls(c, CONN_TLS_SHUT);
			tls_stream_shutdown(c->tls); /* close_notify before our FIN */
			out = tlsio_push(c->tls, c->tcp, &pushed);
			if (out == PG_ERROR) {
				conn_finish(c, CONN_END_RESET, true);
				return;
			}
		}
		if (c->state == CONN_S_CLOSING) {
			if (out == PG_OK) {
				/* unread input would turn the FIN into a RST (tcp.h): drop it */
				tcp_recv_discard(c->tcp);
				conn_finish(c, CONN_END_CLOSED, false);
			}
			return;
		}
		if (!moved && fed == 0 && sent == 0)
			return;
	}
}

void conn_run(struct conn *c)
{
	if (!conn_enter(c))
		return; /* the outer run goes on with whatever changed */
	if (c->state == CONN_S_OPEN || c->state == CONN_S_CLOSING)
		conn_pump(c);
	conn_leave(c);
}

/* ---- TCP events ---- */

static void conn_tcp_connected(struct tcp_conn *t, void *user)
{
	struct conn *c = user;

	(void)t;
	if (!conn_enter(c))
		return;
	timer_cancel(c->w->timers, &c->timer);
	conn_set_state(c, CONN_S_OPEN);
	conn_emit(c, CONN_EV_CONNECTED);
	if (c->state == CONN_S_OPEN)
		conn_pump(c);
	conn_leave(c);
}

static void conn_tcp_readable(struct tcp_conn *t, void *user)
{
	(void)t;
	conn_run(user);
}

static void conn_tcp_gone(struct conn *c, enum conn_end why)
{
	bool outer;

	if (c->tcp == NULL || c->state == CONN_S_CLOSED)
		return;
	outer = conn_enter(c);
	c->end = why; /* known to the owner while the engine hears of it */
	if (c->state != CONN_S_CONNECTING)
		conn_peer_gone(c);
	/* tcp_close: the connection is over anyway, the handle goes */
	conn_finish(c, why, false);
	if (outer)
		conn_leave(c);
}

static void conn_tcp_closed(struct tcp_conn *t, void *user)
{
	(void)t;
	conn_tcp_gone(user, CONN_END_CLOSED);
}

static void conn_tcp_error(struct tcp_conn *t, enum tcp_error err, void *user)
{
	(void)t;
	conn_tcp_gone(user, err == TCP_ERR_REFUSED   ? CONN_END_REFUSED
	                    : err == TCP_ERR_TIMEOUT ? CONN_END_TIMEOUT
	                                             : CONN_END_RESET);
}

static const struct tcp_ops conn_tcp_ops = {
    .connected = conn_tcp_connected,
    .readable = conn_tcp_readable,
    .writable = conn_tcp_readable,
    .closed = conn_tcp_closed,
    .error = conn_tcp_error,
};

static void conn_timer_fired(struct timer *t, void *owner)
{
	struct conn *c = container_of(t, struct conn, timer);

	(void)owner;
	if (!conn_enter(c))
		return;
	switch (c->state) {
	case CONN_S_CONNECTING:
		conn_finish(c, CONN_END_TIMEOUT, true);
		break;
	case CONN_S_CLOSING:
		conn_finish(c, CONN_END_LINGER, true); /* the peer does not take our last bytes */
		break;
	case CONN_S_OPEN:
		conn_emit(c, CONN_EV_TIMEOUT);
		if (c->state != CONN_S_OPEN)
			break;
		if (c->tls_state == CONN_TLS_HANDSHAKE) {
			conn_tls_fail(c, "handshake: timed out");
			conn_set_tls(c, CONN_TLS_FAILED);
		}
		if (c->eng->timeout(c->engine) == PG_DONE)
			conn_set_state(c, CONN_S_CLOSING);
		conn_emit(c, CONN_EV_INPUT);
		if (c->state != CONN_S_CLOSED)
			conn_pump(c);
		break;
	default:
		break;
	}
	conn_leave(c);
}

/* ---- the owner's calls ---- */

void conn_init(struct conn *c, struct worker *w, const struct conn_ops *ops, void *owner)
{
	memset(c, 0, sizeof(*c));
	c->w = w;
	c->ops = ops;
	c->owner = owner;
	c->handshake_timeout_ms = CONN_HANDSHAKE_MS_DEFAULT;
	c->linger_ns = CONN_LINGER_NS_DEFAULT;
	timer_init(&c->timer, conn_timer_fired);
}

int conn_connect(struct conn *c, uint32_t addr, uint16_t port, uint32_t timeout_ms)
{
	struct pg_addr a = pg_addr_v4(addr);

	return conn_connect_addr(c, &a, port, timeout_ms);
}

int conn_connect_addr(struct conn *c, const struct pg_addr *addr, uint16_t port,
                      uint32_t timeout_ms)
{
	int rc = tcp_connect_addr(c->w, addr, port, &conn_tcp_ops, c, &c->tcp);

	if (rc == PG_AGAIN || rc == PG_ERROR)
		return PG_AGAIN; /* no local port, a cap of the stack, memory: soon again */
	if (rc != PG_OK)
		return PG_DECLINED;
	c->server = false;
	c->connect_timeout_ms = timeout_ms;
	conn_set_state(c, CONN_S_CONNECTING);
	if (timeout_ms != 0)
		timer_arm(c->w->timers, &c->timer,
		          c->w->now_ns + (uint64_t)timeout_ms * 1000000ull);
	return PG_OK;
}

void conn_accept(struct conn *c, struct tcp_conn *tcp)
{
	c->tcp = tcp;
	c->server = true;
	tcp_set_handler(tcp, &conn_tcp_ops, c);
	conn_set_state(c, CONN_S_OPEN);
}

void conn_attach(struct conn *c, const struct conn_engine *e, void *engine)
{
	c->eng = e;
	c->engine = engine;
}

void conn_close(struct conn *c, bool reset)
{
	bool outer = conn_enter(c);

	conn_finish(c, CONN_END_LOCAL, reset);
	if (outer)
		conn_leave(c);
}

void conn_destroy(struct conn *c)
{
	timer_cancel(c->w->timers, &c->timer);
	if (c->tcp != NULL)
		tcp_abort(c->tcp);
	c->tcp = NULL;
	conn_free_tls(c);
	c->state = CONN_S_CLOSED;
}

/* ---- the engines ---- */

static int conn_server_input(void *e, const uint8_t *p, size_t n, size_t *used)
{
	return smtp_server_input(e, p, n, used);
}

static int conn_server_run(void *e)
{
	size_t used;

	return smtp_server_input(e, (const uint8_t *)"", 0, &used);
}

static size_t conn_server_output(void *e, const uint8_t **p)
{
	return smtp_server_output(e, p);
}

static void conn_server_consume(void *e, size_t n)
{
	smtp_server_output_consume(e, n);
}

static void conn_server_peer_closed(void *e)
{
	(void)conn_server_run(e); /* what the client pipelined before it left is answered */
}

static uint32_t conn_server_timeout_ms(const void *e)
{
	return smtp_server_timeout_ms(e);
}

static int conn_server_timeout(void *e)
{
	return smtp_server_timeout(e);
}

const struct conn_engine conn_smtp_server = {
    .name = "smtp server",
    .input = conn_server_input,
    .run = conn_server_run,
    .output = conn_server_output,
    .consume = conn_server_consume,
    .peer_closed = conn_server_peer_closed,
    .timeout_ms = conn_server_timeout_ms,
    .timeout = conn_server_timeout,
};

static int conn_client_input(void *e, const uint8_t *p, size_t n, size_t *used)
{
	int rc = smtp_client_input(e, p, n, used);

	return rc == PG_OK ? smtp_client_run(e) : rc;
}

static int conn_client_run(void *e)
{
	return smtp_client_run(e);
}

static size_t conn_client_output(void *e, const uint8_t **p)
{
	return smtp_client_output(e, p);
}

static void conn_client_consume(void *e, size_t n)
{
	smtp_client_output_consume(e, n);
}

static void conn_client_peer_closed(void *e)
{
	smtp_client_closed(e); /* 4.4.2 for whatever was pending */
}

static uint32_t conn_client_timeout_ms(const void *e)
{
	return smtp_client_timeout_ms(e);
}

static int conn_client_timeout(void *e)
{
	return smtp_client_timeout(e);
}

const struct conn_engine conn_smtp_client = {
    .name = "smtp client",
    .input = conn_client_input,
    .run = conn_client_run,
    .output = conn_client_output,
    .consume = conn_client_consume,
    .peer_closed = conn_client_peer_closed,
    .timeout_ms = conn_client_timeout_ms,
    .timeout = conn_client_timeout,
};
