/*
 * cmdring.h - the control → dataplane command channel (DESIGN.md, "Control
 * plane and shared memory": commands from the CLI travel on request/response
 * rings). Per worker, two single-producer/single-consumer rings of the
 * evring.h kind in the shared memory region: requests (posternd → worker)
 * and responses (worker → posternd). The ring code and its memory-ordering
 * argument are evring's; only the record layout (EVRING_RECORD_SIZE) differs.
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
	CMD_QUEUE = 3,    /* payload struct cmd_queue_req; items union cmd_queue_item */
	CMD_DNS = 4,      /* payload struct cmd_dns_req; items union cmd_dns_item (worker 0) */
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
#define CMD_SESSION_F_IPV6 0x2    /* an IPv6 connection: laddr6/raddr6, laddr/raddr 0 */
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
	uint8_t laddr6[16], raddr6[16];    /* with CMD_SESSION_F_IPV6, as on the wire */
};

_Static_assert(sizeof(struct cmd_session) == 88, "session item size");
#define CMD_SESSIONS_PER_RECORD (CMDRING_PAYLOAD_MAX / sizeof(struct cmd_session))

/* ---- CMD_QUEUE ---- */

/*
 * `posternctl queue`: the worker's spool queue (dataplane/spool/spool.h)
 * and what its delivery scheduler knows (relay/outbound.h). A message id
 * embeds the number of the worker whose spool holds it (SPOOL_ID in
 * spool_format.h: the top 10 bits), so ids are unique across workers and
 * shown unqualified; the request still goes to every worker, and only the
 * owner finds the message.
 */
enum cmd_queue_op {
	CMD_QUEUE_LIST = 0,    /* up to max MSG items, in queue (commit) order */
	CMD_QUEUE_SHOW = 1,    /* id: MSG item, then TEXT items: sender, recipients, reply */
	CMD_QUEUE_FLUSH = 2,   /* id, or 0 for every message: make it due now */
	CMD_QUEUE_DELETE = 3,  /* id */
	CMD_QUEUE_HOLD = 4,    /* id */
	CMD_QUEUE_RELEASE = 5, /* id */
	CMD_QUEUE__OPS
};

struct cmd_queue_req {
	uint8_t op; /* enum cmd_queue_op */
	uint8_t pad[3];
	uint32_t max; /* LIST: at most this many messages (0: none, just count) */
	uint64_t id;  /* the message; 0 is never a message id (segments count from 1) */
};

/*
 * aux of the final record: LIST the worker's queued messages (listed or
 * not), FLUSH without id the number of messages made due, else one of
 * these (NOT_FOUND from every worker but the owner).
 */
enum cmd_queue_result {
	CMD_QUEUE_NOT_FOUND = 0, /* not in this worker's queue */
	CMD_QUEUE_DONE = 1,      /* shown, made due, deleted, held or released */
	CMD_QUEUE_PENDING = 2,   /* DELETE: an attempt is running, deleted when it ends */
	CMD_QUEUE_UNCHANGED = 3, /* HOLD of a held message, RELEASE of one not held,
	                            FLUSH of a held one (it stays held) */
	CMD_QUEUE_FAILED = 4,    /* the spool refused the change */
};

enum cmd_queue_kind {
	CMD_QUEUE_ITEM_MSG = 1,  /* struct cmd_queue_msg */
	CMD_QUEUE_ITEM_TEXT = 2, /* struct cmd_queue_text */
};

#define CMD_QUEUE_F_HELD 0x01           /* on hold: never delivered until released */
#define CMD_QUEUE_F_ACTIVE 0x02         /* a delivery attempt is running */
#define CMD_QUEUE_F_DELETE_PENDING 0x04 /* deleted; waits for the attempt to end */
#define CMD_QUEUE_F_SENDER_CUT 0x08     /* sender[] holds only the first bytes */

#define CMD_QUEUE_SENDER_MAX 64

/* One queued message (LIST, and first of SHOW). Strings are not NUL-terminated. */
struct cmd_queue_msg {
	uint8_t kind;        /* CMD_QUEUE_ITEM_MSG */
	uint8_t flags;       /* CMD_QUEUE_F_* */
	uint16_t sender_len; /* bytes of sender[] used; "" is the null sender */
	uint32_t nrcpt;
	uint32_t ndone; /* recipients delivered or bounced */
	uint32_t attempts;
	uint64_t id;
	uint64_t size;         /* body bytes */
	uint64_t arrival;      /* unix seconds */
	uint64_t next_attempt; /* unix seconds; 0: never deferred */
	char sender[CMD_QUEUE_SENDER_MAX];
};

enum cmd_queue_field {
	CMD_QUEUE_TEXT_SENDER = 1, /* the whole reverse-path, without <> */
	CMD_QUEUE_TEXT_RCPT = 2,   /* recipient number index */
	CMD_QUEUE_TEXT_REPLY = 3,  /* the last deferral's reason */
};

#define CMD_QUEUE_T_MORE 0x01 /* the text goes on in the next item */
#define CMD_QUEUE_T_DONE 0x02 /* RCPT: delivered or bounced */

#define CMD_QUEUE_TEXT_MAX 104
#define CMD_QUEUE_REPLY_MAX 1024 /* a longer last reply is cut there */

/* A piece of a SHOW string: a long one takes several items, in order. */
struct cmd_queue_text {
	uint8_t kind;   /* CMD_QUEUE_ITEM_TEXT */
	uint8_t field;  /* enum cmd_queue_field */
	uint8_t flags;  /* CMD_QUEUE_T_* */
	uint8_t len;    /* bytes of text[] used */
	uint32_t index; /* RCPT: the recipient's number; else 0 */
	char text[CMD_QUEUE_TEXT_MAX];
};

/* Items of one size (cmdring_item_size), told apart by their first byte. */
union cmd_queue_item {
	uint8_t kind; /* enum cmd_queue_kind */
	struct cmd_queue_msg msg;
	struct cmd_queue_text text;
};

_Static_assert(sizeof(struct cmd_queue_req) == 16, "queue request size");
_Static_assert(sizeof(struct cmd_queue_msg) == 112, "queue message item size");
_Static_assert(sizeof(struct cmd_queue_text) == 112, "queue text item size");
_Static_assert(sizeof(union cmd_queue_item) == 112, "queue item size");
/* 8 per record: a worker lists 1016 messages at most (a response ring less one) */
#define CMD_QUEUE_PER_RECORD (CMDRING_PAYLOAD_MAX / sizeof(union cmd_queue_item))

/* ---- CMD_DNS ---- */

/*
 * `posternctl dns lookup|flush`: the resolver runs on postern-dp's main
 * lcore (dataplane/dns/resolver.h), which takes lookups only from the
 * workers: worker 0 asks it and answers; the other workers answer with no
 * item. An answer cannot wait, so a request is asked again until it is
 * done: the first LOOKUP of a name submits it (a HEAD item with state
 * PENDING), a later one answers PENDING until the answer came, then DONE
 * with the route (HEAD, then one HOP per address) and forgets it.
 */
#define CMD_DNS_LOOKUP 1
#define CMD_DNS_FLUSH 2     /* name "" = the whole cache */
#define CMD_DNS_F_NO_MX 0x1 /* "[host]": A records only */
#define CMD_DNS_NAME_MAX 256

struct cmd_dns_req {
	uint8_t op;    /* CMD_DNS_LOOKUP, CMD_DNS_FLUSH */
	uint8_t flags; /* CMD_DNS_F_* */
	uint16_t reserved;
	uint32_t reserved2;
	char name[CMD_DNS_NAME_MAX]; /* lowercase, NUL-terminated */
};

enum cmd_dns_kind { CMD_DNS_ITEM_HEAD = 1, CMD_DNS_ITEM_HOP = 2 };
enum cmd_dns_state { CMD_DNS_PENDING = 0, CMD_DNS_DONE = 1, CMD_DNS_BUSY = 2, CMD_DNS_OFF = 3 };

struct cmd_dns_head {
	uint8_t kind;      /* CMD_DNS_ITEM_HEAD */
	uint8_t state;     /* enum cmd_dns_state */
	uint8_t route;     /* enum dns_route_kind (dataplane/dns/dns_route.h) */
	uint8_t mx_sec;    /* enum dns_sec */
	uint8_t implicit;  /* no MX: the domain's own address */
	uint8_t cached;    /* every answer from the cache */
	uint8_t fail_kind; /* enum dns_kind behind a temporary failure */
	uint8_t reserved;
	uint32_t nhops, ttl, queries, hits, flushed;
	uint32_t reserved2;
	uint64_t latency_ns;
	char reason[200];
	char pad[40];
};

struct cmd_dns_hop {
	uint8_t kind; /* CMD_DNS_ITEM_HOP */
	uint8_t sec;  /* enum dns_sec */
	uint16_t pref;
	uint32_t addr; /* network order */
	char host[CMD_DNS_NAME_MAX];
};

union cmd_dns_item {
	uint8_t kind; /* enum cmd_dns_kind */
	struct cmd_dns_head head;
	struct cmd_dns_hop hop;
};

_Static_assert(sizeof(struct cmd_dns_req) == 264, "dns request size");
_Static_assert(sizeof(struct cmd_dns_head) == 280, "dns head item size");
_Static_assert(sizeof(union cmd_dns_item) == 280, "dns item size");

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
