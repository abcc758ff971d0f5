/*
 * cmd.h - a worker's side of the command channel (common/cmdring.h): at
 * the quiescent point of its loop, where it also adopts snapshots, the
 * worker takes posternd's requests from its request ring and answers them
 * on its response ring, without ever waiting. The commands are a table in
 * cmd.c: code → handler.
 */
#ifndef PG_DP_CMD_H
#define PG_DP_CMD_H

struct worker;

/* Requests taken per loop pass at most: a burst of them cannot stall the loop. */
#define DP_CMD_BURST 4

/*
 * Answer what is waiting on w's request ring. Cheap when there is
 * nothing (two loads). A request is left on the ring for a later pass
 * while the response ring is full (posternd has not drained it yet).
 * Returns the number of requests answered.
 */
unsigned dp_cmd_poll(struct worker *w);

#endif
