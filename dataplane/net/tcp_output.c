/*
 * tcp_output.c - building and sending segments: what the send and
 * congestion windows allow (sender silly-window avoidance, no Nagle),
 * SYN options (MSS, window scale, timestamps), timestamps on every
 * segment once negotiated, the advertised window with receiver SWS
 * avoidance, pure ACKs and RSTs. The TCP checksum is computed in software.
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
#define TCPOPT_TS 8

uint32_t tcp_ts_now(const struct tcp_conn *c)
{
	return (uint32_t)(c->st->w->now_ns / (1000000000ull / TCP_TS_HZ)) + c->ts_offset;
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

/* Options of a segment we send; returns their length (a multiple of 4). */
static uint32_t tcp_build_options(struct tcp_conn *c, uint8_t flags, uint8_t *o)
{
	const struct tcp_config *cfg = &c->st->cfg;
	uint32_t n = 0;
	bool syn = (flags & TH_SYN) != 0;
	bool ts = syn ? (c->state == TCPS_SYN_SENT ? cfg->timestamps : c->ts_ok) : c->ts_ok;
	bool ws = syn && (c->state == TCPS_SYN_SENT ? cfg->window_scale : c->ws_ok);

	if (syn) {
		uint16_t mss = tcp_local_mss(c->st, c->raddr);

		o[n++] = TCPOPT_MSS;
		o[n++] = 4;
		o[n++] = (uint8_t)(mss >> 8);
		o[n++] = (uint8_t)mss;
	}
	if (ts) {
		uint32_t val = rte_cpu_to_be_32(tcp_ts_now(c));
		uint32_t ecr = rte_cpu_to_be_32((flags & TH_ACK) ? c->ts_recent : 0);

		o[n++] = TCPOPT_NOP;
		o[n++] = TCPOPT_NOP;
		o[n++] = TCPOPT_TS;
		o[n++] = 10;
		memcpy(o + n, &val, 4);
		memcpy(o + n + 4, &ecr, 4);
		n += 8;
	}
	if (ws) {
		o[n++] = TCPOPT_NOP;
		o[n++] = TCPOPT_WS;
		o[n++] = 3;
		o[n++] = c->rcv_wscale;
	}
	return n;
}

/*
 * Fill in IPv4 + TCP headers around a payload already in place and hand
 * the packet to IPv4 output. m's data starts at the IPv4 header.
 */
static void tcp_finish(struct worker *w, struct rte_mbuf *m, uint32_t laddr, uint32_t raddr,
		       uint32_t tcp_len)
{
	struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod(m, struct rte_ipv4_hdr *);
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)(ip + 1);

	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->type_of_service = 0;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*ip) + tcp_len));
	/* Atomic datagram (DF, never fragmented): the ID may be 0 (RFC 6864 §4.1). */
	ip->packet_id = 0;
	ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	ip->time_to_live = 0; /* net_ipv4_output puts the default */
	ip->next_proto_id = IPPROTO_TCP;
	ip->hdr_checksum = 0;
	ip->src_addr = laddr;
	ip->dst_addr = raddr;
	th->cksum = 0;
	th->cksum = rte_ipv4_udptcp_cksum(ip, th);
	WCOUNT(w, tcp_tx_segs);
	net_ipv4_output(w, m);
}

int tcp_send_segment(struct tcp_conn *c, uint32_t seq, uint32_t len, uint8_t flags)
{
	struct worker *w = c->st->w;
	uint8_t opts[TCP_MAX_OPT_LEN];
	uint32_t optlen, hlen, wnd;
	struct rte_ipv4_hdr *ip;
	struct rte_tcp_hdr *th;
	struct rte_mbuf *m;

	m = rte_pktmbuf_alloc(w->pool);
	if (m == NULL) {
		WCOUNT(w, tx_drop_nombuf);
		return PG_ERROR;
	}
	optlen = tcp_build_options(c, flags, opts);
	hlen = TCP_HDR_LEN + optlen;
	ip = (struct rte_ipv4_hdr *)rte_pktmbuf_append(m, (uint16_t)(sizeof(*ip) + hlen + len));
	if (ip == NULL) {
		WCOUNT(w, tx_drop_nombuf);
		rte_pktmbuf_free(m);
		return PG_ERROR;
	}
	th = (struct rte_tcp_hdr *)(ip + 1);
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
	tcp_finish(w, m, c->laddr, c->raddr, hlen + len);
	return PG_OK;
}

void tcp_send_ack(struct tcp_conn *c)
{
	tcp_send_segment(c, c->snd_nxt, 0, TH_ACK);
}

/* RFC 9293 §3.10.4 ABORT / §3.10.7.4: <SEQ=SND.NXT><CTL=RST>. */
void tcp_send_rst(struct tcp_conn *c)
{
	struct worker *w = c->st->w;

	tcp_respond_rst(w, c->laddr, c->raddr, c->lport, c->rport, c->snd_nxt, 0, TH_RST);
}

void tcp_respond_rst(struct worker *w, uint32_t laddr, uint32_t raddr, uint16_t lport,
		     uint16_t rport, uint32_t seq, uint32_t ack, uint8_t flags)
{
	struct rte_ipv4_hdr *ip;
	struct rte_tcp_hdr *th;
	struct rte_mbuf *m = rte_pktmbuf_alloc(w->pool);

	if (m == NULL) {
		WCOUNT(w, tx_drop_nombuf);
		return;
	}
	ip = (struct rte_ipv4_hdr *)rte_pktmbuf_append(m, sizeof(*ip) + TCP_HDR_LEN);
	if (ip == NULL) {
		rte_pktmbuf_free(m);
		return;
	}
	th = (struct rte_tcp_hdr *)(ip + 1);
	memset(th, 0, sizeof(*th));
	th->src_port = lport;
	th->dst_port = rport;
	th->sent_seq = rte_cpu_to_be_32(seq);
	th->recv_ack = (flags & TH_ACK) ? rte_cpu_to_be_32(ack) : 0;
	th->data_off = (TCP_HDR_LEN / 4) << 4;
	th->tcp_flags = flags;
	WCOUNT(w, tcp_rst_tx);
	tcp_finish(w, m, laddr, raddr, TCP_HDR_LEN);
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

	for (;;) {
		uint32_t data_end = c->snd_buf_seq + c->sndq.len;
		uint32_t avail = SEQ_LT(c->snd_nxt, data_end) ? data_end - c->snd_nxt : 0;
		uint32_t wnd = c->snd_wnd < c->cc.cwnd ? c->snd_wnd : c->cc.cwnd;
		uint32_t inflight = c->snd_nxt - c->snd_una;
		uint32_t usable = wnd > inflight ? wnd - inflight : 0;
		uint32_t len = avail < usable ? avail : usable;
		bool fin_now;
		uint8_t flags = TH_ACK;

		if (c->persist)
			break; /* the persist timer probes; nothing else goes out */
		if (len > c->mss)
			len = c->mss;
		/*
		 * Sender SWS avoidance (RFC 9293 §3.8.6.2.1), Nagle off: send a
		 * full segment, or everything queued, or at least half the
		 * largest window the peer offered; when nothing is in flight,
		 * send what fits rather than stall.
		 */
		if (len > 0 && len < c->mss && len < avail && len < c->max_snd_wnd / 2 &&
		    inflight > 0)
			len = 0;
		fin_now = c->fin_queued && SEQ_LEQ(c->snd_nxt, data_end) && c->snd_nxt + len == data_end &&
			  (len > 0 || avail == 0);
		if (len == 0 && !fin_now)
			break;
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
	/* Zero window with data waiting and nothing in flight: probe (RFC 9293 §3.8.6.1). */
	if (c->snd_wnd == 0 && c->snd_nxt == c->snd_una && SEQ_LT(c->snd_nxt, c->snd_buf_seq + c->sndq.len) &&
	    !c->persist) {
		tcp_rtx_stop(c);
		tcp_persist_arm(c);
	}
	if (c->ack_now)
		tcp_send_ack(c);
}
