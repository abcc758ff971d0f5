/*
 * spool.h - the per-worker durable spool (DESIGN.md, "Durability"): messages
 * are appended to checksummed segment files with io_uring and acknowledged
 * only once an fdatasync covers them; every message completed in a poll
 * interval shares one fdatasync (group commit). Replayed on open.
 *
 * Single-threaded: a spool belongs to one worker and is only touched from
 * its loop. Nothing here blocks, except spool_open (replay, before the
 * loop starts), spool_close and spool_read_body (see there).
 *
 * Seams for the dataplane (not wired yet):
 *   - worker init:  spool_open(cfg with alloc = worker_alloc hooks)
 *   - poll loop:    spool_poll(sp) in the "drain async-crypto and spool
 *                   completions" step; spool_busy(sp) keeps the loop from
 *                   sleeping long while I/O is in flight
 *   - SMTP DATA:    spool_msg_begin at the first DATA/BDAT, spool_msg_append
 *                   per received piece (PG_AGAIN: stop reading the socket),
 *                   spool_msg_commit at end of data → the callback sends 250
 *                   or 452 4.3.1 (ENOSPC) / 451 4.3.0 (anything else)
 *   - delivery:     spool_queue_first/next, spool_read_chunk, then
 *                   spool_msg_delivered / spool_msg_defer
 *   - a timer:      spool_resume(sp) while spool_state(sp) == SPOOL_FAILED
 */
#ifndef PG_SPOOL_H
#define PG_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spool_format.h"

struct spool;
struct spool_msg;

#define SPOOL_ID_STRLEN 17 /* 16 hex digits + NUL */

enum spool_state {
	SPOOL_ACTIVE, /* accepting mail */
	SPOOL_FAILED, /* a write or fdatasync failed: refusing new mail until resumed */
};

/* Test-only fault injection: I/O operations, seen at completion. */
enum spool_io_op {
	SPOOL_IO_WRITE,
	SPOOL_IO_FSYNC,
	SPOOL_IO_CREATE, /* any step of creating a segment */
	SPOOL_IO_READ,
};

/*
 * Called with every completion's result (bytes or -errno); returns the
 * result the spool should see. For unit tests only: NULL in production.
 */
typedef int spool_io_hook_fn(enum spool_io_op op, int res, void *owner);

enum spool_log_level { SPOOL_LOG_ERR, SPOOL_LOG_WARNING, SPOOL_LOG_NOTICE, SPOOL_LOG_INFO };
typedef void spool_log_fn(enum spool_log_level level, const char *msg, void *owner);

struct spool_config {
	const char *dir;       /* spool root; this worker's files are in dir/w<worker>/ */
	uint32_t worker;       /* < 1024 */
	uint32_t segment_size; /* default 64 MiB; SPOOL_SEG_MIN_SIZE..SPOOL_SEG_MAX_SIZE */
	uint32_t batch_size;   /* write buffer, default 1 MiB */
	uint32_t chunk_size;   /* body bytes per MSG_DATA record, default 64 KiB */
	size_t max_pending;    /* staged + in-flight bytes before PG_AGAIN, default 32 MiB */
	unsigned ring_entries; /* io_uring SQ size, default 256 */
	/*
	 * CPUs for io_uring's kernel workers (the fdatasyncs run there), so that
	 * they do not compete with the pinned lcore. NULL: inherit.
	 */
	const void *iowq_cpus; /* cpu_set_t */
	size_t iowq_cpus_size;

	/* memory: default calloc/free; the dataplane passes worker_alloc/free */
	void *(*alloc)(size_t size, void *owner); /* zeroed */
	void (*free)(void *p, void *owner);
	void *alloc_arg;

	spool_log_fn *log; /* default: stderr */
	void *log_arg;

	spool_io_hook_fn *io_hook; /* tests only */
	void *io_hook_arg;
};

/* What spool_open found. Anything in the second group deserves an alert. */
struct spool_replay_report {
	unsigned segments;  /* segment files read */
	uint64_t records;   /* valid records applied */
	unsigned queued;    /* committed, not done: back in the queue */
	unsigned done;      /* delivered or deleted messages seen */
	unsigned discarded; /* never committed (no MSG_END) or aborted: dropped */
	unsigned torn;      /* segments with a torn tail (normal after a crash) */
	uint64_t torn_bytes;
	/* -- damage -- */
	unsigned corrupt;      /* bad records inside synced data: a disk or a bug ate data */
	unsigned damaged;      /* committed messages with a lost part: dropped, logged by id */
	unsigned bad_segments; /* unreadable segment files (kept, never reclaimed) */
};

struct spool_stats {
	uint64_t records;
	uint64_t writes;
	uint64_t write_bytes;
	uint64_t fsyncs; /* data fdatasyncs (not the directory syncs) */
	uint64_t dir_syncs;
	uint64_t commits;
	uint64_t commit_errors;
	uint64_t reads;
	uint64_t segments_created;
	uint64_t segments_reclaimed;
	uint64_t failures;
};

/* Result of a commit or a sync: PG_OK, or PG_ERROR with err = an errno. */
typedef void spool_commit_cb(struct spool_msg *m, int result, int err, void *owner);
typedef void spool_sync_cb(int result, int err, void *owner);
/* data/len valid during the call only; result PG_OK or PG_ERROR (err). */
typedef void spool_read_cb(struct spool_msg *m, uint32_t chunk, const void *data, size_t len,
                           int result, int err, void *owner);

struct spool_envelope {
	const char *sender;       /* reverse-path without <>, "" for the null sender */
	const char *const *rcpts; /* forward-paths */
	uint32_t nrcpt;           /* >= 1 */
	const void *params;       /* opaque to the spool, may be NULL */
	uint32_t params_len;
	uint64_t arrival_ns; /* CLOCK_REALTIME */
};

/*
 * Open (creating dir/w<N> if needed), replay, and start a new segment.
 * Blocking: call at worker init, before the loop. PG_ERROR with errno set if
 * the spool cannot be used at all; damage found by the replay is in `rep`
 * (and logged) but does not stop the spool.
 */
int spool_open(const struct spool_config *cfg, struct spool **out, struct spool_replay_report *rep);
/* Waits for I/O in flight (blocking; shutdown only), then frees everything. */
void spool_close(struct spool *sp);

/* Drain completions and submit writes/fsyncs. Returns completions handled. */
unsigned spool_poll(struct spool *sp);
bool spool_busy(const struct spool *sp);
enum spool_state spool_state(const struct spool *sp);
int spool_errno(const struct spool *sp); /* why it failed, or 0 */
/* Leave SPOOL_FAILED on a fresh segment: PG_OK, PG_AGAIN (I/O still draining). */
int spool_resume(struct spool *sp);
const struct spool_stats *spool_stats(const struct spool *sp);

/*
 * Inbound. begin/append/commit return PG_OK, PG_AGAIN (nothing done: too
 * much pending or a segment not ready yet; call again after spool_poll),
 * PG_DECLINED (envelope too large for a record) or PG_ERROR (failed spool:
 * spool_errno). After PG_ERROR from append or commit, call spool_msg_abort.
 * The callback of a commit fires from spool_poll, exactly once; after it the
 * message belongs to the queue (PG_OK) or is gone (PG_ERROR).
 */
int spool_msg_begin(struct spool *sp, const struct spool_envelope *env, struct spool_msg **out);
int spool_msg_append(struct spool *sp, struct spool_msg *m, const void *data, size_t len);
int spool_msg_commit(struct spool *sp, struct spool_msg *m, spool_commit_cb *cb, void *arg);
/* The session went away while committing: the message is still queued. */
void spool_msg_forget_cb(struct spool *sp, struct spool_msg *m);
/*
 * Drop a message that was not committed (RSET, disconnect, failed append).
 * On a message whose commit is in flight it only forgets the callback
 * (like spool_msg_forget_cb): the message will still be queued.
 */
void spool_msg_abort(struct spool *sp, struct spool_msg *m);

/* The queue: committed messages not yet done, in commit order. */
struct spool_msg *spool_queue_first(struct spool *sp);
struct spool_msg *spool_queue_next(struct spool *sp, struct spool_msg *m);
unsigned spool_queue_count(const struct spool *sp);
struct spool_msg *spool_msg_lookup(struct spool *sp, uint64_t id);

uint64_t spool_msg_id(const struct spool_msg *m);
char *spool_id_str(uint64_t id, char buf[SPOOL_ID_STRLEN]);
int spool_id_parse(const char *s, uint64_t *id);
const char *spool_msg_sender(const struct spool_msg *m);
uint32_t spool_msg_nrcpt(const struct spool_msg *m);
const char *spool_msg_rcpt(const struct spool_msg *m, uint32_t i);
bool spool_msg_rcpt_done(const struct spool_msg *m, uint32_t i);
const void *spool_msg_params(const struct spool_msg *m, uint32_t *len);
uint64_t spool_msg_arrival(const struct spool_msg *m);
uint64_t spool_msg_body_len(const struct spool_msg *m);
uint32_t spool_msg_nchunks(const struct spool_msg *m);
uint32_t spool_msg_attempts(const struct spool_msg *m);
uint64_t spool_msg_next_attempt(const struct spool_msg *m);
bool spool_msg_held(const struct spool_msg *m);
/*
 * One pointer for the delivery side (relay/outbound.c), NULL at commit and
 * replay. The spool never reads it, and frees a message without looking
 * at it: whoever sets it must clear and free it before the call that
 * makes the message leave the queue (the last spool_msg_delivered, or
 * spool_msg_delete).
 */
void *spool_msg_user(const struct spool_msg *m);
void spool_msg_set_user(struct spool_msg *m, void *user);

/*
 * Queue state changes: recorded in the log (made durable by the next
 * fdatasync; spool_sync to wait for it) and applied in memory at once.
 * When the last recipient is delivered, or on delete, the message leaves
 * the queue and `m` must not be used any more. In SPOOL_FAILED they are
 * kept in memory and written on resume.
 */
int spool_msg_delivered(struct spool *sp, struct spool_msg *m,
                        uint32_t rcpt /* or SPOOL_RCPT_ALL */);
int spool_msg_defer(struct spool *sp, struct spool_msg *m, uint64_t next_attempt_ns,
                    uint32_t attempts);
int spool_msg_hold(struct spool *sp, struct spool_msg *m);
int spool_msg_release(struct spool *sp, struct spool_msg *m);
int spool_msg_delete(struct spool *sp, struct spool_msg *m);
/* cb fires once everything appended so far is on stable storage. */
int spool_sync(struct spool *sp, spool_sync_cb *cb, void *arg);

/*
 * Reading a queued message back: chunk by chunk through io_uring, the
 * record's crc checked before the callback. PG_AGAIN: ring full, retry.
 */
int spool_read_chunk(struct spool *sp, struct spool_msg *m, uint32_t chunk, spool_read_cb *cb,
                     void *arg);
/*
 * The whole body with plain pread: blocking, for tests, tools and the
 * control path only, never the delivery fast path. PG_DECLINED if cap is
 * too small (*len says how much is needed).
 */
int spool_read_body(struct spool *sp, struct spool_msg *m, void *buf, size_t cap, size_t *len);

#endif
