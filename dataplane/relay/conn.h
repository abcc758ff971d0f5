/*
 * conn.h - the connection driver: one TCP connection of the userspace
 * stack, its optional TLS stream, and one SMTP engine (server or client),
 * pumped as far as they go whenever anything happens, in the spirit of
 * OpenSMTPD's ioev. The inbound service, delivery and both modes of
 * postern-gen run every session on it, so the rules that keep STARTTLS
 * honest live here once:
 *   - bytes that follow STARTTLS in plaintext are discarded, never read as
 *     commands or replies (CVE-2011-0411, RFC 3207 §4.2 and §5);
 *   - after STARTTLS, nothing of the engine's is ever sent in plaintext:
 *     while the handshake runs, or after it failed, its output is dropped;
 *   - our close_notify goes out before our FIN (RFC 8446 §6.1);
 *   - input nobody will read is drained before the FIN, so that the FIN
 *     does not become a RST (RFC 9293 §3.6.1, tcp.h).
 *
 * The owner embeds a struct conn in its session and hears of it through
 * one callback, conn_ops.event, with a small set of events (below). The
 * engine's own upcalls (smtp_server_ops, smtp_client_ops) stay the
 * owner's: the driver only moves bytes and decides when the connection
 * ends.
 *
 * Lifetime: after conn_init the connection is the driver's until
 * CONN_EV_CLOSED, the last event; in it (and only then) the owner frees
 * its session with the struct conn in it. The driver releases the TCP
 * handle and the TLS stream before that event. Every event may call any
 * conn_* function on its own connection; a conn_close from inside an event
 * takes effect when the event returns.
 */
#ifndef PG_CONN_H
#define PG_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "addr.h"
#include "core/timer.h"

struct worker;
struct tcp_conn;
struct tls_stream;
struct smtp_server;
struct smtp_client;

/* The connection, as one state with a tracing setter (conn_state_name). */
enum conn_state {
	CONN_S_NEW,        /* conn_init done: conn_connect or conn_accept next */
	CONN_S_CONNECTING, /* active open under way (bounded by the connect timeout) */
	CONN_S_OPEN,       /* the engine runs */
	CONN_S_CLOSING,    /* the last bytes and our close_notify go out, then FIN */
	CONN_S_CLOSED,     /* released: CONN_EV_CLOSED is (being) delivered */
	CONN_S_COUNT
};

/* TLS on the connection (conn_tls_name). */
enum conn_tls {
	CONN_TLS_NONE,      /* plaintext, STARTTLS not (yet) agreed */
	CONN_TLS_PENDING,   /* agreed: the 220 goes out first (server), then the stream starts */
	CONN_TLS_HANDSHAKE, /* the stream runs its handshake */
	CONN_TLS_ON,        /* established: every byte goes through the stream */
	CONN_TLS_FAILED,    /* no TLS; what the engine says is dropped from now on */
	CONN_TLS_SHUT,      /* established, and our close_notify is queued */
	CONN_TLS_COUNT
};

/* Why the connection ended (CONN_EV_CLOSED: conn_end). */
enum conn_end {
	CONN_END_NONE,    /* still open */
	CONN_END_CLOSED,  /* closed in order: by the engine (QUIT...) or the peer's FIN */
	CONN_END_LOCAL,   /* conn_close by the owner */
	CONN_END_REFUSED, /* active open: RST to our SYN */
	CONN_END_NOROUTE, /* active open: no route, or the stack refused (tcp_connect) */
	CONN_END_TIMEOUT, /* connect timeout, or TCP's retransmissions gave up */
	CONN_END_RESET,   /* the peer reset the connection, or TCP would take no more */
	CONN_END_LINGER,  /* closing, the peer did not take our last bytes in time */
	CONN_END_COUNT
};

/* What the owner hears (conn_ops.event). */
enum conn_event {
	/*
	 * Active open: TCP is established. Create the engine and
	 * conn_attach() it (or conn_close()).
	 */
	CONN_EV_CONNECTED,
	/*
	 * The engine took input, or heard of the peer's EOF or of its own
	 * timeout: act on what its upcalls noted (a finished message, say)
	 * outside of them. The handler returns true if it gave the engine
	 * new work (its output may have grown), which keeps the pump going.
	 */
	CONN_EV_INPUT,
	/*
	 * The TLS stream exists (conn_ssl): set up what this connection
	 * needs before the first handshake byte - SNI, versions, the
	 * verification policy. Returning false fails TLS (conn_tls_why()
	 * should say why: conn_tls_fail).
	 */
	CONN_EV_TLS_START,
	/*
	 * The handshake finished: conn_tls() == CONN_TLS_ON, or
	 * CONN_TLS_FAILED with conn_tls_why(). Tell the engine
	 * (smtp_server_tls_started, smtp_client_tls_done) and check what
	 * the policy needs.
	 */
	CONN_EV_TLS_DONE,
	/*
	 * The engine's timer (or the handshake's) fired. The owner may count
	 * it or conn_close(); otherwise the engine is told (its timeout()
	 * ends the session politely).
	 */
	CONN_EV_TIMEOUT,
	/* The connection is gone (conn_end says why): free the session now. */
	CONN_EV_CLOSED,
};

struct conn;

struct conn_ops {
	/* The one callback; `owner` is conn_init's. See enum conn_event. */
	bool (*event)(struct conn *c, enum conn_event ev, void *owner);
	/*
	 * Optional: the peer's EOF came, but the owner still waits for
	 * something that must end first (a spool commit): the connection
	 * stays open until this says false again (then conn_run).
	 */
	bool (*busy)(struct conn *c, void *owner);
};

/*
 * An SMTP engine as the driver pumps it. conn_smtp_server and
 * conn_smtp_client wrap the two engines of dataplane/smtp.
 */
struct conn_engine {
	const char *name;
	/* Received bytes: *used taken. PG_OK, PG_AGAIN (parked), PG_DONE (over). */
	int (*input)(void *engine, const uint8_t *p, size_t n, size_t *used);
	/* Go on without new input (a parked answer came, a new message). Same results. */
	int (*run)(void *engine);
	size_t (*output)(void *engine, const uint8_t **p);
	void (*consume)(void *engine, size_t n);
	/* The peer is gone (EOF, reset): what was pending fails. */
	void (*peer_closed)(void *engine);
	/* Milliseconds of silence allowed now; 0 = no timer. */
	uint32_t (*timeout_ms)(const void *engine);
	/* The timer fired: PG_DONE when the session is over. */
	int (*timeout)(void *engine);
};

extern const struct conn_engine conn_smtp_server;
extern const struct conn_engine conn_smtp_client;

struct conn {
	struct worker *w;
	const struct conn_ops *ops;
	void *owner;
	struct tcp_conn *tcp; /* NULL once released */
	const struct conn_engine *eng;
	void *engine;
	struct tls_stream *tls; /* NULL in plaintext */
	SSL_CTX *tls_ctx;       /* conn_starttls's, until the stream starts */
	struct timer timer;     /* connect, engine, handshake or linger deadline */
	uint32_t connect_timeout_ms;
	uint32_t handshake_timeout_ms;
	uint64_t linger_ns;
	enum conn_state state;
	enum conn_tls tls_state;
	enum conn_end end;
	bool server;   /* passive side: TLS as server */
	bool in_run;   /* inside conn_run (or an event from it): ending waits */
	bool released; /* conn_close or the stack ended it inside a run */
	bool eof;      /* the peer's EOF was handed to the engine */
	bool trace;    /* log every state change (RTE_LOG DEBUG) */
	char tls_why[200];
};

/* Defaults: no connect timeout set yet, handshake 300 s, linger 30 s. */
void conn_init(struct conn *c, struct worker *w, const struct conn_ops *ops, void *owner);

/*
 * Active open to addr:port (network / host order) under a connect
 * timeout. PG_OK (CONN_EV_CONNECTED or CONN_EV_CLOSED follows), PG_AGAIN
 * (no local port or a cap of the stack: nothing happened, try later), or
 * PG_DECLINED (no route: nothing happened).
 */
int conn_connect(struct conn *c, uint32_t addr, uint16_t port, uint32_t timeout_ms);
/* The same to an address of either family (IPv6: RFC 8200 over nd.c). */
int conn_connect_addr(struct conn *c, const struct pg_addr *addr, uint16_t port,
                      uint32_t timeout_ms);

/*
 * Passive open: take over an accepted TCP connection (from the listener's
 * `accepted` callback). Attach an engine before conn_run, or later (a
 * greeting held back): until then input waits in TCP.
 */
void conn_accept(struct conn *c, struct tcp_conn *tcp);

/* The engine the connection drives from now on. */
void conn_attach(struct conn *c, const struct conn_engine *e, void *engine);

/*
 * Pump: input to the engine, its output to the peer, TLS, EOF, closing.
 * Bounded work per call; every event of the connection ends here, and the
 * owner calls it after giving the engine something (a parked answer).
 */
void conn_run(struct conn *c);

/*
 * STARTTLS was agreed (from the engine's starttls upcall): the server
 * side sends the 220 first, the client side starts at once; what followed
 * STARTTLS (server) or the 220 (client) in plaintext is discarded. ctx
 * NULL: TLS is unavailable locally, the handshake fails at once.
 */
void conn_starttls(struct conn *c, SSL_CTX *ctx);

/*
 * End the connection now: reset, or the normal close after what is
 * queued. CONN_EV_CLOSED follows at once (outside any event), or when the
 * event being handled returns: touch nothing of the session after this.
 */
void conn_close(struct conn *c, bool reset);

/*
 * Tear down without any event (worker shutdown): abort, free the stream
 * (an ASYNC job in flight keeps it, tls_stream.h), cancel the timer.
 */
void conn_destroy(struct conn *c);

/* In CONN_EV_TLS_START: fail TLS with this reason. */
void conn_tls_fail(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline enum conn_state conn_state(const struct conn *c)
{
	return c->state;
}
static inline enum conn_tls conn_tls(const struct conn *c)
{
	return c->tls_state;
}
/* Why it ended; set already while the engine hears of a reset or a lost connection. */
static inline enum conn_end conn_end(const struct conn *c)
{
	return c->end;
}
/* The peer is gone or going (EOF, close_notify, reset): the engine was told. */
static inline bool conn_peer_left(const struct conn *c)
{
	return c->eof;
}
static inline bool conn_tls_on(const struct conn *c)
{
	return c->tls_state == CONN_TLS_ON || c->tls_state == CONN_TLS_SHUT;
}
static inline const char *conn_tls_why(const struct conn *c)
{
	return c->tls_why;
}
static inline struct tls_stream *conn_stream(const struct conn *c)
{
	return c->tls;
}
static inline struct tcp_conn *conn_tcp(const struct conn *c)
{
	return c->tcp;
}
SSL *conn_ssl(const struct conn *c);

const char *conn_state_name(enum conn_state s);
const char *conn_tls_name(enum conn_tls t);
const char *conn_end_name(enum conn_end e);

#endif
