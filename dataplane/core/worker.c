/*
 * worker.c - the small services every layer uses on its own worker:
 * buffered TX, steering to the owning worker, per-worker allocation.
 */
#include <string.h>

#include <jemalloc/jemalloc.h>
#include <rte_ethdev.h>

#include "result.h"
#include "worker.h"

static uint16_t worker_eth_tx_burst(struct worker *w, uint16_t port, struct rte_mbuf **pkts,
				    uint16_t n)
{
	return rte_eth_tx_burst(w->net->ports[port].dpdk_port, w->queue, pkts, n);
}

static void worker_txbuf_flush(struct worker *w, uint16_t port)
{
	struct worker_txbuf *tb = &w->tx[port];
	uint16_t sent;

	if (tb->n == 0)
		return;
	for (uint16_t i = 0; i < tb->n; i++)
		WCOUNT_ADD(w, tx_bytes, rte_pktmbuf_pkt_len(tb->pkts[i]));
	sent = w->tx_burst(w, port, tb->pkts, tb->n);
	WCOUNT_ADD(w, tx_packets, sent);
	for (uint16_t i = sent; i < tb->n; i++) {
		WCOUNT_ADD(w, tx_bytes, -(uint64_t)rte_pktmbuf_pkt_len(tb->pkts[i]));
		WCOUNT(w, tx_drop_full);
		rte_pktmbuf_free(tb->pkts[i]);
	}
	tb->n = 0;
}

void worker_tx(struct worker *w, uint16_t port, struct rte_mbuf *m)
{
	struct worker_txbuf *tb = &w->tx[port];

	RTE_ASSERT(port < NET_MAX_PORTS);
	tb->pkts[tb->n++] = m;
	if (tb->n == WORKER_TX_BURST)
		worker_txbuf_flush(w, port);
}

void worker_tx_flush(struct worker *w)
{
	for (uint16_t p = 0; p < NET_MAX_PORTS; p++)
		worker_txbuf_flush(w, p);
}

/*
 * The receiving port index travels in m->port (the net layer works with
 * port indexes, not DPDK ids, and nothing reads m->port on TX).
 */
void worker_steer(struct worker *w, uint32_t owner, struct rte_mbuf *m, uint16_t port)
{
	RTE_ASSERT(owner < w->nworkers && owner != w->id);
	m->port = port;
	if (rte_ring_mp_enqueue(w->rings[owner], m) != 0) {
		WCOUNT(w, steer_drop_full);
		rte_pktmbuf_free(m);
		return;
	}
	WCOUNT(w, steer_fwd);
}

/*
 * Zeroed with memset rather than MALLOCX_ZERO above a few pages: for a
 * recycled large extent jemalloc makes zeroes by madvise(MADV_DONTNEED),
 * and the page faults and cross-CPU TLB shootdowns that follow cost far
 * more than a memset (tools/bench/tls.sh found them taking most of a
 * short session's CPU).
 */
#define WORKER_ZERO_BY_MEMSET 4096

void *worker_alloc(struct worker *w, size_t size)
{
	void *p;

	if (size < WORKER_ZERO_BY_MEMSET)
		return mallocx(size ? size : 1, MALLOCX_ARENA(w->arena) | MALLOCX_ZERO);
	p = mallocx(size, MALLOCX_ARENA(w->arena));
	if (p != NULL)
		memset(p, 0, size); /* mallocx is not folded into calloc by the compiler */
	return p;
}

void *worker_alloc_buf(struct worker *w, size_t size)
{
	return mallocx(size ? size : 1, MALLOCX_ARENA(w->arena));
}

void worker_free(struct worker *w, void *p)
{
	(void)w;
	if (p)
		dallocx(p, 0);
}

/*
 * One jemalloc arena per worker keeps each core's heap apart (no shared
 * arena locks, no false sharing between workers' allocations).
 */
static unsigned worker_arena_create(void)
{
	unsigned arena = 0;
	size_t len = sizeof(arena);

	if (mallctl("arenas.create", &arena, &len, NULL, 0) != 0)
		return 0; /* arena 0: still correct, only less isolated */
	return arena;
}

void worker_init_detached(struct worker *w, uint32_t id, uint32_t nworkers,
			  struct rte_mempool *pool)
{
	memset(w, 0, sizeof(*w));
	w->id = id;
	w->nworkers = nworkers;
	w->queue = (uint16_t)id;
	w->pool = pool;
	w->arena = worker_arena_create();
	w->tx_burst = worker_eth_tx_burst;
	w->idle_polls_max = 1000;
	w->idle_sleep_ns = 100000;
}
