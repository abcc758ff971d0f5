/*
 * tcp_sack.c - the SACK scoreboard and RFC 6675 helpers of tcp_sack.h,
 * and the receiver's block selection. Ranges are few (at most 32 on the
 * sender, 16 on the receiver), so everything is a linear walk over a
 * sorted array: no allocation, no trees, easy to test exhaustively.
 */
#include <string.h>

#include "tcp_sack.h"

void tcp_sb_clear(struct tcp_scoreboard *sb)
{
	sb->n = 0;
	sb->bytes = 0;
}

/* Insert [start, end) merging with what it overlaps or touches; new bytes returned. */
static uint32_t sb_insert(struct tcp_scoreboard *sb, uint32_t start, uint32_t end)
{
	uint32_t covered = 0, old_bytes = sb->bytes;
	unsigned i = 0, j;

	while (i < sb->n && SEQ_LT(sb->r[i].end, start))
		i++;
	j = i;
	while (j < sb->n && SEQ_LEQ(sb->r[j].start, end)) {
		covered += sb->r[j].end - sb->r[j].start;
		if (SEQ_LT(sb->r[j].start, start))
			start = sb->r[j].start;
		if (SEQ_GT(sb->r[j].end, end))
			end = sb->r[j].end;
		j++;
	}
	if (j == i) {
		if (sb->n == TCP_SACK_RANGES)
			return 0; /* full: forgetting a SACK only costs a needless resend */
		memmove(&sb->r[i + 1], &sb->r[i], (sb->n - i) * sizeof(sb->r[0]));
		sb->n++;
	} else if (j > i + 1) {
		memmove(&sb->r[i + 1], &sb->r[j], (sb->n - j) * sizeof(sb->r[0]));
		sb->n = (uint8_t)(sb->n - (j - i - 1));
	}
	sb->r[i].start = start;
	sb->r[i].end = end;
	sb->bytes = sb->bytes - covered + (end - start);
	return sb->bytes - old_bytes;
}

uint32_t tcp_sb_update(struct tcp_scoreboard *sb, uint32_t una, uint32_t snd_max,
                       const struct tcp_range *blocks, unsigned nblocks, unsigned *ignored)
{
	uint32_t added = 0;

	for (unsigned k = 0; k < nblocks; k++) {
		uint32_t start = blocks[k].start, end = blocks[k].end;

		/*
		 * RFC 2883 D-SACK, or news about what is acknowledged already;
		 * empty or reversed; beyond what was sent; or reaching further
		 * below SND.UNA than the whole flight (garbage, not a late block).
		 */
		if (SEQ_LEQ(end, una) || SEQ_LEQ(end, start) || SEQ_GT(end, snd_max) ||
		    SEQ_LT(start, una - (snd_max - una))) {
			(*ignored)++;
			continue;
		}
		if (SEQ_LT(start, una))
			start = una;
		added += sb_insert(sb, start, end);
	}
	return added;
}

void tcp_sb_advance(struct tcp_scoreboard *sb, uint32_t una)
{
	unsigned drop = 0;

	while (drop < sb->n && SEQ_LEQ(sb->r[drop].end, una)) {
		sb->bytes -= sb->r[drop].end - sb->r[drop].start;
		drop++;
	}
	if (drop > 0) {
		memmove(&sb->r[0], &sb->r[drop], (sb->n - drop) * sizeof(sb->r[0]));
		sb->n = (uint8_t)(sb->n - drop);
	}
	if (sb->n > 0 && SEQ_LT(sb->r[0].start, una)) {
		sb->bytes -= una - sb->r[0].start;
		sb->r[0].start = una;
	}
}

bool tcp_sb_is_lost(const struct tcp_scoreboard *sb, uint32_t seq, uint32_t mss)
{
	uint32_t bytes = 0;
	unsigned ranges = 0;

	for (unsigned i = sb->n; i-- > 0;) {
		if (SEQ_LEQ(sb->r[i].end, seq))
			break;
		ranges++;
		bytes += sb->r[i].end - (SEQ_GT(sb->r[i].start, seq) ? sb->r[i].start : seq);
		if (ranges >= TCP_SACK_DUPTHRESH || bytes > (TCP_SACK_DUPTHRESH - 1) * mss)
			return true;
	}
	return false;
}

uint32_t tcp_sb_pipe(const struct tcp_scoreboard *sb, uint32_t una, uint32_t snd_max,
                     uint32_t high_rxt, uint32_t mss)
{
	uint32_t pipe = 0, cur = una;

	for (unsigned i = 0; i < sb->n; i++) {
		uint32_t hs = cur, he = sb->r[i].start;

		if (SEQ_LT(hs, he)) {
			/* A hole: in flight unless lost; what we resent is in flight again. */
			if (!tcp_sb_is_lost(sb, hs, mss))
				pipe += he - hs;
			if (SEQ_GT(high_rxt, hs))
				pipe += (SEQ_LT(high_rxt, he) ? high_rxt : he) - hs;
		}
		cur = sb->r[i].end;
	}
	/* Above the highest SACK nothing is known lost: all in flight. */
	if (SEQ_LT(cur, snd_max))
		pipe += snd_max - cur;
	return pipe;
}

bool tcp_sb_next_seg(const struct tcp_scoreboard *sb, uint32_t una, uint32_t high_rxt, uint32_t mss,
                     bool lost_only, uint32_t *seq, uint32_t *len)
{
	uint32_t from = SEQ_GT(high_rxt, una) ? high_rxt : una, cur = una;

	for (unsigned i = 0; i < sb->n; i++) {
		uint32_t he = sb->r[i].start;

		if (SEQ_LT(from, he) && SEQ_LT(cur, he)) {
			uint32_t s = SEQ_GT(from, cur) ? from : cur;

			/* Fewer SACKs lie above every later hole: not lost here, not lost there. */
			if (lost_only && !tcp_sb_is_lost(sb, s, mss))
				return false;
			*seq = s;
			*len = he - s < mss ? he - s : mss;
			return true;
		}
		cur = sb->r[i].end;
	}
	return false;
}

void tcp_sack_note(uint32_t *recent, uint8_t *n, uint32_t seq)
{
	unsigned k = *n < TCP_SACK_BLOCKS ? *n : TCP_SACK_BLOCKS - 1;

	memmove(&recent[1], &recent[0], k * sizeof(recent[0]));
	recent[0] = seq;
	if (*n < TCP_SACK_BLOCKS)
		(*n)++;
}

static int range_of(const struct tcp_range *ooo, unsigned nooo, uint32_t seq)
{
	for (unsigned i = 0; i < nooo; i++)
		if (SEQ_LEQ(ooo[i].start, seq) && SEQ_LT(seq, ooo[i].end))
			return (int)i;
	return -1;
}

unsigned tcp_sack_blocks(const struct tcp_range *ooo, unsigned nooo, const uint32_t *recent,
                         unsigned nrecent, unsigned max, struct tcp_range *out)
{
	uint32_t used = 0; /* bit i: ooo[i] reported (nooo <= 32) */
	unsigned n = 0;

	for (unsigned k = 0; k < nrecent && n < max; k++) {
		int i = range_of(ooo, nooo, recent[k]);

		if (i < 0 || i >= 32 || (used & (1u << i)))
			continue;
		used |= 1u << i;
		out[n++] = ooo[i];
	}
	/* Then the highest others: the sender learns the far edge soonest. */
	for (unsigned i = nooo; i-- > 0 && n < max;) {
		if (i < 32 && (used & (1u << i)))
			continue;
		out[n++] = ooo[i];
	}
	return n;
}
