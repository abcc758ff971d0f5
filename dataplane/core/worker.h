/*
 * worker.h - struct worker: all mutable state of one worker lcore. It is
 * passed explicitly to every function of the fast path; nothing else is
 * mutable and shared. Other workers reach it only through its steering ring.
 */
#ifndef PG_WORKER_H
#define PG_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_common.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "counters.h"
#include "net/net.h"

#define WORKER_RX_BURST 32
#define WORKER_TX_BURST 32
#define WORKER_RING_SIZE 4096 /* steering ring per worker, power of two */

struct shm_map;
struct snap_header;
struct tls_cert_set;
struct diag_state;
struct inbound;
struct outbound;
struct spool;
struct tcp_stack;
struct timer_wheel;

/* Frames waiting for the next TX flush, per port. */
struct worker_txbuf {
	uint16_t n;
	struct rte_mbuf *pkts[WORKER_TX_BURST];
};

/*
 * How a worker hands frames to a port. The default calls rte_eth_tx_burst
 * on the worker's own queue; unit tests install a capture. Returns the
 * number of frames taken; the caller frees the rest (counted).
 */
typedef uint16_t (*worker_tx_burst_fn)(struct worker *w, uint16_t port,
				       struct rte_mbuf **pkts, uint16_t n);

struct worker {
	/* identity and layout */
	uint32_t id;        /* 0..nworkers-1 */
	uint32_t nworkers;
	unsigned lcore;
	uint16_t queue;     /* RX/TX queue index this worker owns on every port */

	/* time: CLOCK_MONOTONIC-like ns, updated once per loop pass */
	uint64_t now_ns;

	/* memory */
	struct rte_mempool *pool; /* mbufs for frames this worker builds */
	unsigned arena;           /* jemalloc arena of this worker */

	/* steering: rings[i] is worker i's inbound ring (MP/SC) */
	struct rte_ring **rings;

	/* network */
	const struct net_config *net; /* current, from the adopted snapshot */
	struct arp_table *arp;
	struct nd_table *nd;       /* IPv6 neighbours and DAD (net/nd.c); NULL: no IPv6 */
	uint64_t icmp6_err_tat_ns; /* ICMPv6 error rate limit (net/icmp6.c) */
	struct worker_txbuf tx[NET_MAX_PORTS];
	worker_tx_burst_fn tx_burst;
	void *tx_capture; /* for the test capture */
	struct tcp_stack *tcp; /* NULL: TCP not served here (dropped as ipv4_drop_proto) */
	struct diag_state *diag; /* diagnostic services and client (diag/diag.h), or NULL */
	struct inbound *inbound; /* the SMTP service (relay/inbound.h), or NULL */
	struct spool *spool;     /* this worker's spool (spool/spool.h), NULL without SMTP */
	struct outbound *outbound; /* delivery (relay/outbound.h), or NULL */

	/* timers of every layer (core/timer.h); advanced once per loop pass */
	struct timer_wheel *timers;

	/* control snapshot */
	struct shm_map *shm;
	unsigned reader;              /* our reader record in shared memory */
	uint64_t gen;                 /* adopted generation, 0 = none */
	const struct snap_header *snap;
	struct net_config *net_owned; /* what `net` points to, ours to free */
	struct tls_cert_set *certs;   /* inbound certificates as OpenSSL objects */
	uint32_t certs_digest;        /* of the snapshot content they came from */

	/* idle back-off */
	uint32_t idle_polls;
	uint32_t idle_polls_max;
	uint64_t idle_sleep_ns;
	uint64_t next_timer_ns;
	uint64_t next_publish_ns;

	uint64_t ctr[CTR__COUNT];
} __rte_cache_aligned;

#define WCOUNT(w, name) ((w)->ctr[CTR_##name]++)
#define WCOUNT_ADD(w, name, n) ((w)->ctr[CTR_##name] += (n))

/* Queue a frame for transmission on port index `port`; flushes when full. */
void worker_tx(struct worker *w, uint16_t port, struct rte_mbuf *m);
void worker_tx_flush(struct worker *w);

/* Forward a frame to worker `owner`'s ring; frees and counts on overflow. */
void worker_steer(struct worker *w, uint32_t owner, struct rte_mbuf *m, uint16_t port);

/* Allocation in the worker's own jemalloc arena. */
void *worker_alloc(struct worker *w, size_t size);     /* zeroed */
/* Not zeroed: buffers whose bytes are written before they are read. */
void *worker_alloc_buf(struct worker *w, size_t size);
void worker_free(struct worker *w, void *p);

/* Set up a worker struct for use without ports (unit tests, harnesses). */
void worker_init_detached(struct worker *w, uint32_t id, uint32_t nworkers,
			  struct rte_mempool *pool);

#endif
