/*
 * test_conn.c - the connection driver (dataplane/relay/conn.c) alone, over
 * the two-stack harness of tests/unit/tcp, with scripted engines standing
 * in for SMTP (the real engines have their own tests). The rules the
 * driver owns for every session, each checked where it could break:
 *   - plaintext pipelined behind STARTTLS is never read as a command
 *     (server) or a reply (client): CVE-2011-0411, RFC 3207 §4.2, §5;
 *   - after STARTTLS nothing the engine says goes out in plaintext, not
 *     while the handshake runs and not after it failed;
 *   - our close_notify reaches the peer before our FIN (RFC 8446 §6.1);
 *   - input nobody will read is drained, so that closing sends a FIN,
 *     not a RST (RFC 9293 §3.6.1);
 *   - the connect timeout and a refused connection end as they should.
 * Side 0 (198.18.0.1) is the client, side 1 (198.18.0.2) the server.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "relay/conn.h"
#include "result.h"
#include "tcp_harness.h"

#define PORT 25

static struct tl *T;
static SSL_CTX *srv_ctx, *cli_ctx;

/* ---- TLS contexts: a throwaway self-signed ECDSA certificate ---- */

static SSL_CTX *make_server_ctx(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	assert_non_null(k);
	assert_non_null(ctx);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"mx.test", -1, -1,
	                           0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, n);
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	assert_int_equal(SSL_CTX_use_certificate(ctx, x), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(ctx, k), 1);
	X509_NAME_free(n);
	X509_free(x);
	EVP_PKEY_free(k);
	return ctx;
}

/* ---- a scripted engine: reads CRLF lines, answers from a script ---- */

#define ME_LINES 32

struct me {
	struct conn conn;
	bool server;
	SSL_CTX *ctx; /* conn_starttls's (server: after "STARTTLS", client: after "220") */
	/* what the engine read, line by line */
	char lines[ME_LINES][96];
	unsigned nlines;
	/* what the engine says, appended by the script */
	char out[4096];
	size_t outlen, outoff;
	/* the script */
	const char *starttls_reply; /* server: its answer to STARTTLS, injected plaintext and all */
	const char *after_tls;      /* said once TLS is on */
	const char *after_tls_fail; /* said once TLS failed: must never reach the peer */
	bool wait_peer;             /* client: 221 is not the end, the server's close is */
	/* what happened */
	bool done, peer_closed, close_notify_seen, closed, tls_done;
	enum conn_tls tls_result;
	enum conn_end end;
};

static void me_say(struct me *m, const char *s)
{
	size_t n = strlen(s);

	assert_true(m->outlen + n <= sizeof(m->out));
	memcpy(m->out + m->outlen, s, n);
	m->outlen += n;
}

static bool me_read(const struct me *m, const char *line)
{
	for (unsigned i = 0; i < m->nlines; i++)
		if (strcmp(m->lines[i], line) == 0)
			return true;
	return false;
}

static int me_input(void *e, const uint8_t *p, size_t n, size_t *used)
{
	struct me *m = e;

	*used = 0;
	while (*used < n) {
		const uint8_t *eol = memchr(p + *used, '\n', n - *used);
		size_t len;
		char *line;

		if (eol == NULL)
			break;
		len = (size_t)(eol - (p + *used)) + 1;
		assert_true(m->nlines < ME_LINES);
		line = m->lines[m->nlines++];
		snprintf(line, sizeof(m->lines[0]), "%.*s", (int)(len > 2 ? len - 2 : 0),
		         (const char *)p + *used);
		*used += len;
		if (m->server && strcmp(line, "STARTTLS") == 0) {
			me_say(m, m->starttls_reply);
			conn_starttls(&m->conn, m->ctx);
			return PG_OK; /* the engine stops here, as smtp_server does */
		}
		if (m->server && strcmp(line, "QUIT") == 0) {
			me_say(m, "221 bye\r\n");
			m->done = true;
			return PG_DONE;
		}
		if (m->server) {
			me_say(m, "250 ok\r\n");
			continue;
		}
		if (strcmp(line, "220 go ahead") == 0 && conn_tls(&m->conn) == CONN_TLS_NONE) {
			conn_starttls(&m->conn, m->ctx);
			return PG_OK;
		}
		if (strncmp(line, "221 ", 4) == 0 && !m->wait_peer) {
			m->done = true;
			return PG_DONE;
		}
	}
	return PG_OK;
}

static int me_run(void *e)
{
	struct me *m = e;

	return m->done ? PG_DONE : PG_OK;
}

static size_t me_output(void *e, const uint8_t **p)
{
	struct me *m = e;

	*p = (const uint8_t *)m->out + m->outoff;
	return m->outlen - m->outoff;
}

static void me_consume(void *e, size_t n)
{
	struct me *m = e;

	assert_true(n <= m->outlen - m->outoff);
	m->outoff += n;
}

static void me_peer_closed(void *e)
{
	struct me *m = e;
	SSL *ssl = conn_ssl(&m->conn);

	m->peer_closed = true;
	if (ssl != NULL && (SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN))
		m->close_notify_seen = true;
}

static uint32_t me_timeout_ms(const void *e)
{
	(void)e;
	return 0;
}

static int me_timeout(void *e)
{
	(void)e;
	return PG_DONE;
}

static const struct conn_engine me_engine = {
    .name = "scripted",
    .input = me_input,
    .run = me_run,
    .output = me_output,
    .consume = me_consume,
    .peer_closed = me_peer_closed,
    .timeout_ms = me_timeout_ms,
    .timeout = me_timeout,
};

static bool me_event(struct conn *c, enum conn_event ev, void *owner)
{
	struct me *m = owner;

	assert_ptr_equal(c, &m->conn);
	switch (ev) {
	case CONN_EV_CONNECTED:
		conn_attach(c, &me_engine, m);
		return false;
	case CONN_EV_TLS_START:
		if (!m->server)
			SSL_set_verify(conn_ssl(c), SSL_VERIFY_NONE, NULL);
		return true;
	case CONN_EV_TLS_DONE:
		m->tls_done = true;
		m->tls_result = conn_tls(c);
		if (conn_tls(c) == CONN_TLS_ON && m->after_tls != NULL)
			me_say(m, m->after_tls);
		if (conn_tls(c) == CONN_TLS_FAILED && m->after_tls_fail != NULL) {
			me_say(m, m->after_tls_fail);
			m->done = true; /* and the session ends, as smtp_server's does */
		}
		return true;
	case CONN_EV_CLOSED:
		m->closed = true;
		m->end = conn_end(c);
		return false;
	case CONN_EV_INPUT:
	case CONN_EV_TIMEOUT:
		return false;
	}
	return false;
}

static const struct conn_ops me_ops = {.event = me_event};

/* ---- the server side: a listener handing each connection to `srv` ---- */

static struct me srv;

static void lst_accepted(struct tcp_conn *t, void *owner)
{
	struct me *m = owner;

	conn_init(&m->conn, T->s[1].w, &me_ops, m);
	conn_accept(&m->conn, t);
	conn_attach(&m->conn, &me_engine, m);
	me_say(m, "220 mx.test ESMTP\r\n");
	conn_run(&m->conn);
}

static const struct tcp_ops lst_ops = {.accepted = lst_accepted};

/* A raw client: what the server sends, byte for byte. */
struct raw {
	struct tcp_conn *c;
	char rx[8192];
	size_t rxlen;
	bool eof, errored;
	enum tcp_error err;
};

static void raw_readable(struct tcp_conn *c, void *user)
{
	struct raw *r = user;
	const uint8_t *p[2];
	uint32_t l[2], n = tcp_recv_peek(c, &p[0], &l[0], &p[1], &l[1]);

	for (unsigned i = 0; i < 2; i++) {
		size_t k = RTE_MIN((size_t)l[i], sizeof(r->rx) - 1 - r->rxlen);

		memcpy(r->rx + r->rxlen, p[i], k);
		r->rxlen += k;
	}
	r->rx[r->rxlen] = '\0';
	tcp_recv_consume(c, n);
	if (tcp_recv(c, NULL, 0) == PG_DONE)
		r->eof = true;
}

static void raw_closed(struct tcp_conn *c, void *user)
{
	(void)c;
	((struct raw *)user)->eof = true;
}

static void raw_error(struct tcp_conn *c, enum tcp_error err, void *user)
{
	struct raw *r = user;

	(void)c;
	r->errored = true;
	r->err = err;
}

static const struct tcp_ops raw_ops = {
    .readable = raw_readable, .closed = raw_closed, .error = raw_error};

static void raw_send(struct raw *r, const char *s)
{
	assert_int_equal(tcp_send(r->c, s, (uint32_t)strlen(s)), (int)strlen(s));
}

static bool raw_has(void *arg)
{
	struct raw *r = arg;

	return strstr(r->rx, "\r\n") != NULL || r->eof || r->errored;
}

static bool raw_over(void *arg)
{
	struct raw *r = arg;

	return r->eof || r->errored;
}

static bool me_closed(struct tl *t, void *arg)
{
	(void)t;
	return ((struct me *)arg)->closed;
}

static bool both_closed(struct tl *t, void *arg)
{
	struct me *cli = arg;

	(void)t;
	return cli->closed && srv.closed;
}

struct wait {
	bool (*pred)(void *arg);
	void *arg;
};

static bool wait_step(struct tl *t, void *arg)
{
	struct wait *wt = arg;

	(void)t;
	return wt->pred(wt->arg);
}

static bool run_until(bool (*pred)(void *), void *arg)
{
	struct wait wt = {.pred = pred, .arg = arg};

	return tl_run(T, wait_step, &wt, 60 * TL_S);
}

/* ---- fixture ---- */

static int cn_setup(void **state)
{
	if (tl_setup(state) != 0)
		return -1;
	T = *state;
	memset(&srv, 0, sizeof(srv));
	srv.server = true;
	srv.ctx = srv_ctx;
	srv.starttls_reply = "220 go ahead\r\n";
	assert_int_equal(tcp_listen(T->s[1].w, 0, PORT, &lst_ops, &srv), PG_OK);
	return 0;
}

static int cn_teardown(void **state)
{
	if (!srv.closed && srv.conn.w != NULL)
		conn_destroy(&srv.conn);
	(void)tcp_unlisten(T->s[1].w, 0, PORT);
	return tl_teardown(state);
}

static void cli_start(struct me *cli, const char *first)
{
	memset(cli, 0, sizeof(*cli));
	cli->ctx = cli_ctx;
	conn_init(&cli->conn, T->s[0].w, &me_ops, cli);
	me_say(cli, first);
	assert_int_equal(conn_connect(&cli->conn, TL_IP1, PORT, 10000), PG_OK);
}

/* ---- tests ---- */

/*
 * Both sides on the driver: the client pipelines an injected command
 * behind STARTTLS, the server pipelines an injected reply behind its 220.
 * Neither is ever read; the session goes on over TLS and ends with the
 * server's close_notify before its FIN, both ends closed in order.
 */
static void test_starttls_injection_both_ways(void **state)
{
	struct me cli;

	(void)state;
	srv.starttls_reply = "220 go ahead\r\n250 injected by the server\r\n";
	cli_start(&cli, "EHLO c\r\nSTARTTLS\r\nMAIL FROM:<injected@client>\r\n");
	cli.after_tls = "EHLO secure\r\nQUIT\r\n";
	assert_true(tl_run(T, both_closed, &cli, 60 * TL_S));

	/* the server read EHLO and STARTTLS in plaintext, then only what came over TLS */
	assert_true(me_read(&srv, "EHLO c"));
	assert_true(me_read(&srv, "STARTTLS"));
	assert_false(me_read(&srv, "MAIL FROM:<injected@client>"));
	assert_true(me_read(&srv, "EHLO secure"));
	assert_true(me_read(&srv, "QUIT"));
	assert_int_equal(srv.tls_result, CONN_TLS_ON);
	/* the client read the 220 of STARTTLS, not what the server pipelined behind it */
	assert_true(me_read(&cli, "220 go ahead"));
	assert_false(me_read(&cli, "250 injected by the server"));
	assert_int_equal(cli.tls_result, CONN_TLS_ON);
	assert_true(me_read(&cli, "221 bye"));
	/* close_notify came before the FIN, and nobody reset anybody */
	assert_true(cli.peer_closed || cli.done);
	assert_int_equal(cli.end, CONN_END_CLOSED);
	assert_int_equal(srv.end, CONN_END_CLOSED);
	assert_int_equal(CTR_VAL(T, 0, tcp_rst_tx), 0);
	assert_int_equal(CTR_VAL(T, 1, tcp_rst_tx), 0);
}

/*
 * The server ends the session over TLS (the client only waits): its
 * close_notify must reach the client before the FIN, so the client's
 * engine hears of the end with the TLS shutdown already received.
 */
static void test_close_notify_before_fin(void **state)
{
	struct me cli;

	(void)state;
	cli_start(&cli, "STARTTLS\r\n");
	cli.after_tls = "QUIT\r\n";
	cli.wait_peer = true; /* 221 is not its end: it learns of it from the server */
	assert_true(tl_run(T, me_closed, &srv, 60 * TL_S));
	assert_true(tl_run(T, me_closed, &cli, 60 * TL_S));
	assert_true(me_read(&cli, "221 bye"));
	assert_false(cli.done);
	assert_true(cli.peer_closed);
	assert_true(cli.close_notify_seen);
	assert_int_equal(cli.end, CONN_END_CLOSED);
	assert_int_equal(srv.end, CONN_END_CLOSED);
	assert_int_equal(CTR_VAL(T, 1, tcp_rst_tx), 0);
}

/*
 * The handshake fails on the server (no TLS locally): whatever its engine
 * says from then on - here a 454, as a naive engine would - is dropped.
 * A raw client sees the 220 of STARTTLS and not one byte more.
 */
static void test_no_plaintext_after_failed_starttls(void **state)
{
	struct raw r;

	(void)state;
	srv.ctx = NULL; /* TLS unavailable: the stream cannot start */
	srv.after_tls_fail = "454 4.7.0 TLS not available\r\n";
	memset(&r, 0, sizeof(r));
	assert_int_equal(tcp_connect(T->s[0].w, TL_IP1, PORT, &raw_ops, &r, &r.c), PG_OK);
	assert_true(run_until(raw_has, &r));
	assert_string_equal(r.rx, "220 mx.test ESMTP\r\n");
	r.rxlen = 0;
	r.rx[0] = '\0';
	raw_send(&r, "STARTTLS\r\nNOOP\r\n");
	/* the engine says its 454 and ends the session: the server closes, silent */
	assert_true(tl_run(T, me_closed, &srv, 60 * TL_S));
	assert_true(run_until(raw_over, &r));
	assert_true(srv.tls_done);
	assert_int_equal(srv.tls_result, CONN_TLS_FAILED);
	assert_false(me_read(&srv, "NOOP"));
	assert_string_equal(r.rx, "220 go ahead\r\n");
	assert_int_equal(srv.end, CONN_END_CLOSED);
	assert_false(r.errored);
	tcp_close(r.c);
}

/*
 * The engine is done (QUIT) while the client has pipelined more it will
 * never read: the driver drains it, so the close is a FIN and not the RST
 * a close with unread data would be (tcp.h).
 */
static void test_drain_before_fin(void **state)
{
	struct raw r;

	(void)state;
	memset(&r, 0, sizeof(r));
	assert_int_equal(tcp_connect(T->s[0].w, TL_IP1, PORT, &raw_ops, &r, &r.c), PG_OK);
	assert_true(run_until(raw_has, &r));
	raw_send(&r, "QUIT\r\nNOOP\r\nNOOP\r\nRSET\r\n");
	assert_true(tl_run(T, me_closed, &srv, 60 * TL_S));
	assert_true(run_until(raw_over, &r));
	assert_non_null(strstr(r.rx, "221 bye\r\n"));
	assert_false(me_read(&srv, "NOOP"));
	assert_int_equal(srv.end, CONN_END_CLOSED);
	assert_false(r.errored);
	assert_int_equal(CTR_VAL(T, 1, tcp_rst_tx), 0);
	assert_int_equal(CTR_VAL(T, 1, tcp_close_unread_rst), 0);
	tcp_close(r.c);
}

/* A connect that gets no answer ends CONN_END_TIMEOUT at its deadline; a refused one REFUSED. */
static void test_connect_timeout_and_refused(void **state)
{
	struct me cli;

	(void)state;
	T->link.blackhole[0] = true;
	cli_start(&cli, "EHLO c\r\n");
	assert_true(tl_run(T, me_closed, &cli, 60 * TL_S));
	assert_int_equal(cli.end, CONN_END_TIMEOUT);
	T->link.blackhole[0] = false;
	tl_run_for(T, 5 * TL_S);

	memset(&cli, 0, sizeof(cli));
	conn_init(&cli.conn, T->s[0].w, &me_ops, &cli);
	assert_int_equal(conn_connect(&cli.conn, TL_IP1, PORT + 1, 10000), PG_OK);
	assert_true(tl_run(T, me_closed, &cli, 60 * TL_S));
	assert_int_equal(cli.end, CONN_END_REFUSED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_starttls_injection_both_ways, cn_setup,
	                                    cn_teardown),
	    cmocka_unit_test_setup_teardown(test_close_notify_before_fin, cn_setup, cn_teardown),
	    cmocka_unit_test_setup_teardown(test_no_plaintext_after_failed_starttls, cn_setup,
	                                    cn_teardown),
	    cmocka_unit_test_setup_teardown(test_drain_before_fin, cn_setup, cn_teardown),
	    cmocka_unit_test_setup_teardown(test_connect_timeout_and_refused, cn_setup,
	                                    cn_teardown),
	};
	int rc;

	tl_eal_init();
	srv_ctx = make_server_ctx();
	cli_ctx = SSL_CTX_new(TLS_client_method());
	assert_non_null(cli_ctx);
	rc = cmocka_run_group_tests_name("relay_conn", tests, NULL, NULL);
	SSL_CTX_free(srv_ctx);
	SSL_CTX_free(cli_ctx);
	tl_eal_fini();
	return rc;
}
