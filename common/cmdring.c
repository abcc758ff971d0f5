/*
 * cmdring.c - the command channel's records on evring rings (cmdring.h):
 * pushing and popping whole records, bounding what another process wrote,
 * and the answer writer that never waits and always leaves room for the
 * final record.
 */
#include <string.h>

#include "cmdring.h"

static const char *const cmdring_names[CMD__COUNT] = {
    [CMD_PING] = "ping",
    [CMD_SESSIONS] = "sessions",
    [CMD_QUEUE] = "queue",
    [CMD_DNS] = "dns",
};

const char *cmdring_code_name(uint16_t code)
{
	return code < CMD__COUNT && cmdring_names[code] != NULL ? cmdring_names[code] : "unknown";
}

uint16_t cmdring_item_size(uint16_t code)
{
	switch (code) {
	case CMD_SESSIONS:
		return (uint16_t)sizeof(struct cmd_session);
	case CMD_QUEUE:
		return (uint16_t)sizeof(union cmd_queue_item);
	case CMD_DNS:
		return (uint16_t)sizeof(union cmd_dns_item);
	default:
		return 1;
	}
}

bool cmdring_push(struct evring *r, const struct cmd_record *rec)
{
	struct evring_record *slot;

	/* check first: evring_reserve would count a refusal as a dropped event */
	if (evring_space(r) == 0)
		return false;
	slot = evring_reserve(r);
	if (slot == NULL)
		return false;
	memcpy(slot, rec, sizeof(*rec));
	evring_commit(r);
	return true;
}

enum evring_pop_result cmdring_pop(struct evring *r, struct cmd_record *out, uint64_t *lost)
{
	enum evring_pop_result res = evring_pop_raw(r, out, lost);
	uint16_t item;

	if (res != EVRING_RECORD)
		return res;
	if (out->len > CMDRING_PAYLOAD_MAX)
		out->len = CMDRING_PAYLOAD_MAX;
	item = cmdring_item_size(out->code);
	if (out->count > out->len / item)
		out->count = out->len / item;
	return EVRING_RECORD;
}

void cmdring_reply_begin(struct cmdring_reply *rp, struct evring *ring,
                         const struct cmd_record *req, uint32_t worker)
{
	memset(rp, 0, sizeof(*rp));
	rp->ring = ring;
	rp->rec.id = req->id;
	rp->rec.code = req->code;
	rp->rec.worker = worker;
}

bool cmdring_reply_add(struct cmdring_reply *rp, const void *item, uint16_t len)
{
	if (rp->truncated || len > CMDRING_PAYLOAD_MAX) {
		rp->truncated = true;
		return false;
	}
	if (rp->rec.len + len > CMDRING_PAYLOAD_MAX) {
		/* this record is full: commit it only if the final one still fits after */
		if (evring_space(rp->ring) < 2) {
			rp->truncated = true;
			return false;
		}
		rp->rec.flags = CMDRING_F_MORE;
		cmdring_push(rp->ring, &rp->rec);
		rp->rec.seq++;
		rp->rec.len = 0;
		rp->rec.count = 0;
		memset(rp->rec.payload, 0, sizeof(rp->rec.payload));
	}
	memcpy(rp->rec.payload + rp->rec.len, item, len);
	rp->rec.len = (uint16_t)(rp->rec.len + len);
	rp->rec.count++;
	return true;
}

void cmdring_reply_end(struct cmdring_reply *rp, uint8_t status, uint64_t aux)
{
	rp->rec.flags = rp->truncated ? CMDRING_F_TRUNCATED : 0;
	rp->rec.status = status;
	rp->rec.aux = aux;
	/*
	 * Room was checked before the request was taken and every MORE record
	 * left one free; only a consumer breaking the protocol can make this
	 * fail, and then posternd's deadline covers the missing answer.
	 */
	(void)cmdring_push(rp->ring, &rp->rec);
}
