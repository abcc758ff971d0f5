/*
 * tcp_harness.c - the two-stack world of tcp_harness.h: EAL without a NIC,
 * a shared mbuf pool, a min-heap of frames in flight ordered by arrival
 * time, the link model, the virtual clock, the pattern application and
 * the leak checks every teardown performs.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_lcore.h>
#include <rte_mempool.h>
#include <rte_random.h>
#include <rte_tcp.h>

#include "result.h"
#include "tcp_harness.h"

#define TL_DEFAULT_SEED 0x5eed2026u
#define TL_HEAP_MAX 65536

static const struct rte_ether_addr tl_mac[2] = {
    {.addr_bytes = {0x02, 0, 0, 0, 0, 0x01}},
    {.addr_bytes = {0x02, 0, 0, 0, 0, 0x02}},
};

static struct rte_mempool *tl_mbuf_pool;
static struct tl tl_fixture;
static uint64_t tl_seed_value;

uint64_t tl_seed(void)
{
	return tl_seed_value;
}

void tl_eal_init(void)
{
	char *argv[] = {"test", "--no-huge",           "-m", "256", "--no-pci", "--no-shconf", "-l",
	                "0",    "--log-level=*:error", NULL};
	const char *env = getenv("PG_TCP_SEED");

	if (rte_eal_init((int)RTE_DIM(argv) - 1, argv) < 0) {
		fprintf(stderr, "rte_eal_init failed\n");
		exit(1);
	}
	tl_mbuf_pool = rte_pktmbuf_pool_create("tl_pool", 16383, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
	                                       (int)rte_socket_id());
	if (tl_mbuf_pool == NULL) {
		fprintf(stderr, "mbuf pool: %s\n", rte_strerror(rte_errno));
		exit(1);
	}
	tl_seed_value = env != NULL && *env ? strtoull(env, NULL, 0) : TL_DEFAULT_SEED;
	rte_srand(tl_seed_value); /* ISN secrets and the like: same seed, same run */
	/* TAP comment: rerun with PG_TCP_SEED=<this> to reproduce. */
	printf("# PG_TCP_SEED=0x%" PRIx64 "\n", tl_seed_value);
}

void tl_eal_fini(void)
{
	rte_mempool_free(tl_mbuf_pool);
	rte_eal_cleanup();
}

struct rte_mempool *tl_pool(void)
{
	return tl_mbuf_pool;
}

uint64_t tl_rand(struct tl *t)
{
	/* splitmix64: tiny, good enough, and the same everywhere */
	uint64_t z = (t->rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static bool tl_chance(struct tl *t, uint32_t ppm)
{
	return ppm != 0 && tl_rand(t) % 1000000 < ppm;
}

static bool tl_before(const struct tl_pkt *a, const struct tl_pkt *b)
{
	return a->at < b->at || (a->at == b->at && a->order < b->order);
}

static void tl_heap_push(struct tl *t, struct tl_pkt p)
{
	unsigned i;

	if (t->nheap == t->capheap) {
		WCOUNT(t->s[!p.to].w, tx_drop_full); /* the link's queue overflowed */
		rte_pktmbuf_free(p.m);
		return;
	}
	i = t->nheap++;
	while (i > 0 && tl_before(&p, &t->heap[(i - 1) / 2])) {
		t->heap[i] = t->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	t->heap[i] = p;
}

static struct tl_pkt tl_heap_pop(struct tl *t)
{
	struct tl_pkt top = t->heap[0], last = t->heap[--t->nheap];
	unsigned i = 0;

	for (;;) {
		unsigned k = 2 * i + 1;

		if (k >= t->nheap)
			break;
		if (k + 1 < t->nheap && tl_before(&t->heap[k + 1], &t->heap[k]))
			k++;
		if (!tl_before(&t->heap[k], &last))
			break;
		t->heap[i] = t->heap[k];
		i = k;
	}
	if (t->nheap > 0)
		t->heap[i] = last;
	return top;
}

/* The link: every frame a side transmits enters here. */
static void tl_link_send(struct tl *t, unsigned from, struct rte_mbuf *m)
{
	struct tl_side *s = &t->s[from];
	uint64_t at;

	s->sent++;
	if (t->tap != NULL && !t->tap(t, from, m, t->tap_arg)) {
		rte_pktmbuf_free(m);
		return;
	}
	if (t->link.blackhole[from] || tl_chance(t, t->link.loss_ppm)) {
		s->lost++;
		rte_pktmbuf_free(m);
		return;
	}
	if (tl_chance(t, t->link.corrupt_ppm) && rte_pktmbuf_data_len(m) > 14) {
		/* Past the Ethernet header, so IPv4 or TCP checksums must catch it. */
		uint32_t bit = (uint32_t)(tl_rand(t) % ((rte_pktmbuf_data_len(m) - 14) * 8));

		rte_pktmbuf_mtod(m, uint8_t *)[14 + bit / 8] ^= (uint8_t)(1u << (bit % 8));
		s->corrupted++;
	}
	at = t->now;
	if (t->link.rate_bps != 0) {
		uint64_t ser = (uint64_t)rte_pktmbuf_pkt_len(m) * 8 * TL_S / t->link.rate_bps;

		if (s->busy_until > at)
			at = s->busy_until;
		at += ser;
		s->busy_until = at;
	}
	at += t->link.delay_ns;
	if (t->link.jitter_ns != 0)
		at += tl_rand(t) % t->link.jitter_ns;
	if (tl_chance(t, t->link.dup_ppm)) {
		struct rte_mbuf *d = rte_pktmbuf_copy(m, tl_mbuf_pool, 0, UINT32_MAX);

		if (d != NULL) {
			s->duped++;
			tl_heap_push(t, (struct tl_pkt){.at = at + tl_rand(t) % (t->link.delay_ns + 1),
			                                 .order = t->order++,
			                                 .to = !from,
			                                 .m = d});
		}
	}
	tl_heap_push(t, (struct tl_pkt){.at = at, .order = t->order++, .to = !from, .m = m});
}

static uint16_t tl_capture(struct worker *w, uint16_t port, struct rte_mbuf **pkts, uint16_t n)
{
	struct tl *t = &tl_fixture;
	unsigned from = w == t->s[0].w ? 0 : 1;

	(void)port;
	for (uint16_t i = 0; i < n; i++)
		tl_link_send(t, from, pkts[i]);
	return n;
}

static void tl_side_config(struct net_config *nc, unsigned i)
{
	memset(nc, 0, sizeof(*nc));
	nc->nports = 1;
	nc->ports[0] = (struct net_port){.dpdk_port = 0,
	                                 .mtu = 1500,
	                                 .addr = i == 0 ? TL_IP0 : TL_IP1,
	                                 .netmask = IP4(255, 255, 255, 0),
	                                 .prefix_len = 24,
	                                 .mac = tl_mac[i]};
	nc->nroutes = 1;
	nc->routes[0] = (struct net_route){.prefix = IP4(198, 18, 0, 0),
	                                   .netmask = IP4(255, 255, 255, 0),
	                                   .prefix_len = 24,
	                                   .port = 0};
	nc->arp_retry_ns = 1 * TL_S;
	nc->arp_cache_ns = 3600 * TL_S;
	nc->arp_max_retries = 3;
	nc->arp_pending_max = 256;
}

int tl_setup_cfg(void **state, const struct tcp_config *cfg)
{
	struct tl *t = &tl_fixture;
	struct tcp_isn_key key;

	memset(t, 0, sizeof(*t));
	t->now = 1000 * TL_S;
	t->rng = tl_seed_value;
	t->capheap = TL_HEAP_MAX;
	t->heap = calloc(TL_HEAP_MAX, sizeof(*t->heap));
	assert_non_null(t->heap);
	t->link.delay_ns = 1 * TL_MS;
	t->link.rate_bps = 1000000000ull;
	for (unsigned i = 0; i < 2; i++) {
		struct tl_side *s = &t->s[i];
		struct worker *w = aligned_alloc(RTE_CACHE_LINE_SIZE,
		                                 RTE_ALIGN_CEIL(sizeof(*w), RTE_CACHE_LINE_SIZE));

		assert_non_null(w);
		worker_init_detached(w, 0, 1, tl_mbuf_pool);
		s->w = w;
		tl_side_config(&s->nc, i);
		w->net = &s->nc;
		w->now_ns = t->now;
		w->tx_burst = tl_capture;
		w->tx_capture = s;
		w->arp = arp_table_create(w, 64);
		assert_non_null(w->arp);
		s->tw = worker_alloc(w, sizeof(*s->tw));
		assert_non_null(s->tw);
		timer_wheel_init(s->tw, TIMER_TICK_NS_DEFAULT, t->now, w);
		w->timers = s->tw;
		/* Keys from the seeded PRNG: same seed, same ISNs, same run. */
		key.k0 = rte_rand();
		key.k1 = rte_rand();
		w->tcp = tcp_stack_create(w, cfg, &key);
		assert_non_null(w->tcp);
		net_config_changed(w);
	}
	t->baseline = rte_mempool_in_use_count(tl_mbuf_pool);
	*state = t;
	return 0;
}

int tl_setup(void **state)
{
	struct tcp_config cfg;

	tcp_config_default(&cfg);
	cfg.msl_ns = 1 * TL_S; /* short TIME_WAIT keeps virtual runs short */
	return tl_setup_cfg(state, &cfg);
}

int tl_teardown(void **state)
{
	struct tl *t = *state;
	unsigned in_use;
	int rc = 0;

	for (unsigned i = 0; i < 2; i++)
		worker_tx_flush(t->s[i].w);
	while (t->nheap > 0)
		rte_pktmbuf_free(tl_heap_pop(t).m);
	for (unsigned i = 0; i < 2; i++) {
		struct worker *w = t->s[i].w;

		/* Issue 3: no connection left means no buffer left. */
		if (tcp_conn_count(w) == 0 && tcp_buf_bytes(w) != 0) {
			fprintf(stderr, "side %u: %" PRIu64 " buffer bytes without connections\n", i,
			        tcp_buf_bytes(w));
			rc = -1;
		}
		tcp_stack_destroy(w, w->tcp);
		w->tcp = NULL;
		worker_tx_flush(w);
		while (t->nheap > 0)
			rte_pktmbuf_free(tl_heap_pop(t).m);
		arp_table_destroy(w, w->arp);
		nd_table_destroy(w, w->nd);
		w->nd = NULL;
		if (w->timers->narmed != 0) {
			fprintf(stderr, "side %u: %" PRIu64 " timers still armed\n", i,
			        w->timers->narmed);
			rc = -1;
		}
		worker_free(w, t->s[i].tw);
		free(w);
	}
	free(t->heap);
	in_use = rte_mempool_in_use_count(tl_mbuf_pool);
	if (in_use != t->baseline) {
		fprintf(stderr, "mbuf leak: %u in use, baseline %u\n", in_use, t->baseline);
		rc = -1;
	}
	return rc;
}

static void tl_set_now(struct tl *t, uint64_t now)
{
	t->now = now;
	for (unsigned i = 0; i < 2; i++)
		t->s[i].w->now_ns = now;
}

static void tl_flush(struct tl *t)
{
	for (unsigned i = 0; i < 2; i++)
		worker_tx_flush(t->s[i].w);
}

bool tl_run(struct tl *t, bool (*done)(struct tl *t, void *arg), void *arg, uint64_t limit_ns)
{
	uint64_t deadline = t->now + limit_ns;
	uint64_t next_net = t->now;

	for (;;) {
		uint64_t next;

		tl_flush(t);
		if (done != NULL && done(t, arg))
			return true;
		if (t->nheap > 0 && t->heap[0].at <= t->now) {
			struct tl_pkt p = tl_heap_pop(t);

			p.m->ol_flags = 0;
			p.m->packet_type = 0;
			p.m->port = 0;
			net_input(t->s[p.to].w, p.m, 0, false);
			continue;
		}
		if (t->now >= deadline)
			return false;
		next = (t->now / TL_MS + 1) * TL_MS;
		if (t->nheap > 0 && t->heap[0].at < next)
			next = t->heap[0].at;
		if (next > deadline)
			next = deadline;
		tl_set_now(t, next);
		for (unsigned i = 0; i < 2; i++)
			timer_advance(t->s[i].tw, t->now);
		if (t->now >= next_net) {
			for (unsigned i = 0; i < 2; i++)
				net_timers(t->s[i].w);
			next_net = t->now + 10 * TL_MS;
		}
	}
}

void tl_run_for(struct tl *t, uint64_t ns)
{
	tl_run(t, NULL, NULL, ns);
}

/* ---- the pattern application ---- */

static void tl_app_accepted(struct tcp_conn *c, void *user)
{
	struct tl_app *l = user;
	struct tl_app *a = l->accept_into;

	l->accepts++;
	if (a == NULL) {
		/* Nobody wants it: an echo-less sink that closes at EOF. */
		tcp_close(c);
		return;
	}
	a->c = c;
	a->connected = true;
	tcp_set_handler(c, &tl_app_ops, a);
	tl_app_pump(a);
}

static void tl_app_connected(struct tcp_conn *c, void *user)
{
	struct tl_app *a = user;

	(void)c;
	a->connected = true;
	tl_app_pump(a);
}

static void tl_app_maybe_close(struct tl_app *a)
{
	if (a->close_on_eof && a->eof && a->sent == a->to_send && !a->handle_released) {
		a->handle_released = true;
		tcp_close(a->c);
	}
}

void tl_app_pump(struct tl_app *a)
{
	uint8_t buf[16384];

	if (a->c == NULL || a->handle_released)
		return;
	while (a->sent < a->to_send) {
		uint64_t left = a->to_send - a->sent;
		uint32_t n = left < sizeof(buf) ? (uint32_t)left : (uint32_t)sizeof(buf);
		uint32_t space = tcp_send_space(a->c);
		int rc;

		if (n > space && space > 0)
			n = space;
		for (uint32_t k = 0; k < n; k++)
			buf[k] = tl_pattern(a->sent + k, a->tx_seed);
		rc = tcp_send(a->c, buf, n);
		if (rc <= 0)
			return;
		a->sent += (uint64_t)rc;
	}
	if (a->shutdown_when_sent)
		tcp_shutdown(a->c);
	tl_app_maybe_close(a);
}

void tl_app_read(struct tl_app *a)
{
	const uint8_t *p1, *p2;
	uint32_t l1, l2, n;

	if (a->c == NULL || a->handle_released || a->no_read)
		return;
	n = tcp_recv_peek(a->c, &p1, &l1, &p2, &l2);
	for (uint32_t k = 0; k < l1 && a->rx_bad == 0; k++)
		if (p1[k] != tl_pattern(a->received + k, a->rx_seed))
			a->rx_bad = a->received + k + 1;
	for (uint32_t k = 0; k < l2 && a->rx_bad == 0; k++)
		if (p2[k] != tl_pattern(a->received + l1 + k, a->rx_seed))
			a->rx_bad = a->received + l1 + k + 1;
	a->received += n;
	tcp_recv_consume(a->c, n);
	if (tcp_recv(a->c, NULL, 0) == PG_DONE)
		a->eof = true;
	tl_app_maybe_close(a);
}

static void tl_app_readable(struct tcp_conn *c, void *user)
{
	(void)c;
	tl_app_read(user);
}

static void tl_app_writable(struct tcp_conn *c, void *user)
{
	(void)c;
	tl_app_pump(user);
}

static void tl_app_closed(struct tcp_conn *c, void *user)
{
	struct tl_app *a = user;

	(void)c;
	a->closed = true;
}

static void tl_app_error(struct tcp_conn *c, enum tcp_error err, void *user)
{
	struct tl_app *a = user;

	(void)c;
	a->errored = true;
	a->err = err;
}

const struct tcp_ops tl_app_ops = {
    .accepted = tl_app_accepted,
    .connected = tl_app_connected,
    .readable = tl_app_readable,
    .writable = tl_app_writable,
    .closed = tl_app_closed,
    .error = tl_app_error,
};

/* ---- crafted segments ---- */

void tl_inject(struct tl *t, unsigned to, uint32_t src, uint32_t dst, uint16_t sport,
               uint16_t dport, uint8_t flags, uint32_t seq, uint32_t ack, uint16_t win,
               const uint32_t *ts, const void *payload, uint32_t plen)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(tl_mbuf_pool);
	uint32_t optlen = ts != NULL ? 12 : 0;
	uint32_t len = 14 + 20 + 20 + optlen + plen;
	struct rte_ether_hdr *eh;
	struct rte_ipv4_hdr *ip;
	struct rte_tcp_hdr *th;
	uint8_t *o;

	assert_non_null(m);
	eh = (struct rte_ether_hdr *)rte_pktmbuf_append(m, (uint16_t)len);
	assert_non_null(eh);
	memset(eh, 0, len);
	eh->dst_addr = tl_mac[to];
	eh->src_addr = tl_mac[!to];
	eh->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	ip = (struct rte_ipv4_hdr *)(eh + 1);
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(len - 14));
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_TCP;
	ip->src_addr = src;
	ip->dst_addr = dst;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	th = (struct rte_tcp_hdr *)(ip + 1);
	th->src_port = rte_cpu_to_be_16(sport);
	th->dst_port = rte_cpu_to_be_16(dport);
	th->sent_seq = rte_cpu_to_be_32(seq);
	th->recv_ack = rte_cpu_to_be_32(ack);
	th->data_off = (uint8_t)(((20 + optlen) / 4) << 4);
	th->tcp_flags = flags;
	th->rx_win = rte_cpu_to_be_16(win);
	o = (uint8_t *)(th + 1);
	if (ts != NULL) {
		uint32_t v = rte_cpu_to_be_32(ts[0]), e = rte_cpu_to_be_32(ts[1]);

		o[0] = 1;
		o[1] = 1;
		o[2] = 8;
		o[3] = 10;
		memcpy(o + 4, &v, 4);
		memcpy(o + 8, &e, 4);
	}
	if (plen > 0)
		memcpy(o + optlen, payload, plen);
	th->cksum = rte_ipv4_udptcp_cksum(ip, th);
	net_input(t->s[to].w, m, 0, false);
}

unsigned tl_count_sent(struct tl *t, unsigned i)
{
	return (unsigned)t->s[i].sent;
}

/* ---- IPv6 ---- */

const struct pg_addr tl_addr6[2] = {
    {.family = PG_AF_INET6, .v6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0x18, [15] = 1}},
    {.family = PG_AF_INET6, .v6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0x18, [15] = 2}},
};

const struct rte_ether_addr *tl_mac_of(unsigned i)
{
	return &tl_mac[i];
}

int tl_setup_v6_cfg(void **state, const struct tcp_config *cfg)
{
	struct tl *t;

	if (tl_setup_cfg(state, cfg) != 0)
		return -1;
	t = *state;
	for (unsigned i = 0; i < 2; i++) {
		struct tl_side *s = &t->s[i];
		struct net_port *p = &s->nc.ports[0];

		p->has_ip6 = true;
		p->prefix6_len = 64;
		memcpy(p->addr6, tl_addr6[i].v6, 16);
		net_port_ipv6_init(p);
		s->nc.nroutes6 = 1;
		memset(&s->nc.routes6[0], 0, sizeof(s->nc.routes6[0]));
		memcpy(s->nc.routes6[0].prefix, tl_addr6[i].v6, 8);
		s->nc.routes6[0].prefix_len = 64;
		s->w->nd = nd_table_create(s->w, 64);
		assert_non_null(s->w->nd);
		net_config_changed(s->w);
	}
	/* DAD: a probe per address, RetransTimer (1 s), then the addresses are in use */
	tl_run_for(t, 1100 * TL_MS);
	for (unsigned i = 0; i < 2; i++)
		assert_int_equal(nd_addr_state(t->s[i].w, 0, tl_addr6[i].v6), ND_ADDR_PREFERRED);
	t->baseline = rte_mempool_in_use_count(tl_mbuf_pool);
	return 0;
}

int tl_setup_v6(void **state)
{
	struct tcp_config cfg;

	tcp_config_default(&cfg);
	cfg.msl_ns = 1 * TL_S;
	return tl_setup_v6_cfg(state, &cfg);
}

void tl_frame_in(struct tl *t, unsigned to, const void *frame, size_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(tl_mbuf_pool);
	char *p;

	assert_non_null(m);
	p = rte_pktmbuf_append(m, (uint16_t)len);
	assert_non_null(p);
	memcpy(p, frame, len);
	net_input(t->s[to].w, m, 0, false);
}
