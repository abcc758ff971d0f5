/*
 * spool_test.h - helpers shared by the spool tests: a temporary spool
 * directory on a real filesystem (/var/tmp, so fdatasync is real), a pump
 * that polls until the spool is idle, deterministic message bodies, and
 * commit callbacks that record their result.
 */
#ifndef PG_SPOOL_TEST_H
#define PG_SPOOL_TEST_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "result.h"
#include "spool.h"

struct commit_result {
	int calls;
	int result;
	int err;
	uint64_t id;
};

static inline void commit_cb(struct spool_msg *m, int result, int err, void *owner)
{
	struct commit_result *c = owner;

	c->calls++;
	c->result = result;
	c->err = err;
	c->id = spool_msg_id(m);
}

static inline void quiet_log(enum spool_log_level level, const char *msg, void *owner)
{
	unsigned *errors = owner;

	if (level <= SPOOL_LOG_WARNING && errors != NULL)
		(*errors)++;
	if (getenv("SPOOL_TEST_VERBOSE") != NULL)
		fprintf(stderr, "# spool log %d: %s\n", (int)level, msg);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline void rm_rf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh directory on a real disk (not tmpfs): fdatasync really syncs. */
static inline char *tdir_new(void)
{
	char *d = strdup("/var/tmp/pg-spool-test-XXXXXX");

	if (d == NULL || mkdtemp(d) == NULL) {
		fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
		abort();
	}
	return d;
}

static inline struct spool_config cfg_for(const char *dir, unsigned *log_errors)
{
	struct spool_config c;

	memset(&c, 0, sizeof(c));
	c.dir = dir;
	c.worker = 3;
	c.segment_size = 1u << 20;
	c.chunk_size = 16u << 10;
	c.batch_size = 256u << 10;
	c.log = quiet_log;
	c.log_arg = log_errors;
	return c;
}

/* Poll until nothing is staged or in flight (10 s at most). */
static inline void pump(struct spool *sp)
{
	struct timespec ts = {0, 20000};

	for (unsigned i = 0; i < 500000 && spool_busy(sp); i++) {
		if (spool_poll(sp) == 0)
			nanosleep(&ts, NULL);
	}
	spool_poll(sp);
}

/* Deterministic body bytes: xorshift from a seed. */
static inline void body_fill(uint8_t *p, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)(x >> 24);
	}
}

/* Begin, append in pieces of `piece` bytes, commit. Returns the message. */
static inline struct spool_msg *put_message(struct spool *sp, const char *sender,
                                            const char *const *rcpts, uint32_t nrcpt,
                                            const uint8_t *body, size_t len, size_t piece,
                                            struct commit_result *cr)
{
	struct spool_envelope env = {
	    .sender = sender,
	    .rcpts = rcpts,
	    .nrcpt = nrcpt,
	    .params = "SIZE=1 BODY=8BITMIME",
	    .params_len = 20,
	    .arrival_ns = 1700000000000000000ull,
	};
	struct spool_msg *m = NULL;
	int r;

	while ((r = spool_msg_begin(sp, &env, &m)) == PG_AGAIN)
		spool_poll(sp);
	if (r != PG_OK)
		return NULL;
	for (size_t off = 0; off < len;) {
		size_t n = len - off < piece ? len - off : piece;

		r = spool_msg_append(sp, m, body + off, n);
		if (r == PG_AGAIN) {
			spool_poll(sp);
			continue;
		}
		if (r != PG_OK) {
			spool_msg_abort(sp, m);
			return NULL;
		}
		off += n;
	}
	while ((r = spool_msg_commit(sp, m, commit_cb, cr)) == PG_AGAIN)
		spool_poll(sp);
	if (r != PG_OK) {
		spool_msg_abort(sp, m);
		return NULL;
	}
	return m;
}

static inline unsigned count_segments(const char *dir, unsigned worker)
{
	char path[512];
	DIR *d;
	struct dirent *de;
	unsigned n = 0;

	snprintf(path, sizeof(path), "%s/w%u", dir, worker);
	d = opendir(path);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
		n += strncmp(de->d_name, "seg-", 4) == 0;
	closedir(d);
	return n;
}

/* Check a queued message's body byte for byte against the generator. */
static inline int body_matches(struct spool *sp, struct spool_msg *m, uint64_t seed, size_t len)
{
	uint8_t *want = malloc(len + 1), *got = malloc(len + 1);
	size_t n = 0;
	int ok;

	body_fill(want, len, seed);
	ok = spool_msg_body_len(m) == len && spool_read_body(sp, m, got, len + 1, &n) == PG_OK &&
	     n == len && memcmp(want, got, len) == 0;
	free(want);
	free(got);
	return ok;
}

#endif
