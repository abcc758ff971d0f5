/*
 * test_tcp_ipv6.c - one TCP over two network layers: connections over
 * IPv6 between two stacks (handshake, MSS from the IPv6 headers, keyed
 * ISN and flow label per tuple), bulk transfers byte-exact over a lossy,
 * reordering, duplicating and corrupting link, IPv4 and IPv6 side by side
 * with listeners per family, SYN cookies with the IPv6 MSS classes,
 * simultaneous close, Packet Too Big (RFC 8201) lowering the MSS only for
 * a genuine quote, link-local TCP refused, and the local port an active
 * open picks so that replies steer to its worker.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <rte_ip.h>
#include <rte_tcp.h>

#include "net/tcp_syncookie.h"
#include "result.h"
#include "tcp_harness.h"

#define SRV_PORT 7

static bool both_connected(struct tl *t, void *arg)
{
	struct tl_app *a = arg;

	(void)t;
	return a[0].connected && a[1].connected;
}

static bool app_done(struct tl *t, void *arg)
{
	struct tl_app *a = arg;

	(void)t;
	return a[0].received == a[1].to_send && a[1].received == a[0].to_send && a[0].eof &&
	       a[1].eof;
}

static bool no_conns(struct tl *t, void *arg)
{
	(void)arg;
	return tcp_conn_count(t->s[0].w) == 0 && tcp_conn_count(t->s[1].w) == 0;
}

/* a[0] on side 0 connects to dst:port, a listener on side 1 hands the connection to a[1]. */
static void open_pair_to(struct tl *t, struct tl_app *a, struct tl_app *lst,
                         const struct pg_addr *laddr, const struct pg_addr *dst)
{
	memset(lst, 0, sizeof(*lst));
	lst->accept_into = &a[1];
	a[0].t = a[1].t = t;
	a[1].side = 1;
	assert_int_equal(tcp_listen_addr(t->s[1].w, laddr, SRV_PORT, &tl_app_ops, lst), PG_OK);
	assert_int_equal(tcp_connect_addr(t->s[0].w, dst, SRV_PORT, &tl_app_ops, &a[0], &a[0].c),
	                 PG_OK);
	assert_true(tl_run(t, both_connected, a, 10 * TL_S));
	assert_string_equal(tcp_state_name_of(a[0].c), "ESTABLISHED");
	assert_string_equal(tcp_state_name_of(a[1].c), "ESTABLISHED");
}

static void open_pair6(struct tl *t, struct tl_app *a, struct tl_app *lst)
{
	struct pg_addr any6 = pg_addr_any(PG_AF_INET6);

	open_pair_to(t, a, lst, &any6, &tl_addr6[1]);
}

static bool count_v6(const struct tcp_conn_info *ci, void *arg)
{
	unsigned *n = arg;

	if (pg_addr_is_v6(&ci->local) && ci->laddr == 0 && ci->raddr == 0)
		(*n)++;
	return true;
}

static void test_handshake6(void **state)
{
	struct tl *t = *state;
	struct tl_app a[2], lst;
	struct pg_addr la, ra;
	uint32_t la4, ra4;
	uint16_t lp, rp;
	uint64_t t0 = t->now;
	unsigned n = 0;

	memset(a, 0, sizeof(a));
	open_pair6(t, a, &lst);
	tcp_conn_tuple_addr(a[0].c, &la, &lp, &ra, &rp);
	assert_true(pg_addr_eq(&la, &tl_addr6[0]));
	assert_true(pg_addr_eq(&ra, &tl_addr6[1]));
	assert_int_equal(rp, SRV_PORT);
	tcp_conn_tuple_addr(a[1].c, &la, &lp, &ra, &rp);
	assert_true(pg_addr_eq(&la, &tl_addr6[1]));
	assert_true(pg_addr_eq(&ra, &tl_addr6[0]));
	/* the IPv4 form has no address to give */
	tcp_conn_tuple(a[0].c, &la4, &lp, &ra4, &rp);
	assert_int_equal(la4, 0);
	assert_int_equal(ra4, 0);
	assert_int_equal(tcp_foreach_conn(t->s[0].w, count_v6, &n), 1);
	assert_int_equal(n, 1);
	/* MSS: 1500 less 40 of IPv6 and 20 of TCP, less the timestamp option */
	assert_true(a[0].c->ts_ok && a[0].c->ws_ok && a[0].c->sack_ok);
	assert_int_equal(a[0].c->mss, 1428);
	assert_int_equal(a[1].c->mss, 1428);
	/* RFC 6528 for the IPv6 tuple: our side first, at the time of the open */
	assert_int_equal(a[0].c->iss,
	                 tcp_isn_addr(&t->s[0].w->tcp->isn_key, &a[0].c->laddr, &a[0].c->raddr,
	                              a[0].c->lport, a[0].c->rport, t0));
	/* RFC 6437: a flow label per connection, 20 bits, nonzero for this tuple */
	assert_true(a[0].c->flow_label != 0 && a[0].c->flow_label <= 0xfffff);
	tcp_abort(a[0].c);
	tl_run_for(t, 100 * TL_MS);
	tcp_close(a[1].c);
	assert_true(tl_run(t, no_conns, NULL, 10 * TL_S));
}

/* Bulk both ways over IPv6 on a bad link: every byte arrives, in order. */
static void bulk6(struct tl *t, uint64_t bytes)
{
	struct tl_app a[2], lst;

	memset(a, 0, sizeof(a));
	a[0].tx_seed = a[1].rx_seed = 11;
	a[1].tx_seed = a[0].rx_seed = 13;
	open_pair6(t, a, &lst);
	a[0].to_send = bytes;
	a[1].to_send = bytes / 2;
	a[0].shutdown_when_sent = a[1].shutdown_when_sent = true;
	tl_app_pump(&a[0]);
	tl_app_pump(&a[1]);
	assert_true(tl_run(t, app_done, a, 600 * TL_S));
	assert_int_equal(a[1].received, bytes);
	assert_int_equal(a[0].received, bytes / 2);
	assert_int_equal(a[0].rx_bad + a[1].rx_bad, 0);
	printf("# %" PRIu64 " bytes over IPv6: lost %" PRIu64 "/%" PRIu64 ", %" PRIu64
	       " retransmitted, %" PRIu64 " SACK recoveries\n",
	       bytes, t->s[0].lost + t->s[1].lost, t->s[0].sent + t->s[1].sent,
	       CTR_VAL(t, 0, tcp_retransmits) + CTR_VAL(t, 1, tcp_retransmits),
	       CTR_VAL(t, 0, tcp_sack_recovery) + CTR_VAL(t, 1, tcp_sack_recovery));
	tcp_close(a[0].c);
	tcp_close(a[1].c);
	assert_true(tl_run(t, no_conns, NULL, 10 * TL_S));
}

static void test_bulk6_clean(void **state)
{
	struct tl *t = *state;

	bulk6(t, 8u << 20);
	assert_int_equal(CTR_VAL(t, 0, tcp_retransmits), 0);
}

static void test_bulk6_lossy(void **state)
{
	struct tl *t = *state;

	t->link.loss_ppm = 10000;
	t->link.dup_ppm = 2000;
	t->link.corrupt_ppm = 2000;
	t->link.jitter_ns = 300 * 1000;
	bulk6(t, 8u << 20);
	assert_true(CTR_VAL(t, 0, tcp_retransmits) > 0);
	assert_true(CTR_VAL(t, 0, tcp_sack_recovery) > 0);
	/* corrupted segments die on the checksum over the IPv6 pseudo-header */
	assert_true(CTR_VAL(t, 0, tcp_drop_cksum) + CTR_VAL(t, 1, tcp_drop_cksum) +
	                CTR_VAL(t, 0, icmp6_drop_cksum) + CTR_VAL(t, 1, icmp6_drop_cksum) +
	                CTR_VAL(t, 0, ipv6_drop_not_for_us) + CTR_VAL(t, 1, ipv6_drop_not_for_us) +
	                CTR_VAL(t, 0, ipv6_drop_len) + CTR_VAL(t, 1, ipv6_drop_len) >
	            0);
}

/* IPv4 and IPv6 side by side, one port number, a listener per family. */
static void test_dual_stack(void **state)
{
	struct tl *t = *state;
	struct tl_app a4[2], a6[2], l4, l6;
	struct pg_addr any4 = pg_addr_any(PG_AF_INET), any6 = pg_addr_any(PG_AF_INET6);
	struct pg_addr v4dst = pg_addr_v4(TL_IP1);
	struct tl_app stray;

	memset(a4, 0, sizeof(a4));
	memset(a6, 0, sizeof(a6));
	memset(&l4, 0, sizeof(l4));
	memset(&l6, 0, sizeof(l6));
	/* only the IPv4 listener: an IPv6 SYN to the port is refused */
	l4.accept_into = &a4[1];
	a4[0].t = a4[1].t = t;
	a4[1].side = 1;
	assert_int_equal(tcp_listen_addr(t->s[1].w, &any4, SRV_PORT, &tl_app_ops, &l4), PG_OK);
	memset(&stray, 0, sizeof(stray));
	assert_int_equal(
	    tcp_connect_addr(t->s[0].w, &tl_addr6[1], SRV_PORT, &tl_app_ops, &stray, &stray.c),
	    PG_OK);
	tl_run_for(t, 100 * TL_MS);
	assert_true(stray.errored);
	assert_int_equal(stray.err, TCP_ERR_REFUSED);
	tcp_close(stray.c);
	/* both families now, through the same port */
	l6.accept_into = &a6[1];
	a6[0].t = a6[1].t = t;
	a6[1].side = 1;
	assert_int_equal(tcp_listen_addr(t->s[1].w, &any6, SRV_PORT, &tl_app_ops, &l6), PG_OK);
	assert_int_equal(tcp_listen_addr(t->s[1].w, &any6, SRV_PORT, &tl_app_ops, &l6),
	                 PG_DECLINED);
	assert_int_equal(
	    tcp_connect_addr(t->s[0].w, &v4dst, SRV_PORT, &tl_app_ops, &a4[0], &a4[0].c), PG_OK);
	assert_int_equal(
	    tcp_connect_addr(t->s[0].w, &tl_addr6[1], SRV_PORT, &tl_app_ops, &a6[0], &a6[0].c),
	    PG_OK);
	assert_true(tl_run(t, both_connected, a4, 10 * TL_S));
	assert_true(tl_run(t, both_connected, a6, 10 * TL_S));
	assert_int_equal(l4.accepts, 1);
	assert_int_equal(l6.accepts, 1);
	a4[0].to_send = 300000;
	a6[0].to_send = 400000;
	a4[0].tx_seed = a4[1].rx_seed = 3;
	a6[0].tx_seed = a6[1].rx_seed = 5;
	a4[0].shutdown_when_sent = a6[0].shutdown_when_sent = true;
	a4[1].shutdown_when_sent = a6[1].shutdown_when_sent = true;
	tl_app_pump(&a4[0]);
	tl_app_pump(&a6[0]);
	tl_app_pump(&a4[1]);
	tl_app_pump(&a6[1]);
	assert_true(tl_run(t, app_done, a4, 30 * TL_S));
	assert_true(tl_run(t, app_done, a6, 30 * TL_S));
	assert_int_equal(a4[1].received, 300000);
	assert_int_equal(a6[1].received, 400000);
	assert_int_equal(a4[1].rx_bad + a6[1].rx_bad, 0);
	assert_true(pg_addr_is_v4(&a4[1].c->raddr) && pg_addr_is_v6(&a6[1].c->raddr));
	tcp_close(a4[0].c);
	tcp_close(a4[1].c);
	tcp_close(a6[0].c);
	tcp_close(a6[1].c);
	assert_true(tl_run(t, no_conns, NULL, 10 * TL_S));
	assert_int_equal(tcp_unlisten_addr(t->s[1].w, &any4, SRV_PORT), PG_OK);
	assert_int_equal(tcp_unlisten_addr(t->s[1].w, &any6, SRV_PORT), PG_OK);
	assert_int_equal(tcp_unlisten_addr(t->s[1].w, &any6, SRV_PORT), PG_DECLINED);
}

/* A listener bound to one IPv6 address takes that address only. */
static void test_listener_exact_address(void **state)
{
	struct tl *t = *state;
	struct tl_app a[2], lst;

	memset(a, 0, sizeof(a));
	open_pair_to(t, a, &lst, &tl_addr6[1], &tl_addr6[1]);
	assert_int_equal(lst.accepts, 1);
	tcp_close(a[0].c);
	tcp_close(a[1].c);
	assert_true(tl_run(t, no_conns, NULL, 10 * TL_S));
}

/* RFC 4987 over IPv6: the handshake completes through a cookie; MSS from the IPv6 classes. */
static void test_syncookies6(void **state)
{
	struct tl *t = *state;
	struct tl_app a[2], lst;

	memset(a, 0, sizeof(a));
	a[0].tx_seed = a[1].rx_seed = 21;
	open_pair6(t, a, &lst);
	assert_int_equal(CTR_VAL(t, 1, tcp_syncookie_tx), 1);
	assert_int_equal(CTR_VAL(t, 1, tcp_syncookie_ok), 1);
	/* the peer's 1440 is a class of its own (tcp_syncookie_msstab6); less timestamps */
	assert_int_equal(a[1].c->mss, 1440 - 12);
	assert_true(a[1].c->ts_ok && a[1].c->sack_ok && a[1].c->ws_ok);
	a[0].to_send = 1000000;
	a[0].shutdown_when_sent = a[1].shutdown_when_sent = true;
	tl_app_pump(&a[0]);
	tl_app_pump(&a[1]);
	assert_true(tl_run(t, app_done, a, 30 * TL_S));
	assert_int_equal(a[1].rx_bad, 0);
	tcp_close(a[0].c);
	tcp_close(a[1].c);
	assert_true(tl_run(t, no_conns, NULL, 10 * TL_S));
}

static int setup_cookies6(void **state)
{
	struct tcp_config cfg;

	tcp_config_default(&cfg);
	cfg.msl_ns = 1 * TL_S;
	cfg.syn_backlog = 0; /* every SYN gets a cookie */
	return tl_setup_v6_cfg(state, &cfg);
}

/* Both sides shut down at once: FIN_WAIT_1 -> CLOSING -> TIME_WAIT on both. */
static void test_simultaneous_close6(void **state)
{
	struct tl *t = *state;
	struct tl_app a[2], lst;

	memset(a, 0, sizeof(a));
	open_pair6(t, a, &lst);
	tcp_shutdown(a[0].c);
	tcp_shutdown(a[1].c);
	tl_run_for(t, 50 * TL_MS);
	assert_string_equal(tcp_state_name_of(a[0].c), "TIME_WAIT");
	assert_string_equal(tcp_state_name_of(a[1].c), "TIME_WAIT");
	assert_true(a[0].closed && a[1].closed);
	tcp_close(a[0].c);
	tcp_close(a[1].c);
	assert_true(tl_run(t, no_conns, NULL, 5 * TL_S));
}

/* An ICMPv6 Packet Too Big to side `to`, quoting an IPv6/TCP header we sent. */
static void send_ptb(struct tl *t, unsigned to, const struct tcp_conn *c, uint32_t seq,
                     uint32_t mtu)
{
	uint8_t f[14 + 40 + 8 + 40 + 20], *icmp = f + 54, *q = f + 62;
	struct rte_ipv6_hdr *ip = (struct rte_ipv6_hdr *)(f + 14);
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)(q + 40);
	uint32_t v;
	uint16_t sum;
	uint8_t ph[40];
	uint32_t s;

	memset(f, 0, sizeof(f));
	memcpy(f, tl_mac_of(to)->addr_bytes, 6);
	memcpy(f + 6, tl_mac_of(!to)->addr_bytes, 6);
	f[12] = 0x86;
	f[13] = 0xdd;
	ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
	ip->payload_len = rte_cpu_to_be_16(8 + 60);
	ip->proto = IPPROTO_ICMPV6;
	ip->hop_limits = 64;
	memcpy(ip->src_addr, c->raddr.v6, 16); /* a router on the path would do as well */
	memcpy(ip->dst_addr, c->laddr.v6, 16);
	icmp[0] = 2;
	v = rte_cpu_to_be_32(mtu);
	memcpy(icmp + 4, &v, 4);
	/* the quote: our segment's IPv6 and TCP headers */
	q[0] = 0x60;
	q[5] = 20;
	q[6] = IPPROTO_TCP;
	q[7] = 64;
	memcpy(q + 8, c->laddr.v6, 16);
	memcpy(q + 24, c->raddr.v6, 16);
	th->src_port = c->lport;
	th->dst_port = c->rport;
	th->sent_seq = rte_cpu_to_be_32(seq);
	th->data_off = 5 << 4;
	memcpy(ph, ip->src_addr, 16);
	memcpy(ph + 16, ip->dst_addr, 16);
	memset(ph + 32, 0, 8);
	ph[35] = 8 + 60;
	ph[39] = IPPROTO_ICMPV6;
	s = (uint32_t)rte_raw_cksum(ph, 40) + rte_raw_cksum(icmp, 8 + 60);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	sum = (uint16_t)~s;
	memcpy(icmp + 2, &sum, 2);
	tl_frame_in(t, to, f, sizeof(f));
}

static bool sending_started(struct tl *t, void *arg)
{
	struct tl_app *a = arg;

	(void)t;
	return a[0].c->snd_max - a[0].c->snd_una > 20000;
}

/* RFC 8201: a genuine Packet Too Big lowers the MSS; forged or raising ones do nothing. */
static void test_pmtu6(void **state)
{
	struct tl *t = *state;
	struct tl_app a[2], lst;
	struct tcp_conn *c;

	memset(a, 0, sizeof(a));
	a[0].tx_seed = a[1].rx_seed = 31;
	open_pair6(t, a, &lst);
	c = a[0].c;
	a[0].to_send = 4u << 20;
	a[0].shutdown_when_sent = a[1].shutdown_when_sent = true;
	tl_app_pump(&a[0]);
	tl_app_pump(&a[1]);
	assert_true(tl_run(t, sending_started, a, 10 * TL_S));
	/* a sequence number never sent: ignored (RFC 5927 §4.1) */
	send_ptb(t, 0, c, c->snd_max + 100000, 1400);
	assert_int_equal(CTR_VAL(t, 0, tcp_pmtu_ignored), 1);
	assert_int_equal(c->mss, 1428);
	/* more than the port allows: no change */
	send_ptb(t, 0, c, c->snd_una, 9000);
	assert_int_equal(c->mss, 1428);
	/* genuine: 1400 - 60 - 12 */
	send_ptb(t, 0, c, c->snd_una, 1400);
	assert_int_equal(CTR_VAL(t, 0, tcp_pmtu_update), 1);
	assert_int_equal(c->mss, 1328);
	/* below the IPv6 minimum: 1280 is used (RFC 8201 §4) */
	send_ptb(t, 0, c, c->snd_una, 500);
	assert_int_equal(c->mss, 1280 - 60 - 12);
	assert_int_equal(CTR_VAL(t, 0, tcp_pmtu_update), 2);
	/* never raised by a message */
	send_ptb(t, 0, c, c->snd_una, 1400);
	assert_int_equal(c->mss, 1208);
	assert_true(tl_run(t, app_done, a, 60 * TL_S));
	assert_int_equal(a[1].received, 4u << 20);
	assert_int_equal(a[1].rx_bad, 0);
	tcp_close(a[0].c);
	tcp_close(a[1].c);
	assert_true(tl_run(t, no_conns, NULL, 10 * TL_S));
}

/* TCP and link-local addresses: no zone in a tuple, so neither way. */
static void test_link_local_refused(void **state)
{
	struct tl *t = *state;
	static const uint8_t ll[16] = {0xfe, 0x80, [15] = 9};
	struct pg_addr dst = pg_addr_v6(ll), any6 = pg_addr_any(PG_AF_INET6);
	struct tl_app a, lst;
	uint8_t f[14 + 40 + 20];
	struct rte_ipv6_hdr *ip = (struct rte_ipv6_hdr *)(f + 14);
	struct rte_tcp_hdr *th = (struct rte_tcp_hdr *)(ip + 1);

	memset(&a, 0, sizeof(a));
	memset(&lst, 0, sizeof(lst));
	assert_int_equal(tcp_connect_addr(t->s[0].w, &dst, SRV_PORT, &tl_app_ops, &a, &a.c),
	                 PG_DECLINED);
	assert_int_equal(tcp_listen_addr(t->s[1].w, &any6, SRV_PORT, &tl_app_ops, &lst), PG_OK);
	memset(f, 0, sizeof(f));
	memcpy(f, tl_mac_of(1)->addr_bytes, 6);
	memcpy(f + 6, tl_mac_of(0)->addr_bytes, 6);
	f[12] = 0x86;
	f[13] = 0xdd;
	ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
	ip->payload_len = rte_cpu_to_be_16(20);
	ip->proto = IPPROTO_TCP;
	ip->hop_limits = 64;
	memcpy(ip->src_addr, ll, 16);
	memcpy(ip->dst_addr, tl_addr6[1].v6, 16);
	th->src_port = rte_cpu_to_be_16(40000);
	th->dst_port = rte_cpu_to_be_16(SRV_PORT);
	th->data_off = 5 << 4;
	th->tcp_flags = RTE_TCP_SYN_FLAG;
	th->cksum = rte_ipv6_udptcp_cksum(ip, th);
	tl_frame_in(t, 1, f, sizeof(f));
	assert_int_equal(CTR_VAL(t, 1, ipv6_drop_scope), 1);
	assert_int_equal(CTR_VAL(t, 1, tcp_rx), 0);
	assert_int_equal(lst.accepts, 0);
	assert_int_equal(tcp_unlisten_addr(t->s[1].w, &any6, SRV_PORT), PG_OK);
}

/* An active open picks a local port whose reply tuple steers to the opening worker. */
static void test_connect_port_steers(void **state)
{
	struct tl *t = *state;
	struct worker *w = t->s[0].w;

	for (uint32_t id = 0; id < 4; id++) {
		struct tl_app a;

		memset(&a, 0, sizeof(a));
		w->id = id;
		w->nworkers = 4;
		assert_int_equal(tcp_connect_addr(w, &tl_addr6[1], SRV_PORT, &tl_app_ops, &a, &a.c),
		                 PG_OK);
		/* the peer's segments: source tl_addr6[1]:SRV_PORT, destination ours */
		assert_int_equal(
		    steer_hash6(a.c->raddr.v6, a.c->laddr.v6, a.c->rport, a.c->lport) % 4, id);
		tcp_abort(a.c);
	}
	w->id = 0;
	w->nworkers = 1;
	tl_run_for(t, 100 * TL_MS);
	assert_true(tl_run(t, no_conns, NULL, 5 * TL_S));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_handshake6, tl_setup_v6, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_bulk6_clean, tl_setup_v6, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_bulk6_lossy, tl_setup_v6, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_dual_stack, tl_setup_v6, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_listener_exact_address, tl_setup_v6, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_syncookies6, setup_cookies6, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_simultaneous_close6, tl_setup_v6, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_pmtu6, tl_setup_v6, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_link_local_refused, tl_setup_v6, tl_teardown),
	    cmocka_unit_test_setup_teardown(test_connect_port_steers, tl_setup_v6, tl_teardown),
	};
	int rc;

	tl_eal_init();
	rc = cmocka_run_group_tests_name("tcp_ipv6", tests, NULL, NULL);
	tl_eal_fini();
	return rc;
}
