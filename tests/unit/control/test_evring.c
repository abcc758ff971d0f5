/*
 * test_evring.c - the dataplane → posternd event ring (common/evring.h):
 * order and wrap-around of the free-running indexes, drops counted (and
 * reported once) when full while the producer never waits, truncation,
 * a consumer that sanitises what another process wrote and resynchronises
 * on impossible indexes, and a two-thread stress run checking that every
 * record arrives whole and in order or is counted as dropped.
 */
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "evring.h"

static struct evring *new_ring(uint32_t cap)
{
	struct evring *r = aligned_alloc(EVRING_CACHE_LINE, evring_bytes(cap));

	assert_non_null(r);
	memset(r, 0xa5, evring_bytes(cap)); /* garbage, as a fresh shm page is not */
	evring_init(r, cap);
	return r;
}

static void test_order_and_wrap(void **state)
{
	struct evring *r = new_ring(8);
	struct evring_record rec;
	char want[64];

	(void)state;
	assert_int_equal(evring_pop(r, &rec, NULL), EVRING_EMPTY);
	/* 100 records through 8 slots, in bursts of 1..7: indexes wrap many times */
	for (unsigned n = 0, burst = 1; n < 100; burst = burst % 7 + 1) {
		unsigned k;

		for (k = 0; k < burst && n + k < 100; k++)
			assert_true(evring_printf(r, EV_SNAPSHOT_ADOPTED, EVRING_INFO, 1000 + n + k,
			                          "generation=%u", n + k));
		for (unsigned j = 0; j < k; j++, n++) {
			assert_int_equal(evring_pop(r, &rec, NULL), EVRING_RECORD);
			snprintf(want, sizeof(want), "generation=%u", n);
			assert_string_equal(rec.text, want);
			assert_int_equal(rec.len, strlen(want));
			assert_int_equal(rec.ts_ns, 1000 + n);
			assert_int_equal(rec.kind, EV_SNAPSHOT_ADOPTED);
			assert_int_equal(rec.level, EVRING_INFO);
			assert_int_equal(rec.flags, 0);
		}
	}
	assert_int_equal(evring_pop(r, &rec, NULL), EVRING_EMPTY);
	assert_int_equal(atomic_load(&r->head), 100);
	assert_int_equal(atomic_load(&r->tail), 100);
	assert_int_equal(atomic_load(&r->dropped), 0);
	free(r);
}

static void test_full_drops(void **state)
{
	struct evring *r = new_ring(4);
	struct evring_record rec;

	(void)state;
	for (unsigned i = 0; i < 4; i++)
		assert_true(evring_printf(r, EV_WORKER_STARTED, EVRING_INFO, i, "lcore=%u", i));
	/* full: the producer is told, nothing is overwritten, the drop counted */
	assert_false(evring_printf(r, EV_WORKER_STARTED, EVRING_INFO, 9, "lcore=9"));
	assert_null(evring_reserve(r));
	assert_int_equal(atomic_load(&r->dropped), 2);
	assert_int_equal(evring_take_dropped(r), 2);
	assert_int_equal(evring_take_dropped(r), 0); /* reported once */
	assert_int_equal(evring_pop(r, &rec, NULL), EVRING_RECORD);
	assert_string_equal(rec.text, "lcore=0");
	/* one slot free again */
	assert_true(evring_printf(r, EV_WORKER_STARTED, EVRING_INFO, 4, "lcore=4"));
	assert_false(evring_printf(r, EV_WORKER_STARTED, EVRING_INFO, 5, "lcore=5"));
	assert_int_equal(evring_take_dropped(r), 1);
	for (unsigned i = 1; i <= 4; i++) {
		char want[16];

		assert_int_equal(evring_pop(r, &rec, NULL), EVRING_RECORD);
		snprintf(want, sizeof(want), "lcore=%u", i);
		assert_string_equal(rec.text, want);
	}
	assert_int_equal(evring_pop(r, &rec, NULL), EVRING_EMPTY);
	free(r);
}

static void test_truncation_and_sanitising(void **state)
{
	struct evring *r = new_ring(4);
	struct evring_record rec, *w;
	char big[2 * EVRING_TEXT_MAX]; /* well beyond what a record holds */

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_true(evring_printf(r, EV_SNAPSHOT_REFUSED, EVRING_ERROR, 1, "reason=%s", big));
	assert_int_equal(evring_pop(r, &rec, NULL), EVRING_RECORD);
	assert_int_equal(rec.flags, EVRING_F_TRUNCATED);
	assert_int_equal(rec.len, EVRING_TEXT_MAX - 1);
	assert_int_equal(strlen(rec.text), EVRING_TEXT_MAX - 1);
	assert_memory_equal(rec.text, "reason=xxx", 10);

	/* a producer that lies about len and forgets the NUL */
	w = evring_reserve(r);
	assert_non_null(w);
	memset(w, 'A', sizeof(*w));
	w->len = 60000;
	evring_commit(r);
	assert_int_equal(evring_pop(r, &rec, NULL), EVRING_RECORD);
	assert_int_equal(rec.len, EVRING_TEXT_MAX - 1);
	assert_int_equal(rec.text[EVRING_TEXT_MAX - 1], '\0');
	/* an embedded NUL shortens the text to it */
	w = evring_reserve(r);
	memset(w, 0, sizeof(*w));
	memcpy(w->text, "a=1\0b=2", 8);
	w->len = 7;
	evring_commit(r);
	assert_int_equal(evring_pop(r, &rec, NULL), EVRING_RECORD);
	assert_int_equal(rec.len, 3);
	free(r);
}

static void test_corrupt_indexes(void **state)
{
	struct evring *r = new_ring(8);
	struct evring_record rec;
	uint64_t lost = 0;

	(void)state;
	atomic_store(&r->tail, 5);
	atomic_store(&r->head, 5 + 8 + 3); /* more than capacity: impossible */
	assert_int_equal(evring_pop(r, &rec, &lost), EVRING_CORRUPT);
	assert_int_equal(lost, 11);
	assert_int_equal(atomic_load(&r->tail), 16);
	assert_int_equal(evring_pop(r, &rec, &lost), EVRING_EMPTY);
	/* and the ring works again from there */
	assert_true(evring_printf(r, EV_PORT_LINK, EVRING_INFO, 7, "port=0"));
	assert_int_equal(evring_pop(r, &rec, &lost), EVRING_RECORD);
	assert_string_equal(rec.text, "port=0");
	free(r);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(evring_kind_name(EV_SNAPSHOT_ADOPTED), "snapshot adopted");
	assert_string_equal(evring_kind_name(EV__COUNT), "unknown");
	assert_string_equal(evring_level_name(EVRING_WARNING), "warning");
	assert_string_equal(evring_level_name(200), "unknown");
	assert_int_equal(evring_kind_level(EV_SNAPSHOT_REFUSED), EVRING_ERROR);
	assert_int_equal(evring_kind_level(999), EVRING_INFO);
}

/* ---- two threads ---- */

#define STRESS_RECORDS 300000u
#define STRESS_CAP 64u

struct stress {
	struct evring *ring;
	_Atomic bool done;
	uint64_t committed;
};

/*
 * Pattern bytes after "seq=N fill=": 0 up to about 5/8 of a record's text,
 * so a torn copy shows wherever in the record it happens.
 */
#define STRESS_FILL_MOD (EVRING_TEXT_MAX * 5 / 8)

/* The text of record seq: its number, then a pattern derived from it. */
static int stress_text(uint64_t seq, char *buf, size_t len)
{
	unsigned fill = (unsigned)(seq % STRESS_FILL_MOD);
	int n = snprintf(buf, len, "seq=%" PRIu64 EVRING_SEP "fill=", seq);

	for (unsigned i = 0; i < fill && (size_t)n + 1 < len; i++)
		buf[n++] = (char)('a' + (seq + i) % 26);
	buf[n] = '\0';
	return n;
}

static void *stress_producer(void *arg)
{
	struct stress *st = arg;
	char text[EVRING_TEXT_MAX];

	for (uint64_t seq = 0; seq < STRESS_RECORDS; seq++) {
		/* about the consumer's pace, so both full and empty rings happen */
		for (volatile unsigned d = 0; d < 150; d++)
			;
		stress_text(seq, text, sizeof(text));
		if (evring_printf(st->ring, (uint16_t)(seq % EV__COUNT), (uint8_t)(seq % 5), seq,
		                  "%s", text))
			st->committed++;
		else
			sched_yield(); /* the test's pacing (2 shared cores), not the ring's */
	}
	atomic_store(&st->done, true);
	return NULL;
}

static void test_stress_two_threads(void **state)
{
	struct stress st = {.ring = new_ring(STRESS_CAP)};
	struct evring_record rec;
	char want[EVRING_TEXT_MAX];
	uint64_t received = 0, last = 0, spins = 0;
	bool first = true;
	pthread_t th;

	(void)state;
	assert_int_equal(pthread_create(&th, NULL, stress_producer, &st), 0);
	for (;;) {
		/* done read before the pop: empty then means everything was read */
		bool done = atomic_load(&st.done);
		enum evring_pop_result res = evring_pop(st.ring, &rec, NULL);

		if (res == EVRING_EMPTY) {
			if (done)
				break;
			/* now and then be slow, so the producer meets a full ring */
			if (++spins % 1024 == 0)
				sched_yield();
			continue;
		}
		assert_int_equal(res, EVRING_RECORD);
		/* whole and in order: the producer's seq rides in ts_ns and in the text */
		assert_true(first || rec.ts_ns > last);
		first = false;
		last = rec.ts_ns;
		stress_text(rec.ts_ns, want, sizeof(want));
		if (strcmp(rec.text, want) != 0)
			fail_msg("record %" PRIu64 " torn: \"%s\"", rec.ts_ns, rec.text);
		assert_int_equal(rec.kind, rec.ts_ns % EV__COUNT);
		assert_int_equal(rec.level, rec.ts_ns % 5);
		received++;
		/* once, a long pause: the producer must drop, not wait */
		if (received == 20000)
			usleep(20000);
	}
	assert_int_equal(pthread_join(th, NULL), 0);
	/* every record arrived or was counted as dropped, none twice */
	assert_int_equal(received, st.committed);
	assert_int_equal(received + atomic_load(&st.ring->dropped), STRESS_RECORDS);
	print_message("# %" PRIu64 " received, %" PRIu64 " dropped\n", received,
	              (uint64_t)atomic_load(&st.ring->dropped));
	free(st.ring);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_order_and_wrap),
	    cmocka_unit_test(test_full_drops),
	    cmocka_unit_test(test_truncation_and_sanitising),
	    cmocka_unit_test(test_corrupt_indexes),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_stress_two_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
