/*
 * test_tcp_limits.c - backpressure before exhaustion (issue 3, DESIGN.md):
 * per-worker caps on connections, buffer memory and mbufs. Past the
 * watermark new passive opens get SYN cookies (no half-open state); at a
 * cap they are refused at once with a RST (the client sees "refused",
 * never a hang) and tcp_connect says PG_AGAIN; once the load goes away
 * the counters of live connections and buffer bytes are back to zero.
 */
#include <string.h>

#include <rte_mempool.h>

#include "result.h"
#include "tcp_harness.h"

#define SRV_PORT 25
#define NCLI 30

/* A server that keeps every connection it accepts. */
struct keeper {
	struct tcp_conn *c[NCLI];
	unsigned n;
};

static void keeper_accepted(struct tcp_conn *c, void *user)
{
	struct keeper *k = user;

	assert_true(k->n < NCLI);
	k->c[k->n++] = c;
}

static void keeper_error(struct tcp_conn *c, enum tcp_error err, void *user)
{
	(void)c;
	(void)err;
	(void)user;
}

static const struct tcp_ops keeper_ops = {.accepted = keeper_accepted, .error = keeper_error};

struct clients {
	struct tl_app a[NCLI];
	unsigned n;
};

static void clients_connect(struct tl *t, struct clients *cl, unsigned n)
{
	memset(cl, 0, sizeof(*cl));
	cl->n = n;
	for (unsigned i = 0; i < n; i++) {
		cl->a[i].t = t;
		assert_int_equal(
		    tcp_connect(t->s[0].w, TL_IP1, SRV_PORT, &tl_app_ops, &cl->a[i], &cl->a[i].c),
		    PG_OK);
	}
	tl_run_for(t, 2 * TL_S);
}

/*
 * Refused: a RST to the SYN, or - when the SYN got a cookie while the cap
 * was still free and the cap filled before the ACK came back - a RST to
 * that ACK. Either way an answer at once, never a hang.
 */
static unsigned count_refused(const struct clients *cl)
{
	unsigned n = 0;

	for (unsigned i = 0; i < cl->n; i++)
		if (cl->a[i].errored) {
			assert_true(cl->a[i].err == TCP_ERR_REFUSED ||
			            cl->a[i].err == TCP_ERR_RESET);
			n++;
		}
	return n;
}

static unsigned count_connected(const struct clients *cl)
{
	unsigned n = 0;

	for (unsigned i = 0; i < cl->n; i++)
		n += cl->a[i].connected && !cl->a[i].errored;
	return n;
}

static bool no_conns(struct tl *t, void *arg)
{
	(void)arg;
	return tcp_conn_count(t->s[0].w) == 0 && tcp_conn_count(t->s[1].w) == 0;
}

/* Everyone closes; then nothing is left on either side: no connection, no buffer. */
static void close_all(struct tl *t, struct clients *cl, struct keeper *k)
{
	for (unsigned i = 0; i < cl->n; i++)
		tcp_abort(cl->a[i].c);
	for (unsigned i = 0; i < k->n; i++)
		tcp_close(k->c[i]);
	assert_true(tl_run(t, no_conns, NULL, 30 * TL_S));
	assert_int_equal(tcp_buf_bytes(t->s[0].w), 0);
	assert_int_equal(tcp_buf_bytes(t->s[1].w), 0);
	tcp_unlisten(t->s[1].w, 0, SRV_PORT);
}

/*
 * 30 clients at once, a cap of 20: 18 plain, then cookies (past the 90%
 * watermark), of which 2 fit and the rest are reset; one more client
 * once the cap is full is refused at its SYN.
 */
static void test_conn_cap(void **state)
{
	struct tl *t = *state;
	struct keeper k = {.n = 0};
	struct clients cl;

	t->s[1].w->tcp->cfg.max_conns = 20;
	assert_int_equal(tcp_listen(t->s[1].w, 0, SRV_PORT, &keeper_ops, &k), PG_OK);
	clients_connect(t, &cl, NCLI);
	assert_int_equal(k.n, 20);
	assert_int_equal(count_connected(&cl), 20);
	assert_int_equal(count_refused(&cl), 10);
	assert_int_equal(CTR_VAL(t, 1, tcp_syncookie_ok), 2);
	assert_true(CTR_VAL(t, 1, tcp_drop_maxconn) >= 10);
	assert_int_equal(tcp_conn_count(t->s[1].w), 20);
	assert_int_equal(tcp_buf_bytes(t->s[1].w), 20ull * 512 * 1024);
	{
		struct tl_app late;

		memset(&late, 0, sizeof(late));
		assert_int_equal(
		    tcp_connect(t->s[0].w, TL_IP1, SRV_PORT, &tl_app_ops, &late, &late.c), PG_OK);
		tl_run_for(t, 100 * TL_MS);
		assert_true(late.errored && !late.connected);
		assert_int_equal(late.err, TCP_ERR_REFUSED);
		tcp_close(late.c);
	}
	close_all(t, &cl, &k);
}

/* Buffer memory for 5 connections: the 6th and later are refused. */
static void test_buffer_cap(void **state)
{
	struct tl *t = *state;
	struct keeper k = {.n = 0};
	struct clients cl;

	t->s[1].w->tcp->cfg.max_buf_bytes = 5ull * 512 * 1024;
	assert_int_equal(tcp_listen(t->s[1].w, 0, SRV_PORT, &keeper_ops, &k), PG_OK);
	clients_connect(t, &cl, 8);
	assert_int_equal(k.n, 5);
	assert_int_equal(count_refused(&cl), 3);
	assert_true(CTR_VAL(t, 1, tcp_refuse_mem) >= 3);
	assert_true(tcp_buf_bytes(t->s[1].w) <= 5ull * 512 * 1024);
	close_all(t, &cl, &k);
}

/*
 * mbufs: with the pool nearly taken (by something else), a SYN is
 * refused at once and tcp_connect says PG_AGAIN; with mbufs back, both
 * work again.
 */
static void test_mbuf_cap(void **state)
{
	struct tl *t = *state;
	struct keeper k = {.n = 0};
	struct clients cl;
	struct rte_mbuf *hog[200];
	struct tcp_conn *c;
	unsigned base = rte_mempool_in_use_count(tl_pool());
	struct tl_app extra;

	memset(&extra, 0, sizeof(extra));
	assert_int_equal(tcp_listen(t->s[1].w, 0, SRV_PORT, &keeper_ops, &k), PG_OK);
	/* Warm ARP up so only TCP needs mbufs from here. */
	clients_connect(t, &cl, 1);
	assert_int_equal(k.n, 1);
	/* The server may use 150 mbufs more than now; take 200. */
	t->s[1].w->tcp->max_mbufs = base + 150;
	t->s[0].w->tcp->max_mbufs = base + 150;
	for (unsigned i = 0; i < RTE_DIM(hog); i++)
		assert_non_null(hog[i] = rte_pktmbuf_alloc(tl_pool()));
	assert_int_equal(tcp_connect(t->s[0].w, TL_IP1, SRV_PORT, &tl_app_ops, &extra, &c),
	                 PG_AGAIN);
	assert_true(CTR_VAL(t, 0, tcp_refuse_mbuf) >= 1);
	/* The client is not starved, the server is: its SYN gets a RST. */
	t->s[0].w->tcp->max_mbufs = base + 1000;
	assert_int_equal(tcp_connect(t->s[0].w, TL_IP1, SRV_PORT, &tl_app_ops, &extra, &extra.c),
	                 PG_OK);
	tl_run_for(t, 100 * TL_MS);
	assert_true(extra.errored);
	assert_int_equal(extra.err, TCP_ERR_REFUSED);
	assert_true(CTR_VAL(t, 1, tcp_refuse_mbuf) >= 1);
	tcp_close(extra.c);
	/* mbufs back: accepted again. */
	for (unsigned i = 0; i < RTE_DIM(hog); i++)
		rte_pktmbuf_free(hog[i]);
	memset(&extra, 0, sizeof(extra));
	assert_int_equal(tcp_connect(t->s[0].w, TL_IP1, SRV_PORT, &tl_app_ops, &extra, &extra.c),
	                 PG_OK);
	tl_run_for(t, 100 * TL_MS);
	assert_true(extra.connected && !extra.errored);
	assert_int_equal(k.n, 2);
	tcp_abort(extra.c);
	close_all(t, &cl, &k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_conn_cap, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_buffer_cap, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_mbuf_cap, tl_setup, tl_teardown),
	};
	int rc;

	tl_eal_init();
	rc = cmocka_run_group_tests_name("tcp_limits", tests, NULL, NULL);
	tl_eal_fini();
	return rc;
}
