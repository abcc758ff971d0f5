/*
 * test_cmdring.c - the control → dataplane command channel: answer
 * records on evring rings (one record, several with the MORE flag, a full
 * ring that truncates and still ends with a final record, bounding what
 * another process wrote), the layout of the rings in a real region,
 * posternd's request table (answers of worker threads gathered across
 * threads, deadlines, a worker that never answers, full request rings, a
 * full table, lost records, late answers counted as strays), and the
 * reports built on it: adoption waits with their latency, session lists.
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
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <cmocka.h>

#include "cmdring.h"
#include "ctl_wait.h"
#include "dpreq.h"
#include "result.h"
#include "shm.h"

#define MS 1000000ull
#define PER_RECORD ((uint32_t)CMD_SESSIONS_PER_RECORD) /* session items in one record */

static struct evring *new_ring(uint32_t cap)
{
	struct evring *r = aligned_alloc(EVRING_CACHE_LINE, evring_bytes(cap));

	assert_non_null(r);
	memset(r, 0xa5, evring_bytes(cap));
	evring_init(r, cap);
	return r;
}

static struct cmd_record request(uint64_t id, uint16_t code, uint32_t max)
{
	struct cmd_record rec;
	struct cmd_sessions_req q = {.max = max};

	memset(&rec, 0, sizeof(rec));
	rec.id = id;
	rec.code = code;
	rec.len = sizeof(q);
	memcpy(rec.payload, &q, sizeof(q));
	return rec;
}

/* The session item number i of an answer: fields derived from (tag, i). */
static struct cmd_session fake_session(uint32_t tag, uint32_t i)
{
	struct cmd_session s;

	memset(&s, 0, sizeof(s));
	s.age_ns = (uint64_t)tag << 32 | i;
	s.laddr = tag;
	s.lport = (uint16_t)i;
	s.bytes_in = i * 3;
	snprintf(s.state, sizeof(s.state), "ESTABLISHED");
	return s;
}

/* Answer req with n fake sessions, as a worker would. */
static void answer(struct evring *resp, const struct cmd_record *req, uint32_t worker, uint32_t n,
                   uint32_t tag)
{
	struct cmdring_reply rp;

	cmdring_reply_begin(&rp, resp, req, worker);
	for (uint32_t i = 0; i < n; i++) {
		struct cmd_session s = fake_session(tag, i);

		if (!cmdring_reply_add(&rp, &s, sizeof(s)))
			break;
	}
	cmdring_reply_end(&rp, CMDRING_OK, n);
}

/* Pop a whole answer; returns the items seen, checks seq, flags and ids. */
static uint32_t pop_answer(struct evring *resp, uint64_t id, uint32_t tag, bool *truncated,
                           unsigned *records)
{
	struct cmd_record rec;
	uint32_t items = 0;

	*records = 0;
	for (;;) {
		assert_int_equal(cmdring_pop(resp, &rec, NULL), EVRING_RECORD);
		assert_int_equal(rec.id, id);
		assert_int_equal(rec.code, CMD_SESSIONS);
		assert_int_equal(rec.seq, *records);
		assert_int_equal(rec.len, rec.count * sizeof(struct cmd_session));
		for (uint32_t k = 0; k < rec.count; k++) {
			struct cmd_session got, want = fake_session(tag, items + k);

			memcpy(&got, rec.payload + k * sizeof(got), sizeof(got));
			assert_memory_equal(&got, &want, sizeof(got));
		}
		items += rec.count;
		(*records)++;
		if (!(rec.flags & CMDRING_F_MORE)) {
			*truncated = (rec.flags & CMDRING_F_TRUNCATED) != 0;
			return items;
		}
		assert_int_equal(rec.flags & CMDRING_F_TRUNCATED, 0);
	}
}

static void test_one_and_many_records(void **state)
{
	struct evring *resp = new_ring(64);
	struct cmd_record req = request(7, CMD_SESSIONS, 1000);
	bool trunc;
	unsigned records;

	(void)state;
	/* as many whole items as a record's payload holds; several, or lists are slow */
	assert_int_equal(CMD_SESSIONS_PER_RECORD, CMDRING_PAYLOAD_MAX / sizeof(struct cmd_session));
	assert_true(CMD_SESSIONS_PER_RECORD >= 4);
	/* an empty answer is one final record */
	answer(resp, &req, 0, 0, 1);
	assert_int_equal(pop_answer(resp, 7, 1, &trunc, &records), 0);
	assert_int_equal(records, 1);
	assert_false(trunc);
	/* exactly one record's worth */
	answer(resp, &req, 0, PER_RECORD, 2);
	assert_int_equal(pop_answer(resp, 7, 2, &trunc, &records), PER_RECORD);
	assert_int_equal(records, 1);
	/* 12 records' worth and one item: 13 records, in order, the last one final */
	answer(resp, &req, 0, 12 * PER_RECORD + 1, 3);
	assert_int_equal(pop_answer(resp, 7, 3, &trunc, &records), 12 * PER_RECORD + 1);
	assert_int_equal(records, 13);
	assert_false(trunc);
	assert_true(evring_empty(resp));
	assert_int_equal(atomic_load(&resp->dropped), 0);
	free(resp);
}

static void test_full_ring_truncates(void **state)
{
	struct evring *resp = new_ring(4);
	struct cmd_record req = request(9, CMD_SESSIONS, 1000), rec;
	struct cmdring_reply rp;
	bool trunc;
	unsigned records;

	(void)state;
	/*
	 * One item more than 4 slots hold: three MORE records, the fourth slot
	 * for the final one, the last item left out
	 */
	answer(resp, &req, 2, 4 * PER_RECORD + 1, 5);
	assert_int_equal(evring_space(resp), 0);
	assert_int_equal(pop_answer(resp, 9, 5, &trunc, &records), 4 * PER_RECORD);
	assert_int_equal(records, 4);
	assert_true(trunc);

	/* one slot left: only the final record, with what fits in it */
	for (unsigned i = 0; i < 3; i++)
		assert_true(cmdring_push(resp, &req));
	assert_int_equal(evring_space(resp), 1);
	answer(resp, &req, 2, PER_RECORD + 1, 6);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(cmdring_pop(resp, &rec, NULL), EVRING_RECORD);
	assert_int_equal(pop_answer(resp, 9, 6, &trunc, &records), PER_RECORD);
	assert_int_equal(records, 1);
	assert_true(trunc);

	/* a full ring refuses a push and counts no dropped event */
	for (unsigned i = 0; i < 4; i++)
		assert_true(cmdring_push(resp, &req));
	assert_false(cmdring_push(resp, &req));
	assert_int_equal(atomic_load(&resp->dropped), 0);

	/* once truncated, an answer takes nothing more, even with room again */
	while (cmdring_pop(resp, &rec, NULL) == EVRING_RECORD)
		;
	cmdring_reply_begin(&rp, resp, &req, 0);
	{
		uint8_t big[CMDRING_PAYLOAD_MAX + 1] = {0};

		assert_false(cmdring_reply_add(&rp, big, sizeof(big)));
		assert_false(cmdring_reply_add(&rp, big, 1));
	}
	cmdring_reply_end(&rp, CMDRING_OK, 0);
	assert_int_equal(cmdring_pop(resp, &rec, NULL), EVRING_RECORD);
	assert_int_equal(rec.flags, CMDRING_F_TRUNCATED);
	assert_int_equal(rec.count, 0);
	free(resp);
}

static void test_pop_bounds(void **state)
{
	struct evring *r = new_ring(4);
	struct evring_record *slot;
	struct cmd_record rec, bad;

	(void)state;
	memset(&bad, 0xff, sizeof(bad));
	bad.code = CMD_SESSIONS;
	bad.len = 60000;
	bad.count = 999;
	slot = evring_reserve(r);
	memcpy(slot, &bad, sizeof(bad));
	evring_commit(r);
	assert_int_equal(cmdring_pop(r, &rec, NULL), EVRING_RECORD);
	assert_int_equal(rec.len, CMDRING_PAYLOAD_MAX);
	assert_int_equal(rec.count, CMD_SESSIONS_PER_RECORD);
	/* a byte-payload code: count bounded by len */
	bad.code = CMD_PING;
	bad.len = 10;
	slot = evring_reserve(r);
	memcpy(slot, &bad, sizeof(bad));
	evring_commit(r);
	assert_int_equal(cmdring_pop(r, &rec, NULL), EVRING_RECORD);
	assert_int_equal(rec.count, 10);
	assert_string_equal(cmdring_code_name(CMD_SESSIONS), "sessions");
	assert_string_equal(cmdring_code_name(999), "unknown");
	free(r);
}

/* ---- in a real region ---- */

struct region {
	char name[64];
	struct shm_map control, dp;
};

static void region_open(struct region *g, const char *tag)
{
	char err[512];

	snprintf(g->name, sizeof(g->name), "pg-test-cmd-%s-%d", tag, (int)getpid());
	shm_unlink_name(g->name);
	assert_int_equal(shm_open_control(g->name, 64 << 10, &g->control, err, sizeof(err)), PG_OK);
	assert_int_equal(shm_attach(g->name, &g->dp, err, sizeof(err)), PG_OK);
}

static void region_close(struct region *g)
{
	shm_detach(&g->dp);
	shm_detach(&g->control);
	shm_unlink_name(g->name);
}

/* A ready dataplane of nw workers (this process) on generation gen. */
static void make_ready(struct shm_region *rg, uint32_t nw, uint64_t gen)
{
	atomic_store(&rg->published_gen, gen);
	atomic_store(&rg->dp.pid, (int32_t)getpid());
	atomic_store(&rg->dp.state, SHM_DP_READY);
	rg->dp.nworkers = nw;
	for (unsigned i = 0; i < nw; i++) {
		atomic_store(&rg->readers[1 + i].active, 1);
		atomic_store(&rg->readers[1 + i].adopted, gen);
	}
}

static void test_layout(void **state)
{
	struct region g;
	struct shm_region *rg;
	uint8_t *base;

	(void)state;
	region_open(&g, "layout");
	rg = g.dp.region;
	base = (uint8_t *)rg;
	assert_int_equal(rg->abi, SHM_ABI);
	assert_int_equal(rg->cmd_nworkers, SNAP_MAX_WORKERS);
	assert_null(shm_cmd_request(rg, SNAP_MAX_WORKERS));
	assert_null(shm_cmd_response(rg, SNAP_MAX_WORKERS));
	/* after the event rings, before the first slot, never overlapping */
	assert_true((uint8_t *)shm_cmd_request(rg, 0) >=
	            (uint8_t *)shm_evring(rg, SHM_EV_RINGS - 1) + evring_bytes(SHM_EV_CAPACITY));
	for (unsigned w = 0; w < SNAP_MAX_WORKERS; w++) {
		uint8_t *req = (uint8_t *)shm_cmd_request(rg, w);
		uint8_t *resp = (uint8_t *)shm_cmd_response(rg, w);

		assert_true(req + evring_bytes(SHM_CMD_REQ_CAPACITY) <= resp);
		if (w + 1 < SNAP_MAX_WORKERS)
			assert_true(resp + evring_bytes(SHM_CMD_RESP_CAPACITY) <=
			            (uint8_t *)shm_cmd_request(rg, w + 1));
		else
			assert_true(resp + evring_bytes(SHM_CMD_RESP_CAPACITY) <=
			            base + rg->slots[0].offset);
		assert_int_equal(shm_cmd_request(rg, w)->capacity, SHM_CMD_REQ_CAPACITY);
		assert_int_equal(shm_cmd_response(rg, w)->capacity, SHM_CMD_RESP_CAPACITY);
		assert_true(evring_empty(shm_cmd_request(rg, w)));
	}
	/* the same rings from both mappings */
	assert_true(
	    cmdring_push(shm_cmd_request(g.control.region, 3), &(struct cmd_record){.id = 5}));
	assert_false(evring_empty(shm_cmd_request(rg, 3)));
	region_close(&g);
}

/* ---- worker threads answering through the region ---- */

#define TH_WORKERS 3
#define TH_ROUNDS 300

struct th_worker {
	struct shm_region *rg;
	uint32_t id;
	_Atomic bool *stop;
	uint64_t answered;
};

/* Items of worker w's answer to request id: (w + 1) * 37 + id % 50. */
static uint32_t th_items(uint32_t w, uint64_t id)
{
	return (w + 1) * 37 + (uint32_t)(id % 50);
}

static void *th_main(void *arg)
{
	struct th_worker *tw = arg;
	struct evring *req = shm_cmd_request(tw->rg, tw->id);
	struct evring *resp = shm_cmd_response(tw->rg, tw->id);

	while (!atomic_load(tw->stop)) {
		struct cmd_record rec;

		/* the worker's rule: take a request only with room for its final record */
		if (evring_empty(req) || evring_space(resp) == 0 ||
		    cmdring_pop(req, &rec, NULL) != EVRING_RECORD) {
			sched_yield();
			continue;
		}
		answer(resp, &rec, tw->id, th_items(tw->id, rec.id), (uint32_t)rec.id);
		tw->answered++;
	}
	return NULL;
}

static void check_worker_answer(const struct dpreq *r, uint32_t w)
{
	const struct dpreq_worker *dw = &r->w[w];
	uint32_t n = th_items(w, r->id);

	assert_int_equal(dw->state, DPREQ_DONE);
	assert_int_equal(dw->status, CMDRING_OK);
	assert_false(dw->truncated);
	assert_int_equal(dw->items, n);
	assert_int_equal(dw->aux, n);
	assert_int_equal(dw->data.len, (size_t)n * sizeof(struct cmd_session));
	for (uint32_t i = 0; i < n; i++) {
		struct cmd_session got, want = fake_session((uint32_t)r->id, i);

		memcpy(&got, dw->data.p + i * sizeof(got), sizeof(got));
		assert_memory_equal(&got, &want, sizeof(got));
	}
}

static void test_requests_across_threads(void **state)
{
	static struct dpreq_table t;
	struct region g;
	struct th_worker tw[TH_WORKERS];
	pthread_t th[TH_WORKERS];
	_Atomic bool stop = false;
	struct cmd_sessions_req q = {.max = 1000};
	unsigned done = 0;

	(void)state;
	/* 4 answers of the most items fit a response ring: no truncation even undrained */
	assert_true(4 * ((th_items(TH_WORKERS - 1, 49) + PER_RECORD - 1) / PER_RECORD) <=
	            SHM_CMD_RESP_CAPACITY);
	region_open(&g, "threads");
	dpreq_init(&t, 1000);
	for (uint32_t w = 0; w < TH_WORKERS; w++) {
		tw[w] = (struct th_worker){.rg = g.dp.region, .id = w, .stop = &stop};
		assert_int_equal(pthread_create(&th[w], NULL, th_main, &tw[w]), 0);
	}
	/* up to 4 requests in flight at once, each answered by every worker */
	while (done < TH_ROUNDS) {
		struct dpreq *inflight[4];
		unsigned k = 0;
		uint64_t deadline = shm_now_ns() + 10000 * MS;

		for (; k < 4; k++) {
			inflight[k] = dpreq_start(&t, g.control.region, TH_WORKERS, CMD_SESSIONS,
			                          &q, sizeof(q), shm_now_ns(), 10000 * MS);
			assert_non_null(inflight[k]);
		}
		assert_true(dpreq_busy(&t));
		for (;;) {
			bool all = true;

			dpreq_poll(&t, g.control.region, shm_now_ns());
			for (unsigned i = 0; i < k; i++)
				all &= dpreq_complete(inflight[i]);
			if (all)
				break;
			assert_true(shm_now_ns() < deadline);
			sched_yield();
		}
		for (unsigned i = 0; i < k; i++) {
			for (uint32_t w = 0; w < TH_WORKERS; w++)
				check_worker_answer(inflight[i], w);
			dpreq_free(inflight[i]);
		}
		done += k;
	}
	assert_false(dpreq_busy(&t));
	atomic_store(&stop, true);
	for (uint32_t w = 0; w < TH_WORKERS; w++) {
		assert_int_equal(pthread_join(th[w], NULL), 0);
		assert_int_equal(tw[w].answered, done);
	}
	assert_int_equal(t.stray, 0);
	region_close(&g);
}

static void test_deadline_and_silent_worker(void **state)
{
	static struct dpreq_table t;
	struct region g;
	struct cmd_sessions_req q = {.max = 1000};
	struct cmd_record rec;
	struct ctl_buf b = {0};
	struct dpreq *r;
	uint64_t now = 5000 * MS;

	(void)state;
	region_open(&g, "deadline");
	dpreq_init(&t, 1);
	assert_int_equal(dpreq_next_deadline(&t), UINT64_MAX);
	r = dpreq_start(&t, g.control.region, 2, CMD_SESSIONS, &q, sizeof(q), now, 2000 * MS);
	assert_non_null(r);
	assert_int_equal(r->npending, 2);
	assert_int_equal(dpreq_next_deadline(&t), now + 2000 * MS);

	/* worker 0 answers, in 2 records; worker 1 never does */
	assert_int_equal(cmdring_pop(shm_cmd_request(g.dp.region, 0), &rec, NULL), EVRING_RECORD);
	answer(shm_cmd_response(g.dp.region, 0), &rec, 0, PER_RECORD + 2, (uint32_t)r->id);
	assert_int_equal(dpreq_poll(&t, g.control.region, now + 1000 * MS), 2);
	assert_int_equal(r->w[0].state, DPREQ_DONE);
	assert_int_equal(r->w[1].state, DPREQ_PENDING);
	assert_false(dpreq_complete(r));
	/* one ns before the deadline: still waiting; at it: given up */
	dpreq_poll(&t, g.control.region, now + 2000 * MS - 1);
	assert_false(dpreq_complete(r));
	dpreq_poll(&t, g.control.region, now + 2000 * MS);
	assert_true(dpreq_complete(r));
	assert_int_equal(r->w[1].state, DPREQ_TIMEOUT);
	assert_false(dpreq_busy(&t));

	/* the report says which worker is missing, and posternctl exits 4 */
	assert_string_equal(ctl_sessions_report(&b, r, 1000, false), "notready");
	{
		char want[64];

		snprintf(want, sizeof(want), "worker 0: %u connections\n", PER_RECORD + 2);
		assert_non_null(strstr(b.p, want));
	}
	assert_non_null(strstr(b.p, "worker 1: no answer\n"));
	ctl_buf_free(&b);

	/* the late answer (3 records), after the request is gone, is 3 strays */
	dpreq_free(r);
	assert_int_equal(cmdring_pop(shm_cmd_request(g.dp.region, 1), &rec, NULL), EVRING_RECORD);
	answer(shm_cmd_response(g.dp.region, 1), &rec, 1, 2 * PER_RECORD + 1, 0);
	assert_int_equal(dpreq_poll(&t, g.control.region, now + 3000 * MS), 3);
	assert_int_equal(t.stray, 3);
	region_close(&g);
}

static void test_full_rings_and_table(void **state)
{
	static struct dpreq_table t;
	struct region g;
	struct dpreq *r[DPREQ_MAX + 1];
	struct cmd_record rec;

	(void)state;
	region_open(&g, "full");
	dpreq_init(&t, 1);
	/* nobody takes requests: the 17th finds worker 0's ring full */
	for (unsigned i = 0; i < SHM_CMD_REQ_CAPACITY; i++) {
		r[i] = dpreq_start(&t, g.control.region, 1, CMD_PING, "x", 1, 0, 1000 * MS);
		assert_non_null(r[i]);
		assert_int_equal(r[i]->w[0].state, DPREQ_PENDING);
	}
	r[SHM_CMD_REQ_CAPACITY] = dpreq_start(&t, g.control.region, 1, CMD_PING, "x", 1, 0, MS);
	assert_non_null(r[SHM_CMD_REQ_CAPACITY]);
	assert_int_equal(r[SHM_CMD_REQ_CAPACITY]->w[0].state, DPREQ_UNSENT);
	assert_true(dpreq_complete(r[SHM_CMD_REQ_CAPACITY]));
	/* the table holds DPREQ_MAX requests, not one more */
	for (unsigned i = SHM_CMD_REQ_CAPACITY + 1; i < DPREQ_MAX; i++)
		assert_non_null(dpreq_start(&t, g.control.region, 1, CMD_PING, "x", 1, 0, MS));
	assert_null(dpreq_start(&t, g.control.region, 1, CMD_PING, "x", 1, 0, MS));
	/* bad arguments */
	dpreq_free(r[0]);
	assert_null(dpreq_start(&t, g.control.region, 0, CMD_PING, NULL, 0, 0, MS));
	assert_null(
	    dpreq_start(&t, g.control.region, SNAP_MAX_WORKERS + 1, CMD_PING, NULL, 0, 0, MS));
	assert_null(
	    dpreq_start(&t, g.control.region, 1, CMD_PING, &rec, CMDRING_PAYLOAD_MAX + 1, 0, MS));
	assert_non_null(dpreq_start(&t, g.control.region, 1, CMD_PING, NULL, 0, 0, MS));
	region_close(&g);
}

static void test_lost_records(void **state)
{
	static struct dpreq_table t;
	struct region g;
	struct cmd_sessions_req q = {.max = 1000};
	struct cmd_record req, rec;
	struct evring *resp;
	struct dpreq *r;

	(void)state;
	region_open(&g, "lost");
	dpreq_init(&t, 77);
	r = dpreq_start(&t, g.control.region, 1, CMD_SESSIONS, &q, sizeof(q), 0, 1000 * MS);
	assert_non_null(r);
	assert_int_equal(r->id, 77);
	assert_int_equal(cmdring_pop(shm_cmd_request(g.dp.region, 0), &req, NULL), EVRING_RECORD);
	assert_int_equal(req.id, 77);
	/* 3 records written (2 full, then 2 items), the first two lost before posternd looks */
	resp = shm_cmd_response(g.dp.region, 0);
	answer(resp, &req, 0, 2 * PER_RECORD + 2, 1);
	assert_int_equal(cmdring_pop(resp, &rec, NULL), EVRING_RECORD); /* seq 0 */
	assert_int_equal(cmdring_pop(resp, &rec, NULL), EVRING_RECORD); /* seq 1 */
	/* then a record with our id once the answer is complete: not taken as ours */
	rec = req;
	rec.code = CMD_PING;
	assert_true(cmdring_push(resp, &rec));
	dpreq_poll(&t, g.control.region, 0);
	/* seq 2 came first where seq 0 was expected: complete, but marked truncated */
	assert_true(dpreq_complete(r));
	assert_true(r->w[0].truncated);
	assert_int_equal(r->w[0].items, 2);
	assert_int_equal(t.stray, 1);
	region_close(&g);
}

/* ---- adoption waits ---- */

static struct shm_region *new_region(void)
{
	struct shm_region *rg = aligned_alloc(SHM_CACHE_LINE, sizeof(*rg));

	assert_non_null(rg);
	memset(rg, 0, sizeof(*rg));
	rg->magic = SHM_MAGIC;
	rg->abi = SHM_ABI;
	return rg;
}

static void test_adoption_check(void **state)
{
	struct shm_region *rg = new_region();
	struct ctl_adoption a;

	(void)state;
	make_ready(rg, 2, 3);
	atomic_store(&rg->readers[1].adopted_ns, 1500 * MS);
	atomic_store(&rg->readers[2].adopted_ns, 1800 * MS);
	assert_true(ctl_adoption_check(rg, 3, 1000 * MS, &a));
	assert_int_equal(a.nworkers, 2);
	assert_int_equal(a.nlagging, 0);
	assert_int_equal(a.latency_ns, 800 * MS);
	/* a later generation counts as adopted */
	assert_true(ctl_adoption_check(rg, 2, 1000 * MS, &a));
	/* one behind */
	atomic_store(&rg->readers[2].adopted, 2);
	assert_false(ctl_adoption_check(rg, 3, 1000 * MS, &a));
	assert_int_equal(a.nlagging, 1);
	assert_int_equal(a.lagging[0], 1);
	assert_int_equal(a.lagging_gen[0], 2);
	/* no dataplane: nobody to adopt it */
	atomic_store(&rg->dp.state, SHM_DP_ABSENT);
	assert_false(ctl_adoption_check(rg, 3, 1000 * MS, &a));
	assert_int_equal(a.nworkers, 0);
	free(rg);
}

static void test_wait_adopt(void **state)
{
	struct shm_region *rg = new_region();
	struct ctl_wait cw;
	struct ctl_buf body = {0}, out = {0};

	(void)state;
	make_ready(rg, 2, 4);
	atomic_store(&rg->readers[2].adopted, 3); /* worker 1 not there yet */
	atomic_store(&rg->published_ns, 2000 * MS);

	/* JSON: the publication's object gains an "adoption" member */
	ctl_buf_printf(&body, "{\"ok\":true,\"generation\":4}\n");
	ctl_wait_adopt(&cw, rg, 4, 2001 * MS, 3000 * MS, true, &body);
	assert_null(body.p);
	assert_int_equal(cw.published_ns, 2000 * MS);
	assert_null(ctl_wait_poll(&cw, rg, 2500 * MS, &out));
	atomic_store(&rg->readers[1].adopted_ns, 2000 * MS + 250000);
	atomic_store(&rg->readers[2].adopted_ns, 2000 * MS + 412000);
	atomic_store(&rg->readers[2].adopted, 4);
	assert_string_equal(ctl_wait_poll(&cw, rg, 2600 * MS, &out), "ok");
	assert_string_equal(out.p, "{\"ok\":true,\"generation\":4,\"adoption\":{\"adopted\":true,"
	                           "\"generation\":4,\"workers\":2,\"latency_ns\":412000,"
	                           "\"lagging\":[]}}\n");
	assert_int_equal(cw.kind, CTL_WAIT_NONE);
	ctl_buf_free(&out);

	/* text, and a timeout naming the worker behind */
	ctl_buf_printf(&body, "published generation 5\n");
	ctl_wait_adopt(&cw, rg, 5, 3000 * MS, 2000 * MS, false, &body);
	assert_null(ctl_wait_poll(&cw, rg, 4999 * MS, &out));
	assert_string_equal(ctl_wait_poll(&cw, rg, 5000 * MS, &out), "notready");
	assert_string_equal(out.p, "published generation 5\nnot adopted within 2000 ms by worker 0"
	                           " (on generation 4), worker 1 (on generation 4)\n");
	ctl_buf_free(&out);

	/* adopted: the latency in ms */
	ctl_buf_printf(&body, "published generation 5\n");
	atomic_store(&rg->published_ns, 3000 * MS);
	ctl_wait_adopt(&cw, rg, 5, 3000 * MS, 2000 * MS, false, &body);
	for (unsigned i = 1; i <= 2; i++) {
		atomic_store(&rg->readers[i].adopted_ns, 3000 * MS + 1234567);
		atomic_store(&rg->readers[i].adopted, 5);
	}
	assert_string_equal(ctl_wait_poll(&cw, rg, 3001 * MS, &out), "ok");
	assert_string_equal(out.p, "published generation 5\nadopted by 2 workers in 1.234 ms\n");
	ctl_buf_free(&out);

	/* no dataplane: answered at once, not after the timeout */
	ctl_buf_printf(&body, "published generation 6\n");
	atomic_store(&rg->dp.state, SHM_DP_ABSENT);
	ctl_wait_adopt(&cw, rg, 6, 3000 * MS, 2000 * MS, false, &body);
	assert_string_equal(ctl_wait_poll(&cw, rg, 3000 * MS, &out), "notready");
	assert_non_null(strstr(out.p, "not adopted: no ready dataplane\n"));
	ctl_buf_free(&out);

	/* a client that leaves: nothing leaks (ASan) */
	ctl_buf_printf(&body, "published generation 7\n");
	ctl_wait_adopt(&cw, rg, 7, 0, MS, false, &body);
	ctl_wait_cancel(&cw);
	assert_int_equal(cw.kind, CTL_WAIT_NONE);
	free(rg);
}

/* ---- session lists ---- */

static void test_sessions_report(void **state)
{
	static struct dpreq r;
	struct cmd_session s[2];
	struct ctl_buf b = {0};

	(void)state;
	memset(&r, 0, sizeof(r));
	memset(s, 0, sizeof(s));
	r.id = 1;
	r.code = CMD_SESSIONS;
	r.nworkers = 2;
	/* 198.18.0.1:25 <- 198.18.0.2:40001, passive; and an active one */
	s[0].laddr = htonl(0xc6120001);
	s[0].raddr = htonl(0xc6120002);
	s[0].lport = 25;
	s[0].rport = 40001;
	s[0].bytes_in = 1234;
	s[0].bytes_out = 56;
	s[0].rcvq = 100;
	s[0].age_ns = 12345 * MS;
	s[0].flags = CMD_SESSION_F_PASSIVE;
	memcpy(s[0].state, "ESTABLISHED\"xxxxx", 16); /* no NUL: bounded, escaped */
	s[1].laddr = htonl(0xc6120001);
	s[1].raddr = htonl(0x0a000001);
	s[1].lport = 33000;
	s[1].rport = 25;
	s[1].age_ns = 3700ull * 1000 * MS;
	snprintf(s[1].state, sizeof(s[1].state), "SYN_SENT");
	r.w[0].state = DPREQ_DONE;
	r.w[0].aux = 5;
	r.w[0].truncated = true;
	r.w[0].items = 2;
	ctl_buf_printf(&r.w[0].data, "%s", ""); /* allocate, then replace the bytes */
	free(r.w[0].data.p);
	r.w[0].data.p = malloc(sizeof(s));
	memcpy(r.w[0].data.p, s, sizeof(s));
	r.w[0].data.len = r.w[0].data.cap = sizeof(s);
	r.w[1].state = DPREQ_DONE;
	r.w[1].status = CMDRING_OK;

	assert_string_equal(ctl_sessions_report(&b, &r, 2, false), "ok");
	assert_string_equal(
	    b.p, "worker 0: 5 connections, 2 listed - truncated at --max\n"
	         "  local                 remote                state                in"
	         "        out    sndq    rcvq     age  owner\n"
	         "  198.18.0.1:25         198.18.0.2:40001      ESTABLISHED\"xxxx       1234"
	         "         56       0     100   12.3s  :25 smtp\n"
	         "  198.18.0.1:33000      10.0.0.1:25           SYN_SENT              0"
	         "          0       0       0   1h01m  client\n"
	         "worker 1: 0 connections\n");
	ctl_buf_free(&b);
	assert_string_equal(ctl_sessions_report(&b, &r, 1000, true), "ok");
	assert_string_equal(
	    b.p, "{\"workers\":[{\"worker\":0,\"answered\":true,\"connections\":5,\"listed\":2,"
	         "\"truncated\":true,\"note\":\"truncated (response ring full)\",\"sessions\":["
	         "{\"local\":\"198.18.0.1:25\",\"remote\":\"198.18.0.2:40001\",\"state\":"
	         "\"ESTABLISHED\\\"xxxx\",\"bytes_in\":1234,\"bytes_out\":56,\"sndq\":0,"
	         "\"rcvq\":100,\"age_ms\":12345,\"passive\":true,\"service\":\"smtp\"},"
	         "{\"local\":\"198.18.0.1:33000\",\"remote\":\"10.0.0.1:25\",\"state\":"
	         "\"SYN_SENT\",\"bytes_in\":0,\"bytes_out\":0,\"sndq\":0,\"rcvq\":0,"
	         "\"age_ms\":3700000,\"passive\":false}]},"
	         "{\"worker\":1,\"answered\":true,\"connections\":0,\"listed\":0,"
	         "\"truncated\":false,\"sessions\":[]}],\"complete\":true}\n");
	ctl_buf_free(&b);

	/* a dataplane that does not know the command */
	r.w[1].status = CMDRING_UNKNOWN;
	assert_string_equal(ctl_sessions_report(&b, &r, 1000, false), "notready");
	assert_non_null(strstr(b.p, "worker 1: 0 connections - the dataplane does not know"));
	ctl_buf_free(&b);
	dpreq_free(&r);
	assert_string_equal(ctl_port_service(587), "submission");
	assert_null(ctl_port_service(2525));
}

static void test_sessions_not_ready(void **state)
{
	static struct dpreq_table t;
	struct shm_region *rg = new_region();
	struct ctl_wait cw;
	struct ctl_buf b = {0};

	(void)state;
	dpreq_init(&t, 1);
	assert_string_equal(ctl_wait_sessions(&cw, &t, rg, 10, false, 0, &b), "notready");
	assert_string_equal(b.p, "dataplane absent: no sessions to list\n");
	assert_int_equal(cw.kind, CTL_WAIT_NONE);
	ctl_buf_free(&b);
	free(rg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_one_and_many_records),
	    cmocka_unit_test(test_full_ring_truncates),
	    cmocka_unit_test(test_pop_bounds),
	    cmocka_unit_test(test_layout),
	    cmocka_unit_test(test_requests_across_threads),
	    cmocka_unit_test(test_deadline_and_silent_worker),
	    cmocka_unit_test(test_full_rings_and_table),
	    cmocka_unit_test(test_lost_records),
	    cmocka_unit_test(test_adoption_check),
	    cmocka_unit_test(test_wait_adopt),
	    cmocka_unit_test(test_sessions_report),
	    cmocka_unit_test(test_sessions_not_ready),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
