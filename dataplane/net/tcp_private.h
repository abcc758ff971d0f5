/*
 * tcp_private.h - what the tcp_*.c files share: the connection control
 * block, the per-worker stack, sequence arithmetic, the state enum with
 * its setter, and the functions each file offers the others. The upper
 * layers use tcp.h only.
 *
 * State ordering (as in BSD): every state from ESTABLISHED on is
 * synchronized; states after CLOSE_WAIT have sent (or queued) our FIN.
 */
#ifndef PG_TCP_PRIVATE_H
#define PG_TCP_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_mbuf.h>

#include "addr.h"
#include "core/timer.h"
#include "core/worker.h"
#include "tcp.h"
#include "tcp_cc.h"
#include "tcp_isn.h"
#include "tcp_sack.h"
#include "tcp_seq.h"


/* TCP header flags (RFC 9293 §3.1). */
#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10
#define TH_URG 0x20

#define TCP_HDR_LEN 20
#define TCP_MAX_OPT_LEN 40
#define TCP_DEFAULT_MSS 536     /* RFC 9293 §3.7.1 when no MSS option arrives */
#define TCP_MAX_WSCALE 14       /* RFC 7323 §2.3 */
#define TCP_OOO_MAX 16          /* out-of-order ranges kept per connection */
#define TCP_MAX_LISTENERS 64
#define TCP_PAWS_IDLE_NS (24ull * 86400 * 1000000000ull) /* RFC 7323 §5.5: 24 days */
#define TCP_TS_HZ 1000          /* our timestamp clock: 1 ms (RFC 7323 §5.4) */

#define TCP_STATES(X)                                                                              \
	X(CLOSED)                                                                                  \
	X(SYN_SENT)                                                                                \
	X(SYN_RECEIVED)                                                                            \
	X(ESTABLISHED)                                                                             \
	X(CLOSE_WAIT)                                                                              \
	X(FIN_WAIT_1)                                                                              \
	X(CLOSING)                                                                                 \
	X(LAST_ACK)                                                                                \
	X(FIN_WAIT_2)                                                                              \
	X(TIME_WAIT)

enum tcp_state {
#define TCP_STATE_ENUM(s) TCPS_##s,
	TCP_STATES(TCP_STATE_ENUM)
#undef TCP_STATE_ENUM
	TCPS__COUNT
};

extern const char *const tcp_state_names[TCPS__COUNT];

static inline bool tcp_state_synchronized(enum tcp_state s)
{
	return s >= TCPS_ESTABLISHED;
}

/* Options parsed from one segment. */
struct tcp_opts {
	bool mss_ok, ws_ok, ts_ok, sack_perm;
	uint16_t mss;
	uint8_t ws;
	uint8_t nsack; /* RFC 2018 blocks, as received (host order) */
	uint32_t tsval, tsecr;
	struct tcp_range sack[TCP_SACK_BLOCKS];
};

/* A byte ring; capacity is fixed at allocation. */
struct tcp_ring {
	uint8_t *buf;
	uint32_t cap;
	uint32_t head; /* offset of the first byte */
	uint32_t len;  /* bytes held from head */
};


struct tcp_listener {
	struct pg_addr laddr; /* its family's unspecified address = any of that family */
	uint16_t port;        /* host order; 0 = free slot */
	uint32_t nsynrcvd;
	uint64_t cookie_ns; /* last SYN cookie sent (0 = never): ACKs are checked until it expires */
	const struct tcp_ops *ops;
	void *user;
};

struct tcp_conn {
	struct tcp_conn *hnext; /* hash chain */
	struct tcp_stack *st;
	enum tcp_state state;
	bool hashed;
	bool user_owned;   /* the upper layer holds the handle */
	bool passive;      /* created from a listener */
	bool accepted;     /* `accepted` delivered */
	bool free_pending; /* freed once `busy` drops to 0 */
	bool end_notified; /* `closed` or `error` delivered */
	uint8_t busy;      /* nesting of input/timer/API work on this connection */

	/* 4-tuple: addresses of one family, ports network order (as on the wire) */
	struct pg_addr laddr, raddr;
	uint16_t lport, rport;
	uint32_t flow_label;           /* IPv6 (RFC 6437 §3): one per connection, from the tuple */
	struct tcp_listener *listener; /* while SYN_RECEIVED, for the backlog count */
	uint64_t created_ns;           /* w->now_ns at tcp_conn_new (its age in sessions) */

	const struct tcp_ops *ops;
	void *user;
	enum tcp_error err;

	/* send sequence space (RFC 9293 §3.3.1) */
	uint32_t iss, snd_una, snd_nxt, snd_max;
	uint32_t snd_wnd, max_snd_wnd, snd_wl1, snd_wl2;
	uint32_t snd_buf_seq; /* sequence number of the first byte of sndq */
	uint32_t recover;     /* RFC 6582 */
	uint16_t mss;         /* payload bytes per full segment we send */
	uint16_t peer_mss;
	uint8_t snd_wscale, rcv_wscale;
	bool ws_ok, ts_ok;
	bool sack_ok;        /* RFC 2018: both sides sent SACK-permitted */
	bool fin_queued;     /* the user shut down the write side */
	bool fin_sent;
	bool in_recovery;
	bool want_writable;  /* tcp_send ran short: raise `writable` later */
	bool persist;        /* zero window: probing instead of retransmitting */
	bool rtt_active;     /* timing one segment (RFC 6298 Karn) */
	uint32_t cwnd_limited_until; /* cwnd held data back when SND.MAX was here (RFC 7661) */
	uint32_t rtt_seq;
	uint64_t rtt_start_ns;
	uint32_t rtt_samples; /* RTT samples taken (timestamps or Karn timing) */
	uint32_t dupacks;
	uint32_t rtx_count;  /* consecutive timeouts / probes without progress */
	uint32_t lt_allow;   /* RFC 3042 limited transmit: bytes allowed beyond cwnd */
	uint32_t high_rxt;   /* RFC 6675 HighRxt during SACK recovery */
	uint32_t una_rxt_mark; /* SND.MAX when the segment at SND.UNA was last resent */
	bool una_rxt_valid;
	struct tcp_scoreboard sb; /* what the peer SACKed above SND.UNA */

	/* receive sequence space */
	uint32_t irs, rcv_nxt, rcv_adv; /* rcv_adv: right edge advertised */
	uint32_t last_ack_sent;
	bool rcv_fin;        /* peer's FIN received in order */
	bool rcv_fin_ooo;    /* FIN seen beyond a hole */
	uint32_t rcv_fin_seq;
	bool ack_now;
	uint32_t unacked_bytes; /* received since our last ACK (delayed ACK) */
	uint64_t oow_ack_ns;    /* last ACK sent for an out-of-window segment */
	uint64_t tw_start_ns;
	uint8_t nooo;
	uint8_t nsack_recent;
	struct tcp_range ooo[TCP_OOO_MAX]; /* sorted, disjoint, all > rcv_nxt */
	uint32_t sack_recent[TCP_SACK_BLOCKS]; /* latest out-of-order arrivals, newest first */

	/* RFC 7323 timestamps */
	uint32_t ts_recent;
	uint64_t ts_recent_ns;
	uint32_t ts_offset;

	/* RFC 6298 */
	uint64_t srtt_ns, rttvar_ns, rto_ns;

	struct tcp_cc cc;
	struct tcp_ring sndq, rcvq;

	struct timer rtx_timer;    /* retransmission, SYN retry, persist */
	struct timer delack_timer;
	struct timer wait_timer;   /* TIME_WAIT 2MSL, orphaned FIN_WAIT_2 */
	struct timer ka_timer;     /* keepalive, when configured */
	uint64_t last_rx_ns;       /* last acceptable segment from the peer */
	uint32_t ka_probes;        /* keepalive probes unanswered */

	/*
	 * Settings taken from the stack's config when the connection is
	 * created and kept for its life, so tcp_stack_reconfigure() never
	 * changes the rules under an established connection.
	 */
	const struct tcp_cc_ops *cc_ops;
	uint64_t ka_idle_ns;  /* keepalive_idle_ns, 0 = off */
	uint64_t ka_intvl_ns; /* keepalive_intvl_ns */
	uint32_t ka_max_probes; /* keepalive_probes */
	uint32_t max_retries; /* R2 of RFC 9293 §3.8.3 */
};

struct tcp_stack {
	struct worker *w;
	struct tcp_config cfg;
	const struct tcp_cc_ops *cc_ops; /* for connections created from now on */
	struct tcp_conn **buckets;
	uint32_t mask;
	uint8_t cookie_wscale; /* advertised by SYN cookies: fixed at creation (tcp.h) */
	uint32_t nconns;
	uint64_t buf_bytes;  /* send and receive rings allocated (issue 3: a capped resource) */
	uint32_t max_mbufs;  /* cfg.max_mbufs, or the pool's size */
	uint16_t port_cursor;
	struct tcp_isn_key isn_key; /* this worker's copy of the RFC 6528 secret */
	uint32_t hash_seed;         /* connection table, derived from the key */
	uint64_t challenge_sec;  /* RFC 5961 §7 accounting window */
	uint32_t challenge_count;
	struct tcp_listener listeners[TCP_MAX_LISTENERS];
};

/* tcp_conn.c */
void tcp_set_state(struct tcp_conn *c, enum tcp_state s);
/*
 * Resource pressure on this worker (DESIGN.md, backpressure): NONE, SOFT
 * (past the watermark of a cap: new passive opens get SYN cookies, no
 * half-open state) or HARD (one more connection would break a cap: refuse).
 */
enum tcp_pressure { TCP_PRESSURE_NONE, TCP_PRESSURE_SOFT, TCP_PRESSURE_HARD };
enum tcp_pressure tcp_stack_pressure(struct tcp_stack *st);
struct tcp_conn *tcp_lookup(struct tcp_stack *st, const struct pg_addr *laddr, uint16_t lport,
                            const struct pg_addr *raddr, uint16_t rport);
/* The listener for a local address and port (network order): exact address, else "any". */
struct tcp_listener *tcp_listener_find_addr(struct tcp_stack *st, const struct pg_addr *laddr,
                                            uint16_t lport);
/* The same for an IPv4 address (network order, 0 = the "any" listener only). */
struct tcp_listener *tcp_listener_find(struct tcp_stack *st, uint32_t laddr, uint16_t lport);
struct tcp_conn *tcp_conn_new(struct tcp_stack *st, const struct pg_addr *laddr, uint16_t lport,
                              const struct pg_addr *raddr, uint16_t rport);
void tcp_conn_hold(struct tcp_conn *c);
void tcp_conn_release(struct tcp_conn *c);
/* The connection is over (CLOSED): notify the user or free it. */
void tcp_conn_closed(struct tcp_conn *c, enum tcp_error err);
void tcp_conn_free(struct tcp_conn *c);
/* RFC 7323 §5.4 timestamp offset: a keyed function of the 4-tuple (ours first). */
uint32_t tcp_ts_offset(const struct tcp_stack *st, const struct pg_addr *laddr,
                       const struct pg_addr *raddr, uint16_t lport, uint16_t rport);
/*
 * The window scale SYN cookies advertise and recompute on the ACK: fixed
 * for the stack's life, since a cookie cannot carry it across a
 * reconfiguration. Other connections take theirs from cfg.rcvbuf.
 */
uint8_t tcp_stack_rcv_wscale(const struct tcp_stack *st);
/* Effective MSS and window scale toward raddr from the routing table. */
uint16_t tcp_local_mss(struct tcp_stack *st, const struct pg_addr *raddr);
/* Bytes of IP and TCP headers without options: 40 (IPv4) or 60 (IPv6). */
static inline uint16_t tcp_ip_overhead(const struct pg_addr *a)
{
	return pg_addr_is_v6(a) ? 60 : 40;
}
uint8_t tcp_rcv_wscale_for(uint32_t rcvbuf);
void tcp_conn_established(struct tcp_conn *c);
void tcp_enter_time_wait(struct tcp_conn *c);
/* Event helpers: deliver if the user holds the handle. */
void tcp_notify_readable(struct tcp_conn *c);
void tcp_notify_writable(struct tcp_conn *c);

/* tcp_buf.c */
/* Ring buffers, accounted in st->buf_bytes. */
int tcp_ring_alloc(struct tcp_stack *st, struct tcp_ring *r, uint32_t cap);
void tcp_ring_free(struct tcp_stack *st, struct tcp_ring *r);
/* Copy n bytes from the ring starting `off` bytes after head. */
void tcp_ring_read(const struct tcp_ring *r, uint32_t off, void *dst, uint32_t n);
/* Write n bytes at `off` bytes after head (off + n <= cap); len unchanged. */
void tcp_ring_write_at(struct tcp_ring *r, uint32_t off, const void *src, uint32_t n);
/* Store bytes [off, off+n) of mbuf m at ring offset roff. */
void tcp_ring_write_mbuf(struct tcp_ring *r, uint32_t roff, const struct rte_mbuf *m, uint32_t off,
			 uint32_t n);
void tcp_ring_drop(struct tcp_ring *r, uint32_t n);
uint32_t tcp_rcv_space(const struct tcp_conn *c);

/* tcp_input.c */
/* What the network layer tells TCP about a segment. */
struct tcp_l3 {
	struct pg_addr src, dst; /* one family */
	uint32_t l4off;          /* offset of the TCP header in the mbuf */
};
/*
 * m holds the datagram (IPv4 or IPv6 header first), validated and trimmed
 * by the network layer; the segment starts at l3->l4off and runs to the
 * end. Consumed.
 */
void tcp_input(struct worker *w, struct rte_mbuf *m, const struct tcp_l3 *l3);
void tcp_parse_options(const uint8_t *p, uint32_t len, bool syn, struct tcp_opts *o);
bool tcp_challenge_ack_allowed(struct tcp_stack *st);

/* tcp_output.c */
/* Send what the windows allow, or a pure ACK if one is owed. */
void tcp_output(struct tcp_conn *c);
/* Payload bytes per segment now: the MSS less the SACK blocks we would add. */
uint32_t tcp_eff_mss(const struct tcp_conn *c);
/* Segment [seq, seq+len) again, with FIN when it ends at a FIN we sent. */
int tcp_resend(struct tcp_conn *c, uint32_t seq, uint32_t len);
/* Send one segment [seq, seq+len) of the send queue with the given flags. */
int tcp_send_segment(struct tcp_conn *c, uint32_t seq, uint32_t len, uint8_t flags);
void tcp_send_ack(struct tcp_conn *c);
void tcp_send_rst(struct tcp_conn *c);
/* A RST for a segment with no connection (RFC 9293 §3.10.7.1). */
void tcp_respond_rst(struct worker *w, const struct pg_addr *laddr, const struct pg_addr *raddr,
                     uint16_t lport, uint16_t rport, uint32_t seq, uint32_t ack, uint8_t flags);
uint32_t tcp_ts_now(const struct tcp_conn *c);
/* Our timestamp clock for a tuple's offset (before a connection exists). */
uint32_t tcp_ts_clock(const struct worker *w, uint32_t ts_offset);
/*
 * A SYN-ACK with no connection behind it (SYN cookies): SEQ = iss,
 * ACK = ack, MSS always; timestamps (TSval = tsval, TSecr = tsecr),
 * window scale and SACK-permitted only when `ts` (the SYN had timestamps).
 */
void tcp_respond_synack(struct worker *w, const struct pg_addr *laddr, const struct pg_addr *raddr,
                        uint16_t lport, uint16_t rport, uint32_t iss, uint32_t ack, uint16_t mss,
                        bool ts, uint32_t tsval, uint32_t tsecr, int wscale /* -1 = none */,
                        bool sack_perm);
/* The window to advertise (unscaled bytes), with receiver SWS avoidance. */
uint32_t tcp_rcv_window(struct tcp_conn *c);

/* tcp_timer.c */
void tcp_timers_init(struct tcp_conn *c);
void tcp_timers_cancel(struct tcp_conn *c);
void tcp_rtx_arm(struct tcp_conn *c);
void tcp_rtx_stop(struct tcp_conn *c);
void tcp_persist_arm(struct tcp_conn *c);
void tcp_delack_arm(struct tcp_conn *c);
void tcp_delack_stop(struct tcp_conn *c);
void tcp_wait_arm(struct tcp_conn *c, uint64_t after_ns);
/* Keepalive: (re)arm from last_rx_ns if configured (no-op otherwise). */
void tcp_keepalive_arm(struct tcp_conn *c);
/* RFC 6298 §2.2-2.3: fold one RTT sample into SRTT/RTTVAR/RTO. */
void tcp_rtt_sample(struct tcp_conn *c, uint64_t rtt_ns);

#endif
