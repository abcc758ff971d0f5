/*
 * test_spool_fault.c - write and fdatasync errors: the pending commits get
 * errors (never a false success), the spool goes to SPOOL_FAILED and says
 * why, committed messages stay readable and nothing acknowledged is lost;
 * after a failed fdatasync the segment is never written again (fsyncgate);
 * on resume the failed commits are recorded as aborted so a replay cannot
 * resurrect a message whose sender was told 4xx. Errors are injected with
 * the test-only completion hook, and a real ENOSPC comes from a 1 MiB tmpfs
 * when mounting one is allowed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mount.h>

#include <cmocka.h>

#include "spool_test.h"

static const char *const rcpt1[] = {"r@example.net"};

struct inject {
	bool armed;
	enum spool_io_op op;
	int err;
	unsigned hits;
};

static int inject_hook(enum spool_io_op op, int res, void *owner)
{
	struct inject *in = owner;

	if (!in->armed || op != in->op || res < 0)
		return res;
	in->hits++;
	return -in->err;
}

static void run_failure(enum spool_io_op op, int err)
{
	enum { OK = 5, BAD = 3 };
	char *dir = tdir_new();
	unsigned errors = 0;
	struct spool_config cfg = cfg_for(dir, &errors);
	struct inject in = {.op = op, .err = err};
	struct commit_result ok[OK + 1], bad[BAD];
	uint64_t ok_ids[OK + 1], bad_ids[BAD];
	struct spool_replay_report rep;
	struct spool_envelope env = {.sender = "s@x", .rcpts = rcpt1, .nrcpt = 1};
	struct spool_msg *m;
	struct spool *sp;
	uint8_t body[5000];
	int r;

	memset(ok, 0, sizeof(ok));
	memset(bad, 0, sizeof(bad));
	cfg.io_hook = inject_hook;
	cfg.io_hook_arg = &in;
	assert_int_equal(spool_open(&cfg, &sp, NULL), PG_OK);
	pump(sp);
	for (int i = 0; i < OK; i++) {
		body_fill(body, sizeof(body), (uint64_t)i);
		ok_ids[i] =
		    spool_msg_id(put_message(sp, "s@x", rcpt1, 1, body, sizeof(body), 999, &ok[i]));
	}
	pump(sp);
	for (int i = 0; i < OK; i++)
		assert_int_equal(ok[i].result, PG_OK);

	in.armed = true;
	for (int i = 0; i < BAD; i++) {
		body_fill(body, sizeof(body), 100 + (uint64_t)i);
		bad_ids[i] = spool_msg_id(
		    put_message(sp, "s@x", rcpt1, 1, body, sizeof(body), 999, &bad[i]));
	}
	/* a message being received when the failure hits */
	assert_int_equal(spool_msg_begin(sp, &env, &m), PG_OK);
	pump(sp);
	assert_true(in.hits >= 1);
	for (int i = 0; i < BAD; i++) {
		assert_int_equal(bad[i].calls, 1);
		assert_int_equal(bad[i].result, PG_ERROR);
		assert_int_equal(bad[i].err, err);
	}
	assert_int_equal(spool_state(sp), SPOOL_FAILED);
	assert_int_equal(spool_errno(sp), err);
	assert_true(errors >= 1); /* clearly reported */
	assert_int_equal(spool_msg_append(sp, m, body, 10), PG_ERROR);
	spool_msg_abort(sp, m);
	assert_int_equal(spool_msg_begin(sp, &env, &m), PG_ERROR);
	/* committed mail is still there and still deliverable */
	assert_int_equal(spool_queue_count(sp), OK);
	for (int i = 0; i < OK; i++)
		assert_true(
		    body_matches(sp, spool_msg_lookup(sp, ok_ids[i]), (uint64_t)i, sizeof(body)));
	assert_int_equal(spool_msg_delivered(sp, spool_msg_lookup(sp, ok_ids[0]), SPOOL_RCPT_ALL),
	                 PG_OK);

	/* the disk recovers: resume on a fresh segment */
	in.armed = false;
	for (int i = 0; i < 100000 && (r = spool_resume(sp)) == PG_AGAIN; i++)
		pump(sp);
	assert_int_equal(r, PG_OK);
	assert_int_equal(spool_state(sp), SPOOL_ACTIVE);
	body_fill(body, sizeof(body), 50);
	m = put_message(sp, "s@x", rcpt1, 1, body, sizeof(body), 999, &ok[OK]);
	ok_ids[OK] = spool_msg_id(m);
	pump(sp);
	assert_int_equal(ok[OK].result, PG_OK);
	/* never again into the segment that failed */
	assert_true(((ok_ids[OK] >> 24) & 0x3fffffff) != ((bad_ids[0] >> 24) & 0x3fffffff));
	spool_close(sp);

	/* restart: every acknowledged message, none of the refused ones */
	cfg.io_hook = NULL;
	assert_int_equal(spool_open(&cfg, &sp, &rep), PG_OK);
	assert_int_equal(rep.corrupt + rep.damaged, 0);
	assert_int_equal(rep.queued, OK);
	assert_null(spool_msg_lookup(sp, ok_ids[0])); /* delivered while failed */
	for (int i = 1; i < OK; i++)
		assert_true(
		    body_matches(sp, spool_msg_lookup(sp, ok_ids[i]), (uint64_t)i, sizeof(body)));
	assert_true(body_matches(sp, spool_msg_lookup(sp, ok_ids[OK]), 50, sizeof(body)));
	for (int i = 0; i < BAD; i++)
		assert_null(spool_msg_lookup(sp, bad_ids[i]));
	spool_close(sp);
	rm_rf(dir);
	free(dir);
}

static void test_write_enospc(void **state)
{
	(void)state;
	run_failure(SPOOL_IO_WRITE, ENOSPC);
}

static void test_write_eio(void **state)
{
	(void)state;
	run_failure(SPOOL_IO_WRITE, EIO);
}

static void test_fsync_eio(void **state)
{
	(void)state;
	run_failure(SPOOL_IO_FSYNC, EIO);
}

/* The next segment cannot be created (disk full at rotation). */
static void test_create_enospc(void **state)
{
	char *dir = tdir_new();
	struct spool_config cfg = cfg_for(dir, NULL);
	struct inject in = {.op = SPOOL_IO_CREATE, .err = ENOSPC, .armed = true};
	struct commit_result cr[40];
	struct spool *sp;
	struct spool_replay_report rep;
	uint8_t body[20000];
	unsigned acked = 0, refused = 0;
	uint64_t ids[40];

	(void)state;
	memset(cr, 0, sizeof(cr));
	cfg.segment_size = 128u << 10;
	cfg.chunk_size = 8u << 10;
	cfg.batch_size = 16u << 10;
	cfg.io_hook = inject_hook;
	cfg.io_hook_arg = &in;
	assert_int_equal(spool_open(&cfg, &sp, NULL), PG_OK); /* spare creation fails */
	for (int i = 0; i < 40; i++) {
		struct spool_msg *m;

		body_fill(body, sizeof(body), (uint64_t)i);
		m = put_message(sp, "s@x", rcpt1, 1, body, sizeof(body), 4000, &cr[i]);
		ids[i] = m != NULL ? spool_msg_id(m) : 0;
		pump(sp);
		if (m == NULL || cr[i].result != PG_OK)
			refused++;
		else
			acked++;
	}
	assert_true(acked >= 3 && refused >= 1);
	assert_int_equal(spool_state(sp), SPOOL_FAILED);
	assert_int_equal(spool_errno(sp), ENOSPC);
	spool_close(sp);
	cfg.io_hook = NULL;
	assert_int_equal(spool_open(&cfg, &sp, &rep), PG_OK);
	assert_int_equal(rep.queued, acked);
	for (int i = 0; i < 40; i++)
		if (ids[i] != 0 && cr[i].result == PG_OK)
			assert_true(body_matches(sp, spool_msg_lookup(sp, ids[i]), (uint64_t)i,
			                         sizeof(body)));
	spool_close(sp);
	rm_rf(dir);
	free(dir);
}

/* Real ENOSPC: a 1 MiB tmpfs (skipped where mounting is not allowed). */
static void test_tmpfs_enospc(void **state)
{
	char *mnt = tdir_new();
	char *copy;
	struct spool_config cfg = cfg_for(mnt, NULL);
	struct commit_result cr[200];
	uint64_t ids[200];
	struct spool *sp;
	struct spool_replay_report rep;
	uint8_t body[30000];
	unsigned acked = 0, n = 0, errs = 0;
	char cmd[1024];

	(void)state;
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=1m") != 0) {
		print_message("# tmpfs mount not allowed (%s): skipped\n", strerror(errno));
		rm_rf(mnt);
		free(mnt);
		skip();
	}
	memset(cr, 0, sizeof(cr));
	cfg.segment_size = 256u << 10;
	cfg.chunk_size = 8u << 10;
	cfg.batch_size = 64u << 10;
	assert_int_equal(spool_open(&cfg, &sp, NULL), PG_OK);
	for (n = 0; n < 200; n++) {
		struct spool_msg *m;

		body_fill(body, sizeof(body), n);
		m = put_message(sp, "s@x", rcpt1, 1, body, sizeof(body), 3000, &cr[n]);
		if (m == NULL)
			break;
		ids[n] = spool_msg_id(m);
		pump(sp);
		if (cr[n].result != PG_OK) {
			assert_int_equal(cr[n].err, ENOSPC);
			errs++;
			break;
		}
		acked++;
	}
	print_message("# tmpfs 1 MiB: %u messages acknowledged, then %s\n", acked,
	              strerror(spool_errno(sp)));
	assert_int_equal(spool_state(sp), SPOOL_FAILED);
	assert_int_equal(spool_errno(sp), ENOSPC);
	assert_true(acked >= 10);
	spool_close(sp);
	/* replay a copy on a disk with room: every acknowledged message is there */
	copy = tdir_new();
	snprintf(cmd, sizeof(cmd), "cp -a %s/w3 %s/", mnt, copy);
	assert_int_equal(system(cmd), 0);
	umount(mnt);
	cfg.dir = copy;
	assert_int_equal(spool_open(&cfg, &sp, &rep), PG_OK);
	assert_int_equal(rep.corrupt + rep.damaged, 0);
	assert_true(rep.queued >= acked); /* the refused one may be there too (at least once) */
	for (unsigned i = 0; i < acked; i++)
		assert_true(body_matches(sp, spool_msg_lookup(sp, ids[i]), i, sizeof(body)));
	spool_close(sp);
	(void)errs;
	rm_rf(copy);
	free(copy);
	rm_rf(mnt);
	free(mnt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_write_enospc), cmocka_unit_test(test_write_eio),
	    cmocka_unit_test(test_fsync_eio),    cmocka_unit_test(test_create_enospc),
	    cmocka_unit_test(test_tmpfs_enospc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
