/*
 * tcp_cubic.c - CUBIC congestion control per RFC 9438, with cwnd in bytes:
 * standard slow start below ssthresh, then the cubic window curve
 * W_cubic(t) = C (t - K)^3 + W_max around the window of the last
 * congestion event, never slower than the Reno-friendly estimate W_est.
 *
 * Arithmetic is in double precision: the formulas are the RFC's as
 * written (no fixed-point scaling to get wrong or to overflow), this runs
 * once per ACK on the control path where a few multiply-adds cost a few
 * nanoseconds, and the only non-trivial operation, the cube root for K,
 * runs once per congestion-avoidance stage. IEEE 754 keeps it
 * deterministic for the virtual-clock tests. The cube root is our own so
 * the dataplane does not need libm.
 */
#include <assert.h>
#include <string.h>

#include "tcp_cubic.h"

/* RFC 9438 §4.3: alpha_cubic = 3 (1 - beta) / (1 + beta), Reno's rate for the same fairness. */
#define CUBIC_ALPHA (3.0 * (1.0 - TCP_CUBIC_BETA) / (1.0 + TCP_CUBIC_BETA))

enum {
	CUBIC_IN_EPOCH = 1u << 0,   /* congestion avoidance started: epoch_ns, k, w_est valid */
	CUBIC_HAVE_W_MAX = 1u << 1, /* w_max set by a congestion event */
	CUBIC_RTO_HELD = 1u << 2,   /* timed out, no ACK of new data since */
};

/* Lives in tcp_cc.priv, copied in and out: no type punning on a byte array. */
struct cubic_state {
	double w_max;
	double k;
	double w_est;
	double frac; /* fractional bytes of growth not yet in cwnd */
	uint64_t epoch_ns;
	uint64_t srtt_ns;     /* RFC 6298 smoothing of the on_ack samples */
	uint64_t last_ack_ns; /* previous on_ack, to see idle periods */
	uint32_t cwnd_prior;
	uint32_t flags;
};
_Static_assert(sizeof(struct cubic_state) <= sizeof(((struct tcp_cc *)0)->priv),
               "CUBIC state must fit tcp_cc.priv");

static void cubic_load(const struct tcp_cc *cc, struct cubic_state *st)
{
	memcpy(st, cc->priv, sizeof(*st));
}

static void cubic_store(struct tcp_cc *cc, const struct cubic_state *st)
{
	memcpy(cc->priv, st, sizeof(*st));
}

/* Cube root by Newton's method from above: monotone, so it stops when it stops improving. */
static double cubic_cbrt(double x)
{
	double y = 1.0, a = x < 0 ? -x : x;

	if (a == 0.0)
		return 0.0;
	while (y * y * y < a)
		y *= 2.0;
	for (int i = 0; i < 200; i++) {
		double next = y - (y * y * y - a) / (3.0 * y * y);

		if (next >= y)
			break;
		y = next;
	}
	return x < 0 ? -y : y;
}

static double w_cubic(const struct cubic_state *st, uint32_t mss, double t)
{
	double d = t - st->k;

	return TCP_CUBIC_C * (double)mss * d * d * d + st->w_max;
}

static uint32_t clamp_cwnd(double w)
{
	if (w >= (double)TCP_CUBIC_CWND_MAX)
		return TCP_CUBIC_CWND_MAX;
	return (uint32_t)w;
}

static void cubic_init(struct tcp_cc *cc, uint32_t mss, uint64_t now_ns)
{
	struct cubic_state st;
	uint32_t iw;

	(void)now_ns;
	assert(mss > 0);
	memset(&st, 0, sizeof(st));
	cc->mss = mss;
	/* RFC 6928 §2: IW = min(10 MSS, max(2 MSS, 14600)). */
	iw = 2 * mss > 14600 ? 2 * mss : 14600;
	cc->cwnd = TCP_CC_INIT_SEGS * mss < iw ? TCP_CC_INIT_SEGS * mss : iw;
	/* RFC 5681 §3.1: initial ssthresh arbitrarily high. */
	cc->ssthresh = UINT32_MAX;
	cubic_store(cc, &st);
}

/*
 * The start of a congestion-avoidance stage (RFC 9438 §4.2): t counts from
 * here, K from the window here (cwnd_epoch). After a timeout, or leaving
 * slow start without a congestion event, there is no W_max: W_max is this
 * window and K = 0 (§4.8, §4.10). W_est starts here too (§4.3).
 */
static void cubic_epoch_start(struct cubic_state *st, const struct tcp_cc *cc, uint64_t now_ns)
{
	double cwnd_epoch = (double)cc->cwnd;

	if (!(st->flags & CUBIC_HAVE_W_MAX)) {
		st->w_max = cwnd_epoch;
		if (st->cwnd_prior == 0)
			st->cwnd_prior = cc->cwnd;
		st->flags |= CUBIC_HAVE_W_MAX;
	}
	/* Figure 2: K = cbrt((W_max - cwnd_epoch) / C), in segments. Negative
	 * if we start above W_max: the curve still passes through cwnd_epoch. */
	st->k = cubic_cbrt((st->w_max - cwnd_epoch) / (TCP_CUBIC_C * (double)cc->mss));
	st->w_est = cwnd_epoch;
	st->frac = 0.0;
	st->epoch_ns = now_ns;
	st->flags |= CUBIC_IN_EPOCH;
}

/* One ACK in congestion avoidance for `acked` new bytes (RFC 9438 §4.2-4.5). */
static void cubic_avoid(struct cubic_state *st, struct tcp_cc *cc, uint32_t acked, uint64_t now_ns)
{
	double mss = (double)cc->mss;
	double cwnd = (double)cc->cwnd + st->frac;
	double t, rtt, alpha, target, next;

	assert(cc->cwnd > 0 && cc->mss > 0); /* the core never zeroes them */
	if (!(st->flags & CUBIC_IN_EPOCH))
		cubic_epoch_start(st, cc, now_ns);
	t = now_ns > st->epoch_ns ? (double)(now_ns - st->epoch_ns) * 1e-9 : 0.0;
	rtt = (double)st->srtt_ns * 1e-9;

	/* §4.3: W_est grows like Reno with alpha_cubic, at Reno's full rate
	 * once it is back to the window it had before the reduction. In bytes:
	 * alpha * segments_acked / cwnd_segments * mss = alpha * acked * mss / cwnd. */
	alpha = st->w_est >= (double)st->cwnd_prior ? 1.0 : CUBIC_ALPHA;
	st->w_est += alpha * (double)acked * mss / cwnd;

	if (w_cubic(st, cc->mss, t) < st->w_est) {
		/* Reno-friendly region: cwnd = W_est. (An ACK never shrinks cwnd,
		 * which the cubic region's RTT look-ahead can leave above W_est.) */
		next = st->w_est > cwnd ? st->w_est : cwnd;
	} else {
		/* §4.4/§4.5 concave and convex regions: aim one RTT ahead,
		 * within [cwnd, 1.5 cwnd], closing (target - cwnd)/cwnd per
		 * segment acked. */
		target = w_cubic(st, cc->mss, t + rtt);
		if (target < cwnd)
			target = cwnd;
		else if (target > 1.5 * cwnd)
			target = 1.5 * cwnd;
		next = cwnd + (target - cwnd) * (double)acked / cwnd;
	}
	cc->cwnd = clamp_cwnd(next);
	st->frac = cc->cwnd < TCP_CUBIC_CWND_MAX ? next - (double)cc->cwnd : 0.0;
}

/*
 * acked: bytes newly acknowledged by this ACK (SND.UNA advance). rtt_ns:
 * the RTT sample this ACK produced, 0 if none (Karn). RFC 9438 §4.1.2
 * wants the smoothed RTT, so CUBIC smooths the samples itself as RFC 6298
 * §2 does (alpha = 1/8). Called in slow start and congestion avoidance,
 * not during loss recovery, where the core's recovery owns cwnd, and only
 * while the sender is cwnd-limited: RFC 9438 §5.8 says CUBIC does not
 * grow cwnd for an application-limited flow (see also RFC 7661).
 */
static void cubic_on_ack(struct tcp_cc *cc, uint32_t acked, uint64_t rtt_ns, uint64_t now_ns)
{
	struct cubic_state st;

	if (acked == 0)
		return;
	cubic_load(cc, &st);
	st.flags &= ~CUBIC_RTO_HELD;
	if (rtt_ns != 0)
		st.srtt_ns = st.srtt_ns == 0 ? rtt_ns : st.srtt_ns - st.srtt_ns / 8 + rtt_ns / 8;
	/*
	 * RFC 9438 §5.8: t MUST NOT include periods when the flow was limited
	 * by the application, or W_cubic is huge on restart. A cwnd-limited
	 * flow hears ACKs at least once per RTT, so a silence longer than two
	 * SRTTs was idle: move the epoch forward by all of it but one SRTT.
	 */
	if ((st.flags & CUBIC_IN_EPOCH) && st.srtt_ns != 0 && now_ns > st.last_ack_ns &&
	    now_ns - st.last_ack_ns > 2 * st.srtt_ns)
		st.epoch_ns += now_ns - st.last_ack_ns - st.srtt_ns;
	st.last_ack_ns = now_ns;
	if (cc->cwnd < cc->ssthresh) {
		/* RFC 9438 §4.10 defers to RFC 5681 §3.1 slow start, here with
		 * Appropriate Byte Counting, L = 2 SMSS (RFC 3465 §2.2). Growth
		 * stops at ssthresh; the rest of the ACK counts in avoidance. */
		uint32_t inc = acked < 2 * cc->mss ? acked : 2 * cc->mss;
		uint32_t room = cc->ssthresh - cc->cwnd;

		if (inc < room) {
			cc->cwnd = clamp_cwnd((double)cc->cwnd + inc);
			cubic_store(cc, &st);
			return;
		}
		cc->cwnd = cc->ssthresh;
		acked = acked > room ? acked - room : 0;
		if (acked == 0) {
			cubic_store(cc, &st);
			return;
		}
	}
	cubic_avoid(&st, cc, acked, now_ns);
	cubic_store(cc, &st);
}

/* ssthresh = max(flight * beta, 2 MSS), RFC 9438 §4.6 Figure 5. */
static uint32_t cubic_ssthresh(const struct tcp_cc *cc, uint32_t flight)
{
	double s = (double)flight * TCP_CUBIC_BETA + 0.5; /* nearest: 90000 * 0.7 is 62999.99.. */

	return s > 2.0 * cc->mss ? (uint32_t)s : 2 * cc->mss;
}

/*
 * A congestion event (fast retransmit, or ECN-echo): call once per event,
 * i.e. at most once per window of data (RFC 9438 §4.6 via RFC 5681 §3.2).
 * flight = FlightSize in bytes (SND.NXT - SND.UNA) when it was detected.
 */
static void cubic_on_congestion(struct tcp_cc *cc, uint32_t flight, uint64_t now_ns)
{
	struct cubic_state st;
	double cwnd = (double)cc->cwnd;

	(void)now_ns;
	cubic_load(cc, &st);
	/* §4.7 fast convergence, before the reduction: a flow that lost ground
	 * since the last event releases bandwidth for newer flows. */
	if ((st.flags & CUBIC_HAVE_W_MAX) && cwnd < st.w_max)
		st.w_max = cwnd * (1.0 + TCP_CUBIC_BETA) / 2.0;
	else
		st.w_max = cwnd;
	st.flags |= CUBIC_HAVE_W_MAX;
	/* §4.6: from FlightSize, not cwnd, so an application-limited flow is
	 * not credited with a window it did not use; never below 2 MSS. */
	st.cwnd_prior = cc->cwnd;
	cc->ssthresh = cubic_ssthresh(cc, flight);
	cc->cwnd = cc->ssthresh;
	/* The next stage (and t) starts with the first ACK in avoidance. */
	st.flags &= ~CUBIC_IN_EPOCH;
	st.frac = 0.0;
	cubic_store(cc, &st);
}

/*
 * Retransmission timeout (RFC 9438 §4.8): ssthresh as in §4.6, cwnd = the
 * loss window of 1 MSS (RFC 5681 §3.1), and the next avoidance stage runs
 * with K = 0 from the window it starts at. A timeout again before any new
 * data is acknowledged (the same segment backing off) keeps ssthresh, as
 * RFC 5681 §3.1 asks.
 */
static void cubic_on_rto(struct tcp_cc *cc, uint32_t flight, uint64_t now_ns)
{
	struct cubic_state st;

	(void)now_ns;
	cubic_load(cc, &st);
	if (!(st.flags & CUBIC_RTO_HELD)) {
		st.cwnd_prior = cc->cwnd;
		cc->ssthresh = cubic_ssthresh(cc, flight);
	}
	cc->cwnd = cc->mss;
	st.flags &= ~(CUBIC_IN_EPOCH | CUBIC_HAVE_W_MAX);
	st.flags |= CUBIC_RTO_HELD;
	st.frac = 0.0;
	cubic_store(cc, &st);
}

void tcp_cubic_get_info(const struct tcp_cc *cc, struct tcp_cubic_info *info)
{
	struct cubic_state st;

	cubic_load(cc, &st);
	info->w_max = st.w_max;
	info->cwnd_prior = (double)st.cwnd_prior;
	info->k = st.k;
	info->w_est = st.w_est;
	info->epoch_ns = st.epoch_ns;
	info->srtt_ns = st.srtt_ns;
	info->in_epoch = (st.flags & CUBIC_IN_EPOCH) != 0;
	info->have_w_max = (st.flags & CUBIC_HAVE_W_MAX) != 0;
}

double tcp_cubic_w_cubic(const struct tcp_cc *cc, double t)
{
	struct cubic_state st;

	cubic_load(cc, &st);
	return w_cubic(&st, cc->mss, t);
}

const struct tcp_cc_ops tcp_cc_cubic = {
    .name = "cubic",
    .init = cubic_init,
    .on_ack = cubic_on_ack,
    .on_congestion = cubic_on_congestion,
    .on_rto = cubic_on_rto,
    /* Recovery's end needs nothing: the next avoidance stage, and its t,
     * start with the first on_ack at or above ssthresh (§4.2). */
    .post_recovery = NULL,
};
