/*
 * shm.h - the POSIX shared memory region between posternd and postern-dp.
 *
 * One object (/dev/shm/<name>) holds:
 *   - the publication header: the published generation and the slot it is in;
 *   - NSLOTS snapshot slots of fixed capacity;
 *   - one reader record per dataplane reader (main lcore + each worker): the
 *     generation it announced and the one it adopted, its heartbeat;
 *   - the dataplane section: pid, state, counter names and docs and
 *     per-worker counter blocks, each written by one core only;
 *   - after the header, page aligned: the event rings (evring.h), one per
 *     reader (0: the dataplane's main lcore, 1 + N: worker N);
 *   - then, page aligned: the command rings (cmdring.h), per worker N one
 *     request ring (posternd → worker) and one response ring (back).
 *
 * Publication is RCU by epochs across processes (DESIGN.md): the writer
 * copies a blob into a slot nobody holds, then bumps published_gen. A reader
 * announces the generation it is about to use (seq_cst store) and then
 * re-checks that the slot still carries it (seq_cst load); the writer marks
 * a slot retiring (seq_cst store) before it checks the announcements
 * (seq_cst load). Dekker's argument: either the reader sees the retirement
 * and retries, or the writer sees the announcement and picks another slot.
 * So a slot is never rewritten while a reader holds it.
 */
#ifndef PG_SHM_H
#define PG_SHM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cmdring.h"
#include "evring.h"
#include "snap_format.h"

#define SHM_MAGIC 0x4d484750u /* "PGHM" */
#define SHM_ABI 5 /* 2: event rings, counter docs; 3: command rings, adoption times; 4: 1 KB events;
                   5: IPv6 session items */
#define SHM_NSLOTS 4
#define SHM_MAX_READERS (1 + SNAP_MAX_WORKERS) /* reader 0: dataplane main */
#define SHM_MAX_COUNTERS 256
#define SHM_COUNTER_NAME 40
#define SHM_COUNTER_DOC 80
/*
 * Event rings: one per reader, 1024 records of 1 KB (1 MB) each. Sized
 * for the maximum of workers so the layout never depends on configuration
 * (a changed `workers` must not make the region incompatible), yet cheap:
 * /dev/shm is tmpfs, whose pages exist only once written, so the rings of
 * workers that do not run cost nothing. 1024 records cover a burst of
 * events between two drains (posternd drains every 50 ms: 20,000 delivery
 * records a second per worker); a storm beyond that is dropped and counted,
 * never slowing a worker. A record is 1 KB since ABI 4 so that a delivery
 * record carries its TLS evidence (policy, cipher, peer certificate).
 */
#define SHM_EV_RINGS SHM_MAX_READERS
#define SHM_EV_CAPACITY 1024
/*
 * Command rings (cmdring.h), per worker: 16 requests (one per command in
 * flight; posternd has at most one per client), 128 answer records of
 * 1 KB (128 KB: a session list of 1397 connections). Same sizing
 * argument as the event rings: tmpfs pages exist only once written.
 */
#define SHM_CMD_RINGS SNAP_MAX_WORKERS
#define SHM_CMD_REQ_CAPACITY 16
#define SHM_CMD_RESP_CAPACITY 128
#define SHM_DEFAULT_NAME "postern"
#define SHM_DEFAULT_SLOT_CAPACITY (16u << 20)
#define SHM_CACHE_LINE 64

#define SHM_SLOT_RETIRING UINT64_MAX /* slot gen while being rewritten */

struct shm_slot {
	_Atomic uint64_t gen; /* generation in it; 0 empty; RETIRING */
	uint64_t offset;      /* from the start of the region */
	uint64_t capacity;
	_Atomic uint64_t size;
};

struct shm_reader {
	_Atomic uint64_t announced; /* generation in use or being taken; 0 none */
	_Atomic uint64_t adopted;   /* generation this reader runs (for status) */
	_Atomic uint64_t heartbeat_ns; /* CLOCK_MONOTONIC of its last loop pass */
	_Atomic uint32_t active;    /* 1 while the reader exists */
	uint32_t lcore;
	_Atomic uint64_t adopted_ns; /* CLOCK_MONOTONIC when it switched to `adopted` */
	uint8_t pad[SHM_CACHE_LINE - 40];
} __attribute__((aligned(SHM_CACHE_LINE)));

enum shm_dp_state {
	SHM_DP_ABSENT = 0,
	SHM_DP_STARTING = 1,
	SHM_DP_READY = 2,
	SHM_DP_STOPPING = 3,
	SHM_DP_FAILED = 4,
};

struct shm_counter_block {
	_Atomic uint64_t v[SHM_MAX_COUNTERS];
} __attribute__((aligned(SHM_CACHE_LINE)));

struct shm_dataplane {
	_Atomic int32_t pid;       /* 0 when no dataplane attached */
	_Atomic uint32_t state;    /* enum shm_dp_state */
	_Atomic uint64_t start_ns; /* CLOCK_MONOTONIC when it started */
	_Atomic uint64_t ready_ns; /* CLOCK_MONOTONIC when it became ready */
	uint32_t nworkers;
	uint32_t ncounters;
	char message[256];         /* last fatal error, for posternctl status */
	char counter_names[SHM_MAX_COUNTERS][SHM_COUNTER_NAME];
	char counter_docs[SHM_MAX_COUNTERS][SHM_COUNTER_DOC]; /* one line each */
	struct shm_counter_block counters[SNAP_MAX_WORKERS];
};

struct shm_region {
	uint32_t magic;
	uint32_t abi;
	uint64_t total_size;
	uint64_t slot_capacity;
	_Atomic uint64_t published_gen;
	_Atomic uint32_t published_slot;
	_Atomic int32_t control_pid; /* posternd */
	_Atomic uint64_t published_ns; /* CLOCK_MONOTONIC of the last publication */
	uint64_t events_offset;   /* ring 0, from the start of the region */
	uint64_t events_stride;   /* bytes from one ring to the next */
	uint32_t events_nrings;   /* SHM_EV_RINGS */
	uint32_t events_capacity; /* records per ring */
	uint64_t cmd_offset;      /* worker 0's request ring, from the start of the region */
	uint64_t cmd_stride;      /* bytes from one worker's pair of rings to the next */
	uint64_t cmd_resp_offset; /* the response ring, from its worker's request ring */
	uint32_t cmd_nworkers;    /* SHM_CMD_RINGS */
	uint32_t cmd_req_capacity, cmd_resp_capacity;
	struct shm_slot slots[SHM_NSLOTS];
	struct shm_reader readers[SHM_MAX_READERS] __attribute__((aligned(SHM_CACHE_LINE)));
	struct shm_dataplane dp __attribute__((aligned(SHM_CACHE_LINE)));
	/* the event rings follow, then the slot areas (slot_capacity bytes each) */
};

struct shm_map {
	struct shm_region *region;
	size_t size;
	char name[64];
};

/*
 * Control side. shm_open_control creates the region, or re-attaches an
 * existing compatible one (a restarted posternd keeps the generation count).
 */
int shm_open_control(const char *name, size_t slot_capacity, struct shm_map *m,
		     char *err, size_t errlen);
/*
 * Publish a blob built by snap_build: copies it into a free slot, stamps the
 * generation and the checksum, then makes it current. PG_OK and *gen_out,
 * PG_AGAIN if every non-current slot is still held by a reader, PG_ERROR if
 * it does not fit a slot.
 */
int shm_publish(struct shm_map *m, const void *blob, size_t len, uint64_t *gen_out,
		char *err, size_t errlen);

/* Dataplane side: attach an existing region (PG_AGAIN if absent yet). */
int shm_attach(const char *name, struct shm_map *m, char *err, size_t errlen);

/*
 * Take the current snapshot for reader r: announce, validate, return it.
 * NULL if nothing is published yet. The snapshot stays valid until
 * shm_release(r) or the next shm_acquire(r). Does not verify the checksum:
 * call snap_validate once per new generation.
 */
const struct snap_header *shm_acquire(struct shm_map *m, unsigned r, uint64_t *gen_out);
void shm_release(struct shm_map *m, unsigned r);
static inline uint64_t shm_published_gen(const struct shm_map *m)
{
	return atomic_load_explicit(&m->region->published_gen, memory_order_acquire);
}

void shm_detach(struct shm_map *m);
/* Remove the object name (posternd --remove / tests). */
int shm_unlink_name(const char *name);

/*
 * Event ring r (0: the dataplane's main lcore, 1 + N: worker N) of a region
 * whose layout was checked by shm_open_control or shm_attach; NULL if r is
 * out of range.
 */
struct evring *shm_evring(struct shm_region *rg, unsigned r);
/* Worker w's command request and response rings; NULL out of range. */
struct evring *shm_cmd_request(struct shm_region *rg, unsigned w);
struct evring *shm_cmd_response(struct shm_region *rg, unsigned w);

uint64_t shm_now_ns(void); /* CLOCK_MONOTONIC */

/* Is this process alive (exists, and is not a zombie)? */
bool shm_pid_alive(pid_t pid);

#endif
