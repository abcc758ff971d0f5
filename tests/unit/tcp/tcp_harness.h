/*
 * tcp_harness.h - two complete stacks (worker, net_config, ARP, timing
 * wheel, TCP) joined by an in-memory Ethernet link with a virtual clock
 * and programmable delay, rate, loss, duplication, reordering and bit
 * corruption, driven by a seeded PRNG (PG_TCP_SEED, printed in the TAP
 * output). Side 0 is 198.18.0.1, side 1 is 198.18.0.2, on one /24; with
 * tl_setup_v6 also 2001:db8:18::1 and ::2, on one /64.
 * Also: a pattern-checking application for bulk transfers and a segment
 * injector for crafted-segment tests.
 */
#ifndef PG_TEST_TCP_HARNESS_H
#define PG_TEST_TCP_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <rte_byteorder.h>
#include <rte_mbuf.h>

#include "core/timer.h"
#include "core/worker.h"
#include "net/net.h"
#include "net/tcp.h"
#include "net/tcp_private.h"

#define IP4(a, b, c, d)                                                                            \
	rte_cpu_to_be_32((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 |          \
	                 (uint32_t)(d))
#define TL_IP0 IP4(198, 18, 0, 1)
#define TL_IP1 IP4(198, 18, 0, 2)
#define TL_MS 1000000ull
#define TL_S 1000000000ull
#define CTR_VAL(t, i, name) ((t)->s[i].w->ctr[CTR_##name])

struct tl_link {
	uint64_t delay_ns;     /* one-way propagation */
	uint64_t jitter_ns;    /* extra random delay: reorders when > packet spacing */
	uint64_t rate_bps;     /* serialization rate, 0 = infinite */
	uint32_t loss_ppm;     /* per packet, both directions */
	uint32_t dup_ppm;
	uint32_t corrupt_ppm;  /* one random bit flipped */
	bool blackhole[2];     /* drop everything sent by side i */
};

struct tl_side {
	struct worker *w;
	struct net_config nc;
	struct timer_wheel *tw;
	uint64_t busy_until; /* link serialization */
	uint64_t sent, lost, duped, corrupted;
};

struct tl_pkt {
	uint64_t at, order;
	unsigned to;
	struct rte_mbuf *m;
};

struct tl {
	struct tl_side s[2];
	struct tl_link link;
	uint64_t now;
	uint64_t rng;
	uint64_t order;
	struct tl_pkt *heap;
	unsigned nheap, capheap;
	unsigned baseline; /* mbufs in use before the test */
	/* optional tap: called for every frame before the link model, may return false to drop */
	bool (*tap)(struct tl *t, unsigned from, struct rte_mbuf *m, void *arg);
	void *tap_arg;
};

void tl_eal_init(void);
void tl_eal_fini(void);
struct rte_mempool *tl_pool(void);
uint64_t tl_seed(void);

/* cmocka setup/teardown with the default tcp_config (and a variant taking one). */
int tl_setup(void **state);
int tl_setup_cfg(void **state, const struct tcp_config *cfg);
int tl_teardown(void **state);

uint64_t tl_rand(struct tl *t);

/* Run the virtual world: deliver due packets, fire timers, until done(t, arg) or `limit_ns`. */
bool tl_run(struct tl *t, bool (*done)(struct tl *t, void *arg), void *arg, uint64_t limit_ns);
/* Run for a fixed virtual duration. */
void tl_run_for(struct tl *t, uint64_t ns);
/* Packets on the link. */
static inline unsigned tl_inflight(const struct tl *t)
{
	return t->nheap;
}

/* The pattern bulk transfers send: byte at stream offset i. */
static inline uint8_t tl_pattern(uint64_t i, uint32_t seed)
{
	uint64_t x = (i >> 3) * 0x9e3779b97f4a7c15ull + seed;

	return (uint8_t)((x >> 40) ^ (x >> (8 * (i & 7) % 56)) ^ i);
}

/* An application end: sends `to_send` pattern bytes, checks what it receives. */
struct tl_app {
	struct tl *t;
	unsigned side;
	struct tcp_conn *c;
	uint64_t to_send, sent, received;
	uint32_t tx_seed, rx_seed;
	uint64_t rx_bad; /* first bad offset + 1, 0 = all good */
	bool shutdown_when_sent;
	bool close_on_eof;   /* tcp_close() once EOF seen and own data sent */
	bool no_read;        /* leave data in the receive buffer */
	bool connected, eof, closed, handle_released;
	enum tcp_error err;
	bool errored;
	unsigned accepts;
	struct tl_app *accept_into; /* listener: the app that takes the connection */
};

extern const struct tcp_ops tl_app_ops;

/* Pump more data if any is left (after no_read changes, etc.). */
void tl_app_pump(struct tl_app *a);
void tl_app_read(struct tl_app *a);

/*
 * Inject a crafted segment into side `to` as if from the peer: flags,
 * seq, ack, window (raw field), optional timestamp option, payload.
 */
void tl_inject(struct tl *t, unsigned to, uint32_t src, uint32_t dst, uint16_t sport,
               uint16_t dport, uint8_t flags, uint32_t seq, uint32_t ack, uint16_t win,
               const uint32_t *ts /* [tsval, tsecr] or NULL */, const void *payload,
               uint32_t plen);

/* Frames side i handed to the link so far that were TCP with these flags set (any). */
unsigned tl_count_sent(struct tl *t, unsigned i);

/*
 * IPv6 on the same link: side i also has 2001:db8:18::1+i/64 (tl_addr6[i]),
 * with ND, and the world has run past DAD, so both addresses are in use.
 */
extern const struct pg_addr tl_addr6[2];
int tl_setup_v6(void **state);
int tl_setup_v6_cfg(void **state, const struct tcp_config *cfg);
/* Deliver a whole Ethernet frame (built by the test) to side `to`. */
void tl_frame_in(struct tl *t, unsigned to, const void *frame, size_t len);
/* The MAC of side i. */
const struct rte_ether_addr *tl_mac_of(unsigned i);

#endif
