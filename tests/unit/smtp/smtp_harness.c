/*
 * smtp_harness.c - the scripted relay and byte pump behind the SMTP golden
 * transcripts (see smtp_harness.h). The relay decides by address so that a
 * transcript alone says what happens:
 *   sender   reject@  -> PG_DECLINED       tempfail@ -> PG_ERROR
 *            async@   -> PG_AGAIN, then resumed PG_OK
 *   rcpt     reject*@ -> PG_DECLINED       unknown*@ -> 550 5.1.1 verdict
 *            temp*@   -> PG_ERROR          async*@   -> PG_AGAIN, resumed PG_OK
 *            asyncno*@ -> PG_AGAIN, resumed PG_DECLINED
 * Queue ids are Q1, Q2...; the clock is fixed at 1700000000.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_harness.h"

void sb_append(struct strbuf *b, const void *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (!b->p)
			abort();
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void sb_printf(struct strbuf *b, const char *fmt, ...)
{
	char tmp[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(tmp) - 1)
		n = (int)sizeof(tmp) - 1;
	sb_append(b, tmp, (size_t)n);
}

void sb_free(struct strbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void sb_escape(struct strbuf *b, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i];
		if (c == '\r')
			sb_append(b, "\\r", 2);
		else if (c == '\n')
			sb_append(b, "\\n", 2);
		else if (c == '\t')
			sb_append(b, "\\t", 2);
		else if (c == '\\')
			sb_append(b, "\\\\", 2);
		else if (c < 32 || c >= 127)
			sb_printf(b, "\\x%02x", c);
		else
			sb_append(b, &c, 1);
	}
}

size_t harness_unescape(const char *in, uint8_t *out, size_t outsz)
{
	size_t n = 0;

	for (const char *p = in; *p && n < outsz; p++) {
		if (*p != '\\' || !p[1]) {
			out[n++] = (uint8_t)*p;
			continue;
		}
		p++;
		switch (*p) {
		case 'r':
			out[n++] = '\r';
			break;
		case 'n':
			out[n++] = '\n';
			break;
		case 't':
			out[n++] = '\t';
			break;
		case '\\':
			out[n++] = '\\';
			break;
		case 'x': {
			unsigned v = 0;
			for (int k = 0; k < 2 && p[1]; k++) {
				char c = *++p;
				v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
			}
			out[n++] = (uint8_t)v;
			break;
		}
		case '{': { /* \{N}c: N copies of c */
			unsigned long rep = strtoul(p + 1, (char **)&p, 10);
			if (*p != '}' || !p[1])
				return n;
			p++;
			while (rep-- > 0 && n < outsz)
				out[n++] = (uint8_t)*p;
			break;
		}
		default:
			out[n++] = '\\';
			out[n++] = (uint8_t)*p;
			break;
		}
	}
	return n;
}

static bool local_starts(const char *addr, const char *prefix)
{
	return strncmp(addr, prefix, strlen(prefix)) == 0;
}

static int up_mail(struct smtp_server *s, const struct smtp_envelope *e, struct smtp_verdict *v,
                   void *owner)
{
	struct harness *h = owner;
	static const char *const body[] = {"", "7BIT", "8BITMIME"};
	static const char *const ret[] = {"", "FULL", "HDRS"};

	(void)v;
	sb_printf(&h->up, "mail <");
	sb_escape(&h->up, (const uint8_t *)e->sender, strlen(e->sender));
	sb_printf(&h->up, ">");
	if (e->size)
		sb_printf(&h->up, " size=%llu", (unsigned long long)e->size);
	if (e->body)
		sb_printf(&h->up, " body=%s", body[e->body]);
	if (e->smtputf8)
		sb_printf(&h->up, " smtputf8");
	if (e->ret)
		sb_printf(&h->up, " ret=%s", ret[e->ret]);
	if (e->envid[0])
		sb_printf(&h->up, " envid=%s", e->envid);
	sb_printf(&h->up, "\n");
	if (local_starts(e->sender, "reject@"))
		return PG_DECLINED;
	if (local_starts(e->sender, "tempfail@"))
		return PG_ERROR;
	{
		char id[16];
		snprintf(id, sizeof(id), "Q%u", ++h->qid);
		smtp_server_set_queue_id(s, id);
	}
	if (local_starts(e->sender, "async@")) {
		h->auto_resume = true;
		h->resume_rc = PG_OK;
		return PG_AGAIN;
	}
	return PG_OK;
}

static int up_rcpt(struct smtp_server *s, const struct smtp_envelope *e, const struct smtp_rcpt *r,
                   struct smtp_verdict *v, void *owner)
{
	struct harness *h = owner;

	(void)s, (void)e;
	sb_printf(&h->up, "rcpt <");
	sb_escape(&h->up, (const uint8_t *)r->addr, strlen(r->addr));
	sb_printf(&h->up, ">");
	if (r->notify)
		sb_printf(&h->up, " notify=%s%s%s%s", r->notify & SMTP_NOTIFY_NEVER ? "N" : "",
		          r->notify & SMTP_NOTIFY_SUCCESS ? "S" : "",
		          r->notify & SMTP_NOTIFY_FAILURE ? "F" : "",
		          r->notify & SMTP_NOTIFY_DELAY ? "D" : "");
	if (r->orcpt[0]) {
		sb_printf(&h->up, " orcpt=");
		sb_escape(&h->up, (const uint8_t *)r->orcpt, strlen(r->orcpt));
	}
	sb_printf(&h->up, "\n");
	if (local_starts(r->addr, "reject"))
		return PG_DECLINED;
	if (local_starts(r->addr, "unknown")) {
		v->code = 550;
		v->status = "5.1.1";
		v->text = "Recipient address rejected: User unknown\r\nINJECTED";
		return PG_DECLINED;
	}
	if (local_starts(r->addr, "temp")) {
		v->code = 450;
		v->status = "4.2.0";
		v->text = "Recipient address rejected: greylisted";
		return PG_ERROR;
	}
	if (local_starts(r->addr, "asyncno")) {
		h->auto_resume = true;
		h->resume_rc = PG_DECLINED;
		return PG_AGAIN;
	}
	if (local_starts(r->addr, "async")) {
		h->auto_resume = true;
		h->resume_rc = PG_OK;
		return PG_AGAIN;
	}
	return PG_OK;
}

static int up_data_start(struct smtp_server *s, const struct smtp_envelope *e,
                         struct smtp_verdict *v, void *owner)
{
	struct harness *h = owner;

	(void)s, (void)e;
	sb_printf(&h->up, "data nrcpt=%u\n", e->nrcpt);
	h->body.len = 0;
	switch (h->data_mode) {
	case 1:
		v->code = 554;
		v->status = "5.3.2";
		v->text = "Error: not accepting messages";
		return PG_DECLINED;
	case 2:
		h->auto_resume = true;
		h->resume_rc = PG_OK;
		return PG_AGAIN;
	case 3:
		v->code = 452;
		v->status = "4.3.1";
		v->text = "Error: insufficient system storage";
		return PG_ERROR;
	}
	return PG_OK;
}

static int up_chunk(struct smtp_server *s, const uint8_t *p, size_t n, void *owner)
{
	struct harness *h = owner;

	(void)s;
	h->chunk_calls++;
	if (h->chunk_mode == 1 && (h->chunk_calls & 1))
		return PG_AGAIN;
	if (h->chunk_mode == 2)
		return PG_ERROR;
	if (h->log_body)
		sb_append(&h->body, p, n);
	else
		h->body.len += n;
	return PG_OK;
}

static int up_end(struct smtp_server *s, const struct smtp_envelope *e,
                  const struct smtp_message_info *info, struct smtp_verdict *v, void *owner)
{
	struct harness *h = owner;

	(void)s, (void)v;
	sb_printf(&h->up, "end nrcpt=%u size=%llu maxline=%u%s\n", e->nrcpt,
	          (unsigned long long)info->size, info->max_line, info->bdat ? " bdat" : "");
	if (h->log_body) {
		sb_printf(&h->up, "body ");
		sb_escape(&h->up, (const uint8_t *)h->body.p, h->body.len);
		sb_printf(&h->up, "\n");
	}
	if (info->size > h->max_body)
		h->max_body = info->size;
	h->body.len = 0;
	return h->end_mode == 1 ? PG_OK : PG_AGAIN;
}

static void up_abort(struct smtp_server *s, void *owner)
{
	struct harness *h = owner;

	(void)s;
	sb_printf(&h->up, "abort\n");
	h->body.len = 0;
}

static void up_starttls(struct smtp_server *s, void *owner)
{
	struct harness *h = owner;

	(void)s;
	h->tls_hook++;
	sb_printf(&h->up, "starttls\n");
}

static void up_quit(struct smtp_server *s, void *owner)
{
	struct harness *h = owner;

	(void)s;
	sb_printf(&h->up, "quit\n");
}

static time_t up_now(void *owner)
{
	(void)owner;
	return 1700000000;
}

static const struct smtp_server_ops harness_ops = {
    .mail_from = up_mail,
    .rcpt_to = up_rcpt,
    .data_start = up_data_start,
    .data_chunk = up_chunk,
    .message_end = up_end,
    .message_abort = up_abort,
    .starttls = up_starttls,
    .quit = up_quit,
    .now = up_now,
};

void harness_init(struct harness *h)
{
	memset(h, 0, sizeof(*h));
	smtp_server_config_default(&h->cfg);
	h->cfg.ops = &harness_ops;
	h->cfg.owner = h;
	h->cfg.hostname = "mx.postern.test";
	h->log_body = true;
}

bool harness_config(struct harness *h, const char *line)
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
		if (!strcmp(w, "size"))
			h->cfg.max_message_size = strtoull(v, NULL, 10);
		else if (!strcmp(w, "rcpt"))
			h->cfg.max_rcpt = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(w, "hops"))
			h->cfg.max_hops = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(w, "errors"))
			h->cfg.hard_error_limit = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(w, "linemax"))
			h->cfg.cmd_line_max = (uint32_t)strtoul(v, NULL, 10);
		else if (!strcmp(w, "bare"))
			h->cfg.bare =
			    !strcmp(v, "normalize") ? SMTP_BARE_NORMALIZE : SMTP_BARE_REJECT;
		else if (!strcmp(w, "starttls"))
			h->cfg.starttls = atoi(v);
		else if (!strcmp(w, "tlsreq"))
			h->cfg.tls_required = atoi(v);
		else if (!strcmp(w, "overload"))
			h->cfg.over_capacity = atoi(v);
		else if (!strcmp(w, "end"))
			h->end_mode = !strcmp(v, "sync");
		else if (!strcmp(w, "chunk"))
			h->chunk_mode = !strcmp(v, "again") ? 1 : !strcmp(v, "error") ? 2 : 0;
		else if (!strcmp(w, "data"))
			h->data_mode = !strcmp(v, "reject")  ? 1
			               : !strcmp(v, "async") ? 2
			               : !strcmp(v, "temp")  ? 3
			                                     : 0;
		else
			return false;
	}
	return true;
}

static void drain(struct harness *h)
{
	const uint8_t *p;
	size_t n = smtp_server_output(h->s, &p);

	if (n) {
		sb_append(&h->out, p, n);
		smtp_server_output_consume(h->s, n);
	}
}

void harness_start(struct harness *h)
{
	struct smtp_peer peer = {.addr = "198.18.0.2", .hostname = "client.example"};

	h->s = smtp_server_create(&h->cfg, &peer);
	if (!h->s)
		abort();
	drain(h);
}

void harness_fini(struct harness *h)
{
	smtp_server_destroy(h->s);
	sb_free(&h->backlog);
	sb_free(&h->out);
	sb_free(&h->up);
	sb_free(&h->body);
}

void harness_pump(struct harness *h)
{
	for (int spins = 0; !h->done; spins++) {
		size_t used = 0;
		int rc =
		    smtp_server_input(h->s, (const uint8_t *)h->backlog.p, h->backlog.len, &used);
		bool progress = used > 0;

		if (used) {
			memmove(h->backlog.p, h->backlog.p + used, h->backlog.len - used);
			h->backlog.len -= used;
		}
		{
			const uint8_t *p;
			progress |= smtp_server_output(h->s, &p) > 0;
		}
		drain(h);
		if (rc == PG_DONE) {
			h->done = true;
			break;
		}
		if (rc == PG_OK)
			break;
		/* PG_AGAIN: answer what the scripted relay deferred. */
		if (h->auto_resume) {
			h->auto_resume = false;
			smtp_server_resume(h->s, h->resume_rc, NULL);
			continue;
		}
		if (!strcmp(smtp_server_state_name(h->s), "COMMIT") && !h->hold) {
			smtp_server_message_committed(h->s, true, NULL);
			continue;
		}
		if (h->chunk_mode == 1 && spins < 64)
			continue; /* data_chunk said AGAIN: it takes the bytes on the retry */
		if (!progress)
			break; /* held: an A: line will unblock */
	}
}

void harness_recv(struct harness *h, const void *p, size_t n)
{
	sb_append(&h->backlog, p, n);
	harness_pump(h);
}

bool harness_action(struct harness *h, const char *a, char *msg, size_t msgsz)
{
	msg[0] = '\0';
	if (!strcmp(a, "hold")) {
		h->hold = true;
	} else if (!strncmp(a, "commit ", 7)) {
		struct smtp_verdict v = {550, "5.7.1", "Error: content rejected"};
		if (strcmp(smtp_server_state_name(h->s), "COMMIT") != 0) {
			snprintf(msg, msgsz, "commit in state %s", smtp_server_state_name(h->s));
			return false;
		}
		h->hold = false;
		if (!strcmp(a + 7, "ok"))
			smtp_server_message_committed(h->s, true, NULL);
		else if (!strcmp(a + 7, "reject"))
			smtp_server_message_committed(h->s, false, &v);
		else
			smtp_server_message_committed(h->s, false, NULL);
		drain(h);
		harness_pump(h);
	} else if (!strcmp(a, "timeout")) {
		if (smtp_server_timeout_ms(h->s) == 0) {
			snprintf(msg, msgsz, "no timer in state %s", smtp_server_state_name(h->s));
			return false;
		}
		smtp_server_timeout(h->s);
		drain(h);
		h->done = true;
	} else if (!strncmp(a, "tls ", 4)) {
		smtp_server_tls_started(
		    h->s, !strcmp(a + 4, "ok"),
		    "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)");
		drain(h);
		harness_pump(h);
	} else if (!strncmp(a, "state ", 6)) {
		if (strcmp(smtp_server_state_name(h->s), a + 6) != 0) {
			snprintf(msg, msgsz, "state %s, expected %s", smtp_server_state_name(h->s),
			         a + 6);
			return false;
		}
	} else if (!strncmp(a, "errors ", 7)) {
		if (smtp_server_errors(h->s) != (uint32_t)atoi(a + 7)) {
			snprintf(msg, msgsz, "errors %u, expected %s", smtp_server_errors(h->s),
			         a + 7);
			return false;
		}
	} else {
		snprintf(msg, msgsz, "unknown action '%s'", a);
		return false;
	}
	return true;
}
