/*
 * test_timer.c - the per-worker timing wheel: timers fire at (never
 * before) their time, in order, across every level and the cascades
 * between them; cancel and re-arm from callbacks; past and out-of-range
 * times; and a randomized run checked against a brute-force model.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "timer.h"

#define MS 1000000ull

struct probe {
	struct timer t;
	uint64_t due_ns;     /* what it was armed for */
	uint64_t fired_ns;   /* wheel time when it fired, 0 = not */
	unsigned order;      /* global firing order */
	int rearm;           /* re-arm itself this many more times */
	struct timer *victim; /* cancel this one when firing */
};

struct run {
	struct timer_wheel tw;
	uint64_t now;
	unsigned nfired;
};

static void probe_fire(struct timer *t, void *owner)
{
	struct probe *p = (struct probe *)((char *)t - offsetof(struct probe, t));
	struct run *r = owner;

	p->fired_ns = r->now;
	p->order = r->nfired++;
	if (p->victim != NULL)
		timer_cancel(&r->tw, p->victim);
	if (p->rearm > 0) {
		p->rearm--;
		p->due_ns = r->now + 5 * MS;
		timer_arm(&r->tw, &p->t, p->due_ns);
	}
}

static struct run *run_new(uint64_t start)
{
	struct run *r = calloc(1, sizeof(*r));

	assert_non_null(r);
	r->now = start;
	timer_wheel_init(&r->tw, MS, start, r);
	return r;
}

/* Advance in steps of step_ns up to `until`, as a poll loop would. */
static void run_to(struct run *r, uint64_t until, uint64_t step_ns)
{
	while (r->now < until) {
		r->now = r->now + step_ns > until ? until : r->now + step_ns;
		timer_advance(&r->tw, r->now);
	}
}

#define DIM(a) (sizeof(a) / sizeof((a)[0]))

/* Every level, both sides of each level boundary; 1 ms steps like a busy loop. */
static void test_fires_on_time_every_level(void **state)
{
	static const uint64_t delays_ms[] = {0,     1,     2,      255,    256,
	                                     257,   1000,  65535,  65536,  65537,
	                                     300000, 16777215, 16777216 + 3};
	struct probe p[DIM(delays_ms)];
	struct run *r = run_new(123456789ull); /* not tick aligned */
	uint64_t end = r->now + (delays_ms[DIM(delays_ms) - 1] + 2) * MS;

	(void)state;
	memset(p, 0, sizeof(p));
	for (size_t i = 0; i < DIM(delays_ms); i++) {
		timer_init(&p[i].t, probe_fire);
		p[i].due_ns = r->now + delays_ms[i] * MS;
		timer_arm(&r->tw, &p[i].t, p[i].due_ns);
		assert_true(timer_armed(&p[i].t));
	}
	assert_int_equal(r->tw.narmed, DIM(delays_ms));
	run_to(r, end, MS);
	for (size_t i = 0; i < DIM(delays_ms); i++) {
		assert_true(p[i].fired_ns >= p[i].due_ns);
		assert_true(p[i].fired_ns <= p[i].due_ns + MS); /* tick rounding + step */
		assert_int_equal(p[i].order, i);
		assert_false(timer_armed(&p[i].t));
	}
	assert_int_equal(r->tw.narmed, 0);
	free(r);
}

/* A poll loop that stalls for seconds still fires everything, in order. */
static void test_big_jump_keeps_order(void **state)
{
	struct probe p[64];
	struct run *r = run_new(0);

	(void)state;
	memset(p, 0, sizeof(p));
	for (unsigned i = 0; i < DIM(p); i++) {
		timer_init(&p[i].t, probe_fire);
		/* Reverse arming order, distinct ticks spread over ~70 s. */
		p[i].due_ns = (uint64_t)(DIM(p) - i) * 1100 * MS;
		timer_arm(&r->tw, &p[i].t, p[i].due_ns);
	}
	r->now = 100000 * MS;
	assert_int_equal(timer_advance(&r->tw, r->now), DIM(p));
	for (unsigned i = 0; i < DIM(p); i++)
		assert_int_equal(p[i].order, DIM(p) - 1 - i);
	free(r);
}

/* Same tick: FIFO in arming order; cancel, re-arm, cancel from a callback. */
static void test_cancel_rearm(void **state)
{
	struct probe a, b, c, d;
	struct run *r = run_new(0);

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	memset(&c, 0, sizeof(c));
	memset(&d, 0, sizeof(d));
	timer_init(&a.t, probe_fire);
	timer_init(&b.t, probe_fire);
	timer_init(&c.t, probe_fire);
	timer_init(&d.t, probe_fire);
	timer_arm(&r->tw, &a.t, 10 * MS);
	timer_arm(&r->tw, &b.t, 10 * MS);
	timer_arm(&r->tw, &c.t, 10 * MS);
	a.victim = &c.t; /* a cancels c, which is due in the same tick */
	b.rearm = 2;     /* b fires at 10, 15, 20 ms */
	timer_arm(&r->tw, &d.t, 500 * MS);
	timer_cancel(&r->tw, &d.t);
	timer_cancel(&r->tw, &d.t); /* twice is harmless */
	assert_false(timer_armed(&d.t));
	/* Re-arming an armed timer moves it. */
	timer_arm(&r->tw, &d.t, 700 * MS);
	timer_arm(&r->tw, &d.t, 30 * MS);
	assert_int_equal(r->tw.narmed, 4);
	run_to(r, 12 * MS, MS);
	assert_int_equal(a.fired_ns, 10 * MS);
	assert_int_equal(b.fired_ns, 10 * MS);
	assert_true(a.order < b.order);
	assert_int_equal(c.fired_ns, 0);
	run_to(r, 1000 * MS, MS);
	assert_int_equal(b.fired_ns, 20 * MS);
	assert_int_equal(d.fired_ns, 30 * MS);
	assert_int_equal(c.fired_ns, 0);
	assert_int_equal(r->nfired, 5);
	assert_int_equal(r->tw.narmed, 0);
	free(r);
}

/* Past times fire on the next advance; beyond the range is clamped, not lost. */
static void test_past_and_far(void **state)
{
	struct probe a, b;
	struct run *r = run_new(5000 * MS);

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	timer_init(&a.t, probe_fire);
	timer_init(&b.t, probe_fire);
	timer_arm(&r->tw, &a.t, 1 * MS);
	timer_arm(&r->tw, &b.t, UINT64_MAX / 2);
	r->now += MS;
	assert_int_equal(timer_advance(&r->tw, r->now), 1);
	assert_int_equal(a.fired_ns, r->now);
	assert_true(timer_armed(&b.t));
	timer_cancel(&r->tw, &b.t);
	assert_int_equal(r->tw.narmed, 0);
	/* Nothing armed: advancing far is a jump, not a walk. */
	assert_int_equal(timer_advance(&r->tw, UINT64_MAX / 4), 0);
	free(r);
}

/* Random arm/cancel/advance against a brute-force model of what is due. */
static void test_random_against_model(void **state)
{
	enum { N = 2000 };
	struct probe *p = calloc(N, sizeof(*p));
	struct run *r = run_new(42 * MS);
	uint64_t seed = 0x9e3779b97f4a7c15ull;
	unsigned armed = 0;

	(void)state;
	assert_non_null(p);
	for (unsigned i = 0; i < N; i++)
		timer_init(&p[i].t, probe_fire);
	for (unsigned round = 0; round < 20000; round++) {
		unsigned i;
		uint64_t x;

		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		x = seed >> 33;
		i = (unsigned)(x % N);
		switch ((x >> 12) % 4) {
		case 0:
		case 1: /* arm within 0..~100 s, skewed short */
			armed += !timer_armed(&p[i].t);
			p[i].due_ns = r->now + ((x >> 20) % 4 == 0 ? (x % 100000) : (x % 300)) * MS +
			              (x % 1000);
			p[i].fired_ns = 0;
			timer_arm(&r->tw, &p[i].t, p[i].due_ns);
			break;
		case 2:
			armed -= timer_armed(&p[i].t);
			timer_cancel(&r->tw, &p[i].t);
			break;
		default:
			r->now += (x % 50) * MS + (x % 777);
			timer_advance(&r->tw, r->now);
			for (unsigned k = 0; k < N; k++) {
				/* Due at or before the last whole tick: must have fired. */
				bool due = p[k].due_ns != 0 && (p[k].due_ns + MS - 1) / MS <= r->now / MS;

				if (timer_armed(&p[k].t))
					assert_false(due);
				else if (p[k].fired_ns != 0)
					assert_true(p[k].fired_ns >= p[k].due_ns);
			}
			break;
		}
		assert_true(r->tw.narmed <= N);
	}
	(void)armed;
	for (unsigned i = 0; i < N; i++)
		timer_cancel(&r->tw, &p[i].t);
	assert_int_equal(r->tw.narmed, 0);
	free(p);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fires_on_time_every_level),
	    cmocka_unit_test(test_big_jump_keeps_order),
	    cmocka_unit_test(test_cancel_rearm),
	    cmocka_unit_test(test_past_and_far),
	    cmocka_unit_test(test_random_against_model),
	};

	return cmocka_run_group_tests_name("timer", tests, NULL, NULL);
}
