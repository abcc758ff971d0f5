/*
 * test_tcp_reconfigure.c - tcp_stack_reconfigure(), what a snapshot
 * adoption does to a worker's TCP stack: caps apply to the next SYN at
 * once, per-connection settings (congestion control, buffers, keepalive,
 * retries) to connections created afterwards, and a transfer already
 * running finishes byte-exact on the settings it started with.
 */
#include <string.h>

#include "result.h"
#include "tcp_harness.h"

#define IDLE_PORT 25
#define BULK_PORT 26
#define NEW_PORT 27
#define BULK_BYTES (8u << 20)

struct pair {
	struct tl_app a[2]; /* client (side 0), server (side 1) */
	struct tl_app lst;
};

static void pair_open(struct tl *t, struct pair *p, uint16_t port, uint64_t to_send)
{
	memset(p, 0, sizeof(*p));
	p->lst.accept_into = &p->a[1];
	for (unsigned i = 0; i < 2; i++) {
		p->a[i].t = t;
		p->a[i].side = i;
		p->a[i].to_send = to_send;
		p->a[i].shutdown_when_sent = to_send != 0;
		p->a[i].tx_seed = 300 + i;
		p->a[i].rx_seed = 301 - i;
	}
	assert_int_equal(tcp_listen(t->s[1].w, 0, port, &tl_app_ops, &p->lst), PG_OK);
	assert_int_equal(tcp_connect(t->s[0].w, TL_IP1, port, &tl_app_ops, &p->a[0], &p->a[0].c),
	                 PG_OK);
}

static bool pair_connected(struct tl *t, void *arg)
{
	struct pair *p = arg;

	(void)t;
	return p->a[0].connected && p->a[1].connected;
}

static bool quarter_received(struct tl *t, void *arg)
{
	struct pair *p = arg;

	(void)t;
	return p->a[1].received >= BULK_BYTES / 4 || p->a[0].errored || p->a[1].errored;
}

static bool pair_done(struct tl *t, void *arg)
{
	struct pair *p = arg;

	(void)t;
	return (p->a[0].eof && p->a[1].eof) || p->a[0].errored || p->a[1].errored ||
	       p->a[0].rx_bad || p->a[1].rx_bad;
}

static bool no_conns(struct tl *t, void *arg)
{
	(void)arg;
	return tcp_conn_count(t->s[0].w) == 0 && tcp_conn_count(t->s[1].w) == 0;
}

/* A server-side connection has the per-connection settings of `cfg`. */
static void assert_conn_settings(const struct tcp_conn *c, const struct tcp_config *cfg)
{
	assert_string_equal(c->cc_ops->name, cfg->cc == TCP_CC_NEWRENO ? "newreno" : "cubic");
	assert_int_equal(c->ka_idle_ns, cfg->keepalive_idle_ns);
	assert_int_equal(c->max_retries, cfg->max_retries);
	assert_int_equal(c->sndq.cap, cfg->sndbuf);
	assert_int_equal(c->rcvq.cap, cfg->rcvbuf);
	assert_int_equal(c->rcv_wscale, tcp_rcv_wscale_for(cfg->rcvbuf));
}

static void test_reconfigure_live(void **state)
{
	struct tl *t = *state;
	struct tcp_stack *srv = t->s[1].w->tcp;
	struct tcp_config before = *tcp_stack_config(srv), cfg;
	struct pair idle, bulk, fresh;
	struct tl_app late;

	t->link.delay_ns = 2 * TL_MS;
	/* Two connections on the defaults: one idle, one moving 8 MiB each way. */
	pair_open(t, &idle, IDLE_PORT, 0);
	assert_true(tl_run(t, pair_connected, &idle, 5 * TL_S));
	pair_open(t, &bulk, BULK_PORT, BULK_BYTES);
	assert_true(tl_run(t, quarter_received, &bulk, 60 * TL_S));
	assert_false(bulk.a[0].errored || bulk.a[1].errored);

	/* Mid-transfer, everything an operator can set changes. */
	cfg = before;
	cfg.max_conns = 2; /* the two there are */
	cfg.cc = TCP_CC_NEWRENO;
	cfg.sndbuf = cfg.rcvbuf = 64 << 10;
	cfg.keepalive_idle_ns = 10 * TL_S;
	cfg.keepalive_intvl_ns = 1 * TL_S;
	cfg.keepalive_probes = 3;
	cfg.max_retries = 3;
	cfg.syn_backlog = 1;
	cfg.watermark_pct = 50;
	assert_int_equal(tcp_stack_reconfigure(srv, &cfg), PG_OK);
	assert_int_equal(tcp_stack_config(srv)->max_conns, 2);

	/* The established ones keep what they started with. */
	assert_conn_settings(idle.a[1].c, &before);
	assert_conn_settings(bulk.a[1].c, &before);

	/* The cap is live at once: a third connection is refused, not hung. */
	memset(&late, 0, sizeof(late));
	late.t = t;
	assert_int_equal(tcp_connect(t->s[0].w, TL_IP1, IDLE_PORT, &tl_app_ops, &late, &late.c),
	                 PG_OK);
	tl_run_for(t, 100 * TL_MS);
	assert_true(late.errored && !late.connected);
	assert_int_equal(late.err, TCP_ERR_REFUSED);
	tcp_close(late.c);

	/* The transfer goes on undisturbed to the last byte. */
	assert_true(tl_run(t, pair_done, &bulk, 600 * TL_S));
	for (unsigned i = 0; i < 2; i++) {
		assert_false(bulk.a[i].errored);
		assert_int_equal(bulk.a[i].rx_bad, 0);
		assert_int_equal(bulk.a[i].received, BULK_BYTES);
	}
	tcp_close(bulk.a[0].c);
	tcp_close(bulk.a[1].c);
	tcp_unlisten(t->s[1].w, 0, BULK_PORT);

	/* Room again (TIME_WAIT counts): a new connection gets the new settings. */
	cfg.max_conns = 10;
	assert_int_equal(tcp_stack_reconfigure(srv, &cfg), PG_OK);
	pair_open(t, &fresh, NEW_PORT, 0);
	assert_true(tl_run(t, pair_connected, &fresh, 5 * TL_S));
	assert_conn_settings(fresh.a[1].c, &cfg);
	assert_conn_settings(idle.a[1].c, &before);

	/* Keepalive: the new connection is probed and answered... */
	tl_run_for(t, 35 * TL_S);
	assert_true(CTR_VAL(t, 1, tcp_keepalive_tx) >= 3);
	assert_string_equal(tcp_state_name_of(fresh.a[1].c), "ESTABLISHED");
	/*
	 * ...and timed out on its own settings when the client vanishes, even
	 * with keepalive switched off for newer connections meanwhile; the
	 * older one, created without keepalive, is left alone.
	 */
	cfg.keepalive_idle_ns = 0;
	assert_int_equal(tcp_stack_reconfigure(srv, &cfg), PG_OK);
	t->link.blackhole[0] = true;
	tl_run_for(t, 15 * TL_S);
	assert_true(fresh.a[1].errored);
	assert_int_equal(fresh.a[1].err, TCP_ERR_TIMEOUT);
	assert_int_equal(CTR_VAL(t, 1, tcp_keepalive_timeout), 1);
	assert_false(idle.a[1].errored);
	assert_string_equal(tcp_state_name_of(idle.a[1].c), "ESTABLISHED");
	t->link.blackhole[0] = false;

	tcp_close(fresh.a[1].c);
	tcp_abort(fresh.a[0].c);
	tcp_close(idle.a[0].c);
	tcp_close(idle.a[1].c);
	assert_true(tl_run(t, no_conns, NULL, 300 * TL_S));
	assert_int_equal(tcp_buf_bytes(t->s[0].w), 0);
	assert_int_equal(tcp_buf_bytes(t->s[1].w), 0);
	tcp_unlisten(t->s[1].w, 0, IDLE_PORT);
	tcp_unlisten(t->s[1].w, 0, NEW_PORT);
}

/*
 * A larger receive buffer is live for new connections; SYN-cookie
 * connections keep the window scale the stack started with (a cookie
 * cannot carry ours), which tcp_config_restart_only() reports.
 */
static void test_reconfigure_cookie_wscale(void **state)
{
	struct tl *t = *state;
	struct tcp_stack *srv = t->s[1].w->tcp;
	struct tcp_config before = *tcp_stack_config(srv), cfg = before;
	struct pair p;
	char why[256];

	cfg.rcvbuf = 4u << 20;
	cfg.syn_backlog = 1;
	assert_int_equal(tcp_stack_reconfigure(srv, &cfg), PG_OK);
	assert_int_equal(tcp_config_restart_only(&before, &cfg, why, sizeof(why)), 1);
	assert_non_null(strstr(why, "SYN cookies"));
	assert_int_equal(tcp_config_restart_only(&before, &before, why, sizeof(why)), 0);

	/* Backlog of 0 half-open: the next SYN gets a cookie. */
	cfg.syn_backlog = 0;
	assert_int_equal(tcp_stack_reconfigure(srv, &cfg), PG_OK);
	pair_open(t, &p, IDLE_PORT, 1 << 20);
	assert_true(tl_run(t, pair_connected, &p, 5 * TL_S));
	assert_int_equal(CTR_VAL(t, 1, tcp_syncookie_ok), 1);
	assert_int_equal(p.a[1].c->rcvq.cap, 4u << 20);
	assert_int_equal(p.a[1].c->rcv_wscale, tcp_rcv_wscale_for(before.rcvbuf));
	assert_int_equal(p.a[0].c->snd_wscale, p.a[1].c->rcv_wscale); /* what the client was told */
	assert_true(tl_run(t, pair_done, &p, 120 * TL_S));
	for (unsigned i = 0; i < 2; i++) {
		assert_false(p.a[i].errored);
		assert_int_equal(p.a[i].rx_bad, 0);
		assert_int_equal(p.a[i].received, 1 << 20);
	}
	tcp_close(p.a[0].c);
	tcp_close(p.a[1].c);
	assert_true(tl_run(t, no_conns, NULL, 300 * TL_S));
	tcp_unlisten(t->s[1].w, 0, IDLE_PORT);

	/* A config tcp_stack_create would refuse changes nothing. */
	cfg = before;
	cfg.max_conns = 0;
	assert_int_equal(tcp_stack_reconfigure(srv, &cfg), PG_ERROR);
	assert_int_equal(tcp_stack_config(srv)->max_conns, before.max_conns);
	assert_int_equal(tcp_stack_config(srv)->syn_backlog, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_reconfigure_live, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_reconfigure_cookie_wscale, tl_setup, tl_teardown),
	};
	int rc;

	tl_eal_init();
	rc = cmocka_run_group_tests_name("tcp_reconfigure", tests, NULL, NULL);
	tl_eal_fini();
	return rc;
}
