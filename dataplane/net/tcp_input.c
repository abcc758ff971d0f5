/*
 * tcp_input.c - segment arrival (RFC 9293 §3.10.7): validation, the
 * connection or listener lookup, then the per-state processing in the
 * RFC's order - PAWS (RFC 7323 §5), sequence acceptability with RFC 5961
 * RST/SYN/ACK hardening, ACK processing with RTT from timestamps (RFC
 * 7323 §4) or Karn, SACK scoreboard and RFC 6675 loss recovery (NewReno,
 * RFC 5681/6582, without SACK), limited transmit (RFC 3042), in-order and
 * out-of-order data, FIN. Listeners answer with SYN cookies (RFC 4987)
 * when their backlog is full or the worker is near a resource cap; ICMP
 * fragmentation-needed and ICMPv6 Packet Too Big lower the MSS (RFC 1191,
 * RFC 8201). Segments come from either network layer (struct tcp_l3).
 * Exits go through the shared labels drop, dropafterack and dropwithreset.
 */
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ip.h>
#include <rte_tcp.h>

#include "net.h"
#include "net_private.h"
#include "result.h"
#include "tcp_private.h"
#include "tcp_syncookie.h"

#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_MSS 2
#define TCPOPT_WS 3
#define TCPOPT_SACK_PERM 4
#define TCPOPT_SACK 5
#define TCPOPT_TS 8

#define TCP_OOW_ACK_GAP_NS (500ull * 1000000ull) /* ACKs to out-of-window pure ACKs */

/* One arriving segment, decoded (host order). */
struct tcp_seg {
	uint32_t seq, ack;
	uint32_t len; /* payload bytes */
	uint32_t doff; /* payload offset in the mbuf */
	uint16_t win;
	uint8_t flags;
	struct tcp_opts o;
};

/*
 * Options (RFC 9293 §3.2). A malformed option ends parsing: what was read
 * so far stands, the rest is ignored (as Linux and BSD do). MSS and window
 * scale only count on a SYN.
 */
void tcp_parse_options(const uint8_t *p, uint32_t len, bool syn, struct tcp_opts *o)
{
	memset(o, 0, sizeof(*o));
	while (len > 0) {
		uint8_t kind = p[0], olen;

		if (kind == TCPOPT_EOL)
			break;
		if (kind == TCPOPT_NOP) {
			p++;
			len--;
			continue;
		}
		if (len < 2 || (olen = p[1]) < 2 || olen > len)
			break;
		switch (kind) {
		case TCPOPT_MSS:
			if (olen == 4 && syn) {
				o->mss_ok = true;
				o->mss = (uint16_t)(p[2] << 8 | p[3]);
			}
			break;
		case TCPOPT_WS:
			if (olen == 3 && syn) {
				o->ws_ok = true;
				o->ws = p[2];
			}
			break;
		case TCPOPT_SACK_PERM:
			if (olen == 2 && syn)
				o->sack_perm = true;
			break;
		case TCPOPT_SACK:
			/* RFC 2018 §3: 2 + 8n bytes, n blocks of left and right edge. */
			if (!syn && olen >= 10 && (olen - 2) % 8 == 0) {
				for (unsigned k = 0; k < (olen - 2u) / 8 && o->nsack < TCP_SACK_BLOCKS;
				     k++) {
					const uint8_t *b = p + 2 + 8 * k;

					o->sack[o->nsack].start = (uint32_t)b[0] << 24 |
								  (uint32_t)b[1] << 16 |
								  (uint32_t)b[2] << 8 | b[3];
					o->sack[o->nsack].end = (uint32_t)b[4] << 24 |
								(uint32_t)b[5] << 16 |
								(uint32_t)b[6] << 8 | b[7];
					o->nsack++;
				}
			}
			break;
		case TCPOPT_TS:
			if (olen == 10) {
				o->ts_ok = true;
				o->tsval = (uint32_t)p[2] << 24 | (uint32_t)p[3] << 16 |
					   (uint32_t)p[4] << 8 | p[5];
				o->tsecr = (uint32_t)p[6] << 24 | (uint32_t)p[7] << 16 |
					   (uint32_t)p[8] << 8 | p[9];
			}
			break;
		default:
			break;
		}
		p += olen;
		len -= olen;
	}
}

/* RFC 5961 §7: challenge ACKs are rate limited per worker. */
bool tcp_challenge_ack_allowed(struct tcp_stack *st)
{
	uint64_t sec = st->w->now_ns / 1000000000ull;

	if (sec != st->challenge_sec) {
		st->challenge_sec = sec;
		st->challenge_count = 0;
	}
	if (st->challenge_count >= st->cfg.challenge_ack_per_s) {
		WCOUNT(st->w, tcp_challenge_ack_limited);
		return false;
	}
	st->challenge_count++;
	return true;
}

static void tcp_challenge_ack(struct tcp_conn *c)
{
	if (!tcp_challenge_ack_allowed(c->st))
		return;
	WCOUNT(c->st->w, tcp_challenge_ack_tx);
	tcp_send_ack(c);
}

/* MSS, window scale and timestamps agreed on from the peer's SYN options. */
static void tcp_syn_options(struct tcp_conn *c, const struct tcp_opts *o)
{
	const struct tcp_config *cfg = &c->st->cfg;
	uint16_t local = tcp_local_mss(c->st, &c->raddr);

	c->peer_mss = o->mss_ok && o->mss > 0 ? o->mss : TCP_DEFAULT_MSS;
	/* RFC 7323 §2.2: scaling only if both sides sent the option. */
	if (cfg->window_scale && o->ws_ok) {
		c->ws_ok = true;
		/* RFC 7323 §2.3: a shift above 14 is used as 14 (and logged). */
		c->snd_wscale = o->ws > TCP_MAX_WSCALE ? TCP_MAX_WSCALE : o->ws;
	} else {
		c->ws_ok = false;
		c->snd_wscale = 0;
		c->rcv_wscale = 0;
	}
	/* RFC 2018 §2: SACK only if both sides sent SACK-permitted. */
	c->sack_ok = cfg->sack && o->sack_perm;
	if (cfg->timestamps && o->ts_ok) {
		c->ts_ok = true;
		c->ts_recent = o->tsval;
		c->ts_recent_ns = c->st->w->now_ns;
	} else {
		c->ts_ok = false;
	}
	/* RFC 9293 §3.7.1: payload per segment, options we put on every segment deducted. */
	c->mss = (uint16_t)((c->peer_mss < local ? c->peer_mss : local) - (c->ts_ok ? 12 : 0));
}

/*
 * SYN cookies (RFC 4987 §3.6, tcp_syncookie.h): answer a SYN with a
 * SYN-ACK whose ISS encodes the peer's MSS, and, when the SYN carried
 * timestamps, whose TSval encodes its window scale and SACK-permitted.
 * Without timestamps only the MSS survives, so nothing else is offered.
 */
static void tcp_syncookie_send(struct tcp_stack *st, struct tcp_listener *l,
                               const struct pg_addr *laddr, uint16_t lport,
                               const struct pg_addr *raddr, uint16_t rport, const struct tcp_seg *s)
{
	struct worker *w = st->w;
	const struct tcp_config *cfg = &st->cfg;
	uint16_t local = tcp_local_mss(st, raddr);
	uint16_t peer_mss = s->o.mss_ok ? s->o.mss : 0;
	bool ts = cfg->timestamps && s->o.ts_ok;
	bool ws = ts && cfg->window_scale && s->o.ws_ok;
	bool sack = ts && cfg->sack && s->o.sack_perm;
	uint32_t iss, tsval = 0;

	/* The cookie remembers an MSS class; one above ours would only be clamped later. */
	if (peer_mss > local)
		peer_mss = local;
	/* Note the peer's addresses come first here: saddr/sport as received. */
	iss = tcp_syncookie_make_addr(&st->isn_key, raddr, laddr, rport, lport, s->seq, peer_mss,
	                              w->now_ns);
	if (ts) {
		struct tcp_syncookie_opts o = {
		    .wscale = ws ? (s->o.ws > TCP_MAX_WSCALE ? TCP_MAX_WSCALE : s->o.ws)
				 : TCP_SYNCOOKIE_WSCALE_NONE,
		    .sack_ok = sack,
		};

		tsval = tcp_syncookie_tsval(
		    tcp_ts_clock(w, tcp_ts_offset(st, laddr, raddr, lport, rport)), &o);
	}
	l->cookie_ns = w->now_ns;
	WCOUNT(w, tcp_syncookie_tx);
	tcp_respond_synack(w, laddr, raddr, lport, rport, iss, s->seq + 1, local, ts, tsval,
			   s->o.tsval, ws ? tcp_stack_rcv_wscale(st) : -1, sack);
}

/* The listener sent cookies recently enough that one may come back now. */
static bool tcp_syncookie_live(const struct tcp_stack *st, const struct tcp_listener *l)
{
	return l->cookie_ns != 0 &&
	       st->w->now_ns - l->cookie_ns <=
		   (TCP_SYNCOOKIE_MAX_AGE + 1) * TCP_SYNCOOKIE_PERIOD_NS;
}

/*
 * The ACK completing a cookie handshake: validate it (cookie = SEG.ACK - 1,
 * peer ISN = SEG.SEQ - 1) and create the connection in ESTABLISHED with
 * what the cookie and the echoed timestamp remember. NULL if it is not a
 * valid cookie (the caller answers as for any stray segment).
 */
static struct tcp_conn *tcp_syncookie_accept(struct tcp_stack *st, struct tcp_listener *l,
                                             const struct pg_addr *laddr, uint16_t lport,
                                             const struct pg_addr *raddr, uint16_t rport,
                                             const struct tcp_seg *s)
{
	struct worker *w = st->w;
	const struct tcp_config *cfg = &st->cfg;
	struct tcp_syncookie_opts o = {.wscale = TCP_SYNCOOKIE_WSCALE_NONE};
	struct tcp_conn *c;
	uint16_t mss, local;

	if (tcp_syncookie_check_addr(&st->isn_key, raddr, laddr, rport, lport, s->seq - 1,
	                             s->ack - 1, w->now_ns, &mss) != PG_OK) {
		WCOUNT(w, tcp_syncookie_bad);
		return NULL;
	}
	/* Timestamps on the ACK: ours were offered, so TSecr holds the options. */
	if (cfg->timestamps && s->o.ts_ok && tcp_syncookie_ts_decode(s->o.tsecr, &o) != PG_OK) {
		WCOUNT(w, tcp_syncookie_bad);
		return NULL;
	}
	c = tcp_conn_new(st, laddr, lport, raddr, rport);
	if (c == NULL)
		return NULL;
	WCOUNT(w, tcp_syncookie_ok);
	c->passive = true;
	c->ops = l->ops;
	c->user = l->user;
	c->irs = s->seq - 1;
	c->rcv_nxt = s->seq;
	c->rcv_adv = c->rcv_nxt;
	c->last_ack_sent = c->rcv_nxt;
	c->iss = s->ack - 1;
	c->snd_una = c->snd_nxt = c->snd_max = s->ack;
	c->snd_buf_seq = s->ack;
	c->recover = c->iss;
	local = tcp_local_mss(st, raddr);
	c->peer_mss = mss;
	c->ts_ok = o.ts_ok;
	if (c->ts_ok) {
		c->ts_recent = s->o.tsval;
		c->ts_recent_ns = w->now_ns;
	}
	c->ws_ok = o.wscale != TCP_SYNCOOKIE_WSCALE_NONE;
	c->snd_wscale = c->ws_ok ? o.wscale : 0;
	c->rcv_wscale = c->ws_ok ? tcp_stack_rcv_wscale(st) : 0;
	c->sack_ok = o.sack_ok;
	c->mss = (uint16_t)((mss < local ? mss : local) - (c->ts_ok ? 12 : 0));
	/* The window update of the segment itself sets SND.WND (WL1 behind SEG.SEQ). */
	c->snd_wl1 = s->seq - 1;
	c->snd_wl2 = s->ack;
	/* No RTT sample: the SYN-ACK's send time was not kept. */
	tcp_set_state(c, TCPS_SYN_RECEIVED);
	return c;
}

/* A SYN for a listener: a new connection in SYN_RECEIVED answering SYN-ACK. */
static void tcp_passive_open(struct tcp_stack *st, struct tcp_listener *l,
                             const struct pg_addr *laddr, uint16_t lport,
                             const struct pg_addr *raddr, uint16_t rport, const struct tcp_seg *s,
                             uint32_t min_isn, bool have_min_isn)
{
	struct worker *w = st->w;
	enum tcp_pressure pressure;
	struct tcp_conn *c;

	WCOUNT(w, tcp_syn_rx);
	pressure = tcp_stack_pressure(st);
	if (pressure == TCP_PRESSURE_HARD)
		goto refuse;
	if (l->nsynrcvd >= st->cfg.syn_backlog || pressure == TCP_PRESSURE_SOFT) {
		/*
		 * RFC 4987 §3.6: the backlog is full, or the worker is close
		 * to a cap - remember nothing until the peer proves itself.
		 */
		if (st->cfg.syncookies)
			tcp_syncookie_send(st, l, laddr, lport, raddr, rport, s);
		else if (pressure == TCP_PRESSURE_SOFT)
			goto refuse;
		else
			WCOUNT(w, tcp_drop_backlog);
		return;
	}
	c = tcp_conn_new(st, laddr, lport, raddr, rport);
	if (c == NULL)
		goto refuse;
	c->passive = true;
	c->listener = l;
	l->nsynrcvd++;
	c->ops = l->ops;
	c->user = l->user;
	c->irs = s->seq;
	c->rcv_nxt = s->seq + 1;
	c->rcv_adv = c->rcv_nxt;
	/* RFC 6528; tcp_isn_addr() takes both addresses, then both ports, ours first. */
	c->iss = tcp_isn_addr(&st->isn_key, laddr, raddr, lport, rport, w->now_ns);
	if (have_min_isn && SEQ_LT(c->iss, min_isn))
		c->iss = min_isn;
	c->snd_una = c->snd_nxt = c->snd_max = c->iss;
	c->snd_buf_seq = c->iss + 1;
	c->recover = c->iss;
	tcp_syn_options(c, &s->o);
	c->snd_wnd = s->win; /* RFC 7323 §2.2: not scaled in a SYN */
	c->max_snd_wnd = c->snd_wnd;
	c->snd_wl1 = s->seq;
	c->snd_wl2 = c->iss;
	tcp_set_state(c, TCPS_SYN_RECEIVED);
	/* Data on a SYN is not kept (no TFO); the peer sends it again. */
	tcp_conn_hold(c);
	tcp_output(c);
	tcp_conn_release(c);
	return;

refuse:
	/* Refuse early rather than fall over or hang (DESIGN.md, backpressure). */
	tcp_respond_rst(w, laddr, raddr, lport, rport, 0, s->seq + 1, TH_RST | TH_ACK);
}

/* RFC 9293 §3.10.7.1: CLOSED (no connection, no listener) answers with a RST. */
static void tcp_closed_rst(struct worker *w, const struct pg_addr *laddr,
                           const struct pg_addr *raddr, uint16_t lport, uint16_t rport,
                           const struct tcp_seg *s)
{
	if (s->flags & TH_RST)
		return; /* never a RST for a RST */
	if (s->flags & TH_ACK)
		tcp_respond_rst(w, laddr, raddr, lport, rport, s->ack, 0, TH_RST);
	else
		tcp_respond_rst(w, laddr, raddr, lport, rport, 0,
				s->seq + s->len + !!(s->flags & TH_SYN) + !!(s->flags & TH_FIN),
				TH_RST | TH_ACK);
}

/* Enter the peer's FIN into the sequence space (RFC 9293 §3.10.7.4, eighth). */
static void tcp_fin_arrived(struct tcp_conn *c)
{
	c->rcv_nxt++;
	c->rcv_fin = true;
	c->rcv_fin_ooo = false;
	c->ack_now = true;
	switch (c->state) {
	case TCPS_SYN_RECEIVED:
	case TCPS_ESTABLISHED:
		tcp_set_state(c, TCPS_CLOSE_WAIT);
		break;
	case TCPS_FIN_WAIT_1:
		/* Our FIN not yet acknowledged: simultaneous close. */
		tcp_set_state(c, TCPS_CLOSING);
		break;
	case TCPS_FIN_WAIT_2:
		/* EOF first (the user may read or close), then TIME_WAIT. */
		tcp_send_ack(c);
		tcp_notify_readable(c);
		if (!c->free_pending && c->state == TCPS_FIN_WAIT_2)
			tcp_enter_time_wait(c);
		return;
	default:
		break;
	}
	tcp_notify_readable(c);
}

/* Insert [start, end) into the sorted out-of-order list, merging neighbours. */
static bool tcp_ooo_insert(struct tcp_conn *c, uint32_t start, uint32_t end)
{
	unsigned i = 0, j;

	while (i < c->nooo && SEQ_LT(c->ooo[i].end, start))
		i++;
	/* ranges i.. may overlap or touch [start, end) */
	j = i;
	while (j < c->nooo && SEQ_LEQ(c->ooo[j].start, end)) {
		if (SEQ_LT(c->ooo[j].start, start))
			start = c->ooo[j].start;
		if (SEQ_GT(c->ooo[j].end, end))
			end = c->ooo[j].end;
		j++;
	}
	if (j == i) {
		if (c->nooo == TCP_OOO_MAX)
			return false;
		memmove(&c->ooo[i + 1], &c->ooo[i], (c->nooo - i) * sizeof(c->ooo[0]));
		c->nooo++;
	} else if (j > i + 1) {
		memmove(&c->ooo[i + 1], &c->ooo[j], (c->nooo - j) * sizeof(c->ooo[0]));
		c->nooo -= j - i - 1;
	}
	c->ooo[i].start = start;
	c->ooo[i].end = end;
	return true;
}

/*
 * Seventh step: segment text. The payload (already trimmed to the window)
 * goes to its place in the receive ring; in order, it extends rcv_nxt and
 * pulls in any out-of-order ranges it now touches.
 */
static void tcp_data(struct tcp_conn *c, struct rte_mbuf *m, const struct tcp_seg *s)
{
	struct worker *w = c->st->w;
	uint32_t off = s->seq - c->rcv_nxt;

	tcp_ring_write_mbuf(&c->rcvq, c->rcvq.len + off, m, s->doff, s->len);
	if (off != 0) {
		/* RFC 5681 §4.2: out-of-order data is acknowledged at once. */
		WCOUNT(w, tcp_rx_ooo);
		if (!tcp_ooo_insert(c, s->seq, s->seq + s->len))
			WCOUNT(w, tcp_drop_ooo_full);
		else if (c->sack_ok)
			tcp_sack_note(c->sack_recent, &c->nsack_recent, s->seq);
		c->ack_now = true;
		return;
	}
	c->rcv_nxt += s->len;
	c->rcvq.len += s->len;
	if (c->nooo > 0) {
		bool filled = false;

		while (c->nooo > 0 && SEQ_LEQ(c->ooo[0].start, c->rcv_nxt)) {
			if (SEQ_GT(c->ooo[0].end, c->rcv_nxt)) {
				c->rcvq.len += c->ooo[0].end - c->rcv_nxt;
				c->rcv_nxt = c->ooo[0].end;
			}
			memmove(&c->ooo[0], &c->ooo[1], (c->nooo - 1) * sizeof(c->ooo[0]));
			c->nooo--;
			filled = true;
		}
		/* RFC 5681 §4.2: a segment filling a gap is acknowledged at once. */
		if (filled)
			c->ack_now = true;
	}
	/* Delayed ACK: at least every second full-sized segment (RFC 5681 §4.2). */
	c->unacked_bytes += s->len;
	if (c->unacked_bytes >= 2u * c->mss)
		c->ack_now = true;
	else if (!c->ack_now)
		tcp_delack_arm(c);
	tcp_notify_readable(c);
}

/*
 * RFC 7661 / RFC 9438 §5.8: cwnd grows only while it limits the sender -
 * the window was (nearly) full when this ACK arrived, or cwnd held data
 * back within the last window of data (tcp_output notes when).
 */
static bool tcp_cwnd_limited(const struct tcp_conn *c)
{
	uint32_t flight = c->snd_nxt - c->snd_una;

	return flight + c->mss > c->cc.cwnd || SEQ_LT(c->snd_una, c->cwnd_limited_until);
}

/* New data acknowledged: SND.UNA moves (RFC 9293 §3.10.7.4, fifth, ESTABLISHED). */
static void tcp_ack_advance(struct tcp_conn *c, uint32_t ack, const struct tcp_opts *o)
{
	struct tcp_stack *st = c->st;
	struct worker *w = st->w;
	uint32_t acked = ack - c->snd_una;
	uint32_t data_acked = 0;
	uint64_t rtt = 0;
	bool cwnd_limited = tcp_cwnd_limited(c);

	if (c->ts_ok && o->ts_ok && o->tsecr != 0) {
		/*
		 * RFC 7323 §4: with timestamps every ACK that advances the
		 * left edge measures the RTT, retransmissions included (the
		 * echo says which transmission it answers). A TSecr ahead of
		 * our clock, or absurdly old, is not one of ours: no sample.
		 */
		uint32_t ticks = tcp_ts_now(c) - o->tsecr;

		c->rtt_active = false;
		if ((int32_t)ticks >= 0 && ticks < 60u * TCP_TS_HZ) {
			rtt = (uint64_t)ticks * (1000000000ull / TCP_TS_HZ);
			tcp_rtt_sample(c, rtt);
		}
	} else if (c->rtt_active && SEQ_GT(ack, c->rtt_seq)) {
		/* RFC 6298 §3 (Karn): only a segment sent once gives a sample. */
		rtt = w->now_ns - c->rtt_start_ns;
		c->rtt_active = false;
		tcp_rtt_sample(c, rtt);
	}
	if (SEQ_GT(ack, c->snd_buf_seq)) {
		data_acked = ack - c->snd_buf_seq;
		if (data_acked > c->sndq.len)
			data_acked = c->sndq.len;
		tcp_ring_drop(&c->sndq, data_acked);
		if (c->sndq.len == 0)
			c->sndq.head = 0;
		c->snd_buf_seq += data_acked;
	}
	c->snd_una = ack;
	if (SEQ_LT(c->snd_nxt, c->snd_una))
		c->snd_nxt = c->snd_una;
	c->rtx_count = 0;
	c->lt_allow = 0;
	tcp_sb_advance(&c->sb, ack);

	if (c->in_recovery) {
		if (SEQ_GEQ(ack, c->recover)) {
			/* RFC 6582 §3.2 step 3: full ACK ends recovery (option 1 deflation). */
			uint32_t flight = c->snd_max - c->snd_una;

			c->in_recovery = false;
			c->cc.cwnd = c->cc.ssthresh < flight + c->mss ? c->cc.ssthresh
								      : flight + c->mss;
			if (c->cc_ops->post_recovery != NULL)
				c->cc_ops->post_recovery(&c->cc, w->now_ns);
		} else if (c->sack_ok) {
			/*
			 * RFC 6675 §5 (C): a partial ACK only updates the
			 * scoreboard; the pipe loop in tcp_output decides what
			 * goes out next.
			 */
			WCOUNT(w, tcp_partial_acks);
			if (SEQ_LT(c->high_rxt, c->snd_una))
				c->high_rxt = c->snd_una;
			/*
			 * The new first hole was resent at some point before
			 * now, so SND.MAX now is a safe (late) mark for it.
			 */
			c->una_rxt_valid = SEQ_LT(c->snd_una, c->high_rxt);
			c->una_rxt_mark = c->snd_max;
		} else {
			/* RFC 6582 §3.2 step 4: partial ACK, resend the next hole. */
			uint32_t len = c->snd_buf_seq + c->sndq.len - c->snd_una;
			uint32_t mss = tcp_eff_mss(c);

			if (len > mss)
				len = mss;
			if (len > 0)
				tcp_send_segment(c, c->snd_una, len, TH_ACK);
			WCOUNT(w, tcp_partial_acks);
			c->cc.cwnd = c->cc.cwnd > acked ? c->cc.cwnd - acked : 0;
			if (acked >= c->mss)
				c->cc.cwnd += c->mss;
			if (c->cc.cwnd < c->mss)
				c->cc.cwnd = c->mss;
			tcp_rtx_stop(c);
		}
	} else if (cwnd_limited) {
		c->cc_ops->on_ack(&c->cc, acked, rtt, w->now_ns);
	}
	c->dupacks = 0;
	if (c->snd_una == c->snd_max)
		tcp_rtx_stop(c);
	else
		tcp_rtx_arm(c); /* RFC 6298 §5.3: restart on new data acknowledged */
	if (data_acked > 0)
		tcp_notify_writable(c);
}

/*
 * A lost retransmission (as Linux's lost-retransmit detection, which RFC
 * 6675 leaves to the RTO): the segment at SND.UNA was resent, and data
 * sent DupThresh segments after that resend has since been SACKed, yet
 * SND.UNA has not moved - the resend is gone too. Send it once more now
 * rather than wait out a timeout with the pipe drained.
 */
static void tcp_sack_lost_rxt(struct tcp_conn *c)
{
	uint32_t len = tcp_eff_mss(c);

	if (!c->una_rxt_valid || c->sb.n == 0 ||
	    SEQ_LT(c->sb.r[c->sb.n - 1].end, c->una_rxt_mark + TCP_SACK_DUPTHRESH * c->mss))
		return;
	if (c->sb.r[0].start - c->snd_una < len)
		len = c->sb.r[0].start - c->snd_una;
	c->una_rxt_mark = c->snd_max;
	WCOUNT(c->st->w, tcp_sack_rtx);
	WCOUNT(c->st->w, tcp_sack_lost_rxt);
	tcp_resend(c, c->snd_una, len);
	tcp_rtx_arm(c);
}

/*
 * Duplicate ACKs and fast retransmit: RFC 5681 §3.2 with RFC 6582
 * (NewReno) recovery, or with SACK, RFC 6675 §5 - loss is also declared
 * when IsLost(SND.UNA) says so before three duplicates arrived. Before
 * that, RFC 3042 limited transmit lets one new segment out per duplicate.
 */
static void tcp_dupack(struct tcp_conn *c, uint32_t ack)
{
	struct tcp_stack *st = c->st;
	struct worker *w = st->w;
	uint32_t flight, len;

	c->dupacks++;
	WCOUNT(w, tcp_rx_dupacks);
	if (c->in_recovery) {
		if (!c->sack_ok)
			c->cc.cwnd += c->mss; /* each dupack: a segment left the network */
		return;
	}
	if (c->dupacks < TCP_SACK_DUPTHRESH &&
	    !(c->sack_ok && tcp_sb_is_lost(&c->sb, c->snd_una, c->mss))) {
		c->lt_allow = c->dupacks * c->mss;
		return;
	}
	/* RFC 6582 §3.2 step 1 / RFC 6675 §5: once per window of data. */
	if (!SEQ_GT(ack - 1, c->recover) && c->recover != c->iss)
		return;
	/* RFC 5681 §3.2 eq. 4: FlightSize, what is outstanding now. */
	flight = c->snd_nxt - c->snd_una;
	c->recover = c->snd_max;
	c->in_recovery = true;
	c->lt_allow = 0;
	c->rtt_active = false;
	c->cc_ops->on_congestion(&c->cc, flight, w->now_ns);
	WCOUNT(w, tcp_fast_retransmits);
	len = tcp_eff_mss(c);
	if (c->sack_ok) {
		/* RFC 6675 §5 step 4.3: resend the first lost segment; pipe does the rest. */
		WCOUNT(w, tcp_sack_recovery);
		if (c->sb.n > 0 && c->sb.r[0].start - c->snd_una < len)
			len = c->sb.r[0].start - c->snd_una;
		c->high_rxt = c->snd_una + len;
		c->una_rxt_valid = true;
		c->una_rxt_mark = c->snd_max;
		tcp_resend(c, c->snd_una, len);
	} else {
		tcp_resend(c, c->snd_una, len);
		c->cc.cwnd = c->cc.ssthresh + 3 * c->mss;
	}
	tcp_rtx_arm(c);
}

/* RFC 9293 §3.10.7.3: SYN_SENT. */
static void tcp_syn_sent(struct tcp_conn *c, struct tcp_seg *s)
{
	struct worker *w = c->st->w;
	bool ack_ok = false;

	if (s->flags & TH_ACK) {
		if (SEQ_LEQ(s->ack, c->iss) || SEQ_GT(s->ack, c->snd_max)) {
			WCOUNT(w, tcp_drop_bad_ack);
			goto dropwithreset;
		}
		ack_ok = true;
	}
	if (s->flags & TH_RST) {
		/* RFC 5961 §3.2 note: in SYN-SENT a RST counts only if it acknowledges our SYN. */
		if (ack_ok) {
			WCOUNT(w, tcp_rst_rx);
			WCOUNT(w, tcp_conn_refused);
			tcp_conn_closed(c, TCP_ERR_REFUSED);
		}
		goto drop;
	}
	if (!(s->flags & TH_SYN))
		goto drop;

	c->irs = s->seq;
	c->rcv_nxt = s->seq + 1;
	c->rcv_adv = c->rcv_nxt;
	tcp_syn_options(c, &s->o);
	if (ack_ok) {
		c->snd_una = s->ack;
		if (SEQ_LT(c->snd_nxt, c->snd_una))
			c->snd_nxt = c->snd_una;
		c->snd_wnd = s->win; /* RFC 7323 §2.2: not scaled in a SYN */
		c->max_snd_wnd = c->snd_wnd;
		c->snd_wl1 = s->seq;
		c->snd_wl2 = s->ack;
		if (c->rtt_active) {
			c->rtt_active = false;
			tcp_rtt_sample(c, w->now_ns - c->rtt_start_ns);
		}
		c->rtx_count = 0;
		tcp_rtx_stop(c);
		c->ack_now = true;
		tcp_conn_established(c);
		if (c->state == TCPS_CLOSED || c->free_pending)
			goto drop;
		/* Data on the SYN-ACK is not kept; the ACK makes the peer resend it. */
		tcp_output(c);
		goto drop;
	}
	/* Simultaneous open (RFC 9293 §3.5 figure 8): SYN_RECEIVED, send SYN,ACK. */
	c->snd_wnd = s->win;
	c->max_snd_wnd = c->snd_wnd;
	c->snd_wl1 = s->seq;
	c->snd_wl2 = c->iss;
	tcp_set_state(c, TCPS_SYN_RECEIVED);
	c->snd_nxt = c->iss;
	tcp_output(c);
	goto drop;

dropwithreset:
	if (!(s->flags & TH_RST))
		tcp_respond_rst(w, &c->laddr, &c->raddr, c->lport, c->rport, s->ack, 0, TH_RST);
drop:
	return;
}

/* Segment processing for every state but SYN_SENT (RFC 9293 §3.10.7.4). */
static void tcp_segment(struct tcp_conn *c, struct rte_mbuf *m, struct tcp_seg *s)
{
	struct tcp_stack *st = c->st;
	struct worker *w = st->w;
	uint32_t wnd, orig_seq = s->seq, orig_len = s->len;
	int32_t todrop;
	bool pure_ack = s->len == 0 && !(s->flags & (TH_SYN | TH_FIN));
	bool advanced = false, sack_new = false;

	/*
	 * RFC 7323 §5.3 R1 (PAWS), before the sequence check. A segment with
	 * no timestamp on a timestamp connection is processed without PAWS:
	 * §3.2 says SHOULD drop, but peers (middleboxes, some stacks) stop
	 * sending timestamps mid-connection and dropping would hang them.
	 */
	if (c->ts_ok && s->o.ts_ok && !(s->flags & TH_RST) && c->ts_recent_ns != 0 &&
	    SEQ_LT(s->o.tsval, c->ts_recent)) {
		if (w->now_ns - c->ts_recent_ns > TCP_PAWS_IDLE_NS) {
			c->ts_recent_ns = 0; /* §5.5: too old to compare against */
		} else {
			WCOUNT(w, tcp_drop_paws);
			goto dropafterack;
		}
	}

	/* A retransmitted SYN while our SYN-ACK is in flight or lost: answer it again. */
	if (c->state == TCPS_SYN_RECEIVED && (s->flags & (TH_SYN | TH_ACK | TH_RST)) == TH_SYN &&
	    s->seq == c->irs) {
		c->snd_nxt = c->iss;
		tcp_output(c);
		goto drop;
	}

	/*
	 * RFC 5961 §3.2: a RST is valid only exactly at RCV.NXT; in the window
	 * it earns a (rate limited) challenge ACK; outside it is dropped.
	 */
	if (s->flags & TH_RST) {
		wnd = tcp_rcv_space(c);
		if (!(SEQ_GEQ(s->seq, c->rcv_nxt) && SEQ_LT(s->seq, c->rcv_nxt + (wnd ? wnd : 1)))) {
			WCOUNT(w, tcp_drop_rst_oow);
			goto drop;
		}
		if (s->seq != c->rcv_nxt) {
			tcp_challenge_ack(c);
			goto drop;
		}
		WCOUNT(w, tcp_rst_rx);
		switch (c->state) {
		case TCPS_SYN_RECEIVED:
			/* Passive: back to LISTEN, which means just forgetting it. */
			tcp_conn_closed(c, c->passive ? TCP_ERR_NONE : TCP_ERR_REFUSED);
			break;
		case TCPS_TIME_WAIT:
			/* RFC 1337 would ignore this; RFC 9293 §3.10.7.4 closes. */
			tcp_conn_closed(c, TCP_ERR_NONE);
			break;
		default:
			WCOUNT(w, tcp_conn_reset);
			tcp_conn_closed(c, TCP_ERR_RESET);
			break;
		}
		goto drop;
	}

	/*
	 * The peer's own SYN again (simultaneous open's SYN-ACK, a repeated
	 * SYN-ACK): drop the flag and treat the rest as usual.
	 */
	todrop = (int32_t)(c->rcv_nxt - s->seq);
	if ((s->flags & TH_SYN) && s->seq == c->irs && todrop > 0) {
		s->flags &= (uint8_t)~TH_SYN;
		s->seq++;
		todrop--;
	}
	/* RFC 5961 §4.2: any other SYN on a synchronized connection gets a challenge ACK. */
	if (s->flags & TH_SYN) {
		WCOUNT(w, tcp_rx_syn_challenged);
		tcp_challenge_ack(c);
		goto drop;
	}

	/* RFC 9293 §3.10.7.4 first: trim what lies before RCV.NXT. */
	if (todrop > 0) {
		if ((uint32_t)todrop > s->len ||
		    ((uint32_t)todrop == s->len && !(s->flags & TH_FIN))) {
			/* Entirely old: a duplicate; ACK it so the peer learns where we are. */
			if (s->len > 0 || (s->flags & TH_FIN))
				WCOUNT(w, tcp_rx_dup);
			s->flags &= (uint8_t)~TH_FIN;
			c->ack_now = true;
			todrop = (int32_t)s->len;
		}
		s->doff += (uint32_t)todrop;
		s->seq += (uint32_t)todrop;
		s->len -= (uint32_t)todrop;
	}
	/* ... and what lies beyond the window. */
	wnd = tcp_rcv_space(c);
	todrop = (int32_t)(s->seq + s->len - (c->rcv_nxt + wnd));
	if (todrop > 0) {
		if ((uint32_t)todrop >= s->len) {
			if (wnd == 0 && s->seq == c->rcv_nxt) {
				/* A zero-window probe: ACK it, keep processing its ACK. */
				WCOUNT(w, tcp_rx_window_probe);
				c->ack_now = true;
			} else if (s->len > 0 || SEQ_GT(s->seq, c->rcv_nxt + wnd)) {
				WCOUNT(w, tcp_drop_oow);
				goto dropafterack;
			}
			s->len = 0;
		} else {
			s->len -= (uint32_t)todrop;
		}
		s->flags &= (uint8_t)~(TH_FIN | TH_PSH);
	}

	/* Acceptable: the peer is alive (keepalive counts from here). */
	c->last_rx_ns = w->now_ns;
	c->ka_probes = 0;

	/* RFC 7323 §4.3: remember the peer's timestamp from the segment at Last.ACK.sent. */
	if (c->ts_ok && s->o.ts_ok && SEQ_LEQ(orig_seq, c->last_ack_sent) &&
	    SEQ_LEQ(c->last_ack_sent, orig_seq + orig_len + !!(s->flags & TH_FIN))) {
		c->ts_recent = s->o.tsval;
		c->ts_recent_ns = w->now_ns;
	}

	/* Fifth: the ACK field. */
	if (!(s->flags & TH_ACK))
		goto drop;
	if (c->state == TCPS_SYN_RECEIVED) {
		if (!SEQ_GT(s->ack, c->snd_una) || SEQ_GT(s->ack, c->snd_max)) {
			WCOUNT(w, tcp_drop_bad_ack);
			goto dropwithreset;
		}
		c->snd_wnd = (uint32_t)s->win << c->snd_wscale;
		c->max_snd_wnd = c->snd_wnd;
		c->snd_wl1 = s->seq;
		c->snd_wl2 = s->ack;
		c->rtx_count = 0;
		if (c->rtt_active) {
			c->rtt_active = false;
			tcp_rtt_sample(c, w->now_ns - c->rtt_start_ns);
		}
		c->snd_una = s->ack;
		tcp_rtx_stop(c);
		tcp_conn_established(c);
		if (c->state == TCPS_CLOSED || c->free_pending)
			goto drop;
	}
	/* RFC 5961 §5.2: acceptable only within [SND.UNA - MAX.SND.WND, SND.NXT]. */
	if (SEQ_GT(s->ack, c->snd_max)) {
		WCOUNT(w, tcp_drop_ack_unsent);
		tcp_challenge_ack(c);
		goto drop;
	}
	if (SEQ_LT(s->ack, c->snd_una - c->max_snd_wnd)) {
		WCOUNT(w, tcp_drop_ack_old);
		tcp_challenge_ack(c);
		goto drop;
	}
	if (c->persist)
		c->rtx_count = 0; /* the peer answers our probes: alive */
	if (SEQ_GT(s->ack, c->snd_una)) {
		tcp_ack_advance(c, s->ack, &s->o);
		if (c->state == TCPS_CLOSED || c->free_pending)
			goto drop;
		advanced = true;
	}
	/* RFC 2018: fold SACK blocks into the scoreboard (after SND.UNA moved). */
	if (c->sack_ok && s->o.nsack > 0 && c->snd_max != c->snd_una) {
		unsigned bad = 0;

		sack_new = tcp_sb_update(&c->sb, c->snd_una, c->snd_max, s->o.sack, s->o.nsack,
					 &bad) > 0;
		WCOUNT_ADD(w, tcp_rx_sack_bad, bad);
		WCOUNT_ADD(w, tcp_rx_sack_blocks, s->o.nsack - bad);
		if (sack_new && c->in_recovery)
			tcp_sack_lost_rxt(c);
	}
	/*
	 * RFC 5681 §2 duplicate ACK (no data, no FIN, same window), or with
	 * SACK any ACK that SACKs new data (RFC 6675 §2).
	 */
	if (!advanced && s->ack == c->snd_una && c->snd_max != c->snd_una &&
	    ((s->len == 0 && !(s->flags & TH_FIN) &&
	      ((uint32_t)s->win << c->snd_wscale) == c->snd_wnd) ||
	     sack_new))
		tcp_dupack(c, s->ack);
	/* Send window update (RFC 9293 §3.10.7.4: SND.WL1/WL2 guard against old segments). */
	if (SEQ_LT(c->snd_wl1, s->seq) ||
	    (c->snd_wl1 == s->seq && SEQ_LEQ(c->snd_wl2, s->ack))) {
		c->snd_wnd = (uint32_t)s->win << c->snd_wscale;
		c->snd_wl1 = s->seq;
		c->snd_wl2 = s->ack;
		if (c->snd_wnd > c->max_snd_wnd)
			c->max_snd_wnd = c->snd_wnd;
		if (c->snd_wnd == 0 && SEQ_LT(c->snd_una, c->snd_buf_seq + c->sndq.len)) {
			/*
			 * Zero window: what is in flight lies beyond it; probe
			 * instead of retransmitting into it (and never time out
			 * a peer that keeps answering).
			 */
			c->snd_nxt = c->snd_una;
			if (!c->persist) {
				tcp_rtx_stop(c);
				c->rtx_count = 0;
				tcp_persist_arm(c);
			}
		} else if (c->snd_wnd > 0 && c->persist) {
			c->persist = false;
			c->rtx_count = 0;
			tcp_rtx_stop(c);
			if (c->snd_una != c->snd_max)
				tcp_rtx_arm(c);
		}
	}

	/* Our FIN acknowledged? */
	if (c->fin_sent && c->snd_una == c->snd_buf_seq + c->sndq.len + 1) {
		switch (c->state) {
		case TCPS_FIN_WAIT_1:
			tcp_set_state(c, TCPS_FIN_WAIT_2);
			if (!c->user_owned)
				tcp_wait_arm(c, st->cfg.fin_wait2_ns);
			break;
		case TCPS_CLOSING:
			tcp_enter_time_wait(c);
			goto drop;
		case TCPS_LAST_ACK:
			WCOUNT(w, tcp_conn_closed);
			tcp_conn_closed(c, TCP_ERR_NONE);
			goto drop;
		default:
			break;
		}
	}
	if (c->state == TCPS_TIME_WAIT) {
		/* Only a retransmitted FIN can arrive: ACK it, restart 2*MSL (RFC 9293 §3.10.7.4). */
		if (orig_len > 0 || (s->flags & TH_FIN) || c->ack_now) {
			tcp_wait_arm(c, 2 * st->cfg.msl_ns);
			tcp_send_ack(c);
		}
		goto drop;
	}

	/* Seventh: text, in the states that still receive. */
	if (s->len > 0) {
		switch (c->state) {
		case TCPS_ESTABLISHED:
		case TCPS_FIN_WAIT_1:
		case TCPS_FIN_WAIT_2:
			if (!c->user_owned && c->accepted) {
				/* Nobody will read it (closed handle): tell the peer (RFC 2525 §2.17). */
				WCOUNT(w, tcp_orphan_data_rst);
				tcp_send_rst(c);
				tcp_conn_closed(c, TCP_ERR_NONE);
				goto drop;
			}
			tcp_data(c, m, s);
			if (c->state == TCPS_CLOSED || c->free_pending)
				goto drop;
			break;
		default:
			break; /* FIN already received: RFC 9293 says ignore */
		}
	}
	/* Eighth: FIN, in order now or when the hole before it fills. */
	if (s->flags & TH_FIN) {
		uint32_t fin_seq = s->seq + s->len;

		if (!c->rcv_fin) {
			if (fin_seq == c->rcv_nxt) {
				tcp_fin_arrived(c);
			} else if (SEQ_GT(fin_seq, c->rcv_nxt)) {
				c->rcv_fin_ooo = true;
				c->rcv_fin_seq = fin_seq;
				c->ack_now = true;
			}
		} else {
			c->ack_now = true;
		}
	} else if (c->rcv_fin_ooo && c->rcv_nxt == c->rcv_fin_seq) {
		tcp_fin_arrived(c);
	}
	if (c->state == TCPS_CLOSED || c->free_pending)
		goto drop;
	tcp_output(c);
	return;

dropafterack:
	/* Never ACK a RST; pace ACKs to out-of-window pure ACKs (ACK loops). */
	if (s->flags & TH_RST)
		goto drop;
	if (pure_ack) {
		if (w->now_ns - c->oow_ack_ns < TCP_OOW_ACK_GAP_NS && c->oow_ack_ns != 0)
			goto drop;
		c->oow_ack_ns = w->now_ns;
	}
	tcp_send_ack(c);
	return;
dropwithreset:
	if (!(s->flags & TH_RST))
		tcp_respond_rst(w, &c->laddr, &c->raddr, c->lport, c->rport, s->ack, 0, TH_RST);
drop:
	return;
}

/* The smallest path MTU we believe (RFC 1191 §5 floor; 0 from old routers lands here too). */
#define TCP_PMTU_MIN 576

/*
 * A quoted segment of ours with a next-hop MTU: lower the MSS of its
 * connection if the quote is genuine (RFC 5927 §4.1: a live connection,
 * SND.UNA <= SEQ < SND.NXT, our snd_max being the RFC's SND.NXT) and the
 * MTU is a real decrease (RFC 1191 §6.3, RFC 8201 §4: never raised by a
 * message). `th` points at the quoted TCP header (8 bytes at least).
 */
static void tcp_pmtu_apply(struct worker *w, const struct pg_addr *laddr,
                           const struct pg_addr *raddr, const uint8_t *th, uint32_t mtu)
{
	struct tcp_stack *st = w->tcp;
	uint16_t lport, rport, mss, hdrs = tcp_ip_overhead(raddr);
	uint32_t seq;
	struct tcp_conn *c;

	/* We sent the quoted datagram: its source is our side. */
	memcpy(&lport, th, 2);
	memcpy(&rport, th + 2, 2);
	seq = (uint32_t)th[4] << 24 | (uint32_t)th[5] << 16 | (uint32_t)th[6] << 8 | th[7];
	c = tcp_lookup(st, laddr, lport, raddr, rport);
	if (c == NULL || !tcp_state_synchronized(c->state) || c->state == TCPS_TIME_WAIT ||
	    SEQ_LT(seq, c->snd_una) || !SEQ_LT(seq, c->snd_max)) {
		WCOUNT(w, tcp_pmtu_ignored);
		return;
	}
	if (pg_addr_is_v6(raddr) && mtu < 1280)
		mtu = 1280; /* RFC 8201 §4: never below the IPv6 minimum link MTU */
	else if (mtu < TCP_PMTU_MIN)
		mtu = TCP_PMTU_MIN;
	if (mtu > (uint32_t)tcp_local_mss(st, raddr) + hdrs)
		return; /* never above what our own port allows */
	mss = (uint16_t)(mtu - hdrs - (c->ts_ok ? 12 : 0));
	if (mss >= c->mss)
		return;
	WCOUNT(w, tcp_pmtu_update);
	c->mss = mss;
	c->cc.mss = mss;
	/* The too-big segment is gone: send again from SND.UNA at the new size. */
	if (!c->in_recovery && !c->persist && c->snd_una != c->snd_nxt) {
		tcp_conn_hold(c);
		c->snd_nxt = c->snd_una;
		c->rtt_active = false;
		tcp_output(c);
		tcp_conn_release(c);
	}
}

void tcp_pmtu_update(struct worker *w, const void *quote, uint32_t len, uint16_t mtu)
{
	const uint8_t *p = quote;
	uint32_t ihl, a;
	struct pg_addr laddr, raddr;

	if (w->tcp == NULL || len < 20 || (p[0] >> 4) != 4 || (ihl = (p[0] & 0xfu) * 4) < 20 ||
	    len < ihl + 8 || p[9] != IPPROTO_TCP) {
		WCOUNT(w, tcp_pmtu_ignored);
		return;
	}
	memcpy(&a, p + 12, 4);
	laddr = pg_addr_v4(a);
	memcpy(&a, p + 16, 4);
	raddr = pg_addr_v4(a);
	tcp_pmtu_apply(w, &laddr, &raddr, p + ihl, mtu);
}

void tcp_pmtu_update6(struct worker *w, const void *quote, uint32_t len, uint32_t mtu)
{
	const uint8_t *p = quote;
	struct pg_addr laddr, raddr;

	/* Our segments carry no extension headers: TCP follows the fixed header. */
	if (w->tcp == NULL || len < 40 + 8 || (p[0] >> 4) != 6 || p[6] != IPPROTO_TCP) {
		WCOUNT(w, tcp_pmtu_ignored);
		return;
	}
	laddr = pg_addr_v6(p + 8);
	raddr = pg_addr_v6(p + 24);
	tcp_pmtu_apply(w, &laddr, &raddr, p + 40, mtu);
}

/* Pseudo-header (RFC 9293 §3.1, RFC 8200 §8.1) plus segment; valid sums to 0xffff. */
static bool tcp_cksum_ok(const struct rte_mbuf *m, const struct tcp_l3 *l3, uint32_t tcplen)
{
	uint16_t raw, ph;

	if (rte_raw_cksum_mbuf(m, l3->l4off, tcplen, &raw) != 0)
		return false;
	if (pg_addr_is_v6(&l3->src)) {
		ph = ip6_phdr_sum(l3->src.v6, l3->dst.v6, tcplen, IPPROTO_TCP);
	} else {
		struct {
			uint32_t src, dst;
			uint8_t zero, proto;
			uint16_t len;
		} __rte_packed ph4 = {l3->src.v4, l3->dst.v4, 0, IPPROTO_TCP,
		                      rte_cpu_to_be_16((uint16_t)tcplen)};

		ph = rte_raw_cksum(&ph4, sizeof(ph4));
	}
	return net_cksum_fold((uint32_t)raw + ph) == 0xffff;
}

/* m holds the datagram, the segment at l3->l4off; consumed. */
void tcp_input(struct worker *w, struct rte_mbuf *m, const struct tcp_l3 *l3)
{
	struct tcp_stack *st = w->tcp;
	const struct pg_addr *ours = &l3->dst, *theirs = &l3->src;
	uint32_t iphl = l3->l4off;
	uint32_t tcplen = rte_pktmbuf_pkt_len(m) - iphl;
	uint8_t hbuf[TCP_HDR_LEN + TCP_MAX_OPT_LEN];
	const struct rte_tcp_hdr *th;
	uint32_t thl;
	struct tcp_seg s;
	struct tcp_conn *c;

	WCOUNT(w, tcp_rx);
	if (tcplen < TCP_HDR_LEN) {
		WCOUNT(w, tcp_drop_short);
		goto drop;
	}
	th = rte_pktmbuf_read(m, iphl, TCP_HDR_LEN, hbuf);
	thl = (uint32_t)(th->data_off >> 4) * 4;
	if (thl < TCP_HDR_LEN || thl > tcplen) {
		WCOUNT(w, tcp_drop_short);
		goto drop;
	}
	th = rte_pktmbuf_read(m, iphl, thl, hbuf);
	/* RFC 9293 §3.1: the checksum covers pseudo-header, header and data. */
	if (!tcp_cksum_ok(m, l3, tcplen)) {
		WCOUNT(w, tcp_drop_cksum);
		goto drop;
	}
	if (th->src_port == 0 || th->dst_port == 0) {
		WCOUNT(w, tcp_drop_short);
		goto drop;
	}
	s.seq = rte_be_to_cpu_32(th->sent_seq);
	s.ack = rte_be_to_cpu_32(th->recv_ack);
	s.win = rte_be_to_cpu_16(th->rx_win);
	s.flags = th->tcp_flags & (TH_FIN | TH_SYN | TH_RST | TH_PSH | TH_ACK | TH_URG);
	s.len = tcplen - thl;
	s.doff = iphl + thl;
	tcp_parse_options((const uint8_t *)th + TCP_HDR_LEN, thl - TCP_HDR_LEN,
			  (s.flags & TH_SYN) != 0, &s.o);

	c = tcp_lookup(st, ours, th->dst_port, theirs, th->src_port);
	if (c != NULL && c->state == TCPS_TIME_WAIT &&
	    (s.flags & (TH_SYN | TH_ACK | TH_RST)) == TH_SYN) {
		/*
		 * A new SYN for a tuple in TIME_WAIT (RFC 9293 §3.10.7.4 note,
		 * RFC 6191): accept it when it is provably new - beyond our
		 * RCV.NXT, or with a newer timestamp - and a listener wants it.
		 */
		struct tcp_listener *l = tcp_listener_find_addr(st, ours, th->dst_port);
		bool newer = SEQ_GT(s.seq, c->rcv_nxt) ||
			     (c->ts_ok && s.o.ts_ok && SEQ_GT(s.o.tsval, c->ts_recent));

		if (l != NULL && newer && !c->user_owned) {
			uint32_t min_isn = c->snd_max + 65536 * 2;

			WCOUNT(w, tcp_time_wait_reuse);
			tcp_conn_free(c);
			tcp_passive_open(st, l, ours, th->dst_port, theirs, th->src_port, &s,
			                 min_isn, true);
			goto drop;
		}
	}
	if (c == NULL) {
		struct tcp_listener *l = tcp_listener_find_addr(st, ours, th->dst_port);

		if ((s.flags & (TH_SYN | TH_ACK | TH_RST)) == TH_SYN && l != NULL) {
			tcp_passive_open(st, l, ours, th->dst_port, theirs, th->src_port, &s, 0,
			                 false);
			goto drop;
		}
		/* The third segment of a handshake we answered with a SYN cookie? */
		if ((s.flags & (TH_SYN | TH_ACK | TH_RST)) == TH_ACK && l != NULL &&
		    st->cfg.syncookies && tcp_syncookie_live(st, l) &&
		    (c = tcp_syncookie_accept(st, l, ours, th->dst_port, theirs, th->src_port,
		                              &s)) != NULL) {
			tcp_conn_hold(c);
			tcp_conn_established(c);
			if (c->state != TCPS_CLOSED && !c->free_pending)
				tcp_segment(c, m, &s);
			tcp_conn_release(c);
			goto drop;
		}
		WCOUNT(w, tcp_rx_noconn);
		tcp_closed_rst(w, ours, theirs, th->dst_port, th->src_port, &s);
		goto drop;
	}
	tcp_conn_hold(c);
	if (c->state == TCPS_SYN_SENT)
		tcp_syn_sent(c, &s);
	else
		tcp_segment(c, m, &s);
	tcp_conn_release(c);
drop:
	rte_pktmbuf_free(m);
}
