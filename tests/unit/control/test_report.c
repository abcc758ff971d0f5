/*
 * test_report.c - what `posternctl status` and `stats` say, over fabricated
 * shared-memory regions: the readiness verdict the lab waits on (exit 0/4),
 * "dead" for a vanished dataplane, failure messages, JSON escaping,
 * counters with zero rows hidden unless asked for, and the deliveries by
 * TLS outcome per domain (text table, JSON, the bound's note, escaping).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "report.h"
#include "result.h"
#include "tlsstats.h"

#define MS 1000000ull

static struct shm_region *new_region(void)
{
	struct shm_region *rg = aligned_alloc(SHM_CACHE_LINE, sizeof(*rg));

	assert_non_null(rg);
	memset(rg, 0, sizeof(*rg));
	rg->magic = SHM_MAGIC;
	rg->abi = SHM_ABI;
	return rg;
}

/* A ready dataplane (this process) with two workers on generation 3. */
static void make_ready(struct shm_region *rg)
{
	atomic_store(&rg->published_gen, 3);
	atomic_store(&rg->dp.pid, (int32_t)getpid());
	atomic_store(&rg->dp.state, SHM_DP_READY);
	atomic_store(&rg->dp.start_ns, 1000 * MS);
	atomic_store(&rg->dp.ready_ns, 1812 * MS);
	rg->dp.nworkers = 2;
	for (unsigned i = 0; i < 2; i++) {
		atomic_store(&rg->readers[1 + i].active, 1);
		atomic_store(&rg->readers[1 + i].adopted, 3);
		atomic_store(&rg->readers[1 + i].heartbeat_ns, (9000 - i) * MS);
		rg->readers[1 + i].lcore = 1 + i;
	}
}

static const struct ctl_daemon_info info = {
    .pid = 42,
    .start_ns = 0,
    .now_ns = 9005 * MS,
    .config_dir = "/etc/post\"ern",
};

static pid_t dead_pid(void)
{
	pid_t child = fork();
	int status;

	assert_true(child >= 0);
	if (child == 0)
		_exit(0);
	assert_int_equal(waitpid(child, &status, 0), child);
	return child;
}

static void test_status_ready(void **state)
{
	struct shm_region *rg = new_region();
	struct ctl_buf b = {0};

	(void)state;
	make_ready(rg);
	assert_true(ctl_status_report(&b, rg, &info, false));
	assert_non_null(strstr(b.p, "dataplane:   ready, pid "));
	assert_non_null(strstr(b.p, ", start-up 812 ms\n"));
	assert_non_null(strstr(b.p, "generation:  3 published\n"));
	assert_non_null(strstr(b.p, "  1      2     3          6 ms ago\n"));
	assert_non_null(strstr(b.p, "ready:       yes\n"));
	ctl_buf_free(&b);

	assert_true(ctl_status_report(&b, rg, &info, true));
	assert_non_null(strstr(b.p, "\"config_dir\":\"/etc/post\\\"ern\""));
	assert_non_null(strstr(b.p, "\"startup_ms\":812"));
	assert_non_null(strstr(b.p, "{\"id\":0,\"lcore\":1,\"generation\":3,"
	                            "\"heartbeat_age_ms\":5}"));
	assert_non_null(strstr(b.p, "\"ready\":true"));
	ctl_buf_free(&b);
	free(rg);
}

/* Each mutation of a ready region, and the reason status must give. */
static const struct not_ready_case {
	const char *name;
	void (*mutate)(struct shm_region *rg);
	const char *state; /* dataplane state word */
	const char *why;
} not_ready_cases[];

static void nr_absent(struct shm_region *rg)
{
	atomic_store(&rg->dp.state, SHM_DP_ABSENT);
	atomic_store(&rg->dp.pid, 0);
}
static void nr_starting(struct shm_region *rg)
{
	atomic_store(&rg->dp.state, SHM_DP_STARTING);
}
static void nr_behind(struct shm_region *rg)
{
	atomic_store(&rg->readers[2].adopted, 2);
}
static void nr_dead(struct shm_region *rg)
{
	atomic_store(&rg->dp.pid, (int32_t)dead_pid());
}
static void nr_nothing(struct shm_region *rg)
{
	atomic_store(&rg->published_gen, 0);
}
static void nr_failed(struct shm_region *rg)
{
	atomic_store(&rg->dp.state, SHM_DP_FAILED);
	snprintf(rg->dp.message, sizeof(rg->dp.message), "port0: \"net_tap0\"\nprobe failed");
}

static const struct not_ready_case not_ready_cases[] = {
    {"absent", nr_absent, "absent", "dataplane absent"},
    {"starting", nr_starting, "starting", "dataplane starting"},
    {"worker behind", nr_behind, "ready", "worker 1 on generation 2, published 3"},
    {"dead pid", nr_dead, "dead", "dataplane dead"},
    {"nothing published", nr_nothing, "ready", "nothing published"},
    {"failed", nr_failed, "failed", "dataplane failed"},
};

static void test_status_not_ready(void **state)
{
	char want[256];

	(void)state;
	for (size_t i = 0; i < sizeof(not_ready_cases) / sizeof(not_ready_cases[0]); i++) {
		const struct not_ready_case *t = &not_ready_cases[i];
		struct shm_region *rg = new_region();
		struct ctl_buf b = {0};

		make_ready(rg);
		t->mutate(rg);
		if (ctl_status_report(&b, rg, &info, false))
			fail_msg("case \"%s\": reported ready", t->name);
		snprintf(want, sizeof(want), "ready:       no - %s\n", t->why);
		if (strstr(b.p, want) == NULL)
			fail_msg("case \"%s\": no \"%s\" in:\n%s", t->name, want, b.p);
		snprintf(want, sizeof(want), "dataplane:   %s", t->state);
		if (strstr(b.p, want) == NULL)
			fail_msg("case \"%s\": no \"%s\" in:\n%s", t->name, want, b.p);
		assert_string_equal(ctl_dp_state_name(rg), t->state);
		ctl_buf_free(&b);
		assert_false(ctl_status_report(&b, rg, &info, true));
		assert_non_null(strstr(b.p, "\"ready\":false"));
		ctl_buf_free(&b);
		free(rg);
	}
}

static void test_failed_message_escaped(void **state)
{
	struct shm_region *rg = new_region();
	struct ctl_buf b = {0};

	(void)state;
	make_ready(rg);
	nr_failed(rg);
	ctl_status_report(&b, rg, &info, false);
	assert_non_null(strstr(b.p, "dataplane:   failed: port0: \"net_tap0\"\nprobe failed,"));
	ctl_buf_free(&b);
	ctl_status_report(&b, rg, &info, true);
	assert_non_null(strstr(b.p, "\"message\":\"port0: \\\"net_tap0\\\"\\nprobe failed\""));
	ctl_buf_free(&b);
	/* a message without NUL inside its array stays inside it */
	memset(rg->dp.message, 'x', sizeof(rg->dp.message));
	ctl_status_report(&b, rg, &info, true);
	assert_non_null(strstr(b.p, "xxx\","));
	ctl_buf_free(&b);
	free(rg);
}

static void test_stats(void **state)
{
	struct shm_region *rg = new_region();
	struct ctl_buf b = {0};

	(void)state;
	make_ready(rg);
	rg->dp.ncounters = 3;
	strcpy(rg->dp.counter_names[0], "rx_packets");
	strcpy(rg->dp.counter_names[1], "tx_drop_full");
	strcpy(rg->dp.counter_names[2], "arp_request_rx");
	atomic_store(&rg->dp.counters[0].v[0], 600);
	atomic_store(&rg->dp.counters[1].v[0], 634);
	atomic_store(&rg->dp.counters[1].v[2], 5);

	ctl_stats_report(&b, rg, NULL, false, false);
	assert_string_equal(b.p, "counter                 total      worker0      worker1\n"
	                         "rx_packets               1234          600          634\n"
	                         "arp_request_rx              5            0            5\n"
	                         "\n"
	                         "deliveries by TLS outcome per domain: none since posternd"
	                         " started\n");
	ctl_buf_free(&b);

	ctl_stats_report(&b, rg, NULL, true, false);
	assert_non_null(strstr(b.p, "tx_drop_full                0            0            0\n"));
	ctl_buf_free(&b);

	ctl_stats_report(&b, rg, NULL, false, true);
	assert_string_equal(
	    b.p,
	    "{\"workers\":2,\"counters\":{\"rx_packets\":{\"total\":1234,\"per_worker\":[600,634]},"
	    "\"tx_drop_full\":{\"total\":0,\"per_worker\":[0,0]},"
	    "\"arp_request_rx\":{\"total\":5,\"per_worker\":[0,5]}},"
	    "\"tls_outcomes\":{},\"tls_outcomes_skipped\":0}\n");
	ctl_buf_free(&b);

	/* counts from shared memory are bounded before use */
	rg->dp.ncounters = 100000;
	rg->dp.nworkers = 100000;
	ctl_stats_report(&b, rg, NULL, true, false);
	assert_non_null(b.p);
	ctl_buf_free(&b);

	rg->dp.ncounters = 0;
	ctl_stats_report(&b, rg, NULL, false, false);
	assert_string_equal(b.p, "no counters: the dataplane has not published any\n"
	                         "\n"
	                         "deliveries by TLS outcome per domain: none since posternd"
	                         " started\n");
	ctl_buf_free(&b);
	free(rg);
}

/* Deliveries by TLS outcome per domain: the second table of stats, and JSON. */
static void test_stats_tls_outcomes(void **state)
{
	struct shm_region *rg = new_region();
	struct tlsstats t;
	struct ctl_buf b = {0};

	(void)state;
	make_ready(rg);
	rg->dp.ncounters = 1;
	strcpy(rg->dp.counter_names[0], "rx_packets");
	atomic_store(&rg->dp.counters[0].v[0], 7);
	/* two domains at most, then "other" */
	assert_int_equal(tlsstats_init(&t, 2), PG_OK);
	assert_int_equal(tlsstats_add(&t, "Example.COM", 11, "verified", 8), PG_OK);
	assert_int_equal(tlsstats_add(&t, "example.com", 11, "verified", 8), PG_OK);
	assert_int_equal(tlsstats_add(&t, "example.com", 11, "not_sent", 8), PG_OK);
	assert_int_equal(tlsstats_add(&t, "mx.test", 7, "would_defer", 11), PG_OK);
	assert_int_equal(tlsstats_add(&t, "third.example", 13, "plaintext", 9), PG_OK);
	assert_int_equal(tlsstats_add(&t, "fourth.example", 14, "fingerprint", 11), PG_OK);
	assert_int_equal(tlsstats_add(&t, "", 0, "verified", 8), PG_DECLINED);

	ctl_stats_report(&b, rg, &t, false, false);
	assert_string_equal(
	    b.p, "counter             total      worker0      worker1\n"
	         "rx_packets              7            7            0\n"
	         "\n"
	         "deliveries by TLS outcome per domain, since posternd started:\n"
	         "domain          verified  fingerprint    encrypted    plaintext     deferred "
	         " would_defer     not_sent\n"
	         "example.com            2            0            0            0            0 "
	         "           0            1\n"
	         "mx.test                0            0            0            0            0 "
	         "           1            0\n"
	         "other                  0            1            0            1            0 "
	         "           0            0\n"
	         "(table full: domains after the first 2 are counted as \"other\")\n"
	         "not counted: 1 delivery record without a recipient domain or a known"
	         " tls_outcome\n");
	ctl_buf_free(&b);

	ctl_stats_report(&b, rg, &t, false, true);
	assert_string_equal(
	    b.p, "{\"workers\":2,\"counters\":{\"rx_packets\":{\"total\":7,\"per_worker\":[7,0]}},"
	         "\"tls_outcomes\":{"
	         "\"example.com\":{\"verified\":2,\"fingerprint\":0,\"encrypted\":0,"
	         "\"plaintext\":0,\"deferred\":0,\"would_defer\":0,\"not_sent\":1},"
	         "\"mx.test\":{\"verified\":0,\"fingerprint\":0,\"encrypted\":0,"
	         "\"plaintext\":0,\"deferred\":0,\"would_defer\":1,\"not_sent\":0},"
	         "\"other\":{\"verified\":0,\"fingerprint\":1,\"encrypted\":0,"
	         "\"plaintext\":1,\"deferred\":0,\"would_defer\":0,\"not_sent\":0}},"
	         "\"tls_outcomes_skipped\":1}\n");
	ctl_buf_free(&b);
	tlsstats_free(&t);

	/* a domain JSON must escape; the table is not full: no note */
	assert_int_equal(tlsstats_init(&t, TLSSTATS_MAX_DOMAINS), PG_OK);
	assert_int_equal(tlsstats_add(&t, "q\"uo\\te.example", 15, "encrypted", 9), PG_OK);
	ctl_stats_report(&b, rg, &t, false, true);
	assert_non_null(strstr(b.p, "\"tls_outcomes\":{\"q\\\"uo\\\\te.example\":{\"verified\":0,"
	                            "\"fingerprint\":0,\"encrypted\":1,"));
	assert_non_null(strstr(b.p, "\"tls_outcomes_skipped\":0}\n"));
	ctl_buf_free(&b);
	ctl_stats_report(&b, rg, &t, false, false);
	assert_non_null(strstr(b.p, "\nq\"uo\\te.example            0            0            1 "));
	assert_null(strstr(b.p, "table full"));
	assert_null(strstr(b.p, "not counted"));
	ctl_buf_free(&b);
	tlsstats_free(&t);
	free(rg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_status_ready),           cmocka_unit_test(test_status_not_ready),
	    cmocka_unit_test(test_failed_message_escaped), cmocka_unit_test(test_stats),
	    cmocka_unit_test(test_stats_tls_outcomes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
