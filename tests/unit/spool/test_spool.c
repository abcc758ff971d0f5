/*
 * test_spool.c - the spool's main paths on a real filesystem: append,
 * commit and replay round trips (byte-exact, envelopes included), group
 * commit (N messages, one fdatasync), async chunk reads, queue state across
 * restarts (deferred, hold, per-recipient delivery), reclaim of segments
 * after delivery (and the ghost rule for messages spanning segments), and
 * restart in the middle of a multi-record message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "spool_test.h"

static const char *const rcpts3[] = {"a@example.net", "b@example.org", "c@example.com"};

/* Sizes around the chunk boundaries (chunk 16 KiB) and a large one. */
static const size_t sizes[] = {0, 1, 100, 16383, 16384, 16385, 3 * 16384 + 5, 200000, 4096};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static void test_round_trip(void **state)
{
	char *dir = tdir_new();
	unsigned errors = 0;
	struct spool_config cfg = cfg_for(dir, &errors);
	struct commit_result cr[NSIZES * 2];
	uint64_t ids[NSIZES * 2];
	struct spool_replay_report rep;
	struct spool *sp;

	(void)state;
	memset(cr, 0, sizeof(cr));
	assert_int_equal(spool_open(&cfg, &sp, &rep), PG_OK);
	assert_int_equal(rep.queued, 0);
	for (unsigned i = 0; i < NSIZES * 2; i++) {
		size_t len = sizes[i % NSIZES];
		uint8_t *body = malloc(len + 1);
		struct spool_msg *m;

		body_fill(body, len, i);
		/* pieces of 1 KiB for the first half, one big append for the rest */
		m = put_message(sp, i % 2 ? "" : "sender@example.com", rcpts3, 1 + i % 3, body, len,
		                i < NSIZES ? 1000 : len + 1, &cr[i]);
		assert_non_null(m);
		ids[i] = spool_msg_id(m);
		free(body);
	}
	pump(sp);
	for (unsigned i = 0; i < NSIZES * 2; i++) {
		assert_int_equal(cr[i].calls, 1);
		assert_int_equal(cr[i].result, PG_OK);
		assert_true(cr[i].id == ids[i]);
	}
	assert_int_equal(spool_queue_count(sp), NSIZES * 2);
	spool_close(sp);

	assert_int_equal(spool_open(&cfg, &sp, &rep), PG_OK);
	assert_int_equal(rep.queued, NSIZES * 2);
	assert_int_equal(rep.corrupt + rep.damaged + rep.torn + rep.discarded, 0);
	assert_int_equal(errors, 0);
	for (unsigned i = 0; i < NSIZES * 2; i++) {
		struct spool_msg *m = spool_msg_lookup(sp, ids[i]);
		uint32_t plen;
		const char *params;

		assert_non_null(m);
		assert_true(body_matches(sp, m, i, sizes[i % NSIZES]));
		assert_string_equal(spool_msg_sender(m), i % 2 ? "" : "sender@example.com");
		assert_int_equal(spool_msg_nrcpt(m), 1 + i % 3);
		for (uint32_t r = 0; r < spool_msg_nrcpt(m); r++)
			assert_string_equal(spool_msg_rcpt(m, r), rcpts3[r]);
		params = spool_msg_params(m, &plen);
		assert_int_equal(plen, 20);
		assert_memory_equal(params, "SIZE=1 BODY=8BITMIME", 20);
		assert_true(spool_msg_arrival(m) == 1700000000000000000ull);
		assert_int_equal(SPOOL_ID_WORKER(ids[i]), 3);
	}
	/* commit order is queue order */
	{
		unsigned i = 0;

		for (struct spool_msg *m = spool_queue_first(sp); m != NULL;
		     m = spool_queue_next(sp, m))
			assert_true(spool_msg_id(m) == ids[i++]);
		assert_int_equal(i, NSIZES * 2);
	}
	/* ids: unique across the restart, text form round-trips */
	{
		struct commit_result c = {0};
		uint8_t b = 'x';
		struct spool_msg *m = put_message(sp, "s@x", rcpts3, 1, &b, 1, 1, &c);
		char text[SPOOL_ID_STRLEN];
		uint64_t back;

		assert_non_null(m);
		for (unsigned i = 0; i < NSIZES * 2; i++)
			assert_true(spool_msg_id(m) != ids[i]);
		assert_int_equal(spool_id_parse(spool_id_str(spool_msg_id(m), text), &back), PG_OK);
		assert_true(back == spool_msg_id(m));
		pump(sp);
		assert_int_equal(c.result, PG_OK);
	}
	spool_close(sp);
	rm_rf(dir);
	free(dir);
}

/* N messages completed in one poll interval share one fdatasync. */
static void test_group_commit(void **state)
{
	enum { N = 64 };
	char *dir = tdir_new();
	unsigned errors = 0;
	struct spool_config cfg = cfg_for(dir, &errors);
	struct commit_result cr[N];
	struct spool *sp;
	uint64_t before, fsyncs;
	uint8_t body[4096];

	(void)state;
	memset(cr, 0, sizeof(cr));
	assert_int_equal(spool_open(&cfg, &sp, NULL), PG_OK);
	pump(sp); /* the spare segment's creation syncs are not counted below */
	before = spool_stats(sp)->fsyncs;
	for (unsigned i = 0; i < N; i++) {
		body_fill(body, sizeof(body), i);
		assert_non_null(put_message(sp, "s@x", rcpts3, 1, body, sizeof(body), 512, &cr[i]));
	}
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(cr[i].calls, 0); /* nothing is acknowledged before the sync */
	pump(sp);
	fsyncs = spool_stats(sp)->fsyncs - before;
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(cr[i].result, PG_OK);
	print_message("# group commit: %u messages of 4 KiB, %llu fdatasync (%.4f per message)\n",
	              N, (unsigned long long)fsyncs, (double)fsyncs / N);
	assert_int_equal(fsyncs, 1);

	/* commits arriving while an fsync runs share the next one: <= 2 for 2 waves */
	memset(cr, 0, sizeof(cr));
	before = spool_stats(sp)->fsyncs;
	for (unsigned i = 0; i < N; i++) {
		body_fill(body, sizeof(body), i);
		assert_non_null(
		    put_message(sp, "s@x", rcpts3, 1, body, sizeof(body), 4096, &cr[i]));
		if (i == N / 2)
			spool_poll(sp); /* first wave goes out, the second waits for it */
	}
	pump(sp);
	fsyncs = spool_stats(sp)->fsyncs - before;
	print_message("# two waves: %u messages, %llu fdatasyncs\n", N, (unsigned long long)fsyncs);
	assert_true(fsyncs >= 1 && fsyncs <= 2);
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(cr[i].result, PG_OK);
	assert_int_equal(errors, 0);
	spool_close(sp);
	rm_rf(dir);
	free(dir);
}

struct read_state {
	uint8_t *buf;
	size_t len;
	unsigned calls, errors;
};

static void read_cb(struct spool_msg *m, uint32_t chunk, const void *data, size_t len, int result,
                    int err, void *owner)
{
	struct read_state *rs = owner;

	(void)m;
	(void)chunk;
	(void)err;
	rs->calls++;
	if (result != PG_OK) {
		rs->errors++;
		return;
	}
	memcpy(rs->buf + rs->len, data, len);
	rs->len += len;
}

/* Async reads through io_uring, in chunk order. */
static void test_read_chunks(void **state)
{
	char *dir = tdir_new();
	struct spool_config cfg = cfg_for(dir, NULL);
	struct commit_result cr = {0};
	size_t len = 100000;
	uint8_t *body = malloc(len), *back = malloc(len);
	struct read_state rs = {.buf = back};
	struct spool *sp;
	struct spool_msg *m;

	(void)state;
	assert_int_equal(spool_open(&cfg, &sp, NULL), PG_OK);
	body_fill(body, len, 77);
	m = put_message(sp, "s@x", rcpts3, 2, body, len, 3000, &cr);
	pump(sp);
	assert_int_equal(cr.result, PG_OK);
	assert_int_equal(spool_msg_nchunks(m), (len + cfg.chunk_size - 1) / cfg.chunk_size);
	for (uint32_t c = 0; c < spool_msg_nchunks(m); c++) {
		unsigned want = rs.calls + 1;

		assert_int_equal(spool_read_chunk(sp, m, c, read_cb, &rs), PG_OK);
		while (rs.calls < want)
			spool_poll(sp);
	}
	assert_int_equal(rs.errors, 0);
	assert_int_equal(rs.len, len);
	assert_memory_equal(back, body, len);
	spool_close(sp);
	free(body);
	free(back);
	rm_rf(dir);
	free(dir);
}

/* Deferred, hold, per-recipient delivery: all survive a restart. */
static void test_queue_state(void **state)
{
	char *dir = tdir_new();
	struct spool_config cfg = cfg_for(dir, NULL);
	struct commit_result cr[4] = {0};
	struct spool_replay_report rep;
	struct spool *sp;
	struct spool_msg *m[4];
	uint64_t id[4];
	uint8_t b[10] = "0123456789";

	(void)state;
	assert_int_equal(spool_open(&cfg, &sp, NULL), PG_OK);
	for (int i = 0; i < 4; i++) {
		m[i] = put_message(sp, "s@x", rcpts3, 3, b, sizeof(b), 10, &cr[i]);
		id[i] = spool_msg_id(m[i]);
	}
	pump(sp);
	assert_int_equal(spool_msg_defer(sp, m[0], 1234567, 3), PG_OK);
	assert_int_equal(spool_msg_hold(sp, m[1]), PG_OK);
	assert_int_equal(spool_msg_delivered(sp, m[2], 1), PG_OK); /* b@ done */
	assert_int_equal(spool_msg_delivered(sp, m[3], 0), PG_OK);
	assert_int_equal(spool_msg_delivered(sp, m[3], 1), PG_OK);
	assert_int_equal(spool_msg_delivered(sp, m[3], 2), PG_OK); /* all done: gone */
	assert_null(spool_msg_lookup(sp, id[3]));
	assert_int_equal(spool_queue_count(sp), 3);
	spool_close(sp); /* close flushes */

	assert_int_equal(spool_open(&cfg, &sp, &rep), PG_OK);
	assert_int_equal(rep.queued, 3);
	assert_int_equal(rep.done, 1);
	m[0] = spool_msg_lookup(sp, id[0]);
	m[1] = spool_msg_lookup(sp, id[1]);
	m[2] = spool_msg_lookup(sp, id[2]);
	assert_non_null(m[0]);
	assert_non_null(m[1]);
	assert_non_null(m[2]);
	assert_null(spool_msg_lookup(sp, id[3]));
	assert_int_equal(spool_msg_attempts(m[0]), 3);
	assert_true(spool_msg_next_attempt(m[0]) == 1234567);
	assert_true(spool_msg_held(m[1]));
	assert_false(spool_msg_held(m[0]));
	assert_true(spool_msg_rcpt_done(m[2], 1));
	assert_false(spool_msg_rcpt_done(m[2], 0));
	/* release and delete, then restart again */
	assert_int_equal(spool_msg_release(sp, m[1]), PG_OK);
	assert_int_equal(spool_msg_delete(sp, m[0]), PG_OK);
	spool_close(sp);
	assert_int_equal(spool_open(&cfg, &sp, &rep), PG_OK);
	assert_int_equal(rep.queued, 2);
	assert_null(spool_msg_lookup(sp, id[0]));
	assert_false(spool_msg_held(spool_msg_lookup(sp, id[1])));
	spool_close(sp);
	rm_rf(dir);
	free(dir);
}

/*
 * Reclaim: small segments, many messages over several of them; delivering
 * everything leaves only the active segment (and the spare); a message
 * still queued keeps its segment; messages spanning segments are ghosts
 * until their older segments are gone.
 */
static void test_reclaim(void **state)
{
	enum { N = 60 };
	char *dir = tdir_new();
	struct spool_config cfg = cfg_for(dir, NULL);
	struct commit_result cr[N];
	struct spool_replay_report rep;
	struct spool *sp;
	struct spool_msg *m[N];
	uint64_t keep_id;
	size_t len = 20000;
	uint8_t *body = malloc(len);

	(void)state;
	memset(cr, 0, sizeof(cr));
	cfg.segment_size = 128u << 10;
	cfg.chunk_size = 8u << 10;
	cfg.batch_size = 16u << 10;
	assert_int_equal(spool_open(&cfg, &sp, NULL), PG_OK);
	for (int i = 0; i < N; i++) {
		body_fill(body, len, (uint64_t)i);
		m[i] = put_message(sp, "s@x", rcpts3, 1, body, len, 5000, &cr[i]);
		assert_non_null(m[i]);
		if (i % 7 == 0)
			pump(sp);
	}
	pump(sp);
	for (int i = 0; i < N; i++)
		assert_int_equal(cr[i].result, PG_OK);
	assert_true(count_segments(dir, 3) >= 8);
	print_message("# reclaim: %u segments before delivery\n", count_segments(dir, 3));
	keep_id = spool_msg_id(m[0]); /* the first message keeps the first segment */
	for (int i = 1; i < N; i++)
		assert_int_equal(spool_msg_delivered(sp, m[i], SPOOL_RCPT_ALL), PG_OK);
	for (int i = 0; i < 50; i++)
		pump(sp);
	print_message("# reclaim: %u segments after delivering all but one\n",
	              count_segments(dir, 3));
	assert_true(count_segments(dir, 3) <= 4); /* first, maybe its ghost's, active, spare */
	spool_close(sp);

	assert_int_equal(spool_open(&cfg, &sp, &rep), PG_OK);
	assert_int_equal(rep.queued, 1);
	assert_non_null(spool_msg_lookup(sp, keep_id));
	body_fill(body, len, 0);
	assert_true(body_matches(sp, spool_msg_lookup(sp, keep_id), 0, len));
	assert_int_equal(spool_msg_delivered(sp, spool_msg_lookup(sp, keep_id), SPOOL_RCPT_ALL),
	                 PG_OK);
	for (int i = 0; i < 50; i++)
		pump(sp);
	assert_true(count_segments(dir, 3) <= 2); /* the active one and the spare */
	assert_true(spool_stats(sp)->segments_reclaimed >= 1);
	spool_close(sp);
	assert_int_equal(spool_open(&cfg, &sp, &rep), PG_OK);
	assert_int_equal(rep.queued, 0);
	spool_close(sp);
	free(body);
	rm_rf(dir);
	free(dir);
}

/* A message whose MSG_END never made it: gone after restart, never half there. */
static void test_restart_mid_message(void **state)
{
	char *dir = tdir_new();
	struct spool_config cfg = cfg_for(dir, NULL);
	struct commit_result cr = {0};
	struct spool_replay_report rep;
	struct spool_envelope env = {.sender = "s@x", .rcpts = rcpts3, .nrcpt = 1};
	struct spool *sp;
	struct spool_msg *half, *whole;
	uint8_t body[50000];
	uint64_t half_id, whole_id;

	(void)state;
	body_fill(body, sizeof(body), 5);
	assert_int_equal(spool_open(&cfg, &sp, NULL), PG_OK);
	assert_int_equal(spool_msg_begin(sp, &env, &half), PG_OK);
	half_id = spool_msg_id(half);
	assert_int_equal(spool_msg_append(sp, half, body, sizeof(body)), PG_OK);
	whole = put_message(sp, "t@x", rcpts3, 2, body, sizeof(body), 7000, &cr);
	whole_id = spool_msg_id(whole);
	assert_int_equal(spool_msg_append(sp, half, body, 1000), PG_OK);
	pump(sp); /* the half message's chunks are on disk, interleaved with the whole one */
	assert_int_equal(cr.result, PG_OK);
	spool_close(sp); /* "crash": the half message never committed */

	assert_int_equal(spool_open(&cfg, &sp, &rep), PG_OK);
	assert_int_equal(rep.queued, 1);
	assert_int_equal(rep.discarded, 1);
	assert_null(spool_msg_lookup(sp, half_id));
	assert_non_null(spool_msg_lookup(sp, whole_id));
	assert_true(body_matches(sp, spool_msg_lookup(sp, whole_id), 5, sizeof(body)));
	spool_close(sp);
	rm_rf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),  cmocka_unit_test(test_group_commit),
	    cmocka_unit_test(test_read_chunks), cmocka_unit_test(test_queue_state),
	    cmocka_unit_test(test_reclaim),     cmocka_unit_test(test_restart_mid_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
