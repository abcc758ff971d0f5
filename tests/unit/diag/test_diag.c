/*
 * test_diag.c - the diagnostic services and client (dataplane/diag) over
 * the two-stack harness of tests/unit/tcp: side 1 runs echo, discard and
 * source, side 0 the client in each mode (echo 16 MiB at 1% loss), bad
 * source requests of every kind answered by RST, echo flow control with a
 * reader that stops and a slow one, client failures, the pattern against
 * its documented values, and the configuration path (postern.conf ->
 * snapshot -> diag_adopt). Every test ends with no connection, no diag
 * session, no armed timer and the mbuf baseline (teardown checks).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "conf.h"
#include "diag/diag.h"
#include "result.h"
#include "snap_build.h"
#include "snap_format.h"
#include "tcp_harness.h"

/* ---- fixture ---- */

static int diag_setup(void **state)
{
	int rc = tl_setup(state);
	struct tl *t = *state;

	if (rc == 0 && diag_services_start(t->s[1].w) != PG_OK)
		rc = -1;
	return rc;
}

static int diag_teardown(void **state)
{
	struct tl *t = *state;

	for (unsigned i = 0; i < 2; i++)
		diag_destroy(t->s[i].w);
	return tl_teardown(state);
}

static bool no_conns(struct tl *t, void *arg)
{
	(void)arg;
	return tcp_conn_count(t->s[0].w) == 0 && tcp_conn_count(t->s[1].w) == 0;
}

/* Everything finished: back to the baseline (teardown checks mbufs and timers). */
static void assert_quiet(struct tl *t)
{
	assert_true(tl_run(t, no_conns, NULL, 60 * TL_S));
	assert_int_equal(diag_service_conns(t->s[1].w), 0);
	assert_int_equal(diag_client_active(t->s[0].w), 0);
}

/* ---- client runs ---- */

struct run {
	bool done;
	struct diag_result r;
};

static void run_done(struct worker *w, const struct diag_result *r, void *arg)
{
	struct run *run = arg;

	(void)w;
	run->done = true;
	run->r = *r;
}

static bool run_finished(struct tl *t, void *arg)
{
	(void)t;
	return ((struct run *)arg)->done;
}

static struct diag_result client_run(struct tl *t, uint16_t port, enum diag_client_mode mode,
                                     uint64_t bytes)
{
	struct run run = {0};
	char line[256];

	assert_int_equal(diag_client_start(t->s[0].w, TL_IP1, port, mode, bytes, run_done, &run),
	                 PG_OK);
	assert_int_equal(diag_client_active(t->s[0].w), 1);
	assert_true(tl_run(t, run_finished, &run, 3600 * TL_S));
	diag_result_format(&run.r, line, sizeof(line));
	printf("# %s\n", line);
	return run.r;
}

static void test_pattern(void **state)
{
	static const uint8_t first[16] = {0xaf, 0xcd, 0x1d, 0x7b, 0x39, 0xa8, 0x20, 0xe2,
	                                  0xf4, 0x65, 0xb9, 0xa1, 0x6a, 0x9e, 0x78, 0x6e};
	static const char sha_1m[] =
	    "00d93eed5730552170c35b96f5b7f1843e2e358698ecf796a54427b49039c94c";
	uint8_t *buf = malloc(1000000), md[32];
	char hex[65];
	unsigned mdlen = 0;

	(void)state;
	assert_non_null(buf);
	diag_pattern_fill(0, buf, 1000000);
	assert_memory_equal(buf, first, sizeof(first));
	assert_int_equal(EVP_Digest(buf, 1000000, md, &mdlen, EVP_sha256(), NULL), 1);
	for (unsigned i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	assert_string_equal(hex, sha_1m);
	/* block j is block 0 plus j */
	for (uint64_t i = 0; i < 64; i++) {
		assert_int_equal(diag_pattern_byte(65536 + i), (uint8_t)(buf[i] + 1));
		assert_int_equal(diag_pattern_byte(300 * 65536ull + i), (uint8_t)(buf[i] + 300));
	}
	/* fill at any alignment agrees with the byte function; check finds a flip */
	for (uint64_t off = (1ull << 40) - 70000; off < (1ull << 40) - 69980; off++) {
		uint8_t part[77];

		diag_pattern_fill(off, part, sizeof(part));
		for (unsigned k = 0; k < sizeof(part); k++)
			assert_int_equal(part[k], diag_pattern_byte(off + k));
		assert_int_equal(diag_pattern_check(off, part, sizeof(part)), sizeof(part));
		part[off % 77] ^= 0x10;
		assert_int_equal(diag_pattern_check(off, part, sizeof(part)), off % 77);
	}
	/* no shift within a block reproduces it (a misplaced segment shows) */
	for (size_t d = 1; d < 4096; d++)
		assert_true(diag_pattern_check(d, buf, 1448) < 1448);
	free(buf);
}

static void test_echo_16m_loss(void **state)
{
	struct tl *t = *state;
	struct diag_result r;

	t->link.loss_ppm = 10000; /* 1% each way */
	r = client_run(t, DIAG_PORT_ECHO, DIAG_CLIENT_ECHO, 16u << 20);
	assert_true(r.ok);
	assert_false(r.mismatch);
	assert_int_equal(r.sent, 16u << 20);
	assert_int_equal(r.received, 16u << 20);
	assert_string_equal(r.error, "");
	assert_true(t->s[0].lost > 0 && t->s[1].lost > 0);
	assert_int_equal(CTR_VAL(t, 1, diag_echo_conns), 1);
	assert_int_equal(CTR_VAL(t, 1, diag_echo_bytes), 16u << 20);
	assert_int_equal(CTR_VAL(t, 0, diag_client_runs), 1);
	assert_int_equal(CTR_VAL(t, 0, diag_client_ok), 1);
	assert_int_equal(CTR_VAL(t, 0, diag_client_fail), 0);
	assert_int_equal(CTR_VAL(t, 0, diag_client_bytes), 32u << 20);
	assert_quiet(t);
}

static void test_discard(void **state)
{
	struct tl *t = *state;
	struct diag_result r = client_run(t, DIAG_PORT_DISCARD, DIAG_CLIENT_DISCARD, 4000001);

	assert_true(r.ok);
	assert_int_equal(r.sent, 4000001);
	assert_int_equal(r.received, 0);
	assert_int_equal(CTR_VAL(t, 1, diag_discard_conns), 1);
	assert_int_equal(CTR_VAL(t, 1, diag_discard_bytes), 4000001);
	assert_quiet(t);
}

static void test_source(void **state)
{
	struct tl *t = *state;
	struct diag_result r;

	t->link.loss_ppm = 5000;
	t->link.jitter_ns = 100 * 1000; /* some reordering too */
	r = client_run(t, DIAG_PORT_SOURCE, DIAG_CLIENT_SOURCE, (8u << 20) + 3);
	assert_true(r.ok);
	assert_int_equal(r.received, (8u << 20) + 3);
	assert_int_equal(r.sent, strlen("8388611\n"));
	assert_int_equal(CTR_VAL(t, 1, diag_source_conns), 1);
	assert_int_equal(CTR_VAL(t, 1, diag_source_bytes), (8u << 20) + 3);
	assert_int_equal(CTR_VAL(t, 1, diag_bad_request), 0);
	/* one byte, the smallest the client asks for */
	r = client_run(t, DIAG_PORT_SOURCE, DIAG_CLIENT_SOURCE, 1);
	assert_true(r.ok);
	assert_int_equal(r.received, 1);
	assert_int_equal(CTR_VAL(t, 0, diag_client_ok), 2);
	assert_quiet(t);
}

/* ---- a raw source client: sends a request text, reads and checks the answer ---- */

struct req_app {
	struct tcp_conn *c;
	const char *text;
	bool shut; /* FIN right after the text */
	bool errored, eof;
	enum tcp_error err;
	uint64_t received, bad; /* bad: first mismatching offset + 1 */
};

static void req_connected(struct tcp_conn *c, void *user)
{
	struct req_app *a = user;

	if (a->text[0] != '\0')
		assert_int_equal(tcp_send(c, a->text, (uint32_t)strlen(a->text)),
		                 (int)strlen(a->text));
	if (a->shut)
		tcp_shutdown(c);
}

static void req_readable(struct tcp_conn *c, void *user)
{
	struct req_app *a = user;
	const uint8_t *p[2];
	uint32_t l[2], n = tcp_recv_peek(c, &p[0], &l[0], &p[1], &l[1]);
	uint64_t off = a->received;

	for (unsigned i = 0; i < 2; i++) {
		size_t k = diag_pattern_check(off, p[i], l[i]);

		if (k < l[i] && a->bad == 0)
			a->bad = off + k + 1;
		off += l[i];
	}
	a->received += n;
	tcp_recv_consume(c, n);
	if (tcp_recv(c, NULL, 0) == PG_DONE)
		a->eof = true;
}

static void req_error(struct tcp_conn *c, enum tcp_error err, void *user)
{
	struct req_app *a = user;

	(void)c;
	a->errored = true;
	a->err = err;
}

static const struct tcp_ops req_ops = {
    .connected = req_connected,
    .readable = req_readable,
    .error = req_error,
};

static bool req_over(struct tl *t, void *arg)
{
	struct req_app *a = arg;

	(void)t;
	return a->errored || a->eof;
}

static void req_run(struct tl *t, struct req_app *a)
{
	assert_int_equal(tcp_connect(t->s[0].w, TL_IP1, DIAG_PORT_SOURCE, &req_ops, a, &a->c),
	                 PG_OK);
	assert_true(tl_run(t, req_over, a, 30 * TL_S));
}

static void test_source_bad_requests(void **state)
{
	static const struct {
		const char *name, *text;
		bool shut;
	} bad[] = {
	    {"non-digit", "12a\n", false},
	    {"empty line", "\n", false},
	    {"CR only", "\r\n", false},
	    {"CR inside", "5\r5\n", false},
	    {"negative", "-1\n", false},
	    {"space", " 10\n", false},
	    {"above 2^40", "1099511627777\n", false},
	    {"huge", "99999999999999999999999999\n", false},
	    {"no LF in 32 bytes", "00000000000000000000000000000001", false},
	    {"LF as byte 33", "000000000000000000000000000000001\n", false},
	    {"FIN before LF", "123", true},
	    {"FIN without anything", "", true},
	};
	struct tl *t = *state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct req_app a = {.text = bad[i].text, .shut = bad[i].shut};

		printf("# bad request: %s\n", bad[i].name);
		req_run(t, &a);
		if (!a.errored || a.err != TCP_ERR_RESET || a.received != 0)
			fail_msg("case \"%s\": errored %d err %d received %" PRIu64, bad[i].name,
			         a.errored, a.err, a.received);
		assert_int_equal(CTR_VAL(t, 1, diag_bad_request), i + 1);
		tcp_close(a.c);
	}
	assert_int_equal(CTR_VAL(t, 1, diag_source_bytes), 0);
	assert_quiet(t);
}

static void test_source_good_requests(void **state)
{
	static const struct {
		const char *text;
		bool shut;
		uint64_t want;
	} good[] = {
	    {"0\n", false, 0},
	    {"7\r\n", false, 7},
	    {"0000000000000000000000000000005\n", false, 5}, /* LF is byte 32 */
	    {"100000\n", true, 100000},                      /* half close after the request */
	    {"3\nand whatever follows is dropped", false, 3},
	};
	struct tl *t = *state;
	uint64_t total = 0;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct req_app a = {.text = good[i].text, .shut = good[i].shut};

		req_run(t, &a);
		if (a.errored || !a.eof || a.received != good[i].want || a.bad != 0)
			fail_msg("case %zu: errored %d eof %d received %" PRIu64 " bad %" PRIu64, i,
			         a.errored, a.eof, a.received, a.bad);
		total += good[i].want;
		tcp_close(a.c);
	}
	assert_int_equal(CTR_VAL(t, 1, diag_bad_request), 0);
	assert_int_equal(CTR_VAL(t, 1, diag_source_bytes), total);

	/* 2^40 itself is a valid request: it starts; we then reset it */
	{
		struct req_app a = {.text = "1099511627776\n"};

		assert_int_equal(
		    tcp_connect(t->s[0].w, TL_IP1, DIAG_PORT_SOURCE, &req_ops, &a, &a.c), PG_OK);
		tl_run_for(t, 200 * TL_MS);
		assert_false(a.errored);
		assert_true(a.received > 0);
		assert_int_equal(a.bad, 0);
		assert_int_equal(CTR_VAL(t, 1, diag_bad_request), 0);
		tcp_abort(a.c);
	}
	assert_quiet(t);
}

/* ---- echo flow control ---- */

static bool app_eof(struct tl *t, void *arg)
{
	struct tl_app *a = arg;

	(void)t;
	return a->eof || a->errored || a->rx_bad != 0;
}

/*
 * A client that sends 4 MiB into echo but does not read: echo can send
 * back only what our receive buffer takes, then stops reading, so its
 * window closes and our sender stalls on persist probes - nothing piles up
 * anywhere. Then a slow reader drains it all, byte-exact.
 */
static void test_echo_flow_control(void **state)
{
	struct tl *t = *state;
	struct tl_app a;
	uint64_t n = 4u << 20, sent_stalled;
	const uint8_t *p1, *p2;
	uint32_t l1, l2;

	memset(&a, 0, sizeof(a));
	a.t = t;
	a.to_send = n;
	a.tx_seed = a.rx_seed = 42; /* the echo must give back what we sent */
	a.shutdown_when_sent = true;
	a.no_read = true;
	assert_int_equal(tcp_connect(t->s[0].w, TL_IP1, DIAG_PORT_ECHO, &tl_app_ops, &a, &a.c),
	                 PG_OK);
	tl_run_for(t, 10 * TL_S);
	sent_stalled = a.sent;
	/*
	 * Bounded by the buffers on the way: our receive buffer (echoes),
	 * echo's send and receive buffers, our send buffer.
	 */
	assert_true(sent_stalled < n);
	assert_true(sent_stalled <= 4 * 256 * 1024 + 65536);
	assert_int_equal(tcp_recv_peek(a.c, &p1, &l1, &p2, &l2), 256 * 1024);
	assert_int_equal(a.c->snd_wnd, 0); /* echo's window is closed */
	assert_true(CTR_VAL(t, 0, tcp_persist_probes) > 0);
	assert_true(CTR_VAL(t, 1, diag_echo_bytes) < n);
	tl_run_for(t, 10 * TL_S);
	assert_int_equal(a.sent, sent_stalled); /* still stalled, not failed */
	assert_false(a.errored);

	/* A slow reader: at most 20 KiB every 5 ms. */
	for (unsigned rounds = 0; !a.eof && rounds < 100000; rounds++) {
		uint32_t avail = tcp_recv_peek(a.c, &p1, &l1, &p2, &l2);
		uint32_t take = avail < 20480 ? avail : 20480;

		for (uint32_t k = 0; k < take && a.rx_bad == 0; k++) {
			uint8_t b = k < l1 ? p1[k] : p2[k - l1];

			if (b != tl_pattern(a.received + k, a.rx_seed))
				a.rx_bad = a.received + k + 1;
		}
		assert_int_equal(a.rx_bad, 0);
		a.received += take;
		tcp_recv_consume(a.c, take);
		if (take == avail && tcp_recv(a.c, NULL, 0) == PG_DONE)
			a.eof = true;
		tl_app_pump(&a);
		tl_run_for(t, 5 * TL_MS);
	}
	assert_true(a.eof);
	assert_false(a.errored);
	assert_int_equal(a.received, n);
	assert_int_equal(a.sent, n);
	assert_int_equal(CTR_VAL(t, 1, diag_echo_bytes), n);
	tcp_close(a.c);
	assert_quiet(t);
}

/* Zero window from the start, then normal reading through tl_app. */
static void test_echo_zero_window_resume(void **state)
{
	struct tl *t = *state;
	struct tl_app a;

	memset(&a, 0, sizeof(a));
	a.t = t;
	a.to_send = 2u << 20;
	a.tx_seed = a.rx_seed = 7;
	a.shutdown_when_sent = true;
	a.close_on_eof = true;
	a.no_read = true;
	t->link.loss_ppm = 10000;
	assert_int_equal(tcp_connect(t->s[0].w, TL_IP1, DIAG_PORT_ECHO, &tl_app_ops, &a, &a.c),
	                 PG_OK);
	tl_run_for(t, 30 * TL_S);
	assert_true(a.sent < a.to_send);
	a.no_read = false;
	tl_app_read(&a);
	tl_app_pump(&a);
	assert_true(tl_run(t, app_eof, &a, 600 * TL_S));
	assert_false(a.errored);
	assert_int_equal(a.rx_bad, 0);
	assert_int_equal(a.received, a.to_send);
	assert_quiet(t);
}

/* ---- client failures ---- */

static void test_client_failures(void **state)
{
	struct tl *t = *state;
	struct diag_result r;
	struct run run = {0};

	/* nobody listens on 5001: refused, counted as a failure */
	r = client_run(t, 5001, DIAG_CLIENT_ECHO, 1000);
	assert_false(r.ok);
	assert_string_equal(r.error, "connection refused");
	assert_int_equal(CTR_VAL(t, 0, diag_client_fail), 1);
	/* asking discard for an echo gets nothing back: echo mode fails */
	r = client_run(t, DIAG_PORT_DISCARD, DIAG_CLIENT_ECHO, 5000);
	assert_false(r.ok);
	assert_string_equal(r.error, "peer closed after echoing 0 of 5000 bytes");
	/* asking echo for a source request: the echo is not the pattern */
	r = client_run(t, DIAG_PORT_ECHO, DIAG_CLIENT_SOURCE, 5000);
	assert_false(r.ok);
	assert_true(r.mismatch);
	assert_int_equal(r.mismatch_off, 0);
	/* discard mode against echo: data comes back where none should */
	r = client_run(t, DIAG_PORT_ECHO, DIAG_CLIENT_DISCARD, 5000);
	assert_false(r.ok);
	assert_string_equal(r.error, "received more than the 0 bytes expected");
	/* no route, bad arguments: refused at once, no callback */
	assert_int_equal(
	    diag_client_start(t->s[0].w, IP4(10, 1, 2, 3), 7, DIAG_CLIENT_ECHO, 10, run_done, &run),
	    PG_DECLINED);
	assert_int_equal(
	    diag_client_start(t->s[0].w, TL_IP1, 7, DIAG_CLIENT_ECHO, 0, run_done, &run), PG_ERROR);
	assert_int_equal(diag_client_start(t->s[0].w, TL_IP1, 7, DIAG_CLIENT_ECHO, (1ull << 40) + 1,
	                                   run_done, &run),
	                 PG_ERROR);
	assert_false(run.done);
	assert_int_equal(CTR_VAL(t, 0, diag_client_runs), 4);
	assert_int_equal(CTR_VAL(t, 0, diag_client_fail), 4);
	/* a peer that goes silent: the stall watchdog ends the run */
	t->link.blackhole[1] = true;
	r = client_run(t, DIAG_PORT_ECHO, DIAG_CLIENT_ECHO, 1u << 20);
	assert_false(r.ok);
	t->link.blackhole[1] = false;
	printf("# silent peer: %s\n", r.error);
	assert_quiet(t);
}

/* Teardown with everything in flight: nothing leaks, no callback. */
static void test_destroy_midway(void **state)
{
	struct tl *t = *state;
	struct run run = {0};

	assert_int_equal(diag_client_start(t->s[0].w, TL_IP1, DIAG_PORT_ECHO, DIAG_CLIENT_ECHO,
	                                   64u << 20, run_done, &run),
	                 PG_OK);
	tl_run_for(t, 200 * TL_MS);
	assert_int_equal(diag_service_conns(t->s[1].w), 1);
	assert_false(run.done);
	/* the teardown's diag_destroy aborts both ends */
}

/* ---- configuration: postern.conf -> snapshot -> diag_adopt ---- */

static void *build_snapshot(const char *extra)
{
	char text[1024], err[512];
	struct pg_conf *c = malloc(sizeof(*c));
	struct snap_header *h;
	void *blob;
	size_t len;

	assert_non_null(c);
	snprintf(text, sizeof(text), "port0_device = net_ring0\nport0_address = 198.18.0.1/24\n%s",
	         extra);
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

static bool runs_done(struct tl *t, void *arg)
{
	uint64_t want = *(uint64_t *)arg;

	return CTR_VAL(t, 0, diag_client_runs) >= want && diag_client_active(t->s[0].w) == 0;
}

static void test_config_adopt(void **state)
{
	struct tl *t = *state;
	void *srv_on = build_snapshot("diag_services = yes\n");
	void *srv_off = build_snapshot("");
	void *cli3 = build_snapshot("diag_client = 198.18.0.2:19 source 300000 3\n");
	void *cli2 = build_snapshot("diag_client = 198.18.0.2:7 echo 200000 2\n");
	void *cli_none = build_snapshot("diag_services = no\n");
	struct diag_result r;
	uint64_t want;

	/* the fixture started side 1's services by hand: adoption keeps them */
	diag_adopt(t->s[1].w, srv_on);
	assert_true(diag_services_running(t->s[1].w));
	assert_false(diag_services_running(t->s[0].w));

	/* three source runs, one after the other */
	diag_adopt(t->s[0].w, cli3);
	assert_false(diag_services_running(t->s[0].w));
	want = 3;
	assert_true(tl_run(t, runs_done, &want, 120 * TL_S));
	assert_int_equal(CTR_VAL(t, 0, diag_client_ok), 3);
	assert_int_equal(CTR_VAL(t, 1, diag_source_conns), 3);
	assert_int_equal(CTR_VAL(t, 0, diag_client_bytes), 3 * (300000 + strlen("300000\n")));
	/* the same setting again (a reload that changed something else): no new run */
	diag_adopt(t->s[0].w, cli3);
	tl_run_for(t, 2 * TL_S);
	assert_int_equal(CTR_VAL(t, 0, diag_client_runs), 3);
	/* a changed line starts its own series */
	diag_adopt(t->s[0].w, cli2);
	want = 5;
	assert_true(tl_run(t, runs_done, &want, 120 * TL_S));
	assert_int_equal(CTR_VAL(t, 0, diag_client_ok), 5);
	assert_int_equal(CTR_VAL(t, 1, diag_echo_bytes), 2 * 200000);
	/* removed, then put back: it runs again */
	diag_adopt(t->s[0].w, cli_none);
	diag_adopt(t->s[0].w, cli2);
	want = 7;
	assert_true(tl_run(t, runs_done, &want, 120 * TL_S));
	assert_int_equal(CTR_VAL(t, 0, diag_client_ok), 7);
	/* a change while a series runs cancels it (counted as a failed run) */
	diag_adopt(t->s[0].w, cli3);
	tl_run_for(t, 1 * TL_MS);
	diag_adopt(t->s[0].w, cli_none);
	tl_run_for(t, 2 * TL_S);
	assert_int_equal(diag_client_active(t->s[0].w), 0);
	assert_int_equal(CTR_VAL(t, 0, diag_client_fail), 1);
	assert_int_equal(CTR_VAL(t, 0, diag_client_runs), 8);
	/* services off: the listeners go away, a new connection is refused */
	diag_adopt(t->s[1].w, srv_off);
	assert_false(diag_services_running(t->s[1].w));
	r = client_run(t, DIAG_PORT_ECHO, DIAG_CLIENT_ECHO, 100);
	assert_string_equal(r.error, "connection refused");
	free(srv_on);
	free(srv_off);
	free(cli3);
	free(cli2);
	free(cli_none);
	assert_quiet(t);
}

static void test_snapshot_strict(void **state)
{
	void *blob = build_snapshot("diag_services = yes\n"
	                            "diag_client = 198.19.0.2:5001 discard 1099511627776 100000\n");
	struct snap_header *h = blob;
	const struct snap_dataplane *dp;
	struct snap_diag_client *dc;
	char err[256];
	uint32_t n;

	(void)state;
	dp = snap_section(h, SNAP_SEC_DATAPLANE, &n);
	assert_true(dp->flags & SNAP_DP_F_DIAG);
	dc = (struct snap_diag_client *)snap_section(h, SNAP_SEC_DIAG_CLIENT, &n);
	assert_int_equal(n, 1);
	assert_int_equal(dc->addr, IP4(198, 19, 0, 2));
	assert_int_equal(dc->port, 5001);
	assert_int_equal(dc->mode, DIAG_CLIENT_DISCARD);
	assert_int_equal(dc->bytes, 1ull << 40);
	assert_int_equal(dc->count, 100000);
	/* every field out of range is refused by snap_validate */
	for (unsigned i = 0; i < 6; i++) {
		struct snap_diag_client saved = *dc;

		switch (i) {
		case 0:
			dc->mode = 4;
			break;
		case 1:
			dc->bytes = 0;
			break;
		case 2:
			dc->bytes = (1ull << 40) + 1;
			break;
		case 3:
			dc->count = 100001;
			break;
		case 4:
			dc->port = 0;
			break;
		default:
			dc->addr = 0;
			break;
		}
		h->checksum = snap_checksum(blob, h->size);
		assert_int_equal(snap_validate(blob, h->size, err, sizeof(err)), PG_ERROR);
		assert_string_equal(err, "diag client section: field out of range");
		*dc = saved;
	}
	free(blob);
	/* off by default: no flag, an empty client section */
	blob = build_snapshot("");
	dp = snap_section(blob, SNAP_SEC_DATAPLANE, &n);
	assert_false(dp->flags & SNAP_DP_F_DIAG);
	assert_non_null(snap_section(blob, SNAP_SEC_DIAG_CLIENT, &n));
	assert_int_equal(n, 0);
	free(blob);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pattern),
	    cmocka_unit_test(test_snapshot_strict),
	    cmocka_unit_test_setup_teardown(test_echo_16m_loss, diag_setup, diag_teardown),
	    cmocka_unit_test_setup_teardown(test_discard, diag_setup, diag_teardown),
	    cmocka_unit_test_setup_teardown(test_source, diag_setup, diag_teardown),
	    cmocka_unit_test_setup_teardown(test_source_bad_requests, diag_setup, diag_teardown),
	    cmocka_unit_test_setup_teardown(test_source_good_requests, diag_setup, diag_teardown),
	    cmocka_unit_test_setup_teardown(test_echo_flow_control, diag_setup, diag_teardown),
	    cmocka_unit_test_setup_teardown(test_echo_zero_window_resume, diag_setup,
	                                    diag_teardown),
	    cmocka_unit_test_setup_teardown(test_client_failures, diag_setup, diag_teardown),
	    cmocka_unit_test_setup_teardown(test_destroy_midway, diag_setup, diag_teardown),
	    cmocka_unit_test_setup_teardown(test_config_adopt, diag_setup, diag_teardown),
	};
	int rc;

	tl_eal_init();
	rc = cmocka_run_group_tests_name("diag", tests, NULL, NULL);
	tl_eal_fini();
	return rc;
}
