/*
 * test_tcp_listen.c - the listener side under pressure: keyed ISNs (RFC
 * 6528) as the stacks use them, SYN cookies (RFC 4987) with and without
 * timestamps carrying the right MSS, window scale and SACK-permitted,
 * forged cookies refused, and a SYN flood from spoofed sources during
 * which a legitimate client still connects and completes a transfer.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <rte_ip.h>
#include <rte_tcp.h>

#include "result.h"
#include "tcp_harness.h"
#include "net/tcp_isn.h"

#define SRV_PORT 25

static bool both_connected(struct tl *t, void *arg)
{
	struct tl_app *a = arg;

	(void)t;
	return a[0].connected && a[1].connected;
}

static bool transfer_done(struct tl *t, void *arg)
{
	struct tl_app *a = arg;

	(void)t;
	return (a[0].eof && a[1].eof) || a[0].errored || a[1].errored || a[0].rx_bad || a[1].rx_bad;
}

static bool no_conns(struct tl *t, void *arg)
{
	(void)arg;
	return tcp_conn_count(t->s[0].w) == 0 && tcp_conn_count(t->s[1].w) == 0;
}

/* A connection from side 0 to side 1 that sends `n` bytes each way, then closes. */
struct xfer {
	struct tl_app a[2], lst;
	uint64_t t_connect; /* virtual time of tcp_connect */
};

static void xfer_open(struct tl *t, struct xfer *x, uint64_t n)
{
	memset(x, 0, sizeof(*x));
	x->lst.accept_into = &x->a[1];
	x->a[1].side = 1;
	for (unsigned i = 0; i < 2; i++) {
		x->a[i].t = t;
		x->a[i].to_send = n;
		x->a[i].shutdown_when_sent = true;
		x->a[i].tx_seed = 40 + i;
		x->a[i].rx_seed = 41 - i;
	}
	if (tcp_listener_find(t->s[1].w->tcp, 0, rte_cpu_to_be_16(SRV_PORT)) == NULL)
		assert_int_equal(tcp_listen(t->s[1].w, 0, SRV_PORT, &tl_app_ops, &x->lst), PG_OK);
	x->t_connect = t->now;
	assert_int_equal(
	    tcp_connect(t->s[0].w, TL_IP1, SRV_PORT, &tl_app_ops, &x->a[0], &x->a[0].c), PG_OK);
}

static void xfer_finish(struct tl *t, struct xfer *x, uint64_t n)
{
	assert_true(tl_run(t, both_connected, x->a, 10 * TL_S));
	tl_app_pump(&x->a[1]);
	assert_true(tl_run(t, transfer_done, x->a, 120 * TL_S));
	for (unsigned i = 0; i < 2; i++) {
		assert_false(x->a[i].errored);
		assert_int_equal(x->a[i].rx_bad, 0);
		assert_int_equal(x->a[i].received, n);
	}
	tl_run_for(t, 200 * TL_MS);
	tcp_close(x->a[0].c);
	tcp_close(x->a[1].c);
}

/* When side 0 last handed a SYN to the link. */
static bool tap_syn_time(struct tl *t, unsigned from, struct rte_mbuf *m, void *arg)
{
	const struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, const struct rte_ipv4_hdr *, 14);
	const struct rte_tcp_hdr *th = (const struct rte_tcp_hdr *)(ip + 1);

	if (from == 0 && rte_pktmbuf_data_len(m) >= 54 && ip->next_proto_id == IPPROTO_TCP &&
	    (th->tcp_flags & RTE_TCP_SYN_FLAG))
		*(uint64_t *)arg = t->now;
	return true;
}

/*
 * RFC 6528 as wired: the ISS of either side is tcp_isn() of its own key
 * with OUR address and port first, so a new incarnation of a tuple starts
 * Δt / 4 µs above the old one while different tuples look unrelated.
 */
static void test_isn_keyed(void **state)
{
	struct tl *t = *state;
	const struct tcp_isn_key *k0 = &t->s[0].w->tcp->isn_key;
	const struct tcp_isn_key *k1 = &t->s[1].w->tcp->isn_key;
	uint32_t srv_iss[2], f[64];
	uint64_t t_syn[2];

	/* One client port only, so the second connection reuses the tuple. */
	t->s[0].w->tcp->cfg.ephemeral_lo = t->s[0].w->tcp->cfg.ephemeral_hi = 41000;
	t->s[0].w->tcp->port_cursor = 41000;
	assert_true(k0->k0 != k1->k0 || k0->k1 != k1->k1);
	t->tap = tap_syn_time;
	for (unsigned r = 0; r < 2; r++) {
		struct xfer x;
		uint32_t la, ra;
		uint16_t lp, rp;

		t->tap_arg = &t_syn[r];
		xfer_open(t, &x, 1000);
		tcp_conn_tuple(x.a[0].c, &la, &lp, &ra, &rp);
		assert_int_equal(lp, 41000);
		/* Active side: exactly tcp_isn(key, ours, theirs, our port, their port, now). */
		if (r == 0)
			assert_int_equal(x.a[0].c->iss,
			                 tcp_isn(k0, TL_IP0, TL_IP1, rte_cpu_to_be_16(lp),
			                         rte_cpu_to_be_16(rp), x.t_connect));
		assert_true(tl_run(t, both_connected, x.a, 10 * TL_S));
		/* Passive side: the SYN arrived one link delay (1 ms + serialization) after it
		 * left. */
		t_syn[r] += 1 * TL_MS;
		srv_iss[r] = x.a[1].c->iss;
		{
			uint32_t want = tcp_isn(k1, TL_IP1, TL_IP0, rte_cpu_to_be_16(rp),
			                        rte_cpu_to_be_16(lp), t_syn[r]);
			int32_t d = (int32_t)(srv_iss[r] - want);

			assert_true(d >= -5 && d <= 5); /* within 20 µs of the estimate */
		}
		xfer_finish(t, &x, 1000);
		tl_run_for(t, 700 * TL_MS);
	}
	/* Same tuple later: the server's ISS moved on by the clock, 1 per 4 µs. */
	{
		uint32_t adv = srv_iss[1] - srv_iss[0];
		uint32_t want = (uint32_t)((t_syn[1] - t_syn[0]) / TCP_ISN_TICK_NS);

		printf("# same tuple: ISS advanced %u, clock says %u\n", adv, want);
		assert_true(adv > want - 10 && adv < want + 10);
	}
	/* Different tuples at the same instant: the keyed part looks random. */
	for (unsigned i = 0; i < 64; i++)
		f[i] = tcp_isn(k1, TL_IP1, TL_IP0, rte_cpu_to_be_16(SRV_PORT),
		               rte_cpu_to_be_16((uint16_t)(50000 + i)), t->now);
	{
		unsigned close_pairs = 0, bits = 0;

		for (unsigned i = 0; i + 1 < 64; i++) {
			uint32_t d = f[i + 1] - f[i];

			close_pairs += d < (1u << 24) || d > 0u - (1u << 24);
			bits += (unsigned)__builtin_popcount(f[i] ^ f[i + 1]);
		}
		/* Expect ~0.5 pairs within 2^24 and ~16 differing bits per pair. */
		assert_true(close_pairs <= 4);
		assert_true(bits > 63 * 12 && bits < 63 * 20);
	}
	/* And another key gives other ISNs for the same tuple and time. */
	assert_true(tcp_isn(k0, TL_IP1, TL_IP0, 1, 2, t->now) !=
	            tcp_isn(k1, TL_IP1, TL_IP0, 1, 2, t->now));
	assert_true(tl_run(t, no_conns, NULL, 10 * TL_S));
	tcp_unlisten(t->s[1].w, 0, SRV_PORT);
}

/* A cookie handshake (backlog 0: every SYN gets a cookie), then 1 MiB each way. */
static void cookie_xfer(struct tl *t, struct xfer *x)
{
	t->s[1].w->tcp->cfg.syn_backlog = 0;
	xfer_open(t, x, 1 << 20);
	assert_true(tl_run(t, both_connected, x->a, 10 * TL_S));
	assert_int_equal(CTR_VAL(t, 1, tcp_syncookie_tx), 1);
	assert_int_equal(CTR_VAL(t, 1, tcp_syncookie_ok), 1);
	assert_int_equal(CTR_VAL(t, 1, tcp_syncookie_bad), 0);
	/* The server kept no state for the SYN: only the connection made from the ACK. */
	assert_int_equal(CTR_VAL(t, 1, tcp_conn_alloc), 1);
	assert_int_equal(x->a[1].c->iss, x->a[0].c->irs);
}

static void test_cookie_with_timestamps(void **state)
{
	struct tl *t = *state;
	struct tcp_conn *s, *c;
	struct xfer x;

	/* The client's MTU 1340 (MSS 1300) and a 1 MiB buffer (window scale 5). */
	t->s[0].nc.ports[0].mtu = 1340;
	t->s[0].w->tcp->cfg.rcvbuf = 1 << 20;
	cookie_xfer(t, &x);
	c = x.a[0].c;
	s = x.a[1].c;
	assert_true(s->ts_ok && c->ts_ok);
	assert_true(s->ws_ok && c->ws_ok);
	assert_int_equal(c->rcv_wscale, 5);
	assert_int_equal(s->snd_wscale, 5);             /* from the TSecr */
	assert_int_equal(s->rcv_wscale, c->snd_wscale); /* recomputed from config */
	assert_int_equal(s->rcv_wscale, tcp_rcv_wscale_for(256 * 1024));
	assert_true(s->sack_ok && c->sack_ok);
	assert_int_equal(s->peer_mss, 1300); /* the cookie's MSS class */
	assert_int_equal(s->mss, 1300 - 12);
	assert_int_equal(c->mss, 1300 - 12);
	xfer_finish(t, &x, 1 << 20);
	assert_true(tl_run(t, no_conns, NULL, 10 * TL_S));
	tcp_unlisten(t->s[1].w, 0, SRV_PORT);
}

static void test_cookie_without_timestamps(void **state)
{
	struct tl *t = *state;
	struct tcp_conn *s, *c;
	struct xfer x;

	t->s[0].w->tcp->cfg.timestamps = false;
	cookie_xfer(t, &x);
	c = x.a[0].c;
	s = x.a[1].c;
	/* MSS only: no timestamps, so no window scale and no SACK on either side. */
	assert_false(s->ts_ok || c->ts_ok);
	assert_false(s->ws_ok || c->ws_ok);
	assert_int_equal(s->snd_wscale + s->rcv_wscale + c->snd_wscale + c->rcv_wscale, 0);
	assert_false(s->sack_ok || c->sack_ok);
	assert_int_equal(s->mss, 1460);
	assert_int_equal(c->mss, 1460);
	xfer_finish(t, &x, 1 << 20);
	assert_true(tl_run(t, no_conns, NULL, 10 * TL_S));
	tcp_unlisten(t->s[1].w, 0, SRV_PORT);
}

/* What side 1 answered last: flags and sequence numbers. */
struct seen {
	unsigned n;
	uint8_t flags;
	uint32_t seq, ack;
};

static bool tap_last(struct tl *t, unsigned from, struct rte_mbuf *m, void *arg)
{
	struct seen *s = arg;
	const struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, const struct rte_ipv4_hdr *, 14);
	const struct rte_tcp_hdr *th = (const struct rte_tcp_hdr *)(ip + 1);

	(void)t;
	if (from != 1 || rte_pktmbuf_data_len(m) < 54 || ip->next_proto_id != IPPROTO_TCP)
		return true;
	s->n++;
	s->flags = th->tcp_flags;
	s->seq = rte_be_to_cpu_32(th->sent_seq);
	s->ack = rte_be_to_cpu_32(th->recv_ack);
	return false; /* the test speaks for the client */
}

/* Forged, replayed-late and tampered cookies make no connection. */
static void test_cookie_forged(void **state)
{
	struct tl *t = *state;
	struct tl_app lst;
	struct seen sn;
	uint32_t iss, ts[2];

	memset(&lst, 0, sizeof(lst));
	memset(&sn, 0, sizeof(sn));
	t->s[1].w->tcp->cfg.syn_backlog = 0;
	assert_int_equal(tcp_listen(t->s[1].w, 0, SRV_PORT, &tl_app_ops, &lst), PG_OK);
	/* An ACK before any cookie was sent is not even checked: a plain RST. */
	tl_inject(t, 1, TL_IP0, TL_IP1, 1234, SRV_PORT, RTE_TCP_ACK_FLAG, 1001, 77, 1000, NULL,
	          NULL, 0);
	tl_run_for(t, 5 * TL_MS); /* ARP first, then the RST leaves */
	assert_int_equal(CTR_VAL(t, 1, tcp_syncookie_bad), 0);
	assert_int_equal(CTR_VAL(t, 1, tcp_rst_tx), 1);
	t->tap = tap_last;
	t->tap_arg = &sn;
	ts[0] = 5000;
	ts[1] = 0;
	tl_inject(t, 1, TL_IP0, TL_IP1, 1234, SRV_PORT, RTE_TCP_SYN_FLAG, 1000, 0, 1000, ts, NULL,
	          0);
	tl_run_for(t, 5 * TL_MS);
	assert_int_equal(sn.n, 1);
	assert_int_equal(sn.flags, RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG);
	assert_int_equal(sn.ack, 1001);
	iss = sn.seq;
	assert_int_equal(tcp_conn_count(t->s[1].w), 0);
	/* Wrong cookie, wrong peer ISN, wrong port: refused, RST. */
	tl_inject(t, 1, TL_IP0, TL_IP1, 1234, SRV_PORT, RTE_TCP_ACK_FLAG, 1001, iss + 2, 1000, NULL,
	          NULL, 0);
	tl_inject(t, 1, TL_IP0, TL_IP1, 1234, SRV_PORT, RTE_TCP_ACK_FLAG, 1002, iss + 1, 1000, NULL,
	          NULL, 0);
	tl_inject(t, 1, TL_IP0, TL_IP1, 1235, SRV_PORT, RTE_TCP_ACK_FLAG, 1001, iss + 1, 1000, NULL,
	          NULL, 0);
	assert_int_equal(CTR_VAL(t, 1, tcp_syncookie_bad), 3);
	assert_int_equal(tcp_conn_count(t->s[1].w), 0);
	/* A TSecr with the reserved bit set cannot be one of ours. */
	ts[0] = 5001;
	ts[1] = 0x20;
	tl_inject(t, 1, TL_IP0, TL_IP1, 1234, SRV_PORT, RTE_TCP_ACK_FLAG, 1001, iss + 1, 1000, ts,
	          NULL, 0);
	assert_int_equal(CTR_VAL(t, 1, tcp_syncookie_bad), 4);
	assert_int_equal(tcp_conn_count(t->s[1].w), 0);
	/* Too late: cookies live 64 to 128 s. */
	tl_run_for(t, 130 * TL_S);
	tl_inject(t, 1, TL_IP0, TL_IP1, 1234, SRV_PORT, RTE_TCP_ACK_FLAG, 1001, iss + 1, 1000, NULL,
	          NULL, 0);
	assert_int_equal(tcp_conn_count(t->s[1].w), 0);
	/* Only the right one works (a fresh SYN, its cookie, its ACK). */
	tl_inject(t, 1, TL_IP0, TL_IP1, 1234, SRV_PORT, RTE_TCP_SYN_FLAG, 7000, 0, 1000, NULL, NULL,
	          0);
	tl_run_for(t, 5 * TL_MS);
	iss = sn.seq;
	tl_inject(t, 1, TL_IP0, TL_IP1, 1234, SRV_PORT, RTE_TCP_ACK_FLAG, 7001, iss + 1, 1000, NULL,
	          NULL, 0);
	assert_int_equal(CTR_VAL(t, 1, tcp_syncookie_ok), 1);
	assert_int_equal(tcp_conn_count(t->s[1].w), 1);
	assert_int_equal(lst.accepts, 1); /* handed to the listener, which closes it */
	tl_inject(t, 1, TL_IP0, TL_IP1, 1234, SRV_PORT, RTE_TCP_RST_FLAG, 7001, 0, 0, NULL, NULL,
	          0);
	tl_run_for(t, 10 * TL_MS);
	assert_true(tl_run(t, no_conns, NULL, 10 * TL_S));
	t->tap = NULL;
	tcp_unlisten(t->s[1].w, 0, SRV_PORT);
}

/*
 * A SYN flood: thousands of SYNs from spoofed sources and ports at a
 * listener with a backlog of 16. The half-open table stays bounded, the
 * legitimate client gets a cookie and completes 1 MiB each way, and
 * everything returns to zero once the half-open entries time out.
 */
static void test_syn_flood(void **state)
{
	struct tl *t = *state;
	enum { SYNS = 5000, BATCH = 50 };
	struct xfer x;
	unsigned sent = 0;
	uint32_t max_conns = 0;
	bool client_started = false;

	t->s[1].w->tcp->cfg.syn_backlog = 16;
	memset(&x, 0, sizeof(x));
	assert_int_equal(tcp_listen(t->s[1].w, 0, SRV_PORT, &tl_app_ops, &x.lst), PG_OK);
	while (sent < SYNS) {
		for (unsigned i = 0; i < BATCH; i++, sent++) {
			/* 198.18.0.3 .. 198.18.0.254, random ports and ISNs, no options. */
			uint32_t src = IP4(198, 18, 0, 3 + tl_rand(t) % 252);
			uint16_t sport = (uint16_t)(1024 + tl_rand(t) % 60000);

			tl_inject(t, 1, src, TL_IP1, sport, SRV_PORT, RTE_TCP_SYN_FLAG,
			          (uint32_t)tl_rand(t), 0, 65535, NULL, NULL, 0);
		}
		if (tcp_conn_count(t->s[1].w) > max_conns)
			max_conns = tcp_conn_count(t->s[1].w);
		if (!client_started && sent >= SYNS / 2) {
			/* Mid-flood: the real client (the listener's user is x.lst). */
			xfer_open(t, &x, 1 << 20);
			client_started = true;
		}
		tl_run_for(t, 2 * TL_MS);
	}
	xfer_finish(t, &x, 1 << 20);
	printf("# flood: %u SYNs, cookies sent %" PRIu64 " accepted %" PRIu64 " refused %" PRIu64
	       ", half-open peak %u\n",
	       SYNS, CTR_VAL(t, 1, tcp_syncookie_tx), CTR_VAL(t, 1, tcp_syncookie_ok),
	       CTR_VAL(t, 1, tcp_syncookie_bad), max_conns);
	assert_true(max_conns <= 16 + 1);
	assert_true(CTR_VAL(t, 1, tcp_syncookie_tx) >= SYNS - 16);
	assert_int_equal(CTR_VAL(t, 1, tcp_syncookie_ok), 1);
	/* The spoofed half-open entries time out (SYN-ACK retries), then nothing is left. */
	assert_true(tl_run(t, no_conns, NULL, 200 * TL_S));
	tcp_unlisten(t->s[1].w, 0, SRV_PORT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_isn_keyed, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_cookie_with_timestamps, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_cookie_without_timestamps, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_cookie_forged, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_syn_flood, tl_setup, tl_teardown),
	};
	int rc;

	tl_eal_init();
	rc = cmocka_run_group_tests_name("tcp_listen", tests, NULL, NULL);
	tl_eal_fini();
	return rc;
}
