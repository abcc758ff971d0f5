/*
 * test_tcp_sessions.c - what `posternctl sessions` reads from a worker:
 * tcp_foreach_conn over real connections between two stacks (tuple,
 * state, passive or active, bytes both ways from the sequence space,
 * buffer fill, age on the worker's clock, early stop), and the worker's
 * command handler (dataplane/core/cmd.c) answering a session list, a
 * ping, an unknown command and a malformed request over the command
 * rings of a real shared-memory region, truncating at the operator's
 * limit and when the response ring is full, never waiting.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmdring.h"
#include "core/cmd.h"
#include "result.h"
#include "shm.h"
#include "tcp_harness.h"

#define SRV_PORT 25
/*
 * More connections than two answer records hold: a list spans three
 * records, and a response ring with room for one record truncates it.
 */
#define NCONN (2 * CMD_SESSIONS_PER_RECORD + 1)

static bool all_connected(struct tl *t, void *arg)
{
	struct tl_app *a = arg;

	(void)t;
	for (unsigned i = 0; i < 2 * NCONN; i++)
		if (!a[i].connected)
			return false;
	return true;
}

static bool app_connected(struct tl *t, void *arg)
{
	(void)t;
	return ((struct tl_app *)arg)->connected;
}

static bool all_received(struct tl *t, void *arg)
{
	struct tl_app *a = arg;

	(void)t;
	return a[1].received == a[0].to_send && a[0].received == a[1].to_send;
}

struct collect {
	struct tcp_conn_info ci[4 * NCONN];
	unsigned n, stop_after;
};

static bool collect_one(const struct tcp_conn_info *ci, void *arg)
{
	struct collect *c = arg;

	c->ci[c->n++] = *ci;
	return c->stop_after == 0 || c->n < c->stop_after;
}

/* NCONN connections from side 0 to a listener on side 1; a[2i] client, a[2i+1] server. */
static void open_conns(struct tl *t, struct tl_app *a, struct tl_app *lst)
{
	memset(a, 0, sizeof(*a) * 2 * NCONN);
	memset(lst, 0, sizeof(*lst) * NCONN);
	assert_int_equal(tcp_listen(t->s[1].w, 0, SRV_PORT, &tl_app_ops, lst), PG_OK);
	for (unsigned i = 0; i < NCONN; i++) {
		a[2 * i].t = a[2 * i + 1].t = t;
		a[2 * i + 1].side = 1;
		/* the listener hands each new connection to the next server app */
		lst->accept_into = &a[2 * i + 1];
		assert_int_equal(
		    tcp_connect(t->s[0].w, TL_IP1, SRV_PORT, &tl_app_ops, &a[2 * i], &a[2 * i].c),
		    PG_OK);
		assert_true(tl_run(t, app_connected, &a[2 * i + 1], 10 * TL_S));
	}
	assert_true(tl_run(t, all_connected, a, 10 * TL_S));
}

static void close_conns(struct tl *t, struct tl_app *a)
{
	for (unsigned i = 0; i < 2 * NCONN; i++)
		tcp_abort(a[i].c);
	tl_run_for(t, 100 * TL_MS);
	tcp_unlisten(t->s[1].w, 0, SRV_PORT);
}

static void test_foreach_conn(void **state)
{
	struct tl *t = *state;
	struct tl_app a[2 * NCONN], lst[NCONN];
	static struct collect c;
	uint64_t opened = t->now;
	unsigned with_data = 0;

	open_conns(t, a, lst);
	/* connection 0: 100000 bytes up, 3000 down, 500 left unread on the server */
	a[0].tx_seed = a[1].rx_seed = 3;
	a[1].tx_seed = a[0].rx_seed = 4;
	a[0].to_send = 100000;
	a[1].to_send = 3000;
	tl_app_pump(&a[0]);
	tl_app_pump(&a[1]);
	assert_true(tl_run(t, all_received, a, 10 * TL_S));
	a[1].no_read = true;
	a[0].to_send += 500;
	tl_app_pump(&a[0]);
	tl_run_for(t, 1 * TL_S);

	memset(&c, 0, sizeof(c));
	assert_int_equal(tcp_foreach_conn(t->s[1].w, collect_one, &c), NCONN);
	assert_int_equal(c.n, NCONN);
	for (unsigned i = 0; i < c.n; i++) {
		const struct tcp_conn_info *ci = &c.ci[i];

		assert_string_equal(ci->state, "ESTABLISHED");
		assert_true(ci->passive);
		assert_int_equal(ci->laddr, TL_IP1);
		assert_int_equal(ci->raddr, TL_IP0);
		assert_int_equal(ci->lport, SRV_PORT);
		assert_true(ci->created_ns >= opened && ci->created_ns <= t->now);
		if (ci->bytes_in == 0) {
			assert_int_equal(ci->bytes_out, 0);
			assert_int_equal(ci->rcvq, 0);
			continue;
		}
		/* connection 0, seen from the server */
		with_data++;
		assert_int_equal(ci->bytes_in, 100500);
		assert_int_equal(ci->bytes_out, 3000);
		assert_int_equal(ci->rcvq, 500);
		assert_int_equal(ci->sndq, 0);
		assert_int_equal(ci->rport, rte_be_to_cpu_16(a[0].c->lport));
	}
	assert_int_equal(with_data, 1);
	/* the client side: active, its own ephemeral ports */
	memset(&c, 0, sizeof(c));
	assert_int_equal(tcp_foreach_conn(t->s[0].w, collect_one, &c), NCONN);
	for (unsigned i = 0; i < c.n; i++) {
		assert_false(c.ci[i].passive);
		assert_int_equal(c.ci[i].rport, SRV_PORT);
		assert_true(c.ci[i].lport >= 32768);
	}
	/* fn stops the walk */
	memset(&c, 0, sizeof(c));
	c.stop_after = 3;
	assert_int_equal(tcp_foreach_conn(t->s[1].w, collect_one, &c), 3);

	/* after the client's FIN: its FIN is counted in neither direction */
	tcp_shutdown(a[0].c);
	tl_run_for(t, 1 * TL_S);
	memset(&c, 0, sizeof(c));
	tcp_foreach_conn(t->s[0].w, collect_one, &c);
	with_data = 0;
	for (unsigned i = 0; i < c.n; i++) {
		if (c.ci[i].bytes_out == 0)
			continue;
		with_data++;
		assert_string_equal(c.ci[i].state, "FIN_WAIT_2");
		assert_int_equal(c.ci[i].bytes_out, 100500);
		assert_int_equal(c.ci[i].bytes_in, 3000);
	}
	assert_int_equal(with_data, 1);
	memset(&c, 0, sizeof(c));
	tcp_foreach_conn(t->s[1].w, collect_one, &c);
	with_data = 0;
	for (unsigned i = 0; i < c.n; i++)
		if (c.ci[i].bytes_in != 0) {
			with_data++;
			assert_string_equal(c.ci[i].state, "CLOSE_WAIT");
			assert_int_equal(c.ci[i].bytes_in, 100500);
		}
	assert_int_equal(with_data, 1);
	close_conns(t, a);
}

/* ---- the worker's command handler ---- */

struct region {
	char name[64];
	struct shm_map control, dp;
};

static void region_open(struct region *g)
{
	char err[512];

	snprintf(g->name, sizeof(g->name), "pg-test-tcp-sessions-%d", (int)getpid());
	shm_unlink_name(g->name);
	assert_int_equal(shm_open_control(g->name, 64 << 10, &g->control, err, sizeof(err)), PG_OK);
	assert_int_equal(shm_attach(g->name, &g->dp, err, sizeof(err)), PG_OK);
}

static void region_close(struct region *g)
{
	shm_detach(&g->dp);
	shm_detach(&g->control);
	shm_unlink_name(g->name);
}

static void ask(struct region *g, uint64_t id, uint16_t code, const void *payload, uint16_t len)
{
	struct cmd_record rec;

	memset(&rec, 0, sizeof(rec));
	rec.id = id;
	rec.code = code;
	rec.len = len;
	if (len > 0)
		memcpy(rec.payload, payload, len);
	assert_true(cmdring_push(shm_cmd_request(g->control.region, 0), &rec));
}

/* Pop one whole answer into items; returns the final record. */
static struct cmd_record take(struct region *g, uint64_t id, struct cmd_session *items, unsigned *n)
{
	struct evring *resp = shm_cmd_response(g->control.region, 0);
	struct cmd_record rec;

	*n = 0;
	for (uint16_t seq = 0;; seq++) {
		assert_int_equal(cmdring_pop(resp, &rec, NULL), EVRING_RECORD);
		assert_int_equal(rec.id, id);
		assert_int_equal(rec.seq, seq);
		assert_int_equal(rec.worker, 0);
		if (items != NULL)
			memcpy(items + *n, rec.payload, (size_t)rec.count * sizeof(*items));
		*n += rec.count;
		if (!(rec.flags & CMDRING_F_MORE))
			return rec;
	}
}

static void test_worker_answers(void **state)
{
	struct tl *t = *state;
	struct worker *w = t->s[1].w;
	struct tl_app a[2 * NCONN], lst[NCONN];
	struct cmd_session items[4 * NCONN];
	struct region g;
	struct cmd_record fin;
	struct cmd_sessions_req q = {.max = 1000};
	unsigned n;

	region_open(&g);
	w->shm = &g.dp;
	w->gen = 42;
	/* nothing asked: nothing done */
	assert_int_equal(dp_cmd_poll(w), 0);

	open_conns(t, a, lst);
	tl_run_for(t, 2 * TL_S);
	ask(&g, 100, CMD_SESSIONS, &q, sizeof(q));
	assert_int_equal(dp_cmd_poll(w), 1);
	fin = take(&g, 100, items, &n);
	assert_int_equal(fin.status, CMDRING_OK);
	assert_int_equal(fin.flags, 0);
	assert_int_equal(fin.aux, NCONN);
	assert_int_equal(n, NCONN);
	for (unsigned i = 0; i < n; i++) {
		assert_string_equal(items[i].state, "ESTABLISHED");
		assert_int_equal(items[i].flags, CMD_SESSION_F_PASSIVE);
		assert_int_equal(items[i].lport, SRV_PORT);
		assert_int_equal(items[i].laddr, TL_IP1);
		/* the age on the worker's (virtual) clock: about the 2 s we waited */
		assert_true(items[i].age_ns >= 2 * TL_S && items[i].age_ns < 3 * TL_S);
	}

	/* the operator's limit: 4 of NCONN, the count still the whole */
	q.max = 4;
	ask(&g, 101, CMD_SESSIONS, &q, sizeof(q));
	assert_int_equal(dp_cmd_poll(w), 1);
	fin = take(&g, 101, NULL, &n);
	assert_int_equal(n, 4);
	assert_int_equal(fin.flags, CMDRING_F_TRUNCATED);
	assert_int_equal(fin.aux, NCONN);

	/* ping, an unknown command, a request too short: each gets its final record */
	ask(&g, 102, CMD_PING, "hello", 5);
	ask(&g, 103, 999, NULL, 0);
	ask(&g, 104, CMD_SESSIONS, NULL, 0);
	assert_int_equal(dp_cmd_poll(w), 3);
	fin = take(&g, 102, NULL, &n);
	assert_int_equal(fin.len, 5);
	assert_memory_equal(fin.payload, "hello", 5);
	assert_int_equal(fin.aux, 42);
	assert_int_equal(take(&g, 103, NULL, &n).status, CMDRING_UNKNOWN);
	assert_int_equal(take(&g, 104, NULL, &n).status, CMDRING_BAD);

	/* a burst: DP_CMD_BURST per pass, the rest on the next */
	for (unsigned i = 0; i < DP_CMD_BURST + 2; i++)
		ask(&g, 200 + i, CMD_PING, "", 0);
	assert_int_equal(dp_cmd_poll(w), DP_CMD_BURST);
	assert_int_equal(dp_cmd_poll(w), 2);
	for (unsigned i = 0; i < DP_CMD_BURST + 2; i++)
		take(&g, 200 + i, NULL, &n);

	/*
	 * posternd does not drain: the worker fills the response ring, keeps
	 * one record for each final one, then leaves requests waiting.
	 */
	{
		struct evring *resp = shm_cmd_response(g.control.region, 0);
		unsigned records = 0;
		struct cmd_record rec;

		q.max = 1000;
		for (unsigned i = 0; i < 3; i++)
			ask(&g, 300 + i, CMD_SESSIONS, &q, sizeof(q));
		/* all but one slot taken by records posternd has not read */
		for (uint32_t i = evring_space(resp); i > 1; i--)
			assert_true(cmdring_push(resp, &(struct cmd_record){.id = 1}));
		/* one slot: the first request gets its final record, what fits in it */
		assert_int_equal(dp_cmd_poll(w), 1);
		assert_int_equal(evring_space(resp), 0);
		/* no room: the others wait on the request ring, nothing is lost */
		assert_int_equal(dp_cmd_poll(w), 0);
		while (cmdring_pop(resp, &rec, NULL) == EVRING_RECORD) {
			if (rec.id == 1)
				continue;
			records++;
			assert_int_equal(rec.id, 300);
			assert_int_equal(rec.seq, 0);
			assert_int_equal(rec.flags, CMDRING_F_TRUNCATED);
			assert_int_equal(rec.count, CMD_SESSIONS_PER_RECORD);
			assert_int_equal(rec.aux, NCONN);
		}
		assert_int_equal(records, 1);
		assert_int_equal(dp_cmd_poll(w), 2);
		for (unsigned i = 1; i < 3; i++) {
			fin = take(&g, 300 + i, NULL, &n);
			assert_int_equal(n, NCONN);
			assert_int_equal(fin.flags, 0);
		}
	}

	w->shm = NULL;
	close_conns(t, a);
	region_close(&g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_foreach_conn, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_worker_answers, tl_setup, tl_teardown),
	};
	int rc;

	tl_eal_init();
	rc = cmocka_run_group_tests_name("tcp_sessions", tests, NULL, NULL);
	tl_eal_fini();
	return rc;
}
