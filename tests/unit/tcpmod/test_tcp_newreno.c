/*
 * test_tcp_newreno.c - NewReno (RFC 5681, RFC 6582, RFC 3465) through the
 * tcp_cc ops table: IW10, byte-counted slow start, one MSS per window in
 * congestion avoidance, ssthresh from FlightSize with the 2 MSS floor, and
 * RFC 5681 §3.1's rule that repeated timeouts of the same data keep ssthresh.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "net/tcp_cc.h"

static const struct tcp_cc_ops *ops = &tcp_cc_newreno;

static struct tcp_cc cc_new(uint32_t mss)
{
	struct tcp_cc cc;

	memset(&cc, 0xa5, sizeof(cc));
	ops->init(&cc, mss, 0);
	return cc;
}

static void test_init_and_slow_start(void **state)
{
	struct tcp_cc cc = cc_new(1000);

	(void)state;
	assert_int_equal(cc.cwnd, 10000);
	assert_int_equal(cc.ssthresh, UINT32_MAX);
	/* RFC 3465 §2.2: at most 2 SMSS per ACK, however much it covers. */
	ops->on_ack(&cc, 5000, 0, 1);
	assert_int_equal(cc.cwnd, 12000);
	ops->on_ack(&cc, 700, 0, 2);
	assert_int_equal(cc.cwnd, 12700);
}

static void test_congestion_avoidance(void **state)
{
	struct tcp_cc cc = cc_new(1000);

	(void)state;
	cc.ssthresh = 10000;
	/* One MSS per cwnd of acknowledged bytes. */
	for (unsigned i = 0; i < 9; i++)
		ops->on_ack(&cc, 1000, 0, i);
	assert_int_equal(cc.cwnd, 10000);
	ops->on_ack(&cc, 1000, 0, 10);
	assert_int_equal(cc.cwnd, 11000);
}

static void test_congestion_floor(void **state)
{
	static const struct {
		uint32_t flight, ssthresh;
	} cases[] = {
	    {100000, 50000}, {10000, 5000}, {4000, 2000}, {3000, 2000}, {0, 2000},
	};

	(void)state;
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tcp_cc cc = cc_new(1000);

		ops->on_congestion(&cc, cases[i].flight, 0);
		assert_int_equal(cc.ssthresh, cases[i].ssthresh);
		assert_int_equal(cc.cwnd, cases[i].ssthresh);
	}
}

/* RFC 5681 §3.1: the back-off of the same segment does not halve ssthresh again. */
static void test_rto_repeated_keeps_ssthresh(void **state)
{
	struct tcp_cc cc = cc_new(1000);

	(void)state;
	cc.cwnd = 40000;
	ops->on_rto(&cc, 40000, 1);
	assert_int_equal(cc.ssthresh, 20000);
	assert_int_equal(cc.cwnd, 1000);
	/* Second and third timeout, nothing new acknowledged: flight now 1 MSS. */
	ops->on_rto(&cc, 1000, 2);
	ops->on_rto(&cc, 1000, 3);
	assert_int_equal(cc.ssthresh, 20000);
	assert_int_equal(cc.cwnd, 1000);
	/* New data acknowledged: a later timeout is a new loss and halves again. */
	ops->on_ack(&cc, 1000, 0, 4);
	assert_int_equal(cc.cwnd, 2000);
	ops->on_rto(&cc, 8000, 5);
	assert_int_equal(cc.ssthresh, 4000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init_and_slow_start),
	    cmocka_unit_test(test_congestion_avoidance),
	    cmocka_unit_test(test_congestion_floor),
	    cmocka_unit_test(test_rto_repeated_keeps_ssthresh),
	};

	return cmocka_run_group_tests_name("tcp_newreno", tests, NULL, NULL);
}
