/*
 * smtp_cmd.c - the SMTP server's commands (RFC 5321 §4.1.1 and the ESMTP
 * extensions): one table pairs each verb with the states it is legal in,
 * its argument rule and its handler (OpenSMTPD's commands[] in smtp_session.c);
 * the handlers parse, validate, ask the upper layer and reply.
 */
#include <stdio.h>
#include <string.h>

#include "smtp_parse.h"
#include "smtp_private.h"

enum smtp_cmd_id {
	CMD_HELO,
	CMD_EHLO,
	CMD_MAIL,
	CMD_RCPT,
	CMD_DATA,
	CMD_BDAT,
	CMD_RSET,
	CMD_NOOP,
	CMD_QUIT,
	CMD_VRFY,
	CMD_EXPN,
	CMD_HELP,
	CMD_STARTTLS,
	CMD_FORBIDDEN,
};

enum smtp_arg_rule {
	ARG_NONE,     /* "501 5.5.4 Syntax: VERB" when an argument is given */
	ARG_REQUIRED, /* ... when it is missing */
	ARG_ANY,
};

typedef void smtp_cmd_fn(struct smtp_server *s, const char *arg, size_t len);

struct smtp_cmd {
	const char *verb;
	enum smtp_cmd_id id;
	unsigned states; /* SMTP_SB() mask of the states it is legal in */
	enum smtp_arg_rule arg;
	const char *syntax; /* for 501 5.5.4 Syntax: ... */
	smtp_cmd_fn *fn;
};

static smtp_cmd_fn cmd_helo, cmd_ehlo, cmd_mail, cmd_rcpt, cmd_data, cmd_bdat, cmd_rset, cmd_noop,
    cmd_quit, cmd_vrfy, cmd_expn, cmd_help, cmd_starttls, cmd_forbidden;

#define ANY SMTP_CMD_STATES
#define NOTXN (SMTP_SB(SMTP_S_GREETED) | SMTP_SB(SMTP_S_HELO))

/*
 * BDAT is "legal" everywhere: its octets follow whatever the answer, so the
 * handler must parse the size first and skip the chunk when the sequence
 * is wrong (RFC 3030 §2). GET/POST/CONNECT are Postfix's
 * smtpd_forbidden_commands: an HTTP client or proxy abuse, dropped at once.
 */
static const struct smtp_cmd smtp_cmds[] = {
    {"HELO", CMD_HELO, ANY, ARG_REQUIRED, "HELO hostname", cmd_helo},
    {"EHLO", CMD_EHLO, ANY, ARG_REQUIRED, "EHLO hostname", cmd_ehlo},
    {"MAIL", CMD_MAIL, SMTP_SB(SMTP_S_HELO), ARG_REQUIRED, "MAIL FROM:<address>", cmd_mail},
    {"RCPT", CMD_RCPT, SMTP_SB(SMTP_S_MAIL) | SMTP_SB(SMTP_S_RCPT), ARG_REQUIRED,
     "RCPT TO:<address>", cmd_rcpt},
    {"DATA", CMD_DATA, SMTP_SB(SMTP_S_RCPT), ARG_NONE, "DATA", cmd_data},
    {"BDAT", CMD_BDAT, ANY, ARG_REQUIRED, "BDAT count [LAST]", cmd_bdat},
    {"RSET", CMD_RSET, ANY, ARG_NONE, "RSET", cmd_rset},
    {"NOOP", CMD_NOOP, ANY, ARG_ANY, "NOOP", cmd_noop},
    {"QUIT", CMD_QUIT, ANY, ARG_NONE, "QUIT", cmd_quit},
    {"VRFY", CMD_VRFY, ANY, ARG_REQUIRED, "VRFY address", cmd_vrfy},
    {"EXPN", CMD_EXPN, ANY, ARG_REQUIRED, "EXPN mailing-list", cmd_expn},
    {"HELP", CMD_HELP, ANY, ARG_ANY, "HELP", cmd_help},
    {"STARTTLS", CMD_STARTTLS, SMTP_SB(SMTP_S_HELO), ARG_NONE, "STARTTLS", cmd_starttls},
    {"GET", CMD_FORBIDDEN, ANY, ARG_ANY, "", cmd_forbidden},
    {"POST", CMD_FORBIDDEN, ANY, ARG_ANY, "", cmd_forbidden},
    {"CONNECT", CMD_FORBIDDEN, ANY, ARG_ANY, "", cmd_forbidden},
};

/* 501 5.5.4 and an error (RFC 5321 §4.2.4 / RFC 3463 5.5.4 invalid arguments). */
static void syntax_error(struct smtp_server *s, const char *syntax)
{
	smtp_reply(s, 501, "5.5.4", "Syntax: %s", syntax);
	smtp_count_error(s);
}

/* 503 5.5.1: the command is known but out of sequence here. */
static void sequence_error(struct smtp_server *s, enum smtp_cmd_id id)
{
	const char *why = "Error: bad sequence of commands";

	if (s->state == SMTP_S_GREETED)
		why = id == CMD_STARTTLS ? "Error: send EHLO first" : "Error: send HELO/EHLO first";
	else if (id == CMD_MAIL)
		why = "Error: nested MAIL command";
	else if (id == CMD_STARTTLS)
		why = "Error: MAIL transaction in progress";
	else if (s->state == SMTP_S_CHUNKING)
		why = "Error: BDAT transaction in progress"; /* RFC 3030 §3: no DATA after BDAT */
	else if (s->state == SMTP_S_HELO)
		why = "Error: need MAIL command";
	else if (s->state == SMTP_S_MAIL && s->rcpt_tried > 0) {
		smtp_reply(s, 554, "5.5.1", "Error: no valid recipients");
		smtp_count_error(s);
		return;
	} else if (s->state == SMTP_S_MAIL)
		why = "Error: need RCPT command";
	smtp_reply(s, 503, "5.5.1", "%s", why);
	smtp_count_error(s);
}

void smtp_cmd_dispatch(struct smtp_server *s, const char *line, size_t len)
{
	const struct smtp_cmd *cmd = NULL;
	size_t vlen = 0, alen;
	const char *arg;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c < 32 || c == 127) {
			smtp_reply(s, 500, "5.5.2", "Error: bad syntax (control character)");
			smtp_count_error(s);
			return;
		}
	}
	while (vlen < len && line[vlen] != ' ')
		vlen++;
	for (size_t i = 0; i < sizeof(smtp_cmds) / sizeof(smtp_cmds[0]); i++) {
		if (smtp_token_is(line, vlen, smtp_cmds[i].verb)) {
			cmd = &smtp_cmds[i];
			break;
		}
	}
	if (!cmd) {
		smtp_reply(s, 500, "5.5.2", "Error: command not recognized");
		smtp_count_error(s);
		return;
	}
	/* RFC 5321 §4.1.1: one SP before the argument; be liberal with more, trim the end. */
	arg = line + vlen;
	alen = len - vlen;
	while (alen > 0 && *arg == ' ')
		arg++, alen--;
	while (alen > 0 && arg[alen - 1] == ' ')
		alen--;
	if (!(cmd->states & SMTP_SB(s->state))) {
		sequence_error(s, cmd->id);
		return;
	}
	if ((cmd->arg == ARG_NONE && alen > 0) || (cmd->arg == ARG_REQUIRED && alen == 0)) {
		if (cmd->id == CMD_BDAT) { /* no size: the octets cannot be found */
			smtp_reply(s, 501, "5.5.4", "Syntax: %s", cmd->syntax);
			smtp_close(s);
			return;
		}
		syntax_error(s, cmd->syntax);
		return;
	}
	cmd->fn(s, arg, alen);
}

/* ---- HELO / EHLO ----------------------------------------------------- */

static bool helo_common(struct smtp_server *s, const char *arg, size_t len, const char *syntax)
{
	if (len > SMTP_DOMAIN_MAX || !smtp_valid_helo(arg, len)) {
		syntax_error(s, syntax);
		return false;
	}
	/* RFC 5321 §4.1.4: a later HELO/EHLO resets the transaction. */
	smtp_txn_reset(s, true);
	memcpy(s->helo, arg, len);
	s->helo[len] = '\0';
	smtp_set_state(s, SMTP_S_HELO);
	return true;
}

static void cmd_helo(struct smtp_server *s, const char *arg, size_t len)
{
	if (!helo_common(s, arg, len, "HELO hostname"))
		return;
	s->esmtp = false;
	smtp_reply(s, 250, NULL, "%s", s->hostname); /* RFC 2034 §3: no enhanced code */
}

static void cmd_ehlo(struct smtp_server *s, const char *arg, size_t len)
{
	if (!helo_common(s, arg, len, "EHLO hostname"))
		return;
	s->esmtp = true;
	/* RFC 5321 §4.1.1.1: the greeting line, then one keyword per line. */
	smtp_reply_cont(s, 250, false, "%s", s->hostname);
	smtp_reply_cont(s, 250, false, "PIPELINING"); /* RFC 2920 */
	if (s->cfg.max_message_size)                  /* RFC 1870 */
		smtp_reply_cont(s, 250, false, "SIZE %llu",
		                (unsigned long long)s->cfg.max_message_size);
	else
		smtp_reply_cont(s, 250, false, "SIZE");
	if (s->cfg.starttls && !s->tls && s->ops->starttls) /* RFC 3207 */
		smtp_reply_cont(s, 250, false, "STARTTLS");
	smtp_reply_cont(s, 250, false, "ENHANCEDSTATUSCODES"); /* RFC 2034 */
	smtp_reply_cont(s, 250, false, "8BITMIME");            /* RFC 6152 */
	smtp_reply_cont(s, 250, false, "DSN");                 /* RFC 3461 */
	smtp_reply_cont(s, 250, false, "SMTPUTF8");            /* RFC 6531 */
	smtp_reply_cont(s, 250, true, "CHUNKING");             /* RFC 3030 */
}

/* ---- MAIL ------------------------------------------------------------ */

/* Parse a decimal of at most `maxdig` digits; false on anything else. */
static bool parse_u64(const char *p, size_t len, size_t maxdig, uint64_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > maxdig)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*out = v;
	return true;
}

/* "FROM:" / "TO:" then optional spaces (tolerated, as Postfix does). */
static bool skip_prefix(const char **arg, size_t *len, const char *prefix)
{
	size_t n = strlen(prefix);

	if (*len < n || strncasecmp(*arg, prefix, n) != 0)
		return false;
	*arg += n, *len -= n;
	while (*len > 0 && **arg == ' ')
		(*arg)++, (*len)--;
	return true;
}

static void unsupported_param(struct smtp_server *s, const char *key, size_t keylen)
{
	/* RFC 5321 §4.1.1.11: 555 for parameters not recognised. */
	smtp_reply(s, 555, "5.5.4", "Unsupported option: %.*s", (int)(keylen > 64 ? 64 : keylen),
	           key);
	smtp_count_error(s);
}

static void param_error(struct smtp_server *s, const char *what)
{
	smtp_reply(s, 501, "5.5.4", "Bad %s parameter syntax", what);
	smtp_count_error(s);
}

static void cmd_mail(struct smtp_server *s, const char *arg, size_t len)
{
	struct smtp_envelope env = {0};
	const char *cur, *end, *key, *val;
	size_t used, keylen, vallen;
	unsigned seen = 0;
	bool utf8;
	int r;

	if (s->cfg.tls_required && !s->tls) {
		smtp_reply(s, 530, "5.7.0",
		           "Must issue a STARTTLS command first"); /* RFC 3207 §4 */
		smtp_count_error(s);
		return;
	}
	if (!skip_prefix(&arg, &len, "FROM:")) {
		syntax_error(s, "MAIL FROM:<address>");
		return;
	}
	switch (smtp_parse_path(arg, len, SMTP_PATH_ALLOW_NULL | SMTP_PATH_ALLOW_UTF8, env.sender,
	                        sizeof(env.sender), &used, &utf8)) {
	case SMTP_PATH_OK:
		break;
	case SMTP_PATH_TOOLONG:
		smtp_reply(s, 501, "5.1.7", "Error: sender address too long"); /* §4.5.3.1.3 */
		smtp_count_error(s);
		return;
	default:
		smtp_reply(s, 501, "5.1.7", "Bad sender address syntax");
		smtp_count_error(s);
		return;
	}
	cur = arg + used;
	end = arg + len;
	if (cur < end && *cur != ' ') {
		smtp_reply(s, 501, "5.1.7", "Bad sender address syntax");
		smtp_count_error(s);
		return;
	}
	while ((r = smtp_next_param(&cur, end, &key, &keylen, &val, &vallen, true)) == 1) {
		unsigned bit;
		if (!s->esmtp) { /* RFC 1869 §4.2: parameters only after EHLO */
			unsupported_param(s, key, keylen);
			return;
		}
		if (smtp_token_is(key, keylen, "SIZE")) {
			bit = 1u << 0;
			if (!val || !parse_u64(val, vallen, 19, &env.size)) {
				param_error(s, "SIZE");
				return;
			}
		} else if (smtp_token_is(key, keylen, "BODY")) {
			bit = 1u << 1;
			if (val && smtp_token_is(val, vallen, "7BIT"))
				env.body = SMTP_BODY_7BIT;
			else if (val && smtp_token_is(val, vallen, "8BITMIME"))
				env.body = SMTP_BODY_8BITMIME;
			else {
				/* BINARYMIME (RFC 3030 §3) is not offered. */
				param_error(s, "BODY");
				return;
			}
		} else if (smtp_token_is(key, keylen, "SMTPUTF8")) {
			bit = 1u << 2;
			if (val) {
				param_error(s, "SMTPUTF8");
				return;
			}
			env.smtputf8 = true;
		} else if (smtp_token_is(key, keylen, "RET")) {
			bit = 1u << 3;
			if (val && smtp_token_is(val, vallen, "FULL"))
				env.ret = SMTP_RET_FULL;
			else if (val && smtp_token_is(val, vallen, "HDRS"))
				env.ret = SMTP_RET_HDRS;
			else {
				param_error(s, "RET");
				return;
			}
		} else if (smtp_token_is(key, keylen, "ENVID")) {
			bit = 1u << 4;
			/* RFC 3461 §4.4: xtext, at most 100 characters. */
			if (!val || vallen > SMTP_ENVID_MAX || !smtp_valid_xtext(val, vallen)) {
				param_error(s, "ENVID");
				return;
			}
			memcpy(env.envid, val, vallen);
			env.envid[vallen] = '\0';
		} else {
			unsupported_param(s, key, keylen);
			return;
		}
		if (seen & bit) { /* RFC 1869 §6: a parameter at most once */
			smtp_reply(s, 501, "5.5.4", "Duplicate %.*s parameter", (int)keylen, key);
			smtp_count_error(s);
			return;
		}
		seen |= bit;
	}
	if (r < 0) {
		smtp_reply(s, 501, "5.5.4", "Bad parameter syntax");
		smtp_count_error(s);
		return;
	}
	if (utf8 && !env.smtputf8) {
		/* RFC 6531 §3.4: UTF-8 addresses need SMTPUTF8 on MAIL. */
		smtp_reply(s, 553, "5.6.7", "Must declare SMTPUTF8 to send Unicode address");
		smtp_count_error(s);
		return;
	}
	if (s->cfg.max_message_size && env.size > s->cfg.max_message_size) {
		smtp_reply(s, 552, "5.3.4", "Message size exceeds fixed limit"); /* RFC 1870 §6.1 */
		smtp_count_error(s);
		return;
	}
	s->env = env;
	s->rcpt_tried = 0;
	s->first_rcpt[0] = '\0';
	s->queue_id[0] = '\0';
	{
		struct smtp_verdict v = {0};
		int rc =
		    s->ops->mail_from ? s->ops->mail_from(s, &s->env, &v, s->cfg.owner) : PG_OK;
		if (rc == PG_AGAIN) {
			s->await = SMTP_AWAIT_MAIL;
			return;
		}
		smtp_finish_mail(s, rc, &v);
	}
}

void smtp_finish_mail(struct smtp_server *s, int rc, const struct smtp_verdict *v)
{
	if (s->state == SMTP_S_CLOSED)
		return;
	if (rc == PG_OK) {
		s->txn_open = true;
		smtp_reply_verdict(s, v, 250, "2.1.0", "Ok");
		smtp_set_state(s, SMTP_S_MAIL);
		return;
	}
	memset(&s->env, 0, sizeof(s->env));
	if (rc == PG_DECLINED)
		smtp_reply_verdict(s, v, 550, "5.7.1", "Error: sender rejected");
	else
		smtp_reply_verdict(s, v, 451, "4.3.0", "Error: internal error, try again later");
	smtp_count_error(s);
}

/* ---- RCPT ------------------------------------------------------------ */

/* RFC 3461 §4.1: NEVER alone, or a list of SUCCESS, FAILURE, DELAY. */
static bool parse_notify(const char *p, size_t len, unsigned *out)
{
	unsigned m = 0;
	size_t i = 0;

	while (i < len) {
		size_t j = i, bit;
		while (j < len && p[j] != ',')
			j++;
		if (smtp_token_is(p + i, j - i, "NEVER"))
			bit = SMTP_NOTIFY_NEVER;
		else if (smtp_token_is(p + i, j - i, "SUCCESS"))
			bit = SMTP_NOTIFY_SUCCESS;
		else if (smtp_token_is(p + i, j - i, "FAILURE"))
			bit = SMTP_NOTIFY_FAILURE;
		else if (smtp_token_is(p + i, j - i, "DELAY"))
			bit = SMTP_NOTIFY_DELAY;
		else
			return false;
		if (m & bit)
			return false;
		m |= (unsigned)bit;
		i = j + 1;
		if (j < len && i == len)
			return false; /* trailing comma */
	}
	if (m == 0 || ((m & SMTP_NOTIFY_NEVER) && m != SMTP_NOTIFY_NEVER))
		return false;
	*out = m;
	return true;
}

/* RFC 3461 §4.2 ORCPT = addr-type ";" xtext; utf-8 type per RFC 6533. */
static bool valid_orcpt(const char *p, size_t len, bool smtputf8)
{
	size_t semi = 0;

	while (semi < len && p[semi] != ';')
		semi++;
	if (semi == 0 || semi >= len - 1 || len > SMTP_ORCPT_MAX)
		return false;
	for (size_t i = 0; i < semi; i++) { /* addr-type = atom (RFC 3461 §4.2) */
		char c = p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-'))
			return false;
	}
	if (smtp_token_is(p, semi, "utf-8"))
		return smtputf8 ? smtp_valid_utf8_xtext(p + semi + 1, len - semi - 1)
		                : smtp_valid_xtext(p + semi + 1, len - semi - 1);
	return smtp_valid_xtext(p + semi + 1, len - semi - 1);
}

static void cmd_rcpt(struct smtp_server *s, const char *arg, size_t len)
{
	struct smtp_rcpt *r = &s->rcpt;
	const char *cur, *end, *key, *val;
	size_t used, keylen, vallen;
	unsigned flags = SMTP_PATH_ALLOW_POSTMASTER | SMTP_PATH_ALLOW_UTF8;
	bool utf8, seen_notify = false, seen_orcpt = false;
	int rc;

	memset(r, 0, sizeof(*r));
	if (!skip_prefix(&arg, &len, "TO:")) {
		syntax_error(s, "RCPT TO:<address>");
		return;
	}
	switch (smtp_parse_path(arg, len, flags, r->addr, sizeof(r->addr), &used, &utf8)) {
	case SMTP_PATH_OK:
		break;
	case SMTP_PATH_TOOLONG:
		smtp_reply(s, 501, "5.1.3", "Error: recipient address too long");
		smtp_count_error(s);
		return;
	default:
		smtp_reply(s, 501, "5.1.3", "Bad recipient address syntax");
		smtp_count_error(s);
		return;
	}
	cur = arg + used;
	end = arg + len;
	if (cur < end && *cur != ' ') {
		smtp_reply(s, 501, "5.1.3", "Bad recipient address syntax");
		smtp_count_error(s);
		return;
	}
	while ((rc = smtp_next_param(&cur, end, &key, &keylen, &val, &vallen, s->env.smtputf8)) ==
	       1) {
		if (!s->esmtp) {
			unsupported_param(s, key, keylen);
			return;
		}
		if (smtp_token_is(key, keylen, "NOTIFY")) {
			if (seen_notify || !val || !parse_notify(val, vallen, &r->notify)) {
				param_error(s, "NOTIFY");
				return;
			}
			seen_notify = true;
		} else if (smtp_token_is(key, keylen, "ORCPT")) {
			if (seen_orcpt || !val || !valid_orcpt(val, vallen, s->env.smtputf8)) {
				param_error(s, "ORCPT");
				return;
			}
			memcpy(r->orcpt, val, vallen);
			r->orcpt[vallen] = '\0';
			seen_orcpt = true;
		} else {
			unsupported_param(s, key, keylen);
			return;
		}
	}
	if (rc < 0) {
		smtp_reply(s, 501, "5.5.4", "Bad parameter syntax");
		smtp_count_error(s);
		return;
	}
	s->rcpt_tried++;
	if (utf8 && !s->env.smtputf8) {
		smtp_reply(s, 553, "5.6.7", "Must declare SMTPUTF8 to send Unicode address");
		smtp_count_error(s);
		return;
	}
	if (s->env.nrcpt >= s->cfg.max_rcpt) {
		/* RFC 5321 §4.5.3.1.10: 452, the client sends the rest later. */
		smtp_reply(s, 452, "4.5.3", "Error: too many recipients");
		return;
	}
	{
		struct smtp_verdict v = {0};
		rc = s->ops->rcpt_to ? s->ops->rcpt_to(s, &s->env, r, &v, s->cfg.owner) : PG_OK;
		if (rc == PG_AGAIN) {
			s->await = SMTP_AWAIT_RCPT;
			return;
		}
		smtp_finish_rcpt(s, rc, &v);
	}
}

void smtp_finish_rcpt(struct smtp_server *s, int rc, const struct smtp_verdict *v)
{
	char text[SMTP_PATH_MAX + 40];

	if (s->state == SMTP_S_CLOSED)
		return;
	if (rc == PG_OK) {
		if (s->env.nrcpt++ == 0)
			memcpy(s->first_rcpt, s->rcpt.addr, sizeof(s->first_rcpt));
		smtp_reply_verdict(s, v, 250, "2.1.5", "Ok");
		smtp_set_state(s, SMTP_S_RCPT);
		return;
	}
	/* No error count: refusing recipients is policy, not client misbehaviour. */
	if (rc == PG_DECLINED) {
		snprintf(text, sizeof(text), "<%s>: Relay access denied", s->rcpt.addr);
		smtp_reply_verdict(s, v, 554, "5.7.1", text);
	} else {
		smtp_reply_verdict(s, v, 451, "4.3.0", "Error: internal error, try again later");
	}
}

/* ---- DATA / BDAT ------------------------------------------------------ */

static int ask_data_start(struct smtp_server *s)
{
	struct smtp_verdict v = {0};
	int rc = s->ops->data_start ? s->ops->data_start(s, &s->env, &v, s->cfg.owner) : PG_OK;

	if (rc == PG_AGAIN)
		s->await = SMTP_AWAIT_DATA;
	else
		smtp_finish_data(s, rc, &v);
	return rc;
}

/* What the upper layer said before the first body byte. */
void smtp_finish_data(struct smtp_server *s, int rc, const struct smtp_verdict *v)
{
	bool bdat = s->in == SMTP_IN_BDAT; /* BDAT set up its chunk before asking */

	if (s->state == SMTP_S_CLOSED)
		return;
	if (rc != PG_OK) {
		char line[SMTP_REPLY_TEXT_MAX + 32];
		if (rc == PG_DECLINED)
			smtp_format_verdict(line, sizeof(line), v, 554, "5.5.0",
			                    "Error: message not accepted");
		else
			smtp_format_verdict(line, sizeof(line), v, 451, "4.3.0",
			                    "Error: internal error, try again later");
		if (bdat) { /* answer after the chunk, which is skipped */
			snprintf(s->bdat_reply, sizeof(s->bdat_reply), "%s", line);
			s->bdat_skip = true;
		} else {
			smtp_reply_raw(s, line);
		}
		return;
	}
	smtp_body_begin(s);
	if (bdat) {
		smtp_set_state(s, SMTP_S_CHUNKING);
		return;
	}
	s->dstate = SMTP_D_BOL;
	/* End of data is <CRLF>.<CRLF>: the DATA line's own ending counts. */
	s->line_clean = !s->line_bare;
	s->in = SMTP_IN_DATA;
	smtp_set_state(s, SMTP_S_DATA);
	smtp_reply(s, 354, NULL, "End data with <CR><LF>.<CR><LF>");
}

static void cmd_data(struct smtp_server *s, const char *arg, size_t len)
{
	(void)arg, (void)len;
	ask_data_start(s);
}

/* Refuse a BDAT whose octets still have to be read and dropped. */
static void bdat_refuse(struct smtp_server *s, uint64_t size, bool last, int code,
                        const char *status, const char *text)
{
	snprintf(s->bdat_reply, sizeof(s->bdat_reply), "%03d %s %s\r\n", code, status, text);
	smtp_bdat_begin(s, size, last, true);
	smtp_count_error(s);
}

/* BDAT chunk-size [SP "LAST"] (RFC 3030 §2). */
static void cmd_bdat(struct smtp_server *s, const char *arg, size_t len)
{
	size_t n = 0;
	uint64_t size;
	bool last = false;

	while (n < len && arg[n] != ' ')
		n++;
	if (!parse_u64(arg, n, 18, &size)) {
		/*
		 * No chunk size we can trust: the following octets can't be
		 * told from commands, so reading on would let a message body
		 * inject commands. Refuse and close.
		 */
		smtp_reply(s, 501, "5.5.4", "Syntax: BDAT count [LAST]");
		smtp_close(s);
		return;
	}
	while (n < len && arg[n] == ' ')
		n++;
	if (n < len) {
		if (!smtp_token_is(arg + n, len - n, "LAST")) {
			bdat_refuse(s, size, false, 501, "5.5.4", "Syntax: BDAT count [LAST]");
			return;
		}
		last = true;
	}
	if (!s->esmtp && s->state != SMTP_S_GREETED) {
		bdat_refuse(s, size, last, 503, "5.5.1", "Error: BDAT requires EHLO");
		return;
	}
	switch (s->state) {
	case SMTP_S_GREETED:
		bdat_refuse(s, size, last, 503, "5.5.1", "Error: send HELO/EHLO first");
		return;
	case SMTP_S_HELO:
		bdat_refuse(s, size, last, 503, "5.5.1", "Error: need MAIL command");
		return;
	case SMTP_S_MAIL:
		if (s->rcpt_tried > 0)
			bdat_refuse(s, size, last, 554, "5.5.1", "Error: no valid recipients");
		else
			bdat_refuse(s, size, last, 503, "5.5.1", "Error: need RCPT command");
		return;
	default:
		break;
	}
	if (s->cfg.max_message_size &&
	    (s->state == SMTP_S_CHUNKING ? s->body_len : 0) + size > s->cfg.max_message_size) {
		/* RFC 1870 with RFC 3030: refuse before reading; the transaction is over. */
		smtp_txn_reset(s, true);
		smtp_set_state(s, SMTP_S_HELO);
		bdat_refuse(s, size, last, 552, "5.3.4",
		            "Error: message size exceeds fixed maximum message size");
		return;
	}
	smtp_bdat_begin(s, size, last, false);
	if (s->state == SMTP_S_RCPT)
		ask_data_start(s); /* the first chunk: the message starts */
}

/* ---- the rest ---------------------------------------------------------- */

static void cmd_rset(struct smtp_server *s, const char *arg, size_t len)
{
	(void)arg, (void)len;
	smtp_txn_reset(s, true);
	if (s->state != SMTP_S_GREETED)
		smtp_set_state(s, SMTP_S_HELO);
	smtp_reply(s, 250, "2.0.0", "Ok");
}

static void cmd_noop(struct smtp_server *s, const char *arg, size_t len)
{
	(void)arg, (void)len;
	smtp_reply(s, 250, "2.0.0", "Ok");
}

static void cmd_quit(struct smtp_server *s, const char *arg, size_t len)
{
	(void)arg, (void)len;
	smtp_reply(s, 221, "2.0.0", "Bye");
	if (s->ops->quit)
		s->ops->quit(s, s->cfg.owner);
	smtp_close(s);
}

static void cmd_vrfy(struct smtp_server *s, const char *arg, size_t len)
{
	(void)arg, (void)len;
	/* RFC 5321 §3.5.3 / §7.3: 252, never disclose mailboxes. */
	smtp_reply(s, 252, "2.0.0",
	           "Cannot VRFY user, but will accept message and attempt delivery");
}

static void cmd_expn(struct smtp_server *s, const char *arg, size_t len)
{
	(void)arg, (void)len;
	smtp_reply(s, 502, "5.5.1", "Error: command not implemented"); /* RFC 5321 §7.3 */
}

static void cmd_help(struct smtp_server *s, const char *arg, size_t len)
{
	(void)arg, (void)len;
	smtp_reply_raw(s, "214-2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT\r\n");
	smtp_reply(s, 214, "2.0.0", "VRFY HELP%s; see RFC 5321",
	           s->cfg.starttls && !s->tls && s->ops->starttls ? " STARTTLS" : "");
}

static void cmd_starttls(struct smtp_server *s, const char *arg, size_t len)
{
	(void)arg, (void)len;
	if (!s->cfg.starttls || !s->ops->starttls) {
		smtp_reply(s, 502, "5.5.1", "Error: command not implemented");
		smtp_count_error(s);
		return;
	}
	if (s->tls) {
		smtp_reply(s, 554, "5.5.1", "Error: TLS already active"); /* RFC 3207 §4 */
		smtp_count_error(s);
		return;
	}
	if (!s->esmtp) { /* RFC 3207 §4: STARTTLS is an EHLO extension */
		smtp_reply(s, 503, "5.5.1", "Error: send EHLO first");
		smtp_count_error(s);
		return;
	}
	smtp_reply(s, 220, "2.0.0", "Ready to start TLS");
	s->starttls_drop = true;
	s->await = SMTP_AWAIT_TLS;
	s->in = SMTP_IN_DROP;
	smtp_set_state(s, SMTP_S_TLS);
	s->ops->starttls(s, s->cfg.owner);
}

static void cmd_forbidden(struct smtp_server *s, const char *arg, size_t len)
{
	(void)arg, (void)len;
	smtp_reply(s, 521, "5.7.0", "Error: I can break rules, too. Goodbye.");
	smtp_close(s);
}
