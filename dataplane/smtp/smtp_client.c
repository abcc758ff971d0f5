/*
 * smtp_client.c - the SMTP client session: lifecycle, the state machine
 * (greeting, EHLO/HELO, STARTTLS and its hook, the transaction with or
 * without PIPELINING, end of data, RSET for reuse, QUIT), per-recipient
 * results, timeouts (RFC 5321 §4.5.3.2). Replies are parsed in
 * smtp_client_reply.c, the body is encoded in smtp_client_body.c.
 */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_client_private.h"
#include "smtp_parse.h"

static const char *const state_names[SMTPC_S_COUNT] = {
    [SMTPC_S_GREETING] = "GREETING", [SMTPC_S_EHLO] = "EHLO", [SMTPC_S_HELO] = "HELO",
    [SMTPC_S_STARTTLS] = "STARTTLS", [SMTPC_S_TLS] = "TLS",   [SMTPC_S_IDLE] = "IDLE",
    [SMTPC_S_TXN] = "TXN",           [SMTPC_S_BODY] = "BODY", [SMTPC_S_DOT] = "DOT",
    [SMTPC_S_NULLDOT] = "NULLDOT",   [SMTPC_S_BDAT] = "BDAT", [SMTPC_S_QUIT] = "QUIT",
    [SMTPC_S_CLOSED] = "CLOSED",
};

static const char *const phase_names[SMTP_PHASE_COUNT] = {
    [SMTP_PHASE_GREETING] = "greeting", [SMTP_PHASE_EHLO] = "EHLO",
    [SMTP_PHASE_HELO] = "HELO",         [SMTP_PHASE_STARTTLS] = "STARTTLS",
    [SMTP_PHASE_TLS] = "TLS",           [SMTP_PHASE_POLICY] = "policy",
    [SMTP_PHASE_RSET] = "RSET",         [SMTP_PHASE_MAIL] = "MAIL",
    [SMTP_PHASE_RCPT] = "RCPT",         [SMTP_PHASE_DATA] = "DATA",
    [SMTP_PHASE_BODY] = "body",         [SMTP_PHASE_EOD] = "end of data",
    [SMTP_PHASE_QUIT] = "QUIT",
};

const char *smtp_client_phase_name(enum smtp_client_phase p)
{
	return p < SMTP_PHASE_COUNT ? phase_names[p] : "?";
}

void smtpc_set_state(struct smtp_client *c, enum smtpc_state st)
{
	assert(st < SMTPC_S_COUNT);
	if (c->state == st)
		return;
	if (c->ops->trace)
		c->ops->trace(c, state_names[c->state], state_names[st], c->cfg.owner);
	c->state = st;
}

void smtp_client_config_default(struct smtp_client_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->helo_name = "localhost";
	cfg->line_limit = 998;
	cfg->greeting_timeout_ms = 300000;
	cfg->helo_timeout_ms = 300000;
	cfg->mail_timeout_ms = 300000;
	cfg->rcpt_timeout_ms = 300000;
	cfg->data_timeout_ms = 120000;
	cfg->block_timeout_ms = 180000;
	cfg->dot_timeout_ms = 600000;
	cfg->rset_timeout_ms = 20000;
	cfg->quit_timeout_ms = 300000;
}

struct smtp_client *smtp_client_create(const struct smtp_client_config *cfg)
{
	struct smtp_client *c;

	assert(cfg->ops && cfg->ops->body_read && cfg->ops->rcpt_result);
	assert(!cfg->starttls || cfg->ops->starttls);
	c = malloc(sizeof(*c)); /* not calloc: see smtp_server_create */
	if (!c)
		return NULL;
	explicit_bzero(c, sizeof(*c));
	c->cfg = *cfg;
	c->ops = cfg->ops;
	if (!c->cfg.helo_name || !smtp_valid_helo(c->cfg.helo_name, strlen(c->cfg.helo_name)))
		c->cfg.helo_name = "localhost";
	if (c->cfg.line_limit && c->cfg.line_limit < 78)
		c->cfg.line_limit = 78; /* RFC 5322 §2.1.1 SHOULD length; folding below is absurd */
	c->state = SMTPC_S_GREETING;
	return c;
}

void smtp_client_destroy(struct smtp_client *c)
{
	if (!c)
		return;
	free(c->rstate);
	free(c);
}

/* ---- output ------------------------------------------------------------ */

size_t smtpc_out_room(const struct smtp_client *c)
{
	return SMTPC_OUT_CAP - c->out_head - c->out_len;
}

void smtpc_out_append(struct smtp_client *c, const void *p, size_t n)
{
	if (c->out_head > 0 && smtpc_out_room(c) < n) {
		memmove(c->out, c->out + c->out_head, c->out_len);
		c->out_head = 0;
	}
	if (n > smtpc_out_room(c))
		n = smtpc_out_room(c); /* unreachable: writers keep below SMTPC_OUT_FILL */
	memcpy(c->out + c->out_head + c->out_len, p, n);
	c->out_len += n;
}

void smtpc_out_printf(struct smtp_client *c, const char *fmt, ...)
{
	char line[SMTPC_CMD_MAX + 64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = (int)sizeof(line) - 1; /* cannot happen: every part is bounded */
	smtpc_out_append(c, line, (size_t)n);
}

size_t smtp_client_output(const struct smtp_client *c, const uint8_t **p)
{
	*p = c->out + c->out_head;
	return c->out_len;
}

void smtp_client_output_consume(struct smtp_client *c, size_t n)
{
	if (n > c->out_len)
		n = c->out_len;
	c->out_head += n;
	c->out_len -= n;
	if (c->out_len == 0)
		c->out_head = 0;
}

static enum smtpc_step step_kind(const struct smtp_client *c, uint32_t step, uint32_t *rcpt)
{
	if (c->rset) {
		if (step == 0)
			return SMTPC_STEP_RSET;
		step--;
	}
	if (step == 0)
		return SMTPC_STEP_MAIL;
	if (step <= c->env->nrcpt) {
		*rcpt = step - 1;
		return SMTPC_STEP_RCPT;
	}
	return SMTPC_STEP_DATA;
}

/* The step the session is at, for results the engine makes itself. */
static enum smtp_client_phase current_phase(const struct smtp_client *c)
{
	uint32_t rcpt;

	switch (c->state) {
	case SMTPC_S_GREETING:
		return SMTP_PHASE_GREETING;
	case SMTPC_S_EHLO:
		return SMTP_PHASE_EHLO;
	case SMTPC_S_HELO:
		return SMTP_PHASE_HELO;
	case SMTPC_S_STARTTLS:
		return SMTP_PHASE_STARTTLS;
	case SMTPC_S_TLS:
		return SMTP_PHASE_TLS;
	case SMTPC_S_TXN:
		if (c->recv_step < c->send_step) {
			enum smtpc_step k = step_kind(c, c->recv_step, &rcpt);
			return k == SMTPC_STEP_RSET   ? SMTP_PHASE_RSET
			       : k == SMTPC_STEP_RCPT ? SMTP_PHASE_RCPT
			       : k == SMTPC_STEP_DATA ? SMTP_PHASE_DATA
			                              : SMTP_PHASE_MAIL;
		}
		return SMTP_PHASE_MAIL;
	case SMTPC_S_BODY:
		return SMTP_PHASE_BODY;
	case SMTPC_S_BDAT:
	case SMTPC_S_DOT:
	case SMTPC_S_NULLDOT:
		return SMTP_PHASE_EOD;
	case SMTPC_S_QUIT:
	case SMTPC_S_CLOSED:
		return SMTP_PHASE_QUIT;
	case SMTPC_S_IDLE:
	default:
		return SMTP_PHASE_MAIL;
	}
}

/* ---- results ----------------------------------------------------------- */

void smtpc_local(struct smtp_client_reply *r, int code, const char *status,
                 enum smtp_client_phase phase, const char *fmt, ...)
{
	va_list ap;

	memset(r, 0, sizeof(*r));
	r->code = (uint16_t)code;
	snprintf(r->status, sizeof(r->status), "%s", status);
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
	r->phase = phase;
	r->local = true;
}

static void rcpt_final(struct smtp_client *c, uint32_t i, const struct smtp_client_reply *r)
{
	if (c->rstate[i] == SMTPC_R_FINAL || c->rstate[i] == SMTPC_R_SKIP)
		return;
	if (c->rstate[i] == SMTPC_R_ACCEPTED)
		c->accepted--;
	c->rstate[i] = SMTPC_R_FINAL;
	c->nfinal++;
	c->ops->rcpt_result(c, i, r, c->cfg.owner);
}

/* A refusal before anything was sent for recipient i. */
static void rcpt_skip(struct smtp_client *c, uint32_t i, const struct smtp_client_reply *r)
{
	rcpt_final(c, i, r);
	c->rstate[i] = SMTPC_R_SKIP;
}

/* Every recipient not final yet (pending and accepted) gets r. */
static void fail_rest(struct smtp_client *c, const struct smtp_client_reply *r)
{
	if (!c->env || c->env_new)
		return;
	for (uint32_t i = 0; i < c->env->nrcpt; i++)
		rcpt_final(c, i, r);
}

/* Only the accepted recipients get r (DATA / end-of-data replies). */
static void fail_accepted(struct smtp_client *c, const struct smtp_client_reply *r)
{
	for (uint32_t i = 0; i < c->env->nrcpt; i++)
		if (c->rstate[i] == SMTPC_R_ACCEPTED)
			rcpt_final(c, i, r);
}

static void message_finish(struct smtp_client *c);

/* A message given but not begun, on a session that is over: r for all. */
static void fail_unstarted(struct smtp_client *c, const struct smtp_client_reply *r)
{
	const struct smtp_client_envelope *env = c->env;

	c->env_new = false;
	if (c->rstate_cap < env->nrcpt) {
		free(c->rstate);
		c->rstate = calloc(env->nrcpt, 1);
		c->rstate_cap = c->rstate ? env->nrcpt : 0;
	}
	for (uint32_t i = 0; i < env->nrcpt; i++) {
		if (c->rstate)
			c->rstate[i] = SMTPC_R_FINAL;
		c->ops->rcpt_result(c, i, r, c->cfg.owner);
	}
	c->nfinal = env->nrcpt;
	message_finish(c);
}

/* The message is over: every recipient has its result. */
static void message_finish(struct smtp_client *c)
{
	if (!c->env)
		return;
	assert(c->nfinal == c->env->nrcpt);
	c->env = NULL;
	c->env_new = false;
	if (c->state != SMTPC_S_CLOSED && c->state != SMTPC_S_QUIT)
		smtpc_set_state(c, SMTPC_S_IDLE);
	if (c->ops->message_done)
		c->ops->message_done(c, c->cfg.owner);
}

/*
 * The session cannot go on: r goes to whatever is pending (and to any
 * later message); QUIT is sent when the dialogue is still in step (no
 * replies outstanding, not inside a body), else the connection just closes.
 */
void smtpc_session_fail(struct smtp_client *c, const struct smtp_client_reply *r, bool quit)
{
	if (c->state == SMTPC_S_CLOSED)
		return;
	if (c->failure.code == 0)
		c->failure = *r;
	if (quit && c->state == SMTPC_S_TXN && c->recv_step < c->send_step)
		quit = false;
	if (quit && (c->state == SMTPC_S_BODY || c->state == SMTPC_S_BDAT))
		quit = false;
	if (quit) {
		smtpc_out_printf(c, "QUIT\r\n");
		smtpc_set_state(c, SMTPC_S_QUIT);
	} else {
		smtpc_set_state(c, SMTPC_S_CLOSED);
	}
	if (c->env && c->env_new) {
		fail_unstarted(c, &c->failure);
	} else if (c->env) {
		fail_rest(c, r);
		message_finish(c);
	}
}

void smtpc_protocol_error(struct smtp_client *c, const char *why)
{
	struct smtp_client_reply r;

	/* RFC 3463 X.5.0: other or undefined protocol status. */
	smtpc_local(&r, 451, "4.5.0", current_phase(c), "Protocol error: %s", why);
	smtpc_reply_reset(&c->rp);
	smtpc_session_fail(c, &r, false);
}

/* ---- handshake --------------------------------------------------------- */

static void send_ehlo(struct smtp_client *c)
{
	/* RFC 3207 §4.2: forget what the server said before TLS. */
	c->info.ext = 0;
	c->info.size_limit = 0;
	c->info.keywords[0] = '\0';
	smtpc_out_printf(c, "EHLO %s\r\n", c->cfg.helo_name);
	smtpc_set_state(c, SMTPC_S_EHLO);
}

/* EHLO/HELO (and STARTTLS) done: the caller's policy, then deliver. */
static void handshake_done(struct smtp_client *c)
{
	struct smtp_client_reply r;
	int rc;

	smtpc_set_state(c, SMTPC_S_IDLE);
	if (!c->ops->helo_done)
		return;
	memset(&r, 0, sizeof(r));
	rc = c->ops->helo_done(c, &c->info, &r, c->cfg.owner);
	if (rc == PG_OK)
		return;
	if (r.code < 400 || r.code > 599) {
		r.code = 451;
		snprintf(r.status, sizeof(r.status), "4.7.4");
	}
	if (r.status[0] != '0' + r.code / 100)
		snprintf(r.status, sizeof(r.status), "%d.0.0", r.code / 100);
	r.text[sizeof(r.text) - 1] = '\0';
	if (!r.text[0])
		snprintf(r.text, sizeof(r.text), "Delivery refused by local policy");
	r.phase = SMTP_PHASE_POLICY;
	r.local = true;
	smtpc_session_fail(c, &r, true);
}

static void on_greeting(struct smtp_client *c, struct smtp_client_reply *r)
{
	snprintf(c->info.greeting, sizeof(c->info.greeting), "%s", r->text);
	if (r->code / 100 == 2) {
		send_ehlo(c);
		return;
	}
	/* RFC 5321 §3.1: 554 greeting - QUIT, and every recipient gets it. */
	smtpc_session_fail(c, r, r->code != 421);
}

static void on_ehlo(struct smtp_client *c, struct smtp_client_reply *r)
{
	if (r->code / 100 != 2) {
		/*
		 * RFC 5321 §3.2: a server that does not know EHLO refuses it;
		 * the client then uses HELO. Postfix smtp_helo() falls back on
		 * every non-2xx but 421 (handled before we get here).
		 */
		c->info.esmtp = false;
		c->info.ext = 0;
		c->info.keywords[0] = '\0';
		smtpc_out_printf(c, "HELO %s\r\n", c->cfg.helo_name);
		smtpc_set_state(c, SMTPC_S_HELO);
		return;
	}
	c->info.esmtp = true;
	if (!c->info.tls)
		c->info.starttls_offered = (c->info.ext & SMTP_EXT_STARTTLS) != 0;
	if (c->cfg.starttls && !c->info.tls && (c->info.ext & SMTP_EXT_STARTTLS)) {
		c->info.starttls_sent = true;
		smtpc_out_printf(c, "STARTTLS\r\n");
		smtpc_set_state(c, SMTPC_S_STARTTLS);
		return;
	}
	handshake_done(c);
}

static void on_helo(struct smtp_client *c, struct smtp_client_reply *r)
{
	if (r->code / 100 != 2) {
		smtpc_session_fail(c, r, true);
		return;
	}
	handshake_done(c);
}

static void on_starttls(struct smtp_client *c, struct smtp_client_reply *r)
{
	c->info.starttls_reply = *r;
	if (r->code == 220) {
		/* Anything after the 220 is plaintext injection: dropped. */
		c->drop_input = true;
		smtpc_set_state(c, SMTPC_S_TLS);
		c->ops->starttls(c, c->cfg.owner);
		return;
	}
	if (r->code / 100 == 2) {
		smtpc_protocol_error(c, "unexpected reply to STARTTLS");
		return;
	}
	/* RFC 3207 §4: 454 / 501 - the session may go on in plaintext; policy decides. */
	handshake_done(c);
}

void smtp_client_tls_done(struct smtp_client *c, bool ok)
{
	struct smtp_client_reply r;

	if (c->state != SMTPC_S_TLS)
		return;
	if (!ok) {
		smtpc_local(&r, 451, "4.7.5", SMTP_PHASE_TLS,
		            "Cannot start TLS: handshake failure");
		smtpc_session_fail(c, &r, false);
		return;
	}
	c->info.tls = true;
	c->info.esmtp = false;
	send_ehlo(c);
	smtp_client_run(c);
}

/* ---- the transaction ---------------------------------------------------- */

static bool has_non_ascii(const char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s >= 0x80)
			return true;
	return false;
}

/*
 * An address safe to put in a command: bounded, no controls, no space
 * or brackets outside a quoted local part (the spool holds what the
 * server engine validated; this guards the wire against anything else).
 */
static bool addr_sendable(const char *a)
{
	bool quoted = false;
	size_t n = 0;

	for (; *a; a++, n++) {
		unsigned char ch = (unsigned char)*a;
		if (ch < 32 || ch == 127)
			return false;
		if (ch == '"')
			quoted = !quoted;
		else if (!quoted && (ch == ' ' || ch == '<' || ch == '>'))
			return false;
	}
	return n <= SMTP_PATH_MAX - 2;
}

static bool needs_smtputf8(const struct smtp_client_envelope *env)
{
	if (env->utf8_headers || has_non_ascii(env->sender))
		return true;
	for (uint32_t i = 0; i < env->nrcpt; i++)
		if (has_non_ascii(env->rcpts[i]))
			return true;
	return false;
}

/* Checks before any command: the refusals the engine makes itself. */
static bool txn_precheck(struct smtp_client *c)
{
	const struct smtp_client_envelope *env = c->env;
	struct smtp_client_reply r;
	bool any = false;

	if (!addr_sendable(env->sender ? env->sender : "")) {
		smtpc_local(&r, 553, "5.1.7", SMTP_PHASE_MAIL, "Bad sender address syntax");
		goto all;
	}
	if ((c->info.ext & SMTP_EXT_SIZE) && c->info.size_limit && env->size > c->info.size_limit) {
		/* RFC 1870 §6.1; Postfix: "message size exceeds size limit of server". */
		smtpc_local(&r, 552, "5.3.4", SMTP_PHASE_MAIL,
		            "Message size %llu exceeds size limit %llu of server",
		            (unsigned long long)env->size, (unsigned long long)c->info.size_limit);
		goto all;
	}
	if (!(c->info.ext & SMTP_EXT_SMTPUTF8) && needs_smtputf8(env)) {
		/* RFC 6531 §3.2 (8): must not be sent; X.6.7 of RFC 6531 §3.5. */
		smtpc_local(&r, 553, "5.6.7", SMTP_PHASE_MAIL,
		            "SMTPUTF8 is required, but was not offered by the server");
		goto all;
	}
	for (uint32_t i = 0; i < env->nrcpt; i++) {
		if (!env->rcpts[i] || !env->rcpts[i][0] || !addr_sendable(env->rcpts[i])) {
			smtpc_local(&r, 553, "5.1.3", SMTP_PHASE_RCPT,
			            "Bad recipient address syntax");
			rcpt_skip(c, i, &r);
		} else {
			any = true;
		}
	}
	return any;
all:
	for (uint32_t i = 0; i < env->nrcpt; i++)
		rcpt_skip(c, i, &r);
	return false;
}

static void txn_begin(struct smtp_client *c)
{
	const struct smtp_client_envelope *env = c->env;

	c->env_new = false;
	if (c->rstate_cap < env->nrcpt) {
		free(c->rstate);
		c->rstate = calloc(env->nrcpt, 1);
		c->rstate_cap = c->rstate ? env->nrcpt : 0;
	} else {
		memset(c->rstate, 0, env->nrcpt);
	}
	c->accepted = c->nfinal = 0;
	c->mail_failed = c->stop_send = false;
	if (!c->rstate) {
		/* Out of memory: no per-recipient state. A session failure. */
		struct smtp_client_reply r;
		smtpc_local(&r, 451, "4.3.0", SMTP_PHASE_MAIL, "Out of memory");
		for (uint32_t i = 0; i < env->nrcpt; i++)
			c->ops->rcpt_result(c, i, &r, c->cfg.owner);
		c->nfinal = env->nrcpt;
		message_finish(c);
		return;
	}
	if (!txn_precheck(c)) {
		message_finish(c);
		return;
	}
	/* RFC 5321 §4.1.1.5: a reused session starts from a clean state. */
	c->rset = c->messages > 0;
	c->messages++;
	c->use_bdat = c->cfg.prefer_bdat && (c->info.ext & SMTP_EXT_CHUNKING);
	c->nsteps = (c->rset ? 1 : 0) + 1 + env->nrcpt + (c->use_bdat ? 0 : 1);
	c->send_step = c->recv_step = 0;
	smtpc_set_state(c, SMTPC_S_TXN);
}

static const char *notify_text(unsigned m, char *buf, size_t size)
{
	if (m & SMTP_NOTIFY_NEVER)
		return "NEVER";
	snprintf(buf, size, "%s%s%s%s%s", m & SMTP_NOTIFY_SUCCESS ? "SUCCESS" : "",
	         (m & SMTP_NOTIFY_SUCCESS) && (m & (SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY)) ? ","
	                                                                                      : "",
	         m & SMTP_NOTIFY_FAILURE ? "FAILURE" : "",
	         (m & SMTP_NOTIFY_FAILURE) && (m & SMTP_NOTIFY_DELAY) ? "," : "",
	         m & SMTP_NOTIFY_DELAY ? "DELAY" : "");
	return buf;
}

/* ORCPT=addr-type ";" xtext (RFC 3461 §4.2), utf-8-addr-xtext for "utf-8" (RFC 6533). */
static bool orcpt_ok(const char *o)
{
	const char *semi = o ? strchr(o, ';') : NULL;
	size_t tlen;

	if (!semi || semi == o || strlen(o) > SMTP_ORCPT_MAX)
		return false;
	tlen = (size_t)(semi - o);
	for (size_t i = 0; i < tlen; i++) {
		unsigned char ch = (unsigned char)o[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-'))
			return false;
	}
	if (smtp_token_is(o, tlen, "utf-8"))
		return smtp_valid_utf8_xtext(semi + 1, strlen(semi + 1));
	return smtp_valid_xtext(semi + 1, strlen(semi + 1));
}

static void write_mail(struct smtp_client *c)
{
	const struct smtp_client_envelope *env = c->env;
	unsigned ext = c->info.ext;
	char size[32] = "", envid[SMTP_ENVID_MAX + 16] = "";
	const char *body = "", *ret = "", *utf8 = "";

	if ((ext & SMTP_EXT_SIZE) && env->size)
		snprintf(size, sizeof(size), " SIZE=%llu", (unsigned long long)env->size);
	if (ext & SMTP_EXT_8BITMIME)
		body = env->body == SMTP_BODY_8BITMIME ? " BODY=8BITMIME"
		       : env->body == SMTP_BODY_7BIT   ? " BODY=7BIT"
		                                       : "";
	if ((ext & SMTP_EXT_SMTPUTF8) && (env->smtputf8 || needs_smtputf8(env)))
		utf8 = " SMTPUTF8";
	if (ext & SMTP_EXT_DSN) {
		ret = env->ret == SMTP_RET_FULL   ? " RET=FULL"
		      : env->ret == SMTP_RET_HDRS ? " RET=HDRS"
		                                  : "";
		if (env->envid && env->envid[0] && strlen(env->envid) <= SMTP_ENVID_MAX &&
		    smtp_valid_xtext(env->envid, strlen(env->envid)))
			snprintf(envid, sizeof(envid), " ENVID=%s", env->envid);
	}
	smtpc_out_printf(c, "MAIL FROM:<%s>%s%s%s%s%s\r\n", env->sender ? env->sender : "", size,
	                 body, utf8, ret, envid);
}

static void write_rcpt(struct smtp_client *c, uint32_t i)
{
	const struct smtp_client_envelope *env = c->env;
	char notify[48] = "", nbuf[32], orcpt[SMTP_ORCPT_MAX + 16] = "";

	if (c->info.ext & SMTP_EXT_DSN) {
		if (env->notify && env->notify[i])
			snprintf(notify, sizeof(notify), " NOTIFY=%s",
			         notify_text(env->notify[i], nbuf, sizeof(nbuf)));
		if (env->orcpt && env->orcpt[i] && orcpt_ok(env->orcpt[i]))
			snprintf(orcpt, sizeof(orcpt), " ORCPT=%s", env->orcpt[i]);
	}
	smtpc_out_printf(c, "RCPT TO:<%s>%s%s\r\n", env->rcpts[i], notify, orcpt);
}

/*
 * Send what may be sent: the whole group with PIPELINING (RFC 2920 §3.1),
 * else the next command once the previous one is answered. PG_OK: waiting
 * for replies; PG_AGAIN: the output is full.
 */
static int txn_send(struct smtp_client *c)
{
	bool pipe = (c->info.ext & SMTP_EXT_PIPELINING) != 0 && !c->cfg.no_pipelining;

	while (c->send_step < c->nsteps && !c->stop_send) {
		uint32_t rcpt = 0;
		enum smtpc_step k = step_kind(c, c->send_step, &rcpt);

		if (!pipe && c->recv_step < c->send_step)
			return PG_OK;
		if (k == SMTPC_STEP_RCPT && c->rstate[rcpt] == SMTPC_R_SKIP) {
			c->send_step++;
			continue;
		}
		if (k == SMTPC_STEP_DATA && !pipe && c->accepted == 0) {
			/* Nobody to send to: no DATA (RFC 5321 §3.3). */
			message_finish(c);
			return PG_OK;
		}
		if (c->out_len + SMTPC_CMD_MAX > SMTPC_OUT_FILL)
			return PG_AGAIN;
		switch (k) {
		case SMTPC_STEP_RSET:
			smtpc_out_printf(c, "RSET\r\n");
			break;
		case SMTPC_STEP_MAIL:
			write_mail(c);
			break;
		case SMTPC_STEP_RCPT:
			write_rcpt(c, rcpt);
			break;
		case SMTPC_STEP_DATA:
			smtpc_out_printf(c, "DATA\r\n");
			break;
		}
		c->send_step++;
	}
	return PG_OK;
}

/* All replies of the group are in (and no DATA step, or DATA was refused). */
static void txn_replies_done(struct smtp_client *c)
{
	if (c->use_bdat && !c->mail_failed && c->accepted > 0) {
		smtpc_body_begin(c);
		smtpc_set_state(c, SMTPC_S_BDAT);
		return;
	}
	message_finish(c);
}

/* Skip the steps that were never sent (locally refused recipients). */
static void recv_skip(struct smtp_client *c)
{
	while (c->recv_step < c->send_step) {
		uint32_t rcpt = 0;
		if (step_kind(c, c->recv_step, &rcpt) != SMTPC_STEP_RCPT ||
		    c->rstate[rcpt] != SMTPC_R_SKIP)
			break;
		c->recv_step++;
	}
}

static void on_txn_reply(struct smtp_client *c, struct smtp_client_reply *r)
{
	uint32_t rcpt = 0;
	enum smtpc_step k;
	int cls = r->code / 100;

	recv_skip(c);
	if (c->recv_step >= c->send_step) {
		smtpc_protocol_error(c, "reply without a command");
		return;
	}
	k = step_kind(c, c->recv_step, &rcpt);
	c->recv_step++;
	switch (k) {
	case SMTPC_STEP_RSET:
		r->phase = SMTP_PHASE_RSET;
		if (cls != 2) {
			/* The server lost track of the session: not the recipients' fault. */
			struct smtp_client_reply l;
			smtpc_local(&l, 451, "4.4.0", SMTP_PHASE_RSET, "RSET failed: %d %s",
			            r->code, r->text);
			smtpc_session_fail(c, &l, true);
			return;
		}
		break;
	case SMTPC_STEP_MAIL:
		r->phase = SMTP_PHASE_MAIL;
		if (cls == 3) {
			smtpc_protocol_error(c, "unexpected reply to MAIL");
			return;
		}
		if (cls != 2) {
			c->mail_failed = true;
			c->stop_send = true; /* no more commands; outstanding replies are read */
			fail_rest(c, r);
		}
		break;
	case SMTPC_STEP_RCPT:
		r->phase = SMTP_PHASE_RCPT;
		if (cls == 3) {
			smtpc_protocol_error(c, "unexpected reply to RCPT");
			return;
		}
		if (c->rstate[rcpt] != SMTPC_R_PENDING)
			break; /* MAIL failed: the RCPT replies say nothing */
		if (cls == 2) {
			c->rstate[rcpt] = SMTPC_R_ACCEPTED;
			c->accepted++;
		} else {
			rcpt_final(c, rcpt, r);
		}
		break;
	case SMTPC_STEP_DATA:
		r->phase = SMTP_PHASE_DATA;
		if (r->code == 354) {
			if (c->accepted == 0) {
				/* RFC 2920 §3.1: DATA accepted with no recipient: a lone dot. */
				smtpc_out_printf(c, ".\r\n");
				smtpc_set_state(c, SMTPC_S_NULLDOT);
				return;
			}
			smtpc_body_begin(c);
			smtpc_set_state(c, SMTPC_S_BODY);
			return;
		}
		if (cls == 2 || cls == 3) {
			smtpc_protocol_error(c, "unexpected reply to DATA");
			return;
		}
		fail_accepted(c, r);
		message_finish(c);
		return;
	}
	if (c->stop_send && c->recv_step >= c->send_step) {
		message_finish(c);
		return;
	}
	recv_skip(c);
	if (c->send_step == c->nsteps && c->recv_step == c->nsteps)
		txn_replies_done(c);
}

static void on_eod(struct smtp_client *c, struct smtp_client_reply *r)
{
	r->phase = SMTP_PHASE_EOD;
	if (r->code / 100 != 2 && r->code / 100 != 4 && r->code / 100 != 5) {
		smtpc_protocol_error(c, "unexpected reply to end of data");
		return;
	}
	if (c->state == SMTPC_S_BDAT) {
		c->bdat_wait = false;
		if (r->code / 100 == 2 && !c->bdat_last)
			return; /* next chunk */
	}
	/* The end-of-data reply is every accepted recipient's result. */
	fail_accepted(c, r);
	message_finish(c);
}

/* ---- replies ------------------------------------------------------------ */

/* Each reply line as it comes: EHLO keywords (lines after the first). */
void smtpc_on_line(struct smtp_client *c, const char *line, size_t len, unsigned lineno)
{
	if (c->state == SMTPC_S_EHLO && lineno > 0)
		smtpc_ehlo_keyword(&c->info, line, len);
}

void smtpc_on_reply(struct smtp_client *c, const struct smtp_client_reply *in)
{
	struct smtp_client_reply r = *in;
	static const enum smtp_client_phase phase_of[SMTPC_S_COUNT] = {
	    [SMTPC_S_GREETING] = SMTP_PHASE_GREETING, [SMTPC_S_EHLO] = SMTP_PHASE_EHLO,
	    [SMTPC_S_HELO] = SMTP_PHASE_HELO,         [SMTPC_S_STARTTLS] = SMTP_PHASE_STARTTLS,
	    [SMTPC_S_TXN] = SMTP_PHASE_MAIL,          [SMTPC_S_BODY] = SMTP_PHASE_EOD,
	    [SMTPC_S_DOT] = SMTP_PHASE_EOD,           [SMTPC_S_NULLDOT] = SMTP_PHASE_EOD,
	    [SMTPC_S_BDAT] = SMTP_PHASE_EOD,          [SMTPC_S_QUIT] = SMTP_PHASE_QUIT,
	    [SMTPC_S_IDLE] = SMTP_PHASE_MAIL,
	};

	r.phase = phase_of[c->state];
	if (c->state == SMTPC_S_TXN && c->recv_step < c->send_step) {
		uint32_t rcpt;
		enum smtpc_step k = step_kind(c, c->recv_step, &rcpt);
		r.phase = k == SMTPC_STEP_RSET   ? SMTP_PHASE_RSET
		          : k == SMTPC_STEP_MAIL ? SMTP_PHASE_MAIL
		          : k == SMTPC_STEP_RCPT ? SMTP_PHASE_RCPT
		                                 : SMTP_PHASE_DATA;
	}
	if (c->ops->reply)
		c->ops->reply(c, &r, c->cfg.owner);
	if (c->state == SMTPC_S_QUIT) {
		smtpc_set_state(c, SMTPC_S_CLOSED); /* whatever it said */
		return;
	}
	if (r.code == 421) {
		/* RFC 5321 §3.8: the server is closing the channel. */
		smtpc_session_fail(c, &r, false);
		return;
	}
	switch (c->state) {
	case SMTPC_S_GREETING:
		on_greeting(c, &r);
		break;
	case SMTPC_S_EHLO:
		on_ehlo(c, &r);
		break;
	case SMTPC_S_HELO:
		on_helo(c, &r);
		break;
	case SMTPC_S_STARTTLS:
		on_starttls(c, &r);
		break;
	case SMTPC_S_TXN:
		on_txn_reply(c, &r);
		break;
	case SMTPC_S_BODY:
		/* A reply before our end of data: the server gave up on the message. */
		if (r.code / 100 == 4 || r.code / 100 == 5) {
			fail_accepted(c, &r);
			smtpc_session_fail(c, &r, false);
		} else {
			smtpc_protocol_error(c, "reply during the message body");
		}
		break;
	case SMTPC_S_BDAT:
		if (!c->bdat_wait) {
			if (r.code / 100 == 4 || r.code / 100 == 5) {
				fail_accepted(c, &r);
				smtpc_session_fail(c, &r, false);
			} else {
				smtpc_protocol_error(c, "reply without a command");
			}
			break;
		}
		on_eod(c, &r);
		break;
	case SMTPC_S_DOT:
		on_eod(c, &r);
		break;
	case SMTPC_S_NULLDOT:
		/* The reply to the lone dot carries no result (RFC 2920 §3.1). */
		message_finish(c);
		break;
	default:
		smtpc_protocol_error(c, "reply without a command");
		break;
	}
}

/* ---- driving ------------------------------------------------------------ */

/* Advance as far as possible without new input. */
static int drive(struct smtp_client *c)
{
	for (;;) {
		enum smtpc_state before = c->state;
		int rc;

		switch (c->state) {
		case SMTPC_S_CLOSED:
			return PG_DONE;
		case SMTPC_S_TLS:
			return PG_AGAIN;
		case SMTPC_S_IDLE:
			if (c->env && c->env_new) {
				txn_begin(c);
				break;
			}
			if (c->quit_wanted) {
				smtpc_out_printf(c, "QUIT\r\n");
				smtpc_set_state(c, SMTPC_S_QUIT);
				break;
			}
			return PG_OK;
		case SMTPC_S_TXN:
			rc = txn_send(c);
			if (c->state == before)
				return rc;
			break;
		case SMTPC_S_BODY:
			rc = smtpc_body_pump(c);
			if (c->state == before)
				return rc;
			break;
		case SMTPC_S_BDAT:
			rc = smtpc_bdat_pump(c);
			if (c->state == before)
				return rc;
			break;
		default:
			return PG_OK; /* waiting for a reply */
		}
	}
}

int smtp_client_run(struct smtp_client *c)
{
	int rc;

	if (c->in_run)
		return PG_OK;
	c->in_run = true;
	rc = drive(c);
	c->in_run = false;
	return rc;
}

int smtp_client_input(struct smtp_client *c, const uint8_t *data, size_t len, size_t *used)
{
	size_t pos = 0;
	int rc;

	*used = 0;
	c->in_run = true;
	for (;;) {
		rc = drive(c);
		if (rc == PG_DONE || c->state == SMTPC_S_TLS) {
			/*
			 * Closed: nothing more is read. TLS: what followed the 220
			 * is plaintext injected before the handshake - dropped.
			 */
			pos = len;
			break;
		}
		if (pos == len)
			break;
		pos += smtpc_reply_feed(c, data + pos, len - pos);
		if (c->drop_input) {
			/* Even if the handshake already finished inside the hook. */
			c->drop_input = false;
			pos = len;
		}
	}
	c->in_run = false;
	*used = pos;
	if (c->state == SMTPC_S_TLS)
		return PG_AGAIN;
	return rc;
}

int smtp_client_send(struct smtp_client *c, const struct smtp_client_envelope *env)
{
	assert(!c->env && env && env->nrcpt >= 1 && env->rcpts);
	c->env = env;
	c->env_new = true;
	if (c->state == SMTPC_S_CLOSED || c->state == SMTPC_S_QUIT) {
		/* The session is over: its reason is every recipient's result. */
		struct smtp_client_reply r = c->failure;
		if (r.code == 0)
			smtpc_local(&r, 451, "4.4.2", SMTP_PHASE_QUIT, "Session already closed");
		fail_unstarted(c, &r);
	}
	return smtp_client_run(c);
}

int smtp_client_quit(struct smtp_client *c)
{
	c->quit_wanted = true;
	return smtp_client_run(c);
}

void smtp_client_closed(struct smtp_client *c)
{
	struct smtp_client_reply r;

	if (c->state == SMTPC_S_CLOSED)
		return;
	if (c->state == SMTPC_S_QUIT) {
		smtpc_set_state(c, SMTPC_S_CLOSED);
		return;
	}
	smtpc_local(&r, 451, "4.4.2", current_phase(c), "Lost connection with the server");
	smtpc_session_fail(c, &r, false);
}

/* ---- timers and introspection ------------------------------------------ */

uint32_t smtp_client_timeout_ms(const struct smtp_client *c)
{
	uint32_t rcpt;

	switch (c->state) {
	case SMTPC_S_GREETING:
		return c->cfg.greeting_timeout_ms;
	case SMTPC_S_EHLO:
	case SMTPC_S_HELO:
	case SMTPC_S_STARTTLS:
		return c->cfg.helo_timeout_ms;
	case SMTPC_S_TXN:
		if (c->recv_step >= c->send_step)
			return c->cfg.block_timeout_ms; /* blocked on the output */
		switch (step_kind(c, c->recv_step, &rcpt)) {
		case SMTPC_STEP_RSET:
			return c->cfg.rset_timeout_ms;
		case SMTPC_STEP_MAIL:
			return c->cfg.mail_timeout_ms;
		case SMTPC_STEP_RCPT:
			return c->cfg.rcpt_timeout_ms;
		case SMTPC_STEP_DATA:
			return c->cfg.data_timeout_ms;
		}
		return c->cfg.mail_timeout_ms;
	case SMTPC_S_BODY:
		return c->cfg.block_timeout_ms;
	case SMTPC_S_BDAT:
		return c->bdat_wait ? c->cfg.dot_timeout_ms : c->cfg.block_timeout_ms;
	case SMTPC_S_DOT:
	case SMTPC_S_NULLDOT:
		return c->cfg.dot_timeout_ms;
	case SMTPC_S_QUIT:
		return c->cfg.quit_timeout_ms;
	default:
		return 0;
	}
}

int smtp_client_timeout(struct smtp_client *c)
{
	struct smtp_client_reply r;
	enum smtp_client_phase ph = current_phase(c);

	if (c->state == SMTPC_S_QUIT)
		smtpc_set_state(c, SMTPC_S_CLOSED);
	if (c->state == SMTPC_S_CLOSED)
		return PG_DONE;
	/* Postfix: "conversation with HOST timed out while ..."; 4.4.2 (RFC 3463). */
	smtpc_local(&r, 451, "4.4.2", ph, "Conversation timed out while waiting for %s",
	            ph == SMTP_PHASE_EOD ? "the end of data reply" : smtp_client_phase_name(ph));
	smtpc_session_fail(c, &r, false);
	return PG_DONE;
}

const struct smtp_client_info *smtp_client_info(const struct smtp_client *c)
{
	return &c->info;
}

const char *smtp_client_state_name(const struct smtp_client *c)
{
	return state_names[c->state];
}

const struct smtp_client_reply *smtp_client_failure(const struct smtp_client *c)
{
	return &c->failure;
}

bool smtp_client_reusable(const struct smtp_client *c)
{
	return c->state == SMTPC_S_IDLE && !c->quit_wanted;
}

size_t smtp_client_footprint(const struct smtp_client *c)
{
	return sizeof(*c) + c->rstate_cap;
}
