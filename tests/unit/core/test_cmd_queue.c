/*
 * test_cmd_queue.c - `posternctl queue` end to end without a NIC: a
 * worker with a real spool (in /var/tmp, fdatasync on a disk) and a worker
 * without one answer CMD_QUEUE on the command rings of a real region
 * (dp_cmd_poll), and posternd's side (ctl_queue.c, dpreq.c, ctl_wait.c)
 * asks and renders: list, show, hold, release, flush and delete, and the
 * ids that must not be found (another worker's, a message still being
 * received, one deleted).
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cmd.h"
#include "ctl_queue.h"
#include "ctl_wait.h"
#include "dpreq.h"
#include "result.h"
#include "shm.h"
#include "spool_test.h"
#include "worker.h"
#include "relay/outbound.h"

struct fixture {
	char name[64];
	char *dir;
	struct shm_map control, dp;
	struct dpreq_table t;
	struct worker *w[2]; /* w[0] has the spool, w[1] none (no SMTP service) */
	struct spool *sp;
	char out[16384];
};

static struct fixture fx;

static int setup(void **state)
{
	struct spool_config cfg;
	struct spool_replay_report rep;
	char err[512];

	(void)state;
	memset(&fx, 0, sizeof(fx));
	snprintf(fx.name, sizeof(fx.name), "pg-test-cmdq-%d", (int)getpid());
	shm_unlink_name(fx.name);
	if (shm_open_control(fx.name, 64 << 10, &fx.control, err, sizeof(err)) != PG_OK ||
	    shm_attach(fx.name, &fx.dp, err, sizeof(err)) != PG_OK) {
		fprintf(stderr, "region: %s\n", err);
		return -1;
	}
	atomic_store(&fx.control.region->dp.pid, (int32_t)getpid());
	atomic_store(&fx.control.region->dp.state, SHM_DP_READY);
	fx.control.region->dp.nworkers = 2;
	dpreq_init(&fx.t, 1);
	fx.dir = tdir_new();
	cfg = cfg_for(fx.dir, NULL);
	cfg.worker = 0;
	if (spool_open(&cfg, &fx.sp, &rep) != PG_OK)
		return -1;
	for (unsigned i = 0; i < 2; i++) {
		fx.w[i] = aligned_alloc(64, sizeof(struct worker));
		if (fx.w[i] == NULL)
			return -1;
		worker_init_detached(fx.w[i], i, 2, NULL);
		fx.w[i]->shm = &fx.dp;
	}
	fx.w[0]->spool = fx.sp;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (unsigned i = 0; i < 2; i++) {
		outbound_destroy(fx.w[i]);
		free(fx.w[i]);
	}
	spool_close(fx.sp);
	rm_rf(fx.dir);
	free(fx.dir);
	shm_detach(&fx.dp);
	shm_detach(&fx.control);
	shm_unlink_name(fx.name);
	return 0;
}

/*
 * One command as posternd runs it: the words after "queue", the workers'
 * loop passes, posternd's poll. Returns the verdict; the text in fx.out.
 */
static const char *run(const char *words)
{
	char line[256], *argv[16], *save = NULL, *word;
	struct ctl_wait cw;
	struct ctl_buf b = {0};
	const char *verdict;
	int argc = 0;

	snprintf(line, sizeof(line), "%s", words);
	for (word = strtok_r(line, " ", &save); word != NULL; word = strtok_r(NULL, " ", &save))
		argv[argc++] = word;
	verdict = ctl_queue_start(&cw, &fx.t, fx.control.region, argc, argv, shm_now_ns(), &b);
	if (verdict == NULL) {
		assert_int_equal(dp_cmd_poll(fx.w[0]), 1);
		assert_int_equal(dp_cmd_poll(fx.w[1]), 1);
		dpreq_poll(&fx.t, fx.control.region, shm_now_ns());
		verdict = ctl_wait_poll(&cw, fx.control.region, shm_now_ns(), &b);
		assert_non_null(verdict); /* both answered in this pass */
	}
	snprintf(fx.out, sizeof(fx.out), "%s", b.p != NULL ? b.p : "");
	ctl_buf_free(&b);
	spool_poll(fx.sp);
	return verdict;
}

static struct spool_msg *put(const char *sender, const char *const *rcpts, uint32_t nrcpt,
                             size_t len)
{
	uint8_t body[4096];
	struct commit_result cr = {0};
	struct spool_msg *m;

	body_fill(body, len, len);
	m = put_message(fx.sp, sender, rcpts, nrcpt, body, len, len, &cr);
	assert_non_null(m);
	pump(fx.sp);
	assert_int_equal(cr.calls, 1);
	assert_int_equal(cr.result, PG_OK);
	return m;
}

static char *idstr(struct spool_msg *m, char buf[SPOOL_ID_STRLEN])
{
	return spool_id_str(spool_msg_id(m), buf);
}

static void test_queue_commands(void **state)
{
	static const char *const r1[] = {"bob@example.net", "carol@example.net"};
	static const char *const r2[] = {"postmaster@example.org"};
	char longsender[120], longrcpt[200], cmd[128], want[1024];
	char id1[SPOOL_ID_STRLEN], id2[SPOOL_ID_STRLEN], id3[SPOOL_ID_STRLEN];
	const char *r3[1] = {longrcpt};
	struct spool_msg *m1, *m2, *m3, *receiving = NULL;
	struct spool_envelope env = {.sender = "eve@example.com", .rcpts = r2, .nrcpt = 1};

	(void)state;
	/* an empty queue; and no spool at all on worker 1 */
	assert_string_equal(run("list"), "ok");
	assert_string_equal(fx.out, "Mail queue is empty\n");

	memset(longsender, 's', 100);
	snprintf(longsender + 100, 20, "@example.com");
	memset(longrcpt, 'r', 180);
	snprintf(longrcpt + 180, 20, "@example.net");
	m1 = put("alice@example.com", r1, 2, 1000);
	m2 = put("", r2, 1, 10);
	m3 = put(longsender, r3, 1, 3000);
	idstr(m1, id1);
	idstr(m2, id2);
	idstr(m3, id3);
	assert_int_equal(spool_queue_count(fx.sp), 3);

	/* list: arrival order (same second: by id), mailq's total */
	assert_string_equal(run("list"), "ok");
	snprintf(want, sizeof(want),
	         "Queue ID               Size  Arrival                  Rcpt  Next attempt"
	         "          Sender\n"
	         "%s       1000  2023-11-14T22:13:20Z      2/2  now                   "
	         "<alice@example.com>\n"
	         "%s         10  2023-11-14T22:13:20Z      1/1  now                   <>\n"
	         "%s       3000  2023-11-14T22:13:20Z      1/1  now                   "
	         "<ssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssssss...>\n"
	         "-- 4 Kbytes in 3 Requests.\n",
	         id1, id2, id3);
	assert_string_equal(fx.out, want);
	assert_string_equal(run("list --max=1"), "ok");
	assert_non_null(strstr(fx.out, "... and 2 more; use --max N (at most 1016 per worker)\n"
	                               "-- 1 Kbytes in 1 Requests listed, 3 queued.\n"));
	assert_string_equal(run("list --json --max=0"), "ok");
	assert_string_equal(fx.out, "{\"messages\":[],\"listed\":0,\"queued\":3,\"bytes\":0,"
	                            "\"truncated\":true,\"workers\":[{\"worker\":0,\"answered\":"
	                            "true,\"queued\":3,\"truncated\":true},{\"worker\":1,"
	                            "\"answered\":true,\"queued\":0,\"truncated\":false}],"
	                            "\"complete\":true}\n");

	/* show: the whole sender and recipients, done ones marked */
	assert_int_equal(spool_msg_delivered(fx.sp, m1, 0), PG_OK);
	snprintf(cmd, sizeof(cmd), "show %s", id1);
	assert_string_equal(run(cmd), "ok");
	snprintf(want, sizeof(want),
	         "id:           %s\n"
	         "worker:       0\n"
	         "state:        queued\n"
	         "arrival:      2023-11-14T22:13:20Z\n"
	         "size:         1000 bytes\n"
	         "sender:       <alice@example.com>\n"
	         "attempts:     0\n"
	         "next attempt: now\n"
	         "last reply:   (none)\n"
	         "recipients:   2, 1 done\n"
	         "  done     <bob@example.net>\n"
	         "  pending  <carol@example.net>\n",
	         id1);
	assert_string_equal(fx.out, want);
	snprintf(cmd, sizeof(cmd), "show %s --json", id3);
	assert_string_equal(run(cmd), "ok");
	snprintf(want, sizeof(want), "\"sender\":\"%s\",\"sender_truncated\":false,", longsender);
	assert_non_null(strstr(fx.out, want));
	snprintf(want, sizeof(want), "\"recipient_list\":[{\"address\":\"%s\",\"done\":false}]",
	         longrcpt);
	assert_non_null(strstr(fx.out, want));

	/* hold, again, flush of a held one, release, again; mailq's '!' */
	snprintf(cmd, sizeof(cmd), "hold %s", id1);
	assert_string_equal(run(cmd), "ok");
	snprintf(want, sizeof(want), "%s: held\n", id1);
	assert_string_equal(fx.out, want);
	assert_true(spool_msg_held(m1));
	assert_string_equal(run(cmd), "ok");
	snprintf(want, sizeof(want), "%s: already held\n", id1);
	assert_string_equal(fx.out, want);
	assert_string_equal(run("list"), "ok");
	snprintf(want, sizeof(want), "%s!      1000  2023-11-14T22:13:20Z      1/2  held ", id1);
	assert_non_null(strstr(fx.out, want));
	snprintf(cmd, sizeof(cmd), "flush %s", id1);
	assert_string_equal(run(cmd), "ok");
	snprintf(want, sizeof(want), "%s: on hold, not flushed (release it first)\n", id1);
	assert_string_equal(fx.out, want);
	snprintf(cmd, sizeof(cmd), "release %s*", id1); /* pasted from mailq */
	assert_string_equal(run(cmd), "ok");
	snprintf(want, sizeof(want), "%s: released\n", id1);
	assert_string_equal(fx.out, want);
	assert_false(spool_msg_held(m1));
	assert_string_equal(run(cmd), "ok");
	snprintf(want, sizeof(want), "%s: was not held\n", id1);
	assert_string_equal(fx.out, want);

	/* a deferred message: shown with its next attempt, flushed to now */
	{
		struct timespec ts;
		uint64_t later;

		clock_gettime(CLOCK_REALTIME, &ts);
		later = ((uint64_t)ts.tv_sec + 3600) * 1000000000ull;
		assert_int_equal(spool_msg_defer(fx.sp, m2, later, 1), PG_OK);
	}
	snprintf(cmd, sizeof(cmd), "show %s", id2);
	assert_string_equal(run(cmd), "ok");
	assert_non_null(strstr(fx.out, "state:        deferred\n"));
	assert_non_null(strstr(fx.out, "sender:       <>\n"));
	assert_non_null(strstr(fx.out, "attempts:     1\n"));
	assert_non_null(strstr(fx.out, " s)\nlast reply:"));
	snprintf(cmd, sizeof(cmd), "flush %s --json", id2);
	assert_string_equal(run(cmd), "ok");
	snprintf(want, sizeof(want),
	         "{\"op\":\"flush\",\"id\":\"%s\",\"found\":true,\"worker\":0,\"result\":"
	         "\"flushed\",\"complete\":true}\n",
	         id2);
	assert_string_equal(fx.out, want);
	assert_int_equal(spool_msg_next_attempt(m2), 0);
	assert_int_equal(spool_msg_attempts(m2), 1);
	assert_string_equal(run("flush"), "ok");
	assert_string_equal(fx.out, "flushed: 3 messages due now (held ones stay held)\n");

	/* not found: a message still being received, another worker's id, garbage */
	assert_int_equal(spool_msg_begin(fx.sp, &env, &receiving), PG_OK);
	snprintf(cmd, sizeof(cmd), "delete %" PRIX64, spool_msg_id(receiving));
	assert_string_equal(run(cmd), "error");
	assert_non_null(strstr(fx.out, ": not in the queue\n"));
	spool_msg_abort(fx.sp, receiving);
	snprintf(cmd, sizeof(cmd), "show %" PRIX64, (uint64_t)(spool_msg_id(m1) | (1ull << 54)));
	assert_string_equal(run(cmd), "error");
	assert_string_equal(run("hold 12x"), "error");
	assert_non_null(strstr(fx.out, "bad queue id"));

	/* delete: gone from the spool's queue, then not found */
	snprintf(cmd, sizeof(cmd), "delete %s", id2);
	assert_string_equal(run(cmd), "ok");
	snprintf(want, sizeof(want), "%s: deleted\n", id2);
	assert_string_equal(fx.out, want);
	assert_int_equal(spool_queue_count(fx.sp), 2);
	assert_string_equal(run(cmd), "error");
	snprintf(want, sizeof(want), "%s: not in the queue\n", id2);
	assert_string_equal(fx.out, want);
	assert_string_equal(run("list"), "ok");
	assert_null(strstr(fx.out, id2));
	assert_non_null(strstr(fx.out, "-- 4 Kbytes in 2 Requests.\n"));
	pump(fx.sp);
}

/* A dataplane whose worker 1 does not take requests: list says so, exit 4. */
static void test_silent_worker(void **state)
{
	struct ctl_wait cw;
	struct ctl_buf b = {0};
	char *argv[] = {"list"};
	const char *verdict;

	(void)state;
	assert_null(ctl_queue_start(&cw, &fx.t, fx.control.region, 1, argv, 0, &b));
	assert_int_equal(dp_cmd_poll(fx.w[0]), 1);
	dpreq_poll(&fx.t, fx.control.region, 1);
	assert_null(ctl_wait_poll(&cw, fx.control.region, 1, &b));
	dpreq_poll(&fx.t, fx.control.region, 1 + DPREQ_TIMEOUT_NS);
	verdict = ctl_wait_poll(&cw, fx.control.region, 1 + DPREQ_TIMEOUT_NS, &b);
	assert_string_equal(verdict, "notready");
	assert_non_null(strstr(b.p, "worker 1: no answer\n"));
	ctl_buf_free(&b);
	/* the late request is still on worker 1's ring: its answer is a stray */
	assert_int_equal(dp_cmd_poll(fx.w[1]), 1);
	dpreq_poll(&fx.t, fx.control.region, 2 + DPREQ_TIMEOUT_NS);
	assert_int_equal(fx.t.stray, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_queue_commands),
	    cmocka_unit_test(test_silent_worker),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
