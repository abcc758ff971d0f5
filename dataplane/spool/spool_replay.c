/*
 * spool_replay.c - rebuilding the queue from the segment files at start
 * (blocking: runs before the worker's loop). Segments are read in order,
 * every record's crc and sequence checked, and the records applied: a
 * message is queued once its MSG_END is seen, and leaves the queue with
 * its last DELIVERED, a DELETE or an ABORT. Messages without MSG_END were
 * never acknowledged and are dropped.
 *
 * A bad record is either a torn tail (writes after the last fdatasync that
 * a crash cut short: normal, the rest of the segment is ignored) or
 * corruption (damage inside data that had been synced). The SYNC record at
 * the start of every write batch says how far the segment was synced when
 * the batch was written; a valid SYNC record after the bad one claiming more
 * than the bad offset proves the bad record had been synced: corruption,
 * reported as an error, the segment kept for the operator, and the replay
 * continues at the next valid record to save what can be saved.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "result.h"
#include "spool_impl.h"

struct scan {
	struct spool *sp;
	struct spool_seg *seg;
	struct spool_replay_report *rep;
	const uint8_t *map;
	uint64_t size;
};

static const char *valid_record(const struct scan *sc, uint64_t off, struct spool_rec_hdr *h)
{
	if (off + SPOOL_REC_HDR_SIZE > sc->size)
		return "truncated header";
	memcpy(h, sc->map + off, sizeof(*h));
	if (h->magic != SPOOL_REC_MAGIC)
		return "bad magic";
	if (h->type == 0 || h->type >= SPOOL_REC__MAX || h->flags != 0)
		return "bad type";
	if (h->len > SPOOL_REC_MAX_PAYLOAD || off + SPOOL_REC_HDR_SIZE + h->len > sc->size)
		return "truncated payload";
	if (h->crc != spool_rec_crc(h, sc->map + off + SPOOL_REC_HDR_SIZE))
		return "bad crc";
	return NULL;
}

/*
 * After a bad record at `bad`: the first valid record after it (0: none),
 * how many valid records follow, and the highest synced offset claimed by
 * a SYNC record among them.
 */
static uint64_t scan_ahead(const struct scan *sc, uint64_t bad, unsigned *intact, uint64_t *claim)
{
	uint64_t first = 0;

	*intact = 0;
	*claim = 0;
	for (uint64_t off = bad + SPOOL_ALIGN; off + SPOOL_REC_HDR_SIZE <= sc->size;) {
		struct spool_rec_hdr h;

		if (valid_record(sc, off, &h) != NULL) {
			off += SPOOL_ALIGN;
			continue;
		}
		if (first == 0)
			first = off;
		(*intact)++;
		if (h.type == SPOOL_REC_SYNC && h.len == sizeof(struct spool_rec_sync)) {
			struct spool_rec_sync s;

			memcpy(&s, sc->map + off + SPOOL_REC_HDR_SIZE, sizeof(s));
			if (s.synced_off > *claim)
				*claim = s.synced_off;
		}
		off += spool_rec_size(h.len);
	}
	return first;
}

static void damage(struct spool *sp, struct spool_msg *m, const char *why)
{
	if (m->state != MSG_DAMAGED)
		spool_log(sp, SPOOL_LOG_ERR, "message %016" PRIX64 " damaged: %s", m->id, why);
	spool_queue_remove(sp, m);
	m->state = MSG_DAMAGED;
}

static void apply(struct scan *sc, const struct spool_rec_hdr *h, const uint8_t *payload,
                  uint32_t off)
{
	struct spool *sp = sc->sp;
	struct spool_msg *m = h->type == SPOOL_REC_SYNC ? NULL : spool_msg_lookup(sp, h->msg_id);

	switch (h->type) {
	case SPOOL_REC_SYNC:
		return;
	case SPOOL_REC_MSG_BEGIN: {
		uint8_t *env;

		if (m != NULL) {
			spool_log(sp, SPOOL_LOG_WARNING,
			          "%s: second MSG_BEGIN for %016" PRIX64 " at %u ignored",
			          sc->seg->name, h->msg_id, off);
			return;
		}
		m = spool_msg_new(sp, h->msg_id);
		env = m != NULL ? spool_zalloc(sp, h->len ? h->len : 1) : NULL;
		if (env == NULL) {
			spool_log(sp, SPOOL_LOG_ERR, "out of memory replaying %s", sc->seg->name);
			return;
		}
		memcpy(env, payload, h->len);
		m->state = MSG_RECEIVING;
		spool_msg_add_seg(sp, m, sc->seg);
		if (spool_msg_set_envelope(sp, m, env, h->len) != PG_OK) {
			if (m->env == NULL)
				spool_free(sp, env);
			damage(sp, m, "bad envelope");
		}
		return;
	}
	default:
		break;
	}
	if (m == NULL)
		return; /* its message was dropped or reclaimed: nothing to apply to */
	spool_msg_add_seg(sp, m, sc->seg);
	switch (h->type) {
	case SPOOL_REC_MSG_DATA: {
		struct spool_rec_data d;

		if (m->state != MSG_RECEIVING)
			return;
		if (h->len < sizeof(d)) {
			damage(sp, m, "short MSG_DATA");
			return;
		}
		memcpy(&d, payload, sizeof(d));
		if (d.body_off != m->body_len) {
			damage(sp, m, "a body chunk is missing");
			return;
		}
		spool_msg_add_chunk(sp, m, sc->seg, off, h->len - (uint32_t)sizeof(d));
		return;
	}
	case SPOOL_REC_MSG_END: {
		struct spool_rec_end e;

		if (m->state != MSG_RECEIVING)
			return;
		if (h->len != sizeof(e)) {
			damage(sp, m, "bad MSG_END");
			return;
		}
		memcpy(&e, payload, sizeof(e));
		if (e.body_len != m->body_len || e.nchunks != m->nchunks) {
			damage(sp, m, "body length differs from MSG_END");
			return;
		}
		m->state = MSG_QUEUED;
		spool_queue_add(sp, m);
		return;
	}
	case SPOOL_REC_DELIVERED: {
		struct spool_rec_rcpt r;

		if ((m->state != MSG_QUEUED && m->state != MSG_DAMAGED) || h->len != sizeof(r) ||
		    m->rcpt_done == NULL)
			return;
		memcpy(&r, payload, sizeof(r));
		if (spool_msg_apply_rcpt(m, r.rcpt)) {
			sc->rep->done++;
			spool_msg_finish(sp, m);
		}
		return;
	}
	case SPOOL_REC_DEFERRED: {
		struct spool_rec_defer d;

		if (m->state != MSG_QUEUED || h->len != sizeof(d))
			return;
		memcpy(&d, payload, sizeof(d));
		m->next_attempt_ns = d.next_attempt_ns;
		m->attempts = d.attempts;
		return;
	}
	case SPOOL_REC_HOLD:
	case SPOOL_REC_RELEASE:
		if (m->state == MSG_QUEUED)
			m->held = h->type == SPOOL_REC_HOLD;
		return;
	case SPOOL_REC_DELETE:
		if (m->state != MSG_QUEUED && m->state != MSG_DAMAGED)
			return;
		sc->rep->done++;
		spool_msg_finish(sp, m);
		return;
	case SPOOL_REC_ABORT:
		sc->rep->discarded++;
		spool_msg_finish(sp, m);
		return;
	}
}

static void scan_segment(struct scan *sc)
{
	struct spool *sp = sc->sp;
	uint64_t off = SPOOL_SEG_HDR_SIZE;
	uint64_t last_seq = 0;

	while (off < sc->size) {
		struct spool_rec_hdr h;
		const char *why = valid_record(sc, off, &h);
		unsigned intact;
		uint64_t claim, next;

		if (why == NULL && last_seq != 0 && h.seq != last_seq + 1)
			why = "sequence gap";
		if (why == NULL && last_seq == 0 && h.seq <= sp->rec_seq)
			why = "sequence goes back";
		if (why == NULL) {
			apply(sc, &h, sc->map + off + SPOOL_REC_HDR_SIZE, (uint32_t)off);
			sc->rep->records++;
			last_seq = h.seq;
			if (h.seq > sp->rec_seq)
				sp->rec_seq = h.seq;
			off += spool_rec_size(h.len);
			continue;
		}
		next = scan_ahead(sc, off, &intact, &claim);
		if (claim <= off) {
			/* after the last sync: a crash cut these writes short */
			sc->rep->torn++;
			sc->rep->torn_bytes += sc->size - off;
			spool_log(sp, SPOOL_LOG_NOTICE,
			          "%s/%s: torn tail at offset %" PRIu64 " (%s), %" PRIu64
			          " bytes never synced ignored (%u intact records in them)",
			          sp->dir, sc->seg->name, off, why, sc->size - off, intact);
			return;
		}
		sc->rep->corrupt++;
		sc->seg->keep = true;
		spool_log(sp, SPOOL_LOG_ERR,
		          "%s/%s: CORRUPT record at offset %" PRIu64 " (%s) inside data synced up "
		          "to %" PRIu64 "; segment kept for inspection, replay goes on at %" PRIu64,
		          sp->dir, sc->seg->name, off, why, claim, next);
		off = next;
		last_seq = 0;
		/* the next record's seq only has to go forward */
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static bool header_ok(const struct spool *sp, const struct spool_seg *seg, const uint8_t *map,
                      uint64_t size)
{
	struct spool_seg_hdr h;

	if (size < SPOOL_SEG_HDR_SIZE)
		return false;
	memcpy(&h, map, sizeof(h));
	return h.magic == SPOOL_SEG_MAGIC && h.version == SPOOL_VERSION &&
	       h.crc ==
	           (uint32_t)crc32(0L, (const Bytef *)&h, offsetof(struct spool_seg_hdr, crc)) &&
	       h.worker == sp->cfg.worker && h.seq == seg->seq && h.hdr_size == SPOOL_SEG_HDR_SIZE;
}

static int list_segments(struct spool *sp, uint64_t **seqs, unsigned *n)
{
	DIR *d = fdopendir(dup(sp->dirfd));
	struct dirent *de;
	unsigned cap = 0;

	*seqs = NULL;
	*n = 0;
	if (d == NULL)
		return PG_ERROR;
	while ((de = readdir(d)) != NULL) {
		unsigned long long seq;
		char tail[8];

		if (sscanf(de->d_name, "seg-%16llx.pg%7s", &seq, tail) != 2 ||
		    strcmp(tail, "s") != 0 || strlen(de->d_name) != 24)
			continue;
		if (*n == cap) {
			uint64_t *p;

			cap = cap != 0 ? cap * 2 : 64;
			p = realloc(*seqs, cap * sizeof(*p));
			if (p == NULL) {
				closedir(d);
				return PG_ERROR;
			}
			*seqs = p;
		}
		(*seqs)[(*n)++] = seq;
	}
	closedir(d);
	if (*n != 0)
		qsort(*seqs, *n, sizeof(**seqs), cmp_u64);
	return PG_OK;
}

int spool_replay(struct spool *sp, struct spool_replay_report *rep)
{
	uint64_t *seqs;
	unsigned n;
	bool corrupt_seen = false;

	if (list_segments(sp, &seqs, &n) != PG_OK)
		return PG_ERROR;
	for (unsigned i = 0; i < n; i++) {
		struct spool_seg *seg = spool_seg_new(sp, seqs[i]);
		struct scan sc = {.sp = sp, .seg = seg, .rep = rep};
		struct stat st;
		void *map = NULL;

		if (seg == NULL) {
			free(seqs);
			errno = ENOMEM;
			return PG_ERROR;
		}
		sp->next_seq = seqs[i] + 1;
		seg->state = SEG_OLD;
		seg->fd = openat(sp->dirfd, seg->name, O_RDONLY | O_CLOEXEC);
		if (seg->fd < 0 || fstat(seg->fd, &st) != 0) {
			spool_log(sp, SPOOL_LOG_ERR, "%s/%s: %s; kept", sp->dir, seg->name,
			          strerror(errno));
			rep->bad_segments++;
			seg->keep = true;
			continue;
		}
		rep->segments++;
		sc.size = (uint64_t)st.st_size;
		if (sc.size != 0) {
			map = mmap(NULL, sc.size, PROT_READ, MAP_PRIVATE, seg->fd, 0);
			if (map == MAP_FAILED) {
				spool_log(sp, SPOOL_LOG_ERR, "mmap %s/%s: %s; kept", sp->dir,
				          seg->name, strerror(errno));
				rep->bad_segments++;
				seg->keep = true;
				continue;
			}
		}
		sc.map = map;
		if (!header_ok(sp, seg, sc.map, sc.size)) {
			if (i + 1 == n && sc.size <= SPOOL_SEG_HDR_SIZE) {
				/* the newest file, header not even complete: a spare being created
				 */
				spool_log(sp, SPOOL_LOG_NOTICE,
				          "%s/%s: incomplete new segment removed", sp->dir,
				          seg->name);
				if (map != NULL)
					munmap(map, sc.size);
				unlinkat(sp->dirfd, seg->name, 0);
				spool_seg_free(sp, seg);
				continue;
			}
			spool_log(sp, SPOOL_LOG_ERR,
			          "%s/%s: bad segment header; kept, not replayed", sp->dir,
			          seg->name);
			rep->bad_segments++;
			seg->keep = true;
			if (map != NULL)
				munmap(map, sc.size);
			continue;
		}
		scan_segment(&sc);
		if (seg->keep)
			corrupt_seen = true;
		seg->end = seg->synced = (uint32_t)sc.size;
		munmap(map, sc.size);
	}
	free(seqs);

	/* what is left: queued, or never committed, or damaged */
	for (uint32_t b = 0; b <= sp->hash_mask; b++)
		for (struct spool_msg *m = sp->hash[b], *next; m != NULL; m = next) {
			bool on_bad = false;

			next = m->hnext;
			if (m->state == MSG_QUEUED) {
				rep->queued++;
				continue;
			}
			for (uint32_t i = 0; i < m->nsegs; i++)
				on_bad |= m->segs[i]->keep;
			if (m->state == MSG_DAMAGED || (corrupt_seen && on_bad)) {
				rep->damaged++;
				spool_log(sp, SPOOL_LOG_ERR,
				          "message %016" PRIX64 " from <%s> lost to corruption%s",
				          m->id, m->sender != NULL ? m->sender : "?",
				          m->state == MSG_DAMAGED ? ""
				                                  : " (its MSG_END is unreadable)");
			} else {
				rep->discarded++;
			}
			spool_hash_remove(sp, m);
			spool_msg_release_segs(sp, m);
			spool_msg_destroy(sp, m);
		}
	if (rep->corrupt != 0 || rep->damaged != 0 || rep->bad_segments != 0)
		spool_log(sp, SPOOL_LOG_ERR,
		          "replay of %s found DAMAGE: %u corrupt records, %u messages lost, %u bad "
		          "segment files",
		          sp->dir, rep->corrupt, rep->damaged, rep->bad_segments);
	spool_log(sp, SPOOL_LOG_INFO,
	          "replayed %s: %u segments, %" PRIu64 " records, %u queued, %u done, %u "
	          "dropped uncommitted, %u torn tails",
	          sp->dir, rep->segments, rep->records, rep->queued, rep->done, rep->discarded,
	          rep->torn);
	return PG_OK;
}
