/*
 * test_queue.c - `posternctl queue` in posternd without a dataplane: the
 * id syntax, the request words, the CMD_QUEUE item layout, and the
 * reports (mailq-like list, show, the outcome of a change, flush of
 * everything) over answers fabricated as workers write them, including
 * workers that do not answer, truncated answers and items that lie.
 * Golden text: the lab test and scripts read these formats.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cmdring.h"
#include "ctl_queue.h"
#include "ctl_wait.h"
#include "dpreq.h"
#include "result.h"
#include "shm.h"

#define T0 1735787045ull /* 2025-01-02T03:04:05Z */

static void test_layout_and_ids(void **state)
{
	uint64_t id;

	(void)state;
	assert_int_equal(cmdring_item_size(CMD_QUEUE), 112);
	/* as many whole items as a record's payload holds, at least two */
	assert_int_equal(CMD_QUEUE_PER_RECORD, CMDRING_PAYLOAD_MAX / cmdring_item_size(CMD_QUEUE));
	assert_true(CMD_QUEUE_PER_RECORD >= 2);
	/* a worker lists what a response ring holds, less the final record */
	assert_int_equal(CTL_QUEUE_MAX, (SHM_CMD_RESP_CAPACITY - 1) * CMD_QUEUE_PER_RECORD);
	assert_string_equal(cmdring_code_name(CMD_QUEUE), "queue");
	assert_int_equal(offsetof(union cmd_queue_item, msg.kind), 0);
	assert_int_equal(offsetof(union cmd_queue_item, text.kind), 0);

	assert_int_equal(ctl_queue_id_parse("0C00000100000012", &id), PG_OK);
	assert_int_equal(id, 0x0C00000100000012ull);
	assert_int_equal(ctl_queue_id_parse("c00000100000012*", &id), PG_OK); /* from mailq */
	assert_int_equal(id, 0x0C00000100000012ull);
	assert_int_equal(ctl_queue_id_parse("ffffffffffffffff!", &id), PG_OK);
	assert_int_equal(id, UINT64_MAX);
	assert_int_equal(ctl_queue_id_parse("1", &id), PG_OK);
	assert_int_equal(ctl_queue_id_parse("", &id), PG_ERROR);
	assert_int_equal(ctl_queue_id_parse("*", &id), PG_ERROR);
	assert_int_equal(ctl_queue_id_parse("0", &id), PG_ERROR); /* never an id */
	assert_int_equal(ctl_queue_id_parse("10000000000000000", &id), PG_ERROR);
	assert_int_equal(ctl_queue_id_parse("12g4", &id), PG_ERROR);
	assert_int_equal(ctl_queue_id_parse("12**", &id), PG_ERROR);
	assert_int_equal(ctl_queue_id_parse("-1", &id), PG_ERROR);
	assert_int_equal(ctl_queue_op("release"), CMD_QUEUE_RELEASE);
	assert_int_equal(ctl_queue_op("requeue"), -1);
}

/* ---- the request words ---- */

static struct shm_region *new_region(void)
{
	struct shm_region *rg = aligned_alloc(SHM_CACHE_LINE, sizeof(*rg));

	assert_non_null(rg);
	memset(rg, 0, sizeof(*rg));
	rg->magic = SHM_MAGIC;
	rg->abi = SHM_ABI;
	return rg;
}

/* ctl_queue_start over words "a b c" */
static const char *start(struct ctl_wait *cw, struct dpreq_table *t, struct shm_region *rg,
                         const char *words, struct ctl_buf *b)
{
	char line[256], *argv[16], *save = NULL, *w;
	int argc = 0;

	snprintf(line, sizeof(line), "%s", words);
	for (w = strtok_r(line, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	return ctl_queue_start(cw, t, rg, argc, argv, 0, b);
}

static void test_request_words(void **state)
{
	static struct dpreq_table t;
	struct shm_region *rg = new_region();
	struct ctl_wait cw;
	struct ctl_buf b = {0};
	static const char *const bad[] = {
	    "",
	    "list 12",
	    "show",
	    "show 12 13",
	    "hold",
	    "requeue 12",
	    "list --max=x",
	    "show 12 --max=3",
	    "delete 12 --force",
	    "release xyz",
	};

	(void)state;
	dpreq_init(&t, 1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_string_equal(start(&cw, &t, rg, bad[i], &b), "error");
		assert_int_equal(cw.kind, CTL_WAIT_NONE);
		ctl_buf_free(&b);
	}
	/* --max: CTL_QUEUE_MAX is the most a worker can answer */
	{
		char words[64];

		snprintf(words, sizeof(words), "list --max=%lu", (unsigned long)CTL_QUEUE_MAX + 1);
		assert_string_equal(start(&cw, &t, rg, words, &b), "error");
		assert_int_equal(cw.kind, CTL_WAIT_NONE);
		ctl_buf_free(&b);
		snprintf(words, sizeof(words), "list --max=%lu", (unsigned long)CTL_QUEUE_MAX);
		assert_string_equal(start(&cw, &t, rg, words, &b), "notready");
		ctl_buf_free(&b);
	}
	assert_string_equal(start(&cw, &t, rg, "release xyz", &b), "error");
	assert_string_equal(b.p, "bad queue id \"xyz\": 1 to 16 hex digits, as queue list shows\n");
	ctl_buf_free(&b);
	/* good words, no dataplane */
	assert_string_equal(start(&cw, &t, rg, "list --max=5", &b), "notready");
	assert_string_equal(b.p, "dataplane absent: the queue cannot be reached\n");
	ctl_buf_free(&b);
	assert_string_equal(start(&cw, &t, rg, "hold 12! --json", &b), "notready");
	assert_string_equal(b.p, "{\"error\":\"dataplane absent\"}\n");
	ctl_buf_free(&b);
	free(rg);
}

/* In a real region: the request each worker gets. */
static void test_request_on_the_ring(void **state)
{
	static struct dpreq_table t;
	char name[64], err[512];
	struct shm_map control, dp;
	struct ctl_wait cw;
	struct ctl_buf b = {0};
	struct cmd_record rec;
	struct cmd_queue_req q;

	(void)state;
	snprintf(name, sizeof(name), "pg-test-queue-%d", (int)getpid());
	shm_unlink_name(name);
	assert_int_equal(shm_open_control(name, 64 << 10, &control, err, sizeof(err)), PG_OK);
	assert_int_equal(shm_attach(name, &dp, err, sizeof(err)), PG_OK);
	atomic_store(&control.region->dp.pid, (int32_t)getpid());
	atomic_store(&control.region->dp.state, SHM_DP_READY);
	control.region->dp.nworkers = 2;
	dpreq_init(&t, 100);

	assert_null(start(&cw, &t, control.region, "list --max=7 --json", &b));
	assert_int_equal(cw.kind, CTL_WAIT_QUEUE);
	assert_true(cw.json);
	for (unsigned w = 0; w < 2; w++) {
		assert_int_equal(cmdring_pop(shm_cmd_request(dp.region, w), &rec, NULL),
		                 EVRING_RECORD);
		assert_int_equal(rec.code, CMD_QUEUE);
		assert_int_equal(rec.len, sizeof(q));
		memcpy(&q, rec.payload, sizeof(q));
		assert_int_equal(q.op, CMD_QUEUE_LIST);
		assert_int_equal(q.max, 7);
		assert_int_equal(q.id, 0);
	}
	ctl_wait_cancel(&cw);

	assert_null(start(&cw, &t, control.region, "delete 0c00000100000012*", &b));
	assert_int_equal(cw.queue_op, CMD_QUEUE_DELETE);
	assert_int_equal(cw.queue_id, 0x0C00000100000012ull);
	assert_int_equal(cmdring_pop(shm_cmd_request(dp.region, 1), &rec, NULL), EVRING_RECORD);
	memcpy(&q, rec.payload, sizeof(q));
	assert_int_equal(q.op, CMD_QUEUE_DELETE);
	assert_int_equal(q.id, 0x0C00000100000012ull);
	/* the workers answer: worker 0 does not have it, worker 1 deleted it */
	for (unsigned w = 0; w < 2; w++) {
		struct cmdring_reply rp;

		if (w == 0)
			assert_int_equal(cmdring_pop(shm_cmd_request(dp.region, 0), &rec, NULL),
			                 EVRING_RECORD);
		cmdring_reply_begin(&rp, shm_cmd_response(dp.region, w), &rec, w);
		cmdring_reply_end(&rp, CMDRING_OK, w == 1 ? CMD_QUEUE_DONE : CMD_QUEUE_NOT_FOUND);
	}
	dpreq_poll(&t, control.region, 1);
	{
		struct ctl_buf out = {0};

		assert_string_equal(ctl_wait_poll(&cw, control.region, 1, &out), "ok");
		assert_string_equal(out.p, "0C00000100000012: deleted\n");
		ctl_buf_free(&out);
	}
	assert_int_equal(cw.kind, CTL_WAIT_NONE);
	shm_detach(&dp);
	shm_detach(&control);
	shm_unlink_name(name);
}

/* ---- reports over fabricated answers ---- */

static void put_item(struct dpreq_worker *dw, const void *item)
{
	size_t sz = sizeof(union cmd_queue_item);
	char *np = realloc(dw->data.p, dw->data.len + sz + 1);

	assert_non_null(np);
	dw->data.p = np;
	memcpy(dw->data.p + dw->data.len, item, sz);
	dw->data.len += sz;
	dw->data.cap = dw->data.len + 1;
	dw->data.p[dw->data.len] = '\0';
	dw->items++;
}

static struct cmd_queue_msg msg(uint64_t id, uint64_t arrival, const char *sender, uint8_t flags)
{
	struct cmd_queue_msg m;
	size_t n = strlen(sender);

	memset(&m, 0, sizeof(m));
	m.kind = CMD_QUEUE_ITEM_MSG;
	m.flags = flags;
	m.id = id;
	m.arrival = arrival;
	m.size = 1500;
	m.nrcpt = 3;
	m.ndone = 1;
	m.attempts = 2;
	if (n > sizeof(m.sender)) {
		n = sizeof(m.sender);
		m.flags |= CMD_QUEUE_F_SENDER_CUT;
	}
	memcpy(m.sender, sender, n);
	m.sender_len = (uint16_t)n;
	return m;
}

/* TEXT items of a string, as the worker writes them. */
static void put_text(struct dpreq_worker *dw, uint8_t field, uint32_t index, uint8_t flags,
                     const char *s)
{
	size_t len = strlen(s);

	do {
		struct cmd_queue_text t;
		size_t n = len < sizeof(t.text) ? len : sizeof(t.text);

		memset(&t, 0, sizeof(t));
		t.kind = CMD_QUEUE_ITEM_TEXT;
		t.field = field;
		t.index = index;
		t.flags = (uint8_t)(flags | (len > n ? CMD_QUEUE_T_MORE : 0));
		t.len = (uint8_t)n;
		memcpy(t.text, s, n);
		put_item(dw, &t);
		s += n;
		len -= n;
	} while (len > 0);
}

static void answered(struct dpreq_worker *dw, uint64_t aux)
{
	dw->state = DPREQ_DONE;
	dw->status = CMDRING_OK;
	dw->aux = aux;
}

static struct dpreq *new_req(uint32_t nworkers)
{
	static struct dpreq r;

	memset(&r, 0, sizeof(r));
	r.id = 1;
	r.code = CMD_QUEUE;
	r.nworkers = nworkers;
	return &r;
}

static void test_list_report(void **state)
{
	struct dpreq *r = new_req(2);
	struct cmd_queue_msg m;
	struct ctl_buf b = {0};
	char longsender[100], want[512];

	(void)state;
	memset(longsender, 'a', sizeof(longsender));
	snprintf(longsender + 70, 30, "@example.com");
	/* worker 0: two messages, the second held and deferred; worker 1: one active */
	answered(&r->w[0], 2);
	m = msg(0x0000000100000010ull, T0 + 60, "alice@example.com", 0);
	put_item(&r->w[0], &m);
	m = msg(0x0000000100000200ull, T0 + 120, "", CMD_QUEUE_F_HELD); /* null sender */
	m.next_attempt = T0 + 900;
	m.size = 1;
	put_item(&r->w[0], &m);
	answered(&r->w[1], 1);
	m = msg(0x0040000100000010ull, T0, longsender, CMD_QUEUE_F_ACTIVE);
	m.size = 1 << 20;
	m.sender[3] = '\033'; /* a terminal escape never reaches the terminal */
	put_item(&r->w[1], &m);

	assert_string_equal(ctl_queue_report(&b, r, CMD_QUEUE_LIST, 0, 1000, false, T0 + 300),
	                    "ok");
	assert_string_equal(
	    b.p,
	    "Queue ID               Size  Arrival                  Rcpt  Next attempt          "
	    "Sender\n"
	    "0040000100000010*   1048576  2025-01-02T03:04:05Z      2/3  active                "
	    "<aaa?aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...>\n"
	    "0000000100000010       1500  2025-01-02T03:05:05Z      2/3  now                   "
	    "<alice@example.com>\n"
	    "0000000100000200!         1  2025-01-02T03:06:05Z      2/3  held                  <>\n"
	    "-- 1026 Kbytes in 3 Requests.\n");
	ctl_buf_free(&b);

	/* --max 1, and a worker that does not answer */
	r->w[1].state = DPREQ_TIMEOUT;
	assert_string_equal(ctl_queue_report(&b, r, CMD_QUEUE_LIST, 0, 1, false, T0 + 300),
	                    "notready");
	snprintf(
	    want, sizeof(want),
	    "Queue ID               Size  Arrival                  Rcpt  Next attempt          "
	    "Sender\n"
	    "0000000100000010       1500  2025-01-02T03:05:05Z      2/3  now                   "
	    "<alice@example.com>\n"
	    "worker 1: no answer\n"
	    "... and 1 more; use --max N (at most %lu per worker)\n"
	    "-- 2 Kbytes in 1 Requests listed, 2 queued.\n",
	    (unsigned long)CTL_QUEUE_MAX);
	assert_string_equal(b.p, want);
	ctl_buf_free(&b);

	/* JSON */
	r->w[1].state = DPREQ_DONE;
	assert_string_equal(ctl_queue_report(&b, r, CMD_QUEUE_LIST, 0, 2, true, T0 + 300), "ok");
	assert_string_equal(
	    b.p,
	    "{\"messages\":[{\"id\":\"0040000100000010\",\"worker\":1,\"arrival\":1735787045,"
	    "\"size\":1048576,\"sender\":\"aaa\\u001baaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaa\",\"sender_truncated\":true,\"recipients\":3,\"recipients_done\":1,"
	    "\"attempts\":2,\"next_attempt\":0,\"held\":false,\"active\":true,"
	    "\"delete_pending\":false},{\"id\":\"0000000100000010\",\"worker\":0,\"arrival\":"
	    "1735787105,\"size\":1500,\"sender\":\"alice@example.com\",\"sender_truncated\":false,"
	    "\"recipients\":3,\"recipients_done\":1,\"attempts\":2,\"next_attempt\":0,"
	    "\"held\":false,\"active\":false,\"delete_pending\":false}],\"listed\":2,"
	    "\"queued\":3,\"bytes\":1050076,\"truncated\":true,\"workers\":[{\"worker\":0,"
	    "\"answered\":true,\"queued\":2,\"truncated\":false},{\"worker\":1,\"answered\":true,"
	    "\"queued\":1,\"truncated\":false}],\"complete\":true}\n");
	ctl_buf_free(&b);
	dpreq_free(r);

	/* empty; and a dataplane that does not know the command */
	r = new_req(2);
	answered(&r->w[0], 0);
	answered(&r->w[1], 0);
	assert_string_equal(ctl_queue_report(&b, r, CMD_QUEUE_LIST, 0, 1000, false, T0), "ok");
	assert_string_equal(b.p, "Mail queue is empty\n");
	ctl_buf_free(&b);
	r->w[1].status = CMDRING_UNKNOWN;
	assert_string_equal(ctl_queue_report(&b, r, CMD_QUEUE_LIST, 0, 1000, false, T0),
	                    "notready");
	assert_string_equal(b.p, "worker 1: the dataplane does not know this command\n"
	                         "-- 0 Kbytes in 0 Requests.\n");
	ctl_buf_free(&b);
	dpreq_free(r);
}

static void test_show_report(void **state)
{
	struct dpreq *r = new_req(2);
	struct cmd_queue_msg m;
	struct ctl_buf b = {0};
	char reply[300];

	(void)state;
	snprintf(reply, sizeof(reply), "451 4.4.1 [198.19.0.2]:25: connection refused %0200d", 7);
	answered(&r->w[0], CMD_QUEUE_NOT_FOUND);
	answered(&r->w[1], CMD_QUEUE_DONE);
	m = msg(0x0040000100000010ull, T0, "bob@example.org", 0);
	m.next_attempt = T0 + 400;
	put_item(&r->w[1], &m);
	put_text(&r->w[1], CMD_QUEUE_TEXT_SENDER, 0, 0, "bob@example.org");
	put_text(&r->w[1], CMD_QUEUE_TEXT_RCPT, 0, CMD_QUEUE_T_DONE, "carol@example.net");
	put_text(&r->w[1], CMD_QUEUE_TEXT_RCPT, 1, 0, "dave@example.net");
	put_text(&r->w[1], CMD_QUEUE_TEXT_RCPT, 2, 0, "erin@example.net");
	put_text(&r->w[1], CMD_QUEUE_TEXT_REPLY, 0, 0, reply); /* 3 pieces */
	assert_int_equal(r->w[1].items, 8);

	assert_string_equal(
	    ctl_queue_report(&b, r, CMD_QUEUE_SHOW, 0x0040000100000010ull, 0, false, T0 + 100),
	    "ok");
	{
		char want[2048];

		snprintf(want, sizeof(want),
		         "id:           0040000100000010\n"
		         "worker:       1\n"
		         "state:        deferred\n"
		         "arrival:      2025-01-02T03:04:05Z\n"
		         "size:         1500 bytes\n"
		         "sender:       <bob@example.org>\n"
		         "attempts:     2\n"
		         "next attempt: 2025-01-02T03:10:45Z (in 300 s)\n"
		         "last reply:   %s\n"
		         "recipients:   3, 1 done\n"
		         "  done     <carol@example.net>\n"
		         "  pending  <dave@example.net>\n"
		         "  pending  <erin@example.net>\n",
		         reply);
		assert_string_equal(b.p, want);
	}
	ctl_buf_free(&b);
	assert_string_equal(
	    ctl_queue_report(&b, r, CMD_QUEUE_SHOW, 0x0040000100000010ull, 0, true, T0 + 100),
	    "ok");
	assert_non_null(strstr(b.p, "{\"message\":{\"id\":\"0040000100000010\",\"worker\":1,"));
	assert_non_null(strstr(b.p, ",\"recipient_list\":[{\"address\":\"carol@example.net\","
	                            "\"done\":true},{\"address\":\"dave@example.net\",\"done\":"
	                            "false},{\"address\":\"erin@example.net\",\"done\":false}],"
	                            "\"last_reply\":\"451 4.4.1 "));
	assert_non_null(strstr(b.p, "7\"},\"truncated\":false}\n"));
	ctl_buf_free(&b);

	/* lies: a recipient index out of range, a second copy, a kind never defined */
	{
		union cmd_queue_item junk;

		put_text(&r->w[1], CMD_QUEUE_TEXT_RCPT, 9, 0, "mallory@example.com");
		put_text(&r->w[1], CMD_QUEUE_TEXT_RCPT, 1, 0, "mallory@example.com");
		memset(&junk, 0x41, sizeof(junk));
		put_item(&r->w[1], &junk);
	}
	assert_string_equal(
	    ctl_queue_report(&b, r, CMD_QUEUE_SHOW, 0x0040000100000010ull, 0, false, T0 + 100),
	    "ok");
	assert_null(strstr(b.p, "mallory"));
	ctl_buf_free(&b);

	/* a recipient cut off by a full ring */
	dpreq_free(r);
	r = new_req(1);
	answered(&r->w[0], CMD_QUEUE_DONE);
	r->w[0].truncated = true;
	m = msg(0x0000000100000010ull, T0, "bob@example.org", CMD_QUEUE_F_HELD);
	put_item(&r->w[0], &m);
	put_text(&r->w[0], CMD_QUEUE_TEXT_SENDER, 0, 0, "bob@example.org");
	put_text(&r->w[0], CMD_QUEUE_TEXT_RCPT, 0, 0, "carol@example.net");
	assert_string_equal(
	    ctl_queue_report(&b, r, CMD_QUEUE_SHOW, 0x0000000100000010ull, 0, false, T0 + 100),
	    "ok");
	assert_non_null(strstr(b.p, "state:        held\n"));
	assert_non_null(strstr(b.p, "next attempt: held\n"));
	assert_non_null(strstr(b.p, "last reply:   (none)\n"));
	assert_non_null(strstr(b.p, "  pending  <carol@example.net>\n"
	                            "(answer cut short: the response ring was full)\n"));
	ctl_buf_free(&b);
	/* not even the message item came */
	free(r->w[0].data.p);
	memset(&r->w[0].data, 0, sizeof(r->w[0].data));
	assert_string_equal(
	    ctl_queue_report(&b, r, CMD_QUEUE_SHOW, 0x0000000100000010ull, 0, false, T0 + 100),
	    "error");
	assert_string_equal(b.p, "0000000100000010: answer cut short, try again\n");
	ctl_buf_free(&b);
	dpreq_free(r);
}

static void test_change_reports(void **state)
{
	static const struct {
		uint8_t op;
		uint64_t aux;
		const char *verdict, *text, *result;
	} rows[] = {
	    {CMD_QUEUE_FLUSH, CMD_QUEUE_DONE, "ok", "flushed: due now", "flushed"},
	    {CMD_QUEUE_FLUSH, CMD_QUEUE_UNCHANGED, "ok", "on hold, not flushed (release it first)",
	     "held, not flushed"},
	    {CMD_QUEUE_DELETE, CMD_QUEUE_DONE, "ok", "deleted", "deleted"},
	    {CMD_QUEUE_DELETE, CMD_QUEUE_PENDING, "ok",
	     "delete pending: a delivery attempt is running; the message is deleted when it ends",
	     "delete pending"},
	    {CMD_QUEUE_DELETE, CMD_QUEUE_FAILED, "error",
	     "not changed: the spool refused (see the dataplane's log)", "failed"},
	    {CMD_QUEUE_HOLD, CMD_QUEUE_DONE, "ok", "held", "held"},
	    {CMD_QUEUE_HOLD, CMD_QUEUE_UNCHANGED, "ok", "already held", "already held"},
	    {CMD_QUEUE_HOLD, CMD_QUEUE_FAILED, "error",
	     "not changed: the spool refused (see the dataplane's log)", "failed"},
	    {CMD_QUEUE_RELEASE, CMD_QUEUE_DONE, "ok", "released", "released"},
	    {CMD_QUEUE_RELEASE, CMD_QUEUE_UNCHANGED, "ok", "was not held", "not held"},
	    {CMD_QUEUE_RELEASE, 77, "error", "unexpected answer 77 from worker 1",
	     "unexpected answer"},
	    {CMD_QUEUE_HOLD, CMD_QUEUE_PENDING, "error", "unexpected answer 2 from worker 1",
	     "unexpected answer"},
	};
	struct ctl_buf b = {0};
	char want[256];

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct dpreq *r = new_req(3);

		answered(&r->w[0], CMD_QUEUE_NOT_FOUND);
		answered(&r->w[1], rows[i].aux);
		r->w[2].state = DPREQ_TIMEOUT; /* the owner answered: that is enough */
		assert_string_equal(ctl_queue_report(&b, r, rows[i].op, 0x40ull, 0, false, T0),
		                    rows[i].verdict);
		snprintf(want, sizeof(want), "0000000000000040: %s\n", rows[i].text);
		assert_string_equal(b.p, want);
		ctl_buf_free(&b);
		assert_string_equal(ctl_queue_report(&b, r, rows[i].op, 0x40ull, 0, true, T0),
		                    rows[i].verdict);
		snprintf(want, sizeof(want), "\"found\":true,\"worker\":1,\"result\":\"%s\"",
		         rows[i].result);
		assert_non_null(strstr(b.p, want));
		ctl_buf_free(&b);
	}
}

static void test_not_found_and_flush_all(void **state)
{
	struct dpreq *r = new_req(2);
	struct ctl_buf b = {0};

	(void)state;
	answered(&r->w[0], CMD_QUEUE_NOT_FOUND);
	answered(&r->w[1], CMD_QUEUE_NOT_FOUND);
	/* nobody has it: exit 1, like policy show of a missing entry */
	assert_string_equal(ctl_queue_report(&b, r, CMD_QUEUE_HOLD, 0x12, 0, false, T0), "error");
	assert_string_equal(b.p, "0000000000000012: not in the queue\n");
	ctl_buf_free(&b);
	assert_string_equal(ctl_queue_report(&b, r, CMD_QUEUE_SHOW, 0x12, 0, true, T0), "error");
	assert_string_equal(b.p, "{\"op\":\"show\",\"id\":\"0000000000000012\",\"found\":false,"
	                         "\"unanswered\":[],\"complete\":true}\n");
	ctl_buf_free(&b);
	/* perhaps on the worker that did not answer: exit 4 */
	r->w[1].state = DPREQ_UNSENT;
	assert_string_equal(ctl_queue_report(&b, r, CMD_QUEUE_DELETE, 0x12, 0, false, T0),
	                    "notready");
	assert_string_equal(b.p,
	                    "worker 1: not taking requests\n"
	                    "0000000000000012: not in the queue of the workers that answered\n");
	ctl_buf_free(&b);

	/* flush of everything: the counts add up */
	answered(&r->w[0], 3);
	answered(&r->w[1], 4);
	assert_string_equal(ctl_queue_report(&b, r, CMD_QUEUE_FLUSH, 0, 0, false, T0), "ok");
	assert_string_equal(b.p, "flushed: 7 messages due now (held ones stay held)\n");
	ctl_buf_free(&b);
	r->w[1].state = DPREQ_TIMEOUT;
	assert_string_equal(ctl_queue_report(&b, r, CMD_QUEUE_FLUSH, 0, 0, true, T0), "notready");
	assert_string_equal(b.p, "{\"op\":\"flush\",\"flushed\":3,\"unanswered\":[{\"worker\":1,"
	                         "\"note\":\"no answer\"}],\"complete\":false}\n");
	ctl_buf_free(&b);
	dpreq_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_layout_and_ids),
	    cmocka_unit_test(test_request_words),
	    cmocka_unit_test(test_request_on_the_ring),
	    cmocka_unit_test(test_list_report),
	    cmocka_unit_test(test_show_report),
	    cmocka_unit_test(test_change_reports),
	    cmocka_unit_test(test_not_found_and_flush_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
