/*
 * loop.h - the worker poll loop and the process-wide stop request.
 */
#ifndef PG_LOOP_H
#define PG_LOOP_H

#include "adopt.h"

struct worker;

struct loop_args {
	struct worker *w;
	const struct adopt_hw *hw;
};

/* lcore entry point (rte_eal_remote_launch). */
int loop_worker_main(void *arg);

/* One pass of the loop; returns the number of frames handled (tests). */
unsigned loop_poll_once(struct worker *w, const struct adopt_hw *hw);

void loop_request_stop(void);
bool loop_stop_requested(void);

#endif
