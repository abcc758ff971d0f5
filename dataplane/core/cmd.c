/*
 * cmd.c - the commands a worker answers for posternd (cmd.h): a table
 * pairing each command code with its handler. Handlers run on the worker
 * that owns the state they read, between two loop passes, so they read it
 * without locks; they write only the answer.
 */
#include <string.h>

#include "cmd.h"
#include "cmdring.h"
#include "shm.h"
#include "worker.h"
#include "net/tcp.h"

typedef void (*dp_cmd_fn)(struct worker *w, const struct cmd_record *req,
			  struct cmdring_reply *rp);

static void dp_cmd_ping(struct worker *w, const struct cmd_record *req, struct cmdring_reply *rp)
{
	for (uint16_t i = 0; i < req->len; i++)
		cmdring_reply_add(rp, &req->payload[i], 1);
	cmdring_reply_end(rp, CMDRING_OK, w->gen);
}

struct dp_cmd_sessions {
	struct worker *w;
	struct cmdring_reply *rp;
	uint32_t max, listed;
};

static bool dp_cmd_session_one(const struct tcp_conn_info *ci, void *arg)
{
	struct dp_cmd_sessions *s = arg;
	struct cmd_session item = {
		.age_ns = s->w->now_ns > ci->created_ns ? s->w->now_ns - ci->created_ns : 0,
		.laddr = ci->laddr,
		.raddr = ci->raddr,
		.lport = ci->lport,
		.rport = ci->rport,
		.bytes_in = ci->bytes_in,
		.bytes_out = ci->bytes_out,
		.sndq = ci->sndq,
		.rcvq = ci->rcvq,
		.flags = ci->passive ? CMD_SESSION_F_PASSIVE : 0,
	};

	if (s->listed == s->max) {
		s->rp->truncated = true; /* the operator's limit */
		return false;
	}
	strncpy(item.state, ci->state, sizeof(item.state) - 1);
	if (!cmdring_reply_add(s->rp, &item, sizeof(item)))
		return false; /* the ring is full: truncated */
	s->listed++;
	return true;
}

static void dp_cmd_sessions(struct worker *w, const struct cmd_record *req,
			    struct cmdring_reply *rp)
{
	struct dp_cmd_sessions s = {.w = w, .rp = rp};
	struct cmd_sessions_req q;

	if (req->len < sizeof(q)) {
		cmdring_reply_end(rp, CMDRING_BAD, 0);
		return;
	}
	memcpy(&q, req->payload, sizeof(q));
	s.max = q.max;
	tcp_foreach_conn(w, dp_cmd_session_one, &s);
	cmdring_reply_end(rp, CMDRING_OK, tcp_conn_count(w));
}

static const dp_cmd_fn dp_cmd_table[CMD__COUNT] = {
	[CMD_PING] = dp_cmd_ping,
	[CMD_SESSIONS] = dp_cmd_sessions,
};

unsigned dp_cmd_poll(struct worker *w)
{
	struct evring *req, *resp;
	unsigned answered = 0;

	if (w->shm == NULL || w->shm->region == NULL)
		return 0; /* detached (unit tests without a region) */
	req = shm_cmd_request(w->shm->region, w->id);
	if (req == NULL || evring_empty(req))
		return 0;
	resp = shm_cmd_response(w->shm->region, w->id);
	while (answered < DP_CMD_BURST && evring_space(resp) > 0) {
		struct cmd_record rec;
		struct cmdring_reply rp;
		enum evring_pop_result res = cmdring_pop(req, &rec, NULL);

		if (res == EVRING_EMPTY)
			break;
		if (res == EVRING_CORRUPT)
			continue; /* skipped; posternd's deadlines cover what was lost */
		cmdring_reply_begin(&rp, resp, &rec, w->id);
		if (rec.code < CMD__COUNT && dp_cmd_table[rec.code] != NULL)
			dp_cmd_table[rec.code](w, &rec, &rp);
		else
			cmdring_reply_end(&rp, CMDRING_UNKNOWN, 0);
		answered++;
	}
	return answered;
}
