/*
 * cmdring.h - the control → dataplane command channel (DESIGN.md, "Control
 * plane and shared memory": commands from the CLI travel on request/response
 * rings). Per worker, two single-producer/single-consumer rings of the
 * evring.h kind in the shared memory region: requests (posternd → worker)
 * and responses (worker → posternd). The ring code and its memory-ordering
 * argument are evring's; only the 256-byte record layout differs.
 *
 * A request is one record: an id (unique for posternd's lifetime and across
 * its restarts), a command code and a small payload. The answer is one or
 * more records carrying the same id and code, numbered by seq from 0, all
 * but the last flagged CMDRING_F_MORE. Payloads of answers are whole items
 * of a command-specific fixed size (`count` of them per record).
 *
 * The worker never waits. It takes a request only when its response ring
 * has room for at least one record, and the answer writer (cmdring_reply_*)
 * keeps one record free for the final one: when the ring fills up, the
 * items that do not fit are left out and the final record says
 * CMDRING_F_TRUNCATED. So every request taken gets a final record.
 */
#ifndef PG_CMDRING_H
#define PG_CMDRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evring.h"

#define CMDRING_HEADER_SIZE 32
#define CMDRING_PAYLOAD_MAX (EVRING_RECORD_SIZE - CMDRING_HEADER_SIZE)

/* Commands; append only (the number travels in shared memory). */
enum cmdring_code {
	CMD_PING = 1,     /* echo the payload; aux = the worker's adopted generation */
	CMD_SESSIONS = 2, /* payload struct cmd_sessions_req; items struct cmd_session */
	CMD__COUNT
};

/* Record flags. */
#define CMDRING_F_MORE 0x01      /* an answer record with more to follow */
#define CMDRING_F_TRUNCATED 0x02 /* final record: items were left out (ring full or limit) */

/* Answer status, in every answer record. */
enum cmdring_status {
	CMDRING_OK = 0,
	CMDRING_UNKNOWN = 1, /* this dataplane does not know the command */
	CMDRING_BAD = 2,     /* malformed request payload */
};

struct cmd_record {
	uint64_t id;     /* request id, echoed by every record of the answer */
	uint16_t code;   /* enum cmdring_code */
	uint8_t flags;   /* CMDRING_F_* */
	uint8_t status;  /* answers: enum cmdring_status */
	uint16_t len;    /* payload bytes */
	uint16_t seq;    /* answers: record number from 0 */
	uint32_t worker; /* answers: the worker that wrote it */
	uint32_t count;  /* answers: items in this record */
	uint64_t aux;    /* final answer record: command-specific (see the codes) */
	uint8_t payload[CMDRING_PAYLOAD_MAX];
};

_Static_assert(sizeof(struct cmd_record) == EVRING_RECORD_SIZE, "command record size");
_Static_assert(offsetof(struct cmd_record, payload) == CMDRING_HEADER_SIZE, "header size");

/* ---- CMD_SESSIONS ---- */

struct cmd_sessions_req {
	uint32_t max; /* list at most this many connections (0: none, just count) */
};

#define CMD_SESSION_F_PASSIVE 0x1 /* accepted from a listener on lport */
#define CMD_SESSION_STATE_MAX 16

/*
 * One TCP connection of the worker. aux of the final record: the number of
 * connections the worker has (listed or not).
 */
struct cmd_session {
	uint64_t age_ns;
	uint32_t laddr, raddr; /* network order */
	uint16_t lport, rport; /* host order */
	uint32_t bytes_in;     /* in-order bytes received, modulo 2^32 */
	uint32_t bytes_out;    /* bytes the peer acknowledged, modulo 2^32 */
	uint32_t sndq, rcvq;   /* bytes in the send / receive buffer now */
	uint16_t flags;        /* CMD_SESSION_F_* */
	uint16_t reserved;
	char state[CMD_SESSION_STATE_MAX]; /* "ESTABLISHED", NUL-terminated */
};

_Static_assert(sizeof(struct cmd_session) == 56, "session item size");
#define CMD_SESSIONS_PER_RECORD (CMDRING_PAYLOAD_MAX / sizeof(struct cmd_session))

/* ---- both sides ---- */

/* Copy rec into the ring; false when it is full (nothing written). */
bool cmdring_push(struct evring *r, const struct cmd_record *rec);
/*
 * Take the next record. Another process wrote it: len is bounded to the
 * payload, count to what len can hold for the code's item size.
 */
enum evring_pop_result cmdring_pop(struct evring *r, struct cmd_record *out, uint64_t *lost);
/* Item size of a code's answers (1 for byte payloads such as PING). */
uint16_t cmdring_item_size(uint16_t code);
const char *cmdring_code_name(uint16_t code);

/* ---- the answering side (a worker) ---- */

/* An answer being written: items are packed into `rec` until it is full. */
struct cmdring_reply {
	struct evring *ring;
	struct cmd_record rec;
	bool truncated;
};

/* Start the answer to req; the caller checked evring_space(ring) >= 1. */
void cmdring_reply_begin(struct cmdring_reply *rp, struct evring *ring,
                         const struct cmd_record *req, uint32_t worker);
/*
 * Append one item (len <= CMDRING_PAYLOAD_MAX). false when it did not fit
 * (the ring is full but for the final record): the answer is truncated
 * and further items are refused too.
 */
bool cmdring_reply_add(struct cmdring_reply *rp, const void *item, uint16_t len);
/* Commit the final record with status and aux. Always fits. */
void cmdring_reply_end(struct cmdring_reply *rp, uint8_t status, uint64_t aux);

#endif
