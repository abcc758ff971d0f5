/*
 * test_tcp_states.c - table-driven RFC 9293 state transitions. One stack
 * (side 1) talks to a scripted peer: every segment it receives is crafted
 * and injected, every TCP segment it sends is logged and dropped by a tap
 * (ARP still passes, so side 0 only answers ARP and never sees TCP).
 *
 * Each row names a start state (reached by a chain of setup steps, each
 * itself checked), one action (a crafted segment, close(), or letting the
 * virtual clock run), the state the connection must then be in (by
 * tcp_state_name_of, "NONE" = no connection left on the worker) and what
 * the stack must send in answer. Peer sequence numbers are given relative
 * to the peer's ISN (IRS), acknowledgments relative to the stack's ISN
 * (ISS), learned from its SYN or SYN-ACK. The expectations are RFC 9293
 * (and RFC 5961 for RSTs) as written; a row where the stack differs fails.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <rte_ip.h>
#include <rte_tcp.h>

#include "result.h"
#include "tcp_harness.h"

#define LST_PORT 25     /* the stack's listener (passive rows) */
#define PEER_PORT 40000 /* the scripted peer's port */
#define PEER_IRS 0x12345678u
#define STEP_NS (50 * TL_MS) /* covers the 40 ms delayed ACK */
#define ANY INT32_MIN        /* do not check this field */

/* ---- what the stack sent ---- */

struct seg {
	uint8_t flags;
	uint32_t seq, ack;
	uint16_t sport, dport;
	uint32_t len;
};

#define LOG_MAX 64

struct peer {
	struct tl *t;
	uint16_t lport, pport; /* host order */
	uint32_t irs, iss;
	bool iss_known;
	bool passive;
	struct tl_app app, lst;
	struct seg log[LOG_MAX];
	unsigned nlog;
};

static bool tap_log(struct tl *t, unsigned from, struct rte_mbuf *m, void *arg)
{
	struct peer *p = arg;
	const struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, const struct rte_ipv4_hdr *, 14);
	const struct rte_tcp_hdr *th = (const struct rte_tcp_hdr *)(ip + 1);
	struct seg *s;

	(void)t;
	if (from != 1 || rte_pktmbuf_data_len(m) < 54 ||
	    rte_pktmbuf_mtod_offset(m, const struct rte_ether_hdr *, 0)->ether_type !=
	        rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
	    ip->next_proto_id != IPPROTO_TCP)
		return true; /* ARP and the like pass */
	if (p->nlog < LOG_MAX) {
		s = &p->log[p->nlog];
		s->flags = th->tcp_flags;
		s->seq = rte_be_to_cpu_32(th->sent_seq);
		s->ack = rte_be_to_cpu_32(th->recv_ack);
		s->sport = rte_be_to_cpu_16(th->src_port);
		s->dport = rte_be_to_cpu_16(th->dst_port);
		s->len = rte_be_to_cpu_16(ip->total_length) - (uint32_t)(ip->version_ihl & 0xf) * 4 -
		         (uint32_t)(th->data_off >> 4) * 4;
	}
	p->nlog++;
	return false; /* the peer is scripted: nothing reaches side 0's TCP */
}

/* ---- the table ---- */

enum act {
	A_SEG,   /* inject a crafted segment */
	A_CLOSE, /* tcp_close() on the handle */
	A_2MSL,  /* let 2*MSL (plus a margin) of virtual time pass */
};

enum snd {
	S_NOTHING, /* no TCP segment at all */
	S_SYN,     /* SYN alone */
	S_SYNACK,  /* SYN,ACK */
	S_ACK,     /* exactly one segment, ACK without SYN/FIN/RST */
	S_FIN,     /* FIN,ACK */
	S_RST,     /* RST without ACK */
	S_NO_CTL,  /* nothing, or ACKs only: no SYN, FIN or RST */
};

static const char *const snd_names[] = {"nothing", "SYN", "SYN-ACK", "ACK", "FIN-ACK", "RST",
                                        "nothing or pure ACK"};

enum ev {
	EV_ANY = 0,
	EV_NONE,       /* no connected/accepted/error event on this step */
	EV_ACCEPTED,
	EV_CONNECTED,
	EV_ERR_RESET,
	EV_ERR_REFUSED,
};

struct step {
	enum act act;
	uint8_t flags;
	int32_t seq; /* IRS + seq */
	int32_t ack; /* ISS + ack */
	uint32_t len;
	uint32_t delay_pct_msl; /* let this much virtual time (% of MSL) pass first */
	/* expectations */
	const char *state;
	enum snd snd;
	int32_t snd_seq; /* ISS + snd_seq, or ANY */
	int32_t snd_ack; /* IRS + snd_ack, or ANY */
	enum ev ev;
};

#define SEG(f, s, a) .act = A_SEG, .flags = (f), .seq = (s), .ack = (a)
#define ACK RTE_TCP_ACK_FLAG
#define SYN RTE_TCP_SYN_FLAG
#define FIN RTE_TCP_FIN_FLAG
#define RST RTE_TCP_RST_FLAG

enum start {
	ST_LISTEN,
	ST_SYN_SENT,
	ST_SYN_RECEIVED,     /* passive: LISTEN + SYN */
	ST_SIM_SYN_RECEIVED, /* active: SYN_SENT + SYN (simultaneous open) */
	ST_ESTABLISHED,      /* passive: SYN_RECEIVED + ACK */
	ST_CLOSE_WAIT,
	ST_LAST_ACK,
	ST_FIN_WAIT_1,
	ST_FIN_WAIT_2,
	ST_CLOSING,
	ST_TIME_WAIT,
	ST__COUNT
};

/* How each start state is reached: its parent, then one step (checked too). */
static const struct {
	const char *name;
	enum start parent;
	struct step step;
} starts[ST__COUNT] = {
    [ST_LISTEN] = {"LISTEN", ST_LISTEN, {0}},
    [ST_SYN_SENT] = {"SYN_SENT", ST_SYN_SENT, {0}},
    [ST_SYN_RECEIVED] = {"SYN_RECEIVED", ST_LISTEN,
                         {SEG(SYN, 0, 0), .state = "SYN_RECEIVED", .snd = S_SYNACK,
                          .snd_seq = 0, .snd_ack = 1}},
    [ST_SIM_SYN_RECEIVED] = {"SYN_RECEIVED(simultaneous open)", ST_SYN_SENT,
                             {SEG(SYN, 0, 0), .state = "SYN_RECEIVED", .snd = S_SYNACK,
                              .snd_seq = 0, .snd_ack = 1}},
    [ST_ESTABLISHED] = {"ESTABLISHED", ST_SYN_RECEIVED,
                        {SEG(ACK, 1, 1), .state = "ESTABLISHED", .snd = S_NOTHING,
                         .ev = EV_ACCEPTED}},
    [ST_CLOSE_WAIT] = {"CLOSE_WAIT", ST_ESTABLISHED,
                       {SEG(FIN | ACK, 1, 1), .state = "CLOSE_WAIT", .snd = S_ACK, .snd_seq = 1,
                        .snd_ack = 2}},
    [ST_LAST_ACK] = {"LAST_ACK", ST_CLOSE_WAIT,
                     {.act = A_CLOSE, .state = "LAST_ACK", .snd = S_FIN, .snd_seq = 1,
                      .snd_ack = 2}},
    [ST_FIN_WAIT_1] = {"FIN_WAIT_1", ST_ESTABLISHED,
                       {.act = A_CLOSE, .state = "FIN_WAIT_1", .snd = S_FIN, .snd_seq = 1,
                        .snd_ack = 1}},
    [ST_FIN_WAIT_2] = {"FIN_WAIT_2", ST_FIN_WAIT_1,
                       {SEG(ACK, 1, 2), .state = "FIN_WAIT_2", .snd = S_NOTHING}},
    [ST_CLOSING] = {"CLOSING", ST_FIN_WAIT_1,
                    {SEG(FIN | ACK, 1, 1), .state = "CLOSING", .snd = S_ACK, .snd_seq = 2,
                     .snd_ack = 2}},
    [ST_TIME_WAIT] = {"TIME_WAIT", ST_FIN_WAIT_2,
                      {SEG(FIN | ACK, 1, 2), .state = "TIME_WAIT", .snd = S_ACK, .snd_seq = 2,
                       .snd_ack = 2}},
};

struct peer;
struct row {
	const char *name;
	enum start from;
	struct step step;
	void (*post)(struct peer *p, const struct row *r); /* extra checks, may be NULL */
};

static void post_listener_still_there(struct peer *p, const struct row *r);
static void post_time_wait_restarted(struct peer *p, const struct row *r);

static const struct row rows[] = {
    {"LISTEN + SYN -> SYN_RECEIVED, SYN-ACK", ST_LISTEN,
     {SEG(SYN, 0, 0), .state = "SYN_RECEIVED", .snd = S_SYNACK, .snd_seq = 0, .snd_ack = 1,
      .ev = EV_NONE}},
    {"SYN_RECEIVED + ACK -> ESTABLISHED, silent", ST_SYN_RECEIVED,
     {SEG(ACK, 1, 1), .state = "ESTABLISHED", .snd = S_NOTHING, .ev = EV_ACCEPTED}},
    {"SYN_RECEIVED(passive) + RST -> back to LISTEN (TCB freed), silent", ST_SYN_RECEIVED,
     {SEG(RST, 1, 0), .state = "NONE", .snd = S_NOTHING, .ev = EV_NONE},
     post_listener_still_there},
    {"SYN_SENT + SYN-ACK -> ESTABLISHED, ACK", ST_SYN_SENT,
     {SEG(SYN | ACK, 0, 1), .state = "ESTABLISHED", .snd = S_ACK, .snd_seq = 1, .snd_ack = 1,
      .ev = EV_CONNECTED}},
    {"SYN_SENT + SYN (simultaneous open) -> SYN_RECEIVED, SYN-ACK", ST_SYN_SENT,
     {SEG(SYN, 0, 0), .state = "SYN_RECEIVED", .snd = S_SYNACK, .snd_seq = 0, .snd_ack = 1,
      .ev = EV_NONE}},
    {"SYN_RECEIVED(sim open) + SYN-ACK (fig. 7 line 6) -> ESTABLISHED", ST_SIM_SYN_RECEIVED,
     {SEG(SYN | ACK, 0, 1), .state = "ESTABLISHED", .snd = S_NO_CTL, .snd_seq = ANY,
      .snd_ack = ANY, .ev = EV_CONNECTED}},
    {"SYN_RECEIVED(sim open) + ACK -> ESTABLISHED, silent", ST_SIM_SYN_RECEIVED,
     {SEG(ACK, 1, 1), .state = "ESTABLISHED", .snd = S_NOTHING, .ev = EV_CONNECTED}},
    {"SYN_SENT + RST,ACK (acceptable ACK) -> CLOSED, error refused", ST_SYN_SENT,
     {SEG(RST | ACK, 0, 1), .state = "CLOSED", .snd = S_NOTHING, .ev = EV_ERR_REFUSED}},
    {"SYN_SENT + ACK (unacceptable, ISS+1000) -> RST <SEQ=SEG.ACK>, stays", ST_SYN_SENT,
     {SEG(ACK, 0, 1000), .state = "SYN_SENT", .snd = S_RST, .snd_seq = 1000, .snd_ack = ANY,
      .ev = EV_NONE}},
    {"SYN_SENT + ACK (unacceptable, =ISS) -> RST <SEQ=SEG.ACK>, stays", ST_SYN_SENT,
     {SEG(ACK, 0, 0), .state = "SYN_SENT", .snd = S_RST, .snd_seq = 0, .snd_ack = ANY,
      .ev = EV_NONE}},
    {"ESTABLISHED + FIN -> CLOSE_WAIT, ACK of FIN", ST_ESTABLISHED,
     {SEG(FIN | ACK, 1, 1), .state = "CLOSE_WAIT", .snd = S_ACK, .snd_seq = 1, .snd_ack = 2,
      .ev = EV_NONE}},
    {"CLOSE_WAIT + close() -> LAST_ACK, FIN", ST_CLOSE_WAIT,
     {.act = A_CLOSE, .state = "LAST_ACK", .snd = S_FIN, .snd_seq = 1, .snd_ack = 2}},
    {"LAST_ACK + ACK of FIN -> CLOSED (freed), silent", ST_LAST_ACK,
     {SEG(ACK, 2, 2), .state = "NONE", .snd = S_NOTHING}},
    {"ESTABLISHED + close() -> FIN_WAIT_1, FIN", ST_ESTABLISHED,
     {.act = A_CLOSE, .state = "FIN_WAIT_1", .snd = S_FIN, .snd_seq = 1, .snd_ack = 1}},
    {"FIN_WAIT_1 + ACK of FIN -> FIN_WAIT_2, silent", ST_FIN_WAIT_1,
     {SEG(ACK, 1, 2), .state = "FIN_WAIT_2", .snd = S_NOTHING}},
    {"FIN_WAIT_1 + FIN (not acking ours) -> CLOSING, ACK", ST_FIN_WAIT_1,
     {SEG(FIN | ACK, 1, 1), .state = "CLOSING", .snd = S_ACK, .snd_seq = 2, .snd_ack = 2}},
    {"CLOSING + ACK of FIN -> TIME_WAIT, silent", ST_CLOSING,
     {SEG(ACK, 2, 2), .state = "TIME_WAIT", .snd = S_NOTHING}},
    {"FIN_WAIT_1 + FIN,ACK of FIN -> TIME_WAIT, ACK", ST_FIN_WAIT_1,
     {SEG(FIN | ACK, 1, 2), .state = "TIME_WAIT", .snd = S_ACK, .snd_seq = 2, .snd_ack = 2}},
    {"FIN_WAIT_2 + FIN -> TIME_WAIT, ACK", ST_FIN_WAIT_2,
     {SEG(FIN | ACK, 1, 2), .state = "TIME_WAIT", .snd = S_ACK, .snd_seq = 2, .snd_ack = 2}},
    {"TIME_WAIT + 2MSL -> CLOSED (freed), silent", ST_TIME_WAIT,
     {.act = A_2MSL, .state = "NONE", .snd = S_NOTHING}},
    {"TIME_WAIT + retransmitted FIN -> ACK again, stays (2MSL restarted)", ST_TIME_WAIT,
     {SEG(FIN | ACK, 1, 2), .delay_pct_msl = 150, .state = "TIME_WAIT", .snd = S_ACK,
      .snd_seq = 2, .snd_ack = 2},
     post_time_wait_restarted},
    {"ESTABLISHED + RST at RCV.NXT -> CLOSED, error reset, silent", ST_ESTABLISHED,
     {SEG(RST, 1, 0), .state = "CLOSED", .snd = S_NOTHING, .ev = EV_ERR_RESET}},
    {"ESTABLISHED + RST in window not exact -> challenge ACK, stays (RFC 5961)",
     ST_ESTABLISHED,
     {SEG(RST, 101, 0), .state = "ESTABLISHED", .snd = S_ACK, .snd_seq = 1, .snd_ack = 1,
      .ev = EV_NONE}},
};

#define NROWS (sizeof(rows) / sizeof(rows[0]))

/* ---- running a step ---- */

static const struct row *cur_row;
static struct peer the_peer;

struct find {
	uint16_t lport, rport;
	const char *state;
};

static bool find_fn(const struct tcp_conn_info *ci, void *arg)
{
	struct find *f = arg;

	if (ci->lport == f->lport && ci->rport == f->rport) {
		f->state = ci->state;
		return false;
	}
	return true;
}

/* The connection's state; "NONE" when the worker holds no such connection. */
static const char *state_of(struct peer *p)
{
	struct find f = {.lport = p->lport, .rport = p->pport, .state = "NONE"};

	if (p->app.c != NULL && !p->app.handle_released)
		return tcp_state_name_of(p->app.c);
	tcp_foreach_conn(p->t->s[1].w, find_fn, &f);
	return f.state;
}

static void dump_log(struct peer *p, unsigned from)
{
	for (unsigned i = from; i < p->nlog && i < LOG_MAX; i++) {
		const struct seg *s = &p->log[i];

		print_message("#   sent: %s%s%s%s%s seq=ISS%+" PRId64 " ack=IRS%+" PRId64 " len=%u\n",
		              s->flags & SYN ? "S" : "", s->flags & ACK ? "A" : "",
		              s->flags & FIN ? "F" : "", s->flags & RST ? "R" : "",
		              s->flags & RTE_TCP_PSH_FLAG ? "P" : "",
		              (int64_t)(int32_t)(s->seq - p->iss), (int64_t)(int32_t)(s->ack - p->irs),
		              s->len);
	}
}

static bool snd_matches(struct peer *p, const struct step *st, unsigned from, char *why,
                        size_t whylen)
{
	unsigned n = p->nlog - from;
	const struct seg *s = n > 0 ? &p->log[from] : NULL;
	uint8_t want;

	switch (st->snd) {
	case S_NOTHING:
		if (n != 0) {
			snprintf(why, whylen, "expected nothing sent, got %u segment(s)", n);
			return false;
		}
		return true;
	case S_NO_CTL:
		for (unsigned i = from; i < p->nlog && i < LOG_MAX; i++)
			if (p->log[i].flags & (SYN | FIN | RST) || !(p->log[i].flags & ACK)) {
				snprintf(why, whylen, "expected nothing or pure ACKs, got flags 0x%02x",
				         p->log[i].flags);
				return false;
			}
		return true;
	case S_SYN: want = SYN; break;
	case S_SYNACK: want = SYN | ACK; break;
	case S_ACK: want = ACK; break;
	case S_FIN: want = FIN | ACK; break;
	case S_RST: want = RST; break;
	default: want = 0; break;
	}
	if (n != 1) {
		snprintf(why, whylen, "expected exactly one %s, got %u segment(s)", snd_names[st->snd],
		         n);
		return false;
	}
	if ((s->flags & (SYN | ACK | FIN | RST)) != want) {
		snprintf(why, whylen, "expected %s, got flags 0x%02x", snd_names[st->snd], s->flags);
		return false;
	}
	if (s->sport != p->lport || s->dport != p->pport) {
		snprintf(why, whylen, "ports %u->%u", s->sport, s->dport);
		return false;
	}
	if (st->snd_seq != ANY && s->seq != p->iss + (uint32_t)st->snd_seq) {
		snprintf(why, whylen, "seq ISS%+" PRId64 ", expected ISS%+d",
		         (int64_t)(int32_t)(s->seq - p->iss), st->snd_seq);
		return false;
	}
	if (st->snd_ack != ANY && (want & ACK) && s->ack != p->irs + (uint32_t)st->snd_ack) {
		snprintf(why, whylen, "ack IRS%+" PRId64 ", expected IRS%+d",
		         (int64_t)(int32_t)(s->ack - p->irs), st->snd_ack);
		return false;
	}
	return true;
}

static bool ev_matches(struct peer *p, enum ev ev, unsigned accepts0, bool connected0,
                       bool errored0, char *why, size_t whylen)
{
	bool acc = p->lst.accepts != accepts0;
	bool con = p->app.connected && !connected0 && !p->passive;
	bool err = p->app.errored && !errored0;

	switch (ev) {
	case EV_ANY: return true;
	case EV_NONE:
		if (acc || con || err) {
			snprintf(why, whylen, "unexpected event (accepted %d connected %d error %d/%d)",
			         acc, con, err, (int)p->app.err);
			return false;
		}
		return true;
	case EV_ACCEPTED:
		if (!acc || err) {
			snprintf(why, whylen, "no accepted event (error %d)", err);
			return false;
		}
		return true;
	case EV_CONNECTED:
		if (!con || err) {
			snprintf(why, whylen, "no connected event (error %d)", err);
			return false;
		}
		return true;
	case EV_ERR_RESET:
	case EV_ERR_REFUSED:
		if (!err || p->app.err != (ev == EV_ERR_RESET ? TCP_ERR_RESET : TCP_ERR_REFUSED)) {
			snprintf(why, whylen, "expected error %s, got errored=%d err=%d",
			         ev == EV_ERR_RESET ? "RESET" : "REFUSED", err, (int)p->app.err);
			return false;
		}
		return true;
	}
	return true;
}

/* Apply one step and check it; `phase` says whether it is setup or the row itself. */
static void run_step(struct peer *p, const struct step *st, const char *phase)
{
	struct tl *t = p->t;
	unsigned from = p->nlog, accepts0 = p->lst.accepts;
	bool connected0 = p->app.connected, errored0 = p->app.errored;
	const char *before = state_of(p), *after;
	char why[160] = "";
	bool ok = true;

	if (st->delay_pct_msl != 0) {
		tl_run_for(t, t->s[1].w->tcp->cfg.msl_ns * st->delay_pct_msl / 100);
		from = p->nlog;
		before = state_of(p);
	}
	switch (st->act) {
	case A_SEG:
		tl_inject(t, 1, TL_IP0, TL_IP1, p->pport, p->lport, st->flags,
		          p->irs + (uint32_t)st->seq, (st->flags & ACK) ? p->iss + (uint32_t)st->ack : 0,
		          8192, NULL, NULL, 0);
		tl_run_for(t, STEP_NS);
		break;
	case A_CLOSE:
		assert_non_null(p->app.c);
		p->app.handle_released = true;
		tcp_close(p->app.c);
		tl_run_for(t, STEP_NS);
		break;
	case A_2MSL:
		tl_run_for(t, 2 * t->s[1].w->tcp->cfg.msl_ns + 100 * TL_MS);
		break;
	}
	/* Learn the stack's ISS from its first SYN (passive: the SYN-ACK). */
	if (!p->iss_known)
		for (unsigned i = from; i < p->nlog && i < LOG_MAX; i++)
			if (p->log[i].flags & SYN) {
				p->iss = p->log[i].seq;
				p->iss_known = true;
				break;
			}
	after = state_of(p);
	if (strcmp(after, st->state) != 0) {
		snprintf(why, sizeof(why), "state %s, expected %s", after, st->state);
		ok = false;
	}
	if (ok)
		ok = snd_matches(p, st, from, why, sizeof(why));
	if (ok)
		ok = ev_matches(p, st->ev, accepts0, connected0, errored0, why, sizeof(why));
	if (!ok) {
		print_message("# FAIL [%s] %s: from %s: %s\n", cur_row->name, phase, before, why);
		dump_log(p, from);
		fail_msg("%s: %s", phase, why);
	}
}

static void reach(struct peer *p, enum start s)
{
	struct tl *t = p->t;

	if (s == ST_LISTEN) {
		p->passive = true;
		p->lport = LST_PORT;
		p->lst.accept_into = &p->app;
		assert_int_equal(tcp_listen(t->s[1].w, 0, LST_PORT, &tl_app_ops, &p->lst), PG_OK);
		return;
	}
	if (s == ST_SYN_SENT) {
		struct step st = {.state = "SYN_SENT", .snd = S_SYN, .snd_seq = 0, .snd_ack = ANY};
		uint32_t la, ra;
		uint16_t rp;
		char why[160] = "";

		p->passive = false;
		assert_int_equal(tcp_connect(t->s[1].w, TL_IP0, p->pport, &tl_app_ops, &p->app,
		                             &p->app.c),
		                 PG_OK);
		tcp_conn_tuple(p->app.c, &la, &p->lport, &ra, &rp);
		tl_run_for(t, STEP_NS);
		assert_true(p->nlog >= 1);
		p->iss = p->log[0].seq;
		p->iss_known = true;
		if (strcmp(state_of(p), "SYN_SENT") != 0 || !snd_matches(p, &st, 0, why, sizeof(why))) {
			print_message("# FAIL [%s] setup connect: %s state %s\n", cur_row->name, why,
			              state_of(p));
			dump_log(p, 0);
			fail_msg("setup connect");
		}
		return;
	}
	reach(p, starts[s].parent);
	{
		char phase[64];

		snprintf(phase, sizeof(phase), "setup to %s", starts[s].name);
		run_step(p, &starts[s].step, phase);
	}
}

static bool no_conns(struct tl *t, void *arg)
{
	(void)arg;
	return tcp_conn_count(t->s[0].w) == 0 && tcp_conn_count(t->s[1].w) == 0;
}

/* SYN_RECEIVED + RST: the listener must still answer a new SYN. */
static void post_listener_still_there(struct peer *p, const struct row *r)
{
	struct tl *t = p->t;
	unsigned from = p->nlog;

	(void)r;
	tl_inject(t, 1, TL_IP0, TL_IP1, p->pport + 1, LST_PORT, SYN, 777, 0, 8192, NULL, NULL, 0);
	tl_run_for(t, STEP_NS);
	if (p->nlog != from + 1 || p->log[from].flags != (SYN | ACK) ||
	    p->log[from].dport != p->pport + 1) {
		print_message("# FAIL [%s] listener gone after RST in SYN_RECEIVED\n", cur_row->name);
		dump_log(p, from);
		fail_msg("listener no longer answers SYN");
	}
	/* Free that half-open connection again. */
	tl_inject(t, 1, TL_IP0, TL_IP1, p->pport + 1, LST_PORT, RST, 778, 0, 8192, NULL, NULL, 0);
	tl_run_for(t, STEP_NS);
}

/*
 * RFC 9293 §3.10.7.4 (TIME-WAIT, FIN bit): acknowledge it and restart the
 * 2 MSL timeout. The retransmission came 1.5 MSL (+0.05 s) into TIME_WAIT;
 * 0.7 MSL later the original 2 MSL are over but the restarted ones are
 * not, and 1.5 MSL after that they are.
 */
static void post_time_wait_restarted(struct peer *p, const struct row *r)
{
	struct tl *t = p->t;
	uint64_t msl = t->s[1].w->tcp->cfg.msl_ns;

	(void)r;
	tl_run_for(t, msl * 7 / 10);
	if (strcmp(state_of(p), "TIME_WAIT") != 0) {
		print_message("# FAIL [%s] 2MSL not restarted by the retransmitted FIN: %s "
		              "2.2 MSL after entering TIME_WAIT\n",
		              cur_row->name, state_of(p));
		fail_msg("2MSL not restarted");
	}
	tl_run_for(t, msl * 3 / 2);
	assert_string_equal(state_of(p), "NONE");
}

static void test_row(void **state)
{
	struct tl *t = *state;
	const struct row *r = cur_row;
	struct peer *p = &the_peer;

	memset(p, 0, sizeof(*p));
	p->t = t;
	p->pport = PEER_PORT;
	p->irs = PEER_IRS;
	t->tap = tap_log;
	t->tap_arg = p;
	assert_int_equal(tcp_conn_count(t->s[1].w), 0);

	reach(p, r->from);
	run_step(p, &r->step, "row");
	if (r->post != NULL)
		r->post(p, r);

	/* Back to nothing: release the handle, stop listening, let TIME_WAIT run out. */
	if (p->app.c != NULL && !p->app.handle_released) {
		p->app.handle_released = true;
		tcp_abort(p->app.c);
	}
	if (p->passive)
		tcp_unlisten(t->s[1].w, 0, LST_PORT);
	/*
	 * An orphan still closing (LAST_ACK, FIN_WAIT_*, CLOSING) would keep
	 * retransmitting its FIN to a peer that never answers: reset it at
	 * RCV.NXT, which is IRS+1 or IRS+2 here (the other one is out of window).
	 */
	if (strcmp(state_of(p), "NONE") != 0 && strcmp(state_of(p), "TIME_WAIT") != 0)
		for (uint32_t k = 1; k <= 2; k++)
			tl_inject(t, 1, TL_IP0, TL_IP1, p->pport, p->lport, RST, p->irs + k, 0, 8192,
			          NULL, NULL, 0);
	assert_true(tl_run(t, no_conns, NULL, 10 * TL_S));
	assert_int_equal(tcp_buf_bytes(t->s[1].w), 0);
	assert_int_equal(tcp_buf_bytes(t->s[0].w), 0);
	t->tap = NULL;
	/* mbufs and armed timers: tl_teardown checks them against the baseline. */
}

static int row_setup(void **state)
{
	cur_row = *state;
	return tl_setup(state);
}

int main(void)
{
	struct CMUnitTest tests[NROWS];
	int rc;

	for (unsigned i = 0; i < NROWS; i++)
		tests[i] = (struct CMUnitTest){.name = rows[i].name,
		                               .test_func = test_row,
		                               .setup_func = row_setup,
		                               .teardown_func = tl_teardown,
		                               .initial_state = (void *)(uintptr_t)&rows[i]};
	tl_eal_init();
	rc = cmocka_run_group_tests_name("tcp_states", tests, NULL, NULL);
	tl_eal_fini();
	return rc;
}
