/*
 * spool_impl.h - private structures of the spool, shared by spool.c (API,
 * queue), spool_io.c (io_uring: batches, writes, fdatasync, segments,
 * reclaim, reads) and spool_replay.c.
 */
#ifndef PG_SPOOL_IMPL_H
#define PG_SPOOL_IMPL_H

#include <liburing.h>

#include "spool.h"

/* Every io_uring user_data points at one of these. */
enum spool_op_kind {
	OP_WRITE,       /* struct spool_batch */
	OP_FSYNC,       /* sp->fsync_op */
	OP_SEG_OPEN,    /* struct spool_seg: creating the spare */
	OP_SEG_HDR,     /* header write of the spare */
	OP_SEG_SYNC,    /* its fdatasync */
	OP_SEG_DIRSYNC, /* the directory fsync that makes its name durable */
	OP_UNLINK,      /* struct spool_seg being reclaimed */
	OP_RECLAIM_DIRSYNC,
	OP_READ, /* struct spool_read */
};

struct spool_op {
	uint8_t kind;
};

enum spool_seg_state {
	SEG_CREATING, /* spare: open/header/sync in flight */
	SEG_SPARE,    /* durable header, ready to become active */
	SEG_ACTIVE,   /* records are staged into it */
	SEG_CLOSED,   /* full: no new records, batches may still be in flight */
	SEG_OLD,      /* all written and synced, or replayed: read-only */
	SEG_FAILED,   /* a write/fsync failed: never written again */
	SEG_UNLINKING,
};

struct spool_msg;

struct spool_seg {
	struct spool_op op;
	struct spool_seg *next; /* sp->segs, by seq */
	uint64_t seq;
	int fd;
	uint8_t state;
	bool keep;       /* damaged: never reclaimed, left for the operator */
	bool has_data;   /* holds records (replay: at least one valid) */
	uint32_t refs;   /* live messages with a record here, and ghosts' last segments */
	uint32_t end;    /* staged end offset */
	uint32_t synced; /* offset durable (covered by a completed fdatasync) */
	/* ghosts waiting for this segment's unlink (see spool_msg_finish) */
	struct spool_msg **ghosts;
	uint32_t nghosts, ghosts_cap;
	char name[32];
	uint8_t hdr_buf[SPOOL_SEG_HDR_SIZE];
};

enum spool_msg_state {
	MSG_RECEIVING,  /* begin/append */
	MSG_COMMITTING, /* MSG_END staged, waiting for the fdatasync */
	MSG_QUEUED,     /* committed, in the queue */
	MSG_FAILED,     /* its commit can no longer succeed; caller aborts it */
	MSG_PARKED,     /* done or aborted, its final record waiting for resume */
	MSG_GHOST,      /* done; kept only to order segment reclaim */
	MSG_DAMAGED,    /* replay: committed but incomplete */
};

struct spool_chunk {
	struct spool_seg *seg;
	uint32_t off; /* record offset in the segment */
	uint32_t len; /* body bytes */
};

struct spool_msg {
	struct spool_msg *hnext;         /* id hash chain */
	struct spool_msg *qprev, *qnext; /* queue, or the in-progress list */
	uint64_t id;
	uint8_t state;
	bool held;
	bool in_queue;
	bool in_progress;
	void *user; /* the delivery side's state (spool_msg_user), never touched here */
	uint32_t nrcpt, ndone;
	uint32_t attempts;
	uint64_t next_attempt_ns;
	uint64_t arrival_ns;
	uint64_t body_len;
	/* envelope: the MSG_BEGIN payload, and pointers into it */
	uint8_t *env;
	uint32_t env_len;
	const char *sender;
	const char **rcpts; /* NUL-terminated copies in env_str */
	char *env_str;
	const uint8_t *params;
	uint32_t params_len;
	uint8_t *rcpt_done; /* bitmap */
	/* body */
	struct spool_chunk *chunks;
	uint32_t nchunks, chunks_cap;
	uint8_t *acc; /* bytes not yet in a MSG_DATA record */
	uint32_t acc_len, acc_cap;
	/* segments holding any of its records, in order */
	struct spool_seg **segs;
	uint32_t nsegs, segs_cap;
	uint32_t ghost_wait; /* MSG_GHOST: segments still to unlink */
	uint32_t reads;      /* reads in flight */
	bool free_after_reads;
	/* commit */
	uint64_t commit_lsn;
	spool_commit_cb *cb;
	void *cb_arg;
	struct spool_msg *wnext; /* commit waiters, FIFO */
};

enum spool_batch_state { B_FILLING, B_READY, B_WRITING, B_WRITTEN };

struct spool_batch {
	struct spool_op op;
	struct spool_batch *next;
	struct spool_seg *seg;
	uint64_t lsn_start, lsn_end; /* log position: bytes staged since open */
	uint32_t off;                /* file offset of buf[0] */
	uint32_t len, cap;
	uint32_t written; /* bytes done (short writes resume) */
	uint8_t state;
	bool orphan; /* spool failed while it was in flight */
	uint8_t *buf;
};

struct spool_sync_waiter {
	struct spool_sync_waiter *next;
	uint64_t lsn;
	spool_sync_cb *cb;
	void *arg;
};

struct spool_read {
	struct spool_op op;
	struct spool_msg *m;
	uint32_t chunk;
	uint32_t size;
	spool_read_cb *cb;
	void *arg;
	uint8_t *buf;
};

/* A state record kept while the spool is failed (or lost with a batch). */
struct spool_parked {
	struct spool_parked *next;
	uint8_t type;
	uint32_t len;
	uint64_t msg_id;
	struct spool_msg *m; /* MSG_PARKED message to finish once written, or NULL */
	uint8_t payload[16];
};

struct spool {
	struct spool_config cfg;
	enum spool_state state;
	int err;
	char dir[4096]; /* dir/w<N> */
	int dirfd;
	struct io_uring ring;
	unsigned sqes_pending; /* prepared, not submitted */
	unsigned inflight;     /* submitted, completion not seen */

	struct spool_seg *segs;   /* all, by seq */
	struct spool_seg *active; /* records go here */
	struct spool_seg *spare;  /* the next active, creating or ready */
	struct spool_seg *wseg;   /* the one segment being written and synced */
	uint64_t next_seq;
	uint64_t rec_seq;
	bool spare_failed;
	int spare_err;

	/* write pipeline */
	uint64_t lsn;           /* staged */
	uint64_t submitted_lsn; /* writes submitted up to */
	uint64_t written_lsn;   /* writes completed, contiguously */
	uint64_t durable_lsn;   /* covered by a completed fdatasync */
	uint64_t fsync_target;
	bool fsync_inflight;
	struct spool_op fsync_op;
	struct spool_batch *bhead, *btail; /* not yet durable, in order */
	struct spool_batch *orphans;       /* failed, waiting for their completion */
	size_t pending_bytes;

	struct spool_msg *whead, *wtail; /* commit waiters, by lsn */
	struct spool_sync_waiter *shead, *stail;
	struct spool_parked *phead, *ptail;

	/* reclaim: one round at a time (unlinks, then one directory fsync) */
	unsigned unlinks_inflight;
	bool reclaim_dirsync;
	struct spool_op reclaim_op;
	struct spool_seg *reclaiming; /* unlinked segments waiting for the dir sync */

	/* messages */
	struct spool_msg **hash;
	uint32_t hash_mask, nmsgs;
	struct spool_msg *qhead, *qtail; /* the queue */
	unsigned qcount;
	struct spool_msg *progress; /* RECEIVING/COMMITTING, to fail them at once */

	struct spool_stats stats;
};

/* spool.c */
void *spool_zalloc(struct spool *sp, size_t size);
void spool_free(struct spool *sp, void *p);
void spool_log(struct spool *sp, enum spool_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
struct spool_msg *spool_msg_new(struct spool *sp, uint64_t id);
int spool_msg_set_envelope(struct spool *sp, struct spool_msg *m, const uint8_t *env, uint32_t len);
int spool_msg_add_seg(struct spool *sp, struct spool_msg *m, struct spool_seg *seg);
int spool_msg_add_chunk(struct spool *sp, struct spool_msg *m, struct spool_seg *seg, uint32_t off,
                        uint32_t len);
void spool_msg_finish(struct spool *sp, struct spool_msg *m);
void spool_msg_release_segs(struct spool *sp, struct spool_msg *m);
void spool_msg_destroy(struct spool *sp, struct spool_msg *m);
void spool_queue_add(struct spool *sp, struct spool_msg *m);
void spool_queue_remove(struct spool *sp, struct spool_msg *m);
void spool_progress_remove(struct spool *sp, struct spool_msg *m);
void spool_hash_remove(struct spool *sp, struct spool_msg *m);
bool spool_msg_apply_rcpt(struct spool_msg *m, uint32_t rcpt);

/* spool_io.c */
int spool_ring_init(struct spool *sp);
struct spool_seg *spool_seg_new(struct spool *sp, uint64_t seq);
void spool_seg_name(char *buf, size_t size, uint64_t seq);
int spool_seg_create_sync(struct spool *sp, struct spool_seg *seg);
void spool_seg_hdr_fill(struct spool *sp, struct spool_seg *seg);
void spool_spare_start(struct spool *sp);
int spool_stage(struct spool *sp, uint8_t type, uint64_t msg_id, const void *p1, uint32_t l1,
                const void *p2, uint32_t l2, struct spool_seg **seg_out, uint32_t *off_out);
int spool_reserve(struct spool *sp, uint64_t bytes);
void spool_fail(struct spool *sp, int err, const char *what);
void spool_reclaim(struct spool *sp);
unsigned spool_io_complete(struct spool *sp);
void spool_io_submit(struct spool *sp);
void spool_fire_waiters(struct spool *sp);
void spool_park(struct spool *sp, uint8_t type, uint64_t msg_id, const void *payload, uint32_t len,
                struct spool_msg *m);
void spool_io_drain(struct spool *sp);
void spool_seg_free(struct spool *sp, struct spool_seg *seg);
uint32_t spool_rec_crc(const struct spool_rec_hdr *h, const void *payload);

/* spool_replay.c */
int spool_replay(struct spool *sp, struct spool_replay_report *rep);

#endif
