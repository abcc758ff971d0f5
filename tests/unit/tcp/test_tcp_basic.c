/*
 * test_tcp_basic.c - connection life cycles between two stacks: handshake
 * and option negotiation, data both ways, orderly close from either side
 * with TIME_WAIT on the active closer, simultaneous close, refused
 * connect, abort (RST), close with unread data, SYN retry timeout,
 * zero window with persist probes, thousands of short connections with
 * TIME_WAIT reuse; everything back to zero connections and mbufs.
 */
#include <stdio.h>
#include <string.h>

#include "result.h"
#include "tcp_harness.h"

#define SRV_PORT 25

static bool both_connected(struct tl *t, void *arg)
{
	struct tl_app *a = arg;

	(void)t;
	return a[0].connected && a[1].connected;
}

static bool app_done(struct tl *t, void *arg)
{
	struct tl_app *a = arg;

	(void)t;
	return a[0].received == a[1].to_send && a[1].received == a[0].to_send && a[0].eof &&
	       a[1].eof;
}

static bool no_conns(struct tl *t, void *arg)
{
	(void)arg;
	return tcp_conn_count(t->s[0].w) == 0 && tcp_conn_count(t->s[1].w) == 0;
}

/* a[0] on side 0 connects to a listener on side 1 that hands the connection to a[1]. */
static void open_pair(struct tl *t, struct tl_app *a, struct tl_app *lst)
{
	memset(lst, 0, sizeof(*lst));
	lst->accept_into = &a[1];
	a[0].t = a[1].t = t;
	a[1].side = 1;
	assert_int_equal(tcp_listen(t->s[1].w, 0, SRV_PORT, &tl_app_ops, lst), PG_OK);
	assert_int_equal(tcp_connect(t->s[0].w, TL_IP1, SRV_PORT, &tl_app_ops, &a[0], &a[0].c),
	                 PG_OK);
	assert_true(tl_run(t, both_connected, a, 10 * TL_S));
	assert_string_equal(tcp_state_name_of(a[0].c), "ESTABLISHED");
	assert_string_equal(tcp_state_name_of(a[1].c), "ESTABLISHED");
}

static void test_handshake_options(void **state)
{
	struct tl *t = *state;
	struct tl_app a[2], lst;
	uint32_t la, ra;
	uint16_t lp, rp;

	memset(a, 0, sizeof(a));
	open_pair(t, a, &lst);
	assert_int_equal(lst.accepts, 1);
	/* The tuples mirror each other. */
	tcp_conn_tuple(a[0].c, &la, &lp, &ra, &rp);
	assert_int_equal(la, TL_IP0);
	assert_int_equal(ra, TL_IP1);
	assert_int_equal(rp, SRV_PORT);
	assert_true(lp >= 32768 && lp <= 60999);
	/* RFC 7323: both offered timestamps and window scale, so both use them. */
	assert_true(a[0].c->ts_ok && a[1].c->ts_ok);
	assert_true(a[0].c->ws_ok && a[1].c->ws_ok);
	assert_int_equal(a[0].c->snd_wscale, a[1].c->rcv_wscale);
	assert_int_equal(a[1].c->snd_wscale, a[0].c->rcv_wscale);
	assert_int_equal(a[0].c->mss, 1448); /* 1460 minus the timestamp option */
	/* After the handshake the window field is scaled: 256 KiB, more than 16 bits say. */
	assert_true(a[1].c->snd_wnd > 65535);
	assert_int_equal(a[0].c->cc.cwnd, 10 * 1448); /* RFC 6928 IW10 */
	assert_int_equal(CTR_VAL(t, 1, tcp_conn_passive), 1);
	assert_int_equal(CTR_VAL(t, 0, tcp_conn_active), 1);
	tcp_abort(a[0].c);
	tl_run(t, NULL, NULL, 100 * TL_MS);
	assert_true(a[1].errored);
	assert_int_equal(a[1].err, TCP_ERR_RESET);
	tcp_close(a[1].c);
	assert_true(tl_run(t, no_conns, NULL, 10 * TL_S));
	tcp_unlisten(t->s[1].w, 0, SRV_PORT);
}

/* Data both ways, then the client closes first: it ends in TIME_WAIT. */
static void test_exchange_and_close(void **state)
{
	struct tl *t = *state;
	struct tl_app a[2], lst;

	memset(a, 0, sizeof(a));
	a[0].tx_seed = a[1].rx_seed = 7;
	a[1].tx_seed = a[0].rx_seed = 9;
	open_pair(t, a, &lst);
	a[0].to_send = 100000;
	a[1].to_send = 3000;
	a[0].shutdown_when_sent = true;
	tl_app_pump(&a[0]);
	tl_app_pump(&a[1]);
	assert_true(tl_run(t, app_done, a, 10 * TL_S) || a[1].eof);
	/* Side 0 sent FIN first; side 1 saw EOF and is in CLOSE_WAIT until it shuts down. */
	assert_true(a[1].eof);
	assert_string_equal(tcp_state_name_of(a[1].c), "CLOSE_WAIT");
	assert_string_equal(tcp_state_name_of(a[0].c), "FIN_WAIT_2");
	assert_int_equal(a[1].received, 100000);
	assert_int_equal(a[0].received, 3000);
	assert_int_equal(a[0].rx_bad + a[1].rx_bad, 0);
	tcp_shutdown(a[1].c);
	tl_run_for(t, 100 * TL_MS);
	assert_true(a[0].eof);
	assert_true(a[0].closed && a[1].closed);
	assert_string_equal(tcp_state_name_of(a[0].c), "TIME_WAIT");
	assert_string_equal(tcp_state_name_of(a[1].c), "CLOSED");
	tcp_close(a[0].c);
	tcp_close(a[1].c);
	assert_int_equal(tcp_conn_count(t->s[0].w), 1); /* TIME_WAIT lives on */
	assert_int_equal(tcp_conn_count(t->s[1].w), 0);
	/* 2*MSL (MSL 1 s here) later it is gone. */
	tl_run_for(t, 1900 * TL_MS);
	assert_int_equal(tcp_conn_count(t->s[0].w), 1);
	assert_true(tl_run(t, no_conns, NULL, 200 * TL_MS));
	tcp_unlisten(t->s[1].w, 0, SRV_PORT);
}

/* Both sides shut down at once: FIN_WAIT_1 -> CLOSING -> TIME_WAIT on both. */
static void test_simultaneous_close(void **state)
{
	struct tl *t = *state;
	struct tl_app a[2], lst;

	memset(a, 0, sizeof(a));
	open_pair(t, a, &lst);
	tcp_shutdown(a[0].c);
	tcp_shutdown(a[1].c);
	assert_string_equal(tcp_state_name_of(a[0].c), "FIN_WAIT_1");
	assert_string_equal(tcp_state_name_of(a[1].c), "FIN_WAIT_1");
	tl_run_for(t, 50 * TL_MS);
	assert_string_equal(tcp_state_name_of(a[0].c), "TIME_WAIT");
	assert_string_equal(tcp_state_name_of(a[1].c), "TIME_WAIT");
	assert_true(a[0].closed && a[1].closed);
	tcp_close(a[0].c);
	tcp_close(a[1].c);
	assert_true(tl_run(t, no_conns, NULL, 5 * TL_S));
	tcp_unlisten(t->s[1].w, 0, SRV_PORT);
}

/* No listener: RFC 9293 §3.10.7.1 RST, the connect fails as refused. */
static void test_refused(void **state)
{
	struct tl *t = *state;
	struct tl_app a;

	memset(&a, 0, sizeof(a));
	assert_int_equal(tcp_connect(t->s[0].w, TL_IP1, 4444, &tl_app_ops, &a, &a.c), PG_OK);
	tl_run_for(t, 100 * TL_MS);
	assert_true(a.errored);
	assert_int_equal(a.err, TCP_ERR_REFUSED);
	assert_int_equal(CTR_VAL(t, 1, tcp_rst_tx), 1);
	assert_int_equal(CTR_VAL(t, 0, tcp_conn_refused), 1);
	tcp_close(a.c);
	assert_int_equal(tcp_conn_count(t->s[0].w), 0);
}

/* A peer that never answers: SYN retries with back-off, then TIMEOUT. */
static void test_syn_timeout(void **state)
{
	struct tl *t = *state;
	struct tl_app a;
	bool done;

	memset(&a, 0, sizeof(a));
	t->link.blackhole[1] = true;
	assert_int_equal(tcp_listen(t->s[1].w, 0, SRV_PORT, &tl_app_ops, &a), PG_OK);
	assert_int_equal(tcp_connect(t->s[0].w, TL_IP1, SRV_PORT, &tl_app_ops, &a, &a.c), PG_OK);
	/* 1+2+4+8+16+32+60 s of back-off (capped at rto_max 60 s) = 123 s. */
	done = tl_run(t, NULL, NULL, 120 * TL_S);
	(void)done;
	assert_false(a.errored);
	tl_run_for(t, 10 * TL_S);
	assert_true(a.errored);
	assert_int_equal(a.err, TCP_ERR_TIMEOUT);
	assert_int_equal(CTR_VAL(t, 0, tcp_rto), 6);
	tcp_close(a.c);
	t->link.blackhole[1] = false;
	/* The server's half-open connection gives up too (SYN-ACK retries). */
	assert_true(tl_run(t, no_conns, NULL, 200 * TL_S));
	tcp_unlisten(t->s[1].w, 0, SRV_PORT);
}

/* Closing with unread data resets (RFC 2525 §2.17); the peer gets RESET. */
static void test_close_unread_resets(void **state)
{
	struct tl *t = *state;
	struct tl_app a[2], lst;

	memset(a, 0, sizeof(a));
	a[0].to_send = 5000;
	a[1].no_read = true;
	open_pair(t, a, &lst);
	tl_run_for(t, 50 * TL_MS);
	assert_int_equal(a[1].c->rcvq.len, 5000);
	tcp_close(a[1].c);
	tl_run_for(t, 50 * TL_MS);
	assert_int_equal(CTR_VAL(t, 1, tcp_close_unread_rst), 1);
	assert_true(a[0].errored);
	assert_int_equal(a[0].err, TCP_ERR_RESET);
	tcp_close(a[0].c);
	assert_true(tl_run(t, no_conns, NULL, TL_S));
	tcp_unlisten(t->s[1].w, 0, SRV_PORT);
}

/*
 * Zero window: the reader stops, the sender fills the window, then probes
 * (persist) for a long time without giving up; reading resumes the flow.
 */
static void test_zero_window_persist(void **state)
{
	struct tl *t = *state;
	struct tl_app a[2], lst;

	memset(a, 0, sizeof(a));
	a[0].to_send = 2 * 1024 * 1024;
	a[0].shutdown_when_sent = true;
	a[1].no_read = true;
	open_pair(t, a, &lst);
	tl_run_for(t, 2 * TL_S);
	assert_int_equal(a[1].c->rcvq.len, a[1].c->rcvq.cap); /* receive buffer full */
	assert_int_equal(a[0].c->snd_wnd, 0);
	assert_true(a[0].c->persist);
	/* Minutes of zero window: probes continue, nothing times out. */
	tl_run_for(t, 300 * TL_S);
	assert_true(CTR_VAL(t, 0, tcp_persist_probes) >= 5);
	assert_true(CTR_VAL(t, 1, tcp_rx_window_probe) >= 5);
	assert_false(a[0].errored);
	assert_string_equal(tcp_state_name_of(a[0].c), "ESTABLISHED");
	a[1].no_read = false;
	tl_app_read(&a[1]);
	assert_true(tl_run(t, app_done, a, 60 * TL_S) || a[1].eof);
	assert_int_equal(a[1].received, a[0].to_send);
	assert_int_equal(a[1].rx_bad, 0);
	tcp_abort(a[0].c);
	tcp_abort(a[1].c);
	assert_true(tl_run(t, no_conns, NULL, TL_S));
	tcp_unlisten(t->s[1].w, 0, SRV_PORT);
}

struct short_run {
	struct tl_app lst, srv[4];
	unsigned next_srv;
};

/*
 * RFC 7661 / RFC 9438 §5.8: a sender the application keeps below its
 * window does not grow cwnd, however many ACKs come back.
 */
static void test_app_limited_cwnd(void **state)
{
	struct tl *t = *state;
	struct tl_app a[2], lst;
	uint32_t iw;

	memset(a, 0, sizeof(a));
	open_pair(t, a, &lst);
	iw = a[0].c->cc.cwnd;
	for (unsigned i = 0; i < 200; i++) {
		a[0].to_send += 3000; /* ~2 segments every 10 ms: far below 10 segments per RTT */
		tl_app_pump(&a[0]);
		tl_run_for(t, 10 * TL_MS);
	}
	assert_int_equal(a[1].received, 600000);
	assert_int_equal(a[0].c->cc.cwnd, iw);
	/* A window's worth at once makes it cwnd-limited: now it grows. */
	a[0].to_send += 200000;
	tl_app_pump(&a[0]);
	tl_run_for(t, 100 * TL_MS);
	assert_int_equal(a[1].received, 800000);
	assert_true(a[0].c->cc.cwnd > iw);
	tcp_abort(a[0].c);
	tl_run_for(t, 100 * TL_MS);
	tcp_close(a[1].c);
	assert_true(tl_run(t, no_conns, NULL, 10 * TL_S));
	tcp_unlisten(t->s[1].w, 0, SRV_PORT);
}

/*
 * RFC 7323 §4: with timestamps nearly every ACK that advances SND.UNA
 * is an RTT sample; without them Karn's one-segment timing gives about
 * one per round trip. Both estimate the link's ~2 ms round trip.
 */
static void test_rtt_samples(void **state)
{
	struct tl *t = *state;
	uint32_t samples[2];

	for (unsigned ts = 0; ts < 2; ts++) {
		struct tl_app a[2], lst;

		t->s[0].w->tcp->cfg.timestamps = ts == 1;
		memset(a, 0, sizeof(a));
		open_pair(t, a, &lst);
		assert_int_equal(a[0].c->ts_ok, ts == 1);
		a[0].to_send = 2 << 20;
		tl_app_pump(&a[0]);
		tl_run_for(t, 2 * TL_S);
		assert_int_equal(a[1].received, 2 << 20);
		samples[ts] = a[0].c->rtt_samples;
		printf("# timestamps %s: %u RTT samples, srtt %.3f ms, rto %.1f ms\n",
		       ts ? "on" : "off", samples[ts], (double)a[0].c->srtt_ns / 1e6,
		       (double)a[0].c->rto_ns / 1e6);
		assert_true(a[0].c->srtt_ns >= 1 * TL_MS && a[0].c->srtt_ns <= 20 * TL_MS);
		tcp_abort(a[0].c);
		tl_run_for(t, 100 * TL_MS);
		tcp_close(a[1].c);
		assert_true(tl_run(t, no_conns, NULL, 10 * TL_S));
		tcp_unlisten(t->s[1].w, 0, SRV_PORT);
	}
	assert_true(samples[1] > 4 * samples[0]);
}

/*
 * Keepalive (RFC 9293 §3.8.4): off by default - an idle pair stays
 * silent; on, the idle server probes, a live client answers and the
 * connection stays; a vanished client is timed out after the probes.
 */
static void test_keepalive(void **state)
{
	struct tl *t = *state;
	struct tl_app a[2], lst;
	uint64_t segs;

	memset(a, 0, sizeof(a));
	open_pair(t, a, &lst);
	tl_run_for(t, 1 * TL_S);
	segs = CTR_VAL(t, 0, tcp_tx_segs) + CTR_VAL(t, 1, tcp_tx_segs);
	tl_run_for(t, 300 * TL_S);
	assert_int_equal(CTR_VAL(t, 0, tcp_tx_segs) + CTR_VAL(t, 1, tcp_tx_segs), segs);
	assert_int_equal(CTR_VAL(t, 1, tcp_keepalive_tx), 0);
	tcp_abort(a[0].c);
	tl_run_for(t, 100 * TL_MS);
	tcp_close(a[1].c);
	assert_true(tl_run(t, no_conns, NULL, 10 * TL_S));
	tcp_unlisten(t->s[1].w, 0, SRV_PORT);

	t->s[1].w->tcp->cfg.keepalive_idle_ns = 10 * TL_S;
	t->s[1].w->tcp->cfg.keepalive_intvl_ns = 1 * TL_S;
	t->s[1].w->tcp->cfg.keepalive_probes = 3;
	memset(a, 0, sizeof(a));
	open_pair(t, a, &lst);
	tl_run_for(t, 35 * TL_S);
	assert_true(CTR_VAL(t, 1, tcp_keepalive_tx) >= 3); /* one per idle period, answered */
	assert_false(a[1].errored);
	assert_string_equal(tcp_state_name_of(a[1].c), "ESTABLISHED");
	/* The client vanishes: 10 s idle, 3 probes 1 s apart, then timed out. */
	t->link.blackhole[0] = true;
	tl_run_for(t, 15 * TL_S);
	assert_true(a[1].errored);
	assert_int_equal(a[1].err, TCP_ERR_TIMEOUT);
	assert_int_equal(CTR_VAL(t, 1, tcp_keepalive_timeout), 1);
	t->link.blackhole[0] = false;
	tcp_close(a[1].c);
	tcp_abort(a[0].c);
	assert_true(tl_run(t, no_conns, NULL, 10 * TL_S));
	tcp_unlisten(t->s[1].w, 0, SRV_PORT);
}

/*
 * Thousands of short connections, one after another: connect, send a
 * little, the client closes first (TIME_WAIT on the client), the server
 * closes at EOF. More connections than fit in the port range minus
 * TIME_WAIT would need reuse; here the range is narrowed to force it.
 */
static void test_many_short_connections(void **state)
{
	struct tl *t = *state;
	enum { N = 3000 };
	struct tl_app lst, srv, cli;
	unsigned ok = 0;

	/* 200 ports for 3000 connections: only TIME_WAIT reuse makes this work. */
	t->s[0].w->tcp->cfg.ephemeral_lo = 40000;
	t->s[0].w->tcp->cfg.ephemeral_hi = 40199;
	t->s[0].w->tcp->port_cursor = 40000;
	t->s[0].w->tcp->cfg.msl_ns = 30 * TL_S; /* TIME_WAIT 60 s: ports cycle every 4 s */
	memset(&lst, 0, sizeof(lst));
	lst.accept_into = &srv;
	assert_int_equal(tcp_listen(t->s[1].w, 0, SRV_PORT, &tl_app_ops, &lst), PG_OK);
	for (unsigned i = 0; i < N; i++) {
		struct tl_app pair[2];
		int rc;

		memset(&srv, 0, sizeof(srv));
		memset(&cli, 0, sizeof(cli));
		srv.close_on_eof = true;
		srv.to_send = 200;
		srv.tx_seed = cli.rx_seed = i;
		cli.to_send = 100;
		cli.tx_seed = srv.rx_seed = i + 1;
		cli.shutdown_when_sent = true;
		cli.close_on_eof = true;
		rc = tcp_connect(t->s[0].w, TL_IP1, SRV_PORT, &tl_app_ops, &cli, &cli.c);
		assert_int_equal(rc, PG_OK);
		pair[0] = cli;
		(void)pair;
		tl_run_for(t, 20 * TL_MS);
		if (cli.handle_released && srv.handle_released && cli.received == 200 &&
		    srv.received == 100 && cli.rx_bad == 0 && srv.rx_bad == 0)
			ok++;
		else
			fail_msg("connection %u: cli rx %lu srv rx %lu released %d/%d", i,
			         (unsigned long)cli.received, (unsigned long)srv.received,
			         cli.handle_released, srv.handle_released);
	}
	assert_int_equal(ok, N);
	assert_int_equal(lst.accepts, N);
	assert_true(CTR_VAL(t, 0, tcp_time_wait_reuse) > N - 200 - 1);
	assert_int_equal(CTR_VAL(t, 0, tcp_port_exhausted), 0);
	assert_true(tl_run(t, no_conns, NULL, 65 * TL_S));
	tcp_unlisten(t->s[1].w, 0, SRV_PORT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_handshake_options, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_exchange_and_close, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_simultaneous_close, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_refused, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_syn_timeout, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_close_unread_resets, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_zero_window_persist, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_app_limited_cwnd, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_rtt_samples, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_keepalive, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_many_short_connections, tl_setup, tl_teardown),
	};
	int rc;

	tl_eal_init();
	rc = cmocka_run_group_tests_name("tcp_basic", tests, NULL, NULL);
	tl_eal_fini();
	return rc;
}
