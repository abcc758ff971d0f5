/*
 * test_spool_replay.c - replay against damaged segment files: the last
 * segment truncated at every byte offset of its last message's records
 * (torn tail: exactly the committed messages come back, nothing reported as
 * corrupt), a flipped byte in synced data in the middle (corruption: found,
 * reported, the damaged message named, every other message intact), and a
 * torn tail in a segment that is no longer the last one (crash, restart,
 * crash again).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "spool_test.h"

static const char *const rcpt1[] = {"r@example.net"};

struct file {
	uint8_t *p;
	size_t len;
};

static struct file slurp(const char *path)
{
	struct file f = {0};
	struct stat st;
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	f.len = (size_t)st.st_size;
	f.p = malloc(f.len + 1);
	assert_int_equal(pread(fd, f.p, f.len, 0), (ssize_t)f.len);
	close(fd);
	return f;
}

static void spit(const char *path, const uint8_t *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, len), (ssize_t)len);
	close(fd);
}

/* A spool directory holding just these segment files (worker 3). */
static char *dir_with(const char *const *names, const struct file *files, const size_t *lens,
                      unsigned n)
{
	char *dir = tdir_new();
	char path[512];

	snprintf(path, sizeof(path), "%s/w3", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	for (unsigned i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/w3/%s", dir, names[i]);
		spit(path, files[i].p, lens[i]);
	}
	return dir;
}

static void seg_path(char *buf, size_t size, const char *dir, uint64_t seq)
{
	snprintf(buf, size, "%s/w3/seg-%016llx.pgs", dir, (unsigned long long)seq);
}

/*
 * K committed messages, each synced on its own, then a last message in a
 * last batch. Truncating the segment anywhere inside that last batch must
 * give back exactly the K messages, as a torn tail, never as corruption.
 */
static void test_torn_tail_every_offset(void **state)
{
	enum { K = 3 };
	char *dir = tdir_new();
	struct spool_config cfg = cfg_for(dir, NULL);
	struct commit_result cr[K + 1];
	uint64_t ids[K + 1];
	struct spool *sp;
	char path[512];
	struct stat st;
	size_t before, after;
	struct file f;
	uint8_t body[300];
	unsigned checked = 0, torn = 0;
	const char *name = "seg-0000000000000001.pgs";

	(void)state;
	memset(cr, 0, sizeof(cr));
	assert_int_equal(spool_open(&cfg, &sp, NULL), PG_OK);
	for (int i = 0; i < K; i++) {
		body_fill(body, sizeof(body), (uint64_t)i);
		ids[i] =
		    spool_msg_id(put_message(sp, "s@x", rcpt1, 1, body, sizeof(body), 100, &cr[i]));
		pump(sp);
	}
	seg_path(path, sizeof(path), dir, 1);
	assert_int_equal(stat(path, &st), 0);
	before = (size_t)st.st_size;
	/* the last message: BEGIN, two DATA records (chunk 16 KiB → use a small chunk) */
	body_fill(body, sizeof(body), K);
	ids[K] = spool_msg_id(put_message(sp, "s@x", rcpt1, 1, body, sizeof(body), 100, &cr[K]));
	pump(sp);
	assert_int_equal(cr[K].result, PG_OK);
	spool_close(sp);
	f = slurp(path);
	after = f.len;
	assert_true(after > before);

	for (size_t t = before; t <= after; t++) {
		size_t len = t;
		char *d2 = dir_with(&name, &f, &len, 1);
		unsigned errors = 0;
		struct spool_config c2 = cfg_for(d2, &errors);
		struct spool_replay_report rep;

		assert_int_equal(spool_open(&c2, &sp, &rep), PG_OK);
		if (t == after) {
			assert_int_equal(rep.queued, K + 1);
		} else {
			assert_int_equal(rep.queued, K);
			assert_null(spool_msg_lookup(sp, ids[K]));
			/* at a record boundary the end is clean; elsewhere one torn tail */
			assert_true(rep.torn <= 1);
			torn += rep.torn;
		}
		assert_int_equal(rep.corrupt + rep.damaged + rep.bad_segments, 0);
		assert_int_equal(errors, 0);
		for (int i = 0; i < K; i++)
			assert_true(body_matches(sp, spool_msg_lookup(sp, ids[i]), (uint64_t)i,
			                         sizeof(body)));
		spool_close(sp);
		rm_rf(d2);
		free(d2);
		checked++;
	}
	print_message("# torn tail: %u truncation offsets checked (%zu..%zu), %u torn\n", checked,
	              before, after, torn);
	{
		/* every offset is torn except record boundaries and padding (a clean end) */
		unsigned boundaries = 0;

		for (size_t off = before; off <= after; boundaries++) {
			struct spool_rec_hdr h;

			if (off == after)
				break;
			memcpy(&h, f.p + off, sizeof(h));
			off += spool_rec_size(h.len);
			/* a cut inside the padding leaves the record whole: clean too */
			boundaries += spool_rec_size(h.len) - SPOOL_REC_HDR_SIZE - h.len;
		}
		assert_int_equal(torn + boundaries + 1, checked);
	}
	free(f.p);
	rm_rf(dir);
	free(dir);
}

/* Offset of the n-th record of `type` in a segment image. */
static size_t find_record(const struct file *f, uint8_t type, unsigned n)
{
	for (size_t off = SPOOL_SEG_HDR_SIZE; off + SPOOL_REC_HDR_SIZE <= f->len;) {
		struct spool_rec_hdr h;

		memcpy(&h, f->p + off, sizeof(h));
		if (h.type == type && n-- == 0)
			return off;
		off += spool_rec_size(h.len);
	}
	fail_msg("record not found");
	return 0;
}

/*
 * Four messages, each synced in its own batch. A flipped byte in the second
 * one's body (synced data: later SYNC records prove it) is corruption: it is
 * reported, that message is named as lost, the others come back intact.
 * The same flip in the last batch (never covered by a later SYNC record)
 * can only be read as a torn tail.
 */
static void test_corruption_middle(void **state)
{
	enum { N = 4 };
	char *dir = tdir_new();
	struct spool_config cfg = cfg_for(dir, NULL);
	struct commit_result cr[N];
	uint64_t ids[N];
	struct spool *sp;
	char path[512];
	struct file f;
	uint8_t body[1000];
	const char *name = "seg-0000000000000001.pgs";
	struct spool_replay_report rep;

	(void)state;
	memset(cr, 0, sizeof(cr));
	assert_int_equal(spool_open(&cfg, &sp, NULL), PG_OK);
	for (int i = 0; i < N; i++) {
		body_fill(body, sizeof(body), (uint64_t)i);
		ids[i] = spool_msg_id(
		    put_message(sp, "s@x", rcpt1, 1, body, sizeof(body), sizeof(body), &cr[i]));
		pump(sp);
	}
	spool_close(sp);
	seg_path(path, sizeof(path), dir, 1);
	f = slurp(path);

	/* 1. body byte of message 1 */
	{
		size_t off = find_record(&f, SPOOL_REC_MSG_DATA, 1) + SPOOL_REC_HDR_SIZE + 8 + 500;
		char *d2;
		unsigned errors = 0;
		struct spool_config c2;

		f.p[off] ^= 0x40;
		d2 = dir_with(&name, &f, &f.len, 1);
		f.p[off] ^= 0x40;
		c2 = cfg_for(d2, &errors);
		assert_int_equal(spool_open(&c2, &sp, &rep), PG_OK);
		assert_int_equal(rep.corrupt, 1);
		assert_int_equal(rep.damaged, 1);
		assert_true(errors >= 2); /* the record, and the damage summary */
		assert_int_equal(rep.queued, N - 1);
		assert_null(spool_msg_lookup(sp, ids[1]));
		for (int i = 0; i < N; i++)
			if (i != 1)
				assert_true(body_matches(sp, spool_msg_lookup(sp, ids[i]),
				                         (uint64_t)i, sizeof(body)));
		spool_close(sp);
		/* the damaged segment is kept for the operator, not reclaimed */
		assert_true(access(path, F_OK) == 0 || 1);
		seg_path(path, sizeof(path), d2, 1);
		assert_int_equal(access(path, F_OK), 0);
		rm_rf(d2);
		free(d2);
	}
	/* 2. header (magic) of message 2's MSG_BEGIN */
	{
		size_t off = find_record(&f, SPOOL_REC_MSG_BEGIN, 2);
		char *d2;
		unsigned errors = 0;
		struct spool_config c2;

		f.p[off] ^= 0x01;
		d2 = dir_with(&name, &f, &f.len, 1);
		f.p[off] ^= 0x01;
		c2 = cfg_for(d2, &errors);
		assert_int_equal(spool_open(&c2, &sp, &rep), PG_OK);
		assert_int_equal(rep.corrupt, 1);
		assert_true(errors >= 1);
		assert_int_equal(rep.queued, N - 1);
		assert_null(spool_msg_lookup(sp, ids[2]));
		assert_true(body_matches(sp, spool_msg_lookup(sp, ids[3]), 3, sizeof(body)));
		spool_close(sp);
		rm_rf(d2);
		free(d2);
	}
	/* 3. the last batch: nothing after it proves it was synced → torn tail */
	{
		size_t off = find_record(&f, SPOOL_REC_MSG_DATA, 3) + SPOOL_REC_HDR_SIZE + 8 + 10;
		char *d2;
		struct spool_config c2;

		f.p[off] ^= 0x40;
		d2 = dir_with(&name, &f, &f.len, 1);
		f.p[off] ^= 0x40;
		c2 = cfg_for(d2, NULL);
		assert_int_equal(spool_open(&c2, &sp, &rep), PG_OK);
		assert_int_equal(rep.corrupt, 0);
		assert_int_equal(rep.torn, 1);
		assert_int_equal(rep.queued, N - 1);
		spool_close(sp);
		rm_rf(d2);
		free(d2);
	}
	free(f.p);
	rm_rf(dir);
	free(dir);
}

/*
 * Crash, restart, crash again: the first run's torn segment is no longer the
 * last one. Still a torn tail (its garbage was never synced), not corruption;
 * and messages committed after the restart are all there.
 */
static void test_torn_then_restart(void **state)
{
	char *dir = tdir_new();
	struct spool_config cfg = cfg_for(dir, NULL);
	struct commit_result cr[3] = {0};
	uint64_t ids[3];
	struct spool *sp;
	struct spool_replay_report rep;
	char path[512];
	struct file f;
	uint8_t body[700];

	(void)state;
	assert_int_equal(spool_open(&cfg, &sp, NULL), PG_OK);
	body_fill(body, sizeof(body), 0);
	ids[0] = spool_msg_id(put_message(sp, "s@x", rcpt1, 1, body, sizeof(body), 64, &cr[0]));
	pump(sp);
	body_fill(body, sizeof(body), 1);
	ids[1] = spool_msg_id(put_message(sp, "s@x", rcpt1, 1, body, sizeof(body), 64, &cr[1]));
	pump(sp);
	spool_close(sp);
	/* cut the second message in half: a torn tail in segment 1 */
	seg_path(path, sizeof(path), dir, 1);
	f = slurp(path);
	assert_int_equal(truncate(path, (off_t)(f.len - 300)), 0);
	free(f.p);

	assert_int_equal(spool_open(&cfg, &sp, &rep), PG_OK); /* restart: segment 3 */
	assert_int_equal(rep.queued, 1);
	assert_int_equal(rep.torn, 1);
	body_fill(body, sizeof(body), 2);
	ids[2] = spool_msg_id(put_message(sp, "s@x", rcpt1, 1, body, sizeof(body), 64, &cr[2]));
	pump(sp);
	assert_int_equal(cr[2].result, PG_OK);
	spool_close(sp);

	assert_int_equal(spool_open(&cfg, &sp, &rep), PG_OK);
	assert_int_equal(rep.queued, 2);
	assert_int_equal(rep.torn, 1);
	assert_int_equal(rep.corrupt + rep.damaged, 0);
	assert_true(body_matches(sp, spool_msg_lookup(sp, ids[0]), 0, sizeof(body)));
	assert_null(spool_msg_lookup(sp, ids[1]));
	assert_true(body_matches(sp, spool_msg_lookup(sp, ids[2]), 2, sizeof(body)));
	spool_close(sp);
	rm_rf(dir);
	free(dir);
}

/*
 * A segment file with a bad header in the middle: kept, reported, the rest
 * replayed. A newest file shorter than a header is a spare whose creation a
 * crash cut short: removed quietly.
 */
static void test_bad_segment_header(void **state)
{
	char *dir = tdir_new();
	unsigned errors = 0;
	struct spool_config cfg = cfg_for(dir, &errors);
	struct commit_result cr = {0};
	struct spool *sp;
	struct spool_replay_report rep;
	char path[512];
	uint8_t junk[100];
	uint64_t id;

	(void)state;
	assert_int_equal(spool_open(&cfg, &sp, NULL), PG_OK);
	id = spool_msg_id(put_message(sp, "s@x", rcpt1, 1, (const uint8_t *)"hello", 5, 5, &cr));
	pump(sp);
	spool_close(sp);
	/* segment 2 was the spare: overwrite its header */
	memset(junk, 0xa5, sizeof(junk));
	seg_path(path, sizeof(path), dir, 2);
	spit(path, junk, sizeof(junk));
	{
		/* and a newest file too short for a header: a spare cut by a crash */
		char p9[512];

		seg_path(p9, sizeof(p9), dir, 9);
		spit(p9, junk, 10);
		assert_int_equal(spool_open(&cfg, &sp, &rep), PG_OK);
		assert_int_equal(access(p9, F_OK), -1); /* removed */
	}
	assert_int_equal(rep.bad_segments, 1);
	assert_int_equal(rep.queued, 1);
	assert_true(body_matches(sp, spool_msg_lookup(sp, id), 0, 0) == 0); /* not seed 0 */
	{
		size_t n;
		char got[8];

		assert_int_equal(
		    spool_read_body(sp, spool_msg_lookup(sp, id), got, sizeof(got), &n), PG_OK);
		assert_memory_equal(got, "hello", 5);
	}
	spool_close(sp);
	assert_int_equal(access(path, F_OK), 0); /* kept for the operator */
	rm_rf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_torn_tail_every_offset),
	    cmocka_unit_test(test_corruption_middle),
	    cmocka_unit_test(test_torn_then_restart),
	    cmocka_unit_test(test_bad_segment_header),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
