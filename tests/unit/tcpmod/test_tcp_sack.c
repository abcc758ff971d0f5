/*
 * test_tcp_sack.c - the SACK scoreboard and RFC 6675 helpers, table by
 * table: blocks merging in any order, D-SACK and bogus blocks ignored
 * safely, SND.UNA advancing through ranges, IsLost by count and by bytes,
 * pipe with and without retransmissions, NextSeg rules 1 and 3, sequence
 * wrap-around; and the receiver's block order (most recent first).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "net/tcp_sack.h"

#define MSS 1000u
#define NB(a) (sizeof(a) / sizeof((a)[0]))

struct sb_case {
	const char *name;
	uint32_t una, snd_max;
	struct tcp_range in[6];
	unsigned nin;
	uint32_t added; /* bytes newly SACKed */
	unsigned ignored;
	struct tcp_range want[4]; /* the board afterwards */
	unsigned nwant;
};

/* Offsets relative to a base, so every case also runs across the 2^32 wrap. */
static void run_sb_case(const struct sb_case *k, uint32_t base)
{
	struct tcp_scoreboard sb;
	struct tcp_range in[6];
	unsigned ignored = 0;
	uint32_t added, sum = 0;

	tcp_sb_clear(&sb);
	for (unsigned i = 0; i < k->nin; i++) {
		in[i].start = base + k->in[i].start;
		in[i].end = base + k->in[i].end;
	}
	added = tcp_sb_update(&sb, base + k->una, base + k->snd_max, in, k->nin, &ignored);
	if (added != k->added || ignored != k->ignored || sb.n != k->nwant)
		fail_msg("%s (base %#x): added %u ignored %u ranges %u", k->name, base, added,
		         ignored, sb.n);
	for (unsigned i = 0; i < k->nwant; i++) {
		if (sb.r[i].start != base + k->want[i].start ||
		    sb.r[i].end != base + k->want[i].end)
			fail_msg("%s (base %#x): range %u is [%u, %u)", k->name, base, i,
			         sb.r[i].start - base, sb.r[i].end - base);
		sum += k->want[i].end - k->want[i].start;
	}
	assert_int_equal(sb.bytes, sum);
}

static void test_scoreboard_update(void **state)
{
	static const struct sb_case cases[] = {
	    {"one block", 1000, 10000, {{2000, 3000}}, 1, 1000, 0, {{2000, 3000}}, 1},
	    {"disjoint, any order",
	     1000,
	     10000,
	     {{5000, 6000}, {2000, 3000}, {8000, 9000}},
	     3,
	     3000,
	     0,
	     {{2000, 3000}, {5000, 6000}, {8000, 9000}},
	     3},
	    {"adjacent merge",
	     1000,
	     10000,
	     {{2000, 3000}, {3000, 4000}},
	     2,
	     2000,
	     0,
	     {{2000, 4000}},
	     1},
	    {"overlap merge",
	     1000,
	     10000,
	     {{2000, 3500}, {3000, 4000}},
	     2,
	     2000,
	     0,
	     {{2000, 4000}},
	     1},
	    {"bridge three",
	     1000,
	     10000,
	     {{2000, 3000}, {4000, 5000}, {6000, 7000}, {2500, 6500}},
	     4,
	     5000,
	     0,
	     {{2000, 7000}},
	     1},
	    {"repeat adds nothing",
	     1000,
	     10000,
	     {{2000, 3000}, {2000, 3000}, {2200, 2800}},
	     3,
	     1000,
	     0,
	     {{2000, 3000}},
	     1},
	    {"D-SACK below una",
	     5000,
	     10000,
	     {{3000, 4000}, {6000, 7000}},
	     2,
	     1000,
	     1,
	     {{6000, 7000}},
	     1},
	    {"D-SACK ending at una", 5000, 10000, {{4000, 5000}}, 1, 0, 1, {{0, 0}}, 0},
	    {"straddling una is cut", 5000, 10000, {{4500, 6000}}, 1, 1000, 0, {{5000, 6000}}, 1},
	    {"beyond snd_max",
	     1000,
	     10000,
	     {{9000, 11000}, {2000, 3000}},
	     2,
	     1000,
	     1,
	     {{2000, 3000}},
	     1},
	    {"empty and reversed", 1000, 10000, {{3000, 3000}, {4000, 3500}}, 2, 0, 2, {{0, 0}}, 0},
	    {"far below una", 1000, 10000, {{0x80000000u, 3000}}, 1, 0, 1, {{0, 0}}, 0},
	    {"up to snd_max", 1000, 10000, {{9000, 10000}}, 1, 1000, 0, {{9000, 10000}}, 1},
	};
	static const uint32_t bases[] = {0, 0xfffff000u, 0x7ffffc00u};

	(void)state;
	for (unsigned b = 0; b < NB(bases); b++)
		for (unsigned i = 0; i < NB(cases); i++)
			run_sb_case(&cases[i], bases[b]);
}

/* More ranges than the board holds: later ones are dropped, nothing breaks. */
static void test_scoreboard_full(void **state)
{
	struct tcp_scoreboard sb;
	unsigned ignored = 0;

	(void)state;
	tcp_sb_clear(&sb);
	for (uint32_t i = 0; i < TCP_SACK_RANGES + 8; i++) {
		struct tcp_range r = {1000 + 2000 * i + 1000, 1000 + 2000 * i + 2000};

		tcp_sb_update(&sb, 1000, 1000000, &r, 1, &ignored);
	}
	assert_int_equal(sb.n, TCP_SACK_RANGES);
	assert_int_equal(sb.bytes, TCP_SACK_RANGES * 1000);
	/* A block joining two ranges still merges when full. */
	{
		struct tcp_range r = {2500, 4500};

		assert_int_equal(tcp_sb_update(&sb, 1000, 1000000, &r, 1, &ignored), 1000);
		assert_int_equal(sb.n, TCP_SACK_RANGES - 1);
	}
}

static void test_scoreboard_advance(void **state)
{
	struct tcp_scoreboard sb;
	struct tcp_range in[3] = {{2000, 3000}, {4000, 5000}, {6000, 7000}};
	unsigned ignored = 0;

	(void)state;
	tcp_sb_clear(&sb);
	tcp_sb_update(&sb, 1000, 10000, in, 3, &ignored);
	tcp_sb_advance(&sb, 1500);
	assert_int_equal(sb.n, 3);
	tcp_sb_advance(&sb, 3000);
	assert_int_equal(sb.n, 2);
	assert_int_equal(sb.bytes, 2000);
	tcp_sb_advance(&sb, 4500); /* into a range: it shrinks */
	assert_int_equal(sb.n, 2);
	assert_int_equal(sb.r[0].start, 4500);
	assert_int_equal(sb.bytes, 1500);
	tcp_sb_advance(&sb, 9000);
	assert_int_equal(sb.n, 0);
	assert_int_equal(sb.bytes, 0);
}

static void test_is_lost(void **state)
{
	static const struct {
		struct tcp_range r[4];
		unsigned n;
		uint32_t seq;
		bool lost;
	} cases[] = {
	    {{{2000, 3000}}, 1, 1000, false},               /* 1 range, 1 MSS */
	    {{{2000, 4000}}, 1, 1000, false},               /* 2 MSS: not more than 2 */
	    {{{2000, 4001}}, 1, 1000, true},                /* more than 2 MSS */
	    {{{2000, 2100}, {3000, 3100}}, 2, 1000, false}, /* 2 ranges, few bytes */
	    {{{2000, 2100}, {3000, 3100}, {4000, 4100}}, 3, 1000, true},  /* DupThresh ranges */
	    {{{2000, 2100}, {3000, 3100}, {4000, 4100}}, 3, 2500, false}, /* only 2 above */
	    {{{2000, 5000}}, 1, 3000, false}, /* seq inside: 2 MSS above */
	};

	(void)state;
	for (unsigned i = 0; i < NB(cases); i++) {
		struct tcp_scoreboard sb;
		unsigned ignored = 0;

		tcp_sb_clear(&sb);
		tcp_sb_update(&sb, 1000, 100000, cases[i].r, cases[i].n, &ignored);
		if (tcp_sb_is_lost(&sb, cases[i].seq, MSS) != cases[i].lost)
			fail_msg("IsLost case %u", i);
	}
}

/*
 * una 0, sent 10 segments [0, 10000); segments 3, 5, 7, 8 SACKed:
 * holes [0,3000) [4000,5000) [6000,7000), tail [9000,10000).
 */
static void test_pipe_and_next_seg(void **state)
{
	struct tcp_scoreboard sb;
	struct tcp_range in[3] = {{3000, 4000}, {5000, 6000}, {7000, 9000}};
	unsigned ignored = 0;
	uint32_t seq, len;

	(void)state;
	tcp_sb_clear(&sb);
	tcp_sb_update(&sb, 0, 10000, in, 3, &ignored);
	/*
	 * [0,3000) has 3 ranges above: lost. [4000,5000): 2 ranges, 3000 bytes
	 * (> 2 MSS): lost. [6000,7000): 1 range of 2000 bytes: not lost.
	 * pipe = 1000 (hole 3) + 1000 (tail) = 2000.
	 */
	assert_int_equal(tcp_sb_pipe(&sb, 0, 10000, 0, MSS), 2000);
	assert_true(tcp_sb_next_seg(&sb, 0, 0, MSS, true, &seq, &len));
	assert_int_equal(seq, 0);
	assert_int_equal(len, 1000);
	/* Resent [0, 2500): those bytes are in flight again. */
	assert_int_equal(tcp_sb_pipe(&sb, 0, 10000, 2500, MSS), 4500);
	assert_true(tcp_sb_next_seg(&sb, 0, 2500, MSS, true, &seq, &len));
	assert_int_equal(seq, 2500);
	assert_int_equal(len, 500); /* stays in the hole */
	assert_true(tcp_sb_next_seg(&sb, 0, 3000, MSS, true, &seq, &len));
	assert_int_equal(seq, 4000);
	/* Rule 1 finds nothing past the lost holes; rule 3 offers the last hole. */
	assert_false(tcp_sb_next_seg(&sb, 0, 5000, MSS, true, &seq, &len));
	assert_true(tcp_sb_next_seg(&sb, 0, 5000, MSS, false, &seq, &len));
	assert_int_equal(seq, 6000);
	assert_int_equal(len, 1000);
	/* Above the highest SACK there are no holes. */
	assert_false(tcp_sb_next_seg(&sb, 0, 7000, MSS, false, &seq, &len));
	/* Nothing SACKed: everything is in flight, nothing to resend. */
	tcp_sb_clear(&sb);
	assert_int_equal(tcp_sb_pipe(&sb, 0, 10000, 0, MSS), 10000);
	assert_false(tcp_sb_next_seg(&sb, 0, 0, MSS, false, &seq, &len));
}

/* RFC 2018 §4: the block with the latest segment first, then other recent ones. */
static void test_receiver_blocks(void **state)
{
	struct tcp_range ooo[5] = {{100, 200}, {300, 400}, {500, 600}, {700, 800}, {900, 1000}};
	uint32_t recent[TCP_SACK_BLOCKS];
	uint8_t n = 0;
	struct tcp_range out[TCP_SACK_BLOCKS];
	unsigned nb;

	(void)state;
	tcp_sack_note(recent, &n, 300);
	tcp_sack_note(recent, &n, 150);
	tcp_sack_note(recent, &n, 350); /* same range as 300: reported once */
	tcp_sack_note(recent, &n, 520);
	tcp_sack_note(recent, &n, 910);
	assert_int_equal(n, TCP_SACK_BLOCKS);
	nb = tcp_sack_blocks(ooo, 5, recent, n, 3, out);
	assert_int_equal(nb, 3);
	assert_int_equal(out[0].start, 900);
	assert_int_equal(out[1].start, 500);
	assert_int_equal(out[2].start, 300);
	nb = tcp_sack_blocks(ooo, 5, recent, n, 4, out);
	assert_int_equal(nb, 4);
	assert_int_equal(out[3].start, 100); /* 150 arrived before 350 and 520 */
	/* A recent arrival since delivered in order names no range. */
	nb = tcp_sack_blocks(ooo + 2, 3, recent, n, 4, out);
	assert_int_equal(nb, 3);
	assert_int_equal(out[0].start, 900);
	assert_int_equal(out[1].start, 500);
	assert_int_equal(out[2].start, 700);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_scoreboard_update),  cmocka_unit_test(test_scoreboard_full),
	    cmocka_unit_test(test_scoreboard_advance), cmocka_unit_test(test_is_lost),
	    cmocka_unit_test(test_pipe_and_next_seg),  cmocka_unit_test(test_receiver_blocks),
	};

	return cmocka_run_group_tests_name("tcp_sack", tests, NULL, NULL);
}
