/*
 * fuzz_smtp_server.c - libFuzzer target for the SMTP server engine
 * (dataplane/smtp): the input is a client byte stream, fed in pieces whose
 * sizes come from a seed taken from its first bytes, with deferred upcall
 * answers; the engine must not crash, must keep its replies well formed
 * and must end every accepted transaction exactly once.
 *
 *   meson setup build-fuzz -Db_sanitize=address,undefined -Db_lundef=false
 *   (with CC=clang) then: build-fuzz/tests/fuzz/fuzz_smtp_server corpus/
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/smtp_server.h"

struct fz {
	uint64_t rng;
	bool open, pending, committing;
	unsigned opened, closed;
};

static uint32_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return (uint32_t)(*x >> 11);
}

#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c))                                                                          \
			abort();                                                                   \
	} while (0)

static int fz_mail(struct smtp_server *s, const struct smtp_envelope *e, struct smtp_verdict *v,
                   void *owner)
{
	struct fz *f = owner;
	(void)s, (void)e, (void)v;
	CHECK(!f->open);
	switch (rnd(&f->rng) % 8) {
	case 0:
		return PG_DECLINED;
	case 1:
		f->pending = true;
		return PG_AGAIN;
	}
	f->open = true;
	f->opened++;
	return PG_OK;
}

static int fz_rcpt(struct smtp_server *s, const struct smtp_envelope *e, const struct smtp_rcpt *r,
                   struct smtp_verdict *v, void *owner)
{
	struct fz *f = owner;
	(void)s, (void)e, (void)r, (void)v;
	CHECK(f->open);
	switch (rnd(&f->rng) % 8) {
	case 0:
		return PG_DECLINED;
	case 1:
		f->pending = true;
		return PG_AGAIN;
	}
	return PG_OK;
}

static int fz_chunk(struct smtp_server *s, const uint8_t *p, size_t n, void *owner)
{
	struct fz *f = owner;
	(void)s, (void)p;
	CHECK(f->open && n > 0);
	return rnd(&f->rng) % 16 == 0 ? PG_AGAIN : PG_OK;
}

static int fz_end(struct smtp_server *s, const struct smtp_envelope *e,
                  const struct smtp_message_info *i, struct smtp_verdict *v, void *owner)
{
	struct fz *f = owner;
	(void)s, (void)e, (void)i, (void)v;
	CHECK(f->open);
	f->open = false;
	f->closed++;
	f->committing = true;
	return PG_AGAIN;
}

static void fz_abort(struct smtp_server *s, void *owner)
{
	struct fz *f = owner;
	(void)s;
	CHECK(f->open);
	f->open = false;
	f->closed++;
}

static void fz_starttls(struct smtp_server *s, void *owner)
{
	(void)owner;
	smtp_server_tls_started(s, true, "TLSv1.3");
}

static const struct smtp_server_ops ops = {
    .mail_from = fz_mail,
    .rcpt_to = fz_rcpt,
    .data_chunk = fz_chunk,
    .message_end = fz_end,
    .message_abort = fz_abort,
    .starttls = fz_starttls,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = {.rng = 0x9e3779b97f4a7c15ull};
	struct smtp_server_config cfg;
	struct smtp_server *s;
	size_t off = 0;

	if (size < 2)
		return 0;
	f.rng ^= (uint64_t)data[0] << 8 | data[1];
	smtp_server_config_default(&cfg);
	cfg.ops = &ops;
	cfg.owner = &f;
	cfg.bare = data[0] & 1 ? SMTP_BARE_NORMALIZE : SMTP_BARE_REJECT;
	cfg.starttls = data[0] & 2;
	cfg.max_message_size = data[0] & 4 ? 100 : 0;
	cfg.cmd_line_max = 512;
	cfg.max_rcpt = 2;
	data += 2, size -= 2;
	s = smtp_server_create(&cfg, &(struct smtp_peer){.addr = "198.18.0.2"});
	for (unsigned round = 0; round < 1000000; round++) {
		const uint8_t *p;
		size_t want = off < size ? 1 + rnd(&f.rng) % (size - off) : 0, used;
		int rc = smtp_server_input(s, data + off, want, &used);
		size_t n = smtp_server_output(s, &p);
		CHECK(used <= want && n <= 16384);
		for (size_t i = 0; i + 1 < n; i++) /* no CR or LF but as CRLF */
			CHECK((p[i] == '\r') == (p[i + 1] == '\n'));
		smtp_server_output_consume(s, n);
		off += used;
		if (rc == PG_DONE)
			break;
		if (f.pending) {
			int r = (int[]){PG_OK, PG_DECLINED, PG_ERROR}[rnd(&f.rng) % 3];
			f.pending = false;
			if (r == PG_OK && !f.open && !strcmp(smtp_server_state_name(s), "HELO")) {
				f.open = true;
				f.opened++;
			}
			smtp_server_resume(s, r, NULL);
		} else if (f.committing && !strcmp(smtp_server_state_name(s), "COMMIT")) {
			f.committing = false;
			smtp_server_message_committed(s, rnd(&f.rng) % 2, NULL);
		} else if (rc == PG_OK && off == size) {
			break;
		}
	}
	smtp_server_destroy(s);
	CHECK(!f.open && f.opened == f.closed);
	return 0;
}
