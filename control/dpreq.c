/*
 * dpreq.c - posternd's outstanding requests to the dataplane workers
 * (dpreq.h): send to every worker, gather answers by id and seq, expire
 * at the deadline. Every record was written by another process: ids,
 * seqs and counts are checked, never trusted.
 */
#include <stdlib.h>
#include <string.h>

#include "dpreq.h"

static const char *const dpreq_state_names[] = {
    [DPREQ_PENDING] = "pending",
    [DPREQ_DONE] = "done",
    [DPREQ_UNSENT] = "not taking requests",
    [DPREQ_TIMEOUT] = "no answer",
};

const char *dpreq_worker_state_name(uint8_t state)
{
	return state < sizeof(dpreq_state_names) / sizeof(dpreq_state_names[0])
	           ? dpreq_state_names[state]
	           : "unknown";
}

void dpreq_init(struct dpreq_table *t, uint64_t first_id)
{
	memset(t, 0, sizeof(*t));
	t->next_id = first_id != 0 ? first_id : 1;
}

struct dpreq *dpreq_start(struct dpreq_table *t, struct shm_region *rg, uint32_t nworkers,
                          uint16_t code, const void *payload, uint16_t len, uint64_t now_ns,
                          uint64_t timeout_ns)
{
	struct cmd_record rec;
	struct dpreq *r = NULL;

	if (nworkers == 0 || nworkers > SHM_CMD_RINGS || nworkers > rg->cmd_nworkers ||
	    len > CMDRING_PAYLOAD_MAX)
		return NULL;
	for (unsigned i = 0; i < DPREQ_MAX && r == NULL; i++)
		if (t->req[i].id == 0)
			r = &t->req[i];
	if (r == NULL)
		return NULL;
	memset(r, 0, sizeof(*r));
	r->id = t->next_id++;
	if (t->next_id == 0)
		t->next_id = 1; /* 0 marks a free slot */
	r->code = code;
	r->nworkers = nworkers;
	r->start_ns = now_ns;
	r->deadline_ns = now_ns + timeout_ns;

	memset(&rec, 0, sizeof(rec));
	rec.id = r->id;
	rec.code = code;
	rec.len = len;
	if (len > 0)
		memcpy(rec.payload, payload, len);
	for (uint32_t w = 0; w < nworkers; w++) {
		if (cmdring_push(shm_cmd_request(rg, w), &rec)) {
			r->w[w].state = DPREQ_PENDING;
			r->npending++;
		} else {
			r->w[w].state = DPREQ_UNSENT;
		}
	}
	return r;
}

/* Binary bytes onto a ctl_buf (report.h grows it for text only). */
static void dpreq_buf_append(struct ctl_buf *b, const void *bytes, size_t n)
{
	if (b->oom || n == 0)
		return;
	if (b->cap - b->len < n + 1) {
		size_t ncap = b->cap == 0 ? 4096 : b->cap;
		char *np;

		while (ncap - b->len < n + 1)
			ncap *= 2;
		np = realloc(b->p, ncap);
		if (np == NULL) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->len, bytes, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static struct dpreq *dpreq_find(struct dpreq_table *t, uint64_t id)
{
	for (unsigned i = 0; i < DPREQ_MAX; i++)
		if (t->req[i].id != 0 && t->req[i].id == id)
			return &t->req[i];
	return NULL;
}

static void dpreq_finish(struct dpreq *r, struct dpreq_worker *dw, uint8_t state)
{
	dw->state = state;
	r->npending--;
}

/* One answer record of worker w. */
static void dpreq_take(struct dpreq_table *t, uint32_t w, const struct cmd_record *rec)
{
	struct dpreq *r = dpreq_find(t, rec->id);
	struct dpreq_worker *dw;
	uint16_t item;

	if (r == NULL || w >= r->nworkers || r->w[w].state != DPREQ_PENDING ||
	    rec->code != r->code) {
		t->stray++;
		return;
	}
	dw = &r->w[w];
	if (rec->seq != dw->next_seq)
		dw->truncated = true; /* records lost (a ring resynchronised) */
	dw->next_seq = (uint16_t)(rec->seq + 1);
	item = cmdring_item_size(rec->code);
	dpreq_buf_append(&dw->data, rec->payload, (size_t)rec->count * item);
	dw->items += rec->count;
	if (rec->flags & CMDRING_F_MORE)
		return;
	dw->status = rec->status;
	dw->aux = rec->aux;
	if (rec->flags & CMDRING_F_TRUNCATED)
		dw->truncated = true;
	dpreq_finish(r, dw, DPREQ_DONE);
}

unsigned dpreq_poll(struct dpreq_table *t, struct shm_region *rg, uint64_t now_ns)
{
	struct cmd_record rec;
	unsigned taken = 0;

	for (uint32_t w = 0; w < rg->cmd_nworkers && w < SHM_CMD_RINGS; w++) {
		struct evring *ring = shm_cmd_response(rg, w);

		/* at most a ring's worth per pass: a runaway writer cannot keep us here */
		for (uint32_t n = 0; n < rg->cmd_resp_capacity; n++) {
			enum evring_pop_result res = cmdring_pop(ring, &rec, NULL);

			if (res == EVRING_EMPTY)
				break;
			if (res == EVRING_CORRUPT) {
				/* whatever was skipped: every answer in progress is incomplete */
				for (unsigned i = 0; i < DPREQ_MAX; i++)
					if (t->req[i].id != 0 && w < t->req[i].nworkers)
						t->req[i].w[w].truncated = true;
				continue;
			}
			taken++;
			dpreq_take(t, w, &rec);
		}
	}
	for (unsigned i = 0; i < DPREQ_MAX; i++) {
		struct dpreq *r = &t->req[i];

		if (r->id == 0 || r->npending == 0 || now_ns < r->deadline_ns)
			continue;
		for (uint32_t w = 0; w < r->nworkers; w++)
			if (r->w[w].state == DPREQ_PENDING)
				dpreq_finish(r, &r->w[w], DPREQ_TIMEOUT);
	}
	return taken;
}

bool dpreq_busy(const struct dpreq_table *t)
{
	for (unsigned i = 0; i < DPREQ_MAX; i++)
		if (t->req[i].id != 0 && t->req[i].npending > 0)
			return true;
	return false;
}

uint64_t dpreq_next_deadline(const struct dpreq_table *t)
{
	uint64_t next = UINT64_MAX;

	for (unsigned i = 0; i < DPREQ_MAX; i++)
		if (t->req[i].id != 0 && t->req[i].npending > 0 && t->req[i].deadline_ns < next)
			next = t->req[i].deadline_ns;
	return next;
}

void dpreq_free(struct dpreq *r)
{
	for (uint32_t w = 0; w < SHM_CMD_RINGS; w++)
		ctl_buf_free(&r->w[w].data);
	memset(r, 0, sizeof(*r));
}
