/*
 * ctl_queue.c - `posternctl queue` in posternd (ctl_queue.h): the request
 * words, the CMD_QUEUE request to every worker, and the answers rendered
 * like Postfix's mailq (one line per message, '*' active, '!' held, a
 * "-- N Kbytes in M Requests." total) or as JSON. Every item was written
 * by another process: kinds, lengths and indexes are checked, strings
 * bounded, and control characters never reach the operator's terminal.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl_queue.h"
#include "result.h"

static const char *const ctl_queue_ops[CMD_QUEUE__OPS] = {
    [CMD_QUEUE_LIST] = "list",     [CMD_QUEUE_SHOW] = "show", [CMD_QUEUE_FLUSH] = "flush",
    [CMD_QUEUE_DELETE] = "delete", [CMD_QUEUE_HOLD] = "hold", [CMD_QUEUE_RELEASE] = "release",
};

int ctl_queue_op(const char *name)
{
	for (int op = 0; op < CMD_QUEUE__OPS; op++)
		if (strcmp(name, ctl_queue_ops[op]) == 0)
			return op;
	return -1;
}

/* The same syntax as spool_id_parse (dataplane/spool), which we cannot link. */
int ctl_queue_id_parse(const char *s, uint64_t *id)
{
	size_t n = strlen(s);
	uint64_t v = 0;

	if (n > 0 && (s[n - 1] == '*' || s[n - 1] == '!'))
		n--;
	if (n == 0 || n > 16)
		return PG_ERROR;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		unsigned d;

		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return PG_ERROR;
		v = v << 4 | d;
	}
	if (v == 0)
		return PG_ERROR;
	*id = v;
	return PG_OK;
}

static const char ctl_queue_usage[] = "usage: queue list [--max=N] | show ID | flush [ID] |"
                                      " delete ID | hold ID | release ID  [--json]\n";

const char *ctl_queue_start(struct ctl_wait *cw, struct dpreq_table *t, struct shm_region *rg,
                            int argc, char **argv, uint64_t now_ns, struct ctl_buf *b)
{
	struct cmd_queue_req q = {.max = CTL_QUEUE_DEFAULT_MAX};
	const char *idword = NULL, *verdict;
	bool json = false;
	int op = argc > 0 ? ctl_queue_op(argv[0]) : -1;

	memset(cw, 0, sizeof(*cw));
	if (op < 0) {
		ctl_buf_printf(b, "%s", ctl_queue_usage);
		return "error";
	}
	for (int i = 1; i < argc; i++) {
		char *end;
		unsigned long max;

		if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "json") == 0) {
			json = true;
		} else if (op == CMD_QUEUE_LIST && strncmp(argv[i], "--max=", 6) == 0) {
			max = strtoul(argv[i] + 6, &end, 10);
			if (argv[i][6] < '0' || argv[i][6] > '9' || *end != '\0' ||
			    max > CTL_QUEUE_MAX) {
				ctl_buf_printf(b, "--max: \"%.20s\" is not 0..%lu\n", argv[i] + 6,
				               (unsigned long)CTL_QUEUE_MAX);
				return "error";
			}
			q.max = (uint32_t)max;
		} else if (argv[i][0] != '-' && idword == NULL && op != CMD_QUEUE_LIST) {
			idword = argv[i];
		} else {
			ctl_buf_printf(b, "%s", ctl_queue_usage);
			return "error";
		}
	}
	if (idword == NULL && op != CMD_QUEUE_LIST && op != CMD_QUEUE_FLUSH) {
		ctl_buf_printf(b, "%s", ctl_queue_usage);
		return "error";
	}
	if (idword != NULL && ctl_queue_id_parse(idword, &q.id) != PG_OK) {
		ctl_buf_printf(
		    b, "bad queue id \"%.40s\": 1 to 16 hex digits, as queue list shows\n", idword);
		return "error";
	}
	q.op = (uint8_t)op;
	verdict = ctl_wait_workers(cw, t, rg, CTL_WAIT_QUEUE, CMD_QUEUE, &q, sizeof(q), json,
	                           "the queue cannot be reached", now_ns, b);
	if (verdict == NULL) {
		cw->max = q.max;
		cw->queue_op = q.op;
		cw->queue_id = q.id;
	}
	return verdict;
}

/* ---- rendering ---- */

/* Text from another process, for a terminal: control characters as '?'. */
static void ctl_queue_put(struct ctl_buf *b, const char *s, size_t len)
{
	for (size_t i = 0; i < len && s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		ctl_buf_printf(b, "%c", c < 0x20 || c == 0x7f ? '?' : (char)c);
	}
}

/* "2025-01-02T03:04:05Z" */
static void ctl_queue_time(char *buf, size_t len, uint64_t unix_s)
{
	time_t t = (time_t)unix_s;
	struct tm tm;

	if (unix_s > (uint64_t)INT32_MAX * 16 || gmtime_r(&t, &tm) == NULL)
		snprintf(buf, len, "?");
	else
		strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The next-attempt column: what the scheduler will do with the message. */
static void ctl_queue_next(char *buf, size_t len, const struct cmd_queue_msg *m, int64_t now_s)
{
	if (m->flags & CMD_QUEUE_F_DELETE_PENDING)
		snprintf(buf, len, "deleting");
	else if (m->flags & CMD_QUEUE_F_ACTIVE)
		snprintf(buf, len, "active");
	else if (m->flags & CMD_QUEUE_F_HELD)
		snprintf(buf, len, "held");
	else if (m->next_attempt == 0 || (int64_t)m->next_attempt <= now_s)
		snprintf(buf, len, "now");
	else
		ctl_queue_time(buf, len, m->next_attempt);
}

static char ctl_queue_mark(const struct cmd_queue_msg *m)
{
	/* Postfix: '*' in the active queue, '!' on hold */
	if (m->flags & (CMD_QUEUE_F_ACTIVE | CMD_QUEUE_F_DELETE_PENDING))
		return '*';
	return (m->flags & CMD_QUEUE_F_HELD) ? '!' : ' ';
}

/* Why a worker's answer is missing or short, or NULL. */
static const char *ctl_queue_note(const struct dpreq_worker *dw)
{
	if (dw->state != DPREQ_DONE)
		return dpreq_worker_state_name(dw->state);
	if (dw->status == CMDRING_UNKNOWN)
		return "the dataplane does not know this command";
	if (dw->status != CMDRING_OK)
		return "the dataplane refused the request";
	return NULL;
}

static bool ctl_queue_answered(const struct dpreq_worker *dw)
{
	return dw->state == DPREQ_DONE && dw->status == CMDRING_OK;
}

/* Item i of worker dw's answer, copied out (the bytes need no alignment). */
static bool ctl_queue_item(const struct dpreq_worker *dw, size_t i, union cmd_queue_item *it)
{
	if ((i + 1) * sizeof(*it) > dw->data.len)
		return false;
	memcpy(it, dw->data.p + i * sizeof(*it), sizeof(*it));
	return true;
}

static size_t ctl_queue_nitems(const struct dpreq_worker *dw)
{
	return dw->data.p != NULL ? dw->data.len / sizeof(union cmd_queue_item) : 0;
}

/* The members of a message; full_sender replaces the item's (cut) one. */
static void ctl_queue_json_msg(struct ctl_buf *b, const struct cmd_queue_msg *m, uint32_t worker,
                               const char *full_sender)
{
	uint8_t flags = m->flags;

	ctl_buf_printf(b,
	               "\"id\":\"%016" PRIX64 "\",\"worker\":%" PRIu32 ",\"arrival\":%" PRIu64
	               ",\"size\":%" PRIu64 ",\"sender\":",
	               m->id, worker, m->arrival, m->size);
	if (full_sender != NULL) {
		ctl_buf_json_str(b, full_sender, SIZE_MAX);
		flags &= (uint8_t)~CMD_QUEUE_F_SENDER_CUT;
	} else {
		ctl_buf_json_str(b, m->sender,
		                 m->sender_len < sizeof(m->sender) ? m->sender_len
		                                                   : sizeof(m->sender));
	}
	ctl_buf_printf(
	    b,
	    ",\"sender_truncated\":%s,\"recipients\":%" PRIu32 ",\"recipients_done\":%" PRIu32
	    ",\"attempts\":%" PRIu32 ",\"next_attempt\":%" PRIu64 ",\"held\":%s,\"active\":%s,"
	    "\"delete_pending\":%s",
	    (flags & CMD_QUEUE_F_SENDER_CUT) ? "true" : "false", m->nrcpt, m->ndone, m->attempts,
	    m->next_attempt, (m->flags & CMD_QUEUE_F_HELD) ? "true" : "false",
	    (m->flags & CMD_QUEUE_F_ACTIVE) ? "true" : "false",
	    (m->flags & CMD_QUEUE_F_DELETE_PENDING) ? "true" : "false");
}

/* ---- list ---- */

struct ctl_queue_row {
	struct cmd_queue_msg m;
	uint32_t worker;
};

static int ctl_queue_row_cmp(const void *a, const void *b)
{
	const struct ctl_queue_row *x = a, *y = b;

	if (x->m.arrival != y->m.arrival)
		return x->m.arrival < y->m.arrival ? -1 : 1;
	return x->m.id < y->m.id ? -1 : x->m.id > y->m.id;
}

static const char *ctl_queue_list(struct ctl_buf *b, const struct dpreq *r, uint32_t max, bool json,
                                  int64_t now_s)
{
	struct ctl_queue_row *rows;
	size_t nrows = 0, cap = 0, shown;
	uint64_t queued = 0, bytes = 0;
	bool complete = true;

	for (uint32_t w = 0; w < r->nworkers; w++)
		cap += ctl_queue_nitems(&r->w[w]);
	rows = calloc(cap > 0 ? cap : 1, sizeof(*rows));
	if (rows == NULL) {
		ctl_buf_printf(b, "out of memory\n");
		return "error";
	}
	for (uint32_t w = 0; w < r->nworkers; w++) {
		const struct dpreq_worker *dw = &r->w[w];
		union cmd_queue_item it;

		if (!ctl_queue_answered(dw)) {
			complete = false;
			continue;
		}
		queued += dw->aux;
		for (size_t i = 0; ctl_queue_item(dw, i, &it); i++) {
			if (it.kind != CMD_QUEUE_ITEM_MSG)
				continue;
			rows[nrows].m = it.msg;
			rows[nrows++].worker = w;
		}
	}
	qsort(rows, nrows, sizeof(*rows), ctl_queue_row_cmp);
	shown = nrows < max ? nrows : max;
	for (size_t i = 0; i < shown; i++)
		bytes += rows[i].m.size;

	if (json)
		ctl_buf_printf(b, "{\"messages\":[");
	else if (shown > 0)
		ctl_buf_printf(b, "%-17s %9s  %-20s  %7s  %-20s  %s\n", "Queue ID", "Size",
		               "Arrival", "Rcpt", "Next attempt", "Sender");
	for (size_t i = 0; i < shown; i++) {
		const struct cmd_queue_msg *m = &rows[i].m;
		size_t slen = m->sender_len < sizeof(m->sender) ? m->sender_len : sizeof(m->sender);
		char arrival[32], next[32], rcpt[24];

		if (json) {
			ctl_buf_printf(b, "%s{", i > 0 ? "," : "");
			ctl_queue_json_msg(b, m, rows[i].worker, NULL);
			ctl_buf_printf(b, "}");
			continue;
		}
		ctl_queue_time(arrival, sizeof(arrival), m->arrival);
		ctl_queue_next(next, sizeof(next), m, now_s);
		snprintf(rcpt, sizeof(rcpt), "%" PRIu32 "/%" PRIu32,
		         m->nrcpt > m->ndone ? m->nrcpt - m->ndone : 0, m->nrcpt);
		ctl_buf_printf(b, "%016" PRIX64 "%c %9" PRIu64 "  %-20s  %7s  %-20s  <", m->id,
		               ctl_queue_mark(m), m->size, arrival, rcpt, next);
		ctl_queue_put(b, m->sender, slen);
		ctl_buf_printf(b, "%s>\n", (m->flags & CMD_QUEUE_F_SENDER_CUT) ? "..." : "");
	}
	if (json) {
		ctl_buf_printf(b,
		               "],\"listed\":%zu,\"queued\":%" PRIu64 ",\"bytes\":%" PRIu64
		               ",\"truncated\":%s,\"workers\":[",
		               shown, queued, bytes, shown < queued ? "true" : "false");
		for (uint32_t w = 0; w < r->nworkers; w++) {
			const struct dpreq_worker *dw = &r->w[w];
			const char *note = ctl_queue_note(dw);

			ctl_buf_printf(b, "%s{\"worker\":%" PRIu32 ",\"answered\":%s",
			               w > 0 ? "," : "", w,
			               ctl_queue_answered(dw) ? "true" : "false");
			if (ctl_queue_answered(dw))
				ctl_buf_printf(b, ",\"queued\":%" PRIu64 ",\"truncated\":%s",
				               dw->aux, dw->truncated ? "true" : "false");
			if (note != NULL) {
				ctl_buf_printf(b, ",\"note\":");
				ctl_buf_json_str(b, note, SIZE_MAX);
			}
			ctl_buf_printf(b, "}");
		}
		ctl_buf_printf(b, "],\"complete\":%s}\n", complete ? "true" : "false");
	} else {
		for (uint32_t w = 0; w < r->nworkers; w++) {
			const char *note = ctl_queue_note(&r->w[w]);

			if (note != NULL)
				ctl_buf_printf(b, "worker %" PRIu32 ": %s\n", w, note);
		}
		if (shown < queued)
			ctl_buf_printf(b,
			               "... and %" PRIu64 " more; use --max N (at most %lu per"
			               " worker)\n",
			               queued - shown, (unsigned long)CTL_QUEUE_MAX);
		if (queued == 0 && complete)
			ctl_buf_printf(b, "Mail queue is empty\n");
		else if (shown < queued)
			ctl_buf_printf(b,
			               "-- %" PRIu64 " Kbytes in %zu Requests listed, %" PRIu64
			               " queued.\n",
			               (bytes + 1023) / 1024, shown, queued);
		else
			ctl_buf_printf(b, "-- %" PRIu64 " Kbytes in %zu Request%s.\n",
			               (bytes + 1023) / 1024, shown, shown == 1 ? "" : "s");
	}
	free(rows);
	return complete ? "ok" : "notready";
}

/* ---- show ---- */

struct ctl_queue_rcpt {
	struct ctl_buf addr; /* p NULL: not received */
	bool done;
};

/* The MSG item and the strings of a SHOW answer, put back together. */
struct ctl_queue_shown {
	struct cmd_queue_msg m;
	struct ctl_buf sender, reply;
	struct ctl_queue_rcpt *rcpt;
	uint32_t nslots; /* recipients that can have been sent: nrcpt came from elsewhere */
	uint32_t nrcpt_got;
	bool cut; /* pieces missing */
};

static bool ctl_queue_gather(const struct dpreq_worker *dw, struct ctl_queue_shown *s)
{
	union cmd_queue_item it;
	struct ctl_buf *cur = NULL;
	size_t n = ctl_queue_nitems(dw);

	memset(s, 0, sizeof(*s));
	if (!ctl_queue_item(dw, 0, &it) || it.kind != CMD_QUEUE_ITEM_MSG)
		return false;
	s->m = it.msg;
	s->nslots = s->m.nrcpt < n ? s->m.nrcpt : (uint32_t)n; /* a recipient takes an item */
	s->rcpt = calloc(s->nslots + 1, sizeof(*s->rcpt));
	if (s->rcpt == NULL)
		return false;
	for (size_t i = 1; ctl_queue_item(dw, i, &it); i++) {
		const struct cmd_queue_text *t = &it.text;
		size_t len = t->len < sizeof(t->text) ? t->len : sizeof(t->text);

		if (it.kind != CMD_QUEUE_ITEM_TEXT)
			continue;
		if (cur == NULL) {
			if (t->field == CMD_QUEUE_TEXT_SENDER && s->sender.p == NULL) {
				cur = &s->sender;
			} else if (t->field == CMD_QUEUE_TEXT_REPLY && s->reply.p == NULL) {
				cur = &s->reply;
			} else if (t->field == CMD_QUEUE_TEXT_RCPT && t->index < s->nslots &&
			           s->rcpt[t->index].addr.p == NULL) {
				cur = &s->rcpt[t->index].addr;
				s->rcpt[t->index].done = (t->flags & CMD_QUEUE_T_DONE) != 0;
				s->nrcpt_got++;
			} else {
				continue; /* not ours to believe */
			}
			ctl_buf_printf(cur, "%s", ""); /* received, even if empty */
		}
		ctl_buf_printf(cur, "%.*s", (int)strnlen(t->text, len), t->text);
		if (!(t->flags & CMD_QUEUE_T_MORE))
			cur = NULL;
	}
	s->cut = dw->truncated || cur != NULL || s->nrcpt_got < s->m.nrcpt || s->sender.p == NULL;
	return true;
}

static void ctl_queue_shown_free(struct ctl_queue_shown *s)
{
	ctl_buf_free(&s->sender);
	ctl_buf_free(&s->reply);
	for (uint32_t i = 0; s->rcpt != NULL && i < s->nslots; i++)
		ctl_buf_free(&s->rcpt[i].addr);
	free(s->rcpt);
	memset(s, 0, sizeof(*s));
}

static void ctl_queue_show(struct ctl_buf *b, const struct ctl_queue_shown *s, uint32_t worker,
                           bool json, int64_t now_s)
{
	const struct cmd_queue_msg *m = &s->m;
	const char *sender = s->sender.p != NULL ? s->sender.p : "";
	const char *state;
	char arrival[32], next[32];
	bool first = true, at = false;

	if (json) {
		ctl_buf_printf(b, "{\"message\":{");
		ctl_queue_json_msg(b, m, worker, s->sender.p != NULL ? sender : NULL);
		ctl_buf_printf(b, ",\"recipient_list\":[");
		for (uint32_t i = 0; i < s->nslots; i++) {
			if (s->rcpt[i].addr.p == NULL)
				continue;
			ctl_buf_printf(b, "%s{\"address\":", first ? "" : ",");
			ctl_buf_json_str(b, s->rcpt[i].addr.p, SIZE_MAX);
			ctl_buf_printf(b, ",\"done\":%s}", s->rcpt[i].done ? "true" : "false");
			first = false;
		}
		ctl_buf_printf(b, "],\"last_reply\":");
		ctl_buf_json_str(b, s->reply.p != NULL ? s->reply.p : "", SIZE_MAX);
		ctl_buf_printf(b, "},\"truncated\":%s}\n", s->cut ? "true" : "false");
		return;
	}
	if (m->flags & CMD_QUEUE_F_DELETE_PENDING)
		state = "delete pending (a delivery attempt is running)";
	else if ((m->flags & CMD_QUEUE_F_ACTIVE) && (m->flags & CMD_QUEUE_F_HELD))
		state = "active (a delivery attempt is running), held";
	else if (m->flags & CMD_QUEUE_F_ACTIVE)
		state = "active (a delivery attempt is running)";
	else if (m->flags & CMD_QUEUE_F_HELD)
		state = "held";
	else if (m->next_attempt != 0 && (int64_t)m->next_attempt > now_s)
		state = "deferred";
	else
		state = "queued";
	ctl_queue_time(arrival, sizeof(arrival), m->arrival);
	ctl_queue_next(next, sizeof(next), m, now_s);
	at = strcmp(state, "deferred") == 0; /* next is a time */
	ctl_buf_printf(b,
	               "id:           %016" PRIX64 "\n"
	               "worker:       %" PRIu32 "\n"
	               "state:        %s\n"
	               "arrival:      %s\n"
	               "size:         %" PRIu64 " bytes\n"
	               "sender:       <",
	               m->id, worker, state, arrival, m->size);
	if (s->sender.p != NULL)
		ctl_queue_put(b, sender, SIZE_MAX);
	else /* its pieces did not come: what the message item has */
		ctl_queue_put(b, m->sender,
		              m->sender_len < sizeof(m->sender) ? m->sender_len
		                                                : sizeof(m->sender));
	ctl_buf_printf(b, ">\nattempts:     %" PRIu32 "\nnext attempt: %s", m->attempts, next);
	if (at)
		ctl_buf_printf(b, " (in %" PRId64 " s)", (int64_t)m->next_attempt - now_s);
	ctl_buf_printf(b, "\nlast reply:   ");
	if (s->reply.p != NULL)
		ctl_queue_put(b, s->reply.p, SIZE_MAX);
	else
		ctl_buf_printf(b, "(none)");
	ctl_buf_printf(b, "\nrecipients:   %" PRIu32 ", %" PRIu32 " done\n", m->nrcpt, m->ndone);
	for (uint32_t i = 0; i < s->nslots; i++) {
		if (s->rcpt[i].addr.p == NULL)
			continue;
		ctl_buf_printf(b, "  %-8s <", s->rcpt[i].done ? "done" : "pending");
		ctl_queue_put(b, s->rcpt[i].addr.p, SIZE_MAX);
		ctl_buf_printf(b, ">\n");
	}
	if (s->cut)
		ctl_buf_printf(b, "(answer cut short: the response ring was full)\n");
}

/* ---- one message, or flush of all ---- */

/* What a worker's answer to a change means: the JSON "result" and the text. */
static const struct ctl_queue_outcome {
	uint8_t op;
	uint64_t aux; /* enum cmd_queue_result */
	const char *result, *text;
} ctl_queue_outcomes[] = {
    {CMD_QUEUE_FLUSH, CMD_QUEUE_DONE, "flushed", "flushed: due now"},
    {CMD_QUEUE_FLUSH, CMD_QUEUE_UNCHANGED, "held, not flushed",
     "on hold, not flushed (release it first)"},
    {CMD_QUEUE_DELETE, CMD_QUEUE_DONE, "deleted", "deleted"},
    {CMD_QUEUE_DELETE, CMD_QUEUE_PENDING, "delete pending",
     "delete pending: a delivery attempt is running; the message is deleted when it ends"},
    {CMD_QUEUE_HOLD, CMD_QUEUE_DONE, "held", "held"},
    {CMD_QUEUE_HOLD, CMD_QUEUE_UNCHANGED, "already held", "already held"},
    {CMD_QUEUE_RELEASE, CMD_QUEUE_DONE, "released", "released"},
    {CMD_QUEUE_RELEASE, CMD_QUEUE_UNCHANGED, "not held", "was not held"},
};

static const struct ctl_queue_outcome ctl_queue_failed = {
    0, CMD_QUEUE_FAILED, "failed", "not changed: the spool refused (see the dataplane's log)"};

/* The outcome of op for aux, or NULL for an aux that makes no sense. */
static const struct ctl_queue_outcome *ctl_queue_outcome(uint8_t op, uint64_t aux)
{
	if (aux == CMD_QUEUE_FAILED)
		return &ctl_queue_failed;
	for (size_t i = 0; i < sizeof(ctl_queue_outcomes) / sizeof(ctl_queue_outcomes[0]); i++)
		if (ctl_queue_outcomes[i].op == op && ctl_queue_outcomes[i].aux == aux)
			return &ctl_queue_outcomes[i];
	return NULL;
}

static void ctl_queue_unanswered(struct ctl_buf *b, const struct dpreq *r, bool json)
{
	bool first = true;

	if (json)
		ctl_buf_printf(b, ",\"unanswered\":[");
	for (uint32_t w = 0; w < r->nworkers; w++) {
		const char *note = ctl_queue_note(&r->w[w]);

		if (note == NULL)
			continue;
		if (json)
			ctl_buf_printf(b, "%s{\"worker\":%" PRIu32 ",\"note\":\"%s\"}",
			               first ? "" : ",", w, note);
		else
			ctl_buf_printf(b, "worker %" PRIu32 ": %s\n", w, note);
		first = false;
	}
	if (json)
		ctl_buf_printf(b, "]");
}

static const char *ctl_queue_flush_all(struct ctl_buf *b, const struct dpreq *r, bool json)
{
	uint64_t flushed = 0;
	bool complete = true;

	for (uint32_t w = 0; w < r->nworkers; w++) {
		if (ctl_queue_answered(&r->w[w]))
			flushed += r->w[w].aux;
		else
			complete = false;
	}
	if (json) {
		ctl_buf_printf(b, "{\"op\":\"flush\",\"flushed\":%" PRIu64, flushed);
		ctl_queue_unanswered(b, r, true);
		ctl_buf_printf(b, ",\"complete\":%s}\n", complete ? "true" : "false");
	} else {
		ctl_queue_unanswered(b, r, false);
		ctl_buf_printf(b, "flushed: %" PRIu64 " message%s due now (held ones stay held)\n",
		               flushed, flushed == 1 ? "" : "s");
	}
	return complete ? "ok" : "notready";
}

const char *ctl_queue_report(struct ctl_buf *b, const struct dpreq *r, uint8_t op, uint64_t id,
                             uint32_t max, bool json, int64_t now_s)
{
	const struct dpreq_worker *owner = NULL;
	const struct ctl_queue_outcome *outcome;
	uint32_t ow = 0;
	bool complete = true;

	if (op == CMD_QUEUE_LIST)
		return ctl_queue_list(b, r, max, json, now_s);
	if (op == CMD_QUEUE_FLUSH && id == 0)
		return ctl_queue_flush_all(b, r, json);
	for (uint32_t w = 0; w < r->nworkers; w++) {
		if (!ctl_queue_answered(&r->w[w]))
			complete = false;
		else if (owner == NULL && r->w[w].aux != CMD_QUEUE_NOT_FOUND) {
			owner = &r->w[w];
			ow = w;
		}
	}
	if (owner == NULL) {
		/* not found: on every worker, or only on those that answered */
		if (json) {
			ctl_buf_printf(b,
			               "{\"op\":\"%s\",\"id\":\"%016" PRIX64 "\",\"found\":false",
			               op < CMD_QUEUE__OPS ? ctl_queue_ops[op] : "?", id);
			ctl_queue_unanswered(b, r, true);
			ctl_buf_printf(b, ",\"complete\":%s}\n", complete ? "true" : "false");
		} else {
			ctl_queue_unanswered(b, r, false);
			ctl_buf_printf(b, "%016" PRIX64 ": not in the queue%s\n", id,
			               complete ? "" : " of the workers that answered");
		}
		return complete ? "error" : "notready";
	}
	if (op == CMD_QUEUE_SHOW) {
		struct ctl_queue_shown s;

		memset(&s, 0, sizeof(s));
		if (owner->aux != CMD_QUEUE_DONE || !ctl_queue_gather(owner, &s)) {
			ctl_queue_shown_free(&s);
			ctl_buf_printf(b, "%016" PRIX64 ": answer cut short, try again\n", id);
			return "error";
		}
		ctl_queue_show(b, &s, ow, json, now_s);
		ctl_queue_shown_free(&s);
		return "ok";
	}
	outcome = ctl_queue_outcome(op, owner->aux);
	if (json) {
		ctl_buf_printf(b,
		               "{\"op\":\"%s\",\"id\":\"%016" PRIX64
		               "\",\"found\":true,\"worker\":%" PRIu32 ",\"result\":\"%s\"",
		               op < CMD_QUEUE__OPS ? ctl_queue_ops[op] : "?", id, ow,
		               outcome != NULL ? outcome->result : "unexpected answer");
		ctl_buf_printf(b, ",\"complete\":%s}\n", complete ? "true" : "false");
	} else if (outcome != NULL) {
		ctl_buf_printf(b, "%016" PRIX64 ": %s\n", id, outcome->text);
	} else {
		ctl_buf_printf(
		    b, "%016" PRIX64 ": unexpected answer %" PRIu64 " from worker %" PRIu32 "\n",
		    id, owner->aux, ow);
	}
	/* the owner answered: the others do not matter for a change of one message */
	return outcome != NULL && outcome->aux != CMD_QUEUE_FAILED ? "ok" : "error";
}
