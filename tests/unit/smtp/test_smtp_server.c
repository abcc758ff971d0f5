/*
 * test_smtp_server.c - the engine's API contracts beyond the transcripts:
 * the 250 after end of data only once smtp_server_message_committed()
 * says so; output backpressure against a client that pipelines without
 * reading; plaintext after STARTTLS dropped even when the handshake ends
 * inside the hook; timers per state; destroy and the transaction contract;
 * and a bounded random-input run (mutated sessions, random splits, random
 * deferred answers) checking that nothing crashes, memory stays fixed and
 * every accepted MAIL ends in exactly one message_end or message_abort.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_harness.h"

static const char *out_text(struct harness *h)
{
	return h->out.p ? h->out.p : "";
}

static void send_str(struct harness *h, const char *s)
{
	harness_recv(h, s, strlen(s));
}

/* DESIGN.md durability: no 250 before the commit completes. */
static void test_async_commit(void **state)
{
	struct harness h;
	size_t used;
	int rc;
	const char *msg =
	    "EHLO c.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n"
	    "DATA\r\nhello\r\n.\r\nNOOP\r\n";

	(void)state;
	harness_init(&h);
	h.hold = true;
	harness_start(&h);
	send_str(&h, msg);
	assert_string_equal(smtp_server_state_name(h.s), "COMMIT");
	assert_null(strstr(out_text(&h), "queued"));
	assert_null(strstr(out_text(&h), "250 2.0.0 Ok\r\n")); /* the NOOP waits too */
	assert_int_equal(smtp_server_timeout_ms(h.s), 0);      /* parked: no client timer */
	rc = smtp_server_input(h.s, (const uint8_t *)"", 0, &used);
	assert_int_equal(rc, PG_AGAIN);
	smtp_server_message_committed(h.s, true, NULL);
	harness_pump(&h);
	assert_non_null(strstr(out_text(&h), "250 2.0.0 Ok: queued as Q1\r\n250 2.0.0 Ok\r\n"));
	assert_string_equal(smtp_server_state_name(h.s), "HELO");
	harness_fini(&h);
}

/* A client that pipelines forever without reading is stopped, not buffered. */
static void test_output_backpressure(void **state)
{
	struct smtp_server_config cfg;
	struct harness h;
	static char many[6 * 20000 + 1];
	size_t off = 0, len = 0, used, replies = 0;
	const uint8_t *p;
	int rc, stalls = 0;

	(void)state;
	for (int i = 0; i < 20000; i++)
		len += (size_t)sprintf(many + len, "NOOP\r\n");
	harness_init(&h);
	cfg = h.cfg;
	h.s = smtp_server_create(&cfg, NULL);
	smtp_server_output_consume(h.s, smtp_server_output(h.s, &p));
	while (off < len) {
		rc = smtp_server_input(h.s, (const uint8_t *)many + off, len - off, &used);
		off += used;
		if (rc == PG_AGAIN) {
			size_t n = smtp_server_output(h.s, &p);
			assert_true(n <= 16384);
			stalls++;
			for (size_t i = 0; i + 4 <= n; i++)
				replies += !memcmp(p + i, "250 ", 4);
			smtp_server_output_consume(h.s, n);
			continue;
		}
		assert_int_equal(rc, PG_OK);
	}
	{
		size_t n = smtp_server_output(h.s, &p);
		for (size_t i = 0; i + 4 <= n; i++)
			replies += !memcmp(p + i, "250 ", 4);
	}
	assert_true(stalls > 10);
	assert_int_equal(replies, 20000);
	smtp_server_destroy(h.s);
}

static struct smtp_server *sync_tls_session;

static void starttls_now(struct smtp_server *s, void *owner)
{
	(void)owner;
	smtp_server_tls_started(s, true, "TLSv1.3");
	sync_tls_session = s;
}

/* CVE-2011-0411: what was pipelined behind STARTTLS is never executed. */
static void test_starttls_drops_plaintext(void **state)
{
	struct smtp_server_ops ops = {0};
	struct harness h;

	(void)state;
	harness_init(&h);
	ops = *h.cfg.ops;
	ops.starttls = starttls_now;
	h.cfg.ops = &ops;
	h.cfg.starttls = true;
	harness_start(&h);
	send_str(&h, "EHLO c.example\r\nSTARTTLS\r\nEHLO evil.example\r\nMAIL FROM:<x@evil>\r\n");
	assert_non_null(sync_tls_session);
	assert_non_null(strstr(out_text(&h), "220 2.0.0 Ready to start TLS\r\n"));
	assert_null(strstr(out_text(&h), "2.1.0"));
	assert_string_equal(smtp_server_state_name(h.s), "GREETED");
	assert_string_equal(smtp_server_helo(h.s), "");
	send_str(&h, "EHLO c.example\r\n");
	assert_null(strstr(strstr(out_text(&h), "Ready"), "STARTTLS"));
	harness_fini(&h);
}

static void test_timeouts(void **state)
{
	struct harness h;

	(void)state;
	harness_init(&h);
	h.cfg.cmd_timeout_ms = 1000;
	h.cfg.data_timeout_ms = 2000;
	harness_start(&h);
	assert_int_equal(smtp_server_timeout_ms(h.s), 1000);
	send_str(&h, "EHLO c.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n");
	assert_int_equal(smtp_server_timeout_ms(h.s), 1000);
	send_str(&h, "DATA\r\n");
	assert_int_equal(smtp_server_timeout_ms(h.s), 2000);
	assert_int_equal(smtp_server_timeout(h.s), PG_DONE);
	harness_pump(&h);
	assert_int_equal(smtp_server_timeout_ms(h.s), 0);
	assert_non_null(
	    strstr(out_text(&h), "421 4.4.2 mx.postern.test Error: timeout exceeded\r\n"));
	assert_non_null(strstr(h.up.p, "abort\n"));
	harness_fini(&h);
}

static void test_destroy_contract(void **state)
{
	struct harness h;

	(void)state;
	/* An open transaction is aborted on destroy. */
	harness_init(&h);
	harness_start(&h);
	send_str(&h, "EHLO c.example\r\nMAIL FROM:<a@example.org>\r\n");
	smtp_server_destroy(h.s);
	h.s = NULL;
	assert_non_null(strstr(h.up.p, "abort\n"));
	harness_fini(&h);
	/* One already with the spool is not. */
	harness_init(&h);
	h.hold = true;
	harness_start(&h);
	send_str(&h, "EHLO c.example\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n"
	             "DATA\r\n.\r\n");
	assert_string_equal(smtp_server_state_name(h.s), "COMMIT");
	smtp_server_destroy(h.s);
	h.s = NULL;
	assert_null(strstr(h.up.p, "abort\n"));
	harness_fini(&h);
}

/* ---- random input --------------------------------------------------- */

struct fuzz_relay {
	uint64_t rng;
	bool open; /* a transaction accepted and not yet ended/aborted */
	bool committing;
	unsigned opened, ended, aborted;
	bool pending; /* a deferred mail/rcpt/data verdict */
	uint64_t bytes;
};

static uint32_t rnd(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return (uint32_t)(*x >> 11);
}

static int fz_mail(struct smtp_server *s, const struct smtp_envelope *e, struct smtp_verdict *v,
                   void *owner)
{
	struct fuzz_relay *f = owner;
	uint32_t r = rnd(&f->rng) % 8;

	(void)s, (void)e, (void)v;
	assert_false(f->open);
	if (r == 0)
		return PG_DECLINED;
	if (r == 1) {
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
	struct fuzz_relay *f = owner;
	uint32_t x = rnd(&f->rng) % 8;

	(void)s, (void)e, (void)r, (void)v;
	assert_true(f->open);
	if (x == 0)
		return PG_DECLINED;
	if (x == 1) {
		f->pending = true;
		return PG_AGAIN;
	}
	return PG_OK;
}

static int fz_data(struct smtp_server *s, const struct smtp_envelope *e, struct smtp_verdict *v,
                   void *owner)
{
	struct fuzz_relay *f = owner;

	(void)s, (void)e, (void)v;
	assert_true(f->open);
	if (rnd(&f->rng) % 16 == 0) {
		f->pending = true;
		return PG_AGAIN;
	}
	return PG_OK;
}

static int fz_chunk(struct smtp_server *s, const uint8_t *p, size_t n, void *owner)
{
	struct fuzz_relay *f = owner;

	(void)s, (void)p;
	assert_true(f->open);
	assert_true(n > 0 && n <= 16384);
	f->bytes += n;
	switch (rnd(&f->rng) % 32) {
	case 0:
		return PG_AGAIN;
	case 1:
		return PG_ERROR;
	}
	return PG_OK;
}

static int fz_end(struct smtp_server *s, const struct smtp_envelope *e,
                  const struct smtp_message_info *info, struct smtp_verdict *v, void *owner)
{
	struct fuzz_relay *f = owner;

	(void)s, (void)e, (void)info, (void)v;
	assert_true(f->open);
	f->open = false;
	f->ended++;
	if (rnd(&f->rng) % 2) {
		f->committing = true;
		return PG_AGAIN;
	}
	return PG_OK;
}

static void fz_abort(struct smtp_server *s, void *owner)
{
	struct fuzz_relay *f = owner;

	(void)s;
	assert_true(f->open);
	f->open = false;
	f->aborted++;
}

static void fz_starttls(struct smtp_server *s, void *owner)
{
	(void)owner;
	smtp_server_tls_started(s, true, "TLSv1.3");
}

static const struct smtp_server_ops fuzz_ops = {
    .mail_from = fz_mail,
    .rcpt_to = fz_rcpt,
    .data_start = fz_data,
    .data_chunk = fz_chunk,
    .message_end = fz_end,
    .message_abort = fz_abort,
    .starttls = fz_starttls,
};

static const char *const seeds[] = {
    "EHLO c\r\nMAIL FROM:<a@b.c> SIZE=10 BODY=8BITMIME RET=FULL ENVID=x\r\n"
    "RCPT TO:<d@e.f> NOTIFY=SUCCESS ORCPT=rfc822;d@e.f\r\nDATA\r\nx\r\n..y\r\n.\r\nQUIT\r\n",
    "EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<Postmaster>\r\nBDAT 5\r\nab\r\ncBDAT 3 LAST\r\nxyzRSET\r\n",
    "HELO c\r\nMAIL FROM:<a@[1.2.3.4]>\r\nRCPT "
    "TO:<\"q\"@[IPv6:::1]>\r\nDATA\r\na\n.\nb\r.\r\n.\r\n",
    "EHLO c\r\nSTARTTLS\r\nEHLO c\r\nMAIL FROM:<\xc3\xa9@x.y> SMTPUTF8\r\nRCPT "
    "TO:<a@b.c>\r\nDATA\r\n"
    "\xff\r\n.\r\nNOOP\r\nVRFY x\r\nHELP\r\n",
    "EHLO c\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<a@b.c>\r\nBDAT 99999\r\nxx",
};

static const char *const inserts[] = {"\r",
                                      "\n",
                                      ".",
                                      "\r\n.\r\n",
                                      "\n.\n",
                                      "BDAT 4\r\n",
                                      "BDAT 0 LAST\r\n",
                                      "DATA\r\n",
                                      "MAIL FROM:<x@y.z>\r\n",
                                      "RCPT TO:<r@s.t>\r\n",
                                      "\x00",
                                      "<",
                                      ">",
                                      " ",
                                      "EHLO x\r\n"};

static void mutate(uint64_t *rng, struct strbuf *b)
{
	unsigned n = 1 + rnd(rng) % 8;

	for (unsigned k = 0; k < n && b->len > 0; k++) {
		size_t at = rnd(rng) % b->len;
		switch (rnd(rng) % 5) {
		case 0:
			b->p[at] ^= (char)(1u << (rnd(rng) % 8));
			break;
		case 1: {
			const char *ins =
			    inserts[rnd(rng) % (sizeof(inserts) / sizeof(inserts[0]))];
			size_t il = ins[0] ? strlen(ins) : 1;
			sb_append(b, ins, il); /* grow, then move into place */
			memmove(b->p + at + il, b->p + at, b->len - il - at);
			memcpy(b->p + at, ins, il);
			break;
		}
		case 2: {
			size_t del = rnd(rng) % 8;
			if (at + del > b->len)
				del = b->len - at;
			memmove(b->p + at, b->p + at + del, b->len - at - del);
			b->len -= del;
			break;
		}
		case 3: { /* duplicate a slice */
			size_t l = rnd(rng) % 64;
			if (at + l > b->len)
				l = b->len - at;
			char tmp[64];
			memcpy(tmp, b->p + at, l);
			sb_append(b, tmp, l);
			break;
		}
		case 4: /* random bytes */
			for (unsigned i = 0; i < 8; i++) {
				char c = (char)rnd(rng);
				sb_append(b, &c, 1);
			}
			break;
		}
	}
}

static void check_output(const uint8_t *p, size_t n)
{
	/* Every reply line: three digits, ' ' or '-', printable text, CRLF. */
	size_t i = 0;

	while (i < n) {
		const uint8_t *crlf = memmem(p + i, n - i, "\r\n", 2);
		size_t end;
		assert_non_null(crlf);
		end = (size_t)(crlf - p);
		assert_true(end - i >= 4);
		for (int d = 0; d < 3; d++)
			assert_true(p[i + d] >= '0' && p[i + d] <= '9');
		assert_true(p[i + 3] == ' ' || p[i + 3] == '-');
		for (size_t k = i; k < end; k++)
			assert_true(p[k] >= 32 && p[k] != 127);
		i = end + 2;
	}
}

static unsigned fuzz_ended, fuzz_aborted;

static void fuzz_one(uint64_t seed)
{
	struct fuzz_relay f = {.rng = seed * 2654435761u + 1};
	struct smtp_server_config cfg;
	struct strbuf in = {0};
	struct smtp_server *s;
	size_t off = 0, footprint;
	unsigned rounds = 0;

	smtp_server_config_default(&cfg);
	cfg.ops = &fuzz_ops;
	cfg.owner = &f;
	cfg.max_message_size = rnd(&f.rng) % 2 ? 64 : 0;
	cfg.max_rcpt = 1 + rnd(&f.rng) % 3;
	cfg.bare = rnd(&f.rng) % 2 ? SMTP_BARE_NORMALIZE : SMTP_BARE_REJECT;
	cfg.starttls = rnd(&f.rng) % 2;
	cfg.cmd_line_max = 512;
	cfg.hard_error_limit = 1000;
	for (unsigned k = 0, n = 1 + rnd(&f.rng) % 3; k < n; k++) {
		const char *sd = seeds[rnd(&f.rng) % (sizeof(seeds) / sizeof(seeds[0]))];
		sb_append(&in, sd, strlen(sd));
	}
	mutate(&f.rng, &in);
	s = smtp_server_create(&cfg, &(struct smtp_peer){.addr = "::1"});
	assert_non_null(s);
	footprint = smtp_server_footprint(s);
	while (rounds++ < 100000) {
		const uint8_t *p;
		size_t want = off < in.len ? 1 + rnd(&f.rng) % (in.len - off) : 0, used = 0;
		int rc = smtp_server_input(s, (const uint8_t *)in.p + off, want, &used);
		size_t n;

		assert_true(used <= want);
		off += used;
		n = smtp_server_output(s, &p);
		assert_true(n <= 16384);
		check_output(p, n);
		if (rnd(&f.rng) % 4) /* sometimes leave replies unread */
			smtp_server_output_consume(s, n);
		if (rc == PG_DONE)
			break;
		if (f.pending) {
			static const int results[] = {PG_OK, PG_DECLINED, PG_ERROR};
			int r = results[rnd(&f.rng) % 3];
			f.pending = false;
			if (r == PG_OK && !f.open && !strcmp(smtp_server_state_name(s), "HELO")) {
				f.open = true; /* a deferred MAIL accepted */
				f.opened++;
			}
			smtp_server_resume(s, r, NULL);
		} else if (!strcmp(smtp_server_state_name(s), "COMMIT") && f.committing) {
			f.committing = false;
			smtp_server_message_committed(s, rnd(&f.rng) % 2, NULL);
		} else if (rc == PG_OK && off == in.len) {
			break;
		}
		assert_int_equal(smtp_server_footprint(s), footprint);
	}
	assert_true(rounds < 100000);
	if (strcmp(smtp_server_state_name(s), "COMMIT") == 0)
		f.committing = false;
	smtp_server_destroy(s);
	/* The transaction contract: every accepted MAIL ended exactly once. */
	assert_false(f.open);
	assert_int_equal(f.opened, f.ended + f.aborted);
	fuzz_ended += f.ended;
	fuzz_aborted += f.aborted;
	sb_free(&in);
}

static void test_fuzz(void **state)
{
	const char *env = getenv("SMTP_FUZZ_ITERATIONS");
	unsigned n = env ? (unsigned)atoi(env) : 100000;

	(void)state;
	for (unsigned i = 1; i <= n; i++)
		fuzz_one(i);
	/* The mutations must still reach the deep states, not just the parser. */
	print_message("fuzz: %u sessions, %u messages ended, %u aborted\n", n, fuzz_ended,
	              fuzz_aborted);
	assert_true(fuzz_ended > n / 20 && fuzz_aborted > n / 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_async_commit),
	    cmocka_unit_test(test_output_backpressure),
	    cmocka_unit_test(test_starttls_drops_plaintext),
	    cmocka_unit_test(test_timeouts),
	    cmocka_unit_test(test_destroy_contract),
	    cmocka_unit_test(test_fuzz),
	};

	return cmocka_run_group_tests_name("smtp_server", tests, NULL, NULL);
}
