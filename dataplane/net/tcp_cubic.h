/*
 * tcp_cubic.h - CUBIC congestion control (RFC 9438), the default algorithm
 * behind the tcp_cc_ops table of tcp_cc.h: the ops table itself, its
 * constants, and a read-only view of the private state for tests and
 * diagnostics.
 */
#ifndef PG_TCP_CUBIC_H
#define PG_TCP_CUBIC_H

#include <stdbool.h>
#include <stdint.h>

#include "tcp_cc.h"

extern const struct tcp_cc_ops tcp_cc_cubic;

#define TCP_CUBIC_C 0.4    /* RFC 9438 §5.1, segments / s^3 */
#define TCP_CUBIC_BETA 0.7 /* RFC 9438 §4.6, beta_cubic */

/* cwnd never grows past this (bytes): far above any window we can use. */
#define TCP_CUBIC_CWND_MAX (1u << 30)

/* A snapshot of CUBIC's private state; windows in bytes, K in seconds. */
struct tcp_cubic_info {
	double w_max;      /* window before the last reduction, after fast convergence */
	double cwnd_prior; /* cwnd when ssthresh was last set (RFC 9438 §4.6) */
	double k;          /* time from epoch start for W_cubic to reach w_max */
	double w_est;      /* Reno-friendly estimate (RFC 9438 §4.3) */
	uint64_t epoch_ns; /* start of the current congestion-avoidance stage */
	uint64_t srtt_ns;  /* CUBIC's own smoothed RTT of the samples given to on_ack */
	bool in_epoch;     /* a congestion-avoidance stage has started */
	bool have_w_max;   /* w_max is set (by a congestion event or an epoch start) */
};

void tcp_cubic_get_info(const struct tcp_cc *cc, struct tcp_cubic_info *info);

/* W_cubic(t) of RFC 9438 Figure 1 in bytes, t seconds after the epoch start. */
double tcp_cubic_w_cubic(const struct tcp_cc *cc, double t);

#endif
