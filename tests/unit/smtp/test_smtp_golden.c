/*
 * test_smtp_golden.c - every transcript in golden/ (one cmocka test each):
 * the client's bytes are fed whole, one byte at a time, and split in two
 * at every byte boundary of the whole conversation; each run must give
 * exactly the replies (S:) and upcalls (U:) of the file. With
 * SMTP_GOLDEN_REGEN=1 the S:/U: lines are rewritten from a whole-line run
 * instead; a file so rewritten fails its test (review the diff, then run
 * again without the variable), and any other value fails every transcript.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "smtp_harness.h"

static void harness_for(struct golden *g, struct harness *h)
{
	harness_init(h);
	if (g->config.len && !harness_config(h, g->config.p))
		fail_msg("%s: bad config '%s'", g->path, g->config.p);
	harness_start(h);
}

/*
 * One run: the client bytes cut at `cut` (a global offset; 0 = no cut),
 * or one byte at a time. Returns NULL or a description of the mismatch.
 */
static void run_once(struct golden *g, size_t cut, bool bytewise, const char *mode)
{
	struct harness h;
	struct strbuf txt = {0};
	size_t off = 0;
	char msg[256];

	harness_for(g, &h);
	for (unsigned i = 0; i < g->nsteps; i++) {
		struct golden_step *st = &g->steps[i];
		if (st->kind == GOLDEN_ACTION) {
			if (!harness_action(&h, st->action, msg, sizeof(msg)))
				fail_msg("%s (%s): A: %s: %s", g->path, mode, st->action, msg);
			continue;
		}
		if (bytewise) {
			for (size_t k = 0; k < st->len; k++)
				harness_recv(&h, st->bytes + k, 1);
		} else if (cut > off && cut < off + st->len) {
			harness_recv(&h, st->bytes, cut - off);
			harness_recv(&h, st->bytes + (cut - off), st->len - (cut - off));
		} else {
			harness_recv(&h, st->bytes, st->len);
		}
		off += st->len;
	}
	golden_out_as_text(&h.out, 0, &txt);
	if (txt.len != g->want_out.len ||
	    memcmp(txt.p ? txt.p : "", g->want_out.p ? g->want_out.p : "", txt.len)) {
		print_error("%s (%s): replies differ\n--- want\n%s--- got\n%s", g->path, mode,
		            g->want_out.p ? g->want_out.p : "", txt.p ? txt.p : "");
		fail();
	}
	if (h.up.len != g->want_up.len ||
	    memcmp(h.up.p ? h.up.p : "", g->want_up.p ? g->want_up.p : "", h.up.len)) {
		print_error("%s (%s): upcalls differ\n--- want\n%s--- got\n%s", g->path, mode,
		            g->want_up.p ? g->want_up.p : "", h.up.p ? h.up.p : "");
		fail();
	}
	sb_free(&txt);
	harness_fini(&h);
}

/* The new file text: each C:/A: line followed by what it produced. */
static void regenerate(struct golden *g, struct strbuf *file)
{
	struct harness h;
	size_t out_mark = 0, up_mark = 0;
	char msg[256];

	harness_for(g, &h);
	sb_append(file, g->header.p, g->header.len);
	for (unsigned i = 0; i <= g->nsteps; i++) {
		struct golden_step *st = &g->steps[i];
		if (i > 0) {
			st = &g->steps[i - 1];
			sb_printf(file, "%s\n", st->src);
			if (st->kind == GOLDEN_ACTION) {
				if (!harness_action(&h, st->action, msg, sizeof(msg)))
					fail_msg("%s: A: %s: %s", g->path, st->action, msg);
			} else {
				harness_recv(&h, st->bytes, st->len);
			}
		}
		golden_append_produced(file, 'S', &h.out, &out_mark, &h.up, &up_mark);
	}
	harness_fini(&h);
}

static void test_golden(void **state)
{
	golden_test(*state, 'C', 'S', regenerate, run_once);
}

int main(int argc, char **argv)
{
	return golden_run_dir("smtp_golden", argc > 1 ? argv[1] : "golden", test_golden, NULL, 0);
}
