/*
 * golden.h - golden SMTP transcripts shared by the server and client engine
 * tests: a file of lines "X: bytes" (X = who speaks), "A: action",
 * "@ config" and "# comment"; the input side is fed to the engine under
 * test, the output side and "U:" upcall lines are what it must produce.
 */
#ifndef PG_TEST_GOLDEN_H
#define PG_TEST_GOLDEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "smtp_harness.h"

#define GOLDEN_MAX_STEPS 512
#define GOLDEN_MAX_BYTES 65536

enum golden_step_kind { GOLDEN_INPUT, GOLDEN_ACTION };

struct golden_step {
	enum golden_step_kind kind;
	uint8_t *bytes; /* GOLDEN_INPUT */
	size_t len;
	char *action; /* GOLDEN_ACTION */
	char *src;    /* the transcript line (regeneration) */
};

struct golden {
	char path[1024];
	struct strbuf config; /* "@ ..." lines' words */
	struct golden_step steps[GOLDEN_MAX_STEPS];
	unsigned nsteps;
	struct strbuf want_out, want_up;
	struct strbuf header; /* comments and config, kept on regeneration */
	size_t total;         /* input bytes */
};

/*
 * Load PATH: lines starting with `input` (e.g. 'C' for the server test,
 * 'S' for the client test) are fed to the engine ("X:" adds CRLF, "X~"
 * does not); lines starting with `output` are what it must send.
 */
void golden_load(struct golden *g, const char *path, char input, char output);
void golden_free(struct golden *g);

/* Output as transcript text: one escaped line per CRLF-terminated line. */
void golden_out_as_text(const struct strbuf *out, size_t from, struct strbuf *txt);

char *golden_strdup(const char *s);

/*
 * Regeneration: append what the engine produced since the marks, output
 * lines as "SPEAKER: ..." and upcalls as "U: ...", and advance the marks.
 */
void golden_append_produced(struct strbuf *file, char speaker, const struct strbuf *out,
                            size_t *out_mark, const struct strbuf *up, size_t *up_mark);

/*
 * Run the transcript whole, one byte at a time, and split in two at every
 * input byte boundary; run() fails the test on any difference.
 */
typedef void (*golden_run_fn)(struct golden *g, size_t cut, bool bytewise, const char *mode);
void golden_run_splits(struct golden *g, golden_run_fn run);

/* Regeneration: the whole new text of g's file into *file. */
typedef void (*golden_build_fn)(struct golden *g, struct strbuf *file);

/*
 * One transcript test: load PATH and run every split with run(). With
 * SMTP_GOLDEN_REGEN=1 the file is first rebuilt with build() and written
 * back if it changed; a file so rewritten fails its test (the run must be
 * reviewed and repeated without the variable before it can pass). Any
 * other value of SMTP_GOLDEN_REGEN ("0", "") fails every test, rewriting
 * nothing.
 */
void golden_test(const char *path, char input, char output, golden_build_fn build,
                 golden_run_fn run);

/*
 * One cmocka test per .txt file in DIR (sorted; each test's state is the path),
 * followed by the `fixed` tests. Returns cmocka's result.
 */
struct CMUnitTest;
int golden_run_dir(const char *group, const char *dir, void (*fn)(void **state),
                   const struct CMUnitTest *fixed, size_t nfixed);

#endif
