/*
 * spool_io.c - the spool's I/O through io_uring: records are staged into
 * write batches, batches are written with IORING_OP_WRITE and made durable
 * with IORING_OP_FSYNC (IORING_FSYNC_DATASYNC); segment files are created
 * ahead of need (OPENAT, header, fdatasync, directory fsync) and reclaimed
 * (UNLINKAT, directory fsync). Nothing here waits: spool_io_poll drains the
 * completion queue and submits what became possible.
 *
 * Ordering (an fdatasync only covers writes that completed before it was
 * issued):
 *   - when no write is in flight, the writes of a pass and the fdatasync
 *     are one IOSQE_IO_LINK chain: the kernel starts each link only after
 *     the previous one completed, and a failed or short write cancels the
 *     rest of the chain (the fsync then reports -ECANCELED, never success);
 *   - otherwise (full batches went out while an fsync was running) the
 *     fdatasync is only submitted once every write has completed;
 *   - one fdatasync at a time; what is staged while it runs waits for the
 *     next one (group commit: all of it shares that next fdatasync);
 *   - a segment is written only after the previous one is fully durable,
 *     so the durable log position is one number (durable_lsn).
 *
 * Buffered I/O, not O_DIRECT: records are 8-byte aligned and commits are
 * small; O_DIRECT would pad every group commit to a 4 KiB block and rewrite
 * the partial tail block next time, which puts acknowledged records at risk
 * of a torn block. With buffered writes the page cache absorbs the partial
 * pages and fdatasync is the durability point.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "result.h"
#include "spool_impl.h"

#define SYNC_REC_SIZE (SPOOL_REC_HDR_SIZE + sizeof(struct spool_rec_sync))

/* A segment's io_uring ops: one op struct per step, to tell them apart. */
enum { SEGOP_OPEN, SEGOP_HDR, SEGOP_SYNC, SEGOP_DIRSYNC, SEGOP_UNLINK, SEGOP__N };

/* struct spool_seg has one op; creation steps need several: a side table. */
struct spool_seg_ops {
	struct spool_op op[SEGOP__N];
	struct spool_seg *seg;
	unsigned create_left; /* completions still due for the creation chain */
	int create_err;
};

uint32_t spool_rec_crc(const struct spool_rec_hdr *h, const void *payload)
{
	struct spool_rec_hdr c = *h;
	uLong crc;

	c.crc = 0;
	crc = crc32(0L, (const Bytef *)&c, sizeof(c));
	if (h->len != 0)
		crc = crc32(crc, (const Bytef *)payload, h->len);
	return (uint32_t)crc;
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int hook(struct spool *sp, enum spool_io_op op, int res)
{
	return sp->cfg.io_hook != NULL ? sp->cfg.io_hook(op, res, sp->cfg.io_hook_arg) : res;
}

/* An SQE, flushing the SQ once if it is full. NULL: ring really full. */
static struct io_uring_sqe *get_sqe(struct spool *sp)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&sp->ring);

	if (sqe == NULL && sp->sqes_pending != 0) {
		int n = io_uring_submit(&sp->ring);

		if (n > 0)
			sp->sqes_pending -=
			    (unsigned)n < sp->sqes_pending ? (unsigned)n : sp->sqes_pending;
		sqe = io_uring_get_sqe(&sp->ring);
	}
	if (sqe != NULL) {
		sp->sqes_pending++;
		sp->inflight++;
	}
	return sqe;
}

int spool_ring_init(struct spool *sp)
{
	int r = io_uring_queue_init(sp->cfg.ring_entries, &sp->ring, 0);

	if (r < 0) {
		spool_log(sp, SPOOL_LOG_ERR, "io_uring_queue_init: %s", strerror(-r));
		errno = -r;
		return PG_ERROR;
	}
	if (sp->cfg.iowq_cpus != NULL) {
		r = io_uring_register_iowq_aff(&sp->ring, sp->cfg.iowq_cpus_size,
		                               sp->cfg.iowq_cpus);
		if (r < 0)
			spool_log(sp, SPOOL_LOG_WARNING, "io-wq affinity not set: %s",
			          strerror(-r));
	}
	return PG_OK;
}

/* ---- segments ---- */

void spool_seg_name(char *buf, size_t size, uint64_t seq)
{
	snprintf(buf, size, "seg-%016llx.pgs", (unsigned long long)seq);
}

struct spool_seg *spool_seg_new(struct spool *sp, uint64_t seq)
{
	struct spool_seg *seg = spool_zalloc(sp, sizeof(*seg) + sizeof(struct spool_seg_ops));
	struct spool_seg_ops *ops;
	struct spool_seg **pp;

	if (seg == NULL)
		return NULL;
	seg->seq = seq;
	seg->fd = -1;
	seg->end = SPOOL_SEG_HDR_SIZE;
	seg->synced = SPOOL_SEG_HDR_SIZE;
	spool_seg_name(seg->name, sizeof(seg->name), seq);
	ops = (struct spool_seg_ops *)(seg + 1);
	ops->seg = seg;
	for (unsigned i = 0; i < SEGOP__N; i++)
		ops->op[i].kind = (uint8_t)(i == SEGOP_OPEN      ? OP_SEG_OPEN
		                            : i == SEGOP_HDR     ? OP_SEG_HDR
		                            : i == SEGOP_SYNC    ? OP_SEG_SYNC
		                            : i == SEGOP_DIRSYNC ? OP_SEG_DIRSYNC
		                                                 : OP_UNLINK);
	/* keep sp->segs sorted by seq */
	for (pp = &sp->segs; *pp != NULL && (*pp)->seq < seq; pp = &(*pp)->next)
		;
	seg->next = *pp;
	*pp = seg;
	return seg;
}

static struct spool_seg_ops *seg_ops(struct spool_seg *seg)
{
	return (struct spool_seg_ops *)(seg + 1);
}

static struct spool_seg *seg_of_op(struct spool_op *op, unsigned which)
{
	struct spool_seg_ops *ops =
	    (struct spool_seg_ops *)((char *)(op - which) - offsetof(struct spool_seg_ops, op));

	return ops->seg;
}

void spool_seg_free(struct spool *sp, struct spool_seg *seg)
{
	struct spool_seg **pp;

	for (pp = &sp->segs; *pp != NULL; pp = &(*pp)->next)
		if (*pp == seg) {
			*pp = seg->next;
			break;
		}
	if (seg->fd >= 0)
		close(seg->fd);
	spool_free(sp, seg->ghosts);
	spool_free(sp, seg);
}

void spool_seg_hdr_fill(struct spool *sp, struct spool_seg *seg)
{
	struct spool_seg_hdr h;

	memset(&h, 0, sizeof(h));
	h.magic = SPOOL_SEG_MAGIC;
	h.version = SPOOL_VERSION;
	h.worker = sp->cfg.worker;
	h.seq = seg->seq;
	h.created_ns = realtime_ns();
	h.seg_size = sp->cfg.segment_size;
	h.hdr_size = SPOOL_SEG_HDR_SIZE;
	h.crc = (uint32_t)crc32(0L, (const Bytef *)&h, offsetof(struct spool_seg_hdr, crc));
	memcpy(seg->hdr_buf, &h, sizeof(h));
}

/* Startup only (blocking): create, write the header, fdatasync, fsync the dir. */
int spool_seg_create_sync(struct spool *sp, struct spool_seg *seg)
{
	seg->fd = openat(sp->dirfd, seg->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (seg->fd < 0)
		return PG_ERROR;
	spool_seg_hdr_fill(sp, seg);
	if (pwrite(seg->fd, seg->hdr_buf, SPOOL_SEG_HDR_SIZE, 0) != SPOOL_SEG_HDR_SIZE) {
		if (errno == 0)
			errno = EIO;
		return PG_ERROR;
	}
	if (fdatasync(seg->fd) != 0 || fsync(sp->dirfd) != 0)
		return PG_ERROR;
	sp->stats.segments_created++;
	sp->stats.fsyncs++;
	sp->stats.dir_syncs++;
	return PG_OK;
}

/* Create the next segment in the background, so rotation never waits on open(). */
void spool_spare_start(struct spool *sp)
{
	struct spool_seg *seg;
	struct io_uring_sqe *sqe;

	if (sp->spare != NULL)
		return;
	seg = spool_seg_new(sp, sp->next_seq);
	if (seg == NULL)
		return; /* no memory: retried at the next rotation */
	sqe = get_sqe(sp);
	if (sqe == NULL) {
		spool_seg_free(sp, seg);
		return;
	}
	sp->next_seq++;
	sp->spare_failed = false;
	seg->state = SEG_CREATING;
	seg_ops(seg)->create_left = 1;
	io_uring_prep_openat(sqe, sp->dirfd, seg->name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
	                     0600);
	io_uring_sqe_set_data(sqe, &seg_ops(seg)->op[SEGOP_OPEN]);
	sp->spare = seg;
}

static void spare_failed(struct spool *sp, struct spool_seg *seg, int err)
{
	spool_log(sp, SPOOL_LOG_ERR, "creating %s/%s: %s", sp->dir, seg->name, strerror(err));
	if (seg->fd >= 0) {
		close(seg->fd);
		seg->fd = -1;
		/* error path only: a header-less file would confuse the replay */
		unlinkat(sp->dirfd, seg->name, 0);
	}
	if (sp->spare == seg)
		sp->spare = NULL;
	spool_seg_free(sp, seg);
	sp->spare_failed = true;
	sp->spare_err = err;
}

static void seg_create_done(struct spool *sp, struct spool_seg *seg, unsigned step, int res)
{
	struct spool_seg_ops *ops = seg_ops(seg);

	res = hook(sp, SPOOL_IO_CREATE, res);
	ops->create_left--;
	if (step == SEGOP_OPEN) {
		if (res < 0) {
			ops->create_err = -res;
		} else {
			struct io_uring_sqe *w, *s, *d;

			seg->fd = res;
			spool_seg_hdr_fill(sp, seg);
			w = get_sqe(sp);
			s = w != NULL ? get_sqe(sp) : NULL;
			d = s != NULL ? get_sqe(sp) : NULL;
			if (d == NULL) {
				/* ring exhausted: cannot happen with sane sizes; give up this spare
				 */
				ops->create_err = EBUSY;
				if (w != NULL)
					io_uring_prep_nop(w), io_uring_sqe_set_data(w, NULL);
				if (s != NULL)
					io_uring_prep_nop(s), io_uring_sqe_set_data(s, NULL);
			} else {
				io_uring_prep_write(w, seg->fd, seg->hdr_buf, SPOOL_SEG_HDR_SIZE,
				                    0);
				w->flags |= IOSQE_IO_LINK;
				io_uring_sqe_set_data(w, &ops->op[SEGOP_HDR]);
				io_uring_prep_fsync(s, seg->fd, IORING_FSYNC_DATASYNC);
				s->flags |= IOSQE_IO_LINK;
				io_uring_sqe_set_data(s, &ops->op[SEGOP_SYNC]);
				io_uring_prep_fsync(d, sp->dirfd, 0);
				io_uring_sqe_set_data(d, &ops->op[SEGOP_DIRSYNC]);
				ops->create_left = 3;
				return;
			}
		}
	} else if (ops->create_err == 0) {
		if (step == SEGOP_HDR && res >= 0 && res != SPOOL_SEG_HDR_SIZE)
			res = -EIO;
		if (res < 0)
			ops->create_err = -res;
		else if (step == SEGOP_SYNC)
			sp->stats.fsyncs++;
		else if (step == SEGOP_DIRSYNC)
			sp->stats.dir_syncs++;
	}
	if (ops->create_left != 0)
		return;
	if (ops->create_err != 0) {
		spare_failed(sp, seg, ops->create_err);
		return;
	}
	seg->state = SEG_SPARE;
	sp->stats.segments_created++;
}

/* ---- staging ---- */

static struct spool_batch *batch_new(struct spool *sp, uint32_t need)
{
	uint32_t cap = need > sp->cfg.batch_size ? need : sp->cfg.batch_size;
	struct spool_batch *b = spool_zalloc(sp, sizeof(*b));

	if (b == NULL)
		return NULL;
	b->buf = spool_zalloc(sp, cap);
	if (b->buf == NULL) {
		spool_free(sp, b);
		return NULL;
	}
	b->op.kind = OP_WRITE;
	b->cap = cap;
	return b;
}

static void batch_free(struct spool *sp, struct spool_batch *b)
{
	spool_free(sp, b->buf);
	spool_free(sp, b);
}

/* Append one record at b->len (space checked by the caller). */
static void put_record(struct spool *sp, struct spool_batch *b, uint8_t type, uint64_t msg_id,
                       const void *p1, uint32_t l1, const void *p2, uint32_t l2)
{
	struct spool_rec_hdr *h = (struct spool_rec_hdr *)(b->buf + b->len);
	uint32_t size = spool_rec_size(l1 + l2);
	uint8_t *p = (uint8_t *)(h + 1);

	h->magic = SPOOL_REC_MAGIC;
	h->type = type;
	h->flags = 0;
	h->reserved = 0;
	h->len = l1 + l2;
	h->crc = 0;
	h->msg_id = msg_id;
	h->seq = ++sp->rec_seq;
	if (l1 != 0)
		memcpy(p, p1, l1);
	if (l2 != 0)
		memcpy(p + l1, p2, l2);
	memset(p + l1 + l2, 0, size - SPOOL_REC_HDR_SIZE - l1 - l2);
	if (type != SPOOL_REC_SYNC) /* the SYNC record is sealed at submission */
		h->crc = spool_rec_crc(h, p);
	b->len += size;
	sp->lsn += size;
	b->lsn_end = sp->lsn;
	sp->pending_bytes += size;
	sp->stats.records++;
}

/* Worst-case segment bytes for `bytes` of records, counting SYNC records. */
static uint64_t with_syncs(const struct spool *sp, uint64_t bytes)
{
	return bytes + (bytes / (sp->cfg.batch_size - SYNC_REC_SIZE) + 2) * SYNC_REC_SIZE;
}

/*
 * Can `bytes` of records be staged now, all of them? PG_AGAIN: too much
 * pending, or the next segment is not ready. At most one rotation is needed
 * because callers stage at most a quarter of a segment at a time.
 */
int spool_reserve(struct spool *sp, uint64_t bytes)
{
	uint64_t need = with_syncs(sp, bytes);

	if (sp->state == SPOOL_FAILED)
		return PG_ERROR;
	if (sp->pending_bytes + bytes > sp->cfg.max_pending && sp->pending_bytes != 0)
		return PG_AGAIN;
	if (sp->active->end + need <= sp->cfg.segment_size)
		return PG_OK;
	if (sp->spare != NULL && sp->spare->state == SEG_SPARE)
		return PG_OK;
	if (sp->spare == NULL) {
		if (sp->spare_failed) {
			spool_fail(sp, sp->spare_err != 0 ? sp->spare_err : EIO,
			           "creating the next segment");
			return PG_ERROR;
		}
		spool_spare_start(sp);
	}
	return PG_AGAIN;
}

static void rotate(struct spool *sp)
{
	struct spool_seg *old = sp->active;

	assert(sp->spare != NULL && sp->spare->state == SEG_SPARE);
	old->state = SEG_CLOSED;
	sp->active = sp->spare;
	sp->active->state = SEG_ACTIVE;
	sp->spare = NULL;
	spool_log(sp, SPOOL_LOG_INFO, "segment %s full at %u bytes, now writing %s", old->name,
	          old->end, sp->active->name);
	spool_spare_start(sp);
}

/*
 * Stage one record (payload = p1 then p2) in the active segment; returns
 * where it went. Space must have been reserved (spool_reserve).
 */
int spool_stage(struct spool *sp, uint8_t type, uint64_t msg_id, const void *p1, uint32_t l1,
                const void *p2, uint32_t l2, struct spool_seg **seg_out, uint32_t *off_out)
{
	uint32_t size = spool_rec_size(l1 + l2);
	struct spool_batch *b = sp->btail;
	bool fresh =
	    b == NULL || b->state != B_FILLING || b->seg != sp->active || b->len + size > b->cap;
	uint32_t need = size + (fresh ? (uint32_t)SYNC_REC_SIZE : 0);

	assert(sp->state == SPOOL_ACTIVE);
	assert(l1 + l2 <= SPOOL_REC_MAX_PAYLOAD);
	if (sp->active->end + need > sp->cfg.segment_size) {
		if (sp->spare == NULL || sp->spare->state != SEG_SPARE)
			return PG_AGAIN; /* spool_reserve was not called: a bug */
		rotate(sp);
		fresh = true;
		need = size + (uint32_t)SYNC_REC_SIZE;
	}
	if (fresh) {
		struct spool_rec_sync zero = {0};

		b = batch_new(sp, need);
		if (b == NULL)
			return PG_AGAIN;
		if (sp->btail != NULL && sp->btail->state == B_FILLING)
			sp->btail->state = B_READY;
		b->seg = sp->active;
		b->off = sp->active->end;
		b->lsn_start = sp->lsn;
		b->state = B_FILLING;
		if (sp->btail != NULL)
			sp->btail->next = b;
		else
			sp->bhead = b;
		sp->btail = b;
		put_record(sp, b, SPOOL_REC_SYNC, 0, &zero, sizeof(zero), NULL, 0);
		sp->active->end += (uint32_t)SYNC_REC_SIZE;
	}
	if (seg_out != NULL)
		*seg_out = sp->active;
	if (off_out != NULL)
		*off_out = sp->active->end;
	if (type == SPOOL_REC_MSG_BEGIN && msg_id == 0) /* a new message: id from its place */
		msg_id = SPOOL_ID(sp->cfg.worker, sp->active->seq, sp->active->end);
	put_record(sp, b, type, msg_id, p1, l1, p2, l2);
	sp->active->end += size;
	return PG_OK;
}

/* ---- writes and fdatasync ---- */

static void seal_sync_record(struct spool_batch *b)
{
	struct spool_rec_hdr *h = (struct spool_rec_hdr *)b->buf;
	struct spool_rec_sync s = {.synced_off = b->seg->synced};

	memcpy(h + 1, &s, sizeof(s));
	h->crc = spool_rec_crc(h, h + 1);
}

static uint64_t written_lsn(const struct spool *sp)
{
	uint64_t lsn = sp->durable_lsn;

	for (const struct spool_batch *b = sp->bhead; b != NULL && b->state == B_WRITTEN;
	     b = b->next)
		lsn = b->lsn_end;
	return lsn;
}

static unsigned writes_inflight(const struct spool *sp)
{
	unsigned n = 0;

	for (const struct spool_batch *b = sp->bhead; b != NULL; b = b->next)
		n += b->state == B_WRITING;
	return n;
}

static void submit_writes(struct spool *sp)
{
	bool sync_wanted = !sp->fsync_inflight && sp->lsn > sp->durable_lsn;
	bool link = sync_wanted && writes_inflight(sp) == 0;
	struct io_uring_sqe *last = NULL;
	uint64_t last_lsn = 0;
	unsigned nready = 0;

	if (sp->state != SPOOL_ACTIVE)
		return;
	/* a link chain must go out in one submission: make room first */
	for (struct spool_batch *b = sp->bhead; b != NULL; b = b->next)
		nready += b->state == B_READY || b->state == B_FILLING;
	if (link && io_uring_sq_space_left(&sp->ring) < nready + 1 && sp->sqes_pending != 0) {
		int n = io_uring_submit(&sp->ring);

		if (n > 0)
			sp->sqes_pending -= (unsigned)n;
	}
	if (io_uring_sq_space_left(&sp->ring) < nready + 1)
		link = false;

	for (struct spool_batch *b = sp->bhead; b != NULL; b = b->next) {
		struct io_uring_sqe *sqe;

		if (b->state == B_WRITING || b->state == B_WRITTEN)
			continue;
		if (b->state == B_FILLING) {
			if (!sync_wanted)
				break;
			b->state = B_READY;
		}
		if (b->seg != sp->wseg) {
			/* next segment: only once the previous one is entirely durable */
			if (sp->durable_lsn < b->lsn_start)
				break;
			if (sp->wseg != NULL && sp->wseg->state == SEG_CLOSED)
				sp->wseg->state = SEG_OLD;
			sp->wseg = b->seg;
		}
		sqe = get_sqe(sp);
		if (sqe == NULL)
			break;
		if (b->written == 0)
			seal_sync_record(b);
		io_uring_prep_write(sqe, b->seg->fd, b->buf + b->written, b->len - b->written,
		                    b->off + b->written);
		io_uring_sqe_set_data(sqe, &b->op);
		if (link)
			sqe->flags |= IOSQE_IO_LINK;
		b->state = B_WRITING;
		last = sqe;
		last_lsn = b->lsn_end;
		sp->stats.writes++;
	}
	if (!sync_wanted)
		return;
	if (link && last != NULL) {
		struct io_uring_sqe *sqe = get_sqe(sp);

		assert(sqe != NULL); /* room was checked above */
		io_uring_prep_fsync(sqe, sp->wseg->fd, IORING_FSYNC_DATASYNC);
		io_uring_sqe_set_data(sqe, &sp->fsync_op);
		sp->fsync_inflight = true;
		sp->fsync_target = last_lsn;
		return;
	}
	if (last != NULL)
		last->flags &= (uint8_t)~IOSQE_IO_LINK;
	/* standalone: only when every write it must cover has completed */
	if (writes_inflight(sp) == 0 && written_lsn(sp) > sp->durable_lsn && sp->wseg != NULL) {
		struct io_uring_sqe *sqe = get_sqe(sp);

		if (sqe == NULL)
			return;
		io_uring_prep_fsync(sqe, sp->wseg->fd, IORING_FSYNC_DATASYNC);
		io_uring_sqe_set_data(sqe, &sp->fsync_op);
		sp->fsync_inflight = true;
		sp->fsync_target = written_lsn(sp);
	}
}

void spool_fire_waiters(struct spool *sp)
{
	while (sp->whead != NULL && sp->whead->commit_lsn <= sp->durable_lsn) {
		struct spool_msg *m = sp->whead;
		spool_commit_cb *cb = m->cb;
		void *arg = m->cb_arg;

		sp->whead = m->wnext;
		if (sp->whead == NULL)
			sp->wtail = NULL;
		m->wnext = NULL;
		m->cb = NULL;
		m->state = MSG_QUEUED;
		spool_progress_remove(sp, m);
		spool_queue_add(sp, m);
		sp->stats.commits++;
		if (cb != NULL)
			cb(m, PG_OK, 0, arg);
	}
	while (sp->shead != NULL && sp->shead->lsn <= sp->durable_lsn) {
		struct spool_sync_waiter *w = sp->shead;

		sp->shead = w->next;
		if (sp->shead == NULL)
			sp->stail = NULL;
		w->cb(PG_OK, 0, w->arg);
		spool_free(sp, w);
	}
}

static void fsync_done(struct spool *sp, int res)
{
	sp->fsync_inflight = false;
	res = hook(sp, SPOOL_IO_FSYNC, res);
	if (sp->state == SPOOL_FAILED)
		return; /* too late: everything after durable_lsn has been failed */
	if (res == -ECANCELED)
		return; /* a short write broke the chain: it is resubmitted, then synced */
	if (res < 0) {
		/*
		 * fsyncgate: after a failed fdatasync the dirty pages may have been
		 * dropped and a retry would "succeed" on nothing. Never retry: fail
		 * what it covered and never write this segment again.
		 */
		spool_fail(sp, -res, "fdatasync");
		return;
	}
	sp->stats.fsyncs++;
	sp->durable_lsn = sp->fsync_target;
	while (sp->bhead != NULL && sp->bhead->lsn_end <= sp->durable_lsn) {
		struct spool_batch *b = sp->bhead;

		assert(b->state == B_WRITTEN);
		sp->bhead = b->next;
		if (sp->bhead == NULL)
			sp->btail = NULL;
		b->seg->synced = b->off + b->len;
		sp->pending_bytes -= b->len;
		batch_free(sp, b);
	}
	spool_fire_waiters(sp);
}

static void write_done(struct spool *sp, struct spool_batch *b, int res)
{
	res = hook(sp, SPOOL_IO_WRITE, res);
	if (b->orphan) {
		struct spool_batch **pp;

		for (pp = &sp->orphans; *pp != b; pp = &(*pp)->next)
			;
		*pp = b->next;
		batch_free(sp, b);
		return;
	}
	if (res == -ECANCELED) {
		b->state = B_READY; /* an earlier link of its chain was short: go again */
		return;
	}
	b->state = B_READY; /* not in flight any more, whatever happens next */
	if (res < 0) {
		spool_fail(sp, -res, "write");
		return;
	}
	sp->stats.write_bytes += (unsigned)res;
	b->written += (uint32_t)res;
	if (b->written < b->len) {
		if (res == 0) {
			spool_fail(sp, EIO, "write (no progress)");
			return;
		}
		return; /* short write (disk nearly full?): the rest goes next pass */
	}
	b->state = B_WRITTEN;
}

/* ---- failure ---- */

static void park(struct spool *sp, uint8_t type, uint64_t msg_id, const void *payload, uint32_t len,
                 struct spool_msg *m)
{
	struct spool_parked *p = spool_zalloc(sp, sizeof(*p));

	if (p == NULL) {
		spool_log(sp, SPOOL_LOG_ERR, "out of memory keeping a record while failed");
		return;
	}
	assert(len <= sizeof(p->payload));
	p->type = type;
	p->msg_id = msg_id;
	p->len = len;
	p->m = m;
	if (len != 0)
		memcpy(p->payload, payload, len);
	if (sp->ptail != NULL)
		sp->ptail->next = p;
	else
		sp->phead = p;
	sp->ptail = p;
}

void spool_park(struct spool *sp, uint8_t type, uint64_t msg_id, const void *payload, uint32_t len,
                struct spool_msg *m)
{
	park(sp, type, msg_id, payload, len, m);
}

/* Queue-state records of a batch that will never be durable: keep them. */
static void park_batch_records(struct spool *sp, const struct spool_batch *b)
{
	for (uint32_t off = 0; off + SPOOL_REC_HDR_SIZE <= b->len;) {
		const struct spool_rec_hdr *h = (const struct spool_rec_hdr *)(b->buf + off);

		switch (h->type) {
		case SPOOL_REC_DELIVERED:
		case SPOOL_REC_DEFERRED:
		case SPOOL_REC_HOLD:
		case SPOOL_REC_RELEASE:
		case SPOOL_REC_DELETE:
		case SPOOL_REC_ABORT:
			park(sp, h->type, h->msg_id, h + 1, h->len, NULL);
			break;
		}
		off += spool_rec_size(h->len);
	}
}

/*
 * A write or fdatasync failed: nothing after durable_lsn can be trusted.
 * Fail every commit not yet durable (their sessions answer 4xx), fail the
 * messages being received, keep queue-state records for the resume, and
 * never write the segment again. Committed messages stay queued: they were
 * durable before the failure.
 */
void spool_fail(struct spool *sp, int err, const char *what)
{
	struct spool_msg *waiters = sp->whead, *m, *next;
	struct spool_sync_waiter *syncs = sp->shead;

	if (sp->state == SPOOL_FAILED)
		return;
	sp->state = SPOOL_FAILED;
	sp->err = err;
	sp->stats.failures++;
	spool_log(sp, SPOOL_LOG_ERR,
	          "%s failed on %s/%s: %s; refusing new mail until resumed (durable up to "
	          "offset %u)",
	          what, sp->dir,
	          sp->wseg != NULL     ? sp->wseg->name
	          : sp->active != NULL ? sp->active->name
	                               : "-",
	          strerror(err),
	          sp->wseg != NULL     ? sp->wseg->synced
	          : sp->active != NULL ? sp->active->synced
	                               : 0);

	for (struct spool_seg *s = sp->segs; s != NULL; s = s->next)
		if (s->state == SEG_ACTIVE || s->state == SEG_CLOSED || s == sp->wseg)
			s->state = SEG_FAILED;
	sp->active = NULL;
	sp->wseg = NULL;

	/* batches: park their state records; in-flight ones wait for their CQE */
	for (struct spool_batch *b = sp->bhead, *bn; b != NULL; b = bn) {
		bn = b->next;
		park_batch_records(sp, b);
		if (b->state == B_WRITING) {
			b->orphan = true;
			b->next = sp->orphans;
			sp->orphans = b;
		} else {
			batch_free(sp, b);
		}
	}
	sp->bhead = sp->btail = NULL;
	sp->pending_bytes = 0;
	sp->lsn = sp->durable_lsn; /* nothing staged any more */

	/* messages being received can no longer be committed */
	for (m = sp->progress; m != NULL; m = m->qnext)
		if (m->state == MSG_RECEIVING)
			m->state = MSG_FAILED;

	sp->whead = sp->wtail = NULL;
	sp->shead = sp->stail = NULL;
	for (m = waiters; m != NULL; m = next) {
		spool_commit_cb *cb = m->cb;
		void *arg = m->cb_arg;

		next = m->wnext;
		m->wnext = NULL;
		m->cb = NULL;
		/* its MSG_END may still reach the disk: an ABORT record on resume */
		spool_progress_remove(sp, m);
		m->state = MSG_PARKED;
		spool_hash_remove(sp, m);
		park(sp, SPOOL_REC_ABORT, m->id, NULL, 0, m);
		sp->stats.commit_errors++;
		if (cb != NULL)
			cb(m, PG_ERROR, err, arg);
	}
	for (struct spool_sync_waiter *w = syncs, *wn; w != NULL; w = wn) {
		wn = w->next;
		w->cb(PG_ERROR, err, w->arg);
		spool_free(sp, w);
	}
}

/* ---- reclaim ---- */

static bool reclaimable(const struct spool *sp, const struct spool_seg *s)
{
	if (s->refs != 0 || s->keep || s == sp->active || s == sp->spare || s == sp->wseg)
		return false;
	if (s->state == SEG_OLD)
		return true;
	/* a failed segment: only once no write or fsync can still touch it */
	return s->state == SEG_FAILED && sp->orphans == NULL && !sp->fsync_inflight;
}

/*
 * Delete segments no message needs: unlink them, then one directory fsync;
 * only then release the ghosts that waited for them (spool_msg_finish).
 */
void spool_reclaim(struct spool *sp)
{
	if (sp->unlinks_inflight != 0 || sp->reclaim_dirsync || sp->reclaiming != NULL)
		return;
	for (struct spool_seg *s = sp->segs; s != NULL; s = s->next) {
		struct io_uring_sqe *sqe;

		if (!reclaimable(sp, s))
			continue;
		sqe = get_sqe(sp);
		if (sqe == NULL)
			break;
		if (s->fd >= 0) {
			close(s->fd); /* no I/O of ours on it: close does not wait */
			s->fd = -1;
		}
		s->state = SEG_UNLINKING;
		io_uring_prep_unlinkat(sqe, sp->dirfd, s->name, 0);
		io_uring_sqe_set_data(sqe, &seg_ops(s)->op[SEGOP_UNLINK]);
		sp->unlinks_inflight++;
	}
}

static void unlink_done(struct spool *sp, struct spool_seg *seg, int res)
{
	struct spool_seg **pp;

	sp->unlinks_inflight--;
	if (res < 0 && res != -ENOENT) {
		spool_log(sp, SPOOL_LOG_ERR, "unlink %s/%s: %s; segment kept", sp->dir, seg->name,
		          strerror(-res));
		seg->keep = true;
		seg->state = SEG_OLD;
	} else {
		/* move it from sp->segs to sp->reclaiming */
		for (pp = &sp->segs; *pp != seg; pp = &(*pp)->next)
			;
		*pp = seg->next;
		seg->next = sp->reclaiming;
		sp->reclaiming = seg;
	}
	if (sp->unlinks_inflight == 0 && sp->reclaiming != NULL) {
		struct io_uring_sqe *sqe = get_sqe(sp);

		if (sqe == NULL) {
			sp->reclaim_dirsync = false; /* retried from spool_io_poll */
			return;
		}
		io_uring_prep_fsync(sqe, sp->dirfd, 0);
		io_uring_sqe_set_data(sqe, &sp->reclaim_op);
		sp->reclaim_dirsync = true;
	}
}

static void reclaim_dirsync_done(struct spool *sp, int res)
{
	sp->reclaim_dirsync = false;
	if (res < 0) {
		/* the unlinks may not be durable: ghosts keep waiting (safe) */
		spool_log(sp, SPOOL_LOG_ERR, "fsync of %s after unlink: %s", sp->dir,
		          strerror(-res));
		spool_fail(sp, -res, "directory fsync");
		return;
	}
	sp->stats.dir_syncs++;
	while (sp->reclaiming != NULL) {
		struct spool_seg *seg = sp->reclaiming;

		sp->reclaiming = seg->next;
		for (uint32_t i = 0; i < seg->nghosts; i++) {
			struct spool_msg *g = seg->ghosts[i];

			assert(g->state == MSG_GHOST && g->ghost_wait > 0);
			if (--g->ghost_wait == 0) {
				struct spool_seg *last = g->segs[g->nsegs - 1];

				assert(last->refs > 0);
				last->refs--;
				g->nsegs = 0;
				spool_msg_destroy(sp, g);
			}
		}
		sp->stats.segments_reclaimed++;
		spool_log(sp, SPOOL_LOG_INFO, "reclaimed %s/%s", sp->dir, seg->name);
		seg->fd = -1;
		seg->next = NULL;
		spool_free(sp, seg->ghosts);
		spool_free(sp, seg);
	}
}

/* ---- reads ---- */

static void read_done(struct spool *sp, struct spool_read *r, int res)
{
	struct spool_msg *m = r->m;
	const struct spool_rec_hdr *h = (const struct spool_rec_hdr *)r->buf;
	int err = 0;

	res = hook(sp, SPOOL_IO_READ, res);
	sp->stats.reads++;
	if (res < 0)
		err = -res;
	else if ((uint32_t)res != r->size || h->magic != SPOOL_REC_MAGIC ||
	         h->type != SPOOL_REC_MSG_DATA || h->msg_id != m->id ||
	         h->len != sizeof(struct spool_rec_data) + m->chunks[r->chunk].len ||
	         h->crc != spool_rec_crc(h, h + 1))
		err = EIO;
	if (err != 0) {
		spool_log(sp, SPOOL_LOG_ERR, "reading chunk %u of message %016llx: %s", r->chunk,
		          (unsigned long long)m->id, strerror(err));
		r->cb(m, r->chunk, NULL, 0, PG_ERROR, err, r->arg);
	} else {
		r->cb(m, r->chunk, r->buf + SPOOL_REC_HDR_SIZE + sizeof(struct spool_rec_data),
		      m->chunks[r->chunk].len, PG_OK, 0, r->arg);
	}
	m->reads--;
	if (m->reads == 0 && m->free_after_reads)
		spool_msg_destroy(sp, m);
	spool_free(sp, r->buf);
	spool_free(sp, r);
}

int spool_read_chunk(struct spool *sp, struct spool_msg *m, uint32_t chunk, spool_read_cb *cb,
                     void *arg)
{
	struct spool_read *r;
	struct io_uring_sqe *sqe;
	const struct spool_chunk *c;

	assert(m->state == MSG_QUEUED && chunk < m->nchunks);
	if (sp->inflight >= sp->cfg.ring_entries)
		return PG_AGAIN;
	c = &m->chunks[chunk];
	r = spool_zalloc(sp, sizeof(*r));
	if (r == NULL)
		return PG_AGAIN;
	r->size = spool_rec_size(sizeof(struct spool_rec_data) + c->len);
	r->buf = spool_zalloc(sp, r->size);
	sqe = r->buf != NULL ? get_sqe(sp) : NULL;
	if (sqe == NULL) {
		spool_free(sp, r->buf);
		spool_free(sp, r);
		return PG_AGAIN;
	}
	/* the padding is not read back: size covers header + payload only */
	r->size = SPOOL_REC_HDR_SIZE + (uint32_t)sizeof(struct spool_rec_data) + c->len;
	r->op.kind = OP_READ;
	r->m = m;
	r->chunk = chunk;
	r->cb = cb;
	r->arg = arg;
	io_uring_prep_read(sqe, c->seg->fd, r->buf, r->size, c->off);
	io_uring_sqe_set_data(sqe, &r->op);
	m->reads++;
	return PG_OK;
}

/* ---- the poll step ---- */

static void dispatch(struct spool *sp, struct spool_op *op, int res)
{
	switch (op->kind) {
	case OP_WRITE:
		write_done(sp, (struct spool_batch *)op, res);
		break;
	case OP_FSYNC:
		fsync_done(sp, res);
		break;
	case OP_SEG_OPEN:
		seg_create_done(sp, seg_of_op(op, SEGOP_OPEN), SEGOP_OPEN, res);
		break;
	case OP_SEG_HDR:
		seg_create_done(sp, seg_of_op(op, SEGOP_HDR), SEGOP_HDR, res);
		break;
	case OP_SEG_SYNC:
		seg_create_done(sp, seg_of_op(op, SEGOP_SYNC), SEGOP_SYNC, res);
		break;
	case OP_SEG_DIRSYNC:
		seg_create_done(sp, seg_of_op(op, SEGOP_DIRSYNC), SEGOP_DIRSYNC, res);
		break;
	case OP_UNLINK:
		unlink_done(sp, seg_of_op(op, SEGOP_UNLINK), res);
		break;
	case OP_RECLAIM_DIRSYNC:
		reclaim_dirsync_done(sp, res);
		break;
	case OP_READ:
		read_done(sp, (struct spool_read *)op, res);
		break;
	}
}

static unsigned drain_cq(struct spool *sp)
{
	struct io_uring_cqe *cqe;
	unsigned n = 0;

	while (io_uring_peek_cqe(&sp->ring, &cqe) == 0) {
		struct spool_op *op = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&sp->ring, cqe);
		sp->inflight--;
		n++;
		if (op != NULL)
			dispatch(sp, op, res);
	}
	return n;
}

unsigned spool_io_complete(struct spool *sp)
{
	return drain_cq(sp);
}

void spool_io_submit(struct spool *sp)
{
	submit_writes(sp);
	if (sp->unlinks_inflight == 0 && !sp->reclaim_dirsync && sp->reclaiming != NULL) {
		struct io_uring_sqe *sqe = get_sqe(sp);

		if (sqe != NULL) {
			io_uring_prep_fsync(sqe, sp->dirfd, 0);
			io_uring_sqe_set_data(sqe, &sp->reclaim_op);
			sp->reclaim_dirsync = true;
		}
	}
	spool_reclaim(sp);
	if (sp->sqes_pending != 0) {
		int r = io_uring_submit(&sp->ring);

		if (r > 0)
			sp->sqes_pending -=
			    (unsigned)r < sp->sqes_pending ? (unsigned)r : sp->sqes_pending;
		else if (r < 0 && r != -EAGAIN && r != -EBUSY && r != -EINTR)
			spool_log(sp, SPOOL_LOG_ERR, "io_uring_submit: %s", strerror(-r));
	}
}

/* Shutdown: wait for everything in flight (blocking). */
void spool_io_drain(struct spool *sp)
{
	while (sp->inflight != 0) {
		struct io_uring_cqe *cqe;
		int r;

		if (sp->sqes_pending != 0) {
			r = io_uring_submit(&sp->ring);
			if (r > 0)
				sp->sqes_pending -= (unsigned)r;
		}
		r = io_uring_wait_cqe(&sp->ring, &cqe);
		if (r < 0 && r != -EINTR && r != -EAGAIN)
			break;
		drain_cq(sp);
	}
}
