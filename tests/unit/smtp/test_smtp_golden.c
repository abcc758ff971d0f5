/*
 * test_smtp_golden.c - every transcript in golden/ (one cmocka test each):
 * the client's bytes are fed whole, one byte at a time, and split in two
 * at every byte boundary of the whole conversation; each run must give
 * exactly the replies (S:) and upcalls (U:) of the file. With
 * SMTP_GOLDEN_REGEN=1 the S:/U: lines are rewritten from a whole-line run
 * instead (review the diff before keeping it).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_harness.h"

#define MAX_STEPS 512
#define MAX_BYTES 65536

enum step_kind { STEP_SEND, STEP_ACTION };

struct step {
	enum step_kind kind;
	uint8_t *bytes; /* STEP_SEND */
	size_t len;
	char *action; /* STEP_ACTION */
	char *src;    /* the transcript line (regeneration) */
};

struct golden {
	char path[1024];
	struct strbuf config; /* "@ ..." lines' words */
	struct step steps[MAX_STEPS];
	unsigned nsteps;
	struct strbuf want_out, want_up;
	struct strbuf header; /* comments and config, kept on regeneration */
	size_t total;         /* client bytes */
};

static char *xstrdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		abort();
	return p;
}

static void golden_load(struct golden *g, const char *path)
{
	FILE *f = fopen(path, "r");
	static char line[1 << 18];
	static uint8_t buf[MAX_BYTES];

	memset(g, 0, sizeof(*g));
	snprintf(g->path, sizeof(g->path), "%s", path);
	if (!f)
		fail_msg("cannot open %s", path);
	while (fgets(line, sizeof(line), f)) {
		size_t n = strlen(line);
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0 || line[0] == '#' || line[0] == '@') {
			if (g->nsteps == 0) {
				sb_append(&g->header, line, n);
				sb_append(&g->header, "\n", 1);
			}
			if (line[0] == '@') {
				sb_append(&g->config, line + 1, n - 1);
				sb_append(&g->config, " ", 1);
			}
			continue;
		}
		if (n < 2 || (line[1] != ':' && line[1] != '~'))
			fail_msg("%s: bad line '%s'", path, line);
		const char *rest = line[2] == ' ' ? line + 3 : line + 2;
		switch (line[0]) {
		case 'C': {
			struct step *st = &g->steps[g->nsteps++];
			size_t len = harness_unescape(rest, buf, sizeof(buf) - 2);
			if (line[1] == ':') {
				buf[len++] = '\r';
				buf[len++] = '\n';
			}
			st->kind = STEP_SEND;
			st->bytes = malloc(len ? len : 1);
			memcpy(st->bytes, buf, len);
			st->len = len;
			st->src = xstrdup(line);
			g->total += len;
			break;
		}
		case 'A': {
			struct step *st = &g->steps[g->nsteps++];
			st->kind = STEP_ACTION;
			st->action = xstrdup(rest);
			st->src = xstrdup(line);
			break;
		}
		case 'S':
			sb_append(&g->want_out, rest, strlen(rest));
			sb_append(&g->want_out, "\n", 1);
			break;
		case 'U':
			sb_append(&g->want_up, rest, strlen(rest));
			sb_append(&g->want_up, "\n", 1);
			break;
		default:
			fail_msg("%s: bad line '%s'", path, line);
		}
		assert_true(g->nsteps < MAX_STEPS);
	}
	fclose(f);
}

static void golden_free(struct golden *g)
{
	for (unsigned i = 0; i < g->nsteps; i++) {
		free(g->steps[i].bytes);
		free(g->steps[i].action);
		free(g->steps[i].src);
	}
	sb_free(&g->config);
	sb_free(&g->want_out);
	sb_free(&g->want_up);
	sb_free(&g->header);
}

/* Replies as transcript text: one escaped line per CRLF-terminated reply line. */
static void out_as_text(const struct strbuf *out, size_t from, struct strbuf *txt)
{
	size_t i = from;

	while (i < out->len) {
		const char *crlf = memmem(out->p + i, out->len - i, "\r\n", 2);
		size_t end = crlf ? (size_t)(crlf - out->p) : out->len;
		sb_escape(txt, (const uint8_t *)out->p + i, end - i);
		sb_append(txt, crlf ? "\n" : "<no CRLF>\n", crlf ? 1 : 10);
		i = crlf ? end + 2 : end;
	}
}

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
		struct step *st = &g->steps[i];
		if (st->kind == STEP_ACTION) {
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
	out_as_text(&h.out, 0, &txt);
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

/* Rewrite the file: each C:/A: line followed by what it produced. */
static void regenerate(struct golden *g)
{
	struct harness h;
	struct strbuf file = {0};
	size_t out_mark = 0, up_mark = 0;
	char msg[256];
	FILE *f;

	harness_for(g, &h);
	sb_append(&file, g->header.p, g->header.len);
	for (unsigned i = 0; i <= g->nsteps; i++) {
		struct step *st = &g->steps[i];
		if (i > 0) {
			st = &g->steps[i - 1];
			sb_printf(&file, "%s\n", st->src);
			if (st->kind == STEP_ACTION) {
				if (!harness_action(&h, st->action, msg, sizeof(msg)))
					fail_msg("%s: A: %s: %s", g->path, st->action, msg);
			} else {
				harness_recv(&h, st->bytes, st->len);
			}
		}
		struct strbuf o = {0};
		out_as_text(&h.out, out_mark, &o);
		for (char *l = o.p, *nl; l && *l; l = nl + 1) {
			nl = strchr(l, '\n');
			sb_printf(&file, "S: %.*s\n", (int)(nl - l), l);
		}
		for (char *l = h.up.p + up_mark, *nl; h.up.p && *l; l = nl + 1) {
			nl = strchr(l, '\n');
			sb_append(&file, "U: ", 3);
			sb_append(&file, l, (size_t)(nl - l) + 1);
		}
		sb_free(&o);
		out_mark = h.out.len;
		up_mark = h.up.len;
	}
	f = fopen(g->path, "w");
	assert_non_null(f);
	fwrite(file.p, 1, file.len, f);
	fclose(f);
	sb_free(&file);
	harness_fini(&h);
}

static void test_golden(void **state)
{
	const char *path = *state;
	struct golden *g = calloc(1, sizeof(*g));
	char mode[64];

	golden_load(g, path);
	if (getenv("SMTP_GOLDEN_REGEN")) {
		regenerate(g);
		golden_free(g);
		golden_load(g, path);
	}
	run_once(g, 0, false, "whole");
	run_once(g, 0, true, "bytewise");
	for (size_t cut = 1; cut < g->total; cut++) {
		snprintf(mode, sizeof(mode), "split at %zu", cut);
		run_once(g, cut, false, mode);
	}
	golden_free(g);
	free(g);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "golden";
	struct CMUnitTest *tests;
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	DIR *d = opendir(dir);
	int rc;

	if (!d) {
		fprintf(stderr, "cannot open %s\n", dir);
		return 1;
	}
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l > 4 && !strcmp(de->d_name + l - 4, ".txt")) {
			names = realloc(names, (n + 1) * sizeof(*names));
			names[n++] = xstrdup(de->d_name);
		}
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_str);
	tests = calloc(n, sizeof(*tests));
	for (size_t i = 0; i < n; i++) {
		char *path = malloc(strlen(dir) + strlen(names[i]) + 2);
		sprintf(path, "%s/%s", dir, names[i]);
		tests[i].name = names[i];
		tests[i].test_func = test_golden;
		tests[i].initial_state = path;
	}
	rc = _cmocka_run_group_tests("smtp_golden", tests, n, NULL, NULL);
	for (size_t i = 0; i < n; i++) {
		free(tests[i].initial_state);
		free(names[i]);
	}
	free(tests);
	free(names);
	return rc;
}
