/*
 * cmd.c - the commands a worker answers for posternd (cmd.h): a table
 * pairing each command code with its handler. Handlers run on the worker
 * that owns the state they read, between two loop passes, so they read it
 * without locks; they write only the answer, except `queue`, whose
 * operations change the worker's own spool queue through the spool and
 * the delivery scheduler.
 */
#include <string.h>

#include "cmd.h"
#include "cmdring.h"
#include "result.h"
#include "shm.h"
#include "worker.h"
#include "net/tcp.h"
#include "relay/outbound.h"
#include "spool/spool.h"

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
	if (pg_addr_is_v6(&ci->local)) {
		item.flags |= CMD_SESSION_F_IPV6;
		memcpy(item.laddr6, ci->local.v6, 16);
		memcpy(item.raddr6, ci->remote.v6, 16);
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

/* ---- queue ---- */

#define DP_NS_PER_S 1000000000ull

/*
 * The queued message id, or NULL. spool_msg_lookup also finds messages
 * still being received or committed, and done ones kept for segment
 * reclaim: only one on the queue may be shown or changed, so the lookup is
 * confirmed by a walk of the queue (an operator's command, not the fast
 * path).
 */
static struct spool_msg *dp_cmd_queue_find(struct spool *sp, uint64_t id)
{
	struct spool_msg *want = id != 0 ? spool_msg_lookup(sp, id) : NULL;

	if (want == NULL)
		return NULL;
	for (struct spool_msg *m = spool_queue_first(sp); m != NULL; m = spool_queue_next(sp, m))
		if (m == want)
			return m;
	return NULL;
}

static void dp_cmd_queue_msg(const struct worker *w, const struct spool_msg *m,
			     struct cmd_queue_msg *item)
{
	struct outbound_msg_info info;
	const char *sender = spool_msg_sender(m);
	size_t slen = strlen(sender);
	uint32_t nrcpt = spool_msg_nrcpt(m);

	memset(item, 0, sizeof(*item));
	outbound_msg_info(w, m, &info);
	item->kind = CMD_QUEUE_ITEM_MSG;
	item->flags = (spool_msg_held(m) ? CMD_QUEUE_F_HELD : 0) |
		      (info.active ? CMD_QUEUE_F_ACTIVE : 0) |
		      (info.delete_pending ? CMD_QUEUE_F_DELETE_PENDING : 0);
	if (slen > sizeof(item->sender)) {
		slen = sizeof(item->sender);
		/* not inside a UTF-8 sequence (SMTPUTF8): JSON wants whole characters */
		while (slen > 0 && ((unsigned char)sender[slen] & 0xc0) == 0x80)
			slen--;
		item->flags |= CMD_QUEUE_F_SENDER_CUT;
	}
	memcpy(item->sender, sender, slen);
	item->sender_len = (uint16_t)slen;
	item->nrcpt = nrcpt;
	for (uint32_t i = 0; i < nrcpt; i++)
		item->ndone += spool_msg_rcpt_done(m, i) ? 1 : 0;
	item->attempts = spool_msg_attempts(m);
	item->id = spool_msg_id(m);
	item->size = spool_msg_body_len(m);
	item->arrival = spool_msg_arrival(m) / DP_NS_PER_S;
	item->next_attempt = spool_msg_next_attempt(m) / DP_NS_PER_S;
}

/* One string of SHOW as TEXT items of at most CMD_QUEUE_TEXT_MAX bytes. */
static bool dp_cmd_queue_text(struct cmdring_reply *rp, uint8_t field, uint32_t index,
			      uint8_t flags, const char *s, size_t len)
{
	do {
		struct cmd_queue_text t;
		size_t n = len < sizeof(t.text) ? len : sizeof(t.text);

		memset(&t, 0, sizeof(t));
		t.kind = CMD_QUEUE_ITEM_TEXT;
		t.field = field;
		t.flags = (uint8_t)(flags | (len > n ? CMD_QUEUE_T_MORE : 0));
		t.len = (uint8_t)n;
		t.index = index;
		memcpy(t.text, s, n);
		if (!cmdring_reply_add(rp, &t, sizeof(t)))
			return false;
		s += n;
		len -= n;
	} while (len > 0);
	return true;
}

static void dp_cmd_queue_list(struct worker *w, struct spool *sp, uint32_t max,
			      struct cmdring_reply *rp)
{
	uint32_t listed = 0;

	for (struct spool_msg *m = spool_queue_first(sp); m != NULL; m = spool_queue_next(sp, m)) {
		struct cmd_queue_msg item;

		if (listed == max) {
			rp->truncated = true; /* the operator's limit */
			break;
		}
		dp_cmd_queue_msg(w, m, &item);
		if (!cmdring_reply_add(rp, &item, sizeof(item)))
			break; /* the ring is full: truncated */
		listed++;
	}
	cmdring_reply_end(rp, CMDRING_OK, spool_queue_count(sp));
}

static void dp_cmd_queue_show(struct worker *w, struct spool_msg *m, struct cmdring_reply *rp)
{
	struct cmd_queue_msg item;
	struct outbound_msg_info info;
	const char *sender = spool_msg_sender(m);
	uint32_t nrcpt = spool_msg_nrcpt(m);
	bool fits;
	size_t rlen;

	dp_cmd_queue_msg(w, m, &item);
	outbound_msg_info(w, m, &info);
	fits = cmdring_reply_add(rp, &item, sizeof(item)) &&
	       dp_cmd_queue_text(rp, CMD_QUEUE_TEXT_SENDER, 0, 0, sender, strlen(sender));
	for (uint32_t i = 0; fits && i < nrcpt; i++) {
		const char *rcpt = spool_msg_rcpt(m, i);

		fits = dp_cmd_queue_text(rp, CMD_QUEUE_TEXT_RCPT, i,
					 spool_msg_rcpt_done(m, i) ? CMD_QUEUE_T_DONE : 0, rcpt,
					 strlen(rcpt));
	}
	if (fits && info.last_reply != NULL && info.last_reply[0] != '\0') {
		rlen = strnlen(info.last_reply, CMD_QUEUE_REPLY_MAX);
		dp_cmd_queue_text(rp, CMD_QUEUE_TEXT_REPLY, 0, 0, info.last_reply, rlen);
	}
	cmdring_reply_end(rp, CMDRING_OK, CMD_QUEUE_DONE);
}

/* FLUSH, DELETE, HOLD, RELEASE of one message: an enum cmd_queue_result. */
static uint64_t dp_cmd_queue_change(struct worker *w, struct spool *sp, struct spool_msg *m,
				    uint8_t op)
{
	struct outbound_msg_info info;
	int rc;

	switch (op) {
	case CMD_QUEUE_FLUSH:
		if (spool_msg_held(m))
			return CMD_QUEUE_UNCHANGED; /* held stays held: release it first */
		(void)outbound_flush(w, m); /* 0 if an attempt runs already: still fine */
		return CMD_QUEUE_DONE;
	case CMD_QUEUE_DELETE:
		outbound_msg_info(w, m, &info);
		if (info.delete_pending)
			return CMD_QUEUE_PENDING; /* asked twice: once is enough */
		rc = outbound_msg_delete(w, m); /* m may be gone now */
		return rc == PG_OK ? CMD_QUEUE_DONE : rc == PG_AGAIN ? CMD_QUEUE_PENDING
								     : CMD_QUEUE_FAILED;
	case CMD_QUEUE_HOLD:
		if (spool_msg_held(m))
			return CMD_QUEUE_UNCHANGED;
		return spool_msg_hold(sp, m) == PG_OK ? CMD_QUEUE_DONE : CMD_QUEUE_FAILED;
	default: /* CMD_QUEUE_RELEASE */
		if (!spool_msg_held(m))
			return CMD_QUEUE_UNCHANGED;
		return spool_msg_release(sp, m) == PG_OK ? CMD_QUEUE_DONE : CMD_QUEUE_FAILED;
	}
}

/*
 * The worker's spool queue. A worker without a spool (no SMTP service)
 * has an empty queue: it lists nothing and finds nothing.
 */
static void dp_cmd_queue(struct worker *w, const struct cmd_record *req, struct cmdring_reply *rp)
{
	struct spool *sp = w->spool;
	struct cmd_queue_req q;
	struct spool_msg *m;

	if (req->len < sizeof(q)) {
		cmdring_reply_end(rp, CMDRING_BAD, 0);
		return;
	}
	memcpy(&q, req->payload, sizeof(q));
	if (q.op >= CMD_QUEUE__OPS || (q.id == 0 && q.op != CMD_QUEUE_LIST &&
				       q.op != CMD_QUEUE_FLUSH)) {
		cmdring_reply_end(rp, CMDRING_BAD, 0);
		return;
	}
	if (q.op == CMD_QUEUE_LIST) {
		if (sp == NULL)
			cmdring_reply_end(rp, CMDRING_OK, 0);
		else
			dp_cmd_queue_list(w, sp, q.max, rp);
		return;
	}
	if (q.op == CMD_QUEUE_FLUSH && q.id == 0) {
		cmdring_reply_end(rp, CMDRING_OK, sp != NULL ? outbound_flush(w, NULL) : 0);
		return;
	}
	m = sp != NULL ? dp_cmd_queue_find(sp, q.id) : NULL;
	if (m == NULL)
		cmdring_reply_end(rp, CMDRING_OK, CMD_QUEUE_NOT_FOUND);
	else if (q.op == CMD_QUEUE_SHOW)
		dp_cmd_queue_show(w, m, rp);
	else
		cmdring_reply_end(rp, CMDRING_OK, dp_cmd_queue_change(w, sp, m, q.op));
}

/* ---- dns ---- */

static void dp_cmd_dns(struct worker *w, const struct cmd_record *req, struct cmdring_reply *rp)
{
	struct cmd_dns_req q;

	if (req->len < sizeof(q)) {
		cmdring_reply_end(rp, CMDRING_BAD, 0);
		return;
	}
	memcpy(&q, req->payload, sizeof(q));
	q.name[sizeof(q.name) - 1] = '\0';
	if (q.op != CMD_DNS_LOOKUP && q.op != CMD_DNS_FLUSH) {
		cmdring_reply_end(rp, CMDRING_BAD, 0);
		return;
	}
	outbound_dns_cmd(w, &q, rp);
	cmdring_reply_end(rp, CMDRING_OK, 0);
}

static const dp_cmd_fn dp_cmd_table[CMD__COUNT] = {
    [CMD_PING] = dp_cmd_ping,
    [CMD_SESSIONS] = dp_cmd_sessions,
    [CMD_QUEUE] = dp_cmd_queue,
    [CMD_DNS] = dp_cmd_dns,
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
