/*
 * test_tcp_input.c - crafted segments injected into one stack of an
 * established pair: RFC 5961 (RST exactly at RCV.NXT resets, in window
 * gets a challenge ACK, outside is dropped; SYN on a live connection gets
 * a challenge ACK; the rate limit; ACK of unsent data), RFC 7323 PAWS
 * (old timestamp dropped, no timestamp tolerated), RFC 9293 §3.10.7.1
 * RSTs for segments to no connection.
 */
#include <string.h>

#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_tcp.h>

#include "result.h"
#include "tcp_harness.h"

#define SRV_PORT 25

/* What the last TCP segment sent by a side looked like. */
struct seen {
	unsigned n;
	uint8_t flags;
	uint32_t seq, ack;
	uint16_t sport, dport;
	unsigned nsack; /* RFC 2018 blocks on it */
	uint32_t sack[4][2];
};

static bool tap_last(struct tl *t, unsigned from, struct rte_mbuf *m, void *arg)
{
	struct seen *s = arg;
	const struct rte_ipv4_hdr *ip = rte_pktmbuf_mtod_offset(m, const struct rte_ipv4_hdr *, 14);
	const struct rte_tcp_hdr *th = (const struct rte_tcp_hdr *)(ip + 1);

	(void)t;
	if (from != 1 || rte_pktmbuf_data_len(m) < 54 || ip->next_proto_id != IPPROTO_TCP)
		return true;
	s[0].n++;
	s[0].flags = th->tcp_flags;
	s[0].seq = rte_be_to_cpu_32(th->sent_seq);
	s[0].ack = rte_be_to_cpu_32(th->recv_ack);
	s[0].sport = rte_be_to_cpu_16(th->src_port);
	s[0].dport = rte_be_to_cpu_16(th->dst_port);
	s[0].nsack = 0;
	{
		const uint8_t *o = (const uint8_t *)(th + 1);
		unsigned olen = (unsigned)(th->data_off >> 4) * 4 - 20;

		for (unsigned i = 0; i < olen;) {
			if (o[i] <= 1) {
				i++;
				continue;
			}
			if (o[i] == 5)
				for (unsigned k = 0; k < (o[i + 1] - 2u) / 8 && k < 4; k++) {
					memcpy(s[0].sack[k], o + i + 2 + 8 * k, 8);
					s[0].sack[k][0] = rte_be_to_cpu_32(s[0].sack[k][0]);
					s[0].sack[k][1] = rte_be_to_cpu_32(s[0].sack[k][1]);
					s[0].nsack = k + 1;
				}
			i += o[i + 1];
		}
	}
	return true;
}

static bool both_connected(struct tl *t, void *arg)
{
	struct tl_app *a = arg;

	(void)t;
	return a[0].connected && a[1].connected;
}

static bool no_conns(struct tl *t, void *arg)
{
	(void)arg;
	return tcp_conn_count(t->s[0].w) == 0 && tcp_conn_count(t->s[1].w) == 0;
}

struct pair {
	struct tl_app a[2], lst;
	uint16_t cport; /* client's port, host order */
};

static void open_pair(struct tl *t, struct pair *p)
{
	uint32_t la, ra;
	uint16_t rp;

	memset(p, 0, sizeof(*p));
	p->lst.accept_into = &p->a[1];
	assert_int_equal(tcp_listen(t->s[1].w, 0, SRV_PORT, &tl_app_ops, &p->lst), PG_OK);
	assert_int_equal(tcp_connect(t->s[0].w, TL_IP1, SRV_PORT, &tl_app_ops, &p->a[0], &p->a[0].c),
	                 PG_OK);
	assert_true(tl_run(t, both_connected, p->a, 10 * TL_S));
	tcp_conn_tuple(p->a[0].c, &la, &p->cport, &ra, &rp);
	tl_run_for(t, 100 * TL_MS); /* let delayed ACKs settle */
}

static void close_pair(struct tl *t, struct pair *p)
{
	if (!p->a[0].handle_released)
		tcp_abort(p->a[0].c);
	if (!p->a[1].handle_released)
		tcp_abort(p->a[1].c);
	assert_true(tl_run(t, no_conns, NULL, 5 * TL_S));
	tcp_unlisten(t->s[1].w, 0, SRV_PORT);
}

/* Inject into the server (side 1) as if from the client. */
static void to_server(struct tl *t, struct pair *p, uint8_t flags, uint32_t seq, uint32_t ack,
                      const uint32_t *ts, const void *data, uint32_t len)
{
	tl_inject(t, 1, TL_IP0, TL_IP1, p->cport, SRV_PORT, flags, seq, ack, 1000, ts, data, len);
	tl_run_for(t, 5 * TL_MS);
}

static void test_rst_rfc5961(void **state)
{
	struct tl *t = *state;
	struct pair p;
	struct tcp_conn *c;
	uint64_t ch;

	open_pair(t, &p);
	c = p.a[1].c;
	ch = CTR_VAL(t, 1, tcp_challenge_ack_tx);
	/* In the window but not at RCV.NXT: challenge ACK, connection lives (§3.2). */
	to_server(t, &p, RTE_TCP_RST_FLAG, c->rcv_nxt + 1000, 0, NULL, NULL, 0);
	assert_int_equal(CTR_VAL(t, 1, tcp_challenge_ack_tx), ch + 1);
	assert_string_equal(tcp_state_name_of(c), "ESTABLISHED");
	/* Outside the window: silently dropped. */
	to_server(t, &p, RTE_TCP_RST_FLAG, c->rcv_nxt + 0x40000000u, 0, NULL, NULL, 0);
	to_server(t, &p, RTE_TCP_RST_FLAG, c->rcv_nxt - 1, 0, NULL, NULL, 0);
	assert_int_equal(CTR_VAL(t, 1, tcp_drop_rst_oow), 2);
	assert_int_equal(CTR_VAL(t, 1, tcp_challenge_ack_tx), ch + 1);
	assert_false(p.a[1].errored);
	/* Exactly RCV.NXT: the connection is reset (RFC 9293 §3.10.7.4 second). */
	to_server(t, &p, RTE_TCP_RST_FLAG, c->rcv_nxt, 0, NULL, NULL, 0);
	assert_true(p.a[1].errored);
	assert_int_equal(p.a[1].err, TCP_ERR_RESET);
	assert_string_equal(tcp_state_name_of(c), "CLOSED");
	assert_int_equal(tcp_recv(c, NULL, 0), PG_ERROR);
	close_pair(t, &p);
}

static void test_syn_on_live_connection(void **state)
{
	struct tl *t = *state;
	struct pair p;
	uint64_t ch;

	open_pair(t, &p);
	ch = CTR_VAL(t, 1, tcp_challenge_ack_tx);
	/* RFC 5961 §4.2: in or out of window, a SYN gets a challenge ACK only. */
	to_server(t, &p, RTE_TCP_SYN_FLAG, p.a[1].c->rcv_nxt + 5, 0, NULL, NULL, 0);
	to_server(t, &p, RTE_TCP_SYN_FLAG, p.a[1].c->rcv_nxt - 100, 0, NULL, NULL, 0);
	to_server(t, &p, RTE_TCP_SYN_FLAG, p.a[1].c->rcv_nxt + 0x40000000u, 0, NULL, NULL, 0);
	assert_int_equal(CTR_VAL(t, 1, tcp_rx_syn_challenged), 3);
	assert_int_equal(CTR_VAL(t, 1, tcp_challenge_ack_tx), ch + 3);
	assert_string_equal(tcp_state_name_of(p.a[1].c), "ESTABLISHED");
	assert_int_equal(CTR_VAL(t, 1, tcp_rst_rx), 0);
	close_pair(t, &p);
}

static void test_challenge_ack_rate_limit(void **state)
{
	struct tl *t = *state;
	struct pair p;
	uint64_t ch;

	open_pair(t, &p);
	t->s[1].w->tcp->cfg.challenge_ack_per_s = 5;
	/* Stay within one second of virtual time. */
	t->now = (t->now / TL_S + 1) * TL_S;
	tl_run_for(t, 1);
	ch = CTR_VAL(t, 1, tcp_challenge_ack_tx);
	for (unsigned i = 0; i < 20; i++)
		tl_inject(t, 1, TL_IP0, TL_IP1, p.cport, SRV_PORT, RTE_TCP_RST_FLAG,
		          p.a[1].c->rcv_nxt + 100 + i, 0, 1000, NULL, NULL, 0);
	assert_int_equal(CTR_VAL(t, 1, tcp_challenge_ack_tx), ch + 5);
	assert_int_equal(CTR_VAL(t, 1, tcp_challenge_ack_limited), 15);
	close_pair(t, &p);
}

/* RFC 5961 §5.2 / RFC 9293: an ACK for data never sent is not processed. */
static void test_ack_of_unsent_data(void **state)
{
	struct tl *t = *state;
	struct pair p;
	struct tcp_conn *c;
	uint32_t una;

	open_pair(t, &p);
	c = p.a[1].c;
	una = c->snd_una;
	to_server(t, &p, RTE_TCP_ACK_FLAG, c->rcv_nxt, c->snd_max + 100000, NULL, NULL, 0);
	assert_int_equal(CTR_VAL(t, 1, tcp_drop_ack_unsent), 1);
	assert_int_equal(c->snd_una, una);
	close_pair(t, &p);
}

/* RFC 7323 §5: an old timestamp is dropped (and ACKed); no timestamp is tolerated. */
static void test_paws(void **state)
{
	struct tl *t = *state;
	struct pair p;
	struct tcp_conn *c;
	uint32_t ts[2];
	uint64_t rx;

	open_pair(t, &p);
	c = p.a[1].c;
	p.a[1].rx_seed = 1;
	assert_true(c->ts_ok);
	rx = p.a[1].received;
	ts[0] = c->ts_recent - 1000; /* older than what the peer last sent */
	ts[1] = 0;
	{
		uint8_t b[10];

		for (unsigned i = 0; i < sizeof(b); i++)
			b[i] = tl_pattern(i, 1);
		to_server(t, &p, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, c->rcv_nxt, c->snd_nxt, ts, b,
		          sizeof(b));
		assert_int_equal(CTR_VAL(t, 1, tcp_drop_paws), 1);
		assert_int_equal(p.a[1].received, rx);
		/* A newer timestamp is accepted and becomes TS.Recent. */
		ts[0] = c->ts_recent + 5;
		to_server(t, &p, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, c->rcv_nxt, c->snd_nxt, ts, b,
		          5);
		assert_int_equal(p.a[1].received, rx + 5);
		assert_int_equal(c->ts_recent, ts[0]);
		/* No timestamp at all (a peer that stopped sending them): accepted. */
		to_server(t, &p, RTE_TCP_ACK_FLAG | RTE_TCP_PSH_FLAG, c->rcv_nxt, c->snd_nxt, NULL,
		          b + 5, 5);
		assert_int_equal(p.a[1].received, rx + 10);
		assert_int_equal(p.a[1].rx_bad, 0);
	}
	assert_int_equal(CTR_VAL(t, 1, tcp_drop_paws), 1);
	close_pair(t, &p);
}

/*
 * RFC 2018 §4: out-of-order data is acknowledged at once with SACK
 * blocks, the block holding the latest segment first; once the hole
 * fills, the ACK covers everything and carries no blocks.
 */
static void test_sack_blocks_sent(void **state)
{
	struct tl *t = *state;
	struct pair p;
	struct tcp_conn *c;
	struct seen sn;
	uint8_t b[3000];
	uint32_t base;

	open_pair(t, &p);
	c = p.a[1].c;
	assert_true(c->sack_ok && p.a[0].c->sack_ok);
	memset(&sn, 0, sizeof(sn));
	t->tap = tap_last;
	t->tap_arg = &sn;
	base = c->rcv_nxt;
	for (unsigned i = 0; i < sizeof(b); i++)
		b[i] = tl_pattern(p.a[1].received + i, p.a[1].rx_seed);
	to_server(t, &p, RTE_TCP_ACK_FLAG, base + 1000, c->snd_nxt, NULL, b + 1000, 100);
	assert_int_equal(sn.ack, base);
	assert_int_equal(sn.nsack, 1);
	assert_int_equal(sn.sack[0][0], base + 1000);
	assert_int_equal(sn.sack[0][1], base + 1100);
	to_server(t, &p, RTE_TCP_ACK_FLAG, base + 2000, c->snd_nxt, NULL, b + 2000, 100);
	to_server(t, &p, RTE_TCP_ACK_FLAG, base + 1100, c->snd_nxt, NULL, b + 1100, 100);
	/* Latest first ([1000,1200) grew), then the other range. */
	assert_int_equal(sn.nsack, 2);
	assert_int_equal(sn.sack[0][0], base + 1000);
	assert_int_equal(sn.sack[0][1], base + 1200);
	assert_int_equal(sn.sack[1][0], base + 2000);
	assert_int_equal(sn.sack[1][1], base + 2100);
	/* Fill [0, 1000): [0, 1200) in order, one block left. */
	to_server(t, &p, RTE_TCP_ACK_FLAG, base, c->snd_nxt, NULL, b, 1000);
	assert_int_equal(sn.ack, base + 1200);
	assert_int_equal(sn.nsack, 1);
	assert_int_equal(sn.sack[0][0], base + 2000);
	to_server(t, &p, RTE_TCP_ACK_FLAG, base + 1200, c->snd_nxt, NULL, b + 1200, 800);
	assert_int_equal(sn.ack, base + 2100);
	assert_int_equal(sn.nsack, 0);
	assert_int_equal(p.a[1].rx_bad, 0);
	t->tap = NULL;
	close_pair(t, &p);
}

/*
 * An ICMP "fragmentation needed" (type 3 code 4) to side `to`, quoting
 * the IPv4 header and first 8 TCP bytes of a segment that side sent.
 */
static void inject_frag_needed(struct tl *t, unsigned to, uint32_t qsrc, uint32_t qdst,
                               uint16_t qsport, uint16_t qdport, uint32_t qseq, uint16_t mtu)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(tl_pool());
	uint32_t len = 14 + 20 + 8 + 20 + 8;
	struct rte_ether_hdr *eh;
	struct rte_ipv4_hdr *ip, *qip;
	struct rte_icmp_hdr *ic;
	uint8_t *qt;
	uint16_t sum;

	assert_non_null(m);
	eh = (struct rte_ether_hdr *)rte_pktmbuf_append(m, (uint16_t)len);
	memset(eh, 0, len);
	eh->dst_addr = t->s[to].nc.ports[0].mac;
	eh->src_addr = t->s[!to].nc.ports[0].mac;
	eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	ip = (struct rte_ipv4_hdr *)(eh + 1);
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(len - 14));
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_ICMP;
	ip->src_addr = qdst; /* a router on the way, here the peer's address will do */
	ip->dst_addr = qsrc;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	ic = (struct rte_icmp_hdr *)(ip + 1);
	ic->icmp_type = 3;
	ic->icmp_code = 4;
	ic->icmp_seq_nb = rte_cpu_to_be_16(mtu);
	qip = (struct rte_ipv4_hdr *)(ic + 1);
	qip->version_ihl = RTE_IPV4_VHL_DEF;
	qip->total_length = rte_cpu_to_be_16(1500);
	qip->time_to_live = 64;
	qip->next_proto_id = IPPROTO_TCP;
	qip->src_addr = qsrc;
	qip->dst_addr = qdst;
	qt = (uint8_t *)(qip + 1);
	qsport = rte_cpu_to_be_16(qsport);
	qdport = rte_cpu_to_be_16(qdport);
	qseq = rte_cpu_to_be_32(qseq);
	memcpy(qt, &qsport, 2);
	memcpy(qt + 2, &qdport, 2);
	memcpy(qt + 4, &qseq, 4);
	sum = rte_raw_cksum(ic, 8 + 20 + 8);
	ic->icmp_cksum = (uint16_t)~sum;
	net_input(t->s[to].w, m, 0, false);
}

/*
 * RFC 1191 with RFC 5927 §4.1 validation: a frag-needed quoting data in
 * flight lowers the MSS and the data goes again in smaller segments; a
 * quote outside SND.UNA..SND.NXT, for no connection, or raising the MTU
 * changes nothing.
 */
static void test_pmtu_frag_needed(void **state)
{
	struct tl *t = *state;
	struct pair p;
	struct tcp_conn *c;
	uint32_t una;

	open_pair(t, &p);
	c = p.a[1].c;
	assert_int_equal(c->mss, 1448);
	/* The server sends; nothing arrives yet (the "router" drops it). */
	t->link.blackhole[1] = true;
	p.a[1].to_send = 100000;
	p.a[1].tx_seed = p.a[0].rx_seed = 3;
	tl_app_pump(&p.a[1]);
	tl_run_for(t, 1 * TL_MS);
	una = c->snd_una;
	assert_true(c->snd_max - una > 10000);
	/* Bogus: before SND.UNA, at SND.NXT, wrong port, unknown peer. */
	inject_frag_needed(t, 1, TL_IP1, TL_IP0, SRV_PORT, p.cport, una - 1, 1200);
	inject_frag_needed(t, 1, TL_IP1, TL_IP0, SRV_PORT, p.cport, c->snd_max, 1200);
	inject_frag_needed(t, 1, TL_IP1, TL_IP0, SRV_PORT, p.cport + 1, una, 1200);
	inject_frag_needed(t, 1, TL_IP1, IP4(198, 18, 0, 9), SRV_PORT, p.cport, una, 1200);
	assert_int_equal(CTR_VAL(t, 1, tcp_pmtu_ignored), 4);
	assert_int_equal(c->mss, 1448);
	/* Genuine: MSS = 1200 - 40 - 12 (timestamps). */
	inject_frag_needed(t, 1, TL_IP1, TL_IP0, SRV_PORT, p.cport, una + 1448, 1200);
	assert_int_equal(CTR_VAL(t, 1, tcp_pmtu_update), 1);
	assert_int_equal(c->mss, 1148);
	/* Never raised by a message, never below the 576 floor. */
	inject_frag_needed(t, 1, TL_IP1, TL_IP0, SRV_PORT, p.cport, una, 1400);
	assert_int_equal(c->mss, 1148);
	inject_frag_needed(t, 1, TL_IP1, TL_IP0, SRV_PORT, p.cport, una, 68);
	assert_int_equal(c->mss, 576 - 52);
	/* The path works again: everything arrives, in segments that fit. */
	t->link.blackhole[1] = false;
	tl_run_for(t, 5 * TL_S);
	assert_int_equal(p.a[0].received, 100000);
	assert_int_equal(p.a[0].rx_bad, 0);
	assert_int_equal(CTR_VAL(t, 1, ipv4_out_drop_mtu), 0);
	close_pair(t, &p);
}

/* RFC 9293 §3.10.7.1: no connection - ACK gets <SEQ=SEG.ACK>, else <ACK=SEG.SEQ+LEN>. */
static void test_rst_for_no_connection_fields(void **state)
{
	struct tl *t = *state;
	struct seen s;
	uint8_t data[7] = {0};

	memset(&s, 0, sizeof(s));
	t->tap = tap_last;
	t->tap_arg = &s;
	tl_inject(t, 1, TL_IP0, TL_IP1, 5555, 80, RTE_TCP_ACK_FLAG, 1000, 777777, 1000, NULL, NULL,
	          0);
	tl_run_for(t, 5 * TL_MS);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.flags, RTE_TCP_RST_FLAG);
	assert_int_equal(s.seq, 777777);
	assert_int_equal(s.sport, 80);
	assert_int_equal(s.dport, 5555);
	tl_inject(t, 1, TL_IP0, TL_IP1, 5555, 80, RTE_TCP_SYN_FLAG | RTE_TCP_FIN_FLAG, 1000, 0, 1000,
	          NULL, data, sizeof(data));
	tl_run_for(t, 5 * TL_MS);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.flags, RTE_TCP_RST_FLAG | RTE_TCP_ACK_FLAG);
	assert_int_equal(s.seq, 0);
	assert_int_equal(s.ack, 1000 + 7 + 1 + 1); /* data, SYN and FIN all count */
	/* Never a RST for a RST. */
	tl_inject(t, 1, TL_IP0, TL_IP1, 5555, 80, RTE_TCP_RST_FLAG, 1000, 0, 1000, NULL, NULL, 0);
	tl_run_for(t, 5 * TL_MS);
	assert_int_equal(s.n, 2);
	assert_int_equal(CTR_VAL(t, 1, tcp_rst_tx), 2);
	assert_int_equal(tcp_conn_count(t->s[1].w), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_rst_rfc5961, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_syn_on_live_connection, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_challenge_ack_rate_limit, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_ack_of_unsent_data, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_paws, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_sack_blocks_sent, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_pmtu_frag_needed, tl_setup, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_rst_for_no_connection_fields, tl_setup,
	                                    tl_teardown),
	};
	int rc;

	tl_eal_init();
	rc = cmocka_run_group_tests_name("tcp_input", tests, NULL, NULL);
	tl_eal_fini();
	return rc;
}
