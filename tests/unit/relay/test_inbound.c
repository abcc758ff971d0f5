/*
 * test_inbound.c - the inbound SMTP service (dataplane/relay/inbound.c)
 * over the two-stack harness of tests/unit/tcp: side 1 runs the service
 * with a real spool in a temporary directory on disk, side 0 a scripted
 * client writing raw SMTP over tcp.h. The virtual clock stops while spool
 * I/O is in flight (real time), so a 250 can only come after the fsync.
 * Covered: accept only after the commit, relay denied / allowed by
 * relay_domains / allowed by mynetworks, byte-exact replay after a
 * restart (Received: header included), a session reset during its
 * commit (message still queued, nothing leaked), 421 over the session
 * cap. Every test ends at the baseline: no connection, no session,
 * nothing waiting on the spool, no armed timer, no mbuf (teardown).
 */
#include <errno.h>
#include <stddef.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "relay/inbound.h"
#include "result.h"
#include "snap_build.h"
#include "snap_format.h"
#include "spool/spool.h"
#include "tcp_harness.h"

#define SMTP_PORT 25
#define FIXED_NOW ((time_t)1700000000) /* Tue, 14 Nov 2023 22:13:20 +0000 */
#define REAL_WAIT_S 20                 /* bound on real time spent waiting for the disk */

/* ---- fixture: side 1 serves SMTP on a spool in a temporary directory ---- */

struct fx {
	struct tl *t;
	char dir[64];
	void *snap;
};

static struct fx fx;

static time_t fixed_now(void)
{
	return FIXED_NOW;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void *build_snapshot(bool service, const char *extra)
{
	char text[2048], err[512];
	struct pg_conf *c = malloc(sizeof(*c));
	struct snap_header *h;
	void *blob;
	size_t len;

	assert_non_null(c);
	snprintf(text, sizeof(text),
	         "port0_device = net_ring0\nport0_address = 198.18.0.2/24\n"
	         "smtp_service = %s\nspool_directory = %s\nmyhostname = mx.postern.test\n%s",
	         service ? "yes" : "no", fx.dir, extra);
	if (conf_parse_text("/etc/postern", text, strlen(text), c, err, sizeof(err)) != PG_OK)
		fail_msg("conf: %s", err);
	if (snap_build(c, &blob, &len, err, sizeof(err)) != PG_OK)
		fail_msg("snap_build: %s", err);
	free(c);
	h = blob;
	h->checksum = snap_checksum(blob, len);
	if (snap_validate(blob, len, err, sizeof(err)) != 0)
		fail_msg("snap_validate: %s", err);
	return blob;
}

/* Adopt postern.conf settings on the server side (replacing the last ones). */
static void server_conf_service(bool service, const char *extra)
{
	struct worker *w = fx.t->s[1].w;
	void *old = fx.snap;

	fx.snap = build_snapshot(service, extra);
	w->snap = fx.snap;
	inbound_adopt(w, fx.snap);
	free(old);
}

static void server_conf(const char *extra)
{
	server_conf_service(true, extra);
}

static void spool_start(void)
{
	char err[256];

	assert_int_equal(inbound_spool_open(fx.t->s[1].w, fx.dir, NULL, 0, err, sizeof(err)),
	                 PG_OK);
}

static int ib_setup(void **state)
{
	if (tl_setup(state) != 0)
		return -1;
	memset(&fx, 0, sizeof(fx));
	fx.t = *state;
	snprintf(fx.dir, sizeof(fx.dir), "/var/tmp/pg-inbound-test-XXXXXX");
	if (mkdtemp(fx.dir) == NULL)
		return -1;
	spool_start();
	inbound_set_clock(fx.t->s[1].w, fixed_now);
	return 0;
}

static int ib_teardown(void **state)
{
	struct worker *w = fx.t->s[1].w;

	inbound_destroy(w);
	if (w->spool != NULL)
		spool_close(w->spool);
	w->spool = NULL;
	w->snap = NULL;
	free(fx.snap);
	nftw(fx.dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return tl_teardown(state);
}

/* ---- running the world: virtual time stands still while the disk works ---- */

struct wait {
	bool (*pred)(void *arg);
	void *arg;
	bool poll_spool; /* false: leave completions in the ring (a commit stays "in flight") */
};

static bool wait_step(struct tl *t, void *arg)
{
	struct wait *wt = arg;
	struct worker *w = t->s[1].w;

	if (wt->poll_spool)
		inbound_poll(w);
	if (wt->pred(wt->arg))
		return true;
	return wt->poll_spool && inbound_busy(w);
}

static bool run_until(bool (*pred)(void *arg), void *arg, bool poll_spool)
{
	struct wait wt = {.pred = pred, .arg = arg, .poll_spool = poll_spool};
	struct worker *w = fx.t->s[1].w;
	time_t give_up = time(NULL) + REAL_WAIT_S;

	for (;;) {
		bool stopped = tl_run(fx.t, wait_step, &wt, 60 * TL_S);

		if (pred(arg))
			return true;
		if (!stopped)
			return false; /* a minute of virtual time without getting there */
		while (inbound_busy(w)) {
			struct timespec ts = {0, 100 * 1000};

			if (time(NULL) > give_up)
				return false;
			nanosleep(&ts, NULL);
			inbound_poll(w);
		}
	}
}

static bool quiet(void *arg)
{
	struct tl *t = arg;

	return tcp_conn_count(t->s[0].w) == 0 && tcp_conn_count(t->s[1].w) == 0 &&
	       inbound_sessions(t->s[1].w) == 0 && !inbound_busy(t->s[1].w);
}

static void assert_quiet(void)
{
	assert_true(run_until(quiet, fx.t, true));
	assert_int_equal(inbound_sessions_on_spool(fx.t->s[1].w), 0);
}

/* ---- the scripted client (side 0) ---- */

struct client {
	struct tcp_conn *c;
	char rx[65536];
	size_t rxlen;
	bool eof, errored, released;
	/* when "250 2.0.0 Ok: queued" first arrived: what the spool had done */
	bool queued_seen;
	uint64_t fsyncs_then, commits_then;
	unsigned queue_then;
};

static void cl_readable(struct tcp_conn *c, void *user)
{
	struct client *cl = user;
	const uint8_t *p[2];
	uint32_t l[2], n = tcp_recv_peek(c, &p[0], &l[0], &p[1], &l[1]);

	for (unsigned i = 0; i < 2; i++) {
		size_t k = RTE_MIN((size_t)l[i], sizeof(cl->rx) - 1 - cl->rxlen);

		memcpy(cl->rx + cl->rxlen, p[i], k);
		cl->rxlen += k;
	}
	cl->rx[cl->rxlen] = '\0';
	tcp_recv_consume(c, n);
	if (!cl->queued_seen && strstr(cl->rx, "250 2.0.0 Ok: queued as ") != NULL) {
		struct spool *sp = fx.t->s[1].w->spool;

		cl->queued_seen = true;
		cl->fsyncs_then = spool_stats(sp)->fsyncs;
		cl->commits_then = spool_stats(sp)->commits;
		cl->queue_then = spool_queue_count(sp);
	}
	if (tcp_recv_peek(c, &p[0], &l[0], &p[1], &l[1]) == 0 && tcp_recv(c, NULL, 0) == PG_DONE)
		cl->eof = true;
}

static void cl_error(struct tcp_conn *c, enum tcp_error err, void *user)
{
	struct client *cl = user;

	(void)c, (void)err;
	cl->errored = true;
}

static void cl_closed(struct tcp_conn *c, void *user)
{
	struct client *cl = user;

	(void)c;
	cl->eof = true;
}

static const struct tcp_ops cl_ops = {
    .readable = cl_readable,
    .closed = cl_closed,
    .error = cl_error,
};

static void cl_connect(struct client *cl)
{
	memset(cl, 0, sizeof(*cl));
	assert_int_equal(tcp_connect(fx.t->s[0].w, TL_IP1, SMTP_PORT, &cl_ops, cl, &cl->c), PG_OK);
}

static void cl_send(struct client *cl, const char *text)
{
	size_t len = strlen(text), off = 0;

	while (off < len) {
		int n = tcp_send(cl->c, text + off, (uint32_t)(len - off));

		assert_true(n > 0);
		off += (size_t)n;
	}
}

/* The client's transcript holds `want` (a reply line start) `count` times. */
struct expect {
	struct client *cl;
	const char *want;
	unsigned count;
};

static unsigned occurrences(const char *hay, const char *needle)
{
	unsigned n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

static bool has_reply(void *arg)
{
	struct expect *e = arg;

	return occurrences(e->cl->rx, e->want) >= e->count || e->cl->errored;
}

static void expect_reply(struct client *cl, const char *want, unsigned count)
{
	struct expect e = {.cl = cl, .want = want, .count = count};

	if (!run_until(has_reply, &e, true) || occurrences(cl->rx, want) < count)
		fail_msg("no \"%s\" (x%u) in:\n%s", want, count, cl->rx);
}

static bool cl_over(void *arg)
{
	struct client *cl = arg;

	return cl->eof || cl->errored;
}

/* QUIT, 221, the server closes; release our handle. */
static void cl_quit(struct client *cl)
{
	cl_send(cl, "QUIT\r\n");
	expect_reply(cl, "221 2.0.0 ", 1);
	assert_true(run_until(cl_over, cl, true));
	assert_false(cl->errored);
	tcp_close(cl->c);
}

/* The id of the n-th (1-based) "queued as" in the transcript. */
static void queued_id(const struct client *cl, unsigned nth, char id[SPOOL_ID_STRLEN])
{
	const char *p = cl->rx;

	for (unsigned i = 0; i < nth; i++) {
		p = strstr(p, "queued as ");
		assert_non_null(p);
		p += strlen("queued as ");
	}
	assert_int_equal(strspn(p, "0123456789ABCDEF"), SPOOL_ID_STRLEN - 1);
	memcpy(id, p, SPOOL_ID_STRLEN - 1);
	id[SPOOL_ID_STRLEN - 1] = '\0';
}

static struct spool_msg *queued_msg(const char *id)
{
	uint64_t v;
	struct spool_msg *m;

	assert_int_equal(spool_id_parse(id, &v), PG_OK);
	m = spool_msg_lookup(fx.t->s[1].w->spool, v);
	assert_non_null(m);
	return m;
}

static void assert_body(const char *id, const char *want)
{
	struct spool_msg *m = queued_msg(id);
	char buf[8192];
	size_t len = 0;

	assert_int_equal(spool_read_body(fx.t->s[1].w->spool, m, buf, sizeof(buf), &len), PG_OK);
	if (len != strlen(want) || memcmp(buf, want, len) != 0)
		fail_msg("body of %s:\n%.*s\nwanted:\n%s", id, (int)len, buf, want);
}

#define BODY "Subject: test\r\nFrom: <alice@sender.test>\r\n\r\nHello,\r\n..dot line\r\nbye\r\n"
#define BODY_STORED                                                                                \
	"Subject: test\r\nFrom: <alice@sender.test>\r\n\r\nHello,\r\n.dot line\r\nbye\r\n"

/* ---- tests ---- */

/*
 * From mynetworks to any domain: accepted, and the 250 arrives only once
 * the message is committed and fsynced. A restart (spool closed and
 * replayed) finds it byte for byte, Received: header included.
 */
static void test_accept_after_commit_and_replay(void **state)
{
	struct tl *t = *state;
	struct worker *w = t->s[1].w;
	struct client cl;
	char id[SPOOL_ID_STRLEN], want[1024];
	struct spool_msg *m;
	uint32_t plen;
	const char *params;
	uint64_t fsyncs;

	server_conf("mynetworks = 198.18.0.0/24\n");
	assert_true(inbound_listening(w));
	cl_connect(&cl);
	expect_reply(&cl, "220 mx.postern.test ESMTP Postern\r\n", 1);
	cl_send(&cl, "EHLO client.test\r\n");
	expect_reply(&cl, "250 ", 1);
	cl_send(&cl, "MAIL FROM:<alice@sender.test> BODY=8BITMIME\r\n"
	             "RCPT TO:<bob@far.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@far.test\r\n"
	             "DATA\r\n");
	expect_reply(&cl, "354 ", 1);
	fsyncs = spool_stats(w->spool)->fsyncs; /* segment creation syncs too */
	cl_send(&cl, BODY ".\r\n");
	expect_reply(&cl, "250 2.0.0 Ok: queued as ", 1);
	/* durability: when the client saw 250, the message was synced and queued */
	assert_true(cl.queued_seen);
	assert_true(cl.fsyncs_then > fsyncs);
	assert_int_equal(cl.commits_then, 1);
	assert_int_equal(cl.queue_then, 1);
	queued_id(&cl, 1, id);
	cl_quit(&cl);
	assert_quiet();

	assert_int_equal(CTR_VAL(t, 1, smtp_sessions), 1);
	assert_int_equal(CTR_VAL(t, 1, smtp_messages_accepted), 1);
	assert_int_equal(CTR_VAL(t, 1, smtp_recipients_accepted), 1);
	assert_int_equal(CTR_VAL(t, 1, smtp_relay_denied), 0);
	assert_int_equal(CTR_VAL(t, 1, smtp_spool_errors), 0);
	assert_int_equal(CTR_VAL(t, 1, spool_commits), 1);
	assert_true(CTR_VAL(t, 1, spool_fsyncs) >= 1);
	assert_int_equal(CTR_VAL(t, 1, spool_queued), 1);

	/* the exact byte stream: the engine's Received: header, then the body */
	snprintf(want, sizeof(want),
	         "Received: from client.test ([198.18.0.1])\r\n"
	         "\tby mx.postern.test (Postern) with ESMTP id %s\r\n"
	         "\tfor <bob@far.test>; Tue, 14 Nov 2023 22:13:20 +0000\r\n" BODY_STORED,
	         id);
	assert_body(id, want);

	/* restart: no session holds the spool; close it and replay */
	inbound_destroy(w);
	spool_close(w->spool);
	w->spool = NULL;
	spool_start();
	assert_int_equal(spool_queue_count(w->spool), 1);
	assert_body(id, want);
	m = queued_msg(id);
	assert_string_equal(spool_msg_sender(m), "alice@sender.test");
	assert_int_equal(spool_msg_nrcpt(m), 1);
	assert_string_equal(spool_msg_rcpt(m, 0), "bob@far.test");
	params = spool_msg_params(m, &plen);
	assert_int_equal(plen, strlen("M BODY=8BITMIME\nR NOTIFY=SUCCESS,FAILURE "
	                              "ORCPT=rfc822;bob@far.test\n"));
	assert_memory_equal(
	    params, "M BODY=8BITMIME\nR NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@far.test\n", plen);
}

/*
 * Outside mynetworks: only relay_domains recipients are accepted (exact
 * domain; ".parent" entries for sub-domains); the rest get Postfix's 554.
 */
static void test_relay_access(void **state)
{
	struct tl *t = *state;
	struct client cl;
	char id[SPOOL_ID_STRLEN], want[1024];

	server_conf("mynetworks = 10.0.0.0/8\nrelay_domains = relay.test, .sub.test\n");
	cl_connect(&cl);
	expect_reply(&cl, "220 ", 1);
	cl_send(&cl, "EHLO client.test\r\nMAIL FROM:<>\r\n"
	             "RCPT TO:<bob@far.test>\r\n"
	             "RCPT TO:<carol@Relay.Test>\r\n"
	             "RCPT TO:<dave@x.relay.test>\r\n"
	             "RCPT TO:<erin@a.sub.test>\r\n"
	             "RCPT TO:<frank@sub.test>\r\n"
	             "RCPT TO:<postmaster>\r\n");
	expect_reply(&cl, "\r\n", 9);
	assert_non_null(strstr(cl.rx, "554 5.7.1 <bob@far.test>: Relay access denied\r\n"));
	assert_non_null(strstr(cl.rx, "554 5.7.1 <dave@x.relay.test>: Relay access denied\r\n"));
	assert_non_null(strstr(cl.rx, "554 5.7.1 <frank@sub.test>: Relay access denied\r\n"));
	assert_non_null(strstr(cl.rx, "554 5.7.1 <postmaster>: Relay access denied\r\n"));
	assert_int_equal(occurrences(cl.rx, "250 2.1.5 Ok\r\n"), 2);
	assert_int_equal(CTR_VAL(t, 1, smtp_relay_denied), 4);
	assert_int_equal(CTR_VAL(t, 1, smtp_recipients_accepted), 2);
	cl_send(&cl, "DATA\r\n");
	expect_reply(&cl, "354 ", 1);
	cl_send(&cl, BODY ".\r\n");
	expect_reply(&cl, "250 2.0.0 Ok: queued as ", 1);
	queued_id(&cl, 1, id);
	/* two recipients: no "for" clause in Received: (RFC 5321 §7.2) */
	snprintf(want, sizeof(want),
	         "Received: from client.test ([198.18.0.1])\r\n"
	         "\tby mx.postern.test (Postern) with ESMTP id %s; Tue, 14 Nov 2023 22:13:20 "
	         "+0000\r\n" BODY_STORED,
	         id);
	assert_body(id, want);
	assert_int_equal(spool_msg_nrcpt(queued_msg(id)), 2);
	assert_string_equal(spool_msg_rcpt(queued_msg(id), 0), "carol@Relay.Test");
	assert_string_equal(spool_msg_rcpt(queued_msg(id), 1), "erin@a.sub.test");
	assert_string_equal(spool_msg_sender(queued_msg(id)), "");

	/* a transaction with no accepted recipient: DATA is refused, nothing spooled */
	cl_send(&cl, "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@far.test>\r\nDATA\r\n");
	expect_reply(&cl, "554 5.5.1 ", 1);
	assert_int_equal(spool_queue_count(t->s[1].w->spool), 1);
	cl_quit(&cl);
	assert_quiet();
	assert_int_equal(CTR_VAL(t, 1, smtp_messages_accepted), 1);
}

static bool on_spool(void *arg)
{
	(void)arg;
	return inbound_sessions_on_spool(fx.t->s[1].w) == 1;
}

static bool no_session(void *arg)
{
	(void)arg;
	return inbound_sessions(fx.t->s[1].w) == 0;
}

/*
 * The client resets the connection while its message is being
 * committed: the session goes (its callback forgotten), the message is
 * still queued once the sync completes, nothing leaks (teardown, ASan).
 */
static void test_reset_during_commit(void **state)
{
	struct tl *t = *state;
	struct worker *w = t->s[1].w;
	struct client cl;

	server_conf("mynetworks = 198.18.0.0/24\n");
	cl_connect(&cl);
	expect_reply(&cl, "220 ", 1);
	cl_send(&cl, "HELO client.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n");
	expect_reply(&cl, "354 ", 1);
	cl_send(&cl, BODY ".\r\nQUIT\r\n");
	/* without polling the spool, the commit cannot complete */
	assert_true(run_until(on_spool, NULL, false));
	assert_false(cl.queued_seen);
	tcp_abort(cl.c);
	assert_true(run_until(no_session, NULL, false));
	assert_int_equal(spool_queue_count(w->spool), 0);
	/* now the sync completes into the void: queued, nobody told */
	assert_quiet();
	assert_int_equal(spool_queue_count(w->spool), 1);
	assert_int_equal(CTR_VAL(t, 1, smtp_messages_accepted), 0);
	assert_int_equal(CTR_VAL(t, 1, spool_commits), 1);
	assert_false(cl.queued_seen);
}

/* A transaction abandoned (RSET, then a disconnect mid-DATA) leaves nothing queued. */
static void test_abandoned(void **state)
{
	struct tl *t = *state;
	struct client cl;

	server_conf("mynetworks = 198.18.0.0/24\n");
	cl_connect(&cl);
	expect_reply(&cl, "220 ", 1);
	cl_send(&cl, "EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nRSET\r\n"
	             "MAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n");
	expect_reply(&cl, "354 ", 1);
	cl_send(&cl, "Subject: half\r\n\r\nnever ends\r\n");
	tl_run_for(t, 10 * TL_MS);
	tcp_close(cl.c); /* FIN mid-DATA */
	assert_quiet();
	assert_int_equal(spool_queue_count(t->s[1].w->spool), 0);
	assert_int_equal(CTR_VAL(t, 1, smtp_messages_accepted), 0);
}

/* Over smtp_max_sessions: 421 at the greeting, then the server closes. */
static void test_session_cap(void **state)
{
	struct tl *t = *state;
	struct client a, b;

	server_conf("mynetworks = 198.18.0.0/24\nsmtp_max_sessions = 1\n");
	cl_connect(&a);
	expect_reply(&a, "220 ", 1);
	cl_connect(&b);
	expect_reply(&b, "421 4.3.2 mx.postern.test Service not available", 1);
	assert_true(run_until(cl_over, &b, true));
	tcp_close(b.c);
	assert_int_equal(CTR_VAL(t, 1, smtp_sessions), 1);
	assert_int_equal(CTR_VAL(t, 1, smtp_sessions_refused), 1);
	cl_quit(&a);
	assert_quiet();
}

/* smtp_service = no: the listener goes (connections refused); yes brings it back. */
static void test_service_toggle(void **state)
{
	struct tl *t = *state;
	struct worker *w = t->s[1].w;
	struct client cl;

	server_conf("mynetworks = 198.18.0.0/24\n");
	assert_true(inbound_listening(w));
	server_conf_service(false, "");
	assert_false(inbound_listening(w));
	cl_connect(&cl);
	assert_true(run_until(cl_over, &cl, true));
	assert_true(cl.errored); /* RST: nobody listens */
	tcp_close(cl.c);
	server_conf("smtp_listen_port = 2525\n");
	assert_true(inbound_listening(w));
	cl_connect(&cl); /* still port 25: refused */
	assert_true(run_until(cl_over, &cl, true));
	assert_true(cl.errored);
	tcp_close(cl.c);
	memset(&cl, 0, sizeof(cl));
	assert_int_equal(tcp_connect(t->s[0].w, TL_IP1, 2525, &cl_ops, &cl, &cl.c), PG_OK);
	expect_reply(&cl, "220 mx.postern.test ESMTP Postern\r\n", 1);
	cl_quit(&cl);
	assert_quiet();
}

/*
 * snap_validate refuses every out-of-range field of the SMTP section (its
 * limits are settings: test_snap's settings section test).
 */
static void test_snapshot_strict(void **state)
{
	static const struct {
		const char *name, *want;
		size_t off, size;
		uint64_t value;
	} bad[] = {
	    {"flags", "unknown flags", offsetof(struct snap_smtp, flags), 4, 0x4},
	    {"port", "listen_port 0", offsetof(struct snap_smtp, listen_port), 2, 0},
	    {"pad", "pad 1", offsetof(struct snap_smtp, pad), 2, 1},
	    {"reserved", "reserved 1", offsetof(struct snap_smtp, reserved), 8, 1},
	    {"hostname", "smtp myhostname",
	     offsetof(struct snap_smtp, myhostname) + offsetof(struct snap_str, len), 4, 0},
	    {"spool", "is not a string", offsetof(struct snap_smtp, spool_directory), 4, 1},
	};
	char err[256];

	(void)state;
	snprintf(fx.dir, sizeof(fx.dir), "/var/spool/x");
	for (size_t i = 0; i < RTE_DIM(bad); i++) {
		struct snap_header *h = build_snapshot(true, "");
		uint32_t n;
		uint8_t *t = (uint8_t *)snap_section(h, SNAP_SEC_SMTP, &n);

		assert_non_null(t);
		assert_int_equal(n, 1);
		memcpy(t + bad[i].off, &bad[i].value, bad[i].size); /* little-endian */
		h->checksum = snap_checksum(h, h->size);
		if (snap_validate(h, h->size, err, sizeof(err)) == 0 ||
		    strstr(err, bad[i].want) == NULL)
			fail_msg("%s: \"%s\"", bad[i].name, err);
		free(h);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_snapshot_strict),
	    cmocka_unit_test_setup_teardown(test_accept_after_commit_and_replay, ib_setup,
	                                    ib_teardown),
	    cmocka_unit_test_setup_teardown(test_relay_access, ib_setup, ib_teardown),
	    cmocka_unit_test_setup_teardown(test_reset_during_commit, ib_setup, ib_teardown),
	    cmocka_unit_test_setup_teardown(test_abandoned, ib_setup, ib_teardown),
	    cmocka_unit_test_setup_teardown(test_session_cap, ib_setup, ib_teardown),
	    cmocka_unit_test_setup_teardown(test_service_toggle, ib_setup, ib_teardown),
	};
	int rc;

	tl_eal_init();
	rc = cmocka_run_group_tests_name("relay_inbound", tests, NULL, NULL);
	tl_eal_fini();
	return rc;
}
