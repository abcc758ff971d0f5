/*
 * tcp_output.c - building and sending segments: what the send and
 * congestion windows allow (sender silly-window avoidance, no Nagle),
 * SYN options (MSS, window scale, timestamps, SACK-permitted), timestamps
 * on every segment once negotiated, SACK blocks on ACKs (RFC 2018), the
 * RFC 6675 pipe loop during SACK recovery, the advertised window with
 * receiver SWS avoidance, pure ACKs, RSTs and SYN-cookie SYN-ACKs, over
 * IPv4 or IPv6 as the connection's addresses say. The TCP checksum is
 * computed in software.
 */
#include <string.h>

#include <rte_byteorder.h>
#include <rte_ip.h>
#include <rte_tcp.h>

#include "net.h"
#include "result.h"
#include "tcp_private.h"

#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_MSS 2
#define TCPOPT_WS 3
#define TCPOPT_SACK_PERM 4
#define TCPOPT_SACK 5
#define TCPOPT_TS 8

uint32_t tcp_ts_clock(const struct worker *w, uint32_t ts_offset)
{
	return (uint32_t)(w->now_ns / (1000000000ull / TCP_TS_HZ)) + ts_offset;
}

uint32_t tcp_ts_now(const struct tcp_conn *c)
{
	return tcp_ts_clock(c->st->w, c->ts_offset);
}

static uint32_t tcp_put_mss(uint8_t *o, uint16_t mss)
{
	o[0] = TCPOPT_MSS;
	o[1] = 4;
	o[2] = (uint8_t)(mss >> 8);
	o[3] = (uint8_t)mss;
	return 4;
}

/* SACK-permitted and timestamps share 12 bytes (as Linux lays them out). */
static uint32_t tcp_put_ts(uint8_t *o, bool sack_perm, uint32_t tsval, uint32_t tsecr)
{
	uint32_t val = rte_cpu_to_be_32(tsval), ecr = rte_cpu_to_be_32(tsecr);

	if (sack_perm) {
		o[0] = TCPOPT_SACK_PERM;
		o[1] = 2;
	} else {
		o[0] = TCPOPT_NOP;
		o[1] = TCPOPT_NOP;
	}
	o[2] = TCPOPT_TS;
	o[3] = 10;
	memcpy(o + 4, &val, 4);
	memcpy(o + 8, &ecr, 4);
	return 12;
}

static uint32_t tcp_put_sack_perm(uint8_t *o)
{
	o[0] = TCPOPT_NOP;
	o[1] = TCPOPT_NOP;
	o[2] = TCPOPT_SACK_PERM;
	o[3] = 2;
	return 4;
}

static uint32_t tcp_put_ws(uint8_t *o, uint8_t shift)
{
	o[0] = TCPOPT_NOP;
	o[1] = TCPOPT_WS;
	o[2] = 3;
	o[3] = shift;
	return 4;
}

/*
 * RFC 9293 §3.8.6.2.2: move the right edge only when it advances by at
 * least min(RCV.BUFF/2, Eff.snd.MSS); never move it left (RFC 9293
 * §3.8.6: shrinking the window is strongly discouraged). Returns the
 * window in bytes, a multiple of the scale unit.
 */
uint32_t tcp_rcv_window(struct tcp_conn *c)
{
	uint32_t space = tcp_rcv_space(c);
	uint32_t max = 65535u << c->rcv_wscale;
	uint32_t cur = SEQ_GT(c->rcv_adv, c->rcv_nxt) ? c->rcv_adv - c->rcv_nxt : 0;
	uint32_t thresh = c->rcvq.cap / 2 < c->mss ? c->rcvq.cap / 2 : c->mss;
	uint32_t wnd = space < max ? space : max;

	wnd &= ~((1u << c->rcv_wscale) - 1);
	if (wnd < cur + thresh && wnd != space)
		wnd = cur; /* too small a gain: keep the old edge */
	if (wnd < cur)
		wnd = cur;
	return wnd;
}

/* SACK blocks that fit beside the other options: 4, or 3 with timestamps (RFC 2018 §3). */
static unsigned tcp_sack_max_blocks(const struct tcp_conn *c)
{
	return c->ts_ok ? 3 : TCP_SACK_BLOCKS;
}

uint32_t tcp_eff_mss(const struct tcp_conn *c)
{
	unsigned nb;

	if (!c->sack_ok || c->nooo == 0)
		return c->mss;
	nb = c->nooo < tcp_sack_max_blocks(c) ? c->nooo : tcp_sack_max_blocks(c);
	/* The segment must still fit the path: the blocks come out of the payload. */
	return c->mss - (4 + 8 * nb);
}

/* Options of a segment we send; returns their length (a multiple of 4). */
static uint32_t tcp_build_options(struct tcp_conn *c, uint8_t flags, uint8_t *o)
{
	const struct tcp_config *cfg = &c->st->cfg;
	uint32_t n = 0;
	bool syn = (flags & TH_SYN) != 0;
	bool active = c->state == TCPS_SYN_SENT;
	bool ts = syn ? (active ? cfg->timestamps : c->ts_ok) : c->ts_ok;
	bool ws = syn && (active ? cfg->window_scale : c->ws_ok);
	bool sack_perm = syn && (active ? cfg->sack : c->sack_ok);

	if (syn)
		n += tcp_put_mss(o + n, tcp_local_mss(c->st, &c->raddr));
	if (ts) {
		n += tcp_put_ts(o + n, sack_perm, tcp_ts_now(c),
				(flags & TH_ACK) ? c->ts_recent : 0);
		sack_perm = false;
	}
	if (sack_perm)
		n += tcp_put_sack_perm(o + n);
	if (ws)
		n += tcp_put_ws(o + n, c->rcv_wscale);
	/* RFC 2018 §4: report what arrived out of order on every ACK. */
	if (!syn && (flags & TH_ACK) && c->sack_ok && c->nooo > 0) {
		struct tcp_range b[TCP_SACK_BLOCKS];
		unsigned nb = tcp_sack_blocks(c->ooo, c->nooo, c->sack_recent, c->nsack_recent,
					      tcp_sack_max_blocks(c), b);

		o[n++] = TCPOPT_NOP;
		o[n++] = TCPOPT_NOP;
		o[n++] = TCPOPT_SACK;
		o[n++] = (uint8_t)(2 + 8 * nb);
		for (unsigned k = 0; k < nb; k++) {
			uint32_t l = rte_cpu_to_be_32(b[k].start), r = rte_cpu_to_be_32(b[k].end);

			memcpy(o + n, &l, 4);
			memcpy(o + n + 4, &r, 4);
			n += 8;
		}
	}
	return n;
}

/* Bytes of network-layer header in front of the TCP header. */
static inline uint32_t tcp_l3_len(const struct pg_addr *a)
{
	return pg_addr_is_v6(a) ? sizeof(struct rte_ipv6_hdr) : sizeof(struct rte_ipv4_hdr);
}

/*
 * The IPv6 form of tcp_finish: fixed header, no extension headers, the
 * connection's flow label (RFC 6437), hop limit left to net_ipv6_output.
 */
static void tcp_finish6(struct worker *w, struct rte_mbuf *m, const struct pg_addr *laddr,
                        const struct pg_addr *raddr, uint32_t tcp_len, uint32_t flow_label)
{
	struct rte_ipv6_hdr *ip = rte_pktmbuf_mtod(m, struct rte_ipv6_hdr *);
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)(ip + 1);

	ip->vtc_flow = rte_cpu_to_be_32(6u << 28 | (flow_label & RTE_IPV6_HDR_FL_MASK));
	ip->payload_len = rte_cpu_to_be_16((uint16_t)tcp_len);
	ip->proto = IPPROTO_TCP;
	ip->hop_limits = 0;
	memcpy(ip->src_addr, laddr->v6, 16);
	memcpy(ip->dst_addr, raddr->v6, 16);
	th->cksum = 0;
	th->cksum = rte_ipv6_udptcp_cksum(ip, th);
	WCOUNT(w, tcp_tx_segs);
	net_ipv6_output(w, m, NET_PORT_ROUTE);
}

/*
 * Fill in the IP (v4 or v6) and TCP headers around a payload already in
 * place and hand the packet to the network layer. m's data starts at the
 * IP header.
 */
static void tcp_finish(struct worker *w, struct rte_mbuf *m, const struct pg_addr *laddr,
                       const struct pg_addr *raddr, uint32_t tcp_len, uint32_t flow_label)
{
	struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod(m, struct rte_ipv4_hdr *);
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)(ip + 1);

	if (pg_addr_is_v6(laddr)) {
		tcp_finish6(w, m, laddr, raddr, tcp_len, flow_label);
		return;
	}
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->type_of_service = 0;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*ip) + tcp_len));
	/* Atomic datagram (DF, never fragmented): the ID may be 0 (RFC 6864 §4.1). */
	ip->packet_id = 0;
	ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	ip->time_to_live = 0; /* net_ipv4_output puts the default */
	ip->next_proto_id = IPPROTO_TCP;
	ip->hdr_checksum = 0;
	ip->src_addr = laddr->v4;
	ip->dst_addr = raddr->v4;
	th->cksum = 0;
	th->cksum = rte_ipv4_udptcp_cksum(ip, th);
	WCOUNT(w, tcp_tx_segs);
	net_ipv4_output(w, m);
}

int tcp_send_segment(struct tcp_conn *c, uint32_t seq, uint32_t len, uint8_t flags)
{
	struct worker *w = c->st->w;
	uint8_t opts[TCP_MAX_OPT_LEN];
	uint32_t optlen, hlen, wnd, l3len = tcp_l3_len(&c->laddr);
	uint8_t *ip;
	struct rte_tcp_hdr *th;
	struct rte_mbuf *m;

	m = rte_pktmbuf_alloc(w->pool);
	if (m == NULL) {
		WCOUNT(w, tx_drop_nombuf);
		return PG_ERROR;
	}
	optlen = tcp_build_options(c, flags, opts);
	hlen = TCP_HDR_LEN + optlen;
	ip = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(l3len + hlen + len));
	if (ip == NULL) {
		WCOUNT(w, tx_drop_nombuf);
		rte_pktmbuf_free(m);
		return PG_ERROR;
	}
	th = (struct rte_tcp_hdr *)(ip + l3len);
	memcpy(th + 1, opts, optlen);
	if (len > 0)
		tcp_ring_read(&c->sndq, seq - c->snd_buf_seq, (uint8_t *)th + hlen, len);

	th->src_port = c->lport;
	th->dst_port = c->rport;
	th->sent_seq = rte_cpu_to_be_32(seq);
	th->recv_ack = (flags & TH_ACK) ? rte_cpu_to_be_32(c->rcv_nxt) : 0;
	th->data_off = (uint8_t)((hlen / 4) << 4);
	th->tcp_flags = flags;
	wnd = tcp_rcv_window(c);
	if (flags & TH_SYN) {
		/* RFC 7323 §2.2: the window in a SYN is never scaled. */
		if (wnd > 65535)
			wnd = 65535;
		th->rx_win = rte_cpu_to_be_16((uint16_t)wnd);
	} else {
		th->rx_win = rte_cpu_to_be_16((uint16_t)(wnd >> c->rcv_wscale));
	}
	th->tcp_urp = 0;
	if (SEQ_GT(c->rcv_nxt + wnd, c->rcv_adv))
		c->rcv_adv = c->rcv_nxt + wnd;
	if (flags & TH_ACK) {
		c->last_ack_sent = c->rcv_nxt;
		c->ack_now = false;
		c->unacked_bytes = 0;
		tcp_delack_stop(c);
	}
	if (SEQ_LT(seq, c->snd_max) && (len > 0 || (flags & (TH_SYN | TH_FIN))))
		WCOUNT(w, tcp_retransmits);
	tcp_finish(w, m, &c->laddr, &c->raddr, hlen + len, c->flow_label);
	return PG_OK;
}

int tcp_resend(struct tcp_conn *c, uint32_t seq, uint32_t len)
{
	uint32_t data_end = c->snd_buf_seq + c->sndq.len;
	uint8_t flags = TH_ACK;

	if (SEQ_GT(seq, data_end))
		return PG_DECLINED;
	if (SEQ_GT(seq + len, data_end))
		len = data_end - seq;
	if (c->fin_sent && seq + len == data_end)
		flags |= TH_FIN;
	if (len == 0 && !(flags & TH_FIN))
		return PG_DECLINED;
	return tcp_send_segment(c, seq, len, flags);
}

/*
 * RFC 6675 §5 step (C): while cwnd - pipe >= 1 SMSS, send NextSeg() -
 * a lost hole (rule 1), else new data (rule 2), else any hole below the
 * highest SACK (rule 3). Retransmissions advance HighRxt.
 */
static void tcp_sack_output(struct tcp_conn *c)
{
	struct worker *w = c->st->w;
	uint32_t mss = tcp_eff_mss(c);

	for (;;) {
		uint32_t pipe = tcp_sb_pipe(&c->sb, c->snd_una, c->snd_max, c->high_rxt, c->mss);
		uint32_t data_end = c->snd_buf_seq + c->sndq.len;
		uint32_t wnd_end = c->snd_una + c->snd_wnd;
		uint32_t seq, len;

		if (c->cc.cwnd < pipe + mss)
			break;
		if (tcp_sb_next_seg(&c->sb, c->snd_una, c->high_rxt, mss, true, &seq, &len)) {
			if (tcp_resend(c, seq, len) != PG_OK)
				break;
			c->high_rxt = seq + len;
			if (seq == c->snd_una) {
				c->una_rxt_valid = true;
				c->una_rxt_mark = c->snd_max;
			}
			WCOUNT(w, tcp_sack_rtx);
		} else if (SEQ_LT(c->snd_nxt, data_end) && SEQ_LT(c->snd_nxt, wnd_end)) {
			uint8_t flags = TH_ACK;

			len = data_end - c->snd_nxt;
			if (len > mss)
				len = mss;
			if (len > wnd_end - c->snd_nxt)
				len = wnd_end - c->snd_nxt;
			if (c->snd_nxt + len == data_end)
				flags |= TH_PSH;
			if (tcp_send_segment(c, c->snd_nxt, len, flags) != PG_OK)
				break;
			c->snd_nxt += len;
		} else if (c->fin_queued && !c->fin_sent && c->snd_nxt == data_end) {
			if (tcp_send_segment(c, c->snd_nxt, 0, TH_ACK | TH_FIN) != PG_OK)
				break;
			c->snd_nxt++;
			c->fin_sent = true;
		} else if (tcp_sb_next_seg(&c->sb, c->snd_una, c->high_rxt, mss, false, &seq,
					   &len)) {
			if (tcp_resend(c, seq, len) != PG_OK)
				break;
			c->high_rxt = seq + len;
			WCOUNT(w, tcp_sack_rtx);
		} else {
			break;
		}
		if (SEQ_GT(c->snd_nxt, c->snd_max))
			c->snd_max = c->snd_nxt;
		if (!timer_armed(&c->rtx_timer))
			tcp_rtx_arm(c);
	}
}

void tcp_send_ack(struct tcp_conn *c)
{
	tcp_send_segment(c, c->snd_nxt, 0, TH_ACK);
}

/* RFC 9293 §3.10.4 ABORT / §3.10.7.4: <SEQ=SND.NXT><CTL=RST>. */
void tcp_send_rst(struct tcp_conn *c)
{
	struct worker *w = c->st->w;

	tcp_respond_rst(w, &c->laddr, &c->raddr, c->lport, c->rport, c->snd_nxt, 0, TH_RST);
}

/* A segment with no connection behind it: RST, or a SYN cookie's SYN-ACK. */
static void tcp_respond(struct worker *w, const struct pg_addr *laddr, const struct pg_addr *raddr,
                        uint16_t lport, uint16_t rport, uint32_t seq, uint32_t ack, uint8_t flags,
                        uint16_t win, const uint8_t *opts, uint32_t optlen)
{
	uint32_t hlen = TCP_HDR_LEN + optlen, l3len = tcp_l3_len(laddr);
	uint8_t *ip;
	struct rte_tcp_hdr *th;
	struct rte_mbuf *m = rte_pktmbuf_alloc(w->pool);

	if (m == NULL) {
		WCOUNT(w, tx_drop_nombuf);
		return;
	}
	ip = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(l3len + hlen));
	if (ip == NULL) {
		rte_pktmbuf_free(m);
		return;
	}
	th = (struct rte_tcp_hdr *)(ip + l3len);
	memset(th, 0, sizeof(*th));
	if (optlen > 0)
		memcpy(th + 1, opts, optlen);
	th->src_port = lport;
	th->dst_port = rport;
	th->sent_seq = rte_cpu_to_be_32(seq);
	th->recv_ack = (flags & TH_ACK) ? rte_cpu_to_be_32(ack) : 0;
	th->data_off = (uint8_t)((hlen / 4) << 4);
	th->tcp_flags = flags;
	th->rx_win = rte_cpu_to_be_16(win);
	if (flags & TH_RST)
		WCOUNT(w, tcp_rst_tx);
	/* No connection: the flow label is 0, "not labelled" (RFC 6437 §3). */
	tcp_finish(w, m, laddr, raddr, hlen, 0);
}

void tcp_respond_rst(struct worker *w, const struct pg_addr *laddr, const struct pg_addr *raddr,
                     uint16_t lport, uint16_t rport, uint32_t seq, uint32_t ack, uint8_t flags)
{
	tcp_respond(w, laddr, raddr, lport, rport, seq, ack, flags, 0, NULL, 0);
}

void tcp_respond_synack(struct worker *w, const struct pg_addr *laddr, const struct pg_addr *raddr,
                        uint16_t lport, uint16_t rport, uint32_t iss, uint32_t ack, uint16_t mss,
                        bool ts, uint32_t tsval, uint32_t tsecr, int wscale, bool sack_perm)
{
	const struct tcp_config *cfg = &w->tcp->cfg;
	uint8_t o[TCP_MAX_OPT_LEN];
	uint32_t n = tcp_put_mss(o, mss);

	if (ts) {
		n += tcp_put_ts(o + n, sack_perm, tsval, tsecr);
		if (wscale >= 0)
			n += tcp_put_ws(o + n, (uint8_t)wscale);
	}
	/* RFC 7323 §2.2: the window of a SYN is not scaled. */
	tcp_respond(w, laddr, raddr, lport, rport, iss, ack, TH_SYN | TH_ACK,
		    (uint16_t)(cfg->rcvbuf < 65535 ? cfg->rcvbuf : 65535), o, n);
}

/* Sequence number of our FIN (valid once fin_queued: the queue no longer grows). */
static inline uint32_t tcp_fin_seq(const struct tcp_conn *c)
{
	return c->snd_buf_seq + c->sndq.len;
}

void tcp_output(struct tcp_conn *c)
{
	if (c->state == TCPS_CLOSED || c->state == TCPS_TIME_WAIT) {
		if (c->ack_now && c->state == TCPS_TIME_WAIT)
			tcp_send_ack(c);
		return;
	}
	if (c->state == TCPS_SYN_SENT || c->state == TCPS_SYN_RECEIVED) {
		if (c->snd_nxt == c->iss) {
			uint8_t flags = TH_SYN | (c->state == TCPS_SYN_RECEIVED ? TH_ACK : 0);

			if (c->snd_max != c->iss)
				c->rtt_active = false; /* Karn: a retransmitted SYN times nothing */
			else {
				c->rtt_active = true;
				c->rtt_seq = c->iss;
				c->rtt_start_ns = c->st->w->now_ns;
			}
			tcp_send_segment(c, c->iss, 0, flags);
			c->snd_nxt = c->iss + 1;
			if (SEQ_GT(c->snd_nxt, c->snd_max))
				c->snd_max = c->snd_nxt;
			if (!timer_armed(&c->rtx_timer))
				tcp_rtx_arm(c);
		}
		return;
	}

	if (c->in_recovery && c->sack_ok) {
		tcp_sack_output(c);
		goto tail;
	}
	for (;;) {
		uint32_t data_end = c->snd_buf_seq + c->sndq.len;
		uint32_t avail = SEQ_LT(c->snd_nxt, data_end) ? data_end - c->snd_nxt : 0;
		/* RFC 3042: limited transmit may go lt_allow beyond cwnd, never beyond rwnd. */
		uint32_t cwnd = c->cc.cwnd + c->lt_allow;
		uint32_t wnd = c->snd_wnd < cwnd ? c->snd_wnd : cwnd;
		uint32_t inflight = c->snd_nxt - c->snd_una;
		uint32_t usable = wnd > inflight ? wnd - inflight : 0;
		uint32_t len = avail < usable ? avail : usable;
		uint32_t mss = tcp_eff_mss(c);
		bool fin_now;
		uint8_t flags = TH_ACK;

		if (c->persist)
			break; /* the persist timer probes; nothing else goes out */
		if (len > mss)
			len = mss;
		/*
		 * Sender SWS avoidance (RFC 9293 §3.8.6.2.1), Nagle off: send a
		 * full segment, or everything queued, or at least half the
		 * largest window the peer offered; when nothing is in flight,
		 * send what fits rather than stall.
		 */
		if (len > 0 && len < mss && len < avail && len < c->max_snd_wnd / 2 && inflight > 0)
			len = 0;
		fin_now = c->fin_queued && SEQ_LEQ(c->snd_nxt, data_end) && c->snd_nxt + len == data_end &&
			  (len > 0 || avail == 0);
		if (len == 0 && !fin_now) {
			/* Data waiting and cwnd the binding limit: note it (RFC 7661). */
			if (avail > 0 && c->cc.cwnd <= c->snd_wnd)
				c->cwnd_limited_until = c->snd_max;
			break;
		}
		if (len > 0 && len == avail)
			flags |= TH_PSH;
		if (fin_now)
			flags |= TH_FIN;
		if (!c->rtt_active && c->snd_nxt == c->snd_max && len > 0) {
			c->rtt_active = true;
			c->rtt_seq = c->snd_nxt;
			c->rtt_start_ns = c->st->w->now_ns;
		}
		if (tcp_send_segment(c, c->snd_nxt, len, flags) != PG_OK)
			break;
		if (inflight + len > c->cc.cwnd && len > 0)
			WCOUNT(c->st->w, tcp_limited_transmit);
		c->snd_nxt += len + (fin_now ? 1 : 0);
		if (fin_now)
			c->fin_sent = true;
		if (SEQ_GT(c->snd_nxt, c->snd_max))
			c->snd_max = c->snd_nxt;
		if (!timer_armed(&c->rtx_timer))
			tcp_rtx_arm(c);
		if (fin_now)
			break;
	}
tail:
	/* Zero window with data waiting and nothing in flight: probe (RFC 9293 §3.8.6.1). */
	if (c->snd_wnd == 0 && c->snd_nxt == c->snd_una && SEQ_LT(c->snd_nxt, c->snd_buf_seq + c->sndq.len) &&
	    !c->persist) {
		tcp_rtx_stop(c);
		tcp_persist_arm(c);
	}
	if (c->ack_now)
		tcp_send_ack(c);
}
