/*
 * spool.c - the spool's API: open/close, the inbound message life cycle
 * (begin, append, commit, abort), the queue and its state records
 * (delivered, deferred, hold, release, delete), and segment reference
 * counting. The I/O is in spool_io.c, the replay in spool_replay.c.
 *
 * Reclaim: a message holds a reference on every segment that has one of
 * its records. When it is done (delivered, deleted, aborted) its final
 * record is in its newest segment; that segment keeps the reference until
 * every older segment of the message has been unlinked (a "ghost"), so a
 * replay can never find the message's data without the record saying it is
 * done. Live messages in old segments keep them alive (no compaction yet).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "result.h"
#include "spool_impl.h"

/* ---- memory and logging ---- */

void *spool_zalloc(struct spool *sp, size_t size)
{
	return sp->cfg.alloc != NULL ? sp->cfg.alloc(size, sp->cfg.alloc_arg) : calloc(1, size);
}

void spool_free(struct spool *sp, void *p)
{
	if (p == NULL)
		return;
	if (sp->cfg.free != NULL)
		sp->cfg.free(p, sp->cfg.alloc_arg);
	else
		free(p);
}

void spool_log(struct spool *sp, enum spool_log_level level, const char *fmt, ...)
{
	static const char *const names[] = {"error", "warning", "notice", "info"};
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (sp->cfg.log != NULL)
		sp->cfg.log(level, msg, sp->cfg.log_arg);
	else
		fprintf(stderr, "spool w%u %s: %s\n", sp->cfg.worker, names[level], msg);
}

/* ---- message table ---- */

static uint32_t id_hash(const struct spool *sp, uint64_t id)
{
	return (uint32_t)((id * 0x9e3779b97f4a7c15ull) >> 32) & sp->hash_mask;
}

static void hash_grow(struct spool *sp)
{
	uint32_t n = (sp->hash_mask + 1) * 2;
	struct spool_msg **h = spool_zalloc(sp, n * sizeof(*h));
	struct spool_msg **old = sp->hash;
	uint32_t oldn = sp->hash_mask + 1;

	if (h == NULL)
		return; /* longer chains, still correct */
	sp->hash = h;
	sp->hash_mask = n - 1;
	for (uint32_t i = 0; i < oldn; i++)
		for (struct spool_msg *m = old[i], *next; m != NULL; m = next) {
			uint32_t b = id_hash(sp, m->id);

			next = m->hnext;
			m->hnext = h[b];
			h[b] = m;
		}
	spool_free(sp, old);
}

struct spool_msg *spool_msg_lookup(struct spool *sp, uint64_t id)
{
	for (struct spool_msg *m = sp->hash[id_hash(sp, id)]; m != NULL; m = m->hnext)
		if (m->id == id)
			return m;
	return NULL;
}

struct spool_msg *spool_msg_new(struct spool *sp, uint64_t id)
{
	struct spool_msg *m = spool_zalloc(sp, sizeof(*m));
	uint32_t b;

	if (m == NULL)
		return NULL;
	m->id = id;
	if (sp->nmsgs >= sp->hash_mask + 1)
		hash_grow(sp);
	b = id_hash(sp, id);
	m->hnext = sp->hash[b];
	sp->hash[b] = m;
	sp->nmsgs++;
	return m;
}

void spool_hash_remove(struct spool *sp, struct spool_msg *m)
{
	for (struct spool_msg **pp = &sp->hash[id_hash(sp, m->id)]; *pp != NULL; pp = &(*pp)->hnext)
		if (*pp == m) {
			*pp = m->hnext;
			m->hnext = NULL;
			sp->nmsgs--;
			return;
		}
}

/* Frees the memory only: references must have been dropped. */
void spool_msg_destroy(struct spool *sp, struct spool_msg *m)
{
	if (m->reads != 0) {
		m->free_after_reads = true;
		return;
	}
	spool_free(sp, m->env);
	spool_free(sp, m->env_str);
	spool_free(sp, m->rcpts);
	spool_free(sp, m->rcpt_done);
	spool_free(sp, m->chunks);
	spool_free(sp, m->acc);
	spool_free(sp, m->segs);
	spool_free(sp, m);
}

void spool_queue_add(struct spool *sp, struct spool_msg *m)
{
	assert(!m->in_queue && !m->in_progress);
	m->qnext = NULL;
	m->qprev = sp->qtail;
	if (sp->qtail != NULL)
		sp->qtail->qnext = m;
	else
		sp->qhead = m;
	sp->qtail = m;
	m->in_queue = true;
	sp->qcount++;
}

void spool_queue_remove(struct spool *sp, struct spool_msg *m)
{
	if (!m->in_queue)
		return;
	if (m->qprev != NULL)
		m->qprev->qnext = m->qnext;
	else
		sp->qhead = m->qnext;
	if (m->qnext != NULL)
		m->qnext->qprev = m->qprev;
	else
		sp->qtail = m->qprev;
	m->qprev = m->qnext = NULL;
	m->in_queue = false;
	sp->qcount--;
}

static void progress_add(struct spool *sp, struct spool_msg *m)
{
	m->qprev = NULL;
	m->qnext = sp->progress;
	if (sp->progress != NULL)
		sp->progress->qprev = m;
	sp->progress = m;
	m->in_progress = true;
}

void spool_progress_remove(struct spool *sp, struct spool_msg *m)
{
	if (!m->in_progress)
		return;
	if (m->qprev != NULL)
		m->qprev->qnext = m->qnext;
	else
		sp->progress = m->qnext;
	if (m->qnext != NULL)
		m->qnext->qprev = m->qprev;
	m->qprev = m->qnext = NULL;
	m->in_progress = false;
}

/* ---- segment references ---- */

static int grow(struct spool *sp, void **arr, uint32_t *cap, uint32_t n, size_t elem)
{
	uint32_t ncap;
	void *p;

	if (n < *cap)
		return PG_OK;
	ncap = *cap != 0 ? *cap * 2 : 4;
	p = spool_zalloc(sp, ncap * elem);
	if (p == NULL)
		return PG_ERROR;
	if (*arr != NULL)
		memcpy(p, *arr, n * elem);
	spool_free(sp, *arr);
	*arr = p;
	*cap = ncap;
	return PG_OK;
}

/* Records of a message are appended in order: its segments come in seq order. */
int spool_msg_add_seg(struct spool *sp, struct spool_msg *m, struct spool_seg *seg)
{
	if (m->nsegs != 0 && m->segs[m->nsegs - 1] == seg)
		return PG_OK;
	for (uint32_t i = 0; i < m->nsegs; i++)
		if (m->segs[i] == seg)
			return PG_OK;
	if (grow(sp, (void **)&m->segs, &m->segs_cap, m->nsegs, sizeof(*m->segs)) != PG_OK)
		return PG_ERROR;
	m->segs[m->nsegs++] = seg;
	seg->refs++;
	return PG_OK;
}

int spool_msg_add_chunk(struct spool *sp, struct spool_msg *m, struct spool_seg *seg, uint32_t off,
                        uint32_t len)
{
	if (grow(sp, (void **)&m->chunks, &m->chunks_cap, m->nchunks, sizeof(*m->chunks)) != PG_OK)
		return PG_ERROR;
	m->chunks[m->nchunks++] = (struct spool_chunk){.seg = seg, .off = off, .len = len};
	m->body_len += len;
	return spool_msg_add_seg(sp, m, seg);
}

void spool_msg_release_segs(struct spool *sp, struct spool_msg *m)
{
	(void)sp;
	for (uint32_t i = 0; i < m->nsegs; i++) {
		assert(m->segs[i]->refs > 0);
		m->segs[i]->refs--;
	}
	m->nsegs = 0;
}

/*
 * The message is done and its final record is staged (or replayed): drop
 * the references, except that its newest segment (which has the final
 * record) waits for the older ones to be unlinked.
 */
void spool_msg_finish(struct spool *sp, struct spool_msg *m)
{
	spool_queue_remove(sp, m);
	spool_progress_remove(sp, m);
	spool_hash_remove(sp, m);
	if (m->nsegs <= 1) {
		spool_msg_release_segs(sp, m);
		spool_msg_destroy(sp, m);
		return;
	}
	m->ghost_wait = 0;
	for (uint32_t i = 0; i + 1 < m->nsegs; i++) {
		struct spool_seg *s = m->segs[i];

		if (grow(sp, (void **)&s->ghosts, &s->ghosts_cap, s->nghosts, sizeof(*s->ghosts)) !=
		    PG_OK) {
			/* no memory: keep every reference, the segments just stay */
			s->keep = true;
			continue;
		}
		s->ghosts[s->nghosts++] = m;
		s->refs--;
		m->ghost_wait++;
	}
	m->state = MSG_GHOST;
	/* a ghost needs only its segments: drop the rest now */
	spool_free(sp, m->env);
	spool_free(sp, m->env_str);
	spool_free(sp, m->rcpts);
	spool_free(sp, m->rcpt_done);
	spool_free(sp, m->chunks);
	spool_free(sp, m->acc);
	m->env = NULL;
	m->env_str = NULL;
	m->rcpts = NULL;
	m->rcpt_done = NULL;
	m->chunks = NULL;
	m->acc = NULL;
	m->nchunks = 0;
	if (m->ghost_wait == 0) {
		m->segs[m->nsegs - 1]->refs--;
		m->nsegs = 0;
		spool_msg_destroy(sp, m);
	}
}

/* ---- envelope ---- */

static uint32_t env_size(const struct spool_envelope *env)
{
	uint64_t n = sizeof(struct spool_rec_begin) + strlen(env->sender) + env->params_len;

	for (uint32_t i = 0; i < env->nrcpt; i++)
		n += 4 + strlen(env->rcpts[i]);
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

static void env_encode(const struct spool_envelope *env, uint8_t *p)
{
	struct spool_rec_begin h = {
	    .arrival_ns = env->arrival_ns,
	    .nrcpt = env->nrcpt,
	    .sender_len = (uint32_t)strlen(env->sender),
	    .params_len = env->params_len,
	};

	memcpy(p, &h, sizeof(h));
	p += sizeof(h);
	memcpy(p, env->sender, h.sender_len);
	p += h.sender_len;
	for (uint32_t i = 0; i < env->nrcpt; i++) {
		uint32_t l = (uint32_t)strlen(env->rcpts[i]);

		memcpy(p, &l, 4);
		memcpy(p + 4, env->rcpts[i], l);
		p += 4 + l;
	}
	if (env->params_len != 0)
		memcpy(p, env->params, env->params_len);
}

/* Take ownership of `env` (a MSG_BEGIN payload): validate and index it. */
int spool_msg_set_envelope(struct spool *sp, struct spool_msg *m, const uint8_t *env, uint32_t len)
{
	struct spool_rec_begin h;
	uint64_t strbytes, pos;
	char *s;

	if (len < sizeof(h))
		return PG_ERROR;
	memcpy(&h, env, sizeof(h));
	if (h.nrcpt == 0 || h.nrcpt > len || (uint64_t)sizeof(h) + h.sender_len > len)
		return PG_ERROR;
	/* first pass: check lengths */
	pos = sizeof(h) + h.sender_len;
	strbytes = h.sender_len + 1;
	for (uint32_t i = 0; i < h.nrcpt; i++) {
		uint32_t l;

		if (pos + 4 > len)
			return PG_ERROR;
		memcpy(&l, env + pos, 4);
		if (pos + 4 + l > len)
			return PG_ERROR;
		pos += 4 + l;
		strbytes += l + 1;
	}
	if (pos + h.params_len != len)
		return PG_ERROR;
	m->env = (uint8_t *)env;
	m->env_len = len;
	m->env_str = spool_zalloc(sp, strbytes);
	m->rcpts = spool_zalloc(sp, h.nrcpt * sizeof(*m->rcpts));
	m->rcpt_done = spool_zalloc(sp, (h.nrcpt + 7) / 8);
	if (m->env_str == NULL || m->rcpts == NULL || m->rcpt_done == NULL)
		return PG_ERROR;
	s = m->env_str;
	memcpy(s, env + sizeof(h), h.sender_len);
	m->sender = s;
	s += h.sender_len + 1;
	pos = sizeof(h) + h.sender_len;
	for (uint32_t i = 0; i < h.nrcpt; i++) {
		uint32_t l;

		memcpy(&l, env + pos, 4);
		memcpy(s, env + pos + 4, l);
		m->rcpts[i] = s;
		s += l + 1;
		pos += 4 + l;
	}
	m->params = env + pos;
	m->params_len = h.params_len;
	m->nrcpt = h.nrcpt;
	m->arrival_ns = h.arrival_ns;
	return PG_OK;
}

bool spool_msg_apply_rcpt(struct spool_msg *m, uint32_t rcpt)
{
	if (rcpt == SPOOL_RCPT_ALL) {
		for (uint32_t i = 0; i < m->nrcpt; i++)
			m->rcpt_done[i / 8] |= (uint8_t)(1u << (i % 8));
		m->ndone = m->nrcpt;
	} else if (rcpt < m->nrcpt && !(m->rcpt_done[rcpt / 8] & (1u << (rcpt % 8)))) {
		m->rcpt_done[rcpt / 8] |= (uint8_t)(1u << (rcpt % 8));
		m->ndone++;
	}
	return m->ndone == m->nrcpt;
}

/* ---- open / close / poll ---- */

static void report_zero(struct spool_replay_report *rep)
{
	if (rep != NULL)
		memset(rep, 0, sizeof(*rep));
}

static int mkdir_p(const char *path)
{
	char buf[4096];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p != '\0'; p++)
		if (*p == '/') {
			*p = '\0';
			if (mkdir(buf, 0700) != 0 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	if (mkdir(buf, 0700) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

int spool_open(const struct spool_config *cfg, struct spool **out, struct spool_replay_report *rep)
{
	struct spool_replay_report local;
	struct spool *sp;
	int saved;

	report_zero(rep);
	if (rep == NULL)
		rep = &local, report_zero(rep);
	*out = NULL;
	if (cfg->dir == NULL || cfg->worker >= 1024) {
		errno = EINVAL;
		return PG_ERROR;
	}
	sp = cfg->alloc != NULL ? cfg->alloc(sizeof(*sp), cfg->alloc_arg) : calloc(1, sizeof(*sp));
	if (sp == NULL)
		return PG_ERROR;
	sp->cfg = *cfg;
	sp->dirfd = -1;
	if (sp->cfg.segment_size == 0)
		sp->cfg.segment_size = 64u << 20;
	if (sp->cfg.batch_size == 0)
		sp->cfg.batch_size = 1u << 20;
	if (sp->cfg.chunk_size == 0)
		sp->cfg.chunk_size = 64u << 10;
	if (sp->cfg.max_pending == 0)
		sp->cfg.max_pending = 32u << 20;
	if (sp->cfg.ring_entries == 0)
		sp->cfg.ring_entries = 256;
	if (sp->cfg.segment_size < SPOOL_SEG_MIN_SIZE ||
	    sp->cfg.segment_size > SPOOL_SEG_MAX_SIZE ||
	    sp->cfg.chunk_size > SPOOL_REC_MAX_PAYLOAD - 64 ||
	    spool_rec_size(sp->cfg.chunk_size + 8) > sp->cfg.segment_size / 4 ||
	    sp->cfg.batch_size < 4096) {
		spool_log(sp, SPOOL_LOG_ERR, "bad sizes: segment %u, chunk %u, batch %u",
		          sp->cfg.segment_size, sp->cfg.chunk_size, sp->cfg.batch_size);
		spool_free(sp, sp);
		errno = EINVAL;
		return PG_ERROR;
	}
	sp->fsync_op.kind = OP_FSYNC;
	sp->reclaim_op.kind = OP_RECLAIM_DIRSYNC;
	sp->hash_mask = 255;
	sp->hash = spool_zalloc(sp, 256 * sizeof(*sp->hash));
	snprintf(sp->dir, sizeof(sp->dir), "%s/w%u", cfg->dir, cfg->worker);
	if (sp->hash == NULL || mkdir_p(sp->dir) != 0)
		goto fail;
	sp->dirfd = open(sp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->dirfd < 0)
		goto fail;
	if (spool_ring_init(sp) != PG_OK) {
		saved = errno;
		close(sp->dirfd);
		spool_free(sp, sp->hash);
		spool_free(sp, sp);
		errno = saved;
		return PG_ERROR;
	}
	sp->next_seq = 1;
	if (spool_replay(sp, rep) != PG_OK)
		goto fail_ring;
	/* never append after a crash: a fresh segment, numbered after all others */
	sp->active = spool_seg_new(sp, sp->next_seq++);
	if (sp->active == NULL || spool_seg_create_sync(sp, sp->active) != PG_OK) {
		spool_log(sp, SPOOL_LOG_ERR, "creating a segment in %s: %s", sp->dir,
		          strerror(errno));
		goto fail_ring;
	}
	sp->active->state = SEG_ACTIVE;
	spool_spare_start(sp);
	spool_io_submit(sp);
	*out = sp;
	return PG_OK;

fail_ring:
	saved = errno;
	sp->state = SPOOL_FAILED; /* no staging */
	spool_close(sp);
	errno = saved;
	return PG_ERROR;
fail:
	saved = errno;
	spool_log(sp, SPOOL_LOG_ERR, "opening %s: %s", sp->dir, strerror(saved));
	if (sp->dirfd >= 0)
		close(sp->dirfd);
	spool_free(sp, sp->hash);
	spool_free(sp, sp);
	errno = saved;
	return PG_ERROR;
}

/* Stage records that waited (failed spool, or no room at the time). */
static void drain_parked(struct spool *sp)
{
	while (sp->phead != NULL && sp->state == SPOOL_ACTIVE) {
		struct spool_parked *p = sp->phead;
		struct spool_msg *m = p->m != NULL ? p->m : spool_msg_lookup(sp, p->msg_id);
		struct spool_seg *seg;

		if (spool_reserve(sp, spool_rec_size(p->len)) != PG_OK)
			return;
		if (spool_stage(sp, p->type, p->msg_id, p->payload, p->len, NULL, 0, &seg, NULL) !=
		    PG_OK)
			return;
		sp->phead = p->next;
		if (sp->phead == NULL)
			sp->ptail = NULL;
		if (m != NULL && (m->state == MSG_QUEUED || m->state == MSG_PARKED))
			spool_msg_add_seg(sp, m, seg);
		if (p->m != NULL)
			spool_msg_finish(sp, p->m);
		spool_free(sp, p);
	}
}

unsigned spool_poll(struct spool *sp)
{
	unsigned n = spool_io_complete(sp);

	if (sp->state == SPOOL_ACTIVE) {
		drain_parked(sp);
		spool_fire_waiters(sp); /* spool_sync on an idle spool */
	}
	spool_io_submit(sp);
	return n;
}

bool spool_busy(const struct spool *sp)
{
	return sp->inflight != 0 || sp->sqes_pending != 0 ||
	       (sp->state == SPOOL_ACTIVE && (sp->lsn > sp->durable_lsn || sp->phead != NULL));
}

enum spool_state spool_state(const struct spool *sp)
{
	return sp->state;
}

int spool_errno(const struct spool *sp)
{
	return sp->state == SPOOL_FAILED ? sp->err : 0;
}

const struct spool_stats *spool_stats(const struct spool *sp)
{
	return &sp->stats;
}

int spool_resume(struct spool *sp)
{
	if (sp->state == SPOOL_ACTIVE)
		return PG_OK;
	if (sp->orphans != NULL || sp->fsync_inflight)
		return PG_AGAIN; /* the failed I/O is still draining */
	if (sp->spare == NULL) {
		spool_spare_start(sp);
		spool_io_submit(sp);
		return PG_AGAIN;
	}
	if (sp->spare->state != SEG_SPARE)
		return PG_AGAIN;
	sp->active = sp->spare;
	sp->active->state = SEG_ACTIVE;
	sp->spare = NULL;
	sp->state = SPOOL_ACTIVE;
	spool_log(sp, SPOOL_LOG_NOTICE, "resumed on %s/%s after: %s", sp->dir, sp->active->name,
	          strerror(sp->err));
	sp->err = 0;
	spool_spare_start(sp);
	drain_parked(sp);
	spool_io_submit(sp);
	return PG_OK;
}

void spool_close(struct spool *sp)
{
	if (sp == NULL)
		return;
	/* graceful: let what is staged reach the disk, then wait for the rest */
	for (unsigned i = 0; i < 100000 && sp->state == SPOOL_ACTIVE && spool_busy(sp); i++) {
		spool_poll(sp);
		if (sp->inflight != 0) {
			struct io_uring_cqe *cqe;

			io_uring_wait_cqe(&sp->ring, &cqe);
		}
	}
	spool_io_drain(sp);
	io_uring_queue_exit(&sp->ring);

	for (uint32_t i = 0; i <= sp->hash_mask; i++)
		for (struct spool_msg *m = sp->hash[i], *next; m != NULL; m = next) {
			next = m->hnext;
			m->reads = 0;
			spool_msg_destroy(sp, m);
		}
	/* ghosts and parked messages are out of the table (every other one is in it) */
	for (struct spool_seg *s = sp->reclaiming; s != NULL; s = s->next)
		for (uint32_t i = 0; i < s->nghosts; i++) {
			struct spool_msg *g = s->ghosts[i];

			if (--g->ghost_wait == 0) {
				g->reads = 0;
				spool_msg_destroy(sp, g);
			}
		}
	for (struct spool_seg *s = sp->segs; s != NULL; s = s->next)
		for (uint32_t i = 0; i < s->nghosts; i++) {
			struct spool_msg *g = s->ghosts[i];

			if (--g->ghost_wait == 0) {
				g->reads = 0;
				spool_msg_destroy(sp, g);
			}
		}
	for (struct spool_parked *p = sp->phead, *next; p != NULL; p = next) {
		next = p->next;
		if (p->m != NULL) {
			p->m->reads = 0;
			spool_msg_destroy(sp, p->m);
		}
		spool_free(sp, p);
	}
	for (struct spool_batch *b = sp->bhead, *next; b != NULL; b = next) {
		next = b->next;
		spool_free(sp, b->buf);
		spool_free(sp, b);
	}
	for (struct spool_batch *b = sp->orphans, *next; b != NULL; b = next) {
		next = b->next;
		spool_free(sp, b->buf);
		spool_free(sp, b);
	}
	for (struct spool_sync_waiter *w = sp->shead, *next; w != NULL; w = next) {
		next = w->next;
		spool_free(sp, w);
	}
	while (sp->segs != NULL)
		spool_seg_free(sp, sp->segs);
	while (sp->reclaiming != NULL) {
		struct spool_seg *s = sp->reclaiming;

		sp->reclaiming = s->next;
		spool_free(sp, s->ghosts);
		spool_free(sp, s);
	}
	if (sp->dirfd >= 0)
		close(sp->dirfd);
	spool_free(sp, sp->hash);
	spool_free(sp, sp);
}

/* ---- inbound ---- */

static uint32_t max_append(const struct spool *sp)
{
	return sp->cfg.segment_size / 4;
}

int spool_msg_begin(struct spool *sp, const struct spool_envelope *env, struct spool_msg **out)
{
	uint32_t len = env_size(env);
	struct spool_seg *seg;
	struct spool_msg *m;
	uint8_t *payload;
	uint32_t off;
	int r;

	*out = NULL;
	if (sp->state == SPOOL_FAILED)
		return PG_ERROR;
	if (env->nrcpt == 0 || len > SPOOL_REC_MAX_PAYLOAD || len > max_append(sp))
		return PG_DECLINED;
	r = spool_reserve(sp, spool_rec_size(len));
	if (r != PG_OK)
		return r;
	payload = spool_zalloc(sp, len);
	if (payload == NULL)
		return PG_AGAIN;
	env_encode(env, payload);
	r = spool_stage(sp, SPOOL_REC_MSG_BEGIN, 0, payload, len, NULL, 0, &seg, &off);
	if (r != PG_OK) {
		spool_free(sp, payload);
		return r;
	}
	m = spool_msg_new(sp, SPOOL_ID(sp->cfg.worker, seg->seq, off));
	if (m == NULL || spool_msg_set_envelope(sp, m, payload, len) != PG_OK ||
	    spool_msg_add_seg(sp, m, seg) != PG_OK) {
		/* out of memory after staging: the record stays, never committed */
		if (m != NULL) {
			if (m->env == NULL)
				spool_free(sp, payload);
			spool_hash_remove(sp, m);
			spool_msg_release_segs(sp, m);
			spool_msg_destroy(sp, m);
		} else {
			spool_free(sp, payload);
		}
		return PG_AGAIN;
	}
	m->state = MSG_RECEIVING;
	progress_add(sp, m);
	*out = m;
	return PG_OK;
}

static int stage_data(struct spool *sp, struct spool_msg *m, const void *bytes, uint32_t len)
{
	struct spool_rec_data d = {.body_off = m->body_len};
	struct spool_seg *seg;
	uint32_t off;
	int r = spool_stage(sp, SPOOL_REC_MSG_DATA, m->id, &d, sizeof(d), bytes, len, &seg, &off);

	assert(r == PG_OK); /* reserved */
	return spool_msg_add_chunk(sp, m, seg, off, len);
}

static int acc_put(struct spool *sp, struct spool_msg *m, const uint8_t *p, uint32_t len)
{
	if (m->acc_len + len > m->acc_cap) {
		uint32_t cap = m->acc_cap != 0 ? m->acc_cap : 2048;
		uint8_t *n;

		while (cap < m->acc_len + len)
			cap *= 2;
		if (cap > sp->cfg.chunk_size)
			cap = sp->cfg.chunk_size;
		n = spool_zalloc(sp, cap);
		if (n == NULL)
			return PG_ERROR;
		if (m->acc_len != 0)
			memcpy(n, m->acc, m->acc_len);
		spool_free(sp, m->acc);
		m->acc = n;
		m->acc_cap = cap;
	}
	memcpy(m->acc + m->acc_len, p, len);
	m->acc_len += len;
	return PG_OK;
}

int spool_msg_append(struct spool *sp, struct spool_msg *m, const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t chunk = sp->cfg.chunk_size;
	uint64_t total, nrec;
	int r;

	if (sp->state == SPOOL_FAILED || m->state == MSG_FAILED)
		return PG_ERROR;
	assert(m->state == MSG_RECEIVING);
	if (len > max_append(sp))
		return PG_DECLINED;
	total = m->acc_len + len;
	nrec = total / chunk;
	if (nrec != 0) {
		r = spool_reserve(sp, nrec * spool_rec_size(chunk + sizeof(struct spool_rec_data)));
		if (r != PG_OK)
			return r;
	}
	/* whole chunks: fill the accumulator first, then straight from the caller */
	while (m->acc_len + len >= chunk) {
		if (m->acc_len == 0) {
			if (stage_data(sp, m, p, chunk) != PG_OK)
				return PG_ERROR;
			p += chunk;
			len -= chunk;
		} else {
			uint32_t take = chunk - m->acc_len;

			if (acc_put(sp, m, p, take) != PG_OK ||
			    stage_data(sp, m, m->acc, m->acc_len) != PG_OK)
				return PG_ERROR;
			m->acc_len = 0;
			p += take;
			len -= take;
		}
	}
	if (len != 0 && acc_put(sp, m, p, (uint32_t)len) != PG_OK)
		return PG_ERROR;
	return PG_OK;
}

int spool_msg_commit(struct spool *sp, struct spool_msg *m, spool_commit_cb *cb, void *arg)
{
	struct spool_rec_end e;
	struct spool_seg *seg;
	uint64_t bytes = spool_rec_size(sizeof(e));
	int r;

	if (sp->state == SPOOL_FAILED || m->state == MSG_FAILED)
		return PG_ERROR;
	assert(m->state == MSG_RECEIVING);
	if (m->acc_len != 0)
		bytes += spool_rec_size(sizeof(struct spool_rec_data) + m->acc_len);
	r = spool_reserve(sp, bytes);
	if (r != PG_OK)
		return r;
	if (m->acc_len != 0) {
		if (stage_data(sp, m, m->acc, m->acc_len) != PG_OK)
			return PG_ERROR;
		m->acc_len = 0;
	}
	spool_free(sp, m->acc);
	m->acc = NULL;
	m->acc_cap = 0;
	e = (struct spool_rec_end){.body_len = m->body_len, .nchunks = m->nchunks};
	r = spool_stage(sp, SPOOL_REC_MSG_END, m->id, &e, sizeof(e), NULL, 0, &seg, NULL);
	assert(r == PG_OK);
	if (spool_msg_add_seg(sp, m, seg) != PG_OK)
		return PG_ERROR;
	m->state = MSG_COMMITTING;
	m->commit_lsn = sp->lsn;
	m->cb = cb;
	m->cb_arg = arg;
	m->wnext = NULL;
	if (sp->wtail != NULL)
		sp->wtail->wnext = m;
	else
		sp->whead = m;
	sp->wtail = m;
	return PG_OK;
}

void spool_msg_forget_cb(struct spool *sp, struct spool_msg *m)
{
	(void)sp;
	m->cb = NULL;
}

void spool_msg_abort(struct spool *sp, struct spool_msg *m)
{
	if (m->state == MSG_COMMITTING) {
		/* too late to take back: it will be queued, nobody is told */
		m->cb = NULL;
		return;
	}
	assert(m->state == MSG_RECEIVING || m->state == MSG_FAILED);
	/* never committed: no record needed, replay drops it for want of MSG_END */
	spool_progress_remove(sp, m);
	spool_hash_remove(sp, m);
	spool_msg_release_segs(sp, m);
	spool_msg_destroy(sp, m);
}

/* ---- the queue ---- */

struct spool_msg *spool_queue_first(struct spool *sp)
{
	return sp->qhead;
}

struct spool_msg *spool_queue_next(struct spool *sp, struct spool_msg *m)
{
	(void)sp;
	return m->qnext;
}

unsigned spool_queue_count(const struct spool *sp)
{
	return sp->qcount;
}

uint64_t spool_msg_id(const struct spool_msg *m)
{
	return m->id;
}

void *spool_msg_user(const struct spool_msg *m)
{
	return m->user;
}

void spool_msg_set_user(struct spool_msg *m, void *user)
{
	m->user = user;
}

char *spool_id_str(uint64_t id, char buf[SPOOL_ID_STRLEN])
{
	snprintf(buf, SPOOL_ID_STRLEN, "%016" PRIX64, id);
	return buf;
}

int spool_id_parse(const char *s, uint64_t *id)
{
	uint64_t v = 0;
	unsigned n = 0;

	for (; *s != '\0'; s++, n++) {
		int d;

		if (*s >= '0' && *s <= '9')
			d = *s - '0';
		else if (*s >= 'A' && *s <= 'F')
			d = *s - 'A' + 10;
		else if (*s >= 'a' && *s <= 'f')
			d = *s - 'a' + 10;
		else
			return PG_ERROR;
		if (n >= 16)
			return PG_ERROR;
		v = v << 4 | (uint64_t)d;
	}
	if (n == 0)
		return PG_ERROR;
	*id = v;
	return PG_OK;
}

const char *spool_msg_sender(const struct spool_msg *m)
{
	return m->sender;
}

uint32_t spool_msg_nrcpt(const struct spool_msg *m)
{
	return m->nrcpt;
}

const char *spool_msg_rcpt(const struct spool_msg *m, uint32_t i)
{
	return i < m->nrcpt ? m->rcpts[i] : NULL;
}

bool spool_msg_rcpt_done(const struct spool_msg *m, uint32_t i)
{
	return i < m->nrcpt && (m->rcpt_done[i / 8] & (1u << (i % 8))) != 0;
}

const void *spool_msg_params(const struct spool_msg *m, uint32_t *len)
{
	*len = m->params_len;
	return m->params;
}

uint64_t spool_msg_arrival(const struct spool_msg *m)
{
	return m->arrival_ns;
}

uint64_t spool_msg_body_len(const struct spool_msg *m)
{
	return m->body_len;
}

uint32_t spool_msg_nchunks(const struct spool_msg *m)
{
	return m->nchunks;
}

uint32_t spool_msg_attempts(const struct spool_msg *m)
{
	return m->attempts;
}

uint64_t spool_msg_next_attempt(const struct spool_msg *m)
{
	return m->next_attempt_ns;
}

bool spool_msg_held(const struct spool_msg *m)
{
	return m->held;
}

/*
 * One queue-state record: applied in memory now, staged now if possible,
 * else parked (failed spool, or no room this instant) and staged later.
 * `done`: the message leaves the queue with this record.
 */
static int state_record(struct spool *sp, struct spool_msg *m, uint8_t type, const void *payload,
                        uint32_t len, bool done)
{
	struct spool_seg *seg;

	assert(m->state == MSG_QUEUED);
	if (sp->state == SPOOL_ACTIVE && sp->phead == NULL &&
	    spool_reserve(sp, spool_rec_size(len)) == PG_OK &&
	    spool_stage(sp, type, m->id, payload, len, NULL, 0, &seg, NULL) == PG_OK) {
		spool_msg_add_seg(sp, m, seg);
		if (done)
			spool_msg_finish(sp, m);
		return PG_OK;
	}
	if (done) {
		spool_queue_remove(sp, m);
		spool_hash_remove(sp, m);
		m->state = MSG_PARKED;
	}
	spool_park(sp, type, m->id, payload, len, done ? m : NULL);
	return PG_OK;
}

int spool_msg_delivered(struct spool *sp, struct spool_msg *m, uint32_t rcpt)
{
	struct spool_rec_rcpt r = {.rcpt = rcpt};
	bool done;

	if (rcpt != SPOOL_RCPT_ALL && rcpt >= m->nrcpt)
		return PG_DECLINED;
	done = spool_msg_apply_rcpt(m, rcpt);
	return state_record(sp, m, SPOOL_REC_DELIVERED, &r, sizeof(r), done);
}

int spool_msg_defer(struct spool *sp, struct spool_msg *m, uint64_t next_attempt_ns,
                    uint32_t attempts)
{
	struct spool_rec_defer d = {.next_attempt_ns = next_attempt_ns, .attempts = attempts};

	m->next_attempt_ns = next_attempt_ns;
	m->attempts = attempts;
	return state_record(sp, m, SPOOL_REC_DEFERRED, &d, sizeof(d), false);
}

int spool_msg_hold(struct spool *sp, struct spool_msg *m)
{
	m->held = true;
	return state_record(sp, m, SPOOL_REC_HOLD, NULL, 0, false);
}

int spool_msg_release(struct spool *sp, struct spool_msg *m)
{
	m->held = false;
	return state_record(sp, m, SPOOL_REC_RELEASE, NULL, 0, false);
}

int spool_msg_delete(struct spool *sp, struct spool_msg *m)
{
	return state_record(sp, m, SPOOL_REC_DELETE, NULL, 0, true);
}

int spool_sync(struct spool *sp, spool_sync_cb *cb, void *arg)
{
	struct spool_sync_waiter *w;

	if (sp->state == SPOOL_FAILED)
		return PG_ERROR;
	w = spool_zalloc(sp, sizeof(*w));
	if (w == NULL)
		return PG_AGAIN;
	w->lsn = sp->lsn;
	w->cb = cb;
	w->arg = arg;
	if (sp->stail != NULL)
		sp->stail->next = w;
	else
		sp->shead = w;
	sp->stail = w;
	return PG_OK;
}

/* ---- reading back, blocking (tests, tools, control path) ---- */

int spool_read_body(struct spool *sp, struct spool_msg *m, void *buf, size_t cap, size_t *len)
{
	uint8_t *out = buf;
	uint8_t *rec;
	uint32_t max = 0;

	*len = (size_t)m->body_len;
	if (cap < m->body_len)
		return PG_DECLINED;
	for (uint32_t i = 0; i < m->nchunks; i++)
		if (m->chunks[i].len > max)
			max = m->chunks[i].len;
	rec = spool_zalloc(sp, SPOOL_REC_HDR_SIZE + sizeof(struct spool_rec_data) + max + 1);
	if (rec == NULL)
		return PG_ERROR;
	for (uint32_t i = 0; i < m->nchunks; i++) {
		const struct spool_chunk *c = &m->chunks[i];
		size_t size = SPOOL_REC_HDR_SIZE + sizeof(struct spool_rec_data) + c->len;
		const struct spool_rec_hdr *h = (const struct spool_rec_hdr *)rec;
		ssize_t n = pread(c->seg->fd, rec, size, c->off);

		if (n != (ssize_t)size || h->magic != SPOOL_REC_MAGIC ||
		    h->type != SPOOL_REC_MSG_DATA || h->msg_id != m->id ||
		    h->crc != spool_rec_crc(h, h + 1)) {
			spool_log(sp, SPOOL_LOG_ERR,
			          "reading chunk %u of message %016" PRIx64 ": %s", i, m->id,
			          n < 0 ? strerror(errno) : "bad record");
			spool_free(sp, rec);
			errno = EIO;
			return PG_ERROR;
		}
		memcpy(out, rec + SPOOL_REC_HDR_SIZE + sizeof(struct spool_rec_data), c->len);
		out += c->len;
	}
	spool_free(sp, rec);
	return PG_OK;
}
