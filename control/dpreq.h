/*
 * dpreq.h - posternd's table of outstanding requests to the dataplane
 * workers over the command channel (common/cmdring.h). A request goes to
 * every worker at once; the table gathers each worker's answer records
 * (in seq order, up to the final one) and gives up on a worker at the
 * request's deadline. Nothing here waits: posternd calls dpreq_poll from
 * its poll loop and looks at dpreq_complete.
 */
#ifndef PG_DPREQ_H
#define PG_DPREQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cmdring.h"
#include "report.h"
#include "shm.h"

#define DPREQ_MAX 32 /* requests in flight: one per posternctl client at most */
#define DPREQ_TIMEOUT_NS (2 * 1000000000ull)

enum dpreq_worker_state {
	DPREQ_PENDING = 0, /* asked, answer not complete yet */
	DPREQ_DONE,        /* final record received */
	DPREQ_UNSENT,      /* its request ring was full: the worker is not taking requests */
	DPREQ_TIMEOUT,     /* no final record before the deadline */
};

struct dpreq_worker {
	uint8_t state;       /* enum dpreq_worker_state */
	uint8_t status;      /* enum cmdring_status of the answer */
	bool truncated;      /* the worker left items out, or records went missing */
	uint16_t next_seq;   /* the seq expected next */
	uint32_t items;      /* items received */
	uint64_t aux;        /* of the final record */
	struct ctl_buf data; /* the items' bytes, in order */
};

struct dpreq {
	uint64_t id; /* 0: free slot */
	uint16_t code;
	uint32_t nworkers;
	uint32_t npending;
	uint64_t start_ns, deadline_ns;
	struct dpreq_worker w[SHM_CMD_RINGS];
};

struct dpreq_table {
	uint64_t next_id;
	uint64_t stray; /* answer records nobody waits for (late, or a previous posternd's) */
	struct dpreq req[DPREQ_MAX];
};

/*
 * first_id: where ids start. posternd uses the CLOCK_REALTIME in ns, so a
 * restarted posternd never takes a late answer to its predecessor's
 * request for one of its own.
 */
void dpreq_init(struct dpreq_table *t, uint64_t first_id);

/*
 * Send one request to workers 0..nworkers-1 of rg. Workers whose request
 * ring is full are marked DPREQ_UNSENT at once. NULL if the table is full
 * or nworkers is 0 or too many.
 */
struct dpreq *dpreq_start(struct dpreq_table *t, struct shm_region *rg, uint32_t nworkers,
                          uint16_t code, const void *payload, uint16_t len, uint64_t now_ns,
                          uint64_t timeout_ns);

/*
 * Drain every response ring of rg into the requests they answer, then
 * expire the workers of requests past their deadline. Returns the number
 * of records taken.
 */
unsigned dpreq_poll(struct dpreq_table *t, struct shm_region *rg, uint64_t now_ns);

static inline bool dpreq_complete(const struct dpreq *r)
{
	return r->npending == 0;
}

/* Is any request in flight? (posternd then polls often.) */
bool dpreq_busy(const struct dpreq_table *t);

/* The earliest deadline of the requests in flight (UINT64_MAX: none). */
uint64_t dpreq_next_deadline(const struct dpreq_table *t);

/* Release a request (complete or not): late answers are then stray. */
void dpreq_free(struct dpreq *r);

const char *dpreq_worker_state_name(uint8_t state);

#endif
