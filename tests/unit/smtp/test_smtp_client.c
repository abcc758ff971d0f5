/*
 * test_smtp_client.c - the outbound SMTP engine (dataplane/smtp/smtp_client)
 * on its own: every transcript in golden_client/ is run with the server's
 * bytes fed whole, one byte at a time, and split in two at every byte
 * boundary, and each run must give exactly the client output (C:) and the
 * upcalls (U:) of the file; then table tests (timeouts, reuse after a
 * session failure) and a bounded run of random server replies.
 *
 * Transcript lines:
 *   # comment
 *   @ key=value ...  config before the first step: starttls=1 bdat=1
 *                    linelimit=N piece=N (body_read span size) again=1
 *                    (every other body_read says PG_AGAIN) bodyerr=N (body_read
 *                    fails after N spans) policy=tls (helo_done refuses without TLS)
 *   S: text          the server sends text + CRLF (escapes \r \n \t \\ \xHH \{N}c)
 *   S~ text          the server sends text as is
 *   C: text          expected client output line (CRLF stripped, escaped)
 *   U: text          expected upcall
 *   A: action        mail <addr> [size=N] [body=8BITMIME|7BIT] [smtputf8] [utf8hdr]
 *                    [ret=FULL|HDRS] [envid=X] | rcpt <addr> [notify=NSFD] [orcpt=X]
 *                    | body TEXT | send | quit | tls ok | tls fail | timeout
 *                    | timer MS | closed | state NAME
 * With SMTP_GOLDEN_REGEN=1 the C:/U: lines are rewritten from a whole-line
 * run; a file so rewritten fails its test (review the diff, then run again
 * without the variable), and any other value fails every transcript.
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
#include "smtp_harness.h" /* strbuf, escapes */
#include "smtp/smtp_client.h"

#define MAX_RCPT 64
#define MAX_MSGS 8

/* ---- the scripted caller ------------------------------------------------ */

struct cmsg {
	struct smtp_client_envelope env;
	char sender[512];
	char rcpt[MAX_RCPT][512];
	char orcpt_buf[MAX_RCPT][512];
	const char *rcpts[MAX_RCPT];
	const char *orcpts[MAX_RCPT];
	unsigned notify[MAX_RCPT];
	char envid[128];
	struct strbuf body;
};

struct chost {
	struct smtp_client_config cfg;
	struct smtp_client *c;
	struct strbuf backlog, out, up;
	struct cmsg *msgs[MAX_MSGS];
	unsigned nmsgs;
	struct cmsg *building; /* mail/rcpt/body actions fill it; send hands it over */
	struct cmsg *cur;      /* the message the engine reads */
	size_t body_off;
	unsigned piece, reads;
	int bodyerr; /* fail after this many spans (0 = never) */
	bool again, again_flip, policy_tls, done, log_upcalls;
	unsigned results;
};

static void ch_drain(struct chost *h)
{
	const uint8_t *p;
	size_t n = smtp_client_output(h->c, &p);

	if (n) {
		sb_append(&h->out, p, n);
		smtp_client_output_consume(h->c, n);
	}
}

static int up_body_read(struct smtp_client *c, const uint8_t **p, size_t *n, void *owner)
{
	struct chost *h = owner;
	size_t left;

	(void)c;
	if (!h->cur)
		return PG_ERROR;
	if (h->again) {
		h->again_flip = !h->again_flip;
		if (h->again_flip)
			return PG_AGAIN;
	}
	if (h->bodyerr && ++h->reads > (unsigned)h->bodyerr)
		return PG_ERROR;
	left = h->cur->body.len - h->body_off;
	if (left == 0)
		return PG_DONE;
	*n = left < h->piece ? left : h->piece;
	*p = (const uint8_t *)h->cur->body.p + h->body_off;
	h->body_off += *n;
	return PG_OK;
}

static void up_rcpt_result(struct smtp_client *c, uint32_t i, const struct smtp_client_reply *r,
                           void *owner)
{
	struct chost *h = owner;

	(void)c;
	h->results++;
	if (!h->log_upcalls)
		return;
	sb_printf(&h->up, "rcpt %u <%s> %u %s %s%s: ", i, h->cur ? h->cur->env.rcpts[i] : "?",
	          r->code, r->status, smtp_client_phase_name(r->phase), r->local ? " local" : "");
	sb_escape(&h->up, (const uint8_t *)r->text, strlen(r->text));
	sb_printf(&h->up, "\n");
}

static void up_message_done(struct smtp_client *c, void *owner)
{
	struct chost *h = owner;

	(void)c;
	if (h->log_upcalls)
		sb_printf(&h->up, "done\n");
	h->cur = NULL;
}

static void up_starttls(struct smtp_client *c, void *owner)
{
	struct chost *h = owner;

	(void)c;
	if (h->log_upcalls)
		sb_printf(&h->up, "starttls\n");
}

static int up_helo_done(struct smtp_client *c, const struct smtp_client_info *info,
                        struct smtp_client_reply *r, void *owner)
{
	struct chost *h = owner;

	(void)c;
	if (h->log_upcalls) {
		sb_printf(&h->up, "helo_done esmtp=%d ext=%#x size=%llu tls=%d offered=%d",
		          info->esmtp, info->ext, (unsigned long long)info->size_limit, info->tls,
		          info->starttls_offered);
		if (info->starttls_sent)
			sb_printf(&h->up, " starttls=%u %s", info->starttls_reply.code,
			          info->starttls_reply.status);
		sb_printf(&h->up, " keywords=");
		sb_escape(&h->up, (const uint8_t *)info->keywords, strlen(info->keywords));
		sb_printf(&h->up, "\n");
	}
	if (h->policy_tls && !info->tls) {
		r->code = 451;
		snprintf(r->status, sizeof(r->status), "4.7.4");
		snprintf(r->text, sizeof(r->text), "TLS is required, but was not offered by host");
		return PG_DECLINED;
	}
	return PG_OK;
}

static const struct smtp_client_ops ch_ops = {
    .body_read = up_body_read,
    .rcpt_result = up_rcpt_result,
    .message_done = up_message_done,
    .starttls = up_starttls,
    .helo_done = up_helo_done,
};

static void ch_init(struct chost *h)
{
	memset(h, 0, sizeof(*h));
	smtp_client_config_default(&h->cfg);
	h->cfg.ops = &ch_ops;
	h->cfg.owner = h;
	h->cfg.helo_name = "relay.postern.test";
	h->piece = 4096;
	h->log_upcalls = true;
}

static bool ch_config(struct chost *h, const char *line)
{
	char buf[512], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", line);
	for (char *w = strtok_r(buf, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
		char *eq = strchr(w, '=');
		const char *v;
		if (!eq)
			return false;
		*eq = '\0';
		v = eq + 1;
		if (!strcmp(w, "starttls"))
			h->cfg.starttls = atoi(v);
		else if (!strcmp(w, "bdat"))
			h->cfg.prefer_bdat = atoi(v);
		else if (!strcmp(w, "linelimit"))
			h->cfg.line_limit = (uint32_t)atoi(v);
		else if (!strcmp(w, "piece"))
			h->piece = (unsigned)atoi(v);
		else if (!strcmp(w, "again"))
			h->again = atoi(v);
		else if (!strcmp(w, "bodyerr"))
			h->bodyerr = atoi(v);
		else if (!strcmp(w, "policy"))
			h->policy_tls = !strcmp(v, "tls");
		else
			return false;
	}
	return true;
}

static void ch_start(struct chost *h)
{
	h->c = smtp_client_create(&h->cfg);
	if (!h->c)
		abort();
}

static void ch_fini(struct chost *h)
{
	smtp_client_destroy(h->c);
	for (unsigned i = 0; i < h->nmsgs; i++) {
		sb_free(&h->msgs[i]->body);
		free(h->msgs[i]);
	}
	if (h->building) {
		sb_free(&h->building->body);
		free(h->building);
	}
	sb_free(&h->backlog);
	sb_free(&h->out);
	sb_free(&h->up);
}

static void ch_pump(struct chost *h)
{
	for (int spins = 0; spins < 100000 && !h->done; spins++) {
		size_t used = 0;
		int rc =
		    smtp_client_input(h->c, (const uint8_t *)h->backlog.p, h->backlog.len, &used);
		const uint8_t *p;
		bool progress = used > 0 || smtp_client_output(h->c, &p) > 0;

		if (used) {
			memmove(h->backlog.p, h->backlog.p + used, h->backlog.len - used);
			h->backlog.len -= used;
		}
		ch_drain(h);
		if (rc == PG_DONE) {
			h->done = true;
			break;
		}
		if (rc == PG_AGAIN && !strcmp(smtp_client_state_name(h->c), "TLS"))
			break; /* an A: tls line goes on */
		if (rc == PG_AGAIN)
			continue; /* body_read said AGAIN, or the output was full: retry */
		if (!progress && h->backlog.len == 0)
			break;
		if (!progress)
			break;
	}
}

static void ch_recv(struct chost *h, const void *p, size_t n)
{
	sb_append(&h->backlog, p, n);
	ch_pump(h);
}

static struct cmsg *building(struct chost *h)
{
	if (!h->building) {
		h->building = calloc(1, sizeof(*h->building));
		if (!h->building)
			abort();
	}
	return h->building;
}

static bool ch_action(struct chost *h, const char *a, char *msg, size_t msgsz)
{
	msg[0] = '\0';
	if (!strncmp(a, "mail <", 6) || !strncmp(a, "rcpt <", 6)) {
		struct cmsg *m = building(h);
		bool mail = a[0] == 'm';
		const char *end = strchr(a + 6, '>');
		char opts[512], *save = NULL;
		uint32_t i = m->env.nrcpt;
		if (!end || (!mail && i >= MAX_RCPT))
			return false;
		if (mail) {
			char raw[512];
			size_t n;
			snprintf(raw, sizeof(raw), "%.*s", (int)(end - a - 6), a + 6);
			n = harness_unescape(raw, (uint8_t *)m->sender, sizeof(m->sender) - 1);
			m->sender[n] = '\0';
		} else {
			size_t n =
			    harness_unescape(a + 6, (uint8_t *)m->rcpt[i], sizeof(m->rcpt[i]) - 1);
			char *gt = memchr(m->rcpt[i], '>', n);
			if (gt)
				*gt = '\0';
			else
				m->rcpt[i][n] = '\0';
			m->rcpts[i] = m->rcpt[i];
			m->orcpts[i] = "";
			m->env.nrcpt++;
		}
		snprintf(opts, sizeof(opts), "%s", end + 1);
		for (char *w = strtok_r(opts, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
			if (!strncmp(w, "size=", 5))
				m->env.size = strtoull(w + 5, NULL, 10);
			else if (!strcmp(w, "body=8BITMIME"))
				m->env.body = SMTP_BODY_8BITMIME;
			else if (!strcmp(w, "body=7BIT"))
				m->env.body = SMTP_BODY_7BIT;
			else if (!strcmp(w, "smtputf8"))
				m->env.smtputf8 = true;
			else if (!strcmp(w, "utf8hdr"))
				m->env.utf8_headers = true;
			else if (!strcmp(w, "ret=FULL"))
				m->env.ret = SMTP_RET_FULL;
			else if (!strcmp(w, "ret=HDRS"))
				m->env.ret = SMTP_RET_HDRS;
			else if (!strncmp(w, "envid=", 6))
				snprintf(m->envid, sizeof(m->envid), "%s", w + 6);
			else if (!strncmp(w, "notify=", 7)) {
				for (const char *f = w + 7; *f; f++)
					m->notify[i] |= *f == 'N'   ? SMTP_NOTIFY_NEVER
					                : *f == 'S' ? SMTP_NOTIFY_SUCCESS
					                : *f == 'F' ? SMTP_NOTIFY_FAILURE
					                : *f == 'D' ? SMTP_NOTIFY_DELAY
					                            : 0;
			} else if (!strncmp(w, "orcpt=", 6)) {
				snprintf(m->orcpt_buf[i], sizeof(m->orcpt_buf[i]), "%s", w + 6);
				m->orcpts[i] = m->orcpt_buf[i];
			} else {
				snprintf(msg, msgsz, "unknown option '%s'", w);
				return false;
			}
		}
	} else if (!strncmp(a, "body ", 5)) {
		uint8_t buf[GOLDEN_MAX_BYTES];
		size_t n = harness_unescape(a + 5, buf, sizeof(buf));
		sb_append(&building(h)->body, buf, n);
	} else if (!strcmp(a, "send")) {
		struct cmsg *m = building(h);
		if (h->nmsgs >= MAX_MSGS || h->cur) {
			snprintf(msg, msgsz, "send while a message is in progress");
			return false;
		}
		m->env.sender = m->sender;
		m->env.rcpts = m->rcpts;
		m->env.orcpt = m->orcpts;
		m->env.notify = m->notify;
		m->env.envid = m->envid;
		h->msgs[h->nmsgs++] = m;
		h->building = NULL;
		h->cur = m;
		h->body_off = 0;
		h->reads = 0;
		if (smtp_client_send(h->c, &m->env) == PG_DONE)
			h->done = true;
		ch_drain(h);
		ch_pump(h);
	} else if (!strcmp(a, "quit")) {
		smtp_client_quit(h->c);
		ch_drain(h);
		ch_pump(h);
	} else if (!strncmp(a, "tls ", 4)) {
		smtp_client_tls_done(h->c, !strcmp(a + 4, "ok"));
		ch_drain(h);
		h->done = false;
		ch_pump(h);
	} else if (!strcmp(a, "timeout")) {
		if (smtp_client_timeout_ms(h->c) == 0) {
			snprintf(msg, msgsz, "no timer in state %s", smtp_client_state_name(h->c));
			return false;
		}
		smtp_client_timeout(h->c);
		ch_drain(h);
		h->done = true;
	} else if (!strncmp(a, "timer ", 6)) {
		if (smtp_client_timeout_ms(h->c) != (uint32_t)atol(a + 6)) {
			snprintf(msg, msgsz, "timer %u in state %s", smtp_client_timeout_ms(h->c),
			         smtp_client_state_name(h->c));
			return false;
		}
	} else if (!strcmp(a, "closed")) {
		smtp_client_closed(h->c);
		ch_drain(h);
		h->done = true;
	} else if (!strncmp(a, "state ", 6)) {
		if (strcmp(smtp_client_state_name(h->c), a + 6) != 0) {
			snprintf(msg, msgsz, "state %s, expected %s", smtp_client_state_name(h->c),
			         a + 6);
			return false;
		}
	} else {
		snprintf(msg, msgsz, "unknown action '%s'", a);
		return false;
	}
	return true;
}

/* ---- golden transcripts (golden.h) ------------------------------------ */

static void host_for(struct golden *g, struct chost *h)
{
	ch_init(h);
	if (g->config.len && !ch_config(h, g->config.p))
		fail_msg("%s: bad config '%s'", g->path, g->config.p);
	ch_start(h);
}

static void run_once(struct golden *g, size_t cut, bool bytewise, const char *mode)
{
	struct chost h;
	struct strbuf txt = {0};
	size_t off = 0;
	char msg[256];

	host_for(g, &h);
	for (unsigned i = 0; i < g->nsteps; i++) {
		struct golden_step *st = &g->steps[i];
		if (st->kind == GOLDEN_ACTION) {
			if (!ch_action(&h, st->action, msg, sizeof(msg)))
				fail_msg("%s (%s): A: %s: %s", g->path, mode, st->action, msg);
			continue;
		}
		if (bytewise) {
			for (size_t k = 0; k < st->len; k++)
				ch_recv(&h, st->bytes + k, 1);
		} else if (cut > off && cut < off + st->len) {
			ch_recv(&h, st->bytes, cut - off);
			ch_recv(&h, st->bytes + (cut - off), st->len - (cut - off));
		} else {
			ch_recv(&h, st->bytes, st->len);
		}
		off += st->len;
	}
	golden_out_as_text(&h.out, 0, &txt);
	if (txt.len != g->want_out.len ||
	    memcmp(txt.p ? txt.p : "", g->want_out.p ? g->want_out.p : "", txt.len)) {
		print_error("%s (%s): client output differs\n--- want\n%s--- got\n%s", g->path,
		            mode, g->want_out.p ? g->want_out.p : "", txt.p ? txt.p : "");
		fail();
	}
	if (h.up.len != g->want_up.len ||
	    memcmp(h.up.p ? h.up.p : "", g->want_up.p ? g->want_up.p : "", h.up.len)) {
		print_error("%s (%s): upcalls differ\n--- want\n%s--- got\n%s", g->path, mode,
		            g->want_up.p ? g->want_up.p : "", h.up.p ? h.up.p : "");
		fail();
	}
	sb_free(&txt);
	ch_fini(&h);
}

static void regenerate(struct golden *g, struct strbuf *file)
{
	struct chost h;
	size_t out_mark = 0, up_mark = 0;
	char msg[256];

	host_for(g, &h);
	sb_append(file, g->header.p, g->header.len);
	for (unsigned i = 0; i <= g->nsteps; i++) {
		if (i > 0) {
			struct golden_step *st = &g->steps[i - 1];
			sb_printf(file, "%s\n", st->src);
			if (st->kind == GOLDEN_ACTION) {
				if (!ch_action(&h, st->action, msg, sizeof(msg)))
					fail_msg("%s: A: %s: %s", g->path, st->action, msg);
			} else {
				ch_recv(&h, st->bytes, st->len);
			}
		}
		golden_append_produced(file, 'C', &h.out, &out_mark, &h.up, &up_mark);
	}
	ch_fini(&h);
}

static void test_golden(void **state)
{
	golden_test(*state, 'S', 'C', regenerate, run_once);
}

/* ---- table tests --------------------------------------------------------- */

/* RFC 5321 §4.5.3.2 defaults, per state. */
static void test_timeout_defaults(void **state)
{
	struct chost h;
	static const char *const greet = "220 mx ESMTP\r\n";
	static const char *const ehlo = "250-mx\r\n250 PIPELINING\r\n";

	(void)state;
	ch_init(&h);
	ch_start(&h);
	assert_int_equal(smtp_client_timeout_ms(h.c), 300000); /* §4.5.3.2.1 */
	ch_recv(&h, greet, strlen(greet));
	assert_string_equal(smtp_client_state_name(h.c), "EHLO");
	assert_int_equal(smtp_client_timeout_ms(h.c), 300000);
	ch_recv(&h, ehlo, strlen(ehlo));
	assert_string_equal(smtp_client_state_name(h.c), "IDLE");
	assert_int_equal(smtp_client_timeout_ms(h.c), 0); /* idle: the caller's cache timer */
	{
		char msg[64];
		assert_true(ch_action(&h, "mail <a@example.org>", msg, sizeof(msg)));
		assert_true(ch_action(&h, "rcpt <b@example.net>", msg, sizeof(msg)));
		assert_true(ch_action(&h, "body hello\\r\\n", msg, sizeof(msg)));
		assert_true(ch_action(&h, "send", msg, sizeof(msg)));
	}
	assert_int_equal(smtp_client_timeout_ms(h.c), 300000); /* MAIL §4.5.3.2.2 */
	ch_recv(&h, "250 ok\r\n", 8);
	assert_int_equal(smtp_client_timeout_ms(h.c), 300000); /* RCPT §4.5.3.2.3 */
	ch_recv(&h, "250 ok\r\n", 8);
	assert_int_equal(smtp_client_timeout_ms(h.c), 120000); /* DATA §4.5.3.2.4 */
	ch_recv(&h, "354 go\r\n", 8);
	assert_int_equal(smtp_client_timeout_ms(h.c), 600000); /* "." §4.5.3.2.6 */
	ch_recv(&h, "250 queued\r\n", 12);
	assert_int_equal(h.results, 1);
	assert_string_equal(smtp_client_state_name(h.c), "IDLE");
	ch_fini(&h);
}

/* The reply upcall: every reply with its phase, in order. */
static void up_reply_log(struct smtp_client *c, const struct smtp_client_reply *r, void *owner)
{
	struct chost *h = owner;

	(void)c;
	sb_printf(&h->up, "%s %u;", smtp_client_phase_name(r->phase), r->code);
}

/*
 * cfg.no_pipelining: a server that offers PIPELINING still gets one
 * command at a time (the generator's --no-pipelining); the reply upcall
 * names each reply's phase.
 */
static void test_no_pipelining_reply_hook(void **state)
{
	struct chost h;
	struct smtp_client_ops ops = ch_ops;
	char msg[64];
	static const char *const ehlo = "250-mx\r\n250 PIPELINING\r\n";

	(void)state;
	ch_init(&h);
	ops.reply = up_reply_log;
	h.cfg.ops = &ops;
	h.cfg.no_pipelining = true;
	h.log_upcalls = false;
	ch_start(&h);
	ch_recv(&h, "220 mx ESMTP\r\n", 14);
	ch_recv(&h, ehlo, strlen(ehlo));
	assert_true(ch_action(&h, "mail <a@example.org>", msg, sizeof(msg)));
	assert_true(ch_action(&h, "rcpt <b@example.net>", msg, sizeof(msg)));
	assert_true(ch_action(&h, "rcpt <c@example.net>", msg, sizeof(msg)));
	assert_true(ch_action(&h, "body hello\\r\\n", msg, sizeof(msg)));
	sb_free(&h.out);
	assert_true(ch_action(&h, "send", msg, sizeof(msg)));
	assert_non_null(h.out.p);
	assert_string_equal(h.out.p, "MAIL FROM:<a@example.org>\r\n");
	sb_free(&h.out);
	ch_recv(&h, "250 ok\r\n", 8);
	assert_string_equal(h.out.p, "RCPT TO:<b@example.net>\r\n");
	sb_free(&h.out);
	ch_recv(&h, "250 ok\r\n", 8);
	assert_string_equal(h.out.p, "RCPT TO:<c@example.net>\r\n");
	sb_free(&h.out);
	ch_recv(&h, "250 ok\r\n", 8);
	assert_string_equal(h.out.p, "DATA\r\n");
	ch_recv(&h, "354 go\r\n", 8);
	ch_recv(&h, "250 queued\r\n", 12);
	assert_int_equal(h.results, 2);
	assert_string_equal(
	    h.up.p, "greeting 220;EHLO 250;MAIL 250;RCPT 250;RCPT 250;DATA 354;end of data 250;");
	ch_fini(&h);
}

/* A message sent on a session that is over gets the reason at once. */
static void test_send_after_close(void **state)
{
	struct chost h;
	char msg[64];

	(void)state;
	ch_init(&h);
	ch_start(&h);
	ch_recv(&h, "421 mx busy\r\n", 13);
	assert_true(h.done);
	assert_int_equal(smtp_client_failure(h.c)->code, 421);
	assert_true(ch_action(&h, "mail <a@example.org>", msg, sizeof(msg)));
	assert_true(ch_action(&h, "rcpt <b@example.net>", msg, sizeof(msg)));
	assert_true(ch_action(&h, "rcpt <c@example.net>", msg, sizeof(msg)));
	assert_true(ch_action(&h, "send", msg, sizeof(msg)));
	assert_int_equal(h.results, 2);
	assert_null(h.cur);
	assert_false(smtp_client_reusable(h.c));
	ch_fini(&h);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 11);
}

/*
 * Random server replies (plausible lines, mangled lines, raw noise) in
 * random pieces: the engine must never crash, never write past its
 * buffers (ASan), and give every recipient exactly one result.
 */
static void test_fuzz_replies(void **state)
{
	static const char *const lines[] = {"220 mx ESMTP\r\n",
	                                    "250 ok\r\n",
	                                    "250-mx\r\n",
	                                    "250-PIPELINING\r\n",
	                                    "250-SIZE 100\r\n",
	                                    "250-CHUNKING\r\n",
	                                    "250-STARTTLS\r\n",
	                                    "250 DSN\r\n",
	                                    "354 go\r\n",
	                                    "421 4.3.2 bye\r\n",
	                                    "450 4.2.0 later\r\n",
	                                    "550 5.1.1 no\r\n",
	                                    "220 2.0.0 go TLS\r\n",
	                                    "452 4.5.3 too many\r\n",
	                                    "250 2.0.0 ok\r\n",
	                                    "199 bad\r\n",
	                                    "2500 x\r\n",
	                                    "25",
	                                    "0 ok\r\n",
	                                    "\r\n",
	                                    "\n",
	                                    "250-",
	                                    "251 x\n",
	                                    "554 no\r\n",
	                                    "500 what\r\n",
	                                    "250 \xff\x01\r\n"};
	(void)state;
	for (int iter = 0; iter < 3000; iter++) {
		struct chost h;
		char msg[64];
		unsigned n = 1 + rnd() % 5;

		ch_init(&h);
		h.log_upcalls = false;
		h.cfg.starttls = rnd() % 2;
		h.cfg.prefer_bdat = rnd() % 2;
		h.piece = 1 + rnd() % 50;
		h.again = rnd() % 2;
		ch_start(&h);
		assert_true(
		    ch_action(&h, "mail <a@example.org> size=500 smtputf8", msg, sizeof(msg)));
		for (unsigned i = 0; i < n; i++)
			assert_true(
			    ch_action(&h, "rcpt <b@example.net> notify=SF", msg, sizeof(msg)));
		assert_true(ch_action(&h, "body .a\\nb\\rc\\r\\n.\\r\\n", msg, sizeof(msg)));
		assert_true(ch_action(&h, "send", msg, sizeof(msg)));
		for (int k = 0; k < 40 && !h.done; k++) {
			if (rnd() % 8 == 0) {
				uint8_t noise[64];
				size_t len = rnd() % sizeof(noise);
				for (size_t j = 0; j < len; j++)
					noise[j] = (uint8_t)rnd();
				ch_recv(&h, noise, len);
			} else {
				const char *l = lines[rnd() % (sizeof(lines) / sizeof(lines[0]))];
				ch_recv(&h, l, strlen(l));
			}
			if (!strcmp(smtp_client_state_name(h.c), "TLS"))
				ch_action(&h, rnd() % 4 ? "tls ok" : "tls fail", msg, sizeof(msg));
		}
		if (!h.done && h.cur)
			smtp_client_timeout(h.c);
		assert_null(h.cur);
		assert_int_equal(h.results, n);
		ch_fini(&h);
	}
}

int main(int argc, char **argv)
{
	static const struct CMUnitTest fixed[] = {
	    cmocka_unit_test(test_timeout_defaults),
	    cmocka_unit_test(test_send_after_close),
	    cmocka_unit_test(test_no_pipelining_reply_hook),
	    cmocka_unit_test(test_fuzz_replies),
	};

	return golden_run_dir("smtp_client", argc > 1 ? argv[1] : "golden_client", test_golden,
	                      fixed, sizeof(fixed) / sizeof(fixed[0]));
}
