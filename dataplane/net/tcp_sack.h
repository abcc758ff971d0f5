/*
 * tcp_sack.h - selective acknowledgments as pure functions: the sender's
 * scoreboard (RFC 2018 blocks folded into sorted SACKed ranges) with the
 * RFC 6675 loss-recovery helpers (IsLost, pipe, NextSeg), and the
 * receiver's choice of blocks to report (most recent first). No
 * connection state, no DPDK: tests drive them table by table.
 */
#ifndef PG_TCP_SACK_H
#define PG_TCP_SACK_H

#include <stdbool.h>
#include <stdint.h>

#include "tcp_seq.h"

#define TCP_SACK_RANGES 32   /* SACKed ranges a sender remembers above SND.UNA */
#define TCP_SACK_BLOCKS 4    /* blocks per segment (RFC 2018 §3: at most 4, 3 with timestamps) */
#define TCP_SACK_DUPTHRESH 3 /* RFC 6675 DupThresh */

/* What the sender knows was received beyond SND.UNA. */
struct tcp_scoreboard {
	uint8_t n;
	uint32_t bytes;                      /* sum of the ranges */
	struct tcp_range r[TCP_SACK_RANGES]; /* sorted, disjoint, non-adjacent, all above SND.UNA */
};

void tcp_sb_clear(struct tcp_scoreboard *sb);

/*
 * Fold the blocks of one ACK into the board. una/snd_max: the sender's
 * SND.UNA (already advanced by this ACK's cumulative acknowledgment) and
 * highest sequence sent. Blocks at or below una (D-SACK, RFC 2883, or
 * stale) and blocks that are empty, reversed, reach beyond snd_max or
 * start further below una than snd_max - una (bogus) are ignored and
 * counted in *ignored; a block straddling una is cut at una. Returns the bytes newly marked SACKed.
 */
uint32_t tcp_sb_update(struct tcp_scoreboard *sb, uint32_t una, uint32_t snd_max,
                       const struct tcp_range *blocks, unsigned nblocks, unsigned *ignored);

/* SND.UNA moved: forget what lies below it. */
void tcp_sb_advance(struct tcp_scoreboard *sb, uint32_t una);

/*
 * RFC 6675 §4 IsLost(seq): DupThresh discontiguous SACKed ranges above
 * seq, or more than (DupThresh - 1) * mss SACKed bytes above it.
 */
bool tcp_sb_is_lost(const struct tcp_scoreboard *sb, uint32_t seq, uint32_t mss);

/*
 * RFC 6675 §4 SetPipe: bytes presumed in the network between una and
 * snd_max - not SACKed and not lost, plus what was retransmitted below
 * high_rxt (HighRxt) since recovery began.
 */
uint32_t tcp_sb_pipe(const struct tcp_scoreboard *sb, uint32_t una, uint32_t snd_max,
                     uint32_t high_rxt, uint32_t mss);

/*
 * RFC 6675 §4 NextSeg, rules 1 and 3: the first un-SACKed byte at or
 * above max(una, high_rxt) in a hole below the highest SACKed byte -
 * with `lost_only`, only if IsLost says it is lost (rule 1), else any
 * such hole (rule 3). *len is at most mss and stays inside the hole.
 */
bool tcp_sb_next_seg(const struct tcp_scoreboard *sb, uint32_t una, uint32_t high_rxt, uint32_t mss,
                     bool lost_only, uint32_t *seq, uint32_t *len);

/*
 * Receiver (RFC 2018 §4): remember that out-of-order data at `seq` just
 * arrived, most recent first, in recent[0..*n) (at most TCP_SACK_BLOCKS).
 */
void tcp_sack_note(uint32_t *recent, uint8_t *n, uint32_t seq);

/*
 * The blocks to send: the out-of-order range holding the most recently
 * received segment first, then the ranges of the other recent arrivals,
 * then any others, each once, at most `max`. ooo: the receiver's sorted
 * out-of-order ranges. Returns the number written to out.
 */
unsigned tcp_sack_blocks(const struct tcp_range *ooo, unsigned nooo, const uint32_t *recent,
                         unsigned nrecent, unsigned max, struct tcp_range *out);

#endif
