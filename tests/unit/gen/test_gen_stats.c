/*
 * test_gen_stats.c - postern-gen's latency histogram (tools/gen/gen_stats.c):
 * every value lands in a bucket that contains it, buckets are ordered and
 * within 1/64 of their values, quantiles of known distributions come out
 * within that error, and the JSON report parses as the counts it was given.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"

static void test_buckets_contain_values(void **state)
{
	uint64_t prev_hi = 0;

	(void)state;
	for (unsigned i = 0; i < GEN_HIST_BUCKETS; i++) {
		uint64_t lo, hi;

		gen_hist_range(i, &lo, &hi);
		assert_true(lo <= hi);
		if (i > 0)
			assert_int_equal(lo, prev_hi + 1); /* contiguous, no gaps */
		prev_hi = hi;
		if (lo >= 64)
			assert_true((double)(hi - lo + 1) / (double)lo <= 1.0 / 64 + 1e-12);
	}
	for (uint64_t v = 0; v < 100000; v += 1 + v / 7) {
		uint64_t lo, hi;
		unsigned idx = gen_hist_index(v);

		gen_hist_range(idx, &lo, &hi);
		assert_true(lo <= v && v <= hi);
	}
	for (unsigned e = 10; e < GEN_HIST_MAX_EXP; e++) {
		uint64_t v = (1ull << e) + 12345, lo, hi;

		gen_hist_range(gen_hist_index(v), &lo, &hi);
		assert_true(lo <= v && v <= hi);
	}
	/* beyond the range: the last bucket, never out of bounds */
	assert_int_equal(gen_hist_index(UINT64_MAX), GEN_HIST_BUCKETS - 1);
}

static struct gen_hist h;

static void test_quantiles(void **state)
{
	(void)state;
	memset(&h, 0, sizeof(h));
	assert_int_equal(gen_hist_quantile(&h, 0.5), 0);
	/* 1..100000 microseconds, uniform: p50 = 50 ms, p99 = 99 ms, p99.9 = 99.9 ms */
	for (uint64_t us = 1; us <= 100000; us++)
		gen_hist_add(&h, us * 1000);
	assert_int_equal(h.count, 100000);
	assert_int_equal(h.min, 1000);
	assert_int_equal(h.max, 100000000);
	assert_true(llabs((long long)gen_hist_quantile(&h, 0.5) - 50000000) <= 50000000 / 64);
	assert_true(llabs((long long)gen_hist_quantile(&h, 0.99) - 99000000) <= 99000000 / 64);
	assert_true(llabs((long long)gen_hist_quantile(&h, 0.999) - 99900000) <= 99900000 / 64);
	assert_int_equal(gen_hist_quantile(&h, 1.0), 100000000);
	assert_int_equal(gen_hist_quantile(&h, 0.0), 1000);

	/* a known delay with a slow tail: 990 at 25 ms, 10 at 400 ms */
	memset(&h, 0, sizeof(h));
	for (int i = 0; i < 990; i++)
		gen_hist_add(&h, 25000000);
	for (int i = 0; i < 10; i++)
		gen_hist_add(&h, 400000000);
	assert_true(llabs((long long)gen_hist_quantile(&h, 0.5) - 25000000) <= 25000000 / 64);
	assert_true(llabs((long long)gen_hist_quantile(&h, 0.99) - 25000000) <= 25000000 / 64);
	assert_true(llabs((long long)gen_hist_quantile(&h, 0.999) - 400000000) <= 400000000 / 64);
}

static struct gen g;

static void test_json_report(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	(void)state;
	memset(&g, 0, sizeof(g));
	g.o.mode = GEN_CLIENT;
	g.n.msgs_started = 7;
	g.n.msgs_accepted = 5;
	g.n.err[GEN_E_TLS] = 2;
	gen_hist_add(&g.lat[GEN_L_EOD], 2500000);
	assert_int_equal(gen_report_json(&g, f, 2.0), 0);
	fclose(f);
	assert_non_null(strstr(buf, "\"msgs_started\": 7"));
	assert_non_null(strstr(buf, "\"messages_per_s\": 2.500"));
	assert_non_null(strstr(buf, "\"tls_handshake\": 2"));
	assert_non_null(strstr(buf, "\"errors_total\": 2"));
	assert_non_null(strstr(buf, "\"end_of_data\": {\"count\": 1"));
	assert_null(strstr(buf, "\"connect\": {")); /* phases never seen are left out */
	free(buf);
}

static void test_rand_share(void **state)
{
	unsigned below = 0;

	(void)state;
	memset(&g, 0, sizeof(g));
	g.rng = 42;
	for (int i = 0; i < 100000; i++) {
		double x = gen_rand01(&g);

		assert_true(x >= 0 && x < 1);
		below += x < 0.1;
	}
	assert_in_range(below, 9500, 10500); /* 10 % +- 5 sigma */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_buckets_contain_values),
	    cmocka_unit_test(test_quantiles),
	    cmocka_unit_test(test_json_report),
	    cmocka_unit_test(test_rand_share),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
