/*
 * golden.c - loading golden SMTP transcripts and running one cmocka test
 * per file (golden.h); shared by the server and client engine tests.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"

char *golden_strdup(const char *s)
{
	char *p = strdup(s);
	if (!p)
		abort();
	return p;
}

void golden_load(struct golden *g, const char *path, char input, char output)
{
	FILE *f = fopen(path, "r");
	static char line[1 << 18];
	static uint8_t buf[GOLDEN_MAX_BYTES];

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
		if (line[0] == input) {
			struct golden_step *st = &g->steps[g->nsteps++];
			size_t len = harness_unescape(rest, buf, sizeof(buf) - 2);
			if (line[1] == ':') {
				buf[len++] = '\r';
				buf[len++] = '\n';
			}
			st->kind = GOLDEN_INPUT;
			st->bytes = malloc(len ? len : 1);
			memcpy(st->bytes, buf, len);
			st->len = len;
			st->src = golden_strdup(line);
			g->total += len;
		} else if (line[0] == 'A') {
			struct golden_step *st = &g->steps[g->nsteps++];
			st->kind = GOLDEN_ACTION;
			st->action = golden_strdup(rest);
			st->src = golden_strdup(line);
		} else if (line[0] == output) {
			sb_append(&g->want_out, rest, strlen(rest));
			sb_append(&g->want_out, "\n", 1);
		} else if (line[0] == 'U') {
			sb_append(&g->want_up, rest, strlen(rest));
			sb_append(&g->want_up, "\n", 1);
		} else {
			fail_msg("%s: bad line '%s'", path, line);
		}
		assert_true(g->nsteps < GOLDEN_MAX_STEPS);
	}
	fclose(f);
}

void golden_free(struct golden *g)
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
void golden_out_as_text(const struct strbuf *out, size_t from, struct strbuf *txt)
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

void golden_append_produced(struct strbuf *file, char speaker, const struct strbuf *out,
                            size_t *out_mark, const struct strbuf *up, size_t *up_mark)
{
	struct strbuf o = {0};

	golden_out_as_text(out, *out_mark, &o);
	for (char *l = o.p, *nl; l && *l; l = nl + 1) {
		nl = strchr(l, '\n');
		sb_printf(file, "%c: %.*s\n", speaker, (int)(nl - l), l);
	}
	for (char *l = up->p + *up_mark, *nl; up->p && *l; l = nl + 1) {
		nl = strchr(l, '\n');
		sb_append(file, "U: ", 3);
		sb_append(file, l, (size_t)(nl - l) + 1);
	}
	sb_free(&o);
	*out_mark = out->len;
	*up_mark = up->len;
}

void golden_run_splits(struct golden *g, golden_run_fn run)
{
	char mode[64];

	run(g, 0, false, "whole");
	run(g, 0, true, "bytewise");
	for (size_t cut = 1; cut < g->total; cut++) {
		snprintf(mode, sizeof(mode), "split at %zu", cut);
		run(g, cut, false, mode);
	}
}

/* Write FILE over PATH unless PATH holds exactly that already: true if written. */
static bool golden_replace(const char *path, const struct strbuf *file)
{
	FILE *f = fopen(path, "rb");
	char *old = malloc(file->len + 1);
	size_t n = 0;
	bool same;

	assert_non_null(old);
	if (f != NULL) {
		n = fread(old, 1, file->len + 1, f);
		fclose(f);
	}
	same = f != NULL && n == file->len && memcmp(old, file->p ? file->p : "", n) == 0;
	free(old);
	if (same)
		return false;
	f = fopen(path, "wb");
	if (f == NULL)
		fail_msg("cannot write %s", path);
	if (fwrite(file->p, 1, file->len, f) != file->len || fclose(f) != 0)
		fail_msg("cannot write %s", path);
	return true;
}

void golden_test(const char *path, char input, char output, golden_build_fn build,
                 golden_run_fn run)
{
	const char *regen = getenv("SMTP_GOLDEN_REGEN");
	struct golden *g;
	bool rewritten = false;

	if (regen != NULL && strcmp(regen, "1") != 0)
		fail_msg(
		    "SMTP_GOLDEN_REGEN=\"%s\": only SMTP_GOLDEN_REGEN=1 rewrites the transcripts; "
		    "unset it to check them (%s not touched)",
		    regen, path);
	g = calloc(1, sizeof(*g));
	assert_non_null(g);
	golden_load(g, path, input, output);
	if (regen != NULL) {
		struct strbuf file = {0};

		build(g, &file);
		rewritten = golden_replace(path, &file);
		sb_free(&file);
		golden_free(g);
		golden_load(g, path, input, output);
	}
	golden_run_splits(g, run);
	golden_free(g);
	free(g);
	if (rewritten)
		fail_msg(
		    "%s: rewritten by SMTP_GOLDEN_REGEN=1 - review it with git diff, then run "
		    "again without the variable (a run that rewrote a transcript never passes)",
		    path);
}

static int golden_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int golden_run_dir(const char *group, const char *dir, void (*fn)(void **state),
                   const struct CMUnitTest *fixed, size_t nfixed)
{
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
			names[n++] = golden_strdup(de->d_name);
		}
	}
	closedir(d);
	qsort(names, n, sizeof(*names), golden_cmp_str);
	tests = calloc(n + nfixed, sizeof(*tests));
	for (size_t i = 0; i < n; i++) {
		char *path = malloc(strlen(dir) + strlen(names[i]) + 2);
		sprintf(path, "%s/%s", dir, names[i]);
		tests[i].name = names[i];
		tests[i].test_func = fn;
		tests[i].initial_state = path;
	}
	if (nfixed)
		memcpy(tests + n, fixed, nfixed * sizeof(*fixed));
	rc = _cmocka_run_group_tests(group, tests, n + nfixed, NULL, NULL);
	for (size_t i = 0; i < n; i++) {
		free(tests[i].initial_state);
		free(names[i]);
	}
	free(tests);
	free(names);
	return rc;
}
