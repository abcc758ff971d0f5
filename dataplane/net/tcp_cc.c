/*
 * tcp_cc.c - NewReno congestion control (RFC 5681, RFC 6582) behind the
 * tcp_cc_ops table of tcp_cc.h. Slow start counts bytes (RFC 3465, L = 2
 * SMSS); congestion avoidance adds one SMSS per window of acknowledged
 * bytes. The recovery episode itself is run by tcp_input.c.
 */
#include <stdbool.h>
#include <string.h>

#include "tcp_cc.h"

struct newreno {
	uint32_t bytes_acked; /* congestion avoidance accumulator (RFC 3465 §2.1) */
	bool rto_held;        /* timed out, no new data acknowledged since */
};

_Static_assert(sizeof(struct newreno) <= sizeof(((struct tcp_cc *)0)->priv), "priv too small");

static void newreno_init(struct tcp_cc *cc, uint32_t mss, uint64_t now_ns)
{
	(void)now_ns;
	memset(cc->priv, 0, sizeof(cc->priv));
	cc->mss = mss;
	cc->cwnd = TCP_CC_INIT_SEGS * mss; /* RFC 6928 */
	cc->ssthresh = UINT32_MAX;         /* RFC 5681 §3.1: arbitrarily high */
}

static void newreno_on_ack(struct tcp_cc *cc, uint32_t acked, uint64_t rtt_ns, uint64_t now_ns)
{
	struct newreno *nr = (struct newreno *)cc->priv;

	(void)rtt_ns;
	(void)now_ns;
	nr->rto_held = false;
	if (cc->cwnd < cc->ssthresh) {
		/* RFC 3465 §2.2: at most 2*SMSS per ACK in slow start. */
		uint32_t inc = acked < 2 * cc->mss ? acked : 2 * cc->mss;

		cc->cwnd = cc->cwnd + inc < cc->cwnd ? UINT32_MAX : cc->cwnd + inc;
		return;
	}
	/* RFC 5681 §3.1 eq. 3 in its byte-counting form. */
	nr->bytes_acked += acked;
	if (nr->bytes_acked >= cc->cwnd) {
		nr->bytes_acked -= cc->cwnd;
		if (cc->cwnd + cc->mss > cc->cwnd)
			cc->cwnd += cc->mss;
	}
}

/* RFC 5681 §3.1 eq. 4: ssthresh = max(FlightSize / 2, 2*SMSS). */
static uint32_t newreno_half(const struct tcp_cc *cc, uint32_t flight)
{
	return flight / 2 > 2 * cc->mss ? flight / 2 : 2 * cc->mss;
}

static void newreno_on_congestion(struct tcp_cc *cc, uint32_t flight, uint64_t now_ns)
{
	struct newreno *nr = (struct newreno *)cc->priv;

	(void)now_ns;
	cc->ssthresh = newreno_half(cc, flight);
	cc->cwnd = cc->ssthresh;
	nr->bytes_acked = 0;
}

/*
 * RFC 5681 §3.1: "if the same segment is retransmitted multiple times,
 * ssthresh is not reduced" again - a timeout before any new data was
 * acknowledged (the back-off of the same segment) keeps ssthresh.
 */
static void newreno_on_rto(struct tcp_cc *cc, uint32_t flight, uint64_t now_ns)
{
	struct newreno *nr = (struct newreno *)cc->priv;

	(void)now_ns;
	if (!nr->rto_held)
		cc->ssthresh = newreno_half(cc, flight);
	nr->rto_held = true;
	cc->cwnd = cc->mss; /* loss window, RFC 5681 §3.1 */
	nr->bytes_acked = 0;
}

const struct tcp_cc_ops tcp_cc_newreno = {
    .name = "newreno",
    .init = newreno_init,
    .on_ack = newreno_on_ack,
    .on_congestion = newreno_on_congestion,
    .on_rto = newreno_on_rto,
    .post_recovery = NULL,
};
