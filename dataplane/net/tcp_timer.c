/*
 * tcp_timer.c - the connection timers on the worker's timing wheel:
 * retransmission (RFC 6298, Karn, exponential back-off, abort after a
 * bounded number of tries), SYN retries, persist with zero-window probes
 * (RFC 9293 §3.8.6.1), delayed ACK (RFC 9293 §3.8.6.3, RFC 5681 §4.2),
 * TIME_WAIT (2*MSL), the orphaned FIN_WAIT_2 limit and keepalive
 * (RFC 9293 §3.8.4, off unless configured).
 */
#include <stddef.h>

#include "result.h"
#include "tcp_private.h"

#define TCP_CONN_OF(t, field) ((struct tcp_conn *)((char *)(t)-offsetof(struct tcp_conn, field)))
#define TCP_RTO_G_NS 1000000ull /* clock granularity G of RFC 6298 §2: the 1 ms wheel tick */

static uint64_t tcp_backoff(const struct tcp_conn *c)
{
	uint64_t rto = c->rto_ns;

	for (uint32_t i = 0; i < c->rtx_count && rto < c->st->cfg.rto_max_ns; i++)
		rto *= 2;
	return rto < c->st->cfg.rto_max_ns ? rto : c->st->cfg.rto_max_ns;
}

void tcp_rtx_arm(struct tcp_conn *c)
{
	timer_arm(c->st->w->timers, &c->rtx_timer, c->st->w->now_ns + tcp_backoff(c));
}

void tcp_rtx_stop(struct tcp_conn *c)
{
	timer_cancel(c->st->w->timers, &c->rtx_timer);
}

void tcp_persist_arm(struct tcp_conn *c)
{
	c->persist = true;
	tcp_rtx_arm(c);
}

void tcp_delack_arm(struct tcp_conn *c)
{
	if (!timer_armed(&c->delack_timer))
		timer_arm(c->st->w->timers, &c->delack_timer,
			  c->st->w->now_ns + c->st->cfg.delack_ns);
}

void tcp_delack_stop(struct tcp_conn *c)
{
	timer_cancel(c->st->w->timers, &c->delack_timer);
}

void tcp_wait_arm(struct tcp_conn *c, uint64_t after_ns)
{
	timer_arm(c->st->w->timers, &c->wait_timer, c->st->w->now_ns + after_ns);
}

/* RFC 6298 §2.2-2.4 (alpha 1/8, beta 1/4, K 4), clamped to [rto_min, rto_max]. */
void tcp_rtt_sample(struct tcp_conn *c, uint64_t rtt_ns)
{
	const struct tcp_config *cfg = &c->st->cfg;
	uint64_t var4;

	c->rtt_samples++;
	if (c->srtt_ns == 0) {
		c->srtt_ns = rtt_ns ? rtt_ns : 1;
		c->rttvar_ns = rtt_ns / 2;
	} else {
		uint64_t err = c->srtt_ns > rtt_ns ? c->srtt_ns - rtt_ns : rtt_ns - c->srtt_ns;

		c->rttvar_ns = (3 * c->rttvar_ns + err) / 4;
		c->srtt_ns = (7 * c->srtt_ns + rtt_ns) / 8;
	}
	var4 = 4 * c->rttvar_ns;
	c->rto_ns = c->srtt_ns + (var4 > TCP_RTO_G_NS ? var4 : TCP_RTO_G_NS);
	if (c->rto_ns < cfg->rto_min_ns)
		c->rto_ns = cfg->rto_min_ns;
	if (c->rto_ns > cfg->rto_max_ns)
		c->rto_ns = cfg->rto_max_ns;
}

/* Zero-window probe: one byte past the window; its ACK tells the window. */
static void tcp_persist_fire(struct tcp_conn *c)
{
	struct worker *w = c->st->w;

	if (++c->rtx_count > c->max_retries) {
		/* The peer stopped answering probes at all: it is gone. */
		WCOUNT(w, tcp_conn_timeout);
		tcp_send_rst(c);
		tcp_conn_closed(c, TCP_ERR_TIMEOUT);
		return;
	}
	if (SEQ_LT(c->snd_una, c->snd_buf_seq + c->sndq.len)) {
		WCOUNT(w, tcp_persist_probes);
		if (tcp_send_segment(c, c->snd_una, 1, TH_ACK) == PG_OK) {
			c->snd_nxt = c->snd_una + 1;
			if (SEQ_GT(c->snd_nxt, c->snd_max))
				c->snd_max = c->snd_nxt;
		}
	}
	tcp_rtx_arm(c);
}

static void tcp_rtx_fire(struct timer *t, void *owner)
{
	struct tcp_conn *c = TCP_CONN_OF(t, rtx_timer);
	struct worker *w = owner;
	const struct tcp_config *cfg = &c->st->cfg;

	tcp_conn_hold(c);
	if (c->persist) {
		tcp_persist_fire(c);
		goto out;
	}
	c->rtt_active = false; /* Karn (RFC 6298 §3): no sample from what we resend */
	if (c->state == TCPS_SYN_SENT || c->state == TCPS_SYN_RECEIVED) {
		if (++c->rtx_count > cfg->syn_retries) {
			WCOUNT(w, tcp_conn_timeout);
			if (c->state == TCPS_SYN_RECEIVED)
				tcp_send_rst(c);
			tcp_conn_closed(c, TCP_ERR_TIMEOUT);
			goto out;
		}
		WCOUNT(w, tcp_rto);
		c->snd_nxt = c->iss;
		tcp_output(c);
		goto out;
	}
	if (c->snd_una == c->snd_max)
		goto out; /* everything got acknowledged meanwhile */
	/* RFC 9293 §3.8.3: R2 reached, give up on the connection. */
	if (++c->rtx_count > c->max_retries) {
		WCOUNT(w, tcp_conn_timeout);
		tcp_send_rst(c);
		tcp_conn_closed(c, TCP_ERR_TIMEOUT);
		goto out;
	}
	WCOUNT(w, tcp_rto);
	/* RFC 5681 §3.1 eq. 4 through the algorithm; RFC 6582 §4: recover = highest sent. */
	c->cc_ops->on_rto(&c->cc, c->snd_max - c->snd_una, w->now_ns);
	c->in_recovery = false;
	c->recover = c->snd_max;
	c->dupacks = 0;
	c->lt_allow = 0;
	/* RFC 2018 §8: after a timeout the receiver may have reneged; start over. */
	tcp_sb_clear(&c->sb);
	c->high_rxt = c->snd_una;
	/* Go back to the first unacknowledged byte (RFC 6298 §5.4). */
	c->snd_nxt = c->snd_una;
	tcp_output(c);
	if (!timer_armed(&c->rtx_timer) && c->snd_una != c->snd_max && !c->persist)
		tcp_rtx_arm(c);
out:
	tcp_conn_release(c);
}

static void tcp_delack_fire(struct timer *t, void *owner)
{
	struct tcp_conn *c = TCP_CONN_OF(t, delack_timer);

	tcp_conn_hold(c);
	WCOUNT((struct worker *)owner, tcp_delack_tx);
	c->ack_now = true;
	tcp_output(c);
	tcp_conn_release(c);
}

static void tcp_wait_fire(struct timer *t, void *owner)
{
	struct tcp_conn *c = TCP_CONN_OF(t, wait_timer);

	(void)owner;
	tcp_conn_hold(c);
	/* TIME_WAIT over (RFC 9293 §3.10.8), or an orphan stuck in FIN_WAIT_2. */
	if (c->state == TCPS_TIME_WAIT || (c->state == TCPS_FIN_WAIT_2 && !c->user_owned))
		tcp_conn_closed(c, TCP_ERR_NONE);
	tcp_conn_release(c);
}

/* With the connection's own settings, taken at its creation (tcp_conn_new). */
void tcp_keepalive_arm(struct tcp_conn *c)
{
	if (c->ka_idle_ns == 0)
		return;
	timer_arm(c->st->w->timers, &c->ka_timer,
		  c->last_rx_ns + c->ka_idle_ns + (uint64_t)c->ka_probes * c->ka_intvl_ns);
}

/*
 * Keepalive: only on an idle synchronized connection that has not begun
 * to close and has nothing in flight (the retransmission timer watches
 * that). A probe is an ACK one byte behind SND.UNA (RFC 9293 §3.8.4,
 * no garbage octet): any live peer answers it with an ACK.
 */
static void tcp_keepalive_fire(struct timer *t, void *owner)
{
	struct tcp_conn *c = TCP_CONN_OF(t, ka_timer);
	struct worker *w = owner;

	if (c->state != TCPS_ESTABLISHED && c->state != TCPS_CLOSE_WAIT)
		return;
	tcp_conn_hold(c);
	if (w->now_ns < c->last_rx_ns + c->ka_idle_ns ||
	    c->snd_una != c->snd_max || c->persist) {
		c->ka_probes = 0;
		tcp_keepalive_arm(c); /* heard from the peer (or busy) since: later */
		goto out;
	}
	if (c->ka_probes >= c->ka_max_probes) {
		WCOUNT(w, tcp_keepalive_timeout);
		tcp_send_rst(c);
		tcp_conn_closed(c, TCP_ERR_TIMEOUT);
		goto out;
	}
	c->ka_probes++;
	WCOUNT(w, tcp_keepalive_tx);
	tcp_send_segment(c, c->snd_una - 1, 0, TH_ACK);
	tcp_keepalive_arm(c);
out:
	tcp_conn_release(c);
}

void tcp_timers_init(struct tcp_conn *c)
{
	timer_init(&c->rtx_timer, tcp_rtx_fire);
	timer_init(&c->delack_timer, tcp_delack_fire);
	timer_init(&c->wait_timer, tcp_wait_fire);
	timer_init(&c->ka_timer, tcp_keepalive_fire);
}

void tcp_timers_cancel(struct tcp_conn *c)
{
	struct timer_wheel *tw = c->st->w->timers;

	timer_cancel(tw, &c->rtx_timer);
	timer_cancel(tw, &c->delack_timer);
	timer_cancel(tw, &c->wait_timer);
	timer_cancel(tw, &c->ka_timer);
}
