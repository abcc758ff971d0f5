/*
 * ctl_queue.h - `posternctl queue`: posternd's side of the spool queue
 * commands (list, show, flush, delete, hold, release). The request goes to
 * every worker over the command channel (CMD_QUEUE, common/cmdring.h);
 * the answer is rendered by ctl_wait_poll once every worker has answered
 * or the deadline passed. Parsing and rendering are here, apart from the
 * daemon, so the tests reach them without sockets or a dataplane.
 */
#ifndef PG_CTL_QUEUE_H
#define PG_CTL_QUEUE_H

#include <stdbool.h>
#include <stdint.h>

#include "cmdring.h"
#include "ctl_wait.h"
#include "dpreq.h"
#include "report.h"
#include "shm.h"

#define CTL_QUEUE_DEFAULT_MAX 1000
/* what one worker's answer can hold: a response ring less the final record */
#define CTL_QUEUE_MAX ((SHM_CMD_RESP_CAPACITY - 1) * CMD_QUEUE_PER_RECORD)

/*
 * A queue id as `queue list` prints it: 1 to 16 hex digits, either case,
 * optionally followed by mailq's '*' (active) or '!' (held) so that an id
 * can be pasted from the list. 0 is never a message id. PG_OK or PG_ERROR.
 */
int ctl_queue_id_parse(const char *s, uint64_t *id);

/* enum cmd_queue_op of a sub-command name ("list", ...), or -1. */
int ctl_queue_op(const char *name);

/*
 * `queue SUB [ID] [--json] [--max=N]` (argv after "queue"): check the
 * words and ask every worker. NULL: the answer comes from ctl_wait_poll;
 * else the verdict with the reason in b (bad usage "error", no ready
 * dataplane "notready", too many requests in flight "error").
 */
const char *ctl_queue_start(struct ctl_wait *cw, struct dpreq_table *t, struct shm_region *rg,
                            int argc, char **argv, uint64_t now_ns, struct ctl_buf *b);

/*
 * The answer of a complete request, text or JSON; the verdict: "ok",
 * "notready" (a worker did not answer, or does not know the command),
 * "error" (no such message on any worker, or the spool refused). now_s:
 * unix seconds, for "now" in the next-attempt column.
 */
const char *ctl_queue_report(struct ctl_buf *b, const struct dpreq *r, uint8_t op, uint64_t id,
                             uint32_t max, bool json, int64_t now_s);

#endif
