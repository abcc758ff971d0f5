/*
 * loop.c - the poll loop of a worker lcore (DESIGN.md, "Poll loop"):
 * RX burst → steer → protocol input → steering ring → spool completions →
 * timers → TX flush → adopt a new snapshot → answer posternd's commands →
 * publish counters; then back off when idle (briefly while spool I/O is in
 * flight, so a commit's 250 is not held up by a long sleep).
 * The idle back-off matters: on a 2-core machine two busy-polling
 * processes would starve everything else.
 */
#include <stdatomic.h>
#include <time.h>
#include <sys/prctl.h>

#include <rte_ethdev.h>
#include <rte_log.h>

#include "cmd.h"
#include "events.h"
#include "loop.h"
#include "relay/inbound.h"
#include "relay/outbound.h"
#include "result.h"
#include "shm.h"
#include "timer.h"
#include "worker.h"

#define LOOP_TIMER_NS (10 * 1000 * 1000ull)  /* net_timers period */
#define LOOP_PUBLISH_NS (1000 * 1000ull)     /* counters + heartbeat */
#define LOOP_SPOOL_SLEEP_NS (20 * 1000ull)   /* longest idle sleep with spool I/O in flight */

/*
 * The only mutable process-wide variable: set by the signal handler,
 * read by every loop. Everything else lives in struct worker.
 */
static atomic_bool loop_stop;

void loop_request_stop(void)
{
	atomic_store(&loop_stop, true);
}

bool loop_stop_requested(void)
{
	return atomic_load_explicit(&loop_stop, memory_order_relaxed);
}

static uint64_t loop_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void loop_publish(struct worker *w)
{
	struct shm_region *r = w->shm->region;
	struct shm_counter_block *cb = &r->dp.counters[w->id];

	for (unsigned i = 0; i < CTR__COUNT; i++)
		atomic_store_explicit(&cb->v[i], w->ctr[i], memory_order_relaxed);
	atomic_store_explicit(&r->readers[w->reader].heartbeat_ns, w->now_ns,
			      memory_order_release);
}

unsigned loop_poll_once(struct worker *w, const struct adopt_hw *hw)
{
	struct rte_mbuf *pkts[WORKER_RX_BURST];
	unsigned handled = 0;

	w->now_ns = loop_now_ns();
	WCOUNT(w, loops);

	if (w->net != NULL) {
		for (uint16_t p = 0; p < w->net->nports; p++) {
			uint16_t n = rte_eth_rx_burst(w->net->ports[p].dpdk_port, w->queue, pkts,
						      WORKER_RX_BURST);

			WCOUNT_ADD(w, rx_packets, n);
			for (uint16_t i = 0; i < n; i++) {
				WCOUNT_ADD(w, rx_bytes, rte_pktmbuf_pkt_len(pkts[i]));
				pkts[i]->port = p;
				net_input(w, pkts[i], p, false);
			}
			handled += n;
		}
		if (w->nworkers > 1) {
			unsigned n = rte_ring_sc_dequeue_burst(w->rings[w->id], (void **)pkts,
							       WORKER_RX_BURST, NULL);

			WCOUNT_ADD(w, steer_rx, n);
			for (unsigned i = 0; i < n; i++)
				net_input(w, pkts[i], pkts[i]->port, true);
			handled += n;
		}
		/* Spool completions: commit callbacks queue their 250s for this flush. */
		handled += inbound_poll(w);
		/* Delivery: due messages, DSNs and body reads waiting on the spool. */
		handled += outbound_poll(w);
		/* The wheel only walks the ticks that passed: cheap when idle. */
		if (w->timers != NULL)
			timer_advance(w->timers, w->now_ns);
		if (w->now_ns >= w->next_timer_ns) {
			net_timers(w);
			w->next_timer_ns = w->now_ns + LOOP_TIMER_NS;
		}
		worker_tx_flush(w);
	}

	/* Quiescent point: nothing of the old snapshot is in use here. */
	adopt_snapshot(w, hw);
	/* The same point for posternd's requests (session list, ...): cheap when none. */
	handled += dp_cmd_poll(w);

	if (w->now_ns >= w->next_publish_ns) {
		loop_publish(w);
		w->next_publish_ns = w->now_ns + LOOP_PUBLISH_NS;
	}
	return handled;
}

int loop_worker_main(void *arg)
{
	struct loop_args *la = arg;
	struct worker *w = la->w;
	bool announced = false;

	/*
	 * The idle back-off sleeps a few tens of microseconds; Linux's default
	 * 50 us timer slack would more than double that and add it to the
	 * latency of every exchange that finds the worker asleep.
	 */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
	RTE_LOG(INFO, USER1, "worker %u running on lcore %u\n", w->id, w->lcore);
	dp_event(w, EV_WORKER_STARTED, "lcore=%u", w->lcore);
	while (!loop_stop_requested()) {
		unsigned handled = loop_poll_once(w, la->hw);

		if (!announced && w->net != NULL) {
			if (w->id == 0 && w->net->gratuitous_arp)
				net_announce(w);
			worker_tx_flush(w);
			announced = true;
		}
		if (handled != 0) {
			/* busyness, as DPDK's lcore telemetry: the worker's cost without its idle polling */
			WCOUNT_ADD(w, busy_ns, loop_now_ns() - w->now_ns);
			w->idle_polls = 0;
			continue;
		}
		if (++w->idle_polls > w->idle_polls_max && w->idle_sleep_ns != 0) {
			uint64_t ns = w->idle_sleep_ns;
			struct timespec ts;

			if ((inbound_busy(w) || outbound_busy(w)) && ns > LOOP_SPOOL_SLEEP_NS)
				ns = LOOP_SPOOL_SLEEP_NS;
			ts.tv_sec = (time_t)(ns / 1000000000ull);
			ts.tv_nsec = (long)(ns % 1000000000ull);

			WCOUNT(w, idle_sleeps);
			nanosleep(&ts, NULL);
		}
	}
	worker_tx_flush(w);
	w->now_ns = loop_now_ns();
	loop_publish(w);
	dp_event(w, EV_WORKER_STOPPED, "lcore=%u", w->lcore);
	return 0;
}
