/*
 * tcp.h - the TCP event API for the layers above (SMTP, TLS, diagnostics).
 * They never see segments: they listen or connect, get events on one
 * callback table, append to a send buffer and read the receive buffer in
 * place. Everything runs on the worker that owns the connection.
 *
 * One TCP serves both network layers: connections, listeners and tuples
 * carry a struct pg_addr (common/addr.h) of either family. The functions
 * taking a bare uint32_t are the IPv4 forms of the *_addr ones, kept for
 * callers that speak only IPv4.
 *
 * Lifetime of a handle: a connection reaches the upper layer through
 * `accepted` (passive) or tcp_connect() (active) and stays valid until the
 * upper layer calls tcp_close() or tcp_abort() - also after `closed` or
 * `error`, which only say that the connection is over. After tcp_close()
 * the stack finishes the connection on its own (FIN, TIME_WAIT) and no
 * event reaches the upper layer again. Callbacks may call any function
 * here, tcp_close() on their own connection included.
 */
#ifndef PG_TCP_H
#define PG_TCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"

struct worker;
struct tcp_conn;
struct tcp_stack;
struct tcp_isn_key;

enum tcp_error {
	TCP_ERR_NONE = 0,
	TCP_ERR_RESET,   /* the peer sent a valid RST */
	TCP_ERR_REFUSED, /* RST in answer to our SYN */
	TCP_ERR_TIMEOUT, /* retransmissions exhausted (RFC 9293 §3.8.3 R2) */
};

/* One callback table per upper-layer protocol; any entry may be NULL. */
struct tcp_ops {
	/*
	 * On a listener's table: a connection was established. Call
	 * tcp_set_handler() here to give it its own table and user pointer
	 * (it starts with the listener's).
	 */
	void (*accepted)(struct tcp_conn *c, void *owner);
	void (*connected)(struct tcp_conn *c, void *owner);
	/* In-order data or the peer's FIN (tcp_recv() then says PG_DONE). */
	void (*readable)(struct tcp_conn *c, void *owner);
	/* Send space opened after tcp_send() returned PG_AGAIN or took less. */
	void (*writable)(struct tcp_conn *c, void *owner);
	/* Both directions finished in order (FIN sent and acknowledged, FIN received). */
	void (*closed)(struct tcp_conn *c, void *owner);
	/* The connection died (reset, refused, timed out). */
	void (*error)(struct tcp_conn *c, enum tcp_error err, void *owner);
};

/* Congestion control algorithms (tcp_cc.h). */
enum tcp_cc_algo {
	TCP_CC_CUBIC = 0, /* RFC 9438, the default */
	TCP_CC_NEWRENO,   /* RFC 5681 / RFC 6582 */
};

/* Per-worker tunables; tcp_config_default() fills the defaults in brackets. */
struct tcp_config {
	uint32_t max_conns;     /* connections per worker, TIME_WAIT included [65536] */
	uint32_t syn_backlog;   /* half-open (SYN_RECEIVED) per listener [1024] */
	uint32_t sndbuf;        /* send buffer bytes [256 KiB] */
	uint32_t rcvbuf;        /* receive buffer bytes, sets the window scale [256 KiB] */
	uint64_t msl_ns;        /* maximum segment lifetime; TIME_WAIT is 2*MSL [30 s] */
	uint64_t rto_init_ns;   /* RFC 6298 §2.1 initial RTO [1 s] */
	uint64_t rto_min_ns;    /* [200 ms, as Linux; RFC 6298 §2.4 says 1 s] */
	uint64_t rto_max_ns;    /* [60 s, RFC 6298 §2.5] */
	uint64_t delack_ns;     /* delayed-ACK timeout [40 ms] */
	uint64_t fin_wait2_ns;  /* orphaned FIN_WAIT_2 lifetime [60 s] */
	uint32_t max_retries;   /* data retransmissions before abort (R2) [12] */
	uint32_t syn_retries;   /* SYN / SYN-ACK retransmissions [6] */
	uint32_t challenge_ack_per_s; /* RFC 5961 §7 rate limit per worker [1000] */
	/*
	 * Keepalive (RFC 9293 §3.8.4, RFC 1122 §4.2.3.6): after idle_ns
	 * without hearing from the peer, probe every intvl_ns; after
	 * `probes` unanswered probes the connection times out.
	 */
	uint64_t keepalive_idle_ns;  /* [0 = off] */
	uint64_t keepalive_intvl_ns; /* [75 s] */
	uint32_t keepalive_probes;   /* [9] */
	uint64_t max_buf_bytes; /* send + receive rings per worker [1 GiB] */
	uint32_t max_mbufs;     /* mbufs in use in the worker's pool [0 = the pool's size] */
	/*
	 * Percent of max_conns, max_buf_bytes or max_mbufs past which new
	 * passive opens get SYN cookies (no half-open state); at a cap they
	 * are refused with a RST, and tcp_connect says PG_AGAIN [90].
	 */
	uint32_t watermark_pct;
	uint16_t ephemeral_lo, ephemeral_hi; /* local ports for connect [32768..60999] */
	bool timestamps;        /* offer RFC 7323 timestamps [true] */
	bool window_scale;      /* offer RFC 7323 window scale [true] */
	bool sack;              /* offer and accept RFC 2018 SACK [true] */
	bool syncookies;        /* RFC 4987 cookies when a SYN backlog is full [true] */
	enum tcp_cc_algo cc;    /* congestion control [TCP_CC_CUBIC] */
};

void tcp_config_default(struct tcp_config *cfg);

/*
 * Per-worker TCP state (connection table, listeners, port allocator).
 * Needs w->timers. `key` is the process secret of RFC 6528 (tcp_isn.h),
 * made once at start-up with tcp_isn_key_init(); the stack keeps its own
 * copy (ISNs, SYN cookies, timestamp offsets, hash seed), so nothing
 * mutable is shared between workers. Attach the result to w->tcp;
 * tcp_stack_destroy() frees every connection without sending anything
 * (shutdown or test teardown).
 */
struct tcp_stack *tcp_stack_create(struct worker *w, const struct tcp_config *cfg,
				   const struct tcp_isn_key *key);
void tcp_stack_destroy(struct worker *w, struct tcp_stack *st);

/*
 * Take a new configuration (postern.conf through a snapshot), called by
 * the owning worker at a quiescent point. PG_OK, or PG_ERROR when the
 * config would be refused by tcp_stack_create (then nothing changes).
 * Nothing already established is disturbed:
 *  - admission: max_conns, max_buf_bytes, max_mbufs, watermark_pct,
 *    syn_backlog and syncookies decide the next SYN or tcp_connect();
 *    connections over a lowered cap stay, new ones wait for room;
 *  - per connection: sndbuf, rcvbuf (and the window scale it implies),
 *    cc, keepalive_* and max_retries are copied into each connection
 *    when it is created and kept for its life;
 *  - the timer constants nobody configures yet (msl, rto_*, delack,
 *    fin_wait2, syn_retries, challenge_ack_per_s) apply at their next use.
 * Fixed at creation (see tcp_config_restart_only): the connection table's
 * size and the window scale SYN cookies advertise.
 */
int tcp_stack_reconfigure(struct tcp_stack *st, const struct tcp_config *cfg);
const struct tcp_config *tcp_stack_config(const struct tcp_stack *st);
/*
 * Whether `now` asks for something a stack created with `started` can
 * only give after a restart (then 1, with the reason in why; else 0): a
 * max_conns beyond the table made at start (it still works, with longer
 * hash chains), or an rcvbuf needing a larger window scale than the one
 * SYN cookies advertise (cookie connections get smaller windows).
 */
int tcp_config_restart_only(const struct tcp_config *started, const struct tcp_config *now,
			    char *why, size_t whylen);
/* Connections currently allocated on this worker (all states). */
uint32_t tcp_conn_count(const struct worker *w);
/* Bytes of send and receive buffers currently allocated on this worker. */
uint64_t tcp_buf_bytes(const struct worker *w);

/*
 * Listen on `port` (host order) on local address `laddr`: an address of
 * the worker, or its family's unspecified address (0.0.0.0, ::) for every
 * address of that family. PG_OK, PG_DECLINED (already listening),
 * PG_ERROR (table full, or no family). A connection goes to the listener
 * on its exact local address, else to its family's "any" listener.
 */
int tcp_listen_addr(struct worker *w, const struct pg_addr *laddr, uint16_t port,
                    const struct tcp_ops *ops, void *user);
int tcp_unlisten_addr(struct worker *w, const struct pg_addr *laddr, uint16_t port);
/* IPv4: laddr network order, 0 = every IPv4 address of the worker. */
int tcp_listen(struct worker *w, uint32_t laddr, uint16_t port, const struct tcp_ops *ops,
	       void *user);
int tcp_unlisten(struct worker *w, uint32_t laddr, uint16_t port);

/*
 * Active open to dst:dport (dport host order). The local address is the
 * one of the port the route leaves from (for IPv6 its global address,
 * once DAD has passed); the local port is chosen so that replies hash to
 * this worker (DESIGN.md, "Connection ownership"). PG_OK with *out set (a
 * `connected` or `error` event follows), PG_DECLINED (no route, or no
 * usable source address: IPv6 DAD still running or failed; link-local
 * destinations are never routed), PG_AGAIN (no free local port, or a cap
 * on connections, buffer memory or mbufs reached), PG_ERROR (no memory,
 * no family).
 */
int tcp_connect_addr(struct worker *w, const struct pg_addr *dst, uint16_t dport,
                     const struct tcp_ops *ops, void *user, struct tcp_conn **out);
/* IPv4: dst network order. */
int tcp_connect(struct worker *w, uint32_t dst, uint16_t dport, const struct tcp_ops *ops,
		void *user, struct tcp_conn **out);

void tcp_set_handler(struct tcp_conn *c, const struct tcp_ops *ops, void *user);

/*
 * Append up to len bytes to the send buffer. Returns the number of bytes
 * taken (> 0), PG_AGAIN when the buffer is full (a `writable` event
 * follows), or PG_ERROR when the connection cannot send any more (after
 * tcp_shutdown, or once closed).
 */
int tcp_send(struct tcp_conn *c, const void *buf, uint32_t len);
uint32_t tcp_send_space(const struct tcp_conn *c);

/*
 * Receive without copying: up to two spans of in-order data in the
 * receive buffer (the second is the wrap-around part, possibly empty).
 * Returns the total bytes readable. The spans stay valid until the next
 * tcp_recv_consume() or the end of the callback.
 */
uint32_t tcp_recv_peek(const struct tcp_conn *c, const uint8_t **p1, uint32_t *l1,
		       const uint8_t **p2, uint32_t *l2);
/* Release n bytes (n <= readable) from the front; may open the window. */
void tcp_recv_consume(struct tcp_conn *c, uint32_t n);
/* Release everything readable (input to ignore); returns how much it was. */
uint32_t tcp_recv_discard(struct tcp_conn *c);
/*
 * Copying convenience: bytes copied (> 0), PG_AGAIN (nothing yet), PG_DONE
 * (the peer closed and everything was read), PG_ERROR (reset/closed).
 */
int tcp_recv(struct tcp_conn *c, void *buf, uint32_t len);

/* Send FIN once the queued data is out (half close). PG_OK or PG_ERROR. */
int tcp_shutdown(struct tcp_conn *c);
/*
 * Release the handle. A live connection is finished gracefully (FIN after
 * the queued data); if received data was never read it is reset instead
 * (RFC 9293 §3.6.1 / RFC 2525 §2.17), so the peer knows it was lost.
 */
void tcp_close(struct tcp_conn *c);
/* Release the handle and reset the connection (RST if synchronized). */
void tcp_abort(struct tcp_conn *c);
/* tcp_abort (reset) or tcp_close, then *c = NULL; nothing when *c is NULL. */
void tcp_release(struct tcp_conn **c, bool reset);

/*
 * ICMP "fragmentation needed" (RFC 1191) for a datagram we sent: `quote`
 * is the quoted IPv4 header plus at least 8 bytes of TCP header, `mtu`
 * the next-hop MTU from the ICMP header. The connection's MSS is lowered
 * only if the quote names a live connection and a sequence number in
 * SND.UNA..SND.NXT (RFC 5927 §4.1), so blind forgeries do nothing.
 */
void tcp_pmtu_update(struct worker *w, const void *quote, uint32_t len, uint16_t mtu);
/*
 * ICMPv6 Packet Too Big (RFC 8201) for a segment we sent: `quote` starts
 * at its IPv6 header (we send no extension headers) and holds at least 8
 * bytes of TCP header; `mtu` is the message's 32-bit MTU. The same checks
 * as above; the MSS never goes below what the IPv6 minimum MTU of 1280
 * allows (RFC 8201 §4).
 */
void tcp_pmtu_update6(struct worker *w, const void *quote, uint32_t len, uint32_t mtu);

/* Introspection for diagnostics and tests. */
const char *tcp_state_name_of(const struct tcp_conn *c);
/* The 4-tuple, ports host order. */
void tcp_conn_tuple_addr(const struct tcp_conn *c, struct pg_addr *laddr, uint16_t *lport,
                         struct pg_addr *raddr, uint16_t *rport);
/* IPv4 form: addresses network order, 0 for an IPv6 connection. */
void tcp_conn_tuple(const struct tcp_conn *c, uint32_t *laddr, uint16_t *lport, uint32_t *raddr,
		    uint16_t *rport); /* addresses network order, ports host order */

/* What tcp_foreach_conn shows of a connection (a copy: nothing to hold). */
struct tcp_conn_info {
	uint32_t laddr, raddr;        /* IPv4, network order; 0 for an IPv6 connection */
	struct pg_addr local, remote; /* either family */
	uint16_t lport, rport;  /* host order */
	const char *state;      /* "ESTABLISHED", static */
	bool passive;           /* accepted from a listener on lport */
	uint32_t bytes_in;      /* in-order bytes received, modulo 2^32 (sequence space) */
	uint32_t bytes_out;     /* bytes the peer acknowledged, modulo 2^32 */
	uint32_t sndq, rcvq;    /* bytes in the send / receive buffer */
	uint64_t created_ns;    /* worker clock when the connection was created */
};

/*
 * Call fn for every connection in w's table (every state, TIME_WAIT
 * included), in table order, until fn returns false. Read-only: fn must
 * not open, close or send. Returns the number of calls made.
 */
uint32_t tcp_foreach_conn(const struct worker *w,
                          bool (*fn)(const struct tcp_conn_info *ci, void *owner), void *owner);

#endif
