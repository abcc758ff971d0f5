/*
 * test_tcp_cubic.c - CUBIC (RFC 9438) through the tcp_cc ops table on a
 * virtual clock: slow start with byte counting, the reduction and fast
 * convergence, K and the concave-then-convex curve around W_max, the
 * Reno-friendly region on a small BDP, timeouts, and the 2 MSS floor.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "net/tcp_cubic.h"

#define MS 1000000ULL
#define SEC 1000000000ULL

static const struct tcp_cc_ops *ops = &tcp_cc_cubic;

static double absd(double x)
{
	return x < 0 ? -x : x;
}

static struct tcp_cc cc_new(uint32_t mss)
{
	struct tcp_cc cc;

	memset(&cc, 0xa5, sizeof(cc)); /* init must not rely on a zeroed struct */
	ops->init(&cc, mss, 0);
	return cc;
}

/*
 * One round trip of a cwnd-limited sender: the whole window is ACKed one
 * segment at a time, the ACKs spread evenly over the RTT.
 */
static void run_rtt(struct tcp_cc *cc, uint64_t *now, uint64_t rtt)
{
	uint32_t segs = cc->cwnd / cc->mss;
	uint64_t step = rtt / (segs ? segs : 1);

	for (uint32_t i = 0; i < segs; i++) {
		*now += step;
		ops->on_ack(cc, cc->mss, rtt, *now);
	}
	*now += rtt - step * segs;
}

/* A window of w bytes in congestion avoidance, then a congestion event at t. */
static struct tcp_cc cc_after_loss(uint32_t mss, uint32_t w, uint64_t t)
{
	struct tcp_cc cc = cc_new(mss);

	cc.cwnd = w;
	cc.ssthresh = w / 2;
	ops->on_congestion(&cc, w, t);
	return cc;
}

static void test_init(void **state)
{
	struct tcp_cc cc;

	(void)state;
	assert_string_equal(ops->name, "cubic");
	/* RFC 6928: min(10 MSS, max(2 MSS, 14600)). */
	cc = cc_new(1460);
	assert_int_equal(cc.cwnd, 14600);
	assert_int_equal(cc.mss, 1460);
	assert_int_equal(cc.ssthresh, UINT32_MAX);
	cc = cc_new(536);
	assert_int_equal(cc.cwnd, 5360);
	cc = cc_new(8960);
	assert_int_equal(cc.cwnd, 17920);
}

/* RFC 5681 §3.1 with RFC 3465 byte counting, L = 2 MSS per ACK. */
static void test_slow_start_byte_counting(void **state)
{
	struct tcp_cc cc = cc_new(1000);
	uint64_t now = 0;
	struct tcp_cubic_info info;

	(void)state;
	assert_int_equal(cc.cwnd, 10000);
	ops->on_ack(&cc, 1000, 50 * MS, now);
	assert_int_equal(cc.cwnd, 11000);
	ops->on_ack(&cc, 300, 50 * MS, now); /* a partial segment counts its bytes */
	assert_int_equal(cc.cwnd, 11300);
	ops->on_ack(&cc, 5000, 50 * MS, now); /* a stretch ACK: at most 2 MSS */
	assert_int_equal(cc.cwnd, 13300);
	ops->on_ack(&cc, 0, 50 * MS, now); /* a duplicate ACK: nothing */
	assert_int_equal(cc.cwnd, 13300);

	/* A cwnd-limited round trip doubles the window. */
	cc.cwnd = 10000;
	run_rtt(&cc, &now, 50 * MS);
	assert_int_equal(cc.cwnd, 20000);

	/* Growth stops at ssthresh; the rest of the ACK is congestion avoidance. */
	cc.cwnd = 29500;
	cc.ssthresh = 30000;
	ops->on_ack(&cc, 2000, 50 * MS, now);
	assert_true(cc.cwnd >= 30000 && cc.cwnd < 30000 + 1000);
	tcp_cubic_get_info(&cc, &info);
	assert_true(info.in_epoch);
	/* Left slow start with no congestion event: W_max = cwnd_epoch, K = 0 (§4.10). */
	assert_true(info.w_max == 30000.0);
	assert_true(info.k == 0.0);
	assert_true(info.epoch_ns == now);
}

/* §4.6 and §4.7: cwnd = ssthresh = 0.7 FlightSize; W_max with fast convergence. */
static void test_congestion_reduction_and_fast_convergence(void **state)
{
	struct tcp_cc cc = cc_after_loss(1000, 100000, 0);
	struct tcp_cubic_info info;

	(void)state;
	assert_int_equal(cc.cwnd, 70000);
	assert_int_equal(cc.ssthresh, 70000);
	tcp_cubic_get_info(&cc, &info);
	assert_true(info.w_max == 100000.0);
	assert_true(info.cwnd_prior == 100000.0);
	assert_false(info.in_epoch);

	/* Lost again below W_max: W_max = cwnd (1 + beta) / 2, making room. */
	cc.cwnd = 90000;
	ops->on_congestion(&cc, 90000, 10 * SEC);
	tcp_cubic_get_info(&cc, &info);
	assert_true(absd(info.w_max - 76500.0) < 1e-6);
	assert_int_equal(cc.cwnd, 63000);

	/* Lost above W_max: W_max = cwnd. */
	cc.cwnd = 80000;
	ops->on_congestion(&cc, 80000, 20 * SEC);
	tcp_cubic_get_info(&cc, &info);
	assert_true(info.w_max == 80000.0);
	assert_int_equal(cc.cwnd, 56000);

	/* ssthresh comes from FlightSize, not cwnd (an app-limited sender). */
	cc.cwnd = 100000;
	ops->on_congestion(&cc, 50000, 30 * SEC);
	assert_int_equal(cc.ssthresh, 35000);
	assert_int_equal(cc.cwnd, 35000);
}

/* §4.6: never below 2 MSS after a congestion event; only a timeout goes to 1. */
static void test_floor_two_mss(void **state)
{
	struct tcp_cc cc = cc_new(1460);
	unsigned seed = 31337;
	uint64_t now = 0;

	(void)state;
	cc.cwnd = 2 * 1460;
	ops->on_congestion(&cc, 2 * 1460, now);
	assert_int_equal(cc.cwnd, 2 * 1460);
	assert_int_equal(cc.ssthresh, 2 * 1460);
	cc.cwnd = 3 * 1460;
	ops->on_congestion(&cc, 0, now);
	assert_int_equal(cc.cwnd, 2 * 1460);

	/* Random event sequences keep every invariant. */
	for (int i = 0; i < 200000; i++) {
		int what = rand_r(&seed) % 100;
		uint32_t before = cc.cwnd;

		now += (uint64_t)(rand_r(&seed) % 20) * MS;
		if (what < 90) {
			ops->on_ack(&cc, (uint32_t)(rand_r(&seed) % 5000),
			            (uint64_t)(1 + rand_r(&seed) % 300) * MS, now);
			assert_true(cc.cwnd >= before);
		} else if (what < 98) {
			ops->on_congestion(&cc, (uint32_t)(rand_r(&seed) % (2 * cc.cwnd + 1)), now);
			assert_true(cc.cwnd >= 2 * 1460);
		} else {
			ops->on_rto(&cc, (uint32_t)(rand_r(&seed) % (2 * cc.cwnd + 1)), now);
			assert_int_equal(cc.cwnd, 1460);
		}
		assert_true(cc.cwnd >= 1460 && cc.cwnd <= TCP_CUBIC_CWND_MAX);
		assert_true(cc.ssthresh >= 2 * 1460);
	}
}

/*
 * Figures 1 and 2 on a large BDP (1000 segments, 100 ms RTT): K =
 * cbrt(W_max (1 - beta) / C) in segments; the window climbs quickly,
 * flattens as it nears W_max at t = K (concave), then accelerates past it
 * (convex), tracking W_cubic. Reno (W_est) stays behind all the while.
 */
static void test_cubic_curve_around_w_max(void **state)
{
	const uint32_t mss = 1000;
	const uint64_t rtt = 100 * MS;
	const double w_max = 1000000.0;
	const double k_want = 9.085602964160698; /* cbrt(1000 * 0.3 / 0.4) = cbrt(750) */
	struct tcp_cc cc = cc_after_loss(mss, (uint32_t)w_max, 0);
	struct tcp_cubic_info info;
	uint64_t now = 0;
	double w_at[5] = {0}; /* cwnd at t = 0, K/2, K, 1.5K, 2K */
	int mark = 0;

	(void)state;
	ops->on_ack(&cc, mss, rtt, now); /* first ACK in avoidance starts the epoch */
	tcp_cubic_get_info(&cc, &info);
	assert_true(info.in_epoch);
	assert_true(info.epoch_ns == 0);
	assert_true(absd(info.k - k_want) < 1e-9);
	assert_true(absd(tcp_cubic_w_cubic(&cc, 0.0) - 700000.0) < 1e-6);
	assert_true(absd(tcp_cubic_w_cubic(&cc, k_want) - w_max) < 1e-6);
	w_at[mark++] = cc.cwnd;

	while (mark < 5) {
		double t, wc;

		run_rtt(&cc, &now, rtt);
		t = (double)now / SEC;
		wc = tcp_cubic_w_cubic(&cc, t);
		/* cwnd aims one RTT ahead of the curve and gets most of the way. */
		assert_true(cc.cwnd >= wc - 2.0 * mss);
		assert_true(cc.cwnd <= tcp_cubic_w_cubic(&cc, t + 0.1) + 2.0 * mss);
		if (t >= k_want * 0.5 * mark) {
			w_at[mark++] = cc.cwnd;
			print_message("# t=%.2fs cwnd=%u W_cubic=%.0f W_est=%.0f\n", t, cc.cwnd, wc,
			              (tcp_cubic_get_info(&cc, &info), info.w_est));
		}
		/* Until t = K the window stays below W_max. */
		if (t < k_want)
			assert_true(cc.cwnd < w_max);
		tcp_cubic_get_info(&cc, &info);
		assert_true(info.w_est < cc.cwnd);
	}
	/* At t = K, back at W_max (within 2%). */
	assert_true(absd(w_at[2] - w_max) < 0.02 * w_max);
	/* Concave: the first half of the climb gains more than the second. */
	assert_true(w_at[1] - w_at[0] > 2 * (w_at[2] - w_at[1]));
	/* Convex: the second half past K gains more than the first. */
	assert_true(w_at[4] - w_at[3] > 2 * (w_at[3] - w_at[2]));
}

/*
 * §4.3 on a small BDP (1 ms RTT): W_cubic barely moves in 0.2 s (K is about
 * 2 s) while Reno grows a segment per RTT, so cwnd follows W_est: alpha_cubic
 * (0.53) per RTT until it reaches cwnd_prior, then 1 per RTT.
 */
static void test_reno_friendly_small_bdp(void **state)
{
	const uint32_t mss = 1000;
	const uint64_t rtt = 1 * MS;
	struct tcp_cc cc = cc_after_loss(mss, 10 * mss, 0);
	struct tcp_cubic_info info;
	uint64_t now = 0;
	double t;

	(void)state;
	assert_int_equal(cc.cwnd, 7000);
	for (int r = 0; r < 4; r++)
		run_rtt(&cc, &now, rtt);
	/* 7 + 4 * 0.529 segments, give or take a segment of rounding in the rounds. */
	assert_true(absd((double)cc.cwnd - 9120.0) < 600.0);
	for (int r = 4; r < 200; r++)
		run_rtt(&cc, &now, rtt);
	t = (double)now / SEC;
	tcp_cubic_get_info(&cc, &info);
	print_message("# t=%.3fs cwnd=%u W_est=%.0f W_cubic=%.0f K=%.3f\n", t, cc.cwnd, info.w_est,
	              tcp_cubic_w_cubic(&cc, t), info.k);
	assert_true(absd(info.k - 1.957433820584) < 1e-6); /* cbrt(7.5) */
	assert_true(tcp_cubic_w_cubic(&cc, t) < 10000.0);
	/* About 10 + 194 segments; cwnd is W_est. */
	assert_true(cc.cwnd > 180000 && cc.cwnd < 210000);
	assert_true(absd((double)cc.cwnd - info.w_est) <= mss);
}

/* §4.8: ssthresh as in §4.6, cwnd = 1 MSS; afterwards K = 0, W_max = cwnd_epoch. */
static void test_rto(void **state)
{
	const uint32_t mss = 1000;
	struct tcp_cc cc = cc_new(mss);
	struct tcp_cubic_info info;
	uint64_t now = 10 * SEC;

	(void)state;
	cc.cwnd = 50000;
	cc.ssthresh = 30000;
	ops->on_rto(&cc, 40000, now);
	assert_int_equal(cc.cwnd, 1000);
	assert_int_equal(cc.ssthresh, 28000);
	/* The same segment times out again (no ACK in between): ssthresh held. */
	ops->on_rto(&cc, 1000, now + 1 * SEC);
	assert_int_equal(cc.cwnd, 1000);
	assert_int_equal(cc.ssthresh, 28000);

	/* Slow start back to ssthresh, then avoidance with K = 0 from there. */
	while (cc.cwnd < cc.ssthresh)
		run_rtt(&cc, &now, 50 * MS);
	tcp_cubic_get_info(&cc, &info);
	assert_true(info.in_epoch);
	assert_true(info.k == 0.0);
	assert_true(info.w_max == 28000.0);
	assert_true(info.w_est >= 28000.0);
	/* K = 0 means convex from the start: growth accelerates. */
	{
		uint32_t w0 = cc.cwnd, w1, w2;

		for (int r = 0; r < 20; r++)
			run_rtt(&cc, &now, 50 * MS);
		w1 = cc.cwnd;
		for (int r = 0; r < 20; r++)
			run_rtt(&cc, &now, 50 * MS);
		w2 = cc.cwnd;
		assert_true(w2 - w1 > w1 - w0);
	}

	/* New data ACKed, then a new timeout: ssthresh recomputed, floor 2 MSS. */
	ops->on_rto(&cc, 1500, now);
	assert_int_equal(cc.cwnd, 1000);
	assert_int_equal(cc.ssthresh, 2000);
}

/* rtt 0 means "no new sample": the last RTT is kept for the look-ahead. */
static void test_rtt_zero_keeps_last(void **state)
{
	struct tcp_cc a = cc_after_loss(1000, 100000, 0), b = a;
	uint64_t now = 0;

	(void)state;
	ops->on_ack(&a, 1000, 100 * MS, now);
	ops->on_ack(&b, 1000, 100 * MS, now);
	for (int i = 0; i < 500; i++) {
		now += 2 * MS;
		ops->on_ack(&a, 1000, 100 * MS, now);
		ops->on_ack(&b, 1000, 0, now);
	}
	assert_int_equal(a.cwnd, b.cwnd);
}

/*
 * §5.8: an idle period is not part of t. Two identical flows, one of them
 * silent for a minute: on restart its window carries on from where it
 * was, as the other's did, instead of leaping along the curve.
 */
static void test_idle_not_counted(void **state)
{
	const uint64_t rtt = 100 * MS;
	struct tcp_cc busy = cc_after_loss(1000, 1000000, 0), idle;
	uint64_t t_busy = 0, t_idle;
	uint32_t w_before;

	(void)state;
	for (int r = 0; r < 20; r++)
		run_rtt(&busy, &t_busy, rtt);
	idle = busy;
	t_idle = t_busy + 60 * SEC;
	w_before = busy.cwnd;
	for (int r = 0; r < 5; r++) {
		run_rtt(&busy, &t_busy, rtt);
		run_rtt(&idle, &t_idle, rtt);
	}
	print_message("# before %u, after 5 RTTs: busy %u, idle %u\n", w_before, busy.cwnd,
	              idle.cwnd);
	/* One SRTT of the silence may count; the minute does not. */
	assert_true(idle.cwnd >= busy.cwnd);
	assert_true((double)idle.cwnd - w_before < 1.5 * ((double)busy.cwnd - w_before));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_init),
	    cmocka_unit_test(test_slow_start_byte_counting),
	    cmocka_unit_test(test_congestion_reduction_and_fast_convergence),
	    cmocka_unit_test(test_floor_two_mss),
	    cmocka_unit_test(test_cubic_curve_around_w_max),
	    cmocka_unit_test(test_reno_friendly_small_bdp),
	    cmocka_unit_test(test_rto),
	    cmocka_unit_test(test_rtt_zero_keeps_last),
	    cmocka_unit_test(test_idle_not_counted),
	};

	return cmocka_run_group_tests_name("tcp_cubic", tests, NULL, NULL);
}
