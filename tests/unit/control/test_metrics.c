/*
 * test_metrics.c - posternd's Prometheus endpoint: the exact exposition
 * text for a small region (HELP/TYPE lines, escaping, a counter name the
 * dataplane got wrong left out, the generic HELP), the deliveries by
 * domain and TLS outcome (label values escaped), and the status every
 * kind of request gets from the HTTP request parser, garbage included.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "metrics.h"
#include "result.h"

#define S 1000000000ull
#define MS 1000000ull

static char shm_name[64];

static void test_exposition(void **state)
{
	struct shm_map m;
	struct shm_region *rg;
	struct ctl_buf b = {0};
	char err[512];
	const uint64_t now = 5000 * S;
	static const char want[] =
	    "# HELP postern_dataplane_up 1 when a live dataplane is attached and ready, else 0.\n"
	    "# TYPE postern_dataplane_up gauge\n"
	    "postern_dataplane_up 1\n"
	    "# HELP postern_published_generation Generation of the configuration snapshot posternd"
	    " published last.\n"
	    "# TYPE postern_published_generation gauge\n"
	    "postern_published_generation 7\n"
	    "# HELP postern_worker_generation Configuration generation each dataplane worker "
	    "runs.\n"
	    "# TYPE postern_worker_generation gauge\n"
	    "postern_worker_generation{worker=\"0\"} 7\n"
	    "postern_worker_generation{worker=\"1\"} 6\n"
	    "# HELP postern_worker_heartbeat_age_seconds Seconds since each dataplane worker last"
	    " published (every 1 ms when alive).\n"
	    "# TYPE postern_worker_heartbeat_age_seconds gauge\n"
	    "postern_worker_heartbeat_age_seconds{worker=\"0\"} 0.002\n"
	    "postern_worker_heartbeat_age_seconds{worker=\"1\"} 12.345\n"
	    "# HELP postern_events_dropped_total Dataplane events dropped because the ring to"
	    " posternd was full.\n"
	    "# TYPE postern_events_dropped_total counter\n"
	    "postern_events_dropped_total{source=\"dataplane\"} 0\n"
	    "postern_events_dropped_total{source=\"worker 0\"} 0\n"
	    "postern_events_dropped_total{source=\"worker 1\"} 3\n"
	    "# HELP postern_rx_packets_total frames \\\\ received\\nfrom the NIC\n"
	    "# TYPE postern_rx_packets_total counter\n"
	    "postern_rx_packets_total{worker=\"0\"} 10\n"
	    "postern_rx_packets_total{worker=\"1\"} 18446744073709551615\n"
	    "# HELP postern_loops_total Dataplane counter loops.\n"
	    "# TYPE postern_loops_total counter\n"
	    "postern_loops_total{worker=\"0\"} 0\n"
	    "postern_loops_total{worker=\"1\"} 42\n";

	(void)state;
	assert_int_equal(shm_open_control(shm_name, 64 << 10, &m, err, sizeof(err)), PG_OK);
	rg = m.region;
	atomic_store(&rg->published_gen, 7);
	atomic_store(&rg->dp.pid, (int32_t)getpid());
	atomic_store(&rg->dp.state, SHM_DP_READY);
	rg->dp.nworkers = 2;
	rg->dp.ncounters = 3;
	snprintf(rg->dp.counter_names[0], SHM_COUNTER_NAME, "rx_packets");
	snprintf(rg->dp.counter_docs[0], SHM_COUNTER_DOC, "frames \\ received\nfrom the NIC");
	snprintf(rg->dp.counter_names[1], SHM_COUNTER_NAME, "bad name{}");
	snprintf(rg->dp.counter_names[2], SHM_COUNTER_NAME, "loops");
	atomic_store(&rg->dp.counters[0].v[0], 10);
	atomic_store(&rg->dp.counters[1].v[0], UINT64_MAX);
	atomic_store(&rg->dp.counters[1].v[1], 5);
	atomic_store(&rg->dp.counters[1].v[2], 42);
	atomic_store(&rg->readers[1].adopted, 7);
	atomic_store(&rg->readers[2].adopted, 6);
	atomic_store(&rg->readers[1].heartbeat_ns, now - 2 * MS);
	atomic_store(&rg->readers[2].heartbeat_ns, now - 12345 * MS);
	atomic_store(&shm_evring(rg, 2)->dropped, 3);

	metrics_render(&b, rg, NULL, now);
	assert_non_null(b.p);
	assert_string_equal(b.p, want);
	ctl_buf_free(&b);

	/* every worker on the published generation: the adoption time gauge */
	atomic_store(&rg->readers[2].adopted, 7);
	atomic_store(&rg->published_ns, 4000 * S);
	atomic_store(&rg->readers[1].adopted_ns, 4000 * S + 120 * 1000);
	atomic_store(&rg->readers[2].adopted_ns, 4000 * S + 1500 * 1000);
	metrics_render(&b, rg, NULL, now);
	assert_non_null(strstr(b.p, "postern_worker_generation{worker=\"1\"} 7\n"
	                            "# HELP postern_snapshot_adoption_seconds Seconds from the"
	                            " publication of the current generation to its adoption by the"
	                            " last worker.\n"
	                            "# TYPE postern_snapshot_adoption_seconds gauge\n"
	                            "postern_snapshot_adoption_seconds 0.001500000\n"
	                            "# HELP postern_worker_heartbeat_age_seconds"));
	ctl_buf_free(&b);

	/* no dataplane: the two process gauges only */
	atomic_store(&rg->dp.state, SHM_DP_ABSENT);
	rg->dp.nworkers = 0;
	metrics_render(&b, rg, NULL, now);
	assert_string_equal(b.p,
	                    "# HELP postern_dataplane_up 1 when a live dataplane is attached and"
	                    " ready, else 0.\n"
	                    "# TYPE postern_dataplane_up gauge\n"
	                    "postern_dataplane_up 0\n"
	                    "# HELP postern_published_generation Generation of the configuration"
	                    " snapshot posternd published last.\n"
	                    "# TYPE postern_published_generation gauge\n"
	                    "postern_published_generation 7\n");
	ctl_buf_free(&b);
	shm_detach(&m);
	shm_unlink_name(shm_name);
}

/*
 * Deliveries by domain and TLS outcome: after the dataplane's families,
 * every outcome of every domain, label values escaped (backslash, quote,
 * line feed), and the skipped count.
 */
static void test_tls_outcomes(void **state)
{
	struct shm_map m;
	struct shm_region *rg;
	struct ctl_buf b = {0};
	struct tlsstats t;
	char err[512];
	static const char gauges[] =
	    "# HELP postern_dataplane_up 1 when a live dataplane is attached and ready, else 0.\n"
	    "# TYPE postern_dataplane_up gauge\n"
	    "postern_dataplane_up 0\n"
	    "# HELP postern_published_generation Generation of the configuration snapshot posternd"
	    " published last.\n"
	    "# TYPE postern_published_generation gauge\n"
	    "postern_published_generation 0\n";
	static const char family[] =
	    "# HELP postern_delivery_tls_total Deliveries (one per recipient per attempt) by"
	    " recipient domain and TLS outcome, counted by posternd since it started. At most 1000"
	    " domains; later ones are counted under domain=\"other\".\n"
	    "# TYPE postern_delivery_tls_total counter\n";
	static const char skipped[] =
	    "# HELP postern_delivery_tls_skipped_total Delivery records posternd could not count by"
	    " domain and TLS outcome (no recipient domain or no known tls_outcome).\n"
	    "# TYPE postern_delivery_tls_skipped_total counter\n";
	struct ctl_buf want = {0};

	(void)state;
	assert_int_equal(shm_open_control(shm_name, 64 << 10, &m, err, sizeof(err)), PG_OK);
	rg = m.region;
	assert_int_equal(tlsstats_init(&t, TLSSTATS_MAX_DOMAINS), PG_OK);

	/* nothing counted yet: the families, no domain series */
	metrics_render(&b, rg, &t, 0);
	ctl_buf_printf(&want, "%s%s%spostern_delivery_tls_skipped_total 0\n", gauges, family,
	               skipped);
	assert_string_equal(b.p, want.p);
	ctl_buf_free(&b);
	ctl_buf_free(&want);

	assert_int_equal(tlsstats_add(&t, "Example.com", 11, "verified", 8), PG_OK);
	assert_int_equal(tlsstats_add(&t, "example.com", 11, "verified", 8), PG_OK);
	assert_int_equal(tlsstats_add(&t, "example.com", 11, "not_sent", 8), PG_OK);
	assert_int_equal(tlsstats_add(&t, "q\"uo\\te.example", 15, "deferred", 8), PG_OK);
	assert_int_equal(tlsstats_add(&t, "example.org", 11, "tls13", 5), PG_DECLINED);
	metrics_render(&b, rg, &t, 0);
	ctl_buf_printf(&want, "%s%s", gauges, family);
	ctl_buf_printf(
	    &want,
	    "postern_delivery_tls_total{domain=\"example.com\",outcome=\"verified\"} 2\n"
	    "postern_delivery_tls_total{domain=\"example.com\",outcome=\"fingerprint\"} 0\n"
	    "postern_delivery_tls_total{domain=\"example.com\",outcome=\"encrypted\"} 0\n"
	    "postern_delivery_tls_total{domain=\"example.com\",outcome=\"plaintext\"} 0\n"
	    "postern_delivery_tls_total{domain=\"example.com\",outcome=\"deferred\"} 0\n"
	    "postern_delivery_tls_total{domain=\"example.com\",outcome=\"would_defer\"} 0\n"
	    "postern_delivery_tls_total{domain=\"example.com\",outcome=\"not_sent\"} 1\n"
	    "postern_delivery_tls_total{domain=\"q\\\"uo\\\\te.example\","
	    "outcome=\"verified\"} 0\n"
	    "postern_delivery_tls_total{domain=\"q\\\"uo\\\\te.example\","
	    "outcome=\"fingerprint\"} 0\n"
	    "postern_delivery_tls_total{domain=\"q\\\"uo\\\\te.example\","
	    "outcome=\"encrypted\"} 0\n"
	    "postern_delivery_tls_total{domain=\"q\\\"uo\\\\te.example\","
	    "outcome=\"plaintext\"} 0\n"
	    "postern_delivery_tls_total{domain=\"q\\\"uo\\\\te.example\","
	    "outcome=\"deferred\"} 1\n"
	    "postern_delivery_tls_total{domain=\"q\\\"uo\\\\te.example\","
	    "outcome=\"would_defer\"} 0\n"
	    "postern_delivery_tls_total{domain=\"q\\\"uo\\\\te.example\","
	    "outcome=\"not_sent\"} 0\n"
	    "%spostern_delivery_tls_skipped_total 1\n",
	    skipped);
	assert_string_equal(b.p, want.p);
	ctl_buf_free(&b);
	ctl_buf_free(&want);

	/*
	 * A line feed cannot get into the table (tlsstats_add makes it '?'),
	 * but the label writer escapes it all the same.
	 */
	snprintf(t.rows[0].domain, sizeof(t.rows[0].domain), "line\nfeed");
	metrics_render(&b, rg, &t, 0);
	assert_non_null(strstr(
	    b.p, "\npostern_delivery_tls_total{domain=\"line\\nfeed\",outcome=\"not_sent\"} 1\n"));
	ctl_buf_free(&b);
	tlsstats_free(&t);
	shm_detach(&m);
	shm_unlink_name(shm_name);
}

static const struct request_case {
	const char *name;
	const char *req;
	size_t len; /* 0: strlen */
	bool eof;
	int want;
} request_cases[] = {
    {"plain 1.0", "GET /metrics HTTP/1.0\r\n\r\n", 0, false, 200},
    {"1.1 with headers", "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n", 0, false, 200},
    {"query ignored", "GET /metrics?name[]=up HTTP/1.1\r\n\r\n", 0, false, 200},
    {"bare LF", "GET /metrics HTTP/1.0\n\n", 0, false, 200},
    {"head unfinished", "GET /metrics HTTP/1.1\r\nHost: x\r\n", 0, false, 0},
    {"request line only, then EOF", "GET /metrics HTTP/1.0\r\n", 0, true, 200},
    {"half a request line", "GET /metr", 0, false, 0},
    {"half a request line, EOF", "GET /metr", 0, true, 400},
    {"nothing, EOF", "", 0, true, 400},
    {"root", "GET / HTTP/1.0\r\n\r\n", 0, false, 404},
    {"longer path", "GET /metricsx HTTP/1.0\r\n\r\n", 0, false, 404},
    {"sub path", "GET /metrics/ HTTP/1.0\r\n\r\n", 0, false, 404},
    {"POST", "POST /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n", 0, false, 405},
    {"HEAD", "HEAD /metrics HTTP/1.1\r\n\r\n", 0, false, 405},
    {"POST elsewhere", "POST /x HTTP/1.0\r\n\r\n", 0, false, 404},
    {"garbage", "hello there\r\n\r\n", 0, false, 400},
    {"HTTP/0.9", "GET /metrics\r\n\r\n", 0, false, 400},
    {"two spaces", "GET  /metrics HTTP/1.0\r\n\r\n", 0, false, 400},
    {"lowercase method", "get /metrics HTTP/1.0\r\n\r\n", 0, false, 400},
    {"relative target", "GET metrics HTTP/1.0\r\n\r\n", 0, false, 400},
    {"HTTP/2", "GET /metrics HTTP/2.0\r\n\r\n", 0, false, 400},
    {"trailing word", "GET /metrics HTTP/1.0 x\r\n\r\n", 0, false, 400},
    {"control char", "GET /met\x01rics HTTP/1.0\r\n\r\n", 0, false, 400},
    {"tab", "GET\t/metrics HTTP/1.0\r\n\r\n", 0, false, 400},
    {"NUL", "GET /metrics HTTP/1.0\r\n\0\r\n\r\n", 27, false, 400},
    {"TLS hello, at once", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11, false, 400},
    {"lowercase start, at once", "x", 0, false, 400},
};

static void test_requests(void **state)
{
	char big[METRICS_REQUEST_MAX + 64];

	(void)state;
	for (size_t i = 0; i < sizeof(request_cases) / sizeof(request_cases[0]); i++) {
		const struct request_case *t = &request_cases[i];
		size_t len = t->len != 0 ? t->len : strlen(t->req);
		int got = metrics_request_status(t->req, len, t->eof);

		if (got != t->want)
			fail_msg("case \"%s\": want %d, got %d", t->name, t->want, got);
	}
	/* no line end within the bound: 400; a head that never ends: 431 */
	memset(big, 'A', sizeof(big));
	assert_int_equal(metrics_request_status(big, METRICS_REQUEST_MAX, false), 400);
	memcpy(big, "GET /metrics HTTP/1.0\r\nX-Pad: ", 30);
	assert_int_equal(metrics_request_status(big, METRICS_REQUEST_MAX, false), 431);
}

static void test_responses(void **state)
{
	struct ctl_buf out = {0}, body = {0};

	(void)state;
	metrics_response(&out, 404, &body);
	assert_string_equal(out.p, "HTTP/1.0 404 Not Found\r\n"
	                           "Content-Type: text/plain; charset=utf-8\r\n"
	                           "Content-Length: 44\r\n"
	                           "Connection: close\r\n\r\n"
	                           "404 Not Found: only /metrics is served here\n");
	ctl_buf_free(&out);
	metrics_response(&out, 405, &body);
	assert_non_null(strstr(out.p, "\r\nAllow: GET\r\n"));
	ctl_buf_free(&out);
	ctl_buf_printf(&body, "postern_dataplane_up 0\n");
	metrics_response(&out, 200, &body);
	assert_string_equal(out.p, "HTTP/1.0 200 OK\r\n"
	                           "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
	                           "Content-Length: 23\r\n"
	                           "Connection: close\r\n\r\n"
	                           "postern_dataplane_up 0\n");
	ctl_buf_free(&out);
	ctl_buf_free(&body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exposition),
	    cmocka_unit_test(test_tls_outcomes),
	    cmocka_unit_test(test_requests),
	    cmocka_unit_test(test_responses),
	};

	snprintf(shm_name, sizeof(shm_name), "pg-test-metrics-%d", (int)getpid());
	return cmocka_run_group_tests(tests, NULL, NULL);
}
