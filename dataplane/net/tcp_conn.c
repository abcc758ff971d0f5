/*
 * tcp_conn.c - connections as objects: the per-worker stack, the table
 * keyed by 4-tuple (IPv4 or IPv6), listeners, the local port allocator, the state setter,
 * the lifetime rules of tcp.h (hold/release, user handle, deferred free),
 * the resource caps and their watermark (backpressure), keyed ISNs and
 * timestamp offsets (RFC 6528), and the open/close half of the event API.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include <rte_byteorder.h>
#include <rte_jhash.h>
#include <rte_log.h>

#include "net.h"
#include "result.h"
#include "tcp_cubic.h"
#include "tcp_private.h"

const char *const tcp_state_names[TCPS__COUNT] = {
#define TCP_STATE_NAME(s) #s,
    TCP_STATES(TCP_STATE_NAME)
#undef TCP_STATE_NAME
};

void tcp_config_default(struct tcp_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->max_conns = 65536;
	cfg->syn_backlog = 1024;
	cfg->sndbuf = 256 * 1024;
	cfg->rcvbuf = 256 * 1024;
	cfg->msl_ns = 30ull * 1000000000ull;
	cfg->rto_init_ns = 1000000000ull;
	cfg->rto_min_ns = 200000000ull;
	cfg->rto_max_ns = 60ull * 1000000000ull;
	cfg->delack_ns = 40000000ull;
	cfg->fin_wait2_ns = 60ull * 1000000000ull;
	cfg->max_retries = 12;
	cfg->syn_retries = 6;
	cfg->challenge_ack_per_s = 1000;
	cfg->keepalive_idle_ns = 0;
	cfg->keepalive_intvl_ns = 75ull * 1000000000ull;
	cfg->keepalive_probes = 9;
	cfg->max_buf_bytes = 1ull << 30;
	cfg->max_mbufs = 0;
	cfg->watermark_pct = 90;
	cfg->ephemeral_lo = 32768;
	cfg->ephemeral_hi = 60999;
	cfg->timestamps = true;
	cfg->window_scale = true;
	cfg->sack = true;
	cfg->syncookies = true;
	cfg->cc = TCP_CC_CUBIC;
}

/* The one place a state changes, so every transition can be traced. */
void tcp_set_state(struct tcp_conn *c, enum tcp_state s)
{
	RTE_LOG_DP(DEBUG, USER1, "tcp %u.%u: %s -> %s\n", rte_be_to_cpu_16(c->lport),
		   rte_be_to_cpu_16(c->rport), tcp_state_names[c->state], tcp_state_names[s]);
	c->state = s;
}

const char *tcp_state_name_of(const struct tcp_conn *c)
{
	return tcp_state_names[c->state];
}

void tcp_conn_tuple_addr(const struct tcp_conn *c, struct pg_addr *laddr, uint16_t *lport,
                         struct pg_addr *raddr, uint16_t *rport)
{
	*laddr = c->laddr;
	*raddr = c->raddr;
	*lport = rte_be_to_cpu_16(c->lport);
	*rport = rte_be_to_cpu_16(c->rport);
}

void tcp_conn_tuple(const struct tcp_conn *c, uint32_t *laddr, uint16_t *lport, uint32_t *raddr,
                    uint16_t *rport)
{
	bool v4 = pg_addr_is_v4(&c->laddr);

	*laddr = v4 ? c->laddr.v4 : 0;
	*raddr = v4 ? c->raddr.v4 : 0;
	*lport = rte_be_to_cpu_16(c->lport);
	*rport = rte_be_to_cpu_16(c->rport);
}

/* A 32-bit value derived from the key for a purpose named by `tag` (4 bytes). */
static uint32_t tcp_key_derive(const struct tcp_isn_key *k, const char tag[4])
{
	return (uint32_t)tcp_siphash24(k, tag, 4);
}

static bool tcp_config_ok(const struct tcp_config *cfg)
{
	return cfg->max_conns != 0 && cfg->sndbuf != 0 && cfg->rcvbuf >= 1024 &&
	       cfg->ephemeral_lo != 0 && cfg->ephemeral_hi >= cfg->ephemeral_lo &&
	       (cfg->cc == TCP_CC_CUBIC || cfg->cc == TCP_CC_NEWRENO);
}

/* Buckets of the connection table for a max_conns (fixed at creation). */
static uint32_t tcp_table_size(uint32_t max_conns)
{
	return rte_align32pow2(max_conns > (1u << 22) ? (1u << 22) : max_conns);
}

/* Take a checked config: what create and reconfigure share. */
static void tcp_stack_set_config(struct tcp_stack *st, const struct tcp_config *cfg)
{
	st->cfg = *cfg;
	st->cc_ops = cfg->cc == TCP_CC_NEWRENO ? &tcp_cc_newreno : &tcp_cc_cubic;
	st->max_mbufs = cfg->max_mbufs != 0 ? cfg->max_mbufs : st->w->pool->size;
	if (st->cfg.watermark_pct == 0 || st->cfg.watermark_pct > 100)
		st->cfg.watermark_pct = 100;
	if (st->port_cursor < cfg->ephemeral_lo || st->port_cursor > cfg->ephemeral_hi)
		st->port_cursor = cfg->ephemeral_lo;
}

struct tcp_stack *tcp_stack_create(struct worker *w, const struct tcp_config *cfg,
				   const struct tcp_isn_key *key)
{
	struct tcp_stack *st;
	uint32_t nb;

	if (w->timers == NULL || key == NULL || !tcp_config_ok(cfg))
		return NULL;
	st = worker_alloc(w, sizeof(*st));
	if (st == NULL)
		return NULL;
	st->w = w;
	tcp_stack_set_config(st, cfg);
	st->cookie_wscale = cfg->window_scale ? tcp_rcv_wscale_for(cfg->rcvbuf) : 0;
	st->isn_key = *key;
	st->hash_seed = tcp_key_derive(key, "thsh");
	nb = tcp_table_size(cfg->max_conns);
	st->buckets = worker_alloc(w, (size_t)nb * sizeof(*st->buckets));
	if (st->buckets == NULL) {
		worker_free(w, st);
		return NULL;
	}
	st->mask = nb - 1;
	/*
	 * RFC 6056: a random first ephemeral port (from the process secret),
	 * then sequential. Starting at ephemeral_lo on every start reused the
	 * 4-tuples the previous process left in the peers' TIME_WAIT; a SYN
	 * whose timestamp fails their PAWS check then waits a 1 s
	 * retransmission (tools/bench/smtp.sh saw it as 1 % of messages).
	 */
	st->port_cursor = (uint16_t)(cfg->ephemeral_lo +
	                             tcp_key_derive(key, "port") %
	                                 ((uint32_t)cfg->ephemeral_hi - cfg->ephemeral_lo + 1));
	return st;
}

/*
 * Called at a quiescent point of the worker (snapshot adoption), so no
 * connection is in the middle of input or a timer. Connections copy what
 * concerns them at creation (tcp_conn_new), which is what keeps the
 * established ones undisturbed.
 */
int tcp_stack_reconfigure(struct tcp_stack *st, const struct tcp_config *cfg)
{
	if (!tcp_config_ok(cfg))
		return PG_ERROR;
	tcp_stack_set_config(st, cfg);
	return PG_OK;
}

const struct tcp_config *tcp_stack_config(const struct tcp_stack *st)
{
	return &st->cfg;
}

int tcp_config_restart_only(const struct tcp_config *started, const struct tcp_config *now,
			    char *why, size_t whylen)
{
	uint8_t ws_started = started->window_scale ? tcp_rcv_wscale_for(started->rcvbuf) : 0;
	uint8_t ws_now = now->window_scale ? tcp_rcv_wscale_for(now->rcvbuf) : 0;

	if (now->max_conns > tcp_table_size(started->max_conns)) {
		snprintf(why, whylen,
			 "%u connections per worker outgrow the connection table made at start "
			 "(%u buckets): longer hash chains until a restart",
			 now->max_conns, tcp_table_size(started->max_conns));
		return 1;
	}
	if (ws_now > ws_started) {
		snprintf(why, whylen,
			 "a %u-byte receive buffer needs window scale %u: connections accepted "
			 "through SYN cookies keep scale %u (windows up to %u bytes) until a restart",
			 now->rcvbuf, ws_now, ws_started, 65535u << ws_started);
		return 1;
	}
	return 0;
}

void tcp_stack_destroy(struct worker *w, struct tcp_stack *st)
{
	if (st == NULL)
		return;
	for (uint32_t b = 0; b <= st->mask; b++) {
		while (st->buckets[b] != NULL) {
			struct tcp_conn *c = st->buckets[b];

			c->busy = 0;
			tcp_conn_free(c);
		}
	}
	/*
	 * Handles the user still holds on closed (unhashed) connections are
	 * the user's to release first; tests check tcp_conn_count() is 0.
	 */
	worker_free(w, st->buckets);
	worker_free(w, st);
}

uint32_t tcp_conn_count(const struct worker *w)
{
	return w->tcp != NULL ? w->tcp->nconns : 0;
}

uint64_t tcp_buf_bytes(const struct worker *w)
{
	return w->tcp != NULL ? w->tcp->buf_bytes : 0;
}

/* used >= pct% of cap, without overflow */
static bool tcp_past(uint64_t used, uint64_t cap, uint32_t pct)
{
	return used * 100 >= cap * pct;
}

enum tcp_pressure tcp_stack_pressure(struct tcp_stack *st)
{
	const struct tcp_config *cfg = &st->cfg;
	uint64_t conn_buf = (uint64_t)cfg->sndbuf + cfg->rcvbuf;
	unsigned mbufs = rte_mempool_in_use_count(st->w->pool);

	/* A hard refusal is counted here, by the cap that caused it. */
	if (st->nconns >= cfg->max_conns) {
		WCOUNT(st->w, tcp_drop_maxconn);
		return TCP_PRESSURE_HARD;
	}
	if (st->buf_bytes + conn_buf > cfg->max_buf_bytes) {
		WCOUNT(st->w, tcp_refuse_mem);
		return TCP_PRESSURE_HARD;
	}
	if (mbufs >= st->max_mbufs) {
		WCOUNT(st->w, tcp_refuse_mbuf);
		return TCP_PRESSURE_HARD;
	}
	if (tcp_past(st->nconns, cfg->max_conns, cfg->watermark_pct) ||
	    tcp_past(st->buf_bytes + conn_buf, cfg->max_buf_bytes, cfg->watermark_pct) ||
	    tcp_past(mbufs, st->max_mbufs, cfg->watermark_pct))
		return TCP_PRESSURE_SOFT;
	return TCP_PRESSURE_NONE;
}

/* One table for both families: an IPv4 tuple hashes as before, an IPv6 one whole. */
static uint32_t tcp_bucket(const struct tcp_stack *st, const struct pg_addr *laddr, uint16_t lport,
                           const struct pg_addr *raddr, uint16_t rport)
{
	uint32_t ports = (uint32_t)lport << 16 | rport;

	if (pg_addr_is_v6(laddr)) {
		uint32_t words[9];

		memcpy(words, laddr->w, 16);
		memcpy(words + 4, raddr->w, 16);
		words[8] = ports;
		return rte_jhash_32b(words, 9, st->hash_seed) & st->mask;
	}
	return rte_jhash_3words(laddr->v4, raddr->v4, ports, st->hash_seed) & st->mask;
}

struct tcp_conn *tcp_lookup(struct tcp_stack *st, const struct pg_addr *laddr, uint16_t lport,
                            const struct pg_addr *raddr, uint16_t rport)
{
	struct tcp_conn *c = st->buckets[tcp_bucket(st, laddr, lport, raddr, rport)];

	for (; c != NULL; c = c->hnext)
		if (c->lport == lport && c->rport == rport && pg_addr_eq(&c->raddr, raddr) &&
		    pg_addr_eq(&c->laddr, laddr))
			return c;
	return NULL;
}

static void tcp_hash(struct tcp_conn *c)
{
	struct tcp_stack *st = c->st;
	uint32_t b = tcp_bucket(st, &c->laddr, c->lport, &c->raddr, c->rport);

	assert(!c->hashed);
	c->hnext = st->buckets[b];
	st->buckets[b] = c;
	c->hashed = true;
}

static void tcp_unhash(struct tcp_conn *c)
{
	struct tcp_stack *st = c->st;
	struct tcp_conn **pp;

	if (!c->hashed)
		return;
	pp = &st->buckets[tcp_bucket(st, &c->laddr, c->lport, &c->raddr, c->rport)];
	while (*pp != c)
		pp = &(*pp)->hnext;
	*pp = c->hnext;
	c->hnext = NULL;
	c->hashed = false;
}

struct tcp_listener *tcp_listener_find_addr(struct tcp_stack *st, const struct pg_addr *laddr,
                                            uint16_t lport)
{
	uint16_t port = rte_be_to_cpu_16(lport);
	struct tcp_listener *any = NULL;

	for (unsigned i = 0; i < TCP_MAX_LISTENERS; i++) {
		struct tcp_listener *l = &st->listeners[i];

		if (l->port != port || l->laddr.family != laddr->family)
			continue;
		if (pg_addr_eq(&l->laddr, laddr))
			return l;
		if (pg_addr_is_unspec(&l->laddr))
			any = l;
	}
	return any;
}

struct tcp_listener *tcp_listener_find(struct tcp_stack *st, uint32_t laddr, uint16_t lport)
{
	struct pg_addr a = pg_addr_v4(laddr);

	return tcp_listener_find_addr(st, &a, lport);
}

/*
 * Per-tuple timestamp offset (RFC 7323 §5.4): keyed, so TSval reveals no
 * uptime, and stable across incarnations of a tuple, so our TSval only
 * grows per tuple (TIME_WAIT reuse relies on it, and the SYN cookie path
 * recomputes it for a connection that did not exist when the SYN-ACK left).
 */
uint32_t tcp_ts_offset(const struct tcp_stack *st, const struct pg_addr *laddr,
                       const struct pg_addr *raddr, uint16_t lport, uint16_t rport)
{
	if (pg_addr_is_v6(laddr)) {
		struct {
			uint8_t tag[4];
			uint8_t laddr[16], raddr[16];
			uint16_t lport, rport;
		} msg6 = {.tag = {'t', 's', 'o', 2}, .lport = lport, .rport = rport};

		_Static_assert(sizeof(msg6) == 40, "no padding in the hashed tuple");
		memcpy(msg6.laddr, laddr->v6, 16);
		memcpy(msg6.raddr, raddr->v6, 16);
		return (uint32_t)tcp_siphash24(&st->isn_key, &msg6, sizeof(msg6));
	}
	struct {
		uint8_t tag[4];
		uint32_t laddr, raddr;
		uint16_t lport, rport;
	} msg = {.tag = {'t', 's', 'o', 1},
	         .laddr = laddr->v4,
	         .raddr = raddr->v4,
	         .lport = lport,
	         .rport = rport};

	_Static_assert(sizeof(msg) == 16, "no padding in the hashed tuple");
	return (uint32_t)tcp_siphash24(&st->isn_key, &msg, sizeof(msg));
}

uint16_t tcp_local_mss(struct tcp_stack *st, const struct pg_addr *raddr)
{
	const struct net_config *nc = st->w->net;
	uint16_t mtu = 1500;

	if (pg_addr_is_v6(raddr)) {
		const struct net_route6 *rt6;

		/* RFC 8200 §5: an IPv6 link has at least 1280 (conf.c checks the port). */
		if (nc != NULL && net_route6_lookup(nc, raddr->v6, &rt6) == PG_OK &&
		    nc->ports[rt6->port].mtu >= 1280)
			mtu = nc->ports[rt6->port].mtu;
	} else {
		const struct net_route *rt;

		if (nc != NULL && net_route_lookup(nc, raddr->v4, &rt) == PG_OK &&
		    nc->ports[rt->port].mtu >= 576)
			mtu = nc->ports[rt->port].mtu;
	}
	return (uint16_t)(mtu - tcp_ip_overhead(raddr)); /* IP and TCP headers without options */
}

/* The smallest shift that lets a 16-bit window cover the buffer (RFC 7323 §2.3). */
uint8_t tcp_rcv_wscale_for(uint32_t rcvbuf)
{
	uint8_t s = 0;

	while (s < TCP_MAX_WSCALE && (65535u << s) < rcvbuf)
		s++;
	return s;
}

uint8_t tcp_stack_rcv_wscale(const struct tcp_stack *st)
{
	return st->cookie_wscale;
}

struct tcp_conn *tcp_conn_new(struct tcp_stack *st, const struct pg_addr *laddr, uint16_t lport,
                              const struct pg_addr *raddr, uint16_t rport)
{
	struct worker *w = st->w;
	struct tcp_conn *c;

	if (st->nconns >= st->cfg.max_conns) {
		WCOUNT(w, tcp_drop_maxconn);
		return NULL;
	}
	if (st->buf_bytes + st->cfg.sndbuf + st->cfg.rcvbuf > st->cfg.max_buf_bytes) {
		WCOUNT(w, tcp_refuse_mem);
		return NULL;
	}
	if (rte_mempool_in_use_count(w->pool) >= st->max_mbufs) {
		WCOUNT(w, tcp_refuse_mbuf);
		return NULL;
	}
	c = worker_alloc(w, sizeof(*c));
	if (c == NULL)
		return NULL;
	if (tcp_ring_alloc(st, &c->sndq, st->cfg.sndbuf) != PG_OK ||
	    tcp_ring_alloc(st, &c->rcvq, st->cfg.rcvbuf) != PG_OK) {
		tcp_ring_free(st, &c->sndq);
		worker_free(w, c);
		return NULL;
	}
	c->st = st;
	c->state = TCPS_CLOSED;
	c->laddr = *laddr;
	c->lport = lport;
	c->raddr = *raddr;
	c->rport = rport;
	/* RFC 6437 §3: a flow label per connection, a keyed hash of the tuple (20 bits). */
	if (pg_addr_is_v6(laddr))
		c->flow_label = (tcp_ts_offset(st, laddr, raddr, lport, rport) >> 7) & 0xfffffu;
	c->created_ns = w->now_ns;
	c->rto_ns = st->cfg.rto_init_ns;
	c->rcv_wscale = st->cfg.window_scale ? tcp_rcv_wscale_for(st->cfg.rcvbuf) : 0;
	c->cc_ops = st->cc_ops;
	c->ka_idle_ns = st->cfg.keepalive_idle_ns;
	c->ka_intvl_ns = st->cfg.keepalive_intvl_ns;
	c->ka_max_probes = st->cfg.keepalive_probes;
	c->max_retries = st->cfg.max_retries;
	c->ts_offset = tcp_ts_offset(st, laddr, raddr, lport, rport);
	c->mss = tcp_local_mss(st, raddr);
	c->peer_mss = TCP_DEFAULT_MSS;
	tcp_timers_init(c);
	tcp_hash(c);
	st->nconns++;
	WCOUNT(w, tcp_conn_alloc);
	return c;
}

void tcp_conn_hold(struct tcp_conn *c)
{
	c->busy++;
}

void tcp_conn_release(struct tcp_conn *c)
{
	assert(c->busy > 0);
	if (--c->busy == 0 && c->free_pending)
		tcp_conn_free(c);
}

void tcp_conn_free(struct tcp_conn *c)
{
	struct tcp_stack *st = c->st;
	struct worker *w = st->w;

	if (c->busy > 0) {
		c->free_pending = true; /* still on the stack of a caller */
		tcp_unhash(c);
		tcp_timers_cancel(c);
		return;
	}
	tcp_unhash(c);
	tcp_timers_cancel(c);
	if (c->listener != NULL) {
		c->listener->nsynrcvd--;
		c->listener = NULL;
	}
	tcp_ring_free(st, &c->sndq);
	tcp_ring_free(st, &c->rcvq);
	assert(st->nconns > 0);
	st->nconns--;
	WCOUNT(w, tcp_conn_free);
	worker_free(w, c);
}

void tcp_conn_closed(struct tcp_conn *c, enum tcp_error err)
{
	bool notify = c->user_owned && !c->end_notified;

	if (c->state != TCPS_CLOSED)
		tcp_set_state(c, TCPS_CLOSED);
	tcp_unhash(c);
	tcp_timers_cancel(c);
	if (c->listener != NULL) {
		c->listener->nsynrcvd--;
		c->listener = NULL;
	}
	if (!c->user_owned) {
		tcp_conn_free(c);
		return;
	}
	c->err = err;
	if (!notify)
		return;
	c->end_notified = true;
	if (err != TCP_ERR_NONE) {
		if (c->ops != NULL && c->ops->error != NULL)
			c->ops->error(c, err, c->user);
	} else if (c->ops != NULL && c->ops->closed != NULL) {
		c->ops->closed(c, c->user);
	}
}

/* Buffers are of no use to an orphan in TIME_WAIT; thousands of them must stay cheap. */
static void tcp_conn_trim(struct tcp_conn *c)
{
	tcp_ring_free(c->st, &c->sndq);
	tcp_ring_free(c->st, &c->rcvq);
}

void tcp_enter_time_wait(struct tcp_conn *c)
{
	tcp_set_state(c, TCPS_TIME_WAIT);
	tcp_rtx_stop(c);
	tcp_delack_stop(c);
	c->tw_start_ns = c->st->w->now_ns;
	tcp_wait_arm(c, 2 * c->st->cfg.msl_ns);
	if (!c->user_owned) {
		tcp_conn_trim(c);
		return;
	}
	if (!c->end_notified) {
		c->end_notified = true;
		if (c->ops != NULL && c->ops->closed != NULL)
			c->ops->closed(c, c->user);
	}
}

void tcp_notify_readable(struct tcp_conn *c)
{
	if (c->user_owned && c->ops != NULL && c->ops->readable != NULL)
		c->ops->readable(c, c->user);
}

void tcp_notify_writable(struct tcp_conn *c)
{
	if (!c->want_writable || !c->user_owned)
		return;
	c->want_writable = false;
	if (c->ops != NULL && c->ops->writable != NULL)
		c->ops->writable(c, c->user);
}

/* SYN_RECEIVED or SYN_SENT -> ESTABLISHED; tells the user. */
void tcp_conn_established(struct tcp_conn *c)
{
	struct tcp_stack *st = c->st;

	c->cc_ops->init(&c->cc, c->mss, st->w->now_ns);
	c->cwnd_limited_until = c->snd_una;
	c->last_rx_ns = st->w->now_ns;
	tcp_keepalive_arm(c);
	if (c->fin_queued)
		tcp_set_state(c, TCPS_FIN_WAIT_1);
	else
		tcp_set_state(c, TCPS_ESTABLISHED);
	if (c->passive) {
		struct tcp_listener *l = c->listener;

		WCOUNT(st->w, tcp_conn_passive);
		if (l != NULL) {
			l->nsynrcvd--;
			c->listener = NULL;
		}
		c->user_owned = true;
		c->accepted = true;
		if (c->ops != NULL && c->ops->accepted != NULL)
			c->ops->accepted(c, c->user);
	} else {
		WCOUNT(st->w, tcp_conn_active);
		if (c->user_owned && c->ops != NULL && c->ops->connected != NULL)
			c->ops->connected(c, c->user);
	}
}

int tcp_listen_addr(struct worker *w, const struct pg_addr *laddr, uint16_t port,
                    const struct tcp_ops *ops, void *user)
{
	struct tcp_stack *st = w->tcp;
	struct tcp_listener *free_slot = NULL;

	if (st == NULL || port == 0 || (!pg_addr_is_v4(laddr) && !pg_addr_is_v6(laddr)))
		return PG_ERROR;
	for (unsigned i = 0; i < TCP_MAX_LISTENERS; i++) {
		struct tcp_listener *l = &st->listeners[i];

		if (l->port == port && pg_addr_eq(&l->laddr, laddr))
			return PG_DECLINED;
		if (l->port == 0 && free_slot == NULL)
			free_slot = l;
	}
	if (free_slot == NULL)
		return PG_ERROR;
	*free_slot = (struct tcp_listener){.laddr = *laddr, .port = port, .ops = ops, .user = user};
	return PG_OK;
}

int tcp_listen(struct worker *w, uint32_t laddr, uint16_t port, const struct tcp_ops *ops,
               void *user)
{
	struct pg_addr a = pg_addr_v4(laddr);

	return tcp_listen_addr(w, &a, port, ops, user);
}

int tcp_unlisten(struct worker *w, uint32_t laddr, uint16_t port)
{
	struct pg_addr a = pg_addr_v4(laddr);

	return tcp_unlisten_addr(w, &a, port);
}

int tcp_unlisten_addr(struct worker *w, const struct pg_addr *laddr, uint16_t port)
{
	struct tcp_stack *st = w->tcp;
	struct tcp_listener *l = NULL;

	for (unsigned i = 0; st != NULL && i < TCP_MAX_LISTENERS; i++)
		if (st->listeners[i].port == port && pg_addr_eq(&st->listeners[i].laddr, laddr))
			l = &st->listeners[i];
	if (l == NULL)
		return PG_DECLINED;
	/* Half-open connections of this listener have nobody to accept them. */
	for (uint32_t b = 0; l->nsynrcvd > 0 && b <= st->mask; b++) {
		struct tcp_conn *c = st->buckets[b], *next;

		for (; c != NULL; c = next) {
			next = c->hnext;
			if (c->listener == l) {
				tcp_send_rst(c);
				tcp_conn_free(c);
			}
		}
	}
	memset(l, 0, sizeof(*l));
	return PG_OK;
}

/*
 * RFC 6191-style reuse of a TIME_WAIT tuple for a new active open: safe
 * when the old incarnation used timestamps (our TSval only grows per
 * tuple, so the peer's PAWS rejects old duplicates) and the new ISN lies
 * beyond the old sequence space.
 */
static bool tcp_tw_reusable(const struct tcp_conn *old)
{
	return old->state == TCPS_TIME_WAIT && old->ts_ok && !old->user_owned &&
	       old->st->w->now_ns - old->tw_start_ns >= 1000000000ull / TCP_TS_HZ;
}

/* The local address of a connection to dst: the leaving port's (RFC 6724 for IPv6). */
static int tcp_source_for(struct worker *w, const struct pg_addr *dst, struct pg_addr *laddr)
{
	const struct net_config *nc = w->net;

	if (pg_addr_is_v6(dst)) {
		uint8_t src[16];

		if (net_ipv6_source(w, dst->v6, src) != PG_OK)
			return PG_DECLINED;
		*laddr = pg_addr_v6(src);
		return PG_OK;
	}
	const struct net_route *rt;

	if (net_route_lookup(nc, dst->v4, &rt) != PG_OK || nc->ports[rt->port].addr == 0)
		return PG_DECLINED;
	*laddr = pg_addr_v4(nc->ports[rt->port].addr);
	return PG_OK;
}

int tcp_connect(struct worker *w, uint32_t dst, uint16_t dport, const struct tcp_ops *ops,
		void *user, struct tcp_conn **out)
{
	struct pg_addr a = pg_addr_v4(dst);

	return tcp_connect_addr(w, &a, dport, ops, user, out);
}

int tcp_connect_addr(struct worker *w, const struct pg_addr *dst, uint16_t dport,
                     const struct tcp_ops *ops, void *user, struct tcp_conn **out)
{
	struct tcp_stack *st = w->tcp;
	const struct net_config *nc = w->net;
	struct pg_addr laddr;
	uint32_t range, min_isn = 0;
	uint16_t rport = rte_cpu_to_be_16(dport), lport = 0;
	bool have_min_isn = false;
	struct tcp_conn *c;

	if (st == NULL || nc == NULL || dport == 0 || (!pg_addr_is_v4(dst) && !pg_addr_is_v6(dst)))
		return PG_ERROR;
	if (tcp_source_for(w, dst, &laddr) != PG_OK)
		return PG_DECLINED;
	if (tcp_stack_pressure(st) == TCP_PRESSURE_HARD)
		return PG_AGAIN;
	/*
	 * A local port whose reply tuple hashes to this worker and whose
	 * 4-tuple is free (or in a reusable TIME_WAIT).
	 */
	range = (uint32_t)st->cfg.ephemeral_hi - st->cfg.ephemeral_lo + 1;
	for (uint32_t i = 0; i < range; i++) {
		uint16_t p = st->port_cursor;
		uint16_t pn = rte_cpu_to_be_16(p);
		struct tcp_conn *old;

		st->port_cursor = p == st->cfg.ephemeral_hi ? st->cfg.ephemeral_lo : p + 1;
		if (w->nworkers > 1 &&
		    steer_hash_addr(dst, &laddr, rport, pn) % w->nworkers != w->id)
			continue;
		old = tcp_lookup(st, &laddr, pn, dst, rport);
		if (old != NULL) {
			if (!tcp_tw_reusable(old))
				continue;
			min_isn = old->snd_max + 65536 * 2;
			have_min_isn = true;
			WCOUNT(w, tcp_time_wait_reuse);
			tcp_conn_free(old);
		}
		lport = pn;
		break;
	}
	if (lport == 0) {
		WCOUNT(w, tcp_port_exhausted);
		return PG_AGAIN;
	}
	c = tcp_conn_new(st, &laddr, lport, dst, rport);
	if (c == NULL)
		return PG_ERROR;
	c->ops = ops;
	c->user = user;
	c->user_owned = true;
	/* RFC 6528; tcp_isn() takes both addresses, then both ports, ours first. */
	c->iss = tcp_isn_addr(&st->isn_key, &laddr, dst, lport, rport, w->now_ns);
	if (have_min_isn && SEQ_LT(c->iss, min_isn))
		c->iss = min_isn;
	c->snd_una = c->snd_nxt = c->snd_max = c->iss;
	c->snd_buf_seq = c->iss + 1;
	c->recover = c->iss;
	/* Options we offer; the SYN-ACK decides what is in use (RFC 7323 §2.2, §3.2). */
	c->ws_ok = st->cfg.window_scale;
	c->ts_ok = st->cfg.timestamps;
	tcp_set_state(c, TCPS_SYN_SENT);
	tcp_conn_hold(c);
	tcp_output(c);
	tcp_conn_release(c);
	*out = c;
	return PG_OK;
}

void tcp_set_handler(struct tcp_conn *c, const struct tcp_ops *ops, void *user)
{
	c->ops = ops;
	c->user = user;
}

int tcp_shutdown(struct tcp_conn *c)
{
	if (c->state == TCPS_CLOSED)
		return PG_ERROR;
	if (c->fin_queued)
		return PG_OK;
	c->fin_queued = true;
	switch (c->state) {
	case TCPS_ESTABLISHED:
		tcp_set_state(c, TCPS_FIN_WAIT_1);
		break;
	case TCPS_CLOSE_WAIT:
		tcp_set_state(c, TCPS_LAST_ACK);
		break;
	default:
		/* SYN_SENT / SYN_RECEIVED: FIN_WAIT_1 once established. */
		return PG_OK;
	}
	tcp_conn_hold(c);
	tcp_output(c);
	tcp_conn_release(c);
	return PG_OK;
}

void tcp_close(struct tcp_conn *c)
{
	assert(c->user_owned);
	c->user_owned = false;
	tcp_conn_hold(c);
	switch (c->state) {
	case TCPS_CLOSED:
	case TCPS_SYN_SENT:
		tcp_conn_free(c);
		break;
	case TCPS_TIME_WAIT:
		tcp_conn_trim(c);
		break;
	case TCPS_SYN_RECEIVED:
		tcp_send_rst(c);
		tcp_conn_free(c);
		break;
	default:
		if (c->rcvq.len > 0 || c->nooo > 0) {
			/* Data the application never read: tell the peer it was lost. */
			WCOUNT(c->st->w, tcp_close_unread_rst);
			tcp_send_rst(c);
			tcp_conn_free(c);
			break;
		}
		if (!c->fin_queued)
			tcp_shutdown(c);
		if (c->state == TCPS_FIN_WAIT_2)
			tcp_wait_arm(c, c->st->cfg.fin_wait2_ns);
		break;
	}
	tcp_conn_release(c);
}

void tcp_abort(struct tcp_conn *c)
{
	assert(c->user_owned);
	c->user_owned = false;
	tcp_conn_hold(c);
	if (c->state >= TCPS_SYN_RECEIVED && c->state != TCPS_TIME_WAIT)
		tcp_send_rst(c);
	WCOUNT(c->st->w, tcp_conn_aborted);
	tcp_conn_free(c);
	tcp_conn_release(c);
}

void tcp_release(struct tcp_conn **c, bool reset)
{
	if (*c == NULL)
		return;
	if (reset)
		tcp_abort(*c);
	else
		tcp_close(*c);
	*c = NULL;
}

uint32_t tcp_foreach_conn(const struct worker *w,
			  bool (*fn)(const struct tcp_conn_info *ci, void *arg), void *arg)
{
	const struct tcp_stack *st = w->tcp;
	uint32_t calls = 0;

	if (st == NULL)
		return 0;
	for (uint32_t b = 0; b <= st->mask; b++) {
		for (const struct tcp_conn *c = st->buckets[b]; c != NULL; c = c->hnext) {
			struct tcp_conn_info ci = {
			    .laddr = pg_addr_is_v4(&c->laddr) ? c->laddr.v4 : 0,
			    .raddr = pg_addr_is_v4(&c->raddr) ? c->raddr.v4 : 0,
			    .local = c->laddr,
			    .remote = c->raddr,
			    .lport = rte_be_to_cpu_16(c->lport),
			    .rport = rte_be_to_cpu_16(c->rport),
			    .state = tcp_state_names[c->state],
			    .passive = c->passive,
			    .sndq = c->sndq.len,
			    .rcvq = c->rcvq.len,
			    .created_ns = c->created_ns,
			};

			/* SYN and FIN take a sequence number each (RFC 9293 §3.4) */
			if (c->state != TCPS_CLOSED && c->state != TCPS_SYN_SENT)
				ci.bytes_in = c->rcv_nxt - c->irs - 1 - (c->rcv_fin ? 1u : 0u);
			if (c->state != TCPS_CLOSED && c->snd_una != c->iss) {
				ci.bytes_out = c->snd_una - c->iss - 1;
				if (c->fin_sent && c->snd_una == c->snd_max)
					ci.bytes_out--; /* our FIN was acknowledged */
			}
			calls++;
			if (!fn(&ci, arg))
				return calls;
		}
	}
	return calls;
}
