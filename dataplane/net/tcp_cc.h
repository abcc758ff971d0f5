/*
 * tcp_cc.h - the congestion-control interface of the TCP stack: a small
 * operation table (NewReno in tcp_cc.c, CUBIC in tcp_cubic.c) acting on a
 * small per-connection state. The TCP core owns loss detection and the
 * recovery episode (RFC 6675 pipe with SACK, RFC 6582 inflation and
 * deflation without); an algorithm only says
 * how cwnd grows on ACKs and what ssthresh/cwnd become on a loss.
 */
#ifndef PG_TCP_CC_H
#define PG_TCP_CC_H

#include <stdint.h>

/*
 * Per-connection congestion state. cwnd, ssthresh and mss are in bytes and
 * are read by the TCP core; priv is the algorithm's own scratch space
 * (zeroed before init).
 */
struct tcp_cc {
	uint32_t cwnd;
	uint32_t ssthresh;
	uint32_t mss; /* sender MSS (payload bytes per full segment) */
	uint8_t priv[64] __attribute__((aligned(8)));
};

struct tcp_cc_ops {
	const char *name;
	/* Connection established (or MSS known): set cwnd (RFC 6928 IW10) and ssthresh. */
	void (*init)(struct tcp_cc *cc, uint32_t mss, uint64_t now_ns);
	/*
	 * New data acknowledged outside loss recovery while the sender is
	 * cwnd-limited (RFC 7661, RFC 9438 §5.8: an application- or
	 * receiver-window-limited flow does not grow cwnd): `acked` bytes,
	 * `rtt_ns` the RTT sample this ACK produced or 0 when it produced
	 * none (Karn). An ACK that does not qualify is not reported at all.
	 */
	void (*on_ack)(struct tcp_cc *cc, uint32_t acked, uint64_t rtt_ns, uint64_t now_ns);
	/*
	 * Fast retransmit entry (RFC 5681 §3.2 step 2 / RFC 6582 / RFC 6675),
	 * at most once per window of data: set ssthresh and cwnd from
	 * `flight` = SND.NXT - SND.UNA. The core then runs the recovery
	 * episode (NewReno inflation, or the SACK pipe of RFC 6675).
	 */
	void (*on_congestion)(struct tcp_cc *cc, uint32_t flight, uint64_t now_ns);
	/*
	 * Retransmission timeout (RFC 5681 §3.1 eq. 4): ssthresh from flight,
	 * cwnd = 1 MSS. Called on every back-off; a repeated timeout with no
	 * new data acknowledged in between (no on_ack since) keeps ssthresh.
	 */
	void (*on_rto)(struct tcp_cc *cc, uint32_t flight, uint64_t now_ns);
	/*
	 * Optional (may be NULL): the recovery episode ended with a full ACK.
	 * The core has already set cwnd = min(ssthresh, flight + mss)
	 * (RFC 6582 §3.2 step 3, option 1); an algorithm may adjust it.
	 */
	void (*post_recovery)(struct tcp_cc *cc, uint64_t now_ns);
};

/* RFC 6928: initial window of 10 segments. */
#define TCP_CC_INIT_SEGS 10u

/* NewReno (RFC 5681, RFC 6582, with RFC 3465 byte counting in slow start). */
extern const struct tcp_cc_ops tcp_cc_newreno;

#endif
