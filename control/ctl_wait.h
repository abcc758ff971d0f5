/*
 * ctl_wait.h - posternctl requests that posternd answers later, from its
 * poll loop, never by blocking: `policy set|del --wait` and `reload
 * --wait` (the answer waits until every worker has adopted the new
 * generation, and says how long that took), and `sessions` and `queue`
 * (the answer waits for every worker's answer over the command channel,
 * dpreq.h; the queue's requests and reports are in ctl_queue.c). One
 * struct ctl_wait per client; the reports are here too so the tests can
 * render them over fabricated regions.
 */
#ifndef PG_CTL_WAIT_H
#define PG_CTL_WAIT_H

#include <stdbool.h>
#include <stdint.h>

#include "dpreq.h"
#include "report.h"
#include "shm.h"

#define CTL_WAIT_DEFAULT_S 5
#define CTL_WAIT_MAX_S 10 /* posternctl gives up on an answer after 15 s */
#define CTL_SESSIONS_DEFAULT_MAX 1000
/* what a response ring holds, one record kept for the final one */
#define CTL_SESSIONS_MAX ((SHM_CMD_RESP_CAPACITY - 1) * CMD_SESSIONS_PER_RECORD)

enum ctl_wait_kind {
	CTL_WAIT_NONE = 0,
	CTL_WAIT_ADOPT,    /* every worker on generation `gen` */
	CTL_WAIT_SESSIONS, /* every worker's answer to `req` */
	CTL_WAIT_QUEUE,    /* every worker's answer to `req` (ctl_queue.h) */
	CTL_WAIT_DNS,      /* worker 0's answer to a dns request (ctl_wait_dns) */
};

struct ctl_wait {
	uint8_t kind; /* enum ctl_wait_kind */
	bool json;
	uint64_t gen;          /* ADOPT: the generation published */
	uint64_t published_ns; /* ADOPT: CLOCK_MONOTONIC of its publication */
	uint64_t deadline_ns;  /* ADOPT: give up then */
	uint64_t timeout_ns;   /* ADOPT: for the message */
	struct dpreq *req;     /* SESSIONS, QUEUE */
	uint32_t max;          /* SESSIONS: connections listed per worker at most; QUEUE list */
	uint8_t queue_op;      /* QUEUE: enum cmd_queue_op */
	uint64_t queue_id;     /* QUEUE: the message, 0 for none */
	uint8_t dns_op;        /* DNS: CMD_DNS_LOOKUP or CMD_DNS_FLUSH */
	char dns_name[256];    /* DNS: the name asked */
	struct ctl_buf body;   /* the answer so far (ADOPT: the publication's) */
};

/* The state of an adoption: who has it, how long it took. */
struct ctl_adoption {
	uint32_t nworkers;
	uint32_t nlagging;
	uint32_t lagging[SNAP_MAX_WORKERS];     /* workers not on gen yet */
	uint64_t lagging_gen[SNAP_MAX_WORKERS]; /* the generation each runs */
	uint64_t latency_ns; /* publication to the last worker's adoption (nlagging 0) */
};

/*
 * Look at the reader records: has every worker of the live dataplane
 * adopted gen (or a later one)? false also when no dataplane is ready
 * (nworkers 0). published_ns is the publication's time (region's
 * published_ns right after shm_publish).
 */
bool ctl_adoption_check(const struct shm_region *rg, uint64_t gen, uint64_t published_ns,
                        struct ctl_adoption *a);

/*
 * Wait for the adoption of gen; body holds the publication's answer (text,
 * or one JSON object that gets an "adoption" member), taken over.
 */
void ctl_wait_adopt(struct ctl_wait *cw, const struct shm_region *rg, uint64_t gen, uint64_t now_ns,
                    uint64_t timeout_ns, bool json, struct ctl_buf *body);

/*
 * `dns lookup NAME [no-mx]` / `dns flush [NAME]`: ask the dataplane's
 * resolver through worker 0 (common/cmdring.h CMD_DNS). The verdict
 * "pending" means: not answered yet, ask again (posternctl does).
 */
const char *ctl_wait_dns(struct ctl_wait *cw, struct dpreq_table *t, struct shm_region *rg,
                         const struct cmd_dns_req *q, bool json, uint64_t now_ns,
                         struct ctl_buf *b);
const char *ctl_dns_report(struct ctl_buf *b, const struct dpreq *r, const char *name, uint8_t op,
                           bool json);

/*
 * Ask every worker for its connections (at most max each). NULL: the
 * answer will come from ctl_wait_poll. Otherwise the verdict, with the
 * reason in b (no ready dataplane, too many requests in flight).
 */
const char *ctl_wait_sessions(struct ctl_wait *cw, struct dpreq_table *t, struct shm_region *rg,
                              uint32_t max, bool json, uint64_t now_ns, struct ctl_buf *b);

/*
 * Send command code to every worker of the ready dataplane, and make cw
 * wait for their answers as kind (SESSIONS, QUEUE); the caller then adds
 * what its report needs. NULL: waiting. Else the verdict with the reason
 * in b: "notready" without a ready dataplane ("dataplane STATE: absent"),
 * "error" when too many requests are in flight.
 */
const char *ctl_wait_workers(struct ctl_wait *cw, struct dpreq_table *t, struct shm_region *rg,
                             uint8_t kind, uint16_t code, const void *payload, uint16_t len,
                             bool json, const char *absent, uint64_t now_ns, struct ctl_buf *b);

/*
 * Is the answer ready? NULL while waiting; else the verdict ("ok",
 * "notready" for a timeout or lagging workers, "error"), with the body
 * moved into out. cw is then idle again.
 */
const char *ctl_wait_poll(struct ctl_wait *cw, const struct shm_region *rg, uint64_t now_ns,
                          struct ctl_buf *out);

/* The client went away: release what cw holds. */
void ctl_wait_cancel(struct ctl_wait *cw);

/* The session list of a complete request, text or JSON; the verdict. */
const char *ctl_sessions_report(struct ctl_buf *b, const struct dpreq *r, uint32_t max, bool json);

/* Service name of a well-known listener port, or NULL. */
const char *ctl_port_service(uint16_t port);

#endif
