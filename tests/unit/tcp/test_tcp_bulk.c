/*
 * test_tcp_bulk.c - bulk transfers between two stacks, both directions at
 * once on one connection, byte-exact (a pattern checked on receive), over
 * a clean link, 1% and 5% loss (with SACK, the default, and without, to
 * compare recovery times), reordering, and duplication with bit
 * corruption; CUBIC by default, NewReno once. The size per direction comes from PG_TCP_BULK_MB (default
 * 64, the figure; the ASan build may pass less to stay fast).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "result.h"
#include "tcp_harness.h"

#define SRV_PORT 9

static uint64_t bulk_bytes(void)
{
	const char *env = getenv("PG_TCP_BULK_MB");
	uint64_t mb = env != NULL && *env ? strtoull(env, NULL, 0) : 64;

	return (mb ? mb : 1) * 1024 * 1024;
}

static bool both_connected(struct tl *t, void *arg)
{
	struct tl_app *a = arg;

	(void)t;
	return a[0].connected && a[1].connected;
}

static bool transfer_done(struct tl *t, void *arg)
{
	struct tl_app *a = arg;

	(void)t;
	return (a[0].eof && a[1].eof) || a[0].errored || a[1].errored || a[0].rx_bad ||
	       a[1].rx_bad;
}

static bool no_conns(struct tl *t, void *arg)
{
	(void)arg;
	return tcp_conn_count(t->s[0].w) == 0 && tcp_conn_count(t->s[1].w) == 0;
}

static void bulk(struct tl *t, const char *name)
{
	struct tl_app a[2], lst;
	uint64_t n = bulk_bytes(), t0 = t->now;
	struct timespec w0, w1;

	clock_gettime(CLOCK_MONOTONIC, &w0);
	memset(a, 0, sizeof(a));
	memset(&lst, 0, sizeof(lst));
	lst.accept_into = &a[1];
	a[1].side = 1;
	for (unsigned i = 0; i < 2; i++) {
		a[i].t = t;
		a[i].to_send = n;
		a[i].shutdown_when_sent = true;
		a[i].tx_seed = 100 + i;
		a[i].rx_seed = 101 - i;
	}
	assert_int_equal(tcp_listen(t->s[1].w, 0, SRV_PORT, &tl_app_ops, &lst), PG_OK);
	assert_int_equal(tcp_connect(t->s[0].w, TL_IP1, SRV_PORT, &tl_app_ops, &a[0], &a[0].c),
	                 PG_OK);
	assert_true(tl_run(t, both_connected, a, 60 * TL_S));
	/* The congestion control the stack was configured with (CUBIC unless told). */
	assert_string_equal(t->s[0].w->tcp->cc_ops->name,
	                    t->s[0].w->tcp->cfg.cc == TCP_CC_NEWRENO ? "newreno" : "cubic");
	tl_app_pump(&a[1]);
	assert_true(tl_run(t, transfer_done, a, 3600 * TL_S));
	clock_gettime(CLOCK_MONOTONIC, &w1);
	printf("# %s: %" PRIu64 " MiB each way, virtual %.2f s, wall %.2f s, rto %" PRIu64
	       "/%" PRIu64 " fast-rtx %" PRIu64 "/%" PRIu64 " sack-rtx %" PRIu64 "/%" PRIu64
	       " lost %" PRIu64 "/%" PRIu64 " corrupted %" PRIu64 "\n",
	       name, n >> 20, (double)(t->now - t0) / 1e9,
	       (double)(w1.tv_sec - w0.tv_sec) + (double)(w1.tv_nsec - w0.tv_nsec) / 1e9,
	       CTR_VAL(t, 0, tcp_rto), CTR_VAL(t, 1, tcp_rto), CTR_VAL(t, 0, tcp_fast_retransmits),
	       CTR_VAL(t, 1, tcp_fast_retransmits), CTR_VAL(t, 0, tcp_sack_rtx),
	       CTR_VAL(t, 1, tcp_sack_rtx), t->s[0].lost, t->s[1].lost,
	       t->s[0].corrupted + t->s[1].corrupted);
	assert_false(a[0].errored);
	assert_false(a[1].errored);
	assert_int_equal(a[0].rx_bad, 0);
	assert_int_equal(a[1].rx_bad, 0);
	assert_int_equal(a[0].received, n);
	assert_int_equal(a[1].received, n);
	assert_true(a[0].eof && a[1].eof);
	/* SACK was in use exactly when configured, and recovered losses when there were any. */
	assert_int_equal(a[0].c->sack_ok, t->s[0].w->tcp->cfg.sack);
	if (!t->s[0].w->tcp->cfg.sack)
		assert_int_equal(CTR_VAL(t, 0, tcp_sack_recovery) + CTR_VAL(t, 1, tcp_sack_recovery),
		                 0);
	else if (t->link.loss_ppm >= 10000)
		assert_true(CTR_VAL(t, 0, tcp_sack_recovery) > 0 &&
		            CTR_VAL(t, 1, tcp_sack_recovery) > 0);
	/* Simultaneous-ish close: both sent FIN; let them finish and expire. */
	tl_run_for(t, 500 * TL_MS);
	tcp_close(a[0].c);
	tcp_close(a[1].c);
	assert_true(tl_run(t, no_conns, NULL, 30 * TL_S));
	tcp_unlisten(t->s[1].w, 0, SRV_PORT);
}

static void test_bulk_clean(void **state)
{
	bulk(*state, "clean");
}

static void test_bulk_loss_1pct(void **state)
{
	struct tl *t = *state;

	t->link.loss_ppm = 10000;
	bulk(t, "loss 1%");
}

static void test_bulk_loss_5pct(void **state)
{
	struct tl *t = *state;

	t->link.loss_ppm = 50000;
	bulk(t, "loss 5%");
}

/* NewReno stays selectable per stack. */
static int setup_newreno(void **state)
{
	struct tcp_config cfg;

	tcp_config_default(&cfg);
	cfg.msl_ns = 1 * TL_S;
	cfg.cc = TCP_CC_NEWRENO;
	return tl_setup_cfg(state, &cfg);
}

/* The same losses without SACK (NewReno recovery), to compare the virtual times. */
static int setup_nosack(void **state)
{
	struct tcp_config cfg;

	tcp_config_default(&cfg);
	cfg.msl_ns = 1 * TL_S;
	cfg.sack = false;
	return tl_setup_cfg(state, &cfg);
}

static void test_bulk_loss_1pct_nosack(void **state)
{
	struct tl *t = *state;

	t->link.loss_ppm = 10000;
	bulk(t, "loss 1% no-sack");
}

static void test_bulk_loss_5pct_nosack(void **state)
{
	struct tl *t = *state;

	t->link.loss_ppm = 50000;
	bulk(t, "loss 5% no-sack");
}

static void test_bulk_loss_1pct_newreno(void **state)
{
	struct tl *t = *state;

	t->link.loss_ppm = 10000;
	bulk(t, "loss 1% newreno");
}

static void test_bulk_reorder(void **state)
{
	struct tl *t = *state;

	t->link.jitter_ns = 300 * 1000; /* > 20 packet times at 1 Gb/s */
	bulk(t, "reorder");
}

static void test_bulk_dup_corrupt(void **state)
{
	struct tl *t = *state;

	t->link.dup_ppm = 10000;
	t->link.corrupt_ppm = 10000;
	t->link.loss_ppm = 5000;
	t->link.jitter_ns = 50 * 1000;
	bulk(t, "dup+corrupt+loss");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_bulk_clean, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_bulk_loss_1pct, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_bulk_loss_5pct, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_bulk_loss_1pct_nosack, setup_nosack, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_bulk_loss_5pct_nosack, setup_nosack, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_bulk_loss_1pct_newreno, setup_newreno, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_bulk_reorder, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_bulk_dup_corrupt, tl_setup, tl_teardown),
	};
	int rc;

	tl_eal_init();
	rc = cmocka_run_group_tests_name("tcp_bulk", tests, NULL, NULL);
	tl_eal_fini();
	return rc;
}
