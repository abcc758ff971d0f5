/*
 * spool_format.h - the on-disk format of the durable spool (wire format:
 * change it only with SPOOL_VERSION). Every integer is little-endian; the
 * code stores host order and refuses to build on a big-endian host.
 *
 * A worker's spool is DIR/w<N>/seg-<seq as 16 hex digits>.pgs. Each segment
 * file is a 64-byte header followed by records, each aligned to 8 bytes:
 *
 *   +--------------------+------------------+-----------+
 *   | spool_rec_hdr (32) | payload (len)    | 0-7 zeros |
 *   +--------------------+------------------+-----------+
 *
 * crc is zlib crc32 over the header (crc field zero) and the payload; the
 * padding is not covered. seq counts records of the worker: +1 per record
 * within a segment, increasing across segments. Every write batch starts
 * with a SYNC record giving the offset up to which this segment was already
 * on stable storage when the batch was written: replay uses it to tell a
 * torn tail (damage after the last sync, normal after a crash) from
 * corruption of data that had been synced (and acknowledged).
 */
#ifndef PG_SPOOL_FORMAT_H
#define PG_SPOOL_FORMAT_H

#include <stdint.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "spool format is little-endian; add byte swapping for this host"
#endif

#define SPOOL_VERSION 1
#define SPOOL_SEG_MAGIC 0x314c4f4f50534750ull /* "PGSPOOL1" */
#define SPOOL_REC_MAGIC 0x31524750u           /* "PGR1" */
#define SPOOL_ALIGN 8u
#define SPOOL_SEG_HDR_SIZE 64u
#define SPOOL_REC_HDR_SIZE 32u
#define SPOOL_REC_MAX_PAYLOAD (1u << 20) /* 1 MiB: envelope or one body chunk */

/* Segment sizes: bounded by the message id layout (offset/8 in 24 bits). */
#define SPOOL_SEG_MIN_SIZE (64u * 1024)
#define SPOOL_SEG_MAX_SIZE (128u * 1024 * 1024)

struct spool_seg_hdr {
	uint64_t magic;
	uint32_t version;
	uint32_t worker;
	uint64_t seq;        /* the number in the file name */
	uint64_t created_ns; /* CLOCK_REALTIME */
	uint64_t seg_size;   /* maximum size this segment was written with */
	uint32_t hdr_size;   /* SPOOL_SEG_HDR_SIZE */
	uint8_t reserved[16];
	uint32_t crc; /* crc32 of the 60 bytes before it */
};

enum spool_rec_type {
	SPOOL_REC_SYNC = 1,      /* spool_rec_sync; msg_id 0; first in every batch */
	SPOOL_REC_MSG_BEGIN = 2, /* spool_rec_begin + sender + recipients + params */
	SPOOL_REC_MSG_DATA = 3,  /* spool_rec_data + body bytes */
	SPOOL_REC_MSG_END = 4,   /* spool_rec_end: the message is committed */
	SPOOL_REC_DELIVERED = 5, /* spool_rec_rcpt: one recipient, or all, done */
	SPOOL_REC_DEFERRED = 6,  /* spool_rec_defer: retry state */
	SPOOL_REC_HOLD = 7,      /* no payload */
	SPOOL_REC_RELEASE = 8,   /* no payload */
	SPOOL_REC_DELETE = 9,    /* no payload: removed by the operator (done) */
	SPOOL_REC_ABORT = 10,    /* no payload: commit failed, never acknowledged */
	SPOOL_REC__MAX,
};

struct spool_rec_hdr {
	uint32_t magic;
	uint8_t type;
	uint8_t flags; /* 0 */
	uint16_t reserved;
	uint32_t len; /* payload bytes, without the header and the padding */
	uint32_t crc;
	uint64_t msg_id;
	uint64_t seq;
};

struct spool_rec_sync {
	uint64_t synced_off; /* this segment was durable up to here */
};

/*
 * Followed by: sender (sender_len bytes, no NUL), then nrcpt times
 * { uint32_t len; bytes }, then params (params_len bytes, opaque: the SMTP
 * layer's ESMTP/DSN parameters and client information).
 */
struct spool_rec_begin {
	uint64_t arrival_ns; /* CLOCK_REALTIME */
	uint32_t nrcpt;
	uint32_t sender_len;
	uint32_t params_len;
	uint32_t reserved;
};

struct spool_rec_data {
	uint64_t body_off; /* where these bytes go in the body: chunks are contiguous */
};

struct spool_rec_end {
	uint64_t body_len;
	uint32_t nchunks;
	uint32_t reserved;
};

#define SPOOL_RCPT_ALL 0xffffffffu

struct spool_rec_rcpt {
	uint32_t rcpt; /* index in the envelope, or SPOOL_RCPT_ALL */
	uint32_t reserved;
};

struct spool_rec_defer {
	uint64_t next_attempt_ns; /* CLOCK_REALTIME */
	uint32_t attempts;
	uint32_t reserved;
};

_Static_assert(sizeof(struct spool_seg_hdr) == SPOOL_SEG_HDR_SIZE, "segment header");
_Static_assert(sizeof(struct spool_rec_hdr) == SPOOL_REC_HDR_SIZE, "record header");

static inline uint32_t spool_rec_size(uint32_t len)
{
	return (SPOOL_REC_HDR_SIZE + len + SPOOL_ALIGN - 1) & ~(SPOOL_ALIGN - 1);
}

/*
 * Message ids: worker (10 bits) | segment seq (30 bits) | offset/8 of the
 * MSG_BEGIN record (24 bits). Unique across restarts because segment
 * numbers only grow: the active segment, the newest, is never reclaimed.
 */
#define SPOOL_ID(worker, seq, off)                                                                 \
	((((uint64_t)(worker)&0x3ffu) << 54) | (((uint64_t)(seq)&0x3fffffffu) << 24) |             \
	 (((uint64_t)(off) >> 3) & 0xffffffu))
#define SPOOL_ID_WORKER(id) ((uint32_t)((id) >> 54))

#endif
